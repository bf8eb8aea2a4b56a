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

# The ring (tests/workloads/mpi/mpiring.c) is built with the host's mpicc (Open MPI 4.1, as the bench
# image's), in a directory of the user's home, which every instance binds.
setup_file() {
	mig_file_setup
	# shellcheck source=../../bench/lib/common.bash
	source "$BATS_TEST_DIRNAME/../../bench/lib/common.bash"
	bench_image
	echo "$IMAGE_SIF" >"$BATS_FILE_TMPDIR/image"
	RING_DIR=$U1_HOME/.ftmpi-bin
	rm -rf "$RING_DIR"
	mkdir -m 0755 "$RING_DIR"
	mpicc -O2 -Wall -Wextra -Werror -o "$RING_DIR/mpiring" "$FERRY_TESTS_DIR/workloads/mpi/mpiring.c" ||
		return 1
	echo "$RING_DIR" >"$BATS_FILE_TMPDIR/ring"
}

teardown_file() {
	mig_file_teardown ftmpi
	rm -rf "$U1_HOME/.ftmpi-bin"
}

setup() {
	mig_test_setup ftmpi
	# shellcheck source=../../bench/lib/apps.bash
	source "$BATS_TEST_DIRNAME/../../bench/lib/apps.bash"
	HPC=$(cat "$BATS_FILE_TMPDIR/image")
	RING=$(cat "$BATS_FILE_TMPDIR/ring")/mpiring
	mig_up
	# the job's directory: in the home, which every instance binds (the ranks' /tmp is their own)
	JOB=$U1_HOME/$T
	rm -rf "$JOB"
	as_user1 mkdir -p "$JOB"
}

teardown() {
	mig_test_teardown 40
	rm -rf "${JOB:?}" "$U1_HOME"/.ferry/checkpoint/"$T"-* "$U1_HOME"/.ferry/checkpoint/run-"$T"-*
}

# HOSTS: four ranks' hosts, two on each node, each with its address on the test network.
HOSTS="r0:nodeA:198.18.1.90/16,r1:nodeB:198.18.1.91/16,r2:nodeA:198.18.1.92/16,r3:nodeB:198.18.1.93/16"

# melt DIR: the Lennard-Jones melt (864 atoms, 1500 steps), thermo every 150 in full precision
# (4 ranks busy-polling on the 2 CPUs of a test machine: some 40 s).
melt() { lmp_melt 6 1500 | as_user1 tee "$1/in.melt" >/dev/null; }

# thermo DIR|FILE: the run's thermo table (its step lines, not the timing), of DIR/log.lammps or
# FILE; a step logged again (after a restart from an earlier cut) counts once, as logged last.
thermo() {
	local f=$1
	[ -f "$f" ] || f=$1/log.lammps
	awk '/^ *Step /{on = 1} on && /^ *[0-9]+ /{if (!($1 in l)) o[n++] = $1; l[$1] = $0}
		/^Loop time/{on = 0} END {for (i = 0; i < n; i++) print l[o[i]]}' "$f" 2>/dev/null
}
at_step() { thermo "$1" | awk -v n="$2" '$1 >= n {found = 1} END {exit !found}'; }

