/* SPDX-License-Identifier: GPL-2.0-or-later */
/* image_test.c — image probing (directory / squashfs / SIF) and the squashfs superblock checks. */
#include <endian.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "image.h"
#include "sif.h"

#define SQ_SIZE 4096

static void put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

/* A superblock as mksquashfs 4.5 writes it (gzip, 128 KiB blocks), in a file of @size bytes. */
static uint8_t *make_squashfs(size_t size, uint64_t bytes_used)
{
	uint8_t *b = xzalloc(size);
	memcpy(b, "hsqs", 4);
	put32(b + 4, 12);
	put32(b + 8, 1700000000);
	put32(b + 12, 131072);
	put32(b + 16, 2);
	put16(b + 20, 1);
	put16(b + 22, 17);
	put16(b + 24, 0x00c0);
	put16(b + 26, 1);
	put16(b + 28, 4);
	put16(b + 30, 0);
	put64(b + 32, 0x1234);
	put64(b + 40, bytes_used);
	put64(b + 48, bytes_used - 20); /* id table */
	put64(b + 56, UINT64_MAX); /* no xattrs */
	put64(b + 64, 300); /* inode table */
	put64(b + 72, 700); /* directory table */
	put64(b + 80, bytes_used - 60); /* fragment table */
	put64(b + 88, bytes_used - 40); /* export table */
	return b;
}

static int memfd_with(const void *data, size_t len)
{
	int fd = memfd_create("image-test", MFD_CLOEXEC);
	assert_true(fd >= 0);
	if (len)
		assert_int_equal(pwrite(fd, data, len, 0), (ssize_t)len);
	return fd;
}

/* Probes @len bytes of @data; returns the error message or NULL (and *ret). */
static char *probe_bytes(const void *data, size_t len, struct ferry_image_info *ret)
{
	int fd = memfd_with(data, len);
	struct ferry_image_info info;
	memset(&info, 0xa5, sizeof(info));
	struct ferry_error *err = NULL;
	int r = ferry_image_probe_fd(fd, &info, &err);
	close(fd);
	if (r < 0) {
		assert_non_null(err);
		char *m = xstrdup(err->message);
		ferry_error_free(err);
		return m;
	}
	assert_null(err);
	if (ret)
		*ret = info;
	return NULL;
}

static void expect_probe_error(const void *data, size_t len, const char *needle)
{
	_cleanup_free_ char *m = probe_bytes(data, len, NULL);
	if (!m)
		fail_msg("expected an error containing '%s'", needle);
	if (!strstr(m, needle))
		fail_msg("error '%s' does not contain '%s'", m, needle);
}

static void expect_sq_error(const uint8_t *sb, uint64_t avail, const char *needle)
{
	struct ferry_error *err = NULL;
	struct ferry_squashfs_info si;
	int r = ferry_squashfs_check(sb, FERRY_SQUASHFS_SUPER_SIZE, avail, &si, &err);
	if (r >= 0)
		fail_msg("superblock accepted, expected '%s'", needle);
	assert_non_null(err);
	if (!strstr(err->message, needle))
		fail_msg("error '%s' does not contain '%s'", err->message, needle);
	ferry_error_free(err);
}

/* A SIF around a squashfs of SQ_SIZE bytes, through the real writer. */
static uint8_t *make_sif(const char *arch, size_t *ret_len)
{
	_cleanup_free_ uint8_t *sq = make_squashfs(SQ_SIZE, SQ_SIZE - 100);
	int sqfd = memfd_with(sq, SQ_SIZE);
	int out = memfd_with(NULL, 0);
	struct ferry_sif_write_opts o = {.arch = arch};
	struct ferry_error *err = NULL;
	assert_int_equal(ferry_sif_write_fd(out, sqfd, &o, &err), 0);
	struct stat st;
	assert_int_equal(fstat(out, &st), 0);
	uint8_t *b = xmalloc((size_t)st.st_size);
	assert_int_equal(pread(out, b, (size_t)st.st_size, 0), st.st_size);
	*ret_len = (size_t)st.st_size;
	close(sqfd);
	close(out);
	return b;
}

