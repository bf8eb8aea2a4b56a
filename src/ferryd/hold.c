/* SPDX-License-Identifier: GPL-2.0-or-later */
/* hold.c — a group checkpoint's member on another node (ferry checkpoint group NODE:INSTANCE).
 *
 * The client (src/ferry/group.c) asks its node's ferryd with a "hold" request (read by ask.c as
 * any request: by a process that is the client for good). This ferryd connects to the peer
 * named, proves the cluster key, and sends it a sealed "hold" message with the user's uid and
 * name, as a migration's prepare. The peer's ferryd checks that the uid is that user there too,
 * and runs ferry-starter as the user with FERRY_REQ_HOLD (its checks guard the dump as they do
 * the CLI's: the instance must be the user's own): the member's tree is frozen, its connections
 * locked, its generation written and sealed; the starter says "held", which goes back to the
 * client. The client's word (one raw byte, 'C' once every member is held: root compares it and
 * parses nothing of the client's, the rule of ask.c) goes on to the peer, and a go to the
 * starter's stdin: it publishes and lets the member go; anything else (another member failed, the client or a link
 * gone) is EOF there, and the member resumes with nothing published. Then "done" (the
 * generation) or "error" (the starter's own line) goes back.
 *
 * Limits: the peer's answers are waited for 'peer timeout' s of silence (the peer pings while
 * its starter dumps), the client's word FERRY_HOLD_WAIT_S; the starter's output is bounded.
 * The starter runs as the user, who can stop it: it is killed (its root guard resumes the
 * instance) once it has stayed stopped for 'criu timeout', else after 2 'criu timeout' + 2 'peer
 * timeout' (ferry_config_starter_wait) without a line before "held" (it says "progress" while its dump moves), and as long again in
 * all for its end once the word came; a handler slot is never held for longer than that and
 * FERRY_HOLD_WAIT_S. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "ferryd.h"
#include "fs.h"
#include "journal.h"
#include "names.h"
#include "spawn.h"

#define HOLD_OUT_MAX 8192

/* ------------------------------------------------------------- the peer's side */

struct member {
	pid_t pid;
	int pidfd; /* -1: polled for its end every MEMBER_POLL_MS */
	int in, out, err;
	char buf[2][HOLD_OUT_MAX];
	size_t len[2];
	bool reaped;
	int status;
	unsigned killed_after; /* s: the limit at which ferryd killed it (0: it was not) */
	unsigned stopped_limit, killed_stopped; /* s: how long it may stay stopped; it was, and killed */
	char why[192];
};

#define MEMBER_POLL_MS 200

/* ferry-starter as @u with the dump request on fd 3; stdin, stdout, stderr ours. */
static int member_start(struct member *mb, const struct ferryd_user *u, const struct ferry_request *req,
			struct ferry_error **err)
{
	_cleanup_close_ int mfd = ferryd_request_memfd(req, err);
	if (mfd < 0)
		return mfd;
	int in[2], out[2], er[2];
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(er, O_CLOEXEC) < 0)
		return ferry_error_set(err, errno, "prepare the member's dump");
	mb->pid = fork();
	if (mb->pid < 0)
		return ferry_error_set(err, errno, "fork");
	if (mb->pid == 0) {
		/* (dup2 of an fd onto itself keeps its close-on-exec: the request may already be fd 3) */
		if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(er[1], 2) < 0 ||
		    (mfd == 3 ? fcntl(3, F_SETFD, 0) : dup2(mfd, 3)) < 0)
			_exit(255);
		ferry_close_fds(4, (const int[]){-1});
		if (ferryd_become_user(u) < 0)
			_exit(255);
		/* as ferry_spawn leaves a starter: no signal blocked or ignored (ferryd ignores SIGPIPE) */
		sigset_t none;
		sigemptyset(&none);
		(void)sigprocmask(SIG_SETMASK, &none, NULL);
		struct sigaction dfl = {.sa_handler = SIG_DFL};
		for (int sig = 1; sig < NSIG; sig++)
			(void)sigaction(sig, &dfl, NULL);
		char *const argv[] = {"ferry-starter", NULL}, *const envp[] = {NULL};
		execve(FERRYD_STARTER, argv, envp);
		_exit(255);
	}
	close(in[0]);
	close(out[1]);
	close(er[1]);
	mb->in = in[1];
	mb->out = out[0];
	mb->err = er[0];
	/* its end is seen even while what it forked (its guard, CRIU) holds the pipes open */
	mb->pidfd = (int)syscall(SYS_pidfd_open, mb->pid, 0);
	return 0;
}

