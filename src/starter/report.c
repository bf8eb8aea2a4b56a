/* SPDX-License-Identifier: GPL-2.0-or-later */
/* report.c — how the starter fails: one line to the user (and to a --page-server peer), and the
 * "E message" / "OK pid" lines its children report to it. */
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>

#include "fs.h"
#include "starter.h"
#include "transfer.h"
#include "xfer.h"

/* the peer of a --page-server transfer, told why when we fail */
int starter_verdict_fd = -1;
/* "timing" lines for ferryd (FERRY_REQ_TIMINGS): when we started, received, restored */
bool starter_want_timings;
long long starter_t_start, starter_t_received, starter_t_allin;
/* a live restart's lazy-pages daemon (its process group), ended and reaped when we fail */
pid_t starter_lazy_pid;

void starter_progress(void)
{
	static long long last;
	long long now = ferry_monotonic_ms();
	if (!starter_want_timings || now - last < 1000)
		return;
	last = now;
	fputs("progress\n", stdout);
	fflush(stdout);
}

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	fprintf(stderr, "ferry: %s\n", msg ? msg : fmt);
	if (starter_lazy_pid > 0) { /* (not left for init to reap, late) */
		kill(-starter_lazy_pid, SIGKILL);
		while (waitpid(starter_lazy_pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (starter_verdict_fd >= 0)
		(void)ferry_xfer_send_verdict(starter_verdict_fd, msg ? msg : "failed");
	(void)xfer_session_finish(10);
	exit(255);
}

void die_error(struct ferry_error *err)
{
	die("%s", err && err->message ? err->message : "unknown error");
}

void report_error(int fd, struct ferry_error *err)
{
	_cleanup_free_ char *line = xasprintf("E %s\n", err && err->message ? err->message : "unknown error");
	(void)ferry_write_all(fd, line, strlen(line));
}

/* Reads what a child reports on @fd until EOF: nothing means success. */
char *read_report(int fd)
{
	char *buf = NULL;
	size_t len = 0;
	if (ferry_read_all(fd, 64 * 1024, &buf, &len, NULL) < 0 || len == 0) {
		free(buf);
		return NULL;
	}
	while (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	return buf;
}

/* The report protocol: "E message" lines for failures, "OK" for a started instance. */
void die_report(char *msg)
{
	const char *text = startswith(msg, "E ") ? msg + 2 : msg;
	char *nl = strchr(text, '\n');
	if (nl)
		*nl = '\0';
	die("%s", text);
}
