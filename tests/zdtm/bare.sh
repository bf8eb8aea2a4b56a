#!/usr/bin/env bash
# bare.sh [TEST...] — CRIU's zdtm static tests on bare CRIU, by zdtm's own runner (issue 16): the
# baseline that run.sh's counts through ferry are compared with, on the same machine.
#
# Each test goes through CRIU 4.2.1's test/zdtm.py, as root, against the installed CRIU (default
# /usr/local/sbin/criu, the one ferry uses), one zdtm.py run a test:
#   zdtm.py run -T '^zdtm/static/TEST$' -f FLAVOUR --criu-bin CRIU --keep-img never
# (-T: zdtm's "all tests" rules, so noauto tests are skipped as by 'zdtm.py run -a'). zdtm.py runs
# every test in its own pid, mount, network (only lo) and IPC namespaces (test/zdtm_ct). It sets
# vm.nr_hugepages to 20 (for the hugetlb tests) and leaves it so after a failed test: this script
# puts the value it found back at its end.
# FLAVOUR is zdtm's host flavour 'h', as run.sh selects, where root has CAP_SYS_RESOURCE. Where
# root's bounding set lacks it (these VMs), 'h' cannot dump a test that is not 'suid': zdtm
# switches the test to uid 18943, and CRIU's prlimit() on another user's process needs that
# capability ("Can't get rlimit 0: Operation not permitted"); there the default is 'uns', which
# runs each test in a user namespace owned by root, where root's CRIU holds every capability
# (tests without 'uns' among their flavours are then skipped: "no flavors").
# Without TEST arguments, the tests run.sh considers: every target of the static Makefile's
# 'start' rule. zdtm.py decides the skips itself (noauto, a flavour without 'h', another
# architecture, a missing CRIU feature, a failing checkskip); like run.sh, this script skips
# 'crfail' tests (zdtm runs them expecting the dump to fail) and tests this machine could not
# build. 'suid' tests run (as root they can); their results are marked 'suid', since run.sh
# skips them as an ordinary user.
#
# The source is unpacked whole and built (CRIU for pycriu's generated modules, zdtm_ct, the static
# tests) under $ZDTM_BARE_DIR, apart from run.sh's tree. Run as root; nothing is installed.
# Prints a line a test and the summary "N passed, N failed, N skipped"; writes $ZDTM_RESULTS (one
# "TEST PASS|FAIL|SKIP [why]" line a test) and keeps each failed test's zdtm.py output (CRIU's
# errors, the test's .out) in $ZDTM_BARE_DIR/logs-FLAVOUR/TEST.log. Exit status 1 if one failed.
#
#   ZDTM_BARE_DIR  where the source is unpacked and built (default /var/tmp/ferry-zdtm-bare)
#   ZDTM_CRIU      the CRIU binary under test (default /usr/local/sbin/criu)
#   ZDTM_FLAVOR    zdtm's flavour: h, ns or uns (default: h, or uns as above)
#   ZDTM_TIMEOUT   seconds one zdtm.py run may take (default 600; zdtm has its own limits inside)
#   ZDTM_RESULTS   the result file (default $ZDTM_BARE_DIR/results-FLAVOUR.txt)
set -uo pipefail
case ${1:-} in -h | --help)
	sed -n '2,/^set -uo/{/^set -uo/d; s/^# \{0,1\}//; p}' "$0"
	exit 0
	;;
esac
dir=${ZDTM_BARE_DIR:-/var/tmp/ferry-zdtm-bare}
criu=${ZDTM_CRIU:-/usr/local/sbin/criu}
# root's bounding set has CAP_SYS_RESOURCE (24)
if (($(printf '%d' "0x$(sed -n 's/^CapBnd:\t*//p' /proc/self/status)") >> 24 & 1)); then
	flavor=${ZDTM_FLAVOR:-h}
else
	flavor=${ZDTM_FLAVOR:-uns}
fi
timeout=${ZDTM_TIMEOUT:-600}
results=${ZDTM_RESULTS:-$dir/results-$flavor.txt}
logs=$dir/logs-$flavor
ver=${FERRY_CRIU_VERSION:-4.2.1}
tarball=${FERRY_CRIU_CACHE:-/var/cache/ferry/criu}/criu_$ver.orig.tar.xz
src=$dir/criu-$ver
static=$src/test/zdtm/static
# Debian's python3 (zdtm_ct execs zdtm.py through its '#!/usr/bin/env python3'): it has yaml and
# protobuf; a pyenv or similar python3 earlier on PATH would not.
PY=/usr/bin/python3
ENV=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8)

[ "$(id -u)" = 0 ] || { echo "zdtm-bare: run as root" >&2; exit 2; }
[ -x "$criu" ] || { echo "zdtm-bare: no CRIU at $criu (run 'make setup')" >&2; exit 2; }
"$PY" -c 'import yaml, google.protobuf' 2>/dev/null ||
	{ echo "zdtm-bare: $PY needs python3-yaml and python3-protobuf (run 'make setup')" >&2; exit 2; }

