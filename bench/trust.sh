#!/usr/bin/env bash
# bench/trust.sh — what CURVE costs: the same coordinator and agents over
# three transports, measured in one sitting: ipc:// (the default), tcp://
# without CURVE (insecure = true) and tcp:// with CURVE on both the client
# and the agent endpoint. For each, dtxbench runs null mode at 64 clients
# (the coordinator alone) and dtx at 8 clients (two real databases); the
# transports take turns, ROUNDS times, so that the machine's noise falls on
# all of them alike. Prints each figure and the ratios to ipc:// and to
# plain tcp://.
#
#   bench/trust.sh                    # about 2 minutes
#   SECONDS_PER_RUN=10 ROUNDS=3 bench/trust.sh
#
# Build first (scripts/setup.sh).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_builddir=${top_builddir:-$(cd "$here/.." && pwd)}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
ROUNDS=${ROUNDS:-2}
ACCOUNTS=10000

export PG_MAX_CONNECTIONS=200 PG_MAX_PREPARED=100
export DTX_TEST_PARTICIPANTS="bank, stock, null1, null2" DTX_TEST_POOL_SIZE=10
export DTX_TEST_LOG_LEVEL=${DTX_TEST_LOG_LEVEL:-notice} DTX_TEST_TIMEOUT_MS=30000
export DTX_TEST_RETENTION_S=60
. "$top_builddir/tests/integration/lib.sh"
DTXBENCH=$top_builddir/tools/dtxbench
NULLAGENT=$top_builddir/tools/dtx-nullagent

K=$T/keys
mkdir -p "$K"
for k in coordinator bank stock null1 null2 bench; do
	"$DTXCTL" keygen $k --dir "$K" >/dev/null || bail "dtxctl keygen $k failed"
done
[ "$(id -u)" -eq 0 ] && chown "$DTX_TEST_USER" "$K"/{coordinator,bank,stock,null1,null2}.key
CPORT=$((20000 + RANDOM % 20000))
APORT=$((CPORT + 1))

dtx_start_pg
for db in bank stock; do
	q $db "CREATE TABLE bench_accounts (id int PRIMARY KEY, balance bigint NOT NULL);
		INSERT INTO bench_accounts SELECT i, 1000000 FROM generate_series(1, $ACCOUNTS) i"
done

NULL_PIDS=()
# start TRANSPORT: coordinatord and the four agents over ipc, tcp or curve.
start() {
	rm -f "$T/coord.conf"
	unset DTX_TEST_CLIENT_EP DTX_TEST_AGENT_EP DTX_TEST_KEYS DTX_TEST_COORD_EXTRA DTX_TEST_AGENT_EXTRA
	CLIENT=ipc://$T/client.sock AGENT=ipc://$T/agent.sock
	local nullenv=()
	case $1 in
	tcp | curve)
		CLIENT=tcp://127.0.0.1:$CPORT AGENT=tcp://127.0.0.1:$APORT
		export DTX_TEST_CLIENT_EP=$CLIENT DTX_TEST_AGENT_EP=$AGENT
		;;
	esac
	case $1 in
	tcp) export DTX_TEST_COORD_EXTRA="insecure = true" DTX_TEST_AGENT_EXTRA="insecure = true" ;;
	curve)
		export DTX_TEST_KEYS=$K
		DTX_TEST_COORD_EXTRA="secret_key = $K/coordinator.key"
		for a in bank stock null1 null2; do
			DTX_TEST_COORD_EXTRA+=$'\n'"[agent $a]"$'\n'"key = $(cat "$K/$a.pub")"
		done
		DTX_TEST_COORD_EXTRA+=$'\n'"[client bench]"$'\n'"key = $(cat "$K/bench.pub")"
		DTX_TEST_COORD_EXTRA+=$'\n'"participants = *"$'\n'"sql = true"$'\n'"max_inflight = 100000"
		export DTX_TEST_COORD_EXTRA
		;;
	esac
	dtx_start_coord || exit 1
	for a in bank stock; do dtx_start_agent $a; done
	NULL_PIDS=()
	for a in null1 null2; do
		[ "$1" = curve ] && nullenv=(DTX_SERVER_KEY="$K/coordinator.pub" DTX_KEY="$K/$a.key")
		"${AS_DAEMON[@]}" env "${nullenv[@]}" "$NULLAGENT" $a "$AGENT" 200 >>"$T/agent-$a.log" 2>&1 &
		NULL_PIDS+=("$!")
		ALL_PIDS+=("$!")
	done
	for a in bank stock null1 null2; do wait_or_bail 20 participant_up $a; done
}
stop() {
	for p in "${NULL_PIDS[@]}" "${AGENT_PID[bank]}" "${AGENT_PID[stock]}" "$COORD_PID"; do kill_wait "$p"; done
}
# run TRANSPORT MODE CLIENTS: throughput, transactions a second
run() {
	local keys=()
	[ "$1" = curve ] && keys=(--server-key "$K/coordinator.pub" --key "$K/bench.key")
	"$DTXBENCH" -e "$CLIENT" "${keys[@]}" -m "$2" -w transfer --dbs bank,stock --null null1,null2 \
		--accounts $ACCOUNTS -c "$3" -s "$SECONDS_PER_RUN" --warmup 1 --timeout 30000 \
		--json "$T/run.json" >"$T/run.out" 2>&1 || { cat "$T/run.out" >&2; echo 0; return; }
	jq -r '.runs[0] | if .errors > 0 then 0 else (.tps | floor) end' "$T/run.json"
}

declare -A TPS=()
echo "bench: null at 64 clients and dtx at 8, ${SECONDS_PER_RUN} s each, over ipc://, tcp:// and tcp:// with CURVE, $ROUNDS rounds"
for r in $(seq 1 "$ROUNDS"); do
	for tr in ipc tcp curve; do
		start $tr
		n=$(run $tr null 64) d=$(run $tr dtx 8)
		stop
		echo "  round $r $tr: null-64 $n tx/s, dtx-8 $d tx/s"
		TPS[$tr.null]="${TPS[$tr.null]:-} $n"
		TPS[$tr.dtx]="${TPS[$tr.dtx]:-} $d"
	done
done
mean() { awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.0f", NF ? s / NF : 0 }' <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
echo
printf '%-10s %12s %12s %12s %14s %14s\n' mode ipc tcp curve curve/ipc curve/tcp
for m in null dtx; do
	i=$(mean "${TPS[ipc.$m]}") t=$(mean "${TPS[tcp.$m]}") c=$(mean "${TPS[curve.$m]}")
	printf '%-10s %12s %12s %12s %14s %14s\n' "$m-$([ $m = null ] && echo 64 || echo 8)" "$i" "$t" "$c" \
		"$(ratio "$c" "$i")" "$(ratio "$c" "$t")"
done
