# shellcheck shell=bash
# baselines.bash — the baselines of ferry's benchmarks, measured in the same run as ferry so that
# every figure of ferry becomes a ratio (source common.bash first; bash 5, as root).
#
# Each function below makes ONE measurement and prints ONE JSON object on stdout (logs go to
# stderr); the harness interleaves and repeats them (A B A B ...) and takes medians. Every
# function cleans up after itself (containers, mounts, loop devices, images), also when it fails,
# and then returns non-zero with a one-line "baselines: ..." message on stderr. Each runs in a
# subshell: its traps, `exit` and `set +e` stay inside.
#
# Physical floors — what the machine can do at all:
#   floor_link SRC_NS DST_NS DST_IP   B: one plain TCP stream (iperf3, BL_IPERF_SECONDS=3) from
#                                     network namespace SRC_NS to a server on DST_IP in DST_NS
#                                     {bytes_per_s, seconds}
#   floor_tmpfs_read FILE [SIZE]      F: a tmpfs file read into freshly mmapped anonymous memory,
#                                     first touch included (what CRIU's restorer does with pages)
#                                     {bytes, ms, bytes_per_s}; with SIZE (bytes, or 1G...) a
#                                     missing FILE is made first, and removed after
#   floor_disk DIR SIZE               Dw: SIZE incompressible bytes written to a new file in DIR
#                                     and fsync'ed; Dr: the file read back cold (its pages dropped
#                                     with POSIX_FADV_DONTNEED) {bytes, write_ms, read_ms,
#                                     write_bytes_per_s, read_bytes_per_s}
#   disk_up DIR RATE_BYTES_PER_S SIZE_GB / disk_down DIR
#                                     a bandwidth-limited disk at DIR: a file in /var/tmp, a loop
#                                     device on it with direct I/O (no host page cache under it:
#                                     the limit and cold reads are real), ext4, and cgroup-v1
#                                     blkio.throttle.{read,write}_bps_device on the ROOT blkio
#                                     cgroup for the loop device (the root cgroup catches the
#                                     kernel's writeback too; cgroup v2 io.max is not usable here)
#
# Checkpoint/restore of the same workload (tests/workloads/stateful.c, --mb MB --interval 200),
# waited for until its memory is filled (a first step in its progress file), by three runtimes:
#   bare_criu_cycle ROOTFS MB DIR     CRIU alone, as root, on a container made by hand
#                                     (bench/tools/minictr.c: pid/mnt/ipc/uts namespaces, setsid,
#                                     ROOTFS bound read-only, pivot_root, /proc, tmpfs /dev, /tmp),
#                                     with ferry's CRIU options: --leave-stopped (then SIGKILL),
#                                     --file-locks, --ext-unix-sk, --unprivileged, -v4; restored
#                                     with `criu restore -d --root` (a fresh read-only bind).
#                                     Note: this CRIU dumps the whole container (its namespaces,
#                                     mounts, tmpfs contents), ferry's CRIU only the workload's
#                                     tree from inside the container: ~60 ms less CRIU work
#   ferry_ckpt_cycle MB [WHERE]       ferry, as $BUSER: checkpoint create, instance start
#                                     --criu-launch IMAGE_SIF, checkpoint instance --criu (dump),
#                                     instance start --criu-restart (restore). WHERE: mem (default:
#                                     --mem-dir, a tmpfs like bare/runc's DIR on /dev/shm), home
#                                     (~/.ferry/checkpoint) or a directory the user may write
#   runc_bundle ROOTFS BUNDLE         an OCI bundle for runc on ROOTFS (`runc spec` edited: the
#                                     rootfs in place, read-write, no terminal, no user namespace,
#                                     no network namespace — the host's, as ferry's and bare
#                                     CRIU's containers —, hostname, tmpfs /tmp, args /bin/true)
#   runc_ckpt_cycle BUNDLE MB DIR     Debian's runc with the same CRIU (runc --criu $CRIU),
#                                     `runc run -d`, `checkpoint`, `restore -d`, with
#                                     --file-locks --ext-unix-sk; the container's blkio cgroup
#                                     gets disk_up's throttles (cgroup-v1 limits do not reach
#                                     child cgroups: its restorer would read the disk unlimited)
# each {dump_ms, restore_ms, images_bytes} and, to see where the time goes:
#   dump_criu_ms, restore_criu_ms   CRIU's own time (the last timestamp of its -v4 log)
#   dump_pre_ms, restore_pre_ms     from the command's start to CRIU's start (its log's birth
#                                   time): the runtime's work before CRIU (for ferry's restore:
#                                   verifying the signed manifest, i.e. hashing the checkpoint,
#                                   and building the container); the rest is after CRIU (for
#                                   ferry's dump: hashing, sealing and publishing the generation)
#   sync_ms                         bare/runc only: `sync -f` of the images after the dump,
#                                   counted in dump_ms, as ferry fdatasyncs every file it seals
#                                   (~0 on tmpfs; on a disk a dump only counts once synced)
#   storage                         the filesystem type of the images (tmpfs, ext4, ...)
#   cold                            1 with BL_COLD=1: the images' cached pages are dropped
#                                   before the restore (a restart on another node, from a disk)
# bare/ferry add dump_step (the workload's step when dumped). images_bytes counts every file but
# CRIU's logs. The workload's check: the restored process has
# the same run id and its step advances past the first step seen after the restore, without FAIL.
#
# Start time, wall ms of a container running /bin/true {wall_ms}:
#   start_ferry_true                  `ferry exec IMAGE_SIF /bin/true` as $BUSER
#   start_runc_true BUNDLE            `runc run` (as root, a fresh container id each time)
#   start_unshare_true ROOTFS         `unshare -mpiuf --mount-proc chroot ROOTFS /bin/true`: the floor
#
# Times come from bench/tools/floor_io.c `time` (CLOCK_MONOTONIC, fork to reaped; no shell in
# between); the *_pre_ms come from file birth times, good to a few ms. Knobs: BL_TIMEOUT (s, per
# CRIU/runtime command, default 600), BL_COLD (0), BL_IPERF_PORT (5299), BL_IPERF_SECONDS (3).

