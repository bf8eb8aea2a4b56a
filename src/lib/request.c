/* SPDX-License-Identifier: GPL-2.0-or-later */
/* request.c — the CLI -> starter request: an explicit byte-wise little-endian TLV encoding.
 *
 * The decoder runs in the setuid starter on bytes the caller controls. It never reads past @len:
 * every length is compared with what remains before it is used, lists and the total size are
 * bounded, and the request is accepted only when it ends with the END record exactly at @len, so
 * no prefix of a valid request is itself valid. */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>

#include "request.h"

#define MAGIC "FERRYRQ1"
#define MAGIC_LEN 8
#define RECORD_HEADER 6 /* u16 tag + u32 length */
#define LIST_MAX 4096u

enum tag {
	TAG_OP = 1, /* u32 */
	TAG_FLAGS = 2, /* u32 */
	TAG_IMAGE = 3, /* string */
	TAG_INSTANCE = 4, /* string */
	TAG_CWD = 5, /* string */
	TAG_PWD = 6, /* string */
	TAG_HOSTNAME = 7, /* string */
	TAG_ARGV = 8, /* string, repeated */
	TAG_ENV = 9, /* string, repeated */
	TAG_BIND = 10, /* u8 ro (0|1), u32 srclen, src, u32 dstlen, dst; repeated */
	TAG_CHECKPOINT = 11, /* string, absolute path */
	TAG_PAGE_SERVER = 12, /* string */
	TAG_NETWORKS = 13, /* string */
	TAG_NETWORK_ARGS = 14, /* string */
	TAG_END = 0xffff, /* empty, last */
};

static const char *tag_name(unsigned tag)
{
	switch (tag) {
	case TAG_OP:
		return "op";
	case TAG_FLAGS:
		return "flags";
	case TAG_IMAGE:
		return "image";
	case TAG_INSTANCE:
		return "instance";
	case TAG_CWD:
		return "cwd";
	case TAG_PWD:
		return "pwd";
	case TAG_HOSTNAME:
		return "hostname";
	case TAG_ARGV:
		return "argv";
	case TAG_ENV:
		return "env";
	case TAG_BIND:
		return "bind";
	case TAG_CHECKPOINT:
		return "checkpoint";
	case TAG_PAGE_SERVER:
		return "page_server";
	case TAG_NETWORKS:
		return "networks";
	case TAG_NETWORK_ARGS:
		return "network_args";
	case TAG_END:
		return "end";
	}
	return "unknown";
}

static int bad(struct ferry_error **err, const char *fmt, ...) _printf_(2, 3);
static int bad(struct ferry_error **err, const char *fmt, ...)
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

	/* Refuse to produce what the starter would refuse: one set of rules, in the decoder. */
	_cleanup_(ferry_request_freep) struct ferry_request *check = NULL;
	int r = ferry_request_decode(b.data, b.len, &check, err);
	if (r < 0)
		return r;

	*ret_len = b.len;
	*ret_buf = TAKE_PTR(b.data);
	return 0;
}

/* ---- decoding ---- */

/* Copies @n bytes at @d into a new string; they must not contain a NUL. */
static int get_string(const unsigned char *d, size_t n, unsigned tag, size_t off, char **ret,
		      struct ferry_error **err)
{
	if (memchr(d, '\0', n))
		return bad(err, "%s record at offset %zu contains a NUL byte", tag_name(tag), off);
	*ret = xstrndup((const char *)d, n);
	return 0;
}

/* @s is an absolute path that fits PATH_MAX (what the field means is checked by the starter). */
static int check_path(const char *s, const char *what, struct ferry_error **err)
{
	if (!s || s[0] != '/')
		return bad(err, "%s must be an absolute path", what);
	if (strlen(s) >= PATH_MAX)
		return bad(err, "%s is longer than %d bytes", what, PATH_MAX - 1);
	return 0;
}

/* A scalar string field: at most once, non-empty; paths absolute. */
static int set_scalar(char **field, const unsigned char *d, size_t n, unsigned tag, size_t off, bool is_path,
		      struct ferry_error **err)
{
	if (*field)
		return bad(err, "%s record repeated at offset %zu", tag_name(tag), off);
	if (n == 0)
		return bad(err, "empty %s at offset %zu", tag_name(tag), off);
	int r = get_string(d, n, tag, off, field, err);
	if (r < 0)
		return r;
	return is_path ? check_path(*field, tag_name(tag), err) : 0;
}

