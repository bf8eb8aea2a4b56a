/* SPDX-License-Identifier: GPL-2.0-or-later */
/* xfer_tar.c — the files of a generation between two starters, as a zstd-compressed tar
 * (libarchive). Apart from xfer.c so that only ferry-xfer links libarchive (and what it pulls
 * in: ICU, libxml2, libstdc++): not the setuid starter, which must not parse with it, nor the
 * other commands, which would pay milliseconds to load it. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "fs.h"
#include "manifest.h"
#include "xfer.h"

/* The rest of a generation travels as a zstd-compressed tar (libarchive), cut into chunks
 * "u32 length, bytes" ending with a zero length, so that the receiver knows where the archive
 * ends without reading past it (the connection stays open for the verdict). */
#define CHUNK_MAX (1u << 20)

struct chunk_writer {
	int sk;
	int error;
};

static la_ssize_t chunk_write(struct archive *a, void *data, const void *buf, size_t len)
{
	struct chunk_writer *w = data;
	unsigned char hdr[4];
	ferry_put_le32(hdr, (uint32_t)len);
	int r = ferry_write_all(w->sk, hdr, 4);
	if (r == 0)
		r = ferry_write_all(w->sk, buf, len);
	if (r < 0) {
		w->error = -r;
		archive_set_error(a, -r, "write to the peer");
		return -1;
	}
	return (la_ssize_t)len;
}

static int chunk_close(struct archive *a, void *data)
{
	struct chunk_writer *w = data;
	unsigned char end[4] = {0, 0, 0, 0};
	return w->error == 0 && ferry_write_all(w->sk, end, 4) == 0 ? ARCHIVE_OK : ARCHIVE_FATAL;
}

/* One entry to send: @name, and either an open file @fd or @data of @len bytes (the manifest). */
struct send_entry {
	char name[NAME_MAX + 1];
	int fd;
	const char *data;
	size_t len;
};
/* Fills @e with the next entry: 1, none left: 0, or an error. */
typedef int (*next_entry_fn)(void *src, struct send_entry *e, struct ferry_error **err);

static int send_one(struct archive *a, const struct send_entry *e, unsigned char *buf, size_t bufsz,
		    struct ferry_error **err)
{
	struct stat st = {.st_size = (off_t)e->len, .st_mode = S_IFREG};
	if (!ferry_manifest_name_ok(e->name) || (e->fd >= 0 && fstat(e->fd, &st) < 0) || !S_ISREG(st.st_mode))
		return ferry_error_msg(err, EINVAL, "cannot send '%s'", e->name);
	struct archive_entry *ae = archive_entry_new();
	archive_entry_set_pathname(ae, e->name);
	archive_entry_set_filetype(ae, AE_IFREG);
	archive_entry_set_perm(ae, 0400);
	archive_entry_set_size(ae, st.st_size);
	int r = 0;
	if (archive_write_header(a, ae) != ARCHIVE_OK)
		r = ferry_error_msg(err, EIO, "send '%s': %s", e->name, archive_error_string(a));
	archive_entry_free(ae);
	if (r == 0 && e->fd < 0 && archive_write_data(a, e->data, e->len) != (la_ssize_t)e->len)
		r = ferry_error_msg(err, EIO, "send '%s': %s", e->name, archive_error_string(a));
	for (off_t off = 0; r == 0 && e->fd >= 0 && off < st.st_size;) {
		ssize_t got = pread(e->fd, buf, bufsz, off);
		if (got <= 0 || archive_write_data(a, buf, (size_t)got) != got)
			r = ferry_error_msg(err, EIO, "send '%s'", e->name);
		else
			off += got;
	}
	return r;
}

static int send_entries(int sk, next_entry_fn next, void *src, struct ferry_error **err)
{
	struct archive *a = archive_write_new();
	struct chunk_writer w = {.sk = sk};
	if (!a || archive_write_add_filter_zstd(a) != ARCHIVE_OK ||
	    archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK ||
	    archive_write_open(a, &w, NULL, chunk_write, chunk_close) != ARCHIVE_OK) {
		int r = ferry_error_msg(err, EIO, "start the checkpoint stream: %s",
					a ? archive_error_string(a) : "no memory");
		archive_write_free(a);
		return r;
	}
	const size_t bufsz = 1 << 20;
	_cleanup_free_ unsigned char *buf = xmalloc(bufsz);
	int r;
	for (;;) {
		struct send_entry e = {.fd = -1};
		if ((r = next(src, &e, err)) <= 0)
			break;
		r = send_one(a, &e, buf, bufsz, err);
		if (e.fd >= 0)
			close(e.fd);
		if (r < 0)
			break;
	}
	if (archive_write_close(a) != ARCHIVE_OK && r == 0)
		r = ferry_error_msg(err, EIO, "end the checkpoint stream: %s", archive_error_string(a));
	archive_write_free(a);
	return r;
}

