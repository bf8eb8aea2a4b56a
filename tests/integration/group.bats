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

# member [--on NODE] NAME IP CMD...: user 1's checkpointable instance NAME (checkpoint NAME) on
# NODE (nodeA), with address IP, running CMD.
member() {
	local node=nodeA
	if [ "$1" = --on ]; then
		node=$2
		shift 2
	fi
	local name=$1 ip=$2
	shift 2
	rm -rf "$(ckpt_dir "$U1" "$name")"
	as_user1 "$FERRY" checkpoint create "$name" >/dev/null || fail "checkpoint create $name"
	run --separate-stderr on "$node" "$FERRY" instance start --criu-launch "$name" --net --network ftmac \
		--network-args "IP=$ip/16" "$IMG" "$name" "$@"
	[ "$status" -eq 0 ] || fail "instance start $name: $stderr"
}

# bad_member NODE: member $T-bad on NODE, whose dump fails at the end, once CRIU wrote its
# images: a file in its private /tmp it cannot read (saving /tmp comes after the images, the tree
# still frozen).
bad_member() {
	rm -rf "$(ckpt_dir "$U1" "$T-bad")"
	as_user1 "$FERRY" checkpoint create "$T-bad" >/dev/null
	run --separate-stderr on "$1" "$FERRY" instance start --criu-launch "$T-bad" --private-tmp "$IMG" "$T-bad" \
		sh -c 'echo x >/tmp/locked && chmod 000 /tmp/locked && exec sleep 1000'
	[ "$status" -eq 0 ] || fail "instance start $T-bad on $1: $stderr"
}

# stream_pair [CLIENT_NODE]: a server and its client, members $T-srv (198.18.1.60, on nodeA) and
# $T-cli (198.18.1.61, on CLIENT_NODE: nodeA), with a numbered stream between them (a number
# every 20 ms), each logging its progress to $OUT/srv and $OUT/cli (tcpstream's +PROGRESS: one
# file kept open, appended to); waits until it flows.
stream_pair() {
	member "$T-srv" 198.18.1.60 "$TCP" serve 198.18.1.60:7100 "+$OUT/srv"
	wait_for grep -q listening "$OUT/srv" || fail "the server did not start"
	member --on "${1:-nodeA}" "$T-cli" 198.18.1.61 "$TCP" send 198.18.1.60:7100 "+$OUT/cli" 20
	stream_at "$OUT/cli" 20 20
	stream_at "$OUT/srv" 20 20
}

# held_in NAME: a dump of checkpoint NAME is sealed and waits in its staging directory.
held_in() { [ -n "$(find "$(ckpt_dir "$U1" "$1")" -path '*staging*' -name manifest 2>/dev/null)" ]; }

# lastnum FILE: the last number a stream's log says it reached.
lastnum() { awk '$1 == "ok" {v = $2} END {print v}' "$1" 2>/dev/null; }

# stream_at FILE N [SECONDS]: the stream's log reaches N (fails at once on FAIL).
stream_at() {
	local f=$1 want=$2 secs=${3:-20} i v
	for ((i = 0; i < secs * 10; i++)); do
		! grep -q FAIL "$f" 2>/dev/null || fail "$f: $(grep FAIL "$f" | head -n1)"
		v=$(lastnum "$f")
		[ -n "$v" ] && [ "$v" -ge "$want" ] && return 0
		sleep 0.1
	done
	fail "$f did not reach $want in ${secs}s: $(tail -n1 "$f" 2>/dev/null)"
}


