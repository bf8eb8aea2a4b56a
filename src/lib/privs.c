/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <grp.h>
#include <sys/capability.h>
#include <sys/param.h>
#include <sys/prctl.h>

#include "privs.h"

int ferry_privs_init(struct ferry_privs *p, struct ferry_error **err)
{
	p->uid = getuid();
	p->gid = getgid();
	p->n_groups = getgroups(FERRY_MAX_GROUPS, p->groups);
	if (p->n_groups < 0)
		return ferry_error_set(err, errno, "getgroups");
	return 0;
}

/* Root's limits in the setuid starter, whatever the caller set before the exec (prlimit, ulimit,
 * Slurm's propagation): a limit chosen to fire at a chosen point would otherwise kill or fail
 * root's code there, e.g. the instance monitor between a network's ADD and its DEL, or in the
 * middle of a record (review of 2026-12-07). As sudo does, the starter sets its own at its start
 * and gives the caller's back, exactly, to every process that becomes the caller for good
 * (ferry_privs_drop: the container's init and workload, a joining process, the helpers run as
 * the caller), so the user's own programs keep theirs.
 *   Unlimited: RLIMIT_FSIZE (SIGXFSZ in a write), RLIMIT_CPU and RLIMIT_RTTIME (SIGXCPU, then
 * SIGKILL, at a chosen time), RLIMIT_AS, RLIMIT_DATA and RLIMIT_MEMLOCK (a chosen allocation
 * failing: xmalloc aborts), RLIMIT_NPROC (a fork while root's effective uid is lowered).
 *   Fixed: RLIMIT_NOFILE 65536 (a restart holds up to FERRY_CRIU_MAX_PAGES page images open),
 * RLIMIT_STACK 8 MiB (unlimited would give the helpers root runs the kernel's legacy mmap
 * layout), RLIMIT_CORE 0 (no core file of root's memory, which holds the node's keys).
 *   Left alone: RLIMIT_NICE and RLIMIT_RTPRIO (they only bound raising a priority),
 * RLIMIT_MSGQUEUE, RLIMIT_SIGPENDING and RLIMIT_LOCKS (root uses no message queue, waits for no
 * queued signal, and file leases are no longer limited).
 *   A hard limit is never lowered: the drop could not raise it back without CAP_SYS_RESOURCE.
 * Without that capability (a node in a container) the caller's hard limits cannot be raised
 * either and bind root too: the starter ignores SIGXFSZ, so that a write past RLIMIT_FSIZE fails
 * and its failure path cleans up (RLIMIT_CPU's SIGKILL stays the one a user can aim there). */
static const int root_limits[] = {RLIMIT_NOFILE, RLIMIT_STACK, RLIMIT_CORE, RLIMIT_FSIZE,   RLIMIT_CPU,
				  RLIMIT_RTTIME, RLIMIT_AS,    RLIMIT_DATA, RLIMIT_MEMLOCK, RLIMIT_NPROC};

int ferry_privs_own_limits(struct ferry_privs *p, struct ferry_error **err)
{
	for (int res = 0; res < RLIM_NLIMITS; res++)
		(void)getrlimit(res, &p->limits[res]);
	p->has_limits = true;
	for (size_t i = 0; i < ARRAY_SIZE(root_limits); i++) {
		int res = root_limits[i];
		rlim_t max = p->limits[res].rlim_max,
		       cur = i < 3 ? (rlim_t[]){65536, 8 << 20, 0}[i] : RLIM_INFINITY;
		struct rlimit rl = {cur, MAX(cur, max)};
		if (setrlimit(res, &rl) == 0)
			continue;
		rl = (struct rlimit){MIN(cur, max), max}; /* no CAP_SYS_RESOURCE: see above */
		if (errno != EPERM || setrlimit(res, &rl) < 0)
			return ferry_error_set(err, errno, "set root's resource limit %d", res);
	}
	return 0;
}

int ferry_privs_raise(const struct ferry_privs *p, struct ferry_error **err)
{
	if (seteuid(0) < 0)
		return ferry_error_set(err, errno, "regain root (is ferry-starter installed setuid root?)");
	if (setegid(0) < 0)
		return ferry_error_set(err, errno, "setegid 0");
	return 0;
}

int ferry_privs_lower(const struct ferry_privs *p, struct ferry_error **err)
{
	/* gid first: once euid is not 0 we could not change it any more. */
	if (geteuid() == 0 && setegid(p->gid) < 0)
		return ferry_error_set(err, errno, "setegid %u", (unsigned)p->gid);
	if (seteuid(p->uid) < 0)
		return ferry_error_set(err, errno, "seteuid %u", (unsigned)p->uid);
	return 0;
}

