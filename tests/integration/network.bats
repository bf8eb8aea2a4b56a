#!/usr/bin/env bats
# Networks that survive migration (issue 4): instances with their own network namespace on a
# macvlan of their node (CNI), the same IP and MAC after a restart on another node, and TCP
# connections that go on through a checkpoint on nodeA and a restart on nodeB.
#
# The cluster is tests/lib/nodes.sh: network namespaces nodeA, nodeB and peer on a bridge;
# only 198.18.0.0/15, only inside those namespaces. Instances "on" a node are started with
# the CLI (and so the starter) running in that node's network namespace.

load ../lib/common
load ../lib/checkpoint
source "$FERRY_TESTS_DIR/lib/nodes.sh"

NETCONF=/etc/ferry/network/ftmac.conflist
NRECONF=/etc/ferry/network/ftnre.conflist # the tests of a restart under a changed network
KBRCONF=/etc/ferry/network/ftkbr.conflist # a bridge whose IPAM chooses (nodeA's alone)
KBRDATA=/run/ferry-test-cni-k
TCP=$CKPT_BIN/tcpstream

setup_file() {
	ferry_suite_setup
	build_ckpt_workload
	(
		flock 9
		if [ ! -x "$TCP" ] || [ "$FERRY_TESTS_DIR/workloads/tcpstream.c" -nt "$TCP" ]; then
			gcc -static -O2 -Wall -Wextra -Werror -o "$TCP.tmp" "$FERRY_TESTS_DIR/workloads/tcpstream.c" 2>/dev/null
			chmod 0755 "$TCP.tmp"
			mv "$TCP.tmp" "$TCP"
		fi
	) 9>/run/lock/ferry-test-ckpt-bin.lock
	nodes_up
	write_test_network "$NETCONF"
}

teardown_file() {
	ferry_suite_teardown
	nodes_down
	rm -f "$NETCONF"
	rm -rf "$U1_HOME"/.ferry/checkpoint/ftnet-* 2>/dev/null || true
}

setup() {
	ferry_test_setup
	use_image sqsh >/dev/null
	conf_set "allow net network = ftmac" "allow net args = yes" "allow net ip range = 198.18.1.0/24"
	T=ftnet-$BATS_TEST_NUMBER
	rm -rf "$U1_HOME/.ferry/checkpoint/$T"
	# progress files the user's workloads (and the peer's, as root) write
	OUT=$U1_TMP/out
	as_user1 mkdir -p "$OUT"
	chmod 0777 "$OUT"
	PEER_PIDS=()
}

teardown() {
	local n p
	for p in "${PEER_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	for n in nodeA nodeB; do
		on_node "$n" runuser -u "$U1" -- "$FERRY" instance stop --all >/dev/null 2>&1 || true
	done
	rm -f "$NRECONF" "$KBRCONF"
	ip -n nodeA link del ftkbr0 2>/dev/null || true
	rm -rf "$KBRDATA"
	conf_restore
	ferry_teardown
}

# on NODE USER CMD...: CMD as the test user in NODE's network namespace.
on() {
	local n=$1
	shift
	on_node "$n" runuser -u "$U1" -- env -C "$U1_HOME" "$@"
}

# wait_ok FILE N [SECONDS]: the stream in FILE reaches N (fails at once on FAIL).
wait_ok() {
	local f=$1 want=$2 secs=${3:-20} i v
	for ((i = 0; i < secs * 10; i++)); do
		if [ -e "$f" ]; then
			if grep -q FAIL "$f"; then
				fail "$f: $(cat "$f")"
			fi
			v=$(awk '$1 == "ok" {print $2}' "$f")
			if [ -n "$v" ] && [ "$v" -ge "$want" ]; then
				return 0
			fi
		fi
		sleep 0.1
	done
	fail "$f did not reach $want in ${secs}s: $(cat "$f" 2>/dev/null)"
}

num() { awk '$1 == "ok" {print $2}' "$1"; }

# in_peer CMD...: CMD in the background in peer's namespace (its pid in PEER_PIDS, and in
# PEER_PID: the test ends it by pid).
in_peer() {
	ip netns exec peer "$@" </dev/null 3>&- &
	PEER_PID=$!
	PEER_PIDS+=("$PEER_PID")
}

# listening FILE: a tcpstream server wrote that it listens (it does so once it does).
listening() { wait_for grep -q '^listening' "$1" || fail "no server listening: $(cat "$1" 2>/dev/null)"; }

