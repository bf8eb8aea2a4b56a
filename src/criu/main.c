/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ferry-criu — CRIU's client (libcriu, protobuf-c), out of the setuid starter.
 *
 * The starter execs it from the bundle (FERRY_CRIU_HELPER, read-only, root's) inside the
 * container, after dropping to the user for good: no_new_privs, and as ambient capabilities only
 * those the step needs (CAP_CHECKPOINT_RESTORE; + CAP_SETPCAP to restore; + CAP_NET_ADMIN with
 * the container's own network; + CAP_NET_RAW to restore into a loopback-only one). It adds none; CRIU, which libcriu execs, gets the same. Options
 * and fds as src/lib/criu.h describes (FERRY_CRIU_HELPER); an error is one "E <message>" line on
 * the report fd, as the starter's own children write them.
 *
 * Restore keeps the starter's guarantees: the page images are hashed while CRIU restores and
 * compared before CRIU's post-restore notification returns (a mismatch kills the restored tree
 * before any of it ran), CRIU must report the end of the restore, every restored process must run
 * as the user without capabilities, and the restore is given up once it made no progress for
 * --timeout seconds (watchdog_run). With --dedup (a diskless migration's received copy, hashed
 * as it arrived) CRIU frees each page image as it restores from it; never with --page. */
#include <dirent.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <linux/magic.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "criu.h"
#include "fs.h"
#include "instance.h"
#include "manifest.h"
#include "tmp.h"
#include "util.h"

struct args {
	bool restore;
	pid_t pid; /* dump */
	unsigned timeout;
	unsigned ghost_limit; /* dump: MiB */
	bool leave_running, tcp, page_server, skip_in_flight, tcp_close;
	bool lazy; /* dump, restore: post-copy (--lazy) */
	bool dedup; /* restore: CRIU frees the page images as it restores (--dedup) */
	bool save_tmp; /* dump: the container's private /tmp goes with the images (--save-tmp) */
	bool hold; /* dump: wait for the starter's word once the images are written (--hold) */
	bool restore_tmp; /* restore: ... and comes back before CRIU restores (--restore-tmp) */
	struct page {
		uint64_t size;
		char sha256[65];
		const char *name;
	} * pages;
	size_t n_pages;
};

static _noreturn_ void fail(int code, struct ferry_error *err)
{
	_cleanup_free_ char *line = xasprintf("E %s\n", err && err->message ? err->message : "unknown error");
	(void)ferry_write_all(FERRY_CRIU_REPORT_FD, line, strlen(line));
	_exit(code);
}

/* "SIZE:SHA256:NAME": a decimal size, 64 lowercase hex digits, a plain file name */
static bool parse_page(char *s, struct page *ret)
{
	char *sha = strchr(s, ':');
	char *name = sha ? strchr(sha + 1, ':') : NULL;
	if (!name || name - sha != 65)
		return false;
	*sha++ = '\0';
	*name++ = '\0';
	unsigned long long size = 0;
	if (parse_uint64(s, UINT64_MAX, &size) < 0 || strspn(sha, "0123456789abcdef") != 64)
		return false;
	size_t n = strlen(name);
	if (n == 0 || n > 255 ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n)
		return false;
	ret->size = size;
	memcpy(ret->sha256, sha, 65);
	ret->name = name;
	return true;
}

static bool parse_flag(struct args *a, char **argv, int argc, int *i)
{
	unsigned long long v = 0;
	const char *o = argv[*i];
	bool has_value = *i + 1 < argc;
	if (!a->restore && streq(o, "--pid") && has_value && parse_uint64(argv[++*i], INT32_MAX, &v) >= 0 &&
	    v > 0)
		a->pid = (pid_t)v;
	else if (streq(o, "--timeout") && has_value && parse_uint64(argv[++*i], 86400, &v) >= 0 && v > 0)
		a->timeout = (unsigned)v;
	else if (!a->restore && streq(o, "--ghost-limit") && has_value &&
		 parse_uint64(argv[++*i], 4095, &v) >= 0 && v > 0)
		a->ghost_limit = (unsigned)v;
	else if (streq(o, "--tcp"))
		a->tcp = true;
	else if (!a->restore && streq(o, "--leave-running"))
		a->leave_running = true;
	else if (!a->restore && streq(o, "--page-server"))
		a->page_server = true;
	else if (streq(o, "--lazy"))
		a->lazy = true;
	else if (!a->restore && streq(o, "--skip-in-flight"))
		a->skip_in_flight = true;
	else if (a->restore && streq(o, "--tcp-close"))
		a->tcp_close = true;
	else if (a->restore && streq(o, "--dedup"))
		a->dedup = true;
	else if (!a->restore && streq(o, "--save-tmp"))
		a->save_tmp = true;
	else if (!a->restore && streq(o, "--hold"))
		a->hold = true;
	else if (a->restore && streq(o, "--restore-tmp"))
		a->restore_tmp = true;
	else if (a->restore && streq(o, "--page") && has_value && a->n_pages < FERRY_CRIU_MAX_PAGES) {
		a->pages = xrealloc(a->pages, (a->n_pages + 1) * sizeof(*a->pages));
		if (!parse_page(argv[++*i], &a->pages[a->n_pages++]))
			return false;
	} else
		return false;
	return true;
}

static bool is_dir_fd(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Strict: every option known, every value in range, every fd there and of the right kind. */
static bool parse_args(int argc, char **argv, struct args *a)
{
	if (argc < 2 || (!streq(argv[1], "dump") && !streq(argv[1], "restore")))
		return false;
	a->restore = streq(argv[1], "restore");
	for (int i = 2; i < argc; i++)
		if (!parse_flag(a, argv, argc, &i))
			return false;
	bool dump = !a->restore;
	if (a->timeout == 0 || (dump && a->pid == 0) || !is_dir_fd(FERRY_CRIU_IMAGES_FD))
		return false;
	/* a live dump's log goes to a directory of its own: CRIU keeps it open while it serves the
	 * pages, and the images are sealed meanwhile */
	if ((a->restore || a->lazy || a->hold) && !is_dir_fd(FERRY_CRIU_WORK_FD))
		return false;
	struct stat st;
	bool socket = a->page_server || (dump && a->lazy);
	if (socket && (fstat(FERRY_CRIU_PS_FD, &st) < 0 || !S_ISSOCK(st.st_mode)))
		return false;
	if (dump && a->lazy && fcntl(FERRY_CRIU_STATUS_FD, F_GETFD) < 0)
		return false;
	if (a->page_server && a->lazy) /* live: the pages are served to the lazy-pages daemon */
		return false;
	/* a group member's dump: written here, to the checkpoint, never through a page server */
	if (a->hold && (a->page_server || a->lazy || fcntl(FERRY_CRIU_HOLD_FD, F_GETFD) < 0))
		return false;
	for (size_t i = 0; i < a->n_pages; i++)
		if (fstat(FERRY_CRIU_PAGES_FD + (int)i, &st) < 0 || !S_ISREG(st.st_mode))
			return false;
	return true;
}

/* ---------------------------------------------------------------------------- dump */

/* System V IPC objects live in the instance's IPC namespace, which CRIU (running inside it, as
 * the user) does not dump: a checkpoint would silently lose them. So a dump is refused while
 * there is any, both before CRIU runs and after (while the tree is still frozen, unless
 * --leave-running), so that none created meanwhile is missed. */
static int check_sysvipc(struct ferry_error **err)
{
	static const struct {
		const char *file, *what, *remedy;
	} kinds[] = {
	    {"/proc/sysvipc/msg", "message queue", "ipcrm -q"},
	    {"/proc/sysvipc/sem", "semaphore set", "ipcrm -s"},
	    {"/proc/sysvipc/shm", "shared memory segment", "ipcrm -m"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		_cleanup_free_ char *buf = NULL;
		size_t len = 0;
		int r = ferry_read_file(kinds[i].file, 1 << 20, &buf, &len, err);
		if (r < 0)
			return ferry_error_wrap(err, "look for System V IPC objects");
		size_t lines = 0;
		for (size_t j = 0; j < len; j++)
			lines += buf[j] == '\n';
		if (lines > 1) /* the first line is the header */
			return ferry_error_msg(
			    err, EBUSY,
			    "the instance holds %zu System V %s%s, which a checkpoint cannot keep yet: "
			    "checkpoint refused (end them first: %s ID, as the workload's user)",
			    lines - 1, kinds[i].what, lines - 1 == 1 ? "" : "s", kinds[i].remedy);
	}
	return 0;
}

/* CRIU's post-dump notification: the images are written, the tree is still frozen (and its
 * network locked). Non-zero makes CRIU resume the tree and fail the dump. */
static const struct args *dump_args;
static struct ferry_error *post_dump_err;
static int post_dump(void)
{
	const struct args *a = dump_args;
	if (a->save_tmp && ferry_criu_tmp_save(FERRY_CRIU_IMAGES_FD, &post_dump_err) < 0)
		return -1;
	if (!a->hold)
		return 0;
	/* the generation is published before the tree goes on: what it holds is final here */
	if (check_sysvipc(&post_dump_err) < 0)
		return -1;
	/* the group's word: every member is held like this one before any is let go */
	char word = 0;
	ssize_t n;
	if (ferry_write_all(FERRY_CRIU_REPORT_FD, "H\n", 2) < 0)
		return ferry_error_set(&post_dump_err, errno, "report the held dump"), -1;
	while ((n = read(FERRY_CRIU_HOLD_FD, &word, 1)) < 0 && errno == EINTR)
		;
	if (n == 1 && word == 'C')
		return 0;
	ferry_error_msg(&post_dump_err, ECANCELED,
			"the group's checkpoint was given up (another member failed, or ferry stopped)");
	return -1;
}

static _noreturn_ void dump(const struct args *a)
{
	struct ferry_error *err = NULL;
	const char *config = NULL;
	if (check_sysvipc(&err) < 0)
		fail(1, err);
	if (a->lazy) /* the tree stays stopped: only the destination's word ends it */
		config = FERRY_CRIU_LAZY_STOPPED;
	else if (a->page_server)
		config = a->leave_running ? FERRY_CRIU_PS_RUNNING : FERRY_CRIU_PS_STOPPED;
	else if (!a->leave_running)
		config = FERRY_CRIU_LEAVE_STOPPED;
	struct ferry_criu_opts o = {
	    .binary = FERRY_CRIU_BIN,
	    .images_fd = FERRY_CRIU_IMAGES_FD,
	    .work_fd = a->lazy || a->hold ? FERRY_CRIU_WORK_FD : FERRY_CRIU_IMAGES_FD,
	    .log = FERRY_CRIU_DUMP_LOG,
	    .pid = a->pid,
	    .leave_running = a->leave_running,
	    .skip_in_flight = a->skip_in_flight,
	    .ghost_limit = a->ghost_limit << 20,
	    .timeout = a->timeout,
	    .config = config,
	    .tcp = a->tcp,
	    .post_dump = a->save_tmp || a->hold ? post_dump : NULL,
	};
	dump_args = a;
	if (ferry_criu_dump(&o, &err) < 0 || check_sysvipc(&err) < 0) {
		if (post_dump_err) { /* CRIU only says that its post-dump step failed: say why */
			ferry_error_free(err);
			err = TAKE_PTR(post_dump_err);
		}
		fail(1, err);
	}
	(void)ferry_write_all(FERRY_CRIU_REPORT_FD, "D\n", 2);
	_exit(0);
}

/* ------------------------------------------------------------------------- restore */

/* The page images' check while CRIU restores: a thread of ours; CRIU's post-restore
 * notification waits for it. */
static struct {
	const struct args *a;
	pthread_t thread;
	bool running, done;
	atomic_bool criu_read; /* CRIU has read every page (its post-restore notification came) */
	struct ferry_error *err;
} pages_check;

/* Restoring from a checkpoint on a disk (a migration's shared filesystem, the user's own
 * directory), CRIU reads each page image through the page cache, which would then hold the
 * instance's memory a second time beside the restored processes (charged to the node's or the
 * job's memory cgroup). The check reads the same bytes: it follows CRIU, hashing only what the
 * restored memory has grown past (the resident memory of the container's other processes, which
 * grows page by page as CRIU's reads land, even inside one large read) by CHECK_MARGIN, more
 * than any readahead window, and drops each chunk from the cache once hashed: CRIU has read it
 * by then. (Which pages are cached it cannot ask: the kernel answers cachestat and mincore
 * only to who may write the file.) If the memory, once it grew, stops growing for
 * CHECK_STALL_MS, the check stops following and hashes at full speed, dropping nothing until
 * CRIU has read every page (pages_check_drop), as it does on tmpfs, where the file is the memory
 * itself. */
#define CHECK_CHUNK (4u << 20)
#define CHECK_MARGIN (16u << 20)
#define CHECK_STALL_MS 1000

/* The resident memory (anonymous, shared, swapped) of the container's processes but ours. */
static uint64_t container_mem(void)
{
	uint64_t sum = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		unsigned long long p = 0;
		struct ferry_proc_status st;
		if (parse_uint64(de->d_name, INT32_MAX, &p) == 0 && (pid_t)p != getpid() &&
		    ferry_proc_status((pid_t)p, &st) == 0)
			sum += st.dump_kb * 1024;
	}
	if (d)
		closedir(d);
	return sum;
}

struct pace {
	bool on; /* following CRIU */
	uint64_t base; /* the container's memory when the check began */
	uint64_t hashed; /* what the check has hashed, in every page image */
};

/* Waits until the restored memory has grown by @want bytes since the check began, or CRIU has
 * read everything; false (and following stops) when it stopped growing. */
static bool pace_wait(struct pace *p, uint64_t want)
{
	uint64_t seen = 0;
	long long since = ferry_monotonic_ms();
	while (p->on && !atomic_load(&pages_check.criu_read)) {
		uint64_t mem = container_mem();
		uint64_t read = mem > p->base ? mem - p->base : 0;
		if (read >= want)
			return true;
		if (read != seen) {
			seen = read;
			since = ferry_monotonic_ms();
		} else if (seen > 0 && ferry_monotonic_ms() - since >= CHECK_STALL_MS) {
			p->on = false; /* it had grown, and stopped */
		}
		usleep(5000);
	}
	return p->on || atomic_load(&pages_check.criu_read);
}

static bool on_memory_fs(int fd)
{
	struct statfs sf;
	return fstatfs(fd, &sf) < 0 || sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC;
}

/* Hashes page image @fd into @sha (its size in *@ret_size), following CRIU when @p->on. */
static int pages_check_one(int fd, struct pace *p, uint64_t *ret_size, char sha[65], struct ferry_error **err)
{
	if (on_memory_fs(fd) || !p->on)
		return ferry_sha256_fd(fd, ret_size, sha, err);
	struct ferry_sha256 h;
	int r = ferry_sha256_begin(&h, err);
	for (uint64_t at = 0; r == 0; at = h.size) {
		bool drop = pace_wait(p, p->hashed + CHECK_CHUNK + CHECK_MARGIN);
		r = ferry_sha256_feed(&h, fd, at + CHECK_CHUNK, err);
		if (r < 0 || h.size == at)
			break; /* the end of the file */
		if (drop)
			(void)posix_fadvise(fd, (off_t)at, (off_t)(h.size - at), POSIX_FADV_DONTNEED);
		p->hashed += h.size - at;
	}
	if (r < 0) {
		ferry_sha256_abort(&h);
		return r;
	}
	*ret_size = h.size;
	return ferry_sha256_end(&h, sha, err);
}

static void *pages_check_run(void *arg)
{
	(void)arg;
	const struct args *a = pages_check.a;
	struct pace p = {.on = true, .base = container_mem()};
	for (size_t i = 0; i < a->n_pages && !pages_check.err; i++) {
		const struct page *pg = &a->pages[i];
		uint64_t size = 0;
		char sha[65];
		if (pages_check_one(FERRY_CRIU_PAGES_FD + (int)i, &p, &size, sha, &pages_check.err) < 0)
			ferry_error_wrap(&pages_check.err, "'%s'", pg->name);
		else if (size != pg->size || !streq(sha, pg->sha256))
			ferry_error_msg(&pages_check.err, EPERM,
					"file '%s' of the checkpoint was altered: the restore was stopped "
					"before any process ran",
					pg->name);
	}
	return NULL;
}

/* Entries of directory @dirfd (a duplicate is read) whose name starts with @prefix and ends
 * with @suffix, or -1. */
static long count_names(int dirfd, const char *prefix, const char *suffix)
{
	DIR *d = ferry_opendir_at(dirfd);
	if (!d)
		return -1;
	long n = 0;
	struct dirent *de;
	size_t sl = strlen(suffix);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		n += startswith(de->d_name, prefix) && l >= sl && streq(de->d_name + l - sl, suffix);
	}
	closedir(d);
	return n;
}

/* The restored set is the dumped set: the container holds as many tasks (processes and their
 * threads, zombies included) as the checkpoint has core images (CRIU writes one per task).
 * Counted at CRIU's post-restore notification, when no restored task has run yet: the
 * container's init, we and our CRIU aside. */
static int restored_set_check(struct ferry_error **err)
{
	long cores = count_names(FERRY_CRIU_IMAGES_FD, "core-", ".img"), tasks = 0;
	_cleanup_close_ int proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = ferry_opendir_at(proc);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		unsigned long long p = 0;
		struct ferry_proc_status st;
		if (parse_uint64(de->d_name, INT32_MAX, &p) < 0 || p == 1 || (pid_t)p == getpid() ||
		    ferry_proc_status((pid_t)p, &st) < 0 || st.ppid == getpid())
			continue;
		char path[32];
		snprintf(path, sizeof(path), "%llu/task", p);
		_cleanup_close_ int task = openat(proc, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		long n = task < 0 ? -1 : count_names(task, "", "");
		tasks += n > 2 ? n - 2 : 0; /* "." and ".." */
	}
	if (d)
		closedir(d);
	if (cores < 0 || !d)
		return ferry_error_set(err, errno, "count the restored processes");
	if (tasks != cores)
		return ferry_error_msg(
		    err, EIO,
		    "the restore brought back %ld task%s but the checkpoint holds %ld: restore "
		    "refused",
		    tasks, tasks == 1 ? "" : "s", cores);
	return 0;
}

/* CRIU's post-restore notification: every page is in place and no restored process has run.
 * Non-zero makes CRIU kill the restored tree. */
static void pages_check_join(void)
{
	atomic_store(&pages_check.criu_read, true);
	if (pages_check.running) {
		pthread_join(pages_check.thread, NULL);
		pages_check.running = false;
	}
}

/* Once CRIU has read every page: none of a page image on a disk stays in the page cache (what
 * the check did not drop as it went, having stopped following CRIU). */
static void pages_check_drop(void)
{
	const struct args *a = pages_check.a;
	for (size_t i = 0; a && i < a->n_pages; i++)
		if (!on_memory_fs(FERRY_CRIU_PAGES_FD + (int)i))
			(void)posix_fadvise(FERRY_CRIU_PAGES_FD + (int)i, 0, 0, POSIX_FADV_DONTNEED);
}

static int pages_check_wait(void)
{
	pages_check_join();
	pages_check_drop();
	if (!pages_check.done && !pages_check.err)
		restored_set_check(&pages_check.err);
	pages_check.done = true;
	return pages_check.err ? -1 : 0;
}

/* The restore's limit is on idleness: it is given up once 'criu timeout' seconds pass in which
 * no process of the container (CRIU, the tasks it restores, our check of the pages) read or
 * wrote a byte, never because a large restore (from a slow shared disk) takes long. What moved
 * is the sum of rchar and wchar of /proc/PID/io (the kernel's counters) of every process in
 * the container's pid namespace but ours (this very scan reads files): any change counts. */
static uint64_t container_io(void)
{
	uint64_t sum = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		unsigned long long p = 0, v = 0;
		/* not us: reading these files is I/O of our own */
		if (parse_uint64(de->d_name, INT32_MAX, &p) < 0 || (pid_t)p == getpid())
			continue;
		char path[48], buf[512];
		snprintf(path, sizeof(path), "/proc/%llu/io", p);
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
			if ((startswith(l, "rchar: ") || startswith(l, "wchar: ")) &&
			    sscanf(l + 7, "%llu", &v) == 1)
				sum += v;
	}
	if (d)
		closedir(d);
	return sum;
}

