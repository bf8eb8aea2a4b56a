/* SPDX-License-Identifier: GPL-2.0-or-later */
/* floor_io — the physical floors of ferry's benchmarks (bench/lib/baselines.bash): how fast this
 * machine can move the bytes a checkpoint is made of, measured the way CRIU moves them.
 *
 *   floor_io fresh FILE         read FILE into newly mmapped anonymous memory (first touch
 *                               included, as CRIU's restorer reads pages into fresh mappings)
 *   floor_io write FILE BYTES   write BYTES of incompressible data to a new FILE, each 4 MiB
 *                               handed to writeback at once (sync_file_range), then fsync: the
 *                               disk's synced write rate (a checkpoint only counts once on disk)
 *   floor_io read FILE          drop FILE's cached pages (POSIX_FADV_DONTNEED), then read it
 *                               cold into a reused buffer
 *
 * Each prints one line "BYTES NANOSECONDS" (CLOCK_MONOTONIC, open to close) on stdout; errors go
 * to stderr with exit status 1.
 *
 *   floor_io drop FILE...       write back and drop the cached pages of each FILE: the next
 *                               read of it comes from the disk (prints nothing)
 *   floor_io time CMD [ARG...]  run CMD (PATH searched) and write "NANOSECONDS STATUS START" to
 *                               fd 3 (stderr when fd 3 is not open): its wall time from fork to
 *                               reaped (CLOCK_MONOTONIC), its exit status (128+N if killed by
 *                               signal N) and when it started (CLOCK_REALTIME, ns since the
 *                               epoch, to line up with file times). CMD gets stdio, not fd 3.
 *                               Exits with CMD's status. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUF (4u << 20) /* write/read unit: 4 MiB, like CRIU's page pipes */
#define POOL (256u << 20) /* random data written over and over */

/* "floor_io: WHAT 'ARG': strerror(errno)" and exit 1 */
static void die(const char *what, const char *arg)
{
	int e = errno;
	fprintf(stderr, "floor_io: %s '%s': %s\n", what, arg, strerror(e));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* read(2) until @len bytes or end of file; returns the bytes read */
static size_t read_full(int fd, char *buf, size_t len, const char *path)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got > (1u << 30) ? (1u << 30) : len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("read", path);
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return got;
}

static int cmd_fresh(const char *path)
{
	uint64_t t0 = now_ns();
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		die("open", path);
	size_t len = (size_t)st.st_size;
	if (len == 0) {
		errno = EINVAL;
		die("empty file", path);
	}
	char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap for", path);
	size_t got = read_full(fd, mem, len, path);
	close(fd);
	uint64_t t1 = now_ns();
	munmap(mem, len);
	printf("%zu %" PRIu64 "\n", got, t1 - t0);
	return 0;
}

/* xorshift64*: incompressible to any filesystem or device, and far faster than the disk */
static void fill_random(uint64_t *w, size_t words, uint64_t *state)
{
	uint64_t x = *state;
	for (size_t i = 0; i < words; i++) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		w[i] = x * 0x2545F4914F6CDD1DULL;
	}
	*state = x;
}

static int cmd_write(const char *path, const char *bytes_arg)
{
	char *end = NULL;
	errno = 0;
	unsigned long long total = strtoull(bytes_arg, &end, 10);
	if (errno || !end || *end || total == 0) {
		errno = EINVAL;
		die("bad byte count", bytes_arg);
	}
	/* the data is made before the clock starts: a pool of up to POOL random bytes, written
	 * over and over (no device or filesystem here compresses or deduplicates) */
	size_t pool = total < POOL ? (size_t)((total + BUF - 1) / BUF * BUF) : POOL;
	uint64_t *buf = aligned_alloc(4096, pool);
	uint64_t state = 0;
	if (!buf)
		die("malloc", "buffer");
	if (getrandom(&state, sizeof(state), 0) != sizeof(state) || state == 0)
		state = 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid();
	fill_random(buf, pool / sizeof(uint64_t), &state);
	unlink(path);
	uint64_t t0 = now_ns();
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		die("create", path);
	unsigned long long done = 0;
	while (done < total) {
		size_t at = (size_t)(done % pool);
		size_t len = total - done < BUF ? (size_t)(total - done) : BUF;
		if (len > pool - at)
			len = pool - at;
		ssize_t n = write(fd, (char *)buf + at, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write", path);
		/* start the writeback of what was just written: the disk works while we write on, as
		 * it would under a steady writer, instead of after the page cache has taken it all */
		(void)sync_file_range(fd, (off_t)done, n, SYNC_FILE_RANGE_WRITE);
		done += (size_t)n;
	}
	if (fsync(fd) < 0)
		die("fsync", path);
	if (close(fd) < 0)
		die("close", path);
	uint64_t t1 = now_ns();
	free(buf);
	printf("%llu %" PRIu64 "\n", done, t1 - t0);
	return 0;
}

static void drop_cache(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		die("open", path);
	/* clean pages go at once; dirty ones would not: write them back first */
	if (fdatasync(fd) < 0 && errno != EINVAL && errno != EROFS)
		die("fdatasync", path);
	int r = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (r != 0) {
		errno = r;
		die("posix_fadvise", path);
	}
	close(fd);
}

static int cmd_read(const char *path)
{
	drop_cache(path);
	char *buf = aligned_alloc(4096, BUF);
	if (!buf)
		die("malloc", "buffer");
	memset(buf, 0, BUF); /* touched before the clock starts */
	uint64_t t0 = now_ns();
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open", path);
	unsigned long long total = 0;
	for (;;) {
		size_t n = read_full(fd, buf, BUF, path);
		total += n;
		if (n < BUF)
			break;
	}
	close(fd);
	uint64_t t1 = now_ns();
	free(buf);
	printf("%llu %" PRIu64 "\n", total, t1 - t0);
	return 0;
}

static int cmd_time(char **cmd)
{
	int out = fcntl(3, F_GETFD) >= 0 ? 3 : 2;
	if (out == 3)
		fcntl(3, F_SETFD, FD_CLOEXEC);
	struct timespec real;
	clock_gettime(CLOCK_REALTIME, &real);
	uint64_t t0 = now_ns();
	pid_t pid = fork();
	if (pid < 0)
		die("fork", cmd[0]);
	if (pid == 0) {
		execvp(cmd[0], cmd);
		fprintf(stderr, "floor_io: exec '%s': %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			die("waitpid", cmd[0]);
	uint64_t t1 = now_ns();
	int status = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	dprintf(out, "%" PRIu64 " %d %" PRIu64 "\n", t1 - t0, status,
		(uint64_t)real.tv_sec * 1000000000u + (uint64_t)real.tv_nsec);
	return status;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "time"))
		return cmd_time(argv + 2);
	if (argc == 3 && !strcmp(argv[1], "fresh"))
		return cmd_fresh(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "write"))
		return cmd_write(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "read"))
		return cmd_read(argv[2]);
	if (argc >= 3 && !strcmp(argv[1], "drop")) {
		for (int i = 2; i < argc; i++)
			drop_cache(argv[i]);
		return 0;
	}
	fprintf(stderr, "usage: floor_io fresh F | write F BYTES | read F | drop F... | time CMD...\n");
	return 2;
}
