/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sif_write.c — SIF v1 writer, for 'ferry build' (not linked into the setuid starter). */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "sif.h"
#include "sif_layout.h"

static void put32(uint8_t *p, uint32_t v)
{
	ferry_put_le32(p, v);
}

static void put64(uint8_t *p, int64_t v)
{
	ferry_put_le32(p, (uint32_t)(uint64_t)v);
	ferry_put_le32(p + 4, (uint32_t)((uint64_t)v >> 32));
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

static int random_bytes(void *buf, size_t len, struct ferry_error **err)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = getrandom((char *)buf + done, len - done, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOSYS)
			break;
		if (n < 0)
			return ferry_error_set(err, errno, "getrandom");
		done += (size_t)n;
	}
	if (done == len)
		return 0;

	_cleanup_close_ int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return ferry_error_set(err, errno, "open '/dev/urandom'");
	ssize_t n = ferry_pread_full(fd, (char *)buf + done, len - done, 0);
	if (n < 0 || (size_t)n != len - done)
		return ferry_error_set(err, n < 0 ? (int)-n : EIO, "read '/dev/urandom'");
	return 0;
}

/* Copies @len bytes from @in (offset 0) to @out at @out_off, by copy_file_range when the kernel can. */
static int copy_data(int out, int in, uint64_t len, uint64_t out_off, struct ferry_error **err)
{
	loff_t in_pos = 0, out_pos = (loff_t)out_off;
	bool fallback = false;
	while ((uint64_t)in_pos < len && !fallback) {
		size_t chunk =
		    len - (uint64_t)in_pos > (1u << 30) ? (1u << 30) : (size_t)(len - (uint64_t)in_pos);
		ssize_t n = copy_file_range(in, &in_pos, out, &out_pos, chunk, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP ||
			    errno == EBADF) {
				fallback = true;
				break;
			}
			return ferry_error_set(err, errno, "copy the squashfs into the SIF");
		}
		if (n == 0)
			return ferry_error_msg(err, EIO, "the squashfs file shrank while it was copied");
	}
	if (!fallback)
		return 0;

	_cleanup_free_ char *buf = xmalloc(1u << 20);
	while ((uint64_t)in_pos < len) {
		size_t chunk =
		    len - (uint64_t)in_pos > (1u << 20) ? (1u << 20) : (size_t)(len - (uint64_t)in_pos);
		ssize_t n = ferry_pread_full(in, buf, chunk, (uint64_t)in_pos);
		if (n < 0)
			return ferry_error_set(err, (int)-n, "read the squashfs");
		if (n == 0)
			return ferry_error_msg(err, EIO, "the squashfs file shrank while it was copied");
		int r = pwrite_full(out, buf, (size_t)n, (uint64_t)out_pos);
		if (r < 0)
			return ferry_error_set(err, -r, "write the SIF");
		in_pos += n;
		out_pos += n;
	}
	return 0;
}

/* The squashfs to wrap, checked: a regular file holding a squashfs, small enough; its size in *@ret_size. */
static int squashfs_size(int squashfs_fd, uint64_t *ret_size, struct ferry_error **err)
{
	struct stat st;
	if (fstat(squashfs_fd, &st) < 0)
		return ferry_error_set(err, errno, "stat the squashfs");
	if (!S_ISREG(st.st_mode))
		return ferry_error_msg(err, EINVAL, "the squashfs is not a regular file");
	uint64_t size = (uint64_t)st.st_size;
	int r = ferry_squashfs_check_fd(squashfs_fd, 0, size, NULL, err);
	if (r < 0)
		return ferry_error_wrap(err, "squashfs");
	if (size > (uint64_t)INT64_MAX - PART_OFFSET)
		return ferry_error_msg(err, EFBIG, "squashfs too large");
	*ret_size = size;
	return 0;
}

