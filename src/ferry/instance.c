/* SPDX-License-Identifier: GPL-2.0-or-later */
/* instance.c — ferry instance start, list, stop. */
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "ferry.h"
#include "fs.h"
#include "instance.h"
#include "names.h"
#include "proto.h"

static const char instance_help[] =
    "Usage: ferry instance start [OPTIONS] IMAGE NAME [COMMAND [ARGS...]]\n"
    "       ferry instance list [--json] [--node NODE | --all-nodes]\n"
    "       ferry instance stop [--signal SIG] [--timeout SECONDS] [--force] NAME... | --all\n"
    "\n"
    "An instance is a container that runs in the background under a NAME of your choice (letters,\n"
    "digits, '_', '.', '-'; at most 64). It runs COMMAND, or idles until stopped when none is given;\n"
    "'ferry exec instance://NAME CMD' runs more commands inside it. Its output goes to\n"
    "~/.ferry/instances/HOST/NAME.out and .err. You see and control only your own instances.\n"
    "\n"
    "instance start takes the options of 'ferry exec' (--bind, --contain, --cleanenv, --env, --pwd,\n"
    "--hostname, --no-home), and:\n"
    "      --net                give the instance its own network namespace, attached by the CNI\n"
    "                           plugins to the networks of /etc/ferry/network (default: 'bridge')\n"
    "      --network NAME[,NAME]  the networks to join (the admin decides which users may)\n"
    "      --network-args \"IP=A.B.C.D/P;MAC=xx:..;GW=A.B.C.D\"  address, MAC and gateway on the\n"
    "                           first network (when ferry.conf lets users choose them)\n"
    "      --criu-launch NAME   make the instance checkpointable into checkpoint NAME (see\n"
    "                           'ferry checkpoint --help'); its options are saved there\n"
    "      --criu-restart NAME  restore the instance saved in checkpoint NAME, with the options it\n"
    "                           was launched with: 'instance start --criu-restart NAME [IMAGE [INST]]'\n"
    "                           (IMAGE and INSTANCE default to the saved ones)\n"
    "      --tcp-close          with --criu-restart: the instance's TCP connections come back\n"
    "                           closed, for when their peers are not coming back\n"
    "      --timings            print a 'timing' line of the start's steps (ms; for benchmarks)\n"
    "      --wait-all           the instance lives until its last process ends, not only COMMAND:\n"
    "                           for a COMMAND that starts daemons and exits (an MPI launcher's\n"
    "                           daemon); it ends with COMMAND's status\n"
    "      --node NODE          start the instance on node NODE, as you, through the ferryd of this\n"
    "                           node and NODE's (one of ferryd's --peer): the same checks as a start\n"
    "                           there; paths (IMAGE, checkpoints, binds, the current directory)\n"
    "                           are NODE's. Your environment goes with it (at most 40 KiB of\n"
    "                           request: use --cleanenv when it is larger)\n"
    "\n"
    "instance list:\n"
    "      --json               machine-readable output\n"
    "      --node NODE          your instances on node NODE (through ferryd; a NODE column)\n"
    "      --all-nodes          your instances on this node and on every node its ferryd knows\n"
    "\n"
    "instance stop:\n"
    "  -s, --signal SIG         send SIG (a name like TERM or USR1, or a number) and return\n"
    "  -t, --timeout SECONDS    wait this long after SIGTERM before SIGKILL (default 10)\n"
    "  -F, --force              send SIGKILL at once\n"
    "  -a, --all                stop all your instances\n"
    "\n"
    "Examples:\n"
    "  ferry instance start lammps.sif job1 lmp -in in.lj\n"
    "  ferry instance list\n"
    "  ferry exec instance://job1 tail -n 3 log.lammps\n"
    "  ferry instance stop job1\n";

int cli_list_instances(struct ferry_instance ***ret)
{
	return cli_list_instances_on(NULL, ret);
}

/* The caller's instance records on @node (NULL: this node, through the starter; else through
 * ferryd), as the starter prints them, into *@out: its exit status. */
static int list_capture(const char *node, char **out, size_t *len)
{
	struct ferry_request req = {.op = FERRY_OP_INSTANCE_LIST};
	return node ? remote_run(&req, node, out, len) : run_starter_capture(&req, out, len);
}

