#!/usr/bin/env bash
# bench/run.sh — the benchmark: a throwaway PostgreSQL (databases bank and
# stock), coordinatord, two real agents and two null agents; then dtxbench
# runs the transfer workload over 2 databases in its three modes (direct:
# two-phase commit by hand, the ceiling; dtx: through the coordinator;
# null: the coordinator alone) at 1, 8 and 64 clients, in one invocation,
# and prints the table with the ratios dtx/direct. Then the coordinator's
# group-commit figures and its memory.
#
#   bench/run.sh                      # the table (about 2 minutes)
#   SECONDS_PER_RUN=20 CLIENTS=8,64 bench/run.sh
#   BENCH_OUT=DIR bench/run.sh        # keep bench.json and the logs there
#   MODES=null PERF=1 bench/run.sh    # profile the coordinator with perf
#   PERF_CALLGRAPH="--call-graph dwarf" ...  # with user-space callers
#                                     # (kept in BENCH_OUT/perf.data)
#   SOAK=600 bench/run.sh             # then 10 minutes of null load at 64
#                                     # clients, the log file's size each minute
#
# Build first (scripts/setup.sh). The figures are this machine's; compare
# ratios from one run rather than absolute numbers from different runs.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_builddir=${top_builddir:-$(cd "$here/.." && pwd)}
CLIENTS=${CLIENTS:-1,8,64}
MODES=${MODES:-direct,dtx,null}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
ACCOUNTS=10000

# Room for 64 direct clients on two databases, plus the agents' pools.
export PG_MAX_CONNECTIONS=400 PG_MAX_PREPARED=300
export DTX_TEST_PARTICIPANTS="bank, stock, null1, null2" DTX_TEST_POOL_SIZE=66
export DTX_TEST_LOG_LEVEL=${DTX_TEST_LOG_LEVEL:-notice} DTX_TEST_TIMEOUT_MS=30000
export DTX_TEST_RETENTION_S=${DTX_TEST_RETENTION_S:-60}
# An agent frozen on purpose (the memory step) must not be marked down.
export DTX_TEST_COORD_HEARTBEAT_MS=60000
. "$top_builddir/tests/integration/lib.sh"
DTXBENCH=$top_builddir/tools/dtxbench

echo "bench: PostgreSQL, coordinatord, agents bank and stock, null agents null1 and null2"
dtx_start_bench $ACCOUNTS 1000000

status_field() { "$DTXCTL" status | sed -n "s/^group commits \([0-9]*\) records \([0-9]*\) decisions \([0-9]*\).*/\\$1/p"; }
g0=$(status_field 1) d0=$(status_field 3)

echo "bench: $("$DTXBENCH" --wakeup-cost)"
echo "bench: transfer over 2 databases, clients $CLIENTS, $SECONDS_PER_RUN s per run after 1 s warm-up"
if [ -n "${PERF:-}" ]; then
	perf record ${PERF_CALLGRAPH:--g} -F 999 -p "$COORD_PID" -o "$T/perf.data" >/dev/null 2>&1 &
	perf_pid=$!
fi
"$DTXBENCH" -m "$MODES" -w transfer --dbs bank,stock --null null1,null2 --accounts $ACCOUNTS \
	-c "$CLIENTS" -s "$SECONDS_PER_RUN" --warmup 1 --timeout 30000 \
	--conninfo "host=$PGSOCK port=$PGPORT user=postgres" --json "$T/bench.json"
rc=$?
if [ -n "${PERF:-}" ]; then
	kill -INT "$perf_pid"; wait "$perf_pid"
	[ -n "${BENCH_OUT:-}" ] && mkdir -p "$BENCH_OUT" && cp "$T/perf.data" "$BENCH_OUT"/
	echo; echo "coordinatord profile (self time, top 25):"
	perf report -i "$T/perf.data" --stdio --no-children --sort ${PERF_SORT:-symbol} 2>/dev/null |
		grep -E '^ +[0-9.]+%' | head -25
fi

g1=$(status_field 1) d1=$(status_field 3)
echo
echo "coordinator: $((g1 - g0)) group commits carried $((d1 - d0)) commit decisions" \
	"($(awk -v d=$((d1 - d0)) -v g=$((g1 - g0)) 'BEGIN { printf "%.1f", g ? d / g : 0 }') per fsync)"
echo "coordinator: $("$DTXCTL" stats | sed -n 's/^group commits: .*; \(commit time .*\)/\1 (writes and fsyncs, whole run)/p')"
# RSS counts the pages of the log file mapped by LMDB (RssFile) besides
# the coordinator's own memory (RssAnon).
rss() { grep -E '^(VmHWM|RssAnon|RssFile)' /proc/"$COORD_PID"/status | tr -s ' \t' ' ' | tr '\n' ' '; }
echo "coordinator: $(rss)"
echo "coordinator: log file $(du -k "$T/log/data.mdb" | cut -f1) KiB"

# Memory: 10,000 transactions held in flight (bank frozen, so that its
# branches cannot vote; stock's are read-only and vote at once).
kill -STOP "${AGENT_PID[bank]}"
"$DTXBENCH" -w select --dbs bank,stock --timeout 120000 --fire 10000 -s 600 >/dev/null &
fire=$!
inflight() { "$DTXCTL" status | sed -n 's/^in flight \([0-9]*\):.*/\1/p'; }
inflight_at_least() { [ "$(inflight)" -ge "$1" ]; }
inflight_none() { [ "$(inflight)" -eq 0 ]; }
wait_for 60 inflight_at_least 10000
echo "coordinator with $(inflight) transactions in flight: $(rss)"
kill -CONT "${AGENT_PID[bank]}"
wait_for 120 inflight_none
kill "$fire" 2>/dev/null; wait "$fire" 2>/dev/null
echo "coordinator after they finished: $(rss)"

if [ -n "${SOAK:-}" ]; then
	echo "bench: soak, null mode, 64 clients, $SOAK s, retention $DTX_TEST_RETENTION_S s"
	"$DTXBENCH" -m null -w transfer --null null1,null2 -c 64 -s "$SOAK" >"$T/soak.out" 2>&1 &
	soak=$!
	start=$(date +%s)
	while kill -0 "$soak" 2>/dev/null; do
		sleep 60
		echo "  $(($(date +%s) - start)) s: log file $(du -k "$T/log/data.mdb" | cut -f1) KiB, $(rss)"
	done
	wait "$soak"; sed -n '2p' "$T/soak.out" | sed 's/^/  /'
fi

if [ -n "${BENCH_OUT:-}" ]; then
	mkdir -p "$BENCH_OUT" && cp "$T"/bench.json "$T"/*.log "$BENCH_OUT"/ && echo "bench: results in $BENCH_OUT"
fi
exit $rc
