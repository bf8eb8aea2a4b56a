/* SPDX-License-Identifier: GPL-2.0-or-later */
/* link.c — sealed records between two ferryd (see ferryd.h). */
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/socket.h>

#include "ferryd.h"
#include "fs.h"

int ferryd_link_open(struct ferryd_link *l, int fd, const struct ferry_xfer_keys *keys, bool server,
		     struct ferry_error **err)
{
	/* as a transfer's (xfer_relay.c): the client is the sender, direction 1 */
	*l = (struct ferryd_link){.fd = fd};
	int r = ferry_channel_init(&l->in, server ? keys->s2r : keys->r2s, server ? 1 : 2, err);
	if (r == 0)
		r = ferry_channel_init(&l->out, server ? keys->r2s : keys->s2r, server ? 2 : 1, err);
	if (r < 0) {
		ferry_channel_done(&l->in);
		return r;
	}
	l->buf = xmalloc(FERRY_CHANNEL_BUF);
	return 0;
}

void ferryd_link_close(struct ferryd_link *l)
{
	ferry_channel_done(&l->in);
	ferry_channel_done(&l->out);
	free(l->buf);
	l->buf = NULL;
	ferry_msg_clear(&l->stash);
	l->stashed = false;
}

int ferryd_link_send(struct ferryd_link *l, const struct ferry_msg *m, struct ferry_error **err)
{
	_cleanup_free_ char *body = NULL;
	size_t len = 0;
	int r = ferry_msg_encode(m, 0, &body, &len, err);
	return r < 0 ? r : ferry_channel_send(&l->out, l->fd, FERRYD_REC_MSG, body, len, err);
}

/* One record, authenticated: its plaintext at l->buf + FERRY_CHANNEL_HDR. The peer's
 * keepalives (FERRYD_REC_PING) are taken here: @timeout is a limit on idleness, and a peer that
 * works (dumps, restores) says so every FERRYD_KEEPALIVE_S seconds. */
static int read_record(struct ferryd_link *l, unsigned timeout, uint8_t *ret_type, size_t *ret_len,
		       struct ferry_error **err)
{
	int r;
	do
		r = ferry_channel_read(&l->in, l->fd, timeout, l->buf, ret_type, ret_len, err);
	while (r == 0 && *ret_type == FERRYD_REC_PING);
	if (r == -EBADMSG || r == -EPROTO)
		ferry_error_wrap(err, "the connection between the daemons");
	return r;
}

int ferryd_link_ping(struct ferryd_link *l, struct ferry_error **err)
{
	unsigned char buf[FERRY_CHANNEL_HDR + FERRY_CHANNEL_TAG];
	return ferry_channel_write(&l->out, l->fd, FERRYD_REC_PING, buf, 0, err);
}

static void *keepalive_run(void *arg)
{
	struct ferryd_keepalive *k = arg;
	struct pollfd p = {.fd = k->stop[0], .events = POLLIN};
	for (;;) {
		int n = poll(&p, 1, FERRYD_KEEPALIVE_S * 1000);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != 0 || ferryd_link_ping(k->l, NULL) < 0)
			return NULL;
	}
}

void ferryd_keepalive_start(struct ferryd_keepalive *k, struct ferryd_link *l)
{
	*k = (struct ferryd_keepalive){.l = l, .stop = {-1, -1}};
	if (pipe2(k->stop, O_CLOEXEC) < 0)
		return;
	k->running = pthread_create(&k->thread, NULL, keepalive_run, k) == 0;
}

void ferryd_keepalive_stop(struct ferryd_keepalive *k)
{
	if (k->running) {
		(void)ferry_write_all(k->stop[1], "x", 1);
		pthread_join(k->thread, NULL);
		k->running = false;
	}
	for (int i = 0; i < 2; i++)
		if (k->stop[i] >= 0)
			close(k->stop[i]);
	k->stop[0] = k->stop[1] = -1;
}

/* A message record's plaintext, parsed (only once authenticated, and within FERRY_PROTO_MAX). */
static int parse_msg(struct ferryd_link *l, uint8_t type, size_t len, struct ferry_msg *ret,
		     struct ferry_error **err)
{
	if (type != FERRYD_REC_MSG)
		return ferry_error_msg(err, EPROTO, "unexpected record of type %u from the peer daemon",
				       (unsigned)type);
	return ferry_msg_parse((const char *)l->buf + FERRY_CHANNEL_HDR, len, ret, err);
}

