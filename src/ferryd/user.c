/* SPDX-License-Identifier: GPL-2.0-or-later */
/* user.c — acting for a user: who they are, and running ferry-starter as them; the log. */
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <time.h>

#include "ferryd.h"
#include "fs.h"
#include "spawn.h"

const char *ferryd_log_node = "?";

void ferryd_log(const char *id, const char *fmt, ...)
{
	char when[32];
	time_t t = time(NULL);
	struct tm tm;
	strftime(when, sizeof(when), "%H:%M:%S", localtime_r(&t, &tm));
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s ferryd[%s] %s%s", when, ferryd_log_node, id ? id : "", id ? ": " : "");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int ferryd_become_user(const struct ferryd_user *u)
{
	uid_t r = 0, e = 0, sv = 0;
	if (setgroups((size_t)u->n_groups, u->groups) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 ||
	    setresuid(u->uid, u->uid, u->uid) < 0 || getresuid(&r, &e, &sv) < 0 || r != u->uid ||
	    e != u->uid || sv != u->uid || setuid(0) == 0)
		return -1;
	return 0;
}

int ferryd_user_lookup(uid_t uid, struct ferryd_user *ret, struct ferry_error **err)
{
	struct passwd pw, *res = NULL;
	char buf[16384];
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return ferry_error_msg(err, ENOENT, "no user with uid %u on this node", (unsigned)uid);
	ret->uid = uid;
	ret->gid = pw.pw_gid;
	ret->name = xstrdup(pw.pw_name);
	ret->n_groups = (int)ARRAY_SIZE(ret->groups);
	if (getgrouplist(pw.pw_name, pw.pw_gid, ret->groups, &ret->n_groups) < 0)
		ret->n_groups = 0;
	return 0;
}

int ferryd_run_starter(const struct ferryd *d, const struct ferryd_user *u, const struct ferry_request *req,
		       int sock, char **ret_out, struct ferry_error **err)
{
	return ferryd_run_starter_decision(d, u, req, sock, -1, ret_out, err);
}

int ferryd_request_memfd(const struct ferry_request *req, struct ferry_error **err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = ferry_request_encode(req, &buf, &len, err);
	return r < 0 ? r : ferryd_bytes_memfd(buf, len, err);
}

int ferryd_spawn_starter(const struct ferryd *d, const struct ferryd_user *u, struct ferry_spawn_opts *o,
			 int *ret_status, struct ferry_error **err)
{
	char *const argv[] = {"ferry-starter", NULL};
	o->as_user = true;
	o->uid = u->uid;
	o->gid = u->gid;
	o->groups = u->groups;
	o->n_groups = (size_t)u->n_groups;
	/* a starter that dumps or transfers says "progress" while it moves (a large migration
	 * over a slow link takes long) when the caller times idleness; its other steps, a
	 * restore's among them, are bounded by 'criu timeout' each */
	o->timeout = ferry_config_starter_wait(d->cfg);
	/* and one its user stopped is ended sooner: it makes no progress */
	o->stopped_limit = d->cfg->criu_timeout;
	return ferry_spawn(FERRYD_STARTER, argv, NULL, o, ret_status, err);
}

int ferryd_bytes_memfd(const void *buf, size_t len, struct ferry_error **err)
{
	int r;
	int mfd = memfd_create("ferryd-request", MFD_CLOEXEC);
	if (mfd < 0 || ferry_write_all(mfd, buf, len) < 0 || lseek(mfd, 0, SEEK_SET) < 0) {
		r = ferry_error_set(err, errno, "prepare the request");
		if (mfd >= 0)
			close(mfd);
		return r;
	}
	return mfd;
}

int ferryd_run_starter_decision(const struct ferryd *d, const struct ferryd_user *u,
				const struct ferry_request *req, int sock, int decision, char **ret_out,
				struct ferry_error **err)
{
	_cleanup_close_ int mfd = ferryd_request_memfd(req, err);
	if (mfd < 0)
		return mfd;
	int pass[3] = {mfd, sock, decision};
	size_t out_len = 0;
	struct ferry_spawn_opts o = {
	    .pass_fds = pass,
	    .n_pass_fds = sock < 0	 ? 1
			  : decision < 0 ? 2
					 : 3,
	    .output = ret_out,
	    .output_len = &out_len,
	    .capture_stderr = true,
	    .timeout_idle = true,
	};
	int r = ferryd_spawn_starter(d, u, &o, NULL, err);
	if (r < 0 && *err) {
		/* the starter's own one-line message is what the user needs */
		char *m = strstr((*err)->message, "ferry: ");
		if (m) {
			char *copy = xstrdup(m + 7);
			free((*err)->message);
			(*err)->message = copy;
		}
	}
	return r;
}

long long ferryd_timing(const char *out, const char *key)
{
	const char *line = out ? strstr(out, "timing ") : NULL;
	if (!line)
		return 0;
	_cleanup_free_ char *pat = xasprintf(" %s=", key);
	const char *p = strstr(line, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : 0;
}
