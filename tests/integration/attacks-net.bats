#!/usr/bin/env bats
# Attacks on the network arguments (issue 11, F9), as the unprivileged test users: a prefix
# that is not the network's, the network and broadcast addresses, the node's own address or MAC,
# and another instance's MAC (at start and at restart) are refused with a one-line error that
# says what to do; a good request, and one that leaves the choice to the network, still work.
# A copy of another host's address and MAC is caught by the duplicate-address probe, which goes
# out from a temporary MAC (src/net/arp.c).
#
# The cluster is tests/lib/nodes.sh (nodes on 198.18.0.0/16). Two networks on nodeA: 'ftmac'
# (macvlan on the node's eth0, static IPAM, "subnet" 198.18.0.0/16) and 'ftabr' (a bridge of
# nodeA, host-local IPAM on 198.19.1.0/24): a veth has no kernel check of its MAC at all.
#
# Issue 11 part 2: the conflists (JSON) and the CNI plugins are ferry-net's, a helper without the
# setuid bit that the starter runs as uid 0 with only the plugins' capabilities; the starter no
# longer links json-c, and nothing a user sets reaches what ferry-net reads or runs.

load ../lib/common
source "$FERRY_TESTS_DIR/lib/nodes.sh"

NETCONF=/etc/ferry/network/ftmac.conflist
BRCONF=/etc/ferry/network/ftabr.conflist
BRDATA=/run/ferry-test-cni-atk
NETBIN=/usr/local/libexec/ferry/ferry-net
WRAP=/run/ferry-test-cni-wrap

setup_file() {
	ferry_suite_setup
	nodes_up
	write_test_network "$NETCONF"
	write_bridge_network "$BRCONF" ftabr 198.19.1.0/24 "$BRDATA"
}

teardown_file() {
	ferry_suite_teardown
	nodes_down
	rm -f "$NETCONF" "$BRCONF"
	rm -rf "$BRDATA" "$WRAP"
	rm -rf "$U1_HOME"/.ferry/checkpoint/ftatk-* 2>/dev/null || true
}

setup() {
	ferry_test_setup
	use_image sqsh >/dev/null
	conf_set "allow net network = ftmac" "allow net network = ftabr" "allow net args = yes" \
		"allow net ip range = 198.18.0.0/15"
	T=ftatk-$BATS_TEST_NUMBER
	rm -rf "$U1_HOME/.ferry/checkpoint/$T"
}

teardown() {
	local n u
	for n in nodeA nodeB; do
		for u in "$U1" "$U2"; do
			on_node "$n" runuser -u "$u" -- "$FERRY" instance stop --all >/dev/null 2>&1 || true
		done
	done
	ip netns del ftowner 2>/dev/null || true
	conf_restore
	ferry_teardown
}

# on NODE USER CMD...: CMD as USER from their home, in NODE's network namespace.
on() {
	local n=$1 u=$2
	shift 2
	on_node "$n" runuser -u "$u" -- env -C "$(getent passwd "$u" | cut -d: -f6)" "$@"
}

# start USER NAME ARGS [NETWORK]: a sleeping instance on nodeA with these --network-args.
start() {
	on nodeA "$1" "$FERRY" instance start --net --network "${4:-ftmac}" --network-args "$3" "$IMG" "$2" sleep 1000
}

stderr_has() { grep -qF -- "$1" <<<"$stderr" || fail "stderr '$stderr' lacks '$1'"; }

not_running() {
	run on nodeA "$1" "$FERRY" instance list
	refute_line --regexp "^$2[[:space:]]"
}

@test "F9: a prefix other than the network's is refused" {
	run --separate-stderr start "$U1" p1 "IP=198.18.1.50/1"
	assert_ferry_error
	stderr_has "network 'ftmac' is 198.18.0.0/16, so its prefix must be /16 (IP=198.18.1.50/16)"
	run --separate-stderr start "$U1" p1 "IP=198.18.1.50/24"
	assert_ferry_error
	stderr_has "prefix must be /16"
	not_running "$U1" p1
	# on a host-local network the same
	run --separate-stderr start "$U1" p1 "IP=198.19.1.50/8" ftabr
	assert_ferry_error
	stderr_has "prefix must be /24"
	not_running "$U1" p1
}

