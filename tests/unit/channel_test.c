/* SPDX-License-Identifier: GPL-2.0-or-later */
/* channel: the AEAD records of a transfer session, and the relay that carries them. Every way a
 * record can be wrong (key, byte, order, replay, direction, length, truncation) is refused. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <grp.h>
#include <inttypes.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "channel.h"
#include "fs.h"
#include "xfer.h"

#include <zstd.h>

static const unsigned char k1[32] = "0123456789abcdef0123456789abcdef";
static const unsigned char k2[32] = "0123456789abcdef0123456789abcdeX";

static void chan(struct ferry_channel *c, const unsigned char *k, uint32_t dir)
{
	assert_int_equal(ferry_channel_init(c, k, dir, NULL), 0);
}

/* Seals @text as one record into @buf; returns the record's size. */
static size_t seal(struct ferry_channel *c, unsigned char *buf, uint8_t type, const char *text)
{
	size_t n = strlen(text);
	memcpy(buf + FERRY_CHANNEL_HDR, text, n);
	int r = ferry_channel_seal(c, type, buf, n, NULL);
	assert_int_equal(r, (int)(FERRY_CHANNEL_HDR + n + FERRY_CHANNEL_TAG));
	return (size_t)r;
}

static int open_rec(struct ferry_channel *c, unsigned char *rec, size_t n, uint8_t *type, size_t *len)
{
	_cleanup_error_ struct ferry_error *err = NULL;
	int r = ferry_channel_open(c, rec, n, type, len, &err);
	assert_true(r == 0 ? err == NULL : err != NULL);
	return r;
}

static void test_round_trip(void **state)
{
	struct ferry_channel a, b;
	chan(&a, k1, 1);
	chan(&b, k1, 1);
	unsigned char *buf = xmalloc(FERRY_CHANNEL_BUF);
	for (int i = 0; i < 3; i++) {
		size_t n = seal(&a, buf, (uint8_t)(i + 1), i == 1 ? "" : "pages of the job");
		if (i != 1)
			assert_memory_not_equal(buf + FERRY_CHANNEL_HDR, "pages", 5); /* encrypted */
		uint8_t type = 0;
		size_t len = 99;
		assert_int_equal(open_rec(&b, buf, n, &type, &len), 0);
		assert_int_equal(type, i + 1);
		assert_int_equal(len, i == 1 ? 0 : 16);
		if (i != 1)
			assert_memory_equal(buf + FERRY_CHANNEL_HDR, "pages of the job", 16);
	}
	/* the largest record */
	memset(buf + FERRY_CHANNEL_HDR, 'x', FERRY_CHANNEL_MAX);
	int n = ferry_channel_seal(&a, 7, buf, FERRY_CHANNEL_MAX, NULL);
	uint8_t type = 0;
	size_t len = 0;
	assert_int_equal(open_rec(&b, buf, (size_t)n, &type, &len), 0);
	assert_int_equal(len, FERRY_CHANNEL_MAX);
	/* one more is refused at the sender */
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_true(ferry_channel_seal(&a, 7, buf, FERRY_CHANNEL_MAX + 1, &err) < 0);
	free(buf);
	ferry_channel_done(&a);
	ferry_channel_done(&b);
}

static void test_wrong_key_and_direction(void **state)
{
	unsigned char buf[256];
	struct ferry_channel a, b, c;
	chan(&a, k1, 1);
	chan(&b, k2, 1); /* another key */
	chan(&c, k1, 2); /* the other direction */
	size_t n = seal(&a, buf, 1, "hello");
	unsigned char copy[256];
	memcpy(copy, buf, n);
	uint8_t type;
	size_t len;
	assert_true(open_rec(&b, buf, n, &type, &len) < 0);
	assert_true(open_rec(&c, copy, n, &type, &len) < 0);
	ferry_channel_done(&a);
	ferry_channel_done(&b);
	ferry_channel_done(&c);
}

static void test_tampered(void **state)
{
	unsigned char buf[256], rec[256];
	struct ferry_channel a;
	chan(&a, k1, 1);
	size_t n = seal(&a, rec, 1, "the workload's memory");
	/* every single flipped bit, in the header, the body and the tag, is refused */
	for (size_t i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit++) {
			struct ferry_channel b;
			chan(&b, k1, 1);
			memcpy(buf, rec, n);
			buf[i] ^= (unsigned char)(1 << bit);
			uint8_t type;
			size_t len;
			assert_true(open_rec(&b, buf, n, &type, &len) < 0);
			/* and nothing after a failure is accepted, not even the genuine record */
			memcpy(buf, rec, n);
			assert_true(open_rec(&b, buf, n, &type, &len) < 0);
			ferry_channel_done(&b);
		}
	}
	ferry_channel_done(&a);
}

