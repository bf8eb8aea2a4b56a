/* SPDX-License-Identifier: GPL-2.0-or-later */
/* loop.c — ferryd's main loop: accept, authenticate, and only then fork a handler.
 *
 * Nothing runs for a connection before it is authenticated but this loop:
 *   - local clients (the abstract unix socket) are known at accept by SO_PEERCRED: a handler is
 *     forked at once if the user has fewer than FERRYD_MAX_PER_USER running;
 *   - TCP peers wait here, non-blocking, at most FERRYD_AUTH_TIMEOUT seconds and at most
 *     FERRYD_MAX_PENDING at a time (the oldest is dropped for a new one), while they run the
 *     server side of the peer handshake (the wire format of ferry_peer_accept in src/lib/xfer.c,
 *     as a state machine, since that function blocks); a handler is forked only once the peer
 *     proved the cluster key.
 * At most FERRYD_MAX_CONNS handlers run at once (local and peer together), and at most
 * FERRYD_MAX_PER_USER for one user: a local client's counts from its accept, a peer's from its
 * first message, which names the user it acts for (ferryd_peer_claim: the handler asks this loop
 * over a socket pair, and the loop, which alone knows every handler, answers). A client over a
 * limit gets an error message and the connection is closed. */
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "ferryd.h"
#include "fs.h"
#include "manifest.h"
#include "xfer.h"

/* the peer handshake's messages (src/lib/xfer.c): hello "FXF1" nonce_r; sender "FXS1" uid
 * nonce_s proof; reply "FXR1" proof */
#define HELLO_LEN (4 + FERRY_XFER_NONCE)
#define SENDER_LEN (4 + 4 + FERRY_XFER_NONCE + 32)

struct pending {
	int fd;
	unsigned char host[FERRY_XFER_HOST_LEN]; /* the peer's address (ferry_xfer_peer_host) */
	long long deadline;
	unsigned char nonce[FERRY_XFER_NONCE];
	unsigned char in[SENDER_LEN];
	size_t got;
};

struct child {
	pid_t pid;
	uid_t uid;
	bool known; /* @uid is the user it serves: a local client's, or the one a peer named */
	int ctl; /* a peer's handler: this loop's end of its socket pair (ferryd_peer_claim), or -1 */
};

/* a peer's handler asks with the uid (4 bytes) and is answered with a struct claim */
struct claim {
	uint32_t ok;
	uint32_t mine; /* the user's other handlers */
};

struct loop {
	struct ferryd *d;
	int ux, px, tcp; /* the local sockets (abstract, path: main.c) and the peers' */
	struct pending pend[FERRYD_MAX_PENDING];
	size_t n_pend;
	struct child kids[FERRYD_MAX_CONNS];
	size_t n_kids;
};

static volatile sig_atomic_t child_exited, hangup;

/* in a peer's handler: its end of the socket pair to the loop */
static int claim_fd = -1;

static void on_sigchld(int sig)
{
	child_exited = 1;
}

static void on_sighup(int sig)
{
	hangup = 1;
}

/* Refusals come in floods: the first few a second are logged, the rest counted. */
static void log_refusal(const char *fmt, ...) _printf_(1, 2);
static void log_refusal(const char *fmt, ...)
{
	static time_t second;
	static unsigned logged, suppressed;
	time_t now = time(NULL);
	if (now != second) {
		if (suppressed)
			ferryd_log(NULL, "(%u more refused connections not logged)", suppressed);
		second = now;
		logged = suppressed = 0;
	}
	if (logged >= 5) {
		suppressed++;
		return;
	}
	logged++;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ferryd_log(NULL, "%s", msg);
}

/* The proof for @role of the client whose uid (4 bytes) and nonce are @uid_ns, as they come in
 * its message. */
static bool peer_proof(const struct ferryd *d, const char *role, const unsigned char *nr,
		       const unsigned char *uid_ns, unsigned char out[32])
{
	return ferry_xfer_proof(d->key, d->keylen, role, nr, uid_ns + 4, ferry_get_le32(uid_ns), out, NULL) ==
	       0;
}

/* A refusal message to a client over a limit (the socket's buffer is empty: this does not
 * block), then the end of the connection. */
static void refuse(int fd, const char *fmt, ...) _printf_(2, 3);
static void refuse(int fd, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	struct ferry_msg m = {0};
	ferry_msg_set(&m, "type", "error");
	ferry_msg_set(&m, "message", "%s", text);
	struct ferry_error *err = NULL;
	(void)ferry_msg_send(fd, &m, &err);
	ferry_error_free(err);
	ferry_msg_clear(&m);
	close(fd);
}

