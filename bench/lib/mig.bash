# shellcheck shell=bash
# mig.bash — one migration of one workload, measured (source after cluster.bash).
#
# mig_synthetic MODE MB FROM: the synthetic workload (tests/workloads/stateful.c: MB MiB of
# incompressible memory, every MiB checksummed, re-verified continuously) in a checkpointable
# instance of the benchmark image on node FROM, migrated to the other node with `ferry migrate
# --mode MODE --json`. Emits to suite "migrate" one line: the report's phases, plus
#   rss          resident memory of the instance just before the migration (bytes)
#   dest_peak    peak memory charged to the destination node during the migration (bytes:
#                ferryd, starter, CRIU, tmpfs pages, the restored instance)
#   ferryd_hwm   the largest resident set of any ferryd process on either node (bytes)
#   overhead_ms  total - (dump + sync|transfer + restore): request, prepare and teardown
#   verified     1 when the workload runs on the destination and its memory checks out
#   rate_before, rate_postcopy   live: the workload's steps a second in the 3 s before the
#                migration, and from its first step on the destination to the end of ferry
#                migrate (the post-copy window: the pages it has not yet got come on demand)
# A failed migration or a workload that does not check out after it is an error of the run.

MIG_INSTANCE=bench-synth
MIG_CK=bench-synth

# buser_ckpt_dirs_clean: the checkpoints migrations leave behind (ferry keeps them; the
# benchmark must not fill the tmpfs or the disk with them).
buser_ckpt_dirs_clean() {
	local uid n
	uid=$(id -u "$BUSER")
	rm -rf "${SHARED:?}/$uid" "${BHOME:?}/.ferry/checkpoint/$MIG_CK"
	for n in "$SRC" "$DST"; do rm -rf "$(TMPFS_OF "$n")/${uid:?}"; done
}

# wait_steps FILE N TIMEOUT [RUNID]: until the workload (tests/workloads/stateful.c) has done N
# steps past the current one, under RUNID when given (restored, not started again); fails on
# FAIL, another run id or the timeout (bl_wait_step says which).
wait_steps() {
	local s n=0
	s=$(bl_step "$1")
	[[ $s =~ ^[0-9]+\  ]] && n=${s%% *}
	bl_wait_step "$1" $((n + $2 - 1)) "${4:-}" "$3" >/dev/null
}

# run_id FILE: the run id of the workload's progress file (new on every fresh start).
run_id() {
	local s
	s=$(bl_step "$1")
	[[ $s =~ ^[0-9]+\  ]] && echo "${s#* }"
}

# synth_start NODE MB: the synthetic workload in an instance on NODE, once its memory is full
# (SYNTH_ARGS: more options of stateful, e.g. --compressible).
synth_start() {
	local n=$1 mb=$2
	PROG=$BHOME/bench-progress
	rm -f "$PROG"
	buser_ckpt_dirs_clean
	on "$n" "$FERRY" checkpoint create "$MIG_CK" >/dev/null || die "checkpoint create failed"
	on "$n" "$FERRY" instance start --criu-launch "$MIG_CK" "$IMAGE_SIF" "$MIG_INSTANCE" \
		/usr/local/bin/stateful --mb "$mb" --interval 500 --verify 4 ${SYNTH_ARGS:-} "$PROG" >/dev/null ||
		die "instance start failed"
	# the memory is filled before the first step; the second shows it running steadily
	wait_steps "$PROG" 2 $((30 + mb / 50)) || die "the synthetic workload did not start"
}

synth_stop() {
	local n
	for n in "$SRC" "$DST"; do
		on "$n" "$FERRY" instance stop "$MIG_INSTANCE" >/dev/null 2>&1 || true
	done
	buser_ckpt_dirs_clean
}

