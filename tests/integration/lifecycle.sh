#!/usr/bin/env bash
# The daemon's lifecycle under signals.
# SIGTERM: new transactions are refused at once, those in flight are
# finished (phase two acknowledged) within shutdown_timeout_ms, then the
# log is flushed and the process exits 0; past the bound what is left is
# recovered at the next start; a second SIGTERM stops at once.
# SIGHUP: log level, timeouts and the participant allow-list change without
# a restart; keys that need one are named; a bad file is refused with
# file:line and the configuration in use stays.
. "$(dirname "$0")/lib.sh"
dtx_start_pg

start_agents() {
	for a in shop bank stock; do dtx_start_agent $a; done
	for a in shop bank stock; do wait_for 10 participant_up $a || { echo "Bail out! $a did not register"; exit 1; }; done
}
# coord_exited: wait for the coordinator to exit; its status in $status
coord_exited() { wait_exit 120 "$COORD_PID"; status=$?; COORD_PID=; }
recovered() { grep -c 'recovered .* unfinished' "$T/coord.log"; }
wallet() { q bank "SELECT balance FROM wallets WHERE customer = '$1'"; }

# --- SIGTERM drains --------------------------------------------------------------
# Every ACK reaches the coordinator 1.5 s late: a committed transaction
# stays in flight (COMMITTING) that long after its client is answered.
write_coord_conf
echo "shutdown_timeout_ms = 8000" >>"$T/coord.conf"
dtx_start_coord DTX_FAULT=delay:ACK:1:1500 || exit 1
start_agents
out=$(place_order d1 alice widget 1); rc=$?
is "$rc" 0 "an order commits ($out)"
is "$(ctl_get in_flight committing status)" 1 "... and waits in flight for its acknowledgements"
kill -TERM "$COORD_PID"
sleep 0.2
out=$(place_order d2 alice widget 1 2>&1); rc=$?
ok $([ "$rc" != 0 ] && echo 0 || echo 1) "while draining, a new transaction is refused (exit $rc)"
like "$out" 'shutting down' "... with a clear reason: $out"
is "$(ctl_get in_flight committing status 2>&1)" 1 "while draining the admin socket still answers"
coord_exited; is "$status" 0 "once the acknowledgements are in, coordinatord exits 0"
like "$(grep 'shut down' "$T/coord.log")" 'nothing left in flight' "it says nothing was left in flight"
is "$(q shop "SELECT count(*) FROM orders WHERE ref IN ('d1', 'd2')")" 1 "the order placed before SIGTERM is in, the refused one is not"
before=$(recovered)
dtx_start_coord || exit 1
is "$(recovered)" "$before" "the next start has nothing to recover"
is "$(in_flight)" 0 "... and nothing in flight"

# --- past the bound, recovery finishes the rest ---------------------------------
kill_wait "$COORD_PID"
write_coord_conf
echo "shutdown_timeout_ms = 700" >>"$T/coord.conf"
dtx_start_coord DTX_FAULT=delay:ACK:1:60000 || exit 1
for a in shop bank stock; do wait_or_bail 10 participant_up $a; done
alice=$(wallet alice) price=$(q stock "SELECT price FROM items WHERE item = 'widget'")
out=$(place_order d3 alice widget 1); rc=$?
is "$rc" 0 "an order commits; its acknowledgements will not arrive in time"
t0=$(date +%s%N)
kill -TERM "$COORD_PID"
coord_exited; is "$status" 0 "at the bound coordinatord exits 0 all the same"
ms=$((($(date +%s%N) - t0) / 1000000))
ok $([ "$ms" -ge 600 ] && [ "$ms" -lt 5000 ] && echo 0 || echo 1) "... after waiting for about the bound (${ms} ms, bound 700)"
like "$(grep 'bound' "$T/coord.log" | tail -1)" '1 decided transactions still unacknowledged' \
	"it names what it leaves to recovery"
before=$(recovered)
write_coord_conf
dtx_start_coord || exit 1
is "$(recovered)" "$((before + 1))" "the next start recovers it"
wait_for 10 none_in_flight; ok $? "... and finishes it"
is "$(q shop "SELECT count(*) FROM orders WHERE ref = 'd3'")" 1 "the order is in"
is "$(wallet alice)" "$((alice - price))" "alice paid once"

