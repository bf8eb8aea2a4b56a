#!/usr/bin/env bats
# Exactly once, under every fault (issue 12): the journal, the durable commit point and the
# reconciler of ferryd (src/ferryd/journal.h, reconcile.c), and the fault matrix over the named
# steps of a migration (src/ferryd/steps.h, docs/faults.md).
#
# The matrix runs ferryd's fault build (build-fault/ferryd, made by `make fault-build`; never
# installed) on the simulated nodes of tests/lib/nodes.sh, with the installed setuid starter,
# which has no fault points. The test command runs a slice of the matrix; `make faults`
# (FERRY_FAULTS=all) every cell; FERRY_FAULTS=REGEX the cells whose "MODE STEP FAULT" match.

load ../lib/common
load ../lib/checkpoint
source "$FERRY_TESTS_DIR/lib/nodes.sh"
load ../lib/migrate
load ../lib/faults

setup_file() {
	ferry_suite_setup
	migrate_suite_setup
	fault_build
}

teardown_file() {
	ferry_suite_teardown
	migrate_suite_teardown
	rm -rf "$U1_HOME"/.ferry/checkpoint/ftf-* 2>/dev/null || true
}

setup() {
	mig_test_setup ftf
}

teardown() {
	local n
	if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		for n in nodeA nodeB; do
			[ -z "${FERRYD_LOG[$n]:-}" ] || { echo "---- ferryd on $n:"; tail -n 60 "${FERRYD_LOG[$n]}"; }
		done
	fi
	ip -n nodeB link set eth0 up 2>/dev/null || true
	fault_cell_cleanup
	ferry_teardown
}

@test "the installed ferryd and starter have no fault points: FERRY_FAULT changes nothing" {
	# not a byte of the mechanism in what is installed (the name is only in the fault build)
	! strings /usr/local/sbin/ferryd | grep -q FERRY_FAULT || fail "the installed ferryd knows FERRY_FAULT"
	! strings /usr/local/libexec/ferry/ferry-starter | grep -q FERRY_FAULT || fail "the installed starter knows FERRY_FAULT"
	strings "$FAULT_FERRYD" | grep -q FERRY_FAULT
	# and the variable, set for both daemons (and so for the starters they run), does nothing
	mig_conf
	FERRY_FAULT=src-request=fail,src-commit=cut,dst-prepare=fail,dst-restore=kill ferryd_start nodeA
	FERRY_FAULT=src-request=fail,src-commit=cut,dst-prepare=fail,dst-restore=kill ferryd_start nodeB
	local name=$T-inst run_id
	mig_launch nodeA "$name" 16
	run_id=$(field_of "$OUT/$name.prog" run)
	FERRY_FAULT=src-dump=fail mig_migrate nodeA "$name" --to nodeB --mode diskless
	[ "$status" -eq 0 ] || fail "the migration failed: $stderr"
	assert_only_on nodeB "$name"
	assert_moves_on "$name" "$run_id"
	! grep -q "fault" "${FERRYD_LOG[nodeA]}" "${FERRYD_LOG[nodeB]}" || fail "a fault point ran"
	wait_settled 10
}

