#!/usr/bin/env bats
# Attacks on ferryd (issue 11: F2, F7, F11), as the unprivileged test users, on the simulated
# cluster of tests/lib/nodes.sh (see migrate.bats): only 198.18.0.0/15, only inside the
# namespaces it makes.
#
#   F2  ferryd made BASE/<uid> the user's and chowned a path inside it by name: a racer swapping
#       the migration's directory for a symlink got any file chowned to them; a user who made
#       the tmpfs base first owned every diskless migration's directory.
#   F7  ferryd forked a root process per connection, before authentication, waiting 30 s each;
#       and counted only local clients per user: one user's requests from peers (holds of group
#       members, migrations, remote starts) took every handler of a node, for up to an hour.
#   F11 ferryd never removed shared/<uid>/<name>-<id>.
#   link ferryd's messages to its peer (prepare, restart, done, the default-mode verdict and
#       commit) went in plaintext after the handshake: anyone on the path read the user and the
#       instance, and could change them (tests/integration/mitm-proxy.py in the middle).
#   privsep a local client's request was read and parsed (src/lib/proto.c) by a root process
#       with all capabilities: a parser bug was a root bug. The reader must be the client for
#       good (ids, no capability, no_new_privs), and a reader killed is a one-line refusal.
#   relay a peer's answer to a start on it was passed on to the user unlooked at: an 'out' of
#       any size a message holds, more than 4 MiB in all, a 'done' without a status.

load ../lib/common
load ../lib/checkpoint
source "$FERRY_TESTS_DIR/lib/nodes.sh"
load ../lib/migrate

ATTACK_BIN=/var/tmp/ft-ferryd-attack-bin
PROXY=${BATS_TEST_DIRNAME}/mitm-proxy.py
PROXY_ADDR=198.18.0.1:7790 # in nodeA's namespace: nodeA's ferryd reaches nodeB through it

setup_file() {
	mig_file_setup
	rm -rf "$ATTACK_BIN"
	mkdir -m 0755 "$ATTACK_BIN"
	write_racer "$ATTACK_BIN/racer.c"
	gcc -O2 -Wall -Wextra -Werror -o "$ATTACK_BIN/racer" "$ATTACK_BIN/racer.c"
	chmod 0755 "$ATTACK_BIN/racer"
	write_readers "$ATTACK_BIN/readers.py"
}

teardown_file() {
	mig_file_teardown ftatk
	rm -rf "$ATTACK_BIN" /dev/shm/.ft-migrate-node*.moved-*
}

setup() {
	mig_test_setup ftatk
	BG_PIDS=()
	USER_BG=()
	KILL_ALL_FIRST=()
	STOPPED_PIDS=()
	SECRET=/var/tmp/ft-ferryd-secret-$BATS_TEST_NUMBER
}