static void test_squashfs_good(void **state)
{
	_cleanup_free_ uint8_t *b = make_squashfs(SQ_SIZE, 4000);
	struct ferry_squashfs_info si;
	struct ferry_error *err = NULL;
	assert_int_equal(ferry_squashfs_check(b, SQ_SIZE, SQ_SIZE, &si, &err), 0);
	assert_int_equal(si.inodes, 12);
	assert_int_equal(si.mkfs_time, 1700000000);
	assert_int_equal(si.block_size, 131072);
	assert_int_equal(si.block_log, 17);
	assert_int_equal(si.fragments, 2);
	assert_int_equal(si.compression, 1);
	assert_int_equal(si.flags, 0xc0);
	assert_int_equal(si.no_ids, 1);
	assert_int_equal(si.major, 4);
	assert_int_equal(si.minor, 0);
	assert_int_equal(si.bytes_used, 4000);
	/* bytes_used may be exactly what is there */
	assert_int_equal(ferry_squashfs_check(b, SQ_SIZE, 4000, NULL, &err), 0);
	/* every block size from 4 KiB to 1 MiB */
	for (unsigned log = 12; log <= 20; log++) {
		put32(b + 12, 1u << log);
		put16(b + 22, (uint16_t)log);
		assert_int_equal(ferry_squashfs_check(b, SQ_SIZE, SQ_SIZE, NULL, &err), 0);
	}
	/* every known compressor */
	for (uint16_t c = 1; c <= 6; c++) {
		put16(b + 20, c);
		assert_int_equal(ferry_squashfs_check(b, SQ_SIZE, SQ_SIZE, NULL, &err), 0);
	}
	assert_null(err);
}

static void test_squashfs_bad(void **state)
{
	_cleanup_free_ uint8_t *b = make_squashfs(SQ_SIZE, 4000);
	uint8_t sb[FERRY_SQUASHFS_SUPER_SIZE];

#define RESET() memcpy(sb, b, sizeof(sb))
	RESET();
	memcpy(sb, "sqsh", 4); /* big-endian squashfs */
	expect_sq_error(sb, SQ_SIZE, "bad magic");
	RESET();
	put16(sb + 28, 3);
	put16(sb + 30, 1);
	expect_sq_error(sb, SQ_SIZE, "squashfs version 3.1 is not supported");
	RESET();
	put16(sb + 30, 1);
	expect_sq_error(sb, SQ_SIZE, "version 4.1");
	RESET();
	put32(sb + 12, 131073);
	expect_sq_error(sb, SQ_SIZE, "block size 131073");
	RESET();
	put32(sb + 12, 2048);
	put16(sb + 22, 11);
	expect_sq_error(sb, SQ_SIZE, "block size 2048");
	RESET();
	put32(sb + 12, 2u << 20);
	put16(sb + 22, 21);
	expect_sq_error(sb, SQ_SIZE, "block size 2097152");
	RESET();
	put32(sb + 12, 0);
	expect_sq_error(sb, SQ_SIZE, "block size 0");
	RESET();
	put16(sb + 22, 16);
	expect_sq_error(sb, SQ_SIZE, "block_log 16 does not match");
	RESET();
	put16(sb + 22, 0xffff);
	expect_sq_error(sb, SQ_SIZE, "block_log");
	RESET();
	put16(sb + 20, 0);
	expect_sq_error(sb, SQ_SIZE, "unknown squashfs compression 0");
	RESET();
	put16(sb + 20, 7);
	expect_sq_error(sb, SQ_SIZE, "unknown squashfs compression 7");
	RESET();
	put32(sb + 4, 0);
	expect_sq_error(sb, SQ_SIZE, "no inodes");
	RESET();
	expect_sq_error(sb, 3999, "squashfs claims 4000 bytes but only 3999 are there (truncated download?)");
	RESET();
	put64(sb + 40, UINT64_MAX);
	expect_sq_error(sb, SQ_SIZE, "truncated");
	RESET();
	put64(sb + 40, 95);
	expect_sq_error(sb, SQ_SIZE, "bytes_used 95");
	RESET();
	put64(sb + 64, 4000); /* inode table at bytes_used */
	expect_sq_error(sb, SQ_SIZE, "table offset");
	RESET();
	put64(sb + 72, UINT64_MAX);
	expect_sq_error(sb, SQ_SIZE, "table offset");
	RESET();
	put64(sb + 48, 5000);
	expect_sq_error(sb, SQ_SIZE, "table offset");
	RESET();
	expect_sq_error(sb, 95, "too short");
#undef RESET

	struct ferry_error *err = NULL;
	assert_true(ferry_squashfs_check(b, 95, SQ_SIZE, NULL, &err) < 0);
	assert_non_null(strstr(err->message, "too short"));
	ferry_error_free(err);
}

