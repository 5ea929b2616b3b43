#!/usr/bin/env bash
# dtxbench: the three modes run in one invocation against real daemons and
# PostgreSQL; every transaction it reports committed moved money exactly
# once (balances), --accounts spreads each client's transfers over its own
# share of the accounts, the JSON parses and says where the CPU went and
# how often each program was woken, and bad options are refused. Nothing
# here is timed.
. "$(dirname "$0")/lib.sh"
export DTX_TEST_PARTICIPANTS="bank, stock, null1, null2"
DTXBENCH=$top_builddir/tools/dtxbench
ACCOUNTS=40
dtx_start_bench $ACCOUNTS 1000
bench() { "$DTXBENCH" -w transfer --dbs bank,stock --null null1,null2 \
	--conninfo "host=$PGSOCK port=$PGPORT user=postgres" "$@"; }
sum() { q $1 "SELECT sum(balance) FROM bench_accounts"; }
# dtx answers once the decision is logged: balances are read once phase
# two has finished (nothing left prepared in the cluster)
none_prepared() { [ "$(q bank "SELECT count(*) FROM pg_prepared_xacts")" -eq 0 ]; }
changed() { q $1 "SELECT string_agg(id::text, ',' ORDER BY id) FROM bench_accounts WHERE balance <> 1000"; }

# Without --accounts each client keeps to its own account: client c, c+1.
bench -m direct,dtx -c 2 -n 20 >"$T/own.out" 2>&1
ok $? "direct and dtx, 2 clients, 20 transactions each: exit 0"
wait_ok 10 "nothing is left prepared after the first run" none_prepared
is "$(changed bank)" "1,2" "without --accounts only the clients' own accounts moved (bank)"
is "$(q bank "SELECT balance FROM bench_accounts WHERE id = 1") $(q stock "SELECT balance FROM bench_accounts WHERE id = 1")" \
	"980 1020" "client 0 moved 1 unit 20 times (10 direct, 10 dtx) from bank to stock"

# All three modes, by time, accounts at random within each client's share.
bench -m direct,dtx,null -c 2 -s 1 --accounts $ACCOUNTS --json "$T/b.json" >"$T/b.out" 2>&1
ok $? "three modes, 2 clients, 1 s each, --accounts $ACCOUNTS: exit 0"
J=$T/b.json
is "$(jq -r '[.runs[].mode] | join(",")' "$J")" "direct,dtx,null" "the JSON has one run per mode, in order"
is "$(jq '[.runs[] | .errors + .aborted] | add' "$J")" 0 "no errors, no aborts"
committed() { jq ".runs[] | select(.mode == \"$1\") | .committed" "$J"; }
cd_=$(committed direct) ct=$(committed dtx) cn=$(committed null)
ok $(( cd_ > 0 && ct > 0 && cn > 0 ? 0 : 1 )) "every mode committed transactions ($cd_, $ct, $cn)"
# The counts cover the whole run (no warm-up here), so the money says
# whether each reported commit happened once: the first 20+20 above, then
# direct and dtx moved one unit each (null touches no database).
moved=$((40 + cd_ + ct))
wait_ok 10 "nothing is left prepared after the first run" none_prepared
ok $? "phase two finished: nothing is left prepared"
is "$(sum bank)" $((ACCOUNTS * 1000 - moved)) "bank lost exactly one unit per committed transaction"
is "$(sum stock)" $((ACCOUNTS * 1000 + moved)) "stock gained exactly one unit per committed transaction"
n=$(q bank "SELECT count(*) FROM bench_accounts WHERE balance <> 1000")
ok $(( n > 10 ? 0 : 1 )) "--accounts spread the transfers over many accounts ($n of $ACCOUNTS moved)"
# a transfer moves one unit between the same account of both databases
is "$(for db in bank stock; do q $db "SELECT string_agg(id || ':' || abs(balance - 1000), ',' ORDER BY id) FROM bench_accounts"; done | uniq | wc -l)" 1 \
	"each account lost in bank what it gained in stock"
