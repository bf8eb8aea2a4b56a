#!/usr/bin/env bats
# Migration between nodes (issue 5): ferryd on every node and 'ferry migrate', in the default
# mode (checkpoint into the shared directory, restart on the destination) and the diskless mode
# (pages straight into the destination's tmpfs through CRIU's page server, the rest streamed).
#
# The cluster is tests/lib/nodes.sh: network namespaces nodeA, nodeB and peer on a bridge; one
# ferryd per compute node, run here in the foreground as root; instances on a macvlan network
# of their node (ftmac); only 198.18.0.0/15, only inside those namespaces. The workload is
# tests/workloads/stateful.c (it checks its own memory and counts steps) with a TCP stream
# (tests/workloads/tcpstream.c) to a server in peer.

load ../lib/common
load ../lib/checkpoint
source "$FERRY_TESTS_DIR/lib/nodes.sh"
load ../lib/migrate

setup_file() {
	mig_file_setup
}

teardown_file() {
	mig_file_teardown ftmig
}

setup() {
	# each test's instances and checkpoints are ftmig-<test number>-...
	mig_test_setup ftmig
	IPB=198.18.1.$((100 + BATS_TEST_NUMBER)) # this test's instance address
	PORT=$((7600 + BATS_TEST_NUMBER))
}

teardown() {
	mig_test_teardown
}

# mig_up [SETTING...]: ferry.conf (see mig_conf), then both ferryd.
# One way, then back, in MODE, with the report as JSON one way and as a table the other.
round_trip() {
	local mode=$1 name=$T-rt mb=64 run_id to from at json id downtime bytes i
	mig_up
	mig_launch nodeA "$name" "$mb" --net "$IPB" --tcp "$PORT"
	log_follow "$name"
	run_id=$(field_of "$OUT/$name.prog" run)
	for to in nodeB nodeA; do
		from=$(other_node "$to")
		at=$(num "$OUT/$name.srv")
		if [[ ("$to" = nodeB && "$mode" != diskless) || ("$to" = nodeA && "$mode" = diskless) ]]; then
			json=--json
		else
			json=
		fi
		# shellcheck disable=SC2086
		mig_migrate "$from" "$name" --to "$to" --mode "$mode" $json
		[ "$status" -eq 0 ] || fail "migrate $from -> $to ($mode) failed ($status): $stderr"
		[ -z "$stderr" ] || fail "stderr of a successful migration: $stderr"
		if [ -n "$json" ]; then
			assert_report "$output" "$mode" "$from" "$to" "$mb"
			id=$(json_field "$output" id)
			downtime=$(json_field "$output" downtime_ms)
			bytes=$(json_field "$output" bytes)
		else
			assert_report_table "$output" "$mode"
			id=$(sed -nE 's/.*, migration ([0-9a-f]{12})$/\1/p' <<<"$output")
			downtime=$(awk '$1 == "downtime" {print $2}' <<<"$output")
			bytes=$(awk '$1 == "bytes" {print $3}' <<<"$output")
			[ "$downtime" -ge 0 ] || fail "downtime $downtime"
		fi
		echo "# $mode $from -> $to: downtime ${downtime} ms, ${bytes} B, ferry migrate took ${MIG_SECONDS}s" >&3
		# both daemons logged it under the migration's id
		ferryd_log_has "$from" "$id: $U1 asks to move '$name' to $to ($mode)" || fail "no request logged on $from"
		ferryd_log_has "$to" "$id: receiving '$name' of $U1 from $from ($mode)" || fail "no reception logged on $to"
		# the same process goes on: same run id, more steps, memory intact; only on the destination
		assert_only_on "$to" "$name"
		assert_moves_on "$name" "$run_id"
		assert_runs_once "$name"
		# as the same user, inside too, with the same address
		run on "$to" "$FERRY" exec "instance://$name" id -u
		assert_output "$U1_UID"
		run on "$to" "$FERRY" exec "instance://$name" ip -o addr show eth0
		assert_output --partial "inet $IPB/16"
		# the TCP connection to peer goes on, on the same connection (tcpstream fails on a reconnect)
		wait_ok "$OUT/$name.srv" $((at + 20)) 30
	done
	# every step once, in order, across both moves (the log is written anew at each restart);
	# at least 20 of them: the two moves may have taken less than 2 s of the workload's time
	wait_step "$OUT/$name.prog" 20 20
	wait_followed "$name"
	assert_consecutive "$BATS_TEST_TMPDIR/$name.steps"
	[ "$(head -n1 "$BATS_TEST_TMPDIR/$name.steps" | awk '{print $2}')" = 1 ] ||
		fail "the steps do not start at 1: $(head -n1 "$BATS_TEST_TMPDIR/$name.steps")"
	[ "$(grep -c '^step' "$BATS_TEST_TMPDIR/$name.steps")" -ge 20 ] || fail "too few steps seen"
	! grep -q FAIL "$OUT/$name.srv" "$OUT/$name.cli" || fail "TCP stream: $(cat "$OUT/$name.srv" "$OUT/$name.cli")"
	# it kept its own checkpoint (not the migrations' directories, which are gone): the user's
	# own dump on its new node goes there
	run --separate-stderr on nodeA "$FERRY" checkpoint instance --criu --leave-running "$name"
	[ "$status" -eq 0 ] || fail "a dump after the migrations failed ($status): $stderr"
	assert_output --regexp "^$(ckpt_dir "$U1" "$name")/gen-[0-9]{6}\$"
	# the user stops it on the node where it runs now
	run on nodeA "$FERRY" instance stop "$name"
	assert_success
}

