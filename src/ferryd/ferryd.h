/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ferryd.h — the migration daemon, one per node (docs/protocol.md).
 *
 * It does nothing for a user by itself: it learns who asks from SO_PEERCRED (local clients) or
 * from an authenticated peer daemon (the cluster key), and then runs the setuid ferry-starter
 * under that user's real uid, so the starter's checks guard migrations as they guard the CLI. */
#ifndef FERRYD_H
#define FERRYD_H

#include <pthread.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "channel.h"
#include "config.h"
#include "error.h"
#include "names.h"
#include "proto.h"
#include "request.h"
#include "xfer.h"

#define FERRYD_SOCKET_NAME "ferry/ferryd" /* abstract unix socket: one per network namespace */
#define FERRYD_MAX_PEERS 64

/* Limits (compiled in; docs/man/ferryd.8). A connection is served by a forked handler only once
 * it is authenticated: local clients by SO_PEERCRED at accept, peers once they proved the
 * cluster key in the handshake, which runs in the main loop (loop.c). */
#define FERRYD_MAX_CONNS 64 /* handlers at once, local clients and peers together */
/* handlers at once for one user: local clients (SO_PEERCRED uid) and the requests peers make for
 * them (the uid their first message names, ferryd_peer_claim) together */
#define FERRYD_MAX_PER_USER 16
#define FERRYD_MAX_PENDING 64 /* peers in the handshake at once (the oldest is dropped) */
#define FERRYD_AUTH_TIMEOUT 5 /* seconds a peer has to complete the handshake */
#define FERRYD_CLAIM_TIMEOUT 5 /* seconds a peer's handler waits for the loop's count of its user */
#define FERRYD_REQUEST_TIMEOUT 10 /* seconds a local client has to send its request */
#define FERRYD_EMPTY_S 20 /* seconds a process of the user's has to empty a migration's directory */
#define FERRYD_LISTEN_BACKLOG 1024 /* the kernel holds a burst of connects until the loop takes them */

struct ferryd_peer {
	char *name;
	char *addr; /* HOST:PORT */
};

/* What this node's CRIU is (fit.c, learned at start and at a reload): its version ("4.2.1"),
 * why 'criu check' fails (empty: it passes), 'criu cpuinfo dump's image of this CPU, and
 * whether 'criu cpuinfo check' passes that image here (a source that sends the same bytes,
 * the same CPU as CRIU sees it, then needs no check of its own). */
