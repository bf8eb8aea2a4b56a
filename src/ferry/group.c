/* SPDX-License-Identifier: GPL-2.0-or-later */
/* group.c — ferry checkpoint group: several instances checkpointed at one consistent cut.
 *
 * Each member's dump is a starter of its own (FERRY_REQ_HOLD), all started at once. A member's
 * CRIU freezes its tree and locks its network, writes its images, and then holds: its starter
 * seals the generation and prints "held". Only once every member is held does the word 'C' go
 * to each: each publishes its generation and lets its tree go (it stops, or with
 * --leave-running it resumes). So no member runs on, and no byte moves between two members
 * (their networks are locked from the start of their own dump to the end of the group's),
 * between the first member's dump and the last one's: what one member's checkpoint says it
 * sent, the other's says it received or still has to (TCP retransmits it after a restart).
 * When any member fails, the others read EOF instead: their CRIU resumes their tree and their
 * generation goes; nothing is published.
 *
 * The cut has a name: "ID/N" (names.h), ID drawn here, N the number of members. Every member's
 * starter signs it into its generation's manifest. --restart restores only generations of one
 * cut, all N of them: its members' current generations are read first (a member checkpointed on
 * its own since, or a member missing, is named and nothing starts), and each member's starter
 * checks its signed manifest against the cut again. */
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/random.h>
#include <sys/wait.h>

#include "ferry.h"
#include "fs.h"
#include "instance.h"
#include "manifest.h"
#include "names.h"
#include "proto.h"

#define GROUP_MAX 64
#define GROUP_OUT_MAX 65536 /* what a member's starter may print (a path, a note) */

unsigned group_cut_size(const char *cut)
{
	unsigned long long size = 0;
	return ferry_group_ok(cut) && parse_uint64(cut + FERRY_GROUP_ID_LEN + 1, FERRY_GROUP_MAX, &size) == 0
		   ? (unsigned)size
		   : 0;
}

/* A member: here (its own starter: stdin our word, stdout "held" then the generation, stderr
 * its error) or on another node (NODE:INSTANCE: this node's ferryd relays, hold.c; one socket,
 * messages "held", then "done" with the generation or "error"; our word one raw byte). */
struct member {
	const char *name, *node; /* node: NULL here */
	const char *place; /* --restart: the node its restart runs on (NULL: here), through a child */
	const char *cut; /* the group's cut, "ID/N" */
	const char *checkpoint; /* a dump's, or the restart's (NULL: the launch one, or NAME's) */
	const char *image; /* the restart's image (NULL: the one saved) */
	pid_t pid;
	int in, out, err; /* here */
	int sk; /* there */
	char buf[2][GROUP_OUT_MAX];
	size_t len[2];
	bool held, ended;
	int status;
};

/* Member @m's child, its stdout and stderr pipes ours: with @op FERRY_OP_CHECKPOINT_DUMP, the
 * starter's held dump of the instance (its stdin a pipe for our word); else (--restart) its
 * restart from its checkpoint of its name (the starter, or 'instance start --node' through
 * ferryd when it has a place). */
