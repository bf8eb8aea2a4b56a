#!/usr/bin/env bats
# Staged dumps (issue 14, checkpoints that barely pause the job): a dump that leaves the job
# running is written to node-local memory ('checkpoint staging dir', a root-only directory on
# /dev/shm by default), the job runs again as soon as CRIU has dumped it, and the generation is
# drained into the checkpoint directory, synced, and only then published. As the unprivileged
# test user, with the memory-checked workload (tests/workloads/stateful.c). The pause itself is
# measured in the bench (bench/run.sh periodic), never timed here.

load ../lib/common
load ../lib/checkpoint

STAGE=/dev/shm/ferry-staging

setup_file() {
	ferry_suite_setup
	build_ckpt_workload
}

teardown_file() {
	ferry_suite_teardown
}

setup() {
	ferry_test_setup
	use_image sqsh >/dev/null
	T=ftst-$BATS_TEST_NUMBER
	CK=$(ckpt_dir "$U1" "$T")
	PROG=$U1_TMP/progress
	as_user1 "$FERRY" checkpoint delete "$T" >/dev/null 2>&1 || true
	as_user1 "$FERRY" checkpoint create "$T"
	SMALL=
	CG=
}

teardown() {
	ferry_teardown
	conf_restore
	as_user1 "$FERRY" checkpoint delete "$T" >/dev/null 2>&1 || true
	[ -z "$SMALL" ] || umount "$SMALL" 2>/dev/null || true
	[ -z "$SMALL" ] || rmdir "$SMALL" 2>/dev/null || true
	rm -rf /dev/shm/ftst-squat /dev/shm/.ftst-squat.moved-*
	[ -z "$CG" ] || rmdir "$CG" 2>/dev/null || true
}

# watch_staging OUT: in the background (as root), until the checkpoint directory has a new
# 'current', records what appears: "local" once a page image is in a node-local staging
# directory, "shared-empty" when the checkpoint's own staging had no page image at that moment.
watch_staging() {
	python3 - "$STAGE" "$CK" "$1" <<-'EOF' &
		import glob, os, sys, time
		stage, ck, out = sys.argv[1:4]
		seen = set()
		start = os.path.realpath(os.path.join(ck, "current")) if os.path.islink(os.path.join(ck, "current")) else None
		end = time.time() + 120
		while time.time() < end:
		    cur = os.path.join(ck, "current")
		    if os.path.islink(cur) and os.path.realpath(cur) != start:
		        break
		    if glob.glob(os.path.join(stage, ".staging-*", "images", "pages-*.img")):
		        seen.add("local")
		        if not glob.glob(os.path.join(ck, ".staging-*", "images", "pages-*.img")):
		            seen.add("shared-empty")
		    time.sleep(0.002)
		open(out, "w").write("".join(s + "\n" for s in sorted(seen)))
	EOF
	WATCH=$!
}

# job_counts USER INSTANCE: its workload still counts on (three more steps in its log)
job_counts() {
	local at i
	at=$(last_log_step "$1" "$2")
	for ((i = 0; i < 100; i++)); do
		[ "$(last_log_step "$1" "$2")" -ge $((at + 3)) ] && return 0
		sleep 0.1
	done
	fail "instance '$2' stopped counting at step $at"
}

# staging_empty: the node-local staging root holds nothing (every dump took its directory away)
staging_empty() { [ -z "$(ls -A "$STAGE" 2>/dev/null)" ]; }

