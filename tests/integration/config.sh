#!/usr/bin/env bash
# Configuration files: the samples pass; bad ones are refused with
# file:line and the reason, before anything starts.
set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
n=0 failed=0
check() { # check NAME PROGRAM CONF-TEXT EXPECTED-EXIT PATTERN
	local f out rc
	f=$(mktemp /tmp/dtx-conf.XXXXXX)
	printf '%b' "$3" >"$f"
	out=$("$top_builddir/$2" -c "$f" --check-config 2>&1); rc=$?
	n=$((n + 1))
	if [ "$rc" = "$4" ] && printf '%s' "$out" | grep -qE -- "${5//FILE/$f}"; then
		echo "ok $n - $1"
	else
		echo "not ok $n - $1"; echo "#   exit $rc: $out"; failed=$((failed + 1))
	fi
	rm -f "$f"
}
C=coordinatord/coordinatord
A=participants/dtx-pgagent
check "the sample coordinatord.conf passes" $C "$(cat "$top_srcdir/etc/coordinatord.conf")" 0 ': ok$'
check "the sample dtx-pgagent.conf passes" $A "$(cat "$top_srcdir/etc/dtx-pgagent.conf")" 0 ': ok$'
check "an unknown key is refused with its line" $C '[coordinator]\nid = c1\nparticipants = a\ncolour = blue\n' 1 "FILE:4: unknown key 'colour'"
check "a value out of range is refused with its bounds" $C '[coordinator]\nid = c1\nparticipants = a\nheartbeat_ms = 5\n' 1 "FILE:4: 'heartbeat_ms': '5' is not a whole number from 50 to 600000"
check "a bad coordinator id is refused" $C '[coordinator]\nid = c.1\nparticipants = a\n' 1 "FILE:2: 'id': 1-32 characters"
check "a bad participant name is refused" $C '[coordinator]\nid = c1\nparticipants = shop, b@nk\n' 1 "FILE:3: 'participants': names are"
check "an unknown section is refused at its line" $C '[coordinator]\nid = c1\n[extra]\nx = 1\n' 1 "FILE:3: unknown section \\[extra\\]"
check "a missing id is refused" $C '[coordinator]\nparticipants = a\n' 1 "FILE:0: 'id' is required"
check "the first of several errors is the one reported" $C '[coordinator]\nid = c1\nfoo = 1\nbar = 2\n' 1 "FILE:3: unknown key 'foo'"
check "a line that is not key = value is refused" $C '[coordinator]\nid = c1\nthis is not ini\n' 1 "FILE:3: syntax error"
check "an empty file is refused" $C '' 1 "FILE:0: 'id' is required"
check "an agent without conninfo is refused" $A '[agent]\nname = shop\n' 1 "FILE:0: 'conninfo' is required"
check "an agent pool of one is refused" $A '[agent]\nname = shop\nconninfo = dbname=x\npool_size = 1\n' 1 "FILE:4: 'pool_size': '1' is not a whole number from 2 to 256"
# Trust: a tcp:// endpoint without CURVE, [client] and [agent] sections.
H='[coordinator]\nid = c1\nparticipants = shop, bank\n'
K='rq!Pe0YHXK:^i]1fi9d%x{l0-4C[Q]Ez:zI2<o}x'
long=$(printf '#%0.s' $(seq 1 250))
check "a line longer than inih reads is refused at its line, not cut" $C "$H$long\n" 1 "FILE:4: line too long"
check "a tcp:// client endpoint without secret_key is refused" $C "${H}client_endpoint = tcp://127.0.0.1:7100\n" 1 "FILE:0: a tcp:// client or agent endpoint needs secret_key"
check "insecure = true lets a tcp:// endpoint without CURVE pass" $C "${H}agent_endpoint = tcp://127.0.0.1:7101\ninsecure = true\n" 0 ': ok$'
check "a client with neither key nor user is refused" $C "$H[client web]\nparticipants = shop\n" 1 "FILE:0: \\[client web\\] needs one of key"
check "a client without participants is refused at its section" $C "$H[client web]\nuser = root\n[client x]\n" 1 "FILE:6: 'participants' is required in \\[client web\\]"
check "a client naming a participant not allowed is refused" $C "$H[client web]\nuser = root\nparticipants = shop, mallory\n" 1 "participant 'mallory' is not in participants"
check "a client of an unknown user is refused" $C "$H[client web]\nuser = no-such-user-here\nparticipants = *\n" 1 "no such user 'no-such-user-here'"
check "a bad client key is refused" $C "$H[client web]\nkey = abc\nparticipants = *\n" 1 "FILE:5: 'key': a public key"
check "a client section twice is refused" $C "$H[client web]\nuser = root\nparticipants = *\n[client web]\n" 1 "FILE:7: \\[client web\\] appears twice"
check "an agent key for a name not allowed is refused" $C "$H[agent mallory]\nkey = $K\n" 1 "\\[agent mallory\\]: not in participants"
check "one key for two agents is refused" $C "$H[agent shop]\nkey = $K\n[agent bank]\nkey = $K\n" 1 "have the same key"
check "a good [client] and [agent] pass" $C "$H[client web]\nkey = $K\nparticipants = shop\nsql = false\nmax_inflight = 10\n[agent bank]\nkey = 0000000000000000000000000000000000000000\n" 0 ': ok$'
# a start, not a check: as root the daemon would refuse root first
as_user=()
[ "$(id -u)" -eq 0 ] && as_user=(setpriv --reuid=postgres --regid=postgres --clear-groups --)
out=$("${as_user[@]}" "$top_builddir/$C" -c /nonexistent/dtx.conf 2>&1); rc=$?
n=$((n + 1))
if [ $rc = 1 ] && [ "$out" = "coordinatord: /nonexistent/dtx.conf:0: cannot read the file" ]; then
	echo "ok $n - a missing file is refused"
else
	echo "not ok $n - a missing file is refused"; echo "#   exit $rc: $out"; failed=$((failed + 1))
fi
echo "1..$n"
[ "$failed" -eq 0 ]
