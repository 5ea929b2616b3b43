#!/usr/bin/env bash
# The crash-point suite. For every named crash point (and a plain kill -9
# of the coordinator), runs the bank workload with concurrent clients,
# lets the process die at that point, restarts it, waits for quiescence
# and checks the invariants:
#   I1 every transfer's rows are in all of its databases or in none
#   I2 every outcome a client was told is what happened, and the
#      coordinator reports no heuristic outcome (nobody meddles here)
#   I3 no prepared branch with dtx's prefix is left in PostgreSQL
#   I4 the total balance is unchanged and no balance is negative
#   I5 nothing was applied twice (each balance = initial + its ledger)
#   I7 every transaction whose outcome no client heard is asked for
#      (dtxctl query): it says committed if and only if the databases
#      hold its branches (never aborted or unknown for committed work)
# and that the process died where it was armed: exit 99 and its log naming
# the crash point (137 for kill -9).
# ITER=N repeats each point N times with a random pass count; POINTS="a b"
# runs only those. Speaks TAP (one test per point) and prints the table of
# point, runs, crashes, violations and workload as comments.
# Bounded in time as a whole: DTX_TEST_TIMEOUT, by default 300 s plus 60 s
# a run; each wait inside a run is bounded too.
if [ -n "${POINTS:-}" ]; then _runs=$(wc -w <<<"$POINTS"); else _runs=35; fi
: "${DTX_TEST_TIMEOUT:=$((300 + 60 * ${ITER:-1} * _runs))}"
# The coordinator's "GTID: begin" lines name every transaction it started
# (I7 asks for those no client heard the end of).
: "${DTX_TEST_COORD_LOG_LEVEL:=debug}"
. "$(dirname "$0")/../integration/lib.sh"
BANKTEST=$top_builddir/tests/tools/dtx-banktest
ITER=${ITER:-1}
ACCOUNTS=20
BALANCE=100
CLIENTS=${CLIENTS:-4}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-6}

# point  process  (process: coord, or the agent's name). Besides crash
# points: ACTION:TYPE:N[:MS] injects a message fault in that process's
# receiving side (drop: lost, dup: repeated, delay: reordered; see
# dtx_fault_on_recv), pg-immediate stops PostgreSQL with -m immediate and
# starts it again, max-prepared fills all but two of PostgreSQL's
# prepared-transaction slots from outside for a while (branches must vote
# NO, not hang), agent-away freezes an agent for longer than every
# timeout.
ALL_POINTS="
crd.begun coord
crd.begin_logged coord
crd.prepare_sent coord
crd.votes_in coord
crd.group_commit coord
wal.before_commit coord
crd.commit_logged coord
crd.commit_sent coord
crd.ack_received coord
crd.acks_in coord
crd.client_answered coord
crd.abort_sent coord
crd.recovered_one coord
kill-9 coord
pga.work_done bank
pga.work_back bank
pga.prepared bank
pga.decision_received shop
pga.applied stock
pga.applied_unacked bank
pga.scanned shop
drop:VOTE:7 coord
drop:ACK:5 coord
dup:VOTE:3 coord
dup:ACK:3 coord
drop:PREPARE:9 stock
drop:DECIDE:5 shop
dup:PREPARE:3 bank
dup:DECIDE:3 stock
delay:DECIDE:4:700 bank
delay:PREPARE:6:2500 shop
delay:VOTE:5:600 coord
delay:ACK:4:800 coord
pg-immediate -
max-prepared -
agent-away stock
"

bank_setup() {
	for db in shop bank stock; do
		q $db "DROP TABLE IF EXISTS accounts, ledger;
			CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0));
			CREATE TABLE ledger (ref text PRIMARY KEY, account int NOT NULL, delta bigint NOT NULL);
			INSERT INTO accounts SELECT i, $BALANCE FROM generate_series(1, $ACCOUNTS) i"
	done
}

