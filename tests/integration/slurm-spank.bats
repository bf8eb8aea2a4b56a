#!/usr/bin/env bats
# ferry's SPANK plugin (src/spank/spank_ferry.c, ferry-slurm(7)) under a real Slurm: the cluster
# of tests/lib/slurm.bash (munged, slurmctld, slurmd on n1 and n2), its plugstack.conf loading
# the installed spank_ferry.so in sbatch, srun and slurmstepd; jobs of the unprivileged test
# user that say '--ferry-checkpoint' and run a plain 'ferry run/exec'. The workload is
# tests/workloads/stateful.c (memory checked at every step, every step printed, its run id kept
# across a restore).
#
# The administrator's side is a drop-in of ferry.conf: the checkpoints go to a shared base with a
# directory per user (/var/tmp stands in for the shared filesystem), a grace of 30 s before the
# time limit (Slurm's shortest limit is a minute).

load ../lib/common
load ../lib/checkpoint
load ../lib/slurm

BASE=/var/tmp/ft-spank-ck # 'slurm checkpoint dir'

setup_file() {
	ferry_suite_setup
	build_ckpt_workload
	rm -rf "$BASE"
	mkdir -m 1777 "$BASE"
	conf_set "slurm checkpoint dir = $BASE" "slurm grace time = 30" "allow bind path = $BASE"
	SLURM_FERRY_GRACE=30 slurm_up spank
}

teardown_file() {
	slurm_down
	ferry_suite_teardown
	rm -rf "$BASE" "$U1_HOME"/ftspank-* "$U1_HOME"/.ferry/instances/n[12]/run-*
}

setup() {
	ferry_test_setup
	use_image sqsh >/dev/null
	W=$U1_HOME/ftspank-$BATS_TEST_NUMBER # the job's directory, in the (shared) home
	rm -rf "$W"
	as_user1 mkdir -p "$W"
	JOB=
	JOB_LOG=$W/job.log
}

teardown() {
	slurm_test_teardown "$JOB_LOG"
	ferry_teardown
	rm -rf "${BASE:?}"/*
}

# user_script FILE LINES...: a batch script of user 1 made of LINES.
user_script() {
	local f=$1
	shift
	printf '%s\n' "$@" >"$f"
	chown "$U1:" "$f"
	chmod 0755 "$f"
}

# man_job_script FILE: the job script of ferry-slurm(7), between its marks, as a user copies it
# from the page: the roff escapes undone, and checked against what man shows when man is there.
man_job_script() {
	local page=$FERRY_TESTS_DIR/../docs/man/ferry-slurm.7 shown line
	sed -n '/^\.\\" job-script-begin$/,/^\.\\" job-script-end$/p' "$page" | grep -v '^\.' |
		sed 's/\\-/-/g' >"$1"
	[ "$(head -n1 "$1")" = '#!/bin/sh' ] || fail "no job script between the marks of ferry-slurm(7)"
	! grep -q '\\' "$1" || fail "the job script of ferry-slurm(7) has escapes this test does not undo: $(grep '\\' "$1")"
	if command -v man >/dev/null; then
		shown=$(MANWIDTH=200 man -l "$page" 2>/dev/null | sed 's/^ *//')
		while IFS= read -r line; do
			grep -qxF -- "$line" <<<"$shown" || fail "man ferry-slurm does not show the script's line '$line'"
		done <"$1"
	fi
	chown "$U1:" "$1"
	chmod 0755 "$1"
}

# complete_generations DIR: how many generations of the run in DIR are complete (sealed).
complete_generations() {
	local n=0 g
	for g in "$1"/ck-*; do
		[ -L "$g/current" ] && [ -f "$g/current/manifest" ] && n=$((n + 1))
	done
	echo "$n"
}