static void test_squashfs_fd(void **state)
{
	_cleanup_free_ uint8_t *b = make_squashfs(SQ_SIZE, 4000);
	_cleanup_free_ uint8_t *shifted = xzalloc(SQ_SIZE + 512);
	memcpy(shifted + 512, b, SQ_SIZE);
	int fd = memfd_with(shifted, SQ_SIZE + 512);
	struct ferry_error *err = NULL;
	struct ferry_squashfs_info si;
	assert_int_equal(ferry_squashfs_check_fd(fd, 512, SQ_SIZE, &si, &err), 0);
	assert_int_equal(si.bytes_used, 4000);
	assert_true(ferry_squashfs_check_fd(fd, 0, SQ_SIZE, &si, &err) < 0);
	ferry_error_free(err);
	err = NULL;
	/* The region says 4096 bytes but the file ends earlier: the read comes up short. */
	assert_true(ferry_squashfs_check_fd(fd, SQ_SIZE + 512 - 50, SQ_SIZE, &si, &err) < 0);
	assert_non_null(strstr(err->message, "too short"));
	ferry_error_free(err);
	close(fd);
}

static void test_compression_names(void **state)
{
	assert_string_equal(ferry_squashfs_compression_name(1), "gzip");
	assert_string_equal(ferry_squashfs_compression_name(4), "xz");
	assert_string_equal(ferry_squashfs_compression_name(6), "zstd");
	assert_string_equal(ferry_squashfs_compression_name(0), "unknown");
	assert_string_equal(ferry_squashfs_compression_name(7), "unknown");
}

static void test_probe_dir(void **state)
{
	int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	struct ferry_image_info info;
	struct ferry_error *err = NULL;
	assert_int_equal(ferry_image_probe_fd(fd, &info, &err), 0);
	assert_int_equal(info.kind, FERRY_IMAGE_DIR);
	assert_int_equal(info.offset, 0);
	assert_int_equal(info.size, 0);
	close(fd);
}

static void test_probe_squashfs(void **state)
{
	_cleanup_free_ uint8_t *b = make_squashfs(SQ_SIZE, 4000);
	struct ferry_image_info info;
	assert_null(probe_bytes(b, SQ_SIZE, &info));
	assert_int_equal(info.kind, FERRY_IMAGE_SQUASHFS);
	assert_int_equal(info.offset, 0);
	assert_int_equal(info.size, SQ_SIZE);
	assert_int_equal(info.file_size, SQ_SIZE);
	/* cut short: the superblock says more than the file holds */
	expect_probe_error(b, 3000,
			   "squashfs claims 4000 bytes but only 3000 are there (truncated download?)");
	expect_probe_error(b, 50, "too short for a squashfs superblock");
	expect_probe_error(b, 4, "too short");
}

static void test_probe_sif(void **state)
{
	size_t len;
	_cleanup_free_ uint8_t *b = make_sif(NULL, &len);
	struct ferry_image_info info;
	assert_null(probe_bytes(b, len, &info));
	assert_int_equal(info.kind, FERRY_IMAGE_SIF);
	assert_int_equal(info.offset, 32768);
	assert_int_equal(info.size, SQ_SIZE);
	assert_int_equal(info.file_size, len);

	/* Truncated anywhere: a clear message, never a crash. */
	for (size_t cut = 1; cut < len; cut += cut < 200 ? 1 : 1021) {
		_cleanup_free_ char *m = probe_bytes(b, cut, NULL);
		if (!m)
			fail_msg("a SIF cut at %zu bytes was accepted", cut);
		if (!strstr(m, "truncated") && !strstr(m, "not a ferry image"))
			fail_msg("cut at %zu: '%s'", cut, m);
		if (cut >= 16 && !strstr(m, "truncated"))
			fail_msg("cut at %zu: '%s' does not say truncated", cut, m);
	}

	/* The partition is not a squashfs. */
	b[32768] = 'X';
	expect_probe_error(b, len,
			   "SIF primary partition (descriptor 1): no squashfs superblock (bad magic)");
	b[32768] = 'h';

	/* The squashfs claims more than its partition. */
	put64(b + 32768 + 40, SQ_SIZE + 1);
	expect_probe_error(b, len, "truncated");
	put64(b + 32768 + 40, SQ_SIZE - 100);

	/* Descriptor bounds, as the SIF reader reports them. */
	put64(b + 4096 + 25, SQ_SIZE + 1);
	expect_probe_error(b, len,
			   "SIF descriptor 1 points beyond the end of the file (truncated download?)");
	put64(b + 4096 + 25, SQ_SIZE);

	/* Not a squashfs partition type. */
	put32(b + 4096 + 201, FERRY_SIF_FS_EXT3);
	expect_probe_error(b, len, "ext3");
	put32(b + 4096 + 201, FERRY_SIF_FS_SQUASH);
	assert_null(probe_bytes(b, len, NULL));
}

