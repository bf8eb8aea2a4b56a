/* SPDX-License-Identifier: GPL-2.0-or-later */
/* spawn_test.c — ferry_spawn: exit statuses, signals, timeouts, fds, environment, capture. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <cmocka.h>

#include "spawn.h"

#define ARGV(...) ((char *const[]){__VA_ARGS__, NULL})

static char *expect_fail(const char *path, char *const argv[], const struct ferry_spawn_opts *o,
			 const char *needle)
{
	struct ferry_error *err = NULL;
	int r = ferry_spawn(path, argv, NULL, o, NULL, &err);
	if (r >= 0)
		fail_msg("'%s' succeeded, expected '%s'", path, needle);
	assert_non_null(err);
	if (!strstr(err->message, needle))
		fail_msg("error '%s' does not contain '%s'", err->message, needle);
	ferry_error_free(err);
	return NULL;
}

static char *run_capture(const char *path, char *const argv[], char *const envp[], struct ferry_spawn_opts o)
{
	char *out = NULL;
	size_t len = 0;
	o.output = &out;
	o.output_len = &len;
	struct ferry_error *err = NULL;
	int r = ferry_spawn(path, argv, envp, &o, NULL, &err);
	if (r < 0)
		fail_msg("'%s' failed: %s", path, err->message);
	assert_non_null(out);
	assert_int_equal(strlen(out), len);
	return out;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_exit_status(void **state)
{
	struct ferry_error *err = NULL;
	assert_int_equal(ferry_spawn("/bin/true", ARGV("true"), NULL, NULL, NULL, &err), 0);
	assert_null(err);
	expect_fail("/bin/false", ARGV("false"), NULL, "'/bin/false' exited with status 1");
	expect_fail("/bin/sh", ARGV("sh", "-c", "exit 42"), NULL, "exited with status 42");
	int status = -1;
	assert_int_equal(ferry_spawn("/bin/sh", ARGV("sh", "-c", "exit 7"), NULL, NULL, &status, &err), 0);
	assert_int_equal(status, 7);
}

static void test_signals(void **state)
{
	expect_fail("/bin/sh", ARGV("sh", "-c", "kill -SEGV $$"), NULL,
		    "'/bin/sh' was killed by signal SIGSEGV");
	int status = -1;
	struct ferry_error *err = NULL;
	/* a killed child is an error even when exit statuses are accepted */
	assert_true(ferry_spawn("/bin/sh", ARGV("sh", "-c", "kill -KILL $$"), NULL, NULL, &status, &err) < 0);
	assert_non_null(strstr(err->message, "SIGKILL"));
	ferry_error_free(err);
	/* a blocked or ignored signal in the parent is not inherited */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, &old);
	signal(SIGUSR1, SIG_IGN);
	expect_fail("/bin/sh", ARGV("sh", "-c", "kill -TERM $$; sleep 2"), NULL, "SIGTERM");
	expect_fail("/bin/sh", ARGV("sh", "-c", "kill -USR1 $$; sleep 2"), NULL, "SIGUSR1");
	signal(SIGUSR1, SIG_DFL);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static void test_bad_calls(void **state)
{
	expect_fail("true", ARGV("true"), NULL, "is not absolute");
	expect_fail("/nonexistent/prog", ARGV("prog"), NULL,
		    "exec '/nonexistent/prog': No such file or directory");
	expect_fail("/tmp", ARGV("x"), NULL, "exec '/tmp': Permission denied");
	struct ferry_error *err = NULL;
	assert_true(ferry_spawn("/bin/true", (char *const[]){NULL}, NULL, NULL, NULL, &err) < 0);
	ferry_error_free(err);
	struct ferry_spawn_opts o = {.cwd = "/nonexistent-dir"};
	expect_fail("/bin/true", ARGV("true"), &o, "change to directory '/nonexistent-dir'");
}

static void test_timeout(void **state)
{
	struct ferry_spawn_opts o = {.timeout = 1};
	double t0 = now();
	expect_fail("/bin/sleep", ARGV("sleep", "10"), &o, "'/bin/sleep' timed out after 1 s");
	double dt = now() - t0;
	assert_true(dt >= 0.9 && dt < 3);
	/* with a new session the whole group goes */
	o.new_session = true;
	t0 = now();
	expect_fail("/bin/sh", ARGV("sh", "-c", "sleep 10 & sleep 10; wait"), &o, "timed out");
	assert_true(now() - t0 < 3);
}

/* A child stopped (by its user, here by itself) for stopped_limit is killed, and said so; one
 * stopped for less goes on, however long it runs. */
