/* SPDX-License-Identifier: GPL-2.0-or-later */
/* plan.c — the plan child and the root side's re-check of its plan (see plan.h).
 *
 * The child is the caller for good before it reads a byte, and ferry-plan (src/plan/, no setuid
 * bit) before it parses one: everything the caller controls (the
 * request, the image's headers, the paths to bind, the network arguments) is parsed there. A
 * parser bug is then the caller's own process misbehaving, not root's. Root trusts nothing the
 * child says: it takes fixed-size scalars, strings it finds NUL-terminated inside one bounded
 * area, and fds it checks with fstat/fcntl, and it checks all of it again with the request's own
 * rules before it acts on any of it. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "fs.h"
#include "helper.h"
#include "names.h"
#include "plan.h"
#include "starter.h"

/* ---- the child: ferry-plan, as the caller ---- */

/* A sealed memfd holding @buf: fd 3 of a run on root's bytes. */
static int sealed_copy(const char *buf, size_t len, struct ferry_error **err)
{
	_cleanup_close_ int fd = memfd_create("ferry-request", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ferry_write_all(fd, buf, len) < 0 || lseek(fd, 0, SEEK_SET) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
		return ferry_error_set(err, errno, "hand a request to ferry-plan");
	return TAKE_FD(fd);
}

struct ferry_request plan_as_launch(const struct ferry_request *req)
{
	struct ferry_request launch = *req;
	launch.flags = (launch.flags & ~(uint32_t)(FERRY_REQ_CRIU_RESTART | FERRY_REQ_TCP_CLOSE)) |
		       FERRY_REQ_CRIU_LAUNCH;
	launch.page_server = NULL;
	return launch;
}

/* fd 3 of a verified run: root's request, encoded as the launch request it was sealed as (the
 * decoder takes no restart with a command; the restart's own flags stay root's). */
static int verified_request(const struct starter *s, struct ferry_error **err)
{
	struct ferry_request launch = plan_as_launch(s->req);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = ferry_request_encode(&launch, &buf, &len, err);
	return r < 0 ? r : sealed_copy(buf, len, err);
}

/* The caller for good: real, effective and saved ids, no capability, no_new_privs (the death
 * signal after it: a change of credentials clears it, an exec keeps it). A caller who is root
 * stays root, capabilities included (it reaches what root reaches): it only parses its own
 * bytes. */
static int become_caller(const void *arg)
{
	const struct starter *s = arg;
	int r = s->privs.uid != 0 ? ferry_privs_drop(&s->privs, NULL, 0, NULL)
				  : ferry_privs_raise(&s->privs, NULL);
	if (r < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return -EPERM;
	return 0;
}

/* ferry-plan, by fd, as the caller for good: fd 3 the request, PLAN_SOCK_FD the socket, stderr
 * the caller's, nothing else. */
static _noreturn_ void plan_child(const struct starter *s, int exe, int req_fd, int sock, const char *mode)
{
	char *const argv[] = {"ferry-plan", (char *)mode, s->xfer_fd >= 0 ? "1" : "0", s->home ? s->home : "",
			      NULL};
	const int src[] = {-1, -1, STDERR_FILENO, req_fd, sock};
	helper_exec(src, (int)ARRAY_SIZE(src), exe, argv, become_caller, s);
}

/* ---- root: receive ---- */

static int recv_plan(int sock, struct plan *h, int *fds, size_t *n_fds, char **ret_area,
		     struct ferry_error **err)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * PLAN_FDS_MAX)];
	} cm;
	struct iovec iov = {.iov_base = h, .iov_len = sizeof(*h)};
	struct msghdr msg = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf)};
	ssize_t n;
	while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	for (struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL; c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*n_fds < PLAN_FDS_MAX)
				fds[(*n_fds)++] = fd;
			else
				close(fd);
		}
	}
	if (n <= 0)
		return n == 0 ? 0 : ferry_error_set(err, errno, "receive the plan");
	if (msg.msg_flags & MSG_CTRUNC)
		return ferry_error_msg(err, EPROTO, "invalid plan: too many fds");
	if ((size_t)n < sizeof(*h) &&
	    ferry_read_timeout(sock, (char *)h + n, sizeof(*h) - (size_t)n, 0, err) < 0)
		return -EPROTO;
	if (h->magic != PLAN_MAGIC || h->size != sizeof(*h) || h->strings_len == 0 ||
	    h->strings_len > PLAN_STRINGS_MAX)
		return ferry_error_msg(err, EPROTO, "invalid plan header");
	*ret_area = xmalloc(h->strings_len);
	if (ferry_read_timeout(sock, *ret_area, h->strings_len, 0, err) < 0)
		return -EPROTO;
	return 1;
}

