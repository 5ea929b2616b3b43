#!/usr/bin/env bash
# Sagas across four databases, as the issue's order flows run them:
#   (a) order (shop, compensable) -> reserve stock (stock, compensable) ->
#       charge the wallet (bank, the pivot) -> record a notification
#       (notes, retriable): a good order completes; one that cannot be paid
#       compensates the reservation and the order, in reverse; a
#       notification participant that is down makes the saga wait, then
#       complete, never compensate;
#   (b) the wallet check: an order inserted as pending, the wallet debited
#       (the pivot), the order marked paid; or, funds short, the pending
#       order removed by its compensation; every step seen in the events.
# Then the rules: the kind order refused before anything runs, a key run
# once, QUERY and show, a step that keeps failing listed as stuck and
# resolved by hand (heuristic), the barrier rows.
. "$(dirname "$0")/lib.sh"
export DTX_TEST_PARTICIPANTS="shop, bank, stock, notes"
dtx_start_pg
q postgres "CREATE DATABASE notes" >/dev/null || bail "CREATE DATABASE notes failed"
q notes "CREATE TABLE notices (ref text NOT NULL, text text NOT NULL)"
q shop "ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'new'"
dtx_start_coord || exit 1
for a in shop bank stock notes; do dtx_start_agent $a; done
wait_all_up
for a in shop bank stock notes; do wait_or_bail 10 participant_up $a; done

# order_saga FILE REF CUSTOMER ITEM QTY: saga (a) as DESIGN.md's JSON
order_saga() {
	local price total
	price=$(q stock "SELECT price FROM items WHERE item = '$4'")
	total=$((price * $5))
	cat >"$1" <<EOF
{"timeout_ms": 5000,
 "steps": [
  {"name": "order", "participant": "shop",
   "stmts": [{"sql": "INSERT INTO orders (ref, customer, item, qty, total) VALUES (\$1, \$2, \$3, \$4, \$5)",
              "params": ["$2", "$3", "$4", $5, $total], "expect": 1}],
   "compensate": [{"sql": "DELETE FROM orders WHERE ref = \$1", "params": ["$2"], "expect": 1}]},
  {"name": "reserve", "participant": "stock",
   "stmts": [{"sql": "UPDATE items SET qty = qty - \$2 WHERE item = \$1 AND qty >= \$2",
              "params": ["$4", $5], "expect": 1}],
   "compensate": [{"sql": "UPDATE items SET qty = qty + \$2 WHERE item = \$1",
                   "params": ["$4", $5], "expect": 1}]},
  {"name": "pay", "participant": "bank", "pivot": true,
   "stmts": [{"sql": "UPDATE wallets SET balance = balance - \$2 WHERE customer = \$1 AND balance >= \$2",
              "params": ["$3", $total], "expect": 1}]},
  {"name": "notify", "participant": "notes", "retry": true,
   "stmts": [{"sql": "INSERT INTO notices (ref, text) VALUES (\$1, \$2)",
              "params": ["$2", "paid"], "expect": 1}]}]}
EOF
}

# wallet_saga FILE REF CUSTOMER AMOUNT: saga (b)
wallet_saga() {
	cat >"$1" <<EOF
{"timeout_ms": 5000,
 "steps": [
  {"name": "pending", "participant": "shop",
   "stmts": [{"sql": "INSERT INTO orders (ref, customer, item, qty, total, status) VALUES (\$1, \$2, 'widget', 1, \$3, 'pending')",
              "params": ["$2", "$3", $4], "expect": 1}],
   "compensate": [{"sql": "DELETE FROM orders WHERE ref = \$1 AND status = 'pending'", "params": ["$2"], "expect": 1}]},
  {"name": "debit", "participant": "bank", "pivot": true,
   "stmts": [{"sql": "UPDATE wallets SET balance = balance - \$2 WHERE customer = \$1 AND balance >= \$2",
              "params": ["$3", $4], "expect": 1}]},
  {"name": "paid", "participant": "shop", "retry": true,
   "stmts": [{"sql": "UPDATE orders SET status = 'paid' WHERE ref = \$1", "params": ["$2"], "expect": 1}]}]}
EOF
}

balance() { q bank "SELECT balance FROM wallets WHERE customer = '$1'"; }
stock_of() { q stock "SELECT qty FROM items WHERE item = '$1'"; }
gtid_of() { grep -oE 'c1\.[0-9]+\.[0-9]+' <<<"$1" | head -1; }
barrier() { q "$1" "SELECT string_agg(step || kind || result, ' ' ORDER BY step, kind) FROM dtx.barrier WHERE saga = '$2'"; }

# --- (a) a good order completes ----------------------------------------------
order_saga "$T/o1.json" o1 alice widget 2
out=$("$DTXCTL" saga --file "$T/o1.json"); rc=$?
is "$rc" 0 "a good order's saga completes (exit 0)"
like "$out" '^c1\.[0-9]+\.[0-9]+ completed' "dtxctl prints the GTID and 'completed'"
g1=$(gtid_of "$out")
is "$(q shop "SELECT customer || ':' || qty || ':' || total || ':' || status FROM orders WHERE ref = 'o1'")" \
	"alice:2:20:new" "shop has the order"