/* "progress" lines (FERRY_REQ_TIMINGS, while the dump moves) only reset the limit on silence:
 * they are dropped from the member's stdout. */
static void drop_progress(struct member *mb)
{
	char *b = mb->buf[0];
	size_t i = 0;
	while (i < mb->len[0]) {
		char *nl = memchr(b + i, '\n', mb->len[0] - i);
		if (!nl)
			break;
		size_t n = (size_t)(nl - (b + i)) + 1;
		if (n == strlen("progress\n") && memcmp(b + i, "progress\n", n) == 0) {
			memmove(b + i, b + i + n, mb->len[0] - i - n);
			mb->len[0] -= n;
			b[mb->len[0]] = '\0';
		} else
			i += n;
	}
}

/* Reads what is there on the member's stdout (@w 0) or stderr (1); closes it at its end. */
static void member_read(struct member *mb, int w)
{
	int *fd = w ? &mb->err : &mb->out;
	char tmp[1024];
	ssize_t n = read(*fd, tmp, sizeof(tmp));
	if (n < 0 && errno == EINTR)
		return;
	if (n <= 0) {
		close(*fd);
		*fd = -1;
		return;
	}
	size_t room = sizeof(mb->buf[w]) - 1 - mb->len[w];
	size_t k = (size_t)n < room ? (size_t)n : room;
	memcpy(mb->buf[w] + mb->len[w], tmp, k);
	mb->len[w] += k;
	mb->buf[w][mb->len[w]] = '\0';
	if (w == 0)
		drop_progress(mb);
}

static bool member_held(const struct member *mb)
{
	return mb->len[0] >= 5 && startswith(mb->buf[0], "held\n");
}

/* Reaps the member (@block: waits; it was killed). */
static void member_reap(struct member *mb, bool block)
{
	int st = 0;
	pid_t w;
	while ((w = waitpid(mb->pid, &st, block ? 0 : WNOHANG)) < 0 && errno == EINTR)
		;
	if (w == mb->pid || w < 0) {
		mb->reaped = true;
		mb->status = w < 0 ? (int)W_EXITCODE(255, 0) : st;
	}
}

/* What is left in the pipes of a member that ended (what it forked may keep them open). */
static void member_drain(struct member *mb)
{
	for (int w = 0; w < 2; w++) {
		struct pollfd p = {.fd = w ? mb->err : mb->out, .events = POLLIN};
		while (p.fd >= 0 && poll(&p, 1, 0) > 0) {
			member_read(mb, w);
			p.fd = w ? mb->err : mb->out;
		}
	}
}

/* Reads the member's stdout and stderr until its stdout has "held\n" (true), or (@to_end)
 * until it ended. At @limit seconds (of silence when @idle, else in all) it is killed: its root
 * guard resumes the instance, as at any starter's end. */
static bool member_wait(struct member *mb, bool to_end, unsigned limit, bool idle)
{
	long long deadline = ferry_monotonic_ms() + (long long)limit * 1000, stopped_since = 0;
	while (!mb->reaped && (to_end || !member_held(mb))) {
		long long now = ferry_monotonic_ms(), left = deadline - now;
		bool stopped = ferry_child_stopped(mb->pid);
		stopped_since = stopped ? (stopped_since ?: now) : 0;
		if (left <= 0 || (stopped && now - stopped_since >= (long long)mb->stopped_limit * 1000)) {
			(void)kill(mb->pid, SIGKILL);
			member_reap(mb, true);
			if (left <= 0)
				mb->killed_after = limit;
			else
				mb->killed_stopped = mb->stopped_limit;
			break;
		}
		struct pollfd p[3] = {{.fd = mb->out, .events = POLLIN},
				      {.fd = mb->err, .events = POLLIN},
				      {.fd = mb->pidfd, .events = POLLIN}};
		/* (a stopped member is looked at again every MEMBER_POLL_MS) */
		int tmo = left > MEMBER_POLL_MS ? MEMBER_POLL_MS : (int)left;
		int pr = poll(p, 3, tmo);
		if (pr < 0 && errno != EINTR)
			break;
		for (int w = 0; pr > 0 && w < 2; w++)
			if (p[w].revents) {
				member_read(mb, w);
				if (idle)
					deadline = ferry_monotonic_ms() + (long long)limit * 1000;
			}
		if (mb->pidfd < 0 || (pr > 0 && p[2].revents))
			member_reap(mb, false);
	}
	member_drain(mb);
	return member_held(mb);
}

