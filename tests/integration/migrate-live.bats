#!/usr/bin/env bats
# Live migration (issue 13): ferry migrate --mode live, post-copy. Everything but the memory moves,
# the instance runs on the destination at once, its pages follow (those it faults on first), and
# the source lets its frozen copy go only once the last page is in (docs/protocol.md,
# docs/security.md "4. Live migration"). The round trip with a TCP stream is in migrate.bats; the
# failures during post-copy are the live column of the fault matrix (faults.bats).
#
# Two simulated nodes (tests/lib/nodes.sh, tests/lib/migrate.bash); only 198.18.0.0/15, only
# inside the namespaces they make.

load ../lib/common
load ../lib/checkpoint
source "$FERRY_TESTS_DIR/lib/nodes.sh"
load ../lib/migrate

setup_file() {
	mig_file_setup
}

teardown_file() {
	mig_file_teardown ftlive
}

setup() {
	mig_test_setup ftlive
	KDAT=$(ls -d /run/ferry-kdat/"$(cat /proc/sys/kernel/random/boot_id)" 2>/dev/null || true)
	SOFT=$(cat /proc/sys/fs/pipe-user-pages-soft)
}

teardown() {
	ip netns exec nodeA tc qdisc del dev eth0 root 2>/dev/null || true
	[ -z "$KDAT" ] || chmod 0755 "$KDAT"
	sysctl -qw fs.pipe-user-pages-soft="$SOFT"
	mig_test_teardown 30
}

# live_launch NAME MB [mig_launch options]: user 1's workload on nodeA, its pid in PID and run id in RUN.
live_launch() {
	mig_launch nodeA "$@"
	PID=$(inst_field nodeA "$1" pid)
	RUN=$(field_of "$OUT/$1.prog" run)
	[ -n "$PID" ] && [ -n "$RUN" ] || fail "no pid or run id for '$1'"
}

# assert_refused_untouched NAME REASON: refused before the freeze, the same process on nodeA.
assert_refused_untouched() {
	assert_ferry_error "$2.*; the instance was not touched$"
	[ "$(inst_field nodeA "$1" pid)" = "$PID" ] || fail "'$1' is not the same process any more"
	assert_only_on nodeA "$1"
	assert_runs_once "$1"
}

@test "live: a 256 MB job over a 400 Mbit/s link runs on the destination while its pages still come, and the report says how many it asked for" {
	mig_up
	local name=$T-big at steps_during=0 s0 s
	# a step reads 4 MiB: even where none of its pages has come yet (the background push goes in
	# address order, the job's place in its memory is where it was), it fetches them on demand in
	# well under a second, so the seconds of post-copy hold steps whatever that place
	live_launch "$name" 256 --verify 4
	# the pages take seconds (256 MB at 400 Mbit/s): long enough to see the job run meanwhile
	on_node nodeA tc qdisc add dev eth0 root tbf rate 400mbit burst 64kb latency 100ms
	s0=$(step_of "$OUT/$name.prog")
	mig_bg nodeA "$name" --to nodeB --mode live --json
	# while ferry migrate has not returned (its verdict comes after the last page), the job is
	# listed on nodeB and counts on: it runs there during post-copy
	while [ ! -e "$BATS_TEST_TMPDIR/bg.rc" ]; do
		s=$(step_of "$OUT/$name.prog")
		if [ -n "$s" ] && [ "$s" != "$s0" ] && [ ! -e "$BATS_TEST_TMPDIR/bg.rc" ] && listed_on nodeB "$name" &&
			[ ! -e "$BATS_TEST_TMPDIR/bg.rc" ]; then
			steps_during=$((steps_during + 1))
			s0=$s
		fi
		sleep 0.05
	done
	mig_wait 120
	[ "$status" -eq 0 ] || fail "live migration failed ($status): $stderr"
	assert_report "$output" live nodeA nodeB 256
	echo "# live, 256 MB at 400 Mbit/s: downtime $(json_field "$output" downtime_ms) ms, post-copy $(json_field "$output" postcopy_ms) ms, pages asked $(json_field "$output" pages_demand), pushed $(json_field "$output" pages_pushed); $steps_during steps seen on nodeB before the last page" >&3
	[ "$steps_during" -gt 0 ] || fail "the job made no step on nodeB before ferry migrate returned"
	[ "$(json_field "$output" pages_demand)" -gt 0 ] || fail "the job asked for no page"
	assert_only_on nodeB "$name"
	assert_moves_on "$name" "$RUN"
	assert_runs_once "$name"
}

