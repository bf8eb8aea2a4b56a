/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sif.c — SIF v1 reader, squashfs superblock checks. Layout and constants: sif.h, sif_layout.h;
 * the writer (for ferry build, never linked into the starter) is sif_write.c. */
#include <endian.h>
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

ssize_t ferry_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		if (off + done > (uint64_t)INT64_MAX)
			return -EOVERFLOW;
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static int64_t gets64(const uint8_t *p)
{
	return (int64_t)ferry_get_le64(p);
}

/* Copies a fixed-size on-disk string up to its first NUL. */
static void copy_str(char *dst, const uint8_t *src, size_t n)
{
	size_t i = 0;
	while (i < n && src[i])
		i++;
	memcpy(dst, src, i);
	dst[i] = '\0';
}

/* ---- squashfs superblock ---- */

const char *ferry_squashfs_compression_name(uint16_t id)
{
	static const char *const names[] = {NULL, "gzip", "lzma", "lzo", "xz", "lz4", "zstd"};
	if (id < ARRAY_SIZE(names) && names[id])
		return names[id];
	return "unknown";
}

int ferry_squashfs_check(const void *buf, size_t len, uint64_t avail, struct ferry_squashfs_info *ret,
			 struct ferry_error **err)
{
	const uint8_t *p = buf;
	if (len < FERRY_SQUASHFS_SUPER_SIZE || avail < FERRY_SQUASHFS_SUPER_SIZE)
		return ferry_error_msg(err, EINVAL,
				       "too short for a squashfs superblock (%" PRIu64
				       " bytes; truncated download?)",
				       avail < len ? avail : (uint64_t)len);
	if (ferry_get_le32(p) != FERRY_SQUASHFS_MAGIC)
		return ferry_error_msg(err, EINVAL, "no squashfs superblock (bad magic)");

	struct ferry_squashfs_info si = {
	    .inodes = ferry_get_le32(p + 4),
	    .mkfs_time = ferry_get_le32(p + 8),
	    .block_size = ferry_get_le32(p + 12),
	    .fragments = ferry_get_le32(p + 16),
	    .compression = ferry_get_le16(p + 20),
	    .block_log = ferry_get_le16(p + 22),
	    .flags = ferry_get_le16(p + 24),
	    .no_ids = ferry_get_le16(p + 26),
	    .major = ferry_get_le16(p + 28),
	    .minor = ferry_get_le16(p + 30),
	    .bytes_used = ferry_get_le64(p + 40),
	};
	uint64_t id_table = ferry_get_le64(p + 48), inode_table = ferry_get_le64(p + 64),
		 dir_table = ferry_get_le64(p + 72);

	if (si.major != 4 || si.minor != 0)
		return ferry_error_msg(err, EINVAL, "squashfs version %u.%u is not supported (need 4.0)",
				       si.major, si.minor);
	if (si.block_size < 4096 || si.block_size > (1u << 20) || (si.block_size & (si.block_size - 1)))
		return ferry_error_msg(err, EINVAL, "corrupt squashfs superblock: block size %" PRIu32,
				       si.block_size);
	if (si.block_log >= 32 || (1u << si.block_log) != si.block_size)
		return ferry_error_msg(
		    err, EINVAL,
		    "corrupt squashfs superblock: block_log %u does not match block size %" PRIu32,
		    si.block_log, si.block_size);
	if (si.compression < 1 || si.compression > 6)
		return ferry_error_msg(err, EINVAL, "unknown squashfs compression %u", si.compression);
	if (si.inodes == 0)
		return ferry_error_msg(err, EINVAL, "corrupt squashfs superblock: no inodes");
	if (si.bytes_used < FERRY_SQUASHFS_SUPER_SIZE)
		return ferry_error_msg(err, EINVAL, "corrupt squashfs superblock: bytes_used %" PRIu64,
				       si.bytes_used);
	if (si.bytes_used > avail)
		return ferry_error_msg(err, EINVAL,
				       "squashfs claims %" PRIu64 " bytes but only %" PRIu64
				       " are there (truncated download?)",
				       si.bytes_used, avail);
	if (inode_table >= si.bytes_used || dir_table >= si.bytes_used || id_table >= si.bytes_used)
		return ferry_error_msg(err, EINVAL,
				       "corrupt squashfs superblock: table offset beyond the filesystem");
	if (ret)
		*ret = si;
	return 0;
}

