#!/usr/bin/env bats
# The privilege boundary: another user's instances, the bind policy, symlinks
# into root-owned places, malicious images, and ferry-starter called directly
# with garbage or forged requests.

load ../lib/common

SECRET_DIR=/var/tmp/ferry-test-secret

setup_file() { ferry_suite_setup; }
teardown_file() { ferry_suite_teardown; }
setup() {
	ferry_test_setup
	conf_save
}
teardown() {
	conf_restore
	rm -rf "$SECRET_DIR" /root/ft-secret.sqsh /root/ft-secret-marker
	ferry_teardown
}

# host_etc_state: what must not change on the host when a container misbehaves
host_etc_state() {
	find /etc -xdev -maxdepth 1 -printf '%p %i %s %T@\n' | sort | sha256sum
	findmnt -rn -o TARGET | grep -E '^/(etc|root|proc|sys|dev)(/|$)' | sort | sha256sum
}

# ------------------------------------------------------------ other users' instances

@test "user2 cannot stop, signal or exec into user1's instance, not even by pid" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		run as_user1 ferry instance start "$IMG" victim sleep 1000
		assert_success
		pid=$(instance_pid "$U1" victim)
		monitor=$(awk '/^PPid:/ {print $2}' /proc/"$pid"/status)
		workload=$(pgrep -P "$pid")

		run --separate-stderr as_user2 ferry instance stop victim
		assert_ferry_error "victim"
		run --separate-stderr as_user2 ferry instance stop --force victim
		assert_ferry_error "victim"
		run --separate-stderr as_user2 ferry exec instance://victim id
		assert_ferry_error "victim"
		for p in "$pid" "$monitor" "$workload"; do
			for sig in TERM KILL USR1 0; do
				run as_user2 kill -s "$sig" "$p"
				assert_failure
			done
		done
		# no way into its namespaces or its root either
		run as_user2 nsenter -t "$pid" -m -p true
		assert_failure
		run as_user2 ls "/proc/$pid/root/"
		assert_failure
		run as_user2 cat "/proc/$pid/environ"
		assert_failure

		run as_user1 ferry exec instance://victim ps -o args
		assert_success
		assert_line "sleep 1000"
		kill -0 "$pid" "$monitor" "$workload"
		run as_user1 ferry instance stop victim
		assert_success
		assert_instance_gone "$U1" victim
	done
}

@test "instance records and logs are private" {
	use_image sqsh
	run as_user1 ferry instance start "$IMG" private sh -c 'echo secret-output; exec sleep 1000'
	assert_success
	[ -e "$(rundir_of "$U1_UID")/private" ]
	assert_equal "$(stat -c '%U %a' "$FERRY_RUNDIR")" "root 700"
	assert_equal "$(stat -c '%U %a' "$FERRY_RUNDIR/$U1_UID")" "root 700"
	assert_equal "$(stat -c '%U %a' "$(rundir_of "$U1_UID")")" "root 700"
	assert_equal "$(stat -c '%U' "$(rundir_of "$U1_UID")/private")" "root"
	for who in as_user1 as_user2; do
		run $who ls "$(rundir_of "$U1_UID")"
		assert_failure
		run $who cat "$(rundir_of "$U1_UID")/private"
		assert_failure
		run $who ls "$FERRY_RUNDIR"
		assert_failure
		run $who sh -c "echo x > '$(rundir_of "$U1_UID")/forged'"
		assert_failure
	done
	log=$U1_HOME/.ferry/instances/$(hostname)/private.out
	wait_for grep -q secret-output "$log"
	run as_user2 cat "$log"
	assert_failure
	run as_user1 ferry instance stop private
	assert_success
}