# cut_kill_restart SRV_NODE CLI_NODE SRV_TO CLI_TO: after a group checkpoint with
# --leave-running, the stream goes on; then both members are killed (on SRV_NODE, CLI_NODE) and
# restarted at once, each by itself, the server on SRV_TO and the client on CLI_TO: the numbers
# in flight at the cut come again from the sender's queue, the echoes from the server's, and
# the stream goes on with no gap and no duplicate (tcpstream fails on either).
cut_kill_restart() {
	local at
	at=$(lastnum "$OUT/cli")
	stream_at "$OUT/cli" $((at + 20)) 20
	# the cut is all that is left (the one killed last may see its peer go first, and write
	# FAIL: the progress of the restored ones counts, from the cut on; the logs stay, emptied:
	# the restored processes hold them open, by name)
	kill_member "$1" "$T-srv"
	kill_member "$2" "$T-cli"
	wait_for workloads_gone || fail "the members still run"
	: >"$OUT/srv"
	: >"$OUT/cli"
	on "$3" "$FERRY" instance start --criu-restart "$T-srv" >"$BATS_TEST_TMPDIR/rs-srv" 2>&1 &
	on "$4" "$FERRY" instance start --criu-restart "$T-cli" >"$BATS_TEST_TMPDIR/rs-cli" 2>&1 ||
		fail "restart of the client: $(cat "$BATS_TEST_TMPDIR/rs-cli")"
	wait $! || fail "restart of the server: $(cat "$BATS_TEST_TMPDIR/rs-srv")"
	assert_only_on "$3" "$T-srv"
	assert_only_on "$4" "$T-cli"
	stream_at "$OUT/cli" $((at + 30)) 30
	stream_at "$OUT/srv" $((at + 30)) 30
	! grep -q FAIL "$OUT/srv" "$OUT/cli" || fail "the stream broke: $(cat "$OUT/srv" "$OUT/cli")"
}

# workloads_gone: neither end of the stream runs.
workloads_gone() { ! pgrep -f "$TCP (serve|send) .*$OUT/(srv|cli)" >/dev/null; }

# gens NAME: the generations of checkpoint NAME.
gens() { find "$(ckpt_dir "$U1" "$1")" -maxdepth 1 -name 'gen-*' -printf '%f\n' 2>/dev/null | sort; }

@test "group: a server and its client checkpointed together while they run, both killed, both restarted: the stream between them goes on, no number lost or repeated" {
	mig_up
	stream_pair
	run --separate-stderr on nodeA "$FERRY" checkpoint group --leave-running "$T-srv" "$T-cli"
	[ "$status" -eq 0 ] || fail "checkpoint group: $stderr"
	assert_line --regexp "^$T-srv $(ckpt_dir "$U1" "$T-srv")/gen-000001\$"
	assert_line --regexp "^$T-cli $(ckpt_dir "$U1" "$T-cli")/gen-000001\$"
	cut_kill_restart nodeA nodeA nodeA nodeA
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
	at=$(lastnum "$OUT/cli")
	run on nodeA "$FERRY" instance start --criu-restart "$T-srv"
	assert_success
	run on nodeA "$FERRY" instance start --criu-restart "$T-cli"
	assert_success
	stream_at "$OUT/cli" $((at + 30)) 30
}