@test "F9: the network and broadcast addresses, and the node's own address, are refused" {
	run --separate-stderr start "$U1" a1 "IP=198.18.0.0/16"
	assert_ferry_error
	stderr_has "is the network address of network 'ftmac' (198.18.0.0/16): choose a host address"
	run --separate-stderr start "$U1" a1 "IP=198.18.255.255/16"
	assert_ferry_error
	stderr_has "is the broadcast address of network 'ftmac'"
	# nodeA's own: its macvlans cannot reach it, so only ferry can tell
	run --separate-stderr start "$U1" a1 "IP=198.18.0.1/16"
	assert_ferry_error
	stderr_has "address 198.18.0.1/16 is this node's own (interface 'eth0'): choose another one"
	# host-local's gateway (the subnet's first address) is the network's
	run --separate-stderr start "$U1" a1 "IP=198.19.1.1/24" ftabr
	assert_ferry_error
	stderr_has "is the gateway of network 'ftabr'"
	not_running "$U1" a1
}

@test "F9: another running instance's MAC is refused, on the same network or another" {
	run start "$U1" m1 "IP=198.18.1.60/16;MAC=02:00:c6:12:01:60"
	assert_success
	# (the kernel refuses a second macvlan with it on the same parent, but says nothing useful)
	run --separate-stderr start "$U2" m2 "IP=198.18.1.61/16;MAC=02:00:c6:12:01:60"
	assert_ferry_error
	stderr_has "MAC 02:00:c6:12:01:60 is in use by another instance on this node: choose another one"
	# a bridge's veth has no such check: the same MAC twice on the node
	run --separate-stderr start "$U2" m3 "MAC=02:00:c6:12:01:60" ftabr
	assert_ferry_error
	stderr_has "is in use by another instance on this node"
	run start "$U2" m4 "MAC=02:00:c6:12:01:64" ftabr
	assert_success
	run --separate-stderr start "$U1" m5 "MAC=02:00:C6:12:01:64" ftabr
	assert_ferry_error
	stderr_has "is in use by another instance on this node"
	not_running "$U2" m2
	not_running "$U2" m3
	not_running "$U1" m5
}

@test "F9: a restart whose MAC another instance took meanwhile is refused, then works once it is free" {
	as_user1 "$FERRY" checkpoint create "$T" >/dev/null
	run on nodeA "$U1" "$FERRY" instance start --criu-launch "$T" --net --network ftmac \
		--network-args "IP=198.18.1.62/16;MAC=02:00:c6:12:01:62" "$IMG" r1 sleep 1000
	assert_success
	run on nodeA "$U1" "$FERRY" checkpoint instance --criu r1
	assert_success
	# the MAC is free: another user takes it, on another network of the node
	run start "$U2" r2 "MAC=02:00:c6:12:01:62" ftabr
	assert_success
	run --separate-stderr on nodeA "$U1" "$FERRY" instance start --criu-restart "$T"
	assert_ferry_error
	stderr_has "MAC 02:00:c6:12:01:62 (kept from the instance's checkpoint) is in use by another instance on this node"
	not_running "$U1" r1
	run on nodeA "$U2" "$FERRY" instance stop r2
	assert_success
	run on nodeA "$U1" "$FERRY" instance start --criu-restart "$T"
	assert_success
	run on nodeA "$U1" "$FERRY" exec instance://r1 cat /sys/class/net/eth0/address
	assert_output "02:00:c6:12:01:62"
}