/* The SIF's id: the caller's, or a new random (version 4) UUID. */
static int sif_id(const struct ferry_sif_write_opts *opts, uint8_t id[16], struct ferry_error **err)
{
	if (opts->id) {
		memcpy(id, opts->id, 16);
		return 0;
	}
	int r = random_bytes(id, 16, err);
	if (r < 0)
		return r;
	id[6] = (uint8_t)((id[6] & 0x0f) | 0x40); /* version 4 */
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	return 0;
}

/* The descriptor table: one descriptor, the squashfs partition of @size bytes. */
static int write_descriptors(int out_fd, uint64_t size, const char *arch, int64_t now,
			     struct ferry_error **err)
{
	_cleanup_free_ uint8_t *table = xzalloc(TABLE_BYTES);
	uint8_t *d = table;
	put32(d + D_DATATYPE, FERRY_SIF_DATA_PARTITION);
	d[D_USED] = 1;
	put32(d + D_ID, 1);
	put32(d + D_GROUP, FERRY_SIF_DEFAULT_GROUP);
	put32(d + D_LINK, 0);
	put64(d + D_OFFSET, PART_OFFSET);
	put64(d + D_SIZE, (int64_t)size);
	put64(d + D_PADDED, (int64_t)size + (PART_OFFSET - DATA_OFFSET));
	put64(d + D_CTIME, now);
	put64(d + D_MTIME, now);
	put64(d + D_UID, 0);
	put64(d + D_GID, 0);
	put32(d + D_EXTRA, FERRY_SIF_FS_SQUASH);
	put32(d + D_EXTRA + 4, FERRY_SIF_PART_PRIMSYS);
	memcpy(d + D_EXTRA + 8, arch, 2);
	int r = pwrite_full(out_fd, table, TABLE_BYTES, FERRY_SIF_DESCRIPTORS_OFFSET);
	if (r < 0)
		return ferry_error_set(err, -r, "write the SIF descriptors");
	return 0;
}

/* The global header, at offset 0. */
static int write_header(int out_fd, uint64_t size, const char *arch, const uint8_t id[16], int64_t now,
			struct ferry_error **err)
{
	uint8_t h[FERRY_SIF_HEADER_SIZE] = {0};
	memcpy(h + H_LAUNCH, FERRY_SIF_LAUNCH_SCRIPT, strlen(FERRY_SIF_LAUNCH_SCRIPT));
	memcpy(h + H_MAGIC, FERRY_SIF_MAGIC, sizeof(FERRY_SIF_MAGIC));
	memcpy(h + H_VERSION, FERRY_SIF_VERSION, 2);
	memcpy(h + H_ARCH, arch, 2);
	memcpy(h + H_ID, id, 16);
	put64(h + H_CTIME, now);
	put64(h + H_MTIME, now);
	put64(h + H_DFREE, FERRY_SIF_DESCRIPTORS_DEFAULT - 1);
	put64(h + H_DTOTAL, FERRY_SIF_DESCRIPTORS_DEFAULT);
	put64(h + H_DOFF, FERRY_SIF_DESCRIPTORS_OFFSET);
	put64(h + H_DSIZE, (int64_t)TABLE_BYTES);
	put64(h + H_DATAOFF, DATA_OFFSET);
	put64(h + H_DATASIZE, (int64_t)size + (PART_OFFSET - DATA_OFFSET));
	int r = pwrite_full(out_fd, h, sizeof(h), 0);
	if (r < 0)
		return ferry_error_set(err, -r, "write the SIF header");
	return 0;
}

int ferry_sif_write_fd(int out_fd, int squashfs_fd, const struct ferry_sif_write_opts *opts,
		       struct ferry_error **err)
{
	static const struct ferry_sif_write_opts defaults = {0};
	if (!opts)
		opts = &defaults;

	uint64_t size = 0;
	int r = squashfs_size(squashfs_fd, &size, err);
	if (r < 0)
		return r;

	struct stat st;
	if (fstat(out_fd, &st) < 0)
		return ferry_error_set(err, errno, "stat the SIF");
	if (!S_ISREG(st.st_mode) || st.st_size != 0)
		return ferry_error_msg(err, EINVAL, "the SIF must be written into an empty regular file");

