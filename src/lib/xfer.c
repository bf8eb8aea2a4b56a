/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "fs.h"
#include "manifest.h"
#include "xfer.h"

static int write_full(int sk, const void *buf, size_t len, struct ferry_error **err)
{
	int r = ferry_write_all(sk, buf, len);
	if (r < 0)
		return ferry_error_set(err, -r, "write to the peer");
	return 0;
}

int ferry_xfer_proof(const unsigned char *key, size_t keylen, const char *role, const unsigned char *nr,
		     const unsigned char *ns, uint32_t uid, unsigned char out[32], struct ferry_error **err)
{
	unsigned char msg[64 + 2 * FERRY_XFER_NONCE + 4];
	size_t rl = strlen(role);
	memcpy(msg, role, rl);
	memcpy(msg + rl, nr, FERRY_XFER_NONCE);
	memcpy(msg + rl + FERRY_XFER_NONCE, ns, FERRY_XFER_NONCE);
	ferry_put_le32(msg + rl + 2 * FERRY_XFER_NONCE, uid);
	unsigned int len = 0;
	if (keylen < FERRY_KEY_MIN ||
	    !HMAC(EVP_sha256(), key, (int)keylen, msg, rl + 2 * FERRY_XFER_NONCE + 4, out, &len) || len != 32)
		return ferry_error_msg(err, EIO, "HMAC failed");
	return 0;
}

#define ROLE_S "ferry-xfer-2 sender"
#define ROLE_R "ferry-xfer-2 receiver"

/* The session's keys: HKDF-SHA256 of the cluster key, salted with both nonces, over both roles
 * and the uid. Whoever relays the handshake sees the nonces and the proofs, never the key. */
static int derive(const unsigned char *key, size_t keylen, const char *role_s, const char *role_r,
		  const unsigned char *nr, const unsigned char *ns, uint32_t uid, struct ferry_xfer_keys *ret,
		  struct ferry_error **err)
{
	if (!ret)
		return 0;
	unsigned char salt[2 * FERRY_XFER_NONCE];
	memcpy(salt, nr, FERRY_XFER_NONCE);
	memcpy(salt + FERRY_XFER_NONCE, ns, FERRY_XFER_NONCE);
	char info[256];
	int n = snprintf(info, sizeof(info) - 4, "ferry session keys\n%s\n%s\n", role_s, role_r);
	if (n < 0 || (size_t)n >= sizeof(info) - 4)
		return ferry_error_msg(err, EINVAL, "role names too long");
	ferry_put_le32((unsigned char *)info + n, uid);
	unsigned char out[2 * FERRY_CHANNEL_KEY];
	int r =
	    ferry_channel_kdf(key, keylen, salt, sizeof(salt), info, (size_t)n + 4, out, sizeof(out), err);
	if (r == 0) {
		memcpy(ret->s2r, out, FERRY_CHANNEL_KEY);
		memcpy(ret->r2s, out + FERRY_CHANNEL_KEY, FERRY_CHANNEL_KEY);
	}
	OPENSSL_cleanse(out, sizeof(out));
	return r;
}

#define HELLO_LEN (4 + FERRY_XFER_NONCE)
#define PROOF_LEN (4 + 4 + FERRY_XFER_NONCE + 32)

/* The receiver's first message. @v: the protocol's version, the magic's last letter ('1'
 * ferryd's, '2' the starters'). */
static int hs_hello(int sk, char v, unsigned char hello[HELLO_LEN], struct ferry_error **err)
{
	memcpy(hello, (char[4]){'F', 'X', 'F', v}, 4);
	if (getentropy(hello + 4, FERRY_XFER_NONCE) < 0)
		return ferry_error_set(err, errno, "getentropy");
	return write_full(sk, hello, HELLO_LEN, err);
}

