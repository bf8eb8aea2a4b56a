#!/usr/bin/env bats
# MPI jobs across nodes (issue 15), the way ferry-mpi(7) says: Debian's Open MPI and LAMMPS (the
# bench image), mpirun in a checkpointable instance, every rank's daemon started by ferry-rsh as
# a checkpointable instance of its own on the node its host maps to, with Open MPI's default
# settings but the launcher. Then the whole job checkpointed at one cut (ferry checkpoint
# group) and restarted with the ranks on the other nodes: the thermo output must be the
# undisturbed run's, bit for bit.
#
# On the simulated cluster of tests/lib/nodes.sh: only 198.18.0.0/15, only inside the namespaces
# it makes.

load ../lib/common
load ../lib/checkpoint
source "$FERRY_TESTS_DIR/lib/nodes.sh"
load ../lib/migrate

setup_file() {
	mig_file_setup
	# shellcheck source=../../bench/lib/common.bash
	source "$BATS_TEST_DIRNAME/../../bench/lib/common.bash"
	bench_image
	echo "$IMAGE_SIF" >"$BATS_FILE_TMPDIR/image"
}

teardown_file() {
	mig_file_teardown ftmpi
}

setup() {
	mig_test_setup ftmpi
	# shellcheck source=../../bench/lib/apps.bash
	source "$BATS_TEST_DIRNAME/../../bench/lib/apps.bash"
	HPC=$(cat "$BATS_FILE_TMPDIR/image")
	mig_up
	# the job's directory: in the home, which every instance binds (the ranks' /tmp is their own)
	JOB=$U1_HOME/$T
	rm -rf "$JOB"
	as_user1 mkdir -p "$JOB"
}

teardown() {
	mig_test_teardown 40
	rm -rf "${JOB:?}" "$U1_HOME"/.ferry/checkpoint/"$T"-*
}

# HOSTS: four ranks' hosts, two on each node, each with its address on the test network.
HOSTS="r0:nodeA:198.18.1.90/16,r1:nodeB:198.18.1.91/16,r2:nodeA:198.18.1.92/16,r3:nodeB:198.18.1.93/16"

# melt DIR: the Lennard-Jones melt (864 atoms, 2000 steps), thermo every 200 in full precision
# (4 ranks busy-polling on the 2 CPUs of a test machine: some 50 s).
melt() { lmp_melt 6 2000 | as_user1 tee "$1/in.melt" >/dev/null; }

# thermo DIR: the run's thermo table (its step lines, not the timing).
thermo() { awk '/^ *Step /{on = 1} on && /^ *[0-9]+ /{print} /^Loop time/{on = 0}' "$1/log.lammps" 2>/dev/null; }
at_step() { thermo "$1" | awk -v n="$2" '$1 >= n {found = 1} END {exit !found}'; }

# job NAME DIR: mpirun in checkpointable instance NAME on nodeA (198.18.1.89), 4 ranks of LAMMPS
# in DIR on the hosts of $HOSTS, started by ferry-rsh.
job() {
	local name=$1 dir=$2
	as_user1 "$FERRY" checkpoint create "$name" >/dev/null
	run --separate-stderr on nodeA "$FERRY" instance start --criu-launch "$name" --net --network ftmac \
		--network-args "IP=198.18.1.89/16" --private-tmp --hostname hnp \
		--env "FERRY_RSH_HOSTS=$HOSTS" --env FERRY_RSH_NETWORK=ftmac "$HPC" "$name" \
		mpirun --mca plm_rsh_agent /.ferry/criu/ferry-rsh -np 4 -H r0,r1,r2,r3 -x OMP_NUM_THREADS=1 \
		--wdir "$dir" lmp -nocite -in in.melt -log log.lammps -screen none
	[ "$status" -eq 0 ] || fail "mpirun's instance: $stderr"
}

# job_ended NAME [SECONDS]: mpirun's instance ended, with status 0 (its log says so).
job_ended() {
	local i
	for ((i = 0; i < ${2:-300} * 10; i++)); do
		listed_on nodeA "$1" || listed_on nodeB "$1" || return 0
		sleep 0.1
	done
	fail "the job '$1' did not end: $(tail -n 5 "$(inst_field nodeA "$1" logErrPath)" 2>/dev/null)"
}

@test "mpi: 4 LAMMPS ranks over two nodes, each in its own instance, checkpointed at one cut and restarted with every rank on the other node: the undisturbed result" {
	local ref=$JOB/ref ck=$JOB/ck
	as_user1 mkdir -p "$ref" "$ck"
	melt "$ref"
	melt "$ck"
	# the undisturbed run
	job "$T" "$ref"
	job_ended "$T" 600
	[ "$(thermo "$ref" | wc -l)" -eq 11 ] || fail "the undisturbed run logged: $(thermo "$ref"); $(cat "$(inst_field nodeA "$T" logErrPath)" 2>/dev/null)"
	local r
	for r in r0 r1 r2 r3; do
		! listed_on nodeA "$T-$r" && ! listed_on nodeB "$T-$r" || fail "rank instance $T-$r is left"
	done
	rm -rf "$U1_HOME"/.ferry/checkpoint/"$T"-* "$(ckpt_dir "$U1" "$T")"

	# the same, checkpointed mid-run
	job "$T" "$ck"
	for ((i = 0; i < 1200; i++)); do at_step "$ck" 400 && break; sleep 0.1; done
	at_step "$ck" 400 || fail "the run did not get to step 400"
	assert_only_on nodeB "$T-r1"
	assert_only_on nodeA "$T-r2"
	run --separate-stderr on nodeA "$FERRY" checkpoint group "$T" "$T-r0" "$T-r2" "nodeB:$T-r1" "nodeB:$T-r3"
	[ "$status" -eq 0 ] || fail "checkpoint group: $stderr"
	for r in "" -r0 -r1 -r2 -r3; do
		wait_gone_on() { ! listed_on nodeA "$1" && ! listed_on nodeB "$1"; }
		wait_for wait_gone_on "$T$r" || fail "$T$r still runs"
	done
	at_step "$ck" 2000 && fail "the run ended before the checkpoint: make it longer"
	# every member restarted on the other node: the ranks of nodeA on nodeB, and back
	run --separate-stderr on nodeB "$FERRY" instance start --criu-restart "$T"
	[ "$status" -eq 0 ] || fail "restart of mpirun on nodeB: $stderr"
	for r in r0 r2; do
		run --separate-stderr on nodeB "$FERRY" instance start --criu-restart "$T-$r"
		[ "$status" -eq 0 ] || fail "restart of $r on nodeB: $stderr"
	done
	for r in r1 r3; do
		run --separate-stderr on nodeB "$FERRY" instance start --node nodeA --criu-restart "$T-$r" "$HPC" "$T-$r"
		[ "$status" -eq 0 ] || fail "restart of $r on nodeA: $stderr"
	done
	assert_only_on nodeA "$T-r1"
	job_ended "$T" 600
	assert_equal "$(thermo "$ck")" "$(thermo "$ref")"
}