/* Appends to a NULL-terminated vector of *@n entries and room for *@cap pointers. */
static int push_string(char ***v, size_t *n, size_t *cap, const unsigned char *d, size_t len, unsigned tag,
		       size_t off, struct ferry_error **err)
{
	if (*n >= LIST_MAX)
		return bad(err, "more than %u %s entries", LIST_MAX, tag_name(tag));
	char *s = NULL;
	int r = get_string(d, len, tag, off, &s, err);
	if (r < 0)
		return r;
	if (*n + 2 > *cap) {
		*cap = *cap ? *cap * 2 : 8;
		*v = xrealloc(*v, *cap * sizeof(char *));
	}
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
	return 0;
}

static int decode_bind(struct ferry_request *req, size_t *cap, const unsigned char *d, size_t n, size_t off,
		       struct ferry_error **err)
{
	if (req->n_binds >= LIST_MAX)
		return bad(err, "more than %u bind entries", LIST_MAX);
	if (n < 1 + 4 + 4)
		return bad(err, "bind record at offset %zu is too short", off);
	if (d[0] > 1)
		return bad(err, "bind record at offset %zu has a read-only flag of %u (not 0 or 1)", off,
			   d[0]);
	size_t pos = 1;
	size_t sn = ferry_get_le32(d + pos);
	pos += 4;
	if (sn > n - pos || n - pos - sn < 4)
		return bad(err, "bind record at offset %zu: source length beyond the record", off);
	const unsigned char *src = d + pos;
	pos += sn;
	size_t dn = ferry_get_le32(d + pos);
	pos += 4;
	if (dn != n - pos)
		return bad(err, "bind record at offset %zu: destination length does not match the record",
			   off);
	const unsigned char *dst = d + pos;
	if (sn == 0 || dn == 0)
		return bad(err, "bind record at offset %zu has an empty path", off);

	_cleanup_free_ char *s = NULL;
	_cleanup_free_ char *t = NULL;
	int r = get_string(src, sn, TAG_BIND, off, &s, err);
	if (r < 0)
		return r;
	r = get_string(dst, dn, TAG_BIND, off, &t, err);
	if (r < 0)
		return r;
	r = check_path(s, "bind source", err);
	if (r < 0)
		return r;
	r = check_path(t, "bind destination", err);
	if (r < 0)
		return r;

	if (req->n_binds + 1 > *cap) {
		*cap = *cap ? *cap * 2 : 4;
		req->binds = xrealloc(req->binds, *cap * sizeof(*req->binds));
	}
	req->binds[req->n_binds++] = (struct ferry_bind){.src = TAKE_PTR(s), .dst = TAKE_PTR(t), .ro = d[0]};
	return 0;
}

struct decode_state {
	bool have_op, have_flags, ended;
	size_t n_argv, cap_argv, n_env, cap_env, cap_binds;
};

static int decode_record(struct ferry_request *req, struct decode_state *st, unsigned tag,
			 const unsigned char *d, size_t n, size_t off, struct ferry_error **err)
{
	switch (tag) {
	case TAG_OP:
	case TAG_FLAGS: {
		bool *have = tag == TAG_OP ? &st->have_op : &st->have_flags;
		if (*have)
			return bad(err, "%s record repeated at offset %zu", tag_name(tag), off);
		if (n != 4)
			return bad(err, "%s record at offset %zu is %zu bytes long, not 4", tag_name(tag),
				   off, n);
		*have = true;
		uint32_t v = ferry_get_le32(d);
		if (tag == TAG_OP) {
			if (!ferry_op_rule(v))
				return bad(err, "unknown op %" PRIu32, v);
			req->op = v;
		} else {
			if (v & ~(uint32_t)FERRY_REQ_ALL_)
				return bad(err, "unknown flags 0x%" PRIx32, v & ~(uint32_t)FERRY_REQ_ALL_);
			req->flags = v;
		}
		return 0;
	}
	case TAG_IMAGE:
		return set_scalar(&req->image, d, n, tag, off, true, err);
	case TAG_INSTANCE:
		return set_scalar(&req->instance, d, n, tag, off, false, err);
	case TAG_CWD:
		return set_scalar(&req->cwd, d, n, tag, off, true, err);
	case TAG_PWD:
		return set_scalar(&req->pwd, d, n, tag, off, true, err);
	case TAG_HOSTNAME:
		return set_scalar(&req->hostname, d, n, tag, off, false, err);
	case TAG_CHECKPOINT:
		return set_scalar(&req->checkpoint, d, n, tag, off, true, err);
	case TAG_PAGE_SERVER:
		return set_scalar(&req->page_server, d, n, tag, off, false, err);
	case TAG_NETWORKS:
		return set_scalar(&req->networks, d, n, tag, off, false, err);
	case TAG_NETWORK_ARGS:
		return set_scalar(&req->network_args, d, n, tag, off, false, err);
	case TAG_ARGV:
		if (st->n_argv == 0 && n == 0)
			return bad(err, "argv[0] is empty");
		return push_string(&req->argv, &st->n_argv, &st->cap_argv, d, n, tag, off, err);
	case TAG_ENV: {
		const unsigned char *eq = memchr(d, '=', n);
		if (!eq || eq == d)
			return bad(err, "env entry %zu at offset %zu is not KEY=VALUE", st->n_env, off);
		return push_string(&req->env, &st->n_env, &st->cap_env, d, n, tag, off, err);
	}
	case TAG_BIND:
		return decode_bind(req, &st->cap_binds, d, n, off, err);
	case TAG_END:
		if (n != 0)
			return bad(err, "end record at offset %zu is not empty", off);
		st->ended = true;
		return 0;
	}
	return bad(err, "unknown record tag %u at offset %zu", tag, off);
}