@test "group --restart: only the members of one cut, all of them: a member checkpointed alone since, or one left out, is named and nothing starts; the starter refuses another cut" {
	mig_up
	stream_pair
	run --separate-stderr on nodeA "$FERRY" checkpoint group --leave-running "$T-srv" "$T-cli"
	[ "$status" -eq 0 ] || fail "checkpoint group: $stderr"
	# both generations carry the cut, ID/2, in their signed manifests
	local cs cc req=$U1_TMP/restart.req
	cs=$(grep '^group=' "$(ckpt_dir "$U1" "$T-srv")/gen-000001/manifest")
	cc=$(grep '^group=' "$(ckpt_dir "$U1" "$T-cli")/gen-000001/manifest")
	[[ "$cs" =~ ^group=[0-9a-f]{32}/2$ ]] && [ "$cs" = "$cc" ] || fail "the cuts: '$cs' '$cc'"
	run --separate-stderr as_user1 "$FERRY" checkpoint list --json
	[ "$(python3 -c 'import json, sys; print({c["name"]: c["group"] for c in json.load(sys.stdin)["checkpoints"]}[sys.argv[1]])' "$T-cli" <<<"$output")" = "${cc#group=}" ] ||
		fail "checkpoint list --json: $output"
	# the server in a group of its own since: another cut; then on its own: of no cut
	run --separate-stderr on nodeA "$FERRY" checkpoint group --leave-running "$T-srv"
	[ "$status" -eq 0 ] || fail "checkpoint group of the server alone: $stderr"
	run --separate-stderr on nodeA "$FERRY" checkpoint group --restart "$T-srv" "$T-cli"
	assert_ferry_error "^ferry: restart of the group: '$T-srv' and '$T-cli' are not of the same group checkpoint \([0-9a-f]{8}, ${cc:6:8}\): "
	run --separate-stderr on nodeA "$FERRY" checkpoint instance --criu --leave-running "$T-srv"
	[ "$status" -eq 0 ] || fail "checkpoint of the server: $stderr"
	! grep -q '^group=' "$(ckpt_dir "$U1" "$T-srv")/gen-000003/manifest" || fail "its own checkpoint has a cut"
	kill_member nodeA "$T-srv"
	kill_member nodeA "$T-cli"
	wait_for workloads_gone || fail "the members still run"
	run --separate-stderr on nodeA "$FERRY" checkpoint group --restart "$T-srv" "$T-cli"
	assert_ferry_error "^ferry: restart of the group: '$T-srv' holds no group checkpoint \(its current generation was made on its own\): "
	! listed_on nodeA "$T-srv" && ! listed_on nodeA "$T-cli" || fail "a member was restarted"
	# a member left out
	run --separate-stderr on nodeA "$FERRY" checkpoint group --restart "$T-cli"
	assert_ferry_error "^ferry: restart of the group: its checkpoint ${cc:6:8} holds 2 members, not 1: name all of them and no other$"
	! listed_on nodeA "$T-cli" || fail "the client was restarted"
	# the starter checks the signed cut itself: a restart asked for another cut is refused...
	forge_request --op 2 --flags 16 --cwd "$U1_HOME" --checkpoint "$(ckpt_dir "$U1" "$T-cli")" \
		--group "$(printf '%032d' 7)/2" >"$req"
	chmod a+r "$req"
	run --separate-stderr on nodeA sh -c 'exec "$1" 3<"$2"' sh "$STARTER" "$req"
	assert_ferry_error "checkpoint '$(ckpt_dir "$U1" "$T-cli")': its current generation is not of the group's checkpoint 00000000 \(it was checkpointed on its own since\)"
	! listed_on nodeA "$T-cli" || fail "the client was restarted for another cut"
	# ... and one for its own cut restores
	forge_request --op 2 --flags 16 --cwd "$U1_HOME" --checkpoint "$(ckpt_dir "$U1" "$T-cli")" \
		--group "${cc#group=}" >"$req"
	run --separate-stderr on nodeA sh -c 'exec "$1" 3<"$2"' sh "$STARTER" "$req"
	[ "$status" -eq 0 ] || fail "the restart for its own cut: $stderr"
	listed_on nodeA "$T-cli" || fail "the client was not restarted"
}

@test "group: one member whose dump fails (after its images were written) leaves every member running and publishes nothing; the word says which and why" {
	mig_up
	local at
	stream_pair
	bad_member nodeA
	run --separate-stderr on nodeA "$FERRY" checkpoint group "$T-srv" "$T-bad" "$T-cli"
	assert_ferry_error "checkpoint of the group: instance '$T-bad': .*'/tmp/locked' cannot be read: Permission denied; every instance keeps running and no generation was published$"
	for m in srv bad cli; do
		listed_on nodeA "$T-$m" || fail "'$T-$m' stopped"
		[ -z "$(gens "$T-$m")" ] || fail "'$T-$m' has a generation: $(gens "$T-$m")"
	done
	# the stream goes on, unbroken (the members that were held were let go)
	at=$(lastnum "$OUT/cli")
	stream_at "$OUT/cli" $((at + 20)) 20
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
	at=$(lastnum "$OUT/cli")
	stream_at "$OUT/cli" $((at + 20)) 20
	for m in srv cli big; do
		[ -z "$(gens "$T-$m")" ] || fail "'$T-$m' has a generation: $(gens "$T-$m")"
	done
	assert_progress_ok "$OUT/big.prog"
}