int ferry_squashfs_check_fd(int fd, uint64_t offset, uint64_t avail, struct ferry_squashfs_info *ret,
			    struct ferry_error **err)
{
	uint8_t sb[FERRY_SQUASHFS_SUPER_SIZE];
	size_t want = avail < sizeof(sb) ? (size_t)avail : sizeof(sb);
	ssize_t n = ferry_pread_full(fd, sb, want, offset);
	if (n < 0)
		return ferry_error_set(err, (int)-n, "read squashfs superblock");
	return ferry_squashfs_check(sb, (size_t)n, avail, ret, err);
}

/* ---- names ---- */

const char *ferry_sif_datatype_name(int32_t datatype)
{
	switch (datatype) {
	case FERRY_SIF_DATA_DEFFILE:
		return "Def.FILE";
	case FERRY_SIF_DATA_ENVVAR:
		return "Env.Vars";
	case FERRY_SIF_DATA_LABELS:
		return "JSON.Labels";
	case FERRY_SIF_DATA_PARTITION:
		return "FS";
	case FERRY_SIF_DATA_SIGNATURE:
		return "Signature";
	case FERRY_SIF_DATA_GENERIC_JSON:
		return "JSON.Generic";
	case FERRY_SIF_DATA_GENERIC:
		return "Generic/Raw";
	case FERRY_SIF_DATA_CRYPTO_MESSAGE:
		return "Cryptographic Message";
	case FERRY_SIF_DATA_SBOM:
		return "SBOM";
	case FERRY_SIF_DATA_OCI_ROOT_INDEX:
		return "OCI.RootIndex";
	case FERRY_SIF_DATA_OCI_BLOB:
		return "OCI.Blob";
	}
	return "unknown";
}

const char *ferry_sif_fstype_name(int32_t fstype)
{
	switch (fstype) {
	case FERRY_SIF_FS_SQUASH:
		return "Squashfs";
	case FERRY_SIF_FS_EXT3:
		return "Ext3";
	case FERRY_SIF_FS_IMMUOBJ:
		return "Archive";
	case FERRY_SIF_FS_RAW:
		return "Raw";
	case FERRY_SIF_FS_ENCRYPTED_SQUASH:
		return "Encrypted squashfs";
	}
	return "unknown";
}

const char *ferry_sif_parttype_name(int32_t parttype)
{
	switch (parttype) {
	case FERRY_SIF_PART_SYSTEM:
		return "System";
	case FERRY_SIF_PART_PRIMSYS:
		return "*System";
	case FERRY_SIF_PART_DATA:
		return "Data";
	case FERRY_SIF_PART_OVERLAY:
		return "Overlay";
	}
	return "unknown";
}

static const struct {
	const char *code;
	const char *name;
} arches[] = {
    {"01", "386"},    {"02", "amd64"},	  {"03", "arm"},   {"04", "arm64"},
    {"05", "ppc64"},  {"06", "ppc64le"},  {"07", "mips"},  {"08", "mipsle"},
    {"09", "mips64"}, {"10", "mips64le"}, {"11", "s390x"}, {"12", "riscv64"},
};

const char *ferry_sif_arch_name(const char *code)
{
	for (size_t i = 0; i < ARRAY_SIZE(arches); i++)
		if (streq(code, arches[i].code))
			return arches[i].name;
	return "unknown";
}

const char *ferry_sif_host_arch(void)
{
#if defined(__x86_64__)
	return "02";
#elif defined(__i386__)
	return "01";
#elif defined(__aarch64__)
	return "04";
#elif defined(__arm__)
	return "03";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return "06";
#elif defined(__powerpc64__)
	return "05";
#elif defined(__s390x__)
	return "11";
#elif defined(__riscv) && __riscv_xlen == 64
	return "12";
#elif defined(__mips64) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return "10";
#elif defined(__mips64)
	return "09";
#elif defined(__mips__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return "08";
#elif defined(__mips__)
	return "07";
#else
	return "00";
#endif
}

void ferry_sif_format_uuid(const uint8_t id[16], char buf[37])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			buf[o++] = '-';
		buf[o++] = hex[id[i] >> 4];
		buf[o++] = hex[id[i] & 0xf];
	}
	buf[o] = '\0';
}

/* ---- reader ---- */

void ferry_sif_free(struct ferry_sif *sif)
{
	if (!sif)
		return;
	free(sif->descriptors);
	free(sif);
}

