#!/usr/bin/env bats
# Resource limits the caller sets before running the setuid starter (prlimit, ulimit, Slurm):
# an exec keeps them, and RLIMIT_FSIZE, RLIMIT_CPU and the rest bind root too. Root's own code
# (the starter, the instance monitor, ferry-net) must not run under them, so that a limit chosen
# to fire at a chosen point cannot kill root between a network's ADD and its DEL, or in the
# middle of a record; the user's own programs keep them exactly. (Review of 2026-12-07:
# prlimit --fsize=200 killed the monitor with SIGXFSZ in its record's write.)

load ../lib/common

NETNS=ftlimits
NETCONF=/etc/ferry/network/ftlimbr.conflist
CNI_DATA=/run/ferry-test-limits-cni

setup_file() {
	ferry_suite_setup
}
teardown_file() {
	ferry_suite_teardown
}

setup() {
	ferry_test_setup
	use_image sqsh >/dev/null
	REQ=$(mktemp /tmp/ftlim-req.XXXXXX)
	chmod 0644 "$REQ"
}

teardown() {
	local u
	if ip netns list | grep -qw "^$NETNS"; then
		rm -f "$FERRY_RUNDIR/$U1_UID/n$(ip netns exec "$NETNS" stat -L -c %i /proc/self/ns/net)"/.ftlim-*
		for u in "$U1" "$U2"; do
			ip netns exec "$NETNS" runuser -u "$u" -- "$FERRY" instance stop --all --timeout 3 >/dev/null 2>&1 || true
		done
		ip netns pids "$NETNS" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
		ip netns del "$NETNS" 2>/dev/null || true
	fi
	rm -f "$NETCONF" "$REQ"
	rm -rf "$CNI_DATA"
	rm -f "$(rundir_of "$U1_UID")"/.ftlim-*
	conf_restore
	ferry_teardown
}

# root_tmp_files RUNDIR: what ferry_write_file_atomic left of a record it did not finish
root_tmp_files() { find "$1" -maxdepth 1 -name '.*.tmp*' 2>/dev/null; }

# limits_of PID: the lines of /proc/PID/limits that the tests set
limits_of() { grep -E '^Max (file size|open files|stack size|cpu time|core file size) ' "/proc/$1/limits"; }

@test "limits: RLIMIT_FSIZE 200 on the starter leaves no root file behind; the start works or fails cleanly" {
	local rd i lim
	rd=$(rundir_of "$U1_UID")
	for i in 1 2 3; do
		# a hard limit root can raise only with CAP_SYS_RESOURCE; a soft one always
		lim=200:200
		[ "$i" != 3 ] || lim=200:unlimited
		forge_request --op 2 --image "$IMG" --instance "ftlim-$i" --cwd /tmp --arg sleep --arg 1000 >"$REQ"
		run --separate-stderr as_user1 prlimit --fsize=$lim sh -c 'exec "$1" 3<"$2"' ferry-test "$STARTER" "$REQ"
		echo "# --fsize=$lim: status $status $stderr" >&3
		[ "$status" -eq 0 ] || assert_ferry_error
		[ "$i" != 3 ] || assert_success
	done
	sleep 0.5
	run root_tmp_files "$rd"
	assert_output ""
	# root wrote the record, and the instance runs under the caller's limit
	local pid
	pid=$(instance_pid "$U1" ftlim-3)
	run grep '^Max file size' "/proc/$pid/limits"
	assert_output --regexp '^Max file size +200 +unlimited +bytes'
	run as_user1 "$FERRY" instance stop --all
	assert_success
	run as_user2 "$FERRY" instance start "$IMG" ftlim-u2 sleep 1000
	assert_success
	run root_tmp_files "$rd"
	assert_output ""
}

