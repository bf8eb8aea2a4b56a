/* SPDX-License-Identifier: GPL-2.0-or-later */
/* monitor.c — running a container: exec (wait for it), instance start (the root monitor that
 * attaches the network, writes the record and cleans up), and joining a running instance. */
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <linux/sched.h>

#include "fs.h"
#include "instance.h"
#include "spawn.h"
#include "plan.h"
#include "starter.h"
#include "transfer.h"
#include "xfer.h"

pid_t clone_ns(unsigned long flags)
{
	struct clone_args args = {.flags = flags, .exit_signal = SIGCHLD};
	return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
}

/* ---- running ---- */

static int atoi_strict(const char *p)
{
	unsigned long long v = 0;
	char buf[16];
	size_t n = strcspn(p, "\n");
	if (n == 0 || n >= sizeof(buf))
		return 0;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return parse_uint64(buf, INT32_MAX, &v) < 0 ? 0 : (int)v;
}

static volatile sig_atomic_t forward_to;

static void forward_signal(int sig, siginfo_t *info, void *ctx)
{
	/* a terminal's signals already reach the whole foreground group: pass on only kill()s */
	if (forward_to > 0 && info->si_code <= 0)
		kill(forward_to, sig);
}

static _noreturn_ void wait_and_exit(pid_t child)
{
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCONT, SIGWINCH};
	struct sigaction sa = {.sa_sigaction = forward_signal, .sa_flags = SA_SIGINFO | SA_RESTART};
	sigemptyset(&sa.sa_mask);
	forward_to = child;
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
	int st;
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR)
			die("wait for the container: %s", strerror(errno));
	if (WIFEXITED(st))
		exit(WEXITSTATUS(st));
	if (WIFSIGNALED(st))
		exit(128 + WTERMSIG(st));
	exit(255);
}

/* In the new namespaces, as root: build the container, then become its init. */
static _noreturn_ void container_child(struct starter *s, int report, int go)
{
	struct ferry_error *err = NULL;
	if (container_setup(s, &err) < 0) {
		report_error(report, err);
		_exit(255);
	}
	if (go >= 0) {
		/* the monitor attaches our network namespace: nothing runs before it is ready */
		char c = 0;
		if (read(go, &c, 1) != 1)
			_exit(255); /* the monitor reported why */
		close(go);
	}
	if (s->instance) {
		/* stdio from inside the container (see plan_mounts), opened by container_setup before
		 * the user's binds: never by a path the binds could change */
		for (int i = 0; i < 3; i++) {
			if (s->stdio[i] < 0 || dup2(s->stdio[i], i) < 0) {
				ferry_error_set(&err, s->stdio[i] < 0 ? ENOENT : errno,
						"open the instance's stdio in the container");
				report_error(report, err);
				_exit(255);
			}
			closep(&s->stdio[i]);
		}
	}
	container_init(s, report);
}