static int member_fork(struct member *m, uint32_t op, uint32_t flags)
{
	bool dump = op == FERRY_OP_CHECKPOINT_DUMP;
	int in[2] = {-1, -1}, out[2], err[2];
	if ((dump && pipe2(in, O_CLOEXEC) < 0) || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		return cli_fail("pipe: %s", strerror(errno));
	fflush(NULL);
	m->pid = fork();
	if (m->pid < 0)
		return cli_fail("fork: %s", strerror(errno));
	if (m->pid == 0) {
		/* (a resumable run blocks its stop signals, and we ignore SIGPIPE: not the starter) */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if ((dump && dup2(in[0], STDIN_FILENO) < 0) || dup2(out[1], STDOUT_FILENO) < 0 ||
		    dup2(err[1], STDERR_FILENO) < 0)
			_exit(255);
		struct ferry_request req = {.op = op, .flags = flags, .group = (char *)m->cut};
		if (dump) {
			req.instance = (char *)m->name;
			req.checkpoint = (char *)m->checkpoint;
			_exit(exec_starter(&req));
		}
		if (m->checkpoint) {
			req.instance = (char *)m->name;
			req.image = (char *)m->image;
		}
		req.checkpoint = checkpoint_resolve(m->checkpoint ? m->checkpoint : m->name, true);
		if (!req.checkpoint)
			_exit(255);
		_exit(m->place ? remote_start(&req, m->place) : exec_starter(&req));
	}
	if (dump) {
		close(in[0]);
		m->in = in[1];
	}
	close(out[1]);
	close(err[1]);
	m->out = out[0];
	m->err = err[0];
	return 0;
}

static int member_start_remote(struct member *m, bool leave)
{
	m->sk = connect_ferryd();
	if (m->sk < 0)
		return cli_fail("instance '%s:%s': no ferryd on this node (%s): start it (see ferryd --help)",
				m->node, m->name, strerror(errno));
	struct ferry_msg r = {0};
	ferry_msg_set(&r, "type", "hold");
	ferry_msg_set(&r, "instance", "%s", m->name);
	ferry_msg_set(&r, "to", "%s", m->node);
	ferry_msg_set(&r, "leave", "%d", leave);
	ferry_msg_set(&r, "group", "%s", m->cut);
	struct ferry_error *err = NULL;
	int rc = ferry_msg_send(m->sk, &r, &err);
	ferry_msg_clear(&r);
	return rc < 0 ? cli_error(err) : 0;
}

/* What a member ended with, as its starter would have said it: stderr's line, the generation
 * on stdout after "held". */
static void member_says(struct member *m, int which, const char *fmt, ...) _printf_(3, 4);
static void member_says(struct member *m, int which, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(m->buf[which] + m->len[which], sizeof(m->buf[which]) - m->len[which], fmt, ap);
	va_end(ap);
	if (n > 0)
		m->len[which] = strnlen(m->buf[which], sizeof(m->buf[which]) - 1);
}

/* Reads what is there from member @m (here: its stdout, @which 0, or stderr, 1; there: one
 * message). */
static void member_read(struct member *m, int which)
{
	if (m->node) {
		struct ferry_msg r = {0};
		struct ferry_error *err = NULL;
		const char *type = "";
		if (ferry_msg_recv(m->sk, 30, &r, &err) == 0)
			type = ferry_msg_get(&r, "type") ?: "";
		if (streq(type, "held") && !m->held)
			m->held = true;
		else if (streq(type, "done") && m->held) {
			member_says(m, 0, "%s\n", ferry_msg_get(&r, "gen") ?: "?");
			m->status = 0;
			m->ended = true;
		} else {
			if (streq(type, "error"))
				member_says(m, 1, "%s\n", ferry_msg_get(&r, "message") ?: "error");
			else
				member_says(m, 1, "ferryd: %s\n",
					    err ? err->message : "an unexpected message");
			m->status = 255;
			m->ended = true;
		}
		ferry_error_free(err);
		ferry_msg_clear(&r);
		if (m->ended) {
			close(m->sk);
			m->sk = -1;
		}
		return;
	}
	int fd = which ? m->err : m->out;
	char tmp[4096];
	ssize_t n = read(fd, tmp, sizeof(tmp));
	if (n < 0 && errno == EINTR)
		return;
	if (n <= 0) {
		close(fd);
		*(which ? &m->err : &m->out) = -1;
		return;
	}
	size_t room = sizeof(m->buf[which]) - 1 - m->len[which];
	size_t k = (size_t)n < room ? (size_t)n : room;
	memcpy(m->buf[which] + m->len[which], tmp, k);
	m->len[which] += k;
	m->buf[which][m->len[which]] = '\0';
	if (!which && !m->held && startswith(m->buf[0], "held\n"))
		m->held = true;
}

/* The group's word to member @m: go (every member is held), or give up. */
static void member_word(struct member *m, bool go)
{
	if (m->node) {
		if (m->sk < 0)
			return;
		/* one raw byte, which ferryd (root) compares without parsing a message of ours */
		(void)ferry_write_all(m->sk, go ? "C" : "A", 1);
		return;
	}
	if (go)
		(void)ferry_write_all(m->in, "C", 1);
	close(m->in); /* EOF: a member still dumping gives up */
	m->in = -1;
}

/* The first line of what member @m said on stderr, without ferry's prefix. */
static const char *member_error(struct member *m)
{
	char *e = m->buf[1];
	char *nl = strchr(e, '\n');
	if (nl)
		*nl = '\0';
	if (startswith(e, "ferry: "))
		e += strlen("ferry: ");
	/* (what becomes of the instances is said once, for the group) */
	static const char tail[] = "; the instance keeps running";
	size_t l = strlen(e);
	if (l > strlen(tail) && streq(e + l - strlen(tail), tail))
		e[l - strlen(tail)] = '\0';
	return *e ? e : "its checkpoint failed without a word";
}

/* The status of every member that is a child of ours (here, or --restart's), once it ended;
 * a member never started failed. */
static void reap_members(struct member *ms, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ms[i].node)
			continue;
		int st = 0;
		while (ms[i].pid > 0 && waitpid(ms[i].pid, &st, 0) < 0 && errno == EINTR)
			;
		ms[i].status = ms[i].pid > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : 255;
	}
}

