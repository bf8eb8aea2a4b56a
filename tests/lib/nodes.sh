#!/usr/bin/env bash
# nodes.sh — a small simulated cluster on one machine, for tests and benchmarks.
#
#   network namespaces nodeA, nodeB (compute nodes) and peer (a host outside the job),
#   each with an eth0 joined by veth pairs to a bridge in namespace ftfabric.
#   Addresses (only 198.18.0.0/15, only inside these namespaces):
#     nodeA 198.18.0.1/16, nodeB 198.18.0.2/16, peer 198.18.0.3/16;
#     instances get addresses in 198.18.1.0/24 on a macvlan of their node's eth0.
#
# Use: source it, then nodes_up / nodes_down (idempotent; nodes_down also cleans up after a
# failed run), on_node NODE CMD... runs CMD in that node's network namespace.
# LINK_RATE (e.g. 1gbit) shapes every node's link in both directions with tbf.

# NODES_PREFIX (default none) prefixes every namespace name, so that a benchmark's cluster and a
# test's can exist side by side (each on its own bridge; the addresses repeat, the namespaces
# keep them apart): with NODES_PREFIX=b, the nodes are bnodeA, bnodeB, bpeer.
NODES=("${NODES_PREFIX:-}nodeA" "${NODES_PREFIX:-}nodeB" "${NODES_PREFIX:-}peer")
FABRIC=${NODES_PREFIX:-}ftfabric
declare -gA NODE_IP=(["${NODES[0]}"]=198.18.0.1 ["${NODES[1]}"]=198.18.0.2 ["${NODES[2]}"]=198.18.0.3)

nodes_down() {
	local n
	for n in "${NODES[@]}" "$FABRIC"; do
		if ip netns list | grep -qw "^$n"; then
			# processes left in a node (a failed test's daemons) would keep it alive
			ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
			ip netns del "$n" 2>/dev/null || true
		fi
	done
}

nodes_up() {
	nodes_down
	ip netns add "$FABRIC"
	ip -n "$FABRIC" link add br0 type bridge
	ip -n "$FABRIC" link set br0 up
	ip -n "$FABRIC" link set lo up
	local n
	for n in "${NODES[@]}"; do
		ip netns add "$n"
		ip link add "ft-$n" netns "$n" type veth peer name "v-$n" netns "$FABRIC"
		ip -n "$FABRIC" link set "v-$n" master br0 up
		ip -n "$n" link set "ft-$n" name eth0
		ip -n "$n" link set eth0 up
		ip -n "$n" link set lo up
		ip -n "$n" addr add "${NODE_IP[$n]}/16" dev eth0
		if [ -n "${LINK_RATE:-}" ] && [ "$LINK_RATE" != unlimited ]; then
			# tbf shapes egress only: shape both ends of the link
			ip netns exec "$n" tc qdisc add dev eth0 root tbf rate "$LINK_RATE" burst 256kb latency 50ms
			ip netns exec "$FABRIC" tc qdisc add dev "v-$n" root tbf rate "$LINK_RATE" burst 256kb latency 50ms
		fi
	done
}

# write_test_network FILE [NAME SUBNET]: the tests' macvlan network NAME (default 'ftmac', static
# IPAM) on each node's eth0, on SUBNET (default the nodes' subnet; the "subnet" is ferry's: the
# addresses users may choose are on it).
write_test_network() {
	cat >"$1" <<-JSON
		{"cniVersion": "1.0.0", "name": "${2:-ftmac}",
		 "plugins": [{"type": "macvlan", "master": "eth0", "mode": "bridge",
		              "ipam": {"type": "static", "subnet": "${3:-198.18.0.0/16}"}}]}
	JSON
	chmod 0644 "$1"
}

# write_bridge_network FILE NAME SUBNET DATADIR: a conflist FILE of network NAME: a bridge
# NAME0 on the node (no gateway), host-local IPAM handing out SUBNET, its leases in DATADIR.
write_bridge_network() {
	cat >"$1" <<-JSON
		{"cniVersion": "1.0.0", "name": "$2",
		 "plugins": [{"type": "bridge", "bridge": "${2}0", "isGateway": false,
		              "ipam": {"type": "host-local", "subnet": "$3", "dataDir": "$4"}}]}
	JSON
	chmod 0644 "$1"
}

on_node() {
	local n=$1
	shift
	ip netns exec "$n" "$@"
}
