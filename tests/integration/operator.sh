#!/usr/bin/env bash
# What recovery cannot finish alone: branches resolved outside dtx are
# reported as heuristic outcomes, never as success; branches from an epoch
# the log never had are left in doubt for the operator; the operator's
# resolve and forget are logged with who did them and refuse to contradict
# a logged decision unless forced. Also: a second coordinatord on the same
# log, and max_prepared_transactions exhausted.
. "$(dirname "$0")/lib.sh"
# Begin records on disk before any crash point below: a transaction the log
# never heard of has no participants to ask, so a branch of it resolved by
# hand could not be detected (presumed abort answers only who asks).
DTX_TEST_LAZY_FLUSH_MS=0
dtx_start_pg

restart_coord() { kill_wait "$COORD_PID" KILL; dtx_start_coord "$@" || bail "coordinatord did not start"; for a in shop bank stock; do wait_or_bail 10 participant_up $a; done; }
bank_gid() { q postgres "SELECT gid FROM pg_prepared_xacts WHERE database = 'bank'"; }
# coord_died_at POINT: the coordinator exits 99 at its armed crash point.
coord_died_at() {
	local rc
	wait_exit 30 "$COORD_PID"; rc=$?
	COORD_PID=
	is "$rc" 99 "coordinatord died at crash point $1 (exit 99)"
	[ "$rc" = 99 ] || bail "the cases below need the crash at $1"
}

dtx_start_coord DTX_CRASH=crd.commit_logged || exit 1
for a in shop bank stock; do dtx_start_agent $a; done
for a in shop bank stock; do wait_or_bail 10 participant_up $a; done

# --- COMMIT logged, one branch rolled back behind dtx's back ---------------
place_order h1 alice widget 1 --wait 2000 >/dev/null 2>&1
coord_died_at crd.commit_logged
gid=$(bank_gid)
q bank "ROLLBACK PREPARED '$gid'"
dtx_start_coord || exit 1
wait_for 10 no_prepared_left; ok $? "the re-driven commit ends every branch"
gtid=$(ctl_get transaction gtid list | head -1)
out=$("$DTXCTL" query "$gtid"); rc=$?
is "$rc" 4 "a client asking is told heuristic (exit 4), not committed"
like "$out" "^$gtid heuristic" "query says heuristic"
like "$(show_records "$gtid" heuristic note)" "^bank: $gid was rolled back outside dtx" \
	"show names the branch and what happened to it"
like "$("$DTXCTL" show "$gtid")" "heuristic +bank: $gid was rolled back outside dtx" "... in its prose too"
is "$(ctl_get log heuristic status)" 1 "status counts the heuristic outcome"
like "$("$DTXCTL" status)" 'heuristic outcomes in the log: 1 \(dtxctl list --state heuristic\)' \
	"... and tells the operator where to look"
is "$(ctl_get transaction gtid list --state heuristic)" "$gtid" "list --state heuristic shows it"
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 'h1'")" 1 "shop committed as decided"

# --- no decision logged, one branch committed behind dtx's back -------------
# Only a transaction whose begin record is on disk can be found out: its
# records are lazy, and on a busy machine the votes can come in (and the
# crash point be reached) before the group commit holding them returns. So
# stock is held back from voting until a query (which flushes the log
# first) has seen the transaction, and its begin record is in the log.
restart_coord DTX_CRASH=crd.votes_in
kill -STOP "${AGENT_PID[stock]}"
place_order h2 alice widget 1 --wait 5000 >/dev/null 2>&1 &
client=$!
preparing() { [ -n "$(ctl_get transaction gtid list --state preparing | head -1)" ]; }
wait_ok 10 "h2 waits for the frozen stock's vote" preparing
gtid=$(ctl_get transaction gtid list --state preparing | head -1)
"$DTXCTL" query "$gtid" >/dev/null; is "$?" 6 "h2 is not decided yet; the query put its records on disk"
is "$(show_records "$gtid" active participants)" shop,bank,stock "h2's begin record is in the log"
kill -CONT "${AGENT_PID[stock]}"
coord_died_at crd.votes_in
wait_exit 30 "$client" >/dev/null
gid=$(bank_gid)
like "$gid" "^dtx:${gtid//./:}:" "bank's branch of h2 is prepared"
q bank "COMMIT PREPARED '$gid'"
dtx_start_coord || exit 1
wait_for 10 no_prepared_left; ok $? "presumed abort ends every branch"
# bank's branch is gone already: its heuristic answer comes with its ACK
heuristic_h2() { ctl_get transaction gtid list --state heuristic | grep -qxF "$gtid"; }
wait_ok 10 "h2 is listed as heuristic" heuristic_h2
like "$(show_records "$gtid" heuristic note)" "^bank: $gid was committed outside dtx" \
	"a branch committed outside dtx against an abort is reported as heuristic"
"$DTXCTL" query "$gtid" >/dev/null; is "$?" 4 "and queried as heuristic"

