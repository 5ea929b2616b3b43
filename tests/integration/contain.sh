#!/usr/bin/env bash
# Branches stay inside their transaction: the agent refuses, before it
# sends anything, every statement that is not one SELECT, INSERT, UPDATE,
# DELETE or MERGE (transaction control, SET, COPY, DO, several statements
# in one entry, ...); a branch's session settings do not survive into the
# next branch on the same connection; a branch does not outlive its
# transaction's timeout; a result is bounded.
. "$(dirname "$0")/lib.sh"
# pool_size 2: every prepare runs on the same connection (one is kept for
# decisions), so what one branch leaves in its session the next one sees.
DTX_TEST_POOL_SIZE=2 dtx_start_all

TAKES='a branch takes one SELECT, INSERT, UPDATE, DELETE or MERGE'
ins() { echo "INSERT INTO orders VALUES ('$1', 'alice', 'widget', 1, 10)"; }
bank_ok=(--on bank --sql "UPDATE wallets SET balance = balance WHERE customer = 'alice'" --expect 1)

# refused WHY SQL...: a two-phase transaction whose shop branch runs the
# statements SQL... aborts, saying shop refused them with WHY.
refused() {
	local why=$1 args=() out rc
	shift
	for s in "$@"; do args+=(--sql "$s"); done
	out=$("$DTXCTL" exec --timeout 3000 --wait 5000 --on shop "${args[@]}" "${bank_ok[@]}"); rc=$?
	is "$rc" 1 "aborted: $*"
	like "$out" "shop voted no: $why" "... shop voted no: $why"
}

refused "statement 2 refused: COMMIT is transaction control; $TAKES" "$(ins h1)" "COMMIT"
refused "statement 2 refused: COMMIT is transaction control" "$(ins h2)" "END"
refused "statement 1 refused: it holds 2 statements" "ROLLBACK; $(ins h3)"
refused "statement 2 refused: PREPARE TRANSACTION is transaction control" "$(ins h4)" "PREPARE TRANSACTION 'x'"
refused "statement 1 refused: COMMIT is transaction control" "COMMIT" "ROLLBACK PREPARED 'dtx:c1:1:1:0'"
refused "statement 1 refused: ROLLBACK is transaction control" "ROLLBACK" "$(ins h5)"
refused "statement 1 refused: SAVEPOINT is transaction control" "SAVEPOINT s"
refused "statement 1 refused: SET is a utility statement" "SET lock_timeout = 0"
refused "statement 1 refused: SET is a utility statement" "SET search_path = pg_temp"
refused "statement 1 refused: SET is a utility statement" "SET LOCAL statement_timeout = 0"
refused "statement 1 refused: RESET is a utility statement" "RESET ALL"
refused "statement 1 refused: COPY is a utility statement" "COPY orders TO STDOUT"
refused "statement 1 refused: DO is a utility statement" "DO \$\$BEGIN PERFORM 1; END\$\$"
refused "statement 1 refused: CALL is a utility statement" "CALL p()"
refused "statement 1 refused: SELECT INTO creates a table" "SELECT 1 AS a INTO t1"
refused "statement 1 refused: SELECT INTO creates a table" "SELECT 1 AS a INTO t3 UNION SELECT 2"
refused "statement 2 refused: it holds a backslash" \
	"SELECT set_config('standard_conforming_strings', 'off', true)" "SELECT 'a\\', ' INTO t4 FROM orders --'"
refused "statement 1 refused: CreateStmt is a utility statement" "CREATE TABLE t2 (a int)"
refused "statement 1 refused: it is empty" " -- nothing"
refused "statement 1 refused: it holds 2 statements" "$(ins h6); $(ins h7)"
refused "statement 1 refused: syntax error at .*sqlstate 42601" "INSERT INTO orders VALUES ('h8'"
refused "statement 1 refused: DISCARD is a utility statement" "DISCARD ALL"
is "$(q shop "SELECT count(*) FROM orders WHERE ref LIKE 'h%'")" 0 "no refused branch left a row"
is "$(q postgres "SELECT count(*) FROM pg_prepared_xacts")" 0 "nothing is left prepared, not even 'x'"
is "$(q shop "SELECT count(*) FROM pg_tables WHERE tablename IN ('t1', 't2', 't3', 't4')")" 0 "no table was made"

