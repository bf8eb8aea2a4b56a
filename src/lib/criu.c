/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <criu/criu.h>
#include <fcntl.h>

#include "criu.h"
#include "fs.h"

/* Present in libcriu (lib/c/criu.c) but missing from its public header. */
void criu_local_set_unprivileged(criu_opts *opts, bool unprivileged);

/* libcriu's notification callback has no argument of ours; one dump or restore runs per process */
static int (*post_restore_cb)(void), (*post_dump_cb)(void);
static void (*pre_resume_cb)(void);

static int notify(char *action, criu_notify_arg_t na)
{
	(void)na;
	if (post_restore_cb && streq(action, "post-restore"))
		return post_restore_cb();
	if (pre_resume_cb && streq(action, "pre-resume"))
		pre_resume_cb();
	if (post_dump_cb && streq(action, "post-dump"))
		return post_dump_cb();
	return 0;
}

/* libcriu execs CRIU with our environment, and CRIU runs inside the container with capabilities:
 * every variable that could steer it is the user's or names a path in the user's image ($HOME
 * for ~/.criu/default.conf, CRIU_CONFIG_FILE, CRIU_LIBS_DIR for plugins, XDG_RUNTIME_DIR for its
 * kerndat cache, CR_IP_TOOL, CR_IPTABLES, LD_*, GNUTLS_*...). CRIU gets none of them, and a PATH
 * of the bundle's empty directory: it runs nothing by name (sh, iptables, ip, tar...), since
 * inside the container such a program would be the image's, run with CRIU's capabilities. The
 * processes that call CRIU exist for that only, so their own environment may go. */
static int criu_environment(struct ferry_error **err)
{
	if (clearenv() != 0 || setenv("PATH", FERRY_CRIU_PATH, 1) != 0)
		return ferry_error_set(err, errno ? errno : ENOMEM, "set CRIU's environment");
	return 0;
}

static int setup(criu_opts **ret, const struct ferry_criu_opts *o, struct ferry_error **err)
{
	criu_opts *c = NULL;
	int r = criu_environment(err);
	if (r < 0)
		return r;
	if (criu_local_init_opts(&c) < 0)
		return ferry_error_msg(err, ENOMEM, "libcriu: cannot initialise options");
	if (criu_local_set_service_binary(c, o->binary) < 0) {
		criu_local_free_opts(c);
		return ferry_error_msg(err, ENOMEM, "libcriu: service binary");
	}
	criu_local_set_images_dir_fd(c, o->images_fd);
	criu_local_set_work_dir_fd(c, o->work_fd);
	criu_local_set_log_file(c, o->log);
	criu_local_set_log_level(c, 4);
	criu_local_set_unprivileged(c, true);
	criu_local_set_file_locks(c, true);
	criu_local_set_ext_unix_sk(c, true);
	if (o->timeout)
		criu_local_set_timeout(c, o->timeout);
	if (o->tcp) {
		criu_local_set_tcp_established(c, true);
		criu_local_set_network_lock(c, CRIU_NETWORK_LOCK_NFTABLES);
	}

	if (o->config && criu_local_set_config_file(c, o->config) < 0) {
		criu_local_free_opts(c);
		return ferry_error_msg(err, ENOMEM, "libcriu: config file");
	}
	*ret = c;
	return 0;
}

static int fail(struct ferry_error **err, const struct ferry_criu_opts *o, const char *what, int r)
{
	_cleanup_close_ int lfd = openat(o->work_fd, o->log, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	_cleanup_free_ char *lines = ferry_criu_log_errors(lfd, 3);
	/* CRIU's own advice (--tcp-established) is not the user's to take: say what is */
	if (lines && !o->tcp && streq(what, "dump") &&
	    (strstr(lines, "Connected TCP socket") || strstr(lines, "Failed to lock TCP connection")))
		return ferry_error_msg(
		    err, EIO,
		    "CRIU dump failed: the instance holds an established TCP connection, which "
		    "a checkpoint keeps only in an instance with a network of its own ('criu "
		    "network = loopback' in ferry.conf, or --net)");
	if (lines)
		return ferry_error_msg(err, EIO, "CRIU %s failed: %s", what, lines);
	return ferry_error_msg(err, EIO, "CRIU %s failed (libcriu %d); see %s", what, r, o->log);
}

int ferry_criu_dump(const struct ferry_criu_opts *o, struct ferry_error **err)
{
	criu_opts *c = NULL;
	int r = setup(&c, o, err);
	if (r < 0)
		return r;
	criu_local_set_pid(c, o->pid);
	criu_local_set_leave_running(c, o->leave_running);
	criu_local_set_tcp_skip_in_flight(c, o->skip_in_flight);
	if (o->ghost_limit)
		criu_local_set_ghost_limit(c, o->ghost_limit);
	if (o->post_dump) {
		post_dump_cb = o->post_dump;
		criu_local_set_notify_cb(c, notify);
	}
	r = criu_local_dump(c);
	post_dump_cb = NULL;
	criu_local_free_opts(c);
	if (r < 0)
		return fail(err, o, "dump", r);
	return 0;
}

int ferry_criu_restore(const struct ferry_criu_opts *o, pid_t *ret_pid, struct ferry_error **err)
{
	criu_opts *c = NULL;
	int r = setup(&c, o, err);
	if (r < 0)
		return r;
	if (o->post_restore || o->pre_resume) {
		post_restore_cb = o->post_restore;
		pre_resume_cb = o->pre_resume;
		criu_local_set_notify_cb(c, notify);
	}
	criu_local_set_tcp_close(c, o->tcp_close);
	criu_local_set_auto_dedup(c, o->auto_dedup);
	r = criu_local_restore(c);
	post_restore_cb = NULL;
	pre_resume_cb = NULL;
	criu_local_free_opts(c);
	if (r <= 0)
		return fail(err, o, "restore", r);
	*ret_pid = (pid_t)r;
	return 0;
}
