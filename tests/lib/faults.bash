# shellcheck shell=bash
# faults.bash — the fault matrix of tests/integration/faults.bats (load after ../lib/migrate).
#
# A cell is (mode, step, fault): one migration of user 1's stateful workload nodeA -> nodeB with
# that fault at that step (the steps: src/ferryd/steps.h; live mode has diskless's, its post-copy
# inside src-dump and dst-restore), then the checks of issue 12:
#   - the job runs exactly once afterwards, the same run (resumed or restored, never started
#     anew), and makes progress;
#   - both nodes' journals are empty (the migration is settled), and nothing is left: no
#     starter or CRIU of ferryd's, no leaf in either tmpfs directory, no checkpoint in the shared
#     directory but the one the instance runs from, the loop devices and mounts as before.
# The ferryd on both nodes is the fault build (build-fault/ferryd: make fault-build), run from
# the build directory, with the installed setuid starter: the fault points are ferryd's only.
#
# Faults:
#   fail, cut            FERRY_FAULT=STEP=fail|cut on the step's side (fault.h)
#   kill-src-ferryd,     the step's side stops itself at the step (FERRY_FAULT=STEP=stop); the
#   kill-dst-ferryd      test SIGKILLs every ferryd process of that node (daemon, handlers,
#                        reconciler), starts its daemon again, and continues the stopped side
#   kill-src-starter,    at src-dump / dst-restore (where they run): SIGKILL of the process
#   kill-dst-starter,    once it is there
#   kill-src-criu,
#   kill-dst-criu
#   tmpfs-full           diskless, dst-restore: the destination's 64 MB tmpfs is filled to 4 MB free
#   shared-full          default, src-dump: the shared directory is a 16 MB tmpfs
#   restore-fail         dst-restore: the image is gone on the destination (from then on: the
#                        check before the freeze saw it)
#   link-down            the step's side stops itself at the step; the test takes nodeB's link
#                        down (ip link set down: silence, no FIN or reset) and continues it; the
#                        link comes back once ferry migrate has returned

FAULT_FERRYD=${FERRY_FAULT_FERRYD:-$FERRY_TESTS_DIR/../build-fault/ferryd}
FAULT_STEPS_DEFAULT="src-request src-journal src-prepare src-dump src-restart src-verdict src-commit src-done src-settle dst-prepare dst-ready dst-restore dst-done dst-settle"
FAULT_STEPS_DISKLESS="src-request src-journal src-prepare src-dump src-commit src-done src-settle dst-prepare dst-ready dst-restore dst-done dst-settle"
FAULT_RESULTS=${FAULT_RESULTS:-/var/tmp/ferry-faults.txt}

fault_build() {
	if [ ! -x "$FAULT_FERRYD" ] || [ -n "$(find "$FERRY_TESTS_DIR/../src" -newer "$FAULT_FERRYD" -name '*.[ch]' | head -n1)" ]; then
		make -s -C "$FERRY_TESTS_DIR/.." fault-build >/dev/null || return 1
	fi
	strings "$FAULT_FERRYD" | grep -q FERRY_FAULT || {
		echo "$FAULT_FERRYD is no fault build" >&2
		return 1
	}
}

# fault_ferryd NODE [FERRY_FAULT] [FERRYD OPTION...]: the fault build as NODE's ferryd.
fault_ferryd() {
	local n=$1 f=${2:-}
	shift 2 || shift
	FERRY_FAULT=$f FERRYD=$FAULT_FERRYD ferryd_start "$n" "$@"
}

# journal_records NODE: the migrations NODE's ferryd has not settled.
journal_records() { find "$JOURNAL/$1" -maxdepth 1 -type f -regextype egrep -regex '.*/[0-9a-f]{12}' 2>/dev/null; }

# wait_settled SECONDS: until both journals are empty.
wait_settled() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		[ -z "$(journal_records nodeA)$(journal_records nodeB)" ] && return 0
		sleep 0.1
	done
	fail "not settled after $1 s: nodeA: $(journal_records nodeA | xargs -r cat); nodeB: $(journal_records nodeB | xargs -r cat)"
}

# wait_once NAME SECONDS: until exactly one copy of the workload runs.
wait_once() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ "$(workload_count "$1")" = 1 ] && return 0
		sleep 0.1
	done
	fail "'$1' runs $(workload_count "$1") times after $2 s"
}

