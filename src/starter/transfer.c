/* SPDX-License-Identifier: GPL-2.0-or-later */
/* transfer.c — the starter's side of a --page-server transfer (the protocol: src/lib/xfer.h).
 *
 * The starter reads the cluster key as root and runs the relay, ferry-relay (src/relay/), as the
 * user for good, without capabilities, the key on a pipe: it makes the handshake (on a
 * listening socket it accepts until a sender proves the key), derives the session's keys,
 * forgets the cluster key and from then on only moves sealed records between the connection
 * and four local sockets: CRIU's pages, ferry-xfer's files, the verdict and commit, which take
 * the place of s->xfer_fd, and post-copy's lazy pages. Its executable is one the user cannot
 * read, so the kernel makes it not dumpable: the user's processes cannot read its keys. The
 * files are packed and unpacked by ferry-xfer, run as the user without capabilities: the setuid
 * starter parses nothing of the stream and links no code of its handshake or records. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "fs.h"
#include "helper.h"
#include "starter.h"
#include "transfer.h"

/* How long a receiver waits for the relay's handshake: a listening one waits up to
 * FERRY_XFER_LISTEN_S for a sender to connect at all, then its handshake. */
#define XFER_LISTEN_S (FERRY_XFER_LISTEN_S + 10)

static struct xfer_session session = {.relay = -1, .status = -1, .local = {-1, -1, -1, -1}};
static pid_t session_owner;
/* the relay's counts: the bytes that moved, what the pages took (a memfd the relay maps too) */
static struct ferry_xfer_counts *session_counts;
static int session_counts_fd = -1;

/* The relay's counts: a memfd that can neither shrink nor grow, mapped here and in the relay. */
static int counts_map(struct ferry_error **err)
{
	if (session_counts)
		return 0;
	int fd = memfd_create("ferry-counts", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, sizeof(*session_counts)) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		int e = errno;
		closep(&fd);
		return ferry_error_set(err, e, "memfd");
	}
	void *m = mmap(NULL, sizeof(*session_counts), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		int e = errno;
		close(fd);
		return ferry_error_set(err, e, "mmap");
	}
	session_counts = m;
	session_counts_fd = fd;
	return 0;
}

/* A pipe holding the cluster key, for the relay's fd 3: its read end. */
static int key_pipe(struct ferry_error **err)
{
	unsigned char key[FERRY_KEY_MAX];
	size_t keylen = 0;
	int p[2];
	int r = ferry_key_load(FERRY_KEY_PATH, key, &keylen, err);
	if (r < 0)
		return r;
	if (pipe2(p, O_CLOEXEC) < 0) {
		explicit_bzero(key, sizeof(key));
		return ferry_error_set(err, errno, "pipe");
	}
	r = ferry_write_all(p[1], key, keylen);
	explicit_bzero(key, sizeof(key));
	close(p[1]);
	if (r < 0) {
		close(p[0]);
		return ferry_error_set(err, -r, "pass the cluster key to the relay");
	}
	return p[0];
}

/* Reads what the relay reported within @ms: NULL, "U" or "E message". One byte at a time: what
 * follows the line stays in the pipe for the next call (a relay that fails at once after its
 * handshake writes "U" and "E ..." together). */
