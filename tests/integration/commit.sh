#!/usr/bin/env bash
# Two-phase commit across 2 and 3 databases; aborts on a NO vote and on a
# statement error; unknown participants and malformed frames refused while
# the daemon keeps serving; outcomes queried by GTID. Old marker rows are
# pruned while the agents run.
. "$(dirname "$0")/lib.sh"
DTX_TEST_MARKER_PRUNE_S=1 dtx_start_all

# --- commit across three databases -----------------------------------------
out=$(place_order o1 alice widget 2); rc=$?
is "$rc" 0 "a good order commits (exit 0)"
like "$out" '^c1\.[0-9]+\.[0-9]+ committed$' "dtxctl prints the GTID and 'committed'"
gtid=${out%% *}
is "$(q shop "SELECT customer || ':' || qty || ':' || total FROM orders WHERE ref = 'o1'")" "alice:2:20" "shop has the order"
is "$(q bank "SELECT balance FROM wallets WHERE customer = 'alice'")" 80 "bank took the price"
is "$(q stock "SELECT qty FROM items WHERE item = 'widget'")" 3 "stock took the quantity"
wait_for 5 no_prepared_left; ok $? "no prepared branch is left after the commit"
is "$(q bank "SELECT count(*) FROM dtx.branches WHERE gid LIKE 'dtx:c1:%'")" 1 "bank kept a marker row for its branch"

out=$("$DTXCTL" query "$gtid"); rc=$?
is "$rc" 0 "query of the committed GTID exits 0"
like "$out" "^$gtid committed" "query says committed"

# --- commit across two databases -------------------------------------------
out=$("$DTXCTL" exec \
	--on bank --sql "UPDATE wallets SET balance = balance - 5 WHERE customer = 'alice'" --expect 1 \
	--on stock --sql "UPDATE items SET qty = qty + 1 WHERE item = 'widget'" --expect 1); rc=$?
is "$rc" 0 "a two-database transaction commits"
is "$(q bank "SELECT balance FROM wallets WHERE customer = 'alice'")" 75 "bank applied it"
is "$(q stock "SELECT qty FROM items WHERE item = 'widget'")" 4 "stock applied it"

# --- abort on a NO vote: insufficient funds -------------------------------
out=$(place_order o2 bob gadget 1); rc=$?
is "$rc" 1 "an order bob cannot pay for aborts (exit 1)"
like "$out" 'aborted: bank voted no: statement 1 touched 0 rows, expected 1 \(participant bank\)' \
	"the client is told bank voted no, and why"
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 'o2'")" 0 "shop has no order o2"
is "$(q bank "SELECT balance FROM wallets WHERE customer = 'bob'")" 20 "bob's wallet is untouched"
is "$(q stock "SELECT qty FROM items WHERE item = 'gadget'")" 1 "the gadget is still in stock"

# --- abort on a NO vote: insufficient stock --------------------------------
out=$(place_order o3 alice widget 6); rc=$?  # 60 is affordable, 4 are in stock
is "$rc" 1 "an order for more widgets than there are aborts"
like "$out" 'aborted: stock voted no: .*\(participant stock\)' "the client is told stock voted no"
is "$(q bank "SELECT balance FROM wallets WHERE customer = 'alice'")" 75 "alice's wallet is untouched"
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 'o3'")" 0 "shop has no order o3"

# --- abort on a statement error --------------------------------------------
out=$("$DTXCTL" exec \
	--on shop --sql "INSERT INTO orders VALUES ('o4', 'alice', 'widget', 1, 10)" \
	--on bank --sql "UPDATE no_such_table SET x = 1"); rc=$?
is "$rc" 1 "a statement error aborts"
like "$out" 'bank voted no: statement 1 failed: relation "no_such_table" does not exist \(participant bank, sqlstate 42P01\)' \
	"the client gets the SQLSTATE and PostgreSQL's message"
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 'o4'")" 0 "shop's branch was rolled back"

# A constraint violation is a NO vote too (CHECK balance >= 0).
out=$("$DTXCTL" exec --on bank --sql "UPDATE wallets SET balance = balance - 1000 WHERE customer = 'bob'" \
	--on shop --sql "INSERT INTO orders VALUES ('o5', 'bob', 'widget', 1, 10)"); rc=$?
is "$rc" 1 "a CHECK violation aborts"
like "$out" 'sqlstate 23514' "... with SQLSTATE 23514"

# --- refused requests -------------------------------------------------------
out=$("$DTXCTL" exec --on warehouse --sql "SELECT 1" 2>&1); rc=$?
is "$rc" 3 "a transaction naming an unknown participant is refused (exit 3)"
like "$out" "unknown participant 'warehouse'" "with a clear error naming it"

# Malformed frames: garbage, a lying array header, a wrong version.
out=$("$RAWFRAME" "$DTX_CLIENT" "c1c1c1")
like "$out" '^ERROR -3 invalid msgpack byte 0xc1' "garbage gets an ERROR frame"
out=$("$RAWFRAME" "$DTX_CLIENT" "82a17601a174dd7fffffff")
like "$out" '^ERROR -5 container of 2147483647 items exceeds' "an array claiming 2^31 items gets an ERROR"
out=$("$RAWFRAME" "$DTX_CLIENT" "82a17602a174a450494e47")
like "$out" '^ERROR -4 protocol version 2' "version 2 gets an ERROR naming the version"
out=$("$RAWFRAME" "$DTX_CLIENT" "82a17601a174a450494e47")
like "$out" '^ERROR -3 the client endpoint takes TX, SAGA and QUERY only' "a PING on the client endpoint is refused"
out=$("$RAWFRAME" "ipc://$T/agent.sock" "82a17601a174a4564f5445")
like "$out" '^ERROR -3 VOTE lacks a required field' "a VOTE without fields is refused on the agent endpoint"
kill -0 "$COORD_PID"; ok $? "coordinatord is still running"
out=$(place_order o6 alice widget 1); rc=$?
is "$rc" 0 "and still commits transactions after the bad frames"

