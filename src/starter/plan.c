/* SPDX-License-Identifier: GPL-2.0-or-later */
/* plan.c — the plan child and the root side's re-check of its plan (see plan.h).
 *
 * The child is the caller for good before it reads a byte: everything the caller controls (the
 * request, the image's headers, the paths to bind, the network arguments) is parsed there. A
 * parser bug is then the caller's own process misbehaving, not root's. Root trusts nothing the
 * child says: it takes fixed-size scalars, strings it finds NUL-terminated inside one bounded
 * area, and fds it checks with fstat/fcntl, and it checks all of it again with the request's own
 * rules before it acts on any of it. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "fs.h"
#include "names.h"
#include "plan.h"
#include "starter.h"

/* ---- the child: build and send ---- */

struct builder {
	struct plan *h;
	char *area;
	size_t len, cap;
	int fds[PLAN_FDS_MAX];
};

static struct plan_str put_str(struct builder *b, const char *s)
{
	if (!s)
		return (struct plan_str){0, 0};
	size_t n = strlen(s);
	if (n >= PLAN_STRINGS_MAX - b->len) /* bounded by the request's own size: never here */
		_exit(255);
	if (b->len + n + 1 > b->cap) {
		while (b->len + n + 1 > b->cap)
			b->cap *= 2;
		b->area = xrealloc(b->area, b->cap);
	}
	struct plan_str ps = {(uint32_t)b->len, (uint32_t)n};
	memcpy(b->area + b->len, s, n + 1);
	b->len += n + 1;
	return ps;
}

static void put_request(struct builder *b, const struct ferry_request *req)
{
	struct plan *h = b->h;
	h->op = req->op;
	h->req_flags = req->flags;
	h->image = put_str(b, req->image);
	h->instance = put_str(b, req->instance);
	h->cwd = put_str(b, req->cwd);
	h->pwd = put_str(b, req->pwd);
	h->hostname = put_str(b, req->hostname);
	h->checkpoint = put_str(b, req->checkpoint);
	h->page_server = put_str(b, req->page_server);
	h->networks = put_str(b, req->networks);
	h->network_args = put_str(b, req->network_args);
	for (char **a = req->argv; *a; a++)
		h->argv[h->n_argv++] = put_str(b, *a); /* at most PLAN_LIST_MAX: the decoder's bound */
	for (char **e = req->env; *e; e++)
		h->env[h->n_env++] = put_str(b, *e);
	for (size_t i = 0; i < req->n_binds; i++)
		h->binds[h->n_binds++] = (struct plan_bind){put_str(b, req->binds[i].src),
							    put_str(b, req->binds[i].dst), req->binds[i].ro};
}

static void put_prepared(struct builder *b, const struct starter *s)
{
	struct plan *h = b->h;
	h->flags |= PLAN_PREPARED;
	h->image_kind = s->image.kind;
	h->image_offset = s->image.offset;
	h->image_size = s->image.size;
	h->image_file_size = s->image.file_size;
	for (char **n = s->networks; n && *n && h->n_networks < FERRY_NET_MAX; n++)
		h->net_names[h->n_networks++] = put_str(b, *n);
	h->net_ip = put_str(b, s->net_args.ip);
	h->net_mac = put_str(b, s->net_args.mac);
	h->net_gw = put_str(b, s->net_args.gw);
	b->fds[h->n_fds++] = s->image_fd;
	/* the plan child's s->mounts are the request's: the current directory (if it could be
	 * opened), then one a bind */
	if (s->n_mounts > s->req->n_binds)
		h->flags |= PLAN_CWD_BOUND;
	for (size_t i = 0; i < s->n_mounts; i++)
		b->fds[h->n_fds++] = s->mounts[i].fd;
}

