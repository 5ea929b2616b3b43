#!/usr/bin/env bash
# check.sh — set everything up (scripts/setup.sh), then run the whole test
# suite: unit tests, integration tests against a throwaway PostgreSQL, the
# crash-recovery tests; then make distcheck (the tarball builds and passes
# out of tree, installs and uninstalls). Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1

# failing_logs DIR: what the failing tests under DIR printed, not the oks
failing_logs() {
	local log
	for log in $(grep -lE '^(not ok|Bail out)' "$1"/tests/*/*.log 2>/dev/null); do
		echo "=== $log"; grep -vE '^ok ' "$log" | head -80
	done
}

# A wait whose result nobody checks lets a test go on as if it had come:
# each wait_for is followed by ok $?, ||, or a use of $? (wait_ok and
# wait_or_bail check their own).
unchecked=$(grep -nE '(^|[;&|]|do|then)[[:space:]]*wait_for ' tests/integration/*.sh tests/crash/*.sh |
	grep -v '^tests/integration/lib.sh:' | grep -vE 'wait_for .*(\|\||; *ok \$\?|; *rc=\$\?|&&)' |
	while IFS=: read -r f n _; do
		sed -n "$((n + 1))p" "$f" | grep -qE '^[[:space:]]*ok \$\?' || echo "$f:$n"
	done)
if [ -n "$unchecked" ]; then
	echo "wait_for without a check of its result (use wait_ok or wait_or_bail):"
	echo "$unchecked" | sed 's/^/  /'
fi

make -j"$(nproc)" check >.check.out 2>&1
rc=$?
grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP):' .check.out | grep -v '^PASS:' || true
sed -n '/^Testsuite summary/,/^=*$/p' .check.out | grep -E '^# ' || true
if [ $rc -ne 0 ]; then
	echo "--- failing logs:"
	failing_logs .
	grep -E 'error:' .check.out | head -20
fi
# The release tarball: built, tested out of tree, installed, uninstalled.
drc=1
if [ $rc -eq 0 ]; then
	make -j"$(nproc)" distcheck >.distcheck.out 2>&1
	drc=$?
	if [ $drc -eq 0 ]; then
		echo "make distcheck: passed ($(grep -o 'dtx-[0-9.]*\.tar\.gz' .distcheck.out | tail -1))"
	else
		echo "make distcheck: FAILED"
		grep -E '^(FAIL|ERROR):|error:|Error [0-9]|ERROR:' .distcheck.out | head -30
		# left in the tarball's build tree
		for d in dtx-*/_build/sub; do failing_logs "$d"; done
	fi
else
	echo "make distcheck: not run (make check failed)"
fi
passed=$(sed -n 's/^# PASS: *//p' .check.out)
f=$(sed -n 's/^# FAIL: *//p' .check.out)
e=$(sed -n 's/^# ERROR: *//p' .check.out)
failed=$((${f:-0} + ${e:-0}))
echo "${passed:-0} passed, ${failed:-0} failed"
[ $rc -eq 0 ] && [ $drc -eq 0 ] && [ -n "$passed" ] && [ "$passed" -gt 0 ]
