/* SPDX-License-Identifier: GPL-2.0-or-later */
/* reconcile.c — settling the migrations nobody works on any more (journal.h).
 *
 * A migration's record outlives its handler when the handler died, or when the commit's fate
 * was not known at its end (the source decided but the destination never confirmed; the
 * destination restored but the commit never came). The reconciler, a process of ferryd's, looks
 * at start and every FERRYD_RECONCILE_S at every record whose lock is free, and asks the peer
 * over the authenticated link (type=status id=ID from=NODE; the answer type=status state=...):
 *
 *   source, decided (committed): the instance is the destination's. Once the destination has no
 *     record of it (it runs there), the checkpoint kept in the shared directory and the record go.
 *   source, undecided: the decision is now "aborted" (written before it is told to anyone, so
 *     that no later answer differs); the dumped tree was resumed by the starter's guard, or, in
 *     default mode, the instance is restarted here from its checkpoint once the destination
 *     says it has none running (and the checkpoint is kept when it runs from it).
 *   destination, in doubt: the source's answer decides. Committed: the copy restored here runs
 *     on (live and diskless: it waits frozen, and is thawed; no checkpoint holds its memory), or
 *     the instance is restarted here from the checkpoint (default mode: the shared one), then
 *     the migration's directory and the record go. Aborted, or no record there: the copy is
 *     stopped, and the directory and the record go.
 *   either, the peer unreachable: nothing changes; the log says where the instance is: default
 *     mode, where the last complete checkpoint is and how to restart from it by hand; diskless
 *     and live, that the destination's copy waits until the two nodes settle the move.
 * A "pending" answer (the peer still works on it) waits for the next pass. A user whose records
 * took PASS_BUDGET_S in a pass, in all, waits for the others (reconcile_pass). */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "ferryd.h"
#include "fs.h"
#include "instance.h"
#include "journal.h"
#include "names.h"

#define ASK_TIMEOUT 5 /* seconds to connect to the peer and for its answer */
#define PASS_BUDGET_S 10 /* a user whose records took longer in a pass: see reconcile_pass */

static const char *peer_addr(const struct ferryd *d, const char *name)
{
	for (size_t i = 0; i < d->n_peers; i++)
		if (streq(d->peers[i].name, name))
			return d->peers[i].addr;
	return NULL;
}

/* The peer's state of the migration @r ("none", "pending", a journal state), or NULL (@err)
 * when it cannot be asked. */
static char *ask_peer(struct ferryd *d, const struct ferryd_jrec *r, struct ferry_error **err)
{
	const char *addr = peer_addr(d, r->peer);
	if (!addr)
		return ferry_error_msg(err, ENOENT, "'%s' is no peer of this node", r->peer), NULL;
	int sk = ferryd_connect(addr, ASK_TIMEOUT, err);
	if (sk < 0)
		return NULL;
	struct ferry_xfer_keys keys;
	struct ferryd_link l = {.fd = -1};
	struct ferry_msg q = {0}, a = {0};
	char *state = NULL;
	int ret = ferry_peer_connect(sk, d->key, d->keylen, ASK_TIMEOUT, &keys, err);
	if (ret == 0)
		ret = ferryd_link_open(&l, sk, &keys, false, err);
	explicit_bzero(&keys, sizeof(keys));
	ferry_msg_set(&q, "type", "status");
	ferry_msg_set(&q, "id", "%s", r->id);
	ferry_msg_set(&q, "from", "%s", d->node);
	if (ret == 0 && (ret = ferryd_link_send(&l, &q, err)) == 0 &&
	    (ret = ferryd_link_recv(&l, ASK_TIMEOUT, &a, err)) == 0) {
		const char *s = ferry_msg_get(&a, "state");
		if (streq(ferry_msg_get(&a, "type") ?: "", "status") && s && strlen(s) < 16)
			state = xstrdup(s);
		else
			ferry_error_msg(err, EPROTO, "%s",
					ferry_msg_get(&a, "message") ?: "bad status answer");
	}
	if (l.buf)
		ferryd_link_close(&l);
	close(sk);
	ferry_msg_clear(&q);
	ferry_msg_clear(&a);
	return state;
}