static bool in_keep(int cap, const int *keep, size_t n_keep)
{
	for (size_t i = 0; i < n_keep; i++)
		if (keep[i] == cap)
			return true;
	return false;
}

int ferry_privs_drop(const struct ferry_privs *p, const int *keep, size_t n_keep, struct ferry_error **err)
{
	int r;

	if (geteuid() != 0 && (r = ferry_privs_raise(p, err)) < 0)
		return r;
	/* (only hard limits root raised are lowered, which needs no capability) */
	for (int res = 0; p->has_limits && res < RLIM_NLIMITS; res++)
		if (setrlimit(res, &p->limits[res]) < 0)
			return ferry_error_set(err, errno, "give the caller's resource limit %d back", res);
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
		if (in_keep(cap, keep, n_keep))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return ferry_error_set(err, errno, "drop capability %d from the bounding set", cap);
	}
	if (n_keep > 0 && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return ferry_error_set(err, errno, "PR_SET_KEEPCAPS");
	if (setgroups((size_t)p->n_groups, p->groups) < 0)
		return ferry_error_set(err, errno, "setgroups");
	if (setresgid(p->gid, p->gid, p->gid) < 0)
		return ferry_error_set(err, errno, "setresgid %u", (unsigned)p->gid);
	if (setresuid(p->uid, p->uid, p->uid) < 0)
		return ferry_error_set(err, errno, "setresuid %u", (unsigned)p->uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return ferry_error_set(err, errno, "clear PR_SET_KEEPCAPS");

	cap_t caps = cap_init(); /* all sets empty */
	if (!caps)
		return ferry_error_set(err, errno, "cap_init");
	if (n_keep > 0) {
		cap_value_t vals[CAP_LAST_CAP + 1];
		size_t n = 0;
		for (size_t i = 0; i < n_keep && n < ARRAY_SIZE(vals); i++)
			vals[n++] = keep[i];
		cap_set_flag(caps, CAP_PERMITTED, (int)n, vals, CAP_SET);
		cap_set_flag(caps, CAP_EFFECTIVE, (int)n, vals, CAP_SET);
		cap_set_flag(caps, CAP_INHERITABLE, (int)n, vals, CAP_SET);
	}
	r = cap_set_proc(caps);
	int saved = errno;
	cap_free(caps);
	if (r < 0)
		return ferry_error_set(err, saved, "set capabilities");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return ferry_error_set(err, errno, "clear ambient capabilities");
	for (size_t i = 0; i < n_keep; i++)
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, keep[i], 0, 0) < 0)
			return ferry_error_set(err, errno, "raise ambient capability %d", keep[i]);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return ferry_error_set(err, errno, "PR_SET_NO_NEW_PRIVS");

	/* Verify, do not trust: the old identity must be gone for good. */
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return ferry_error_set(err, errno, "getresuid");
	if (ru != p->uid || eu != p->uid || su != p->uid || rg != p->gid || eg != p->gid || sg != p->gid)
		return ferry_error_msg(err, EPERM, "privilege drop did not take effect");
	if (p->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		return ferry_error_msg(err, EPERM, "root could be regained after the privilege drop");
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return ferry_error_msg(err, EPERM, "no_new_privs is not set");
	cap_t now = cap_get_proc();
	if (!now)
		return ferry_error_set(err, errno, "cap_get_proc");
	bool ok = true;
	for (int cap = 0; cap <= CAP_LAST_CAP && ok; cap++) {
		cap_flag_value_t v = CAP_CLEAR;
		bool want = in_keep(cap, keep, n_keep);
		cap_get_flag(now, cap, CAP_EFFECTIVE, &v);
		ok = (v == CAP_SET) == want;
		cap_get_flag(now, cap, CAP_PERMITTED, &v);
		ok = ok && (v == CAP_SET) == want;
		ok = ok && (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) == want;
	}
	cap_free(now);
	if (!ok)
		return ferry_error_msg(err, EPERM,
				       "capability sets differ from what was asked after the drop");
	return 0;
}

int ferry_privs_clear_caps(struct ferry_error **err)
{
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return ferry_error_set(err, errno, "drop capability %d from the bounding set", cap);
	cap_t caps = cap_init();
	if (!caps)
		return ferry_error_set(err, errno, "cap_init");
	int r = cap_set_proc(caps);
	int saved = errno;
	cap_free(caps);
	if (r < 0)
		return ferry_error_set(err, saved, "clear capabilities");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return ferry_error_set(err, errno, "clear ambient capabilities");
	return 0;
}
