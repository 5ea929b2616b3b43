#!/usr/bin/env bash
# Saga steps and the barrier (DESIGN.md, "Saga steps and the barrier").
# A fake coordinator (tests/tools/dtx-roguecoord) sends STEP frames to a
# real agent, running as the least-privilege role of dtx-pgagent(8); what
# the agent answers (RESULT) is checked against the rows of the
# database: a step runs once, a repeated RUN answers DONE without
# running; a compensation of a step that never ran fences it and does
# nothing, a later RUN answers FENCED; a compensation runs once; a failed
# step leaves no barrier row and says why; PROBE tells whether a step
# ran and fences it if not; a compensation that arrives while its step
# runs waits for it and then undoes it; hostile statements are refused;
# a foreign GID is refused; old barrier rows are pruned; an agent that
# dies at pga.step_done or pga.step_sent answers the truth when the step
# comes again.
. "$(dirname "$0")/lib.sh"
ROGUE=$top_builddir/tests/tools/dtx-roguecoord
dtx_start_pg

# --- the role of dtx-pgagent(8): owns schema dtx, granted the table --------
q postgres "CREATE ROLE dtx LOGIN" >/dev/null
q shop "CREATE SCHEMA dtx AUTHORIZATION dtx; GRANT USAGE ON SCHEMA public TO dtx" >/dev/null
q shop "CREATE TABLE public.acct (id int PRIMARY KEY, n int NOT NULL);
	INSERT INTO public.acct VALUES (1, 0), (2, 0);
	GRANT SELECT, INSERT, UPDATE, DELETE ON public.acct TO dtx" >/dev/null
cat >"$T/shop.statements" <<'EOF'
bump 1 UPDATE public.acct SET n = n + $1::int WHERE id = 1
EOF
chmod 644 "$T/shop.statements"
cat >"$T/agent-shop.conf" <<EOF
[agent]
name = shop
coordinator = ipc://$T/rogue.sock
conninfo = host=$PGSOCK port=$PGPORT dbname=shop user=dtx
pool_size = 3
heartbeat_ms = 200
log_level = info
statements = $T/shop.statements
marker_retention_s = 60
marker_prune_interval_s = 1
EOF

n() { q shop "SELECT n FROM public.acct WHERE id = ${1:-1}"; }
rows() { # rows SAGA: its barrier rows, "step kind result" each
	q shop "SELECT step || ' ' || kind || ' ' || result FROM dtx.barrier
		WHERE saga = '$1' ORDER BY step, kind" | tr '\n' ';'
}
# session OUT NRESULTS ACTION...: one fake coordinator on the agent's
# endpoint until NRESULTS RESULTs came (at most 20 s), its lines in
# $T/OUT and in $out. The agent, registered with the one before, is told
# ENOTREG and says HELLO again.
session() {
	local o=$1 nres=$2
	shift 2
	"${AS_DAEMON[@]}" "$ROGUE" serve "ipc://$T/rogue.sock" --id c1 --for 20000 \
		--results "$nres" "$@" >"$T/$o" 2>&1 &
	local pid=$!
	ALL_PIDS+=("$pid")
	wait_exit 30 "$pid" || bail "the fake coordinator of $o did not end"
	out=$(cat "$T/$o")
	[ "$(grep -c '^RESULT' <<<"$out")" -ge "$nres" ] ||
		echo "# $o: fewer than $nres results: $out"
}
start_agent() {
	"${AS_DAEMON[@]}" "$PGAGENT" -c "$T/agent-shop.conf" >>"$T/agent-shop.log" 2>&1 &
	AGENT_PID=$!
	ALL_PIDS+=("$!")
}
INC="UPDATE public.acct SET n = n + 1 WHERE id = 1"
DEC="UPDATE public.acct SET n = n - 1 WHERE id = 1"

# --- 1. a step runs once; RUN again answers DONE without running ----------
# (A STEP repeated while the same one is still queued or running is
# dropped, that job answers it: each repeat below is sent once the first
# has answered, so that the barrier answers it.)
"${AS_DAEMON[@]}" "$ROGUE" serve "ipc://$T/rogue.sock" --id c1 --for 20000 --results 1 \
	step dtx:c1:1:100:0 run=1 "$INC" >"$T/s1" 2>&1 &
pid=$!
ALL_PIDS+=("$pid")
start_agent
wait_exit 30 "$pid" || bail "the first fake coordinator did not end"
is "$(grep '^RESULT' "$T/s1")" "RESULT dtx:c1:1:100:0 done " "a step RUN answers DONE"
session s1b 1 step dtx:c1:1:100:0 run=1 "$INC"
is "$(grep '^RESULT' <<<"$out")" "RESULT dtx:c1:1:100:0 done done before" \
	"... RUN again answers DONE, 'done before'"