void ferryd_reconcile_answer(struct ferryd *d, struct ferryd_link *l, const struct ferry_msg *m)
{
	struct ferry_error *err = NULL;
	const char *id = ferry_msg_get(m, "id"), *from = ferry_msg_get(m, "from");
	struct ferryd_jrec r = {0};
	if (!ferryd_id_ok(id) || !from)
		return ferryd_send_error(-1, l, NULL, "bad status message");
	int ret = ferryd_journal_get(d, id, &r, &err);
	const char *state = "none";
	_cleanup_close_ int lock = -1;
	if (ret == 0 && !streq(r.peer, from)) {
		ferryd_jrec_clear(&r);
		return ferryd_send_error(-1, l, id, "migration %s is not one with %s", id, from);
	}
	if (ret == 0) {
		lock = ferryd_journal_trylock(d, id);
		state = lock < 0 ? "pending" : ferryd_jstate_name(r.state);
	}
	if (ret == 0 && lock >= 0 && r.source && r.state == FERRYD_J_PREPARED) {
		/* nobody works on it: the decision is what is written, and stays so once told */
		r.state = ferryd_journal_decided(lock) ? FERRYD_J_COMMITTED : FERRYD_J_ABORTED;
		if (ferryd_journal_put(d, &r, &err) < 0)
			state = "pending";
		else
			state = ferryd_jstate_name(r.state);
	}
	if (ret < 0 && ret != -ENOENT) {
		ferryd_log(id, "%s", err->message);
		state = "pending";
	}
	ferry_error_free(err);
	err = NULL;
	ferryd_log(id, "status asked by %s: %s", from, state);
	struct ferry_msg a = {0};
	ferry_msg_set(&a, "type", "status");
	ferry_msg_set(&a, "id", "%s", id);
	ferry_msg_set(&a, "state", "%s", state);
	(void)ferryd_link_send(l, &a, &err);
	ferry_error_free(err);
	ferry_msg_clear(&a);
	ferryd_jrec_clear(&r);
}

/* The migration's own directory on this side, for ferryd_leaf_remove. */
static int reopen_leaf(struct ferryd *d, const struct ferryd_user *u, const struct ferryd_jrec *r,
		       struct ferryd_leaf *ret, struct ferry_error **err)
{
	_cleanup_free_ char *leaf = ferryd_jrec_leaf(r);
	return ferryd_leaf_open(r->diskless ? d->tmpfs_dir : d->shared_dir, u, leaf, r->id, ret, err);
}

/* The migration's directory removed: 0, or -1 when what its user left in it took longer than
 * FERRYD_EMPTY_S (the record stays: the next pass goes on with the rest). */
static int remove_dir(struct ferryd *d, const struct ferryd_user *u, const struct ferryd_jrec *r)
{
	struct ferryd_leaf leaf = {.uidfd = -1};
	struct ferry_error *err = NULL;
	int ret = 0;
	if (reopen_leaf(d, u, r, &leaf, &err) == 0)
		ret = ferryd_leaf_remove(d, u, &leaf, r->id) == -ETIMEDOUT ? -1 : 0;
	else if (err->code != ENOENT)
		ferryd_log(r->id, "%s", err->message);
	ferry_error_free(err);
	ferryd_leaf_close(&leaf);
	return ret;
}

/* The instance runs here, restarted from @dir if it did not: 1 restarted, 0 it ran already,
 * -1 (logged) the restart failed. */
