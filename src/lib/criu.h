/* SPDX-License-Identifier: GPL-2.0-or-later */
/* criu.h — CRIU through libcriu (swrk mode: libcriu forks and execs the CRIU binary).
 *
 * libcriu and protobuf-c run only in ferry-criu (src/criu/), a helper of the bundle that the
 * starter execs inside the container after dropping to the user for good, with only the
 * capabilities the step needs (ambient: they pass on to CRIU, ferry-criu adds none). The
 * functions below run there, in a process that exists to run CRIU: its environment is replaced
 * by CRIU's own (criu_environment in criu.c). CRIU's log goes to @log in @work_fd; on failure
 * the message carries the log's last error lines. The starter itself uses only the constants
 * and ferry_criu_log_errors (criu_log.c, no libcriu). */
#ifndef FERRY_CRIU_H
#define FERRY_CRIU_H

#include <sys/types.h>

#include "error.h"

/* Inside every checkpointable container, the CRIU bundle (binary + its libraries, patched to
 * load them from here) is bound read-only at this path. */
#define FERRY_CRIU_DIR "/.ferry/criu"
#define FERRY_CRIU_BIN FERRY_CRIU_DIR "/criu"
/* CRIU's whole PATH: an empty directory of the bundle (see criu_environment in criu.c) */
#define FERRY_CRIU_PATH FERRY_CRIU_DIR "/bin"
/* "leave-stopped": the dumped tree stays frozen until ferry has published the checkpoint */
#define FERRY_CRIU_LEAVE_STOPPED FERRY_CRIU_DIR "/leave-stopped.conf"
/* dumps whose pages go through a connected socket at FERRY_CRIU_PS_FD */
#define FERRY_CRIU_PS_FD 200
#define FERRY_CRIU_PS_STOPPED FERRY_CRIU_DIR "/ps-stopped.conf"
#define FERRY_CRIU_PS_RUNNING FERRY_CRIU_DIR "/ps-running.conf"
/* live (post-copy) dumps: "lazy-pages", "ps-socket 200", "status-fd 201", "leave-stopped". The
 * pages stay with CRIU, which serves them on FERRY_CRIU_PS_FD to the destination's lazy-pages
 * daemon once the other images are written (a byte on FERRY_CRIU_STATUS_FD says so); the dump
 * returns when that daemon is done, or gone, with the tree stopped. */
#define FERRY_CRIU_LAZY_STOPPED FERRY_CRIU_DIR "/lazy-stopped.conf"
/* live restores: "lazy-pages": the restored tree's memory comes from the lazy-pages daemon */
#define FERRY_CRIU_LAZY_RESTORE FERRY_CRIU_DIR "/lazy-restore.conf"
#define FERRY_CRIU_STATUS_FD 201
/* ferry-criu dump --hold (a member of a group checkpoint): at CRIU's post-dump notification,
 * the images written and the tree still frozen with its network locked, it writes "H\n" to
 * REPORT_FD and waits for the starter's word on this fd: 'C' lets CRIU finish the dump (leave
 * the tree stopped, or resume it with --leave-running), anything else makes CRIU resume the
 * tree and fail the dump */
#define FERRY_CRIU_HOLD_FD 202
#define FERRY_CRIU_LAZY_LOG "lazy-pages.log"
/* Post-copy's CRIU kernel facts: CRIU run as the user (--unprivileged) skips its userfaultfd
 * probe and so refuses lazy pages; a root 'criu check' records them (ferryd does it at start,
 * fit.c) in FERRY_CRIU_KDAT_DIR/<boot id>/criu.kdat, root's, which the lazy-pages daemon loads
 * (XDG_RUNTIME_DIR: where an unprivileged CRIU looks for it). The live restore's CRIU does not:
 * it runs with no environment (criu.c), probes userfaultfd itself with the CAP_SYS_PTRACE it
 * holds, and a root's cache would make it try what only root may (its loginuid). */
#define FERRY_CRIU_KDAT_DIR "/run/ferry-kdat"

