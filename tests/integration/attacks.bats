#!/usr/bin/env bats
# The attack run of issue 11, replayed: each test is one finding, tried by the unprivileged test
# users the way the attack run did it. Each failed on the main before its fix.
#   F1  a checkpoint path through /proc/PID/root into a mount namespace the user made
#   F4  the same door used to swap a sealed launch request
#   F6  a command line long enough to push the instance record over its size limit
#   F8  another user reading a checkpoint
#   F10 a --mem-dir name squatted by another user
#   F11 the user killing the starter and CRIU in the middle of a dump, or stopping them
#   and an fd of the user's own where ferryd's starter takes its decision byte (fd 5)

load ../lib/common
load ../lib/checkpoint

VICTIM=/var/tmp/ft-attack-victim

setup_file() {
	ferry_suite_setup
	build_ckpt_workload
}
teardown_file() {
	ferry_suite_teardown
	local u
	for u in "$U1" "$U2"; do
		rm -rf "$(home_of "$u")"/.ferry/checkpoint/ftat-* "$(home_of "$u")"/ftat-*
		rm -rf /dev/shm/ferry-"$(id -u "$u")"-ftat-* /dev/shm/ferry-"$(id -u "$u")"
	done
}

setup() {
	ferry_test_setup
	conf_save
	use_image sqsh >/dev/null
	T=ftat-$BATS_TEST_NUMBER
	U1_TMP=$(as_user1 mktemp -d /tmp/ftat.XXXXXX)
}

teardown() {
	[ -z "${NS_PID:-}" ] || kill -KILL "$NS_PID" 2>/dev/null || true
	[ -z "${DUMP_PID:-}" ] || kill -KILL $(tree_of "$DUMP_PID") 2>/dev/null || true
	conf_restore
	rm -rf "$VICTIM" "$U1_TMP"
	ferry_teardown
}

# victim_tree: a root-owned tree with a file of root's and a private directory of user2's
victim_tree() {
	rm -rf "$VICTIM"
	mkdir -p "$VICTIM/gen-000007" "$VICTIM/u2private"
	echo precious >"$VICTIM/precious"
	echo precious >"$VICTIM/gen-000007/precious"
	chown "$U2:" "$VICTIM/u2private"
	chmod 0700 "$VICTIM/u2private"
	as_user2 sh -c "echo mine > '$VICTIM/u2private/file'"
	chmod 0755 "$VICTIM"
}

victim_intact() {
	[ -f "$VICTIM/precious" ] && [ -f "$VICTIM/gen-000007/precious" ] &&
		[ -f "$VICTIM/u2private/file" ] || fail "root removed files of the victim tree: $(find "$VICTIM" | tr '\n' ' ')"
}

# user1_mount_ns DIR: user1 binds $VICTIM onto DIR/gen-000001 in a mount namespace of their own
# (unshare -Urm) that stays alive; NS_PID is its process.
user1_mount_ns() {
	local dir=$1 flag=$U1_TMP/ns-ready
	as_user1 mkdir -p "$dir/gen-000001"
	as_user1 unshare -Urm sh -c 'mount --bind "$1" "$2/gen-000001" && echo $$ >"$3" && exec sleep 120' \
		sh "$VICTIM" "$dir" "$flag" &
	wait_for test -s "$flag"
	NS_PID=$(cat "$flag")
}

@test "F1: a checkpoint delete through /proc/PID/root cannot make root empty another tree" {
	victim_tree
	local dir=$U1_HOME/$T
	user1_mount_ns "$dir"
	# the attack's path: user1's own namespace, where gen-000001 is the victim tree
	[ -f "/proc/$NS_PID/root$dir/gen-000001/precious" ] || fail "the attack's bind mount is not in place"
	forge_request --op 6 --flags 0 --checkpoint "/proc/$NS_PID/root$dir" >"$U1_TMP/req"
	chmod 0644 "$U1_TMP/req"
	run --separate-stderr starter_as "$U1" "$U1_TMP/req"
	assert_ferry_error "through /proc"
	victim_intact
}

@test "F1: root never descends into a mount point inside a checkpoint directory" {
	victim_tree
	local dir=$U1_HOME/$T
	as_user1 mkdir -p "$dir/gen-000001"
	# a mount the user did not make but that sits in their checkpoint directory (an admin's, or
	# FUSE): deleting the checkpoint removes nothing below it
	mount --bind "$VICTIM" "$dir/gen-000001"
	run as_user1 "$FERRY" checkpoint delete "$dir"
	umount "$dir/gen-000001"
	victim_intact
}

