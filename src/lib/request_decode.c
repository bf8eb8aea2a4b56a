/* SPDX-License-Identifier: GPL-2.0-or-later */
/* request_decode.c — the decoder of the CLI -> starter request (request.h). It runs in ferry-plan,
 * as the caller, on bytes the caller controls, never in the setuid starter: root only re-checks
 * the fixed-layout plan ferry-plan sends. It never reads past @len: every length is compared
 * with what remains before it is used, lists and the total size are bounded, and the request is
 * accepted only when it ends with the END record exactly at @len, so no prefix of a valid
 * request is itself valid. */
#include <inttypes.h>
#include <limits.h>

#include "request.h"
#include "request_wire.h"

const char *ferry_request_tag_name(unsigned tag)
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
	case TAG_GROUP:
		return "group";
	case TAG_END:
		return "end";
	}
	return "unknown";
}

/* ---- decoding ---- */

/* Copies @n bytes at @d into a new string; they must not contain a NUL. */
static int get_string(const unsigned char *d, size_t n, unsigned tag, size_t off, char **ret,
		      struct ferry_error **err)
{
	if (memchr(d, '\0', n))
		return ferry_request_bad(err, "%s record at offset %zu contains a NUL byte",
					 ferry_request_tag_name(tag), off);
	*ret = xstrndup((const char *)d, n);
	return 0;
}

/* A scalar string field: at most once, non-empty; paths absolute. */
static int set_scalar(char **field, const unsigned char *d, size_t n, unsigned tag, size_t off, bool is_path,
		      struct ferry_error **err)
{
	if (*field)
		return ferry_request_bad(err, "%s record repeated at offset %zu", ferry_request_tag_name(tag),
					 off);
	if (n == 0)
		return ferry_request_bad(err, "empty %s at offset %zu", ferry_request_tag_name(tag), off);
	int r = get_string(d, n, tag, off, field, err);
	if (r < 0)
		return r;
	return is_path ? ferry_request_check_path(*field, ferry_request_tag_name(tag), err) : 0;
}

/* Appends to a NULL-terminated vector of *@n entries and room for *@cap pointers. */
static int push_string(char ***v, size_t *n, size_t *cap, const unsigned char *d, size_t len, unsigned tag,
		       size_t off, struct ferry_error **err)
{
	if (*n >= LIST_MAX)
		return ferry_request_bad(err, "more than %u %s entries", LIST_MAX,
					 ferry_request_tag_name(tag));
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
		return ferry_request_bad(err, "more than %u bind entries", LIST_MAX);
	if (n < 1 + 4 + 4)
		return ferry_request_bad(err, "bind record at offset %zu is too short", off);
	if (d[0] > 1)
		return ferry_request_bad(
		    err, "bind record at offset %zu has a read-only flag of %u (not 0 or 1)", off, d[0]);
	size_t pos = 1;
	size_t sn = ferry_get_le32(d + pos);
	pos += 4;
	if (sn > n - pos || n - pos - sn < 4)
		return ferry_request_bad(err, "bind record at offset %zu: source length beyond the record",
					 off);
	const unsigned char *src = d + pos;
	pos += sn;
	size_t dn = ferry_get_le32(d + pos);
	pos += 4;
	if (dn != n - pos)
		return ferry_request_bad(
		    err, "bind record at offset %zu: destination length does not match the record", off);
	const unsigned char *dst = d + pos;
	if (sn == 0 || dn == 0)
		return ferry_request_bad(err, "bind record at offset %zu has an empty path", off);

	_cleanup_free_ char *s = NULL;
	_cleanup_free_ char *t = NULL;
	int r = get_string(src, sn, TAG_BIND, off, &s, err);
	if (r < 0)
		return r;
	r = get_string(dst, dn, TAG_BIND, off, &t, err);
	if (r < 0)
		return r;
	r = ferry_request_check_path(s, "bind source", err);
	if (r < 0)
		return r;
	r = ferry_request_check_path(t, "bind destination", err);
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
			return ferry_request_bad(err, "%s record repeated at offset %zu",
						 ferry_request_tag_name(tag), off);
		if (n != 4)
			return ferry_request_bad(err, "%s record at offset %zu is %zu bytes long, not 4",
						 ferry_request_tag_name(tag), off, n);
		*have = true;
		uint32_t v = ferry_get_le32(d);
		if (tag == TAG_OP) {
			if (!ferry_op_rule(v))
				return ferry_request_bad(err, "unknown op %" PRIu32, v);
			req->op = v;
		} else {
			if (v & ~(uint32_t)FERRY_REQ_ALL_)
				return ferry_request_bad(err, "unknown flags 0x%" PRIx32,
							 v & ~(uint32_t)FERRY_REQ_ALL_);
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
	case TAG_GROUP:
		return set_scalar(&req->group, d, n, tag, off, false, err);
	case TAG_ARGV:
		if (st->n_argv == 0 && n == 0)
			return ferry_request_bad(err, "argv[0] is empty");
		return push_string(&req->argv, &st->n_argv, &st->cap_argv, d, n, tag, off, err);
	case TAG_ENV: {
		const unsigned char *eq = memchr(d, '=', n);
		if (!eq || eq == d)
			return ferry_request_bad(err, "env entry %zu at offset %zu is not KEY=VALUE",
						 st->n_env, off);
		return push_string(&req->env, &st->n_env, &st->cap_env, d, n, tag, off, err);
	}
	case TAG_BIND:
		return decode_bind(req, &st->cap_binds, d, n, off, err);
	case TAG_END:
		if (n != 0)
			return ferry_request_bad(err, "end record at offset %zu is not empty", off);
		st->ended = true;
		return 0;
	}
	return ferry_request_bad(err, "unknown record tag %u at offset %zu", tag, off);
}

int ferry_request_decode(const char *buf, size_t len, struct ferry_request **ret, struct ferry_error **err)
{
	if (!ret)
		return ferry_error_msg(err, EINVAL, "ferry_request_decode: no result pointer");
	if (!buf && len > 0)
		return ferry_error_msg(err, EINVAL, "ferry_request_decode: no buffer");
	if (len > FERRY_REQUEST_MAX)
		return ferry_request_bad(err, "larger than %u bytes", FERRY_REQUEST_MAX);
	if (len < MAGIC_LEN || memcmp(buf, MAGIC, MAGIC_LEN) != 0)
		return ferry_request_bad(err,
					 "bad magic (not a ferry request, or from another ferry version)");

	const unsigned char *p = (const unsigned char *)buf;
	_cleanup_(ferry_request_freep) struct ferry_request *req = xzalloc(sizeof(*req));
	struct decode_state st = {0};
	size_t pos = MAGIC_LEN;
	while (pos < len) {
		if (st.ended)
			return ferry_request_bad(err, "data after the end record at offset %zu", pos);
		size_t off = pos;
		if (len - pos < RECORD_HEADER)
			return ferry_request_bad(err, "truncated record header at offset %zu", off);
		unsigned tag = ferry_get_le16(p + pos);
		size_t n = ferry_get_le32(p + pos + 2);
		pos += RECORD_HEADER;
		if (n > len - pos)
			return ferry_request_bad(err,
						 "%s record at offset %zu is %zu bytes long, beyond the end",
						 ferry_request_tag_name(tag), off, n);
		int r = decode_record(req, &st, tag, p + pos, n, off, err);
		if (r < 0)
			return r;
		pos += n;
	}
	if (!st.ended)
		return ferry_request_bad(err, "truncated (no end record)");
	if (!st.have_op)
		return ferry_request_bad(err, "no op");
	int r = ferry_request_check(req, err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(req);
	return 0;
}
