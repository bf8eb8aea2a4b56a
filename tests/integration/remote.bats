#!/usr/bin/env bats
# ferry instance start --node NODE (issue 15): an instance started on another node, as its user,
# through the ferryd of both nodes (src/ferryd/start.c). The start is the user's own there: the
# same starter, the same checks; root on either node never parses the request (the client's
# reader and a child on the peer, each the user for good, do).
#
# On the simulated cluster of tests/lib/nodes.sh: only 198.18.0.0/15, only inside the namespaces
# it makes.

load ../lib/common
load ../lib/checkpoint
source "$FERRY_TESTS_DIR/lib/nodes.sh"
load ../lib/migrate

setup_file() {
	mig_file_setup
}

teardown_file() {
	mig_file_teardown ftrem
}

setup() {
	mig_test_setup ftrem
	mig_up
}

teardown() {
	mig_test_teardown 30
	rm -rf /etc/ferry/network/ftlocal.conflist /run/ferry-test-ftlocal
}

# req_b64 OP [TAG:STRING...]: a request in the starter's wire format (src/lib/request_wire.h),
# base64: op OP, then string records (3 image, 4 instance, 5 cwd, 11 checkpoint, ...).
req_b64() {
	python3 - "$@" <<-'EOF'
		import base64, struct, sys
		rec = lambda t, b: struct.pack("<HI", t, len(b)) + b
		out = b"FERRYRQ1" + rec(1, struct.pack("<I", int(sys.argv[1])))
		for a in sys.argv[2:]:
		    t, v = a.split(":", 1)
		    out += rec(int(t), v.encode())
		print(base64.b64encode(out + rec(0xffff, b"")).decode())
	EOF
}

@test "instance start --node: a checkpointable instance on nodeB, as the user, with the user's environment; it checkpoints there" {
	as_user1 "$FERRY" checkpoint create "$T" >/dev/null
	run --separate-stderr on nodeA env FT_REMOTE_MARK=from-nodeA "$FERRY" instance start --node nodeB \
		--criu-launch "$T" --net --network ftmac --network-args "IP=198.18.1.70/16" --private-tmp \
		"$IMG" "$T" sh -c 'echo "$FT_REMOTE_MARK $(id -u) started" > /tmp/mark; while :; do sleep 1; done'
	[ "$status" -eq 0 ] || fail "instance start --node: $stderr"
	assert_only_on nodeB "$T"
	run on nodeB "$FERRY" exec "instance://$T" cat /tmp/mark
	assert_success
	assert_output "from-nodeA $U1_UID started"
	ferryd_log_has nodeB "$U1's start from nodeA: instance '$T'" || fail "nodeB did not log the start"
	# listed where it runs, from either node
	run --separate-stderr on nodeA "$FERRY" instance list --all-nodes
	assert_success
	assert_line --regexp "^nodeB +$T +[0-9]+ +198\.18\.1\.70/16 "
	run --separate-stderr on nodeA "$FERRY" instance list --json --node nodeB
	assert_success
	[ "$(python3 -c 'import json, sys; print(" ".join(i["instance"] + "@" + i["node"] for i in json.load(sys.stdin)["instances"]))' <<<"$output")" = "$T@nodeB" ] ||
		fail "instance list --json --node nodeB: $output"
	run --separate-stderr on_as nodeA "$U2" "$FERRY" instance list --node nodeB
	assert_success
	refute_output --partial "$T"
	ferryd_log_has nodeA "$U1 starts '$T' on nodeB" || fail "nodeA did not log the start"
	# it is the user's instance there as any other: checkpointed, stopped, restarted by them
	run --separate-stderr on nodeB "$FERRY" checkpoint instance --criu --leave-running "$T"
	[ "$status" -eq 0 ] || fail "checkpoint instance on nodeB: $stderr"
	[ -f "$(ckpt_dir "$U1" "$T")/gen-000001/manifest" ] || fail "no generation"
	run on nodeB "$FERRY" exec "instance://$T" cat /tmp/mark
	assert_output "from-nodeA $U1_UID started"
	# a node that cannot answer is named; the others are listed; the status says so
	on nodeA "$FERRY" instance start "$IMG" "$T-a" sleep 1000 >/dev/null
	ferryd_stop nodeB
	run --separate-stderr on nodeA "$FERRY" instance list --all-nodes
	[ "$status" -eq 255 ] || fail "status $status: $output $stderr"
	[[ "$stderr" == *nodeB* ]] || fail "nodeB is not named: $stderr"
	assert_line --regexp "^nodeA +$T-a +[0-9]+ "
}

