#!/usr/bin/env bash
# dtxctl watch: a live stream of transaction events. A watcher sees a
# committed order's events in order (begun, a vote from each participant,
# decided, completed), an aborted one's with the reason; --participant
# keeps only transactions that participant takes part in; --gtid only one
# transaction's events, while other transactions run; a heuristic outcome
# (a branch rolled back by hand against a commit) is an event of its own.
. "$(dirname "$0")/lib.sh"
dtx_start_all

watchers() { grep -o 'event stream: [0-9]* watching' "$T/coord.log" | tail -1 | awk '{print $3}'; }
# watch FILE [OPTIONS]: a watcher in the background, subscribed before it returns
watch() {
	local file=$1 before
	shift
	before=$(watchers)
	"$DTXCTL" watch "$@" >"$file" 2>&1 &
	ALL_PIDS+=("$!")
	more_watchers() { [ "$(watchers)" -gt "$1" ]; }
	wait_or_bail 5 more_watchers "${before:-0}"
}
# events GTID FILE: the event names of GTID in FILE, in order
events() { awk -v g="$1" '$2 == g { printf "%s%s", sep, $3; sep = " " }' "$2"; }

watch "$T/all.out"
watch "$T/stock.out" --participant stock
is "$(watchers)" 2 "two watchers subscribed"

gtid=$(place_order w1 alice widget 1 | awk '{print $1}')
one=$("$DTXCTL" exec --on shop --sql "INSERT INTO orders VALUES ('w2', 'bob', 'widget', 1, 1)" | awk '{print $1}')
bad=$(place_order w3 alice widget 100000 | awk '{print $1}')
wait_ok 10 "the watcher sees the aborted order complete" grep -q "$bad completed" "$T/all.out"
wait_ok 10 "the watcher sees the committed order complete" grep -q "$gtid completed" "$T/all.out"

is "$(events "$gtid" "$T/all.out")" "begun voted voted voted decided completed" \
	"a committed order: begun, three votes, decided, completed, in that order"
like "$(grep "$gtid voted" "$T/all.out" | awk '{print $4, $5}' | sort | tr '\n' ' ')" \
	'^bank yes shop yes stock yes $' "... a yes vote from each participant"
like "$(grep "$gtid decided" "$T/all.out")" "$gtid decided +shop,bank,stock commit" "... decided commit"
like "$(grep "$gtid completed" "$T/all.out")" 'completed +shop,bank,stock committed' "... completed: committed"
is "$(events "$one" "$T/all.out")" "begun voted decided completed" "a one-phase transaction: begun, voted, decided, completed"
like "$(grep "$one voted" "$T/all.out")" 'voted +shop committed' "... its vote says committed"
like "$(grep "$bad decided" "$T/all.out")" 'decided +shop,bank,stock abort: (bank|stock) voted no' "an aborted order: decided abort with who voted no"
like "$(grep "$bad completed" "$T/all.out")" 'completed .* aborted' "... completed: aborted"

is "$(events "$one" "$T/stock.out")" "" "--participant stock: not the shop-only transaction"
is "$(events "$gtid" "$T/stock.out")" "$(events "$gtid" "$T/all.out")" "--participant stock: every event of the order stock took part in"

# --- one transaction by GTID, others running -------------------------------------
kill -STOP "${AGENT_PID[bank]}"
place_order w4 alice widget 1 --timeout 20000 >"$T/w4.out" &
ORDER=$!
wait_for 5 sh -c "'$DTXCTL' list --state preparing | grep -q ." ; ok $? "an order waits for the frozen bank's vote"
g4=$("$DTXCTL" list --state preparing | awk 'NR == 1 {print $1}')
watch "$T/one.out" --gtid "$g4" --count 3
"$DTXCTL" exec --on shop --sql "INSERT INTO orders VALUES ('w5', 'bob', 'widget', 1, 1)" >/dev/null
kill -CONT "${AGENT_PID[bank]}"
wait_exit 60 "$ORDER"; is "$?" 0 "the order commits once bank answers"
three_events() { [ "$(wc -l <"$T/one.out")" -ge 3 ]; }
wait_ok 10 "the --gtid watcher gets its 3 events" three_events
is "$(awk '{print $2}' "$T/one.out" | sort -u)" "$g4" "--gtid: only that transaction's events"
is "$(awk '{print $3, $4}' "$T/one.out" | tr '\n' ' ')" "voted bank decided shop,bank,stock completed shop,bank,stock " \
	"... the rest of its life: bank's vote, decided, completed"

# --- a heuristic outcome ---------------------------------------------------------
# bank dies on hearing COMMIT and its branch is rolled back by hand before it
# is back: the repeated COMMIT finds it gone, and the watcher is told.
seen=$(registrations bank)
kill_wait "${AGENT_PID[bank]}" KILL
dtx_start_agent bank DTX_CRASH=pga.decision_received
wait_registered bank "$seen"
g6=$(place_order w6 alice widget 1 | awk '{print $1}')
bank_pid=${AGENT_PID[bank]}
wait_for 10 sh -c "! kill -0 $bank_pid"; ok $? "the order commits; bank dies on hearing it"
q bank "ROLLBACK PREPARED '$(q postgres "SELECT gid FROM pg_prepared_xacts WHERE database = 'bank'")'"
dtx_start_agent bank
wait_ok 10 "the watcher sees the heuristic order complete" grep -q "$g6 completed" "$T/all.out"
is "$(events "$g6" "$T/all.out")" "begun voted voted voted decided heuristic completed" \
	"a heuristic outcome: its event comes before completed"
like "$(grep "$g6 heuristic" "$T/all.out")" "$g6 heuristic +bank .*rolled back outside dtx" \
	"... naming the participant and what was done there"
like "$(grep "$g6 heuristic" "$T/stock.out")" "heuristic +bank" "... and a watcher of another participant of it sees it too"
done_testing
