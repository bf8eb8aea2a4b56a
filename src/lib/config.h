/* SPDX-License-Identifier: GPL-2.0-or-later */
/* config.h — /etc/ferry/ferry.conf, the admin's policy. */
#ifndef FERRY_CONFIG_H
#define FERRY_CONFIG_H

#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#define FERRY_CONFIG_PATH FERRY_SYSCONFDIR "/ferry.conf"
#define FERRY_CONFIG_MAX (256 * 1024)
#define FERRY_CONFIG_DROPIN_MAX 64u /* files in FERRY_CONFIG_PATH ".d" */
/* "peer timeout": at least three of ferryd's keepalive periods (FERRYD_KEEPALIVE_S, which
 * src/ferryd/ferryd.h checks against it), so that a working peer, whose keepalive may come a
 * little late on a loaded node, is never taken for a silent one. */
#define FERRY_PEER_TIMEOUT_MIN 6u
#define FERRY_PEER_TIMEOUT_MAX 3600u

struct ferry_config {
	bool allow_setuid; /* "allow setuid": the starter refuses to run when no */
	bool mount_home; /* "mount home": bind $HOME by default */
	bool mount_tmp; /* "mount tmp": bind host /tmp by default */
	bool mount_cwd; /* "mount cwd": bind the current directory by default */
	bool user_bind_control; /* "user bind control": unprivileged users may --bind */
	char **allow_bind_paths; /* "allow bind path = DIR" (repeatable): host prefixes users may bind;
				  * NULL-terminated, never NULL itself (empty by default) */
	char *criu_path; /* "criu path" */
	char *mem_dir; /* "mem dir": tmpfs base for checkpoint --mem-dir (default /dev/shm) */
	char *checkpoint_dir; /* "checkpoint dir": per-user base, "~/" = home (default ~/.ferry/checkpoint) */
	bool staging; /* "checkpoint staging": a dump that leaves the job running is written to node-local
		       * memory first, then to its checkpoint while the job runs (default yes) */
	char *staging_dir; /* "checkpoint staging dir": root's, there (default /dev/shm/ferry-staging) */
	unsigned max_instances; /* "max instances": per user (default 64) */
	unsigned criu_timeout; /* "criu timeout": seconds (default 600) */
	unsigned criu_ghost_limit; /* "criu ghost limit": MiB (default 1, CRIU's) */
	bool criu_loopback; /* "criu network = loopback|host": a checkpointable instance without --net gets
			     * its own network namespace with only lo (default), or the host's */
	char **allow_net_networks; /* "allow net network = NAME" (repeatable): networks users may join */
	bool allow_net_args; /* "allow net args": users may choose IP/MAC/GW (--network-args) */
	bool allow_live; /* "allow live migration": this node sends and takes post-copy migrations */
	bool compress_pages; /* "compress pages": a transfer's pages go zstd-compressed where it pays */
	char **allow_net_ranges; /* "allow net ip range = A.B.C.D/P" (repeatable): addresses users may ask */
	char **network_parents; /* "network parent = NETWORK:IFACE": this node's parent interface */
	char *network_dir; /* "network config dir" (default /etc/ferry/network) */
	char *cni_path; /* "cni path" (default /usr/lib/cni) */
	char *nft_path; /* "nft path" (default /usr/sbin/nft) */
	char *ferryd_node; /* "ferryd node" (default: the hostname) */
	char *ferryd_listen; /* "ferryd listen": ADDR:PORT for peers (default 0.0.0.0:7780) */
	char **ferryd_peers; /* "ferryd peer = NAME=ADDR:PORT" (repeatable) */
	char *ferryd_shared_dir; /* "ferryd shared dir": default-mode checkpoints (shared filesystem) */
	char *ferryd_tmpfs_dir; /* "ferryd tmpfs dir": where diskless migrations land */
	unsigned peer_timeout; /* "peer timeout": seconds of a peer's silence ferryd accepts (default 30) */
	/* Slurm jobs with '--ferry-checkpoint' (the SPANK plugin; ferry-slurm(7)) */
	char *slurm_checkpoint_dir; /* "slurm checkpoint dir": base of their checkpoints, "~/" = home,
				     * an absolute path gets a directory per user (NULL: checkpoint dir) */
	unsigned slurm_every; /* "slurm checkpoint every": seconds, 0 none (default) */
	unsigned slurm_keep; /* "slurm keep": generations kept (default 2) */
	unsigned slurm_grace; /* "slurm grace time": seconds before the time limit (default 120) */
};

