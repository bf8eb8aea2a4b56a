/* SPDX-License-Identifier: GPL-2.0-or-later */
/* stateful — a checkpoint/restore test workload in the style of CRIU's zdtm tests.
 *
 * It sets up state, reports progress, and checks its own state at every step, so that a restore
 * that loses or corrupts anything is seen by the workload itself:
 *   - MB megabytes of memory (default 300) in 1 MiB chunks filled with a deterministic pattern,
 *     a checksum recorded for each chunk; every step rewrites one chunk with a new pattern (the
 *     state moves on) and re-verifies a rotating slice of the chunks (the whole memory every few
 *     seconds), so a step stays short;
 *   - a step counter (and a run id drawn at start: a restored process keeps it, a fresh start
 *     does not);
 *   - --threads K: K threads, each with its own counter and its own slice of the memory;
 *   - --tree: two children connected by a pipe (parent -> child) and a unix socketpair (child ->
 *     parent), and a grandchild connected to its child by a socketpair; tokens with sequence
 *     numbers go round every step, so a broken pipe or socket after restore is seen;
 *   - SIGUSR1 flips one bit of the memory: the next step must report FAIL (the checker works);
 *   - --tcp (or SIGUSR2, later): also holds an established TCP connection on 127.0.0.1 (to
 *     itself), which CRIU refuses to dump without --tcp-established: a way to make a dump fail.
 *
 * Every step writes "step <counter> ok <checksum> run <id> full <passes> [threads c1,c2,..]
 * [tree <seq>] [tcp]" to PROGRESS (a temporary file renamed over it) and, as a line, to stdout (an
 * instance's log, which follows the instance across a restore under another name). On any
 * mismatch it writes "FAIL <why>" to both and exits 1. It makes no assumption about its pid or
 * about time: a restore may happen at any instruction, after any pause.
 *
 * Usage: stateful [--mb N] [--interval MS] [--verify CHUNKS] [--threads K] [--tree] [--tcp]
 *                  [--compressible] [--until N [--status S]] PROGRESS
 *   --mb N          memory in MiB (default 300)
 *   --until N       end after step N, with exit status S (default 0), once the whole memory is
 *                   verified (a program that ends by itself, for resumable runs)
 *   --interval MS   pause between steps (default 200)
 *   --verify CHUNKS 1 MiB chunks re-verified per step, per thread (default 64)
 *   --threads K     K worker threads besides the main one (default 0)
 *   --compressible  memory that compresses (7 words in 8 predictable); default: random */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1u << 20)
#define WORDS (CHUNK / sizeof(uint64_t))
#define MAX_THREADS 64
#define TREE_CHILDREN 2

static const char *progress_path;
static size_t verify_per_step = 64; /* chunks checked per step, per thread (--verify) */
static uint64_t run_id;
static atomic_int failed;
static volatile sig_atomic_t corrupt_requested; /* SIGUSR1: prove that a bad byte is caught */

static volatile sig_atomic_t tcp_requested; /* SIGUSR2: open the TCP connection (--tcp) now */

static void on_usr1(int sig)
{
	(void)sig;
	corrupt_requested = 1;
}

static void on_usr2(int sig)
{
	(void)sig;
	tcp_requested = 1;
}

/* ------------------------------------------------------------------ output */

static void write_full(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

/* PROGRESS.tmp.XXXXXX then rename: readers always see a whole line. mkstemp, not a pid-based
 * name: a copy restored next to the original (--leave-running) has the same pid. */
static void write_progress(const char *line)
{
	size_t len = strlen(line);
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", progress_path) >= (int)sizeof(tmp))
		return;
	int fd = mkstemp(tmp);
	if (fd >= 0) {
		write_full(fd, line, len);
		close(fd);
		if (rename(tmp, progress_path) < 0)
			unlink(tmp);
	}
	write_full(STDOUT_FILENO, line, len);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	char why[512], line[640];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "FAIL %s\n", why);
	/* only the first failure is reported (threads may fail together) */
	if (atomic_exchange(&failed, 1) == 0) {
		write_progress(line);
		write_full(STDERR_FILENO, line, strlen(line));
	}
	_exit(1);
}

/* ------------------------------------------------------------------ memory */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t chunk_sum(const uint64_t *w)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < WORDS; i++) {
		h ^= w[i];
		h *= 0x100000001b3ULL;
		h ^= h >> 29;
	}
	return h;
}

/* A slice of the memory and what it must hold. */
struct slice {
	uint64_t *mem;
	size_t nchunks;
	uint64_t *sums; /* expected checksum of each chunk */
	uint64_t *gens; /* generation each chunk was last written with */
	size_t next_verify, next_write;
	uint64_t passes; /* full verification passes completed */
	uint64_t tag; /* distinguishes slices */
};

