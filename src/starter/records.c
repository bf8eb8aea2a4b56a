/* SPDX-License-Identifier: GPL-2.0-or-later */
/* records.c — instance records (/run/ferry/<uid>/<node>/<name>, root only), the instance logs,
 * and pinning a running instance before acting on it. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>

#include "fs.h"
#include "instance.h"
#include "starter.h"

/* ---- instance records: /run/ferry/<uid>/<name>, root only ---- */

int read_record(int dirfd, const char *name, struct ferry_instance **ret, struct ferry_error **err)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = ferry_read_all(fd, FERRY_INSTANCE_RECORD_MAX, &buf, &len, err);
	if (r < 0)
		return r;
	return ferry_instance_parse(buf, len, ret, err);
}

/* Not a record ('.NAME.launch', a record being written: '.NAME.tmpPID'). A '.NAME.tmpPID' whose
 * PID is gone is removed: a record ferry_write_file_atomic never finished, its writer killed
 * (SIGXFSZ could, before the starter set root's own limits). Root's, in root's directory; not
 * while a process has that pid (one that took it again cannot be writing it: its O_EXCL create
 * would fail). */
static bool hidden(int dirfd, const char *name)
{
	const char *t = strrchr(name, 'p');
	unsigned long long pid = 0;
	if (name[0] == '.' && t && t > name + 4 && startswith(t - 3, ".tmp") &&
	    parse_uint64(t + 1, INT32_MAX, &pid) == 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH)
		(void)unlinkat(dirfd, name, 0);
	return name[0] == '.';
}

void op_list(struct starter *s)
{
	struct ferry_error *err = NULL;
	unsigned long long node = ferry_node_id();
	TRY(ferry_privs_raise(&s->privs, &err));

	int dirfd = ferry_open_rundir(s->privs.uid, false, &err);
	if (dirfd == -ENOENT)
		exit(0);
	if (dirfd < 0)
		die_error(err);
	DIR *d = fdopendir(dirfd);
	if (!d)
		die("open instance directory: %s", strerror(errno));
	struct dirent *de;
	while ((de = readdir(d))) {
		if (hidden(dirfd, de->d_name))
			continue;
		struct ferry_instance *inst = NULL;
		struct ferry_error *e2 = NULL;
		if (read_record(dirfd, de->d_name, &inst, &e2) < 0) {
			ferry_error_free(e2);
			continue;
		}
		/* instances of this node only (see ferry_node_id) */
		bool here = !inst->node || inst->node == node;
		if (here && ferry_instance_alive(inst) && inst->starttime != 0 && inst->monitor != 0) {
			_cleanup_free_ char *text = ferry_instance_format(inst);
			printf("%s\n", text);
		} else if (!ferry_instance_alive(inst)) {
			/* the instance is gone (its monitor cleans up, or was killed): drop the record */
			_cleanup_free_ char *launch = xasprintf(".%s.launch", de->d_name);
			unlinkat(dirfd, de->d_name, 0);
			unlinkat(dirfd, launch, 0);
		}
		ferry_instance_free(inst);
	}
	closedir(d);
	exit(fflush(stdout) == 0 ? 0 : 255);
}

/* Reserves the name: creates the record exclusively, holding our own pid until the instance
 * runs. A record whose process is gone is stale and is replaced. */
int reserve_name(struct starter *s, int dirfd, struct ferry_error **err)
{
	const char *name = s->req->instance;
	unsigned alive = 0;
	DIR *d = ferry_opendir_at(dirfd);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			struct ferry_instance *i = NULL;
			struct ferry_error *ignored = NULL;
			/* a record that cannot be read still holds its place: counted */
			if (!hidden(dirfd, de->d_name) &&
			    (read_record(dirfd, de->d_name, &i, &ignored) < 0 || ferry_instance_alive(i)))
				alive++;
			ferry_instance_free(i);
			ferry_error_free(ignored);
		}
		closedir(d);
	}
	if (alive >= s->cfg->max_instances)
		return ferry_error_msg(
		    err, EUSERS,
		    "you already run %u instances, the limit set in ferry.conf ('max instances')", alive);
	for (int attempt = 0; attempt < 2; attempt++) {
		struct ferry_instance me = {
		    .name = (char *)name, .uid = s->privs.uid, .gid = s->privs.gid, .pid = getpid()};
		if (ferry_proc_starttime(me.pid, &me.starttime) < 0)
			return ferry_error_msg(err, EIO, "cannot read our own start time");
		_cleanup_free_ char *text = ferry_instance_format(&me);
		int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			int r = ferry_write_all(fd, text, strlen(text));
			close(fd);
			if (r < 0) /* (a cut record would count towards 'max instances' for good) */
				unlinkat(dirfd, name, 0);
			if (r < 0)
				return ferry_error_set(err, -r, "write instance record");
			return 0;
		}
		if (errno != EEXIST)
			return ferry_error_set(err, errno, "create instance record");
		struct ferry_instance *old = NULL;
		struct ferry_error *ignored = NULL;
		bool live = read_record(dirfd, name, &old, &ignored) == 0 && ferry_instance_alive(old);
		ferry_instance_free(old);
		ferry_error_free(ignored);
		if (live)
			return ferry_error_msg(
			    err, EEXIST,
			    "instance '%s' already exists: stop it with 'ferry instance stop %s' or choose another name",
			    name, name);
		unlinkat(dirfd, name, 0);
	}
	return ferry_error_msg(err, EEXIST, "instance '%s' is being started by another command", name);
}