/* The receiver checks the sender's proof @s and answers with its own. */
static int hs_finish(int sk, const unsigned char *key, size_t keylen, const char *role_s, const char *role_r,
		     char v, uid_t uid, const unsigned char hello[HELLO_LEN],
		     const unsigned char s[PROOF_LEN], struct ferry_xfer_keys *ret_keys,
		     struct ferry_error **err)
{
	if (memcmp(s, (char[4]){'F', 'X', 'S', v}, 4) != 0)
		return ferry_error_msg(err, EPROTO, "the peer is not a ferry sender");
	uint32_t peer_uid = ferry_get_le32(s + 4);
	unsigned char want[32];
	int r = ferry_xfer_proof(key, keylen, role_s, hello + 4, s + 8, peer_uid, want, err);
	if (r < 0)
		return r;
	if (CRYPTO_memcmp(want, s + 8 + FERRY_XFER_NONCE, 32) != 0)
		return ferry_error_msg(err, EACCES, "the peer did not prove the cluster key: refused");
	if (peer_uid != (uint32_t)uid)
		return ferry_error_msg(err, EACCES,
				       "the dump comes from uid %u, not from you (uid %u): refused",
				       (unsigned)peer_uid, (unsigned)uid);
	unsigned char reply[4 + 32];
	memcpy(reply, (char[4]){'F', 'X', 'R', v}, 4);
	if ((r = ferry_xfer_proof(key, keylen, role_r, hello + 4, s + 8, peer_uid, reply + 4, err)) < 0 ||
	    (r = derive(key, keylen, role_s, role_r, hello + 4, s + 8, peer_uid, ret_keys, err)) < 0)
		return r;
	return write_full(sk, reply, sizeof(reply), err);
}

static int hs_accept(int sk, const unsigned char *key, size_t keylen, const char *role_s, const char *role_r,
		     char v, uid_t uid, unsigned timeout, struct ferry_xfer_keys *ret_keys,
		     struct ferry_error **err)
{
	unsigned char hello[HELLO_LEN], s[PROOF_LEN];
	int r = hs_hello(sk, v, hello, err);
	if (r == 0)
		r = ferry_read_within(sk, s, sizeof(s), timeout, err);
	if (r == 0)
		r = hs_finish(sk, key, keylen, role_s, role_r, v, uid, hello, s, ret_keys, err);
	return r;
}

/* Whether the first bytes on @sk are @magic, without taking them (MSG_PEEK): when they are
 * not, whoever owns the connection (ferryd) still reads them whole, such as the record in
 * which the destination's daemon says why its starter refused before the transfer began.
 * Within @timeout seconds. */
static int peek_magic(int sk, const unsigned char magic[4], unsigned timeout, struct ferry_error **err)
{
	long long deadline = ferry_monotonic_ms() + (long long)timeout * 1000;
	unsigned char b[4];
	for (;;) {
		ssize_t n = recv(sk, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);
		if (n == 0)
			return ferry_error_msg(err, ECONNRESET, "the receiver closed the connection");
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return ferry_error_set(err, errno, "read from the peer");
		if (n > 0 && memcmp(b, magic, (size_t)n) != 0)
			return ferry_error_msg(err, EPROTO, "the receiver refused before the transfer began");
		if (n == (ssize_t)sizeof(b))
			return 0;
		long long left = deadline - ferry_monotonic_ms();
		if (left <= 0)
			return ferry_error_msg(err, ETIMEDOUT, "the peer sent nothing for %u s", timeout);
		struct pollfd p = {.fd = sk, .events = POLLIN};
		/* (a part of the magic: the rest is on its way) */
		if (poll(&p, 1, n > 0 ? 10 : (int)(left > INT_MAX ? INT_MAX : left)) < 0 && errno != EINTR)
			return ferry_error_set(err, errno, "poll");
	}
}

