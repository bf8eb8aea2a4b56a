/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sif_test.c — SIF writer/reader round trip, byte layout, and every way a SIF can be broken. */
#include <dirent.h>
#include <endian.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "sif.h"

#define SQ_SIZE 8192
#define PART_OFF 32768
#define SIF_SIZE (PART_OFF + SQ_SIZE)

static const uint8_t fixed_id[16] = {0xb2, 0x65, 0x9d, 0x4e, 0xbd, 0x50, 0x4e, 0xa5,
				     0xbd, 0x17, 0xee, 0xc5, 0xe5, 0x4f, 0x91, 0x8e};

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

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

/* A squashfs-looking file: a valid superblock, then a recognizable pattern. */
static uint8_t *make_squashfs(size_t size)
{
	uint8_t *b = xzalloc(size);
	for (size_t i = 96; i < size; i++)
		b[i] = (uint8_t)(i * 7 + 3);
	memcpy(b, "hsqs", 4);
	put32(b + 4, 5); /* inodes */
	put32(b + 8, 1700000000);
	put32(b + 12, 131072); /* block size */
	put32(b + 16, 1);
	put16(b + 20, 1); /* gzip */
	put16(b + 22, 17); /* block_log */
	put16(b + 26, 1);
	put16(b + 28, 4);
	put16(b + 30, 0);
	put64(b + 40, size - 100); /* bytes_used */
	put64(b + 48, size - 200); /* id table */
	put64(b + 64, 1000); /* inode table */
	put64(b + 72, 2000); /* directory table */
	return b;
}

static int memfd_with(const void *data, size_t len)
{
	int fd = memfd_create("sif-test", MFD_CLOEXEC);
	assert_true(fd >= 0);
	if (len)
		assert_int_equal(pwrite(fd, data, len, 0), (ssize_t)len);
	return fd;
}

