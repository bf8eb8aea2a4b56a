# shellcheck shell=bash
# cluster.bash — the simulated cluster the benchmarks run on (source after common.bash and
# baselines.bash).
#
#   - two compute nodes bnodeA, bnodeB and a host bpeer: network namespaces on their own bridge
#     (tests/lib/nodes.sh with NODES_PREFIX=b, so a test suite's cluster can exist beside it),
#     the link shaped with tbf in both directions at $LINK (default 1gbit, as in the paper;
#     LINK=unlimited for none);
#   - the "shared filesystem" of default-mode migrations: ext4 on a loop device throttled to
#     $DISK_RATE bytes/s (default 100 MB/s, as in the paper) with cgroup-v1 blkio on the root
#     cgroup (disk_up in baselines.bash);
#   - one ferryd per node, each in its own memory cgroup (/sys/fs/cgroup/memory/ferry-bench/NODE):
#     what a node runs for a migration (ferryd, ferry-starter, CRIU, the restored instance, the
#     tmpfs pages it receives) is charged there, so memory.max_usage_in_bytes is the node's peak.
#
# Addresses: 198.18.0.0/15 only, only inside these namespaces.

LINK=${LINK:-1gbit}
DISK_RATE=${DISK_RATE:-104857600}
DISK_GB=${DISK_GB:-12}
NODES_PREFIX=b # read by nodes.sh
export NODES_PREFIX
SRC=bnodeA
DST=bnodeB
BPORT=7800
SHARED=$BENCH_WORK/shared       # the throttled disk's mount point
TMPFS_OF() { echo "/dev/shm/ferry-bench-$1"; }
MEMCG=/sys/fs/cgroup/memory/ferry-bench
declare -gA FERRYD_PID=()

# shellcheck source=../../tests/lib/nodes.sh
source "$FERRY_SRC/tests/lib/nodes.sh"

other() { if [ "$1" = "$SRC" ]; then echo "$DST"; else echo "$SRC"; fi; }

# cluster_up: nodes, disk, ferryds. Idempotent after a crashed run (it tears down first).
cluster_up() {
	cluster_down
	LINK_RATE=$LINK nodes_up
	mkdir -p "$BENCH_WORK"
	if [ "${NO_DISK:-}" = 1 ]; then
		mkdir -p "$SHARED"
	else
		disk_up "$SHARED" "$DISK_RATE" "$DISK_GB" || die "cannot set up the throttled disk"
	fi
	chmod 0755 "$SHARED"
	local n
	for n in "$SRC" "$DST"; do
		mkdir -p "$MEMCG/$n"
		ferryd_up "$n"
	done
}

cluster_down() {
	local n
	for n in "$SRC" "$DST"; do
		ferryd_down "$n"
		rm -rf "$(TMPFS_OF "$n")"
	done
	nodes_down
	if mountpoint -q "$SHARED" 2>/dev/null; then
		disk_down "$SHARED"
	fi
	rm -rf "$SHARED"
	for n in "$SRC" "$DST"; do
		[ -d "$MEMCG/$n" ] || continue
		# what is left in the group (nothing, normally) goes back to the root group first
		while read -r p; do echo "$p" >/sys/fs/cgroup/memory/cgroup.procs; done <"$MEMCG/$n/cgroup.procs" 2>/dev/null
		rmdir "$MEMCG/$n" 2>/dev/null || true
	done
	rmdir "$MEMCG" 2>/dev/null || true
}

# ferryd_up NODE: ferryd for NODE in NODE's memory cgroup; waits until it listens.
ferryd_up() {
	local n=$1 o log i
	o=$(other "$n")
	log=$BENCH_WORK/ferryd-$n.log
	(
		echo "$BASHPID" >"$MEMCG/$n/cgroup.procs"
		exec ip netns exec "$n" "$FERRYD" --node "$n" --listen "${NODE_IP[$n]}:$BPORT" \
			--peer "$o=${NODE_IP[$o]}:$BPORT" --shared-dir "$SHARED" --tmpfs-dir "$(TMPFS_OF "$n")" \
			>>"$log" 2>&1 </dev/null
	) &
	FERRYD_PID[$n]=$!
	for ((i = 0; i < 200; i++)); do
		grep -q "listening on" "$log" 2>/dev/null && return 0
		kill -0 "${FERRYD_PID[$n]}" 2>/dev/null || break
		sleep 0.05
	done
	die "ferryd on $n did not start: $(tail -3 "$log")"
}

ferryd_down() {
	local p=${FERRYD_PID[$1]:-}
	[ -n "$p" ] || return 0
	kill "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
	unset "FERRYD_PID[$1]"
}

# on NODE CMD...: CMD as the benchmark user in NODE, inside NODE's memory cgroup (so that an
# instance started there is charged to the node).
on() {
	local n=$1
	shift
	(
		echo "$BASHPID" >"$MEMCG/$n/cgroup.procs"
		exec ip netns exec "$n" runuser -u "$BUSER" -- env -C "$BHOME" "$@"
	)
}

# node_mem_reset NODE / node_mem_peak NODE: the node's peak memory (bytes) since the reset.
node_mem_reset() { echo 0 >"$MEMCG/$1/memory.max_usage_in_bytes"; }
node_mem_peak() { cat "$MEMCG/$1/memory.max_usage_in_bytes"; }

# node_user_rss NODE: the resident memory (bytes) of the benchmark user's processes charged to
# NODE: the instance (its init and the application).
node_user_rss() {
	local uid p kb sum=0
	uid=$(id -u "$BUSER")
	while read -r p; do
		[ "$(stat -c %u "/proc/$p" 2>/dev/null)" = "$uid" ] || continue
		kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
		sum=$((sum + ${kb:-0}))
	done <"$MEMCG/$1/cgroup.procs"
	echo $((sum * 1024))
}

# ferryd_hwm_watch FILE: until killed, every 50 ms, the largest VmHWM (bytes) of any ferryd
# process (the daemons and their connection handlers) of both nodes, written to FILE.
ferryd_hwm_watch() {
	local out=$1 max=0 p kb n
	while :; do
		for n in "$SRC" "$DST"; do
			while read -r p; do
				[ "$(cat "/proc/$p/comm" 2>/dev/null)" = ferryd ] || continue
				kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
				if [ -n "$kb" ] && ((kb * 1024 > max)); then
					max=$((kb * 1024))
					echo "$max" >"$out"
				fi
			done <"$MEMCG/$n/cgroup.procs"
		done
		sleep 0.05
	done
}