/* Until every member has said "held" or ended; then the word to all (go when all are held,
 * else give up); then until every member has ended. */
/* Waits for what any member says and reads it; false when none has anything more to say. */
static bool poll_members(struct member *ms, size_t n)
{
	struct pollfd p[2 * GROUP_MAX];
	struct member *who[2 * GROUP_MAX];
	int which[2 * GROUP_MAX];
	size_t np = 0;
	for (size_t i = 0; i < n; i++)
		for (int w = 0; w < (ms[i].node ? 1 : 2); w++) {
			int fd = ms[i].node ? ms[i].sk : w ? ms[i].err : ms[i].out;
			if (fd < 0)
				continue;
			p[np] = (struct pollfd){.fd = fd, .events = POLLIN};
			who[np] = &ms[i];
			which[np++] = w;
		}
	if (np == 0 || (poll(p, np, -1) < 0 && errno != EINTR))
		return false;
	for (size_t k = 0; k < np; k++)
		if (p[k].revents)
			member_read(who[k], which[k]);
	return true;
}

static void run_members(struct member *ms, size_t n)
{
	bool word_sent = false;
	for (;;) {
		size_t held = 0;
		bool failed = false;
		for (size_t i = 0; i < n; i++) {
			held += ms[i].held;
			failed |= !ms[i].held && (ms[i].node ? ms[i].ended : ms[i].out < 0);
		}
		if (!word_sent && (held == n || failed)) {
			for (size_t i = 0; i < n; i++)
				member_word(&ms[i], held == n);
			word_sent = true;
		}
		if (!poll_members(ms, n))
			break;
	}
	reap_members(ms, n);
}

/* Until every member (a child) has ended: its status. */
static void wait_members(struct member *ms, size_t n)
{
	while (poll_members(ms, n))
		;
	reap_members(ms, n);
}

/* The group's cut of checkpoint @name's current generation ("" when it has none), malloc'ed;
 * NULL, with why in @why, when it cannot be read here. */
static char *cut_of(const char *name, char why[256])
{
	_cleanup_free_ char *dir = strchr(name, '/') ? xstrdup(name) : checkpoint_resolve(name, false);
	_cleanup_close_ int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (fd < 0) {
		snprintf(why, 256, "%s", dir ? strerror(errno) : "a bad name");
		return NULL;
	}
	struct ferry_manifest *m = checkpoint_current_manifest(fd, NULL, NULL);
	if (!m) {
		snprintf(why, 256, "it holds no complete generation");
		return NULL;
	}
	char *cut = xstrdup(m->group ? m->group : "");
	ferry_manifest_free(m);
	return cut;
}

/* The one cut of the members' current generations into @cut: the same for every member whose
 * manifest can be read, and for all N of them; else a one-line error (255) and nothing starts. */
static int restart_cut(struct member *ms, size_t n, char cut[FERRY_GROUP_ID_LEN + 8])
{
	cut[0] = '\0';
	const struct member *first = NULL;
	for (size_t i = 0; i < n; i++) {
		const char *ck = ms[i].checkpoint ? ms[i].checkpoint : ms[i].name;
		char why[256];
		_cleanup_free_ char *c = cut_of(ck, why);
		if (!c)
			return cli_fail("restart of the group: checkpoint '%s' cannot be read here (%s); no "
					"member was restarted",
					ck, why);
		if (!*c)
			return cli_fail("restart of the group: '%s' holds no group checkpoint (its current "
					"generation was made on its own): restart it alone with 'ferry "
					"instance start --criu-restart %s', or checkpoint the group again",
					ms[i].name, ms[i].name);
		if (!first) {
			snprintf(cut, FERRY_GROUP_ID_LEN + 8, "%s", c); /* (valid: it fits) */
			first = &ms[i];
		} else if (!streq(c, cut))
			return cli_fail("restart of the group: '%s' and '%s' are not of the same group "
					"checkpoint (%.8s, %.8s): one was checkpointed on its own or with "
					"another group since, or is left from another job (delete it); "
					"checkpoint the group again",
					first->name, ms[i].name, cut, c);
	}
	if (first && group_cut_size(cut) != n)
		return cli_fail("restart of the group: its checkpoint %.8s holds %u members, not %zu: name "
				"all of them and no other",
				cut, group_cut_size(cut), n);
	for (size_t i = 0; i < n; i++)
		ms[i].cut = first ? cut : NULL;
	return 0;
}