int open_logs(struct starter *s, struct ferry_error **err)
{
	char host[HOST_NAME_MAX + 1] = "localhost";
	gethostname(host, sizeof(host) - 1);
	if (!s->home) {
		s->log_out = open("/dev/null", O_WRONLY | O_CLOEXEC);
		s->log_err = open("/dev/null", O_WRONLY | O_CLOEXEC);
		return 0;
	}
	/* euid is the caller's: the logs are the caller's files in the caller's home */
	_cleanup_free_ char *dir = xasprintf("%s/.ferry/instances/%s", s->home, host);
	int r = ferry_mkdir_p(dir, 0700, err);
	if (r < 0)
		return ferry_error_wrap(err, "instance log directory");
	s->log_out_path = xasprintf("%s/%s.out", dir, s->req->instance);
	s->log_err_path = xasprintf("%s/%s.err", dir, s->req->instance);
	/* not truncated yet: only once the name is ours (a refused start must not wipe the logs of
	 * the instance that has this name) */
	s->log_out = open(s->log_out_path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (s->log_out < 0)
		return ferry_error_set(err, errno, "open '%s'", s->log_out_path);
	s->log_err = open(s->log_err_path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (s->log_err < 0)
		return ferry_error_set(err, errno, "open '%s'", s->log_err_path);
	return 0;
}

/* The command for display in the record: at most COMMAND_SHOWN bytes, so that a record's size
 * never depends on how long a command line the user gives. */
#define COMMAND_SHOWN 1024
char *join_argv(char **argv)
{
	size_t len = 0;
	char *out = xzalloc(COMMAND_SHOWN + 4);
	for (char **a = argv; a && *a && len < COMMAND_SHOWN; a++) {
		int n = snprintf(out + len, COMMAND_SHOWN + 1 - len, "%s%s", a == argv ? "" : " ", *a);
		len += n < 0 ? 0 : (size_t)n;
	}
	if (len > COMMAND_SHOWN)
		memcpy(out + COMMAND_SHOWN, "...", 4);
	return out;
}

int pin_instance(struct starter *s, const char *name, struct ferry_instance **ret, struct ferry_error **err)
{
	int r = ferry_privs_raise(&s->privs, err);
	if (r < 0)
		return r;
	int dirfd = ferry_open_rundir(s->privs.uid, false, err);
	if (dirfd < 0 && dirfd != -ENOENT)
		return dirfd;
	struct ferry_instance *inst = NULL;
	struct ferry_error *ignored = NULL;
	if (dirfd < 0 || read_record(dirfd, name, &inst, &ignored) < 0 || !inst->monitor ||
	    !ferry_instance_alive(inst)) {
		ferry_error_free(ignored);
		ferry_instance_free(inst);
		closep(&dirfd);
		return ferry_error_msg(
		    err, ESRCH, "no instance '%s' of yours is running: see 'ferry instance list'", name);
	}
	close(dirfd);
	/* Pin the process, then make sure it is still the instance's init (not a reused pid) and
	 * that it runs as the caller: only then may the caller act on it. */
	int pidfd = (int)syscall(SYS_pidfd_open, inst->pid, 0);
	if (pidfd < 0 || !ferry_instance_alive(inst)) {
		ferry_instance_free(inst);
		return ferry_error_msg(err, ESRCH, "instance '%s' has just exited", name);
	}
	struct ferry_proc_status st;
	if (ferry_proc_status(inst->pid, &st) < 0 || st.uid[0] != s->privs.uid) {
		close(pidfd);
		ferry_instance_free(inst);
		return ferry_error_msg(err, EPERM, "instance '%s' does not run as you: refusing to act on it",
				       name);
	}
	*ret = inst;
	return pidfd;
}

int instance_netns(const struct ferry_instance *inst, int pidfd, struct ferry_error **err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)inst->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ferry_error_set(err, errno, "open the network namespace of instance '%s'", inst->name);
	if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0) {
		close(fd);
		return ferry_error_msg(err, ESRCH, "instance '%s' has just exited", inst->name);
	}
	return fd;
}

int instance_ns_flags(const struct ferry_instance *inst)
{
	return STARTER_NS_FLAGS | (ferry_instance_own_netns(inst) ? CLONE_NEWNET : 0);
}
