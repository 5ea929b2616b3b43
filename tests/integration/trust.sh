#!/usr/bin/env bash
# Trust: the attacks of an adversarial review, each against a running
# coordinator with tcp:// endpoints under CURVE, real agents and a real
# PostgreSQL. Nothing is served to a peer that has not proven who it is;
# who it proved to be, never what it says, is who it is.
#   - an unauthenticated peer (no CURVE, an HTTP POST) moves no money;
#   - a rogue agent cannot speak for bank, nor make the real one flap;
#   - a client is held to its policy: participants, SQL or named
#     statements, transactions in flight; an unknown key is not served;
#   - idle connections beyond the descriptor limit do not stop the daemon;
#   - the operator of an admin act is the admin socket's peer, not what
#     the request says.
. "$(dirname "$0")/lib.sh"

RAWFRAME=$top_builddir/tests/tools/dtx-rawframe
NULLAGENT=$top_builddir/tools/dtx-nullagent
CPORT=$((20000 + RANDOM % 20000))
APORT=$((CPORT + 1))
K=$T/keys
mkdir -p "$K"
for k in coordinator shop bank stock spare; do
	"$DTXCTL" keygen $k --dir "$K" >/dev/null || bail "dtxctl keygen $k failed"
done
# the clients' keys: dtxctl and the rogues run as this user
for k in web narrow one stranger rogue; do
	"$DTXCTL" keygen $k --dir "$K" >/dev/null || bail "dtxctl keygen $k failed"
done
# The daemons' secret keys are theirs: a secret key file must be owned by
# the user reading it.
[ "$(id -u)" -eq 0 ] && chown "$DTX_TEST_USER" "$K"/{coordinator,shop,bank,stock}.key

export DTX_TEST_CLIENT_EP=tcp://127.0.0.1:$CPORT DTX_TEST_AGENT_EP=tcp://127.0.0.1:$APORT
export DTX_TEST_KEYS=$K DTX_TEST_PARTICIPANTS="shop, bank, stock, spare"
DTX_TEST_COORD_EXTRA="secret_key = $K/coordinator.key
handshake_timeout_ms = 1000
[agent shop]
key = $(cat "$K/shop.pub")
[agent bank]
key = $(cat "$K/bank.pub")
[agent stock]
key = $(cat "$K/stock.pub")
[agent spare]
key = $(cat "$K/spare.pub")
[client web]
key = $(cat "$K/web.pub")
participants = *
sql = true
[client narrow]
key = $(cat "$K/narrow.pub")
participants = bank
sql = false
[client one]
key = $(cat "$K/one.pub")
participants = *
sql = true
max_inflight = 1"
export DTX_TEST_COORD_EXTRA
# dtxctl as the client web, unless a test says otherwise
export DTX_CLIENT=$DTX_TEST_CLIENT_EP DTX_SERVER_KEY=$K/coordinator.pub DTX_KEY=$K/web.key

dtx_start_all
q stock "UPDATE items SET qty = 100 WHERE item = 'widget'"
balance() { q bank "SELECT balance FROM wallets WHERE customer = '$1'"; }
preparing() { [ "$(ctl_count transaction list --state preparing)" -ge 1 ]; }

out=$(place_order t1 alice widget 1); rc=$?
is "$rc" 0 "a client with its key commits an order over tcp:// with CURVE"

