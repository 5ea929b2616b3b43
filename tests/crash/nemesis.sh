#!/usr/bin/env bash
# The nemesis: the bank workload (dtx-banktest: one-, two- and
# three-database transfers) and, beside it, the order saga workload
# (dtx-sagatest: reserve, the pivot pay, notify) under random faults at once: SIGKILL of the
# coordinator (every 0.3-1.5 s) and of agents, SIGSTOP/SIGCONT of agents
# (frozen for 50-2500 ms), PostgreSQL stopped with -m immediate and
# started again. Afterwards, with every fault healed and the system
# quiescent, the invariants are checked from the databases alone:
#   I1 every transfer's rows are in all of its databases or in none
#   I2 every outcome a client was told is what the databases hold, and
#      every ref in them was asked for by a client
#   I3 no prepared branch with dtx's prefix is left in PostgreSQL
#   I4 the total balance is unchanged and no balance is negative
#   I5 nothing was applied twice (each balance = initial + its ledger)
#   G  each committed transfer carries one GTID in the databases (from its
#      branches' marker rows), the one its client was told if it was told
#   Q1 QUERY answers committed for every transaction committed in the
#      databases: never aborted, never unknown ("presumed aborted")
#   Q2 QUERY answers committed for nothing the databases lack
#   Q3 every QUERY is answered, and decided: "not decided yet" (dtxctl's
#      exit 6) after quiescence is a violation too, as are in-doubt and
#      heuristic (nobody resolves by hand here, retention is an hour)
#   R  Q1-Q3 hold again after one more kill -9 and restart of the
#      coordinator: what QUERY said was durable
#   S1-S6 the sagas' invariants (tests/crash/sagacheck.sh): exactly once,
#      clients told the truth, nothing after a pivot compensated, every
#      saga ended, money and stock conserved, QUERY agrees with the
#      barrier rows
# QUERY goes to every GTID the test learns: those the clients were told
# and those of every committed transfer in the databases, most of them
# never heard by a client. The databases name them: each branch writes a
# marker row in dtx.branches (gid dtx:<coord>:<epoch>:<seq>:<branch>) in
# the same local transaction as its statements; a deferred constraint
# trigger on the ledger, run at COMMIT or PREPARE TRANSACTION after the
# marker went in, copies that row's gid into the ledger row.
#
# Environment: NEMESIS_SECONDS (workload time in all, default 40),
# NEMESIS_RUNS (runs it is split into, each on fresh tables; default one
# per 120 s), NEMESIS_SEED (the fault schedule and the clients' choices;
# printed first, so a failure can be replayed: the schedule is the same,
# the timing of course not), NEMESIS_CLIENTS (4), NEMESIS_ONE_PHASE
# (true: the coordinator's one_phase), NEMESIS_LAZY_FLUSH_MS (5, the
# daemon's default). Speaks TAP, one test per invariant over all runs, and
# prints the workload, the faults and the violations as comments.
# Bounded in time as a whole: twice its workload time, and 300 s for the
# set-up, the recoveries and the checks (lib.sh's default of 300 s would
# stop make check-nemesis's 600 s run half way).
: "${DTX_TEST_TIMEOUT:=$((300 + 2 * ${NEMESIS_SECONDS:-40}))}"
. "$(dirname "$0")/../integration/lib.sh"
BANKTEST=$top_builddir/tests/tools/dtx-banktest
export LC_ALL=C # sort and join agree
ACCOUNTS=20
BALANCE=100
SECONDS_ALL=${NEMESIS_SECONDS:-40}
RUNS=${NEMESIS_RUNS:-$(((SECONDS_ALL + 119) / 120))}
SEED=${NEMESIS_SEED:-$(((RANDOM << 15) | RANDOM))}
CLIENTS=${NEMESIS_CLIENTS:-4}
ONE_PHASE=${NEMESIS_ONE_PHASE:-true}
# lazy_flush_ms at the daemon's default: the short run catches the lost
# one-phase begin record with it (a window of a few ms before each of
# dozens of coordinator kills). Raise it to widen that window.
export DTX_TEST_LAZY_FLUSH_MS=${NEMESIS_LAZY_FLUSH_MS:-5}
AGENTS=(shop bank stock)
SACCOUNTS=20 SBALANCE=100 SSTOCK=100000
. "$(dirname "$0")/sagacheck.sh"
[ -x "$BANKTEST" ] || { echo "Bail out! no $BANKTEST (make check builds it)"; exit 1; }
MAX_SHOWN=15 # violations printed per invariant and run

