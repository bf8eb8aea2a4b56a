# shellcheck shell=bash
# migrate.bash — helpers of tests/integration/migrate.bats (load after ../lib/common and
# ../lib/checkpoint, with tests/lib/nodes.sh sourced).
#
#   - one ferryd per simulated node (foreground, as root, in the node's network namespace),
#     started and killed by pid, its log per test;
#   - the test user's stateful workload (tests/workloads/stateful.c) in a --criu-launch instance
#     on a node, optionally with a TCP stream (tests/workloads/tcpstream.c) to a server in `peer`;
#   - `ferry migrate` as a user on a node, and checks of its report;
#   - where an instance runs (records are per node: 'instance list' in the node's namespace);
#   - ferry-wire.py: a client of ferryd's wire protocol (src/lib/proto.h) and of the peer
#     handshake (src/lib/xfer.c), to send what ferry itself never sends.
#
# Addresses: only 198.18.0.0/15, only inside the namespaces nodes.sh makes.

FERRYD=/usr/local/sbin/ferryd
MIG_PORT=7780
MIG_SHARED=/var/tmp/ft-migrate-shared # the "shared filesystem" of default-mode migrations
MIG_TMPFS=/dev/shm/ft-migrate         # + "-NODE": where diskless migrations land on NODE
TCP=$CKPT_BIN/tcpstream
NETCONF=/etc/ferry/network/ftmac.conflist
MIG_SMALL=/var/tmp/ft-migrate-small   # a small tmpfs mounted there: a full destination

# (global: bats loads files inside a function, where a plain declare makes locals; nodes.sh's
# NODE_IP is repeated here for that reason)
declare -gA FERRYD_PID=() FERRYD_LOG=()
declare -gA NODE_IP=([nodeA]=198.18.0.1 [nodeB]=198.18.0.2 [peer]=198.18.0.3)

other_node() { if [ "$1" = nodeA ]; then echo nodeB; else echo nodeA; fi; }

# ---------------------------------------------------------------- setup

# Once per file: the workloads, the nodes, the macvlan network, the wire client.
JOURNAL=/var/lib/ferry/ferryd # ferryd's journals, a directory a node (src/ferryd/journal.h)

migrate_suite_setup() {
	build_ckpt_workload
	(
		flock 9
		if [ ! -x "$TCP" ] || [ "$FERRY_TESTS_DIR/workloads/tcpstream.c" -nt "$TCP" ]; then
			gcc -static -O2 -Wall -Wextra -Werror -o "$TCP.tmp" "$FERRY_TESTS_DIR/workloads/tcpstream.c" || exit 1
			chmod 0755 "$TCP.tmp"
			mv "$TCP.tmp" "$TCP"
		fi
	) 9>/run/lock/ferry-test-ckpt-bin.lock
	[ -x "$FERRYD" ] || {
		echo "ferryd is not installed ($FERRYD): make install" >&2
		return 1
	}
	nodes_up
	write_test_network "$NETCONF"
	write_wire_client "$IMAGES/ferry-wire.py"
	WIRE=$IMAGES/ferry-wire.py
	export WIRE
}

migrate_suite_teardown() {
	ferryd_stop nodeA
	ferryd_stop nodeB
	nodes_down
	rm -f "$NETCONF"
	rm -rf "$MIG_SHARED" "$MIG_TMPFS"-node*
	rmdir "$MIG_SMALL" 2>/dev/null || true
}

# image_fingerprint FILE: the image's fingerprint as ferry computes it (src/lib/manifest.c): its
# size, and the SHA-256 of its first and last MiB (from 0 when it is smaller).
image_fingerprint() {
	python3 - "$1" <<-'EOF'
		import hashlib, os, sys
		with open(sys.argv[1], "rb") as f:
		    size = os.fstat(f.fileno()).st_size
		    mib = 1 << 20
		    data = f.read(mib)
		    f.seek(size - mib if size > mib else 0)
		    data += f.read(mib)
		print("%d:%s" % (size, hashlib.sha256(data).hexdigest()))
	EOF
}

# criu_path: the CRIU ferry.conf names; criu_version: its version ("4.2.1").
criu_path() {
	local criu
	criu=$(sed -n 's/^criu path *= *//p' /etc/ferry/ferry.conf | tail -n1)
	echo "${criu:-/usr/local/sbin/criu}"
}
criu_version() { "$(criu_path)" --version | sed -n 's/^Version: //p'; }

# inst_field NODE NAME FIELD: FIELD ("pid", "mac", ...) of user 1's instance NAME in NODE's
# 'ferry instance list --json'; nothing when NAME is not listed there.
inst_field() {
	on_as "$1" "$U1" "$FERRY" instance list --json |
		python3 -c 'import json, sys
for i in json.load(sys.stdin)["instances"]:
    if i["instance"] == sys.argv[1]: print(i[sys.argv[2]])' "$2" "$3"
}

# mig_file_setup, mig_file_teardown PREFIX: a file of tests on the two nodes begins and ends
# with these (PREFIX: its tests' instances and checkpoints, all removed).
mig_file_setup() {
	ferry_suite_setup
	migrate_suite_setup
}

mig_file_teardown() {
	ferry_suite_teardown
	migrate_suite_teardown
	rm -rf "$U1_HOME"/.ferry/checkpoint/"$1"-* "$U2_HOME"/.ferry/checkpoint/"$1"-* \
		"$U1_HOME"/.ferry/instances/*/"$1"-* "$U2_HOME"/.ferry/instances/*/"$1"-* 2>/dev/null || true
}

