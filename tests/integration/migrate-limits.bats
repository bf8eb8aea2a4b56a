#!/usr/bin/env bats
# Limits and timeouts that hold for long-running daemons (issue 12): the migration's limits are
# on idleness, never on a transfer's whole time; ferryd reads its configuration again on SIGHUP;
# the report's times come from one clock; the destination's own refusals reach the user, word
# for word, in both modes. Two simulated nodes (tests/lib/nodes.sh, tests/lib/migrate.bash);
# only 198.18.0.0/15, only inside the namespaces they make.

load ../lib/common
load ../lib/checkpoint
source "$FERRY_TESTS_DIR/lib/nodes.sh"
load ../lib/migrate

setup_file() {
	mig_file_setup
}

teardown_file() {
	mig_file_teardown ftlim
}

setup() {
	mig_test_setup ftlim
}

teardown() {
	mig_test_teardown
}

# assert_kept_on_source NAME RUN_ID: exit 255, one line, the same process on nodeA only.
assert_kept_on_source() {
	local name=$1 run_id=$2
	assert_ferry_error "migration of '$name' to nodeB failed: .*; the instance (keeps running|runs again) on nodeA$"
	assert_only_on nodeA "$name"
	assert_moves_on "$name" "$run_id"
	assert_runs_once "$name"
}

# assert_one_clock JSON: every phase >= 0 (assert_report) and the downtime within the total.
assert_one_clock() {
	python3 - "$1" <<-'EOF' || fail "report times: $1"
		import json, sys
		r = json.loads(sys.argv[1])
		if not 0 <= r["downtime_ms"] <= r["total_ms"]:
		    sys.exit("downtime %d, total %d" % (r["downtime_ms"], r["total_ms"]))
		if r["restore_ms"] > r["downtime_ms"]:
		    sys.exit("restore %d longer than the downtime %d" % (r["restore_ms"], r["downtime_ms"]))
	EOF
}

# ---------------------------------------------------------------- idle, not total

@test "idle, not total: a diskless migration whose transfer lasts several times 'criu timeout' but never idles goes through" {
	local ct=4 name=$T-slow run_id moved
	mig_up "criu timeout = $ct"
	# 64 MiB at 30 Mbit/s: about 18 s of transfer, bytes moving all along
	on_node nodeA tc qdisc add dev eth0 root tbf rate 30mbit burst 64kb latency 400ms
	mig_launch nodeA "$name" 64
	run_id=$(field_of "$OUT/$name.prog" run)
	mig_migrate nodeA "$name" --to nodeB --mode diskless --json
	[ "$status" -eq 0 ] || fail "the slow migration failed ($status): $stderr"
	assert_report "$output" diskless nodeA nodeB 64
	assert_one_clock "$output"
	# (the premise: the dump and transfer together took longer than the limit)
	moved=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["dump_ms"] + r["transfer_ms"])' "$output")
	echo "# dump + transfer ${moved} ms with 'criu timeout = $ct'; ferry migrate took ${MIG_SECONDS}s" >&3
	[ "$moved" -gt $((ct * 1000)) ] || fail "the transfer took only ${moved} ms: the test proves nothing"
	assert_only_on nodeB "$name"
	assert_moves_on "$name" "$run_id"
	assert_runs_once "$name"
}

@test "idle: a transfer that stalls (nftables drops everything to the destination) fails cleanly, the instance keeps running on nodeA" {
	local ct=4 name=$T-stall run_id
	mig_up "criu timeout = $ct"
	on_node nodeA tc qdisc add dev eth0 root tbf rate 30mbit burst 64kb latency 400ms
	mig_launch nodeA "$name" 64
	run_id=$(field_of "$OUT/$name.prog" run)
	mig_bg nodeA "$name" --to nodeB --mode diskless
	wait_landed nodeB 8
	on_node nodeB nft add table inet ftstall
	on_node nodeB nft add chain inet ftstall in '{ type filter hook input priority -300; policy drop; }'
	on_node nodeB nft add chain inet ftstall out '{ type filter hook output priority -300; policy drop; }'
	# the source gives up once nothing moved for 'criu timeout' (its daemon's bound on its starter:
	# twice that and 2 'peer timeout' (60 s) without a word; the destination's link read:
	# 'criu timeout' + 2 'peer timeout')
	mig_wait $((2 * ct + 60 + 30))
	echo "# ferry migrate returned after ${MIG_SECONDS}s: $stderr" >&3
	assert_kept_on_source "$name" "$run_id"
	on_node nodeB nft delete table inet ftstall
	# the destination gave up too: nothing of it is left running or landed
	local i
	for ((i = 0; i < 600; i++)); do
		[ -z "$(ferryd_starters nodeB)" ] && break
		sleep 0.1
	done
	[ -z "$(ferryd_starters nodeB)" ] || fail "nodeB still runs a starter: $(ferryd_procs nodeB all)"
	assert_stays_only_on nodeA "$name" 2
}

