#!/usr/bin/env bash
# One participant, one phase: the agent commits instead of preparing and
# the coordinator forces only its begin record (before the PREPARE leaves,
# so that no crash can make the log contradict what the client heard).
# When the vote is lost the coordinator
# asks the agent which way the branch went and tells the client that, not
# a presumed abort. A coordinator crash before the vote: recovery asks too.
. "$(dirname "$0")/lib.sh"
dtx_start_all

decisions() { ctl_get group_commits decisions status; }
records() { ctl_get record state show "$1" | tr '\n' ' '; }

d0=$(decisions)
out=$("$DTXCTL" exec --on shop --sql "INSERT INTO orders VALUES ('p1', 'alice', 'widget', 1, 10)" --expect 1); rc=$?
is "$rc" 0 "a one-branch transaction commits"
g1=${out%% *}
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 'p1'")" 1 "its row is there"
is "$(records "$g1")" "active preparing committed " "logged without a commit decision"
is "$(decisions)" "$d0" "no commit decision was forced for it"
is "$(q shop "SELECT count(*) FROM dtx.branches WHERE gid = 'dtx:${g1//./:}:0'")" 1 \
	"the branch left its marker row, committed with it"
no_prepared_left; ok $? "nothing was prepared"

out=$("$DTXCTL" exec --on bank --sql "UPDATE wallets SET balance = balance - 1000 WHERE customer = 'bob' AND balance >= 1000" --expect 1); rc=$?
is "$rc" 1 "a one-branch transaction whose statement touches no row aborts"
like "$out" 'bank voted no: statement 1 touched 0 rows' "with the agent's reason"

# Lost votes: the coordinator drops every VOTE it receives.
kill_wait "$COORD_PID"
dtx_start_coord DTX_FAULT=drop:VOTE:1
for a in shop bank stock; do wait_or_bail 10 participant_up $a; done
out=$("$DTXCTL" exec --timeout 1000 --on shop --sql "INSERT INTO orders VALUES ('p2', 'alice', 'widget', 1, 10)" --expect 1); rc=$?
is "$rc" 0 "its vote lost, a one-phase branch that committed is reported committed"
g2=${out%% *}
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 'p2'")" 1 "(it did commit)"
like "$(grep "$g2" "$T/coord.log" | tr '\n' ' ')" 'asking shop which way it went.*one phase, committed' \
	"the coordinator asked the agent rather than presume"
out=$("$DTXCTL" exec --timeout 1000 --on shop --sql "INSERT INTO orders VALUES ('p2', 'bob', 'widget', 1, 10)"); rc=$?
is "$rc" 1 "its vote lost, a one-phase branch that failed is reported aborted"
like "$out" 'rolled its branch back' "... saying the participant rolled it back"
"$DTXCTL" query "$g2" >/dev/null; is "$?" 0 "the outcome query agrees: committed"
is "$(ctl_count transaction list --state heuristic)" 0 "no heuristic outcome is reported"

# A coordinator crash while the vote is outstanding (the agent frozen with
# the PREPARE in its socket, the begin record on disk): recovery does not
# presume abort but asks the agent.
kill_wait "$COORD_PID"
dtx_start_coord
for a in shop bank stock; do wait_or_bail 10 participant_up $a; done
kill -STOP "${AGENT_PID[shop]}"
"$DTXCTL" exec --wait 300 --on shop --sql "INSERT INTO orders VALUES ('p3', 'alice', 'widget', 1, 10)" --expect 1 >/dev/null 2>&1
kill_wait "$COORD_PID" KILL
kill -CONT "${AGENT_PID[shop]}"
dtx_start_coord
wait_for 10 none_in_flight; ok $? "recovery finishes the transaction"
g3=$(grep -o 'c1\.[0-9]*\.[0-9]*: recovered one-phase' "$T/coord.log" | tail -1 | cut -d: -f1)
like "$g3" '^c1\.' "recovery found it undecided and asked its participant"
is "$("$DTXCTL" query "$g3" | awk '{print $2}')" \
	"$([ "$(q shop "SELECT count(*) FROM orders WHERE ref = 'p3'")" = 1 ] && echo committed || echo aborted)" \
	"its logged outcome is what the database holds"
is "$(ctl_count transaction list --state heuristic)" 0 "no heuristic outcome is reported"
no_prepared_left; ok $? "nothing is left prepared"

# The begin record is on disk before the PREPARE leaves. With lazy records
# held for 5 s, a coordinator killed right after its client heard
# "committed" has written nothing lazy; recovery must still know the
# transaction and find it committed, never presume it aborted.
kill_wait "$COORD_PID"
sed -i 's/^lazy_flush_ms = .*/lazy_flush_ms = 5000/' "$T/coord.conf"
dtx_start_coord || exit 1
wait_all_up
out=$("$DTXCTL" exec --on shop --sql "INSERT INTO orders VALUES ('p4', 'alice', 'widget', 1, 10)" --expect 1); rc=$?
is "$rc" 0 "a one-phase transaction commits with lazy records held back"
g4=${out%% *}
kill_wait "$COORD_PID" KILL
sed -i 's/^lazy_flush_ms = .*/lazy_flush_ms = 5/' "$T/coord.conf"
dtx_start_coord || exit 1
wait_for 10 query_decided "$g4"; ok $? "after the crash its outcome is decided again (waited for: query $g4 to leave 'not decided')"
out=$("$DTXCTL" query "$g4"); rc=$?
is "$rc" 0 "the client was told committed, and the log agrees after the crash"
like "$out" "^$g4 committed" "... query says committed, not presumed aborted"
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 'p4'")" 1 "(its row is there)"
done_testing
