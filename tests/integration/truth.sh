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
epoch=$(ctl_get coordinator epoch status)
out=$("$DTXCTL" query "c1.$epoch.999999999999" 2>&1); rc=$?
is "$rc" 1 "a well-formed GTID of this log's epoch ($epoch) never handed out is presumed aborted (exit 1)"
like "$out" "^c1\\.$epoch\\.999999999999 unknown" "... as 'unknown'"
out=$("$DTXCTL" query c1.1.99999 2>&1); rc=$?
is "$rc" 5 "one of an epoch this log never had (1) is in doubt (exit 5): it may be a lost log's"

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
wait_all_up
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

# Exactly-once submission: a TX sent again with a key the coordinator knows
# is answered with that transaction, never run twice: after it finished,
# after the client gave up waiting, across a coordinator crash.
kill_wait "$COORD_PID"
dtx_start_coord || exit 1
wait_all_up
bal() { q bank "SELECT balance FROM wallets WHERE customer = '$1'"; }
pay() { # pay KEY [dtxctl options]: two branches, bob pays 1 into alice's wallet
	local key=$1; shift
	"$DTXCTL" exec --key "$key" "$@" \
		--on bank --sql "UPDATE wallets SET balance = balance - 1 WHERE customer = 'bob'" --expect 1 \
		--on stock --sql "UPDATE items SET qty = qty WHERE item = 'widget'" --expect 1
}
b0=$(bal bob)
out=$(pay k1); rc=$?
is "$rc" 0 "a transaction with key k1 commits"
g=${out%% *}
out=$(pay k1); rc=$?
is "$rc" 0 "sent again with key k1, it is answered committed"
like "$out" "^$g committed" "... with the same GTID"
paid() { [ "$(bal bob)" = "$1" ]; }
wait_for 10 paid $((b0 - 1)); ok $? "bob paid once (waited for his balance to be $((b0 - 1)))"
out=$(pay k1); rc=$?
like "$out" "^$g committed: submitted before with this key" "once it is finished, the log answers for the key"
is "$(bal bob)" $((b0 - 1)) "... and bob still paid once"
out=$("$DTXCTL" exec --key 'bad key' --on bank --sql "SELECT 1" 2>&1); rc=$?
is "$rc" 2 "a key with a space is refused by dtxctl"

# The client gives up while bank's agent is frozen: it still learns the GTID.
kill -STOP "${AGENT_PID[bank]}"
out=$(pay k2 --timeout 60000 --wait 500 2>&1); rc=$?
is "$rc" 3 "the client gives up waiting (exit 3)"
g2=$(printf '%s' "$out" | sed -n 's/^dtxctl: \([^:]*\): its outcome: .*/\1/p')
like "$g2" '^c1\.[0-9]+\.[0-9]+$' "... and was told the GTID the coordinator gave ($g2)"
out=$(pay k2 --wait 500 2>&1); rc=$?
is "$rc" 3 "sent again while it is undecided, the client waits for the same transaction"
like "$out" "dtxctl: $g2: its outcome" "... the same GTID ($g2), not a new one"
# The coordinator dies with it undecided; the key is in its begin record.
"$DTXCTL" status >/dev/null # flushes the lazy begin record
kill_wait "$COORD_PID" KILL
kill -CONT "${AGENT_PID[bank]}"
dtx_start_coord || exit 1
wait_all_up
wait_for 10 query_decided "$g2"; ok $? "recovery finishes $g2 (waited for query to leave 'not decided')"
wait_for 10 no_prepared_left; ok $? "... and its phase two (waited for no prepared branch)"
b1=$(bal bob)
out=$(pay k2); rc=$?
like "$out" "^$g2 (committed|aborted)" "sent again after the crash, it is answered with $g2"
is "$(bal bob)" "$b1" "... and not run again"
is "$(q bank "SELECT count(*) FROM dtx.branches WHERE gid LIKE 'dtx:${g2//./:}:%'")" \
	"$([ "$rc" = 0 ] && echo 1 || echo 0)" "... its outcome is what bank holds"
out=$(pay k3); rc=$?
is "$rc" 0 "a new key runs a new transaction"
wait_for 10 paid $((b1 - 1)); ok $? "... once (waited for bob's balance to be $((b1 - 1)))"
done_testing
