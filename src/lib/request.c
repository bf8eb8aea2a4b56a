/* SPDX-License-Identifier: GPL-2.0-or-later */
/* request.c — the CLI -> starter request: an explicit byte-wise little-endian TLV encoding.
 *
 * This file is the encoder and the checks every request passes however it was built (linked into
 * the setuid starter); the decoder, which parses the caller's bytes, is request_decode.c (linked
 * into ferry-plan, never into the starter). */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>

#include "request.h"
#include "names.h"
#include "request_wire.h"

int ferry_request_bad(struct ferry_error **err, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		ferry_oom();
	va_end(ap);
	return ferry_error_msg(err, EBADMSG, "invalid request: %s", msg);
}

/* ---- the op table ---- */

#define RULE_ROW(op, what_, flags_, image_, instance_, argv_, checkpoint_, handler)                          \
	[op] = {.what = what_,                                                                               \
		.flags = flags_,                                                                             \
		.image = image_,                                                                             \
		.instance = instance_,                                                                       \
		.argv = argv_,                                                                               \
		.checkpoint = checkpoint_},
static const struct ferry_op_rule rules[FERRY_OP_MAX_] = {FERRY_OP_TABLE(RULE_ROW)};

const struct ferry_op_rule *ferry_op_rule(uint32_t op)
{
	return op < FERRY_OP_MAX_ && rules[op].what ? &rules[op] : NULL;
}

/* ---- encoding ---- */

struct wbuf {
	char *data;
	size_t len, cap;
	bool too_big;
};

static void wbuf_done(struct wbuf *b)
{
	free(b->data);
}

static void put(struct wbuf *b, const void *p, size_t n)
{
	if (b->too_big || n == 0)
		return;
	if (n > FERRY_REQUEST_MAX - b->len) {
		b->too_big = true;
		return;
	}
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap - b->len < n)
			cap *= 2; /* at most 2 * FERRY_REQUEST_MAX: no overflow */
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void put_u32(struct wbuf *b, uint32_t v)
{
	unsigned char x[4];
	ferry_put_le32(x, v);
	put(b, x, sizeof(x));
}

static void put_header(struct wbuf *b, uint16_t tag, size_t len)
{
	if (len > FERRY_REQUEST_MAX) {
		b->too_big = true;
		return;
	}
	unsigned char x[2];
	ferry_put_le16(x, tag);
	put(b, x, sizeof(x));
	put_u32(b, (uint32_t)len);
}

static void put_u32_record(struct wbuf *b, uint16_t tag, uint32_t v)
{
	put_header(b, tag, 4);
	put_u32(b, v);
}

static void put_string(struct wbuf *b, uint16_t tag, const char *s)
{
	if (!s)
		return;
	size_t n = strlen(s);
	put_header(b, tag, n);
	put(b, s, n);
}

static void put_bind(struct wbuf *b, const struct ferry_bind *bind)
{
	size_t sn = strlen(bind->src), dn = strlen(bind->dst);
	if (sn > FERRY_REQUEST_MAX || dn > FERRY_REQUEST_MAX) {
		b->too_big = true;
		return;
	}
	put_header(b, TAG_BIND, 1 + 4 + sn + 4 + dn);
	unsigned char ro = bind->ro ? 1 : 0;
	put(b, &ro, 1);
	put_u32(b, (uint32_t)sn);
	put(b, bind->src, sn);
	put_u32(b, (uint32_t)dn);
	put(b, bind->dst, dn);
}

int ferry_request_encode(const struct ferry_request *req, char **ret_buf, size_t *ret_len,
			 struct ferry_error **err)
{
	if (!req || !ret_buf || !ret_len)
		return ferry_error_msg(err, EINVAL, "ferry_request_encode: missing argument");
	if (req->n_binds > 0 && !req->binds)
		return ferry_error_msg(err, EINVAL, "ferry_request_encode: %zu binds but no array",
				       req->n_binds);