static void test_reordered_replayed(void **state)
{
	unsigned char r1[64], r2[64], buf[64];
	struct ferry_channel a, b;
	chan(&a, k1, 1);
	size_t n1 = seal(&a, r1, 1, "first");
	size_t n2 = seal(&a, r2, 1, "second");
	uint8_t type;
	size_t len;
	/* the second first: refused */
	chan(&b, k1, 1);
	memcpy(buf, r2, n2);
	assert_true(open_rec(&b, buf, n2, &type, &len) < 0);
	ferry_channel_done(&b);
	/* the first twice: the replay is refused */
	chan(&b, k1, 1);
	memcpy(buf, r1, n1);
	assert_int_equal(open_rec(&b, buf, n1, &type, &len), 0);
	memcpy(buf, r1, n1);
	assert_true(open_rec(&b, buf, n1, &type, &len) < 0);
	ferry_channel_done(&b);
	/* dropped (a gap): refused */
	unsigned char r3[64];
	size_t n3 = seal(&a, r3, 1, "third");
	chan(&b, k1, 1);
	memcpy(buf, r1, n1);
	assert_int_equal(open_rec(&b, buf, n1, &type, &len), 0);
	memcpy(buf, r3, n3);
	assert_true(open_rec(&b, buf, n3, &type, &len) < 0);
	ferry_channel_done(&b);
	ferry_channel_done(&a);
}

static void test_lengths(void **state)
{
	unsigned char rec[64];
	struct ferry_channel a, b;
	chan(&a, k1, 1);
	size_t n = seal(&a, rec, 1, "truncated");
	uint8_t type;
	size_t len;
	/* shorter, longer, and below the minimum */
	chan(&b, k1, 1);
	assert_true(open_rec(&b, rec, n - 1, &type, &len) < 0);
	ferry_channel_done(&b);
	chan(&b, k1, 1);
	assert_true(open_rec(&b, rec, 3, &type, &len) < 0);
	ferry_channel_done(&b);
	/* an oversize length is refused from the header alone */
	unsigned char hdr[FERRY_CHANNEL_HDR] = {0x01, 0x00, 0x04, 0x00, 1}; /* 256 KiB + 1 */
	size_t body = 0;
	chan(&b, k1, 1);
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_true(ferry_channel_header(&b, hdr, &type, &body, &err) < 0);
	ferry_channel_done(&b);
	unsigned char big[FERRY_CHANNEL_HDR] = {0xff, 0xff, 0xff, 0xff, 1};
	chan(&b, k1, 1);
	_cleanup_error_ struct ferry_error *e2 = NULL;
	assert_true(ferry_channel_header(&b, big, &type, &body, &e2) < 0);
	ferry_channel_done(&b);
	ferry_channel_done(&a);
}

/* Over a socket: a stream cut inside a record is an error, never a short record. */
static void test_read_truncated(void **state)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	unsigned char rec[64];
	struct ferry_channel a, b;
	chan(&a, k1, 1);
	chan(&b, k1, 1);
	size_t n = seal(&a, rec, 1, "cut short");
	assert_int_equal(ferry_write_all(sv[1], rec, n - 3), 0);
	close(sv[1]);
	unsigned char *buf = xmalloc(FERRY_CHANNEL_BUF);
	uint8_t type;
	size_t len;
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_true(ferry_channel_read(&b, sv[0], 2, buf, &type, &len, &err) < 0);
	free(buf);
	close(sv[0]);
	ferry_channel_done(&a);
	ferry_channel_done(&b);
}

static void test_kdf(void **state)
{
	unsigned char o1[64], o2[64], o3[64];
	assert_int_equal(ferry_channel_kdf(k1, 32, "salt", 4, "info", 4, o1, 64, NULL), 0);
	assert_int_equal(ferry_channel_kdf(k1, 32, "salt", 4, "info", 4, o2, 64, NULL), 0);
	assert_memory_equal(o1, o2, 64);
	assert_int_equal(ferry_channel_kdf(k1, 32, "salt", 4, "inf0", 4, o3, 64, NULL), 0);
	assert_memory_not_equal(o1, o3, 64);
	assert_int_equal(ferry_channel_kdf(k1, 32, "sal7", 4, "info", 4, o3, 64, NULL), 0);
	assert_memory_not_equal(o1, o3, 64);
	assert_memory_not_equal(o1, o1 + 32, 32);
}

/* ---- the relay, end to end over socketpairs ---- */

static const unsigned char cluster[32] = "the cluster key, 32 bytes long!!";

struct end {
	pid_t pid;
	int local[FERRY_XFER_NCHAN]; /* our plaintext ends */
};

/* Forks one side: handshake on @sk, then the relay (compressing what it sends with @o's
 * compress, counting into @o's zstats). Exits 0 when the session ended cleanly. */
static void start_end_opts(struct end *e, int sk, bool receiver, const struct ferry_xfer_relay_opts *o)
{
	int sp[FERRY_XFER_NCHAN][2];
	for (int i = 0; i < FERRY_XFER_NCHAN; i++)
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp[i]), 0);
	e->pid = fork();
	assert_true(e->pid >= 0);
	if (e->pid == 0) {
		int local[FERRY_XFER_NCHAN];
		for (int i = 0; i < FERRY_XFER_NCHAN; i++) {
			close(sp[i][0]);
			local[i] = sp[i][1];
		}
		/* only our ends: a copy of the other side's would hide its end of file */
		const int keep[] = {sk, local[0], local[1], local[2], local[3], -1};
		ferry_close_fds(3, keep);
		struct ferry_xfer_keys keys;
		struct ferry_error *err = NULL;
		int r = receiver ? ferry_xfer_accept(sk, cluster, 32, 1001, 5, &keys, &err)
				 : ferry_xfer_connect(sk, cluster, 32, 1001, 5, &keys, &err);
		if (r == 0)
			r = ferry_xfer_relay(sk, receiver, &keys, local, o, &err);
		if (r < 0)
			fprintf(stderr, "# %s: %s\n", receiver ? "receiver" : "sender",
				err ? err->message : "?");
		_exit(r < 0 ? 1 : 0);
	}
	for (int i = 0; i < FERRY_XFER_NCHAN; i++) {
		close(sp[i][1]);
		e->local[i] = sp[i][0];
	}
}

