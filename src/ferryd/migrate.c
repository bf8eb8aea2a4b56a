/* SPDX-License-Identifier: GPL-2.0-or-later */
/* migrate.c — one migration, from both ends.
 *
 * Source (a local client asked): connect to the destination ferryd, prove the cluster key,
 * "prepare"; then
 *   default:  the starter dumps the instance (as the user) into the shared directory, synced;
 *             the destination restarts it from there; if that fails, the source restarts it
 *             here again from the same checkpoint;
 *   diskless: both daemons hand the connection to their starters: the destination restarts
 *             with a page server on it, the source dumps through it (pages straight into the
 *             destination's tmpfs, the rest streamed after), and the source instance ends only
 *             once the destination runs it (else it resumes).
 * Every step's time is reported to the client. */
#include <poll.h>
#include <stdarg.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "ferryd.h"
#include "fs.h"
#include "names.h"
#include "xfer.h"

#define PEER_TIMEOUT 30

static void send_error(int sk, const char *id, const char *fmt, ...) _printf_(3, 4);
static void send_error(int sk, const char *id, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *m = NULL;
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	struct ferry_msg msg = {0};
	ferry_msg_set(&msg, "type", "error");
	ferry_msg_set(&msg, "message", "%s", m ? m : "error");
	if (id)
		ferry_msg_set(&msg, "id", "%s", id);
	struct ferry_error *err = NULL;
	(void)ferry_msg_send(sk, &msg, &err);
	ferry_error_free(err);
	ferry_msg_clear(&msg);
	free(m);
}

/* Tells the client where the migration stands (it shows a progress line on a terminal). */
static void progress(int sk, const char *phase)
{
	struct ferry_msg m = {0};
	ferry_msg_set(&m, "type", "progress");
	ferry_msg_set(&m, "phase", "%s", phase);
	struct ferry_error *err = NULL;
	(void)ferry_msg_send(sk, &m, &err);
	ferry_error_free(err);
	ferry_msg_clear(&m);
}