# mig_measure MODE FROM: migrate the running $MIG_INSTANCE from FROM; prints the report (JSON)
# with the measurements of the harness added.
mig_measure() {
	local mode=$1 from=$2 to rss out hwm_pid rc
	shift 2
	to=$(other "$from")
	rss=$(node_user_rss "$from")
	node_mem_reset "$to"
	rm -f "$BENCH_WORK/hwm" "$BENCH_WORK/steps"
	ferryd_hwm_watch "$BENCH_WORK/hwm" &
	hwm_pid=$!
	local steps_pid="" t_mig
	# the progress rate before and during post-copy: the synthetic workload's steps (an
	# application reports none)
	if [ "$mode" = live ] && [ "$MIG_INSTANCE" = bench-synth ]; then
		steps_watch "$BENCH_WORK/steps" &
		steps_pid=$!
		sleep 3
	fi
	t_mig=$EPOCHREALTIME
	out=$(on "$from" "$FERRY" migrate "$MIG_INSTANCE" --to "$to" --mode "$mode" --json 2>"$BENCH_WORK/migrate.err")
	rc=$?
	local t_end=$EPOCHREALTIME
	kill "$hwm_pid" $steps_pid 2>/dev/null
	wait "$hwm_pid" $steps_pid 2>/dev/null
	[ -z "$steps_pid" ] || out=$(echo "$out" | jq -c ". + $(steps_rates "$BENCH_WORK/steps" "$t_mig" "$t_end" \
		"$(echo "$out" | jq '.downtime_ms')")")
	[ $rc -eq 0 ] || die "ferry migrate --mode $mode failed: $(cat "$BENCH_WORK/migrate.err")"
	local peak hwm
	peak=$(node_mem_peak "$to")
	hwm=$(cat "$BENCH_WORK/hwm" 2>/dev/null || echo 0)
	echo "$out" | jq -c --argjson rss "$rss" --argjson peak "$peak" --argjson hwm "$hwm" \
		'. + {rss: $rss, dest_peak: $peak, ferryd_hwm: $hwm,
		      overhead_ms: (.total_ms - .dump_ms - (.sync_ms // .transfer_ms) - .restore_ms)}'
}

# steps_watch FILE: "TIME STEP" lines, the workload's step every 20 ms, until killed.
steps_watch() {
	local s
	while :; do
		s=$(bl_step "$PROG")
		[[ $s =~ ^[0-9]+\  ]] && echo "$EPOCHREALTIME ${s%% *}"
		sleep 0.02
	done >"$1"
}

# steps_rates FILE T_MIG T_END DOWNTIME_MS: {rate_before, rate_postcopy} (steps a second) from
# steps_watch's samples: before T_MIG, and from the first new step after the pause (T_MIG plus
# the downtime) to T_END.
steps_rates() {
	awk -v tm="$2" -v te="$3" -v dt="$4" '
		$1 < tm { if (b0 == "") { b0 = $1; s0 = $2 } b1 = $1; s1 = $2; next }
		$1 >= tm + dt / 1000 && $1 <= te { if (r0 == "") { if ($2 > s1) { r0 = $1; q0 = $2 } } else { r1 = $1; q1 = $2 } }
		END {
			before = (b1 > b0) ? (s1 - s0) / (b1 - b0) : 0
			during = (r0 != "" && r1 > r0) ? (q1 - q0) / (r1 - r0) : 0
			printf "{\"rate_before\": %.3f, \"rate_postcopy\": %.3f}", before, during
		}' "$1"
}

mig_synthetic() {
	local mode=$1 mb=$2 from=$3 rep verified=0 run
	synth_start "$from" "$mb"
	run=$(run_id "$PROG")
	rep=$(mig_measure "$mode" "$from") || {
		synth_stop
		return 1
	}
	# it runs on the destination, restored (the same run), its memory intact (the workload
	# checks every chunk)
	wait_steps "$PROG" 3 60 "$run" && verified=1
	synth_stop
	[ $verified = 1 ] || die "the workload did not check out after a $mode migration of $mb MiB"
	mkdir -p "$RAW"
	echo "$rep" | jq -c --arg run "${BENCH_RUN_ID:-adhoc}" --argjson mb "$mb" --arg link "$LINK" \
		'. + {suite: "migrate", workload: "synthetic", mb: $mb, link: $link, verified: 1, run: $run}' \
		>>"$RAW/migrate.jsonl"
}

# app_measure APP SIZE MODE REP: one run of a real application (bench/lib/apps.bash) in an
# instance on $SRC, from start to its end, with (MODE diskless|default|live) or without (none) a
# migration to $DST once it is at its peak memory. Emits to suite "apps" (APP_SUITE; with the
# fields of the JSON object APP_EXTRA added): the wall time of the
# run, the time the application reports, its result (the report checks that it is the same
# with and without a migration) and, with a migration, the report's phases as in "migrate".
app_measure() {
	local app=$1 size=$2 mode=$3 rep=$4 in work t0 t1 rep_json='{}' rss=0 i
	in=$BHOME/bench-apps/in-$app-$size
	work=$BHOME/bench-apps/run-$app-$size
	if [ ! -f "$in/.prepared" ]; then
		rm -rf "$in"
		app_prepare "$app" "$size" "$in" || die "$app: preparing size $size failed"
		as_buser touch "$in/.prepared"
	fi
	synth_stop
	MIG_INSTANCE=bench-app
	rm -rf "$work"
	as_buser cp -a "$in" "$work"
	on "$SRC" "$FERRY" checkpoint create "$MIG_CK" >/dev/null || die "checkpoint create failed"
	local -a cmd
	mapfile -t cmd < <(app_cmd "$app" "$size" "$work")
	t0=$(date +%s%N)
	on "$SRC" "$FERRY" instance start --criu-launch "$MIG_CK" --pwd "$work" "$IMAGE_SIF" "$MIG_INSTANCE" \
		"${cmd[@]}" >/dev/null || die "$app: instance start failed"
	if [ "$mode" != none ]; then
		app_peak_wait "$app" "$work" 600 || case $? in
		2) die "$app $size: ended before it was at its peak, so nothing was migrated (see $work): a larger size leaves time" ;;
		*) die "$app $size: did not reach its peak in 600 s (see $work)" ;;
		esac
		rep_json=$(mig_measure "$mode" "$SRC") || die "$app $size: migration ($mode) failed"
	fi
	for ((i = 0; i < 20 * 3600; i++)); do
		app_done "$app" "$work" && break
		sleep 0.05
	done
	t1=$(date +%s%N)
	app_done "$app" "$work" || die "$app $size: did not finish"
	local result runtime
	result=$(app_result "$app" "$work")
	runtime=$(app_runtime "$app" "$work")
	synth_stop
	MIG_INSTANCE=bench-synth
	[ -n "$result" ] || die "$app $size ($mode): no result in $work"
	local suite=${APP_SUITE:-apps}
	echo "$rep_json" | jq -c --arg app "$app" --arg size "$size" --arg mode "$mode" --argjson rep "$rep" \
		--argjson wall "$(((t1 - t0) / 1000000))" --arg result "$result" --arg rt "${runtime:-}" \
		--arg run "${BENCH_RUN_ID:-adhoc}" --arg link "$LINK" --arg suite "$suite" \
		--argjson extra "${APP_EXTRA:-{\}}" \
		'. + {suite: $suite, app: $app, size: $size, mig: $mode, rep: $rep, wall_ms: $wall,
		      app_s: ($rt | tonumber? // null), result: $result, link: $link, run: $run} + $extra' \
		>>"$RAW/$suite.jsonl"
}