teardown() {
	local p
	for p in "${KILL_ALL_FIRST[@]}"; do # (what waits on a lock a background process holds)
		ferryd_kill "$p" all
	done
	for p in "${USER_BG[@]}"; do # (runuser does not pass its end on to the user's process)
		kill_tree "$p"
		wait "$p" 2>/dev/null || true
	done
	for p in "${STOPPED_PIDS[@]}"; do # (only while it is the one stopped: no reused pid)
		! grep -q '^State:[[:space:]]*T' "/proc/$p/status" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
	done
	for p in "${BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	mig_test_teardown 40
	rm -rf /dev/shm/.ft-migrate-node*.moved-* "$SECRET" "$U2_TMP"/ftatk-*
	rm -f "$JOURNAL"/nodeA/* "$JOURNAL"/nodeB/* # (records planted or left; ferryd is stopped)
}

# kill_tree PID: SIGKILL to PID and every process under it.
kill_tree() {
	local pid ppid
	local -A kids=()
	while read -r pid ppid; do kids[$ppid]+=" $pid"; done < <(ps -e -o pid=,ppid=)
	local -a todo=("$1") all=()
	while [ ${#todo[@]} -gt 0 ]; do
		all+=("${todo[0]}")
		# shellcheck disable=SC2206
		todo=("${todo[@]:1}" ${kids[${todo[0]}]:-})
	done
	kill -KILL "${all[@]}" 2>/dev/null || true
}

# The racer (as a user): watches DIR with inotify and, for every directory made in it, renames
# it away and puts a symlink to TARGET in its place, until SECONDS have passed; it also tries to
# plant entries in DIR itself. Prints what it could do.
write_racer() {
	cat >"$1" <<-'EOF'
		#define _GNU_SOURCE
		#include <errno.h>
		#include <stdio.h>
		#include <stdlib.h>
		#include <string.h>
		#include <sys/inotify.h>
		#include <sys/stat.h>
		#include <time.h>
		#include <unistd.h>

		int main(int argc, char **argv)
		{
			if (argc != 4)
				return 2;
			const char *dir = argv[1], *target = argv[2];
			time_t end = time(NULL) + atoi(argv[3]);
			int in = inotify_init1(IN_NONBLOCK);
			int wd = inotify_add_watch(in, dir, IN_CREATE);
			printf("watch: %s\n", wd < 0 ? strerror(errno) : "ok");
			char path[4096], aside[4096], plant[4096];
			snprintf(plant, sizeof(plant), "%s/planted", dir);
			unsigned swaps = 0, planted = 0, n = 0;
			while (time(NULL) < end) {
				if (symlink(target, plant) == 0)
					planted++, unlink(plant);
				char buf[65536] __attribute__((aligned(8)));
				ssize_t len = wd < 0 ? -1 : read(in, buf, sizeof(buf));
				for (char *p = buf; len > 0 && p < buf + len;) {
					struct inotify_event *e = (struct inotify_event *)p;
					p += sizeof(*e) + e->len;
					if (!(e->mask & IN_ISDIR) || !e->len || e->name[0] == '.')
						continue;
					snprintf(path, sizeof(path), "%s/%s", dir, e->name);
					snprintf(aside, sizeof(aside), "%s/.aside-%u", dir, n++);
					if (rename(path, aside) == 0 && symlink(target, path) == 0)
						swaps++;
				}
				if (wd < 0)
					usleep(1000);
			}
			printf("swaps %u planted %u\n", swaps, planted);
			return 0;
		}
	EOF
}

# readers.py FERRYD_PID: the processes in ferryd's tree blocked reading a local client's
# connection (poll, ppoll, read, recvfrom or recvmsg on an accepted socket of "@ferry/ferryd",
# as /proc/PID/syscall and, for poll, the pollfd in the process's memory say): for each,
# "pid=P comm=C uid=R,E,S,F gid=R,E,S,F capeff=X capprm=X nnp=N key=yes|no" (key: whether the
# cluster key's bytes are anywhere in its readable memory).
write_readers() {
	cat >"$1" <<-'EOF'
		import os, re, struct, sys
		READ = {0, 45, 47}   # x86_64: read, recvfrom, recvmsg (fd first)
		POLL = {7, 271}      # poll, ppoll (struct pollfd *, nfds)
		root = int(sys.argv[1])
		kids = {}
		for p in filter(str.isdigit, os.listdir("/proc")):
		    try:
		        st = open("/proc/%s/stat" % p).read()
		    except OSError:
		        continue
		    kids.setdefault(int(st[st.rindex(")") + 2:].split()[1]), []).append(int(p))
		accepted = set()
		for line in open("/proc/%d/net/unix" % root).read().splitlines()[1:]:
		    f = line.split()
		    if len(f) >= 8 and f[7] == "@ferry/ferryd" and f[5] == "03":
		        accepted.add(f[6])
		def sock_of(pid, fd):
		    try:
		        m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink("/proc/%d/fd/%d" % (pid, fd)))
		    except OSError:
		        return None
		    return m and m.group(1)
		def fds_read(pid):
		    try:
		        sc = open("/proc/%d/syscall" % pid).read().split()
		    except OSError:
		        return []
		    if not sc or not sc[0].isdigit():
		        return []
		    nr, args = int(sc[0]), [int(a, 16) for a in sc[1:7]]
		    if nr in READ:
		        return [args[0]]
		    if nr in POLL and 0 < args[1] <= 16:
		        with open("/proc/%d/mem" % pid, "rb") as m:
		            m.seek(args[0])
		            raw = m.read(8 * args[1])
		        return [struct.unpack_from("<i", raw, 8 * i)[0] for i in range(args[1])]
		    return []
		def holds(pid, secret):
		    found = False
		    with open("/proc/%d/mem" % pid, "rb") as m:
		        for line in open("/proc/%d/maps" % pid):
		            addr, perms = line.split()[:2]
		            lo, hi = (int(a, 16) for a in addr.split("-"))
		            if perms[0] != "r" or line.rstrip().endswith("[vvar]") or line.rstrip().endswith("[vsyscall]"):
		                continue
		            try:
		                m.seek(lo)
		                found = found or secret in m.read(hi - lo)
		            except (OSError, ValueError, OverflowError):
		                pass
		    return found
		def status(pid):
		    s = dict(l.split(":", 1) for l in open("/proc/%d/status" % pid).read().splitlines() if ":" in l)
		    g = lambda k: ",".join(s[k].split())
		    key = "yes" if holds(pid, open("/etc/ferry/cluster.key", "rb").read()) else "no"
		    return "pid=%d comm=%s uid=%s gid=%s capeff=%s capprm=%s nnp=%s key=%s" % (
		        pid, s["Name"].strip(), g("Uid"), g("Gid"), s["CapEff"].strip(), s["CapPrm"].strip(),
		        s["NoNewPrivs"].strip(), key)
		todo = [root]
		while todo:
		    pid = todo.pop()
		    todo += kids.get(pid, [])
		    if any(sock_of(pid, fd) in accepted for fd in fds_read(pid)):
		        print(status(pid))
	EOF
}

# leaves BASE: the migrations' directories left in BASE/<user 1's uid> (none: prints nothing).
leaves() { ls -A "$1/$U1_UID" 2>/dev/null || true; }
no_leaves() { [ -z "$(leaves "$1")" ]; }

# ---------------------------------------------------------------- F2

@test "F2: a racer swapping the migration's directory for a symlink never gets a file chowned (15 s of attempts)" {
	mig_up
	echo "root's secret" >"$SECRET"
	chmod 0600 "$SECRET"
	# a migration makes user 1's directory in the shared directory (one of nothing is refused
	# before anything is made: the check before the freeze finds no such instance)
	local name=$T-race run_id at=nodeA
	mig_launch nodeA "$name" 8
	run_id=$(field_of "$OUT/$name.prog" run)
	mig_migrate nodeA "$name" --to nodeB
	[ "$status" -eq 0 ] || fail "migrate failed ($status): $stderr"
	at=nodeB
	[ -d "$MIG_SHARED/$U1_UID" ] || fail "no directory of user 1 in the shared directory"
	# the racer, as user 1, while user 1 moves the instance back and forth, over and over: each
	# default-mode migration makes its directory in there. (15 s: the directory is root's 0711,
	# checked below, so the racer can neither watch it nor plant in it; the attempts show that
	# the fix is structural, not a window too short to hit)
	on_node nodeA runuser -u "$U1" -- "$ATTACK_BIN/racer" "$MIG_SHARED/$U1_UID" "$SECRET" 15 \
		>"$BATS_TEST_TMPDIR/racer.out" 2>&1 </dev/null 3>&- &
	BG_PIDS+=("$!")
	local racer=$! tries=0 t_end=$((SECONDS + 15))
	while [ "$SECONDS" -lt "$t_end" ]; do
		if on "$at" "$FERRY" migrate "$name" --to "$(other_node "$at")" >/dev/null 2>&1; then
			at=$(other_node "$at")
		fi
		tries=$((tries + 1))
		[ "$(stat -c %u "$SECRET")" = 0 ] || break
	done
	wait "$racer" || true
	echo "# $tries migrations asked for; racer: $(tr '\n' ' ' <"$BATS_TEST_TMPDIR/racer.out")" >&3
	run stat -c %U:%G:%a "$SECRET"
	assert_output "root:root:600"
	grep -q "swaps 0 planted 0" "$BATS_TEST_TMPDIR/racer.out" || fail "the racer did something: $(cat "$BATS_TEST_TMPDIR/racer.out")"
	# the user's directory is root's: the user can neither add nor swap anything in it (before
	# issue 11 it was the user's, and only the race's short window kept the chown from winning)
	run stat -c %U:%a "$MIG_SHARED" "$MIG_SHARED/$U1_UID"
	assert_output "root:755
root:711"
	# and every one of those migrations left nothing behind (F11), and moved the same job
	wait_for no_leaves "$MIG_SHARED" || fail "left in the shared directory: $(leaves "$MIG_SHARED")"
	assert_only_on "$at" "$name"
	assert_moves_on "$name" "$run_id"
}

@test "F2: squatted tmpfs bases (another user's directory, a symlink) are moved aside, the migration lands in root's" {
	# user 2 makes both nodes' tmpfs bases before the daemons need them: on nodeB a directory
	# open to all, on nodeA a symlink to a directory of theirs
	as_user2 mkdir -p "$U2_TMP/$T-trap"
	as_user2 chmod 0777 "$U2_TMP/$T-trap"
	as_user2 mkdir -m 0777 "$MIG_TMPFS-nodeB"
	as_user2 touch "$MIG_TMPFS-nodeB/planted"
	as_user2 ln -s "$U2_TMP/$T-trap" "$MIG_TMPFS-nodeA"
	mig_up
	local name=$T-sq run_id
	mig_launch nodeA "$name" 8
	run_id=$(field_of "$OUT/$name.prog" run)
	mig_migrate nodeA "$name" --to nodeB --mode diskless
	[ "$status" -eq 0 ] || fail "migrate failed ($status): $stderr"
	assert_only_on nodeB "$name"
	assert_moves_on "$name" "$run_id"
	# the bases are root's now, not writable by others, and the squatters' entries moved aside
	run stat -c %U:%a "$MIG_TMPFS-nodeB" "$MIG_TMPFS-nodeA"
	assert_output "root:711
root:711"
	[ ! -L "$MIG_TMPFS-nodeA" ] || fail "nodeA's base is still a symlink"
	ferryd_log_has nodeB "moved '/dev/shm/ft-migrate-nodeB' aside to '.ft-migrate-nodeB.moved-" ||
		fail "the squatter on nodeB was not logged"
	ferryd_log_has nodeA "moved '/dev/shm/ft-migrate-nodeA' aside to '.ft-migrate-nodeA.moved-" ||
		fail "the squatter on nodeA was not logged"
	run sh -c 'stat -c %U /dev/shm/.ft-migrate-nodeB.moved-*/planted'
	assert_output "$U2"
	# nothing of user 1's went into user 2's directories
	[ -z "$(ls -A "$U2_TMP/$T-trap")" ] || fail "user 2's directory got: $(ls -la "$U2_TMP/$T-trap")"
	run sh -c 'ls -A /dev/shm/.ft-migrate-nodeB.moved-*'
	assert_output "planted"
}

@test "F2: a configured base below a directory a user owns is refused, and that directory is left alone" {
	# the admin points the shared dir below a directory of user 2's in /var/tmp: ferryd must
	# neither use it (user 2 could swap what is below) nor move user 2's directory away
	local own=/var/tmp/$T-u2dir
	rm -rf "$own"
	as_user2 mkdir -m 0755 "$own"
	as_user2 touch "$own/keep"
	MIG_SHARED=$own/shared mig_up
	local name=$T-own
	mig_launch nodeA "$name" 8
	mig_migrate nodeA "$name" --to nodeB --mode default
	[ "$status" -ne 0 ] || fail "a migration through '$own/shared' succeeded"
	[[ "$stderr" == *"'$own' is not a directory of root's"* ]] || fail "unexpected error: $stderr"
	assert_only_on nodeA "$name"
	[ -f "$own/keep" ] && [ "$(stat -c %U "$own")" = "$U2" ] || fail "user 2's directory was touched"
	rm -rf "$own"
}

# ---------------------------------------------------------------- F7

# flood HOST:PORT N SECONDS: from peer, TCP connections that never speak: N at once, then for
# SECONDS one more every 2 ms (the oldest closed beyond N), each left open while the server keeps it.
flood() {
	on_node peer python3 -c '
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
n, end = int(sys.argv[2]), time.time() + float(sys.argv[3])
socks, made = [], 0
def one():
    global made
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect((host, int(port)))
        socks.append(s)
        made += 1
    except OSError:
        s.close()
for _ in range(n):
    one()
print("open %d" % len(socks), flush=True)
while time.time() < end:
    one()
    while len(socks) > n:
        socks.pop(0).close()
    time.sleep(0.002)
print("made %d" % made, flush=True)
' "$@"
}