@test "default mode: a stateful workload with a TCP stream moves nodeA -> nodeB -> nodeA and goes on exactly" {
	round_trip default
	# the checkpoints were the user's, in the shared directory, in a directory of root's there
	# (issue 11, F2), and are gone once the migrations are done (F11)
	ferryd_log_has nodeA "dumps into '$MIG_SHARED/$U1_UID/$T-rt-" || fail "no dump into the shared directory logged"
	run stat -c %U:%a "$MIG_SHARED/$U1_UID"
	assert_output "root:711"
}

@test "diskless mode: a stateful workload with a TCP stream moves nodeA -> nodeB -> nodeA and goes on exactly" {
	round_trip diskless
	# it landed in the tmpfs of each destination, in a directory of the migration's in the
	# user's, which is root's (issue 11, F2); the migration's own is gone once it is done (F11)
	run stat -c %U:%a "$MIG_TMPFS-nodeB/$U1_UID" "$MIG_TMPFS-nodeA/$U1_UID"
	assert_output "root:711
root:711"
}

@test "diskless, security: the destination's page server is the user's with CAP_CHECKPOINT_RESTORE alone, pid 1 of a pid namespace of its own" {
	local name=$T-ps watch=$BATS_TEST_TMPDIR/watch run
	mig_up
	mig_launch nodeA "$name" 32
	run=$(field_of "$OUT/$name.prog" run)
	criu_watch "$watch"
	mig_migrate nodeA "$name" --to nodeB --mode diskless
	touch "$watch.stop"
	wait "$CRIU_WATCH"
	[ "$status" -eq 0 ] || fail "diskless migration failed ($status): $stderr"
	sed 's/^/# /' "$watch" >&3
	assert_own_pidns "$watch" page-server "page server"
	assert_only_on nodeB "$name"
	assert_moves_on "$name" "$run"
}

@test "diskless: memory that compresses goes compressed, memory that does not goes raw, both exact; 'compress pages = no' sends it raw" {
	local z=$T-z r=$T-r pb ps zrun rrun
	mig_up
	mig_launch nodeA "$z" 64 --compressible
	mig_launch nodeA "$r" 64
	zrun=$(field_of "$OUT/$z.prog" run) rrun=$(field_of "$OUT/$r.prog" run)
	mig_migrate nodeA "$z" --to nodeB --mode diskless --json
	[ "$status" -eq 0 ] || fail "migrate $z failed ($status): $stderr"
	pb=$(json_field "$output" pages_bytes) ps=$(json_field "$output" pages_sent)
	echo "# compressible: $pb B of pages sent as $ps B" >&3
	[ "$pb" -ge $((64 << 20)) ] || fail "only $pb B of pages for 64 MiB: $output"
	[ "$ps" -lt $((pb / 3)) ] || fail "compressible pages went as $ps of $pb B"
	assert_only_on nodeB "$z"
	assert_moves_on "$z" "$zrun"
	mig_migrate nodeA "$r" --to nodeB --mode diskless --json
	[ "$status" -eq 0 ] || fail "migrate $r failed ($status): $stderr"
	pb=$(json_field "$output" pages_bytes) ps=$(json_field "$output" pages_sent)
	echo "# random: $pb B of pages sent as $ps B" >&3
	[ "$pb" -ge $((64 << 20)) ] || fail "only $pb B of pages for 64 MiB: $output"
	[ "$ps" -ge $((pb * 95 / 100)) ] || fail "random pages went as $ps of $pb B: they cannot compress"
	assert_only_on nodeB "$r"
	assert_moves_on "$r" "$rrun"
	# the sending node says no: the same compressible memory goes raw, in the table too
	mig_conf "compress pages = no"
	mig_migrate nodeB "$z" --to nodeA --mode diskless
	[ "$status" -eq 0 ] || fail "migrate $z back failed ($status): $stderr"
	echo "$output" | grep -E '^  compression ' >&3
	grep -qE '^  compression +[0-9]+ B of pages sent as [0-9]+ B \(1\.00x\)$' <<<"$output" ||
		fail "not sent raw with 'compress pages = no': $output"
	assert_only_on nodeA "$z"
	assert_moves_on "$z" "$zrun"
	run on nodeA "$FERRY" instance stop "$z"
	run on nodeB "$FERRY" instance stop "$r"
}