# until_ok FILE N: a shell loop, for a command inside an instance, that waits (up to 10 s) until
# the tcpstream progress FILE says "ok M" with M >= N.
until_ok() {
	echo "i=0; until [ \"\$(sed -n 's/^ok \([0-9]*\).*/\1/p' $1 2>/dev/null)\" -ge $2 ] 2>/dev/null || [ \$i -ge 100 ]; do sleep 0.1; i=\$((i + 1)); done"
}

# reached FILE N: the stream got to N before it ended ("ok N" or "FAIL at N: ...").
reached() {
	local v
	v=$(sed -nE 's/^(ok|FAIL at) ([0-9]+).*/\2/p' "$1" 2>/dev/null)
	[ -n "$v" ] && [ "$v" -ge "$2" ] || fail "$1 did not get to $2: $(cat "$1" 2>/dev/null)"
}


# field INSTANCE KEY: a field of user 1's INSTANCE on nodeA, as 'instance list --json' has it.
field() {
	on nodeA "$FERRY" instance list --json |
		python3 -c 'import json, sys
for i in json.load(sys.stdin)["instances"]:
    if i["instance"] == sys.argv[1]: print(i[sys.argv[2]])' "$1" "$2"
}

stderr_has() { grep -qF -- "$1" <<<"$stderr" || fail "stderr '$stderr' lacks '$1'"; }


@test "an instance with --net on nodeA reaches peer and is reached from it; instance list shows its IP" {
	# (the server in the background: when the test stops its client, the instance stays)
	run on nodeA "$FERRY" instance start --net --network ftmac --network-args "IP=198.18.1.10/16" "$IMG" n1 \
		sh -c "$TCP serve 198.18.1.10:7100 $OUT/srv & exec sleep 1000"

	assert_success
	run on nodeA "$FERRY" instance list
	assert_output --partial "198.18.1.10/16"
	run on nodeA "$FERRY" instance list --json
	assert_output --partial '"ip": "198.18.1.10/16"'
	# peer -> instance
	in_peer "$TCP" send 198.18.1.10:7100 "$OUT/cli" 20
	wait_ok "$OUT/srv" 5
	wait_ok "$OUT/cli" 5
	kill "$PEER_PID"
	# instance -> peer, and loopback inside the instance
	in_peer "$TCP" serve 198.18.0.3:7101 "$OUT/psrv"
	listening "$OUT/psrv"
	# (these streams are cut on purpose once they got to 3: then count how far they got)
	run on nodeA "$FERRY" exec instance://n1 sh -c "$TCP send 198.18.0.3:7101 $OUT/pcli 10 & $(until_ok "$OUT/psrv" 3); kill \$!"
	reached "$OUT/psrv" 3
	run on nodeA "$FERRY" exec instance://n1 sh -c "$TCP serve 127.0.0.1:7102 $OUT/lsrv & $TCP send 127.0.0.1:7102 $OUT/lcli 10 & $(until_ok "$OUT/lcli" 3); kill %1 %2"
	reached "$OUT/lcli" 3
	# the instance has its own namespace: lo and eth0 only, with its address
	run on nodeA "$FERRY" exec instance://n1 ip -o addr show eth0
	assert_output --partial "inet 198.18.1.10/16"
	run on nodeA "$FERRY" exec instance://n1 ip -o link
	refute_output --partial "ft-node"
	run on nodeA "$FERRY" instance stop n1
	assert_success
}

@test "TCP: a client in the instance keeps its connection to a server in peer across nodeA -> nodeB" {
	as_user1 "$FERRY" checkpoint create "$T" >/dev/null
	in_peer "$TCP" serve 198.18.0.3:7200 "$OUT/srv"
	listening "$OUT/srv"
	# also a connection inside the instance, over loopback, that must survive too
	local wait_lsrv="i=0; until grep -q '^listening' $OUT/lsrv 2>/dev/null || [ \$i -ge 100 ]; do sleep 0.1; i=\$((i + 1)); done"
	run on nodeA "$FERRY" instance start --criu-launch "$T" --net --network ftmac \
		--network-args "IP=198.18.1.20/16;MAC=02:00:c6:12:01:14" "$IMG" tcpc \
		sh -c "$TCP serve 127.0.0.1:7201 $OUT/lsrv & $wait_lsrv; $TCP send 127.0.0.1:7201 $OUT/lcli 50 & exec $TCP send 198.18.0.3:7200 $OUT/cli 50"
	assert_success
	wait_ok "$OUT/srv" 10
	wait_ok "$OUT/lsrv" 10
	run on nodeA "$FERRY" checkpoint instance --criu tcpc
	assert_success
	local at=$(num "$OUT/srv") lat=$(num "$OUT/lsrv") i
	# the instance is gone: over a second, the server hears nothing, and nothing breaks its
	# connection
	for ((i = 0; i < 20; i++)); do
		sleep 0.05
		[ "$(num "$OUT/srv")" = "$at" ] || fail "the stream moved while the instance was down"
		! grep -q FAIL "$OUT/srv" || fail "the server's connection broke: $(cat "$OUT/srv")"
	done
	run on nodeB "$FERRY" instance start --criu-restart "$T"
	assert_success
	wait_ok "$OUT/srv" $((at + 20)) 20
	wait_ok "$OUT/lsrv" $((lat + 20)) 20
	# same address and MAC on nodeB
	run on nodeB "$FERRY" exec instance://tcpc cat /sys/class/net/eth0/address
	assert_output "02:00:c6:12:01:14"
	run on nodeB "$FERRY" instance list
	assert_output --partial "198.18.1.20/16"
	run on nodeA "$FERRY" instance list
	refute_output --partial tcpc
	grep -q FAIL "$OUT/srv" && fail "$(cat "$OUT/srv")"
	true
}

