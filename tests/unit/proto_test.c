/* SPDX-License-Identifier: GPL-2.0-or-later */
/* proto: ferryd's wire protocol (src/lib/proto.c): ferry_msg set/get, the strict parser, and
 * send/recv over socketpairs (framing, truncation, oversized length prefixes, timeouts). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "fs.h"
#include "proto.h"

#define MAGIC "ferry-proto 1\n"

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* parse @s (a payload, without the length prefix) */
static int parse_str(const char *s, size_t len, struct ferry_msg *m, struct ferry_error **err)
{
	*m = (struct ferry_msg){0};
	return ferry_msg_parse(s, len, m, err);
}

/* expect @payload refused by the parser, with EPROTO (or EMSGSIZE-like errors for length) */
static void refused(const char *payload, size_t len)
{
	struct ferry_msg m = {0};
	_cleanup_error_ struct ferry_error *err = NULL;
	int r = parse_str(payload, len, &m, &err);
	if (r >= 0)
		fail_msg("accepted: '%.*s'", (int)(len > 200 ? 200 : len), payload);
	assert_non_null(err);
	assert_non_null(err->message);
	assert_int_equal(m.n, 0);
}

static void accepted(const char *payload, size_t len, struct ferry_msg *m)
{
	_cleanup_error_ struct ferry_error *err = NULL;
	int r = parse_str(payload, len, m, &err);
	if (r < 0)
		fail_msg("refused (%s): '%.*s'", err ? err->message : "?", (int)(len > 200 ? 200 : len),
			 payload);
	assert_null(err);
}

static void refused_s(const char *payload)
{
	refused(payload, strlen(payload));
}

/* The wire bytes of @m: what ferry_msg_send writes. */
static char *wire_of(const struct ferry_msg *m, size_t *ret_len)
{
	int sv[2];
	pair(sv);
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_msg_send(sv[0], m, &err), 0);
	close(sv[0]);
	size_t cap = FERRY_PROTO_MAX + 16, len = 0;
	char *buf = xmalloc(cap);
	for (;;) {
		ssize_t n = read(sv[1], buf + len, cap - len);
		assert_true(n >= 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(sv[1]);
	*ret_len = len;
	return buf;
}

static void assert_same(const struct ferry_msg *a, const struct ferry_msg *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		assert_string_equal(a->keys[i], b->keys[i]);
		assert_string_equal(a->vals[i], b->vals[i]);
	}
}

