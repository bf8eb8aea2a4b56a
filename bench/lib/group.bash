# shellcheck shell=bash
# group.bash — ferry checkpoint group against its members' own checkpoints (source after
# cluster.bash and baselines.bash).
#
# group_measure N MB REP NODES: N members, each the synthetic workload of MB MiB in a
# checkpointable instance of the benchmark user, on $SRC (NODES 1) or spread over $SRC and $DST
# (NODES 2: the odd members on $SRC, the even ones on $DST), their checkpoints on the tmpfs
# (--mem-dir: what is measured is ferry, not a disk that N writers share). First each member
# alone (`ferry checkpoint instance --criu --leave-running` on its node, one after the other),
# then all of them at once, each its own checkpoint (the same commands started together), then
# all of them at one cut (`ferry checkpoint group --leave-running` on $SRC, the members on $DST
# named $DST:NAME). Emits to suite "group" one line:
#   nodes         1 or 2
#   alone_max_ms  the slowest member's own checkpoint (the issue's baseline)
#   alone_sum_ms  the members' own checkpoints one after the other (on one machine, N dumps share
#                 its CPUs and memory bandwidth: the floor of N at once is near this, not the max)
#   together_ms   the members' own checkpoints started at once, to the last one's end: N dumps at
#                 the same time on these CPUs, without the group's coordination
#   group_ms      the group checkpoint, command to exit: every member's pause is within it (a
#                 member is frozen from its dump's start until every generation is published)
#   bytes         the group's images
# The two simulated nodes are one kernel on 2 CPUs: members on both nodes still share them.

GROUP_NAMES=()
declare -gA GROUP_NODE=()

# group_members N MB NODES: starts members bgN-1..bgN-N (on one node or both, as group_measure
# says); their names in GROUP_NAMES, their nodes in GROUP_NODE.
group_members() {
	local n=$1 mb=$2 nodes=$3 i name node
	GROUP_NAMES=()
	for ((i = 1; i <= n; i++)); do
		name=bg$n-$i
		node=$SRC
		[ "$nodes" = 1 ] || ((i % 2)) || node=$DST
		as_buser "$FERRY" checkpoint delete "$name" >/dev/null 2>&1
		on "$node" "$FERRY" checkpoint create --mem-dir "$name" >/dev/null || die "group: checkpoint create $name"
		on "$node" "$FERRY" instance start --criu-launch "$name" "$IMAGE_SIF" "$name" \
			"$BL_WORKLOAD" --mb "$mb" --interval 200 "$BHOME/.$name.progress" >/dev/null ||
			die "group: instance start $name on $node"
		GROUP_NAMES+=("$name")
		GROUP_NODE[$name]=$node
	done
	for name in "${GROUP_NAMES[@]}"; do
		bl_wait_step "$BHOME/.$name.progress" 0 "" "$(bl_fill_timeout "$mb")" >/dev/null ||
			die "group: $name does not run"
	done
}

group_cleanup() {
	local name
	for name in "${GROUP_NAMES[@]}"; do
		on "${GROUP_NODE[$name]:-$SRC}" "$FERRY" instance stop --signal KILL "$name" >/dev/null 2>&1
		as_buser "$FERRY" checkpoint delete "$name" >/dev/null 2>&1
		rm -f "$BHOME/.$name.progress" "$BHOME/.$name.progress".tmp.*
	done
	GROUP_NAMES=()
	GROUP_NODE=()
}

# group_time NODE CMD...: wall ms of CMD, as the benchmark user on NODE; fails with it.
group_time() {
	local t0 t1 node=$1
	shift
	t0=$(date +%s%N)
	on "$node" "$@" >/dev/null || return 1
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}

# group_together: wall ms of every member's own checkpoint, started at once on its node, to the
# last one's end; fails if one does.
group_together() {
	local t0 t1 name pids=() p bad=0
	t0=$(date +%s%N)
	for name in "${GROUP_NAMES[@]}"; do
		on "${GROUP_NODE[$name]}" "$FERRY" checkpoint instance --criu --leave-running "$name" >/dev/null &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || bad=1; done
	t1=$(date +%s%N)
	[ $bad = 0 ] && echo $(((t1 - t0) / 1000000))
}

group_measure() {
	local n=$1 mb=$2 rep=$3 nodes=${4:-1} name ms max=0 sum=0 together group bytes=0 gen args=()
	group_members "$n" "$mb" "$nodes"
	for name in "${GROUP_NAMES[@]}"; do
		ms=$(group_time "${GROUP_NODE[$name]}" "$FERRY" checkpoint instance --criu --leave-running "$name") ||
			die "group: own checkpoint of $name"
		((ms > max)) && max=$ms
		sum=$((sum + ms))
		if [ "${GROUP_NODE[$name]}" = "$SRC" ]; then args+=("$name"); else args+=("$DST:$name"); fi
	done
	together=$(group_together) || die "group: own checkpoints of $n members at once"
	group=$(group_time "$SRC" "$FERRY" checkpoint group --leave-running "${args[@]}") ||
		die "group: checkpoint group of $n on $nodes node(s)"
	for name in "${GROUP_NAMES[@]}"; do
		gen=$(readlink -f "$BHOME/.ferry/checkpoint/$name/current") || die "group: $name has no generation"
		bytes=$((bytes + $(bl_images_bytes "$gen")))
		bl_wait_step "$BHOME/.$name.progress" 0 "" 30 >/dev/null || die "group: $name does not run on"
	done
	jq -cn --argjson n "$n" --argjson nodes "$nodes" --argjson mb "$mb" --argjson rep "$rep" \
		--argjson alone_max_ms "$max" --argjson alone_sum_ms "$sum" --argjson together_ms "$together" \
		--argjson group_ms "$group" --argjson bytes "$bytes" '$ARGS.named' >>"$RAW/group.jsonl"
	say "group: $n x $mb MiB on $nodes node(s): alone max $max ms, alone sum $sum ms, together $together ms, group $group ms"
	group_cleanup
}