#define FERRYD_CPUINFO_MAX 4096
struct ferryd_criu {
	char version[32];
	char check[512];
	char lazy[512]; /* why this node cannot take a live migration (empty: it can) */
	unsigned char cpuinfo[FERRYD_CPUINFO_MAX];
	uint32_t cpuinfo_len;
	bool cpuinfo_self_ok;
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
	int jfd; /* the journal's directory (journal.h) */
	pid_t reconciler; /* its process (reconcile.c), which a reload tells to reload too */
	int argc; /* the command line, over ferry.conf again at a reload */
	char **argv;
	struct ferryd_criu criu;
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
/* In a child of ferryd: becomes @u for good (groups, every uid and gid; getting root back
 * fails). 0, or -1: the child must exit without doing anything. */
int ferryd_become_user(const struct ferryd_user *u);
/* @req encoded in a memfd at offset 0 (close-on-exec), for a starter's fd 3; or -errno. */
int ferryd_request_memfd(const struct ferry_request *req, struct ferry_error **err);
/* Runs ferry-starter as @u with @req (and @sock as fd 4 when >= 0); its stdout in *ret_out. */
int ferryd_run_starter(const struct ferryd *d, const struct ferryd_user *u, const struct ferry_request *req,
		       int sock, char **ret_out, struct ferry_error **err);
/* The same, with @decision (>= 0, with @sock) as its fd 5: the source's decision (journal.h). */
int ferryd_run_starter_decision(const struct ferryd *d, const struct ferryd_user *u,
				const struct ferry_request *req, int sock, int decision, char **ret_out,
				struct ferry_error **err);
#define FERRYD_STARTER FERRY_LIBEXECDIR "/ferry-starter"
/* @len bytes in a memfd at offset 0 (a starter's request on fd 3). */
int ferryd_bytes_memfd(const void *buf, size_t len, struct ferry_error **err);
struct ferry_spawn_opts;
/* ferry-starter, as @u, with @o (its fds and captures; the user and a timeout of
 * ferry_config_starter_wait, 2 'criu timeout' + 2 'peer timeout', are set here): ferry_spawn's
 * result. */
int ferryd_spawn_starter(const struct ferryd *d, const struct ferryd_user *u, struct ferry_spawn_opts *o,
			 int *ret_status, struct ferry_error **err);
/* The value of @key in a starter's "timing k=v ..." line (0 when there is none). */
long long ferryd_timing(const char *out, const char *key);

/* link.c — the connection between two ferryd after the peer handshake: nothing but AES-256-GCM
 * records (channel.h) under the keys that the handshake derived (ferry_peer_keys), one key and
 * direction the client's (the source), one the server's. A record of type FERRYD_REC_MSG holds
 * one message (proto.h, without its length), FERRYD_REC_CTL bytes of the destination starter's
 * verdict or the source's commit (default mode). A record is authenticated before anything of
 * it is parsed, and is at most FERRY_CHANNEL_MAX bytes (a message at most FERRY_PROTO_MAX). In
 * diskless mode the starters' own session runs on the same socket between two records. */
#define FERRYD_REC_MSG 0x20
#define FERRYD_REC_CTL 0x21
#define FERRYD_REC_PING 0x22 /* empty: "still working" while a starter dumps or restores */
_Static_assert(FERRYD_REC_MSG >= FERRY_XFER_DAEMON_MIN && FERRYD_REC_PING <= FERRY_XFER_DAEMON_MAX,
	       "a session on the link stops before the daemon's records (xfer.h)");
#define FERRYD_CONNECT_TIMEOUT 10 /* seconds for a peer to answer a connect */
#define FERRYD_KEEPALIVE_S 2 /* a working daemon's keepalive period */
/* A peer's answer is waited for 'peer timeout' s of silence (ferry.conf(5)): a working peer's
 * keepalives come at least three times within it. */
_Static_assert(FERRY_PEER_TIMEOUT_MIN >= 3 * FERRYD_KEEPALIVE_S, "keepalives within 'peer timeout'");

struct ferryd_link {
	int fd;
	struct ferry_channel in, out;
	unsigned char *buf; /* one record (FERRY_CHANNEL_BUF) */
	struct ferry_msg stash; /* a message that came where a verdict was awaited */
	bool stashed;
};
/* @server: this end accepted the connection (the destination). */
int ferryd_link_open(struct ferryd_link *l, int fd, const struct ferry_xfer_keys *keys, bool server,
		     struct ferry_error **err);
/* A TCP connection to the peer at HOST:PORT @addr within @timeout seconds (a peer whose node or
 * link is down answers nothing: it is unreachable then, not minutes later), tuned
 * (ferry_xfer_tune_socket). */
int ferryd_connect(const char *addr, unsigned timeout, struct ferry_error **err);
void ferryd_link_close(struct ferryd_link *l); /* wipes the keys; the fd stays open */
int ferryd_link_send(struct ferryd_link *l, const struct ferry_msg *m, struct ferry_error **err);
/* One message; @timeout in seconds for each read: a limit on idleness, since the peer's
 * keepalives (FERRYD_REC_PING) are read and skipped. */
int ferryd_link_recv(struct ferryd_link *l, unsigned timeout, struct ferry_msg *ret,
		     struct ferry_error **err);
/* A type=error message (with @id when not NULL) on @l, or on the plain socket @sk when @l is NULL. */
void ferryd_send_error(int sk, struct ferryd_link *l, const char *id, const char *fmt, ...) _printf_(4, 5);
/* Source, default mode: the destination starter's verdict (as ferry_xfer_read_verdict), and
 * the commit that answers an 'A'. */
int ferryd_link_read_verdict(struct ferryd_link *l, unsigned timeout, struct ferry_error **err);
int ferryd_link_send_commit(struct ferryd_link *l, struct ferry_error **err);
/* Destination, default mode: the starter gets one end of a socket pair as its connection
 * (*ret_starter_end), and a thread seals what it writes (its verdict) into FERRYD_REC_CTL
 * records and writes the source's FERRYD_REC_CTL records (the commit) to it, with a keepalive
 * when nothing went for FERRYD_KEEPALIVE_S seconds (the starter restores), until
 * ferryd_ctl_stop, which the caller calls once the starter has ended (and before it uses the
 * link again). */
/* A keepalive every FERRYD_KEEPALIVE_S seconds on @l from a thread, while this side's starter
 * works and nothing else is sent on the link (default mode's dump); the peer's waits are then
 * limits on idleness (a long dump is not a dead peer). */
struct ferryd_keepalive {
	struct ferryd_link *l;
	int stop[2];
	bool running;
	pthread_t thread;
};
int ferryd_link_ping(struct ferryd_link *l, struct ferry_error **err);
void ferryd_keepalive_start(struct ferryd_keepalive *k, struct ferryd_link *l);
void ferryd_keepalive_stop(struct ferryd_keepalive *k);
struct ferryd_ctl {
	struct ferryd_link *l;
	unsigned timeout; /* s: for the rest of a record once its first bytes came ('peer timeout') */
	int local;
	int wake[2];
	bool running;
	pthread_t thread;
};
int ferryd_ctl_start(struct ferryd_ctl *c, struct ferryd_link *l, unsigned timeout, int *ret_starter_end,
		     struct ferry_error **err);
void ferryd_ctl_stop(struct ferryd_ctl *c);

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
 * a process that is the user the rest, within FERRYD_EMPTY_S); logs what it cannot remove. 0 when
 * it is gone, -ETIMEDOUT when the rest ran out of that time (the caller tries again later, its
 * record kept), else -errno. */
