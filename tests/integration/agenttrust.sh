#!/usr/bin/env bash
# An agent acts only for its own coordinator. A peer posing as the
# coordinator (tests/tools/dtx-roguecoord: a ROUTER on the agent's
# endpoint that answers HELLO with WELCOME) cannot make the agent commit
# or roll back a prepared transaction that is not dtx's ('app-xa-42') or
# is another coordinator's, nor run SQL under a GID that is not a dtx GID
# of that coordinator; the in-doubt report names only that coordinator's
# GIDs. With coordinator_id set, a WELCOME of another id is refused and
# nothing it sends runs. Over tcp:// with CURVE keys, a server without
# the coordinator's secret key never even sees a HELLO; a tcp://
# coordinator without keys is refused unless insecure = true.
. "$(dirname "$0")/lib.sh"
ROGUE=$top_builddir/tests/tools/dtx-roguecoord
dtx_start_pg

# The agent runs as postgres (a superuser, who may finish any prepared
# transaction): only the agent's own check keeps it off the others'.
q shop "CREATE TABLE t (a int PRIMARY KEY)" >/dev/null
prep() { q shop "BEGIN; INSERT INTO t VALUES ($2); PREPARE TRANSACTION '$1'" >/dev/null; }
prep app-xa-42 42           # the application's own XA transaction
prep dtx:c2:1:1:0 43        # a branch of coordinator c2
prep dtx:c1:01:1:0 44       # looks like c1's, is not canonical
prep dtx:c1:1:9:0 45        # a branch of c1
prepared() { q postgres "SELECT gid FROM pg_prepared_xacts ORDER BY gid" | tr '\n' ' '; }

# agent_conf NAME ENDPOINT [EXTRA CONFIG LINE...]
agent_conf() {
	local name=$1 endpoint=$2
	shift 2
	{
		cat <<EOF
[agent]
name = $name
coordinator = $endpoint
conninfo = host=$PGSOCK port=$PGPORT dbname=shop user=postgres
pool_size = 3
heartbeat_ms = 200
log_level = info
EOF
		for l in "$@"; do echo "$l"; done
	} >"$T/agent-$name.conf"
}
start_agent() { # start_agent NAME: with agent_conf's file
	"${AS_DAEMON[@]}" "$PGAGENT" -c "$T/agent-$1.conf" >>"$T/agent-$1.log" 2>&1 &
	AGENT_PID[$1]=$!
	ALL_PIDS+=("$!")
}
# rogue OUT ARGS...: dtx-roguecoord serve ARGS in the background, its
# lines into $T/OUT; ROGUE_PID
rogue() {
	local out=$1
	shift
	"${AS_DAEMON[@]}" "$ROGUE" serve "$@" >"$T/$out" 2>&1 &
	ROGUE_PID=$!
	ALL_PIDS+=("$!")
}

# --- 1. a rogue coordinator: the agent learns its id (c1) -------------------
rogue rogue1.out "ipc://$T/rogue.sock" --id c1 --for 4000 \
	decide app-xa-42 1 \
	decide dtx:c2:1:1:0 1 \
	decide dtx:c1:01:1:0 0 \
	prepare app-xa-43 "INSERT INTO t VALUES (100)" \
	prepare dtx:c2:1:2:0 "INSERT INTO t VALUES (101)" \
	prepare dtx:c1:1:10:0 "INSERT INTO t VALUES (102)" \
	decide dtx:c1:1:9:0 0 \
	decide dtx:c1:1:10:0 0
agent_conf shop "ipc://$T/rogue.sock"
start_agent shop
wait_exit 20 "$ROGUE_PID"
out=$(cat "$T/rogue1.out")
like "$out" "HELLO shop" "the agent says HELLO to whoever binds its endpoint"
is "$(grep '^INDOUBT' <<<"$out")" "INDOUBT dtx:c1:1:9:0" \
	"its in-doubt report names only c1's canonical GIDs (not app-xa-42, dtx:c2:..., dtx:c1:01:...)"
like "$out" "ERROR -1 'app-xa-42' is not a dtx GID" "DECIDE commit of app-xa-42 is refused with ERROR DTX_EINVAL"
like "$out" "ERROR -1 'dtx:c2:1:1:0' is a GID of coordinator c2, not of c1" "... so is one of c2's GIDs"
like "$out" "ERROR -1 'dtx:c1:01:1:0' is not a dtx GID" "... and a look-alike of c1's"
like "$out" "VOTE app-xa-43 0 'app-xa-43' is not a dtx GID" "PREPARE under a GID that is not dtx's votes no"
like "$out" "VOTE dtx:c2:1:2:0 0 'dtx:c2:1:2:0' is a GID of coordinator c2" "... and under c2's"
like "$out" "VOTE dtx:c1:1:10:0 1" "a PREPARE under a c1 GID runs (the rogue is heard at all)"
like "$out" "ACK dtx:c1:1:10:0 0" "... and is rolled back by its DECIDE"
like "$out" "ACK dtx:c1:1:9:0 0" "a c1 branch is rolled back by its DECIDE"
is "$(prepared)" "app-xa-42 dtx:c1:01:1:0 dtx:c2:1:1:0 " \
	"app-xa-42, c2's branch and the look-alike are still prepared; c1's are not"
is "$(q shop "SELECT count(*) FROM t")" 0 "nothing was committed into t: no foreign transaction, no rogue SQL"
like "$(tr '\n' ' ' <"$T/agent-shop.log")" \
	"DECIDE refused, nothing run: 'app-xa-42' is not a dtx GID.*PREPARE refused, nothing run: 'app-xa-43'" \
	"the agent logs each refusal"