# count_procs NODE: ferryd's processes on NODE (the daemon and its handlers).
count_procs() { local p; p=$(ferryd_procs "$1"); wc -w <<<"$p"; }

@test "F7: 1000 keyless TCP connections fork nothing; a real migration goes through meanwhile" {
	mig_up
	local name=$T-flood run_id max=0 c
	mig_launch nodeA "$name" 8
	run_id=$(field_of "$OUT/$name.prog" run)
	flood "${NODE_IP[nodeB]}:$MIG_PORT" 1000 15 >"$BATS_TEST_TMPDIR/flood.out" 2>&1 </dev/null 3>&- &
	BG_PIDS+=("$!")
	local flooder=$!
	for _ in $(seq 300); do
		grep -q "^open" "$BATS_TEST_TMPDIR/flood.out" && break
		sleep 0.1
	done
	grep -q "^open" "$BATS_TEST_TMPDIR/flood.out" || fail "flood: $(cat "$BATS_TEST_TMPDIR/flood.out")"
	echo "# $(cat "$BATS_TEST_TMPDIR/flood.out") connections to nodeB" >&3
	c=$(count_procs nodeB)
	echo "# ferryd processes on nodeB under the flood: $c" >&3
	[ "$c" -le 2 ] || fail "$c ferryd processes on nodeB under a keyless flood"
	# a real migration, while the flood's connections are still open
	mig_bg nodeA "$name" --to nodeB
	for _ in $(seq 50); do
		c=$(count_procs nodeB)
		[ "$c" -le "$max" ] || max=$c
		sleep 0.1
	done
	mig_wait 60
	[ "$status" -eq 0 ] || fail "migration under the flood failed ($status): $stderr"
	assert_only_on nodeB "$name"
	assert_moves_on "$name" "$run_id"
	echo "# at most $max ferryd processes on nodeB during the migration" >&3
	[ "$max" -le 3 ] || fail "$max ferryd processes on nodeB"
	ferryd_log_has nodeB "refused a peer" || fail "no refusal logged"
	ferryd_alive nodeB || fail "ferryd on nodeB died"
	wait "$flooder" || true
	echo "# flood: $(tr '\n' ' ' <"$BATS_TEST_TMPDIR/flood.out")" >&3
}

@test "F7: one user's idle local connections are capped per user; another user's migration goes through" {
	mig_up
	local name=$T-idle run_id c
	mig_launch nodeA "$name" 8
	run_id=$(field_of "$OUT/$name.prog" run)
	on_as nodeA "$U2" python3 "$WIRE" local idle 200 sleep 12 >"$BATS_TEST_TMPDIR/idle.out" 2>&1 </dev/null 3>&- &
	BG_PIDS+=("$!")
	wait_for grep -q "idle 200" "$BATS_TEST_TMPDIR/idle.out" || fail "idle client: $(cat "$BATS_TEST_TMPDIR/idle.out")"
	c=$(count_procs nodeA)
	echo "# ferryd processes on nodeA with 200 idle connections of user 2: $c" >&3
	# the daemon and at most 16 handlers for user 2
	[ "$c" -le 17 ] || fail "$c ferryd processes on nodeA"
	# what reads those connections is user 2's, one reader a handler (ask.c)
	local r p
	r=$(ferryd_procs nodeA ferryd-request)
	echo "# their readers: $(wc -w <<<"$r")" >&3
	[ "$(wc -w <<<"$r")" -le 16 ] || fail "$(wc -w <<<"$r") readers on nodeA"
	for p in $r; do
		[ "$(stat -c %u "/proc/$p")" = "$U2_UID" ] || fail "reader $p is not user 2's"
	done
	# user 2 is told why when over the limit
	run on_as nodeA "$U2" python3 "$WIRE" local msg type=migrate instance=x to=nodeB mode=default recv
	assert_output --partial "reply type=error message=you have 16 requests in progress"
	mig_migrate nodeA "$name" --to nodeB
	[ "$status" -eq 0 ] || fail "user 1's migration failed ($status): $stderr"
	assert_only_on nodeB "$name"
	assert_moves_on "$name" "$run_id"
}

# mine_refused FILE...: how many of the clients whose output is in FILE... were told that nodeB is
# busy with 16 of user 1's requests.
mine_refused() { grep -l "ferryd on 'nodeB' is busy with 16 of your requests" "$@" 2>/dev/null | wc -l; }

