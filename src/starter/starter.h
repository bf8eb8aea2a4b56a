/* SPDX-License-Identifier: GPL-2.0-or-later */
/* starter.h — ferry-starter, the setuid-root part of ferry. See docs/security.md. */
#ifndef FERRY_STARTER_H
#define FERRY_STARTER_H

#include <sched.h>
#include <sys/types.h>

#include "config.h"
#include "error.h"
#include "manifest.h"
#include "net.h"

#include "image.h"
#include "privs.h"
#include "instance.h"
#include "request.h"

/* The session directory every container builds its rootfs in. Each container mounts a fresh
 * tmpfs over it inside its own mount namespace, so containers never see each other's. */
#define STARTER_STAGE FERRY_STATEDIR "/mnt"
#define STARTER_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* A mount the container gets: a host object opened (as the user) before any privilege is
 * used, so what is mounted is what the policy checked, whatever happens to the path later. */
struct mount_req {
	int fd; /* O_PATH fd of the source, or -1 for a fresh tmpfs */
	int tree; /* detached clone of the source's mount tree (see container_clone_trees) */
	char *src; /* resolved host path (for messages) */
	char *dst; /* absolute path inside the container */
	bool ro;
	bool is_dir;
	bool internal; /* ferry's own (logs, CRIU bundle, ferryd): attached before the others */
};

/* The request's mount sources on the root side: the plan's fds, in order (the current directory
 * first when cwd_bound, then one a bind); each taken is set to -1. */
struct mount_fds {
	int *fd;
	size_t n, next;
	bool cwd_bound;
};

struct starter {
	struct ferry_privs privs;
	struct ferry_config *cfg;
	struct ferry_request *req;
	char *user; /* from the passwd entry of the real uid, never from the request */
	char *home; /* idem; NULL when the user has no usable home */
	int image_fd;
	int image_tree; /* detached clone of a directory image */
	struct ferry_image_info image;
	struct mount_req *mounts;
	size_t n_mounts;
	bool instance; /* INSTANCE_START: init gets its own session and idles without argv */
	int log_out, log_err; /* instance logs, opened as the user */
	/* an instance's stdin (the container's /dev/null), stdout and stderr (its logs through their
	 * mounts in the container), opened by container_setup before any user mount is attached */
	int stdio[3];
	char *log_out_path, *log_err_path;
	bool criu; /* a checkpointable instance (launched or restarted) */
	int ckpt_fd; /* its checkpoint directory, opened as the user */
	int restore_fd; /* restart: the verified generation directory */
	/* a checkpointable launch: the container's ns_last_pid, opened before /proc/sys became
	 * read-only (see container_setup), written by init (see starter.h's STARTER_WORKLOAD_PID) */
	int ns_last_pid_fd;
	struct ferry_manifest *manifest; /* restart: its verified manifest */
	/* restart: its page images (opened, sizes checked), hashed while CRIU restores and
	 * compared before any restored process runs (see verify_files) */
	struct restore_page_file {
		int fd;
		const struct ferry_manifest_file *f;
	} * pages;
	size_t n_pages;
	char *sealed_manifest; /* a received checkpoint: the manifest this process just signed */
	char *image_fingerprint;
	int xfer_fd; /* --page-server: the connected socket the CLI passed on fd 4 */
	/* a migration's source: ferryd's decision file on fd 5 (root's regular file, open for
	 * writing). Diskless, the byte 'C' written there, durably, before the commit is sent, is the
	 * commit point (src/ferryd/journal.h); default mode, 'C' once the dump is published in the
	 * shared directory. Either way the dumped tree ends, should we die, only if it is there. */
	int decision_fd;
	/* a live migration's restart (FERRY_REQ_LAZY): CRIU's lazy-pages daemon, which serves the
	 * restored tree its memory from the source, and the read end of its report */
	bool lazy;
	pid_t lazy_pid;
	int lazy_rep;
	/* a diskless migration's restart from the generation this process received (not live):
	 * CRIU frees each page image's pages as it restores them (--auto-dedup), so the node does
	 * not hold the instance's memory twice; that generation is used up (see grant_dedup) */
	bool dedup;
	char **networks; /* --net: validated network names */
	struct ferry_net_args net_args; /* ... and what the user asked for */
	bool restore_net; /* --restore into an instance with its own network */
	/* a checkpointable instance without --net ('criu network = loopback'): its own network
	 * namespace with only lo, so that CRIU can keep its TCP connections (see monitor) */
	bool loopback_net;
	bool private_tmp; /* /tmp is the container's own tmpfs (plan_mounts): saved with checkpoints */
	struct mount_fds given; /* the plan's mount sources (see plan.h), until plan_mounts */
};
#define STARTER_XFER_FD 4
#define STARTER_DECISION_FD 5

/* The workload of a checkpointable instance gets a high pid (ns_last_pid is raised first), so
 * that at restore the pids it needs are free in the new container, whose init, restorer and
 * CRIU take the lowest ones. */
