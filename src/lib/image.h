/* SPDX-License-Identifier: GPL-2.0-or-later */
/* image.h — what an image is: a sandbox directory, a squashfs file, or a SIF file. */
#ifndef FERRY_IMAGE_H
#define FERRY_IMAGE_H

#include <stdint.h>

#include "error.h"

enum ferry_image_kind {
	FERRY_IMAGE_DIR = 1,
	FERRY_IMAGE_SQUASHFS = 2,
	FERRY_IMAGE_SIF = 3,
};

struct ferry_image_info {
	enum ferry_image_kind kind;
	uint64_t offset; /* of the squashfs filesystem inside the file (0 for plain squashfs) */
	uint64_t size; /* of the squashfs filesystem in bytes (0 for a directory) */
	uint64_t file_size;
};

/* Probes an open image: @fd is a directory fd or a regular file opened O_RDONLY. Checks the
 * squashfs superblock (magic, version 4, bytes_used within the file) and, for SIF, the header
 * and descriptors, finding the primary system squashfs partition. Truncated or corrupt images
 * fail with a message that names what is wrong; never reads out of bounds. */
int ferry_image_probe_fd(int fd, struct ferry_image_info *ret, struct ferry_error **err);
const char *ferry_image_kind_name(enum ferry_image_kind kind);

#endif
