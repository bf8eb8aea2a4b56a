/* SPDX-License-Identifier: GPL-2.0-or-later */
/* migrate.c — the source of a migration, for a local client (receive.c has the destination).
 *
 * Connect to the destination ferryd, prove the cluster key, "prepare"; then
 *   default:  the starter dumps the instance (as the user) into the shared directory, synced;
 *             the destination restarts it from there; if that fails, the source restarts it
 *             here again from the same checkpoint;
 *   diskless: both daemons hand the connection to their starters: the destination restarts
 *             with a page server on it, the source dumps through it (pages straight into the
 *             destination's tmpfs, the rest streamed after), and the source instance ends only
 *             once the destination runs it (else it resumes).
 * Every message to the destination is a sealed record (link.c). Every step's time is reported
 * to the client. */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "fault.h"
#include "ferryd.h"
#include "fs.h"
#include "journal.h"
#include "names.h"

/* One migration, as it goes. */
struct mig {
	struct ferryd *d;
	int sk; /* the local client */
	const char *name, *to, *mode, *addr;
	bool diskless; /* or live: the starters' session on the connection */
	bool live;
	struct ferryd_user u;
	char *id;
	struct ferryd_link peer;
	long long t0, t_conn, t_ready, rtt, t_heard; /* ferry_monotonic_ms (report.c) */
	char *src_out; /* the source starter's output (its timings) */
	struct ferryd_leaf leaf;
	bool restart_here; /* default mode: the destination did not take it */
	bool in_ckpt; /* default mode: the instance is in the checkpoint, ended here */
	char *dest_failed;
	char *dump_error;
	/* the destination's last word */
	struct ferry_msg done;
	int rr;
	bool dest_done;
	struct ferry_error *recv_err;
	/* the journal (journal.h): the record, its lock and the decision on it */
	struct ferryd_jrec rec;
	int lock;
	bool decided;
	/* what the destination must have for it (fit.c) */
	struct ferryd_fit fit;
};

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

int ferryd_connect_peer(const struct ferryd *d, const char *addr, struct ferry_xfer_keys *keys,
			struct ferry_error **err)
{
	int sk = ferryd_connect(addr, FERRYD_CONNECT_TIMEOUT, err);
	if (sk < 0)
		return sk;
	if (ferry_peer_connect(sk, d->key, d->keylen, d->cfg->peer_timeout, keys, err) < 0) {
		close(sk);
		return ferry_error_wrap(err, "ferryd at '%s'", addr);
	}
	return sk;
}