/* ferry checkpoint group --restart: every member restarted at once, each where asked; with
 * @say, a line for each on stdout. */
static int group_restart(struct member *ms, size_t n, uint32_t flags, bool say)
{
	char cut[FERRY_GROUP_ID_LEN + 8];
	int r = restart_cut(ms, n, cut);
	if (r != 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++) {
		ms[i].place = ms[i].node;
		ms[i].node = NULL; /* (a child's pipes, wherever it restarts) */
		r = member_fork(&ms[i], FERRY_OP_INSTANCE_START, flags);
	}
	wait_members(ms, n);
	size_t ok = 0;
	struct member *bad = NULL;
	for (size_t i = 0; i < n; i++) {
		ok += ms[i].status == 0;
		if (ms[i].status != 0 && !bad && ms[i].pid > 0)
			bad = &ms[i];
	}
	if (ok == n) {
		for (size_t i = 0; i < n && say; i++)
			printf("%s%s%s restarted\n", ms[i].place ? ms[i].place : "", ms[i].place ? ":" : "",
			       ms[i].name);
		return r;
	}
	if (!bad)
		return r ? r : 255;
	for (size_t i = 0; i < n; i++)
		if (ms[i].status == 0 && say)
			printf("%s%s%s restarted\n", ms[i].place ? ms[i].place : "", ms[i].place ? ":" : "",
			       ms[i].name);
	if (ok == 0)
		return cli_fail("restart of the group: '%s%s%s': %s; no member was restarted",
				bad->place ? bad->place : "", bad->place ? ":" : "", bad->name,
				member_error(bad));
	return cli_fail("restart of the group: '%s%s%s': %s; the members restarted wait for it: restart "
			"it alone ('ferry instance start --criu-restart %s')",
			bad->place ? bad->place : "", bad->place ? ":" : "", bad->name, member_error(bad),
			bad->name);
}

/* Whether @name is job @job's: the job itself (mpirun's instance) or JOB-HOST (ferry-rsh's). */
static bool of_job(const char *name, const char *job)
{
	size_t n = strlen(job);
	return streq(name, job) || (strncmp(name, job, n) == 0 && name[n] == '-' && name[n + 1]);
}

/* Job @job's instances as members ([NODE:]NAME) on each of @nodes (ferryd_nodes': this node
 * first), or on this node only when @nodes is NULL; NULL after a message. */
static char **instances_of_job(const char *job, char **nodes)
{
	char *here[] = {NULL, NULL};
	char **ns = nodes ? nodes : here;
	size_t count = nodes ? strv_length(nodes) : 1;
	struct ferry_instance ***lists = NULL;
	if (nodes) {
		lists = cli_list_instances_nodes(nodes); /* (all at once) */
	} else {
		lists = xzalloc(sizeof(*lists));
		if (cli_list_instances(&lists[0]) < 0)
			lists[0] = NULL;
	}
	char **ret = xzalloc(sizeof(char *));
	for (size_t k = 0; k < count; k++) {
		if (!lists[k]) { /* (it said why) */
			cli_free_node_lists(lists, count);
			strv_free(ret);
			return NULL;
		}
		for (size_t i = 0; lists[k][i]; i++)
			if (of_job(lists[k][i]->name, job)) {
				char *m = k ? xasprintf("%s:%s", ns[k], lists[k][i]->name)
					    : xstrdup(lists[k][i]->name);
				strv_push(&ret, m);
				free(m);
			}
	}
	cli_free_node_lists(lists, count);
	return ret;
}

