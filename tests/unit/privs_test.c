/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ferry_privs_own_limits: the caller's limits saved exactly; root's set without ever lowering a
 * hard limit, with or without CAP_SYS_RESOURCE (then the caller's hard limits stay, and the soft
 * ones reach them). In a child: the limits are the process's for good. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "privs.h"

#define CHECK(cond)                                                                                          \
	do {                                                                                                 \
		if (!(cond))                                                                                 \
			_exit(__LINE__);                                                                     \
	} while (0)

static void child(void)
{
	struct rlimit fsize = {200, 200}, cpu = {5, RLIM_INFINITY}, core = {10, 1000}, rl;
	CHECK(setrlimit(RLIMIT_FSIZE, &fsize) == 0 && setrlimit(RLIMIT_CPU, &cpu) == 0 &&
	      setrlimit(RLIMIT_CORE, &core) == 0);
	struct ferry_privs p = {0};
	CHECK(ferry_privs_own_limits(&p, NULL) == 0 && p.has_limits);
	/* saved exactly */
	CHECK(p.limits[RLIMIT_FSIZE].rlim_cur == 200 && p.limits[RLIMIT_FSIZE].rlim_max == 200);
	CHECK(p.limits[RLIMIT_CPU].rlim_cur == 5 && p.limits[RLIMIT_CPU].rlim_max == RLIM_INFINITY);
	CHECK(p.limits[RLIMIT_CORE].rlim_cur == 10 && p.limits[RLIMIT_CORE].rlim_max == 1000);
	/* root's: unlimited where it may raise the hard limit, else the caller's hard limit */
	CHECK(getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur == rl.rlim_max && rl.rlim_max >= 200);
	CHECK(getrlimit(RLIMIT_CPU, &rl) == 0 && rl.rlim_cur == RLIM_INFINITY &&
	      rl.rlim_max == RLIM_INFINITY);
	/* lowered soft, hard kept (the drop gives it back without a capability) */
	CHECK(getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_cur == 0 && rl.rlim_max == 1000);
	CHECK(getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur == 8 << 20);
	_exit(0);
}

static void test_own_limits(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child();
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0); /* else: the line of the CHECK that failed */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_own_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