int ferryd_leaf_remove(struct ferryd *d, const struct ferryd_user *u, struct ferryd_leaf *l, const char *id);
void ferryd_leaf_close(struct ferryd_leaf *l);
/* ferryd_leaf_remove, then whether the leaf is gone (a guard may still clean up in it: its
 * migration's record then stays for the reconciler, which removes it later). */
bool ferryd_leaf_remove_all(struct ferryd *d, const struct ferryd_user *u, struct ferryd_leaf *l,
			    const char *id);
/* An existing leaf, BASE/<uid>/<leaf>, reopened (the reconciler's; -ENOENT when it is gone). */
int ferryd_leaf_open(const char *base, const struct ferryd_user *u, const char *leaf, const char *id,
		     struct ferryd_leaf *ret, struct ferry_error **err);

/* loop.c: SIGHUP makes the loop call ferryd_reload (main.c) between two connections: ferry.conf
 * and the cluster key are read again, the command line applied over them again; a file that
 * does not load keeps the configuration in use, with one line in the log that says why.
 * Handlers already running keep what they started with; the reconciler (reconcile.c) is told
 * and reloads too, @quiet (the main process said it). */
_noreturn_ void ferryd_loop(struct ferryd *d, int ux, int px, int tcp);
/* In a peer's handler, once the peer named the user it acts for: 0 when the loop counted this
 * handler for @uid, -EUSERS when @uid has FERRYD_MAX_PER_USER handlers already (local clients
 * and peers' requests together), else -errno (no answer from the loop). The user's other
 * handlers in *@ret_mine. */
int ferryd_peer_claim(uid_t uid, unsigned *ret_mine);
void ferryd_reload(struct ferryd *d, bool quiet);

