/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <sys/stat.h>

#include "fs.h"
#include "manifest.h"
#include "xfer.h"

static int read_verdict_rest(int sk, unsigned timeout, struct ferry_error **err);

static int read_full(int sk, void *buf, size_t len, unsigned timeout, struct ferry_error **err)
{
	unsigned char *p = buf;
	while (len > 0) {
		struct pollfd pfd = {.fd = sk, .events = POLLIN};
		int r = poll(&pfd, 1, timeout ? (int)timeout * 1000 : -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return ferry_error_msg(err, ETIMEDOUT, "the peer sent nothing for %u s", timeout);
		if (r < 0)
			return ferry_error_set(err, errno, "poll");
		ssize_t n = read(sk, p, len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return ferry_error_set(err, errno, "read from the peer");
		if (n == 0)
			return ferry_error_msg(err, ECONNRESET, "the peer closed the connection");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

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
static void put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
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
static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
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
	if ((r = read_full(sk, s, sizeof(s), timeout, err)) < 0)
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
	int r = read_full(sk, hello, sizeof(hello), timeout, err);
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
	if ((r = read_full(sk, reply, 1, timeout, err)) < 0)
		return ferry_error_wrap(err, "the receiver refused the dump");
	if (reply[0] == 'N') /* the receiver said why it refused */
		return read_verdict_rest(sk, timeout, err);
	if ((r = read_full(sk, reply + 1, sizeof(reply) - 1, timeout, err)) < 0)
		return ferry_error_wrap(err, "the receiver refused the dump");
	unsigned char want[32];
	if ((r = proof(key, keylen, role_r, hello + 4, s + 8, (uint32_t)uid, want, err)) < 0)
		return r;
	if (memcmp(reply, "FXR1", 4) != 0 || CRYPTO_memcmp(want, reply + 4, 32) != 0)
		return ferry_error_msg(err, EACCES, "the receiver did not prove the cluster key: refused");
	return 0;
}

int ferry_xfer_send_file(int sk, int dirfd, const char *name, struct ferry_error **err)
{
	if (!ferry_manifest_name_ok(name))
		return ferry_error_msg(err, EINVAL, "bad file name '%s'", name);
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return ferry_error_set(err, errno ? errno : EINVAL, "open '%s'", name);
	size_t nl = strlen(name);
	unsigned char hdr[1 + 2 + 255 + 8];
	hdr[0] = 'F';
	put_u16(hdr + 1, (uint16_t)nl);
	memcpy(hdr + 3, name, nl);
	put_u64(hdr + 3 + nl, (uint64_t)st.st_size);
	int r = write_full(sk, hdr, 3 + nl + 8, err);
	if (r < 0)
		return r;
	const size_t bufsz = 1 << 20;
	_cleanup_free_ unsigned char *buf = xmalloc(bufsz);
	uint64_t left = (uint64_t)st.st_size;
	off_t off = 0;
	while (left > 0) {
		ssize_t n = pread(fd, buf, left < bufsz ? (size_t)left : bufsz, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return ferry_error_set(err, n < 0 ? errno : EIO, "read '%s' (changed while sending?)",
					       name);
		if ((r = write_full(sk, buf, (size_t)n, err)) < 0)
			return r;
		left -= (uint64_t)n;
		off += n;
	}
	return 0;
}

int ferry_xfer_send_manifest(int sk, const char *text, size_t len, struct ferry_error **err)
{
	if (len > FERRY_XFER_MAX_MANIFEST)
		return ferry_error_msg(err, EFBIG, "manifest too large");
	unsigned char hdr[5];
	hdr[0] = 'M';
	put_u32(hdr + 1, (uint32_t)len);
	int r = write_full(sk, hdr, sizeof(hdr), err);
	if (r == 0)
		r = write_full(sk, text, len, err);
	if (r == 0)
		r = write_full(sk, "E", 1, err);
	return r;
}

int ferry_xfer_receive(int sk, int dirfd, unsigned timeout, char **ret_manifest, size_t *ret_len,
		       struct ferry_error **err)
{
	_cleanup_free_ char *manifest = NULL;
	size_t mlen = 0;
	unsigned files = 0;
	const size_t bufsz = 1 << 20;
	_cleanup_free_ unsigned char *buf = xmalloc(bufsz);
	for (;;) {
		unsigned char type;
		int r = read_full(sk, &type, 1, timeout, err);
		if (r < 0)
			return r;
		if (type == 'E')
			break;
		if (type == 'M') {
			unsigned char l[4];
			if ((r = read_full(sk, l, 4, timeout, err)) < 0)
				return r;
			uint32_t n = get_u32(l);
			if (manifest || n > FERRY_XFER_MAX_MANIFEST)
				return ferry_error_msg(err, EPROTO, "bad manifest record");
			manifest = xmalloc((size_t)n + 1);
			if ((r = read_full(sk, manifest, n, timeout, err)) < 0)
				return r;
			manifest[n] = '\0';
			mlen = n;
			continue;
		}
		if (type != 'F')
			return ferry_error_msg(err, EPROTO, "unknown record 0x%02x in the checkpoint stream",
					       type);
		if (++files > FERRY_XFER_MAX_FILES)
			return ferry_error_msg(err, EPROTO, "too many files in the checkpoint stream");
		unsigned char l[2];
		if ((r = read_full(sk, l, 2, timeout, err)) < 0)
			return r;
		uint16_t nl = get_u16(l);
		char name[256];
		if (nl == 0 || nl > 255)
			return ferry_error_msg(err, EPROTO, "bad file name length %u", nl);
		if ((r = read_full(sk, name, nl, timeout, err)) < 0)
			return r;
		name[nl] = '\0';
		if (memchr(name, '\0', nl) || !ferry_manifest_name_ok(name))
			return ferry_error_msg(err, EPROTO, "bad file name in the checkpoint stream");
		unsigned char sz[8];
		if ((r = read_full(sk, sz, 8, timeout, err)) < 0)
			return r;
		uint64_t left = get_u64(sz);
		_cleanup_close_ int fd =
		    openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
		if (fd < 0)
			return ferry_error_set(err, errno, "create '%s'", name);
		while (left > 0) {
			size_t chunk = left < bufsz ? (size_t)left : bufsz;
			if ((r = read_full(sk, buf, chunk, timeout, err)) < 0)
				return r;
			int w = ferry_write_all(fd, buf, chunk);
			if (w < 0)
				return ferry_error_set(err, -w, "write '%s'", name);
			left -= chunk;
		}
	}
	if (!manifest)
		return ferry_error_msg(err, EPROTO, "the checkpoint stream has no manifest");
	*ret_manifest = TAKE_PTR(manifest);
	*ret_len = mlen;
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
	int r = read_full(sk, &type, 1, timeout, err);
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
	if ((r = read_full(sk, l, 2, timeout, err)) < 0)

		return r;
	uint16_t n = get_u16(l);
	if (n > 4096)
		return ferry_error_msg(err, EPROTO, "bad verdict from the receiver");
	char msg[4097];
	if ((r = read_full(sk, msg, n, timeout, err)) < 0)
		return r;
	msg[n] = '\0';
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	return ferry_error_msg(err, EREMOTEIO, "the receiver failed: %s", msg);
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