int ferryd_link_recv(struct ferryd_link *l, unsigned timeout, struct ferry_msg *ret, struct ferry_error **err)
{
	if (l->stashed) {
		*ret = l->stash;
		l->stash = (struct ferry_msg){0};
		l->stashed = false;
		return 0;
	}
	uint8_t type = 0;
	size_t len = 0;
	int r = read_record(l, timeout, &type, &len, err);
	return r < 0 ? r : parse_msg(l, type, len, ret, err);
}

void ferryd_send_error(int sk, struct ferryd_link *l, const char *id, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = NULL;
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	struct ferry_msg msg = {0};
	ferry_msg_set(&msg, "type", "error");
	ferry_msg_set(&msg, "message", "%s", text ? text : "error");
	if (id)
		ferry_msg_set(&msg, "id", "%s", id);
	struct ferry_error *err = NULL;
	(void)(l ? ferryd_link_send(l, &msg, &err) : ferry_msg_send(sk, &msg, &err));
	ferry_error_free(err);
	ferry_msg_clear(&msg);
	free(text);
}

/* ---- the verdict and the commit (default mode) ---- */

#define VERDICT_MAX (3 + 4096) /* 'N', u16 length, the message (ferry_xfer_send_verdict) */

/* How long the verdict in @v (@got bytes so far) is; 0 when it is not one. */
static size_t verdict_len(const unsigned char *v, size_t got)
{
	if (v[0] == 'A')
		return 1;
	if (v[0] != 'N')
		return 0;
	return got < 3 ? 3 : 3 + (size_t)ferry_get_le16(v + 1);
}

/* A message where the verdict should be: the destination failed before its starter could say
 * why; the message is kept for ferryd_link_recv. */
static int no_verdict(struct ferryd_link *l, size_t len, struct ferry_error **err)
{
	int r = parse_msg(l, FERRYD_REC_MSG, len, &l->stash, err);
	if (r < 0)
		return r;
	l->stashed = true;
	return ferry_error_msg(err, EREMOTEIO, "the receiver failed: %s",
			       ferry_msg_get(&l->stash, "message") ?: "it sent no verdict");
}

int ferryd_link_read_verdict(struct ferryd_link *l, unsigned timeout, struct ferry_error **err)
{
	unsigned char v[VERDICT_MAX + 1];
	size_t got = 0, need = 1;
	while (got < need) {
		uint8_t type = 0;
		size_t len = 0;
		int r = read_record(l, timeout, &type, &len, err);
		if (r < 0)
			return r;
		if (type == FERRYD_REC_MSG)
			return no_verdict(l, len, err);
		if (type != FERRYD_REC_CTL)
			return ferry_error_msg(err, EPROTO, "bad verdict from the receiver");
		/* what comes after the first verdict (a second one, written by a process of the
		 * starter that failed too) is not this verdict's: the first says why */
		size_t take = len < VERDICT_MAX - got ? len : VERDICT_MAX - got;
		memcpy(v + got, l->buf + FERRY_CHANNEL_HDR, take);
		got += take;
		if (got > 0 && (need = verdict_len(v, got)) == 0)
			return ferry_error_msg(err, EPROTO, "bad verdict from the receiver");
		if (need > VERDICT_MAX)
			return ferry_error_msg(err, EPROTO, "bad verdict from the receiver");
	}
	if (v[0] == 'A')
		return 0;
	v[need] = '\0';
	for (unsigned char *p = v + 3; *p; p++)
		if (*p < 0x20)
			*p = ' ';
	return ferry_error_msg(err, EREMOTEIO, "the receiver failed: %s", (char *)v + 3);
}

int ferryd_link_send_commit(struct ferryd_link *l, struct ferry_error **err)
{
	return ferry_channel_send(&l->out, l->fd, FERRYD_REC_CTL, "C", 1, err);
}

/* What the starter wrote, to the peer: 1 when something went, 0 when there is nothing to read
 * now, -1 at its end or on an error. */
static int ctl_to_peer(struct ferryd_ctl *c)
{
	unsigned char b[VERDICT_MAX];
	ssize_t n = read(c->local, b, sizeof(b));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return errno == EINTR ? 1 : 0;
	if (n <= 0)
		return -1;
	return ferry_channel_send(&c->l->out, c->l->fd, FERRYD_REC_CTL, b, (size_t)n, NULL) < 0 ? -1 : 1;
}

