/* SPDX-License-Identifier: GPL-2.0-or-later */
/* receive.c — the destination of a migration: a peer that proved the cluster key asks it to
 * take an instance (docs/protocol.md). Every message comes and goes as a sealed record
 * (link.c); in diskless mode the starters' own session runs on the connection in between. */
#include <sys/socket.h>

#include "fault.h"
#include "ferryd.h"
#include "fs.h"
#include "journal.h"
#include "names.h"

/* How a restart here ended: done (committed), nothing here (aborted, or it never ran), or in
 * doubt: it may have restored and the commit never came (the starter said so, or it was killed
 * or timed out): the copy is kept until the source settles it (reconcile.c). */
enum outcome { RECV_DONE, RECV_NONE, RECV_INDOUBT };

static bool in_doubt(const struct ferry_error *err)
{
	const char *m = err ? err->message : "";
	return strstr(m, "never confirmed the move") || strstr(m, "was killed by signal") ||
	       strstr(m, "timed out");
}

/* The prepare message, checked (its user in *@u); false (and the peer told) when it is not one. */
static bool prepare_ok(const struct ferryd *d, struct ferryd_link *l, const struct ferry_msg *m,
		       struct ferryd_user *u)
{
	const char *type = ferry_msg_get(m, "type"), *id = ferry_msg_get(m, "id"),
		   *name = ferry_msg_get(m, "instance"), *mode = ferry_msg_get(m, "mode");
	if (!type || !streq(type, "prepare") || !name || ferry_name_check(name, "instance", NULL) < 0 ||
	    !mode || ferryd_mode_of(mode) < 0) {
		ferryd_send_error(-1, l, id, "bad prepare message");
		return false;
	}
	return ferryd_peer_user(d, l, m, "prepare", u) == 0;
}

/* The restart message of a default-mode migration: only a directory of this user in the shared
 * directory (a peer names no other path). NULL when the source aborted or sent anything else
 * (it is then told). */
static const char *restart_dir(const struct ferryd *d, struct ferryd_link *l, const struct ferry_msg *next,
			       const struct ferryd_user *u, const char *id)
{
	const char *type = ferry_msg_get(next, "type") ?: "", *ndir = ferry_msg_get(next, "dir");
	if (streq(type, "abort"))
		return NULL;
	_cleanup_free_ char *prefix = xasprintf("%s/%u/", d->shared_dir, (unsigned)u->uid);
	if (!streq(type, "restart") || !ndir || !startswith(ndir, prefix) || strstr(ndir, "/..") ||
	    strchr(ndir + strlen(prefix), '/')) {
		ferryd_send_error(-1, l, id, "bad restart message");
		return NULL;
	}
	return ndir;
}

/* Default mode: the restart from the shared directory, the starter's verdict and the source's
 * commit relayed in records. 1 when there is nothing to restart (told or aborted). */
static int restart_shared(struct ferryd *d, struct ferryd_link *l, struct ferry_request *restart,
			  const struct ferryd_user *u, const char *id, char **ret_dir, char **ret_out,
			  struct ferry_error **err)
{
	struct ferry_msg next = {0};
	if (ferryd_link_recv(l, ferry_config_verdict_wait(d->cfg), &next, err) < 0)
		return 1;
	const char *ndir = restart_dir(d, l, &next, u, id);
	if (!ndir) {
		ferry_msg_clear(&next);
		return 1;
	}
	restart->checkpoint = (char *)ndir;
	restart->flags |= FERRY_REQ_COMMIT;
	*ret_dir = xstrdup(ndir);
	struct ferryd_ctl ctl;
	int starter_end = -1;
	int r = ferryd_ctl_start(&ctl, l, d->cfg->peer_timeout, &starter_end, err);
	if (r == 0) {
		r = ferryd_run_starter(d, u, restart, starter_end, ret_out, err);
		close(starter_end);
		ferryd_ctl_stop(&ctl);
	}
	ferry_msg_clear(&next);
	return r;
}