# job NAME DIR [PROGRAM...]: mpirun in checkpointable instance NAME on nodeA (198.18.1.89), 4
# ranks of LAMMPS (logging to DIR/log.lammps), or of PROGRAM, in DIR on the hosts of $HOSTS,
# started by ferry-rsh; what rank 0 prints goes to mpirun's stdout, the instance's log.
job() {
	local name=$1 dir=$2
	shift 2
	[ $# -gt 0 ] || set -- lmp -nocite -in in.melt -log log.lammps -screen none
	as_user1 "$FERRY" checkpoint create "$name" >/dev/null
	run --separate-stderr on nodeA "$FERRY" instance start --criu-launch "$name" --net --network ftmac \
		--network-args "IP=198.18.1.89/16" --private-tmp --hostname hnp \
		--env "FERRY_RSH_HOSTS=$HOSTS" --env FERRY_RSH_NETWORK=ftmac "$HPC" "$name" \
		mpirun --mca plm_rsh_agent /.ferry/criu/ferry-rsh -np 4 -H r0,r1,r2,r3 -x OMP_NUM_THREADS=1 \
		--wdir "$dir" "$@"
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

# ref: the thermo table of the undisturbed run, made once for the file's tests.
ref() {
	local f=$BATS_FILE_TMPDIR/ref.thermo dir=$JOB/ref r
	if [ ! -s "$f" ]; then
		as_user1 mkdir -p "$dir"
		melt "$dir"
		job "$T" "$dir"
		job_ended "$T" 600
		[ "$(thermo "$dir" | wc -l)" -eq 11 ] ||
			fail "the undisturbed run logged: $(thermo "$dir"); $(cat "$(inst_field nodeA "$T" logErrPath)" 2>/dev/null)"
		for r in r0 r1 r2 r3; do
			! listed_on nodeA "$T-$r" && ! listed_on nodeB "$T-$r" || fail "rank instance $T-$r is left"
		done
		rm -rf "$U1_HOME"/.ferry/checkpoint/"$T"-* "$(ckpt_dir "$U1" "$T")"
		thermo "$dir" >"$f"
	fi
	cat "$f"
}

# started DIR: the job in DIR is running, past step 400 of its 1500.
started() {
	local i
	for ((i = 0; i < 1200; i++)); do at_step "$1" 400 && break; sleep 0.1; done
	at_step "$1" 400 || fail "the run did not get to step 400"
	assert_only_on nodeB "$T-r1"
	assert_only_on nodeA "$T-r2"
}

# gone NAME...: no instance NAME on either node (waits for them to end).
gone() {
	local n
	gone_on() { ! listed_on nodeA "$1" && ! listed_on nodeB "$1"; }
	for n in "$@"; do
		wait_for gone_on "$n" || fail "$n still runs"
	done
}

@test "mpi: 4 LAMMPS ranks over two nodes, each in its own instance; three ranks migrated mid-run (diskless, live, default), the job checkpointed at one cut and restarted with every rank on the other node: the undisturbed result" {
	local want ck=$JOB/ck r
	want=$(ref)
	as_user1 mkdir -p "$ck"
	melt "$ck"
	job "$T" "$ck"
	started "$ck"
	# one rank moves while the others wait for it, in each mode
	run --separate-stderr on nodeB "$FERRY" migrate "$T-r1" --to nodeA --mode diskless
	[ "$status" -eq 0 ] || fail "migrate r1 (diskless): $stderr"
	run --separate-stderr on nodeA "$FERRY" migrate "$T-r2" --to nodeB --mode live
	[ "$status" -eq 0 ] || fail "migrate r2 (live): $stderr"
	run --separate-stderr on nodeB "$FERRY" migrate "$T-r3" --to nodeA
	[ "$status" -eq 0 ] || fail "migrate r3 (default): $stderr"
	assert_only_on nodeA "$T-r1"
	assert_only_on nodeB "$T-r2"
	assert_only_on nodeA "$T-r3"
	# the job by its name: its members found wherever they run now
	run --separate-stderr on nodeA "$FERRY" checkpoint group --job "$T"
	[ "$status" -eq 0 ] || fail "checkpoint group --job: $stderr"
	assert_equal "$(awk '{print $1}' <<<"$output" | sort | tr '\n' ' ')" "$T $T-r0 $T-r1 $T-r3 nodeB:$T-r2 "
	gone "$T" "$T-r0" "$T-r1" "$T-r2" "$T-r3"
	at_step "$ck" 1500 && fail "the run ended before the checkpoint: make it longer"
	# every member restarted on the other node, all at once, by one command on nodeA
	run --separate-stderr on nodeA "$FERRY" checkpoint group --restart --job "$T" --place "$T=nodeB" \
		--place "$T-r0=nodeB" --place "$T-r1=nodeB" --place "$T-r2=nodeA" --place "$T-r3=nodeA"
	[ "$status" -eq 0 ] || fail "checkpoint group --restart: $stderr"
	assert_output "nodeB:$T restarted
nodeB:$T-r0 restarted
nodeB:$T-r1 restarted
$T-r2 restarted
$T-r3 restarted"
	assert_only_on nodeB "$T-r0"
	assert_only_on nodeA "$T-r3"
	job_ended "$T" 600
	assert_equal "$(thermo "$ck")" "$want"
}

# ring_at LOG N: the ring's rank 0 has logged iteration N or a later one (in LOG: mpirun's).
ring_at() {
	awk -v n="$2" '$1 == "it" && $2 >= n {found = 1} END {exit !found}' "$1" 2>/dev/null
}

# wait_ring LOG N: until ring_at LOG N (60 s at most).
wait_ring() {
	local i
	for ((i = 0; i < 600; i++)); do ring_at "$1" "$2" && return 0; sleep 0.1; done
	fail "the ring did not get to iteration $2: $(tail -n 3 "$1")"
}

@test "mpi: a rank whose dump fails makes the whole job go on with nothing published; a --leave-running group checkpoint, then every member killed and restarted: the self-checking ring loses and repeats no message" {
	local log r before
	# 1000 iterations of 4 ranks in a ring, each checking every message and every sum
	job "$T" "$JOB" "$RING" 1000 10000
	log=$(inst_field nodeA "$T" logOutPath)
	wait_ring "$log" 200
	assert_only_on nodeB "$T-r1"
	# rank 1's private /tmp holds a file no one can read: its dump fails
	on nodeB "$FERRY" exec "instance://$T-r1" sh -c 'echo x >/tmp/locked && chmod 000 /tmp/locked'
	run --separate-stderr on nodeA "$FERRY" checkpoint group --leave-running --job "$T"
	assert_ferry_error "instance 'nodeB:$T-r1': on nodeB: .*'/tmp/locked' cannot be read.*every instance keeps running and no generation was published$"
	for r in "" -r0 -r1 -r2 -r3; do
		[ -z "$(ls "$(ckpt_dir "$U1" "$T$r")" 2>/dev/null | grep '^gen-')" ] || fail "$T$r has a generation"
	done
	on nodeB "$FERRY" exec "instance://$T-r1" rm -f /tmp/locked
	run --separate-stderr on nodeA "$FERRY" checkpoint group --leave-running "$T" "$T-r0" "$T-r2" "nodeB:$T-r1" "nodeB:$T-r3"
	[ "$status" -eq 0 ] || fail "checkpoint group --leave-running: $stderr"
	# the job went on after both
	before=$(awk '$1 == "it" {v = $2} END {print v}' "$log")
	wait_ring "$log" $((before + 100))
	! grep -q RESULT "$log" || fail "the ring ended before the kill: make it longer"
	# every member killed; restarted where they were, from the cut (the iterations logged since
	# come again: mpirun's log, the instance's, is appended to)
	for r in "" -r0 -r2; do kill_member nodeA "$T$r"; done
	for r in -r1 -r3; do kill_member nodeB "$T$r"; done
	gone "$T" "$T-r0" "$T-r1" "$T-r2" "$T-r3"
	run --separate-stderr on nodeA "$FERRY" checkpoint group --restart "$T" "$T-r0" "$T-r2" "nodeB:$T-r1" "nodeB:$T-r3"
	[ "$status" -eq 0 ] || fail "checkpoint group --restart: $stderr"
	job_ended "$T" 600
	run grep RESULT "$log"
	assert_output "RESULT OK iterations=1000 ranks=4 errors=0"
}

# run_job [FERRY-OPTION...] -- ARGS...: 'ferry exec --checkpoint' of the ring's mpirun (ARGS:
# its) as user 1 on nodeA, in the background: its pid (the ferry process) in $PIDF, its output
# in $JOB/run.out and .err.
run_job() {
	local -a opts=()
	while [ "$1" != -- ]; do opts+=("$1"); shift; done
	shift
	rm -f "$PIDF"
	on nodeA sh -c 'echo $$ > "$1"; shift; exec "$@"' sh "$PIDF" "$FERRY" exec --checkpoint "$JOB/$T" \
		"${opts[@]}" --cleanenv --net --network ftmac --network-args "IP=198.18.1.89/16" --private-tmp \
		--hostname hnp --env "FERRY_RSH_HOSTS=$HOSTS" --env FERRY_RSH_NETWORK=ftmac "$HPC" \
		mpirun --mca plm_rsh_agent /.ferry/criu/ferry-rsh -np 4 -H r0,r1,r2,r3 -x OMP_NUM_THREADS=1 \
		--wdir "$JOB" "$RING" "$@" >>"$JOB/run.out" 2>>"$JOB/run.err" &
	BG=$!
	wait_for test -s "$PIDF" || fail "ferry did not start"
}

# wait_job: waits for the background ferry; its exit status in $status.
wait_job() {
	status=0
	wait "$BG" || status=$?
	rm -f "$PIDF"
}

@test "mpi: 'ferry exec --checkpoint' of an MPI job: every checkpoint takes mpirun and every rank at one cut (a rank that fails one leaves the job running, nothing kept); SIGTERM stops them all (exit 75); the same command resumes them all, each on its node, or none: the ring loses and repeats no message" {
	PIDF=$JOB/ferry.pid # (written as the user)
	local before gen n r cut
	run_job --checkpoint-every 10s -- 1500 10000
	wait_ring "$JOB/run.out" 100
	assert_only_on nodeB "run-$T-r1"
	assert_only_on nodeA "run-$T-r2"
	# rank 1's private /tmp holds a file no one can read: the periodic checkpoint fails whole
	on nodeB "$FERRY" exec "instance://run-$T-r1" sh -c 'echo x >/tmp/locked && chmod 000 /tmp/locked'
	wait_for grep -q "^ferry: run '$JOB/$T': that checkpoint failed (see above); the program goes on\$" "$JOB/run.err" ||
		fail "no failed periodic checkpoint: $(cat "$JOB/run.err")"
	grep -q "instance 'nodeB:run-$T-r1': .*'/tmp/locked' cannot be read.*every instance keeps running and no generation was published" "$JOB/run.err" ||
		fail "the failed member is not named: $(cat "$JOB/run.err")"
	[ -z "$(generations "$JOB/$T")" ] || fail "a generation was kept: $(generations "$JOB/$T")"
	for r in r0 r1 r2 r3; do
		[ ! -e "$(ckpt_dir "$U1" "run-$T-$r")/current" ] || fail "run-$T-$r has a generation"
	done
	on nodeB "$FERRY" exec "instance://run-$T-r1" rm -f /tmp/locked
	before=$(awk '$1 == "it" {v = $2} END {print v}' "$JOB/run.out")
	wait_ring "$JOB/run.out" $((before + 50))
	# the stop: every member at one cut, then all stop
	kill -TERM "$(cat "$PIDF")"
	wait_job
	[ "$status" -eq 75 ] || fail "ferry exited $status, not 75: $(cat "$JOB/run.err")"
	grep '^ferry: ' "$JOB/run.err" | sed 's/^/# /' >&3
	n=$(sed -nE "s/^ferry: run '.*': stopped in generation ([0-9]+); .*/\1/p" "$JOB/run.err")
	grep -q "^ferry: run '$JOB/$T': generation $n written, with the 4 other members of its job at one cut" "$JOB/run.err" ||
		fail "$(cat "$JOB/run.err")"
	gone "run-$T" "run-$T-r0" "run-$T-r1" "run-$T-r2" "run-$T-r3"
	! grep -q RESULT "$JOB/run.out" || fail "the ring ended before the checkpoint: make it longer"
	gen=$JOB/$T/$(printf 'ck-%06d' "$n")
	# where each member was, in the generation; each member's generation is of its cut
	run sort "$gen/ferry-members"
	assert_output "nodeA run-$T-r0
nodeA run-$T-r2
nodeB run-$T-r1
nodeB run-$T-r3"
	cut=$(sed -n 's/^group=//p' "$gen/current/manifest")
	[[ "$cut" =~ ^[0-9a-f]{32}/5$ ]] || fail "the run's generation's cut: '$cut'"
	for r in r0 r1 r2 r3; do
		assert_equal "$(sed -n 's/^group=//p' "$(ckpt_dir "$U1" "run-$T-$r")/current/manifest")" "$cut"
	done
	# a member's checkpoint missing: the same command resumes none of them
	mv "$(ckpt_dir "$U1" "run-$T-r3")" "$JOB/r3.aside"
	run_job -- 1500 10000
	wait_job
	[ "$status" -eq 255 ] || fail "a resume without rank 3 exited $status: $(cat "$JOB/run.err")"
	grep -q "^ferry: restart of the group: checkpoint 'run-$T-r3' cannot be read here (No such file or directory); no member was restarted\$" "$JOB/run.err" ||
		fail "$(cat "$JOB/run.err")"
	grep -q "^ferry: run '$JOB/$T': its job could not be resumed from generation $n (taken .*) (see above): " "$JOB/run.err" ||
		fail "$(cat "$JOB/run.err")"
	for r in "" -r0 -r1 -r2 -r3; do
		! listed_on nodeA "run-$T$r" && ! listed_on nodeB "run-$T$r" || fail "run-$T$r was restarted"
	done
	mv "$JOB/r3.aside" "$(ckpt_dir "$U1" "run-$T-r3")"
	# and with it: all of them back, each on its node, and the ring goes on to its end
	before=$(awk '$1 == "it" {v = $2} END {print v}' "$JOB/run.out")
	run_job -- 1500 10000
	wait_job
	[ "$status" -eq 0 ] || fail "the resumed run exited $status: $(cat "$JOB/run.err")"
	grep -q "^ferry: run '$JOB/$T': resumed on .* from generation $n (taken .*), with the 4 other members of its job\$" "$JOB/run.err" ||
		fail "$(cat "$JOB/run.err")"
	run grep RESULT "$JOB/run.out"
	assert_output "RESULT OK iterations=1500 ranks=4 errors=0"
	ring_at "$JOB/run.out" $((before + 50)) || fail "no iteration after $before"
	gone "run-$T" "run-$T-r0" "run-$T-r1" "run-$T-r2" "run-$T-r3"
}