@test "instance list --node: a list longer than one message (120 instances on nodeB) comes whole, in text and JSON" {
	local i names n=120
	mig_conf "max instances = 150"
	for ((i = 0; i < n; i++)); do
		on nodeB "$FERRY" instance start "$IMG" "$T-many-$i" sleep 1000 >/dev/null || fail "start $T-many-$i"
	done
	run --separate-stderr on nodeA "$FERRY" instance list --json --node nodeB
	assert_success
	[ "${#output}" -gt $((36 * 1024)) ] || fail "the list is only ${#output} bytes: not longer than one message"
	names=$(python3 -c 'import json, sys; print(" ".join(sorted(i["instance"] for i in json.load(sys.stdin)["instances"] if i["node"] == "nodeB")))' <<<"$output") ||
		fail "not JSON: $(tail -c 200 <<<"$output")"
	[ "$names" = "$(for ((i = 0; i < n; i++)); do echo "$T-many-$i"; done | sort | xargs)" ] || fail "listed: $names"
	run --separate-stderr on nodeA "$FERRY" instance list --node nodeB
	assert_success
	[ "$(grep -c "^nodeB \+$T-many-" <<<"$output")" -eq "$n" ] || fail "text list: $output"
}

@test "instance start --node --criu-restart: a checkpoint made on nodeA restarts on nodeB" {
	as_user1 "$FERRY" checkpoint create "$T" >/dev/null
	run --separate-stderr on nodeA "$FERRY" instance start --criu-launch "$T" --private-tmp "$IMG" "$T" \
		sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done'
	[ "$status" -eq 0 ] || fail "instance start: $stderr"
	sleep 1
	run --separate-stderr on nodeA "$FERRY" checkpoint instance --criu "$T"
	[ "$status" -eq 0 ] || fail "checkpoint instance: $stderr"
	run --separate-stderr on nodeA "$FERRY" instance start --node nodeB --criu-restart "$T"
	[ "$status" -eq 0 ] || fail "restart on nodeB: $stderr"
	assert_only_on nodeB "$T"
	local a b
	a=$(on nodeB "$FERRY" exec "instance://$T" cat /tmp/count)
	sleep 1
	b=$(on nodeB "$FERRY" exec "instance://$T" cat /tmp/count)
	[ "$a" -gt 1 ] && [ "$b" -gt "$a" ] || fail "the restored loop does not go on: $a then $b"
}

@test "instance start --node: the instance has the limits the user's command had on its node, not ferryd's" {
	# the user's shell lowers its limits (as an admin's limits.conf would set them); a start on
	# another node gets those, as a start on this node does, never the daemon's own
	local lim='ulimit -Sn 200; ulimit -Hn 300; ulimit -Su 900; ulimit -Hu 1000; ulimit -Sl 64; ulimit -Hl 128'
	local show='echo "$(ulimit -Sn) $(ulimit -Hn) $(ulimit -Su) $(ulimit -Hu) $(ulimit -Sl) $(ulimit -Hl)"'
	run --separate-stderr on nodeA bash -c "$lim; exec \"\$0\" \"\$@\"" "$FERRY" instance start --node nodeB \
		"$IMG" "$T" sh -c "$show >/tmp/$T.limits; exec sleep 1000"
	[ "$status" -eq 0 ] || fail "instance start --node: $stderr"
	assert_only_on nodeB "$T"
	run on nodeB "$FERRY" exec "instance://$T" cat "/tmp/$T.limits"
	assert_success
	[ "$output" = "200 300 900 1000 64 128" ] || fail "the instance on nodeB has the limits '$output', not the user's '200 300 900 1000 64 128'"
	# a local start of the same command, for comparison
	run --separate-stderr on nodeA bash -c "$lim; exec \"\$0\" \"\$@\"" "$FERRY" instance start \
		"$IMG" "$T-here" sh -c "$show >/tmp/$T-here.limits; exec sleep 1000"
	[ "$status" -eq 0 ] || fail "instance start: $stderr"
	run on nodeA "$FERRY" exec "instance://$T-here" cat "/tmp/$T-here.limits"
	assert_output "200 300 900 1000 64 128"
}

