#!/usr/bin/env bash
# run.sh [TEST...] — CRIU's zdtm static tests through ferry, as an ordinary user (issue 16).
#
# Each test runs as the workload of a --criu-launch instance, the way zdtm's own runner (test/
# zdtm.py, 'h' flavour) runs it on bare CRIU: started with the arguments of its Makefile's
# TEST.pid rule, it daemonizes and writes TEST.pid once ready; then
#   ferry checkpoint instance --criu   (the dump ends the instance)
#   ferry instance start --criu-restart
# and the test gets SIGTERM, checks its own state and writes PASS (or FAIL) to TEST.out.
# Without TEST arguments, every static test that zdtm runs by default on a host ('h' flavour, no
# noauto/crfail flag, this architecture, its checkskip passing); 'suid' tests need root inside and
# are skipped as an ordinary user ('nouser' ones, which zdtm's own unprivileged mode skips, are
# run: ferry's CRIU holds the capabilities a restore needs).
#
# Run as root against the installed ferry (make install). Prints a line a test and the summary
# "N passed, N failed, N skipped"; writes $ZDTM_RESULTS (one "TEST RESULT [why]" line a test) and
# keeps each failed test's .out and CRIU log under $ZDTM_WORK/logs. Exit status 1 if one failed.
#
#   ZDTM_USER     the ordinary user (default ferrytest1, the integration suite's; made if missing)
#   ZDTM_BUILD    where the tests are built (default /var/tmp/ferry-zdtm)
#   ZDTM_TIMEOUT  seconds a test may take from start to its result (default 60)
#   ZDTM_RESULTS  the result file (default $ZDTM_BUILD/results.txt)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
FERRY=${FERRY:-/usr/local/bin/ferry}
user=${ZDTM_USER:-ferrytest1}
build=${ZDTM_BUILD:-/var/tmp/ferry-zdtm}
timeout=${ZDTM_TIMEOUT:-60}
results=${ZDTM_RESULTS:-$build/results.txt}

[ "$(id -u)" = 0 ] || { echo "zdtm: run as root (the tests run as $user)" >&2; exit 2; }
id -u "$user" >/dev/null 2>&1 || useradd -m -U -s /bin/sh "$user" || exit 2
static=$("$here/build.sh" "$build") || exit 2

# For the run only: huge pages, as zdtm.py reserves them (maps09, maps10, memfd02-hugetlb), and
# the ghost limit the ghost_multi_hole tests ask CRIU for (8M), as an admin would set it.
saved_huge=$(cat /proc/sys/vm/nr_hugepages)
dropin=/etc/ferry/ferry.conf.d/95-ferry-zdtm.conf
trap 'echo "$saved_huge" >/proc/sys/vm/nr_hugepages; rm -f "$dropin"' EXIT
[ "$saved_huge" -ge 20 ] || echo 20 >/proc/sys/vm/nr_hugepages
install -d -m 0755 /etc/ferry/ferry.conf.d
printf 'criu ghost limit = 8\n' >"$dropin.tmp" && chmod 0644 "$dropin.tmp" && mv -f "$dropin.tmp" "$dropin"
home=$(getent passwd "$user" | cut -d: -f6)
work=$home/ferry-zdtm # the user's home is bound into every container at the same path
image=$build/image

as_user() { runuser -u "$user" -- env -i HOME="$home" PATH=/usr/bin:/bin ZDTM_ROOTLESS=1 "$@"; }

# The image: busybox and the host's libraries the tests link (they run from $work).
make_image() {
	[ -f "$image/.done" ] && return 0
	rm -rf "$image"
	mkdir -p "$image"/{bin,etc,root,proc,sys,dev,tmp,home}
	cp /bin/busybox "$image/bin/busybox"
	local a lib
	for a in $(/bin/busybox --list); do
		[ "$a" = busybox ] || ln -sf busybox "$image/bin/$a"
	done
	ln -s bin "$image/sbin"
	mkdir -p "$image/usr"
	ln -s ../bin "$image/usr/bin"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$image/etc/passwd"
	printf 'root:x:0:\n' >"$image/etc/group"
	find "$static" -maxdepth 1 -type f -perm -u+x -exec ldd {} + 2>/dev/null |
		awk '/=> \// {print $3} /^\t\/.*ld-linux/ {print $1}' | sort -u | while read -r lib; do
		mkdir -p "$image$(dirname "$lib")"
		cp -L "$lib" "$image$lib"
	done
	ldd /bin/busybox 2>/dev/null | awk '/=> \// {print $3} /^\t\/.*ld-linux/ {print $1}' | while read -r lib; do
		mkdir -p "$image$(dirname "$lib")"
		cp -L "$lib" "$image$lib"
	done
	chmod -R a+rX,go-w "$image"
	touch "$image/.done"
}

