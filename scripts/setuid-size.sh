#!/bin/bash
# setuid-size: the code lines of the setuid binary, ferry-starter: src/starter/ and the modules
# of src/lib/ the Makefile's STARTER_LIB links into it (issue 11's measure: comments and blank
# lines do not count). Run from `make setuid-size` (which passes the files); prints one line a
# file and the total, and fails when the total is over FERRY_SETUID_BUDGET (default: the budget
# below, lowered each time code leaves the setuid binary, so that it can only shrink unseen).
set -euo pipefail
BUDGET=${FERRY_SETUID_BUDGET:-8226}
[ "$#" -gt 0 ] || { echo "usage: setuid-size.sh FILE... (run 'make setuid-size')" >&2; exit 2; }
total=0
for f in "$@"; do
	# the preprocessor without its includes or macros: what is left of the file without comments
	n=$(gcc -fpreprocessed -dD -E -P -x c "$f" 2>/dev/null | grep -cv '^[[:space:]]*$' || true)
	printf '%6d %s\n' "$n" "$f"
	total=$((total + n))
done
printf '%6d total (budget %d; issue 11 aims at 3000)\n' "$total" "$BUDGET"
if [ "$total" -gt "$BUDGET" ]; then
	echo "setuid-size: the setuid binary's code grew to $total lines, over its budget of $BUDGET: move the new code into a helper that runs without the setuid bit (docs/security.md)" >&2
	exit 1
fi