static void start_end(struct end *e, int sk, bool receiver)
{
	start_end_opts(e, sk, receiver, NULL);
}

static void end_close(struct end *e)
{
	for (int i = 0; i < FERRY_XFER_NCHAN; i++)
		if (e->local[i] >= 0)
			close(e->local[i]);
	memset(e->local, -1, sizeof(e->local));
}

static int end_status(struct end *e)
{
	end_close(e);
	int st = 0;
	waitpid(e->pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}

static void test_relay_round_trip(void **state)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct end s, r;
	start_end(&r, sv[0], true);
	start_end(&s, sv[1], false);
	close(sv[0]);
	/* 3 MiB of pages one way, an answer back, the end of the channel */
	size_t big = 3u << 20;
	unsigned char *data = xmalloc(big), *got = xmalloc(big);
	for (size_t i = 0; i < big; i++)
		data[i] = (unsigned char)(i * 7 + 3);
	pid_t w = fork();
	if (w == 0) {
		_exit(ferry_write_all(s.local[FERRY_XFER_PAGES], data, big) == 0 ? 0 : 1);
	}
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_read_timeout(r.local[FERRY_XFER_PAGES], got, big, 10, &err), 0);
	assert_memory_equal(data, got, big);
	int st = 0;
	waitpid(w, &st, 0);
	assert_int_equal(ferry_write_all(r.local[FERRY_XFER_CTL], "A", 1), 0);
	char c = 0;
	assert_int_equal(ferry_read_timeout(s.local[FERRY_XFER_CTL], &c, 1, 5, &err), 0);
	assert_int_equal(c, 'A');
	/* post-copy's channel goes both ways: a request from the receiver, a page back */
	char req[16] = "page 0x7f000000", page[4096];
	assert_int_equal(ferry_write_all(r.local[FERRY_XFER_LAZY], req, sizeof(req)), 0);
	char got_req[16];
	assert_int_equal(ferry_read_timeout(s.local[FERRY_XFER_LAZY], got_req, sizeof(got_req), 5, &err), 0);
	assert_memory_equal(req, got_req, sizeof(req));
	assert_int_equal(ferry_write_all(s.local[FERRY_XFER_LAZY], data, sizeof(page)), 0);
	assert_int_equal(ferry_read_timeout(r.local[FERRY_XFER_LAZY], page, sizeof(page), 5, &err), 0);
	assert_memory_equal(page, data, sizeof(page));
	/* the sender's end of pages reaches the receiver as end of file */
	shutdown(s.local[FERRY_XFER_PAGES], SHUT_WR);
	assert_int_equal(read(r.local[FERRY_XFER_PAGES], &c, 1), 0);
	/* both sides end: both relays exit cleanly, the connection is left with nothing on it */
	end_close(&r);
	assert_int_equal(end_status(&s), 0);
	assert_int_equal(end_status(&r), 0);
	assert_int_equal(read(sv[1], &c, 1), 0); /* the receiver is gone: end of file, no byte left */
	close(sv[1]);
	free(data);
	free(got);
}

/* Sends @n bytes of @data on channel @ch from @s to @r and checks what arrives. */
static void through(struct end *s, struct end *r, int ch, const unsigned char *data, size_t n)
{
	unsigned char *got = xmalloc(n);
	pid_t w = fork();
	if (w == 0)
		_exit(ferry_write_all(s->local[ch], data, n) == 0 ? 0 : 1);
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_read_timeout(r->local[ch], got, n, 20, &err), 0);
	assert_memory_equal(data, got, n);
	int st = 0;
	waitpid(w, &st, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	free(got);
}

/* Issue 13: pages that compress go compressed and arrive exact; pages that do not go raw, with
 * tries spaced out; the receiving side takes both whatever it was told. */
