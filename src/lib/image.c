/* SPDX-License-Identifier: GPL-2.0-or-later */
/* image.c — tells a sandbox directory, a squashfs file and a SIF file apart, and checks them. */
#include <inttypes.h>
#include <sys/stat.h>

#include "fs.h"
#include "image.h"
#include "sif.h"

#define NOT_AN_IMAGE "not a ferry image (expected a directory, a squashfs or a SIF file)"

const char *ferry_image_kind_name(enum ferry_image_kind kind)
{
	switch (kind) {
	case FERRY_IMAGE_DIR:
		return "directory";
	case FERRY_IMAGE_SQUASHFS:
		return "squashfs";
	case FERRY_IMAGE_SIF:
		return "SIF";
	}
	return "unknown";
}

/* Names a few things people pass by mistake, so the message can say what to do instead. */
static const char *guess_other(const uint8_t *h, size_t n)
{
	if (n >= 2 && h[0] == 0x1f && h[1] == 0x8b)
		return "it looks like a gzip archive; unpack it and use 'ferry build' on the directory";
	if (n >= 263 && memcmp(h + 257, "ustar", 5) == 0)
		return "it looks like a tar archive; unpack it and use 'ferry build' on the directory";
	if (n >= 4 && memcmp(h,
			     "\x7f"
			     "ELF",
			     4) == 0)
		return "it is an executable program";
	if (n >= 1082 && h[1080] == 0x53 && h[1081] == 0xef)
		return "it looks like an ext2/3/4 filesystem image, which ferry does not run";
	if (n >= 10 &&
	    (startswith((const char *)h, "Bootstrap:") || startswith((const char *)h, "bootstrap:")))
		return "it looks like a definition file; build it with 'ferry build IMAGE.sif DEFFILE'";
	return NULL;
}

/* The start of a SIF cut before the end of its magic: the launch script, or part of the magic. */
static bool looks_like_truncated_sif(const uint8_t *h, size_t n)
{
	static const char launch[] = FERRY_SIF_LAUNCH_SCRIPT;
	if (n >= FERRY_SIF_HEADER_SIZE)
		return false;
	if (n > 32) {
		size_t m = n - 32 < sizeof(FERRY_SIF_MAGIC) ? n - 32 : sizeof(FERRY_SIF_MAGIC);
		return memcmp(h + 32, FERRY_SIF_MAGIC, m) == 0;
	}
	size_t m = n < sizeof(launch) - 1 ? n : sizeof(launch) - 1;
	return n >= 16 && memcmp(h, launch, m) == 0;
}

static int probe_sif(int fd, uint64_t file_size, struct ferry_image_info *info, struct ferry_error **err)
{
	_cleanup_(ferry_sif_freep) struct ferry_sif *sif = NULL;
	int r = ferry_sif_read(fd, &sif, err);
	if (r < 0)
		return r;
	const struct ferry_sif_descriptor *p = NULL;
	r = ferry_sif_primary_squashfs(sif, &p, err);
	if (r < 0)
		return r;
	const char *host = ferry_sif_host_arch();
	if (p->arch[0] && !streq(p->arch, "00") && !streq(host, "00") && !streq(p->arch, host))
		return ferry_error_msg(err, ENOEXEC, "the image is built for '%s', this machine is '%s'",
				       ferry_sif_arch_name(p->arch), ferry_sif_arch_name(host));
	r = ferry_squashfs_check_fd(fd, (uint64_t)p->offset, (uint64_t)p->size, NULL, err);
	if (r < 0)
		return ferry_error_wrap(err, "SIF primary partition (descriptor %u)", p->index + 1);
	info->kind = FERRY_IMAGE_SIF;
	info->offset = (uint64_t)p->offset;
	info->size = (uint64_t)p->size;
	info->file_size = file_size;
	return 0;
}

int ferry_image_probe_fd(int fd, struct ferry_image_info *ret, struct ferry_error **err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return ferry_error_set(err, errno, "stat");

	struct ferry_image_info info = {0};
	if (S_ISDIR(st.st_mode)) {
		info.kind = FERRY_IMAGE_DIR;
		*ret = info;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return ferry_error_msg(err, EINVAL, "%s: not a regular file", NOT_AN_IMAGE);

	uint64_t file_size = (uint64_t)st.st_size;
	if (file_size == 0)
		return ferry_error_msg(err, EINVAL, "%s: the file is empty", NOT_AN_IMAGE);

	uint8_t head[1088] = {0};
	ssize_t n = ferry_pread_full(fd, head, sizeof(head), 0);
	if (n < 0)
		return ferry_error_set(err, (int)-n, "read");
	size_t len = (size_t)n;

	if (len >= 4 && memcmp(head, "hsqs", 4) == 0) {
		int r = ferry_squashfs_check(head, len, file_size, NULL, err);
		if (r < 0)
			return r;
		info.kind = FERRY_IMAGE_SQUASHFS;
		info.offset = 0;
		info.size = file_size;
		info.file_size = file_size;
		*ret = info;
		return 0;
	}
	if (len >= 42 && memcmp(head + 32, FERRY_SIF_MAGIC, sizeof(FERRY_SIF_MAGIC)) == 0) {
		int r = probe_sif(fd, file_size, &info, err);
		if (r < 0)
			return r;
		*ret = info;
		return 0;
	}
	if (looks_like_truncated_sif(head, len))
		return ferry_error_msg(err, EINVAL,
				       "too short for a SIF header (%zu bytes; truncated download?)", len);

	const char *hint = guess_other(head, len);
	if (hint)
		return ferry_error_msg(err, EINVAL, "%s: %s", NOT_AN_IMAGE, hint);
	return ferry_error_msg(err, EINVAL, "%s", NOT_AN_IMAGE);
}
