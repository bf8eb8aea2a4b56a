/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "fs.h"
#include "manifest.h"
#include "xfer.h"

static int read_verdict_rest(int sk, unsigned timeout, struct ferry_error **err);

static int write_full(int sk, const void *buf, size_t len, struct ferry_error **err)
{
	int r = ferry_write_all(sk, buf, len);
	if (r < 0)
		return ferry_error_set(err, -r, "write to the peer");
	return 0;
}

static void put_u16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}
static void put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}
static uint16_t get_u16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}
static uint32_t get_u32(const unsigned char *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* HMAC(key, role || nonce_r || nonce_s || uid) */
static int proof(const unsigned char *key, size_t keylen, const char *role, const unsigned char *nr,
		 const unsigned char *ns, uint32_t uid, unsigned char out[32], struct ferry_error **err)
{
	unsigned char msg[64 + 2 * FERRY_XFER_NONCE + 4];
	size_t rl = strlen(role);
	memcpy(msg, role, rl);
	memcpy(msg + rl, nr, FERRY_XFER_NONCE);
	memcpy(msg + rl + FERRY_XFER_NONCE, ns, FERRY_XFER_NONCE);
	put_u32(msg + rl + 2 * FERRY_XFER_NONCE, uid);
	unsigned int len = 0;
	if (keylen < FERRY_KEY_MIN ||
	    !HMAC(EVP_sha256(), key, (int)keylen, msg, rl + 2 * FERRY_XFER_NONCE + 4, out, &len) || len != 32)
		return ferry_error_msg(err, EIO, "HMAC failed");
	return 0;
}

#define ROLE_S "ferry-xfer-1 sender"
#define ROLE_R "ferry-xfer-1 receiver"

static int hs_accept(int sk, const unsigned char *key, size_t keylen, const char *role_s, const char *role_r,
		     uid_t uid, unsigned timeout, struct ferry_error **err)
{
	unsigned char hello[4 + FERRY_XFER_NONCE];
	memcpy(hello, "FXF1", 4);
	if (getentropy(hello + 4, FERRY_XFER_NONCE) < 0)
		return ferry_error_set(err, errno, "getentropy");
	int r = write_full(sk, hello, sizeof(hello), err);
	if (r < 0)
		return r;
	unsigned char s[4 + 4 + FERRY_XFER_NONCE + 32];
	if ((r = ferry_read_timeout(sk, s, sizeof(s), timeout, err)) < 0)
		return r;
	if (memcmp(s, "FXS1", 4) != 0)
		return ferry_error_msg(err, EPROTO, "the peer is not a ferry sender");
	uint32_t peer_uid = get_u32(s + 4);
	unsigned char want[32];
	if ((r = proof(key, keylen, role_s, hello + 4, s + 8, peer_uid, want, err)) < 0)
		return r;
	if (CRYPTO_memcmp(want, s + 8 + FERRY_XFER_NONCE, 32) != 0)
		return ferry_error_msg(err, EACCES, "the peer did not prove the cluster key: refused");
	if (peer_uid != (uint32_t)uid)
		return ferry_error_msg(err, EACCES,
				       "the dump comes from uid %u, not from you (uid %u): refused",
				       (unsigned)peer_uid, (unsigned)uid);
	unsigned char reply[4 + 32];
	memcpy(reply, "FXR1", 4);
	if ((r = proof(key, keylen, role_r, hello + 4, s + 8, peer_uid, reply + 4, err)) < 0)
		return r;
	return write_full(sk, reply, sizeof(reply), err);
}

static int hs_connect(int sk, const unsigned char *key, size_t keylen, const char *role_s, const char *role_r,
		      uid_t uid, unsigned timeout, struct ferry_error **err)
{
	unsigned char hello[4 + FERRY_XFER_NONCE];
	int r = ferry_read_timeout(sk, hello, sizeof(hello), timeout, err);
	if (r < 0)
		return r;
	if (memcmp(hello, "FXF1", 4) != 0)
		return ferry_error_msg(err, EPROTO, "the peer is not a ferry receiver");
	unsigned char s[4 + 4 + FERRY_XFER_NONCE + 32];
	memcpy(s, "FXS1", 4);
	put_u32(s + 4, (uint32_t)uid);
	if (getentropy(s + 8, FERRY_XFER_NONCE) < 0)
		return ferry_error_set(err, errno, "getentropy");
	if ((r = proof(key, keylen, role_s, hello + 4, s + 8, (uint32_t)uid, s + 8 + FERRY_XFER_NONCE, err)) <
	    0)
		return r;
	if ((r = write_full(sk, s, sizeof(s), err)) < 0)
		return r;
	unsigned char reply[4 + 32];
	if ((r = ferry_read_timeout(sk, reply, 1, timeout, err)) < 0)
		return ferry_error_wrap(err, "the receiver refused the dump");
	if (reply[0] == 'N') /* the receiver said why it refused */
		return read_verdict_rest(sk, timeout, err);
	if ((r = ferry_read_timeout(sk, reply + 1, sizeof(reply) - 1, timeout, err)) < 0)
		return ferry_error_wrap(err, "the receiver refused the dump");
	unsigned char want[32];
	if ((r = proof(key, keylen, role_r, hello + 4, s + 8, (uint32_t)uid, want, err)) < 0)
		return r;
	if (memcmp(reply, "FXR1", 4) != 0 || CRYPTO_memcmp(want, reply + 4, 32) != 0)
		return ferry_error_msg(err, EACCES, "the receiver did not prove the cluster key: refused");
	return 0;
}

int ferry_xfer_send_verdict(int sk, const char *error_or_null)
{
	if (!error_or_null)
		return ferry_write_all(sk, "A", 1);
	size_t n = strlen(error_or_null);
	if (n > 4096)
		n = 4096;
	unsigned char hdr[3];
	hdr[0] = 'N';
	put_u16(hdr + 1, (uint16_t)n);
	int r = ferry_write_all(sk, hdr, 3);
	return r < 0 ? r : ferry_write_all(sk, error_or_null, n);
}

int ferry_xfer_read_verdict(int sk, unsigned timeout, struct ferry_error **err)
{
	unsigned char type;
	int r = ferry_read_timeout(sk, &type, 1, timeout, err);
	if (r < 0)
		return r;
	if (type == 'A')
		return 0;
	if (type != 'N')
		return ferry_error_msg(err, EPROTO, "bad verdict from the receiver");
	return read_verdict_rest(sk, timeout, err);
}

static int read_verdict_rest(int sk, unsigned timeout, struct ferry_error **err)
{
	int r;
	unsigned char l[2];
	if ((r = ferry_read_timeout(sk, l, 2, timeout, err)) < 0)

		return r;
	uint16_t n = get_u16(l);
	if (n > 4096)
		return ferry_error_msg(err, EPROTO, "bad verdict from the receiver");
	char msg[4097];
	if ((r = ferry_read_timeout(sk, msg, n, timeout, err)) < 0)
		return r;
	msg[n] = '\0';
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	return ferry_error_msg(err, EREMOTEIO, "the receiver failed: %s", msg);
}

void ferry_xfer_tune_socket(int sk)
{
	int one = 1, zero = 0;
	(void)setsockopt(sk, IPPROTO_TCP, TCP_CORK, &zero, sizeof(zero));
	(void)setsockopt(sk, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int ferry_xfer_accept(int sk, const unsigned char *key, size_t keylen, uid_t uid, unsigned timeout,
		      struct ferry_error **err)
{
	return hs_accept(sk, key, keylen, ROLE_S, ROLE_R, uid, timeout, err);
}

int ferry_xfer_connect(int sk, const unsigned char *key, size_t keylen, uid_t uid, unsigned timeout,
		       struct ferry_error **err)
{
	return hs_connect(sk, key, keylen, ROLE_S, ROLE_R, uid, timeout, err);
}

/* Daemons: the same proofs under other role names, so that neither kind of session can be
 * replayed as the other. uid 0: a daemon acts for nobody in particular. */
int ferry_peer_accept(int sk, const unsigned char *key, size_t keylen, unsigned timeout,
		      struct ferry_error **err)
{
	return hs_accept(sk, key, keylen, "ferry-peer-1 client", "ferry-peer-1 server", 0, timeout, err);
}

int ferry_peer_connect(int sk, const unsigned char *key, size_t keylen, unsigned timeout,
		       struct ferry_error **err)
{
	return hs_connect(sk, key, keylen, "ferry-peer-1 client", "ferry-peer-1 server", 0, timeout, err);
}

/* After an 'A' verdict the sender answers one byte 'C' (commit): the move is agreed. */
int ferry_xfer_send_commit(int sk)
{
	return ferry_write_all(sk, "C", 1);
}

int ferry_xfer_await_commit(int sk, unsigned timeout)
{
	unsigned char c = 0;
	struct ferry_error *err = NULL;
	int r = ferry_read_timeout(sk, &c, 1, timeout, &err);
	ferry_error_free(err);
	return r < 0 || c != 'C' ? -EPROTO : 0;
}