# --- an unauthenticated peer moves no money --------------------------------
# msgpack by hand: a map of N, a short string, a small unsigned
mp_map() { printf '%02x' $((0x80 + $1)); }
mp_arr() { printf '%02x' $((0x90 + $1)); }
mp_str() { printf '%02x' $((0xa0 + ${#1})); printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
mp_uint() { printf '%02x' "$1"; }
# {"v":1,"t":"TX","id":7,"branches":[{"p":"bank","stmts":[{"sql":"UPDATE wallets SET balance=0"}]}]}
tx_hex=$(mp_map 4; mp_str v; mp_uint 1; mp_str t; mp_str TX; mp_str id; mp_uint 7
	mp_str branches; mp_arr 1; mp_map 2; mp_str p; mp_str bank; mp_str stmts; mp_arr 1
	mp_map 1; mp_str sql; mp_str "UPDATE wallets SET balance=0")
before=$(balance alice)
out=$(timeout 20 "$RAWFRAME" "tcp://127.0.0.1:$CPORT" "$tx_hex" 2>&1); rc=$?
[ "$rc" -ne 0 ] && ! printf '%s' "$out" | grep -q '^OUTCOME'; ok $? "a TX from a peer without a CURVE key is not answered"
is "$(balance alice)" "$before" "... and nothing ran"
out=$(curl -s --max-time 5 -X POST --data-binary "$(printf '\x01\x00\x01\x00')" "http://127.0.0.1:$CPORT/tx" 2>&1)
is "$(balance alice)" "$before" "an HTTP POST to the client port runs nothing"
"$DTXCTL" --wait 5000 status >/dev/null 2>&1; ok $? "... and the coordinator still serves"

# --- a rogue agent cannot speak for bank -----------------------------------
regs=$(registrations bank)
# a key of another participant's (spare), saying HELLO bank every 50 ms
DTX_SERVER_KEY=$K/coordinator.pub DTX_KEY=$K/spare.key \
	"$NULLAGENT" bank "tcp://127.0.0.1:$APORT" 50 >>"$T/rogue-spare.log" 2>&1 &
rogue1=$!
ALL_PIDS+=("$rogue1")
# a key the coordinator does not know
DTX_SERVER_KEY=$K/coordinator.pub DTX_KEY=$K/rogue.key \
	"$NULLAGENT" bank "tcp://127.0.0.1:$APORT" 50 >>"$T/rogue-key.log" 2>&1 &
rogue2=$!
ALL_PIDS+=("$rogue2")
# no key at all
"$NULLAGENT" bank "tcp://127.0.0.1:$APORT" 50 >>"$T/rogue-none.log" 2>&1 &
rogue3=$!
ALL_PIDS+=("$rogue3")
wait_ok 10 "the coordinator refuses the HELLO for bank from spare's key" \
	grep -q "refused hello from agent:spare: this connection's key speaks for spare, not for bank" "$T/coord.log"
wait_ok 10 "... and refuses the unknown key before any HELLO" grep -q "agent connection refused .* is no \[agent\]'s" "$T/coord.log"
before=$(balance alice)
committed=0
for i in 1 2 3 4 5; do
	place_order "r$i" alice widget 1 >/dev/null && committed=$((committed + 1))
done
is "$committed" 5 "five orders commit while the rogues try"
is "$(balance alice)" $((before - 50)) "... and bank really took the money for each (the real agent ran them)"
is "$(registrations bank)" "$regs" "the real bank agent never had to register again (no flapping)"
is "$(grep -c 'refused hello from agent:spare' "$T/coord.log")" 1 "a refused HELLO is logged once per peer, not every 50 ms"
is "$(participant_is spare)" "false true" "spare did not register under bank's name or its own"
# With the real bank agent gone, spare's key still cannot take its name.
kill_wait "${AGENT_PID[bank]}"
bank_down() { [ "$(participant_is bank)" = "false true" ]; }
wait_ok 10 "the real bank agent is gone" bank_down
sleep 1
is "$(participant_is bank)" "false true" "while it is gone the rogue does not register as bank"
dtx_start_agent bank
wait_ok 10 "the real bank agent comes back" participant_up bank
kill_wait "$rogue1"
kill_wait "$rogue2"
kill_wait "$rogue3"

# --- client policies -------------------------------------------------------
before=$(balance alice)
out=$(DTX_KEY=$K/narrow.key "$DTXCTL" exec --on shop --sql "DELETE FROM orders" 2>&1); rc=$?
is "$rc" 3 "a client naming a participant outside its policy is refused (exit 3)"
like "$out" "not permitted: client narrow may not name participant 'shop'" "... with the reason"
out=$(DTX_KEY=$K/narrow.key "$DTXCTL" exec --on bank --sql "UPDATE wallets SET balance = 0" 2>&1); rc=$?
is "$rc" 3 "a client allowed named statements only is refused SQL text"
like "$out" "client narrow may send named statements only" "... with the reason"
is "$(balance alice)" "$before" "nothing ran"
is "$(q shop "SELECT count(*) FROM orders")" 6 "shop lost no order"

DTX_KEY=$K/one.key "$DTXCTL" exec --timeout 20000 --on bank --sql "SELECT pg_sleep(2)" >"$T/slow.out" 2>&1 &
slow=$!
wait_ok 10 "the one client's first transaction is in flight" preparing
out=$(DTX_KEY=$K/one.key "$DTXCTL" exec --on bank --sql "SELECT 1" 2>&1); rc=$?
is "$rc" 3 "its second one, beyond max_inflight = 1, is refused"
like "$out" "busy: client one has 1 transactions in flight, its most" "... as busy, with the reason"
wait_exit 30 "$slow"; is "$?" 0 "the first one commits"
out=$(DTX_KEY=$K/one.key "$DTXCTL" exec --on bank --sql "SELECT 1" 2>&1); rc=$?
is "$rc" 0 "once it is done the client may run another"

out=$(DTX_KEY=$K/stranger.key "$DTXCTL" --wait 2000 exec --on bank --sql "UPDATE wallets SET balance = 0" 2>&1); rc=$?
is "$rc" 3 "a client key no [client] section has is not served"
like "$(grep "client connection refused" "$T/coord.log" | tail -1)" "key $(cat "$K/stranger.pub" | sed 's/[][\\.*^$+?(){}|]/\\&/g') is no \[client\]'s" \
	"... and the coordinator logs the key it refused"
is "$(balance alice)" "$before" "nothing ran"

# --- a client's text in the log is bounded ---------------------------------
# PostgreSQL's error quotes the value: 2,000 bytes the client chose
long=$(printf 'x%.0s' $(seq 1 2000))
out=$("$DTXCTL" exec --on bank --sql "SELECT '$long'::int" 2>&1); rc=$?
is "$rc" 1 "a statement whose error quotes 2,000 bytes of the client's aborts"
gtid=${out%% *}
note=$(show_records "$gtid" aborting note)
like "$note" '^bank voted no: .*\.\.\.$' "its abort record says why, cut"
ok $([ "${#note}" -le 260 ]; echo $?) "... at most 260 bytes of it reach the log (${#note})"

# --- idle connections: descriptors -----------------------------------------
# More idle connections than the default soft limit of 1024, held open
# while a transaction runs and dtxctl asks; the handshake timeout (1 s
# here) closes those that never speak.
(
	ulimit -n 4096 || exit 1
	for i in $(seq 1 1100); do exec {fd}<>"/dev/tcp/127.0.0.1/$CPORT" || break; done
	sleep 4
) 2>/dev/null &
holder=$!
sleep 1
out=$(place_order d1 alice widget 1); rc=$?
is "$rc" 0 "an order commits while 1,100 idle connections are open"
"$DTXCTL" --wait 5000 status >/dev/null 2>&1; ok $? "dtxctl status answers"
wait_exit 20 "$holder"; is "$?" 0 "the holder of the idle connections held them and finished"
! gone "$COORD_PID"; ok $? "the coordinator still runs"
out=$(place_order d2 alice widget 1); rc=$?
is "$rc" 0 "and commits after they are gone"

# --- the operator is who the admin socket says ------------------------------
kill -STOP "${AGENT_PID[stock]}"
place_order h1 alice widget 1 --timeout 30000 >/dev/null 2>&1 &
client=$!
wait_ok 10 "an order waits for the frozen stock" preparing
gtid=$(ctl_get transaction gtid list --state preparing | head -1)
# ADMIN {"v":1,"t":"ADMIN","id":9,"name":"resolve","args":{"gtid":G,"verb":"abort","who":"mallory"}}
admin_hex=$(mp_map 5; mp_str v; mp_uint 1; mp_str t; mp_str ADMIN; mp_str id; mp_uint 9
	mp_str name; mp_str resolve; mp_str args; mp_map 3; mp_str gtid; mp_str "$gtid"
	mp_str verb; mp_str abort; mp_str who; mp_str mallory)
out=$("$RAWFRAME" "ipc://$T/admin.sock" "$admin_hex" 2>&1)
like "$out" '^REPLY 0' "a resolve that says it is from mallory is done"
like "$(show_records "$gtid" heuristic note)" "^operator uid $(id -u) \($(id -un)\): resolve abort$" \
	"... and logged as the admin socket's peer, uid $(id -u), not mallory"
kill -CONT "${AGENT_PID[stock]}"
wait_exit 60 "$client"; is "$?" 1 "the waiting client is told aborted"

done_testing
