/* SPDX-License-Identifier: GPL-2.0-or-later */
/* proto.h — ferryd's wire protocol, version 1 (docs/protocol.md).
 *
 * A message is a u32 little-endian length (at most FERRY_PROTO_MAX) followed by that many bytes:
 * the line "ferry-proto 1", then up to FERRY_PROTO_FIELDS lines "key=value": keys are 1..32 of
 * [a-z_], unique; values are printable (no control characters), at most 4 KiB. Used between the
 * CLI and its node's ferryd (unix socket), and between ferryd as the payload of sealed records
 * (without the length: the record has its own; src/ferryd/link.c). */
#ifndef FERRY_PROTO_H
#define FERRY_PROTO_H

#include "error.h"

#define FERRY_PROTO_MAX (64u * 1024)
#define FERRY_PROTO_FIELDS 64
#define FERRY_PROTO_VALUE_MAX 4096

struct ferry_msg {
	size_t n;
	char *keys[FERRY_PROTO_FIELDS];
	char *vals[FERRY_PROTO_FIELDS];
};

void ferry_msg_clear(struct ferry_msg *m);
/* Sets @key (replacing it); control characters in the value become spaces. Aborts on a bad
 * key or a full message: callers use fixed keys. */
void ferry_msg_set(struct ferry_msg *m, const char *key, const char *fmt, ...) _printf_(3, 4);
const char *ferry_msg_get(const struct ferry_msg *m, const char *key);
/* Strict parser of one payload (without the length). */
int ferry_msg_parse(const char *buf, size_t len, struct ferry_msg *ret, struct ferry_error **err);
/* The payload of @m (without the length) into *ret, malloc'ed, after @head bytes left for the
 * caller; *ret_len: the payload's length. */
int ferry_msg_encode(const struct ferry_msg *m, size_t head, char **ret, size_t *ret_len,
		     struct ferry_error **err);
/* Bytes in a message: @len (at most FERRY_PROTO_BLOB_MAX) base64 in fields @prefix_a,
 * @prefix_b, ... of FERRY_PROTO_BLOB_CHUNK characters each (the last one shorter). */
#define FERRY_PROTO_BLOB_MAX (40u * 1024)
#define FERRY_PROTO_BLOB_CHUNK 4000u /* 3000 bytes */
/* What a start (or list) on another node sends back of its starter's stdout in all, in "out"
 * messages (protocol.md); its clients take no more. */
#define FERRY_PROTO_OUT_TOTAL (4u * 1024 * 1024)
void ferry_msg_set_blob(struct ferry_msg *m, const char *prefix, const void *buf, size_t len);
/* The bytes of ferry_msg_set_blob into @buf (@max bytes of room): strict (every field but the
 * last full, nothing but base64, no field after a missing one, at most @max bytes); their count
 * in *ret_len. Errors: -EPROTO "bad PREFIX: ...", -E2BIG. */
int ferry_msg_get_blob(const struct ferry_msg *m, const char *prefix, void *buf, size_t max, size_t *ret_len,
		       struct ferry_error **err);
int ferry_msg_send(int fd, const struct ferry_msg *m, struct ferry_error **err);
/* Reads one message; @timeout in seconds (0: none). */
int ferry_msg_recv(int fd, unsigned timeout, struct ferry_msg *ret, struct ferry_error **err);

#endif
