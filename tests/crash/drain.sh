#!/usr/bin/env bash
# I6: how long the in-doubt backlog takes to drain after a coordinator
# restart with N (default 10000) transactions in flight, each with a branch
# prepared in PostgreSQL. Not part of make check (it needs a PostgreSQL with
# room for N prepared transactions); run: bash tests/crash/drain.sh [N]
. "$(dirname "$0")/../integration/lib.sh"
N=${1:-10000}
PG_MAX_PREPARED=$((N + 100))
DTX_TEST_TIMEOUT_MS=60000
DTX_TEST_COORD_HEARTBEAT_MS=60000 # the frozen agent must not be marked down
dtx_start_pg
dtx_start_coord || exit 1
for a in shop bank stock; do dtx_start_agent $a; done
for a in shop bank stock; do wait_or_bail 10 participant_up $a; done

# Each transaction: a transfer between account i of shop and of stock,
# which is frozen: shop prepares, stock never votes, nothing is decided.
for db in shop stock; do
	q $db "CREATE TABLE bench_accounts (id int PRIMARY KEY, balance bigint NOT NULL);
		INSERT INTO bench_accounts SELECT i, 0 FROM generate_series(1, $N) i"
done
kill -STOP "${AGENT_PID[stock]}"
"$top_builddir/tools/dtxbench" -e "$DTX_CLIENT" -w transfer --dbs shop,stock --timeout 60000 \
	--fire "$N" -s 600 &
bench=$!
ALL_PIDS+=("$bench")
prepared_shop() { [ "$(q postgres "SELECT count(*) FROM pg_prepared_xacts WHERE database = 'shop'")" -ge "$N" ]; }
t0=$(date +%s%N)
wait_for 300 prepared_shop || { echo "only $(prepared_count) prepared"; exit 1; }
echo "# $N branches prepared in shop in $((($(date +%s%N) - t0) / 1000000)) ms; $("$DTXCTL" status | grep 'in flight')"
sleep 0.1 # the begin records are on disk within lazy_flush_ms
kill_wait "$COORD_PID" KILL
kill_wait "${AGENT_PID[stock]}" KILL
kill_wait "$bench" KILL

t0=$(date +%s%N)
dtx_start_coord || exit 1
t_up=$(($(date +%s%N) - t0))
dtx_start_agent stock
quiescent() { no_prepared_left && none_in_flight --wait 5000; }
wait_for 600 quiescent; rc=$?
t_done=$(($(date +%s%N) - t0))
echo "# $(grep -o 'recovered [0-9]* unfinished transactions' "$T/coord.log")"
echo "# coordinator serving after $((t_up / 1000000)) ms (recovery of the log included)"
echo "# backlog drained (nothing prepared, nothing in flight) after $((t_done / 1000000)) ms"
ok $rc "the backlog of $N in-doubt transactions drains"
done_testing
