# shellcheck shell=bash
# slurm.bash — a real Slurm cluster of two nodes on this machine, for tests/integration/slurm.bats
# (load after ../lib/common and ../lib/checkpoint; sources tests/lib/nodes.sh).
#
#   - its own munged (a private socket and key, as the munge user), never the system's;
#   - a slurmctld (host name 'ctl', 198.18.0.3) and one slurmd per node, n1 (198.18.0.1) and n2
#     (198.18.0.2), each in a network namespace of nodes.sh (ftsnodeA, ftsnodeB, ftspeer: the
#     nodes of ferry, whose instance records are per network namespace) and a UTS namespace of its
#     own for its host name: `nsenter --net` rather than `ip netns exec`, which remounts /sys and
#     hides the cgroups from slurmd (shared/FACTS.md);
#   - its own slurm.conf, state, spool and logs in SLURM_DIR (a fresh temporary directory);
#   - with `slurm_up spank`, a plugstack.conf that loads ferry's installed SPANK plugin
#     ($FERRY_SPANK, ferry-slurm(7)) in sbatch, srun and slurmstepd, and ferry's cli_filter.lua
#     (its ferry_grace set to $SLURM_FERRY_GRACE) (tests/integration/slurm-spank.bats); without,
#     neither (slurm.bats);
#   - the commands (sbatch, squeue, scontrol) in the controller's namespace, as root or a user;
#   - slurm_down: cancels every job, waits for an empty queue, stops the daemons by pid, removes
#     the namespaces and SLURM_DIR: nothing stays, whatever the test did (it runs from
#     teardown_file, and slurm_up starts with it for what a killed run left).
#
# Timing (FACTS.md): slurmctld looks at time limits and --signal about every 30 s; a requeued job
# waits about 121 s before it may start, which `scontrol update jobid=J StartTime=now` cuts short.
# Addresses: only 198.18.0.0/15, only inside the namespaces nodes.sh makes.

NODES_PREFIX=fts
# shellcheck source=tests/lib/nodes.sh
source "$FERRY_TESTS_DIR/lib/nodes.sh"
unset NODES_PREFIX

SLURM_CTL_NS=ftspeer
declare -gA SLURM_NODE_NS=([n1]=ftsnodeA [n2]=ftsnodeB)
SLURM_STATE_FILE=/run/ferry-test-slurm.dir # where a killed run's SLURM_DIR is found again
FERRY_SPANK=/usr/local/lib/ferry/spank_ferry.so # where 'make install' puts the SPANK plugin
FERRY_CLI_FILTER=/usr/local/lib/ferry/cli_filter.lua # ...and its cli_filter.lua

# slurm_ns NAMESPACE CMD...: CMD in that network namespace (not 'ip netns exec': see above).
slurm_ns() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@"
}

# as_slurm_user USER CMD...: a Slurm command as USER (or root) from the controller's namespace.
as_slurm_user() {
	local u=$1
	shift
	if [ "$u" = root ]; then
		slurm_ns "$SLURM_CTL_NS" env SLURM_CONF="$SLURM_DIR/slurm.conf" "$@"
	else
		slurm_ns "$SLURM_CTL_NS" runuser -u "$u" -- sh -c 'cd "$HOME" || exit 99; exec "$@"' slurm-test \
			env SLURM_CONF="$SLURM_DIR/slurm.conf" "$@"
	fi
}
sl() { as_slurm_user root "$@"; }

