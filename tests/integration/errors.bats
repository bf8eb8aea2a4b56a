#!/usr/bin/env bats
# Every bad input: one line on stderr starting "ferry: ", exit 255, and nothing
# left behind (no instance record, process, loop device or mount).

load ../lib/common

setup_file() {
	ferry_suite_setup
	export BAD=$IMAGES/bad
	rm -rf "$BAD"
	mkdir -p "$BAD"
	local sq=$IMAGES/busybox.sqsh sif=$IMAGES/busybox.sif size
	head -c 65536 /dev/urandom >"$BAD/random.img"
	: >"$BAD/empty.img"
	echo "just some text, not an image" >"$BAD/text.img"
	size=$(stat -c %s "$sq")
	head -c $((size / 2)) "$sq" >"$BAD/half.sqsh"
	head -c 200 "$sq" >"$BAD/head200.sqsh"
	head -c 50 "$sq" >"$BAD/head50.sqsh"
	# a valid superblock followed by garbage: only the kernel can tell
	{ head -c 96 "$sq"; head -c $((size - 96)) /dev/urandom; } >"$BAD/garbage-body.sqsh"
	if [ -s "$sif" ]; then
		size=$(stat -c %s "$sif")
		head -c 64 "$sif" >"$BAD/head64.sif"
		head -c 100 "$sif" >"$BAD/head100.sif"
		head -c 4200 "$sif" >"$BAD/head4200.sif"
		head -c $((size - 4096)) "$sif" >"$BAD/short.sif"
		head -c $((size / 2)) "$sif" >"$BAD/half.sif"
	fi
	chmod -R a+rX "$BAD"
}
teardown_file() { ferry_suite_teardown; }

