/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fault.c — the named steps, and fault injection at them in a test build (fault.h). */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "fault.h"
#include "ferryd.h"
#include "fs.h"
#include "journal.h"

static const char *const step_names[] = {
#define FERRYD_STEP_NAME(step, name, side, modes) [step] = name,
    FERRYD_STEP_TABLE(FERRYD_STEP_NAME)
#undef FERRYD_STEP_NAME
};

const char *ferryd_step_name(enum ferryd_step step)
{
	return (unsigned)step < FERRYD_STEP_MAX_ ? step_names[step] : NULL;
}

#ifdef FERRY_FAULT_INJECTION
static enum ferryd_fault_action armed[FERRYD_STEP_MAX_];
static bool loaded;

static enum ferryd_fault_action action_of(const char *a)
{
	static const char *const names[] = {[FERRYD_FAULT_FAIL] = "fail",
					    [FERRYD_FAULT_CUT] = "cut",
					    [FERRYD_FAULT_STOP] = "stop",
					    [FERRYD_FAULT_KILL] = "kill"};
	for (size_t i = 1; i < ARRAY_SIZE(names); i++)
		if (streq(a, names[i]))
			return (enum ferryd_fault_action)i;
	return FERRYD_FAULT_NONE;
}

/* FERRY_FAULT, once: STEP=ACTION,... (anything else is logged and ignored). */
static void load(void)
{
	if (loaded)
		return;
	loaded = true;
	const char *env = secure_getenv("FERRY_FAULT");
	if (!env || strlen(env) > 1024)
		return;
	_cleanup_free_ char *copy = xstrdup(env);
	char *save = NULL;
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		enum ferryd_fault_action a = eq ? action_of(eq + 1) : FERRYD_FAULT_NONE;
		if (eq)
			*eq = '\0';
		size_t s = 0;
		while (s < FERRYD_STEP_MAX_ && !streq(step_names[s], item))
			s++;
		if (s == FERRYD_STEP_MAX_ || a == FERRYD_FAULT_NONE) {
			ferryd_log(NULL, "fault: ignored '%s'", item);
			continue;
		}
		armed[s] = a;
	}
}

bool ferryd_fault_armed(enum ferryd_step step, enum ferryd_fault_action action)
{
	load();
	return (unsigned)step < FERRYD_STEP_MAX_ && armed[step] == action;
}

enum ferryd_fault_action ferryd_fault(enum ferryd_step step, const char *id, int link_fd)
{
	load();
	if ((unsigned)step >= FERRYD_STEP_MAX_)
		return FERRYD_FAULT_NONE;
	ferryd_log(id, "step %s", step_names[step]);
	enum ferryd_fault_action a = armed[step];
	switch (a) {
	case FERRYD_FAULT_NONE:
		break;
	case FERRYD_FAULT_FAIL:
		ferryd_log(id, "fault: %s fails", step_names[step]);
		break;
	case FERRYD_FAULT_CUT:
		ferryd_log(id, "fault: the link is cut at %s", step_names[step]);
		if (link_fd >= 0)
			(void)shutdown(link_fd, SHUT_RDWR);
		break;
	case FERRYD_FAULT_STOP:
		ferryd_log(id, "fault: stopped at %s", step_names[step]);
		raise(SIGSTOP);
		ferryd_log(id, "fault: continued at %s", step_names[step]);
		break;
	case FERRYD_FAULT_KILL:
		ferryd_log(id, "fault: killed at %s", step_names[step]);
		raise(SIGKILL);
		break;
	}
	return a;
}
#endif

#ifdef FERRY_FAULT_INJECTION
/* Moves what is readable on @from to @to; false at the end or on an error. */
static bool pump(int from, int to)
{
	char buf[65536];
	ssize_t n = read(from, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	return n > 0 && ferry_write_all(to, buf, (size_t)n) == 0;
}

static void *proxy_run(void *arg)
{
	struct ferryd_fault_proxy *p = arg;
	bool fired = false;
	for (;;) {
		struct pollfd f[3] = {{.fd = p->local, .events = POLLIN},
				      {.fd = p->tcp, .events = POLLIN},
				      {.fd = p->wake[0], .events = POLLIN}};
		if (poll(f, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (f[2].revents)
			break;
		if (f[0].revents && !fired && ferryd_journal_decided(p->decision)) {
			/* the decision is durable and the starter writes again: its commit */
			fired = true;
			enum ferryd_fault_action a = ferryd_fault(FERRYD_SRC_COMMIT, p->id, p->tcp);
			if (a == FERRYD_FAULT_CUT || a == FERRYD_FAULT_FAIL) {
				(void)shutdown(p->tcp, SHUT_RDWR);
				break;
			}
		}
		if ((f[0].revents && !pump(p->local, p->tcp)) || (f[1].revents && !pump(p->tcp, p->local)))
			break;
	}
	(void)shutdown(p->local, SHUT_RDWR);
	return NULL;
}

int ferryd_fault_proxy_start(struct ferryd_fault_proxy *p, int tcp, int decision, const char *id)
{
	*p = (struct ferryd_fault_proxy){
	    .tcp = tcp, .local = -1, .decision = decision, .id = id, .wake = {-1, -1}};
	int sp[2];
	if (!ferryd_fault_armed(FERRYD_SRC_COMMIT, FERRYD_FAULT_NONE + 1) &&
	    !ferryd_fault_armed(FERRYD_SRC_COMMIT, FERRYD_FAULT_CUT) &&
	    !ferryd_fault_armed(FERRYD_SRC_COMMIT, FERRYD_FAULT_STOP) &&
	    !ferryd_fault_armed(FERRYD_SRC_COMMIT, FERRYD_FAULT_KILL))
		return tcp;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0 || pipe2(p->wake, O_CLOEXEC) < 0)
		return tcp;
	p->local = sp[0];
	if (pthread_create(&p->thread, NULL, proxy_run, p) != 0) {
		close(sp[0]);
		close(sp[1]);
		return tcp;
	}
	p->running = true;
	ferryd_log(id, "fault: the starter's connection goes through a proxy (src-commit armed)");
	return sp[1];
}

void ferryd_fault_proxy_stop(struct ferryd_fault_proxy *p)
{
	if (!p->running)
		return;
	(void)ferry_write_all(p->wake[1], "x", 1);
	pthread_join(p->thread, NULL);
	close(p->wake[0]);
	close(p->wake[1]);
	close(p->local);
	p->running = false;
}
#endif