static struct {
	unsigned timeout;
	int stop[2];
	pthread_t thread;
	bool running;
} watchdog = {.stop = {-1, -1}};

static void *watchdog_run(void *arg)
{
	(void)arg;
	uint64_t seen = container_io();
	long long deadline = ferry_monotonic_ms() + (long long)watchdog.timeout * 1000;
	struct pollfd p = {.fd = watchdog.stop[0], .events = POLLIN};
	while (poll(&p, 1, 250) <= 0) {
		uint64_t now = container_io();
		if (now != seen) {
			seen = now;
			deadline = ferry_monotonic_ms() + (long long)watchdog.timeout * 1000;
		} else if (ferry_monotonic_ms() >= deadline) {
			char msg[128];
			int n = snprintf(
			    msg, sizeof(msg),
			    "E CRIU restore made no progress for %u s ('criu timeout' in ferry.conf)\n",
			    watchdog.timeout);
			(void)!write(FERRY_CRIU_REPORT_FD, msg, (size_t)n);
			kill(0, SIGKILL);
		}
	}
	return NULL;
}

static void watchdog_start(unsigned timeout)
{
	watchdog.timeout = timeout;
	if (pipe2(watchdog.stop, O_CLOEXEC) < 0 ||
	    pthread_create(&watchdog.thread, NULL, watchdog_run, NULL) != 0) {
		struct ferry_error *err = NULL;
		ferry_error_set(&err, errno, "start the restore's watchdog");
		fail(255, err);
	}
	watchdog.running = true;
}