# The hole of issue 12: the commit lost after the source decided (the link cut at that very
# instant). Before: the destination stopped its copy, the source had ended its own: no copy.
commit_lost() {
	local mode=$1 name=$T-c run_id
	mig_conf
	fault_ferryd nodeA src-commit=cut
	fault_ferryd nodeB ""
	mig_launch nodeA "$name" 32
	run_id=$(field_of "$OUT/$name.prog" run)
	mig_migrate nodeA "$name" --to nodeB --mode "$mode" --json
	echo "# ferry migrate: exit $status: $output $stderr" >&3
	ferryd_log_has nodeA "fault: the link is cut at src-commit" || fail "the fault did not fire"
	# committed: the source ended its copy; the report says so, and where the copy is
	[ "$status" -eq 0 ] || fail "the source decided the move, but ferry migrate failed: $stderr"
	if [ "$mode" != default ]; then
		# no checkpoint holds the memory (live: it never did; diskless: the restore used the
		# received copy up): the copy that has every page waits, frozen, and the reconciler
		# lets it run on once the source says it committed
		[[ "$output" == *"did not confirm"*"waits there frozen"* ]] || fail "the report does not say where the job is: $output"
		[[ "$output" != *"--criu-restart"* ]] || fail "the report names a checkpoint to restart from: $output"
		wait_settled 60
		ferryd_log_has nodeB "thawed the copy of '$name' restored here" || fail "nodeB did not thaw '$name'"
		! ferryd_log_has nodeB "restarted here from" || fail "nodeB restarted '$name' though its copy was there"
	else
		[[ "$output" == *"did not confirm"*"ferry instance start --criu-restart"* ]] || fail "the report does not say where the checkpoint is: $output"
		# the destination stopped its unconfirmed copy, kept the checkpoint, and the reconciler
		# restarts it from there
		wait_settled 60
		ferryd_log_has nodeB "restarted here from" || fail "nodeB did not restart '$name' from its copy"
	fi
	wait_once "$name" 20
	assert_only_on nodeB "$name"
	assert_moves_on "$name" "$run_id"
	BASE_LOOPS=$(losetup -a | wc -l) BASE_MOUNTS=$(wc -l </proc/self/mountinfo) assert_nothing_left "$name" "$mode"
}

@test "the commit lost on the link, diskless: the copy on nodeB, with every page, waits frozen and runs on once settled: exactly once, the same run" {
	commit_lost diskless
}

@test "the commit lost on the link, default mode: the job runs exactly once, on nodeB, restarted from the shared checkpoint" {
	commit_lost default
}

@test "the commit lost on the link, live: the copy on nodeB, with every page, waits frozen and runs on once settled: exactly once, the same run" {
	commit_lost live
}

# migrate_held_at_commit NAME MODE MB: NAME (MB MiB, its run id in $run_id) migrating from nodeA
# to nodeB in MODE, the source stopped once it decided, before its commit leaves.
migrate_held_at_commit() {
	fault_ferryd nodeA src-commit=stop
	fault_ferryd nodeB ""
	mig_launch nodeA "$1" "$3"
	run_id=$(field_of "$OUT/$1.prog" run)
	mig_bg nodeA "$1" --to nodeB --mode "$2"
	wait_stopped nodeA 60 src-commit
}

# (default mode: a diskless destination's restore uses its received copy up, and its copy waits
# frozen instead: the test below)
@test "both sides cut off after the commit: the destination says where the last complete checkpoint is, and a restart from it by hand works" {
	local name=$T-hand run_id dir
	# (a peer's silence: 8 s, not the default 30; the daemons' keepalives come every 2 s)
	mig_conf "criu timeout = 10" "peer timeout = 8"
	migrate_held_at_commit "$name" default 32
	# the decision is written; the link goes down for good before the commit leaves
	ip -n nodeB link set eth0 down
	local p
	for p in $(stopped_handlers nodeA); do kill -CONT "$p"; done
	# (the source waits for the destination's report within its bounds: the session's end, then
	# 'criu timeout' + 2 'peer timeout')
	mig_wait 200
	# the destination's copy without a commit is stopped; its ferryd cannot reach nodeA
	wait_for ferryd_log_has nodeB "cannot be reached" || sleep 10
	ferryd_log_has nodeB "cannot be reached" || fail "nodeB's ferryd did not say it cannot settle: $(tail -5 "${FERRYD_LOG[nodeB]}")"
	dir=$(grep -o "ferry instance start --criu-restart [^' ]*" "${FERRYD_LOG[nodeB]}" | tail -n1 | awk '{print $5}')
	[ -n "$dir" ] && [ -d "$dir" ] || fail "no checkpoint named in nodeB's log: $(grep unsettled "${FERRYD_LOG[nodeB]}")"
	[ "$(workload_count "$name")" = 0 ] || fail "'$name' runs $(workload_count "$name") times while unsettled"
	# the user restarts it from there, as the message says
	run --separate-stderr on nodeB "$FERRY" instance start --criu-restart "$dir"
	[ "$status" -eq 0 ] || fail "the restart by hand failed: $stderr"
	wait_once "$name" 20
	assert_runs_once "$name"
	# the same run goes on (from the checkpoint's step: the copy that ran on nodeB meanwhile
	# wrote later ones)
	assert_moves_on "$name" "$run_id"
	# the link back: the daemons settle it, and nothing starts twice
	ip -n nodeB link set eth0 up
	wait_settled 60
	assert_stays_only_on nodeB "$name" 2
}