@test "live mode: a stateful workload with a TCP stream moves nodeA -> nodeB -> nodeA and goes on exactly" {
	round_trip live
	# the destination took it as a live migration (its report's page counts: assert_report)
	ferryd_log_has nodeB "receiving '$T-rt' of $U1 from nodeA (live)" || fail "no live reception logged"
}

@test "a private /tmp moves with the instance in every mode: nodeA -> nodeB (default) -> nodeA (diskless) -> nodeB (live)" {
	mig_up
	local name=$T-ptmp run_id from=nodeA to=nodeB mode t
	mig_launch nodeA "$name" 32 --private-tmp
	run_id=$(field_of "$OUT/$name.prog" run)
	# what an MPI stack leaves there: a session directory, a file, a FIFO, a link (made by a
	# process that ends before the dumps: the files are the instance's, not the process's)
	run on nodeA "$FERRY" exec "instance://$name" sh -c \
		'mkdir -p /tmp/ompi.s/1 && echo session >/tmp/ompi.s/1/f && mkfifo /tmp/ompi.s/fifo && ln -s 1/f /tmp/ompi.s/l'
	assert_success
	[ ! -e /tmp/ompi.s ] || fail "the instance's /tmp is the host's"
	for mode in default diskless live; do
		echo "tick $mode" | on "$from" "$FERRY" exec "instance://$name" sh -c 'cat >>/tmp/ompi.s/1/f'
		mig_migrate "$from" "$name" --to "$to" --mode "$mode"
		[ "$status" -eq 0 ] || fail "$mode migration $from -> $to failed ($status): $stderr"
		assert_only_on "$to" "$name"
		assert_moves_on "$name" "$run_id"
		run on "$to" "$FERRY" exec "instance://$name" sh -c 'cat /tmp/ompi.s/1/f; stat -c %F /tmp/ompi.s/fifo; readlink /tmp/ompi.s/l'
		assert_success
		t=$(printf 'tick %s\n' default diskless live | sed "/tick $mode/q")
		assert_output "session
$t
fifo
1/f"
		t=$from from=$to to=$t
	done
	run on "$from" "$FERRY" instance stop "$name"
	assert_success
}

# ---------------------------------------------------------------- failures

# assert_where_reported NAME RUN_ID: after a disturbed migration: exactly one copy runs, where
# ferry migrate said: exit 0 and on nodeB, or exit 255 ("keeps running" / "runs again on nodeA")
# and on nodeA.
assert_where_reported() {
	local name=$1 run_id=$2 a=no b=no c
	listed_on nodeA "$name" && a=yes
	listed_on nodeB "$name" && b=yes
	c=$(workload_count "$name")
	[ "$c" = 1 ] || fail "'$name' runs $c times (listed on nodeA: $a, on nodeB: $b); ferry migrate: exit $status, '$stderr'"
	if [ "$status" -eq 0 ]; then
		[ "$a$b" = noyes ] || fail "ferry migrate succeeded, but '$name' is listed on nodeA: $a, on nodeB: $b"
	else
		assert_ferry_error "(keeps running|runs again) on nodeA$"
		[ "$a$b" = yesno ] || fail "ferry migrate said '$stderr', but '$name' is listed on nodeA: $a, on nodeB: $b"
	fi
	assert_moves_on "$name" "$run_id"
	assert_runs_once "$name"
}

# assert_kept_on_source NAME RUN_ID: after a failed migration: exit 255, one line saying so, and
# the same process still running (only) on nodeA.
assert_kept_on_source() {
	local name=$1 run_id=$2
	assert_ferry_error "migration of '$name' to nodeB failed: .*; the instance (keeps running|runs again) on nodeA$"
	assert_only_on nodeA "$name"
	assert_moves_on "$name" "$run_id"
	assert_runs_once "$name"
}

@test "failure: the destination ferryd, with all it runs, killed during a diskless transfer: the instance keeps running on nodeA" {
	mig_up
	on_node nodeA tc qdisc add dev eth0 root tbf rate 200mbit burst 64kb latency 100ms
	local name=$T-kill run_id
	mig_launch nodeA "$name" 256
	run_id=$(field_of "$OUT/$name.prog" run)
	mig_bg nodeA "$name" --to nodeB --mode diskless
	wait_landed nodeB 24
	# what stopping the service does: the daemon, its connection handlers, their starters and CRIU
	local starters
	starters=$(ferryd_starters nodeB)
	ferryd_kill nodeB all
	mig_wait 60
	echo "# ferry migrate returned after ${MIG_SECONDS}s: $stderr" >&3
	assert_kept_on_source "$name" "$run_id"
	# shellcheck disable=SC2086
	wait_pids_gone 10 $starters
	assert_only_on nodeA "$name"
}

