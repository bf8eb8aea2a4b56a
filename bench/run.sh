#!/usr/bin/env bash
# bench/run.sh — ferry's benchmarks: the evaluation of the paper's section 5, on two simulated
# nodes, with every figure also a ratio to a baseline measured in the same run.
#
# Usage: bench/run.sh [--smoke] [SUITE...]      (as root, ferry installed: `make bench`)
#
# Suites (all by default, in this order):
#   floor     the physical floor: link rate B (iperf3), disk Dw/Dr (synced write, cold read)
#   start     instance start: `ferry exec IMAGE /bin/true` vs `runc run` vs unshare+chroot
#   overhead  checkpoint + restore of the same workload: ferry vs bare CRIU vs runc
#   migrate   the synthetic workload, SIZES MiB, the three modes (default, diskless, live), with
#             F (tmpfs -> fresh memory)
#   periodic  checkpoints of a running job (ferry exec --checkpoint-every) to the shared disk,
#             staged in node-local memory (ferry.conf's default) and direct, PERIODIC_SIZES MiB:
#             the job's pause against S / (local write rate), then the checkpoint a preemption's
#             SIGTERM asks for (dump, sync, stop) against a 60 s grace time
#   group     ferry checkpoint group of N members (GROUP_N) of GROUP_MB MiB each, on one node and
#             spread over both (GROUP_NODES), against the slowest member's own checkpoint, the
#             sum of their own checkpoints and their own checkpoints started at once
#   rankmove  a job of RANKMOVE_N ranks (RANKMOVE_MB MiB each) talking over TCP in a ring, one
#             instance and address each, on both nodes; one rank migrated in each mode: the
#             longest pause the other ranks see against the moved rank's downtime + 100 ms
#   compress  diskless migrations with 'compress pages' yes and no: the synthetic workload at
#             COMPRESS_SIZES MiB with random memory (nothing compresses) and with memory that
#             compresses, and the applications of COMPRESS_APPS at their smallest point: the
#             pages' compression ratio, the total against S/B, and yes against no (issue 13)
#   apps      HPL (an N sweep), LAMMPS, GROMACS, AutoDock Vina: run time without / with a
#             migration, and the same result either way (an application this machine cannot
#             run, such as GROMACS on a CPU without rdtscp, is left out and named in run.json)
# Settings (environment):
#   LINK=1gbit|unlimited|RATE   the nodes' link (tc tbf, both directions)      [1gbit]
#   DISK_RATE=BYTES/S           the shared disk (cgroup-v1 blkio throttle)     [104857600]
#   REPEAT=N                    repetitions, interleaved (A B A B ...)          [5]
#   SIZES="MiB..."              synthetic workload sizes         [256 512 1024 2048 4096]
#   MODES="MODE..."             the migrate suite's modes          [diskless default live]
#   OVERHEAD_SIZES="MiB..."     sizes of the overhead suite               [256 1024 4096]
#   PERIODIC_SIZES="MiB..."     sizes of the periodic suite               [256 1024 4096]
#   START_RUNS=N                runs of each start-time command per repetition  [10]
#   APPS="hpl lammps gromacs vina"  the applications of the apps suite                [all]
#   GROUP_N="N..."              members of the group suite                      [1 2 4 8]
#   GROUP_MB=MiB                each member's size                                  [256]
#   GROUP_NODES="1 2"           members on one node, spread over both (N >= 2)      [1 2]
#   RANKMOVE_N="N..."           ranks of the rankmove suite's job                     [4]
#   RANKMOVE_MB=MiB             each rank's memory                                  [256]
#   RANKMOVE_CALM=S             seconds of the ring alone before each move            [2]
#   COMPRESS_SIZES="MiB..."     sizes of the compress suite's synthetic workload       [1024]
#   COMPRESS_APPS="APP..."      applications of the compress suite             [lammps hpl]
#   HPL_POINTS="N..."           HPL problem sizes (hpcc runs its other tests first) [3000 4000]
#   LMP_ATOM_STEPS, GMX_ATOM_STEPS  LAMMPS / GROMACS run length (atom-steps)  [~20 s each]
#   VINA_POINTS="EXH..."        AutoDock Vina exhaustiveness (search effort)          [48: ~20 s]
# --smoke: a tiny run of the same harness (seconds, not hours): 1 repetition, 32 MiB, the
# smallest application points, each application without and with one migration mode (each mode
# moves one), results under bench/results/smoke/ and no report.
#
# Results: one JSON object per measurement in bench/results/raw/SUITE.jsonl (RAW=DIR for
# another directory; a run replaces the files of the suites it runs), then bench/report.sh
# makes bench/results/summary.json, bench/REPORT.md and the plots in bench/plots/.
set -uo pipefail

