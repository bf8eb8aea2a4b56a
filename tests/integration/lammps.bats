#!/usr/bin/env bats
# LAMMPS from Debian, run the plain way (issue 16): `lmp -in in.melt`, no OpenMPI settings. As an
# MPI singleton it forks an orted and talks to it over a loopback TCP connection, which a
# checkpoint could not hold before checkpointable instances got a loopback network of their
# own. Checkpointed mid-run and restarted as an ordinary user, it must end with the thermo
# output of an undisturbed run. The image is the bench's (Debian's lammps; bench-smoke, earlier
# in the test command, builds it; built here when missing).

load ../lib/common
load ../lib/checkpoint

setup_file() {
	ferry_suite_setup
	# shellcheck source=../../bench/lib/common.bash
	source "$BATS_TEST_DIRNAME/../../bench/lib/common.bash"
	bench_image
	echo "$IMAGE_SIF" >"$BATS_FILE_TMPDIR/image"
}

teardown_file() {
	ferry_suite_teardown
}

setup() {
	ferry_test_setup
	# shellcheck source=../../bench/lib/apps.bash
	source "$BATS_TEST_DIRNAME/../../bench/lib/apps.bash"
	IMG=$(cat "$BATS_FILE_TMPDIR/image")
	T=ftlmp-$BATS_TEST_NUMBER
	as_user1 "$FERRY" checkpoint delete "$T" >/dev/null 2>&1 || true
}

teardown() {
	ferry_teardown
	as_user1 "$FERRY" checkpoint delete "$T" >/dev/null 2>&1 || true
	rm -rf /tmp/ompi.*."$U1_UID" 2>/dev/null || true
}

# melt DIR: a small Lennard-Jones melt (2048 atoms, 16000 steps: some seconds on one core)
melt() {
	as_user1 mkdir -p "$1"
	lmp_melt 8 16000 | as_user1 tee "$1/in.melt" >/dev/null
}

LMP='OMP_NUM_THREADS=1 exec lmp -nocite -in in.melt -log log.lammps -screen none >lmp.out 2>&1'

# thermo DIR: the thermo table of the run in DIR (its step lines, not the timing)
thermo() { awk '/^ *Step /{on = 1} on && /^ *[0-9]+ /{print} /^Loop time/{on = 0}' "$1/log.lammps" 2>/dev/null; }
# at_step DIR N: the run in DIR has logged step N
at_step() { thermo "$1" | awk -v n="$2" '$1 >= n {found = 1} END {exit !found}'; }

@test "LAMMPS run the plain way (singleton, orted over loopback TCP) checkpoints and restarts as a user, with the undisturbed result" {
	local ref=$U1_TMP/ref run=$U1_TMP/ck
	melt "$ref"
	melt "$run"
	run --separate-stderr as_user1 "$FERRY" exec "$IMG" sh -c "cd $ref && $LMP"
	[ "$status" -eq 0 ] || fail "the undisturbed run failed ($status): $stderr $(tail -5 "$ref/lmp.out")"
	[ "$(thermo "$ref" | wc -l)" -eq 11 ] || fail "the undisturbed run logged: $(thermo "$ref")"

	as_user1 "$FERRY" checkpoint create "$T" >/dev/null
	run --separate-stderr as_user1 "$FERRY" instance start --criu-launch "$T" "$IMG" lmp1 sh -c "cd $run && $LMP"
	[ "$status" -eq 0 ] || fail "instance start failed ($status): $stderr"
	for ((i = 0; i < 300; i++)); do at_step "$run" 4000 && break; sleep 0.1; done
	at_step "$run" 4000 || fail "the run did not get to step 4000: $(tail -5 "$run/lmp.out")"
	# an orted talks to the singleton over loopback TCP: what the dump must keep
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu lmp1
	[ "$status" -eq 0 ] || fail "the dump failed ($status): $stderr"
	wait_gone "$U1" lmp1
	at_step "$run" 16000 && fail "the run ended before the checkpoint: make it longer"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T"
	[ "$status" -eq 0 ] || fail "the restart failed ($status): $stderr"
	for ((i = 0; i < 1200; i++)); do instance_running "$U1" lmp1 || break; sleep 0.1; done
	instance_running "$U1" lmp1 && fail "the restarted run did not end"
	assert_equal "$(thermo "$run")" "$(thermo "$ref")"
}