static void test_stopped(void **state)
{
	struct ferry_spawn_opts o = {.stopped_limit = 1};
	expect_fail("/bin/sh", ARGV("sh", "-c", "kill -STOP $$; exit 0"), &o,
		    "'/bin/sh' timed out: it was stopped (SIGSTOP) for 1 s, and killed");
	o.stopped_limit = 5;
	int status = -1;
	struct ferry_error *err = NULL;
	assert_int_equal(ferry_spawn("/bin/sh",
				     ARGV("sh", "-c", "(sleep 0.3; kill -CONT $$) & kill -STOP $$; exit 7"),
				     NULL, &o, &status, &err),
			 0);
	assert_int_equal(status, 7);
}

/* The child is killed once cancel_fd is readable; its leftovers that hold its output pipe (a
 * guard) are waited for. Here the child itself makes the fd readable, after it started such a
 * leftover, which leaves a file behind once it ends. */
static void test_cancel(void **state)
{
	char dir[] = "/tmp/spawn-cancel.XXXXXX", file[64];
	assert_non_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/guard-done", dir);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	char *out = NULL;
	size_t len = 0;
	struct ferry_spawn_opts o = {.cancel_fd = p[0],
				     .pass_fds = &p[1],
				     .n_pass_fds = 1,
				     .output = &out,
				     .output_len = &len,
				     .timeout = 30};
	expect_fail("/bin/sh",
		    ARGV("sh", "-c", "(sleep 1; touch \"$1\") & echo go >&3; exec sleep 20", "sh", file), &o,
		    "'/bin/sh' was cancelled");
	assert_int_equal(access(file, F_OK), 0); /* the leftover ended before ferry_spawn returned */
	unlink(file);
	rmdir(dir);
	close(p[0]);
	close(p[1]);
	free(out);
}

static void test_environment(void **state)
{
	struct ferry_spawn_opts o = {0};
	_cleanup_free_ char *out = run_capture("/usr/bin/env", ARGV("env"), NULL, o);
	assert_string_equal(out, "PATH=/usr/sbin:/usr/bin:/sbin:/bin\n");
	_cleanup_free_ char *out2 = run_capture("/usr/bin/env", ARGV("env"), ARGV("A=1", "B=2"), o);
	assert_string_equal(out2, "A=1\nB=2\n");
}

static void test_stdin(void **state)
{
	struct ferry_spawn_opts o = {0};
	_cleanup_free_ char *empty = run_capture("/bin/cat", ARGV("cat"), NULL, o); /* /dev/null, no hang */
	assert_string_equal(empty, "");
	o.input = "line one\nline two\n";
	o.input_len = strlen(o.input);
	_cleanup_free_ char *out = run_capture("/bin/cat", ARGV("cat"), NULL, o);
	assert_string_equal(out, "line one\nline two\n");
	/* a child that does not read its input does not block us */
	size_t big = 4u << 20;
	_cleanup_free_ char *lots = xmalloc(big);
	memset(lots, 'x', big);
	struct ferry_spawn_opts o2 = {.input = lots, .input_len = big};
	struct ferry_error *err = NULL;
	assert_int_equal(ferry_spawn("/bin/true", ARGV("true"), NULL, &o2, NULL, &err), 0);
}

static void test_output(void **state)
{
	struct ferry_spawn_opts o = {0};
	_cleanup_free_ char *out = run_capture("/bin/echo", ARGV("echo", "hello"), NULL, o);
	assert_string_equal(out, "hello\n");
	/* much more than a pipe holds */
	_cleanup_free_ char *big =
	    run_capture("/bin/sh", ARGV("sh", "-c", "head -c 10000000 /dev/zero | tr '\\0' a"), NULL, o);
	assert_int_equal(strlen(big), 10000000);
	/* over the limit */
	char *x = NULL;
	struct ferry_spawn_opts lim = {.output = &x, .output_max = 1000};
	expect_fail("/bin/sh", ARGV("sh", "-c", "head -c 100000 /dev/zero"), &lim,
		    "wrote more than 1000 bytes");
	assert_null(x);
	/* a background grandchild holding stdout open does not hold us up */
	double t0 = now();
	_cleanup_free_ char *bg = run_capture("/bin/sh", ARGV("sh", "-c", "sleep 3 & echo hi"), NULL, o);
	assert_string_equal(bg, "hi\n");
	assert_true(now() - t0 < 2);
}

