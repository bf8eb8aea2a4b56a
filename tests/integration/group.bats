#!/usr/bin/env bats
# ferry checkpoint group (issue 15): several instances checkpointed at one consistent cut. Every
# member is frozen and its network locked before any lets go, each member's generation is
# published only once all are written, and a member that fails leaves every member running with
# nothing published (src/ferry/group.c, FERRY_REQ_HOLD in src/starter/checkpoint.c).
#
# The members talk over TCP (tests/workloads/tcpstream.c: a numbered stream, echoed back, that
# fails on any gap, duplicate or reconnect), each with an address of its own on the simulated
# node's macvlan network: only 198.18.0.0/15, only inside the namespaces the tests make.

load ../lib/common
load ../lib/checkpoint
source "$FERRY_TESTS_DIR/lib/nodes.sh"
load ../lib/migrate

setup_file() {
	mig_file_setup
}

teardown_file() {
	mig_file_teardown ftgrp
}

setup() {
	mig_test_setup ftgrp
	mig_conf
}

teardown() {
	mig_test_teardown 30
}

# member NAME IP CMD...: user 1's checkpointable instance NAME (checkpoint NAME) on nodeA, with
# address IP, running CMD.
member() {
	local name=$1 ip=$2
	shift 2
	rm -rf "$(ckpt_dir "$U1" "$name")"
	as_user1 "$FERRY" checkpoint create "$name" >/dev/null || fail "checkpoint create $name"
	run --separate-stderr on nodeA "$FERRY" instance start --criu-launch "$name" --net --network ftmac \
		--network-args "IP=$ip/16" "$IMG" "$name" "$@"
	[ "$status" -eq 0 ] || fail "instance start $name: $stderr"
}

# stream_pair: a server and its client, members $T-srv (198.18.1.60) and $T-cli (198.18.1.61),
# with a numbered stream between them (a number every 20 ms); waits until it flows.
stream_pair() {
	member "$T-srv" 198.18.1.60 "$TCP" serve 198.18.1.60:7100 "$OUT/srv"
	wait_for test -e "$OUT/srv" || fail "the server did not start"
	member "$T-cli" 198.18.1.61 "$TCP" send 198.18.1.60:7100 "$OUT/cli" 20
	wait_ok "$OUT/cli" 20 20
	wait_ok "$OUT/srv" 20 20
}

# held_in NAME: a dump of checkpoint NAME is sealed and waits in its staging directory.
held_in() { [ -n "$(find "$(ckpt_dir "$U1" "$1")" -path '*staging*' -name manifest 2>/dev/null)" ]; }

# workloads_gone: neither end of the stream runs.
workloads_gone() { ! pgrep -f "$TCP (serve|send) .*$OUT/(srv|cli)" >/dev/null; }

# gens NAME: the generations of checkpoint NAME.
gens() { find "$(ckpt_dir "$U1" "$1")" -maxdepth 1 -name 'gen-*' -printf '%f\n' 2>/dev/null | sort; }

@test "group: a server and its client checkpointed together while they run, both killed, both restarted: the stream between them goes on, no number lost or repeated" {
	mig_up
	local at
	stream_pair
	run --separate-stderr on nodeA "$FERRY" checkpoint group --leave-running "$T-srv" "$T-cli"
	[ "$status" -eq 0 ] || fail "checkpoint group: $stderr"
	assert_line --regexp "^$T-srv $(ckpt_dir "$U1" "$T-srv")/gen-000001\$"
	assert_line --regexp "^$T-cli $(ckpt_dir "$U1" "$T-cli")/gen-000001\$"
	# both went on (they were let go together)
	at=$(num "$OUT/cli")
	wait_ok "$OUT/cli" $((at + 20)) 20
	# both killed: the cut is all that is left
	run on nodeA "$FERRY" instance stop "$T-srv" "$T-cli"
	assert_success
	wait_for workloads_gone || fail "the members still run"

	at=$(num "$OUT/cli")
	# restarted at once, each by itself: the numbers in flight at the cut come again from the
	# sender's queue, the echoes from the server's; tcpstream fails on a gap or a duplicate
	on nodeA "$FERRY" instance start --criu-restart "$T-srv" >"$BATS_TEST_TMPDIR/rs-srv" 2>&1 &
	on nodeA "$FERRY" instance start --criu-restart "$T-cli" >"$BATS_TEST_TMPDIR/rs-cli" 2>&1 || fail "restart of the client: $(cat "$BATS_TEST_TMPDIR/rs-cli")"
	wait $! || fail "restart of the server: $(cat "$BATS_TEST_TMPDIR/rs-srv")"
	wait_ok "$OUT/cli" $((at + 30)) 30
	wait_ok "$OUT/srv" $((at + 30)) 30
	! grep -q FAIL "$OUT/srv" "$OUT/cli" || fail "the stream broke: $(cat "$OUT/srv" "$OUT/cli")"
}