# --- a branch from an epoch this log never had ------------------------------
# (and a marker table from before its BRIN index: the agent cannot add the
# index while a prepared branch holds the table, and must not wait for it)
q shop "DROP INDEX dtx.branches_created"
q shop "BEGIN; INSERT INTO orders VALUES ('ghost', 'mallory', 'widget', 1, 1);
	INSERT INTO dtx.branches (gid) VALUES ('dtx:c1:99:5:0'); PREPARE TRANSACTION 'dtx:c1:99:5:0'"
# Marker rows older than marker_retention_s (7 days) are pruned by the scan
# after the agent's hello; one is made older, one is not.
old_marker_gone() { [ "$(q shop "SELECT count(*) FROM dtx.branches WHERE gid = 'dtx:c1:1:1:9'")" = 0 ]; }
q shop "INSERT INTO dtx.branches VALUES ('dtx:c1:1:1:9', now() - interval '8 days'),
	('dtx:c1:1:2:9', now() - interval '6 days')"
seen=$(registrations shop)
kill_wait "${AGENT_PID[shop]}" KILL
dtx_start_agent shop
wait_registered shop "$seen"
like "$(cat "$T/agent-shop.log")" 'index dtx.branches_created or dtx.barrier_created not made: prepared branches hold' \
	"the restarted agent goes on without the index, and says why"
wait_ok 5 "the old marker row is pruned" old_marker_gone
is "$(q shop "SELECT string_agg(gid, ',') FROM dtx.branches WHERE gid LIKE 'dtx:c1:1:_:9'")" \
	dtx:c1:1:2:9 "the agent pruned the marker row older than marker_retention_s, not the younger one"
# in_doubt_shown PRUNED: status reports a branch in doubt, of a pruned
# transaction (true) or from an unknown epoch (false)
in_doubt_shown() {
	"$DTXCTL" --json status | jq -e --argjson p "$1" 'any(.rows[]; .kind == "in_doubt" and .pruned == $p)' >/dev/null
}
wait_ok 5 "status reports a branch in doubt" in_doubt_shown false
is "$(ctl_rows in_doubt status)" '{"kind":"in_doubt","gid":"dtx:c1:99:5:0","participant":"shop","pruned":false}' \
	"status shows the branch from an unknown epoch as in doubt"
like "$("$DTXCTL" status)" 'in doubt \(epoch unknown to this log\): dtx:c1:99:5:0@shop' "... and says so for a person"
is "$(ctl_rows in_doubt list --state in-doubt)" \
	'{"kind":"in_doubt","gid":"dtx:c1:99:5:0","participant":"shop","pruned":false}' "list --state in-doubt shows it"
like "$("$DTXCTL" list --state in-doubt)" '^dtx:c1:99:5:0@shop +in-doubt +branch from an epoch this log never had' \
	"... as a line for a person"
sleep 1
is "$(prepared_count)" 1 "nothing was presumed: the branch is still prepared"
out=$("$DTXCTL" --json resolve c1.99.5 --abort); rc=$?
is "$rc" 0 "the operator resolves it"
is "$(echo "$out" | jq -c '.rows')" '[{"kind":"action","gid":"dtx:c1:99:5:0","participant":"shop","verb":"abort","sent":true}]' \
	"resolve says where the decision went"
wait_for 5 no_prepared_left; ok $? "the branch is rolled back"
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 'ghost'")" 0 "its row never became visible"
like "$(grep 'dtx:c1:99:5:0' "$T/coord.log" | tail -1)" 'operator uid [0-9]+ \(.*\): resolve abort' "the act is logged with who did it"

# --- resolve an undecided transaction ---------------------------------------
kill -STOP "${AGENT_PID[stock]}"
out=$(place_order h3 alice widget 1 --timeout 30000 2>&1) &
client=$!
wait_ok 5 "h3 waits for the frozen stock's vote" preparing
gtid=$(ctl_get transaction gtid list --state preparing | head -1)
out=$("$DTXCTL" query "$gtid"); rc=$?
is "$rc" 6 "a query of the undecided transaction exits 6 (not decided yet), not 1 (aborted)"
like "$out" "^$gtid active" "and says active"
out=$("$DTXCTL" resolve "$gtid" --abort); rc=$?
is "$rc" 0 "the operator aborts a transaction waiting for a frozen participant"
like "$out" "^$gtid: operator uid [0-9]+ \(.*\): resolve abort$" "... and is told what was logged"
wait_exit 60 "$client"; is "$?" 1 "the waiting client is told aborted"
kill -CONT "${AGENT_PID[stock]}"
wait_for 10 no_prepared_left; ok $? "every branch is rolled back"
like "$(show_records "$gtid" heuristic note)" "^operator uid [0-9]+ \(.*\): resolve abort$" "show lists the operator's act"

