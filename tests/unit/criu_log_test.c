/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
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
	_cleanup_free_ char *got = ferry_criu_log_errors(dirfd, "restore.log", 3);
	assert_string_equal(got, "Error (files-reg.c:467): Can't create ghost regfile; "
				 "Error (cr-restore.c:2331): Restoring FAILED.; "
				 "Error (cr-restore.c:1269): 9999 killed by signal 9");
	cleanup(dirfd, dir);
}

static void test_few_and_none(void **state)
{
	char dir[] = "/tmp/ferry-criu-log-XXXXXX";
	int dirfd = dir_with_log("Error (a.c:1): only\nplain line\n", dir);
	_cleanup_free_ char *one = ferry_criu_log_errors(dirfd, "restore.log", 3);
	assert_string_equal(one, "Error (a.c:1): only");
	_cleanup_free_ char *none = ferry_criu_log_errors(dirfd, "nosuch.log", 3);
	assert_null(none);
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