@test "group: without --leave-running every member stops once all generations are published" {
	mig_up
	stream_pair
	run --separate-stderr on nodeA "$FERRY" checkpoint group "$T-srv" "$T-cli"
	[ "$status" -eq 0 ] || fail "checkpoint group: $stderr"
	! listed_on nodeA "$T-srv" || fail "the server still runs"
	! listed_on nodeA "$T-cli" || fail "the client still runs"
	[ "$(gens "$T-srv")" = gen-000001 ] && [ "$(gens "$T-cli")" = gen-000001 ] || fail "generations: $(gens "$T-srv") / $(gens "$T-cli")"
	local at
	at=$(num "$OUT/cli")
	run on nodeA "$FERRY" instance start --criu-restart "$T-srv"
	assert_success
	run on nodeA "$FERRY" instance start --criu-restart "$T-cli"
	assert_success
	wait_ok "$OUT/cli" $((at + 30)) 30
}

@test "group: one member whose dump fails (after its images were written) leaves every member running and publishes nothing; the word says which and why" {
	mig_up
	local at
	stream_pair
	# a third member whose dump fails at the end, once CRIU wrote its images: a file in its
	# private /tmp it cannot read (saving /tmp comes after the images, the tree still frozen)
	rm -rf "$(ckpt_dir "$U1" "$T-bad")"
	as_user1 "$FERRY" checkpoint create "$T-bad" >/dev/null
	run --separate-stderr on nodeA "$FERRY" instance start --criu-launch "$T-bad" --private-tmp "$IMG" "$T-bad" \
		sh -c 'echo x >/tmp/locked && chmod 000 /tmp/locked && exec sleep 1000'
	[ "$status" -eq 0 ] || fail "instance start: $stderr"
	run --separate-stderr on nodeA "$FERRY" checkpoint group "$T-srv" "$T-bad" "$T-cli"
	assert_ferry_error "checkpoint of the group: instance '$T-bad': .*'/tmp/locked' cannot be read: Permission denied; every instance keeps running and no generation was published$"
	for m in srv bad cli; do
		listed_on nodeA "$T-$m" || fail "'$T-$m' stopped"
		[ -z "$(gens "$T-$m")" ] || fail "'$T-$m' has a generation: $(gens "$T-$m")"
	done
	# the stream goes on, unbroken (the members that were held were let go)
	at=$(num "$OUT/cli")
	wait_ok "$OUT/cli" $((at + 20)) 20
	! grep -q FAIL "$OUT/srv" "$OUT/cli" || fail "the stream broke: $(cat "$OUT/srv" "$OUT/cli")"
}

@test "group: ferry stopped while the members are held: they all go on, nothing is published" {
	mig_up
	local at
	stream_pair
	# a third member with 512 MB to write: the other two are held long before it is
	member "$T-big" 198.18.1.62 "$STATEFUL" --mb 512 --interval 100 "$OUT/big.prog"
	wait_step "$OUT/big.prog" 2 30
	# the members hold until the group's word; without it (ferry killed) they give up
	local pid
	on nodeA "$FERRY" checkpoint group "$T-srv" "$T-cli" "$T-big" >"$BATS_TEST_TMPDIR/grp" 2>&1 &
	wait_for held_in "$T-srv" || fail "the server's dump was not held: $(cat "$BATS_TEST_TMPDIR/grp")"
	wait_for held_in "$T-cli" || fail "the client's dump was not held: $(cat "$BATS_TEST_TMPDIR/grp")"
	pid=$(pgrep -x -f "$FERRY checkpoint group $T-srv $T-cli $T-big") || fail "no ferry checkpoint group"
	! held_in "$T-big" || fail "the 512 MB member was written before the others were seen held"
	kill -9 "$pid"
	wait 2>/dev/null || true
	for m in srv cli big; do
		wait_for listed_on nodeA "$T-$m" || fail "'$T-$m' stopped"
	done
	at=$(num "$OUT/cli")
	wait_ok "$OUT/cli" $((at + 20)) 20
	for m in srv cli big; do
		[ -z "$(gens "$T-$m")" ] || fail "'$T-$m' has a generation: $(gens "$T-$m")"
	done
	assert_progress_ok "$OUT/big.prog"
}

@test "group: bad input is refused with one line and touches nothing" {
	run --separate-stderr as_user1 "$FERRY" checkpoint group
	assert_ferry_error "usage: ferry checkpoint group"
	run --separate-stderr as_user1 "$FERRY" checkpoint group a a
	assert_ferry_error "instance 'a' is named twice"
	run --separate-stderr as_user1 "$FERRY" checkpoint group --bogus a
	assert_ferry_error "unknown option '--bogus'"
	run --separate-stderr as_user1 "$FERRY" checkpoint group no-such-instance
	assert_ferry_error "checkpoint of the group: instance 'no-such-instance': .*; every instance keeps running and no generation was published$"
}

@test "group, security: another user cannot checkpoint a user's instances: refused, and they go on untouched" {
	mig_up
	stream_pair
	run --separate-stderr on_as nodeA "$U2" "$FERRY" checkpoint group "$T-srv" "$T-cli"
	assert_ferry_error "instance '$T-srv': no instance '$T-srv' of yours is running"
	for m in srv cli; do
		listed_on nodeA "$T-$m" || fail "'$T-$m' stopped"
		[ -z "$(gens "$T-$m")" ] || fail "'$T-$m' has a generation: $(gens "$T-$m")"
	done
	local at
	at=$(num "$OUT/cli")
	wait_ok "$OUT/cli" $((at + 20)) 20
}
