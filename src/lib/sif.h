/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sif.h — the Singularity Image Format (SIF v1, as github.com/apptainer/sif pkg/sif writes it) and the
 * squashfs superblock that a SIF's primary partition holds.
 *
 * On disk, little endian, no padding between fields (Go's encoding/binary):
 *
 *   global header, 128 bytes at offset 0
 *     0  launch[32]   "#!/usr/bin/env run-singularity\n", NUL padded
 *    32  magic[10]    "SIF_MAGIC\0"
 *    42  version[3]   "01\0"
 *    45  arch[3]      "02\0" (amd64), see ferry_sif_arch_name()
 *    48  id[16]       UUID
 *    64  ctime, mtime, descriptors_free, descriptors_total, descriptors_offset, descriptors_size,
 *        data_offset, data_size: eight int64
 *
 *   descriptors_total descriptors of 585 bytes at descriptors_offset (4096 when Apptainer writes)
 *     0  datatype int32 (0x4004 = partition)   4  used (1 byte)   5  id uint32   9  groupid uint32
 *    13  link uint32   17  offset int64   25  size int64   33  size_with_padding int64
 *    41  ctime int64   49  mtime int64   57  uid int64   65  gid int64 (both deprecated, 0)
 *    73  name[128]   201  extra[384]; for a partition extra = fstype int32, parttype int32, arch[3]
 *
 *   data objects from data_offset (4096 + 48 * 585 = 32176), partitions aligned to 4096. */
#ifndef FERRY_SIF_H
#define FERRY_SIF_H

#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#define FERRY_SIF_HEADER_SIZE 128
#define FERRY_SIF_DESCRIPTOR_SIZE 585
#define FERRY_SIF_LAUNCH_LEN 32
#define FERRY_SIF_NAME_LEN 128
#define FERRY_SIF_EXTRA_LEN 384
#define FERRY_SIF_LAUNCH_SCRIPT "#!/usr/bin/env run-singularity\n"
#define FERRY_SIF_MAGIC "SIF_MAGIC" /* stored with its NUL: 10 bytes */
#define FERRY_SIF_VERSION "01"
#define FERRY_SIF_DESCRIPTORS_OFFSET 4096
#define FERRY_SIF_DESCRIPTORS_DEFAULT 48
#define FERRY_SIF_DESCRIPTORS_MAX 4096 /* the reader refuses more (bounds the allocation) */
#define FERRY_SIF_ALIGN 4096
#define FERRY_SIF_GROUP_MASK 0xf0000000u
#define FERRY_SIF_DEFAULT_GROUP (FERRY_SIF_GROUP_MASK | 1u)

enum ferry_sif_datatype {
	FERRY_SIF_DATA_DEFFILE = 0x4001,
	FERRY_SIF_DATA_ENVVAR = 0x4002,
	FERRY_SIF_DATA_LABELS = 0x4003,
	FERRY_SIF_DATA_PARTITION = 0x4004,
	FERRY_SIF_DATA_SIGNATURE = 0x4005,
	FERRY_SIF_DATA_GENERIC_JSON = 0x4006,
	FERRY_SIF_DATA_GENERIC = 0x4007,
	FERRY_SIF_DATA_CRYPTO_MESSAGE = 0x4008,
	FERRY_SIF_DATA_SBOM = 0x4009,
	FERRY_SIF_DATA_OCI_ROOT_INDEX = 0x400a,
	FERRY_SIF_DATA_OCI_BLOB = 0x400b,
};

enum ferry_sif_fstype {
	FERRY_SIF_FS_SQUASH = 1,
	FERRY_SIF_FS_EXT3 = 2,
	FERRY_SIF_FS_IMMUOBJ = 3,
	FERRY_SIF_FS_RAW = 4,
	FERRY_SIF_FS_ENCRYPTED_SQUASH = 5,
};

enum ferry_sif_parttype {
	FERRY_SIF_PART_SYSTEM = 1,
	FERRY_SIF_PART_PRIMSYS = 2,
	FERRY_SIF_PART_DATA = 3,
	FERRY_SIF_PART_OVERLAY = 4,
};

/* One used descriptor, decoded. Strings are NUL-terminated copies of the on-disk bytes (up to the first
 * NUL); they can hold any other byte, so escape them before printing. */
struct ferry_sif_descriptor {
	unsigned index; /* position in the descriptor table, from 0 */
	int32_t datatype;
	uint32_t id;
	uint32_t group_id; /* as stored, with FERRY_SIF_GROUP_MASK */
	uint32_t link;
	int64_t offset;
	int64_t size;
	int64_t size_with_padding;
	int64_t ctime;
	int64_t mtime;
	char name[FERRY_SIF_NAME_LEN + 1];
	/* Partitions only (datatype FERRY_SIF_DATA_PARTITION), else 0 / "": */
	int32_t fstype;
	int32_t parttype;
	char arch[4]; /* SIF arch code, e.g. "02" */
};

struct ferry_sif {
	char launch[FERRY_SIF_LAUNCH_LEN + 1];
	char version[4];
	char arch[4];
	uint8_t id[16];
	int64_t ctime;
	int64_t mtime;
	int64_t descriptors_free;
	int64_t descriptors_total;
	int64_t descriptors_offset;
	int64_t descriptors_size;
	int64_t data_offset;
	int64_t data_size;
	uint64_t file_size;
	struct ferry_sif_descriptor *descriptors; /* the used ones, in table order */
	size_t n_descriptors;
	const struct ferry_sif_descriptor *primary; /* primary system partition, or NULL */
};

/* Reads and checks the header and every descriptor of the SIF file open at @fd (a regular file), with
 * pread only. Every used descriptor must lie inside the file (offsets and sizes are overflow-checked);
 * at most one primary system partition may exist. Errors say what is wrong ("SIF descriptor 2 points
 * beyond the end of the file (truncated download?)"); the caller adds the path. */
int ferry_sif_read(int fd, struct ferry_sif **ret, struct ferry_error **err);
/* Same, on a buffer (the header and descriptors only need to be in it; @file_size is the whole file's). */
int ferry_sif_parse(const void *buf, size_t len, uint64_t file_size, struct ferry_sif **ret,
		    struct ferry_error **err);
void ferry_sif_free(struct ferry_sif *sif);
static inline void ferry_sif_freep(struct ferry_sif **sif)
{
	ferry_sif_free(*sif);
}
/* The primary system partition, checked to be plain squashfs; fails naming why not (none, ext3,
 * encrypted, ...). */
int ferry_sif_primary_squashfs(const struct ferry_sif *sif, const struct ferry_sif_descriptor **ret,
			       struct ferry_error **err);

/* Names for display ("FS", "Squashfs", "*System", "amd64"); never NULL, "unknown" for other values. */
const char *ferry_sif_datatype_name(int32_t datatype);
const char *ferry_sif_fstype_name(int32_t fstype);
const char *ferry_sif_parttype_name(int32_t parttype);
const char *ferry_sif_arch_name(const char *code);
/* The SIF arch code of the machine ferry was built for ("02" on x86_64), "00" when SIF has none. */
const char *ferry_sif_host_arch(void);
/* Formats @id as "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into @buf (37 bytes). */
void ferry_sif_format_uuid(const uint8_t id[16], char buf[37]);

struct ferry_sif_write_opts {
	const uint8_t *id; /* 16 bytes; NULL: a random (version 4) UUID from /dev/urandom */
	bool fixed_time; /* use @time for the image and object times instead of now */
	int64_t time;
	const char *arch; /* SIF arch code ("02"); NULL: ferry_sif_host_arch() */
};

/* Writes a SIF image into @out_fd (an empty regular file open for writing) whose only data object is the
 * whole content of @squashfs_fd (a squashfs file, checked first), as the primary system partition: one
 * partition descriptor (id 1, group 1, fstype squashfs, parttype primary system) in a table of 48, the
 * data at offset 32768, like Apptainer's `apptainer build`. */
int ferry_sif_write_fd(int out_fd, int squashfs_fd, const struct ferry_sif_write_opts *opts,
		       struct ferry_error **err);
/* Creates the SIF at @path atomically: writes a temporary file in the same directory, fsyncs it and
 * renames it over @path; on failure nothing is left behind. An existing @path is an error (EEXIST)
 * unless @replace. The file gets mode 0755 less the umask, as Apptainer's. */
int ferry_sif_create(const char *path, int squashfs_fd, bool replace, const struct ferry_sif_write_opts *opts,
		     struct ferry_error **err);

/* The squashfs 4.0 superblock (96 bytes, little endian). */
#define FERRY_SQUASHFS_MAGIC 0x73717368u /* "hsqs" */
#define FERRY_SQUASHFS_SUPER_SIZE 96

struct ferry_squashfs_info {
	uint32_t inodes;
	uint32_t mkfs_time;
	uint32_t block_size;
	uint32_t fragments;
	uint16_t compression;
	uint16_t block_log;
	uint16_t flags;
	uint16_t no_ids;
	uint16_t major;
	uint16_t minor;
	uint64_t bytes_used;
};

/* Checks the squashfs superblock found at @offset of @fd, in a region of @avail bytes: magic, version 4,
 * a block size that is a power of two in 4 KiB..1 MiB matching block_log, a known compressor,
 * bytes_used within @avail and the tables inside bytes_used. @ret may be NULL. */
int ferry_squashfs_check_fd(int fd, uint64_t offset, uint64_t avail, struct ferry_squashfs_info *ret,
			    struct ferry_error **err);
/* Same on the superblock bytes in @buf (at least 96 bytes). */
int ferry_squashfs_check(const void *buf, size_t len, uint64_t avail, struct ferry_squashfs_info *ret,
			 struct ferry_error **err);
const char *ferry_squashfs_compression_name(uint16_t id);

/* pread until @len bytes or the end of the file: the count read, or -errno (the image readers'
 * own: the setuid starter reads no image). */
ssize_t ferry_pread_full(int fd, void *buf, size_t len, uint64_t off);

#endif
