/* SPDX-License-Identifier: GPL-2.0-or-later */
/* report.c — a migration's phase times and downtime, from one clock.
 *
 * Two nodes' clocks are never subtracted: every instant here is the source's monotonic clock
 * (its ferryd and its starter, CLOCK_MONOTONIC is the node's), and what the destination
 * contributes are durations it measured on its own clock (how long its restore took, how long
 * it took to answer "prepare"). Where the source hears of an event on the destination, the event
 * is placed half a measured round trip earlier. Every phase is >= 0 and the downtime is at most
 * the total. */
#include "ferryd.h"

static long long clamp(long long v, long long lo, long long hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

void ferryd_phases_of(const struct ferryd_times *t, struct ferryd_phases *ret)
{
	long long t0 = t->t0, t_end = t->t_end > t0 ? t->t_end : t0;
	/* the source's own instants, in order and within the migration */
	long long conn = clamp(t->t_conn, t0, t_end), ready = clamp(t->t_ready, conn, t_end);
	long long freeze = clamp(t->freeze, ready, t_end), dumped = clamp(t->dumped, freeze, t_end);
	long long sdone = clamp(t->sdone, dumped, t_end);
	long long rtt = t->rtt > 0 ? t->rtt : 0;
	/* when it ran on the destination: heard at t_heard, half a round trip after */
	long long heard = clamp(t->t_heard, t->diskless ? dumped : sdone, t_end);
	long long from = t->diskless ? dumped : sdone;
	/* live: it ran there from the restore on, while its last pages came (the destination's
	 * post-copy window); heard once they all had */
	long long last = clamp(heard - rtt / 2, from, heard);
	long long restored =
	    last - (t->live && t->dest_reported ? clamp(t->d_postcopy_ms, 0, last - from) : 0);
	/* the restore as the destination measured it, within what the source saw of it */
	long long restore = t->dest_reported ? clamp(t->d_restore_ms, 0, restored - from) : 0;
	*ret = (struct ferryd_phases){
	    .request = conn - t0,
	    .prepare = ready - conn,
	    .dump = dumped - freeze,
	    .transfer = t->diskless ? restored - dumped - restore : 0,
	    .sync = t->diskless ? 0 : sdone - dumped,
	    .restore = restore,
	    .total = t_end - t0,
	    .downtime = restored - freeze,
	    /* live: running there until the source let its frozen copy go */
	    .postcopy = t->live ? heard - restored : 0,
	};
}
