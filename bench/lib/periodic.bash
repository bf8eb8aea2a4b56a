# shellcheck shell=bash
# periodic.bash — checkpoints of a running job, and the one a preemption asks for (source after
# cluster.bash and mig.bash).
#
# periodic_measure MODE MB REP: the synthetic workload (MB MiB) as a resumable run of the
# benchmark user on $SRC, `ferry exec --checkpoint DIR --checkpoint-every 1s --keep 1`, its
# checkpoint DIR on the shared disk; MODE "staged" (ferry.conf's default: node-local memory
# first, drained while the job runs) or "direct" ('checkpoint staging = no'). After
# PERIODIC_GENS periodic generations, SIGTERM (what Slurm sends at preemption): ferry dumps the
# job, which stops, syncs the generation and exits 75. Emits to suite "periodic" one line:
#   pause_ms     the job's pause for a periodic checkpoint (freeze to running again), median of
#                the generations (ferry run's own report of each: the starter's clock)
#   drain_ms     staged: from running again to the generation synced on the shared disk
#   preempt_ms   SIGTERM to ferry's exit, the stopped job's generation synced: what must fit in
#                the site's grace time
#   local_bps    the node-local write rate, measured on the staging tmpfs just before (floor_io
#                write: incompressible data, as CRIU writes pages)
#   bytes        the generation's size
#
# The shared disk's client keeps at most PERIODIC_DIRTY bytes (64 MiB) of dirty data during
# this suite (strict_limit and max_bytes on its bdi, restored afterwards), as the client of a
# parallel or network filesystem bounds it: without that bound this VM's 24 GB of page cache
# would hide a 100 MB/s disk from any dump of a few GiB until the next sync, which is not what
# a cluster's shared filesystem does.

PERIODIC_DIRTY=${PERIODIC_DIRTY:-67108864}
PERIODIC_GENS=${PERIODIC_GENS:-2}
PERIODIC_DROPIN=/etc/ferry/ferry.conf.d/50-ferry-bench-periodic.conf

# periodic_bdi: the sysfs directory of the shared disk's bdi
periodic_bdi() { echo "/sys/class/bdi/$(findmnt -no MAJ:MIN "$SHARED" | tr -d " ")"; }

# periodic_dirty_bound on|off: the shared disk's dirty data bounded to PERIODIC_DIRTY, or as before
periodic_dirty_bound() {
	local bdi
	bdi=$(periodic_bdi)
	if [ "$1" = on ]; then
		[ -w "$bdi/max_bytes" ] || die "periodic: no $bdi/max_bytes (a kernel before 6.2?)"
		PERIODIC_SAVED="$(cat "$bdi/strict_limit") $(cat "$bdi/max_ratio")"
		echo 1 >"$bdi/strict_limit" && echo "$PERIODIC_DIRTY" >"$bdi/max_bytes" ||
			die "periodic: cannot bound the dirty data of $bdi"
	elif [ -n "${PERIODIC_SAVED:-}" ]; then
		echo "${PERIODIC_SAVED% *}" >"$bdi/strict_limit"
		echo "${PERIODIC_SAVED#* }" >"$bdi/max_ratio"
		PERIODIC_SAVED=
	fi
}

periodic_cleanup() {
	rm -f "$PERIODIC_DROPIN"
	[ -z "${SHARED:-}" ] || ! mountpoint -q "$SHARED" 2>/dev/null || periodic_dirty_bound off
}

