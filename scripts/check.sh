#!/usr/bin/env bash
# check.sh — set everything up (scripts/setup.sh), then run the whole test
# suite: unit tests, integration tests against a throwaway PostgreSQL, the
# crash-recovery tests; then each fuzz target for FUZZ_SECONDS (60), the
# tests again under ASan and UBSan (scripts/check-sanitize.sh), and make
# distcheck (the tarball builds and passes out of tree, installs and
# uninstalls); make format-check first (FORMAT_CHECK=0 skips it). Ends with
# "N passed, N failed": make check's and the sanitized run's tests, and one
# for each fuzz target, the format check and distcheck.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
t_start=$SECONDS
passed=0
failed=0
# step NAME RC: count a step that is one check of its own
step() { if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi; }
# took NAME T0: how long a step took
took() { echo "($1: $((SECONDS - $2)) s)"; }

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

# The style check: every C file as clang-format 19 writes it with
# .clang-format (make format applies it).
if [ "${FORMAT_CHECK:-1}" = 1 ]; then
	make -s format-check
	step format-check $?
fi

t0=$SECONDS
make -j"$(nproc)" check >.check.out 2>&1
rc=$?
grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP):' .check.out | grep -v '^PASS:' || true
grep -E '^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):' .check.out || true
if [ $rc -ne 0 ]; then
	echo "--- failing logs:"
	failing_logs .
	grep -E 'error:' .check.out | head -20
fi
took "make check" $t0
p=$(sed -n 's/^# PASS: *//p' .check.out)
f=$(sed -n 's/^# FAIL: *//p' .check.out)
e=$(sed -n 's/^# ERROR: *//p' .check.out)
check_passed=${p:-0}
passed=$((passed + ${p:-0}))
failed=$((failed + ${f:-0} + ${e:-0}))
[ $rc -ne 0 ] && [ $((${f:-0} + ${e:-0})) -eq 0 ] && failed=$((failed + 1)) # failed before any test ran

# Fuzzing, bounded: each target FUZZ_SECONDS from its seed corpus, in the
# clang build make fuzz keeps in _build-fuzz/. One check per target.
t0=$SECONDS
make -s fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-60}" >.fuzz.out 2>&1
frc=$?
grep -vE '^make(\[[0-9]+\])?: ' .fuzz.out
nf_ok=$(grep -cE '^fuzz [a-z_]+: [0-9?]+ runs' .fuzz.out)
nf_bad=$(grep -cE '^fuzz [a-z_]+: FAILED' .fuzz.out)
passed=$((passed + nf_ok))
failed=$((failed + nf_bad))
[ $frc -ne 0 ] && [ "$nf_bad" -eq 0 ] && failed=$((failed + 1)) # the fuzz build failed
took "make fuzz" $t0

# The sanitizer variant: the tests again, built with ASan and UBSan.
t0=$SECONDS
bash scripts/check-sanitize.sh >.sanitize.out 2>&1
src=$?
cat .sanitize.out
sp=$(sed -n 's/^# PASS: *\([0-9]*\).*/\1/p' _build-san/build/check.out 2>/dev/null)
sf=$(sed -n 's/^# FAIL: *\([0-9]*\).*/\1/p' _build-san/build/check.out 2>/dev/null)
se=$(sed -n 's/^# ERROR: *\([0-9]*\).*/\1/p' _build-san/build/check.out 2>/dev/null)
passed=$((passed + ${sp:-0}))
failed=$((failed + ${sf:-0} + ${se:-0}))
[ $src -ne 0 ] && [ $((${sf:-0} + ${se:-0})) -eq 0 ] && failed=$((failed + 1)) # a build failure or a report
took "check-sanitize" $t0

# The release tarball: built, tested out of tree, installed, uninstalled.
drc=1
if [ $rc -eq 0 ]; then
	t0=$SECONDS
	make -j"$(nproc)" distcheck >.distcheck.out 2>&1
	drc=$?
	took "make distcheck" $t0
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
step distcheck $drc
echo "(check.sh: $((SECONDS - t_start)) s after setup)"
echo "$passed passed, $failed failed"
[ $rc -eq 0 ] && [ $frc -eq 0 ] && [ $src -eq 0 ] && [ $drc -eq 0 ] && [ "$failed" -eq 0 ] &&
	[ "$check_passed" -gt 0 ]