is "$(n)" 1 "... and ran once: the row changed once"
is "$(rows c1.1.100)" "0 a d;" "... its barrier row: step 0, kind a, result d"
is "$(q shop "SELECT tableowner FROM pg_tables WHERE schemaname = 'dtx' AND tablename = 'barrier'")" dtx \
	"dtx.barrier was made at start by role dtx (not a superuser)"

# --- 2. compensate before it ran: fenced; a later RUN does not run --------
session s2 2 step dtx:c1:1:101:0 compensate=1 "$DEC" sleep 500 step dtx:c1:1:101:0 run=1 "$INC"
like "$out" "RESULT dtx:c1:1:101:0 done the step had not run: fenced, nothing to undo" \
	"COMPENSATE of a step that never ran answers DONE: fenced, nothing to undo"
like "$out" "RESULT dtx:c1:1:101:0 fenced compensated or probed before it ran: fenced" \
	"... a RUN after it answers FENCED"
is "$(n)" 1 "... neither the compensation nor the step ran"
is "$(rows c1.1.101)" "0 a f;0 c d;" "... the step's row says fenced, the compensation's is there"

# --- 3. a compensation runs once -------------------------------------------
session s3 2 step dtx:c1:1:102:0 run=1 "$INC" sleep 500 step dtx:c1:1:102:0 compensate=1 "$DEC"
res=$(grep '^RESULT' <<<"$out" | tr '\n' ';')
session s3b 1 step dtx:c1:1:102:0 compensate=1 "$DEC"
is "$res$(grep '^RESULT' <<<"$out")" \
	"RESULT dtx:c1:1:102:0 done ;RESULT dtx:c1:1:102:0 done compensated;RESULT dtx:c1:1:102:0 done compensated before" \
	"RUN, COMPENSATE, COMPENSATE: done, compensated, compensated before"
is "$(n)" 1 "... the step and its compensation ran once each (+1 -1)"
is "$(rows c1.1.102)" "0 a d;0 c d;" "... both barrier rows"

# --- 4. a failed step leaves nothing and says why --------------------------
session s4 3 step dtx:c1:1:103:0 run=2 "$INC" step dtx:c1:1:104:0 run "UPDATE public.acct SET n = n / 0 WHERE id = 1" \
	sleep 500 step dtx:c1:1:104:0 compensate "$DEC"
like "$out" "RESULT dtx:c1:1:103:0 failed statement 1 touched 1 rows, expected 2$" \
	"a step whose row count is not as expected answers FAILED with the reason"
like "$out" "RESULT dtx:c1:1:104:0 failed statement 1 failed: division by zero \[sqlstate 22012\]" \
	"a step whose statement fails answers FAILED with the reason and SQLSTATE"
is "$(n)" 1 "... neither changed anything"
is "$(rows c1.1.103)" "" "... the first left no barrier row"
like "$out" "RESULT dtx:c1:1:104:0 done the step had not run: fenced" \
	"... the second's compensation finds it never ran"

# --- 5. PROBE ---------------------------------------------------------------
session s5 3 step dtx:c1:1:100:0 probe step dtx:c1:1:105:0 probe sleep 500 \
	step dtx:c1:1:105:0 run=1 "$INC"
like "$out" "RESULT dtx:c1:1:100:0 done it ran" "PROBE of a step that ran answers DONE"
like "$out" "RESULT dtx:c1:1:105:0 fenced it had not run: fenced" "PROBE of a step that never ran answers FENCED"
is "$(rows c1.1.105)" "0 a f;" "... and fences it"
like "$out" "RESULT dtx:c1:1:105:0 fenced compensated or probed before it ran" "... a RUN after it answers FENCED"
is "$(n)" 1 "... and does not run"
is "$(rows c1.1.100)" "0 a d;" "PROBE of a step that ran changes nothing"

# --- 6. a compensation arriving while its step runs waits for it -----------
session s6 2 step dtx:c1:1:106:0 run=1 "UPDATE public.acct SET n = n + 1 WHERE id = 2 AND (SELECT true FROM pg_sleep(2))" \
	sleep 300 step dtx:c1:1:106:0 compensate=1 "UPDATE public.acct SET n = n - 1 WHERE id = 2"
is "$(grep '^RESULT' <<<"$out" | tr '\n' ';')" \
	"RESULT dtx:c1:1:106:0 done ;RESULT dtx:c1:1:106:0 done compensated;" \
	"a COMPENSATE sent while its step runs waits for the step, then undoes it"
is "$(n 2)" 0 "... the step and its compensation both ran (+1 -1)"
is "$(rows c1.1.106)" "0 a d;0 c d;" "... both barrier rows"

# --- 7. hostile and named statements -----------------------------------------
session s7 5 step dtx:c1:1:107:0 run COMMIT step dtx:c1:1:108:0 run "SET search_path = evil" \
	step dtx:c1:1:102:1 compensate "SET ROLE postgres" \
	step dtx:c1:1:109:0 run=1 "@bump,5" step dtx:c1:1:110:0 run @nosuch
