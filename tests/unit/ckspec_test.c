/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ckspec_test.c — '--ferry-checkpoint=SPEC' (the SPANK plugin's and ferry run's parser) and
 * durations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "ckspec.h"

static struct ferry_ckspec ok(const char *spec)
{
	struct ferry_ckspec c;
	char msg[512];
	if (ferry_ckspec_parse(spec, &c, msg, sizeof(msg)) != 0)
		fail_msg("'%s' rejected: %s", spec, msg);
	return c;
}

/* @spec is refused with a message that contains @want. */
static void bad(const char *spec, const char *want)
{
	struct ferry_ckspec c;
	char msg[512];
	if (ferry_ckspec_parse(spec, &c, msg, sizeof(msg)) == 0)
		fail_msg("'%s' accepted", spec ? spec : "(null)");
	if (!strstr(msg, want))
		fail_msg("'%s': message '%s' lacks '%s'", spec ? spec : "(null)", msg, want);
	assert_null(strchr(msg, '\n'));
}

static void test_interval_alone(void **state)
{
	struct ferry_ckspec c = ok("30m");
	assert_true(c.every_set);
	assert_int_equal(c.every, 1800);
	assert_int_equal(c.keep, 0);
	assert_int_equal(c.grace, 0);
	assert_string_equal(c.name, "");
	assert_int_equal(ok("1h30m").every, 5400);
	assert_int_equal(ok("90").every, 90);
	assert_int_equal(ok("every=2h").every, 7200);
	c = ok("0");
	assert_true(c.every_set);
	assert_int_equal(c.every, 0);
	c = ok("every=0");
	assert_true(c.every_set && c.every == 0);
}

static void test_default_and_items(void **state)
{
	struct ferry_ckspec c = ok("default");
	assert_false(c.every_set);
	c = ok("10m,keep=3,name=lj-run.2,grace=2m");
	assert_int_equal(c.every, 600);
	assert_int_equal(c.keep, 3);
	assert_string_equal(c.name, "lj-run.2");
	assert_int_equal(c.grace, 120);
	c = ok("keep=1");
	assert_false(c.every_set);
	assert_int_equal(c.keep, 1);
	c = ok("name=_x,default");
	assert_string_equal(c.name, "_x");
	/* the longest name */
	char spec[80] = "name=";
	memset(spec + 5, 'a', FERRY_CKSPEC_NAME_MAX);
	spec[5 + FERRY_CKSPEC_NAME_MAX] = '\0';
	assert_int_equal(strlen(ok(spec).name), FERRY_CKSPEC_NAME_MAX);
	spec[5 + FERRY_CKSPEC_NAME_MAX] = 'a';
	spec[6 + FERRY_CKSPEC_NAME_MAX] = '\0';
	bad(spec, "give name=NAME once");
}

static void test_bad(void **state)
{
	bad(NULL, "empty");
	bad("", "empty");
	bad("soon", "'soon' is none of: an interval");
	bad("30x", "'30x' is none of");
	bad("-5m", "is none of");
	bad("30m,", "an empty item");
	bad(",30m", "an empty item");
	bad("30m,,keep=2", "an empty item");
	bad("30m,1h", "the interval is given twice");
	bad("30m,every=1h", "the interval is given twice");
	bad("every=", "give an interval");
	bad("every=soon", "give an interval");
	bad("keep=0", "keep=N once");
	bad("keep=1001", "keep=N once");
	bad("keep=2,keep=3", "keep=N once");
	bad("keep=x", "keep=N once");
	bad("keep=", "keep=N once");
	bad("grace=0", "grace=DURATION");
	bad("grace=25h", "grace=DURATION");
	bad("name=../x", "give name=NAME");
	bad("name=.x", "give name=NAME");
	bad("name=-x", "give name=NAME");
	bad("name=a/b", "give name=NAME");
	bad("name=", "give name=NAME");
	bad("name=a,name=b", "give name=NAME once");
	bad("30m, keep=2", "a space or a control character");
	bad("30m\n", "a space or a control character");
	bad("size=3", "unknown item 'size=3'");
	char longspec[FERRY_CKSPEC_MAX + 2];
	memset(longspec, '1', sizeof(longspec) - 1);
	longspec[sizeof(longspec) - 1] = '\0';
	bad(longspec, "longer than");
}

static void test_duration(void **state)
{
	unsigned long long v = 0;
	assert_int_equal(ferry_duration_parse("45", &v), 0);
	assert_int_equal(v, 45);
	assert_int_equal(ferry_duration_parse("2m30s", &v), 0);
	assert_int_equal(v, 150);
	assert_int_equal(ferry_duration_parse("366h", &v), 0);
	assert_int_equal(ferry_duration_parse("0", &v), -1);
	assert_int_equal(ferry_duration_parse("", &v), -1);
	assert_int_equal(ferry_duration_parse("5d", &v), -1);
	assert_int_equal(ferry_duration_parse("9000h", &v), -1);
	assert_int_equal(ferry_duration_parse("99999999999999999999", &v), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_interval_alone),
	    cmocka_unit_test(test_default_and_items),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_duration),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
