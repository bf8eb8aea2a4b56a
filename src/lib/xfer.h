/* SPDX-License-Identifier: GPL-2.0-or-later */
/* xfer.h — moving a checkpoint generation between two starters over a connected socket.
 *
 * The socket is made by the caller (the CLI or ferryd); the starters only speak over it
 * (docs/xfer-protocol.md has the whole of it):
 *  1. a mutual handshake under the cluster key that binds the session to fresh nonces from
 *     both sides and to the user, so that pages can only come from (and go to) a ferry
 *     starter acting for the same uid;
 *  2. from then on, only records of a session (channel.h: AES-256-GCM) under keys that HKDF
 *     derives from the cluster key over both nonces, both roles and the uid: someone who
 *     relays or watches the handshake learns neither key, so every byte after it is the
 *     peer starter's, unread by anyone else. The records carry three channels: the pages
 *     (CRIU's page-server protocol between the sender's `criu dump` and the receiver's
 *     `criu page-server`), the files (the rest of the generation and the sender's signed
 *     manifest, as a zstd-compressed tar in bounded chunks, which only ferry-xfer, a helper
 *     without privileges, writes and reads) and the control channel (the verdict and the
 *     commit below). Each channel ends with an END record, the session with a FIN record
 *     from each side: a stream cut anywhere is an error, and the socket is clean afterwards
 *     for whoever owns it (ferryd's messages);
 *  3. the receiver's verdict: 'A' (restored: the sender may end its instance) or 'N' with a
 *     u16-length message (the sender resumes its instance); then the sender's commit 'C'.
 * The relay (ferry_xfer_relay) is ferry-relay, run by the starter as the user for good: no
 * network byte is read with root or a capability at hand, and the setuid starter links only
 * the control channel's part (xfer_ctl.c). All integers are
 * little-endian. */
#ifndef FERRY_XFER_H
#define FERRY_XFER_H

#include <stdint.h>
#include <sys/types.h>

#include "channel.h"
#include "error.h"

#define FERRY_XFER_NONCE 32
#define FERRY_XFER_MAX_FILES 65536
#define FERRY_XFER_MAX_MANIFEST (1u << 20)

/* Every migration socket (TCP between nodes): no Nagle delay, and no cork. The protocols here
 * and CRIU's page server write small headers and wait for answers; with Nagle and the peer's
 * delayed ACK, each such exchange can stall up to 200 ms. CRIU's dump corks the page server
 * socket it is given and leaves it so: call this again once CRIU is done with a socket, or every
 * later partial write waits for the cork's 200 ms timer. Does nothing on unix sockets.
 * It also turns TCP keepalive on: a connection with nothing in flight whose peer stays silent
 * for FERRY_XFER_KEEPIDLE + FERRY_XFER_KEEPCNT * FERRY_XFER_KEEPINTVL seconds (15) fails
 * (ETIMEDOUT); a live peer's kernel answers the probes whatever its program does. Bytes sent
 * and not acknowledged for FERRY_XFER_UNACKED_S seconds fail it too (TCP_USER_TIMEOUT; also a
 * receive window that stays shut that long: a reader stuck for 30 s is as good as gone). */
#define FERRY_XFER_UNACKED_S 30
#define FERRY_XFER_KEEPIDLE 5
#define FERRY_XFER_KEEPINTVL 2
#define FERRY_XFER_KEEPCNT 5
void ferry_xfer_tune_socket(int sk);

/* The keys of one session, one for each direction. */
struct ferry_xfer_keys {
	unsigned char s2r[FERRY_CHANNEL_KEY]; /* sender (or client) to receiver (server) */
	unsigned char r2s[FERRY_CHANNEL_KEY];
};

/* Handshake, receiver side: sends its nonce, checks the sender's proof and uid (must equal
 * @uid), answers with its own proof, and derives the session's keys into @ret_keys (when not
 * NULL). @timeout bounds each read, in seconds. */
int ferry_xfer_accept(int sk, const unsigned char *key, size_t keylen, uid_t uid, unsigned timeout,
		      struct ferry_xfer_keys *ret_keys, struct ferry_error **err);
/* Handshake, sender side. */
int ferry_xfer_connect(int sk, const unsigned char *key, size_t keylen, uid_t uid, unsigned timeout,
		       struct ferry_xfer_keys *ret_keys, struct ferry_error **err);