/* The string @ps of the area, or NULL when absent; *ok is cleared when it is not one. */
static const char *str_at(const struct plan *h, const char *area, struct plan_str ps, size_t max, bool *ok)
{
	if (ps.off == 0 && ps.len == 0)
		return NULL;
	if (ps.off == 0 || ps.off >= h->strings_len || ps.len >= h->strings_len - ps.off || ps.len > max ||
	    area[ps.off + ps.len] != '\0' || memchr(area + ps.off, '\0', ps.len)) {
		*ok = false;
		return NULL;
	}
	return area + ps.off;
}

static char *dup_at(const struct plan *h, const char *area, struct plan_str ps, bool *ok)
{
	const char *s = str_at(h, area, ps, PLAN_STRINGS_MAX, ok);
	return s ? xstrdup(s) : NULL;
}

static char **strv_at(const struct plan *h, const char *area, const struct plan_str *v, uint32_t n, bool *ok)
{
	char **out = xzalloc((n + 1) * sizeof(char *));
	for (uint32_t i = 0; i < n && *ok; i++) {
		out[i] = dup_at(h, area, v[i], ok);
		*ok = *ok && out[i];
	}
	return out;
}

/* The request, copied out of the plan (no decoding) and checked with the decoder's own rules. */
static int adopt_request(const struct plan *h, const char *area, struct ferry_request **ret,
			 struct ferry_error **err)
{
	bool ok = h->n_argv <= PLAN_LIST_MAX && h->n_env <= PLAN_LIST_MAX && h->n_binds <= PLAN_BINDS_MAX;
	if (!ok)
		return ferry_error_msg(err, EPROTO, "invalid plan: counts out of bounds");
	_cleanup_(ferry_request_freep) struct ferry_request *req = xzalloc(sizeof(*req));
	req->op = h->op;
	req->flags = h->req_flags;
	req->image = dup_at(h, area, h->image, &ok);
	req->instance = dup_at(h, area, h->instance, &ok);
	req->cwd = dup_at(h, area, h->cwd, &ok);
	req->pwd = dup_at(h, area, h->pwd, &ok);
	req->hostname = dup_at(h, area, h->hostname, &ok);
	req->checkpoint = dup_at(h, area, h->checkpoint, &ok);
	req->page_server = dup_at(h, area, h->page_server, &ok);
	req->networks = dup_at(h, area, h->networks, &ok);
	req->network_args = dup_at(h, area, h->network_args, &ok);
	req->group = dup_at(h, area, h->group, &ok);
	req->argv = strv_at(h, area, h->argv, h->n_argv, &ok);
	req->env = strv_at(h, area, h->env, h->n_env, &ok);
	req->binds = xzalloc((h->n_binds + 1) * sizeof(*req->binds));
	for (uint32_t i = 0; i < h->n_binds && ok; i++, req->n_binds++) {
		req->binds[i] =
		    (struct ferry_bind){dup_at(h, area, h->binds[i].src, &ok),
					dup_at(h, area, h->binds[i].dst, &ok), h->binds[i].ro == 1};
		ok = ok && req->binds[i].src && req->binds[i].dst && h->binds[i].ro <= 1;
	}
	if (!ok)
		return ferry_error_msg(err, EPROTO, "invalid plan: a string out of bounds");
	int r = ferry_request_check(req, err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(req);
	return 0;
}

/* The image fd: of the kind the plan says, read-only, the filesystem inside the file. */
static int adopt_image(struct starter *s, const struct plan *h, int fd, struct ferry_error **err)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);
	if (fstat(fd, &st) < 0 || fl < 0 || (fl & O_PATH) || (fl & O_ACCMODE) != O_RDONLY)
		return ferry_error_msg(err, EPROTO, "invalid plan: the image fd is not open for reading");
	bool dir = h->image_kind == FERRY_IMAGE_DIR,
	     file = h->image_kind == FERRY_IMAGE_SQUASHFS || h->image_kind == FERRY_IMAGE_SIF;
	uint64_t end = (uint64_t)st.st_size;
	if (!(dir && S_ISDIR(st.st_mode) && h->image_offset == 0 && h->image_size == 0) &&
	    !(file && S_ISREG(st.st_mode) && h->image_size > 0 && h->image_offset <= end &&
	      h->image_size <= end - h->image_offset &&
	      (h->image_kind == FERRY_IMAGE_SIF || h->image_offset == 0)))
		return ferry_error_msg(err, EPROTO, "invalid plan: the image does not match its fd");
	s->image_fd = fd;
	s->image = (struct ferry_image_info){
	    .kind = h->image_kind, .offset = h->image_offset, .size = h->image_size, .file_size = end};
	return 0;
}