@test "failure: the destination's ferryd processes killed mid-transfer: the report says where the instance runs" {
	# Only the processes named ferryd (the daemon and its connection handler) die, as with
	# 'kill -9' of the daemon: what it already started may finish the move. Either way ferry
	# migrate must tell the truth: exit 0 and the instance on nodeB, or exit 255, "keeps running
	# on nodeA" and the instance on nodeA; never one copy on each node, nor none.
	mig_up
	on_node nodeA tc qdisc add dev eth0 root tbf rate 200mbit burst 64kb latency 100ms
	local name=$T-kd run_id
	mig_launch nodeA "$name" 256
	run_id=$(field_of "$OUT/$name.prog" run)
	mig_bg nodeA "$name" --to nodeB --mode diskless
	wait_landed nodeB 24
	local starters
	starters=$(ferryd_starters nodeB)
	[ -n "$starters" ] || fail "no starter of ferryd's on nodeB"
	ferryd_kill nodeB
	mig_wait 90
	echo "# ferry migrate: exit $status after ${MIG_SECONDS}s: $stderr" >&3
	# whatever the destination's starter still does (without a commit it stops its copy after
	# 'peer timeout', 30 s)
	# shellcheck disable=SC2086
	wait_pids_gone 60 $starters
	assert_where_reported "$name" "$run_id"
}

@test "failure, default mode: the destination's ferryd processes killed while it restarts: the report says where the instance runs" {
	# as above, while the destination's starter restores from the shared directory
	mig_up
	local name=$T-kr run_id
	mig_launch nodeA "$name" 256
	run_id=$(field_of "$OUT/$name.prog" run)
	mig_bg nodeA "$name" --to nodeB --mode default
	wait_ferryd_runs nodeB ferry-starter 30
	local starters
	starters=$(ferryd_starters nodeB)
	ferryd_kill nodeB
	mig_wait 60
	echo "# ferry migrate: exit $status after ${MIG_SECONDS}s: $stderr" >&3
	# whatever the destination's starter still does (without a commit it stops its copy after
	# 'peer timeout', 30 s)
	# shellcheck disable=SC2086
	wait_pids_gone 60 $starters
	assert_where_reported "$name" "$run_id"
}

@test "failure: the link to the destination cut mid-transfer: the source gives up within 'criu timeout', the instance keeps running on nodeA" {
	local ct=5
	mig_up "criu timeout = $ct"
	on_node nodeA tc qdisc add dev eth0 root tbf rate 200mbit burst 64kb latency 100ms
	local name=$T-cut run_id t0 s
	mig_launch nodeA "$name" 256
	run_id=$(field_of "$OUT/$name.prog" run)
	mig_bg nodeA "$name" --to nodeB --mode diskless
	wait_landed nodeB 24
	ip -n nodeB link set eth0 down
	t0=$EPOCHREALTIME
	# frozen for the dump, then thawed when the dump gives up
	s=$(step_of "$OUT/$name.prog")
	wait_step "$OUT/$name.prog" $((s + 3)) $((ct + 15))
	echo "# the workload ran again on nodeA $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')s after the cut" >&3
	# ferry migrate ends too, within the daemons' bounds (the starter's 2 'criu timeout' + 2 'peer
	# timeout', 60 s by default)
	mig_wait $((2 * ct + 60 + 15))
	echo "# ferry migrate returned ${MIG_SECONDS}s after it started: $stderr" >&3
	assert_kept_on_source "$name" "$run_id"
	# the link comes back: nothing starts late on nodeB
	ip -n nodeB link set eth0 up
	assert_stays_only_on nodeA "$name" 2
}

# slow_and_wait_receiving NAME: nodeA's link slowed (100 Mbit/s) and 'ferry migrate' of NAME
# started in the background, until nodeB began to receive it: past the check before the freeze
# (src/ferryd/fit.c), with seconds of transfer ahead.
slow_and_wait_receiving() {
	on_node nodeA tc qdisc add dev eth0 root tbf rate 100mbit burst 64kb latency 100ms
	mig_bg nodeA "$1" --to nodeB --mode diskless --json
	wait_for ferryd_log_has nodeB "receiving '$1'" || fail "nodeB did not begin to receive '$1'"
}

