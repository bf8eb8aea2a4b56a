/* SPDX-License-Identifier: GPL-2.0-or-later */
/* channel.c — AES-256-GCM records (see channel.h). */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "channel.h"
#include "fs.h"

int ferry_channel_kdf(const unsigned char *secret, size_t secretlen, const void *salt, size_t saltlen,
		      const void *info, size_t infolen, unsigned char *out, size_t outlen,
		      struct ferry_error **err)
{
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t n = outlen;
	bool ok = pc && EVP_PKEY_derive_init(pc) > 0 && EVP_PKEY_CTX_set_hkdf_md(pc, EVP_sha256()) > 0 &&
		  EVP_PKEY_CTX_set1_hkdf_salt(pc, salt, (int)saltlen) > 0 &&
		  EVP_PKEY_CTX_set1_hkdf_key(pc, secret, (int)secretlen) > 0 &&
		  EVP_PKEY_CTX_add1_hkdf_info(pc, info, (int)infolen) > 0 &&
		  EVP_PKEY_derive(pc, out, &n) > 0 && n == outlen;
	EVP_PKEY_CTX_free(pc);
	if (!ok) {
		OPENSSL_cleanse(out, outlen);
		return ferry_error_msg(err, EIO, "derive the session keys (HKDF) failed");
	}
	return 0;
}

int ferry_channel_init(struct ferry_channel *c, const unsigned char key[FERRY_CHANNEL_KEY], uint32_t dir,
		       struct ferry_error **err)
{
	*c = (struct ferry_channel){.dir = dir};
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return ferry_error_msg(err, ENOMEM, "no memory for a cipher");
	c->ctx = ctx;
	memcpy(c->key, key, FERRY_CHANNEL_KEY);
	return 0;
}

void ferry_channel_done(struct ferry_channel *c)
{
	if (c->ctx)
		EVP_CIPHER_CTX_free(c->ctx);
	OPENSSL_cleanse(c, sizeof(*c));
}

static void nonce_of(const struct ferry_channel *c, unsigned char iv[12])
{
	for (int i = 0; i < 4; i++)
		iv[i] = (unsigned char)(c->dir >> (24 - 8 * i));
	for (int i = 0; i < 8; i++)
		iv[4 + i] = (unsigned char)(c->seq >> (56 - 8 * i));
}

static int fail(struct ferry_channel *c, struct ferry_error **err, int code, const char *what)
{
	c->failed = true;
	return ferry_error_msg(err, code, "%s", what);
}

#define AUTH_FAILED                                                                                          \
	"a record of the transfer failed authentication (changed, replayed or reordered in transit, or "     \
	"written by someone without the cluster key): refused"

int ferry_channel_seal(struct ferry_channel *c, uint8_t type, unsigned char *buf, size_t len,
		       struct ferry_error **err)
{
	if (c->failed || !c->ctx)
		return ferry_error_msg(err, EPROTO, "the transfer channel has failed");
	if (len > FERRY_CHANNEL_MAX)
		return ferry_error_msg(err, EMSGSIZE, "record of %zu bytes", len);
	for (int i = 0; i < 4; i++)
		buf[i] = (unsigned char)(len >> (8 * i));
	buf[4] = type;
	unsigned char iv[12];
	nonce_of(c, iv);
	EVP_CIPHER_CTX *ctx = c->ctx;
	unsigned char *p = buf + FERRY_CHANNEL_HDR;
	int n = 0, m = 0;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, c->key, iv) <= 0 ||
	    EVP_EncryptUpdate(ctx, NULL, &n, buf, FERRY_CHANNEL_HDR) <= 0 ||
	    (len && EVP_EncryptUpdate(ctx, p, &n, p, (int)len) <= 0) ||
	    EVP_EncryptFinal_ex(ctx, p + n, &m) <= 0 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, FERRY_CHANNEL_TAG, p + len) <= 0)
		return fail(c, err, EIO, "AES-GCM encryption failed");
	c->seq++;
	return (int)(FERRY_CHANNEL_HDR + len + FERRY_CHANNEL_TAG);
}

