#!/usr/bin/env bash
# Every configuration key the daemons read (their key tables, printed by
# tests/tools/dtx-confkeys) is documented: in the manual page, as a .B/.BR/.BI
# item of its own, marked "restart" there exactly when SIGHUP leaves it
# alone; and in the shipped sample file, as a "key = value" line.
set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
n=0 failed=0
ok() { # ok CONDITION-EXIT-CODE NAME
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
keys() { # keys DAEMON: "NAME KIND" lines, or a bail-out
	"$top_builddir/tests/tools/dtx-confkeys" "$1" ||
		{ echo "Bail out! dtx-confkeys $1 failed"; exit 1; }
}
check() { # check DAEMON MANPAGE SAMPLE
	local name kind item got=0
	while read -r name kind; do
		got=$((got + 1))
		# the item naming the key: ".B name", ".BR name ...", ".BI name ..."
		item=$(grep -E "^\.B[IR]? \"?$name\"?( |$)" "$top_srcdir/$2" | head -1)
		[ -n "$item" ]; ok $? "$1: $name is documented in $2"
		if [ "$kind" != start ]; then
			case $item in *restart*) marked=restart ;; *) marked=reload ;; esac
			[ "$marked" = "$kind" ]; ok $? "$1: $2 says $name takes effect at a $kind"
		fi
		grep -qE "^$name = " "$top_srcdir/$3"; ok $? "$1: $name is in $3"
	done < <(keys "$1")
	[ "$got" -gt 0 ]; ok $? "$1: the key table is not empty"
}
check coordinatord coordinatord/coordinatord.conf.5 etc/coordinatord.conf
check dtx-pgagent participants/dtx-pgagent.8 etc/dtx-pgagent.conf
echo "1..$n"
[ "$failed" -eq 0 ]