static void put_len(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* ---------------------------------------------------------------- set / get */

static void test_set_get(void **state)
{
	struct ferry_msg m = {0};
	ferry_msg_set(&m, "type", "migrate");
	ferry_msg_set(&m, "instance", "%s", "job1");
	ferry_msg_set(&m, "uid", "%u", 1001u);
	assert_int_equal(m.n, 3);
	assert_string_equal(ferry_msg_get(&m, "type"), "migrate");
	assert_string_equal(ferry_msg_get(&m, "uid"), "1001");
	assert_null(ferry_msg_get(&m, "to"));
	assert_null(ferry_msg_get(&m, "typ"));
	/* a set of an existing key replaces it, in place */
	ferry_msg_set(&m, "type", "report");
	assert_int_equal(m.n, 3);
	assert_string_equal(m.keys[0], "type");
	assert_string_equal(ferry_msg_get(&m, "type"), "report");
	/* control characters (newline above all: it would start a forged field) become spaces */
	ferry_msg_set(&m, "message",
		      "a\nuid=0\r\tb\x01\x7f"
		      "c");
	assert_string_equal(ferry_msg_get(&m, "message"), "a uid=0  b  c");
	/* too long values are cut at FERRY_PROTO_VALUE_MAX */
	char *big = xmalloc(FERRY_PROTO_VALUE_MAX + 101);
	memset(big, 'x', FERRY_PROTO_VALUE_MAX + 100);
	big[FERRY_PROTO_VALUE_MAX + 100] = '\0';
	ferry_msg_set(&m, "big", "%s", big);
	assert_int_equal(strlen(ferry_msg_get(&m, "big")), FERRY_PROTO_VALUE_MAX);
	free(big);
	/* the empty value is a value */
	ferry_msg_set(&m, "empty", "%s", "");
	assert_string_equal(ferry_msg_get(&m, "empty"), "");
	ferry_msg_clear(&m);
	assert_int_equal(m.n, 0);
	assert_null(ferry_msg_get(&m, "type"));
	ferry_msg_clear(&m); /* twice is fine */
}

/* ---------------------------------------------------------------- round trip */

static void test_round_trip(void **state)
{
	struct ferry_msg m = {0};
	ferry_msg_set(&m, "type", "report");
	ferry_msg_set(&m, "id", "0123456789ab");
	ferry_msg_set(&m, "ok", "%d", 1);
	ferry_msg_set(&m, "message", "a=b=c; spaces and 'quotes' \"too\"");
	ferry_msg_set(&m, "utf", "caf\xc3\xa9 \xe2\x86\x92 node");
	ferry_msg_set(&m, "empty", "%s", "");
	ferry_msg_set(&m, "multi", "line1\nline2");
	ferry_msg_set(&m, "abcdefghijklmnopqrstuvwxyz_abcde", "32-character key");
	int sv[2];
	pair(sv);
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_msg_send(sv[0], &m, &err), 0);
	/* two messages back to back on one stream are read one at a time */
	ferry_msg_set(&m, "type", "second");
	assert_int_equal(ferry_msg_send(sv[0], &m, &err), 0);
	struct ferry_msg r = {0}, r2 = {0};
	assert_int_equal(ferry_msg_recv(sv[1], 5, &r, &err), 0);
	assert_null(err);
	assert_string_equal(ferry_msg_get(&r, "type"), "report");
	assert_string_equal(ferry_msg_get(&r, "message"), "a=b=c; spaces and 'quotes' \"too\"");
	assert_string_equal(ferry_msg_get(&r, "utf"), "caf\xc3\xa9 \xe2\x86\x92 node");
	assert_string_equal(ferry_msg_get(&r, "empty"), "");
	assert_string_equal(ferry_msg_get(&r, "multi"), "line1 line2");
	assert_string_equal(ferry_msg_get(&r, "abcdefghijklmnopqrstuvwxyz_abcde"), "32-character key");
	assert_int_equal(ferry_msg_recv(sv[1], 5, &r2, &err), 0);
	assert_same(&m, &r2);
	ferry_msg_set(&r, "type", "second");
	assert_same(&r, &r2);
	/* and the end of the stream is an error, not an empty message */
	close(sv[0]);
	struct ferry_msg r3 = {0};
	assert_true(ferry_msg_recv(sv[1], 5, &r3, &err) < 0);
	assert_non_null(err);
	assert_int_equal(r3.n, 0);
	close(sv[1]);
	ferry_msg_clear(&m);
	ferry_msg_clear(&r);
	ferry_msg_clear(&r2);
}

/* the wire format is the documented one: u32 LE length, the magic line, "key=value\n" lines */
static void test_wire_format(void **state)
{
	struct ferry_msg m = {0};
	ferry_msg_set(&m, "type", "ready");
	ferry_msg_set(&m, "n", "42");
	size_t len = 0;
	char *w = wire_of(&m, &len);
	const char body[] = MAGIC "type=ready\nn=42\n";
	assert_int_equal(len, 4 + strlen(body));
	assert_int_equal((unsigned char)w[0], strlen(body));
	assert_int_equal(w[1] | w[2] | w[3], 0);
	assert_memory_equal(w + 4, body, strlen(body));
	/* and the parser reads it back */
	struct ferry_msg r = {0};
	accepted(w + 4, len - 4, &r);
	assert_same(&m, &r);
	free(w);
	ferry_msg_clear(&m);
	ferry_msg_clear(&r);
	/* a message without fields is valid */
	struct ferry_msg e = {0};
	accepted(MAGIC, strlen(MAGIC), &e);
	assert_int_equal(e.n, 0);
}

/* ---------------------------------------------------------------- truncation */