@test "failure: the destination's tmpfs fills up during the transfer: the diskless migration fails, the instance keeps running on nodeA, the message says why" {
	mkdir -p "$MIG_SMALL"
	chmod 0755 "$MIG_SMALL"
	mount -t tmpfs -o size=128m,mode=0755 ft-migrate-small "$MIG_SMALL"
	mig_conf
	ferryd_start nodeA
	ferryd_start nodeB --tmpfs-dir "$MIG_SMALL/mig"
	local name=$T-tmpfs run_id
	mig_launch nodeA "$name" 64
	run_id=$(field_of "$OUT/$name.prog" run)
	# it fits when asked; then something else takes the tmpfs
	slow_and_wait_receiving "$name"
	head -c 120M /dev/zero >"$MIG_SMALL/filler" || true
	mig_wait 200
	rm -f "$MIG_SMALL/filler"
	echo "# $stderr" >&3
	assert_kept_on_source "$name" "$run_id"
	# nothing half-received is left taking the destination's memory
	local used
	used=$(df --output=used -k "$MIG_SMALL" | tail -n1 | tr -d ' ')
	[ "$used" -lt 1024 ] || fail "$used KB left in the destination's tmpfs: $(find "$MIG_SMALL" -ls)"
	# the user learns that the destination ran out of space (not only the source's side of it)
	grep -qiE "no space|space left" <<<"$stderr" || fail "the message does not say the destination is out of space: $stderr"
}

@test "failure: the restore fails on the destination (its image is gone there): diskless, the instance keeps running on nodeA" {
	mig_up
	MIG_IMAGE_DIR=$(mktemp -d /var/tmp/ft-migrate-img.XXXXXX)
	chmod 0755 "$MIG_IMAGE_DIR"
	cp "$IMG" "$MIG_IMAGE_DIR/job.sqsh"
	chmod 0644 "$MIG_IMAGE_DIR/job.sqsh"
	local name=$T-img run_id
	mig_launch nodeA "$name" 32 --image "$MIG_IMAGE_DIR/job.sqsh"
	run_id=$(field_of "$OUT/$name.prog" run)
	# nodeB sees the image when asked; then it is gone there (nodeB's ferryd has a mount
	# namespace of its own, ip netns exec), and the restart cannot open it
	slow_and_wait_receiving "$name"
	nsenter -t "${FERRYD_PID[nodeB]}" -m mount --bind /dev/null "$MIG_IMAGE_DIR/job.sqsh"
	mig_wait 200
	assert_kept_on_source "$name" "$run_id"
	[[ "$stderr" == *"$MIG_IMAGE_DIR/job.sqsh"* ]] || fail "the message does not name the image: $stderr"
	[[ "$stderr" != *"bad verdict"* ]] || fail "nodeB's own reason is masked: $stderr"
	# --json: the failed report too
	run json_field "$output" ok
	assert_output 0
	! ferryd_log_has nodeB "'$name' runs here" || fail "nodeB says it runs '$name'"
}

@test "failure, default mode: the destination cannot restart: the instance runs again on nodeA from the checkpoint, TCP stream and all" {
	mig_up
	local name=$T-dflt run_id at
	mig_launch nodeA "$name" 64 --net "$IPB" --tcp "$PORT"
	log_follow "$name"
	run_id=$(field_of "$OUT/$name.prog" run)
	# the user already runs an instance of that name on nodeB
	run on nodeB "$FERRY" instance start "$IMG" "$name" sleep 1000
	assert_success
	at=$(num "$OUT/$name.srv")
	mig_migrate nodeA "$name" --to nodeB
	echo "# $stderr" >&3
	assert_ferry_error "runs again on nodeA"
	[[ "$stderr" == *"already exists"* ]] || fail "the message does not say why: $stderr"
	assert_moves_on "$name" "$run_id"
	assert_runs_once "$name"
	listed_on nodeA "$name" || fail "'$name' is not listed on nodeA"
	wait_ok "$OUT/$name.srv" $((at + 20)) 30
	run on nodeA "$FERRY" exec "instance://$name" ip -o addr show eth0
	assert_output --partial "inet $IPB/16"
	wait_followed "$name"
	assert_consecutive "$BATS_TEST_TMPDIR/$name.steps"
	# the squatter on nodeB was not touched
	run on nodeB "$FERRY" exec "instance://$name" cat /proc/1/cmdline
	assert_success
	# the complete checkpoint it came back from is kept
	run sh -c "ls -d '$MIG_SHARED/$U1_UID/$name'-*/current"
	assert_success
}

# ---------------------------------------------------------------- concurrency

