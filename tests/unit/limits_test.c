/* SPDX-License-Identifier: GPL-2.0-or-later */
/* limits: the limits of a start ferryd runs for a user (src/ferryd/limits.c): the client's, as
 * the kernel holds them, each no higher than ferryd's own; their text in a start message, read
 * back strictly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sys/param.h>
#include <sys/socket.h>

#include "../../src/ferryd/ferryd.h"

static void assert_own(const struct rlimit *l)
{
	for (int r = 0; r < RLIM_NLIMITS; r++) {
		struct rlimit own;
		assert_int_equal(getrlimit(r, &own), 0);
		assert_true(l[r].rlim_cur == own.rlim_cur);
		assert_true(l[r].rlim_max == own.rlim_max);
	}
}

/* The client's limits, read from the kernel through the socket: here, our own (lowered). */
static void test_client(void **state)
{
	int sp[2];
	struct rlimit l[RLIM_NLIMITS], nofile;
	struct ferry_error *err = NULL;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &nofile), 0);
	struct rlimit low = {MIN(nofile.rlim_cur, 200), MIN(nofile.rlim_max, 300)};
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(ferryd_client_limits(sp[0], getuid(), l, &err), 0);
	assert_null(err);
	assert_own(l);
	assert_true(l[RLIMIT_NOFILE].rlim_cur == low.rlim_cur);
	close(sp[0]);
	close(sp[1]);
}

static void test_round_trip(void **state)
{
	struct rlimit l[RLIM_NLIMITS], back[RLIM_NLIMITS];
	struct ferry_error *err = NULL;
	char buf[FERRYD_LIMITS_MAX];
	for (int r = 0; r < RLIM_NLIMITS; r++)
		assert_int_equal(getrlimit(r, &l[r]), 0);
	ferryd_limits_format(l, buf, sizeof(buf));
	assert_int_equal(ferryd_limits_parse(buf, back, &err), 0);
	assert_own(back);
	/* the largest text fits (a cut one would not parse) */
	for (int r = 0; r < RLIM_NLIMITS; r++)
		l[r] = (struct rlimit){RLIM_INFINITY - 1, RLIM_INFINITY - 1};
	ferryd_limits_format(l, buf, sizeof(buf));
	assert_int_equal(ferryd_limits_parse(buf, back, &err), 0);
}

/* A peer's text asks for more than ferryd has: it gets ferryd's hard limits, never more. */
static void test_capped(void **state)
{
	struct rlimit l[RLIM_NLIMITS];
	struct ferry_error *err = NULL;
	char buf[FERRYD_LIMITS_MAX] = "";
	for (int r = 0; r < RLIM_NLIMITS; r++)
		strcat(buf, r ? ",inf:inf" : "inf:inf");
	assert_int_equal(ferryd_limits_parse(buf, l, &err), 0);
	for (int r = 0; r < RLIM_NLIMITS; r++) {
		struct rlimit own;
		assert_int_equal(getrlimit(r, &own), 0);
		assert_true(l[r].rlim_cur == own.rlim_max && l[r].rlim_max == own.rlim_max);
	}
	/* and lower ones stay */
	snprintf(buf, sizeof(buf),
		 "1:1,2:2,3:3,4:4,0:0,6:6,7:7,8:8,9:9,10:10,11:11,12:12,13:13,0:0,0:0,16:16");
	assert_int_equal(ferryd_limits_parse(buf, l, &err), 0);
	assert_true(l[RLIMIT_NOFILE].rlim_cur <= 8 && l[RLIMIT_NOFILE].rlim_max <= 8);
	assert_true(l[RLIMIT_CPU].rlim_cur <= 1 && l[RLIMIT_CPU].rlim_max <= 1);
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
	    "",
	    "1:1",
	    "1:1,2:2,3:3,4:4,5:5,6:6,7:7,8:8,9:9,10:10,11:11,12:12,13:13,14:14,15:15",
	    "1:1,2:2,3:3,4:4,5:5,6:6,7:7,8:8,9:9,10:10,11:11,12:12,13:13,14:14,15:15,16:16,17:17",
	    "1:1,2:2,3:3,4:4,5:5,6:6,7:7,8:8,9:9,10:10,11:11,12:12,13:13,14:14,15:15,16:16,",
	    "2:1,2:2,3:3,4:4,5:5,6:6,7:7,8:8,9:9,10:10,11:11,12:12,13:13,14:14,15:15,16:16",
	    "1:1,2:2,3:3,4:4,5:5,6:6,7:7,8:8,9:9,10:10,11:11,12:12,13:13,14:14,15:15,-1:16",
	    "1,2:2,3:3,4:4,5:5,6:6,7:7,8:8,9:9,10:10,11:11,12:12,13:13,14:14,15:15,16:16",
	    "1:1:1,2:2,3:3,4:4,5:5,6:6,7:7,8:8,9:9,10:10,11:11,12:12,13:13,14:14,15:15,16:16",
	    "1:1,2:2,3:3,4:4,5:5,6:6,7:7,8:8,9:9,10:10,11:11,12:12,13:13,14:14,15:15,16:unlimited",
	    "1:1,2:2,3:3,4:4,5:5,6:6,7:7,8:8,9:9,10:10,11:11,12:12,13:13,14:14,15:15,16:18446744073709551615",
	    "1:1,2:2,3:3,4:4,5:5,6:6,7:7,8:8,9:9,10:10,11:11,12:12,13:13,14:14,15:15,16:99999999999999999999999",
	    " 1:1,2:2,3:3,4:4,5:5,6:6,7:7,8:8,9:9,10:10,11:11,12:12,13:13,14:14,15:15,16:16",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rlimit l[RLIM_NLIMITS];
		struct ferry_error *err = NULL;
		if (ferryd_limits_parse(bad[i], l, &err) == 0)
			fail_msg("accepted '%s'", bad[i]);
		assert_non_null(err);
		ferry_error_free(err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_client),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_capped),
	    cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
