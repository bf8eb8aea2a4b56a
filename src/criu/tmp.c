/* SPDX-License-Identifier: GPL-2.0-or-later */
/* tmp.c — the container's private /tmp, kept with the checkpoint.
 *
 * CRIU runs inside the container and dumps processes, not the container's mounts: files that an
 * instance keeps in its private /tmp (--contain, --private-tmp), which MPI stacks fill with
 * session directories, FIFOs and files they map, would be gone at a restart, and CRIU fails on
 * the first one a process holds open. So a dump saves /tmp as FERRY_CRIU_TMP_ARCHIVE among the
 * images, at CRIU's post-dump notification (the tree frozen, so the files match the processes),
 * and a restore unpacks it into the new container's empty /tmp before CRIU runs. The archive is
 * then sealed and checked with the other images (src/starter/checkpoint.c).
 *
 * Both run in a child that first drops every capability ferry-criu holds: it reads and writes
 * only what the user could, and libarchive parses nothing in a process with privileges. Without
 * capabilities a dumpable process of the user's is theirs to open through /proc/PID/fd: so the
 * child makes itself not dumpable before it drops them, and holds no fd but the archive (opened
 * by the parent) and its report pipe: never the images directory, which the user must not write
 * into before the seal. Kept:
 * regular files (sparse ones with their holes), directories, symbolic links (never followed) and
 * FIFOs, with their modes and times; sockets are left out (CRIU binds them again); mounts under /tmp are not entered (they
 * are binds, not the container's). Anything else (a device node) fails the checkpoint, and an
 * archive entry of another kind, or with a path out of /tmp, fails the restore. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "criu.h"
#include "fs.h"
#include "tmp.h"
#include "util.h"

#define TMP_DIR "/tmp"
#define MSG_MAX 512

/* In the child: no capability left (effective, permitted, inheritable, ambient). */
static int drop_caps(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2] = {{0}};
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return -errno;
	if (syscall(SYS_capset, &h, d) < 0)
		return -errno;
	return 0;
}

static _noreturn_ void child_fail(int rep, const char *fmt, ...) _printf_(2, 3);
static _noreturn_ void child_fail(int rep, const char *fmt, ...)
{
	char msg[MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)ferry_write_all(rep, msg, n < 0 ? 0 : (size_t)n >= sizeof(msg) ? sizeof(msg) - 1 : (size_t)n);
	_exit(1);
}

/* Runs @fn(@file, report fd) in a child without capabilities, in /tmp; its first words on the
 * report fd are the error. @file is the archive, the one file the child may touch. */
static int in_child(int file, void (*fn)(int file, int rep), const char *what, struct ferry_error **err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return ferry_error_set(err, errno, "%s", what);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return ferry_error_set(err, e, "%s", what);
	}
	if (pid == 0) {
		/* first: once it holds no capability, a dumpable child is open to the user */
		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
			child_fail(p[1], "make the helper not dumpable: %s", strerror(errno));
		ferry_close_fds(3, (const int[]){p[1], file, -1});
		int r = drop_caps();
		if (r < 0)
			child_fail(p[1], "drop the capabilities: %s", strerror(-r));
		if (chdir(TMP_DIR) < 0)
			child_fail(p[1], "'%s': %s", TMP_DIR, strerror(errno));
		fn(file, p[1]);
		_exit(0);
	}
	close(p[1]);
	char msg[MSG_MAX] = "";
	size_t got = 0;
	ssize_t n;
	while (got < sizeof(msg) - 1 &&
	       ((n = read(p[0], msg + got, sizeof(msg) - 1 - got)) > 0 || (n < 0 && errno == EINTR)))
		got += n > 0 ? (size_t)n : 0;
	msg[got] = '\0';
	close(p[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return ferry_error_set(err, errno, "%s", what);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && !*msg)
		return 0;
	return ferry_error_msg(err, EIO, "%s: %s", what, *msg ? msg : "its helper died");
}

/* ------------------------------------------------------------------------------ save */

/* One regular file's data, as libarchive reads it from the disk. The archive keeps only the
 * parts that hold data (a sparse file's holes are holes in the archive too: it never holds more
 * than /tmp does), but its writer takes the whole file: the holes are given to it as zeros, which
 * it skips. */
static void save_data(struct archive *w, struct archive *r, const char *path, int64_t size, int rep)
{
	static const char zeros[1 << 16];
	const void *buf;
	size_t len;
	int64_t off, at = 0;
	int ar;
	for (;;) {
		ar = archive_read_data_block(r, &buf, &len, &off);
		if (ar != ARCHIVE_OK && ar != ARCHIVE_EOF)
			child_fail(rep, "'/tmp/%s' cannot be read: %s", path,
				   archive_errno(r) > 0 ? strerror(archive_errno(r))
							: archive_error_string(r));
		int64_t to = ar == ARCHIVE_EOF ? size : off;
		for (; at < to; at += (int64_t)sizeof(zeros) < to - at ? (int64_t)sizeof(zeros) : to - at) {
			size_t n = (int64_t)sizeof(zeros) < to - at ? sizeof(zeros) : (size_t)(to - at);
			if (archive_write_data(w, zeros, n) != (la_ssize_t)n)
				child_fail(rep, "write the archive: %s", archive_error_string(w));
		}
		if (ar == ARCHIVE_EOF)
			return;
		if (len > 0 && archive_write_data(w, buf, len) != (la_ssize_t)len)
			child_fail(rep, "write the archive: %s", archive_error_string(w));
		at = off + (int64_t)len;
	}
}