int cli_list_instances_on(const char *node, struct ferry_instance ***ret)
{
	_cleanup_free_ char *out = NULL;
	size_t len = 0;
	if (list_capture(node, &out, &len) != 0)
		return -1;
	struct ferry_error *err = NULL;
	if (ferry_instance_parse_list(out ? out : "", len, ret, &err) < 0) {
		cli_error(err);
		return -1;
	}
	return 0;
}

/* what one node's list may be (remote_run takes at most as much) */
#define NODE_LIST_MAX FERRY_PROTO_OUT_TOTAL

struct ferry_instance ***cli_list_instances_nodes(char **nodes)
{
	size_t n = strv_length(nodes);
	struct ferry_instance ***lists = xzalloc((n + 1) * sizeof(*lists));
	pid_t *pids = xzalloc(n * sizeof(*pids));
	struct pollfd *p = xzalloc(n * sizeof(*p));
	char **bufs = xzalloc(n * sizeof(*bufs));
	size_t *lens = xzalloc(n * sizeof(*lens));
	fflush(NULL);
	for (size_t k = 0; k < n; k++) {
		int fds[2];
		p[k].fd = -1;
		if (pipe2(fds, O_CLOEXEC) < 0) {
			cli_fail("ask node '%s': %s", nodes[k], strerror(errno));
			continue;
		}
		if ((pids[k] = fork()) < 0) {
			cli_fail("ask node '%s': %s", nodes[k], strerror(errno));
			close(fds[0]);
			close(fds[1]);
			continue;
		}
		if (pids[k] == 0) { /* a child per node: its list on the pipe, or a message */
			close(fds[0]);
			char *out = NULL;
			size_t len = 0;
			int r = list_capture(k ? nodes[k] : NULL, &out, &len);
			_exit(r == 0 && ferry_write_all(fds[1], out ? out : "", len) == 0 ? 0 : 1);
		}
		close(fds[1]);
		p[k] = (struct pollfd){.fd = fds[0], .events = POLLIN};
		bufs[k] = xmalloc(65536 + 1);
	}
	size_t open = 0;
	for (size_t k = 0; k < n; k++)
		open += p[k].fd >= 0;
	while (open > 0) {
		if (poll(p, n, -1) < 0 && errno != EINTR)
			break;
		open = 0;
		for (size_t k = 0; k < n; k++) {
			if (p[k].fd < 0)
				continue;
			ssize_t got = 0;
			if (p[k].revents) {
				if (lens[k] >= NODE_LIST_MAX) { /* (its child dies of SIGPIPE) */
					cli_fail("the list of node '%s' is larger than %u bytes", nodes[k],
						 NODE_LIST_MAX);
					lens[k] = SIZE_MAX;
				} else {
					bufs[k] = xrealloc(bufs[k], lens[k] + 65536 + 1);
					got = read(p[k].fd, bufs[k] + lens[k], 65536);
				}
				if (got < 0 && errno == EINTR)
					got = 1; /* (again) */
				else if (got > 0)
					lens[k] += (size_t)got;
			}
			if (p[k].revents && got <= 0) {
				close(p[k].fd);
				p[k].fd = -1;
			} else
				open++;
		}
	}
	for (size_t k = 0; k < n; k++) {
		int status = 1;
		while (pids[k] > 0 && waitpid(pids[k], &status, 0) < 0 && errno == EINTR)
			;
		struct ferry_error *err = NULL;
		/* (a child that failed said why) */
		if (pids[k] > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && lens[k] != SIZE_MAX) {
			bufs[k][lens[k]] = '\0';
			if (ferry_instance_parse_list(bufs[k], lens[k], &lists[k], &err) < 0)
				cli_error(err);
		}
		free(bufs[k]);
	}
	free(pids);
	free(p);
	free(bufs);
	free(lens);
	return lists;
}

void cli_free_node_lists(struct ferry_instance ***lists, size_t n)
{
	for (size_t k = 0; lists && k < n; k++)
		ferry_instance_list_free(lists[k]);
	free(lists);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* One node's instances (@node NULL: this node's, unnamed), as a table's rows or JSON objects
 * (@first: none printed yet). */