	_cleanup_(wbuf_done) struct wbuf b = {0};
	put(&b, MAGIC, MAGIC_LEN);
	put_u32_record(&b, TAG_OP, req->op);
	put_u32_record(&b, TAG_FLAGS, req->flags);
	put_string(&b, TAG_IMAGE, req->image);
	put_string(&b, TAG_INSTANCE, req->instance);
	put_string(&b, TAG_CWD, req->cwd);
	put_string(&b, TAG_PWD, req->pwd);
	put_string(&b, TAG_HOSTNAME, req->hostname);
	put_string(&b, TAG_CHECKPOINT, req->checkpoint);
	put_string(&b, TAG_PAGE_SERVER, req->page_server);
	put_string(&b, TAG_NETWORKS, req->networks);
	put_string(&b, TAG_NETWORK_ARGS, req->network_args);
	put_string(&b, TAG_GROUP, req->group);
	for (char **a = req->argv; a && *a && !b.too_big; a++)
		put_string(&b, TAG_ARGV, *a);
	for (char **e = req->env; e && *e && !b.too_big; e++)
		put_string(&b, TAG_ENV, *e);
	for (size_t i = 0; i < req->n_binds && !b.too_big; i++) {
		if (!req->binds[i].src || !req->binds[i].dst)
			return ferry_error_msg(err, EINVAL,
					       "invalid request: bind %zu has no source or destination", i);
		put_bind(&b, &req->binds[i]);
	}
	put_header(&b, TAG_END, 0);
	if (b.too_big)
		return ferry_error_msg(err, E2BIG,
				       "invalid request: larger than %u bytes (too many arguments, "
				       "environment variables or binds)",
				       FERRY_REQUEST_MAX);

	/* Refuse to produce what the starter would refuse: the decoder's own rules (it ends with
	 * ferry_request_check, on what it decoded), on a shallow copy (the check fills in empty
	 * argv and env lists). */
	struct ferry_request copy = *req;
	int r = ferry_request_check(&copy, err);
	if (copy.argv != req->argv)
		free(copy.argv);
	if (copy.env != req->env)
		free(copy.env);
	if (r < 0)
		return r;

	*ret_len = b.len;
	*ret_buf = TAKE_PTR(b.data);
	return 0;
}

/* @s is an absolute path that fits PATH_MAX (what the field means is checked by the starter). */
int ferry_request_check_path(const char *s, const char *what, struct ferry_error **err)
{
	if (!s || s[0] != '/')
		return ferry_request_bad(err, "%s must be an absolute path", what);
	if (strlen(s) >= PATH_MAX)
		return ferry_request_bad(err, "%s is longer than %d bytes", what, PATH_MAX - 1);
	return 0;
}

bool ferry_path_canonical(const char *p)
{
	if (!p || p[0] != '/')
		return false;
	if (p[1] == '\0')
		return true;
	for (const char *c = p; *c;) {
		const char *name = c + 1;
		size_t len = strcspn(name, "/");
		if (len == 0 || (len == 1 && name[0] == '.') ||
		    (len == 2 && name[0] == '.' && name[1] == '.'))
			return false;
		c = name + len;
	}
	return true;
}

/* Bind destinations and the current directory (bound at its own path) are compared with the
 * starter's reserved paths (/proc, /dev, /.ferry ...) as strings: '//dev' or '/./proc' would
 * pass such a check and name the same place. Only their canonical form is taken. */
static int check_mount_paths(const struct ferry_request *req, struct ferry_error **err)
{
	if (req->cwd && !ferry_path_canonical(req->cwd))
		return ferry_request_bad(err, "cwd '%s' is not in canonical form", req->cwd);
	for (size_t i = 0; i < req->n_binds; i++)
		if (!ferry_path_canonical(req->binds[i].dst))
			return ferry_request_bad(
			    err,
			    "bind destination '%s' is not in canonical form: write it "
			    "without '//', '.' or '..' components and without a trailing '/'",
			    req->binds[i].dst);
	return 0;
}

/* What every field must be, whoever built the request: the decoder, or the starter's root side
 * from the plan its unprivileged child sent (see src/starter/plan.c). Simple bounded checks. */
