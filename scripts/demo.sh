#!/usr/bin/env bash
# demo.sh — set everything up (scripts/setup.sh), then start a throwaway
# PostgreSQL with the databases shop, bank and stock, coordinatord and one
# dtx-pgagent per database, and place orders as global transactions.
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
order() { # order REF CUSTOMER ITEM QTY
	echo "\$ place order $1: $2 buys $4 x $3"
	place_order "$@" | sed 's/^/  /'
}

say "starting PostgreSQL (shop, bank, stock), coordinatord and three agents in $T"
dtx_start_all
"$DTXCTL" status | sed 's/^/  /'

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

say "throughput: 4 clients placing orders for 5 seconds (dtxbench, workload shop)"
q bank "INSERT INTO wallets SELECT 'bench-' || i, 1000000000 FROM generate_series(0, 63) i" >/dev/null
q stock "INSERT INTO items SELECT 'bolt-' || i, 1, 1000000000 FROM generate_series(0, 63) i" >/dev/null
"$top_builddir/tools/dtxbench" -c 4 -s 5 -w shop | sed 's/^/  /'
"$DTXCTL" status | sed 's/^/  /'

say "done: stopping everything"