# desc_skip TEST: why zdtm itself would not run TEST here (empty: it would).
desc_skip() {
	local d=$static/$1.desc
	if [ -x "$static/$1.checkskip" ] && ! (cd "$static" && as_user "./$1.checkskip") >/dev/null 2>&1; then
		echo "checkskip"
		return
	fi
	[ -f "$d" ] || return 0
	python3 - "$d" <<-'EOF'
		import ast, platform, sys
		try:
		    d = ast.literal_eval(open(sys.argv[1]).read())
		except Exception:
		    # an expression (zdtm evaluates it): such tests are noauto unless their environment
		    # (ZDTM_MNT_EXT_DEV...) is set, which this runner does not set
		    d = {'flags': 'noauto'}
		flags = d.get('flags', '').split()
		flavor = d.get('flavor', 'h ns uns').split()
		arch = d.get('arch', '')
		if 'noauto' in flags: print('noauto')
		elif 'crfail' in flags: print('crfail: the dump is expected to fail')
		elif 'h' not in flavor: print('not in the host flavour (%s)' % ' '.join(flavor))
		elif arch and arch != platform.machine(): print('arch %s' % arch)
		elif 'suid' in flags: print('suid: needs root inside')
	EOF
}

# desc_flags TEST dump|restore: ferry's options for the CRIU options TEST's desc asks for at that
# step ('opts' at both, 'dopts' at the dump, 'ropts' at the restore): --skip-in-flight at the dump,
# --tcp-close at the restore. (--tcp-established and --file-locks ferry always gives, and
# --ghost-limit is the admin's 'criu ghost limit', set above; the others it does not offer:
# tests/zdtm/README.md lists the tests that need them.)
desc_flags() {
	[ -f "$static/$1.desc" ] || return 0
	python3 - "$static/$1.desc" "$2" <<-'EOF'
		import ast, sys
		try:
		    d = ast.literal_eval(open(sys.argv[1]).read())
		except Exception:
		    d = {}
		step = sys.argv[2]
		opts = (d.get('opts', '') + ' ' + d.get('dopts' if step == 'dump' else 'ropts', '')).split()
		ours = {'dump': ['--skip-in-flight'], 'restore': ['--tcp-close']}[step]
		print(' '.join(o for o in opts if o in ours))
	EOF
}

# The tests zdtm runs: those with a TEST.pid rule in the static Makefile, built.
all_tests() {
	local t
	make -s -C "$static" -pn start 2>/dev/null | sed -n 's/^start: *//p' | head -n1 | tr ' ' '\n' |
		sed -n 's/\.pid$//p' | sort -u | while read -r t; do
		echo "$t"
	done
}

# The command line zdtm starts TEST with (its Makefile's TEST.pid rule).
start_cmd() {
	rm -f "$static/$1.pid"
	make -s -n -C "$static" --no-print-directory "$1.pid" 2>/dev/null | grep -m1 "^\./$1 "
}

# iname TEST: the name of its instance and checkpoint (what ferry allows in names).
iname() { printf 'zdtm-%s' "${1//[^A-Za-z0-9_.-]/_}"; }

# result TEST RESULT [WHY]: tests/zdtm/result.sh
. "$here/result.sh"

keep_logs() { # TEST
	local t=$1 ck
	ck=$home/.ferry/checkpoint/$(iname "$t")
	mkdir -p "$build/logs/$t"
	cp -f "$work/$t.out" "$work/$t.out.inprogress" "$ck/dump.log" "$ck/restore.log" \
		"$home/.ferry/instances/$(hostname)/$(iname "$t").err" "$build/logs/$t/" 2>/dev/null || true
}

cleanup_test() { # TEST
	as_user "$FERRY" instance stop --timeout 3 "$(iname "$1")" >/dev/null 2>&1 || true
	as_user "$FERRY" checkpoint delete "$(iname "$1")" >/dev/null 2>&1 || true
}

