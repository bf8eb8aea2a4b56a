/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ferry-plan — the plan child's side of the starter's privilege separation (see
 * src/starter/plan.h): no setuid bit, run by ferry-starter by fd, as the caller for good (real,
 * effective and saved ids, no capability, no_new_privs), right after the permanent drop.
 *
 * Everything the caller controls is parsed here, outside the setuid binary's image: the request
 * (fd 3), the image's headers, the paths to bind, the network names and arguments. It sends the
 * fixed-layout plan and the fds it opened on its one socket (PLAN_SOCK_FD) and exits; root
 * re-checks all of it. Run by hand it only answers on that socket, as the user who ran it.
 *
 *   ferry-plan request|verified|launch XFER HOME
 *
 * request: fd 3 is the caller's request (decoded and checked, then prepared); verified: fd 3
 * is root's request of a restart, as verified in its checkpoint (only the prepared part is
 * sent); launch: fd 3 is a checkpoint's launch request, verified by root (only decoded and
 * sent back). XFER is 1 when the starter holds a --page-server connection, HOME the caller's home
 * from the passwd entry ("" for none). */
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "dumpable.h"
#include "fs.h"
#include "image.h"
#include "../starter/plan.h"
#include "../starter/starter.h"

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
	h->group = put_str(b, req->group);
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
	/* s->mounts are the request's: the current directory (if it could be opened), then one a
	 * bind */
	if (s->n_mounts > s->req->n_binds)
		h->flags |= PLAN_CWD_BOUND;
	for (size_t i = 0; i < s->n_mounts; i++)
		b->fds[h->n_fds++] = s->mounts[i].fd;
}

static _noreturn_ void send_plan(struct builder *b)
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
	while ((n = sendmsg(PLAN_SOCK_FD, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (n < 0 || ferry_write_all(PLAN_SOCK_FD, (char *)b->h + n, sizeof(*b->h) - (size_t)n) < 0 ||
	    ferry_write_all(PLAN_SOCK_FD, b->area, b->len) < 0)
		_exit(255);
	_exit(0);
}

static _noreturn_ void send_error(struct builder *b, struct ferry_error *err)
{
	const char *m = err && err->message ? err->message : "unknown error";
	_cleanup_free_ char *line = xstrndup(m, PLAN_MESSAGE_MAX);
	memset(b->h, 0, sizeof(*b->h));
	b->h->flags = PLAN_ERROR;
	b->h->message = put_str(b, line);
	send_plan(b);
}

/* fd 3, bounded and decoded; the caller's is checked against the op table too. */
static int read_request(struct starter *s, bool verified, struct ferry_error **err)
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
	if (r < 0 || verified)
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

/* net.c's policy check asks for a network's subnets; the policy is root's to check, never here. */
int ferry_net_subnets(const struct ferry_config *c, const char *network, struct ferry_net_subnet *ret,
		      size_t max, size_t *ret_n, struct ferry_error **err)
{
	return ferry_error_msg(err, ENOTSUP, "ferry-plan checks no network policy");
}

/* Whether @op opens an image (FERRY_OP_TABLE, as the starter's own table says). */
static bool op_has_image(uint32_t op)
{
#define IMAGE_ROW(op_, what, flags, image_, instance, argv, checkpoint, handler)                             \
	[op_] = (image_) != FERRY_FIELD_NO,
	static const bool image[FERRY_OP_MAX_] = {FERRY_OP_TABLE(IMAGE_ROW)};
#undef IMAGE_ROW
	return op < FERRY_OP_MAX_ && image[op];
}

int main(int argc, char **argv)
{
	struct stat st;
	if (fstat(PLAN_SOCK_FD, &st) < 0 || !S_ISSOCK(st.st_mode) || argc != 4 ||
	    (!streq(argv[1], "request") && !streq(argv[1], "verified") && !streq(argv[1], "launch"))) {
		fprintf(stderr, "ferry-plan is run by ferry-starter, not directly\n");
		return 2;
	}
	bool verified = streq(argv[1], "verified"), launch = streq(argv[1], "launch");
	struct ferry_error *err = NULL;
	struct builder b = {.h = xzalloc(sizeof(struct plan)), .area = xmalloc(4096), .len = 1, .cap = 4096};
	b.area[0] = '\0'; /* offset 0 is no string's: {0, 0} is an absent one */
	/* the starter's view, for its checks: the caller is who runs this; -1 and 0 only say
	 * whether a --page-server connection is there (its fd stays root's) */
	struct starter s = {.image_fd = -1, .xfer_fd = streq(argv[2], "1") ? 0 : -1};
	s.privs.uid = getuid();
	s.home = *argv[3] ? argv[3] : NULL;
	/* root acts on the plan: a process its caller could trace could change it */
	if (ferry_refuse_dumpable("ferry-plan", &err) < 0 ||
	    ferry_config_load(FERRY_CONFIG_PATH, true, &s.cfg, &err) < 0 ||
	    read_request(&s, verified || launch, &err) < 0)
		send_error(&b, err);
	if (launch) {
		put_request(&b, s.req);
		send_plan(&b);
	}
	bool restart = s.req->flags & FERRY_REQ_CRIU_RESTART;
	bool image = op_has_image(s.req->op) && (verified || !restart);
	if (image && prepare(&s, &err) < 0)
		send_error(&b, err);
	if (!verified)
		put_request(&b, s.req);
	if (image)
		put_prepared(&b, &s);
	send_plan(&b);
}