static int check_fields(const struct ferry_request *req, size_t *ret_n_argv, struct ferry_error **err)
{
	if (!ferry_op_rule(req->op))
		return ferry_request_bad(err, "unknown op %" PRIu32, req->op);
	if (req->flags & ~(uint32_t)FERRY_REQ_ALL_)
		return ferry_request_bad(err, "unknown flags 0x%" PRIx32,
					 req->flags & ~(uint32_t)FERRY_REQ_ALL_);
	const struct {
		const char *v, *what;
		bool path;
	} scalars[] = {{req->image, "image", true},
		       {req->instance, "instance", false},
		       {req->cwd, "cwd", true},
		       {req->pwd, "pwd", true},
		       {req->hostname, "hostname", false},
		       {req->checkpoint, "checkpoint", true},
		       {req->page_server, "page_server", false},
		       {req->networks, "networks", false},
		       {req->network_args, "network_args", false},
		       {req->group, "group", false}};
	int r;
	for (size_t i = 0; i < ARRAY_SIZE(scalars); i++) {
		if (scalars[i].v && !*scalars[i].v)
			return ferry_request_bad(err, "empty %s", scalars[i].what);
		if (scalars[i].v && scalars[i].path &&
		    (r = ferry_request_check_path(scalars[i].v, scalars[i].what, err)) < 0)
			return r;
	}
	size_t n = 0;
	for (; req->argv && req->argv[n]; n++)
		if (n >= LIST_MAX)
			return ferry_request_bad(err, "more than %u argv entries", LIST_MAX);
	if (n > 0 && !*req->argv[0])
		return ferry_request_bad(err, "argv[0] is empty");
	*ret_n_argv = n;
	for (size_t i = 0; req->env && req->env[i]; i++) {
		if (i >= LIST_MAX)
			return ferry_request_bad(err, "more than %u env entries", LIST_MAX);
		const char *eq = strchr(req->env[i], '=');
		if (!eq || eq == req->env[i])
			return ferry_request_bad(err, "env entry %zu is not KEY=VALUE", i);
	}
	if (req->n_binds > LIST_MAX)
		return ferry_request_bad(err, "more than %u bind entries", LIST_MAX);
	for (size_t i = 0; i < req->n_binds; i++)
		if ((r = ferry_request_check_path(req->binds[i].src, "bind source", err)) < 0 ||
		    (r = ferry_request_check_path(req->binds[i].dst, "bind destination", err)) < 0)
			return r;
	return check_mount_paths(req, err);
}

