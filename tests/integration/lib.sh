# lib.sh — the integration harness, sourced by every tests/integration/*.sh
# and by scripts/demo.sh.
#
# dtx_start_pg: a throwaway PostgreSQL cluster in a temporary folder (Unix
#   socket only, max_prepared_transactions set), run as an unprivileged user
#   when we are root, with the databases shop, bank and stock of the demo.
# dtx_start_coord / dtx_start_agent NAME: the real daemons, in background.
# dtx_cleanup (trap EXIT): stops everything and removes the folder.
# TAP: ok, is, like, done_testing.

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

T=$(mktemp -d /tmp/dtx-it.XXXXXX)
chmod 755 "$T"
PGPORT=$((20000 + RANDOM % 20000))
PGSOCK=$T/sock
COORD_PID=
declare -A AGENT_PID=()
ALL_PIDS=()
export DTX_ADMIN=ipc://$T/admin.sock DTX_CLIENT=ipc://$T/client.sock

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
	PGOPTIONS='-c client_min_messages=warning' "$PGBIN/psql" -X -h "$PGSOCK" -p "$PGPORT" -U postgres -d "$1" -Atq -v ON_ERROR_STOP=1 -c "$2"
}

dtx_start_pg() {
	mkdir -p "$PGSOCK"
	[ "$(id -u)" -eq 0 ] && chown postgres "$T" "$PGSOCK"
	as_pg "$PGBIN/initdb" -D "$T/pg" -A trust -U postgres --no-sync >"$T/initdb.log" 2>&1 ||
		{ echo "Bail out! initdb failed: $(tail -3 "$T/initdb.log")"; exit 1; }
	as_pg "$PGBIN/pg_ctl" -D "$T/pg" -l "$T/pg.log" -w -o \
		"-p $PGPORT -k $PGSOCK -c listen_addresses='' -c max_prepared_transactions=${PG_MAX_PREPARED:-64} -c max_connections=${PG_MAX_CONNECTIONS:-100}" \
		start >/dev/null || { echo "Bail out! PostgreSQL did not start: $(tail -5 "$T/pg.log")"; exit 1; }
	for db in shop bank stock; do q postgres "CREATE DATABASE $db" >/dev/null; done
	q shop "CREATE TABLE orders (ref text PRIMARY KEY, customer text NOT NULL, item text NOT NULL,
		qty int NOT NULL CHECK (qty > 0), total int NOT NULL)"
	q bank "CREATE TABLE wallets (customer text PRIMARY KEY, balance int NOT NULL CHECK (balance >= 0));
		INSERT INTO wallets VALUES ('alice', 100), ('bob', 20)"
	q stock "CREATE TABLE items (item text PRIMARY KEY, price int NOT NULL, qty int NOT NULL CHECK (qty >= 0));
		INSERT INTO items VALUES ('widget', 10, 5), ('gadget', 50, 1)"
}

pg_stop_fast() { as_pg "$PGBIN/pg_ctl" -D "$T/pg" -m fast stop >/dev/null 2>&1; }
pg_stop_immediate() { as_pg "$PGBIN/pg_ctl" -D "$T/pg" -m immediate stop >/dev/null 2>&1; }
pg_start_again() { # pg_start_again [MAX_PREPARED_TRANSACTIONS]
	as_pg "$PGBIN/pg_ctl" -D "$T/pg" -l "$T/pg.log" -w -o \
		"-p $PGPORT -k $PGSOCK -c listen_addresses='' -c max_prepared_transactions=${1:-64}" start >/dev/null
}

# The prepared transactions dtx left in any database of the cluster.
prepared_count() { q postgres "SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'dtx:%'"; }

# wait_for SECONDS COMMAND...: until COMMAND succeeds; 1 on time-out.
wait_for() {
	local limit=$(($1 * 10)) i=0
	shift
	while ! "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -ge $limit ] && return 1
		sleep 0.1
	done
}

no_prepared_left() { [ "$(prepared_count)" = 0 ]; }

# --- dtx processes ----------------------------------------------------------
write_coord_conf() {
	cat >"$T/coord.conf" <<EOF
[coordinator]
id = c1
log_dir = $T/log
client_endpoint = ipc://$T/client.sock
agent_endpoint = ipc://$T/agent.sock
admin_endpoint = ipc://$T/admin.sock
events_endpoint = ipc://$T/events.sock
participants = ${DTX_TEST_PARTICIPANTS:-shop, bank, stock}
default_timeout_ms = ${DTX_TEST_TIMEOUT_MS:-5000}
heartbeat_ms = ${DTX_TEST_COORD_HEARTBEAT_MS:-200}
stuck_after_ms = 1000
lazy_flush_ms = ${DTX_TEST_LAZY_FLUSH_MS:-5}
retention_s = ${DTX_TEST_RETENTION_S:-3600}
log_level = ${DTX_TEST_LOG_LEVEL:-info}
EOF
}

