#!/usr/bin/env bash
# Branches the log cannot decide (from an epoch it never had) are kept as
# records of any number, GID and participant whole, and left to the
# operator; a GID that only looks like ours (not in dtx's canonical form)
# is not taken for one of ours, and nothing about it can stop the daemon.
. "$(dirname "$0")/lib.sh"
dtx_start_pg

# Prepared by hand before the agents start, so their first scan finds
# them: 20 canonical branches of an epoch the new log never had, and one
# 199-byte GID with dtx's prefix and zeros where the branch number goes.
q bank "CREATE TABLE marks (n int)"
for n in $(seq 1 20); do
	q bank "BEGIN; INSERT INTO marks VALUES ($n); PREPARE TRANSACTION 'dtx:c1:99:$n:0'" >/dev/null
done
long="dtx:c1:99:5:$(printf '0%.0s' $(seq 1 187))"
is "${#long}" 199 "the look-alike GID is 199 bytes"
q bank "BEGIN; INSERT INTO marks VALUES (0); PREPARE TRANSACTION '$long'" >/dev/null
is "$(prepared_count)" 21 "21 branches are prepared by hand"

dtx_start_coord || exit 1
for a in shop bank stock; do dtx_start_agent $a; done
wait_all_up
# in_doubt_bank [COMMAND]: the in-doubt branches of bank that COMMAND
# (list --state in-doubt, or status) reports, "GID pruned" a line
in_doubt_bank() {
	[ $# -gt 0 ] || set -- list --state in-doubt
	"$DTXCTL" --json "$@" |
		jq -r '.rows[] | select(.kind == "in_doubt" and .participant == "bank") | "\(.gid) \(.pruned)"'
}
listed() { [ "$(in_doubt_bank | wc -l)" -ge "$1" ]; }
wait_for 10 listed 20; ok $? "the coordinator lists the branches it cannot decide (waited for 20 in-doubt rows)"
rows=$(in_doubt_bank list --state in-doubt)
is "$(printf '%s\n' "$rows" | wc -l)" 20 "all 20 are listed, none dropped"
is "$(printf '%s\n' "$rows" | grep -cx 'dtx:c1:99:20:0 false')" 1 "each with its GID and participant whole"
is "$(printf '%s\n' "$rows" | grep -c '0000000')" 0 "the look-alike GID is not taken for a branch of ours"
like "$("$DTXCTL" list --state in-doubt)" 'dtx:c1:99:20:0@bank +in-doubt +branch from an epoch this log never had' \
	"... one line each for a person"
is "$(in_doubt_bank status | grep -c '^dtx:c1:99:[0-9]*:0 false$')" 20 \
	"status shows the 20 with why they are in doubt (an epoch unknown to the log)"

out=$("$DTXCTL" --json resolve c1.99.5 --commit 2>&1); rc=$?
is "$rc" 0 "resolving the transaction the look-alike claims to belong to works"
is "$(jq -r '.rows[] | select(.kind == "action") | "\(.gid) \(.verb) \(.participant) \(.sent)"' <<<"$out")" \
	'dtx:c1:99:5:0 commit bank true' "... and decides only the real branch"
"$DTXCTL" --wait 2000 status >/dev/null; ok $? "the coordinator is still up"
committed() { [ "$(q bank "SELECT count(*) FROM marks WHERE n = 5")" = 1 ]; }
wait_for 10 committed; ok $? "the branch is committed in bank (waited for its row)"
is "$(q bank "SELECT count(*) FROM pg_prepared_xacts WHERE gid = '$long'")" 1 \
	"the look-alike stays prepared: it is nobody's to decide here"
out=$("$DTXCTL" resolve c1.99.17 --abort 2>&1); rc=$?
is "$rc" 0 "the 17th branch can be resolved too"
branch17_gone() { [ "$(q bank "SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'dtx:c1:99:17:0'")" = 0 ]; }
wait_for 10 branch17_gone; ok $? "it is rolled back (waited for it to leave pg_prepared_xacts)"
is "$(in_doubt_bank | wc -l)" 18 "18 are left to the operator"

is "$(grep -c 'not a dtx GID: left alone' "$T/agent-bank.log")" 1 "the agent's scan leaves the look-alike out, saying so once"
kill_wait "$COORD_PID"
dtx_start_coord || exit 1
wait_for 10 participant_up bank || { echo "Bail out! agent bank did not register again"; exit 1; }
rescanned() { [ "$(grep -c 'prepared branches of coordinator c1 found' "$T/agent-bank.log")" -ge 2 ]; }
wait_for 10 rescanned; ok $? "the agent scans again after the coordinator restarts (waited for its second scan)"
is "$(grep -c 'not a dtx GID: left alone' "$T/agent-bank.log")" 1 "... and does not say it again"

# Clean up what the test made by hand.
for n in $(seq 1 20); do q bank "ROLLBACK PREPARED 'dtx:c1:99:$n:0'" >/dev/null 2>&1; done
q bank "ROLLBACK PREPARED '$long'" >/dev/null
done_testing