@test "a dump left running is staged in node-local memory, drained, then published: it restarts, and nothing is left" {
	start_stateful "$U1" "$T" ftst-a "$PROG" --mb 128
	wait_step "$PROG" 3
	watch_staging "$BATS_TEST_TMPDIR/seen"
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --leave-running ftst-a
	[ "$status" -eq 0 ] || fail "dump failed: $stderr"
	wait "$WATCH" || true
	local at_dump seen
	at_dump=$(last_log_step "$U1" ftst-a)
	seen=$(cat "$BATS_TEST_TMPDIR/seen")
	# CRIU wrote into node-local memory, while the checkpoint directory's own staging was empty
	grep -qx local <<<"$seen" || fail "no page image was seen in $STAGE: '$seen'"
	grep -qx shared-empty <<<"$seen" || fail "the pages went straight to the checkpoint: '$seen'"
	[[ "$stderr" != *"not staged"* ]] || fail "$stderr"
	# root's and closed to everyone else, and empty again
	[ "$(stat -c '%u %a' "$STAGE")" = "0 700" ] || fail "$STAGE: $(stat -c '%U %a' "$STAGE")"
	staging_empty || fail "left in $STAGE: $(ls -A "$STAGE")"
	[ -z "$(find "$CK" -maxdepth 1 -name '.staging-*')" ] || fail "a staging directory is left in $CK"
	instance_running "$U1" ftst-a || fail "--leave-running stopped the instance"

	# the published generation restarts, exactly where the dump was
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T" "$IMG" ftst-b
	[ "$status" -eq 0 ] || fail "restart failed ($status): $stderr"
	local first i
	for ((i = 0; i < 100; i++)); do
		first=$(first_log_step "$U1" ftst-b)
		[ -n "$first" ] && break
		sleep 0.1
	done
	[ -n "$first" ] && [ "$first" -gt 1 ] && [ "$first" -le $((at_dump + 1)) ] ||
		fail "the copy started at step '$first', the dump was at $at_dump"
	assert_consecutive "$(inst_log "$U1" ftst-b out)"
	! grep -q FAIL "$(inst_log "$U1" ftst-b out)" "$PROG" || fail "the workload reported FAIL"
}

@test "killed while it drains: no generation is published, the previous one stays current, nothing is left, the job runs on" {
	start_stateful "$U1" "$T" ftst-k "$PROG" --mb 384
	wait_step "$PROG" 3
	as_user1 "$FERRY" checkpoint instance --criu --leave-running ftst-k
	local before pidf=$U1_TMP/starter
	before=$(readlink "$CK/current")
	[ -n "$before" ] || fail "the first dump published nothing"
	# the second dump's starter is killed once its drain has begun (a page image in the
	# checkpoint's own staging): the job already runs again
	rm -f "$pidf"
	as_user1 sh -c 'echo $$ > "$1"; exec "$2" checkpoint instance --criu --leave-running ftst-k' sh \
		"$pidf" "$FERRY" >/dev/null 2>&1 &
	local bg=$!
	python3 - "$CK" "$pidf" "$BATS_TEST_TMPDIR/killed" <<-'EOF'
		import glob, os, sys, time
		ck, pidf, out = sys.argv[1:4]
		end = time.time() + 60
		while time.time() < end:
		    if os.path.exists(pidf) and glob.glob(os.path.join(ck, ".staging-*", "images", "pages-*.img")):
		        os.kill(int(open(pidf).read()), 9)
		        open(out, "w").write("killed\n")
		        break
		    time.sleep(0.001)
	EOF
	wait "$bg" || true
	[ -s "$BATS_TEST_TMPDIR/killed" ] || fail "the drain was never seen"
	# the dump's guard (root's) removes both staging directories and leaves the job running
	wait_for staging_empty || fail "left in $STAGE: $(ls -A "$STAGE")"
	wait_for test -z "$(find "$CK" -maxdepth 1 -name '.staging-*')" || fail "a staging directory is left in $CK"
	[ "$(readlink "$CK/current")" = "$before" ] || fail "'current' moved to $(readlink "$CK/current")"
	[ "$(find "$CK" -maxdepth 1 -name 'gen-*' | wc -l)" -eq 1 ] || fail "generations: $(ls "$CK")"
	job_counts "$U1" ftst-k
	# and the next dump works
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --leave-running ftst-k
	[ "$status" -eq 0 ] || fail "the next dump failed: $stderr"
	[ "$(readlink "$CK/current")" != "$before" ] || fail "the next dump published nothing"
	staging_empty || fail "left in $STAGE: $(ls -A "$STAGE")"
}

