/* SPDX-License-Identifier: GPL-2.0-or-later */
/* start.c — ferry instance start --node NODE: an instance started on another node, as its user.
 *
 * The client (src/ferry/instance.c) builds its request as for a start on its own node, encodes
 * it (request.h) and sends the bytes to its node's ferryd in a "start" request's "req" fields
 * (proto.h's blob). That ferryd's reader, the client for good (ask.c), decodes and checks them
 * as a remote start's (ferryd_start_take) and hands root the bytes, which root never parses: it
 * connects to the peer named, proves the cluster key, and sends them in a sealed "start" message
 * with the user's uid and name. The peer's ferryd checks that the uid is that user there too,
 * has the bytes taken again by a child that is that user for good, and runs ferry-starter as the
 * user with them on fd 3, as the user's own 'ferry instance start' would on that node: the
 * starter's checks (the image, the checkpoint's owner, the network policy, the instance limit)
 * are the same. Its exit status and the start of its stdout and stderr go back ("done").
 *
 * What a remote start may ask (ferryd_start_take, in ask.c): what 'instance start' offers a
 * user; not ferryd's own flags (a migration's commit and restart, post-copy) nor a --page-server
 * (it needs a connection on fd 4). The same way, 'instance list --node' has the user's instances
 * there listed (a bare INSTANCE_LIST request). Limits: the request is at most
 * FERRY_PROTO_BLOB_MAX bytes; the peer's answer is waited for 'peer timeout' s of silence
 * (it pings while its starter runs); the starter's output sent back is bounded (START_OUT_TOTAL,
 * in "out" messages of START_OUT_MAX before "done"; START_ERR_MAX), and the client's ferryd
 * passes on no more than that (relay_answer): a peer holds the cluster key, but what it sends is
 * input all the same. */
#include <fcntl.h>
#include <sys/mman.h>

#include "ferryd.h"
#include "fs.h"
#include "spawn.h"

/* what is sent back of the starter's stdout, in "out" messages of START_OUT_MAX bytes (a list of
 * instances: some 30 of them a message), START_OUT_TOTAL in all (some 3000), and of its stderr */
#define START_OUT_MAX (36u * 1024)
#define START_OUT_TOTAL FERRY_PROTO_OUT_TOTAL
#define START_ERR_MAX (4u * 1024)

/* ------------------------------------------------------------- the peer's side */

/* ferryd_as_user's work on the peer: the message's request, taken as the client's reader does. */
static int take_as_user(void *arg, void *ans)
{
	struct ferryd_ask *a = ans;
	a->magic = FERRYD_ASK_MAGIC;
	a->size = sizeof(*a);
	a->kind = FERRYD_ASK_START;
	if (ferryd_start_take(arg, a, a->message, sizeof(a->message)) < 0) {
		a->refused = 1;
		a->req_len = 0;
	}
	return 0;
}

/* @fd's first @max bytes (from its start), NUL-terminated, malloc'ed; their count in *ret_len. */
static char *read_head(int fd, size_t max, size_t *ret_len)
{
	char *buf = xmalloc(max + 1);
	ssize_t k = fd >= 0 ? pread(fd, buf, max, 0) : -1;
	*ret_len = k > 0 ? (size_t)k : 0;
	buf[*ret_len] = '\0';
	return buf;
}

/* ferry-starter as @u with @req (@len bytes) on fd 3: its status in *ret_status, its stdout and
 * stderr into the memfds @out and @errfd (a starter that leaves a process holding them never
 * blocks us). */
static int run_starter(const struct ferryd *d, const struct ferryd_user *u, const unsigned char *req,
		       size_t len, const struct rlimit *limits, int *ret_status, int out, int errfd,
		       struct ferry_error **err)
{
	_cleanup_close_ int mfd = ferryd_bytes_memfd(req, len, err);
	if (mfd < 0)
		return mfd;
	struct ferry_spawn_opts o = {
	    .pass_fds = &mfd, .n_pass_fds = 1, .stdout_fd = out, .stderr_fd = errfd, .limits = limits};
	return ferryd_spawn_starter(d, u, &o, ret_status, err);
}

/* The start of @a's request here, as @u with @limits (limits.c); its end ("done", or "error") on
 * @l, or on the plain socket @sk when @l is NULL. The starter's status, or -1 when it did not
 * run. */