/* Receiver on a listening socket: accepts connections until one completes the handshake, so
 * that whoever connects first (and sends nothing, or garbage, or connects again and again)
 * cannot fail the transfer: up to 16 connections side by side, each given
 * FERRY_XFER_HELLO_TIMEOUT seconds to prove the key (when all are taken, the oldest of the
 * host holding the most goes: ferry_xfer_peer_host_local, ferry_xfer_victim), as many in all as arrive within @total seconds. Returns the
 * connected socket. */
#define FERRY_XFER_HELLO_TIMEOUT 5
/* How long a receiver listening on --page-server (ferry-relay) waits for a sender to connect at
 * all (the CLI's old wait): nothing moves meanwhile, so this is an idle bound. */
#define FERRY_XFER_LISTEN_S 600
int ferry_xfer_accept_listen(int ls, const unsigned char *key, size_t keylen, uid_t uid, unsigned total,
			     struct ferry_xfer_keys *ret_keys, struct ferry_error **err);
/* The host of @sk's peer, for counting a host's connections: the family, then 4 or 16 bytes
 * (zero for a unix socket). One host is one IPv4 address, all of 127/8 and ::1 (this node: a
 * local user may bind any of them), or an IPv6 /64 (one host may have all of it). */
#define FERRY_XFER_HOST_LEN 17
void ferry_xfer_peer_host(int sk, unsigned char ret[FERRY_XFER_HOST_LEN]);
/* The same for a listening receiver (xfer_peer.c): a peer that is a live TCP socket of this node
 * (in the caller's network namespace: from 127/8, ::1 or any address of the node's) is the
 * user who owns it, {FERRY_XFER_HOST_UID, uid little-endian}, so that every local user is a host
 * of their own; any other peer, or when the kernel does not say, is its address as above. */
#define FERRY_XFER_HOST_UID 0xff
void ferry_xfer_peer_host_local(int sk, unsigned char ret[FERRY_XFER_HOST_LEN]);
/* The uid owning the local socket at the other end of @sk (one exact NETLINK_SOCK_DIAG lookup):
 * 0, or a negative errno (-ENOENT, -ESRCH: none such; a remote peer has none). */
int ferry_xfer_peer_uid(int sk, uid_t *ret_uid);
/* Reads the kernel's answer @buf (@len bytes) to the lookup @seq of the socket @want (of
 * @family): the uid of a connected socket that is exactly @want, or a negative errno (the
 * kernel's error, -ESRCH for another socket, -ENOENT for a listening or TIME_WAIT one,
 * -EBADMSG for anything malformed). */
struct inet_diag_sockid;
int ferry_xfer_diag_uid(const void *buf, size_t len, uint32_t seq, int family,
			const struct inet_diag_sockid *want, uid_t *ret_uid);

/* A connection in the handshake, as ferry_xfer_victim sees it. */
struct ferry_xfer_slot {
	long long deadline; /* the older the connection, the earlier */
	unsigned char host[FERRY_XFER_HOST_LEN];
};
/* Of @n (> 0) connections in the handshake, all slots taken, the index of the one to drop for a
 * new one: the oldest of the host that holds the most, of the host whose oldest is older on a
 * tie. A flood from one host pushes out its own connections first, and one from many hosts
 * pushes out the oldest: a sender, which answers within a round trip, is among the newest. */
size_t ferry_xfer_victim(const struct ferry_xfer_slot *s, size_t n);

/* The channels of a session, and its record types: data of channel N is type N, its end
 * FERRY_XFER_END + N, the end of the session FERRY_XFER_FIN. PAGES: the dump's page server
 * stream; FILES: ferry-xfer's archive of the other images; CTL: the verdict and the commit;
 * LAZY: post-copy (--mode live), the destination's lazy-pages daemon asking the source's
 * CRIU for pages and getting them, both ways (unused, it just ends, in the other modes). */
enum { FERRY_XFER_PAGES, FERRY_XFER_FILES, FERRY_XFER_CTL, FERRY_XFER_LAZY, FERRY_XFER_NCHAN };
#define FERRY_XFER_END 0x10
#define FERRY_XFER_ZDATA 0x30 /* + N: data of channel N, one zstd frame (PAGES and LAZY only) */
#define FERRY_XFER_FIN 0x7f
/* 0x20 to 0x2f: no session's, the daemons' own records (ferryd's link, src/ferryd/ferryd.h), which
 * follow a session on a connection ferryd lent it. A session that meets one stops before it,
 * leaving it unread: the peer's session was cut on its side and its daemon says why. */
#define FERRY_XFER_DAEMON_MIN 0x20
#define FERRY_XFER_DAEMON_MAX 0x2f