/* Every strict prefix of a valid message on the wire, then the end of the stream: refused. */
static void test_truncated_stream(void **state)
{
	struct ferry_msg m = {0};
	ferry_msg_set(&m, "type", "prepare");
	ferry_msg_set(&m, "id", "00aa11bb22cc");
	ferry_msg_set(&m, "instance", "job1");
	ferry_msg_set(&m, "mode", "diskless");
	size_t len = 0;
	char *w = wire_of(&m, &len);
	for (size_t k = 0; k < len; k++) {
		int sv[2];
		pair(sv);
		assert_int_equal(ferry_write_all(sv[0], w, k), 0);
		close(sv[0]);
		struct ferry_msg r = {0};
		_cleanup_error_ struct ferry_error *err = NULL;
		if (ferry_msg_recv(sv[1], 5, &r, &err) >= 0)
			fail_msg("a message cut after %zu of %zu bytes was accepted", k, len);
		assert_non_null(err);
		assert_int_equal(r.n, 0);
		close(sv[1]);
	}
	/* the whole of it is fine */
	int sv[2];
	pair(sv);
	assert_int_equal(ferry_write_all(sv[0], w, len), 0);
	close(sv[0]);
	struct ferry_msg r = {0};
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_msg_recv(sv[1], 5, &r, &err), 0);
	assert_same(&m, &r);
	close(sv[1]);
	free(w);
	ferry_msg_clear(&m);
	ferry_msg_clear(&r);
}

/* Every prefix of a payload given to the parser: refused unless it ends right after a line,
 * and then it holds exactly the fields of the lines before (the length prefix is what tells a
 * whole message from a cut one). */
static void test_truncated_payload(void **state)
{
	const char p[] = MAGIC "type=restart\nid=00aa11bb22cc\ndir=/var/tmp/x/1001/a-00aa11bb22cc\n";
	size_t len = strlen(p);
	for (size_t k = 0; k < len; k++) {
		size_t lines = 0;
		bool boundary = k >= strlen(MAGIC) && p[k - 1] == '\n';
		for (size_t i = strlen(MAGIC); i < k; i++)
			lines += p[i] == '\n';
		struct ferry_msg r = {0};
		_cleanup_error_ struct ferry_error *err = NULL;
		int rc = parse_str(p, k, &r, &err);
		if (!boundary) {
			if (rc >= 0)
				fail_msg("payload cut after %zu bytes accepted", k);
			assert_int_equal(r.n, 0);
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(r.n, lines);
		}
		ferry_msg_clear(&r);
	}
}

/* ---------------------------------------------------------------- bad input */

static void test_bad_magic(void **state)
{
	refused("", 0);
	refused_s("ferry-proto 1");
	refused_s("ferry-proto 2\ntype=x\n");
	refused_s("ferry-proto 10\n");
	refused_s("FERRY-PROTO 1\ntype=x\n");
	refused_s("ferry-proto 1 \ntype=x\n");
	refused_s("type=x\n");
	refused_s("\nferry-proto 1\ntype=x\n");
	refused("\0erry-proto 1\n", 14);
}

static void test_bad_keys(void **state)
{
	refused_s(MAGIC "Type=x\n"); /* uppercase */
	refused_s(MAGIC "TYPE=x\n");
	refused_s(MAGIC "=x\n"); /* empty */
	refused_s(MAGIC "type\n"); /* no '=' */
	refused_s(MAGIC "\n"); /* an empty line */
	refused_s(MAGIC "ty pe=x\n"); /* space */
	refused_s(MAGIC " type=x\n");
	refused_s(MAGIC "type =x\n");
	refused_s(MAGIC "type1=x\n"); /* digit */
	refused_s(MAGIC "ty-pe=x\n"); /* dash */
	refused_s(MAGIC "ty.pe=x\n");
	refused_s(MAGIC "t\xc3\xa9=x\n"); /* non-ASCII */
	refused(MAGIC "ty\0pe=x\n", strlen(MAGIC) + 8); /* NUL */
	refused_s(MAGIC "abcdefghijklmnopqrstuvwxyz_abcdef=x\n"); /* 33 characters */
	/* 32 characters and underscores are fine */
	struct ferry_msg m = {0};
	const char *ok = MAGIC "abcdefghijklmnopqrstuvwxyz_abcde=x\n_=y\n";
	accepted(ok, strlen(ok), &m);
	assert_int_equal(m.n, 2);
	assert_string_equal(ferry_msg_get(&m, "_"), "y");
	ferry_msg_clear(&m);
	/* a bad field anywhere spoils the whole message */
	refused_s(MAGIC "type=x\nid=y\nBAD=z\n");
	refused_s(MAGIC "type=x\nid=y\nlast=no newline");
}