void op_exec(struct starter *s)
{
	struct ferry_error *err = NULL;
	int rep[2];
	if (pipe2(rep, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	TRY(ferry_privs_raise(&s->privs, &err));
	pid_t pid = clone_ns(STARTER_NS_FLAGS);
	if (pid < 0)
		die("create the container's namespaces: %s", strerror(errno));
	if (pid == 0) {
		close(rep[0]);
		container_child(s, rep[1], -1);
	}
	close(rep[1]);
	/* the parent only waits: it needs no privilege for that */
	TRY(ferry_privs_drop(&s->privs, NULL, 0, &err));
	_cleanup_free_ char *msg = read_report(rep[0]);
	if (msg) {
		/* the container's own status says what failed: 127/126 when the command could not be
		 * run (like a shell), 255 when ferry could not build the container */
		int st = 0;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		const char *text = startswith(msg, "E ") ? msg + 2 : msg;
		char *nl = strchr(text, '\n');
		if (nl)
			*nl = '\0';
		fprintf(stderr, "ferry: %s\n", text);
		exit(WIFEXITED(st) && WEXITSTATUS(st) != 0 ? WEXITSTATUS(st) : 255);
	}
	wait_and_exit(pid);
}

/* The instance monitor: root's, it starts the container, attaches its network, writes the
 * record, then waits and cleans up. */
struct mon {
	struct starter *s;
	int dirfd; /* the user's record directory */
	int top; /* the report to the starter the user waits on */
	int live; /* live: the starter's 'A' once every page is in (-1: not live) */
	pid_t pid; /* the container's init */
	bool net;
	int netns_fd;
	struct ferry_net_attachment atts[FERRY_NET_MAX];
	size_t n_atts;
	char *launch_name; /* ".NAME.launch", next to the record */
};

/* A failed start: tell the starter why, stop the container, give its addresses back (a record
 * that could not be written fails after the ADD), drop the reservation. */
static _noreturn_ void mon_fail(struct mon *m, struct ferry_error *err)
{
	report_error(m->top, err);
	if (m->pid > 0) {
		kill(m->pid, SIGKILL);
		waitpid(m->pid, NULL, 0);
	}
	network_detach(m->s, m->netns_fd, m->atts, m->n_atts);
	unlinkat(m->dirfd, m->s->req->instance, 0);
	if (m->launch_name)
		unlinkat(m->dirfd, m->launch_name, 0);
	_exit(1);
}

/* The monitor is root's alone: with the caller's real uid the caller could signal (stop, kill)
 * it, and helpers such as nft refuse to run with mixed ids. The container it starts takes the
 * caller's identity from s->privs. */
static void mon_become_root(struct mon *m)
{
	struct ferry_error *err = NULL;
	setsid();
	if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
		ferry_error_set(&err, errno, "become root for the instance monitor");
		mon_fail(m, err);
	}
	/* the top process answers the sender: a copy of any end of the session here would keep
	 * its channel from ending (and the session, whose end waits for every channel's) */
	xfer_session_drop();
	closep(&m->s->xfer_fd);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	dup2(null, 0);
	dup2(null, 1);
	dup2(null, 2);
}

static int mon_lock_loopback(struct mon *m, struct ferry_error **err)
{
	char nspath[64];
	snprintf(nspath, sizeof(nspath), "/proc/%d/ns/net", (int)m->pid);
	m->netns_fd = open(nspath, O_RDONLY | O_CLOEXEC);
	if (m->netns_fd < 0)
		return ferry_error_set(err, errno, "open the instance's network namespace");
	return network_restore_lock(m->s, m->netns_fd, true, err);
}

/* Starts the container in its namespaces, attaches its network (or locks its loopback for a
 * restore) and lets it go on; returns the fd its report arrives on. */
static int mon_spawn(struct mon *m)
{
	struct ferry_error *err = NULL;
	struct starter *s = m->s;
	int rep[2], go[2] = {-1, -1};
	bool lock_lo = s->loopback_net && s->restore_fd >= 0;
	if (pipe2(rep, O_CLOEXEC) < 0 || ((m->net || lock_lo) && pipe2(go, O_CLOEXEC) < 0)) {
		ferry_error_set(&err, errno, "pipe");
		mon_fail(m, err);
	}
	pid_t pid = clone_ns(STARTER_NS_FLAGS | (m->net || s->loopback_net ? CLONE_NEWNET : 0));
	if (pid < 0) {
		ferry_error_set(&err, errno, "create the container's namespaces");
		mon_fail(m, err);
	}
	if (pid == 0) {
		close(m->top);
		close(rep[0]);
		close(m->dirfd);
		dup2(s->log_out, 1);
		dup2(s->log_err, 2);
		closep(&go[1]);
		container_child(s, rep[1], go[0]);
	}
	m->pid = pid;
	close(rep[1]);
	closep(&go[0]);
	if (m->net && network_attach(s, pid, &m->netns_fd, m->atts, &m->n_atts, &err) < 0)
		mon_fail(m, err);
	if (lock_lo && mon_lock_loopback(m, &err) < 0)
		mon_fail(m, err);
	if (go[1] >= 0) {
		(void)ferry_write_all(go[1], "g", 1);
		close(go[1]);
	}
	return rep[0];
}

/* The container reports "E message" on failure, "P pid" for a checkpointable workload. */
static const char *parse_container_report(char *text, long long *ret_workload)
{
	const char *msg = NULL;
	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (startswith(line, "E ") && !msg)
			msg = line;
		else if (startswith(line, "P "))
			*ret_workload = strtoll(line + 2, NULL, 10);
		line = nl ? nl + 1 : NULL;
	}
	return msg;
}

