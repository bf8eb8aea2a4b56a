/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <limits.h>

#include "request.h"

/* ---- helpers ---- */

static char *argv_full[] = {"/usr/bin/lmp", "-in", "in.lj", "", "arg with spaces", NULL};
static char *env_full[] = {"PATH=/usr/bin:/bin", "EMPTY=", "A==b", "LANG=C.UTF-8", NULL};
static struct ferry_bind binds_full[] = {
    {.src = "/data", .dst = "/data", .ro = false},
    {.src = "/srv/ro", .dst = "/mnt/ro", .ro = true},
};

static struct ferry_request full_request(void)
{
	return (struct ferry_request){
	    .op = FERRY_OP_INSTANCE_START,
	    .flags = FERRY_REQ_CONTAIN | FERRY_REQ_CLEANENV | FERRY_REQ_NO_HOME,
	    .image = "/home/u/lammps.sif",
	    .instance = "lmp1",
	    .cwd = "/home/u/run",
	    .pwd = "/work",
	    .hostname = "node-a",
	    .argv = argv_full,
	    .env = env_full,
	    .binds = binds_full,
	    .n_binds = ARRAY_SIZE(binds_full),
	};
}

static void encode_ok(const struct ferry_request *req, char **buf, size_t *len)
{
	struct ferry_error *err = NULL;
	int r = ferry_request_encode(req, buf, len, &err);
	if (r < 0)
		fail_msg("encode failed: %s", err ? err->message : "(no message)");
	assert_null(err);
}

