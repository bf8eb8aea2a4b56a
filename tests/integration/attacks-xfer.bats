#!/usr/bin/env bats
# Attacks on the --page-server transfer (issue 11, F5 and the page-server part of F10), as the
# unprivileged test users over 127.0.0.1, with tests/integration/mitm-proxy.py as the man in
# the middle (run as the attacking user):
#   F5  the handshake proves the cluster key, but the bytes after it were bound to nothing: a
#       user relayed their own sending starter's proof to their own receiving starter and then
#       wrote any bytes, which the receiver parsed (CRIU page server, libarchive) with root at
#       hand; a changed byte went unseen; pages travelled in clear.
#   F10 connecting first to someone's --page-server port made their restart fail.
# And the relay, which holds the cluster key during the handshake and the session's keys after
# it: a process of the user's (ferry-relay, outside the setuid starter), which the user's other
# processes must not be able to trace, read or take fds from.

load ../lib/common
load ../lib/checkpoint

PROXY=${BATS_TEST_DIRNAME}/mitm-proxy.py

setup_file() {
	ferry_suite_setup
	build_ckpt_workload
}

teardown_file() {
	ferry_suite_teardown
	local u
	for u in "$U1" "$U2"; do
		rm -rf "$(home_of "$u")"/.ferry/checkpoint/ftxa-* /dev/shm/ferry-"$(id -u "$u")"-ftxa-*
	done
}

setup() {
	ferry_test_setup
	use_image sqsh >/dev/null
	T=ftxa-$BATS_TEST_NUMBER
	local u
	for u in "$U1" "$U2"; do
		rm -rf "$(home_of "$u")"/.ferry/checkpoint/"$T"-* /dev/shm/ferry-"$(id -u "$u")"-"$T"-*
	done
	BG_PIDS=()
	cp "$PROXY" "$U1_TMP/proxy.py" && chown "$U1" "$U1_TMP/proxy.py"
}

teardown() {
	local p
	for p in "${BG_PIDS[@]}"; do kill_tree "$p"; done
	chmod 0711 "$LIBEXEC/ferry-relay" "$LIBEXEC/ferry-xfer" "$LIBEXEC/ferry-plan" # the tests that make them readable
	ferry_teardown
}

LIBEXEC=/usr/local/libexec/ferry

