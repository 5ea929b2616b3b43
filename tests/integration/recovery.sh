#!/usr/bin/env bash
# Crashes of coordinatord and of agents (named crash points: _exit at that
# line, like kill -9) and a plain kill -9; after each restart every
# transaction ends on all of its databases or on none, and nothing stays
# prepared.
. "$(dirname "$0")/lib.sh"
dtx_start_pg

balance() { q bank "SELECT balance FROM wallets WHERE customer = '$1'"; }
widgets() { q stock "SELECT qty FROM items WHERE item = 'widget'"; }

restart_coord() { # restart_coord [ENV...]
	kill_wait "$COORD_PID" KILL
	dtx_start_coord "$@"
	for a in shop bank stock; do wait_or_bail 10 participant_up $a; done
}
restart_agent() { # restart_agent NAME [ENV...]: returns once it registered
	local n=$1 seen
	shift
	kill_wait "${AGENT_PID[$n]}" KILL
	seen=$(registrations "$n")
	dtx_start_agent "$n" "$@"
	wait_registered "$n" "$seen"
}

# --- coordinator dies with COMMIT durable, before telling anyone ----------
dtx_start_coord DTX_CRASH=crd.commit_logged || exit 1
for a in shop bank stock; do dtx_start_agent $a; done
for a in shop bank stock; do wait_or_bail 10 participant_up $a; done
out=$(place_order r1 alice widget 1 --wait 3000 2>&1); rc=$?
is "$rc" 3 "the client gets no answer when the coordinator dies after logging COMMIT"
wait_exit 60 "$COORD_PID"; is "$?" 99 "coordinatord died at crash point crd.commit_logged"
is "$(prepared_count)" 3 "three branches are left prepared, in doubt"
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 'r1'")" 0 "nothing is visible yet"
COORD_PID=
dtx_start_coord || exit 1
wait_for 10 no_prepared_left; ok $? "after the restart every branch is resolved"
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 'r1'")" 1 "the order is committed in shop"
is "$(balance alice)" 90 "and in bank"
is "$(widgets)" 4 "and in stock"
gtid=$(ctl_get transaction gtid list --state committed | head -1)
out=$("$DTXCTL" query "$gtid"); is "$?" 0 "a client asking for $gtid is told committed"

# --- coordinator dies after COMMIT reached one participant ----------------
restart_coord DTX_CRASH=crd.commit_sent:1 || exit 1
out=$(place_order r2 alice widget 1 --wait 3000 2>&1)
wait_exit 60 "$COORD_PID"; is "$?" 99 "coordinatord died at crd.commit_sent after the first COMMIT"
COORD_PID=
dtx_start_coord || exit 1
wait_for 10 no_prepared_left; ok $? "the re-driven commit finishes on the other participants"
ok $([ "$(q shop "SELECT count(*) FROM orders WHERE ref = 'r2'")" = 1 ] && [ "$(balance alice)" = 80 ] && [ "$(widgets)" = 3 ] && echo 0 || echo 1) \
	"r2 is committed everywhere (the repeated COMMIT was answered from the marker row)"
ok $(grep -q 'heuristic' "$T/coord.log"; echo $((1 - $?))) "no heuristic outcome was reported"

# --- coordinator dies with every vote in, before the decision is logged ---
restart_coord DTX_CRASH=crd.votes_in || exit 1
out=$(place_order r3 alice widget 1 --wait 3000 2>&1)
wait_exit 60 "$COORD_PID"; is "$?" 99 "coordinatord died at crd.votes_in"
COORD_PID=
dtx_start_coord || exit 1
wait_for 10 no_prepared_left; ok $? "recovery presumes abort and rolls every branch back"
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 'r3'")" 0 "r3 is nowhere"
is "$(balance alice)" 80 "alice was not charged"

# --- kill -9 of the coordinator while a vote is outstanding ----------------
kill -STOP "${AGENT_PID[stock]}"
place_order r4 alice widget 1 --wait 2000 >/dev/null 2>&1 &
client=$!
wait_for 5 sh -c "[ \"\$($PGBIN/psql -X -h $PGSOCK -p $PGPORT -U postgres -d postgres -Atq -c \"SELECT count(*) FROM pg_prepared_xacts\")\" = 2 ]"
ok $? "shop and bank prepared while stock is frozen"
kill_wait "$COORD_PID" KILL
COORD_PID=
wait_exit 60 "$client"
dtx_start_coord || exit 1
kill -CONT "${AGENT_PID[stock]}"
wait_for 15 no_prepared_left; ok $? "after kill -9 and restart every branch is rolled back"
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 'r4'")" 0 "r4 is nowhere"
is "$(widgets)" 3 "stock is untouched"