static uint8_t *read_all(int fd, size_t *ret_len)
{
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	uint8_t *b = xmalloc((size_t)st.st_size + 1);
	assert_int_equal(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
	*ret_len = (size_t)st.st_size;
	return b;
}

/* A SIF written by ferry with fixed id, time and arch, as bytes. */
static uint8_t *make_sif(size_t *ret_len)
{
	_cleanup_free_ uint8_t *sq = make_squashfs(SQ_SIZE);
	int sqfd = memfd_with(sq, SQ_SIZE);
	int out = memfd_with(NULL, 0);
	struct ferry_sif_write_opts o = {
	    .id = fixed_id, .fixed_time = true, .time = 1504657553, .arch = "02"};
	struct ferry_error *err = NULL;
	assert_int_equal(ferry_sif_write_fd(out, sqfd, &o, &err), 0);
	assert_null(err);
	uint8_t *b = read_all(out, ret_len);
	close(sqfd);
	close(out);
	return b;
}

/* Reads @len bytes of @buf as a SIF file; returns the error message (or NULL on success). */
static char *read_sif_bytes(const uint8_t *buf, size_t len, struct ferry_sif **ret)
{
	int fd = memfd_with(buf, len);
	struct ferry_error *err = NULL;
	struct ferry_sif *s = NULL;
	int r = ferry_sif_read(fd, &s, &err);
	close(fd);
	if (r < 0) {
		assert_non_null(err);
		assert_null(s);
		char *m = xstrdup(err->message);
		ferry_error_free(err);
		return m;
	}
	assert_null(err);
	if (ret)
		*ret = s;
	else
		ferry_sif_free(s);
	return NULL;
}

static void expect_error(const uint8_t *buf, size_t len, const char *needle)
{
	_cleanup_free_ char *m = read_sif_bytes(buf, len, NULL);
	if (!m)
		fail_msg("expected an error containing '%s'", needle);
	if (!strstr(m, needle))
		fail_msg("error '%s' does not contain '%s'", m, needle);

	/* The buffer parser agrees with the fd reader. */
	struct ferry_error *err = NULL;
	struct ferry_sif *s = NULL;
	assert_true(ferry_sif_parse(buf, len, len, &s, &err) < 0);
	assert_non_null(err);
	assert_null(s);
	ferry_error_free(err);
}

static void test_roundtrip(void **state)
{
	size_t len;
	_cleanup_free_ uint8_t *b = make_sif(&len);
	assert_int_equal(len, SIF_SIZE);

	struct ferry_sif *s = NULL;
	_cleanup_free_ char *m = read_sif_bytes(b, len, &s);
	assert_null(m);
	assert_string_equal(s->launch, "#!/usr/bin/env run-singularity\n");
	assert_string_equal(s->version, "01");
	assert_string_equal(s->arch, "02");
	assert_memory_equal(s->id, fixed_id, 16);
	assert_int_equal(s->ctime, 1504657553);
	assert_int_equal(s->mtime, 1504657553);
	assert_int_equal(s->descriptors_free, 47);
	assert_int_equal(s->descriptors_total, 48);
	assert_int_equal(s->descriptors_offset, 4096);
	assert_int_equal(s->descriptors_size, 48 * 585);
	assert_int_equal(s->data_offset, 32176);
	assert_int_equal(s->data_size, SQ_SIZE + (PART_OFF - 32176));
	assert_int_equal(s->file_size, SIF_SIZE);
	assert_int_equal(s->n_descriptors, 1);
	const struct ferry_sif_descriptor *d = &s->descriptors[0];
	assert_ptr_equal(s->primary, d);
	assert_int_equal(d->index, 0);
	assert_int_equal(d->datatype, FERRY_SIF_DATA_PARTITION);
	assert_int_equal(d->id, 1);
	assert_int_equal(d->group_id, 0xf0000001u);
	assert_int_equal(d->link, 0);
	assert_int_equal(d->offset, PART_OFF);
	assert_int_equal(d->size, SQ_SIZE);
	assert_int_equal(d->size_with_padding, SQ_SIZE + (PART_OFF - 32176));
	assert_int_equal(d->ctime, 1504657553);
	assert_int_equal(d->fstype, FERRY_SIF_FS_SQUASH);
	assert_int_equal(d->parttype, FERRY_SIF_PART_PRIMSYS);
	assert_string_equal(d->arch, "02");
	assert_string_equal(d->name, "");

	const struct ferry_sif_descriptor *p = NULL;
	struct ferry_error *err = NULL;
	assert_int_equal(ferry_sif_primary_squashfs(s, &p, &err), 0);
	assert_ptr_equal(p, d);

	/* The squashfs is stored byte for byte at the partition offset. */
	_cleanup_free_ uint8_t *sq = make_squashfs(SQ_SIZE);
	assert_memory_equal(b + PART_OFF, sq, SQ_SIZE);
	ferry_sif_free(s);
}

/* The exact bytes Apptainer's Go library (github.com/apptainer/sif, encoding/binary little endian)
 * produces for the same image: checked against `siftool new` + `siftool add --datatype 4 --parttype 2
 * --partfs 1 --partarch 2 --groupid 1`, which differs only in launch script, UUID and times. */
static void test_layout_matches_apptainer(void **state)
{
	size_t len;
	_cleanup_free_ uint8_t *b = make_sif(&len);

	/* Header. */
	assert_memory_equal(b, "#!/usr/bin/env run-singularity\n\0", 32);
	assert_memory_equal(b + 32, "SIF_MAGIC\0", 10);
	assert_memory_equal(b + 42, "01\0", 3);
	assert_memory_equal(b + 45, "02\0", 3);
	assert_memory_equal(b + 48, fixed_id, 16);
	assert_int_equal(get64(b + 64), 1504657553);
	assert_int_equal(get64(b + 72), 1504657553);
	assert_int_equal(get64(b + 80), 47);
	assert_int_equal(get64(b + 88), 48);
	assert_int_equal(get64(b + 96), 4096);
	assert_int_equal(get64(b + 104), 28080);
	assert_int_equal(get64(b + 112), 32176);
	assert_int_equal(get64(b + 120), SQ_SIZE + 592);
	for (size_t i = 128; i < 4096; i++)
		assert_int_equal(b[i], 0);

	/* Descriptor 1 at 4096, 585 bytes. */
	const uint8_t *d = b + 4096;
	static const uint8_t head[17] = {0x04, 0x40, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00,
					 0x01, 0x00, 0x00, 0xf0, 0x00, 0x00, 0x00, 0x00};
	assert_memory_equal(d, head, sizeof(head));
	assert_int_equal(get64(d + 17), 32768);
	assert_int_equal(get64(d + 25), SQ_SIZE);
	assert_int_equal(get64(d + 33), SQ_SIZE + 592);
	assert_int_equal(get64(d + 41), 1504657553);
	assert_int_equal(get64(d + 49), 1504657553);
	assert_int_equal(get64(d + 57), 0);
	assert_int_equal(get64(d + 65), 0);
	for (size_t i = 73; i < 201; i++)
		assert_int_equal(d[i], 0);
	assert_int_equal(get32(d + 201), 1); /* FsSquash */
	assert_int_equal(get32(d + 205), 2); /* PartPrimSys */
	assert_memory_equal(d + 209, "02\0", 3);
	for (size_t i = 212; i < 585; i++)
		assert_int_equal(d[i], 0);

	/* The other 47 descriptors and the padding up to the data are zero. */
	for (size_t i = 4096 + 585; i < PART_OFF; i++)
		assert_int_equal(b[i], 0);
}

static void test_random_ids(void **state)
{
	_cleanup_free_ uint8_t *sq = make_squashfs(SQ_SIZE);
	uint8_t ids[2][16];
	for (int k = 0; k < 2; k++) {
		int sqfd = memfd_with(sq, SQ_SIZE);
		int out = memfd_with(NULL, 0);
		struct ferry_error *err = NULL;
		assert_int_equal(ferry_sif_write_fd(out, sqfd, NULL, &err), 0);
		assert_int_equal(pread(out, ids[k], 16, 48), 16);
		assert_int_equal(ids[k][6] >> 4, 4); /* version 4 */
		assert_int_equal(ids[k][8] & 0xc0, 0x80); /* RFC 4122 variant */
		char arch[3];
		assert_int_equal(pread(out, arch, 3, 45), 3);
		assert_memory_equal(arch, ferry_sif_host_arch(), 3);
		close(sqfd);
		close(out);
	}
	assert_memory_not_equal(ids[0], ids[1], 16);
}

static void test_truncated_everywhere(void **state)
{
	size_t len;
	_cleanup_free_ uint8_t *b = make_sif(&len);
	/* Every byte of the header and first descriptor, then a stride, then the interesting boundaries. */
	for (size_t cut = 0; cut < len; cut += cut < 4096 + 600 ? 1 : 997) {
		_cleanup_free_ char *m = read_sif_bytes(b, cut, NULL);
		if (!m)
			fail_msg("a SIF cut at %zu bytes was accepted", cut);
		if (!strstr(m, "truncated"))
			fail_msg("cut at %zu: '%s' does not say truncated", cut, m);
	}
	static const size_t cuts[] = {127,	    128,	  4095,		 4096,		4096 + 584,
				      4096 + 585,   4096 + 28079, 4096 + 28080,	 32175,		32176,
				      PART_OFF - 1, PART_OFF,	  PART_OFF + 95, PART_OFF + 96, SIF_SIZE - 1};
	for (size_t i = 0; i < ARRAY_SIZE(cuts); i++) {
		_cleanup_free_ char *m = read_sif_bytes(b, cuts[i], NULL);
		assert_non_null(m);
		assert_non_null(strstr(m, "truncated"));
	}
	/* Extra bytes at the end are fine. */
	_cleanup_free_ uint8_t *longer = xzalloc(len + 100);
	memcpy(longer, b, len);
	assert_null(read_sif_bytes(longer, len + 100, NULL));
}

static void test_bad_magic_and_version(void **state)
{
	size_t len;
	_cleanup_free_ uint8_t *b = make_sif(&len);
	b[32] = 'X';
	expect_error(b, len, "bad magic");
	b[32] = 'S';
	b[41] = 'X'; /* the magic's NUL */
	expect_error(b, len, "bad magic");
	b[41] = 0;
	memcpy(b + 42, "02", 2);
	expect_error(b, len, "unsupported SIF version '02'");
	memcpy(b + 42, "\x01\n", 2);
	expect_error(b, len, "unsupported SIF version '\\x01\\x0a'");
	memcpy(b + 42, "01", 2);
	b[44] = '1';
	expect_error(b, len, "unsupported SIF version '011'");
	b[44] = 0;
	assert_null(read_sif_bytes(b, len, NULL));
}

static void test_header_counts(void **state)
{
	size_t len;
	_cleanup_free_ uint8_t *b = make_sif(&len);
	put64(b + 88, (uint64_t)-1); /* descriptors_total < 0 */
	expect_error(b, len, "descriptors");
	put64(b + 88, 1ull << 40);
	expect_error(b, len, "ferry reads at most");
	put64(b + 88, 4097);
	expect_error(b, len, "ferry reads at most");
	put64(b + 88, 48);
	put64(b + 104, 48 * 585 - 1); /* table too small for the count */
	expect_error(b, len, "cannot hold");
	put64(b + 104, 48 * 585);
	put64(b + 96, (uint64_t)INT64_MAX); /* table far beyond the end */
	expect_error(b, len, "beyond the end");
	put64(b + 96, (uint64_t)-4096);
	expect_error(b, len, "cannot hold");
	put64(b + 96, len - 48 * 585 + 1);
	expect_error(b, len, "beyond the end");
	put64(b + 96, 4096);
	put64(b + 88, 0); /* no descriptors at all: readable, nothing to run */
	struct ferry_sif *s = NULL;
	assert_null(read_sif_bytes(b, len, &s));
	assert_int_equal(s->n_descriptors, 0);
	assert_null(s->primary);
	const struct ferry_sif_descriptor *p = NULL;
	struct ferry_error *err = NULL;
	assert_int_equal(ferry_sif_primary_squashfs(s, &p, &err), -ENOENT);
	assert_non_null(strstr(err->message, "no primary system partition"));
	ferry_error_free(err);
	ferry_sif_free(s);
}

static void test_descriptor_bounds(void **state)
{
	size_t len;
	_cleanup_free_ uint8_t *b = make_sif(&len);
	uint8_t *d = b + 4096;
	/* offset + size wraps around 2^64 */
	put64(d + 17, (uint64_t)INT64_MAX - 10);
	put64(d + 25, 100);
	expect_error(b, len, "SIF descriptor 1 points beyond the end of the file");
	put64(d + 17, 0xfffffffffffff000ull); /* negative */
	put64(d + 25, 0x2000);
	expect_error(b, len, "negative");
	put64(d + 17, PART_OFF);
	put64(d + 25, (uint64_t)-1);
	expect_error(b, len, "negative");
	put64(d + 25, (uint64_t)INT64_MAX);
	expect_error(b, len, "beyond the end");
	put64(d + 25, SQ_SIZE + 1);
	expect_error(b, len, "beyond the end");
	put64(d + 17, len);
	put64(d + 25, 0); /* empty object at the very end: in bounds */
	assert_null(read_sif_bytes(b, len, NULL));
	put64(d + 17, len + 1);
	expect_error(b, len, "beyond the end");
}

static void test_descriptor_numbering_in_messages(void **state)
{
	size_t len;
	_cleanup_free_ uint8_t *b = make_sif(&len);
	/* A second, broken descriptor: a signature pointing past the end. */
	uint8_t *d2 = b + 4096 + 585;
	put32(d2, FERRY_SIF_DATA_SIGNATURE);
	d2[4] = 1;
	put32(d2 + 5, 2);
	put64(d2 + 17, len - 10);
	put64(d2 + 25, 11);
	expect_error(b, len, "SIF descriptor 2 points beyond the end of the file (truncated download?)");
	put64(d2 + 25, 10);
	struct ferry_sif *s = NULL;
	assert_null(read_sif_bytes(b, len, &s));
	assert_int_equal(s->n_descriptors, 2);
	assert_int_equal(s->descriptors[1].index, 1);
	assert_int_equal(s->descriptors[1].datatype, FERRY_SIF_DATA_SIGNATURE);
	assert_int_equal(s->descriptors[1].fstype, 0);
	assert_ptr_equal(s->primary, &s->descriptors[0]);
	ferry_sif_free(s);
	/* Unused descriptors are not looked at, whatever they hold. */
	d2[4] = 0;
	put64(d2 + 17, (uint64_t)-1);
	assert_null(read_sif_bytes(b, len, &s));
	assert_int_equal(s->n_descriptors, 1);
	ferry_sif_free(s);
}

static void test_two_primaries(void **state)
{
	size_t len;
	_cleanup_free_ uint8_t *b = make_sif(&len);
	memcpy(b + 4096 + 3 * 585, b + 4096, 585);
	expect_error(b, len, "descriptors 1 and 4 are both the primary partition");
}

static void test_primary_kinds(void **state)
{
	size_t len;
	_cleanup_free_ uint8_t *b = make_sif(&len);
	static const struct {
		uint32_t fstype;
		const char *needle;
	} cases[] = {
	    {FERRY_SIF_FS_EXT3, "ext3"},
	    {FERRY_SIF_FS_ENCRYPTED_SQUASH, "encrypted"},
	    {FERRY_SIF_FS_RAW, "filesystem type Raw (4)"},
	    {99, "filesystem type unknown (99)"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		put32(b + 4096 + 201, cases[i].fstype);
		struct ferry_sif *s = NULL;
		assert_null(read_sif_bytes(b, len, &s));
		const struct ferry_sif_descriptor *p = NULL;
		struct ferry_error *err = NULL;
		assert_true(ferry_sif_primary_squashfs(s, &p, &err) < 0);
		assert_non_null(strstr(err->message, cases[i].needle));
		ferry_error_free(err);
		ferry_sif_free(s);
	}
	/* A system partition that is not primary is no primary. */
	put32(b + 4096 + 201, FERRY_SIF_FS_SQUASH);
	put32(b + 4096 + 205, FERRY_SIF_PART_SYSTEM);
	struct ferry_sif *s = NULL;
	assert_null(read_sif_bytes(b, len, &s));
	assert_null(s->primary);
	ferry_sif_free(s);
}

static void test_strings_unterminated(void **state)
{
	size_t len;
	_cleanup_free_ uint8_t *b = make_sif(&len);
	memset(b, 'L', 32); /* launch script fills its field */
	memset(b + 4096 + 73, 'n', 128); /* so does the name */
	memset(b + 4096 + 209, '9', 3); /* and the arch */
	struct ferry_sif *s = NULL;
	assert_null(read_sif_bytes(b, len, &s));
	assert_int_equal(strlen(s->launch), 32);
	assert_int_equal(strlen(s->descriptors[0].name), 128);
	assert_string_equal(s->descriptors[0].arch, "999");
	assert_string_equal(ferry_sif_arch_name(s->descriptors[0].arch), "unknown");
	ferry_sif_free(s);
}

static void test_parse_buffer(void **state)
{
	size_t len;
	_cleanup_free_ uint8_t *b = make_sif(&len);
	struct ferry_sif *s = NULL;
	struct ferry_error *err = NULL;
	/* Header and descriptors are enough when the file size is given. */
	assert_int_equal(ferry_sif_parse(b, 4096 + 48 * 585, len, &s, &err), 0);
	assert_int_equal(s->n_descriptors, 1);
	ferry_sif_free(s);
	s = NULL;
	assert_true(ferry_sif_parse(b, 4096 + 48 * 585 - 1, len, &s, &err) < 0);
	assert_non_null(strstr(err->message, "truncated"));
	ferry_error_free(err);
	err = NULL;
	assert_true(ferry_sif_parse(b, len, len - 1, &s, &err) < 0);
	ferry_error_free(err);
	err = NULL;
	assert_true(ferry_sif_parse(b, 100, 100, &s, &err) < 0);
	assert_non_null(strstr(err->message, "too short"));
	ferry_error_free(err);
}

static void test_names(void **state)
{
	assert_string_equal(ferry_sif_datatype_name(0x4001), "Def.FILE");
	assert_string_equal(ferry_sif_datatype_name(0x4004), "FS");
	assert_string_equal(ferry_sif_datatype_name(0x4005), "Signature");
	assert_string_equal(ferry_sif_datatype_name(0x400b), "OCI.Blob");
	assert_string_equal(ferry_sif_datatype_name(0x4000), "unknown");
	assert_string_equal(ferry_sif_fstype_name(1), "Squashfs");
	assert_string_equal(ferry_sif_fstype_name(5), "Encrypted squashfs");
	assert_string_equal(ferry_sif_fstype_name(0), "unknown");
	assert_string_equal(ferry_sif_parttype_name(2), "*System");
	assert_string_equal(ferry_sif_parttype_name(4), "Overlay");
	assert_string_equal(ferry_sif_parttype_name(-1), "unknown");
	assert_string_equal(ferry_sif_arch_name("01"), "386");
	assert_string_equal(ferry_sif_arch_name("02"), "amd64");
	assert_string_equal(ferry_sif_arch_name("04"), "arm64");
	assert_string_equal(ferry_sif_arch_name("11"), "s390x");
	assert_string_equal(ferry_sif_arch_name("00"), "unknown");
	assert_string_equal(ferry_sif_arch_name(""), "unknown");
#if defined(__x86_64__)
	assert_string_equal(ferry_sif_host_arch(), "02");
#elif defined(__aarch64__)
	assert_string_equal(ferry_sif_host_arch(), "04");
#endif
	char u[37];
	ferry_sif_format_uuid(fixed_id, u);
	assert_string_equal(u, "b2659d4e-bd50-4ea5-bd17-eec5e54f918e");
}

static void test_write_checks_inputs(void **state)
{
	_cleanup_free_ uint8_t *sq = make_squashfs(SQ_SIZE);
	struct ferry_error *err = NULL;

	/* Not a squashfs. */
	int bad = memfd_with("hello world", 11);
	int out = memfd_with(NULL, 0);
	assert_true(ferry_sif_write_fd(out, bad, NULL, &err) < 0);
	assert_non_null(strstr(err->message, "squashfs"));
	ferry_error_free(err);
	err = NULL;
	close(bad);

	/* A non-empty destination. */
	int sqfd = memfd_with(sq, SQ_SIZE);
	assert_int_equal(pwrite(out, "x", 1, 0), 1);
	assert_true(ferry_sif_write_fd(out, sqfd, NULL, &err) < 0);
	assert_non_null(strstr(err->message, "empty"));
	ferry_error_free(err);
	err = NULL;
	close(out);

	/* A bad arch code. */
	out = memfd_with(NULL, 0);
	struct ferry_sif_write_opts o = {.arch = "amd64"};
	assert_true(ferry_sif_write_fd(out, sqfd, &o, &err) < 0);
	ferry_error_free(err);
	close(out);
	close(sqfd);
}

static size_t count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	size_t n = 0;
	for (struct dirent *de; (de = readdir(d));)
		if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_create_atomic(void **state)
{
	char dir[] = "/tmp/sif_test.XXXXXX";
	assert_non_null(mkdtemp(dir));
	_cleanup_free_ char *path = xasprintf("%s/img.sif", dir);
	_cleanup_free_ uint8_t *sq = make_squashfs(SQ_SIZE);
	int sqfd = memfd_with(sq, SQ_SIZE);
	struct ferry_error *err = NULL;

	assert_int_equal(ferry_sif_create(path, sqfd, false, NULL, &err), 0);
	assert_int_equal(count_entries(dir), 1);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, SIF_SIZE);
	assert_true(st.st_mode & S_IXUSR);

	/* No silent replacement. */
	assert_int_equal(ferry_sif_create(path, sqfd, false, NULL, &err), -EEXIST);
	assert_non_null(strstr(err->message, "already exists"));
	ferry_error_free(err);
	err = NULL;
	assert_int_equal(count_entries(dir), 1);

	/* Replacement on request. */
	assert_int_equal(ferry_sif_create(path, sqfd, true, NULL, &err), 0);
	assert_int_equal(count_entries(dir), 1);

	/* A failed write leaves nothing behind. */
	_cleanup_free_ char *other = xasprintf("%s/other.sif", dir);
	int bad = memfd_with("not a squashfs", 14);
	assert_true(ferry_sif_create(other, bad, false, NULL, &err) < 0);
	ferry_error_free(err);
	err = NULL;
	assert_int_equal(count_entries(dir), 1);
	close(bad);

	/* Paths that name directories. */
	_cleanup_free_ char *slash = xasprintf("%s/", dir);
	assert_true(ferry_sif_create(slash, sqfd, true, NULL, &err) < 0);
	ferry_error_free(err);
	err = NULL;
	assert_true(ferry_sif_create("/nonexistent-dir/x.sif", sqfd, true, NULL, &err) < 0);
	ferry_error_free(err);

	close(sqfd);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_layout_matches_apptainer),
	    cmocka_unit_test(test_random_ids),
	    cmocka_unit_test(test_truncated_everywhere),
	    cmocka_unit_test(test_bad_magic_and_version),
	    cmocka_unit_test(test_header_counts),
	    cmocka_unit_test(test_descriptor_bounds),
	    cmocka_unit_test(test_descriptor_numbering_in_messages),
	    cmocka_unit_test(test_two_primaries),
	    cmocka_unit_test(test_primary_kinds),
	    cmocka_unit_test(test_strings_unterminated),
	    cmocka_unit_test(test_parse_buffer),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_write_checks_inputs),
	    cmocka_unit_test(test_create_atomic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