# wait_file FILE SECONDS: until FILE is there and not empty.
wait_file() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ -s "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# first_line_err OUTPUT: its first line, for the result file.
first_line() { head -n1 <<<"$1" | cut -c1-300; }

run_test() { # TEST
	local t=$1 why cmd out deadline
	why=$(desc_skip "$t")
	if [ -n "$why" ]; then
		result "$t" SKIP "$why"
		return
	fi
	[ -x "$static/$t" ] || { result "$t" SKIP "not built here"; return; }
	cmd=$(start_cmd "$t")
	[ -n "$cmd" ] || { result "$t" SKIP "no start rule"; return; }
	cleanup_test "$t"
	rm -rf "$work/$t".* "$work/$t.test" "$work/$t.dir.test"
	as_user "$FERRY" checkpoint create "$(iname "$t")" >/dev/null 2>&1 || { result "$t" FAIL "checkpoint create"; return; }
	deadline=$((SECONDS + timeout))
	# the test daemonizes once ready (its pidfile); the shell then idles as the workload
	# shellcheck disable=SC2016 # expanded by the container's shell
	local inner='cd "$1" && eval "$2"; exec sleep 2147483647'
	if ! out=$(as_user timeout "$timeout" "$FERRY" instance start --criu-launch "$(iname "$t")" "$image" "$(iname "$t")" \
		sh -c "$inner" zdtm "$work" "$cmd" 2>&1); then
		result "$t" FAIL "start: $(first_line "$out")"
		keep_logs "$t"; cleanup_test "$t"; return
	fi
	if ! wait_file "$work/$t.pid" 20; then
		result "$t" FAIL "start: no pidfile"
		keep_logs "$t"; cleanup_test "$t"; return
	fi
	sleep 0.5 # let it settle
	local dflags rflags
	dflags=$(desc_flags "$t" dump)
	rflags=$(desc_flags "$t" restore)
	# shellcheck disable=SC2086 # zero or more options
	if ! out=$(as_user timeout "$timeout" "$FERRY" checkpoint instance --criu $dflags "$(iname "$t")" 2>&1); then
		result "$t" FAIL "dump: $(first_line "$out")"
		keep_logs "$t"; cleanup_test "$t"; return
	fi
	# shellcheck disable=SC2086
	if ! out=$(as_user timeout "$timeout" "$FERRY" instance start --criu-restart "$(iname "$t")" $rflags 2>&1); then
		result "$t" FAIL "restore: $(first_line "$out")"
		keep_logs "$t"; cleanup_test "$t"; return
	fi
	local pid
	pid=$(cat "$work/$t.pid")
	if ! out=$(as_user "$FERRY" exec "instance://$(iname "$t")" kill -TERM "$pid" 2>&1); then
		result "$t" FAIL "the test process $pid is gone after the restore: $(first_line "$out")"
		keep_logs "$t"; cleanup_test "$t"; return
	fi
	# zdtm's verdict: PASS among the words of the end of TEST.out once the test is done
	while ((SECONDS < deadline)); do
		grep -qE '(^| )(PASS|FAIL)' "$work/$t.out" 2>/dev/null && break
		sleep 0.1
	done
	sleep 0.2
	if tail -n 5 "$work/$t.out" 2>/dev/null | tr -s ' \t' '\n' | grep -qx PASS; then
		result "$t" PASS
	elif ((SECONDS >= deadline)); then
		result "$t" FAIL "no verdict within ${timeout}s"
		keep_logs "$t"
	else
		result "$t" FAIL "check: $(tail -n 3 "$work/$t.out" 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
		keep_logs "$t"
	fi
	cleanup_test "$t"
}

main() {
	make_image
	# a fresh copy of the built tests in the user's home, where they write their .out files
	rm -rf "$work"
	mkdir -p "$work"
	cp -a "$static/." "$work/"
	chown -R "$user:" "$work"
	chmod 0755 "$work"
	local tests=("$@")
	[ ${#tests[@]} -gt 0 ] || mapfile -t tests < <(all_tests)
	: >"$results"
	rm -rf "$build/logs"
	pass=0 fail=0 skip=0
	local t
	for t in "${tests[@]}"; do
		run_test "$t"
	done
	echo "zdtm through ferry: $pass passed, $fail failed, $skip skipped (results: $results)"
	[ "$fail" -eq 0 ]
}

main "$@"