static void assert_str_eq_or_null(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_strv_eq(char **a, char **b)
{
	size_t n = strv_length(b);
	assert_non_null(a);
	assert_int_equal(strv_length(a), n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(a[i], b[i]);
	assert_null(a[n]);
}

static void assert_request_eq(const struct ferry_request *a, const struct ferry_request *b)
{
	assert_int_equal(a->op, b->op);
	assert_int_equal(a->flags, b->flags);
	assert_str_eq_or_null(a->image, b->image);
	assert_str_eq_or_null(a->instance, b->instance);
	assert_str_eq_or_null(a->cwd, b->cwd);
	assert_str_eq_or_null(a->pwd, b->pwd);
	assert_str_eq_or_null(a->hostname, b->hostname);
	assert_strv_eq(a->argv, b->argv);
	assert_strv_eq(a->env, b->env);
	assert_int_equal(a->n_binds, b->n_binds);
	for (size_t i = 0; i < b->n_binds; i++) {
		assert_string_equal(a->binds[i].src, b->binds[i].src);
		assert_string_equal(a->binds[i].dst, b->binds[i].dst);
		assert_int_equal(a->binds[i].ro, b->binds[i].ro);
	}
}

/* Decoding must fail with EBADMSG and a message containing @want. */
static void decode_bad(const void *buf, size_t len, const char *want)
{
	struct ferry_request *req = NULL;
	_cleanup_error_ struct ferry_error *err = NULL;
	int r = ferry_request_decode(buf, len, &req, &err);
	if (r >= 0)
		fail_msg("decode accepted (expected '%s')", want);
	assert_null(req);
	assert_non_null(err);
	assert_int_equal(err->code, EBADMSG);
	assert_int_equal(r, -EBADMSG);
	assert_non_null(strstr(err->message, "invalid request: "));
	if (!strstr(err->message, want))
		fail_msg("message '%s' lacks '%s'", err->message, want);
}

/* Encoding must fail with @code and a message containing @want. */
static void encode_bad(const struct ferry_request *req, int code, const char *want)
{
	char *buf = NULL;
	size_t len = 0;
	_cleanup_error_ struct ferry_error *err = NULL;
	int r = ferry_request_encode(req, &buf, &len, &err);
	if (r >= 0)
		fail_msg("encode accepted (expected '%s')", want);
	assert_int_equal(r, -code);
	assert_null(buf);
	if (!strstr(err->message, want))
		fail_msg("message '%s' lacks '%s'", err->message, want);
}

/* A hand-built encoding. */
struct tb {
	unsigned char *p;
	size_t len, cap;
};

static void tb_put(struct tb *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = xrealloc(b->p, b->cap);
	}
	if (n)
		memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void tb_u16(struct tb *b, uint16_t v)
{
	unsigned char x[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
	tb_put(b, x, 2);
}

static void tb_u32(struct tb *b, uint32_t v)
{
	unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 24)};
	tb_put(b, x, 4);
}

static void tb_rec(struct tb *b, uint16_t tag, const void *d, size_t n)
{
	tb_u16(b, tag);
	tb_u32(b, (uint32_t)n);
	tb_put(b, d, n);
}

static void tb_str(struct tb *b, uint16_t tag, const char *s)
{
	tb_rec(b, tag, s, strlen(s));
}

static void tb_u32rec(struct tb *b, uint16_t tag, uint32_t v)
{
	tb_u16(b, tag);
	tb_u32(b, 4);
	tb_u32(b, v);
}

static void tb_bind(struct tb *b, unsigned char ro, const char *src, const char *dst)
{
	size_t sn = strlen(src), dn = strlen(dst);
	tb_u16(b, 10);
	tb_u32(b, (uint32_t)(1 + 4 + sn + 4 + dn));
	tb_put(b, &ro, 1);
	tb_u32(b, (uint32_t)sn);
	tb_put(b, src, sn);
	tb_u32(b, (uint32_t)dn);
	tb_put(b, dst, dn);
}

static void tb_end(struct tb *b)
{
	tb_rec(b, 0xffff, NULL, 0);
}

/* Magic + op EXEC + image + argv "sh": the start of a valid request, no END yet. */
static struct tb tb_exec(void)
{
	struct tb b = {0};
	tb_put(&b, "FERRYRQ1", 8);
	tb_u32rec(&b, 1, FERRY_OP_EXEC);
	tb_str(&b, 3, "/img.sif");
	tb_str(&b, 8, "sh");
	return b;
}

static void tb_free(struct tb *b)
{
	free(b->p);
}

static void tb_decode_ok(struct tb *b)
{
	struct ferry_request *req = NULL;
	struct ferry_error *err = NULL;
	if (ferry_request_decode((char *)b->p, b->len, &req, &err) < 0)
		fail_msg("decode failed: %s", err->message);
	ferry_request_free(req);
}

/* ---- round trips ---- */

static void test_round_trip_full(void **state)
{
	struct ferry_request in = full_request();
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	encode_ok(&in, &buf, &len);
	assert_true(len > 8);
	assert_memory_equal(buf, "FERRYRQ1", 8);

	_cleanup_(ferry_request_freep) struct ferry_request *out = NULL;
	struct ferry_error *err = NULL;
	assert_int_equal(ferry_request_decode(buf, len, &out, &err), 0);
	assert_request_eq(out, &in);

	/* Encoding the decoded request gives the same bytes. */
	_cleanup_free_ char *buf2 = NULL;
	size_t len2 = 0;
	encode_ok(out, &buf2, &len2);
	assert_int_equal(len2, len);
	assert_memory_equal(buf2, buf, len);
}

static void test_round_trip_each_op(void **state)
{
	static char *one[] = {"true", NULL};
	static char *none[] = {NULL};
	struct ferry_request reqs[] = {
	    {.op = FERRY_OP_EXEC, .image = "/i", .argv = one},
	    {.op = FERRY_OP_INSTANCE_START, .image = "/i", .instance = "x", .argv = one},
	    {.op = FERRY_OP_INSTANCE_START, .image = "/i", .instance = "x"}, /* idle */
	    {.op = FERRY_OP_INSTANCE_START, .image = "/i", .instance = "x", .argv = none}, /* idle */
	    {.op = FERRY_OP_INSTANCE_JOIN, .instance = "x", .argv = one},
	    {.op = FERRY_OP_INSTANCE_LIST},
	    {.op = FERRY_OP_INSTANCE_LIST, .instance = "x", .env = none},
	};
	for (size_t i = 0; i < ARRAY_SIZE(reqs); i++) {
		_cleanup_free_ char *buf = NULL;
		size_t len = 0;
		encode_ok(&reqs[i], &buf, &len);
		_cleanup_(ferry_request_freep) struct ferry_request *out = NULL;
		assert_int_equal(ferry_request_decode(buf, len, &out, NULL), 0);
		assert_int_equal(out->op, reqs[i].op);
		assert_int_equal(out->flags, 0);
		assert_str_eq_or_null(out->image, reqs[i].image);
		assert_str_eq_or_null(out->instance, reqs[i].instance);
		assert_null(out->cwd);
		assert_null(out->pwd);
		assert_null(out->hostname);
		/* argv and env are never NULL after decoding. */
		assert_non_null(out->argv);
		assert_non_null(out->env);
		assert_null(out->env[0]);
		assert_int_equal(strv_length(out->argv), strv_length(reqs[i].argv));
		assert_int_equal(out->n_binds, 0);
	}
}

static void test_round_trip_odd_strings(void **state)
{
	/* Bytes that a NUL-delimited or text format would trip on. */
	static char *argv[] = {"\x01\x02\xff", "a\nb", "=", "FERRYRQ1", "\xff\xff\x00", NULL};
	static char *env[] = {"K=\n\xff", "K2=a=b", NULL};
	struct ferry_bind binds[] = {{.src = "/a:b", .dst = "/c,d", .ro = true}};
	struct ferry_request in = {
	    .op = FERRY_OP_EXEC,
	    .image = "/\xc3\xa9",
	    .argv = argv,
	    .env = env,
	    .binds = binds,
	    .n_binds = 1,
	    .hostname = "h\xff",
	};
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	encode_ok(&in, &buf, &len);
	_cleanup_(ferry_request_freep) struct ferry_request *out = NULL;
	assert_int_equal(ferry_request_decode(buf, len, &out, NULL), 0);
	assert_request_eq(out, &in);
}

static void test_golden_bytes(void **state)
{
	/* Pins the wire format: explicit little-endian, tags, END. */
	static char *argv[] = {"sh", NULL};
	struct ferry_bind bind = {.src = "/a", .dst = "/b", .ro = true};
	struct ferry_request in = {
	    .op = FERRY_OP_EXEC,
	    .flags = FERRY_REQ_CLEANENV,
	    .image = "/i",
	    .argv = argv,
	    .binds = &bind,
	    .n_binds = 1,
	};
	static const unsigned char want[] = {
	    'F',  'E',	'R', 'R', 'Y', 'R', 'Q', '1', 1, 0, 4, 0,   0,	 0, 1, 0, 0, 0, /* op = 1 */
	    2,	  0,	4,   0,	  0,   0,   2,	 0,   0, 0, /* flags = CLEANENV */
	    3,	  0,	2,   0,	  0,   0,   '/', 'i', /* image */
	    8,	  0,	2,   0,	  0,   0,   's', 'h', /* argv */
	    10,	  0,	13,  0,	  0,   0,   1,	 2,   0, 0, 0, '/', 'a', 2, 0, 0, 0, '/', 'b', /* bind */
	    0xff, 0xff, 0,   0,	  0,   0, /* end */
	};
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	encode_ok(&in, &buf, &len);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
}

static void test_hand_built_valid(void **state)
{
	/* Record order is free; flags may be absent. */
	struct tb b = {0};
	tb_put(&b, "FERRYRQ1", 8);
	tb_str(&b, 8, "sh");
	tb_str(&b, 9, "A=1");
	tb_bind(&b, 0, "/x", "/y");
	tb_str(&b, 3, "/img");
	tb_str(&b, 8, "-c");
	tb_u32rec(&b, 1, FERRY_OP_EXEC);
	tb_end(&b);
	_cleanup_(ferry_request_freep) struct ferry_request *req = NULL;
	assert_int_equal(ferry_request_decode((char *)b.p, b.len, &req, NULL), 0);
	assert_string_equal(req->argv[0], "sh");
	assert_string_equal(req->argv[1], "-c");
	assert_string_equal(req->env[0], "A=1");
	assert_int_equal(req->flags, 0);
	assert_int_equal(req->n_binds, 1);
	assert_false(req->binds[0].ro);
	tb_free(&b);
}

/* ---- decoder rejections ---- */

static void test_every_prefix_rejected(void **state)
{
	struct ferry_request in = full_request();
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	encode_ok(&in, &buf, &len);
	for (size_t n = 0; n < len; n++) {
		/* A fresh allocation of exactly n bytes, so ASan catches any read past it. */
		char *p = xmalloc(n);
		memcpy(p, buf, n);
		struct ferry_request *out = NULL;
		_cleanup_error_ struct ferry_error *err = NULL;
		int r = ferry_request_decode(n ? p : NULL, n, &out, &err);
		if (r >= 0)
			fail_msg("prefix of %zu of %zu bytes accepted", n, len);
		assert_null(out);
		assert_non_null(err);
		free(p);
	}
	/* Extra bytes after END too. */
	for (size_t extra = 1; extra < 8; extra++) {
		char *p = xzalloc(len + extra);
		memcpy(p, buf, len);
		decode_bad(p, len + extra, "after the end record");
		free(p);
	}
}

static void test_byte_flips(void **state)
{
	struct ferry_request in = full_request();
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	encode_ok(&in, &buf, &len);
	static const unsigned char masks[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff};
	static const unsigned char values[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, '/', '='};
	size_t accepted = 0, total = 0;
	char *p = xmalloc(len);
	for (size_t i = 0; i < len; i++) {
		for (size_t k = 0; k < ARRAY_SIZE(masks) + ARRAY_SIZE(values); k++) {
			memcpy(p, buf, len);
			if (k < ARRAY_SIZE(masks))
				p[i] = (char)((unsigned char)p[i] ^ masks[k]);
			else
				p[i] = (char)values[k - ARRAY_SIZE(masks)];
			struct ferry_request *out = NULL;
			struct ferry_error *err = NULL;
			int r = ferry_request_decode(p, len, &out, &err);
			total++;
			if (r == 0) {
				/* Whatever is accepted must still satisfy the decoder's rules on re-encode. */
				accepted++;
				assert_null(err);
				char *again = NULL;
				size_t alen = 0;
				encode_ok(out, &again, &alen);
				free(again);
				ferry_request_free(out);
			} else {
				assert_non_null(err);
				assert_null(out);
				ferry_error_free(err);
			}
		}
	}
	free(p);
	/* Flipping a byte inside a string keeps many encodings valid; header flips never do. */
	assert_true(accepted > 0 && accepted < total);
}

static void test_magic_and_size(void **state)
{
	decode_bad("", 0, "bad magic");
	decode_bad("FERRYRQ", 7, "bad magic");
	decode_bad("FERRYRQ2", 8, "bad magic");
	decode_bad("ferryrq1", 8, "bad magic");
	decode_bad("FERRYRQ1", 8, "no end record");
	decode_bad(NULL, 0, "bad magic");

	/* Over the maximum, even if well-formed otherwise: refused before looking. */
	size_t big = FERRY_REQUEST_MAX + 1;
	char *p = xzalloc(big);
	memcpy(p, "FERRYRQ1", 8);
	decode_bad(p, big, "larger than 1048576 bytes");
	free(p);

	struct ferry_request *req = NULL;
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_request_decode(NULL, 5, &req, &err), -EINVAL);
	assert_int_equal(ferry_request_decode("FERRYRQ1", 8, NULL, NULL), -EINVAL);
}

