/* SPDX-License-Identifier: GPL-2.0-or-later */
/* xfer: the starter-to-starter handshake and checkpoint stream, over socketpairs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "fs.h"
#include "xfer.h"

static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";

/* Runs the sender handshake on sv[1] in a child with @k and @uid; returns its pid. The child
 * closes the receiver's end, so that the receiver's close is the sender's end of file (not its
 * 5 s limit). */
static pid_t sender(const int sv[2], const unsigned char *k, uid_t uid)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ferry_error *err = NULL;
		close(sv[0]);
		_exit(ferry_xfer_connect(sv[1], k, 32, uid, 5, NULL, &err) == 0 ? 0 : 1);
	}
	return pid;
}

static int status_of(pid_t pid)
{
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void test_handshake_ok(void **state)
{
	int sv[2];
	pair(sv);
	pid_t pid = sender(sv, key, 1001);
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_xfer_accept(sv[0], key, 32, 1001, 5, NULL, &err), 0);
	assert_int_equal(status_of(pid), 0);
	close(sv[0]);
	close(sv[1]);
}

static void test_handshake_other_uid(void **state)
{
	int sv[2];
	pair(sv);
	pid_t pid = sender(sv, key, 1002);
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_true(ferry_xfer_accept(sv[0], key, 32, 1001, 5, NULL, &err) < 0);
	assert_non_null(strstr(err->message, "uid 1002"));
	close(sv[0]); /* the sender then fails too */
	assert_int_equal(status_of(pid), 1);
	close(sv[1]);
}

static void test_handshake_wrong_key(void **state)
{
	unsigned char other[32];
	memcpy(other, key, 32);
	other[31] ^= 0x80;
	/* a sender without the key is refused by the receiver */
	int sv[2];
	pair(sv);
	pid_t pid = sender(sv, other, 1001);
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_true(ferry_xfer_accept(sv[0], key, 32, 1001, 5, NULL, &err) < 0);
	assert_non_null(strstr(err->message, "cluster key"));
	close(sv[0]);
	assert_int_equal(status_of(pid), 1);
	close(sv[1]);
	/* a receiver without the key is refused by the sender */
	pair(sv);
	pid = sender(sv, key, 1001);
	struct ferry_error *e2 = NULL;
	assert_true(ferry_xfer_accept(sv[0], other, 32, 1001, 5, NULL, &e2) < 0);
	ferry_error_free(e2);
	close(sv[0]);
	assert_int_equal(status_of(pid), 1);
	close(sv[1]);
}

static void test_handshake_garbage(void **state)
{
	int sv[2];
	pair(sv);
	static const char junk[] =
	    "HELLO, I AM NOT FERRY AT ALL, REALLY NOT!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!";
	assert_int_equal(write(sv[1], junk, sizeof(junk)), (ssize_t)sizeof(junk));
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_true(ferry_xfer_accept(sv[0], key, 32, 1001, 5, NULL, &err) < 0);
	close(sv[0]);
	close(sv[1]);
	/* a peer that says nothing times out */
	pair(sv);
	struct ferry_error *e2 = NULL;
	assert_int_equal(ferry_xfer_accept(sv[0], key, 32, 1001, 1, NULL, &e2), -ETIMEDOUT);
	ferry_error_free(e2);
	close(sv[0]);
	close(sv[1]);
}

static int rm_cb(const char *p, const struct stat *st, int f, struct FTW *w)
{
	return remove(p);
}

static char *tmpdir(void)
{
	char *t = xstrdup("/tmp/xfer_test.XXXXXX");
	assert_non_null(mkdtemp(t));
	return t;
}