static void test_stderr_tail(void **state)
{
	struct ferry_spawn_opts o = {.capture_stderr = true};
	expect_fail("/bin/sh",
		    ARGV("sh", "-c", "echo first >&2; echo 'the real reason' >&2; echo >&2; exit 3"), &o,
		    "'/bin/sh' exited with status 3: the real reason");
	expect_fail(
	    "/bin/sh",
	    ARGV("sh", "-c",
		 "head -c 100000 /dev/zero | tr '\\0' y >&2; echo >&2; echo 'end\tof\x01it' >&2; exit 1"),
	    &o, "status 1: end of it");
	/* a long last line: its start says what failed, its end what became of the job */
	char *const *long_line =
	    ARGV("sh", "-c",
		 "printf 'ferry: the daemon failed: ' >&2; head -c 5000 /dev/zero | tr '\\0' x >&2; "
		 "echo '; the job keeps running' >&2; exit 2");
	expect_fail("/bin/sh", long_line, &o, "status 2: ferry: the daemon failed: xxx");
	expect_fail("/bin/sh", long_line, &o, "xxx [...] xxx");
	expect_fail("/bin/sh", long_line, &o, "xxx; the job keeps running");
	struct ferry_error *err = NULL;
	assert_int_equal(ferry_spawn("/bin/sh", ARGV("sh", "-c", "echo noise >&2"), NULL, &o, NULL, &err), 0);
}

static void test_fds(void **state)
{
	/* an inheritable fd of ours is not passed on */
	int fd = open("/dev/null", O_RDONLY);
	int high = dup2(fd, 57);
	assert_int_equal(high, 57);
	close(fd);
	struct ferry_spawn_opts o = {0};
	_cleanup_free_ char *out = run_capture("/bin/ls", ARGV("ls", "/proc/self/fd"), NULL, o);
	assert_string_equal(out, "0\n1\n2\n3\n"); /* 3 is ls's own directory */
	/* passing fds: they arrive as 3 and 4, whatever their numbers here */
	int a = memfd_create("a", MFD_CLOEXEC), b = memfd_create("b", MFD_CLOEXEC);
	assert_int_equal(write(a, "AAA", 3), 3);
	assert_int_equal(write(b, "BB", 2), 2);
	int fds[2] = {b, a};
	struct ferry_spawn_opts p = {.pass_fds = fds, .n_pass_fds = 2};
	_cleanup_free_ char *cat =
	    run_capture("/bin/sh", ARGV("sh", "-c", "cat /proc/self/fd/3 /proc/self/fd/4"), NULL, p);
	assert_string_equal(cat, "BBAAA");
	/* swapped onto each other's numbers */
	int lo = dup2(a, 3), hi = dup2(b, 4);
	assert_int_equal(lo, 3);
	assert_int_equal(hi, 4);
	int swapped[2] = {4, 3};
	struct ferry_spawn_opts s = {.pass_fds = swapped, .n_pass_fds = 2};
	_cleanup_free_ char *cat2 =
	    run_capture("/bin/sh", ARGV("sh", "-c", "cat /proc/self/fd/3 /proc/self/fd/4"), NULL, s);
	assert_string_equal(cat2, "BBAAA");
	close(3);
	close(4);
	close(a);
	close(b);
	close(57);
	/* stdout to a file */
	int f = memfd_create("out", MFD_CLOEXEC);
	struct ferry_spawn_opts w = {.stdout_fd = f};
	struct ferry_error *err = NULL;
	assert_int_equal(ferry_spawn("/bin/echo", ARGV("echo", "to file"), NULL, &w, NULL, &err), 0);
	char buf[32] = {0};
	assert_int_equal(pread(f, buf, sizeof(buf), 0), 8);
	assert_string_equal(buf, "to file\n");
	close(f);
}

static void test_cwd(void **state)
{
	struct ferry_spawn_opts o = {.cwd = "/usr"};
	_cleanup_free_ char *out = run_capture("/bin/pwd", ARGV("pwd"), NULL, o);
	assert_string_equal(out, "/usr\n");
}

static void test_describe_status(void **state)
{
	char desc[64];
	ferry_spawn_describe_status(3 << 8, desc, sizeof(desc));
	assert_string_equal(desc, "exited with status 3");
	ferry_spawn_describe_status(SIGKILL, desc, sizeof(desc));
	assert_string_equal(desc, "was killed by signal SIGKILL");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exit_status),
	    cmocka_unit_test(test_signals),
	    cmocka_unit_test(test_bad_calls),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_stopped),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_environment),
	    cmocka_unit_test(test_stdin),
	    cmocka_unit_test(test_output),
	    cmocka_unit_test(test_stderr_tail),
	    cmocka_unit_test(test_fds),
	    cmocka_unit_test(test_cwd),
	    cmocka_unit_test(test_describe_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