static void test_record_framing(void **state)
{
	struct tb b = tb_exec();
	/* Header cut short. */
	tb_u16(&b, 8);
	tb_put(&b, "\x01\x00", 2);
	decode_bad(b.p, b.len, "truncated record header");
	tb_free(&b);

	/* Length beyond the buffer, including near-UINT32_MAX lengths that would overflow a sum. */
	static const uint32_t lens[] = {3, 100, 0x7fffffff, 0xfffffff9, 0xfffffffa, 0xffffffff};
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		b = tb_exec();
		tb_u16(&b, 8);
		tb_u32(&b, lens[i]);
		tb_put(&b, "ab", 2);
		decode_bad(b.p, b.len, "beyond the end");
		tb_free(&b);
	}

	/* Unknown tags, including 0. */
	static const uint16_t tags[] = {0, 16, 17, 0x100, 0xfffe};
	for (size_t i = 0; i < ARRAY_SIZE(tags); i++) {
		b = tb_exec();
		tb_rec(&b, tags[i], "x", 1);
		tb_end(&b);
		decode_bad(b.p, b.len, "unknown record tag");
		tb_free(&b);
	}

	/* END not empty, END twice, records after END. */
	b = tb_exec();
	tb_rec(&b, 0xffff, "x", 1);
	decode_bad(b.p, b.len, "end record at offset");
	tb_free(&b);
	b = tb_exec();
	tb_end(&b);
	tb_end(&b);
	decode_bad(b.p, b.len, "data after the end record");
	tb_free(&b);
	b = tb_exec();
	tb_end(&b);
	tb_str(&b, 8, "x");
	decode_bad(b.p, b.len, "data after the end record");
	tb_free(&b);

	/* Valid baseline. */
	b = tb_exec();
	tb_end(&b);
	tb_decode_ok(&b);
	tb_free(&b);
}

