#!/usr/bin/env bash
# tests/crash/sagacheck.sh — the order saga workload's tables and its
# invariants, shared by the saga crash suite (sagas.sh) and the nemesis.
# Sourced after lib.sh; the caller sets SACCOUNTS, SBALANCE and SSTOCK.
# The workload is tests/tools/sagatest.c (dtx-sagatest).
SAGATEST=$top_builddir/tests/tools/dtx-sagatest

saga_init() {
	q stock "CREATE TABLE sitems (item text PRIMARY KEY, qty bigint NOT NULL CHECK (qty >= 0));
		CREATE TABLE sres (ord text NOT NULL); CREATE TABLE sunres (ord text NOT NULL)"
	q bank "CREATE TABLE saccounts (id int PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0));
		CREATE TABLE spaid (ord text NOT NULL, account int NOT NULL, amount bigint NOT NULL)"
	q shop "CREATE TABLE snotes (ord text NOT NULL)"
}

saga_setup() {
	q stock "TRUNCATE sitems, sres, sunres; INSERT INTO sitems VALUES ('w', $SSTOCK)"
	q bank "TRUNCATE saccounts, spaid;
		INSERT INTO saccounts SELECT i, $SBALANCE FROM generate_series(1, $SACCOUNTS) i"
	q shop "TRUNCATE snotes"
}

# saga_check OUTFILE: one line per violation, then "violations N".
saga_check() {
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
	[ "$stock" = $SSTOCK ] || { echo "S5 stock plus reservations $stock, want $SSTOCK"; v=$((v + 1)); }
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

# No saga in flight (dtxctl status).
no_saga_in_flight() { [ "$(ctl_get sagas sagas --wait 1000 status)" = 0 ]; }
