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
: "${POINTS:=${SAGA_CHECK_POINTS:-crd.turn_logged kill-9 drop:RESULT:5 agent-away}}"
[ "$POINTS" = all ] && POINTS=
if [ -n "${POINTS:-}" ]; then _runs=$(wc -w <<<"$POINTS"); else _runs=24; fi
: "${DTX_TEST_TIMEOUT:=$((300 + 60 * ${ITER:-1} * _runs))}"
. "$(dirname "$0")/../integration/lib.sh"
SAGATEST=$top_builddir/tests/tools/dtx-sagatest
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

workload_init() {
	q stock "CREATE TABLE sitems (item text PRIMARY KEY, qty bigint NOT NULL CHECK (qty >= 0));
		CREATE TABLE sres (ord text NOT NULL); CREATE TABLE sunres (ord text NOT NULL)"
	q bank "CREATE TABLE saccounts (id int PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0));
		CREATE TABLE spaid (ord text NOT NULL, account int NOT NULL, amount bigint NOT NULL)"
	q shop "CREATE TABLE snotes (ord text NOT NULL)"
}

workload_setup() {
	q stock "TRUNCATE sitems, sres, sunres; INSERT INTO sitems VALUES ('w', $STOCK)"
	q bank "TRUNCATE saccounts, spaid;
		INSERT INTO saccounts SELECT i, $BALANCE FROM generate_series(1, $ACCOUNTS) i"
	q shop "TRUNCATE snotes"
}

workload_start() { "$SAGATEST" "$DTX_CLIENT" "$CLIENTS" "$SECONDS_PER_RUN" 20 "$ACCOUNTS" "$1"; }

# workload_check OUTFILE: one line per violation, then "violations N".
workload_check() {
	local out=$1 v=0 n
	q stock "SELECT ord, count(*) FROM sres GROUP BY ord" | tr '|' ' ' | sort >"$T/s.res"
	q stock "SELECT ord, count(*) FROM sunres GROUP BY ord" | tr '|' ' ' | sort >"$T/s.unres"
	q bank "SELECT ord, count(*) FROM spaid GROUP BY ord" | tr '|' ' ' | sort >"$T/s.paid"
	q shop "SELECT ord, count(*) FROM snotes GROUP BY ord" | tr '|' ' ' | sort >"$T/s.notes"
	# S1 .. S4, order by order: every order a client made, and every one
	# the databases know of
	n=$(awk -v T="$T" '
		function load(f, a,   l, x) { while ((getline l < f) > 0) { split(l, x, " "); a[x[1]] = x[2]; all[x[1]] = 1 } }
		BEGIN { load(T "/s.res", rs); load(T "/s.unres", us); load(T "/s.paid", pd); load(T "/s.notes", nt) }
		{ told[$1] = $2; all[$1] = 1 }
		END {
			for (o in all) {
				r = rs[o] + 0; u = us[o] + 0; p = pd[o] + 0; t = nt[o] + 0
				if (r > 1 || u > 1 || p > 1 || t > 1) { print "S1 " o ": reserved " r ", unreserved " u ", paid " p ", notified " t; bad++; continue }
				if (!(o in told)) { print "S4 " o " is in the databases but no client made it"; bad++ }
				w = told[o]
				if (w == "completed" && !(r == 1 && u == 0 && p == 1 && t == 1)) { print "S2 " o " told completed: reserved " r ", unreserved " u ", paid " p ", notified " t; bad++ }
				if (w == "compensated" && !(p == 0 && t == 0 && u == r)) { print "S2 " o " told compensated: reserved " r ", unreserved " u ", paid " p ", notified " t; bad++ }
				if (w == "refused" && r + u + p + t > 0) { print "S2 " o " refused but ran"; bad++ }
				if (w == "heuristic") { print "S4 " o " heuristic"; bad++ }
				if (p == 1 && (u != 0 || r != 1)) { print "S3 " o " paid but reserved " r ", unreserved " u; bad++ }
				if (p == 1 && t != 1) { print "S4 " o " paid but not notified"; bad++ }
				if (p == 0 && (t != 0 || u != r)) { print "S4 " o " unpaid but notified " t ", reserved " r ", unreserved " u; bad++ }
			}
			print bad + 0
		}' "$out" | tee "$T/violations" | tail -1)
	head -n -1 "$T/violations"
	v=$((v + n))
	# S4, the coordinator's side
	local heur inflight
	heur=$(( $(ctl_count transaction list --state heuristic) + $(ctl_count saga list --state heuristic) ))
	[ "$heur" = 0 ] || { echo "S4 the coordinator reports ${heur:-an unknown number of} heuristic outcomes"; v=$((v + 1)); }
	inflight=$(ctl_get sagas sagas status)
	[ "$inflight" = 0 ] || { echo "S4 $inflight sagas still in flight"; v=$((v + 1)); }
	# S5
	local money stock
	money=$(q bank "SELECT (SELECT sum(balance) FROM saccounts) + (SELECT coalesce(sum(amount), 0) FROM spaid)")
	[ "$money" = $((ACCOUNTS * BALANCE)) ] || { echo "S5 balances plus payments $money, want $((ACCOUNTS * BALANCE))"; v=$((v + 1)); }
	stock=$(q stock "SELECT (SELECT qty FROM sitems) + (SELECT count(*) FROM sres) - (SELECT count(*) FROM sunres)")
	[ "$stock" = $STOCK ] || { echo "S5 stock plus reservations $stock, want $STOCK"; v=$((v + 1)); }
	# S6: every saga the barriers name, asked for; its answer against the
	# databases (paid: completed)
	for db in shop bank stock; do q $db "SELECT DISTINCT saga FROM dtx.barrier"; done | sort -u >"$T/s.sagas"
	q bank "SELECT saga FROM dtx.barrier WHERE step = 1 AND kind = 'a' AND result = 'd'" | sort -u >"$T/s.pivots"
	"$top_builddir/tests/tools/dtx-banktest" -Q "$DTX_CLIENT" 3000 <"$T/s.sagas" >"$T/s.answers"
	n=$(awk -v T="$T" '
		BEGIN { while ((getline g < (T "/s.pivots")) > 0) ran[g] = 1 }
		$2 == "completed" && !($1 in ran) { print "S6 " $1 " query says completed, its pivot did not run"; bad++; next }
		$2 == "compensated" && ($1 in ran) { print "S6 " $1 " query says compensated, its pivot ran"; bad++; next }
		$2 != "completed" && $2 != "compensated" { print "S6 " $1 " has barrier rows, query says " $2; bad++ }
		END { print bad + 0 }' "$T/s.answers" | tee "$T/violations" | tail -1)
	head -n -1 "$T/violations"
	v=$((v + n))
	echo "violations $v"
}

. "$(dirname "$0")/points.sh"
crash_points
done_testing