@test "limits: a --net start with RLIMIT_FSIZE between CNI's JSON and the record leaks no lease, lock or file" {
	ip netns add "$NETNS"
	ip -n "$NETNS" link set lo up
	# two addresses in all: two leaked leases would leave none for ferrytest2
	cat >"$NETCONF" <<-JSON
		{"cniVersion": "1.0.0", "name": "ftlimbr",
		 "plugins": [{"type": "bridge", "bridge": "ftlimbr0", "isGateway": false,
		              "ipam": {"type": "host-local", "dataDir": "$CNI_DATA",
		                       "ranges": [[{"subnet": "198.19.7.0/29", "rangeStart": "198.19.7.2", "rangeEnd": "198.19.7.3"}]]}}]}
	JSON
	chmod 0644 "$NETCONF"
	conf_set "allow net network = ftlimbr"
	local node rd long i lim
	node=$(ip netns exec "$NETNS" stat -L -c %i /proc/self/ns/net)
	rd=$FERRY_RUNDIR/$U1_UID/n$node
	long=$(head -c 1000 /dev/zero | tr '\0' x)
	for i in 1 2 3; do
		# hard limits (raised by a root with CAP_SYS_RESOURCE only), then a soft one
		lim=1100:1100
		[ "$i" != 3 ] || lim=1100:unlimited
		forge_request --op 2 --flags 64 --image "$IMG" --instance "ftlim-net$i" --cwd /tmp --networks ftlimbr \
			--arg sleep --arg 1000 --arg "$long" >"$REQ"
		run --separate-stderr ip netns exec "$NETNS" runuser -u "$U1" -- \
			prlimit --fsize=$lim sh -c 'cd /tmp && exec "$1" 3<"$2"' ferry-test "$STARTER" "$REQ"
		echo "# --net, --fsize=$lim: status $status $stderr" >&3
		[ "$status" -eq 0 ] || assert_ferry_error
		[ "$i" != 3 ] || assert_success
	done
	run ip netns exec "$NETNS" runuser -u "$U1" -- "$FERRY" instance stop --all
	wait_for sh -c "! ls '$CNI_DATA/ftlimbr' 2>/dev/null | grep -q '^198\\.19\\.'" || true
	run sh -c "ls '$CNI_DATA/ftlimbr' 2>/dev/null | grep '^198\\.19\\.' || true"
	assert_output ""
	run root_tmp_files "$rd"
	assert_output ""
	# no MAC reservation is still held (a killed holder's lock would go with it; a live one not)
	local f
	for f in "$FERRY_RUNDIR/net/n$node"/mac-*; do
		[ -e "$f" ] || continue
		flock -n -x "$f" true || fail "the MAC reservation $f is still held"
	done
	run --separate-stderr ip netns exec "$NETNS" runuser -u "$U2" -- env -C /tmp \
		"$FERRY" instance start --net --network ftlimbr "$IMG" ftlim-u2 sleep 1000
	assert_success
	run ip netns exec "$NETNS" runuser -u "$U2" -- "$FERRY" instance stop --all
	assert_success
}

@test "limits: the workload, a joined process and ferry exec keep the caller's own; root's monitor does not" {
	# (hard limits root can keep: a node without CAP_SYS_RESOURCE cannot raise the others)
	local lim=(--fsize=300000:unlimited --nofile=200:300 --stack=4000000:5000000 --cpu=1000:unlimited --core=0:4096)
	local want
	want=$(prlimit "${lim[@]}" sh -c 'cat /proc/self/limits' |
		grep -E '^Max (file size|open files|stack size|cpu time|core file size) ')
	run --separate-stderr as_user1 prlimit "${lim[@]}" "$FERRY" instance start "$IMG" ftlim-own sleep 1000
	assert_success
	local init mon work
	init=$(instance_pid "$U1" ftlim-own)
	work=$(pgrep -P "$init" | head -1)
	mon=$(ps -o ppid= -p "$init" | tr -d ' ')
	[ -n "$work" ] && [ -n "$mon" ] || fail "no workload or monitor for init $init"
	run limits_of "$init"
	assert_output "$want"
	run limits_of "$work"
	assert_output "$want"
	run as_user1 prlimit "${lim[@]}" "$FERRY" exec instance://ftlim-own cat /proc/self/limits
	assert_success
	run grep -E '^Max (file size|open files|stack size|cpu time|core file size) ' <<<"$output"
	assert_output "$want"
	run as_user1 prlimit "${lim[@]}" "$FERRY" exec "$IMG" cat /proc/self/limits
	assert_success
	run grep -E '^Max (file size|open files|stack size|cpu time|core file size) ' <<<"$output"
	assert_output "$want"
	# the monitor is root's: none of the caller's limits that could kill it or stop its writes
	run grep -E '^Max (file size|cpu time|data size|address space) ' "/proc/$mon/limits"
	assert_output --regexp '^Max cpu time +unlimited +unlimited'
	assert_output --regexp 'Max file size +unlimited +unlimited'
	run as_user1 "$FERRY" instance stop ftlim-own
	assert_success
}

@test "limits: a leftover '.NAME.tmpPID' of a dead writer is removed by the next list, a live one's is not" {
	local rd dead
	rd=$(rundir_of "$U1_UID")
	run as_user1 "$FERRY" instance start "$IMG" ftlim-keep sleep 1000
	assert_success
	sh -c 'exit 0' &
	dead=$!
	wait "$dead"
	printf 'x' >"$rd/.ftlim-gone.tmp$dead"
	printf 'x' >"$rd/.ftlim-live.tmp$$"
	printf 'x' >"$rd/.ftlim-other.tmpx$dead"
	run as_user1 "$FERRY" instance list
	assert_success
	[ ! -e "$rd/.ftlim-gone.tmp$dead" ] || fail "a dead writer's temporary record stayed"
	[ -e "$rd/.ftlim-live.tmp$$" ] || fail "a live writer's temporary record was removed"
	[ -e "$rd/.ftlim-other.tmpx$dead" ] || fail "a file not of the pattern was removed"
	printf 'x' >"$rd/.ftlim-gone2.tmp$dead"
	run as_user1 "$FERRY" instance start "$IMG" ftlim-next sleep 1000
	assert_success
	[ ! -e "$rd/.ftlim-gone2.tmp$dead" ] || fail "a start left a dead writer's temporary record"
	rm -f "$rd/.ftlim-live.tmp$$" "$rd/.ftlim-other.tmpx$dead"
	run as_user1 "$FERRY" instance stop --all
	assert_success
}
