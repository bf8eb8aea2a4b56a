#!/usr/bin/env bats
# instance start / list / stop and exec instance://NAME, in all image forms,
# as root and as a test user; cleanup after stop.

load ../lib/common

setup_file() { ferry_suite_setup; }
teardown_file() { ferry_suite_teardown; }
setup() { ferry_test_setup; }
teardown() { ferry_teardown; }

# log_of USER NAME EXT: the instance's log file
log_of() {
	local h
	if [ "$1" = root ]; then h=/root; else h=$(getent passwd "$1" | cut -d: -f6); fi
	echo "$h/.ferry/instances/$(hostname)/$2.$3"
}

# who_run USER CMD...: as_root or as_userN by name
who_run() {
	local u=$1
	shift
	if [ "$u" = root ]; then "$@"; else as_user "$u" "$@"; fi
}

json_field() { # JSON NAME FIELD
	python3 -c 'import json,sys
d = json.loads(sys.argv[1])
for i in d["instances"]:
    if i["instance"] == sys.argv[2]:
        print(i[sys.argv[3]])' "$1" "$2" "$3"
}

@test "idle instance: start, list (table and --json), stop, in every form, as a user and as root" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		for u in "$U1" root; do
			name=${ROOT_INSTANCE_PREFIX}idle-$f
			echo "# user $u"
			run --separate-stderr who_run "$u" ferry instance start "$IMG" "$name"
			assert_success
			[ -z "$stderr" ] || fail "instance start printed on stderr: $stderr"

			run who_run "$u" ferry instance list
			assert_success
			assert_line --index 0 --regexp '^INSTANCE NAME +PID +IP +STARTED +IMAGE$'
			assert_line --regexp "^$name +[0-9]+ +- +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} +$IMG\$"

			run who_run "$u" ferry instance list --json
			assert_success
			json=$output
			python3 -c 'import json,sys; json.loads(sys.argv[1])' "$json" || fail "not JSON: $json"
			assert_equal "$(json_field "$json" "$name" img)" "$IMG"
			pid=$(json_field "$json" "$name" pid)
			[ "$pid" -gt 1 ] || fail "bad pid '$pid' in $json"
			assert_equal "$(json_field "$json" "$name" logOutPath)" "$(log_of "$u" "$name" out)"
			assert_equal "$(json_field "$json" "$name" logErrPath)" "$(log_of "$u" "$name" err)"
			created=$(json_field "$json" "$name" created)
			now=$(date +%s)
			[ "$created" -le "$now" ] && [ "$created" -gt $((now - 120)) ] || fail "created=$created now=$now"

			# the record's pid is the container's init, which runs as the user
			kill -0 "$pid"
			assert_equal "$(stat -c %U /proc/"$pid")" "$u"
			[ -e "$(rundir_of "$(id -u "$u")")/$name" ] || fail "no record under $FERRY_RUNDIR"

			run --separate-stderr who_run "$u" ferry instance stop "$name"
			assert_success
			assert_instance_gone "$u" "$name"
			wait_for sh -c "! kill -0 $pid 2>/dev/null" || fail "init $pid still alive after stop"
			wait_clean 10
		done
	done
}

@test "instance list --json with no instances is an empty list" {
	run as_user2 ferry instance list --json
	assert_success
	python3 -c 'import json,sys; assert json.loads(sys.argv[1]) == {"instances": []}' "$output" ||
		fail "not an empty list: $output"
	run as_user2 ferry instance list
	assert_success
	assert_output --regexp '^INSTANCE NAME +PID +IP +STARTED +IMAGE$'
}