static void list_rows(struct ferry_instance **list, const char *node, bool json, bool *first)
{
	for (size_t i = 0; list[i]; i++) {
		if (json) {
			printf("%s\n  {\"instance\": ", *first ? "" : ",");
			json_str(stdout, list[i]->name);
			if (node) {
				printf(", \"node\": ");
				json_str(stdout, node);
			}
			printf(", \"pid\": %d, \"ip\": ", (int)list[i]->pid);
			json_str(stdout, list[i]->ip ? list[i]->ip : "");
			printf(", \"mac\": ");
			json_str(stdout, list[i]->mac ? list[i]->mac : "");
			printf(", \"img\": ");
			json_str(stdout, list[i]->image);
			printf(", \"command\": ");
			json_str(stdout, list[i]->command);
			printf(", \"created\": %lld, \"logOutPath\": ", list[i]->created);
			json_str(stdout, list[i]->log_out);
			printf(", \"logErrPath\": ");
			json_str(stdout, list[i]->log_err);
			printf("}");
		} else {
			char when[32] = "-";
			time_t t = (time_t)list[i]->created;
			struct tm tm;
			if (localtime_r(&t, &tm))
				strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
			if (node)
				printf("%-16s ", node);
			printf("%-24s %-8d %-18s %-20s %s\n", list[i]->name, (int)list[i]->pid,
			       list[i]->ip ? list[i]->ip : "-", when, list[i]->image ? list[i]->image : "");
		}
		*first = false;
	}
}

static int do_list(int argc, char **argv)
{
	bool json = false, all = false;
	const char *node = NULL;
	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "--json"))
			json = true;
		else if (streq(argv[i], "--all-nodes"))
			all = true;
		else if (streq(argv[i], "--node") && i + 1 < argc)
			node = argv[++i];
		else if (cli_is_help(argv[i]))
			return fputs(instance_help, stdout), 0;
		else
			return cli_fail("unknown argument '%s' for 'ferry instance list'", argv[i]);
	}
	if (all && node)
		return cli_fail("--node and --all-nodes exclude each other");
	_cleanup_(strv_freep) char **nodes = all ? ferryd_nodes() : NULL;
	if (all && !nodes)
		return 255;
	if (json)
		printf("{\"instances\": [");
	else if (all || node)
		printf("%-16s %-24s %-8s %-18s %-20s %s\n", "NODE", "INSTANCE NAME", "PID", "IP", "STARTED",
		       "IMAGE");
	else
		printf("%-24s %-8s %-18s %-20s %s\n", "INSTANCE NAME", "PID", "IP", "STARTED", "IMAGE");
	bool first = true;
	int status = 0;
	if (all) { /* every node at once (this node's own from its starter: the first of the list) */
		struct ferry_instance ***lists = cli_list_instances_nodes(nodes);
		for (size_t k = 0; nodes[k]; k++) {
			if (lists[k])
				list_rows(lists[k], nodes[k], json, &first);
			else
				status = 255;
		}
		cli_free_node_lists(lists, strv_length(nodes));
	} else {
		struct ferry_instance **list = NULL;
		if (cli_list_instances_on(node, &list) < 0)
			status = 255;
		else
			list_rows(list, node, json, &first);
		ferry_instance_list_free(list);
	}
	if (json)
		printf("%s]}\n", first ? "" : "\n");
	return status;
}

int cli_parse_signal(const char *s)
{
	static const struct {
		const char *name;
		int sig;
	} sigs[] = {{"HUP", SIGHUP},   {"INT", SIGINT},	  {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
		    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"CONT", SIGCONT},
		    {"STOP", SIGSTOP}, {"ALRM", SIGALRM}};
	unsigned long long n;
	if (parse_uint64(s, 64, &n) == 0 && n > 0)
		return (int)n;
	if (startswith(s, "SIG"))
		s += 3;
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		if (strcasecmp(s, sigs[i].name) == 0)
			return sigs[i].sig;
	return -1;
}