char *ferryd_new_id(void)
{
	unsigned char r[6];
	if (getentropy(r, sizeof(r)) < 0)
		memset(r, 0, sizeof(r));
	return xasprintf("%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5]);
}

/* Connects to the destination and asks it to prepare; false (the client told) when it will not. */
static bool prepare(struct mig *g)
{
	struct ferry_error *err = NULL;
	struct ferry_xfer_keys keys;
	int fd = ferryd_connect_peer(g->d, g->addr, &keys, &err);
	if (fd < 0) {
		ferryd_log(g->id, "%s", err->message);
		ferryd_send_error(g->sk, NULL, g->id, "%s; the instance was not touched", err->message);
		return false;
	}
	int r = ferryd_link_open(&g->peer, fd, &keys, false, &err);
	explicit_bzero(&keys, sizeof(keys));
	g->t_conn = ferry_monotonic_ms();
	struct ferry_msg m = {0}, reply = {0};
	ferry_msg_set(&m, "type", "prepare");
	ferry_msg_set(&m, "id", "%s", g->id);
	ferry_msg_set(&m, "uid", "%u", (unsigned)g->u.uid);
	ferry_msg_set(&m, "user", "%s", g->u.name);
	ferry_msg_set(&m, "instance", "%s", g->name);
	ferry_msg_set(&m, "mode", "%s", g->mode);
	ferry_msg_set(&m, "from", "%s", g->d->node);
	ferryd_fit_put(&m, &g->fit);
	if (r < 0 || ferryd_link_send(&g->peer, &m, &err) < 0 ||
	    ferryd_link_recv(&g->peer, g->d->cfg->peer_timeout, &reply, &err) < 0) {
		ferryd_send_error(g->sk, NULL, g->id, "%s: %s; the instance was not touched", g->to,
				  err->message);
		return false;
	}
	if (!streq(ferry_msg_get(&reply, "type") ?: "", "ready")) {
		ferryd_send_error(g->sk, NULL, g->id, "%s refused: %s; the instance was not touched", g->to,
				  ferry_msg_get(&reply, "message") ?: "no reason");
		return false;
	}
	g->t_ready = ferry_monotonic_ms();
	/* a round trip: prepare to ready, less the time the destination says it took itself */
	g->rtt = g->t_ready - g->t_conn - strtoll(ferry_msg_get(&reply, "busy_ms") ?: "0", NULL, 10);
	const char *dir = ferry_msg_get(&reply, "dir");
	if (dir && dir[0] == '/' && !strstr(dir, "/..")) {
		g->rec.peer_dir = xstrdup(dir);
		if (ferryd_journal_put(g->d, &g->rec, &err) < 0) {
			ferryd_log(g->id, "%s", err->message);
			ferry_error_free(err);
		}
	}
	if (ferryd_fault(FERRYD_SRC_PREPARE, g->id, g->peer.fd) == FERRYD_FAULT_FAIL) {
		ferryd_send_error(g->sk, NULL, g->id,
				  "%s: fault at src-prepare; the instance was not touched", g->to);
		return false;
	}
	return true;
}

/* Diskless: the starter dumps through the connection, to the destination's starter. */
static int dump_diskless(struct mig *g, struct ferry_request *dump, struct ferry_error **err)
{
	dump->page_server = xasprintf("ferryd:%s", g->to);
	if (g->live) /* post-copy: the pages stay here, served as the destination asks */
		dump->flags |= FERRY_REQ_LAZY;
	/* the dump's staging (the images other than the pages, sent after them) in a directory of
	 * this migration's, not in the instance's own checkpoint: a migrated instance's may be
	 * gone (see ferryd(8), DIRECTORIES) */
	_cleanup_free_ char *staging = xasprintf("%s-%s-out", g->name, g->id);
	if (ferryd_leaf_make(g->d->tmpfs_dir, &g->u, staging, g->id, &g->leaf, err) == 0)
		dump->checkpoint = g->leaf.path;
	else
		ferryd_log(g->id, "staging in the instance's own checkpoint: %s", (*err)->message);
	ferry_error_free(*err);
	*err = NULL;
	if (ferryd_fault(FERRYD_SRC_DUMP, g->id, g->peer.fd) == FERRYD_FAULT_FAIL) {
		free(dump->page_server);
		shutdown(g->peer.fd, SHUT_WR);
		return ferry_error_msg(err, EIO, "fault at src-dump");
	}
	/* the starter writes the decision on fd 5 before it sends the commit (journal.h) */
	struct ferryd_fault_proxy px;
	int conn = ferryd_fault_proxy_start(&px, g->peer.fd, g->lock, g->id);
	int r = ferryd_run_starter_decision(g->d, &g->u, dump, conn, g->lock, &g->src_out, err);
	if (conn != g->peer.fd)
		close(conn);
	ferryd_fault_proxy_stop(&px);
	free(dump->page_server);
	if (r < 0)
		shutdown(g->peer.fd, SHUT_WR); /* the destination's starter stops waiting */
	return r;
}

/* Default mode, once dumped (@r): the destination's starter restores, says so, and keeps its
 * copy only once we commit: if we never hear it (it or its daemon died), we restart ours and it
 * stops its own. */
static int restart_there(struct mig *g, int r, struct ferry_error **err)
{
	struct ferry_msg m = {0};
	ferry_msg_set(&m, "type", r == 0 ? "restart" : "abort");
	if (g->leaf.path)
		ferry_msg_set(&m, "dir", "%s", g->leaf.path);
	struct ferry_error *e2 = NULL;
	if (ferryd_link_send(&g->peer, &m, &e2) < 0 && r == 0)
		r = ferry_error_msg(err, e2->code, "%s: %s", g->to, e2->message);
	ferry_msg_clear(&m);
	ferry_error_free(e2);
	e2 = NULL;
	if (r < 0)
		return r;
	progress(g->sk, "restore");
	r = ferryd_link_read_verdict(&g->peer, ferry_config_verdict_wait(g->d->cfg), &e2);
	if (r == 0 && ferryd_fault(FERRYD_SRC_VERDICT, g->id, g->peer.fd) == FERRYD_FAULT_FAIL)
		r = ferry_error_msg(&e2, EIO, "fault at src-verdict");
	/* the commit point: the decision, durable, before the commit goes; from then on the
	 * instance is the destination's, whatever becomes of the commit (journal.h) */
	if (r == 0 && ferryd_fault_armed(FERRYD_SRC_COMMIT, FERRYD_FAULT_FAIL) &&
	    ferryd_fault(FERRYD_SRC_COMMIT, g->id, g->peer.fd) == FERRYD_FAULT_FAIL) /* logs it */
		r = ferry_error_msg(&e2, EIO, "fault at src-commit: the decision is not written");
	if (r == 0 && (r = ferryd_journal_decide(g->lock)) < 0)
		ferry_error_msg(&e2, -r, "write the decision in the journal");
	if (r == 0) {
		g->decided = true;
		(void)ferryd_fault(FERRYD_SRC_COMMIT, g->id, g->peer.fd);
		if (ferryd_link_send_commit(&g->peer, NULL) < 0)
			ferryd_log(g->id, "the commit did not go: %s settles it when it can", g->to);
	} else {
		/* no commit: the destination's starter learns it at once (the end of our side) and
		 * stops its copy before its daemon answers, and we restart ours only after that
		 * answer (await_done) */
		(void)shutdown(g->peer.fd, SHUT_WR);
		g->restart_here = true;
		g->dest_failed = xstrdup(e2 ? e2->message : "the destination went away");
	}
	g->t_heard = ferry_monotonic_ms(); /* it runs there (report.c) */
	ferry_error_free(e2);
	return 0;
}

/* Default mode, the dump's starter: with a byte of ours on its fd 5, which it sets once the
 * dump is published (and its guard ends the tree). A starter that dies after that (its user
 * killed it) failed nothing: the checkpoint in the shared directory is all there is of the job,
 * and goes on to the destination as if it had said so. */
static int dump_shared_run(struct mig *g, struct ferry_request *dump, struct ferry_error **err)
{
	_cleanup_close_ int note = memfd_create("ferryd-dumped", MFD_CLOEXEC),
			    none = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (note < 0 || none < 0)
		return ferry_error_set(err, errno, "prepare the dump");
	int r = ferryd_run_starter_decision(g->d, &g->u, dump, none, note, &g->src_out, err);
	char c = 0;
	if (r < 0 && pread(note, &c, 1, 0) == 1 && c == 'C') {
		ferryd_log(g->id, "its starter ended after it published the dump (%s): it goes on from there",
			   (*err)->message);
		ferry_error_free(*err);
		*err = NULL;
		r = 0;
	}
	return r;
}

/* Default mode: the starter dumps into the migration's directory of the shared directory. */
static int dump_shared(struct mig *g, struct ferry_request *dump, struct ferry_error **err)
{
	_cleanup_free_ char *leaf_name = xasprintf("%s-%s", g->name, g->id);
	int r = ferryd_leaf_make(g->d->shared_dir, &g->u, leaf_name, g->id, &g->leaf, err);
	if (r == 0)
		ferryd_log(g->id, "dumps into '%s'", g->leaf.path);
	dump->checkpoint = g->leaf.path;
	if (r == 0 && ferryd_fault(FERRYD_SRC_DUMP, g->id, g->peer.fd) == FERRYD_FAULT_FAIL)
		r = ferry_error_msg(err, EIO, "fault at src-dump");
	if (r == 0) {
		/* the destination waits for the restart message meanwhile: it hears that we dump */
		struct ferryd_keepalive k;
		ferryd_keepalive_start(&k, &g->peer);
		r = dump_shared_run(g, dump, err);
		ferryd_keepalive_stop(&k);
	}
	g->in_ckpt = r == 0;
	if (r == 0 && ferryd_fault(FERRYD_SRC_RESTART, g->id, g->peer.fd) == FERRYD_FAULT_FAIL)
		r = ferry_error_msg(err, EIO, "fault at src-restart");
	return restart_there(g, r, err);
}

/* The dump's error for the report: the starter says "the instance keeps running", the report
 * says where. */
static char *dump_error_of(const struct ferry_error *err)
{
	static const char keeps[] = "; the instance keeps running";
	char *e = xstrdup(err->message);
	size_t n = strlen(e);
	if (n > strlen(keeps) && streq(e + n - strlen(keeps), keeps))
		e[n - strlen(keeps)] = '\0';
	return e;
}

/* The destination's report (diskless: the destination's starter said why it failed inside the
 * session, and our starter's message carries it; nothing of the session is left on the
 * connection). Returns whether the migration succeeded. */
static bool await_done(struct mig *g, int r)
{
	/* after a failed dump the destination has nothing left to do: do not wait long for it */
	unsigned wait = r < 0 && !g->decided ? 10 : ferry_config_verdict_wait(g->d->cfg);
	if (ferryd_fault(FERRYD_SRC_DONE, g->id, g->peer.fd) == FERRYD_FAULT_FAIL)
		g->rr = ferry_error_msg(&g->recv_err, EIO, "fault at src-done");
	else
		g->rr = ferryd_link_recv(&g->peer, wait, &g->done, &g->recv_err);
	g->dest_done = g->rr == 0 && streq(ferry_msg_get(&g->done, "type") ?: "", "done");
	/* the decision is the outcome: once it is written the instance is the destination's (the
	 * source's dumped tree ends), even if the destination's daemon went away before it could
	 * report, or the commit was lost on the way (the destination then lets its frozen copy run
	 * on, or, default mode, restarts it from the shared checkpoint, once the two daemons settle
	 * the migration: reconcile.c) */
	return g->decided;
}

/* The report's times of a migration that went through: all from this node's monotonic clock
 * and the destination's own durations (report.c), never the two nodes' clocks subtracted. */
static void report_ok(struct mig *g, struct ferry_msg *rep, long long t_end)
{
	const char *out = g->src_out;
	struct ferryd_times t = {
	    .diskless = g->diskless,
	    .live = g->live,
	    .dest_reported = g->dest_done,
	    .t0 = g->t0,
	    .t_conn = g->t_conn,
	    .t_ready = g->t_ready,
	    .t_end = t_end,
	    .freeze = ferryd_timing(out, "freeze"),
	    .dumped = ferryd_timing(out, "dumped"),
	    .sdone = ferryd_timing(out, "done"),
	    .rtt = g->rtt,
	    .d_restore_ms = strtoll(ferry_msg_get(&g->done, "restore_ms") ?: "0", NULL, 10),
	    .d_postcopy_ms = strtoll(ferry_msg_get(&g->done, "postcopy_ms") ?: "0", NULL, 10),
	};
	/* diskless: the source starter heard "restored" (and committed) at its "done" */
	t.t_heard = g->diskless ? t.sdone : g->t_heard;
	struct ferryd_phases p;
	ferryd_phases_of(&t, &p);
	if (!g->dest_done && g->diskless) {
		/* live, and diskless (whose restore used the received checkpoint up): the copy
		 * there is the only one */
		ferry_msg_set(rep, "note",
			      "%s did not confirm: times end at the source. '%s' had every page there; if "
			      "the commit did not reach it, it waits there frozen, and %s's ferryd lets it "
			      "run on once it reaches %s again",
			      g->to, g->name, g->to, g->d->node);
	} else if (!g->dest_done) {
		_cleanup_free_ char *copy = xstrdup(g->leaf.path ? g->leaf.path : "?");
		ferry_msg_set(
		    rep, "note",
		    "%s did not confirm: times end at the source. If '%s' does not run there, its "
		    "ferryd restarts it from the checkpoint '%s' once it reaches %s again; or, on %s: "
		    "ferry instance start --criu-restart %s",
		    g->to, g->name, copy, g->d->node, g->to, copy);
	}
	ferry_msg_set(rep, "request_ms", "%lld", p.request);
	ferry_msg_set(rep, "prepare_ms", "%lld", p.prepare);
	ferry_msg_set(rep, "dump_ms", "%lld", p.dump);
	if (g->diskless)
		ferry_msg_set(rep, "transfer_ms", "%lld", p.transfer);
	else
		ferry_msg_set(rep, "sync_ms", "%lld", p.sync);
	ferry_msg_set(rep, "restore_ms", "%lld", p.restore);
	ferry_msg_set(rep, "total_ms", "%lld", p.total);
	ferry_msg_set(rep, "downtime_ms", "%lld", p.downtime);
	if (g->live) {
		ferry_msg_set(rep, "postcopy_ms", "%lld", p.postcopy);
		ferry_msg_set(rep, "pages_demand", "%s", ferry_msg_get(&g->done, "pages_demand") ?: "0");
		ferry_msg_set(rep, "pages_pushed", "%s", ferry_msg_get(&g->done, "pages_pushed") ?: "0");
	}
	ferry_msg_set(rep, "bytes", "%s", ferry_msg_get(&g->done, "bytes") ?: "0");
	long long pages_plain = ferryd_timing(out, "pages_plain");
	if (pages_plain > 0) { /* the pages went through the relays */
		ferry_msg_set(rep, "pages_bytes", "%lld", pages_plain);
		ferry_msg_set(rep, "pages_sent", "%lld", ferryd_timing(out, "pages_sent"));
	}
	ferryd_log(g->id, "'%s' now runs on %s (downtime %lld ms)", g->name, g->to, p.downtime);
}

/* Where the instance runs after a failure: dumped (and ended here), it is brought back from the
 * same checkpoint. */
static char *bring_back(struct mig *g)
{
	if (!g->in_ckpt)
		return xasprintf("; the instance keeps running on %s", g->d->node);
	struct ferry_request restart = {.op = FERRY_OP_INSTANCE_START,
					.flags = FERRY_REQ_CRIU_RESTART | FERRY_REQ_MIGRATED,
					.checkpoint = g->leaf.path};
	_cleanup_free_ char *out = NULL;
	struct ferry_error *e3 = NULL;
	char *back;
	if (ferryd_run_starter(g->d, &g->u, &restart, -1, &out, &e3) == 0)
		back = xasprintf("; the instance runs again on %s", g->d->node);
	else
		back = xasprintf("; restarting it on %s failed too: %s (its checkpoint is '%s')", g->d->node,
				 e3->message, g->leaf.path);
	ferry_error_free(e3);
	return back;
}

static void report_failed(struct mig *g, struct ferry_msg *rep)
{
	/* the destination's own reason, when it gave one, says most (e.g. its tmpfs is full) */
	const char *dest_why = g->rr == 0 && !g->dest_done ? ferry_msg_get(&g->done, "message") : NULL;
	_cleanup_free_ char *both =
	    dest_why && g->dump_error ? xasprintf("%s (here: %s)", dest_why, g->dump_error) : NULL;
	const char *why = both		   ? both
			  : g->dest_failed ? g->dest_failed
			  : dest_why	   ? dest_why
			  : g->dump_error  ? g->dump_error
			  : g->rr < 0	   ? g->recv_err->message
					   : "the destination failed";
	_cleanup_free_ char *back = bring_back(g);
	ferry_msg_set(rep, "message", "migration of '%s' to %s failed: %s%s", g->name, g->to, why, back);
	ferryd_log(g->id, "failed: %s%s", why, back);
}

/* The migration's record, before anything is touched; false (the client told) if it cannot be. */
static bool journal_begin(struct mig *g)
{
	struct ferry_error *err = NULL;
	g->rec =
	    (struct ferryd_jrec){.source = true, .diskless = g->diskless, .live = g->live, .uid = g->u.uid};
	memcpy(g->rec.id, g->id, 13);
	g->rec.user = xstrdup(g->u.name);
	g->rec.instance = xstrdup(g->name);
	g->rec.peer = xstrdup(g->to);
	g->rec.begun = (long long)time(NULL);
	int r = ferryd_fault(FERRYD_SRC_JOURNAL, g->id, -1) == FERRYD_FAULT_FAIL
		    ? ferry_error_msg(&err, EIO, "fault at src-journal")
		    : ferryd_journal_begin(g->d, &g->rec, &g->lock, &err);
	if (r < 0) {
		ferryd_log(g->id, "%s", err->message);
		ferryd_send_error(g->sk, NULL, g->id, "%s; the instance was not touched", err->message);
		ferry_error_free(err);
		return false;
	}
	return true;
}

/* The end: settled (the record goes) once the destination reported; decided but unconfirmed,
 * the record says so and the reconciler settles it with the destination, which meanwhile may
 * need the checkpoint of the shared directory (kept). */
static void settle(struct mig *g, bool ok)
{
	struct ferry_error *err = NULL;
	(void)ferryd_fault(FERRYD_SRC_SETTLE, g->id, -1);
	if (g->decided && !g->dest_done) {
		g->rec.state = FERRYD_J_COMMITTED;
		if (ferryd_journal_put(g->d, &g->rec, &err) < 0) {
			ferryd_log(g->id, "%s", err->message);
			ferry_error_free(err);
		}
		ferryd_log(g->id, "committed, not yet confirmed by %s: kept until it is", g->to);
		if (g->diskless) /* the staging: nothing the destination needs */
			ferryd_leaf_remove(g->d, &g->u, &g->leaf, g->id);
		ferryd_leaf_close(&g->leaf);
		return;
	}
	/* The migration's directory goes, unless the instance was dumped there and did not move:
	 * it then runs here again from it (its record names it), or that checkpoint is all that
	 * is left of it. */
	bool gone = !(ok || !g->in_ckpt) || ferryd_leaf_remove_all(g->d, &g->u, &g->leaf, g->id);
	ferryd_leaf_close(&g->leaf);
	if (gone)
		return ferryd_journal_drop(g->d, g->id);
	g->rec.state = g->decided ? FERRYD_J_COMMITTED : FERRYD_J_ABORTED;
	if (ferryd_journal_put(g->d, &g->rec, &err) < 0) {
		ferryd_log(g->id, "%s", err->message);
		ferry_error_free(err);
	}
}

/* After the request was accepted: the migration and its report. */
static void migrate(struct mig *g)
{
	progress(g->sk, "request");
	if (ferryd_fault(FERRYD_SRC_REQUEST, g->id, -1) == FERRYD_FAULT_FAIL)
		return ferryd_send_error(g->sk, NULL, g->id,
					 "fault at src-request; the instance was not touched");
	/* what the destination must have, asked of it before anything stops */
	struct ferry_error *perr = NULL;
	if (ferryd_fit_probe(g->d, &g->u, g->name, &g->fit, &perr) < 0 ||
	    (g->live && ferryd_fit_live_source(g->d, &g->fit, &perr) < 0)) {
		ferryd_log(g->id, "%s", perr->message);
		ferryd_send_error(g->sk, NULL, g->id, "%s", perr->message);
		ferry_error_free(perr);
		return;
	}
	if (!journal_begin(g))
		return;
	if (!prepare(g)) {
		ferryd_journal_drop(g->d, g->id);
		return;
	}
	progress(g->sk, g->diskless ? "dump and transfer" : "dump and sync");
	struct ferry_error *err = NULL;
	struct ferry_request dump = {
	    .op = FERRY_OP_CHECKPOINT_DUMP, .flags = FERRY_REQ_TIMINGS, .instance = (char *)g->name};
	int r = g->diskless ? dump_diskless(g, &dump, &err) : dump_shared(g, &dump, &err);
	/* diskless: the starter wrote it (fd 5) before its commit; it may have died after */
	g->decided = g->decided || ferryd_journal_decided(g->lock);
	if (r < 0 && err)
		g->dump_error = dump_error_of(err);
	ferry_error_free(err);
	bool ok = await_done(g, r);
	long long t_end = ferry_monotonic_ms();
	struct ferry_msg rep = {0};
	ferry_msg_set(&rep, "type", "report");
	ferry_msg_set(&rep, "id", "%s", g->id);
	ferry_msg_set(&rep, "ok", "%d", ok);
	ferry_msg_set(&rep, "instance", "%s", g->name);
	ferry_msg_set(&rep, "from", "%s", g->d->node);
	ferry_msg_set(&rep, "to", "%s", g->to);
	ferry_msg_set(&rep, "mode", "%s", g->mode);
	if (ok)
		report_ok(g, &rep, t_end);
	else
		report_failed(g, &rep);
	(void)ferry_msg_send(g->sk, &rep, NULL);
	ferry_msg_clear(&rep);
	settle(g, ok);
}

void ferryd_handle_client(struct ferryd *d, int sk)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	struct ferry_error *err = NULL;
	if (getsockopt(sk, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0)
		return;
	struct mig g = {.d = d, .sk = sk, .leaf = {.uidfd = -1}, .peer = {.fd = -1}, .lock = -1};
	/* the only identity ferryd acts for: the kernel's word for who is on the socket */
	if (ferryd_user_lookup(cred.uid, &g.u, &err) < 0)
		return ferryd_send_error(sk, NULL, NULL, "%s", err->message);
	/* the request itself is read and parsed by a process that is that user for good (ask.c) */
	_cleanup_free_ struct ferryd_ask *ask = xzalloc(sizeof(*ask)); /* (a start's request: 40 KiB) */
	if (ferryd_ask_fetch(d, sk, &g.u, ask, &g.addr) < 0)
		return;
	if (ask->kind == FERRYD_ASK_HOLD)
		return ferryd_hold_client(d, sk, &g.u, ask, g.addr);
	if (ask->kind == FERRYD_ASK_START)
		return ferryd_start_client(d, sk, &g.u, ask, g.addr);
	if (ask->kind == FERRYD_ASK_PEERS) {
		struct ferry_msg m = {0};
		_cleanup_free_ char *peers = xstrdup("");
		for (size_t i = 0; i < d->n_peers; i++) {
			char *p = xasprintf("%s%s%s", peers, i ? " " : "", d->peers[i].name);
			free(peers);
			peers = p;
		}
		ferry_msg_set(&m, "type", "peers");
		ferry_msg_set(&m, "node", "%s", d->node);
		ferry_msg_set(&m, "peers", "%s", peers);
		(void)ferry_msg_send(sk, &m, &err);
		ferry_error_free(err);
		ferry_msg_clear(&m);
		return;
	}
	g.t0 = ferry_monotonic_ms();
	g.name = ask->instance;
	g.to = ask->to;
	g.diskless = ask->mode != FERRYD_MODE_DEFAULT;
	g.live = ask->mode == FERRYD_MODE_LIVE;
	g.mode = ferryd_mode_name(ask->mode);
	g.id = ferryd_new_id();
	ferryd_log(g.id, "%s asks to move '%s' to %s (%s)", g.u.name, g.name, g.to, g.mode);
	migrate(&g);
	ferryd_link_close(&g.peer);
	if (g.lock >= 0)
		close(g.lock);
	ferryd_jrec_clear(&g.rec);
	free(g.id);
}