/* Closes a stream test's socket pair and directories, and removes the directories. */
static void end_stream_test(int sv[2], int sfd, int dfd, const char *src, const char *dst)
{
	close(sv[0]);
	close(sv[1]);
	close(sfd);
	close(dfd);
	nftw(src, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	nftw(dst, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_stream_round_trip(void **state)
{
	_cleanup_free_ char *src = tmpdir(), *dst = tmpdir();
	int sfd = open(src, O_RDONLY | O_DIRECTORY), dfd = open(dst, O_RDONLY | O_DIRECTORY);
	/* a 3 MiB file (several buffers) and an empty one */
	int fd = openat(sfd, "pages-1.img", O_WRONLY | O_CREAT, 0600);
	for (int i = 0; i < 3 * 1024; i++) {
		char buf[1024];
		memset(buf, 'a' + i % 26, sizeof(buf));
		assert_int_equal(write(fd, buf, sizeof(buf)), sizeof(buf));
	}
	close(fd);
	close(openat(sfd, "empty.img", O_WRONLY | O_CREAT, 0600));
	int sv[2];
	pair(sv);
	pid_t pid = fork();
	if (pid == 0) {
		struct ferry_error *err = NULL;
		char *const names[] = {"pages-1.img", "empty.img"};
		int r = ferry_xfer_send_files(sv[1], sfd, names, 2, "ferry-manifest 1\nuid=1\n", 23, &err);
		r = r ?: ferry_xfer_read_verdict(sv[1], 5, &err);
		_exit(r == 0 ? 0 : 1);
	}
	char *m = NULL;
	size_t len = 0;
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_xfer_receive(sv[0], dfd, 5, &m, &len, &err), 0);
	assert_int_equal(len, 23);
	assert_string_equal(m, "ferry-manifest 1\nuid=1\n");
	free(m);
	assert_int_equal(ferry_xfer_send_verdict(sv[0], NULL), 0);
	assert_int_equal(status_of(pid), 0);
	struct stat a, b;
	assert_int_equal(fstatat(sfd, "pages-1.img", &a, 0), 0);
	assert_int_equal(fstatat(dfd, "pages-1.img", &b, 0), 0);
	assert_int_equal(a.st_size, b.st_size);
	assert_int_equal(b.st_mode & 0777, 0400);
	assert_int_equal(fstatat(dfd, "empty.img", &b, 0), 0);
	assert_int_equal(b.st_size, 0);
	end_stream_test(sv, sfd, dfd, src, dst);
}

/* The files handed over as fds (as the starter does to ferry-xfer send): a file the sender
 * could not open by name (mode 0) still goes, and a handed-over entry with a bad name or without
 * a file fails the stream. */
static void test_stream_passed(void **state)
{
	_cleanup_free_ char *src = tmpdir(), *dst = tmpdir();
	int sfd = open(src, O_RDONLY | O_DIRECTORY), dfd = open(dst, O_RDONLY | O_DIRECTORY);
	int fd = openat(sfd, "core-1.img", O_RDWR | O_CREAT, 0600);
	assert_int_equal(write(fd, "core of pid 1", 13), 13);
	fchmod(fd, 0);
	int sv[2], src_sk[2];
	pair(sv);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, src_sk), 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct ferry_error *err = NULL;
		close(src_sk[0]);
		_exit(ferry_xfer_send_passed(sv[1], src_sk[1], &err) == 0 ? 0 : 1);
	}
	close(src_sk[1]);
	_cleanup_error_ struct ferry_error *err = NULL;
	lseek(fd, 0, SEEK_SET);
	assert_int_equal(ferry_xfer_pass_file(src_sk[0], "core-1.img", fd, &err), 0);
	int mfd = memfd_create("m", MFD_CLOEXEC);
	assert_int_equal(write(mfd, "ferry-manifest 1\n", 17), 17);
	assert_int_equal(ferry_xfer_pass_file(src_sk[0], "manifest", mfd, &err), 0);
	close(src_sk[0]);
	char *m = NULL;
	size_t len = 0;
	assert_int_equal(ferry_xfer_receive(sv[0], dfd, 5, &m, &len, &err), 0);
	assert_int_equal(len, 17);
	free(m);
	assert_int_equal(status_of(pid), 0);
	struct stat b;
	assert_int_equal(fstatat(dfd, "core-1.img", &b, 0), 0);
	assert_int_equal(b.st_size, 13);
	close(fd);
	close(mfd);

	/* a bad name, and a message without a file: the sender fails */
	const char *bad[] = {"../escape", NULL};
	for (int i = 0; i < 2; i++) {
		int s2[2], t2[2];
		pair(t2);
		assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, s2), 0);
		if (bad[i]) {
			int f = open("/dev/null", O_RDONLY | O_CLOEXEC);
			assert_int_equal(ferry_xfer_pass_file(s2[0], bad[i], f, &err), 0);
			close(f);
		} else {
			assert_int_equal(send(s2[0], "core-2.img", 10, 0), 10);
		}
		close(s2[0]);
		_cleanup_error_ struct ferry_error *e2 = NULL;
		assert_true(ferry_xfer_send_passed(t2[1], s2[1], &e2) < 0);
		close(s2[1]);
		close(t2[0]);
		close(t2[1]);
	}
	end_stream_test(sv, sfd, dfd, src, dst);
}