# kill_tree PID: PID and its descendants, by pid
kill_tree() {
	local c
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do kill_tree "$c"; done
	kill "$1" 2>/dev/null || true
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_receiver USER CKPT PORT INSTANCE (RECV_PID, RECV_OUT, RECV_ERR), once it listens
start_receiver() {
	local u=$1 ck=$2 port=$3 inst=$4
	RECV_OUT=$BATS_TEST_TMPDIR/recv.out RECV_ERR=$BATS_TEST_TMPDIR/recv.err
	as_who "$u" "$FERRY" instance start --criu-restart "$ck" --page-server "$port" "$IMG" "$inst" \
		>"$RECV_OUT" 2>"$RECV_ERR" &
	RECV_PID=$!
	BG_PIDS+=("$RECV_PID")
	wait_for grep -q "waiting for the dump on '$port'" "$RECV_ERR" ||
		fail "the receiver does not listen: $(cat "$RECV_ERR")"
}

# start_proxy MODE ARG: user1's man in the middle from PPORT (the sender's) to PORT (the receiver)
start_proxy() {
	PROXY_OUT=$U1_TMP/proxy.out
	as_user1 python3 "$U1_TMP/proxy.py" "$1" "$PPORT" "$PORT" "$2" >"$PROXY_OUT" 2>&1 &
	BG_PIDS+=($!)
	wait_for grep -q listening "$PROXY_OUT" || fail "the proxy does not listen: $(cat "$PROXY_OUT")"
}

# a user1 instance with a memory of MB megabytes, and the checkpoints to move it with
setup_move() {
	SRC=$T-src DST=$T-dst PROG=$U1_TMP/${2:-progress}
	as_user1 "$FERRY" checkpoint create "$SRC"
	as_user1 "$FERRY" checkpoint create --mem-dir "$DST"
	MEM=$(ckpt_json_field "$U1" "$DST" location)
	[ -d "$MEM" ] || fail "no mem dir for $DST: '$MEM'"
	start_stateful "$U1" "$SRC" xa-a "$PROG" --mb "$1"
	wait_step "$PROG" 2
	PORT=$(free_port)
	PPORT=$(free_port)
	start_receiver "$U1" "$DST" "$PORT" xa-b
}

# the receiver refused what came after the handshake as unauthenticated, before any parser
assert_refused_unauthenticated() {
	wait "$RECV_PID" && recv_status=0 || recv_status=$?
	echo "# receiver: $(cat "$RECV_ERR")"
	[ "$recv_status" -ne 0 ] || fail "the receiver accepted it: $(cat "$RECV_OUT")"
	grep -q "failed authentication" "$RECV_ERR" || fail "not refused as unauthenticated: $(cat "$RECV_ERR")"
	# refused by the session's record layer: neither CRIU's page server nor the archive reader
	# complained, so neither got a byte of it
	! grep -qiE "page server|criu|archive|stream:|manifest" "$RECV_ERR" || fail "a parser saw it: $(cat "$RECV_ERR")"
	assert_nothing_started "$U1" xa-b
	assert_equal "$(ckpt_json_field "$U1" "$DST" state)" empty
	[ -z "$(find "$MEM" -mindepth 1 2>/dev/null)" ] || fail "the receiver kept: $(find "$MEM" -mindepth 1)"
	instance_running "$U1" xa-a || fail "the source instance was stopped"
}

assert_nothing_started() {
	! instance_running "$1" "$2" || fail "instance '$2' runs although the transfer was refused"
}

@test "F5: bytes of a user's own after a relayed handshake are refused before CRIU or libarchive parse them" {
	setup_move 16
	# what the attacker sends instead of the sender's stream: anything at all
	head -c 65536 /dev/urandom >"$U1_TMP/inject"
	chown "$U1" "$U1_TMP/inject"
	start_proxy inject "$U1_TMP/inject"
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --page-server "127.0.0.1:$PPORT" xa-a
	echo "# sender: $stderr"
	assert_refused_unauthenticated
	assert_ferry_error # the sender learns it failed, and its instance keeps running
	s=$(step_of "$PROG")
	wait_step "$PROG" $((s + 2))
	assert_progress_ok "$PROG"
}

@test "F5: bytes of a user's own that begin as a daemon's record would are refused as unauthenticated, not taken for a daemon's word" {
	# on a --page-server connection no daemon speaks: a header of ferryd's record types
	# (0x20-0x2f) is a stranger's like any other (random bytes begin so one time in sixteen)
	setup_move 16
	{ printf '\x40\x00\x00\x00\x21'; head -c 65536 /dev/urandom; } >"$U1_TMP/inject"
	chown "$U1" "$U1_TMP/inject"
	start_proxy inject "$U1_TMP/inject"
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --page-server "127.0.0.1:$PPORT" xa-a
	echo "# sender: $stderr"
	assert_refused_unauthenticated # (it waits for the receiver)
	! grep -q "daemon says why" "$RECV_ERR" || fail "the receiver took the stranger's bytes for a daemon's: $(cat "$RECV_ERR")"
	assert_ferry_error
}

@test "F5: one byte changed in flight is detected; the instance keeps running at the source" {
	setup_move 16
	start_proxy tamper 200000 # in the pages
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --page-server "127.0.0.1:$PPORT" xa-a
	echo "# sender: $stderr"
	assert_ferry_error
	assert_refused_unauthenticated
	s=$(step_of "$PROG")
	wait_step "$PROG" $((s + 2))
	assert_progress_ok "$PROG"
}

@test "F5: a passive observer of the transfer sees no plaintext of the workload's memory" {
	local marker=ferryXferSecret$RANDOM$RANDOM$RANDOM
	setup_move 16 "$marker.progress" # the name is in the workload's memory (argv) and its files
	start_proxy observe "$U1_TMP/capture"
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --page-server "127.0.0.1:$PPORT" xa-a
	[ "$status" -eq 0 ] || fail "the dump failed ($status): $stderr"
	wait "$RECV_PID" || fail "the receiver failed: $(cat "$RECV_ERR")"
	wait_gone "$U1" xa-a
	instance_running "$U1" xa-b || fail "the instance does not run on the receiving side"
	s=$(step_of "$PROG")
	wait_step "$PROG" $((s + 2))
	assert_progress_ok "$PROG"
	size=$(stat -c %s "$U1_TMP/capture")
	[ "$size" -gt $((16 << 20)) ] || fail "the observer saw only $size bytes"
	# the marker is in the pages (and the pages on the receiving side), never on the wire
	grep -rqa "$marker" "$MEM/" || fail "the marker is not in the received checkpoint: the test proves nothing"
	! grep -qa "$marker" "$U1_TMP/capture" || fail "the marker crossed the network in clear"
	! grep -qa "step [0-9]* ok" "$U1_TMP/capture" || fail "the workload's progress text crossed in clear"
	as_user1 "$FERRY" instance stop xa-b
}

# moves_anyway: user1's xa-a, dumped to the --page-server receiver setup_move started, runs on
# as xa-b there, its progress intact, whatever user2 did to the port meanwhile
moves_anyway() {
	local s
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --page-server "127.0.0.1:$PORT" xa-a
	[ "$status" -eq 0 ] || fail "the dump failed ($status): $stderr; receiver: $(cat "$RECV_ERR")"
	wait "$RECV_PID" || fail "the receiver failed: $(cat "$RECV_ERR")"
	wait_gone "$U1" xa-a
	instance_running "$U1" xa-b || fail "the instance does not run on the receiving side"
	s=$(step_of "$PROG")
	wait_step "$PROG" $((s + 2))
	assert_progress_ok "$PROG"
	as_user1 "$FERRY" instance stop xa-b
}

@test "F10: another user connecting first to the --page-server port (silent, or garbage) does not fail the restart" {
	setup_move 16
	# user2 is first: one connection that says nothing, one that sends garbage, both left open
	cat >"$U2_TMP/squat.py" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
silent = socket.create_connection(("127.0.0.1", port))
try:
    noisy = socket.create_connection(("127.0.0.1", port))
    noisy.sendall(b"GET / HTTP/1.0\r\n\r\n" + b"x" * 200)
except OSError as e:  # the receiver stopped listening after the first connection
    print("noisy:", e, flush=True)
print("connected", flush=True)
time.sleep(120)
PY
	chown "$U2" "$U2_TMP/squat.py"
	as_user2 python3 "$U2_TMP/squat.py" "$PORT" >"$U2_TMP/squat.out" 2>&1 &
	BG_PIDS+=($!)
	wait_for grep -q connected "$U2_TMP/squat.out" || fail "user2 did not connect: $(cat "$U2_TMP/squat.out")"
	moves_anyway
}

@test "F10: another user's 300 connect-and-close connections and 16 silent ones to the --page-server port do not fail the restart" {
	setup_move 16
	# user2 uses up what used to be a count of 256 connections in all (each closed at once: the
	# receiver had given up in milliseconds, saying no dump had arrived), then fills every slot
	# of the handshake with connections that say nothing
	cat >"$U2_TMP/flood.py" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
closed = 0
for i in range(300):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        closed += 1
    except OSError as e:
        print("flood:", i, e, flush=True)
        break
silent = []
for i in range(16):
    try:
        silent.append(socket.create_connection(("127.0.0.1", port), timeout=2))
    except OSError as e:
        print("silent:", i, e, flush=True)
        break
print("connected", closed, len(silent), flush=True)
time.sleep(120)
PY
	chown "$U2" "$U2_TMP/flood.py"
	as_user2 python3 "$U2_TMP/flood.py" "$PORT" >"$U2_TMP/flood.out" 2>&1 &
	BG_PIDS+=($!)
	# (a listen queue of 16 and a flood faster than the receiver's accepts: the kernel drops some
	# of user2's SYNs, which come again a second later; the 300 take up to some 15 s)
	local i
	for ((i = 0; i < 600; i++)); do
		grep -q connected "$U2_TMP/flood.out" && break
		sleep 0.1
	done
	grep -q connected "$U2_TMP/flood.out" || fail "user2 did not connect in 60 s: $(cat "$U2_TMP/flood.out")"
	echo "# user2: $(cat "$U2_TMP/flood.out")"
	moves_anyway
}

@test "F10: another user's flood from 127.0.0.1 that goes on while user1's sender on 127.0.0.1 connects does not push the sender out" {
	setup_move 16
	# Both on this node, both from 127.0.0.1: by address they are one host. user2 connects 4,000
	# times a second for as long as the test runs (a quarter closed at once, the rest left
	# silent), non-blocking and paced below what the receiver accepts, so that the listen queue
	# does not overflow (a blocking flood whose SYN is dropped waits a second for its retry, and
	# floods in bursts). The sender's connection waits for its starter and relay (milliseconds)
	# before it answers the hello: meanwhile the flood's newer connections used to push it out
	# of the 16 handshake slots ("too many connections in the handshake").
	cat >"$U2_TMP/flood.py" <<'PY'
import collections, selectors, socket, sys, time
port = int(sys.argv[1])
sel = selectors.DefaultSelector()
held = collections.deque()
made = failed = 0
end = time.monotonic() + 90
gap = 1.0 / 4000
nxt = time.monotonic()
while time.monotonic() < end:
    now = time.monotonic()
    if now >= nxt and len(sel.get_map()) < 64:
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        sel.register(s, selectors.EVENT_WRITE)
        nxt = max(nxt + gap, now - 0.01)
    for key, _ in sel.select(timeout=max(0, nxt - time.monotonic())):
        s = key.fileobj
        sel.unregister(s)
        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            made += 1
            if made % 4 == 0:
                s.close()  # connect-and-close
            else:
                held.append(s)  # silent
                if len(held) > 200:
                    held.popleft().close()
            if made % 2000 == 0:
                print("made", made, "failed", failed, flush=True)
        else:
            s.close()
            failed += 1
print("done", made, failed, flush=True)
PY
	chown "$U2" "$U2_TMP/flood.py"
	as_user2 python3 "$U2_TMP/flood.py" "$PORT" >"$U2_TMP/flood.out" 2>&1 &
	BG_PIDS+=($!)
	wait_for grep -q made "$U2_TMP/flood.out" || fail "user2 does not flood: $(cat "$U2_TMP/flood.out")"
	moves_anyway
	echo "# user2: $(tail -n 1 "$U2_TMP/flood.out")"
}

# relay_of USER ROLE: the pid of USER's ferry-relay in ROLE (send, receive)
relay_of() {
	pgrep -u "$(id -u "$1")" -f "^ferry-relay $2 " | head -n 1
}

@test "relay: the user's own processes cannot trace the relay that holds the keys, read its memory or take its fds" {
	setup_move 16
	local pid
	wait_for relay_of "$U1" receive || fail "no receiving relay of $U1"
	pid=$(relay_of "$U1" receive)
	# it is the user's, without capabilities
	[ "$(awk '/^Uid:/ {print $2, $3, $4}' "/proc/$pid/status")" = "$(id -u "$U1") $(id -u "$U1") $(id -u "$U1")" ] ||
		fail "the relay does not run as $U1: $(grep Uid "/proc/$pid/status")"
	grep -q '^CapEff:\s*0000000000000000$' "/proc/$pid/status" || fail "the relay has capabilities: $(grep Cap "/proc/$pid/status")"
	grep -q '^CapPrm:\s*0000000000000000$' "/proc/$pid/status" || fail "the relay has capabilities: $(grep Cap "/proc/$pid/status")"
	cat >"$U1_TMP/trace.py" <<'PY'
import ctypes, os, sys
pid = int(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
out = []
if libc.ptrace(0x4206, pid, None, None) == 0:  # PTRACE_SEIZE: attaches without stopping it
    out.append("attached")
else:
    out.append("attach:" + os.strerror(ctypes.get_errno()))
for what in ("fd", "mem", "environ", "maps"):
    try:
        p = "/proc/%d/%s" % (pid, what)
        if what == "fd":
            os.listdir(p)
        elif what == "mem":  # opening it is the ptrace check
            os.close(os.open(p, os.O_RDONLY))
        else:
            with open(p, "rb") as f:
                f.read(1)
        out.append(what + ":read")
    except OSError as e:
        out.append(what + ":" + e.strerror)
print(" ".join(out))
PY
	chown "$U1" "$U1_TMP/trace.py"
	# the same script on one of the user's ordinary processes: all of it works (the test can fail)
	as_user1 sleep 60 &
	BG_PIDS+=($!)
	local sl
	wait_for pgrep -u "$(id -u "$U1")" -x sleep || fail "no sleep of $U1"
	sl=$(pgrep -u "$(id -u "$U1")" -x sleep | head -n 1)
	run as_user1 python3 "$U1_TMP/trace.py" "$sl"
	echo "# an ordinary process of the user: $output"
	[[ "$output" == "attached fd:read mem:read environ:read maps:read" ]] || fail "the control is not traceable: $output"
	run as_user1 python3 "$U1_TMP/trace.py" "$pid"
	echo "# the relay: $output"
	[[ "$output" == "attach:Operation not permitted fd:Permission denied mem:Permission denied environ:Permission denied maps:Permission denied" ]] ||
		fail "the user reaches into the relay: $output"
	# and the transfer goes through it
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --page-server "127.0.0.1:$PORT" xa-a
	[ "$status" -eq 0 ] || fail "the dump failed ($status): $stderr; receiver: $(cat "$RECV_ERR")"
	wait "$RECV_PID" || fail "the receiver failed: $(cat "$RECV_ERR")"
	instance_running "$U1" xa-b || fail "the instance does not run on the receiving side"
	s=$(step_of "$PROG")
	wait_step "$PROG" $((s + 2))
	assert_progress_ok "$PROG"
	as_user1 "$FERRY" instance stop xa-b
}

@test "relay: a ferry-relay its user could read (and so trace) is refused before the key leaves root; nothing moves" {
	as_user1 "$FERRY" checkpoint create --mem-dir "$T-dst"
	chmod 0755 "$LIBEXEC/ferry-relay"
	PORT=$(free_port)
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T-dst" --page-server "$PORT" "$IMG" xa-b
	echo "# $stderr"
	[ "$status" -ne 0 ] || fail "the restart was not refused"
	[[ "$(tail -n 1 <<<"$stderr")" == "ferry: '$LIBEXEC/ferry-relay' must not be readable by others (mode 0711)"* ]] || fail "not refused for its mode: $stderr"
	assert_nothing_started "$U1" xa-b
	assert_equal "$(ckpt_json_field "$U1" "$T-dst" state)" empty
}

# A receiving ferry-xfer holds the images directory that root then seals: a process of the user's
# that the user could trace (or open /proc/PID/fd of) would let the user swap a received file
# between root's look at it and the seal, and root would sign forged images.
@test "xfer: a ferry-xfer its user could read (and so trace) is refused before any file is received; nothing moves" {
	[ "$(stat -c %a "$LIBEXEC/ferry-xfer")" = 711 ] || fail "ferry-xfer is installed $(stat -c %a "$LIBEXEC/ferry-xfer"), not 0711"
	setup_move 16
	chmod 0755 "$LIBEXEC/ferry-xfer"
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --page-server "127.0.0.1:$PORT" xa-a
	echo "# sender: $stderr"
	wait "$RECV_PID" && recv_status=0 || recv_status=$?
	echo "# receiver: $(cat "$RECV_ERR")"
	[ "$status" -ne 0 ] || fail "the dump went through"
	[ "$recv_status" -ne 0 ] || fail "the receiver restarted it"
	grep -q "'$LIBEXEC/ferry-xfer' must not be readable by others (mode 0711)" "$RECV_ERR" <(echo "$stderr") ||
		fail "not refused for its mode"
	assert_nothing_started "$U1" xa-b
	assert_equal "$(ckpt_json_field "$U1" "$DST" state)" empty
	instance_running "$U1" xa-a || fail "the source instance was stopped"
	# and run on its own, readable (dumpable: as with fs.suid_dumpable 1), it refuses to act
	run_helper_readable ferry-xfer 3 "$LIBEXEC/ferry-xfer" receive 5
	[[ "$output" == *"ferry-xfer is readable by its caller, so it could be traced"* ]] ||
		fail "a dumpable ferry-xfer went on: $output"
}

# run_helper_readable NAME FD PATH ARGS...: PATH run by user1 directly, with fd FD a directory
# (the receiver's images) and fd FD+1 a socket whose other end is read to its end; $output: what
# it said there and on stderr. The caller has made PATH readable, so the process is dumpable.
run_helper_readable() {
	cat >"$U1_TMP/helper.py" <<'PY'
import os, socket, sys
fd = int(sys.argv[1])
a, b = socket.socketpair()
pid = os.fork()
if pid == 0:
    d = os.open(os.environ["HOME"], os.O_RDONLY | os.O_DIRECTORY)
    s = os.dup(b.fileno())  # above every fd there is, then down to their places
    os.dup2(d, fd)
    os.dup2(s, fd + 1)
    os.set_inheritable(fd, True)
    os.set_inheritable(fd + 1, True)
    os.execv(sys.argv[2], sys.argv[2:])
b.close()
out = b""
while True:
    chunk = a.recv(65536)
    if not chunk:
        break
    out += chunk
os.waitpid(pid, 0)
sys.stdout.write(out.decode("latin-1").replace("\0", " "))
PY
	chown "$U1" "$U1_TMP/helper.py"
	local name=$1
	shift
	chmod 0755 "$LIBEXEC/$name"
	run timeout 30 runuser -u "$U1" -- sh -c 'cd "$HOME" && exec python3 "$@" 2>&1' x "$U1_TMP/helper.py" "$@"
	chmod 0711 "$LIBEXEC/$name"
	echo "# $name: $output"
}

# ferry-plan sends root the plan it acts on (a restart's network address among it): the user must
# not be able to trace it and change that plan.
@test "plan: a ferry-plan its user could read (and so trace) is refused; nothing starts" {
	[ "$(stat -c %a "$LIBEXEC/ferry-plan")" = 711 ] || fail "ferry-plan is installed $(stat -c %a "$LIBEXEC/ferry-plan"), not 0711"
	chmod 0755 "$LIBEXEC/ferry-plan"
	run --separate-stderr as_user1 "$FERRY" instance start "$IMG" xa-p sleep 60
	echo "# $stderr"
	[ "$status" -ne 0 ] || fail "the start was not refused"
	[[ "$(tail -n 1 <<<"$stderr")" == "ferry: '$LIBEXEC/ferry-plan' must not be readable by others (mode 0711)"* ]] ||
		fail "not refused for its mode: $stderr"
	assert_nothing_started "$U1" xa-p
	# and run on its own, readable (dumpable: as with fs.suid_dumpable 1), it sends no plan
	run_helper_readable ferry-plan 3 "$LIBEXEC/ferry-plan" request 0 ""
	[[ "$output" == *"ferry-plan is readable by its caller, so it could be traced"* ]] ||
		fail "a dumpable ferry-plan went on: $output"
}