echo "# nemesis: seed $SEED, $SECONDS_ALL s in $RUNS runs, $CLIENTS clients," \
	"one_phase = $ONE_PHASE, lazy_flush_ms = $DTX_TEST_LAZY_FLUSH_MS"
echo "# replay: NEMESIS_SEED=$SEED NEMESIS_SECONDS=$SECONDS_ALL NEMESIS_RUNS=$RUNS" \
	"NEMESIS_ONE_PHASE=$ONE_PHASE NEMESIS_LAZY_FLUSH_MS=$DTX_TEST_LAZY_FLUSH_MS"
RANDOM=$SEED


# A process killed and waited for leaves ALL_PIDS, so that nothing (not
# dtx_cleanup either) signals its number again once the system reuses it.
forget_pid() {
	local p keep=()
	for p in "${ALL_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	ALL_PIDS=("${keep[@]}")
}

# The coordinator's config: lib.sh's, and one_phase.
write_coord_conf
echo "one_phase = $ONE_PHASE" >>"$T/coord.conf"

# Fresh tables in each database; the ledger's gid is the marker row's gid
# of the branch that wrote it (NULL if none was found, which G reports).
bank_setup() {
	local db
	for db in "${AGENTS[@]}"; do
		q $db "DROP TABLE IF EXISTS accounts, ledger;
			CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0));
			CREATE TABLE ledger (ref text PRIMARY KEY, account int NOT NULL, delta bigint NOT NULL, gid text);
			INSERT INTO accounts SELECT i, $BALANCE FROM generate_series(1, $ACCOUNTS) i;
			CREATE OR REPLACE FUNCTION ledger_gid() RETURNS trigger LANGUAGE plpgsql AS \$f\$
			BEGIN
				-- the marker of this very transaction: made now(), by our xid
				UPDATE ledger SET gid = (SELECT b.gid FROM dtx.branches b
					WHERE b.created = now() AND b.xmin::text::bigint = txid_current() % 4294967296)
				WHERE ref = NEW.ref;
				RETURN NULL;
			END\$f\$;
			CREATE CONSTRAINT TRIGGER ledger_gid AFTER INSERT ON ledger
				DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_gid()" >/dev/null ||
			{ echo "Bail out! cannot set up $db"; exit 1; }
	done
}

# --- the fault schedule -------------------------------------------------------
# schedule MS: the run's faults from the seed, "AT_MS ACTION TARGET ARG_MS"
# sorted by time: coordinator kills every 300-1500 ms; an agent fault every
# 400-2000 ms (one in three a kill, else a freeze of 50-2500 ms); a
# PostgreSQL stop 3-6 s in, then every 8-16 s, down for 200-1500 ms.
# Faults start after a second of calm workload and end with the run (a
# run shorter than 6 s may see no PostgreSQL stop, and fails test 1).
schedule() {
	local end=$1 t
	t=1000
	while t=$((t + 300 + RANDOM % 1201)); [ $t -lt "$end" ]; do echo "$t coord-kill coord 0"; done
	t=1000
	while t=$((t + 400 + RANDOM % 1601)); [ $t -lt "$end" ]; do
		local a=${AGENTS[RANDOM % 3]}
		if [ $((RANDOM % 3)) -eq 0 ]; then echo "$t agent-kill $a 0"; else echo "$t freeze $a $((50 + RANDOM % 2451))"; fi
	done
	t=$((3000 + RANDOM % 3001))
	while [ $t -lt "$end" ]; do echo "$t pg-stop pg $((200 + RANDOM % 1301))"; t=$((t + 8000 + RANDOM % 8001)); done
}