static int ensure_runs(struct ferryd *d, const struct ferryd_user *u, const struct ferryd_jrec *r,
		       const char *dir)
{
	struct ferry_request restart = {.op = FERRY_OP_INSTANCE_START,
					.flags = FERRY_REQ_CRIU_RESTART | FERRY_REQ_MIGRATED,
					.instance = r->instance,
					.checkpoint = (char *)dir};
	_cleanup_free_ char *out = NULL;
	struct ferry_error *err = NULL;
	int ret = ferryd_run_starter(d, u, &restart, -1, &out, &err);
	if (ret == 0) {
		ferryd_log(r->id, "'%s' of %s restarted here from '%s'", r->instance, r->user, dir);
		return 1;
	}
	ret = strstr(err->message, "already exists") ? 0 : -1;
	if (ret < 0)
		ferryd_log(r->id,
			   "restart of '%s' from '%s' failed: %s (ferry instance start --criu-restart %s)",
			   r->instance, dir, err->message, dir);
	ferry_error_free(err);
	return ret;
}

/* Logs once per process and migration that the peer cannot be reached, with where the job is. */
static void log_unreachable(const struct ferryd_jrec *r, const char *dir, const struct ferry_error *err)
{
	static char logged[FERRYD_JOURNAL_MAX][13];
	static size_t n;
	for (size_t i = 0; i < n; i++)
		if (streq(logged[i], r->id))
			return;
	if (n < FERRYD_JOURNAL_MAX)
		memcpy(logged[n++], r->id, 13);
	if (r->source && r->state == FERRYD_J_COMMITTED && r->diskless)
		ferryd_log(r->id,
			   "unsettled: %s cannot be reached (%s); '%s' is %s's: it runs there, or waits "
			   "there frozen until the two nodes settle the move (no checkpoint holds its "
			   "memory)",
			   r->peer, err->message, r->instance, r->peer);
	else if (r->source && r->state == FERRYD_J_COMMITTED)
		ferryd_log(r->id,
			   "unsettled: %s cannot be reached (%s); '%s' is %s's: it runs there, or its last "
			   "complete checkpoint is there (%s)",
			   r->peer, err->message, r->instance, r->peer, r->peer_dir ? r->peer_dir : dir);
	else if (!r->source && r->diskless)
		/* its restore used the received checkpoint up (live: that one never held the memory) */
		ferryd_log(r->id,
			   "unsettled: %s cannot be reached (%s); a copy of '%s' restored here waits (frozen "
			   "when its starter never heard the commit) until %s answers: it runs on here if %s "
			   "decided the move, and is stopped if not (no checkpoint holds its memory)",
			   r->peer, err->message, r->instance, r->peer, r->peer);
	else
		ferryd_log(
		    r->id,
		    "unsettled: %s cannot be reached (%s); the last complete checkpoint of '%s' is '%s' "
		    "on this node: if '%s' does not run on %s, restart it with 'ferry instance start "
		    "--criu-restart %s'",
		    r->peer, err->message, r->instance, dir, r->instance, r->peer, dir);
}

static void settle_source(struct ferryd *d, struct ferryd_jrec *r, const struct ferryd_user *u,
			  const char *peer, const char *dir)
{
	if (r->state == FERRYD_J_COMMITTED) {
		if (!streq(peer, "none"))
			return; /* the destination settles it first (it asks us) */
		if (remove_dir(d, u, r) < 0)
			return;
		ferryd_journal_drop(d, r->id);
		ferryd_log(r->id, "settled: '%s' moved to %s", r->instance, r->peer);
		return;
	}
	if (streq(peer, "pending") || streq(peer, "indoubt") || streq(peer, "prepared"))
		return; /* until the destination has no copy running */
	/* aborted: the instance is this node's; default mode, it may have to come back */
	if (!r->diskless && ensure_runs(d, u, r, dir) != 0) {
		ferryd_journal_drop(d, r->id); /* it runs from there, or that is all that is left */
		ferryd_log(r->id, "settled: '%s' stays on this node (its checkpoint '%s' is kept)",
			   r->instance, dir);
		return;
	}
	if (remove_dir(d, u, r) < 0)
		return;
	ferryd_journal_drop(d, r->id);
	ferryd_log(r->id, "settled: '%s' stays on this node", r->instance);
}