# periodic_measure MODE MB REP
periodic_measure() {
	local mode=$1 mb=$2 rep=$3 dir err pidf pid i t0 t1 rc local_bps gens
	bl_tools || die "periodic: no floor_io"
	dir=$SHARED/periodic-$BUSER
	err=$BENCH_WORK/periodic.err
	pidf=$BHOME/bench-periodic.pid
	rm -rf "$dir" "$pidf" /dev/shm/ferry-bench-local
	mkdir -p "$dir"
	chown "$BUSER:" "$dir"
	# the shared disk is where the run's checkpoint is, and the run binds a directory of it into
	# the container (as an admin allows a cluster's scratch filesystem); ferry.conf's own /tmp kept
	case $mode in
	staged | direct) ;;
	*) die "periodic: unknown mode '$mode'" ;;
	esac
	{
		echo "# bench/lib/periodic.bash (removed when the suite ends)"
		echo "allow bind path = /tmp"
		echo "allow bind path = $SHARED"
		[ "$mode" = staged ] || echo "checkpoint staging = no"
	} >"$PERIODIC_DROPIN"
	# the node-local write rate, now, on the tmpfs the staging uses
	local_bps=$("$BL_IO" write /dev/shm/ferry-bench-local $((mb << 20)) | awk '{ printf "%.0f", $1 / ($2 / 1e9) }')
	rm -f /dev/shm/ferry-bench-local
	[ -n "$local_bps" ] || die "periodic: the local write rate could not be measured"
	PROG=$BHOME/bench-progress
	rm -f "$PROG"
	on "$SRC" sh -c 'echo $$ > "$1"; shift; exec "$@"' sh "$pidf" "$FERRY" exec --checkpoint "$dir/ck" \
		--checkpoint-every 1s --keep 1 "$IMAGE_SIF" /usr/local/bin/stateful --mb "$mb" --interval 100 \
		"$PROG" >/dev/null 2>"$err" &
	local bg=$!
	for ((i = 0; i < 600 * 10; i++)); do
		gens=$(grep -c 'generation [0-9]* written' "$err")
		[ "$gens" -ge "$PERIODIC_GENS" ] && break
		kill -0 "$bg" 2>/dev/null || break
		sleep 0.1
	done
	[ "${gens:-0}" -ge "$PERIODIC_GENS" ] || die "periodic: $mode $mb MiB: no $PERIODIC_GENS generations: $(tail -3 "$err")"
	pid=$(cat "$pidf")
	t0=$(date +%s%N)
	kill -TERM "$pid"
	wait "$bg"
	rc=$?
	t1=$(date +%s%N)
	[ $rc -eq 75 ] || die "periodic: $mode $mb MiB: ferry exited $rc on SIGTERM, not 75: $(tail -3 "$err")"
	grep -q 'stopped in generation' "$err" || die "periodic: no stopped generation: $(tail -3 "$err")"
	# "generation N written (X MiB, the program paused P s[; staged ..., synced to 'DIR' D s later])"
	grep 'generation [0-9]* written' "$err" | head -n "$PERIODIC_GENS" |
		sed -E 's/.*written \(([0-9.]+) MiB, the program paused ([0-9.]+) s(; staged.* ([0-9.]+) s later)?\).*/\1 \2 \4/' |
		jq -R -s -c --arg mode "$mode" --argjson mb "$mb" --argjson rep "$rep" --argjson local "$local_bps" \
			--argjson preempt $(((t1 - t0) / 1000000)) --arg run "${BENCH_RUN_ID:-adhoc}" '
			def med: sort | if length == 0 then null elif length % 2 == 1 then .[(length - 1) / 2]
				else (.[length / 2 - 1] + .[length / 2]) / 2 end;
			[split("\n")[] | select(length > 0) | split(" ") | map(select(length > 0) | tonumber)] as $g
			| {suite: "periodic", run: $run, mode: $mode, mb: $mb, rep: $rep, local_bps: $local,
			   bytes: ($g | map(.[0] * 1048576) | med | round),
			   pause_ms: ($g | map(.[1] * 1000) | med | round),
			   drain_ms: ($g | map(.[2] // empty) | map(. * 1000) | if length > 0 then (med | round) else null end),
			   preempt_ms: $preempt}' >>"$RAW/periodic.jsonl" ||
		die "periodic: the generations' reports could not be read: $(grep 'written' "$err" | head -3)"
	rm -rf "$dir"
}
