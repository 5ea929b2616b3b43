#!/usr/bin/env bash
# bench/saga.sh — sagas against their steps by hand: a throwaway PostgreSQL
# (databases stock, bank and shop, each with bench_accounts), coordinatord,
# three real agents and two null agents; then dtxbench runs the saga
# workload (reserve on stock, compensable; pay on bank, the pivot; notify
# on shop, retriable; each one UPDATE of the client's account, expect 1)
# in its modes (direct: the three local transactions one after the other
# from the bench, no coordinator, the ceiling; dtx: one SAGA through the
# coordinator; null, when asked: the coordinator alone) at 1, 8 and 64
# clients, in one invocation, and prints the table with the ratios
# saga/direct. Then whether the three databases' total balance is what it
# was (a completed saga moves 2 from stock's account to bank's and shop's,
# a compensated one puts it back), and the coordinator's group commits.
#
#   bench/saga.sh                     # the table
#   SECONDS_PER_RUN=20 CLIENTS=8,64 bench/saga.sh
#   MODES=direct bench/saga.sh        # the steps by hand only
#   MODES=direct,dtx,null bench/saga.sh
#   BENCH_OUT=DIR bench/saga.sh       # keep saga.json and the logs there
#
# Build first (scripts/setup.sh). The figures are this machine's; compare
# ratios from one run rather than absolute numbers from different runs.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_builddir=${top_builddir:-$(cd "$here/.." && pwd)}
CLIENTS=${CLIENTS:-1,8,64}
MODES=${MODES:-direct,dtx}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
ACCOUNTS=10000
BALANCE=1000000

# Room for 64 direct clients on three databases (a connection each), plus
# the agents' pools.
export PG_MAX_CONNECTIONS=450 PG_MAX_PREPARED=300
export DTX_BENCH_DBS="stock bank shop"
export DTX_TEST_PARTICIPANTS="stock, bank, shop, null1, null2" DTX_TEST_POOL_SIZE=66
export DTX_TEST_LOG_LEVEL=${DTX_TEST_LOG_LEVEL:-notice} DTX_TEST_TIMEOUT_MS=30000
export DTX_TEST_RETENTION_S=${DTX_TEST_RETENTION_S:-60}
. "$top_builddir/tests/integration/lib.sh"
DTXBENCH=$top_builddir/tools/dtxbench

echo "bench: PostgreSQL, coordinatord, agents stock, bank and shop, null agents null1 and null2"
dtx_start_bench $ACCOUNTS $BALANCE

status_field() { "$DTXCTL" status | sed -n "s/^group commits \([0-9]*\) records \([0-9]*\) decisions \([0-9]*\).*/\\$1/p"; }
total() { # the three databases' balance, summed
	local db sum=0
	for db in $DTX_BENCH_DBS; do sum=$((sum + $(q $db "SELECT sum(balance) FROM bench_accounts"))); done
	echo $sum
}
g0=$(status_field 1)
t0=$(total)

echo "bench: saga over stock, bank and shop, modes $MODES, clients $CLIENTS, $SECONDS_PER_RUN s per run after 1 s warm-up"
"$DTXBENCH" -m "$MODES" -w saga --dbs stock,bank,shop --null null1,null2 --accounts $ACCOUNTS \
	-c "$CLIENTS" -s "$SECONDS_PER_RUN" --warmup 1 --timeout 30000 \
	--conninfo "host=$PGSOCK port=$PGPORT user=postgres" --json "$T/saga.json"
rc=$?

echo
# A saga still running when its client gave up (a time-out) may move the
# total until it ends: wait for the coordinator to have none in flight.
wait_for 60 none_in_flight >/dev/null
t1=$(total)
if [ "$t1" = "$t0" ]; then
	echo "balances: the three databases' total is unchanged ($t1)"
else
	echo "balances: the three databases' total moved from $t0 to $t1"
	rc=1
fi
g1=$(status_field 1)
echo "coordinator: $((g1 - g0)) group commits during the runs"

if [ -n "${BENCH_OUT:-}" ]; then
	mkdir -p "$BENCH_OUT" && cp "$T"/saga.json "$T"/*.log "$BENCH_OUT"/ && echo "bench: results in $BENCH_OUT"
fi
exit $rc