static void watchdog_stop(void)
{
	if (!watchdog.running)
		return;
	(void)!write(watchdog.stop[1], "x", 1);
	pthread_join(watchdog.thread, NULL);
	watchdog.running = false;
}

static bool creds_ok(pid_t pid, uid_t uid, gid_t gid)
{
	struct ferry_proc_status st;
	int r = ferry_proc_status(pid, &st);
	if (r == -ESRCH)
		return true; /* gone */
	if (r < 0)
		return false;
	if (st.state == 'Z')
		return true; /* a zombie runs no code (and keeps the restorer's credentials) */
	for (int i = 0; i < 4; i++)
		if (st.uid[i] != uid || st.gid[i] != gid || st.caps[i] != 0)
			return false;
	return true;
}

/* Trust, but verify: every thread of a restored process @pid is the user's (ours: the starter
 * dropped to the user for good before it ran us), without capabilities. /proc/PID/status shows
 * the leader's credentials alone, and CRIU gives each thread those of its own image. */
static bool restored_creds_ok(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT; /* gone */
	bool ok = true;
	struct dirent *de;
	while (ok && (de = readdir(d))) {
		unsigned long long t = 0;
		if (parse_uint64(de->d_name, INT32_MAX, &t) == 0)
			ok = creds_ok((pid_t)t, getuid(), getgid());
	}
	closedir(d);
	return ok;
}