# Accepted: one SELECT, INSERT, UPDATE, DELETE or MERGE each, a trailing
# semicolon, a data-modifying WITH.
out=$("$DTXCTL" exec --timeout 3000 --on shop --sql "$(ins a1);" --expect 1 \
	--sql "WITH d AS (DELETE FROM orders WHERE ref = 'a1' RETURNING ref) INSERT INTO orders SELECT ref || 'b', 'alice', 'widget', 1, 10 FROM d" --expect 1 \
	--sql "UPDATE orders SET qty = 2 WHERE ref = 'a1b'" --expect 1 \
	--sql "MERGE INTO orders o USING (SELECT 'a1b' AS ref) s ON o.ref = s.ref WHEN MATCHED THEN UPDATE SET qty = 3" --expect 1 \
	--sql "SELECT qty FROM orders WHERE ref = 'a1b' AND qty = 3" --expect 1 \
	--sql "VALUES (1)" "${bank_ok[@]}"); rc=$?
is "$rc" 0 "ordinary statements of every accepted kind commit"
is "$(q shop "SELECT qty FROM orders WHERE ref = 'a1b'")" 3 "... and did their work"

# --- nothing a branch sets survives into the next branch ------------------
# set_config(..., false) in a SELECT cannot be told from any other SELECT:
# it is accepted, and the session is reset after the branch.
# leaks NAME VALUE DEFAULT [one]: a branch sets NAME to VALUE for the
# session and commits (two phases, or one phase with "one"); the next
# branch on the same connection sees DEFAULT.
leaks() {
	local other=("${bank_ok[@]}") out rc
	[ "${4:-}" = one ] && other=()
	out=$("$DTXCTL" exec --timeout 3000 --on shop --sql "SELECT set_config('$1', '$2', false)" --expect 1 "${other[@]}"); rc=$?
	is "$rc" 0 "a branch that sets $1 = $2 for its session commits${4:+ (one phase)}"
	out=$("$DTXCTL" exec --timeout 3000 --on shop --sql "SELECT 1 WHERE current_setting('$1') = '$3'" --expect 1 \
		--sql "$(ins "n-$1-${4:-two}")" --expect 1 "${other[@]}"); rc=$?
	is "$rc" 0 "... the next branch sees $1 = $3 and writes: $out"
}
leaks search_path pg_temp '"$user", public'
leaks lock_timeout 0 1s
leaks default_transaction_read_only on off
leaks search_path pg_temp '"$user", public' one
leaks default_transaction_read_only on off one
leaks lock_timeout 0 1s one
# statement_timeout: in a branch, what is left of the global timeout (SET LOCAL)
out=$("$DTXCTL" exec --timeout 3000 --on shop --sql "SELECT set_config('statement_timeout', '1', false)" --expect 1); rc=$?
is "$rc" 0 "a branch that sets statement_timeout = 1ms for its session commits"
out=$("$DTXCTL" exec --timeout 3000 --on shop --sql "SELECT pg_sleep(0.05), current_setting('statement_timeout') WHERE current_setting('statement_timeout') ~ '^(2[0-9]{3}ms|3s)$'" --expect 1); rc=$?
is "$rc" 0 "... the next branch runs with what is left of its 3 s timeout: $out"

# on the way out of a failed branch too
out=$("$DTXCTL" exec --timeout 3000 --on shop --sql "SELECT set_config('search_path', 'pg_temp', false)" \
	--sql "INSERT INTO no_such_table VALUES (1)" "${bank_ok[@]}"); rc=$?