@test "eight migrations at once, both ways and both modes, all succeed" {
	mig_up
	local i n name from to mode
	local -A run_id=() pid=() dest=()
	for i in 1 2 3 4 5 6 7 8; do
		name=$T-c$i
		if [ "$i" -le 4 ]; then from=nodeA; else from=nodeB; fi
		mig_launch "$from" "$name" 16
		run_id[$name]=$(field_of "$OUT/$name.prog" run)
	done
	for i in 1 2 3 4 5 6 7 8; do
		name=$T-c$i
		if [ "$i" -le 4 ]; then from=nodeA; else from=nodeB; fi
		if [ $((i % 2)) = 0 ]; then mode=diskless; else mode=default; fi
		dest[$name]=$(other_node "$from")
		on "$from" "$FERRY" migrate "$name" --to "${dest[$name]}" --mode "$mode" --json \
			>"$BATS_TEST_TMPDIR/$name.out" 2>"$BATS_TEST_TMPDIR/$name.err" </dev/null 3>&- &
		pid[$name]=$!
	done
	local failed=""
	for i in 1 2 3 4 5 6 7 8; do
		name=$T-c$i
		wait "${pid[$name]}" || failed+=" $name: $(cat "$BATS_TEST_TMPDIR/$name.err")"
	done
	[ -z "$failed" ] || fail "failed:$failed"
	for i in 1 2 3 4 5 6 7 8; do
		name=$T-c$i
		if [ $((i % 2)) = 0 ]; then mode=diskless; else mode=default; fi
		assert_report "$(cat "$BATS_TEST_TMPDIR/$name.out")" "$mode" "$(other_node "${dest[$name]}")" "${dest[$name]}" 16
		assert_only_on "${dest[$name]}" "$name"
		assert_moves_on "$name" "${run_id[$name]}"
		assert_runs_once "$name"
	done
}

# ---------------------------------------------------------------- security

@test "security: a peer without the cluster key is refused and nothing it sends is acted on" {
	mig_up
	# a client with a key of its own, from a node and from outside (peer)
	run on_node nodeA python3 "$WIRE" peer "${NODE_IP[nodeB]}:$MIG_PORT" random \
		msg type=prepare id=0123456789ab uid="$U1_UID" user="$U1" instance="$T-x" mode=diskless from=nodeA recv
	assert_line "handshake refused: closed"
	refute_output --partial "type=ready"
	run on_node peer python3 "$WIRE" peer "${NODE_IP[nodeB]}:$MIG_PORT" random msg type=prepare recv
	assert_line "handshake refused: closed"
	# no handshake at all: a message, or an HTTP request, straight away
	run on_node nodeA python3 "$WIRE" tcp "${NODE_IP[nodeB]}:$MIG_PORT" \
		msg type=prepare id=0123456789ab uid="$U1_UID" user="$U1" instance="$T-x" mode=diskless from=nodeA eof
	refute_output --partial "type=ready"
	run on_node peer python3 "$WIRE" tcp "${NODE_IP[nodeB]}:$MIG_PORT" raw 474554202f20485454502f312e300d0a0d0a eof
	refute_output --partial "type="
	wait_for ferryd_log_has nodeB "the peer did not prove the cluster key" || fail "no refusal logged"
	ferryd_log_has nodeB "the peer is not a ferry sender" || fail "no refusal of the raw client logged"
	! ferryd_log_has nodeB "receiving" || fail "nodeB acted on an unauthenticated request"
	[ ! -e "$MIG_TMPFS-nodeB/$U1_UID" ] || fail "nodeB made a directory for it: $(ls -la "$MIG_TMPFS-nodeB/$U1_UID")"
	# the same client with the cluster key is accepted (the refusal above is the key's doing)
	run on_node nodeA python3 "$WIRE" peer "${NODE_IP[nodeB]}:$MIG_PORT" /etc/ferry/cluster.key \
		msg type=hello recv
	assert_line "handshake ok"
	assert_line --partial "reply type=error message=bad prepare message"
	# and the daemon still serves a real migration
	ferryd_alive nodeB || fail "ferryd on nodeB died"
	mig_launch nodeA "$T-real" 8
	mig_migrate nodeA "$T-real" --to nodeB
	assert_success
	assert_only_on nodeB "$T-real"
}

