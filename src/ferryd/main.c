/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ferryd — the migration daemon. See ferryd.h and docs/protocol.md. */
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "ferryd.h"
#include "fs.h"
#include "instance.h"
#include "journal.h"
#include "manifest.h"
#include <openssl/crypto.h>

static int listen_tcp(const char *spec)
{
	const char *colon = strrchr(spec, ':');
	if (!colon)
		return -EINVAL;
	_cleanup_free_ char *host = xstrndup(spec, (size_t)(colon - spec));
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICHOST},
			*res = NULL;
	if (getaddrinfo(*host ? host : NULL, colon + 1, &hints, &res) != 0)
		return -EINVAL;
	int sk = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(sk, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	int r = sk < 0 || bind(sk, res->ai_addr, res->ai_addrlen) < 0 || listen(sk, FERRYD_LISTEN_BACKLOG) < 0
		    ? -errno
		    : sk;
	freeaddrinfo(res);
	if (r < 0 && sk >= 0)
		close(sk);
	return r;
}

static int listen_unix(void)
{
	int sk = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sk < 0)
		return -errno;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path + 1, FERRYD_SOCKET_NAME, strlen(FERRYD_SOCKET_NAME));
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(FERRYD_SOCKET_NAME));
	if (bind(sk, (struct sockaddr *)&a, len) < 0 || listen(sk, 64) < 0) {
		int e = errno;
		close(sk);
		return -e;
	}
	return sk;
}

/* The same, at a path (FERRY_FERRYD_DIR/n<node>/sock): what the starter mounts into
 * checkpointable instances, for the launcher agent inside them (an abstract socket is reachable
 * only from this network namespace). Anyone may connect, as to the abstract one: SO_PEERCRED
 * says who did. The node's directory is root's and 0755 (the users inside pass through it); the
 * one above it root's and 0700, each checked. */
static int listen_path(struct ferry_error **err)
{
	const char *parts[] = {FERRY_RUNDIR, "ferryd"};
	_cleanup_close_ int dir = ferry_open_root_dirs(parts, ARRAY_SIZE(parts), true, err);
	if (dir < 0)
		return dir;
	char node[FERRY_FERRYD_NODE_MAX];
	ferry_ferryd_node_dir(node);
	if (mkdirat(dir, node, 0755) < 0 && errno != EEXIST)
		return ferry_error_set(err, errno, "create '%s/%s'", FERRY_FERRYD_DIR, node);
	_cleanup_close_ int nd = openat(dir, node, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (nd < 0 || fstat(nd, &st) < 0)
		return ferry_error_set(err, errno, "open '%s/%s'", FERRY_FERRYD_DIR, node);
	if (st.st_uid != 0 || (st.st_mode & 07777) != 0755)
		return ferry_error_msg(err, EPERM, "'%s/%s' must be root's, mode 0755", FERRY_FERRYD_DIR,
				       node);
	if (unlinkat(nd, FERRY_FERRYD_SOCK, 0) < 0 && errno != ENOENT)
		return ferry_error_set(err, errno, "remove the old '%s/%s/%s'", FERRY_FERRYD_DIR, node,
				       FERRY_FERRYD_SOCK);
	int sk = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sk < 0)
		return ferry_error_set(err, errno, "socket");
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "/proc/self/fd/%d/%s", nd, FERRY_FERRYD_SOCK);
	mode_t old = umask(0); /* 0777: connect needs write permission */
	int r = bind(sk, (struct sockaddr *)&a, sizeof(a));
	umask(old);
	if (r < 0 || listen(sk, 64) < 0) {
		r = ferry_error_set(err, errno, "listen on '%s/%s/%s'", FERRY_FERRYD_DIR, node,
				    FERRY_FERRYD_SOCK);
		close(sk);
		return r;
	}
	return sk;
}