is "$(stock_of widget)" 3 "stock reserved two widgets"
is "$(balance alice)" 80 "bank took the price"
is "$(q notes "SELECT count(*) FROM notices WHERE ref = 'o1'")" 1 "the notification is recorded once"
is "$(barrier stock "$g1")" "1ad" "stock's barrier row: the reservation (step 1) done"
is "$(barrier bank "$g1")" "2ad" "bank's barrier row: the pivot done"
is "$(q shop "SELECT count(*) FROM pg_prepared_xacts")" 0 "no step left anything prepared"
out=$("$DTXCTL" query "$g1"); rc=$?
like "$out" "^$g1 completed" "query says completed"

# --- (a) an order that cannot be paid compensates, in reverse -------------------
order_saga "$T/o2.json" o2 bob gadget 1     # 50 for bob's 20
out=$("$DTXCTL" saga --file "$T/o2.json"); rc=$?
is "$rc" 1 "an order bob cannot pay for is compensated (exit 1)"
like "$out" 'compensated' "dtxctl says compensated"
like "$out" 'pay' "... names the failing step"
like "$out" 'bank' "... and its participant"
like "$out" '0 rows|expected 1|touched 0' "... and why"
g2=$(gtid_of "$out")
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 'o2'")" 0 "no order is left"
is "$(stock_of gadget)" 1 "the reservation is undone"
is "$(balance bob)" 20 "bob's wallet is untouched"
is "$(barrier stock "$g2")" "1ad 1cd" "stock's barrier: the step and its compensation, once each"
is "$(barrier bank "$g2")" "2af" "bank's barrier: the pivot fenced (probed: it never ran)"
out=$("$DTXCTL" query "$g2")
like "$out" "^$g2 compensated" "query says compensated"
out=$("$DTXCTL" show "$g2"); rc=$?
is "$rc" 0 "show of a finished saga works"
like "$out" 'compensating' "show lists the decision to compensate"
like "$out" 'step-compensated +step 1' "... and the reservation's compensation"
orders_before=$(q shop "SELECT count(*) FROM orders")

# --- (a) the notification participant down: the saga waits, then completes ----
kill_wait "${AGENT_PID[notes]}"
notes_down() { ! participant_up notes; }
wait_or_bail 10 notes_down
order_saga "$T/o3.json" o3 alice widget 1
"$DTXCTL" saga --file "$T/o3.json" --key order-o3 --wait 30000 >"$T/o3.out" 2>&1 &
o3_pid=$!
pay_done() { [ "$(balance alice)" = 70 ]; }
wait_ok 10 "with notes down, the pivot still commits" pay_done
sleep 1.5  # past stuck_after_ms (1 s): still forward, never compensated
! gone "$o3_pid"; ok $? "the client still waits"
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 'o3'")" 1 "the order stays"
is "$(stock_of widget)" 2 "the reservation stays"
like "$("$DTXCTL" list --state stuck)" 'forward' "the waiting saga is listed as stuck, forward"
dtx_start_agent notes
wait_exit 20 "$o3_pid"; rc=$?
is "$rc" 0 "notes back: the saga completes"
like "$(cat "$T/o3.out")" 'completed' "... and the client is told completed"
is "$(q notes "SELECT count(*) FROM notices WHERE ref = 'o3'")" 1 "the notification is recorded once"
g3=$(gtid_of "$(cat "$T/o3.out")")

# --- exactly once: the same key again ----------------------------------------
out=$("$DTXCTL" saga --file "$T/o3.json" --key order-o3); rc=$?
is "$rc" 0 "the saga sent again with its key is answered"
is "$(gtid_of "$out")" "$g3" "... with the same GTID"
is "$(stock_of widget)" 2 "... and nothing ran again"
is "$(q notes "SELECT count(*) FROM notices WHERE ref = 'o3'")" 1 "... not even the notification"

# --- (b) the wallet check, each step seen in the events ------------------------
"$DTXCTL" watch >"$T/watch.out" 2>&1 &
watch_pid=$!
ALL_PIDS+=("$watch_pid")
sleep 0.5
wallet_saga "$T/w1.json" w1 alice 10
out=$("$DTXCTL" saga --file "$T/w1.json"); rc=$?
is "$rc" 0 "the wallet check: funds enough, completed"
gw1=$(gtid_of "$out")
is "$(q shop "SELECT status FROM orders WHERE ref = 'w1'")" paid "the order is marked paid"
is "$(balance alice)" 60 "the wallet is debited"
wallet_saga "$T/w2.json" w2 bob 500
out=$("$DTXCTL" saga --file "$T/w2.json"); rc=$?
is "$rc" 1 "funds short: compensated"
gw2=$(gtid_of "$out")
like "$out" 'debit' "... at the debit"
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 'w2'")" 0 "the pending order is removed by its compensation"
is "$(balance bob)" 20 "bob's wallet is untouched"
seen_events() { for e in "$@"; do grep -q -- "$e" "$T/watch.out" || return 1; done; }
wait_ok 5 "the watcher saw each step of the good one go by, then completed" \
	seen_events "$gw1.*step done.*pending" "$gw1.*step done.*debit" "$gw1.*step done.*paid" "$gw1.*completed"