static int start_here(struct ferryd *d, const struct ferryd_user *u, const struct ferryd_ask *a,
		      const struct rlimit *limits, const char *id, struct ferryd_link *l, int sk)
{
	struct ferry_error *err = NULL;
	_cleanup_close_ int out = memfd_create("ferryd-out", MFD_CLOEXEC),
			    errfd = memfd_create("ferryd-err", MFD_CLOEXEC);
	if (out < 0 || errfd < 0) {
		ferryd_send_error(sk, l, id, "start the instance: %s", strerror(errno));
		return -1;
	}
	struct ferryd_keepalive k;
	if (l)
		ferryd_keepalive_start(&k, l);
	int status = 0;
	int r = run_starter(d, u, a->req, a->req_len, limits, &status, out, errfd, &err);
	if (l)
		ferryd_keepalive_stop(&k);
	if (r < 0) {
		ferryd_log(id, "'%s' of %s: %s", a->instance, u->name, err->message);
		ferryd_send_error(sk, l, id, "%s", err->message);
		ferry_error_free(err);
		return -1;
	}
	ferryd_log(id, "'%s' of %s: the starter exited with status %d", a->instance, u->name, status);
	/* its stdout in "out" messages, then "done" with its status and stderr */
	_cleanup_free_ char *o = xmalloc(START_OUT_MAX);
	off_t off = 0;
	ssize_t got = 0;
	int r2 = 0;
	for (; r2 == 0 && off < (off_t)START_OUT_TOTAL && (got = pread(out, o, START_OUT_MAX, off)) > 0;
	     off += got) {
		struct ferry_msg om = {0};
		ferry_msg_set(&om, "type", "out");
		ferry_msg_set(&om, "id", "%s", id);
		ferry_msg_set_blob(&om, "out", o, (size_t)got);
		r2 = l ? ferryd_link_send(l, &om, &err) : ferry_msg_send(sk, &om, &err);
		ferry_msg_clear(&om);
	}
	size_t elen = 0;
	_cleanup_free_ char *e = read_head(errfd, START_ERR_MAX, &elen);
	struct ferry_msg done = {0};
	ferry_msg_set(&done, "type", "done");
	ferry_msg_set(&done, "id", "%s", id);
	ferry_msg_set(&done, "status", "%d", status);
	if (off >= (off_t)START_OUT_TOTAL && pread(out, o, 1, off) == 1)
		ferry_msg_set(&done, "out_cut", "%u", START_OUT_TOTAL);
	ferry_msg_set_blob(&done, "err", e, elen);
	if (r2 == 0)
		(void)(l ? ferryd_link_send(l, &done, &err) : ferry_msg_send(sk, &done, &err));
	ferry_msg_clear(&done);
	ferry_error_free(err);
	return status;
}

void ferryd_start_serve(struct ferryd *d, struct ferryd_link *l, const struct ferry_msg *m)
{
	struct ferry_error *err = NULL;
	const char *id = ferry_msg_get(m, "id");
	struct ferryd_user u = {0};
	if (ferryd_peer_user(d, l, m, "start", &u) < 0)
		return;
	struct rlimit limits[RLIM_NLIMITS];
	if (ferryd_limits_parse(ferry_msg_get(m, "limits") ?: "", limits, &err) < 0) {
		ferryd_log(id, "the start of %s from %s: %s", u.name, ferry_msg_get(m, "from") ?: "?",
			   err->message);
		ferryd_send_error(-1, l, id, "%s: %s; is ferry on %s older than on %s?", d->node,
				  err->message, ferry_msg_get(m, "from") ?: "?", d->node);
		return ferry_error_free(err);
	}
	/* the request's bytes are the user's: read again, by the user */
	_cleanup_free_ struct ferryd_ask *a = xzalloc(sizeof(*a));
	if (ferryd_as_user(d, &u, "ferryd-start", -1, take_as_user, (void *)m, a, sizeof(*a),
			   d->cfg->peer_timeout, &err) < 0) {
		ferryd_log(id, "the start request of %s could not be read: %s", u.name, err->message);
		return ferryd_send_error(-1, l, id, "your request could not be read on %s: its reader %s",
					 d->node, err->message);
	}
	if (a->magic != FERRYD_ASK_MAGIC || a->size != sizeof(*a) || a->refused > 1 ||
	    a->req_len > sizeof(a->req) || !ferryd_nul_inside(a->instance, sizeof(a->instance)) ||
	    !ferryd_nul_inside(a->message, sizeof(a->message)) || (!a->refused && !a->req_len) ||
	    (a->refused && !a->message[0]))
		return ferryd_send_error(-1, l, id,
					 "your request could not be read on %s: its reader's "
					 "answer is malformed",
					 d->node);
	if (a->refused)
		return ferryd_send_error(-1, l, id, "%s", a->message);
	ferryd_log(id, "%s's start from %s: instance '%s'", u.name, ferry_msg_get(m, "from") ?: "?",
		   a->instance);
	(void)start_here(d, &u, a, limits, id, l, -1);
}

/* ------------------------------------------------------------ the client's side */

