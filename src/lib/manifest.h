/* SPDX-License-Identifier: GPL-2.0-or-later */
/* manifest.h — the signed list of a checkpoint generation's files.
 *
 * A generation directory holds CRIU's images, launch.req (the launch request the instance was
 * started with) and, written last, "manifest": text lines "key=value" and "file=NAME SIZE SHA256",
 * closed by "hmac=HEX", an HMAC-SHA256 under the cluster key (/etc/ferry/cluster.key, root only)
 * of every byte before that line. Only the starter holds the key, so a manifest that verifies was
 * written by a starter, for the uid it names, over exactly these file contents. */
#ifndef FERRY_MANIFEST_H
#define FERRY_MANIFEST_H

#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#define FERRY_MANIFEST_NAME "manifest"
#define FERRY_MANIFEST_MAX (1u << 20)
#define FERRY_MANIFEST_MAX_FILES 65536
#define FERRY_KEY_PATH FERRY_SYSCONFDIR "/cluster.key"
#define FERRY_KEY_MIN 32
#define FERRY_KEY_MAX 256

struct ferry_manifest_file {
	char *name;
	uint64_t size;
	char sha256[65];
};

struct ferry_manifest {
	char *ferry_version;
	uid_t uid;
	gid_t gid;
	char *instance; /* the instance that was dumped */
	char *image; /* its image path */
	char *image_fingerprint; /* "size:sha256-of-head-and-tail" or "" for directories */
	long long created; /* unix time */
	long long pid; /* the workload's pid inside the container */
	char *node; /* hostname of the dumping node */
	/* the instance's network namespace: "loopback" (its own, only lo), "own" (--net) or "host";
	 * NULL in a checkpoint from before ferry recorded it */
	char *netns;
	/* "pages=lazy": the memory pages are not in the generation: a live migration's source
	 * served them to the restored tree (it cannot be restarted from) */
	bool lazy_pages;
	/* "ID/N" (names.h): a member's generation of group checkpoint ID, one cut of N members
	 * (ferry checkpoint group); NULL for an instance's own checkpoint */
	char *group;
	struct ferry_manifest_file *files;
	size_t n_files;
};

/* A manifest's netns: "loopback", "own" or "host". */
bool ferry_manifest_netns_ok(const char *v);
/* File names in a generation: 1..255 of [A-Za-z0-9._-], not starting with '.'. */
bool ferry_manifest_name_ok(const char *name);
/* The signed text of @m. */
int ferry_manifest_sign(const struct ferry_manifest *m, const unsigned char *key, size_t keylen, char **ret,
			struct ferry_error **err);
/* Verifies the HMAC (constant time) before parsing anything else; then parses strictly. */
int ferry_manifest_verify(const char *text, size_t len, const unsigned char *key, size_t keylen,
			  struct ferry_manifest **ret, struct ferry_error **err);
/* Parses without verifying (for display: 'checkpoint list'). */
int ferry_manifest_parse_unverified(const char *text, size_t len, struct ferry_manifest **ret,
				    struct ferry_error **err);
void ferry_manifest_free(struct ferry_manifest *m);
static inline void ferry_manifest_freep(struct ferry_manifest **m)
{
	ferry_manifest_free(*m);
	*m = NULL;
}
void ferry_manifest_add_file(struct ferry_manifest *m, const char *name, uint64_t size, const char *sha256);
const struct ferry_manifest_file *ferry_manifest_find(const struct ferry_manifest *m, const char *name);

/* SHA-256 of everything readable from @fd (from offset 0), as hex; also the byte count. */
int ferry_sha256_fd(int fd, uint64_t *ret_size, char ret_hex[65], struct ferry_error **err);
/* SHA-256 of a buffer, as lowercase hex. */
int ferry_sha256_buf(const void *buf, size_t len, char ret_hex[65], struct ferry_error **err);

/* SHA-256 of a file that may still be growing (a dump being written): begin, feed as often as
 * wanted (each call hashes from where the last one stopped to byte @end of @fd, or to its
 * current end when it is shorter: UINT64_MAX for all of it), end. */
struct ferry_sha256 {
	void *ctx; /* EVP_MD_CTX */
	uint64_t size;
};
int ferry_sha256_begin(struct ferry_sha256 *h, struct ferry_error **err);
int ferry_sha256_feed(struct ferry_sha256 *h, int fd, uint64_t end, struct ferry_error **err);
/* The digest as hex; frees the context (also on error). */
int ferry_sha256_end(struct ferry_sha256 *h, char ret_hex[65], struct ferry_error **err);
void ferry_sha256_abort(struct ferry_sha256 *h);
/* A cheap identity of an image file: its size and the SHA-256 of its first and last 1 MiB. */
int ferry_image_fingerprint(int fd, char **ret, struct ferry_error **err);
/* Loads the cluster key: a regular file owned by root, mode 0600 or stricter, not a symlink,
 * FERRY_KEY_MIN..FERRY_KEY_MAX bytes. */
int ferry_key_load(const char *path, unsigned char *key, size_t *ret_len, struct ferry_error **err);

#endif