@test "security: even with the key, a peer names no directory but the user's own in the shared directory" {
	mig_up
	local key=/etc/ferry/cluster.key id=00aa11bb22cc dir
	local -a prep=(msg type=prepare id=$id uid="$U1_UID" user="$U1" instance="$T-x" mode=default from=nodeA
		image="$IMG" fingerprint="$(image_fingerprint "$IMG")" networks= ip= mac= mem=0
		criu_version="$(criu_version)" cpuinfo= recv)
	mkdir -p "$MIG_SHARED/$U2_UID/$T-theirs"
	for dir in "$MIG_SHARED/$U2_UID/$T-theirs" "$MIG_SHARED/$U1_UID/../$U2_UID/$T-theirs" \
		"$MIG_SHARED/$U1_UID/$T-a/b" "$U2_HOME/.ferry/checkpoint/$T-theirs" /tmp "$MIG_SHARED/$U1_UID"; do
		run on_node nodeA python3 "$WIRE" peer "${NODE_IP[nodeB]}:$MIG_PORT" "$key" "${prep[@]}" \
			msg type=restart dir="$dir" recv
		assert_line --regexp "^reply type=ready( busy_ms=[0-9]+)?$"
		assert_line "reply type=error message=bad restart message id=$id"
	done
	# a directory of the user there passes that check (and fails later: there is no checkpoint;
	# the destination's starter answers first, on the connection, then its daemon)
	run on_node nodeA python3 "$WIRE" peer "${NODE_IP[nodeB]}:$MIG_PORT" "$key" "${prep[@]}" \
		msg type=restart dir="$MIG_SHARED/$U1_UID/$T-none" recv
	assert_line --regexp "^reply type=ready( busy_ms=[0-9]+)?$"
	refute_output --partial "bad restart message"
	for _ in $(seq 50); do
		ferryd_log_has nodeB "restart failed: checkpoint directory '$MIG_SHARED/$U1_UID/$T-none' does not exist" && break
		sleep 0.1
	done
	ferryd_log_has nodeB "restart failed: checkpoint directory '$MIG_SHARED/$U1_UID/$T-none' does not exist" ||
		fail "the user's own directory did not get past the check: $(cat "${FERRYD_LOG[nodeB]}")"
	# nodes must agree on who a uid is
	run on_node nodeA python3 "$WIRE" peer "${NODE_IP[nodeB]}:$MIG_PORT" "$key" \
		msg type=prepare id=$id uid="$U1_UID" user=root instance="$T-x" mode=default from=nodeA recv
	assert_line --partial "reply type=error message=uid $U1_UID is '$U1' here, not 'root'"
	run on nodeB "$FERRY" instance list
	refute_output --partial "$T-x"
}

@test "security: a user can neither migrate another user's instance nor name where it goes" {
	mig_up
	local name=$T-mine run_id pid
	mig_launch nodeA "$name" 16
	run_id=$(field_of "$OUT/$name.prog" run)
	pid=$(inst_field nodeA "$name" pid)
	[ -n "$pid" ] || fail "'$name' is not listed on nodeA"
	# user 2 asks, with the CLI in both modes
	local mode
	for mode in default diskless; do
		run --separate-stderr on_as nodeA "$U2" "$FERRY" migrate "$name" --to nodeB --mode "$mode"
		assert_ferry_error "no instance '$name' of yours"
	done
	# and with a forged request that claims to be user 1
	run on_as nodeA "$U2" python3 "$WIRE" local msg type=migrate instance="$name" to=nodeB mode=default \
		uid="$U1_UID" user="$U1" recv
	assert_output --partial "reply type=error message=no instance '$name' of yours"
	assert_only_on nodeA "$name"
	assert_moves_on "$name" "$run_id"
	run on nodeA "$FERRY" instance list --json
	assert_output --partial "\"pid\": $pid"
	# ferryd acted for user 2 only: nothing of user 2's, nor any of user 1's, in the shared dir
	[ ! -e "$MIG_SHARED/$U1_UID" ] || [ -z "$(ls -A "$MIG_SHARED/$U1_UID")" ] || fail "user 1's shared dir: $(ls "$MIG_SHARED/$U1_UID")"
	# no option names a destination path
	run --separate-stderr on nodeA "$FERRY" migrate "$name" --to nodeB --dir /tmp/elsewhere
	assert_ferry_error "unknown option '--dir'"
	run --separate-stderr on nodeA "$FERRY" migrate "$name" --to nodeB --checkpoint "$T-other"
	assert_ferry_error "unknown option"
	# extra fields in the local request are ignored: it goes to the shared dir all the same
	local evil=$U1_TMP/elsewhere
	run on nodeA python3 "$WIRE" local msg type=migrate instance="$name" to=nodeB mode=default \
		dir="$evil" checkpoint="$evil" tmpfs="$evil" shared_dir="$evil" uid=0 user=root recv
	assert_output --partial "ok=1"
	[ ! -e "$evil" ] || fail "ferryd used '$evil'"
	ferryd_log_has nodeA "dumps into '$MIG_SHARED/$U1_UID/$name-" || fail "no dump into the shared directory logged"
	assert_only_on nodeB "$name"
	assert_moves_on "$name" "$run_id"
}