@test "slurm-spank: the job script of ferry-slurm(7) — sbatch with '#SBATCH --ferry-checkpoint': checkpointed before its time limit, requeued, resumed on n2 from where it stopped" {
	man_job_script "$W/sim.sh"
	grep -qx '#SBATCH --ferry-checkpoint=30m' "$W/sim.sh" || fail "the script lost its --ferry-checkpoint: $(cat "$W/sim.sh")"
	# what the script runs: the image and the program, as a user would put them next to it
	cp "$IMG" "$W/sim.sif"
	user_script "$W/simulate" '#!/bin/sh' "exec $STATEFUL --mb 32 --interval 100 $W/progress"
	chown "$U1:" "$W/sim.sif"
	JOB_LOG=$W/sim.log
	# the script as it is; only a time limit Slurm reaches in a test (1 minute: the checkpoint
	# comes 30 s before it, the grace of the test's ferry.conf), and a signal ferry ignores, so
	# that cli_filter.lua adds no USR1 (Slurm sends one up to 30 s before its time, which would
	# race ferry's own timing, the thing shown here; the preemption test shows the USR1)
	JOB=$(as_slurm_user "$U1" sbatch --parsable --time=1 --signal=B:URG@1 --chdir="$W" "$W/sim.sh")
	slurm_wait_job "$JOB" JobState RUNNING 30
	[ "$(slurm_job_field "$JOB" NodeList)" = n1 ]
	local ck id stopped
	# the job's name and the command's digest: the script's one command has a checkpoint of its own
	wait_log "^ferry: run '$BASE/$U1/sim-$JOB-[0-9a-f]{8}': started on n1, no checkpoint to resume from\$" 30
	ck=$(sed -nE "s|^ferry: run '($BASE/$U1/sim-$JOB-[0-9a-f]{8})': started on n1, .*|\1|p" "$JOB_LOG")
	wait_log "^ferry: run '$ck': Slurm job $JOB ends in [0-9]+ s: checkpointing (29|30) s before\$" 30
	wait_step "$W/progress" 5 30
	id=$(field_of "$W/progress" run)
	# the user's directory in the shared base, theirs alone
	[ "$(stat -c '%U %a' "$BASE/$U1")" = "$U1 700" ] || fail "$BASE/$U1: $(stat -c '%U %a' "$BASE/$U1")"

	wait_log "^ferry: run '$ck': the Slurm job's time limit is near: checkpointing and stopping\$" 60
	wait_log "^ferry: run '$ck': Slurm job $JOB requeued\$" 30
	wait_log "^ferry: run '$ck': stopped in generation 1; run the same command to resume \(exit 75\)\$" 10
	stopped=$(step_of "$W/progress")
	slurm_wait_job "$JOB" JobState PENDING 30
	[ "$(slurm_job_field "$JOB" Restarts)" = 1 ]
	[ "$(complete_generations "$ck")" = 1 ]

	resumes_on_n2 "$ck" "$stopped" "$id"
}

@test "slurm-spank: '--ferry-checkpoint=0', no --signal of the user's: a job preempted by a higher partition's gets USR1 (ferry's cli_filter.lua), checkpoints within the grace time, and resumes afterwards" {
	# n2 drained: the low job and the high one want the whole of n1
	sl scontrol update nodename=n2 state=drain reason=ferry-test
	local ck=$BASE/$U1/ftspank-low id stopped high t0 t1
	user_script "$W/job.sh" '#!/bin/sh' '#SBATCH --ferry-checkpoint=0,name=ftspank-low' \
		"exec $FERRY exec $IMG $STATEFUL --mb 32 --interval 100 $W/progress"
	JOB=$(as_slurm_user "$U1" sbatch --parsable -p low -c 2 --open-mode=append -o "$JOB_LOG" --chdir="$W" "$W/job.sh")
	slurm_wait_job "$JOB" JobState RUNNING 30
	wait_step "$W/progress" 5 30
	id=$(field_of "$W/progress" run)
	t0=$(date +%s)
	high=$(as_slurm_user "$U2" sbatch --parsable -p high -c 2 -o /dev/null --wrap "sleep 3")
	# Slurm's SIGTERM at preemption goes to the job's steps, not to the batch shell: the signal is
	# the one cli_filter.lua gave the job (B:USR1@15, half the grace), sent at preemption
	wait_log "^ferry: run '$ck': got SIGUSR1: checkpointing and stopping\$" 30
	wait_log "^ferry: run '$ck': stopped in generation 1; run the same command to resume \(exit 75\)\$" 30
	t1=$(date +%s)
	[ $((t1 - t0)) -lt 30 ] || fail "the checkpoint took $((t1 - t0)) s, beyond the grace time (30 s)"
	stopped=$(step_of "$W/progress")
	slurm_wait_job "$high" JobState RUNNING 30
	slurm_wait_job "$JOB" JobState PENDING 30
	slurm_wait_job "$high" JobState COMPLETED 30
	sl scontrol update jobid="$JOB" StartTime=now
	slurm_wait_job "$JOB" JobState RUNNING 60
	wait_log "^ferry: run '$ck': resumed on n1 from generation 1 \(taken .* on n1\)\$" 60
	wait_step "$W/progress" $((stopped + 5)) 30
	[ "$(field_of "$W/progress" run)" = "$id" ] || fail "not the same process: $(cat "$W/progress")"
	assert_log_steps_in_order
}