# mig_test_teardown [LINES]: what every test on the two nodes ends with, whatever it did: a failed
# test shows the ferryd logs (their last LINES lines; all without); nodeB's link up, no shaping
# or stall left; the test's processes, instances and daemons stopped; its directories, small
# tmpfs, image copy and ferry.conf settings gone.
mig_test_teardown() {
	local n p
	if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		for n in nodeA nodeB; do
			[ -n "${FERRYD_LOG[$n]:-}" ] || continue
			echo "---- ferryd on $n:"
			if [ -n "${1:-}" ]; then tail -n "$1" "${FERRYD_LOG[$n]}"; else cat "${FERRYD_LOG[$n]}"; fi
		done
	fi
	ip -n nodeB link set eth0 up 2>/dev/null || true
	for n in nodeA nodeB; do
		ip netns exec "$n" tc qdisc del dev eth0 root 2>/dev/null || true
		ip netns exec "$n" nft delete table inet ftstall 2>/dev/null || true
	done
	for p in "${PEER_PIDS[@]}" "${FOLLOW_PIDS[@]}" ${MIG_BG_PID:-}; do
		kill "$p" 2>/dev/null || true
	done
	stop_all_instances
	ferryd_stop nodeA
	ferryd_stop nodeB
	if mountpoint -q "$MIG_SMALL" 2>/dev/null; then
		umount "$MIG_SMALL"
	fi
	rm -rf "${MIG_SHARED:?}"/* "$MIG_TMPFS"-node* "$U1_HOME"/.ferry/checkpoint/"$T"-* "$U1_HOME"/.ferry/checkpoint/"$T"
	[ -z "${MIG_IMAGE_DIR:-}" ] || rm -rf "$MIG_IMAGE_DIR"
	conf_restore
	ferry_teardown
}

# mig_test_setup PREFIX: what every test on the two nodes starts with: the sqsh image ($IMG),
# no peers or followers yet, the user's output directory $OUT (open to the nodes' root),
# T=PREFIX-<test number> naming the test's instances and checkpoints, and empty journals on the
# nodes (a test that ends a migration early leaves it unsettled: the next test's daemons must
# not settle it, restarting an instance of an earlier test).
mig_test_setup() {
	rm -f "$JOURNAL"/nodeA/* "$JOURNAL"/nodeB/*
	ferry_test_setup
	use_image sqsh >/dev/null
	PEER_PIDS=()
	FOLLOW_PIDS=()
	OUT=$U1_TMP/out
	as_user1 mkdir -p "$OUT"
	chmod 0777 "$OUT"
	T=$1-$BATS_TEST_NUMBER
}

# mig_conf [SETTING...]: ferry.conf for these tests (the network, and SETTINGs such as
# 'criu timeout = 5'). ferryd reads it when it starts: call before ferryd_start.
mig_conf() {
	conf_set "allow net network = ftmac" "allow net args = yes" "allow net ip range = 198.18.1.0/24" "$@"
}

# mig_up [SETTING...]: mig_conf, then ferryd on both nodes (each the other's peer).
mig_up() {
	mig_conf "$@"
	ferryd_start nodeA
	ferryd_start nodeB
}

# ---------------------------------------------------------------- ferryd

# hup_and_wait NODE TEXT: SIGHUP to ferryd on NODE, until its log has one more line with TEXT.
hup_and_wait() {
	local n=$1 text=$2 before i
	before=$(grep -cF -- "$text" "${FERRYD_LOG[$n]}" || true)
	kill -HUP "${FERRYD_PID[$n]}"
	for ((i = 0; i < 200; i++)); do
		[ "$(grep -cF -- "$text" "${FERRYD_LOG[$n]}" || true)" -gt "$before" ] && return 0
		sleep 0.05
	done
	fail "ferryd on $n logged no '$text' after SIGHUP: $(tail -n 5 "${FERRYD_LOG[$n]}")"
}


# ferryd_start NODE [FERRYD OPTION...]: ferryd for NODE, the other compute node its peer (with
# FERRYD_CONF_PEERS=1, the peers are ferry.conf's); waits until it listens. Its log:
# $BATS_TEST_TMPDIR/ferryd-NODE.log.
ferryd_start() {
	local n=$1 o i
	shift
	o=$(other_node "$n")
	local -a peer=(--peer "$o=${NODE_IP[$o]}:$MIG_PORT")
	[ -z "${FERRYD_CONF_PEERS:-}" ] || peer=()
	FERRYD_LOG[$n]=$BATS_TEST_TMPDIR/ferryd-$n.log
	mkdir -p "$MIG_SHARED"
	chmod 0755 "$MIG_SHARED"
	# (ip netns exec execs ferryd: $! is ferryd's pid; started from a subshell, so that it is
	# no job of the test's shell; fd 3 closed, or bats would wait for it)
	(
		ip netns exec "$n" "$FERRYD" --node "$n" --listen "${NODE_IP[$n]}:$MIG_PORT" \
			"${peer[@]}" --shared-dir "$MIG_SHARED" --tmpfs-dir "$MIG_TMPFS-$n" \
			"$@" >>"${FERRYD_LOG[$n]}" 2>&1 </dev/null 3>&- &
		echo $! >"$BATS_TEST_TMPDIR/ferryd-$n.pid"
	)
	FERRYD_PID[$n]=$(cat "$BATS_TEST_TMPDIR/ferryd-$n.pid")
	for ((i = 0; i < 100; i++)); do
		grep -q "listening on" "${FERRYD_LOG[$n]}" 2>/dev/null && return 0
		kill -0 "${FERRYD_PID[$n]}" 2>/dev/null || break
		sleep 0.05
	done
	fail "ferryd on $n did not start: $(cat "${FERRYD_LOG[$n]}")"
}

# ferryd_alive NODE: the daemon we started is still there (not a zombie).
ferryd_alive() {
	local p=${FERRYD_PID[$1]:-}
	[ -n "$p" ] && [ -e "/proc/$p" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$p/status" 2>/dev/null
}

# ferryd_procs NODE [all|COMM]: the pids of the processes ferryd runs in NODE: the daemon and
# its connection handlers (comm ferryd); with "all", also what they run (starters, CRIU); with
# another word, only the processes of that name in the tree.
ferryd_procs() {
	local n=$1 what=${2:-ferryd} root=${FERRYD_PID[$1]:-} pid ppid comm
	[ -n "$root" ] || return 0
	local -A kids=() comm_of=()
	while read -r pid ppid comm; do
		kids[$ppid]+=" $pid"
		comm_of[$pid]=$comm
	done < <(ps -e -o pid=,ppid=,comm=)
	local -a todo=("$root") found=()
	while [ ${#todo[@]} -gt 0 ]; do
		pid=${todo[0]}
		todo=("${todo[@]:1}")
		if [ "$what" = all ] || [ "${comm_of[$pid]:-}" = "$what" ]; then
			found+=("$pid")
		fi
		# shellcheck disable=SC2206
		todo+=(${kids[$pid]:-})
	done
	echo "${found[@]}"
}

# wait_ferryd_runs NODE COMM [SECONDS]: until ferryd on NODE runs a process COMM (its
# ferry-starter: the destination restores).
wait_ferryd_runs() {
	local i
	for ((i = 0; i < ${3:-30} * 50; i++)); do
		[ -n "$(ferryd_procs "$1" "$2")" ] && return 0
		sleep 0.02
	done
	fail "ferryd on $1 ran no $2 within ${3:-30}s"
}

# ferryd_starters NODE: the starters ferryd on NODE runs itself (for a migration, or its
# reconciler to settle one), not what they fork (a transfer's relay, an instance's monitor).
ferryd_starters() {
	local p pp
	for p in $(ferryd_procs "$1" ferry-starter); do
		pp=$(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ')
		if [ -n "$pp" ] && [[ "$(ps -o comm= -p "$pp" 2>/dev/null)" == @(ferryd|ferryd-settle) ]]; then
			echo "$p"
		fi
	done
}

# wait_pids_gone SECONDS PID...: until none of the PIDs runs (a zombie has ended); fails after SECONDS.
wait_pids_gone() {
	local t=$1 i p left
	shift
	for ((i = 0; i < t * 20; i++)); do
		left=
		for p in "$@"; do
			if [ -e "/proc/$p" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$p/status" 2>/dev/null; then
				left+=" $p"
			fi
		done
		[ -z "$left" ] && return 0
		sleep 0.05
	done
	fail "still running after ${t}s:$left"
}

# ferryd_kill NODE [all]: SIGKILL to ferryd on NODE (the daemon, its connection handlers and
# its reconciler, ferryd-settle; with "all", everything they run too: what stopping the service
# would do).
ferryd_kill() {
	local pids
	pids="$(ferryd_procs "$@") $(ferryd_procs "$1" ferryd-settle)"
	# shellcheck disable=SC2086
	[ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
	local i
	for ((i = 0; i < 100; i++)); do
		ferryd_alive "$1" || return 0
		sleep 0.05
	done
}

# ferryd_stop NODE: ends the ferryd we started on NODE (and its connection handlers).
ferryd_stop() {
	local n=$1
	[ -n "${FERRYD_PID[$n]:-}" ] || return 0
	ferryd_kill "$n"
	unset "FERRYD_PID[$n]"
}

# ferryd_log_has NODE TEXT
ferryd_log_has() { grep -qF -- "$2" "${FERRYD_LOG[$1]}"; }

# ---------------------------------------------------------------- users and instances

# on NODE CMD...: CMD as the test user 1 in NODE's network namespace (from its home).
on() {
	local n=$1
	shift
	on_node "$n" runuser -u "$U1" -- env -C "$U1_HOME" "$@"
}

# on_as NODE USER CMD...
on_as() {
	local n=$1 u=$2
	shift 2
	on_node "$n" runuser -u "$u" -- env -C "$(home_of "$u")" "$@"
}

# listed_on NODE NAME [USER]: NAME is in USER's 'instance list' on NODE.
listed_on() {
	on_as "$1" "${3:-$U1}" "$FERRY" instance list | awk 'NR > 1 {print $1}' | grep -qx "$2"
}

# kill_member NODE NAME: member NAME on NODE is gone (killed; or it ended by itself already, as
# an end of the stream does once the other end is killed: the stream's end is a failure to it).
kill_member() {
	on "$1" "$FERRY" instance stop --signal KILL "$2" >/dev/null 2>&1 || true
	wait_for not_listed "$1" "$2" || fail "'$2' still runs on $1"
}
not_listed() { ! listed_on "$1" "$2"; }

# assert_only_on NODE NAME [USER]: listed on NODE, not on the other node.
assert_only_on() {
	local n=$1 name=$2 u=${3:-$U1} o
	o=$(other_node "$n")
	listed_on "$n" "$name" "$u" || fail "'$name' is not listed on $n: $(on_as "$n" "$u" "$FERRY" instance list)"
	! listed_on "$o" "$name" "$u" || fail "'$name' is listed on $o too: $(on_as "$o" "$u" "$FERRY" instance list)"
}

# stop_all_instances: every instance of the test users on both nodes.
stop_all_instances() {
	local n u
	for n in nodeA nodeB; do
		for u in "$U1" "$U2"; do
			on_as "$n" "$u" "$FERRY" instance stop --all --timeout 3 >/dev/null 2>&1 || true
		done
	done
}

# mig_launch NODE NAME MB [--net IP] [--tcp PORT] [--image IMAGE] [--verify CHUNKS]
# [--private-tmp]: user 1's stateful workload of MB megabytes in a --criu-launch instance NAME on
# NODE (checkpoint NAME), writing its progress to $OUT/NAME.prog; with --tcp, also a stream to a
# server in peer (started here on PORT, progress $OUT/NAME.srv); --verify bounds the MiB a step
# reads (stateful's own default: 64); --private-tmp gives the instance a /tmp of its own (the
# workload then runs from a copy in user 1's home, the host's /tmp being out of its sight).
# Waits for the first steps.
mig_launch() {
	local n=$1 name=$2 mb=$3 ip="" port="" img=$IMG verify="" bin=$STATEFUL sibling=""
	local -a opts=()
	shift 3
	while [ $# -gt 0 ]; do
		case $1 in
		--net) ip=$2; shift 2 ;;
		--tcp) port=$2; shift 2 ;;
		--image) img=$2; shift 2 ;;
		--verify) verify="--verify $2"; shift 2 ;;
		--compressible) verify="$verify --compressible"; shift ;;
		--sibling) sibling="sleep 1000001 & "; shift ;; # a small process beside it, in its tree
		--private-tmp)
			opts+=(--private-tmp)
			bin=$U1_TMP/stateful
			[ -x "$bin" ] || { cp "$STATEFUL" "$bin" && chmod 0755 "$bin"; } || fail "copy the workload"
			shift ;;
		*) fail "mig_launch: unknown option '$1'" ;;
		esac
	done
	rm -rf "$(ckpt_dir "$U1" "$name")"
	as_user1 "$FERRY" checkpoint create "$name" >/dev/null || fail "checkpoint create $name failed"
	local -a net=()
	[ -z "$ip" ] || net=(--net --network ftmac --network-args "IP=$ip/16")
	local cmd="${sibling}exec $bin --mb $mb $verify --interval 100 $OUT/$name.prog"
	if [ -n "$port" ]; then
		ip netns exec peer "$TCP" serve "198.18.0.3:$port" "$OUT/$name.srv" </dev/null >/dev/null 2>&1 3>&- &
		PEER_PIDS+=("$!")
		wait_for grep -q listening "$OUT/$name.srv" 2>/dev/null || fail "the server in peer did not start"
		cmd="$TCP send 198.18.0.3:$port $OUT/$name.cli 50 & $cmd"
	fi
	run --separate-stderr on "$n" "$FERRY" instance start --criu-launch "$name" "${net[@]}" "${opts[@]}" "$img" "$name" sh -c "$cmd"
	[ "$status" -eq 0 ] || fail "instance start $name on $n failed ($status): $stderr"
	wait_step "$OUT/$name.prog" 3 30
	[ -z "$port" ] || wait_ok "$OUT/$name.srv" 5
}

# criu_watch OUT: in the background (CRIU_WATCH, its pid) until OUT.stop exists (60 s at most),
# records in OUT each CRIU of user 1 seen: "KIND CAPEFF UIDS NSPID", KIND lazy (the lazy-pages
# daemon), page-server or other, UIDS the uids of every process in its pid namespace, NSPID its
# pids from the host's namespace in (NSpid: "H 1" for pid 1 of a namespace of its own).
criu_watch() {
	python3 - "$U1_UID" "$1" <<-'EOF' &
		import os, sys, time
		uid, out = sys.argv[1], sys.argv[2]
		seen = {}
		end = time.time() + 60
		while time.time() < end and not os.path.exists(out + ".stop"):
		    procs = [p for p in os.listdir("/proc") if p.isdigit()]
		    for p in procs:
		        try:
		            if open("/proc/%s/comm" % p).read().strip() != "criu":
		                continue
		            st = dict(l.split(":", 1) for l in open("/proc/%s/status" % p) if ":" in l)
		            if st["Uid"].split()[0] != uid:
		                continue
		            ns = os.readlink("/proc/%s/ns/pid" % p)
		            uids = set()
		            for q in procs:
		                try:
		                    if os.readlink("/proc/%s/ns/pid" % q) == ns:
		                        uids.add(os.stat("/proc/%s" % q).st_uid)
		                except OSError:
		                    pass
		            args = open("/proc/%s/cmdline" % p).read().split("\0")
		            if not args[0]:
		                continue  # a zombie: what it was is already recorded
		            kind = "lazy" if "lazy-pages" in args else "page-server" if "page-server" in args else "other"
		            seen[p] = "%s %s %s %s" % (kind, st["CapEff"].strip(), ",".join(str(u) for u in sorted(uids)),
		                                       ",".join(st["NSpid"].split()))
		        except (OSError, KeyError):
		            pass
		    time.sleep(0.002)
		open(out, "w").write("\n".join(seen.values()) + "\n")
	EOF
	CRIU_WATCH=$!
}

# assert_own_pidns OUT KIND WHAT: in criu_watch's OUT, a CRIU of KIND (WHAT in the message) with
# CAP_CHECKPOINT_RESTORE alone as pid 1 of a pid namespace of its own, and every CRIU of KIND so,
# in a nested namespace that holds the user's processes alone (CRIU forks children of its own
# there): all it leaves (a kerndat probe's stopped child, were its starter killed) ends with it.
assert_own_pidns() {
	local out=$1 kind=$2 what=$3
	grep -Eq "^$kind 0000010000000000 $U1_UID [0-9]+,1\$" "$out" ||
		fail "no $what with CAP_CHECKPOINT_RESTORE alone, pid 1 of its own pid namespace: $(cat "$out")"
	! grep -E "^$kind " "$out" | grep -Evq "^$kind 0000010000000000 $U1_UID [0-9]+,[0-9]+\$" ||
		fail "a $what with more, or outside a pid namespace of the user's alone: $(cat "$out")"
}

# mig_migrate NODE NAME ARGS...: 'ferry migrate NAME ARGS...' as user 1 on NODE (bats run,
# stdout and stderr apart); prints how long it took to fd 3.
mig_migrate() {
	local n=$1
	shift
	local t0=$EPOCHREALTIME
	run --separate-stderr on "$n" "$FERRY" migrate "$@"
	MIG_SECONDS=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')
}

# ---------------------------------------------------------------- progress

# wait_ok FILE N [SECONDS]: the TCP stream in FILE reaches N (fails at once on FAIL).
wait_ok() {
	local f=$1 want=$2 secs=${3:-20} i v
	for ((i = 0; i < secs * 10; i++)); do
		if [ -e "$f" ]; then
			grep -q FAIL "$f" && fail "$f: $(cat "$f")"
			v=$(awk '$1 == "ok" {print $2}' "$f")
			[ -n "$v" ] && [ "$v" -ge "$want" ] && return 0
		fi
		sleep 0.1
	done
	fail "$f did not reach $want in ${secs}s: $(cat "$f" 2>/dev/null)"
}
num() { awk '$1 == "ok" {print $2}' "$1"; }

# assert_moves_on NAME RUN [SECONDS]: the workload NAME, of run id RUN, makes progress: 5 more
# steps than now, no FAIL, the same run id (the same process, not a fresh start).
assert_moves_on() {
	local name=$1 run_id=$2 secs=${3:-20} s n i
	s=$(step_of "$OUT/$name.prog")
	[ -n "$s" ] || fail "no progress from '$name': $(cat "$OUT/$name.prog" 2>/dev/null)"
	# from the step it writes next: a copy restored from an older checkpoint than the one that
	# wrote last (a copy that ran on, then was stopped) counts on from a lower step
	for ((i = 0; i < secs * 20; i++)); do
		n=$(step_of "$OUT/$name.prog")
		[ -n "$n" ] && [ "$n" != "$s" ] && break
		sleep 0.05
	done
	if [ "$n" = "$s" ]; then
		local w
		w=$(pgrep -f -- "--interval 100 $OUT/$name.prog\$" | head -n1)
		[ -z "$w" ] || echo "# $name (pid $w): $(grep -E '^(State|SigPnd|ShdPnd|SigBlk|TracerPid)' "/proc/$w/status" | tr '\n\t' '  ') wchan $(cat "/proc/$w/wchan" 2>/dev/null)"
		fail "'$name' makes no progress: step $s for ${secs}s"
	fi
	wait_step "$OUT/$name.prog" $((n + 5)) "$secs"
	assert_progress_ok "$OUT/$name.prog"
	[ "$(field_of "$OUT/$name.prog" run)" = "$run_id" ] ||
		fail "'$name' is another run now: $(cat "$OUT/$name.prog") (was run $run_id)"
}

# assert_stalled NAME: the workload makes no progress (looked at 20 times over a second: it
# steps every 100 ms).
assert_stalled() {
	local a b i
	a=$(step_of "$OUT/$1.prog")
	for ((i = 0; i < 20; i++)); do
		sleep 0.05
		b=$(step_of "$OUT/$1.prog")
		[ "$a" = "$b" ] || fail "'$1' still makes progress ($a -> $b)"
	done
}

# assert_stays_only_on NODE NAME SECONDS: for SECONDS (looked at every 0.2 s), NAME is listed on
# NODE only and runs once: nothing starts late elsewhere.
assert_stays_only_on() {
	local i
	for ((i = 0; i < $3 * 5; i++)); do
		assert_only_on "$1" "$2"
		assert_runs_once "$2"
		sleep 0.2
	done
}

# The instance log is written anew by each restart: a follower keeps every step line that was
# ever in it, in order, for assert_consecutive.
log_follow() {
	local f
	f=$(inst_log "$U1" "$1" out)
	tail -n +1 -F "$f" >"$BATS_TEST_TMPDIR/$1.steps" 2>/dev/null </dev/null 3>&- &
	FOLLOW_PIDS+=("$!")
}

# followed NAME: the follower has the step the workload reports now (it caught up).
followed() {
	local s
	s=$(step_of "$OUT/$1.prog")
	[ -n "$s" ] && grep -q "^step $s\b" "$BATS_TEST_TMPDIR/$1.steps" 2>/dev/null
}

# wait_followed NAME: until the follower caught up with the workload (before assert_consecutive).
wait_followed() {
	wait_for followed "$1" || fail "the log of '$1' was not followed up to step $(step_of "$OUT/$1.prog")"
}

# ---------------------------------------------------------------- reports

# assert_report JSON MODE FROM TO MB: one JSON object, a successful report with every phase.
assert_report() {
	python3 - "$@" <<-'EOF' || fail "bad report: $1"
		import json, sys
		text, mode, src, dst, mb = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
		r = json.loads(text)
		want = {"type": "report", "ok": 1, "mode": mode, "from": src, "to": dst}
		for k, v in want.items():
		    if r.get(k) != v:
		        sys.exit("%s is %r, not %r" % (k, r.get(k), v))
		phases = ["request_ms", "prepare_ms", "dump_ms", "sync_ms" if mode == "default" else "transfer_ms",
		          "restore_ms", "total_ms", "downtime_ms", "bytes"]
		for k in phases:
		    if not isinstance(r.get(k), int) or r[k] < 0:
		        sys.exit("%s: %r" % (k, r.get(k)))
		if ("transfer_ms" if mode == "default" else "sync_ms") in r:
		    sys.exit("a phase of the other mode is reported")
		live = ["postcopy_ms", "pages_demand", "pages_pushed"]
		for k in live:
		    if mode == "live" and (not isinstance(r.get(k), int) or r[k] < 0):
		        sys.exit("%s: %r" % (k, r.get(k)))
		    if mode != "live" and k in r:
		        sys.exit("%s reported in %s mode" % (k, mode))
		if mode == "live" and (r["pages_demand"] + r["pages_pushed"]) * 4096 < mb * 1024 * 1024 // 2:
		    sys.exit("%d pages asked and %d pushed for %d MB" % (r["pages_demand"], r["pages_pushed"], mb))
		if not (0 <= r["downtime_ms"] <= r["total_ms"]):
		    sys.exit("downtime %d outside 0..total %d" % (r["downtime_ms"], r["total_ms"]))
		if r["dump_ms"] > r["downtime_ms"]:
		    sys.exit("the dump (%d ms) is part of the downtime (%d ms)" % (r["dump_ms"], r["downtime_ms"]))
		if r["bytes"] < mb * 1024 * 1024:
		    sys.exit("%d bytes moved for %d MB of memory" % (r["bytes"], mb))
		if not isinstance(r.get("id"), str) or len(r["id"]) != 12:
		    sys.exit("bad migration id %r" % r.get("id"))
	EOF
}

json_field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# assert_report_table OUTPUT MODE: the table form.
assert_report_table() {
	local out=$1 mode=$2 row
	grep -qE "^migrated '[a-z0-9-]+': node[AB] -> node[AB] \($mode\), migration [0-9a-f]{12}$" <<<"$out" ||
		fail "no title line: $out"
	local -a rows=(request prepare dump restore total downtime "bytes moved")
	if [ "$mode" = default ]; then rows+=(sync); else rows+=(transfer); fi
	[ "$mode" != live ] || rows+=(post-copy "pages asked" "pages pushed")
	for row in "${rows[@]}"; do
		grep -qE "^  $row +[0-9]+ (ms|B|pages)$" <<<"$out" || fail "no '$row' row: $out"
	done
}

# ---------------------------------------------------------------- wire client

write_wire_client() {
	cat >"$1" <<-'EOF'
		#!/usr/bin/env python3
		"""ferry-wire.py: ferryd's wire protocol, for tests (src/lib/proto.h, src/lib/xfer.c).

		  ferry-wire.py local OP...             this namespace's ferryd (abstract "ferry/ferryd")
		  ferry-wire.py peer HOST:PORT KEY OP...  a ferryd over TCP, after the peer handshake under
		                                        KEY (a file, or "random": a key nobody has); then
		                                        msg/recv/ctl in sealed records (src/ferryd/link.c)
		  ferry-wire.py tcp HOST:PORT OP...     a ferryd over TCP, no handshake
		  ferry-wire.py serve HOST:PORT KEY OP... a fake peer daemon: listens, takes one connection
		                                        from a ferryd, answers its handshake under KEY, then
		                                        OPs in sealed records the other way (a msg value @id
		                                        is the id of the last message received)
		OPs, in order, on one connection:
		  msg K=V...   a well-formed message      raw HEX   bytes as they are
		  len N        a length prefix alone       recv      one message: "reply K=V ..." or closed/timeout
		  ctl HEX      (peer) a control record: the verdict or commit bytes of a default-mode restart;
		               recv shows one from ferryd as "ctl HEX"
		  eof          wait for the end: closed/timeout/data
		  idle N       N more connections (local), kept open    sleep S
		  handoff PATH (local) the process that connected execs PATH (fd 3: a pipe never
		               written), a child goes on with the OPs once it ran: "handed off PID"
		  (serve) outs N BYTES  N "out" messages of a start's answer, BYTES of stdout each (0: no
		               blob field); says how many went: "outs N" or "closed after N outs"
		  (serve) rec TYPE HEX|zeros:N|msg:N  one sealed record of TYPE with those bytes (msg: a
		               well-formed 'done' of about N bytes)
		"""
		import base64, hashlib, hmac, os, socket, struct, sys, time
		from cryptography.hazmat.primitives import hashes
		from cryptography.hazmat.primitives.ciphers.aead import AESGCM
		from cryptography.hazmat.primitives.kdf.hkdf import HKDF

		MAGIC = b"ferry-proto 1\n"
		REC_MSG, REC_CTL, REC_MAX = 0x20, 0x21, 256 * 1024

		class Link:
		    """Either end of ferryd's sealed records (src/lib/channel.h, src/ferryd/link.c): the
		    client sends in direction 1 under the first key, the server in direction 2."""
		    def __init__(self, s, key, nr, ns, server=False):
		        info = b"ferry session keys\nferry-peer-1 client\nferry-peer-1 server\n" + struct.pack("<I", 0)
		        k = HKDF(algorithm=hashes.SHA256(), length=64, salt=nr + ns, info=info).derive(key)
		        c2s, s2c = (AESGCM(k[:32]), 1), (AESGCM(k[32:]), 2)
		        (self.out, self.odir), (self.inp, self.idir) = (s2c, c2s) if server else (c2s, s2c)
		        self.s, self.oseq, self.iseq = s, 0, 0
		    def send(self, typ, data):
		        hdr = struct.pack("<IB", len(data), typ)
		        nonce = struct.pack(">IQ", self.odir, self.oseq)
		        self.oseq += 1
		        self.s.sendall(hdr + self.out.encrypt(nonce, data, hdr))
		    def recv(self):
		        hdr = read_exact(self.s, 5)
		        n, typ = struct.unpack("<IB", hdr)
		        if n > REC_MAX:
		            return None, b""
		        body = read_exact(self.s, n + 16)
		        nonce = struct.pack(">IQ", self.idir, self.iseq)
		        self.iseq += 1
		        try:
		            return typ, self.inp.decrypt(nonce, body, hdr)
		        except Exception:
		            return None, b""

		def encode(fields):
		    body = MAGIC + b"".join(f.encode() + b"\n" for f in fields)
		    return struct.pack("<I", len(body)) + body

		def read_exact(s, n):
		    buf = b""
		    while len(buf) < n:
		        c = s.recv(n - len(buf))
		        if not c:
		            raise EOFError
		        buf += c
		    return buf

		def recv_msg(s, link):
		    if link:
		        typ, body = link.recv()
		        if typ is None:
		            return "bad record"
		        if typ == REC_CTL:
		            return "ctl " + body.hex()
		    else:
		        n = struct.unpack("<I", read_exact(s, 4))[0]
		        body = read_exact(s, n)
		    if not body.startswith(MAGIC):
		        return "bad"
		    return "reply " + " ".join(body[len(MAGIC):].decode(errors="replace").split("\n")[:-1])

		def handshake(s, key):
		    hello = read_exact(s, 36)
		    if hello[:4] != b"FXF1":
		        return "not a ferry receiver"
		    nr, ns, uid = hello[4:], os.urandom(32), struct.pack("<I", 0)
		    proof = hmac.new(key, b"ferry-peer-1 client" + nr + ns + uid, hashlib.sha256).digest()
		    s.sendall(b"FXS1" + uid + ns + proof)
		    try:
		        r = read_exact(s, 36)
		    except (EOFError, ConnectionResetError):
		        return "closed"
		    want = hmac.new(key, b"ferry-peer-1 server" + nr + ns + uid, hashlib.sha256).digest()
		    if r[:4] != b"FXR1" or not hmac.compare_digest(r[4:], want):
		        return "bad proof from the server"
		    return Link(s, key, nr, ns)

		def serve_handshake(s, key):
		    """The server's side of the peer handshake (ferry_peer_accept): the nonce, the client's
		    proof checked, ours sent."""
		    nr = os.urandom(32)
		    s.sendall(b"FXF1" + nr)
		    c = read_exact(s, 72)
		    uid, ns = c[4:8], c[8:40]
		    want = hmac.new(key, b"ferry-peer-1 client" + nr + ns + uid, hashlib.sha256).digest()
		    if c[:4] != b"FXS1" or not hmac.compare_digest(c[40:], want):
		        return "bad proof from the client"
		    s.sendall(b"FXR1" + hmac.new(key, b"ferry-peer-1 server" + nr + ns + uid, hashlib.sha256).digest())
		    return Link(s, key, nr, ns, server=True)

		def blob(prefix, data):
		    """src/lib/proto.c's blob: base64 fields PREFIX_a, _b, ... of 3000 bytes each."""
		    return ["%s_%s=%s" % (prefix, chr(ord("a") + i // 3000), base64.b64encode(data[i:i + 3000]).decode())
		            for i in range(0, len(data), 3000)]

		def unix():
		    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
		    s.connect("\0ferry/ferryd")
		    return s

		def main(argv):
		    keep, link = [], None
		    if argv[0] == "local":
		        s, ops = unix(), argv[1:]
		    elif argv[0] == "tcp":
		        host, port = argv[1].rsplit(":", 1)
		        s, ops = socket.create_connection((host, int(port)), timeout=10), argv[2:]
		    elif argv[0] == "serve":
		        host, port = argv[1].rsplit(":", 1)
		        ls = socket.socket()
		        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
		        ls.bind((host, int(port)))
		        ls.listen(1)
		        ls.settimeout(60)
		        print("listening", flush=True)
		        s = ls.accept()[0]
		        ls.close()
		        key, ops = open(argv[2], "rb").read(), argv[3:]
		        s.settimeout(10)
		        link = serve_handshake(s, key)
		        if isinstance(link, str):
		            print("handshake refused: " + link, flush=True)
		            return
		        print("handshake ok", flush=True)
		    else:
		        host, port = argv[1].rsplit(":", 1)
		        s = socket.create_connection((host, int(port)), timeout=10)
		        key = os.urandom(32) if argv[2] == "random" else open(argv[2], "rb").read()
		        ops = argv[3:]
		        s.settimeout(10)
		        link = handshake(s, key)
		        if isinstance(link, str):
		            print("handshake refused: " + link, flush=True)
		            link = None
		        else:
		            print("handshake ok", flush=True)
		    s.settimeout(10)
		    i, last_id, sent = 0, "", 0
		    while i < len(ops):
		        op = ops[i]
		        i += 1
		        try:
		            if op == "msg":
		                fields = []
		                while i < len(ops) and "=" in ops[i]:
		                    fields.append(ops[i].replace("=@id", "=" + last_id, 1)); i += 1
		                if link:
		                    link.send(REC_MSG, encode(fields)[4:])
		                else:
		                    s.sendall(encode(fields))
		            elif op == "ctl":
		                link.send(REC_CTL, bytes.fromhex(ops[i])); i += 1
		            elif op == "handoff":
		                path = ops[i]; i += 1
		                r, w = os.pipe()
		                if os.fork() == 0:
		                    parent = os.getppid()
		                    for _ in range(200):
		                        with open("/proc/%d/comm" % parent) as c:
		                            if c.read().strip() == os.path.basename(path)[:15]:
		                                break
		                        time.sleep(0.05)
		                    time.sleep(0.5)  # (its first steps: root's limits)
		                    print("handed off %d" % parent, flush=True)
		                else:
		                    os.dup2(r, 3)
		                    os.execv(path, [os.path.basename(path)])
		            elif op == "raw":
		                s.sendall(bytes.fromhex(ops[i])); i += 1
		            elif op == "len":
		                s.sendall(struct.pack("<I", int(ops[i], 0))); i += 1
		            elif op == "recv":
		                # (progress messages come before the answer: shown, then skipped)
		                m = recv_msg(s, link)
		                while m.startswith("reply type=progress"):
		                    print("progress" + m[len("reply type=progress"):], flush=True)
		                    m = recv_msg(s, link)
		                last_id = next((f[3:] for f in m.split(" ") if f.startswith("id=")), last_id)
		                print(m, flush=True)
		            elif op == "outs":
		                n, size = int(ops[i]), int(ops[i + 1]); i += 2
		                data = (b"x" * (size - 1) + b"\n") if size else b""
		                body = encode(["type=out", "id=" + last_id] + blob("out", data))[4:]
		                for sent in range(n):
		                    link.send(REC_MSG, body)
		                sent = n
		                print("outs %d" % n, flush=True)
		            elif op == "rec":
		                typ, what = int(ops[i], 0), ops[i + 1]; i += 2
		                if what.startswith("msg:"):  # a well-formed message of that many bytes
		                    n = int(what[4:])
		                    fields = ["type=done", "id=" + last_id, "status=0"]
		                    fields += ["pad_%s=%s" % (chr(97 + k // 26) + chr(97 + k % 26), "x" * 3990)
		                               for k in range(n // 4000 + 1)]
		                    data = encode(fields)[4:]
		                else:
		                    data = bytes(int(what[6:])) if what.startswith("zeros:") else bytes.fromhex(what)
		                link.send(typ, data)
		            elif op == "eof":
		                print("data" if s.recv(65536) else "closed", flush=True)
		            elif op == "idle":
		                keep += [unix() for _ in range(int(ops[i]))]; i += 1
		                print("idle %d" % len(keep), flush=True)
		            elif op == "sleep":
		                time.sleep(float(ops[i])); i += 1
		            else:
		                sys.exit("unknown op " + op)
		        except (EOFError, ConnectionResetError, BrokenPipeError):
		            print("closed after %d outs" % sent if op == "outs" else "closed", flush=True)
		        except socket.timeout:
		            print("timeout", flush=True)

		main(sys.argv[1:])
	EOF
	chmod 0755 "$1"
}

# ---------------------------------------------------------------- in the background

# mig_bg NODE NAME ARGS...: 'ferry migrate' as user 1 in the background; mig_wait collects it.
mig_bg() {
	local n=$1
	shift
	rm -f "$BATS_TEST_TMPDIR"/bg.{out,err,rc}
	MIG_T0=$EPOCHREALTIME
	(
		rc=0 # (bats runs tests under set -e)
		on "$n" "$FERRY" migrate "$@" >"$BATS_TEST_TMPDIR/bg.out" 2>"$BATS_TEST_TMPDIR/bg.err" || rc=$?
		echo "$rc" >"$BATS_TEST_TMPDIR/bg.rc.tmp"
		mv "$BATS_TEST_TMPDIR/bg.rc.tmp" "$BATS_TEST_TMPDIR/bg.rc"
	) </dev/null 3>&- &
	MIG_BG_PID=$!
}

# mig_wait SECONDS: waits for mig_bg's command; sets status, output, stderr and MIG_SECONDS as
# bats' run does; fails when it is still running after SECONDS.
mig_wait() {
	local t=$1 i
	for ((i = 0; i < t * 10; i++)); do
		[ -e "$BATS_TEST_TMPDIR/bg.rc" ] && break
		sleep 0.1
	done
	if [ ! -e "$BATS_TEST_TMPDIR/bg.rc" ]; then
		echo "---- processes:"
		ps -eo pid,ppid,user,stat,wchan:24,args --forest | grep -E "ferry|criu|runuser|migrat" | grep -v grep
		fail "ferry migrate still runs after ${t}s (hangs?)"
	fi
	wait "$MIG_BG_PID" 2>/dev/null || true
	# shellcheck disable=SC2034 # as bats' run sets them
	status=$(cat "$BATS_TEST_TMPDIR/bg.rc")
	output=$(cat "$BATS_TEST_TMPDIR/bg.out")
	stderr=$(cat "$BATS_TEST_TMPDIR/bg.err")
	MIG_SECONDS=$(awk -v a="$MIG_T0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')
}

# wait_landed NODE MB [SECONDS]: until NODE's diskless directory holds MB megabytes (pages in
# flight).
wait_landed() {
	local n=$1 mb=$2 t=${3:-30} i have
	for ((i = 0; i < t * 20; i++)); do
		have=$(du -sm "$MIG_TMPFS-$n" 2>/dev/null | cut -f1)
		[ -n "$have" ] && [ "$have" -ge "$mb" ] && return 0
		sleep 0.05
	done
	fail "no $mb MB arrived in $MIG_TMPFS-$n within ${t}s (${have:-0} MB)"
}

# workload_count NAME: how many stateful processes write NAME's progress (exactly one, or the
# instance runs twice, or not at all).
workload_count() { pgrep -f -c -- "--interval 100 $OUT/$1.prog\$" || true; }

# assert_runs_once NAME: exactly one copy, as user 1.
assert_runs_once() {
	local c p
	c=$(workload_count "$1")
	[ "$c" = 1 ] || fail "'$1' runs $c times: $(pgrep -a -f -- "$OUT/$1.prog")"
	p=$(pgrep -f -- "--interval 100 $OUT/$1.prog\$")
	[ "$(stat -c %u "/proc/$p")" = "$U1_UID" ] || fail "'$1' (pid $p) does not run as $U1"
}
