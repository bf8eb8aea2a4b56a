/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <openssl/evp.h>
#include <poll.h>
#include <stdarg.h>

#include "fs.h"
#include "proto.h"

#define MAGIC "ferry-proto 1\n"

void ferry_msg_clear(struct ferry_msg *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->keys[i]);
		free(m->vals[i]);
	}
	m->n = 0;
}

static bool key_ok(const char *k, size_t n)
{
	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') || k[i] == '_'))
			return false;
	return true;
}

void ferry_msg_set(struct ferry_msg *m, const char *key, const char *fmt, ...)
{
	if (!key_ok(key, strlen(key)))
		abort();
	va_list ap;
	va_start(ap, fmt);
	char *v = NULL;
	if (vasprintf(&v, fmt, ap) < 0)
		ferry_oom();
	va_end(ap);
	for (char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	if (strlen(v) > FERRY_PROTO_VALUE_MAX)
		v[FERRY_PROTO_VALUE_MAX] = '\0';
	for (size_t i = 0; i < m->n; i++)
		if (streq(m->keys[i], key)) {
			free(m->vals[i]);
			m->vals[i] = v;
			return;
		}
	if (m->n >= FERRY_PROTO_FIELDS)
		abort();
	m->keys[m->n] = xstrdup(key);
	m->vals[m->n++] = v;
}

const char *ferry_msg_get(const struct ferry_msg *m, const char *key)
{
	for (size_t i = 0; i < m->n; i++)
		if (streq(m->keys[i], key))
			return m->vals[i];
	return NULL;
}

#define BLOB_RAW (FERRY_PROTO_BLOB_CHUNK / 4 * 3)
#define BLOB_FIELDS ((FERRY_PROTO_BLOB_MAX + BLOB_RAW - 1) / BLOB_RAW)

static void blob_key(char *key, size_t n, const char *prefix, size_t i)
{
	snprintf(key, n, "%s_%c", prefix, (char)('a' + i));
}

void ferry_msg_set_blob(struct ferry_msg *m, const char *prefix, const void *buf, size_t len)
{
	_Static_assert(BLOB_FIELDS <= 26, "a blob's fields are named _a to _z");
	if (len > FERRY_PROTO_BLOB_MAX)
		abort();
	unsigned char out[FERRY_PROTO_BLOB_CHUNK + 1];
	for (size_t i = 0, off = 0; off < len; i++, off += BLOB_RAW) {
		size_t k = len - off < BLOB_RAW ? len - off : BLOB_RAW;
		EVP_EncodeBlock(out, (const unsigned char *)buf + off, (int)k);
		char key[40];
		blob_key(key, sizeof(key), prefix, i);
		ferry_msg_set(m, key, "%s", (char *)out);
	}
}

int ferry_msg_get_blob(const struct ferry_msg *m, const char *prefix, void *buf, size_t max, size_t *ret_len,
		       struct ferry_error **err)
{
	size_t len = 0;
	bool last = false;
	unsigned char tmp[BLOB_RAW + 3];
	for (size_t i = 0; i < 26; i++) {
		char key[40];
		blob_key(key, sizeof(key), prefix, i);
		const char *v = ferry_msg_get(m, key);
		if (!v) {
			/* no field after a missing one */
			for (size_t j = i + 1; j < 26; j++) {
				blob_key(key, sizeof(key), prefix, j);
				if (ferry_msg_get(m, key))
					return ferry_error_msg(
					    err, EPROTO, "bad %s: field %s after a missing one", prefix, key);
			}
			break;
		}
		size_t n = strlen(v);
		if (last || n == 0 || n % 4 || n > FERRY_PROTO_BLOB_CHUNK ||
		    strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != n)
			return ferry_error_msg(err, EPROTO, "bad %s: field %s is not base64 of its size",
					       prefix, key);
		size_t pad = v[n - 1] == '=' ? (v[n - 2] == '=' ? 2 : 1) : 0;
		last = n < FERRY_PROTO_BLOB_CHUNK || pad; /* (a field with less than 3000 bytes) */
		const char *eq = strchr(v, '=');
		if (eq && eq < v + n - pad)
			return ferry_error_msg(err, EPROTO, "bad %s: field %s is not base64", prefix, key);
		int k = EVP_DecodeBlock(tmp, (const unsigned char *)v, (int)n);
		if (k < 0 || (size_t)k < pad)
			return ferry_error_msg(err, EPROTO, "bad %s: field %s is not base64", prefix, key);
		size_t got = (size_t)k - pad;
		/* canonical: what the encoder makes of these bytes (no stray bits before a '=') */
		unsigned char back[FERRY_PROTO_BLOB_CHUNK + 1];
		EVP_EncodeBlock(back, tmp, (int)got);
		if (strcmp((char *)back, v) != 0)
			return ferry_error_msg(err, EPROTO, "bad %s: field %s is not base64", prefix, key);
		if (len + got > max || len + got > FERRY_PROTO_BLOB_MAX)
			return ferry_error_msg(err, E2BIG, "bad %s: more than %zu bytes", prefix, max);
		memcpy((unsigned char *)buf + len, tmp, got);
		len += got;
	}
	*ret_len = len;
	return 0;
}

int ferry_msg_parse(const char *buf, size_t len, struct ferry_msg *ret, struct ferry_error **err)
{
	struct ferry_msg m = {0};
	if (len > FERRY_PROTO_MAX || len < strlen(MAGIC) || memcmp(buf, MAGIC, strlen(MAGIC)) != 0)
		return ferry_error_msg(err, EPROTO, "not a ferry protocol 1 message");
	size_t pos = strlen(MAGIC);
	while (pos < len) {
		const char *line = buf + pos;
		const char *nl = memchr(line, '\n', len - pos);
		if (!nl) {
			ferry_msg_clear(&m);
			return ferry_error_msg(err, EPROTO, "message line without newline");
		}
		size_t n = (size_t)(nl - line);
		const char *eq = memchr(line, '=', n);
		if (!eq || !key_ok(line, (size_t)(eq - line))) {
			ferry_msg_clear(&m);
			return ferry_error_msg(err, EPROTO, "bad message field");
		}
		size_t vn = n - (size_t)(eq - line) - 1;
		bool ok = vn <= FERRY_PROTO_VALUE_MAX && m.n < FERRY_PROTO_FIELDS;
		for (size_t i = 0; ok && i < vn; i++)
			ok = (unsigned char)eq[1 + i] >= 0x20 && eq[1 + i] != 0x7f;
		_cleanup_free_ char *key = xstrndup(line, (size_t)(eq - line));
		for (size_t i = 0; ok && i < m.n; i++)
			ok = !streq(m.keys[i], key);
		if (!ok) {
			ferry_msg_clear(&m);
			return ferry_error_msg(err, EPROTO, "bad, repeated or too many message fields");
		}
		m.keys[m.n] = TAKE_PTR(key);
		m.vals[m.n++] = xstrndup(eq + 1, vn);
		pos += n + 1;
	}
	*ret = m;
	return 0;
}

int ferry_msg_encode(const struct ferry_msg *m, size_t head, char **ret, size_t *ret_len,
		     struct ferry_error **err)
{
	size_t len = strlen(MAGIC);
	for (size_t i = 0; i < m->n; i++)
		len += strlen(m->keys[i]) + 1 + strlen(m->vals[i]) + 1;
	if (len > FERRY_PROTO_MAX)
		return ferry_error_msg(err, EMSGSIZE, "message too large");
	char *buf = xmalloc(head + len), *p = buf + head;
	memcpy(p, MAGIC, strlen(MAGIC));
	p += strlen(MAGIC);
	for (size_t i = 0; i < m->n; i++) {
		size_t kl = strlen(m->keys[i]), vl = strlen(m->vals[i]);
		memcpy(p, m->keys[i], kl);
		p[kl] = '=';
		memcpy(p + kl + 1, m->vals[i], vl);
		p[kl + 1 + vl] = '\n';
		p += kl + vl + 2;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

int ferry_msg_send(int fd, const struct ferry_msg *m, struct ferry_error **err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = ferry_msg_encode(m, 4, &buf, &len, err);
	if (r < 0)
		return r;
	buf[0] = (char)(len & 0xff);
	buf[1] = (char)((len >> 8) & 0xff);
	buf[2] = (char)((len >> 16) & 0xff);
	buf[3] = (char)((len >> 24) & 0xff);
	r = ferry_write_all(fd, buf, 4 + len);
	if (r < 0)
		return ferry_error_set(err, -r, "send");
	return 0;
}

int ferry_msg_recv(int fd, unsigned timeout, struct ferry_msg *ret, struct ferry_error **err)
{
	unsigned char l[4];
	int r = ferry_read_timeout(fd, l, 4, timeout, err);
	if (r < 0)
		return r;
	size_t len = (size_t)l[0] | (size_t)l[1] << 8 | (size_t)l[2] << 16 | (size_t)l[3] << 24;
	if (len > FERRY_PROTO_MAX)
		return ferry_error_msg(err, EMSGSIZE, "message of %zu bytes refused (at most %u)", len,
				       FERRY_PROTO_MAX);
	_cleanup_free_ char *buf = xmalloc(len + 1);
	if ((r = ferry_read_timeout(fd, buf, len, timeout, err)) < 0)
		return r;
	return ferry_msg_parse(buf, len, ret, err);
}