static void test_scalars(void **state)
{
	struct tb b;
	/* op: size, range, repeats, absence. */
	static const uint32_t bad_ops[] = {0, 8, 0xffffffff, 0x100};
	for (size_t i = 0; i < ARRAY_SIZE(bad_ops); i++) {
		b = (struct tb){0};
		tb_put(&b, "FERRYRQ1", 8);
		tb_u32rec(&b, 1, bad_ops[i]);
		tb_str(&b, 8, "sh");
		tb_end(&b);
		decode_bad(b.p, b.len, "unknown op");
		tb_free(&b);
	}
	b = tb_exec();
	tb_u32rec(&b, 1, FERRY_OP_EXEC);
	tb_end(&b);
	decode_bad(b.p, b.len, "op record repeated");
	tb_free(&b);
	b = tb_exec();
	tb_rec(&b, 2, "\0\0\0", 3);
	tb_end(&b);
	decode_bad(b.p, b.len, "flags record at offset");
	tb_free(&b);
	b = tb_exec();
	tb_rec(&b, 2, "\0\0\0\0\0", 5);
	tb_end(&b);
	decode_bad(b.p, b.len, "is 5 bytes long, not 4");
	tb_free(&b);
	b = (struct tb){0};
	tb_put(&b, "FERRYRQ1", 8);
	tb_str(&b, 3, "/img");
	tb_str(&b, 8, "sh");
	tb_end(&b);
	decode_bad(b.p, b.len, "no op");
	tb_free(&b);

	/* flags: unknown bits, repeats. */
	static const uint32_t bad_flags[] = {1u << 19, 1u << 31, 0xffffffff, FERRY_REQ_ALL_ + 1};
	for (size_t i = 0; i < ARRAY_SIZE(bad_flags); i++) {
		b = tb_exec();
		tb_u32rec(&b, 2, bad_flags[i]);
		tb_end(&b);
		decode_bad(b.p, b.len, "unknown flags");
		tb_free(&b);
	}
	b = tb_exec();
	tb_u32rec(&b, 2, 0);
	tb_u32rec(&b, 2, 0);
	tb_end(&b);
	decode_bad(b.p, b.len, "flags record repeated");
	tb_free(&b);

	/* Strings: repeats, emptiness, NULs, relative paths, length. */
	static const uint16_t str_tags[] = {3, 4, 5, 6, 7};
	for (size_t i = 0; i < ARRAY_SIZE(str_tags); i++) {
		b = tb_exec();
		if (str_tags[i] != 3)
			tb_str(&b, str_tags[i], "/x");
		tb_str(&b, str_tags[i], "/y");
		tb_end(&b);
		decode_bad(b.p, b.len, "record repeated");
		tb_free(&b);

		b = (struct tb){0};
		tb_put(&b, "FERRYRQ1", 8);
		tb_u32rec(&b, 1, FERRY_OP_INSTANCE_START);
		tb_str(&b, 8, "sh");
		tb_rec(&b, str_tags[i], "", 0);
		tb_end(&b);
		decode_bad(b.p, b.len, "empty ");
		tb_free(&b);

		b = (struct tb){0};
		tb_put(&b, "FERRYRQ1", 8);
		tb_u32rec(&b, 1, FERRY_OP_INSTANCE_START);
		tb_rec(&b, str_tags[i], "/a\0b", 4);
		tb_end(&b);
		decode_bad(b.p, b.len, "contains a NUL byte");
		tb_free(&b);
	}
	static const uint16_t path_tags[] = {3, 5, 6};
	static const char *const rel[] = {"img.sif", "./x", " /x", "~/x"};
	for (size_t i = 0; i < ARRAY_SIZE(path_tags); i++) {
		for (size_t k = 0; k < ARRAY_SIZE(rel); k++) {
			b = (struct tb){0};
			tb_put(&b, "FERRYRQ1", 8);
			tb_u32rec(&b, 1, FERRY_OP_INSTANCE_START);
			tb_str(&b, path_tags[i], rel[k]);
			tb_end(&b);
			decode_bad(b.p, b.len, "must be an absolute path");
			tb_free(&b);
		}
		char *longp = xmalloc(PATH_MAX + 1);
		memset(longp, 'a', PATH_MAX);
		longp[0] = '/';
		longp[PATH_MAX] = '\0';
		b = (struct tb){0};
		tb_put(&b, "FERRYRQ1", 8);
		tb_u32rec(&b, 1, FERRY_OP_INSTANCE_START);
		tb_str(&b, path_tags[i], longp);
		tb_end(&b);
		decode_bad(b.p, b.len, "is longer than 4095 bytes");
		tb_free(&b);
		longp[PATH_MAX - 1] = '\0'; /* 4095 bytes: fine */
		b = tb_exec();
		if (path_tags[i] != 3)
			tb_str(&b, path_tags[i], longp);
		tb_end(&b);
		tb_decode_ok(&b);
		tb_free(&b);
		free(longp);
	}
}