# check OUTFILE: prints one line per violation, then "violations N".
check() {
	local out=$1 v=0 db total neg
	# a one-database transfer's credit row is keyed REF/2
	for db in shop bank stock; do q $db "SELECT DISTINCT split_part(ref, '/', 1) FROM ledger" | sort >"$T/refs.$db"; done
	# I1, I2: from what each client was told and which databases hold the ref
	v=$(awk -v T="$T" '
		BEGIN { split("shop bank stock", dbs, " ")
			for (i = 1; i <= 3; i++) while ((getline r < (T "/refs." dbs[i])) > 0) has[dbs[i], r] = 1 }
		{ ref = $1; what = $2; n = split($3, in_, ","); seen[ref] = 1; c = 0
		  for (i = 1; i <= n; i++) c += ((in_[i], ref) in has)
		  if (c != 0 && c != n) { print "I1 " ref " in " c " of " n " databases"; bad++ }
		  else if (what == "committed" && c != n) { print "I2 " ref " committed but absent"; bad++ }
		  else if ((what == "aborted" || what == "refused") && c != 0) { print "I2 " ref " " what " but present"; bad++ } }
		END { for (i = 1; i <= 3; i++) while ((getline r < (T "/refs." dbs[i])) > 0) ;
		      print bad + 0 }' "$out" | tee "$T/violations" | tail -1)
	head -n -1 "$T/violations"
	# every ref in a database was asked for by a client
	local orphans
	orphans=$(cat "$T"/refs.* | sort -u | comm -23 - <(cut -d' ' -f1 "$out" | sort -u) | wc -l)
	[ "$orphans" -eq 0 ] || { echo "I2 $orphans refs in the databases that no client asked for"; v=$((v + 1)); }
	# I2, the coordinator's side: nobody resolves branches by hand here, so
	# a heuristic outcome means the coordinator contradicted itself.
	local heur
	heur=$(ctl_count transaction list --state heuristic)
	[ "$heur" = 0 ] || { echo "I2 the coordinator reports ${heur:-an unknown number of} heuristic outcomes"; v=$((v + 1)); }
	# I3
	[ "$(prepared_count)" = 0 ] || { echo "I3 $(prepared_count) prepared branches left"; v=$((v + 1)); }
	# I4
	total=0 neg=0
	for db in shop bank stock; do
		total=$((total + $(q $db "SELECT sum(balance) FROM accounts")))
		neg=$((neg + $(q $db "SELECT count(*) FROM accounts WHERE balance < 0")))
	done
	[ "$total" -eq $((3 * ACCOUNTS * BALANCE)) ] || { echo "I4 total balance $total, want $((3 * ACCOUNTS * BALANCE))"; v=$((v + 1)); }
	[ "$neg" -eq 0 ] || { echo "I4 $neg negative balances"; v=$((v + 1)); }
	# I5
	for db in shop bank stock; do
		local off
		off=$(q $db "SELECT count(*) FROM accounts a WHERE a.balance <> $BALANCE +
			coalesce((SELECT sum(delta) FROM ledger l WHERE l.account = a.id), 0)")
		[ "$off" = 0 ] || { echo "I5 $db: $off balances differ from their ledger"; v=$((v + 1)); }
	done
	# I7
	local g rc answer
	while read -r g; do
		answer="$("$DTXCTL" query "$g" 2>&1) (exit $?)"; rc=${answer##*(exit }; rc=${rc%)}
		answer="$answer; it had $(grep -oE "${g//./\\.}: begin, [0-9]+ branches" "$T/coord.log" | tail -1 | cut -d' ' -f3-)"
		if grep -qx "$g" "$T/committed.gtids"; then
			[ "$rc" = 0 ] || { echo "I7 $g committed in the databases, no client heard it, query says: $answer"; v=$((v + 1)); }
		else
			[ "$rc" = 1 ] || { echo "I7 $g not in the databases, no client heard it, query says: $answer"; v=$((v + 1)); }
		fi
	done < <(unheard "$out")
	echo "violations $((v + $(tail -1 "$T/violations")))"
}

# unheard OUTFILE: the GTIDs this run's coordinators began (their log from
# line $T/log.start on) that no client heard the outcome of; and, in
# $T/committed.gtids, those of them whose branches the databases hold
# (marker rows dtx:COORD:EPOCH:SEQ:BRANCH).
unheard() {
	tail -n +"$(cat "$T/log.start")" "$T/coord.log" | grep -oE 'c1\.[0-9]+\.[0-9]+: begin, ' | cut -d: -f1 |
		sort -u >"$T/begun.gtids"
	awk '($2 == "committed" || $2 == "aborted") && $4 ~ /^c1\./ {print $4}' "$1" | sort -u >"$T/heard.gtids"
	comm -23 "$T/begun.gtids" "$T/heard.gtids" >"$T/unheard.gtids"
	for db in shop bank stock; do
		q $db "SELECT DISTINCT regexp_replace(gid, '^dtx:([^:]+):([0-9]+):([0-9]+):.*', '\1.\2.\3') FROM dtx.branches"
	done | sort -u | comm -12 - "$T/unheard.gtids" >"$T/committed.gtids"
	# for the table: how many were asked for
	echo "$(cat "$T/run.info") unheard $(wc -l <"$T/unheard.gtids") ($(wc -l <"$T/committed.gtids") committed)" >"$T/run.info.new"
	mv "$T/run.info.new" "$T/run.info"
	cat "$T/unheard.gtids"
}

workload_init() { :; }
workload_setup() { bank_setup; }
workload_start() { "$BANKTEST" -g "$DTX_CLIENT" "$CLIENTS" "$SECONDS_PER_RUN" "$ACCOUNTS" "$1"; }
workload_check() { check "$1"; }

. "$(dirname "$0")/points.sh"
crash_points
done_testing