@test "exec instance://NAME runs in the instance: sees its workload, pid 2, shared /tmp and hostname" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		for u in "$U1" root; do
			name=${ROOT_INSTANCE_PREFIX}work-$f
			run who_run "$u" ferry instance start --contain --hostname ft-inst "$IMG" "$name" sleep 1000
			assert_success
			run who_run "$u" ferry exec "instance://$name" ps -o pid,args
			assert_success
			assert_line --regexp '^ *2 +sleep 1000$'
			refute_line --partial bats
			n=$(($(echo "$output" | wc -l) - 1))
			[ "$n" -le 3 ] || fail "ps inside the instance shows $n processes: $output"
			run who_run "$u" ferry exec "instance://$name" sh -c 'cat /proc/2/cmdline | tr "\0" " "; echo; hostname; echo $$; echo $FERRY_INSTANCE'
			assert_success
			assert_line --index 0 "sleep 1000 "
			assert_line --index 1 "ft-inst"
			[ "${lines[2]}" -gt 2 ] || fail "exec'd process is pid ${lines[2]}"
			assert_line --index 3 "$name"
			# a private /tmp, shared by all the instance's processes
			run who_run "$u" ferry exec "instance://$name" sh -c 'echo kept > /tmp/inst-file'
			assert_success
			run who_run "$u" ferry exec "instance://$name" cat /tmp/inst-file
			assert_output "kept"
			[ ! -e /tmp/inst-file ] || fail "--contain instance wrote to the host /tmp"
			# identity in the joined process too
			run who_run "$u" ferry exec "instance://$name" grep -E '^(CapEff|CapBnd|NoNewPrivs|Uid):' /proc/self/status
			assert_line --regexp '^CapEff:[[:space:]]+0000000000000000$'
			assert_line --regexp '^CapBnd:[[:space:]]+0000000000000000$'
			assert_line --regexp '^NoNewPrivs:[[:space:]]+1$'
			assert_line --regexp "^Uid:[[:space:]]+$(id -u "$u")[[:space:]]"
			# its exit status is the command's
			run who_run "$u" ferry exec "instance://$name" sh -c 'exit 5'
			assert_equal "$status" 5
			run who_run "$u" ferry instance stop "$name"
			assert_success
			assert_instance_gone "$u" "$name"
			wait_clean 10
		done
	done
}

@test "an instance's workload is pid 2 and the instance has its own pid namespace" {
	use_image sqsh
	run as_user1 ferry instance start "$IMG" pidns sh -c 'echo "workload pid $$"; exec sleep 1000'
	assert_success
	wait_for grep -q "workload pid" "$(log_of "$U1" pidns out)"
	run cat "$(log_of "$U1" pidns out)"
	assert_output "workload pid 2"
	# the host sees the init and the workload as the user's processes
	pid=$(instance_pid "$U1" pidns)
	run pgrep -P "$pid"
	assert_success
	assert_equal "$(stat -c %U /proc/"$output")" "$U1"
	[ "$(readlink /proc/"$pid"/ns/pid)" != "$(readlink /proc/self/ns/pid)" ] || fail "same pid namespace as the host"
	[ "$(readlink /proc/"$pid"/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] || fail "same mount namespace as the host"
	[ "$(readlink /proc/"$pid"/ns/ipc)" != "$(readlink /proc/self/ns/ipc)" ] || fail "same ipc namespace as the host"
	[ "$(readlink /proc/"$pid"/ns/uts)" != "$(readlink /proc/self/ns/uts)" ] || fail "same uts namespace as the host"
	run as_user1 ferry instance stop pidns
	assert_success
}

@test "instance output goes to the user's log files" {
	use_image dir
	run as_user1 ferry instance start "$IMG" logs sh -c 'echo to-out; echo to-err >&2; exec sleep 1000'
	assert_success
	out=$(log_of "$U1" logs out)
	err=$(log_of "$U1" logs err)
	wait_for grep -q to-out "$out" || fail "nothing in $out"
	wait_for grep -q to-err "$err" || fail "nothing in $err"
	assert_equal "$(stat -c %U "$out")" "$U1"
	assert_equal "$(stat -c %U "$err")" "$U1"
	run as_user1 ferry instance stop logs
	assert_success
}

@test "instance stop --signal USR1 reaches a workload that traps it, and the instance keeps running" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		name=usr1-$f
		run as_user1 ferry instance start "$IMG" "$name" sh -c 'trap "echo got-usr1" USR1; echo ready; while :; do sleep 0.1; done'
		assert_success
		log=$(log_of "$U1" "$name" out)
		wait_for grep -q ready "$log" || fail "workload not ready: $(cat "$log")"
		# one at a time: signals sent while one is pending merge into one
		n=0
		for sig in USR1 SIGUSR1 10; do
			run as_user1 ferry instance stop --signal "$sig" "$name"
			assert_success
			n=$((n + 1))
			wait_for sh -c "[ \$(grep -c got-usr1 '$log') -ge $n ]" ||
				fail "workload did not get --signal $sig: $(cat "$log")"
		done
		run as_user1 ferry instance list
		assert_line --regexp "^$name "
		run as_user1 ferry instance stop "$name"
		assert_success
		assert_instance_gone "$U1" "$name"
	done
}

@test "instance stop --signal TERM/KILL ends the instance; a bad signal is refused" {
	use_image sqsh
	run as_user1 ferry instance start "$IMG" sigterm sleep 1000
	assert_success
	run --separate-stderr as_user1 ferry instance stop --signal NOSUCHSIG sigterm
	assert_ferry_error "signal"
	run as_user1 ferry instance list
	assert_line --regexp '^sigterm '
	run as_user1 ferry instance stop --signal KILL sigterm
	assert_success
	assert_instance_gone "$U1" sigterm
}