static int hs_connect(int sk, const unsigned char *key, size_t keylen, const char *role_s, const char *role_r,
		      char v, uid_t uid, unsigned timeout, struct ferry_xfer_keys *ret_keys,
		      struct ferry_error **err)
{
	unsigned char hello[4 + FERRY_XFER_NONCE];
	int r = peek_magic(sk, (unsigned char[4]){'F', 'X', 'F', (unsigned char)v}, timeout, err);
	if (r < 0)
		return r;
	r = ferry_read_within(sk, hello, sizeof(hello), timeout, err);
	if (r < 0)
		return r;
	if (memcmp(hello, (char[4]){'F', 'X', 'F', v}, 4) != 0)
		return ferry_error_msg(err, EPROTO, "the peer is not a ferry receiver");
	unsigned char s[4 + 4 + FERRY_XFER_NONCE + 32];
	memcpy(s, (char[4]){'F', 'X', 'S', v}, 4);
	ferry_put_le32(s + 4, (uint32_t)uid);
	if (getentropy(s + 8, FERRY_XFER_NONCE) < 0)
		return ferry_error_set(err, errno, "getentropy");
	if ((r = ferry_xfer_proof(key, keylen, role_s, hello + 4, s + 8, (uint32_t)uid,
				  s + 8 + FERRY_XFER_NONCE, err)) < 0)
		return r;
	if ((r = write_full(sk, s, sizeof(s), err)) < 0)
		return r;
	unsigned char reply[4 + 32];
	if ((r = ferry_read_timeout(sk, reply, 1, timeout, err)) < 0)
		return ferry_error_wrap(err, "the receiver refused the dump");
	if (reply[0] == 'N') /* the receiver said why it refused */
		return ferry_xfer_read_refusal(sk, timeout, err);
	if ((r = ferry_read_within(sk, reply + 1, sizeof(reply) - 1, timeout, err)) < 0)
		return ferry_error_wrap(err, "the receiver refused the dump");
	unsigned char want[32];
	if ((r = ferry_xfer_proof(key, keylen, role_r, hello + 4, s + 8, (uint32_t)uid, want, err)) < 0)
		return r;
	if (memcmp(reply, (char[4]){'F', 'X', 'R', v}, 4) != 0 || CRYPTO_memcmp(want, reply + 4, 32) != 0)
		return ferry_error_msg(err, EACCES, "the receiver did not prove the cluster key: refused");
	return derive(key, keylen, role_s, role_r, hello + 4, s + 8, (uint32_t)uid, ret_keys, err);
}

