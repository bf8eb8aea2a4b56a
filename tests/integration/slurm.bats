#!/usr/bin/env bats
# ferry under a real Slurm (issue 14): a cluster of its own (tests/lib/slurm.bash: munged,
# slurmctld, and slurmd on the nodes n1 and n2, each a network namespace and so a node of ferry
# too), jobs submitted with sbatch by the unprivileged test user, 'ferry run --checkpoint' as
# the batch shell. The workload is tests/workloads/stateful.c: it checks its memory at every
# step, prints every step, and keeps the run id it drew at its start across a restore.
#
# Slurm's fastest settings (shared/FACTS.md): time limits are in minutes and slurmctld sends
# --signal only at its periodic check (about 30 s); a requeued job waits about 121 s, which
# `scontrol update jobid=J StartTime=now` (as an admin would) cuts short.

load ../lib/common
load ../lib/checkpoint
load ../lib/slurm

setup_file() {
	ferry_suite_setup
	build_ckpt_workload
	slurm_up
}

teardown_file() {
	slurm_down
	ferry_suite_teardown
	rm -rf "$U1_HOME"/ftslurm-* "$U1_HOME"/.ferry/instances/n[12]/run-ck.*
}

setup() {
	ferry_test_setup
	use_image sqsh >/dev/null
	W=$U1_HOME/ftslurm-$BATS_TEST_NUMBER # the shared filesystem: the homes, on one machine
	rm -rf "$W"
	as_user1 mkdir -p "$W"
	JOB=
}

teardown() {
	slurm_test_teardown "$W/job.log"
	conf_restore
	ferry_teardown
	as_user1 "$FERRY" checkpoint delete "$W/ck" >/dev/null 2>&1 || true
}

# job_script FILE ARGS...: a batch script of user 1 that runs 'ferry ARGS' as the batch shell.
job_script() {
	local f=$1
	shift
	{
		echo '#!/bin/sh'
		echo 'echo "job $SLURM_JOB_ID on $(hostname), restart ${SLURM_RESTART_COUNT:-0}"'
		printf 'exec %s' "$FERRY"
		printf ' %q' "$@"
		echo
	} >"$f"
	chown "$U1:" "$f"
	chmod 0755 "$f"
}

@test "slurm: the test cluster runs the user's jobs on n1 and n2, each a node of ferry" {
	local n out
	for n in n1 n2; do
		job_script "$W/id.sh" exec "$IMG" sh -c 'echo "inside $(id -un)"'
		run as_slurm_user "$U1" sbatch --parsable --wait -w "$n" -o "$W/id-$n.log" --chdir="$W" "$W/id.sh"
		[ "$status" -eq 0 ] || fail "sbatch -w $n: $output"
		out=$(cat "$W/id-$n.log")
		grep -q "^job [0-9]* on $n, restart 0\$" <<<"$out" || fail "$out"
		grep -q "^inside $U1\$" <<<"$out" || fail "$out"
	done
	# the two nodes are two network namespaces: ferry keeps their instance records apart
	[ "$(slurm_ns "${SLURM_NODE_NS[n1]}" readlink /proc/self/ns/net)" != \
		"$(slurm_ns "${SLURM_NODE_NS[n2]}" readlink /proc/self/ns/net)" ]
}

@test "slurm: a job at its time limit (--signal=B:USR1) checkpoints, is requeued, and resumes on n2 with n1 drained, from where it stopped" {
	job_script "$W/job.sh" exec --checkpoint "$W/ck" --requeue "$IMG" \
		"$STATEFUL" --mb 64 --interval 100 "$W/progress"
	# one minute, USR1 45 s before the end: the signal comes 15 to about 45 s after the start
	JOB=$(as_slurm_user "$U1" sbatch --parsable --time=1 --signal=B:USR1@45 --requeue --open-mode=append \
		-o "$W/job.log" --chdir="$W" "$W/job.sh")
	slurm_wait_job "$JOB" JobState RUNNING 30
	[ "$(slurm_job_field "$JOB" NodeList)" = n1 ]
	wait_step "$W/progress" 5 30
	local id stopped
	id=$(field_of "$W/progress" run)

	wait_log "^ferry: run '$W/ck': got SIGUSR1: checkpointing and stopping\$" 90
	wait_log "^ferry: run '$W/ck': Slurm job $JOB requeued\$" 30
	wait_log "^ferry: run '$W/ck': stopped in generation 1; run the same command to resume \(exit 75\)\$" 10
	stopped=$(step_of "$W/progress")
	slurm_wait_job "$JOB" JobState PENDING 30
	[ "$(slurm_job_field "$JOB" Restarts)" = 1 ]
	sleep 0.5
	[ "$(step_of "$W/progress")" = "$stopped" ] || fail "the program went on after its checkpoint"

	resumes_on_n2 "$W/ck" "$stopped" "$id"
}

