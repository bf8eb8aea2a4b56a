#!/usr/bin/env bats
# Resumable runs without a batch system (issue 14): 'ferry run/exec --checkpoint NAME' as the
# unprivileged test user: the program's exit status and output pass through; the checkpoint
# signal (SIGUSR1, SIGTERM) dumps and stops it with exit 75; the same command again resumes it
# from the newest complete generation; --checkpoint-every with --keep leaves the newest N; an
# incomplete generation is never resumed from. The workload is tests/workloads/stateful.c: it
# verifies its own memory at every step and its run id tells a restored process from a new one.
# The Slurm side is slurm.bats.

load ../lib/common
load ../lib/checkpoint

setup_file() {
	ferry_suite_setup
	build_ckpt_workload
}

teardown_file() {
	ferry_suite_teardown
	rm -rf "$U1_HOME"/.ferry/checkpoint/ftrun-* "$U1_HOME"/.ferry/instances/*/run-ftrun-*
}

setup() {
	ferry_test_setup
	use_image sqsh >/dev/null
	T=ftrun-$BATS_TEST_NUMBER
	CK=$(ckpt_dir "$U1" "$T")
	PROG=$U1_TMP/progress
	OUT=$U1_TMP/out
	ERR=$U1_TMP/err
	PIDF=$U1_TMP/pid
	as_user1 "$FERRY" checkpoint delete "$T" >/dev/null 2>&1 || true
	rm -rf "$CK"
}

teardown() {
	if [ -s "${PIDF:-/nonexistent}" ]; then
		kill -KILL "$(cat "$PIDF")" 2>/dev/null || true
	fi
	if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		echo "--- ferry's stderr:" >&2
		cat "$ERR" >&2 2>/dev/null || true
	fi
	ferry_teardown
	as_user1 "$FERRY" checkpoint delete "$T" >/dev/null 2>&1 || true
}

# run_bg ARGS...: 'ferry ARGS' as user 1 in the background, its pid in $PIDF (the ferry process
# itself, for signals), its output in $OUT and $ERR.
run_bg() {
	rm -f "$PIDF"
	as_user1 sh -c 'echo $$ > "$1"; shift; exec "$@"' sh "$PIDF" "$FERRY" "$@" >"$OUT" 2>"$ERR" &
	BG=$!
	wait_for test -s "$PIDF" || fail "ferry did not start"
}

# wait_bg: waits for the background ferry; its exit status in $status.
wait_bg() {
	status=0
	wait "$BG" || status=$?
	rm -f "$PIDF"
}

run_id_of() { field_of "$1" run; }

@test "run --checkpoint: the program's exit status and output pass through" {
	run --separate-stderr as_user1 "$FERRY" exec --checkpoint "$T" "$IMG" \
		"$STATEFUL" --mb 8 --interval 20 --until 5 --status 3 "$PROG"
	[ "$status" -eq 3 ] || fail "exit $status, expected the program's 3: $stderr"
	grep -q '^step 5 ok ' <<<"$output" || fail "the program's output is not on stdout: '$output'"
	grep -q '^done 5 ok ' <<<"$output"
	grep -q "^ferry: run '$T': started on " <<<"$stderr"
	grep -q "^ferry: run '$T': the program exited with status 3\$" <<<"$stderr"
	# the runscript's way: 'ferry run' passes ARGS to the image's runscript
	run --separate-stderr as_user1 "$FERRY" run --checkpoint "$T-r" "$IMG" hello
	[ "$status" -eq 0 ] || fail "run: exit $status: $stderr"
	grep -q '^runscript args: hello$' <<<"$output"
	grep -q '^FOO_FROM_IMAGE=1$' <<<"$output"
	as_user1 "$FERRY" checkpoint delete "$T-r"
	# a program killed by a signal: 128+N, as a shell says it
	run --separate-stderr as_user1 "$FERRY" exec --checkpoint "$T-k" "$IMG" sh -c 'kill -KILL $$'
	[ "$status" -eq 137 ] || fail "exit $status, expected 137: $stderr"
	as_user1 "$FERRY" checkpoint delete "$T-k"
}

@test "run --checkpoint: SIGUSR1 checkpoints and stops (exit 75); the same command resumes where it stopped" {
	run_bg exec --checkpoint "$T" "$IMG" "$STATEFUL" --mb 32 --interval 100 --until 40 "$PROG"
	wait_step "$PROG" 8 30
	local id
	id=$(run_id_of "$PROG")
	kill -USR1 "$(cat "$PIDF")"
	wait_bg
	[ "$status" -eq 75 ] || fail "exit $status, expected 75 after SIGUSR1: $(cat "$ERR")"
	grep -q "^ferry: run '$T': got SIGUSR1: checkpointing and stopping\$" "$ERR"
	grep -qE "^ferry: run '$T': stopped in generation 1; run the same command to resume \(exit 75\)\$" "$ERR"
	assert_instance_gone "$U1" "run-$T"
	local stopped
	stopped=$(step_of "$PROG")
	sleep 0.5
	[ "$(step_of "$PROG")" = "$stopped" ] || fail "the program went on after its checkpoint"
	[ "$(generations "$CK")" = ck-000001 ] || fail "generations: $(ls "$CK")"
	# again: it resumes, the same process (run id), from the step after the last
	run --separate-stderr as_user1 "$FERRY" exec --checkpoint "$T" "$IMG" "$STATEFUL" --mb 32 --interval 100 \
		--until 40 "$PROG"
	[ "$status" -eq 0 ] || fail "resumed run: exit $status: $stderr"
	grep -q "^ferry: run '$T': resumed on $(hostname) from generation 1 " <<<"$stderr"
	grep -q "^done 40 ok run $id status 0\$" "$PROG" || fail "not the same run to the end: $(cat "$PROG")"
	local first
	first=$(grep -E '^step [0-9]+ ok ' <<<"$output" | head -n1 | awk '{print $2}')
	[ "$first" -eq $((stopped + 1)) ] || fail "resumed at step $first, stopped at $stopped"
	# SIGTERM (Slurm's at preemption and at the time limit) does the same
	run_bg exec --checkpoint "$T-t" "$IMG" "$STATEFUL" --mb 8 --interval 100 "$PROG.t"
	wait_step "$PROG.t" 3 30
	kill -TERM "$(cat "$PIDF")"
	wait_bg
	[ "$status" -eq 75 ] || fail "exit $status, expected 75 after SIGTERM: $(cat "$ERR")"
	grep -q "got SIGTERM: checkpointing and stopping" "$ERR"
	as_user1 "$FERRY" checkpoint delete "$T-t"
}

@test "run --checkpoint: the starter killed once its generation is published (the program ended): the generation is kept, and the same command resumes from it" {
	# ferry took the starter's death for a failed dump and removed the generation, whose
	# program the guard had just ended: the run started over
	# A race: the window between the guard's 'K' and the starter's exit is short, and a busy
	# machine may see the starter end first; then the run is an ordinary stop, and once more.
	local id w st try won=""
	for ((try = 1; try <= 8 && !won; try++)); do
		as_user1 "$FERRY" checkpoint delete "$T" >/dev/null 2>&1 || true
		rm -f "$PROG"
		run_bg exec --checkpoint "$T" "$IMG" sh -c "sleep 1000001 & exec $STATEFUL --mb 256 --interval 100 --until 60 $PROG"
		wait_step "$PROG" 3 30
		id=$(run_id_of "$PROG")
		w=$(pgrep -u "$U1" -f '^sleep 1000001$') || fail "no sleep beside the program"
		kill -USR1 "$(cat "$PIDF")"
		# the dump's starter (the run's, with its root guard), killed the moment the program's
		# tree ends (its guard's 'K', after the publish), before it exits
		st=$(guarded_starter pgrep -P "$(cat "$PIDF")" -x ferry-starter) ||
			fail "no dump's starter with its guard: $(cat "$ERR")"
		kill_when_gone "$w" "$st"
		wait_bg
		if grep -q "^ferry: run '$T': generation 1 is complete though its starter failed after: kept\$" "$ERR"; then
			won=1
		else
			echo "# try $try: the starter ended before it was killed" >&3
		fi
	done
	echo "# ferry exec --checkpoint ($status): $(cat "$ERR")" >&3
	[ -n "$won" ] || fail "the starter was never killed between its publish and its end in 8 tries: $(cat "$ERR")"
	[ "$(generations "$CK")" = ck-000001 ] || fail "generations: $(ls "$CK")"
	[ "$status" -eq 75 ] || fail "exit $status, expected 75: $(cat "$ERR")"
	run --separate-stderr as_user1 "$FERRY" exec --checkpoint "$T" "$IMG" sh -c \
		"sleep 1000001 & exec $STATEFUL --mb 256 --interval 100 --until 60 $PROG"
	grep -q "^ferry: run '$T': resumed on $(hostname) from generation 1 " <<<"$stderr" || fail "not resumed: $stderr"
	grep -q "^done 60 ok run $id status 0\$" "$PROG" || fail "not the same run to the end: $(tail -n3 "$PROG")"
}

@test "run --checkpoint-every --keep 2: periodic generations, the program left running, the newest two kept" {
	# (a resumed program is the same process, with the arguments it was started with: --until)
	run_bg exec --checkpoint "$T" --checkpoint-every 1s --keep 2 "$IMG" "$STATEFUL" --mb 16 --interval 100 \
		--until 150 "$PROG"
	wait_step "$PROG" 3 30
	local id i
	id=$(run_id_of "$PROG")
	for ((i = 0; i < 300; i++)); do
		[ "$(grep -c 'generation [0-9]* written' "$ERR")" -ge 4 ] && break
		sleep 0.1
	done
	[ "$(grep -c 'generation [0-9]* written' "$ERR")" -ge 4 ] || fail "fewer than 4 periodic generations: $(cat "$ERR")"
	# the program kept running through them: the same run, still counting
	local s1
	s1=$(step_of "$PROG")
	wait_step "$PROG" $((s1 + 3)) 10
	[ "$(run_id_of "$PROG")" = "$id" ]
	# staged (ferry.conf's default): the program ran again before each generation was on disk
	grep -qE "generation [0-9]+ written \([0-9.]+ MiB, the program paused [0-9.]+ s; staged in node-local memory, synced to '$CK' [0-9.]+ s later\)" "$ERR" ||
		fail "no staged generation: $(cat "$ERR")"
	[ "$(generations "$CK" | wc -l)" -eq 2 ] || fail "kept: $(generations "$CK" | tr '\n' ' ')"
	# ferry is killed without a word (scancel --signal=KILL): the program does not run on
	local newest
	kill -KILL "$(cat "$PIDF")"
	wait_bg
	assert_instance_gone "$U1" "run-$T"
	newest=$(generations "$CK" | tail -n1)
	# 'checkpoint list' shows the run as its newest complete generation
	run as_user1 "$FERRY" checkpoint list --json
	grep -q "\"name\": \"$T\", \"state\": \"complete\"" <<<"$output" || fail "$output"
	grep -q "\"generation\": \"$newest/gen-000001\"" <<<"$output" || fail "$output"
	# an incomplete generation, newer than every complete one (a dump killed midway)
	as_user1 mkdir "$CK/ck-000900"
	local s2
	s2=$(step_of "$PROG")
	run --separate-stderr as_user1 "$FERRY" exec --checkpoint "$T" --keep 2 "$IMG" "$STATEFUL" --mb 16 \
		--interval 100 --until 150 "$PROG"
	[ "$status" -eq 0 ] || fail "resume: exit $status: $stderr"
	grep -q "resumed on $(hostname) from generation $((10#${newest#ck-})) " <<<"$stderr" ||
		fail "not resumed from the newest complete generation ($newest): $stderr"
	grep -q "^done 150 ok run $id status 0\$" "$PROG"
	# from that generation: at most one interval (about 10 steps) and the dump's pause lost
	local first
	first=$(grep -E '^step [0-9]+ ok ' <<<"$output" | head -n1 | awk '{print $2}')
	[ "$first" -le $((s2 + 1)) ] && [ "$first" -ge $((s2 - 25)) ] ||
		fail "resumed at step $first; the program was at $s2 when it was killed"

	[ -d "$CK/ck-000900" ] # not resumed from, and not removed: no newer complete one yet
}

@test "run --checkpoint-every: a stop signal while a periodic generation is written gives that one up and checkpoints at once; the same command resumes from the stopping one" {
	run_bg exec --checkpoint "$T" --checkpoint-every 1s "$IMG" "$STATEFUL" --mb 64 --interval 100 "$PROG"
	wait_step "$PROG" 3 30
	local fpid st="" i id stopped given
	fpid=$(cat "$PIDF")
	id=$(run_id_of "$PROG")
	# the next periodic dump's starter, held wherever it is in the dump: as if its sync to a
	# slow shared filesystem took long
	for ((i = 0; i < 600; i++)); do
		st=$(pgrep -P "$fpid" -x ferry-starter) && break
		sleep 0.02
	done
	[ -n "$st" ] || fail "no periodic dump seen: $(cat "$ERR")"
	kill -STOP "$st"
	kill -TERM "$fpid"
	wait_bg
	[ "$status" -eq 75 ] || fail "exit $status, expected 75: $(cat "$ERR")"
	given=$(sed -nE "s/^ferry: run '$T': generation ([0-9]+) given up: a stop signal came while it was written\$/\1/p" "$ERR")
	[ -n "$given" ] || fail "no generation given up: $(cat "$ERR")"
	grep -q "^ferry: run '$T': got SIGTERM: checkpointing and stopping\$" "$ERR" || fail "$(cat "$ERR")"
	stopped=$(sed -nE "s/^ferry: run '$T': stopped in generation ([0-9]+); run the same command to resume \(exit 75\)\$/\1/p" "$ERR")
	[ -n "$stopped" ] && [ "$stopped" -gt "$given" ] || fail "stopped in '$stopped' after giving up $given: $(cat "$ERR")"
	# nothing of the given-up one is left, and nothing half-made anywhere
	[ ! -e "$CK/$(printf 'ck-%06d' "$given")" ] || fail "the given-up generation stayed: $(ls -la "$CK")"
	[ -z "$(find "$CK" /dev/shm/ferry-staging -name '.staging-*' 2>/dev/null)" ] ||
		fail "staging left: $(find "$CK" /dev/shm/ferry-staging -name '.staging-*')"
	assert_instance_gone "$U1" "run-$T"
	# the same command resumes the same process from the stopping generation
	local s1
	s1=$(step_of "$PROG")
	run_bg exec --checkpoint "$T" "$IMG" "$STATEFUL" --mb 64 --interval 100 "$PROG"
	wait_step "$PROG" $((s1 + 3)) 30
	[ "$(run_id_of "$PROG")" = "$id" ] || fail "not the same process: $(cat "$PROG")"
	grep -q "^ferry: run '$T': resumed on $(hostname) from generation $stopped " "$ERR" || fail "$(cat "$ERR")"
	kill -TERM "$(cat "$PIDF")"
	wait_bg
	[ "$status" -eq 75 ] || fail "exit $status: $(cat "$ERR")"
}

@test "run --checkpoint: NAME is its command's: another command is refused; once the program ended, the same command returns its status without running it again" {
	run --separate-stderr as_user1 "$FERRY" exec --checkpoint "$T" "$IMG" "$STATEFUL" --mb 8 --interval 20 --until 5 \
		--status 3 "$PROG"
	[ "$status" -eq 3 ] || fail "exit $status: $stderr"
	# the same command (ferry's own options may differ): over, not run again, its status
	as_user1 rm -f "$PROG"
	run --separate-stderr as_user1 "$FERRY" exec --checkpoint "$T" --checkpoint-every 5s "$IMG" "$STATEFUL" --mb 8 \
		--interval 20 --until 5 --status 3 "$PROG"
	[ "$status" -eq 3 ] || fail "exit $status, expected the ended program's 3: $stderr"
	grep -qx "ferry: run '$T': the program already ended, with status 3: not run again ('ferry checkpoint delete $T' starts it over)" <<<"$stderr" ||
		fail "$stderr"
	[ ! -e "$PROG" ] || fail "the program ran again: $(cat "$PROG")"
	[ -z "$output" ] || fail "output from a program that did not run: $output"
	# another command with that NAME: refused, one line, nothing changed
	local before
	before=$(ls -R "$CK" | md5sum)
	run --separate-stderr as_user1 "$FERRY" exec --checkpoint "$T" "$IMG" true
	assert_ferry_error "belongs to another command"
	grep -qxF "ferry: checkpoint '$T' belongs to another command ('ferry exec $(basename "$IMG") $STATEFUL --mb 8 --interval 20 --until 5 --status 3 $PROG'), not to 'ferry exec $(basename "$IMG") true': give this one a --checkpoint NAME of its own" <<<"$stderr" ||
		fail "$stderr"
	[ "$(ls -R "$CK" | md5sum)" = "$before" ] || fail "the refused command changed '$CK'"
	# 'ferry run' of the same arguments is another command too
	run --separate-stderr as_user1 "$FERRY" run --checkpoint "$T" "$IMG" "$STATEFUL" --mb 8 --interval 20 --until 5 \
		--status 3 "$PROG"
	assert_ferry_error "belongs to another command"
	# deleted, the NAME is free for any command
	as_user1 "$FERRY" checkpoint delete "$T"
	run --separate-stderr as_user1 "$FERRY" exec --checkpoint "$T" "$IMG" true
	[ "$status" -eq 0 ] || fail "exit $status: $stderr"
}

@test "run --checkpoint: --delete-at-end removes the checkpoint; bad options get one line" {
	run --separate-stderr as_user1 "$FERRY" exec --checkpoint "$T" --delete-at-end "$IMG" true
	[ "$status" -eq 0 ] || fail "exit $status: $stderr"
	[ ! -e "$CK" ] || fail "checkpoint left: $(ls -la "$CK")"

	run --separate-stderr as_user1 "$FERRY" exec --checkpoint "$T" --checkpoint-every 0 "$IMG" true
	assert_ferry_error "--checkpoint-every '0': give an interval such as 90s"
	run --separate-stderr as_user1 "$FERRY" exec --checkpoint "$T" --checkpoint-every 5x "$IMG" true
	assert_ferry_error "--checkpoint-every '5x'"
	run --separate-stderr as_user1 "$FERRY" run --keep 2 "$IMG"
	assert_ferry_error "need --checkpoint NAME"
	run --separate-stderr as_user1 "$FERRY" exec --checkpoint "$T" --keep 0 "$IMG" true
	assert_ferry_error "--keep '0'"
	run --separate-stderr as_user1 "$FERRY" exec --checkpoint "$T" --checkpoint-signal KILL "$IMG" true
	assert_ferry_error "--checkpoint-signal 'KILL'"
	run --separate-stderr as_user1 "$FERRY" exec --checkpoint "$T" instance://x true
	assert_ferry_error "give an IMAGE"
	run --separate-stderr as_user1 "$FERRY" instance start --checkpoint "$T" "$IMG" x
	assert_ferry_error "belongs to 'ferry run' and 'ferry exec'"
	run --separate-stderr as_user1 "$FERRY" exec --checkpoint "bad name" "$IMG" true
	assert_ferry_error "checkpoint"
	# an instance's checkpoint is not a run's
	as_user1 "$FERRY" checkpoint create "$T-plain" >/dev/null
	as_user1 ln -s gen-000001 "$(ckpt_dir "$U1" "$T-plain")/current"
	run --separate-stderr as_user1 "$FERRY" exec --checkpoint "$T-plain" "$IMG" true
	assert_ferry_error "holds an instance's checkpoint, not a run's"
	as_user1 "$FERRY" checkpoint delete "$T-plain"
}