/* The member's end (its stdin closed first: a member still held gives up), within @limit
 * seconds: its status (255 when killed). */
static int member_end(struct member *mb, unsigned limit)
{
	if (mb->in >= 0)
		close(mb->in);
	mb->in = -1;
	(void)member_wait(mb, true, limit, false);
	for (int w = 0; w < 2; w++) {
		int *fd = w ? &mb->err : &mb->out;
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
	}
	if (mb->pidfd >= 0)
		close(mb->pidfd);
	mb->pidfd = -1;
	if (!mb->reaped) { /* (poll failed) */
		(void)kill(mb->pid, SIGKILL);
		member_reap(mb, true);
	}
	return WIFEXITED(mb->status) ? WEXITSTATUS(mb->status) : 255;
}

/* The first line of the member's stderr, without "ferry: ". */
static const char *member_error(struct member *mb)
{
	if (mb->killed_stopped) {
		snprintf(mb->why, sizeof(mb->why),
			 "its starter was stopped (SIGSTOP) for %u s ('criu timeout'), and killed; "
			 "the instance goes on: check it, then try again",
			 mb->killed_stopped);
		return mb->why;
	}
	if (mb->killed_after) {
		snprintf(
		    mb->why, sizeof(mb->why),
		    "its starter was stopped or stuck, and killed after %u s (2 'criu timeout' + 2 'peer timeout'); "
		    "the instance goes on: check it, then try again",
		    mb->killed_after);
		return mb->why;
	}
	char *e = mb->buf[1], *nl = strchr(e, '\n');
	if (nl)
		*nl = '\0';
	if (startswith(e, "ferry: "))
		e += strlen("ferry: ");
	return *e ? e : "its checkpoint failed without a word";
}

void ferryd_hold_serve(struct ferryd *d, struct ferryd_link *l, const struct ferry_msg *m)
{
	struct ferry_error *err = NULL;
	const char *id = ferry_msg_get(m, "id"), *name = ferry_msg_get(m, "instance"),
		   *leave = ferry_msg_get(m, "leave"), *group = ferry_msg_get(m, "group");
	if (!name || ferry_name_check(name, "instance", NULL) < 0 || !leave ||
	    (!streq(leave, "0") && !streq(leave, "1")) || (group && !ferry_group_ok(group)))
		return ferryd_send_error(-1, l, id, "bad hold message");
	struct ferryd_user u = {0};
	if (ferryd_peer_user(d, l, m, "hold", &u) < 0)
		return;
	ferryd_log(id, "%s's group checkpoint from %s: holding '%s'", u.name, ferry_msg_get(m, "from") ?: "?",
		   name);
	/* its "progress" lines (FERRY_REQ_TIMINGS) make the limit on its dump one on silence */
	struct ferry_request req = {.op = FERRY_OP_CHECKPOINT_DUMP,
				    .flags = FERRY_REQ_HOLD | FERRY_REQ_TIMINGS |
					     (streq(leave, "1") ? FERRY_REQ_LEAVE_RUNNING : 0),
				    .instance = (char *)name,
				    .group = (char *)group};
	struct member mb = {
	    .in = -1, .out = -1, .err = -1, .pidfd = -1, .stopped_limit = d->cfg->criu_timeout};
	/* a starter's limit (ferryd_spawn_starter's): the user can stop their own starter */
	unsigned limit = ferry_config_starter_wait(d->cfg);
	if (member_start(&mb, &u, &req, &err) < 0) {
		ferryd_log(id, "%s", err->message);
		return ferryd_send_error(-1, l, id, "%s", err->message);
	}
	/* the source waits for "held" on idleness: pings while the member dumps */
	struct ferryd_keepalive k;
	ferryd_keepalive_start(&k, l);
	bool held = member_wait(&mb, false, limit, true);
	ferryd_keepalive_stop(&k);
	struct ferry_msg out = {0}, word = {0};
	bool go = false;
	if (held) {
		ferry_msg_set(&out, "type", "held");
		ferry_msg_set(&out, "id", "%s", id);
		if (ferryd_link_send(l, &out, &err) == 0 &&
		    ferryd_link_recv(l, FERRY_HOLD_WAIT_S, &word, &err) == 0)
			go = streq(ferry_msg_get(&word, "type") ?: "", "word") &&
			     streq(ferry_msg_get(&word, "go") ?: "", "1");
		ferry_msg_clear(&out);
		ferry_msg_clear(&word);
		ferry_error_free(err);
		err = NULL;
		if (go)
			(void)ferry_write_all(mb.in, "C", 1);
		ferryd_keepalive_start(&k, l); /* CRIU ends the dump */
	}
	int st = member_end(&mb, limit);
	if (held)
		ferryd_keepalive_stop(&k);
	if (st == 0) {
		char *gen = mb.buf[0] + strlen("held\n"), *nl = strchr(gen, '\n');
		if (nl)
			*nl = '\0';
		ferryd_log(id, "'%s' of %s: its generation %s is published", name, u.name, gen);
		ferry_msg_set(&out, "type", "done");
		ferry_msg_set(&out, "id", "%s", id);
		ferry_msg_set(&out, "gen", "%s", gen);
		(void)ferryd_link_send(l, &out, &err);
		ferry_msg_clear(&out);
		ferry_error_free(err);
		return;
	}
	ferryd_log(id, "'%s' of %s: %s", name, u.name, member_error(&mb));
	ferryd_send_error(-1, l, id, "%s", member_error(&mb));
}

