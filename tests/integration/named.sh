#!/usr/bin/env bash
# Named statements: SQL defined in the agent's statements file, which a
# client runs by name with parameters. A transaction of named statements
# commits on two databases; an unknown name or a wrong number of
# parameters votes no with the reason and nothing runs; the decoder takes
# exactly one of "sql" and "statement"; a statements file whose SQL is not
# one SELECT, INSERT, UPDATE, DELETE or MERGE (or does not use its
# parameters as declared) stops the agent at start with file:line; after
# the agent's connections are lost (terminated, PostgreSQL restarted) the
# statements are prepared again and still run. The agents run as a
# least-privilege role (dtx-pgagent(8), DATABASE ROLE), which makes the
# marker and barrier tables itself.
. "$(dirname "$0")/lib.sh"
dtx_start_pg

# --- the role of dtx-pgagent(8): no superuser, owns schema dtx ------------
q postgres "CREATE ROLE dtx LOGIN" >/dev/null
for db in shop bank; do
	q $db "CREATE SCHEMA dtx AUTHORIZATION dtx; GRANT USAGE ON SCHEMA public TO dtx" >/dev/null
done
q shop "GRANT SELECT, INSERT, UPDATE, DELETE ON public.orders TO dtx" >/dev/null
q bank "GRANT SELECT, INSERT, UPDATE, DELETE ON public.wallets TO dtx" >/dev/null

cat >"$T/shop.statements" <<'EOF'
# the shop's statements
place_order 5 INSERT INTO public.orders (ref, customer, item, qty, total)
	VALUES ($1, $2, $3, $4, $5)
