/* SPDX-License-Identifier: GPL-2.0-or-later */
/* criu.h — CRIU through libcriu (swrk mode: libcriu forks and execs the CRIU binary).
 *
 * Callers run these in the identity CRIU must have (the starter drops to the user with only
 * the capabilities the step needs before calling), in a process that exists to run CRIU: its
 * environment is replaced by CRIU's own (criu_environment in criu.c). CRIU's log goes to @log in
 * @work_fd; on failure the message carries the log's last error lines. */
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
	/* restore: called when every process is restored and none has run yet (CRIU's
	 * "post-restore" notification); non-zero makes CRIU kill the restored tree and fail */
	int (*post_restore)(void);
};

int ferry_criu_dump(const struct ferry_criu_opts *o, struct ferry_error **err);
/* Restores into the caller's namespaces; *ret_pid is the restored root, in our pid namespace. */
int ferry_criu_restore(const struct ferry_criu_opts *o, pid_t *ret_pid, struct ferry_error **err);
/* The last @max "Error" lines of a CRIU log (skipping known harmless ones), joined by "; ". */
char *ferry_criu_log_errors(int dirfd, const char *log, int max);

#endif
