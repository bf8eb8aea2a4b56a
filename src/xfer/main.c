/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ferry-xfer — the files of a transfer as a zstd-compressed tar (libarchive), written and read
 * without privileges.
 *
 * The setuid starter runs it after dropping to the user for good (no capabilities,
 * no_new_privs), so that libarchive and zstd never run, nor are loaded, with root at hand:
 *     ferry-xfer send            fd 3: the files, handed over one a message (xfer.h),
 *                                fd 4: the files channel of the session
 *     ferry-xfer receive SECS    fd 3: the directory to write into, fd 4: the files channel;
 *                                the sender's manifest (not verified here) to stdout
 * An error is one line on stderr and exit status 1. */
#include <sys/stat.h>

#include "dumpable.h"
#include "fs.h"
#include "util.h"
#include "xfer.h"

static int fail(struct ferry_error *err)
{
	fprintf(stderr, "%s\n", err && err->message ? err->message : "failed");
	ferry_error_free(err);
	return 1;
}

int main(int argc, char **argv)
{
	struct ferry_error *err = NULL;
	struct stat st;
	if (argc < 2 || fstat(3, &st) < 0 || fstat(4, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "ferry-xfer is run by ferry-starter, not directly\n");
		return 2;
	}
	/* a receiving one holds the directory whose files root then seals: a process its caller could
	 * trace would let them swap a file between root's look and the seal */
	if (ferry_refuse_dumpable("ferry-xfer", &err) < 0)
		return fail(err);
	if (streq(argv[1], "send") && argc == 2) {
		if (ferry_xfer_send_passed(4, 3, &err) < 0)
			return fail(err);
		return 0;
	}
	unsigned long long secs = 0;
	if (!streq(argv[1], "receive") || argc != 3 || parse_uint64(argv[2], 86400, &secs) < 0) {
		fprintf(stderr, "usage: ferry-xfer send | receive SECONDS\n");
		return 2;
	}
	_cleanup_free_ char *m = NULL;
	size_t len = 0;
	if (ferry_xfer_receive(4, 3, (unsigned)secs, &m, &len, &err) < 0)
		return fail(err);
	if (ferry_write_all(1, m, len) < 0) {
		fprintf(stderr, "hand over the manifest: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
