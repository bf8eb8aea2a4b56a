#!/bin/bash
# ferry lint: run from `make lint`.
#   1. forbidden calls in src/ (fails, with file:line): system( popen(
#      sprintf( vsprintf( gets( atoi( atol( atoll( and bare getenv(
#      (snprintf, asprintf, secure_getenv, ... are fine); comments and
#      string literals are not searched;
#   2. make format-check (fails on any clang-format difference), and make setuid-size (fails
#      when the setuid binary's code lines grow over their budget);
#   3. clang-tidy (bugprone, cert, clang-analyzer) if installed: report only.
# Environment: FERRY_LINT_TIDY=0 skips clang-tidy.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
MAKE=${MAKE:-make}
status=0

# ------------------------------------------------------- 1. forbidden calls
echo "lint: forbidden calls in src/"
mapfile -t sources < <(find src -type f \( -name '*.c' -o -name '*.h' \) | sort)
if [ "${#sources[@]}" -gt 0 ]; then
	awk '
	FNR == 1 { incomment = 0 }
	{
		# Blank out comments and string/char literals, keeping the code.
		line = $0; code = ""; i = 1; n = length(line)
		while (i <= n) {
			c = substr(line, i, 1); c2 = substr(line, i, 2)
			if (incomment) {
				if (c2 == "*/") { incomment = 0; i += 2 } else i++
				continue
			}
			if (c2 == "/*") { incomment = 1; i += 2; code = code " "; continue }
			if (c2 == "//") break
			if (c == "\"" || c == "\047") {
				q = c; i++
				while (i <= n && substr(line, i, 1) != q) {
					if (substr(line, i, 1) == "\\") i++
					i++
				}
				i++; code = code q q
				continue
			}
			code = code c; i++
		}
		for (k = 1; k <= nbad; k++) {
			if (code ~ ("(^|[^A-Za-z0-9_])" bad[k] "[ \t]*\\(")) {
				printf "%s:%d: forbidden %s(): %s\n", FILENAME, FNR, bad[k], hint[k]
				found++
			}
		}
	}
	BEGIN {
		nbad = split("system popen sprintf vsprintf gets atoi atol atoll getenv", bad, " ")
		hint[1] = "run programs with the spawn helpers (fork/exec, no shell)"
		hint[2] = hint[1]
		hint[3] = "use snprintf (or asprintf) and check the result"
		hint[4] = "use vsnprintf and check the result"
		hint[5] = "use fgets"
		hint[6] = "use strtol/strtoul with full error checks"
		hint[7] = hint[6]; hint[8] = hint[6]
		hint[9] = "use secure_getenv"
	}
	END { exit found ? 1 : 0 }' "${sources[@]}"
	rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "lint: forbidden calls found"
		status=1
	else
		echo "lint: none in ${#sources[@]} files"
	fi
fi

# ------------------------------------------------------- 2. formatting
echo "lint: make format-check"
if ! command -v clang-format >/dev/null; then
	echo "lint: clang-format not found (run: make setup)"
	status=1
elif ! "$MAKE" -s --no-print-directory format-check; then
	echo "lint: formatting differs from .clang-format (fix with: make format)"
	status=1
fi

# ------------------------------------------------------- 2b. the setuid binary's size
echo "lint: make setuid-size"
if ! "$MAKE" -s setuid-size | tail -n 1; then
	status=1
fi

# ------------------------------------------------------- 3. clang-tidy
if [ "${FERRY_LINT_TIDY:-1}" = 0 ]; then
	echo "lint: clang-tidy skipped (FERRY_LINT_TIDY=0)"
elif ! command -v clang-tidy >/dev/null; then
	echo "lint: clang-tidy not installed, skipped"
else
	mapfile -t cfiles < <(find src -type f -name '*.c' | sort)
	checks='bugprone-*,cert-*,clang-analyzer-*,-bugprone-easily-swappable-parameters,-cert-err33-c'
	checks="$checks,-bugprone-reserved-identifier,-cert-dcl37-c,-cert-dcl51-cpp"
	# Flags every memcpy/memset/snprintf (wants C11 Annex K *_s functions).
	checks="$checks,-clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling"
	echo "lint: clang-tidy on ${#cfiles[@]} files (report only)"
	if [ "${#cfiles[@]}" -gt 0 ]; then
		tmp=$(mktemp -d)
		trap 'rm -rf "$tmp"' EXIT
		# One output file per source (run in parallel), shown in order.
		# shellcheck disable=SC2016 # $1.. belong to the inner sh
		printf '%s\n' "${cfiles[@]}" | xargs -P "$(nproc)" -I{} sh -c '
			out="$1/$(printf %s "$2" | tr / _).txt"
			clang-tidy --quiet --checks="$3" --header-filter="^src/" "$2" -- \
				-std=gnu11 -D_GNU_SOURCE -Isrc/lib -DFERRY_VERSION=\"0\" \
				-DFERRY_SYSCONFDIR=\"/etc/ferry\" -DFERRY_LIBEXECDIR=\"/x\" \
				-DFERRY_STATEDIR=\"/x\" -DFERRY_RUNDIR=\"/x\" -DFERRY_BINDIR=\"/x\" \
				>"$out" 2>&1 || echo "clang-tidy: exit $? for $2" >>"$out"' sh "$tmp" {} "$checks"
		for f in "${cfiles[@]}"; do
			out="$tmp/$(printf %s "$f" | tr / _).txt"
			# Drop clang-tidy's "N warnings generated." chatter.
			grep -vE '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$' "$out" || true
		done | tee "$tmp/all"
		w=$(grep -cE ': warning: ' "$tmp/all")
		e=$(grep -cE ': error: ' "$tmp/all")
		echo "lint: clang-tidy: $w warnings, $e errors (not fatal)"
	fi
fi

if [ "$status" -eq 0 ]; then
	echo "lint: ok"
else
	echo "lint: FAILED"
fi
exit "$status"
