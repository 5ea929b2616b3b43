#!/usr/bin/env bash
# The crash-point suite for sagas. For every saga crash point of the
# coordinator and the agents, message faults on STEP and RESULT frames, a
# plain kill -9, PostgreSQL stopped and a participant frozen across the
# pivot, runs the order saga workload (tests/tools/sagatest.c: reserve on
# stock, the pivot pay on bank, notify on shop) with concurrent clients,
# lets the process die there, restarts it, waits for quiescence and checks:
#   S1 exactly once: no step and no compensation applied twice
#   S2 what each client was told happened: completed = reserved, paid,
#      notified, nothing compensated; compensated = not paid, not
#      notified, the reservation (if it ran) undone once
#   S3 nothing after the pivot is compensated: every paid order is
#      reserved, not unreserved, and notified
#   S4 every saga ended one way or the other, told or not, and the
#      coordinator has none in flight and reports no heuristic outcome
#   S5 money and stock are conserved
#   S6 no barrier row without its saga's outcome in the log: QUERY of every
#      saga the barrier tables name says completed or compensated, the same
#      as the databases
# ITER, POINTS and the table as in suite.sh.
# make check runs the points of SAGA_CHECK_POINTS (a core set); make
# check-crash runs them all (POINTS=all).
: "${POINTS:=${SAGA_CHECK_POINTS:-crd.saga_logged crd.step_result crd.turn_logged crd.comp_sent crd.saga_answered kill-9 pga.step_done drop:RESULT:5 dup:STEP:3 delay:RESULT:4:700 agent-away pg-immediate}}"
[ "$POINTS" = all ] && POINTS=
if [ -n "${POINTS:-}" ]; then _runs=$(wc -w <<<"$POINTS"); else _runs=24; fi
: "${DTX_TEST_TIMEOUT:=$((300 + 60 * ${ITER:-1} * _runs))}"
. "$(dirname "$0")/../integration/lib.sh"
ITER=${ITER:-1}
ACCOUNTS=20
BALANCE=100
STOCK=100000
CLIENTS=${CLIENTS:-4}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-6}

ALL_POINTS="
crd.saga_logged coord
crd.step_sent coord
crd.step_result coord
crd.turn_logged coord
crd.comp_sent coord
crd.comp_result coord
crd.saga_answered coord
crd.group_commit coord
wal.before_commit coord
kill-9 coord
pga.step_sent bank
pga.step_done stock
pga.step_done bank
drop:RESULT:5 coord
dup:RESULT:3 coord
delay:RESULT:4:700 coord
drop:STEP:5 stock
dup:STEP:3 bank
delay:STEP:4:2500 shop
pg-immediate -
agent-away bank
"

SACCOUNTS=$ACCOUNTS SBALANCE=$BALANCE SSTOCK=$STOCK
. "$(dirname "$0")/sagacheck.sh"
workload_init() { saga_init; }
workload_setup() { saga_setup; }
workload_start() { "$SAGATEST" "$DTX_CLIENT" "$CLIENTS" "$SECONDS_PER_RUN" 20 "$ACCOUNTS" "$1"; }
workload_check() { wait_for 30 no_saga_in_flight || echo "S4 sagas still in flight 30 s after the run"; saga_check "$1"; }

. "$(dirname "$0")/points.sh"
crash_points
done_testing