# --- many transactions on one hot row ---------------------------------------
# More concurrent branches than the agent has connections, all queuing on
# the row lock that a prepared branch holds until its COMMIT PREPARED: the
# decisions must not wait behind the blocked prepares.
# (the last order's COMMIT PREPARED may still be on its way)
wait_or_bail 10 no_prepared_left
before=$(q bank "SELECT balance FROM wallets WHERE customer = 'alice'")
pids=()
for i in $(seq 1 12); do
	"$DTXCTL" exec --timeout 5000 \
		--on bank --sql "UPDATE wallets SET balance = balance - 1 WHERE customer = 'alice'" --expect 1 \
		--on shop --sql "INSERT INTO orders VALUES ('hot$i', 'alice', 'widget', 1, 1)" --expect 1 \
		>/dev/null 2>&1 &
	pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
is "$failed" 0 "12 concurrent transactions on one hot row all commit"
is "$(q bank "SELECT balance FROM wallets WHERE customer = 'alice'")" $((before - 12)) "the hot row took all 12"

# --- read-only branches -----------------------------------------------------------
decisions() { ctl_get group_commits decisions status; }
records() { ctl_get record state show "$1" | tr '\n' ' '; }
d0=$(decisions)
out=$("$DTXCTL" exec --on shop --sql "SELECT count(*) FROM orders" --on bank --sql "SELECT 1"); rc=$?
is "$rc" 0 "a transaction whose branches only read commits"
ro=${out%% *}
is "$(records "$ro")" "active preparing committed " \
	"every branch voted read-only: committed without a forced decision"
is "$(decisions)" "$d0" "the group commit carried no decision for it"
is "$(prepared_count)" 0 "the agents finished their read-only branches: none is left prepared"
out=$("$DTXCTL" exec --on shop --sql "INSERT INTO orders VALUES ('ro1', 'bob', 'widget', 1, 1)" --expect 1 \
	--on bank --sql "SELECT balance FROM wallets WHERE customer = 'bob'"); rc=$?
is "$rc" 0 "a writing branch and a reading one commit"
mixed=${out%% *}
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 'ro1'")" 1 "the writing branch's row is there"
is "$(records "$mixed")" "active preparing committing committed " \
	"with one writing branch the decision is forced as usual"

# --- admin --------------------------------------------------------------------
out=$("$DTXCTL" status)
like "$out" 'since start: committed [0-9]+ aborted [0-9]+' "status prints the outcomes for a person"
like "$out" 'participant stock up, last seen [0-9]+ ms ago' "... and participants' liveness"
like "$(ctl_rows transactions status)" '"committed":[1-9][0-9]*,"aborted":[1-9]' "status counts outcomes"
is "$(ctl_get participant up status | tr '\n' ' ')" "true true true " "status shows participants' liveness"
is "$(ctl_get transaction state show "$gtid")" committed "show names the outcome"
like "$("$DTXCTL" show "$gtid")" "^$gtid committed" "... and prints it first"
is "$(records "$gtid")" 'active preparing committing committed ' \
	"show lists every logged transition in order"
is "$(ctl_get transaction state list --state aborted | grep -cx aborted)" 4 \
	"list --state aborted shows the four aborted ones"
is "$(ctl_get transaction state list --state aborted | grep -cvx aborted)" 0 "... and nothing else"
"$DTXCTL" show c1.999.1 >/dev/null 2>&1; is "$?" 3 "show of an unknown GTID fails"

# --- a branch that would drop the agent's prepared marker statement -------
# (refused before it runs: a branch takes DML only, see contain.sh)
out=$("$DTXCTL" exec --on bank --sql "DEALLOCATE ALL" \
	--on shop --sql "INSERT INTO orders VALUES ('d1', 'alice', 'widget', 1, 10)"); rc=$?
is "$rc" 1 "a branch that would run DEALLOCATE ALL aborts"
like "$out" 'bank voted no: statement 1 refused: DEALLOCATE is a utility statement' \
	"... refused by the agent before it runs, and says so"
rc=0
for i in 2 3 4; do
	"$DTXCTL" exec --on bank --sql "UPDATE wallets SET balance = balance WHERE customer = 'alice'" \
		--on shop --sql "INSERT INTO orders VALUES ('d$i', 'alice', 'widget', 1, 10)" >/dev/null || rc=1
done
is "$rc" 0 "the next transactions on bank commit"

wait_for 5 no_prepared_left; ok $? "no prepared branch is left at the end"

# --- marker rows past marker_retention_s (7 days) ---------------------------
q bank "INSERT INTO dtx.branches VALUES ('dtx:c1:1:1:9', now() - interval '8 days'),
	('dtx:c1:1:2:9', now() - interval '6 days')"
old_marker_gone() { [ "$(q bank "SELECT count(*) FROM dtx.branches WHERE gid = 'dtx:c1:1:1:9'")" = 0 ]; }
wait_for 5 old_marker_gone; ok $? "the running agent prunes the marker row older than retention (every second here)"
is "$(q bank "SELECT count(*) FROM dtx.branches WHERE gid = 'dtx:c1:1:2:9'")" 1 "... and keeps the younger one"
like "$(q bank "SELECT indexdef FROM pg_indexes WHERE schemaname = 'dtx' AND indexname = 'branches_created'")" \
	'USING brin \(created\)' "the prune finds old rows through a BRIN index on created"
done_testing