@test "F9: a restart from disk hears a host that took its address and MAC while it was down" {
	as_user1 "$FERRY" checkpoint create "$T" >/dev/null
	run on nodeA "$U1" "$FERRY" instance start --criu-launch "$T" --net --network ftmac \
		--network-args "IP=198.18.1.91/16;MAC=02:00:c6:12:01:91" "$IMG" v1 sleep 1000
	assert_success
	run on nodeA "$U1" "$FERRY" checkpoint instance --criu v1
	assert_success
	# while v1 is down, user2 takes both on nodeB (nobody answers its probe)
	run on nodeB "$U2" "$FERRY" instance start --net --network ftmac \
		--network-args "IP=198.18.1.91/16;MAC=02:00:c6:12:01:91" "$IMG" cp1 sleep 1000
	assert_success
	# the restart keeps the MAC, but no migration's source is there to answer from it: what
	# answers is another host (a probe that ignored the kept MAC heard nobody, and both ran)
	run --separate-stderr on nodeA "$U1" "$FERRY" instance start --criu-restart "$T"
	assert_ferry_error
	stderr_has "address 198.18.1.91/16 is already in use on network 'ftmac'"
	not_running "$U1" v1
	run on nodeB "$U2" "$FERRY" instance stop cp1
	assert_success
	run on nodeA "$U1" "$FERRY" instance start --criu-restart "$T"
	assert_success
	run on nodeA "$U1" "$FERRY" exec instance://v1 cat /sys/class/net/eth0/address
	assert_output "02:00:c6:12:01:91"
}

@test "F9: the node's own MAC is refused, and so is a globally administered one" {
	local mac
	mac=$(on_node nodeA cat /sys/class/net/eth0/address)
	run --separate-stderr start "$U1" n1 "IP=198.18.1.63/16;MAC=$mac"
	assert_ferry_error
	stderr_has "MAC $mac is this node's own (interface 'eth0'): choose another one"
	run --separate-stderr start "$U1" n1 "MAC=$mac" ftabr
	assert_ferry_error
	stderr_has "is this node's own (interface 'eth0')"
	# a network card's address (another node's, a router's) is beyond what the node can see
	run --separate-stderr start "$U1" n1 "IP=198.18.1.63/16;MAC=00:16:3e:12:01:63"
	assert_ferry_error
	stderr_has "must be locally administered"
	not_running "$U1" n1
}

# held_macs DIR: how many MAC reservations in DIR a monitor holds (their files locked). Opened
# without O_CREAT: flock(1) FILE would make anew a reservation its monitor just removed.
held_macs() {
	local f n=0
	for f in "$1"/mac-*; do
		[ -e "$f" ] || continue
		(exec 9<"$f" || exit 0; flock -n 9) 2>/dev/null || n=$((n + 1))
	done
	echo "$n"
}

@test "F9: good requests still work, chosen or left to the network, and free their MAC at the end" {
	run start "$U1" g1 "IP=198.18.1.70/16;MAC=02:00:c6:12:01:70;GW=198.18.0.3"
	assert_success
	run on nodeA "$U1" "$FERRY" exec instance://g1 ip -o addr show eth0
	assert_output --partial "inet 198.18.1.70/16"
	run on nodeA "$U1" "$FERRY" exec instance://g1 cat /sys/class/net/eth0/address
	assert_output "02:00:c6:12:01:70"
	# the network chooses address and MAC; the user only the address
	run on nodeA "$U2" "$FERRY" instance start --net --network ftabr "$IMG" g2 sleep 1000
	assert_success
	run start "$U2" g3 "IP=198.18.1.71/16"
	assert_success
	run on nodeA "$U2" "$FERRY" instance list
	assert_output --regexp "g2 .* 198\.19\.1\.[0-9]+/24"
	assert_output --partial "198.18.1.71/16"
	# every MAC is reserved (its file locked) while its instance runs, and free once it has
	# stopped (files of monitors that were killed, in this namespace or an earlier one with the
	# same inode, stay unlocked and are taken over by the next reservation of their MAC)
	local dir i
	dir=/run/ferry/net/n$(on_node nodeA stat -L -c %i /proc/self/ns/net)
	[ "$(held_macs "$dir")" = 3 ] || fail "reservations held: $(held_macs "$dir") ($(ls "$dir"))"
	run on nodeA "$U1" "$FERRY" instance stop g1
	assert_success
	run on nodeA "$U2" "$FERRY" instance stop g2 g3
	assert_success
	for ((i = 0; i < 50; i++)); do
		[ "$(held_macs "$dir")" = 0 ] && break
		sleep 0.1
	done
	[ "$(held_macs "$dir")" = 0 ] || fail "reservations left: $(ls "$dir")"
	[ ! -e "$dir/mac-02:00:c6:12:01:70" ] || fail "the reservation of g1's MAC was not removed"
	run start "$U2" g4 "IP=198.18.1.70/16;MAC=02:00:c6:12:01:70"
	assert_success
}