/* What 'checkpoint instance' will seal into the checkpoint: how to rebuild this container;
 * kept root-only next to the record. */
static void mon_write_launch(struct mon *m)
{
	struct ferry_error *err = NULL;
	struct starter *s = m->s;
	struct ferry_request launch = plan_as_launch(s->req);
	/* the instance's network identity, whoever chose it (the user or the network's IPAM): a
	 * restart anywhere rebuilds exactly this address and MAC, and checks what the user chose of
	 * it against what users may choose there (FERRY_REQ_NET_IPAM: who chose, as prepare_container
	 * set it, not as the request's own flags said) */
	launch.flags = (launch.flags & ~(uint32_t)FERRY_REQ_NET_IPAM) |
		       (launch.flags & FERRY_REQ_NET ? FERRY_REQ_NET_SAID : 0) |
		       (s->net_args.ipam_ip ? FERRY_REQ_NET_IPAM_IP : 0) |
		       (s->net_args.ipam_mac ? FERRY_REQ_NET_IPAM_MAC : 0);
	_cleanup_free_ char *identity = NULL;
	if (m->net && m->atts[0].ip && m->atts[0].mac) {
		identity = xasprintf("IP=%s;MAC=%s%s%s", m->atts[0].ip, m->atts[0].mac,
				     s->net_args.gw ? ";GW=" : "", s->net_args.gw ? s->net_args.gw : "");
		launch.network_args = identity;
	}
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	if (ferry_request_encode(&launch, &buf, &len, &err) < 0 ||
	    ferry_write_file_atomic(m->dirfd, m->launch_name, buf, len, 0600, &err) < 0)
		mon_fail(m, err);
}

static void mon_write_record(struct mon *m, long long workload, unsigned long long starttime)
{
	struct ferry_error *err = NULL;
	struct starter *s = m->s;
	struct ferry_instance inst = {
	    .name = s->req->instance,
	    .uid = s->privs.uid,
	    .gid = s->privs.gid,
	    .pid = m->pid,
	    .monitor = getpid(),
	    .starttime = starttime,
	    .created = (long long)time(NULL),
	    .image = s->req->image,
	    .log_out = s->log_out_path,
	    .log_err = s->log_err_path,
	    .checkpoint = s->criu ? s->req->checkpoint : NULL,
	    .workload = workload,
	    .image_fingerprint = s->image_fingerprint,
	    .node = ferry_node_id(),
	    .networks = m->net ? (s->req->networks ? s->req->networks : "bridge") : NULL,
	    .loopback = s->loopback_net,
	    .private_tmp = s->private_tmp,
	    .ip = m->atts[0].ip,
	    .mac = m->atts[0].mac,
	    .gw = s->net_args.gw,
	    .ipam_ip = s->net_args.ipam_ip,
	    .ipam_mac = s->net_args.ipam_mac,
	};
	_cleanup_free_ char *command = join_argv(s->req->argv);
	inst.command = command;
	_cleanup_free_ char *rec = ferry_instance_format(&inst);
	if (strlen(rec) > FERRY_INSTANCE_RECORD_MAX) {
		ferry_error_msg(&err, EFBIG, "the instance record would exceed %d bytes",
				FERRY_INSTANCE_RECORD_MAX);
		mon_fail(m, err);
	}
	if (ferry_write_file_atomic(m->dirfd, s->req->instance, rec, strlen(rec), 0600, &err) < 0)
		mon_fail(m, err);
}