/* Network names (as ferry_net_names_parse makes them) and arguments (as ferry_net_args_parse). */
static int adopt_networks(struct starter *s, const struct plan *h, const char *area, struct ferry_error **err)
{
	bool net = s->req->flags & FERRY_REQ_NET, ok = true;
	if (net ? (h->n_networks == 0 || h->n_networks > FERRY_NET_MAX) : h->n_networks != 0)
		return ferry_error_msg(err, EPROTO, "invalid plan: %u networks", h->n_networks);
	for (uint32_t i = 0; i < h->n_networks; i++) {
		const char *n = str_at(h, area, h->net_names[i], 64, &ok);
		if (!ok || !n || !ferry_config_word_ok(n, 64))
			return ferry_error_msg(err, EPROTO, "invalid plan: a network name");
		strv_push(&s->networks, n);
	}
	const char *ip = str_at(h, area, h->net_ip, 64, &ok), *mac = str_at(h, area, h->net_mac, 64, &ok),
		   *gw = str_at(h, area, h->net_gw, 64, &ok);
	uint8_t m[6];
	struct in_addr a;
	if (!ok || (!net && (ip || mac || gw)) ||
	    (ip && ferry_config_cidr_parse(ip, &(uint32_t){0}, NULL) < 0) ||
	    (mac && ferry_net_mac_parse(mac, m) < 0) || (gw && inet_pton(AF_INET, gw, &a) != 1))
		return ferry_error_msg(err, EPROTO, "invalid plan: network arguments");
	s->net_args = (struct ferry_net_args){
	    .ip = ip ? xstrdup(ip) : NULL, .mac = mac ? xstrdup(mac) : NULL, .gw = gw ? xstrdup(gw) : NULL};
	return 0;
}

static int adopt_prepared(struct starter *s, const struct plan *h, const char *area, int *fds, size_t n_fds,
			  struct ferry_error **err)
{
	if (n_fds != h->n_fds || n_fds < 1)
		return ferry_error_msg(err, EPROTO, "invalid plan: %zu fds received, %u announced", n_fds,
				       h->n_fds);
	int r = adopt_networks(s, h, area, err);
	if (r < 0 || (r = adopt_image(s, h, fds[0], err)) < 0)
		return r;
	fds[0] = -1;
	/* the mount sources are re-checked against the policy when root plans the mounts */
	s->given.fd = xmalloc((n_fds - 1 + 1) * sizeof(int));
	for (size_t i = 1; i < n_fds; i++) {
		s->given.fd[i - 1] = fds[i];
		fds[i] = -1;
	}
	s->given.n = n_fds - 1;
	s->given.cwd_bound = h->flags & PLAN_CWD_BOUND;
	return 0;
}

/* A plan with flags outside @known, or a refusal: its error. */
static int adopt_refusal(const struct plan *h, const char *area, uint32_t known, struct ferry_error **err)
{
	bool ok = true;
	if (h->flags & ~known)
		return ferry_error_msg(err, EPROTO, "invalid plan: unknown flags");
	if (h->flags & PLAN_ERROR) {
		const char *m = str_at(h, area, h->message, PLAN_MESSAGE_MAX, &ok);
		return ferry_error_msg(err, EPERM, "%s", ok && m ? m : "invalid plan: the refusal");
	}
	return 0;
}

/* Everything in the plan, checked; the request's first (the prepared part is checked against
 * it). */
static int adopt(struct starter *s, bool verified, const struct plan *h, const char *area, int *fds,
		 size_t n_fds, struct ferry_error **err)
{
	int r = adopt_refusal(h, area, PLAN_ERROR | PLAN_PREPARED | PLAN_CWD_BOUND, err);
	if (r < 0)
		return r;
	struct ferry_request *req = NULL;
	if (!verified) {
		if ((r = adopt_request(h, area, &req, err)) < 0)
			return r;
		ferry_request_free(s->req);
		s->req = req;
	}
	if (verified && (h->op || h->n_argv || h->n_env || h->n_binds))
		return ferry_error_msg(err, EPROTO, "invalid plan: a request after the verified one");
	if (!verified && (r = starter_check_request(s, err)) < 0)
		return r;
	bool restart = s->req->flags & FERRY_REQ_CRIU_RESTART;
	bool want = starter_op(s->req->op)->image && (verified || !restart);
	if (want != !!(h->flags & PLAN_PREPARED) || (!want && n_fds > 0))
		return ferry_error_msg(err, EPROTO, "invalid plan: prepared part %s",
				       want ? "missing" : "not expected");
	return want ? adopt_prepared(s, h, area, fds, n_fds, err) : 0;
}