static void test_relay_compression(void **state)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct ferry_xfer_zstats *z =
	    mmap(NULL, sizeof(*z), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(z != MAP_FAILED);
	const struct ferry_xfer_relay_opts so = {.compress = true, .zstats = z};
	struct end s, r;
	start_end(&r, sv[0], true);
	start_end_opts(&s, sv[1], false, &so);
	close(sv[0]);
	close(sv[1]);
	/* 8 MiB of what memory often holds: runs of numbers, zeroes, text */
	size_t big = 8u << 20;
	unsigned char *data = xzalloc(big);
	for (size_t i = 0; i < big / 2; i += 8)
		memcpy(data + i, &(uint64_t){i / 64}, 8);
	through(&s, &r, FERRY_XFER_PAGES, data, big);
	uint64_t plain = __atomic_load_n(&z->plain, __ATOMIC_RELAXED),
		 sent = __atomic_load_n(&z->sent, __ATOMIC_RELAXED);
	printf("# compressible: %" PRIu64 " bytes sent as %" PRIu64 "\n", plain, sent);
	assert_int_equal(plain, big);
	assert_true(sent < big / 8);
	/* 8 MiB that zstd cannot shrink: they go raw, and zstd is tried on a few blocks only */
	assert_int_equal(getentropy(data, 256), 0);
	for (size_t i = 256; i < big; i += 256) {
		memcpy(data + i, data + i - 256, 256);
		for (size_t k = 0; k < 256; k += 8)
			memcpy(data + i + k, &(uint64_t){(i + k) * 0x9e3779b97f4a7c15ull}, 8);
	}
	through(&s, &r, FERRY_XFER_PAGES, data, big);
	uint64_t plain2 = __atomic_load_n(&z->plain, __ATOMIC_RELAXED) - plain;
	uint64_t sent2 = __atomic_load_n(&z->sent, __ATOMIC_RELAXED) - sent;
	printf("# incompressible: %" PRIu64 " bytes sent as %" PRIu64 "\n", plain2, sent2);
	assert_int_equal(plain2, big);
	assert_int_equal(sent2, big);
	/* post-copy's channel too: 1 MiB of zeroes (a page the job never wrote) goes compressed */
	memset(data, 0, 1u << 20);
	through(&s, &r, FERRY_XFER_LAZY, data, 1u << 20);
	uint64_t sent3 = __atomic_load_n(&z->sent, __ATOMIC_RELAXED) - sent - sent2;
	printf("# post-copy: %u bytes sent as %" PRIu64 "\n", 1u << 20, sent3);
	assert_true(sent3 < 4096);
	shutdown(s.local[FERRY_XFER_PAGES], SHUT_WR);
	char c;
	assert_int_equal(read(r.local[FERRY_XFER_PAGES], &c, 1), 0);
	end_close(&r);
	assert_int_equal(end_status(&s), 0);
	assert_int_equal(end_status(&r), 0);
	munmap(z, sizeof(*z));
	free(data);
}

/* A peer that holds the session's keys (a starter of the same cluster) and sends a compressed
 * record the relay must not take: on another channel, without its size, claiming more than a
 * record, or larger inside than it says. Each ends the session before any byte reaches a
 * local end. */
static void test_relay_bad_compressed(void **state)
{
	struct {
		uint8_t ch;
		int kind; /* 0: a good frame on @ch, 1: no size in the frame, 2: says 1 MiB, 3: a lie */
	} cases[] = {
	    {FERRY_XFER_FILES, 0}, {FERRY_XFER_PAGES, 1}, {FERRY_XFER_PAGES, 2}, {FERRY_XFER_PAGES, 3}};
	for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
		int sv[2];
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		struct end r;
		start_end(&r, sv[0], true);
		close(sv[0]);
		struct ferry_xfer_keys keys;
		_cleanup_error_ struct ferry_error *err = NULL;
		assert_int_equal(ferry_xfer_connect(sv[1], cluster, 32, 1001, 5, &keys, &err), 0);
		struct ferry_channel out;
		assert_int_equal(ferry_channel_init(&out, keys.s2r, 1, &err), 0);
		size_t plain_n = cases[k].kind == 2 ? (1u << 20) : 65536;
		unsigned char *plain = xzalloc(plain_n);
		unsigned char *rec = xmalloc(FERRY_CHANNEL_BUF);
		size_t n = 0;
		if (cases[k].kind == 1) { /* a streamed frame: no content size */
			ZSTD_CCtx *c = ZSTD_createCCtx();
			assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0)));
			ZSTD_outBuffer ob = {rec + FERRY_CHANNEL_HDR, FERRY_CHANNEL_MAX, 0};
			ZSTD_inBuffer ib = {plain, plain_n, 0};
			assert_false(ZSTD_isError(ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_end)));
			n = ob.pos;
			ZSTD_freeCCtx(c);
		} else {
			n = ZSTD_compress(rec + FERRY_CHANNEL_HDR, FERRY_CHANNEL_MAX, plain, plain_n, 1);
			assert_false(ZSTD_isError(n));
			if (cases[k].kind == 3) { /* the frame says 64 KiB; another frame's bytes follow */
				size_t m = ZSTD_compress(rec + FERRY_CHANNEL_HDR + n, FERRY_CHANNEL_MAX - n,
							 plain, 4096, 1);
				assert_false(ZSTD_isError(m));
				n += m;
			}
		}
		assert_int_equal(
		    ferry_channel_write(&out, sv[1], (uint8_t)(FERRY_XFER_ZDATA + cases[k].ch), rec, n, &err),
		    0);
		char c;
		assert_int_equal(read(r.local[cases[k].ch], &c, 1), 0); /* nothing, then the end */
		assert_int_equal(end_status(&r), 1);
		ferry_channel_done(&out);
		close(sv[1]);
		free(plain);
		free(rec);
	}
}

