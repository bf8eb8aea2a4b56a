/* SPDX-License-Identifier: GPL-2.0-or-later */
/* instance records (src/lib/instance.c): what the starter writes is what it reads back, and a
 * field with a value it never writes is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "instance.h"
#include "util.h"

static struct ferry_instance *round_trip(const struct ferry_instance *in)
{
	_cleanup_free_ char *text = ferry_instance_format(in);
	struct ferry_instance *out = NULL;
	struct ferry_error *err = NULL;
	if (ferry_instance_parse(text, strlen(text), &out, &err) < 0)
		fail_msg("'%s' not read back: %s", text, err->message);
	return out;
}

static void test_round_trip(void **state)
{
	(void)state;
	struct ferry_instance in = {.name = "lmp1",
				    .uid = 1001,
				    .gid = 1001,
				    .pid = 4242,
				    .starttime = 77,
				    .monitor = 4241,
				    .created = 1700000000,
				    .image = "/img/lammps.sif",
				    .command = "lmp -in in.lj",
				    .checkpoint = "/home/u/.ferry/checkpoint/job1",
				    .workload = 10000,
				    .loopback = true,
				    .private_tmp = true};
	struct ferry_instance *out = round_trip(&in);
	assert_string_equal(out->name, "lmp1");
	assert_int_equal(out->workload, 10000);
	assert_true(out->loopback);
	assert_true(out->private_tmp);
	ferry_instance_free(out);
	/* the host's /tmp: no field, read back as such */
	in.private_tmp = false;
	in.loopback = false;
	out = round_trip(&in);
	assert_false(out->private_tmp);
	assert_false(out->loopback);
	_cleanup_free_ char *text = ferry_instance_format(&in);
	assert_null(strstr(text, "tmp="));
	ferry_instance_free(out);
}

static void test_bad_tmp(void **state)
{
	(void)state;
	static const char rec[] = "name=a\nuid=1\ngid=1\npid=2\nmonitor=3\ntmp=shared\n";
	struct ferry_instance *out = NULL;
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_true(ferry_instance_parse(rec, strlen(rec), &out, &err) < 0);
	assert_null(out);
	assert_non_null(err);
	assert_non_null(strstr(err->message, "tmp"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_bad_tmp),
	};
	return cmocka_run_group_tests_name("instance", tests, NULL, NULL);
}
