#!/usr/bin/env bash
# build.sh DIR — CRIU's zdtm static tests, built into DIR/criu-VER/test/zdtm/static from the CRIU
# source scripts/setup.sh fetched (/var/cache/ferry/criu/criu_VER.orig.tar.xz). Prints the static
# directory. Idempotent: a finished build is reused.
set -euo pipefail
dir=${1:?usage: build.sh DIR}
ver=${FERRY_CRIU_VERSION:-4.2.1}
cache=${FERRY_CRIU_CACHE:-/var/cache/ferry/criu}
tarball=$cache/criu_$ver.orig.tar.xz
src=$dir/criu-$ver
static=$src/test/zdtm/static
if [ ! -f "$dir/.built-$ver" ]; then
	[ -s "$tarball" ] || { echo "zdtm: no CRIU source at $tarball (run 'make setup')" >&2; exit 1; }
	mkdir -p "$dir"
	rm -rf "$src"
	tar -C "$dir" -xf "$tarball" "criu-$ver/test/zdtm" "criu-$ver/include" "criu-$ver/scripts" 2>/dev/null ||
		tar -C "$dir" -xf "$tarball"
	echo "zdtm: building CRIU $ver's zdtm static tests (a few minutes)" >&2
	make -s -C "$src/test/zdtm/lib" -j"$(nproc)" >"$dir/build.log" 2>&1 ||
		{ tail -n 20 "$dir/build.log" >&2; exit 1; }
	# -k: a test this machine lacks headers for is left out (and reported as skipped)
	make -s -k -C "$static" -j"$(nproc)" all >>"$dir/build.log" 2>&1 || true
	touch "$dir/.built-$ver"
fi
echo "$static"