static void save(int out, int rep)
{
	struct archive *w = archive_write_new(), *r = archive_read_disk_new();
	if (!w || !r)
		child_fail(rep, "libarchive: out of memory");
	/* no name lookups: they would read the image's /etc/passwd; numeric ids are enough */
	if (archive_write_set_format_pax_restricted(w) != ARCHIVE_OK ||
	    archive_write_open_fd(w, out) != ARCHIVE_OK ||
	    archive_read_disk_set_symlink_physical(r) != ARCHIVE_OK ||
	    archive_read_disk_set_behavior(r, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS |
						  ARCHIVE_READDISK_NO_XATTR | ARCHIVE_READDISK_NO_ACL |
						  ARCHIVE_READDISK_NO_FFLAGS) != ARCHIVE_OK ||
	    archive_read_disk_open(r, ".") != ARCHIVE_OK)
		child_fail(rep, "libarchive: %s",
			   archive_error_string(w) ? archive_error_string(w) : archive_error_string(r));
	struct archive_entry *e = archive_entry_new();
	int ar;
	while ((ar = archive_read_next_header2(r, e)) != ARCHIVE_EOF) {
		const char *path = archive_entry_pathname(e);
		if (ar != ARCHIVE_OK) /* (it opens a file to find its holes) */
			child_fail(rep, "'/tmp/%s' cannot be read: %s",
				   path ? path + (startswith(path, "./") ? 2 : 0) : "?",
				   archive_errno(r) > 0 ? strerror(archive_errno(r))
							: archive_error_string(r));
		mode_t type = archive_entry_filetype(e);
		if (archive_read_disk_can_descend(r))
			archive_read_disk_descend(r);
		if (streq(path, ".") || type == AE_IFSOCK)
			continue;
		if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK && type != AE_IFIFO)
			child_fail(
			    rep,
			    "'/tmp/%s' is not a file, directory, symbolic link or FIFO: it cannot be kept",
			    path + (startswith(path, "./") ? 2 : 0));
		/* a copy: the entry's own string changes under set_pathname */
		_cleanup_free_ char *rel = xstrdup(path + (startswith(path, "./") ? 2 : 0));
		archive_entry_set_pathname(e, rel);
		archive_entry_set_nlink(e, 1); /* a hard link is saved as a file of its own */
		if (archive_write_header(w, e) != ARCHIVE_OK)
			child_fail(rep, "'/tmp/%s': %s", rel, archive_error_string(w));
		if (type == AE_IFREG && archive_entry_size(e) > 0)
			save_data(w, r, rel, archive_entry_size(e), rep);
		archive_entry_clear(e);
	}
	archive_entry_free(e);
	if (archive_write_close(w) != ARCHIVE_OK)
		child_fail(rep, "write the archive: %s", archive_error_string(w));
	archive_write_free(w);
	archive_read_free(r);
	if (fsync(out) < 0 || close(out) < 0)
		child_fail(rep, "write the archive: %s", strerror(errno));
}

int ferry_criu_tmp_save(int images, struct ferry_error **err)
{
	_cleanup_close_ int out = openat(images, FERRY_CRIU_TMP_ARCHIVE,
					 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return ferry_error_set(err, errno, "save the instance's /tmp: create '%s'",
				       FERRY_CRIU_TMP_ARCHIVE);
	return in_child(out, save, "save the instance's /tmp", err);
}

/* --------------------------------------------------------------------------- restore */

static void restore(int in, int rep)
{
	struct archive *r = archive_read_new(), *w = archive_write_disk_new();
	if (!r || !w)
		child_fail(rep, "libarchive: out of memory");
	if (archive_read_support_format_tar(r) != ARCHIVE_OK ||
	    archive_read_open_fd(r, in, 1 << 16) != ARCHIVE_OK ||
	    archive_write_disk_set_options(
		w, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
		       ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS |
		       ARCHIVE_EXTRACT_NO_OVERWRITE) != ARCHIVE_OK)
		child_fail(rep, "libarchive: %s", archive_error_string(r));
	struct archive_entry *e;
	int ar;
	while ((ar = archive_read_next_header(r, &e)) == ARCHIVE_OK) {
		mode_t type = archive_entry_filetype(e);
		const char *path = archive_entry_pathname(e);
		if ((type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK && type != AE_IFIFO) ||
		    archive_entry_hardlink(e))
			child_fail(rep, "'%s' in the saved /tmp is of a kind ferry does not save",
				   path ? path : "?");
		if (archive_write_header(w, e) != ARCHIVE_OK)
			child_fail(rep, "'/tmp/%s': %s", path, archive_error_string(w));
		const void *buf;
		size_t len;
		int64_t off;
		while ((ar = archive_read_data_block(r, &buf, &len, &off)) == ARCHIVE_OK)
			if (archive_write_data_block(w, buf, len, off) != ARCHIVE_OK)
				child_fail(rep, "'/tmp/%s': %s", path, archive_error_string(w));
		if (ar != ARCHIVE_EOF)
			child_fail(rep, "'/tmp/%s': %s", path, archive_error_string(r));
		if (archive_write_finish_entry(w) != ARCHIVE_OK)
			child_fail(rep, "'/tmp/%s': %s", path, archive_error_string(w));
	}
	if (ar != ARCHIVE_EOF)
		child_fail(rep, "read the saved /tmp: %s", archive_error_string(r));
	if (archive_write_close(w) != ARCHIVE_OK) /* directories' modes and times, last */
		child_fail(rep, "/tmp: %s", archive_error_string(w));
	archive_write_free(w);
	archive_read_free(r);
	close(in);
}

int ferry_criu_tmp_restore(int images, struct ferry_error **err)
{
	_cleanup_close_ int in = openat(images, FERRY_CRIU_TMP_ARCHIVE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return ferry_error_set(err, errno, "bring back the instance's /tmp: open '%s'",
				       FERRY_CRIU_TMP_ARCHIVE);
	return in_child(in, restore, "bring back the instance's /tmp", err);
}