static _noreturn_ void send_plan(int sock, struct builder *b)
{
	b->h->magic = PLAN_MAGIC;
	b->h->size = sizeof(*b->h);
	b->h->strings_len = (uint32_t)b->len;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * PLAN_FDS_MAX)];
	} cm = {0};
	struct iovec iov = {.iov_base = b->h, .iov_len = sizeof(*b->h)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (b->h->n_fds > 0) {
		msg.msg_control = cm.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * b->h->n_fds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * b->h->n_fds);
		memcpy(CMSG_DATA(c), b->fds, sizeof(int) * b->h->n_fds);
	}
	ssize_t n;
	while ((n = sendmsg(sock, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (n < 0 || ferry_write_all(sock, (char *)b->h + n, sizeof(*b->h) - (size_t)n) < 0 ||
	    ferry_write_all(sock, b->area, b->len) < 0)
		_exit(255);
	_exit(0);
}

static _noreturn_ void send_error(int sock, struct builder *b, struct ferry_error *err)
{
	const char *m = err && err->message ? err->message : "unknown error";
	_cleanup_free_ char *line = xstrndup(m, PLAN_MESSAGE_MAX);
	memset(b->h, 0, sizeof(*b->h));
	b->h->flags = PLAN_ERROR;
	b->h->message = put_str(b, line);
	send_plan(sock, b);
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

/* fd 3, bounded, decoded and checked against the op table. */
static int read_request(struct starter *s, struct ferry_error **err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	struct ferry_error *rerr = NULL;
	if (ferry_read_all(FERRY_REQUEST_FD, FERRY_REQUEST_MAX, &buf, &len, &rerr) < 0) {
		int r = ferry_error_msg(err, EBADMSG, "invalid request: %s", rerr->message);
		ferry_error_free(rerr);
		return r;
	}
	close(FERRY_REQUEST_FD);
	int r = ferry_request_decode(buf, len, &s->req, err);
	if (r < 0)
		return r;
	return starter_check_request(s, err);
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

/* What an op with an image needs, found as the caller: networks, image, mount sources. */
static int prepare(struct starter *s, struct ferry_error **err)
{
	const struct ferry_request *req = s->req;
	int r;
	if (req->flags & FERRY_REQ_NET) {
		if ((r = ferry_net_names_parse(req->networks ? req->networks : "bridge", &s->networks, err)) <
			0 ||
		    (req->network_args &&
		     (r = ferry_net_args_parse(req->network_args, &s->net_args, err)) < 0))
			return r;
	}
	if ((r = open_image(s, err)) < 0)
		return r;
	if (req->n_binds > PLAN_BINDS_MAX)
		return ferry_error_msg(err, E2BIG, "at most %u --bind options", PLAN_BINDS_MAX);
	return plan_mounts(s, NULL, err);
}

/* The caller for good: real, effective and saved ids, no capability, no_new_privs (the death
 * signal after it: a change of credentials clears it). A caller who is root stays root,
 * capabilities included (it reaches what root reaches): it only parses its own bytes. */
static int become_caller(struct starter *s, struct ferry_error **err)
{
	int r =
	    s->privs.uid != 0 ? ferry_privs_drop(&s->privs, NULL, 0, err) : ferry_privs_raise(&s->privs, err);
	if (r < 0)
		return r;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return ferry_error_set(err, errno, "PR_SET_PDEATHSIG");
	return 0;
}

static _noreturn_ void plan_child(struct starter *s, int sock, bool verified)
{
	struct ferry_error *err = NULL;
	struct builder b = {.h = xzalloc(sizeof(struct plan)), .area = xmalloc(4096), .len = 1, .cap = 4096};
	b.area[0] = '\0'; /* offset 0 is no string's: {0, 0} is an absent one */
	if (verified)
		ferry_close_fds(3, (const int[]){sock, -1});
	else
		ferry_close_fds(3, (const int[]){FERRY_REQUEST_FD, sock, -1});
	if (become_caller(s, &err) < 0)
		send_error(sock, &b, err);
	if (!verified && read_request(s, &err) < 0)
		send_error(sock, &b, err);
	const struct starter_op *op = starter_op(s->req->op);
	bool restart = s->req->flags & FERRY_REQ_CRIU_RESTART;
	if (op->image && (verified || !restart) && prepare(s, &err) < 0)
		send_error(sock, &b, err);
	if (!verified)
		put_request(&b, s->req);
	if (op->image && (verified || !restart))
		put_prepared(&b, s);
	send_plan(sock, &b);
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
static int adopt_request(struct starter *s, const struct plan *h, const char *area, struct ferry_error **err)
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
	ferry_request_free(s->req);
	s->req = TAKE_PTR(req);
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
	s->net_args = (struct ferry_net_args){ip ? xstrdup(ip) : NULL, mac ? xstrdup(mac) : NULL,
					      gw ? xstrdup(gw) : NULL};
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

/* Everything in the plan, checked; the request's first (the prepared part is checked against
 * it). */
static int adopt(struct starter *s, bool verified, const struct plan *h, const char *area, int *fds,
		 size_t n_fds, struct ferry_error **err)
{
	bool ok = true;
	if (h->flags & ~(uint32_t)(PLAN_ERROR | PLAN_PREPARED | PLAN_CWD_BOUND))
		return ferry_error_msg(err, EPROTO, "invalid plan: unknown flags");
	if (h->flags & PLAN_ERROR) {
		const char *m = str_at(h, area, h->message, PLAN_MESSAGE_MAX, &ok);
		return ferry_error_msg(err, EPERM, "%s", ok && m ? m : "invalid plan: the refusal");
	}
	int r;
	if (!verified && (r = adopt_request(s, h, area, err)) < 0)
		return r;
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

int plan_fetch(struct starter *s, bool verified, struct ferry_error **err)
{
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return ferry_error_set(err, errno, "socketpair");
	pid_t pid = fork();
	if (pid < 0)
		return ferry_error_set(err, errno, "fork");
	if (pid == 0) {
		close(sp[0]);
		plan_child(s, sp[1], verified);
	}
	close(sp[1]);
	if (!verified)
		close(FERRY_REQUEST_FD); /* the child's alone: root never reads it */
	_cleanup_free_ struct plan *h = xzalloc(sizeof(*h));
	_cleanup_free_ char *area = NULL;
	int fds[PLAN_FDS_MAX];
	size_t n_fds = 0;
	struct ferry_error *rerr = NULL;
	int r = recv_plan(sp[0], h, fds, &n_fds, &area, &rerr);
	close(sp[0]); /* exactly the plan's size: whatever else the child sends is dropped */
	/* a child that died says so (whatever half a plan it sent); else what was received */
	int rr = reap(pid, r > 0 && (h->flags & PLAN_ERROR), err);
	if (rr < 0)
		r = rr;
	else if (r < 0)
		*err = TAKE_PTR(rerr);
	else if (r == 0)
		r = ferry_error_msg(err, EPROTO, "the request could not be checked: no plan");
	else
		r = adopt(s, verified, h, area, fds, n_fds, err);
	ferry_error_free(rerr);
	for (size_t i = 0; i < n_fds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return r < 0 ? r : 0;
}
