/* SPDX-License-Identifier: GPL-2.0-or-later */
/* limits.c — the resource limits of a start ferryd runs for a user (start.c).
 *
 * A starter that ferryd runs gets ferryd's limits as "the caller's", and the setuid starter gives
 * the caller's back to the user's processes at its permanent drop (privs.c): without this an
 * instance started through ferryd ('instance start --node', ferry-rsh) would run with the
 * daemon's limits, not those the admin gave the user (limits.conf, Slurm's): a way around a
 * process limit (RLIMIT_NPROC), and too small a locked-memory limit for an MPI job. So, as Slurm
 * propagates a submitting shell's limits: ferryd reads the limits of the client's process, as
 * the kernel holds them (SO_PEERPIDFD, /proc/PID/limits), sends them with the start, and the starter
 * runs with them, no higher than ferryd's own hard limits (ferry_spawn's limits, set after the
 * user's ids: lowering only). The worst a client can do is get ferryd's own limits, as before. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/param.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "ferryd.h"
#include "instance.h"
#include "util.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif

/* @l, each hard limit no higher than ours, each soft one no higher than its hard one (our own
 * soft limits are our process's, and the user may raise a soft limit to its hard one anyway). */
static void cap_to_own(struct rlimit *l)
{
	for (int r = 0; r < RLIM_NLIMITS; r++) {
		struct rlimit own;
		if (getrlimit(r, &own) < 0)
			own = (struct rlimit){0, 0};
		l[r].rlim_max = MIN(l[r].rlim_max, own.rlim_max);
		l[r].rlim_cur = MIN(l[r].rlim_cur, l[r].rlim_max);
	}
}

/* The pid of pidfd @fd (its fdinfo), or -1. */
static pid_t pidfd_pid(int fd)
{
	char path[64], line[128];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "re");
	long long pid = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Pid: %lld", &pid) == 1)
			break;
	if (f)
		fclose(f);
	return pid > 0 && pid <= INT32_MAX ? (pid_t)pid : -1;
}

/* One limit: the word @infinity ("unlimited" in /proc/PID/limits, "inf" in a start message) or a
 * number below RLIM_INFINITY. */
static int limit_parse(const char *v, const char *infinity, rlim_t *ret)
{
	unsigned long long n = 0;
	if (streq(v, infinity)) {
		*ret = RLIM_INFINITY;
		return 0;
	}
	if (parse_uint64(v, (unsigned long long)RLIM_INFINITY - 1, &n) < 0)
		return -1;
	*ret = (rlim_t)n;
	return 0;
}

/* /proc/PID/limits (@fd): a header, then a line a resource in their order ("Max cpu time",
 * "Max file size", ...: the kernel's table), its soft and hard limits from column 26. (prlimit(2)
 * on another user's process needs CAP_SYS_RESOURCE, which root may lack.) */
static int read_proc_limits(int fd, struct rlimit *ret)
{
	FILE *f = fdopen(fd, "re");
	char line[160];
	int r = -1, n = 0;
	if (!f) {
		close(fd);
		return -1;
	}
	if (fgets(line, sizeof(line), f))
		for (r = 0; r < RLIM_NLIMITS && fgets(line, sizeof(line), f); r++) {
			char soft[24], hard[24];
			if (strlen(line) < 27 || sscanf(line + 26, "%23s %23s", soft, hard) != 2 ||
			    limit_parse(soft, "unlimited", &ret[r].rlim_cur) < 0 ||
			    limit_parse(hard, "unlimited", &ret[r].rlim_max) < 0)
				break;
			n++;
		}
	fclose(f);
	return n == RLIM_NLIMITS ? 0 : -1;
}

/* Whether @pid is a process of @uid's alone: real, effective, saved and fs uid all @uid, and
 * (@uid not root) no capability. A process that connected and then exec'd a setuid program
 * (ferry-starter raises its limits as root first) is not: its limits are root's. */