static const char usage[] =
    "Usage: ferryd [--node NAME] [--listen ADDR:PORT] [--peer NAME=ADDR:PORT]... [--shared-dir DIR]\n"
    "              [--tmpfs-dir DIR]\n"
    "\n"
    "The ferry migration daemon, one per node, run as root (in the foreground; the systemd unit\n"
    "docs/ferryd.service runs it as a service). Local users reach it through 'ferry migrate' (an\n"
    "abstract unix socket of this network namespace; it trusts only SO_PEERCRED); other ferryd\n"
    "reach it on --listen and must prove the cluster key (/etc/ferry/cluster.key).\n"
    "\n"
    "  --node NAME            this node's name (default: the hostname)\n"
    "  --listen ADDR:PORT     where peers connect (default 0.0.0.0:7780)\n"
    "  --peer NAME=ADDR:PORT  another node (repeatable)\n"
    "  --shared-dir DIR       checkpoints of default-mode migrations: a filesystem all nodes share\n"
    "                         (default /var/lib/ferry/shared)\n"
    "  --tmpfs-dir DIR        where diskless migrations land (default /dev/shm/ferry-migrate)\n";

/* Adds the peer "NAME=ADDR:PORT"; false when it is not one (or there are too many). */
static bool add_peer(struct ferryd *d, const char *spec)
{
	const char *eq = strchr(spec, '=');
	if (!eq || eq == spec || !strchr(eq, ':') || d->n_peers >= FERRYD_MAX_PEERS)
		return false;
	d->peers[d->n_peers].name = xstrndup(spec, (size_t)(eq - spec));
	d->peers[d->n_peers++].addr = xstrdup(eq + 1);
	return true;
}

/* ferry.conf's 'ferryd ...' keys into @d: the defaults the command line overrides. */
static int config_into(struct ferryd *d, struct ferry_error **err)
{
	if (ferry_config_load(FERRY_CONFIG_PATH, true, &d->cfg, err) < 0)
		return -EINVAL;
	char host[256] = "node";
	gethostname(host, sizeof(host) - 1);
	d->node = xstrdup(d->cfg->ferryd_node ? d->cfg->ferryd_node : host);
	d->listen = xstrdup(d->cfg->ferryd_listen);
	d->shared_dir = xstrdup(d->cfg->ferryd_shared_dir);
	d->tmpfs_dir = xstrdup(d->cfg->ferryd_tmpfs_dir);
	for (char **p = d->cfg->ferryd_peers; p && *p; p++)
		if (!add_peer(d, *p))
			return ferry_error_msg(err, EINVAL,
					       "ferry.conf: 'ferryd peer = %s': expected NAME=ADDR:PORT", *p);
	return 0;
}

/* 0, or an exit code. */
static int load_config(struct ferryd *d)
{
	struct ferry_error *err = NULL;
	if (config_into(d, &err) < 0) {
		fprintf(stderr, "ferryd: %s\n", err->message);
		return 1;
	}
	return 0;
}

static void replace(char **field, const char *value)
{
	free(*field);
	*field = xstrdup(value);
}

/* The command line over ferry.conf. -1 to go on, or an exit code. */
static int parse_args(struct ferryd *d, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"node", required_argument, NULL, 'n'},
	    {"listen", required_argument, NULL, 'l'},
	    {"peer", required_argument, NULL, 'p'},
	    {"shared-dir", required_argument, NULL, 's'},
	    {"tmpfs-dir", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool cli_peers = false;
	int c;
	optind = 0; /* from the start (again, at a reload) */
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			replace(&d->node, optarg);
			break;
		case 'l':
			replace(&d->listen, optarg);
			break;
		case 'p':
			if (!cli_peers) /* peers on the command line replace ferry.conf's */
				d->n_peers = 0;
			cli_peers = true;
			if (!add_peer(d, optarg)) {
				fprintf(stderr, "ferryd: --peer '%s': expected NAME=ADDR:PORT\n", optarg);
				return 2;
			}
			break;
		case 's':
			replace(&d->shared_dir, optarg);
			break;
		case 't':
			replace(&d->tmpfs_dir, optarg);
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	return -1;
}

