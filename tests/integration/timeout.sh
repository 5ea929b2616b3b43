#!/usr/bin/env bash
# An agent that never answers: the transaction aborts at its timeout and
# the branches already prepared are rolled back. A participant that is down
# is refused at once. PostgreSQL down: NO votes, the daemon stays up.
. "$(dirname "$0")/lib.sh"
dtx_start_all

stock_pid=${AGENT_PID[stock]}
kill -STOP "$stock_pid"
t0=$(date +%s%N)
out=$(place_order t1 alice widget 1 --timeout 1000); rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
is "$rc" 1 "the order aborts when stock never votes"
like "$out" 'aborted: timed out waiting for the vote of stock' "the client is told whose vote was missing"
ok $([ "$ms" -ge 900 ] && [ "$ms" -lt 4000 ] && echo 0 || echo 1) "it aborted at its 1000 ms timeout (after $ms ms)"
wait_for 5 sh -c "[ \"\$($PGBIN/psql -X -h $PGSOCK -p $PGPORT -U postgres -d postgres -Atq -c \"SELECT count(*) FROM pg_prepared_xacts WHERE database IN ('shop','bank')\")\" = 0 ]"
ok $? "the prepared branches of shop and bank are rolled back"
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 't1'")" 0 "shop has no order t1"
is "$(q bank "SELECT balance FROM wallets WHERE customer = 'alice'")" 100 "alice's wallet is untouched"

stock_down() { [[ "$(participant_is stock)" == "false "* ]]; }
wait_for 5 stock_down
ok $? "the silent agent is marked down"
out=$(place_order t2 alice widget 1 2>&1); rc=$?
is "$rc" 3 "a transaction on a participant that is down is refused at once"
like "$out" "participant 'stock' is not connected" "... saying which one"

kill -CONT "$stock_pid"
wait_for 10 participant_up stock; ok $? "the agent comes back and registers again"
wait_for 10 no_prepared_left; ok $? "the late prepare on stock is rolled back: nothing left prepared"
is "$(q stock "SELECT qty FROM items WHERE item = 'widget'")" 5 "stock is untouched"
out=$(place_order t3 alice widget 1); rc=$?
is "$rc" 0 "the next order commits"

# --- a branch blocked on a lock held outside dtx -------------------------------
# The agent's lock_timeout (1000 ms here) turns the wait into a NO vote well
# before the transaction's own timeout (10 s).
"$PGBIN/psql" -X -h "$PGSOCK" -p "$PGPORT" -U postgres -d bank -q \
	-c "BEGIN; UPDATE wallets SET balance = balance WHERE customer = 'alice'; SELECT pg_sleep(4); COMMIT" >/dev/null &
locker=$!
sleep 0.5
t0=$(date +%s%N)
place_order t6 alice widget 1 --timeout 10000 >"$T/t6.out" 2>&1 &
t6=$!
sleep 0.2
# The agent's one loop drives all its connections: the blocked branch holds
# up no other branch of the same agent.
out=$("$DTXCTL" exec --on bank --sql "UPDATE wallets SET balance = balance WHERE customer = 'bob'" --expect 1); rc=$?
kill -0 "$t6" 2>/dev/null; blocked=$?
is "$rc $blocked" "0 0" "meanwhile a branch on bob's wallet commits through bank, while alice's still waits"
wait_exit 60 "$t6"; rc=$?
out=$(cat "$T/t6.out")
ms=$((($(date +%s%N) - t0) / 1000000))
is "$rc" 1 "an order whose bank branch waits on a lock aborts"
like "$out" 'bank voted no: .*lock timeout.*sqlstate 55P03' "bank votes no with SQLSTATE 55P03"
ok $([ "$ms" -lt 3000 ] && echo 0 || echo 1) "at the branch's lock timeout, not the global one ($ms ms)"
wait_exit 60 "$locker"
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 't6'")" 0 "shop has no order t6"

# --- a PREPARE that arrives after its transaction was aborted ---------------
# The stock agent holds its next PREPARE for 2.5 s (as a slow network would);
# the transaction times out at 1 s and is rolled back; the late PREPARE is
# then refused, not prepared.
seen=$(registrations stock)
kill_wait "${AGENT_PID[stock]}"
dtx_start_agent stock DTX_FAULT=delay:PREPARE:1:2500
wait_registered stock "$seen"
widgets=$(q stock "SELECT qty FROM items WHERE item = 'widget'")
out=$(place_order t7 alice widget 1 --timeout 1000); rc=$?
is "$rc" 1 "the order times out while stock's PREPARE is held"
wait_for 5 grep -q 'prepare refused: rolled back already' "$T/agent-stock.log"
ok $? "the late PREPARE is refused by the agent"
g=${out%% *}
is "$(q stock "SELECT count(*) FROM dtx.branches WHERE gid = 'dtx:${g//./:}:2'")" 0 \
	"stock never ran the branch of $g (no marker row)"