is "$rc" 1 "a branch that sets search_path and then fails aborts"
out=$("$DTXCTL" exec --timeout 3000 --on shop --sql "SELECT 1 WHERE current_setting('search_path') = '\"\$user\", public'" --expect 1 \
	"${bank_ok[@]}"); rc=$?
is "$rc" 0 "... and the next branch sees the default search_path"

# a session advisory lock taken by a branch is released with it
out=$("$DTXCTL" exec --timeout 3000 --on shop --sql "SELECT pg_advisory_lock(42)" "${bank_ok[@]}"); rc=$?
is "$rc" 0 "a branch that takes a session advisory lock commits"
is "$(q shop "SELECT pg_try_advisory_lock(42)")" t "... and the lock is not held after it"
# (x).f is f(x): attribute notation calls a function as well
out=$("$DTXCTL" exec --timeout 3000 --on shop --sql "SELECT (43::bigint).pg_advisory_lock" "${bank_ok[@]}"); rc=$?
is "$rc" 0 "a branch that takes the lock in attribute notation commits"
is "$(q shop "SELECT pg_try_advisory_lock(43)")" t "... and the lock is not held after it either"

# A quiet branch (its statements name no function) is not followed by the
# session reset. What it can leave, a sequence value its column default
# took, is reset before a branch that calls functions runs there.
q shop "CREATE TABLE serials (id serial PRIMARY KEY, v int)" >/dev/null
out=$("$DTXCTL" exec --timeout 3000 --on shop --sql "INSERT INTO serials (v) VALUES (1)" --expect 1); rc=$?
is "$rc" 0 "a quiet branch whose column default takes a sequence value commits"
out=$("$DTXCTL" exec --timeout 3000 --on shop --sql "SELECT lastval()" --expect 1); rc=$?
is "$rc" 1 "the next branch on that session, calling lastval(), does not see it"
like "$out" "lastval is not yet defined in this session" "... PostgreSQL says none was taken in its session"
# Nor can a quiet branch's default read one: a quiet branch ends with
# DISCARD SEQUENCES.
q shop "CREATE TABLE parents (id serial PRIMARY KEY); CREATE TABLE kids (parent int DEFAULT currval('parents_id_seq'), v int)" >/dev/null
out=$("$DTXCTL" exec --timeout 3000 --on shop --sql "INSERT INTO parents DEFAULT VALUES" --expect 1); rc=$?
is "$rc" 0 "a quiet branch takes a parent id from a sequence"
out=$("$DTXCTL" exec --timeout 3000 --on shop --sql "INSERT INTO kids (v) VALUES (1)" --expect 1); rc=$?
is "$rc $(q shop "SELECT count(*) FROM kids")" "1 0" "the next quiet branch's currval() default does not get it"
like "$out" "currval of sequence \"parents_id_seq\" is not yet defined in this session" "... PostgreSQL says why"
# PostgreSQL's own pg_settings: its rule makes an UPDATE a set_config()
out=$("$DTXCTL" exec --timeout 3000 --on shop --sql "UPDATE pg_settings SET setting = '0' WHERE name = 'lock_timeout'" "${bank_ok[@]}"); rc=$?
is "$rc" 0 "a branch that updates pg_settings commits"
out=$("$DTXCTL" exec --timeout 3000 --on shop --sql "SELECT 1 WHERE current_setting('lock_timeout') = '1s'" --expect 1 \
	--sql "$(ins n-pg-settings)" --expect 1 "${bank_ok[@]}"); rc=$?
is "$rc" 0 "... the next branch sees lock_timeout = 1s: $out"