/* In the child of stop_copy (ferryd_as_user), as the user for good: the copy @fd's record names
 * is stopped if it is this migration's (restored here since @r began) and still runs (@sig
 * SIGKILL), or, frozen, thawed (SIGCONT: a live or diskless migration's copy, restored with every
 * page, that the commit never reached). 0: none runs, 1: done, 2: could not. */
static int stop_copy_child(int fd, const struct ferryd_user *u, const struct ferryd_jrec *r, int sig)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	struct ferry_error *err = NULL;
	_cleanup_(ferry_instance_freep) struct ferry_instance *inst = NULL;
	if (ferry_read_all(fd, FERRY_INSTANCE_RECORD_MAX, &buf, &len, &err) < 0 ||
	    ferry_instance_parse(buf, len, &inst, &err) < 0) {
		ferryd_log(r->id, "the instance record of '%s': %s", r->instance, err->message);
		ferry_error_free(err);
		return 2;
	}
	if (inst->uid != u->uid || !streq(inst->name, r->instance) || inst->created < r->begun)
		return 0; /* not a copy of this migration: the user's own, started since */
	int pidfd = (int)syscall(SYS_pidfd_open, inst->pid, 0);
	if (pidfd < 0 || !ferry_instance_alive(inst)) /* pinned, then checked: no reused pid */
		return 0;
	if (sig == SIGCONT)
		return ferry_signal_tree(inst->pid, SIGCONT) > 0 ? 1 : 2;
	if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0)
		return 2;
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	return poll(&p, 1, 10000) == 1 ? 1 : 2;
}

/* A copy of @r restored on this node that its starter no longer supervises (it was killed after
 * the restore, or it froze the copy when the commit never came) must not run on once the source
 * keeps the instance (@sig SIGKILL), and runs on once the source committed (SIGCONT): 1 done,
 * 0 no copy runs (any more), -1 (logged) it could not be signalled. The record is root's, but
 * what it holds the user chose: it is read, and the copy signalled, by a child that is the user
 * for good. */
struct stop_arg {
	int fd;
	const struct ferryd_user *u;
	const struct ferryd_jrec *r;
	int sig;
};

static int stop_as_user(void *arg, void *ans)
{
	const struct stop_arg *a = arg;
	*(int *)ans = stop_copy_child(a->fd, a->u, a->r, a->sig);
	return 0;
}

