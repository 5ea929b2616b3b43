#!/usr/bin/env bash
# How a backlog of N (default 10000) unfinished sagas fares: the
# coordinator's memory with them in flight, then, after kill -9, how soon
# it serves again and how long the backlog takes to drain. Each saga
# (dtxbench -w saga) reserves on stock, then waits at its pivot on bank,
# whose agent is frozen. Not part of make check; run:
# bash tests/crash/sagadrain.sh [N]
. "$(dirname "$0")/../integration/lib.sh"
N=${1:-10000}
DTX_TEST_TIMEOUT_MS=120000
DTX_TEST_COORD_HEARTBEAT_MS=60000 # the frozen agent must not be marked down
export DTX_TEST_COORD_EXTRA="max_inflight = $((N + 1000))
max_timeout_ms = 600000"
dtx_start_pg
for db in stock bank shop; do
	q $db "CREATE TABLE bench_accounts (id int PRIMARY KEY, balance bigint NOT NULL);
		INSERT INTO bench_accounts SELECT i, 1000000 FROM generate_series(1, $N) i"
done
dtx_start_coord || exit 1
for a in shop bank stock; do dtx_start_agent $a; done
for a in shop bank stock; do wait_or_bail 10 participant_up $a; done
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$COORD_PID/status"; }
rss0=$(rss_kb)
kill -STOP "${AGENT_PID[bank]}"
"$top_builddir/tools/dtxbench" -e "$DTX_CLIENT" -w saga --dbs stock,bank,shop --accounts "$N" \
	--timeout 120000 --fire "$N" -s 600 >"$T/bench.out" 2>&1 &
bench=$!
ALL_PIDS+=("$bench")
sagas() { ctl_get sagas sagas --wait 5000 status; }
all_in() { [ "$(sagas)" -ge "$N" ] 2>/dev/null; }
t0=$(date +%s%N)
wait_or_bail 300 all_in
echo "# $N sagas in flight after $((($(date +%s%N) - t0) / 1000000)) ms"
sleep 1
rss1=$(rss_kb)
echo "# coordinatord resident: $((rss0 / 1024)) MB idle, $((rss1 / 1024)) MB with $N sagas in flight ($(((rss1 - rss0) * 1024 / N)) bytes a saga)"
ok "$([ $((rss1 / 1024)) -lt 64 ]; echo $?)" "under 64 MB with $N sagas in flight"
# where it is: the heap (RssAnon), and the log's pages mapped from its
# file (RssFile: page cache)
awk '/^Rss(Anon|File)/ {printf "# %s %d MB\n", $1, $2 / 1024}' "/proc/$COORD_PID/status"
kill_wait "$COORD_PID" KILL
kill_wait "${AGENT_PID[bank]}" KILL
kill_wait "$bench" KILL
t0=$(date +%s%N)
dtx_start_coord || exit 1
t_up=$(($(date +%s%N) - t0))
dtx_start_agent bank
drained() { [ "$(sagas)" = 0 ]; }
wait_for 600 drained; rc=$?
t_done=$(($(date +%s%N) - t0))
echo "# $(grep -o 'recovered [0-9]* unfinished sagas' "$T/coord.log" | tail -1)"
echo "# coordinator serving after $((t_up / 1000000)) ms (recovery of the log included)"
echo "# backlog drained (no saga in flight) after $((t_done / 1000000)) ms"
ok $rc "the backlog of $N unfinished sagas drains"
is "$(q stock "SELECT sum(balance) FROM bench_accounts") $(q bank "SELECT sum(balance) FROM bench_accounts") $(q shop "SELECT sum(balance) FROM bench_accounts")" \
	"$((N * 1000000 - 2 * N)) $((N * 1000000 + N)) $((N * 1000000 + N))" "every saga completed once"
done_testing
