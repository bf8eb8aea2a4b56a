/* SPDX-License-Identifier: GPL-2.0-or-later */
/* tcpring — one rank of a job whose ranks talk over TCP in a ring, for the rankmove suite of
 * ferry's benchmarks (bench/lib/rankmove.bash): what the other ranks of a job see while one of
 * them is migrated.
 *
 *   tcpring [--mb MB] [--usec USEC] [--bytes BYTES] RANK RANKS ADDR:PORT NEXT:PORT LOG
 *
 * Listens on ADDR:PORT, connects to the next rank at NEXT:PORT (retried for up to 60 s: the
 * ranks start in any order), accepts the previous rank, then steps in lockstep with the others,
 * as an MPI program's MPI_Sendrecv around a ring: every iteration it sends the next rank a
 * message of BYTES (4096) that names the sender and the iteration, receives the previous rank's
 * message of the same iteration, checks it, writes one page of its own MB MiB (0) and sleeps
 * USEC (1000). No rank can be more than one iteration ahead of its predecessor, so a rank that
 * stops stops every rank within a few iterations, as a job waits for its slowest rank.
 *
 * LOG (appended to) gets "ready" once the ring is closed, then one line "ITERATION NS" per
 * message received: NS is when it arrived (CLOCK_REALTIME, ns since the epoch, to line up with
 * the harness's clock). A message out of order, from the wrong rank or cut short writes
 * "FAIL ..." and exits 1. The memory is filled with incompressible data before "ready". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x676e6972u /* "ring" */
#define PAGE 4096u

struct head {
	uint32_t magic;
	uint32_t rank;
	uint64_t iteration;
};

static int log_fd = 2;

/* "FAIL WHAT" to the log (and stderr), exit 1 */
static void fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dprintf(log_fd, "FAIL %s\n", msg);
	if (log_fd != 2)
		fprintf(stderr, "tcpring: %s\n", msg);
	exit(1);
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long number(const char *what, const char *s, long lo, long hi)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		fail("%s must be a number from %ld to %ld, not '%s'", what, lo, hi, s);
	return v;
}

/* ADDR:PORT into an IPv4 socket address */
static struct sockaddr_in address(const char *s)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	struct sockaddr_in sa = {.sin_family = AF_INET};
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		fail("'%s' is not ADDR:PORT", s);
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		fail("'%s' is not an IPv4 address", host);
	sa.sin_port = htons((uint16_t)number("the port", colon + 1, 1, 65535));
	return sa;
}

static void nodelay(int fd)
{
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		fail("TCP_NODELAY: %s", strerror(errno));
}

static void send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail("send to the next rank: %s", n < 0 ? strerror(errno) : "nothing sent");
		p += n;
		len -= (size_t)n;
	}
}

static void recv_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail("receive from the previous rank: %s",
			     n < 0 ? strerror(errno) : "connection closed");
		p += n;
		len -= (size_t)n;
	}
}

/* the memory of the rank: MB MiB of incompressible data (xorshift), every page touched */
static unsigned char *fill(long mb)
{
	if (mb == 0)
		return NULL;
	size_t len = (size_t)mb << 20;
	unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		fail("mmap of %ld MiB: %s", mb, strerror(errno));
	uint64_t x = realtime_ns() | 1, *w = (uint64_t *)m;
	for (size_t i = 0; i < len / sizeof(*w); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
	return m;
}

int main(int argc, char **argv)
{
	long mb = 0, usec = 1000, bytes = 4096;
	int i = 1;
	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (strcmp(argv[i], "--mb") == 0)
			mb = number("--mb", argv[i + 1], 0, 1 << 20);
		else if (strcmp(argv[i], "--usec") == 0)
			usec = number("--usec", argv[i + 1], 0, 10000000);
		else if (strcmp(argv[i], "--bytes") == 0)
			bytes = number("--bytes", argv[i + 1], (long)sizeof(struct head), 1 << 20);
		else
			fail("unknown option '%s'", argv[i]);
	}
	if (argc - i != 5) {
		fprintf(stderr, "usage: tcpring [--mb MB] [--usec USEC] [--bytes BYTES] RANK RANKS ADDR:PORT "
				"NEXT:PORT LOG\n");
		return 2;
	}
	log_fd = open(argv[i + 4], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (log_fd < 0) {
		fprintf(stderr, "tcpring: open '%s': %s\n", argv[i + 4], strerror(errno));
		return 1;
	}
	long ranks = number("RANKS", argv[i + 1], 2, 1024);
	uint32_t rank = (uint32_t)number("RANK", argv[i], 0, ranks - 1);
	uint32_t prev = (uint32_t)((rank + (uint32_t)ranks - 1) % (uint32_t)ranks);
	struct sockaddr_in me = address(argv[i + 2]), next = address(argv[i + 3]);
	unsigned char *mem = fill(mb);
	size_t pages = ((size_t)mb << 20) / PAGE;

	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(ls, (struct sockaddr *)&me, sizeof(me)) < 0 || listen(ls, 1) < 0)
		fail("listen on %s: %s", argv[i + 2], strerror(errno));
	int out = -1;
	for (int tries = 0; out < 0; tries++) {
		out = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (out < 0)
			fail("socket: %s", strerror(errno));
		if (connect(out, (struct sockaddr *)&next, sizeof(next)) == 0)
			break;
		if (tries >= 1200)
			fail("connect to %s: %s", argv[i + 3], strerror(errno));
		close(out);
		out = -1;
		usleep(50000);
	}
	int in = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	if (in < 0)
		fail("accept: %s", strerror(errno));
	close(ls);
	nodelay(out);
	nodelay(in);
	dprintf(log_fd, "ready\n");

	char *msg = calloc(1, (size_t)bytes), *got = malloc((size_t)bytes);
	if (!msg || !got)
		fail("out of memory");
	for (uint64_t it = 0;; it++) {
		struct head h = {.magic = MAGIC, .rank = rank, .iteration = it}, r;
		memcpy(msg, &h, sizeof(h));
		send_all(out, msg, (size_t)bytes);
		recv_all(in, got, (size_t)bytes);
		uint64_t t = realtime_ns();
		memcpy(&r, got, sizeof(r));
		if (r.magic != MAGIC || r.rank != prev || r.iteration != it)
			fail("iteration %" PRIu64 ": got rank %" PRIu32 "'s iteration %" PRIu64
			     " (magic %#" PRIx32 "), not rank %" PRIu32 "'s",
			     it, r.rank, r.iteration, r.magic, prev);
		if (dprintf(log_fd, "%" PRIu64 " %" PRIu64 "\n", it, t) < 0)
			fail("write to the log: %s", strerror(errno));
		if (mem)
			mem[(it % pages) * PAGE] = (unsigned char)it;
		if (usec > 0)
			usleep((useconds_t)usec);
	}
}