/* What relays the handshake learns no key: bytes it writes after it are refused and reach no
 * local end. */
static void test_relay_injection(void **state)
{
	int sv[2], mid[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, mid), 0);
	struct end r, s;
	start_end(&r, sv[0], true);
	start_end(&s, mid[0], false);
	close(sv[0]);
	close(mid[0]);
	/* the man in the middle forwards the handshake: 36 bytes, 72 back, 36 */
	unsigned char b[128];
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_read_timeout(sv[1], b, 36, 5, &err), 0);
	assert_int_equal(ferry_write_all(mid[1], b, 36), 0);
	assert_int_equal(ferry_read_timeout(mid[1], b, 72, 5, &err), 0);
	assert_int_equal(ferry_write_all(sv[1], b, 72), 0);
	assert_int_equal(ferry_read_timeout(sv[1], b, 36, 5, &err), 0);
	assert_int_equal(ferry_write_all(mid[1], b, 36), 0);
	/* then writes a record of its own: a well-formed header, any body */
	unsigned char rec[5 + 32 + 16] = {32, 0, 0, 0, FERRY_XFER_PAGES};
	memset(rec + 5, 'P', sizeof(rec) - 5);
	assert_int_equal(ferry_write_all(sv[1], rec, sizeof(rec)), 0);
	/* nothing reaches the receiver's page channel: it ends, and the relay fails */
	char c;
	assert_int_equal(read(r.local[FERRY_XFER_PAGES], &c, 1), 0);
	assert_int_equal(end_status(&r), 1);
	close(sv[1]);
	close(mid[1]);
	assert_int_equal(end_status(&s), 1);
}

/* F10: connections that do not prove the key (silent, garbage) do not fail the receiver. */
static void test_accept_listen(void **state)
{
	/* as the starter and ferryd do: a sender the listener turned away sees EPIPE, and is not
	 * killed by SIGPIPE (the wrong-key sender below may still be writing when it is refused) */
	signal(SIGPIPE, SIG_IGN);
	char path[] = "/tmp/ferry-xfer-listen-XXXXXX";
	assert_non_null(mkdtemp(path));
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/s", path);
	int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(ls, 16), 0);
	/* first a connection that says nothing: served side by side, it holds up no one */
	int silent = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(silent, (struct sockaddr *)&a, sizeof(a)), 0);
	int garbage = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(garbage, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(
	    ferry_write_all(garbage,
			    "GET / HTTP/1.0\r\n\r\n"
			    "0123456789012345678901234567890123456789012345678901234567890123456789",
			    88),
	    0);
	int wrongkey = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(wrongkey, (struct sockaddr *)&a, sizeof(a)), 0);
	pid_t p1 = fork();
	if (p1 == 0)
		_exit(ferry_xfer_connect(wrongkey, k2, 32, 1001, 5, NULL, NULL) == 0 ? 0 : 1);
	int good = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(good, (struct sockaddr *)&a, sizeof(a)), 0);
	pid_t p2 = fork();
	if (p2 == 0)
		_exit(ferry_xfer_connect(good, cluster, 32, 1001, 10, NULL, NULL) == 0 ? 0 : 1);
	struct ferry_xfer_keys keys;
	_cleanup_error_ struct ferry_error *err = NULL;
	int sk = ferry_xfer_accept_listen(ls, cluster, 32, 1001, 20, &keys, &err);
	assert_true(sk >= 0);
	/* the good one was served while the silent one still waited for its proof: it is told
	 * another sender was first (one served at a time, it would have timed out before) */
	_cleanup_free_ char *told = NULL;
	size_t told_len = 0;
	assert_int_equal(ferry_read_all(silent, 4096, &told, &told_len, NULL), 0);
	assert_non_null(memmem(told, told_len, "another sender was first", 24));
	int st = 0;
	waitpid(p2, &st, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	waitpid(p1, &st, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	close(sk);
	/* nobody proves it: a bounded wait, then a clear error */
	_cleanup_error_ struct ferry_error *e2 = NULL;
	assert_true(ferry_xfer_accept_listen(ls, cluster, 32, 1001, 1, &keys, &e2) < 0);
	assert_non_null(e2);
	close(silent);
	close(garbage);
	close(wrongkey);
	close(good);
	close(ls);
	unlink(a.sun_path);
	rmdir(path);
}

/* F-1: a stranger's connect-and-close connections, however many, and a full set of silent ones
 * do not end the receiver: the sender after them gets through (at 256 connections in all the
 * receiver used to give up at once, saying no dump had arrived). */
static int listen_unix(char path[], struct sockaddr_un *a)
{
	assert_non_null(mkdtemp(path));
	*a = (struct sockaddr_un){.sun_family = AF_UNIX};
	snprintf(a->sun_path, sizeof(a->sun_path), "%s/s", path);
	int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(ls, (struct sockaddr *)a, sizeof(*a)), 0);
	assert_int_equal(listen(ls, 16), 0);
	return ls;
}