/* @fn for every process now in the container but its init and ours (the starter dropped to the
 * user for good before it ran us), until it returns false; false then, or when /proc cannot be
 * read. @resuming: CRIU's pre-resume, where CRIU itself (our child, with its capabilities) is
 * there too and is skipped: its restored tasks are its children, never ours. */
static bool each_restored(bool resuming, bool (*fn)(pid_t))
{
	DIR *d = opendir("/proc");
	if (!d)
		return false;
	bool ok = true;
	struct dirent *de;
	struct ferry_proc_status st;
	while (ok && (de = readdir(d))) {
		unsigned long long p = 0;
		if (parse_uint64(de->d_name, INT32_MAX, &p) < 0 || p == 1 || (pid_t)p == getpid())
			continue;
		if (resuming && ferry_proc_status((pid_t)p, &st) == 0 && st.ppid == getpid())
			continue;
		ok = fn((pid_t)p);
	}
	closedir(d);
	return ok;
}

static bool restored_stop(pid_t pid)
{
	kill(pid, SIGSTOP);
	return true;
}

/* A restored thread with credentials beyond the user's (a core image's, signed because CRIU
 * wrote it: the dumped process's memory, where CRIU's parasite put what it reported, is the
 * user's to write) never runs a step: at pre-resume every task is stopped with its credentials
 * applied. CRIU goes on whatever this returns, and is in the middle of our exchange: the restored
 * tasks get a SIGSTOP, which stops them as soon as CRIU lets them go, before they run an
 * instruction of theirs, and they are killed once CRIU is done. */
