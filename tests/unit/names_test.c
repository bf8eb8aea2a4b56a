/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "names.h"

static void assert_ok(const char *name)
{
	struct ferry_error *err = NULL;
	int r = ferry_name_check(name, "instance", &err);
	if (r != 0)
		fail_msg("'%s' rejected: %s", name, err ? err->message : "(no message)");
	assert_null(err);
}

static void assert_bad(const char *name)
{
	_cleanup_error_ struct ferry_error *err = NULL;
	int r = ferry_name_check(name, "instance", &err);
	if (r != -EINVAL)
		fail_msg("'%s' accepted (r=%d)", name ? name : "(null)", r);
	assert_non_null(err);
	assert_int_equal(err->code, EINVAL);
	assert_non_null(strstr(err->message, "invalid instance name '"));
}

static void test_valid(void **state)
{
	assert_ok("a");
	assert_ok("Z");
	assert_ok("0");
	assert_ok("_");
	assert_ok("lmp1");
	assert_ok("job.2024-01_x");
	assert_ok("_hidden.ok");
	assert_ok("9.-_");
	assert_ok("a..b");
}

static void test_invalid(void **state)
{
	assert_bad(NULL);
	assert_bad("");
	assert_bad(".");
	assert_bad("..");
	assert_bad(".hidden");
	assert_bad("-x");
	assert_bad("--help");
	assert_bad("a/b");
	assert_bad("/");
	assert_bad("../etc");
	assert_bad("a b");
	assert_bad(" a");
	assert_bad("a\n");
	assert_bad("a\t");
	assert_bad("a\x01");
	assert_bad("a\x7f");
	assert_bad("a:b");
	assert_bad("a*");
	assert_bad("a,b");
	assert_bad("a\\b");
	assert_bad("a'b");
	assert_bad("caf\xc3\xa9"); /* é in UTF-8 */
	assert_bad("\xef\xbc\xa1"); /* fullwidth A */
	assert_bad("a\xe2\x80\x8b"); /* zero-width space */
	assert_bad("\xff");
}

static void test_length(void **state)
{
	char name[FERRY_NAME_MAX + 2];
	memset(name, 'a', sizeof(name));
	name[FERRY_NAME_MAX] = '\0';
	assert_ok(name); /* 64 */
	name[FERRY_NAME_MAX] = 'a';
	name[FERRY_NAME_MAX + 1] = '\0';
	assert_bad(name); /* 65 */
	name[FERRY_NAME_MAX - 1] = '\0';
	assert_ok(name); /* 63 */

	char huge[10000];
	memset(huge, 'b', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_name_check(huge, "checkpoint", &err), -EINVAL);
	/* The message shows a bounded prefix. */
	assert_true(strlen(err->message) < 400);
	assert_non_null(strstr(err->message, "...'"));
}

static void test_messages(void **state)
{
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_name_check("a/b", "instance", &err), -EINVAL);
	assert_string_equal(
	    err->message,
	    "invalid instance name 'a/b': use only letters, digits, '_', '.' and '-' (at most 64 "
	    "characters, starting with a letter, digit or '_')");
	ferry_error_freep(&err);

	assert_int_equal(ferry_name_check("-x", "checkpoint", &err), -EINVAL);
	assert_non_null(strstr(err->message, "invalid checkpoint name '-x': "));
	ferry_error_freep(&err);

	assert_int_equal(ferry_name_check("", "checkpoint", &err), -EINVAL);
	assert_non_null(strstr(err->message, "invalid checkpoint name '' (empty)"));
	ferry_error_freep(&err);

	/* Control characters and quotes are escaped, never printed raw. */
	assert_int_equal(ferry_name_check("x\x1b[2J'\n", "instance", &err), -EINVAL);
	assert_non_null(strstr(err->message, "'x\\x1b[2J\\'\\x0a'"));
	assert_null(strchr(err->message, '\x1b'));
	assert_null(strchr(err->message, '\n'));
	ferry_error_freep(&err);

	assert_int_equal(ferry_name_check("caf\xc3\xa9", "instance", &err), -EINVAL);
	assert_non_null(strstr(err->message, "'caf\\xc3\\xa9'"));
	ferry_error_freep(&err);

	/* NULL @what and NULL @err are accepted. */
	assert_int_equal(ferry_name_check("a/b", NULL, &err), -EINVAL);
	assert_non_null(strstr(err->message, "invalid name 'a/b'"));
	assert_int_equal(ferry_name_check("a/b", "instance", NULL), -EINVAL);
	assert_int_equal(ferry_name_check("ok", "instance", NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid),
	    cmocka_unit_test(test_invalid),
	    cmocka_unit_test(test_length),
	    cmocka_unit_test(test_messages),
	};
	return cmocka_run_group_tests_name("names", tests, NULL, NULL);
}