static void test_lists(void **state)
{
	struct tb b;
	/* argv[0] empty; later empty arguments are fine. */
	b = (struct tb){0};
	tb_put(&b, "FERRYRQ1", 8);
	tb_u32rec(&b, 1, FERRY_OP_EXEC);
	tb_str(&b, 3, "/i");
	tb_str(&b, 8, "");
	tb_str(&b, 8, "x");
	tb_end(&b);
	decode_bad(b.p, b.len, "argv[0] is empty");
	tb_free(&b);
	b = tb_exec();
	tb_str(&b, 8, "");
	tb_end(&b);
	tb_decode_ok(&b);
	tb_free(&b);
	b = tb_exec();
	tb_rec(&b, 8, "a\0", 2);
	tb_end(&b);
	decode_bad(b.p, b.len, "argv record at offset");
	tb_free(&b);

	/* env. */
	static const char *const bad_env[] = {"", "=", "=x", "NOEQUALS", "\n"};
	for (size_t i = 0; i < ARRAY_SIZE(bad_env); i++) {
		b = tb_exec();
		tb_str(&b, 9, bad_env[i]);
		tb_end(&b);
		decode_bad(b.p, b.len, "is not KEY=VALUE");
		tb_free(&b);
	}
	b = tb_exec();
	tb_rec(&b, 9, "A=\0", 3);
	tb_end(&b);
	decode_bad(b.p, b.len, "env record at offset");
	tb_free(&b);

	/* 4096 entries of each list are fine, 4097 are not. */
	static const uint16_t list_tags[] = {8, 9, 10};
	for (size_t i = 0; i < ARRAY_SIZE(list_tags); i++) {
		for (unsigned n = 4096; n <= 4097; n++) {
			b = (struct tb){0};
			tb_put(&b, "FERRYRQ1", 8);
			tb_u32rec(&b, 1, FERRY_OP_EXEC);
			tb_str(&b, 3, "/i");
			if (list_tags[i] != 8)
				tb_str(&b, 8, "sh");
			for (unsigned k = 0; k < n; k++) {
				if (list_tags[i] == 8)
					tb_str(&b, 8, "a");
				else if (list_tags[i] == 9)
					tb_str(&b, 9, "A=1");
				else
					tb_bind(&b, 1, "/s", "/d");
			}
			tb_end(&b);
			if (n == 4096) {
				tb_decode_ok(&b);
			} else {
				decode_bad(b.p, b.len, "more than 4096");
			}
			tb_free(&b);
		}
	}
}