/* --compressible: 7 words in 8 are the word's index, so that a chunk compresses (zstd makes it
 * some 5 times smaller); by default every word is random, and nothing compresses */
static int compressible;

static void fill_chunk(struct slice *s, size_t c, uint64_t gen)
{
	uint64_t *w = s->mem + c * WORDS;
	uint64_t x = (s->tag << 48) ^ ((uint64_t)c << 20) ^ (gen * 0x2545f4914f6cdd1dULL);
	for (size_t i = 0; i < WORDS; i++)
		w[i] = compressible && i % 8 ? (uint64_t)i : splitmix64(&x);
	s->gens[c] = gen;
	s->sums[c] = chunk_sum(w);
}

static void slice_init(struct slice *s, uint64_t *mem, size_t nchunks, uint64_t tag)
{
	s->mem = mem;
	s->nchunks = nchunks;
	s->tag = tag;
	s->sums = calloc(nchunks ? nchunks : 1, sizeof(uint64_t));
	s->gens = calloc(nchunks ? nchunks : 1, sizeof(uint64_t));
	if (!s->sums || !s->gens)
		fail("out of memory");
	for (size_t c = 0; c < nchunks; c++)
		fill_chunk(s, c, 0);
}

/* One step of a slice: rewrite one chunk (the state moves on), verify the next few. */
static void slice_step(struct slice *s, uint64_t counter)
{
	if (s->nchunks == 0)
		return;
	fill_chunk(s, s->next_write, counter);
	s->next_write = (s->next_write + 1) % s->nchunks;
	size_t n = s->nchunks < verify_per_step ? s->nchunks : verify_per_step;
	for (size_t i = 0; i < n; i++) {
		size_t c = s->next_verify;
		uint64_t got = chunk_sum(s->mem + c * WORDS);
		if (got != s->sums[c])
			fail("memory slice %llu chunk %zu (generation %llu): checksum %016llx, expected %016llx",
			     (unsigned long long)s->tag, c, (unsigned long long)s->gens[c],
			     (unsigned long long)got, (unsigned long long)s->sums[c]);
		if (++s->next_verify == s->nchunks) {
			s->next_verify = 0;
			s->passes++;
		}
	}
}

static void slice_verify_all(const struct slice *s)
{
	for (size_t c = 0; c < s->nchunks; c++)
		if (chunk_sum(s->mem + c * WORDS) != s->sums[c])
			fail("memory slice %llu chunk %zu: checksum mismatch at the end", (unsigned long long)s->tag, c);
}

static uint64_t slice_checksum(const struct slice *s)
{
	uint64_t h = 0;
	for (size_t c = 0; c < s->nchunks; c++)
		h = (h ^ s->sums[c]) * 0x100000001b3ULL + c;
	return h;
}

/* ------------------------------------------------------------------ time */

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ threads */

struct worker {
	pthread_t thread;
	struct slice slice;
	_Atomic uint64_t counter;
	_Atomic uint64_t checksum;
	_Atomic uint64_t passes;
	unsigned interval;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	for (;;) {
		uint64_t c = atomic_load(&w->counter) + 1;
		slice_step(&w->slice, c);
		atomic_store(&w->checksum, slice_checksum(&w->slice));
		atomic_store(&w->passes, w->slice.passes);
		atomic_store(&w->counter, c);
		sleep_ms(w->interval);
	}
	return NULL;
}

/* ------------------------------------------------------------------ process tree */

/* Reads exactly one uint64 from @fd, waiting through poll timeouts: after a restore the
 * monotonic clock has jumped, so one timeout proves nothing; many in a row mean the peer is
 * gone. Returns 0, or -1 on EOF/error. */