@test "instance stop --all stops every instance of the user, and only theirs" {
	use_image sqsh
	for n in a1 a2 a3; do
		run as_user1 ferry instance start "$IMG" "$n"
		assert_success
	done
	run as_user2 ferry instance start "$IMG" other
	assert_success
	run as_user1 ferry instance stop --all
	assert_success
	for n in a1 a2 a3; do
		assert_instance_gone "$U1" "$n"
	done
	wait_for sh -c "! pgrep -u $U1 >/dev/null" || fail "processes of $U1 left: $(pgrep -u "$U1" -a)"
	run as_user2 ferry instance list
	assert_line --regexp '^other '
	run as_user2 ferry instance stop other
	assert_success
}

@test "instance stop of a workload that ignores SIGTERM kills it after --timeout; --force kills at once" {
	use_image dir
	run as_user1 ferry instance start "$IMG" stubborn sh -c 'trap "" TERM; echo ready; while :; do sleep 0.1; done'
	assert_success
	wait_for grep -q ready "$(log_of "$U1" stubborn out)"
	SECONDS=0
	run --separate-stderr as_user1 ferry instance stop --timeout 1 stubborn
	assert_success
	[ "$SECONDS" -le 6 ] || fail "stop took ${SECONDS}s"
	assert_instance_gone "$U1" stubborn
	run as_user1 ferry instance start "$IMG" stubborn2 sh -c 'trap "" TERM; while :; do sleep 0.1; done'
	assert_success
	SECONDS=0
	run as_user1 ferry instance stop --force stubborn2
	assert_success
	[ "$SECONDS" -le 3 ] || fail "stop --force took ${SECONDS}s"
	assert_instance_gone "$U1" stubborn2
}

@test "cleanup after stop: no record, no process, no loop device, no mount" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		run as_user1 ferry instance start "$IMG" clean-$f sh -c 'sleep 1000 & sleep 1000 & wait'
		assert_success
		pid=$(instance_pid "$U1" clean-$f)
		if [ "$f" != dir ]; then
			[ -n "$(losetup -j "$IMG")" ] || fail "no loop device while the instance runs?"
		fi
		wait_for sh -c "[ \$(pgrep -u $U1 | wc -l) -ge 4 ]" || fail "workload not running: $(pgrep -u "$U1" -a)"
		run as_user1 ferry instance stop clean-$f
		assert_success
		assert_instance_gone "$U1" clean-$f
		[ ! -e "/proc/$pid" ] || wait_for sh -c "[ ! -e /proc/$pid ]" || fail "init $pid still there"
		wait_clean 10
		[ -z "$(losetup -j "$IMG")" ] || fail "loop device left on $IMG: $(losetup -j "$IMG")"
	done
}

@test "an instance whose workload exits disappears by itself" {
	for f in "${FORMS[@]}"; do
		use_image "$f"
		run as_user1 ferry instance start "$IMG" short-$f sleep 1
		assert_success
		wait_for sh -c "[ ! -e $(rundir_of "$U1_UID")/short-$f ]" || fail "record stays after the workload exited"
		assert_instance_gone "$U1" short-$f
		wait_clean 10
		run --separate-stderr as_user1 ferry exec instance://short-$f true
		assert_ferry_error "short-$f"
	done
}

