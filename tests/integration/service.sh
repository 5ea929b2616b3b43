#!/usr/bin/env bash
# Under systemd: both units pass systemd-analyze verify, the coordinator's
# scores 2.0 or better in systemd-analyze security; against a stand-in for
# systemd's notification socket, coordinatord says READY=1 only once it
# serves (log recovered, sockets bound), pings WATCHDOG=1 from its loop
# (no pings while the loop is stopped) and says STOPPING=1 on SIGTERM; the
# agent says READY=1 too. Under journald (a stand-in socket at its path in
# a private mount namespace) log lines arrive with PRIORITY, DTX_GTID and
# DTX_PARTICIPANT fields.
. "$(dirname "$0")/lib.sh"
NOTIFYSOCK=$top_builddir/tests/tools/dtx-notifysock

# --- the units ------------------------------------------------------------------
mkdir -p "$T/units"
for u in coordinatord.service dtx-pgagent@.service; do
	# the build's programs stand in for the installed ones
	sed -e "s|@sbindir@/coordinatord|$COORDINATORD|g" -e "s|@sbindir@/dtx-pgagent|$PGAGENT|g" \
		-e "s|@sysconfdir@|/etc|g" "$top_srcdir/etc/$u.in" >"$T/units/$u"
done
cp "$T/units/dtx-pgagent@.service" "$T/units/dtx-pgagent@shop.service"
out=$(systemd-analyze verify "$T/units/coordinatord.service" 2>&1); rc=$?
is "$rc" 0 "systemd-analyze verify accepts coordinatord.service"
[ "$rc" = 0 ] || echo "$out" | sed 's/^/# /'
out=$(systemd-analyze verify "$T/units/dtx-pgagent@shop.service" 2>&1); rc=$?
is "$rc" 0 "systemd-analyze verify accepts dtx-pgagent@.service (instance shop)"
[ "$rc" = 0 ] || echo "$out" | sed 's/^/# /'
score=$(systemd-analyze security --offline=true "$T/units/coordinatord.service" 2>/dev/null |
	sed -n 's/.*Overall exposure level for coordinatord.service: \([0-9.]*\).*/\1/p')
ok $(awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }'; echo $?) \
	"systemd-analyze security scores coordinatord.service ${score:-?} (2.0 or better wanted)"
like "$(grep -E '^(Type|WatchdogSec|Restart|StateDirectory|RuntimeDirectory|ExecStartPre)=' "$T/units/coordinatord.service" | tr '\n' ' ')" \
	'Type=notify .*WatchdogSec=.*Restart=on-failure.*StateDirectory=dtx.*RuntimeDirectory=dtx' \
	"coordinatord.service is Type=notify with a watchdog, restarts and its directories"
like "$(grep '^ExecStartPre=' "$T/units/coordinatord.service")" '--check-config' \
	"the configuration is checked before start"

# --- notify and watchdog ---------------------------------------------------------
# the stand-in runs as the daemons do (as systemd's socket lets them write)
"${AS_DAEMON[@]}" "$NOTIFYSOCK" "$T/notify.sock" >"$T/notify.out" &
ALL_PIDS+=("$!")
wait_or_bail 5 test -S "$T/notify.sock"
dtx_start_pg
# WATCHDOG_USEC as systemd sets it for WatchdogSec=0.4s: pings every 200 ms
write_coord_conf
as_daemon "$COORDINATORD" -c "$T/coord.conf" --create-log >>"$T/coord.log" 2>&1; ok $? "the log is created (an explicit act)"
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=400000 "${AS_DAEMON[@]}" "$COORDINATORD" -c "$T/coord.conf" 2>>"$T/coord.log" &
COORD_PID=$!
ALL_PIDS+=("$COORD_PID")
wait_for 10 grep -q 'READY=1' "$T/notify.out"; ok $? "coordinatord says READY=1"
# At READY the log is recovered and every socket bound: the admin socket
# answers at once.
"$DTXCTL" --wait 300 status >/dev/null; ok $? "the moment READY arrives, dtxctl status is answered"
like "$(grep 'READY=1' "$T/notify.out")" 'STATUS=coordinator c1 serving' "... READY carries a STATUS line"
sleep 1
pings=$(grep -c 'WATCHDOG=1' "$T/notify.out")
ok $([ "$pings" -ge 3 ] && echo 0 || echo 1) "WATCHDOG=1 every half interval ($pings in about a second)"
kill -STOP "$COORD_PID"; sleep 0.6
before=$(grep -c 'WATCHDOG=1' "$T/notify.out"); sleep 0.6
is "$(grep -c 'WATCHDOG=1' "$T/notify.out")" "$before" "a stopped loop sends no pings (systemd would restart it)"
kill -CONT "$COORD_PID"; sleep 0.5
ok $([ "$(grep -c 'WATCHDOG=1' "$T/notify.out")" -gt "$before" ] && echo 0 || echo 1) "pings resume with the loop"