@test "slurm-spank: '#SBATCH --ferry-checkpoint=3s,keep=2,name=NAME': periodic generations, the newest two kept; the program's end is the job's, with its status, and the named checkpoint stays" {
	local ck=$BASE/$U1/ftspank-every
	user_script "$W/job.sh" '#!/bin/sh' '#SBATCH --ferry-checkpoint=3s,keep=2,name=ftspank-every' \
		"exec $FERRY exec $IMG $STATEFUL --mb 16 --interval 100 --until 150 --status 3 $W/progress"
	JOB=$(as_slurm_user "$U1" sbatch --parsable -o "$JOB_LOG" --chdir="$W" "$W/job.sh")
	wait_log "^ferry: run '$ck': generation 3 written " 60
	wait_log "^ferry: run '$ck': the program exited with status 3\$" 60
	slurm_wait_job "$JOB" JobState FAILED 30
	[ "$(slurm_job_field "$JOB" ExitCode)" = 3:0 ]
	# no time limit (the partition has none): no checkpoint before it
	! grep -q "ends in" "$JOB_LOG" || fail "a time limit was seen: $(grep "ends in" "$JOB_LOG")"
	[ -d "$ck" ] || fail "the named checkpoint '$ck' is gone"
	[ "$(complete_generations "$ck")" = 2 ] || fail "not 2 generations kept: $(ls "$ck")"
	assert_log_steps_in_order
	# the same job again: its named run is over, and its program does not run again; the job ends
	# with the status it ended with
	as_user1 rm -f "$W/progress"
	JOB=$(as_slurm_user "$U1" sbatch --parsable -o "$JOB_LOG" --chdir="$W" "$W/job.sh")
	wait_log "^ferry: run '$ck': the program already ended, with status 3: not run again " 60
	slurm_wait_job "$JOB" JobState FAILED 30
	[ "$(slurm_job_field "$JOB" ExitCode)" = 3:0 ]
	[ ! -e "$W/progress" ] || fail "the program ran again: $(cat "$W/progress")"
}

@test "slurm-spank: a job script of two ferry commands, with --export=NONE and a time limit in days: each command has a checkpoint of its own; requeued, the script runs the first again and the second resumes" {
	user_script "$W/two.sh" '#!/bin/sh' '#SBATCH --ferry-checkpoint=0' \
		"$FERRY exec $IMG sh -c 'echo prep >> $W/prep.log'" \
		"exec $FERRY exec $IMG $STATEFUL --mb 16 --interval 100 $W/progress"
	JOB=$(as_slurm_user "$U1" sbatch --parsable --export=NONE --time=1-00:00:00 --requeue --open-mode=append \
		-o "$JOB_LOG" --chdir="$W" "$W/two.sh")
	slurm_wait_job "$JOB" JobState RUNNING 30
	local prep main id stopped node
	wait_log "^ferry: run '$BASE/$U1/two.sh-$JOB-[0-9a-f]{8}': the program exited with status 0\$" 60
	prep=$(sed -nE "s|^ferry: run '([^']*)': the program exited with status 0\$|\1|p" "$JOB_LOG" | head -n1)
	wait_step "$W/progress" 5 30
	main=$(sed -nE "s|^ferry: run '([^']*)': started on n[12], no checkpoint to resume from\$|\1|p" "$JOB_LOG" | grep -vxF "$prep")
	[[ "$main" =~ ^$BASE/$U1/two\.sh-$JOB-[0-9a-f]{8}$ ]] || fail "the second command's checkpoint is '$main' (the first's '$prep')"
	[ ! -e "$prep" ] || fail "the first command's checkpoint stayed after its program ended"
	# a limit of a day, in Slurm's D-HH:MM:SS: the checkpoint is due 30 s before it
	wait_log "^ferry: run '$main': Slurm job $JOB ends in 8[56][0-9]{3} s: checkpointing 30 s before\$" 30
	id=$(field_of "$W/progress" run)
	# a checkpoint the batch shell is asked for (as at preemption), then the requeued job at once
	sl scancel --batch --signal=USR1 "$JOB"
	wait_log "^ferry: run '$main': Slurm job $JOB requeued\$" 60
	wait_log "^ferry: run '$main': stopped in generation 1; run the same command to resume \(exit 75\)\$" 10
	stopped=$(step_of "$W/progress")
	slurm_wait_job "$JOB" JobState PENDING 30
	sl scontrol update jobid="$JOB" StartTime=now
	slurm_wait_job "$JOB" JobState RUNNING 60
	node=$(slurm_job_field "$JOB" NodeList)
	wait_log "^ferry: run '$main': resumed on $node from generation 1 \(taken .* on n[12]\)\$" 60
	# the first command ran again from its start (its checkpoint went with its end), once per run
	[ "$(grep -c '^prep$' "$W/prep.log")" = 2 ] || fail "prep ran $(grep -c '^prep$' "$W/prep.log") times: $(cat "$JOB_LOG")"
	[ "$(grep -c "^ferry: run '$prep': started on n[12], no checkpoint to resume from\$" "$JOB_LOG")" = 2 ] ||
		fail "the first command did not start over under its own name: $(cat "$JOB_LOG")"
	wait_step "$W/progress" $((stopped + 5)) 30
	[ "$(field_of "$W/progress" run)" = "$id" ] || fail "not the same process: $(cat "$W/progress")"
	assert_log_steps_in_order
}

