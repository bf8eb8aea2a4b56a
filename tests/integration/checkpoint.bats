#!/usr/bin/env bats
# Checkpoint and restart with CRIU (issue 3): checkpoint create/list/delete, instance start
# --criu-launch/--criu-restart, checkpoint instance --criu, as the unprivileged test users (and
# root). The workload is tests/workloads/stateful.c, in the zdtm style: it keeps a counter and
# memory whose checksums it verifies itself, and reports "step N ok ..." or "FAIL ...".
#
# The page-server tests run both sides on this node over 127.0.0.1 (the simulated multi-node
# cluster is the migration suite's business).

load ../lib/common
load ../lib/checkpoint

setup_file() {
	ferry_suite_setup
	build_ckpt_workload
}

teardown_file() {
	ferry_suite_teardown
	local u
	for u in "$U1" "$U2" root; do
		rm -rf "$(home_of "$u")"/.ferry/checkpoint/ftck-* "$(home_of "$u")"/ftck-*
		rm -rf /dev/shm/ferry-"$(id -u "$u")"-ftck-*
	done
}

setup() {
	ferry_test_setup
	use_image sqsh >/dev/null
	# each test's checkpoints are ftck-<test number>-...; a rerun starts from nothing
	T=ftck-$BATS_TEST_NUMBER
	local u
	for u in "$U1" "$U2" root; do
		rm -rf "$(home_of "$u")"/.ferry/checkpoint/"$T"-* /dev/shm/ferry-"$(id -u "$u")"-"$T"-*
	done
	rm -rf /root/"$T"-*
}

teardown() {
	conf_restore
	ferry_teardown
	if [ -n "${CKPT_EXTRA_DIR:-}" ] && [[ "$CKPT_EXTRA_DIR" == /var/tmp/ferry-ck-img.* ]]; then
		rm -rf "$CKPT_EXTRA_DIR"
	fi
	[ -z "${CKPT_HOME_CRIU:-}" ] || rm -rf "$CKPT_HOME_CRIU"
}

# ---------------------------------------------------------------- helpers of this file

# A complete checkpoint of user1 (16 MB workload, dumped and stopped) that tests copy and spoil.
# Made once per run; its workload writes to $U1_HOME/ftck-fixture.progress when restored.
FIXTURE=ftck-fixture
ensure_fixture() {
	local d
	d=$(ckpt_dir "$U1" "$FIXTURE")
	[ -e "$BATS_FILE_TMPDIR/fixture.ok" ] && [ -L "$d/current" ] && return 0
	rm -rf "$d"
	as_user1 "$FERRY" checkpoint create "$FIXTURE" >/dev/null
	start_stateful "$U1" "$FIXTURE" ftck-fixture "$U1_HOME/ftck-fixture.progress" --mb 16
	wait_step "$U1_HOME/ftck-fixture.progress" 3
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu ftck-fixture
	[ "$status" -eq 0 ] || fail "fixture dump failed: $stderr"
	wait_gone "$U1" ftck-fixture
	FIXTURE_STEP=$(step_of "$U1_HOME/ftck-fixture.progress")
	echo "$FIXTURE_STEP" >"$BATS_FILE_TMPDIR/fixture.ok"
}

# assert_unprivileged STATUS-LINES UID GID: /proc/PID/status of a process that must run as
# UID/GID with no capability at all (inheritable, permitted, effective, ambient).
assert_unprivileged() {
	local st=$1 uid=$2 gid=$3 k
	grep -qP "^Uid:\t$uid\t$uid\t$uid\t$uid$" <<<"$st" || fail "not uid $uid: $(grep ^Uid <<<"$st")"
	grep -qP "^Gid:\t$gid\t$gid\t$gid\t$gid$" <<<"$st" || fail "not gid $gid: $(grep ^Gid <<<"$st")"
	for k in CapInh CapPrm CapEff CapAmb; do
		grep -qP "^$k:\t0000000000000000$" <<<"$st" || fail "capabilities left: $(grep "^$k" <<<"$st")"
	done
}

# workload_status USER INSTANCE: /proc/PID/status of each process named 'stateful' in the
# instance, each after a line "== PID", read from inside the instance.
workload_status() {
	as_who "$1" "$FERRY" exec "instance://$2" sh -c \
		'for d in /proc/[0-9]*; do [ "$(cat $d/comm 2>/dev/null)" = stateful ] || continue; echo "== ${d#/proc/}"; cat $d/status; done'
}

# status_of ALL PID: one process's status out of workload_status's output
status_of() { awk -v p="== $2" '/^== /{on = ($0 == p); next} on' <<<"$1"; }
pids_of() { grep '^== ' <<<"$1" | cut -d' ' -f2 | sort -n | tr '\n' ' '; }

# assert_no_restore DIR: CRIU never ran a restore on checkpoint DIR (no restore.log there)
assert_no_restore() {
	[ ! -e "$1/restore.log" ] || fail "CRIU ran a restore in '$1': $(tail -n 3 "$1/restore.log")"
}

# assert_nothing_started USER INSTANCE
assert_nothing_started() {
	! instance_running "$1" "$2" || fail "instance '$2' runs although the restart was refused"
	[ ! -e "$(rundir_of "$(id -u "$1")")/$2" ] || fail "record of '$2' left behind"
}

has_log_steps() { [ -n "$(first_log_step "$@")" ]; }