/* The peer @to's answer to a start, passed on to the client on @sk as long as it is one: "out"
 * messages, no more than a start sends (the bytes of each at most START_OUT_MAX, START_OUT_TOTAL
 * in all), then "done" with a status (and at most START_ERR_MAX bytes of stderr). Anything else
 * ends it, the client told why in one line. The starter's status, or -1. */
static int relay_answer(struct ferryd_link *peer, int sk, unsigned timeout, const char *to, const char *id)
{
	static const char *const types[] = {"done", "out", NULL};
	_cleanup_free_ char *o = xmalloc(START_OUT_MAX);
	size_t total = 0;
	int status = -1;
	for (unsigned outs = 0;; outs++) {
		struct ferry_error *err = NULL;
		struct ferry_msg m = {0};
		_cleanup_free_ char *t = ferryd_peer_next(peer, sk, timeout, to, id, types, &m);
		if (!t || streq(t, "error"))
			return -1;
		_cleanup_free_ char *why = NULL;
		size_t n = 0;
		unsigned long long st = 0;
		int r = 0;
		if (streq(t, "done")) {
			if (parse_uint64(ferry_msg_get(&m, "status") ?: "", 255, &st) < 0)
				why = xasprintf("%s sent a 'done' without a status (0 to 255)", to);
			else if (ferry_msg_get_blob(&m, "err", o, START_ERR_MAX, &n, &err) < 0)
				why = xasprintf("%s sent a 'done' with a bad stderr (at most %u bytes): %s",
						to, START_ERR_MAX, err->message);
			status = (int)st;
		} else if (outs >= START_OUT_TOTAL / START_OUT_MAX + 1) /* (the last one shorter) */
			why = xasprintf("%s sent more 'out' messages than a start's (%u)", to,
					START_OUT_TOTAL / START_OUT_MAX + 1);
		else if ((r = ferry_msg_get_blob(&m, "out", o, START_OUT_MAX, &n, &err)) == -E2BIG)
			why = xasprintf("%s sent an 'out' larger than a start's message (%u bytes)", to,
					START_OUT_MAX);
		else if (r < 0)
			why = xasprintf("%s sent a malformed 'out': %s", to, err->message);
		else if ((total += n) > START_OUT_TOTAL)
			why = xasprintf("%s sent more output than a start's (%u bytes)", to, START_OUT_TOTAL);
		ferry_error_free(err);
		err = NULL;
		if (!why && ferry_msg_send(sk, &m, &err) < 0)
			ferry_error_free(err);
		ferry_msg_clear(&m);
		if (why) {
			ferryd_log(id, "%s", why);
			ferryd_send_error(sk, NULL, id, "%s", why);
			return -1;
		}
		if (streq(t, "done"))
			return status;
	}
}

void ferryd_start_client(struct ferryd *d, int sk, const struct ferryd_user *u, const struct ferryd_ask *ask,
			 const char *addr)
{
	_cleanup_free_ char *id = ferryd_new_id();
	ferryd_log(id, "%s starts '%s' on %s", u->name, ask->instance, ask->to);
	int status = -1;
	struct ferry_error *err = NULL;
	/* the instance gets the limits the user's command has here, not ours (limits.c) */
	struct rlimit limits[RLIM_NLIMITS];
	char lim[FERRYD_LIMITS_MAX];
	if (ferryd_client_limits(sk, u->uid, limits, &err) < 0) {
		ferryd_log(id, "%s", err->message);
		ferryd_send_error(sk, NULL, id, "%s", err->message);
		ferry_error_free(err);
		goto out;
	}
	if (ask->here) {
		status = start_here(d, u, ask, limits, id, NULL, sk);
		goto out;
	}
	struct ferryd_link peer = {.fd = -1};
	if (ferryd_peer_open(d, ask->to, addr, &peer, sk, id) < 0)
		goto out;
	struct ferry_msg m = {0};
	ferry_msg_set(&m, "type", "start");
	ferry_msg_set(&m, "id", "%s", id);
	ferry_msg_set(&m, "uid", "%u", (unsigned)u->uid);
	ferry_msg_set(&m, "user", "%s", u->name);
	ferry_msg_set(&m, "from", "%s", d->node);
	ferryd_limits_format(limits, lim, sizeof(lim));
	ferry_msg_set(&m, "limits", "%s", lim);
	ferry_msg_set_blob(&m, "req", ask->req, ask->req_len);
	int r = ferryd_link_send(&peer, &m, &err);
	ferry_msg_clear(&m);
	if (r < 0) {
		ferryd_send_error(sk, NULL, id, "%s: %s", ask->to, err->message);
		ferry_error_free(err);
	} else {
		status = relay_answer(&peer, sk, d->cfg->peer_timeout, ask->to, id);
	}
	ferryd_link_close(&peer);
	close(peer.fd);
out:
	if (status != 0)
		ferryd_launch_tidy(d, u, ask, id);
}