/* The handler of one connection: a local client's (@keys NULL) or an authenticated peer's. */
static void spawn_handler(struct loop *l, int fd, bool local, uid_t uid, const struct ferry_xfer_keys *keys)
{
	int sp[2] = {-1, -1};
	if (!local && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		ferryd_log(NULL, "socketpair: %s", strerror(errno));
		close(fd);
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		ferryd_log(NULL, "fork: %s", strerror(errno));
		close(fd);
		if (sp[0] >= 0) {
			close(sp[0]);
			close(sp[1]);
		}
		return;
	}
	if (pid == 0) {
		close(l->ux);
		close(l->tcp);
		for (size_t i = 0; i < l->n_pend; i++)
			close(l->pend[i].fd);
		for (size_t i = 0; i < l->n_kids; i++)
			if (l->kids[i].ctl >= 0)
				close(l->kids[i].ctl);
		if (sp[0] >= 0)
			close(sp[0]);
		claim_fd = sp[1];
		signal(SIGCHLD, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
		if (local)
			ferryd_handle_client(l->d, fd);
		else
			ferryd_handle_peer(l->d, fd, keys);
		_exit(0);
	}
	if (sp[1] >= 0) {
		close(sp[1]);
		fcntl(sp[0], F_SETFL, O_NONBLOCK | O_RDWR);
	}
	l->kids[l->n_kids++] = (struct child){.pid = pid, .uid = uid, .known = local, .ctl = sp[0]};
	close(fd);
}

/* The handlers that serve @uid, but @self. */
static unsigned handlers_of(const struct loop *l, uid_t uid, const struct child *self)
{
	unsigned n = 0;
	for (size_t i = 0; i < l->n_kids; i++)
		n += &l->kids[i] != self && l->kids[i].known && l->kids[i].uid == uid;
	return n;
}

/* A peer's handler names the user it acts for: it is counted for them, or refused when they
 * have FERRYD_MAX_PER_USER handlers already. One claim a handler; what else comes on its socket
 * (its end once it exits) closes it. */
static void claim_read(struct loop *l, struct child *k)
{
	unsigned char uid_le[4];
	ssize_t n = recv(k->ctl, uid_le, sizeof(uid_le), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	struct claim c = {0};
	if (n == (ssize_t)sizeof(uid_le) && !k->known) {
		uid_t uid = ferry_get_le32(uid_le);
		c.mine = handlers_of(l, uid, k);
		c.ok = c.mine < FERRYD_MAX_PER_USER;
		if (c.ok) {
			k->uid = uid;
			k->known = true;
		}
		if (send(k->ctl, &c, sizeof(c), MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof(c))
			return;
	}
	close(k->ctl);
	k->ctl = -1;
}

int ferryd_peer_claim(uid_t uid, unsigned *ret_mine)
{
	*ret_mine = 0;
	if (claim_fd < 0)
		return -EINVAL;
	unsigned char uid_le[4];
	ferry_put_le32(uid_le, uid);
	if (send(claim_fd, uid_le, sizeof(uid_le), MSG_NOSIGNAL) != (ssize_t)sizeof(uid_le))
		return -errno;
	/* the loop answers at its next turn: it never blocks */
	struct pollfd p = {.fd = claim_fd, .events = POLLIN};
	struct claim c;
	int r = poll(&p, 1, FERRYD_CLAIM_TIMEOUT * 1000);
	if (r <= 0)
		return r < 0 ? -errno : -ETIMEDOUT;
	if (recv(claim_fd, &c, sizeof(c), 0) != (ssize_t)sizeof(c))
		return -EPROTO;
	*ret_mine = c.mine;
	return c.ok ? 0 : -EUSERS;
}

static void reap(struct loop *l)
{
	child_exited = 0;
	pid_t pid;
	while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
		for (size_t i = 0; i < l->n_kids; i++)
			if (l->kids[i].pid == pid) {
				if (l->kids[i].ctl >= 0)
					close(l->kids[i].ctl);
				l->kids[i] = l->kids[--l->n_kids];
				break;
			}
}

static void accept_local(struct loop *l, int fd)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
		close(fd);
		return;
	}
	unsigned mine = handlers_of(l, cred.uid, NULL);
	if (mine >= FERRYD_MAX_PER_USER)
		return refuse(
		    fd,
		    "you have %u requests in progress on '%s' (from this node and others), the most "
		    "ferryd serves one user at once: try again when one has finished",
		    mine, l->d->node);
	if (l->n_kids >= FERRYD_MAX_CONNS)
		return refuse(fd, "ferryd on '%s' is busy (%d migrations in progress): try again later",
			      l->d->node, FERRYD_MAX_CONNS);
	spawn_handler(l, fd, true, cred.uid, NULL);
}

static void pending_drop(struct loop *l, size_t i)
{
	close(l->pend[i].fd);
	l->pend[i] = l->pend[--l->n_pend];
}

/* All slots taken: the oldest connection of the host that holds the most goes
 * (ferry_xfer_victim). A flood thus pushes out its own connections, not another node's handshake
 * (a real peer answers within a round trip). */
static void evict_one(struct loop *l)
{
	struct ferry_xfer_slot s[FERRYD_MAX_PENDING];
	for (size_t i = 0; i < l->n_pend; i++) {
		s[i].deadline = l->pend[i].deadline;
		memcpy(s[i].host, l->pend[i].host, FERRY_XFER_HOST_LEN);
	}
	size_t victim = ferry_xfer_victim(s, l->n_pend);
	log_refusal("refused a peer: too many connections in the handshake");
	pending_drop(l, victim);
}

static void accept_peer(struct loop *l, int fd)
{
	if (l->n_pend == FERRYD_MAX_PENDING)
		evict_one(l);
	struct pending *p = &l->pend[l->n_pend];
	*p = (struct pending){.fd = fd, .deadline = ferry_now_ms() + FERRYD_AUTH_TIMEOUT * 1000LL};
	ferry_xfer_peer_host(fd, p->host);
	unsigned char hello[HELLO_LEN];
	memcpy(hello, "FXF1", 4);
	if (fcntl(fd, F_SETFL, O_NONBLOCK | O_RDWR) < 0 || getentropy(p->nonce, sizeof(p->nonce)) < 0) {
		close(fd);
		return;
	}
	memcpy(hello + 4, p->nonce, FERRY_XFER_NONCE);
	ferry_xfer_tune_socket(fd);
	if (send(fd, hello, sizeof(hello), MSG_NOSIGNAL) != (ssize_t)sizeof(hello)) {
		close(fd);
		return;
	}
	l->n_pend++;
}

/* A peer over the limit, once authenticated: the refusal goes in a record like every byte
 * after the handshake. */
static void refuse_peer(struct loop *l, int fd, const struct ferry_xfer_keys *keys)
{
	struct ferryd_link link;
	struct ferry_error *err = NULL;
	if (ferryd_link_open(&link, fd, keys, true, &err) == 0) {
		ferryd_send_error(-1, &link, NULL,
				  "ferryd on '%s' is busy (%d migrations in progress): try again later",
				  l->d->node, FERRYD_MAX_CONNS);
		ferryd_link_close(&link);
	}
	ferry_error_free(err);
	close(fd);
}

/* The sender's message is complete: check it as hs_accept (src/lib/xfer.c) does, answer, and
 * derive the keys of the link (link.c) that every later byte goes in. */
static void pending_done(struct loop *l, size_t i)
{
	struct pending *p = &l->pend[i];
	unsigned char want[32], reply[4 + 32];
	const unsigned char *uid_nonce = p->in + 4;
	bool ok = peer_proof(l->d, FERRY_PEER_ROLE_CLIENT, p->nonce, uid_nonce, want) &&
		  CRYPTO_memcmp(want, p->in + 8 + FERRY_XFER_NONCE, 32) == 0;
	/* a daemon acts for nobody in particular: uid 0 */
	ok = ok && !memcmp(uid_nonce, "\0\0\0\0", 4);
	memcpy(reply, "FXR1", 4);
	struct ferry_xfer_keys keys;
	if (!ok || !peer_proof(l->d, FERRY_PEER_ROLE_SERVER, p->nonce, uid_nonce, reply + 4) ||
	    ferry_peer_keys(l->d->key, l->d->keylen, p->nonce, uid_nonce + 4, &keys, NULL) < 0) {
		log_refusal("refused a peer: the peer did not prove the cluster key: refused");
		return pending_drop(l, i);
	}
	int fd = p->fd;
	l->pend[i] = l->pend[--l->n_pend];
	if (send(fd, reply, sizeof(reply), MSG_NOSIGNAL) != (ssize_t)sizeof(reply))
		close(fd);
	else if (l->n_kids >= FERRYD_MAX_CONNS)
		refuse_peer(l, fd, &keys);
	else
		spawn_handler(l, fd, false, 0, &keys);
	OPENSSL_cleanse(&keys, sizeof(keys));
}

static void pending_read(struct loop *l, size_t i)
{
	struct pending *p = &l->pend[i];
	ssize_t n = recv(p->fd, p->in + p->got, sizeof(p->in) - p->got, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		log_refusal("refused a peer: it closed the connection in the handshake");
		return pending_drop(l, i);
	}
	p->got += (size_t)n;
	if (p->got >= 4 && memcmp(p->in, "FXS1", 4) != 0) {
		log_refusal("refused a peer: the peer is not a ferry sender");
		return pending_drop(l, i);
	}
	if (p->got == sizeof(p->in))
		pending_done(l, i);
}

static void accept_all(struct loop *l, int lfd, bool local)
{
	/* bounded, so that one listener cannot starve the rest of the loop */
	for (int k = 0; k < 256; k++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (local)
			accept_local(l, fd);
		else
			accept_peer(l, fd);
	}
}

static void expire(struct loop *l, long long now)
{
	for (size_t i = l->n_pend; i-- > 0;)
		if (l->pend[i].deadline <= now) {
			log_refusal("refused a peer: no handshake within %d s", FERRYD_AUTH_TIMEOUT);
			pending_drop(l, i);
		}
}

static void loop_once(struct loop *l, const sigset_t *during)
{
	struct pollfd p[3 + FERRYD_MAX_PENDING + FERRYD_MAX_CONNS];
	size_t n_pend = l->n_pend, n_kids = l->n_kids;
	p[0] = (struct pollfd){.fd = l->ux, .events = POLLIN};
	p[1] = (struct pollfd){.fd = l->tcp, .events = POLLIN};
	p[2] = (struct pollfd){.fd = l->px, .events = POLLIN};
	long long now = ferry_now_ms(), next = now + 60000;
	for (size_t i = 0; i < n_pend; i++) {
		p[3 + i] = (struct pollfd){.fd = l->pend[i].fd, .events = POLLIN};
		if (l->pend[i].deadline < next)
			next = l->pend[i].deadline;
	}
	/* the peers' handlers that may claim (pids: reap and claim_read reorder the table) */
	pid_t kid[FERRYD_MAX_CONNS];
	size_t n_ctl = 0;
	for (size_t i = 0; i < n_kids; i++)
		if (l->kids[i].ctl >= 0) {
			kid[n_ctl] = l->kids[i].pid;
			p[3 + n_pend + n_ctl++] = (struct pollfd){.fd = l->kids[i].ctl, .events = POLLIN};
		}
	long long wait = next > now ? next - now : 0;
	struct timespec ts = {.tv_sec = wait / 1000, .tv_nsec = (wait % 1000) * 1000000};
	int r = ppoll(p, 3 + n_pend + n_ctl, &ts, during);
	if (child_exited)
		reap(l);
	if (hangup) {
		hangup = 0;
		ferryd_reload(l->d, false);
	}
	if (r > 0) {
		/* backwards: pending_drop moves the last entry into the freed slot */
		for (size_t i = n_pend; i-- > 0;)
			if (p[3 + i].revents)
				pending_read(l, i);
		for (size_t i = 0; i < n_ctl; i++)
			if (p[3 + n_pend + i].revents)
				for (size_t j = 0; j < l->n_kids; j++)
					if (l->kids[j].pid == kid[i] && l->kids[j].ctl >= 0)
						claim_read(l, &l->kids[j]);
		if (p[0].revents & POLLIN)
			accept_all(l, l->ux, true);
		if (p[1].revents & POLLIN)
			accept_all(l, l->tcp, false);
		if (p[2].revents & POLLIN)
			accept_all(l, l->px, true);
	}
	expire(l, ferry_now_ms());
}

void ferryd_loop(struct ferryd *d, int ux, int px, int tcp)
{
	static struct loop l;
	l = (struct loop){.d = d, .ux = ux, .px = px, .tcp = tcp};
	fcntl(ux, F_SETFL, O_NONBLOCK | O_RDWR);
	fcntl(px, F_SETFL, O_NONBLOCK | O_RDWR);
	fcntl(tcp, F_SETFL, O_NONBLOCK | O_RDWR);
	/* SIGCHLD and SIGHUP only while in ppoll: no exit is missed between a reap and the wait,
	 * and a reload happens between two connections */
	sigset_t block, during;
	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &during);
	sigdelset(&during, SIGCHLD);
	sigdelset(&during, SIGHUP);
	struct sigaction sa = {.sa_handler = on_sigchld, .sa_flags = SA_NOCLDSTOP};
	sigaction(SIGCHLD, &sa, NULL);
	struct sigaction hup = {.sa_handler = on_sighup};
	sigaction(SIGHUP, &hup, NULL);
	for (;;)
		loop_once(&l, &during);
}
