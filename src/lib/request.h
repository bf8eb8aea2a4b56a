/* SPDX-License-Identifier: GPL-2.0-or-later */
/* request.h — what the unprivileged CLI asks the setuid starter to do.
 *
 * The CLI encodes a request into a sealed memfd passed as fd 3 to ferry-starter. The starter
 * treats every byte as hostile: it decodes with ferry_request_decode (bounded, strict) and then
 * checks each field against ferry.conf and the caller's real uid. Identity is never taken from
 * the request. */
#ifndef FERRY_REQUEST_H
#define FERRY_REQUEST_H

#include <stdint.h>

#include "error.h"

#define FERRY_REQUEST_MAX (1u << 20) /* whole encoded request */
#define FERRY_REQUEST_FD 3

enum ferry_op {
	FERRY_OP_EXEC = 1, /* run argv in a new container and wait */
	FERRY_OP_INSTANCE_START = 2, /* start a named background instance */
	FERRY_OP_INSTANCE_JOIN = 3, /* run argv inside an existing instance (exec instance://NAME) */
	FERRY_OP_INSTANCE_LIST = 4, /* print the caller's instance records (they are root-only) */
	FERRY_OP_CHECKPOINT_DUMP = 5, /* checkpoint the instance into the checkpoint it was launched with */
	FERRY_OP_CHECKPOINT_DELETE = 6, /* remove the root-owned generations of a checkpoint dir */
	FERRY_OP_CHECKPOINT_RESTORE = 7, /* restore an instance's checkpoint inside the running instance */
	FERRY_OP_MAX_ = 8,
};

enum ferry_request_flags {
	FERRY_REQ_CONTAIN = 1u << 0, /* --contain: no default binds of home, cwd, /tmp */
	FERRY_REQ_CLEANENV = 1u << 1, /* --cleanenv: env holds only what the CLI chose */
	FERRY_REQ_NO_HOME = 1u << 2, /* --no-home */
	FERRY_REQ_CRIU_LAUNCH = 1u << 3, /* instance start --criu-launch: a checkpointable instance */
	FERRY_REQ_CRIU_RESTART = 1u << 4, /* instance start --criu-restart: restore from checkpoint */
	FERRY_REQ_LEAVE_RUNNING = 1u << 5, /* checkpoint instance --leave-running */
	FERRY_REQ_NET = 1u << 6, /* instance start --net: own network namespace */
	FERRY_REQ_TIMINGS = 1u << 7, /* print "timing key=ms ..." lines (for ferryd's reports) */
	FERRY_REQ_COMMIT = 1u << 8, /* restart: fd 4 is the source's connection: report, await its commit */
	/* restart from a migration's checkpoint (ferryd's): the instance's own checkpoint stays the
	 * one its sealed launch request names, not the migration's directory, which goes away */
	FERRY_REQ_MIGRATED = 1u << 9,
	FERRY_REQ_ALL_ = (1u << 10) - 1,
};

struct ferry_bind {
	char *src; /* host path, absolute */
	char *dst; /* path inside the container, absolute */
	bool ro;
};

struct ferry_request {
	uint32_t op;
	uint32_t flags;
	char *image; /* absolute host path (EXEC, INSTANCE_START) */
	char *instance; /* instance name (INSTANCE_START, INSTANCE_JOIN) */
	char *cwd; /* caller's current directory on the host, absolute */
	char *pwd; /* working directory inside the container (optional) */
	char *hostname; /* (optional) */
	char **argv; /* NULL-terminated; at least one element for EXEC and INSTANCE_JOIN, may be
			 * empty for INSTANCE_START (an idle instance) and must be empty for LIST */
	char **env; /* NULL-terminated "KEY=VALUE" strings */
	struct ferry_bind *binds;
	size_t n_binds;
	char *checkpoint; /* checkpoint directory, absolute (CRIU_LAUNCH, CRIU_RESTART, DELETE) */
	char *page_server; /* "HOST:PORT" for a dump, "PORT" for a restart (optional) */
	char *networks; /* --network "a,b" (with NET) */
	char *network_args; /* --network-args "IP=..;MAC=..;GW=.." (with NET) */
};

