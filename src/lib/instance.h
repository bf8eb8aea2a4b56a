/* SPDX-License-Identifier: GPL-2.0-or-later */
/* instance.h — instance records: /run/ferry/<uid>/<name>, written only by the starter.
 *
 * A record is "key=value" lines. The directories are root-only (0700): users see their own
 * records through the starter (FERRY_OP_INSTANCE_LIST), never another user's. */
#ifndef FERRY_INSTANCE_H
#define FERRY_INSTANCE_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

/* Room for every field at its largest (four paths of PATH_MAX, the shown command capped at 1 KiB
 * by the starter): a record's size never depends on what a user may make long. */
#define FERRY_INSTANCE_RECORD_MAX 32768

struct ferry_instance {
	char *name;
	uid_t uid;
	gid_t gid;
	pid_t pid; /* host pid of the instance's init (pid 1 inside) */
	unsigned long long starttime; /* of that pid, /proc/PID/stat field 22: guards against reuse */
	pid_t monitor; /* host pid of the starter's monitor process */
	long long created; /* unix time */
	char *image;
	char *command; /* for display only */
	char *log_out; /* the instance's stdout/stderr log files */
	char *log_err;
	char *checkpoint; /* checkpointable instances: their checkpoint directory */
	long long workload; /* ... and the workload's pid inside the container */
	char *image_fingerprint;
	unsigned long long node; /* inode of the starter's network namespace: the node it ran on */
	char *networks; /* --net instances: "a,b", and the first network's address and MAC */
	bool loopback; /* a checkpointable instance without --net: its own network namespace, only lo */
	bool private_tmp; /* its /tmp is the container's tmpfs (--contain, --private-tmp): dumps save it */
	char *ip;
	char *mac;
	char *gw; /* the gateway the user chose, if any */
	bool ipam_ip, ipam_mac; /* the network's IPAM chose ip / mac, not the user (FERRY_REQ_NET_IPAM) */
};

/* The instance has a network namespace of its own (--net, or loopback only): joining it joins
 * that namespace too, and CRIU may repair TCP connections there. */
static inline bool ferry_instance_own_netns(const struct ferry_instance *inst)
{
	return inst->networks || inst->loopback;
}

/* Text form, one "key=value" line per field; newlines in values become spaces. */
char *ferry_instance_format(const struct ferry_instance *inst);
int ferry_instance_parse(const char *text, size_t len, struct ferry_instance **ret, struct ferry_error **err);
void ferry_instance_free(struct ferry_instance *inst);
static inline void ferry_instance_freep(struct ferry_instance **i)
{
	ferry_instance_free(*i);
}
/* Splits LIST output (records separated by empty lines) into an array; returns the count. */
int ferry_instance_parse_list(const char *text, size_t len, struct ferry_instance ***ret,
			      struct ferry_error **err);
void ferry_instance_list_free(struct ferry_instance **list);

/* Start time (clock ticks since boot) of @pid, from /proc/PID/stat (robust against ')' in comm). */
int ferry_proc_starttime(pid_t pid, unsigned long long *ret);
/* What the starter checks of a process in /proc/PID/status. */
struct ferry_proc_status {
	char state; /* 'R', 'S', ... 'Z' (a zombie runs no code) */
	pid_t ppid;
	pid_t nspid; /* its pid in its own (innermost) pid namespace */
	unsigned uid[4], gid[4]; /* real, effective, saved, filesystem */
	unsigned long long caps[4]; /* inheritable, permitted, effective, ambient */
	/* the memory a dump of it holds, KiB: RssAnon + RssShmem + VmSwap (0 for a kernel thread) */
	unsigned long long dump_kb;
};
/* -ESRCH when @pid is gone, -EINVAL when its status cannot be read as expected. */
int ferry_proc_status(pid_t pid, struct ferry_proc_status *ret);
/* Sends @sig to the process @init and every process under it (found through /proc), again
 * until a pass finds none it has not signalled (one forked meanwhile): SIGSTOP freezes a tree
 * whose processes can then fork no more, SIGCONT thaws it. The caller has the right to signal
 * them (it is their user). The number signalled, or -errno. */
int ferry_signal_tree(pid_t init, int sig);
/* True when the recorded init still runs (same pid and start time). */
bool ferry_instance_alive(const struct ferry_instance *inst);
/* The inode of our network namespace: which node we are on, when the nodes of a test cluster
 * are network namespaces of one machine (a real node has one: then every record matches). */
unsigned long long ferry_node_id(void);
/* FERRY_RUNDIR/<uid>/n<node>: the records of @uid's instances on this node, one directory a
 * node (see ferry_node_id), so that the nodes of a test cluster on one machine keep apart as
 * real nodes do. Opened by root, each part checked (ferry_open_root_dirs); created when
 * @create. -ENOENT (no error set) when it is not there. */
int ferry_open_rundir(uid_t uid, bool create, struct ferry_error **err);
/* ferryd's socket for this node's instances (a path: abstract sockets are one network
 * namespace's, an instance with --net has its own): FERRY_RUNDIR/ferryd/n<ferry_node_id>/sock,
 * bound by ferryd in a directory of root's, 0755, which the starter mounts at
 * FERRY_FERRYD_INSIDE in checkpointable instances (where the launcher agent ferry-rsh, in the
 * CRIU bundle, reaches it: the directory, so that a ferryd started again, with a new socket,
 * is reached too). */
#define FERRY_FERRYD_DIR FERRY_RUNDIR "/ferryd"
#define FERRY_FERRYD_INSIDE "/.ferry/ferryd"
#define FERRY_FERRYD_SOCK "sock"
#define FERRY_FERRYD_NODE_MAX 32
/* "n<ferry_node_id>": this node's directory under FERRY_FERRYD_DIR. */
void ferry_ferryd_node_dir(char buf[FERRY_FERRYD_NODE_MAX]);

#endif
