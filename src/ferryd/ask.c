/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ask.c — a local client's request, read and parsed only by a child that is the client for good
 * (privilege separation, as OpenSSH's): see ferryd.h.
 *
 * The handler (root) looks the user up, forks the reader and waits for its answer. The reader
 * wipes the cluster key, keeps only the client's socket and its end of the socket pair, drops
 * to the user for good (ids, groups, no capability, empty bounding set, no_new_privs, verified),
 * and only then reads the message with proto.c's bounds, parses and checks it. A parser bug is
 * then the user's own process misbehaving, not root's. The handler reads exactly one answer
 * within a deadline, reaps the reader (killing it if it lingers), and trusts nothing of the
 * answer it has not checked itself. */
#include <fcntl.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "ferryd.h"
#include "fs.h"
#include "privs.h"

/* how long the handler waits for the answer: the reader's two reads of FERRYD_REQUEST_TIMEOUT
 * (the length, the message), and a little */
#define ASK_DEADLINE (2 * FERRYD_REQUEST_TIMEOUT + 2)
#define ASK_EXIT_MS 5000 /* how long a reader that answered has to exit */

const char *ferryd_check_request(const struct ferryd *d, const char *name, const char *to, const char *mode,
				 char *why, size_t n)
{
	struct ferry_error *err = NULL;
	const char *addr = NULL;
	if (ferry_name_check(name, "instance", &err) < 0) {
		snprintf(why, n, "%s", err->message);
		ferry_error_free(err);
		return NULL;
	}
	if (!streq(mode, "diskless") && !streq(mode, "default")) {
		snprintf(why, n, "unknown mode '%s': use default or diskless", mode);
		return NULL;
	}
	for (size_t i = 0; i < d->n_peers; i++)
		if (streq(d->peers[i].name, to))
			addr = d->peers[i].addr;
	if (streq(to, d->node))
		snprintf(why, n, "'%s' is this node: migrate to another one", to);
	else if (!addr)
		snprintf(why, n, "no node '%s' is known to ferryd on '%s'", to, d->node);
	return streq(to, d->node) ? NULL : addr;
}

/* ---- the reader: the client for good ---- */

static _noreturn_ void answer(int out, struct ferryd_ask *a)
{
	a->magic = FERRYD_ASK_MAGIC;
	a->size = sizeof(*a);
	_exit(ferry_write_all(out, a, sizeof(*a)) < 0 ? 255 : 0);
}

static _noreturn_ void answer_refusal(int out, struct ferryd_ask *a, const char *why)
{
	memset(a, 0, sizeof(*a));
	a->refused = 1;
	snprintf(a->message, sizeof(a->message), "%s", why);
	answer(out, a);
}

/* Nothing but the client's socket and @out; stdio on /dev/null (the log is root's); then the
 * user for good, and dead with the handler. */
static int become_user(const struct ferryd_user *u, int sk, int out, pid_t handler, struct ferry_error **err)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
		return ferry_error_set(err, errno, "/dev/null");
	ferry_close_fds(3, (const int[]){sk, out, -1});
	prctl(PR_SET_NAME, "ferryd-request", 0, 0, 0);
	struct ferry_privs p = {.uid = u->uid, .gid = u->gid, .n_groups = u->n_groups};
	memcpy(p.groups, u->groups, sizeof(gid_t) * (size_t)u->n_groups);
	int r = ferry_privs_drop(&p, NULL, 0, err);
	if (r < 0)
		return r;
	/* (after the drop: a change of credentials clears the death signal) */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return ferry_error_set(err, errno, "PR_SET_PDEATHSIG");
	if (getppid() != handler)
		_exit(255);
	return 0;
}

/* The message, parsed and checked as the user: take_request of before, word for word. */
static _noreturn_ void reader(struct ferryd *d, int sk, int out, const struct ferryd_user *u, pid_t handler)
{
	struct ferryd_ask a = {0};
	struct ferry_error *err = NULL;
	char why[FERRYD_ASK_MESSAGE_MAX];
	/* the cluster key is what a peer proves: nothing the user's process may hold */
	OPENSSL_cleanse(d->key, sizeof(d->key));
	d->keylen = 0;
	if (become_user(u, sk, out, handler, &err) < 0) {
		snprintf(why, sizeof(why), "ferryd could not read your request as you: %s", err->message);
		answer_refusal(out, &a, why);
	}
	struct ferry_msg req = {0};
	if (ferry_msg_recv(sk, FERRYD_REQUEST_TIMEOUT, &req, &err) < 0) {
		snprintf(why, sizeof(why), "bad request: %s", err->message);
		answer_refusal(out, &a, why);
	}
	const char *type = ferry_msg_get(&req, "type"), *name = ferry_msg_get(&req, "instance"),
		   *to = ferry_msg_get(&req, "to"), *mode = ferry_msg_get(&req, "mode");
	if (!type || !streq(type, "migrate") || !name || !to || !mode)
		answer_refusal(out, &a, "bad request: expected a migrate request with instance, to and mode");
	if (!ferryd_check_request(d, name, to, mode, why, sizeof(why)))
		answer_refusal(out, &a, why);
	if (strlen(to) > FERRYD_NODE_MAX) /* a peer's name that long: not one a client can give */
		answer_refusal(out, &a, "bad request: the node's name is too long");
	snprintf(a.instance, sizeof(a.instance), "%s", name); /* checked: it fits */
	snprintf(a.to, sizeof(a.to), "%s", to);
	a.diskless = streq(mode, "diskless");
	answer(out, &a);
}