@test "live, security: the live restore's CRIU holds CAP_SYS_PTRACE only where every process is the user's; the lazy-pages daemon holds CAP_CHECKPOINT_RESTORE alone" {
	mig_up
	local name=$T-caps watch=$BATS_TEST_TMPDIR/watch
	live_launch "$name" 64
	# every CRIU of user 1 seen while the migration runs (criu_watch)
	criu_watch "$watch"
	mig_migrate nodeA "$name" --to nodeB --mode live
	touch "$watch.stop"
	wait "$CRIU_WATCH"
	[ "$status" -eq 0 ] || fail "live migration failed ($status): $stderr"
	cat "$watch" | sed 's/^/# /' >&3
	# CAP_SYS_PTRACE is bit 19, CAP_CHECKPOINT_RESTORE bit 40
	assert_own_pidns "$watch" lazy "lazy-pages daemon"
	local ptrace="" kind caps uids
	while read -r kind caps uids _; do
		if (((0x$caps & 0x80000) != 0)); then ptrace+="$kind $caps $uids"$'\n'; fi
	done <"$watch"
	[ -n "$ptrace" ] || fail "no CRIU with CAP_SYS_PTRACE seen (the live restore's): $(cat "$watch")"
	# in its pid namespace, every process is the user's (never root: init dropped before)
	! awk 'NF {print $3}' <<<"$ptrace" | tr ',' '\n' | grep -vqx "$U1_UID" ||
		fail "a CRIU with CAP_SYS_PTRACE shares its pid namespace with another user's process: $ptrace"
	assert_only_on nodeB "$name"
	assert_moves_on "$name" "$RUN"
}

@test "live, security: a directory of CRIU's kernel facts that others can write is refused; the job keeps running on nodeA" {
	mig_up
	local name=$T-kdat
	[ -n "$KDAT" ] || fail "ferryd recorded no CRIU facts in /run/ferry-kdat"
	[ "$(stat -c %U:%a "$KDAT" "$KDAT/criu.kdat" | tr '\n' ' ')" = "root:755 root:644 " ] ||
		fail "the facts are not root's: $(stat -c '%n %U:%a' "$KDAT" "$KDAT/criu.kdat")"
	live_launch "$name" 16
	# writable by all, someone could put their own facts there for CRIU to load
	chmod 0777 "$KDAT"
	mig_migrate nodeA "$name" --to nodeB --mode live
	assert_ferry_error "is missing or not root's: .*; the instance keeps running on nodeA$"
	assert_only_on nodeA "$name"
	assert_moves_on "$name" "$RUN"
	assert_runs_once "$name"
}

@test "live, security: a FIFO in place of the lazy-pages daemon's log does not hang the destination's root starter; the job keeps running on nodeA" {
	# F-3: when the daemon fails to start, the starter, still root, reads the errors of its log in
	# the migration's directory on nodeB, which is the user's: it opened it with a plain openat,
	# and a FIFO there (no writer once the daemon is killed) hung it for good
	mig_up "criu timeout = 5"
	local name=$T-fifo
	live_launch "$name" 16
	# the user's own doing in their own directory (root finds its name, which ferryd makes from
	# an id; its parent is 0711): the FIFO, and a directory where the daemon would listen
	cat >"$BATS_TEST_TMPDIR/plant.py" <<'PY'
import glob, os, sys, time
base, name, uid = sys.argv[1], sys.argv[2], int(sys.argv[3])
for _ in range(6000):
    for d in glob.glob(os.path.join(base, name + "-*")):
        os.mkfifo(os.path.join(d, "lazy-pages.log"), 0o600)
        os.mkdir(os.path.join(d, "lazy-pages.socket"), 0o700)
        os.lchown(os.path.join(d, "lazy-pages.log"), uid, -1)
        os.lchown(os.path.join(d, "lazy-pages.socket"), uid, -1)
        print("planted", d, flush=True)
        sys.exit(0)
    time.sleep(0.005)
print("no directory", flush=True)
PY
	python3 "$BATS_TEST_TMPDIR/plant.py" "$MIG_TMPFS-nodeB/$(id -u "$U1")" "$name" "$(id -u "$U1")" \
		>"$BATS_TEST_TMPDIR/plant.out" 2>&1 &
	local planter=$!
	mig_bg nodeA "$name" --to nodeB --mode live
	mig_wait 90
	wait "$planter" || true
	echo "# $(cat "$BATS_TEST_TMPDIR/plant.out"); migrate ($status, ${MIG_SECONDS}s): $stderr"
	grep -q planted "$BATS_TEST_TMPDIR/plant.out" || fail "nothing planted: $(cat "$BATS_TEST_TMPDIR/plant.out")"
	[ "$status" -ne 0 ] || fail "the migration went through"
	# refused for what it is, within 'criu timeout' and a few seconds (a hung starter is only
	# ended by ferryd's own limit, 70 s without progress)
	grep -q "lazy-pages daemon" <<<"$stderr" || fail "not refused for the lazy-pages daemon: $stderr"
	[ "${MIG_SECONDS%.*}" -lt 40 ] || fail "the refusal took ${MIG_SECONDS}s"
	assert_only_on nodeA "$name"
	assert_moves_on "$name" "$RUN"
	assert_runs_once "$name"
}

