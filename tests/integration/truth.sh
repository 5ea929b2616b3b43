#!/usr/bin/env bash
# Every answer is the truth: a QUERY of something that is not one of our
# GTIDs is an error, never "unknown" (which means presumed aborted); a
# refused frame echoes the request id it carried; an OUTCOME's text never
# contradicts its code.
. "$(dirname "$0")/lib.sh"
dtx_start_all

out=$("$DTXCTL" query hello 2>&1); rc=$?
is "$rc" 3 "query of a malformed GTID fails (exit 3), it is not 'unknown'"
like "$out" "malformed GTID 'hello'" "... saying the GTID is malformed"
out=$("$DTXCTL" query zz.1.1 2>&1); rc=$?
is "$rc" 3 "query of another coordinator's GTID fails"
like "$out" "belongs to coordinator 'zz'; this is 'c1'" "... saying whose it is"
out=$("$DTXCTL" query c1.1.0007 2>&1); rc=$?
is "$rc" 3 "a GTID with leading zeros is not taken for c1.1.7"
out=$("$DTXCTL" query c1.1.99999 2>&1); rc=$?
is "$rc" 1 "a well-formed GTID of ours never handed out is presumed aborted (exit 1)"
like "$out" '^c1\.1\.99999 unknown' "... as 'unknown'"

# {"v":1,"t":"TX","id":7,"xx":1} and {"v":1,"t":"QUERY","id":9,"gtid":1}
out=$("$RAWFRAME" "$DTX_CLIENT" "84a17601a174a25458a2696407a2787801")
like "$out" '^ERROR -3 .*\[id 7\]$' "a TX refused by the decoder echoes its id"
out=$("$RAWFRAME" "$DTX_CLIENT" "84a17601a174a55155455259a2696409a46774696401")
like "$out" '^ERROR -3 .*\[id 9\]$' "a QUERY refused by the decoder echoes its id"
out=$("$RAWFRAME" "$DTX_CLIENT" "c1c1c1")
like "$out" '^ERROR -3 [^[]*$' "garbage, with no id to read, is refused without one"

# A one-phase vote lost: the coordinator asks the agent, and the text it
# gives the client is the answer's, not a guess written before it.
kill_wait "$COORD_PID"
dtx_start_coord DTX_FAULT=drop:VOTE:1 || exit 1
for a in shop bank stock; do
	wait_for 10 participant_up $a || { echo "Bail out! agent $a did not register again"; exit 1; }
done
out=$("$DTXCTL" exec --timeout 1000 --on shop --sql "INSERT INTO orders VALUES ('t1', 'alice', 'widget', 1, 10)" --expect 1); rc=$?
is "$rc" 0 "its vote lost, a one-phase branch that committed is reported committed"
like "$out" 'committed: timed out waiting for the vote; the only participant committed its branch' \
	"... with a text that says so"
is "$(printf '%s' "$out" | grep -c 'rolled')" 0 "... and nothing about a rollback"
out=$("$DTXCTL" exec --timeout 1000 --on shop --sql "INSERT INTO orders VALUES ('t1', 'bob', 'widget', 1, 10)"); rc=$?
is "$rc" 1 "its vote lost, a one-phase branch that failed is reported aborted"
like "$out" 'aborted: timed out waiting for the vote; the only participant rolled its branch back' \
	"... saying the participant rolled it back"
kill -0 "$COORD_PID"; ok $? "coordinatord is still running"
done_testing