SMOKE=0
if [ "${1:-}" = --smoke ]; then
	SMOKE=1
	shift
fi
case "${1:-}" in -h | --help)
	sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
esac
[ "$(id -u)" = 0 ] || {
	echo "bench: run as root (it makes network namespaces, a loop device, cgroups)" >&2
	exit 1
}

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
if [ $SMOKE = 1 ]; then
	RAW=$BENCH_DIR/results/smoke
	REPEAT=1 SIZES=${SIZES:-32} OVERHEAD_SIZES=${OVERHEAD_SIZES:-32} PERIODIC_SIZES=${PERIODIC_SIZES:-32} START_RUNS=2
	GROUP_N=${GROUP_N:-1 2} GROUP_MB=${GROUP_MB:-32}
	RANKMOVE_N=${RANKMOVE_N:-3} RANKMOVE_MB=${RANKMOVE_MB:-32} RANKMOVE_CALM=${RANKMOVE_CALM:-1}
	COMPRESS_SIZES=${COMPRESS_SIZES:-32} COMPRESS_APPS=${COMPRESS_APPS-} # the apps suite runs them
	LINK=${LINK:-1gbit}
	export DISK_GB=1
fi
REPEAT=${REPEAT:-5}
SIZES=${SIZES:-256 512 1024 2048 4096}
MODES=${MODES:-diskless default live}
OVERHEAD_SIZES=${OVERHEAD_SIZES:-256 1024 4096}
PERIODIC_SIZES=${PERIODIC_SIZES:-256 1024 4096}
START_RUNS=${START_RUNS:-10}
GROUP_N=${GROUP_N:-1 2 4 8}
GROUP_MB=${GROUP_MB:-256}
GROUP_NODES=${GROUP_NODES:-1 2}
RANKMOVE_N=${RANKMOVE_N:-4}
RANKMOVE_MB=${RANKMOVE_MB:-256}
COMPRESS_SIZES=${COMPRESS_SIZES:-1024}
COMPRESS_APPS=${COMPRESS_APPS-lammps hpl}
export HPL_POINTS=${HPL_POINTS:-3000 4000}
export LMP_ATOM_STEPS=${LMP_ATOM_STEPS:-35000000} GMX_ATOM_STEPS=${GMX_ATOM_STEPS:-16000000}
SUITES=("$@")
[ ${#SUITES[@]} -gt 0 ] || SUITES=(floor start overhead migrate periodic group rankmove compress apps)
for s in "${SUITES[@]}"; do
	case $s in floor | start | overhead | migrate | periodic | group | rankmove | compress | apps) ;; *)
		echo "bench: unknown suite '$s' (floor, start, overhead, migrate, periodic, group, rankmove, compress, apps)" >&2
		exit 2
		;;
	esac
done

# shellcheck source=lib/common.bash
source "$BENCH_DIR/lib/common.bash"
# shellcheck source=lib/baselines.bash
source "$BENCH_DIR/lib/baselines.bash"
# shellcheck source=lib/cluster.bash
source "$BENCH_DIR/lib/cluster.bash"
# shellcheck source=lib/mig.bash
source "$BENCH_DIR/lib/mig.bash"
# shellcheck source=lib/periodic.bash
source "$BENCH_DIR/lib/periodic.bash"
# shellcheck source=lib/group.bash
source "$BENCH_DIR/lib/group.bash"
# shellcheck source=lib/rankmove.bash
source "$BENCH_DIR/lib/rankmove.bash"
# shellcheck source=lib/compress.bash
source "$BENCH_DIR/lib/compress.bash"
if [[ " ${SUITES[*]} " == *" apps "* || " ${SUITES[*]} " == *" compress "* ]]; then
	# shellcheck source=lib/apps.bash
	source "$BENCH_DIR/lib/apps.bash"
fi

if [ ! -x "$FERRY" ] || [ ! -x "$FERRYD" ]; then
	die "ferry is not installed: make install (or make bench)"
fi
BENCH_RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
export BENCH_RUN_ID RAW

# one benchmark at a time, and never beside the test suite (same users, same ferry.conf)
exec 8>/run/lock/ferry-bench.lock
flock -n 8 || die "another benchmark runs (/run/lock/ferry-bench.lock)"

bench_user
bench_image
mkdir -p "$RAW" "$BENCH_WORK"
for s in "${SUITES[@]}"; do rm -f "$RAW/$s.jsonl"; done
jq -n --arg run "$BENCH_RUN_ID" --arg link "$LINK" --argjson disk "$DISK_RATE" \
	--argjson repeat "$REPEAT" --arg sizes "$SIZES" --arg modes "$MODES" --arg kernel "$(uname -r)" \
	--arg criu "$("$CRIU" --version | head -1)" --arg runc "$(runc --version | head -1)" \
	--arg ferry "$(git -C "$FERRY_SRC" describe --always --dirty 2>/dev/null || echo unknown)" \
	--argjson cpus "$(nproc)" --argjson mem "$(awk '/MemTotal/ { print $2 * 1024 }' /proc/meminfo)" \
	'$ARGS.named' >"$RAW/run.json"

