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

void ferryd_log(const char *id, const char *fmt, ...) _printf_(2, 3);
int ferryd_user_lookup(uid_t uid, struct ferryd_user *ret, struct ferry_error **err);
/* Runs ferry-starter as @u with @req (and @sock as fd 4 when >= 0); its stdout in *ret_out. */
int ferryd_run_starter(const struct ferryd *d, const struct ferryd_user *u, const struct ferry_request *req,
		       int sock, char **ret_out, struct ferry_error **err);
/* A directory for @u under @base: BASE/<uid>/<leaf>, made by root, owned by the user, 0700. */
int ferryd_user_dir(const char *base, const struct ferryd_user *u, const char *leaf, char **ret,
		    struct ferry_error **err);

/* migrate.c */
void ferryd_handle_client(struct ferryd *d, int sk);
void ferryd_handle_peer(struct ferryd *d, int sk);

#endif
