#!/usr/bin/env bats
# An MPI job under Slurm (issue 15 with issue 14's machinery): the test cluster of
# tests/lib/slurm.bash (n1, n2), each node also running ferryd (named as its Slurm node, the
# other its peer) and the macvlan network ftmac; a batch job of the unprivileged test user over
# both nodes whose shell is 'ferry exec --checkpoint --requeue' of mpirun, with one rank on each
# node started by ferry-rsh. The program is the self-checking ring (tests/workloads/mpi/mpiring.c,
# Debian's Open MPI in the bench image): a message lost, repeated or altered shows in its result.
#
# Only 198.18.0.0/15, only inside the namespaces nodes.sh makes.

load ../lib/common
load ../lib/checkpoint
load ../lib/slurm

SMPI_PORT=7780
SMPI_NETCONF=/etc/ferry/network/ftmac.conflist
FERRYD=/usr/local/sbin/ferryd
declare -gA SMPI_IP=([n1]=198.18.0.1 [n2]=198.18.0.2)

setup_file() {
	ferry_suite_setup
	# shellcheck source=../../bench/lib/common.bash
	source "$BATS_TEST_DIRNAME/../../bench/lib/common.bash"
	bench_image
	echo "$IMAGE_SIF" >"$BATS_FILE_TMPDIR/image"
	local d=$U1_HOME/.ftsmpi-bin
	rm -rf "$d"
	mkdir -m 0755 "$d"
	mpicc -O2 -Wall -Wextra -Werror -o "$d/mpiring" "$FERRY_TESTS_DIR/workloads/mpi/mpiring.c" || return 1
	slurm_up
	write_test_network "$SMPI_NETCONF"
}

teardown_file() {
	slurm_down
	ferry_suite_teardown
	rm -rf "$U1_HOME/.ftsmpi-bin" "$SMPI_NETCONF"
}

# smpi_ferryd NODE: ferryd on the Slurm node NODE, named NODE, the other node its peer.
smpi_ferryd() {
	local n=$1 o i
	o=$([ "$n" = n1 ] && echo n2 || echo n1)
	(
		ip netns exec "${SLURM_NODE_NS[$n]}" "$FERRYD" --node "$n" --listen "${SMPI_IP[$n]}:$SMPI_PORT" \
			--peer "$o=${SMPI_IP[$o]}:$SMPI_PORT" >>"$BATS_TEST_TMPDIR/ferryd-$n.log" 2>&1 </dev/null 3>&- &
		echo $! >"$BATS_TEST_TMPDIR/ferryd-$n.pid"
	)
	for ((i = 0; i < 100; i++)); do
		grep -q "listening on" "$BATS_TEST_TMPDIR/ferryd-$n.log" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "ferryd on $n did not start: $(cat "$BATS_TEST_TMPDIR/ferryd-$n.log")"
}