# is_frozen NAME: the workload NAME is stopped (SIGSTOP: state T).
is_frozen() {
	local p
	p=$(pgrep -f -- "--interval 100 $OUT/$1.prog\$" | head -n1)
	[ -n "$p" ] && grep -q '^State:[[:space:]]*T' "/proc/$p/status"
}

# can_open_rw USER FILE: USER can open FILE for reading and writing (as CRIU does a page image
# it frees), without changing a byte.
can_open_rw() { as_user "$1" sh -c 'exec 3<>"$1"' can-open "$2" 2>/dev/null; }

@test "diskless: the restore frees the received pages as it goes; the copy it used up is never restarted from, and its user may write its page images only" {
	local name=$T-dd run_id leaf gen f n=0 before after list
	mig_conf "peer timeout = 8"
	# nodeB's starter waits for the commit ('peer timeout' of silence: 8 s here, not the default
	# 30), then freezes its copy (the only one with the memory) and the migration is in doubt there
	migrate_held_at_commit "$name" diskless 64
	for ((n = 0; n < 60; n++)); do
		ferryd_log_has nodeB "in doubt" && break
		sleep 1
	done
	ferryd_log_has nodeB "in doubt: '$name' was restored here" || fail "nodeB is not in doubt: $(tail -5 "${FERRYD_LOG[nodeB]}")"
	ferryd_log_has nodeB "frozen here" || fail "nodeB's log does not say its copy is frozen: $(grep "in doubt" "${FERRYD_LOG[nodeB]}")"
	wait_for is_frozen "$name" || fail "the copy on nodeB is not frozen"
	[ "$(workload_count "$name")" = 1 ] || fail "'$name' runs $(workload_count "$name") times"
	# the received copy: its page images are holes now (CRIU punched each run it restored)
	leaf=$(find "$MIG_TMPFS-nodeB" -mindepth 2 -maxdepth 2 -name "$name-*")
	[ -n "$leaf" ] && [ -d "$leaf" ] || fail "no received copy on nodeB: $(find "$MIG_TMPFS-nodeB")"
	gen=$(current_gen "$leaf")
	n=0
	for f in "$gen"/pages-*.img; do
		[ -f "$f" ] || continue
		n=$((n + 1))
		echo "# $(stat -c '%n: %s bytes, %b blocks of %B, mode %a, uid %u' "$f")" >&3
		[ "$(stat -c %u "$f")" = 0 ] || fail "$f is not root's"
		[ "$(stat -c %a "$f")" = 460 ] || fail "$f: mode $(stat -c %a "$f"), not 460 (read-only owner, the user's ACL rw)"
		[ "$(stat -c %s "$f")" -lt $((1 << 20)) ] || [ $(($(stat -c %b "$f") * 512 * 16)) -lt "$(stat -c %s "$f")" ] ||
			fail "$f was not freed as it was restored: $(($(stat -c %b "$f") * 512)) of $(stat -c %s "$f") bytes allocated"
	done
	[ "$n" -gt 0 ] || fail "no page image in $gen: $(ls -l "$gen")"
	[ "$(du -sm "$gen" | cut -f1)" -lt 16 ] || fail "the received copy still holds $(du -sm "$gen" | cut -f1) MB"
	# the user may write the page images, and nothing else of the generation
	for f in "$gen"/*; do
		case ${f##*/} in
		pages-*.img) can_open_rw "$U1" "$f" || fail "$U1 cannot write ${f##*/}, as the restore's CRIU must" ;;
		*)
			! can_open_rw "$U1" "$f" || fail "$U1 can write ${f##*/} of the generation"
			# (0440: the group bits show the ACL's mask, the owner's read)
			[ "$(stat -c '%u %a' "$f")" = "0 440" ] || fail "${f##*/} is not root's and read-only: $(stat -c '%u %a' "$f")"
			;;
		esac
		! can_open_rw "$U2" "$f" || fail "$U2 can write ${f##*/}"
	done
	! as_user1 touch "$gen/new" 2>/dev/null || fail "$U1 can add a file to the generation"
	local -a pages=("$gen"/pages-*.img) cores=("$gen"/core-*.img)
	! as_user1 mv "${pages[0]}" "$gen/moved" 2>/dev/null || fail "$U1 can rename in the generation"
	! as_user1 rm -f "${cores[0]}" 2>/dev/null || fail "$U1 can remove a file of the generation"
	[ -e "${pages[0]}" ] && [ -e "${cores[0]}" ] || fail "a file of the generation is gone"
	[ "$(stat -c %u "$gen")" = 0 ] || fail "the generation is not root's"
	# a restart from the used-up copy is refused (its holes would read as zeros), and leaves
	# nothing behind
	before=$(ls -laR "$leaf")
	list=$(on nodeB "$FERRY" instance list)
	run --separate-stderr on nodeB "$FERRY" instance start --criu-restart "$leaf"
	assert_ferry_error "not ferry's sealed file"
	after=$(ls -laR "$leaf")
	[ "$before" = "$after" ] || fail "the refused restart changed the copy: $(diff <(echo "$before") <(echo "$after"))"
	[ "$(on nodeB "$FERRY" instance list)" = "$list" ] || fail "the refused restart left an instance: $(on nodeB "$FERRY" instance list)"
	[ "$(workload_count "$name")" = 1 ] || fail "'$name' runs $(workload_count "$name") times"
	is_frozen "$name" || fail "the copy on nodeB runs before the move is settled"
	# the source goes on: once the daemons settle, the frozen copy runs on, the same run
	for p in $(stopped_handlers nodeA); do kill -CONT "$p"; done
	mig_wait 200
	[ "$status" -eq 0 ] || fail "the source decided the move, but ferry migrate failed: $stderr"
	wait_settled 60
	ferryd_log_has nodeB "thawed the copy of '$name' restored here" || fail "nodeB did not thaw '$name': $(tail -5 "${FERRYD_LOG[nodeB]}")"
	wait_once "$name" 20
	assert_only_on nodeB "$name"
	assert_moves_on "$name" "$run_id"
	BASE_LOOPS=$(losetup -a | wc -l) BASE_MOUNTS=$(wc -l </proc/self/mountinfo) assert_nothing_left "$name" diskless
}

