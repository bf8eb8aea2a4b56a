/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ask.c — a local client's request, read and parsed only by a child that is the client for good
 * (privilege separation, as OpenSSH's): see ferryd.h.
 *
 * The handler (root) looks the user up, forks the reader and waits for its answer. The reader
 * wipes the cluster key, keeps only the client's socket and its end of the socket pair, drops
 * to the user for good (ids, groups, no capability, empty bounding set, no_new_privs, verified),
 * and only then reads the message with proto.c's bounds, parses and checks it. A parser bug is
 * then the user's own process misbehaving, not root's. The handler reads exactly one answer
 * within a deadline, reaps the reader (killing it if it lingers), and trusts nothing of the
 * answer it has not checked itself. */
#include <fcntl.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "ferryd.h"
#include "fs.h"
#include "privs.h"

/* how long the handler waits for the answer: the reader's two reads of FERRYD_REQUEST_TIMEOUT
 * (the length, the message), and a little */
#define ASK_DEADLINE (2 * FERRYD_REQUEST_TIMEOUT + 2)
#define ASK_EXIT_MS 5000 /* how long a reader that answered has to exit */

const char *ferryd_check_request(const struct ferryd *d, const char *name, const char *to, const char *mode,
				 char *why, size_t n)
{
	struct ferry_error *err = NULL;
	const char *addr = NULL;
	if (ferry_name_check(name, "instance", &err) < 0) {
		snprintf(why, n, "%s", err->message);
		ferry_error_free(err);
		return NULL;
	}
	if (ferryd_mode_of(mode) < 0) {
		snprintf(why, n, "unknown mode '%s': use default, diskless or live", mode);
		return NULL;
	}
	for (size_t i = 0; i < d->n_peers; i++)
		if (streq(d->peers[i].name, to))
			addr = d->peers[i].addr;
	if (streq(to, d->node))
		snprintf(why, n, "'%s' is this node: migrate to another one", to);
	else if (!addr)
		snprintf(why, n, "no node '%s' is known to ferryd on '%s'", to, d->node);
	return streq(to, d->node) ? NULL : addr;
}

/* What a start on another node may ask: what 'instance start' offers a user (start.c). */
#define START_FLAGS                                                                                          \
	(FERRY_REQ_CONTAIN | FERRY_REQ_PRIVATE_TMP | FERRY_REQ_CLEANENV | FERRY_REQ_NO_HOME |                \
	 FERRY_REQ_CRIU_LAUNCH | FERRY_REQ_CRIU_RESTART | FERRY_REQ_NET | FERRY_REQ_TCP_CLOSE |              \
	 FERRY_REQ_WAIT_ALL)

int ferryd_start_take(const struct ferry_msg *m, struct ferryd_ask *a, char *why, size_t n)
{
	struct ferry_error *err = NULL;
	size_t len = 0;
	if (ferry_msg_get_blob(m, "req", a->req, sizeof(a->req), &len, &err) < 0 || len == 0) {
		snprintf(why, n, "bad request: %s", err ? err->message : "no instance request in it");
		ferry_error_free(err);
		return -1;
	}
	_cleanup_(ferry_request_freep) struct ferry_request *req = NULL;
	if (ferry_request_decode((const char *)a->req, len, &req, &err) < 0) {
		snprintf(why, n, "%s", err->message);
		ferry_error_free(err);
		return -1;
	}
	if (req->op == FERRY_OP_INSTANCE_LIST && !req->flags && !req->instance) {
		/* (instance list --node: the user's own instances there, listed by the starter) */
		snprintf(a->instance, sizeof(a->instance), "list");
		a->req_len = (uint32_t)len;
		return 0;
	}
	if (req->op != FERRY_OP_INSTANCE_START || (req->flags & ~(uint32_t)START_FLAGS) || req->page_server) {
		snprintf(why, n,
			 "bad request: a start on another node is an 'instance start' without "
			 "--page-server (or an 'instance list')");
		return -1;
	}
	/* the instance's name, for the logs: a restart's may be its checkpoint's, unsaid */
	const char *label = req->instance;
	if (!label && (req->flags & FERRY_REQ_CRIU_RESTART) && req->checkpoint)
		label = strrchr(req->checkpoint, '/') + 1; /* (an absolute path: the decoder's check) */
	if (!label || ferry_name_check(label, "instance", &err) < 0) {
		snprintf(why, n, "%s", err ? err->message : "a start on another node names its instance");
		ferry_error_free(err);
		return -1;
	}
	snprintf(a->instance, sizeof(a->instance), "%s", label); /* checked: it fits */
	a->req_len = (uint32_t)len;
	return 0;
}

/* The checkpoint directory of launch @name for the user this process is: ferry.conf's
 * 'checkpoint dir' (in *@ret_base) and @name in it, malloc'ed; the user's entry in @pw (@buf).
 * NULL when the user has no home directory. */
static char *launch_ckdir(const struct ferryd *d, const char *name, struct passwd *pw, char *buf, size_t size,
			  char **ret_base)
{
	struct passwd *res = NULL;
	if (getpwuid_r(getuid(), pw, buf, size, &res) != 0 || !res || pw->pw_dir[0] != '/')
		return NULL;
	const char *cdir = d->cfg->checkpoint_dir;
	char *base = startswith(cdir, "~/") ? xasprintf("%s/%s", pw->pw_dir, cdir + 2) : xstrdup(cdir);
	char *ck = xasprintf("%s/%s", base, name);
	*ret_base = base;
	return ck;
}

struct tidy_arg {
	const struct ferryd *d;
	const char *name;
};

/* ferryd_launch_tidy's work, as the user: rmdir, which takes only an empty directory. */
static int tidy_as_user(void *arg, void *ans)
{
	const struct tidy_arg *t = arg;
	struct passwd pw;
	char pwbuf[16384];
	_cleanup_free_ char *base = NULL;
	_cleanup_free_ char *ck = launch_ckdir(t->d, t->name, &pw, pwbuf, sizeof(pwbuf), &base);
	int *removed = ans;
	*removed = ck && rmdir(ck) == 0;
	return 0;
}

void ferryd_launch_tidy(struct ferryd *d, const struct ferryd_user *u, const struct ferryd_ask *a,
			const char *id)
{
	if (!a->made)
		return;
	struct ferry_error *err = NULL;
	struct tidy_arg t = {.d = d, .name = a->instance};
	int removed = 0;
	if (ferryd_as_user(d, u, "ferryd-tidy", -1, tidy_as_user, &t, &removed, sizeof(removed), 10, &err) <
	    0) {
		ferryd_log(id, "the checkpoint directory of failed launch '%s' stays: %s", a->instance,
			   err->message);
		ferry_error_free(err);
	} else if (removed == 1)
		ferryd_log(id, "the checkpoint directory of failed launch '%s' was removed", a->instance);
}

/* The launcher agent's request (ferry-rsh, src/rsh/rsh.c), made an 'instance start' as the user:
 * instance @name on @node from @image, host name @host, running "sh -c @cmd" with --wait-all (a
 * daemon's launcher exits at once), a private /tmp and a clean environment (the agent's own
 * settings go on, for the daemons' agents: tree spawn), checkpointable into a checkpoint @name
 * in the user's checkpoint directory (ferry.conf's 'checkpoint dir'; launch_mkdir makes it once
 * the request passed every check); with --net on @network at address @ip when given. Its bytes
 * into @a, as ferryd_start_take's. */
static int launch_take(const struct ferryd *d, const struct ferry_msg *m, struct ferryd_ask *a, char *why,
		       size_t n)
{
	struct ferry_error *err = NULL;
	const char *host = ferry_msg_get(m, "host"), *name = ferry_msg_get(m, "instance"),
		   *image = ferry_msg_get(m, "image"), *cmd = ferry_msg_get(m, "cmd"),
		   *net = ferry_msg_get(m, "network"), *ip = ferry_msg_get(m, "ip"),
		   *hosts = ferry_msg_get(m, "rsh_hosts");
	if (!host || !name || !image || !cmd || !*cmd) {
		snprintf(why, n, "bad request: a launch has host, instance, image and cmd");
		return -1;
	}
	if (ferry_name_check(name, "instance", &err) < 0 || ferry_name_check(host, "host", &err) < 0) {
		snprintf(why, n, "%s", err->message);
		ferry_error_free(err);
		return -1;
	}
	struct passwd pw;
	char pwbuf[16384];
	_cleanup_free_ char *base = NULL;
	_cleanup_free_ char *ck = launch_ckdir(d, name, &pw, pwbuf, sizeof(pwbuf), &base);
	if (!ck) {
		snprintf(why, n, "you have no home directory on %s", d->node);
		return -1;
	}
	char *argv[] = {"sh", "-c", (char *)cmd, NULL};
	char **env = NULL;
	strv_push(&env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	char *kv[] = {xasprintf("HOME=%s", pw.pw_dir),
		      xasprintf("USER=%s", pw.pw_name),
		      xasprintf("LOGNAME=%s", pw.pw_name),
		      xasprintf("FERRY_CONTAINER=%s", image),
		      xasprintf("FERRY_INSTANCE=%s", name),
		      hosts ? xasprintf("FERRY_RSH_HOSTS=%s", hosts) : NULL,
		      net ? xasprintf("FERRY_RSH_NETWORK=%s", net) : NULL};
	for (size_t i = 0; i < ARRAY_SIZE(kv); i++)
		if (kv[i]) {
			strv_push(&env, kv[i]);
			free(kv[i]);
		}
	_cleanup_free_ char *args = ip ? xasprintf("IP=%s", ip) : NULL;
	struct ferry_request req = {.op = FERRY_OP_INSTANCE_START,
				    .flags = FERRY_REQ_CRIU_LAUNCH | FERRY_REQ_WAIT_ALL |
					     FERRY_REQ_PRIVATE_TMP | FERRY_REQ_CLEANENV |
					     (net ? FERRY_REQ_NET : 0),
				    .image = (char *)image,
				    .instance = (char *)name,
				    .cwd = "/",
				    .hostname = (char *)host,
				    .argv = argv,
				    .env = env,
				    .checkpoint = ck,
				    .networks = (char *)net,
				    .network_args = args};
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = ferry_request_encode(&req, &buf, &len, &err);
	strv_free(env);
	if (r < 0 || len > sizeof(a->req)) {
		snprintf(why, n, "%s", r < 0 ? err->message : "bad request: the launch is too large");
		ferry_error_free(err);
		return -1;
	}
	memcpy(a->req, buf, len);
	a->req_len = (uint32_t)len;
	snprintf(a->instance, sizeof(a->instance), "%s", name); /* checked: it fits */
	return 0;
}

/* The checkpoint directory of a launch that passed every check (its reader's last step, so that
 * a refusal leaves none), made as the user; a->made when it is new: a start that fails removes
 * it again (ferryd_launch_tidy). */
static int launch_mkdir(const struct ferryd *d, struct ferryd_ask *a, char *why, size_t n)
{
	struct ferry_error *err = NULL;
	struct passwd pw;
	char pwbuf[16384];
	_cleanup_free_ char *base = NULL;
	_cleanup_free_ char *ck = launch_ckdir(d, a->instance, &pw, pwbuf, sizeof(pwbuf), &base);
	if (!ck) {
		snprintf(why, n, "you have no home directory on %s", d->node);
		return -1;
	}
	if (ferry_mkdir_p(base, 0700, &err) < 0) {
		snprintf(why, n, "%s", err->message);
		ferry_error_free(err);
		return -1;
	}
	if (mkdir(ck, 0700) == 0)
		a->made = 1;
	else if (errno != EEXIST) {
		snprintf(why, n, "create checkpoint '%s': %s", ck, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- a child that is the user for good ---- */

/* Nothing but @keep (when >= 0) and @out; stdio on /dev/null (the log is root's); then the user
 * for good, and dead with the handler. */
static int become_user(const struct ferryd_user *u, const char *comm, int keep, int out, pid_t handler,
		       struct ferry_error **err)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
		return ferry_error_set(err, errno, "/dev/null");
	ferry_close_fds(3, (const int[]){out, keep, -1});
	prctl(PR_SET_NAME, comm, 0, 0, 0);
	struct ferry_privs p = {.uid = u->uid, .gid = u->gid, .n_groups = u->n_groups};
	memcpy(p.groups, u->groups, sizeof(gid_t) * (size_t)u->n_groups);
	int r = ferry_privs_drop(&p, NULL, 0, err);
	if (r < 0)
		return r;
	/* (after the drop: a change of credentials clears the death signal) */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return ferry_error_set(err, errno, "PR_SET_PDEATHSIG");
	if (getppid() != handler)
		_exit(255);
	return 0;
}

/* ---- the reader: the client for good ---- */

static int refuse(struct ferryd_ask *a, const char *why)
{
	memset(a, 0, sizeof(*a));
	a->magic = FERRYD_ASK_MAGIC;
	a->size = sizeof(*a);
	a->refused = 1;
	snprintf(a->message, sizeof(a->message), "%s", why);
	return 0;
}

struct reader_arg {
	struct ferryd *d;
	int sk;
};

/* The message, parsed and checked as the user (ferryd_as_user): take_request of before, word
 * for word. */
static int reader(void *arg, void *ans)
{
	const struct reader_arg *ra = arg;
	struct ferryd_ask *a = ans;
	struct ferry_error *err = NULL;
	char why[FERRYD_ASK_MESSAGE_MAX];
	struct ferry_msg req = {0};
	if (ferry_msg_recv(ra->sk, FERRYD_REQUEST_TIMEOUT, &req, &err) < 0) {
		snprintf(why, sizeof(why), "bad request: %s", err->message);
		return refuse(a, why);
	}
	const char *type = ferry_msg_get(&req, "type"), *name = ferry_msg_get(&req, "instance"),
		   *to = ferry_msg_get(&req, "to"), *mode = ferry_msg_get(&req, "mode"),
		   *leave = ferry_msg_get(&req, "leave"), *group = ferry_msg_get(&req, "group");
	bool hold = type && streq(type, "hold"), start = type && streq(type, "start"),
	     launch = type && streq(type, "launch");
	if (type && streq(type, "peers")) { /* the nodes this ferryd knows: nothing else */
		a->magic = FERRYD_ASK_MAGIC;
		a->size = sizeof(*a);
		a->kind = FERRYD_ASK_PEERS;
		snprintf(a->to, sizeof(a->to), "%s", ra->d->node);
		return 0;
	}
	if (start || launch) { /* the instance's name is the request's */
		if ((start ? ferryd_start_take(&req, a, why, sizeof(why))
			   : launch_take(ra->d, &req, a, why, sizeof(why))) < 0)
			return refuse(a, why);
		name = a->instance;
		mode = "default";
		if (start && to && streq(to, ra->d->node)) {
			snprintf(why, sizeof(why), "'%s' is this node: start the instance without --node",
				 to);
			return refuse(a, why);
		}
		/* the launcher agent starts daemons on its own node too */
		a->here = launch && to && streq(to, ra->d->node);
		start = true;
	}
	if (hold && (!leave || (!streq(leave, "0") && !streq(leave, "1"))))
		return refuse(a, "bad request: a hold request has leave=0 or leave=1");
	if (group && (!hold || !ferry_group_ok(group)))
		return refuse(a, "bad request: group=ID/N belongs to a hold request");
	if (hold && to && streq(to, ra->d->node)) {
		snprintf(why, sizeof(why), "'%s' is this node: name its instances without '%s:'", to, to);
		return refuse(a, why);
	}
	if (hold)
		mode = "default"; /* (no mode: the rules of the rest are a migration's) */
	if (!type || (!hold && !start && !streq(type, "migrate")) || !name || !to || !mode)
		return refuse(
		    a, "bad request: expected a migrate request with instance, to and mode, "
		       "a hold request with instance, to and leave, or a start request with to and req");
	if (!a->here && !ferryd_check_request(ra->d, name, to, mode, why, sizeof(why)))
		return refuse(a, why);
	if (strlen(to) > FERRYD_NODE_MAX) /* a peer's name that long: not one a client can give */
		return refuse(a, "bad request: the node's name is too long");
	if (launch && launch_mkdir(ra->d, a, why, sizeof(why)) < 0) /* the last step: see there */
		return refuse(a, why);
	a->magic = FERRYD_ASK_MAGIC;
	a->size = sizeof(*a);
	if (!start)
		snprintf(a->instance, sizeof(a->instance), "%s", name); /* checked: it fits */
	snprintf(a->to, sizeof(a->to), "%s", to);
	a->mode = (uint32_t)ferryd_mode_of(mode);
	a->kind = hold ? FERRYD_ASK_HOLD : start ? FERRYD_ASK_START : FERRYD_ASK_MIGRATE;
	a->leave = hold && streq(leave, "1");
	snprintf(a->group, sizeof(a->group), "%s", group ? group : ""); /* checked: it fits */
	return 0;
}

/* ---- the handler: wait, reap, check ---- */

/* The child's end: 0 when it exited 0; it has ASK_EXIT_MS to do so (@kill_now: none). Else
 * -1 and how it ended in @why ("was killed by signal 9"). */
static int reap(pid_t pid, bool kill_now, char *why, size_t n)
{
	int pfd = kill_now ? -1 : (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd p = {.fd = pfd, .events = POLLIN};
	if (pfd < 0 || poll(&p, 1, ASK_EXIT_MS) <= 0)
		kill(pid, SIGKILL);
	if (pfd >= 0)
		close(pfd);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			snprintf(why, n, "could not be waited for: %s", strerror(errno));
			return -1;
		}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFSIGNALED(st))
		snprintf(why, n, "was killed by signal %d", WTERMSIG(st));
	else
		snprintf(why, n, "exited with status %d", WEXITSTATUS(st));
	return -1;
}

int ferryd_as_user(struct ferryd *d, const struct ferryd_user *u, const char *comm, int keep,
		   int (*fn)(void *arg, void *ans), void *arg, void *ans, size_t size, unsigned deadline,
		   struct ferry_error **err)
{
	int sp[2] = {-1, -1};
	pid_t handler = getpid(), pid = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0 || (pid = fork()) < 0) {
		int e = errno;
		if (sp[0] >= 0) {
			close(sp[0]);
			close(sp[1]);
		}
		return ferry_error_set(err, e, "start a process as %s", u->name);
	}
	if (pid == 0) {
		close(sp[0]);
		OPENSSL_cleanse(d->key, sizeof(d->key));
		d->keylen = 0;
		memset(ans, 0, size);
		if (become_user(u, comm, keep, sp[1], handler, NULL) < 0 || fn(arg, ans) < 0)
			_exit(1);
		_exit(ferry_write_all(sp[1], ans, size) < 0 ? 255 : 0);
	}
	close(sp[1]);
	struct ferry_error *e2 = NULL;
	char why[256] = "";
	int r = ferry_read_within(sp[0], ans, size, deadline, &e2);
	close(sp[0]);
	int rr = reap(pid, r < 0, why, sizeof(why));
	if (r == -ETIMEDOUT)
		r = ferry_error_msg(err, ETIMEDOUT, "gave no answer within %u s", deadline);
	else if (rr < 0)
		r = ferry_error_msg(err, ECHILD, "%s", why);
	else if (r < 0)
		r = ferry_error_msg(err, EPIPE, "gave a cut answer");
	ferry_error_free(e2);
	return r < 0 ? r : 0;
}

/* The client's socket is one open file shared with the reader: what it may have changed of it
 * (non-blocking, timeouts) is set back before the handler uses it. */
static void reclaim_socket(int sk)
{
	struct timeval none = {0};
	int fl = fcntl(sk, F_GETFL);
	if (fl >= 0)
		fcntl(sk, F_SETFL, fl & ~O_NONBLOCK);
	setsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
	setsockopt(sk, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none));
}

/* The answer, checked as if it came from anyone: the address of its peer, or NULL and @why. */
static const char *check_answer(const struct ferryd *d, const struct ferryd_ask *a, char *why, size_t n)
{
	if (a->magic != FERRYD_ASK_MAGIC || a->size != sizeof(*a) || a->refused > 1 ||
	    a->mode >= FERRYD_MODE_N_ || a->kind >= FERRYD_ASK_N_ || a->leave > 1 ||
	    (a->kind != FERRYD_ASK_MIGRATE && a->mode != FERRYD_MODE_DEFAULT) ||
	    a->req_len > sizeof(a->req) || (a->kind == FERRYD_ASK_START) != (a->req_len > 0) || a->here > 1 ||
	    (a->here && (a->kind != FERRYD_ASK_START || !streq(a->to, d->node))) ||
	    !ferryd_nul_inside(a->instance, sizeof(a->instance)) ||
	    !ferryd_nul_inside(a->to, sizeof(a->to)) || !ferryd_nul_inside(a->message, sizeof(a->message)) ||
	    !ferryd_nul_inside(a->group, sizeof(a->group)) ||
	    (a->group[0] && (a->kind != FERRYD_ASK_HOLD || !ferry_group_ok(a->group))) ||
	    (a->refused && !a->message[0]) || (!a->refused && (a->message[0] || !a->to[0]))) {
		snprintf(why, n, "your request could not be read: its reader's answer is malformed");
		return NULL;
	}
	if (a->refused) {
		snprintf(why, n, "%s", a->message);
		return NULL;
	}
	if (a->here || a->kind == FERRYD_ASK_PEERS)
		return streq(a->to, d->node) ? d->node : NULL;
	return ferryd_check_request(d, a->instance, a->to, ferryd_mode_name(a->mode), why, n);
}

static const char *const mode_names[FERRYD_MODE_N_] = {"default", "diskless", "live"};

const char *ferryd_mode_name(enum ferryd_mode m)
{
	return (unsigned)m < FERRYD_MODE_N_ ? mode_names[m] : "?";
}

int ferryd_mode_of(const char *name)
{
	for (int i = 0; name && i < FERRYD_MODE_N_; i++)
		if (streq(name, mode_names[i]))
			return i;
	return -1;
}

int ferryd_ask_fetch(struct ferryd *d, int sk, const struct ferryd_user *u, struct ferryd_ask *ret,
		     const char **ret_addr)
{
	struct ferry_error *err = NULL;
	char why[FERRYD_ASK_MESSAGE_MAX];
	struct reader_arg ra = {.d = d, .sk = sk};
	/* exactly one answer's size: whatever else the reader sends is dropped */
	int r =
	    ferryd_as_user(d, u, "ferryd-request", sk, reader, &ra, ret, sizeof(*ret), ASK_DEADLINE, &err);
	reclaim_socket(sk);
	if (r == -ETIMEDOUT)
		snprintf(why, sizeof(why), "bad request: it did not come within %d s", ASK_DEADLINE);
	else if (r == -ECHILD || r == -EPIPE)
		snprintf(why, sizeof(why), "your request could not be read: its reader %s", err->message);
	else if (r < 0)
		snprintf(why, sizeof(why), "ferryd on '%s' could not read your request (%s): try again",
			 d->node, err->message);
	*ret_addr = r < 0 ? NULL : check_answer(d, ret, why, sizeof(why));
	if (!*ret_addr && (r < 0 || !ret->refused))
		ferryd_log(NULL, "refused a request of %s: %s", u->name, why);
	if (!*ret_addr)
		ferryd_send_error(sk, NULL, NULL, "%s", why);
	ferry_error_free(err);
	return *ret_addr ? 0 : -1;
}