/* ------------------------------------------------------------ the client's side */

char *ferryd_peer_next(struct ferryd_link *peer, int sk, unsigned timeout, const char *to, const char *id,
		       const char *const *types, struct ferry_msg *ret)
{
	struct ferry_error *err = NULL;
	struct ferry_msg m = {0};
	if (ferryd_link_recv(peer, timeout, &m, &err) < 0) {
		ferryd_log(id, "%s: %s", to, err->message);
		ferryd_send_error(sk, NULL, id, "%s: %s", to, err->message);
		ferry_error_free(err);
		return NULL;
	}
	char *type = xstrdup(ferry_msg_get(&m, "type") ?: "");
	bool known = streq(type, "error");
	for (size_t i = 0; types[i]; i++)
		known = known || streq(type, types[i]);
	if (!known) {
		ferryd_send_error(sk, NULL, id, "%s sent a '%s' message where '%s' was due", to, type,
				  types[0]);
		free(type);
		ferry_msg_clear(&m);
		return NULL;
	}
	if (streq(type, "error")) { /* the peer's own line, said where it is */
		ferryd_send_error(sk, NULL, id, "on %s: %s", to, ferry_msg_get(&m, "message") ?: "error");
		ferry_msg_clear(&m);
		return type;
	}
	*ret = m;
	return type;
}

char *ferryd_relay_peer(struct ferryd_link *peer, int sk, unsigned timeout, const char *to, const char *id,
			const char *const *types, int *ret_status)
{
	struct ferry_error *err = NULL;
	struct ferry_msg m = {0};
	if (ret_status)
		*ret_status = -1;
	char *type = ferryd_peer_next(peer, sk, timeout, to, id, types, &m);
	if (!type || streq(type, "error"))
		return type;
	unsigned long long status = 0;
	if (ret_status && parse_uint64(ferry_msg_get(&m, "status") ?: "", 255, &status) == 0)
		*ret_status = (int)status;
	if (ferry_msg_send(sk, &m, &err) < 0)
		ferry_error_free(err);
	ferry_msg_clear(&m);
	return type;
}

int ferryd_peer_user(const struct ferryd *d, struct ferryd_link *l, const struct ferry_msg *m,
		     const char *what, struct ferryd_user *u)
{
	struct ferry_error *err = NULL;
	const char *id = ferry_msg_get(m, "id"), *uid_s = ferry_msg_get(m, "uid"),
		   *user = ferry_msg_get(m, "user");
	unsigned long long uid = 0;
	if (!ferryd_id_ok(id) || !uid_s || parse_uint64(uid_s, UINT32_MAX - 1, &uid) < 0 || !user) {
		ferryd_send_error(-1, l, id, "bad %s message", what);
		return -1;
	}
	if (ferryd_user_lookup((uid_t)uid, u, &err) < 0) {
		ferryd_send_error(-1, l, id, "%s", err->message);
		ferry_error_free(err);
		return -1;
	}
	if (!streq(u->name, user)) {
		ferryd_send_error(-1, l, id, "uid %llu is '%s' here, not '%s'", uid, u->name, user);
		return -1;
	}
	unsigned mine = 0;
	int r = ferryd_peer_claim(u->uid, &mine);
	if (r == -EUSERS) {
		ferryd_log(id, "refused %s's %s from %s: %u of their requests in progress here", u->name,
			   what, ferry_msg_get(m, "from") ?: "?", mine);
		ferryd_send_error(
		    -1, l, id,
		    "ferryd on '%s' is busy with %u of your requests, the most it serves one user "
		    "at once: wait for them to end",
		    d->node, mine);
		return -1;
	}
	if (r < 0) {
		ferryd_log(id, "refused %s's %s: ferryd could not count their requests: %s", u->name, what,
			   strerror(-r));
		ferryd_send_error(-1, l, id, "ferryd on '%s' could not count your requests: try again later",
				  d->node);
		return -1;
	}
	return 0;
}