# --- a branch does not outlive its transaction -----------------------------
sleeping() { q shop "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(20)' AND state = 'active'"; }
t0=$(date +%s%N)
out=$("$DTXCTL" exec --timeout 1500 --wait 10000 --on shop --sql "SELECT pg_sleep(20)" "${bank_ok[@]}"); rc=$?
t1=$(date +%s%N)
is "$rc" 1 "a branch sleeping past the global timeout aborts"
ok $(( (t1 - t0) / 1000000 < 12000 ? 0 : 1 )) "... long before the sleep's 20 s: within 12 s ($(( (t1 - t0) / 1000000 )) ms) of a 1.5 s timeout"
wait_for 5 sh -c "[ \$(PGOPTIONS='-c client_min_messages=warning' '$PGBIN/psql' -X -h '$PGSOCK' -p $PGPORT -U postgres -d shop -Atqc \"SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(20)' AND state = 'active'\") = 0 ]"
ok $? "... and its statement no longer runs in PostgreSQL"
like "$(grep -F "$(echo "$out" | awk '{print $1}' | tr . :)" "$T/agent-shop.log" | tr '\n' ' ')" \
	'statement timeout|statements cancelled' "... the agent cut it short (statement_timeout or cancel)"

# A rollback that arrives while the branch runs cancels it, long before
# the timeout: bank votes no at once.
t0=$(date +%s%N)
out=$("$DTXCTL" exec --timeout 10000 --wait 15000 --on shop --sql "SELECT pg_sleep(20)" \
	--on bank --sql "UPDATE wallets SET balance = balance WHERE customer = 'nobody'" --expect 1); rc=$?
t1=$(date +%s%N)
is "$rc" 1 "a transaction whose other branch votes no aborts"
ok $(( (t1 - t0) / 1000000 < 8000 ? 0 : 1 )) "... before its timeout: within 8 s ($(( (t1 - t0) / 1000000 )) ms), not at its 10 s timeout"
wait_for 5 sh -c "[ \$(PGOPTIONS='-c client_min_messages=warning' '$PGBIN/psql' -X -h '$PGSOCK' -p $PGPORT -U postgres -d shop -Atqc \"SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(20)' AND state = 'active'\") = 0 ]"
ok $? "... and the sleeping shop branch was cancelled"
g=$(echo "$out" | awk '{print $1}' | tr . :)
wait_for 5 grep -q "$g:0: rolled back while running: its statements cancelled" "$T/agent-shop.log"
ok $? "... by the agent, when the rollback arrived"
out=$("$DTXCTL" exec --timeout 3000 --on shop --sql "$(ins after-cancel)" --expect 1 "${bank_ok[@]}"); rc=$?
is "$rc" 0 "the next branch on that connection commits"
wait_for 5 no_prepared_left; ok $? "nothing is left prepared"

# --- a result is bounded (defaults: 100000 rows, 16 MiB) -------------------
out=$("$DTXCTL" exec --timeout 5000 --on shop --sql "SELECT g FROM generate_series(1, 50000) g" --expect 50000 "${bank_ok[@]}"); rc=$?
is "$rc" 0 "a result within the bound is counted (expect 50000) and commits"
out=$("$DTXCTL" exec --timeout 5000 --on shop --sql "SELECT g FROM generate_series(1, 200000) g" "${bank_ok[@]}"); rc=$?
is "$rc" 1 "a result of 200000 rows aborts"
like "$out" 'shop voted no: statement 1 returned more than 100000 rows or 16777216 bytes' "... the agent says why"
out=$("$DTXCTL" exec --timeout 20000 --wait 25000 --on shop --sql "SELECT repeat('x', 1000000) FROM generate_series(1, 200)" "${bank_ok[@]}"); rc=$?
is "$rc" 1 "a result of 200 MB aborts"
like "$out" 'shop voted no: statement 1 returned more than' "... over the byte bound"
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/${AGENT_PID[shop]}/status")
ok $(( hwm < 65536 ? 0 : 1 )) "... and the agent never held it: peak resident $hwm kB"
out=$("$DTXCTL" exec --timeout 3000 --on shop --sql "$(ins after-big)" --expect 1 "${bank_ok[@]}"); rc=$?
is "$rc" 0 "the next branch on that connection commits"
wait_for 5 no_prepared_left; ok $? "nothing is left prepared"

done_testing
