#!/usr/bin/env bash
# setup.sh — install what dtx needs on Debian 12 (apt, as root or via sudo)
# and build it. Safe to run again: it installs only what is missing and
# rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build tools, the libraries configure.ac checks for, and the PostgreSQL
# server the demo and the tests start.
PACKAGES="build-essential autoconf automake libtool pkg-config
	liblmdb-dev libzmq3-dev libmsgpack-dev libpq-dev libinih-dev libpg-query-dev libjson-c-dev zlib1g-dev
	libsystemd-dev libmicrohttpd-dev systemd postgresql-15 postgresql-client-15 curl groff-base jq"
# The checks beyond make check: clang with libFuzzer's runtime (a
# recommendation of clang's, so named) for make fuzz, llvm-symbolizer for
# the sanitizers' stack traces, and the clang-format .clang-format is
# written for.
PACKAGES="$PACKAGES clang libclang-rt-dev llvm clang-format-19"

missing=()
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

mkdir -p m4
[ -x configure ] || autoreconf -fi >/dev/null 2>&1
[ -f Makefile ] || ./configure -q --enable-werror
make -s -j"$(nproc)" >/dev/null
echo "setup: built $(ls coordinatord/coordinatord participants/dtx-pgagent tools/dtxctl tools/dtxbench | tr '\n' ' ')"
