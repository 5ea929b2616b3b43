#!/usr/bin/env bash
# run.sh SECONDS TARGET... — make fuzz in the fuzz build: libFuzzer on each
# target for SECONDS (-max_total_time), one after the other, each over a
# copy of its seed corpus tests/fuzz/corpus/NAME (fuzz_NAME) in a temporary
# folder, so that the corpus in the tree stays the small one committed.
# Prints each target's executions; fails if any target crashed, leaked,
# timed out or tripped a check, leaving the input in $FUZZ_ARTIFACTS and
# the end of libFuzzer's report here.
set -uo pipefail
secs=$1
shift
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${FUZZ_ARTIFACTS:=$PWD/tests/fuzz/artifacts}"
work=$(mktemp -d /tmp/dtx-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$FUZZ_ARTIFACTS"

# ASan's and UBSan's reports, symbolized; a leak is a failure too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export TMPDIR=$work

failed=0
for t in "$@"; do
	name=$(basename "$t")
	c=${name#fuzz_}
	mkdir -p "$work/$c"
	cp "$top_srcdir/tests/fuzz/corpus/$c"/* "$work/$c/" || { echo "$name: no seed corpus"; failed=1; continue; }
	n0=$(ls "$work/$c" | wc -l)
	dict=()
	[ -f "$top_srcdir/tests/fuzz/$c.dict" ] && dict=(-dict="$top_srcdir/tests/fuzz/$c.dict")
	t0=$SECONDS
	"$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$FUZZ_ARTIFACTS/$name-" "${dict[@]}" "$work/$c" >"$work/$name.log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name.log" | tail -1)
	cov=$(grep -oE 'cov: [0-9]+' "$work/$name.log" | tail -1)
	n1=$(ls "$work/$c" | wc -l)
	if [ $rc -eq 0 ]; then
		echo "fuzz $name: ${runs:-?} runs in $((SECONDS - t0)) s, ${cov:-cov: ?}, corpus $n0 -> $n1 inputs"
	else
		failed=1
		echo "fuzz $name: FAILED (exit $rc) after ${runs:-?} runs"
		grep -E '^(==[0-9]+==|SUMMARY|artifact_prefix|Test unit written|.*check failed|.*runtime error)' \
			"$work/$name.log" | head -20 | sed 's/^/  /'
		grep -A12 -E '^==[0-9]+==ERROR' "$work/$name.log" | head -30 | sed 's/^/  /'
	fi
done
exit $failed
