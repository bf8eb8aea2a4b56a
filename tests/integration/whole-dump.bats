#!/usr/bin/env bats
# A checkpoint holds the whole instance or fails loudly (issue 16), as the unprivileged test user:
# a daemonized process is dumped and restored with the rest (the workload runs under ferry-reaper,
# a child subreaper); a process outside the dumped tree makes the dump refuse, naming it; a failed
# dump keeps CRIU's log at NAME/dump.log and nothing else; a dumped zombie and a high fd do not
# make the restore fail; System V IPC objects (which the dump cannot keep) make it refuse.

load ../lib/common
load ../lib/checkpoint

setup_file() {
	ferry_suite_setup
	build_ckpt_workload
}

teardown_file() {
	ferry_suite_teardown
	rm -rf "$(home_of "$U1")"/.ferry/checkpoint/fwd-*
}

setup() {
	ferry_test_setup
	use_image sqsh >/dev/null
	T=fwd-$BATS_TEST_NUMBER
	CK=$(ckpt_dir "$U1" "$T")
	rm -rf "$CK"
	as_user1 "$FERRY" checkpoint create "$T" >/dev/null
}

teardown() {
	conf_restore
	ferry_teardown
	rm -rf "$CK"
}

# inst_procs USER NAME: "NSPID STATE CMDLINE" of every process in the instance's pid namespace
# (its init included), read from the host.
inst_procs() {
	local init ns p nspid st
	init=$(instance_pid "$1" "$2")
	[ -n "$init" ] || return 0
	ns=$(readlink "/proc/$init/ns/pid") || return 0
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$ns" ] || continue
		nspid=$(awk '/^NSpid:/ {print $NF}' "$p/status" 2>/dev/null) || continue
		st=$(awk '/^State:/ {print $2}' "$p/status" 2>/dev/null) || continue
		[ -n "$nspid" ] || continue
		echo "$nspid $st $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"
	done
}

# has_proc USER NAME REGEX: a process of the instance matches REGEX (grep -E on inst_procs).
has_proc() { inst_procs "$1" "$2" | grep -qE -- "$3"; }

# launch NAME CMD...: a --criu-launch instance of user1 running CMD.
launch() {
	local name=$1
	shift
	run --separate-stderr as_user1 "$FERRY" instance start --criu-launch "$T" "$IMG" "$name" "$@"
	[ "$status" -eq 0 ] || fail "instance start --criu-launch failed ($status): $stderr"
}

dump_ok() {
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu "$1"
	[ "$status" -eq 0 ] || fail "checkpoint failed ($status): $stderr"
	wait_gone "$U1" "$1"
}

restart_ok() {
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T"
	[ "$status" -eq 0 ] || fail "restart failed ($status): $stderr"
}

@test "a daemonized process (fork, parent exits, setsid) is dumped and restored with the workload" {
	launch fwd-daemon sh -c '(setsid sleep 31001 &); exec sleep 31002'
	wait_for has_proc "$U1" fwd-daemon ' sleep 31001 $' || fail "the daemon did not start: $(inst_procs "$U1" fwd-daemon)"
	dump_ok fwd-daemon
	restart_ok
	wait_for has_proc "$U1" fwd-daemon ' sleep 31002 $' || fail "the workload is not back: $(inst_procs "$U1" fwd-daemon)"
	has_proc "$U1" fwd-daemon ' sleep 31001 $' || fail "the daemon was lost by the checkpoint: $(inst_procs "$U1" fwd-daemon)"
	# users see the same instance as before: the workload's command line once, listed, and it stops
	assert_equal "$(pgrep -u "$U1" -c -f -- 'sleep 31002$')" 1
	instance_running "$U1" fwd-daemon
	run --separate-stderr as_user1 "$FERRY" instance stop fwd-daemon
	[ "$status" -eq 0 ] || fail "stop failed: $stderr"
	assert_instance_gone "$U1" fwd-daemon
}

@test "a workload that ends ends its instance; a command that cannot run is reported as before" {
	run --separate-stderr as_user1 "$FERRY" instance start --criu-launch "$T" "$IMG" fwd-st sh -c 'sleep 0.2; exit 7'
	[ "$status" -eq 0 ] || fail "start failed: $stderr"
	wait_gone "$U1" fwd-st
	# a command that cannot run is reported as before
	run --separate-stderr as_user1 "$FERRY" instance start --criu-launch "$T" "$IMG" fwd-st2 /no/such/cmd
	assert_ferry_error "cannot run '/no/such/cmd' in the container"
}

@test "a process outside the workload's tree (ferry exec) makes the dump refuse, naming it" {
	launch fwd-exec sleep 31003
	as_user1 "$FERRY" exec instance://fwd-exec sleep 31004 >/dev/null 2>&1 &
	local cli=$!
	wait_for has_proc "$U1" fwd-exec ' sleep 31004 $' || fail "the exec'd process did not start"
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu fwd-exec
	kill "$cli" 2>/dev/null || true
	assert_ferry_error "refused: process [0-9]+ \('sleep'\) of instance 'fwd-exec' is outside its workload's tree"
	instance_running "$U1" fwd-exec || fail "the instance did not keep running"
	[ ! -e "$CK/current" ] || fail "a generation was published: $(ls -la "$CK")"
	has_proc "$U1" fwd-exec ' sleep 31003 $' || fail "the workload is gone"
}