/* The waits on a peer, or on a starter, that outlast 'criu timeout' (a restore, a dump the peer's
 * CRIU makes, each given up after that much idleness) by two 'peer timeout's (60 s by default):
 * time for the side that gave up to say so before the waiting side concludes that it is gone.
 * A side waiting for its peer's verdict or commit: */
static inline unsigned ferry_config_verdict_wait(const struct ferry_config *c)
{
	return c->criu_timeout + 2 * c->peer_timeout;
}
/* ferryd on a starter it runs (silent while it restores; a dump's starter says "progress"): */
static inline unsigned ferry_config_starter_wait(const struct ferry_config *c)
{
	return 2 * c->criu_timeout + 2 * c->peer_timeout;
}

/* Parses ferry.conf text: "key = value" lines, '#' comments (only as the first non-blank character
 * of a line), blank lines; list keys repeat (at most 4096 entries). Unknown keys, bad booleans
 * ("yes"/"no"), numbers out of range, paths that are not absolute and normalized (no ".", "..",
 * "//", trailing '/'), NUL bytes, text over FERRY_CONFIG_MAX and duplicates of scalar keys are
 * errors naming the line: "ferry.conf line 12: unknown key 'foo' (see ferry.conf(5))". Missing
 * keys get their defaults. */
int ferry_config_parse(const char *text, size_t len, struct ferry_config **ret, struct ferry_error **err);
/* Loads @path (NULL: the compiled-in FERRY_CONFIG_PATH), then the drop-ins "@path.d/ *.conf" (names
 * ending in ".conf", not starting with '.', at most FERRY_CONFIG_DROPIN_MAX) in byte order of
 * their names: a key set in a drop-in replaces what ferry.conf or an earlier drop-in set (a list
 * key's lines in one file replace the whole list); within one file a scalar key is set once. A
 * missing drop-in directory is no error. Each file is opened O_NOFOLLOW|O_CLOEXEC (a drop-in with
 * openat() in the directory, itself opened O_DIRECTORY|O_NOFOLLOW) and must be a regular file of
 * at most FERRY_CONFIG_MAX bytes. When @require_root_owned (always, in the starter; false only for
 * tests and unprivileged tools), every file and the drop-in directory must be owned by root and
 * not writable by group or others, @path must be absolute and normalized, and it is opened one
 * component at a time from "/" without following any symlink, each directory on the way owned by
 * root and not writable by group or others unless sticky (like /tmp); the drop-in directory is
 * opened in the same, checked, parent. Parse errors name the file and the line. A missing
 * ferry.conf fails with -ENOENT. */
int ferry_config_load(const char *path, bool require_root_owned, struct ferry_config **ret,
		      struct ferry_error **err);
struct ferry_config *ferry_config_defaults(void);
/* The parsed configuration as ferry-conf sends it to the setuid starter (config_policy.c): into
 * *@ret (malloc'd, at most FERRY_CONFIG_WIRE_MAX bytes), and back. */
#define FERRY_CONFIG_WIRE_MAGIC "ferry-conf 1\n"
#define FERRY_CONFIG_WIRE_MAX ((FERRY_CONFIG_DROPIN_MAX + 1) * FERRY_CONFIG_MAX + 65536)
int ferry_config_encode(const struct ferry_config *c, char **ret, size_t *ret_len);
int ferry_config_decode(const void *buf, size_t len, struct ferry_config **ret, struct ferry_error **err);

void ferry_config_free(struct ferry_config *c);
static inline void ferry_config_freep(struct ferry_config **c)
{
	ferry_config_free(*c);
	*c = NULL;
}
/* True when @resolved (an absolute, symlink-free path) equals or lies below one of the
 * allowed bind prefixes or below @home (the user's home directory, may be NULL). Component-wise:
 * "/data2" is not below "/data". A @resolved that is not normalized (".", "..", "//") is never
 * allowed; a @home of "/" grants nothing. It does not look at user_bind_control. */
bool ferry_config_bind_allowed(const struct ferry_config *c, const char *resolved, const char *home);

/* [A-Za-z0-9_.-], 1..@max characters, not starting with '.' or '-'. */
bool ferry_config_word_ok(const char *s, size_t max);
/* Strict IPv4 "A.B.C.D" and "A.B.C.D/P" parsers (host byte order). */
int ferry_config_ipv4_parse(const char *s, uint32_t *ret);
int ferry_config_cidr_parse(const char *s, uint32_t *ret_addr, unsigned *ret_prefix);
bool ferry_config_ip_allowed(const struct ferry_config *c, uint32_t addr);
bool ferry_config_network_allowed(const struct ferry_config *c, const char *name);
/* The parent interface this node uses for @network, or NULL (the network file's own). */
const char *ferry_config_network_parent(const struct ferry_config *c, const char *network);

#endif
