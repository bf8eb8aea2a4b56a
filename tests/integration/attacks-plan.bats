#!/usr/bin/env bats
# attacks-plan.bats — the starter's privilege separation (issue 11, part 2): what the caller
# controls is read and parsed only by a process that is the caller for good (real, effective and
# saved uid; no capability; no_new_privs), and root takes from it only a plan it re-checks.
# That process is ferry-plan, a helper without the setuid bit that the setuid binary executes
# right after the drop: the parsers are not even in the setuid binary's image.
# Runs as the unprivileged test users against the installed ferry.

load ../lib/common

setup_file() { ferry_suite_setup; }
teardown_file() { ferry_suite_teardown; }

setup() {
	ferry_test_setup
	conf_save
	BG=
}

teardown() {
	exec 7>&- 2>/dev/null || true
	[ -z "$BG" ] || kill -KILL "$BG" 2>/dev/null || true
	conf_restore
	ferry_teardown
}

# fifo_holders PATH: the pids that have PATH open on fd 3
fifo_holders() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/fd/3" 2>/dev/null)" = "$1" ] && echo "${p#/proc/}"
	done
	true
}

# for_good PID UID GID: PID's ids are all UID/GID, it has no capability and no_new_privs
for_good() {
	local st
	st=$(cat "/proc/$1/status" 2>/dev/null) || return 1
	grep -qE "^Uid:[[:space:]]+$2[[:space:]]+$2[[:space:]]+$2[[:space:]]+$2\$" <<<"$st" &&
		grep -qE "^Gid:[[:space:]]+$3[[:space:]]+$3[[:space:]]+$3[[:space:]]+$3\$" <<<"$st" &&
		grep -qE '^CapPrm:[[:space:]]+0+$' <<<"$st" &&
		grep -qE '^CapEff:[[:space:]]+0+$' <<<"$st" &&
		grep -qE '^CapBnd:[[:space:]]+0+$' <<<"$st" &&
		grep -qE '^NoNewPrivs:[[:space:]]+1$' <<<"$st"
}

# start_on_fifo: runs the starter as U1 with a FIFO on fd 3 that this test holds open, so that
# whoever reads the request blocks in that read; sets FIFO and BG
start_on_fifo() {
	FIFO=$U1_TMP/req.fifo
	as_user1 mkfifo "$FIFO"
	exec 7<>"$FIFO"
	as_user "$U1" sh -c 'exec "$1" 3<"$2"' ferry-test "$STARTER" "$FIFO" >"$U1_TMP/out" 2>"$U1_TMP/err" 7>&- &
	BG=$!
}

# wait_reader: polls (5 s) until the only processes reading the FIFO are the caller for good;
# prints what they were when it gives up
wait_reader() {
	local uid gid h all
	uid=$(id -u "$U1") gid=$(id -g "$U1")
	for _ in $(seq 100); do
		h=$(fifo_holders "$FIFO")
		all=1
		for p in $h; do for_good "$p" "$uid" "$gid" || all=; done
		if [ -n "$h" ] && [ -n "$all" ]; then
			READER=$h
			return 0
		fi
		sleep 0.05
	done
	for p in $h; do
		echo "pid $p reads the request as:" >&2
		grep -E '^(Uid|Gid|CapPrm|CapEff|CapBnd|NoNewPrivs):' "/proc/$p/status" >&2
	done
	return 1
}

@test "the process that reads and decodes the request is the caller for good: no saved root uid, no capability" {
	start_on_fifo
	wait_reader
	# and it is not the setuid process: root's side does not hold the request at all
	[ "$READER" != "$BG" ]
	# a request that is not one: still the one line it always was
	exec 7>&-
	rc=0
	wait "$BG" || rc=$?
	BG=
	[ "$rc" -eq 255 ]
	run cat "$U1_TMP/err"
	assert_output --regexp '^ferry: invalid request: '
	[ "$(grep -c '' "$U1_TMP/err")" -eq 1 ]
	assert_instance_gone "$U1" nosuch
}

PLAN=/usr/local/libexec/ferry/ferry-plan