@test "the monitor that waits for an instance keeps no capability" {
	use_image sqsh
	run as_user1 ferry instance start "$IMG" capmon sleep 1000
	assert_success
	pid=$(instance_pid "$U1" capmon)
	monitor=$(awk '/^PPid:/ {print $2}' /proc/"$pid"/status)
	run grep -E '^(CapEff|CapPrm|CapBnd|CapAmb):' "/proc/$monitor/status"
	assert_line --regexp '^CapEff:[[:space:]]+0000000000000000$'
	assert_line --regexp '^CapPrm:[[:space:]]+0000000000000000$'
	assert_line --regexp '^CapAmb:[[:space:]]+0000000000000000$'
	run grep -E '^(CapEff|CapPrm|CapBnd):' "/proc/$pid/status"
	assert_line --regexp '^CapEff:[[:space:]]+0000000000000000$'
	assert_line --regexp '^CapBnd:[[:space:]]+0000000000000000$'
	run as_user1 ferry instance stop capmon
	assert_success
}

@test "killing an instance's init directly leaves nothing behind" {
	for f in sqsh sif; do
		use_image "$f"
		run as_user1 ferry instance start "$IMG" killed-$f sleep 1000
		assert_success
		pid=$(instance_pid "$U1" killed-$f)
		as_user1 kill -KILL "$pid"
		assert_instance_gone "$U1" killed-$f
		wait_clean 10
	done
}

# ------------------------------------------------------------ bind policy

@test "users cannot bind /etc, /root or other forbidden paths, also through symlinks in their home" {
	use_image sqsh
	as_user1 ln -s /etc "$U1_TMP/etc-link"
	as_user1 ln -s /root "$U1_TMP/root-link"
	as_user1 ln -s /etc/shadow "$U1_TMP/shadow-link"
	as_user1 ln -s / "$U1_TMP/slash-link"
	as_user1 ln -s "$U2_HOME" "$U1_TMP/other-home"
	as_user1 mkdir "$U1_TMP/dir"
	as_user1 ln -s ../etc-link "$U1_TMP/dir/chain"
	for src in /etc /root /etc/shadow /usr "$U2_HOME" "$U1_TMP/etc-link" "$U1_TMP/root-link" \
		"$U1_TMP/shadow-link" "$U1_TMP/slash-link" "$U1_TMP/other-home" "$U1_TMP/dir/chain" \
		"$U1_TMP/etc-link/ssh" "$U1_HOME/../../etc" "$U1_TMP/slash-link/root"; do
		for f in "${FORMS[@]}"; do
			use_image "$f"
			echo "# bind $src ($f)"
			run --separate-stderr as_user1 ferry exec -B "$src:/data" "$IMG" sh -c 'ls /data; cat /data'
			assert_ferry_error "not allowed|Permission denied"
			refute_output --partial root:
		done
	done
	wait_clean 5
}

@test "an allowed bind path does not extend to symlinks that leave it" {
	conf_set "allow bind path = $FERRY_TEST_SHARED"
	rm -f "$FERRY_TEST_SHARED/to-etc"
	ln -s /etc "$FERRY_TEST_SHARED/to-etc"
	use_image sqsh
	run --separate-stderr as_user1 ferry exec -B "$FERRY_TEST_SHARED/to-etc:/data" "$IMG" ls /data
	rm -f "$FERRY_TEST_SHARED/to-etc"
	assert_ferry_error "not allowed"
}

@test "a user's symlink in an allowed path (/tmp) does not open the way to /etc" {
	conf_set "allow bind path = /tmp"
	use_image sqsh
	l=/tmp/ft-link-$$
	as_user1 ln -s /etc "$l"
	as_user1 mkdir "/tmp/ft-dir-$$"
	run --separate-stderr as_user1 ferry exec -B "$l:/data" "$IMG" ls /data
	rm -f "$l"
	assert_ferry_error "not allowed"
	refute_output --partial passwd
	run --separate-stderr as_user1 ferry exec -B "/tmp/ft-dir-$$/../../etc:/data" "$IMG" ls /data
	assert_ferry_error "not allowed"
	run as_user1 ferry exec -B "/tmp/ft-dir-$$:/data" "$IMG" ls -d /data
	rmdir "/tmp/ft-dir-$$"
	assert_success
}

