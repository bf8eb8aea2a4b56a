#!/usr/bin/env bats
# The three image forms: detection, ferry build, ferry inspect, paths.

load ../lib/common

setup_file() { ferry_suite_setup; }
teardown_file() { ferry_suite_teardown; }
setup() { ferry_test_setup; }
teardown() { ferry_teardown; }

@test "the test images exist in all three forms and are readable by users" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		run as_user2 test -r "$IMG"
		assert_success
	done
	use_image sif
	assert_equal "$(dd if="$IMG" bs=1 skip=32 count=9 2>/dev/null)" "SIF_MAGIC"
	use_image sqsh
	assert_equal "$(head -c 4 "$IMG")" "hsqs"
}

@test "ferry inspect names each form" {
	declare -A kind=([dir]=directory [sqsh]=squashfs [sif]=SIF)
	for f in "${FORMS[@]}"; do
		use_image "$f"
		for who in as_user1 as_root; do
			run $who ferry inspect "$IMG"
			assert_success
			assert_line --regexp "^Kind: +${kind[$f]}\$"
		done
	done
}

@test "ferry inspect refuses corrupt images with a non-zero status" {
	f=$U1_TMP/random.img
	head -c 8192 /dev/urandom >"$f"
	chmod a+r "$f"
	run as_user1 ferry inspect "$f"
	assert_equal "$status" 255
	run as_user1 ferry inspect /nonexistent/image
	assert_equal "$status" 255
}

@test "a user builds a SIF and a squashfs from a directory in their home and runs them" {
	as_user1 cp -a "$IMAGES/busybox.sandbox" "$U1_TMP/rootfs"
	as_user1 sh -c "echo user-built > '$U1_TMP/rootfs/etc/ferry-test-image'"
	run as_user1 ferry build "$U1_TMP/mine.sif" "$U1_TMP/rootfs"
	assert_success
	run as_user1 ferry build "$U1_TMP/mine.sqsh" "$U1_TMP/rootfs"
	assert_success
	EXTRA_IMAGES="$U1_TMP/mine.sif $U1_TMP/mine.sqsh"
	for img in "$U1_TMP/mine.sif" "$U1_TMP/mine.sqsh" "$U1_TMP/rootfs"; do
		run as_user1 ferry exec "$img" cat /etc/ferry-test-image
		assert_success
		assert_output "user-built"
		run as_user1 ferry run "$img" x
		assert_line --index 0 "runscript args: x"
	done
	# files are root's inside a built image, the user's in a sandbox
	run as_user1 ferry exec "$U1_TMP/mine.sif" stat -c %u /etc/ferry-test-image
	assert_output "0"
	run as_user1 ferry exec "$U1_TMP/rootfs" stat -c %u /etc/ferry-test-image
	assert_output "$U1_UID"
}

@test "ferry build refuses to overwrite without --force" {
	run as_user1 ferry build "$U1_TMP/a.sif" "$IMAGES/busybox.sandbox"
	assert_success
	run --separate-stderr as_user1 ferry build "$U1_TMP/a.sif" "$IMAGES/busybox.sandbox"
	assert_ferry_error
	run as_user1 ferry build --force "$U1_TMP/a.sif" "$IMAGES/busybox.sandbox"
	assert_success
}

@test "relative image paths, paths with spaces and symlinks to images work" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		run as_user1 sh -c "cd '$(dirname "$IMG")' && ferry exec '$(basename "$IMG")' cat /etc/ferry-test-image"
		assert_success
		assert_output "ferry busybox test image"
		as_user1 mkdir -p "$U1_TMP/with space"
		as_user1 ln -s "$IMG" "$U1_TMP/with space/link-$f"
		run as_user1 ferry exec "$U1_TMP/with space/link-$f" cat /etc/ferry-test-image
		assert_success
		assert_output "ferry busybox test image"
		run as_user1 sh -c "cd '$U1_TMP/with space' && ferry instance start link-$f inst-$f && ferry instance list"
		assert_success
		assert_output --partial "inst-$f"
		run as_user1 ferry instance stop "inst-$f"
		assert_success
	done
}

@test "one image serves many containers at once; every loop device goes away after" {
	for f in sqsh sif; do
		use_image "$f"
		for i in 1 2 3; do
			run as_user1 ferry instance start "$IMG" many-$f-$i
			assert_success
		done
		run as_user2 ferry instance start "$IMG" many-$f
		assert_success
		run as_user1 ferry exec "$IMG" true
		assert_success
		run as_user1 ferry instance stop --all
		assert_success
		run as_user2 ferry instance stop --all
		assert_success
		wait_clean 10
		[ -z "$(losetup -j "$IMG")" ] || fail "loop devices left on $IMG: $(losetup -j "$IMG")"
	done
}

@test "a squashfs and a SIF are attached to a read-only loop device" {
	for f in sqsh sif; do
		use_image "$f"
		run as_user1 ferry instance start "$IMG" ro-$f
		assert_success
		run sh -c "losetup -j '$IMG' -O RO -n"
		assert_success
		assert_output --regexp '^ *1$'
		run as_user1 ferry instance stop ro-$f
		assert_success
	done
}

@test "FERRY_CONTAINER names the image inside" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		run as_user1 ferry exec "$IMG" sh -c 'echo $FERRY_CONTAINER'
		assert_output "$IMG"
	done
}