static void test_repeated_keys(void **state)
{
	refused_s(MAGIC "type=x\ntype=x\n");
	refused_s(MAGIC "uid=1001\ntype=migrate\nuid=0\n");
	refused_s(MAGIC "a=1\nb=2\nc=3\nd=4\na=\n");
	/* keys that only share a prefix are different keys */
	struct ferry_msg m = {0};
	const char *p = MAGIC "id=1\nids=2\ni=3\n";
	accepted(p, strlen(p), &m);
	assert_int_equal(m.n, 3);
	assert_string_equal(ferry_msg_get(&m, "id"), "1");
	assert_string_equal(ferry_msg_get(&m, "ids"), "2");
	assert_string_equal(ferry_msg_get(&m, "i"), "3");
	ferry_msg_clear(&m);
}

static void test_control_characters(void **state)
{
	for (int c = 0; c < 0x20; c++) {
		if (c == '\n')
			continue; /* ends the line: "v" then a line "x" without '=' */
		char p[64];
		int n = snprintf(p, sizeof(p), MAGIC "message=a%cb\n", c);
		assert_int_equal(n, (int)strlen(MAGIC) + 12);
		p[strlen(MAGIC) + 9] = (char)c; /* (the character itself, NUL included) */
		refused(p, (size_t)n);
	}
	refused_s(MAGIC "message=a\x7f"
			"b\n");
	refused_s(MAGIC "message=a\r\n"); /* CRLF line ends are not ours */
	refused_s(MAGIC "message=a\nx\n"); /* a newline inside a value is the end of the field */
	/* UTF-8 and '=' in values are fine */
	struct ferry_msg m = {0};
	const char *p = MAGIC "message=caf\xc3\xa9 = ok ~\n";
	accepted(p, strlen(p), &m);
	assert_string_equal(ferry_msg_get(&m, "message"), "caf\xc3\xa9 = ok ~");
	ferry_msg_clear(&m);
}

static char *fields_payload(size_t nfields, size_t *ret_len)
{
	char *p = xmalloc(strlen(MAGIC) + nfields * 16 + 1);
	size_t len = 0;
	memcpy(p, MAGIC, strlen(MAGIC));
	len = strlen(MAGIC);
	for (size_t i = 0; i < nfields; i++) {
		/* keys a..z, then aa, ab, ...: all distinct */
		char k[4] = {0};
		if (i < 26)
			k[0] = (char)('a' + i);
		else {
			k[0] = (char)('a' + i / 26 - 1);
			k[1] = (char)('a' + i % 26);
		}
		len += (size_t)sprintf(p + len, "%s=%zu\n", k, i);
	}
	*ret_len = len;
	return p;
}

static void test_too_many_fields(void **state)
{
	size_t len;
	char *p = fields_payload(FERRY_PROTO_FIELDS, &len);
	struct ferry_msg m = {0};
	accepted(p, len, &m);
	assert_int_equal(m.n, FERRY_PROTO_FIELDS);
	ferry_msg_clear(&m);
	free(p);
	p = fields_payload(FERRY_PROTO_FIELDS + 1, &len);
	refused(p, len);
	free(p);
	p = fields_payload(1000, &len);
	refused(p, len);
	free(p);
}

