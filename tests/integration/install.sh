#!/usr/bin/env bash
# make install into a staging root (DESTDIR): programs, library, header and
# .pc, sample configurations, systemd units and sysusers.d, man pages. The
# units start the installed programs; the man pages render without warnings
# and document every configuration key the parsers accept; a program builds
# and runs against the installed library through pkg-config; make uninstall
# takes it all away again.
. "$(dirname "$0")/lib.sh"
ROOT=$T/root
MAKE=${MAKE:-make}
# the installation directories as ./configure set them, expanded
dirs=$(sed -n "s/^\(prefix\|exec_prefix\|bindir\|sbindir\|libdir\|includedir\|sysconfdir\|mandir\|datarootdir\|systemdsystemunitdir\|sysusersdir\) = \(.*\)/\1=\"\2\"/p" \
	"$top_builddir/Makefile" | sed 's/\$(\([a-z_]*\))/${\1}/g')
set +u; for pass in 1 2 3; do eval "$dirs"; done; set -u # they refer to each other in any order

$MAKE -s -C "$top_builddir" install DESTDIR="$ROOT" >"$T/install.log" 2>&1
is "$?" 0 "make install DESTDIR=... succeeds"
for f in "$sbindir/coordinatord" "$sbindir/dtx-pgagent" "$bindir/dtxctl" "$bindir/dtxbench"; do
	[ -x "$ROOT$f" ]; ok $? "program $f"
done
for f in "$libdir/libdtx.so" "$includedir/dtx.h" "$libdir/pkgconfig/libdtx.pc" \
	"$sysconfdir/dtx/coordinatord.conf" "$sysconfdir/dtx/dtx-pgagent.conf" \
	"$systemdsystemunitdir/coordinatord.service" "$systemdsystemunitdir/dtx-pgagent@.service" \
	"$sysusersdir/dtx.conf" "$mandir/man8/coordinatord.8" "$mandir/man8/dtx-pgagent.8" \
	"$mandir/man1/dtxctl.1" "$mandir/man5/coordinatord.conf.5"; do
	[ -e "$ROOT$f" ]; ok $? "installed $f"
done
exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$ROOT$systemdsystemunitdir/coordinatord.service")
is "$exe" "$sbindir/coordinatord" "coordinatord.service starts the installed coordinatord"
like "$(grep '^ExecStart=' "$ROOT$systemdsystemunitdir/dtx-pgagent@.service")" \
	"^ExecStart=$sbindir/dtx-pgagent -c $sysconfdir/dtx/pgagent-%i.conf" "dtx-pgagent@.service: the installed agent, a file per instance"
like "$(cat "$ROOT$sysusersdir/dtx.conf")" '^u dtx ' "sysusers.d creates the dtx user"
"$ROOT$sbindir/coordinatord" --check-config -c "$ROOT$sysconfdir/dtx/coordinatord.conf" >/dev/null
ok $? "the installed sample configuration passes --check-config"

# --- man pages -------------------------------------------------------------------
for m in man8/coordinatord.8 man8/dtx-pgagent.8 man1/dtxctl.1 man5/coordinatord.conf.5; do
	out=$(groff -man -ww -z "$ROOT$mandir/$m" 2>&1)
	is "$out" "" "$m renders without warnings"
done
# undocumented PAGE WORD...: the words that no entry of PAGE (an indented
# tag line of the rendered page) starts with
undocumented() {
	local page text missing=
	page=$1; shift
	text=$(groff -man -Tutf8 -P-cbou "$ROOT$mandir/$page" 2>/dev/null)
	for w in "$@"; do grep -qE "^ {7}$w( |$)" <<<"$text" || missing="$missing $w"; done
	echo "${missing:-none}"
}
keys() { grep -o 'strcmp(key, "[a-z_]*")' "$1" | sed 's/.*"\(.*\)".*/\1/'; }
is "$(undocumented man5/coordinatord.conf.5 $(keys "$top_srcdir/coordinatord/crd_config.c"))" none \
	"coordinatord.conf(5) documents every key coordinatord accepts"
is "$(undocumented man8/dtx-pgagent.8 $(keys "$top_srcdir/participants/pga_config.c"))" none \
	"dtx-pgagent(8) documents every key the agent accepts"
cmds=$("$DTXCTL" help | awk '/^  [a-z]/ {print $1}')
is "$(undocumented man1/dtxctl.1 $cmds)" none "dtxctl(1) documents every command of dtxctl help ($(echo $cmds))"

# --- the library through pkg-config --------------------------------------------------
cat >"$T/prog.c" <<'C'
#include <dtx.h>
#include <stdio.h>
int main(void)
{
	dtx_client_t *c = dtx_client_new("ipc:///nonexistent/dtx.sock");
	printf("%s\n", dtx_strerror(DTX_ESHUTDOWN));
	dtx_client_destroy(&c);
	return 0;
}
C
flags=$(PKG_CONFIG_SYSROOT_DIR=$ROOT PKG_CONFIG_PATH=$ROOT$libdir/pkgconfig pkg-config --cflags --libs libdtx)
cc -o "$T/prog" "$T/prog.c" $flags >"$T/cc.log" 2>&1
ok $? "a program builds against the installed dtx.h and libdtx ($flags)"
is "$(LD_LIBRARY_PATH=$ROOT$libdir "$T/prog" 2>&1)" "coordinator shutting down" "... and runs with it"

$MAKE -s -C "$top_builddir" uninstall DESTDIR="$ROOT" >>"$T/install.log" 2>&1
is "$?" 0 "make uninstall succeeds"
is "$(find "$ROOT" -type f | sed "s|^$ROOT||" | tr '\n' ' ')" "" "... and leaves no file behind"
done_testing