@test "F4: a restart through /proc/PID/root is refused before anything is read" {
	victim_tree
	local dir=$U1_HOME/$T
	user1_mount_ns "$dir"
	forge_request --op 2 --flags $((1 << 4)) --checkpoint "/proc/$NS_PID/root$dir" --instance ftat-f4 \
		>"$U1_TMP/req"
	chmod 0644 "$U1_TMP/req"
	run --separate-stderr starter_as "$U1" "$U1_TMP/req"
	assert_ferry_error "through /proc"
	victim_intact
}

@test "F6: a long command line neither hides an instance nor beats 'max instances'" {
	conf_set "max instances = 2"
	local long
	long=$(head -c 24000 /dev/zero | tr '\0' x)
	run --separate-stderr as_user1 "$FERRY" instance start "$IMG" ftat-long sh -c 'exec sleep 1000' "$long"
	assert_success
	run as_user1 "$FERRY" instance list
	assert_line --regexp '^ftat-long '
	run as_user1 "$FERRY" instance list --json
	assert_output --partial '"ftat-long"'
	run as_user1 "$FERRY" instance start "$IMG" ftat-long2 sh -c 'exec sleep 1000' "$long"
	assert_success
	run --separate-stderr as_user1 "$FERRY" instance start "$IMG" ftat-long3 sh -c 'exec sleep 1000' "$long"
	assert_ferry_error "max instances"
	run as_user1 "$FERRY" instance stop ftat-long
	assert_success
	run as_user1 "$FERRY" instance stop ftat-long2
	assert_success
	assert_instance_gone "$U1" ftat-long
	assert_instance_gone "$U1" ftat-long2
}