static void test_value_length(void **state)
{
	size_t n = strlen(MAGIC) + 2 + FERRY_PROTO_VALUE_MAX + 2;
	char *p = xmalloc(n + 1);
	memcpy(p, MAGIC "v=", strlen(MAGIC) + 2);
	memset(p + strlen(MAGIC) + 2, 'x', FERRY_PROTO_VALUE_MAX + 1);
	/* FERRY_PROTO_VALUE_MAX: accepted */
	p[strlen(MAGIC) + 2 + FERRY_PROTO_VALUE_MAX] = '\n';
	struct ferry_msg m = {0};
	accepted(p, n - 1, &m);
	assert_int_equal(strlen(ferry_msg_get(&m, "v")), FERRY_PROTO_VALUE_MAX);
	ferry_msg_clear(&m);
	/* one more: refused */
	p[strlen(MAGIC) + 2 + FERRY_PROTO_VALUE_MAX] = 'x';
	p[n - 1] = '\n';
	refused(p, n);
	free(p);
}

/* A payload of exactly FERRY_PROTO_MAX bytes is accepted, one byte more is not (by the parser
 * and by the receiver), and the sender will not send one. */
static void test_size_limit(void **state)
{
	/* fields "aa=xxxx...\n" of 4000-byte values, then one filler field to reach the limit */
	char *p = xmalloc(FERRY_PROTO_MAX + 2);
	size_t len = strlen(MAGIC);
	memcpy(p, MAGIC, len);
	for (int i = 0; len + 4004 < FERRY_PROTO_MAX - 16; i++) {
		p[len++] = (char)('a' + i / 26);
		p[len++] = (char)('a' + i % 26);
		p[len++] = '=';
		memset(p + len, 'x', 4000);
		len += 4000;
		p[len++] = '\n';
	}
	size_t left = FERRY_PROTO_MAX - len; /* "zz=" + value + "\n" */
	assert_true(left > 4 && left - 4 <= FERRY_PROTO_VALUE_MAX);
	memcpy(p + len, "zz=", 3);
	memset(p + len + 3, 'y', left - 4);
	p[FERRY_PROTO_MAX - 1] = '\n';
	len = FERRY_PROTO_MAX;
	struct ferry_msg m = {0};
	accepted(p, len, &m);
	assert_int_equal(strlen(ferry_msg_get(&m, "zz")), left - 4);
	/* the sender sends it, the receiver takes it */
	int sv[2];
	pair(sv);
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_msg_send(sv[0], &m, &err), 0);
	struct ferry_msg r = {0};
	assert_int_equal(ferry_msg_recv(sv[1], 5, &r, &err), 0);
	assert_same(&m, &r);
	ferry_msg_clear(&r);
	/* one byte more */
	ferry_msg_set(&m, "zz", "%sy", ferry_msg_get(&m, "zz"));
	assert_int_equal(ferry_msg_send(sv[0], &m, &err), -EMSGSIZE);
	assert_non_null(err);
	p[FERRY_PROTO_MAX - 1] = 'y';
	p[FERRY_PROTO_MAX] = '\n';
	refused(p, FERRY_PROTO_MAX + 1);
	/* the same bytes with a valid length prefix over the stream */
	unsigned char l[4];
	put_len(l, FERRY_PROTO_MAX + 1);
	assert_int_equal(ferry_write_all(sv[0], l, 4), 0);
	assert_int_equal(ferry_write_all(sv[0], p, FERRY_PROTO_MAX + 1), 0);
	ferry_error_free(err);
	err = NULL;
	assert_int_equal(ferry_msg_recv(sv[1], 5, &r, &err), -EMSGSIZE);
	assert_int_equal(r.n, 0);
	close(sv[0]);
	close(sv[1]);
	ferry_msg_clear(&m);
	free(p);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A length prefix above FERRY_PROTO_MAX is refused at once, before anything else is read: the
 * receiver neither waits for the body (the sender here never sends one, nor closes) nor so
 * allocates it. */