	const char *arch = opts->arch ? opts->arch : ferry_sif_host_arch();
	if (strlen(arch) != 2)
		return ferry_error_msg(err, EINVAL, "bad SIF arch code '%s'", arch);
	uint8_t id[16];
	r = sif_id(opts, id, err);
	if (r < 0)
		return r;
	int64_t now = opts->fixed_time ? opts->time : (int64_t)time(NULL);

	/* Data first, then descriptors, header last: a torn write never looks like a valid SIF. */
	r = copy_data(out_fd, squashfs_fd, size, PART_OFFSET, err);
	if (r < 0)
		return r;
	r = write_descriptors(out_fd, size, arch, now, err);
	if (r < 0)
		return r;
	return write_header(out_fd, size, arch, id, now, err);
}

/* Splits @path into an open directory fd and the final component. */
static int open_parent(const char *path, int *ret_dirfd, char **ret_base, struct ferry_error **err)
{
	size_t len = strlen(path);
	if (len == 0 || path[len - 1] == '/')
		return ferry_error_msg(err, EISDIR, "'%s' names a directory, not a file", path);
	const char *slash = strrchr(path, '/');
	_cleanup_free_ char *dir =
	    slash ? xstrndup(path, slash == path ? 1 : (size_t)(slash - path)) : xstrdup(".");
	const char *base = slash ? slash + 1 : path;
	if (streq(base, ".") || streq(base, ".."))
		return ferry_error_msg(err, EISDIR, "'%s' names a directory, not a file", path);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return ferry_error_set(err, errno, "open directory '%s'", dir);
	*ret_dirfd = dfd;
	*ret_base = xstrdup(base);
	return 0;
}

int ferry_sif_create(const char *path, int squashfs_fd, bool replace, const struct ferry_sif_write_opts *opts,
		     struct ferry_error **err)
{
	_cleanup_close_ int dirfd = -1;
	_cleanup_free_ char *base = NULL;
	int r = open_parent(path, &dirfd, &base, err);
	if (r < 0)
		return r;
	if (!replace && faccessat(dirfd, base, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return ferry_error_msg(err, EEXIST, "'%s' already exists", path);

	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -1;
	for (int tries = 0; fd < 0; tries++) {
		uint8_t rnd[6];
		r = random_bytes(rnd, sizeof(rnd), err);
		if (r < 0)
			return r;
		free(tmp);
		tmp = xasprintf(".%s.%02x%02x%02x%02x%02x%02x.tmp", base, rnd[0], rnd[1], rnd[2], rnd[3],
				rnd[4], rnd[5]);
		fd =
		    openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0755);
		if (fd < 0 && (errno != EEXIST || tries >= 100))
			return ferry_error_set(err, errno, "create a temporary file next to '%s'", path);
	}

	r = ferry_sif_write_fd(fd, squashfs_fd, opts, err);
	if (r >= 0 && fsync(fd) < 0)
		r = ferry_error_set(err, errno, "fsync '%s'", tmp);
	if (r >= 0) {
		if (replace) {
			if (renameat(dirfd, tmp, dirfd, base) < 0)
				r = ferry_error_set(err, errno, "rename into '%s'", path);
		} else if (renameat2(dirfd, tmp, dirfd, base, RENAME_NOREPLACE) < 0) {
			if (errno == EINVAL || errno == ENOSYS) {
				/* No RENAME_NOREPLACE on this filesystem: link() refuses to replace too. */
				if (linkat(dirfd, tmp, dirfd, base, 0) < 0)
					r = ferry_error_set(err, errno, "link into '%s'", path);
			} else if (errno == EEXIST) {
				r = ferry_error_msg(err, EEXIST, "'%s' already exists", path);
			} else {
				r = ferry_error_set(err, errno, "rename into '%s'", path);
			}
		}
	}
	/* After a rename this fails harmlessly; after link() or a failure it removes the temporary file. */
	(void)unlinkat(dirfd, tmp, 0);
	if (r < 0)
		return r;
	(void)fsync(dirfd);
	return 0;
}