# net_state: nodeA's links and MAC reservations, and the bridge network's address leases.
net_state() {
	on_node nodeA ip -o link show | sed 's/^[0-9]*: \([^:@]*\).*/\1/' | sort
	held_macs "/run/ferry/net/n$(on_node nodeA stat -L -c %i /proc/self/ns/net)"
	ls "$BRDATA/ftabr" 2>/dev/null | grep -E '^[0-9.]+$' || true
}

same_net_state() { [ "$(net_state)" = "$1" ]; }

@test "F9: a copy of another host's address and MAC is refused by the probe, and leaves nothing behind" {
	# the owner on ftmac: an instance of the other user on nodeB (another host on the wire)
	run on nodeB "$U2" "$FERRY" instance start --net --network ftmac \
		--network-args "IP=198.18.1.80/16;MAC=02:00:c6:12:01:80" "$IMG" own1 sleep 1000
	assert_success
	# the owner on ftabr: a namespace on nodeA's bridge (made here if no instance made it yet)
	on_node nodeA ip link show ftabr0 >/dev/null 2>&1 || on_node nodeA ip link add ftabr0 type bridge
	on_node nodeA ip link set ftabr0 up
	ip netns add ftowner
	ip -n nodeA link add ftown0 type veth peer name eth0 netns ftowner
	ip -n nodeA link set ftown0 master ftabr0 up
	ip -n ftowner link set eth0 address 02:00:c6:13:01:80 up
	ip -n ftowner addr add 198.19.1.80/24 dev eth0
	local before
	before=$(net_state)
	# the probe from the copied MAC would hear nothing: the owner's answer goes to that MAC,
	# which the switch knows on the owner's own port
	run --separate-stderr start "$U1" cp1 "IP=198.18.1.80/16;MAC=02:00:c6:12:01:80"
	assert_ferry_error
	stderr_has "address 198.18.1.80/16 is already in use on network 'ftmac'"
	run --separate-stderr start "$U1" cp2 "IP=198.19.1.80/24;MAC=02:00:c6:13:01:80" ftabr
	assert_ferry_error
	stderr_has "address 198.19.1.80/24 is already in use on network 'ftabr'"
	not_running "$U1" cp1
	not_running "$U1" cp2
	wait_for same_net_state "$before" || fail "left behind: $(diff <(echo "$before") <(net_state))"
	# a free address keeps its chosen MAC after the probe (a veth's changed for a moment)
	run start "$U1" cp3 "IP=198.19.1.81/24;MAC=02:00:c6:13:01:81" ftabr
	assert_success
	run on nodeA "$U1" "$FERRY" exec instance://cp3 cat /sys/class/net/eth0/address
	assert_output "02:00:c6:13:01:81"
	run on nodeB "$U2" "$FERRY" instance stop own1
	assert_success
}