/* ask.c — a local client's request. The root handler never reads nor parses a byte of it: a
 * child that is the client for good (ferry_privs_drop to the SO_PEERCRED user, no capability,
 * no_new_privs, the cluster key wiped) reads it, parses it (proto.c) and checks it, and sends
 * the handler this fixed-layout answer over a socket pair. The handler counts it only from a
 * child that exited 0, and checks it again: each array NUL-terminated inside itself, the flags
 * 0 or 1, the request's rules (ferryd_check_request) once more. */
#define FERRYD_ASK_MAGIC 0x31534b41u /* "AKS1" */
#define FERRYD_NODE_MAX 255 /* a node name the client may give (longer ones name no peer) */
#define FERRYD_ASK_MESSAGE_MAX 1024

/* A migration's mode: default (through the shared directory), diskless (the starters' session:
 * pages, then the rest, then the restore) or live (the same session, post-copy: the rest, the
 * restore, then the pages). */
enum ferryd_mode { FERRYD_MODE_DEFAULT, FERRYD_MODE_DISKLESS, FERRYD_MODE_LIVE, FERRYD_MODE_N_ };
/* "default", "diskless", "live"; and back (-1: none of them). */
const char *ferryd_mode_name(enum ferryd_mode m);
int ferryd_mode_of(const char *name);

/* What a client asks: a migration, to hold a group member's dump on a peer (hold.c), to start an
 * instance on a peer (start.c, or to list the user's instances there), or the nodes it knows. */
enum ferryd_kind { FERRYD_ASK_MIGRATE, FERRYD_ASK_HOLD, FERRYD_ASK_START, FERRYD_ASK_PEERS, FERRYD_ASK_N_ };

struct ferryd_ask {
	uint32_t magic;
	uint32_t size; /* sizeof(struct ferryd_ask) */
	uint32_t refused; /* 1: @message says why (one line, for the client) */
	uint32_t kind; /* enum ferryd_kind */
	uint32_t mode; /* enum ferryd_mode (a migration's) */
	uint32_t leave; /* a hold's: 1 when the member goes on after the group's checkpoint */
	char instance[FERRY_NAME_MAX + 1];
	char to[FERRYD_NODE_MAX + 1];
	char message[FERRYD_ASK_MESSAGE_MAX];
	uint32_t here; /* a start's: 1 when it is on this node (the launcher agent's) */
	uint32_t made; /* a launch's: 1 when its reader made the checkpoint directory */
	char group[FERRY_GROUP_ID_LEN + 8]; /* a hold's: the group's cut, "ID/N" (names.h), or "" */
	uint32_t req_len; /* a start's: its encoded request (request.h), 0 for the others */
	unsigned char req[FERRY_PROTO_BLOB_MAX];
};

/* The request of the client on @sk (user @u), read and checked as above, into *ret; its peer's
 * address in *ret_addr. -1 when there is none: the client was told why, in one line. */
int ferryd_ask_fetch(struct ferryd *d, int sk, const struct ferryd_user *u, struct ferryd_ask *ret,
		     const char **ret_addr);
/* The rules of a migrate request: an instance name, a mode, a known node that is not this one.
 * The peer's address, or NULL with the client's one-line reason in @why. */
const char *ferryd_check_request(const struct ferryd *d, const char *name, const char *to, const char *mode,
				 char *why, size_t n);

/* Runs @fn(@arg, @ans) in a child that is @u for good, as the request's reader is (the cluster
 * key wiped, nothing open but @keep when >= 0, stdio on /dev/null, ids and groups, no capability,
 * no_new_privs, named @comm), and takes exactly @size bytes of answer into @ans within
 * @deadline seconds from a child that exited 0 (an @fn < 0 exits 1). The caller checks the
 * answer as if anyone had written it. Else -ETIMEDOUT, -ECHILD (how the child ended: "was killed
 * by signal 9"), -EPIPE (a cut answer) or the errno of fork. */
/* Whether a fixed-size char array of such an answer is NUL-terminated inside itself. */
static inline bool ferryd_nul_inside(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}
int ferryd_as_user(struct ferryd *d, const struct ferryd_user *u, const char *comm, int keep,
		   int (*fn)(void *arg, void *ans), void *arg, void *ans, size_t size, unsigned deadline,
		   struct ferry_error **err);