/* From here on the monitor only waits and cleans up: it keeps uid 0 (the record directory is
 * root's) and what the network's DEL needs, and gives up every other capability. */
static _noreturn_ void mon_wait_and_clean(struct mon *m)
{
	if (!m->net)
		(void)ferry_privs_clear_caps(NULL);
	int st;
	while (waitpid(m->pid, &st, 0) < 0 && errno == EINTR)
		;
	if (m->net)
		network_detach(m->s, m->netns_fd, m->atts, m->n_atts);

	/* remove the record only if it is still ours (a failed start removed it already) */
	struct ferry_instance *cur = NULL;
	struct ferry_error *ignored = NULL;
	bool gone = read_record(m->dirfd, m->s->req->instance, &cur, &ignored) < 0;
	if (!gone && cur->pid == m->pid)
		unlinkat(m->dirfd, m->s->req->instance, 0);
	if (gone || cur->pid == m->pid) /* (someone listing may have dropped the record first) */
		unlinkat(m->dirfd, m->launch_name, 0);
	ferry_instance_free(cur);
	ferry_error_free(ignored);
	_exit(0);
}

static _noreturn_ void monitor(struct starter *s, int dirfd, int top, int live)
{
	struct mon m = {
	    .s = s, .dirfd = dirfd, .top = top, .live = live, .net = s->networks != NULL, .netns_fd = -1};
	/* A checkpointable instance without --net gets a network namespace with only lo (unless the
	 * admin chose 'criu network = host'): its TCP connections, which stay inside, can then be
	 * dumped and restored by a CRIU holding CAP_NET_ADMIN over that namespace alone. Its restart
	 * makes a fresh one the same way, locked while CRIU restores (mon_lock_loopback). */
	s->loopback_net = !m.net && s->criu && s->cfg->criu_loopback;
	/* a restart makes the namespace its checkpoint was dumped from, whatever this node's
	 * default: CRIU restores a loopback instance's connections only into a namespace of its own,
	 * and a host-network one's sockets only into the host's */
	if (s->restore_fd >= 0 && s->manifest && s->manifest->netns && !m.net)
		s->loopback_net = streq(s->manifest->netns, "loopback");
	mon_become_root(&m);
	int rep = mon_spawn(&m);
	m.launch_name = xasprintf(".%s.launch", s->req->instance);
	_cleanup_free_ char *text = read_report(rep);
	long long workload = 0;
	const char *msg = parse_container_report(text, &workload);
	if (!msg && s->criu && workload <= 0 && (s->restore_fd >= 0 || (s->req->argv && s->req->argv[0])))
		msg = "E the checkpointable workload did not report its pid";
	unsigned long long starttime = 0;
	if (!msg && ferry_proc_starttime(m.pid, &starttime) < 0)
		msg = "E the instance exited at once: see its log";
	if (!msg && s->criu)
		mon_write_launch(&m);
	if (!msg) {
		mon_write_record(&m, workload, starttime);
		char ok[32];
		int okn = snprintf(ok, sizeof(ok), "OK %d\n", (int)m.pid);
		(void)ferry_write_all(top, ok, (size_t)okn);
	} else {
		(void)ferry_write_all(top, msg, strlen(msg));
		(void)ferry_write_all(top, "\n", 1);
		kill(m.pid, SIGKILL);
		/* the start failed: drop our reservation of the name */
		unlinkat(dirfd, s->req->instance, 0);
		unlinkat(dirfd, m.launch_name, 0);
	}
	close(top);
	if (s->restore_fd >= 0 && m.net) {
		network_restore_unlock(s, m.netns_fd, false);
		if (!msg)
			network_announce(m.netns_fd, m.atts, m.n_atts); /* the address moved here */
	} else if (s->restore_fd >= 0 && s->loopback_net) {
		network_restore_unlock(s, m.netns_fd, true);
	}
	/* live: the restored tree runs while its pages arrive; a page that never comes would read
	 * as zeros once the lazy-pages daemon is gone. Unless the starter says every page is in
	 * (it ends the tree itself when the daemon fails), the tree ends here: whatever kills the
	 * starter cannot leave it running on half its memory. */
	char all = 0;
	if (!msg && m.live >= 0 && (read(m.live, &all, 1) != 1 || all != 'A'))
		kill(m.pid, SIGKILL);
	mon_wait_and_clean(&m);
}

