#!/usr/bin/env bats
# Loopback TCP inside a checkpointable instance (issue 16): an instance started with
# --criu-launch (or --criu-restart) without --net gets a network namespace of its own with only
# lo ('criu network = loopback', the default), so that TCP connections between its processes
# (an OpenMPI singleton and its orted, here tests/workloads/tcpstream.c talking to itself over
# 127.0.0.1) are dumped and restored. 'criu network = host' keeps the host's network, and a
# dump of such a connection is refused with a message that says why.

load ../lib/common
load ../lib/checkpoint

TCP=$CKPT_BIN/tcpstream
PORT=7301

setup_file() {
	ferry_suite_setup
	build_ckpt_workload
	(
		flock 9
		if [ ! -x "$TCP" ] || [ "$FERRY_TESTS_DIR/workloads/tcpstream.c" -nt "$TCP" ]; then
			gcc -static -O2 -Wall -Wextra -Werror -o "$TCP.tmp" "$FERRY_TESTS_DIR/workloads/tcpstream.c" || exit 1
			chmod 0755 "$TCP.tmp"
			mv "$TCP.tmp" "$TCP"
		fi
	) 9>/run/lock/ferry-test-ckpt-bin.lock
}

teardown_file() {
	ferry_suite_teardown
	rm -rf "$U1_HOME"/.ferry/checkpoint/ftlo-* 2>/dev/null || true
}

setup() {
	ferry_test_setup
	use_image sqsh >/dev/null
	T=ftlo-$BATS_TEST_NUMBER
	rm -rf "$U1_HOME/.ferry/checkpoint/$T"
	OUT=$U1_TMP/out
	as_user1 mkdir -p "$OUT"
}

teardown() {
	as_user1 "$FERRY" instance stop --all --timeout 3 >/dev/null 2>&1 || true
	conf_restore
	ferry_teardown
}

# ok_of FILE: the last number a tcpstream side confirmed (0 when none yet).
ok_of() { sed -n 's/^ok \([0-9]*\)$/\1/p' "$1" 2>/dev/null | grep . || echo 0; }

# wait_both N: both ends of the stream (the sender, which checks every echo, and the server,
# which checks every number) got past N; fails at once when one of them failed.
wait_both() {
	local want=$1 i f
	for ((i = 0; i < 200; i++)); do
		for f in "$OUT/cli" "$OUT/srv"; do
			if grep -q FAIL "$f" 2>/dev/null; then
				fail "$f: $(cat "$f")"
			fi
		done
		if [ "$(ok_of "$OUT/cli")" -ge "$want" ] && [ "$(ok_of "$OUT/srv")" -ge "$want" ]; then
			return 0
		fi
		sleep 0.1
	done
	fail "the stream did not reach $want in 20 s: client '$(cat "$OUT/cli" 2>/dev/null)', server '$(cat "$OUT/srv" 2>/dev/null)'"
}

# start_pair INSTANCE: a checkpointable instance whose two processes hold one TCP connection
# over 127.0.0.1: the sender sends 1, 2, 3... and checks each echo, the server checks the order
# (a reconnect, a gap or a reset is a failure on either side).
start_pair() {
	run --separate-stderr as_user1 "$FERRY" instance start --criu-launch "$T" "$IMG" "$1" \
		sh -c "$TCP serve 127.0.0.1:$PORT $OUT/srv & exec $TCP send 127.0.0.1:$PORT $OUT/cli 50"
	[ "$status" -eq 0 ] || fail "instance start --criu-launch failed ($status): $stderr"
	wait_both 5
}

# dump_stream INSTANCE: checkpoints the instance (which ends it) and sets AT to the last number
# the sender had confirmed.
dump_stream() {
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu "$1"
	[ "$status" -eq 0 ] || fail "the dump of a loopback TCP connection failed: $stderr"
	wait_gone "$U1" "$1"
	AT=$(ok_of "$OUT/cli")
}

# restart_stream: restarts the checkpoint; the same connection then carries numbers out and
# echoes back again.
restart_stream() {
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T"
	[ "$status" -eq 0 ] || fail "the restart failed ($status): $stderr"
	wait_both $((AT + 20))
}

