/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "criu.h"
#include "fs.h"

static int dir_with_log(const char *text, char *tmpl)
{
	assert_non_null(mkdtemp(tmpl));
	int dirfd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	int fd = openat(dirfd, "restore.log", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ferry_write_all(fd, text, strlen(text)), 0);
	close(fd);
	return dirfd;
}

/* the log @name in @dirfd, opened as its callers do (O_NONBLOCK: a FIFO does not hold them up) */
static char *errors_of(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	char *r = ferry_criu_log_errors(fd, 3);
	if (fd >= 0)
		close(fd);
	return r;
}

static void cleanup(int dirfd, const char *dir)
{
	unlinkat(dirfd, "restore.log", 0);
	close(dirfd);
	rmdir(dir);
}

/* The first error is the cause, the last ones where CRIU gave up: both are kept. */
static void test_first_and_last(void **state)
{
	char dir[] = "/tmp/ferry-criu-log-XXXXXX";
	int dirfd = dir_with_log("(00.1) 1: Error (files-reg.c:467): Can't create ghost regfile\n"
				 "(00.2) noise\n"
				 "(00.3) Error (a.c:1): second\n"
				 "(00.4) Error (b.c:2): third\n"
				 "(00.5) Error (cr-restore.c:2331): Restoring FAILED.\n"
				 "(00.6) Error (cr-restore.c:1269): 9999 killed by signal 9\n",
				 dir);
	_cleanup_free_ char *got = errors_of(dirfd, "restore.log");
	assert_string_equal(got, "Error (files-reg.c:467): Can't create ghost regfile; "
				 "Error (cr-restore.c:2331): Restoring FAILED.; "
				 "Error (cr-restore.c:1269): 9999 killed by signal 9");
	cleanup(dirfd, dir);
}

static void test_few_and_none(void **state)
{
	char dir[] = "/tmp/ferry-criu-log-XXXXXX";
	int dirfd = dir_with_log("Error (a.c:1): only\nplain line\n", dir);
	_cleanup_free_ char *one = errors_of(dirfd, "restore.log");
	assert_string_equal(one, "Error (a.c:1): only");
	_cleanup_free_ char *none = errors_of(dirfd, "nosuch.log");
	assert_null(none);
	/* a FIFO in the log's place (F-3): nothing, at once */
	assert_int_equal(mkfifoat(dirfd, "fifo.log", 0600), 0);
	_cleanup_free_ char *fifo = errors_of(dirfd, "fifo.log");
	assert_null(fifo);
	unlinkat(dirfd, "fifo.log", 0);
	cleanup(dirfd, dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_and_last),
	    cmocka_unit_test(test_few_and_none),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
