#!/usr/bin/env bats
# Issue 12: configuration drop-ins in /etc/ferry/ferry.conf.d. The setuid starter takes its
# policy from them too, so it must trust one only when root alone can have written it, as it
# does ferry.conf: a drop-in owned by a user, or writable by a group a user is in, or a symbolic
# link (to anything), or a directory a user can write into, would let that user grant themselves
# 'allow bind path = /'. Each is refused by the starter, run as the unprivileged test user, with
# one line naming the file. On a ferry that does not read drop-ins the planted file is silently
# ignored and these tests fail (the command runs).

load ../lib/common

EVIL=/etc/ferry/ferry.conf.d/50-ft-evil.conf
LIBEXEC=/usr/local/libexec/ferry

setup_file() { ferry_suite_setup; }
teardown_file() { ferry_suite_teardown; }

setup() {
	ferry_test_setup
	use_image sqsh >/dev/null
	install -d -o root -g root -m 0755 "$FERRY_CONF_D"
}

teardown() {
	chmod 0711 "$LIBEXEC/ferry-conf" # the test that makes it readable
	rm -f "$EVIL" "$FERRY_CONF_D/51-ft-user.conf"
	chown root:root "$FERRY_CONF_D"
	chmod 0755 "$FERRY_CONF_D"
	ferry_teardown
}

# the user's try: see the host's /etc through a bind that only 'allow bind path = /' permits
try_bind_root() {
	run --separate-stderr as_user1 "$FERRY" exec -B /etc:/hostetc "$IMG" cat /hostetc/hostname
}

@test "attack: a drop-in owned by the user is refused, with one line naming it" {
	as_user1 sh -c "echo 'allow bind path = /' >'$U1_TMP/evil.conf'"
	cp "$U1_TMP/evil.conf" "$EVIL"
	chown "$U1:" "$EVIL"
	chmod 0644 "$EVIL"
	try_bind_root
	assert_ferry_error "'$EVIL' must be owned by root and not writable by others"
	# the same file root's: read (so the refusal above is the owner's doing)
	chown root:root "$EVIL"
	run --separate-stderr as_user1 "$FERRY" exec -B /etc:/hostetc "$IMG" true
	assert_success
}

@test "attack: a root drop-in writable by a group of the user's is refused" {
	printf 'mount tmp = yes\n' >"$EVIL"
	chown "root:$TEST_GROUP" "$EVIL"
	chmod 0664 "$EVIL"
	# the user can indeed rewrite it
	as_user1 sh -c "echo 'allow bind path = /' >'$EVIL'"
	try_bind_root
	assert_ferry_error "'$EVIL' must be owned by root and not writable by others"
	chmod 0646 "$EVIL"
	try_bind_root
	assert_ferry_error "'$EVIL' must be owned by root"
}

@test "attack: a drop-in that is a symbolic link is refused, whatever it points to" {
	as_user1 sh -c "echo 'allow bind path = /' >'$U1_TMP/evil.conf'"
	ln -s "$U1_TMP/evil.conf" "$EVIL"
	try_bind_root
	assert_ferry_error "'$EVIL' is a symbolic link"
	# even to a file of root's
	rm -f "$EVIL"
	ln -s /etc/ferry/ferry.conf "$EVIL"
	try_bind_root
	assert_ferry_error "'$EVIL' is a symbolic link"
}

@test "attack: a drop-in directory the user can write into is refused" {
	chown "root:$TEST_GROUP" "$FERRY_CONF_D"
	chmod 0775 "$FERRY_CONF_D"
	as_user1 sh -c "echo 'allow bind path = /' >'$FERRY_CONF_D/51-ft-user.conf'"
	try_bind_root
	assert_ferry_error "'$FERRY_CONF_D' must be owned by root and not writable by others"
	# sticky does not excuse it (a user's own file in it is theirs)
	chmod 01777 "$FERRY_CONF_D"
	try_bind_root
	assert_ferry_error "'$FERRY_CONF_D' must be owned by root"
}

# The starter does not parse ferry.conf: ferry-conf does, as the user, and the starter takes the
# policy it sends. So the user must not be able to reach into that process (a tracer could make
# it send 'allow bind path = /'): it is installed 0711, and the kernel makes the process of an
# executable its user cannot read not dumpable.
@test "attack: the user cannot trace ferry-conf or read into it while it sends the policy" {
	cat >"$U1_TMP/trace.py" <<'PY'
import ctypes, fcntl, os, subprocess, sys, time
# a pipe that is full, so that the program writing to it stops in its write, alive
r, w = os.pipe()
fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ
os.set_blocking(w, False)
try:
    while True:
        os.write(w, b"x" * 4096)
except BlockingIOError:
    pass
os.set_blocking(w, True)
p = subprocess.Popen(sys.argv[1:], stdout=w)
time.sleep(0.5)
libc = ctypes.CDLL(None, use_errno=True)
out = []
if libc.ptrace(0x4206, p.pid, None, None) == 0:  # PTRACE_SEIZE
    out.append("attached")
else:
    out.append("attach:" + os.strerror(ctypes.get_errno()))
for what in ("fd", "mem", "environ"):
    try:
        path = "/proc/%d/%s" % (p.pid, what)
        if what == "fd":
            os.listdir(path)
        else:
            os.close(os.open(path, os.O_RDONLY))
        out.append(what + ":read")
    except OSError as e:
        out.append(what + ":" + e.strerror)
out.append("alive" if p.poll() is None else "exited")
p.kill()
print(" ".join(out))
PY
	chown "$U1" "$U1_TMP/trace.py"
	# the same script on an ordinary program of the user's, stopped the same way: all of it works
	run as_user1 python3 "$U1_TMP/trace.py" cat /etc/ferry/ferry.conf /dev/zero
	echo "# cat: $output"
	[ "$output" = "attached fd:read mem:read environ:read alive" ] || fail "the control is not traceable: $output"
	run as_user1 python3 "$U1_TMP/trace.py" "$LIBEXEC/ferry-conf"
	echo "# ferry-conf: $output"
	[ "$output" = "attach:Operation not permitted fd:Permission denied mem:Permission denied environ:Permission denied alive" ] ||
		fail "the user reaches into ferry-conf: $output"
}

@test "attack: a ferry-conf its user could read (and so trace) is refused; nothing runs" {
	chmod 0755 "$LIBEXEC/ferry-conf"
	run --separate-stderr as_user1 "$FERRY" exec "$IMG" touch "$U1_TMP/ran"
	assert_ferry_error "'$LIBEXEC/ferry-conf' must not be readable by others \\(mode 0711\\)"
	[ ! -e "$U1_TMP/ran" ] || fail "the command ran"
	# and run on its own, readable, it refuses to send a policy
	run as_user1 "$LIBEXEC/ferry-conf"
	[ "$status" -eq 1 ] && [[ "$output" == "E ferry-conf is readable by its caller"* ]] || fail "ferry-conf sent: $output"
	chmod 0711 "$LIBEXEC/ferry-conf"
	run --separate-stderr as_user1 "$FERRY" exec "$IMG" touch "$U1_TMP/ran"
	assert_success
	[ -e "$U1_TMP/ran" ]
}
