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
 * generation goes; nothing is published. */
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <sys/wait.h>

#include "ferry.h"
#include "fs.h"
#include "names.h"

#define GROUP_MAX 64
#define GROUP_OUT_MAX 65536 /* what a member's starter may print (a path, a note) */

struct member {
	const char *name;
	pid_t pid;
	int in, out, err; /* its stdin (our word), stdout ("held", then the generation), stderr */
	char buf[2][GROUP_OUT_MAX];
	size_t len[2];
	bool held, done;
	int status;
};

static int member_start(struct member *m, uint32_t flags)
{
	int in[2], out[2], err[2];
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		return cli_fail("pipe: %s", strerror(errno));
	fflush(NULL);
	m->pid = fork();
	if (m->pid < 0)
		return cli_fail("fork: %s", strerror(errno));
	if (m->pid == 0) {
		if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0 ||
		    dup2(err[1], STDERR_FILENO) < 0)
			_exit(255);
		struct ferry_request req = {
		    .op = FERRY_OP_CHECKPOINT_DUMP, .flags = flags, .instance = (char *)m->name};
		_exit(exec_starter(&req));
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	m->in = in[1];
	m->out = out[0];
	m->err = err[0];
	return 0;
}

/* Reads what is there from member @m's stdout (@which 0) or stderr (1); false at EOF. */
static bool member_read(struct member *m, int which)
{
	int fd = which ? m->err : m->out;
	char tmp[4096];
	ssize_t n = read(fd, tmp, sizeof(tmp));
	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0) {
		close(fd);
		*(which ? &m->err : &m->out) = -1;
		return false;
	}
	size_t room = sizeof(m->buf[which]) - 1 - m->len[which];
	size_t k = (size_t)n < room ? (size_t)n : room;
	memcpy(m->buf[which] + m->len[which], tmp, k);
	m->len[which] += k;
	m->buf[which][m->len[which]] = '\0';
	if (!which && !m->held && startswith(m->buf[0], "held\n"))
		m->held = true;
	return true;
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

/* Until every member has said "held" or ended; then the word to all ('C' when all are held,
 * else EOF); then until every member has ended. */
static void run_members(struct member *ms, size_t n)
{
	bool word_sent = false;
	for (;;) {
		struct pollfd p[2 * GROUP_MAX];
		struct member *who[2 * GROUP_MAX];
		int which[2 * GROUP_MAX];
		size_t np = 0, held = 0, ended = 0;
		for (size_t i = 0; i < n; i++) {
			held += ms[i].held;
			ended += ms[i].out < 0 && ms[i].err < 0;
			for (int w = 0; w < 2; w++) {
				int fd = w ? ms[i].err : ms[i].out;
				if (fd < 0)
					continue;
				p[np] = (struct pollfd){.fd = fd, .events = POLLIN};
				who[np] = &ms[i];
				which[np++] = w;
			}
		}
		if (!word_sent) {
			bool failed = false;
			for (size_t i = 0; i < n; i++)
				failed |= !ms[i].held && ms[i].out < 0;
			if (held == n || failed) {
				for (size_t i = 0; i < n; i++) {
					if (held == n)
						(void)ferry_write_all(ms[i].in, "C", 1);
					close(ms[i].in); /* EOF: a member still dumping gives up */
					ms[i].in = -1;
				}
				word_sent = true;
			}
		}
		if (ended == n)
			break;
		if (poll(p, np, -1) < 0 && errno != EINTR)
			break;
		for (size_t k = 0; k < np; k++)
			if (p[k].revents)
				member_read(who[k], which[k]);
	}
	for (size_t i = 0; i < n; i++) {
		int st = 0;
		while (waitpid(ms[i].pid, &st, 0) < 0 && errno == EINTR)
			;
		ms[i].status = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
		ms[i].done = true;
	}
}

static const char group_help[] =
    "Usage: ferry checkpoint group [--leave-running] INSTANCE INSTANCE...\n"
    "\n"
    "Checkpoint the instances together, at one consistent cut: every one is frozen and its network\n"
    "locked before any lets go, so that nothing one of them sent is missing from what the others\n"
    "received or still hold (the ranks of an MPI job, a server and its clients). Each instance is\n"
    "dumped into a new generation of its own checkpoint, all at once; the generations are\n"
    "published only once all are written, and then all instances stop (or, with --leave-running,\n"
    "all go on). If any dump fails, every instance goes on and no generation is published.\n"
    "Restart each with 'ferry instance start --criu-restart', here or elsewhere.\n"
    "\n"
    "Instances started with --criu-launch on this node, at most 64. Exit status: 0 when every\n"
    "generation is published; 255 with one line saying which instance failed and why.\n";

int cmd_checkpoint_group(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"leave-running", no_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint32_t flags = FERRY_REQ_HOLD;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'h')
			return fputs(group_help, stdout), 0;
		if (c != 'l')
			return cli_fail("unknown option '%s' for 'ferry checkpoint group'", argv[optind - 1]);
		flags |= FERRY_REQ_LEAVE_RUNNING;
	}
	size_t n = (size_t)(argc - optind);
	if (n < 1)
		return cli_fail("usage: ferry checkpoint group [--leave-running] INSTANCE INSTANCE...");
	if (n > GROUP_MAX)
		return cli_fail("a group has at most %d instances, not %zu", GROUP_MAX, n);
	struct ferry_error *err = NULL;
	for (size_t i = 0; i < n; i++) {
		if (ferry_name_check(argv[optind + i], "instance", &err) < 0)
			return cli_error(err);
		for (size_t j = 0; j < i; j++)
			if (streq(argv[optind + i], argv[optind + j]))
				return cli_fail("instance '%s' is named twice", argv[optind + i]);
	}
	struct member *ms = xzalloc(n * sizeof(*ms));
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		ms[i].name = argv[optind + i];
		ms[i].in = ms[i].out = ms[i].err = -1;
		r = member_start(&ms[i], flags);
	}
	if (r != 0) {
		/* the members started read EOF on their stdin and give up */
		for (size_t i = 0; i < n; i++)
			if (ms[i].in >= 0)
				close(ms[i].in);
		for (size_t i = 0; i < n; i++)
			if (ms[i].pid > 0)
				waitpid(ms[i].pid, NULL, 0);
		free(ms);
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
		for (size_t i = 0; i < n; i++) {
			char *gen = ms[i].buf[0] + strlen("held\n");
			printf("%s %s", ms[i].name, gen);
		}
		free(ms);
		return 0;
	}
	if (held == n && ok > 0)
		r = cli_fail(
		    "checkpoint of the group: instance '%s' failed after the others published theirs: %s; "
		    "the group's checkpoint is not consistent: checkpoint it again",
		    bad->name, member_error(bad));
	else
		r = cli_fail(
		    "checkpoint of the group: instance '%s': %s; every instance keeps running and no "
		    "generation was published",
		    bad->name, member_error(bad));
	free(ms);
	return r;
}