int ferry_channel_header(struct ferry_channel *c, const unsigned char hdr[FERRY_CHANNEL_HDR],
			 uint8_t *ret_type, size_t *ret_body, struct ferry_error **err)
{
	if (c->failed || !c->ctx)
		return ferry_error_msg(err, EPROTO, "the transfer channel has failed");
	uint32_t len =
	    (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
	if (len > FERRY_CHANNEL_MAX)
		return fail(c, err, EPROTO, AUTH_FAILED);
	*ret_type = hdr[4];
	*ret_body = (size_t)len + FERRY_CHANNEL_TAG;
	return 0;
}

int ferry_channel_open(struct ferry_channel *c, unsigned char *buf, size_t reclen, uint8_t *ret_type,
		       size_t *ret_len, struct ferry_error **err)
{
	size_t body = 0;
	uint8_t type = 0;
	if (reclen < FERRY_CHANNEL_HDR + FERRY_CHANNEL_TAG)
		return fail(c, err, EPROTO, AUTH_FAILED);
	int r = ferry_channel_header(c, buf, &type, &body, err);
	if (r < 0)
		return r;
	if (reclen != FERRY_CHANNEL_HDR + body)
		return fail(c, err, EPROTO, AUTH_FAILED);
	size_t len = body - FERRY_CHANNEL_TAG;
	unsigned char iv[12];
	nonce_of(c, iv);
	EVP_CIPHER_CTX *ctx = c->ctx;
	unsigned char *p = buf + FERRY_CHANNEL_HDR;
	int n = 0, m = 0;
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, c->key, iv) <= 0 ||
	    EVP_DecryptUpdate(ctx, NULL, &n, buf, FERRY_CHANNEL_HDR) <= 0 ||
	    (len && EVP_DecryptUpdate(ctx, p, &n, p, (int)len) <= 0) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, FERRY_CHANNEL_TAG, p + len) <= 0 ||
	    EVP_DecryptFinal_ex(ctx, p + n, &m) <= 0) {
		OPENSSL_cleanse(p, len); /* never hand out unauthenticated plaintext */
		return fail(c, err, EBADMSG, AUTH_FAILED);
	}
	c->seq++;
	*ret_type = type;
	*ret_len = len;
	return 0;
}

int ferry_channel_write(struct ferry_channel *c, int fd, uint8_t type, unsigned char *buf, size_t len,
			struct ferry_error **err)
{
	int n = ferry_channel_seal(c, type, buf, len, err);
	if (n < 0)
		return n;
	int r = ferry_write_all(fd, buf, (size_t)n);
	if (r < 0) {
		c->failed = true;
		return ferry_error_set(err, -r, "write to the peer");
	}
	return 0;
}

int ferry_channel_send(struct ferry_channel *c, int fd, uint8_t type, const void *data, size_t len,
		       struct ferry_error **err)
{
	_cleanup_free_ unsigned char *buf = xmalloc(
	    FERRY_CHANNEL_HDR + (len < FERRY_CHANNEL_MAX ? len : FERRY_CHANNEL_MAX) + FERRY_CHANNEL_TAG);
	const unsigned char *d = data;
	for (size_t off = 0; off < len;) {
		size_t n = len - off < FERRY_CHANNEL_MAX ? len - off : FERRY_CHANNEL_MAX;
		memcpy(buf + FERRY_CHANNEL_HDR, d + off, n);
		int r = ferry_channel_write(c, fd, type, buf, n, err);
		if (r < 0)
			return r;
		off += n;
	}
	return 0;
}

int ferry_channel_read(struct ferry_channel *c, int fd, unsigned timeout, unsigned char *buf,
		       uint8_t *ret_type, size_t *ret_len, struct ferry_error **err)
{
	uint8_t type = 0;
	size_t body = 0;
	int r = ferry_read_timeout(fd, buf, FERRY_CHANNEL_HDR, timeout, err);
	if (r < 0)
		return r;
	if ((r = ferry_channel_header(c, buf, &type, &body, err)) < 0)
		return r;
	if ((r = ferry_read_timeout(fd, buf + FERRY_CHANNEL_HDR, body, timeout, err)) < 0) {
		c->failed = true;
		return r;
	}
	return ferry_channel_open(c, buf, FERRY_CHANNEL_HDR + body, ret_type, ret_len, err);
}
