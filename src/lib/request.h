/* SPDX-License-Identifier: GPL-2.0-or-later */
/* request.h — what the unprivileged CLI asks the setuid starter to do.
 *
 * The CLI encodes a request into a sealed memfd passed as fd 3 to ferry-starter. The starter
 * treats every byte as hostile: only ferry-plan, which its plan child execs once it is the
 * caller for good, decodes it with ferry_request_decode (request_decode.c, bounded, strict, not
 * linked into the setuid starter); root re-checks the plan it sends (ferry_request_check) and
 * checks each field against ferry.conf and the caller's real uid. Identity is never taken from
 * the request. A checkpoint's sealed launch request, once its signature and hash are verified,
 * is decoded by ferry-plan too (see src/starter/plan.c). */
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
	/* checkpoint instance --skip-in-flight: TCP connections not yet accepted are left out */
	FERRY_REQ_SKIP_IN_FLIGHT = 1u << 10,
	/* --criu-restart or --restore with --tcp-close: TCP connections come back closed */
	FERRY_REQ_TCP_CLOSE = 1u << 11,
	/* post-copy (ferry migrate --mode live): a dump through a page server serves the pages
	 * on demand to the restart's lazy-pages daemon, which restores at once */
	FERRY_REQ_LAZY = 1u << 12,
	/* instance start --wait-all: the instance lives until its last process ends, not only its
	 * command (launchers that daemonize, as MPI's daemons do) */
	FERRY_REQ_WAIT_ALL = 1u << 13,
	/* --private-tmp: a private /tmp (not the host's), which a checkpointable instance's
	 * checkpoints save and its restarts bring back, as --contain's */
	FERRY_REQ_PRIVATE_TMP = 1u << 14,
	/* checkpoint group: a member's dump, once written and sealed (the tree frozen, its network
	 * locked), prints "held" and waits for one byte on stdin: 'C' publishes it and lets the tree
	 * go (stop or resume), anything else or EOF gives it up and resumes the tree */
	FERRY_REQ_HOLD = 1u << 15,
	/* a checkpoint's sealed launch request (with NET): the network's IPAM, not the user, chose the
	 * instance's address / MAC. Only the starter's monitor sets them, when it writes the launch
	 * request (a start's from what it asked for, whatever its own request's flags said; a
	 * restart's as its checkpoint had them), with SAID: this request says who chose. A restart
	 * checks what the user chose against what users may choose on its node. One sealed before
	 * ferry said who chose (no SAID) keeps its address and MAC as it did then, unchecked: a
	 * checkpoint that restarted before an upgrade restarts after it. */
	FERRY_REQ_NET_IPAM_IP = 1u << 16,
	FERRY_REQ_NET_IPAM_MAC = 1u << 17,
	FERRY_REQ_NET_SAID = 1u << 18,
	FERRY_REQ_ALL_ = (1u << 19) - 1,
};
#define FERRY_REQ_NET_IPAM (FERRY_REQ_NET_IPAM_IP | FERRY_REQ_NET_IPAM_MAC | FERRY_REQ_NET_SAID)
/* How long a held dump waits for the group's word (the starter), and ferryd's relay with it. */
#define FERRY_HOLD_WAIT_S 3600

/* Flags any op may carry. */
#define FERRY_REQ_ANY_OP_                                                                                    \
	(FERRY_REQ_CONTAIN | FERRY_REQ_PRIVATE_TMP | FERRY_REQ_CLEANENV | FERRY_REQ_NO_HOME |                \
	 FERRY_REQ_TIMINGS | FERRY_REQ_COMMIT | FERRY_REQ_MIGRATED)

/* Whether an op takes a field. */
enum ferry_field {
	FERRY_FIELD_NO = 0, /* refused */
	FERRY_FIELD_YES = 1, /* required */
	FERRY_FIELD_OPT = 2, /* either */
};

/* The one table of operations (OpenSSH's monitor table): for each op, the word its messages use,
 * the flags it allows beyond FERRY_REQ_ANY_OP_, whether it takes an image, an instance name, an
 * argv and a checkpoint directory, and the starter's handler. The request check (the decoder, the
 * CLI's encoder, the starter's plan child and its root side's re-check: ferry_request_check) and
 * the starter's dispatch (src/starter/ops.c) all read it; the handler column is the starter's
 * alone. One exception, in ferry_request_check: a restart's instance start (CRIU_RESTART) takes
 * its image, instance and argv from its checkpoint (image and instance optional, no argv) and
 * needs a checkpoint, as CRIU_LAUNCH does. An op with an image is prepared by the plan child
 * (networks, image probe, mount sources: src/starter/plan.c). */