@test "group: a member's starter killed once its generation is published, before it told its guard: the member ends with the others, never runs on beside its checkpoint" {
	# the guard heard nothing from the dead starter and resumed the tree: the member ran on while
	# its generation, at the group's cut, was published and every other member had ended
	mig_up
	local fc guard starter init i
	member "$T-a" 198.18.1.63 "$STATEFUL" --mb 8 --interval 100 "$OUT/a.prog"
	# the other member's 1 GB takes long to write: the small one is held meanwhile
	member "$T-b" 198.18.1.64 "$STATEFUL" --mb 1024 --interval 100 "$OUT/b.prog"
	wait_step "$OUT/a.prog" 2 30
	wait_step "$OUT/b.prog" 2 30
	init=$(inst_field nodeA "$T-a" pid)
	on nodeA "$FERRY" checkpoint group "$T-a" "$T-b" >"$BATS_TEST_TMPDIR/grp" 2>&1 &
	wait_for held_in "$T-a" || fail "the small member's dump was not held: $(cat "$BATS_TEST_TMPDIR/grp")"
	# its ferry-criu (in its pid namespace), stopped by the user: the starter, once it published,
	# waits for it, and is killed then
	for ((i = 0; i < 500; i++)); do
		for fc in $(pgrep -u "$U1" -f '^ferry-criu dump'); do
			[ "$(readlink "/proc/$fc/ns/pid")" = "$(readlink "/proc/$init/ns/pid")" ] && break 2
		done
		fc=""
		sleep 0.02
	done
	[ -n "$fc" ] || fail "no ferry-criu of '$T-a'"
	as_user1 kill -STOP "$fc"
	guard=$(ps -o ppid= -p "$fc" | tr -d ' ')
	starter=$(ps -o ppid= -p "$guard" | tr -d ' ')
	for ((i = 0; i < 600; i++)); do
		[ -L "$(ckpt_dir "$U1" "$T-a")/current" ] && break
		sleep 0.1
	done
	[ -L "$(ckpt_dir "$U1" "$T-a")/current" ] || fail "'$T-a' was never published: $(cat "$BATS_TEST_TMPDIR/grp")"
	as_user1 kill -KILL "$starter"
	wait 2>/dev/null || true
	echo "# ferry checkpoint group: $(cat "$BATS_TEST_TMPDIR/grp")" >&3
	# both generations are the cut, and no member runs on beside it
	[ "$(gens "$T-a")" = gen-000001 ] && [ "$(gens "$T-b")" = gen-000001 ] || fail "generations: $(gens "$T-a") / $(gens "$T-b")"
	# (the guard lets the stopped dump's CRIU finish for up to 10 s first)
	for ((i = 0; i < 300; i++)); do
		not_listed nodeA "$T-a" && not_listed nodeA "$T-b" && break
		sleep 0.1
	done
	not_listed nodeA "$T-a" || fail "'$T-a' runs on beside its published generation"
	not_listed nodeA "$T-b" || fail "'$T-b' runs on"
	[ -z "$(find "$(ckpt_dir "$U1" "$T-a")" -maxdepth 1 -name '.staging-*')" ] || fail "a staging of '$T-a' is left"
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
	run --separate-stderr as_user1 "$FERRY" checkpoint group --tcp-close a
	assert_ferry_error "^ferry: --tcp-close belongs to --restart$"
	run --separate-stderr as_user1 "$FERRY" checkpoint group --restart --leave-running a
	assert_ferry_error "^ferry: --leave-running belongs to a checkpoint, not to --restart$"
	run --separate-stderr as_user1 "$FERRY" checkpoint group --place a=b --job x
	assert_ferry_error "^ferry: --place belongs to --restart --job$"
	run --separate-stderr as_user1 "$FERRY" checkpoint group --restart --job "$T-none"
	assert_ferry_error "^ferry: no checkpoint of job '$T-none' "
	run --separate-stderr as_user1 "$FERRY" checkpoint group --job "$T" a
	assert_ferry_error "^ferry: --job JOB names the members: give no others$"
	run --separate-stderr as_user1 "$FERRY" checkpoint group --restart no-such-checkpoint
	assert_ferry_error "^ferry: restart of the group: checkpoint 'no-such-checkpoint' cannot be read here \(No such file or directory\); no member was restarted$"
	# another user's checkpoint, by its path: that user's alone (the starter would refuse it too)
	as_user1 "$FERRY" checkpoint create "$T-mine" >/dev/null
	run --separate-stderr as_user2 "$FERRY" checkpoint group --restart "$(ckpt_dir "$U1" "$T-mine")"
	assert_ferry_error "^ferry: restart of the group: checkpoint '$(ckpt_dir "$U1" "$T-mine")' cannot be read here \(Permission denied\); no member was restarted$"
	! instance_running "$U2" "$T-mine" || fail "user 2 restarted user 1's checkpoint"
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
	at=$(lastnum "$OUT/cli")
	stream_at "$OUT/cli" $((at + 20)) 20
}