/* The child's exit: a plan counts only from a child that exited 0 after sending it. */
static int reap(pid_t pid, bool refused, struct ferry_error **err)
{
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return ferry_error_set(err, errno, "wait for the request's checker");
	if (refused || (WIFEXITED(st) && WEXITSTATUS(st) == 0))
		return 0;
	if (WIFSIGNALED(st))
		return ferry_error_msg(
		    err, EPROTO, "the request could not be checked: its checker was killed by signal %d",
		    WTERMSIG(st));
	return ferry_error_msg(err, EPROTO,
			       "the request could not be checked: its checker exited with status %d",
			       WEXITSTATUS(st));
}

/* What ferry-plan sent: its plan and fds. */
struct received {
	struct plan *h;
	char *area;
	int fds[PLAN_FDS_MAX];
	size_t n_fds;
};

static void received_free(struct received *rc)
{
	for (size_t i = 0; i < rc->n_fds; i++)
		closep(&rc->fds[i]);
	free(rc->h);
	free(rc->area);
}

/* Runs ferry-plan @mode as the caller with @req_fd (closed here) as its fd 3 and receives its
 * plan, whole, from a ferry-plan that exited 0 (a refusal included). */
static int run_plan(const struct starter *s, const char *mode, int req_fd, struct received *rc,
		    struct ferry_error **err)
{
	rc->h = xzalloc(sizeof(*rc->h));
	_cleanup_close_ int exe = helper_open_private("ferry-plan", "the plan root acts on", err);
	int sp[2] = {-1, -1};
	if (exe < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		int r = exe < 0 ? exe : ferry_error_set(err, errno, "socketpair");
		close(req_fd);
		return r < 0 ? r : -EIO;
	}
	pid_t pid = fork();
	if (pid == 0)
		plan_child(s, exe, req_fd, sp[1], mode);
	int e = errno;
	close(sp[1]);
	close(req_fd); /* ferry-plan's alone: root never reads the caller's request */
	if (pid < 0) {
		close(sp[0]);
		int r = ferry_error_set(err, e, "fork");
		return r < 0 ? r : -EIO;
	}
	struct ferry_error *rerr = NULL;
	int r = recv_plan(sp[0], rc->h, rc->fds, &rc->n_fds, &rc->area, &rerr);
	close(sp[0]); /* exactly the plan's size: whatever else the child sends is dropped */
	/* a child that died says so (whatever half a plan it sent); else what was received */
	int rr = reap(pid, r > 0 && (rc->h->flags & PLAN_ERROR), err);
	if (rr < 0)
		r = rr;
	else if (r < 0)
		*err = TAKE_PTR(rerr);
	else if (r == 0)
		r = ferry_error_msg(err, EPROTO, "the request could not be checked: no plan");
	ferry_error_free(rerr);
	return r < 0 ? r : rc->area ? 0 : -EPROTO;
}

int plan_fetch(struct starter *s, bool verified, struct ferry_error **err)
{
	int req_fd = verified ? verified_request(s, err) : FERRY_REQUEST_FD;
	if (req_fd < 0)
		return req_fd;
	struct received rc = {0};
	int r = run_plan(s, verified ? "verified" : "request", req_fd, &rc, err);
	if (r >= 0)
		r = adopt(s, verified, rc.h, rc.area, rc.fds, rc.n_fds, err);
	received_free(&rc);
	return r < 0 ? r : 0;
}

int plan_decode_launch(const struct starter *s, const char *buf, size_t len, struct ferry_request **ret,
		       struct ferry_error **err)
{
	int fd = sealed_copy(buf, len, err);
	if (fd < 0)
		return fd;
	struct received rc = {0};
	int r = run_plan(s, "launch", fd, &rc, err);
	if (r >= 0 && (r = adopt_refusal(rc.h, rc.area, PLAN_ERROR, err)) >= 0) {
		if (rc.n_fds > 0 || rc.h->n_networks > 0)
			r = ferry_error_msg(err, EPROTO, "invalid plan: a launch request with more");
		else
			r = adopt_request(rc.h, rc.area, ret, err);
	}
	received_free(&rc);
	return r < 0 ? r : 0;
}