#define FERRY_OP_TABLE(X)                                                                                    \
	X(FERRY_OP_EXEC, "exec", 0, FERRY_FIELD_YES, FERRY_FIELD_NO, FERRY_FIELD_YES, FERRY_FIELD_NO,        \
	  op_exec)                                                                                           \
	X(FERRY_OP_INSTANCE_START, "instance start",                                                         \
	  FERRY_REQ_CRIU_LAUNCH | FERRY_REQ_CRIU_RESTART | FERRY_REQ_NET | FERRY_REQ_TCP_CLOSE |             \
	      FERRY_REQ_LAZY | FERRY_REQ_WAIT_ALL | FERRY_REQ_NET_IPAM,                                      \
	  FERRY_FIELD_YES, FERRY_FIELD_YES, FERRY_FIELD_OPT, FERRY_FIELD_NO, op_instance_start)              \
	X(FERRY_OP_INSTANCE_JOIN, "instance join", 0, FERRY_FIELD_NO, FERRY_FIELD_YES, FERRY_FIELD_YES,      \
	  FERRY_FIELD_NO, op_instance_join)                                                                  \
	X(FERRY_OP_INSTANCE_LIST, "instance list", 0, FERRY_FIELD_NO, FERRY_FIELD_OPT, FERRY_FIELD_NO,       \
	  FERRY_FIELD_NO, op_list)                                                                           \
	X(FERRY_OP_CHECKPOINT_DUMP, "a checkpoint",                                                          \
	  FERRY_REQ_LEAVE_RUNNING | FERRY_REQ_SKIP_IN_FLIGHT | FERRY_REQ_LAZY | FERRY_REQ_HOLD,              \
	  FERRY_FIELD_NO, FERRY_FIELD_YES, FERRY_FIELD_NO, FERRY_FIELD_OPT, op_checkpoint_dump)              \
	X(FERRY_OP_CHECKPOINT_DELETE, "a checkpoint delete", 0, FERRY_FIELD_NO, FERRY_FIELD_OPT,             \
	  FERRY_FIELD_NO, FERRY_FIELD_YES, op_checkpoint_delete)                                             \
	X(FERRY_OP_CHECKPOINT_RESTORE, "a checkpoint", FERRY_REQ_TCP_CLOSE, FERRY_FIELD_NO, FERRY_FIELD_YES, \
	  FERRY_FIELD_NO, FERRY_FIELD_NO, op_checkpoint_restore)

/* A row of FERRY_OP_TABLE without its handler. */
struct ferry_op_rule {
	const char *what; /* "exec", "instance start", ... as the messages say it */
	uint32_t flags; /* allowed beyond FERRY_REQ_ANY_OP_ */
	enum ferry_field image, instance, argv, checkpoint;
};
/* The rule of @op, NULL for an unknown op. */
const struct ferry_op_rule *ferry_op_rule(uint32_t op);

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
	/* a group checkpoint's cut "ID/N" (names.h): a held member's dump (HOLD) writes it into its
	 * generation's manifest; a restart (CRIU_RESTART) restores only a generation that has it */
	char *group;
};

/* Encoding: "FERRYRQ1", then records: u16 tag (LE), u32 length (LE), bytes, ending with an END
 * record (tag 0xffff, length 0) exactly at the end of the buffer, so that no truncation of a valid
 * request is valid. Tags: 1 op (u32 LE), 2 flags (u32 LE), 3 image, 4 instance, 5 cwd, 6 pwd,
 * 7 hostname, 8 argv (repeated), 9 env (repeated), 10 bind (repeated: u8 ro 0|1, u32 srclen, src,
 * u32 dstlen, dst), 11 checkpoint, 12 page_server, 13 networks, 14 network_args, 15 group.
 Strings are stored without NUL and must not contain one. List fields repeat
 * their tag; scalar fields appear at most once; NULL scalars are left out.
 *
 * The decoder rejects: wrong magic, unknown tags, truncated records, lengths beyond the buffer or
 * the record, a missing END or bytes after it, embedded NULs, repeated scalars, a missing op, more
 * than 4096 entries in any list, a total size above FERRY_REQUEST_MAX, flags outside
 * FERRY_REQ_ALL_, ops out of range, empty scalar strings, an empty argv[0], env entries that are
 * not KEY=VALUE with a non-empty KEY, image/cwd/pwd/bind paths that are not absolute or not
 * shorter than PATH_MAX, and flags and fields that do not fit the op (FERRY_OP_TABLE above;
 * page_server HOST:PORT belongs to CHECKPOINT_DUMP, PORT to CRIU_RESTART; --network and
 * --network-args need NET; group is "ID/N" and belongs to HOLD or CRIU_RESTART).
 * Names, policy and whether paths exist are the starter's to check. Errors are -EBADMSG
 * ("invalid request: ..."). A decoded request's argv and env are never NULL (maybe empty).
 * The encoder runs the decoder's checks (ferry_request_check) on what it encodes and fails the
 * same way (-E2BIG when too large), so the CLI learns at once what the starter would refuse. */
int ferry_request_encode(const struct ferry_request *req, char **ret_buf, size_t *ret_len,
			 struct ferry_error **err);
int ferry_request_decode(const char *buf, size_t len, struct ferry_request **ret, struct ferry_error **err);
/* The decoder's checks of every field and of the fields that fit the op, on a request however it
 * was built (the starter's root side re-checks the plan its unprivileged child sent with it).
 * Gives an empty argv and env to a request without them. */
int ferry_request_check(struct ferry_request *req, struct ferry_error **err);
/* @p is absolute and in canonical form: no empty ('//'), '.' or '..' component and no trailing
 * '/' ('/' alone is canonical). */
bool ferry_path_canonical(const char *p);
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
