/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ferryd's report times (src/ferryd/report.c): one clock, the source's, and the destination's
 * durations; never two nodes' instants subtracted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../src/ferryd/ferryd.h"

static void assert_sane(const struct ferryd_phases *p)
{
	assert_true(p->request >= 0 && p->prepare >= 0 && p->dump >= 0 && p->transfer >= 0 && p->sync >= 0 &&
		    p->restore >= 0 && p->total >= 0 && p->downtime >= 0);
	assert_true(p->downtime <= p->total);
	assert_true(p->request + p->prepare <= p->total);
}

/* A diskless migration on the source's monotonic clock (ms): asked at 1000, ready at 1030
 * (a 10 ms round trip, the destination busy 20 ms), frozen at 1100, pages sent by 1500,
 * "restored" heard (and committed) at 1700; the destination restored in 150 ms. */
static struct ferryd_times diskless(void)
{
	return (struct ferryd_times){.diskless = true,
				     .dest_reported = true,
				     .t0 = 1000,
				     .t_conn = 1010,
				     .t_ready = 1040,
				     .t_end = 1750,
				     .freeze = 1100,
				     .dumped = 1500,
				     .sdone = 1700,
				     .t_heard = 1700,
				     .rtt = 10,
				     .d_restore_ms = 150};
}

static void test_diskless(void **state)
{
	struct ferryd_times t = diskless();
	struct ferryd_phases p;
	ferryd_phases_of(&t, &p);
	assert_sane(&p);
	assert_int_equal(p.request, 10);
	assert_int_equal(p.prepare, 30);
	assert_int_equal(p.dump, 400);
	/* restored half a round trip before the source heard it: 1695 */
	assert_int_equal(p.downtime, 595);
	assert_int_equal(p.restore, 150);
	assert_int_equal(p.transfer, 1695 - 1500 - 150);
	assert_int_equal(p.total, 750);
}

/* Live: the same session, but "restored" is heard once the last page is in, 400 ms after the
 * destination restored (its post-copy window, on its clock): it ran there from 1295. */
static void test_live(void **state)
{
	struct ferryd_times t = diskless();
	t.live = true;
	t.dumped = 1120; /* the images but the pages */
	t.d_postcopy_ms = 400;
	struct ferryd_phases p;
	ferryd_phases_of(&t, &p);
	assert_sane(&p);
	assert_int_equal(p.dump, 20);
	assert_int_equal(p.downtime, 1295 - 1100);
	assert_int_equal(p.restore, 150);
	assert_int_equal(p.transfer, 1295 - 1120 - 150);
	/* from running there to the source's copy let go (heard at 1700) */
	assert_int_equal(p.postcopy, 1700 - 1295);
	/* a window longer than what the source saw is cut to it */
	t.d_postcopy_ms = 5000;
	ferryd_phases_of(&t, &p);
	assert_sane(&p);
	assert_int_equal(p.downtime, 1120 - 1100);
	assert_int_equal(p.postcopy, 1700 - 1120);
	/* the other modes have none */
	t.live = false;
	ferryd_phases_of(&t, &p);
	assert_int_equal(p.postcopy, 0);
}

static void test_default(void **state)
{
	struct ferryd_times t = {.dest_reported = true,
				 .t0 = 0,
				 .t_conn = 5,
				 .t_ready = 25,
				 .t_end = 3000,
				 .freeze = 100,
				 .dumped = 900,
				 .sdone = 1200,
				 .t_heard = 2220,
				 .rtt = 40,
				 .d_restore_ms = 800};
	struct ferryd_phases p;
	ferryd_phases_of(&t, &p);
	assert_sane(&p);
	assert_int_equal(p.sync, 300);
	assert_int_equal(p.restore, 800);
	assert_int_equal(p.downtime, 2200 - 100);
	assert_int_equal(p.transfer, 0);
}

/* What the destination says is a duration: however wrong (a restore "longer" than the source
 * saw the whole of it, a negative one), nothing goes negative and the downtime stays within
 * the total. The destination sends no instant at all, so its clock (hours off, say) does not
 * enter: the same inputs give the same report, whatever its clock reads. */
static void test_bounded(void **state)
{
	struct ferryd_times t = diskless();
	t.d_restore_ms = 1000000;
	struct ferryd_phases p;
	ferryd_phases_of(&t, &p);
	assert_sane(&p);
	assert_int_equal(p.restore, 1695 - 1500);
	assert_int_equal(p.transfer, 0);
	t.d_restore_ms = -5000;
	ferryd_phases_of(&t, &p);
	assert_sane(&p);
	assert_int_equal(p.restore, 0);
	/* a round trip measured badly (negative, or longer than everything) */
	t = diskless();
	t.rtt = -100;
	ferryd_phases_of(&t, &p);
	assert_sane(&p);
	assert_int_equal(p.downtime, 600);
	t.rtt = 1000000;
	ferryd_phases_of(&t, &p);
	assert_sane(&p);
	assert_int_equal(p.downtime, 400);
	/* the source's own instants out of order or missing (a starter that printed no timing) */
	struct ferryd_times z = {.t0 = 500, .t_conn = 400, .t_end = 450};
	ferryd_phases_of(&z, &p);
	assert_sane(&p);
	assert_int_equal(p.total, 0);
}

/* The destination's report lost: no restore time, the times end at the source. */
static void test_unreported(void **state)
{
	struct ferryd_times t = diskless();
	t.dest_reported = false;
	struct ferryd_phases p;
	ferryd_phases_of(&t, &p);
	assert_sane(&p);
	assert_int_equal(p.restore, 0);
	assert_int_equal(p.transfer, 195);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_diskless),   cmocka_unit_test(test_live),
	    cmocka_unit_test(test_default),    cmocka_unit_test(test_bounded),
	    cmocka_unit_test(test_unreported),
	};
	return cmocka_run_group_tests_name("ferryd_report", tests, NULL, NULL);
}