static int stop_copy(struct ferryd *d, const struct ferryd_user *u, const struct ferryd_jrec *r, int sig)
{
	struct ferry_error *err = NULL;
	_cleanup_close_ int dirfd = ferry_open_rundir(r->uid, false, &err);
	if (dirfd == -ENOENT)
		return 0;
	_cleanup_close_ int fd =
	    dirfd < 0 ? -1 : openat(dirfd, r->instance, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (dirfd >= 0 && fd < 0 && errno == ENOENT)
		return 0;
	if (dirfd < 0 || fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 ||
	    st.st_nlink != 1) {
		ferryd_log(r->id, "cannot check whether '%s' runs here: %s", r->instance,
			   err ? err->message : "bad instance record");
		ferry_error_free(err);
		return -1;
	}
	/* the user can stop the child (it is theirs): it has FERRYD_STOP_COPY_S, the record is
	 * tried again at the next pass */
	struct stop_arg a = {.fd = fd, .u = u, .r = r, .sig = sig};
	int code = 2;
	if (ferryd_as_user(d, u, "ferryd-stop", fd, stop_as_user, &a, &code, sizeof(code), FERRYD_STOP_COPY_S,
			   &err) < 0) {
		ferryd_log(r->id, "the stop of the copy of '%s': %s", r->instance, err->message);
		ferry_error_free(err);
		code = 2;
	}
	if (code < 0 || code > 2) /* (the child's answer, checked as anyone's) */
		code = 2;
	if (code == 1 && sig == SIGCONT)
		ferryd_log(r->id, "thawed the copy of '%s' restored here: it is this node's", r->instance);
	else if (code == 1)
		ferryd_log(r->id, "stopped the copy of '%s' restored here: %s keeps it", r->instance,
			   r->peer);
	else if (code != 0)
		ferryd_log(r->id, "could not %s the copy of '%s' restored here; tried again",
			   sig == SIGCONT ? "thaw" : "stop", r->instance);
	return code > 1 ? -1 : code;
}

/* The source committed: the instance is this node's. The copy restored here runs on: frozen
 * (its starter never heard the commit), it is thawed. Live and diskless, no checkpoint holds its
 * memory (the lazy pages came from the source; a diskless restore used the received copy up:
 * see grant_dedup in the starter; and the source commits only once the restore here said it
 * restored), so one that is gone is lost, said once; default mode, the instance is restarted
 * from the checkpoint in the shared directory. 0 settled, -1 (logged) tried again. */
static int run_on(struct ferryd *d, const struct ferryd_user *u, const struct ferryd_jrec *r, const char *dir)
{
	int ret = r->diskless ? stop_copy(d, u, r, SIGCONT) : 0;
	if (ret != 0)
		return ret < 0 ? -1 : 0;
	if (r->diskless) {
		ferryd_log(r->id,
			   "the copy of '%s' restored here is gone, and no checkpoint holds its memory (%s); "
			   "the job is lost",
			   r->instance,
			   r->live ? "its last pages came from the source"
				   : "the restore used the received copy up");
		return 0;
	}
	return ensure_runs(d, u, r, dir) < 0 ? -1 : 0;
}

static void settle_destination(struct ferryd *d, struct ferryd_jrec *r, const struct ferryd_user *u,
			       const char *peer, const char *dir)
{
	if (streq(peer, "pending"))
		return;
	if (streq(peer, "committed") && run_on(d, u, r, dir) < 0)
		return; /* logged; tried again on the next pass */
	/* the instance is the source's: no copy of it may run on here. "none" says so only when
	 * this side is in doubt (its restore never heard the commit): a source that committed
	 * keeps its record until then, and drops it at once only when this side said done */
	if ((streq(peer, "aborted") || (streq(peer, "none") && r->state == FERRYD_J_INDOUBT)) &&
	    stop_copy(d, u, r, SIGKILL) < 0)
		return;
	if (r->diskless && remove_dir(d, u, r) < 0)
		return;
	ferryd_journal_drop(d, r->id);
	ferryd_log(r->id, "settled: '%s' %s", r->instance,
		   streq(peer, "committed") ? "runs on this node" : "stays on its source");
}

/* One record, its lock held. */
static void reconcile_one(struct ferryd *d, struct ferryd_jrec *r, int lock)
{
	struct ferry_error *err = NULL;
	if (r->source && r->state == FERRYD_J_PREPARED) {
		r->state = ferryd_journal_decided(lock) ? FERRYD_J_COMMITTED : FERRYD_J_ABORTED;
		if (ferryd_journal_put(d, r, &err) < 0) {
			ferryd_log(r->id, "%s", err->message);
			ferry_error_free(err);
			return;
		}
	}
	struct ferryd_user u = {0};
	if (ferryd_user_lookup(r->uid, &u, &err) < 0) {
		ferryd_log(r->id, "%s", err->message);
		ferry_error_free(err);
		return;
	}
	_cleanup_free_ char *dir = ferryd_jrec_dir(d, r);
	if (!r->source && !r->diskless) { /* the source's directory in the shared one */
		free(dir);
		dir = xasprintf("%s/%u/%s-%s", d->shared_dir, (unsigned)r->uid, r->instance, r->id);
	}
	_cleanup_free_ char *peer = ask_peer(d, r, &err);
	if (!peer)
		log_unreachable(r, dir, err);
	else if (r->source)
		settle_source(d, r, &u, peer, dir);
	else
		settle_destination(d, r, &u, peer, dir);
	ferry_error_free(err);
	free(u.name);
}

/* A set of users (at most one a record), with the time each one's records took in a pass. */
struct uids {
	uid_t v[FERRYD_JOURNAL_MAX];
	long long ms[FERRYD_JOURNAL_MAX];
	size_t n;
};

static bool uids_has(const struct uids *s, uid_t u)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == u)
			return true;
	return false;
}