/* The restart, once the destination is ready; @leaf: the diskless copy's directory; the
 * default mode's in *ret_dir. */
static enum outcome receive(struct ferryd *d, struct ferryd_link *l, const struct ferry_msg *m,
			    const struct ferryd_user *u, const struct ferryd_leaf *leaf, long long t_prepare,
			    char **ret_dir)
{
	struct ferry_error *err = NULL;
	const char *id = ferry_msg_get(m, "id"), *name = ferry_msg_get(m, "instance");
	int mode = ferryd_mode_of(ferry_msg_get(m, "mode"));
	bool diskless = mode != FERRYD_MODE_DEFAULT;
	struct ferry_msg ready = {0};
	ferry_msg_set(&ready, "type", "ready");
	if (leaf->path) /* where the copy lands (the source's record keeps it) */
		ferry_msg_set(&ready, "dir", "%s", leaf->path);
	/* how long we took: the source measures a round trip without it (report.c) */
	ferry_msg_set(&ready, "busy_ms", "%lld", ferry_monotonic_ms() - t_prepare);
	int sent = ferryd_link_send(l, &ready, &err);
	ferry_msg_clear(&ready);
	if (sent < 0 || ferryd_fault(FERRYD_DST_READY, id, l->fd) == FERRYD_FAULT_FAIL)
		return RECV_NONE;
	struct ferry_request restart = {.op = FERRY_OP_INSTANCE_START,
					.flags =
					    FERRY_REQ_CRIU_RESTART | FERRY_REQ_TIMINGS | FERRY_REQ_MIGRATED,
					.instance = (char *)name};
	int r;
	_cleanup_free_ char *out = NULL;
	if (ferryd_fault(FERRYD_DST_RESTORE, id, l->fd) == FERRYD_FAULT_FAIL) {
		ferryd_send_error(-1, l, id, "fault at dst-restore");
		return RECV_NONE;
	}
	if (diskless) {
		/* the starter's session on the connection itself, between our records */
		restart.checkpoint = leaf->path;
		restart.page_server = xasprintf("ferryd:%s", ferry_msg_get(m, "from") ?: "peer");
		if (mode == FERRYD_MODE_LIVE) /* post-copy: the pages come after the restore */
			restart.flags |= FERRY_REQ_LAZY;
		r = ferryd_run_starter(d, u, &restart, l->fd, &out, &err);
		free(restart.page_server);
	} else if ((r = restart_shared(d, l, &restart, u, id, ret_dir, &out, &err)) > 0) {
		return RECV_NONE;
	}
	if (r < 0) {
		ferryd_log(id, "restart failed: %s", err->message);
		enum outcome o = in_doubt(err) ? RECV_INDOUBT : RECV_NONE;
		ferryd_send_error(-1, l, id, "%s", err->message);
		ferry_error_free(err);
		return o;
	}
	struct ferry_msg done = {0};
	ferry_msg_set(&done, "type", "done");
	/* a duration on our clock, never an instant: the nodes' clocks are not compared */
	ferry_msg_set(&done, "restore_ms", "%lld",
		      ferryd_timing(out, "restored") - ferryd_timing(out, diskless ? "received" : "start"));
	long long lazy_bytes = 0; /* live: the pages served to the restored tree */
	if (mode == FERRYD_MODE_LIVE) {
		long long faults = ferryd_timing(out, "faults"), lazy = ferryd_timing(out, "lazy");
		ferry_msg_set(&done, "postcopy_ms", "%lld",
			      ferryd_timing(out, "allin") - ferryd_timing(out, "restored"));
		ferry_msg_set(&done, "pages_demand", "%lld", faults);
		ferry_msg_set(&done, "pages_pushed", "%lld", lazy > faults ? lazy - faults : 0);
		lazy_bytes = lazy * 4096;
	}
	ferry_msg_set(&done, "bytes", "%lld", ferryd_timing(out, "bytes") + lazy_bytes);
	ferryd_log(id, "'%s' runs here", name);
	if (ferryd_fault(FERRYD_DST_DONE, id, l->fd) != FERRYD_FAULT_FAIL)
		(void)ferryd_link_send(l, &done, &err);
	ferry_msg_clear(&done);
	ferry_error_free(err);
	return RECV_DONE;
}