static void ferryd_free_config(struct ferryd *d)
{
	free(d->node);
	free(d->listen);
	free(d->shared_dir);
	free(d->tmpfs_dir);
	for (size_t i = 0; i < d->n_peers; i++) {
		free(d->peers[i].name);
		free(d->peers[i].addr);
	}
	ferry_config_free(d->cfg);
	OPENSSL_cleanse(d->key, sizeof(d->key));
}

void ferryd_reload(struct ferryd *d, bool quiet)
{
	/* what runs stays: the journal's directory, the reconciler */
	struct ferryd n = {
	    .argc = d->argc, .argv = d->argv, .jfd = d->jfd, .reconciler = d->reconciler, .criu = d->criu};
	struct ferry_error *err = NULL;
	if (config_into(&n, &err) < 0 || parse_args(&n, d->argc, d->argv) >= 0 ||
	    ferry_key_load(FERRY_KEY_PATH, n.key, &n.keylen, &err) < 0) {
		if (!quiet)
			ferryd_log(NULL, "SIGHUP: %s; the configuration in use is kept",
				   err ? err->message : "the command line is refused now");
		ferry_error_free(err);
		ferryd_free_config(&n);
		return;
	}
	/* the name and the listening socket stay what they were until ferryd restarts */
	if (!quiet && (!streq(n.node, d->node) || !streq(n.listen, d->listen)))
		ferryd_log(NULL, "SIGHUP: 'ferryd node' and 'ferryd listen' change when ferryd restarts");
	replace(&n.node, d->node);
	replace(&n.listen, d->listen);
	ferryd_free_config(d);
	*d = n;
	ferryd_log_node = d->node;
	if (!quiet)
		ferryd_log(NULL,
			   "SIGHUP: ferry.conf and the cluster key read again: %zu peers, criu timeout %u s",
			   d->n_peers, d->cfg->criu_timeout);
	/* (and CRIU again: 'criu path' may name another, or it was upgraded; the reconciler, quiet,
	 * checks no migration and keeps what it had) */
	if (!quiet)
		ferryd_criu_learn(d);
	if (d->reconciler > 0)
		(void)kill(d->reconciler, SIGHUP); /* it asks the peers: it must know the new ones */
}

int main(int argc, char **argv)
{
	struct ferryd d = {.argc = argc, .argv = argv, .jfd = -1};
	struct ferry_error *err = NULL;
	int r = load_config(&d);
	if (r == 0)
		r = parse_args(&d, argc, argv);
	if (r >= 0)
		return r;
	ferryd_log_node = d.node;
	if (geteuid() != 0) {
		fprintf(stderr,
			"ferryd: must run as root (it starts ferry-starter for the users it verified)\n");
		return 1;
	}
	if (ferry_key_load(FERRY_KEY_PATH, d.key, &d.keylen, &err) < 0) {
		fprintf(stderr, "ferryd: %s\n", err->message);
		return 1;
	}
	ferryd_criu_learn(&d);
	/* the journal (journal.h) and the reconciler, before any migration is served */
	if (ferryd_journal_open(&d, &err) < 0) {
		fprintf(stderr, "ferryd: %s\n", err->message);
		return 1;
	}
	ferryd_reconcile_start(&d);
	int tcp = listen_tcp(d.listen);
	if (tcp < 0) {
		fprintf(stderr, "ferryd: listen on '%s': %s\n", d.listen, strerror(-tcp));
		return 1;
	}
	int ux = listen_unix();
	if (ux < 0) {
		fprintf(stderr,
			"ferryd: the local socket is taken (another ferryd in this network namespace?): %s\n",
			strerror(-ux));
		return 1;
	}
	int px = listen_path(&err);
	if (px < 0) {
		fprintf(stderr, "ferryd: %s\n", err->message);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	ferryd_log(NULL, "listening on %s, %zu peers", d.listen, d.n_peers);
	ferryd_loop(&d, ux, px, tcp);
}