/* What follows the stream on the socket (the commit) must not be mistaken for the stream's
 * closing chunk: the receiver reads the stream to its end. libarchive stops at the tar trailer,
 * and its zstd reader asks for more input only while its output buffer has room: when the
 * archive's size is a multiple of that buffer, the closing chunk was left unread. Tar sizes go
 * in 512-byte steps: 300 sizes cover every position in a 128 KiB buffer. */
static void test_stream_then_commit(void **state)
{
	unsigned seed = 12345;
	for (int k = 0; k < 300; k++) {
		_cleanup_free_ char *src = tmpdir(), *dst = tmpdir();
		int sfd = open(src, O_RDONLY | O_DIRECTORY), dfd = open(dst, O_RDONLY | O_DIRECTORY);
		size_t size = (size_t)k * 512;
		_cleanup_free_ unsigned char *data = xmalloc(size + 1);
		for (size_t i = 0; i < size; i++) {
			seed = seed * 1103515245u + 12345u;
			data[i] = i < size / 2 ? (unsigned char)(i / 512) : (unsigned char)(seed >> 16);
		}
		int fd = openat(sfd, "core-1.img", O_WRONLY | O_CREAT, 0600);
		assert_int_equal(write(fd, data, size), (ssize_t)size);
		close(fd);
		int sv[2];
		pair(sv);
		pid_t pid = fork();
		if (pid == 0) {
			struct ferry_error *err = NULL;
			char *const names[] = {"core-1.img"};
			int r = ferry_xfer_send_files(sv[1], sfd, names, 1, "ferry-manifest 1\n", 17, &err);
			r = r ?: ferry_xfer_read_verdict(sv[1], 5, &err);
			r = r ?: ferry_xfer_send_commit(sv[1]);
			_exit(r == 0 ? 0 : 1);
		}
		char *m = NULL;
		size_t len = 0;
		_cleanup_error_ struct ferry_error *err = NULL;
		assert_int_equal(ferry_xfer_receive(sv[0], dfd, 5, &m, &len, &err), 0);
		free(m);
		assert_int_equal(ferry_xfer_send_verdict(sv[0], NULL), 0);
		if (ferry_xfer_await_commit(sv[0], 5) < 0)
			fail_msg("file of %zu bytes: the commit was not read as one", size);
		assert_int_equal(status_of(pid), 0);
		end_stream_test(sv, sfd, dfd, src, dst);
	}
}