# The functions run in subshells: the BL_* variables bl_time sets are meant to stay in them.
# shellcheck disable=SC2030,SC2031

BL_BIN=$BENCH_CACHE/bin
BL_IO=$BL_BIN/floor_io
BL_CTR=$BL_BIN/minictr
BL_TIMEOUT=${BL_TIMEOUT:-600}
BL_IPERF_PORT=${BL_IPERF_PORT:-5299}
BL_IPERF_SECONDS=${BL_IPERF_SECONDS:-3}
BL_COLD=${BL_COLD:-0}
BL_WORKLOAD=/usr/local/bin/stateful # inside the image

# ------------------------------------------------------------------ helpers

bl_err() { printf 'baselines: %s\n' "$*" >&2; }
bl_die() {
	bl_err "$@"
	exit 1
}

# bl_tools: the C tools of the benchmarks (bench/tools), (re)built into $BENCH_CACHE/bin when
# their source changes.
bl_tools() {
	local t src
	mkdir -p "$BL_BIN" || return 1
	for t in floor_io minictr tcpring; do
		src=$BENCH_DIR/tools/$t.c
		if ! bench_static "$src" "$BL_BIN/$t" -std=gnu11 -O2 -Wall -Wextra; then
			bl_err "cannot build $src"
			return 1
		fi
	done
}