jq -e '.runs[] | .latency_ms | .p50 <= .p99 and .p99 <= .max' "$J" >/dev/null
ok $? "latency percentiles are ordered"
# where the CPU went, by program
cpu() { jq -r ".runs[] | select(.mode == \"$1\") | .cpu_us_by_program[\"$2\"] // 0 | . > 0" "$J"; }
is "$(cpu direct postgres)" true "direct: CPU of postgres counted"
is "$(cpu direct dtxbench)" true "direct: CPU of dtxbench counted"
is "$(cpu dtx postgres) $(cpu dtx dtx-pgagent) $(cpu dtx coordinatord)" "true true true" \
	"dtx: CPU of postgres, dtx-pgagent and coordinatord counted"
is "$(cpu null dtx-nullagent) $(cpu null coordinatord)" "true true" "null: CPU of dtx-nullagent and coordinatord counted"
like "$(cat "$T/b.out")" "cpu-us per transaction by program:" "the table says where the CPU went"
# how often each program's threads were woken, per transaction
woken() { jq -r ".runs[] | select(.mode == \"$1\") | .wakeups_by_program[\"$2\"] // 0 | . > 0" "$J"; }
is "$(woken direct postgres) $(woken dtx postgres) $(woken dtx dtx-pgagent) $(woken dtx coordinatord)" \
	"true true true true" "wake-ups of postgres (direct, dtx), dtx-pgagent and coordinatord (dtx) counted"
# direct: each transaction waits 4 times on each database's backend
# (BEGIN, UPDATE, PREPARE, COMMIT PREPARED), so at least 8 backend
# wake-ups; counted only if taken before the clients disconnect
is "$(jq -r '.runs[] | select(.mode == "direct") | .wakeups_by_program.postgres >= 6' "$J")" true \
	"direct: the backends' wake-ups are counted before they go (at least 6 per transaction)"
like "$(grep -A1 '^wake-ups per transaction by program (its threads blocked and woken):$' "$T/b.out" | tail -1)" \
	'^  direct   2: .*postgres [0-9]+\.[0-9]{2}' "the table has them too"
like "$("$DTXBENCH" --wakeup-cost)" '^wake-up cost: within one CPU [0-9.]+ us of CPU \(round trip [0-9.]+ us\)' \
	"--wakeup-cost measures what a wake-up costs here"
like "$(cat "$T/b.out")" "dtx/direct: clients  throughput" "the table has the dtx/direct ratios"
# The saga workload's null mode: its three steps go to null1 and null2
# (--dbs only names them), whose answers complete every saga.
"$DTXBENCH" -w saga -m null --dbs a,b,c --null null1,null2 -c 2 -n 10 --timeout 5000 --json "$T/s.json" >"$T/s.out" 2>&1
is "$? $(jq -r '.runs[0] | "\(.committed) \(.errors)"' "$T/s.json")" "0 10 0" \
	"saga null mode: 10 sagas over 2 clients, all completed"
# the CPU ratios: direct's CPU per transaction over dtx's, and over dtx's
# less the coordinator's and the agents' (which are not nothing: larger)
row=$(grep -A1 '^dtx/direct: clients' "$T/b.out" | tail -1)
like "$row" '^ +2 +[0-9.]+x +[-+][0-9.]+ +[0-9.]+x +[0-9.]+x$' "... and the CPU ratios, without and with coordinatord and the agents free"
is "$(echo "$row" | tr -d x | awk '{ print ($4 > 0 && $5 > $4) ? "yes" : "no: " $4 " " $5 }')" yes \
	"freeing the coordinator and the agents raises the CPU ratio"

# Bad options: a clear error, exit 2.
out=$("$DTXBENCH" --accounts 0 2>&1); rc=$?
is "$rc $out" "2 dtxbench: bad --accounts '0'" "--accounts 0 is refused"
out=$("$DTXBENCH" -w nosuch 2>&1); rc=$?
is "$rc $out" "2 dtxbench: unknown workload 'nosuch'" "an unknown workload is refused"
done_testing