char **group_job_members(const char *job, char **ret_node)
{
	*ret_node = NULL;
	int sk = connect_ferryd();
	if (sk < 0) /* (no ferryd here: ferry-rsh started no member anywhere else) */
		return instances_of_job(job, NULL);
	close(sk);
	_cleanup_strv_ char **nodes = ferryd_nodes();
	char **ret = nodes ? instances_of_job(job, nodes) : NULL;
	if (ret)
		*ret_node = xstrdup(nodes[0]);
	return ret;
}

/* --job JOB: its instances on every node this node's ferryd knows, as members ([NODE:]NAME). */
static char **job_instances(const char *job)
{
	_cleanup_strv_ char **nodes = ferryd_nodes();
	char **ret = nodes ? instances_of_job(job, nodes) : NULL;
	if (!ret)
		return NULL;
	if (!ret[0]) {
		cli_fail("no instance of job '%s' ('%s' or '%s-HOST') runs on any node", job, job, job);
		strv_free(ret);
		return NULL;
	}
	return ret;
}

/* --restart --job JOB: its checkpoints, each placed as --place NAME=NODE says (else here). */
static char **job_checkpoints(const char *job, char **places)
{
	_cleanup_strv_ char **names = checkpoint_names(), **nodes = places ? ferryd_nodes() : NULL;
	if (!names || (places && !nodes))
		return NULL;
	char **ret = xzalloc(sizeof(char *));
	for (size_t i = 0; names[i]; i++) {
		if (!of_job(names[i], job))
			continue;
		const char *node = NULL;
		for (size_t k = 0; places && places[k]; k++) {
			size_t n = strcspn(places[k], "=");
			if (strlen(names[i]) == n && strncmp(places[k], names[i], n) == 0)
				node = places[k] + n + 1;
		}
		if (node && streq(node, nodes[0])) /* (this node: its own starter) */
			node = NULL;
		char *m = node ? xasprintf("%s:%s", node, names[i]) : xstrdup(names[i]);
		strv_push(&ret, m);
		free(m);
	}
	for (size_t k = 0; places && places[k]; k++) { /* a place for no member: a typo */
		bool used = false;
		size_t n = strcspn(places[k], "=");
		for (size_t i = 0; ret[i] && !used; i++) {
			const char *name = strchr(ret[i], ':') ? strchr(ret[i], ':') + 1 : ret[i];
			used = strlen(name) == n && strncmp(places[k], name, n) == 0;
		}
		if (!used) {
			cli_fail("--place '%s': '%.*s' is not a checkpoint of job '%s'", places[k], (int)n,
				 places[k], job);
			strv_free(ret);
			return NULL;
		}
	}
	if (!ret[0]) {
		cli_fail("no checkpoint of job '%s' ('%s' or '%s-HOST') is in your checkpoint directory", job,
			 job, job);
		strv_free(ret);
		return NULL;
	}
	return ret;
}

/* The group's checkpoint: its cut drawn, every member's held dump started at once, the word
 * once all are held; with @say, a line for each member's generation on stdout. 0, or 255 after a
 * line naming the member that failed. */