@test "the process that reads the request is ferry-plan: no setuid bit, the caller for good, only PATH" {
	# installed as ferry-relay and ferry-conf are: root's, 0711, neither setuid nor setgid (the
	# caller cannot read it, so the kernel makes its process not dumpable)
	[ "$(stat -c '%u %a' "$PLAN")" = "0 711" ]
	start_on_fifo
	wait_reader
	# the caller cannot trace it or take its fds, and so cannot change the plan root acts on
	run as_user1 ls "/proc/$READER/fd"
	assert_failure
	assert_output --partial "Permission denied"
	# the reader's image is ferry-plan, not the setuid starter
	[ "$(readlink "/proc/$READER/exe")" = "$PLAN" ]
	# every uid and gid the caller's, no capability in any set, no_new_privs (wait_reader)
	grep -qE '^CapInh:[[:space:]]+0+$' "/proc/$READER/status"
	grep -qE '^CapAmb:[[:space:]]+0+$' "/proc/$READER/status"
	# a fixed environment, none of the caller's
	[ "$(tr '\0' '\n' <"/proc/$READER/environ")" = "PATH=/usr/sbin:/usr/bin:/sbin:/bin" ]
	# its fds: /dev/null, /dev/null, the caller's stderr, the request, the socket to root
	[ "$(readlink "/proc/$READER/fd/0")" = /dev/null ]
	[ "$(readlink "/proc/$READER/fd/1")" = /dev/null ]
	[ "$(readlink "/proc/$READER/fd/3")" = "$FIFO" ]
	[[ "$(readlink "/proc/$READER/fd/4")" == socket:* ]]
	[ "$(ls "/proc/$READER/fd" | sort -n | tr '\n' ' ')" = "0 1 2 3 4 " ]
	exec 7>&-
	wait "$BG" || true
	BG=
}

# plan_direct USER REQUEST: runs ferry-plan as USER as a caller could, its fd 3 REQUEST and
# its fd 4 one end of a socketpair; prints its exit status, then the strings that came on the
# socket
plan_direct() {
	python3 - "$PLAN" "$(id -u "$1")" "$(id -g "$1")" "$2" <<-'EOF'
		import fcntl, os, re, socket, subprocess, sys
		plan, uid, gid, req = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
		def high(fd):
		    h = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
		    os.close(fd)
		    return h
		a, b = socket.socketpair()
		a, b, r = high(a.detach()), high(b.detach()), high(os.open(req, os.O_RDONLY))
		os.dup2(r, 3)
		os.dup2(b, 4)
		p = subprocess.Popen([plan, "request", "0", "/nonexistent"], pass_fds=(3, 4), user=uid,
		                     group=gid, extra_groups=[], env={}, stderr=subprocess.DEVNULL)
		for fd in (3, 4, r, b):
		    os.close(fd)
		data = b""
		while chunk := os.read(a, 1 << 20):
		    data += chunk
		print(p.wait())
		for text in re.findall(rb"[ -~]{8,}", data):
		    print(text.decode())
	EOF
}

