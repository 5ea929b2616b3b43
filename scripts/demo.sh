#!/usr/bin/env bash
# demo.sh — set everything up (scripts/setup.sh), then start a throwaway
# PostgreSQL with the databases shop, bank and stock, coordinatord and one
# dtx-pgagent per database, and place orders as global transactions; then,
# as a second act, as sagas (a good one, one compensated, one waiting for a
# notification service that is down).
# The set-up is the secure one: CURVE keys made with dtxctl keygen, tcp://
# endpoints under CURVE, each agent's key speaking for its participant
# alone, and the shop application's client policy allowing named
# statements only (the SQL stays in the agents' statements files).
# Everything it starts is stopped and removed at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
top_builddir=$PWD
. tests/integration/lib.sh

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show_state() {
	echo "  wallets: $(q bank "SELECT string_agg(customer || '=' || balance, ' ' ORDER BY customer) FROM wallets")"
	echo "  stock:   $(q stock "SELECT string_agg(item || '=' || qty, ' ' ORDER BY item) FROM items")"
	echo "  orders:  $(q shop "SELECT coalesce(string_agg(ref || ':' || customer || ' ' || qty || 'x ' || item, ', ' ORDER BY ref), '(none)') FROM orders")"
}
# order REF CUSTOMER ITEM QTY [dtxctl options]: as the shop application,
# by named statements: only their names and parameters travel.
order() {
	local ref=$1 customer=$2 item=$3 qty=$4 price
	shift 4
	price=$(q stock "SELECT price FROM items WHERE item = '$item'")
	echo "\$ place order $ref: $customer buys $qty x $item"
	DTX_KEY=$K/shop-app.key "$DTXCTL" exec "$@" \
		--on shop --statement place_order --param "$ref" --param "$customer" --param "$item" \
		--param "$qty" --param $((price * qty)) --expect 1 \
		--on bank --statement debit --param "$customer" --param $((price * qty)) --expect 1 \
		--on stock --statement take --param "$item" --param "$qty" --expect 1 2>&1 | sed 's/^/  /'
}

say "keys: dtxctl keygen for the coordinator, each agent and two clients"
K=$T/keys
mkdir -p "$K"
for k in coordinator shop bank stock shop-app ops; do
	printf '  %-12s %s\n' "$k" "$("$DTXCTL" keygen $k --dir "$K")"
done
# each daemon owns its secret key
[ "$(id -u)" -eq 0 ] && chown "$DTX_TEST_USER" "$K"/{coordinator,shop,bank,stock}.key
CPORT=$((20000 + RANDOM % 20000))
export DTX_TEST_CLIENT_EP=tcp://127.0.0.1:$CPORT DTX_TEST_AGENT_EP=tcp://127.0.0.1:$((CPORT + 1))
export DTX_TEST_KEYS=$K DTX_TEST_STATEMENTS=$T/statements
DTX_TEST_COORD_EXTRA="secret_key = $K/coordinator.key"
for a in shop bank stock; do DTX_TEST_COORD_EXTRA+=$'\n'"[agent $a]"$'\n'"key = $(cat "$K/$a.pub")"; done
DTX_TEST_COORD_EXTRA+="
[client shop-app]
key = $(cat "$K/shop-app.pub")
participants = shop, bank, stock
sql = false
max_inflight = 100
[client ops]
key = $(cat "$K/ops.pub")
participants = *
sql = true"
export DTX_TEST_COORD_EXTRA
# the agents' named statements: the only SQL the shop application may run
mkdir -p "$T/statements"
cat >"$T/statements/shop.statements" <<'EOF'
place_order 5 INSERT INTO orders (ref, customer, item, qty, total) VALUES ($1, $2, $3, $4, $5)
EOF
cat >"$T/statements/bank.statements" <<'EOF'
debit 2 UPDATE wallets SET balance = balance - $2 WHERE customer = $1 AND balance >= $2
EOF
cat >"$T/statements/stock.statements" <<'EOF'
take 2 UPDATE items SET qty = qty - $2 WHERE item = $1 AND qty >= $2
EOF
chmod 644 "$T"/statements/*
# dtxctl's own admin commands go to the admin socket; exec and query to
# the client endpoint, as the client ops unless said otherwise
export DTX_CLIENT=$DTX_TEST_CLIENT_EP DTX_SERVER_KEY=$K/coordinator.pub DTX_KEY=$K/ops.key

say "starting PostgreSQL (shop, bank, stock), coordinatord (clients and agents on tcp:// with CURVE) and three agents in $T"
dtx_start_all
"$DTXCTL" status | sed 's/^/  /'
echo "  the coordinator's configuration, trust part:"
sed -n '/^secret_key/,$p' "$T/coord.conf" | sed 's/^key = .*/key = .../; s/^/    /'

say "who may do what: the shop application may not send SQL text, a stranger's key is not served"
echo "\$ as shop-app: dtxctl exec --on bank --sql \"UPDATE wallets SET balance = 0\""
DTX_KEY=$K/shop-app.key "$DTXCTL" exec --on bank --sql "UPDATE wallets SET balance = 0" 2>&1 | sed 's/^/  /'
"$DTXCTL" keygen stranger --dir "$K" >/dev/null
echo "\$ with a key the coordinator does not know"
DTX_KEY=$K/stranger.key "$DTXCTL" --wait 2000 exec --on bank --sql "UPDATE wallets SET balance = 0" 2>&1 | sed 's/^/  /'