static char *status_line(int fd, int ms)
{
	char buf[4096];
	size_t got = 0;
	long long deadline = ferry_now_ms() + ms;
	while (got < sizeof(buf) - 1 && !memchr(buf, '\n', got)) {
		long long left = deadline - ferry_now_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = left > 0 ? poll(&p, 1, (int)left) : 0;
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		ssize_t n = read(fd, buf + got, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got == 0)
		return NULL;
	buf[got] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return xstrdup(buf);
}

int xfer_session_start(struct starter *s, bool receiver, struct xfer_session **ret, struct ferry_error **err)
{
	struct xfer_session *x = &session;
	_cleanup_close_ int exe = helper_open_private("ferry-relay", "the cluster key", err);
	if (exe < 0 || counts_map(err) < 0)
		return -EPERM;
	_cleanup_close_ int keyfd = key_pipe(err);
	if (keyfd < 0)
		return keyfd;
	int r = 0, sp[FERRY_XFER_NCHAN][2], st[2];
	for (int i = 0; i < FERRY_XFER_NCHAN; i++)
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp[i]) < 0)
			r = -errno;
	if (r < 0 || pipe2(st, O_CLOEXEC) < 0)
		return ferry_error_set(err, r < 0 ? -r : errno, "socketpair");
	char secs[16];
	snprintf(secs, sizeof(secs), "%u", s->cfg->criu_timeout);
	x->relay = fork();
	if (x->relay == 0) {
		char *z = s->cfg->compress_pages ? "zstd" : "raw",
		     *lent =
			 s->req->page_server && startswith(s->req->page_server, "ferryd:") ? "lent" : "own";
		char *const argv[] = {"ferry-relay", receiver ? "receive" : "send", secs, z, lent, NULL};
		const int src[] = {s->xfer_fd, st[1],	 -1,	   keyfd,   session_counts_fd,
				   sp[0][1],   sp[1][1], sp[2][1], sp[3][1]};
		helper_exec(src, (int)ARRAY_SIZE(src), exe, argv, helper_become_caller, &s->privs);
	}
	int e = errno;
	close(st[1]);
	for (int i = 0; i < FERRY_XFER_NCHAN; i++) {
		close(sp[i][1]);
		x->local[i] = sp[i][0];
	}
	x->status = st[0];
	session_owner = getpid();
	if (x->relay < 0)
		return ferry_error_set(err, e, "fork");
	/* the control channel takes the connection's place (and fd number: a verdict written to
	 * it now goes through the session) */
	if (dup3(x->local[FERRY_XFER_CTL], s->xfer_fd, O_CLOEXEC) < 0)
		return ferry_error_set(err, errno, "dup3");
	close(x->local[FERRY_XFER_CTL]);
	x->local[FERRY_XFER_CTL] = s->xfer_fd;
	*ret = x;
	unsigned wait_s = receiver ? XFER_LISTEN_S : s->cfg->criu_timeout + 10;
	_cleanup_free_ char *line = status_line(x->status, (int)wait_s * 1000);
	if (line && streq(line, "U"))
		return 0;
	return ferry_error_msg(err, EPROTO, "%s",
			       line && startswith(line, "E ") ? line + 2 : "the transfer's relay failed");
}

void xfer_session_blame(struct xfer_session *x, struct ferry_error **err)
{
	/* the relay reports once its pumps have stopped, which can take a moment after a local end
	 * saw the failure first (a page server that got EOF): wait for it, briefly */
	_cleanup_free_ char *line = x && x->status >= 0 ? status_line(x->status, 5000) : NULL;
	if (!line || !startswith(line, "E "))
		return;
	ferry_error_free(*err);
	*err = NULL;
	ferry_error_msg(err, EPROTO, "the transfer failed: %s", line + 2);
}

void xfer_session_pages(uint64_t *ret_plain, uint64_t *ret_sent)
{
	*ret_plain = session_counts ? __atomic_load_n(&session_counts->pages.plain, __ATOMIC_RELAXED) : 0;
	*ret_sent = session_counts ? __atomic_load_n(&session_counts->pages.sent, __ATOMIC_RELAXED) : 0;
}

uint64_t xfer_session_moved(void)
{
	return session_counts ? __atomic_load_n(&session_counts->moved, __ATOMIC_RELAXED) : 0;
}

int xfer_session_fd(int ch)
{
	return session.local[ch];
}

void xfer_session_close(struct xfer_session *x, int ch)
{
	closep(&x->local[ch]);
	x->local[ch] = -1;
}

void xfer_session_drop(void)
{
	for (int i = 0; i < FERRY_XFER_NCHAN; i++)
		xfer_session_close(&session, i);
	closep(&session.status);
}

int xfer_session_finish(unsigned timeout_s)
{
	struct xfer_session *x = &session;
	if (x->relay <= 0 || session_owner != getpid())
		return 0;
	for (int i = 0; i < FERRY_XFER_NCHAN; i++)
		xfer_session_close(x, i);
	/* the relay ends once both sides said FIN: only then is the connection its owner's again */
	int pidfd = (int)syscall(SYS_pidfd_open, x->relay, 0);
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	while (pidfd >= 0 && poll(&p, 1, (int)timeout_s * 1000) < 0 && errno == EINTR)
		;
	closep(&pidfd);
	int st = 0;
	if (waitpid(x->relay, &st, WNOHANG) <= 0) {
		kill(x->relay, SIGKILL);
		waitpid(x->relay, &st, 0);
		st = -1;
	}
	x->relay = -1;
	return st == 0 ? 0 : -EPROTO;
}

/* Runs ferry-xfer @argv as the user without capabilities (helper_become_caller's credentials), by fd
 * like every helper, its fds 0..4 from @fds (-1: none; fd 2 takes its complaint). Not traceable by
 * the user (helper_open_private): a receiving ferry-xfer holds the images directory, whose files
 * root seals. */
