/* SPDX-License-Identifier: GPL-2.0-or-later */
/* steps.h — the named steps of a migration, source and destination, both modes, in one table
 * (docs/protocol.md, "Steps"; docs/faults.md, the fault matrix over them).
 *
 * Each row: the step, its name (in logs, in FERRY_FAULT of a fault build: fault.h), the side
 * (S source, D destination) and the modes it belongs to (d default, k diskless and live). A step is
 * entered in table order; in diskless mode the dump, the transfer, the restore, the verdict and
 * the commit run between the two starters inside one step of each daemon (src-dump, dst-restore):
 * the daemons see that session only from outside, and so does the matrix (it kills the starters
 * and CRIU, cuts the link, fills the tmpfs while it runs). src-commit is the source's decision:
 * from the moment it is durable the move is agreed, whatever is lost after it. */
#ifndef FERRYD_STEPS_H
#define FERRYD_STEPS_H

#define FERRYD_STEP_TABLE(X)                                                                                 \
	X(FERRYD_SRC_REQUEST, "src-request", 'S', "dk") /* the client's request accepted */                  \
	X(FERRYD_SRC_JOURNAL, "src-journal", 'S', "dk") /* the source's record written: prepared */          \
	X(FERRYD_SRC_PREPARE, "src-prepare", 'S', "dk") /* connected; prepare sent, ready read */            \
	X(FERRYD_SRC_DUMP, "src-dump", 'S', "dk") /* the starter dumps (diskless: the session) */            \
	X(FERRYD_SRC_RESTART, "src-restart", 'S', "d") /* restart sent, the checkpoint synced */             \
	X(FERRYD_SRC_VERDICT, "src-verdict", 'S', "d") /* the destination's 'A' read */                      \
	X(FERRYD_SRC_COMMIT, "src-commit", 'S', "dk") /* the decision is durable; the commit goes */         \
	X(FERRYD_SRC_DONE, "src-done", 'S', "dk") /* the destination's done read; the report */              \
	X(FERRYD_SRC_SETTLE, "src-settle", 'S', "dk") /* the migration's directory and record go */          \
	X(FERRYD_DST_PREPARE, "dst-prepare", 'D', "dk") /* prepare checked; the record written */            \
	X(FERRYD_DST_READY, "dst-ready", 'D', "dk") /* ready sent */                                         \
	X(FERRYD_DST_RESTORE, "dst-restore", 'D', "dk") /* the starter restores (diskless: receives) */      \
	X(FERRYD_DST_DONE, "dst-done", 'D', "dk") /* committed: done sent */                                 \
	X(FERRYD_DST_SETTLE, "dst-settle", 'D', "dk") /* the received copy and the record go */

enum ferryd_step {
#define FERRYD_STEP_ENUM(step, name, side, modes) step,
	FERRYD_STEP_TABLE(FERRYD_STEP_ENUM)
#undef FERRYD_STEP_ENUM
	    FERRYD_STEP_MAX_
};

/* The step's name ("src-dump"), or NULL. */
const char *ferryd_step_name(enum ferryd_step step);

#endif