trap 'periodic_cleanup; group_cleanup; rankmove_cleanup; compress_cleanup; cluster_down; rm -rf "$BENCH_WORK/runc" /dev/shm/ferry-bench-criu /dev/shm/ferry-bench-runc' EXIT
say "cluster: link $LINK, shared disk $((DISK_RATE / 1048576)) MiB/s"
cluster_up

# interleave: repetition R starts R places further in the list of the compared things (A B C,
# B C A, C A B, ...), so that each runs first, in the middle and last equally often: the first
# run after a pause meets memory the VM has taken back (first touch is several times slower),
# and a plain reversal would leave the middle one never first.
order() {
	local r=$1 i n
	shift
	n=$#
	for ((i = 0; i < n; i++)); do
		printf '%s\n' "${@:$(((r + i) % n + 1)):1}"
	done
}

suite_floor() {
	local r
	for ((r = 0; r < REPEAT; r++)); do
		say "floor $((r + 1))/$REPEAT: link, disk"
		floor_link "$SRC" "$DST" "${NODE_IP[$DST]}" | jq -c ". + {what: \"link\", rep: $r}" >>"$RAW/floor.jsonl" ||
			die "floor: the link could not be measured"
		floor_disk "$SHARED" $(((SMOKE ? 64 : 1024) << 20)) | jq -c ". + {what: \"disk\", rep: $r}" >>"$RAW/floor.jsonl" ||
			die "floor: the disk could not be measured"
	done
}

suite_start() {
	local r i what
	runc_bundle "$IMAGE_SANDBOX" "$BENCH_WORK/runc/bundle"
	for ((r = 0; r < REPEAT; r++)); do
		say "start $((r + 1))/$REPEAT: ferry exec, runc run, unshare+chroot"
		for ((i = 0; i < START_RUNS; i++)); do
			for what in $(order $((r + i)) ferry runc unshare); do
				case $what in
				ferry) start_ferry_true ;;
				runc) start_runc_true "$BENCH_WORK/runc/bundle" ;;
				unshare) start_unshare_true "$IMAGE_SANDBOX" ;;
				esac | jq -c --arg w "$what" --argjson r "$r" '{what: $w, rep: $r, ms: .wall_ms}' >>"$RAW/start.jsonl" ||
					die "start: $what failed"
			done
		done
	done
}

suite_overhead() {
	local r mb what j
	runc_bundle "$IMAGE_SANDBOX" "$BENCH_WORK/runc/bundle"
	# all three write their images to a tmpfs (ferry: --mem-dir), the same kind of storage
	mkdir -p /dev/shm/ferry-bench-criu /dev/shm/ferry-bench-runc
	for ((r = 0; r < REPEAT; r++)); do
		for mb in $OVERHEAD_SIZES; do
			for what in $(order $r ferry criu runc); do
				say "overhead $((r + 1))/$REPEAT: $what, $mb MiB"
				case $what in
				ferry) j=$(ferry_ckpt_cycle "$mb") ;;
				criu) j=$(bare_criu_cycle "$IMAGE_SANDBOX" "$mb" /dev/shm/ferry-bench-criu) ;;
				runc) j=$(runc_ckpt_cycle "$BENCH_WORK/runc/bundle" "$mb" /dev/shm/ferry-bench-runc) ;;
				esac || die "overhead: $what at $mb MiB failed"
				echo "$j" | jq -c --arg w "$what" --argjson mb "$mb" --argjson r "$r" \
					'. + {what: $w, mb: $mb, rep: $r}' >>"$RAW/overhead.jsonl"
			done
		done
	done
}

suite_migrate() {
	local r mb mode from=$SRC f
	for ((r = 0; r < REPEAT; r++)); do
		for mb in $SIZES; do
			# F: a tmpfs file of this size read into fresh memory, next to the restores
			f=$(TMPFS_OF "$DST")/floor-f
			mkdir -p "$(dirname "$f")"
			floor_tmpfs_read "$f" $((mb << 20)) | jq -c ". + {what: \"tmpfs_read\", rep: $r, mb: $mb}" >>"$RAW/floor.jsonl" ||
				die "floor: tmpfs read of $mb MiB failed"
			# shellcheck disable=SC2086 # MODES is a list
			for mode in $(order $r $MODES); do
				say "migrate $((r + 1))/$REPEAT: $mb MiB, $mode, $from -> $(other "$from")"
				mig_synthetic "$mode" "$mb" "$from" || die "migration failed"
			done
		done
	done
}

