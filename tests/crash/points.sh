#!/usr/bin/env bash
# tests/crash/points.sh — what the crash suites share: arm a crash point or
# a fault in the coordinator or an agent, run a workload, see the process
# die where it was armed, restart it, wait for quiescence and check the
# invariants. Sourced after lib.sh by a suite that defines ALL_POINTS,
# CLIENTS, SECONDS_PER_RUN and these functions:
#   workload_init           once, after PostgreSQL started (databases, tables)
#   workload_setup          before each run (the tables' starting state)
#   workload_start OUTFILE  the workload, in the background; its last line
#                           of output goes into the table
#   workload_check OUTFILE  prints one line per violation, then "violations N"
# and then calls crash_points.

# Prepared transactions that are not dtx's, holding PostgreSQL's slots.
hold_prepared_slots() {
	for i in $(seq 1 "$1"); do echo "BEGIN; PREPARE TRANSACTION 'hold:$i';"; done |
		PGOPTIONS='-c client_min_messages=error' timeout -k 5 "$DTX_CMD_TIMEOUT" "$PGBIN/psql" -X -h "$PGSOCK" -p "$PGPORT" \
			-U postgres -d postgres -q >/dev/null 2>&1
}
release_prepared_slots() {
	local gid
	for gid in $(q postgres "SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'hold:%'"); do
		q postgres "ROLLBACK PREPARED '$gid'"
	done
}

quiescent() { no_prepared_left && none_in_flight --wait 1000; }

all_up() { for a in shop bank stock; do participant_up $a || return 1; done; }

# run_point POINT PROCESS PASS: one iteration; prints its violations count.
# Whatever happens, what it started is stopped at its end.
run_point() {
	local rc
	run_point_1 "$@"; rc=$?
	for p in "${ALL_PIDS[@]}"; do kill -CONT "$p" 2>/dev/null; kill_wait "$p"; done
	ALL_PIDS=()
	return $rc
}
# crash_point_rc POINT: the exit code a process armed at POINT dies with.
crash_point_rc() {
	case $1 in
	kill-9) echo 137 ;;
	*:* | pg-immediate | max-prepared | agent-away) echo - ;;
	*) echo 99 ;;
	esac
}
run_point_1() {
	local point=$1 proc=$2 pass=$3 out=$T/outcomes bank pid
	workload_setup
	local lines=0
	[ -f "$T/coord.log" ] && lines=$(wc -l <"$T/coord.log")
	echo $((lines + 1)) >"$T/log.start"
	dtx_start_coord || { echo "coordinatord did not start"; return 1; }
	for a in shop bank stock; do dtx_start_agent $a; done
	wait_for 10 all_up || { echo "agents did not register"; return 1; }
	# Arm the crash point: restart the chosen process with DTX_CRASH.
	local arm=DTX_CRASH=$point:$pass
	case $point in
	*:*) arm=DTX_FAULT=$point ;;
	esac
	case $point in
	kill-9 | crd.recovered_one | pga.scanned | pg-immediate | max-prepared | agent-away) ;;
	*)
		if [ "$proc" = coord ]; then
			kill_wait "$COORD_PID" KILL; dtx_start_coord "$arm"
		else
			kill_wait "${AGENT_PID[$proc]}" KILL; dtx_start_agent "$proc" "$arm"
		fi
		wait_for 10 all_up || { echo "agents did not register after arming $point"; return 1; } ;;
	esac
	workload_start "$out" >"$T/workload.out" 2>&1 &
	bank=$!
	ALL_PIDS+=("$bank")
	local died=
	case $point in
	kill-9)
		sleep "0.$((RANDOM % 9 + 1))"; kill -KILL "$COORD_PID"; wait_exit 10 "$COORD_PID"; died=$? ;;
	crd.recovered_one)
		# Die during recovery: first leave work in flight (bank frozen,
		# so its transactions cannot finish; then kill -9), then restart
		# into the crash point at a pass that surely comes.
		sleep 1; kill -STOP "${AGENT_PID[bank]}"; sleep 0.3
		kill_wait "$COORD_PID" KILL
		kill -CONT "${AGENT_PID[bank]}"
		dtx_start_coord DTX_CRASH=$point:$((pass % CLIENTS + 1)) 2>/dev/null ;;
	pga.scanned)
		sleep 1; kill_wait "${AGENT_PID[$proc]}" KILL
		dtx_start_agent "$proc" DTX_CRASH=$point:1 ;;
	pg-immediate)
		sleep 1.5; pg_stop_immediate; sleep 1; pg_start_again
		echo "crashed=yes" >"$T/fired" ;;
	max-prepared)
		local before
		before=$(cat "$T"/agent-*.log | grep -c 'maximum number of prepared transactions')
		sleep 1; hold_prepared_slots $((${PG_MAX_PREPARED:-64} - 2)); sleep 2
		release_prepared_slots
		[ "$(cat "$T"/agent-*.log | grep -c 'maximum number of prepared transactions')" -gt "$before" ] &&
			echo "crashed=yes" >"$T/fired" ;;
	agent-away)
		sleep 1; kill -STOP "${AGENT_PID[$proc]}"; sleep 4; kill -CONT "${AGENT_PID[$proc]}"
		echo "crashed=yes" >"$T/fired" ;;
	esac
	# Wait for the crash (or the end of the run), then restart clean.
	local crashed=no log
	if [ "$proc" = coord ]; then pid=$COORD_PID log=$T/coord.log; else pid=${AGENT_PID[$proc]:-} log=$T/agent-$proc.log; fi
	[ -n "$pid" ] || pid=$bank
	local t0
	t0=$(now_ms)
	waiting "$point: the crash of $proc (pid $pid) or the end of the workload"
	while ! gone "$pid" && ! gone "$bank"; do
		[ $(($(now_ms) - t0)) -lt $(((SECONDS_PER_RUN + 30) * 1000)) ] ||
			{ echo "the workload still ran $((SECONDS_PER_RUN + 30)) s after it began"; return 1; }
		sleep 0.1
	done
	local want
	want=$(crash_point_rc "$point")
	if [ -f "$T/fired" ]; then
		crashed=yes; rm -f "$T/fired"
	elif [[ $point == *:* ]]; then
		# a fault point fired if the process says so in this run's log
		[ "$(grep -c 'fault injected' "$log")" -gt "$(cat "$T/faults.$proc" 2>/dev/null || echo 0)" ] && crashed=yes
		grep -c 'fault injected' "$log" >"$T/faults.$proc"
	elif gone "$pid"; then
		[ -n "$died" ] || { wait "$pid" 2>/dev/null; died=$?; }
		# the process died where it was armed, and nowhere else
		if [ "$died" != "$want" ]; then
			echo "crash: $proc exited $died, want $want at $point"
		elif [ "$want" = 99 ] && ! tail -n 50 "$log" | grep -q "crash point $point reached"; then
			echo "crash: $proc exited 99 but its log does not say it reached $point"
		else
			crashed=yes
		fi
		if [ "$proc" = coord ]; then
			dtx_start_coord || { echo "coordinatord did not start again"; return 1; }
		else
			dtx_start_agent "$proc"
		fi
	fi
	wait_exit $((SECONDS_PER_RUN + 30)) "$bank" >/dev/null
	wait_for 30 all_up || echo "not every agent registered 30 s after the run: $("$DTXCTL" status | tr '\n' ' ')"
	wait_for 30 quiescent || echo "not quiescent after 30 s: $("$DTXCTL" status | tr '\n' ' ')"
	echo "crashed=$crashed $(tail -1 "$T/workload.out")" >"$T/run.info"
	workload_check "$out"
	# run_point stops everything for the next iteration. The log stays, as
	# in production: each restart is a new epoch, so no GID repeats (a
	# fresh log would reuse them, and every reused branch would vote no on
	# its marker row).
}