#define STARTER_WORKLOAD_PID 10000
/* Inside containers: the instance's log files and (checkpointable instances) CRIU. */
#define STARTER_FERRY_DIR "/.ferry" /* ferry's own mounts inside the container */
#define STARTER_STDOUT "/.ferry/stdout"
#define STARTER_STDERR "/.ferry/stderr"
#define STARTER_CRIU_BUNDLE FERRY_LIBEXECDIR "/criu"

/* container.c: in the host mount namespace, as root, before the namespaces are made: clones
 * the mount trees of the directory image and of every bind source (opened by the user) as
 * detached mounts, which the container then attaches in its own namespace. */
int container_clone_trees(struct starter *s, struct ferry_error **err);
/* container.c: in the child that is pid 1 of the new namespaces, as root. */
int container_setup(struct starter *s, struct ferry_error **err);
/* container.c: brings up lo, the only interface of a loopback-only network namespace (as root). */
int container_loopback_up(struct ferry_error **err);
/* loop.c */
int loop_attach(int file_fd, uint64_t offset, uint64_t size, int *ret_fd, struct ferry_error **err);
/* init.c: drops privileges for good, then runs as the container's init. Never returns.
 * @report is written an error line when the workload cannot be started. */
_noreturn_ void container_init(struct starter *s, int report);
/* init.c: every signal's disposition the default, none blocked (the starter's start, a workload's) */
void reset_signals(void);
/* init.c: runs argv in the current (container) namespaces after dropping privileges; writes
 * an error line to @report when exec fails. Never returns. */
_noreturn_ void exec_workload(struct starter *s, int report);
/* network.c: in the monitor, as root */
int network_attach(struct starter *s, pid_t pid, int *ret_netns_fd, struct ferry_net_attachment *atts,
		   size_t *ret_n, struct ferry_error **err);
void network_detach(struct starter *s, int netns_fd, struct ferry_net_attachment *atts, size_t n);
void network_announce(int netns_fd, const struct ferry_net_attachment *atts, size_t n);
/* While CRIU restores into the namespace @netns_fd (a namespace fd or a pidfd): a --net
 * instance's takes only lo and CRIU's own packets; a loopback-only one holds back every TCP
 * segment of a connection CRIU has not brought back yet. */
int network_restore_lock(struct starter *s, int netns_fd, bool loopback_only, struct ferry_error **err);
void network_restore_unlock(struct starter *s, int netns_fd, bool loopback_only);

/* The namespaces every container has (its own network only with --net, or loopback only). */
#define STARTER_NS_FLAGS (CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS)
/* monitor.c: fork into new namespaces (@flags, CLONE_NEW*): the child's 0, the pid, or -1. */
pid_t clone_ns(unsigned long flags);
/* records.c: the namespaces to join to act inside a running instance. */
int instance_ns_flags(const struct ferry_instance *inst);
/* checkpoint.c */

/* ckdir.c: the checkpoint directory, touched by root only through fds (see ckdir.c). */
/* Opens the checkpoint directory @path as the user, without magic links: it must be theirs, not
 * writable by others, and on a mount of our own mount namespace that is not FUSE. */
int checkpoint_open_dir(struct starter *s, const char *path, struct ferry_error **err);
/* Refuses an fd on a mount outside our mount namespace, or on FUSE; @what names it. */
int ckdir_check_mount(int fd, const char *what, struct ferry_error **err);
/* The id of the mount @fd is on (statx STATX_MNT_ID). */
int fd_mount_id(int fd, unsigned long long *ret);
/* openat2 of one name in @dirfd: no symlink, no magic link, no mount crossing; -1/errno. */
int ckdir_openat(int dirfd, const char *name, int flags, mode_t mode);
/* Removes @name in @dirfd and everything below it, never following a symlink and never crossing
 * a mount point (-EXDEV, nothing below it touched); -errno on failure. It descends only into
 * directories owned by root or by @uid (the caller), never into another user's (-EPERM, left
 * whole); with @same >= 0, only while @name is still the directory @same is open on (-ESTALE). */
int ckdir_rm_tree(int dirfd, const char *name, uid_t uid, int same);
/* Lets @uid (the owner of a checkpoint) read root's file or directory @fd, through a POSIX ACL;
 * nobody else gets any access. Without ACL support, only root can read it. */
int ckdir_grant_owner(int fd, uid_t uid, bool dir, struct ferry_error **err);
/* Lets @uid read and write root's file @fd (a page image CRIU frees as it restores: see
 * grant_dedup in checkpoint.c), through a POSIX ACL; nobody else gets any access. Its mode then
 * shows the grant (group rw: the ACL mask), and no restart takes the file for sealed again.
 * Without ACL support it fails. */
int ckdir_grant_owner_write(int fd, uid_t uid, struct ferry_error **err);
/* Restart: finds the current generation, verifies manifest, signature and every file, and turns
 * s->req into the launch request it records (with the restart's overrides). */