/* "timing k=v k=v" from a starter's output. */
static long long timing(const char *out, const char *key)
{
	const char *line = out ? strstr(out, "timing ") : NULL;
	if (!line)
		return 0;
	_cleanup_free_ char *pat = xasprintf(" %s=", key);
	const char *p = strstr(line, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : 0;
}

static int connect_peer(const struct ferryd *d, const char *addr, struct ferry_error **err)
{
	const char *colon = strrchr(addr, ':');
	_cleanup_free_ char *host = xstrndup(addr, colon ? (size_t)(colon - addr) : strlen(addr));
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
	if (!colon || getaddrinfo(host, colon + 1, &hints, &res) != 0)
		return ferry_error_msg(err, EINVAL, "bad peer address '%s'", addr);
	int sk = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r = sk < 0 || connect(sk, res->ai_addr, res->ai_addrlen) < 0 ? -errno : 0;
	freeaddrinfo(res);
	if (r < 0) {
		if (sk >= 0)
			close(sk);
		return ferry_error_set(err, -r, "connect to '%s'", addr);
	}
	ferry_xfer_tune_socket(sk);
	if (ferry_peer_connect(sk, d->key, d->keylen, PEER_TIMEOUT, err) < 0) {
		close(sk);
		return ferry_error_wrap(err, "ferryd at '%s'", addr);
	}
	return sk;
}

static char *new_id(void)
{
	unsigned char r[6];
	if (getentropy(r, sizeof(r)) < 0)
		memset(r, 0, sizeof(r));
	return xasprintf("%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5]);
}

/* ---- source ---- */

void ferryd_handle_client(struct ferryd *d, int sk)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	struct ferry_error *err = NULL;
	if (getsockopt(sk, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0)
		return;
	struct ferry_msg req = {0};
	if (ferry_msg_recv(sk, FERRYD_REQUEST_TIMEOUT, &req, &err) < 0) {
		send_error(sk, NULL, "bad request: %s", err->message);
		return;
	}
	long long t0 = ferry_now_ms();
	const char *type = ferry_msg_get(&req, "type"), *name = ferry_msg_get(&req, "instance");
	const char *to = ferry_msg_get(&req, "to"), *mode = ferry_msg_get(&req, "mode");
	if (!type || !streq(type, "migrate") || !name || !to || !mode)
		return send_error(sk, NULL,
				  "bad request: expected a migrate request with instance, to and mode");
	if (ferry_name_check(name, "instance", &err) < 0)
		return send_error(sk, NULL, "%s", err->message);
	bool diskless = streq(mode, "diskless");
	if (!diskless && !streq(mode, "default"))
		return send_error(sk, NULL, "unknown mode '%s': use default or diskless", mode);
	const char *addr = NULL;
	for (size_t i = 0; i < d->n_peers; i++)
		if (streq(d->peers[i].name, to))
			addr = d->peers[i].addr;
	if (streq(to, d->node))
		return send_error(sk, NULL, "'%s' is this node: migrate to another one", to);
	if (!addr)
		return send_error(sk, NULL, "no node '%s' is known to ferryd on '%s'", to, d->node);
	struct ferryd_user u = {0};
	/* the only identity ferryd acts for: the kernel's word for who is on the socket */
	if (ferryd_user_lookup(cred.uid, &u, &err) < 0)
		return send_error(sk, NULL, "%s", err->message);
	_cleanup_free_ char *id = new_id();
	ferryd_log(id, "%s asks to move '%s' to %s (%s)", u.name, name, to, mode);

	progress(sk, "request");
	int peer = connect_peer(d, addr, &err);
	if (peer < 0) {
		ferryd_log(id, "%s", err->message);
		return send_error(sk, id, "%s; the instance was not touched", err->message);
	}
	long long t_conn = ferry_now_ms();
	struct ferry_msg m = {0};
	ferry_msg_set(&m, "type", "prepare");
	ferry_msg_set(&m, "id", "%s", id);
	ferry_msg_set(&m, "uid", "%u", (unsigned)u.uid);
	ferry_msg_set(&m, "user", "%s", u.name);
	ferry_msg_set(&m, "instance", "%s", name);
	ferry_msg_set(&m, "mode", "%s", mode);
	ferry_msg_set(&m, "from", "%s", d->node);
	struct ferry_msg reply = {0};
	if (ferry_msg_send(peer, &m, &err) < 0 || ferry_msg_recv(peer, PEER_TIMEOUT, &reply, &err) < 0)
		return send_error(sk, id, "%s: %s; the instance was not touched", to, err->message);
	if (!streq(ferry_msg_get(&reply, "type") ?: "", "ready"))
		return send_error(sk, id, "%s refused: %s; the instance was not touched", to,
				  ferry_msg_get(&reply, "message") ?: "no reason");
	long long t_ready = ferry_now_ms();
	progress(sk, diskless ? "dump and transfer" : "dump and sync");

	_cleanup_free_ char *src_out = NULL;
	struct ferryd_leaf leaf = {.uidfd = -1};
	bool restart_here = false; /* default mode: the destination did not take it */
	bool in_ckpt = false; /* default mode: the instance is in the checkpoint, ended here */
	_cleanup_free_ char *dest_failed = NULL;
	struct ferry_request dump = {
	    .op = FERRY_OP_CHECKPOINT_DUMP, .flags = FERRY_REQ_TIMINGS, .instance = (char *)name};
	int r;
	if (diskless) {
		dump.page_server = xasprintf("ferryd:%s", to);
		/* the dump's staging (the images other than the pages, sent after them) in a directory of
		 * this migration's, not in the instance's own checkpoint: a migrated instance's may be
		 * gone (see ferryd(8), DIRECTORIES) */
		_cleanup_free_ char *staging = xasprintf("%s-%s-out", name, id);
		if (ferryd_leaf_make(d->tmpfs_dir, &u, staging, id, &leaf, &err) == 0)
			dump.checkpoint = leaf.path;
		else
			ferryd_log(id, "staging in the instance's own checkpoint: %s", err->message);
		ferry_error_free(err);
		err = NULL;
		r = ferryd_run_starter(d, &u, &dump, peer, &src_out, &err);
		free(dump.page_server);
		if (r < 0)
			shutdown(peer, SHUT_WR); /* the destination's starter stops waiting */
	} else {
		_cleanup_free_ char *leaf_name = xasprintf("%s-%s", name, id);
		r = ferryd_leaf_make(d->shared_dir, &u, leaf_name, id, &leaf, &err);
		if (r == 0)
			ferryd_log(id, "dumps into '%s'", leaf.path);
		dump.checkpoint = leaf.path;
		if (r == 0)
			r = ferryd_run_starter(d, &u, &dump, -1, &src_out, &err);
		in_ckpt = r == 0;
		ferry_msg_clear(&m);
		ferry_msg_set(&m, "type", r == 0 ? "restart" : "abort");
		if (leaf.path)
			ferry_msg_set(&m, "dir", "%s", leaf.path);
		struct ferry_error *e2 = NULL;
		if (ferry_msg_send(peer, &m, &e2) < 0 && r == 0)
			r = ferry_error_msg(&err, e2->code, "%s: %s", to, e2->message);
		ferry_error_free(e2);
		e2 = NULL;
		if (r == 0) {
			progress(sk, "restore");
			/* the destination's starter restores, says so, and keeps its copy only once we
			 * commit: if we never hear it (it or its daemon died), we restart ours and it
			 * stops its own */
			if (ferry_xfer_read_verdict(peer, (unsigned)d->cfg->criu_timeout + 60, &e2) < 0 ||
			    ferry_xfer_send_commit(peer) < 0) {
				restart_here = true;
				dest_failed = xstrdup(e2 ? e2->message : "the destination went away");
			}
			ferry_error_free(e2);
		}
	}
	_cleanup_free_ char *dump_error = r < 0 && err ? xstrdup(err->message) : NULL;
	/* the starter says "the instance keeps running"; the report says where */
	static const char keeps[] = "; the instance keeps running";
	if (dump_error && strlen(dump_error) > strlen(keeps) &&
	    streq(dump_error + strlen(dump_error) - strlen(keeps), keeps))
		dump_error[strlen(dump_error) - strlen(keeps)] = '\0';
	ferry_error_free(err);
	err = NULL;
	/* diskless: the destination's starter says why it failed inside the session, and our
	 * starter's message carries it; nothing of the session is left on the connection */
	const char *dest_starter_why = NULL;
	struct ferry_msg done = {0};
	/* after a failed dump the destination has nothing left to do: do not wait long for it */
	unsigned wait = r < 0 ? 10 : (unsigned)d->cfg->criu_timeout + 60;
	int rr = ferry_msg_recv(peer, wait, &done, &err);
	bool dest_done = rr == 0 && streq(ferry_msg_get(&done, "type") ?: "", "done");
	/* diskless: the source starter ended its copy only on the destination starter's word that
	 * the instance runs there, so that is the outcome even if the destination's daemon went
	 * away before it could report */
	bool ok = r == 0 && !restart_here && (dest_done || diskless || !dest_failed);
	long long t_end = ferry_now_ms();

	struct ferry_msg rep = {0};
	ferry_msg_set(&rep, "type", "report");
	ferry_msg_set(&rep, "id", "%s", id);
	ferry_msg_set(&rep, "ok", "%d", ok);
	ferry_msg_set(&rep, "instance", "%s", name);
	ferry_msg_set(&rep, "from", "%s", d->node);
	ferry_msg_set(&rep, "to", "%s", to);
	ferry_msg_set(&rep, "mode", "%s", mode);
	if (ok) {
		long long freeze = timing(src_out, "freeze"), dumped = timing(src_out, "dumped"),
			  sdone = timing(src_out, "done");
		long long dstart = strtoll(ferry_msg_get(&done, "start") ?: "0", NULL, 10);
		long long received = strtoll(ferry_msg_get(&done, "received") ?: "0", NULL, 10);
		long long restored = strtoll(ferry_msg_get(&done, "restored") ?: "0", NULL, 10);
		if (!dest_done) {
			/* the destination's report was lost: the source starter heard "restored" at sdone */
			received = dumped;
			restored = sdone;
			ferry_msg_set(&rep, "note",
				      "the destination's daemon did not report: times end at the source");
		}
		ferry_msg_set(&rep, "request_ms", "%lld", t_conn - t0);
		ferry_msg_set(&rep, "prepare_ms", "%lld", t_ready - t_conn);
		ferry_msg_set(&rep, "dump_ms", "%lld", dumped - freeze);
		if (diskless) {
			ferry_msg_set(&rep, "transfer_ms", "%lld", received - dumped);
			ferry_msg_set(&rep, "restore_ms", "%lld", restored - received);
		} else {
			ferry_msg_set(&rep, "sync_ms", "%lld", sdone - dumped);
			ferry_msg_set(&rep, "restore_ms", "%lld", restored - dstart);
		}
		ferry_msg_set(&rep, "total_ms", "%lld", t_end - t0);
		ferry_msg_set(&rep, "downtime_ms", "%lld", restored - freeze);
		ferry_msg_set(&rep, "bytes", "%s", ferry_msg_get(&done, "bytes") ?: "0");
		ferryd_log(id, "'%s' now runs on %s (downtime %lld ms)", name, to, restored - freeze);
	} else {
		/* the destination's own reason, when it gave one, says most (e.g. its tmpfs is full) */
		const char *dest_why =
		    rr == 0 && !dest_done ? ferry_msg_get(&done, "message") : dest_starter_why;
		_cleanup_free_ char *both =
		    dest_why && dump_error ? xasprintf("%s (here: %s)", dest_why, dump_error) : NULL;
		const char *why = both		? both
				  : dest_failed ? dest_failed
				  : dest_why	? dest_why
				  : dump_error	? dump_error
				  : rr < 0	? err->message
						: "the destination failed";
		_cleanup_free_ char *back = NULL;
		if (in_ckpt) {
			/* the instance was dumped (and ended here): bring it back from the same checkpoint */
			struct ferry_request restart = {.op = FERRY_OP_INSTANCE_START,
							.flags = FERRY_REQ_CRIU_RESTART | FERRY_REQ_MIGRATED,
							.checkpoint = leaf.path};
			_cleanup_free_ char *out = NULL;
			struct ferry_error *e3 = NULL;
			if (ferryd_run_starter(d, &u, &restart, -1, &out, &e3) == 0)
				back = xasprintf("; the instance runs again on %s", d->node);
			else
				back =
				    xasprintf("; restarting it on %s failed too: %s (its checkpoint is '%s')",
					      d->node, e3->message, leaf.path);
			ferry_error_free(e3);
		} else {
			back = xasprintf("; the instance keeps running on %s", d->node);
		}
		ferry_msg_set(&rep, "message", "migration of '%s' to %s failed: %s%s", name, to, why, back);
		ferryd_log(id, "failed: %s%s", why, back);
	}
	ferry_error_free(err);
	err = NULL;
	(void)ferry_msg_send(sk, &rep, &err);
	/* The migration's directory goes, unless the instance was dumped there and did not move:
	 * it then runs here again from it (its record names it), or that checkpoint is all that
	 * is left of it. */
	if (ok || !in_ckpt)
		ferryd_leaf_remove(d, &u, &leaf, id);
	ferryd_leaf_close(&leaf);
}

/* ---- destination ---- */

/* The restart, once the destination is ready; @leaf: the diskless copy's directory. */
static void receive(struct ferryd *d, int sk, const struct ferry_msg *m, const struct ferryd_user *u,
		    const struct ferryd_leaf *leaf)
{
	struct ferry_error *err = NULL;
	const char *id = ferry_msg_get(m, "id"), *name = ferry_msg_get(m, "instance");
	bool diskless = streq(ferry_msg_get(m, "mode"), "diskless");
	struct ferry_msg ready = {0};
	ferry_msg_set(&ready, "type", "ready");
	if (ferry_msg_send(sk, &ready, &err) < 0)
		return;
	struct ferry_request restart = {.op = FERRY_OP_INSTANCE_START,
					.flags =
					    FERRY_REQ_CRIU_RESTART | FERRY_REQ_TIMINGS | FERRY_REQ_MIGRATED,
					.instance = (char *)name};
	int r;
	_cleanup_free_ char *out = NULL;
	if (diskless) {
		restart.checkpoint = leaf->path;
		restart.page_server = xasprintf("ferryd:%s", ferry_msg_get(m, "from") ?: "peer");
		r = ferryd_run_starter(d, u, &restart, sk, &out, &err);
		free(restart.page_server);
	} else {
		struct ferry_msg next = {0};
		if (ferry_msg_recv(sk, (unsigned)d->cfg->criu_timeout + 60, &next, &err) < 0)
			return;
		const char *ndir = ferry_msg_get(&next, "dir");
		if (streq(ferry_msg_get(&next, "type") ?: "", "abort"))
			return;
		/* only a directory of this user in the shared directory: a peer names no other path */
		_cleanup_free_ char *prefix = xasprintf("%s/%u/", d->shared_dir, (unsigned)u->uid);
		if (!streq(ferry_msg_get(&next, "type") ?: "", "restart") || !ndir ||
		    !startswith(ndir, prefix) || strstr(ndir, "/..") || strchr(ndir + strlen(prefix), '/'))
			return send_error(sk, id, "bad restart message");
		restart.checkpoint = (char *)ndir;
		restart.flags |= FERRY_REQ_COMMIT;
		r = ferryd_run_starter(d, u, &restart, sk, &out, &err);
	}
	if (r < 0) {
		ferryd_log(id, "restart failed: %s", err->message);
		return send_error(sk, id, "%s", err->message);
	}
	struct ferry_msg done = {0};
	ferry_msg_set(&done, "type", "done");
	ferry_msg_set(&done, "start", "%lld", timing(out, "start"));
	ferry_msg_set(&done, "received", "%lld", timing(out, "received"));
	ferry_msg_set(&done, "restored", "%lld", timing(out, "restored"));
	ferry_msg_set(&done, "bytes", "%lld", timing(out, "bytes"));
	ferryd_log(id, "'%s' runs here", name);
	(void)ferry_msg_send(sk, &done, &err);
}

void ferryd_handle_peer(struct ferryd *d, int sk)
{
	/* the peer proved the cluster key in the main loop (loop.c) before this process was forked */
	struct ferry_error *err = NULL;
	struct ferry_msg m = {0};
	if (ferry_msg_recv(sk, PEER_TIMEOUT, &m, &err) < 0)
		return send_error(sk, NULL, "%s", err->message);
	const char *type = ferry_msg_get(&m, "type"), *id = ferry_msg_get(&m, "id"),
		   *name = ferry_msg_get(&m, "instance");
	const char *mode = ferry_msg_get(&m, "mode"), *uid_s = ferry_msg_get(&m, "uid"),
		   *user = ferry_msg_get(&m, "user");
	unsigned long long uid = 0;
	if (!type || !streq(type, "prepare") || !id || strlen(id) != 12 ||
	    strspn(id, "0123456789abcdef") != 12 || !name || ferry_name_check(name, "instance", NULL) < 0 ||
	    !mode || (!streq(mode, "default") && !streq(mode, "diskless")) || !uid_s ||
	    parse_uint64(uid_s, UINT32_MAX - 1, &uid) < 0 || !user)
		return send_error(sk, id, "bad prepare message");
	struct ferryd_user u = {0};
	if (ferryd_user_lookup((uid_t)uid, &u, &err) < 0)
		return send_error(sk, id, "%s", err->message);
	if (!streq(u.name, user)) /* the nodes must agree on who uid N is */
		return send_error(sk, id, "uid %llu is '%s' here, not '%s'", uid, u.name, user);
	ferryd_log(id, "receiving '%s' of %s from %s (%s)", name, u.name, ferry_msg_get(&m, "from") ?: "?",
		   mode);
	bool diskless = streq(mode, "diskless");
	struct ferryd_leaf leaf = {.uidfd = -1};
	if (diskless) {
		_cleanup_free_ char *leaf_name = xasprintf("%s-%s", name, id);
		if (ferryd_leaf_make(d->tmpfs_dir, &u, leaf_name, id, &leaf, &err) < 0) {
			ferryd_log(id, "%s", err->message);
			return send_error(sk, id, "%s", err->message);
		}
	}
	receive(d, sk, &m, &u, &leaf);
	/* diskless: the instance was restored from the tmpfs copy (or was not): it is not needed
	 * any more, and takes as much memory as the instance */
	ferryd_leaf_remove(d, &u, &leaf, id);
}
