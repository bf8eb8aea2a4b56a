/* SPDX-License-Identifier: GPL-2.0-or-later */
/* How ferry-criu's libcriu calls end when CRIU ends without answering (src/lib/criu.c): a
 * stand-in for CRIU's binary, a shell script, plays the CRIU that is killed while a child of its
 * own still holds the socket (the child a kerndat probe stops). */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "criu.h"
#include "fs.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* @dir/criu: a "CRIU" that runs @body (/bin/sh; $1 "swrk", $2 the socket's fd) */
static void fake_criu(const char *dir, const char *body, char *path, size_t size)
{
	snprintf(path, size, "%s/criu", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0700), 0);
}

/* the pid the fake's child wrote in @dir/child, killed */
static void kill_child(const char *dir)
{
	char path[256], buf[32] = "";
	snprintf(path, sizeof(path), "%s/child", dir);
	FILE *f = fopen(path, "r");
	if (f && fgets(buf, sizeof(buf), f) && atoi(buf) > 0)
		kill(atoi(buf), SIGKILL);
	if (f)
		fclose(f);
	unlink(path);
}

static char *tap; /* CMOCKA_MESSAGE_OUTPUT: the call clears the environment (CRIU's) */

static void run_dump(const char *body, const char *want, double *took)
{
	char dir[] = "/tmp/ferry-swrk-XXXXXX", bin[256];
	assert_non_null(mkdtemp(dir));
	fake_criu(dir, body, bin, sizeof(bin));
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	struct ferry_criu_opts o = {
	    .binary = bin, .images_fd = dirfd, .work_fd = dirfd, .log = "dump.log", .pid = getpid()};
	struct ferry_error *err = NULL;
	/* the old wait was for as long as the child lived (60 s): fail, do not hang */
	alarm(30);
	double t0 = now();
	assert_true(ferry_criu_dump(&o, &err) < 0);
	*took = now() - t0;
	alarm(0);
	if (tap)
		setenv("CMOCKA_MESSAGE_OUTPUT", tap, 1);
	kill_child(dir);
	assert_non_null(err);
	assert_non_null(strstr(err->message, want));
	ferry_error_free(err);
	unlink(bin);
	close(dirfd);
	assert_int_equal(rmdir(dir), 0);
}

/* killed, its child holding the socket: the call ends at once, and says CRIU ended */
static void test_killed_with_child(void **state)
{
	double took;
	(void)state;
	run_dump("/bin/sleep 60 & echo $! >\"${0%/criu}/child\"; kill -KILL $$",
		 "CRIU ended before it answered (killed, or it crashed)", &took);
	assert_true(took < 10);
}

/* killed, alone: the same (the socket's end comes with it) */
static void test_killed_alone(void **state)
{
	double took;
	(void)state;
	run_dump("kill -KILL $$", "CRIU ended before it answered", &took);
	assert_true(took < 10);
}

/* ended with no answer and no signal: the same (no one else holds the socket) */
static void test_exits_silently(void **state)
{
	double took;
	(void)state;
	run_dump("exit 0", "CRIU ended before it answered", &took);
	assert_true(took < 10);
}

int main(void)
{
	tap = getenv("CMOCKA_MESSAGE_OUTPUT") ? strdup(getenv("CMOCKA_MESSAGE_OUTPUT")) : NULL;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_killed_with_child),
	    cmocka_unit_test(test_killed_alone),
	    cmocka_unit_test(test_exits_silently),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	free(tap);
	return r;
}