@test "slurm: a job preempted by a higher partition's checkpoints within the grace time, is requeued, and resumes afterwards" {
	# n2 drained: the low job and the high one want the whole of n1
	sl scontrol update nodename=n2 state=drain reason=ferry-test
	job_script "$W/job.sh" exec --checkpoint "$W/ck" --requeue "$IMG" \
		"$STATEFUL" --mb 64 --interval 100 "$W/progress"
	# the job's --signal comes at preemption (SlurmctldParameters=preempt_send_user_signal), GraceTime=30
	JOB=$(as_slurm_user "$U1" sbatch --parsable -p low -c 2 --signal=B:USR1@10 --requeue --open-mode=append \
		-o "$W/job.log" --chdir="$W" "$W/job.sh")
	slurm_wait_job "$JOB" JobState RUNNING 30
	wait_step "$W/progress" 5 30
	local id stopped high t0 t1
	id=$(field_of "$W/progress" run)

	t0=$(date +%s)
	high=$(as_slurm_user "$U2" sbatch --parsable -p high -c 2 -o /dev/null --wrap "sleep 3")
	wait_log "^ferry: run '$W/ck': got SIG(USR1|TERM): checkpointing and stopping\$" 30
	wait_log "^ferry: run '$W/ck': stopped in generation 1; run the same command to resume \(exit 75\)\$" 30
	t1=$(date +%s)
	[ $((t1 - t0)) -lt 30 ] || fail "the checkpoint took $((t1 - t0)) s, beyond the grace time (30 s)"
	stopped=$(step_of "$W/progress")
	slurm_wait_job "$high" JobState RUNNING 30
	[ "$(slurm_job_field "$high" NodeList)" = n1 ]
	slurm_wait_job "$JOB" JobState PENDING 30
	slurm_wait_job "$high" JobState COMPLETED 30

	# the high job is done: the low one may run again (now, not in 121 s)
	sl scontrol update jobid="$JOB" StartTime=now
	slurm_wait_job "$JOB" JobState RUNNING 60
	wait_log "^ferry: run '$W/ck': resumed on n1 from generation 1 \(taken .* on n1\)\$" 60
	wait_step "$W/progress" $((stopped + 5)) 30
	[ "$(field_of "$W/progress" run)" = "$id" ] || fail "not the same process: $(cat "$W/progress")"
	assert_progress_ok "$W/progress"
	assert_log_steps_in_order
}