static bool plain_process_of(pid_t pid, uid_t uid)
{
	struct ferry_proc_status st;
	if (ferry_proc_status(pid, &st) < 0)
		return false;
	for (int i = 0; i < 4; i++)
		if (st.uid[i] != uid)
			return false;
	return uid == 0 || (st.caps[1] == 0 && st.caps[2] == 0);
}

int ferryd_client_limits(int sk, uid_t uid, struct rlimit *ret, struct ferry_error **err)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	int pidfd = -1;
	socklen_t fl = sizeof(pidfd);
	/* the client's process itself (SO_PEERPIDFD), never a pid reused since; an older kernel's
	 * pid of the connect (reused by another process, at worst: it must be the user's alone,
	 * below, and the limits are capped) */
	if (getsockopt(sk, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &fl) < 0) {
		if (getsockopt(sk, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0)
			return ferry_error_set(err, errno, "read your limits: the client's credentials");
		pidfd = (int)syscall(SYS_pidfd_open, cred.pid, 0);
	}
	_cleanup_close_ int pfd = pidfd;
	pid_t pid = pfd >= 0 ? pidfd_pid(pfd) : -1;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	int fd = pid > 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0)
		return ferry_error_set(err, pid > 0 ? errno : ESRCH,
				       "read your limits: your 'ferry' command is gone");
	if (read_proc_limits(fd, ret) < 0)
		return ferry_error_msg(err, EINVAL, "read your limits: '%s' is not as expected", path);
	if (!plain_process_of(pid, uid))
		return ferry_error_msg(
		    err, EPERM,
		    "read your limits: the process that connected to ferryd is no longer "
		    "yours alone (it runs a setuid program, or is gone): run 'ferry' itself");
	/* still that process: its pid was not reused while we read */
	struct pollfd p = {.fd = pfd, .events = POLLIN};
	if (poll(&p, 1, 0) != 0)
		return ferry_error_msg(err, ESRCH, "read your limits: your 'ferry' command is gone");
	cap_to_own(ret);
	return 0;
}

void ferryd_limits_format(const struct rlimit *l, char *buf, size_t size)
{
	size_t off = 0;
	buf[0] = '\0';
	for (int r = 0; r < RLIM_NLIMITS && off < size; r++) {
		char c[24], m[24];
		if (l[r].rlim_cur == RLIM_INFINITY)
			snprintf(c, sizeof(c), "inf");
		else
			snprintf(c, sizeof(c), "%llu", (unsigned long long)l[r].rlim_cur);
		if (l[r].rlim_max == RLIM_INFINITY)
			snprintf(m, sizeof(m), "inf");
		else
			snprintf(m, sizeof(m), "%llu", (unsigned long long)l[r].rlim_max);
		int n = snprintf(buf + off, size - off, "%s%s:%s", r ? "," : "", c, m);
		off += n > 0 ? (size_t)n : 0;
	}
}

/* One limit of ferryd_limits_parse, up to @end. */
static int limit_value(const char *s, const char *end, rlim_t *ret)
{
	char v[24];
	if (end <= s || (size_t)(end - s) >= sizeof(v))
		return -1;
	memcpy(v, s, (size_t)(end - s));
	v[end - s] = '\0';
	return limit_parse(v, "inf", ret);
}

int ferryd_limits_parse(const char *s, struct rlimit *ret, struct ferry_error **err)
{
	const char *p = s;
	for (int r = 0; p && r < RLIM_NLIMITS; r++) {
		const char *colon = strchr(p, ':'), *end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		if ((r < RLIM_NLIMITS - 1) != (*end == ',') || !colon || colon > end ||
		    limit_value(p, colon, &ret[r].rlim_cur) < 0 ||
		    limit_value(colon + 1, end, &ret[r].rlim_max) < 0 || (ret[r].rlim_cur > ret[r].rlim_max))
			return ferry_error_msg(
			    err, EINVAL, "the start's 'limits' are not %d pairs SOFT:HARD (numbers or 'inf')",
			    RLIM_NLIMITS);
		p = *end ? end + 1 : NULL;
	}
	cap_to_own(ret);
	return 0;
}