@test "TCP: a server in the instance keeps its client in peer across nodeA -> nodeB and back" {
	as_user1 "$FERRY" checkpoint create "$T" >/dev/null
	run on nodeA "$FERRY" instance start --criu-launch "$T" --net --network ftmac \
		--network-args "IP=198.18.1.21/16" "$IMG" tcps "$TCP" serve 198.18.1.21:7300 "$OUT/srv"
	assert_success
	listening "$OUT/srv"
	in_peer "$TCP" send 198.18.1.21:7300 "$OUT/cli" 50
	wait_ok "$OUT/cli" 10
	local node from=nodeA
	for node in nodeB nodeA; do
		run on "$from" "$FERRY" checkpoint instance --criu tcps
		assert_success
		local at
		at=$(num "$OUT/cli")
		run on "$node" "$FERRY" instance start --criu-restart "$T"
		assert_success
		wait_ok "$OUT/cli" $((at + 20)) 20
		from=$node
	done
	wait_ok "$OUT/srv" "$(num "$OUT/cli")" 5
}

@test "a restart onto a node where the address is taken is refused, and the checkpoint stays usable" {
	as_user1 "$FERRY" checkpoint create "$T" >/dev/null
	run on nodeA "$FERRY" instance start --criu-launch "$T" --net --network ftmac \
		--network-args "IP=198.18.1.30/16" "$IMG" ipt sleep 1000
	assert_success
	run on nodeA "$FERRY" checkpoint instance --criu ipt
	assert_success
	# someone on nodeB's network holds the address
	run on nodeB "$FERRY" instance start --net --network ftmac --network-args "IP=198.18.1.30/16" "$IMG" squat sleep 1000
	assert_success
	run --separate-stderr on nodeA "$FERRY" instance start --criu-restart "$T"
	assert_ferry_error
	stderr_has "198.18.1.30"
	stderr_has "already in use"
	run on nodeA "$FERRY" instance list
	refute_output --partial ipt
	run on nodeB "$FERRY" instance stop squat
	assert_success
	run on nodeA "$FERRY" instance start --criu-restart "$T"
	assert_success
	run on nodeA "$FERRY" exec instance://ipt ip -o addr show eth0
	assert_output --partial "198.18.1.30/16"
	# a fresh start with a taken address is refused the same way
	run --separate-stderr on nodeB "$FERRY" instance start --net --network ftmac --network-args "IP=198.18.1.30/16" "$IMG" squat2 true
	assert_ferry_error
	stderr_has "already in use"
}

# nre_network SUBNET: the tests' network 'ftnre', ftmac's twin (macvlan, static IPAM) whose
# subnet a test changes under a checkpointed instance; teardown removes it.
nre_network() { write_test_network "$NRECONF" ftnre "$1"; }

# nre_checkpoint INSTANCE IP MAC: INSTANCE on ftnre with IP and MAC, checkpointed (it ends).
nre_checkpoint() {
	nre_network 198.18.0.0/16
	conf_set "allow net network = ftnre" "allow net args = yes" "allow net ip range = 198.18.1.0/24"
	as_user1 "$FERRY" checkpoint create "$T" >/dev/null
	run on nodeA "$FERRY" instance start --criu-launch "$T" --net --network ftnre \
		--network-args "IP=$2;MAC=$3" "$IMG" "$1" sleep 1000
	assert_success
	run on nodeA "$FERRY" checkpoint instance --criu "$1"
	assert_success
}

