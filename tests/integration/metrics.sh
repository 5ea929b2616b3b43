#!/usr/bin/env bash
# Metrics: coordinatord serves Prometheus' text format on metrics_listen
# (loopback only); after real transactions the scrape parses, its counters
# and histograms agree with what was run, participants' up/down shows, and
# dtxctl stats prints the same numbers. Bad addresses are refused with
# file:line; a taken port stops the start with a clear error.
. "$(dirname "$0")/lib.sh"
dtx_start_pg
MPORT=$((40000 + RANDOM % 20000))
URL=http://127.0.0.1:$MPORT/metrics
write_coord_conf
echo "metrics_listen = 127.0.0.1:$MPORT" >>"$T/coord.conf"
# every third ACK is lost: the decision is sent again (a phase-two retry)
dtx_start_coord DTX_FAULT=drop:ACK:3 || exit 1
for a in shop bank stock; do dtx_start_agent $a; done
for a in shop bank stock; do wait_or_bail 10 participant_up $a; done

scrape() { M=$(curl -sS --max-time 5 "$URL"); }
# value NAME{LABELS}: the sample's value in the last scrape
value() { awk -v k="$1" '$1 == k { print $2 }' <<<"$M"; }
# the exposition format: comments are HELP or TYPE, samples are
# name{labels} number, and every sample's family was TYPEd before it
well_formed() {
	awk '
	/^# HELP [a-z_][a-z0-9_]* .+$/ { next }
	/^# TYPE [a-z_][a-z0-9_]* (counter|gauge|histogram)$/ { typed[$3] = 1; next }
	/^[a-z_][a-z0-9_]*(\{[a-z_][a-z0-9_]*="[^"]*"(,[a-z_][a-z0-9_]*="[^"]*")*\})? [-+0-9.eE]+$/ {
		name = $1; sub(/\{.*/, "", name); base = name
		sub(/_(bucket|sum|count)$/, "", base)
		if (!(name in typed) && !(base in typed)) { print "untyped: " $0; bad = 1 }
		n++; next
	}
	{ print "bad line: " $0; bad = 1 }
	END { if (n == 0) print "no samples"; exit bad || n == 0 }'
}
# cumulative buckets never decrease and +Inf equals _count
buckets_ok() {
	awk -v h="$1" '
	index($1, h "_bucket{") == 1 { if ($2 < last) bad = 1; last = $2; inf = $2 }
	$1 == h "_count" { count = $2 }
	END { exit bad || inf != count || count == "" }' <<<"$M"
}

headers=$(curl -sS --max-time 5 -D - -o /dev/null "$URL")
like "$headers" 'HTTP/1.1 200' "GET /metrics answers 200"
like "$headers" 'Content-Type: text/plain; version=0.0.4' "... in Prometheus' text format 0.0.4"
scrape
out=$(well_formed <<<"$M"); ok $? "an idle scrape parses${out:+ ($out)}"
is "$(value 'dtx_transactions_total{outcome="committed"}')" 0 "nothing committed yet"

# --- real transactions ---------------------------------------------------------
for i in 1 2 3 4 5; do place_order m$i alice widget 1 >/dev/null || echo "# order m$i failed"; done
"$DTXCTL" exec --on shop --sql "INSERT INTO orders VALUES ('m6', 'bob', 'widget', 1, 1)" >/dev/null
place_order m7 alice widget 100000 >/dev/null; is "$?" 1 "an order beyond the stock aborts"
wait_for 10 none_in_flight; ok $? "every transaction finishes"
scrape
out=$(well_formed <<<"$M"); ok $? "the scrape after transactions parses${out:+ ($out)}"
is "$(value 'dtx_transactions_total{outcome="committed"}')" 6 "6 committed (5 orders, 1 one-phase)"
is "$(value 'dtx_transactions_total{outcome="aborted"}')" 1 "1 aborted"
is "$(value 'dtx_transactions_total{outcome="heuristic"}')" 0 "0 heuristic"
is "$(value dtx_decision_seconds_count)" 7 "7 decisions timed, one per answered client"
buckets_ok dtx_decision_seconds; ok $? "decision latency buckets are cumulative and end at the count"
buckets_ok dtx_log_commit_seconds; ok $? "log commit time buckets too"
is "$(value dtx_group_commit_records_count)" "$(value dtx_group_commits_total)" "one batch size observed per group commit"
ok $(awk -v n="$(value dtx_group_commit_records_sum)" 'BEGIN { exit !(n >= 7 * 3) }'; echo $?) \
	"the batches hold every record (at least begin, preparing, decision per transaction)"
