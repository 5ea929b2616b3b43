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

# Prepared transactions that are not dtx's, holding PostgreSQL's slots.
hold_prepared_slots() {
	for i in $(seq 1 "$1"); do echo "BEGIN; PREPARE TRANSACTION 'hold:$i';"; done |
		PGOPTIONS='-c client_min_messages=error' timeout -k 5 "$DTX_CMD_TIMEOUT" "$PGBIN/psql" -X -h "$PGSOCK" -p "$PGPORT" \
			-U postgres -d postgres -q >/dev/null 2>&1
}
release_prepared_slots() {
	local gid
	for gid in $(q postgres "SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'hold:%'"); do
		q postgres "ROLLBACK PREPARED '$gid'"
	done
}

quiescent() { no_prepared_left && none_in_flight --wait 1000; }

all_up() { for a in shop bank stock; do participant_up $a || return 1; done; }

# run_point POINT PROCESS PASS: one iteration; prints its violations count.
# Whatever happens, what it started is stopped at its end.
run_point() {
	local rc
	run_point_1 "$@"; rc=$?
	for p in "${ALL_PIDS[@]}"; do kill -CONT "$p" 2>/dev/null; kill_wait "$p"; done
	ALL_PIDS=()
	return $rc
}
# crash_point_rc POINT: the exit code a process armed at POINT dies with.
crash_point_rc() {
	case $1 in
	kill-9) echo 137 ;;
	*:* | pg-immediate | max-prepared | agent-away) echo - ;;
	*) echo 99 ;;
	esac
}
run_point_1() {
	local point=$1 proc=$2 pass=$3 out=$T/outcomes bank pid
	bank_setup
	local lines=0
	[ -f "$T/coord.log" ] && lines=$(wc -l <"$T/coord.log")
	echo $((lines + 1)) >"$T/log.start"
	dtx_start_coord || { echo "coordinatord did not start"; return 1; }
	for a in shop bank stock; do dtx_start_agent $a; done
	wait_for 10 all_up || { echo "agents did not register"; return 1; }
	# Arm the crash point: restart the chosen process with DTX_CRASH.
	local arm=DTX_CRASH=$point:$pass
	case $point in
	*:*) arm=DTX_FAULT=$point ;;
	esac
	case $point in
	kill-9 | crd.recovered_one | pga.scanned | pg-immediate | max-prepared | agent-away) ;;
	*)
		if [ "$proc" = coord ]; then
			kill_wait "$COORD_PID" KILL; dtx_start_coord "$arm"
		else
			kill_wait "${AGENT_PID[$proc]}" KILL; dtx_start_agent "$proc" "$arm"
		fi
		wait_for 10 all_up || { echo "agents did not register after arming $point"; return 1; } ;;
	esac
	"$BANKTEST" -g "$DTX_CLIENT" "$CLIENTS" "$SECONDS_PER_RUN" "$ACCOUNTS" "$out" >"$T/bank.out" 2>&1 &
	bank=$!
	ALL_PIDS+=("$bank")
	local died=
	case $point in
	kill-9)
		sleep "0.$((RANDOM % 9 + 1))"; kill -KILL "$COORD_PID"; wait_exit 10 "$COORD_PID"; died=$? ;;
	crd.recovered_one)
		# Die during recovery: first leave work in flight (bank frozen,
		# so its transactions cannot finish; then kill -9), then restart
		# into the crash point at a pass that surely comes.
		sleep 1; kill -STOP "${AGENT_PID[bank]}"; sleep 0.3
		kill_wait "$COORD_PID" KILL
		kill -CONT "${AGENT_PID[bank]}"
		dtx_start_coord DTX_CRASH=$point:$((pass % CLIENTS + 1)) 2>/dev/null ;;
	pga.scanned)
		sleep 1; kill_wait "${AGENT_PID[$proc]}" KILL
		dtx_start_agent "$proc" DTX_CRASH=$point:1 ;;
	pg-immediate)
		sleep 1.5; pg_stop_immediate; sleep 1; pg_start_again
		echo "crashed=yes" >"$T/fired" ;;
	max-prepared)
		local before
		before=$(cat "$T"/agent-*.log | grep -c 'maximum number of prepared transactions')
		sleep 1; hold_prepared_slots $((${PG_MAX_PREPARED:-64} - 2)); sleep 2
		release_prepared_slots
		[ "$(cat "$T"/agent-*.log | grep -c 'maximum number of prepared transactions')" -gt "$before" ] &&
			echo "crashed=yes" >"$T/fired" ;;
	agent-away)
		sleep 1; kill -STOP "${AGENT_PID[$proc]}"; sleep 4; kill -CONT "${AGENT_PID[$proc]}"
		echo "crashed=yes" >"$T/fired" ;;
	esac
	# Wait for the crash (or the end of the run), then restart clean.
	local crashed=no log
	if [ "$proc" = coord ]; then pid=$COORD_PID log=$T/coord.log; else pid=${AGENT_PID[$proc]:-} log=$T/agent-$proc.log; fi
	[ -n "$pid" ] || pid=$bank
	local t0
	t0=$(now_ms)
	waiting "$point: the crash of $proc (pid $pid) or the end of the workload"
	while ! gone "$pid" && ! gone "$bank"; do
		[ $(($(now_ms) - t0)) -lt $(((SECONDS_PER_RUN + 30) * 1000)) ] ||
			{ echo "the workload still ran $((SECONDS_PER_RUN + 30)) s after it began"; return 1; }
		sleep 0.1
	done
	local want
	want=$(crash_point_rc "$point")
	if [ -f "$T/fired" ]; then
		crashed=yes; rm -f "$T/fired"
	elif [[ $point == *:* ]]; then
		# a fault point fired if the process says so in this run's log
		[ "$(grep -c 'fault injected' "$log")" -gt "$(cat "$T/faults.$proc" 2>/dev/null || echo 0)" ] && crashed=yes
		grep -c 'fault injected' "$log" >"$T/faults.$proc"
	elif gone "$pid"; then
		[ -n "$died" ] || { wait "$pid" 2>/dev/null; died=$?; }
		# the process died where it was armed, and nowhere else
		if [ "$died" != "$want" ]; then
			echo "crash: $proc exited $died, want $want at $point"
		elif [ "$want" = 99 ] && ! tail -n 50 "$log" | grep -q "crash point $point reached"; then
			echo "crash: $proc exited 99 but its log does not say it reached $point"
		else
			crashed=yes
		fi
		if [ "$proc" = coord ]; then
			dtx_start_coord || { echo "coordinatord did not start again"; return 1; }
		else
			dtx_start_agent "$proc"
		fi
	fi
	wait_exit $((SECONDS_PER_RUN + 30)) "$bank" >/dev/null
	wait_for 30 all_up || echo "not every agent registered 30 s after the run: $("$DTXCTL" status | tr '\n' ' ')"
	wait_for 30 quiescent || echo "not quiescent after 30 s: $("$DTXCTL" status | tr '\n' ' ')"
	echo "crashed=$crashed $(cat "$T/bank.out" | tail -1)" >"$T/run.info"
	check "$out"
	# run_point stops everything for the next iteration. The log stays, as
	# in production: each restart is a new epoch, so no GID repeats (a
	# fresh log would reuse them, and every reused branch would vote no on
	# its marker row).
}