@test "a failed dump keeps CRIU's log at NAME/dump.log for the user, and nothing else" {
	# CRIU does not dump a process in a user namespace of its own without privileges
	launch fwd-fail sh -c 'unshare -U sleep 31005 & exec sleep 31006'
	wait_for has_proc "$U1" fwd-fail ' sleep 31005 $' || fail "no nested process: $(inst_procs "$U1" fwd-fail)"
	local before
	before=$(ls -A "$CK")
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu fwd-fail
	assert_ferry_error "checkpoint of 'fwd-fail' failed: .*the instance keeps running"
	instance_running "$U1" fwd-fail || fail "the instance did not keep running"
	[ -f "$CK/dump.log" ] || fail "no dump.log in $CK: $(ls -A "$CK")"
	[ "$(stat -c %U "$CK/dump.log")" = "$U1" ] || fail "dump.log is not $U1's: $(stat -c %U "$CK/dump.log")"
	as_user1 grep -q 'Error' "$CK/dump.log" || fail "dump.log has no CRIU error: $(tail -n 5 "$CK/dump.log")"
	local after
	after=$(ls -A "$CK" | grep -vx dump.log || true)
	[ "$after" = "$before" ] || fail "left behind in $CK: before '$before', after '$after'"
}

@test "a dumped zombie does not make the restore refuse" {
	# the exec'd sleep never reaps its child: a zombie at checkpoint time
	launch fwd-zombie sh -c 'sleep 0 & exec sleep 31007'
	wait_for has_proc "$U1" fwd-zombie '^[0-9]+ Z ' || fail "no zombie: $(inst_procs "$U1" fwd-zombie)"
	dump_ok fwd-zombie
	restart_ok
	wait_for has_proc "$U1" fwd-zombie ' sleep 31007 $' || fail "not restored: $(inst_procs "$U1" fwd-zombie)"
	has_proc "$U1" fwd-zombie '^[0-9]+ Z ' || fail "the zombie was not restored: $(inst_procs "$U1" fwd-zombie)"
}

@test "a process with a high fd restores: the restore raises its soft RLIMIT_NOFILE to the hard limit" {
	[ "$(as_user1 sh -c 'ulimit -Hn')" -ge 8192 ] || skip "the test user's hard RLIMIT_NOFILE is below 8192"
	launch fwd-fd sh -c 'ulimit -n 8192 && exec 5000</dev/null && exec sleep 31008'
	wait_for has_proc "$U1" fwd-fd ' sleep 31008 $' || fail "not started: $(inst_procs "$U1" fwd-fd)"
	dump_ok fwd-fd
	restart_ok
	wait_for has_proc "$U1" fwd-fd ' sleep 31008 $' || fail "not restored: $(inst_procs "$U1" fwd-fd)"
}

@test "System V IPC objects (which a checkpoint cannot keep) make the dump refuse, and the job runs on" {
	local kind
	for kind in msg sem shm; do
		launch "fwd-ipc-$kind" "$CKPT_BIN/sysvipc" "$kind"
		wait_for has_proc "$U1" "fwd-ipc-$kind" "sysvipc $kind" || fail "no sysvipc $kind: $(inst_procs "$U1" "fwd-ipc-$kind")"
		# the object exists once the workload printed its id
		wait_for as_user1 grep -q " $kind\$" "$(inst_log "$U1" "fwd-ipc-$kind" out)" || fail "no $kind made"
		run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu "fwd-ipc-$kind"
		assert_ferry_error "holds 1 System V .*checkpoint refused \(end them first: ipcrm"
		instance_running "$U1" "fwd-ipc-$kind" || fail "the instance did not keep running"
		has_proc "$U1" "fwd-ipc-$kind" '^[0-9]+ S .*sysvipc' || fail "the workload is not running: $(inst_procs "$U1" "fwd-ipc-$kind")"
		[ ! -e "$CK/current" ] || fail "a generation was published: $(ls -la "$CK")"
		as_user1 "$FERRY" instance stop "fwd-ipc-$kind" >/dev/null
	done
}

@test "--restore raises the soft RLIMIT_NOFILE too: a process with a high fd restores into an idle instance" {
	[ "$(as_user1 sh -c 'ulimit -Hn')" -ge 8192 ] || skip "the test user's hard RLIMIT_NOFILE is below 8192"
	launch fwd-fdr sh -c 'ulimit -n 8192 && exec 5000</dev/null && exec sleep 31010'
	wait_for has_proc "$U1" fwd-fdr ' sleep 31010 $' || fail "not started: $(inst_procs "$U1" fwd-fdr)"
	dump_ok fwd-fdr
	run --separate-stderr as_user1 "$FERRY" instance start --criu-launch "$T" "$IMG" fwd-fdr2
	[ "$status" -eq 0 ] || fail "idle instance: $stderr"
	run --separate-stderr as_user1 "$FERRY" checkpoint instance --criu --restore fwd-fdr2
	[ "$status" -eq 0 ] || fail "--restore of a process with fd 5000 failed ($status): $stderr"
	wait_for has_proc "$U1" fwd-fdr2 ' sleep 31010 $' || fail "not restored: $(inst_procs "$U1" fwd-fdr2)"
	as_user1 "$FERRY" instance stop fwd-fdr2
}

