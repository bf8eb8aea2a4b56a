#!/usr/bin/env bats
# A soak (issue 12): SOAK_N migrations (default 20; `make soak`: 200) of one memory-checked
# workload with an open TCP connection, back and forth between the two simulated nodes, the modes
# interleaved so that each direction sees both (A->B default, B->A default, A->B diskless, B->A
# diskless, ...). Before the first migration and after the last (the instance is back on nodeA),
# the resources a migration takes must be what they were: each ferryd's open fds, the host's
# mounts, loop devices, the bytes in ferry's tmpfs and shared directories, the /run/ferry records
# and the processes of ferry, CRIU and the test user. The workload is the same process all along
# (its run id), its memory checks passed, its TCP stream to peer is the same connection with
# no gap (tcpstream fails on a reconnect), and its log has every step once, in order.
#
# The counts are printed (bats' fd 3), every 10 migrations too, with the daemons' resident memory
# (shown, not compared: OpenSSL sets itself up at the first handshake).

load ../lib/common
load ../lib/checkpoint
source "$FERRY_TESTS_DIR/lib/nodes.sh"
load ../lib/migrate

SOAK_N=${SOAK_N:-20}
SOAK_MB=${SOAK_MB:-32}

setup_file() {
	mig_file_setup
}

teardown_file() {
	mig_file_teardown ftsoak
}

setup() {
	mig_test_setup ftsoak
}

teardown() {
	mig_test_teardown 40
}

# soak_counts: one line of KEY=VALUE, what must be the same before and after.
soak_counts() {
	local n fds=() files bytes
	for n in nodeA nodeB; do
		fds+=("fds_$n=$(find "/proc/${FERRYD_PID[$n]}/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)")
		fds+=("threads_$n=$(find "/proc/${FERRYD_PID[$n]}/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)")
	done
	# regular files (and their bytes) in the diskless landing dirs and the shared directory
	read -r files bytes < <(find "$MIG_TMPFS"-node* "$MIG_SHARED" -type f -printf '%s\n' 2>/dev/null |
		awk '{n++; b += $1} END {printf "%d %d\n", n, b}')
	printf '%s ' "${fds[@]}"
	printf 'mounts=%s loops=%s tmpfs_shared_files=%s tmpfs_shared_bytes=%s ckpt_files=%s inst_files=%s records=%s procs_ferry_criu=%s procs_user=%s\n' \
		"$(wc -l </proc/self/mountinfo)" \
		"$(losetup -a | wc -l)" \
		"$files" "$bytes" \
		"$(find "$(ckpt_dir "$U1" "$T")" ! -type d 2>/dev/null | wc -l)" \
		"$(find "$U1_HOME/.ferry/instances" ! -type d 2>/dev/null | wc -l)" \
		"$(find "$FERRY_RUNDIR" ! -type d 2>/dev/null | wc -l)" \
		"$(ps -e -o comm= | grep -cE 'ferry|criu')" \
		"$(pgrep -c -u "$U1" || true)"
}

# soak_procs: the processes soak_counts counts (for the message when the counts differ)
soak_procs() {
	ps -e -o pid=,ppid=,user=,comm=,args= | awk '$4 ~ /ferry|criu/'
	pgrep -a -u "$U1" || true
}

# soak_settled: soak_counts once two samples half a second apart agree (at most 10 s): what
# the last step started but has not finished (a handler's exit, a helper) is not counted
soak_settled() {
	local a b i
	b=$(soak_counts)
	for ((i = 0; i < 20; i++)); do
		a=$b
		sleep 0.5
		b=$(soak_counts)
		[ "$a" = "$b" ] && break
	done
	echo "$b"
}

# soak_report I BEFORE: the counts after migration I (not settled: shown, not compared), and
# which processes differ from before when they do
soak_report() {
	local now
	now=$(soak_counts)
	echo "# after $1: $now $(soak_rss)" >&3
	[ "$now" = "$2" ] || diff <(awk '{print $3, $4}' "$BATS_TEST_TMPDIR/procs.before" | sort) \
		<(soak_procs | awk '{print $3, $4}' | sort) | sed -n 's/^[<>]/#   &/p' >&3 || true
}

# soak_rss: the daemons' resident memory (shown, not compared: it may settle at a higher level)
soak_rss() {
	local n
	for n in nodeA nodeB; do
		printf 'rss_%s=%skB ' "$n" "$(awk '/^VmRSS:/ {print $2}' "/proc/${FERRYD_PID[$n]}/status")"
	done
	echo
}

