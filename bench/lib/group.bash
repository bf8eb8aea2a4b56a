# shellcheck shell=bash
# group.bash — ferry checkpoint group against its members' own checkpoints (source after
# cluster.bash and baselines.bash).
#
# group_measure N MB REP: N members, each the synthetic workload of MB MiB in a checkpointable
# instance of the benchmark user on $SRC, their checkpoints on the node's tmpfs (--mem-dir: what
# is measured is ferry, not a disk that N writers share). First each member alone (`ferry
# checkpoint instance --criu --leave-running`, one after the other), then all of them at one cut
# (`ferry checkpoint group --leave-running`). Emits to suite "group" one line:
#   alone_max_ms  the slowest member's own checkpoint (the issue's baseline)
#   alone_sum_ms  the members' own checkpoints one after the other (on one node, N dumps share
#                 its CPUs and memory bandwidth: the floor of N at once is near this, not the max)
#   group_ms      the group checkpoint, command to exit: every member's pause is within it (a
#                 member is frozen from its dump's start until every generation is published)
#   bytes         the group's images

GROUP_NAMES=()

# group_members N MB: starts members bgN-1..bgN-N; their names in GROUP_NAMES.
group_members() {
	local n=$1 mb=$2 i name
	GROUP_NAMES=()
	for ((i = 1; i <= n; i++)); do
		name=bg$n-$i
		as_buser "$FERRY" checkpoint delete "$name" >/dev/null 2>&1
		on "$SRC" "$FERRY" checkpoint create --mem-dir "$name" >/dev/null || die "group: checkpoint create $name"
		on "$SRC" "$FERRY" instance start --criu-launch "$name" "$IMAGE_SIF" "$name" \
			"$BL_WORKLOAD" --mb "$mb" --interval 200 "$BHOME/.$name.progress" >/dev/null ||
			die "group: instance start $name"
		GROUP_NAMES+=("$name")
	done
	for name in "${GROUP_NAMES[@]}"; do
		bl_wait_step "$BHOME/.$name.progress" 0 "" "$(bl_fill_timeout "$mb")" >/dev/null ||
			die "group: $name does not run"
	done
}

group_cleanup() {
	local name
	for name in "${GROUP_NAMES[@]}"; do
		on "$SRC" "$FERRY" instance stop --signal KILL "$name" >/dev/null 2>&1
		as_buser "$FERRY" checkpoint delete "$name" >/dev/null 2>&1
		rm -f "$BHOME/.$name.progress" "$BHOME/.$name.progress".tmp.*
	done
	GROUP_NAMES=()
}

# group_time CMD...: wall ms of CMD, as the benchmark user on $SRC; fails with it.
group_time() {
	local t0 t1
	t0=$(date +%s%N)
	on "$SRC" "$@" >/dev/null || return 1
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}

group_measure() {
	local n=$1 mb=$2 rep=$3 name ms max=0 sum=0 group bytes=0 gen
	group_members "$n" "$mb"
	for name in "${GROUP_NAMES[@]}"; do
		ms=$(group_time "$FERRY" checkpoint instance --criu --leave-running "$name") || die "group: own checkpoint of $name"
		((ms > max)) && max=$ms
		sum=$((sum + ms))
	done
	group=$(group_time "$FERRY" checkpoint group --leave-running "${GROUP_NAMES[@]}") || die "group: checkpoint group of $n"
	for name in "${GROUP_NAMES[@]}"; do
		gen=$(readlink -f "$BHOME/.ferry/checkpoint/$name/current") || die "group: $name has no generation"
		bytes=$((bytes + $(bl_images_bytes "$gen")))
		bl_wait_step "$BHOME/.$name.progress" 0 "" 30 >/dev/null || die "group: $name does not run on"
	done
	jq -cn --argjson n "$n" --argjson mb "$mb" --argjson rep "$rep" --argjson alone_max_ms "$max" \
		--argjson alone_sum_ms "$sum" --argjson group_ms "$group" --argjson bytes "$bytes" \
		'$ARGS.named' >>"$RAW/group.jsonl"
	say "group: $n x $mb MiB: alone max $max ms, alone sum $sum ms, group $group ms"
	group_cleanup
}
