# lib.sh — the integration harness, sourced by every tests/integration/*.sh
# and by scripts/demo.sh.
#
# dtx_start_pg: a throwaway PostgreSQL cluster in a temporary folder (Unix
#   socket only, max_prepared_transactions set), run as an unprivileged user
#   when we are root, with the databases shop, bank and stock of the demo.
# dtx_start_coord / dtx_start_agent NAME: the real daemons, in background.
#   They refuse to run as root: when we are root they run as DTX_TEST_USER
#   (postgres, as PostgreSQL does) through as_daemon, and $T is theirs.
# dtx_cleanup (trap EXIT): stops everything and removes the folder.
# TAP: ok, is, like, done_testing; bail.
#
# Time bounds: every file is bounded by a watchdog (DTX_TEST_TIMEOUT
# seconds, default 300; 0: none) that prints "Bail out! FILE exceeded N s;
# waiting for: WHAT", ends everything the file started and lets dtx_cleanup
# run. Each wait says what it waits for (wait_for, waiting) and each command
# that could block on a broken PostgreSQL runs under timeout(1)
# (DTX_CMD_TIMEOUT seconds, default 60). dtxctl bounds itself (--wait).
# The watchdog is a child of the file's shell: wait for given PIDs, never
# a bare wait.

set -u

: "${top_builddir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
COORDINATORD=$top_builddir/coordinatord/coordinatord
PGAGENT=$top_builddir/participants/dtx-pgagent
DTXCTL=$top_builddir/tools/dtxctl
RAWFRAME=$top_builddir/tests/tools/dtx-rawframe

PGBIN=${PGBIN:-}
if [ -z "$PGBIN" ]; then
	for v in 17 16 15 14 13; do
		if [ -x /usr/lib/postgresql/$v/bin/initdb ]; then PGBIN=/usr/lib/postgresql/$v/bin; break; fi
	done
fi
[ -n "$PGBIN" ] || { echo "Bail out! no PostgreSQL server binaries (apt-get install postgresql-15)"; exit 1; }

# The daemons' user when we are root (they refuse root): they own $T,
# where they make their log and sockets; dtxctl and the test tools stay
# root. as_daemon CMD...: run CMD as that user, in the foreground. In the
# background write "${AS_DAEMON[@]}" CMD... &: setpriv execs, so $! is
# CMD's own pid (a function would put a subshell between).
DTX_TEST_USER=${DTX_TEST_USER:-postgres}
AS_DAEMON=()
[ "$(id -u)" -eq 0 ] && AS_DAEMON=(setpriv --reuid="$DTX_TEST_USER" --regid="$DTX_TEST_USER" --clear-groups --)
as_daemon() { "${AS_DAEMON[@]}" "$@"; }

