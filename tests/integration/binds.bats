#!/usr/bin/env bats
# --bind SRC[:DST[:ro|rw]]: read-write, read-only, another destination, files,
# several binds, and the ferry.conf policy (home, 'allow bind path', root).

load ../lib/common

setup_file() { ferry_suite_setup; }
teardown_file() { ferry_suite_teardown; }
setup() {
	ferry_test_setup
	conf_save
	as_user1 mkdir "$U1_TMP/src"
	as_user1 sh -c "echo from-host > '$U1_TMP/src/in.txt'"
}
teardown() {
	conf_restore
	ferry_teardown
}

@test "bind a directory read-write to another destination, every form, user and root" {
	rootsrc=$(mktemp -d /var/tmp/ft-rootsrc.XXXXXX)
	echo from-host >"$rootsrc/in.txt"
	for f in "${FORMS[@]}"; do
		use_image "$f"
		for who in as_user1 as_root; do
			src=$U1_TMP/src
			[ "$who" = as_user1 ] || src=$rootsrc
			run $who ferry exec -B "$src:/data" "$IMG" sh -c "cat /data/in.txt; echo from-$f > /data/out-$f"
			assert_success
			assert_output "from-host"
			assert_equal "$(cat "$src/out-$f")" "from-$f"
		done
		[ "$(stat -c %U "$U1_TMP/src/out-$f")" = "$U1" ] || fail "file made inside not owned by $U1"
	done
	rm -rf "$rootsrc"
}

@test "root in the container has no DAC override: cannot write into a user's private bind" {
	use_image sqsh
	run as_root ferry exec -B "$U1_TMP/src:/data" "$IMG" sh -c 'echo x > /data/by-root'
	assert_failure
	[ ! -e "$U1_TMP/src/by-root" ]
}

@test "bind with :rw and --bind long option" {
	use_image sqsh
	run as_user1 ferry exec --bind "$U1_TMP/src:/data:rw" "$IMG" sh -c 'echo w > /data/w && cat /data/w'
	assert_success
	assert_output "w"
}

@test "bind read-only: reads work, writes fail, also for root" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		for who in as_user1 as_root; do
			run $who ferry exec -B "$U1_TMP/src:/data:ro" "$IMG" sh -c 'cat /data/in.txt; touch /data/new 2>/dev/null && echo WRITABLE; rm /data/in.txt 2>/dev/null && echo REMOVED; true'
			assert_success
			assert_output "from-host"
		done
	done
	[ -e "$U1_TMP/src/in.txt" ] && [ ! -e "$U1_TMP/src/new" ]
}

@test "bind a single file, to a path the image lacks and over one it has" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		run as_user1 ferry exec -B "$U1_TMP/src/in.txt:/etc/ft-bound.txt" -B "$U1_TMP/src/in.txt:/etc/ferry-test-image:ro" "$IMG" \
			sh -c 'cat /etc/ft-bound.txt /etc/ferry-test-image; [ -f /etc/ft-bound.txt ] && echo is-file'
		assert_success
		assert_output "from-host
from-host
is-file"
	done
}

@test "bind to a destination deep in a path the image lacks" {
	use_image sqsh
	run as_user1 ferry exec -B "$U1_TMP/src:/a/b/c/d" "$IMG" cat /a/b/c/d/in.txt
	assert_success
	assert_output "from-host"
}

@test "several binds: repeated -B and comma-separated" {
	as_user1 mkdir "$U1_TMP/two" "$U1_TMP/three"
	as_user1 sh -c "echo 2 > '$U1_TMP/two/f'; echo 3 > '$U1_TMP/three/f'"
	for f in "${FORMS[@]}"; do
		use_image "$f"
		run as_user1 ferry exec -B "$U1_TMP/src:/one" -B "$U1_TMP/two:/two:ro,$U1_TMP/three:/three" "$IMG" \
			sh -c 'cat /one/in.txt /two/f /three/f; touch /two/x 2>/dev/null && echo two-writable; touch /three/x && echo three-writable'
		assert_success
		assert_output "from-host
2
3
three-writable"
	done
}

@test "bind SRC alone binds it at the same path; a relative SRC is taken from the current directory" {
	use_image dir
	run as_user1 ferry exec --no-home -B "$U1_TMP/src" "$IMG" cat "$U1_TMP/src/in.txt"
	assert_success
	assert_output "from-host"
	run as_user1 sh -c "cd '$U1_TMP' && ferry exec -B src:/rel '$IMG' cat /rel/in.txt"
	assert_success
	assert_output "from-host"
	run as_user1 sh -c "cd '$U1_TMP' && ferry exec --no-home --contain -B src '$IMG' cat '$U1_TMP/src/in.txt'"
	assert_success
	assert_output "from-host"
}