static void flood(const struct sockaddr_un *a, int closed, int silent)
{
	for (int i = 0; i < closed + silent; i++) {
		/* (a connect waits while the backlog is full: not for ever, if nobody accepts) */
		struct timeval tv = {.tv_sec = 5};
		int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c < 0 || setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
		    connect(c, (const struct sockaddr *)a, sizeof(*a)) < 0)
			_exit(2);
		if (i < closed)
			close(c); /* the silent ones stay open until the process ends */
	}
}

static void test_accept_listen_flood(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	char path[] = "/tmp/ferry-xfer-flood-XXXXXX";
	struct sockaddr_un a;
	int ls = listen_unix(path, &a);
	pid_t pid = fork();
	if (pid == 0) {
		flood(&a, 300, 16);
		int good = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(good, (struct sockaddr *)&a, sizeof(a)) < 0)
			_exit(2);
		_exit(ferry_xfer_connect(good, cluster, 32, 1001, 10, NULL, NULL) == 0 ? 0 : 1);
	}
	struct ferry_xfer_keys keys;
	_cleanup_error_ struct ferry_error *err = NULL;
	int sk = ferry_xfer_accept_listen(ls, cluster, 32, 1001, 30, &keys, &err);
	int st = 0;
	if (sk < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		fail_msg("the receiver gave up: %s", err->message);
	}
	waitpid(pid, &st, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(sk);
	close(ls);
	unlink(a.sun_path);
	rmdir(path);
}

/* A receiver that strangers kept busy until its time ran out says so, not that nothing came. */
static void test_accept_listen_strangers_said(void **state)
{
	(void)state;
	char path[] = "/tmp/ferry-xfer-flood-XXXXXX";
	struct sockaddr_un a;
	int ls = listen_unix(path, &a);
	pid_t pid = fork();
	if (pid == 0) {
		flood(&a, 20, 0);
		_exit(0);
	}
	struct ferry_xfer_keys keys;
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_true(ferry_xfer_accept_listen(ls, cluster, 32, 1001, 2, &keys, &err) < 0);
	assert_non_null(err);
	assert_non_null(strstr(err->message, "20 connections were refused"));
	assert_non_null(strstr(err->message, "no dump of yours arrived within 2 s"));
	int st = 0;
	waitpid(pid, &st, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(ls);
	unlink(a.sun_path);
	rmdir(path);
}

/* The connection a full handshake table drops: the oldest of the host with the most, and among
 * hosts of one connection each the oldest, never a newcomer that is still proving itself. */
static void test_victim(void **state)
{
	(void)state;
	struct ferry_xfer_slot s[16] = {0};
	for (int i = 0; i < 16; i++) {
		s[i].host[0] = 2;
		s[i].host[1] = (unsigned char)i; /* 16 hosts */
		s[i].deadline = 100 + i;
	}
	s[0].deadline = 200; /* the newest, in the first slot: a sender that just came */
	assert_int_equal(ferry_xfer_victim(s, 16), 1);
	for (int i = 0; i < 10; i++) { /* one host holds 10, newer than the other 6 */
		s[i].host[1] = 99;
		s[i].deadline = 300 + (i == 4 ? -1 : i);
	}
	assert_int_equal(ferry_xfer_victim(s, 16), 4);
}

/* A listening TCP socket on 127.0.0.1, its address in *@a. */
static int loopback_listener(struct sockaddr_in *a)
{
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	*a = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(*a);
	assert_int_equal(bind(ls, (struct sockaddr *)a, sizeof(*a)), 0);
	assert_int_equal(listen(ls, 4), 0);
	assert_int_equal(getsockname(ls, (struct sockaddr *)a, &len), 0);
	return ls;
}

/* Every address of 127/8 is one host: a local user cannot be 16 hosts by binding 127.0.0.2 and
 * up. */
static void test_peer_host_loopback(void **state)
{
	(void)state;
	struct sockaddr_in a;
	int ls = loopback_listener(&a);
	unsigned char host[2][FERRY_XFER_HOST_LEN];
	const char *from[2] = {"127.0.0.1", "127.3.2.1"};
	for (int i = 0; i < 2; i++) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in b = {.sin_family = AF_INET};
		inet_pton(AF_INET, from[i], &b.sin_addr);
		assert_int_equal(bind(c, (struct sockaddr *)&b, sizeof(b)), 0);
		assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
		int sk = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		assert_true(sk >= 0);
		ferry_xfer_peer_host(sk, host[i]);
		close(sk);
		close(c);
	}
	assert_int_equal(host[0][0], AF_INET);
	assert_memory_equal(host[0], host[1], FERRY_XFER_HOST_LEN);
	close(ls);
}

/* The kernel's answer to a lookup of one socket, as ferry_xfer_diag_uid reads it. */
struct diag_reply {
	struct nlmsghdr h;
	struct inet_diag_msg m;
};

static struct diag_reply diag_reply(uint32_t seq, const struct inet_diag_sockid *id, uint8_t state, uid_t uid)
{
	struct diag_reply r = {
	    .h = {.nlmsg_len = sizeof(r), .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_seq = seq},
	    .m = {.idiag_family = AF_INET, .idiag_state = state, .id = *id, .idiag_uid = uid},
	};
	r.m.id.idiag_cookie[0] = 12345; /* the kernel's own, whatever we asked */
	return r;
}