# resign GEN: rewrites GEN's manifest HMAC under the cluster key over what precedes it (only
# root can: this stands for a checkpoint whose process set CRIU does not restore whole).
resign() {
	local m=$1/manifest key body
	key=$(od -An -tx1 -v /etc/ferry/cluster.key | tr -d ' \n')
	body=$(grep -v '^hmac=' "$m")
	{
		printf '%s\n' "$body"
		printf 'hmac=%s\n' "$(printf '%s\n' "$body" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" | awk '{print $NF}')"
	} >"$m.new"
	chmod 0444 "$m.new"
	mv -f "$m.new" "$m"
}

@test "a restore that brings back fewer tasks than the checkpoint holds is refused, and nothing of it runs" {
	launch fwd-set sh -c 'exec sleep 31011'
	wait_for has_proc "$U1" fwd-set ' sleep 31011 $' || fail "not started: $(inst_procs "$U1" fwd-set)"
	dump_ok fwd-set
	local gen core size sha
	gen=$(current_gen "$CK")
	# a core image of a task CRIU's process tree does not name (signed, so it passes every
	# check before CRIU): CRIU restores the tree it knows, one task fewer than the images
	core=$(cd "$gen" && ls core-*.img | head -n1)
	cp "$gen/$core" "$gen/core-10099.img"
	chmod 0444 "$gen/core-10099.img"
	size=$(stat -c %s "$gen/core-10099.img")
	sha=$(sha256sum "$gen/core-10099.img" | awk '{print $1}')
	sed -i "/^hmac=/i file=core-10099.img $size $sha" "$gen/manifest"
	resign "$gen"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T"
	assert_failure
	[[ $stderr =~ "the restore brought back 2 tasks but the checkpoint holds 3: restore refused" ]] ||
		fail "not refused for the restored set: $stderr"
	# nothing restored runs, and no record is left
	! pgrep -u "$U1" -f 'sleep 31011' >/dev/null || fail "a restored process runs: $(pgrep -a -u "$U1" -f 'sleep 31011')"
	run as_user1 "$FERRY" instance list
	refute_output --partial fwd-set
}

# CRIU records a task's credentials as its parasite reports them from inside the dumped process,
# whose memory is the user's to write (/proc/PID/mem, while CRIU holds it seized): a core image
# with capabilities can be signed. Here root stands for that forgery (it re-signs a generation
# whose thread was given CAP_NET_ADMIN, which the restore of an instance with its own loopback
# network holds): the thread must never run with it. /proc/PID/status shows only the leader's
# credentials, so only a look at every thread before the tree resumes sees it.
@test "a restored thread whose image grants it capabilities never runs: the restore is refused before the tree resumes" {
	local prog=$U1_TMP/caps.progress p t nstid gen core
	conf_set "criu timeout = 30" # (a restore that hung would be given up within it)
	launch fwd-caps "$STATEFUL" --interval 100 --threads 1 --mb 8 "$prog"
	wait_step "$prog" 2
	p=$(pgrep -u "$U1" -x stateful | head -n1)
	[ -n "$p" ] || fail "no stateful process of $U1"
	t=$(ls "/proc/$p/task" | grep -vx "$p" | head -n1)
	[ -n "$t" ] || fail "the workload has no thread"
	nstid=$(awk '/^NSpid:/ {print $NF}' "/proc/$p/task/$t/status")
	dump_ok fwd-caps
	gen=$(current_gen "$CK")
	core=$gen/core-$nstid.img
	[ -f "$core" ] || fail "no core image for the thread ($nstid): $(ls "$gen")"
	assert_equal "$(forge_creds "$core" "$BATS_TEST_TMPDIR/core.img" "$(id -u "$U1")" 0x1000)" "$(id -u "$U1")"
	replace_sealed "$gen" "core-$nstid.img" "$BATS_TEST_TMPDIR/core.img"
	chmod u+w "$gen/manifest"
	manifest_set_file "$gen/manifest" "core-$nstid.img" "$core"
	resign "$gen"
	run --separate-stderr as_user1 "$FERRY" instance start --criu-restart "$T"
	echo "# $stderr"
	assert_failure
	[[ $stderr =~ "a restored task would run with credentials beyond yours" ]] ||
		fail "not refused for its credentials: $stderr"
	! pgrep -u "$U1" -x stateful >/dev/null || fail "a restored process runs: $(pgrep -a -u "$U1" -x stateful)"
	run as_user1 "$FERRY" instance list
	refute_output --partial fwd-caps
}