@test "F7: one user's requests from peers count with their local ones, 16 on a node; the 17th is refused in one line on the asking node; another user's request goes through" {
	mig_up
	mig_launch nodeB "$T-m" 16
	KILL_ALL_FIRST+=(nodeB)
	local i c dir out=$BATS_TEST_TMPDIR
	# user 1 holds their own checkpoint directory's lock: every dump of '$T-m' (a group member's
	# hold) waits for it without a word, and keeps its handler on nodeB (2 'criu timeout' + 2
	# 'peer timeout')
	dir=$(ckpt_dir "$U1" "$T-m")
	on nodeB python3 -c 'import fcntl, os, sys, time
fcntl.flock(os.open(sys.argv[1], os.O_RDONLY), fcntl.LOCK_EX)
time.sleep(90)' "$dir" </dev/null >/dev/null 2>&1 3>&- &
	USER_BG+=("$!")
	# 32 holds of '$T-m' for user 1, as the ferryd of other nodes where user 1 has an account
	# sends them (hold.c), each on a connection that proved the cluster key
	for ((i = 0; i < 32; i++)); do
		on_node nodeA python3 "$WIRE" peer "${NODE_IP[nodeB]}:$MIG_PORT" /etc/ferry/cluster.key \
			msg type=hold "id=$(printf 'fee0%08x' "$i")" "uid=$U1_UID" "user=$U1" "instance=$T-m" leave=1 \
			from=nodeC recv sleep 80 >"$out/peer-$i.out" 2>&1 </dev/null 3>&- &
		BG_PIDS+=("$!")
	done
	# settled N: N holds have a handler on nodeB or were refused
	settled() { [ $(($(handlers nodeB | wc -l) + $(mine_refused "$out"/*.out))) -ge "$1" ]; }
	wait_within 30 settled 32 || fail "the peers' holds did not settle: $(handlers nodeB | wc -l) handlers on nodeB"
	# 16 more through nodeA's ferryd, as user 1 (ferry checkpoint group nodeB:$T-m, 16 times)
	for ((i = 0; i < 16; i++)); do
		on nodeA python3 "$WIRE" local msg type=hold "instance=$T-m" to=nodeB leave=1 recv sleep 80 \
			>"$out/a-$i.out" 2>&1 </dev/null 3>&- &
		USER_BG+=("$!")
	done
	wait_within 30 settled 48 || fail "nodeA's holds did not settle: $(handlers nodeB | wc -l) handlers on nodeB"
	# and 16 local clients of user 1's on nodeB itself
	on nodeB python3 "$WIRE" local idle 16 sleep 30 >"$out/idle.out" 2>&1 </dev/null 3>&- &
	USER_BG+=("$!")
	wait_within 10 grep -q "idle 16" "$out/idle.out" || fail "idle: $(cat "$out/idle.out")"
	sleep 1 # (a local client's handler is forked at its accept)
	c=$(handlers nodeB | wc -l)
	echo "# user 1's handlers on nodeB: $c; peers' holds refused: $(mine_refused "$out"/peer-*.out) of 32, nodeA's: $(mine_refused "$out"/a-*.out) of 16" >&3
	# another user, meanwhile: a list on nodeB, through nodeA (a peer request on nodeB)
	run --separate-stderr on_as nodeA "$U2" "$FERRY" instance list --node nodeB
	echo "# user 2's list on nodeB: status $status $stderr" >&3
	[ "$status" -eq 0 ] || fail "user 2 was refused on nodeB ($status): $stderr"
	[ "$c" -le 16 ] || fail "user 1 holds $c handlers on nodeB"
	[ "$(mine_refused "$out"/peer-*.out)" -eq 16 ] || fail "not 16 of the peers' 32 holds refused: $(cat "$out"/peer-0.out)"
	# the refusal reaches user 1 on the asking node, in one line
	[ "$(mine_refused "$out"/a-*.out)" -eq 16 ] || fail "nodeA's holds were not refused: $(cat "$out"/a-0.out)"
	echo "# on nodeA: $(grep -h '^reply' "$out"/a-0.out)" >&3
	# user 1's local requests on nodeB are over the same 16
	run on nodeB python3 "$WIRE" local msg type=migrate instance=x to=nodeA mode=default recv
	assert_output --partial "reply type=error message=you have 16 requests in progress"
	ferryd_kill nodeB all
	ferryd_alive nodeA
}

# ---------------------------------------------------------------- F11

@test "F11: no migration directory is left, after successful and failed migrations, in both modes" {
	mig_up
	local name=$T-gone run_id
	mig_launch nodeA "$name" 16
	run_id=$(field_of "$OUT/$name.prog" run)
	# default mode, successful: the instance runs on nodeB, its checkpoint in the shared dir is gone
	mig_migrate nodeA "$name" --to nodeB
	[ "$status" -eq 0 ] || fail "default migration failed ($status): $stderr"
	wait_for no_leaves "$MIG_SHARED" || fail "left in the shared directory: $(leaves "$MIG_SHARED")"
	assert_moves_on "$name" "$run_id"
	# diskless, successful: nothing left in either tmpfs (the destination's copy, the source's staging)
	mig_migrate nodeB "$name" --to nodeA --mode diskless
	[ "$status" -eq 0 ] || fail "diskless migration failed ($status): $stderr"
	wait_for no_leaves "$MIG_TMPFS-nodeA" || fail "left in nodeA's tmpfs: $(leaves "$MIG_TMPFS-nodeA")"
	wait_for no_leaves "$MIG_TMPFS-nodeB" || fail "left in nodeB's tmpfs: $(leaves "$MIG_TMPFS-nodeB")"
	assert_only_on nodeA "$name"
	assert_moves_on "$name" "$run_id"
	# and once more each way: the instance needs nothing of the removed directories
	mig_migrate nodeA "$name" --to nodeB --mode diskless
	[ "$status" -eq 0 ] || fail "second diskless migration failed ($status): $stderr"
	mig_migrate nodeB "$name" --to nodeA
	[ "$status" -eq 0 ] || fail "second default migration failed ($status): $stderr"
	assert_only_on nodeA "$name"
	assert_moves_on "$name" "$run_id"
	# failed ones, both modes: a dump that fails, a destination that cannot restart (diskless)
	local mode
	for mode in default diskless; do
		run --separate-stderr on nodeA "$FERRY" migrate "$T-nosuch" --to nodeB --mode "$mode"
		assert_ferry_error "no instance '$T-nosuch'"
	done
	run on nodeB "$FERRY" instance start "$IMG" "$name" sleep 1000
	assert_success
	mig_migrate nodeA "$name" --to nodeB --mode diskless
	assert_ferry_error "keeps running on nodeA"
	for b in "$MIG_SHARED" "$MIG_TMPFS-nodeA" "$MIG_TMPFS-nodeB"; do
		wait_for no_leaves "$b" || fail "left in $b: $(leaves "$b")"
	done
	assert_moves_on "$name" "$run_id"
}

# ---------------------------------------------------------------- the local request's reader

# readers_of NODE: the lines of readers.py for ferryd on NODE (READERS), true when there are any.
readers_of() {
	READERS=$(python3 "$ATTACK_BIN/readers.py" "${FERRYD_PID[$1]}")
	[ -n "$READERS" ]
}

@test "privsep: the process that reads and parses a local request is the client for good: its ids, no capability, no_new_privs, no cluster key" {
	mig_up
	# user 2 sends a length and 5 bytes of the 100 it announces, and waits for the answer
	on_as nodeA "$U2" python3 "$WIRE" local len 100 raw 6665727279 recv >"$BATS_TEST_TMPDIR/held.out" \
		2>&1 </dev/null 3>&- &
	BG_PIDS+=("$!")
	wait_for readers_of nodeA || fail "no process of ferryd on nodeA reads the connection"
	echo "# the reader: $READERS" >&3
	[ "$(wc -l <<<"$READERS")" -eq 1 ] || fail "more than one reader: $READERS"
	local u=$U2_UID g pid
	g=$(id -g "$U2")
	pid=$(sed -n 's/^pid=\([0-9]*\) .*/\1/p' <<<"$READERS")
	[ "$pid" != "${FERRYD_PID[nodeA]}" ] || fail "the daemon itself reads the request"
	[[ "$READERS" == *" uid=$u,$u,$u,$u gid=$g,$g,$g,$g "* ]] || fail "the reader is not user 2 for good: $READERS"
	[[ "$READERS" == *" capeff=0000000000000000 capprm=0000000000000000 nnp=1 "* ]] ||
		fail "the reader keeps capabilities or may gain some: $READERS"
	[[ "$READERS" == *" key=no" ]] || fail "the reader holds the cluster key: $READERS"
	[ "$(awk '/^CapBnd/ {print $2}' "/proc/$pid/status")" = 0000000000000000 ] || fail "the reader's bounding set is not empty"
	# the reader killed: one line to the client, and ferryd goes on
	kill -KILL "$pid"
	wait_for grep -q "^reply\|^closed\|^timeout" "$BATS_TEST_TMPDIR/held.out" || fail "the client heard nothing"
	run cat "$BATS_TEST_TMPDIR/held.out"
	assert_output "reply type=error message=your request could not be read: its reader was killed by signal 9"
	ferryd_log_has nodeA "refused a request of $U2: your request could not be read: its reader was killed by signal 9" ||
		fail "the refusal was not logged"
	ferryd_alive nodeA || fail "ferryd on nodeA died"
	# and the next request is read as before
	run on_as nodeA "$U2" python3 "$WIRE" local msg type=migrate instance=x to=nodeZ mode=default recv
	assert_output "reply type=error message=no node 'nodeZ' is known to ferryd on 'nodeA'"
}

# ---------------------------------------------------------------- the link between the daemons

# proxy_up MODE ARG: mitm-proxy.py between nodeA's ferryd and nodeB's (PROXY_PID).
proxy_up() {
	ip netns exec nodeA python3 "$PROXY" "$1" "$PROXY_ADDR" "${NODE_IP[nodeB]}:$MIG_PORT" "$2" \
		>"$BATS_TEST_TMPDIR/proxy.out" 2>&1 </dev/null 3>&- &
	PROXY_PID=$!
	BG_PIDS+=("$PROXY_PID")
	wait_for grep -q listening "$BATS_TEST_TMPDIR/proxy.out" || fail "proxy: $(cat "$BATS_TEST_TMPDIR/proxy.out")"
}

# proxy_done: the proxy has relayed its one connection to the end (it frees its port).
proxy_gone() { [ ! -e "/proc/$PROXY_PID" ] || grep -q '^State:[[:space:]]*Z' "/proc/$PROXY_PID/status" 2>/dev/null; }
proxy_done() {
	wait_for proxy_gone || fail "the proxy still runs: $(cat "$BATS_TEST_TMPDIR/proxy.out")"
	wait "$PROXY_PID" 2>/dev/null || true
}

# Both daemons; nodeA's way to nodeB through the proxy (the last --peer of a name counts).
link_up() {
	mig_conf
	ferryd_start nodeB
	ferryd_start nodeA --peer "nodeB=$PROXY_ADDR"
}

@test "link: a man in the middle between the daemons sees no field of their messages, in either mode" {
	link_up
	local name=$T-seen run_id mode cap word
	mig_launch nodeA "$name" 8
	run_id=$(field_of "$OUT/$name.prog" run)
	for mode in default diskless; do
		cap=$BATS_TEST_TMPDIR/seen-$mode
		: >"$cap"
		proxy_up observe "$cap"
		mig_migrate nodeA "$name" --to nodeB --mode "$mode"
		[ "$status" -eq 0 ] || fail "$mode migration through the proxy failed ($status): $stderr"
		proxy_done
		[ "$(stat -c %s "$cap")" -gt 200 ] || fail "the proxy saw almost nothing ($mode)"
		for word in "$name" "$U1" "$U1_UID" ferry-proto "type=" prepare "nodeA" "$MIG_SHARED"; do
			! grep -qaF -- "$word" "$cap" || fail "'$word' in the clear between the daemons ($mode)"
		done
		assert_only_on nodeB "$name"
		# back, straight (nodeB's peer is nodeA itself)
		mig_migrate nodeB "$name" --to nodeA --mode "$mode"
		[ "$status" -eq 0 ] || fail "$mode migration back failed ($status): $stderr"
	done
	assert_only_on nodeA "$name"
	assert_moves_on "$name" "$run_id"
}

@test "link: one byte changed between the daemons fails the migration cleanly; the job keeps running on the source" {
	link_up
	local name=$T-flip run_id
	mig_launch nodeA "$name" 8
	run_id=$(field_of "$OUT/$name.prog" run)
	# the last bytes of the source's first message: in plaintext, the value of its last field
	# ("from=nodeA" would become "from=node@", which nothing checks)
	proxy_up tamper-last 2
	mig_migrate nodeA "$name" --to nodeB
	assert_ferry_error "failed authentication.*the instance was not touched"
	proxy_done
	! ferryd_log_has nodeB "receiving" || fail "nodeB acted on a changed message: $(cat "${FERRYD_LOG[nodeB]}")"
	assert_only_on nodeA "$name"
	assert_moves_on "$name" "$run_id"
	ferryd_alive nodeA || fail "ferryd on nodeA died"
	ferryd_alive nodeB || fail "ferryd on nodeB died"
	# and the link is not the worse for it: the next migration, through the same middle, goes
	proxy_up observe "$BATS_TEST_TMPDIR/after"
	mig_migrate nodeA "$name" --to nodeB
	[ "$status" -eq 0 ] || fail "the next migration failed ($status): $stderr"
	assert_only_on nodeB "$name"
	assert_moves_on "$name" "$run_id"
}

# ---------------------------------------------------------------- the reconciler's stop of a copy

# jrec_plant NODE ID NAME BEGUN: a destination record of NODE's journal, in doubt, of a default
# migration of user 1's NAME from the other node, begun at BEGUN (what ferryd writes).
jrec_plant() {
	mkdir -p -m 0700 "$JOURNAL/$1"
	printf 'ferry-proto 1\nid=%s\nrole=destination\nmode=default\nuid=%s\nuser=%s\ninstance=%s\npeer=%s\nstate=indoubt\nbegun=%s\n' \
		"$2" "$U1_UID" "$U1" "$3" "$(other_node "$1")" "$4" >"$JOURNAL/$1/$2"
	chmod 0600 "$JOURNAL/$1/$2"
	install -m 0600 /dev/null "$JOURNAL/$1/$2.commit" # its lock (journal.c)
}

@test "reconciler: the stop of a copy nobody supervises is done as its user: a record naming another user's process kills nothing; the user's own older instance is left alone" {
	mig_up
	local nid rec old=$T-old forged=$T-forged victim st saved
	nid=$(ip netns exec nodeB stat -L -c %i /proc/self/ns/net)
	mig_launch nodeB "$old" 16
	mig_launch nodeB "$forged" 16
	# user 2's process, which a record of user 1 names (as a reused pid with its start time would)
	as_user "$U2" sleep 1000 &
	BG_PIDS+=("$!")
	wait_for pgrep -u "$U2" -x sleep >/dev/null || fail "user 2's sleep did not start"
	victim=$(pgrep -u "$U2" -x sleep | head -n1)
	st=$(cut -d' ' -f22 "/proc/$victim/stat")
	rec=/run/ferry/$U1_UID/n$nid/$forged
	[ -f "$rec" ] || fail "no record at $rec: $(ls -la "/run/ferry/$U1_UID")"
	saved=$BATS_TEST_TMPDIR/forged.rec
	cp "$rec" "$saved"
	sed -i -e "s/^pid=.*/pid=$victim/" -e "s/^starttime=.*/starttime=$st/" "$rec"
	# nodeB in doubt about two migrations nodeA never heard of: nodeA answers "none", so nodeB
	# stops the copies they restored. $old was started before its migration began: not its copy.
	ferryd_stop nodeB
	jrec_plant nodeB 00000000a001 "$forged" 1
	jrec_plant nodeB 00000000a002 "$old" "$(($(date +%s) + 3600))"
	ferryd_start nodeB
	wait_for ferryd_log_has nodeB "could not stop the copy of '$forged'" ||
		fail "no stop tried: $(cat "${FERRYD_LOG[nodeB]}")"
	wait_for ferryd_log_has nodeB "settled: '$old' stays on its source" ||
		fail "the older instance's record was not settled: $(cat "${FERRYD_LOG[nodeB]}")"
	kill -0 "$victim" || fail "user 2's process was killed through user 1's record"
	listed_on nodeB "$old" || fail "user 1's instance '$old', older than the migration, was stopped"
	ferryd_alive nodeB
	cp "$saved" "$rec"
}

# ---------------------------------------------------------------- the journal: a share a user

# A migration nobody can settle yet keeps its record in the journal (src/ferryd/journal.h): its
# peer is down, or its user stops the reconciler's child that stops its copy or empties its
# directory at every pass ("reconciler: a child that empties ..." above). A node held at most
# 256 unsettled records in all: one user's leftovers made it refuse every other user's
# migration. Here they are planted, as the reconciler cannot settle them: their peer, nodeC, is
# one nodeB cannot reach.
@test "journal: one user's 256 unsettled migrations on nodeB refuse that user's next one in one line, not another user's" {
	local i name=$T-u1 other=$T-u2
	mkdir -p -m 0700 "$JOURNAL/nodeB"
	for ((i = 0; i < 256; i++)); do
		printf 'ferry-proto 1\nid=%012x\nrole=destination\nmode=default\nuid=%s\nuser=%s\ninstance=%s-l%d\npeer=nodeC\nstate=indoubt\nbegun=1\n' \
			"$((0xd000 + i))" "$U1_UID" "$U1" "$T" "$i" >"$JOURNAL/nodeB/$(printf %012x $((0xd000 + i)))"
		install -m 0600 /dev/null "$JOURNAL/nodeB/$(printf %012x $((0xd000 + i))).commit"
	done
	chmod 0600 "$JOURNAL"/nodeB/*
	mig_up
	mig_launch nodeA "$name" 8
	# user 2's migration to nodeB goes through
	rm -rf "$(ckpt_dir "$U2" "$other")"
	as_user2 "$FERRY" checkpoint create "$other" >/dev/null || fail "user 2's checkpoint create"
	run --separate-stderr on_as nodeA "$U2" "$FERRY" instance start --criu-launch "$other" "$IMG" "$other" sleep 1000
	[ "$status" -eq 0 ] || fail "user 2's instance did not start ($status): $stderr"
	run --separate-stderr on_as nodeA "$U2" "$FERRY" migrate "$other" --to nodeB
	echo "# user 2: status $status $stderr" >&3
	[ "$status" -eq 0 ] || fail "user 2's migration was refused ($status): $stderr"
	assert_only_on nodeB "$other" "$U2"
	# user 1's next migration: refused on nodeB before anything stops, in one line that says why
	mig_migrate nodeA "$name" --to nodeB
	echo "# user 1: $stderr" >&3
	assert_ferry_error "nodeB has 256 unsettled migrations of $U1 .*at most 32 a user.*the instance was not touched"
	assert_only_on nodeA "$name"
	ferryd_alive nodeB
}

# ---------------------------------------------------------------- a start's answer from a peer

# A peer proves the cluster key, but what it sends is input all the same. The answer to a start
# on it ('instance start --node', 'instance list --node', src/ferryd/start.c) is the starter's
# stdout in 'out' messages of at most START_OUT_MAX bytes, START_OUT_TOTAL in all, then a 'done'
# with the starter's status: nodeA's ferryd passes on no more than that, refuses the rest in one
# line to its user, and goes on serving. The rogue peer is ferry-wire.py's fake peer daemon in
# namespace peer, which holds the key; nodeB is a true peer, which nodeA must still serve after.

ROGUE_ADDR=198.18.0.3:7791
OUT_MAX=36864     # START_OUT_MAX
OUT_TOTAL=4194304 # START_OUT_TOTAL

# rogue_up: nodeB's ferryd, and nodeA's with the peers nodeB and rogue (the fake one).
rogue_up() {
	mig_conf "$@"
	ferryd_start nodeB
	ferryd_start nodeA --peer "rogue=$ROGUE_ADDR"
}

# rogue OP...: the fake peer, for one connection from nodeA's ferryd: it answers the handshake,
# takes the start message, then does OPs (ferry-wire.py serve). Its log: $BATS_TEST_TMPDIR/rogue.out.
rogue() {
	# (emptied here, not only by the redirection below, which the background child makes later:
	# the wait must not find the last fake peer's "listening")
	: >"$BATS_TEST_TMPDIR/rogue.out"
	ip netns exec peer python3 "$WIRE" serve "$ROGUE_ADDR" /etc/ferry/cluster.key recv "$@" \
		>"$BATS_TEST_TMPDIR/rogue.out" 2>&1 </dev/null 3>&- &
	BG_PIDS+=("$!")
	wait_for grep -q listening "$BATS_TEST_TMPDIR/rogue.out" || fail "the fake peer: $(cat "$BATS_TEST_TMPDIR/rogue.out")"
}

# via_rogue ARGS...: 'ferry ARGS...' as user 1 on nodeA, for at most 90 s (a relay that never
# ends fails the test, it does not hang it); status and stderr as bats' run sets them; its stdout
# (megabytes) into $BATS_TEST_TMPDIR/cli.out, its size in CLI_BYTES (output says it); CLI_SECONDS.
via_rogue() {
	local t0=$EPOCHREALTIME
	status=0
	on nodeA timeout 90 "$FERRY" "$@" >"$BATS_TEST_TMPDIR/cli.out" 2>"$BATS_TEST_TMPDIR/cli.err" || status=$?
	stderr=$(cat "$BATS_TEST_TMPDIR/cli.err")
	CLI_BYTES=$(stat -c %s "$BATS_TEST_TMPDIR/cli.out")
	# shellcheck disable=SC2034 # as bats' run sets it, for assert_ferry_error's message
	output="<$CLI_BYTES bytes>"
	CLI_SECONDS=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%d", b - a}')
}

# start_via_rogue: an instance start of user 1 on the rogue node, through nodeA's ferryd.
start_via_rogue() { via_rogue instance start --node rogue "$IMG" "$T" true; }

# handlers NODE: ferryd's connection handlers on NODE (its processes but the daemon).
handlers() { ferryd_procs "$1" | tr ' ' '\n' | grep -vx "${FERRYD_PID[$1]}" | grep . || true; }
no_handlers() { [ -z "$(handlers "$1")" ]; }

# assert_refused PATTERN: the client was refused in one line matching PATTERN, within 10 s (no
# wait for a limit on silence); nodeA's ferryd is up, its handler gone, and it still serves: user
# 1's list on nodeB, through it, comes.
assert_refused() {
	assert_ferry_error "$1"
	[ "$CLI_SECONDS" -lt 10 ] || fail "refused after ${CLI_SECONDS}s"
	ferryd_alive nodeA || fail "ferryd on nodeA died"
	wait_for no_handlers nodeA || fail "the relay's handler still runs: $(handlers nodeA)"
	run --separate-stderr on nodeA "$FERRY" instance list --node nodeB
	[ "$status" -eq 0 ] || fail "nodeA no longer serves a list on nodeB ($status): $stderr"
}

# hwm_watch NODE FILE: in the background, every 50 ms until killed, a line into FILE: the fake
# peer's last word (its log's last line) and the largest VmHWM (kB) of ferryd's handlers on NODE.
hwm_watch() {
	(
		while :; do
			max=0
			for p in $(handlers "$1"); do
				v=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
				[ -z "$v" ] || [ "$v" -le "$max" ] || max=$v
			done
			echo "$(tail -n 1 "$BATS_TEST_TMPDIR/rogue.out") $max" >>"$2"
			sleep 0.05
		done
	) </dev/null 3>&- &
	BG_PIDS+=("$!")
}

# hwm_at FILE WORD: the relay's peak memory (kB) once the fake peer had said WORD ("outs 2").
hwm_at() { grep "^$2 " "$1" | awk '{v = $NF} END {print v + 0}'; }

@test "relay: a peer's endless 'out' messages stop at a start's 4 MiB (empty ones at a start's count); the relay holds none of it; ferryd goes on" {
	rogue_up
	# the fake peer as a true one: two whole messages and the end, passed on as they are
	rogue outs 2 "$OUT_MAX" msg type=done id=@id status=0
	start_via_rogue
	[ "$status" -eq 0 ] || fail "a well-formed answer was refused ($status): $stderr"
	[ "$CLI_BYTES" -eq $((2 * OUT_MAX)) ] || fail "$CLI_BYTES bytes of output passed on, not $((2 * OUT_MAX))"
	# 1000 whole messages (36 MiB) and a 'done' that says all went well; pauses after 2 and after
	# 100 more (3.6 MiB relayed) while the relay's memory is looked at: it passes messages on,
	# keeps none
	local base hwm
	hwm_watch nodeA "$BATS_TEST_TMPDIR/hwm"
	rogue outs 2 "$OUT_MAX" sleep 2 outs 100 "$OUT_MAX" sleep 2 outs 898 "$OUT_MAX" msg type=done id=@id status=0
	start_via_rogue
	echo "# fake peer: $(tr '\n' ' ' <"$BATS_TEST_TMPDIR/rogue.out" | grep -o 'outs.*'); passed on: $CLI_BYTES bytes" >&3
	assert_refused "^ferry: rogue sent more output than a start's \(4194304 bytes\)$"
	[ "$CLI_BYTES" -le "$OUT_TOTAL" ] || fail "$CLI_BYTES bytes passed on, more than a start's $OUT_TOTAL"
	base=$(hwm_at "$BATS_TEST_TMPDIR/hwm" "outs 2")
	hwm=$(hwm_at "$BATS_TEST_TMPDIR/hwm" "outs 100")
	echo "# the relay's peak memory: $base kB after 2 messages, $hwm kB after 102" >&3
	[ "$base" -gt 0 ] || fail "the relay's memory was never seen: $(tail -n 5 "$BATS_TEST_TMPDIR/hwm")"
	[ "$hwm" -lt $((base + 1024)) ] || fail "the relay grew from $base kB to $hwm kB over 3.6 MiB passed on"
	# a list has its answer kept by the client: ferryd's limit is the one that says no (not the
	# client's own, at the same 4 MiB)
	rogue outs 1000 "$OUT_MAX" msg type=done id=@id status=0
	via_rogue instance list --node rogue
	assert_refused "^ferry: rogue sent more output than a start's \(4194304 bytes\)$"
	# empty messages, which add no bytes: no more of them than a start may send either
	rogue outs 1000 0 msg type=done id=@id status=0
	start_via_rogue
	assert_refused "^ferry: rogue sent more 'out' messages than a start's \(114\)$"
	[ "$CLI_BYTES" -eq 0 ] || fail "$CLI_BYTES bytes passed on"
}

@test "relay: an 'out' larger than a start's message, or not a blob, is refused, and nothing of it passed on" {
	rogue_up
	local n
	# one byte over, and the most a message holds (16 fields of 3000 bytes)
	for n in $((OUT_MAX + 1)) 48000; do
		rogue outs 1 "$n" msg type=done id=@id status=0
		start_via_rogue
		assert_refused "^ferry: rogue sent an 'out' larger than a start's message \($OUT_MAX bytes\)$"
		[ "$CLI_BYTES" -eq 0 ] || fail "$CLI_BYTES bytes of an 'out' of $n passed on"
	done
	# a field missing in the blob; a field that is not base64 of its size
	rogue msg type=out id=@id out_a=QUJD out_c=QUJD msg type=done id=@id status=0
	start_via_rogue
	assert_refused "^ferry: rogue sent a malformed 'out': bad out: field out_c after a missing one$"
	rogue msg type=out id=@id out_a=QUJ msg type=done id=@id status=0
	start_via_rogue
	assert_refused "^ferry: rogue sent a malformed 'out': bad out: field out_a is not base64 of its size$"
	[ "$CLI_BYTES" -eq 0 ] || fail "$CLI_BYTES bytes passed on"
}

@test "relay: a 'done' without a status of 0 to 255, or with more stderr than a start's, is refused in one line" {
	rogue_up
	local st
	for st in "" status= status=256 status=-1 status=1x; do
		# shellcheck disable=SC2086 # ("": no status field at all)
		rogue outs 1 100 msg type=done id=@id $st
		start_via_rogue
		assert_refused "^ferry: rogue sent a 'done' without a status \(0 to 255\)$"
	done
	# 5000 bytes of the starter's stderr, where a start sends at most its first 4 KiB
	rogue msg type=done id=@id status=0 "err_a=$(head -c 3000 /dev/zero | tr '\0' e | base64 -w0)" \
		"err_b=$(head -c 2000 /dev/zero | tr '\0' e | base64 -w0)"
	start_via_rogue
	assert_refused "^ferry: rogue sent a 'done' with a bad stderr \(at most 4096 bytes\): bad err: more than 4096 bytes$"
	# and the true end of a start that failed there: its status and its stderr, passed on
	rogue msg type=done id=@id status=3 "err_a=$(printf 'no such image\n' | base64 -w0)"
	start_via_rogue
	[ "$status" -eq 3 ] && [ "$stderr" = "no such image" ] || fail "status $status, stderr '$stderr'"
}

@test "relay: what is no message after the handshake ends the relay at once, in one line" {
	rogue_up
	# each time the fake peer then holds the connection: ferryd must not wait for it (30 s)
	local auth="^ferry: rogue: the connection between the daemons: a record of the transfer failed authentication"
	# a record's header announcing 4 GiB: refused before anything of it is read
	rogue raw ffffffff20 sleep 40
	start_via_rogue
	assert_refused "$auth"
	# bytes that are no record (a header of 16 bytes and no tag of the key)
	rogue raw 10000000204141414141414141414141414141414141414141414141414141414141414141 sleep 40
	start_via_rogue
	assert_refused "$auth"
	# sealed under the key, but a control record; a record that is no message; one over 64 KiB
	rogue rec 0x21 4141 sleep 40
	start_via_rogue
	assert_refused "^ferry: rogue: unexpected record of type 33 from the peer daemon$"
	rogue rec 0x20 68656c6c6f sleep 40
	start_via_rogue
	assert_refused "^ferry: rogue: not a ferry protocol 1 message$"
	rogue rec 0x20 msg:100000 sleep 40
	start_via_rogue
	assert_refused "^ferry: rogue: not a ferry protocol 1 message$"
	# a message, of a type that is no answer to a start
	rogue msg type=ready id=@id busy_ms=1 sleep 40
	start_via_rogue
	assert_refused "^ferry: rogue sent a 'ready' message where 'done' was due$"
	# the connection closed after the handshake
	rogue
	start_via_rogue
	assert_refused "^ferry: rogue: the peer closed the connection$"
}

@test "relay: a peer that goes silent before its 'done' is given up after 'peer timeout'; ferryd serves others meanwhile" {
	# (10 s, not the default 30: five of a working peer's keepalives, and time enough for the
	# list below to come while the relay still waits)
	local pt=10
	rogue_up "peer timeout = $pt"
	rogue outs 3 100 sleep 60
	local t0=$SECONDS
	(start_via_rogue; echo "$status $CLI_SECONDS $stderr" >"$BATS_TEST_TMPDIR/silent.rc") </dev/null 3>&- &
	BG_PIDS+=("$!")
	wait_for grep -q "outs 3" "$BATS_TEST_TMPDIR/rogue.out" || fail "the fake peer: $(cat "$BATS_TEST_TMPDIR/rogue.out")"
	# while one handler waits, the daemon serves: a list on nodeB through it
	run --separate-stderr on nodeA "$FERRY" instance list --node nodeB
	[ "$status" -eq 0 ] || fail "nodeA did not serve a list while a relay waited ($status): $stderr"
	[ ! -e "$BATS_TEST_TMPDIR/silent.rc" ] || fail "the list came only after the relay gave up ($((SECONDS - t0))s)"
	local i
	for ((i = 0; i < (pt + 30) * 10; i++)); do
		[ -e "$BATS_TEST_TMPDIR/silent.rc" ] && break
		sleep 0.1
	done
	[ -e "$BATS_TEST_TMPDIR/silent.rc" ] || fail "the start still waits after $((pt + 30)) s"
	read -r status CLI_SECONDS stderr <"$BATS_TEST_TMPDIR/silent.rc"
	echo "# given up after ${CLI_SECONDS}s: $stderr" >&3
	[ "$status" -eq 255 ] || fail "status $status: $stderr"
	[[ "$stderr" == "ferry: rogue: the peer sent nothing for $pt s" ]] || fail "stderr: $stderr"
	[ "$CLI_SECONDS" -ge $((pt - 1)) ] && [ "$CLI_SECONDS" -lt $((pt + 10)) ] || fail "given up after ${CLI_SECONDS}s, not $pt"
	ferryd_alive nodeA || fail "ferryd on nodeA died"
	wait_for no_handlers nodeA || fail "the relay's handler still runs: $(handlers nodeA)"
}

# ---------------------------------------------------------------- waits on what a user controls

# wait_within SECONDS CMD...: until CMD succeeds, polled every 0.2 s; 1 after SECONDS.
wait_within() {
	local end=$((SECONDS + $1))
	shift
	while [ "$SECONDS" -lt "$end" ]; do
		"$@" && return 0
		sleep 0.2
	done
	"$@"
}

# stop_as_user1 PID: user 1 stops their own process PID (SIGSTOP); teardown kills it.
stop_as_user1() {
	STOPPED_PIDS+=("$1")
	as_user1 kill -STOP "$1" || fail "user 1 could not stop pid $1"
	wait_for grep -q '^State:[[:space:]]*T' "/proc/$1/status" || fail "pid $1 is not stopped"
}

# gone PID: PID no longer runs (a zombie has ended).
gone() { [ ! -e "/proc/$1" ] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# stop_starter_until_killed NODE LOG: the first starter NODE's ferryd runs is stopped by its user
# (user 1) as soon as it runs, and must be killed by that ferryd once stopped for 'criu timeout'
# (5 s here), and a few seconds of a loaded machine; never after the 70 s of silence. LOG: what
# the client said, shown when no starter came.
stop_starter_until_killed() {
	local st i t0
	for ((i = 0; i < 1500; i++)); do
		st=$(ferryd_starters "$1" | head -n1)
		[ -z "$st" ] || break
		sleep 0.02
	done
	[ -n "$st" ] || fail "no starter of ferryd's on $1: $(cat "$2")"
	stop_as_user1 "$st"
	t0=$SECONDS
	wait_within 60 gone "$st" || fail "the stopped starter on $1 still runs after $((SECONDS - t0)) s"
	echo "# the starter on $1 was ended after $((SECONDS - t0)) s" >&3
	[ "$((SECONDS - t0))" -le 30 ] || fail "ended only after $((SECONDS - t0)) s"
}

@test "hold: a member's starter its user stops on the peer is killed once stopped for 'criu timeout'; the peer's handler ends, the workload runs on" {
	# (criu timeout 5: a stopped starter is killed after 5 s stopped, well before the bound on
	# a silent one, 2 'criu timeout' + 2 'peer timeout' = 70 s)
	mig_up "criu timeout = 5"
	# 512 MB: its dump takes seconds, in which the test finds its starter
	mig_launch nodeB "$T-m" 512
	(
		rc=0 # (bats' errexit ends the subshell at a failure)
		on nodeA timeout 200 "$FERRY" checkpoint group --leave-running "nodeB:$T-m" \
			>"$BATS_TEST_TMPDIR/grp.out" 2>&1 || rc=$?
		echo "$rc" >"$BATS_TEST_TMPDIR/grp.rc"
	) </dev/null 3>&- &
	BG_PIDS+=("$!")
	# the member's starter on nodeB, stopped by its user as soon as it runs (a held one waits too)
	stop_starter_until_killed nodeB "$BATS_TEST_TMPDIR/grp.out"
	wait_within 10 no_handlers nodeB || fail "nodeB's handler still runs: $(handlers nodeB)"
	wait_within 20 test -e "$BATS_TEST_TMPDIR/grp.rc" ||
		fail "the group's client still waits: $(cat "$BATS_TEST_TMPDIR/grp.out"); nodeA's handlers: $(handlers nodeA); $(ps -eo pid,ppid,stat,wchan:24,args | grep -E '[f]erry|[r]unuser')"
	[ "$(cat "$BATS_TEST_TMPDIR/grp.rc")" != 0 ] || fail "the group checkpoint succeeded: $(cat "$BATS_TEST_TMPDIR/grp.out")"
	grep -q "on nodeB: its starter was stopped (SIGSTOP) for 5 s ('criu timeout'), and killed" "$BATS_TEST_TMPDIR/grp.out" ||
		fail "the client was not told why: $(cat "$BATS_TEST_TMPDIR/grp.out")"
	wait_within 10 no_handlers nodeA || fail "nodeA's handler still runs: $(handlers nodeA)"
	listed_on nodeB "$T-m" || fail "'$T-m' no longer runs on nodeB"
	local at
	at=$(step_of "$OUT/$T-m.prog")
	wait_step "$OUT/$T-m.prog" $((at + 2)) 30
	ferryd_alive nodeB
}

@test "migrate: a source starter its user stops is killed once stopped for 'criu timeout'; the migration fails in one line, the workload runs on nodeA, once" {
	mig_up "criu timeout = 5"
	local name=$T-ms run
	mig_launch nodeA "$name" 512
	run=$(field_of "$OUT/$name.prog" run)
	mig_bg nodeA "$name" --to nodeB --mode diskless
	stop_starter_until_killed nodeA "$BATS_TEST_TMPDIR/bg.err"
	mig_wait 60
	[ "$status" -ne 0 ] || fail "the migration went through"
	grep -q "stopped (SIGSTOP) for 5 s, and killed" <<<"$stderr" || fail "the client was not told why: $stderr"
	assert_only_on nodeA "$name"
	assert_moves_on "$name" "$run"
	assert_runs_once "$name"
	wait_within 10 no_handlers nodeA || fail "nodeA's handler still runs: $(handlers nodeA)"
}

# jrec_put NODE ID RECORD: RECORD (printf's escapes) as record ID of NODE's journal, with its lock,
# while ferryd runs (written aside and renamed: the reconciler never reads half a record).
jrec_put() {
	mkdir -p -m 0700 "$JOURNAL/$1"
	install -m 0600 /dev/null "$JOURNAL/$1/$2.commit"
	# shellcheck disable=SC2059 # the record's escapes
	printf "$3" >"$JOURNAL/$1/.new-$2"
	chmod 0600 "$JOURNAL/$1/.new-$2"
	mv "$JOURNAL/$1/.new-$2" "$JOURNAL/$1/$2"
}

# settle_child NODE: a process of ferryd-settle's on NODE that runs as user 1 (its child).
settle_child() {
	local s
	for s in $(ferryd_procs "$1" ferryd-settle); do
		ps -o pid=,uid=,comm= --ppid "$s" | awk -v u="$U1_UID" '$2 == u && $3 != "ferry-starter" {print $1; exit}'
	done
}

@test "reconciler: a child that empties a user's directory as the user, stopped by that user, is killed within its budget; the reconciler settles the next record" {
	mig_up
	local leaf id1=00000000b001 id2=00000000b002 child t0
	# a diskless migration of user 1 that nodeB is in doubt about and nodeA never heard of: nodeB
	# removes its directory in the tmpfs, which user 1 filled with 200,000 files
	leaf=$MIG_TMPFS-nodeB/$U1_UID/$T-x-$id1
	install -d -m 0711 "$MIG_TMPFS-nodeB" "$MIG_TMPFS-nodeB/$U1_UID"
	mkdir -m 0700 "$leaf"
	chown "$U1:" "$leaf"
	as_user1 sh -c "cd '$leaf' && mkdir d && cd d && seq 1 200000 | xargs touch"
	jrec_put nodeB "$id1" "ferry-proto 1\nid=$id1\nrole=destination\nmode=diskless\nuid=$U1_UID\nuser=$U1\ninstance=$T-x\npeer=nodeA\nstate=indoubt\nbegun=1\n"
	# the child that empties it, as user 1: stopped by user 1
	for ((i = 0; i < 1500; i++)); do
		child=$(settle_child nodeB)
		[ -z "$child" ] || break
		sleep 0.02
	done
	[ -n "$child" ] || fail "no child of the reconciler's as user 1 was seen: $(tail -n 5 "${FERRYD_LOG[nodeB]}")"
	stop_as_user1 "$child"
	t0=$SECONDS
	# another migration's record: the reconciler, not held by the stopped child, settles it
	jrec_put nodeB "$id2" "ferry-proto 1\nid=$id2\nrole=destination\nmode=default\nuid=$U1_UID\nuser=$U1\ninstance=$T-y\npeer=nodeA\nstate=indoubt\nbegun=1\n"
	wait_within 60 ferryd_log_has nodeB "settled: '$T-y' stays on its source" ||
		fail "the next record was not settled within $((SECONDS - t0)) s: $(tail -n 5 "${FERRYD_LOG[nodeB]}")"
	echo "# the next record settled after $((SECONDS - t0)) s" >&3
	gone "$child" || fail "the stopped child still runs"
	# the first record is kept for a later pass, which empties the directory and settles it
	wait_within 60 ferryd_log_has nodeB "settled: '$T-x' stays on its source" ||
		fail "the first record was never settled: $(tail -n 5 "${FERRYD_LOG[nodeB]}")"
	[ ! -e "$leaf" ] || fail "'$leaf' is left"
	ferryd_alive nodeB
}

# A user who stops every child the reconciler runs as them (ferryd-empty here) costs it that
# child's 20 s: the reconciler settled one record after another, so three records of user 1
# held another user's for a minute and more a pass (in doubt, a diskless copy stays frozen
# that long). A user whose record took that long waits until the others are settled.
@test "reconciler: a user who stops its children at every record does not hold another user's record for their sum" {
	mig_up
	local i leaf id victim=00000000c0ff t0
	for ((i = 1; i <= 3; i++)); do
		id=00000000c00$i
		leaf=$MIG_TMPFS-nodeB/$U1_UID/$T-x$i-$id
		install -d -m 0711 "$MIG_TMPFS-nodeB" "$MIG_TMPFS-nodeB/$U1_UID"
		mkdir -m 0700 "$leaf"
		chown "$U1:" "$leaf"
		as_user1 sh -c "cd '$leaf' && seq 1 100000 | xargs touch"
	done
	# user 1 stops each child of the reconciler's that runs as them, as soon as it runs
	as_user1 sh -c 'while :; do pkill -STOP -u "$(id -u)" -x ferryd-empty; sleep 0.01; done' \
		</dev/null >/dev/null 2>&1 3>&- &
	USER_BG+=("$!")
	for ((i = 1; i <= 3; i++)); do
		id=00000000c00$i
		jrec_put nodeB "$id" "ferry-proto 1\nid=$id\nrole=destination\nmode=diskless\nuid=$U1_UID\nuser=$U1\ninstance=$T-x$i\npeer=nodeA\nstate=indoubt\nbegun=1\n"
	done
	wait_within 30 pgrep -u "$U1" -x ferryd-empty >/dev/null || fail "no child of the reconciler's ran as user 1"
	t0=$SECONDS
	# user 2's record, in doubt about a default migration nodeA never heard of: settled in a pass
	jrec_put nodeB "$victim" "ferry-proto 1\nid=$victim\nrole=destination\nmode=default\nuid=$U2_UID\nuser=$U2\ninstance=$T-v\npeer=nodeA\nstate=indoubt\nbegun=1\n"
	wait_within 45 ferryd_log_has nodeB "settled: '$T-v' stays on its source" ||
		fail "user 2's record was not settled within $((SECONDS - t0)) s: $(grep -c 'gave no answer' "${FERRYD_LOG[nodeB]}") children of user 1 timed out"
	echo "# user 2's record settled after $((SECONDS - t0)) s" >&3
	ferryd_alive nodeB
}

@test "hold: a client that sends the group's word a byte every 4 s does not hold its node's handler; the member gives up, the workload runs on" {
	mig_up
	mig_launch nodeB "$T-m" 16
	local -a ops=(raw 1d000000) # a message's length: the old word's 29 bytes, one every 4 s
	for ((i = 0; i < 10; i++)); do ops+=(sleep 4 raw 66); done
	on nodeA timeout 120 python3 "$WIRE" local msg type=hold "instance=$T-m" to=nodeB leave=1 recv "${ops[@]}" recv \
		>"$BATS_TEST_TMPDIR/word.out" 2>&1 </dev/null 3>&- &
	BG_PIDS+=("$!")
	wait_within 60 grep -q "type=held" "$BATS_TEST_TMPDIR/word.out" || fail "not held: $(cat "$BATS_TEST_TMPDIR/word.out")"
	local t0=$SECONDS
	wait_within 15 no_handlers nodeA || fail "nodeA's handler still waits for the word after $((SECONDS - t0)) s: $(handlers nodeA)"
	wait_within 15 no_handlers nodeB || fail "nodeB's handler still runs: $(handlers nodeB)"
	echo "# the handlers ended $((SECONDS - t0)) s after 'held'" >&3
	[ -z "$(find "$(ckpt_dir "$U1" "$T-m")" -maxdepth 1 -name 'gen-*')" ] || fail "a generation was published"
	listed_on nodeB "$T-m" || fail "'$T-m' no longer runs on nodeB"
	ferryd_alive nodeA
}