/* The answer is read exactly: the uid of a connected socket that is the one asked for, and
 * nothing from an error, another socket (the kernel falls back to a listening one), a TIME_WAIT
 * one (uid 0), another request's answer or a cut or malformed message. */
static void test_diag_uid(void **state)
{
	(void)state;
	struct inet_diag_sockid id = {.idiag_sport = htons(40000), .idiag_dport = htons(7000)};
	id.idiag_src[0] = htonl(0x7f000001);
	id.idiag_dst[0] = htonl(0x7f000001);
	uid_t uid = 7;
	struct diag_reply r = diag_reply(9, &id, TCP_ESTABLISHED, 1002);
	assert_int_equal(ferry_xfer_diag_uid(&r, sizeof(r), 9, AF_INET, &id, &uid), 0);
	assert_int_equal(uid, 1002);
	r.m.idiag_state = TCP_FIN_WAIT2; /* connected and closed: still its owner's */
	assert_int_equal(ferry_xfer_diag_uid(&r, sizeof(r), 9, AF_INET, &id, &uid), 0);
	/* an IPv6 socket with IPv4-mapped addresses for an IPv4 lookup is the same socket */
	struct diag_reply r6 = r;
	r6.m.idiag_family = AF_INET6;
	memset(r6.m.id.idiag_src, 0, 16);
	memset(r6.m.id.idiag_dst, 0, 16);
	r6.m.id.idiag_src[2] = r6.m.id.idiag_dst[2] = htonl(0xffff);
	r6.m.id.idiag_src[3] = r6.m.id.idiag_dst[3] = htonl(0x7f000001);
	uid = 7;
	assert_int_equal(ferry_xfer_diag_uid(&r6, sizeof(r6), 9, AF_INET, &id, &uid), 0);
	assert_int_equal(uid, 1002);
	r6.m.id.idiag_dst[3] = htonl(0x7f000002);
	assert_int_equal(ferry_xfer_diag_uid(&r6, sizeof(r6), 9, AF_INET, &id, &uid), -ESRCH);

	uid = 7;
	r.m.idiag_state = TCP_LISTEN;
	assert_int_equal(ferry_xfer_diag_uid(&r, sizeof(r), 9, AF_INET, &id, &uid), -ENOENT);
	r.m.idiag_state = TCP_TIME_WAIT;
	assert_int_equal(ferry_xfer_diag_uid(&r, sizeof(r), 9, AF_INET, &id, &uid), -ENOENT);
	r.m.idiag_state = TCP_ESTABLISHED;
	r.m.id.idiag_sport = htons(40001); /* another socket */
	assert_int_equal(ferry_xfer_diag_uid(&r, sizeof(r), 9, AF_INET, &id, &uid), -ESRCH);
	r.m.id.idiag_sport = id.idiag_sport;
	r.m.id.idiag_dport = htons(7001);
	assert_int_equal(ferry_xfer_diag_uid(&r, sizeof(r), 9, AF_INET, &id, &uid), -ESRCH);
	r.m.id.idiag_dport = id.idiag_dport;
	r.m.id.idiag_src[0] = htonl(0x7f000002);
	assert_int_equal(ferry_xfer_diag_uid(&r, sizeof(r), 9, AF_INET, &id, &uid), -ESRCH);
	r.m.id.idiag_src[0] = id.idiag_src[0];
	r.m.idiag_family = AF_UNIX;
	assert_int_equal(ferry_xfer_diag_uid(&r, sizeof(r), 9, AF_INET, &id, &uid), -ESRCH);
	r.m.idiag_family = AF_INET;
	assert_int_equal(ferry_xfer_diag_uid(&r, sizeof(r), 8, AF_INET, &id, &uid), -EBADMSG); /* seq */
	/* cut anywhere, or claiming more than there is, or a header only */
	for (size_t len = 0; len < sizeof(r); len++)
		assert_int_equal(ferry_xfer_diag_uid(&r, len, 9, AF_INET, &id, &uid), -EBADMSG);
	r.h.nlmsg_len = sizeof(r) - 1;
	assert_int_equal(ferry_xfer_diag_uid(&r, sizeof(r), 9, AF_INET, &id, &uid), -EBADMSG);
	r.h.nlmsg_len = sizeof(r.h);
	assert_int_equal(ferry_xfer_diag_uid(&r, sizeof(r), 9, AF_INET, &id, &uid), -EBADMSG);
	r.h.nlmsg_len = sizeof(r);
	r.h.nlmsg_type = NLMSG_DONE;
	assert_int_equal(ferry_xfer_diag_uid(&r, sizeof(r), 9, AF_INET, &id, &uid), -EBADMSG);
	assert_int_equal(uid, 7); /* none of them said anything */

	/* the kernel's error: no such socket (a remote peer, or one already gone) */
	struct {
		struct nlmsghdr h;
		struct nlmsgerr e;
	} er = {.h = {.nlmsg_len = sizeof(er), .nlmsg_type = NLMSG_ERROR, .nlmsg_seq = 9},
		.e = {.error = -ENOENT}};
	assert_int_equal(ferry_xfer_diag_uid(&er, sizeof(er), 9, AF_INET, &id, &uid), -ENOENT);
	er.e.error = 0; /* an acknowledgement is no answer */
	assert_int_equal(ferry_xfer_diag_uid(&er, sizeof(er), 9, AF_INET, &id, &uid), -EBADMSG);
	er.e.error = INT_MIN;
	assert_int_equal(ferry_xfer_diag_uid(&er, sizeof(er), 9, AF_INET, &id, &uid), -EBADMSG);
	er.h.nlmsg_len = sizeof(er.h) + 2;
	assert_int_equal(ferry_xfer_diag_uid(&er, sizeof(er), 9, AF_INET, &id, &uid), -EBADMSG);
	assert_int_equal(uid, 7);
}

