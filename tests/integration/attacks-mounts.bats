#!/usr/bin/env bats
# attacks-mounts.bats — the container's mounts against a user who chooses bind destinations and
# image symlinks: nothing the container mounts reaches the host's mount tree (even where the
# host's / is shared, as systemd makes it), no bind lands on /proc, /sys, /dev or ferry's own
# /.ferry however its destination is spelt or reached, and ferry's own files inside the
# container (stdio, the CRIU bundle) are the ones the starter opened.
# Runs as the unprivileged test user ferrytest1 against the installed ferry.

load ../lib/common

setup_file() { ferry_suite_setup; }
teardown_file() { ferry_suite_teardown; }

setup() {
	ferry_test_setup
	use_image dir
	as_user1 mkdir "$U1_TMP/evil"
	as_user1 sh -c "echo evil > '$U1_TMP/evil/marker'"
}

teardown() {
	as_user1 "$FERRY" instance stop --all --timeout 3 >/dev/null 2>&1 || true
	rm -rf "/tmp/ft-mounts.$BATS_TEST_NUMBER" "/var/tmp/ft-mounts-cwd.$BATS_TEST_NUMBER" \
		"$U1_HOME"/.ferry/checkpoint/ftmk-*
	ferry_teardown
}

# link_image LINK TARGET...: a copy of the test sandbox, user1's, with /LINK -> TARGET for each
# pair, and TARGET a directory of the image (else ferry makes /LINK a directory of its own, as
# for any missing mount point); sets LIMG
link_image() {
	LIMG=$U1_TMP/img
	as_user1 cp -a "$IMAGES/busybox.sandbox" "$LIMG"
	as_user1 chmod u+w "$LIMG"
	while [ $# -ge 2 ]; do
		as_user1 mkdir -p "$LIMG$(realpath -m "/$2")"
		as_user1 ln -s "$2" "$LIMG/$1"
		shift 2
	done
}

# shared_ns_run DIR: in a mount namespace of its own whose / is shared (a systemd host's), user1
# runs 'ferry exec -B evil:DIR/target' from DIR, where DIR is inside a tree the container binds
# (home, /tmp, the current directory); prints the mounts on DIR/target in that namespace before,
# while the container runs, and after it ended
shared_ns_run() {
	local dir=$1
	# rprivate first: the namespace's peer groups are then its own, and nothing the old code
	# leaked can reach this machine's real mount tree
	unshare -m --propagation unchanged bash -s "$U1" "$dir" "$FERRY" "$U1_TMP/evil" "$IMG" <<-'EOF'
		u=$1 dir=$2 ferry=$3 evil=$4 img=$5
		mount --make-rprivate / && mount --make-rshared / || exit 90
		on_target() { awk -v t="$dir/target" '$5 == t' /proc/self/mountinfo | wc -l; }
		echo "before $(on_target)"
		runuser -u "$u" -- env -C "$dir" "$ferry" exec -B "$evil:$dir/target" "$img" \
			sh -c 'touch started; i=0; while [ ! -e go ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done' &
		pid=$!
		i=0
		while [ ! -e "$dir/started" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
		echo "during $(on_target)"
		touch "$dir/go"
		wait "$pid"
		echo "exit $?"
		echo "after $(on_target)"
	EOF
}

@test "F1: a bind under the bound home, /tmp or cwd does not propagate to a shared host tree" {
	local t=/tmp/ft-mounts.$BATS_TEST_NUMBER cwd=/var/tmp/ft-mounts-cwd.$BATS_TEST_NUMBER
	mkdir -p "$t" "$cwd"
	chown "$U1:" "$t" "$cwd"
	for d in "$U1_TMP" "$t" "$cwd"; do
		as_user1 mkdir "$d/target"
		run shared_ns_run "$d"
		echo "# $d: $output"
		assert_line "before 0"
		assert_line "exit 0"
		assert_line "during 0"
		assert_line "after 0"
	done
}

@test "F2: a bind destination not in canonical form is refused" {
	for d in //dev /./proc //.ferry //sys/kernel /dev/ /tmp//x /tmp/./x /tmp/x/. /tmp/x/ "$U1_TMP//sub"; do
		run --separate-stderr as_user1 "$FERRY" exec -B "$U1_TMP/evil:$d" "$IMG" true
		echo "# -B ...:$d"
		assert_ferry_error "bind destination '.*'"
	done
	# the CLI's own default (DST = SRC) is made canonical, not refused
	run --separate-stderr as_user1 "$FERRY" exec -B "$U1_TMP/./evil/" "$IMG" cat "$U1_TMP/evil/marker"
	assert_success
	assert_output evil
}

@test "F2: an image symlink cannot make a bind land on /proc, /sys or /dev" {
	link_image x /dev y /proc/sys w /sys/fs v ../dev/pts p /proc
	EXTRA_IMAGES=
	for l in x y w v p; do
		run --separate-stderr as_user1 "$FERRY" exec -B "$U1_TMP/evil:/$l" "$LIMG" \
			sh -c 'test -c /dev/null && ls /proc/self >/dev/null && echo intact'
		echo "# -B ...:/$l -> $(readlink "$LIMG/$l"): $status $output $stderr"
		assert_ferry_error "bind destination '/$l' .*(/proc|/sys|/dev)"
	done
	# a symlink that stays inside the image and lands elsewhere is still followed
	as_user1 mkdir "$LIMG/data.d"
	as_user1 ln -s /data.d "$LIMG/data"
	run --separate-stderr as_user1 "$FERRY" exec -B "$U1_TMP/evil:/data" "$LIMG" cat /data.d/marker
	assert_success
	assert_output evil
}

@test "F2: an instance's stdin and logs are ferry's, whatever the binds" {
	# a fake /dev whose null is the user's link to a file they cannot read
	as_user1 mkdir "$U1_TMP/fakedev"
	as_user1 ln -s /etc/shadow "$U1_TMP/fakedev/null"
	link_image x /dev
	run --separate-stderr as_user1 "$FERRY" instance start --contain -B "$U1_TMP/fakedev:/x" "$LIMG" ft-null \
		sh -c 'cat; sleep 30'
	[ "$status" -ne 0 ] || as_user1 "$FERRY" instance stop ft-null
	assert_ferry_error "bind destination '/x'"
	run grep -rl root: "$U1_HOME/.ferry/instances"
	assert_failure
}

@test "F3: a user's bind cannot cover ferry's /.ferry, in a checkpointable instance either" {
	link_image z /.ferry zc /.ferry/criu
	as_user1 mkdir "$U1_TMP/evil/criu"
	for l in z zc; do
		run --separate-stderr as_user1 "$FERRY" instance start -B "$U1_TMP/evil:/$l" "$LIMG" ft-dot sleep 30
		[ "$status" -ne 0 ] || as_user1 "$FERRY" instance stop ft-dot
		echo "# instance, -B ...:/$l: $status $stderr"
		assert_ferry_error "bind destination '/$l' .*/\.ferry"
		ck=ftmk-$l
		as_user1 "$FERRY" checkpoint create "$ck" >/dev/null
		run --separate-stderr as_user1 "$FERRY" instance start --criu-launch "$ck" -B "$U1_TMP/evil:/$l" \
			"$LIMG" ft-dotc sleep 30
		[ "$status" -ne 0 ] || as_user1 "$FERRY" instance stop ft-dotc
		echo "# --criu-launch, -B ...:/$l: $status $stderr"
		assert_ferry_error "bind destination '/$l' .*/\.ferry"
	done
}