static bool creds_refused;
static void creds_check_before_resume(void)
{
	if (!each_restored(true, restored_creds_ok)) {
		creds_refused = true;
		(void)each_restored(true, restored_stop);
	}
}

static _noreturn_ void restore(const struct args *a)
{
	struct ferry_error *err = NULL;
	/* the files the restored processes hold in /tmp must be there before CRIU opens them */
	if (a->restore_tmp && ferry_criu_tmp_restore(FERRY_CRIU_IMAGES_FD, &err) < 0)
		fail(255, err);
	watchdog_start(a->timeout);
	struct ferry_criu_opts o = {
	    .binary = FERRY_CRIU_BIN,
	    .images_fd = FERRY_CRIU_IMAGES_FD,
	    .work_fd = FERRY_CRIU_WORK_FD,
	    .log = FERRY_CRIU_RESTORE_LOG,
	    .timeout = a->timeout,
	    .tcp = a->tcp,
	    .tcp_close = a->tcp_close,
	    .post_restore = pages_check_wait,
	    .pre_resume = creds_check_before_resume,
	    /* live: the lazily dumped memory comes from the lazy-pages daemon, over the transfer's
	     * channel (authenticated there); the page images hold only the rest, checked as ever */
	    .config = a->lazy ? FERRY_CRIU_LAZY_RESTORE : NULL,
	    .auto_dedup = a->dedup,
	};
	pages_check.a = a;
	if (a->n_pages > 0) {
		int e = pthread_create(&pages_check.thread, NULL, pages_check_run, NULL);
		if (e != 0) {
			ferry_error_set(&err, e, "start checking the checkpoint's pages");
			fail(255, err);
		}
		pages_check.running = true;
	}
	pid_t pid = 0;
	int restored = ferry_criu_restore(&o, &pid, &err);
	if (creds_refused)
		kill(-1, SIGKILL);
	if (restored < 0 || creds_refused) {
		/* an altered page image is the reason CRIU failed when there is one (else CRIU's
		 * own error: no restored set to compare) */
		pages_check_join();
		if (pages_check.err) {
			ferry_error_free(err);
			err = TAKE_PTR(pages_check.err);
		}
		if (creds_refused) {
			ferry_error_free(err);
			err = NULL;
			ferry_error_msg(
			    &err, EPERM,
			    "a restored task would run with credentials beyond yours (uid, gid or "
			    "capabilities): restore refused, nothing of it ran");
		}
		fail(255, err);
	}
	watchdog_stop();
	if (!pages_check.done || pages_check.err) {
		/* CRIU resumed the tree without asking: nothing unverified may run */
		kill(-1, SIGKILL);
		ferry_error_msg(&err, EIO, "CRIU did not report the end of the restore: restore refused");
		fail(255, err);
	}
	if (!each_restored(false, restored_creds_ok)) {
		kill(-1, SIGKILL);
		ferry_error_msg(
		    &err, EPERM,
		    "a restored process does not run as you without capabilities: restore refused");
		fail(255, err);
	}
	char line[32];
	int n = snprintf(line, sizeof(line), "%d", (int)pid);
	(void)ferry_write_all(FERRY_CRIU_PID_FD, line, (size_t)n);
	_exit(0);
}