@test "live: the destination's relay killed mid-transfer: the source gives the destination's reason, not a failed authentication; the job runs once, on nodeA" {
	# The destination's daemon tells why on the connection it lent the session; the source's
	# relay read that record as one of the session's, failed to open it with the session's key
	# and reported a forged record, and its daemon then waited for an answer it had eaten.
	mig_up
	local name=$T-rk relay i
	live_launch "$name" 256
	# 256 MB at 400 Mbit/s: the pages take seconds, and the relay is killed among them
	on_node nodeA tc qdisc add dev eth0 root tbf rate 400mbit burst 64kb latency 100ms
	mig_bg nodeA "$name" --to nodeB --mode live
	for ((i = 0; i < 1500; i++)); do
		relay=$(pgrep -f '^ferry-relay receive ' | head -n1)
		[ -z "$relay" ] || break
		sleep 0.02
	done
	[ -n "$relay" ] || fail "no relay on nodeB: $(cat "$BATS_TEST_TMPDIR/bg.err" 2>/dev/null)"
	# once the job runs there, in post-copy: its pages still come through that relay
	wait_for listed_on nodeB "$name" || fail "'$name' never ran on nodeB: $(cat "$BATS_TEST_TMPDIR/bg.err")"
	kill -KILL "$relay"
	mig_wait 90
	echo "# migrate ($status, ${MIG_SECONDS}s): $stderr" >&3
	[ "$status" -ne 0 ] || fail "the migration went through"
	! grep -q "failed authentication" <<<"$stderr" || fail "the source took the cut for a forged record: $stderr"
	# the destination's own reason comes first, the source's view after it
	grep -q "lazy-pages daemon failed.*(here: checkpoint of '$name': the transfer failed: the peer's side of the transfer ended before its end" <<<"$stderr" ||
		fail "not the destination's reason, then the source's: $stderr"
	assert_only_on nodeA "$name"
	assert_moves_on "$name" "$RUN"
	assert_runs_once "$name"
}

@test "live: 'allow live migration = no' refuses before anything freezes, on the destination and on the source" {
	local name=$T-no
	mig_up
	live_launch "$name" 16
	# nodeB's ferry.conf says no (its own mount namespace sees its own drop-in)
	local conf
	conf=$(mktemp /var/tmp/ft-live-conf.XXXXXX)
	{ cat "$FERRY_CONF_D/99-ferry-test.conf"; echo "allow live migration = no"; } >"$conf"
	chmod 0644 "$conf"
	nsenter -t "${FERRYD_PID[nodeB]}" -m mount --bind "$conf" "$FERRY_CONF_D/99-ferry-test.conf"
	hup_and_wait nodeB "SIGHUP: ferry.conf and the cluster key read again"
	mig_migrate nodeA "$name" --to nodeB --mode live
	assert_refused_untouched "$name" "nodeB refused: this node takes no live migration \('allow live migration = no'"
	# the other modes still go
	nsenter -t "${FERRYD_PID[nodeA]}" -m mount --bind "$conf" "$FERRY_CONF_D/99-ferry-test.conf"
	hup_and_wait nodeA "SIGHUP: ferry.conf and the cluster key read again"
	mig_migrate nodeA "$name" --to nodeB --mode live
	assert_refused_untouched "$name" "this node sends no live migration"
	rm -f "$conf"
	mig_migrate nodeA "$name" --to nodeB --mode diskless
	[ "$status" -eq 0 ] || fail "diskless after the refusals failed ($status): $stderr"
	assert_only_on nodeB "$name"
	assert_moves_on "$name" "$RUN"
}

@test "live: a source whose pipe limit cannot hold the job's memory refuses before anything freezes" {
	mig_up
	local name=$T-pipe
	live_launch "$name" 64
	sysctl -qw fs.pipe-user-pages-soft=4096
	mig_migrate nodeA "$name" --to nodeB --mode live
	assert_refused_untouched "$name" "fs.pipe-user-pages-soft \(4096 pages\) is too low"
}