suite_periodic() {
	local r mb mode
	periodic_dirty_bound on
	for ((r = 0; r < REPEAT; r++)); do
		for mb in $PERIODIC_SIZES; do
			for mode in $(order $r staged direct); do
				say "periodic $((r + 1))/$REPEAT: $mb MiB, $mode"
				periodic_measure "$mode" "$mb" "$r"
			done
		done
	done
	periodic_cleanup
}

suite_group() {
	local r n nodes placements
	read -r -a placements <<<"$GROUP_NODES"
	for ((r = 0; r < REPEAT; r++)); do
		for n in $GROUP_N; do
			for nodes in $(order $r "${placements[@]}"); do
				# one member is on one node
				[ "$n" -gt 1 ] || [ "$nodes" = 1 ] || continue
				say "group $((r + 1))/$REPEAT: $n x $GROUP_MB MiB on $nodes node(s)"
				group_measure "$n" "$GROUP_MB" "$r" "$nodes"
			done
		done
	done
}

suite_rankmove() {
	local r n mode
	rankmove_setup
	for ((r = 0; r < REPEAT; r++)); do
		for n in $RANKMOVE_N; do
			for mode in $(order $r diskless default live); do
				say "rankmove $((r + 1))/$REPEAT: $n ranks x $RANKMOVE_MB MiB, rank 0 moved ($mode)"
				rankmove_measure "$mode" "$n" "$RANKMOVE_MB" "$r"
			done
		done
	done
	rankmove_cleanup
}

suite_compress() {
	local r mb fill z app point
	for ((r = 0; r < REPEAT; r++)); do
		for mb in $COMPRESS_SIZES; do
			for fill in random compressible; do
				for z in $(order $r yes no); do
					say "compress $((r + 1))/$REPEAT: synthetic $mb MiB, $fill, compress $z"
					compress_synthetic "$fill" "$mb" "$z" "$r" || die "migration failed"
				done
			done
		done
		for app in $COMPRESS_APPS; do
			app_unrunnable "$app" >/dev/null && continue
			point=$(app_points "$app" smoke | head -n 1)
			[ $SMOKE = 1 ] || point=$(app_points "$app" | head -n 1)
			for z in $(order $r yes no); do
				say "compress $((r + 1))/$REPEAT: $app $point, compress $z"
				compress_app "$app" "$point" "$z" "$r" || die "$app $point failed"
			done
		done
	done
	say "compress: the table"
	compress_table
}

# The migration modes of the apps suite: every one for every application, or in a smoke run
# one for each (none, and the next of SMOKE_APP_MODES by the application's turn), so that each
# mode still moves a real application, in a third of the time.
SMOKE_APP_MODES=(diskless live default)
suite_apps() {
	local r app size points why modes turn=0
	for app in ${APPS:-$(app_list)}; do
		if why=$(app_unrunnable "$app"); then
			# asked for by name: an error; else the report says which did not run, and why
			[ -z "${APPS:-}" ] || die "$app cannot run on this machine: $why"
			say "apps: $app is not run: $why"
			jq --arg app "$app" --arg why "$why" '.apps_not_run[$app] = $why' "$RAW/run.json" >"$RAW/run.json.tmp" &&
				mv "$RAW/run.json.tmp" "$RAW/run.json"
			continue
		fi
		if [ $SMOKE = 1 ]; then points=$(app_points "$app" smoke); else points=$(app_points "$app"); fi
		modes="diskless default live"
		[ $SMOKE = 0 ] || modes=${SMOKE_APP_MODES[turn % ${#SMOKE_APP_MODES[@]}]}
		turn=$((turn + 1))
		for size in $points; do
			for ((r = 0; r < REPEAT; r++)); do
				# shellcheck disable=SC2086
				for mode in $(order $r none $modes); do
					say "apps $((r + 1))/$REPEAT: $app $size, migration: $mode"
					app_measure "$app" "$size" "$mode" "$r" || die "$app $size ($mode) failed"
				done
			done
		done
	done
}

for s in "${SUITES[@]}"; do
	"suite_$s"
done
trap - EXIT
cluster_down
rm -rf "$BENCH_WORK/runc" /dev/shm/ferry-bench-criu /dev/shm/ferry-bench-runc
say "done: $RAW"
if [ $SMOKE = 1 ]; then
	:
elif [ "$RAW" = "$BENCH_DIR/results/raw" ]; then
	"$BENCH_DIR/report.sh"
else
	say "a report of these results: REPORT_OUT=DIR $BENCH_DIR/report.sh $RAW"
fi