struct ferry_xfer_zstats {
	uint64_t plain; /* bytes of the pages channels (PAGES, LAZY) this side sent */
	uint64_t sent; /* what they took in records (compressed or not; headers and tags aside) */
};
/* What ferry-relay counts in the memfd it shares with its starter. */
struct ferry_xfer_counts {
	uint64_t moved;
	struct ferry_xfer_zstats pages;
};
struct ferry_xfer_relay_opts {
	uint64_t *moved;
	/* compress the pages channels this side sends where it pays (xfer_relay.c); the receiving
	 * side takes compressed records whatever this says */
	bool compress;
	struct ferry_xfer_zstats *zstats; /* counted as they go (shared memory, may be NULL) */
	/* the connection is a ferryd's, lent for the session: a record of its daemon's
	 * (FERRY_XFER_DAEMON_MIN..MAX) ends the session unread. Otherwise (a --page-server
	 * connection of the user's) there is no daemon, and every record is the session's */
	bool daemon_lent;
};

/* Relays between the peer on @sk (records) and local plaintext sockets, one a channel:
 * what can be read from local[N] goes to the peer as channel N (its end of file as END), what
 * the peer sends on channel N is written to local[N] (its END shuts local[N] for writing; a
 * local end that does not take data any more has the rest discarded). Returns 0 once both
 * sides have sent FIN; on any failure (authentication, protocol, the peer gone) an error,
 * with threads possibly still blocked: the caller must then exit. The relay has no time limit
 * of its own: a session may be quiet while either side works (a restore); @o->moved (shared
 * memory, may be NULL) counts the bytes of every record sent or received, so that whoever
 * waits on the transfer can give up when nothing has moved for its idle limit, never because
 * a transfer that still moves is long. @o may be NULL: no count, no compression. */
int ferry_xfer_relay(int sk, bool receiver, const struct ferry_xfer_keys *keys,
		     const int local[FERRY_XFER_NCHAN], const struct ferry_xfer_relay_opts *o,
		     struct ferry_error **err);

/* The proof of one side of a handshake: HMAC-SHA256(@key, @role || @nr || @ns || @uid) (the
 * receiver's and the sender's nonces, the uid little-endian) into @out. */
int ferry_xfer_proof(const unsigned char *key, size_t keylen, const char *role, const unsigned char *nr,
		     const unsigned char *ns, uint32_t uid, unsigned char out[32], struct ferry_error **err);
#define FERRY_PEER_ROLE_CLIENT "ferry-peer-1 client"
#define FERRY_PEER_ROLE_SERVER "ferry-peer-1 server"

/* The same mutual proof between two ferryd (control connections), under other role names, and
 * the keys of the records that follow it (src/ferryd/link.c): HKDF as for a transfer, over both
 * nonces, both roles and uid 0. ferry_peer_keys: the server's side of them, for ferryd's loop,
 * which runs the handshake itself. */
int ferry_peer_accept(int sk, const unsigned char *key, size_t keylen, unsigned timeout,
		      struct ferry_xfer_keys *ret_keys, struct ferry_error **err);
int ferry_peer_connect(int sk, const unsigned char *key, size_t keylen, unsigned timeout,
		       struct ferry_xfer_keys *ret_keys, struct ferry_error **err);
int ferry_peer_keys(const unsigned char *key, size_t keylen, const unsigned char *nr, const unsigned char *ns,
		    struct ferry_xfer_keys *ret_keys, struct ferry_error **err);

/* Sender: the named files of @dirfd, then the manifest text, as one zstd-compressed tar
 * (libarchive) in chunks (u32 length, bytes; a zero length ends it). */
int ferry_xfer_send_files(int sk, int dirfd, char *const *names, size_t n, const char *manifest, size_t mlen,
			  struct ferry_error **err);
/* The same, with the files (the manifest last, under its name) handed over one a message on
 * the SOCK_SEQPACKET socket @src: the name as the message, the open file as SCM_RIGHTS. The
 * sender of @src may be more privileged than we are: it opens, we only read. */
int ferry_xfer_send_passed(int sk, int src, struct ferry_error **err);
/* Hands one file to ferry_xfer_send_passed over @src. */
int ferry_xfer_pass_file(int src, const char *name, int fd, struct ferry_error **err);

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
/* What follows an 'N' (its message): -EREMOTEIO with it, or another error. */
int ferry_xfer_read_refusal(int sk, unsigned timeout, struct ferry_error **err);

#endif