@test "two faults: the destination's starter killed once it restored, the source's before it heard so: the job runs once, on nodeA; the copy on nodeB is stopped" {
	local name=$T-two run_id ps pd s i
	mig_conf "criu timeout = 10"
	fault_ferryd nodeA ""
	fault_ferryd nodeB ""
	# memory enough that the restore lasts long enough to be caught (a 16 MB one can be over
	# between two looks)
	mig_launch nodeA "$name" 256
	run_id=$(field_of "$OUT/$name.prog" run)
	BASE_LOOPS=$(losetup -a | wc -l)
	BASE_MOUNTS=$(wc -l </proc/self/mountinfo)
	mig_bg nodeA "$name" --to nodeB --mode diskless
	ps=$(wait_proc nodeA ferry-starter 30) || fail "no source starter"
	# the transfer is over once the destination restores: from then on the source's starter,
	# stopped, cannot hear 'restored', so it never decides
	for ((i = 0; i < 1500; i++)); do
		pgrep -f "ferry-criu restore" >/dev/null && break
		sleep 0.02
	done
	pgrep -f "ferry-criu restore" >/dev/null || fail "no restore on nodeB"
	kill -STOP "$ps"
	pd=$(wait_proc nodeB ferry-starter 5) || fail "no destination starter"
	# the copy on nodeB runs (the source's tree is frozen: the steps now are the copy's)
	s=$(step_of "$OUT/$name.prog")
	wait_step "$OUT/$name.prog" $((s + 3)) 30
	# the destination's starter, and with it the supervision of its copy, is killed; then the
	# source's, undecided
	kill -KILL "$pd"
	kill -KILL "$ps"
	mig_wait 200
	[ "$status" -ne 0 ] || fail "ferry migrate said it moved: ${stderr:-$output}"
	# the source keeps it (aborted); nodeB's reconciler hears so and stops its copy
	wait_settled 90
	wait_once "$name" 30
	assert_only_on nodeA "$name"
	assert_runs_once "$name"
	ferryd_log_has nodeB "stopped the copy of '$name'" || fail "nodeB did not stop its copy: $(tail -5 "${FERRYD_LOG[nodeB]}")"
	assert_moves_on "$name" "$run_id"
	assert_stays_only_on nodeA "$name" 2
	assert_nothing_left "$name" diskless
}