/* What every field must be, whoever built the request: the decoder, or the starter's root side
 * from the plan its unprivileged child sent (see src/starter/plan.c). Simple bounded checks. */
static int check_fields(const struct ferry_request *req, size_t *ret_n_argv, struct ferry_error **err)
{
	if (!ferry_op_rule(req->op))
		return bad(err, "unknown op %" PRIu32, req->op);
	if (req->flags & ~(uint32_t)FERRY_REQ_ALL_)
		return bad(err, "unknown flags 0x%" PRIx32, req->flags & ~(uint32_t)FERRY_REQ_ALL_);
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
		       {req->network_args, "network_args", false}};
	int r;
	for (size_t i = 0; i < ARRAY_SIZE(scalars); i++) {
		if (scalars[i].v && !*scalars[i].v)
			return bad(err, "empty %s", scalars[i].what);
		if (scalars[i].v && scalars[i].path &&
		    (r = check_path(scalars[i].v, scalars[i].what, err)) < 0)
			return r;
	}
	size_t n = 0;
	for (; req->argv && req->argv[n]; n++)
		if (n >= LIST_MAX)
			return bad(err, "more than %u argv entries", LIST_MAX);
	if (n > 0 && !*req->argv[0])
		return bad(err, "argv[0] is empty");
	*ret_n_argv = n;
	for (size_t i = 0; req->env && req->env[i]; i++) {
		if (i >= LIST_MAX)
			return bad(err, "more than %u env entries", LIST_MAX);
		const char *eq = strchr(req->env[i], '=');
		if (!eq || eq == req->env[i])
			return bad(err, "env entry %zu is not KEY=VALUE", i);
	}
	if (req->n_binds > LIST_MAX)
		return bad(err, "more than %u bind entries", LIST_MAX);
	for (size_t i = 0; i < req->n_binds; i++)
		if ((r = check_path(req->binds[i].src, "bind source", err)) < 0 ||
		    (r = check_path(req->binds[i].dst, "bind destination", err)) < 0)
			return r;
	return 0;
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
	};
	uint32_t refused = req->flags & ~(rule->flags | (uint32_t)FERRY_REQ_ANY_OP_);
	for (size_t i = 0; i < ARRAY_SIZE(homes); i++)
		if (refused & homes[i].flags)
			return bad(err, "%s", homes[i].msg);
	if (refused)
		return bad(err, "flags 0x%" PRIx32 " do not belong to %s", refused, rule->what);
	if (launch && restart)
		return bad(err, "--criu-launch and --criu-restart exclude each other");
	if ((req->networks || req->network_args) && !(req->flags & FERRY_REQ_NET))
		return bad(err, "--network and --network-args need --net");
	if (req->page_server && req->op != FERRY_OP_CHECKPOINT_DUMP && !restart)
		return bad(err, "a page server belongs to a checkpoint dump or a restart");

	enum ferry_field image = rule->image, instance = rule->instance, argv = rule->argv,
			 checkpoint = launch ? FERRY_FIELD_YES : rule->checkpoint;
	if (restart) {
		/* the rest comes from the checkpoint */
		if (n_argv > 0)
			return bad(err, "a restart takes no command: it restores the checkpointed one");
		image = instance = FERRY_FIELD_OPT;
		checkpoint = FERRY_FIELD_YES;
	}
	if (instance == FERRY_FIELD_NO && req->instance)
		return bad(err, "an instance name is not expected for %s", rule->what);
	if (argv == FERRY_FIELD_NO && n_argv > 0)
		return bad(err, "argv is not expected for %s", rule->what);
	if (image == FERRY_FIELD_YES && !req->image)
		return bad(err, "no image");
	if (image == FERRY_FIELD_NO && req->image)
		return bad(err, "an image is not expected for this op");
	if (instance == FERRY_FIELD_YES && !req->instance)
		return bad(err, "no instance name");
	if (argv == FERRY_FIELD_YES && n_argv == 0)
		return bad(err, "no argv");
	if (checkpoint == FERRY_FIELD_YES && !req->checkpoint)
		return bad(err, "no checkpoint directory");
	if (checkpoint == FERRY_FIELD_NO && req->checkpoint)
		return bad(err, "a checkpoint directory is not expected for this op");

	if (!req->argv)
		req->argv = xzalloc(sizeof(char *));
	if (!req->env)
		req->env = xzalloc(sizeof(char *));
	return 0;
}

