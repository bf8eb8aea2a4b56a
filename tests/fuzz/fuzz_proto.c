/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target for ferryd's wire protocol parser (src/lib/proto.c), which reads what local
 * users (unix socket) and peers (TCP) send: arbitrary bytes must end in a clean error or a
 * message whose every field is valid (key 1..32 of [a-z_], unique; value printable, at most
 * FERRY_PROTO_VALUE_MAX; at most FERRY_PROTO_FIELDS), and a parsed message, sent again and
 * parsed again, gives the same fields in the same order. The input is also read as a stream
 * (length prefix included) through ferry_msg_recv; a parsed message's "req" blob (proto.h) is
 * decoded strictly, and what it gives encodes to the same fields. */
#include <stdint.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "fs.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_fields(const struct ferry_msg *m)
{
	if (m->n > FERRY_PROTO_FIELDS)
		abort();
	for (size_t i = 0; i < m->n; i++) {
		const char *k = m->keys[i], *v = m->vals[i];
		size_t kl = strlen(k);
		if (kl == 0 || kl > 32 || strspn(k, "abcdefghijklmnopqrstuvwxyz_") != kl)
			abort();
		if (strlen(v) > FERRY_PROTO_VALUE_MAX)
			abort();
		for (const char *p = v; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
		for (size_t j = 0; j < i; j++)
			if (streq(m->keys[j], k))
				abort();
		if (ferry_msg_get(m, k) != v)
			abort();
	}
}

static void same(const struct ferry_msg *a, const struct ferry_msg *b)
{
	if (a->n != b->n)
		abort();
	for (size_t i = 0; i < a->n; i++)
		if (!streq(a->keys[i], b->keys[i]) || !streq(a->vals[i], b->vals[i]))
			abort();
}

/* @m sent through a socketpair and received again */
static void resend(const struct ferry_msg *m)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	struct ferry_error *err = NULL;
	if (ferry_msg_send(sv[0], m, &err) < 0) /* it came in under the limit: it goes out too */
		abort();
	close(sv[0]);
	struct ferry_msg r = {0};
	if (ferry_msg_recv(sv[1], 1, &r, &err) < 0)
		abort();
	close(sv[1]);
	same(m, &r);
	/* and nothing after it */
	ferry_msg_clear(&r);
	ferry_error_free(err);
}

/* The blob of a parsed message's "req" fields (a start request's): a clean error, or bytes that
 * ferry_msg_set_blob gives back as the same fields. */
static void blob(const struct ferry_msg *m)
{
	static unsigned char buf[FERRY_PROTO_BLOB_MAX];
	size_t len = 0;
	struct ferry_error *err = NULL;
	if (ferry_msg_get_blob(m, "req", buf, sizeof(buf), &len, &err) < 0) {
		if (!err || !err->message)
			abort();
		ferry_error_free(err);
		return;
	}
	if (len > sizeof(buf))
		abort();
	struct ferry_msg again = {0};
	ferry_msg_set_blob(&again, "req", buf, len);
	for (size_t i = 0; i < again.n; i++)
		if (!streq(ferry_msg_get(m, again.keys[i]) ?: "", again.vals[i]))
			abort();
	ferry_msg_clear(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* 1. the payload parser */
	struct ferry_msg m = {0};
	struct ferry_error *err = NULL;
	int r = ferry_msg_parse((const char *)data, size, &m, &err);
	if (r < 0) {
		if (!err || !err->message || m.n != 0)
			abort();
	} else {
		if (err || r != 0 || size > FERRY_PROTO_MAX)
			abort();
		check_fields(&m);
		resend(&m);
		blob(&m);
		/* ferry_msg_set keeps what the parser accepted */
		struct ferry_msg copy = {0};
		for (size_t i = 0; i < m.n; i++)
			ferry_msg_set(&copy, m.keys[i], "%s", m.vals[i]);
		same(&m, &copy);
		ferry_msg_clear(&copy);
	}
	ferry_msg_clear(&m);
	ferry_error_free(err);
	err = NULL;

	/* 2. the same bytes as a stream (length prefix, then payload), as ferryd reads a socket */
	int fd = memfd_create("stream", MFD_CLOEXEC);
	if (fd < 0 || ferry_write_all(fd, data, size) < 0 || lseek(fd, 0, SEEK_SET) < 0)
		abort();
	struct ferry_msg s = {0};
	r = ferry_msg_recv(fd, 1, &s, &err);
	if (r < 0) {
		if (!err || s.n != 0)
			abort();
	} else {
		check_fields(&s);
		resend(&s);
	}
	ferry_msg_clear(&s);
	ferry_error_free(err);
	close(fd);
	return 0;
}