@test "part 2: the installed starter links no json-c; ferry-net is root's, neither setuid nor with file capabilities" {
	run ldd "$STARTER"
	assert_success
	refute_output --partial json-c
	[ -x "$NETBIN" ] || fail "no $NETBIN"
	[ "$(stat -c '%U %G %a' "$NETBIN")" = "root root 755" ] || fail "$NETBIN: $(stat -c '%U %G %a' "$NETBIN")"
	[ -z "$(getcap "$NETBIN")" ] || fail "$NETBIN has file capabilities: $(getcap "$NETBIN")"
	run ldd "$NETBIN"
	assert_output --partial json-c
}

@test "part 2: a user running ferry-net directly gets nothing: it refuses before reading anything" {
	local out=$U1_TMP/ferry-net.out links
	links=$(on_node nodeA ip -o link show | wc -l)
	run as_user1 "$NETBIN" subnets ftmac
	assert_failure 2
	assert_output "ferry-net is run by ferry-starter (as root), not directly"
	# with the starter's fds (a pipe for the reply, a network namespace, a result file): not a
	# byte of reply, no link made on the node
	run on nodeA "$U1" sh -c 'exec "$1" add ftmac ferry-1-x eth0 IP=198.18.1.90/16 - - 3</proc/self/ns/net 4>"$2" | od -An -c' \
		sh "$NETBIN" "$out"
	assert_output "ferry-net is run by ferry-starter (as root), not directly"
	[ ! -s "$out" ] || fail "ferry-net wrote a result: $(cat "$out")"
	[ "$(on_node nodeA ip -o link show | wc -l)" = "$links" ] || fail "links on nodeA: $(on_node nodeA ip -o link show)"
}

# evil_plugins DIR MARK: plugins a user would like run (each leaves MARK), and a conflist
# 'ftmac' of their own naming one of them.
evil_plugins() {
	local d=$1 mark=$2 p
	as_user1 mkdir -p "$d"
	for p in macvlan loopback evil; do
		as_user1 sh -c "printf '#!/bin/sh\ntouch %s\nexit 1\n' '$mark' >'$d/$p' && chmod 0755 '$d/$p'"
	done
	as_user1 sh -c "printf '%s' '{\"cniVersion\":\"1.0.0\",\"name\":\"ftmac\",\"plugins\":[{\"type\":\"evil\"}]}' >'$d/ftmac.conflist'"
}

@test "part 2: a user's environment chooses no conflist or plugin of ferry-net's" {
	local d=$U1_TMP/evilcni mark=$U1_TMP/evil-ran
	evil_plugins "$d" "$mark"
	run on nodeA "$U1" env CNI_PATH="$d" NETCONFPATH="$d" CNI_CONF_DIR="$d" FERRY_NETWORK_DIR="$d" \
		FERRY_CONF="$d/ftmac.conflist" CNI_COMMAND=DEL CNI_NETNS=/proc/1/ns/net CNI_ARGS="IP=10.0.0.1/8" \
		LD_PRELOAD="$d/evil" PATH="$d:$PATH" \
		"$FERRY" instance start --net --network ftmac --network-args "IP=198.18.1.91/16" "$IMG" e1 sleep 1000
	assert_success
	run on nodeA "$U1" "$FERRY" instance list
	assert_output --partial "198.18.1.91/16"
	[ ! -e "$mark" ] || fail "a plugin of the user's ran"
}