@test "attack: a client that execs a setuid program once it connected gets no start with that program's limits" {
	# the process on ferryd's socket becomes ferry-starter, which sets root's limits before it
	# reads anything (fd 3: a pipe nobody writes); its child then asks for the start. ferryd must
	# not take those limits for the user's: the process is not the user's alone any more
	local start pid
	start=$(req_b64 2 "3:$IMG" "4:$T" "5:/" "8:sleep" "8:1000")
	run on nodeA timeout 60 bash -c 'ulimit -u 1000; exec python3 "$0" local handoff "$1" msg type=start to=nodeB "req_a=$2" recv' \
		"$WIRE" "$STARTER" "$start"
	pid=$(sed -n 's/^handed off //p' <<<"$output")
	echo "# $(grep -v '^handed off' <<<"$output" | head -n 3 | tr '\n' ' ')" >&3
	[ -n "$pid" ] || fail "the hand-off did not happen: $output"
	assert_output --partial "no longer yours alone"
	! listed_on nodeB "$T" || fail "an instance was started with the setuid program's limits"
}

@test "instance start --node: what fails there is said in one line, with the starter's status; nothing is left on either node" {
	run --separate-stderr on nodeA "$FERRY" instance start --node nodeB /nonexistent.sif "$T" true
	assert_ferry_error "/nonexistent.sif" 255
	run --separate-stderr on nodeA "$FERRY" instance start --node nodeZ "$IMG" "$T" true
	assert_ferry_error "^ferry: no node 'nodeZ' is known to ferryd on 'nodeA'$"
	run --separate-stderr on nodeA "$FERRY" instance start --node nodeA "$IMG" "$T" true
	assert_ferry_error "^ferry: 'nodeA' is this node: start the instance without --node$"
	run --separate-stderr on nodeA "$FERRY" instance start --node nodeB --page-server 7000 --criu-restart "$T" "$IMG" "$T"
	assert_ferry_error "^ferry: --node and --page-server exclude each other"
	# a network the user may not join: the policy of nodeB's starter
	run --separate-stderr on nodeA "$FERRY" instance start --node nodeB --net --network-args "IP=10.9.9.9/8" \
		--network ftmac "$IMG" "$T" true
	assert_ferry_error "10\.9\.9\.9" 255
	# an environment too large for a start on another node
	run --separate-stderr on nodeA env FT_BIG="$(head -c 50000 /dev/zero | tr '\0' x)" "$FERRY" \
		instance start --node nodeB "$IMG" "$T" true
	assert_ferry_error "^ferry: the start request is [0-9]+ bytes, more than a start on another node takes \(40960\): .*--cleanenv"
	ferryd_stop nodeA
	run --separate-stderr on nodeA "$FERRY" instance start --node nodeB "$IMG" "$T" true
	assert_ferry_error "^ferry: --node needs ferryd on this node"
	! listed_on nodeA "$T" && ! listed_on nodeB "$T" || fail "an instance was left"
}

@test "attack: a start request is the sender's own: another user's checkpoint, another op, a forged peer message are refused" {
	# user 2 launches into user 1's checkpoint on nodeB: nodeB's starter, as user 2, refuses
	as_user1 "$FERRY" checkpoint create "$T" >/dev/null
	run --separate-stderr on_as nodeA "$U2" "$FERRY" instance start --node nodeB \
		--criu-launch "$(ckpt_dir "$U1" "$T")" "$IMG" "$T" true
	[ "$status" -ne 0 ] || fail "user 2 launched into user 1's checkpoint"
	[[ "$stderr" == "ferry: "*"$(ckpt_dir "$U1" "$T")"* ]] || fail "not refused for the checkpoint: $stderr"
	! listed_on nodeB "$T" "$U2" || fail "user 2's instance runs"
	# a raw start request of another op (a checkpoint delete): the reader refuses it
	local del
	del=$(req_b64 6 "11:$(ckpt_dir "$U1" "$T")" "5:/")
	run on_as nodeA "$U2" python3 "$WIRE" local msg type=start to=nodeB "req_a=$del" recv
	assert_output --partial "a start on another node is an 'instance start'"
	[ -d "$(ckpt_dir "$U1" "$T")" ] || fail "user 1's checkpoint is gone"
	# bytes that are no request; a blob with a gap
	run on_as nodeA "$U2" python3 "$WIRE" local msg type=start to=nodeB "req_a=AAAA" recv
	assert_output --partial "invalid request"
	run on_as nodeA "$U2" python3 "$WIRE" local msg type=start to=nodeB "req_a=QUJD" "req_c=QUJD" recv
	assert_output --partial "after a missing one"
	# a peer message (under the cluster key) that names user 2 with user 1's uid: nodeB refuses
	local start
	start=$(req_b64 2 "3:$IMG" "4:$T" "5:/" "8:true")
	run on_node nodeA python3 "$WIRE" peer "${NODE_IP[nodeB]}:$MIG_PORT" /etc/ferry/cluster.key \
		msg type=start id=0123456789ab "uid=$U1_UID" "user=$U2" "req_a=$start" recv
	assert_output --partial "uid $U1_UID is '$U1' here, not '$U2'"
	! listed_on nodeB "$T" && ! listed_on nodeB "$T" "$U2" || fail "an instance was started"
}

