# shellcheck shell=bash
# common.bash — what every part of ferry's benchmark harness shares (source it; bash 5, as root).
#
#   BENCH_DIR    the bench/ directory of the sources
#   BENCH_CACHE  built things kept between runs: images, static workloads (/var/cache/ferry-bench)
#   BENCH_WORK   scratch of one run (/var/tmp/ferry-bench)
#   BUSER        the unprivileged user the benchmarks run as (created here)
#   RAW          where measurements go, one JSON object per line (bench/results/raw)
#
# Every measurement is one line of JSON appended to $RAW/SUITE.jsonl (run.sh adds what was
# measured, and the repetition); bench/report.sh reads those lines only (medians, min/max,
# ratios), never the logs.

BENCH_DIR=${BENCH_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
FERRY_SRC=$(cd "$BENCH_DIR/.." && pwd)
BENCH_CACHE=${BENCH_CACHE:-/var/cache/ferry-bench}
BENCH_WORK=${BENCH_WORK:-/var/tmp/ferry-bench}
BUSER=${BUSER:-ferrybench}
RAW=${RAW:-$BENCH_DIR/results/raw}
FERRY=${FERRY:-/usr/local/bin/ferry}
FERRYD=${FERRYD:-/usr/local/sbin/ferryd}
CRIU=${CRIU:-/usr/local/sbin/criu}
STATEFUL=$BENCH_CACHE/bin/stateful # the synthetic workload (tests/workloads/stateful.c), static
IMAGE_DEF=$BENCH_DIR/images/hpc.def
IMAGE_SANDBOX=$BENCH_CACHE/hpc.sandbox # the rootfs ferry build makes from IMAGE_DEF ...
IMAGE_SIF=$BENCH_CACHE/hpc.sif         # ... and the same rootfs as a SIF (what instances run)

say() { printf '[%(%T)T] %s\n' -1 "$*" >&2; }
die() {
	printf 'bench: %s\n' "$*" >&2
	exit 1
}

# bench_user: the unprivileged user of the benchmarks, with a home.
bench_user() {
	id "$BUSER" >/dev/null 2>&1 || useradd -m -s /bin/bash "$BUSER"
	BHOME=$(getent passwd "$BUSER" | cut -d: -f6)
	export BHOME
}

# as_buser CMD...: CMD as the benchmark user (in the current network namespace).
as_buser() { runuser -u "$BUSER" -- "$@"; }

# bench_static SRC OUT GCC-FLAGS...: OUT built static from SRC, again whenever SRC's content
# differs from what OUT was built from (OUT.sha256; not by dates: the cache is shared by every
# checkout on the machine, a CI clone's older source included). 1 when gcc fails.
bench_static() {
	local src=$1 out=$2 sum
	shift 2
	sum=$(sha256sum <"$src" | cut -c1-64)
	[ -x "$out" ] && [ "$(cat "$out.sha256" 2>/dev/null)" = "$sum" ] && return 0
	if ! gcc "$@" -static -o "$out.$$" "$src" || ! mv -f "$out.$$" "$out"; then
		rm -f "$out.$$"
		return 1
	fi
	echo "$sum" >"$out.sha256"
}

# bench_workloads: the static synthetic workload, rebuilt when its source changes.
bench_workloads() {
	mkdir -p "$BENCH_CACHE/bin"
	bench_static "$FERRY_SRC/tests/workloads/stateful.c" "$STATEFUL" -O2 -pthread ||
		die "cannot build the synthetic workload"
}

# bench_image: the benchmark image, built by `ferry build` from bench/images/hpc.def into a
# sandbox (the rootfs runc and bare CRIU use too) and packed from that same directory into a SIF
# (what ferry instances run). Rebuilt when the definition or the workload changes.
bench_image() {
	bench_workloads
	local stamp=$BENCH_CACHE/hpc.stamp want
	want=$(cat "$IMAGE_DEF" "$STATEFUL" | sha256sum | cut -c1-16)
	if [ -f "$IMAGE_SIF" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
		return 0
	fi
	say "building the benchmark image from $IMAGE_DEF (debootstrap + Debian packages, ~2 min)"
	rm -f "$stamp"
	(cd "$BENCH_DIR/images" && "$FERRY" build -f --sandbox "$IMAGE_SANDBOX" "$IMAGE_DEF") \
		>"$BENCH_CACHE/build.log" 2>&1 || die "ferry build of $IMAGE_DEF failed: see $BENCH_CACHE/build.log"
	"$FERRY" build -f "$IMAGE_SIF" "$IMAGE_SANDBOX" >>"$BENCH_CACHE/build.log" 2>&1 ||
		die "ferry build of $IMAGE_SIF failed: see $BENCH_CACHE/build.log"
	chmod 0644 "$IMAGE_SIF"
	echo "$want" >"$stamp"
}
