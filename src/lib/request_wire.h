/* SPDX-License-Identifier: GPL-2.0-or-later */
/* request_wire.h — the request's wire format, shared by its encoder and checks (request.c) and
 * its decoder (request_decode.c, which runs in ferry-plan, never in the setuid starter). */
#ifndef FERRY_REQUEST_WIRE_H
#define FERRY_REQUEST_WIRE_H

#include "error.h"

#define MAGIC "FERRYRQ1"
#define MAGIC_LEN 8
#define RECORD_HEADER 6 /* u16 tag + u32 length */
#define LIST_MAX 4096u

enum tag {
	TAG_OP = 1, /* u32 */
	TAG_FLAGS = 2, /* u32 */
	TAG_IMAGE = 3, /* string */
	TAG_INSTANCE = 4, /* string */
	TAG_CWD = 5, /* string */
	TAG_PWD = 6, /* string */
	TAG_HOSTNAME = 7, /* string */
	TAG_ARGV = 8, /* string, repeated */
	TAG_ENV = 9, /* string, repeated */
	TAG_BIND = 10, /* u8 ro (0|1), u32 srclen, src, u32 dstlen, dst; repeated */
	TAG_CHECKPOINT = 11, /* string, absolute path */
	TAG_PAGE_SERVER = 12, /* string */
	TAG_NETWORKS = 13, /* string */
	TAG_NETWORK_ARGS = 14, /* string */
	TAG_GROUP = 15, /* string */
	TAG_END = 0xffff, /* empty, last */
};

const char *ferry_request_tag_name(unsigned tag);
/* Fills *err with "invalid request: ..." (EBADMSG). */
int ferry_request_bad(struct ferry_error **err, const char *fmt, ...) _printf_(2, 3);
/* @s is an absolute path that fits PATH_MAX. */
int ferry_request_check_path(const char *s, const char *what, struct ferry_error **err);

#endif
