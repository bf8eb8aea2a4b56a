/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target for the checkpoint stream a receiving starter reads from the network
 * (src/lib/xfer.c): arbitrary bytes must end in a clean error or a manifest, never a crash,
 * and never a file outside the target directory. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>

#include "fs.h"
#include "xfer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void empty_dir(int dirfd)
{
	DIR *d = fdopendir(dup(dirfd));
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd, de->d_name, 0);
	if (d)
		closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int dirfd = -1;
	if (dirfd < 0) {
		char tmpl[] = "/tmp/fuzz_xfer.XXXXXX";
		if (!mkdtemp(tmpl))
			abort();
		dirfd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	int fd = memfd_create("stream", MFD_CLOEXEC);
	if (fd < 0 || ferry_write_all(fd, data, size) < 0 || lseek(fd, 0, SEEK_SET) < 0)
		abort();
	char *m = NULL;
	size_t len = 0;
	struct ferry_error *err = NULL;
	int r = ferry_xfer_receive(fd, dirfd, 1, &m, &len, &err);
	if (r < 0 && (!err || m))
		abort();
	if (r == 0 && (!m || err))
		abort();
	free(m);
	ferry_error_free(err);
	close(fd);
	empty_dir(dirfd);
	return 0;
}