struct named_files {
	int dirfd;
	char *const *names;
	size_t n, i;
	const char *manifest;
	size_t mlen;
};

static int next_named(void *src, struct send_entry *e, struct ferry_error **err)
{
	struct named_files *f = src;
	if (f->i > f->n)
		return 0;
	const char *name = f->i < f->n ? f->names[f->i] : FERRY_MANIFEST_NAME;
	if (strlen(name) >= sizeof(e->name))
		return ferry_error_msg(err, EINVAL, "cannot send '%s'", name);
	strcpy(e->name, name);
	if (f->i++ == f->n) {
		e->data = f->manifest;
		e->len = f->mlen;
		return 1;
	}
	e->fd = openat(f->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (e->fd < 0)
		return ferry_error_msg(err, EINVAL, "cannot send '%s'", name);
	return 1;
}

int ferry_xfer_send_files(int sk, int dirfd, char *const *names, size_t n, const char *manifest, size_t mlen,
			  struct ferry_error **err)
{
	struct named_files f = {.dirfd = dirfd, .names = names, .n = n, .manifest = manifest, .mlen = mlen};
	return send_entries(sk, next_named, &f, err);
}

/* Passed files: one SOCK_SEQPACKET message each, the name as its bytes and the file as
 * SCM_RIGHTS; the sender's end of file ends the list. */
static int next_passed(void *src, struct send_entry *e, struct ferry_error **err)
{
	int sk = *(int *)src;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} c;
	struct iovec iov = {.iov_base = e->name, .iov_len = sizeof(e->name) - 1};
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf)};
	ssize_t n;
	while ((n = recvmsg(sk, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return ferry_error_set(err, errno, "receive the files to send");
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	if (h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS &&
	    h->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&e->fd, CMSG_DATA(h), sizeof(int));
	if (n == 0 && e->fd < 0)
		return 0;
	e->name[n] = '\0';
	if (e->fd < 0 || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || strlen(e->name) != (size_t)n)
		return ferry_error_msg(err, EPROTO, "bad file handed over to send");
	return 1;
}

int ferry_xfer_send_passed(int sk, int src, struct ferry_error **err)
{
	return send_entries(sk, next_passed, &src, err);
}

struct chunk_reader {
	int sk;
	unsigned timeout;
	unsigned char *buf;
	bool ended;
	struct ferry_error *err;
};

static la_ssize_t chunk_read(struct archive *a, void *data, const void **out)
{
	struct chunk_reader *rd = data;
	if (rd->ended)
		return 0;
	unsigned char hdr[4];
	if (ferry_read_timeout(rd->sk, hdr, 4, rd->timeout, &rd->err) < 0) {
		archive_set_error(a, EIO, "%s", rd->err->message);
		return -1;
	}
	uint32_t len = ferry_get_le32(hdr);
	if (len == 0) {
		rd->ended = true;
		return 0;
	}
	if (len > CHUNK_MAX) {
		archive_set_error(a, EPROTO, "chunk of %u bytes", len);
		return -1;
	}
	if (ferry_read_timeout(rd->sk, rd->buf, len, rd->timeout, &rd->err) < 0) {
		archive_set_error(a, EIO, "%s", rd->err->message);
		return -1;
	}
	*out = rd->buf;
	return (la_ssize_t)len;
}

/* The manifest's entry, @size bytes, read into *@ret (NUL-terminated). */
static int receive_manifest(struct archive *a, la_int64_t size, char **ret, struct ferry_error **err)
{
	if (size > FERRY_XFER_MAX_MANIFEST)
		return ferry_error_msg(err, EPROTO, "manifest too large");
	_cleanup_free_ char *manifest = xmalloc((size_t)size + 1);
	if (archive_read_data(a, manifest, (size_t)size) != size)
		return ferry_error_msg(err, EPROTO, "the checkpoint stream: %s", archive_error_string(a));
	manifest[size] = '\0';
	*ret = TAKE_PTR(manifest);
	return 0;
}

/* A file's entry, @size bytes, written into a new file @name in @dirfd (never over one). */
static int receive_file(struct archive *a, int dirfd, const char *name, la_int64_t size, unsigned char *buf,
			size_t bufsz, struct ferry_error **err)
{
	_cleanup_close_ int fd =
	    openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
	if (fd < 0)
		return ferry_error_set(err, errno, "create '%s'", name);
	int r = 0;
	la_int64_t left = size;
	while (r == 0 && left > 0) {
		la_ssize_t n = archive_read_data(a, buf, bufsz);
		if (n <= 0)
			return ferry_error_msg(err, EPROTO, "'%s' ends early in the checkpoint stream", name);
		int w = ferry_write_all(fd, buf, (size_t)n);
		if (w < 0)
			r = ferry_error_set(err, -w, "write '%s'", name);
		left -= n;
	}
	return r;
}

/* The entries of the stream: the files into @dirfd, then the manifest, last, into *@ret_manifest
 * (NULL when none came). */
static int receive_entries(struct archive *a, int dirfd, char **ret_manifest, size_t *ret_len,
			   struct ferry_error **err)
{
	_cleanup_free_ char *manifest = NULL;
	size_t mlen = 0;
	unsigned files = 0;
	int r = 0;
	struct archive_entry *e;
	const size_t bufsz = 1 << 20;
	_cleanup_free_ unsigned char *buf = xmalloc(bufsz);
	for (;;) {
		int h = archive_read_next_header(a, &e);
		if (h == ARCHIVE_EOF)
			break;
		if (h != ARCHIVE_OK)
			return ferry_error_msg(err, EPROTO, "the checkpoint stream: %s",
					       archive_error_string(a));
		const char *name = archive_entry_pathname(e);
		la_int64_t size = archive_entry_size(e);
		/* only plain files with names a generation may hold, each once */
		if (!name || !ferry_manifest_name_ok(name) || archive_entry_filetype(e) != AE_IFREG ||
		    size < 0 || ++files > FERRY_XFER_MAX_FILES || manifest)
			return ferry_error_msg(err, EPROTO, "bad entry in the checkpoint stream");
		if (streq(name, FERRY_MANIFEST_NAME)) {
			r = receive_manifest(a, size, &manifest, err);
			if (r < 0)
				return r;
			mlen = (size_t)size;
			continue; /* the manifest is last: anything after it is refused above */
		}
		r = receive_file(a, dirfd, name, size, buf, bufsz, err);
		if (r < 0)
			return r;
	}
	*ret_manifest = TAKE_PTR(manifest);
	*ret_len = mlen;
	return 0;
}

/* libarchive returns at the tar trailer, and may not have asked for the sender's last chunks (the
 * end of the zstd frame) or its closing empty one; left on the socket, they would be read as what
 * follows (the commit). Reads the stream to its end: only a few chunks can follow the trailer. */
static int drain_stream(struct archive *a, struct chunk_reader *rd, struct ferry_error **err)
{
	int r = 0;
	for (int extra = 0; r == 0 && !rd->ended; extra++) {
		const void *ignored;
		if (extra == 16 || chunk_read(a, rd, &ignored) < 0)
			r = ferry_error_msg(err, EPROTO,
					    "the checkpoint stream does not end after its manifest%s%s",
					    rd->err ? ": " : "", rd->err ? rd->err->message : "");
	}
	return r;
}

int ferry_xfer_receive(int sk, int dirfd, unsigned timeout, char **ret_manifest, size_t *ret_len,
		       struct ferry_error **err)
{
	_cleanup_free_ unsigned char *cbuf = xmalloc(CHUNK_MAX);
	struct chunk_reader rd = {.sk = sk, .timeout = timeout, .buf = cbuf};
	struct archive *a = archive_read_new();
	if (!a || archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
	    archive_read_support_format_tar(a) != ARCHIVE_OK ||
	    archive_read_open(a, &rd, NULL, chunk_read, NULL) != ARCHIVE_OK) {
		int r = ferry_error_msg(err, EPROTO, "the checkpoint stream: %s",
					a ? archive_error_string(a) : "no memory");
		archive_read_free(a);
		ferry_error_free(rd.err);
		return r;
	}
	_cleanup_free_ char *manifest = NULL;
	size_t mlen = 0;
	int r = receive_entries(a, dirfd, &manifest, &mlen, err);
	if (r == 0)
		r = drain_stream(a, &rd, err);
	archive_read_free(a);
	if (r == 0 && rd.err)
		r = ferry_error_msg(err, rd.err->code, "%s", rd.err->message);
	ferry_error_free(rd.err);
	if (r < 0)
		return r;
	if (!manifest)
		return ferry_error_msg(err, EPROTO, "the checkpoint stream has no manifest");
	*ret_manifest = TAKE_PTR(manifest);
	*ret_len = mlen;
	return 0;
}
