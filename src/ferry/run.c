/* SPDX-License-Identifier: GPL-2.0-or-later */
/* run.c — 'ferry run/exec --checkpoint NAME': a run that survives being stopped.
 *
 * Built from the verbs that exist, as the user, with no privilege of its own: the program runs
 * in a checkpointable instance ('instance start --criu-launch'), dumps are 'checkpoint instance'
 * requests and a resume is 'instance start --criu-restart'; the starter checks each as it checks
 * them from the command line. This process stays in the foreground (a batch job's shell, often
 * through 'exec'), copies the instance's output to its own, and:
 *   - resumes from the newest complete generation of NAME when there is one;
 *   - on SIGUSR1 (--checkpoint-signal), SIGTERM or SIGINT dumps the program, which stops, and
 *     exits RUN_EXIT_CHECKPOINTED (after 'scontrol requeue' of its Slurm job with --requeue);
 *   - every --checkpoint-every dumps it and leaves it running, keeping the newest --keep;
 *   - when the program ends, exits with its status.
 * An MPI job's run (mpirun started its daemons with ferry-rsh, as instances RUN-HOST on any node)
 * is checkpointed whole: every generation is a group checkpoint (group.c) of the run's instance
 * and every member, at one cut, and a resume restarts them all, each member on the node it was
 * dumped on (the generation's ferry-members says where).
 *
 * Layout of NAME's directory (the user's, 0700):
 *   ferry-run      marks it as a resumable run's (and says so to whoever looks)
 *   command        the SHA-256 of what the run runs (run_identity) and the command as text: the
 *                  directory is that command's; another one given the same NAME is refused
 *   lock           flock()ed by the one 'ferry run' that uses it
 *   status/        bound at /.ferry-run in the container: the program's exit status lands there;
 *                  once it is there the run is over, and running the command again returns it;
 *                  'group' there says the program started members (ferry-rsh makes it)
 *   ck-000001/ ... one generation each: a checkpoint directory of its own, dumped into by the
 *                  starter (gen-*, then 'current' once complete and signed); a directory without
 *                  'current' is an incomplete dump and is never resumed from. A job's has
 *                  ferry-members too; its members' generations are in their own checkpoints.
 * Generations are whole checkpoint directories, rather than the starter's gen-* of one, because
 * the starter keeps only the newest of those: keeping N here needs no change to setuid code. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "ferry.h"
#include "fs.h"
#include "instance.h"
#include "manifest.h"
#include "names.h"
#include "spawn.h"

#define STARTER FERRY_LIBEXECDIR "/ferry-starter"
#define RUN_MARKER "ferry-run"
#define RUN_LOCK "lock"
#define RUN_COMMAND "command"
#define RUN_COMMAND_TEXT_MAX 200
#define RUN_STATUS "status"
#define RUN_STATUS_MOUNT "/.ferry-run"
#define RUN_EXIT_FILE "exit"
/* made in status/ by ferry-rsh (src/rsh/rsh.c) once the program started a member of its MPI job
 * on a node: from then on the run's checkpoints are its job's, at one cut (group.c) */
#define RUN_GROUP "group"
/* in a generation of a job: its other members, "NODE NAME" a line (where each was dumped, into
 * its checkpoint NAME) */
#define SLOT_MEMBERS "ferry-members"
#define SLOT_MEMBERS_MAX 65536
#define SLOT_FMT "ck-%06llu"
#define SLOTS_MAX 4096
#define RUN_KEEP_DEFAULT 2
/* the exit status of a run that was checkpointed and stopped: sysexits' EX_TEMPFAIL ("try again
 * later"); run the same command again to resume */
#define RUN_EXIT_CHECKPOINTED 75

static const char marker_text[] =
    "This directory holds the generations of a resumable run ('ferry run --checkpoint').\n"
    "Remove it with 'ferry checkpoint delete PATH'; see 'man ferry'.\n";

/* The container's side: the image's environment and runscript (run) or the command (exec) as a
 * child, whose status goes to /.ferry-run/exit before the container ends with it. */
static const char wrapper[] =
    "m=$1; shift\n"
    "if [ \"$m\" = run ]; then\n"
    "  for f in /.singularity.d/env/*.sh; do [ -r \"$f\" ] && . \"$f\"; done\n"
    "  if [ -x /.singularity.d/runscript ]; then set -- /.singularity.d/runscript \"$@\";\n"
    "  elif [ $# -eq 0 ]; then set -- /bin/sh; fi\n"
    "fi\n"
    "\"$@\"\n"
    "s=$?\n"
    "echo \"$s\" > " RUN_STATUS_MOUNT "/" RUN_EXIT_FILE "\n"
    "exit \"$s\"\n";

struct run {
	struct container_opts *o;
	const char *name; /* as given */
	char *dir; /* its directory, absolute */
	int dirfd;
	int lockfd;
	char *instance;
	char host[HOST_NAME_MAX + 1];
	int sigfd;
	int pidfd; /* the instance's init */
	char *log[2]; /* its stdout and stderr logs, and how far we copied them */
	off_t off[2];
	unsigned long long last_seq; /* the newest generation directory made */
	bool launch_slot_empty; /* it is the (empty) one the instance was launched with */
	int watchdog; /* the pipe whose end stops the instance (start_watchdog) */
	char cmd_hex[65]; /* what the run runs (run_identity): its SHA-256 ... */
	char *cmd_text; /* ... and the command as one line, for messages */
};

/* ---- generations ---- */

static bool slot_seq(const char *name, unsigned long long *ret)
{
	if (!startswith(name, "ck-") || strlen(name) != 9)
		return false;
	return parse_uint64(name + 3, 999999, ret) == 0 && *ret > 0;
}

