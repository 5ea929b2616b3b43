#!/usr/bin/env bash
# check-sanitize.sh — the tests once more, with every dtx program built
# under AddressSanitizer and UndefinedBehaviorSanitizer, in its own build
# out of the tree: _build-san/src (the sources as make dist ships them,
# scripts/distdir-sync.sh) and _build-san/build. The integration tests start the daemons and tools of
# that build (lib.sh takes them from $top_builddir), so a sanitizer error
# in coordinatord or an agent is caught as well as in a unit test.
#
# A report fails the run even when no TAP check noticed (a daemon that dies
# while a test tears it down): ASan and UBSan write each report to a file
# of _build-san/reports, and any such file is a failure, printed here.
#
# Run by scripts/check.sh after make check; alone it needs the tree
# configured (scripts/setup.sh). SAN_TESTS="..." runs those tests only;
# by default all of make check's but one (see below). SAN_CC: the
# compiler (clang).
set -uo pipefail
cd "$(dirname "$0")/.."
[ -f Makefile ] || { echo "check-sanitize: the tree is not configured: run scripts/setup.sh"; exit 1; }
top=$PWD
b=$top/_build-san
san='-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined'
# clang: with gcc, UBSan inside an ASan process writes its reports to
# stderr whatever log_path says, and a daemon's stderr is a log file the
# test removes.
cc=${SAN_CC:-clang}
flags="CC=$cc|CFLAGS=-O1 -g $san|LDFLAGS=$san"

mkdir -p "$b"
bash scripts/distdir-sync.sh "$b/src" || { echo "check-sanitize: make distdir failed"; exit 1; }
mkdir -p "$b/build"
cd "$b/build" || exit 1
rm -f check.out # check.sh counts its tests: none from an earlier run
if [ ! -f Makefile ] || [ "$(cat .flags 2>/dev/null)" != "$flags" ]; then
	../src/configure -q --enable-werror CC="$cc" CFLAGS="-O1 -g $san" LDFLAGS="$san" >configure.out 2>&1 ||
		{ cat configure.out; exit 1; }
	printf '%s' "$flags" >.flags
fi
make -j"$(nproc)" all >build.out 2>&1 || { tail -30 build.out; echo "check-sanitize: the build failed"; exit 1; }
grep -q 'warning:' build.out && { grep 'warning:' build.out | head; echo "check-sanitize: the build warns"; exit 1; }

# Which tests: all of make check's (the suite is mostly waiting, so it
# takes about as long as without sanitizers: 8 to 9 minutes) but
# install.sh, which builds a program with the system's cc against the
# installed libdtx: that cannot link a library built with clang's ASan,
# and the layout it checks is the same in any build.
tests=${SAN_TESTS:-$(make -s -f Makefile -f - print-tests <<<'print-tests: ; @echo $(TESTS)' |
	tr ' ' '\n' | grep -vx 'tests/integration/install.sh' | tr '\n' ' ')}

# Reports go to files, one per process (PREFIX.EXE.PID), so that none is
# lost with a daemon's output. A leak is an error too: the suite has none
# to suppress, the daemons' and the tools' alike. The quarantine of freed
# memory is kept small (4 MiB, not 256): contain.sh checks that an agent
# counting a large result stays under 64 MiB resident, and the default
# quarantine alone exceeds that.
reports=$b/reports
rm -rf "$reports"
mkdir -p "$reports"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$reports/asan:log_exe_name=1:quarantine_size_mb=4:thread_local_quarantine_size_kb=64"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan:log_exe_name=1"

t0=$SECONDS
make -j"$(nproc)" check TESTS="$tests" >check.out 2>&1
rc=$?
grep -E '^(FAIL|ERROR|XPASS):' check.out || true
grep -E '^# (TOTAL|PASS|FAIL|ERROR):' check.out | tr -s ' \n' ' '
echo
if [ $rc -ne 0 ]; then
	for log in $(grep -lE '^(not ok|Bail out)' tests/*/*.log 2>/dev/null); do
		echo "=== $log"; grep -vE '^ok ' "$log" | head -60
	done
fi
nrep=$(find "$reports" -type f | wc -l)
if [ "$nrep" -gt 0 ]; then
	echo "check-sanitize: $nrep sanitizer report(s):"
	for f in "$reports"/*; do
		echo "=== $(basename "$f")"
		head -40 "$f"
	done
	rc=1
fi
echo "check-sanitize: $(echo "$tests" | wc -w) test files in $((SECONDS - t0)) s under ASan and UBSan: $([ $rc -eq 0 ] && echo passed || echo FAILED)"
exit $rc