static void test_huge_length_prefix(void **state)
{
	static const uint32_t lens[] = {FERRY_PROTO_MAX + 1, 1u << 20, 0x7fffffffu, 0xffffffffu};
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		int sv[2];
		pair(sv);
		unsigned char l[4];
		put_len(l, lens[i]);
		assert_int_equal(ferry_write_all(sv[0], l, 4), 0);
		/* the writer stays open: a receiver that waited for the body would time out */
		struct ferry_msg r = {0};
		_cleanup_error_ struct ferry_error *err = NULL;
		long long t = now_ms();
		assert_int_equal(ferry_msg_recv(sv[1], 3, &r, &err), -EMSGSIZE);
		assert_true(now_ms() - t < 1000);
		assert_non_null(strstr(err->message, "refused"));
		assert_int_equal(r.n, 0);
		close(sv[0]);
		close(sv[1]);
	}
	/* zero: an empty payload, not a message */
	int sv[2];
	pair(sv);
	unsigned char z[4] = {0};
	assert_int_equal(ferry_write_all(sv[0], z, 4), 0);
	struct ferry_msg r = {0};
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_true(ferry_msg_recv(sv[1], 3, &r, &err) < 0);
	close(sv[0]);
	close(sv[1]);
}

static void test_recv_timeout(void **state)
{
	/* nothing at all */
	int sv[2];
	pair(sv);
	struct ferry_msg r = {0};
	_cleanup_error_ struct ferry_error *err = NULL;
	long long t = now_ms();
	assert_int_equal(ferry_msg_recv(sv[1], 1, &r, &err), -ETIMEDOUT);
	long long took = now_ms() - t;
	assert_true(took >= 900 && took < 3000);
	assert_int_equal(r.n, 0);
	/* a length, then half a body, then silence: the timeout covers the body too */
	struct ferry_msg m = {0};
	ferry_msg_set(&m, "type", "ready");
	size_t len = 0;
	char *w = wire_of(&m, &len);
	assert_int_equal(ferry_write_all(sv[0], w, len / 2), 0);
	ferry_error_free(err);
	err = NULL;
	t = now_ms();
	assert_int_equal(ferry_msg_recv(sv[1], 1, &r, &err), -ETIMEDOUT);
	took = now_ms() - t;
	assert_true(took >= 900 && took < 3000);
	close(sv[0]);
	close(sv[1]);
	free(w);
	ferry_msg_clear(&m);
}

/* A recv interrupted by a signal (ferryd gets SIGCHLD all the time) goes on waiting. */
static void on_alarm(int sig)
{
	(void)sig;
}

static void test_recv_signal(void **state)
{
	int sv[2];
	pair(sv);
	struct sigaction sa = {.sa_handler = on_alarm}, old;
	sigaction(SIGALRM, &sa, &old);
	struct itimerval it = {.it_interval = {0, 50000}, .it_value = {0, 50000}};
	setitimer(ITIMER_REAL, &it, NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct itimerval off = {0};
		setitimer(ITIMER_REAL, &off, NULL);
		usleep(400000);
		struct ferry_msg m = {0};
		ferry_msg_set(&m, "type", "late");
		struct ferry_error *e = NULL;
		_exit(ferry_msg_send(sv[0], &m, &e) == 0 ? 0 : 1);
	}
	struct ferry_msg r = {0};
	_cleanup_error_ struct ferry_error *err = NULL;
	int rc = ferry_msg_recv(sv[1], 5, &r, &err);
	struct itimerval off = {0};
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old, NULL);
	if (rc < 0)
		fail_msg("recv: %s", err->message);
	assert_string_equal(ferry_msg_get(&r, "type"), "late");
	ferry_msg_clear(&r);
	close(sv[0]);
	close(sv[1]);
}