/* A generation is complete once the starter switched its 'current' to a sealed generation. */
static bool slot_complete(int dirfd, const char *slot)
{
	_cleanup_close_ int fd = openat(dirfd, slot, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	char target[64];
	ssize_t n = fd < 0 ? -1 : readlinkat(fd, "current", target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = '\0';
	_cleanup_free_ char *m = xasprintf("%s/%s", target, FERRY_MANIFEST_NAME);
	struct stat st;
	return fstatat(fd, m, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

static int cmp_ull(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;
	return x < y ? -1 : x > y;
}

/* The generations in @dirfd, ascending, all or only the complete ones; their count. */
static size_t list_slots(int dirfd, bool complete_only, unsigned long long **ret)
{
	unsigned long long *seqs = NULL, n;
	size_t count = 0;
	DIR *d = ferry_opendir_at(dirfd);
	struct dirent *de;
	while (d && (de = readdir(d)) && count < SLOTS_MAX) {
		if (!slot_seq(de->d_name, &n) || (complete_only && !slot_complete(dirfd, de->d_name)))
			continue;
		seqs = xrealloc(seqs, (count + 1) * sizeof(*seqs));
		seqs[count++] = n;
	}
	if (d)
		closedir(d);
	if (count)
		qsort(seqs, count, sizeof(*seqs), cmp_ull);
	*ret = seqs;
	return count;
}

static char *slot_path(const char *dir, unsigned long long seq)
{
	char name[32];
	snprintf(name, sizeof(name), SLOT_FMT, seq);
	return xasprintf("%s/%s", dir, name);
}

/* The manifest of a complete generation, unverified (for messages; the starter verifies). */
static struct ferry_manifest *slot_manifest(const char *slot)
{
	_cleanup_close_ int fd = open(slot, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? NULL : checkpoint_current_manifest(fd, NULL, NULL);
}

bool run_dir_is(const char *path)
{
	_cleanup_free_ char *m = xasprintf("%s/%s", path, RUN_MARKER);
	struct stat st;
	return lstat(m, &st) == 0 && S_ISREG(st.st_mode);
}

char *run_dir_newest(const char *path, unsigned long long *ret_seq)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ unsigned long long *done = NULL;
	size_t n = fd < 0 ? 0 : list_slots(fd, true, &done);
	if (n == 0)
		return NULL;
	*ret_seq = done[n - 1];
	return slot_path(path, done[n - 1]);
}

/* Removes the generation @seq (its sealed part through the starter). */
static int slot_remove(const char *dir, unsigned long long seq)
{
	_cleanup_free_ char *p = slot_path(dir, seq);
	return checkpoint_remove_dir(p);
}

int run_dir_remove(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return cli_fail("open '%s': %s", path, strerror(errno));
	_cleanup_free_ unsigned long long *seqs = NULL;
	size_t n = list_slots(fd, false, &seqs);
	for (size_t i = 0; i < n; i++) {
		int st = slot_remove(path, seqs[i]);
		if (st != 0)
			return st;
	}
	return 0;
}

/* Keeps the newest @keep complete generations (and any newer one being written): removes the
 * older ones and every incomplete one older than the newest complete. */
static void prune_slots(struct run *r, unsigned long long keep)
{
	_cleanup_free_ unsigned long long *all = NULL, *done = NULL;
	size_t n_all = list_slots(r->dirfd, false, &all);
	size_t n_done = list_slots(r->dirfd, true, &done);
	if (n_done == 0)
		return;
	unsigned long long newest = done[n_done - 1];
	unsigned long long oldest_kept = n_done > keep ? done[n_done - keep] : done[0];
	for (size_t i = 0; i < n_all; i++) {
		if (all[i] >= oldest_kept &&
		    (all[i] >= newest || bsearch(&all[i], done, n_done, sizeof(*done), cmp_ull)))
			continue;
		if (slot_remove(r->dir, all[i]) != 0)
			fprintf(stderr, "ferry: run '%s': could not remove generation %llu (see above)\n",
				r->name, all[i]);
	}
}

/* ---- the starter ---- */

/* Runs the starter for @req, its stdout captured in *ret_out when asked; its exit status.
 * @cancel_fd > 0: once it is readable the starter is killed, and its dump's guard (which
 * holds its stdout) has resumed the program and removed what the dump left, when this
 * returns: 255, said, and *ret_cancelled. */
static int starter_run(const struct ferry_request *req, char **ret_out, int cancel_fd, bool *ret_cancelled)
{
	_cleanup_close_ int fd = request_memfd(req);
	if (fd < 0)
		return 255;
	char *const argv[] = {"ferry-starter", NULL};
	char *const envp[] = {NULL};
	size_t len = 0;
	struct ferry_spawn_opts opts = {
	    .pass_fds = &fd, .n_pass_fds = 1, .output = ret_out, .output_len = &len, .cancel_fd = cancel_fd};
	if (!ret_out) {
		opts.output = NULL;
		opts.output_len = NULL;
	}
	struct ferry_error *err = NULL;
	int status = 0;
	fflush(NULL);
	if (ferry_spawn(STARTER, argv, envp, &opts, &status, &err) < 0) {
		if (ret_cancelled && err && err->code == ECANCELED) {
			*ret_cancelled = true;
			ferry_error_free(err);
			return 255;
		}
		return cli_error(err);
	}
	return status;
}

static int starter(const struct ferry_request *req, char **ret_out)
{
	return starter_run(req, ret_out, -1, NULL);
}

/* ---- the instance ---- */

static char *instance_name(const char *name)
{
	const char *base = strrchr(name, '/');
	base = base && base[1] ? base + 1 : name;
	char out[65] = "run-";
	size_t j = 4;
	for (const char *p = base; *p && j < sizeof(out) - 1; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			  *p == '_' || *p == '.' || *p == '-';
		out[j++] = ok ? *p : '_';
	}
	out[j] = '\0';
	return xstrdup(out);
}

/* Where the starter puts the instance's logs on this node (records.c's open_logs). */
static void predict_logs(struct run *r)
{
	struct passwd *pw = getpwuid(getuid());
	for (int i = 0; i < 2; i++) {
		free(r->log[i]);
		r->log[i] = pw && pw->pw_dir ? xasprintf("%s/.ferry/instances/%s/%s.%s", pw->pw_dir, r->host,
							 r->instance, i ? "err" : "out")
					     : NULL;
		struct stat st;
		r->off[i] = r->log[i] && stat(r->log[i], &st) == 0 ? st.st_size : 0;
	}
}

/* Finds our instance on this node and watches its init. */
static int watch_instance(struct run *r)
{
	struct ferry_instance **list = NULL;
	if (cli_list_instances(&list) < 0)
		return -1;
	for (size_t i = 0; list[i]; i++) {
		if (!streq(list[i]->name, r->instance))
			continue;
		r->pidfd = (int)syscall(SYS_pidfd_open, list[i]->pid, 0);
		if (r->pidfd >= 0 && !ferry_instance_alive(list[i])) {
			close(r->pidfd);
			r->pidfd = -1;
		}
		for (int j = 0; j < 2; j++) {
			const char *p = j ? list[i]->log_err : list[i]->log_out;
			if (p && (!r->log[j] || !streq(p, r->log[j]))) {
				free(r->log[j]);
				r->log[j] = xstrdup(p);
				r->off[j] = 0;
			}
		}
		break;
	}
	ferry_instance_list_free(list);
	return 0; /* not listed: it ended already, and the loop finds its status */
}

/* The instance never outlives this process. Killed without a word (scancel --signal=KILL, the
 * OOM killer), we could not stop it, and Slurm with proctrack/linuxproc does not see it (its
 * monitor leaves the job's process tree when the starter exits): it would run on beside the
 * requeued job, which resumes from the same checkpoint. A grandchild (out of the tree that Slurm
 * signals, as the monitor is) waits on a pipe only we hold and, once it breaks, kills the
 * instance's init through its pidfd (a no-op when the instance already ended). No exec: the
 * child runs only this. */
static void start_watchdog(struct run *r)
{
	int p[2];
	if (r->pidfd < 0 || pipe2(p, O_CLOEXEC) < 0)
		return;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		if (fork() != 0)
			_exit(0);
		setsid();
		const int keep[] = {p[0], r->pidfd, -1};
		ferry_close_fds(3, keep);
		char c;
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		(void)syscall(SYS_pidfd_send_signal, r->pidfd, SIGKILL, NULL, 0);
		_exit(0);
	}
	close(p[0]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	r->watchdog = p[1]; /* closed by our exit, whichever way */
}

/* Copies what the instance wrote since the last call to our stdout and stderr. */
static void copy_logs(struct run *r)
{
	for (int i = 0; i < 2; i++) {
		if (!r->log[i])
			continue;
		_cleanup_close_ int fd = open(r->log[i], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0)
			continue;
		if (st.st_size < r->off[i])
			r->off[i] = 0; /* a new start truncated it */
		char buf[65536];
		ssize_t n;
		while (r->off[i] < st.st_size && (n = pread(fd, buf, sizeof(buf), r->off[i])) > 0) {
			if (ferry_write_all(i ? STDERR_FILENO : STDOUT_FILENO, buf, (size_t)n) < 0)
				break;
			r->off[i] += n;
		}
	}
}

static void clear_exit_status(struct run *r)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", RUN_STATUS, RUN_EXIT_FILE);
	unlinkat(r->dirfd, p, 0);
}

/* Whether the program started members of its job on nodes (ferry-rsh said so). */
static bool run_is_job(struct run *r)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", RUN_STATUS, RUN_GROUP);
	struct stat st;
	return fstatat(r->dirfd, p, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* The container's options from the command line, and the wrapper around the program. */
static int start_fresh(struct run *r, const char *image, char **args, bool exec_mode)
{
	struct container_opts *o = r->o;
	unsigned long long seq = r->last_seq + 1;
	_cleanup_free_ char *slot = slot_path(r->dir, seq);
	if (mkdir(slot, 0700) < 0)
		return cli_fail("create '%s': %s", slot, strerror(errno));
	r->last_seq = seq;
	r->launch_slot_empty = true; /* the first dump goes there */
	o->req.op = FERRY_OP_INSTANCE_START;
	o->req.flags |= FERRY_REQ_CRIU_LAUNCH;
	o->req.checkpoint = xstrdup(slot);
	o->req.image = absolute_path(image);
	o->req.instance = xstrdup(r->instance);
	strv_push(&o->req.argv, "/bin/sh");
	strv_push(&o->req.argv, "-c");
	strv_push(&o->req.argv, wrapper);
	strv_push(&o->req.argv, "ferry-run");
	strv_push(&o->req.argv, exec_mode ? "exec" : "run");
	for (char **a = args; a && *a; a++)
		strv_push(&o->req.argv, *a);
	build_env(o, o->req.image);
	o->req.binds = xrealloc(o->req.binds, (o->req.n_binds + 1) * sizeof(*o->req.binds));
	o->req.binds[o->req.n_binds++] = (struct ferry_bind){
	    .src = xasprintf("%s/%s", r->dir, RUN_STATUS), .dst = xstrdup(RUN_STATUS_MOUNT), .ro = false};
	clear_exit_status(r);
	_cleanup_free_ char *mark = xasprintf("%s/%s", RUN_STATUS, RUN_GROUP);
	unlinkat(r->dirfd, mark, 0);
	predict_logs(r);
	r->off[0] = r->off[1] = 0; /* a new instance starts new logs */
	int st = starter(&o->req, NULL);
	if (st != 0)
		return st;
	fprintf(stderr, "ferry: run '%s': started on %s, no checkpoint to resume from\n", r->name, r->host);
	return 0;
}

/* ---- a job's generations ---- */

/* The members of the run's job on every node, the run's instance first; the others' places
 * written to the generation @slotfd as SLOT_MEMBERS. NULL after a message. */
static char **job_members(struct run *r, int slotfd)
{
	_cleanup_free_ char *node = NULL;
	_cleanup_strv_ char **ms = group_job_members(r->instance, &node);
	if (!ms)
		return NULL;
	if (!node) {
		cli_fail(
		    "run '%s': its program started members of its job (ferry-rsh), but this node runs "
		    "no ferryd to find them: start ferryd (see ferryd(8)) before the job is checkpointed",
		    r->name);
		return NULL;
	}
	size_t n = strv_length(ms), i = 0;
	while (i < n && !streq(ms[i], r->instance))
		i++;
	if (i == n) {
		cli_fail("run '%s': instance '%s' is not running", r->name, r->instance);
		return NULL;
	}
	char *t = ms[0];
	ms[0] = ms[i];
	ms[i] = t;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		ferry_oom();
	for (i = 1; i < n; i++) {
		const char *colon = strchr(ms[i], ':');
		if (colon)
			fprintf(f, "%.*s %s\n", (int)(colon - ms[i]), ms[i], colon + 1);
		else
			fprintf(f, "%s %s\n", node, ms[i]);
	}
	fclose(f);
	struct ferry_error *err = NULL;
	int rc = ferry_write_file_atomic(slotfd, SLOT_MEMBERS, text, len, 0644, &err);
	free(text);
	if (rc < 0) {
		cli_error(err);
		return NULL;
	}
	return TAKE_PTR(ms);
}

/* In a Slurm job, the nodes of @at (NODE per member) that are not the job's go to nodes of the
 * job that no member was on, one for one, said; -1 after a message when there are too few. */
static int slurm_place(struct run *r, char **at)
{
	_cleanup_strv_ char **alloc = slurm_job_nodes(), **from = NULL, **to = NULL;
	if (!alloc)
		return 0;
	for (size_t i = 0; at[i]; i++)
		if (!strv_contains(alloc, at[i]) && !strv_contains(from, at[i]))
			strv_push(&from, at[i]);
	if (!from)
		return 0;
	for (size_t i = 0; alloc[i] && strv_length(to) < strv_length(from); i++)
		if (!strv_contains(at, alloc[i]))
			strv_push(&to, alloc[i]);
	if (strv_length(to) < strv_length(from))
		return cli_fail("run '%s': members of its job were on %zu node(s) that are not this Slurm "
				"job's (%s...), and the job has too few others to take them: submit it with "
				"as many nodes as it had",
				r->name, strv_length(from), from[0]);
	for (size_t k = 0; from[k]; k++) {
		fprintf(stderr,
			"ferry: run '%s': the members that were on %s go to %s (not a node of "
			"Slurm job %s)\n",
			r->name, from[k], to[k], secure_getenv("SLURM_JOB_ID") ?: "?");
		for (size_t i = 0; at[i]; i++)
			if (streq(at[i], from[k])) {
				free(at[i]);
				at[i] = xstrdup(to[k]);
			}
	}
	return 0;
}

/* The run's instance and the members of its job that generation @slot holds, each [NODE:]NAME
 * as its restart goes (NAME: here): each on the node it was dumped on, or in a Slurm job that
 * has not that node, on one it has (slurm_place); NULL after a message. */
static char **job_restart_members(struct run *r, const char *slot)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", slot, SLOT_MEMBERS), *text = NULL;
	size_t len = 0;
	struct ferry_error *err = NULL;
	if (ferry_read_file(path, SLOT_MEMBERS_MAX, &text, &len, &err) < 0) {
		cli_error(err);
		return NULL;
	}
	_cleanup_strv_ char **nodes = ferryd_nodes(); /* (this node's name first) */
	if (!nodes) {
		cli_fail("run '%s': its job's members are on nodes: resuming it needs ferryd on this node",
			 r->name);
		return NULL;
	}
	_cleanup_strv_ char **at = NULL, **names = NULL;
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(line, ' ');
		if (!sp || sp == line || !sp[1] || strchr(sp + 1, ' ')) {
			cli_fail("run '%s': '%s' has a bad line '%s'", r->name, path, line);
			return NULL;
		}
		*sp = '\0';
		strv_push(&at, line);
		strv_push(&names, sp + 1);
	}
	if (at && slurm_place(r, at) < 0)
		return NULL;
	char **ms = NULL;
	strv_push(&ms, r->instance);
	for (size_t i = 0; at && at[i]; i++) {
		char *m = streq(at[i], nodes[0]) ? xstrdup(names[i]) : xasprintf("%s:%s", at[i], names[i]);
		strv_push(&ms, m);
		free(m);
	}
	return ms;
}

/* "generation N (taken WHEN on NODE)", of @slot, for messages. */
static char *slot_taken(const char *slot, unsigned long long seq)
{
	struct ferry_manifest *m = slot_manifest(slot);
	char when[32] = "?";
	time_t t = m ? (time_t)m->created : 0;
	struct tm tm;
	if (m && localtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	char *s = xasprintf("generation %llu (taken %s on %s)", seq, when, m && m->node ? m->node : "?");
	ferry_manifest_free(m);
	return s;
}

/* Resumes a job from its generation @seq: every member at once, or none runs on. */
static int resume_job(struct run *r, const char *image, const char *slot, unsigned long long seq)
{
	_cleanup_strv_ char **ms = job_restart_members(r, slot);
	if (!ms)
		return 255;
	_cleanup_free_ char *img = absolute_path(image), *taken = slot_taken(slot, seq);
	clear_exit_status(r);
	predict_logs(r);
	if (group_run_restart(ms, slot, img) != 0) {
		/* (the program must not run on without its members) */
		if (watch_instance(r) == 0 && r->pidfd >= 0) {
			(void)syscall(SYS_pidfd_send_signal, r->pidfd, SIGKILL, NULL, 0);
			close(r->pidfd);
			r->pidfd = -1;
		}
		return cli_fail(
		    "run '%s': its job could not be resumed from %s (see above): stop what of "
		    "it runs ('ferry instance list --all-nodes'), then run the same command again",
		    r->name, taken);
	}
	fprintf(stderr, "ferry: run '%s': resumed on %s from %s, with the %zu other members of its job\n",
		r->name, r->host, taken, strv_length(ms) - 1);
	return 0;
}

/* Resumes from the newest complete generation that the starter accepts. */
static int resume(struct run *r, const char *image, const unsigned long long *done, size_t n_done)
{
	for (size_t k = n_done; k-- > 0;) {
		_cleanup_free_ char *slot = slot_path(r->dir, done[k]);
		struct ferry_manifest *jm = slot_manifest(slot);
		bool job = jm && jm->group && group_cut_size(jm->group) > 1;
		ferry_manifest_free(jm);
		if (job) /* (its members are as they were then: no older generation fits them) */
			return resume_job(r, image, slot, done[k]);
		struct ferry_request req = {.op = FERRY_OP_INSTANCE_START,
					    .flags = FERRY_REQ_CRIU_RESTART,
					    .checkpoint = slot,
					    .image = absolute_path(image),
					    .instance = r->instance};
		clear_exit_status(r);
		predict_logs(r);
		int st = starter(&req, NULL);
		free(req.image);
		if (st == 0) {
			_cleanup_free_ char *taken = slot_taken(slot, done[k]);
			fprintf(stderr, "ferry: run '%s': resumed on %s from %s\n", r->name, r->host, taken);
			return 0;
		}
		if (k > 0)
			fprintf(
			    stderr,
			    "ferry: run '%s': generation %llu could not be resumed (see above): trying %llu\n",
			    r->name, done[k], done[k - 1]);
	}
	return cli_fail(
	    "run '%s': no generation of '%s' could be resumed (see above); 'ferry checkpoint delete "
	    "%s' starts it over",
	    r->name, r->dir, r->name);
}

/* take_checkpoint's for a job: its instance and every member at one cut (group.c); the group's
 * dump is not given up for a stop signal (it waits until the dump is written). */
static int take_job_checkpoint(struct run *r, bool leave_running, unsigned long long seq, const char *slot,
			       unsigned long long *ret_seq)
{
	long long t0 = ferry_monotonic_ms();
	_cleanup_close_ int sfd = open(slot, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd < 0)
		cli_fail("run '%s': open '%s': %s", r->name, slot, strerror(errno));
	_cleanup_strv_ char **ms = sfd < 0 ? NULL : job_members(r, sfd);
	if (!ms || group_run_checkpoint(ms, slot, leave_running) != 0 ||
	    !slot_complete(r->dirfd, strrchr(slot, '/') + 1)) {
		(void)slot_remove(r->dir, seq);
		return -1;
	}
	fprintf(stderr,
		"ferry: run '%s': generation %llu written, with the %zu other members of its job at one "
		"cut (%.2f s)\n",
		r->name, seq, strv_length(ms) - 1, (double)(ferry_monotonic_ms() - t0) / 1000.0);
	*ret_seq = seq;
	return 0;
}

/* Dumps the instance into a new generation; stopping it unless @leave_running. 0 on success,
 * -1 on failure (the starter said why), -2 when a stop signal came while a periodic one was
 * written: it is given up (the program runs on), so that the stopping one starts at once
 * instead of after a sync to a shared filesystem that may take as long again. */
static int take_checkpoint(struct run *r, bool leave_running, unsigned long long *ret_seq)
{
	unsigned long long seq = r->launch_slot_empty ? r->last_seq : r->last_seq + 1;
	_cleanup_free_ char *slot = slot_path(r->dir, seq);
	if (!r->launch_slot_empty && mkdir(slot, 0700) < 0) {
		cli_fail("run '%s': create '%s': %s", r->name, slot, strerror(errno));
		return -1;
	}
	r->launch_slot_empty = false;
	r->last_seq = seq;
	if (run_is_job(r))
		return take_job_checkpoint(r, leave_running, seq, slot, ret_seq);
	struct ferry_request req = {.op = FERRY_OP_CHECKPOINT_DUMP,
				    .flags =
					FERRY_REQ_TIMINGS | (leave_running ? FERRY_REQ_LEAVE_RUNNING : 0),
				    .instance = r->instance,
				    .checkpoint = slot};
	_cleanup_free_ char *out = NULL;
	long long t0 = ferry_monotonic_ms();
	bool cancelled = false;
	int st = starter_run(&req, &out, leave_running ? r->sigfd : -1, &cancelled);
	if (cancelled) {
		(void)slot_remove(r->dir, seq);
		fprintf(
		    stderr,
		    "ferry: run '%s': generation %llu given up: a stop signal came while it was written\n",
		    r->name, seq);
		return -2;
	}
	if (!slot_complete(r->dirfd, strrchr(slot, '/') + 1)) {
		(void)slot_remove(r->dir, seq);
		return -1;
	}
	/* complete: its starter published it, whatever became of it after (killed: the guard ended
	 * the program with it, or left it running, as asked); it is the checkpoint */
	if (st != 0)
		fprintf(
		    stderr,
		    "ferry: run '%s': generation %llu is complete though its starter failed after: kept\n",
		    r->name, seq);
	long long freeze = 0, dumped = 0, done = 0;
	unsigned long long bytes = 0;
	int staged = 0;
	const char *t = out ? strstr(out, "timing ") : NULL;
	if (!t || sscanf(t, "timing freeze=%lld dumped=%lld done=%lld bytes=%llu staged=%d", &freeze, &dumped,
			 &done, &bytes, &staged) < 4)
		freeze = t0, dumped = done = ferry_monotonic_ms();
	/* left running, the program runs again once CRIU has dumped it; stopped, it stays so */
	long long paused = (leave_running ? dumped : done) - freeze;
	if (staged)
		fprintf(stderr,
			"ferry: run '%s': generation %llu written (%.1f MiB, the program paused %.2f s; "
			"staged in node-local memory, synced to '%s' %.2f s later)\n",
			r->name, seq, (double)bytes / (1024.0 * 1024.0), (double)paused / 1000.0, r->dir,
			(double)(done - dumped) / 1000.0);
	else
		fprintf(stderr,
			"ferry: run '%s': generation %llu written (%.1f MiB, the program paused %.2f s)\n",
			r->name, seq, (double)bytes / (1024.0 * 1024.0), (double)paused / 1000.0);
	*ret_seq = seq;
	return 0;
}

/* ---- the command a run belongs to ---- */

/* What the run runs, not how: 'run' or 'exec', the image's file name (an image moved to another
 * directory keeps its runs; a different image is refused by the starter's fingerprint check at
 * the resume) and the arguments; ferry's own options (--checkpoint-every...) may change between
 * a run and its resume. Its SHA-256 in @ret_hex; the command as one line of text in *ret_text. */
static void run_identity(const char *image, char **args, bool exec_mode, char ret_hex[65], char **ret_text)
{
	_cleanup_free_ char *img = xstrdup(image);
	for (size_t n = strlen(img); n > 1 && img[n - 1] == '/'; n--)
		img[n - 1] = '\0';
	const char *base = strrchr(img, '/') ? strrchr(img, '/') + 1 : img;
	char *buf = NULL, *text = NULL;
	size_t len = 0, tlen = 0;
	FILE *f = open_memstream(&buf, &len), *t = open_memstream(&text, &tlen);
	if (!f || !t)
		ferry_oom();
	fprintf(f, "%s%c%s%c", exec_mode ? "exec" : "run", 0, base, 0);
	fprintf(t, "ferry %s %s", exec_mode ? "exec" : "run", base);
	for (char **a = args; a && *a; a++) {
		fprintf(f, "%s%c", *a, 0);
		fprintf(t, " %s", *a);
	}
	fclose(f);
	fclose(t);
	if (ferry_sha256_buf(buf, len, ret_hex, NULL) < 0)
		ferry_oom();
	free(buf);
	for (char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (tlen > RUN_COMMAND_TEXT_MAX)
		strcpy(text + RUN_COMMAND_TEXT_MAX - 3, "...");
	*ret_text = text;
}

/* The run directory is the command's (r->cmd_hex): a new one is claimed for it; one that another
 * command's run made is refused (resuming that would run the other program, silently). */
static int claim_run(struct run *r)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	struct ferry_error *err = NULL;
	const char *hex = r->cmd_hex, *text = r->cmd_text;
	_cleanup_close_ int fd = openat(r->dirfd, RUN_COMMAND, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT)
		return cli_fail("open '%s/%s': %s", r->dir, RUN_COMMAND, strerror(errno));
	if (fd < 0) {
		_cleanup_free_ char *line = xasprintf("%s %s\n", hex, text);
		if (ferry_write_file_atomic(r->dirfd, RUN_COMMAND, line, strlen(line), 0644, &err) < 0)
			return cli_error(err);
		return 0;
	}
	if (ferry_read_all(fd, 4096, &buf, &len, &err) < 0)
		return cli_error(err);
	if (len > 65 && memcmp(buf, hex, 64) == 0 && buf[64] == ' ')
		return 0;
	char unknown[] = "?", *other = len > 65 ? buf + 65 : unknown;
	other[strcspn(other, "\n")] = '\0';
	return cli_fail("checkpoint '%s' belongs to another command ('%s'), not to '%s': give this one a "
			"--checkpoint NAME of its own",
			r->name, other, text);
}

/* The program's exit status, once the program ended by itself (written by the wrapper); false
 * when it did not (it runs, or was stopped or killed in a checkpoint). */
static bool exit_status(struct run *r, unsigned long long *ret)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", RUN_STATUS, RUN_EXIT_FILE);
	_cleanup_close_ int fd = openat(r->dirfd, p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	char buf[16] = "";
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return parse_uint64(buf, 255, ret) == 0;
}

/* ---- the run ---- */

static int open_run_dir(struct run *r)
{
	r->dir = checkpoint_make_path(r->name);
	if (!r->dir)
		return 255;
	r->dirfd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->dirfd < 0)
		return cli_fail("open '%s': %s", r->dir, strerror(errno));
	struct stat st;
	if (!run_dir_is(r->dir)) {
		if (fstatat(r->dirfd, "current", &st, AT_SYMLINK_NOFOLLOW) == 0)
			return cli_fail("checkpoint '%s' holds an instance's checkpoint, not a run's: give "
					"'ferry run --checkpoint' a new NAME",
					r->name);
		struct ferry_error *err = NULL;
		if (ferry_write_file_atomic(r->dirfd, RUN_MARKER, marker_text, strlen(marker_text), 0644,
					    &err) < 0)
			return cli_error(err);
	}
	if (mkdirat(r->dirfd, RUN_STATUS, 0700) < 0 && errno != EEXIST)
		return cli_fail("create '%s/%s': %s", r->dir, RUN_STATUS, strerror(errno));
	r->lockfd = openat(r->dirfd, RUN_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (r->lockfd < 0)
		return cli_fail("open '%s/%s': %s", r->dir, RUN_LOCK, strerror(errno));
	if (flock(r->lockfd, LOCK_EX | LOCK_NB) < 0)
		return cli_fail(
		    "checkpoint '%s' is in use by another 'ferry run --checkpoint': one run at a time",
		    r->name);
	return 0;
}

/* 'scontrol requeue' of the Slurm job we run in (SLURM_JOB_ID), with our environment. */
static void requeue(struct run *r)
{
	extern char **environ;
	const char *job = secure_getenv("SLURM_JOB_ID");
	if (!job || !*job) {
		fprintf(stderr, "ferry: run '%s': --requeue: not in a Slurm job (no SLURM_JOB_ID)\n",
			r->name);
		return;
	}
	_cleanup_free_ char *scontrol = slurm_scontrol();
	if (!scontrol) {
		fprintf(stderr,
			"ferry: run '%s': --requeue: no 'scontrol' in PATH: requeue job %s yourself\n",
			r->name, job);
		return;
	}
	/* a job that is no longer running was cancelled (scancel's SIGTERM): the user wants it
	 * gone, not requeued; its checkpoint stays for a later submission */
	_cleanup_free_ char *show = slurm_job_show(scontrol, job);
	_cleanup_free_ char *state = slurm_field(show, "JobState");
	if (state && !streq(state, "RUNNING")) {
		fprintf(stderr,
			"ferry: run '%s': Slurm job %s is %s, not RUNNING (cancelled?): not requeued\n",
			r->name, job, state);
		return;
	}
	char *const argv[] = {"scontrol", "requeue", (char *)job, NULL};
	struct ferry_spawn_opts opts = {.capture_stderr = true, .timeout = 60};
	struct ferry_error *err = NULL;
	if (ferry_spawn(scontrol, argv, environ, &opts, NULL, &err) < 0) {
		fprintf(stderr, "ferry: run '%s': requeue of job %s failed: %s\n", r->name, job,
			err && err->message ? err->message : "?");
		ferry_error_free(err);
		return;
	}
	fprintf(stderr, "ferry: run '%s': Slurm job %s requeued\n", r->name, job);
}

/* Seconds until the Slurm job's time limit, when ferry is to checkpoint before it
 * (--ferry-checkpoint's grace); -1 when not (no limit, not a job, not asked), -2 when it
 * cannot be known (said). */
static long long job_time_left(struct run *r)
{
	const char *job = secure_getenv("SLURM_JOB_ID");
	if (!r->o->run.end_grace || !job || !*job)
		return -1;
	_cleanup_free_ char *scontrol = slurm_scontrol();
	long long left = scontrol ? slurm_time_left(scontrol, job) : -2;
	if (left == -2)
		fprintf(
		    stderr,
		    "ferry: run '%s': cannot learn Slurm job %s's time limit (scontrol %s): no checkpoint "
		    "before it; add '#SBATCH --signal=B:USR1@%llu'\n",
		    r->name, job, scontrol ? "failed" : "is not in PATH", r->o->run.end_grace);
	return left;
}

/* When to checkpoint and stop before the time limit, as a ferry_monotonic_ms() time, or -1:
 * the grace before it, or half the time left when that is shorter, so that a job resumed close
 * to its limit still makes progress before it stops again. */
static long long end_deadline(struct run *r)
{
	long long left = job_time_left(r);
	if (left < 0)
		return -1;
	long long wait = left - (long long)r->o->run.end_grace;
	if (wait < left / 2)
		wait = left / 2;
	fprintf(stderr, "ferry: run '%s': Slurm job %s ends in %lld s: checkpointing %lld s before\n",
		r->name, secure_getenv("SLURM_JOB_ID"), left, left - wait);
	return ferry_monotonic_ms() + wait * 1000;
}

/* Waits (a while) for the instance's init to end after a stopping dump. */
static void wait_gone(struct run *r, int seconds)
{
	struct pollfd p = {.fd = r->pidfd, .events = POLLIN};
	if (r->pidfd >= 0)
		(void)poll(&p, 1, seconds * 1000);
}

static int program_ended(struct run *r)
{
	copy_logs(r);
	unsigned long long status = 0;
	if (!exit_status(r, &status))
		return cli_fail(
		    "run '%s': instance '%s' ended without the program's exit status (it was stopped or "
		    "killed); running the command again resumes from the newest generation",
		    r->name, r->instance);
	fprintf(stderr, "ferry: run '%s': the program exited with status %llu\n", r->name, status);
	if (r->o->run.delete_at_end) {
		close(r->lockfd);
		r->lockfd = -1;
		int st = checkpoint_remove_dir(r->dir);
		if (st != 0)
			fprintf(stderr, "ferry: run '%s': --delete-at-end: '%s' stays (see above)\n", r->name,
				r->dir);
		else if (!strchr(r->name, '/'))
			fprintf(stderr, "ferry: run '%s': checkpoint deleted\n", r->name);
	} else {
		prune_slots(r, r->o->run.keep ? r->o->run.keep : RUN_KEEP_DEFAULT);
	}
	return (int)status;
}

/* Checkpoints and stops the program (@why: "got SIGUSR1"...); the exit status. */
static int stop_checkpoint(struct run *r, const char *why)
{
	unsigned long long seq = 0;
	fprintf(stderr, "ferry: run '%s': %s: checkpointing and stopping\n", r->name, why);
	if (take_checkpoint(r, false, &seq) < 0) {
		/* the starter said why; the instance keeps running, and ends with us */
		_cleanup_free_ unsigned long long *done = NULL;
		size_t n = list_slots(r->dirfd, true, &done);
		if (n)
			return cli_fail(
			    "run '%s': the checkpoint failed; generation %llu is the newest to resume from",
			    r->name, done[n - 1]);
		return cli_fail("run '%s': the checkpoint failed and there is no generation to resume from",
				r->name);
	}
	wait_gone(r, 30);
	copy_logs(r);
	prune_slots(r, r->o->run.keep ? r->o->run.keep : RUN_KEEP_DEFAULT);
	if (r->o->run.requeue)
		requeue(r);
	fprintf(stderr,
		"ferry: run '%s': stopped in generation %llu; run the same command to resume (exit %d)\n",
		r->name, seq, RUN_EXIT_CHECKPOINTED);
	return RUN_EXIT_CHECKPOINTED;
}

static int run_loop(struct run *r)
{
	unsigned long long every = r->o->run.every;
	long long next = every ? ferry_monotonic_ms() + (long long)every * 1000 : -1;
	long long end = end_deadline(r);
	for (;;) {
		struct pollfd p[2] = {{.fd = r->sigfd, .events = POLLIN}, {.fd = r->pidfd, .events = POLLIN}};
		int n = poll(p, r->pidfd >= 0 ? 2 : 1, 250);
		copy_logs(r);
		if (n > 0 && (p[0].revents & POLLIN)) {
			struct signalfd_siginfo si;
			if (read(r->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				_cleanup_free_ char *why =
				    xasprintf("got SIG%s", sigabbrev_np((int)si.ssi_signo));
				return stop_checkpoint(r, why);
			}
		}
		if (r->pidfd < 0 || (n > 0 && (p[1].revents & (POLLIN | POLLHUP))))
			return program_ended(r);
		if (next >= 0 && ferry_monotonic_ms() >= next) {
			unsigned long long seq = 0;
			int tc = take_checkpoint(r, true, &seq);
			if (tc == 0)
				prune_slots(r, r->o->run.keep ? r->o->run.keep : RUN_KEEP_DEFAULT);
			else if (tc == -1)
				fprintf(
				    stderr,
				    "ferry: run '%s': that checkpoint failed (see above); the program goes on\n",
				    r->name);
			next = ferry_monotonic_ms() + (long long)every * 1000;
		}
		if (end >= 0 && ferry_monotonic_ms() >= end) {
			/* asked again: an administrator may have moved the limit since */
			long long left = job_time_left(r);
			if (left == -1 || left - (long long)r->o->run.end_grace > 10)
				end = end_deadline(r);
			else
				return stop_checkpoint(r, "the Slurm job's time limit is near");
		}
	}
}

static int run_body(struct run *r, const char *image, char **args, bool exec_mode)
{
	int st = open_run_dir(r);
	if (st != 0 || (st = claim_run(r)) != 0)
		return st;
	/* over already (ended by itself, and not resumed since): a requeued job script that runs
	 * it again goes on to its next command */
	unsigned long long ended = 0;
	if (exit_status(r, &ended)) {
		fprintf(stderr,
			"ferry: run '%s': the program already ended, with status %llu: not run again "
			"('ferry checkpoint delete %s' starts it over)\n",
			r->name, ended, r->name);
		return (int)ended;
	}
	r->instance = instance_name(r->dir);
	struct ferry_error *err = NULL;
	if (ferry_name_check(r->instance, "instance", &err) < 0)
		return cli_error(err);
	/* the signals that end a run are read in the loop, and stay pending during a dump */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, r->o->run.signal ? r->o->run.signal : SIGUSR1);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 || (r->sigfd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0)
		return cli_fail("signalfd: %s", strerror(errno));
	_cleanup_free_ unsigned long long *all = NULL, *done = NULL;
	size_t n_all = list_slots(r->dirfd, false, &all);
	size_t n_done = list_slots(r->dirfd, true, &done);
	r->last_seq = n_all ? all[n_all - 1] : 0;
	st = n_done ? resume(r, image, done, n_done) : start_fresh(r, image, args, exec_mode);
	if (st != 0)
		return st;
	if (watch_instance(r) < 0)
		return 255;
	start_watchdog(r);
	return run_loop(r);
}

int resumable_run(struct container_opts *o, const char *image, char **args, bool exec_mode)
{
	struct run r = {
	    .o = o, .name = o->run.checkpoint, .dirfd = -1, .lockfd = -1, .sigfd = -1, .pidfd = -1};
	/* the job's own name (slurm.c): one directory per command of the job script, so that a
	 * requeued script finds each command's run again and none resumes another's */
	_cleanup_free_ char *named = NULL;
	run_identity(image, args, exec_mode, r.cmd_hex, &r.cmd_text);
	if (o->run.per_command)
		r.name = named = xasprintf("%s-%.8s", o->run.checkpoint, r.cmd_hex);
	if (gethostname(r.host, sizeof(r.host) - 1) < 0)
		snprintf(r.host, sizeof(r.host), "localhost");
	int st = run_body(&r, image, args, exec_mode);
	int fds[] = {r.pidfd, r.sigfd, r.lockfd, r.dirfd, r.watchdog};
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(r.dir);
	free(r.instance);
	free(r.cmd_text);
	free(r.log[0]);
	free(r.log[1]);
	return st;
}