/* @u's place in @s, added (its time 0) if it was not there; the last place when @s is full. */
static size_t uids_add(struct uids *s, uid_t u)
{
	size_t i = 0;
	while (i < s->n && s->v[i] != u)
		i++;
	if (i == s->n && s->n < FERRYD_JOURNAL_MAX)
		s->v[s->n++] = u;
	return i < s->n ? i : s->n - 1;
}

/* One pass. A record's work may run out of its time (its user stops the child that works as
 * them, or the starter ferryd runs): a user whose records took PASS_BUDGET_S or more in all gets
 * no more of this pass, and comes after every other user in the next one, so that one user's
 * records never hold another's for their sum (the reconciler settles one record at a time). */
static void reconcile_pass(struct ferryd *d)
{
	static char ids[FERRYD_JOURNAL_MAX][13];
	static struct uids slow; /* who ran out of time in the last pass */
	struct uids spent = {0}, took = {0};
	size_t n = ferryd_journal_list(d, ids, FERRYD_JOURNAL_MAX);
	for (int last = 0; last < 2; last++)
		for (size_t i = 0; i < n && i < FERRYD_JOURNAL_MAX; i++) {
			_cleanup_close_ int lock = ferryd_journal_trylock(d, ids[i]);
			if (lock < 0)
				continue; /* its handler (or what it runs) still works on it */
			struct ferryd_jrec r = {0};
			struct ferry_error *err = NULL;
			int got = ferryd_journal_get(d, ids[i], &r, &err);
			if (got == -ENOENT) /* (settled, or set aside, in the first round) */
				continue;
			if (got < 0) {
				/* not ferryd's record as written: set aside for the admin, never acted on */
				_cleanup_free_ char *aside = xasprintf("bad.%s", ids[i]);
				ferryd_log(ids[i], "%s: moved aside to '%s'",
					   err ? err->message : "no record", aside);
				(void)renameat(d->jfd, ids[i], d->jfd, aside);
				ferry_error_free(err);
				continue;
			}
			if (!uids_has(&spent, r.uid) && uids_has(&slow, r.uid) == (last == 1)) {
				long long t0 = ferry_monotonic_ms();
				reconcile_one(d, &r, lock);
				size_t k = uids_add(&took, r.uid);
				if ((took.ms[k] += ferry_monotonic_ms() - t0) >= PASS_BUDGET_S * 1000LL)
					uids_add(&spent, r.uid);
			}
			ferryd_jrec_clear(&r);
		}
	slow = spent;
}

static volatile sig_atomic_t reload_asked;

static void on_hup(int sig)
{
	reload_asked = 1;
}

void ferryd_reconcile_start(struct ferryd *d)
{
	pid_t parent = getpid();
	/* SIGHUP is blocked until the child's handler is in place: a reload between the fork and
	 * the handler would end it */
	sigset_t hup, old;
	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	sigprocmask(SIG_BLOCK, &hup, &old);
	pid_t pid = fork();
	if (pid != 0) {
		if (pid < 0)
			ferryd_log(NULL, "no reconciler: fork: %s", strerror(errno));
		d->reconciler = pid > 0 ? pid : 0;
		sigprocmask(SIG_SETMASK, &old, NULL);
		return;
	}
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != parent)
		_exit(0);
	prctl(PR_SET_NAME, "ferryd-settle", 0, 0, 0); /* what an admin sees in ps */
	struct sigaction sa = {.sa_handler = on_hup};
	sigaction(SIGHUP, &sa, NULL);
	sigprocmask(SIG_UNBLOCK, &hup, NULL);
	for (;;) {
		if (reload_asked) { /* ferryd reloaded: the same configuration here (new peers) */
			reload_asked = 0;
			ferryd_reload(d, true);
		}
		reconcile_pass(d);
		sleep(FERRYD_RECONCILE_S);
	}
}