setup() {
	ferry_test_setup
	conf_set "allow net network = ftmac" "allow net args = yes" "allow net ip range = 198.18.1.0/24"
	rm -f /var/lib/ferry/ferryd/n1/* /var/lib/ferry/ferryd/n2/*
	smpi_ferryd n1
	smpi_ferryd n2
	HPC=$(cat "$BATS_FILE_TMPDIR/image")
	RING=$U1_HOME/.ftsmpi-bin/mpiring
	T=ftsmpi-$BATS_TEST_NUMBER
	W=$U1_HOME/$T # the shared filesystem: the homes, on one machine
	rm -rf "$W"
	as_user1 mkdir -p "$W"
	JOB=
}

teardown() {
	local n p
	slurm_test_teardown "$W/job.log"
	for n in n1 n2; do
		if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
			echo "---- ferryd on $n:" >&2
			tail -n 20 "$BATS_TEST_TMPDIR/ferryd-$n.log" >&2
		fi
		if p=$(cat "$BATS_TEST_TMPDIR/ferryd-$n.pid" 2>/dev/null); then
			kill -KILL "$p" 2>/dev/null || true
		fi
	done
	conf_restore
	ferry_teardown
	rm -rf "${W:?}" "$U1_HOME"/.ferry/checkpoint/run-"$T"-*
}

# ring_at N: the ring's rank 0 has logged iteration N or a later one, in the job's log.
ring_at() {
	awk -v n="$1" '$1 == "it" && $2 >= n {found = 1} END {exit !found}' "$W/job.log" 2>/dev/null
}

# job_script HOSTS: $W/job.sh, user 1's batch script: 'ferry exec --checkpoint --requeue' of
# mpirun in its instance on ftmac (198.18.1.89), 2 ranks of the ring (1000 iterations) on the
# hosts r0 and r1 of HOSTS (FERRY_RSH_HOSTS), started by ferry-rsh.
job_script() {
	{
		echo '#!/bin/sh'
		echo 'echo "job $SLURM_JOB_ID on $(hostname), restart ${SLURM_RESTART_COUNT:-0}"'
		printf 'exec %q exec --checkpoint %q --requeue --cleanenv' "$FERRY" "$W/$T"
		printf ' --net --network ftmac --network-args IP=198.18.1.89/16 --private-tmp --hostname hnp'
		printf ' --env FERRY_RSH_HOSTS=%s --env FERRY_RSH_NETWORK=ftmac' "$1"
		printf ' %q mpirun --mca plm_rsh_agent /.ferry/criu/ferry-rsh -np 2 -H r0,r1' "$HPC"
		printf ' -x OMP_NUM_THREADS=1 --wdir %q %q 1000 20000\n' "$W" "$RING"
	} >"$W/job.sh"
	chown "$U1:" "$W/job.sh"
	chmod 0755 "$W/job.sh"
}

# assert_job_exact BEFORE: the job completes, the ring's result is exact (no message lost or
# repeated), and rank 0 got 50 iterations past BEFORE (its iteration at the stop).
assert_job_exact() {
	slurm_wait_job "$JOB" JobState COMPLETED 300
	grep '^ferry: ' "$W/job.log" | sed 's/^/# /' >&3
	run grep RESULT "$W/job.log"
	assert_output "RESULT OK iterations=1000 ranks=2 errors=0"
	ring_at $(($1 + 50)) || fail "no iteration after the resume"
}

# on_ns_listed NODE NAME: user 1's instance NAME runs on Slurm node NODE.
on_ns_listed() { slurm_ns "${SLURM_NODE_NS[$1]}" runuser -u "$U1" -- "$FERRY" instance list | grep -qw "$2"; }

# wait_ring N: until ring_at N (60 s at most).
wait_ring() {
	local i
	for ((i = 0; i < 600; i++)); do ring_at "$1" && return 0; sleep 0.1; done
	fail "the ring did not get to iteration $1: $(tail -n 3 "$W/job.log")"
}

@test "slurm-mpi: an MPI job over two nodes, preempted by a higher partition's, checkpoints mpirun and its ranks at one cut, is requeued, and resumes them all: the ring loses and repeats no message" {
	local high before
	# the job script: mpirun in a resumable run, its two ranks' daemons started by ferry-rsh on
	# n1 and n2, each with its own address on ftmac
	job_script r0:n1:198.18.1.90/16,r1:n2:198.18.1.91/16
	# both nodes, all their CPUs: the high job needs them back; its --signal comes at preemption
	JOB=$(as_slurm_user "$U1" sbatch --parsable -p low -N 2 --ntasks-per-node=1 -c 2 --signal=B:USR1@10 \
		--requeue --open-mode=append -o "$W/job.log" --chdir="$W" "$W/job.sh")
	slurm_wait_job "$JOB" JobState RUNNING 30
	wait_ring 100
	on_ns_listed n1 "run-$T-r0" || fail "rank 0 does not run on n1"
	on_ns_listed n2 "run-$T-r1" || fail "rank 1 does not run on n2"

	high=$(as_slurm_user "$U2" sbatch --parsable -p high -N 2 --ntasks-per-node=1 -c 2 -o /dev/null --wrap "sleep 3")
	wait_log "^ferry: run '$W/$T': got SIG(USR1|TERM): checkpointing and stopping\$" 30
	wait_log "^ferry: run '$W/$T': generation 1 written, with the 2 other members of its job at one cut " 30
	wait_log "^ferry: run '$W/$T': Slurm job $JOB requeued\$" 30
	wait_log "^ferry: run '$W/$T': stopped in generation 1; run the same command to resume \(exit 75\)\$" 30
	! grep -q RESULT "$W/job.log" || fail "the ring ended before the preemption: make it longer"
	before=$(awk '$1 == "it" {v = $2} END {print v}' "$W/job.log")
	! on_ns_listed n1 "run-$T" || fail "an instance of the job still runs on n1"
	! on_ns_listed n2 "run-$T-r1" || fail "rank 1 still runs on n2"
	slurm_wait_job "$high" JobState RUNNING 30
	slurm_wait_job "$JOB" JobState PENDING 30
	slurm_wait_job "$high" JobState COMPLETED 30

	# the high job is done: the low one may run again (now, not in 121 s), all of it
	sl scontrol update jobid="$JOB" StartTime=now
	slurm_wait_job "$JOB" JobState RUNNING 60
	wait_log "^ferry: run '$W/$T': resumed on n1 from generation 1 \(taken .* on n1\), with the 2 other members of its job\$" 60
	on_ns_listed n2 "run-$T-r1" || fail "rank 1 was not resumed on n2"
	assert_job_exact "$before"
	grep -q "^ferry: run '$W/$T': the program exited with status 0\$" "$W/job.log" || fail "$(tail -n 5 "$W/job.log")"
}

@test "slurm-mpi: a requeued MPI job that Slurm gives another node resumes its ranks there: the members of the node it lost go to one it has" {
	local before i
	# one node, both ranks on it with the job's mpirun
	job_script r0:n1:198.18.1.90/16,r1:n1:198.18.1.91/16
	JOB=$(as_slurm_user "$U1" sbatch --parsable -N 1 --requeue --open-mode=append -o "$W/job.log" \
		--chdir="$W" "$W/job.sh")
	slurm_wait_job "$JOB" JobState RUNNING 30
	[ "$(slurm_job_field "$JOB" NodeList)" = n1 ] # (the lighter node: Weight)
	wait_ring 100
	on_ns_listed n1 "run-$T-r1" || fail "rank 1 does not run on n1"
	# n1 is to go (drained: the job runs on); USR1 to the batch shell, as its --signal would: the
	# job checkpoints whole and requeues, and may run again on n2 only (now, not in 121 s)
	sl scontrol update nodename=n1 state=drain reason=ferry-test
	sl scancel --batch --signal=USR1 "$JOB"
	wait_log "^ferry: run '$W/$T': generation 1 written, with the 2 other members of its job at one cut " 30
	wait_log "^ferry: run '$W/$T': stopped in generation 1; run the same command to resume \(exit 75\)\$" 30
	before=$(awk '$1 == "it" {v = $2} END {print v}' "$W/job.log")
	for ((i = 0; i < 300; i++)); do
		[ "$(slurm_job_field "$JOB" Restarts)" = 1 ] && [ "$(slurm_job_field "$JOB" JobState)" = RUNNING ] && break
		sl scontrol update jobid="$JOB" StartTime=now 2>/dev/null || true
		sleep 0.2
	done
	slurm_wait_job "$JOB" JobState RUNNING 10
	[ "$(slurm_job_field "$JOB" NodeList)" = n2 ] || fail "the job runs on $(slurm_job_field "$JOB" NodeList)"
	wait_log "^ferry: run '$W/$T': the members that were on n1 go to n2 \(not a node of Slurm job $JOB\)\$" 60
	wait_log "^ferry: run '$W/$T': resumed on n2 from generation 1 \(taken .* on n1\), with the 2 other members of its job\$" 60
	on_ns_listed n2 "run-$T-r0" || fail "rank 0 was not resumed on n2"
	on_ns_listed n2 "run-$T-r1" || fail "rank 1 was not resumed on n2"
	assert_job_exact "$before"
}