like "$out" "RESULT dtx:c1:1:107:0 failed statement 1 refused: COMMIT is transaction control" \
	"a step of COMMIT is refused (FAILED) by the statement check"
like "$out" "RESULT dtx:c1:1:108:0 failed statement 1 refused: SET is a utility statement" \
	"... a step of SET too"
like "$out" "RESULT dtx:c1:1:102:1 failed statement 1 refused: SET is a utility statement" \
	"... and a compensation of SET ROLE"
is "$(q shop "SELECT count(*) FROM dtx.barrier WHERE saga IN ('c1.1.107', 'c1.1.108') OR (saga = 'c1.1.102' AND step = 1)")" 0 \
	"... none of them reached the barrier"
like "$out" "RESULT dtx:c1:1:109:0 done" "a step of a named statement runs"
is "$(n)" 6 "... with its parameter (+5)"
like "$out" "RESULT dtx:c1:1:110:0 failed statement 1: no statement 'nosuch' is defined in this agent \[sqlstate 26000\]" \
	"an unknown named statement answers FAILED (26000)"

# --- 8. GIDs that are not the coordinator's ----------------------------------
session s8 1 step dtx:c2:1:200:0 run=1 "$INC" step saga-x run=1 "$INC" \
	step dtx:c1:01:200:0 compensate "$DEC" step dtx:c1:1:112:0 7 "$INC" \
	step dtx:c1:1:111:0 probe
like "$out" "ERROR -1 'dtx:c2:1:200:0' is a GID of coordinator c2, not of c1" \
	"a STEP of another coordinator's GID is refused with ERROR, no RESULT"
like "$out" "ERROR -1 'saga-x' is not a dtx GID" "... so is one that is not a dtx GID"
like "$out" "ERROR -1 'dtx:c1:01:200:0' is not a dtx GID" "... and a look-alike of c1's"
like "$out" "ERROR -1 STEP dtx:c1:1:112:0: code 7 is not known" \
	"a STEP of an unknown code is refused"
is "$(grep -c '^RESULT' <<<"$out")" 1 "... only the step of c1 is answered"
is "$(n)" 6 "... nothing of them ran"
is "$(q shop "SELECT count(*) FROM dtx.barrier WHERE saga NOT LIKE 'c1.1.%'")" 0 "... nor reached the barrier"

# --- 9. old barrier rows are pruned ------------------------------------------
q shop "INSERT INTO dtx.barrier VALUES ('c1.1.900', 0, 'a', 'd', now() - interval '2 days')" >/dev/null
old_gone() { [ "$(q shop "SELECT count(*) FROM dtx.barrier WHERE saga = 'c1.1.900'")" = 0 ]; }
wait_ok 15 "a barrier row older than marker_retention_s is pruned" old_gone
is "$(rows c1.1.100)" "0 a d;" "... a new one is kept"

# --- 10. crash points --------------------------------------------------------
# crashed AGENT-STATUS: the agent started with DTX_CRASH ended at it
crashed() { is "$1" 99 "the agent died at $DTX_CRASH"; }
kill_wait "$AGENT_PID"
export DTX_CRASH=pga.step_done
start_agent
session s10 0 step dtx:c1:1:120:0 run=1 "$INC" sleep 1500
wait_exit 20 "$AGENT_PID"
crashed $?
unset DTX_CRASH
is "$(grep -c '^RESULT' <<<"$out")" 0 "... after the step committed, before its RESULT: none came"
is "$(n)" 7 "... the step's work is committed"
is "$(rows c1.1.120)" "0 a d;" "... with its barrier row"
start_agent
session s10b 1 step dtx:c1:1:120:0 run=1 "$INC"
is "$(grep '^RESULT' <<<"$out")" "RESULT dtx:c1:1:120:0 done done before" "... the RUN sent again answers DONE, 'done before'"
is "$(n)" 7 "... without running again"
kill_wait "$AGENT_PID"
export DTX_CRASH=pga.step_sent
start_agent
session s11 0 step dtx:c1:1:121:0 run=1 "$INC" sleep 1500
wait_exit 20 "$AGENT_PID"
crashed $?
unset DTX_CRASH
is "$(grep -c '^RESULT' <<<"$out")" 0 "... with the step's pipeline sent, nothing read: no RESULT"
start_agent
session s11b 1 step dtx:c1:1:121:0 run=1 "$INC"
is "$(grep '^RESULT' <<<"$out")" "RESULT dtx:c1:1:121:0 done " "... the RUN sent again runs (nothing had committed) and answers DONE"
is "$(n)" 8 "... once"
is "$(rows c1.1.121)" "0 a d;" "... with its barrier row"

kill_wait "$AGENT_PID"
like "$(cat "$T/agent-shop.log")" "STEP refused, nothing run: 'dtx:c2:1:200:0'" "the agent logs the refusal"
done_testing