setup() {
	ferry_test_setup
	EXTRA_IMAGES=$(ls "$BAD"/* 2>/dev/null | tr '\n' ' ')
}
teardown() { ferry_teardown; }

# expect_clean: nothing left right now (the teardown checks again).
expect_clean() { wait_clean 3 || fail "left behind after the error"; }

@test "missing image: exec, run, shell and instance start, as a user and as root" {
	for who in as_user1 as_root; do
		for cmd in "exec /nonexistent/image.sif true" "run /nonexistent/image.sif" "shell /nonexistent/image.sif" \
			"instance start /nonexistent/image.sif ft-missing"; do
			echo "# $who ferry $cmd"
			run --separate-stderr $who ferry $cmd
			assert_ferry_error "/nonexistent/image.sif.*(does not exist|No such file)"
		done
	done
	run --separate-stderr as_user1 ferry exec no-such-relative.sqsh true
	assert_ferry_error "no-such-relative.sqsh"
	expect_clean
	[ ! -e "$(rundir_of 0)/ft-missing" ]
}

@test "corrupt images are refused cleanly: random bytes, empty, text, truncated squashfs" {
	for img in random.img empty.img text.img half.sqsh head200.sqsh head50.sqsh; do
		for who in as_user1 as_root; do
			echo "# $who $img"
			run --separate-stderr $who ferry exec "$BAD/$img" true
			assert_ferry_error "$img"
			run --separate-stderr $who ferry instance start "$BAD/$img" ft-corrupt
			assert_ferry_error "$img"
			expect_clean
		done
	done
	run as_user1 ferry instance list
	refute_output --partial ft-corrupt
}

@test "a squashfs with a valid superblock and a garbage body fails cleanly, no loop device left" {
	for who in as_user1 as_root; do
		run --separate-stderr $who timeout 20 ferry exec "$BAD/garbage-body.sqsh" /bin/true
		assert_ferry_error
		run --separate-stderr $who timeout 20 ferry instance start "$BAD/garbage-body.sqsh" ft-garbage
		assert_ferry_error
		expect_clean
		[ -z "$(losetup -j "$BAD/garbage-body.sqsh")" ] || fail "loop device left: $(losetup -j "$BAD/garbage-body.sqsh")"
	done
}

@test "truncated SIF files are refused cleanly" {
	use_image sif
	for img in head64.sif head100.sif head4200.sif short.sif half.sif; do
		for who in as_user1 as_root; do
			echo "# $who $img"
			run --separate-stderr $who ferry exec "$BAD/$img" true
			assert_ferry_error "$img"
			run --separate-stderr $who ferry instance start "$BAD/$img" ft-trunc
			assert_ferry_error "$img"
			expect_clean
		done
	done
}

@test "bad instance names are refused by start, stop and exec instance://" {
	use_image sqsh
	long=$(printf 'a%.0s' {1..65})
	for name in "a/b" "$long" "" ".." "." "-x" ".hidden" "a b" "a:b" 'a$b' "é" "../$U2_UID/x" "$(printf 'a\nb')"; do
		echo "# name '$name'"
		run --separate-stderr as_user1 ferry instance start "$IMG" "$name"
		assert_ferry_error "invalid instance name"
		run --separate-stderr as_user1 ferry instance stop "$name"
		assert_ferry_error "instance name|unknown option"
		run --separate-stderr as_user1 ferry exec "instance://$name" true
		assert_ferry_error "instance"
	done
	expect_clean
	[ -z "$(ls -A "$(rundir_of "$U1_UID")" 2>/dev/null)" ] || fail "records left: $(ls -A "$(rundir_of "$U1_UID")")"
}

@test "a 64-character instance name is fine" {
	use_image sqsh
	name=$(printf 'b%.0s' {1..64})
	run as_user1 ferry instance start "$IMG" "$name"
	assert_success
	run as_user1 ferry exec "instance://$name" true
	assert_success
	run as_user1 ferry instance stop "$name"
	assert_success
}

@test "a duplicate instance name is refused and the running instance is untouched" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		run as_user1 ferry instance start "$IMG" dup sleep 1000
		assert_success
		pid=$(instance_pid "$U1" dup)
		run --separate-stderr as_user1 ferry instance start "$IMG" dup sleep 1000
		assert_ferry_error "already exists"
		assert_equal "$(instance_pid "$U1" dup)" "$pid"
		run as_user1 ferry exec instance://dup true
		assert_success
		run as_user1 ferry instance stop dup
		assert_success
		assert_instance_gone "$U1" dup
	done
	use_image sqsh
	run ferry instance start "$IMG" ft-dup
	assert_success
	run --separate-stderr ferry instance start "$IMG" ft-dup
	assert_ferry_error "already exists"
	run ferry instance stop ft-dup
	assert_success
}

@test "a bind source that does not exist" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		for who in as_user1 as_root; do
			run --separate-stderr $who ferry exec -B "$U1_HOME/no/such/dir:/data" "$IMG" true
			assert_ferry_error "no/such/dir.*does not exist"
			run --separate-stderr $who ferry instance start -B "/no/such/dir:/data" "$IMG" ft-nobind
			assert_ferry_error "/no/such/dir"
		done
	done
	expect_clean
}

@test "a bind source ferry.conf does not allow" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		for src in /etc /root /var/tmp /usr/bin /; do
			run --separate-stderr as_user1 ferry exec -B "$src:/data" "$IMG" true
			assert_ferry_error "'$src'"
			run --separate-stderr as_user1 ferry instance start -B "$src:/data" "$IMG" nobind
			assert_ferry_error "'$src'"
		done
	done
	expect_clean
}

@test "unknown options and verbs" {
	use_image dir
	for args in "exec --bogus $IMG true" "exec -Z $IMG true" "run --bogus $IMG" "shell --bogus $IMG" \
		"instance start --bogus $IMG x" "instance stop --bogus x" "instance list --bogus" \
		"instance bogus" "bogusverb" "exec --bind"; do
		echo "# ferry $args"
		run --separate-stderr as_user1 ferry $args
		assert_ferry_error
	done
}

@test "missing operands" {
	use_image dir
	for args in "exec" "exec $IMG" "run" "shell" "instance start" "instance start $IMG" "instance stop" \
		"instance stop --all x"; do
		echo "# ferry $args"
		run --separate-stderr as_user1 ferry $args
		assert_ferry_error
	done
}

@test "another user's instance: stop and exec are refused, list does not show it" {
	use_image sqsh
	run as_user1 ferry instance start "$IMG" mine sleep 1000
	assert_success
	run --separate-stderr as_user2 ferry instance stop mine
	assert_ferry_error "no instance 'mine'"
	run --separate-stderr as_user2 ferry instance stop --signal KILL mine
	assert_ferry_error "no instance 'mine'"
	run --separate-stderr as_user2 ferry exec instance://mine true
	assert_ferry_error "no instance 'mine'"
	run as_user2 ferry instance list
	refute_output --partial mine
	run as_user2 ferry instance list --json
	refute_output --partial mine
	run as_user2 ferry instance stop --all
	assert_success
	# still running, untouched
	run as_user1 ferry exec instance://mine ps -o args
	assert_line "sleep 1000"
	run as_user1 ferry instance stop mine
	assert_success
}

@test "a workload that cannot be started makes instance start fail cleanly" {
	use_image sqsh
	run --separate-stderr as_user1 ferry instance start "$IMG" nocmd /no/such/program
	[ "$status" -ne 0 ] || fail "instance start of a missing program succeeded"
	assert_ferry_error "/no/such/program" "$status"
	expect_clean
	run as_user1 ferry instance list
	refute_output --partial nocmd
}

@test "--tcp-close and --skip-in-flight are refused where they do not belong, with a line that says where they do" {
	use_image sqsh >/dev/null
	run --separate-stderr as_user1 ferry checkpoint instance --criu --tcp-close ft-nosuch
	assert_ferry_error "--tcp-close belongs to a restore"
	run --separate-stderr as_user1 ferry checkpoint instance --criu --restore --skip-in-flight ft-nosuch
	assert_ferry_error "--restore takes neither"
	run --separate-stderr as_user1 ferry instance start --tcp-close "$IMG" ft-tcpclose sleep 1
	assert_ferry_error "--tcp-close belongs to --criu-restart"
	run --separate-stderr as_user1 ferry exec --tcp-close "$IMG" true
	assert_ferry_error "--tcp-close belongs to 'ferry instance start'"
	# and the starter refuses them too when a request is forged past the CLI (--criu-launch
	# with --tcp-close: flags 8 | 2048)
	forge_request --op 2 --flags 2056 --image "$IMG" --instance ft-tcpclose --cwd / --pwd / \
		--checkpoint "$U1_TMP" --arg sleep --arg 1 >"$U1_TMP/req"
	chmod 0644 "$U1_TMP/req"
	run runuser -u "$U1" -- sh -c 'exec "$1" 3<"$2"' ferry-test "$STARTER" "$U1_TMP/req"
	[ "$status" -ne 0 ] || fail "the starter took --tcp-close on a launch"
	assert_output --partial "--tcp-close belongs to a restart (--criu-restart)"
	expect_clean
}