# restart_refused INSTANCE MAC TEXT...: the restart of $T on nodeA is refused in one line that
# says each TEXT, and leaves nothing of INSTANCE (nothing_left)
restart_refused() {
	local inst=$1 mac=$2 t
	shift 2
	run --separate-stderr on nodeA "$FERRY" instance start --criu-restart "$T"
	assert_ferry_error
	for t in "$@"; do
		stderr_has "$t"
	done
	nothing_left "$inst" "$mac"
}

# restarts_as INSTANCE ADDR [MAC]: the checkpoint $T restarts on nodeA as INSTANCE, whose eth0
# has the address ADDR (and the MAC)
restarts_as() {
	run --separate-stderr on nodeA "$FERRY" instance start --criu-restart "$T"
	[ "$status" -eq 0 ] || fail "the restart of '$1' was refused: $stderr"
	run on nodeA "$FERRY" exec "instance://$1" ip -o addr show eth0
	assert_output --partial "inet $2"
	[ -z "${3:-}" ] || {
		run on nodeA "$FERRY" exec "instance://$1" cat /sys/class/net/eth0/address
		assert_output "$3"
	}
}

# nothing_left INSTANCE MAC: a refused restart left no instance, no reservation of MAC (its
# file gone or unlocked) and no interface in nodeA's namespace but its own (lo, eth0).
nothing_left() {
	run on nodeA "$FERRY" instance list
	refute_output --partial "$1"
	local f
	f=/run/ferry/net/n$(on_node nodeA stat -L -c %i /proc/self/ns/net)/mac-$2
	if [ -e "$f" ] && ! (exec 9<"$f" && flock -n 9); then
		fail "the MAC $2 is still reserved ($f locked)"
	fi
	run on_node nodeA ip -o link show
	[ "$(grep -c '' <<<"$output")" = 2 ] || fail "interfaces left on nodeA: $output"
}

@test "a restart onto a node that closed the network to users is refused, leaves nothing, and the checkpoint stays usable" {
	nre_checkpoint ic 198.18.1.33/16 02:00:c6:12:01:33
	# the admin closes ftnre to users
	conf_set "allow net network = ftmac" "allow net args = yes" "allow net ip range = 198.18.1.0/24"
	restart_refused ic 02:00:c6:12:01:33 "network 'ftnre' is not open to users on this node" "allow net network"
	# open again: the kept address (the user's choice, still in their range) restarts
	conf_set "allow net network = ftnre" "allow net args = yes" "allow net ip range = 198.18.1.0/24"
	restarts_as ic 198.18.1.33/16 02:00:c6:12:01:33
}

@test "a restart whose kept address is off the network's subnet today is refused, leaves nothing, and the checkpoint stays usable" {
	nre_checkpoint is 198.18.1.34/16 02:00:c6:12:01:34
	# the admin moves ftnre's subnet away from the address
	nre_network 198.19.0.0/24
	restart_refused is 02:00:c6:12:01:34 "198.18.1.34/16" "kept from the instance's checkpoint" "198.19.0.0/24"
	# ... or narrows it: the address is on it, with another prefix than the kept /16
	nre_network 198.18.0.0/17
	restart_refused is 02:00:c6:12:01:34 "198.18.1.34/16" "198.18.0.0/17"
	# the subnet back: the same checkpoint restarts with its address
	nre_network 198.18.0.0/16
	restarts_as is 198.18.1.34/16
}

@test "a restart keeps an address the user chose only where users may choose it: 'allow net args' and 'allow net ip range' of this node apply" {
	# the attack: launched where the user may choose from a wide range, restarted where they
	# may not choose at all, or only from another range
	nre_checkpoint ik 198.18.1.35/16 02:00:c6:12:01:35
	conf_set "allow net network = ftnre" "allow net args = no" "allow net ip range = 198.18.1.0/24"
	restart_refused ik 02:00:c6:12:01:35 "198.18.1.35/16" "chosen with --network-args" "'allow net args'"
	conf_set "allow net network = ftnre" "allow net args = yes" "allow net ip range = 198.18.2.0/24"
	restart_refused ik 02:00:c6:12:01:35 "198.18.1.35/16" "'allow net ip range'"
	# where the user may choose it, the same checkpoint restarts with its address and MAC
	conf_set "allow net network = ftnre" "allow net args = yes" "allow net ip range = 198.18.1.0/24"
	restarts_as ik 198.18.1.35/16 02:00:c6:12:01:35
}