@test "default mode: the source's starter killed once its dump is published (its guard ended the job): the job goes on on nodeB from the shared checkpoint, never lost" {
	# ferryd took the starter's death for a failed dump: it aborted, said the instance kept
	# running on nodeA, where its guard had just ended it, and removed the migration's directory,
	# its only checkpoint (anyone can be the killer: its user, the OOM killer, a job's end)
	local name=$T-pub run_id st w p from=nodeA to=nodeB try won=""
	mig_conf
	ferryd_start nodeA
	ferryd_start nodeB
	# memory enough that the dump lasts while the test finds its starter
	mig_launch nodeA "$name" 256 --sibling
	run_id=$(field_of "$OUT/$name.prog" run)
	# A race: the window between the guard's 'K' and the starter's end is short, and a busy
	# machine may see the starter end first; that move is then an ordinary one, and the next
	# goes back the other way.
	for ((try = 1; try <= 6 && !won; try++)); do
		# (the small process of the tree ends the moment the guard ends it; the workload, with
		# its memory to free, a little later; a restored one has another pid)
		w=$(pgrep -u "$U1" -f '^sleep 1000001$')
		mig_bg "$from" "$name" --to "$to" --mode default
		# the dump's starter: ferryd's, with its root guard
		st=$(guarded_starter ferryd_starters "$from") ||
			fail "no dump's starter with its guard on $from: $(cat "$BATS_TEST_TMPDIR/bg.err")"
		# killed the moment the job ends (the guard's 'K', after the publish), before it exits
		kill_when_gone "$w" "$st"
		mig_wait 120
		echo "# try $try, $from -> $to: ferry migrate ($status): ${stderr:-$output}" >&3
		[ "$status" -eq 0 ] || fail "the migration failed: $stderr"
		! ferryd_log_has "$from" "its starter ended after it published the dump" || won=1
		assert_only_on "$to" "$name"
		assert_moves_on "$name" "$run_id"
		assert_runs_once "$name"
		wait_settled 30
		[ -n "$won" ] || { p=$from && from=$to && to=$p; }
	done
	[ -n "$won" ] || fail "the starter was never killed between its publish and its end in 6 tries"
}

