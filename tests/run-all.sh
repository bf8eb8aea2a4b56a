#!/bin/bash
# run-all.sh: ferry's whole test suite, as `make check` runs it (after setup,
# build and install):
#   1. unit tests, plain build          (make unit)
#   2. unit tests, ASan+UBSan build     (make unit-san, in build-san/)
#   3. integration tests                (bats over tests/integration/*.bats)
# and a last line "N passed, N failed" summing all of them. Skipped tests count
# as passed and are listed separately. Exits non-zero if anything failed or a
# stage could not run.
#
# Environment:
#   FERRY_TESTS="regex"   run only the bats files whose name matches (grep -E),
#                         e.g. FERRY_TESTS='checkpoint|migrate'
#   FERRY_BATS_TIMEOUT    seconds for the whole bats stage (default 3600)
#   FERRY_TEST_VERBOSE=1  show the output of passing unit-test binaries too
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1

MAKE=${MAKE:-make}
bats_timeout=${FERRY_BATS_TIMEOUT:-3600}
total_pass=0
stage_t0=$SECONDS
total_fail=0
skips=()
summary=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# header N TEXT: a stage begins (its time, in the summary, counts from here)
header() {
	stage_t0=$SECONDS
	printf '\n==== [%s] %s ====\n' "$1" "$2"
}

# account LABEL PASS FAIL SKIP NOTE
account() {
	total_pass=$((total_pass + $2))
	total_fail=$((total_fail + $3))
	local s
	s=$(printf '%-24s %d passed, %d failed' "$1:" "$2" "$3")
	[ "$4" -eq 0 ] || s="$s ($4 skipped)"
	[ -z "$5" ] || s="$s -- $5"
	summary+=("$s [$((SECONDS - stage_t0)) s]")
}

# unit_stage N LABEL MAKE-TARGET: run a make target that ends with
# tests/run-unit.sh and take its counts from "unit: N passed, N failed".
unit_stage() {
	local n=$1 label=$2 target=$3 rc=0 line p f s note="" l
	header "$n" "$label: make $target"
	# Our own -j, and no jobserver from a calling make (its pipe is not
	# passed down to us): avoids make's "jobserver unavailable" warnings.
	MAKEFLAGS=$(sed -E 's/(^| )--jobserver-(auth|fds)=[^ ]*//g; s/(^| )-j[0-9]*( |$)/\2/' <<<"${MAKEFLAGS:-}") \
		"$MAKE" -s --no-print-directory -j"$(nproc)" "$target" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^unit: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
	if [ -z "$line" ]; then
		printf '%s: did not run to completion (make %s: exit %d)\n' "$label" "$target" "$rc"
		account "$label" 0 1 0 "did not run (make exit $rc)"
		return
	fi
	read -r p f <<<"$(sed -E 's/^unit: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/' <<<"$line")"
	s=$(sed -nE 's/^unit: ([0-9]+) skipped.*/\1/p' "$log" | tail -n 1)
	s=${s:-0}
	while IFS= read -r l; do
		skips+=("$label: $l")
	done < <(sed -nE 's/^  skip (.*)/\1/p' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		note="make exit $rc"
	fi
	account "$label" "$p" "$f" "$s" "$note"
}

bats_stage() {
	local n=$1 label="integration" files=() f rc=0 plan p=0 fl=0 s=0 seen note="" l what
	what="integration tests: bats tests/integration"
	[ -z "${FERRY_TESTS:-}" ] || what="$what (FERRY_TESTS=$FERRY_TESTS)"
	header "$n" "$what"
	for f in tests/integration/*.bats; do
		[ -e "$f" ] || continue
		if [ -n "${FERRY_TESTS:-}" ] && ! basename "$f" | grep -qE -- "$FERRY_TESTS"; then
			continue
		fi
		files+=("$f")
	done
	if [ "${#files[@]}" -eq 0 ]; then
		if [ -n "${FERRY_TESTS:-}" ]; then
			echo "no bats file matches FERRY_TESTS='$FERRY_TESTS'"
			account "$label" 0 1 0 "no file matches FERRY_TESTS"
		else
			echo "no integration tests (tests/integration/*.bats)"
			account "$label" 0 0 0 "no .bats files"
		fi
		return
	fi
	if ! command -v bats >/dev/null; then
		echo "bats not found (run: make setup)"
		account "$label" 0 1 0 "bats not found"
		return
	fi
	{ timeout -k 30 "$bats_timeout" bats --tap --timing "${files[@]}" </dev/null 2>&1; } 2>/dev/null | tee "$log"
	rc=${PIPESTATUS[0]}
	plan=$(sed -nE 's/^1\.\.([0-9]+).*/\1/p' "$log" | head -n 1)
	p=$(grep -cE '^ok [0-9]+' "$log")
	s=$(grep -cE '^ok [0-9]+.*# skip' "$log")
	p=$((p - s))
	fl=$(grep -cE '^not ok [0-9]+' "$log")
	seen=$((p + s + fl))
	while IFS= read -r l; do
		skips+=("$label: $l")
	done < <(grep -E '^ok [0-9]+.*# skip' "$log" | sed -E 's/^ok [0-9]+ //; s/ in [0-9]+ms( # skip)/\1/; s/ # skip ?(.*)/ (\1)/')
	if [ -n "$plan" ] && [ "$seen" -lt "$plan" ]; then
		note="$((plan - seen)) of $plan tests did not report"
		fl=$((fl + plan - seen))
	fi
	if [ "$rc" -ne 0 ] && [ "$fl" -eq 0 ]; then
		fl=1
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
			note="timed out after ${bats_timeout}s"
		else
			note="bats exit $rc"
		fi
	elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		note="${note:+$note; }timed out after ${bats_timeout}s"
	fi
	[ -z "$note" ] || echo "integration: $note"
	account "$label" "$((p + s))" "$fl" "$s" "$note"
}

# lint_stage N: forbidden calls, clang-format and the setuid budget: one test. clang-tidy, which
# only reports (and takes minutes of both cores), is left to `make lint`.
lint_stage() {
	header "$1" "lint: make lint (FERRY_LINT_TIDY=0)"
	if FERRY_LINT_TIDY=0 "$MAKE" -s --no-print-directory lint >"$log" 2>&1; then
		tail -n 2 "$log"
		account "lint" 1 0 0 ""
	else
		grep -vE '^(/|[[:space:]])' "$log" | tail -n 30
		account "lint" 0 1 0 "make lint failed"
	fi
}

unit_stage 1/5 "unit" unit
unit_stage 2/5 "unit (ASan+UBSan)" unit-san
export FUZZ_SECONDS=${FUZZ_SECONDS:-5}
unit_stage 3/5 "fuzz (libFuzzer)" fuzz
lint_stage 4/5
bats_stage 5/5

printf '\n==== summary ====\n'
printf '  %s\n' "${summary[@]}"
if [ "${#skips[@]}" -gt 0 ]; then
	printf '  skipped (counted as passed): %d\n' "${#skips[@]}"
	printf '    %s\n' "${skips[@]}"
fi
printf '%d passed, %d failed\n' "$total_pass" "$total_fail"
[ "$total_fail" -eq 0 ]