# ---------------------------------------------------------------- SIGHUP

# migrate_nothing NODE: 'ferry migrate' of an instance that does not exist, to the other node:
# which of ferryd's rules answers tells what configuration it uses.
migrate_nothing() {
	run --separate-stderr on "$1" "$FERRY" migrate "$T-none" --to "$(other_node "$1")"
}

@test "SIGHUP: ferryd reads ferry.conf again (a new peer is known at once); a broken file keeps the configuration in use, with one line why" {
	mig_conf
	FERRYD_CONF_PEERS=1 ferryd_start nodeA
	# no peer yet: ferryd refuses to send anything to nodeB
	migrate_nothing nodeA
	assert_ferry_error "no node 'nodeB' is known to ferryd on 'nodeA'"
	conf_set "allow net network = ftmac" "ferryd peer = nodeB=${NODE_IP[nodeB]}:$MIG_PORT" "criu timeout = 7"
	hup_and_wait nodeA "SIGHUP: ferry.conf and the cluster key read again: 1 peers, criu timeout 7 s"
	ferryd_start nodeB
	# nodeB is a peer now: the request goes on to the dump (and there is no such instance)
	migrate_nothing nodeA
	[ "$status" -ne 0 ] || fail "migrating nothing succeeded"
	[[ "$stderr" != *"no node 'nodeB'"* ]] || fail "the new peer is not known: $stderr"
	[[ "$stderr" == *"$T-none"* ]] || fail "the refusal does not name the instance: $stderr"
	# a broken file: the configuration in use stays, and the log says why in one line
	conf_set "ferryd peer = nodeB=${NODE_IP[nodeB]}:$MIG_PORT" "criu timeout = 7" "frobnicate = yes"
	hup_and_wait nodeA "the configuration in use is kept"
	run grep -c "SIGHUP: .*unknown key 'frobnicate'.*; the configuration in use is kept" "${FERRYD_LOG[nodeA]}"
	assert_output 1
	ferryd_alive nodeA || fail "ferryd on nodeA died of a broken ferry.conf"
	# it still knows nodeB (the starter, which reads the file itself, refuses it)
	migrate_nothing nodeA
	[[ "$stderr" != *"no node 'nodeB'"* ]] || fail "after a broken reload ferryd lost its peer: $stderr"
	[[ "$stderr" == *"unknown key 'frobnicate'"* ]] || fail "$stderr"
	# and a good file again is taken
	conf_set "allow net network = ftmac"
	hup_and_wait nodeA "SIGHUP: ferry.conf and the cluster key read again: 0 peers"
	migrate_nothing nodeA
	assert_ferry_error "no node 'nodeB' is known to ferryd on 'nodeA'"
}

# ---------------------------------------------------------------- the destination's refusals

# refused_there MODE NAME: the user already runs as many instances as 'max instances' allows on
# nodeB; migrating NAME there is refused by nodeB's starter, in MODE.
refused_by_limit() {
	local mode=$1 name=$2 run_id
	mig_up "max instances = 1"
	mig_launch nodeA "$name" 16
	run_id=$(field_of "$OUT/$name.prog" run)
	run on nodeB "$FERRY" instance start "$IMG" "$T-squat" sleep 1000
	assert_success
	mig_migrate nodeA "$name" --to nodeB --mode "$mode"
	echo "# $mode: $stderr" >&3
	assert_kept_on_source "$name" "$run_id"
	# nodeB's own reason, word for word
	[[ "$stderr" == *"you already run 1 instances, the limit set in ferry.conf ('max instances')"* ]] ||
		fail "nodeB's refusal does not reach the user: $stderr"
	[[ "$stderr" != *"bad verdict"* ]] || fail "$stderr"
}

@test "refusals, default mode: the destination's instance limit reaches the user word for word; the instance runs on nodeA" {
	refused_by_limit default "$T-lim"
}

@test "refusals, diskless mode: the destination's instance limit reaches the user word for word; the instance keeps running on nodeA" {
	refused_by_limit diskless "$T-lim"
}