NOTIFY_SOCKET=$T/notify.sock dtx_start_agent shop
wait_or_bail 10 participant_up shop
wait_for 5 grep -q 'READY=1.*STATUS=agent shop' "$T/notify.out"; ok $? "dtx-pgagent says READY=1"
kill_wait "${AGENT_PID[shop]}"
kill_wait "$COORD_PID"
wait_for 5 grep -q 'STOPPING=1' "$T/notify.out"; ok $? "SIGTERM: coordinatord says STOPPING=1"

# --- journald ---------------------------------------------------------------------
# With standard error on the journal (JOURNAL_STREAM names it), lines go to
# the journal's socket with structured fields. A private mount namespace
# puts a stand-in socket at journald's fixed path, /run/systemd/journal/socket.
if [ "$(id -u)" = 0 ] && mkdir -p /run/systemd/journal 2>/dev/null &&
	unshare --mount true 2>/dev/null; then
	: >"$T/j.err"
	unshare --mount bash -c '
		mount -t tmpfs tmpfs /run/systemd/journal || exit 1
		$4 "$1" /run/systemd/journal/socket >"$2/journal.out" & echo $! >"$2/journal.pid"
		for i in $(seq 50); do [ -S /run/systemd/journal/socket ] && break; sleep 0.1; done
		export JOURNAL_STREAM=$(stat -c "%d:%i" "$2/j.err")
		exec $4 "$3" -c "$2/coord.conf" 2>>"$2/j.err"' - "$NOTIFYSOCK" "$T" "$COORDINATORD" "${AS_DAEMON[*]}" &
	COORD_PID=$!
	ALL_PIDS+=("$COORD_PID")
	wait_or_bail 10 "$DTXCTL" --wait 500 status
	dtx_start_agent shop
	wait_or_bail 10 participant_up shop
	gtid=$("$DTXCTL" exec --on shop --sql "INSERT INTO orders VALUES ('j1', 'eve', 'widget', 1, 1)" | awk '{print $1}')
	wait_for 5 grep -q "MESSAGE=$gtid: one phase, committed" "$T/journal.out"
	ok $? "under journald, a transaction's line reaches the journal ($gtid)"
	line=$(grep "MESSAGE=$gtid: one phase, committed" "$T/journal.out")
	like "$line" "PRIORITY=6 SYSLOG_IDENTIFIER=coordinatord DTX_GTID=$gtid( |\$)" \
		"... with PRIORITY, SYSLOG_IDENTIFIER and DTX_GTID fields"
	like "$(grep 'MESSAGE=participant shop connected' "$T/journal.out")" 'PRIORITY=5 .*DTX_PARTICIPANT=shop' \
		"a participant's line carries DTX_PARTICIPANT"
	is "$(grep -c 'one phase, committed' "$T/j.err")" 0 "... and not standard error as well"
	kill_wait "${AGENT_PID[shop]}"
	kill_wait "$COORD_PID"
	kill "$(cat "$T/journal.pid")" 2>/dev/null
else
	for i in 1 2 3 4; do ok 0 "# SKIP journald: needs root and mount namespaces"; done
fi
done_testing
