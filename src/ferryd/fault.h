/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fault.h — fault injection at the named steps (steps.h), in the manner of CRIU's
 * (criu/include/fault-injection.h): only a test build has it.
 *
 * Built with -DFERRY_FAULT_INJECTION (`make faults`, in build-fault/: never the build that is
 * installed), ferryd reads FERRY_FAULT once when a handler starts:
 *     FERRY_FAULT=STEP=ACTION[,STEP=ACTION...]      e.g. FERRY_FAULT=src-commit=cut
 * and at the step does ACTION:
 *     fail  the step fails as its own failure would (the step's error path)
 *     cut   the link to the peer is cut (shutdown both ways) as the step begins
 *     stop  the handler stops itself (SIGSTOP) and logs "fault: stopped at STEP": a test then does
 *           a fault from outside (SIGKILL of a process, the link down, a full tmpfs) and SIGCONT
 *     kill  the handler dies at once (SIGKILL; what it runs dies with it)
 * and logs "step STEP" at every step. Without the flag none of this exists: ferryd_fault() is
 * an inline 0 and no code reads the variable (tests/integration/faults.bats proves that the
 * installed ferryd and starter ignore it). The setuid starter has no fault points at all. */
#ifndef FERRYD_FAULT_H
#define FERRYD_FAULT_H

#include <pthread.h>
#include <stdbool.h>

#include "steps.h"

enum ferryd_fault_action {
	FERRYD_FAULT_NONE = 0,
	FERRYD_FAULT_FAIL,
	FERRYD_FAULT_CUT,
	FERRYD_FAULT_STOP,
	FERRYD_FAULT_KILL,
};

/* Diskless, the source: the commit is the starter's, inside its session. To put src-commit's
 * fault exactly between the decision (the starter's byte on fd 5) and the commit's bytes, a
 * fault build with src-commit armed hands the starter a socket pair instead of the connection
 * and moves the bytes itself: the first bytes the starter writes once the decision is there
 * (the commit) meet the fault instead of the link. Otherwise the connection itself. */
struct ferryd_fault_proxy {
	int tcp, local, decision, wake[2];
	const char *id;
	bool running;
	pthread_t thread;
};

#ifdef FERRY_FAULT_INJECTION
/* The fd to give the starter (the connection @tcp, or a proxy's end). */
int ferryd_fault_proxy_start(struct ferryd_fault_proxy *p, int tcp, int decision, const char *id);
void ferryd_fault_proxy_stop(struct ferryd_fault_proxy *p);
/* At @step of migration @id, with @link_fd the peer connection (-1: none): the action, done
 * (cut, stop, kill) or to be done by the caller (fail). */
enum ferryd_fault_action ferryd_fault(enum ferryd_step step, const char *id, int link_fd);
/* Whether @step has @action set (without doing it). */
bool ferryd_fault_armed(enum ferryd_step step, enum ferryd_fault_action action);
#else
static inline int ferryd_fault_proxy_start(struct ferryd_fault_proxy *p, int tcp, int decision,
					   const char *id)
{
	(void)decision;
	(void)id;
	p->running = false;
	return tcp;
}
static inline void ferryd_fault_proxy_stop(struct ferryd_fault_proxy *p)
{
	(void)p;
}
static inline enum ferryd_fault_action ferryd_fault(enum ferryd_step step, const char *id, int link_fd)
{
	(void)step;
	(void)id;
	(void)link_fd;
	return FERRYD_FAULT_NONE;
}
static inline bool ferryd_fault_armed(enum ferryd_step step, enum ferryd_fault_action action)
{
	(void)step;
	(void)action;
	return false;
}
#endif

#endif
