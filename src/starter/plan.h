/* SPDX-License-Identifier: GPL-2.0-or-later */
/* plan.h — the starter's privilege separation (Apptainer's stage 1, OpenSSH's monitor).
 *
 * A child that has dropped to the caller for good (real, effective and saved ids, no capability,
 * no_new_privs) executes ferry-plan (src/plan/, no setuid bit) by fd, which reads the request on
 * fd 3, decodes and checks it, parses the network names and arguments, opens and probes the
 * image and opens the bind sources, all as the caller and outside the setuid binary's image. It
 * sends the root side this fixed-layout plan over a socketpair (its fd PLAN_SOCK_FD): scalars, bounded counts and (offset,
 * length) references into one bounded string area, and the fds it opened by SCM_RIGHTS. No
 * pointers, no TLV, no JSON. The root side reads exactly the plan's size and re-checks it with
 * simple bounded code before it uses any of it. */
#ifndef FERRY_STARTER_PLAN_H
#define FERRY_STARTER_PLAN_H

#include <stdint.h>

#include "net.h"
#include "request.h"

struct starter;

#define PLAN_MAGIC 0x4e4c5046u /* "FPLN" */
#define PLAN_SOCK_FD 4 /* ferry-plan's socket to root (fd 3 is the request) */
#define PLAN_LIST_MAX 4096u /* argv, env (as the request's lists) */
#define PLAN_BINDS_MAX 64u /* --bind options: each sends an fd */
/* the request's strings fit FERRY_REQUEST_MAX; the network names and args and an error line
 * fit the rest */
#define PLAN_STRINGS_MAX (FERRY_REQUEST_MAX + 64u * 1024u)
#define PLAN_MESSAGE_MAX 4096u
/* the image, the current directory, the bind sources */
#define PLAN_FDS_MAX (2u + PLAN_BINDS_MAX)

/* A string in the plan's area: absent when both are 0 (offset 0 is never a string's); else
 * area[off .. off + len) holds no NUL and area[off + len] is the NUL that ends it. */
struct plan_str {
	uint32_t off, len;
};

struct plan_bind {
	struct plan_str src, dst;
	uint32_t ro;
};

enum plan_flags {
	PLAN_ERROR = 1u << 0, /* the request was refused: only @message counts */
	PLAN_PREPARED = 1u << 1, /* image, networks and mount sources follow (ops with an image) */
	PLAN_CWD_BOUND = 1u << 2, /* the first mount fd is the current directory's */
};

struct plan {
	uint32_t magic, size; /* PLAN_MAGIC, sizeof(struct plan) */
	uint32_t flags; /* enum plan_flags */
	struct plan_str message; /* PLAN_ERROR: the one line for the user */
	/* the request (absent in a restart's second plan: root keeps its verified request) */
	uint32_t op, req_flags;
	struct plan_str image, instance, cwd, pwd, hostname, checkpoint, page_server, networks, network_args,
	    group;
	uint32_t n_argv, n_env, n_binds;
	struct plan_str argv[PLAN_LIST_MAX], env[PLAN_LIST_MAX];
	struct plan_bind binds[PLAN_BINDS_MAX];
	/* PLAN_PREPARED: fd 0 is the image, then the mount sources (current directory, binds) */
	uint32_t image_kind;
	uint64_t image_offset, image_size, image_file_size;
	uint32_t n_networks;
	struct plan_str net_names[FERRY_NET_MAX];
	struct plan_str net_ip, net_mac, net_gw;
	uint32_t n_fds;
	uint32_t strings_len; /* the area that follows the header, at most PLAN_STRINGS_MAX */
};

/* Runs the plan child (ferry-plan) and takes its plan: s->req (from fd 3) and, for an op with an
 * image, the image, the networks and the request's mount sources. With @verified (a restart,
 * once root has verified the checkpoint and s->req is the request it sealed) ferry-plan is
 * handed s->req, encoded, instead of fd 3 and only the prepared part is taken. A refusal is returned as the child's
 * message; a child that dies or sends a plan that fails a check is refused too. */
int plan_fetch(struct starter *s, bool verified, struct ferry_error **err);

/* A checkpoint's launch request @buf (verified against its signed manifest), decoded by
 * ferry-plan as the caller and taken from its plan as any request is: root decodes no
 * request itself. */
/* @req (an instance start, or a restart's request rebuilt from its checkpoint) as the launch
 * request a checkpoint seals: --criu-launch, without what belongs to one restart only (its page
 * server, --tcp-close). Shallow: it shares @req's strings. */
struct ferry_request plan_as_launch(const struct ferry_request *req);
int plan_decode_launch(const struct starter *s, const char *buf, size_t len, struct ferry_request **ret,
		       struct ferry_error **err);

#endif