/* The local host of a connection from 127.@b.0.1 to @a, made by a process of @as (the caller
 * when (uid_t)-1), accepted on @ls: the classification the listening receiver makes. */
static void local_host(int ls, const struct sockaddr_in *a, int b, uid_t as,
		       unsigned char host[FERRY_XFER_HOST_LEN])
{
	int fds[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		if (as != (uid_t)-1 &&
		    (setgroups(0, NULL) < 0 || setresgid(as, as, as) < 0 || setresuid(as, as, as) < 0))
			_exit(2);
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in from = {.sin_family = AF_INET,
					   .sin_addr.s_addr = htonl(0x7f000001 | (b << 16))};
		if (bind(c, (struct sockaddr *)&from, sizeof(from)) < 0 ||
		    connect(c, (const struct sockaddr *)a, sizeof(*a)) < 0)
			_exit(3);
		char x;
		(void)!write(fds[1], "c", 1);
		(void)!read(fds[1], &x, 1); /* open until the host is known */
		_exit(0);
	}
	close(fds[1]);
	char x;
	assert_int_equal(read(fds[0], &x, 1), 1);
	int sk = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	assert_true(sk >= 0);
	ferry_xfer_peer_host_local(sk, host);
	close(fds[0]);
	close(sk);
	int st = 0;
	waitpid(pid, &st, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A connection from this node is the host of the user who made it, whatever 127.x address it
 * comes from: another user's are another host, and so a flood of theirs is their host's. */
static void test_peer_host_local_uid(void **state)
{
	(void)state;
	struct sockaddr_in a;
	int ls = loopback_listener(&a);
	unsigned char mine[FERRY_XFER_HOST_LEN], mine2[FERRY_XFER_HOST_LEN], theirs[FERRY_XFER_HOST_LEN];
	local_host(ls, &a, 0, (uid_t)-1, mine);
	assert_int_equal(mine[0], FERRY_XFER_HOST_UID);
	assert_int_equal(ferry_get_le32(mine + 1), getuid());
	local_host(ls, &a, 3, (uid_t)-1, mine2);
	assert_memory_equal(mine, mine2, FERRY_XFER_HOST_LEN);
	if (getuid() == 0) { /* another user's (nobody's) */
		local_host(ls, &a, 0, 65534, theirs);
		assert_int_equal(theirs[0], FERRY_XFER_HOST_UID);
		assert_int_equal(ferry_get_le32(theirs + 1), 65534);
		/* 15 of theirs, older or newer, and the one of ours: theirs go first */
		struct ferry_xfer_slot s[16];
		for (int i = 0; i < 16; i++) {
			memcpy(s[i].host, i == 5 ? mine : theirs, FERRY_XFER_HOST_LEN);
			s[i].deadline = 100 + i;
		}
		s[5].deadline = 50; /* ours is the oldest of all */
		assert_int_equal(ferry_xfer_victim(s, 16), 0);
	}
	/* a peer the kernel knows nothing of (no socket of this node's): its address, as before */
	int u[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, u), 0);
	uid_t uid = 7;
	assert_true(ferry_xfer_peer_uid(u[0], &uid) < 0);
	assert_int_equal(uid, 7);
	unsigned char none[FERRY_XFER_HOST_LEN], zero[FERRY_XFER_HOST_LEN] = {0};
	ferry_xfer_peer_host_local(u[0], none);
	assert_memory_equal(none, zero, FERRY_XFER_HOST_LEN);
	close(u[0]);
	close(u[1]);
	close(ls);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_wrong_key_and_direction),
	    cmocka_unit_test(test_tampered),
	    cmocka_unit_test(test_reordered_replayed),
	    cmocka_unit_test(test_lengths),
	    cmocka_unit_test(test_read_truncated),
	    cmocka_unit_test(test_kdf),
	    cmocka_unit_test(test_relay_round_trip),
	    cmocka_unit_test(test_relay_injection),
	    cmocka_unit_test(test_relay_compression),
	    cmocka_unit_test(test_relay_bad_compressed),
	    cmocka_unit_test(test_accept_listen),
	    cmocka_unit_test(test_accept_listen_flood),
	    cmocka_unit_test(test_accept_listen_strangers_said),
	    cmocka_unit_test(test_victim),
	    cmocka_unit_test(test_peer_host_loopback),
	    cmocka_unit_test(test_diag_uid),
	    cmocka_unit_test(test_peer_host_local_uid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