int ferryd_peer_open(struct ferryd *d, const char *to, const char *addr, struct ferryd_link *peer, int sk,
		     const char *id)
{
	struct ferry_error *err = NULL;
	struct ferry_xfer_keys keys;
	int fd = ferryd_connect_peer(d, addr, &keys, &err);
	int r = fd < 0 ? fd : ferryd_link_open(peer, fd, &keys, false, &err);
	explicit_bzero(&keys, sizeof(keys));
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		ferryd_log(id, "%s: %s", to, err->message);
		ferryd_send_error(sk, NULL, id, "%s: %s", to, err->message);
		ferry_error_free(err);
	}
	return r < 0 ? -1 : 0;
}

void ferryd_hold_client(struct ferryd *d, int sk, const struct ferryd_user *u, const struct ferryd_ask *ask,
			const char *addr)
{
	struct ferry_error *err = NULL;
	_cleanup_free_ char *id = ferryd_new_id();
	ferryd_log(id, "%s's group checkpoint: '%s' on %s", u->name, ask->instance, ask->to);
	struct ferryd_link peer = {.fd = -1};
	if (ferryd_peer_open(d, ask->to, addr, &peer, sk, id) < 0)
		return;
	struct ferry_msg m = {0};
	ferry_msg_set(&m, "type", "hold");
	ferry_msg_set(&m, "id", "%s", id);
	ferry_msg_set(&m, "uid", "%u", (unsigned)u->uid);
	ferry_msg_set(&m, "user", "%s", u->name);
	ferry_msg_set(&m, "instance", "%s", ask->instance);
	ferry_msg_set(&m, "leave", "%u", ask->leave);
	if (ask->group[0])
		ferry_msg_set(&m, "group", "%s", ask->group);
	ferry_msg_set(&m, "from", "%s", d->node);
	int r = ferryd_link_send(&peer, &m, &err);
	ferry_msg_clear(&m);
	if (r < 0) {
		ferryd_send_error(sk, NULL, id, "%s: %s", ask->to, err->message);
		ferry_error_free(err);
		ferryd_link_close(&peer);
		return;
	}
	static const char *const states[] = {"held", "done", NULL};
	_cleanup_free_ char *type =
	    ferryd_relay_peer(&peer, sk, d->cfg->peer_timeout, ask->to, id, states, NULL);
	if (type && streq(type, "held")) {
		/* the group's word, from the client; or the peer's end first (its member failed) */
		struct pollfd p[2] = {{.fd = sk, .events = POLLIN}, {.fd = peer.fd, .events = POLLIN}};
		int pr;
		while ((pr = poll(p, 2, FERRY_HOLD_WAIT_S * 1000)) < 0 && errno == EINTR)
			;
		/* the word is one raw byte, 'C' to go: root parses nothing of the client's here (the
		 * rule of ask.c), and a byte that is there does not make it wait */
		bool go = false;
		char c = 0;
		if (pr > 0 && p[0].revents && !p[1].revents)
			go = recv(sk, &c, 1, MSG_DONTWAIT) == 1 && c == 'C';
		if (!(pr > 0 && p[1].revents)) {
			ferry_msg_set(&m, "type", "word");
			ferry_msg_set(&m, "go", "%d", go);
			(void)ferryd_link_send(&peer, &m, &err);
			ferry_msg_clear(&m);
			ferry_error_free(err);
			err = NULL;
		}
		free(ferryd_relay_peer(&peer, sk, d->cfg->peer_timeout, ask->to, id, states, NULL));
	}
	ferryd_link_close(&peer);
}