# Fault counts over all runs.
declare -A NF=([coord-kill]=0 [agent-kill]=0 [freeze]=0 [pg-stop]=0 [self-exit]=0)
declare -A THAW_AT=()
PG_UP_AT=0

restart_coord() {
	dtx_start_coord || { echo "# coordinatord did not restart: retried at the next fault"; return 1; }
}

# The daemons that died on their own (not by our hand): counted, and
# started again.
revive() {
	if ! kill -0 "$COORD_PID" 2>/dev/null; then
		wait "$COORD_PID" 2>/dev/null; forget_pid "$COORD_PID"
		NF[self-exit]=$((NF[self-exit] + 1)); echo "# coordinatord exited by itself"
		restart_coord
	fi
	local a
	for a in "${AGENTS[@]}"; do
		if ! kill -0 "${AGENT_PID[$a]}" 2>/dev/null; then
			wait "${AGENT_PID[$a]}" 2>/dev/null; forget_pid "${AGENT_PID[$a]}"
			NF[self-exit]=$((NF[self-exit] + 1)); echo "# agent $a exited by itself"
			unset "THAW_AT[$a]"; dtx_start_agent "$a"
		fi
	done
}

fault() { # fault ACTION TARGET ARG_MS
	local pid
	case $1 in
	coord-kill)
		kill_wait "$COORD_PID" KILL; forget_pid "$COORD_PID"
		restart_coord ;;
	agent-kill)
		pid=${AGENT_PID[$2]}
		kill_wait "$pid" KILL; forget_pid "$pid"; unset "THAW_AT[$2]"
		dtx_start_agent "$2" ;;
	freeze)
		[ -z "${THAW_AT[$2]:-}" ] || return 0
		kill -STOP "${AGENT_PID[$2]}"; THAW_AT[$2]=$(($(now_ms) + $3)) ;;
	pg-stop)
		[ "$PG_UP_AT" -eq 0 ] || return 0
		pg_stop_immediate; PG_UP_AT=$(($(now_ms) + $3)) ;;
	esac
	NF[$1]=$((NF[$1] + 1))
}

pg_up() {
	pg_start_again || { echo "Bail out! PostgreSQL did not start again: $(tail -3 "$T/pg.log")"; exit 1; }
	PG_UP_AT=0
}

# Thaw the agents and start PostgreSQL whose time has come (all, with
# "all").
heal() {
	local a t=$(now_ms)
	for a in "${!THAW_AT[@]}"; do
		if [ "$1" = all ] || [ "$t" -ge "${THAW_AT[$a]}" ]; then kill -CONT "${AGENT_PID[$a]}"; unset "THAW_AT[$a]"; fi
	done
	if [ "$PG_UP_AT" -ne 0 ] && { [ "$1" = all ] || [ "$t" -ge "$PG_UP_AT" ]; }; then pg_up; fi
}

all_up() { for a in "${AGENTS[@]}"; do participant_up $a || return 1; done; }
quiescent() { no_prepared_left && none_in_flight --wait 1000 && no_saga_in_flight; }

# --- checks ---------------------------------------------------------------------
# The databases' view: $T/ledger.DB holds "REF GTID" per transfer (REF
# without "/2", GTID from the marker's gid or "-").
dump_ledgers() {
	local db
	for db in "${AGENTS[@]}"; do
		q $db "SELECT DISTINCT split_part(ref, '/', 1),
				coalesce(regexp_replace(gid, '^dtx:([^:]+):([0-9]+):([0-9]+):[0-9]+$', '\1.\2.\3'), '-')
			FROM ledger" | tr '|' ' ' | sort >"$T/ledger.$db" ||
			{ echo "Bail out! cannot read the ledger of $db"; exit 1; }
	done
}

