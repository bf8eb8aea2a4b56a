/* SPDX-License-Identifier: GPL-2.0-or-later */
/* xfer.h — moving a checkpoint generation between two starters over a connected socket.
 *
 * The socket is made by the caller (the CLI or ferryd); the starters only speak over it:
 *  1. a mutual handshake under the cluster key that binds the session to fresh nonces from
 *     both sides and to the user, so that pages can only come from (and go to) a ferry
 *     starter acting for the same uid;
 *  2. CRIU's page-server protocol (the dump's memory pages, written by the receiver's
 *     `criu page-server --ps-socket` straight into its staging directory);
 *  3. the rest of the generation and the sender's signed manifest, as a zstd-compressed tar
 *     (libarchive) cut into bounded chunks;
 *  4. the receiver's verdict: 'A' (restored: the sender may end its instance) or 'N' with a
 *     u16-length message (the sender resumes its instance).
 * All integers are little-endian. The stream is not encrypted: it runs on the cluster's
 * network, like the rest of an HPC job's traffic. */
#ifndef FERRY_XFER_H
#define FERRY_XFER_H

#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#define FERRY_XFER_NONCE 32
#define FERRY_XFER_MAX_FILES 65536
#define FERRY_XFER_MAX_MANIFEST (1u << 20)

/* Every migration socket (TCP between nodes): no Nagle delay, and no cork. The protocols here
 * and CRIU's page server write small headers and wait for answers; with Nagle and the peer's
 * delayed ACK, each such exchange can stall up to 200 ms. CRIU's dump corks the page server
 * socket it is given and leaves it so: call this again once CRIU is done with a socket, or every
 * later partial write waits for the cork's 200 ms timer. Does nothing on unix sockets. */
void ferry_xfer_tune_socket(int sk);

/* Handshake, receiver side: sends its nonce, checks the sender's proof and uid (must equal
 * @uid), answers with its own proof. @timeout bounds each read, in seconds. */
int ferry_xfer_accept(int sk, const unsigned char *key, size_t keylen, uid_t uid, unsigned timeout,
		      struct ferry_error **err);
/* Handshake, sender side. */
int ferry_xfer_connect(int sk, const unsigned char *key, size_t keylen, uid_t uid, unsigned timeout,
		       struct ferry_error **err);

/* The same mutual proof between two ferryd (control connections), under other role names. */
int ferry_peer_accept(int sk, const unsigned char *key, size_t keylen, unsigned timeout,
		      struct ferry_error **err);
int ferry_peer_connect(int sk, const unsigned char *key, size_t keylen, unsigned timeout,
		       struct ferry_error **err);

/* Sender: the named files of @dirfd, then the manifest text, as one zstd-compressed tar
 * (libarchive) in chunks (u32 length, bytes; a zero length ends it). */
int ferry_xfer_send_files(int sk, int dirfd, char *const *names, size_t n, const char *manifest, size_t mlen,
			  struct ferry_error **err);

/* Receiver: writes the files into @dirfd (created O_EXCL, mode 0400) until the archive ends;
 * returns the sender's manifest text (not yet verified). Only regular files whose names pass
 * ferry_manifest_name_ok, each once, the manifest last; chunks and sizes bounded. */
int ferry_xfer_receive(int sk, int dirfd, unsigned timeout, char **ret_manifest, size_t *ret_len,
		       struct ferry_error **err);

/* The commit: after an 'A' verdict the sender answers 'C'; the receiver keeps its restored copy
 * only then (two copies must never run). */
int ferry_xfer_send_commit(int sk);
int ferry_xfer_await_commit(int sk, unsigned timeout);

/* The verdict. */
int ferry_xfer_send_verdict(int sk, const char *error_or_null);
/* Returns 0 for 'A', -EREMOTEIO with the receiver's message for 'N', or another error. */
int ferry_xfer_read_verdict(int sk, unsigned timeout, struct ferry_error **err);

#endif