int checkpoint_prepare_restart(struct starter *s, struct ferry_error **err);
_noreturn_ void op_checkpoint_dump(struct starter *s);
_noreturn_ void op_checkpoint_delete(struct starter *s);
/* checkpoint instance --criu --restore: the instance's checkpoint, restored inside it. */
_noreturn_ void op_checkpoint_restore(struct starter *s);
/* Restart with --page-server: receives the pages (CRIU page server) and the rest of the
 * generation over s->xfer_fd, verifies it and publishes it into the checkpoint directory. */
int checkpoint_receive(struct starter *s, struct ferry_error **err);
/* Live, once the tree is restored: waits (as long as pages move) for the lazy-pages daemon to
 * end; 0 when it got every page, else the restored tree must not run on. */
int checkpoint_lazy_wait(struct starter *s, unsigned long long *ret_faults, unsigned long long *ret_pages,
			 struct ferry_error **err);
/* In the container, as root, before init drops privileges: the restorer process. Writes the
 * restored root's pid to @pid_fd, or an error line to @report. Never returns. */
_noreturn_ void run_restorer(struct starter *s, int report, int pid_fd);
/* records.c: instance records, /run/ferry/<uid>/<node>/<name>, root only */
int read_record(int dirfd, const char *name, struct ferry_instance **ret, struct ferry_error **err);
/* Pins the caller's running instance @name: verifies record, start time and uid; returns a pidfd. */
int pin_instance(struct starter *s, const char *name, struct ferry_instance **ret, struct ferry_error **err);
/* As root: the network namespace of @inst, pinned by pin_instance (@pidfd), as an fd for the
 * helpers that join it without ptrace rights on the instance (ferry-net): opened through /proc,
 * and the pidfd still alive after the open says it was the instance's init (no reused pid). */
int instance_netns(const struct ferry_instance *inst, int pidfd, struct ferry_error **err);
/* Reserves s->req->instance: creates its record exclusively (holding our pid), within the limit. */
int reserve_name(struct starter *s, int dirfd, struct ferry_error **err);
/* Opens (as the user, not truncated) the instance's logs in the user's home. */
int open_logs(struct starter *s, struct ferry_error **err);
/* The command for display in the record, at most about 1 KiB whatever the argv. */
char *join_argv(char **argv);
_noreturn_ void op_list(struct starter *s);

/* mounts.c */
/* @p is absolute, shorter than PATH_MAX and has no ".." component. */
bool path_clean(const char *p);
/* @path is @dir or below it. */
bool under(const char *path, const char *dir);
/* Fills s->mounts. In the plan child (@given NULL): opens the request's mount sources (current
 * directory, binds) by path, as the user, and checks them. On the root side: home and /tmp
 * (opened here, as the user), the request's sources from @given re-checked against the policy
 * from the fds themselves, then ferry's own mounts (logs, CRIU). */
int plan_mounts(struct starter *s, struct mount_fds *given, struct ferry_error **err);

/* monitor.c: the operations that run a container */
_noreturn_ void op_exec(struct starter *s);
_noreturn_ void op_instance_start(struct starter *s);
_noreturn_ void op_instance_join(struct starter *s);

/* ops.c: the starter's side of FERRY_OP_TABLE (request.h) */
typedef void starter_handler(struct starter *s); /* never returns */
struct starter_op {
	starter_handler *handler;
	bool image; /* prepared by the plan child: networks, image, mount sources */
};
/* The row of a checked request's op (never NULL for one). */
const struct starter_op *starter_op(uint32_t op);
/* The starter's checks of a request the op table accepted, in the plan child and again as
 * root: a page server has its connection, ferry is open to users, names are valid (a restart's
 * once its checkpoint gave the rest: starter_check_names). */
int starter_check_request(struct starter *s, struct ferry_error **err);
int starter_check_names(const struct ferry_request *req, struct ferry_error **err);
/* plan.c */
int check_hostname(const char *h, struct ferry_error **err);

/* report.c */
/* the peer of a --page-server transfer, told why when we fail */
extern int starter_verdict_fd;
/* "timing" lines for ferryd (FERRY_REQ_TIMINGS): when we started, received, restored */
extern bool starter_want_timings;
/* For ferryd (FERRY_REQ_TIMINGS): a "progress" line on stdout, at most one a second, while a long
 * step (a dump, a transfer) still moves: ferryd's limit on a starter is on idleness. */
void starter_progress(void);
extern long long starter_t_start, starter_t_received;
/* live: when the restored tree had every page */
extern long long starter_t_allin;
/* live: the lazy-pages daemon, which die() ends and reaps */
extern pid_t starter_lazy_pid;
char *read_report(int fd);
_noreturn_ void die_report(char *msg);
_noreturn_ void die(const char *fmt, ...) _printf_(1, 2);
_noreturn_ void die_error(struct ferry_error *err);
/* Writes "E <message>\n" to @fd (best effort). */
void report_error(int fd, struct ferry_error *err);

#define TRY(expr)                                                                                            \
	do {                                                                                                 \
		if ((expr) < 0)                                                                              \
			die_error(err);                                                                      \
	} while (0)

#endif