@test "a forbidden path cannot be reached as the current directory or the home" {
	echo "root secret" >/root/ft-secret-marker
	chmod 0600 /root/ft-secret-marker
	use_image sqsh
	# a user cannot even cd there; through a symlinked cwd ferry sees the real path
	as_user1 ln -s /etc "$U1_TMP/etc-link"
	run as_user1 sh -c "cd '$U1_TMP/etc-link' && ferry exec '$IMG' sh -c 'pwd; cat /etc/ferry-test-image'"
	assert_success
	assert_line "ferry busybox test image"
	run as_user1 ferry exec "$IMG" ls /root
	refute_output --partial ft-secret-marker
}

# ------------------------------------------------------------ images behind symlinks

@test "an image that is (a symlink to) a root-only file or directory is refused" {
	cp "$IMAGES/busybox.sqsh" /root/ft-secret.sqsh
	chmod 0600 /root/ft-secret.sqsh
	mkdir -p "$SECRET_DIR"
	chmod 0755 "$SECRET_DIR"
	cp "$IMAGES/busybox.sqsh" "$SECRET_DIR/secret.sqsh"
	chmod 0600 "$SECRET_DIR/secret.sqsh"
	cp -a "$IMAGES/busybox.sandbox" "$SECRET_DIR/sandbox"
	chmod 0700 "$SECRET_DIR/sandbox"
	as_user1 ln -s /root/ft-secret.sqsh "$U1_TMP/link.sqsh"
	as_user1 ln -s "$SECRET_DIR/secret.sqsh" "$U1_TMP/link2.sqsh"
	as_user1 ln -s "$SECRET_DIR/sandbox" "$U1_TMP/link-sandbox"
	EXTRA_IMAGES="/root/ft-secret.sqsh $SECRET_DIR/secret.sqsh"
	for img in /root/ft-secret.sqsh "$U1_TMP/link.sqsh" "$SECRET_DIR/secret.sqsh" "$U1_TMP/link2.sqsh" \
		"$SECRET_DIR/sandbox" "$U1_TMP/link-sandbox"; do
		echo "# image $img"
		run --separate-stderr as_user1 ferry exec "$img" cat /etc/ferry-test-image
		assert_ferry_error "Permission denied"
		refute_output --partial "ferry busybox test image"
		run --separate-stderr as_user1 ferry instance start "$img" secret
		assert_ferry_error "Permission denied"
	done
	wait_clean 5
	# root may use them
	run as_root ferry exec "$U1_TMP/link.sqsh" cat /etc/ferry-test-image
	assert_success
	assert_output "ferry busybox test image"
}

# ------------------------------------------------------------ malicious images

# evil_sandbox DIR PATH TARGET: the test sandbox, owned by user1, with PATH
# (a mount point ferry uses) replaced by a symlink to TARGET.
evil_sandbox() {
	local d=$1 p=$2 t=$3
	as_user1 cp -a "$IMAGES/busybox.sandbox" "$d"
	as_user1 chmod -R u+w "$d"
	as_user1 mkdir -p "$d/home"
	as_user1 rm -rf "${d:?}/$p"
	as_user1 ln -s "$t" "$d/$p"
}

# check_contained CMD...: the command either works or fails with ferry's
# one-line error; either way the host's /etc is untouched and nothing is left.
check_contained() {
	local before after
	before=$(host_etc_state)
	run --separate-stderr "$@"
	after=$(host_etc_state)
	assert_equal "$after" "$before"
	[ ! -e /etc/ft-evil-marker ] || fail "a container wrote /etc/ft-evil-marker on the host"
	if [ "$status" -ne 0 ]; then
		assert_ferry_error
	fi
}