/* fit.c — whether an instance fits the destination, asked before anything of it stops. The
 * source learns what the destination must have (ferryd_fit_probe): the instance's image and its
 * fingerprint, its networks, address and MAC, and its memory; the destination checks them
 * (ferryd_fit_check) and refuses with one line. */
#define FERRYD_FIT_MAGIC 0x31544946u /* "FIT1" */
struct ferryd_fit {
	uint32_t magic;
	uint32_t size;
	uint64_t mem; /* bytes: the resident and swapped memory of the instance's processes */
	char image[4096];
	char fingerprint[128];
	char networks[512];
	char ip[64];
	char mac[32];
	char gw[64]; /* the gateway the user chose, if any */
	uint32_t ipam; /* FERRY_REQ_NET_IPAM_IP / _MAC: the network's IPAM chose the ip / mac */
	char message[512]; /* the probe's one-line reason, when it found no such instance */
	/* the source's CRIU (not the probe's: the source fills them in) */
	char criu_version[32];
	uint32_t cpuinfo_len;
	unsigned char cpuinfo[FERRYD_CPUINFO_MAX];
};
/* Learns this node's CRIU facts into d->criu (logged). */
void ferryd_criu_learn(struct ferryd *d);
int ferryd_fit_probe(struct ferryd *d, const struct ferryd_user *u, const char *name, struct ferryd_fit *ret,
		     struct ferry_error **err);
/* On the source, live mode: 0 when this node can serve the instance's pages (its pipe limits),
 * else the one-line reason. */
int ferryd_fit_live_source(const struct ferryd *d, const struct ferryd_fit *f, struct ferry_error **err);
/* The fields of the prepare message, set from and read into a fit. */
void ferryd_fit_put(struct ferry_msg *m, const struct ferryd_fit *f);
int ferryd_fit_get(const struct ferry_msg *m, struct ferryd_fit *ret, struct ferry_error **err);
/* On the destination: 0 when the instance fits here, else the one-line reason in *err. */
int ferryd_fit_check(struct ferryd *d, const struct ferryd_user *u, enum ferryd_mode mode,
		     const struct ferryd_fit *f, struct ferry_error **err);

/* report.c — the report's times (see there): instants on the source's monotonic clock,
 * durations measured by the destination on its own. */
struct ferryd_times {
	bool diskless; /* or live */
	bool live;
	bool dest_reported; /* the destination's "done" (its durations) arrived */
	long long t0, t_conn, t_ready, t_end; /* ferryd: asked, connected, ready, report */
	long long freeze, dumped, sdone; /* its starter: frozen, dumped, done (diskless: committed) */
	long long t_heard; /* heard that the destination runs it (default: the verdict; diskless: sdone) */
	long long rtt; /* a round trip to the destination, measured at "prepare" */
	long long d_restore_ms; /* the destination's: received (default: started) to restored */
	long long d_postcopy_ms; /* live, the destination's: restored to its last page */
};
struct ferryd_phases {
	long long request, prepare, dump, transfer, sync, restore, total, downtime, postcopy;
};
void ferryd_phases_of(const struct ferryd_times *t, struct ferryd_phases *ret);

/* migrate.c: the source of a migration, for a local client */
void ferryd_handle_client(struct ferryd *d, int sk);
/* A TCP connection to the peer at @addr that proved the cluster key, and the link's keys. */
int ferryd_connect_peer(const struct ferryd *d, const char *addr, struct ferry_xfer_keys *keys,
			struct ferry_error **err);
char *ferryd_new_id(void);

/* hold.c — a member of a group checkpoint (ferry checkpoint group NODE:INSTANCE) on a peer: the
 * client's ferryd relays between the client and the peer, whose ferryd runs the member's dump
 * (a starter with FERRY_REQ_HOLD, as the user) and relays its "held", the group's word and its
 * end. ferryd_hold_client: this side, for the local client whose request (@ask, read by ask.c)
 * names the peer at @addr; ferryd_hold_serve: the peer's side, for the "hold" message @m. */