static int read_token(int fd, uint64_t *v, const char *what)
{
	unsigned char *p = (unsigned char *)v;
	size_t got = 0;
	int idle = 0;
	while (got < sizeof(*v)) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int r = poll(&pfd, 1, 1000);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {
			if (++idle >= 30)
				fail("%s: no token for 30 s", what);
			continue;
		}
		ssize_t n = read(fd, p + got, sizeof(*v) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static int write_token(int fd, uint64_t v)
{
	const unsigned char *p = (const unsigned char *)&v;
	size_t done = 0;
	while (done < sizeof(v)) {
		ssize_t n = write(fd, p + done, sizeof(v) - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

/* The grandchild: answers tokens on its socket with token + 1000. */
static void grandchild_loop(int sock)
{
	uint64_t want = 1, v;
	for (;;) {
		if (read_token(sock, &v, "grandchild socket") < 0)
			_exit(0); /* the child is gone: so are we */
		if (v != want)
			fail("grandchild: token %llu on its socket, expected %llu", (unsigned long long)v,
			     (unsigned long long)want);
		if (write_token(sock, v + 1000) < 0)
			_exit(0);
		want++;
	}
}

/* Child @i: reads token n from the pipe, (child 0) asks its grandchild, answers n + 1 on its
 * socket to the parent. */
static void child_loop(int i, int in_pipe, int sock, int gsock)
{
	uint64_t want = 1, v, g;
	char what[64];
	snprintf(what, sizeof(what), "child %d pipe", i);
	for (;;) {
		if (read_token(in_pipe, &v, what) < 0)
			_exit(0); /* the parent is gone */
		if (v != want)
			fail("child %d: token %llu on its pipe, expected %llu", i, (unsigned long long)v,
			     (unsigned long long)want);
		if (gsock >= 0) {
			if (write_token(gsock, v) < 0 || read_token(gsock, &g, "child 0 socket to grandchild") < 0)
				fail("child %d: the socket to its grandchild broke", i);
			if (g != v + 1000)
				fail("child %d: grandchild answered %llu to %llu", i, (unsigned long long)g,
				     (unsigned long long)v);
		}
		if (write_token(sock, v + 1) < 0)
			_exit(0);
		want++;
	}
}

struct tree {
	int to_child[TREE_CHILDREN]; /* pipe write ends */
	int from_child[TREE_CHILDREN]; /* socketpair ends */
	uint64_t seq;
};

static void tree_start(struct tree *t)
{
	for (int i = 0; i < TREE_CHILDREN; i++) {
		int p[2], sp[2], gp[2] = {-1, -1};
		if (pipe(p) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
			fail("pipe/socketpair: %s", strerror(errno));
		pid_t pid = fork();
		if (pid < 0)
			fail("fork: %s", strerror(errno));
		if (pid == 0) {
			close(p[1]);
			close(sp[0]);
			for (int j = 0; j < i; j++) {
				close(t->to_child[j]);
				close(t->from_child[j]);
			}
			if (i == 0) {
				if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, gp) < 0)
					fail("socketpair: %s", strerror(errno));
				pid_t g = fork();
				if (g < 0)
					fail("fork: %s", strerror(errno));
				if (g == 0) {
					close(p[0]);
					close(sp[1]);
					close(gp[0]);
					grandchild_loop(gp[1]);
				}
				close(gp[1]);
			}
			child_loop(i, p[0], sp[1], gp[0]);
		}
		close(p[0]);
		close(sp[1]);
		t->to_child[i] = p[1];
		t->from_child[i] = sp[0];
	}
	t->seq = 0;
}

static void tree_step(struct tree *t)
{
	uint64_t n = t->seq + 1;
	for (int i = 0; i < TREE_CHILDREN; i++)
		if (write_token(t->to_child[i], n) < 0)
			fail("the pipe to child %d broke: %s", i, strerror(errno));
	for (int i = 0; i < TREE_CHILDREN; i++) {
		uint64_t v;
		char what[64];
		snprintf(what, sizeof(what), "socket from child %d", i);
		if (read_token(t->from_child[i], &v, what) < 0)
			fail("the socket from child %d broke", i);
		if (v != n + 1)
			fail("child %d answered %llu to token %llu", i, (unsigned long long)v,
			     (unsigned long long)n);
	}
	t->seq = n;
}

/* ------------------------------------------------------------------ tcp */

static int tcp_fds[3] = {-1, -1, -1};

static void tcp_start(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &len) < 0)
		fail("tcp listen: %s", strerror(errno));
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
		fail("tcp connect: %s", strerror(errno));
	int s = accept(l, NULL, NULL);
	if (s < 0)
		fail("tcp accept: %s", strerror(errno));
	tcp_fds[0] = l;
	tcp_fds[1] = c;
	tcp_fds[2] = s;
}

/* ------------------------------------------------------------------ main */

static void usage(void)
{
	fputs("usage: stateful [--mb N] [--interval MS] [--verify CHUNKS] [--threads K] [--tree] [--tcp] [--compressible]"
	      " [--until N [--status S]] PROGRESS\n",
	      stderr);
	exit(2);
}

static unsigned long arg_num(const char *s, unsigned long max)
{
	char *end = NULL;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || !end || *end || end == s || v > max)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	unsigned long mb = 300, interval = 200, nthreads = 0, until = 0, status = 0;
	int tree_mode = 0, tcp_mode = 0, i;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--mb") && i + 1 < argc)
			mb = arg_num(argv[++i], 1UL << 20);
		else if (!strcmp(argv[i], "--interval") && i + 1 < argc)
			interval = arg_num(argv[++i], 60000);
		else if (!strcmp(argv[i], "--verify") && i + 1 < argc)
			verify_per_step = arg_num(argv[++i], 1UL << 20);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			nthreads = arg_num(argv[++i], MAX_THREADS);
		else if (!strcmp(argv[i], "--until") && i + 1 < argc)
			until = arg_num(argv[++i], ULONG_MAX);
		else if (!strcmp(argv[i], "--status") && i + 1 < argc)
			status = arg_num(argv[++i], 255);
		else if (!strcmp(argv[i], "--tree"))
			tree_mode = 1;
		else if (!strcmp(argv[i], "--tcp"))
			tcp_mode = 1;
		else if (!strcmp(argv[i], "--compressible"))
			compressible = 1;
		else
			usage();
	}
	if (i != argc - 1)
		usage();
	progress_path = argv[i];
	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, on_usr1);
	signal(SIGUSR2, on_usr2);
	if (getrandom(&run_id, sizeof(run_id), 0) != sizeof(run_id))
		run_id = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	run_id &= 0xffffffffffffULL;

	size_t total = (size_t)mb;
	uint64_t *mem = NULL;
	if (total) {
		mem = mmap(NULL, total * CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED)
			fail("mmap %zu MB: %s", total, strerror(errno));
	}

	/* the main thread keeps the whole memory, or, with threads, a share like theirs */
	size_t parts = nthreads + 1, per = total / parts;
	struct slice main_slice;
	slice_init(&main_slice, mem, total - per * nthreads, 0);
	static struct worker workers[MAX_THREADS];
	for (unsigned long t = 0; t < nthreads; t++) {
		struct worker *w = &workers[t];
		slice_init(&w->slice, mem + (main_slice.nchunks + per * t) * WORDS, per, t + 1);
		w->interval = (unsigned)interval;
		atomic_store(&w->checksum, slice_checksum(&w->slice));
	}
	struct tree tree;
	if (tree_mode)
		tree_start(&tree);
	if (tcp_mode)
		tcp_start();
	for (unsigned long t = 0; t < nthreads; t++)
		if (pthread_create(&workers[t].thread, NULL, worker_main, &workers[t]) != 0)
			fail("pthread_create failed");

	uint64_t counter = 0;
	for (;;) {
		counter++;
		if (corrupt_requested && main_slice.nchunks) {
			corrupt_requested = 0;
			((volatile unsigned char *)(main_slice.mem + main_slice.next_verify * WORDS))[4097] ^= 0x40;
		}
		slice_step(&main_slice, counter);
		if (tree_mode)
			tree_step(&tree);
		if (tcp_requested && !tcp_mode) {
			tcp_start();
			tcp_mode = 1;
		}
		if (tcp_mode) {
			uint64_t v;
			if (write_token(tcp_fds[1], counter) < 0 || read_token(tcp_fds[2], &v, "tcp") < 0 ||
			    v != counter)
				fail("the tcp connection broke");
		}
		uint64_t sum = slice_checksum(&main_slice), passes = main_slice.passes;
		char extra[64 * 24 + 64] = "";
		size_t off = 0;
		if (nthreads) {
			off += (size_t)snprintf(extra + off, sizeof(extra) - off, " threads ");
			for (unsigned long t = 0; t < nthreads; t++) {
				struct worker *w = &workers[t];
				uint64_t wp = atomic_load(&w->passes);
				sum = (sum ^ atomic_load(&w->checksum)) * 0x100000001b3ULL;
				passes = wp < passes ? wp : passes;
				off += (size_t)snprintf(extra + off, sizeof(extra) - off, "%s%llu", t ? "," : "",
							(unsigned long long)atomic_load(&w->counter));
			}
		}
		if (tree_mode)
			off += (size_t)snprintf(extra + off, sizeof(extra) - off, " tree %llu",
						(unsigned long long)tree.seq);
		if (tcp_mode)
			snprintf(extra + off, sizeof(extra) - off, " tcp");
		char line[sizeof(extra) + 128];
		snprintf(line, sizeof(line), "step %llu ok %016llx run %012llx full %llu%s\n",
			 (unsigned long long)counter, (unsigned long long)sum, (unsigned long long)run_id,
			 (unsigned long long)passes, extra);
		write_progress(line);
		if (until && counter >= until) {
			/* the whole memory once more: what ends is what was kept all along */
			slice_verify_all(&main_slice);
			snprintf(line, sizeof(line), "done %llu ok run %012llx status %lu\n",
				 (unsigned long long)counter, (unsigned long long)run_id, status);
			write_progress(line);
			exit((int)status);
		}
		sleep_ms((unsigned)interval);
	}
}