_slurm_write_conf() {
	local d=$1 spank=${2:-}
	cat >"$d/slurm.conf" <<-EOF
		# ferry's test cluster (tests/lib/slurm.bash)
		ClusterName=ferrytest
		SlurmctldHost=ctl(198.18.0.3)
		SlurmUser=root
		SlurmdUser=root
		AuthType=auth/munge
		AuthInfo=socket=$d/munge/munge.sock
		CredType=cred/munge
		StateSaveLocation=$d/state
		SlurmdSpoolDir=$d/spool/%n
		SlurmctldPidFile=$d/run/slurmctld.pid
		SlurmdPidFile=$d/run/slurmd-%n.pid
		SlurmctldLogFile=$d/log/slurmctld.log
		SlurmdLogFile=$d/log/slurmd-%n.log
		SlurmctldDebug=info
		SlurmdDebug=info
		SlurmctldPort=6817
		SlurmdPort=6818
		ProctrackType=proctrack/linuxproc
		TaskPlugin=task/none
		SchedulerType=sched/builtin
		SelectType=select/cons_tres
		SelectTypeParameters=CR_Core
		MpiDefault=none
		SwitchType=switch/none
		JobCompType=jobcomp/none
		AccountingStorageType=accounting_storage/none
		JobAcctGatherType=jobacct_gather/none
		ReturnToService=2
		JobRequeue=1
		KillWait=10
		MinJobAge=600
		InactiveLimit=0
		MessageTimeout=10
		SlurmdTimeout=60
		PreemptType=preempt/partition_prio
		PreemptMode=REQUEUE
		SlurmctldParameters=preempt_send_user_signal
		NodeName=n1 NodeHostname=n1 NodeAddr=198.18.0.1 CPUs=2 Weight=1 State=UNKNOWN
		NodeName=n2 NodeHostname=n2 NodeAddr=198.18.0.2 CPUs=2 Weight=2 State=UNKNOWN
		PartitionName=batch Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=OFF
		PartitionName=low Nodes=n1,n2 MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=30
		PartitionName=high Nodes=n1,n2 MaxTime=INFINITE State=UP PriorityTier=2 PreemptMode=OFF
	EOF
	chmod 0644 "$d/slurm.conf"
	if [ "$spank" = spank ]; then
		# the setup of ferry-slurm(7): the plugin in plugstack.conf, and ferry's cli_filter.lua
		# (the signal and the requeue of a --ferry-checkpoint job) with ferry.conf's grace time
		{
			echo "PlugStackConfig=$d/plugstack.conf"
			echo "CliFilterPlugins=cli_filter/lua"
		} >>"$d/slurm.conf"
		echo "required $FERRY_SPANK" >"$d/plugstack.conf"
		sed "s/^local ferry_grace = 120\$/local ferry_grace = ${SLURM_FERRY_GRACE:-120}/" \
			"$FERRY_CLI_FILTER" >"$d/cli_filter.lua"
		chmod 0644 "$d/plugstack.conf" "$d/cli_filter.lua"
	fi
}