@test "a restart keeps the address and MAC the network chose where users may choose none" {
	write_bridge_network "$KBRCONF" ftkbr 198.19.2.0/24 "$KBRDATA"
	conf_set "allow net network = ftkbr" "allow net args = yes" "allow net ip range = 198.18.1.0/24"
	as_user1 "$FERRY" checkpoint create "$T" >/dev/null
	run on nodeA "$FERRY" instance start --criu-launch "$T" --net --network ftkbr "$IMG" ia sleep 1000
	assert_success
	local ip mac
	ip=$(field ia ip)
	mac=$(field ia mac)
	[[ "$ip" == 198.19.2.*/24 ]] || fail "ia got '$ip'"
	run on nodeA "$FERRY" checkpoint instance --criu ia
	assert_success
	# users may choose nothing here, nor from this range: what the network chose is kept
	conf_set "allow net network = ftkbr" "allow net args = no"
	restarts_as ia "$ip " "$mac"
	# a checkpoint sealed before ferry said who chose (no IPAM nor SAID flags: 0x70000) keeps
	# its address and MAC as it did then: an upgrade leaves it restartable
	on nodeA "$FERRY" instance stop ia
	launch_flags_clear "$(current_gen "$(ckpt_dir "$U1" "$T")")" 0x70000
	restarts_as ia "$ip " "$mac"
}

@test "users cannot join a network ferry.conf does not allow, nor choose addresses outside its ranges" {
	cat >/etc/ferry/network/ftsecret.conflist <<-'JSON'
	{"cniVersion": "1.0.0", "name": "ftsecret",
	 "plugins": [{"type": "macvlan", "master": "eth0", "mode": "bridge", "ipam": {"type": "static"}}]}
	JSON
	chmod 0644 /etc/ferry/network/ftsecret.conflist
	run --separate-stderr on nodeA "$FERRY" instance start --net --network ftsecret --network-args "IP=198.18.1.40/16" "$IMG" nope true
	rm -f /etc/ferry/network/ftsecret.conflist
	assert_ferry_error
	stderr_has "not open to users"
	run --separate-stderr on nodeA "$FERRY" instance start --net --network ftmac --network-args "IP=198.18.2.40/16" "$IMG" nope true
	assert_ferry_error
	stderr_has "outside the ranges"
	run --separate-stderr on nodeA "$FERRY" instance start --net --network ftmac --network-args "IP=198.18.1.40/16;GW=198.18.9.1" "$IMG" nope true
	assert_ferry_error
	run --separate-stderr on nodeA "$FERRY" instance start --net --network ftmac --network-args "IP=198.18.1.40/16;MAC=01:00:5e:00:00:01" "$IMG" nope true
	assert_ferry_error
	stderr_has "unicast"
	conf_set "allow net network = ftmac" "allow net args = no" "allow net ip range = 198.18.1.0/24"
	run --separate-stderr on nodeA "$FERRY" instance start --net --network ftmac --network-args "IP=198.18.1.40/16" "$IMG" nope true
	assert_ferry_error
	stderr_has "allow net args"
	# a forged request does no better: the starter checks, not the CLI
	run on nodeA "$FERRY" instance list
	refute_output --partial nope
	# root may
	run on_node nodeA "$FERRY" instance start --net --network ftmac --network-args "IP=198.18.2.41/16" "$IMG" ft-rootnet sleep 100
	assert_success
	run on_node nodeA "$FERRY" instance stop ft-rootnet
	assert_success
}

@test "a bridge network (single node): two instances on nodeA reach each other; DEL frees the address" {
	write_bridge_network /etc/ferry/network/ftbr.conflist ftbr 198.19.0.0/24 /run/ferry-test-cni
	conf_set "allow net network = ftbr" "allow net args = no" "allow net ip range = 198.18.1.0/24"
	run on nodeA "$FERRY" instance start --net --network ftbr "$IMG" b1 sh -c "$TCP serve 0.0.0.0:7400 $OUT/srv & exec sleep 1000"
	assert_success
	local ip
	ip=$(on nodeA "$FERRY" instance list --json | python3 -c 'import json,sys; print([i["ip"] for i in json.load(sys.stdin)["instances"] if i["instance"] == "b1"][0].split("/")[0])')
	[[ "$ip" == 198.19.0.* ]] || fail "b1 got '$ip'"
	run on nodeA "$FERRY" instance start --net --network ftbr "$IMG" b2 sh -c "$TCP send $ip:7400 $OUT/cli 10 & exec sleep 1000"
	assert_success
	wait_ok "$OUT/cli" 5
	run on nodeA "$FERRY" instance stop b1 b2
	assert_success
	# host-local's leases are released by DEL
	wait_for sh -c "! ls /run/ferry-test-cni/ftbr | grep -q '^198\\.19\\.'" || true
	run sh -c "ls /run/ferry-test-cni/ftbr | grep -c '^198\\.19\\.'"
	assert_output "0"
	rm -f /etc/ferry/network/ftbr.conflist
	rm -rf /run/ferry-test-cni
}