# viol KEY TEXT: one violation, into this run's file.
viol() { echo "$1 $2" >>"$T/viol"; }

# check_db OUTFILE: I1-I5 and G; writes $T/gtids ("GTID REF INDB TOLD
# SHAPE", one per GTID the test learnt) for the queries.
check_db() {
	local out=$1 db total neg off heur
	dump_ledgers
	awk -v T="$T" -v dbs="${AGENTS[*]}" '
		BEGIN { nd = split(dbs, d, " ")
			for (i = 1; i <= nd; i++)
				while ((getline l < (T "/ledger." d[i])) > 0) {
					split(l, f, " "); has[d[i], f[1]] = 1; inref[f[1]] = 1
					if (f[2] == "-") nogid[f[1]] = 1
					else if (!(f[1] in g)) g[f[1]] = f[2]
					else if (g[f[1]] != f[2]) two[f[1]] = two[f[1]] " " f[2] }
		}
		{ ref = $1; what = $2; n = split($3, in_, ","); told = (NF >= 4 ? $4 : "-"); asked[ref] = 1
		  c = 0
		  for (i = 1; i <= n; i++) c += ((in_[i], ref) in has)
		  shape = (n == 1 ? "one-db" : "multi-db")
		  if (c != 0 && c != n) print "I1 " ref " (" $3 ", client told " what ") in " c " of " n " databases"
		  else if (what == "committed" && c != n) print "I2 " ref " (" $3 ") told committed but absent"
		  else if ((what == "aborted" || what == "refused") && c != 0) print "I2 " ref " (" $3 ") told " what " but present"
		  if (c > 0 && (ref in nogid)) print "G " ref " (" $3 ") committed without a marker row"
		  if (ref in two) print "G " ref " (" $3 ") has GTIDs " g[ref] two[ref]
		  if (c > 0 && told != "-" && (ref in g) && g[ref] != told) print "G " ref " was told GTID " told ", the databases say " g[ref]
		  if (c > 0 && (ref in g)) { print "GTID " g[ref] " " ref " 1 " what " " shape; if (told == g[ref]) told = "-" }
		  if (told != "-") print "GTID " told " " ref " " (c > 0 ? 1 : 0) " " what " " shape }
		END { for (r in inref) if (!(r in asked)) print "I2 " r " in the databases, asked for by no client" }
	' "$out" >"$T/check.out"
	grep '^GTID ' "$T/check.out" | cut -d' ' -f2- | sort -u -k1,1 >"$T/gtids"
	grep -v '^GTID ' "$T/check.out" >>"$T/viol"
	heur=$(ctl_count transaction list --state heuristic)
	[ "$heur" = 0 ] || viol I2 "the coordinator reports ${heur:-an unknown number of} heuristic outcomes"
	[ "$(prepared_count)" = 0 ] || viol I3 "$(prepared_count) prepared branches left: $(q postgres "SELECT string_agg(gid, ' ') FROM pg_prepared_xacts")"
	total=0 neg=0
	for db in "${AGENTS[@]}"; do
		total=$((total + $(q $db "SELECT sum(balance) FROM accounts")))
		neg=$((neg + $(q $db "SELECT count(*) FROM accounts WHERE balance < 0")))
	done
	[ "$total" -eq $((${#AGENTS[@]} * ACCOUNTS * BALANCE)) ] || viol I4 "total balance $total, want $((${#AGENTS[@]} * ACCOUNTS * BALANCE))"
	[ "$neg" -eq 0 ] || viol I4 "$neg negative balances"
	for db in "${AGENTS[@]}"; do
		off=$(q $db "SELECT count(*) FROM accounts a WHERE a.balance <> $BALANCE +
			coalesce((SELECT sum(delta) FROM ledger l WHERE l.account = a.id), 0)")
		[ "$off" = 0 ] || viol I5 "$db: $off balances differ from their ledger"
	done
}

# check_queries TAG: QUERY for every GTID in $T/gtids, against the
# databases; TAG (Q or R) keys the violations.
check_queries() {
	local tag=$1 n key=R
	[ "$tag" = R ] || key=Q3
	cut -d' ' -f1 "$T/gtids" | timeout 120 "$BANKTEST" -Q "$DTX_CLIENT" 2000 >"$T/answers" ||
		viol $key "the queries failed or did not finish in 120 s"
	n=$(wc -l <"$T/answers")
	NQUERIES=$((NQUERIES + n))
	join "$T/gtids" <(sort -k1,1 "$T/answers") | awk -v tag="$tag" '
		{ g = $1; ref = $2; indb = $3; told = $4; shape = $5; ans = $6
		  about = g " (" ref ", " shape ", client told " told ")"
		  if (indb == 1 && ans != "committed")
			print (tag == "Q" ? "Q1" : "R") " " about " committed in the databases, QUERY says " ans
		  else if (indb == 0 && ans == "committed")
			print (tag == "Q" ? "Q2" : "R") " " about " not in the databases, QUERY says committed"
		  else if (ans != "committed" && ans != "aborted" && ans != "unknown")
			print (tag == "Q" ? "Q3" : "R") " " about " QUERY says " ans " after quiescence" }
	' >>"$T/viol"
	[ "$n" -eq "$(wc -l <"$T/gtids")" ] || viol $key "$n answers to $(wc -l <"$T/gtids") queries"
}

# The first few QUERY violations once more through dtxctl, with its exit
# code and the coordinator's record of them.
explain() {
	local g
	for g in $(grep -E '^(Q1|Q2|Q3|R) ' "$T/viol" | awk '{print $2}' | sort -u | head -3); do
		local ans rc
		ans=$("$DTXCTL" --wait 2000 query "$g" 2>&1); rc=$?
		echo "# dtxctl query $g: $(echo "$ans" | tr '\n' ' ')(exit $rc)"
		"$DTXCTL" --wait 2000 show "$g" 2>&1 | head -8 | sed 's/^/#   show: /'
		local sg=${g//./:}
		grep -F "${g}:" "$T/coord.log" | tail -4 | sed 's/^/#   coord.log: /'
		for db in "${AGENTS[@]}"; do
			q $db "SELECT 'marker ' || gid || ' made ' || created FROM dtx.branches WHERE starts_with(gid, 'dtx:$sg:')
				UNION ALL SELECT 'ledger ' || ref || ' ' || account || ' ' || delta FROM ledger
				WHERE starts_with(gid, 'dtx:$sg:')" | sed "s/^/#   $db: /"
			grep -F "dtx:$sg:" "$T/agent-$db.log" | tail -2 | sed "s/^/#   agent-$db.log: /"
		done
	done
}

# --- one run --------------------------------------------------------------------
declare -A NTX=()
NQUERIES=0
NOT_QUIET=0
run() {
	local r=$1 secs=$2 out=$T/outcomes.$r bank t0 now ev sagas
	bank_setup
	saga_setup
	# in this shell, not a pipeline's subshell: bash reseeds RANDOM there
	schedule $((secs * 1000)) >"$T/schedule.raw"
	sort -n "$T/schedule.raw" >"$T/schedule"
	echo "# run $r: $secs s, $(wc -l <"$T/schedule") faults scheduled (schedule cksum $(cksum <"$T/schedule" | cut -d' ' -f1))"
	"$BANKTEST" -g -s $((SEED + r)) "$DTX_CLIENT" "$CLIENTS" "$secs" "$ACCOUNTS" "$out" >"$T/bank.out" 2>&1 &
	bank=$!
	ALL_PIDS+=("$bank")
	"$SAGATEST" "$DTX_CLIENT" 2 "$secs" 15 "$SACCOUNTS" "$T/sagas.$r" >"$T/sagas.out" 2>&1 &
	sagas=$!
	ALL_PIDS+=("$sagas")
	t0=$(now_ms)
	exec 3<"$T/schedule"
	read -r ev_at ev_what ev_target ev_arg <&3 || ev_at=
	while now=$(($(now_ms) - t0)); [ "$now" -lt $((secs * 1000)) ]; do
		heal due
		while [ -n "$ev_at" ] && [ "$ev_at" -le "$now" ]; do
			[ "$PG_UP_AT" -ne 0 ] || revive
			fault "$ev_what" "$ev_target" "$ev_arg"
			read -r ev_at ev_what ev_target ev_arg <&3 || ev_at=
		done
		sleep 0.01
	done
	exec 3<&-
	heal all
	revive
	# The clients stop at the run's end; each waits 2.5 s at most for an answer.
	local i=0
	while kill -0 "$bank" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	if kill -0 "$bank" 2>/dev/null; then
		kill_wait "$bank" KILL; viol W "the workload did not end 30 s after the run"
	fi
	wait "$bank" 2>/dev/null
	forget_pid "$bank"
	echo "# run $r workload: $(tail -1 "$T/bank.out")"
	# the saga clients resend with their keys until answered (15 s at most)
	i=0
	while kill -0 "$sagas" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	if kill -0 "$sagas" 2>/dev/null; then
		kill_wait "$sagas" KILL; viol W "the saga workload did not end 30 s after the run"
	fi
	wait "$sagas" 2>/dev/null
	forget_pid "$sagas"
	echo "# run $r sagas: $(tail -1 "$T/sagas.out")"
	wait_for 30 all_up || viol W "agents not all registered 30 s after the run: $("$DTXCTL" status | grep participant | tr '\n' ' ')"
	if ! wait_for 60 quiescent; then
		NOT_QUIET=$((NOT_QUIET + 1))
		viol W "not quiescent 60 s after the run: $("$DTXCTL" status | grep 'in flight' | tr '\n' ' '), $(prepared_count) prepared"
	fi
	check_db "$out"
	saga_check "$T/sagas.$r" | grep -v '^violations ' >>"$T/viol"
	check_queries Q
	# What QUERY said must survive a crash: once more kill -9, then ask again.
	kill_wait "$COORD_PID" KILL; forget_pid "$COORD_PID"
	restart_coord
	wait_for 30 all_up || viol W "agents not all registered 30 s after the last restart"
	wait_for 30 quiescent || viol W "not quiescent 30 s after the last restart"
	check_queries R
	# the workload's figures: outcome by shape, and how many unheard ones committed
	local k
	while read -r k; do NTX[$k]=$((${NTX[$k]:-0} + 1)); done < <(awk '{ print $2 "," ($3 ~ /,/ ? "multi-db" : "one-db") }' "$out")
	NTX[unheard-committed]=$((${NTX[unheard-committed]:-0} + $(awk '$3 == 1 && $4 == "unknown"' "$T/gtids" | wc -l)))
	NTX[one-db-committed-in-db]=$((${NTX[one-db-committed-in-db]:-0} + $(awk '$3 == 1 && $5 == "one-db"' "$T/gtids" | wc -l)))
}

# --- main -----------------------------------------------------------------------
dtx_start_pg
saga_init
dtx_start_coord || exit 1
for a in "${AGENTS[@]}"; do dtx_start_agent $a; done
wait_for 10 all_up || { echo "Bail out! agents did not register"; exit 1; }
: >"$T/viol.all"
for r in $(seq 1 "$RUNS"); do
	: >"$T/viol"
	secs=$((SECONDS_ALL / RUNS))
	[ "$r" -ne "$RUNS" ] || secs=$((SECONDS_ALL - secs * (RUNS - 1)))
	run "$r" "$secs"
	if [ -s "$T/viol" ]; then
		echo "# run $r: $(wc -l <"$T/viol") violations"
		for k in $(cut -d' ' -f1 "$T/viol" | sort -u); do
			grep "^$k " "$T/viol" | head -$MAX_SHOWN | sed "s/^/#   run $r: /"
			n=$(grep -c "^$k " "$T/viol")
			[ "$n" -le $MAX_SHOWN ] || echo "#   run $r: $k ... $((n - MAX_SHOWN)) more"
		done
		explain
	fi
	cat "$T/viol" >>"$T/viol.all"
done

nv() { grep -c "^$1 " "$T/viol.all"; }
echo "# summary: seed $SEED, $RUNS runs of $SECONDS_ALL s in all, one_phase = $ONE_PHASE"
for s in one-db multi-db; do
	echo "# transactions $s: committed ${NTX[committed,$s]:-0} aborted ${NTX[aborted,$s]:-0}" \
		"refused ${NTX[refused,$s]:-0} unknown ${NTX[unknown,$s]:-0}"
done
echo "# unheard outcomes found committed in the databases: ${NTX[unheard-committed]:-0};" \
	"one-database transfers committed in them: ${NTX[one-db-committed-in-db]:-0}"
echo "# faults: coordinator kills ${NF[coord-kill]}, agent kills ${NF[agent-kill]}, freezes ${NF[freeze]}," \
	"pg stops ${NF[pg-stop]}; daemons that exited by themselves ${NF[self-exit]}"
echo "# queries $NQUERIES; violations $(wc -l <"$T/viol.all"):" \
	"$(for k in W I1 I2 I3 I4 I5 G Q1 Q2 Q3 R S1 S2 S3 S4 S5 S6; do printf '%s %s ' $k "$(nv $k)"; done)"

fired=$([ "${NF[coord-kill]}" -gt 0 ] && [ "${NF[agent-kill]}" -gt 0 ] && [ "${NF[freeze]}" -gt 0 ] &&
	[ "${NF[pg-stop]}" -gt 0 ] &&
	[ "${NTX[committed,one-db]:-0}" -gt 0 ] && [ "${NTX[committed,multi-db]:-0}" -gt 0 ] && echo 0 || echo 1)
ok "$fired" "the workload committed one- and multi-database transfers under every kind of fault"
ok "$([ "$(nv W)" -eq 0 ] && [ "${NF[self-exit]}" -eq 0 ] && echo 0 || echo 1)" \
	"the daemons stayed up between faults, the system was quiescent after each run"
ok "$(nv I1)" "I1 every transfer is in all of its databases or in none"
ok "$(nv I2)" "I2 every outcome a client was told is what the databases hold"
ok "$(nv I3)" "I3 no prepared dtx branch is left"
ok "$(nv I4)" "I4 the total balance is conserved, no balance is negative"
ok "$(nv I5)" "I5 nothing was applied twice (balance = initial + ledger)"
ok "$(nv G)" "G every committed transfer has one GTID in the databases, the one its client was told"
ok "$(nv Q1)" "Q1 QUERY says committed for every transaction committed in the databases"
ok "$(nv Q2)" "Q2 QUERY says committed only for transactions committed in the databases"
ok "$(nv Q3)" "Q3 every QUERY is answered and decided after quiescence"
ok "$(nv R)" "R QUERY answers the same after one more kill -9 of the coordinator"
ok "$(nv S1)" "S1 no saga step or compensation was applied twice"
ok "$(nv S2)" "S2 every saga outcome a client was told is what the databases hold"
ok "$(nv S3)" "S3 nothing after a saga's pivot was compensated"
ok "$(nv S4)" "S4 every saga ended, completed or compensated"
ok "$(nv S5)" "S5 the sagas' money and stock are conserved"
ok "$(nv S6)" "S6 QUERY of every saga the barrier rows name agrees with them"
done_testing