kill_wait "${AGENT_PID[shop]}"
# the foreign transaction is intact: its owner can still finish it
q shop "COMMIT PREPARED 'app-xa-42'" >/dev/null
is "$(q shop "SELECT a FROM t")" 42 "app-xa-42 is untouched: its owner commits it, its row is there"

# --- 2. coordinator_id = c1: a WELCOME of 'evil' is refused -------------------
prep dtx:c1:1:11:0 46
: >"$T/agent-shop.log"
rogue rogue2.out "ipc://$T/rogue.sock" --id evil --for 3000 \
	decide dtx:c1:1:11:0 1 \
	prepare dtx:c1:1:12:0 "INSERT INTO t VALUES (103)" \
	decide app-xa-nope 1
agent_conf shop "ipc://$T/rogue.sock" "coordinator_id = c1"
start_agent shop
wait_exit 20 "$ROGUE_PID"
out=$(cat "$T/rogue2.out")
like "$out" "HELLO shop" "with coordinator_id = c1 the agent says HELLO"
ok $(grep -q INDOUBT <<<"$out"; [ $? -ne 0 ]; echo $?) "... but after a WELCOME of 'evil' it does not register: no INDOUBT"
like "$(cat "$T/agent-shop.log")" "WELCOME from coordinator evil refused: this agent serves coordinator c1 \(coordinator_id\); not registered" \
	"... and logs the refusal"
is "$(grep -c 'WELCOME from coordinator evil refused' "$T/agent-shop.log")" 1 "... once, though it says HELLO again and again"
like "$out" "ERROR -1 the coordinator here says it is evil, not c1" "a DECIDE from it, even of a c1 GID, is refused"
like "$out" "VOTE dtx:c1:1:12:0 0 the coordinator here says it is evil" "... a PREPARE votes no"
is "$(q shop "SELECT count(*) FROM t")" 1 "... nothing it sent ran"
like "$(prepared)" "dtx:c1:1:11:0" "... dtx:c1:1:11:0 is still prepared"
kill_wait "${AGENT_PID[shop]}"
q shop "ROLLBACK PREPARED 'dtx:c1:1:11:0'" >/dev/null

# --- 3. tcp:// and CURVE ------------------------------------------------------
mkdir -p "$T/keys" && chmod 700 "$T/keys"
for k in coordinator rogue shop; do "$ROGUE" keygen "$T/keys" $k || bail "keygen $k"; done
# the agent and the rogue run as the daemons' user: a secret key file must be
# owned by its reader
[ "$(id -u)" -eq 0 ] && chown -R "$DTX_TEST_USER" "$T/keys"
PORT=$((20000 + RANDOM % 20000))
TCP=tcp://127.0.0.1:$PORT

agent_conf shop "$TCP"
out=$("$PGAGENT" -c "$T/agent-shop.conf" --check-config 2>&1); rc=$?
is "$rc" 1 "a tcp:// coordinator without CURVE keys is refused"
like "$out" "a tcp:// coordinator needs coordinator_key and secret_key: without CURVE anyone on the network could pose as the coordinator" \
	"... saying why"
agent_conf shop "$TCP" "secret_key = $T/keys/shop.key"
out=$("$PGAGENT" -c "$T/agent-shop.conf" --check-config 2>&1); rc=$?
is "$rc" 1 "one CURVE key without the other is refused"
like "$out" "coordinator_key and secret_key go together" "... saying so"
agent_conf shop "$TCP" "insecure = true"
: >"$T/agent-shop.log"
start_agent shop
wait_ok 10 "with insecure = true the agent starts, warning loudly" grep -q "INSECURE: coordinator $TCP is reached without CURVE" "$T/agent-shop.log"
kill_wait "${AGENT_PID[shop]}"

agent_conf shop "$TCP" "coordinator_key = $T/keys/coordinator.pub" "secret_key = $T/keys/shop.key"
: >"$T/agent-shop.log"
start_agent shop
rogue rogue3.out "$TCP" --curve "$T/keys/rogue.key" --for 2500 decide app-xa-x 1
wait_exit 20 "$ROGUE_PID"
is "$(grep -v BOUND "$T/rogue3.out")" "no HELLO" "a CURVE server with another key sees no HELLO from the agent"
rogue rogue4.out "$TCP" --for 2500
wait_exit 20 "$ROGUE_PID"
is "$(grep -v BOUND "$T/rogue4.out")" "no HELLO" "a server without CURVE sees no HELLO either"
# (the agent connects anew every 2 s until welcomed: libzmq never does
# after the server without CURVE refused its handshake)
rogue rogue5.out "$TCP" --curve "$T/keys/coordinator.key" --for 5000
wait_exit 20 "$ROGUE_PID"
like "$(cat "$T/rogue5.out")" "HELLO shop" "the server holding the coordinator's key hears HELLO (the agent was trying)"
kill_wait "${AGENT_PID[shop]}"
agent_conf shop "$TCP" "coordinator_key = $T/keys/coordinator.pub" "secret_key = $T/keys/nothere.key"
out=$(timeout 20 "${AS_DAEMON[@]}" "$PGAGENT" -c "$T/agent-shop.conf" 2>&1); rc=$?
is "$rc" 1 "a secret key file that cannot be read stops the agent"
like "$out" "cannot start: $T/keys/nothere.key" "... naming it"

done_testing