static void test_probe_sif_arch(void **state)
{
	const char *other = streq(ferry_sif_host_arch(), "04") ? "02" : "04";
	size_t len;
	_cleanup_free_ uint8_t *b = make_sif(other, &len);
	expect_probe_error(b, len, "the image is built for");
	/* "00" (unknown) in the partition: not refused */
	memcpy(b + 4096 + 209, "00", 2);
	assert_null(probe_bytes(b, len, NULL));
}

static void test_probe_other_files(void **state)
{
	expect_probe_error(
	    "", 0, "not a ferry image (expected a directory, a squashfs or a SIF file): the file is empty");
	expect_probe_error("hello\n", 6,
			   "not a ferry image (expected a directory, a squashfs or a SIF file)");
	expect_probe_error("\x1f\x8b\x08\x00", 4, "gzip");
	expect_probe_error("\x7f"
			   "ELF\x02\x01\x01",
			   7, "executable");
	const char def[] = "Bootstrap: debootstrap\nOSVersion: bookworm\n";
	expect_probe_error(def, sizeof(def) - 1, "definition file");

	_cleanup_free_ uint8_t *tar = xzalloc(1024);
	memcpy(tar + 257, "ustar", 5);
	expect_probe_error(tar, 1024, "tar archive");
	_cleanup_free_ uint8_t *ext = xzalloc(2048);
	ext[1080] = 0x53;
	ext[1081] = 0xef;
	expect_probe_error(ext, 2048, "ext2/3/4");

	/* The start of a SIF: launch script only, part of the magic. */
	const char launch[] = "#!/usr/bin/env run-singularity\n\0SIF_MA";
	expect_probe_error(launch, 20, "too short for a SIF header");
	expect_probe_error(launch, 32, "too short for a SIF header");
	expect_probe_error(launch, sizeof(launch) - 1, "too short for a SIF header");
	/* A full magic but no full header. */
	size_t len;
	_cleanup_free_ uint8_t *b = make_sif(NULL, &len);
	expect_probe_error(b, 100, "too short for a SIF header (100 bytes; truncated download?)");

	/* Not a regular file. */
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	struct ferry_image_info info;
	struct ferry_error *err = NULL;
	assert_true(ferry_image_probe_fd(fd, &info, &err) < 0);
	assert_non_null(strstr(err->message, "not a regular file"));
	ferry_error_free(err);
	close(fd);
}

static void test_kind_names(void **state)
{
	assert_string_equal(ferry_image_kind_name(FERRY_IMAGE_DIR), "directory");
	assert_string_equal(ferry_image_kind_name(FERRY_IMAGE_SQUASHFS), "squashfs");
	assert_string_equal(ferry_image_kind_name(FERRY_IMAGE_SIF), "SIF");
	assert_string_equal(ferry_image_kind_name((enum ferry_image_kind)0), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_squashfs_good),     cmocka_unit_test(test_squashfs_bad),
	    cmocka_unit_test(test_squashfs_fd),	      cmocka_unit_test(test_compression_names),
	    cmocka_unit_test(test_probe_dir),	      cmocka_unit_test(test_probe_squashfs),
	    cmocka_unit_test(test_probe_sif),	      cmocka_unit_test(test_probe_sif_arch),
	    cmocka_unit_test(test_probe_other_files), cmocka_unit_test(test_kind_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
