/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target for the image parsers: image probing (squashfs superblock, SIF header and
 * descriptors) on a memfd holding the input, the SIF buffer parser, and the definition-file parser.
 *
 *   clang -std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Isrc/lib \
 *         tests/fuzz/fuzz_image.c src/lib/image.c src/lib/sif.c src/lib/deffile.c src/lib/error.c \
 *         src/lib/util.c -o fuzz_image
 *   ./fuzz_image -max_total_time=30 */
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "deffile.h"
#include "image.h"
#include "sif.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;

static void check_sif(const struct ferry_sif *s, uint64_t file_size)
{
	if (s->n_descriptors > (size_t)s->descriptors_total)
		abort();
	for (size_t i = 0; i < s->n_descriptors; i++) {
		const struct ferry_sif_descriptor *d = &s->descriptors[i];
		/* What the reader accepted lies inside the file. */
		if (d->offset < 0 || d->size < 0 || (uint64_t)d->offset + (uint64_t)d->size > file_size)
			abort();
		(void)ferry_sif_datatype_name(d->datatype);
		(void)ferry_sif_fstype_name(d->fstype);
		(void)ferry_sif_parttype_name(d->parttype);
		(void)ferry_sif_arch_name(d->arch);
	}
	if (s->primary && (s->primary < s->descriptors || s->primary >= s->descriptors + s->n_descriptors))
		abort();
	char u[37];
	ferry_sif_format_uuid(s->id, u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ferry_error *err = NULL;

	/* Probe, through a file as the runtime does. */
	if (memfd < 0)
		memfd = memfd_create("fuzz-image", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, 0) < 0)
		abort();
	if (size && pwrite(memfd, data, size, 0) != (ssize_t)size)
		abort();
	struct ferry_image_info info;
	if (ferry_image_probe_fd(memfd, &info, &err) < 0) {
		if (!err || !err->message)
			abort();
		ferry_error_free(err);
		err = NULL;
	} else {
		if (err || info.kind == FERRY_IMAGE_DIR || info.offset + info.size > size ||
		    info.file_size != size)
			abort();
	}

	/* SIF reader on the fd and on the buffer: they must agree. */
	struct ferry_sif *a = NULL, *b = NULL;
	int ra = ferry_sif_read(memfd, &a, &err);
	ferry_error_free(err);
	err = NULL;
	int rb = ferry_sif_parse(data, size, size, &b, &err);
	ferry_error_free(err);
	err = NULL;
	if ((ra < 0) != (rb < 0))
		abort();
	if (a) {
		check_sif(a, size);
		check_sif(b, size);
		if (a->n_descriptors != b->n_descriptors)
			abort();
		const struct ferry_sif_descriptor *p = NULL;
		if (ferry_sif_primary_squashfs(a, &p, &err) >= 0)
			(void)ferry_squashfs_check_fd(memfd, (uint64_t)p->offset, (uint64_t)p->size, NULL,
						      &err);
		ferry_error_free(err);
		err = NULL;
	}
	ferry_sif_free(a);
	ferry_sif_free(b);

	/* The squashfs superblock at the start. */
	struct ferry_squashfs_info si;
	if (ferry_squashfs_check(data, size, size, &si, &err) >= 0) {
		if (si.bytes_used > size || si.major != 4)
			abort();
	}
	ferry_error_free(err);
	err = NULL;

	/* The definition-file parser. */
	struct ferry_deffile *d = NULL;
	if (ferry_deffile_parse((const char *)data, size, &d, &err) >= 0) {
		if (!d || err || !d->bootstrap || !d->os_version || !d->mirror_url)
			abort();
		for (size_t i = 0; i < d->n_files; i++)
			if (!d->files[i].src || !d->files[i].dst)
				abort();
		ferry_deffile_free(d);
	} else {
		if (!err || d)
			abort();
		ferry_error_free(err);
	}
	return 0;
}