int ferry_request_decode(const char *buf, size_t len, struct ferry_request **ret, struct ferry_error **err)
{
	if (!ret)
		return ferry_error_msg(err, EINVAL, "ferry_request_decode: no result pointer");
	if (!buf && len > 0)
		return ferry_error_msg(err, EINVAL, "ferry_request_decode: no buffer");
	if (len > FERRY_REQUEST_MAX)
		return bad(err, "larger than %u bytes", FERRY_REQUEST_MAX);
	if (len < MAGIC_LEN || memcmp(buf, MAGIC, MAGIC_LEN) != 0)
		return bad(err, "bad magic (not a ferry request, or from another ferry version)");

	const unsigned char *p = (const unsigned char *)buf;
	_cleanup_(ferry_request_freep) struct ferry_request *req = xzalloc(sizeof(*req));
	struct decode_state st = {0};
	size_t pos = MAGIC_LEN;
	while (pos < len) {
		if (st.ended)
			return bad(err, "data after the end record at offset %zu", pos);
		size_t off = pos;
		if (len - pos < RECORD_HEADER)
			return bad(err, "truncated record header at offset %zu", off);
		unsigned tag = ferry_get_le16(p + pos);
		size_t n = ferry_get_le32(p + pos + 2);
		pos += RECORD_HEADER;
		if (n > len - pos)
			return bad(err, "%s record at offset %zu is %zu bytes long, beyond the end",
				   tag_name(tag), off, n);
		int r = decode_record(req, &st, tag, p + pos, n, off, err);
		if (r < 0)
			return r;
		pos += n;
	}
	if (!st.ended)
		return bad(err, "truncated (no end record)");
	if (!st.have_op)
		return bad(err, "no op");
	int r = ferry_request_check(req, err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(req);
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

int ferry_bind_parse(const char *spec, struct ferry_bind *ret, struct ferry_error **err)
{
	static const char usage[] = "use SRC[:DST[:ro|rw]]";
	if (!ret)
		return ferry_error_msg(err, EINVAL, "ferry_bind_parse: no result pointer");
	*ret = (struct ferry_bind){0};
	if (!spec || !*spec)
		return ferry_error_msg(err, EINVAL, "empty bind spec: %s", usage);

	const char *c1 = strchr(spec, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (c2 && strchr(c2 + 1, ':'))
		return ferry_error_msg(err, EINVAL, "bind spec '%s' has too many ':': %s", spec, usage);

	size_t sn = c1 ? (size_t)(c1 - spec) : strlen(spec);
	if (sn == 0)
		return ferry_error_msg(err, EINVAL, "bind spec '%s' has an empty source: %s", spec, usage);
	if (sn >= PATH_MAX)
		return ferry_error_msg(err, ENAMETOOLONG, "bind source in '%s' is too long", spec);

	_cleanup_free_ char *src = xstrndup(spec, sn);
	_cleanup_free_ char *dst = NULL;
	bool ro = false;
	if (c1) {
		size_t dn = c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
		if (dn == 0)
			return ferry_error_msg(err, EINVAL, "bind spec '%s' has an empty destination: %s",
					       spec, usage);
		if (dn >= PATH_MAX)
			return ferry_error_msg(err, ENAMETOOLONG, "bind destination in '%s' is too long",
					       spec);
		dst = xstrndup(c1 + 1, dn);
		if (dst[0] != '/')
			return ferry_error_msg(
			    err, EINVAL, "bind destination '%s' in '%s' must be an absolute path", dst, spec);
	} else {
		dst = xstrdup(src);
	}
	if (c2) {
		const char *opt = c2 + 1;
		if (!*opt)
			return ferry_error_msg(err, EINVAL, "bind spec '%s' has an empty option: %s", spec,
					       usage);
		if (streq(opt, "ro"))
			ro = true;
		else if (!streq(opt, "rw"))
			return ferry_error_msg(err, EINVAL, "unknown bind option '%s' in '%s' (use ro or rw)",
					       opt, spec);
	}

	ret->src = TAKE_PTR(src);
	ret->dst = TAKE_PTR(dst);
	ret->ro = ro;
	return 0;
}