/* Ends the instance the monitor reported started ("OK PID": its init). */
static void kill_restored(const char *msg)
{
	int init = msg[2] == ' ' ? atoi_strict(msg + 3) : 0;
	int pfd = init > 0 ? (int)syscall(SYS_pidfd_open, init, 0) : -1;
	if (pfd >= 0)
		syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
}

/* A new instance starts new logs; one restarted under its own name goes on writing after what it
 * wrote before the checkpoint (its restored stdout and stderr are O_APPEND). */
static void start_logs(struct starter *s, int dirfd)
{
	bool same = (s->req->flags & FERRY_REQ_CRIU_RESTART) && s->manifest && s->manifest->instance &&
		    streq(s->manifest->instance, s->req->instance);
	if (s->log_out_path && !same && (ftruncate(s->log_out, 0) < 0 || ftruncate(s->log_err, 0) < 0)) {
		unlinkat(dirfd, s->req->instance, 0);
		die("truncate the instance logs: %s", strerror(errno));
	}
}

/* Forks the monitor; returns the end its report arrives on, and in *@ret_live the end that
 * tells it every page is in (-1: not live). */
static int fork_monitor(struct starter *s, int dirfd, int *ret_live)
{
	int top[2], live[2] = {-1, -1};
	if (pipe2(top, O_CLOEXEC) < 0 || (s->lazy && pipe2(live, O_CLOEXEC) < 0)) {
		unlinkat(dirfd, s->req->instance, 0);
		die("pipe: %s", strerror(errno));
	}
	pid_t mon = fork();
	if (mon < 0) {
		unlinkat(dirfd, s->req->instance, 0);
		die("fork: %s", strerror(errno));
	}
	if (mon == 0) {
		close(top[0]);
		closep(&live[1]);
		monitor(s, dirfd, top[1], live[0]);
	}
	close(top[1]);
	closep(&live[0]);
	*ret_live = live[1];
	return top[0];
}

/* Live: it runs, and must not go on without every page (a page the daemon never delivers would
 * read as zeros once its userfaultfd is gone): waits for them, then lets the monitor run it on. */
static void await_pages(struct starter *s, const char *msg, int live, unsigned long long *ret_faults,
			unsigned long long *ret_pages)
{
	struct ferry_error *e = NULL;
	if (checkpoint_lazy_wait(s, ret_faults, ret_pages, &e) < 0) {
		kill_restored(msg);
		die("instance '%s' was restored but %s; this copy is stopped, the source keeps its own",
		    s->req->instance, e->message);
	}
	starter_t_allin = ferry_monotonic_ms();
	(void)ferry_write_all(live, "A", 1); /* the monitor lets it run on */
}

/* For ferryd (FERRY_REQ_TIMINGS): the "timing" line of a start, and how much it moved. */
static void print_timings(const struct starter *s, long long t_ok, unsigned long long faults,
			  unsigned long long pages)
{
	unsigned long long bytes = 0;
	for (size_t i = 0; s->manifest && i < s->manifest->n_files; i++)
		bytes += s->manifest->files[i].size;
	printf("timing start=%lld received=%lld restored=%lld allin=%lld bytes=%llu faults=%llu "
	       "lazy=%llu\n",
	       starter_t_start, starter_t_received ? starter_t_received : starter_t_start, t_ok,
	       starter_t_allin ? starter_t_allin : t_ok, bytes, faults, pages);
	fflush(stdout);
}