/* Reads from sv[0] what was written on sv[1]: it must be refused, cleanly. */
static void expect_bad_stream_fd(int sv[2], const char *what)
{
	_cleanup_free_ char *dst = tmpdir();
	int dfd = open(dst, O_RDONLY | O_DIRECTORY);
	shutdown(sv[1], SHUT_WR);
	char *m = NULL;
	size_t len = 0;
	struct ferry_error *err = NULL;
	if (ferry_xfer_receive(sv[0], dfd, 2, &m, &len, &err) == 0)
		fail_msg("accepted: %s", what);
	assert_non_null(err);
	assert_null(m);
	ferry_error_free(err);
	close(sv[0]);
	close(sv[1]);
	close(dfd);
	nftw(dst, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

static void expect_bad_stream(const void *bytes, size_t n, const char *what)
{
	int sv[2];
	pair(sv);
	assert_int_equal(write(sv[1], bytes, n), (ssize_t)n);
	expect_bad_stream_fd(sv, what);
}

struct entry {
	const char *name;
	unsigned type; /* AE_IFREG, AE_IFLNK, AE_IFDIR */
	const char *data;
};

/* A zstd tar of @es in the chunk framing ferry_xfer_send_files uses (libarchive writes it). */
static la_ssize_t to_pipe(struct archive *a, void *fd, const void *buf, size_t len)
{
	unsigned char hdr[4] = {(unsigned char)len, (unsigned char)(len >> 8), (unsigned char)(len >> 16),
				(unsigned char)(len >> 24)};
	assert_int_equal(write(*(int *)fd, hdr, 4), 4);
	assert_int_equal(write(*(int *)fd, buf, len), (ssize_t)len);
	return (la_ssize_t)len;
}

static void write_archive(int fd, const struct entry *es, size_t n)
{
	struct archive *a = archive_write_new();
	archive_write_add_filter_zstd(a);
	archive_write_set_format_pax_restricted(a);
	archive_write_set_bytes_per_block(a, 0);
	assert_int_equal(archive_write_open(a, &fd, NULL, to_pipe, NULL), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, es[i].name);
		archive_entry_set_filetype(e, es[i].type);
		archive_entry_set_perm(e, 0644);
		if (es[i].type == AE_IFLNK)
			archive_entry_set_symlink(e, "/etc/passwd");
		size_t len = es[i].type == AE_IFREG ? strlen(es[i].data) : 0;
		archive_entry_set_size(e, (la_int64_t)len);
		archive_write_header(a, e);
		if (len)
			archive_write_data(a, es[i].data, len);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	unsigned char end[4] = {0};
	assert_int_equal(write(fd, end, 4), 4);
}

static void expect_bad_archive(const struct entry *es, size_t n, const char *what)
{
	int sv[2];
	pair(sv);
	write_archive(sv[1], es, n);
	expect_bad_stream_fd(sv, what);
}

static void test_stream_rejects(void **state)
{
	expect_bad_stream("", 0, "nothing");
	expect_bad_stream("\x05\x00\x00\x00junk!\x00\x00\x00\x00", 13, "not an archive");
	expect_bad_stream("\xff\xff\xff\x7f", 4, "huge chunk");
	const struct entry m = {"manifest", AE_IFREG, "ferry-manifest 1\nuid=1\n"};
	const struct entry none[] = {{"a.img", AE_IFREG, "x"}};
	expect_bad_archive(none, 1, "no manifest");
	const struct entry dotdot[] = {{"../x.img", AE_IFREG, "x"}, m};
	expect_bad_archive(dotdot, 2, "dot-dot name");
	const struct entry slash[] = {{"a/b.img", AE_IFREG, "x"}, m};
	expect_bad_archive(slash, 2, "slash in name");
	const struct entry hidden[] = {{".x", AE_IFREG, "x"}, m};
	expect_bad_archive(hidden, 2, "hidden name");
	const struct entry link[] = {{"l.img", AE_IFLNK, NULL}, m};
	expect_bad_archive(link, 2, "symlink");
	const struct entry dir[] = {{"d", AE_IFDIR, NULL}, m};
	expect_bad_archive(dir, 2, "directory");
	const struct entry dup[] = {{"a.img", AE_IFREG, "x"}, {"a.img", AE_IFREG, "y"}, m};
	expect_bad_archive(dup, 3, "the same file twice");
	const struct entry after[] = {m, {"late.img", AE_IFREG, "x"}};
	expect_bad_archive(after, 2, "a file after the manifest");
}

static void test_verdict(void **state)
{
	int sv[2];
	pair(sv);
	assert_int_equal(ferry_xfer_send_verdict(sv[0], "restore failed: no space"), 0);
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_xfer_read_verdict(sv[1], 5, &err), -EREMOTEIO);
	assert_non_null(strstr(err->message, "no space"));
	assert_int_equal(ferry_xfer_send_verdict(sv[0], NULL), 0);
	struct ferry_error *e2 = NULL;
	assert_int_equal(ferry_xfer_read_verdict(sv[1], 5, &e2), 0);
	close(sv[0]);
	/* the receiver vanished */
	struct ferry_error *e3 = NULL;
	assert_true(ferry_xfer_read_verdict(sv[1], 5, &e3) < 0);
	ferry_error_free(e3);
	close(sv[1]);
}

/* A refusal's text comes from whoever answered on the port (no key proven): it reaches the user's
 * terminal as printable ASCII only, no escape sequence (ESC, DEL, 8-bit bytes: C1 controls). */
static void test_refusal_printable(void **state)
{
	int sv[2];
	pair(sv);
	assert_int_equal(ferry_xfer_send_verdict(sv[0], "a\x1b]0;title\x07"
							"b\x7f\x9b"
							"31mc\xc3\xa9\n"),
			 0);
	_cleanup_error_ struct ferry_error *err = NULL;
	assert_int_equal(ferry_xfer_read_verdict(sv[1], 5, &err), -EREMOTEIO);
	for (const char *p = err->message; *p; p++)
		assert_true(*p >= 0x20 && *p <= 0x7e);
	assert_non_null(strstr(err->message, "a ]0;title b  31mc   "));
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refusal_printable),
	    cmocka_unit_test(test_handshake_ok),
	    cmocka_unit_test(test_handshake_other_uid),
	    cmocka_unit_test(test_handshake_wrong_key),
	    cmocka_unit_test(test_handshake_garbage),
	    cmocka_unit_test(test_stream_round_trip),
	    cmocka_unit_test(test_stream_then_commit),
	    cmocka_unit_test(test_stream_rejects),
	    cmocka_unit_test(test_verdict),
	    cmocka_unit_test(test_stream_passed),
	};
	return cmocka_run_group_tests_name("xfer", tests, NULL, NULL);
}