# caps_within STATUS-FILE MASK: no CapEff/CapPrm line in the file holds a capability outside MASK
caps_within() {
	local f=$1 mask=$2 k v
	while read -r k v; do
		(((16#$v & ~mask) == 0)) || fail "$k $v holds more than $(printf '%016x' "$mask")"
	done < <(grep -E '^Cap(Eff|Prm):' "$f")
}

# step line K of a log, without the 'full' count: "step K ok CHECKSUM run ID"
log_line() { awk -v k="$2" '$1 == "step" && $2 == k {print $1, $2, $3, $4, $5, $6; exit}' "$1"; }

# ---------------------------------------------------------------- dump and restart

@test "the workload's own check works: one flipped bit of its memory makes it report FAIL and stop" {
	local ck=$T-check prog=$U1_TMP/progress
	as_user1 "$FERRY" checkpoint create "$ck"
	start_stateful "$U1" "$ck" ck-check "$prog" --mb 16
	wait_step "$prog" 2
	as_user1 "$FERRY" instance stop --signal USR1 ck-check # SIGUSR1: flip a bit
	wait_for grep -q '^FAIL memory' "$prog" || fail "the corruption went unnoticed: $(cat "$prog")"
	wait_gone "$U1" ck-check
	grep -q '^FAIL memory' "$(inst_log "$U1" ck-check err)"
}

@test "dump + restart into the same instance name: the 300 MB workload continues exactly where it was, unprivileged" {
	local ck=$T-same inst=ck-same prog=$U1_TMP/progress d out
	d=$(ckpt_dir "$U1" "$ck")
	run as_user1 "$FERRY" checkpoint create "$ck"
	assert_success
	assert_output "$d"
	start_stateful "$U1" "$ck" "$inst" "$prog" --mb 300
	wait_full "$prog" 1 # the whole memory verified once before the dump
	run_id=$(field_of "$prog" run)

	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu "$inst"
	assert_success
	assert_output "$d/gen-000001"
	[ -z "$stderr" ] || fail "dump printed on stderr: $stderr"
	# the dump ended the instance: gone, its name free, when the command returns (not later:
	# a script restarts it at once)
	if instance_running "$U1" "$inst"; then fail "'$inst' still listed after its dump returned"; fi
	! compgen -G "/run/ferry/$U1_UID/*/$inst" >/dev/null || fail "the record of '$inst' outlived its dump"
	assert_progress_ok "$prog"
	dumped=$(step_of "$prog")
	cp "$(inst_log "$U1" "$inst" out)" "$BATS_TEST_TMPDIR/before.out"
	assert_consecutive "$BATS_TEST_TMPDIR/before.out"
	last=$(awk '/^step /{s = $2} END {print s}' "$BATS_TEST_TMPDIR/before.out")
	echo "# dumped at step $dumped (last logged $last)"
	sleep 0.5
	assert_equal "$(step_of "$prog")" "$dumped" # it really stopped

	# the generation is sealed: root's, read-only, signed manifest
	g=$d/gen-000001
	assert_equal "$(readlink "$d/current")" gen-000001
	# root's and read-only; only the owner may read it (an ACL entry: the group bits show its mask)
	assert_equal "$(stat -c '%u %a' "$g")" "0 750"
	[ -z "$(find "$g" -type f ! -perm 0440)" ] || fail "generation files not 0440: $(find "$g" -type f ! -perm 0440)"
	getfacl -n "$g/manifest" | grep -qx "user:$U1_UID:r--" || fail "no read ACL for the owner: $(getfacl -n "$g/manifest")"
	as_user1 cat "$g/manifest" >/dev/null
	run as_user2 cat "$g/manifest"
	assert_failure
	[ -z "$(find "$g" ! -uid 0)" ] || fail "generation files not root's: $(find "$g" ! -uid 0)"
	grep -qE '^hmac=[0-9a-f]{64}$' "$g/manifest" || fail "manifest not signed"
	assert_equal "$(tail -n1 "$g/manifest" | cut -c1-5)" "hmac="
	grep -q "^uid=$U1_UID\$" "$g/manifest" || fail "manifest does not name uid $U1_UID"
	[ -s "$g/pages-1.img" ] && [ -s "$g/core-10000.img" ] && [ -s "$g/dump.log" ] && [ -s "$g/launch.req" ]
	# the workload's pages (pages-1.img is its reaper's, the root of the dumped tree)
	[ "$(stat -c %s "$(ls -S "$g"/pages-*.img | head -n1)")" -ge $((300 * 1024 * 1024)) ] || fail "no pages image holds 300 MB"

	# the page image is in the page cache (the dump just wrote it), as a shared disk's would be
	# once CRIU had read it
	local pimg cached
	pimg=$(ls -S "$g"/pages-*.img | head -n1)
	cat "$pimg" >/dev/null
	cached=$(fincore --bytes --noheadings --output RES "$pimg")
	echo "# $pimg cached before the restart: $cached bytes"
	[ "$cached" -ge $((300 * 1024 * 1024)) ] || fail "the page image is not in the page cache before the restart: $cached bytes"

	start_criu_watch "$U1_UID" "$BATS_TEST_TMPDIR/criu-restore" 60
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$ck"
	stop_criu_watch "$BATS_TEST_TMPDIR/criu-restore"
	[ "$status" -eq 0 ] || fail "restart failed ($status): $stderr"
	# the restore read it and dropped it from the cache behind CRIU: the node does not hold the
	# instance's memory twice (the restored copy and the image's cache). On a tmpfs home the
	# file is that memory itself, and nothing is dropped.
	cached=$(fincore --bytes --noheadings --output RES "$pimg")
	echo "# ... and after: $cached bytes"
	case $(stat -f -c %T "$pimg") in
	tmpfs | ramfs) echo "# (a home on $(stat -f -c %T "$pimg"): the cache is the file)" ;;
	*) [ "$cached" -le $((8 * 1024 * 1024)) ] || fail "the restore left $cached bytes of the page image in the page cache" ;;
	esac
	[ -s "$d/restore.log" ] || fail "no restore.log in $d"
	instance_running "$U1" "$inst" || fail "'$inst' not running after the restart"
	wait_step "$prog" $((dumped + 3))
	# the same process (its run id), counting on by one from its last step, memory intact
	assert_equal "$(field_of "$prog" run)" "$run_id"
	# the log keeps what the workload wrote before the checkpoint and goes on from there
	assert_log_goes_on "$U1" "$inst" "$BATS_TEST_TMPDIR/before.out"
	full=$(field_of "$prog" full)
	wait_full "$prog" $((full + 2)) # every chunk re-verified after the restore
	assert_progress_ok "$prog"
	assert_consecutive "$(inst_log "$U1" "$inst" out)"
	[ ! -s "$(inst_log "$U1" "$inst" err)" ] || fail "workload stderr: $(cat "$(inst_log "$U1" "$inst" err)")"

	# the restored workload runs as the user, without capabilities, at its old pid
	out=$(workload_status "$U1" "$inst")
	assert_equal "$(pids_of "$out")" "10000 "
	assert_unprivileged "$(status_of "$out" 10000)" "$U1_UID" "$(id -g "$U1")"
	# the restoring CRIU ran as the user too, with at most CAP_CHECKPOINT_RESTORE + CAP_SETPCAP
	# (+ CAP_NET_ADMIN and CAP_NET_RAW over the instance's loopback-only network, 'criu network =
	# loopback')
	echo "# restoring CRIU processes seen:"
	grep -E '^(== |Uid|Cap)' "$BATS_TEST_TMPDIR/criu-restore" | sed 's/^/#   /'
	if grep -q '^== ' "$BATS_TEST_TMPDIR/criu-restore"; then
		n=$(grep -c '^== ' "$BATS_TEST_TMPDIR/criu-restore")
		assert_equal "$(grep -cP "^Uid:\t$U1_UID\t$U1_UID\t$U1_UID\t$U1_UID$" "$BATS_TEST_TMPDIR/criu-restore")" "$n"
		caps_within "$BATS_TEST_TMPDIR/criu-restore" $(((1 << 40) | (1 << 8) | (1 << 12) | (1 << 13)))
	fi

	run as_user1 "$FERRY" instance stop "$inst"
	assert_success
}

@test "dump + restart under a new instance name after the first is gone (directory image)" {
	use_image dir
	local ck=$T-new prog=$U1_TMP/progress
	as_user1 "$FERRY" checkpoint create "$ck"
	start_stateful "$U1" "$ck" ck-old "$prog" --mb 64
	wait_step "$prog" 5
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu ck-old
	[ "$status" -eq 0 ] || fail "dump failed: $stderr"
	wait_gone "$U1" ck-old
	last=$(last_log_step "$U1" ck-old)
	dumped=$(step_of "$prog")

	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$ck" "$IMG" ck-renamed
	[ "$status" -eq 0 ] || fail "restart failed ($status): $stderr"
	run as_user1 "$FERRY" instance list
	assert_line --regexp "^ck-renamed +[0-9]+ "
	refute_line --regexp "^ck-old "
	wait_step "$prog" $((dumped + 3))
	assert_equal "$(first_log_step "$U1" ck-renamed)" $((last + 1))
	assert_consecutive "$(inst_log "$U1" ck-renamed out)"
	assert_progress_ok "$prog"
	# the checkpoint still names the instance it was made from
	assert_equal "$(ckpt_json_field "$U1" "$ck" instance)" ck-old
	as_user1 "$FERRY" instance stop ck-renamed
}

@test "--leave-running: the original continues and a restart under another name runs the same state" {
	local ck=$T-lr prog=$U1_TMP/progress
	as_user1 "$FERRY" checkpoint create "$ck"
	start_stateful "$U1" "$ck" ck-orig "$prog" --mb 64
	wait_step "$prog" 5
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --leave-running ck-orig
	[ "$status" -eq 0 ] || fail "dump failed: $stderr"
	at_dump=$(last_log_step "$U1" ck-orig)
	instance_running "$U1" ck-orig || fail "--leave-running stopped the instance"
	# the original keeps counting
	for ((i = 0; i < 100; i++)); do
		[ "$(last_log_step "$U1" ck-orig)" -ge $((at_dump + 3)) ] && break
		sleep 0.1
	done
	[ "$(last_log_step "$U1" ck-orig)" -ge $((at_dump + 3)) ] || fail "the original stopped counting after the dump"

	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$ck" "$IMG" ck-copy
	[ "$status" -eq 0 ] || fail "restart under another name failed ($status): $stderr"
	instance_running "$U1" ck-orig || fail "the original stopped"
	instance_running "$U1" ck-copy || fail "the copy is not running"
	for ((i = 0; i < 100; i++)); do
		c=$(last_log_step "$U1" ck-copy)
		[ -n "$c" ] && [ "$c" -ge $((at_dump + 5)) ] && break
		sleep 0.1
	done
	first=$(first_log_step "$U1" ck-copy)
	[ -n "$first" ] || fail "the copy logged no step"
	# the copy starts right after the dump's state and computes what the original computed
	[ "$first" -le $((at_dump + 1)) ] || fail "copy starts at step $first, dump was at $at_dump"
	[ "$first" -gt 1 ] || fail "the copy started from scratch"
	orig_log=$(inst_log "$U1" ck-orig out)
	copy_log=$(inst_log "$U1" ck-copy out)
	assert_consecutive "$copy_log"
	assert_consecutive "$orig_log"
	for k in $first $((first + 1)) $((first + 4)); do
		wait_for grep -q "^step $k " "$orig_log" || fail "original never logged step $k"
		wait_for grep -q "^step $k " "$copy_log" || fail "copy never logged step $k"
		a=$(log_line "$orig_log" "$k")
		b=$(log_line "$copy_log" "$k")
		assert_equal "$b" "$a"
	done
	! grep -q FAIL "$orig_log" "$copy_log" "$prog" || fail "workload reported FAIL"
	as_user1 "$FERRY" instance stop ck-orig ck-copy
}

@test "restart into the name of a running instance is refused and leaves it, and its log, alone" {
	local ck=$T-busy prog=$U1_TMP/progress
	as_user1 "$FERRY" checkpoint create "$ck"
	start_stateful "$U1" "$ck" ck-busy "$prog" --mb 8
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --leave-running ck-busy
	[ "$status" -eq 0 ] || fail "dump failed: $stderr"
	wait_for has_log_steps "$U1" ck-busy || fail "no step in the log"
	before=$(wc -l <"$(inst_log "$U1" ck-busy out)")
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$ck"
	assert_ferry_error "ck-busy"
	instance_running "$U1" ck-busy || fail "the refused restart stopped the running instance"
	assert_progress_ok "$prog"
	after=$(wc -l <"$(inst_log "$U1" ck-busy out)")
	[ "$after" -ge "$before" ] ||
		fail "the refused restart truncated the running instance's log ($before lines before, $after after)"
	as_user1 "$FERRY" instance stop ck-busy
}

@test "a process tree with a pipe and unix sockets survives dump + restart" {
	local ck=$T-tree inst=ck-tree prog=$U1_TMP/progress
	as_user1 "$FERRY" checkpoint create "$ck"
	start_stateful "$U1" "$ck" "$inst" "$prog" --mb 32 --tree
	wait_step "$prog" 5
	before=$(workload_status "$U1" "$inst")
	pids=$(pids_of "$before")
	[ "$(wc -w <<<"$pids")" -eq 4 ] || fail "expected 4 workload processes, got: $pids"
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu "$inst"
	[ "$status" -eq 0 ] || fail "dump failed: $stderr"
	wait_gone "$U1" "$inst"
	dumped=$(step_of "$prog")
	last=$(last_log_step "$U1" "$inst")
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$ck"
	[ "$status" -eq 0 ] || fail "restart failed ($status): $stderr"
	wait_step "$prog" $((dumped + 5))
	assert_progress_ok "$prog"
	# tokens went round the whole tree at every step since the restore
	assert_equal "$(field_of "$prog" tree)" "$(step_of "$prog")"
	assert_equal "$(first_log_step "$U1" "$inst")" 1 # the log kept what came before
	grep -q "^step $((last + 1)) " "$(inst_log "$U1" "$inst" out)" || fail "the log does not go on from step $last"
	assert_consecutive "$(inst_log "$U1" "$inst" out)"
	after=$(workload_status "$U1" "$inst")
	assert_equal "$(pids_of "$after")" "$pids"
	for p in $pids; do
		assert_unprivileged "$(status_of "$after" "$p")" "$U1_UID" "$(id -g "$U1")"
	done
	as_user1 "$FERRY" instance stop "$inst"
}

@test "a multi-threaded workload (4 threads) survives dump + restart" {
	local ck=$T-thr inst=ck-threads prog=$U1_TMP/progress
	as_user1 "$FERRY" checkpoint create "$ck"
	start_stateful "$U1" "$ck" "$inst" "$prog" --mb 64 --threads 4
	wait_step "$prog" 5
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu "$inst"
	[ "$status" -eq 0 ] || fail "dump failed: $stderr"
	wait_gone "$U1" "$inst"
	dumped=$(step_of "$prog")
	threads_at_dump=$(field_of "$prog" threads)
	[ "$(tr ',' '\n' <<<"$threads_at_dump" | wc -l)" -eq 4 ] || fail "progress: $(cat "$prog")"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$ck"
	[ "$status" -eq 0 ] || fail "restart failed ($status): $stderr"
	wait_step "$prog" $((dumped + 5))
	assert_progress_ok "$prog"
	# every thread counts on from where it was
	now=$(field_of "$prog" threads)
	IFS=, read -ra a <<<"$threads_at_dump"
	IFS=, read -ra b <<<"$now"
	for i in 0 1 2 3; do
		[ "${b[$i]}" -gt "${a[$i]}" ] || fail "thread $i: ${a[$i]} at the dump, ${b[$i]} now"
	done
	st=$(workload_status "$U1" "$inst")
	assert_equal "$(status_of "$st" 10000 | awk '/^Threads:/{print $2}')" 5
	assert_unprivileged "$(status_of "$st" 10000)" "$U1_UID" "$(id -g "$U1")"
	as_user1 "$FERRY" instance stop "$inst"
}

# timing_ordered LINE KEY...: LINE (a starter's "timing" line) has each KEY, with values in that order
timing_ordered() {
	local line=$1 k v prev=0
	shift
	for k in "$@"; do
		v=$(tr ' ' '\n' <<<"$line" | awk -F= -v k="$k" '$1 == k { print $2 }')
		[[ $v =~ ^[0-9]+$ ]] || fail "no $k in '$line'"
		((v >= prev)) || fail "$k comes before the key before it in '$line'"
		prev=$v
	done
}

@test "--mem-dir checkpoint: dump to and restart from the tmpfs (SIF image); delete removes both" {
	use_image sif
	local ck=$T-mem inst=ck-mem prog=$U1_TMP/progress
	run as_user1 "$FERRY" checkpoint create --mem-dir "$ck"
	assert_success
	# a name nobody can squat in the shared tmpfs: <mem dir>/ferry-UID-NAME-<random>
	assert_output --regexp "^/dev/shm/ferry-$U1_UID-$ck-[A-Za-z0-9]{6}\$"
	mem=$output
	assert_equal "$(readlink "$(ckpt_dir "$U1" "$ck")")" "$mem"
	assert_equal "$(stat -c '%U %a' "$mem")" "$U1 700"
	start_stateful "$U1" "$ck" "$inst" "$prog" --mb 64
	wait_step "$prog" 3
	# --timings (the benchmarks' breakdown): the generation, then the starter's steps in order
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --timings "$inst"
	[ "$status" -eq 0 ] || fail "dump failed: $stderr"
	assert_line "$mem/gen-000001"
	timing_ordered "$(grep '^timing ' <<<"$output")" start freeze dumped done ended
	wait_gone "$U1" "$inst"
	[ -s "$mem/gen-000001/pages-1.img" ] || fail "the pages are not in the mem dir"
	assert_equal "$(ckpt_json_field "$U1" "$ck" location)" "$mem"
	assert_equal "$(ckpt_json_field "$U1" "$ck" state)" complete
	dumped=$(step_of "$prog")
	# (ferryd takes the flag from no client)
	run as_user1 "$FERRY" instance start --criu-restart "$ck" --timings --node n1
	assert_failure
	assert_output "ferry: --timings is for a start on this node, not with --node"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$ck" --timings
	[ "$status" -eq 0 ] || fail "restart failed ($status): $stderr"
	timing_ordered "$(grep '^timing ' <<<"$output")" start restored
	wait_step "$prog" $((dumped + 3))
	assert_progress_ok "$prog"
	as_user1 "$FERRY" instance stop "$inst"
	wait_gone "$U1" "$inst"
	run as_user1 "$FERRY" checkpoint delete "$ck"
	assert_success
	[ ! -e "$mem" ] || fail "delete left $mem"
	[ ! -L "$(ckpt_dir "$U1" "$ck")" ] || fail "delete left the symlink"
}

# kill_tree PID: PID and its descendants, by pid
kill_tree() {
	local c
	for c in $(ps -o pid= --ppid "$1"); do kill_tree "$c"; done
	kill "$1" 2>/dev/null || true
}

# free_port: a TCP port nothing listens on now
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_receiver USER CKPT PORT INSTANCE: 'instance start --criu-restart CKPT --page-server PORT'
# in the background (RECV_PID; its stdout/stderr in RECV_OUT/RECV_ERR), once it listens.
start_receiver() {
	local u=$1 ck=$2 port=$3 inst=$4
	RECV_OUT=$BATS_TEST_TMPDIR/recv.out RECV_ERR=$BATS_TEST_TMPDIR/recv.err
	as_who "$u" "$FERRY" instance start --criu-restart "$ck" --page-server "$port" "$IMG" "$inst" \
		>"$RECV_OUT" 2>"$RECV_ERR" &
	RECV_PID=$!
	wait_for grep -q "waiting for the dump on '$port'" "$RECV_ERR" ||
		fail "the receiver does not listen: $(cat "$RECV_ERR")"
}

@test "dump through --page-server into a --mem-dir checkpoint on the receiving side; the instance moves there" {
	local src=$T-src dst=$T-dst prog=$U1_TMP/progress port mem
	as_user1 "$FERRY" checkpoint create "$src"
	mem=$(as_user1 "$FERRY" checkpoint create --mem-dir "$dst")
	start_stateful "$U1" "$src" ck-ps-a "$prog" --mb 64
	wait_step "$prog" 3
	run_id=$(field_of "$prog" run)
	port=$(free_port)
	start_receiver "$U1" "$dst" "$port" ck-ps-b
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --page-server "127.0.0.1:$port" ck-ps-a
	send_status=$status send_out=$output send_err=$stderr
	wait "$RECV_PID" && recv_status=0 || recv_status=$?
	[ "$send_status" -eq 0 ] || fail "the dump failed ($send_status): $send_err"
	[ "$recv_status" -eq 0 ] || fail "the receiver failed ($recv_status): $(cat "$RECV_ERR")"
	assert_equal "$send_out" "sent to 127.0.0.1:$port"
	! grep -v "waiting for the dump" "$RECV_ERR" | grep -q . || fail "receiver stderr: $(cat "$RECV_ERR")"

	wait_gone "$U1" ck-ps-a # the source ends once the receiver has restored
	instance_running "$U1" ck-ps-b || fail "the instance does not run on the receiving side"
	last=$(last_log_step "$U1" ck-ps-a)
	wait_for has_log_steps "$U1" ck-ps-b || fail "the moved workload logs nothing"
	assert_equal "$(first_log_step "$U1" ck-ps-b)" $((last + 1))
	s=$(step_of "$prog")
	wait_step "$prog" $((s + 3))
	assert_equal "$(field_of "$prog" run)" "$run_id"
	assert_progress_ok "$prog"
	# the pages live in the receiver's mem dir, sealed and signed; the source's checkpoint stays empty
	pages=$(find "$mem/gen-000001" -name 'pages-*.img' -size +$((64 << 10))k)
	[ -n "$pages" ] || fail "no 64 MB of pages in $mem: $(ls -l "$mem/gen-000001")"
	assert_equal "$(stat -c %u "$mem/gen-000001")" 0
	grep -qE '^hmac=[0-9a-f]{64}$' "$mem/gen-000001/manifest"
	assert_equal "$(ckpt_json_field "$U1" "$dst" state)" complete
	assert_equal "$(ckpt_json_field "$U1" "$dst" location)" "$mem"
	assert_equal "$(ckpt_json_field "$U1" "$src" state)" empty
	st=$(workload_status "$U1" ck-ps-b)
	assert_unprivileged "$(status_of "$st" 10000)" "$U1_UID" "$(id -g "$U1")"
	as_user1 "$FERRY" instance stop ck-ps-b
}

@test "--page-server: a receiver of another user gets nothing, and the dumped instance keeps running" {
	local src=$T-src dst=$T-dst prog=$U1_TMP/progress port mem
	as_user1 "$FERRY" checkpoint create "$src"
	mem=$(as_user2 "$FERRY" checkpoint create --mem-dir "$dst")
	start_stateful "$U1" "$src" ck-ps-a "$prog" --mb 16
	wait_step "$prog" 2
	port=$(free_port)
	start_receiver "$U2" "$dst" "$port" ck-ps-thief
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --page-server "127.0.0.1:$port" ck-ps-a
	assert_ferry_error
	echo "# sender: $stderr"
	[[ "$stderr" == *"uid $U1_UID, not from you"* ]] || fail "sender: $stderr"
	# user2's receiver refused it and waits on for a dump of user2's own (a connection that is
	# not one must not fail a restart): end it
	kill_tree "$RECV_PID"
	wait "$RECV_PID" || true
	assert_nothing_started "$U2" ck-ps-thief
	assert_equal "$(ckpt_json_field "$U2" "$dst" state)" empty
	[ -z "$(ls -A "$mem")" ] || fail "the receiver kept: $(ls -A "$mem")"
	instance_running "$U1" ck-ps-a || fail "the refused transfer stopped the source instance"
	s=$(step_of "$prog")
	wait_step "$prog" $((s + 3))
	assert_progress_ok "$prog"
	as_user1 "$FERRY" instance stop ck-ps-a
}

@test "checkpoint instance --criu --restore: restore into a running idle instance; not into a busy one" {
	local ck=$T-into prog=$U1_TMP/progress
	as_user1 "$FERRY" checkpoint create "$ck"
	start_stateful "$U1" "$ck" ck-into-a "$prog" --mb 32
	wait_step "$prog" 3
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu ck-into-a
	[ "$status" -eq 0 ] || fail "dump failed: $stderr"
	wait_gone "$U1" ck-into-a
	last=$(last_log_step "$U1" ck-into-a)
	dumped=$(step_of "$prog")

	# an instance that runs a workload is refused, and keeps running
	start_stateful "$U1" "$ck" ck-busy2 "$U1_TMP/busy" --mb 8
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --restore ck-busy2
	assert_ferry_error "already runs a workload"
	instance_running "$U1" ck-busy2 || fail "the refused restore stopped the busy instance"
	as_user1 "$FERRY" instance stop ck-busy2
	wait_gone "$U1" ck-busy2

	run as_user1 "$FERRY" instance start --criu-launch "$ck" "$IMG" ck-into-b
	assert_success
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --restore ck-into-b
	[ "$status" -eq 0 ] || fail "--restore failed ($status): $stderr"
	wait_step "$prog" $((dumped + 3))
	assert_progress_ok "$prog"
	st=$(workload_status "$U1" ck-into-b)
	assert_equal "$(pids_of "$st")" "10000 "
	assert_unprivileged "$(status_of "$st" 10000)" "$U1_UID" "$(id -g "$U1")"
	as_user1 "$FERRY" instance stop ck-into-b
}

@test "checkpoint list: empty -> complete (table and --json), new generations replace old ones, delete" {
	local ck=$T-list inst=ck-list prog=$U1_TMP/progress d
	d=$(ckpt_dir "$U1" "$ck")
	as_user1 "$FERRY" checkpoint create "$ck"
	run as_user1 "$FERRY" checkpoint list
	assert_success
	assert_line --index 0 --regexp '^NAME +STATE +SIZE +INSTANCE +TIME +LOCATION$'
	assert_line --regexp "^$ck +empty +0 +- +- +$d\$"
	run as_user1 "$FERRY" checkpoint list --json
	assert_success
	python3 -c 'import json,sys; json.loads(sys.argv[1])' "$output" || fail "not JSON: $output"
	assert_equal "$(ckpt_json_field "$U1" "$ck" state)" empty

	start_stateful "$U1" "$ck" "$inst" "$prog" --mb 16
	wait_step "$prog" 2
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --leave-running "$inst"
	assert_success
	assert_output "$d/gen-000001"
	run as_user1 "$FERRY" checkpoint list
	assert_line --regexp "^$ck +complete +[0-9]+ +$inst +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} +$d\$"
	run as_user1 "$FERRY" checkpoint list --json
	assert_success
	json=$output
	python3 - "$json" "$ck" "$inst" "$d" <<-'EOF' || fail "bad JSON listing: $json"
		import json, os, sys, time
		d = json.loads(sys.argv[1])
		c = [c for c in d["checkpoints"] if c["name"] == sys.argv[2]][0]
		assert c["state"] == "complete", c
		assert c["instance"] == sys.argv[3], c
		assert c["generation"] == "gen-000001", c
		assert c["location"] == sys.argv[4], c
		assert abs(c["created"] - time.time()) < 120, c
		g = os.path.join(sys.argv[4], "gen-000001")
		total = sum(os.path.getsize(os.path.join(g, f)) for f in os.listdir(g))
		assert c["size"] == total, (c["size"], total)
		assert c["size"] > 16 << 20, c
	EOF

	# a second dump makes gen-000002 current and removes gen-000001
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu "$inst"
	assert_success
	assert_output "$d/gen-000002"
	assert_equal "$(ckpt_json_field "$U1" "$ck" generation)" gen-000002
	[ ! -e "$d/gen-000001" ] || fail "the old generation was kept"
	[ -z "$(find "$d" -mindepth 1 -maxdepth 1 -name '.staging-*')" ] || fail "staging left: $(ls -A "$d")"
	wait_gone "$U1" "$inst"

	run as_user1 "$FERRY" checkpoint delete "$ck"
	assert_success
	[ ! -e "$d" ] || fail "delete left $d: $(ls -la "$d")"
	run as_user1 "$FERRY" checkpoint list --json
	assert_success
	refute_output --partial "\"$ck\""
}

# ---------------------------------------------------------------- failure paths

@test "restart of an empty checkpoint: a clear error, nothing started" {
	local ck=$T-empty
	as_user1 "$FERRY" checkpoint create "$ck"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$ck" "$IMG" ck-empty
	assert_ferry_error "is empty"
	assert_nothing_started "$U1" ck-empty
	[ ! -e "$(inst_log "$U1" ck-empty out)" ] || fail "the refused restart made a log file"
	assert_no_restore "$(ckpt_dir "$U1" "$ck")"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T-nosuch"
	assert_ferry_error "no checkpoint '$T-nosuch'"
}

@test "restart of an incomplete checkpoint (no current, no manifest, missing generation) is refused" {
	ensure_fixture
	local d g
	# a dump that never switched 'current' (the user can remove it: it is their directory)
	copy_ckpt "$U1" "$FIXTURE" "$T-nocur"
	d=$(ckpt_dir "$U1" "$T-nocur")
	as_user1 rm -f "$d/current"
	assert_equal "$(ckpt_json_field "$U1" "$T-nocur" state)" incomplete
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T-nocur"
	assert_ferry_error "incomplete"
	assert_nothing_started "$U1" ftck-fixture
	assert_no_restore "$d"

	# a generation without its manifest (written last: the dump stopped before it)
	copy_ckpt "$U1" "$FIXTURE" "$T-noman"
	d=$(ckpt_dir "$U1" "$T-noman")
	g=$(current_gen "$d")
	cp -a "$g" "$d/gen-000002"
	rm -f "$d/gen-000002/manifest"
	ln -sfn gen-000002 "$d/current"
	assert_equal "$(ckpt_json_field "$U1" "$T-noman" state)" incomplete
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T-noman"
	assert_ferry_error "incomplete.*manifest"
	assert_nothing_started "$U1" ftck-fixture
	assert_no_restore "$d"

	# 'current' names a generation that is not there
	copy_ckpt "$U1" "$FIXTURE" "$T-nogen"
	d=$(ckpt_dir "$U1" "$T-nogen")
	as_user1 ln -sfn gen-000009 "$d/current"
	assert_equal "$(ckpt_json_field "$U1" "$T-nogen" state)" incomplete
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T-nogen"
	assert_ferry_error "incomplete"
	assert_nothing_started "$U1" ftck-fixture
	assert_no_restore "$d"

	# control: the untouched copy restores (so the refusals above are about what was spoilt)
	copy_ckpt "$U1" "$FIXTURE" "$T-good"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T-good"
	[ "$status" -eq 0 ] || fail "restart of an intact copy failed ($status): $stderr"
	wait_step "$U1_HOME/ftck-fixture.progress" $(($(cat "$BATS_FILE_TMPDIR/fixture.ok") + 2))
	as_user1 "$FERRY" instance stop ftck-fixture
}

@test "restart of a tampered checkpoint is refused: one byte of an image, the manifest edited, the signature removed" {
	ensure_fixture
	local d g size prog=$U1_HOME/ftck-fixture.progress before
	# a metadata image, one byte changed: refused before CRIU reads anything
	copy_ckpt "$U1" "$FIXTURE" "$T-core"
	d=$(ckpt_dir "$U1" "$T-core")
	g=$(current_gen "$d")
	cp "$g/core-10000.img" "$BATS_TEST_TMPDIR/core"
	printf '\x01' | dd of="$BATS_TEST_TMPDIR/core" bs=1 seek=1 conv=notrunc status=none
	cmp -s "$g/core-10000.img" "$BATS_TEST_TMPDIR/core" && printf '\x02' |
		dd of="$BATS_TEST_TMPDIR/core" bs=1 seek=1 conv=notrunc status=none
	replace_sealed "$g" core-10000.img "$BATS_TEST_TMPDIR/core"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T-core"
	assert_ferry_error "core-10000.img.*altered"
	assert_nothing_started "$U1" ftck-fixture
	assert_no_restore "$d"

	# the memory pages cut short: refused before CRIU reads anything
	copy_ckpt "$U1" "$FIXTURE" "$T-short"
	d=$(ckpt_dir "$U1" "$T-short")
	g=$(current_gen "$d")
	head -c 4096 "$g/pages-1.img" >"$BATS_TEST_TMPDIR/short"
	replace_sealed "$g" pages-1.img "$BATS_TEST_TMPDIR/short"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T-short"
	assert_ferry_error "pages-1.img.*altered"
	assert_nothing_started "$U1" ftck-fixture
	assert_no_restore "$d"

	# one byte changed in the memory pages (same size, still root's and 0444). Their content is
	# hashed while CRIU restores: CRIU runs, and is stopped before any restored process does.
	copy_ckpt "$U1" "$FIXTURE" "$T-byte"
	d=$(ckpt_dir "$U1" "$T-byte")
	g=$(current_gen "$d")
	size=$(stat -c %s "$g/pages-1.img")
	cp "$g/pages-1.img" "$BATS_TEST_TMPDIR/pages"
	printf '\x5a' | dd of="$BATS_TEST_TMPDIR/pages" bs=1 seek=$((size / 2)) conv=notrunc status=none
	cmp -s "$g/pages-1.img" "$BATS_TEST_TMPDIR/pages" && printf '\xa5' |
		dd of="$BATS_TEST_TMPDIR/pages" bs=1 seek=$((size / 2)) conv=notrunc status=none
	replace_sealed "$g" pages-1.img "$BATS_TEST_TMPDIR/pages"
	assert_equal "$(stat -c %s "$g/pages-1.img")" "$size"
	before=$(cksum <"$prog")
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T-byte"
	assert_ferry_error "pages-1.img.*altered.*before any process ran"
	assert_nothing_started "$U1" ftck-fixture
	grep -q "Aborting restore due to post-restore" "$d/restore.log" ||
		fail "CRIU was not stopped by ferry's check: $(tail -n 3 "$d/restore.log")"
	sleep 0.5 # the workload steps every 100 ms: had it run, it would have written
	assert_equal "$(cksum <"$prog")" "$before"

	# the manifest edited (the instance name), signature kept
	copy_ckpt "$U1" "$FIXTURE" "$T-man"
	d=$(ckpt_dir "$U1" "$T-man")
	g=$(current_gen "$d")
	chmod u+w "$g/manifest"
	sed -i 's/^instance=.*/instance=ck-evil/' "$g/manifest"
	chmod 0444 "$g/manifest"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T-man"
	assert_ferry_error "signature"
	assert_nothing_started "$U1" ck-evil
	assert_nothing_started "$U1" ftck-fixture
	assert_no_restore "$d"

	# the signature line removed
	copy_ckpt "$U1" "$FIXTURE" "$T-nosig"
	d=$(ckpt_dir "$U1" "$T-nosig")
	g=$(current_gen "$d")
	chmod u+w "$g/manifest"
	sed -i '/^hmac=/d' "$g/manifest"
	chmod 0444 "$g/manifest"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T-nosig"
	assert_ferry_error "not signed"
	assert_nothing_started "$U1" ftck-fixture
	assert_no_restore "$d"

	# a file the manifest does not list
	copy_ckpt "$U1" "$FIXTURE" "$T-extra"
	d=$(ckpt_dir "$U1" "$T-extra")
	g=$(current_gen "$d")
	cp "$g/core-10000.img" "$g/core-10001.img"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T-extra"
	assert_ferry_error "core-10001.img"
	assert_nothing_started "$U1" ftck-fixture
	assert_no_restore "$d"
}

@test "restart with another image than the checkpoint's is refused" {
	ensure_fixture
	use_image sif
	copy_ckpt "$U1" "$FIXTURE" "$T-img"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T-img" "$IMG" ck-otherimg
	assert_ferry_error "not the image the checkpoint was made with"
	assert_nothing_started "$U1" ck-otherimg
	assert_no_restore "$(ckpt_dir "$U1" "$T-img")"
}

@test "restart re-checks the saved launch options against today's policy (a bind no longer allowed)" {
	local ck=$T-policy prog=$U1_TMP/progress
	conf_set "allow bind path = $FERRY_TEST_SHARED"
	as_user1 "$FERRY" checkpoint create "$ck"
	rm -f "$prog"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-launch "$ck" --bind "$FERRY_TEST_SHARED:/data:ro" \
		"$IMG" ck-policy "$STATEFUL" --interval 100 --mb 8 "$prog"
	[ "$status" -eq 0 ] || fail "start with an allowed bind failed: $stderr"
	wait_step "$prog" 2
	run --separate-stderr as_user1 "$FERRY" exec instance://ck-policy cat /data/shared.txt
	assert_output "shared data"
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu ck-policy
	[ "$status" -eq 0 ] || fail "dump failed: $stderr"
	wait_gone "$U1" ck-policy
	conf_restore # the admin withdraws the bind path
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$ck"
	assert_ferry_error "$FERRY_TEST_SHARED"
	assert_nothing_started "$U1" ck-policy
	assert_no_restore "$(ckpt_dir "$U1" "$ck")"
	# with the policy back, the same checkpoint restores
	conf_set "allow bind path = $FERRY_TEST_SHARED"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$ck"
	[ "$status" -eq 0 ] || fail "restart failed ($status): $stderr"
	s=$(step_of "$prog")
	wait_step "$prog" $((s + 2))
	as_user1 "$FERRY" instance stop ck-policy
}

@test "restart of another user's checkpoint is refused as 'another user'" {
	ensure_fixture
	local d
	as_user2 mkdir -p "$U2_HOME/.ferry/checkpoint"
	d=$U2_HOME/.ferry/checkpoint/$T-foreign
	rm -rf "$d"
	cp -a "$(ckpt_dir "$U1" "$FIXTURE")" "$d"
	rm -f "$d/restore.log" "$d/stats-restore"
	chown "$U2:$U2" "$d" # the directory is user2's, the sealed generation stays root's
	assert_equal "$(stat -c %u "$(current_gen "$d")")" 0
	run --separate-stderr as_user2 "$FERRY" instance start --criu-restart "$T-foreign"
	assert_ferry_error "another user"
	assert_nothing_started "$U2" ftck-fixture
	assert_no_restore "$d"
	# root cannot be made to restore a user's checkpoint either: the directory is not root's
	run --separate-stderr "$FERRY" instance start --criu-restart "$(ckpt_dir "$U1" "$FIXTURE")" "$IMG" "${ROOT_INSTANCE_PREFIX}foreign"
	assert_ferry_error "must be yours"
	assert_nothing_started root "${ROOT_INSTANCE_PREFIX}foreign"
	rm -rf "$d"
}

@test "dump of a stopped or nonexistent instance, of one not launched with --criu-launch, without --criu" {
	local ck=$T-stop d
	d=$(ckpt_dir "$U1" "$ck")
	as_user1 "$FERRY" checkpoint create "$ck"
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu ck-nosuch
	assert_ferry_error "no instance 'ck-nosuch'"

	start_stateful "$U1" "$ck" ck-stopped "$U1_TMP/progress" --mb 8
	as_user1 "$FERRY" instance stop ck-stopped
	wait_gone "$U1" ck-stopped
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu ck-stopped
	assert_ferry_error "no instance 'ck-stopped'"
	assert_equal "$(ckpt_json_field "$U1" "$ck" state)" empty
	[ -z "$(ls -A "$d")" ] || fail "the failed dumps left: $(ls -A "$d")"

	run as_user1 "$FERRY" instance start "$IMG" ck-plain
	assert_success
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu ck-plain
	assert_ferry_error "not started with --criu-launch"
	instance_running "$U1" ck-plain || fail "the refused dump stopped the instance"

	run --separate-stderr as_user1 "$FERRY" checkpoint instance ck-plain
	assert_ferry_error "--criu"
	instance_running "$U1" ck-plain || fail "the refused dump stopped the instance"
	as_user1 "$FERRY" instance stop ck-plain
}

@test "a CRIU error (an established TCP connection): clear error naming CRIU, instance keeps running, previous checkpoint kept" {
	local ck=$T-criu inst=ck-tcp prog=$U1_TMP/progress d
	# in the host's network (a loopback-only one keeps the connection: loopback.bats)
	conf_set "criu network = host"
	d=$(ckpt_dir "$U1" "$ck")
	as_user1 "$FERRY" checkpoint create "$ck"
	start_stateful "$U1" "$ck" "$inst" "$prog" --mb 16
	wait_step "$prog" 3
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --leave-running "$inst"
	[ "$status" -eq 0 ] || fail "first dump failed: $stderr"
	first_dump=$(last_log_step "$U1" "$inst")
	sum_before=$(sha256sum "$d/gen-000001/manifest")

	# the workload now opens a TCP connection to itself, which ferry does not dump in the
	# host's network
	as_user1 "$FERRY" instance stop --signal USR2 "$inst"
	for ((i = 0; i < 50; i++)); do
		grep -q ' tcp$' "$prog" && break
		sleep 0.1
	done
	grep -q ' tcp$' "$prog" || fail "the workload did not open its TCP connection: $(cat "$prog")"
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu "$inst"
	assert_ferry_error "CRIU.*(TCP|tcp)"
	grep -q "keeps running" <<<"$stderr" || fail "the error does not say the instance keeps running: $stderr"
	echo "# $stderr"
	instance_running "$U1" "$inst" || fail "the failed dump stopped the instance"
	s=$(step_of "$prog")
	wait_step "$prog" $((s + 3)) # ...and it still runs
	assert_progress_ok "$prog"
	# the previous complete checkpoint is still the current one, untouched, and nothing staged
	assert_equal "$(ckpt_json_field "$U1" "$ck" state)" complete
	assert_equal "$(ckpt_json_field "$U1" "$ck" generation)" gen-000001
	assert_equal "$(readlink "$d/current")" gen-000001
	assert_equal "$(sha256sum "$d/gen-000001/manifest")" "$sum_before"
	# CRIU's log stays (ferry-checkpoint(1)), nothing else
	[ -z "$(find "$d" -mindepth 1 -maxdepth 1 ! -name current ! -name gen-000001 ! -name dump.log)" ] || fail "failed dump left: $(ls -A "$d")"

	# and it still restores: the state of the first dump (before the connection)
	as_user1 "$FERRY" instance stop "$inst"
	wait_gone "$U1" "$inst"
	# the restart writes on after what the log holds: only what comes after is the restored run's
	local log kept
	log=$(inst_log "$U1" "$inst" out)
	kept=$(stat -c %s "$log")
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$ck"
	[ "$status" -eq 0 ] || fail "restart from the kept checkpoint failed ($status): $stderr"
	restored_steps() { tail -c +$((kept + 1)) "$log" | grep -E '^step [0-9]+ ok '; }
	wait_for restored_steps >/dev/null || fail "the restored workload logs nothing"
	first=$(restored_steps | head -n1 | awk '{print $2}')
	[ "$first" -le $((first_dump + 1)) ] || fail "restored at step $first, first dump was at $first_dump"
	s=$(restored_steps | tail -n1 | awk '{print $2}')
	wait_for grep -q "^step $((s + 2)) " "$log" || fail "the restored workload does not count"
	! tail -c +$((kept + 1)) "$log" | grep -q ' tcp$' || fail "restored a state from after the first dump"
	as_user1 "$FERRY" instance stop "$inst"
}

@test "a dump that makes no progress for 'criu timeout' is given up; the instance keeps running, nothing is left" {
	local ck=$T-slow inst=ck-slow prog=$U1_TMP/progress d i c=
	d=$(ckpt_dir "$U1" "$ck")
	as_user1 "$FERRY" checkpoint create "$ck"
	start_stateful "$U1" "$ck" "$inst" "$prog" --mb 2048 --verify 8
	conf_set "criu timeout = 2"
	# 'criu timeout' bounds idleness, not the dump's whole time (a dump that writes goes on):
	# the user stops their CRIU (it is theirs), and nothing moves any more
	as_user1 "$FERRY" checkpoint instance --criu "$inst" >"$BATS_TEST_TMPDIR/dump.out" 2>"$BATS_TEST_TMPDIR/dump.err" &
	local dump=$!
	for ((i = 0; i < 1500; i++)); do
		c=$(pgrep -u "$U1" -x criu | head -n1)
		[ -z "$c" ] || break
		sleep 0.02
	done
	[ -n "$c" ] || fail "no CRIU of $U1 ran: $(cat "$BATS_TEST_TMPDIR"/dump.*)"
	as_user1 kill -STOP "$c"
	status=0
	wait "$dump" || status=$?
	stderr=$(cat "$BATS_TEST_TMPDIR/dump.err")
	assert_ferry_error "made no progress for 2 s"
	grep -q "keeps running" <<<"$stderr" || fail "the error does not say the instance keeps running: $stderr"
	instance_running "$U1" "$inst" || fail "the timed-out dump stopped the instance"
	s=$(step_of "$prog")
	wait_step "$prog" $((s + 3))
	assert_progress_ok "$prog"
	assert_equal "$(ckpt_json_field "$U1" "$ck" state)" empty
	[ -z "$(ls -A "$d" | grep -vx dump.log)" ] || fail "the timed-out dump left: $(ls -A "$d")"
	[ -z "$(pgrep -u "$U1" -x criu)" ] || fail "CRIU still runs: $(pgrep -u "$U1" -a -x criu)"
	# CRIU left the tree in a state it can dump again
	conf_restore
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --leave-running "$inst"
	[ "$status" -eq 0 ] || fail "dump after the timeout failed ($status): $stderr"
	s=$(step_of "$prog")
	wait_step "$prog" $((s + 2))
	assert_progress_ok "$prog"
	as_user1 "$FERRY" instance stop "$inst"
}

@test "a restore that makes no progress for 'criu timeout' is given up; a long one that moves is not (idle, not total)" {
	local ck=$T-rslow prog=$U1_TMP/progress i c=
	as_user1 "$FERRY" checkpoint create "$ck"
	start_stateful "$U1" "$ck" ck-rslow "$prog" --mb 256
	wait_step "$prog" 3
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu ck-rslow
	[ "$status" -eq 0 ] || fail "dump failed: $stderr"
	wait_gone "$U1" ck-rslow
	conf_set "criu timeout = 2"
	# the user stops their restoring CRIU (it is theirs): nothing moves any more
	as_user1 "$FERRY" instance start --criu-restart "$ck" "$IMG" ck-rslow >"$BATS_TEST_TMPDIR/r.out" 2>"$BATS_TEST_TMPDIR/r.err" &
	local rs=$!
	for ((i = 0; i < 1500; i++)); do
		c=$(pgrep -u "$U1" -x criu | head -n1)
		[ -z "$c" ] || break
		sleep 0.02
	done
	[ -n "$c" ] || fail "no restoring CRIU of $U1 ran"
	as_user1 kill -STOP "$c"
	status=0
	wait "$rs" || status=$?
	stderr=$(cat "$BATS_TEST_TMPDIR/r.err")
	assert_ferry_error "CRIU restore made no progress for 2 s"
	instance_running "$U1" ck-rslow && fail "the stalled restore left the instance listed"
	# the same restore, left alone, goes through with the same limit
	wait_clean 10 >/dev/null || true
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$ck" "$IMG" ck-rslow
	[ "$status" -eq 0 ] || fail "restart failed ($status): $stderr"
	s=$(step_of "$prog")
	wait_step "$prog" $((s + 2))
	assert_progress_ok "$prog"
	as_user1 "$FERRY" instance stop ck-rslow
}

# ---------------------------------------------------------------- security

@test "the dumping CRIU runs as the user with only CAP_CHECKPOINT_RESTORE; the staging images are out of the user's reach" {
	local ck=$T-caps inst=ck-caps prog=$U1_TMP/progress watch=$BATS_TEST_TMPDIR/criu d
	d=$(ckpt_dir "$U1" "$ck")
	as_user1 "$FERRY" checkpoint create "$ck"
	start_stateful "$U1" "$ck" "$inst" "$prog" --mb 1024 --verify 16
	start_criu_watch "$U1_UID" "$watch" 120
	# meanwhile the user tries to reach the images CRIU writes: by path, or through CRIU's /proc
	as_user1 python3 - "$d" "$U1_UID" "$U1_TMP/probe" <<-'EOF' &
		import glob, os, sys, time
		d, uid, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
		hits, staged, criu = [], 0, 0
		end = time.time() + 60
		while time.time() < end and not os.path.islink(os.path.join(d, "current")):
		    for s in glob.glob(os.path.join(d, ".staging-*")):
		        staged += 1
		        for what, f in (("list", lambda: os.listdir(s)),
		                        ("list images", lambda: os.listdir(os.path.join(s, "images"))),
		                        ("write images", lambda: open(os.path.join(s, "images", "x"), "w"))):
		            try:
		                f(); hits.append("%s %s" % (what, s))
		            except OSError:
		                pass
		    for p in os.listdir("/proc"):
		        if not p.isdigit():
		            continue
		        try:
		            if open("/proc/%s/comm" % p).read().strip() != "criu":
		                continue
		        except OSError:
		            continue
		        criu += 1
		        for what, f in (("cwd", lambda: os.listdir("/proc/%s/cwd" % p)),
		                        ("fds", lambda: [os.readlink("/proc/%s/fd/%s" % (p, n)) for n in os.listdir("/proc/%s/fd" % p)]),
		                        ("mem", lambda: open("/proc/%s/mem" % p, "rb"))):
		            try:
		                f(); hits.append("%s of criu %s" % (what, p))
		            except OSError:
		                pass
		    time.sleep(0.005)
		with open(out, "w") as f:
		    f.write("staged %d criu %d\n" % (staged, criu))
		    f.write("".join(h + "\n" for h in sorted(set(hits))))
	EOF
	probe=$!
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu "$inst"
	dump_status=$status dump_err=$stderr
	stop_criu_watch "$watch"
	wait "$probe" || true
	[ "$dump_status" -eq 0 ] || fail "dump failed ($dump_status): $dump_err"
	wait_gone "$U1" "$inst"

	grep -q '^== ' "$watch" || fail "no CRIU process of $U1 was seen while the dump ran"
	echo "# dumping CRIU processes (uid, caps):"
	grep -E '^(== |Uid|Gid|Cap|NoNewPrivs)' "$watch" | sed 's/^/#   /'
	n=$(grep -c '^== ' "$watch")
	assert_equal "$(grep -cP "^Uid:\t$U1_UID\t$U1_UID\t$U1_UID\t$U1_UID$" "$watch")" "$n"
	g=$(id -g "$U1")
	assert_equal "$(grep -cP "^Gid:\t$g\t$g\t$g\t$g$" "$watch")" "$n"
	# exactly CAP_CHECKPOINT_RESTORE (40) and, for the instance's own loopback-only network
	# ('criu network = loopback'), CAP_NET_ADMIN (12) effective and permitted, nothing else even
	# bounded
	assert_equal "$(grep -cP '^CapEff:\t0000010000001000$' "$watch")" "$n"
	assert_equal "$(grep -cP '^CapPrm:\t0000010000001000$' "$watch")" "$n"
	assert_equal "$(grep -cP '^CapBnd:\t0000010000001000$' "$watch")" "$n"
	assert_equal "$(grep -cP '^Cap(Inh|Amb):\t(0000010000001000|0000000000000000)$' "$watch")" $((2 * n))

	[ -s "$U1_TMP/probe" ] || fail "the user's probe reported nothing"
	echo "# probe: $(head -n1 "$U1_TMP/probe")"
	# the probe did look while the dump ran: it saw the staging directory and CRIU
	read -r _ staged _ criu <"$U1_TMP/probe"
	[ "$staged" -gt 0 ] && [ "$criu" -gt 0 ] || fail "the probe missed the dump: $(head -n1 "$U1_TMP/probe")"
	[ "$(tail -n +2 "$U1_TMP/probe" | wc -l)" -eq 0 ] ||
		fail "the user reached the dump while it ran: $(tail -n +2 "$U1_TMP/probe")"
	[ -z "$(find "$d" -name x)" ] || fail "the user wrote into the dump"
}

@test "CRIU reads no configuration from the image or the user's home (action scripts would run with its capabilities)" {
	local ck=$T-conf inst=ck-conf prog=$U1_TMP/progress img marker
	img=$(mktemp -d /var/tmp/ferry-ck-img.XXXXXX)
	CKPT_EXTRA_DIR=$img
	chmod 0755 "$img"
	cp -a "$(image_path dir)" "$img/sandbox"
	marker=/tmp/ferry-ck-evil.$BATS_ROOT_PID
	rm -f "$marker".*
	mkdir -p "$img/sandbox/etc/criu"
	printf '#!/bin/sh\necho "$CRTOOLS_SCRIPT_ACTION $(id -u)" >>%s.image\n' "$marker" >"$img/sandbox/bin/ferry-evil"
	chmod 0755 "$img/sandbox/bin/ferry-evil"
	printf 'action-script /bin/ferry-evil\n' >"$img/sandbox/etc/criu/default.conf"
	# the user's own: ~/.criu/default.conf (read when CRIU has a $HOME)
	CKPT_HOME_CRIU=$U1_HOME/.criu
	as_user1 mkdir -p "$U1_HOME/.criu"
	as_user1 sh -c 'printf "#!/bin/sh\necho \"\$CRTOOLS_SCRIPT_ACTION\" >>%s.home\n" "$1" >"$2/.criu/evil" && chmod 0755 "$2/.criu/evil" && printf "action-script %s\n" "$2/.criu/evil" >"$2/.criu/default.conf"' sh "$marker" "$U1_HOME"

	as_user1 "$FERRY" checkpoint create "$ck"
	rm -f "$prog"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-launch "$ck" "$img/sandbox" "$inst" \
		"$STATEFUL" --interval 100 --mb 8 "$prog"
	[ "$status" -eq 0 ] || fail "start failed: $stderr"
	wait_step "$prog" 2
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu "$inst"
	dump_status=$status dump_err=$stderr
	wait_gone "$U1" "$inst"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$ck"
	restart_status=$status restart_err=$stderr
	as_user1 "$FERRY" instance stop "$inst" 2>/dev/null || true
	wait_gone "$U1" "$inst"
	rm -rf "$U1_HOME/.criu"
	found=$(cat "$marker".* 2>/dev/null || true)
	rm -f "$marker".*
	[ -z "$found" ] || fail "CRIU ran a configured action script: $found"
	[ "$dump_status" -eq 0 ] || fail "dump failed: $dump_err"
	[ "$restart_status" -eq 0 ] || fail "restart failed: $restart_err"
	wait_step "$prog" 1
}

@test "user2 cannot dump, stop, restart, delete or list user1's instances and checkpoints" {
	ensure_fixture
	local ck=$T-own inst=ck-victim prog=$U1_TMP/progress d fx g
	d=$(ckpt_dir "$U1" "$ck")
	as_user1 "$FERRY" checkpoint create "$ck"
	start_stateful "$U1" "$ck" "$inst" "$prog" --mb 8
	fx=$(ckpt_dir "$U1" "$FIXTURE")
	g=$(current_gen "$fx")
	sums=$(cd "$g" && sha256sum ./*)

	run --separate-stderr as_user2 "$FERRY" checkpoint instance --criu "$inst"
	assert_ferry_error "no instance '$inst'"
	run --separate-stderr as_user2 "$FERRY" checkpoint instance --criu --leave-running "$inst"
	assert_ferry_error "no instance '$inst'"
	run --separate-stderr as_user2 "$FERRY" checkpoint instance --criu --restore "$inst"
	assert_ferry_error "no instance '$inst'"
	run --separate-stderr as_user2 "$FERRY" instance stop "$inst"
	assert_ferry_error
	run as_user2 "$FERRY" instance list
	refute_output --partial "$inst"
	instance_running "$U1" "$inst" || fail "user2 stopped user1's instance"
	assert_equal "$(ckpt_json_field "$U1" "$ck" state)" empty

	run --separate-stderr as_user2 "$FERRY" instance start --criu-restart "$fx"
	assert_ferry_error
	run --separate-stderr as_user2 "$FERRY" instance start --criu-restart "$fx" "$IMG" ck-stolen
	assert_ferry_error
	assert_nothing_started "$U2" ck-stolen
	run --separate-stderr as_user2 "$FERRY" checkpoint delete "$fx"
	assert_ferry_error
	run --separate-stderr as_user2 "$FERRY" checkpoint delete "$d"
	assert_ferry_error
	run as_user2 "$FERRY" checkpoint list
	assert_success
	refute_line --regexp "^($FIXTURE|$ck) "
	refute_output --partial "$U1_HOME"
	run as_user2 "$FERRY" checkpoint list --json
	assert_success
	refute_output --partial "\"$FIXTURE\""
	refute_output --partial "\"$ck\""
	refute_output --partial "$U1_HOME"

	# even with user1's home open to others (a common setup), the checkpoints stay theirs
	modes=$(stat -c '%a %n' "$U1_HOME" "$U1_HOME/.ferry" "$U1_HOME/.ferry/checkpoint")
	chmod 0711 "$U1_HOME" "$U1_HOME/.ferry" "$U1_HOME/.ferry/checkpoint"
	run --separate-stderr as_user2 "$FERRY" instance start --criu-restart "$fx" "$IMG" ck-stolen
	st1=$status err1=$stderr
	run --separate-stderr as_user2 "$FERRY" checkpoint delete "$fx"
	st2=$status err2=$stderr
	while read -r m f; do chmod "$m" "$f"; done <<<"$modes"
	status=$st1 stderr=$err1 assert_ferry_error
	assert_nothing_started "$U2" ck-stolen
	status=$st2 stderr=$err2 assert_ferry_error

	# the fixture survived all of it
	[ -L "$fx/current" ] || fail "user2 removed 'current' of user1's checkpoint"
	assert_equal "$(cd "$g" && sha256sum ./*)" "$sums"
	assert_no_restore "$fx"
	as_user1 "$FERRY" instance stop "$inst"
}

@test "CRIU images forged to run as uid 0 are refused before any restore, even with a rewritten manifest" {
	ensure_fixture
	local d g old
	copy_ckpt "$U1" "$FIXTURE" "$T-root"
	d=$(ckpt_dir "$U1" "$T-root")
	g=$(current_gen "$d")
	old=$(forge_creds "$g/core-10000.img" "$BATS_TEST_TMPDIR/core-10000.img" 0)
	assert_equal "$old" "$U1_UID" # the credentials edited are the workload's
	! cmp -s "$g/core-10000.img" "$BATS_TEST_TMPDIR/core-10000.img" || fail "forge_creds changed nothing"

	# root edits the sealed generation in place and rewrites the manifest's sha256 and size:
	# the signature no longer matches
	replace_sealed "$g" core-10000.img "$BATS_TEST_TMPDIR/core-10000.img"
	chmod u+w "$g/manifest"
	manifest_set_file "$g/manifest" core-10000.img "$g/core-10000.img"
	chmod 0444 "$g/manifest"
	grep -q "^file=core-10000.img .* $(sha256sum "$g/core-10000.img" | cut -d' ' -f1)\$" "$g/manifest"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T-root"
	assert_ferry_error "signature"
	assert_nothing_started "$U1" ftck-fixture
	assert_no_restore "$d"

	# the same forgery done by the user: their own copy of the generation (not root's) with the
	# forged image and a matching manifest
	as_user1 mkdir -p "$(ckpt_dir "$U1" "$T-mine")/gen-000001"
	u=$(ckpt_dir "$U1" "$T-mine")
	cp "$BATS_TEST_TMPDIR/core-10000.img" "$U1_TMP/core"
	chown "$U1:" "$U1_TMP/core"
	as_user1 sh -c 'cp "$1"/* "$2"/ && chmod u+w "$2"/* && cp "$3" "$2/core-10000.img"' sh \
		"$(current_gen "$(ckpt_dir "$U1" "$FIXTURE")")" "$u/gen-000001" "$U1_TMP/core"
	as_user1 chmod u+w "$u/gen-000001/manifest"
	manifest_set_file "$u/gen-000001/manifest" core-10000.img "$u/gen-000001/core-10000.img"
	chown "$U1:" "$u/gen-000001/manifest"
	as_user1 ln -s gen-000001 "$u/current"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T-mine"
	assert_ferry_error "not sealed by ferry|signature"
	assert_nothing_started "$U1" ftck-fixture
	assert_no_restore "$u"
}

# ---------------------------------------------------------------- as root

@test "root: dump + restart of a checkpointable instance (tree workload)" {
	local ck=$T-root inst=${ROOT_INSTANCE_PREFIX}ck-root prog=/root/$T-root.progress d
	d=/root/.ferry/checkpoint/$ck
	rm -rf "$d"
	run "$FERRY" checkpoint create "$ck"
	assert_success
	start_stateful root "$ck" "$inst" "$prog" --mb 32 --tree
	wait_step "$prog" 3
	run --separate-stderr "$FERRY" checkpoint instance --criu "$inst"
	[ "$status" -eq 0 ] || fail "dump as root failed ($status): $stderr"
	wait_gone root "$inst"
	dumped=$(step_of "$prog")
	grep -q '^uid=0$' "$(current_gen "$d")/manifest"
	run --separate-stderr "$FERRY" instance start --criu-restart "$ck"
	[ "$status" -eq 0 ] || fail "restart as root failed ($status): $stderr"
	wait_step "$prog" $((dumped + 3))
	assert_progress_ok "$prog"
	assert_equal "$(field_of "$prog" tree)" "$(step_of "$prog")"
	# even root's restored workload runs without capabilities
	st=$(workload_status root "$inst")
	for p in $(pids_of "$st"); do
		assert_unprivileged "$(status_of "$st" "$p")" 0 0
	done
	"$FERRY" instance stop "$inst"
	wait_gone root "$inst"
	run "$FERRY" checkpoint delete "$ck"
	assert_success
	[ ! -e "$d" ]
	rm -f "$prog"
}

@test "--wait-all with --criu-launch: the daemon a command leaves is in the checkpoint and comes back with it; the instance lives until it ends" {
	local ck=$T-wa inst=ck-wa prog=$U1_TMP/progress-wa id stopped i
	run as_user1 "$FERRY" checkpoint create "$ck"
	assert_success
	rm -f "$prog"
	# the command starts the memory-checked workload as a daemon (its own session) and exits
	run --separate-stderr as_user1 "$FERRY" instance start --wait-all --criu-launch "$ck" "$IMG" "$inst" \
		sh -c 'setsid "$1" --mb 32 --interval 100 "$2" </dev/null >/dev/null 2>&1 & exit 0' sh "$STATEFUL" "$prog"
	[ "$status" -eq 0 ] || fail "instance start: $stderr"
	wait_step "$prog" 3 30
	id=$(field_of "$prog" run)
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu "$inst"
	[ "$status" -eq 0 ] || fail "the dump of a daemon whose command ended failed: $stderr"
	assert_instance_gone "$U1" "$inst"
	stopped=$(step_of "$prog")
	sleep 0.5
	[ "$(step_of "$prog")" = "$stopped" ] || fail "the daemon went on after its dump"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$ck"
	[ "$status" -eq 0 ] || fail "restart: $stderr"
	wait_step "$prog" $((stopped + 3)) 30
	[ "$(field_of "$prog" run)" = "$id" ] || fail "not the same daemon: $(cat "$prog")"
	assert_progress_ok "$prog"
	instance_running "$U1" "$inst" || fail "'$inst' does not run after its restart"
	# still --wait-all after the restart: the daemon's end is the instance's
	# (this exec is in the instance too: it may be killed with it, 137)
	run as_user1 "$FERRY" exec "instance://$inst" sh -c 'for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = stateful ] && kill ${p#/proc/}; done; sleep 5'
	[ "$status" -eq 0 ] || [ "$status" -eq 137 ] || fail "exec: $status: $output"
	for ((i = 0; i < 100; i++)); do
		instance_running "$U1" "$inst" || break
		sleep 0.1
	done
	if instance_running "$U1" "$inst"; then fail "'$inst' stayed after its last process ended"; fi
}

# count_over FILE N: the count in FILE is over N.
count_over() { [ "$(cat "$1" 2>/dev/null || echo 0)" -gt "$2" ]; }

# tmp_workload: a shell that fills its /tmp as MPI stacks do (a session directory, a FIFO and a
# file it holds open, one it deleted, links, a sparse file of 1 TiB), then counts, a tick a line, into a file it holds
# open in /tmp; the count also goes to $1.
tmp_workload() {
	cat <<-'EOF2'
		mkdir -p /tmp/sess/d && echo hello >/tmp/sess/d/file && chmod 640 /tmp/sess/d/file &&
		mkfifo /tmp/sess/fifo && ln -s d/file /tmp/sess/link && ln -s /etc/passwd /tmp/sess/out &&
		truncate -s 1099511627776 /tmp/sess/sparse && echo end >>/tmp/sess/sparse &&
		echo kept >/tmp/sess/gone || exit 1
		exec 3<>/tmp/sess/fifo 4>>/tmp/sess/ticks 5</tmp/sess/gone
		rm /tmp/sess/gone
		i=0
		while :; do i=$((i + 1)); echo "tick $i" >&4; echo "$i" >"$1.tmp" && mv "$1.tmp" "$1"; sleep 0.1; done
	EOF2
}

@test "--private-tmp: what the instance keeps in /tmp (directories, modes, a FIFO and a file it holds open, a deleted one, links, a sparse file) comes back with every restart" {
	local ck=$T-ptmp inst=ck-ptmp prog=$U1_TMP/count n gen
	as_user1 "$FERRY" checkpoint create "$ck"
	run --separate-stderr as_user1 "$FERRY" instance start --private-tmp --criu-launch "$ck" "$IMG" "$inst" \
		sh -c "$(tmp_workload)" sh "$prog"
	[ "$status" -eq 0 ] || fail "instance start: $stderr"
	wait_for test -s "$prog" || fail "the workload does not count"
	# the host's /tmp is not the instance's
	[ ! -e /tmp/sess ] || fail "the instance's /tmp is the host's"
	for round in 1 2; do
		run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu "$inst"
		[ "$status" -eq 0 ] || fail "dump $round: $stderr"
		wait_gone "$U1" "$inst"
		n=$(cat "$prog")
		gen=$(current_gen "$(ckpt_dir "$U1" "$ck")")
		[ "$(stat -c %U "$gen/ferry-tmp.tar")" = root ] || fail "the saved /tmp is not sealed: $(ls -l "$gen")"
		# a sparse file of 1 TiB holds 4 bytes: so does the archive (holes stay holes)
		[ "$(stat -c %s "$gen/ferry-tmp.tar")" -lt 1048576 ] || fail "the saved /tmp is $(stat -c %s "$gen/ferry-tmp.tar") bytes"
		grep -q "ferry-tmp.tar" "$gen/manifest" || fail "the saved /tmp is not in the manifest"
		run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$ck"
		[ "$status" -eq 0 ] || fail "restart $round: $stderr"
		wait_for count_over "$prog" $((n + 3)) || fail "the restored workload does not count on"
		run as_user1 "$FERRY" exec "instance://$inst" sh -c \
			'cat /tmp/sess/d/file; stat -c "%a %F" /tmp/sess/d/file /tmp/sess/fifo; stat -c %s /tmp/sess/sparse; tail -c 4 /tmp/sess/sparse; readlink /tmp/sess/link; readlink /tmp/sess/out; ls -l /proc/[0-9]*/fd/ 2>/dev/null | grep -q "/tmp/sess/gone (deleted)" && echo held'
		assert_success
		assert_line --index 0 hello
		assert_line --index 1 "640 regular file"
		assert_line --index 2 "644 fifo"
		assert_line --index 3 1099511627780 # 1 TiB and "end\n"
		assert_line --index 4 end
		assert_line --index 5 "d/file"
		assert_line --index 6 "/etc/passwd" # a link is kept as a link, never followed
		assert_line --index 7 held # the deleted file, still open (CRIU's ghost file)
		# the file the workload holds open in /tmp goes on after its last line before the dump
		run as_user1 "$FERRY" exec "instance://$inst" cat /tmp/sess/ticks
		assert_success
		local i=0 l
		while read -r l; do
			i=$((i + 1))
			[ "$l" = "tick $i" ] || fail "line $i of the ticks in /tmp is '$l'"
		done <<<"$output"
		[ "$i" -gt $((n + 3)) ] || fail "only $i ticks in /tmp"
	done
	as_user1 "$FERRY" instance stop "$inst"
}

@test "--private-tmp: a file in /tmp its owner cannot read refuses the checkpoint, with its name; the instance keeps running; the saving holds no capability" {
	local ck=$T-ptmp0 inst=ck-ptmp0 prog=$U1_TMP/count n
	as_user1 "$FERRY" checkpoint create "$ck"
	# mode 000: only a capability (CAP_DAC_READ_SEARCH, CAP_DAC_OVERRIDE) could read it
	run --separate-stderr as_user1 "$FERRY" instance start --private-tmp --criu-launch "$ck" "$IMG" "$inst" \
		sh -c 'echo secret >/tmp/locked && chmod 000 /tmp/locked && i=0 && while :; do i=$((i + 1)); echo "$i" >"$1"; sleep 0.1; done' sh "$prog"
	[ "$status" -eq 0 ] || fail "instance start: $stderr"
	wait_for test -s "$prog" || fail "the workload does not count"
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu "$inst"
	assert_ferry_error "'/tmp/locked' cannot be read: Permission denied"
	instance_running "$U1" "$inst" || fail "'$inst' stopped after a refused checkpoint"
	n=$(cat "$prog")
	wait_for count_over "$prog" $((n + 3)) || fail "the workload does not count on"
	run as_user1 "$FERRY" checkpoint list "$ck"
	refute_output --partial "complete"
	as_user1 "$FERRY" instance stop "$inst"
}
