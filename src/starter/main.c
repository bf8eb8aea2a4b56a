/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ferry-starter — the only code a user can make run as root. Read docs/security.md first.
 *
 * Discipline (OpenSSH/Apptainer): sanitize the process (fds, environment, umask), drop the
 * effective uid to the caller at once, read the request the CLI sent on fd 3 and check every
 * field against ferry.conf and the caller's REAL uid (identity is never taken from the request),
 * open every user-named file with the caller's rights, regain root only around the steps that
 * need it (namespaces, mounts, records), and drop everything for good before user code runs. */
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/stat.h>

#include "fs.h"
#include "names.h"
#include "starter.h"
#include "transfer.h"

static void sanitize_stdio(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int n = open("/dev/null", O_RDWR);
		if (n != fd)
			_exit(255);
	}
}

int check_hostname(const char *h, struct ferry_error **err)
{
	size_t n = strlen(h);
	bool ok = n > 0 && n <= 64 && h[0] != '-' && h[0] != '.';
	for (const char *p = h; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		     *p == '-' || *p == '.';
	if (!ok)
		return ferry_error_msg(
		    err, EINVAL, "invalid hostname '%s': use letters, digits, '-' and '.' (at most 64)", h);
	return 0;
}

static int open_image(struct starter *s, struct ferry_error **err)
{
	const char *path = s->req->image;
	s->image_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (s->image_fd < 0) {
		if (errno == ENOENT)
			return ferry_error_msg(err, ENOENT, "image '%s' does not exist: check the path",
					       path);
		return ferry_error_set(err, errno, "open image '%s'", path);
	}
	if (ferry_image_probe_fd(s->image_fd, &s->image, err) < 0)
		return ferry_error_wrap(err, "image '%s'", path);
	return 0;
}

static void lookup_user(struct starter *s)
{
	struct passwd pw, *res = NULL;
	char buf[16384];
	if (getpwuid_r(s->privs.uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return;
	s->user = xstrdup(pw.pw_name);
	if (pw.pw_dir && path_clean(pw.pw_dir) && !streq(pw.pw_dir, "/"))
		s->home = xstrdup(pw.pw_dir);
}

static void read_request(struct starter *s)
{
	struct ferry_error *err = NULL;
	struct stat st;
	if (fstat(FERRY_REQUEST_FD, &st) < 0)
		die("ferry-starter is run by the 'ferry' command, not directly (no request on fd %d)",
		    FERRY_REQUEST_FD);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	if (ferry_read_all(FERRY_REQUEST_FD, FERRY_REQUEST_MAX, &buf, &len, &err) < 0)
		die("invalid request: %s", err->message);
	/* fd 4 may carry the socket of a --page-server transfer: connected, or (a restart) the
	 * one it listens on */
	if (fstat(STARTER_XFER_FD, &st) == 0 && S_ISSOCK(st.st_mode))
		s->xfer_fd = fcntl(STARTER_XFER_FD, F_DUPFD_CLOEXEC, 10);
	ferry_close_fds(3, (const int[]){s->xfer_fd, -1});
	if (ferry_request_decode(buf, len, &s->req, &err) < 0)
		die_error(err);
	bool commit = s->req->flags & FERRY_REQ_COMMIT;
	if (!s->req->page_server && !commit && s->xfer_fd >= 0) {
		close(s->xfer_fd);
		s->xfer_fd = -1;
	}
}

/* EXEC and INSTANCE_START: the networks, the image, the logs and the mounts, opened and checked
 * as the caller, before the container is made. */
static void prepare_container(struct starter *s)
{
	struct ferry_error *err = NULL;
	const struct ferry_request *req = s->req;
	s->instance = req->op == FERRY_OP_INSTANCE_START;
	s->criu = req->flags & (FERRY_REQ_CRIU_LAUNCH | FERRY_REQ_CRIU_RESTART);
	if ((req->flags & FERRY_REQ_CRIU_LAUNCH) && s->ckpt_fd < 0)
		TRY(checkpoint_open_dir(s, req->checkpoint, &err));
	if (req->flags & FERRY_REQ_NET) {
		TRY(ferry_net_names_parse(req->networks ? req->networks : "bridge", &s->networks, &err));
		if (req->network_args)
			TRY(ferry_net_args_parse(req->network_args, &s->net_args, &err));
		/* a restart's address and MAC are the instance's own, sealed in its checkpoint: only
		 * the networks are checked against today's policy */
		static const struct ferry_net_args none = {0};
		TRY(ferry_net_check_policy(s->cfg, s->privs.uid, s->networks,
					   (req->flags & FERRY_REQ_CRIU_RESTART) ? &none : &s->net_args,
					   &err));
	}
	TRY(open_image(s, &err));
	if (s->criu) {
		TRY(ferry_image_fingerprint(s->image_fd, &s->image_fingerprint, &err));
		if (s->manifest && s->manifest->image_fingerprint && *s->manifest->image_fingerprint &&
		    !streq(s->manifest->image_fingerprint, s->image_fingerprint))
			die("image '%s' is not the image the checkpoint was made with ('%s'): restart with that image",
			    req->image, s->manifest->image);
	}
	if (s->instance)
		TRY(open_logs(s, &err));
	TRY(plan_mounts(s, &err));
	TRY(ferry_privs_raise(&s->privs, &err));
	TRY(container_clone_trees(s, &err));
	TRY(ferry_privs_lower(&s->privs, &err));
}

int main(int argc, char **argv)
{
	struct ferry_error *err = NULL;
	struct starter s = {.image_fd = -1,
			    .image_tree = -1,
			    .log_out = -1,
			    .log_err = -1,
			    .ckpt_fd = -1,
			    .restore_fd = -1,
			    .xfer_fd = -1};

	sanitize_stdio();
	starter_t_start = ferry_now_ms();
	if (geteuid() != 0)
		die("ferry-starter is not setuid root: install ferry with 'make install' as root");
	if (!getauxval(AT_SECURE) && getuid() != 0)
		die("ferry-starter: unexpected credentials");
	if (clearenv() != 0 || setenv("PATH", STARTER_PATH, 1) != 0)
		die("cannot reset the environment");
	umask(022);
	signal(SIGPIPE, SIG_IGN); /* a peer that went away is an error, not a death */
	TRY(ferry_privs_init(&s.privs, &err));
	TRY(ferry_privs_lower(&s.privs, &err));

	read_request(&s);
	if (ferry_config_load(FERRY_CONFIG_PATH, true, &s.cfg, &err) < 0)
		die_error(err);
	TRY(starter_check_request(&s, &err));
	lookup_user(&s);

	starter_want_timings = s.req->flags & FERRY_REQ_TIMINGS;
	if (s.req->op == FERRY_OP_INSTANCE_START && (s.req->flags & FERRY_REQ_CRIU_RESTART)) {
		if (s.xfer_fd >= 0)
			starter_verdict_fd = s.xfer_fd;
		if (s.xfer_fd >= 0 && s.req->page_server) {
			TRY(checkpoint_receive(&s, &err)); /* pages and images arrive, verified */
			starter_t_received = ferry_now_ms();
		}
		TRY(checkpoint_prepare_restart(&s, &err)); /* s.req becomes the verified launch request */
		TRY(starter_check_names(s.req, &err));
	}
	/* the one op table (FERRY_OP_TABLE, request.h) says what each op needs and who does it */
	const struct starter_op *op = starter_op(s.req->op);
	if (op->image)
		prepare_container(&s);
	op->handler(&s);
	return 255;
}
