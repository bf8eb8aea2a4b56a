/* SPDX-License-Identifier: GPL-2.0-or-later */
/* launch.c — container options and the hand-over to the setuid starter.
 *
 * The request travels in a sealed memfd on fd 3, so its size is not bounded by a pipe buffer
 * and the starter reads exactly what was written. The starter re-checks every field. */
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "ckspec.h"
#include "ferry.h"
#include "fs.h"

#define STARTER FERRY_LIBEXECDIR "/ferry-starter"
#define CONTAINER_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

extern char **environ;

char *absolute_path(const char *path)
{
	if (path[0] == '/')
		return xstrdup(path);
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return xstrdup(path);
	return xasprintf("%s/%s", streq(cwd, "/") ? "" : cwd, path);
}

/* @abs (absolute) without empty or '.' components and without a trailing '/': SRC taken as the
 * destination of a --bind without one ('-B ./data/'); '..' stays, for the starter to refuse. */
static char *plain_path(const char *abs)
{
	char *out = xmalloc(strlen(abs) + 2);
	size_t o = 0;
	for (const char *c = abs; *c;) {
		c += strspn(c, "/");
		size_t len = strcspn(c, "/");
		if (len > 0 && !(len == 1 && c[0] == '.')) {
			out[o++] = '/';
			memcpy(out + o, c, len);
			o += len;
		}
		c += len;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return out;
}

static int add_binds(struct ferry_request *req, const char *arg, struct ferry_error **err)
{
	/* strtok would skip empty specs silently: "" "," "a,,b" are errors */
	size_t n = strlen(arg);
	if (n == 0 || arg[0] == ',' || arg[n - 1] == ',' || strstr(arg, ",,"))
		return ferry_error_msg(err, EINVAL, "--bind '%s': empty bind spec; use SRC[:DST[:ro|rw]]",
				       arg);
	_cleanup_free_ char *copy = xstrdup(arg);
	char *save = NULL;
	for (char *spec = strtok_r(copy, ",", &save); spec; spec = strtok_r(NULL, ",", &save)) {

		struct ferry_bind b = {0};
		/* without DST the destination is SRC, made plain (ferry_bind_parse would refuse
		 * '-B ./data/' as a destination) */
		bool dst_is_src = !strchr(spec, ':');
		int r = ferry_bind_parse(spec, &b, err);
		if (r < 0)
			return r;
		if (b.src[0] != '/') {
			char *abs = absolute_path(b.src);
			free(b.src);
			b.src = abs;
		}
		if (dst_is_src || !b.dst) {
			free(b.dst);
			b.dst = plain_path(b.src);
		}
		req->binds = xrealloc(req->binds, (req->n_binds + 1) * sizeof(*req->binds));
		req->binds[req->n_binds++] = b;
	}
	return 0;
}

/* One of run/exec's --checkpoint options, @which counted from --checkpoint. */
static int parse_run_opt(int which, const char *arg, struct run_opts *ro, int *ret_status)
{
	switch (which) {
	case 0:
		ro->checkpoint = arg;
		return 0;
	case 1:
		if (ferry_duration_parse(arg, &ro->every) == 0)
			return 0;
		*ret_status =
		    cli_fail("--checkpoint-every '%s': give an interval such as 90s, 30m, 2h or 1h30m", arg);
		return -1;
	case 2:
		if (parse_uint64(arg, 1000, &ro->keep) == 0 && ro->keep > 0)
			return 0;
		*ret_status = cli_fail("--keep '%s': give how many generations to keep (1-1000)", arg);
		return -1;
	case 3:
		ro->signal = cli_parse_signal(arg);
		if (ro->signal > 0 && ro->signal < 65 && ro->signal != SIGKILL && ro->signal != SIGSTOP)
			return 0;
		*ret_status =
		    cli_fail("--checkpoint-signal '%s': give a signal name such as USR1 or USR2, or a "
			     "number (not KILL or STOP)",
			     arg);
		return -1;
	case 4:
		ro->requeue = true;
		return 0;
	default:
		ro->delete_at_end = true;
		return 0;
	}
}

int parse_container_opts(int argc, char **argv, const char *help, struct container_opts *o, int *ret_status)
{
	enum {
		OPT_PWD = 256,
		OPT_HOSTNAME,
		OPT_NO_HOME,
		OPT_LAUNCH,
		OPT_RESTART,
		OPT_PS,
		OPT_NET,
		OPT_NETWORK,
		OPT_NETARGS,
		OPT_TCP_CLOSE,
		OPT_CHECKPOINT,
		OPT_EVERY,
		OPT_KEEP,
		OPT_CKSIGNAL,
		OPT_REQUEUE,
		OPT_DELETE_AT_END,
		OPT_WAIT_ALL,
		OPT_PRIVATE_TMP,
		OPT_NODE,
		OPT_TIMINGS
	};
	static const struct option longopts[] = {
	    {"bind", required_argument, NULL, 'B'},
	    {"contain", no_argument, NULL, 'c'},
	    {"private-tmp", no_argument, NULL, OPT_PRIVATE_TMP},
	    {"cleanenv", no_argument, NULL, 'e'},
	    {"env", required_argument, NULL, 'E'},
	    {"pwd", required_argument, NULL, OPT_PWD},
	    {"hostname", required_argument, NULL, OPT_HOSTNAME},
	    {"no-home", no_argument, NULL, OPT_NO_HOME},
	    {"help", no_argument, NULL, 'h'},
	    {"criu-launch", required_argument, NULL, OPT_LAUNCH},
	    {"criu-restart", required_argument, NULL, OPT_RESTART},
	    {"page-server", required_argument, NULL, OPT_PS},
	    {"tcp-close", no_argument, NULL, OPT_TCP_CLOSE},
	    {"net", no_argument, NULL, OPT_NET},
	    {"network", required_argument, NULL, OPT_NETWORK},
	    {"network-args", required_argument, NULL, OPT_NETARGS},
	    {"checkpoint", required_argument, NULL, OPT_CHECKPOINT},
	    {"checkpoint-every", required_argument, NULL, OPT_EVERY},
	    {"keep", required_argument, NULL, OPT_KEEP},
	    {"checkpoint-signal", required_argument, NULL, OPT_CKSIGNAL},
	    {"requeue", no_argument, NULL, OPT_REQUEUE},
	    {"delete-at-end", no_argument, NULL, OPT_DELETE_AT_END},
	    {"wait-all", no_argument, NULL, OPT_WAIT_ALL},
	    {"node", required_argument, NULL, OPT_NODE},
	    {"timings", no_argument, NULL, OPT_TIMINGS},
	    {NULL, 0, NULL, 0},
	};
	struct ferry_error *err = NULL;
	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+B:ceE:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'B':
			if (add_binds(&o->req, optarg, &err) < 0) {
				*ret_status = cli_error(err);
				return -1;
			}
			break;
		case 'c':
			o->req.flags |= FERRY_REQ_CONTAIN;
			break;
		case OPT_PRIVATE_TMP:
			o->req.flags |= FERRY_REQ_PRIVATE_TMP;
			break;
		case 'e':
			o->req.flags |= FERRY_REQ_CLEANENV;
			break;
		case 'E':
			if (!strchr(optarg, '=') || optarg[0] == '=') {
				*ret_status = cli_fail("--env '%s': expected KEY=VALUE", optarg);
				return -1;
			}
			strv_push(&o->extra_env, optarg);
			break;
		case OPT_PWD:
			if (optarg[0] != '/') {
				*ret_status = cli_fail(
				    "--pwd '%s': give an absolute path inside the container", optarg);
				return -1;
			}
			free(o->req.pwd);
			o->req.pwd = xstrdup(optarg);
			break;
		case OPT_HOSTNAME:
			free(o->req.hostname);
			o->req.hostname = xstrdup(optarg);
			break;
		case OPT_NO_HOME:
			o->req.flags |= FERRY_REQ_NO_HOME;
			break;
		case OPT_NET:
		case OPT_NETWORK:
		case OPT_NETARGS:
			/* (also a resumable run's instance's: exec.c checks) */
			if (!streq(argv[0], "start") && !streq(argv[0], "run") && !streq(argv[0], "exec")) {
				*ret_status =
				    cli_fail("%s belongs to 'ferry instance start'", argv[optind - 1]);
				return -1;
			}
			o->req.flags |= FERRY_REQ_NET;
			if (c == OPT_NETWORK) {
				free(o->req.networks);
				o->req.networks = xstrdup(optarg);
			} else if (c == OPT_NETARGS) {
				free(o->req.network_args);
				o->req.network_args = xstrdup(optarg);
			}
			break;
		case OPT_LAUNCH:
		case OPT_RESTART:
		case OPT_PS:
		case OPT_TCP_CLOSE:
		case OPT_WAIT_ALL:
		case OPT_NODE:
		case OPT_TIMINGS:
			if (!streq(argv[0], "start")) {
				*ret_status =
				    cli_fail("%s belongs to 'ferry instance start'", argv[optind - 1]);
				return -1;
			}
			if (c == OPT_LAUNCH)
				o->criu_launch = optarg;
			else if (c == OPT_RESTART)
				o->criu_restart = optarg;
			else if (c == OPT_TCP_CLOSE)
				o->tcp_close = true;
			else if (c == OPT_WAIT_ALL)
				o->req.flags |= FERRY_REQ_WAIT_ALL;
			else if (c == OPT_NODE)
				o->node = optarg;
			else if (c == OPT_TIMINGS)
				o->timings = true;
			else
				o->page_server = optarg;
			break;
		case OPT_CHECKPOINT:
		case OPT_EVERY:
		case OPT_KEEP:
		case OPT_CKSIGNAL:
		case OPT_REQUEUE:
		case OPT_DELETE_AT_END:
			if (!streq(argv[0], "run") && !streq(argv[0], "exec")) {
				*ret_status =
				    cli_fail("%s belongs to 'ferry run' and 'ferry exec'", argv[optind - 1]);
				return -1;
			}
			if (parse_run_opt(c - OPT_CHECKPOINT, optarg, &o->run, ret_status) < 0)
				return -1;
			break;
		case 'h':
			fputs(help, stdout);
			*ret_status = 0;
			return 0;
		default:
			if (optopt)
				*ret_status =
				    cli_fail("unknown option '-%c' for 'ferry %s': see 'ferry %s --help'",
					     optopt, argv[0], argv[0]);
			else
				*ret_status =
				    cli_fail("unknown option '%s' for 'ferry %s': see 'ferry %s --help'",
					     argv[optind - 1], argv[0], argv[0]);
			return -1;
		}
	}
	if (!o->run.checkpoint &&
	    (o->run.every || o->run.keep || o->run.signal || o->run.requeue || o->run.delete_at_end)) {
		*ret_status = cli_fail("--checkpoint-every, --keep, --checkpoint-signal, --requeue and "
				       "--delete-at-end need --checkpoint NAME");
		return -1;
	}
	char cwd[PATH_MAX];
	if (getcwd(cwd, sizeof(cwd)))
		o->req.cwd = xstrdup(cwd);
	return optind;
}

