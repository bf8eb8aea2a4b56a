/* SPDX-License-Identifier: GPL-2.0-or-later */
/* checkpoint.c — dump, restore and delete checkpoints, with the least privilege that works.
 *
 * Layout of a checkpoint directory (the user's, e.g. ~/.ferry/checkpoint/NAME):
 *   gen-000001/    one complete generation: CRIU images, launch.req, dump.log, manifest (last).
 *                  Root-owned (0755, files 0444): the user can read but not change it.
 *   current        symlink to the complete generation restarts use: switched atomically.
 *   .staging-XXXX/ root-only (0700) while a dump runs; CRIU writes into its images/ subdir
 *                  (the user's, 0700) which no process of the user can reach by path.
 *
 * Dump: the starter joins the instance's namespaces, drops to the user with only
 * CAP_CHECKPOINT_RESTORE and runs CRIU (the bundle bound at /.ferry/criu) on the workload's tree.
 * CRIU is in the same mount/pid/ipc/uts namespaces as the tree, so it dumps a plain process tree
 * and needs neither CAP_SYS_ADMIN nor setns. Then, as root, the starter hashes each file, makes
 * it root's, writes the signed manifest last, renames the generation in and switches `current`.
 *
 * Restore: the starter verifies the manifest's HMAC and every file's hash before CRIU sees it,
 * except the content of the page images, which is hashed while CRIU restores and checked before
 * any restored process runs (see verify_files). It builds a fresh container from the sealed
 * launch request, and inside it runs CRIU as the user with only CAP_CHECKPOINT_RESTORE and
 * CAP_SETPCAP: again a plain tree into CRIU's own namespaces. Every restored process is then
 * checked to run as the user with no capabilities. */
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/capability.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "criu.h"
#include "criurun.h"
#include "fs.h"
#include "plan.h"
#include "starter.h"
#include "transfer.h"
#include "xfer.h"

#define LAUNCH_FILE "launch.req"
#define DUMP_LOG FERRY_CRIU_DUMP_LOG

static bool gen_name(const char *name, unsigned long long *ret)
{
	if (!startswith(name, "gen-"))
		return false;
	unsigned long long n = 0;
	if (parse_uint64(name + 4, 999999999, &n) < 0)
		return false;
	if (ret)
		*ret = n;
	return true;
}

/* CRIU's page images: nothing but the content of the dumped memory, copied into the restored
 * processes' own mappings (the small pagemap images say where it goes). */
static bool is_pages_image(const char *name)
{
	size_t n = strlen(name);
	return startswith(name, "pages-") && n > 4 && streq(name + n - 4, ".img");
}

/* The pages of a dump are hashed while CRIU writes them (it appends to each pages-*.img in
 * order), on the other core, so that sealing after the dump has little left to read: the dump
 * of a large instance would otherwise take twice as long. The same goes for the pages a diskless
 * destination's page server receives. Sealing checks that each file is
 * the one hashed (same inode, same size) and hashes what it does not know from scratch. */
#define TAIL_MAX 64
struct tail_hashes {
	size_t n;
	struct tail_hash {
		char name[64];
		int fd;
		dev_t dev;
		ino_t ino;
		struct ferry_sha256 h;
	} f[TAIL_MAX];
};

static void tails_scan(int imgfd, struct tail_hashes *t)
{
	DIR *d = ferry_opendir_at(imgfd);
	struct dirent *de;
	while (d && (de = readdir(d)) && t->n < TAIL_MAX) {
		if (!is_pages_image(de->d_name) || strlen(de->d_name) >= sizeof(t->f[0].name) ||
		    !ferry_manifest_name_ok(de->d_name))
			continue;
		bool known = false;
		for (size_t i = 0; i < t->n && !known; i++)
			known = streq(t->f[i].name, de->d_name);
		if (known)
			continue;
		int fd = openat(imgfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
		    ferry_sha256_begin(&t->f[t->n].h, NULL) < 0) {
			closep(&fd);
			continue;
		}
		struct tail_hash *f = &t->f[t->n++];
		memcpy(f->name, de->d_name, strlen(de->d_name) + 1); /* shorter than f->name: above */
		f->fd = fd;
		f->dev = st.st_dev;
		f->ino = st.st_ino;
	}
	if (d)
		closedir(d);
	/* what CRIU has written since is hashed, and on a disk the disk starts on it: sealing then
	 * waits only for the tail (sync_file_range: a no-op on a tmpfs) */
	for (size_t i = 0; i < t->n; i++) {
		uint64_t at = t->f[i].h.size;
		if (t->f[i].fd >= 0 && ferry_sha256_feed(&t->f[i].h, t->f[i].fd, UINT64_MAX, NULL) < 0) {
			ferry_sha256_abort(&t->f[i].h);
			close(t->f[i].fd);
			t->f[i].fd = -1;
		} else if (t->f[i].fd >= 0 && t->f[i].h.size > at) {
			(void)sync_file_range(t->f[i].fd, (off_t)at, (off_t)(t->f[i].h.size - at),
					      SYNC_FILE_RANGE_WRITE);
		}
	}
}

static void tails_free(struct tail_hashes *t)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->f[i].fd >= 0) {
			ferry_sha256_abort(&t->f[i].h);
			close(t->f[i].fd);
		}
	t->n = 0;
}

/* The hash of @fd (named @name), from what tails_scan has already read when it is that file. */
static int hash_file(int fd, const char *name, const struct stat *st, struct tail_hashes *t,
		     uint64_t *ret_size, char sha[65], struct ferry_error **err)
{
	for (size_t i = 0; t && i < t->n; i++) {
		struct tail_hash *f = &t->f[i];
		if (f->fd < 0 || !streq(f->name, name) || f->dev != st->st_dev || f->ino != st->st_ino)
			continue;
		int r = ferry_sha256_feed(&f->h, f->fd, UINT64_MAX, err);
		uint64_t size = f->h.size;
		if (r == 0 && size == (uint64_t)st->st_size)
			r = ferry_sha256_end(&f->h, sha, err);
		else
			ferry_sha256_abort(&f->h);
		close(f->fd);
		f->fd = -1;
		if (r < 0)
			return r;
		if (size == (uint64_t)st->st_size) {
			*ret_size = size;
			return 0;
		}
		break; /* it changed under us: hash it whole */
	}
	return ferry_sha256_fd(fd, ret_size, sha, err);
}

/* Takes one file of the staged generation for root, or refuses it: a regular file that CRIU (as
 * the user) or the starter made, with no other link (a file of someone else's, hard-linked in,
 * would become root's). From here on nobody but root can open it. */
static int seal_take(int fd, const char *name, const struct stat *st, uid_t uid, struct ferry_error **err)
{
	if (!S_ISREG(st->st_mode) || st->st_nlink != 1 || (st->st_uid != uid && st->st_uid != 0))
		return ferry_error_msg(err, EPERM,
				       "'%s' in the dump is not a file the dump made (a link or someone "
				       "else's file): checkpoint refused",
				       name);
	if (fchown(fd, 0, 0) < 0 || fchmod(fd, 0400) < 0)
		return ferry_error_set(err, errno, "seal '%s'", name);
	return 0;
}

/* Once hashed: proves that no fd opened before seal_take is left (it could change the sealed
 * file later; a write lease is granted only when no other open file of it exists, and the
 * caller holds the only one), then lets the owner, and only the owner, read it. */
static int seal_prove(int fd, const char *name, uid_t uid, struct ferry_error **err)
{
	int r = fcntl(fd, F_SETLEASE, F_WRLCK) < 0 ? -errno : 0;
	if (r == -EINVAL || r == -EOPNOTSUPP || r == -ENOSYS) {
		/* a filesystem without leases (NFS): look through every process's open files */
		r = ferry_fd_open_elsewhere(fd);
		r = r > 0 ? -EBUSY : r;
	} else if (r == 0) {
		(void)fcntl(fd, F_SETLEASE, F_UNLCK);
	}
	if (r == -EAGAIN || r == -EBUSY)
		return ferry_error_msg(
		    err, EBUSY, "'%s' of the dump is still open in another process: checkpoint refused",
		    name);
	if (r < 0)
		return ferry_error_set(err, -r, "prove that '%s' is not open elsewhere", name);
	return ckdir_grant_owner(fd, uid, false, err);
}

/* Makes every file of the staged generation root's and read-only (see seal_take), hashing it
 * into @m (with what @tails has hashed already, or NULL). @evict: the generation is for another
 * node (a migration through the shared filesystem): once a file is on disk, its pages leave
 * this node's cache, which will never read it again (on a test machine whose "nodes" share one
 * kernel, this is also what makes the destination read the disk, as a real one would). */
static int seal_files(int dirfd, struct ferry_manifest *m, struct tail_hashes *tails, bool evict,
		      struct ferry_error **err)
{
	/* root's first: no fd the user's processes may still hold on the directory can add or
	 * rename a file in it from now on (each such operation checks the directory's mode) */
	if (fchown(dirfd, 0, 0) < 0 || fchmod(dirfd, 0700) < 0)
		return ferry_error_set(err, errno, "seal the generation directory");
	DIR *d = ferry_opendir_at(dirfd);
	if (!d)
		return ferry_error_set(err, errno, "read the staged checkpoint");
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		if (!ferry_manifest_name_ok(de->d_name) || streq(de->d_name, FERRY_MANIFEST_NAME)) {
			r = ferry_error_msg(err, EINVAL, "unexpected file '%s' in the dump", de->d_name);
			break;
		}
		_cleanup_close_ int fd = ckdir_openat(dirfd, de->d_name, O_RDONLY | O_NONBLOCK, 0);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0) {
			r = ferry_error_msg(err, EINVAL, "'%s' in the dump is not a regular file",
					    de->d_name);
			break;
		}
		if ((r = seal_take(fd, de->d_name, &st, m->uid, err)) < 0)
			break;
		uint64_t size = 0;
		char sha[65];
		/* start writing it out now: the disk works while we hash (from the page cache),
		 * and fdatasync then waits only for what is left */
		(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		if ((r = hash_file(fd, de->d_name, &st, tails, &size, sha, err)) < 0 ||
		    (r = seal_prove(fd, de->d_name, m->uid, err)) < 0)
			break;
		if (fdatasync(fd) < 0) {
			r = ferry_error_set(err, errno, "seal '%s'", de->d_name);
			break;
		}
		ferry_manifest_add_file(m, de->d_name, size, sha);
		if (evict)
			(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	}
	closedir(d);
	return r;
}

static int next_generation(int ckfd, unsigned long long *ret)
{
	DIR *d = ferry_opendir_at(ckfd);
	if (!d)
		return -errno;
	unsigned long long max = 0, n;
	struct dirent *de;
	while ((de = readdir(d)))
		if (gen_name(de->d_name, &n) && n > max)
			max = n;
	closedir(d);
	*ret = max + 1;
	return 0;
}

/* Removes the root-owned generations other than @keep (@gens), and the staging directories no
 * dump or restart holds locked (@staging: their starter was killed before its guard existed), as
 * the directories they were when found root's (the user may rename them meanwhile). */
static void prune(int ckfd, uid_t uid, const char *keep, bool gens, bool staging)
{
	DIR *d = ferry_opendir_at(ckfd);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		bool gen = gens && gen_name(de->d_name, NULL);
		bool stage = staging && startswith(de->d_name, ".staging-");
		if ((!gen && !stage) || (keep && streq(de->d_name, keep)))
			continue;
		_cleanup_close_ int fd = ckdir_openat(ckfd, de->d_name, O_RDONLY | O_DIRECTORY, 0);
		struct stat st;
		if (fd >= 0 && fstat(fd, &st) == 0 && st.st_uid == 0 &&
		    (!stage || flock(fd, LOCK_EX | LOCK_NB) == 0))
			ckdir_rm_tree(ckfd, de->d_name, uid, fd);
	}
	closedir(d);
}

static struct ferry_manifest *manifest_for(const struct starter *s, const char *instance, const char *image,
					   const char *fingerprint, long long pid)
{
	char host[HOST_NAME_MAX + 1] = "";
	gethostname(host, sizeof(host) - 1);
	struct ferry_manifest *m = xzalloc(sizeof(*m));
	m->ferry_version = xstrdup(FERRY_VERSION);
	m->uid = s->privs.uid;
	m->gid = s->privs.gid;
	m->instance = xstrdup(instance);
	m->image = xstrdup(image ? image : "");
	m->image_fingerprint = xstrdup(fingerprint ? fingerprint : "");
	m->created = (long long)time(NULL);
	m->pid = pid;
	m->node = xstrdup(host);
	return m;
}

/* Seals the staged generation in @imgfd: the launch request (when given), every file hashed
 * into @m and made root's and read-only, the signed manifest written last. */