@test "group across nodes: a server on nodeA and its client on nodeB at one cut, both killed, restarted each on the other node: the stream goes on exactly" {
	mig_up
	stream_pair nodeB
	run --separate-stderr on nodeA "$FERRY" checkpoint group --leave-running "$T-srv" "nodeB:$T-cli"
	[ "$status" -eq 0 ] || fail "checkpoint group: $stderr"
	assert_line --regexp "^$T-srv $(ckpt_dir "$U1" "$T-srv")/gen-000001\$"
	assert_line --regexp "^nodeB:$T-cli $(ckpt_dir "$U1" "$T-cli")/gen-000001\$"
	ferryd_log_has nodeB "group checkpoint from nodeA: holding '$T-cli'" || fail "nodeB did not log the member"
	# nodeB's member's generation is signed with the same cut as nodeA's
	[ "$(grep '^group=' "$(ckpt_dir "$U1" "$T-srv")/gen-000001/manifest")" = \
		"$(grep '^group=' "$(ckpt_dir "$U1" "$T-cli")/gen-000001/manifest")" ] || fail "not one cut"
	# the ranks placed on the other nodes: the server on nodeB, the client on nodeA
	cut_kill_restart nodeA nodeB nodeB nodeA
}

@test "group across nodes: the member on nodeB fails after its images are written: both go on, nothing is published, the word names nodeB's member" {
	mig_up
	local at
	stream_pair
	bad_member nodeB
	run --separate-stderr on nodeA "$FERRY" checkpoint group "$T-srv" "nodeB:$T-bad" "$T-cli"
	assert_ferry_error "checkpoint of the group: instance 'nodeB:$T-bad': on nodeB: .*'/tmp/locked' cannot be read: Permission denied.*; every instance keeps running and no generation was published$"
	listed_on nodeB "$T-bad" || fail "'$T-bad' stopped"
	for m in srv cli bad; do
		[ -z "$(gens "$T-$m")" ] || fail "'$T-$m' has a generation: $(gens "$T-$m")"
	done
	for m in srv cli; do
		listed_on nodeA "$T-$m" || fail "'$T-$m' stopped"
	done
	at=$(lastnum "$OUT/cli")
	stream_at "$OUT/cli" $((at + 20)) 20
}

@test "group across nodes, security: a member on another node is dumped only as its owner; an unknown node, and this node by name, are refused" {
	mig_up
	stream_pair nodeB
	# user 2 names user 1's instance on nodeB: nodeB's starter, running as user 2, finds none
	run --separate-stderr on_as nodeA "$U2" "$FERRY" checkpoint group "nodeB:$T-cli"
	assert_ferry_error "instance 'nodeB:$T-cli': on nodeB: .*no instance '$T-cli' of yours is running"
	listed_on nodeB "$T-cli" || fail "'$T-cli' stopped"
	[ -z "$(gens "$T-cli")" ] || fail "'$T-cli' has a generation: $(gens "$T-cli")"
	# a node this ferryd does not know, and this very node, are refused by ferryd at once
	run --separate-stderr on nodeA "$FERRY" checkpoint group "nodeX:$T-cli"
	assert_ferry_error "no node 'nodeX' is known"
	run --separate-stderr on nodeA "$FERRY" checkpoint group "nodeA:$T-srv"
	assert_ferry_error "'nodeA' is this node"
	# a hold message under the cluster key that names user 2 with user 1's uid: nodeB refuses
	# before any starter runs
	run on_node nodeA python3 "$WIRE" peer "${NODE_IP[nodeB]}:$MIG_PORT" /etc/ferry/cluster.key \
		msg type=hold id=0123456789ab "uid=$U1_UID" "user=$U2" "instance=$T-cli" leave=1 recv
	assert_output --partial "uid $U1_UID is '$U1' here, not '$U2'"
	# and one whose group is not ID/N
	run on_node nodeA python3 "$WIRE" peer "${NODE_IP[nodeB]}:$MIG_PORT" /etc/ferry/cluster.key \
		msg type=hold id=0123456789ab "uid=$U1_UID" "user=$U1" "instance=$T-cli" leave=1 group=../x/2 recv
	assert_output --partial "bad hold message"
	# a client asking its own ferryd for a hold with such a group is refused by its reader
	run on nodeA python3 "$WIRE" local msg type=hold "instance=$T-cli" to=nodeB leave=1 group=zz/2 recv
	assert_output --partial "bad request: group=ID/N belongs to a hold request"
	[ -z "$(gens "$T-cli")" ] || fail "'$T-cli' has a generation: $(gens "$T-cli")"
	local at
	at=$(lastnum "$OUT/cli")
	stream_at "$OUT/cli" $((at + 20)) 20
}
