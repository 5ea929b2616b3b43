#!/usr/bin/env bash
# What one peer or one local user may do to the daemons: they refuse to
# run as root; coordinatord refuses a log directory that is not its own or
# that others may write, a socket directory likewise, and a planted
# symlink in the log directory (its target left untouched); the admin and
# events endpoints are local sockets only, never TCP or an abstract
# socket; the descriptor soft limit is raised to the hard one; idle
# connections do not keep /metrics from answering; a flood of malformed
# frames leaves a bounded number of lines in the log, and says how many
# it left out.
. "$(dirname "$0")/lib.sh"
is_root() { [ "$(id -u)" -eq 0 ]; }
skip() { ok 0 "# SKIP $1"; }
# start_refused NAME PATTERN: coordinatord -c $T/coord.conf exits 1 at
# start, saying PATTERN
start_refused() {
	local out rc
	out=$(timeout 20 "${AS_DAEMON[@]}" "$COORDINATORD" -c "$T/coord.conf" 2>&1)
	rc=$?
	is "$rc" 1 "$1: the start is refused"
	like "$out" "$2" "... saying why ($(printf '%s' "$out" | grep -m1 'cannot start' || printf '%s' "$out" | tail -1))"
}
# stamp FILE: its content's checksum and its mtime
stamp() { echo "$(sha256sum <"$1") $(stat -c %Y.%y "$1")"; }

MPORT=$((40000 + RANDOM % 20000))
write_coord_conf
echo "metrics_listen = 127.0.0.1:$MPORT" >>"$T/coord.conf"
cat >"$T/agent.conf" <<EOF
[agent]
name = shop
coordinator = ipc://$T/agent.sock
conninfo = host=$T/nosock dbname=shop
EOF

# --- root -----------------------------------------------------------------------
if is_root; then
	out=$(timeout 20 "$COORDINATORD" -c "$T/coord.conf" 2>&1); rc=$?
	is "$rc" 1 "coordinatord started as root exits 1"
	like "$out" "coordinatord: refusing to run as root: run it as the dtx user \(User=dtx" "... naming the fix ($out)"
	out=$(timeout 20 "$PGAGENT" -c "$T/agent.conf" 2>&1); rc=$?
	is "$rc" 1 "dtx-pgagent started as root exits 1"
	like "$out" "dtx-pgagent: refusing to run as root" "... saying so"
	out=$(timeout 20 "$COORDINATORD" -c "$T/coord.conf" --create-log 2>&1); rc=$?
	is "$rc:$([ -e "$T/log" ] && echo made)" "1:" "--create-log as root is refused and makes nothing"
	"$COORDINATORD" -c "$T/coord.conf" --check-config >/dev/null 2>&1; ok $? "--check-config still works as root"
	"$PGAGENT" --help >/dev/null 2>&1; ok $? "... and --help"
else
	for i in 1 2 3 4 5 6 7; do skip "as root only: root refused"; done
fi

# --- the log directory -------------------------------------------------------------
as_daemon "$COORDINATORD" -c "$T/coord.conf" --create-log >>"$T/coord.log" 2>&1
ok $? "the log is created (as the daemon's user)"
is "$(stat -c %a "$T/log")" 700 "... in a directory of mode 0700"

if is_root; then
	chown root: "$T/log"
	start_refused "log_dir owned by root" "cannot start: log_dir $T/log: owned by uid 0, not by this user \(uid $(id -u "$DTX_TEST_USER")\)"
	chown "$DTX_TEST_USER:" "$T/log"
else
	for i in 1 2; do skip "as root only: log_dir of another user"; done
fi
chmod 0777 "$T/log"
start_refused "log_dir of mode 0777" "cannot start: log_dir $T/log: mode 0777: writable by others"
chmod 0770 "$T/log"
start_refused "log_dir of mode 0770" "log_dir $T/log: mode 0770: writable by its group"
chmod 0700 "$T/log"
mv "$T/log" "$T/log.real" && ln -s log.real "$T/log"
start_refused "log_dir a symlink" "log_dir $T/log: a symbolic link"
rm "$T/log" && mv "$T/log.real" "$T/log"

# A file of the daemon's user elsewhere, which a planted symlink names.
as_daemon sh -c "echo precious >'$T/target'"
touch -d '2020-01-02 03:04:05' "$T/target"
before=$(stamp "$T/target")
mv "$T/log/lock.mdb" "$T/lock.mdb.saved"
ln -s "$T/target" "$T/log/lock.mdb"
start_refused "a symlinked lock.mdb" "log_dir $T/log: lock.mdb is a symbolic link"
is "$(stamp "$T/target")" "$before" "... and its target is untouched (content and mtime)"
rm "$T/log/lock.mdb" && mv "$T/lock.mdb.saved" "$T/log/lock.mdb"

mv "$T/log/coordinatord.lock" "$T/lock.saved"
ln -s "$T/planted" "$T/log/coordinatord.lock"
start_refused "a symlinked coordinatord.lock" "log_dir $T/log: coordinatord.lock is a symbolic link"
ok "$([ ! -e "$T/planted" ]; echo $?)" "... and the file it names is not created"
rm "$T/log/coordinatord.lock"
ln -s "$T/target" "$T/log/coordinatord.lock"
start_refused "coordinatord.lock a symlink to a file" "coordinatord.lock is a symbolic link"
is "$(stamp "$T/target")" "$before" "... and that file is untouched"
rm "$T/log/coordinatord.lock" && mv "$T/lock.saved" "$T/log/coordinatord.lock"
mkfifo "$T/log/data.mdb.fifo" && mv "$T/log/data.mdb" "$T/data.mdb.saved" && mv "$T/log/data.mdb.fifo" "$T/log/data.mdb"
start_refused "data.mdb a fifo" "data.mdb is special, not a regular file"
rm "$T/log/data.mdb" && mv "$T/data.mdb.saved" "$T/log/data.mdb"