/* ferry-criu, CRIU's client, in the bundle (loaded like CRIU: its loader and libraries are the
 * bundle's). The starter execs it with the environment FERRY_CRIU_ENV and fds at fixed numbers:
 *   ferry-criu dump --pid PID --timeout SECS [--leave-running] [--tcp] [--page-server | --lazy]
 *       IMAGES_FD: the images directory (dump.log goes there too), REPORT_FD,
 *       FERRY_CRIU_PS_FD (--page-server): the socket to the receiving page server;
 *       (--lazy) the socket to the destination's lazy-pages daemon, FERRY_CRIU_STATUS_FD,
 *       where CRIU writes a byte once the images but the lazy pages are written, and WORK_FD,
 *       where dump.log goes (CRIU keeps it open while it serves the pages);
 *       writes "D\n" to REPORT_FD once the tree is dumped, or "E <message>\n".
 *   ferry-criu restore --timeout SECS [--tcp] [--lazy] [--dedup | --page SIZE:SHA256:NAME...]
 *       IMAGES_FD: the verified generation, WORK_FD: the checkpoint directory (restore.log),
 *       REPORT_FD, PID_FD: the restored root's pid in decimal, written once everything checked
 *       out; PAGES_FD + i: the page image of the i-th --page, hashed while CRIU restores and
 *       compared before any restored process runs; --dedup: CRIU frees the page images as it
 *       restores (auto_dedup below; never with --page, whose files are read meanwhile). An
 *       error is "E <message>\n" on REPORT_FD. */
#define FERRY_CRIU_HELPER FERRY_CRIU_DIR "/ferry-criu"
#define FERRY_CRIU_ENV "PATH=" FERRY_CRIU_PATH
#define FERRY_CRIU_IMAGES_FD 3
#define FERRY_CRIU_WORK_FD 4
#define FERRY_CRIU_REPORT_FD 5
#define FERRY_CRIU_PID_FD 6
#define FERRY_CRIU_PAGES_FD 16
/* at most this many page images (each one fd in the restorer) */
#define FERRY_CRIU_MAX_PAGES 16384
#define FERRY_CRIU_DUMP_LOG "dump.log"
/* the container's private /tmp, saved by ferry-criu dump --save-tmp among the images (a tar of
 * its files, directories, symbolic links and FIFOs) and brought back by restore --restore-tmp */
#define FERRY_CRIU_TMP_ARCHIVE "ferry-tmp.tar"
#define FERRY_CRIU_RESTORE_LOG "restore.log"

struct ferry_criu_opts {
	const char *binary; /* CRIU binary (FERRY_CRIU_BIN inside a container) */
	int images_fd; /* directory CRIU reads or writes images in */
	int work_fd; /* directory for the log (and CRIU's work files) */
	const char *log; /* log file name in work_fd */
	pid_t pid; /* dump: root of the tree */
	bool leave_running; /* dump */
	unsigned timeout; /* seconds CRIU may take to seize the tree (0: CRIU's default) */
	const char *config; /* a CRIU config file (RPC settings libcriu has no setter for) */
	bool tcp; /* own network namespace: keep established TCP connections, lock with nftables */
	bool skip_in_flight; /* dump: leave out connections not yet accepted (CRIU --skip-in-flight) */
	unsigned ghost_limit; /* dump: bytes of the largest deleted-but-open file saved (0: CRIU's) */
	bool tcp_close; /* restore: TCP connections come back closed (CRIU --tcp-close) */
	/* restore: CRIU punches a hole in the page images for every run of pages it restored
	 * (--auto-dedup): it opens them O_RDWR, and they read as zeros where it did */
	bool auto_dedup;
	/* restore: called when every process is restored and none has run yet (CRIU's
	 * "post-restore" notification); non-zero makes CRIU kill the restored tree and fail */
	int (*post_restore)(void);
	/* restore: CRIU's pre-resume notification (the tasks stopped, their credentials applied;
	 * CRIU ignores what it returns: the callback ends the tree itself when it must not run) */
	void (*pre_resume)(void);
	/* dump: called once the images are written and the tree is still frozen (CRIU's
	 * "post-dump" notification, before a live dump serves its pages); non-zero makes CRIU
	 * resume the tree and fail the dump */
	int (*post_dump)(void);
};

int ferry_criu_dump(const struct ferry_criu_opts *o, struct ferry_error **err);
/* Restores into the caller's namespaces; *ret_pid is the restored root, in our pid namespace. */
int ferry_criu_restore(const struct ferry_criu_opts *o, pid_t *ret_pid, struct ferry_error **err);
/* criu_log.c: the last @max "Error" lines of the CRIU log open on @fd (skipping known harmless
 * ones), joined by "; "; NULL for none or @fd -1. The caller opens it (the starter as root: only
 * through ckdir_openat, O_NONBLOCK, and a regular file of the user's). */
char *ferry_criu_log_errors(int fd, int max);
/* criu_log.c: FERRY_CRIU_KDAT_DIR "/<boot id>" into @buf; -errno when the boot id is unknown. */
int ferry_criu_kdat_dir(char *buf, size_t n);

#endif