# wait_proc NODE COMM SECONDS: the pid of a COMM process of NODE's migration, once there is one:
# a ferry-starter whose parent is a ferryd (not an instance's monitor), or a CRIU that ferryd did
# not run itself (its own, at its start, learn the kernel's features and the CPU) and that no CRIU
# forked (a CRIU's short-lived children probe the kernel, or become the restored tree): in the
# node's network namespace, or run by its ferryd (a dump's or a restore's CRIU runs in the
# instance's namespace).
wait_proc() {
	local i p
	for ((i = 0; i < $3 * 50; i++)); do
		# one look at the processes (a default-mode dump's CRIU lives well under a second)
		p=$(ps -e -o pid=,ppid=,comm= | awk -v want="$2" -v root="${FERRYD_PID[$1]:--1}" \
			-v ns=" $(ip netns pids "$1" 2>/dev/null | tr '\n' ' ') " '
			{ comm[$1] = $3; parent[$1] = $2 }
			END {
				mine[root] = 1 # the ferryd of the node, and its descendants
				do {
					n = 0
					for (q in parent)
						if (!(q in mine) && (parent[q] in mine)) { mine[q] = 1; n++ }
				} while (n > 0)
				for (q in comm) if (comm[q] == want && ((q in mine) || index(ns, " " q " ")) &&
				    (want != "ferry-starter" || comm[parent[q]] == "ferryd") &&
				    (want != "criu" || (comm[parent[q]] != "ferryd" && comm[parent[q]] != "criu"))) { print q; exit }
			}')
		[ -n "$p" ] && {
			echo "$p"
			return 0
		}
		sleep 0.02
	done
	return 1
}

# stopped_handlers NODE: ferryd processes of NODE stopped by a fault point.
stopped_handlers() {
	local p
	for p in $(ferryd_procs "$1"); do
		grep -q '^State:[[:space:]]*T' "/proc/$p/status" 2>/dev/null && echo "$p"
	done
}

wait_stopped() {
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		grep -q "fault: stopped at $3" "${FERRYD_LOG[$1]}" 2>/dev/null && [ -n "$(stopped_handlers "$1")" ] && return 0
		sleep 0.05
	done
	fail "$1 did not stop at $3 within $2 s"
}

# assert_nothing_left NAME MODE: the checks of leftovers after a settled migration.
assert_nothing_left() {
	local name=$1 mode=$2 n left
	for n in nodeA nodeB; do
		# shellcheck disable=SC2046
		wait_pids_gone 40 $(ferryd_starters "$n")
		left=$(ip netns pids "$n" 2>/dev/null | xargs -r ps -o pid=,ppid=,stat=,comm=,args= -p | awk '$4 == "criu"' || true)
		[ -z "$left" ] || fail "CRIU still runs in $n: $left"
	done
	# and none of the user's, in whatever namespace (a page server runs in the instance's)
	# shellcheck disable=SC2046
	wait_pids_gone 20 $(pgrep -u "$U1" -x criu)
	left=$(pgrep -a -u "$U1" -x criu || true)
	[ -z "$left" ] || fail "CRIU of $U1 still runs: $left"
	left=$(find "$MIG_TMPFS"-nodeA "$MIG_TMPFS"-nodeB "$MIG_SMALL" -mindepth 2 -maxdepth 3 -name "$name-*" 2>/dev/null || true)
	[ -z "$left" ] || fail "left in the tmpfs directories: $left"
	left=$( (find "$MIG_SHARED" -mindepth 2 -maxdepth 2 -name "$name-*" 2>/dev/null || true) | wc -l)
	if [ "$mode" = default ] && listed_on nodeA "$name"; then
		[ "$left" -le 1 ] || fail "$left checkpoints of '$name' left in the shared directory"
	else
		[ "$left" = 0 ] || fail "left in the shared directory: $(find "$MIG_SHARED" -mindepth 2 -maxdepth 2)"
	fi
	[ "$(losetup -a | wc -l)" = "$BASE_LOOPS" ] || fail "loop devices: $(losetup -a | wc -l), were $BASE_LOOPS"
	[ "$(wc -l </proc/self/mountinfo)" = "$BASE_MOUNTS" ] || fail "mounts: $(wc -l </proc/self/mountinfo), were $BASE_MOUNTS"
}

# fault_cell MODE STEP FAULT: one cell (see above); in a subshell of the caller's.
fault_cell() {
	local mode=$1 step=$2 fault=$3 side=nodeA victim="" act="" mb=16 name=ftf-$CELL run_id p kn="" kc=""
	CELL_T0=$EPOCHREALTIME
	[[ $step == dst-* ]] && side=nodeB
	case $fault in
	fail | cut) act=$fault ;;
	kill-src-ferryd) act=stop victim=nodeA ;;
	kill-dst-ferryd) act=stop victim=nodeB ;;
	link-down) act=stop ;;
	# the destination stops itself there, past the check before the freeze (fit.c), which
	# would refuse an image it cannot see or a tmpfs too small; the test then takes the
	# image away, or fills the tmpfs, and lets it go on
	restore-fail | tmpfs-full) act=stop ;;
	kill-*-starter | kill-*-criu) mb=384 ;; # a dump and a restore long enough to be hit
	esac
	local fa="" fb=""
	local -a optb=()
	[ -z "$act" ] || if [ "$side" = nodeA ]; then fa=$step=$act; else fb=$step=$act; fi
	# a cut link is silence: the sides find out at their idle limits ('criu timeout', and 2 'peer
	# timeout' beyond it where a side waits for its peer's word); a peer's silence of 8 s, not the
	# default 30, is still four of a working daemon's keepalives (2 s)
	if [ "$fault" = link-down ]; then
		mig_conf "criu timeout = 5" "peer timeout = 8"
	else
		mig_conf "criu timeout = 20" "peer timeout = 8"
	fi
	local -a img=()
	case $fault in
	tmpfs-full)
		mkdir -p "$MIG_SMALL" && chmod 0755 "$MIG_SMALL"
		mount -t tmpfs -o size=64m,mode=0755 ft-migrate-small "$MIG_SMALL"
		optb=(--tmpfs-dir "$MIG_SMALL/mig") mb=48
		;;
	shared-full)
		mkdir -p "$MIG_SHARED" && mount -t tmpfs -o size=16m,mode=0755 ft-shared-small "$MIG_SHARED" && mb=48
		;;
	restore-fail)
		MIG_IMAGE_DIR=$(mktemp -d /var/tmp/ft-migrate-img.XXXXXX)
		chmod 0755 "$MIG_IMAGE_DIR"
		cp "$IMG" "$MIG_IMAGE_DIR/job.sqsh" && chmod 0644 "$MIG_IMAGE_DIR/job.sqsh"
		img=(--image "$MIG_IMAGE_DIR/job.sqsh")
		;;
	esac
	fault_ferryd nodeA "$fa"
	fault_ferryd nodeB "$fb" "${optb[@]}"
	mig_launch nodeA "$name" "$mb" "${img[@]}"
	if [[ $mode != default && ($fault == kill-*-starter || $fault == kill-*-criu) ]]; then
		# the transfer takes seconds (384 MB at 400 Mbit/s): the processes live long enough
		on_node nodeA tc qdisc add dev eth0 root tbf rate 400mbit burst 64kb latency 100ms
	fi
	run_id=$(field_of "$OUT/$name.prog" run)
	BASE_LOOPS=$(losetup -a | wc -l)
	BASE_MOUNTS=$(wc -l </proc/self/mountinfo)
	mig_bg nodeA "$name" --to nodeB --mode "$mode"
	case $fault in
	kill-src-ferryd | kill-dst-ferryd)
		wait_stopped "$side" 60 "$step"
		ferryd_kill "$victim"
		fault_ferryd "$victim" ""
		for p in $(stopped_handlers "$side"); do kill -CONT "$p"; done
		;;
	link-down)
		wait_stopped "$side" 60 "$step"
		ip -n nodeB link set eth0 down
		for p in $(stopped_handlers "$side"); do kill -CONT "$p"; done
		;;
	restore-fail)
		# the image gone for the destination only: nodeB's ferryd has its own mount namespace
		# (ip netns exec), where /dev/null is bound over it; the source can still restart
		wait_stopped nodeB 60 "$step"
		nsenter -t "${FERRYD_PID[nodeB]}" -m mount --bind /dev/null "$MIG_IMAGE_DIR/job.sqsh"
		for p in $(stopped_handlers nodeB); do kill -CONT "$p"; done
		;;
	tmpfs-full)
		wait_stopped nodeB 60 "$step"
		head -c 60M /dev/zero >"$MIG_SMALL/filler"
		for p in $(stopped_handlers nodeB); do kill -CONT "$p"; done
		;;
	kill-src-starter) kn=nodeA kc=ferry-starter ;;
	kill-dst-starter) kn=nodeB kc=ferry-starter ;;
	kill-src-criu) kn=nodeA kc=criu ;;
	kill-dst-criu) kn=nodeB kc=criu ;;
	esac
	if [[ $fault == kill-*-starter || $fault == kill-*-criu ]]; then
		local tries=0
		p=$(wait_proc "$kn" "$kc" 30) || fail "no $kc on $kn to kill"
		# one that ends between the look and the kill (live: the restoring CRIU, whose
		# lazy-pages daemon, a CRIU too, goes on) gives its place to the next of its kind
		until kill -KILL "$p" 2>/dev/null; do
			tries=$((tries + 1))
			if [ "$tries" -ge 5 ] || ! p=$(wait_proc "$kn" "$kc" 10); then
				fail "$fault: the $kc found on $kn ended before it could be killed, and no other is left"
			fi
		done
		echo "#   killed $fault: pid $p"
	fi
	mig_wait 200
	cell_mark "ferry migrate returned"
	[ "$fault" != link-down ] || ip -n nodeB link set eth0 up
	# the fault did happen where it was meant to
	[ -z "$act" ] || grep -q "fault: .*$step" "${FERRYD_LOG[$side]}" || fail "no fault at $step on $side"
	echo "#   ferry migrate: exit $status: ${stderr:-$output}" | head -c 400
	echo
	wait_settled 90
	cell_mark "settled"
	wait_once "$name" 30
	assert_runs_once "$name"
	if listed_on nodeA "$name"; then assert_only_on nodeA "$name"; else assert_only_on nodeB "$name"; fi
	assert_moves_on "$name" "$run_id"
	# a dump's CRIU killed: the user reads that it ended, not a code
	if [ "$mode $step $fault" = "default src-dump kill-src-criu" ] && [ "$status" -ne 0 ]; then
		grep -q "CRIU ended before it answered (killed, or it crashed)" <<<"$stderr" || fail "not told why: $stderr"
	fi
	if [ "$fault" = restore-fail ]; then
		[ "$status" -ne 0 ] || fail "ferry migrate succeeded though nodeB has no image"
		assert_only_on nodeA "$name"
	fi
	# the source's report never claims a move that did not happen
	if [ "$status" -eq 0 ] && ! listed_on nodeB "$name"; then fail "ferry migrate succeeded but '$name' runs on nodeA"; fi
	assert_nothing_left "$name" "$mode"
	cell_mark "nothing left"
}

