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
refused "statement 1 refused: CreateStmt is a utility statement" "CREATE TABLE t2 (a int)"
refused "statement 1 refused: it is empty" " -- nothing"
refused "statement 1 refused: it holds 2 statements" "$(ins h6); $(ins h7)"
refused "statement 1 refused: syntax error at .*sqlstate 42601" "INSERT INTO orders VALUES ('h8'"
refused "statement 1 refused: DISCARD is a utility statement" "DISCARD ALL"
is "$(q shop "SELECT count(*) FROM orders WHERE ref LIKE 'h%'")" 0 "no refused branch left a row"
is "$(q postgres "SELECT count(*) FROM pg_prepared_xacts")" 0 "nothing is left prepared, not even 'x'"
is "$(q shop "SELECT count(*) FROM pg_tables WHERE tablename IN ('t1', 't2')")" 0 "no table was made"

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

done_testing