# The whole source, built once: CRIU and lib (pycriu's *_pb2.py, which zdtm.py imports), zdtm_ct,
# zdtm's lib and the static tests (-k: a test this machine lacks headers for is left out).
build() {
	[ -f "$dir/.built-$ver" ] && return 0
	[ -s "$tarball" ] || { echo "zdtm-bare: no CRIU source at $tarball (run 'make setup')" >&2; return 1; }
	mkdir -p "$dir"
	rm -rf "$src"
	tar -C "$dir" -xf "$tarball" || return 1
	echo "zdtm-bare: building CRIU $ver, pycriu and zdtm's static tests (a few minutes)" >&2
	{
		"${ENV[@]}" make -s -C "$src" -j"$(nproc)" PYTHON="$PY" criu lib &&
			"${ENV[@]}" make -s -C "$src/test" zdtm_ct umount2 &&
			"${ENV[@]}" make -s -C "$src/test/zdtm/lib" -j"$(nproc)"
	} >"$dir/build.log" 2>&1 || { tail -n 20 "$dir/build.log" >&2; return 1; }
	"${ENV[@]}" make -s -k -C "$static" -j"$(nproc)" all >>"$dir/build.log" 2>&1 || true
	touch "$dir/.built-$ver"
}

# The tests run.sh considers: those with a TEST.pid rule in the static Makefile.
all_tests() {
	make -s -C "$static" -pn start 2>/dev/null | sed -n 's/^start: *//p' | head -n1 | tr ' ' '\n' |
		sed -n 's/\.pid$//p' | sort -u
}

# desc_flag TEST FLAG: TEST's desc has FLAG among its flags.
desc_flag() {
	[ -s "$static/$1.desc" ] || return 1
	"$PY" - "$static/$1.desc" "$2" <<-'EOF'
		import ast, sys
		try:
		    d = ast.literal_eval(open(sys.argv[1]).read())
		except Exception:
		    d = {}
		sys.exit(0 if sys.argv[2] in d.get('flags', '').split() else 1)
	EOF
}

# result TEST RESULT [WHY]: tests/zdtm/result.sh
. "$(dirname "$0")/result.sh"

# why_failed LOG: zdtm's failed step and CRIU's first error, on one line.
why_failed() {
	local step err
	step=$(sed -n 's/^#* *Test zdtm\/static\/.* FAIL at \(.*[^ #]\) *#*$/\1/p' "$1" | head -n1)
	err=$(grep -E "Error \(" "$1" | grep -v 'rlimit: Can.t setup RLIMIT_NOFILE' | head -n1 |
		sed "s/^b'//; s/'$//" | cut -c1-200)
	[ -n "$err" ] || err=$(grep -m1 -E "^ERROR|FAIL:|Traceback|timeout" "$1" | cut -c1-200)
	printf '%s%s' "${step:-no verdict from zdtm.py}" "${err:+: $err}"
}

run_test() { # TEST
	local t=$1 log=$logs/$1.log re rc why suid=""
	[ -x "$static/$t" ] || { result "$t" SKIP "not built here"; return; }
	if desc_flag "$t" crfail; then
		result "$t" SKIP "crfail: the dump is expected to fail"
		return
	fi
	desc_flag "$t" suid && suid=suid
	# shellcheck disable=SC2001 # escapes a class of characters
	re="^zdtm/static/$(sed 's/[][\.*^$+?(){}|]/\\&/g' <<<"$t")\$"
	(cd "$src/test" && "${ENV[@]}" timeout -k 10 "$timeout" "$PY" ./zdtm.py run -T "$re" -f "$flavor" \
		--criu-bin "$criu" --keep-img never) >"$log" 2>&1
	rc=$?
	why=$(sed -n "s/^Skipping zdtm\/static\/$t (\(.*\))\$/\1/p" "$log" | head -n1)
	if [ "$rc" = 0 ] && [ -n "$why" ]; then
		result "$t" SKIP "$why"
		rm -f "$log"
	elif [ "$rc" = 0 ] && grep -q "Test zdtm/static/$t PASS" "$log"; then
		result "$t" PASS "$suid"
		rm -f "$log"
	elif [ "$rc" = 124 ]; then
		result "$t" FAIL "${suid:+suid: }no verdict within ${timeout}s"
	else
		result "$t" FAIL "${suid:+suid: }$(why_failed "$log")"
	fi
}

main() {
	build || exit 2
	local hugepages
	hugepages=$(cat /proc/sys/vm/nr_hugepages)
	# shellcheck disable=SC2064 # the value now
	trap "echo $hugepages >/proc/sys/vm/nr_hugepages" EXIT
	local tests=("$@") t start=$SECONDS
	[ ${#tests[@]} -gt 0 ] || mapfile -t tests < <(all_tests)
	: >"$results"
	rm -rf "$logs"
	mkdir -p "$logs"
	pass=0 fail=0 skip=0
	for t in "${tests[@]}"; do
		run_test "$t"
	done
	echo "zdtm on bare CRIU ($("$criu" --version | head -n1), flavour $flavor): $pass passed, $fail failed," \
		"$skip skipped in $(((SECONDS - start) / 60)) min (results: $results)"
	[ "$fail" -eq 0 ]
}

main "$@"