/* The destination's record of the migration, before it says ready; false (the peer told, the
 * leaf removed) when it cannot be written. */
static bool journal_begin(struct ferryd *d, struct ferryd_link *l, const struct ferry_msg *m,
			  const struct ferryd_user *u, struct ferryd_jrec *rec, int *ret_lock,
			  struct ferryd_leaf *leaf)
{
	struct ferry_error *err = NULL;
	const char *id = ferry_msg_get(m, "id"), *from = ferry_msg_get(m, "from");
	memcpy(rec->id, id, 13);
	rec->user = xstrdup(u->name);
	rec->instance = xstrdup(ferry_msg_get(m, "instance"));
	rec->peer = xstrdup(from && ferry_name_check(from, NULL, NULL) == 0 ? from : "unknown");
	rec->begun = (long long)time(NULL);
	int r = ferryd_journal_begin(d, rec, ret_lock, &err);
	if (r == 0 && ferryd_fault(FERRYD_DST_PREPARE, id, l->fd) == FERRYD_FAULT_FAIL) {
		r = ferry_error_msg(&err, EIO, "fault at dst-prepare");
		ferryd_journal_drop(d, id);
	}
	if (r == 0)
		return true;
	ferryd_log(id, "%s", err->message);
	ferryd_send_error(-1, l, id, "%s", err->message);
	ferry_error_free(err);
	ferryd_leaf_remove(d, u, leaf, id);
	ferryd_jrec_clear(rec);
	return false;
}

/* A status, start or hold message answered (reconcile.c, start.c, hold.c); false for any other. */
static bool serve_other(struct ferryd *d, struct ferryd_link *l, struct ferry_msg *m)
{
	const char *type = ferry_msg_get(m, "type") ?: "";
	if (streq(type, "status"))
		ferryd_reconcile_answer(d, l, m);
	else if (streq(type, "start"))
		ferryd_start_serve(d, l, m);
	else if (streq(type, "hold"))
		ferryd_hold_serve(d, l, m);
	else
		return false;
	ferry_msg_clear(m);
	return true;
}

/* Nothing of the instance has stopped yet: whatever would make the restart here fail is said now
 * (fit.c). False (the peer told) when it would not fit. */
static bool fits(struct ferryd *d, struct ferryd_link *l, const struct ferry_msg *m,
		 const struct ferryd_user *u, enum ferryd_mode md)
{
	struct ferry_error *err = NULL;
	const char *id = ferry_msg_get(m, "id"), *name = ferry_msg_get(m, "instance");
	struct ferryd_fit fit;
	if (ferryd_fit_get(m, &fit, &err) < 0 || ferryd_fit_check(d, u, md, &fit, &err) < 0) {
		ferryd_log(id, "refused '%s' of %s: %s", name, u->name, err->message);
		ferryd_send_error(-1, l, id, "%s", err->message);
		ferry_error_free(err);
		return false;
	}
	return true;
}

/* In doubt: kept, the copy (live and diskless: the restored one, frozen; default: the source
 * keeps the shared checkpoint) and the record, until the source says how the migration ended. */
