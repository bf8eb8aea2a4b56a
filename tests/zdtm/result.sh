# shellcheck shell=bash
# result.sh — sourced by run.sh and bare.sh: one line a test to the terminal and to $results,
# counted in $pass, $fail and $skip.

result() { # TEST RESULT [WHY]
	local t=$1 r=$2 why=${3:-}
	printf '%-28s %s%s\n' "$t" "$r" "${why:+ ($why)}"
	printf '%s %s%s\n' "$t" "$r" "${why:+ $why}" >>"$results"
	case $r in
	PASS) pass=$((pass + 1)) ;;
	FAIL) fail=$((fail + 1)) ;;
	*) skip=$((skip + 1)) ;;
	esac
}