# bl_json KEY=VALUE...: one JSON object on stdout; a VALUE that is a number stays a number.
bl_json() {
	local kv k v args=()
	for kv in "$@"; do
		k=${kv%%=*}
		v=${kv#*=}
		if [[ $v =~ ^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]]; then
			args+=(--argjson "$k" "$v")
		else
			args+=(--arg "$k" "$v")
		fi
	done
	jq -cn "${args[@]}" '$ARGS.named'
}

# bl_ms NS: nanoseconds as milliseconds with 3 decimals
bl_ms() {
	local ns=${1:-0}
	((ns < 0)) && ns=0
	printf '%d.%03d' $((ns / 1000000)) $((ns / 1000 % 1000))
}

# bl_rate BYTES NS: bytes per second (integer)
bl_rate() { awk -v b="$1" -v ns="$2" 'BEGIN { if (ns <= 0) print 0; else printf "%.0f\n", b * 1e9 / ns }'; }

# bl_time [--user] CMD...: run CMD under `floor_io time` (as $BUSER with --user), its output to
# stderr, killed after BL_TIMEOUT s. Sets BL_NS (wall ns), BL_RC (status), BL_T0 (start, epoch ns).
bl_time() {
	local out pre=()
	if [ "$1" = --user ]; then
		pre=(runuser -u "$BUSER" --)
		shift
	fi
	out=$(timeout -k 10 "$BL_TIMEOUT" "${pre[@]}" "$BL_IO" time "$@" 3>&1 1>&2)
	BL_RC=$?
	BL_NS=0 BL_T0=0
	if [ -n "$out" ]; then
		read -r BL_NS BL_RC BL_T0 <<<"$out"
	elif [ "$BL_RC" = 124 ] || [ "$BL_RC" = 137 ]; then
		bl_err "'$*' timed out after $BL_TIMEOUT s (BL_TIMEOUT)"
	fi
	[ "$BL_RC" = 0 ]
}

# bl_log_ms LOG: CRIU's own duration, the last "(SS.uuuuuu)" timestamp of its log, in ms
bl_log_ms() {
	[ -r "$1" ] || {
		echo 0
		return
	}
	grep -o '^([0-9]*\.[0-9]*)' "$1" | tail -n 1 | tr -d '()' | awk '{ printf "%.3f\n", $1 * 1000 }'
}

# bl_pre_ms LOG T0_NS: ms from T0 (epoch ns) to LOG's birth (CRIU's start); 0 when unknown
bl_pre_ms() {
	local b
	b=$(stat -c %.9W "$1" 2>/dev/null) || b=0
	b=${b/./}
	if [[ $b =~ ^[0-9]+$ ]] && ((b > 0 && b > $2)); then
		bl_ms $((b - $2))
	else
		echo 0
	fi
}

# bl_images_bytes DIR: bytes of the files in DIR, CRIU's logs excepted
bl_images_bytes() {
	find "$1" -maxdepth 1 -type f ! -name '*.log' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
}

bl_fstype() { findmnt -n -o FSTYPE --target "$1" | head -n 1; }

# bl_cold DIR: with BL_COLD=1, drop the cached pages of the images in DIR (no-op on tmpfs)
bl_cold() {
	[ "$BL_COLD" = 1 ] || return 0
	find "$1" -maxdepth 1 -type f -exec "$BL_IO" drop {} + || bl_err "cannot drop the cached images in '$1'"
}

# bl_step FILE: "STEP RUNID" of the workload's progress file; "FAIL" if it failed; nothing yet
bl_step() {
	local w n ok r run
	read -r w n ok _ r run _ 2>/dev/null <"$1" || return 0
	if [ "$w" = FAIL ]; then
		echo FAIL
	elif [ "$w" = step ] && [ "$ok" = ok ] && [ "$r" = run ] && [[ $n =~ ^[0-9]+$ ]]; then
		echo "$n $run"
	fi
}

# bl_wait_step FILE AFTER [RUNID] [TIMEOUT_S]: wait until the workload reports a step > AFTER
# (with RUNID when given); prints "STEP RUNID". Fails on FAIL, a new run id, or the timeout.
bl_wait_step() {
	local file=$1 after=$2 want=${3:-} limit=${4:-60} s n run t0=$SECONDS
	while ((SECONDS - t0 < limit)); do
		s=$(bl_step "$file")
		if [ "$s" = FAIL ]; then
			bl_err "the workload reports: $(head -c 300 "$file")"
			return 1
		fi
		if [ -n "$s" ]; then
			read -r n run <<<"$s"
			if [ -n "$want" ] && [ "$run" != "$want" ]; then
				bl_err "the workload runs with run id $run, not $want: it was restarted, not restored"
				return 1
			fi
			if ((n > after)); then
				echo "$s"
				return 0
			fi
		fi
		sleep 0.05
	done
	bl_err "the workload made no step past $after in ${limit} s ($file: $(head -c 200 "$file" 2>/dev/null))"
	return 1
}

# bl_check_restored FILE RUNID: the restored workload runs on: a first step, then a later one
bl_check_restored() {
	local s n
	s=$(bl_wait_step "$1" 0 "$2" 30) || return 1
	read -r n _ <<<"$s"
	bl_wait_step "$1" "$n" "$2" 30 >/dev/null
}

bl_need_uint() {
	if ! [[ $2 =~ ^[0-9]+$ ]] || (($2 == 0)); then
		bl_die "$1 must be a positive integer, not '$2'"
	fi
}

bl_fill_timeout() { echo $((30 + $1 / 20)); } # s to fill MB of memory (0.4 GB/s first touch, x5)

# ------------------------------------------------------------------ physical floors

floor_link() (
	set +e
	[ $# -eq 3 ] || bl_die "usage: floor_link SRC_NS DST_NS DST_IP"
	local src=$1 dst=$2 ip=$3 ns json bps
	for ns in "$src" "$dst"; do
		ip netns list | awk '{ print $1 }' | grep -qxF "$ns" || bl_die "no network namespace '$ns'"
	done
	command -v iperf3 >/dev/null || bl_die "iperf3 is not installed"
	BL_SRV_LOG=$(mktemp) || exit 1
	BL_SRV=
	# shellcheck disable=SC2317 # called by the trap
	_bl_link_cleanup() {
		[ -n "$BL_SRV" ] && kill "$BL_SRV" 2>/dev/null && wait "$BL_SRV" 2>/dev/null
		rm -f "$BL_SRV_LOG"
	}
	trap _bl_link_cleanup EXIT
	trap 'exit 130' INT TERM
	ip netns exec "$dst" iperf3 -s -1 -B "$ip" -p "$BL_IPERF_PORT" >/dev/null 2>"$BL_SRV_LOG" &
	BL_SRV=$!
	local i
	for ((i = 0; i < 100; i++)); do
		ip netns exec "$dst" ss -Hltn "sport = :$BL_IPERF_PORT" 2>/dev/null | grep -q . && break
		kill -0 "$BL_SRV" 2>/dev/null || bl_die "iperf3 server in $dst failed: $(head -c 300 "$BL_SRV_LOG")"
		sleep 0.05
	done
	((i < 100)) || bl_die "iperf3 server in $dst does not listen on $ip:$BL_IPERF_PORT"
	json=$(timeout 60 ip netns exec "$src" iperf3 -c "$ip" -p "$BL_IPERF_PORT" -t "$BL_IPERF_SECONDS" -J)
	bps=$(jq -r '.end.sum_received.bits_per_second // empty' <<<"$json" 2>/dev/null)
	[ -n "$bps" ] || bl_die "iperf3 $src -> $dst ($ip) failed: $(jq -r '.error // empty' <<<"$json" 2>/dev/null | head -c 300)"
	wait "$BL_SRV" 2>/dev/null
	BL_SRV=
	bl_json baseline=floor_link src="$src" dst="$dst" seconds="$BL_IPERF_SECONDS" \
		bytes_per_s="$(awk -v b="$bps" 'BEGIN { printf "%.0f\n", b / 8 }')"
)

floor_tmpfs_read() (
	set +e
	if [ $# -lt 1 ] || [ $# -gt 2 ]; then bl_die "usage: floor_tmpfs_read FILE [SIZE]"; fi
	local file=$1 size=${2:-} out bytes ns
	bl_tools || exit 1
	BL_MADE=
	# shellcheck disable=SC2317
	_bl_tmpfs_cleanup() { [ -n "$BL_MADE" ] && rm -f "$BL_MADE"; }
	trap _bl_tmpfs_cleanup EXIT
	trap 'exit 130' INT TERM
	if [ ! -e "$file" ]; then
		[ -n "$size" ] || bl_die "'$file' does not exist (give a SIZE to make it)"
		size=$(numfmt --from=iec "$size" 2>/dev/null) || bl_die "bad size '$2'"
		BL_MADE=$file
		"$BL_IO" write "$file" "$size" >/dev/null || bl_die "cannot write '$file'"
	fi
	[ "$(bl_fstype "$file")" = tmpfs ] || bl_die "'$file' is not on a tmpfs"
	out=$("$BL_IO" fresh "$file") || bl_die "cannot read '$file'"
	read -r bytes ns <<<"$out"
	bl_json baseline=floor_tmpfs_read bytes="$bytes" ms="$(bl_ms "$ns")" bytes_per_s="$(bl_rate "$bytes" "$ns")"
)

floor_disk() (
	set +e
	[ $# -eq 2 ] || bl_die "usage: floor_disk DIR SIZE"
	local dir=$1 size w r wb wns rb rns
	size=$(numfmt --from=iec "$2" 2>/dev/null) || bl_die "bad size '$2'"
	[ -d "$dir" ] || bl_die "no directory '$dir'"
	bl_tools || exit 1
	BL_FILE=$dir/.bl-floor.$BASHPID
	# shellcheck disable=SC2317
	_bl_disk_cleanup() { rm -f "$BL_FILE"; }
	trap _bl_disk_cleanup EXIT
	trap 'exit 130' INT TERM
	w=$("$BL_IO" write "$BL_FILE" "$size") || bl_die "synced write of $size bytes to '$dir' failed"
	r=$("$BL_IO" read "$BL_FILE") || bl_die "cold read from '$dir' failed"
	read -r wb wns <<<"$w"
	read -r rb rns <<<"$r"
	bl_json baseline=floor_disk storage="$(bl_fstype "$dir")" bytes="$wb" \
		write_ms="$(bl_ms "$wns")" read_ms="$(bl_ms "$rns")" \
		write_bytes_per_s="$(bl_rate "$wb" "$wns")" read_bytes_per_s="$(bl_rate "$rb" "$rns")"
)

bl_disk_file() { echo "/var/tmp/ferry-bench-disk${1//\//_}.img"; } # the backing file of DIR
BL_BLKIO=/sys/fs/cgroup/blkio

# bl_throttle MAJ:MIN RATE: limit reads and writes of a device on the root blkio cgroup (0: lift)
bl_throttle() {
	local f
	for f in read_bps_device write_bps_device; do
		echo "$1 $2" >"$BL_BLKIO/blkio.throttle.$f" || return 1
	done
}

# bl_blkio_rules read|write: the root blkio cgroup's throttles as OCI blockIO entries (JSON)
bl_blkio_rules() {
	awk '$1 ~ /^[0-9]+:[0-9]+$/ && $2 > 0 { split($1, d, ":"); print d[1], d[2], $2 }' \
		"$BL_BLKIO/blkio.throttle.$1_bps_device" 2>/dev/null |
		jq -cRn '[inputs | split(" ") | map(tonumber) | {major: .[0], minor: .[1], rate: .[2]}]'
}

disk_up() (
	set +e
	[ $# -eq 3 ] || bl_die "usage: disk_up DIR RATE_BYTES_PER_S SIZE_GB"
	local dir=$1 rate=$2 gb=$3 file loop dev
	bl_need_uint RATE_BYTES_PER_S "$rate"
	bl_need_uint SIZE_GB "$gb"
	[ -w "$BL_BLKIO/blkio.throttle.write_bps_device" ] || bl_die "no cgroup-v1 blkio throttling at $BL_BLKIO"
	mkdir -p "$dir" || bl_die "cannot make '$dir'"
	dir=$(cd "$dir" && pwd -P)
	mountpoint -q "$dir" && bl_die "'$dir' is already a mount point (disk_down it first)"
	file=$(bl_disk_file "$dir")
	BL_UP_OK=
	# shellcheck disable=SC2317
	_bl_up_cleanup() { [ -n "$BL_UP_OK" ] || disk_down "$dir" >/dev/null 2>&1; }
	trap _bl_up_cleanup EXIT
	trap 'exit 130' INT TERM
	rm -f "$file"
	truncate -s "${gb}G" "$file" || bl_die "cannot make '$file'"
	loop=$(losetup --direct-io=on --find --show "$file") || bl_die "losetup of '$file' failed"
	[ "$(losetup -n -O DIO "$loop" | tr -d ' ')" = 1 ] || bl_die "$loop has no direct I/O: the host's page cache would hide the disk"
	mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$loop" || bl_die "mkfs.ext4 on $loop failed"
	mount -o noatime "$loop" "$dir" || bl_die "cannot mount $loop on '$dir'"
	chmod 0755 "$dir"
	dev=$(lsblk -dno MAJ:MIN "$loop" | tr -d ' ')
	bl_throttle "$dev" "$rate" || bl_die "cannot throttle $loop ($dev)"
	grep -q "^$dev $rate\$" "$BL_BLKIO/blkio.throttle.write_bps_device" || bl_die "the throttle of $dev did not take"
	BL_UP_OK=1
	bl_err "disk $dir: $loop ($dev, direct I/O) on $file, ${gb} GB ext4, $rate bytes/s each way"
)

disk_down() (
	set +e
	[ $# -eq 1 ] || bl_die "usage: disk_down DIR"
	local dir=$1 loop dev file rc=0
	[ -d "$dir" ] && dir=$(cd "$dir" && pwd -P)
	file=$(bl_disk_file "$dir")
	loop=$(findmnt -n -o SOURCE --mountpoint "$dir" 2>/dev/null)
	if [ -n "$loop" ]; then
		umount "$dir" || umount -l "$dir" || {
			bl_err "cannot unmount '$dir'"
			rc=1
		}
	else # not mounted (a failed disk_up): the loop devices still on the file
		loop=$(losetup -n -O NAME -j "$file" 2>/dev/null)
	fi
	for loop in $loop; do
		[[ $loop == /dev/loop* ]] || continue
		dev=$(lsblk -dno MAJ:MIN "$loop" 2>/dev/null | tr -d ' ')
		[ -n "$dev" ] && grep -q "^$dev " "$BL_BLKIO/blkio.throttle.write_bps_device" "$BL_BLKIO/blkio.throttle.read_bps_device" &&
			bl_throttle "$dev" 0
		losetup -d "$loop" || rc=1
	done
	rm -f "$file"
	exit $rc
)

# ------------------------------------------------------------------ checkpoint/restore cycles

bare_criu_cycle() (
	set +e
	[ $# -eq 3 ] || bl_die "usage: bare_criu_cycle ROOTFS MB DIR"
	local rootfs=$1 mb=$2 dir=$3 s run dump_step dump_ns sync_ns t0 out
	bl_need_uint MB "$mb"
	[ -x "$rootfs$BL_WORKLOAD" ] || bl_die "'$rootfs' has no $BL_WORKLOAD"
	[ -d "$dir" ] || bl_die "no directory '$dir'"
	[ -x "$CRIU" ] || bl_die "no CRIU at '$CRIU'"
	bl_tools || exit 1
	rootfs=$(cd "$rootfs" && pwd -P)
	BL_W=$(mktemp -d "$dir/bl-bare.XXXXXX") || bl_die "cannot make a directory in '$dir'"
	BL_PID='' BL_RPID='' BL_CTRPID=''
	# shellcheck disable=SC2317
	_bl_bare_cleanup() {
		local p
		for p in $BL_PID $BL_RPID; do kill -9 "$p" 2>/dev/null; done
		[ -n "$BL_CTRPID" ] && wait "$BL_CTRPID" 2>/dev/null
		rm -rf "$BL_W"
	}
	trap _bl_bare_cleanup EXIT
	trap 'exit 130' INT TERM
	local img=$BL_W/img
	mkdir "$img" "$BL_W/root" || exit 1

	"$BL_CTR" "$rootfs" bench "$BL_WORKLOAD" --mb "$mb" --interval 200 /tmp/progress \
		>"$BL_W/pid" 2>"$BL_W/ctr.err" &
	BL_CTRPID=$!
	for ((s = 0; s < 100; s++)); do
		BL_PID=$(cat "$BL_W/pid" 2>/dev/null)
		[ -n "$BL_PID" ] && break
		kill -0 "$BL_CTRPID" 2>/dev/null || bl_die "the container did not start: $(head -c 300 "$BL_W/ctr.err")"
		sleep 0.02
	done
	[ -n "$BL_PID" ] || bl_die "the container did not start"
	s=$(bl_wait_step "/proc/$BL_PID/root/tmp/progress" 0 "" "$(bl_fill_timeout "$mb")") ||
		bl_die "the workload did not start in the bare container ($(tail -n 1 "/proc/$BL_PID/root/tmp/out.log" 2>/dev/null))"
	read -r _ run <<<"$s"

	bl_time "$CRIU" dump -t "$BL_PID" -D "$img" -o dump.log -v4 --leave-stopped \
		--file-locks --ext-unix-sk --unprivileged ||
		bl_die "criu dump failed: $(grep 'Error (' "$img/dump.log" 2>/dev/null | grep -v RLIMIT_NOFILE | tail -n 2)"
	dump_ns=$BL_NS t0=$BL_T0
	dump_step=$(bl_step "/proc/$BL_PID/root/tmp/progress")
	kill -9 "$BL_PID"
	wait "$BL_CTRPID" 2>/dev/null
	BL_PID='' BL_CTRPID=''
	bl_time sync -f "$img" || bl_die "sync of the images failed"
	sync_ns=$BL_NS
	local dump_pre dump_criu
	dump_pre=$(bl_pre_ms "$img/dump.log" "$t0")
	dump_criu=$(bl_log_ms "$img/dump.log")
	bl_cold "$img" || exit 1

	# a fresh read-only bind of ROOTFS as the new root, in a mount namespace of CRIU's own:
	# nothing is left mounted on the host
	# shellcheck disable=SC2016 # expanded by that sh
	out=$(timeout -k 10 "$BL_TIMEOUT" unshare -m --propagation private sh -c '
		mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" || exit 1
		exec "$3" time "$4" restore -d -D "$5" -o restore.log -v4 --root "$2" --pidfile "$6" \
			--file-locks --ext-unix-sk --unprivileged' \
		sh "$rootfs" "$BL_W/root" "$BL_IO" "$CRIU" "$img" "$BL_W/rpid" 3>&1 1>&2)
	BL_RPID=$(cat "$BL_W/rpid" 2>/dev/null)
	read -r BL_NS BL_RC BL_T0 <<<"$out"
	if [ "${BL_RC:-1}" != 0 ] || [ -z "$BL_RPID" ]; then
		bl_die "criu restore failed: $(grep 'Error (' "$img/restore.log" 2>/dev/null | grep -v RLIMIT_NOFILE | tail -n 2)"
	fi
	bl_check_restored "/proc/$BL_RPID/root/tmp/progress" "$run" || bl_die "the restored workload does not run on"

	bl_json baseline=bare_criu mb="$mb" storage="$(bl_fstype "$dir")" \
		dump_ms="$(bl_ms $((dump_ns + sync_ns)))" restore_ms="$(bl_ms "$BL_NS")" \
		images_bytes="$(bl_images_bytes "$img")" \
		dump_criu_ms="$dump_criu" restore_criu_ms="$(bl_log_ms "$img/restore.log")" \
		dump_pre_ms="$dump_pre" restore_pre_ms="$(bl_pre_ms "$img/restore.log" "$BL_T0")" \
		sync_ms="$(bl_ms "$sync_ns")" cold="$BL_COLD" dump_step="${dump_step%% *}"
)

ferry_ckpt_cycle() (
	set +e
	if [ $# -lt 1 ] || [ $# -gt 2 ]; then bl_die "usage: ferry_ckpt_cycle MB [mem|home|DIR]"; fi
	local mb=$1 where=${2:-mem} s run dump_ns t0 gen create=()
	bl_need_uint MB "$mb"
	[ -r "$IMAGE_SIF" ] || bl_die "no image '$IMAGE_SIF' (bench_image builds it)"
	bl_tools || exit 1
	bench_user
	BL_NAME=bl$BASHPID-$RANDOM
	case $where in
	mem)
		BL_CK=$BL_NAME create=(--mem-dir "$BL_CK")
		BL_CKDIR=$BHOME/.ferry/checkpoint/$BL_CK
		;;
	home)
		BL_CK=$BL_NAME create=("$BL_CK")
		BL_CKDIR=$BHOME/.ferry/checkpoint/$BL_CK
		;;
	/*)
		BL_CK=$where/$BL_NAME create=("$BL_CK")
		BL_CKDIR=$BL_CK
		;;
	*) bl_die "WHERE is mem, home or an absolute directory, not '$where'" ;;
	esac
	BL_PROG=$BHOME/.$BL_NAME.progress
	BL_W_OUT=$(mktemp) || exit 1
	BL_STARTED='' BL_CREATED=''
	# shellcheck disable=SC2317
	_bl_ferry_cleanup() {
		if [ -n "$BL_STARTED" ]; then
			as_buser "$FERRY" instance stop --signal KILL "$BL_NAME" >/dev/null 2>&1 ||
				as_buser "$FERRY" instance stop --force "$BL_NAME" >/dev/null 2>&1
		fi
		[ -n "$BL_CREATED" ] && as_buser "$FERRY" checkpoint delete "$BL_CK" >/dev/null 2>&1
		rm -f "$BL_PROG" "$BL_PROG".tmp.* "$BHOME/.ferry/instances/"*/"$BL_NAME".{out,err} "$BL_W_OUT"
	}
	trap _bl_ferry_cleanup EXIT
	trap 'exit 130' INT TERM
	cd "$BHOME" || exit 1 # ferry binds the current directory: one the user can reach

	as_buser "$FERRY" checkpoint create "${create[@]}" >/dev/null || bl_die "ferry checkpoint create ${create[*]} failed"
	BL_CREATED=1
	as_buser "$FERRY" instance start --criu-launch "$BL_CK" "$IMAGE_SIF" "$BL_NAME" \
		"$BL_WORKLOAD" --mb "$mb" --interval 200 "$BL_PROG" >/dev/null ||
		bl_die "ferry instance start --criu-launch failed"
	BL_STARTED=1
	s=$(bl_wait_step "$BL_PROG" 0 "" "$(bl_fill_timeout "$mb")") || bl_die "the workload did not start under ferry"
	read -r _ run <<<"$s"

	# --timings: the starter's "timing" line (its steps, monotonic ms) on its stdout
	local out=$BL_W_OUT
	bl_time --user "$FERRY" checkpoint instance --criu --timings "$BL_NAME" 2>"$out" || {
		cat "$out" >&2
		bl_die "ferry checkpoint instance --criu failed"
	}
	dump_ns=$BL_NS t0=$BL_T0
	local dump_steps
	dump_steps=$(bl_ferry_dump_steps "$out")
	gen=$(readlink -f "$BL_CKDIR/current") || bl_die "the checkpoint has no current generation"
	local dump_step dump_pre dump_criu bytes
	dump_step=$(bl_step "$BL_PROG")
	dump_pre=$(bl_pre_ms "$gen/dump.log" "$t0")
	dump_criu=$(bl_log_ms "$gen/dump.log")
	bytes=$(bl_images_bytes "$gen")
	bl_cold "$gen" || exit 1
	local ckdir_log
	ckdir_log=$(readlink -f "$BL_CKDIR")/restore.log

	bl_time --user "$FERRY" instance start --criu-restart "$BL_CK" --timings 2>"$out" || {
		cat "$out" >&2
		bl_die "ferry instance start --criu-restart failed"
	}
	local restore_steps
	restore_steps=$(bl_ferry_restore_steps "$out" "$ckdir_log")
	bl_check_restored "$BL_PROG" "$run" || bl_die "the restored workload does not run on"
	local ckdir
	ckdir=$(readlink -f "$BL_CKDIR")

	bl_json baseline=ferry mb="$mb" storage="$(bl_fstype "$gen")" \
		dump_ms="$(bl_ms "$dump_ns")" restore_ms="$(bl_ms "$BL_NS")" images_bytes="$bytes" \
		dump_criu_ms="$dump_criu" restore_criu_ms="$(bl_log_ms "$ckdir/restore.log")" \
		dump_pre_ms="$dump_pre" restore_pre_ms="$(bl_pre_ms "$ckdir/restore.log" "$BL_T0")" \
		cold="$BL_COLD" dump_step="${dump_step%% *}" | jq -c --argjson d "$dump_steps" \
		--argjson r "$restore_steps" '. + $d + $r'
)

# bl_timing FILE KEY: KEY's value in the "timing" line of FILE (a starter's output), or 0
bl_timing() {
	grep -m1 '^timing ' "$1" 2>/dev/null | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { v = $2 } END { print v + 0 }'
}

# bl_ferry_dump_steps FILE: ferry's dump in steps (ms), from the starter's timing line (monotonic
# ms): plan (its start to the freeze: the request, pinning, staging), criu (to CRIU's "dumped"
# seen by the starter, which hashes the pages CRIU writes meanwhile: CRIU, and the hashing that
# outlasts it), seal (hashing what is left, the seal, the manifest, publishing), end (the dumped
# tree's end, its memory freed: 'instance start --criu-restart' may follow at once); as JSON
bl_ferry_dump_steps() {
	local f=$1 k start freeze dumped done ended
	for k in start freeze dumped done ended; do
		printf -v "$k" '%s' "$(bl_timing "$f" "$k")"
	done
	if ((start == 0 || ended == 0)); then
		echo '{}'
		return
	fi
	bl_json dump_t_plan_ms=$((freeze - start)) dump_t_criu_ms=$((dumped - freeze)) \
		dump_t_seal_ms=$((done - dumped)) dump_t_end_ms=$((ended - done)) dump_t_starter_ms=$((ended - start))
}

# bl_ferry_restore_steps FILE LOG: ferry's restore (ms): starter (its start to the restored tree
# reported), and from CRIU's log LOG: pages_wait (CRIU's post-restore notification: ferry-criu
# waits there for the pages' hash check and counts the restored tasks) and unlock (CRIU's
# nftables unlock of its own lock table)
bl_ferry_restore_steps() {
	local f=$1 log=$2 start restored steps
	start=$(bl_timing "$f" start) restored=$(bl_timing "$f" restored)
	if ((start == 0 || restored == 0)); then
		echo '{}'
		return
	fi
	# the gap after a line matching the pattern, to the next timestamped line but its "RPC"
	steps=$(awk 'function ts(l) { return substr(l, 2, index(l, ")") - 2) + 0 }
		/^\(/ && w == 1 && !/\tRPC/ { pw = (ts($0) - t0) * 1000; w = 2 }
		/^\(/ && u == 1 { un = (ts($0) - t1) * 1000; u = 2 }
		/^\(.*Running post-restore scripts/ && !w { t0 = ts($0); w = 1 }
		/^\(.*net: Unlock network/ && !u { t1 = ts($0); u = 1 }
		END { printf "%.3f %.3f\n", pw, un }' "$log" 2>/dev/null)
	bl_json restore_t_starter_ms=$((restored - start)) restore_t_pages_wait_ms="${steps%% *}" \
		restore_t_unlock_ms="${steps##* }"
}

runc_bundle() (
	set +e
	[ $# -eq 2 ] || bl_die "usage: runc_bundle ROOTFS BUNDLE"
	local rootfs=$1 bundle=$2
	[ -x "$rootfs/bin/true" ] || bl_die "'$rootfs' is no root filesystem (no /bin/true)"
	command -v runc >/dev/null || bl_die "runc is not installed"
	rootfs=$(cd "$rootfs" && pwd -P)
	if ! mkdir -p "$bundle" || ! rm -f "$bundle/config.json"; then bl_die "cannot make '$bundle'"; fi
	runc spec --bundle "$bundle" || bl_die "runc spec failed"
	if ! jq --arg root "$rootfs" '
		.root = {path: $root, readonly: false}
		| .process.terminal = false
		| .process.args = ["/bin/true"]
		| .hostname = "bench"
		| .linux.namespaces |= map(select(.type != "user" and .type != "network"))
		| del(.linux.uidMappings, .linux.gidMappings)
		| .mounts += [{destination: "/tmp", type: "tmpfs", source: "tmpfs",
			       options: ["nosuid", "nodev", "mode=1777"]}]' \
		"$bundle/config.json" >"$bundle/config.json.tmp" ||
		! mv "$bundle/config.json.tmp" "$bundle/config.json"; then
		rm -f "$bundle/config.json.tmp"
		bl_die "cannot edit $bundle/config.json"
	fi
)

runc_ckpt_cycle() (
	set +e
	[ $# -eq 3 ] || bl_die "usage: runc_ckpt_cycle BUNDLE MB DIR"
	local bundle=$1 mb=$2 dir=$3 s run dump_ns sync_ns t0 pid
	bl_need_uint MB "$mb"
	[ -r "$bundle/config.json" ] || bl_die "no bundle at '$bundle' (runc_bundle makes one)"
	[ -d "$dir" ] || bl_die "no directory '$dir'"
	bl_tools || exit 1
	BL_W=$(mktemp -d "$dir/bl-runc.XXXXXX") || bl_die "cannot make a directory in '$dir'"
	BL_ID=bl-$BASHPID-$RANDOM BL_RUN=
	# shellcheck disable=SC2317
	_bl_runc_cleanup() {
		if [ -n "$BL_RUN" ]; then
			runc kill "$BL_ID" KILL >/dev/null 2>&1
			runc delete -f "$BL_ID" >/dev/null 2>&1
		fi
		rm -rf "$BL_W"
	}
	trap _bl_runc_cleanup EXIT
	trap 'exit 130' INT TERM
	local img=$BL_W/img b=$BL_W/bundle
	mkdir "$img" "$b" || exit 1
	# the workload's own stdio inside the container, so CRIU sees no outside file; and the
	# root blkio cgroup's throttles (disk_up) in the container's own cgroup, else the restorer
	# (in that cgroup) would read a throttled disk unthrottled
	jq --arg w "$BL_WORKLOAD" --arg mb "$mb" --argjson rd "$(bl_blkio_rules read)" \
		--argjson wr "$(bl_blkio_rules write)" '.process.args = ["/bin/sh", "-c",
		"exec \"$0\" \"$@\" </dev/null >>/tmp/out.log 2>&1",
		$w, "--mb", $mb, "--interval", "200", "/tmp/progress"]
		| if ($rd + $wr | length) > 0 then .linux.resources.blockIO += {
			throttleReadBpsDevice: $rd, throttleWriteBpsDevice: $wr} else . end' \
		"$bundle/config.json" >"$b/config.json" || bl_die "cannot write $b/config.json"

	BL_RUN=1
	runc run -d --bundle "$b" "$BL_ID" </dev/null >/dev/null 2>"$BL_W/run.err" ||
		bl_die "runc run failed: $(head -c 300 "$BL_W/run.err")"
	pid=$(runc state "$BL_ID" | jq -r .pid)
	s=$(bl_wait_step "/proc/$pid/root/tmp/progress" 0 "" "$(bl_fill_timeout "$mb")") ||
		bl_die "the workload did not start under runc"
	read -r _ run <<<"$s"

	bl_time runc --criu "$CRIU" checkpoint --image-path "$img" --file-locks --ext-unix-sk "$BL_ID" ||
		bl_die "runc checkpoint failed: $(grep 'Error (' "$img/dump.log" 2>/dev/null | grep -v RLIMIT_NOFILE | tail -n 2)"
	dump_ns=$BL_NS t0=$BL_T0
	local dump_pre dump_criu
	dump_pre=$(bl_pre_ms "$img/dump.log" "$t0")
	dump_criu=$(bl_log_ms "$img/dump.log")
	bl_time sync -f "$img" || bl_die "sync of the images failed"
	sync_ns=$BL_NS
	bl_cold "$img" || exit 1

	bl_time runc --criu "$CRIU" restore -d --bundle "$b" --image-path "$img" --file-locks --ext-unix-sk \
		"$BL_ID" </dev/null ||
		bl_die "runc restore failed: $(grep 'Error (' "$img/restore.log" 2>/dev/null | grep -v RLIMIT_NOFILE | tail -n 2)"
	pid=$(runc state "$BL_ID" | jq -r .pid)
	bl_check_restored "/proc/$pid/root/tmp/progress" "$run" || bl_die "the restored workload does not run on"

	bl_json baseline=runc mb="$mb" storage="$(bl_fstype "$dir")" \
		dump_ms="$(bl_ms $((dump_ns + sync_ns)))" restore_ms="$(bl_ms "$BL_NS")" \
		images_bytes="$(bl_images_bytes "$img")" \
		dump_criu_ms="$dump_criu" restore_criu_ms="$(bl_log_ms "$img/restore.log")" \
		dump_pre_ms="$dump_pre" restore_pre_ms="$(bl_pre_ms "$img/restore.log" "$BL_T0")" \
		sync_ms="$(bl_ms "$sync_ns")" cold="$BL_COLD"
)

# ------------------------------------------------------------------ start time

start_ferry_true() (
	set +e
	[ $# -eq 0 ] || bl_die "usage: start_ferry_true"
	[ -r "$IMAGE_SIF" ] || bl_die "no image '$IMAGE_SIF' (bench_image builds it)"
	bl_tools || exit 1
	bench_user
	cd "$BHOME" || exit 1
	bl_time --user "$FERRY" exec "$IMAGE_SIF" /bin/true || bl_die "ferry exec $IMAGE_SIF /bin/true failed"
	bl_json baseline=start_ferry_true wall_ms="$(bl_ms "$BL_NS")"
)

start_runc_true() (
	set +e
	[ $# -eq 1 ] || bl_die "usage: start_runc_true BUNDLE"
	[ -r "$1/config.json" ] || bl_die "no bundle at '$1' (runc_bundle makes one)"
	bl_tools || exit 1
	BL_ID=bl-true-$BASHPID-$RANDOM
	# shellcheck disable=SC2317
	_bl_true_cleanup() { runc delete -f "$BL_ID" >/dev/null 2>&1; }
	trap _bl_true_cleanup EXIT
	trap 'exit 130' INT TERM
	bl_time runc run --bundle "$1" "$BL_ID" </dev/null || bl_die "runc run of /bin/true failed"
	bl_json baseline=start_runc_true wall_ms="$(bl_ms "$BL_NS")"
)

start_unshare_true() (
	set +e
	[ $# -eq 1 ] || bl_die "usage: start_unshare_true ROOTFS"
	[ -x "$1/bin/true" ] || bl_die "'$1' is no root filesystem (no /bin/true)"
	bl_tools || exit 1
	bl_time unshare -mpiuf --mount-proc chroot "$1" /bin/true || bl_die "unshare ... chroot $1 /bin/true failed"
	bl_json baseline=start_unshare_true wall_ms="$(bl_ms "$BL_NS")"
)