/* Signals the instance's init through a pidfd, after checking it is still that process. */
static int stop_one(const struct ferry_instance *inst, int sig, bool wait, unsigned timeout)
{
	int pidfd = (int)syscall(SYS_pidfd_open, inst->pid, 0);
	if (pidfd < 0 || !ferry_instance_alive(inst)) {
		if (pidfd >= 0)
			close(pidfd);
		return 0; /* already gone */
	}
	if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0) {
		int e = errno;
		close(pidfd);
		return cli_fail("signal instance '%s': %s", inst->name, strerror(e));
	}
	if (!wait) {
		close(pidfd);
		return 0;
	}
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	int r = poll(&p, 1, (int)timeout * 1000);
	if (r == 0) {
		fprintf(stderr, "ferry: instance '%s' did not stop within %u s: killing it\n", inst->name,
			timeout);
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
		poll(&p, 1, 10000);
	}
	close(pidfd);
	return 0;
}

static int do_stop(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"signal", required_argument, NULL, 's'}, {"timeout", required_argument, NULL, 't'},
	    {"force", no_argument, NULL, 'F'},	      {"all", no_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0},
	};
	int sig = SIGTERM, c;
	bool all = false, custom = false;
	unsigned long long timeout = 10;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "s:t:Fah", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			sig = cli_parse_signal(optarg);
			if (sig < 0)
				return cli_fail(
				    "unknown signal '%s': use a name like TERM or USR1, or a number", optarg);
			custom = true;
			break;
		case 't':
			if (parse_uint64(optarg, 86400, &timeout) < 0)
				return cli_fail("--timeout '%s': expected seconds (0-86400)", optarg);
			break;
		case 'F':
			sig = SIGKILL;
			break;
		case 'a':
			all = true;
			break;
		case 'h':
			return fputs(instance_help, stdout), 0;
		default:
			return cli_fail("unknown option '%s' for 'ferry instance stop'", argv[optind - 1]);
		}
	}
	if (!all && optind >= argc)
		return cli_fail("missing NAME: 'ferry instance stop NAME' (or --all)");
	if (all && optind < argc)
		return cli_fail("give either NAMEs or --all, not both");
	struct ferry_error *err = NULL;
	for (int i = optind; i < argc; i++)
		if (ferry_name_check(argv[i], "instance", &err) < 0)
			return cli_error(err);
	struct ferry_instance **list = NULL;
	if (cli_list_instances(&list) < 0)
		return 255;
	int status = 0;
	for (int i = optind; i < argc; i++) {
		bool found = false;
		for (size_t j = 0; list[j] && !found; j++)
			found = streq(list[j]->name, argv[i]);
		if (!found)
			status = cli_fail("no instance '%s' of yours is running: see 'ferry instance list'",
					  argv[i]);
	}
	for (size_t j = 0; list[j]; j++) {
		bool wanted = all;
		for (int i = optind; i < argc && !wanted; i++)
			wanted = streq(list[j]->name, argv[i]);
		if (wanted && stop_one(list[j], sig, !custom, (unsigned)timeout) != 0)
			status = 255;
	}
	ferry_instance_list_free(list);
	return status;
}