/* Encoding: "FERRYRQ1", then records: u16 tag (LE), u32 length (LE), bytes, ending with an END
 * record (tag 0xffff, length 0) exactly at the end of the buffer, so that no truncation of a valid
 * request is valid. Tags: 1 op (u32 LE), 2 flags (u32 LE), 3 image, 4 instance, 5 cwd, 6 pwd,
 * 7 hostname, 8 argv (repeated), 9 env (repeated), 10 bind (repeated: u8 ro 0|1, u32 srclen, src,
 * u32 dstlen, dst), 11 checkpoint, 12 page_server, 13 networks, 14 network_args.
 Strings are stored without NUL and must not contain one. List fields repeat
 * their tag; scalar fields appear at most once; NULL scalars are left out.
 *
 * The decoder rejects: wrong magic, unknown tags, truncated records, lengths beyond the buffer or
 * the record, a missing END or bytes after it, embedded NULs, repeated scalars, a missing op, more
 * than 4096 entries in any list, a total size above FERRY_REQUEST_MAX, flags outside
 * FERRY_REQ_ALL_, ops out of range, empty scalar strings, an empty argv[0], env entries that are
 * not KEY=VALUE with a non-empty KEY, image/cwd/pwd/bind paths that are not absolute or not
 * shorter than PATH_MAX, and fields that do not fit the op:
 *   EXEC              image, argv >= 1, no instance, no checkpoint
 *   INSTANCE_START    image, instance, argv >= 0; with CRIU_LAUNCH a checkpoint;
 *                     with CRIU_RESTART a checkpoint, image and instance optional, no argv
 *   INSTANCE_JOIN     instance, argv >= 1, no image
 *   INSTANCE_LIST     argv empty, no image (instance optional)
 *   CHECKPOINT_DUMP   instance, no image, no argv; optionally a checkpoint directory other than
 *                     the instance's own (where a migration puts it)
 *   CHECKPOINT_DELETE checkpoint, no image, no argv
 *   CHECKPOINT_RESTORE instance, no image, no argv
 * CRIU_LAUNCH and CRIU_RESTART exclude each other and belong to INSTANCE_START only;
 * LEAVE_RUNNING and page_server HOST:PORT belong to CHECKPOINT_DUMP, page_server PORT to
 * CRIU_RESTART.
 * Names, policy and whether paths exist are the starter's to check. Errors are -EBADMSG
 * ("invalid request: ..."). A decoded request's argv and env are never NULL (maybe empty).
 * The encoder runs the decoder on its output and fails the same way (-E2BIG when too large), so
 * the CLI learns at once what the starter would refuse. */
int ferry_request_encode(const struct ferry_request *req, char **ret_buf, size_t *ret_len,
			 struct ferry_error **err);
int ferry_request_decode(const char *buf, size_t len, struct ferry_request **ret, struct ferry_error **err);
void ferry_request_free(struct ferry_request *req);
/* Frees what @req holds (not @req itself) and zeroes it. */
void ferry_request_clear(struct ferry_request *req);
static inline void ferry_request_freep(struct ferry_request **r)
{
	ferry_request_free(*r);
	*r = NULL;
}
/* Parses a --bind spec "SRC[:DST[:ro|rw]]" (several may be joined by ','; the caller splits).
 * SRC and DST must be absolute after the caller resolves SRC; DST defaults to SRC. Errors: empty
 * spec, empty SRC/DST/option, more than two ':', an option other than ro/rw, a relative DST.
 * SRC may be relative (the caller resolves it); when DST was omitted it is a copy of SRC as given,
 * so with a relative SRC (dst[0] != '/') the caller replaces dst by the resolved source too.
 * On success the caller owns ret->src and ret->dst (ferry_bind_clear); on error *ret is zeroed. */
int ferry_bind_parse(const char *spec, struct ferry_bind *ret, struct ferry_error **err);
/* Frees src and dst and zeroes *b; accepts NULL. */
void ferry_bind_clear(struct ferry_bind *b);

#endif