@test "ferry-rsh: the launcher agent in an instance starts a daemonizing command as a checkpointable instance on the node its host maps to, and on its own node" {
	as_user1 "$FERRY" checkpoint create "$T" >/dev/null
	local rsh=/.ferry/criu/ferry-rsh
	# h3's address is outside the admin's range (198.18.1.0/24): its start fails on nodeB
	run --separate-stderr on nodeA "$FERRY" instance start --criu-launch "$T" --net --network ftmac \
		--network-args "IP=198.18.1.71/16" --private-tmp \
		--env "FERRY_RSH_HOSTS=h1:nodeB:198.18.1.72/16, h2:nodeA:198.18.1.73/16, h3:nodeB:198.18.3.74/16" \
		--env FERRY_RSH_NETWORK=ftmac \
		"$IMG" "$T" sh -c "for h in h1 h2; do $rsh -x \$h '(sleep 1000 &)' ';' echo daemon on '\$(hostname)' >>/tmp/rsh 2>&1; echo \"rc=\$?\" >>/tmp/rsh; done; for h in h9 h3; do $rsh \$h true >>/tmp/rsh 2>&1; echo \"rc=\$?\" >>/tmp/rsh; done; sleep 1000"
	[ "$status" -eq 0 ] || fail "instance start: $stderr"
	wait_for on nodeA "$FERRY" exec "instance://$T" grep -q "rc=.*rc=.*rc=.*rc=" /tmp/rsh -z || true
	run on nodeA "$FERRY" exec "instance://$T" cat /tmp/rsh
	assert_line --index 0 "rc=0"
	assert_line --index 1 "rc=0"
	assert_line --index 2 --regexp "^ferry-rsh: no node 'h9' is known to ferryd on 'nodeA'$"
	assert_line --index 3 "rc=255"
	assert_line --index 4 --partial "198.18.3.74"
	assert_line --index 5 --regexp "^rc=[1-9]"
	# a launch refused, or whose start failed, leaves no checkpoint directory behind
	[ ! -e "$(ckpt_dir "$U1" "$T-h9")" ] || fail "a refused launch left $(ckpt_dir "$U1" "$T-h9")"
	wait_for sh -c "[ ! -e '$(ckpt_dir "$U1" "$T-h3")' ]" ||
		fail "a failed launch left $(ckpt_dir "$U1" "$T-h3")"
	! listed_on nodeB "$T-h3" || fail "h3 started"
	# what the daemons' commands said is in their instances' logs
	grep -qx "daemon on h1" "$(inst_field nodeB "$T-h1" logOutPath)" || fail "h1's log: $(cat "$(inst_field nodeB "$T-h1" logOutPath)")"
	grep -qx "daemon on h2" "$(inst_field nodeA "$T-h2" logOutPath)" || fail "h2's log"
	# the daemons live on after their command ended (--wait-all), as the user, at their addresses
	assert_only_on nodeB "$T-h1"
	assert_only_on nodeA "$T-h2"
	[ "$(inst_field nodeB "$T-h1" ip)" = 198.18.1.72/16 ] || fail "h1's address: $(inst_field nodeB "$T-h1" ip)"
	run on nodeB "$FERRY" exec "instance://$T-h1" sh -c 'hostname; ls /tmp/rsh 2>&1; ps -o user,args | grep -c "[s]leep 1000"'
	assert_output "h1
ls: /tmp/rsh: No such file or directory
1"
	# each is checkpointable, into a checkpoint of its own name
	run --separate-stderr on nodeB "$FERRY" checkpoint instance --criu --leave-running "$T-h1"
	[ "$status" -eq 0 ] || fail "checkpoint of $T-h1: $stderr"
	[ -f "$(ckpt_dir "$U1" "$T-h1")/gen-000001/manifest" ] || fail "no generation for $T-h1"
}