# soak_step I FROM TO MODE: migration I, then the workload and its stream go on at TO
soak_step() {
	local i=$1 from=$2 to=$3 mode=$4 at s
	at=$(num "$OUT/$T.srv")
	s=$(step_of "$OUT/$T.prog")
	mig_migrate "$from" "$T" --to "$to" --mode "$mode"
	[ "$status" -eq 0 ] || fail "migration $i ($from -> $to, $mode) failed ($status) after ${MIG_SECONDS}s: $stderr"
	SOAK_SECONDS[$mode]=$(awk -v a="${SOAK_SECONDS[$mode]:-0}" -v b="$MIG_SECONDS" 'BEGIN {print a + b}')
	# the same process goes on over there, once, and so does its connection (how long its peer
	# waited for the next 10 records after ferry migrate returned is reported, not asserted)
	local t=$EPOCHREALTIME
	wait_step "$OUT/$T.prog" $((s + 3)) 30
	assert_runs_once "$T"
	wait_ok "$OUT/$T.srv" $((at + 10)) 30
	SOAK_TCP_WAIT=$(awk -v a="${SOAK_TCP_WAIT:-0}" -v t="$t" -v b="$EPOCHREALTIME" 'BEGIN {print a + b - t}')
}

@test "soak: $SOAK_N migrations back and forth, both modes interleaved, of a memory-checked workload with a TCP stream leave nothing behind" {
	[ $((SOAK_N % 2)) = 0 ] || fail "SOAK_N must be even (the instance ends where it started)"
	mig_conf
	ferryd_start nodeA
	ferryd_start nodeB
	mig_launch nodeA "$T" "$SOAK_MB" --net 198.18.1.200 --tcp 7590
	log_follow "$T"
	local run_id before after i from to mode t0 full0
	run_id=$(field_of "$OUT/$T.prog" run)
	wait_full "$OUT/$T.prog" 1 60
	full0=$(field_of "$OUT/$T.prog" full)
	before=$(soak_settled)
	soak_procs >"$BATS_TEST_TMPDIR/procs.before"
	echo "# before: $before" >&3
	echo "#         $(soak_rss)" >&3
	declare -gA SOAK_SECONDS=()
	SOAK_TCP_WAIT=0
	t0=$EPOCHREALTIME
	for ((i = 1; i <= SOAK_N; i++)); do
		if [ $((i % 2)) = 1 ]; then from=nodeA to=nodeB; else from=nodeB to=nodeA; fi
		if [ $(((i - 1) / 2 % 2)) = 0 ]; then mode=default; else mode=diskless; fi
		soak_step "$i" "$from" "$to" "$mode"
		[ $((i % 10)) != 0 ] || soak_report "$i" "$before"
	done
	echo "# $SOAK_N migrations in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}')s (ferry migrate: default ${SOAK_SECONDS[default]}s, diskless ${SOAK_SECONDS[diskless]}s in all; the workload and its TCP stream going on after ferry migrate returned: $(awk -v w="$SOAK_TCP_WAIT" -v n="$SOAK_N" 'BEGIN {printf "%.2f", w / n}')s on average)" >&3
	# what a migration's end does late (a handler's exit, a lazy unmount) has 10 s to happen
	for ((i = 0; i < 3; i++)); do
		after=$(soak_settled)
		[ "$after" = "$before" ] && break
	done
	echo "# after:  $after" >&3
	echo "#         $(soak_rss)" >&3
	[ "$after" = "$before" ] || {
		echo "---- /proc/self/mountinfo (tail), losetup -a, /run/ferry, processes (before, after):"
		tail -n 5 /proc/self/mountinfo
		losetup -a
		find "$FERRY_RUNDIR" ! -type d
		cat "$BATS_TEST_TMPDIR/procs.before"
		echo "--"
		soak_procs
		for n in nodeA nodeB; do echo "ferryd $n fds:"; ls -l "/proc/${FERRYD_PID[$n]}/fd"; done
		fail "leak: before: $before; after: $after"
	}
	# the one process all along, on nodeA only, its memory checked in full since the last move
	assert_only_on nodeA "$T"
	assert_runs_once "$T"
	[ "$(field_of "$OUT/$T.prog" run)" = "$run_id" ] || fail "another run now: $(cat "$OUT/$T.prog") (was $run_id)"
	wait_full "$OUT/$T.prog" $(($(field_of "$OUT/$T.prog" full) + 1)) 60
	assert_progress_ok "$OUT/$T.prog"
	[ "$(field_of "$OUT/$T.prog" full)" -gt "$full0" ] || fail "no full memory check since the start"
	# the same TCP connection, no gap, no duplicate, still going
	local at
	at=$(num "$OUT/$T.srv")
	wait_ok "$OUT/$T.srv" $((at + 20)) 30
	! grep -q FAIL "$OUT/$T.srv" "$OUT/$T.cli" || fail "TCP stream: $(cat "$OUT/$T.srv" "$OUT/$T.cli")"
	echo "# workload: $(cat "$OUT/$T.prog"); TCP stream: $(cat "$OUT/$T.srv")" >&3
	# every step once, in order, across all the restores
	wait_followed "$T"
	assert_consecutive "$BATS_TEST_TMPDIR/$T.steps"
	run on nodeA "$FERRY" instance stop "$T"
	assert_success
}