static void test_binds(void **state)
{
	struct tb b;
	/* ro byte. */
	static const unsigned char bad_ro[] = {2, 0x80, 0xff};
	for (size_t i = 0; i < ARRAY_SIZE(bad_ro); i++) {
		b = tb_exec();
		tb_bind(&b, bad_ro[i], "/a", "/b");
		tb_end(&b);
		decode_bad(b.p, b.len, "read-only flag");
		tb_free(&b);
	}
	/* Empty or relative paths, NULs. */
	static const char *const pairs[][3] = {
	    {"", "/b", "empty path"},
	    {"/a", "", "empty path"},
	    {"a", "/b", "bind source must be an absolute path"},
	    {"/a", "b", "bind destination must be an absolute path"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(pairs); i++) {
		b = tb_exec();
		tb_bind(&b, 0, pairs[i][0], pairs[i][1]);
		tb_end(&b);
		decode_bad(b.p, b.len, pairs[i][2]);
		tb_free(&b);
	}
	b = tb_exec();
	tb_u16(&b, 10);
	tb_u32(&b, 1 + 4 + 3 + 4 + 2);
	tb_put(&b, "\0\3\0\0\0/\0a\2\0\0\0/b", 14);
	tb_end(&b);
	decode_bad(b.p, b.len, "contains a NUL byte");
	tb_free(&b);

	/* Inner lengths that do not add up: too short, source beyond, destination beyond/short,
	 * trailing bytes, and lengths near UINT32_MAX. */
	struct {
		uint32_t rec, src, dst;
		const char *want;
	} shapes[] = {
	    {0, 0, 0, "too short"},
	    {8, 0, 0, "too short"},
	    {9, 0, 0, "destination length does not match"},
	    {13, 100, 2, "source length beyond"},
	    {13, 0xffffffff, 2, "source length beyond"},
	    {13, 0xfffffffc, 2, "source length beyond"},
	    {13, 5, 2, "source length beyond"}, /* leaves < 4 bytes for dstlen */
	    {13, 2, 3, "destination length does not match"},
	    {13, 2, 1, "destination length does not match"},
	    {13, 2, 0xffffffff, "destination length does not match"},
	    {14, 2, 2, "destination length does not match"}, /* one trailing byte */
	};
	for (size_t i = 0; i < ARRAY_SIZE(shapes); i++) {
		b = tb_exec();
		tb_u16(&b, 10);
		tb_u32(&b, shapes[i].rec);
		struct tb inner = {0};
		unsigned char ro = 0;
		tb_put(&inner, &ro, 1);
		tb_u32(&inner, shapes[i].src);
		tb_put(&inner, "/a", 2);
		tb_u32(&inner, shapes[i].dst);
		tb_put(&inner, "/bXXXXXXXX", 10);
		size_t take = shapes[i].rec < inner.len ? shapes[i].rec : inner.len;
		tb_put(&b, inner.p, take);
		tb_free(&inner);
		tb_end(&b);
		decode_bad(b.p, b.len, shapes[i].want);
		tb_free(&b);
	}
}

static void test_op_rules(void **state)
{
	struct {
		uint32_t op;
		bool image, instance, argv;
		const char *want; /* NULL: accepted */
	} cases[] = {
	    {FERRY_OP_EXEC, true, false, true, NULL},
	    {FERRY_OP_EXEC, false, false, true, "no image"},
	    {FERRY_OP_EXEC, true, true, true, "an instance name is not expected for exec"},
	    {FERRY_OP_EXEC, true, false, false, "no argv"},
	    {FERRY_OP_INSTANCE_START, true, true, true, NULL},
	    {FERRY_OP_INSTANCE_START, true, true, false, NULL},
	    {FERRY_OP_INSTANCE_START, false, true, true, "no image"},
	    {FERRY_OP_INSTANCE_START, true, false, true, "no instance name"},
	    {FERRY_OP_INSTANCE_JOIN, false, true, true, NULL},
	    {FERRY_OP_INSTANCE_JOIN, false, false, true, "no instance name"},
	    {FERRY_OP_INSTANCE_JOIN, true, true, true, "an image is not expected"},
	    {FERRY_OP_INSTANCE_JOIN, false, true, false, "no argv"},
	    {FERRY_OP_INSTANCE_LIST, false, false, false, NULL},
	    {FERRY_OP_INSTANCE_LIST, false, true, false, NULL},
	    {FERRY_OP_INSTANCE_LIST, false, false, true, "argv is not expected"},
	    {FERRY_OP_INSTANCE_LIST, true, false, false, "an image is not expected"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct tb b = {0};
		tb_put(&b, "FERRYRQ1", 8);
		tb_u32rec(&b, 1, cases[i].op);
		if (cases[i].image)
			tb_str(&b, 3, "/img");
		if (cases[i].instance)
			tb_str(&b, 4, "inst");
		if (cases[i].argv)
			tb_str(&b, 8, "sh");
		tb_end(&b);
		if (cases[i].want)
			decode_bad(b.p, b.len, cases[i].want);
		else
			tb_decode_ok(&b);
		tb_free(&b);

		/* The encoder applies the same rules. */
		static char *one[] = {"sh", NULL};
		struct ferry_request req = {
		    .op = cases[i].op,
		    .image = cases[i].image ? "/img" : NULL,
		    .instance = cases[i].instance ? "inst" : NULL,
		    .argv = cases[i].argv ? one : NULL,
		};
		if (cases[i].want) {
			encode_bad(&req, EBADMSG, cases[i].want);
		} else {
			_cleanup_free_ char *buf = NULL;
			size_t len = 0;
			encode_ok(&req, &buf, &len);
		}
	}
}

/* The starter's root side re-checks a request it built from a plan (no decoding) with
 * ferry_request_check: the op table's rules, and every field's. */
static void check_bad(struct ferry_request *req, const char *want)
{
	struct ferry_error *err = NULL;
	assert_true(ferry_request_check(req, &err) < 0);
	assert_non_null(err);
	if (!strstr(err->message, want))
		fail_msg("'%s' does not contain '%s'", err->message, want);
	ferry_error_free(err);
}

static void test_path_canonical(void **state)
{
	const char *good[] = {"/", "/a", "/a/b", "/.ferry", "/a/..b", "/a/b.", "/.../x"};
	const char *bad[] = {NULL,   "",      "a",     "//dev", "/./proc",  "/dev/", "/a//b",
			     "/a/.", "/a/..", "/../x", "//",	"/.ferry/", "/a/./b"};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		assert_true(ferry_path_canonical(good[i]));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_false(ferry_path_canonical(bad[i]));

	static char *one[] = {"sh", NULL}, *none[] = {NULL};
	struct ferry_bind binds[] = {{.src = "/a", .dst = "//.ferry"}};
	struct ferry_request r = {
	    .op = FERRY_OP_EXEC, .image = "/img", .argv = one, .env = none, .binds = binds, .n_binds = 1};
	check_bad(&r, "bind destination '//.ferry' is not in canonical form");
	binds[0].dst = "/.ferry";
	assert_int_equal(ferry_request_check(&r, NULL), 0);
	r.cwd = "/home/u/./x";
	check_bad(&r, "cwd '/home/u/./x' is not in canonical form");
}

static void test_request_check(void **state)
{
	static char *one[] = {"sh", NULL}, *empty0[] = {"", NULL}, *badenv[] = {"=x", NULL};
	/* every op has a row */
	for (uint32_t op = FERRY_OP_EXEC; op < FERRY_OP_MAX_; op++)
		assert_non_null(ferry_op_rule(op));
	assert_null(ferry_op_rule(0));
	assert_null(ferry_op_rule(FERRY_OP_MAX_));
	assert_string_equal(ferry_op_rule(FERRY_OP_EXEC)->what, "exec");

	struct ferry_request ok = {.op = FERRY_OP_EXEC, .image = "/img", .argv = one, .env = badenv + 1};
	assert_int_equal(ferry_request_check(&ok, NULL), 0);
	struct ferry_request r = ok;
	r.op = 99;
	check_bad(&r, "unknown op 99");
	r = ok;
	r.flags = FERRY_REQ_NET;
	check_bad(&r, "--net belongs to instance start");
	r = ok;
	r.flags = FERRY_REQ_LEAVE_RUNNING;
	check_bad(&r, "--leave-running belongs to checkpoint instance");
	r = ok;
	r.flags = 1u << 20;
	check_bad(&r, "unknown flags");
	/* post-copy is a migration's: a dump through a page server that moves the instance */
	struct ferry_request lz = {
	    .op = FERRY_OP_CHECKPOINT_DUMP, .instance = "job", .flags = FERRY_REQ_LAZY};
	check_bad(&lz, "post-copy (lazy pages) needs a page server");
	lz.page_server = "ferryd:nodeB";
	assert_int_equal(ferry_request_check(&lz, NULL), 0);
	free(lz.argv);
	free(lz.env);
	lz.argv = lz.env = NULL;
	lz.flags |= FERRY_REQ_LEAVE_RUNNING;
	check_bad(&lz, "not with --leave-running");
	/* a group's cut: ID/N, on a held member's dump or a restart only; round trip */
	struct ferry_request gr = {.op = FERRY_OP_CHECKPOINT_DUMP,
				   .instance = "job",
				   .flags = FERRY_REQ_HOLD,
				   .group = "0123456789abcdef0123456789abcdef/3"};
	char *gbuf = NULL;
	size_t glen = 0;
	encode_ok(&gr, &gbuf, &glen);
	struct ferry_request *gdec = NULL;
	assert_int_equal(ferry_request_decode(gbuf, glen, &gdec, NULL), 0);
	assert_string_equal(gdec->group, gr.group);
	ferry_request_free(gdec);
	free(gbuf);
	gr.flags = 0;
	check_bad(&gr, "a group belongs to a group checkpoint's member or its restart");
	static const char *const bad_groups[] = {
	    "0123456789abcdef0123456789abcdef",	   "0123456789abcdef/3",
	    "0123456789abcdef0123456789abcdeF/3",  "0123456789abcdef0123456789abcdef/0",
	    "0123456789abcdef0123456789abcdef/03", "0123456789abcdef0123456789abcdef/65537",
	    "0123456789abcdef0123456789abcdef/+3"};
	for (size_t i = 0; i < ARRAY_SIZE(bad_groups); i++) {
		gr.flags = FERRY_REQ_HOLD;
		gr.group = (char *)bad_groups[i];
		check_bad(&gr, "a group is ID/N");
	}
	r = ok;
	r.flags = FERRY_REQ_LAZY;
	check_bad(&r, "do not belong to exec");
	r = ok;
	r.image = "img";
	check_bad(&r, "image must be an absolute path");
	r = ok;
	r.hostname = "";
	check_bad(&r, "empty hostname");
	r = ok;
	r.argv = empty0;
	check_bad(&r, "argv[0] is empty");
	r = ok;
	r.env = badenv;
	check_bad(&r, "env entry 0 is not KEY=VALUE");
	struct ferry_bind rel = {.src = "rel", .dst = "/d"};
	r = ok;
	r.binds = &rel;
	r.n_binds = 1;
	check_bad(&r, "bind source must be an absolute path");
	/* a restart takes its fields from its checkpoint */
	struct ferry_request restart = {.op = FERRY_OP_INSTANCE_START,
					.flags = FERRY_REQ_CRIU_RESTART,
					.checkpoint = "/ck",
					.argv = one + 1,
					.env = one + 1};
	assert_int_equal(ferry_request_check(&restart, NULL), 0);
	restart.argv = one;
	check_bad(&restart, "a restart takes no command");
	restart.argv = one + 1;
	restart.checkpoint = NULL;
	check_bad(&restart, "no checkpoint directory");
	/* a dump may name a checkpoint (a migration's), a restore may not */
	struct ferry_request dump = {.op = FERRY_OP_CHECKPOINT_DUMP, .instance = "i", .checkpoint = "/ck"};
	assert_int_equal(ferry_request_check(&dump, NULL), 0);
	free(dump.argv);
	free(dump.env);
	dump.argv = dump.env = NULL;
	dump.op = FERRY_OP_CHECKPOINT_RESTORE;
	check_bad(&dump, "a checkpoint directory is not expected");
}

/* ---- encoder ---- */

static void test_encode_errors(void **state)
{
	static char *one[] = {"sh", NULL};
	char *buf = NULL;
	size_t len = 0;
	struct ferry_request req = {.op = FERRY_OP_EXEC, .image = "/i", .argv = one};
	_cleanup_error_ struct ferry_error *err = NULL;

	assert_int_equal(ferry_request_encode(NULL, &buf, &len, &err), -EINVAL);
	ferry_error_freep(&err);
	assert_int_equal(ferry_request_encode(&req, NULL, &len, NULL), -EINVAL);
	assert_int_equal(ferry_request_encode(&req, &buf, NULL, NULL), -EINVAL);

	req.n_binds = 1;
	encode_bad(&req, EINVAL, "binds but no array");
	struct ferry_bind nodst = {.src = "/a"};
	req.binds = &nodst;
	encode_bad(&req, EINVAL, "bind 0 has no source or destination");
	req.binds = NULL;
	req.n_binds = 0;

	req.op = 0;
	encode_bad(&req, EBADMSG, "unknown op 0");
	req.op = FERRY_OP_MAX_;
	encode_bad(&req, EBADMSG, "unknown op");
	req.op = FERRY_OP_EXEC;
	req.flags = 1u << 19;
	encode_bad(&req, EBADMSG, "unknown flags 0x80000");
	req.flags = 0;
	req.image = "rel.sif";
	encode_bad(&req, EBADMSG, "image must be an absolute path");
	req.image = "";
	encode_bad(&req, EBADMSG, "empty image");
	req.image = "/i";
	static char *badenv[] = {"NOVALUE", NULL};
	req.env = badenv;
	encode_bad(&req, EBADMSG, "is not KEY=VALUE");
	req.env = NULL;
	static char *emptyarg0[] = {"", NULL};
	req.argv = emptyarg0;
	encode_bad(&req, EBADMSG, "argv[0] is empty");
	req.argv = one;

	/* Too large. */
	size_t n = 3000;
	char **many = xzalloc((n + 1) * sizeof(char *));
	char *arg = xmalloc(1000);
	memset(arg, 'x', 999);
	arg[999] = '\0';
	for (size_t i = 0; i < n; i++)
		many[i] = arg;
	req.argv = many;
	encode_bad(&req, E2BIG, "larger than 1048576 bytes");
	/* Too many entries, though small. */
	n = 5000;
	many = xrealloc(many, (n + 1) * sizeof(char *));
	for (size_t i = 0; i < n; i++)
		many[i] = "a";
	many[n] = NULL;
	req.argv = many;
	encode_bad(&req, EBADMSG, "more than 4096 argv entries");
	free(arg);
	free(many);

	/* A single string over the limit. */
	size_t big = FERRY_REQUEST_MAX + 10;
	char *huge = xmalloc(big + 1);
	memset(huge, '/', big);
	huge[big] = '\0';
	req.argv = one;
	req.cwd = huge;
	encode_bad(&req, E2BIG, "larger than");
	req.cwd = NULL;
	struct ferry_bind hb = {.src = huge, .dst = "/d"};
	req.binds = &hb;
	req.n_binds = 1;
	encode_bad(&req, E2BIG, "larger than");
	free(huge);
}

static void test_frees(void **state)
{
	ferry_request_free(NULL);
	struct ferry_request *r = NULL;
	ferry_request_freep(&r);
	ferry_bind_clear(NULL);
	struct ferry_bind b = {.src = xstrdup("/a"), .dst = xstrdup("/b"), .ro = true};
	ferry_bind_clear(&b);
	assert_null(b.src);
	assert_null(b.dst);
	assert_false(b.ro);
}

/* ---- --bind specs ---- */

static void bind_ok(const char *spec, const char *src, const char *dst, bool ro)
{
	struct ferry_bind b = {0};
	struct ferry_error *err = NULL;
	if (ferry_bind_parse(spec, &b, &err) < 0)
		fail_msg("'%s' rejected: %s", spec, err->message);
	assert_string_equal(b.src, src);
	assert_string_equal(b.dst, dst);
	assert_int_equal(b.ro, ro);
	ferry_bind_clear(&b);
}

static void bind_bad(const char *spec, const char *want)
{
	struct ferry_bind b = {.src = (char *)"junk"};
	_cleanup_error_ struct ferry_error *err = NULL;
	int r = ferry_bind_parse(spec, &b, &err);
	if (r >= 0)
		fail_msg("'%s' accepted", spec ? spec : "(null)");
	assert_true(r == -EINVAL || r == -ENAMETOOLONG);
	assert_null(b.src);
	assert_null(b.dst);
	if (!strstr(err->message, want))
		fail_msg("message '%s' lacks '%s'", err->message, want);
}

static void test_bind_parse(void **state)
{
	bind_ok("/data", "/data", "/data", false);
	bind_ok("/data:/mnt", "/data", "/mnt", false);
	bind_ok("/data:/mnt:ro", "/data", "/mnt", true);
	bind_ok("/data:/mnt:rw", "/data", "/mnt", false);
	bind_ok("data:/mnt", "data", "/mnt", false); /* the caller resolves SRC */
	bind_ok("./d", "./d", "./d", false); /* dst defaults to SRC as given */
	bind_ok("/a b:/c d", "/a b", "/c d", false);

	bind_bad(NULL, "empty bind spec");
	bind_bad("", "empty bind spec");
	bind_bad(":/mnt", "has an empty source");
	bind_bad(":", "has an empty source");
	bind_bad("/data:", "has an empty destination");
	bind_bad("/data::ro", "has an empty destination");
	bind_bad("/data:/mnt:", "has an empty option");
	bind_bad("/data:/mnt:ro:x", "too many ':'");
	bind_bad("/a:/b:/c:/d", "too many ':'");
	bind_bad(":::", "too many ':'");
	bind_bad("/data:/mnt:RO", "unknown bind option 'RO'");
	bind_bad("/data:/mnt:nosuid", "unknown bind option 'nosuid'");
	bind_bad("/data:/mnt:ro,nosuid", "unknown bind option");
	bind_bad("/data:mnt", "bind destination 'mnt' in '/data:mnt' must be an absolute path");
	bind_bad("/data:./mnt:ro", "must be an absolute path");
	bind_bad("/data://dev", "must be written without '//'");
	bind_bad("/data:/./proc", "must be written without '//'");
	bind_bad("/data:/mnt/", "without a trailing '/'");
	bind_bad("/data:/a/../dev:ro", "must be written without");

	char *longp = xmalloc(PATH_MAX + 8);
	memset(longp, 'a', PATH_MAX + 4);
	longp[0] = '/';
	longp[PATH_MAX + 4] = '\0';
	bind_bad(longp, "too long");
	free(longp);

	assert_int_equal(ferry_bind_parse("/a", NULL, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip_full),
	    cmocka_unit_test(test_round_trip_each_op),
	    cmocka_unit_test(test_round_trip_odd_strings),
	    cmocka_unit_test(test_golden_bytes),
	    cmocka_unit_test(test_hand_built_valid),
	    cmocka_unit_test(test_every_prefix_rejected),
	    cmocka_unit_test(test_byte_flips),
	    cmocka_unit_test(test_magic_and_size),
	    cmocka_unit_test(test_record_framing),
	    cmocka_unit_test(test_scalars),
	    cmocka_unit_test(test_lists),
	    cmocka_unit_test(test_binds),
	    cmocka_unit_test(test_op_rules),
	    cmocka_unit_test(test_path_canonical),
	    cmocka_unit_test(test_request_check),
	    cmocka_unit_test(test_encode_errors),
	    cmocka_unit_test(test_frees),
	    cmocka_unit_test(test_bind_parse),
	};
	return cmocka_run_group_tests_name("request", tests, NULL, NULL);
}
