/* SPDX-License-Identifier: GPL-2.0-or-later */
/* tcpstream — a numbered TCP stream that notices any reconnect, gap or duplicate.
 *
 *   tcpstream serve [ADDR:]PORT PROGRESS   accept ONE connection; read lines "N"; each must be
 *                                          the last + 1; echo it back; a second connection, a
 *                                          gap, a duplicate or the end of the stream is a failure
 *   tcpstream send HOST:PORT PROGRESS [MS] connect once; send 1, 2, 3, ... every MS (default 50);
 *                                          each echo must come back in order
 *
 * PROGRESS is rewritten (temp + rename) after every number: "ok N", or "FAIL <why>" before
 * exiting 1; +PROGRESS appends those lines to PROGRESS instead (see main). Used by the network tests: the stream must go on, on the same connection, while
 * an instance holding one end is checkpointed on one node and restored on another. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *progress;
static int progress_log = -1; /* +PROGRESS: a line appended per number, to one file kept open */

static void report(const char *fmt, unsigned long n, const char *why)
{
	if (progress_log >= 0) {
		char line[4096];
		int len = snprintf(line, sizeof(line) - 1, fmt, n, why);
		if (len < 0)
			return;
		if (len > (int)sizeof(line) - 2)
			len = (int)sizeof(line) - 2;
		line[len++] = '\n';
		(void)!write(progress_log, line, (size_t)len);
		return;
	}
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", progress);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, fmt, n, why);
	fputc('\n', f);
	fclose(f);
	rename(tmp, progress);
}

static _Noreturn void fail(unsigned long n, const char *why)
{
	report("FAIL at %lu: %s", n, why);
	exit(1);
}

static int split(const char *spec, char *host, size_t hn, char *port, size_t pn)
{
	const char *colon = strrchr(spec, ':');
	if (!colon) {
		snprintf(host, hn, "%s", "");
		snprintf(port, pn, "%s", spec);
		return 0;
	}
	snprintf(host, hn, "%.*s", (int)(colon - spec), spec);
	snprintf(port, pn, "%s", colon + 1);
	return 0;
}

/* Reads one line "N\n" into *ret; 0 on EOF. */
static int read_number(FILE *in, unsigned long *ret)
{
	char line[64];
	if (!fgets(line, sizeof(line), in))
		return 0;
	char *end = NULL;
	*ret = strtoul(line, &end, 10);
	return end != line ? 1 : -1;
}

static _Noreturn void serve(const char *spec)
{
	char host[256], port[32];
	split(spec, host, sizeof(host), port, sizeof(port));
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV}, *ai;
	if (getaddrinfo(*host ? host : NULL, port, &hints, &ai) != 0)
		fail(0, "bad address");
	int ls = socket(ai->ai_family, ai->ai_socktype, 0);
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, ai->ai_addr, ai->ai_addrlen) < 0 || listen(ls, 4) < 0)
		fail(0, strerror(errno));
	report("listening %lu%s", 0, "");
	int sk = accept(ls, NULL, NULL);
	if (sk < 0)
		fail(0, strerror(errno));
	FILE *in = fdopen(sk, "r");
	unsigned long expect = 1, n = 0;
	for (;;) {
		int r = read_number(in, &n);
		if (r == 0)
			fail(expect - 1, "the stream ended (connection closed or reset)");
		if (r < 0)
			fail(expect - 1, "garbage on the stream");
		if (n != expect)
			fail(expect - 1, n < expect ? "duplicate number" : "gap in the numbers");
		char line[32];
		int len = snprintf(line, sizeof(line), "%lu\n", n);
		if (write(sk, line, (size_t)len) != len)
			fail(n, "echo failed");
		report("ok %lu%s", n, "");
		expect++;
		/* a second connection means the client reconnected: that is a failure too */
		struct timeval tv = {0, 0};
		fd_set fds;
		FD_ZERO(&fds);
		FD_SET(ls, &fds);
		if (select(ls + 1, &fds, NULL, NULL, &tv) > 0)
			fail(n, "a second connection arrived (reconnect)");
	}
}

static _Noreturn void send_stream(const char *spec, long ms)
{
	char host[256], port[32];
	split(spec, host, sizeof(host), port, sizeof(port));
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV}, *ai;
	if (getaddrinfo(host, port, &hints, &ai) != 0)
		fail(0, "bad address");
	int sk = -1;
	for (int tries = 0; tries < 100; tries++) { /* the server may still be starting */
		sk = socket(ai->ai_family, ai->ai_socktype, 0);
		if (connect(sk, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(sk);
		sk = -1;
		usleep(100000);
	}
	if (sk < 0)
		fail(0, "cannot connect");
	FILE *in = fdopen(dup(sk), "r");
	for (unsigned long n = 1;; n++) {
		char line[32];
		int len = snprintf(line, sizeof(line), "%lu\n", n);
		if (write(sk, line, (size_t)len) != len)
			fail(n - 1, "send failed");
		unsigned long echo = 0;
		int r = read_number(in, &echo);
		if (r <= 0)
			fail(n - 1, "the stream ended (connection closed or reset)");
		if (echo != n)
			fail(n - 1, "echo out of order");
		report("ok %lu%s", n, "");
		struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
		nanosleep(&ts, NULL);
	}
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	/* +PROGRESS: the progress is a log, opened once, write-only and appending: a checkpoint
	 * that lets the process go on (--leave-running) and is restored after it was killed finds
	 * its file as CRIU wants it (there, by the same name; CRIU does not check the size of such
	 * a file), whatever moment the cut caught; the rewritten file would be another one then */
	if (argc >= 4 && argv[3][0] == '+') {
		argv[3]++;
		progress_log = open(argv[3], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (progress_log < 0) {
			perror(argv[3]);
			return 2;
		}
	}
	if (argc >= 4 && strcmp(argv[1], "serve") == 0) {
		progress = argv[3];
		serve(argv[2]);
	}
	if (argc >= 4 && strcmp(argv[1], "send") == 0) {
		progress = argv[3];
		send_stream(argv[2], argc > 4 ? atol(argv[4]) : 50);
	}
	fprintf(stderr, "usage: tcpstream serve [ADDR:]PORT [+]PROGRESS | send HOST:PORT [+]PROGRESS [MS]\n");
	return 2;
}