@test "staging is no way in: a squatter's directory is moved aside, one below a user's directory is refused (a direct dump, with a note)" {
	# a user's symlink where the staging directory is to be: root never follows it
	as_user1 mkdir "$U1_TMP/trap"
	ln -s "$U1_TMP/trap" /dev/shm/ftst-squat
	chown -h "$U1:" /dev/shm/ftst-squat
	conf_set 'checkpoint staging dir = /dev/shm/ftst-squat'
	start_stateful "$U1" "$T" ftst-s "$PROG" --mb 16
	wait_step "$PROG" 3
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --leave-running ftst-s
	[ "$status" -eq 0 ] || fail "dump failed: $stderr"
	[[ "$stderr" != *"not staged"* ]] || fail "$stderr"
	[ -z "$(ls -A "$U1_TMP/trap")" ] || fail "root wrote into the user's directory: $(ls -A "$U1_TMP/trap")"
	[ "$(stat -c '%u %a %F' /dev/shm/ftst-squat)" = "0 700 directory" ] ||
		fail "the staging directory: $(stat -c '%U %a %F' /dev/shm/ftst-squat)"
	ls -d /dev/shm/.ftst-squat.moved-* >/dev/null || fail "the squatter's link was not moved aside"

	# below a directory of the user's: refused, the dump is direct and says so
	conf_set "checkpoint staging dir = $U1_TMP/stage"
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --leave-running ftst-s
	[ "$status" -eq 0 ] || fail "dump failed: $stderr"
	[[ "$stderr" == *"not staged in node-local memory ('$U1_TMP/stage'): "*"is not a directory of root's"* ]] ||
		[[ "$stderr" == *"not staged in node-local memory ('$U1_TMP/stage'): "*"writable by others than root"* ]] ||
		fail "no note, or not this one: $stderr"
	[ "$(grep -c 'not staged' <<<"$stderr")" -eq 1 ] || fail "$stderr"
	[ ! -e "$U1_TMP/stage" ] || fail "root made '$U1_TMP/stage'"
	[ -n "$(readlink "$CK/current")" ] || fail "nothing published"
	job_counts "$U1" ftst-s
}

@test "a job that does not fit in the staging filesystem, or under its cgroup's memory limit, is dumped directly, with a note" {
	SMALL=$(mktemp -d /run/ftst-small.XXXXXX)
	mount -t tmpfs -o size=16m,mode=0700 ftst-small "$SMALL"
	conf_set "checkpoint staging dir = $SMALL"
	start_stateful "$U1" "$T" ftst-f "$PROG" --mb 64
	wait_step "$PROG" 3
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --leave-running ftst-f
	[ "$status" -eq 0 ] || fail "dump failed: $stderr"
	[[ "$stderr" == *"not staged in node-local memory ('$SMALL'): the job's "*" MiB do not fit"* ]] ||
		fail "no note, or not this one: $stderr"
	[ -z "$(ls -A "$SMALL")" ] || fail "left in $SMALL: $(ls -A "$SMALL")"
	[ -n "$(readlink "$CK/current")" ] || fail "nothing published"
	job_counts "$U1" ftst-f
	# the node has room, but not the memory cgroup the dump runs in (a batch system's limit on the
	# job, which the staged copy would count against): direct, with a note
	conf_restore
	CG=/sys/fs/cgroup/memory/ftst-$$
	mkdir "$CG"
	echo $((80 << 20)) >"$CG/memory.limit_in_bytes"
	run --separate-stderr bash -c 'echo $BASHPID > "$1/cgroup.procs" && shift && exec "$@"' sh "$CG" \
		runuser -u "$U1" -- sh -c 'cd "$HOME" && exec "$@"' sh "$FERRY" checkpoint instance --criu --leave-running ftst-f
	[ "$status" -eq 0 ] || fail "dump failed: $stderr"
	[[ "$stderr" == *"not staged in node-local memory ('$STAGE'): the job's "*" MiB do not fit under the memory limit of its cgroup ("*" MiB left)"* ]] ||
		fail "no note, or not this one: $stderr"
	staging_empty || fail "left in $STAGE: $(ls -A "$STAGE")"
	job_counts "$U1" ftst-f
	# and with 'checkpoint staging = no', not a word: the dump is direct by the admin's choice
	conf_set "checkpoint staging dir = $SMALL" 'checkpoint staging = no'
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --leave-running ftst-f
	[ "$status" -eq 0 ] || fail "dump failed: $stderr"
	[[ "$stderr" != *"not staged"* ]] || fail "$stderr"
}