@test "slurm-spank: 'srun --ferry-checkpoint=2s': the step's ferry exec checkpoints every 2 s under the job's own name, ends with the program's status, and its checkpoint goes with it" {
	run as_slurm_user "$U1" timeout 120 srun --chdir="$W" --ferry-checkpoint=2s,keep=1 \
		"$FERRY" exec "$IMG" "$STATEFUL" --mb 16 --interval 100 --until 100 "$W/progress"
	echo "$output" >"$JOB_LOG"
	[ "$status" -eq 0 ] || fail "srun: exit $status: $output"
	local ck
	ck=$(sed -nE "s|^ferry: run '($BASE/$U1/ferry-[0-9]+-[0-9a-f]{8})': started on n[12], no checkpoint to resume from\$|\1|p" "$JOB_LOG")
	[ -n "$ck" ] || fail "not started under the job's name in $BASE/$U1: $output"
	grep -qE "^ferry: run '$ck': generation 2 written " "$JOB_LOG" || fail "no periodic checkpoints: $output"
	grep -qx "ferry: run '$ck': the program exited with status 0" "$JOB_LOG" || fail "$output"
	[ ! -e "$ck" ] || fail "the job's own checkpoint '$ck' stayed: $(ls -la "$ck")"
	assert_log_steps_in_order
}

@test "slurm-spank: a bad --ferry-checkpoint stops sbatch and srun with one line saying what is wrong, and nothing is submitted" {
	local last
	last=$(sl squeue -h -t all -o %i | sort -n | tail -n1)
	run as_slurm_user "$U1" sbatch --ferry-checkpoint=soon --wrap true
	[ "$status" -ne 0 ] || fail "sbatch accepted --ferry-checkpoint=soon: $output"
	[ "$(grep -c "error: --ferry-checkpoint: 'soon' is none of: an interval (90s, 30m, 2h, 1h30m), 0 (no periodic checkpoint), default, keep=N, name=NAME, grace=DURATION (see 'man ferry-slurm')\$" <<<"$output")" = 1 ] ||
		fail "$output"

	user_script "$W/job.sh" '#!/bin/sh' '#SBATCH --ferry-checkpoint=30m,keep=0' "exec $FERRY exec $IMG true"
	run as_slurm_user "$U1" sbatch --chdir="$W" "$W/job.sh"
	[ "$status" -ne 0 ] || fail "sbatch accepted keep=0: $output"
	grep -q "error: --ferry-checkpoint: 'keep=0': give keep=N once, N the number of generations to keep (1-1000)" <<<"$output" ||
		fail "$output"

	run as_slurm_user "$U1" timeout 60 srun --ferry-checkpoint=name=../x true
	[ "$status" -ne 0 ] || fail "srun accepted name=../x: $output"
	grep -q "error: --ferry-checkpoint: 'name=../x': give name=NAME once" <<<"$output" || fail "$output"

	[ "$(sl squeue -h -t all -o %i | sort -n | tail -n1)" = "$last" ] ||
		fail "a job was submitted: $(sl squeue -t all)"
}

@test "slurm-spank: ferry itself refuses a bad FERRY_SLURM_CHECKPOINT, one outside a job without name=, and a user directory in the base that is not the user's" {
	run --separate-stderr as_user1 env FERRY_SLURM_CHECKPOINT=soon "$FERRY" exec "$IMG" true
	assert_ferry_error "^ferry: FERRY_SLURM_CHECKPOINT \(from --ferry-checkpoint\): 'soon' is none of: .*; see 'man ferry-slurm'\$"
	run --separate-stderr as_user1 env -u SLURM_JOB_ID FERRY_SLURM_CHECKPOINT=30m "$FERRY" run "$IMG" true
	assert_ferry_error "FERRY_SLURM_CHECKPOINT is set but this is no Slurm job \(no SLURM_JOB_ID\): give it name=NAME"
	# another user made user 1's directory in the shared base first
	as_user2 mkdir -m 0777 "$BASE/$U1"
	run --separate-stderr as_user1 env FERRY_SLURM_CHECKPOINT=name=x "$FERRY" exec "$IMG" true
	assert_ferry_error "'$BASE/$U1' is not a directory of yours that only you can write"
	[ ! -e "$BASE/$U1/x" ]
}