# A socket directory others may write: the admin socket there is refused.
mkdir "$T/socks" && chmod 0773 "$T/socks"
is_root && chown "$DTX_TEST_USER:" "$T/socks"
cp "$T/coord.conf" "$T/coord.conf.good"
sed -i "s|^admin_endpoint = .*|admin_endpoint = ipc://$T/socks/admin.sock|" "$T/coord.conf"
start_refused "an admin socket in a directory of mode 0773" "admin_endpoint's directory $T/socks: mode 0773: writable by others"
cp "$T/coord.conf.good" "$T/coord.conf"

# --- the endpoints -------------------------------------------------------------------
# refused_conf NAME KEY VALUE PATTERN: with KEY = VALUE, --check-config
# exits 1 saying file:line and PATTERN
refused_conf() {
	local out rc
	sed "s|^$2 = .*|$2 = $3|" "$T/coord.conf" >"$T/bad.conf"
	out=$("$COORDINATORD" --check-config -c "$T/bad.conf" 2>&1); rc=$?
	is "$rc" 1 "$1 is refused by --check-config"
	like "$out" "bad.conf:[0-9]+: '$2': $4" "... with file:line and why ($out)"
}
refused_conf "admin_endpoint = ipc://@x" admin_endpoint "ipc://@x" "an abstract socket .* has no permissions"
refused_conf "admin_endpoint = tcp://127.0.0.1:$MPORT" admin_endpoint "tcp://127.0.0.1:$MPORT" "local only: ipc://"
refused_conf "events_endpoint = tcp://127.0.0.1:$MPORT" events_endpoint "tcp://127.0.0.1:$MPORT" "local only: ipc://"
refused_conf "client_endpoint = ipc://@c" client_endpoint "ipc://@c" "an abstract socket"
refused_conf "agent_endpoint = ipc://@a" agent_endpoint "ipc://@a" "an abstract socket"
sed "s|^client_endpoint = .*|client_endpoint = tcp://127.0.0.1:$MPORT|" "$T/coord.conf" >"$T/tcp.conf"
echo "secret_key = $T/none.key" >>"$T/tcp.conf"
"$COORDINATORD" --check-config -c "$T/tcp.conf" >/dev/null 2>&1; ok $? "client_endpoint on tcp:// (with a CURVE key) is still accepted"

# --- a running coordinator ---------------------------------------------------------------
# systemd's soft default, below the hard limit: the daemon takes the hard one
hard=$(ulimit -Hn)
[ "$hard" != unlimited ] && [ "$hard" -gt 1024 ] && ulimit -Sn 1024
dtx_start_coord || bail "coordinatord did not start"
if is_root; then
	is "$(ps -o user= -p "$COORD_PID")" "$DTX_TEST_USER" "the tests' coordinatord runs as $DTX_TEST_USER, not root"
else
	skip "as root only: the daemon's user"
fi
limits=$(awk '/^Max open files/ { print $4, $5 }' "/proc/$COORD_PID/limits")
is "${limits% *}" "${limits#* }" "the descriptor soft limit is the hard one ($limits; the shell's soft one: $(ulimit -Sn))"
like "$(grep 'descriptor limit' "$T/coord.log")" "descriptor limit ${limits#* }" "... said at start"

# /metrics with 64 idle TCP connections held open to it
URL=http://127.0.0.1:$MPORT/metrics
waiting "the metrics endpoint"
wait_for 10 curl -sf --max-time 2 -o /dev/null "$URL"; ok $? "/metrics answers"
fds=()
for i in $(seq 64); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$MPORT" && fds+=("$fd")
done
is "${#fds[@]}" 64 "64 idle connections are open to the metrics port"
t0=$(now_ms)
code=$(curl -s --max-time 3 -o /dev/null -w '%{http_code}' "$URL")
is "$code" 200 "... and /metrics still answers ($(($(now_ms) - t0)) ms)"
for fd in "${fds[@]}"; do exec {fd}>&-; done

# 20,000 malformed frames (not msgpack) to the client endpoint
size0=$(stat -c %s "$T/coord.log")
lines0=$(grep -c 'client frame refused' "$T/coord.log")
waiting "20000 malformed frames answered"
out=$(timeout -k 5 60 "$RAWFRAME" --count 20000 "$DTX_CLIENT" c1c1c1)
like "$out" "ERROR" "20000 malformed frames are answered ($(echo $out))"
sleep 1.2 # the limit lets a line through again
"$RAWFRAME" "$DTX_CLIENT" c1c1c1 >/dev/null
wait_for 5 grep -q 'similar lines suppressed' "$T/coord.log"
ok $? "a line says how many similar lines were suppressed"
lines=$(($(grep -c 'client frame refused' "$T/coord.log") - lines0))
ok "$([ "$lines" -ge 10 ] && [ "$lines" -le 100 ]; echo $?)" "... and the log got $lines 'frame refused' lines for 20001 frames (10 to 100 wanted)"
suppressed=$(grep -o '([0-9]* similar lines suppressed)' "$T/coord.log" | tr -dc '0-9\n' | awk '{ s += $1 } END { print s + 0 }')
is "$((lines + suppressed))" 20001 "... which with the $suppressed suppressed make every frame"
grown=$(($(stat -c %s "$T/coord.log") - size0))
ok "$([ "$grown" -lt 65536 ]; echo $?)" "... in $grown bytes of log"
"$DTXCTL" --wait 2000 status >/dev/null; ok $? "the coordinator still answers"
done_testing