@test "an image whose mount points are symlinks out of its root cannot make ferry mount outside it" {
	local -a problems=()
	as_user1 mkdir "$U1_TMP/payload"
	as_user1 sh -c "echo evil > '$U1_TMP/payload/ft-evil-marker'"
	for v in proc:/etc sys:../../../../etc dev:/../../etc tmp:/../../../etc "home/$U1:/etc" \
		rootlink:/root data:/../../etc; do
		p=${v%%:*}
		t=${v#*:}
		echo "# /$p -> $t"
		rm -rf "$U1_TMP/evil" "$U1_TMP/evil.sqsh"
		evil_sandbox "$U1_TMP/evil" "$p" "$t"
		as_user1 mksquashfs "$U1_TMP/evil" "$U1_TMP/evil.sqsh" -noappend -no-progress -quiet >/dev/null
		EXTRA_IMAGES=$U1_TMP/evil.sqsh
		for img in "$U1_TMP/evil" "$U1_TMP/evil.sqsh"; do
			for who in as_user1 as_root; do
				check_contained $who ferry exec "$img" sh -c 'echo evil > /etc/ft-evil-marker; echo evil > /proc/ft-evil-marker; ls /etc /root'
				check_contained $who ferry exec --contain "$img" sh -c 'echo evil > /tmp/ft-evil-marker; ls /etc'
				check_contained $who ferry exec -B "$U1_TMP/payload:/$p" "$img" sh -c "ls /etc /root /$p"
				if [ "$status" -eq 0 ] && [ "$p" != rootlink ]; then
					# the bind followed the symlink inside the container's root: its /etc
					assert_line ft-evil-marker
				fi
				wait_clean 5
				check_contained $who ferry instance start "$img" ft-evil
				if [ "$status" -eq 0 ]; then
					if [ "$who" = as_root ]; then ferry instance stop ft-evil; else as_user1 ferry instance stop ft-evil; fi
				fi
				# a leftover fails the test at the end; go on with the other cases
				if ! wait_clean 2; then
					problems+=("/$p -> $t, $img, $who: instance start left something behind")
					$who ferry instance list >/dev/null # drops stale records
				fi
			done
		done
	done
	[ ! -e /etc/ft-evil-marker ]
	[ ! -e /root/ft-evil-marker ]
	[ "${#problems[@]}" -eq 0 ] || fail "$(printf '%s\n' "${problems[@]}")"
}

@test "a bind destination that is a symlink in the image lands inside the container" {
	# a normal sandbox except /data -> /../../etc
	d=$U1_TMP/img
	as_user1 cp -a "$IMAGES/busybox.sandbox" "$d"
	as_user1 chmod u+w "$d"
	as_user1 ln -s /../../etc "$d/data"
	as_user1 mkdir "$U1_TMP/payload"
	as_user1 sh -c "echo evil > '$U1_TMP/payload/ft-evil-marker'"
	as_user1 mksquashfs "$d" "$U1_TMP/img.sqsh" -noappend -no-progress -quiet >/dev/null
	EXTRA_IMAGES=$U1_TMP/img.sqsh
	for img in "$d" "$U1_TMP/img.sqsh"; do
		for who in as_user1 as_root; do
			check_contained $who ferry exec -B "$U1_TMP/payload:/data" "$img" sh -c 'cat /etc/ft-evil-marker /data/ft-evil-marker; ls /etc'
			if [ "$status" -eq 0 ]; then
				# it was mounted on the container's /etc (inside the root), not the host's
				assert_line "evil"
			fi
			wait_clean 5
		done
	done
}

@test "a user-made squashfs with a setuid-root program and device nodes gives no privilege" {
	d=$U1_TMP/img
	as_user1 cp -a "$IMAGES/busybox.sandbox" "$d"
	# pseudo files: the user needs no privilege to put them in a squashfs
	as_user1 mksquashfs "$d" "$U1_TMP/suid.sqsh" -noappend -no-progress -quiet \
		-p "showid f 4755 0 0 cat $IMAGES/bin/showid" \
		-p "memdev c 666 0 0 1 1" \
		-p "nulldev c 666 0 0 1 3" >/dev/null
	EXTRA_IMAGES=$U1_TMP/suid.sqsh
	run as_user1 ferry exec "$U1_TMP/suid.sqsh" sh -c 'stat -c "%u %a" /showid; /showid; head -c 16 /memdev 2>/dev/null | od -An; echo x 2>/dev/null > /nulldev && echo NULLDEV-WORKS; true'
	assert_success
	assert_output "0 4755
ruid=$U1_UID euid=$U1_UID setuid0=fail"
}

@test "a root-owned sandbox or bind with a setuid-root program gives no privilege" {
	mkdir -p "$SECRET_DIR"
	chmod 0755 "$SECRET_DIR"
	cp -a "$IMAGES/busybox.sandbox" "$SECRET_DIR/suid-sandbox"
	cp "$IMAGES/bin/showid" "$SECRET_DIR/suid-sandbox/showid"
	chmod 4755 "$SECRET_DIR/suid-sandbox/showid"
	run as_user1 ferry exec "$SECRET_DIR/suid-sandbox" /showid
	assert_success
	assert_output "ruid=$U1_UID euid=$U1_UID setuid0=fail"
	# sanity: the same file on the host does make root
	run as_user1 "$SECRET_DIR/suid-sandbox/showid"
	assert_output "ruid=$U1_UID euid=0 setuid0=ok"
	# bound from an allowed path
	conf_set "allow bind path = $SECRET_DIR"
	use_image sqsh
	run as_user1 ferry exec -B "$SECRET_DIR/suid-sandbox:/s" "$IMG" /s/showid
	assert_success
	assert_output "ruid=$U1_UID euid=$U1_UID setuid0=fail"
}

# ------------------------------------------------------------ ferry-starter called directly

@test "ferry-starter without a request on fd 3 refuses" {
	for who in as_user1 as_root; do
		run --separate-stderr $who "$STARTER"
		assert_ferry_error "invalid request|not directly|fd 3"
		run --separate-stderr $who sh -c "exec '$STARTER' 3<&-"
		assert_ferry_error "invalid request|not directly|fd 3"
	done
}

@test "ferry-starter with garbage on fd 3 refuses" {
	f=$U1_TMP/garbage
	head -c 4096 /dev/urandom >"$f"
	: >"$U1_TMP/empty"
	printf 'FERRYRQ1' >"$U1_TMP/magic-only"
	printf 'FERRYRQ1\x01\x00\xff\xff\xff\xff' >"$U1_TMP/huge-len"
	chmod a+r "$f" "$U1_TMP/empty" "$U1_TMP/magic-only" "$U1_TMP/huge-len"
	for who in as_user1 as_root; do
		for g in "$f" "$U1_TMP/empty" "$U1_TMP/magic-only" "$U1_TMP/huge-len"; do
			run --separate-stderr $who sh -c "exec timeout 10 '$STARTER' 3<'$g'"
			assert_ferry_error "invalid request"
			[[ "$stderr" != *"invalid request: invalid request"* ]] || fail "message repeats itself: $stderr"
		done
		# an endless stream is bounded, not read forever
		run --separate-stderr $who sh -c "exec timeout 10 '$STARTER' 3</dev/zero"
		assert_ferry_error "invalid request"
		# a directory
		run --separate-stderr $who sh -c "exec timeout 10 '$STARTER' 3<'$U1_TMP'"
		assert_ferry_error
	done
}

@test "attack: ferry-starter run by hand with a commit on a checkpoint, no page server, and a socket on fd 4, is refused before any session" {
	# ferryd's restarts alone carry a commit; a user who runs the setuid starter with one on a
	# dump, without a page server, of a checkpointable instance, must get a refusal, not a root
	# child that reads a page server that is not there (it crashed)
	use_image sqsh >/dev/null
	as_user1 "$FERRY" checkpoint delete ft-commit >/dev/null 2>&1 || true # (a failed run's)
	as_user1 "$FERRY" checkpoint create ft-commit >/dev/null
	run as_user1 "$FERRY" instance start --criu-launch ft-commit "$IMG" ft-commit sleep 1000
	assert_success
	local pid req=$U1_TMP/commit.req
	pid=$(instance_pid "$U1" ft-commit)
	# op 5 (a checkpoint), flags FERRY_REQ_COMMIT (1 << 8), the instance
	python3 - "$req" <<-'PY'
		import struct, sys
		rec = lambda t, b: struct.pack("<HI", t, len(b)) + b
		out = b"FERRYRQ1" + rec(1, struct.pack("<I", 5)) + rec(2, struct.pack("<I", 1 << 8)) + rec(4, b"ft-commit")
		open(sys.argv[1], "wb").write(out + rec(0xffff, b""))
	PY
	chmod a+r "$req"
	run --separate-stderr as_user1 timeout 60 python3 -c 'import os, socket, sys
a, b = socket.socketpair()
os.dup2(a.fileno(), 4)
b.close()
os.dup2(os.open(sys.argv[1], os.O_RDONLY), 3)
os.execv(sys.argv[2], [sys.argv[2]])' "$req" "$STARTER"
	assert_ferry_error "^ferry: invalid request: a commit belongs to a restart$"
	[ "$(instance_pid "$U1" ft-commit)" = "$pid" ] || fail "the instance is not the same process any more"
	! ls -d "$U1_HOME"/.ferry/checkpoint/ft-commit/gen-* 2>/dev/null || fail "a generation was written"
	as_user1 "$FERRY" instance stop ft-commit >/dev/null
	as_user1 "$FERRY" checkpoint delete ft-commit >/dev/null
}

@test "a well-formed request works (the test encoder is right), and every cut of it is refused" {
	use_image dir
	req=$U1_TMP/ok.req
	forge_request --op 1 --image "$IMG" --cwd "$U1_HOME" --arg /bin/echo --arg forged-ok --env PATH=/bin >"$req"
	chmod a+r "$req"
	run --separate-stderr starter_as "$U1" "$req"
	assert_success
	assert_output "forged-ok"
	# truncations and trailing bytes
	size=$(stat -c %s "$req")
	for cut in 4 8 14 20 $((size - 6)) $((size - 1)); do
		head -c "$cut" "$req" >"$U1_TMP/cut.req"
		chmod a+r "$U1_TMP/cut.req"
		run --separate-stderr starter_as "$U1" "$U1_TMP/cut.req"
		assert_ferry_error "invalid request"
	done
	{ cat "$req"; printf 'x'; } >"$U1_TMP/trail.req"
	chmod a+r "$U1_TMP/trail.req"
	run --separate-stderr starter_as "$U1" "$U1_TMP/trail.req"
	assert_ferry_error "invalid request"
	# unknown flags, unknown op
	forge_request --op 1 --flags 255 --image "$IMG" --arg true >"$U1_TMP/flags.req"
	forge_request --op 99 --image "$IMG" --arg true >"$U1_TMP/op.req"
	chmod a+r "$U1_TMP/flags.req" "$U1_TMP/op.req"
	for r in flags op; do
		run --separate-stderr starter_as "$U1" "$U1_TMP/$r.req"
		assert_ferry_error "invalid request"
	done
}

@test "forged requests for another user's instance are refused" {
	use_image sqsh
	run as_user1 ferry instance start "$IMG" target sh -c 'echo u1-secret > /tmp/u1-file; exec sleep 1000'
	assert_success
	pid=$(instance_pid "$U1" target)
	r=$U2_TMP
	forge_request --op 3 --instance target --cwd / --arg /bin/cat --arg /proc/2/cmdline >"$r/join.req"
	forge_request --op 3 --instance "../$U1_UID/target" --cwd / --arg /bin/id >"$r/join-dotdot.req"
	forge_request --op 4 >"$r/list.req"
	forge_request --op 4 --instance target >"$r/list-named.req"
	forge_request --op 2 --image "$IMG" --instance "../$U1_UID/target" --cwd / >"$r/start-dotdot.req"
	chmod a+r "$r"/*.req
	run --separate-stderr starter_as "$U2" "$r/join.req"
	assert_ferry_error "target"
	refute_output --partial sleep
	run --separate-stderr starter_as "$U2" "$r/join-dotdot.req"
	assert_ferry_error "invalid instance name"
	run --separate-stderr starter_as "$U2" "$r/start-dotdot.req"
	assert_ferry_error "invalid instance name"
	for l in list list-named; do
		run --separate-stderr starter_as "$U2" "$r/$l.req"
		refute_output --partial target
		refute_output --partial "$pid"
	done
	# the owner's own forged join works: the refusal above is about identity
	forge_request --op 3 --instance target --cwd / --arg /bin/cat --arg /proc/2/cmdline >"$U1_TMP/join.req"
	chmod a+r "$U1_TMP/join.req"
	run starter_as "$U1" "$U1_TMP/join.req"
	assert_success
	assert_output --partial sleep
	kill -0 "$pid"
	run as_user1 ferry instance stop target
	assert_success
}

@test "forged requests cannot bypass the bind policy" {
	use_image sqsh
	r=$U2_TMP
	forge_request --op 1 --image "$IMG" --cwd / --arg /bin/cat --arg /data/shadow --bind 1 /etc /data >"$r/etc.req"
	forge_request --op 1 --image "$IMG" --cwd / --arg /bin/ls --arg /data --bind 0 "$U1_HOME" /data >"$r/home.req"
	forge_request --op 1 --image "$IMG" --cwd / --arg /bin/ls --arg /data --bind 0 /root /data >"$r/root.req"
	forge_request --op 1 --image "$IMG" --cwd / --arg /bin/true --bind 0 "$U2_HOME" /proc >"$r/proc.req"
	forge_request --op 1 --image "$IMG" --cwd / --arg /bin/true --bind 0 "$U2_HOME" /../etc >"$r/dotdot.req"
	forge_request --op 1 --image "$IMG" --cwd / --arg /bin/true --hostname 'a/b' >"$r/host.req"
	chmod a+r "$r"/*.req
	for q in etc home root proc dotdot host; do
		echo "# $q"
		run --separate-stderr starter_as "$U2" "$r/$q.req"
		assert_ferry_error
		refute_output --partial "root:"
	done
}

@test "a forged current directory gives no access to what the user cannot read" {
	echo "root secret" >/root/ft-secret-marker
	chmod 0600 /root/ft-secret-marker
	use_image sqsh
	r=$U2_TMP
	forge_request --op 1 --image "$IMG" --cwd /root --arg /bin/sh --arg -c --arg 'pwd; cat /root/ft-secret-marker ft-secret-marker; true' >"$r/cwd-root.req"
	forge_request --op 1 --image "$IMG" --cwd "$U1_HOME" --arg /bin/sh --arg -c --arg "ls -A $U1_HOME; true" >"$r/cwd-u1.req"
	chmod a+r "$r"/*.req
	run starter_as "$U2" "$r/cwd-root.req"
	refute_output --partial "root secret"
	as_user1 sh -c "echo u1-private > '$U1_TMP/private'"
	run starter_as "$U2" "$r/cwd-u1.req"
	refute_output --partial "$(basename "$U1_TMP")"
	wait_clean 5
}

@test "the starter ignores the caller's dangerous environment" {
	use_image sqsh
	run as_user1 env LD_PRELOAD=/nonexistent/evil.so LD_LIBRARY_PATH=/nonexistent GCONV_PATH=/nonexistent \
		ferry exec "$IMG" sh -c 'echo ok; echo "${LD_PRELOAD:-no-preload}"'
	assert_success
	assert_line ok
}

@test "/proc/sys is read-only in containers: root in one cannot change the host's sysctls" {
	use_image sqsh
	# writes back the value it reads, so that the host is unchanged even where the write works
	local cmd='v=$(cat /proc/sys/net/ipv4/ip_forward) && echo "$v" > /proc/sys/net/ipv4/ip_forward && echo WROTE'
	local who
	for who in as_root as_user1; do
		run --separate-stderr $who ferry exec "$IMG" sh -c "$cmd"
		refute_output --partial WROTE
		grep -qi "read-only" <<<"$stderr" || [ "$who" = as_user1 ] || fail "$who: not refused as read-only: $stderr"
	done
	# a read-only mount of its own (the rest of /proc stays as it was)
	run --separate-stderr as_root ferry exec "$IMG" awk '$5 == "/proc/sys" {print $6}' /proc/self/mountinfo
	assert_success
	assert_output --regexp '^ro,'
}