# --- an agent dies holding a prepared branch, back before the timeout -----
# Its vote died with it: the branch it reports prepared counts as NO (the
# agent checks row counts after preparing; see the next section), and the
# order aborts as soon as it is reported, not at its timeout.
for a in shop bank stock; do wait_or_bail 10 participant_up $a; done
restart_agent bank DTX_CRASH=pga.prepared
start=$(date +%s)
out=$(place_order r5 alice widget 1 --timeout 30000 2>&1) &
client=$!
bank_pid=${AGENT_PID[bank]}
wait_for 10 sh -c "! kill -0 $bank_pid"; ok $? "the bank agent died at crash point pga.prepared"
dtx_start_agent bank
wait_exit 60 "$client"; is "$?" 1 "the restarted agent reports its prepared branch, unvoted: the order aborts"
ok $([ $(($(date +%s) - start)) -lt 25 ] && echo 0 || echo 1) "before its 30 s timeout"
wait_for 10 no_prepared_left; ok $? "nothing stays prepared"
ok $([ "$(q shop "SELECT count(*) FROM orders WHERE ref = 'r5'")" = 0 ] && [ "$(balance alice)" = 80 ] && [ "$(widgets)" = 3 ] && echo 0 || echo 1) \
	"r5 is nowhere"
like "$(grep 'prepared with no vote' "$T/coord.log")" "abort by bank: the branch was found prepared with no vote" \
	"the coordinator says why it aborted"

# --- an agent dies with a prepared branch whose row count is wrong ---------
# The bank agent prepares bob's payment in the same round trip as the
# UPDATE, which touched no row (bob has 20, the gadget costs 50), and dies
# before it checks. Had the prepared branch counted as a YES vote, the
# order would commit with bob never charged.
restart_agent bank DTX_CRASH=pga.work_back
out=$(place_order r5b bob gadget 1 --timeout 30000 2>&1) &
client=$!
bank_pid=${AGENT_PID[bank]}
wait_for 10 sh -c "! kill -0 $bank_pid"; ok $? "the bank agent died at crash point pga.work_back"
is "$(q postgres "SELECT count(*) FROM pg_prepared_xacts WHERE database = 'bank'")" 1 \
	"it left bob's payment prepared, touching no row"
dtx_start_agent bank
wait_exit 60 "$client"; is "$?" 1 "the order aborts"
wait_for 10 no_prepared_left; ok $? "nothing stays prepared"
ok $([ "$(q shop "SELECT count(*) FROM orders WHERE ref = 'r5b'")" = 0 ] && [ "$(balance bob)" = 20 ] &&
	[ "$(q stock "SELECT qty FROM items WHERE item = 'gadget'")" = 1 ] && echo 0 || echo 1) \
	"r5b is nowhere: no order, no gadget taken, bob not charged"

# --- an agent dies holding a prepared branch, back after the timeout ------
restart_agent bank DTX_CRASH=pga.prepared
out=$(place_order r6 alice widget 1 --timeout 1000 2>&1); rc=$?
is "$rc" 1 "without the bank's vote the order aborts at its timeout"
dtx_start_agent bank
wait_for 10 no_prepared_left; ok $? "the restarted agent's prepared branch is rolled back"
ok $([ "$(q shop "SELECT count(*) FROM orders WHERE ref = 'r6'")" = 0 ] && [ "$(balance alice)" = 80 ] && [ "$(widgets)" = 3 ] && echo 0 || echo 1) \
	"r6 is nowhere"

# --- an agent dies between receiving COMMIT and applying it ---------------
wait_or_bail 10 participant_up bank
restart_agent stock DTX_CRASH=pga.decision_received
out=$(place_order r7 alice widget 1); rc=$?
is "$rc" 0 "the order commits (the decision is durable before any agent hears it)"
stock_pid=${AGENT_PID[stock]}
wait_for 10 sh -c "! kill -0 $stock_pid"; ok $? "the stock agent died at pga.decision_received"
dtx_start_agent stock
wait_for 10 no_prepared_left; ok $? "the restarted agent applies the commit"
is "$(widgets)" 2 "stock took the widget"

is "$(in_flight)" 0 "nothing is left in flight in the coordinator"
done_testing