@test "slurm: a node lost with the job (its slurmd, ferry and instance killed) — the requeued job resumes on n2 from the last periodic checkpoint, at most one interval lost" {
	job_script "$W/job.sh" exec --checkpoint "$W/ck" --checkpoint-every 3s --requeue "$IMG" \
		"$STATEFUL" --mb 32 --interval 100 "$W/progress"
	JOB=$(as_slurm_user "$U1" sbatch --parsable --requeue --open-mode=append -o "$W/job.log" --chdir="$W" "$W/job.sh")
	slurm_wait_job "$JOB" JobState RUNNING 30
	[ "$(slurm_job_field "$JOB" NodeList)" = n1 ]
	wait_log "^ferry: run '$W/ck': generation 2 written " 60
	local id lost first
	id=$(field_of "$W/progress" run)
	sleep 1
	# n1 dies: every process of the node at once, SIGKILL (slurmd, the job, ferry, the instance's
	# monitor), and the instance (in network and pid namespaces of its own)
	local init
	init=$(slurm_ns "${SLURM_NODE_NS[n1]}" runuser -u "$U1" -- "$FERRY" instance list --json |
		python3 -c 'import json, sys
for i in json.load(sys.stdin)["instances"]:
    if i["instance"] == "run-ck": print(i["pid"])')
	[ -n "$init" ] || fail "no instance run-ck on n1"
	lost=$(step_of "$W/progress")
	{
		ip netns pids "${SLURM_NODE_NS[n1]}"
		echo "$init"
	} | xargs -r kill -KILL
	sleep 1
	[ "$(step_of "$W/progress")" -le $((lost + 1)) ] || fail "the program still runs"
	# as a health check would: the node is down, Slurm requeues its job; it may start now
	sl scontrol update nodename=n1 state=down reason=ferry-test-lost
	slurm_wait_job "$JOB" JobState PENDING 30
	sl scontrol update jobid="$JOB" StartTime=now
	slurm_wait_job "$JOB" JobState RUNNING 60
	[ "$(slurm_job_field "$JOB" NodeList)" = n2 ]
	wait_log "^ferry: run '$W/ck': resumed on n2 from generation [0-9]+ \(taken .* on n1\)\$" 60
	# the first step the resumed program printed (the progress file may still hold the lost
	# node's last step, so wait on the log itself)
	first=$(first_step_after 'resumed on n2' 30)
	[ "$(field_of "$W/progress" run)" = "$id" ] || fail "not the same process: $(cat "$W/progress")"
	assert_progress_ok "$W/progress"
	# lost: the steps since the last generation, at most one interval (3 s: 30 steps) and a dump
	[ "$first" -le $((lost + 1)) ] && [ "$first" -ge $((lost - 40)) ] ||
		fail "resumed at step $first; the node was lost at step $lost"
	# n1 comes back (ReturnToService=2: idle once its slurmd registers)
	slurm_start_slurmd n1
	slurm_wait_node_state n1 idle 60
	slurm_ns "${SLURM_NODE_NS[n1]}" runuser -u "$U1" -- "$FERRY" instance list >/dev/null # drops the dead record
}

@test "slurm: scancel checkpoints the job and ends it, cancelled and not requeued; the next submission resumes it" {
	job_script "$W/job.sh" exec --checkpoint "$W/ck" --requeue "$IMG" "$STATEFUL" --mb 16 --interval 100 "$W/progress"
	JOB=$(as_slurm_user "$U1" sbatch --parsable --requeue --open-mode=append -o "$W/job.log" --chdir="$W" "$W/job.sh")
	slurm_wait_job "$JOB" JobState RUNNING 30
	wait_step "$W/progress" 5 30
	local id stopped node
	id=$(field_of "$W/progress" run)
	node=$(slurm_job_field "$JOB" NodeList) # either node: both are idle
	as_slurm_user "$U1" scancel "$JOB"
	wait_log "^ferry: run '$W/ck': got SIGTERM: checkpointing and stopping\$" 30
	wait_log "^ferry: run '$W/ck': Slurm job $JOB is (CANCELLED|COMPLETING), not RUNNING \(cancelled\?\): not requeued\$" 30
	slurm_wait_job "$JOB" JobState CANCELLED 30
	stopped=$(step_of "$W/progress")
	[ "$(slurm_job_field "$JOB" Restarts)" = 0 ]
	# the checkpoint stayed: the same script, submitted again, resumes the program
	JOB=$(as_slurm_user "$U1" sbatch --parsable --requeue --open-mode=append -o "$W/job.log" --chdir="$W" "$W/job.sh")
	wait_log "^ferry: run '$W/ck': resumed on n[12] from generation 1 \(taken .* on $node\)\$" 60
	wait_step "$W/progress" $((stopped + 3)) 30
	[ "$(field_of "$W/progress" run)" = "$id" ] || fail "not the same process: $(cat "$W/progress")"
}

# generations_written: how many generations of the run $W/ck the job's log says were written
generations_written() { grep -cE "^ferry: run '$W/ck': generation [0-9]+ written " "$W/job.log" || true; }

@test "slurm: a job suspended (scontrol suspend) in the middle of a periodic checkpoint for longer than 'criu timeout', then resumed, runs on: nothing stays stopped, later checkpoints complete" {
	# gang scheduling and PreemptMode=SUSPEND stop every process of a job's steps (SIGSTOP),
	# ferry's root guard and CRIU among them, and continue them later
	conf_set "criu timeout = 3"
	job_script "$W/job.sh" exec --checkpoint "$W/ck" --checkpoint-every 2s "$IMG" "$STATEFUL" --mb 1024 \
		--interval 100 "$W/progress"
	JOB=$(as_slurm_user "$U1" sbatch --parsable -o "$W/job.log" --chdir="$W" "$W/job.sh")
	slurm_wait_job "$JOB" JobState RUNNING 30
	wait_log "^ferry: run '$W/ck': generation 1 written " 60
	local i s
	# the next dump: its CRIU runs
	for ((i = 0; i < 500; i++)); do
		pgrep -x criu >/dev/null && break
		sleep 0.02
	done
	pgrep -x criu >/dev/null || fail "no dump began within 10 s: $(tail -3 "$W/job.log")"
	sl scontrol suspend "$JOB"
	slurm_wait_job "$JOB" JobState SUSPENDED 10
	echo "# suspended: $(ps -u "$U1" -o stat=,comm= | sort | uniq -c | tr '\n' ';')" >&3
	sleep 6
	sl scontrol resume "$JOB"
	slurm_wait_job "$JOB" JobState RUNNING 10
	# the program goes on, none of the user's processes is left stopped
	s=$(step_of "$W/progress")
	wait_step "$W/progress" $((s + 10)) 30
	run sh -c "ps -u '$U1' -o stat=,pid=,comm= | awk '\$1 ~ /^T/'"
	[ -z "$output" ] || fail "processes left stopped after the resume: $output"
	# the dump that was suspended either completed or was given up loudly; later ones complete
	# (two more generations: a generation given up keeps its number, so the next one's is not
	# always the last written + 1)
	local written
	written=$(generations_written)
	for ((i = 0; i < 300 && $(generations_written) < written + 2; i++)); do
		sleep 0.2
	done
	[ "$(generations_written)" -ge $((written + 2)) ] ||
		fail "no two generations written in 60 s after the resume: $(grep -E '^ferry: ' "$W/job.log" | tail -n 4)"
	echo "# $(grep -E '^ferry: ' "$W/job.log" | sed -E 's/ \(.*//' | tr '\n' ';')" >&3
	assert_progress_ok "$W/progress"
	as_slurm_user "$U1" scancel "$JOB"
}
