/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ferryd.h — the migration daemon, one per node (docs/protocol.md).
 *
 * It does nothing for a user by itself: it learns who asks from SO_PEERCRED (local clients) or
 * from an authenticated peer daemon (the cluster key), and then runs the setuid ferry-starter
 * under that user's real uid, so the starter's checks guard migrations as they guard the CLI. */
#ifndef FERRYD_H
#define FERRYD_H

#include <sys/types.h>

#include "config.h"
#include "error.h"
#include "proto.h"
#include "request.h"

#define FERRYD_SOCKET_NAME "ferry/ferryd" /* abstract unix socket: one per network namespace */
#define FERRYD_MAX_PEERS 64

/* Limits (compiled in; docs/man/ferryd.8). A connection is served by a forked handler only once
 * it is authenticated: local clients by SO_PEERCRED at accept, peers once they proved the
 * cluster key in the handshake, which runs in the main loop (loop.c). */
#define FERRYD_MAX_CONNS 64 /* handlers at once, local clients and peers together */
#define FERRYD_MAX_PER_USER 16 /* handlers at once for one local user (SO_PEERCRED uid) */
#define FERRYD_MAX_PENDING 64 /* peers in the handshake at once (the oldest is dropped) */
#define FERRYD_AUTH_TIMEOUT 5 /* seconds a peer has to complete the handshake */
#define FERRYD_REQUEST_TIMEOUT 10 /* seconds a local client has to send its request */
#define FERRYD_LISTEN_BACKLOG 1024 /* the kernel holds a burst of connects until the loop takes them */

struct ferryd_peer {
	char *name;
	char *addr; /* HOST:PORT */
};

struct ferryd {
	char *node;
	char *listen;
	char *shared_dir;
	char *tmpfs_dir;
	struct ferryd_peer peers[FERRYD_MAX_PEERS];
	size_t n_peers;
	struct ferry_config *cfg;
	unsigned char key[256];
	size_t keylen;
};

/* A user ferryd acts for, from SO_PEERCRED or from a peer's prepare message. */
struct ferryd_user {
	uid_t uid;
	gid_t gid;
	char *name;
	gid_t groups[256];
	int n_groups;
};

/* user.c */
extern const char *ferryd_log_node; /* this node's name, in every log line */
void ferryd_log(const char *id, const char *fmt, ...) _printf_(2, 3);
int ferryd_user_lookup(uid_t uid, struct ferryd_user *ret, struct ferry_error **err);
/* Runs ferry-starter as @u with @req (and @sock as fd 4 when >= 0); its stdout in *ret_out. */
int ferryd_run_starter(const struct ferryd *d, const struct ferryd_user *u, const struct ferry_request *req,
		       int sock, char **ret_out, struct ferry_error **err);

/* dirs.c — a migration's directory: BASE/<uid>/<leaf>. BASE (the shared or the tmpfs directory)
 * and BASE/<uid> are root's, 0711, made by root through fds where no user can squat them (a
 * squatter's entry is moved aside and logged); only the leaf is the user's (0700), made fresh for
 * one migration and removed at its end. */
struct ferryd_leaf {
	int uidfd; /* BASE/<uid>, root's */
	char *name;
	char *path; /* what the starters are given */
};
int ferryd_leaf_make(const char *base, const struct ferryd_user *u, const char *leaf, const char *id,
		     struct ferryd_leaf *ret, struct ferry_error **err);
/* Removes the leaf and all in it (the starter deletes the checkpoint's root-owned generations,
 * a process that is the user the rest); logs what it cannot remove. */
void ferryd_leaf_remove(const struct ferryd *d, const struct ferryd_user *u, struct ferryd_leaf *l,
			const char *id);
void ferryd_leaf_close(struct ferryd_leaf *l);

/* loop.c */
_noreturn_ void ferryd_loop(struct ferryd *d, int ux, int tcp);

/* migrate.c */
void ferryd_handle_client(struct ferryd *d, int sk);
void ferryd_handle_peer(struct ferryd *d, int sk);

#endif