/* One record from the peer, to the starter: only control bytes (the commit). */
static int ctl_from_peer(struct ferryd_ctl *c)
{
	uint8_t type = 0;
	size_t len = 0;
	if (read_record(c->l, c->timeout, &type, &len, NULL) < 0 || type != FERRYD_REC_CTL)
		return -1;
	return ferry_write_all(c->local, c->l->buf + FERRY_CHANNEL_HDR, len) < 0 ? -1 : 1;
}

static void *ctl_pump(void *arg)
{
	struct ferryd_ctl *c = arg;
	for (;;) {
		struct pollfd p[3] = {{.fd = c->local, .events = POLLIN},
				      {.fd = c->l->fd, .events = POLLIN},
				      {.fd = c->wake[0], .events = POLLIN}};
		/* while the starter restores, nothing else goes: the source hears that we work */
		int n = poll(p, 3, FERRYD_KEEPALIVE_S * 1000);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (n == 0) {
			if (ferryd_link_ping(c->l, NULL) < 0)
				break;
			continue;
		}
		if (p[2].revents) {
			/* the starter has ended: what it wrote last still goes */
			while (ctl_to_peer(c) > 0)
				;
			break;
		}
		if ((p[0].revents && ctl_to_peer(c) < 0) || (p[1].revents && ctl_from_peer(c) < 0))
			break;
	}
	/* the starter waiting for the commit sees the end at once (and stops its copy) */
	(void)shutdown(c->local, SHUT_RDWR);
	return NULL;
}

int ferryd_ctl_start(struct ferryd_ctl *c, struct ferryd_link *l, unsigned timeout, int *ret_starter_end,
		     struct ferry_error **err)
{
	int sp[2];
	*c = (struct ferryd_ctl){.l = l, .timeout = timeout, .local = -1, .wake = {-1, -1}};
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return ferry_error_set(err, errno, "socketpair");
	c->local = sp[0];
	if (fcntl(c->local, F_SETFL, O_NONBLOCK | O_RDWR) < 0 || pipe2(c->wake, O_CLOEXEC) < 0) {
		int e = errno;
		close(sp[1]);
		ferryd_ctl_stop(c);
		return ferry_error_set(err, e, "pipe");
	}
	int r = pthread_create(&c->thread, NULL, ctl_pump, c);
	if (r != 0) {
		close(sp[1]);
		ferryd_ctl_stop(c);
		return ferry_error_set(err, r, "start a thread");
	}
	c->running = true;
	*ret_starter_end = sp[1];
	return 0;
}

void ferryd_ctl_stop(struct ferryd_ctl *c)
{
	if (c->running) {
		(void)ferry_write_all(c->wake[1], "x", 1);
		pthread_join(c->thread, NULL);
		c->running = false;
	}
	for (int i = 0; i < 2; i++)
		if (c->wake[i] >= 0)
			close(c->wake[i]);
	if (c->local >= 0)
		close(c->local);
	c->wake[0] = c->wake[1] = c->local = -1;
}

int ferryd_connect(const char *addr, unsigned timeout, struct ferry_error **err)
{
	const char *colon = strrchr(addr, ':');
	_cleanup_free_ char *host = xstrndup(addr, colon ? (size_t)(colon - addr) : strlen(addr));
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
	if (!colon || getaddrinfo(host, colon + 1, &hints, &res) != 0)
		return ferry_error_msg(err, EINVAL, "bad peer address '%s'", addr);
	int sk = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int r = sk < 0 ? -errno : connect(sk, res->ai_addr, res->ai_addrlen) < 0 ? -errno : 0;
	freeaddrinfo(res);
	if (r == -EINPROGRESS) {
		struct pollfd p = {.fd = sk, .events = POLLOUT};
		int e = 0;
		socklen_t el = sizeof(e);
		r = poll(&p, 1, (int)timeout * 1000);
		r = r == 0						? -ETIMEDOUT
		    : r < 0						? -errno
		    : getsockopt(sk, SOL_SOCKET, SO_ERROR, &e, &el) < 0 ? -errno
									: -e;
	}
	if (r == 0 && fcntl(sk, F_SETFL, 0) < 0)
		r = -errno;
	if (r < 0) {
		if (sk >= 0)
			close(sk);
		return ferry_error_set(err, -r, "connect to '%s'", addr);
	}
	ferry_xfer_tune_socket(sk);
	return sk;
}