static int seal_generation(int imgfd, struct ferry_manifest *m, const char *launch, size_t launch_len,
			   struct tail_hashes *tails, bool evict, char **ret_text, struct ferry_error **err)
{
	unsigned char key[FERRY_KEY_MAX];
	size_t keylen = 0;
	int r = ferry_key_load(FERRY_KEY_PATH, key, &keylen, err);
	if (r < 0)
		return r;
	if (launch) {
		_cleanup_close_ int lfd =
		    openat(imgfd, LAUNCH_FILE, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
		if (lfd < 0 || ferry_write_all(lfd, launch, launch_len) < 0) {
			explicit_bzero(key, sizeof(key));
			return ferry_error_set(err, errno, "write %s", LAUNCH_FILE);
		}
	}
	if ((r = seal_files(imgfd, m, tails, evict, err)) < 0) {
		explicit_bzero(key, sizeof(key));
		return r;
	}
	_cleanup_free_ char *text = NULL;
	r = ferry_manifest_sign(m, key, keylen, &text, err);
	explicit_bzero(key, sizeof(key));
	if (r < 0)
		return r;
	if ((r = ferry_write_file_atomic(imgfd, FERRY_MANIFEST_NAME, text, strlen(text), 0400, err)) < 0)
		return r;
	_cleanup_close_ int mfd = ckdir_openat(imgfd, FERRY_MANIFEST_NAME, O_RDONLY, 0);
	if (mfd < 0 || fsync(imgfd) < 0)
		return ferry_error_set(err, errno, "seal the generation directory");
	if ((r = ckdir_grant_owner(mfd, m->uid, false, err)) < 0 ||
	    (r = ckdir_grant_owner(imgfd, m->uid, true, err)) < 0)
		return r;
	if (ret_text)
		*ret_text = TAKE_PTR(text);
	return 0;
}

/* Renames the sealed "images" of the staging directory into the checkpoint directory as the
 * next generation and switches `current` to it. */
static int publish_generation(struct starter *s, int stfd, char **ret_gen, struct ferry_error **err)
{
	unsigned long long n = 0;
	int r = next_generation(s->ckpt_fd, &n);
	if (r < 0)
		return ferry_error_set(err, -r, "read the checkpoint directory");
	char gen[32];
	snprintf(gen, sizeof(gen), "gen-%06llu", n);
	if (renameat(stfd, "images", s->ckpt_fd, gen) < 0)
		return ferry_error_set(err, errno, "publish generation '%s'", gen);
	/* the new link is made in the staging directory, so a starter killed before the rename
	 * leaves it only there (the guard removes it) */
	if (symlinkat(gen, stfd, "current") < 0 || renameat(stfd, "current", s->ckpt_fd, "current") < 0)
		return ferry_error_set(err, errno, "switch 'current' to '%s'", gen);
	fsync(s->ckpt_fd);
	*ret_gen = xstrdup(gen);
	return 0;
}

/* A root-only staging directory in @parentfd (the checkpoint directory, or the node-local
 * staging root, @where for messages), with the user's images/ inside: CRIU (as the user) writes
 * there, and no other process of the user can reach it by path. */
static int make_staging(struct starter *s, int parentfd, const char *where, char stage[64], int *ret_stfd,
			int *ret_imgfd, int *ret_workfd, struct ferry_error **err)
{
	unsigned char rnd[8];
	if (getentropy(rnd, sizeof(rnd)) < 0)
		return ferry_error_set(err, errno, "getentropy");
	snprintf(stage, 64, ".staging-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
		 rnd[4], rnd[5], rnd[6], rnd[7]);
	int r = ferry_privs_raise(&s->privs, err);
	if (r < 0)
		return r;
	if (mkdirat(parentfd, stage, 0700) < 0)
		return ferry_error_set(err, errno, "create '%s' in '%s'", stage, where);
	_cleanup_close_ int stfd = ckdir_openat(parentfd, stage, O_RDONLY | O_DIRECTORY, 0);
	struct stat st;
	/* locked while its dump (or restart) lives, held by the starter and its guard: a later
	 * dump removes only the stagings nobody holds */
	if (stfd < 0 || fstat(stfd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 077) ||
	    flock(stfd, LOCK_EX | LOCK_NB) < 0) {
		if (stfd >= 0)
			ckdir_rm_tree(parentfd, stage, s->privs.uid, stfd);
		return ferry_error_msg(err, EPERM, "the staging directory was tampered with");
	}
	/* (and a live dump's work/: its CRIU writes its log, open while it serves the pages, beside
	 * the images, which are sealed meanwhile) */
	_cleanup_close_ int imgfd = -1, workfd = -1;
	if (mkdirat(stfd, "images", 0700) < 0 ||
	    (imgfd = ckdir_openat(stfd, "images", O_RDONLY | O_DIRECTORY, 0)) < 0 ||
	    fchown(imgfd, s->privs.uid, s->privs.gid) < 0 ||
	    (ret_workfd && (mkdirat(stfd, "work", 0700) < 0 ||
			    (workfd = ckdir_openat(stfd, "work", O_RDONLY | O_DIRECTORY, 0)) < 0 ||
			    fchown(workfd, s->privs.uid, s->privs.gid) < 0))) {
		int e = errno;
		ckdir_rm_tree(parentfd, stage, s->privs.uid, stfd);
		return ferry_error_set(err, e, "prepare the dump directory");
	}
	if (ret_workfd)
		*ret_workfd = TAKE_FD(workfd);
	*ret_stfd = TAKE_FD(stfd);
	*ret_imgfd = TAKE_FD(imgfd);
	return 0;
}

/* make_staging in the checkpoint directory, after removing the stagings of dumps whose starter
 * was killed before its guard existed (none removes those). The directory's lock, shared while
 * a staging is made and locked, exclusive while they are pruned, keeps a staging from being
 * pruned between the two. The user can hold the lock themselves: that only stalls their own
 * dump, which they may kill. */
static int make_ckpt_staging(struct starter *s, const char *where, char stage[64], int *ret_stfd,
			     int *ret_imgfd, int *ret_workfd, struct ferry_error **err)
{
	int r = ferry_privs_raise(&s->privs, err); /* (a staging is root's 0700) */
	if (r < 0)
		return r;
	if (flock(s->ckpt_fd, LOCK_EX | LOCK_NB) == 0)
		prune(s->ckpt_fd, s->privs.uid, NULL, false, true);
	while (flock(s->ckpt_fd, LOCK_SH) < 0 && errno == EINTR)
		;
	r = make_staging(s, s->ckpt_fd, where, stage, ret_stfd, ret_imgfd, ret_workfd, err);
	(void)flock(s->ckpt_fd, LOCK_UN);
	return r;
}

/* A pidfd on @inst's monitor, which frees the instance's name (and its network address) once
 * its init has exited; checked to be the parent of the pinned, live init (not a reused pid).
 * -1 if it cannot be. */
static int pin_monitor(const struct ferry_instance *inst)
{
	if (inst->monitor <= 0)
		return -1;
	int fd = (int)syscall(SYS_pidfd_open, inst->monitor, 0);
	if (fd < 0)
		return -1;
	struct ferry_proc_status st;
	if (ferry_proc_status(inst->pid, &st) < 0 || st.ppid != inst->monitor ||
	    !ferry_instance_alive(inst)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Waits until the monitor @monfd pins has cleaned up after its instance and exited, for at
 * most @timeout_s seconds; says so if it has not. */
static void wait_instance_end(int monfd, const char *name, unsigned timeout_s)
{
	if (monfd < 0)
		return;
	struct pollfd p = {.fd = monfd, .events = POLLIN};
	long long deadline = ferry_now_ms() + (long long)timeout_s * 1000;
	for (;;) {
		long long left = deadline - ferry_now_ms();
		if (left <= 0) {
			fprintf(
			    stderr,
			    "ferry: warning: instance '%s' is still ending; its name is free once it has\n",
			    name);
			return;
		}
		int r = poll(&p, 1, (int)(left > INT_MAX ? INT_MAX : left));
		if (r > 0 || (r < 0 && errno != EINTR))
			return;
	}
}

/* One dump, from the starter's side. */
struct dump {
	struct starter *s;
	struct ferry_instance *inst;
	const char *name;
	const char *target; /* the checkpoint directory it goes to */
	int monfd; /* the instance's monitor (see pin_monitor) */
	int stfd, imgfd; /* the staging directory and its images */
	/* live (post-copy): CRIU's work directory in the staging (its log), and the read end of
	 * its status pipe: a byte once the images but the pages are written */
	bool lazy;
	int workfd, status;
	char stage[64];
	/* staged (a dump that leaves the job running, 'checkpoint staging' in ferry.conf): CRIU
	 * writes to a root-only directory of the node-local staging root, which is sealed there and
	 * drained into the checkpoint's staging while the job runs (see stage_locally) */
	bool staged;
	int lrootfd, lstfd, limgfd;
	char lstage[64];
	struct xfer_session *xs; /* --page-server: the transfer session */
	pid_t guard; /* dump_guard */
	int rep, ctl; /* the guard's report, and our word to it */
	int hold; /* FERRY_REQ_HOLD: our word to the held ferry-criu (FERRY_CRIU_HOLD_FD there) */
	long long t_freeze, t_dumped, t_done;
	int status_w; /* the status pipe's write end, CRIU's */
};

/* The images directory CRIU writes into: the node-local one of a staged dump. */
static int dump_images(const struct dump *d)
{
	return d->staged ? d->limgfd : d->imgfd;
}

/* A staged dump's node-local directory, gone (published, drained, failed). */
static void dump_unstage(const struct dump *d)
{
	if (d->staged)
		ckdir_rm_tree(d->lrootfd, d->lstage, d->s->privs.uid, d->lstfd);
}

/* How often a local dump hashes what CRIU has written since. */
#define TAIL_TICK_MS 20

/* The dumping CRIU: in the instance's namespaces, as the user with only the capabilities the dump
 * needs, through ferry-criu (the bundle's; the starter links no CRIU code). It writes "D" to
 * @report once the tree is dumped (and left stopped, or running with --leave-running), or an
 * error line. */
static _noreturn_ void dump_criu(const struct dump *d, int report)
{
	struct ferry_error *err = NULL;
	struct starter *s = d->s;
	const struct ferry_instance *inst = d->inst;
	/* with its own network (--net, or loopback only), CRIU repairs TCP sockets (TCP_REPAIR)
	 * and locks the namespace's traffic (nftables): CAP_NET_ADMIN, over that namespace only */
	static const int keep_net[] = {CAP_CHECKPOINT_RESTORE, CAP_NET_ADMIN};
	static const int keep_plain[] = {CAP_CHECKPOINT_RESTORE};
	bool net = ferry_instance_own_netns(inst);
	const int *keep = net ? keep_net : keep_plain;
	size_t n_keep = net ? ARRAY_SIZE(keep_net) : ARRAY_SIZE(keep_plain);
	char pid[24], timeout[24], ghost[24];
	snprintf(pid, sizeof(pid), "%lld", inst->workload);
	snprintf(timeout, sizeof(timeout), "%u", s->cfg->criu_timeout);
	snprintf(ghost, sizeof(ghost), "%u", s->cfg->criu_ghost_limit);
	char *argv[16] = {"ferry-criu", "dump", "--pid", pid, "--timeout", timeout, "--ghost-limit", ghost};
	size_t argc = 8;
	if (inst->private_tmp) /* the container's own /tmp: saved among the images */
		argv[argc++] = "--save-tmp";
	if (s->req->flags & FERRY_REQ_LEAVE_RUNNING)
		argv[argc++] = "--leave-running";
	if (net)
		argv[argc++] = "--tcp";
	if (s->req->flags & FERRY_REQ_SKIP_IN_FLIGHT)
		argv[argc++] = "--skip-in-flight";
	/* pages go through the session, at the fd CRIU's config names: all of them (diskless), or
	 * those the destination's lazy-pages daemon asks for, and then the rest (live) */
	int ps = s->xfer_fd < 0 ? -1 : xfer_session_fd(d->lazy ? FERRY_XFER_LAZY : FERRY_XFER_PAGES);
	/* (in ascending order of their places: criurun_exec) */
	int img = dump_images(d);
	int src_live[5] = {img, d->workfd, report, ps, d->status_w}, src[3] = {img, report, ps};
	static const int dst_live[5] = {FERRY_CRIU_IMAGES_FD, FERRY_CRIU_WORK_FD, FERRY_CRIU_REPORT_FD,
					FERRY_CRIU_PS_FD, FERRY_CRIU_STATUS_FD},
			 dst[3] = {FERRY_CRIU_IMAGES_FD, FERRY_CRIU_REPORT_FD, FERRY_CRIU_PS_FD};
	if (s->xfer_fd >= 0)
		argv[argc++] = d->lazy ? "--lazy" : "--page-server";
	/* a group member's: held at CRIU's post-dump notification until the group's word, its
	 * log in a directory of its own (CRIU still holds it open while the images are sealed) */
	int src_hold[4] = {img, d->workfd, report, d->hold};
	static const int dst_hold[4] = {FERRY_CRIU_IMAGES_FD, FERRY_CRIU_WORK_FD, FERRY_CRIU_REPORT_FD,
					FERRY_CRIU_HOLD_FD};
	if (d->hold >= 0)
		argv[argc++] = "--hold";
	if (ferry_privs_drop(&s->privs, keep, n_keep, &err) < 0) {
		report_error(report, err);
		_exit(1);
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (d->lazy)
		criurun_exec(argv, src_live, dst_live, 5, report, 1);
	if (d->hold >= 0)
		criurun_exec(argv, src_hold, dst_hold, 4, report, 1);
	criurun_exec(argv, src, dst, s->xfer_fd < 0 ? 2 : 3, report, 1);
}

/* The source's decision (a migration's, diskless) is written: the byte 'C' at its start. */
static bool decision_written(int fd)
{
	char c = 0;
	return fd >= 0 && pread(fd, &c, 1, 0) == 1 && c == 'C';
}

/* How long the dump's guard lets CRIU finish once ferry-criu has ended (dump_guard_verdict). */
#define GUARD_CRIU_MS 10000

/* Whether a process of group @pgid but a zombie is left (the ids of the instance's pid
 * namespace, whose /proc the guard sees). */
static bool group_runs(pid_t pgid)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	bool found = false;
	while (d && !found && (de = readdir(d))) {
		unsigned long long p = 0;
		char path[64], buf[512];
		if (parse_uint64(de->d_name, INT32_MAX, &p) < 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%llu/stat", p);
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		char *rp = strrchr(buf, ')'), state = 0;
		int ppid = 0, pgrp = 0;
		if (rp && sscanf(rp + 1, " %c %d %d", &state, &ppid, &pgrp) == 3)
			found = pgrp == pgid && state != 'Z' && state != 'X';
	}
	if (d)
		closedir(d);
	return found;
}

/* The guard gave up on its starter (guard_poll); it exits GUARD_GAVE_UP. */
static bool guard_gave_up;
#define GUARD_GAVE_UP 3

/* poll(2) for as long as the starter, whose /proc stat the host's @stat_fd is, goes on: once it
 * has been seen stopped (SIGSTOP or ^Z from its user, who may signal it) for 'criu timeout'
 * seconds in all, the guard gives up (guard_gave_up), so that no stopped starter keeps the tree
 * frozen, and first takes the images out of the starter's reach: a publish (a rename) from now
 * on finds nothing. */
static void guard_poll(const struct dump *d, struct pollfd *p, nfds_t n, int stat_fd)
{
	static unsigned stopped;
	char buf[512], state = 0;
	int r;
	while (!guard_gave_up && ((r = poll(p, n, 1000)) == 0 || (r < 0 && errno == EINTR))) {
		ssize_t len = pread(stat_fd, buf, sizeof(buf) - 1, 0);
		buf[len > 0 ? len : 0] = '\0';
		char *rp = strrchr(buf, ')');
		if (rp && sscanf(rp + 1, " %c", &state) == 1 && (state == 'T' || state == 't') &&
		    ++stopped > d->s->cfg->criu_timeout) {
			guard_gave_up = true;
			renameat(d->stfd, "images", d->stfd, "given-up");
		}
	}
}

/* Whether the starter, dead now, published this dump: 'current' names the images it staged. */
static bool published(const struct dump *d)
{
	char gen[32];
	struct stat a, b;
	ssize_t n = readlinkat(d->s->ckpt_fd, "current", gen, sizeof(gen) - 1);
	if (n <= 0 || fstat(d->imgfd, &a) < 0)
		return false;
	gen[n] = '\0';
	return !strchr(gen, '/') && fstatat(d->s->ckpt_fd, gen, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Waits for the dumping CRIU @criu to end, or for the starter to give up on it (@ctl readable
 * first: a timeout, or the starter was killed), then for the starter's word on @ctl: 'K' once the
 * checkpoint is published (the dumped tree ends), anything else or nothing (the starter died, or
 * stayed stopped: guard_poll) means the tree goes on. */
static char dump_guard_verdict(const struct dump *d, pid_t criu, pid_t criu_ns, int ctl, int stat_fd)
{
	int pidfd = (int)syscall(SYS_pidfd_open, criu, 0);
	struct pollfd p[2] = {{.fd = pidfd, .events = POLLIN}, {.fd = ctl, .events = POLLIN}};
	if (pidfd >= 0)
		guard_poll(d, p, 2, stat_fd);
	if (pidfd < 0 || guard_gave_up || (p[1].revents && !p[0].revents))
		kill(criu, SIGKILL); /* ferry-criu: the starter gave up on it */
	closep(&pidfd);
	/* The CRIU that libcriu runs, in ferry-criu's process group, goes on without it: it is let
	 * finish (woken, should the user have stopped it), so that it takes out of the tree what it
	 * put in and lets it go; a live dump's ends once the pages channel hangs up, and stops the
	 * tree (--leave-stopped). Our word to the tree comes only after it, and none of the group
	 * is left: SIGKILL after GUARD_CRIU_MS. While ferry-criu is an unreaped zombie its pid, the
	 * group's id, cannot be reused. */
	siginfo_t si;
	while (waitid(P_PID, (id_t)criu, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
	kill(-criu, SIGCONT);
	for (int i = 0; criu_ns > 0 && i < GUARD_CRIU_MS / 10 && group_runs(criu_ns); i++)
		usleep(10000);
	kill(-criu, SIGKILL);
	for (int i = 0; criu_ns > 0 && i < 500 && group_runs(criu_ns); i++)
		usleep(10000);
	while (waitpid(criu, NULL, 0) < 0 && errno == EINTR)
		;
	char what = 'C';
	guard_poll(d, &p[1], 1, stat_fd);
	if (guard_gave_up || read(ctl, &what, 1) != 1)
		/* the starter died: the decision, if it wrote one, holds (the commit may be gone), and
		 * so does a generation it published (a group's other members ended at that cut) */
		what = decision_written(d->s->decision_fd) || (!guard_gave_up && published(d)) ? 'K' : 'C';
	return what;
}

/* The dump's guard: root's alone (the user can kill the starter and CRIU, not this), in the
 * instance's namespaces. Whatever happens to the starter, the dumped tree never stays stopped:
 * it ends only on the starter's 'K', else it is resumed; and a staging directory the starter did
 * not publish is removed, so that nothing root-owned is left for the user. */
static _noreturn_ void dump_guard(const struct dump *d, int pidfd, int report, int ctl)
{
	struct ferry_error *err = NULL;
	struct starter *s = d->s;
	const struct ferry_instance *inst = d->inst;
	setpgid(0, 0);
	char path[32]; /* the starter's state, which the instance's /proc will not show */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)getppid());
	int stat_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (stat_fd < 0 || setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
		ferry_error_set(&err, errno, "become root for the dump's guard");
		report_error(report, err);
		_exit(1);
	}
	/* The starter itself stays in the host's namespaces; this child joins the instance's
	 * and forks once more to be inside its pid namespace too, where CRIU runs. */
	if (setns(pidfd, instance_ns_flags(inst)) < 0) {
		ferry_error_set(&err, errno, "join instance '%s'", inst->name);
		report_error(report, err);
		_exit(1);
	}
	int idp[2];
	pid_t criu = pipe2(idp, O_CLOEXEC) < 0 ? -1 : fork();
	if (criu < 0) {
		ferry_error_set(&err, errno, "fork");
		report_error(report, err);
		_exit(1);
	}
	if (criu == 0) {
		setpgid(0, 0); /* its own group: the guard ends it whole (dump_guard_verdict) */
		pid_t me = getpid(); /* (in the instance's pid namespace, as its /proc shows it) */
		(void)ferry_write_all(idp[1], &me, sizeof(me));
		close(idp[0]);
		close(idp[1]);
		close(ctl);
		dump_criu(d, report);
	}
	setpgid(criu, criu);
	close(idp[1]);
	pid_t criu_ns = 0;
	if (read(idp[0], &criu_ns, sizeof(criu_ns)) != sizeof(criu_ns))
		criu_ns = 0;
	close(idp[0]);
	close(report);
	if (d->status_w >= 0)
		close(d->status_w);
	/* the session's ends are the starter's and CRIU's: a copy here would keep a channel open
	 * after CRIU died, and the peer waiting on it */
	for (int ch = 0; d->xs && ch < FERRY_XFER_NCHAN; ch++)
		xfer_session_close(d->xs, ch);
	char what = dump_guard_verdict(d, criu, criu_ns, ctl, stat_fd);
	if (!(s->req->flags & FERRY_REQ_LEAVE_RUNNING)) {
		/* every process of the instance but init, from inside its pid namespace */
		pid_t sig = fork();
		if (sig == 0) {
			kill(-1, what == 'K' ? SIGKILL : SIGCONT);
			_exit(0);
		}
		while (sig > 0 && waitpid(sig, NULL, 0) < 0 && errno == EINTR)
			;
	}
	ckdir_rm_tree(s->ckpt_fd, d->stage, s->privs.uid,
		      d->stfd); /* published (then empty), sent or failed: never left behind */
	dump_unstage(d);
	_exit(guard_gave_up ? GUARD_GAVE_UP : 0);
}

/* Reaps the guard; if it gave up on us (stopped for 'criu timeout': guard_poll) and no decision
 * gave the instance to a destination, the tree runs on and the staging is gone: we fail. */
static void guard_reap(const struct dump *d)
{
	int st = 0;
	while (waitpid(d->guard, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == GUARD_GAVE_UP && !decision_written(d->s->decision_fd))
		die("checkpoint of '%s' was given up: its starter was stopped for more than %u s ('criu timeout' in ferry.conf); the instance keeps running",
		    d->name, d->s->cfg->criu_timeout);
}

/* The sealed launch request of the instance: root's, next to its record. */
static void read_launch_record(struct dump *d, char **ret, size_t *ret_len)
{
	struct ferry_error *err = NULL;
	int rundir = ferry_open_rundir(d->s->privs.uid, false, &err);
	if (rundir < 0)
		die_error(err);
	_cleanup_free_ char *launch_name = xasprintf(".%s.launch", d->name);
	_cleanup_close_ int lfd = openat(rundir, launch_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	close(rundir);
	if (lfd < 0 || ferry_read_all(lfd, FERRY_REQUEST_MAX, ret, ret_len, &err) < 0)
		die("instance '%s' has no launch record: restart it with --criu-launch", d->name);
}

/* One process of an instance's pid namespace, as ns_scan sees it from the host. */
struct ns_proc {
	pid_t pid, ppid, nspid; /* host pid, host parent, pid inside */
	bool dumped; /* under the workload: in the tree CRIU dumps */
};

/* The processes of @init's pid namespace but @init, from the host's /proc (as root); at most
 * @max. -errno when the namespace cannot be read. */
static int ns_procs(pid_t init, struct ns_proc *procs, size_t max, size_t *ret_n, struct ferry_error **err)
{
	char path[64];
	struct stat ns, st;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)init);
	if (stat(path, &ns) < 0)
		return ferry_error_set(err, errno, "the instance's pid namespace");
	DIR *d = opendir("/proc");
	if (!d)
		return ferry_error_set(err, errno, "/proc");
	size_t n = 0;
	struct dirent *de;
	struct ferry_proc_status ps;
	int r = 0;
	while (r == 0 && (de = readdir(d))) {
		unsigned long long p = 0;
		if (parse_uint64(de->d_name, INT32_MAX, &p) < 0 || (pid_t)p == init)
			continue;
		snprintf(path, sizeof(path), "/proc/%llu/ns/pid", p);
		if (stat(path, &st) < 0 || st.st_dev != ns.st_dev || st.st_ino != ns.st_ino ||
		    ferry_proc_status((pid_t)p, &ps) < 0)
			continue; /* elsewhere, or gone */
		if (n == max)
			r = ferry_error_msg(err, E2BIG, "the instance runs more than %zu processes", max);
		else
			procs[n++] = (struct ns_proc){.pid = (pid_t)p, .ppid = ps.ppid, .nspid = ps.nspid};
	}
	closedir(d);
	*ret_n = n;
	return r;
}

/* The resident memory of host pid @pid, in bytes (0 when it is gone): /proc/PID/statm's
 * second number, pages (the kernel's numbers, nothing of the user's). */
static uint64_t proc_rss(pid_t pid)
{
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	unsigned long long size = 0, rss = 0;
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu", &size, &rss) != 2)
		return 0;
	return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* A checkpoint holds the tree under the workload (its reaper, see init.c): refuses, naming it,
 * any process of the instance outside that tree but its init (one a user started with 'ferry
 * exec', or anything that escaped the reaper), which the dump would silently leave behind.
 * *@ret_rss: the tree's resident memory (what a dump of it writes, at most about). */
static int ns_check_whole(const struct ferry_instance *inst, uint64_t *ret_rss, struct ferry_error **err)
{
	size_t max = 65536, n = 0;
	_cleanup_free_ struct ns_proc *procs = xmalloc(max * sizeof(*procs));
	int r = ns_procs(inst->pid, procs, max, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		procs[i].dumped = procs[i].nspid == (pid_t)inst->workload;
	for (bool grew = true; grew;) { /* down the tree, a generation a pass */
		grew = false;
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < n && !procs[i].dumped; j++)
				if (procs[j].dumped && procs[j].pid == procs[i].ppid)
					procs[i].dumped = grew = true;
	}
	*ret_rss = 0;
	for (size_t i = 0; i < n; i++) {
		if (procs[i].dumped) {
			*ret_rss += proc_rss(procs[i].pid);
			continue;
		}
		char path[64], comm[32] = "?";
		_cleanup_free_ char *buf = NULL;
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)procs[i].pid);
		if (ferry_read_file(path, 64, &buf, NULL, NULL) == 0) {
			size_t k = 0;
			for (; buf[k] && buf[k] != '\n' && k < sizeof(comm) - 1; k++)
				comm[k] = buf[k];
			for (size_t c = 0; c < k; c++)
				if (comm[c] < ' ' || comm[c] == 0x7f)
					comm[c] = '?';
			comm[k] = '\0';
		}
		return ferry_error_msg(
		    err, EBUSY,
		    "process %d ('%s') of instance '%s' is outside its workload's tree and "
		    "would be lost: end it (a 'ferry exec'?) and checkpoint again",
		    (int)procs[i].nspid, comm, inst->name);
	}
	return 0;
}

/* Removes the staging directories of dumps that ended without removing theirs (a starter and
 * its guard both killed): those no dump holds its lock on. Called with the staging root's lock
 * held exclusively, so that no dump is between making its directory and locking it. */
static void prune_stale_staging(int rootfd)
{
	DIR *dir = ferry_opendir_at(rootfd);
	struct dirent *de;
	while (dir && (de = readdir(dir))) {
		if (!startswith(de->d_name, ".staging-"))
			continue;
		_cleanup_close_ int fd =
		    openat(rootfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		/* any user's: the root is root's alone, and below a staging all is root's or its user's,
		 * who owns images/ */
		struct stat st;
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
			ckdir_rm_tree(rootfd, de->d_name,
				      fstatat(fd, "images", &st, AT_SYMLINK_NOFOLLOW) == 0 ? st.st_uid : 0,
				      fd);
	}
	if (dir)
		closedir(dir);
}

/* A number in cgroupfs file @name of @dirfd (UINT64_MAX: "max", unlimited, or unreadable). */
static uint64_t cgroup_number(int dirfd, const char *name)
{
	char buf[64];
	int fd = ferry_open_in_root(dirfd, name, O_RDONLY, 0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	closep(&fd);
	if (n <= 0)
		return UINT64_MAX;
	buf[n] = '\0';
	unsigned long long v = 0;
	if (sscanf(buf, "%llu", &v) != 1 || v >= (1ull << 62)) /* "max"; cgroup v1's "unlimited" */
		return UINT64_MAX;
	return (uint64_t)v;
}

/* The room left under the memory limits of our cgroup and of each above it: what the pages of a
 * staged dump are charged to (CRIU, our child, writes them), as is the job itself under a batch
 * system that confines it (Slurm's ConstrainRAMSpace): past it, the kernel would kill the job to
 * make room for its checkpoint. UINT64_MAX when there is no limit. Only the kernel's numbers are
 * read, through the cgroup path /proc/self/cgroup gives, never out of cgroupfs. */
static uint64_t cgroup_room(void)
{
	_cleanup_free_ char *text = NULL;
	if (ferry_read_file("/proc/self/cgroup", 16384, &text, NULL, NULL) < 0)
		return UINT64_MAX;
	const char *v1 = NULL, *v2 = NULL;
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *c = strchr(l, ':'), *path = c ? strchr(c + 1, ':') : NULL;
		if (!path)
			continue;
		*path++ = '\0';
		if (streq(l, "0:"))
			v2 = path;
		for (char *save2 = NULL, *k = strtok_r(c + 1, ",", &save2); k;
		     k = strtok_r(NULL, ",", &save2))
			if (streq(k, "memory"))
				v1 = path;
	}
	const char *path = v1 ? v1 : v2;
	_cleanup_close_ int base =
	    open(v1 ? "/sys/fs/cgroup/memory" : "/sys/fs/cgroup", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!path || *path != '/' || base < 0)
		return UINT64_MAX;
	uint64_t room = UINT64_MAX;
	_cleanup_free_ char *at = xstrdup(path);
	for (size_t len = strlen(at);; len = (size_t)(strrchr(at, '/') - at)) {
		at[len] = '\0';
		_cleanup_close_ int fd = ferry_open_in_root(base, *at ? at : ".", O_RDONLY | O_DIRECTORY, 0,
							    RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV);
		uint64_t limit =
		    fd < 0 ? UINT64_MAX : cgroup_number(fd, v1 ? "memory.limit_in_bytes" : "memory.max");
		uint64_t used =
		    fd < 0 ? 0 : cgroup_number(fd, v1 ? "memory.usage_in_bytes" : "memory.current");
		if (limit != UINT64_MAX) {
			uint64_t left = used != UINT64_MAX && used < limit ? limit - used : 0;
			room = left < room ? left : room;
		}
		if (!*at)
			break;
	}
	return room;
}

static void note_unstaged(const struct dump *d, const char *why)
{
	fprintf(stderr,
		"ferry: note: checkpoint of '%s' not staged in node-local memory ('%s'): %s; the job "
		"stays frozen until its dump is written\n",
		d->name, d->s->cfg->staging_dir, why);
}

/* Makes the dump a staged one (see struct dump) when it can: a dump that leaves the job running,
 * to a checkpoint directory on a disk (not a tmpfs) other than the staging root's, when it fits:
 * @rss (the tree's resident memory) within the staging filesystem's free space and, on a tmpfs,
 * within the node's available memory less a tenth of its total. Never fatal: a dump that is not
 * staged is written directly, as without 'checkpoint staging'. Its directory is locked (flock)
 * for as long as this starter or its guard lives: prune_stale_staging leaves it alone. */
static void stage_locally(struct dump *d, uint64_t rss)
{
	struct starter *s = d->s;
	struct statfs tfs, rfs;
	struct stat rst, tst;
	struct statvfs vfs;
	if (!s->cfg->staging || !(s->req->flags & FERRY_REQ_LEAVE_RUNNING) || s->xfer_fd >= 0 ||
	    (s->req->flags & FERRY_REQ_HOLD) || fstatfs(s->ckpt_fd, &tfs) < 0 || tfs.f_type == TMPFS_MAGIC ||
	    tfs.f_type == RAMFS_MAGIC)
		return;
	struct ferry_error *err = NULL;
	_cleanup_close_ int rootfd = -1;
	if (ferry_root_path_open(s->cfg->staging_dir, 0700, NULL, NULL, &rootfd, &err) < 0) {
		note_unstaged(d, err->message);
		ferry_error_free(err);
		return;
	}
	if (fstatfs(rootfd, &rfs) < 0 || fstatvfs(rootfd, &vfs) < 0 || fstat(rootfd, &rst) < 0 ||
	    fstat(s->ckpt_fd, &tst) < 0 || rst.st_dev == tst.st_dev)
		return; /* the same filesystem: nothing to gain */
	uint64_t need = rss + rss / 16 + (16u << 20), room = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	uint64_t avail = ferry_meminfo("MemAvailable"), total = ferry_meminfo("MemTotal");
	uint64_t cg = rfs.f_type == TMPFS_MAGIC ? cgroup_room() : UINT64_MAX;
	char why[256];
	if (need > room || (rfs.f_type == TMPFS_MAGIC && avail != UINT64_MAX && total != UINT64_MAX &&
			    need + total / 10 > avail)) {
		snprintf(why, sizeof(why),
			 "the job's %llu MiB do not fit (%llu MiB free there, %llu MiB of memory available)",
			 (unsigned long long)(rss >> 20), (unsigned long long)(room >> 20),
			 (unsigned long long)(avail == UINT64_MAX ? 0 : avail >> 20));
		note_unstaged(d, why);
		return;
	}
	if (need + need / 8 > cg) {
		snprintf(why, sizeof(why),
			 "the job's %llu MiB do not fit under the memory limit of its cgroup (%llu MiB left)",
			 (unsigned long long)(rss >> 20), (unsigned long long)(cg >> 20));
		note_unstaged(d, why);
		return;
	}
	if (flock(rootfd, LOCK_EX | LOCK_NB) == 0)
		prune_stale_staging(rootfd);
	while (flock(rootfd, LOCK_SH) < 0 && errno == EINTR)
		;
	if (make_staging(s, rootfd, s->cfg->staging_dir, d->lstage, &d->lstfd, &d->limgfd, NULL, &err) < 0) {
		note_unstaged(d, err->message);
		ferry_error_free(err);
		return;
	}
	(void)flock(rootfd, LOCK_UN);
	d->lrootfd = TAKE_FD(rootfd);
	d->staged = true;
}

/* Pins the instance and its monitor, reads its launch request, opens the target checkpoint
 * directory and its staging, and (--page-server) starts the transfer session. */
static void dump_prepare(struct dump *d, int *ret_pidfd, char **ret_launch, size_t *ret_launch_len)
{
	struct ferry_error *err = NULL;
	struct starter *s = d->s;
	int pidfd = pin_instance(s, d->name, &d->inst, &err); /* leaves us root */
	if (pidfd < 0)
		die_error(err);
	if (!d->inst->checkpoint)
		die("instance '%s' was not started with --criu-launch: it cannot be checkpointed", d->name);
	d->monfd = pin_monitor(d->inst);
	if (d->inst->workload <= 0)
		die("instance '%s' runs no workload to checkpoint (restore one into it with 'ferry checkpoint "
		    "instance --criu --restore %s')",
		    d->name, d->name);
	uint64_t rss = 0;
	if (ns_check_whole(d->inst, &rss, &err) < 0)
		die("checkpoint of '%s' refused: %s", d->name, err->message);
	read_launch_record(d, ret_launch, ret_launch_len);
	/* a migration may put the dump elsewhere than the instance's own checkpoint (it must
	 * still be a directory of the caller's) */
	d->target = s->req->checkpoint ? s->req->checkpoint : d->inst->checkpoint;
	if (checkpoint_open_dir(s, d->target, &err) < 0 ||
	    make_ckpt_staging(s, d->target, d->stage, &d->stfd, &d->imgfd,
			      d->lazy || (s->req->flags & FERRY_REQ_HOLD) ? &d->workfd : NULL, &err) < 0)
		die_error(err);
	stage_locally(d, rss);
	if (s->xfer_fd >= 0 && xfer_session_start(s, false, &d->xs, &err) < 0) {
		ckdir_rm_tree(s->ckpt_fd, d->stage, s->privs.uid, d->stfd);
		die("checkpoint of '%s' to the page server '%s': %s; the instance keeps running", d->name,
		    s->req->page_server, err->message);
	}
	*ret_pidfd = pidfd;
}

/* Starts the guard (which runs CRIU) on the pinned instance @pidfd. */
static void dump_start(struct dump *d, int pidfd)
{
	int rep[2], ctl[2], st[2] = {-1, -1}, hold[2] = {-1, -1};
	bool held = d->s->req->flags & FERRY_REQ_HOLD;
	if (pipe2(rep, O_CLOEXEC) < 0 || pipe2(ctl, O_CLOEXEC) < 0 || (d->lazy && pipe2(st, O_CLOEXEC) < 0) ||
	    (held && pipe2(hold, O_CLOEXEC) < 0))
		die("pipe: %s", strerror(errno));
	d->hold = hold[0]; /* CRIU's end, in the guard: ours is hold[1] */
	d->status = st[0];
	d->status_w = st[1];
	d->t_freeze = ferry_monotonic_ms();
	d->guard = fork();
	if (d->guard < 0)
		die("fork: %s", strerror(errno));
	if (d->guard == 0) {
		close(rep[0]);
		close(ctl[1]);
		closep(&hold[1]); /* our word alone: should we die, ferry-criu reads EOF */
		dump_guard(d, pidfd, rep[1], ctl[0]);
	}
	close(rep[1]);
	closep(&hold[0]);
	d->hold = hold[1];
	closep(&d->status_w);
	d->status_w = -1;
	close(ctl[0]);
	close(pidfd);
	d->rep = rep[0];
	d->ctl = ctl[1];
	if (d->xs)
		xfer_session_close(d->xs, d->lazy ? FERRY_XFER_LAZY : FERRY_XFER_PAGES); /* CRIU's now */
}

/* What a dump or a transfer has moved so far (it only grows): the page images' bytes that
 * tails_scan has read, and with a session the bytes its relay moved. */
static uint64_t progress_of(const struct tail_hashes *t, bool xfer)
{
	uint64_t n = xfer ? xfer_session_moved() : 0;
	for (size_t i = 0; t && i < t->n; i++)
		n += t->f[i].h.size + 1;
	return n;
}

/* An idle limit: expired once nothing has moved for @idle_s seconds. */
struct idle {
	long long idle_ms, deadline;
	uint64_t seen;
};

static void idle_start(struct idle *w, unsigned idle_s, uint64_t now_moved)
{
	w->idle_ms = (long long)idle_s * 1000;
	w->deadline = ferry_monotonic_ms() + w->idle_ms;
	w->seen = now_moved;
}

/* Milliseconds left before @w expires, with @moved what has moved by now (<= 0: expired). */
static long long idle_left(struct idle *w, uint64_t moved)
{
	long long now = ferry_monotonic_ms();
	if (moved != w->seen) {
		w->seen = moved;
		w->deadline = now + w->idle_ms;
		starter_progress();
	}
	return w->deadline - now;
}

/* How often a diskless dump looks at what its transfer has moved. */
#define XFER_TICK_MS 200

/* Waits for the guard's "D" (dumped), "E ..." (failed) or the timeout, hashing what CRIU has
 * written meanwhile (a local dump); a live dump's "S" (served: the images but the pages are
 * written, CRIU serves the pages from now on) is CRIU's status byte. The limit is on idleness:
 * 'criu timeout' seconds in which CRIU wrote no page and the transfer moved no byte, never the
 * dump's whole time (a large dump over a slow link or to a slow disk takes long and goes on).
 * Returns false on a timeout; @msg holds the first line. @tails NULL: nothing to hash. */
static bool dump_wait(struct dump *d, struct tail_hashes *tails, char *msg, size_t size)
{
	size_t got = 0;
	struct pollfd p[2] = {{.fd = d->rep, .events = POLLIN}, {.fd = d->status, .events = POLLIN}};
	struct idle w;
	idle_start(&w, d->s->cfg->criu_timeout, progress_of(tails, d->xs != NULL));
	bool in_time = true;
	while (got < size - 1 && !memchr(msg, '\n', got)) {
		if (!d->xs && tails)
			tails_scan(dump_images(d), tails);
		long long left = idle_left(&w, progress_of(tails, d->xs != NULL));
		if (left <= 0) {
			in_time = false;
			break;
		}
		if (left > (d->xs ? XFER_TICK_MS : TAIL_TICK_MS))
			left = d->xs ? XFER_TICK_MS : TAIL_TICK_MS;
		int r = poll(p, 2, (int)left);
		if (r <= 0)
			continue;
		if (p[1].revents && !p[0].revents) { /* a failure's report comes first */
			char c;
			ssize_t n = read(d->status, &c, 1);
			if (n < 0 && errno == EINTR)
				continue;
			close(d->status);
			d->status = p[1].fd = -1;
			if (n == 1 && got == 0) {
				snprintf(msg, size, "S");
				return true;
			}
			continue; /* CRIU ended without it: its report says why */
		}
		ssize_t n = read(d->rep, msg + got, size - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	msg[got] = '\0';
	char *nl = strchr(msg, '\n');
	if (nl)
		*nl = '\0';
	return in_time;
}

/* A failed dump's CRIU log, kept where the man page says: NAME/dump.log, the user's (the staging
 * directory that held it goes). Best effort: at most 64 MiB; never through a link. The copy is
 * made in the staging directory and made the user's there, then renamed into place: a starter
 * killed on the way leaves nothing of root's beside the generations (the guard removes the
 * staging directory and whatever is in it). */
static void keep_dump_log(struct dump *d)
{
	static const char kept[] = "dump.log.kept";
	_cleanup_close_ int in =
	    ckdir_openat(d->workfd >= 0 ? d->workfd : dump_images(d), DUMP_LOG, O_RDONLY | O_NOFOLLOW, 0);
	struct stat st;
	if (in < 0 || fstat(in, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	_cleanup_close_ int out = ckdir_openat(d->stfd, kept, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
	if (out < 0)
		return;
	bool ok = fchown(out, d->s->privs.uid, d->s->privs.gid) == 0;
	char buf[65536];
	ssize_t n;
	for (size_t total = 0; ok && total < (64u << 20) && (n = read(in, buf, sizeof(buf))) > 0;
	     total += (size_t)n)
		ok = ferry_write_all(out, buf, (size_t)n) == 0;
	if (!ok || renameat(d->stfd, kept, d->s->ckpt_fd, DUMP_LOG) < 0)
		unlinkat(d->stfd, kept, 0);
}

/* CRIU failed or timed out: the guard resumes the tree; we say why. */
static _noreturn_ void dump_failed(struct dump *d, bool in_time, const char *msg)
{
	struct ferry_error *err = NULL;
	keep_dump_log(d); /* before the guard removes the staging */
	/* Nothing moved for 'criu timeout' (a link cut or stalled): the transfer ends now, so that
	 * CRIU's next write to its page server fails (EPIPE; it ignores SIGPIPE) and it takes itself
	 * out of the tree at once, instead of blocking in it for the guard's GUARD_CRIU_MS */
	if (!in_time)
		(void)xfer_session_finish(0);
	close(d->ctl); /* the guard ends CRIU, resumes the tree and removes the staging */
	guard_reap(d);
	ckdir_rm_tree(d->s->ckpt_fd, d->stage, d->s->privs.uid, d->stfd);
	dump_unstage(d);
	if (d->xs) { /* the page server's end may have failed first (it gave no verdict yet) */
		xfer_session_blame(d->xs, &err);
		if (err)
			die("checkpoint of '%s': %s; the instance keeps running", d->name, err->message);
	}
	if (!in_time)
		die("checkpoint of '%s' made no progress for %u s ('criu timeout' in ferry.conf); the instance keeps running",
		    d->name, d->s->cfg->criu_timeout);
	if (*msg)
		die("checkpoint of '%s' failed: %s; the instance keeps running", d->name,
		    startswith(msg, "E ") ? msg + 2 : msg);
	die("checkpoint of '%s' failed: the dumping process died; the instance keeps running", d->name);
}

/* Live: waits until the destination's verdict is there to read, as long as pages move (the
 * destination restores first, then its lazy-pages daemon takes every page from our CRIU), at
 * most 'criu timeout' + 2 'peer timeout' without a byte. Meanwhile CRIU's report may say it ended: after
 * the verdict, that is how it ends; before it, the pages stop and the verdict says why. */
static int verdict_wait_idle(struct dump *d, struct ferry_error **err)
{
	struct idle w;
	idle_start(&w, ferry_config_verdict_wait(d->s->cfg), progress_of(NULL, true));
	struct pollfd p = {.fd = d->s->xfer_fd, .events = POLLIN};
	for (;;) {
		long long left = idle_left(&w, progress_of(NULL, true));
		if (left <= 0)
			return ferry_error_msg(err, ETIMEDOUT,
					       "no page moved and no word from the destination for %u s",
					       ferry_config_verdict_wait(d->s->cfg));
		int r = poll(&p, 1, (int)(left < XFER_TICK_MS ? left : XFER_TICK_MS));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return ferry_error_set(err, errno, "poll");
	}
}

/* Sends the sealed generation (but its pages, already there) to the receiver, and agrees on the
 * move: the destination keeps its copy only on our commit; without it, we keep ours. */
static int dump_send(struct dump *d, struct ferry_manifest *m, const char *text, char **ret_gen,
		     struct ferry_error **err)
{
	struct starter *s = d->s;
	/* s->xfer_fd is the session's control channel */
	int r = xfer_send_files(s, d->xs, d->imgfd, m, text, err);
	/* the destination restores meanwhile, nothing moves: its CRIU is bounded by 'criu timeout'.
	 * Live, its verdict comes once the last page is in: while pages move, it waits */
	if (r == 0 && d->lazy)
		r = verdict_wait_idle(d, err);
	if (r == 0)
		r = ferry_xfer_read_verdict(s->xfer_fd, ferry_config_verdict_wait(s->cfg), err);
	/* a migration's commit point: the decision, durable, before the commit goes; once it is
	 * written the instance is the destination's, even if the commit is lost (its ferryd then
	 * restarts it from the copy it keeps) */
	if (r == 0 && s->decision_fd >= 0 &&
	    (pwrite(s->decision_fd, "C", 1, 0) != 1 || fdatasync(s->decision_fd) < 0))
		r = ferry_error_set(err, errno ? errno : EIO, "write the migration's decision");
	if (r == 0 && ferry_xfer_send_commit(s->xfer_fd) < 0 && !decision_written(s->decision_fd))
		r = ferry_error_msg(err, EPIPE, "the destination went away before the move was agreed");
	if (r == -ECONNRESET || r == -EPIPE || r == -EIO)
		xfer_session_blame(d->xs, err);
	if (r == 0)
		*ret_gen = xasprintf("sent to %s", s->req->page_server);
	return r;
}

/* How much a drain writes before it asks the disk to start on it: the node's dirty memory stays
 * bounded, and the last fdatasync waits only for the tail. */
#define DRAIN_CHUNK (64u << 20)

/* One file of a staged dump, from node-local memory into the checkpoint's staging, synced, the
 * owner's to read as sealing made it; its memory freed at once. */
static int drain_file(struct dump *d, const char *name, bool evict, struct ferry_error **err)
{
	_cleanup_close_ int in = ckdir_openat(d->limgfd, name, O_RDONLY, 0);
	struct stat st;
	if (in < 0 || fstat(in, &st) < 0)
		return ferry_error_set(err, errno, "read '%s' of the staged dump", name);
	_cleanup_close_ int out =
	    openat(d->imgfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
	if (out < 0)
		return ferry_error_set(err, errno, "write '%s' into '%s'", name, d->target);
	for (off_t done = 0; done < st.st_size;) {
		size_t want =
		    (size_t)(st.st_size - done) < DRAIN_CHUNK ? (size_t)(st.st_size - done) : DRAIN_CHUNK;
		ssize_t n = sendfile(out, in, NULL, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return ferry_error_set(err, n < 0 ? errno : EIO, "write '%s' into '%s'", name,
					       d->target);
		(void)sync_file_range(out, done, n, SYNC_FILE_RANGE_WRITE);
		done += n;
		starter_progress();
	}
	if (fdatasync(out) < 0)
		return ferry_error_set(err, errno, "sync '%s' in '%s'", name, d->target);
	int r = ckdir_grant_owner(out, d->s->privs.uid, false, err);
	if (r < 0)
		return r;
	if (evict)
		(void)posix_fadvise(out, 0, 0, POSIX_FADV_DONTNEED);
	(void)unlinkat(d->limgfd, name, 0);
	return 0;
}

/* A staged dump, sealed in node-local memory (the job runs again meanwhile): every file of its
 * manifest into the checkpoint's staging, the manifest last, all of it synced there before it is
 * published. Those files were hashed as CRIU wrote them and have been root's alone since. */
static int drain(struct dump *d, const struct ferry_manifest *m, bool evict, struct ferry_error **err)
{
	if (fchown(d->imgfd, 0, 0) < 0 || fchmod(d->imgfd, 0700) < 0)
		return ferry_error_set(err, errno, "prepare the checkpoint's staging");
	for (size_t i = 0; i <= m->n_files; i++) {
		int r = drain_file(d, i < m->n_files ? m->files[i].name : FERRY_MANIFEST_NAME, evict, err);
		if (r < 0)
			return r;
	}
	if (fsync(d->imgfd) < 0)
		return ferry_error_set(err, errno, "sync the generation in '%s'", d->target);
	return ckdir_grant_owner(d->imgfd, d->s->privs.uid, true, err);
}

/* Seals the dump and publishes it (or sends it); then tells the guard to end the tree ('K') or
 * resume it ('C'). */
static int dump_commit(struct dump *d, const char *launch, size_t launch_len, struct tail_hashes *tails,
		       struct ferry_manifest *m, char **ret_gen, struct ferry_error **err)
{
	struct starter *s = d->s;
	_cleanup_free_ char *text = NULL;
	/* a dump that a ferryd asked for elsewhere than the instance's own checkpoint is a
	 * migration's: another node restarts it */
	bool evict = s->req->checkpoint && !d->xs;
	int r =
	    seal_generation(dump_images(d), m, launch, launch_len, tails, evict && !d->staged, &text, err);
	tails_free(tails);
	if (r == 0 && d->staged)
		r = drain(d, m, evict, err);
	if (r == 0)
		r = d->xs ? dump_send(d, m, text, ret_gen, err)
			  : publish_generation(s, d->stfd, ret_gen, err);
	/* a default-mode migration's, published: the tree ends from here on, whatever becomes of us
	 * (a byte ferryd reads once we ended, as the guard does: neither takes our death for a
	 * failed dump, and the job is restarted from the shared directory, never lost with it) */
	if (r == 0 && evict && s->decision_fd >= 0 && pwrite(s->decision_fd, "C", 1, 0) != 1)
		r = ferry_error_set(err, errno ? errno : EIO, "note the published dump for ferryd");
	d->t_done = ferry_monotonic_ms();
	(void)ferry_write_all(d->ctl, r < 0 ? "C" : "K", 1);
	close(d->ctl);
	guard_reap(d);
	return r;
}

/* The group's word on stdin: 'C' (commit) or anything else. A held member's dump waits
 * FERRY_HOLD_WAIT_S for it (ferry checkpoint group sends it once every member is held: the
 * slowest member's dump); then, or on EOF, the dump is given up. */
static char group_word(unsigned seconds)
{
	struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
	long long end = ferry_monotonic_ms() + (long long)seconds * 1000;
	char c = 0;
	for (;;) {
		long long left = end - ferry_monotonic_ms();
		if (left <= 0)
			return 0;
		int r = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		ssize_t n = read(STDIN_FILENO, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		return n == 1 ? c : 0;
	}
}

/* A group member's dump (FERRY_REQ_HOLD), CRIU held at its post-dump notification with the tree
 * frozen and its network locked: seals the generation, says "held", and on the group's 'C'
 * publishes it and lets CRIU finish (the tree stops, or resumes with --leave-running); on
 * anything else CRIU resumes the tree and the generation goes. So no member goes on, and none
 * talks to another, before every member's generation is written. */
static int dump_held(struct dump *d, const char *launch, size_t launch_len, struct tail_hashes *tails,
		     struct ferry_manifest *m, char **ret_gen, struct ferry_error **err)
{
	struct starter *s = d->s;
	int r = seal_generation(dump_images(d), m, launch, launch_len, tails, false, NULL, err);
	tails_free(tails);
	if (r == 0) {
		fputs("held\n", stdout);
		fflush(stdout);
		if (group_word(FERRY_HOLD_WAIT_S) != 'C')
			r = ferry_error_msg(err, ECANCELED,
					    "the group's checkpoint was given up (another member failed, or "
					    "ferry stopped)");
	}
	if (r == 0)
		r = publish_generation(s, d->stfd, ret_gen, err);
	/* CRIU goes on: it ends the dump, or (anything but 'C') resumes the tree and fails */
	(void)ferry_write_all(d->hold, r == 0 ? "C" : "A", 1);
	close(d->hold);
	d->hold = -1;
	char msg[4096] = "";
	bool in_time = dump_wait(d, NULL, msg, sizeof(msg)); /* (no image is written after) */
	if (r == 0 && (!in_time || !streq(msg, "D")))
		/* published, and CRIU failed only after: the generation holds the whole tree, which
		 * the guard ends (or leaves running) as after any dump */
		fprintf(stderr, "ferry: note: CRIU failed after checkpoint '%s' was published: %s\n", d->name,
			in_time ? msg : "timeout");
	d->t_done = ferry_monotonic_ms();
	(void)ferry_write_all(d->ctl, r < 0 ? "C" : "K", 1);
	close(d->ctl);
	guard_reap(d);
	return r;
}

/* After a published (or sent) dump: what the user and ferryd are told. */
static void dump_report(struct dump *d, const struct ferry_manifest *m, const char *gen)
{
	struct starter *s = d->s;
	/* The user's own dump ends the instance: its name is free once we return, so that
	 * 'instance start --criu-restart' can follow at once (freeing gigabytes takes the
	 * kernel a while). A migration's does not wait: the destination restores meanwhile. */
	if (!(s->req->flags & FERRY_REQ_LEAVE_RUNNING) && !d->xs && !s->req->checkpoint)
		wait_instance_end(d->monfd, d->name, s->cfg->criu_timeout);
	if (d->xs) {
		(void)xfer_session_finish(30); /* committed: the connection must end clean */
		ckdir_rm_tree(s->ckpt_fd, d->stage, s->privs.uid, d->stfd);
		printf("%s\n", gen);
	} else {
		unlinkat(s->ckpt_fd, d->stage, AT_REMOVEDIR);
		dump_unstage(d);
		prune(s->ckpt_fd, s->privs.uid, gen, true, false);
		printf("%s/%s\n", d->target, gen);
	}
	if (s->req->flags & FERRY_REQ_TIMINGS) {
		uint64_t bytes = 0, plain = 0, sent = 0;
		for (size_t i = 0; i < m->n_files; i++)
			bytes += m->files[i].size;
		xfer_session_pages(&plain, &sent);
		/* (ferryd and 'ferry run' read the first keys by name, or in this order); ended: the
		 * dumped tree's end, its memory freed (wait_instance_end) */
		printf("timing freeze=%lld dumped=%lld done=%lld bytes=%" PRIu64
		       " staged=%d pages_plain=%" PRIu64 " pages_sent=%" PRIu64 " start=%lld ended=%lld\n",
		       d->t_freeze, d->t_dumped, d->t_done, bytes, d->staged, plain, sent, starter_t_start,
		       ferry_monotonic_ms());
	}
}

void op_checkpoint_dump(struct starter *s)
{
	struct ferry_error *err = NULL;
	struct dump d = {.s = s,
			 .name = s->req->instance,
			 .monfd = -1,
			 .stfd = -1,
			 .imgfd = -1,
			 .workfd = -1,
			 .lrootfd = -1,
			 .lstfd = -1,
			 .limgfd = -1,
			 .status = -1,
			 .status_w = -1,
			 .hold = -1,
			 .lazy = (s->req->flags & FERRY_REQ_LAZY) && s->xfer_fd >= 0};
	if ((s->req->flags & FERRY_REQ_HOLD) && s->xfer_fd >= 0)
		die("a group member's checkpoint is written to its own checkpoint, not to a page server");
	int pidfd = -1;
	_cleanup_free_ char *launch = NULL;
	size_t launch_len = 0;
	dump_prepare(&d, &pidfd, &launch, &launch_len);
	dump_start(&d, pidfd);
	struct tail_hashes tails = {0};
	char msg[4096] = "";
	bool in_time = dump_wait(&d, &tails, msg, sizeof(msg));
	if (!in_time || !streq(msg, d.lazy ? "S" : d.hold >= 0 ? "H" : "D"))
		dump_failed(&d, in_time, msg);
	d.t_dumped = ferry_monotonic_ms();
	_cleanup_(ferry_manifest_freep) struct ferry_manifest *m =
	    manifest_for(s, d.inst->name, d.inst->image, d.inst->image_fingerprint, d.inst->workload);
	/* sealed with the checkpoint: its restart makes the same kind of network namespace */
	m->netns = xstrdup(d.inst->loopback ? "loopback" : d.inst->networks ? "own" : "host");
	m->lazy_pages = d.lazy;
	/* a group member's: the group's cut, signed with the rest (the request checked it) */
	m->group = s->req->group ? xstrdup(s->req->group) : NULL;
	_cleanup_free_ char *gen = NULL;
	if ((d.hold >= 0 ? dump_held(&d, launch, launch_len, &tails, m, &gen, &err)
			 : dump_commit(&d, launch, launch_len, &tails, m, &gen, &err)) < 0) {
		ckdir_rm_tree(s->ckpt_fd, d.stage, s->privs.uid, d.stfd);
		dump_unstage(&d);
		die("checkpoint of '%s': %s; the instance keeps running", d.name, err->message);
	}
	dump_report(&d, m, gen);
	ferry_instance_free(d.inst);
	exit(0);
}

/* The sealed launch request: read once, through the fd that is hashed, and decoded from those
 * very bytes (never opened again by name: what is checked is what is used). */
static int verify_launch(int fd, const struct ferry_manifest_file *f, char **ret_buf, size_t *ret_len,
			 struct ferry_error **err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	char sha[65];
	int r = ferry_read_all(fd, FERRY_REQUEST_MAX, &buf, &len, err);
	if (r < 0 || (r = ferry_sha256_buf(buf, len, sha, err)) < 0)
		return ferry_error_wrap(err, "'%s'", f->name);
	if (len != f->size || !streq(sha, f->sha256))
		return ferry_error_msg(err, EPERM, "file '%s' of the checkpoint was altered", f->name);
	*ret_buf = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

/* @fd is a file as the seal left it: root's regular file, written by no one else, one link. */
static bool sealed_file(int fd, struct stat *st)
{
	return fstat(fd, st) == 0 && S_ISREG(st->st_mode) && st->st_uid == 0 && !(st->st_mode & 022) &&
	       st->st_nlink == 1;
}

/* One file of the generation, which must be ferry's sealed file of the manifest's size; its
 * content is hashed now unless @hash is false or it is a pages image (see verify_files). */
static int verify_one(struct starter *s, int genfd, const struct ferry_manifest_file *f, bool hash,
		      char **ret_launch, size_t *ret_launch_len, struct ferry_error **err)
{
	_cleanup_close_ int fd = ckdir_openat(genfd, f->name, O_RDONLY | O_NONBLOCK, 0);
	struct stat st;
	if (fd < 0)
		return ferry_error_msg(err, ENOENT, "file '%s' of the checkpoint is missing", f->name);
	if (!sealed_file(fd, &st))
		return ferry_error_msg(err, EPERM, "file '%s' of the checkpoint is not ferry's sealed file",
				       f->name);
	if ((uint64_t)st.st_size != f->size)
		return ferry_error_msg(err, EPERM, "file '%s' of the checkpoint was altered", f->name);
	if (streq(f->name, LAUNCH_FILE))
		return verify_launch(fd, f, ret_launch, ret_launch_len, err);
	if (!hash)
		return 0;
	if (is_pages_image(f->name)) {
		s->pages = xrealloc(s->pages, (s->n_pages + 1) * sizeof(*s->pages));
		s->pages[s->n_pages++] = (struct restore_page_file){TAKE_FD(fd), f};
		return 0;
	}
	uint64_t size = 0;
	char sha[65];
	int r = ferry_sha256_fd(fd, &size, sha, err);
	if (r < 0)
		return ferry_error_wrap(err, "'%s'", f->name);
	if (size != f->size || !streq(sha, f->sha256))
		return ferry_error_msg(err, EPERM, "file '%s' of the checkpoint was altered", f->name);
	return 0;
}

/* Checks that @genfd holds exactly @m's files, root's and read-only, and returns the launch
 * request's bytes. @hash false: the sizes only (the generation was sealed by this very process,
 * see verify_checkpoint; the launch request is still hashed). Otherwise every file is hashed
 * now, except the page images (is_pages_image), whose sizes are checked now and which are
 * opened into s->pages: their content is hashed while CRIU restores (run_restorer) and compared
 * before any restored process runs. Everything that steers CRIU (credentials, memory layout,
 * files, sockets) is thus verified before it starts, and the bytes of the user's own memory,
 * on the other core while CRIU copies them. A restart then takes about max(hash, CRIU) instead
 * of their sum. */
static int verify_files(struct starter *s, int genfd, const struct ferry_manifest *m, bool hash,
			char **ret_launch, size_t *ret_launch_len, struct ferry_error **err)
{
	int r = 0;
	for (size_t i = 0; i < m->n_files && r == 0; i++)
		r = verify_one(s, genfd, &m->files[i], hash, ret_launch, ret_launch_len, err);
	if (r < 0)
		return r;
	if (!*ret_launch)
		return ferry_error_msg(err, EINVAL, "the checkpoint has no launch request");
	/* nothing may be there that the manifest does not list */
	DIR *d = ferry_opendir_at(genfd);
	if (!d)
		return ferry_error_set(err, errno, "read the checkpoint");
	struct dirent *de;
	while (r == 0 && (de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, "..") &&
		    !streq(de->d_name, FERRY_MANIFEST_NAME) && !ferry_manifest_find(m, de->d_name))
			r = ferry_error_msg(err, EPERM, "file '%s' in the checkpoint is not in its manifest",
					    de->d_name);
	closedir(d);
	return r;
}

/* The generation 'current' names in the checkpoint directory (opened by the caller), root's:
 * its fd in *ret_genfd. Leaves us root. */
static int open_current(struct starter *s, const char *path, int *ret_genfd, struct ferry_error **err)
{
	char target[64] = "";
	ssize_t n = readlinkat(s->ckpt_fd, "current", target, sizeof(target) - 1);
	if (n < 0) {
		bool any = false;
		DIR *d = ferry_opendir_at(s->ckpt_fd);
		struct dirent *de;
		while (d && (de = readdir(d)))
			any = any || gen_name(de->d_name, NULL) || startswith(de->d_name, ".staging-");
		if (d)
			closedir(d);
		if (any)
			return ferry_error_msg(
			    err, ENOENT,
			    "checkpoint '%s' is incomplete (a dump did not finish): it cannot be restored",
			    path);
		return ferry_error_msg(
		    err, ENOENT, "checkpoint '%s' is empty: checkpoint an instance into it first", path);
	}
	target[n] = '\0';
	if (!gen_name(target, NULL))
		return ferry_error_msg(err, EPERM, "checkpoint '%s': 'current' does not name a generation",
				       path);
	int r = ferry_privs_raise(&s->privs, err);
	if (r < 0)
		return r;
	int genfd = ckdir_openat(s->ckpt_fd, target, O_RDONLY | O_DIRECTORY, 0);
	struct stat st;
	if (genfd < 0)
		return ferry_error_msg(err, ENOENT, "checkpoint '%s' is incomplete: '%s' is missing", path,
				       target);
	if (fstat(genfd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022)) {
		close(genfd);
		return ferry_error_msg(
		    err, EPERM, "checkpoint '%s' was not sealed by ferry (%s is not root's)", path, target);
	}
	*ret_genfd = genfd;
	return 0;
}

/* The generation's manifest: root's, its signature verified before it is parsed, made by the
 * caller. Its text in *ret_text (to compare with one this process sealed). */
static int read_manifest(struct starter *s, int genfd, const char *path, struct ferry_manifest **ret,
			 char **ret_text, size_t *ret_len, struct ferry_error **err)
{
	_cleanup_close_ int mfd = ckdir_openat(genfd, FERRY_MANIFEST_NAME, O_RDONLY | O_NONBLOCK, 0);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	struct stat st;
	if (mfd < 0 || fstat(mfd, &st) < 0 || !S_ISREG(st.st_mode))
		return ferry_error_msg(err, ENOENT, "checkpoint '%s' is incomplete: it has no manifest",
				       path);
	if (st.st_uid != 0 || (st.st_mode & 022) ||
	    ferry_read_all(mfd, FERRY_MANIFEST_MAX, &text, &len, err) < 0)
		return ferry_error_msg(err, EPERM, "checkpoint '%s': its manifest is not ferry's", path);
	unsigned char key[FERRY_KEY_MAX];
	size_t keylen = 0;
	int r = ferry_key_load(FERRY_KEY_PATH, key, &keylen, err);
	if (r < 0)
		return r;
	struct ferry_manifest *m = NULL;
	r = ferry_manifest_verify(text, len, key, keylen, &m, err);
	explicit_bzero(key, sizeof(key));
	if (r < 0)
		return ferry_error_wrap(err, "checkpoint '%s' is refused", path);
	if (m->uid != s->privs.uid) {
		ferry_manifest_free(m);
		return ferry_error_msg(
		    err, EPERM, "checkpoint '%s' was made by another user: it cannot be restored by you",
		    path);
	}
	*ret = m;
	*ret_text = TAKE_PTR(text);
	*ret_len = len;
	return 0;
}

/* Opens @path's current generation and verifies everything before CRIU may see it: sets
 * s->ckpt_fd, s->restore_fd and s->manifest and returns the sealed launch request. */
static int verify_checkpoint(struct starter *s, const char *path, struct ferry_request **ret_launch,
			     struct ferry_error **err)
{
	int genfd = -1;
	int r = checkpoint_open_dir(s, path, err);
	if (r < 0 || (r = open_current(s, path, &genfd, err)) < 0)
		return r;
	struct ferry_manifest *m = NULL;
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if ((r = read_manifest(s, genfd, path, &m, &text, &len, err)) < 0) {
		close(genfd);
		return r;
	}
	/* A generation this process has just received, hashed and sealed (a diskless migration's
	 * destination) is not hashed again: its files and directory are root's and read-only, in
	 * a generation only root can write, so its content is what was hashed a moment ago (the
	 * owners and modes are still checked, and the manifest must be the very one we signed). A
	 * second pass over the pages would cost S / (SHA-256 rate) of downtime. */
	bool ours = s->sealed_manifest && len == strlen(s->sealed_manifest) &&
		    memcmp(text, s->sealed_manifest, len) == 0;
	_cleanup_free_ char *lbuf = NULL;
	size_t llen = 0;
	struct ferry_request *launch = NULL;
	if (m->lazy_pages && !(ours && s->lazy))
		/* its memory was never in it: the source served it to the restore it was made for */
		r = ferry_error_msg(err, EINVAL,
				    "checkpoint '%s' holds no memory (a live migration's, whose source "
				    "served the pages): it cannot be restarted",
				    path);
	/* a group's restart: only a generation of the group's cut, or the members would go on from
	 * different moments */
	else if (s->req->group && (!m->group || !streq(m->group, s->req->group)))
		r = ferry_error_msg(err, ESTALE,
				    "checkpoint '%s': its current generation is not of the group's "
				    "checkpoint %.8s (it was checkpointed on its own since)",
				    path, s->req->group);
	else if ((r = verify_files(s, genfd, m, !ours, &lbuf, &llen, err)) < 0)
		ferry_error_wrap(err, "checkpoint '%s' is refused", path);
	/* the launch request: the bytes verified with the rest */
	else if (plan_decode_launch(s, lbuf, llen, &launch, err) < 0 ||
		 launch->op != FERRY_OP_INSTANCE_START || !(launch->flags & FERRY_REQ_CRIU_LAUNCH))
		r = ferry_error_msg(err, EINVAL, "checkpoint '%s' has no valid launch request", path);
	if (r < 0) {
		close(genfd);
		ferry_manifest_free(m);
		ferry_request_free(launch);
		return r;
	}
	s->restore_fd = genfd;
	s->manifest = m;
	/* that generation is a migration's transient copy (ferryd's, not the user's own --page-server
	 * receive into a checkpoint they keep): the restore may use it up (grant_dedup) */
	s->dedup = ours && !s->lazy && (s->req->flags & FERRY_REQ_MIGRATED);
	*ret_launch = launch;
	return ferry_privs_lower(&s->privs, err);
}

int checkpoint_prepare_restart(struct starter *s, struct ferry_error **err)
{
	struct ferry_request *launch = NULL;
	int r = verify_checkpoint(s, s->req->checkpoint, &launch, err);
	if (r < 0)
		return r;
	/* the restart's choices override the recorded image, instance name and page server */
	struct ferry_request *req = s->req;
	launch->flags = (launch->flags & ~(uint32_t)FERRY_REQ_CRIU_LAUNCH) | FERRY_REQ_CRIU_RESTART |
			(req->flags & FERRY_REQ_TCP_CLOSE);
	if (req->image) {
		free(launch->image);
		launch->image = TAKE_PTR(req->image);
	}
	if (req->instance) {
		free(launch->instance);
		launch->instance = TAKE_PTR(req->instance);
	}
	if (!(req->flags & FERRY_REQ_MIGRATED) || !launch->checkpoint) {
		free(launch->checkpoint);
		launch->checkpoint = TAKE_PTR(req->checkpoint);
	}
	launch->page_server = TAKE_PTR(req->page_server);
	ferry_request_free(req);
	s->req = launch;
	return 0;
}

/* Live: the directory of CRIU's kernel facts for this boot (criu.h), root's, which ferryd made
 * at its start; CRIU as the user loads them from there. */
static int open_kdat(struct ferry_error **err)
{
	char dir[256];
	int r = ferry_criu_kdat_dir(dir, sizeof(dir));
	if (r < 0)
		return ferry_error_set(err, -r, "read the boot id");
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022)) {
		closep(&fd);
		return ferry_error_msg(
		    err, ENOENT,
		    "'%s' is missing or not root's: ferryd records CRIU's facts there at its "
		    "start (restart ferryd on this node)",
		    dir);
	}
	return fd;
}

/* CRIU restores a process's fds above its own service fds, which it places under its soft
 * RLIMIT_NOFILE: raised to the hard limit, after the drop gave the user's own back (root's, set
 * at the starter's start, are root's alone: ferry_privs_own_limits). */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Diskless migration (s->dedup): the restore's CRIU runs with --auto-dedup and punches a hole in
 * a page image for every run of pages it has restored, so the node's memory holds the instance
 * about once instead of twice (the tmpfs copy and the restored one) and the restored pages go
 * where the copy's were, hot. CRIU opens exactly the page images (pages-*.img: CRIU's
 * CR_FD_PAGES, for processes and shared memory alike) O_RDWR then (criu/pagemap.c,
 * open_page_read_at; criu/mem.c, prepare_vma_ios), through the images directory, as the user:
 * these, and only these, the user may now write. Everything else that steers CRIU (core,
 * memory layout, files, sockets, the pagemaps) stays root's and read-only, and so does the
 * directory: nothing can be added, renamed or removed. What the user could change is their own
 * memory, in the process that is about to run as them (what ptrace of it gives them anyway);
 * no process with more rights than the user reads those files after this (no --page check:
 * the generation was hashed as it arrived, see verify_checkpoint).
 * The grant also marks the generation used up: the ACL mask makes the mode group-writable and
 * verify_one refuses it as "not ferry's sealed file" from then on: punched holes read as
 * zeros, and no later restart may take them for the instance's memory. Called as root. */
static int grant_dedup(struct starter *s, struct ferry_error **err)
{
	for (size_t i = 0; i < s->manifest->n_files; i++) {
		const char *name = s->manifest->files[i].name;
		if (!is_pages_image(name))
			continue;
		_cleanup_close_ int fd = ckdir_openat(s->restore_fd, name, O_RDONLY | O_NONBLOCK, 0);
		struct stat st;
		if (fd < 0 || !sealed_file(fd, &st))
			return ferry_error_msg(
			    err, EPERM, "file '%s' of the checkpoint is not ferry's sealed file", name);
		int r = ckdir_grant_owner_write(fd, s->privs.uid, err);
		if (r < 0)
			return ferry_error_wrap(err, "'%s'", name);
	}
	return 0;
}

/* The restorer's end when it cannot go on: why, on @report. */
static _noreturn_ void restorer_fail(int report, struct ferry_error *err)
{
	report_error(report, err);
	_exit(255);
}

/* The capabilities the restorer keeps, into @keep (room for 8); returns how many. */
static size_t restorer_caps(const struct starter *s, bool net, int *keep)
{
	/* A loopback-only namespace also gets CAP_NET_RAW: CRIU's libsoccr sends the FIN of a
	 * half-closed connection it restores through a raw socket. Its reach is that namespace's
	 * lo alone (no setns without CAP_SYS_ADMIN); on a --net instance's real interface a raw
	 * socket could forge packets on the node's network, so there it is not given. */
	static const int keep_lo[] = {CAP_CHECKPOINT_RESTORE, CAP_SETPCAP, CAP_NET_ADMIN, CAP_NET_RAW};
	static const int keep_net[] = {CAP_CHECKPOINT_RESTORE, CAP_SETPCAP, CAP_NET_ADMIN};
	static const int keep_plain[] = {CAP_CHECKPOINT_RESTORE, CAP_SETPCAP};
	bool lo = s->loopback_net && !s->networks;
	const int *base = lo ? keep_lo : net ? keep_net : keep_plain;
	size_t n_keep = lo ? ARRAY_SIZE(keep_lo) : net ? ARRAY_SIZE(keep_net) : ARRAY_SIZE(keep_plain);
	/* Live: CRIU opens a userfaultfd per restored process for the lazy-pages daemon, with the
	 * fork event (a child made during post-copy must get its pages too): the kernel wants
	 * CAP_SYS_PTRACE for both (vm.unprivileged_userfaultfd = 0). Its reach is this container's
	 * pid namespace, where every process is the user's: init dropped to the user before we
	 * started (container_init), the starter and its monitor are outside. */
	memcpy(keep, base, n_keep * sizeof(*keep));
	if (s->lazy)
		keep[n_keep++] = CAP_SYS_PTRACE;
	return n_keep;
}

/* ferry-criu's options, into @argv; returns how many. Diskless: first grants the user the page
 * images (grant_dedup), or fails on @report. */
static size_t restorer_options(struct starter *s, bool net, char *timeout, int report, char **argv)
{
	struct ferry_error *err = NULL;
	size_t argc = 0;
	argv[argc++] = "ferry-criu";
	argv[argc++] = "restore";
	argv[argc++] = "--timeout";
	argv[argc++] = timeout;
	if (net)
		argv[argc++] = "--tcp";
	if (s->req->flags & FERRY_REQ_TCP_CLOSE)
		argv[argc++] = "--tcp-close";
	if (s->lazy) /* the memory comes from the lazy-pages daemon (lazy_daemon_start) */
		argv[argc++] = "--lazy";
	/* the new container's /tmp is its own tmpfs, empty: what the dump saved there comes back */
	if (s->private_tmp && s->manifest && ferry_manifest_find(s->manifest, FERRY_CRIU_TMP_ARCHIVE))
		argv[argc++] = "--restore-tmp";
	if (s->dedup) {
		if (ferry_privs_raise(&s->privs, &err) < 0 || grant_dedup(s, &err) < 0) {
			ferry_error_wrap(&err, "the restore cannot free the received pages as it goes");
			restorer_fail(report, err);
		}
		argv[argc++] = "--dedup";
	}
	return argc;
}

/* A "--page SIZE:SHA256:NAME" option into @argv for each page image, and its fd: @src in the
 * starter, @dst in ferry-criu. */
static void restorer_pages(const struct starter *s, char **argv, int *src, int *dst)
{
	for (size_t i = 0; i < s->n_pages; i++) {
		const struct ferry_manifest_file *f = s->pages[i].f;
		argv[2 * i] = "--page";
		argv[2 * i + 1] = xasprintf("%" PRIu64 ":%s:%s", f->size, f->sha256, f->name);
		src[i] = s->pages[i].fd;
		dst[i] = FERRY_CRIU_PAGES_FD + (int)i;
	}
}

/* The restorer: in the container, as the user with only the capabilities the restore needs,
 * through ferry-criu, which hashes the page images while CRIU restores and checks them, and the
 * restored processes' credentials, before any of them runs. */
void run_restorer(struct starter *s, int report, int pid_fd)
{
	struct ferry_error *err = NULL;
	bool net = s->networks != NULL || s->restore_net || s->loopback_net;
	int keep[8];
	size_t n_keep = restorer_caps(s, net, keep);
	setpgid(0, 0);
	if (s->n_pages > FERRY_CRIU_MAX_PAGES) {
		ferry_error_msg(&err, E2BIG, "the checkpoint has more than %d page images",
				FERRY_CRIU_MAX_PAGES);
		restorer_fail(report, err);
	}
	char timeout[24];
	snprintf(timeout, sizeof(timeout), "%u", s->cfg->criu_timeout);
	size_t fixed_n = 4, n_fds = fixed_n + s->n_pages;
	char **argv = xzalloc((10 + 2 * s->n_pages + 1) * sizeof(char *));
	int *src = xzalloc(n_fds * sizeof(int)), *dst = xzalloc(n_fds * sizeof(int));
	size_t argc = restorer_options(s, net, timeout, report, argv);
	int fixed[4][2] = {{s->restore_fd, FERRY_CRIU_IMAGES_FD},
			   {s->ckpt_fd, FERRY_CRIU_WORK_FD},
			   {report, FERRY_CRIU_REPORT_FD},
			   {pid_fd, FERRY_CRIU_PID_FD}};
	for (size_t i = 0; i < fixed_n; i++) {
		src[i] = fixed[i][0];
		dst[i] = fixed[i][1];
	}
	restorer_pages(s, argv + argc, src + fixed_n, dst + fixed_n);
	if (ferry_privs_drop(&s->privs, keep, n_keep, &err) < 0)
		restorer_fail(report, err);
	raise_nofile();
	criurun_exec(argv, src, dst, n_fds, report, 255);
}

void op_checkpoint_delete(struct starter *s)
{
	struct ferry_error *err = NULL;
	if (checkpoint_open_dir(s, s->req->checkpoint, &err) < 0)
		die_error(err);
	if (ferry_privs_raise(&s->privs, &err) < 0)
		die_error(err);
	unlinkat(s->ckpt_fd, "current", 0);
	while (flock(s->ckpt_fd, LOCK_EX) < 0 && errno == EINTR) /* (see make_ckpt_staging) */
		;
	prune(s->ckpt_fd, s->privs.uid, NULL, true, true);
	exit(0);
}

/* The child that becomes the node's CRIU (a page server, a lazy-pages daemon) for the restart:
 * in the host's network and user namespaces, as the user with CAP_CHECKPOINT_RESTORE alone
 * (CRIU insists on it even to serve pages), in a process group of its own; the @n @fds become
 * 3, 4, ... in order: CRIU's, its report (where an error before the exec goes), and last a
 * pidfd of the starter. Its CRIU reads no configuration of the user's: the environment has no
 * HOME, and the images it reads are root's, sealed. It is pid 1 of a pid namespace of its own
 * (host_criu_spawn): when it ends, however it ends, the kernel ends all it left, such as the
 * child of a kerndat probe that CRIU, killed early, leaves stopped for good where nothing else
 * would end it. CRIU reads /proc/<its pid>, so it gets that namespace's /proc, in a mount
 * namespace whose mounts propagate nothing back. */
static _noreturn_ void host_criu_exec(struct starter *s, int *fds, int n, char *const argv[], const char *env)
{
	struct ferry_error *err = NULL;
	static const int dst[] = {3, 4, 5, 6, 7, 8, 9, 10};
	int rep = 3 + n - 2;
	struct pollfd up = {.fd = 3 + n - 1, .events = POLLIN};
	setpgid(0, 0);
	if (criurun_place_fds(fds, dst, (size_t)n) != (size_t)n)
		_exit(127);
	fcntl(rep, F_SETFD, FD_CLOEXEC);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		ferry_error_set(&err, errno, "mount a /proc for CRIU's pid namespace");
	static const int keep[] = {CAP_CHECKPOINT_RESTORE};
	if (err || ferry_privs_drop(&s->privs, keep, ARRAY_SIZE(keep), &err) < 0) {
		report_error(rep, err);
		_exit(127);
	}
	/* after the drop (it clears the setting); the starter's pidfd says whether it ended first */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || poll(&up, 1, 0))
		_exit(127);
	close(up.fd);
	char *const envp[] = {"PATH=" STARTER_PATH, (char *)env, NULL};
	execve(argv[0], argv, envp);
	ferry_error_set(&err, errno, "run '%s' (set 'criu path' in ferry.conf)", argv[0]);
	report_error(rep, err);
	_exit(127);
}

/* Clones host_criu_exec with @fds, its report and the starter's pidfd: the pid (the read end
 * of the report in *ret_rep), or -errno. */
static pid_t host_criu_spawn(struct starter *s, const int *fds, int n, char *const argv[], const char *env,
			     int *ret_rep, struct ferry_error **err)
{
	int rep[2], all[8];
	if (n > 6)
		return ferry_error_msg(err, E2BIG, "too many fds for CRIU");
	_cleanup_close_ int self = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (self < 0 || pipe2(rep, O_CLOEXEC) < 0)
		return ferry_error_set(err, errno, "pidfd or pipe");
	pid_t pid = clone_ns(CLONE_NEWPID | CLONE_NEWNS);
	if (pid < 0) {
		close(rep[0]);
		close(rep[1]);
		return ferry_error_set(err, errno, "clone CRIU's namespaces");
	}
	if (pid == 0) {
		memcpy(all, fds, (size_t)n * sizeof(*fds));
		all[n] = rep[1];
		all[n + 1] = self;
		host_criu_exec(s, all, n + 2, argv, env);
	}
	close(rep[1]);
	*ret_rep = rep[0];
	return pid;
}

/* What went wrong, from the log @name that a CRIU of the user's wrote in @dirfd, a directory the
 * user can write, read while we are root: opened only as ckdir_openat opens, without waiting
 * (O_NONBLOCK: a FIFO put there would hang us), and read only when it is a regular file of the
 * user's with one link (not a link to a file of root's, on a node without protected_hardlinks). */
static char *user_log_errors(uid_t uid, int dirfd, const char *name)
{
	struct stat st;
	_cleanup_close_ int fd = ckdir_openat(dirfd, name, O_RDONLY | O_NONBLOCK, 0);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != uid || st.st_nlink != 1)
		return NULL; /* (none, fd -1 among them) */
	return ferry_criu_log_errors(fd, 3);
}

/* The page server, as the user, in the host's namespaces (host_criu_exec): it only writes the
 * pages CRIU sends over the socket into the staging images directory. */
static int run_page_server(struct starter *s, int imgfd, int pages, struct tail_hashes *tails,
			   struct ferry_error **err)
{
	char *const argv[] = {s->cfg->criu_path,
			      "page-server",
			      "--images-dir",
			      "/proc/self/fd/3",
			      "--ps-socket",
			      "4",
			      "--unprivileged",
			      "-o",
			      "page-server.log",
			      "-v4",
			      NULL};
	int rep = -1;
	pid_t pid = host_criu_spawn(s, (const int[]){imgfd, pages}, 2, argv, NULL, &rep, err);
	if (pid < 0)
		return pid;
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	int r = 0;
	if (pidfd >= 0) {
		/* the pages are hashed as they arrive (see tails_scan); the limit is on idleness:
		 * 'criu timeout' seconds without a byte, never the transfer's whole time */
		struct idle w;
		idle_start(&w, s->cfg->criu_timeout, progress_of(tails, true));
		for (;;) {
			tails_scan(imgfd, tails);
			long long left = idle_left(&w, progress_of(tails, true));
			if (left <= 0) {
				r = 0;
				break;
			}
			r = poll(&p, 1, (int)(left < TAIL_TICK_MS ? left : TAIL_TICK_MS));
			if (r > 0 || (r < 0 && errno != EINTR))
				break;
		}
		close(pidfd);
	}
	if (r == 0)
		kill(pid, SIGKILL);
	/* whatever the page server left in its process group goes too, whichever way it ended
	 * (not yet reaped, its pid is still the group's): killed early, CRIU leaves the child of
	 * a kerndat probe stopped for good */
	kill(-pid, SIGKILL);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	_cleanup_free_ char *msg = read_report(rep);
	close(rep);
	if (r == 0)
		return ferry_error_msg(err, ETIMEDOUT,
				       "the page server got nothing for %u s ('criu timeout' in ferry.conf)",
				       s->cfg->criu_timeout);
	if (msg)
		return ferry_error_msg(err, EIO, "%s", startswith(msg, "E ") ? msg + 2 : msg);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		_cleanup_free_ char *lines = user_log_errors(s->privs.uid, imgfd, "page-server.log");
		return ferry_error_msg(err, EIO, "the CRIU page server failed%s%s", lines ? ": " : "",
				       lines ? lines : "");
	}
	return 0;
}

/* Live: the lazy-pages daemon's end, whichever way (@timed_out: it got no page for 'criu
 * timeout' seconds): 0 only when it exited 0, every page in the restored tree. */
static int lazy_daemon_end(struct starter *s, bool timed_out, struct ferry_error **err)
{
	kill(-s->lazy_pid, SIGKILL); /* the daemon and what it left in its group (CRIU's probes) */
	int st = 0;
	while (waitpid(s->lazy_pid, &st, 0) < 0 && errno == EINTR)
		;
	s->lazy_pid = starter_lazy_pid = 0;
	_cleanup_free_ char *msg = read_report(s->lazy_rep);
	close(s->lazy_rep);
	s->lazy_rep = -1;
	if (timed_out)
		return ferry_error_msg(
		    err, ETIMEDOUT,
		    "post-copy: no page came from the source for %u s ('criu timeout' in ferry.conf)",
		    s->cfg->criu_timeout);
	if (msg)
		return ferry_error_msg(err, EIO, "%s", startswith(msg, "E ") ? msg + 2 : msg);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	_cleanup_free_ char *lines = user_log_errors(s->privs.uid, s->ckpt_fd, FERRY_CRIU_LAZY_LOG);
	return ferry_error_msg(err, EIO, "post-copy: CRIU's lazy-pages daemon failed%s%s", lines ? ": " : "",
			       lines ? lines : "");
}

/* Live: CRIU's lazy-pages daemon for the restore to come, run like the page server
 * (host_criu_exec). It reads the received images (@genfd), listens on lazy-pages.socket in the
 * checkpoint directory (the restore's work directory: the restoring CRIU connects there and
 * hands it the restored tree's userfaultfds) and takes every page from the source's CRIU over
 * the session's LAZY channel: first those the tree touches, then the rest. Returns once it
 * listens (its status byte). */
static int lazy_daemon_start(struct starter *s, int genfd, struct xfer_session *xs, struct ferry_error **err)
{
	int st[2];
	_cleanup_close_ int kdat = open_kdat(err);
	if (kdat < 0)
		return -ENOENT;
	if (pipe2(st, O_CLOEXEC) < 0)
		return ferry_error_set(err, errno, "pipe");
	char *const argv[] = {s->cfg->criu_path,
			      "lazy-pages",
			      "--images-dir",
			      "/proc/self/fd/3",
			      "--work-dir",
			      "/proc/self/fd/4",
			      "--page-server",
			      "--ps-socket",
			      "5",
			      "--status-fd",
			      "6",
			      "--unprivileged",
			      "-o",
			      FERRY_CRIU_LAZY_LOG,
			      "-v4",
			      NULL};
	/* (it loads the kernel facts of a root CRIU: criu.h) */
	pid_t pid =
	    host_criu_spawn(s, (const int[]){genfd, s->ckpt_fd, xs->local[FERRY_XFER_LAZY], st[1], kdat}, 5,
			    argv, "XDG_RUNTIME_DIR=/proc/self/fd/7", &s->lazy_rep, err);
	close(st[1]);
	if (pid < 0) {
		close(st[0]);
		return pid;
	}
	xfer_session_close(xs, FERRY_XFER_LAZY); /* the daemon's now */
	s->lazy_pid = starter_lazy_pid = pid;
	char c;
	struct ferry_error *e = NULL;
	int r = ferry_read_timeout(st[0], &c, 1, s->cfg->criu_timeout, &e);
	close(st[0]);
	ferry_error_free(e);
	if (r < 0 && lazy_daemon_end(s, false, err) == 0)
		return ferry_error_msg(err, EIO,
				       "post-copy: CRIU's lazy-pages daemon ended before it listened");
	return r < 0 ? -EIO : 0;
}

/* Live, for the report: the pages the restored tree faulted on (each one asked for) and all the
 * daemon copied in, from its log (-v4: a "#PF at" line a fault, a "UFFD transferred pages:
 * (N/M)" line a process at its end). The log is the user's: read only once the starter is the
 * user for good (op_instance_start dropped before it waits for the restore). */
static void lazy_counts(struct starter *s, unsigned long long *ret_faults, unsigned long long *ret_pages)
{
	uid_t r, e, saved;
	*ret_faults = *ret_pages = 0;
	if (getresuid(&r, &e, &saved) < 0 || r == 0 || e == 0 || saved == 0)
		return;
	int fd = ckdir_openat(s->ckpt_fd, FERRY_CRIU_LAZY_LOG, O_RDONLY | O_NOFOLLOW, 0);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "r");
	unsigned long long a = 0, b = 0;
	char line[512];
	while (f && fgets(line, sizeof(line), f)) {
		const char *t = strstr(line, "UFFD transferred pages: (");
		*ret_faults += strstr(line, ": #PF at ") != NULL;
		if (t && sscanf(t, "UFFD transferred pages: (%llu/%llu)", &a, &b) == 2)
			*ret_pages += a;
	}
	if (f)
		fclose(f);
}

int checkpoint_lazy_wait(struct starter *s, unsigned long long *ret_faults, unsigned long long *ret_pages,
			 struct ferry_error **err)
{
	int pidfd = (int)syscall(SYS_pidfd_open, s->lazy_pid, 0);
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	struct idle w;
	idle_start(&w, s->cfg->criu_timeout, xfer_session_moved());
	bool timed_out = false;
	while (pidfd >= 0) {
		long long left = idle_left(&w, xfer_session_moved());
		if (left <= 0) {
			timed_out = true;
			break;
		}
		int r = poll(&p, 1, (int)(left < XFER_TICK_MS ? left : XFER_TICK_MS));
		if (r > 0 || (r < 0 && errno != EINTR))
			break;
	}
	closep(&pidfd);
	int r = lazy_daemon_end(s, timed_out, err);
	if (r == 0)
		lazy_counts(s, ret_faults, ret_pages);
	return r;
}

/* The sender's manifest covers what it had: everything but the pages, which only we saw (through
 * the authenticated session). Checks it as a restart would; the manifest in *@ret. The received
 * files are checked against it once they are sealed (received_match). */
static int verify_received(struct starter *s, const char *text, size_t len, struct ferry_manifest **ret,
			   struct ferry_error **err)
{
	unsigned char key[FERRY_KEY_MAX];
	size_t keylen = 0;
	struct ferry_manifest *sent = NULL;
	int r = ferry_key_load(FERRY_KEY_PATH, key, &keylen, err);
	if (r == 0 && (r = ferry_manifest_verify(text, len, key, keylen, &sent, err)) < 0)
		ferry_error_wrap(err, "the received checkpoint is refused");
	explicit_bzero(key, sizeof(key));
	if (r == 0 && sent->uid != s->privs.uid)
		r = ferry_error_msg(err, EPERM, "the received checkpoint belongs to another user");
	if (r == 0 && sent->lazy_pages != s->lazy)
		r = ferry_error_msg(err, EPROTO, "the sender's checkpoint is %sa live migration's",
				    s->lazy ? "not " : "");
	if (r < 0) {
		ferry_manifest_free(sent);
		return r;
	}
	*ret = sent;
	return 0;
}

/* The names in @imgfd once the page server is done: the files it wrote (CRIU's page and pagemap
 * images), which the sender's manifest cannot cover. At most @max. */
static char **received_pages(int imgfd, size_t max)
{
	char **names = xzalloc((max + 1) * sizeof(*names));
	DIR *d = ferry_opendir_at(imgfd);
	struct dirent *de;
	size_t n = 0;
	while (d && (de = readdir(d)) && n < max)
		if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
			names[n++] = xstrdup(de->d_name);
	if (d)
		closedir(d);
	return names;
}

/* Whether what we sealed (@m: root's files, hashed once no other fd could change them) is what
 * the sender sent (@sent), and nothing more, but the page server's files (@pages). Checked only
 * after the seal: a file checked before could be swapped for another before it is sealed. */
static int received_match(const struct ferry_manifest *m, const struct ferry_manifest *sent, char **pages,
			  struct ferry_error **err)
{
	for (size_t i = 0; i < sent->n_files; i++) {
		const struct ferry_manifest_file *f = &sent->files[i], *g = ferry_manifest_find(m, f->name);
		if (!g || g->size != f->size || !streq(g->sha256, f->sha256))
			return ferry_error_msg(
			    err, EPERM, "received file '%s' does not match the sender's manifest", f->name);
	}
	for (size_t i = 0; i < m->n_files; i++)
		if (!ferry_manifest_find(sent, m->files[i].name) && !strv_contains(pages, m->files[i].name))
			return ferry_error_msg(err, EPERM,
					       "received file '%s' is not in the sender's manifest: refused",
					       m->files[i].name);
	return 0;
}

/* Seals the received files in @imgfd as a generation of our own (the sender's instance, image and
 * modes in our manifest), checks them against @sent, publishes it and prunes the older ones. */
static int seal_received(struct starter *s, int stfd, int imgfd, const struct ferry_manifest *sent,
			 char **pages, struct tail_hashes *tails, struct ferry_error **err)
{
	_cleanup_(ferry_manifest_freep) struct ferry_manifest *m =
	    manifest_for(s, sent->instance, sent->image, sent->image_fingerprint, sent->pid);
	m->netns = sent->netns ? xstrdup(sent->netns) : NULL;
	m->lazy_pages = sent->lazy_pages;
	m->group = sent->group ? xstrdup(sent->group) : NULL;
	_cleanup_free_ char *gen = NULL;
	int r = seal_generation(imgfd, m, NULL, 0, tails, false, &s->sealed_manifest, err);
	if (r == 0)
		r = received_match(m, sent, pages, err);
	if (r == 0)
		r = publish_generation(s, stfd, &gen, err);
	if (r == 0)
		prune(s->ckpt_fd, s->privs.uid, gen, true, false);
	return r;
}

int checkpoint_receive(struct starter *s, struct ferry_error **err)
{
	int r = checkpoint_open_dir(s, s->req->checkpoint, err);
	if (r < 0)
		return r;
	/* every byte from here on is the peer starter's (the session's records); ferry-xfer, as
	 * the user, unpacks the files. The staging directory waits for the sender: nothing is
	 * left behind by a restart that never got one. */
	struct xfer_session *xs = NULL;
	if ((r = ferry_privs_raise(&s->privs, err)) < 0 || (r = xfer_session_start(s, true, &xs, err)) < 0)
		return r;
	starter_verdict_fd = s->xfer_fd; /* the session's control channel now: why we fail goes there */
	char stage[64];
	int stfd = -1, imgfd = -1;
	if ((r = make_ckpt_staging(s, s->req->checkpoint, stage, &stfd, &imgfd, NULL, err)) < 0)
		return r;
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	struct ferry_manifest *sent = NULL;
	struct tail_hashes tails = {0};
	/* live: no page comes now (the lazy-pages daemon takes them once the tree is restored);
	 * the channel a mode does not use ends at once */
	if (!s->lazy)
		r = run_page_server(s, imgfd, xs->local[FERRY_XFER_PAGES], &tails, err);
	xfer_session_close(xs, FERRY_XFER_PAGES);
	if (!s->lazy)
		xfer_session_close(xs, FERRY_XFER_LAZY);
	_cleanup_strv_ char **pages = received_pages(imgfd, 4096);
	if (r == 0)
		r = xfer_receive_files(s, xs, imgfd, &text, &len, err);
	if (r < 0)
		xfer_session_blame(xs, err);
	if (r == 0)
		r = verify_received(s, text, len, &sent, err);
	if (r == 0)
		r = seal_received(s, stfd, imgfd, sent, pages, &tails, err);
	if (r == 0 && s->lazy)
		r = lazy_daemon_start(s, imgfd, xs, err);
	tails_free(&tails);
	ferry_manifest_free(sent);
	close(imgfd);
	if (r < 0)
		ckdir_rm_tree(s->ckpt_fd, stage, s->privs.uid, stfd);
	close(stfd);
	if (r < 0)
		return r;
	unlinkat(s->ckpt_fd, stage, AT_REMOVEDIR);
	close(s->ckpt_fd);
	s->ckpt_fd = -1; /* checkpoint_prepare_restart opens it again */
	return ferry_privs_lower(&s->privs, err);
}

/* True when the instance's init has children: its workload (or a restored one) runs. */
static bool init_has_children(pid_t init)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)init, (int)init);
	_cleanup_free_ char *buf = NULL;
	if (ferry_read_file(path, 65536, &buf, NULL, NULL) < 0)
		return false;
	return strspn(buf, " \n") != strlen(buf);
}

/* In the forked child: into the instance's namespaces, where the restorer is then a process of the
 * container; exits with the restorer's status. */
static _noreturn_ void restore_in_instance(struct starter *s, int pidfd, const struct ferry_instance *inst,
					   int report, int pid_fd)
{
	struct ferry_error *err = NULL;
	if (setns(pidfd, instance_ns_flags(inst)) < 0) {
		ferry_error_set(&err, errno, "join instance '%s'", s->req->instance);
		report_error(report, err);
		_exit(1);
	}
	pid_t inner = fork();
	if (inner == 0)
		run_restorer(s, report, pid_fd);
	int st = 0;
	close(report);
	close(pid_fd);
	while (inner > 0 && waitpid(inner, &st, 0) < 0 && errno == EINTR)
		;
	_exit(inner > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : 1);
}

/* The restored workload's pid, as the restorer wrote it on @pids; without one the restore failed:
 * dies with the restorer's report (on @rep) or the child's status @st. */
static unsigned long long restored_workload(int pids, int rep, const char *name, int st)
{
	char buf[32] = "";
	ssize_t n = read(pids, buf, sizeof(buf) - 1);
	unsigned long long w = 0;
	if (n > 0)
		buf[n] = '\0';
	if (n <= 0 || parse_uint64(buf, INT32_MAX, &w) < 0 || w == 0) {
		_cleanup_free_ char *msg = read_report(rep);
		if (msg)
			die_report(msg);
		die("restore into '%s' failed (status %d)", name, st);
	}
	return w;
}

/* The record now names the restored workload, so the instance can be checkpointed again. */
static void record_workload(struct starter *s, struct ferry_instance *inst, unsigned long long w)
{
	struct ferry_error *err = NULL;
	int rundir = ferry_open_rundir(s->privs.uid, false, &err);
	if (rundir < 0)
		die_error(err);
	inst->workload = (long long)w;
	_cleanup_free_ char *text = ferry_instance_format(inst);
	if (ferry_write_file_atomic(rundir, s->req->instance, text, strlen(text), 0600, &err) < 0)
		die_error(err);
}

void op_checkpoint_restore(struct starter *s)
{
	struct ferry_error *err = NULL;
	const char *name = s->req->instance;
	struct ferry_instance *inst = NULL;
	int pidfd = pin_instance(s, name, &inst, &err);
	if (pidfd < 0)
		die_error(err);
	if (!inst->checkpoint)
		die("instance '%s' was not started with --criu-launch: nothing can be restored into it",
		    name);
	if (init_has_children(inst->pid))
		die("instance '%s' already runs a workload: restore into an idle instance ('ferry instance start "
		    "--criu-launch NAME IMAGE INSTANCE' without a command)",
		    name);
	struct ferry_request *launch = NULL;
	if (verify_checkpoint(s, inst->checkpoint, &launch, &err) < 0)
		die_error(err);
	ferry_request_free(launch);
	s->restore_net = ferry_instance_own_netns(inst);
	s->loopback_net = inst->loopback && !inst->networks;

	if (ferry_privs_raise(&s->privs, &err) < 0)
		die_error(err);

	/* its network namespace is live: no TCP segment may reach a connection CRIU has not yet
	 * brought back (network_restore_lock) */
	bool locked = inst->networks || inst->loopback;
	int netns = locked ? instance_netns(inst, pidfd, &err) : -1;
	if (locked && (netns < 0 || network_restore_lock(s, netns, !inst->networks, &err) < 0))
		die_error(err);
	int rep[2], pids[2];
	if (pipe2(rep, O_CLOEXEC) < 0 || pipe2(pids, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	pid_t child = fork();
	if (child < 0)
		die("fork: %s", strerror(errno));
	if (child == 0) {
		close(rep[0]);
		close(pids[0]);
		restore_in_instance(s, pidfd, inst, rep[1], pids[1]);
	}
	close(rep[1]);
	close(pids[1]);
	int st = 0;
	while (waitpid(child, &st, 0) < 0 && errno == EINTR)
		;
	if (locked) {
		network_restore_unlock(s, netns, !inst->networks);
		close(netns);
	}
	close(pidfd);
	unsigned long long w = restored_workload(pids[0], rep[0], name, st);
	record_workload(s, inst, w);
	printf("restored '%s' into instance '%s' (pid %llu inside)\n", inst->checkpoint, name, w);
	exit(0);
}