# dtx_start_coord [ENV=VALUE...]: start coordinatord, wait until it answers.
dtx_start_coord() {
	[ -f "$T/coord.conf" ] || write_coord_conf
	# Creating the log is an explicit act: done once, before the first start.
	if [ ! -e "$T/log/data.mdb" ] && [ -z "${DTX_TEST_NO_CREATE_LOG:-}" ]; then
		"$COORDINATORD" -c "$T/coord.conf" --create-log >>"$T/coord.log" 2>&1 ||
			{ echo "# coordinatord --create-log failed"; tail -3 "$T/coord.log" | sed 's/^/# /'; return 1; }
	fi
	env "$@" "$COORDINATORD" -c "$T/coord.conf" 2>>"$T/coord.log" &
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
coordinator = ipc://$T/agent.sock
conninfo = host=$PGSOCK port=$PGPORT dbname=$name user=postgres
pool_size = ${DTX_TEST_POOL_SIZE:-4}
heartbeat_ms = 200
lock_timeout_ms = ${DTX_TEST_LOCK_TIMEOUT_MS:-1000}
marker_prune_interval_s = ${DTX_TEST_MARKER_PRUNE_S:-600}
log_level = ${DTX_TEST_LOG_LEVEL:-info}
EOF
	env "$@" "$PGAGENT" -c "$T/agent-$name.conf" 2>>"$T/agent-$name.log" &
	AGENT_PID[$name]=$!
	ALL_PIDS+=("$!")
}

participant_up() { "$DTXCTL" --wait 1000 status | grep -q "participant $1 up"; }

# How often agent NAME has registered with the coordinator so far.
registrations() { grep -cE "participant $1 (re)?connected" "$T/coord.log"; }
# wait_registered NAME COUNT: until the coordinator saw more than COUNT.
wait_registered() { wait_for 10 sh -c "[ \$(grep -cE 'participant $1 (re)?connected' '$T/coord.log') -gt $2 ]"; }

# dtx_start_all: PostgreSQL, coordinatord and the three agents, all ready.
dtx_start_all() {
	dtx_start_pg
	dtx_start_coord || exit 1
	for a in shop bank stock; do dtx_start_agent $a; done
	for a in shop bank stock; do
		wait_for 10 participant_up $a || { echo "Bail out! agent $a did not register"; exit 1; }
	done
}

# dtx_start_bench ACCOUNTS BALANCE: dtxbench's set-up (the caller sets
# DTX_TEST_PARTICIPANTS to "bank, stock, null1, null2"): PostgreSQL with
# bench_accounts 1..ACCOUNTS holding BALANCE in bank and stock,
# coordinatord, agents bank and stock, null agents null1 and null2, all
# registered.
dtx_start_bench() {
	dtx_start_pg
	for db in bank stock; do
		q $db "CREATE TABLE bench_accounts (id int PRIMARY KEY, balance bigint NOT NULL);
			INSERT INTO bench_accounts SELECT i, $2 FROM generate_series(1, $1) i"
	done
	dtx_start_coord || exit 1
	for a in bank stock; do dtx_start_agent $a; done
	for a in null1 null2; do
		"$top_builddir/tools/dtx-nullagent" $a "ipc://$T/agent.sock" 200 2>>"$T/agent-$a.log" &
		ALL_PIDS+=("$!")
	done
	for a in bank stock null1 null2; do
		wait_for 10 participant_up $a || { echo "Bail out! participant $a did not register"; exit 1; }
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

# kill_wait PID [SIGNAL]
kill_wait() { kill "-${2:-TERM}" "$1" 2>/dev/null; wait "$1" 2>/dev/null; true; }

dtx_cleanup() {
	local rc=$?
	for p in "${ALL_PIDS[@]}"; do kill -CONT "$p" 2>/dev/null; kill_wait "$p"; done
	[ -d "$T/pg" ] && pg_stop_immediate
	if [ "$rc" -ne 0 ] || [ -n "${DTX_KEEP:-}" ]; then
		for f in "$T"/*.log; do
			[ -f "$f" ] || continue
			echo "# --- last lines of $(basename "$f")"
			tail -15 "$f" | sed 's/^/# /'
		done
	fi
	[ -n "${DTX_KEEP:-}" ] && echo "# kept $T" || rm -rf "$T"
}
trap dtx_cleanup EXIT