static pid_t spawn_xfer(struct starter *s, char *const argv[], const int fds[5], struct ferry_error **err)
{
	_cleanup_close_ int exe = helper_open_private("ferry-xfer", "a checkpoint's files on their way", err);
	if (exe < 0)
		return exe;
	pid_t pid = fork();
	if (pid == 0)
		helper_exec(fds, 5, exe, argv, helper_become_caller, &s->privs);
	return pid < 0 ? ferry_error_set(err, errno, "fork") : pid;
}

/* Waits for ferry-xfer and reads its one-line complaint. */
static int wait_xfer(pid_t pid, int errp, const char *what, struct ferry_error **err)
{
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	_cleanup_free_ char *msg = read_report(errp);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (msg)
		return ferry_error_msg(err, EIO, "%s: %s", what, msg);
	return ferry_error_msg(err, EIO, "%s: ferry-xfer %s %d", what,
			       WIFEXITED(st) ? "exited with" : "was killed by signal",
			       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

/* Hands @name (open) to ferry-xfer send. */
static int pass(int src, int fd, const char *name, struct ferry_error **err)
{
	if (fd < 0)
		return ferry_error_set(err, errno, "open '%s' to send it", name);
	int r = ferry_xfer_pass_file(src, name, fd, err);
	close(fd);
	return r;
}

int xfer_send_files(struct starter *s, struct xfer_session *x, int imgfd, const struct ferry_manifest *m,
		    const char *text, struct ferry_error **err)
{
	int sp[2], ep[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return ferry_error_set(err, errno, "socketpair");
	if (pipe2(ep, O_CLOEXEC) < 0) {
		close(sp[0]);
		close(sp[1]);
		return ferry_error_set(err, errno, "pipe");
	}
	char *const argv[] = {"ferry-xfer", "send", NULL};
	pid_t pid =
	    spawn_xfer(s, argv, (const int[5]){-1, -1, ep[1], sp[1], x->local[FERRY_XFER_FILES]}, err);
	close(sp[1]);
	close(ep[1]);
	xfer_session_close(x, FERRY_XFER_FILES); /* ferry-xfer's now: its exit ends the channel */
	int r = pid < 0 ? pid : 0;
	/* root opens (the sealed files may be root's alone), the user's ferry-xfer only reads */
	for (size_t i = 0; r == 0 && i < m->n_files; i++)
		r = pass(sp[0], openat(imgfd, m->files[i].name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC),
			 m->files[i].name, err);
	if (r == 0) {
		int mfd = memfd_create("manifest", MFD_CLOEXEC);
		if (mfd >= 0 && ferry_write_all(mfd, text, strlen(text)) < 0) {
			close(mfd);
			mfd = -1;
		}
		r = pass(sp[0], mfd, FERRY_MANIFEST_NAME, err);
	}
	close(sp[0]);
	if (pid > 0) {
		struct ferry_error *e = NULL;
		int w = wait_xfer(pid, ep[0], "send the checkpoint's files", &e);
		if (w < 0) { /* its reason comes first */
			ferry_error_free(*err);
			*err = e;
			r = w;
		}
	}
	close(ep[0]);
	return r;
}

int xfer_receive_files(struct starter *s, struct xfer_session *x, int imgfd, char **ret_text, size_t *ret_len,
		       struct ferry_error **err)
{
	int op[2], ep[2];
	if (pipe2(op, O_CLOEXEC) < 0)
		return ferry_error_set(err, errno, "pipe");
	if (pipe2(ep, O_CLOEXEC) < 0) {
		close(op[0]);
		close(op[1]);
		return ferry_error_set(err, errno, "pipe");
	}
	char secs[16];
	snprintf(secs, sizeof(secs), "%u", s->cfg->criu_timeout);
	char *const argv[] = {"ferry-xfer", "receive", secs, NULL};
	pid_t pid =
	    spawn_xfer(s, argv, (const int[5]){-1, op[1], ep[1], imgfd, x->local[FERRY_XFER_FILES]}, err);
	close(op[1]);
	close(ep[1]);
	xfer_session_close(x, FERRY_XFER_FILES);
	int r = pid < 0 ? pid : 0;
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	struct ferry_error *e = NULL;
	if (r == 0 && ferry_read_all(op[0], FERRY_XFER_MAX_MANIFEST, &text, &len, &e) < 0)
		r = -EPROTO;
	close(op[0]);
	if (pid > 0) {
		int w = wait_xfer(pid, ep[0], "receive the checkpoint's files", err);
		if (w == 0 && r < 0)
			r = ferry_error_msg(err, EPROTO, "the sender's manifest: %s", e->message);
		else if (w < 0)
			r = w;
	}
	ferry_error_free(e);
	close(ep[0]);
	if (r < 0)
		return r;
	*ret_text = TAKE_PTR(text);
	*ret_len = len;
	return 0;
}