@test "instance start --wait-all: a command that leaves a daemon and exits keeps the instance until the daemon ends; without it the instance ends with the command" {
	use_image sqsh
	local rd
	rd=$(rundir_of "$U1_UID")
	# without: the instance, and its daemon, end with the command
	run as_user1 ferry instance start "$IMG" wa-no sh -c 'setsid sleep 300 </dev/null >/dev/null 2>&1 & exit 3'
	assert_success
	wait_for sh -c "[ ! -e $rd/wa-no ]" || fail "wa-no stayed after its command exited"
	assert_instance_gone "$U1" wa-no
	# with: the daemon holds it
	run as_user1 ferry instance start --wait-all "$IMG" wa-yes sh -c 'setsid sleep 300 </dev/null >/dev/null 2>&1 & echo started; exit 3'
	assert_success
	wait_for grep -qx started "$(log_of "$U1" wa-yes out)" || fail "the command did not run"
	# the command ended (only the daemon is left beside init), the instance runs on
	local procs i
	for ((i = 0; i < 100; i++)); do
		procs=$(as_user1 ferry exec instance://wa-yes ps -o comm= | grep -vx ps | sort | tr '\n' ' ')
		[[ "$procs" != *"sh "* ]] && break
		sleep 0.1
	done
	[[ "$procs" == *sleep* && "$procs" != *"sh "* ]] || fail "not the daemon alone: $procs"
	[ -e "$rd/wa-yes" ] || fail "wa-yes ended with its command"
	# once the daemon ends, so does the instance, by itself
	# (this exec is in the instance too: it may be killed with it, 137)
	run as_user1 ferry exec instance://wa-yes sh -c 'for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = sleep ] && kill ${p#/proc/}; done; sleep 5'
	[ "$status" -eq 0 ] || [ "$status" -eq 137 ] || fail "exec: $status: $output"
	wait_for sh -c "[ ! -e $rd/wa-yes ]" || fail "wa-yes stayed after its last process ended"
	assert_instance_gone "$U1" wa-yes
	# 'instance stop' reaches the daemons once the command is gone
	run as_user1 ferry instance start --wait-all "$IMG" wa-stop sh -c 'setsid sleep 300 </dev/null >/dev/null 2>&1 & exit 0'
	assert_success
	for ((i = 0; i < 100; i++)); do
		procs=$(as_user1 ferry exec instance://wa-stop ps -o comm= | grep -vx ps | sort | tr '\n' ' ')
		[[ "$procs" != *"sh "* ]] && break
		sleep 0.1
	done
	run as_user1 ferry instance stop --timeout 30 wa-stop
	assert_success
	assert_instance_gone "$U1" wa-stop
	# it belongs to instance start
	run --separate-stderr as_user1 ferry exec --wait-all "$IMG" true
	assert_ferry_error "--wait-all belongs to 'ferry instance start'"
}

@test "an instance name can be reused after stop" {
	use_image sqsh
	for i in 1 2; do
		run as_user1 ferry instance start "$IMG" reuse
		assert_success
		run as_user1 ferry instance stop reuse
		assert_success
		assert_instance_gone "$U1" reuse
	done
}

@test "instances of two users may have the same name; each sees and controls only their own" {
	use_image sqsh
	run as_user1 ferry instance start "$IMG" same sh -c 'echo u1 > /tmp/who; exec sleep 1000'
	assert_success
	run as_user2 ferry instance start "$IMG" same sleep 1000
	assert_success
	run as_user1 ferry exec instance://same id -u
	assert_output "$U1_UID"
	run as_user2 ferry exec instance://same id -u
	assert_output "$U2_UID"
	run as_user2 ferry instance stop same
	assert_success
	assert_instance_gone "$U2" same
	run as_user1 ferry instance list
	assert_line --regexp '^same '
	run as_user1 ferry instance stop same
	assert_success
}

@test "instance start with --bind and --env: exec into the instance sees them" {
	use_image sif
	as_user1 mkdir "$U1_TMP/data"
	as_user1 sh -c "echo bound > '$U1_TMP/data/f'"
	run as_user1 ferry instance start -B "$U1_TMP/data:/data" --env FT_INST=yes "$IMG" withopts sh -c 'echo "env=$FT_INST"; exec sleep 1000'
	assert_success
	run as_user1 ferry exec instance://withopts cat /data/f
	assert_output "bound"
	wait_for grep -q "env=yes" "$(log_of "$U1" withopts out)"
	run as_user1 ferry instance stop withopts
	assert_success
}

@test "exec instance:// refuses options that only apply to a new container" {
	use_image dir
	run as_user1 ferry instance start "$IMG" opts
	assert_success
	run --separate-stderr as_user1 ferry exec -B "$U1_TMP:/x" instance://opts true
	assert_ferry_error
	run --separate-stderr as_user1 ferry exec --contain instance://opts true
	assert_ferry_error
	run --separate-stderr as_user1 ferry run instance://opts
	assert_ferry_error
	run as_user1 ferry instance stop opts
	assert_success
}

@test "exec into a stopped or unknown instance is a clean error" {
	run --separate-stderr as_user1 ferry exec instance://never-started true
	assert_ferry_error "never-started"
	run --separate-stderr as_user1 ferry instance stop never-started
	assert_ferry_error "never-started"
}

@test "an instance outlives the shell that started it" {
	use_image sqsh
	run as_user1 sh -c "ferry instance start '$IMG' detached sleep 1000; exit 0"
	assert_success
	# the shell has ended: the instance is still there to exec into (and stays: the stop below
	# finds it running)
	wait_for as_user1 ferry exec instance://detached true || fail "the instance ended with the shell"
	run as_user1 ferry exec instance://detached true
	assert_success
	run as_user1 ferry instance stop detached
	assert_success
}