# --- a second SIGTERM stops at once -----------------------------------------------
kill_wait "$COORD_PID"
write_coord_conf
echo "shutdown_timeout_ms = 60000" >>"$T/coord.conf"
dtx_start_coord DTX_FAULT=delay:ACK:1:60000 || exit 1
for a in shop bank stock; do wait_or_bail 10 participant_up $a; done
place_order d4 alice widget 1 >/dev/null; ok $? "an order commits; acknowledgements held back"
kill -TERM "$COORD_PID"; sleep 0.3
t0=$(date +%s%N)
kill -TERM "$COORD_PID"
coord_exited; is "$status" 0 "a second SIGTERM: exit 0 without waiting the 60 s bound"
ms=$((($(date +%s%N) - t0) / 1000000))
ok $([ "$ms" -lt 3000 ] && echo 0 || echo 1) "... at once (${ms} ms)"

# --- SIGHUP -----------------------------------------------------------------------
write_coord_conf
dtx_start_coord || exit 1
for a in shop bank stock; do wait_or_bail 10 participant_up $a; done
lines=$(wc -l <"$T/coord.log")
sed -i -e '/^\[coordinator\]/,$ s/^participants = .*/participants = shop, bank, audit/' \
	-e 's/^default_timeout_ms = .*/default_timeout_ms = 1234/' \
	-e 's/^log_level = .*/log_level = debug/' -e 's/^id = c1/id = c2/' "$T/coord.conf"
kill -HUP "$COORD_PID"
wait_for 5 grep -q 'reloaded' "$T/coord.log"; ok $? "SIGHUP: the configuration is read again"
reload=$(tail -n +"$((lines + 1))" "$T/coord.log")
like "$reload" 'reloaded .*default_timeout_ms 5000 -> 1234' "... the new timeout is taken"
like "$reload" 'reloaded .*log_level debug' "... the new log level is taken"
like "$reload" 'reloaded .*participant stock removed.*participant audit added' "... the allow-list changes"
like "$reload" 'not changed without a restart: id ' "... and the key that needs a restart is named"
out=$("$DTXCTL" exec --on stock --sql "UPDATE items SET qty = qty WHERE item = 'widget'" 2>&1); rc=$?
ok $([ "$rc" != 0 ] && echo 0 || echo 1) "a transaction naming a removed participant is refused"
like "$out" "unknown participant 'stock'" "... as unknown ($out)"
is "$(participant_is audit)" "false true" "the added participant is known (down until its agent comes)"
is "$(participant_is stock)" "true false" "the removed one's agent stays registered, marked removed"
like "$("$DTXCTL" status)" 'participant stock up, last seen [0-9]+ ms ago \(removed from the allow-list\)' \
	"... which status tells a person"
out=$("$DTXCTL" exec --on shop --sql "SELECT 1" --on bank --sql "SELECT 1"); rc=$?
is "$rc" 0 "shop and bank still take transactions ($out)"
# debug lines appear now
out=$("$DTXCTL" exec --on shop --sql "INSERT INTO orders VALUES ('hup', 'bob', 'widget', 1, 1)")
like "$(tail -n +"$((lines + 1))" "$T/coord.log")" '<7>.*begin, 1 branches' "the debug level is in force"
like "$out" '^c1\.' "GTIDs keep the id in use, c1 ($out)"

# a bad file: refused with file:line, nothing changes
lines=$(wc -l <"$T/coord.log")
echo "no_such_key = 1" >>"$T/coord.conf"
kill -HUP "$COORD_PID"
wait_for 5 grep -q 'reload refused' "$T/coord.log"; ok $? "a bad file is refused"
like "$(tail -n +"$((lines + 1))" "$T/coord.log")" "reload refused.*coord.conf:[0-9]+: unknown key 'no_such_key'" \
	"... with file:line and the reason"
"$DTXCTL" exec --on shop --sql "SELECT 1" --on bank --sql "SELECT 1" >/dev/null; ok $? "the daemon serves on with the configuration in use"
# the agent does not reload; a SIGHUP must not stop it either
kill -HUP "${AGENT_PID[shop]}"; sleep 0.3
kill -0 "${AGENT_PID[shop]}" 2>/dev/null; ok $? "dtx-pgagent survives a SIGHUP"
done_testing