# cell_mark WHAT: how long the cell has run when WHAT happened, in its log (where a slow cell
# spends its time).
cell_mark() { echo "#   $(awk -v a="$CELL_T0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%5.1fs", b - a}'): $1"; }

# fault_cell_cleanup: whatever a cell left (also after a failed one).
fault_cell_cleanup() {
	stop_all_instances
	ferryd_stop nodeA
	ferryd_stop nodeB
	for p in "${PEER_PIDS[@]}" ${MIG_BG_PID:-}; do kill "$p" 2>/dev/null || true; done
	ip netns exec nodeA tc qdisc del dev eth0 root 2>/dev/null || true
	mountpoint -q "$MIG_SMALL" 2>/dev/null && umount "$MIG_SMALL"
	mountpoint -q "$MIG_SHARED" 2>/dev/null && umount "$MIG_SHARED"
	rm -rf "${MIG_SHARED:?}"/* "$MIG_TMPFS"-node* "$U1_HOME"/.ferry/checkpoint/ftf-*
	rm -f "$JOURNAL"/nodeA/* "$JOURNAL"/nodeB/*
	[ -z "${MIG_IMAGE_DIR:-}" ] || rm -rf "$MIG_IMAGE_DIR"
	conf_restore
}

# fault_cells: the cells, one "MODE STEP FAULT" a line; FERRY_FAULTS=all: every one, else the
# test command's slice (FERRY_FAULTS may also be a regex over the lines). The slice has every
# fault and the steps where each matters most, in both modes where the mode changes what a
# fault does (the commit and after), in one where it does not (before the dump, at the restore's
# start); a link taken down costs a cell some 20 s of
# timeouts, so it has one (the default mode's commit, whose destination restarts from the
# checkpoint once in doubt; the diskless copy that waits frozen is commit_lost's, by a cut).
fault_cells() {
	local mode step f
	{
		for mode in default diskless live; do
			local steps=$FAULT_STEPS_DEFAULT
			[ "$mode" = default ] || steps=$FAULT_STEPS_DISKLESS
			for step in $steps; do
				for f in fail cut kill-src-ferryd kill-dst-ferryd link-down; do echo "$mode $step $f"; done
			done
			echo "$mode src-dump kill-src-starter"
			echo "$mode src-dump kill-src-criu"
			echo "$mode dst-restore kill-dst-starter"
			echo "$mode dst-restore kill-dst-criu"
			echo "$mode dst-restore restore-fail"
		done
		echo "diskless dst-restore tmpfs-full"
		echo "default src-dump shared-full"
	} | case ${FERRY_FAULTS:-slice} in
	all) cat ;;
	slice) grep -E '^live (src-commit cut|dst-restore (kill-dst-starter|kill-dst-criu)|src-dump kill-src-criu)$|^default src-commit link-down$|^(default|diskless) (src-commit (cut|kill-src-ferryd|kill-dst-ferryd)|src-done cut)$|^default (dst-prepare fail|src-dump kill-src-starter|src-dump shared-full)$|^diskless (src-prepare cut|dst-restore (kill-dst-starter|restore-fail|kill-dst-criu|tmpfs-full))$' ;;
	*) grep -E "$FERRY_FAULTS" ;;
	esac
}