@test "ferry-rsh: hosts without an address get one from the network's IPAM (host-local, its leases on a filesystem the nodes share): distinct, kept by a migration" {
	local conf=/etc/ferry/network/ftlocal.conflist data=/run/ferry-test-ftlocal
	rm -rf "$data"
	cat >"$conf" <<-JSON
		{"cniVersion": "1.0.0", "name": "ftlocal",
		 "plugins": [{"type": "macvlan", "master": "eth0", "mode": "bridge",
		              "ipam": {"type": "host-local", "dataDir": "$data",
		                       "ranges": [[{"subnet": "198.18.0.0/16", "rangeStart": "198.18.2.10",
		                                    "rangeEnd": "198.18.2.50"}]]}}]}
	JSON
	chmod 0644 "$conf"
	mig_conf "allow net network = ftlocal" "allow net ip range = 198.18.2.0/24"
	# (the daemons' own policy too: a migration's destination checks the network)
	hup_and_wait nodeA "SIGHUP: ferry.conf and the cluster key read again"
	hup_and_wait nodeB "SIGHUP: ferry.conf and the cluster key read again"
	as_user1 "$FERRY" checkpoint create "$T" >/dev/null
	local rsh=/.ferry/criu/ferry-rsh
	run --separate-stderr on nodeA "$FERRY" instance start --criu-launch "$T" --private-tmp \
		--env "FERRY_RSH_HOSTS=h1:nodeB h2:nodeA h3:nodeB" --env FERRY_RSH_NETWORK=ftlocal \
		"$IMG" "$T" sh -c "for h in h1 h2 h3; do $rsh \$h 'sleep 1000 &' >>/tmp/rsh 2>&1; echo \"rc=\$?\" >>/tmp/rsh; done; sleep 1000"
	[ "$status" -eq 0 ] || fail "instance start: $stderr"
	wait_for listed_on nodeB "$T-h3" || fail "h3 did not start: $(on nodeA "$FERRY" exec "instance://$T" cat /tmp/rsh)"
	local a1 a2 a3
	a1=$(inst_field nodeB "$T-h1" ip) a2=$(inst_field nodeA "$T-h2" ip) a3=$(inst_field nodeB "$T-h3" ip)
	for a in "$a1" "$a2" "$a3"; do
		[[ "$a" =~ ^198\.18\.2\.([0-9]+)/16$ ]] && [ "${BASH_REMATCH[1]}" -ge 10 ] && [ "${BASH_REMATCH[1]}" -le 50 ] ||
			fail "an address outside the network's range: '$a' ($a1 $a2 $a3)"
	done
	[ "$a1" != "$a2" ] && [ "$a1" != "$a3" ] && [ "$a2" != "$a3" ] || fail "addresses given twice: $a1 $a2 $a3"
	# a migration keeps the address the IPAM gave
	run --separate-stderr on nodeB "$FERRY" migrate "$T-h1" --to nodeA
	[ "$status" -eq 0 ] || fail "migrate h1: $stderr"
	assert_only_on nodeA "$T-h1"
	[ "$(inst_field nodeA "$T-h1" ip)" = "$a1" ] || fail "h1 came back as $(inst_field nodeA "$T-h1" ip), not $a1"
}

@test "ferry-rsh: an instance started before its node's ferryd was restarted reaches the new ferryd" {
	as_user1 "$FERRY" checkpoint create "$T" >/dev/null
	local rsh=/.ferry/criu/ferry-rsh go=$U1_TMP/go-rsh
	# the launcher waits for the word, given once nodeA's ferryd is a new one
	run --separate-stderr on nodeA "$FERRY" instance start --criu-launch "$T" --net --network ftmac \
		--network-args "IP=198.18.1.77/16" --private-tmp \
		--env "FERRY_RSH_HOSTS=h1:nodeB:198.18.1.78/16" --env FERRY_RSH_NETWORK=ftmac \
		--bind "$U1_TMP:/word" "$IMG" "$T" \
		sh -c "while [ ! -e /word/go-rsh ]; do sleep 0.1; done; $rsh h1 'sleep 1000 &' >/tmp/rsh 2>&1; echo \"rc=\$?\" >>/tmp/rsh; sleep 1000"
	[ "$status" -eq 0 ] || fail "instance start: $stderr"
	ferryd_stop nodeA
	mv "${FERRYD_LOG[nodeA]}" "${FERRYD_LOG[nodeA]}.first"
	ferryd_start nodeA
	as_user1 touch "$go"
	wait_for on nodeA "$FERRY" exec "instance://$T" grep -q "rc=" /tmp/rsh || true
	run on nodeA "$FERRY" exec "instance://$T" cat /tmp/rsh
	assert_output "rc=0"
	wait_for listed_on nodeB "$T-h1" || fail "h1 did not start on nodeB"
	ferryd_log_has nodeA "$U1 starts '$T-h1' on nodeB" || fail "the new ferryd on nodeA did not start it"
}