void container_opts_free(struct container_opts *o)
{
	ferry_request_clear(&o->req);
	strv_free(o->extra_env);
	free(o->run.owned_checkpoint);
}

static void env_set(char ***env, const char *kv)
{
	size_t klen = strcspn(kv, "=");
	for (char **e = *env; e && *e; e++)
		if (strncmp(*e, kv, klen) == 0 && (*e)[klen] == '=') {
			free(*e);
			*e = xstrdup(kv);
			return;
		}
	strv_push(env, kv);
}

void build_env(struct container_opts *o, const char *image)
{
	static const char *const keep_clean[] = {"HOME", "USER", "LOGNAME", "TERM", "LANG", "LC_ALL", "TZ"};
	char **env = NULL;
	for (char **e = environ; e && *e; e++) {
		size_t klen = strcspn(*e, "=");
		bool keep = !(o->req.flags & FERRY_REQ_CLEANENV);
		for (size_t i = 0; !keep && i < ARRAY_SIZE(keep_clean); i++)
			keep = strlen(keep_clean[i]) == klen && strncmp(*e, keep_clean[i], klen) == 0;
		if (!keep || startswith(*e, "PATH=") || startswith(*e, "PS1=") || klen == 0 || !(*e)[klen])
			continue;
		if (startswith(*e, "FERRYENV_")) /* FERRYENV_FOO=bar sets FOO=bar inside */
			continue;
		strv_push(&env, *e);
	}
	env_set(&env, "PATH=" CONTAINER_PATH);
	_cleanup_free_ char *c = xasprintf("FERRY_CONTAINER=%s", image ? image : "");
	env_set(&env, c);
	if (o->req.instance) {
		_cleanup_free_ char *n = xasprintf("FERRY_INSTANCE=%s", o->req.instance);
		env_set(&env, n);
	}
	for (char **e = environ; e && *e; e++)
		if (startswith(*e, "FERRYENV_") && strchr(*e, '=') > *e + 9)
			env_set(&env, *e + 9);
	for (char **e = o->extra_env; e && *e; e++)
		env_set(&env, *e);
	o->req.env = env;
}