/* Decodes and checks the header; sets ret_table_off/len to the descriptor table to read. */
static int parse_header(const uint8_t *h, uint64_t file_size, struct ferry_sif *s, uint64_t *ret_table_off,
			size_t *ret_table_len, struct ferry_error **err)
{
	if (memcmp(h + H_MAGIC, FERRY_SIF_MAGIC, sizeof(FERRY_SIF_MAGIC)) != 0)
		return ferry_error_msg(err, EINVAL, "not a SIF file (bad magic)");
	copy_str(s->version, h + H_VERSION, 3);
	if (memcmp(h + H_VERSION, FERRY_SIF_VERSION, 3) != 0) {
		_cleanup_free_ char *shown = ferry_shown(s->version, 16);
		return ferry_error_msg(err, EINVAL, "unsupported SIF version '%s' (ferry reads version %s)",
				       shown, FERRY_SIF_VERSION);
	}
	copy_str(s->launch, h + H_LAUNCH, FERRY_SIF_LAUNCH_LEN);
	copy_str(s->arch, h + H_ARCH, 3);
	memcpy(s->id, h + H_ID, 16);
	s->ctime = gets64(h + H_CTIME);
	s->mtime = gets64(h + H_MTIME);
	s->descriptors_free = gets64(h + H_DFREE);
	s->descriptors_total = gets64(h + H_DTOTAL);
	s->descriptors_offset = gets64(h + H_DOFF);
	s->descriptors_size = gets64(h + H_DSIZE);
	s->data_offset = gets64(h + H_DATAOFF);
	s->data_size = gets64(h + H_DATASIZE);
	s->file_size = file_size;

	if (s->descriptors_total < 0 || s->descriptors_total > FERRY_SIF_DESCRIPTORS_MAX)
		return ferry_error_msg(err, EINVAL,
				       "corrupt SIF header: %" PRId64 " descriptors (ferry reads at most %d)",
				       s->descriptors_total, FERRY_SIF_DESCRIPTORS_MAX);
	/* Bounded above, so this cannot overflow. */
	uint64_t table_len = (uint64_t)s->descriptors_total * FERRY_SIF_DESCRIPTOR_SIZE;
	if (s->descriptors_offset < 0 || s->descriptors_size < 0 || (uint64_t)s->descriptors_size < table_len)
		return ferry_error_msg(err, EINVAL,
				       "corrupt SIF header: descriptor table at %" PRId64 " of %" PRId64
				       " bytes cannot hold %" PRId64 " descriptors",
				       s->descriptors_offset, s->descriptors_size, s->descriptors_total);
	if ((uint64_t)s->descriptors_offset > file_size ||
	    table_len > file_size - (uint64_t)s->descriptors_offset)
		return ferry_error_msg(
		    err, EINVAL,
		    "SIF descriptor table points beyond the end of the file (truncated download?)");
	*ret_table_off = (uint64_t)s->descriptors_offset;
	*ret_table_len = (size_t)table_len;
	return 0;
}

static int parse_descriptors(const uint8_t *table, struct ferry_sif *s, struct ferry_error **err)
{
	size_t total = (size_t)s->descriptors_total;
	size_t used = 0;
	for (size_t i = 0; i < total; i++)
		if (table[i * FERRY_SIF_DESCRIPTOR_SIZE + D_USED])
			used++;
	s->descriptors = used ? xzalloc(used * sizeof(*s->descriptors)) : NULL;
	s->n_descriptors = 0;

	for (size_t i = 0; i < total; i++) {
		const uint8_t *d = table + i * FERRY_SIF_DESCRIPTOR_SIZE;
		if (!d[D_USED])
			continue;
		struct ferry_sif_descriptor *o = &s->descriptors[s->n_descriptors++];
		o->index = (unsigned)i;
		o->datatype = (int32_t)ferry_get_le32(d + D_DATATYPE);
		o->id = ferry_get_le32(d + D_ID);
		o->group_id = ferry_get_le32(d + D_GROUP);
		o->link = ferry_get_le32(d + D_LINK);
		o->offset = gets64(d + D_OFFSET);
		o->size = gets64(d + D_SIZE);
		o->size_with_padding = gets64(d + D_PADDED);
		o->ctime = gets64(d + D_CTIME);
		o->mtime = gets64(d + D_MTIME);
		copy_str(o->name, d + D_NAME, FERRY_SIF_NAME_LEN);
		if (o->datatype == FERRY_SIF_DATA_PARTITION) {
			o->fstype = (int32_t)ferry_get_le32(d + D_EXTRA);
			o->parttype = (int32_t)ferry_get_le32(d + D_EXTRA + 4);
			copy_str(o->arch, d + D_EXTRA + 8, 3);
		}

		if (o->offset < 0 || o->size < 0)
			return ferry_error_msg(
			    err, EINVAL, "SIF descriptor %zu has a negative offset or size (corrupt image)",
			    i + 1);
		if ((uint64_t)o->offset > s->file_size ||
		    (uint64_t)o->size > s->file_size - (uint64_t)o->offset)
			return ferry_error_msg(
			    err, EINVAL,
			    "SIF descriptor %zu points beyond the end of the file (truncated download?)",
			    i + 1);
		if (o->datatype == FERRY_SIF_DATA_PARTITION && o->parttype == FERRY_SIF_PART_PRIMSYS) {
			if (s->primary)
				return ferry_error_msg(
				    err, EINVAL,
				    "corrupt SIF: descriptors %u and %zu are both the primary partition",
				    s->primary->index + 1, i + 1);
			s->primary = o;
		}
	}
	return 0;
}