static int do_start(int argc, char **argv)
{
	_cleanup_(container_opts_free) struct container_opts o = {0};
	int status = 0;
	int i = parse_container_opts(argc, argv, instance_help, &o, &status);
	if (i <= 0)
		return status;
	struct ferry_error *err = NULL;
	o.req.op = FERRY_OP_INSTANCE_START;
	if (o.criu_launch && o.criu_restart)
		return cli_fail("--criu-launch and --criu-restart exclude each other");
	if ((o.page_server || o.tcp_close) && !o.criu_restart)
		return cli_fail("%s belongs to --criu-restart",
				o.page_server ? "--page-server PORT" : "--tcp-close");
	/* (ferryd takes no FERRY_REQ_TIMINGS from a client: the flag is its own) */
	if (o.timings && o.node)
		return cli_fail("--timings is for a start on this node, not with --node");
	if (o.criu_restart) {
		/* everything else comes from the checkpoint: [IMAGE [INSTANCE]] may override */
		if (argc - i > 2)
			return cli_fail(
			    "usage: ferry instance start --criu-restart NAME [--page-server PORT] [--tcp-close] [IMAGE "
			    "[INSTANCE]]");
		if (o.req.n_binds || o.req.hostname || o.req.pwd || o.extra_env || o.req.flags)
			return cli_fail(
			    "--criu-restart restores the options the instance was launched with: give no others");
		if (o.node && o.page_server)
			return cli_fail("--node and --page-server exclude each other: the restart on NODE "
					"takes the checkpoint from disk");
		o.req.flags = FERRY_REQ_CRIU_RESTART | (o.tcp_close ? FERRY_REQ_TCP_CLOSE : 0) |
			      (o.timings ? FERRY_REQ_TIMINGS : 0);
		o.req.checkpoint = checkpoint_resolve(o.criu_restart, true);
		if (!o.req.checkpoint)
			return 255;
		if (i < argc)
			o.req.image = absolute_path(argv[i]);
		if (i + 1 < argc) {
			if (ferry_name_check(argv[i + 1], "instance", &err) < 0)
				return cli_error(err);
			o.req.instance = xstrdup(argv[i + 1]);
		}
		strv_free(o.req.env);
		o.req.env = NULL;
		if (o.node)
			return remote_start(&o.req, o.node);
		if (!o.page_server)
			return exec_starter(&o.req);
		/* receive the pages (and the rest) from 'checkpoint instance --page-server' first */
		o.req.page_server = xstrdup(o.page_server);
		int sk = page_server_accept(o.page_server, 600);
		if (sk < 0)
			return 255;
		return exec_starter_with(&o.req, sk);
	}
	if (argc - i < 2)
		return cli_fail("usage: ferry instance start [OPTIONS] IMAGE NAME [COMMAND...]");
	if (ferry_name_check(argv[i + 1], "instance", &err) < 0)
		return cli_error(err);
	if (o.criu_launch) {
		o.req.flags |= FERRY_REQ_CRIU_LAUNCH;
		o.req.checkpoint = checkpoint_resolve(o.criu_launch, true);
		if (!o.req.checkpoint)
			return 255;
	}
	o.req.flags |= o.timings ? FERRY_REQ_TIMINGS : 0;
	o.req.image = absolute_path(argv[i]);
	o.req.instance = xstrdup(argv[i + 1]);
	for (i += 2; i < argc; i++)
		strv_push(&o.req.argv, argv[i]);
	build_env(&o, o.req.image);
	return o.node ? remote_start(&o.req, o.node) : exec_starter(&o.req);
}

/* what is taken of the starter's stdout there (as much as ferryd sends) */
#define REMOTE_OUT_MAX FERRY_PROTO_OUT_TOTAL

/* A blob of the answer (the starter's stdout or stderr there): onto @fd, or appended to *@ret
 * (NUL-terminated, *@ret_len bytes, at most REMOTE_OUT_MAX). -1 when it is not one. */
static int take_blob(const struct ferry_msg *m, const char *key, int fd, char **ret, size_t *ret_len)
{
	struct ferry_error *err = NULL;
	_cleanup_free_ char *buf = xmalloc(FERRY_PROTO_BLOB_MAX + 1);
	size_t len = 0;
	if (ferry_msg_get_blob(m, key, buf, FERRY_PROTO_BLOB_MAX, &len, &err) < 0) {
		cli_error(err);
		return -1;
	}
	if (!ret) {
		(void)ferry_write_all(fd, buf, len);
		return 0;
	}
	if (*ret_len + len > REMOTE_OUT_MAX) {
		cli_fail("the output from the other node is larger than %u bytes", REMOTE_OUT_MAX);
		return -1;
	}
	*ret = xrealloc(*ret, *ret_len + len + 1);
	memcpy(*ret + *ret_len, buf, len);
	*ret_len += len;
	(*ret)[*ret_len] = '\0';
	return 0;
}