@test "the journal: a record that is not ferryd's is set aside, never acted on; too many unsettled migrations refuse a new one" {
	mig_conf
	mkdir -p "$JOURNAL/nodeA"
	# a record with a bad field, a symlink and a world-writable one: none is acted on
	printf 'ferry-proto 1\nid=0123456789ab\nrole=source\nmode=default\nuid=0\nuser=root\ninstance=../../x\npeer=nodeB\nstate=prepared\n' >"$JOURNAL/nodeA/0123456789ab"
	touch "$JOURNAL/nodeA/0123456789ab.commit"
	ln -s /etc/passwd "$JOURNAL/nodeA/0123456789ac"
	touch "$JOURNAL/nodeA/0123456789ac.commit"
	ferryd_start nodeA
	ferryd_start nodeB
	wait_for ferryd_log_has nodeA "moved aside" || fail "no record set aside: $(cat "${FERRYD_LOG[nodeA]}")"
	[ -e "$JOURNAL/nodeA/bad.0123456789ab" ] || fail "the bad record was not set aside: $(ls -la "$JOURNAL/nodeA")"
	[ "$(readlink "$JOURNAL/nodeA/bad.0123456789ac")" = /etc/passwd ] || fail "the symlink was not set aside as it is"
	head -c 1 /etc/passwd | grep -q r
	ferryd_alive nodeA
	# a full journal: 256 unsettled records (of migrations no peer knows), 32 each of 8 users
	# (each user's share: attacks-ferryd.bats has one user's), make a new one wait
	ferryd_stop nodeA
	local i u
	for ((i = 0; i < 256; i++)); do
		u=$((1 + i / 32))
		printf 'ferry-proto 1\nid=%012x\nrole=destination\nmode=default\nuid=%s\nuser=%s\ninstance=x\npeer=nodeZ\nstate=indoubt\nbegun=1\n' \
			"$i" "$u" "$(getent passwd "$u" | cut -d: -f1)" >"$JOURNAL/nodeA/$(printf %012x "$i")"
		chmod 0600 "$JOURNAL/nodeA/$(printf %012x "$i")"
	done
	ferryd_start nodeA
	local name=$T-full
	mig_launch nodeA "$name" 16
	mig_migrate nodeA "$name" --to nodeB --mode default
	assert_ferry_error "not yet settled"
	assert_only_on nodeA "$name"
}

# keep_cell_logs N: cell N's log and its daemons' in /var/tmp/ferry-faults-logs.
keep_cell_logs() {
	local n2
	mkdir -p /var/tmp/ferry-faults-logs
	cp "$BATS_TEST_TMPDIR/cell-$1.log" "/var/tmp/ferry-faults-logs/cell-$1.log"
	for n2 in nodeA nodeB; do
		cp "$BATS_TEST_TMPDIR/ferryd-$n2.log" "/var/tmp/ferry-faults-logs/cell-$1-$n2.log" 2>/dev/null || true
	done
}

@test "the fault matrix: every (step, fault) cell of the run ends with the job running exactly once and nothing left" {
	local cells line n=0 ok=0 failed=""
	cells=$(fault_cells)
	[ -n "$cells" ] || skip "no cell matches FERRY_FAULTS='$FERRY_FAULTS'"
	: >"$FAULT_RESULTS"
	: >"$FAULT_RESULTS.said"
	while read -r line; do
		n=$((n + 1))
		CELL=$n
		local t0=$EPOCHREALTIME
		# The cell runs in the background and is waited for: a subshell in an if's condition runs
		# with errexit off for everything inside, so a check that failed did not end the cell
		# and only its last command counted. Here any failed command or check ends it.
		# shellcheck disable=SC2086
		(
			trap - ERR
			set -e
			trap 'fault_cell_cleanup >/dev/null 2>&1' EXIT
			fault_cell $line
		) >"$BATS_TEST_TMPDIR/cell-$n.log" 2>&1 </dev/null 3>&- &
		if wait "$!"; then
			ok=$((ok + 1))
			echo "survived $line" >>"$FAULT_RESULTS"
			# FERRY_FAULTS_KEEP=1: every cell's logs are kept, not only a failed one's
			[ -z "${FERRY_FAULTS_KEEP:-}" ] || keep_cell_logs "$n"
			# what ferry migrate said, for a look at how each cell ended
			grep -m1 -o 'ferry migrate: exit .*' "$BATS_TEST_TMPDIR/cell-$n.log" | cut -c1-300 | sed "s|^|$line: |" >>"$FAULT_RESULTS.said" || true
		else
			failed+=$'\n'"  $line: $(tail -n 3 "$BATS_TEST_TMPDIR/cell-$n.log" | tr '\n' ' ')"
			echo "FAILED $line" >>"$FAULT_RESULTS"
			keep_cell_logs "$n" # for a look after the run
		fi
		echo "# $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%5.1fs", b - a}') $line: $(tail -n1 "$FAULT_RESULTS" | cut -d' ' -f1)" >&3
		rm -f "$BATS_TEST_TMPDIR"/ferryd-node*.log
	done <<<"$cells"
	echo "# the matrix: $ok of $n cells survived (results: $FAULT_RESULTS)" >&3
	[ -z "$failed" ] || fail "cells that did not survive:$failed"
}