int ferry_sif_parse(const void *buf, size_t len, uint64_t file_size, struct ferry_sif **ret,
		    struct ferry_error **err)
{
	if (len > file_size)
		return ferry_error_msg(err, EINVAL, "SIF buffer larger than the file");
	if (len < FERRY_SIF_HEADER_SIZE)
		return ferry_error_msg(err, EINVAL,
				       "too short for a SIF header (%zu bytes; truncated download?)", len);

	_cleanup_(ferry_sif_freep) struct ferry_sif *s = xzalloc(sizeof(*s));
	uint64_t table_off = 0;
	size_t table_len = 0;
	int r = parse_header(buf, file_size, s, &table_off, &table_len, err);
	if (r < 0)
		return r;
	if (table_off > len || table_len > len - table_off)
		return ferry_error_msg(
		    err, EINVAL,
		    "SIF descriptor table points beyond the end of the file (truncated download?)");
	r = parse_descriptors((const uint8_t *)buf + table_off, s, err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(s);
	return 0;
}

int ferry_sif_read(int fd, struct ferry_sif **ret, struct ferry_error **err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return ferry_error_set(err, errno, "stat");
	if (!S_ISREG(st.st_mode))
		return ferry_error_msg(err, EINVAL, "not a regular file");
	uint64_t file_size = (uint64_t)st.st_size;
	if (file_size < FERRY_SIF_HEADER_SIZE)
		return ferry_error_msg(err, EINVAL,
				       "too short for a SIF header (%" PRIu64 " bytes; truncated download?)",
				       file_size);

	uint8_t h[FERRY_SIF_HEADER_SIZE];
	ssize_t n = ferry_pread_full(fd, h, sizeof(h), 0);
	if (n < 0)
		return ferry_error_set(err, (int)-n, "read SIF header");
	if ((size_t)n < sizeof(h))
		return ferry_error_msg(err, EINVAL,
				       "too short for a SIF header (%zd bytes; truncated download?)", n);

	_cleanup_(ferry_sif_freep) struct ferry_sif *s = xzalloc(sizeof(*s));
	uint64_t table_off = 0;
	size_t table_len = 0;
	int r = parse_header(h, file_size, s, &table_off, &table_len, err);
	if (r < 0)
		return r;
	_cleanup_free_ uint8_t *table = xmalloc(table_len);
	n = ferry_pread_full(fd, table, table_len, table_off);
	if (n < 0)
		return ferry_error_set(err, (int)-n, "read SIF descriptors");
	if ((size_t)n < table_len) /* the file shrank under us */
		return ferry_error_msg(
		    err, EINVAL,
		    "SIF descriptor table points beyond the end of the file (truncated download?)");
	r = parse_descriptors(table, s, err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(s);
	return 0;
}

int ferry_sif_primary_squashfs(const struct ferry_sif *sif, const struct ferry_sif_descriptor **ret,
			       struct ferry_error **err)
{
	const struct ferry_sif_descriptor *p = sif->primary;
	if (!p)
		return ferry_error_msg(err, ENOENT, "SIF has no primary system partition (nothing to run)");
	switch (p->fstype) {
	case FERRY_SIF_FS_SQUASH:
		*ret = p;
		return 0;
	case FERRY_SIF_FS_ENCRYPTED_SQUASH:
		return ferry_error_msg(
		    err, ENOTSUP, "the SIF's primary partition is encrypted, which ferry does not support");
	case FERRY_SIF_FS_EXT3:
		return ferry_error_msg(
		    err, ENOTSUP,
		    "the SIF's primary partition is ext3, which ferry does not support (only squashfs)");
	default:
		return ferry_error_msg(err, ENOTSUP,
				       "the SIF's primary partition has filesystem type %s (%" PRId32
				       "), ferry runs only squashfs",
				       ferry_sif_fstype_name(p->fstype), p->fstype);
	}
}