@test "ferry-plan run directly by a user: nothing but an answer on its own socket, as that user" {
	use_image sif
	local r=$U1_TMP
	# no socket on fd 4: it says who runs it and does nothing
	run as_user1 "$PLAN" request 0 /
	assert_failure 2
	assert_output 'ferry-plan is run by ferry-starter, not directly'
	# root's files stay root's: it opens as the user who ran it, with no privilege
	forge_request --op 1 --image /etc/ferry/cluster.key --cwd / --arg true >"$r/key.req"
	forge_request --op 1 --image "$IMG" --cwd / --bind 0 /root /mnt --arg true >"$r/root.req"
	chmod a+r "$r"/*.req
	run plan_direct "$U1" "$r/key.req"
	assert_success
	assert_line --index 0 0
	assert_output --partial "open image '/etc/ferry/cluster.key': Permission denied"
	run plan_direct "$U1" "$r/root.req"
	assert_success
	assert_output --regexp "bind source '/root'.*(Permission denied|not allowed)"
	# and it is gone: nothing of it stays
	run pgrep -u "$U1" -f ferry-plan
	assert_failure
}

@test "a killed request checker: one line, root does nothing, nothing left behind" {
	start_on_fifo
	wait_reader
	# the caller may kill their checker (it is theirs): root must refuse, not act
	as_user1 kill -KILL "$READER"
	rc=0
	wait "$BG" || rc=$?
	BG=
	[ "$rc" -eq 255 ]
	run cat "$U1_TMP/err"
	assert_output --regexp '^ferry: the request could not be checked'
	[ "$(grep -c '' "$U1_TMP/err")" -eq 1 ]
	# nothing of the starter is left, nothing holds the request
	run pgrep -u "$U1" -f 'ferry-starter|ferry-plan'
	assert_failure
	[ -z "$(fifo_holders "$FIFO")" ]
}

@test "forged requests of every malformed kind: one line each, nothing left behind" {
	use_image sif
	local r=$U1_TMP uid
	uid=$(id -u "$U1")
	printf 'not a sif, not squashfs' >"$r/bad.img"
	printf 'FERRYRQ0' >"$r/magic.req"
	forge_request --op 1 --image "$IMG" --arg true | head -c 30 >"$r/cut.req"
	forge_request --op 99 --image "$IMG" --arg true >"$r/op.req"
	forge_request --op 1 --flags $((1 << 20)) --image "$IMG" --arg true >"$r/flags.req"
	forge_request --op 1 --flags $((1 << 6)) --image "$IMG" --arg true >"$r/netflag.req"
	forge_request --op 1 --image "$IMG" --instance x --arg true >"$r/exec-instance.req"
	forge_request --op 1 --arg true >"$r/noimage.req"
	forge_request --op 4 --arg true >"$r/list-argv.req"
	forge_request --op 1 --image relative --arg true >"$r/relative.req"
	forge_request --op 1 --image "$IMG" --arg true --env NOEQUALS >"$r/env.req"
	forge_request --op 2 --image "$IMG" --instance '../x' >"$r/name.req"
	forge_request --op 2 --image "$IMG" --instance ok --hostname '-bad' >"$r/hostname.req"
	forge_request --op 1 --image "$r/nosuch.img" --cwd / --arg true >"$r/noimg.req"
	forge_request --op 1 --image "$r/bad.img" --cwd / --arg true >"$r/badimg.req"
	forge_request --op 1 --image "$IMG" --cwd / --bind 0 "$r/nosuch" /mnt --arg true >"$r/nobind.req"
	forge_request --op 1 --image "$IMG" --cwd / --bind 0 /etc /mnt --arg true >"$r/etcbind.req"
	forge_request --op 1 --image "$IMG" --cwd / --bind 2 /etc /mnt --arg true >"$r/robind.req"
	forge_request --op 1 --image "$IMG" --cwd / --bind 0 "$r" /proc/x --arg true >"$r/dstbind.req"
	forge_request --op 2 --flags $((1 << 6)) --image "$IMG" --instance n1 --network-args 'IP=garbage' \
		>"$r/netargs.req"
	chmod a+r "$r"/*.req "$r/bad.img"
	local -A want=(
		[magic]='invalid request: bad magic'
		[cut]='invalid request'
		[op]='invalid request: unknown op'
		[flags]='invalid request: unknown flags'
		[netflag]='invalid request: --net belongs to instance start'
		[exec-instance]='invalid request: an instance name is not expected for exec'
		[noimage]='invalid request: no image'
		[list-argv]='invalid request: argv is not expected for instance list'
		[relative]='invalid request: image must be an absolute path'
		[env]='invalid request: env entry 0 at offset [0-9]+ is not KEY=VALUE'
		[name]='invalid instance name'
		[hostname]="invalid hostname '-bad'"
		[noimg]="image '.*nosuch.img' does not exist"
		[badimg]="image '.*bad.img'"
		[nobind]="bind source '.*nosuch' does not exist"
		[etcbind]="bind source '/etc' .*not allowed by ferry.conf"
		[robind]='invalid request: bind record'
		[dstbind]="bind destination '/proc/x' is reserved"
		[netargs]='network-args|IP'
	)
	for k in "${!want[@]}"; do
		run --separate-stderr starter_as "$U1" "$r/$k.req"
		assert_ferry_error "${want[$k]}"
		# nothing of the starter stays, nor of ferry-plan
		run pgrep -u "$U1" -f 'ferry-starter|ferry-plan'
		assert_failure
	done
	[ -z "$(ls -A "$(rundir_of "$uid")" 2>/dev/null)" ]
}