int remote_run(const struct ferry_request *req, const char *node, char **ret_out, size_t *ret_len)
{
	struct ferry_error *err = NULL;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	if (ferry_request_encode(req, &buf, &len, &err) < 0)
		return cli_error(err);
	if (len > FERRY_PROTO_BLOB_MAX)
		return cli_fail(
		    "the start request is %zu bytes, more than a start on another node takes (%u): "
		    "your environment is large; use --cleanenv, with --env for what the job needs",
		    len, FERRY_PROTO_BLOB_MAX);
	int sk = connect_ferryd();
	if (sk < 0)
		return cli_fail("--node needs ferryd on this node (%s): start it (see ferryd --help)",
				strerror(errno));
	struct ferry_msg m = {0}, r = {0};
	ferry_msg_set(&m, "type", "start");
	ferry_msg_set(&m, "to", "%s", node);
	ferry_msg_set_blob(&m, "req", buf, len);
	int rc = ferry_msg_send(sk, &m, &err);
	ferry_msg_clear(&m);
	if (ret_out) {
		*ret_out = NULL;
		*ret_len = 0;
	}
	/* the starter's stdout there ("out", as many as it took), then its end ("done") */
	while (rc == 0 && (rc = ferry_msg_recv(sk, 0, &r, &err)) == 0 &&
	       streq(ferry_msg_get(&r, "type") ?: "", "out")) {
		rc = take_blob(&r, "out", STDOUT_FILENO, ret_out, ret_len);
		ferry_msg_clear(&r);
	}
	close(sk);
	if (rc < 0) {
		ferry_msg_clear(&r);
		return err ? cli_error(err) : 255;
	}
	const char *type = ferry_msg_get(&r, "type") ?: "", *st = ferry_msg_get(&r, "status");
	unsigned long long status = 255;
	if (streq(type, "error"))
		rc = cli_fail("%s", ferry_msg_get(&r, "message") ?: "the start failed");
	else if (!streq(type, "done") || !st || parse_uint64(st, 255, &status) < 0)
		rc = cli_fail("ferryd sent a '%s' message where the start's end was due", type);
	else if (ferry_msg_get(&r, "out_cut"))
		rc = cli_fail("the output of the starter on %s was cut at %s bytes", node,
			      ferry_msg_get(&r, "out_cut"));
	else {
		(void)take_blob(&r, "err", STDERR_FILENO, NULL, NULL);
		rc = (int)status;
	}
	ferry_msg_clear(&r);
	return rc;
}

int remote_start(const struct ferry_request *req, const char *node)
{
	return remote_run(req, node, NULL, NULL);
}

char **ferryd_nodes(void)
{
	struct ferry_error *err = NULL;
	int sk = connect_ferryd();
	if (sk < 0) {
		cli_fail("--all-nodes needs ferryd on this node (%s): start it (see ferryd --help)",
			 strerror(errno));
		return NULL;
	}
	struct ferry_msg m = {0}, r = {0};
	ferry_msg_set(&m, "type", "peers");
	int rc = ferry_msg_send(sk, &m, &err) < 0 || ferry_msg_recv(sk, 30, &r, &err) < 0 ? -1 : 0;
	ferry_msg_clear(&m);
	close(sk);
	if (rc < 0) {
		cli_error(err);
		return NULL;
	}
	const char *node = ferry_msg_get(&r, "node"), *peers = ferry_msg_get(&r, "peers");
	char **nodes = NULL;
	if (!streq(ferry_msg_get(&r, "type") ?: "", "peers") || !node || !peers) {
		cli_fail("%s", ferry_msg_get(&r, "message") ?: "ferryd did not say which nodes it knows");
		ferry_msg_clear(&r);
		return NULL;
	}
	strv_push(&nodes, node);
	_cleanup_free_ char *copy = xstrdup(peers);
	for (char *save = NULL, *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
		strv_push(&nodes, t);
	ferry_msg_clear(&r);
	return nodes;
}

int cmd_instance(int argc, char **argv)
{
	if (argc < 2 || cli_is_help(argv[1])) {
		fputs(instance_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (streq(argv[1], "start"))
		return do_start(argc - 1, argv + 1);
	if (streq(argv[1], "list"))
		return do_list(argc - 1, argv + 1);
	if (streq(argv[1], "stop"))
		return do_stop(argc - 1, argv + 1);
	return cli_fail("unknown instance command '%s': use start, list or stop", argv[1]);
}
