/* SPDX-License-Identifier: GPL-2.0-or-later */
/* F-2: the libexec helpers' one check that their caller cannot trace them (dumpable.c). */
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "dumpable.h"

/* In a child, as a user other than root when the test runs as root: 0 when each case went as it
 * must, the number of the first that did not otherwise. */
static int child(void)
{
	if (getuid() == 0 && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
			      setresuid(65534, 65534, 65534) < 0))
		return 10;
	/* dumpable (as fs.suid_dumpable 1 or a readable executable leave it): refused */
	struct ferry_error *err = NULL;
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
		return 11;
	if (ferry_refuse_dumpable("ferry-xfer", &err) != -EPERM || !err ||
	    !strstr(err->message, "ferry-xfer is readable by its caller, so it could be traced"))
		return 1;
	ferry_error_free(err);
	err = NULL;
	/* not dumpable (what the kernel makes of a 0711 executable): goes on, and stays so */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return 12;
	if (ferry_refuse_dumpable("ferry-xfer", &err) != 0 || err)
		return 2;
	if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
		return 3;
	return 0;
}

static void test_refused_when_dumpable(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child());
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* root's own helper may be dumpable (root alone can trace it); it is made not dumpable. */
static void test_root_made_undumpable(void **state)
{
	(void)state;
	if (getuid() != 0)
		skip();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ferry_error *err = NULL;
		if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0 || ferry_refuse_dumpable("ferry-plan", &err) != 0)
			_exit(1);
		_exit(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0 ? 0 : 2);
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refused_when_dumpable),
	    cmocka_unit_test(test_root_made_undumpable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