void ferryd_hold_client(struct ferryd *d, int sk, const struct ferryd_user *u, const struct ferryd_ask *ask,
			const char *addr);
void ferryd_hold_serve(struct ferryd *d, struct ferryd_link *l, const struct ferry_msg *m);
/* The user a peer's @what message ("hold", "start", "prepare") acts for: its "id" well formed,
 * its "uid" that of a user here whose name is its "user" (the nodes must agree on who uid N is),
 * into *@u, and this handler counted for them (ferryd_peer_claim). -1 (the peer told why) when
 * not: a user with FERRYD_MAX_PER_USER handlers here already is told to wait for them. */
int ferryd_peer_user(const struct ferryd *d, struct ferryd_link *l, const struct ferry_msg *m,
		     const char *what, struct ferryd_user *u);
/* A link to the peer @to at @addr (ferryd_connect_peer, ferryd_link_open) for the client on @sk,
 * who is told why ("TO: ...") when there is none (-1). */
int ferryd_peer_open(struct ferryd *d, const char *to, const char *addr, struct ferryd_link *peer, int sk,
		     const char *id);
/* The peer's next message (its pings skipped), of one of @types (NULL-terminated) or "error":
 * its type, malloc'ed, and the message in *@ret (the caller's to clear and to pass on to the
 * client on @sk); an "error" is passed on here ("on NODE @to: ..."), *@ret left empty; NULL (the
 * client told why) when there was none or of another type. */
char *ferryd_peer_next(struct ferryd_link *peer, int sk, unsigned timeout, const char *to, const char *id,
		       const char *const *types, struct ferry_msg *ret);
/* ferryd_peer_next, the message forwarded to the client as it is. Its "status" (0 to 255) in
 * *@ret_status when asked for, else -1. */
char *ferryd_relay_peer(struct ferryd_link *peer, int sk, unsigned timeout, const char *to, const char *id,
			const char *const *types, int *ret_status);

/* start.c — ferry instance start --node NODE: the client's ferryd sends the request's bytes,
 * as its reader took them, in a sealed "start" message; the peer's ferryd has them read and
 * checked again by a child that is the user for good, and runs ferry-starter as the user with
 * them; its status, stdout and stderr go back ("done"). ferryd_start_take: the request of a
 * message's "req" fields, checked as a remote start's (in a child that is the user: it parses);
 * the instance's name in @name. */
int ferryd_start_take(const struct ferry_msg *m, struct ferryd_ask *a, char *why, size_t n);
void ferryd_start_client(struct ferryd *d, int sk, const struct ferryd_user *u, const struct ferryd_ask *ask,
			 const char *addr);
/* A launch whose start failed: the checkpoint directory its reader made is removed, by a child
 * that is @u for good, while it is empty (ask.c). */
void ferryd_launch_tidy(struct ferryd *d, const struct ferryd_user *u, const struct ferryd_ask *a,
			const char *id);
void ferryd_start_serve(struct ferryd *d, struct ferryd_link *l, const struct ferry_msg *m);
/* limits.c: the limits of a start ferryd runs (RLIM_NLIMITS of them), each no higher than
 * ferryd's own hard limit: those of the client's process on @sk, which must be @uid's alone
 * (ferryd_client_limits), or of a start message's 'limits' field, "SOFT:HARD,..." in resource
 * order, "inf" for none (format, parse). */
#define FERRYD_LIMITS_MAX (RLIM_NLIMITS * 42)
int ferryd_client_limits(int sk, uid_t uid, struct rlimit *ret, struct ferry_error **err);
void ferryd_limits_format(const struct rlimit *l, char *buf, size_t size);
int ferryd_limits_parse(const char *s, struct rlimit *ret, struct ferry_error **err);
/* receive.c: the destination, for a peer that proved the cluster key; @keys: the link's */
void ferryd_handle_peer(struct ferryd *d, int sk, const struct ferry_xfer_keys *keys);

#endif