dtx_start_pg
printf '# %-24s %-6s %-8s %-10s %s\n' point runs crashed violations workload
n=0
while read -r point proc; do
	[ -n "$point" ] || continue
	if [ -n "${POINTS:-}" ] && ! [[ " $POINTS " == *" $point "* ]]; then continue; fi
	v=0 crashes=0 info=
	for i in $(seq 1 "$ITER"); do
		if [ "$ITER" -gt 1 ]; then pass=$((RANDOM % 40 + 1)); else pass=5; fi
		rm -f "$T/run.info"
		res=$(run_point "$point" "$proc" "$pass" </dev/null)
		n=$(echo "$res" | sed -n 's/^violations //p')
		[ -n "$n" ] || n=1
		fired=no
		grep -qs crashed=yes "$T/run.info" && fired=yes crashes=$((crashes + 1))
		# what went wrong, as TAP comments
		[ "$n" -eq 0 ] && [ $fired = yes ] || echo "$res" | grep -v '^violations 0$' | sed "s/^/# $point: /"
		v=$((v + n))
		info=$(sed 's/crashed=[a-z]* //' "$T/run.info" 2>/dev/null)
	done
	printf '# %-24s %-6s %-8s %-10s %s\n' "$point" "$ITER" "$crashes" "$v" "$info"
	# A point that never fired proved nothing: that fails too.
	ok $([ "$v" -eq 0 ] && [ "$crashes" -eq "$ITER" ] && echo 0 || echo 1) \
		"$point: $ITER runs, $crashes crashed there, $v violations"
done <<<"$ALL_POINTS"
done_testing