/* A blob of every size around a field's edge comes back whole, through the wire format. */
static void test_blob_round_trip(void **state)
{
	(void)state;
	static unsigned char in[FERRY_PROTO_BLOB_MAX], out[FERRY_PROTO_BLOB_MAX];
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 131 + 7);
	const size_t sizes[] = {
	    0, 1, 2, 3, 2999, 3000, 3001, 6000, FERRY_PROTO_BLOB_MAX - 1, FERRY_PROTO_BLOB_MAX};
	for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
		struct ferry_msg m = {0}, back = {0};
		_cleanup_error_ struct ferry_error *err = NULL;
		ferry_msg_set(&m, "type", "start");
		ferry_msg_set_blob(&m, "req", in, sizes[s]);
		_cleanup_free_ char *buf = NULL;
		size_t len = 0;
		assert_int_equal(ferry_msg_encode(&m, 0, &buf, &len, &err), 0);
		assert_true(len <= FERRY_PROTO_MAX);
		if (ferry_msg_parse(buf, len, &back, &err) < 0)
			fail_msg("%zu: %s", sizes[s], err->message);
		size_t got = 99;
		if (ferry_msg_get_blob(&back, "req", out, sizeof(out), &got, &err) < 0)
			fail_msg("%zu: %s", sizes[s], err->message);
		assert_int_equal(got, sizes[s]);
		assert_memory_equal(out, in, got);
		ferry_msg_clear(&m);
		ferry_msg_clear(&back);
	}
}

/* refused(...) for a blob: every field of @vals ("req_a", ...) as given */
static void blob_refused(const char *const *vals, size_t n, size_t max, int want)
{
	struct ferry_msg m = {0};
	for (size_t i = 0; i < n; i++)
		if (vals[i]) {
			char key[8];
			snprintf(key, sizeof(key), "req_%c", (char)('a' + i));
			ferry_msg_set(&m, key, "%s", vals[i]);
		}
	_cleanup_error_ struct ferry_error *err = NULL;
	unsigned char out[FERRY_PROTO_BLOB_MAX];
	size_t got = 0;
	assert_int_equal(ferry_msg_get_blob(&m, "req", out, max, &got, &err), want);
	assert_non_null(err);
	ferry_msg_clear(&m);
}

/* Whatever is not the encoder's output is refused, however the decoder would take it. */
static void test_blob_strict(void **state)
{
	(void)state;
	_cleanup_free_ char *full = xzalloc(FERRY_PROTO_BLOB_CHUNK + 1);
	memset(full, 'A', FERRY_PROTO_BLOB_CHUNK);
	const char *gap[] = {"QUJD", NULL, "QUJD"};
	blob_refused(gap, 3, sizeof(gap), -EPROTO); /* a field after a missing one */
	const char *short_first[] = {"QUJD", "QUJD"};
	blob_refused(short_first, 2, 100, -EPROTO); /* a short field that is not the last */
	const char *bad[][1] = {{"QUJ"}, {"QU=D"}, {"Q!JD"}, {"===="}, {""}, {"QUJD\n"}, {"QUJ="}};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		blob_refused(bad[i], 1, 100, -EPROTO);
	const char *big[] = {full, full};
	blob_refused(big, 2, FERRY_PROTO_BLOB_CHUNK, -E2BIG); /* more than the room given */
	const char *ok[] = {"QUI="};
	struct ferry_msg m = {0};
	ferry_msg_set(&m, "req_a", "%s", ok[0]);
	unsigned char out[4];
	size_t got = 0;
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_msg_get_blob(&m, "req", out, sizeof(out), &got, &err), 0);
	assert_int_equal(got, 2);
	assert_memory_equal(out, "AB", 2);
	ferry_msg_clear(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_set_get),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_wire_format),
	    cmocka_unit_test(test_truncated_stream),
	    cmocka_unit_test(test_truncated_payload),
	    cmocka_unit_test(test_bad_magic),
	    cmocka_unit_test(test_bad_keys),
	    cmocka_unit_test(test_repeated_keys),
	    cmocka_unit_test(test_control_characters),
	    cmocka_unit_test(test_too_many_fields),
	    cmocka_unit_test(test_value_length),
	    cmocka_unit_test(test_size_limit),
	    cmocka_unit_test(test_huge_length_prefix),
	    cmocka_unit_test(test_recv_timeout),
	    cmocka_unit_test(test_recv_signal),
	    cmocka_unit_test(test_blob_round_trip),
	    cmocka_unit_test(test_blob_strict),
	};
	return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