# crash_points: run every point of ALL_POINTS (or of POINTS) ITER times
# and say, as TAP, whether each crashed where armed with no violation.
crash_points() {
dtx_start_pg
workload_init
printf '# %-24s %-6s %-8s %-10s %s\n' point runs crashed violations workload
n=0
while read -r point proc; do
	[ -n "$point" ] || continue
	if [ -n "${POINTS:-}" ] && ! [[ " $POINTS " == *" $point "* ]]; then continue; fi
	v=0 crashes=0 info=
	for i in $(seq 1 "$ITER"); do
		if [ "$ITER" -gt 1 ]; then pass=$((RANDOM % 40 + 1)); else pass=5; fi
		rm -f "$T/run.info"
		res=$(run_point "$point" "$proc" "$pass" </dev/null)
		n=$(echo "$res" | sed -n 's/^violations //p')
		[ -n "$n" ] || n=1
		fired=no
		grep -qs crashed=yes "$T/run.info" && fired=yes crashes=$((crashes + 1))
		# what went wrong, as TAP comments
		[ "$n" -eq 0 ] && [ $fired = yes ] || echo "$res" | grep -v '^violations 0$' | sed "s/^/# $point: /"
		v=$((v + n))
		info=$(sed 's/crashed=[a-z]* //' "$T/run.info" 2>/dev/null)
	done
	printf '# %-24s %-6s %-8s %-10s %s\n' "$point" "$ITER" "$crashes" "$v" "$info"
	# A point that never fired proved nothing: that fails too.
	ok $([ "$v" -eq 0 ] && [ "$crashes" -eq "$ITER" ] && echo 0 || echo 1) \
		"$point: $ITER runs, $crashes crashed there, $v violations"
done <<<"$ALL_POINTS"
}
