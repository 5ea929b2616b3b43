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
# watch FILE [OPTIONS]: a watcher in the background, subscribed before it
# returns; into FILE.json one JSON object an event (dtxctl --json), which the
# checks read, into another FILE the lines a person reads
watch() {
	local file=$1 before json=
	shift
	case $file in *.json) json=--json ;; esac
	before=$(watchers)
	"$DTXCTL" $json watch "$@" >"$file" 2>&1 &
	ALL_PIDS+=("$!")
	more_watchers() { [ "$(watchers)" -gt "$1" ]; }
	wait_or_bail 5 more_watchers "${before:-0}"
}
# events GTID FILE: the event names of GTID in FILE (JSON), in order
events() { jq -r --arg g "$1" 'select(.gtid == $g) | .event' "$2" | paste -sd ' ' -; }
# event GTID EVENT FILE: "WHO PARTICIPANTS DETAIL" of each EVENT of GTID in FILE
event() {
	jq -r --arg g "$1" --arg e "$2" \
		'select(.gtid == $g and .event == $e) | "\(.who // "-") \(.participants | join(",")) \(.detail // "")"' "$3"
}
has_event() { [ -n "$(event "$@")" ]; }

watch "$T/all.json"
watch "$T/stock.json" --participant stock
watch "$T/all.out"
is "$(watchers)" 3 "three watchers subscribed"

gtid=$(place_order w1 alice widget 1 | awk '{print $1}')
one=$("$DTXCTL" exec --on shop --sql "INSERT INTO orders VALUES ('w2', 'bob', 'widget', 1, 1)" | awk '{print $1}')
bad=$(place_order w3 alice widget 100000 | awk '{print $1}')
wait_ok 10 "the watcher sees the aborted order complete" has_event "$bad" completed "$T/all.json"
wait_ok 10 "the watcher sees the committed order complete" has_event "$gtid" completed "$T/all.json"

is "$(events "$gtid" "$T/all.json")" "begun voted voted voted decided completed" \
	"a committed order: begun, three votes, decided, completed, in that order"
is "$(event "$gtid" voted "$T/all.json" | sort | paste -sd ' ' -)" \
	'bank shop,bank,stock yes shop shop,bank,stock yes stock shop,bank,stock yes' "... a yes vote from each participant"
is "$(event "$gtid" decided "$T/all.json")" "- shop,bank,stock commit" "... decided commit"
is "$(event "$gtid" completed "$T/all.json")" '- shop,bank,stock committed' "... completed: committed"
is "$(jq -s --arg g "$gtid" '[.[] | select(.gtid == $g) | .at_us] | . == sort and length == 6' "$T/all.json")" true \
	"... each event with its own time, in order"
is "$(events "$one" "$T/all.json")" "begun voted decided completed" "a one-phase transaction: begun, voted, decided, completed"
is "$(event "$one" voted "$T/all.json")" 'shop shop committed' "... its vote says committed"
like "$(event "$bad" decided "$T/all.json")" '^- shop,bank,stock abort: (bank|stock) voted no' "an aborted order: decided abort with who voted no"
is "$(event "$bad" completed "$T/all.json")" '- shop,bank,stock aborted' "... completed: aborted"

is "$(events "$one" "$T/stock.json")" "" "--participant stock: not the shop-only transaction"
is "$(events "$gtid" "$T/stock.json")" "$(events "$gtid" "$T/all.json")" "--participant stock: every event of the order stock took part in"

# The lines a person reads: time, GTID, event, who (or the participants), detail.
wait_ok 10 "the text watcher sees the committed order complete" grep -q "$gtid completed" "$T/all.out"
like "$(grep "$gtid decided" "$T/all.out")" "^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} $gtid decided   shop,bank,stock commit$" \
	"the text watcher prints a decision's line"
like "$(grep "$gtid voted" "$T/all.out" | head -1)" "^[0-9:.]{12} $gtid voted     (shop|bank|stock) yes$" \
	"... and a vote's, naming the participant"

# --- one transaction by GTID, others running -------------------------------------
kill -STOP "${AGENT_PID[bank]}"
place_order w4 alice widget 1 --timeout 20000 >"$T/w4.out" &
ORDER=$!
preparing() { [ -n "$(ctl_get transaction gtid list --state preparing)" ]; }
wait_for 5 preparing; ok $? "an order waits for the frozen bank's vote"
g4=$(ctl_get transaction gtid list --state preparing | head -1)
watch "$T/one.json" --gtid "$g4" --count 3
"$DTXCTL" exec --on shop --sql "INSERT INTO orders VALUES ('w5', 'bob', 'widget', 1, 1)" >/dev/null
kill -CONT "${AGENT_PID[bank]}"
wait_exit 60 "$ORDER"; is "$?" 0 "the order commits once bank answers"
three_events() { [ "$(wc -l <"$T/one.json")" -ge 3 ]; }
wait_ok 10 "the --gtid watcher gets its 3 events" three_events
is "$(jq -r .gtid "$T/one.json" | sort -u)" "$g4" "--gtid: only that transaction's events"
is "$(jq -r '"\(.event) \(.who // (.participants | join(",")))"' "$T/one.json" | paste -sd ' ' -)" \
	"voted bank decided shop,bank,stock completed shop,bank,stock" \
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
wait_ok 10 "the watcher sees the heuristic order complete" has_event "$g6" completed "$T/all.json"
is "$(events "$g6" "$T/all.json")" "begun voted voted voted decided heuristic completed" \
	"a heuristic outcome: its event comes before completed"
like "$(event "$g6" heuristic "$T/all.json")" "^bank shop,bank,stock .*rolled back outside dtx" \
	"... naming the participant and what was done there"
like "$(event "$g6" heuristic "$T/stock.json")" "^bank " "... and a watcher of another participant of it sees it too"
done_testing