/* Two copies must never run: the source ends its copy on our word, and we keep ours only on its
 * commit. No commit (it died, the link broke): stop ours. */
static void await_commit(struct starter *s, const char *msg)
{
	(void)ferry_xfer_send_verdict(starter_verdict_fd, NULL);
	int committed = ferry_xfer_await_commit(starter_verdict_fd, s->cfg->peer_timeout);
	/* committed: the connection ends clean for ferryd again. Not: the peer went silent for 'peer
	 * timeout' (ferryd drops the link, in doubt), or said no and ends its side at once. */
	(void)xfer_session_finish(committed < 0 ? 2 : 30);
	if (committed < 0 && (s->lazy || s->dedup)) {
		/* live, and diskless (whose restore used up the received checkpoint): no checkpoint
		 * holds this copy's memory, and the source may have let its own go (it decided, and
		 * the commit was lost): this one, whole, may be the only one. Frozen, not ended, until
		 * the two ferryd settle the move (reconcile.c). */
		int init = msg[2] == ' ' ? atoi_strict(msg + 3) : 0;
		if (init > 0)
			(void)ferry_signal_tree(init, SIGSTOP);
		starter_verdict_fd = -1;
		die("instance '%s' was restored here with every page but the source never confirmed "
		    "the move: it is frozen until the two nodes' ferryd settle the move (no "
		    "checkpoint holds its memory)",
		    s->req->instance);
	}
	if (committed < 0) {
		kill_restored(msg);
		starter_verdict_fd = -1;
		die("instance '%s' was restored but the source never confirmed the move: this copy is "
		    "stopped; the source runs it on, unless it decided first: then '%s' here holds it",
		    s->req->instance, s->req->checkpoint);
	}
}

void op_instance_start(struct starter *s)
{
	struct ferry_error *err = NULL;
	TRY(ferry_privs_raise(&s->privs, &err));
	int dirfd = ferry_open_rundir(s->privs.uid, true, &err);
	if (dirfd < 0)
		die_error(err);
	TRY(reserve_name(s, dirfd, &err));
	start_logs(s, dirfd);
	int live = -1;
	int top = fork_monitor(s, dirfd, &live);
	close(dirfd);
	TRY(ferry_privs_drop(&s->privs, NULL, 0, &err));
	_cleanup_free_ char *msg = read_report(top);
	long long t_ok = ferry_monotonic_ms();
	unsigned long long faults = 0, pages = 0;
	if (msg && startswith(msg, "OK") && s->lazy_pid > 0)
		await_pages(s, msg, live, &faults, &pages);
	if (msg && startswith(msg, "OK")) {
		if (starter_want_timings)
			print_timings(s, t_ok, faults, pages);
		if (starter_verdict_fd >= 0)
			await_commit(s, msg);
		exit(0);
	}
	if (msg)
		die_report(msg);
	die("instance '%s' failed to start: see '%s'", s->req->instance,
	    s->log_err_path ? s->log_err_path : "its log");
}

void op_instance_join(struct starter *s)
{
	struct ferry_error *err = NULL;
	const char *name = s->req->instance;
	struct ferry_instance *inst = NULL;
	int pidfd = pin_instance(s, name, &inst, &err);
	if (pidfd < 0)
		die_error(err);
	if (setns(pidfd, instance_ns_flags(inst)) < 0)
		die("join instance '%s': %s", name, strerror(errno));

	close(pidfd);
	int rep[2];
	if (pipe2(rep, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		close(rep[0]);
		if (ferry_privs_drop(&s->privs, NULL, 0, &err) < 0) {
			report_error(rep[1], err);
			_exit(255);
		}
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		exec_workload(s, rep[1]);
	}
	close(rep[1]);
	TRY(ferry_privs_drop(&s->privs, NULL, 0, &err));
	_cleanup_free_ char *msg = read_report(rep[0]);
	if (msg) {
		waitpid(pid, NULL, 0);
		die_report(msg);
	}
	ferry_instance_free(inst);
	wait_and_exit(pid);
}