@test "F8: no other user reads a byte of a checkpoint, whatever modes its owner gives" {
	local ck=$T-ck d prog=$U1_TMP/progress g f
	as_user1 "$FERRY" checkpoint create "$ck"
	d=$(ckpt_dir "$U1" "$ck")
	start_stateful "$U1" "$ck" ftat-f8 "$prog" --mb 8
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu ftat-f8
	assert_success
	# the owner opens everything up
	as_user1 chmod 0755 "$U1_HOME" "$U1_HOME/.ferry" "$U1_HOME/.ferry/checkpoint" "$d"
	g=$(current_gen "$d")
	run as_user2 ls "$g"
	assert_failure
	for f in "$g"/*; do
		run as_user2 cat "$f"
		assert_failure
		as_user1 cat "$f" >/dev/null || fail "the owner cannot read '$f'"
	done
	chmod 0700 "$U1_HOME"
}

@test "F10: a name squatted in the tmpfs does not block another user's --mem-dir checkpoint" {
	local ck=$T-mem
	rm -rf /dev/shm/ferry-"$U1_UID" # (the name ferry used before)
	as_user2 mkdir -m 0777 /dev/shm/ferry-"$U1_UID"
	run --separate-stderr as_user1 "$FERRY" checkpoint create --mem-dir "$ck"
	assert_success
	[ "$(stat -c %U "$output")" = "$U1" ] || fail "'$output' is not user1's"
	run as_user1 "$FERRY" checkpoint delete "$ck"
	assert_success
	rmdir /dev/shm/ferry-"$U1_UID"
}

# tree_of PID: PID and all its descendants
tree_of() {
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ parent[$1] = $2 }
		END {
			keep[root] = 1
			do {
				n = 0
				for (p in parent)
					if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; n++ }
			} while (n > 0)
			for (p in keep) print p
		}'
}

# user1_kill_dump PID: user1 kills every process of the dump command PID (the CLI, the starter,
# CRIU...), by pid, as far as user1 can
user1_kill_dump() {
	local pids
	pids=$(tree_of "$1" | tr '\n' ' ')
	as_user1 kill -KILL $pids 2>/dev/null || true
}

@test "F11: killing the starter and CRIU mid-dump leaves the job running and nothing of root's" {
	local ck=$T-ck d prog=$U1_TMP/progress s i delay pid
	as_user1 "$FERRY" checkpoint create "$ck"
	d=$(ckpt_dir "$U1" "$ck")
	start_stateful "$U1" "$ck" ftat-f11 "$prog" --mb 512
	for delay in 0 0.3 1; do
		as_user1 "$FERRY" checkpoint instance --criu ftat-f11 >/dev/null 2>&1 &
		pid=$!
		# the dump has begun: its staging directory is there
		wait_for sh -c "ls -A '$d' | grep -q '^\.staging-'"
		sleep "$delay"
		user1_kill_dump "$pid"
		wait || true
		# the guard resumes the job and removes the staging directory
		for ((i = 0; i < 100; i++)); do
			[ -z "$(find "$d" -mindepth 1 -maxdepth 1 -name '.staging-*')" ] && break
			sleep 0.1
		done
		[ -z "$(find "$d" -mindepth 1 -maxdepth 1 -name '.staging-*')" ] ||
			fail "a staging directory is left after the kill at ${delay}s: $(ls -la "$d")"
		[ -z "$(find "$d" -mindepth 1 -maxdepth 1 -uid 0 ! -name 'gen-*' ! -name current)" ] ||
			fail "root's files are left: $(ls -la "$d")"
		# whatever the moment, the job was either checkpointed (and ends) or runs on, never
		# stopped. Which one is the checkpoint's word, not the list's: the instance of a
		# published dump may still be listed for a moment while its init ends.
		if [ "$(ckpt_json_field "$U1" "$ck" state)" = complete ]; then
			echo "# killed at ${delay}s: the dump had been published" >&3
			wait_gone "$U1" ftat-f11
			return 0
		fi
		echo "# killed at ${delay}s: the job runs on" >&3
		instance_running "$U1" ftat-f11 || fail "the job is gone and no checkpoint holds it"
		s=$(step_of "$prog")
		(wait_step "$prog" $((s + 2)) 30) ||
			fail "the job does not run on after the kill at ${delay}s: $(cat "$prog");" \
				"$(ps -u "$U1" -o pid=,stat=,wchan:24=,comm=)"
	done
	run sh -c "ps -u '$U1' -o stat=,comm= | awk '\$2 == \"stateful\" && \$1 ~ /^T/'"
	[ -z "$output" ] || fail "the workload is left stopped: $output"
	as_user1 "$FERRY" instance stop ftat-f11
}

@test "fd 5: a file of the caller's own in place of ferryd's decision fd is never written by root" {
	local ck=$T-ck to=$U1_HOME/$T-to prog=$U1_TMP/progress mark=$U1_TMP/mark
	as_user1 "$FERRY" checkpoint create "$ck"
	as_user1 "$FERRY" checkpoint create "$to"
	start_stateful "$U1" "$ck" ftat-fd5 "$prog" --mb 8
	# a dump into another directory is a migration's: its starter writes ferryd's byte on fd 5
	# once the dump is published. The user asks for one themselves, with their own file there.
	forge_request --op 5 --flags 0 --instance ftat-fd5 --checkpoint "$to" >"$U1_TMP/req"
	chmod 0644 "$U1_TMP/req"
	as_user1 sh -c 'printf X >"$1"' sh "$mark"
	run --separate-stderr as_user1 sh -c 'exec "$1" 3<"$2" 5<>"$3"' sh "$STARTER" "$U1_TMP/req" "$mark"
	[ "$status" -eq 0 ] || fail "the dump into another directory failed ($status): $stderr"
	[ -d "$(current_gen "$to")" ] || fail "the dump was not published in '$to': $(ls -la "$to")"
	[ "$(cat "$mark")" = X ] || fail "root wrote the decision byte into the user's own file: $(od -c "$mark")"
	[ "$(stat -c %u "$mark")" = "$U1_UID" ] || fail "the user's file changed owner"
}

# in_tree PID COMM: a process named COMM among PID's descendants (PID too)
in_tree() {
	local p
	for p in $(tree_of "$1"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" != "$2" ] || { echo "$p" && return 0; }
	done
	return 1
}

# thawed INST DIR PROG: the workload of INST runs again (none of its processes stopped, its
# counter moves) and no staging directory is left in DIR
thawed() {
	[ -z "$(find "$2" -mindepth 1 -maxdepth 1 -name '.staging-*')" ] || return 1
	[ -z "$(ps -u "$U1" -o stat=,comm= | awk '$2 == "stateful" && $1 ~ /^[Tt]/')" ] || return 1
	local s
	s=$(step_of "$3")
	sleep 0.5
	[ "$(step_of "$3")" != "$s" ]
}

@test "F11: stopping the starter or ferry-criu mid-dump does not keep the job frozen: the guard gives up after 'criu timeout'" {
	local ck=$T-ck d prog=$U1_TMP/progress who victim i gid s
	as_user1 "$FERRY" checkpoint create "$ck"
	d=$(ckpt_dir "$U1" "$ck")
	# 1.5 GB: its dump lasts long enough for the test to find ferry-criu and stop it (with 512 MB
	# a loaded machine saw it end first)
	start_stateful "$U1" "$ck" ftat-stop "$prog" --mb 1536
	conf_set "criu timeout = 3"
	gid=$(id -g "$U1")
	for who in ferry-starter ferry-criu; do
		# setpriv, not runuser (which stops with its stopped child); the CLI execs the starter
		setpriv --reuid="$U1_UID" --regid="$gid" --init-groups env -C "$U1_HOME" HOME="$U1_HOME" \
			USER="$U1" LOGNAME="$U1" "$FERRY" checkpoint instance --criu ftat-stop \
			>"$BATS_TEST_TMPDIR/dump.out" 2>"$BATS_TEST_TMPDIR/dump.err" &
		DUMP_PID=$!
		# the dump has begun: CRIU runs (the tree is frozen under it)
		wait_for in_tree "$DUMP_PID" criu >/dev/null || fail "no CRIU ran: $(cat "$BATS_TEST_TMPDIR"/dump.*)"
		# (the starter is the client itself, exec'd; its guard, root's, has the same name)
		victim=$DUMP_PID
		[ "$who" = ferry-starter ] || victim=$(wait_for in_tree "$DUMP_PID" "$who") ||
			fail "no $who in the dump's tree: $(ps -o pid=,ppid=,stat=,comm= -p "$(tree_of "$DUMP_PID" | paste -sd,)")"
		[ "$(cat "/proc/$victim/comm")" = "$who" ] || fail "$victim is not $who"
		as_user1 kill -STOP "$victim"
		# within 'criu timeout' and the guard's 10 s for CRIU, the job runs again, nothing staged
		for ((i = 0; i < 60; i++)); do
			thawed ftat-stop "$d" "$prog" && break
			sleep 0.5
		done
		thawed ftat-stop "$d" "$prog" || fail "$who stopped: the job is still frozen or staged after 30 s: $(ls -A "$d"; ps -u "$U1" -o pid=,stat=,comm=)"
		# the starter, let go on, fails loudly, and nothing was published (a stopped ferry-criu:
		# the starter itself gave up, and the guard killed it)
		if [ "$who" = ferry-starter ]; then
			as_user1 kill -CONT "$victim"
		else
			! kill -0 "$victim" 2>/dev/null || fail "the stopped ferry-criu is left: $(ps -o pid=,stat=,comm= -p "$victim")"
		fi
		for ((i = 0; i < 300; i++)); do
			kill -0 "$DUMP_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$DUMP_PID" 2>/dev/null && fail "$who stopped: the client still runs 30 s after SIGCONT"
		status=0
		wait "$DUMP_PID" || status=$?
		DUMP_PID=
		stderr=$(cat "$BATS_TEST_TMPDIR/dump.err")
		echo "# $who stopped: $stderr" >&3
		if [ "$who" = ferry-starter ]; then
			assert_ferry_error "given up: its starter was stopped for more than 3 s"
		else
			assert_ferry_error "made no progress for 3 s"
		fi
		grep -q "keeps running" <<<"$stderr" || fail "the error does not say the instance keeps running: $stderr"
		instance_running "$U1" ftat-stop || fail "$who stopped: the instance is gone"
		[ -z "$(ls -A "$d" | grep -vx dump.log)" ] || fail "$who stopped: the dump left: $(ls -la "$d")"
		[ "$(ckpt_json_field "$U1" "$ck" state)" = empty ] || fail "$who stopped: a checkpoint was published"
	done
	# the tree was left as CRIU can dump it again
	conf_restore
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --leave-running ftat-stop
	[ "$status" -eq 0 ] || fail "a dump after the give-ups failed ($status): $stderr"
	s=$(step_of "$prog")
	wait_step "$prog" $((s + 2))
	assert_progress_ok "$prog"
	as_user1 "$FERRY" instance stop ftat-stop
}