ok $(awk -v n="$(value dtx_phase2_retries_total)" 'BEGIN { exit !(n >= 1) }'; echo $?) \
	"lost ACKs show as phase-two retries ($(value dtx_phase2_retries_total))"
is "$(value 'dtx_transactions_in_flight{state="committing"}')" 0 "nothing in flight"
is "$(value 'dtx_participant_up{participant="stock"}')" 1 "stock is up"
is "$(value dtx_log_failing)" 0 "the log takes writes"

stats=$("$DTXCTL" --json stats)
# stat KIND ATTR: one number of dtxctl stats' reply
stat() { jq -r --arg k "$1" --arg a "$2" '.rows[] | select(.kind == $k) | .[$a]' <<<"$stats"; }
is "$(stat transactions committed) $(stat transactions aborted) $(stat transactions heuristic)" "6 1 0" \
	"dtxctl stats: the same outcomes"
is "$(stat phase_two retries)" "$(value dtx_phase2_retries_total)" "... the same retries"
is "$(stat decision_latency count)" 7 "... the same decisions timed"
ok $(awk -v m="$(stat decision_latency mean_us)" -v s="$(value dtx_decision_seconds_sum)" \
	'BEGIN { exit !(m > 0 && (m * 7 - s * 1e6)^2 < 7 * 7) }'; echo $?) \
	"... their mean, in microseconds ($(stat decision_latency mean_us))"
ok $(awk -v a="$(stat decision_latency p50_us)" -v b="$(stat decision_latency p99_us)" \
	'BEGIN { exit !(a > 0 && a <= b) }'; echo $?) "... p50 and p99 bounds"
is "$(stat group_commits count) $(stat group_commits records)" \
	"$(value dtx_group_commits_total) $(value dtx_group_commit_records_sum)" "... the group commits"
is "$(stat log code)" 0 "... the log takes writes"
like "$("$DTXCTL" stats)" "decision latency: 7 answered, mean [0-9.]+ ms, p50 <= [0-9.]+ ms p99 <= [0-9.]+ ms" \
	"dtxctl stats prints the decision latency for a person"

kill_wait "${AGENT_PID[stock]}"
wait_for 5 sh -c "curl -sS '$URL' | grep -q 'dtx_participant_up{participant=\"stock\"} 0'"
ok $? "an agent gone shows as participant_up 0"
is "$("$DTXCTL" --json stats | jq -r '[.rows[] | select(.kind == "participant") | "\(.participant) \(.up)"] | join(" ")')" \
	'shop true bank true stock false' "... and in dtxctl stats"
like "$("$DTXCTL" stats)" 'participants: shop up bank up stock down' "... which prints it for a person"

# --- what is not a scrape --------------------------------------------------------
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/")" 404 "another path: 404"
is "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x "$URL")" 405 "POST: 405"
exec 3<>"/dev/tcp/127.0.0.1/$MPORT" && printf 'GARBAGE\r\n\r\n' >&3 && exec 3>&-
scrape; ok $? "after a malformed request the endpoint still serves"
"$DTXCTL" status >/dev/null; ok $? "... and so does the coordinator"

# --- configuration ------------------------------------------------------------------
sed "s/^metrics_listen = .*/metrics_listen = 10.1.2.3:9999/" "$T/coord.conf" >"$T/bad.conf"
out=$("$COORDINATORD" --check-config -c "$T/bad.conf" 2>&1); rc=$?
is "$rc" 1 "a non-loopback metrics address is refused"
like "$out" "bad.conf:[0-9]+: 'metrics_listen': .*loopback" "... with file:line and why ($out)"
sed "s/^metrics_listen = .*/metrics_listen = 127.0.0.1/" "$T/coord.conf" >"$T/bad.conf"
like "$("$COORDINATORD" --check-config -c "$T/bad.conf" 2>&1)" "bad.conf:[0-9]+: 'metrics_listen': HOST:PORT" "a missing port is refused"
# a second coordinator (its own log and sockets) on the same metrics port
sed -e "s|$T/log|$T/log2|" -e "s|$T/\([a-z]*\)\.sock|$T/\1-2.sock|" "$T/coord.conf" >"$T/two.conf"
as_daemon "$COORDINATORD" -c "$T/two.conf" --create-log >/dev/null || echo "# cannot create the second log"
out=$(as_daemon "$COORDINATORD" -c "$T/two.conf" 2>&1); rc=$?
is "$rc" 1 "a metrics port already taken stops the start"
like "$out" "cannot serve metrics on 127.0.0.1:$MPORT" "... and says so ($out)"
done_testing