@test "security: malformed messages on ferryd's local socket and TCP port do not crash it" {
	mig_up
	local -a ops
	# complete messages get an error each; cut ones just end
	run on_as nodeA "$U2" python3 "$WIRE" local len 0xffffffff recv
	assert_output --partial "reply type=error message=bad request: message of 4294967295 bytes refused"
	run on_as nodeA "$U2" python3 "$WIRE" local len 65537 raw 6665727279 recv
	assert_output --partial "reply type=error message=bad request: message of 65537 bytes refused"
	run on_as nodeA "$U2" python3 "$WIRE" local len 12 raw 6a756e6b0a00ff016a756e6b recv
	assert_output --partial "reply type=error message=bad request: not a ferry protocol 1 message"
	run on_as nodeA "$U2" python3 "$WIRE" local raw 0a000000666572 # 3 of 10 bytes, then the end
	run on_as nodeA "$U2" python3 "$WIRE" local raw 01 # half a length
	run on_as nodeA "$U2" python3 "$WIRE" local raw "$(head -c 4096 /dev/urandom | xxd -p | tr -d '\n')" recv
	for ops in "type=migrate instance=../../etc to=nodeB mode=default" \
		"type=migrate instance=x to=nodeB mode=evil" \
		"type=migrate instance=x to=nodeZ mode=default" \
		"type=migrate instance=x to=nodeA mode=default" \
		"type=migrate instance=x" \
		"type=status" \
		"Type=migrate"; do
		# shellcheck disable=SC2086
		run on_as nodeA "$U2" python3 "$WIRE" local msg $ops recv
		assert_output --partial "reply type=error"
	done
	run on_as nodeA "$U2" python3 "$WIRE" local msg type=migrate instance=x to=nodeB mode=default type=migrate recv
	assert_output --partial "repeated"
	# a control character inside a value
	local payload
	payload=$(printf 'ferry-proto 1\ntype=migrate\ninstance=a\033b\nto=nodeB\nmode=default\n' | xxd -p | tr -d '\n')
	run on_as nodeA "$U2" python3 "$WIRE" local len $((${#payload} / 2)) raw "$payload" recv
	assert_output --partial "reply type=error message=bad request: bad, repeated or too many message fields"
	# junk on the TCP port
	run on_node peer python3 "$WIRE" tcp "${NODE_IP[nodeA]}:$MIG_PORT" raw "$(head -c 8192 /dev/urandom | xxd -p | tr -d '\n')" eof
	ferryd_alive nodeA || fail "ferryd on nodeA died: $(cat "${FERRYD_LOG[nodeA]}")"
	# 50 connections that say nothing do not keep it from its work
	on_as nodeA "$U2" python3 "$WIRE" local idle 50 sleep 8 >"$BATS_TEST_TMPDIR/idle.out" 2>&1 </dev/null 3>&- &
	local idle=$!
	wait_for grep -q "idle 50" "$BATS_TEST_TMPDIR/idle.out" || fail "idle client: $(cat "$BATS_TEST_TMPDIR/idle.out")"
	mig_launch nodeA "$T-ok" 8
	mig_migrate nodeA "$T-ok" --to nodeB --mode diskless
	assert_success
	assert_only_on nodeB "$T-ok"
	ferryd_alive nodeA || fail "ferryd on nodeA died"
	ferryd_alive nodeB || fail "ferryd on nodeB died"
	wait "$idle" || true
}

# ---------------------------------------------------------------- the CLI's errors

@test "ferry migrate refuses what it cannot do, with one line and exit 255, and touches nothing" {
	mig_up
	local name=$T-cli run_id
	mig_launch nodeA "$name" 8
	run_id=$(field_of "$OUT/$name.prog" run)
	run on nodeA "$FERRY" instance start "$IMG" "$T-plain" sleep 1000
	assert_success
	run --separate-stderr on nodeA "$FERRY" migrate "$name" --to nodeA
	assert_ferry_error "'nodeA' is this node"
	run --separate-stderr on nodeA "$FERRY" migrate "$name" --to nodeZ
	assert_ferry_error "no node 'nodeZ'"
	run --separate-stderr on nodeA "$FERRY" migrate "$name" --to nodeB --mode fast
	assert_ferry_error "--mode 'fast'"
	run --separate-stderr on nodeA "$FERRY" migrate "$name"
	assert_ferry_error "usage: ferry migrate"
	run --separate-stderr on nodeA "$FERRY" migrate "../$name" --to nodeB
	assert_ferry_error
	run --separate-stderr on nodeA "$FERRY" migrate "$T-none" --to nodeB
	assert_ferry_error "no instance '$T-none'"
	# an instance started without --criu-launch cannot move, and keeps running
	run --separate-stderr on nodeA "$FERRY" migrate "$T-plain" --to nodeB
	assert_ferry_error "criu-launch"
	listed_on nodeA "$T-plain" || fail "'$T-plain' stopped"
	# the destination's ferryd is down: nothing is touched
	ferryd_stop nodeB
	run --separate-stderr on nodeA "$FERRY" migrate "$name" --to nodeB
	assert_ferry_error "not touched"
	# this node's ferryd is down
	ferryd_stop nodeA
	run --separate-stderr on nodeA "$FERRY" migrate "$name" --to nodeB
	assert_ferry_error "no ferryd on this node"
	assert_only_on nodeA "$name"
	assert_moves_on "$name" "$run_id"
	run on nodeA "$FERRY" migrate --help
	assert_success
	assert_output --partial "--mode diskless"
}