int ferry_request_check(struct ferry_request *req, struct ferry_error **err)
{
	size_t n_argv = 0;
	int r = check_fields(req, &n_argv, err);
	if (r < 0)
		return r;

	const struct ferry_op_rule *rule = ferry_op_rule(req->op);
	bool launch = req->flags & FERRY_REQ_CRIU_LAUNCH, restart = req->flags & FERRY_REQ_CRIU_RESTART;
	static const struct {
		uint32_t flags;
		const char *msg;
	} homes[] = {
	    {FERRY_REQ_CRIU_LAUNCH | FERRY_REQ_CRIU_RESTART,
	     "--criu-launch and --criu-restart belong to instance start"},
	    {FERRY_REQ_NET, "--net belongs to instance start"},
	    {FERRY_REQ_LEAVE_RUNNING, "--leave-running belongs to checkpoint instance"},
	    {FERRY_REQ_SKIP_IN_FLIGHT, "--skip-in-flight belongs to checkpoint instance"},
	    {FERRY_REQ_TCP_CLOSE, "--tcp-close belongs to instance start --criu-restart and checkpoint "
				  "instance --restore"},
	};
	uint32_t refused = req->flags & ~(rule->flags | (uint32_t)FERRY_REQ_ANY_OP_);
	for (size_t i = 0; i < ARRAY_SIZE(homes); i++)
		if (refused & homes[i].flags)
			return ferry_request_bad(err, "%s", homes[i].msg);
	if (refused)
		return ferry_request_bad(err, "flags 0x%" PRIx32 " do not belong to %s", refused, rule->what);
	if (launch && restart)
		return ferry_request_bad(err, "--criu-launch and --criu-restart exclude each other");
	if ((req->flags & FERRY_REQ_TCP_CLOSE) && req->op == FERRY_OP_INSTANCE_START && !restart)
		return ferry_request_bad(err, "--tcp-close belongs to a restart (--criu-restart)");
	if ((req->networks || req->network_args || (req->flags & FERRY_REQ_NET_IPAM)) &&
	    !(req->flags & FERRY_REQ_NET))
		return ferry_request_bad(err, "--network and --network-args need --net");
	if (req->group && !ferry_group_ok(req->group))
		return ferry_request_bad(err, "a group is ID/N: 32 hex digits, a slash, 1 to %u",
					 FERRY_GROUP_MAX);
	if (req->group && !(req->flags & (FERRY_REQ_HOLD | FERRY_REQ_CRIU_RESTART)))
		return ferry_request_bad(err,
					 "a group belongs to a group checkpoint's member or its restart");
	if (req->page_server && req->op != FERRY_OP_CHECKPOINT_DUMP && !restart)
		return ferry_request_bad(err, "a page server belongs to a checkpoint dump or a restart");
	if ((req->flags & FERRY_REQ_LAZY) && !req->page_server)
		return ferry_request_bad(err,
					 "post-copy (lazy pages) needs a page server: it is a migration's");
	if ((req->flags & FERRY_REQ_LAZY) && (req->flags & FERRY_REQ_LEAVE_RUNNING))
		return ferry_request_bad(
		    err, "post-copy (lazy pages) moves the instance: not with --leave-running");

	enum ferry_field image = rule->image, instance = rule->instance, argv = rule->argv,
			 checkpoint = launch ? FERRY_FIELD_YES : rule->checkpoint;
	if (restart) {
		/* the rest comes from the checkpoint */
		if (n_argv > 0)
			return ferry_request_bad(
			    err, "a restart takes no command: it restores the checkpointed one");
		image = instance = FERRY_FIELD_OPT;
		checkpoint = FERRY_FIELD_YES;
	}
	if (instance == FERRY_FIELD_NO && req->instance)
		return ferry_request_bad(err, "an instance name is not expected for %s", rule->what);
	if (argv == FERRY_FIELD_NO && n_argv > 0)
		return ferry_request_bad(err, "argv is not expected for %s", rule->what);
	if (image == FERRY_FIELD_YES && !req->image)
		return ferry_request_bad(err, "no image");
	if (image == FERRY_FIELD_NO && req->image)
		return ferry_request_bad(err, "an image is not expected for this op");
	if (instance == FERRY_FIELD_YES && !req->instance)
		return ferry_request_bad(err, "no instance name");
	if (argv == FERRY_FIELD_YES && n_argv == 0)
		return ferry_request_bad(err, "no argv");
	if (checkpoint == FERRY_FIELD_YES && !req->checkpoint)
		return ferry_request_bad(err, "no checkpoint directory");
	if (checkpoint == FERRY_FIELD_NO && req->checkpoint)
		return ferry_request_bad(err, "a checkpoint directory is not expected for this op");

	if (!req->argv)
		req->argv = xzalloc(sizeof(char *));
	if (!req->env)
		req->env = xzalloc(sizeof(char *));
	return 0;
}

void ferry_bind_clear(struct ferry_bind *b)
{
	if (!b)
		return;
	free(b->src);
	free(b->dst);
	b->src = b->dst = NULL;
	b->ro = false;
}

void ferry_request_clear(struct ferry_request *req)
{
	free(req->image);
	free(req->instance);
	free(req->cwd);
	free(req->pwd);
	free(req->hostname);
	free(req->checkpoint);
	free(req->page_server);
	free(req->networks);
	free(req->network_args);
	free(req->group);

	strv_free(req->argv);
	strv_free(req->env);
	for (size_t i = 0; req->binds && i < req->n_binds; i++)
		ferry_bind_clear(&req->binds[i]);
	free(req->binds);
	memset(req, 0, sizeof(*req));
}

void ferry_request_free(struct ferry_request *req)
{
	if (!req)
		return;
	ferry_request_clear(req);
	free(req);
}

/* ---- --bind SRC[:DST[:ro|rw]] ---- */
