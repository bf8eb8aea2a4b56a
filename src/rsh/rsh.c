/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ferry-rsh — the launcher agent of MPI jobs in ferry instances (ferry-mpi(7)).
 *
 *   ferry-rsh [-x] HOST COMMAND...
 *
 * What an MPI launcher calls in place of ssh (Open MPI's plm_rsh_agent; MPICH's hydra
 * launcher=rsh with its rsh command) to start its daemon on HOST: it asks this node's ferryd to
 * start COMMAND (through sh -c) as a checkpointable instance of the caller, named
 * "$FERRY_INSTANCE-HOST", with host name HOST, on the node HOST maps to, from this instance's
 * image; the daemon may fork into the background (--wait-all). ferryd's reader, the caller for
 * good, makes the request (src/ferryd/ask.c: launch_take); the start is then the caller's own
 * 'ferry instance start --node NODE'. ferry-rsh exits with the start's status once the instance
 * runs, as ssh does once a daemonizing command returns.
 *
 * Settings, from the environment (the agent passes them on to the daemons it starts, so that
 * they may launch too):
 *   FERRY_RSH_HOSTS    "HOST:NODE[:IP/PREFIX],..." (commas or spaces): HOST's node, and the
 *                      address of its instance on FERRY_RSH_NETWORK (without one, the network's
 *                      IPAM chooses); a HOST not listed is a node's name
 *   FERRY_RSH_NETWORK  the instances' network (ferry.conf's policy); without it, and without an
 *                      address, an instance has only a loopback network of its own (a
 *                      checkpointable instance's default): no other rank reaches it
 *   FERRY_CONTAINER, FERRY_INSTANCE  set by ferry in every instance: the image, the name
 *
 * In a resumable run's instance ('ferry exec --checkpoint': /.ferry-run is bound there) it first
 * makes /.ferry-run/group, which tells the run that its checkpoints are now the whole job's.
 *
 * It is built static and shipped in the CRIU bundle, which the starter mounts read-only in
 * every checkpointable instance at /.ferry/criu, with this node's ferryd socket at
 * /.ferry/ferryd/sock (FERRY_FERRYD_INSIDE, src/lib/instance.h): nothing of the image is
 * loaded. Outside an instance it reaches ferryd at its abstract socket. It holds no privilege:
 * every check is ferryd's and the starter's. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define INSIDE "/.ferry/ferryd/sock" /* FERRY_FERRYD_INSIDE "/" FERRY_FERRYD_SOCK */
#define ABSTRACT "ferry/ferryd" /* FERRYD_SOCKET_NAME */
#define MSG_MAX (64u * 1024) /* FERRY_PROTO_MAX */
#define VALUE_MAX 4096 /* FERRY_PROTO_VALUE_MAX */
#define MAGIC "ferry-proto 1\n"
#define RUN_GROUP_MARK "/.ferry-run/group" /* RUN_STATUS_MOUNT "/" RUN_GROUP (src/ferry/run.c) */

static const char usage[] =
    "Usage: ferry-rsh [-x] HOST COMMAND...\n"
    "\n"
    "The launcher agent of MPI jobs in ferry instances (see ferry-mpi(7)): give it to the MPI\n"
    "launcher in place of ssh (Open MPI: --mca plm_rsh_agent /.ferry/criu/ferry-rsh). It starts\n"
    "COMMAND as your checkpointable instance $FERRY_INSTANCE-HOST on the node HOST maps to.\n"
    "\n"
    "  FERRY_RSH_HOSTS    \"HOST:NODE[:IP/PREFIX],...\": HOST's node and its instance's address\n"
    "                     (without one, the network's IPAM chooses)\n"
    "  FERRY_RSH_NETWORK  the instances' network\n";

static _Noreturn void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("ferry-rsh: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(255);
}

struct msg {
	char buf[MSG_MAX + 4];
	size_t len;
};

static void put(struct msg *m, const char *key, const char *val)
{
	size_t kl = strlen(key), vl = strlen(val);
	if (vl > VALUE_MAX)
		die("the %s is longer than %d bytes", key, VALUE_MAX);
	if (m->len + kl + vl + 2 > MSG_MAX + 4)
		die("the request is too large");
	memcpy(m->buf + m->len, key, kl);
	m->buf[m->len + kl] = '=';
	char *v = m->buf + m->len + kl + 1;
	for (size_t i = 0; i < vl; i++) /* a value is one printable line */
		v[i] = (unsigned char)val[i] < 0x20 || val[i] == 0x7f ? ' ' : val[i];
	v[vl] = '\n';
	m->len += kl + vl + 2;
}

static bool io(int fd, void *buf, size_t n, bool wr)
{
	for (size_t done = 0; done < n;) {
		ssize_t k =
		    wr ? write(fd, (char *)buf + done, n - done) : read(fd, (char *)buf + done, n - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		done += (size_t)k;
	}
	return true;
}

/* This node's ferryd, run by root: inside an instance at INSIDE, else at the abstract name. */
static int connect_ferryd(void)
{
	for (int abstract = 0; abstract < 2; abstract++) {
		int sk = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		socklen_t len = sizeof(a);
		if (abstract) {
			memcpy(a.sun_path + 1, ABSTRACT, strlen(ABSTRACT));
			len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(ABSTRACT));
		} else {
			strcpy(a.sun_path, INSIDE);
		}
		struct ucred c;
		socklen_t cl = sizeof(c);
		if (sk >= 0 && connect(sk, (struct sockaddr *)&a, len) == 0 &&
		    getsockopt(sk, SOL_SOCKET, SO_PEERCRED, &c, &cl) == 0 && c.uid == 0)
			return sk;
		if (sk >= 0)
			close(sk);
	}
	die("no ferryd on this node (%s): ask your admin to run it", strerror(errno));
}

static int b64(char c)
{
	const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c ? strchr(t, c) : NULL;
	return p ? (int)(p - t) : -1;
}

/* The bytes of the answer's blob PREFIX_a, PREFIX_b, ... (proto.h's) onto @fd. */
static void put_blob(char *ans, size_t len, const char *prefix, int fd)
{
	for (char c = 'a'; c <= 'z'; c++) {
		char key[32];
		snprintf(key, sizeof(key), "\n%s_%c=", prefix, c);
		char *v = memmem(ans, len, key, strlen(key));
		if (!v)
			return;
		v += strlen(key);
		char out[3];
		int q[4], k = 0;
		for (; v < ans + len && *v != '\n'; v++) {
			if (*v == '=')
				break;
			if ((q[k++] = b64(*v)) < 0)
				return;
			if (k == 4) {
				out[0] = (char)(q[0] << 2 | q[1] >> 4);
				out[1] = (char)(q[1] << 4 | q[2] >> 2);
				out[2] = (char)(q[2] << 6 | q[3]);
				(void)io(fd, out, 3, true);
				k = 0;
			}
		}
		if (k >= 2) { /* the padded end */
			out[0] = (char)(q[0] << 2 | q[1] >> 4);
			out[1] = (char)(q[1] << 4 | (k > 2 ? q[2] >> 2 : 0));
			(void)io(fd, out, (size_t)k - 1, true);
		}
	}
}

/* The value of @key in the answer (a copy, to its line's end), or NULL. */
static char *get(const char *ans, size_t len, const char *key)
{
	char pat[40];
	snprintf(pat, sizeof(pat), "\n%s=", key);
	const char *v = memmem(ans, len, pat, strlen(pat));
	if (!v)
		return NULL;
	v += strlen(pat);
	const char *e = memchr(v, '\n', (size_t)(ans + len - v));
	return strndup(v, e ? (size_t)(e - v) : (size_t)(ans + len - v));
}

int main(int argc, char **argv)
{
	int i = 1;
	while (i < argc && argv[i][0] == '-') { /* ssh's flags an MPI launcher may add (-x: no X11) */
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return fputs(usage, stdout), 0;
		i++;
	}
	if (argc - i < 2) {
		fputs(usage, stderr);
		return 2;
	}
	const char *host = argv[i++], *image = secure_getenv("FERRY_CONTAINER"),
		   *self = secure_getenv("FERRY_INSTANCE"), *hosts = secure_getenv("FERRY_RSH_HOSTS"),
		   *net = secure_getenv("FERRY_RSH_NETWORK");
	if (!image || !self)
		die("FERRY_CONTAINER and FERRY_INSTANCE are not set: run me in a ferry instance");
	/* HOST's entry in FERRY_RSH_HOSTS: HOST:NODE[:IP/PREFIX] */
	char node[256], ip[64] = "";
	snprintf(node, sizeof(node), "%s", host);
	for (const char *p = hosts ? hosts : ""; *p;) {
		size_t n = strcspn(p, ", \t\n");
		if (n > strlen(host) && !strncmp(p, host, strlen(host)) && p[strlen(host)] == ':') {
			const char *nd = p + strlen(host) + 1, *end = p + n,
				   *c = memchr(nd, ':', (size_t)(end - nd));
			size_t nl = (size_t)((c ? c : end) - nd);
			if (nl == 0 || nl >= sizeof(node) || (c && (size_t)(end - c - 1) >= sizeof(ip)))
				die("FERRY_RSH_HOSTS: a bad entry for '%s' (HOST:NODE[:IP/PREFIX])", host);
			snprintf(node, sizeof(node), "%.*s", (int)nl, nd);
			if (c)
				snprintf(ip, sizeof(ip), "%.*s", (int)(end - c - 1), c + 1);
			break;
		}
		p += n + strspn(p + n, ", \t\n");
	}
	char name[300];
	if ((size_t)snprintf(name, sizeof(name), "%s-%s", self, host) >= sizeof(name))
		die("the instance's name '%s-%s' is too long", self, host);
	char cmd[VALUE_MAX + 1];
	size_t cl = 0;
	for (; i < argc; i++) { /* as ssh: the words, joined by spaces, for the remote shell */
		size_t n = strlen(argv[i]);
		if (cl + n + 1 > VALUE_MAX)
			die("the command is longer than %d bytes", VALUE_MAX);
		memcpy(cmd + cl, argv[i], n);
		cl += n;
		cmd[cl++] = ' ';
	}
	cmd[cl - 1] = '\0';

	static struct msg m;
	m.len = 4;
	memcpy(m.buf + 4, MAGIC, strlen(MAGIC));
	m.len += strlen(MAGIC);
	put(&m, "type", "launch");
	put(&m, "to", node);
	put(&m, "host", host);
	put(&m, "instance", name);
	put(&m, "image", image);
	put(&m, "cmd", cmd);
	if (*ip)
		put(&m, "ip", ip);
	if (*ip || (net && *net)) /* (without an address, the network's IPAM chooses one) */
		put(&m, "network", net && *net ? net : "bridge");
	if (hosts)
		put(&m, "rsh_hosts", hosts);
	uint32_t body = (uint32_t)(m.len - 4);
	memcpy(m.buf, &body, 4); /* little-endian, as x86's */
	/* In a resumable run's instance (ferry run --checkpoint: /.ferry-run is the run's own), the
	 * run now has members elsewhere: its checkpoints must take them all, at one cut (run.c). */
	int mark = open(RUN_GROUP_MARK, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (mark >= 0)
		close(mark);
	int sk = connect_ferryd();
	if (!io(sk, m.buf, m.len, true))
		die("ferryd on this node ended the connection: see its log");
	/* the answer: the starter's stdout ("out", as many as it took), then its end ("done") */
	static char ans[MSG_MAX + 1];
	uint32_t alen = 0;
	char *type = NULL;
	for (;;) {
		if (!io(sk, &alen, 4, false) || alen > MSG_MAX || !io(sk, ans + 1, alen, false))
			die("ferryd on this node ended the connection: see its log");
		ans[0] = '\n'; /* (so that every key follows a newline) */
		free(type);
		type = get(ans, alen + 1, "type");
		if (!type || strcmp(type, "out"))
			break;
		put_blob(ans, alen + 1, "out", STDOUT_FILENO);
	}
	if (type && !strcmp(type, "error")) {
		char *msg = get(ans, alen + 1, "message");
		die("%s", msg ? msg : "the start failed");
	}
	char *status = get(ans, alen + 1, "status"), *end = NULL;
	long st = status ? strtol(status, &end, 10) : -1;
	if (!type || strcmp(type, "done") || !status || !*status || *end || st < 0 || st > 255)
		die("ferryd sent no answer it should have");
	put_blob(ans, alen + 1, "err", STDERR_FILENO);
	return (int)st;
}