int request_memfd(const struct ferry_request *req)
{
	struct ferry_error *err = NULL;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	if (ferry_request_encode(req, &buf, &len, &err) < 0)
		return cli_error(err), -1;
	int fd = memfd_create("ferry-request", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ferry_write_all(fd, buf, len) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		cli_fail("prepare the request: %s", strerror(errno));
		return -1;
	}
	fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
	return fd;
}

static int put_on_fd3(int fd)
{
	if (fd == FERRY_REQUEST_FD)
		return fcntl(fd, F_SETFD, 0);
	return dup2(fd, FERRY_REQUEST_FD) < 0 ? -1 : 0; /* dup2 clears FD_CLOEXEC */
}

int exec_starter_with(const struct ferry_request *req, int extra_fd)
{
	int fd = request_memfd(req);
	if (fd < 0)
		return 255;
	if (extra_fd >= 0) {
		/* fd 4: the connection of a --page-server transfer */
		if (extra_fd == 3 && (extra_fd = fcntl(extra_fd, F_DUPFD_CLOEXEC, 10)) < 0)
			return cli_fail("pass the connection: %s", strerror(errno));
		if (fd == 4 && (fd = fcntl(fd, F_DUPFD_CLOEXEC, 10)) < 0)
			return cli_fail("pass the request: %s", strerror(errno));
		/* dup2 onto itself would keep FD_CLOEXEC */
		if ((extra_fd == 4 ? fcntl(4, F_SETFD, 0) : dup2(extra_fd, 4)) < 0)
			return cli_fail("pass the connection: %s", strerror(errno));
	}
	if (put_on_fd3(fd) < 0)
		return cli_fail("pass the request: %s", strerror(errno));
	char *const argv[] = {"ferry-starter", NULL};
	char *const envp[] = {NULL};
	execve(STARTER, argv, envp);
	return cli_fail("cannot run '%s': %s (is ferry installed? run 'make install' as root)", STARTER,
			strerror(errno));
}

int exec_starter(const struct ferry_request *req)
{
	return exec_starter_with(req, -1);
}

int run_starter_capture(const struct ferry_request *req, char **ret_out, size_t *ret_len)
{
	int out[2];
	if (pipe2(out, O_CLOEXEC) < 0)
		return cli_fail("pipe: %s", strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return cli_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		if (dup2(out[1], STDOUT_FILENO) < 0)
			_exit(255);
		_exit(exec_starter(req));
	}
	close(out[1]);
	struct ferry_error *err = NULL;
	int r = ferry_read_all(out[0], 64u << 20, ret_out, ret_len, &err);
	close(out[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (r < 0)
		return cli_error(err);
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 255;
}
