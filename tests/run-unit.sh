#!/bin/bash
# run-unit.sh BIN...: run cmocka unit-test binaries and count their results.
#
# Each binary runs with CMOCKA_MESSAGE_OUTPUT=TAP; "ok N" lines count as
# passed, "not ok N" as failed, and either with a "# SKIP" directive as
# skipped (counted as passed, listed separately). A binary that crashes, times
# out, or exits non-zero without reporting a failed test (a sanitizer report,
# a leak, an abort) counts as one more failure. Output of a binary whose tests
# all pass is one line; failing binaries show their full output
# (FERRY_TEST_VERBOSE=1 shows it always).
#
# Prints "unit: N passed, N failed" last and exits non-zero if anything failed.
# The binaries run nproc at a time (several wait on timers: xfer_test's idle
# bounds), their results shown in the order given.
#
# Environment: FERRY_UNIT_TIMEOUT (seconds per binary, default 300),
# FERRY_UNIT_JOBS (binaries at a time, default nproc),
# FERRY_TEST_VERBOSE, and ASAN_OPTIONS/UBSAN_OPTIONS (appended to ours, so
# they can override them).
set -uo pipefail

export CMOCKA_MESSAGE_OUTPUT=TAP
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
timeout_s=${FERRY_UNIT_TIMEOUT:-300}
verbose=${FERRY_TEST_VERBOSE:-0}

total_pass=0
total_fail=0
total_skip=0
skipped=()

jobs_max=${FERRY_UNIT_JOBS:-$(nproc)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# run_one I BIN: BIN's output in $work/I.out, its exit status in $work/I.rc
run_one() {
	local rc=0
	# (braces + 2>/dev/null: no "Aborted" note from bash for a crash; the
	# binary's own stderr goes to the output)
	{ timeout -k 10 "$timeout_s" "$2" >"$work/$1.out" 2>&1 </dev/null; } 2>/dev/null || rc=$?
	echo "$rc" >"$work/$1.rc"
}

i=0
for bin in "$@"; do
	i=$((i + 1))
	[ -x "$bin" ] || continue
	while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
	run_one "$i" "$bin" &
done
wait

i=0
for bin in "$@"; do
	i=$((i + 1))
	name=${bin#./}
	if [ ! -x "$bin" ]; then
		printf 'FAIL %s: not found or not executable\n' "$name"
		total_fail=$((total_fail + 1))
		continue
	fi
	out=$work/$i.out
	rc=$(cat "$work/$i.rc" 2>/dev/null || echo 125)

	read -r pass fail skip < <(awk '
		/^(not )?ok [0-9]+/ && /#[ \t]*[Ss][Kk][Ii][Pp]/ { s++; next }
		/^ok [0-9]+/ { p++; next }
		/^not ok [0-9]+/ { f++; next }
		END { printf "%d %d %d\n", p, f, s }' "$out")

	why=""
	if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
			why="timed out after ${timeout_s}s"
		elif [ "$rc" -gt 128 ]; then
			why="killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null || echo '?'))"
		else
			why="exited with status $rc without a failed test (sanitizer report or crash?)"
		fi
		fail=1
	elif [ "$rc" -eq 0 ] && [ $((pass + fail + skip)) -eq 0 ]; then
		why="printed no TAP results"
		fail=1
	fi

	while IFS= read -r line; do
		skipped+=("$name: $line")
	done < <(grep -E '^(not )?ok [0-9]+.*#[[:space:]]*[Ss][Kk][Ii][Pp]' "$out" | sed -E 's/^(not )?ok [0-9]+ *(- *)?//; s/#[[:space:]]*[Ss][Kk][Ii][Pp][[:space:]]*//')

	summary="$pass passed"
	[ "$skip" -eq 0 ] || summary="$summary, $skip skipped"
	if [ "$fail" -eq 0 ]; then
		[ "$verbose" = 0 ] || cat "$out"
		printf 'PASS %s: %s\n' "$name" "$summary"
	else
		printf -- '---- %s (exit %d) ----\n' "$name" "$rc"
		cat "$out"
		printf -- '----\n'
		printf 'FAIL %s: %s, %d failed%s\n' "$name" "$summary" "$fail" "${why:+; $why}"
	fi
	total_pass=$((total_pass + pass + skip))
	total_skip=$((total_skip + skip))
	total_fail=$((total_fail + fail))
done

if [ "$#" -eq 0 ]; then
	echo "unit: no test binaries given"
fi
if [ "$total_skip" -gt 0 ]; then
	printf 'unit: %d skipped (counted as passed):\n' "$total_skip"
	printf '  skip %s\n' "${skipped[@]}"
fi
printf 'unit: %d passed, %d failed\n' "$total_pass" "$total_fail"
[ "$total_fail" -eq 0 ]