static void keep_in_doubt(struct ferryd *d, struct ferryd_jrec *rec, struct ferryd_leaf *leaf,
			  const char *ddir, const char *id, const char *name)
{
	struct ferry_error *err = NULL;
	rec->state = FERRYD_J_INDOUBT;
	if (ferryd_journal_put(d, rec, &err) < 0)
		ferryd_log(id, "%s", err->message);
	const char *where = leaf->path ? leaf->path : ddir ? ddir : "?";
	if (rec->diskless) /* live, or its restore used the received checkpoint up */
		ferryd_log(id,
			   "in doubt: '%s' was restored here but %s never confirmed the move; if it "
			   "has every page it is frozen here until %s settles it (no checkpoint holds "
			   "its memory: %s mode)",
			   name, rec->peer, rec->peer, rec->live ? "live" : "diskless");
	else
		ferryd_log(
		    id,
		    "in doubt: '%s' was restored here but %s never confirmed the move; its last complete "
		    "checkpoint '%s' is kept until %s settles it (if %s stays unreachable and '%s' does "
		    "not run there: ferry instance start --criu-restart %s)",
		    name, rec->peer, where, rec->peer, rec->peer, name, where);
	ferryd_leaf_close(leaf);
	ferryd_jrec_clear(rec);
}

static void serve(struct ferryd *d, struct ferryd_link *l)
{
	struct ferry_error *err = NULL;
	struct ferry_msg m = {0};
	if (ferryd_link_recv(l, d->cfg->peer_timeout, &m, &err) < 0)
		return ferryd_send_error(-1, l, NULL, "%s", err->message);
	if (serve_other(d, l, &m))
		return;
	long long t_prepare = ferry_monotonic_ms();
	struct ferryd_user u = {0};
	if (!prepare_ok(d, l, &m, &u))
		return;
	const char *id = ferry_msg_get(&m, "id"), *name = ferry_msg_get(&m, "instance");
	const char *mode = ferry_msg_get(&m, "mode");
	enum ferryd_mode md = (enum ferryd_mode)ferryd_mode_of(mode);
	if (!fits(d, l, &m, &u, md))
		return;
	ferryd_log(id, "receiving '%s' of %s from %s (%s)", name, u.name, ferry_msg_get(&m, "from") ?: "?",
		   mode);
	struct ferryd_leaf leaf = {.uidfd = -1};
	if (md != FERRYD_MODE_DEFAULT) {
		_cleanup_free_ char *leaf_name = xasprintf("%s-%s", name, id);
		if (ferryd_leaf_make(d->tmpfs_dir, &u, leaf_name, id, &leaf, &err) < 0) {
			ferryd_log(id, "%s", err->message);
			return ferryd_send_error(-1, l, id, "%s", err->message);
		}
	}
	struct ferryd_jrec rec = {.diskless = md != FERRYD_MODE_DEFAULT,
				  .live = md == FERRYD_MODE_LIVE,
				  .uid = u.uid,
				  .state = FERRYD_J_PREPARED};
	_cleanup_close_ int lock = -1;
	if (!journal_begin(d, l, &m, &u, &rec, &lock, &leaf))
		return;
	_cleanup_free_ char *ddir = NULL;
	enum outcome o = receive(d, l, &m, &u, &leaf, t_prepare, &ddir);
	if (o == RECV_INDOUBT)
		return keep_in_doubt(d, &rec, &leaf, ddir, id, name);
	(void)ferryd_fault(FERRYD_DST_SETTLE, id, -1);
	/* diskless: the instance was restored from the tmpfs copy (or was not): it is not needed
	 * any more, and takes as much memory as the instance */
	if (ferryd_leaf_remove_all(d, &u, &leaf, id))
		ferryd_journal_drop(d, id); /* else the reconciler removes the rest, and the record */
	ferryd_jrec_clear(&rec);
}

void ferryd_handle_peer(struct ferryd *d, int sk, const struct ferry_xfer_keys *keys)
{
	/* the peer proved the cluster key in the main loop (loop.c) before this process was forked;
	 * from here on, every byte of ours is in a record under the keys of that handshake */
	struct ferryd_link l;
	struct ferry_error *err = NULL;
	if (ferryd_link_open(&l, sk, keys, true, &err) < 0) {
		ferryd_log(NULL, "%s", err->message);
		ferry_error_free(err);
		return;
	}
	serve(d, &l);
	ferryd_link_close(&l);
}
