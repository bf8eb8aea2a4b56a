/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target for the record layer of a transfer session (src/lib/channel.c), the first
 * parser every network byte after the handshake meets: arbitrary bytes end in a clean error
 * (they carry no valid tag), never a crash, an overread or an allocation the header asked for.
 * The first input bytes may also be a genuine record, so that the fuzzer reaches what follows
 * one (the sequence number moves on, the channel refuses all after a failure). */
#include <stdint.h>
#include <sys/mman.h>

#include "channel.h"
#include "fs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char key[FERRY_CHANNEL_KEY] = "fuzz key fuzz key fuzz key fuzz!";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char *buf;
	if (!buf)
		buf = xmalloc(FERRY_CHANNEL_BUF);
	int fd = memfd_create("records", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	/* a genuine record first when the input's first byte is odd */
	struct ferry_channel w, c;
	if (ferry_channel_init(&w, key, 1, NULL) < 0 || ferry_channel_init(&c, key, 1, NULL) < 0)
		abort();
	if (size > 0 && (data[0] & 1)) {
		size_t n = size - 1 < 64 ? size - 1 : 64;
		memcpy(buf + FERRY_CHANNEL_HDR, data + 1, n);
		int r = ferry_channel_seal(&w, data[0], buf, n, NULL);
		if (r < 0 || ferry_write_all(fd, buf, (size_t)r) < 0)
			abort();
	}
	if (ferry_write_all(fd, data, size) < 0 || lseek(fd, 0, SEEK_SET) < 0)
		abort();
	for (int i = 0; i < 64; i++) {
		uint8_t type = 0;
		size_t len = 0;
		struct ferry_error *err = NULL;
		int r = ferry_channel_read(&c, fd, 1, buf, &type, &len, &err);
		if ((r < 0) != (err != NULL) || (r == 0 && len > FERRY_CHANNEL_MAX))
			abort();
		ferry_error_free(err);
		if (r < 0)
			break;
		/* only the genuine record can open, and only first */
		if (i > 0 || !(data[0] & 1))
			abort();
	}
	ferry_channel_done(&w);
	ferry_channel_done(&c);
	close(fd);
	return 0;
}