# --- a decided transaction that cannot finish: refuse to contradict, forget --
wait_or_bail 10 participant_up stock
seen=$(registrations stock)
kill_wait "${AGENT_PID[stock]}" KILL
dtx_start_agent stock DTX_CRASH=pga.decision_received
wait_registered stock "$seen"
out=$(place_order h4 alice widget 1); rc=$?
is "$rc" 0 "an order commits; stock's agent dies before applying it"
gtid=${out%% *}
stuck_listed() { ctl_get transaction gtid list --state stuck | grep -qxF "$gtid"; }
wait_ok 5 "after stuck_after_ms it is listed as stuck" stuck_listed
is "$(ctl_get transaction state list --state stuck)" committing "... committing"
is "$(ctl_get transaction waiting list --state stuck)" stock "... waiting for stock"
like "$("$DTXCTL" list --state stuck)" "^$gtid +committing +decided [0-9]+ s ago, waiting for stock$" \
	"... as a line for a person"
out=$("$DTXCTL" resolve "$gtid" --abort 2>&1); rc=$?
is "$rc" 3 "aborting it against the logged COMMIT is refused"
like "$out" 'the log holds COMMIT for it; --force contradicts it' "with the reason"
out=$("$DTXCTL" --json forget "$gtid"); rc=$?
is "$rc" 0 "the operator forgets it"
is "$(echo "$out" | jq -r '.rows[] | select(.kind == "result") | .waiting | join(",")')" stock \
	"forget names the branches left unacknowledged"
is "$(in_flight)" 0 "nothing is in flight any more"
like "$(show_records "$gtid" heuristic note)" 'forgotten; unacknowledged: stock$' "show says what was left unacknowledged"
dtx_start_agent stock
wait_for 10 no_prepared_left; ok $? "when stock comes back, the log's COMMIT still reaches its branch"
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 'h4'")" 1 "h4 is committed"

# --- a transaction retention has removed from the log ------------------------
DTX_TEST_RETENTION_S=1 write_coord_conf
restart_coord
out=$(place_order h6 alice widget 1); rc=$?
is "$rc" 0 "an order commits under a coordinator that keeps finished transactions 1 s"
gtid=${out%% *}
wait_ok 10 "h6 leaves nothing prepared" no_prepared_left
query_exits() { "$DTXCTL" query "$gtid" >/dev/null 2>&1; [ $? = "$1" ]; }
wait_for 10 query_exits 5
ok $? "once pruned, its query exits 5 (in doubt), not 1 (presumed abort): it committed"
like "$("$DTXCTL" query "$gtid")" "^$gtid in-doubt: not in the log: .* may have committed" "and says why"
# A branch of it reported prepared (say, a database restored from a backup)
# is left to the operator, not rolled back by presumed abort.
gid="dtx:${gtid//./:}:7"
q shop "BEGIN; INSERT INTO orders VALUES ('ghost2', 'mallory', 'widget', 1, 1); PREPARE TRANSACTION '$gid'"
seen=$(registrations shop)
kill_wait "${AGENT_PID[shop]}" KILL
dtx_start_agent shop
wait_registered shop "$seen"
wait_ok 5 "status reports the pruned transaction's branch in doubt" in_doubt_shown true
is "$(ctl_rows in_doubt status)" "{\"kind\":\"in_doubt\",\"gid\":\"$gid\",\"participant\":\"shop\",\"pruned\":true}" \
	"status shows the branch of the pruned transaction as in doubt"
like "$("$DTXCTL" status)" "in doubt \(pruned from this log: it may have committed\): $gid@shop" \
	"... and warns a person it may have committed"
sleep 1
is "$(prepared_count)" 1 "nothing was presumed: the branch is still prepared"
out=$("$DTXCTL" resolve "$gtid" --abort); rc=$?
is "$rc" 0 "the operator resolves it"
wait_for 5 no_prepared_left; ok $? "the branch is rolled back"
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 'ghost2'")" 0 "its row never became visible"

# --- a second coordinator on the same log -------------------------------------
out=$(as_daemon "$COORDINATORD" -c "$T/coord.conf" 2>&1); rc=$?
is "$rc" 1 "a second coordinatord on the same log refuses to start"
like "$out" 'held by another process' "saying the log is held"
kill -0 "$COORD_PID"; ok $? "the first one keeps running"

# --- max_prepared_transactions exhausted ----------------------------------------
pg_stop_fast # after an immediate stop, WAL replay would re-prepare more than 2
pg_start_again 2
out=$(place_order h5 alice widget 1 --timeout 10000); rc=$?
is "$rc" 1 "with room for 2 prepared transactions a 3-branch order aborts"
like "$out" 'voted no: prepare failed: maximum number of prepared transactions reached.*sqlstate 53200' \
	"a NO vote with PostgreSQL's SQLSTATE 53200, not a hang"
wait_for 10 no_prepared_left; ok $? "the two prepared branches are rolled back"
done_testing