static int group_dump(struct member *ms, size_t n, uint32_t flags, bool say)
{
	/* the cut's name: ID/N */
	unsigned char rnd[FERRY_GROUP_ID_LEN / 2];
	char cut[FERRY_GROUP_ID_LEN + 8];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return cli_fail("getrandom: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(cut + 2 * i, 3, "%02x", rnd[i]);
	snprintf(cut + FERRY_GROUP_ID_LEN, sizeof(cut) - FERRY_GROUP_ID_LEN, "/%zu", n);
	int r = 0;
	for (size_t i = 0; i < n; i++)
		ms[i].cut = cut;
	for (size_t i = 0; i < n && r == 0; i++)
		r = ms[i].node ? member_start_remote(&ms[i], flags & FERRY_REQ_LEAVE_RUNNING)
			       : member_fork(&ms[i], FERRY_OP_CHECKPOINT_DUMP, flags);
	if (r != 0) {
		/* the members started give up (EOF, or the word not to go) */
		for (size_t i = 0; i < n; i++)
			if (ms[i].in >= 0 || ms[i].sk >= 0)
				member_word(&ms[i], false);
		for (size_t i = 0; i < n; i++) {
			if (ms[i].pid > 0)
				waitpid(ms[i].pid, NULL, 0);
			if (ms[i].sk >= 0)
				close(ms[i].sk);
		}
		return r;
	}
	run_members(ms, n);
	size_t ok = 0, held = 0;
	struct member *bad = NULL;
	for (size_t i = 0; i < n; i++) {
		ok += ms[i].status == 0;
		held += ms[i].held;
		/* the reason: a member that failed by itself, not one that was told to give up */
		if (ms[i].status != 0 && (!bad || (bad->held && !ms[i].held)))
			bad = &ms[i];
	}
	if (ok == n) {
		for (size_t i = 0; i < n && say; i++) {
			char *gen = ms[i].buf[0] + (ms[i].node ? 0 : strlen("held\n"));
			if (ms[i].node)
				printf("%s:", ms[i].node);
			printf("%s %s", ms[i].name, gen);
		}
		return 0;
	}
	_cleanup_free_ char *who =
	    xasprintf("%s%s%s", bad->node ? bad->node : "", bad->node ? ":" : "", bad->name);
	if (held == n && ok > 0)
		r = cli_fail(
		    "checkpoint of the group: instance '%s' failed after the others published theirs: %s; "
		    "if its own generation was published too ('ferry checkpoint list'), the cut is whole and "
		    "it ended with them, else the group's checkpoint is not consistent: checkpoint it again",
		    who, member_error(bad));
	else
		r = cli_fail(
		    "checkpoint of the group: instance '%s': %s; every instance keeps running and no "
		    "generation was published",
		    who, member_error(bad));
	return r;
}

/* The members [NODE:]NAME of @names (split there: NODE:NAME is cut at its colon); NULL after a
 * message. */
static struct member *members_of(char **names, size_t n, bool restart)
{
	if (n > GROUP_MAX) {
		cli_fail("a group has at most %d instances, not %zu", GROUP_MAX, n);
		return NULL;
	}
	struct ferry_error *err = NULL;
	struct member *ms = xzalloc(n * sizeof(*ms));
	for (size_t i = 0; i < n; i++) {
		char *a = names[i], *colon = strchr(a, ':');
		ms[i].in = ms[i].out = ms[i].err = ms[i].sk = -1;
		ms[i].name = a;
		if (colon) { /* NODE:INSTANCE */
			*colon = '\0';
			ms[i].node = a;
			ms[i].name = colon + 1;
			if (!*a) {
				cli_fail("'%s': give NODE:INSTANCE, or INSTANCE for one of this node", colon);
				goto fail;
			}
		}
		if (!(restart && strchr(ms[i].name, '/')) && /* (a checkpoint may be a path) */
		    ferry_name_check(ms[i].name, restart ? "checkpoint" : "instance", &err) < 0) {
			cli_error(err);
			goto fail;
		}
		for (size_t j = 0; j < i; j++)
			if (streq(ms[i].name, ms[j].name) &&
			    streq(ms[i].node ? ms[i].node : "", ms[j].node ? ms[j].node : "")) {
				cli_fail("instance '%s' is named twice", ms[i].name);
				goto fail;
			}
	}
	return ms;
fail:
	free(ms);
	return NULL;
}

int group_run_checkpoint(char **members, const char *checkpoint, bool leave_running)
{
	size_t n = strv_length(members);
	struct member *ms = members_of(members, n, false);
	if (!ms)
		return 255;
	ms[0].checkpoint = checkpoint;
	signal(SIGPIPE, SIG_IGN); /* (as cmd_checkpoint_group: a member that died failed) */
	int r = group_dump(ms, n, FERRY_REQ_HOLD | (leave_running ? FERRY_REQ_LEAVE_RUNNING : 0), false);
	free(ms);
	return r;
}

int group_run_restart(char **members, const char *checkpoint, const char *image)
{
	size_t n = strv_length(members);
	struct member *ms = members_of(members, n, true);
	if (!ms)
		return 255;
	ms[0].checkpoint = checkpoint;
	ms[0].image = image;
	int r = group_restart(ms, n, FERRY_REQ_CRIU_RESTART, false);
	free(ms);
	return r;
}

static const char group_help[] =
    "Usage: ferry checkpoint group [--leave-running] MEMBER MEMBER...\n"
    "       ferry checkpoint group --restart [--tcp-close] [NODE:]NAME...\n"
    "       ferry checkpoint group [--leave-running] --job JOB\n"
    "       ferry checkpoint group --restart [--tcp-close] --job JOB [--place NAME=NODE]...\n"
    "  MEMBER: INSTANCE (of this node) or NODE:INSTANCE (on NODE, a peer of this node's ferryd)\n"
    "\n"
    "Checkpoint the instances together, at one consistent cut: every one is frozen and its network\n"
    "locked before any lets go, so that nothing one of them sent is missing from what the others\n"
    "received or still hold (the ranks of an MPI job, a server and its clients). Each instance is\n"
    "dumped into a new generation of its own checkpoint, all at once, on its own node; the\n"
    "generations are published only once all are written, and then all instances stop (or, with\n"
    "--leave-running, all go on). If any dump fails, every instance goes on and no generation is\n"
    "published.\n"
    "\n"
    "--restart restarts such a group: each checkpoint NAME (the members' checkpoints have their\n"
    "instances' names, as ferry-rsh's and the examples' do), all at once, on NODE or on this node:\n"
    "the members whose peers come later wait for them (TCP retransmits). --tcp-close: their TCP\n"
    "connections come back closed. A member that fails is named; the others run on: restart it\n"
    "alone with 'ferry instance start --criu-restart NAME'. Only one cut restarts, all of it: the\n"
    "members' current generations must all be of one group checkpoint (its ID and its number of\n"
    "members are signed into each), else the odd member is named and none starts.\n"
    "\n"
    "--job JOB names the members of an MPI job started with ferry-rsh (ferry-mpi(7)): its mpirun's\n"
    "instance JOB and its daemons' JOB-HOST, found on every node this node's ferryd knows; with\n"
    "--restart, their checkpoints (of the same names), each on this node or where --place NAME=NODE\n"
    "says.\n"
    "\n"
    "At most 64 members; those on other nodes go through ferryd (see ferryd(8)), as you.\n"
    "Exit status: 0 when every generation is published (one line per member: MEMBER GENERATION);\n"
    "255 with one line saying which member failed and why.\n";

int cmd_checkpoint_group(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"leave-running", no_argument, NULL, 'l'},
	    {"restart", no_argument, NULL, 'r'},
	    {"tcp-close", no_argument, NULL, 't'},
	    {"job", required_argument, NULL, 'j'},
	    {"place", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint32_t flags = FERRY_REQ_HOLD;
	const char *job = NULL;
	_cleanup_strv_ char **places = NULL, **found = NULL;
	int c;
	/* a member that died is one that failed: our word to it is not the end of us */
	signal(SIGPIPE, SIG_IGN);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'h')
			return fputs(group_help, stdout), 0;
		if (c == '?')
			return cli_fail("unknown option '%s' for 'ferry checkpoint group'", argv[optind - 1]);
		if (c == 'j') {
			job = optarg;
			continue;
		}
		if (c == 'p') {
			if (!strchr(optarg, '=') || optarg[0] == '=' || !strchr(optarg, '=')[1])
				return cli_fail("--place '%s': give NAME=NODE", optarg);
			strv_push(&places, optarg);
			continue;
		}
		flags |= c == 'l'   ? FERRY_REQ_LEAVE_RUNNING
			 : c == 'r' ? FERRY_REQ_CRIU_RESTART
				    : FERRY_REQ_TCP_CLOSE;
	}
	bool restart = flags & FERRY_REQ_CRIU_RESTART;
	if ((flags & FERRY_REQ_TCP_CLOSE) && !restart)
		return cli_fail("--tcp-close belongs to --restart");
	if (restart && (flags & FERRY_REQ_LEAVE_RUNNING))
		return cli_fail("--leave-running belongs to a checkpoint, not to --restart");
	if (places && (!restart || !job))
		return cli_fail("--place belongs to --restart --job");
	if (job) {
		if (optind < argc)
			return cli_fail("--job JOB names the members: give no others");
		found = restart ? job_checkpoints(job, places) : job_instances(job);
		if (!found)
			return 255;
		argv = found;
		argc = (int)strv_length(found);
		optind = 0;
	}
	size_t n = (size_t)(argc - optind);
	if (n < 1)
		return cli_fail(
		    "usage: ferry checkpoint group [--leave-running] MEMBER... (INSTANCE or NODE:INSTANCE)");
	struct member *ms = members_of(argv + optind, n, restart);
	if (!ms)
		return 255;
	int r = restart ? group_restart(ms, n, flags & (FERRY_REQ_CRIU_RESTART | FERRY_REQ_TCP_CLOSE), true)
			: group_dump(ms, n, flags, true);
	free(ms);
	return r;
}