int main(int argc, char **argv)
{
	struct args a = {0};
	/* OpenSSL (the pages' SHA-256) reads no configuration: inside the container its path
	 * would be the image's (the bundle's libcrypto has its compiled-in paths closed too) */
	OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
	if (fcntl(FERRY_CRIU_REPORT_FD, F_GETFD) < 0) {
		fprintf(stderr, "ferry-criu is run by ferry-starter, not directly\n");
		return 2;
	}
	if (!parse_args(argc, argv, &a)) {
		struct ferry_error *err = NULL;
		ferry_error_msg(&err, EINVAL,
				"ferry-criu: the starter's arguments or fds are not as expected");
		fail(2, err);
	}
	/* a page image we hash while CRIU reads it must stay whole: a hole CRIU punched in it
	 * reads as zeros, and the check would fail a sound restore */
	if (a.dedup && a.n_pages > 0) {
		struct ferry_error *err = NULL;
		ferry_error_msg(&err, EINVAL,
				"ferry-criu: --dedup and --page exclude each other (a page image that is "
				"checked while CRIU restores must not lose its pages)");
		fail(2, err);
	}
	/* CRIU gets only what it needs: the page server's socket (named in its config); it reads
	 * the directories through /proc/PID/fd, which needs us dumpable (it holds the same
	 * capabilities, so the user's other processes still cannot ptrace us) */
	for (int fd = FERRY_CRIU_IMAGES_FD; fd <= FERRY_CRIU_PID_FD; fd++)
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	(void)fcntl(FERRY_CRIU_HOLD_FD, F_SETFD, FD_CLOEXEC);
	for (size_t i = 0; i < a.n_pages; i++)
		(void)fcntl(FERRY_CRIU_PAGES_FD + (int)i, F_SETFD, FD_CLOEXEC);
	(void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	if (a.restore)
		restore(&a);
	dump(&a);
}