@test "part 2: a network name with path characters reaches no conflist, from the CLI or a forged request" {
	local d=$U1_TMP/evilcni mark=$U1_TMP/evil-ran name
	evil_plugins "$d" "$mark"
	for name in "../../..$d/ftmac" "ftmac/../ftmac" "..$d/ftmac" ".ftmac"; do
		run --separate-stderr on nodeA "$U1" "$FERRY" instance start --net --network "$name" "$IMG" p1 sleep 1000
		assert_ferry_error
		stderr_has "network names are letters, digits, '_', '.', '-'"
		# the same straight to the starter, past the CLI
		{
			forge_request --op 2 --flags 64 --image "$IMG" --instance p2 --cwd / --pwd / --arg sleep --arg 1000 |
				head -c -6
			_rec_str 13 "$name"
			_le16 65535
			_le32 0
		} >"$U1_TMP/req"
		chmod 0644 "$U1_TMP/req"
		run on_node nodeA runuser -u "$U1" -- sh -c 'exec "$1" 3<"$2"' ferry-test "$STARTER" "$U1_TMP/req"
		[ "$status" -ne 0 ] || fail "the starter took network '$name'"
		assert_output --partial "network names are letters, digits, '_', '.', '-'"
	done
	[ ! -e "$mark" ] || fail "a plugin of the user's ran"
	not_running "$U1" p1
	not_running "$U1" p2
}

@test "part 2: the plugins run as uid 0 with only NET_ADMIN, SYS_ADMIN, NET_RAW, no_new_privs and only CNI's environment" {
	local p
	rm -rf "$WRAP"
	mkdir -m 0755 "$WRAP"
	for p in loopback macvlan static; do
		printf '#!/bin/sh\n{ echo "plugin %s $CNI_COMMAND"; grep -E "^(Uid|Gid|Groups|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):" /proc/$$/status; env | sed "s/^/env /"; } >>%s/log\nexec /usr/lib/cni/%s\n' \
			"$p" "$WRAP" "$p" >"$WRAP/$p"
		chmod 0755 "$WRAP/$p"
	done
	conf_set "allow net network = ftmac" "allow net args = yes" "allow net ip range = 198.18.0.0/15" \
		"cni path = $WRAP"
	run on nodeA "$U1" env FERRY_EVIL=1 LD_LIBRARY_PATH=/nonexistent \
		"$FERRY" instance start --net --network ftmac --network-args "IP=198.18.1.92/16" "$IMG" c1 sleep 1000
	assert_success
	run on nodeA "$U1" "$FERRY" instance stop c1
	assert_success
	local i
	for ((i = 0; i < 100; i++)); do
		grep -q "plugin macvlan DEL" "$WRAP/log" && break
		sleep 0.1
	done
	run cat "$WRAP/log"
	assert_output --partial "plugin loopback ADD"
	assert_output --partial "plugin macvlan ADD"
	assert_output --partial "plugin macvlan CHECK"
	assert_output --partial "plugin macvlan DEL"
	# every call: uid/gid 0, no groups, exactly the three capabilities (bits 12, 13, 21) in every set
	local n
	n=$(grep -c '^plugin ' "$WRAP/log")
	[ "$(grep -cE '^Uid:\s+0\s+0\s+0\s+0$' "$WRAP/log")" = "$n" ] || fail "$(cat "$WRAP/log")"
	[ "$(grep -cE '^Gid:\s+0\s+0\s+0\s+0$' "$WRAP/log")" = "$n" ] || fail "$(cat "$WRAP/log")"
	[ "$(grep -cE '^Groups:\s*$' "$WRAP/log")" = "$n" ] || fail "$(cat "$WRAP/log")"
	local set
	for set in CapPrm CapEff CapBnd CapAmb; do
		[ "$(grep -cE "^$set:\s+0000000000203000$" "$WRAP/log")" = "$n" ] || fail "$set: $(grep "^$set" "$WRAP/log")"
	done
	[ "$(grep -cE '^NoNewPrivs:\s+1$' "$WRAP/log")" = "$n" ] || fail "$(grep NoNewPrivs "$WRAP/log")"
	# the environment is CNI's and a fixed PATH, nothing of the user's
	refute_output --partial FERRY_EVIL
	refute_output --partial LD_LIBRARY_PATH
	run grep '^env ' "$WRAP/log"
	refute_output --regexp 'env (HOME|USER|LOGNAME|SUDO_[A-Z]*)='
	assert_output --partial "env CNI_NETNS=/proc/self/fd/3"
	assert_output --partial "env CNI_PATH=$WRAP"
}