# interfaces INSTANCE: the network interfaces the instance's processes see.
interfaces() {
	as_user1 "$FERRY" exec "instance://$1" cat /proc/net/dev | awk -F: 'NR > 2 {gsub(/ /, "", $1); print $1}' | sort | tr '\n' ' '
}

@test "a loopback TCP connection inside a checkpointable instance survives checkpoint and restart, both ways" {
	as_user1 "$FERRY" checkpoint create "$T"
	start_pair lo1
	dump_stream lo1
	restart_stream
	# ...and again after a second checkpoint, of the restored instance
	dump_stream lo1
	restart_stream
	as_user1 "$FERRY" instance stop lo1
}

@test "a checkpointable instance and its restart see only lo; a plain instance keeps the host's network" {
	as_user1 "$FERRY" checkpoint create "$T"
	start_pair lo2
	assert_equal "$(interfaces lo2)" "lo "
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu lo2
	[ "$status" -eq 0 ] || fail "dump failed: $stderr"
	wait_gone "$U1" lo2
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T"
	[ "$status" -eq 0 ] || fail "restart failed ($status): $stderr"
	assert_equal "$(interfaces lo2)" "lo "
	wait_both $(($(ok_of "$OUT/cli") + 5))

	run --separate-stderr as_user1 "$FERRY" instance start "$IMG" plain2 sleep 1000
	assert_success
	assert_equal "$(interfaces plain2)" "$(awk -F: 'NR > 2 {gsub(/ /, "", $1); print $1}' /proc/net/dev | sort | tr '\n' ' ')"
}

@test "criu network = host: the host's network, and a dump of a TCP connection is refused naming TCP and what to do" {
	conf_set "criu network = host"
	as_user1 "$FERRY" checkpoint create "$T"
	start_pair lo3
	[ "$(interfaces lo3)" != "lo " ] || fail "with 'criu network = host' the instance has its own network"
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu lo3
	assert_ferry_error "TCP connection.*'criu network = loopback'.*--net"
	echo "# $stderr"
	# nothing stopped: the stream goes on
	wait_both $(($(ok_of "$OUT/cli") + 5))
	as_user1 "$FERRY" instance stop lo3

	run --separate-stderr as_user1 "$FERRY" exec "$IMG" true
	assert_success
	conf_set "criu network = none"
	run --separate-stderr as_user1 "$FERRY" exec "$IMG" true
	assert_ferry_error "'criu network' must be 'loopback' or 'host', not 'none'"
}

@test "checkpoint instance --criu --restore: the connection comes back inside an idle loopback-only instance" {
	as_user1 "$FERRY" checkpoint create "$T"
	start_pair lo4
	dump_stream lo4
	run --separate-stderr as_user1 "$FERRY" instance start --criu-launch "$T" "$IMG" lo4b
	assert_success
	assert_equal "$(interfaces lo4b)" "lo "
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --restore lo4b
	[ "$status" -eq 0 ] || fail "--restore failed ($status): $stderr"
	wait_both $((AT + 20))
	as_user1 "$FERRY" instance stop lo4b
}

@test "a loopback checkpoint restarts in a loopback-only namespace on a node set to 'criu network = host', and a host one in the host's" {
	as_user1 "$FERRY" checkpoint create "$T"
	start_pair lo5
	dump_stream lo5
	# the namespace the checkpoint was dumped from is sealed in its manifest
	grep -qx 'netns=loopback' "$(current_gen "$(ckpt_dir "$U1" "$T")")/manifest" ||
		fail "the manifest does not say the instance's network was loopback-only"
	conf_set "criu network = host"
	restart_stream
	assert_equal "$(interfaces lo5)" "lo "
	as_user1 "$FERRY" instance stop lo5
	# and the other way: dumped with the host's network, restarted with it on a loopback node
	as_user1 "$FERRY" instance start --criu-launch "$T" "$IMG" lo5h sleep 31012
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu lo5h
	[ "$status" -eq 0 ] || fail "dump failed: $stderr"
	wait_gone "$U1" lo5h
	conf_restore
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T"
	[ "$status" -eq 0 ] || fail "the restart of a host-network checkpoint failed ($status): $stderr"
	[ "$(interfaces lo5h)" != "lo " ] || fail "a host-network checkpoint was restarted in a namespace of its own"
	as_user1 "$FERRY" instance stop lo5h
}
