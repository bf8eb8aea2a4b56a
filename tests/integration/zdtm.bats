#!/usr/bin/env bats
# CRIU's own zdtm static tests through ferry (issue 16): a representative slice, each the workload
# of a --criu-launch instance of the unprivileged test user, dumped, restarted and told to check
# itself (tests/zdtm/run.sh; 'make zdtm' runs them all). Every zdtm test daemonizes (fork, the
# parent exits, the child calls setsid): before the workload's reaper, none of them survived.

load ../lib/common

# about 30 of them: processes and sessions (daemons, threads, stopped, zombies, subreapers),
# files (unlinked, locks, fifos, holes, memfd), unix and inet sockets (TCP over the instance's
# loopback: listening, established, half-closed both ways, restored closed, one not yet
# accepted), a deleted file above CRIU's default ghost limit, signals, timers, environment, memory.
# 'make zdtm' runs them all.
ZDTM_SLICE=(sleeping00 pstree wait00 pthread00 child_subreaper pdeath_sig stopped zombie00
	write_read00 unlink_fstat00 cwd00 file_locks00 fifo ghost_holes00 memfd00 pipe00
	sockets01 sockets_spair sk-unix-unconn scm00 socket_listen socket_udp socket-tcp-listen socket-tcp
	socket-tcp-close-wait socket-tcp-fin-wait2 socket-tcp-close0 socket-tcp-skip-in-flight ghost_multi_hole00
	sigaltstack sigpending signalfd00 timers posix_timers timerfd env00 maps00 futex rlimits00)

setup_file() {
	ferry_suite_setup
}

teardown_file() {
	ferry_suite_teardown
}

setup() {
	ferry_test_setup
}

teardown() {
	ferry_teardown
}

@test "zdtm through ferry: the representative slice passes as an ordinary user" {
	[ -s /var/cache/ferry/criu/criu_4.2.1.orig.tar.xz ] || fail "no CRIU 4.2.1 source: run scripts/setup.sh (it fetches it)"
	run env ZDTM_USER="$U1" ZDTM_RESULTS="$BATS_FILE_TMPDIR/zdtm.txt" \
		"$BATS_TEST_DIRNAME/../zdtm/run.sh" "${ZDTM_SLICE[@]}"
	echo "$output"
	[ "$status" -eq 0 ] || fail "zdtm tests failed through ferry: $(grep -v ' PASS' "$BATS_FILE_TMPDIR/zdtm.txt")"
	assert_equal "$(grep -c ' PASS$' "$BATS_FILE_TMPDIR/zdtm.txt")" "${#ZDTM_SLICE[@]}"
}