wait_for 5 no_prepared_left; ok $? "nothing is left prepared"
is "$(q stock "SELECT qty FROM items WHERE item = 'widget'")" "$widgets" "stock is unchanged"

# --- PostgreSQL down ---------------------------------------------------------
pg_stop_immediate
out=$(place_order t4 alice widget 1); rc=$?
is "$rc" 1 "with PostgreSQL down an order aborts"
like "$out" 'voted no: database unreachable.*sqlstate 08006' "the reason says the database is unreachable"
kill -0 "$COORD_PID" && kill -0 "${AGENT_PID[shop]}"; ok $? "daemon and agents stay up"
pg_start_again
out=$(place_order t5 alice widget 1); rc=$?
is "$rc" 0 "once PostgreSQL is back, orders commit again"
is "$(q shop "SELECT string_agg(ref, ',' ORDER BY ref) FROM orders")" "t3,t5" "exactly the committed orders exist"
wait_for 5 no_prepared_left; ok $? "no prepared branch is left after PostgreSQL's restart"

# --- SIGTERM while a branch runs -------------------------------------------
# The agent starts nothing new, lets the running branch finish and vote,
# and exits 0; the prepared branch is committed once an agent is back.
bob=$(q bank "SELECT balance FROM wallets WHERE customer = 'bob'")
"$DTXCTL" exec --timeout 10000 \
	--on shop --sql "INSERT INTO orders (ref, customer, item, qty, total) VALUES ('t7', 'bob', 'widget', 1, 10)" --expect 1 \
	--on bank --sql "UPDATE wallets SET balance = balance + length(pg_sleep(1.5)::text) WHERE customer = 'bob'" --expect 1 \
	>"$T/t7.out" 2>&1 &
t7=$!
sleep 0.5
t0=$(date +%s%N)
kill -TERM "${AGENT_PID[bank]}"; wait_exit 60 "${AGENT_PID[bank]}"; rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
is "$rc" 0 "the agent stopped by SIGTERM during a branch exits 0"
ok $([ "$ms" -lt 4500 ] && echo 0 || echo 1) "... once the branch finished, not at the 5 s limit ($ms ms)"
wait_exit 60 "$t7"; rc=$?
is "$rc" 0 "the branch's vote reached the coordinator: the order commits"
is "$(prepared_count)" 1 "bank's branch stays prepared while no agent runs"
dtx_start_agent bank PGCONNECT_TIMEOUT=2
wait_for 10 no_prepared_left; ok $? "the restarted agent commits it"
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 't7'") $(q bank "SELECT balance FROM wallets WHERE customer = 'bob'")" \
	"1 $bob" "order t7 exists; bob's balance is as before"

# --- PostgreSQL takes connections but never answers them ---------------------
# With the postmaster frozen a new connection hangs in its start-up. The
# agent (libpq's connect_timeout, 2 s here from PGCONNECT_TIMEOUT) gives up
# and votes no, rather than leaving the branch to the transaction's timeout.
q bank "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
	WHERE datname = 'bank' AND pid <> pg_backend_pid()" >/dev/null
pm=$(head -1 "$T/pg/postmaster.pid")
kill -STOP "$pm"
t0=$(date +%s%N)
out=$("$DTXCTL" exec --timeout 8000 --on bank --sql "UPDATE wallets SET balance = balance WHERE customer = 'bob'" \
	--expect 1 --on shop --sql "SELECT 1" 2>&1); rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
kill -CONT "$pm"
is "$rc" 1 "with PostgreSQL not answering new connections the transaction aborts"
like "$out" 'bank voted no: database unreachable: cannot connect: connect_timeout expired' \
	"bank gave up connecting at its connect_timeout ($ms ms), not at the transaction's 8 s"
out=$(place_order t8 bob widget 1); rc=$?
is "$rc" 0 "once PostgreSQL answers again, orders commit"
wait_for 5 no_prepared_left; ok $? "nothing is left prepared"
done_testing