/* ---- the handler: wait, reap, check ---- */

/* The reader's end: 0 when it exited 0; it has ASK_EXIT_MS to do so (@kill: none). */
static int reap(pid_t pid, bool kill_now, char *why, size_t n)
{
	int pfd = kill_now ? -1 : (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd p = {.fd = pfd, .events = POLLIN};
	if (pfd < 0 || poll(&p, 1, ASK_EXIT_MS) <= 0)
		kill(pid, SIGKILL);
	if (pfd >= 0)
		close(pfd);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			snprintf(why, n, "your request could not be read: wait for its reader: %s",
				 strerror(errno));
			return -1;
		}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFSIGNALED(st))
		snprintf(why, n, "your request could not be read: its reader was killed by signal %d",
			 WTERMSIG(st));
	else
		snprintf(why, n, "your request could not be read: its reader exited with status %d",
			 WEXITSTATUS(st));
	return -1;
}

/* The client's socket is one open file shared with the reader: what it may have changed of it
 * (non-blocking, timeouts) is set back before the handler uses it. */
static void reclaim_socket(int sk)
{
	struct timeval none = {0};
	int fl = fcntl(sk, F_GETFL);
	if (fl >= 0)
		fcntl(sk, F_SETFL, fl & ~O_NONBLOCK);
	setsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
	setsockopt(sk, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none));
}

static bool nul_inside(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

/* The answer, checked as if it came from anyone: the address of its peer, or NULL and @why. */
static const char *check_answer(const struct ferryd *d, const struct ferryd_ask *a, char *why, size_t n)
{
	if (a->magic != FERRYD_ASK_MAGIC || a->size != sizeof(*a) || a->refused > 1 || a->diskless > 1 ||
	    !nul_inside(a->instance, sizeof(a->instance)) || !nul_inside(a->to, sizeof(a->to)) ||
	    !nul_inside(a->message, sizeof(a->message)) || (a->refused && !a->message[0]) ||
	    (!a->refused && (a->message[0] || !a->to[0]))) {
		snprintf(why, n, "your request could not be read: its reader's answer is malformed");
		return NULL;
	}
	if (a->refused) {
		snprintf(why, n, "%s", a->message);
		return NULL;
	}
	return ferryd_check_request(d, a->instance, a->to, a->diskless ? "diskless" : "default", why, n);
}

int ferryd_ask_fetch(struct ferryd *d, int sk, const struct ferryd_user *u, struct ferryd_ask *ret,
		     const char **ret_addr)
{
	int sp[2] = {-1, -1};
	pid_t handler = getpid(), pid = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0 || (pid = fork()) < 0) {
		ferryd_log(NULL, "a reader for a request of %s: %s", u->name, strerror(errno));
		if (sp[0] >= 0) {
			close(sp[0]);
			close(sp[1]);
		}
		ferryd_send_error(sk, NULL, NULL, "ferryd on '%s' could not read your request: try again",
				  d->node);
		return -1;
	}
	if (pid == 0) {
		close(sp[0]);
		reader(d, sk, sp[1], u, handler);
	}
	close(sp[1]);
	struct ferry_error *err = NULL;
	char why[FERRYD_ASK_MESSAGE_MAX];
	/* exactly one answer's size: whatever else the reader sends is dropped */
	int r = ferry_read_within(sp[0], ret, sizeof(*ret), ASK_DEADLINE, &err);
	close(sp[0]);
	int rr = reap(pid, r < 0, why, sizeof(why));
	reclaim_socket(sk);
	if (r == -ETIMEDOUT)
		snprintf(why, sizeof(why), "bad request: it did not come within %d s", ASK_DEADLINE);
	else if (r < 0 && rr == 0)
		snprintf(why, sizeof(why), "your request could not be read: its reader's answer was cut");
	*ret_addr = r < 0 || rr < 0 ? NULL : check_answer(d, ret, why, sizeof(why));
	if (!*ret_addr && (r < 0 || rr < 0 || !ret->refused))
		ferryd_log(NULL, "refused a request of %s: %s", u->name, why);
	if (!*ret_addr)
		ferryd_send_error(sk, NULL, NULL, "%s", why);
	ferry_error_free(err);
	return *ret_addr ? 0 : -1;
}