# _slurm_wait_file FILE SECONDS: until FILE exists.
_slurm_wait_file() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# _slurm_start_daemon NS HOSTNAME PIDFILE CMD...: CMD in NS with its own host name; waits for
# its pid file (Slurm's daemons write it once they run).
_slurm_start_daemon() {
	local ns=$1 host=$2 pidfile=$3
	shift 3
	slurm_ns "$ns" unshare --uts sh -c 'hostname "$1" && shift && exec "$@"' sh "$host" "$@" \
		</dev/null >>"$SLURM_DIR/log/daemons.out" 2>&1
	_slurm_wait_file "$pidfile" 20 || {
		echo "'$*' did not start; its log:" >&2
		tail -n 20 "$SLURM_DIR"/log/*.log "$SLURM_DIR/log/daemons.out" >&2 2>/dev/null
		return 1
	}
}

# slurm_up [spank]: munged, slurmctld and two slurmd, all of this test file's; waits for both
# nodes idle. With "spank", Slurm loads ferry's SPANK plugin (it must be installed).
slurm_up() {
	local spank=${1:-}
	slurm_down
	if [ "$spank" = spank ] && [ ! -f "$FERRY_SPANK" ]; then
		echo "$FERRY_SPANK is not installed (make install, with libslurm-dev: make setup)" >&2
		return 1
	fi
	if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
		echo "Slurm or munge is not installed (run: make setup)" >&2
		return 1
	fi
	SLURM_DIR=$(mktemp -d /var/tmp/ft-slurm.XXXXXX)
	export SLURM_DIR
	echo "$SLURM_DIR" >"$SLURM_STATE_FILE"
	chmod 0755 "$SLURM_DIR"
	mkdir -p "$SLURM_DIR"/{state,spool,run,log,munge}
	chmod 0700 "$SLURM_DIR/state"
	# munge: its socket directory 0755 and key 0400, both the munge user's
	chown munge: "$SLURM_DIR/munge"
	chmod 0755 "$SLURM_DIR/munge"
	head -c 1024 /dev/urandom >"$SLURM_DIR/munge/munge.key"
	chown munge: "$SLURM_DIR/munge/munge.key"
	chmod 0400 "$SLURM_DIR/munge/munge.key"
	runuser -u munge -- munged --socket="$SLURM_DIR/munge/munge.sock" --key-file="$SLURM_DIR/munge/munge.key" \
		--pid-file="$SLURM_DIR/munge/munged.pid" --log-file="$SLURM_DIR/munge/munged.log" \
		--seed-file="$SLURM_DIR/munge/munged.seed" || {
		echo "munged did not start:" >&2
		cat "$SLURM_DIR/munge/munged.log" >&2
		return 1
	}
	_slurm_wait_file "$SLURM_DIR/munge/munge.sock" 10 || return 1
	_slurm_write_conf "$SLURM_DIR" "$spank"
	nodes_up
	_slurm_start_daemon "$SLURM_CTL_NS" ctl "$SLURM_DIR/run/slurmctld.pid" \
		slurmctld -f "$SLURM_DIR/slurm.conf" -i || return 1
	local n
	for n in n1 n2; do
		slurm_start_slurmd "$n" || return 1
	done
	for n in n1 n2; do
		slurm_wait_node_state "$n" idle 60 || return 1
	done
}

# slurm_start_slurmd NODE: the node's slurmd (again, after a test killed it).
slurm_start_slurmd() {
	mkdir -p "$SLURM_DIR/spool/$1"
	rm -f "$SLURM_DIR/run/slurmd-$1.pid"
	_slurm_start_daemon "${SLURM_NODE_NS[$1]}" "$1" "$SLURM_DIR/run/slurmd-$1.pid" \
		slurmd -f "$SLURM_DIR/slurm.conf"
}

# slurm_down: nothing of the cluster stays: jobs, daemons, namespaces, state.
slurm_down() {
	local d=${SLURM_DIR:-}
	[ -n "$d" ] || d=$(cat "$SLURM_STATE_FILE" 2>/dev/null || true)
	if [ -n "$d" ] && [ -d "$d" ] && [[ "$d" == /var/tmp/ft-slurm.* ]]; then
		SLURM_DIR=$d
		if [ -s "$d/run/slurmctld.pid" ] && ip netns list | grep -qw "^$SLURM_CTL_NS"; then
			# jobs first, or the nodes drain with "Kill task failed"
			sl scancel --full --user=ferrytest1 >/dev/null 2>&1 || true
			sl scancel --full --user=ferrytest2 >/dev/null 2>&1 || true
			local i
			for ((i = 0; i < 300; i++)); do
				[ -z "$(sl squeue -h -t all -o %i 2>/dev/null | head -c1)" ] && break
				[ -n "$(sl squeue -h -t running,completing -o %i 2>/dev/null)" ] || break
				sleep 0.1
			done
		fi
		local f p
		for f in "$d"/run/slurmd-*.pid "$d/run/slurmctld.pid" "$d/munge/munged.pid"; do
			[ -s "$f" ] || continue
			p=$(cat "$f")
			kill -TERM "$p" 2>/dev/null || true
			for ((i = 0; i < 100; i++)); do
				kill -0 "$p" 2>/dev/null || break
				sleep 0.1
			done
			kill -KILL "$p" 2>/dev/null || true
		done
	fi
	# the users' instances on the nodes, then the nodes (nodes_down kills what is left in them)
	local ns u
	for ns in "${SLURM_NODE_NS[@]}"; do
		ip netns list | grep -qw "^$ns" || continue
		for u in ferrytest1 ferrytest2; do
			id -u "$u" >/dev/null 2>&1 || continue
			slurm_ns "$ns" runuser -u "$u" -- "$FERRY" instance stop --all --timeout 3 >/dev/null 2>&1 || true
		done
	done
	nodes_down
	if [ -n "$d" ] && [[ "$d" == /var/tmp/ft-slurm.* ]]; then
		rm -rf "$d"
	fi
	rm -f "$SLURM_STATE_FILE"
}

# slurm_node_state NODE: "idle", "allocated", "drained", "mixed" ... (lower case, no flags).
slurm_node_state() {
	sl sinfo -h -n "$1" -o %T 2>/dev/null | head -n1 | tr -d '*~#!%$@^-'
}

slurm_wait_node_state() {
	local n=$1 want=$2 t=${3:-30} i s
	for ((i = 0; i < t * 5; i++)); do
		s=$(slurm_node_state "$n")
		[ "$s" = "$want" ] && return 0
		sleep 0.2
	done
	echo "node $n is '$s', not '$want' after ${t}s" >&2
	tail -n 20 "$SLURM_DIR/log/slurmctld.log" "$SLURM_DIR/log/slurmd-$n.log" >&2 2>/dev/null
	return 1
}

# slurm_job_field JOB FIELD: FIELD of 'scontrol show job' (JobState, NodeList, Restarts...).
slurm_job_field() {
	sl scontrol -o show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n1
}

# slurm_wait_job JOB FIELD VALUE [SECONDS]: until the job's FIELD is VALUE.
slurm_wait_job() {
	local j=$1 f=$2 v=$3 t=${4:-60} i cur
	for ((i = 0; i < t * 5; i++)); do
		cur=$(slurm_job_field "$j" "$f")
		[ "$cur" = "$v" ] && return 0
		sleep 0.2
	done
	echo "job $j: $f is '$cur', not '$v' after ${t}s" >&2
	sl scontrol show job "$j" >&2 2>/dev/null
	return 1
}

# slurm_logs: the daemons' logs, for a failed test.
slurm_logs() {
	local f
	for f in "$SLURM_DIR"/log/*.log "$SLURM_DIR"/log/daemons.out; do
		[ -s "$f" ] || continue
		echo "--- $f" >&2
		tail -n "${1:-30}" "$f" >&2
	done
}

# ---- a job of the tests: its log, written by the workload (tests/workloads/stateful.c, progress
# in $W/progress) and ferry

# wait_log PATTERN SECONDS: until the job's log ($JOB_LOG, by default $W/job.log) has a line
# matching PATTERN (grep -E).
wait_log() {
	local i
	for ((i = 0; i < $2 * 5; i++)); do
		grep -qE -- "$1" "${JOB_LOG:-$W/job.log}" 2>/dev/null && return 0
		grep -q '^FAIL' "$W/progress" 2>/dev/null && fail "the workload failed: $(cat "$W/progress")"
		sleep 0.2
	done
	fail "the job's log has no /$1/ after $2 s"
}

# resumes_on_n2 CK STOPPED ID: the job $JOB, checkpointed into generation 1 of the run CK on n1
# and requeued, starts on n2 at once once n1 is drained (not in 121 s), resumes from that
# generation, and goes on past step STOPPED as the same process (run id ID): every step once, in
# order, on n1 and then on n2; nothing lost, nothing done twice.
resumes_on_n2() {
	local ck=$1 stopped=$2 id=$3
	sl scontrol update nodename=n1 state=drain reason=ferry-test
	sl scontrol update jobid="$JOB" StartTime=now
	slurm_wait_job "$JOB" JobState RUNNING 60
	[ "$(slurm_job_field "$JOB" NodeList)" = n2 ] || fail "the requeued job runs on $(slurm_job_field "$JOB" NodeList), not n2"
	wait_log "^job $JOB on n2, restart 1\$" 30
	wait_log "^ferry: run '$ck': resumed on n2 from generation 1 \(taken .* on n1\)\$" 60
	wait_step "$W/progress" $((stopped + 5)) 30
	[ "$(field_of "$W/progress" run)" = "$id" ] || fail "not the same process: $(cat "$W/progress")"
	assert_progress_ok "$W/progress"
	assert_log_steps_in_order
}

# first_step_after PATTERN SECONDS: the number of the first step line in the job's log after the
# line matching PATTERN (sed address), waited for.
first_step_after() {
	local i s
	for ((i = 0; i < $2 * 5; i++)); do
		s=$(sed -n "/$1/,\$p" "${JOB_LOG:-$W/job.log}" | grep -E '^step [0-9]+ ok ' | head -n1 | awk '{print $2}')
		[ -z "$s" ] || {
			echo "$s"
			return 0
		}
		sleep 0.2
	done
	fail "the job's log has no step after /$1/ in $2 s"
}

# assert_log_steps_in_order: the job's log has every step once, in order: 1, 2, 3...
assert_log_steps_in_order() {
	local steps
	steps=$(grep -E '^step [0-9]+ ok ' "${JOB_LOG:-$W/job.log}" | awk '{print $2}')
	awk 'NR != $1 { print "step " $1 " at line " NR; exit 1 }' <<<"$steps" ||
		fail "the steps in the job's log are not 1, 2, 3...: $(tr '\n' ' ' <<<"$steps")"
}

# slurm_test_teardown JOB-LOG: a test's end on the cluster: on failure the job ($JOB), its log and
# the daemons' logs; the job killed (SIGKILL, not scancel's SIGTERM, which would checkpoint it and
# requeue it again: ferry's watchdog then stops the instance) and gone from the queue; both nodes
# resumed, and what a failure left of the users' instances on them stopped.
slurm_test_teardown() {
	if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		[ -z "$JOB" ] || sl scontrol show job "$JOB" >&2 || true
		echo "--- the job's log:" >&2
		cat "$1" >&2 2>/dev/null || true
		slurm_logs 20
	fi
	if [ -n "$JOB" ]; then
		sl scancel --full --signal=KILL "$JOB" 2>/dev/null || true
		sl scancel "$JOB" 2>/dev/null || true
		local i
		for ((i = 0; i < 300; i++)); do
			case $(slurm_job_field "$JOB" JobState) in
			RUNNING | COMPLETING | PENDING | REQUEUED | CONFIGURING) sleep 0.1 ;;
			*) break ;;
			esac
		done
	fi
	local n u
	for n in n1 n2; do
		sl scontrol update nodename="$n" state=resume >/dev/null 2>&1 || true
		for u in "$U1" "$U2"; do
			slurm_ns "${SLURM_NODE_NS[$n]}" runuser -u "$u" -- "$FERRY" instance stop --all --timeout 3 \
				>/dev/null 2>&1 || true
		done
	done
}