void ferry_xfer_tune_socket(int sk)
{
	int one = 1, zero = 0, idle = FERRY_XFER_KEEPIDLE, intvl = FERRY_XFER_KEEPINTVL,
	    cnt = FERRY_XFER_KEEPCNT;
	unsigned user_ms = FERRY_XFER_UNACKED_S * 1000;
	(void)setsockopt(sk, IPPROTO_TCP, TCP_CORK, &zero, sizeof(zero));
	(void)setsockopt(sk, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* a peer gone silent (its node died, the link is down: no FIN, no reset) while nothing is
	 * in flight: the kernel's probes find out within seconds, not when an application limit
	 * runs out (a side waiting for the other's verdict waits up to 'criu timeout' + 2 'peer timeout') */
	(void)setsockopt(sk, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	(void)setsockopt(sk, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(sk, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(sk, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	/* ... and while bytes are in flight: sent and not acknowledged for that long, the peer is
	 * gone (the retransmissions would go on for some fifteen minutes), and a source whose job
	 * is frozen resumes it */
	(void)setsockopt(sk, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof(user_ms));
}

int ferry_xfer_accept(int sk, const unsigned char *key, size_t keylen, uid_t uid, unsigned timeout,
		      struct ferry_xfer_keys *ret_keys, struct ferry_error **err)
{
	return hs_accept(sk, key, keylen, ROLE_S, ROLE_R, '2', uid, timeout, ret_keys, err);
}

int ferry_xfer_connect(int sk, const unsigned char *key, size_t keylen, uid_t uid, unsigned timeout,
		       struct ferry_xfer_keys *ret_keys, struct ferry_error **err)
{
	return hs_connect(sk, key, keylen, ROLE_S, ROLE_R, '2', uid, timeout, ret_keys, err);
}

void ferry_xfer_peer_host(int sk, unsigned char ret[FERRY_XFER_HOST_LEN])
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	memset(ret, 0, FERRY_XFER_HOST_LEN);
	if (getpeername(sk, (struct sockaddr *)&a, &len) < 0)
		return;
	static const unsigned char loopback[4] = {127, 0, 0, 1};
	const unsigned char *v4 = NULL;
	if (a.ss_family == AF_INET)
		v4 = (const unsigned char *)&((struct sockaddr_in *)&a)->sin_addr;
	else if (a.ss_family == AF_INET6) {
		const struct in6_addr *v6 = &((struct sockaddr_in6 *)&a)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(v6))
			v4 = v6->s6_addr + 12;
		else if (IN6_IS_ADDR_LOOPBACK(v6))
			v4 = loopback;
		else {
			ret[0] = AF_INET6;
			memcpy(ret + 1, v6->s6_addr, 8);
		}
	}
	if (v4) {
		ret[0] = AF_INET;
		memcpy(ret + 1, v4, v4[0] == 127 ? 1 : 4);
	}
}

size_t ferry_xfer_victim(const struct ferry_xfer_slot *s, size_t n)
{
	size_t victim = 0, most = 0;
	for (size_t i = 0; i < n; i++) {
		size_t same = 0, oldest = i;
		for (size_t j = 0; j < n; j++)
			if (!memcmp(s[i].host, s[j].host, FERRY_XFER_HOST_LEN)) {
				same++;
				if (s[j].deadline < s[oldest].deadline)
					oldest = j;
			}
		if (same > most || (same == most && s[oldest].deadline < s[victim].deadline)) {
			most = same;
			victim = oldest;
		}
	}
	return victim;
}

/* A connection to a listening receiver, on its way through the handshake. */
struct pending {
	int sk;
	long long deadline;
	size_t got;
	unsigned char host[FERRY_XFER_HOST_LEN];
	unsigned char hello[HELLO_LEN], proof[PROOF_LEN];
};

/* What a listening receiver turned away: how many, and the last one's reason. */
struct refusals {
	unsigned n;
	char last[256];
};

/* Closes @p; @why (when not NULL) is sent to the peer first (another user's dump learns it was
 * refused), and counted in @ref with @why_here (the reason as the receiver's user reads it). */
static void pending_drop(struct pending *p, const char *why, const char *why_here, struct refusals *ref)
{
	if (why)
		(void)ferry_xfer_send_verdict(p->sk, why);
	close(p->sk);
	p->sk = -1;
	if (ref) {
		ref->n++;
		snprintf(ref->last, sizeof(ref->last), "%s", why_here ? why_here : why);
	}
}

/* Reads what @p's peer sent: 1 once its proof is whole, 0 for more to come, -1 when it went. */
static int pending_read(struct pending *p)
{
	ssize_t n = recv(p->sk, p->proof + p->got, sizeof(p->proof) - p->got, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0)
		return -1;
	p->got += (size_t)n;
	return p->got == sizeof(p->proof);
}

#define MAX_PENDING 16

/* All slots taken: the one to drop (ferry_xfer_victim, as ferryd's loop). */
static int pending_victim(const struct pending ps[MAX_PENDING])
{
	struct ferry_xfer_slot s[MAX_PENDING];
	for (int i = 0; i < MAX_PENDING; i++) {
		s[i].deadline = ps[i].deadline;
		memcpy(s[i].host, ps[i].host, FERRY_XFER_HOST_LEN);
	}
	return (int)ferry_xfer_victim(s, MAX_PENDING);
}

/* Accepts one more connection into a slot of @ps (evicting one when all are taken) and greets
 * it. Fails only when the node cannot accept at all (out of fds or memory). */
static int pending_accept(int ls, struct pending ps[MAX_PENDING], struct refusals *ref,
			  struct ferry_error **err)
{
	int sk = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	if (sk < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM ||
		    errno == EBADF || errno == EINVAL || errno == ENOTSOCK)
			return ferry_error_set(err, errno, "accept");
		return 0; /* gone before it was accepted, a network error: the next one */
	}
	int slot = -1;
	for (int i = 0; i < MAX_PENDING && slot < 0; i++)
		if (ps[i].sk < 0)
			slot = i;
	if (slot < 0) {
		slot = pending_victim(ps);
		pending_drop(&ps[slot], "too many connections in the handshake: refused", NULL, ref);
	}
	struct pending *p = &ps[slot];
	p->sk = sk;
	ferry_xfer_tune_socket(sk);
	ferry_xfer_peer_host_local(sk, p->host);
	p->got = 0;
	p->deadline = ferry_now_ms() + FERRY_XFER_HELLO_TIMEOUT * 1000;
	_cleanup_error_ struct ferry_error *e = NULL;
	if (hs_hello(sk, '2', p->hello, &e) < 0)
		pending_drop(p, NULL, e->message, ref);
	return 0;
}

/* The connections are served side by side, so that none (silent, dribbling) holds up the
 * sender behind it for more than the time the sender itself takes. There is no count of
 * connections in all: a stranger's connections, however many, end only the ones they made (the
 * deadline and the slots bound the work). */
int ferry_xfer_accept_listen(int ls, const unsigned char *key, size_t keylen, uid_t uid, unsigned total,
			     struct ferry_xfer_keys *ret_keys, struct ferry_error **err)
{
	long long deadline = ferry_now_ms() + (long long)total * 1000;
	struct refusals ref = {0};
	struct pending ps[MAX_PENDING];
	for (int i = 0; i < MAX_PENDING; i++)
		ps[i].sk = -1;
	int found = -1, failed = 0;
	for (;;) {
		long long now = ferry_now_ms(), wake = deadline;
		struct pollfd p[MAX_PENDING + 1];
		for (int i = 0; i < MAX_PENDING; i++) {
			if (ps[i].sk >= 0 && ps[i].deadline <= now)
				pending_drop(&ps[i], "no proof of the cluster key in time: refused", NULL,
					     &ref);
			if (ps[i].sk >= 0 && ps[i].deadline < wake)
				wake = ps[i].deadline;
			p[i] = (struct pollfd){.fd = ps[i].sk, .events = POLLIN};
		}
		if (now >= deadline)
			break;
		p[MAX_PENDING] = (struct pollfd){.fd = ls, .events = POLLIN};
		int r = poll(p, MAX_PENDING + 1, (int)(wake - now > INT_MAX ? INT_MAX : wake - now));
		if (r < 0 && errno != EINTR) {
			failed = ferry_error_set(err, errno, "poll");
			break;
		}
		if (r <= 0)
			continue;
		for (int i = 0; i < MAX_PENDING && found < 0; i++) {
			if (ps[i].sk < 0 || !p[i].revents)
				continue;
			int got = pending_read(&ps[i]);
			if (got < 0)
				pending_drop(&ps[i], NULL, "closed before it proved the cluster key", &ref);
			if (got <= 0)
				continue;
			_cleanup_error_ struct ferry_error *e = NULL;
			if (hs_finish(ps[i].sk, key, keylen, ROLE_S, ROLE_R, '2', uid, ps[i].hello,
				      ps[i].proof, ret_keys, &e) == 0)
				found = i;
			else /* someone else (another user's dump, a stray connection) */
				pending_drop(&ps[i], e->message, NULL, &ref);
		}
		if (found >= 0)
			break;
		if (p[MAX_PENDING].revents && (failed = pending_accept(ls, ps, &ref, err)) < 0)
			break;
	}
	for (int i = 0; i < MAX_PENDING; i++)
		if (ps[i].sk >= 0 && i != found)
			pending_drop(&ps[i], "another sender was first: refused", NULL, NULL);
	if (found >= 0)
		return ps[found].sk;
	if (failed < 0)
		return failed;
	if (ref.n == 0)
		return ferry_error_msg(err, ETIMEDOUT, "no dump arrived within %u s", total);
	return ferry_error_msg(err, ETIMEDOUT,
			       "no dump of yours arrived within %u s; %u connection%s refused (the last: %s)",
			       total, ref.n, ref.n == 1 ? " was" : "s were", ref.last);
}

/* Daemons: the same proofs under other role names, so that neither kind of session can be
 * replayed as the other. uid 0: a daemon acts for nobody in particular. */
int ferry_peer_keys(const unsigned char *key, size_t keylen, const unsigned char *nr, const unsigned char *ns,
		    struct ferry_xfer_keys *ret_keys, struct ferry_error **err)
{
	return derive(key, keylen, FERRY_PEER_ROLE_CLIENT, FERRY_PEER_ROLE_SERVER, nr, ns, 0, ret_keys, err);
}

int ferry_peer_accept(int sk, const unsigned char *key, size_t keylen, unsigned timeout,
		      struct ferry_xfer_keys *ret_keys, struct ferry_error **err)
{
	return hs_accept(sk, key, keylen, FERRY_PEER_ROLE_CLIENT, FERRY_PEER_ROLE_SERVER, '1', 0, timeout,
			 ret_keys, err);
}

int ferry_peer_connect(int sk, const unsigned char *key, size_t keylen, unsigned timeout,
		       struct ferry_xfer_keys *ret_keys, struct ferry_error **err)
{
	return hs_connect(sk, key, keylen, FERRY_PEER_ROLE_CLIENT, FERRY_PEER_ROLE_SERVER, '1', 0, timeout,
			  ret_keys, err);
}