say "before"
show_state

say "a good order: one global transaction over shop, bank and stock"
order o1 alice widget 2
show_state

say "bob cannot pay for a gadget (50 > 20): bank votes no, nothing changes anywhere"
order o2 bob gadget 1
show_state

say "alice wants 4 widgets (she can pay 40 of her 80), stock has 3: stock votes no, nothing changes anywhere"
order o3 alice widget 4
show_state

say "the coordinator's log"
"$DTXCTL" list | sed 's/^/  /'
gtid=$("$DTXCTL" list --state committed | awk 'NR==1 {print $1}')
echo "\$ dtxctl show $gtid"
"$DTXCTL" show "$gtid" | sed 's/^/  /'

say "a crash: coordinatord killed right after logging a COMMIT, before anyone heard it"
kill_wait "$COORD_PID" KILL
dtx_start_coord DTX_CRASH=crd.commit_logged
for a in shop bank stock; do wait_for 10 participant_up $a; done
order o4 alice widget 1 --wait 2000 2>&1
wait "$COORD_PID"
echo "  coordinatord exited with $? at crash point crd.commit_logged"
echo "  prepared branches left in PostgreSQL: $(prepared_count)"
echo "\$ restart coordinatord"
dtx_start_coord
wait_for 10 no_prepared_left
echo "  prepared branches left in PostgreSQL: $(prepared_count)"
show_state

say "act two, sagas: steps that commit at once, no locks held across services"
q shop "CREATE TABLE notices (ref text NOT NULL, text text NOT NULL)" >/dev/null
# saga FILE REF CUSTOMER ITEM QTY: reserve (stock, compensable), pay (bank,
# the pivot), notify (shop, retriable), as DESIGN.md's JSON
saga() {
	local price total
	price=$(q stock "SELECT price FROM items WHERE item = '$4'")
	total=$((price * $5))
	cat >"$1" <<EOF
{"timeout_ms": 5000,
 "steps": [
  {"name": "reserve", "participant": "stock",
   "stmts": [{"sql": "UPDATE items SET qty = qty - \$2 WHERE item = \$1 AND qty >= \$2", "params": ["$4", $5], "expect": 1}],
   "compensate": [{"sql": "UPDATE items SET qty = qty + \$2 WHERE item = \$1", "params": ["$4", $5], "expect": 1}]},
  {"name": "pay", "participant": "bank", "pivot": true,
   "stmts": [{"sql": "UPDATE wallets SET balance = balance - \$2 WHERE customer = \$1 AND balance >= \$2", "params": ["$3", $total], "expect": 1}]},
  {"name": "notify", "participant": "shop", "retry": true,
   "stmts": [{"sql": "INSERT INTO notices (ref, text) VALUES (\$1, \$2)", "params": ["$2", "paid"], "expect": 1}]}]}
EOF
}
show_notices() { echo "  notices: $(q shop "SELECT coalesce(string_agg(ref, ' ' ORDER BY ref), '(none)') FROM notices")"; }
saga "$T/s1.json" s1 alice widget 1
echo "\$ dtxctl saga --file s1.json    # alice: reserve a widget, pay 10, notify"
"$DTXCTL" saga --file "$T/s1.json" 2>&1 | sed 's/^/  /'
show_state; show_notices
saga "$T/s2.json" s2 bob gadget 1
echo "\$ dtxctl saga --file s2.json    # bob cannot pay 50: the reservation is compensated"
"$DTXCTL" watch >"$T/watch.out" 2>&1 &
watch_pid=$!
sleep 0.3
"$DTXCTL" saga --file "$T/s2.json" 2>&1 | sed 's/^/  /'
sleep 0.3
kill_wait "$watch_pid"
echo "  what dtxctl watch saw:"
cut -d' ' -f2- "$T/watch.out" | sed 's/^/    /'
show_state; show_notices

say "the notification service is down: the saga waits past its pivot, never compensates"
kill_wait "${AGENT_PID[shop]}"
for i in $(seq 50); do participant_up shop || break; sleep 0.1; done
saga "$T/s3.json" s3 alice widget 1
"$DTXCTL" saga --file "$T/s3.json" --key order-s3 >"$T/s3.out" 2>&1 &
s3=$!
sleep 2
echo "\$ dtxctl list --state stuck"
"$DTXCTL" list --state stuck | sed 's/^/  /'
echo "\$ start the shop agent again"
dtx_start_agent shop
wait "$s3"
sed 's/^/  /' "$T/s3.out"
show_state; show_notices
g3=$(awk '{print $1; exit}' "$T/s3.out")
echo "\$ dtxctl show $g3"
"$DTXCTL" show "$g3" | sed 's/^/  /'

say "throughput: 4 clients placing orders for 5 seconds (dtxbench as ops, workload shop, over CURVE)"
q bank "INSERT INTO wallets SELECT 'bench-' || i, 1000000000 FROM generate_series(0, 63) i" >/dev/null
q stock "INSERT INTO items SELECT 'bolt-' || i, 1, 1000000000 FROM generate_series(0, 63) i" >/dev/null
"$top_builddir/tools/dtxbench" -e "$DTX_CLIENT" -c 4 -s 5 -w shop | sed 's/^/  /'
"$DTXCTL" status | sed 's/^/  /'

say "done: stopping everything"