@test "binds work with --contain" {
	use_image sqsh
	run as_user1 ferry exec --contain -B "$U1_TMP/src:/data" "$IMG" cat /data/in.txt
	assert_success
	assert_output "from-host"
}

@test "binding outside home is refused for users unless ferry.conf allows the path" {
	use_image sqsh
	run --separate-stderr as_user1 ferry exec -B "$FERRY_TEST_SHARED:/shared" "$IMG" cat /shared/shared.txt
	assert_ferry_error "not allowed by ferry.conf"
	conf_set "allow bind path = $FERRY_TEST_SHARED"
	for f in "${FORMS[@]}"; do
		use_image "$f"
		run as_user1 ferry exec -B "$FERRY_TEST_SHARED:/shared:ro" "$IMG" cat /shared/shared.txt
		assert_success
		assert_output "shared data"
		run as_user2 ferry exec -B "$FERRY_TEST_SHARED/shared.txt:/s.txt" "$IMG" cat /s.txt
		assert_success
		assert_output "shared data"
	done
	# a sibling with the same prefix is not below the allowed path
	mkdir -p "${FERRY_TEST_SHARED}2"
	run --separate-stderr as_user1 ferry exec -B "${FERRY_TEST_SHARED}2:/x" "$IMG" true
	rmdir "${FERRY_TEST_SHARED}2"
	assert_ferry_error "not allowed by ferry.conf"
	conf_restore
	run --separate-stderr as_user1 ferry exec -B "$FERRY_TEST_SHARED:/shared" "$IMG" true
	assert_ferry_error "not allowed by ferry.conf"
}

@test "root may bind any path" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		run as_root ferry exec -B /etc:/hostetc:ro "$IMG" cat /hostetc/hostname
		assert_success
		assert_output "$(cat /etc/hostname)"
		run as_root ferry exec -B "$FERRY_TEST_SHARED:/shared" "$IMG" cat /shared/shared.txt
		assert_output "shared data"
	done
}

@test "'user bind control = no' disables --bind for users, not for root" {
	use_image sqsh
	conf_set "user bind control = no"
	run --separate-stderr as_user1 ferry exec -B "$U1_TMP/src:/data" "$IMG" true
	assert_ferry_error "bind"
	run as_root ferry exec -B "$U1_TMP/src:/data" "$IMG" cat /data/in.txt
	assert_success
	assert_output "from-host"
	# the defaults (home, cwd, /tmp) still work
	run as_user1 ferry exec "$IMG" cat "$U1_TMP/src/in.txt"
	assert_success
}

@test "bind destinations in /proc, /sys, /dev, at / or with '..' are refused" {
	use_image dir
	for dst in /proc /proc/sys /sys/kernel /dev /dev/shm/x / /a/../etc relative/path; do
		echo "# destination $dst"
		run --separate-stderr as_user1 ferry exec -B "$U1_TMP/src:$dst" "$IMG" true
		assert_ferry_error
	done
}

@test "malformed bind specs are refused" {
	use_image dir
	for spec in ":" ":/x" "$U1_TMP/src:" "$U1_TMP/src:/x:" "$U1_TMP/src:/x:rx" "$U1_TMP/src:/x:ro:extra"; do
		echo "# spec '$spec'"
		run --separate-stderr as_user1 ferry exec -B "$spec" "$IMG" true
		assert_ferry_error
	done
}

@test "empty bind specs are refused, not silently ignored" {
	use_image dir
	for spec in "" "," "$U1_TMP/src:/x,,$U1_TMP/src:/y"; do
		echo "# spec '$spec'"
		run --separate-stderr as_user1 ferry exec -B "$spec" "$IMG" true
		assert_ferry_error "empty"
	done
}

@test "bind mounts are nosuid and nodev" {
	conf_set "allow bind path = $FERRY_TEST_SHARED"
	d=$FERRY_TEST_SHARED/suid
	rm -rf "$d"
	mkdir -p "$d"
	cp /bin/busybox "$d/busybox-suid"
	chown root:root "$d/busybox-suid"
	chmod 4755 "$d/busybox-suid"
	mknod "$d/null-dev" c 1 3
	chmod 0666 "$d/null-dev"
	use_image sqsh
	run as_user1 ferry exec -B "$d:/suid" "$IMG" sh -c '/suid/busybox-suid id -u; echo x 2>/dev/null > /suid/null-dev && echo DEV-WORKS; true'
	rm -rf "$d"
	assert_success
	assert_output "$U1_UID"
}
