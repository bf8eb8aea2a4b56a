/* SPDX-License-Identifier: GPL-2.0-or-later */
/* journal.h — each side's durable record of its migrations, and the commit's decision
 * (docs/protocol.md, "The journal and recovery").
 *
 * STATEDIR/ferryd/<node>/ (root's, 0700; one directory a node, since simulated nodes share a
 * filesystem) holds per migration:
 *   <id>         the record: a message of proto.h ("ferry-proto 1", key=value lines), at most
 *                FERRYD_JOURNAL_SIZE bytes, replaced whole (written to a temporary file, fsync,
 *                rename, fsync of the directory), read back strictly (root's regular file, one
 *                link, no more than the size, every field checked);
 *   <id>.commit  the lock and the decision: whoever works on the migration (the handler, the
 *                starters it runs, the reconciler) holds flock(LOCK_EX) on it, so a free lock
 *                means nobody does; on the source it is empty until the decision, when one byte
 *                'C' is written at offset 0 and fdatasync'ed (by ferryd in default mode, by the
 *                source starter, on fd 5, in diskless mode) before the commit is sent: that
 *                byte is the commit point. The dumped tree ends only if it is there.
 * At most FERRYD_JOURNAL_MAX migrations are unsettled at once, and at most FERRYD_JOURNAL_PER_USER
 * of one user (a record stays as long as its peer cannot answer, or its user keeps the
 * reconciler's children from their work: one user's must not use up the node's). A new one is
 * refused beyond; a user's records past their share count against that user alone. */
#ifndef FERRYD_JOURNAL_H
#define FERRYD_JOURNAL_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

struct ferryd;

#define FERRYD_JOURNAL_MAX 256
#define FERRYD_JOURNAL_PER_USER 32 /* a user's: FERRYD_MAX_PER_USER at work, as many left over */
#define FERRYD_JOURNAL_SIZE 8192
#define FERRYD_RECONCILE_S 5 /* seconds between the reconciler's passes */
#define FERRYD_STOP_COPY_S                                                                                   \
	20 /* seconds the reconciler gives its child that stops or thaws a copy, as the user */
#define FERRYD_DECISION_FD 5 /* the source starter's fd of the decision (diskless) */

enum ferryd_jstate {
	FERRYD_J_PREPARED, /* under way (source: undecided) */
	FERRYD_J_COMMITTED, /* source: decided; the instance is the destination's */
	FERRYD_J_INDOUBT, /* destination: restored, the commit never came */
	FERRYD_J_ABORTED, /* source: decided against (its instance stays or comes back here) */
};

struct ferryd_jrec {
	char id[13];
	bool source;
	bool diskless; /* or live */
	bool live;
	uid_t uid;
	char *user, *instance, *peer;
	char *peer_dir; /* source: the destination's copy, as it said (for messages only) */
	long long begun; /* this node's wall clock (seconds) when the record was begun: an instance
			  * record of the destination at least as new is this migration's copy */
	enum ferryd_jstate state;
};

void ferryd_jrec_clear(struct ferryd_jrec *r);
const char *ferryd_jstate_name(enum ferryd_jstate s);
/* The migration's own directory (BASE/<uid>/<leaf>) on this side, and its leaf's name. */
char *ferryd_jrec_leaf(const struct ferryd_jrec *r);
char *ferryd_jrec_dir(const struct ferryd *d, const struct ferryd_jrec *r);

/* The journal directory of this node, made if missing (d->jfd); at start. */
int ferryd_journal_open(struct ferryd *d, struct ferry_error **err);
/* A new migration: refused when its user has FERRYD_JOURNAL_PER_USER unsettled, or when
 * FERRYD_JOURNAL_MAX are (each user's counted up to their share); its lock taken (the fd in
 * *ret_lock, to hold until the migration is over; the source's decision fd) and @r written. */
int ferryd_journal_begin(struct ferryd *d, const struct ferryd_jrec *r, int *ret_lock,
			 struct ferry_error **err);
int ferryd_journal_put(struct ferryd *d, const struct ferryd_jrec *r, struct ferry_error **err);
/* The record @id, checked. -ENOENT when there is none. */
int ferryd_journal_get(struct ferryd *d, const char *id, struct ferryd_jrec *ret, struct ferry_error **err);
/* The lock of @id without waiting: its fd, -EWOULDBLOCK when someone works on it, -ENOENT. */
int ferryd_journal_trylock(struct ferryd *d, const char *id);
/* The record and its lock go (the migration is settled). */
void ferryd_journal_drop(struct ferryd *d, const char *id);
/* The decision on the lock's fd: write 'C' durably (0 or -errno), or read it. */
int ferryd_journal_decide(int lock);
bool ferryd_journal_decided(int lock);
/* The ids in the journal, into @ids (at most @max); their count. */
size_t ferryd_journal_list(struct ferryd *d, char (*ids)[13], size_t max);
bool ferryd_id_ok(const char *id);

/* reconcile.c — the reconciler: a process that, at start and every FERRYD_RECONCILE_S, settles
 * the migrations nobody works on with their peer (status messages over the authenticated link). */
void ferryd_reconcile_start(struct ferryd *d);
struct ferryd_link;
struct ferry_msg;
/* The answer to a peer's "status" message. */
void ferryd_reconcile_answer(struct ferryd *d, struct ferryd_link *l, const struct ferry_msg *m);

#endif