wait_ok 5 "... and the failure, the turn and the compensation of the other" \
	seen_events "$gw2.*step failed.*debit" "$gw2.*compensating" "$gw2.*step compensated.*pending" "$gw2.*compensated"
kill_wait "$watch_pid"

# --- the rules: refused before anything runs ------------------------------------
cat >"$T/bad.json" <<'EOF'
{"steps": [
  {"name": "pay", "participant": "bank", "pivot": true,
   "stmts": [{"sql": "UPDATE wallets SET balance = balance - 1 WHERE customer = 'alice'", "expect": 1}]},
  {"name": "late", "participant": "stock",
   "stmts": [{"sql": "UPDATE items SET qty = qty - 1 WHERE item = 'widget'", "expect": 1}],
   "compensate": [{"sql": "UPDATE items SET qty = qty + 1 WHERE item = 'widget'", "expect": 1}]}]}
EOF
out=$("$DTXCTL" saga --file "$T/bad.json" 2>&1); rc=$?
ok "$([ $rc -ne 0 ] && [ $rc -ne 1 ]; echo $?)" "a compensable step after the pivot is refused (exit $rc, not 0 or 1)"
like "$out" 'after the pivot' "... saying why"
is "$(balance alice)" 60 "... and nothing ran"
cat >"$T/bad2.json" <<'EOF'
{"steps": [
  {"name": "first", "participant": "stock",
   "stmts": [{"sql": "UPDATE items SET qty = qty - 1 WHERE item = 'widget'", "expect": 1}]},
  {"name": "pay", "participant": "bank", "pivot": true,
   "stmts": [{"sql": "UPDATE wallets SET balance = balance - 1 WHERE customer = 'alice'", "expect": 1}]}]}
EOF
out=$("$DTXCTL" saga --file "$T/bad2.json" 2>&1); rc=$?
ok "$([ $rc -gt 1 ]; echo $?)" "a step before the pivot without compensation is refused"
like "$out" 'no compensation' "... saying why"
is "$(stock_of widget)" 2 "... and nothing ran"

# --- a step may not touch the agents' own rows --------------------------------------
cat >"$T/forge.json" <<'EOF'
{"steps": [
  {"name": "forge", "participant": "bank", "pivot": true,
   "stmts": [{"sql": "DELETE FROM dtx.barrier"}]}]}
EOF
rows=$(q bank "SELECT count(*) FROM dtx.barrier")
out=$("$DTXCTL" saga --file "$T/forge.json" 2>&1); rc=$?
is "$rc" 1 "a step that writes schema dtx fails: the saga is compensated"
like "$out" 'schema dtx' "... saying why"
ok "$([ "$(q bank "SELECT count(*) FROM dtx.barrier")" -ge "$rows" ]; echo $?)" "... and no barrier row was deleted"
out=$("$DTXCTL" exec --on bank --sql "DELETE FROM dtx.branches" 2>&1); rc=$?
is "$rc" 1 "a branch that writes schema dtx votes no"

# --- a step that keeps failing: stuck, resolved by hand ---------------------------
cat >"$T/stuck.json" <<'EOF'
{"steps": [
  {"name": "pay", "participant": "bank", "pivot": true,
   "stmts": [{"sql": "UPDATE wallets SET balance = balance - 1 WHERE customer = 'alice'", "expect": 1}]},
  {"name": "never", "participant": "notes", "retry": true,
   "stmts": [{"sql": "INSERT INTO no_such_table VALUES (1)"}]}]}
EOF
"$DTXCTL" saga --file "$T/stuck.json" --key stuck-1 --wait 30000 >"$T/stuck.out" 2>&1 &
stuck_pid=$!
stuck_listed() { "$DTXCTL" list --state stuck | grep -q 'notes'; }
wait_ok 10 "a retriable step that keeps failing is listed as stuck, waiting for notes" stuck_listed
gs=$(gtid_of "$("$DTXCTL" list --state stuck)")
out=$("$DTXCTL" resolve "$gs" --abort 2>&1); rc=$?
ok "$([ $rc -ne 0 ]; echo $?)" "past the pivot it cannot be compensated by hand"
out=$("$DTXCTL" resolve "$gs" --commit); rc=$?
is "$rc" 0 "resolve commit ends it by hand"
wait_exit 10 "$stuck_pid"
like "$(cat "$T/stuck.out")" 'heuristic' "the waiting client is told heuristic"
like "$("$DTXCTL" query "$gs")" 'heuristic' "query says heuristic"
like "$("$DTXCTL" show "$gs")" 'heuristic.*operator uid' "show has the operator's record"

is "$(in_flight)" 0 "nothing is left in flight"
done_testing