T=$(mktemp -d /tmp/dtx-it.XXXXXX)
chmod 755 "$T"
[ "$(id -u)" -eq 0 ] && chown "$DTX_TEST_USER:" "$T"
PGPORT=$((20000 + RANDOM % 20000))
PGSOCK=$T/sock
COORD_PID=
declare -A AGENT_PID=()
ALL_PIDS=()
export DTX_ADMIN=ipc://$T/admin.sock DTX_CLIENT=ipc://$T/client.sock
DTX_TEST_TIMEOUT=${DTX_TEST_TIMEOUT:-300}
DTX_CMD_TIMEOUT=${DTX_CMD_TIMEOUT:-60}
DTX_TEST_FILE=${DTX_TEST_FILE:-${0#./}}

# --- time bounds ------------------------------------------------------------
# waiting WHAT...: what the file waits for now, for the watchdog to name.
waiting() { printf '%s\n' "$*" >"$T/waiting"; }
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
# gone PID: PID has exited (a zombie not reaped yet counts as exited).
gone() {
	local st
	read -r st 2>/dev/null </proc/"$1"/stat || return 0
	st=${st##*) }
	[ "${st%% *}" = Z ]
}

# descendants PID [SKIP]: the processes below PID, deepest first, without
# SKIP and what is below it.
descendants() {
	local c
	for c in $(pgrep -P "$1"); do
		[ "$c" = "${2:-}" ] && continue
		descendants "$c" "${2:-}"
		echo "$c"
	done
}

# The watchdog: a child of this shell that, after DTX_TEST_TIMEOUT seconds,
# bails out naming the wait, ends every process below this shell (so the
# command it is blocked in returns), then this shell, whose EXIT trap runs
# dtx_cleanup; what still stands after DTX_KILL_GRACE more seconds is killed.
WATCHDOG_PID=
dtx_watchdog_start() {
	[ "$DTX_TEST_TIMEOUT" -gt 0 ] || return 0
	local main=$$
	(
		s=
		trap '[ -n "$s" ] && kill "$s" 2>/dev/null; exit 0' TERM
		sleep "$DTX_TEST_TIMEOUT" </dev/null >/dev/null 2>&1 &
		s=$!
		wait "$s" || exit 0
		s=
		me=$BASHPID
		: >"$T/timed-out"
		echo "Bail out! $DTX_TEST_FILE exceeded $DTX_TEST_TIMEOUT s; waiting for: $(cat "$T/waiting" 2>/dev/null || echo "(not said)")"
		kill -TERM $(descendants "$main" "$me") 2>/dev/null
		kill -TERM "$main" 2>/dev/null
		for _ in $(seq 1 $((${DTX_KILL_GRACE:-10} * 20))); do
			kill -0 "$main" 2>/dev/null || exit 0
			sleep 0.05
		done
		echo "# dtx_cleanup did not finish in ${DTX_KILL_GRACE:-10} s: killing what is left"
		kill -KILL $(descendants "$main" "$me") "$main" 2>/dev/null
		pg_kill_postmaster
		rm -rf "$T"
	) </dev/null &
	WATCHDOG_PID=$!
}

bail() { echo "Bail out! $*"; exit 1; }

# --- TAP --------------------------------------------------------------------
TAP_N=0
TAP_FAILED=0
ok() { # ok CONDITION-EXIT-CODE NAME
	TAP_N=$((TAP_N + 1))
	if [ "$1" -eq 0 ]; then echo "ok $TAP_N - $2"; else echo "not ok $TAP_N - $2"; TAP_FAILED=$((TAP_FAILED + 1)); fi
}
is() { # is GOT WANT NAME
	if [ "$1" = "$2" ]; then ok 0 "$3"; else ok 1 "$3"; echo "#   got '$1', want '$2'"; fi
}
like() { # like TEXT PATTERN NAME (grep -E)
	if printf '%s' "$1" | grep -qE -- "$2"; then ok 0 "$3"; else ok 1 "$3"; echo "#   '$1' does not match /$2/"; fi
}
done_testing() {
	echo "1..$TAP_N"
	[ "$TAP_FAILED" -eq 0 ]
}

# --- PostgreSQL -------------------------------------------------------------
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

q() { # q DB SQL: one value per line, no headers
	PGOPTIONS='-c client_min_messages=warning' timeout -k 5 "$DTX_CMD_TIMEOUT" "$PGBIN/psql" -X -h "$PGSOCK" -p "$PGPORT" -U postgres -d "$1" -Atq -v ON_ERROR_STOP=1 -c "$2"
}

dtx_start_pg() {
	mkdir -p "$PGSOCK"
	[ "$(id -u)" -eq 0 ] && chown postgres "$T" "$PGSOCK"
	waiting "initdb"
	as_pg timeout -k 5 "$DTX_CMD_TIMEOUT" "$PGBIN/initdb" -D "$T/pg" -A trust -U postgres --no-sync >"$T/initdb.log" 2>&1 ||
		{ echo "Bail out! initdb failed: $(tail -3 "$T/initdb.log")"; exit 1; }
	waiting "PostgreSQL to start (pg_ctl start)"
	as_pg timeout -k 5 "$DTX_CMD_TIMEOUT" "$PGBIN/pg_ctl" -D "$T/pg" -l "$T/pg.log" -w -o \
		"-p $PGPORT -k $PGSOCK -c listen_addresses='' -c max_prepared_transactions=${PG_MAX_PREPARED:-64} -c max_connections=${PG_MAX_CONNECTIONS:-100}" \
		start >/dev/null || { echo "Bail out! PostgreSQL did not start: $(tail -5 "$T/pg.log")"; exit 1; }
	waiting "PostgreSQL: the demo's databases"
	for db in shop bank stock; do q postgres "CREATE DATABASE $db" >/dev/null || bail "CREATE DATABASE $db failed"; done
	q shop "CREATE TABLE orders (ref text PRIMARY KEY, customer text NOT NULL, item text NOT NULL,
		qty int NOT NULL CHECK (qty > 0), total int NOT NULL)"
	q bank "CREATE TABLE wallets (customer text PRIMARY KEY, balance int NOT NULL CHECK (balance >= 0));
		INSERT INTO wallets VALUES ('alice', 100), ('bob', 20)"
	q stock "CREATE TABLE items (item text PRIMARY KEY, price int NOT NULL, qty int NOT NULL CHECK (qty >= 0));
		INSERT INTO items VALUES ('widget', 10, 5), ('gadget', 50, 1)"
}

pg_ctl_bounded() { waiting "pg_ctl $*"; as_pg timeout -k 5 "$DTX_CMD_TIMEOUT" "$PGBIN/pg_ctl" -D "$T/pg" "$@"; }
pg_stop_fast() { pg_ctl_bounded -m fast stop >/dev/null 2>&1; }
pg_stop_immediate() { pg_ctl_bounded -m immediate stop >/dev/null 2>&1; }
# The postmaster and its backends, killed: when pg_ctl cannot stop them.
pg_kill_postmaster() {
	local pm
	pm=$(head -1 "$T/pg/postmaster.pid" 2>/dev/null) && [ -n "$pm" ] || return 0
	echo "# PostgreSQL did not stop: killing postmaster $pm and its backends"
	kill -KILL "$pm" $(pgrep -P "$pm") 2>/dev/null
	true
}
pg_start_again() { # pg_start_again [MAX_PREPARED_TRANSACTIONS]
	pg_ctl_bounded -l "$T/pg.log" -w -o \
		"-p $PGPORT -k $PGSOCK -c listen_addresses='' -c max_prepared_transactions=${1:-64}" start >/dev/null
}

# The prepared transactions dtx left in any database of the cluster.
prepared_count() { q postgres "SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'dtx:%'"; }

# wait_for SECONDS COMMAND...: until COMMAND succeeds; 1 on time-out, with
# a comment naming the command. Its caller checks it: wait_ok and
# wait_or_bail do.
wait_for() {
	local secs=$1 t0
	shift
	waiting "$*"
	t0=$(now_ms)
	# a program (not a function) is bounded one try at a time, too
	local bound=()
	[ "$(type -t "$1")" = file ] && bound=(timeout -k 2 "$secs")
	while ! "${bound[@]}" "$@" >/dev/null 2>&1; do
		if [ $(($(now_ms) - t0)) -ge $((secs * 1000)) ]; then
			echo "# timed out after $secs s waiting for: $*"
			return 1
		fi
		sleep 0.1
	done
}
# wait_ok SECONDS NAME COMMAND...: wait_for, as a test named NAME.
wait_ok() { local secs=$1 name=$2; shift 2; wait_for "$secs" "$@"; ok $? "$name"; }
# wait_or_bail SECONDS COMMAND...: wait_for; on time-out nothing after it
# can mean anything: Bail out naming the wait.
wait_or_bail() { wait_for "$@" || bail "timed out after $1 s waiting for: ${*:2}"; }
# wait_exit SECONDS PID: until child PID exits; returns its exit code, or
# 255 (and a comment) if it still runs after SECONDS.
wait_exit() {
	local t0
	waiting "process $2 to exit"
	t0=$(now_ms)
	while ! gone "$2"; do
		if [ $(($(now_ms) - t0)) -ge $(($1 * 1000)) ]; then
			echo "# timed out after $1 s waiting for process $2 to exit"
			return 255
		fi
		sleep 0.1
	done
	wait "$2"
}

no_prepared_left() { [ "$(prepared_count)" = 0 ]; }

# --- dtx processes ----------------------------------------------------------
write_coord_conf() {
	# [client test] first: a test may append keys to [coordinator]
	cat >"$T/coord.conf" <<EOF
# The tests' own processes (dtxctl, banktest, dtxbench) on the client
# endpoint: any participant, SQL text.
[client test]
user = $(id -u)
participants = *
sql = true
max_inflight = 1000000

[coordinator]
id = c1
log_dir = $T/log
client_endpoint = ${DTX_TEST_CLIENT_EP:-ipc://$T/client.sock}
agent_endpoint = ${DTX_TEST_AGENT_EP:-ipc://$T/agent.sock}
admin_endpoint = ipc://$T/admin.sock
events_endpoint = ipc://$T/events.sock
participants = ${DTX_TEST_PARTICIPANTS:-shop, bank, stock}
default_timeout_ms = ${DTX_TEST_TIMEOUT_MS:-5000}
heartbeat_ms = ${DTX_TEST_COORD_HEARTBEAT_MS:-200}
stuck_after_ms = 1000
lazy_flush_ms = ${DTX_TEST_LAZY_FLUSH_MS:-5}
retention_s = ${DTX_TEST_RETENTION_S:-3600}
log_level = ${DTX_TEST_COORD_LOG_LEVEL:-${DTX_TEST_LOG_LEVEL:-info}}
${DTX_TEST_COORD_EXTRA:-}
EOF
}

# dtx_start_coord [ENV=VALUE...]: start coordinatord, wait until it answers.
dtx_start_coord() {
	[ -f "$T/coord.conf" ] || write_coord_conf
	# Creating the log is an explicit act: done once, before the first start.
	if [ ! -e "$T/log/data.mdb" ] && [ -z "${DTX_TEST_NO_CREATE_LOG:-}" ]; then
		as_daemon "$COORDINATORD" -c "$T/coord.conf" --create-log >>"$T/coord.log" 2>&1 ||
			{ echo "# coordinatord --create-log failed"; tail -3 "$T/coord.log" | sed 's/^/# /'; return 1; }
	fi
	"${AS_DAEMON[@]}" env "$@" "$COORDINATORD" -c "$T/coord.conf" >>"$T/coord.log" 2>&1 &
	COORD_PID=$!
	ALL_PIDS+=("$COORD_PID")
	wait_for 10 "$DTXCTL" --wait 500 status || { echo "# coordinatord did not answer"; tail -5 "$T/coord.log" | sed 's/^/# /'; return 1; }
}

# dtx_start_agent NAME [ENV=VALUE...]
dtx_start_agent() {
	local name=$1
	shift
	cat >"$T/agent-$name.conf" <<EOF
[agent]
name = $name
coordinator = ${DTX_TEST_AGENT_EP:-ipc://$T/agent.sock}
conninfo = host=$PGSOCK port=$PGPORT dbname=$name user=postgres
pool_size = ${DTX_TEST_POOL_SIZE:-4}
heartbeat_ms = 200
lock_timeout_ms = ${DTX_TEST_LOCK_TIMEOUT_MS:-1000}
marker_prune_interval_s = ${DTX_TEST_MARKER_PRUNE_S:-600}
log_level = ${DTX_TEST_LOG_LEVEL:-info}
EOF
	[ -n "${DTX_TEST_AGENT_EXTRA:-}" ] && printf '%s\n' "$DTX_TEST_AGENT_EXTRA" >>"$T/agent-$name.conf"
	# Named statements: DTX_TEST_STATEMENTS holds NAME.statements
	[ -n "${DTX_TEST_STATEMENTS:-}" ] && [ -f "$DTX_TEST_STATEMENTS/$name.statements" ] &&
		printf 'statements = %s\n' "$DTX_TEST_STATEMENTS/$name.statements" >>"$T/agent-$name.conf"
	# CURVE (a tcp:// agent endpoint): DTX_TEST_KEYS holds coordinator.pub
	# and NAME.key
	[ -n "${DTX_TEST_KEYS:-}" ] &&
		printf 'coordinator_key = %s\nsecret_key = %s\n' "$DTX_TEST_KEYS/coordinator.pub" \
			"$DTX_TEST_KEYS/$name.key" >>"$T/agent-$name.conf"
	"${AS_DAEMON[@]}" env "$@" "$PGAGENT" -c "$T/agent-$name.conf" >>"$T/agent-$name.log" 2>&1 &
	AGENT_PID[$name]=$!
	ALL_PIDS+=("$!")
}

# Tests read values from the admin commands' replies as JSON (dtxctl
# --json, through jq): the prose is for an operator, and a test that checks
# it says so.
# ctl_rows KIND [DTXCTL ARGS...]: each row of KIND in the reply, one JSON
# object a line. Like ctl_get and ctl_count, fails (printing nothing) when
# dtxctl does, so that a check does not read "none" from a refusal.
ctl_rows() {
	local kind=$1 out
	shift
	out=$("$DTXCTL" --json "$@") || return
	jq -c --arg k "$kind" '.rows[] | select(.kind == $k)' <<<"$out"
}
# ctl_get KIND ATTR [DTXCTL ARGS...]: ATTR of each row of KIND, one a line
# (a string raw, a list comma-separated, an absent one "null").
ctl_get() {
	local kind=$1 attr=$2 out
	shift 2
	out=$("$DTXCTL" --json "$@") || return
	jq -r --arg k "$kind" --arg a "$attr" \
		'.rows[] | select(.kind == $k) | .[$a] | if type == "array" then join(",") else . end' <<<"$out"
}
# ctl_count KIND [DTXCTL ARGS...]: how many rows of KIND the reply has
# (nothing printed when dtxctl fails: never a count of 0 by mistake).
ctl_count() {
	local kind=$1 out
	shift
	out=$("$DTXCTL" --json "$@") || return
	jq --arg k "$kind" '[.rows[] | select(.kind == $k)] | length' <<<"$out"
}
# show_records GTID KIND ATTR: ATTR of each of GTID's log records of KIND
# (active, preparing, ..., heuristic), as ctl_get prints it.
show_records() {
	"$DTXCTL" --json show "$1" | jq -r --arg s "$2" --arg a "$3" \
		'.rows[] | select(.kind == "record" and .state == $s) | .[$a] | if type == "array" then join(",") else . end'
}
# in_flight [DTXCTL OPTIONS...]: how many transactions are in flight.
in_flight() { ctl_get in_flight count "$@" status; }
none_in_flight() { [ "$(in_flight "$@")" = 0 ]; }
# participant_is NAME: "UP ALLOWED" of participant NAME in status ("true true")
participant_is() {
	ctl_rows participant --wait 1000 status | jq -r --arg p "$1" 'select(.participant == $p) | "\(.up) \(.allowed)"'
}
participant_up() {
	"$DTXCTL" --wait 1000 --json status |
		jq -e --arg p "$1" 'any(.rows[]; .kind == "participant" and .participant == $p and .up)' >/dev/null
}
# query_decided GTID: dtxctl query answers anything but "not decided yet".
query_decided() { "$DTXCTL" query "$1"; [ $? -ne 6 ]; }

# wait_all_up: until shop, bank and stock are registered (after a restart
# of the coordinator); Bail out naming the one that is not.
wait_all_up() {
	local a
	for a in shop bank stock; do wait_or_bail 10 participant_up $a; done
}

# How often agent NAME has registered with the coordinator so far.
registrations() { grep -cE "participant $1 (re)?connected" "$T/coord.log"; }
# wait_registered NAME COUNT: until the coordinator saw more than COUNT.
# Bails out if it does not.
registered_more() { [ "$(registrations "$1")" -gt "$2" ]; }
wait_registered() { wait_or_bail 10 registered_more "$1" "$2"; }

# dtx_start_all: PostgreSQL, coordinatord and the three agents, all ready.
dtx_start_all() {
	dtx_start_pg
	dtx_start_coord || exit 1
	for a in shop bank stock; do dtx_start_agent $a; done
	wait_all_up
}

# dtx_start_bench ACCOUNTS BALANCE: dtxbench's set-up (the caller sets
# DTX_TEST_PARTICIPANTS to "bank, stock, null1, null2"): PostgreSQL with
# bench_accounts 1..ACCOUNTS holding BALANCE in bank and stock,
# coordinatord, agents bank and stock, null agents null1 and null2, all
# registered. DTX_BENCH_DBS (default "bank stock"): the databases, of
# shop, bank and stock, that get bench_accounts and an agent (the caller's
# DTX_TEST_PARTICIPANTS lists them; bench/saga.sh uses all three).
dtx_start_bench() {
	local dbs=${DTX_BENCH_DBS:-bank stock}
	dtx_start_pg
	for db in $dbs; do
		q $db "CREATE TABLE bench_accounts (id int PRIMARY KEY, balance bigint NOT NULL);
			INSERT INTO bench_accounts SELECT i, $2 FROM generate_series(1, $1) i"
	done
	dtx_start_coord || exit 1
	for a in $dbs; do dtx_start_agent $a; done
	for a in null1 null2; do
		"${AS_DAEMON[@]}" "$top_builddir/tools/dtx-nullagent" $a "ipc://$T/agent.sock" 200 >>"$T/agent-$a.log" 2>&1 &
		ALL_PIDS+=("$!")
	done
	for a in $dbs null1 null2; do
		wait_or_bail 10 participant_up $a
	done
}

# place_order REF CUSTOMER ITEM QTY [dtxctl options]: the shop demo's global
# transaction. Prints dtxctl's line; returns its exit code.
place_order() {
	local ref=$1 customer=$2 item=$3 qty=$4 price
	shift 4
	price=$(q stock "SELECT price FROM items WHERE item = '$item'")
	"$DTXCTL" exec "$@" \
		--on shop --sql 'INSERT INTO orders (ref, customer, item, qty, total) VALUES ($1, $2, $3, $4, $5)' \
		--param "$ref" --param "$customer" --param "$item" --param "$qty" --param $((price * qty)) --expect 1 \
		--on bank --sql 'UPDATE wallets SET balance = balance - $2 WHERE customer = $1 AND balance >= $2' \
		--param "$customer" --param $((price * qty)) --expect 1 \
		--on stock --sql 'UPDATE items SET qty = qty - $2 WHERE item = $1 AND qty >= $2' \
		--param "$item" --param "$qty" --expect 1
}

# kill_wait PID [SIGNAL]: signal child PID and reap it; one that still runs
# DTX_KILL_GRACE (10) seconds later is killed.
kill_wait() {
	local t0
	kill "-${2:-TERM}" "$1" 2>/dev/null || { wait "$1" 2>/dev/null; return 0; }
	t0=$(now_ms)
	while ! gone "$1"; do
		if [ $(($(now_ms) - t0)) -ge $((${DTX_KILL_GRACE:-10} * 1000)) ]; then
			echo "# process $1 still ran ${DTX_KILL_GRACE:-10} s after SIG${2:-TERM}: killed"
			kill -KILL "$1" 2>/dev/null
			break
		fi
		sleep 0.05
	done
	wait "$1" 2>/dev/null
	true
}

dtx_cleanup() {
	local rc=$?
	trap '' TERM # the watchdog's last resort is KILL, after DTX_KILL_GRACE
	[ -f "$T/timed-out" ] && rc=1
	for p in "${ALL_PIDS[@]}"; do kill -CONT "$p" 2>/dev/null; kill_wait "$p"; done
	[ -d "$T/pg" ] && { pg_stop_immediate || pg_kill_postmaster; }
	if [ "$rc" -ne 0 ] || [ -n "${DTX_KEEP:-}" ]; then
		for f in "$T"/*.log; do
			[ -f "$f" ] || continue
			echo "# --- last lines of $(basename "$f")"
			tail -15 "$f" | sed 's/^/# /'
		done
	fi
	if [ -n "$WATCHDOG_PID" ] && ! [ -f "$T/timed-out" ]; then
		kill "$WATCHDOG_PID" 2>/dev/null
		wait "$WATCHDOG_PID" 2>/dev/null
	fi
	[ -n "${DTX_KEEP:-}" ] && echo "# kept $T" || rm -rf "$T"
}
trap dtx_cleanup EXIT
# The watchdog's TERM (or anyone's): exit, which runs dtx_cleanup.
trap 'exit 1' TERM
dtx_watchdog_start