order_count 1 SELECT count(*) FROM public.orders WHERE customer = $1
EOF
cat >"$T/bank.statements" <<'EOF'
debit 2 UPDATE public.wallets SET balance = balance - $2 WHERE customer = $1 AND balance >= $2
EOF
chmod 644 "$T"/*.statements

# start_agent NAME STATEMENTS-FILE [EXTRA CONFIG LINE...]: like lib.sh's
# dtx_start_agent, as role dtx, with a statements file.
start_agent() {
	local name=$1 file=$2
	shift 2
	{
		cat <<EOF
[agent]
name = $name
coordinator = ipc://$T/agent.sock
conninfo = host=$PGSOCK port=$PGPORT dbname=$name user=dtx
pool_size = 3
heartbeat_ms = 200
log_level = info
statements = $file
EOF
		for l in "$@"; do echo "$l"; done
	} >"$T/agent-$name.conf"
	"${AS_DAEMON[@]}" "$PGAGENT" -c "$T/agent-$name.conf" >>"$T/agent-$name.log" 2>&1 &
	AGENT_PID[$name]=$!
	ALL_PIDS+=("$!")
}

dtx_start_coord || exit 1
start_agent shop "$T/shop.statements"
start_agent bank "$T/bank.statements"
wait_or_bail 10 participant_up shop
wait_or_bail 10 participant_up bank
is "$(q shop "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'dtx'")" dtx \
	"the agents run as role dtx, which owns schema dtx"
ok $([ "$(q postgres "SELECT rolsuper FROM pg_roles WHERE rolname = 'dtx'")" = f ]; echo $?) \
	"... and is not a superuser"
is "$(for db in shop bank; do q $db "SELECT string_agg(tablename || ':' || tableowner, ' ' ORDER BY tablename)
	FROM pg_tables WHERE schemaname = 'dtx'"; done | tr '\n' ' ')" \
	"barrier:dtx branches:dtx barrier:dtx branches:dtx " \
	"... which made the marker and barrier tables of both databases at start"

# tx FILE JSON: write the transaction and run it with dtxctl exec --file
tx() {
	printf '%s\n' "$2" >"$T/$1.json"
	"$DTXCTL" exec --timeout 3000 --wait 5000 --file "$T/$1.json"
}
order() { # order REF CUSTOMER QTY TOTAL: the place_order and debit branches
	printf '{"branches": [
	  {"participant": "shop", "stmts": [{"statement": "place_order", "params": ["%s", "%s", "widget", %s, %s]}]},
	  {"participant": "bank", "stmts": [{"statement": "debit", "params": ["%s", %s]}]}]}' \
		"$1" "$2" "$3" "$4" "$2" "$4"
}

out=$(tx o1 "$(order o1 alice 2 20)"); rc=$?
is "$rc" 0 "a transaction of named statements on shop and bank commits: $out"
is "$(q shop "SELECT customer, qty, total FROM orders WHERE ref = 'o1'")" "alice|2|20" "... shop's place_order ran"
is "$(q bank "SELECT balance FROM wallets WHERE customer = 'alice'")" 80 "... and bank's debit"
out=$(tx o1b "$(printf '{"branches": [{"participant": "shop", "stmts": [
	{"statement": "order_count", "params": ["alice"]},
	{"sql": "UPDATE orders SET qty = qty WHERE ref = $1", "params": ["o1"], "expect": 1}]}]}')"); rc=$?
is "$rc" 0 "named and SQL statements mix in one branch (one phase): $out"

# --- refused by name or by count: the agent votes no, nothing runs -----------
before=$(q bank "SELECT balance FROM wallets WHERE customer = 'alice'")
out=$(tx w1 '{"branches": [
  {"participant": "shop", "stmts": [{"statement": "place_order", "params": ["w1", "alice", "widget", 1, 10]}]},
  {"participant": "bank", "stmts": [{"statement": "debit", "params": ["alice", 10, "extra"]}]}]}'); rc=$?
is "$rc" 1 "a named statement given 3 parameters for 2 aborts the transaction"
like "$out" "bank voted no: statement 1: 'debit' takes 2 parameters, 3 given \(participant bank, sqlstate 08P01\)" \
	"... bank votes no with the reason and SQLSTATE 08P01"
out=$(tx w2 '{"branches": [
  {"participant": "shop", "stmts": [{"statement": "place_order", "params": ["w2", "alice", "widget", 1, 10]}]},
  {"participant": "bank", "stmts": [{"statement": "debit", "params": ["alice", 10]}, {"statement": "drop_everything"}]}]}'); rc=$?
is "$rc" 1 "an unknown named statement aborts the transaction"
like "$out" "bank voted no: statement 2: no statement 'drop_everything' is defined in this agent \(participant bank, sqlstate 26000\)" \
	"... bank votes no with the reason and SQLSTATE 26000"
is "$(q shop "SELECT count(*) FROM orders WHERE ref IN ('w1', 'w2')")" 0 "... no order of either was kept"
is "$(q bank "SELECT balance FROM wallets WHERE customer = 'alice'")" "$before" "... and bank was not debited"
like "$(grep -E 'statement 1: .debit. takes 2|drop_everything' "$T/agent-bank.log" | tr '\n' ' ')" \
	"vote no: statement 1: 'debit' takes 2 parameters, 3 given.*vote no: statement 2: no statement 'drop_everything'" \
	"... the agent logs both refusals"
wait_ok 5 "nothing is left prepared" no_prepared_left

# --- the decoder: exactly one of sql and statement ---------------------------
# mp JSON: the msgpack of a JSON value, in hex (maps, arrays, str, small ints)
mp() {
	python3 -c '
import json, sys
def e(v):
    if isinstance(v, dict):
        return bytes([0x80 | len(v)]) + b"".join(e(k) + e(x) for k, x in v.items())
    if isinstance(v, list):
        return bytes([0x90 | len(v)]) + b"".join(e(x) for x in v)
    if isinstance(v, str):
        b = v.encode()
        return bytes([0xa0 | len(b)]) + b if len(b) < 32 else bytes([0xd9, len(b)]) + b
    return bytes([v])
print(e(json.loads(sys.argv[1])).hex())' "$1"
}
raw_tx() { "$RAWFRAME" "ipc://$T/client.sock" "$(mp "{\"v\": 1, \"t\": \"TX\", \"id\": 7, \"branches\": [{\"p\": \"bank\", \"stmts\": [$1]}]}")"; }
is "$(raw_tx '{"sql": "SELECT 1", "statement": "debit"}')" \
	"ERROR -3 a statement has both 'sql' and 'statement': give one [id 7]" "a statement with both 'sql' and 'statement' is refused"
is "$(raw_tx '{"params": ["a"]}')" \
	"ERROR -3 a statement has neither 'sql' nor 'statement' [id 7]" "a statement with neither is refused"
is "$(raw_tx '{"statement": "no such"}')" \
	"ERROR -3 field 'statement' must be 1 to 63 characters of [A-Za-z0-9_-] [id 7]" "a statement name with a space is refused"
out=$(printf '{"branches": [{"participant": "bank", "stmts": [{"statement": "debit", "sql": "SELECT 1"}]}]}' >"$T/both.json"
	"$DTXCTL" exec --file "$T/both.json" 2>&1); rc=$?
is "$rc" 2 "dtxctl exec --file refuses a statement with both"
like "$out" "statement 1 of branch 1 needs one of 'sql' and 'statement'" "... saying so"

# --- a bad statements file stops the agent at start, with file:line ----------
# refused_at_start FILE-TEXT PATTERN NAME
refused_at_start() {
	local f=$T/bad.statements out rc
	printf '%b' "$1" >"$f"
	chmod 644 "$f"
	cat >"$T/agent-bad.conf" <<EOF
[agent]
name = shop
coordinator = ipc://$T/agent.sock
conninfo = host=$PGSOCK port=$PGPORT dbname=shop user=dtx connect_timeout=5
statements = $f
EOF
	out=$(timeout 20 "${AS_DAEMON[@]}" "$PGAGENT" -c "$T/agent-bad.conf" 2>&1); rc=$?
	is "$rc" 1 "the agent does not start: $3"
	like "$out" "${2//FILE/$f}" "... and says where and why"
}
refused_at_start 'ok 0 SELECT 1\n# a comment\ncopy_out 0 COPY public.orders TO STDOUT\n' \
	"cannot start: FILE:3: statement 'copy_out' refused: COPY is a utility statement; a named statement is one SELECT" \
	"a named statement that is COPY"
refused_at_start 'two 1 DELETE FROM public.orders WHERE ref = $1;\n  DELETE FROM public.orders\n' \
	"cannot start: FILE:1: statement 'two' refused: it holds 2 statements" "a named statement that is two statements"
refused_at_start 'tx 0 COMMIT\n' "FILE:1: statement 'tx' refused: COMMIT is transaction control" "a named statement that is COMMIT"
refused_at_start 'p 2 SELECT $1::int + $3::int\n' "FILE:1: statement 'p' refused: it uses \\\$3 but declares 2 parameters" \
	"a named statement that uses more parameters than it declares"
refused_at_start 'p 2 SELECT $1::int\n' "FILE:1: statement 'p' refused: it declares 2 parameters but does not use \\\$2" \
	"a named statement that uses fewer parameters than it declares"
refused_at_start 'a 0 SELECT 1\na 0 SELECT 2\n' "FILE:2: statement 'a' is defined twice \(first at line 1\)" "a name defined twice"
refused_at_start 'nothing here\n' "FILE:1: statement 'nothing': its number of parameters" "a line that is not NAME NPARAMS SQL"
refused_at_start 'gone 0 SELECT * FROM public.no_such_table\n' \
	"FILE:1: statement 'gone' does not prepare \(42P01\): relation \"public.no_such_table\" does not exist" \
	"a named statement PostgreSQL cannot prepare"
chmod 666 "$T/shop.statements"
out=$(sed "s|^statements = .*|statements = $T/shop.statements|" "$T/agent-bad.conf" >"$T/agent-bad2.conf"
	timeout 20 "${AS_DAEMON[@]}" "$PGAGENT" -c "$T/agent-bad2.conf" 2>&1); rc=$?
is "$rc" 1 "the agent does not start with a statements file others may write"
like "$out" "$T/shop.statements:0: writable by others than its owner" "... and says so"
chmod 644 "$T/shop.statements"

# --- after the connections are lost, the statements are prepared again ------
out=$(tx o2 "$(order o2 bob 1 10)"); rc=$?
is "$rc" 0 "before the connections are lost: commits ($out)"
killed=$(q postgres "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'dtx'")
ok $([ "$killed" -ge 2 ]; echo $?) "the agents' connections are terminated ($killed)"
out=$(tx o3 "$(order o3 bob 1 5)"); rc=$?
is "$rc" 0 "a transaction of named statements commits on the new connections: $out"
is "$(q shop "SELECT count(*) FROM orders WHERE ref IN ('o2', 'o3')")" 2 "... its order is kept"
is "$(q bank "SELECT balance FROM wallets WHERE customer = 'bob'")" 5 "... and bob was debited twice"
pg_stop_fast || bail "PostgreSQL did not stop"
pg_start_again || bail "PostgreSQL did not start again"
wait_or_bail 10 participant_up shop
out=$(tx o4 "$(printf '{"branches": [{"participant": "shop", "stmts": [{"statement": "place_order", "params": ["o4", "carol", "widget", 1, 1]}]}]}')"); rc=$?
is "$rc" 0 "after PostgreSQL restarted, a named statement runs (re-prepared): $out"
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 'o4'")" 1 "... and did its work"
wait_ok 5 "nothing is left prepared" no_prepared_left

done_testing
