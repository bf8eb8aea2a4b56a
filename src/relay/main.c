/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ferry-relay — the relay of a --page-server transfer: the handshake under the cluster key and
 * the session's sealed records (src/lib/xfer.h, docs/xfer-protocol.md), outside the setuid
 * starter.
 *
 * The starter runs it as the caller for good (no capabilities, no_new_privs), by fd, from a
 * binary the caller may execute but not read (mode 0711): the kernel makes such a process not
 * dumpable from its exec on, so that none of the caller's processes can trace it, read its
 * memory or take its fds (ptrace access is refused), while the caller still owns it. It holds
 * the cluster key only for the handshake, then the session's keys:
 *     ferry-relay send|receive SECONDS zstd|raw lent|own
 *     fd 0: the connection (connected; a receiver's may be listening: it accepts until a sender
 *           proves the key), fd 1: the status pipe ("U" once the handshake is done, "E message"
 *           when it fails), fd 3: the cluster key (read to its end), fd 4: a memfd of
 *           struct ferry_xfer_counts, mapped shared with the starter (what moved, for its idle
 *           limits; what the pages took, for the report), fds 5 to 8: the plaintext ends of the
 *           channels (xfer.h's order).
 * SECONDS bounds each step of the handshake; zstd: the pages this side sends are compressed
 * where that pays (xfer_relay.c); lent: the connection is a ferryd's, whose own records may
 * follow the session's (own: a --page-server connection, where every record is the session's).
 * Exit status 0 once both sides said FIN. */
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "dumpable.h"
#include "fs.h"
#include "manifest.h"
#include "util.h"
#include "xfer.h"

#define RELAY_CONN 0
#define RELAY_STATUS 1
#define RELAY_KEY 3
#define RELAY_COUNTS 4
#define RELAY_LOCAL 5
_Static_assert(FERRY_XFER_NCHAN == 4, "ferry-relay takes four channels, on fds 5 to 8");

static int fail(struct ferry_error *err)
{
	char line[4200];
	int n =
	    snprintf(line, sizeof(line), "E %s\n", err && err->message ? err->message : "the relay failed");
	if (n > 0)
		(void)ferry_write_all(RELAY_STATUS, line, strnlen(line, sizeof(line) - 1));
	ferry_error_free(err);
	return 1;
}

/* Not dumpable, or we refuse before the key is read: a relay the caller could trace would hand
 * them the cluster key. Root's own relay may be traced by root alone. */
static int ensure_private(struct ferry_error **err)
{
	int r = ferry_refuse_dumpable("ferry-relay", err);
	if (r < 0)
		return r;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return ferry_error_set(err, errno, "prctl");
	if (getppid() == 1)
		return ferry_error_msg(err, ESRCH, "the starter is gone");
	return 0;
}

/* The cluster key, from fd 3 (a pipe the starter filled and closed): at most FERRY_KEY_MAX
 * bytes, within the first buffer ferry_read_all takes (no copy left behind by a realloc). */
static int read_key(unsigned char key[FERRY_KEY_MAX], size_t *ret_len, struct ferry_error **err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = ferry_read_all(RELAY_KEY, FERRY_KEY_MAX, &buf, &len, err);
	close(RELAY_KEY);
	if (r == 0 && len == 0)
		r = ferry_error_msg(err, EINVAL, "no cluster key");
	if (r == 0)
		memcpy(key, buf, len);
	if (buf)
		explicit_bzero(buf, len);
	*ret_len = r == 0 ? len : 0;
	return r < 0 ? ferry_error_wrap(err, "read the cluster key") : 0;
}

/* The handshake on the connection (or the listening socket): the session's keys and the
 * connected socket. */
static int handshake(bool receiver, unsigned secs, const unsigned char *key, size_t keylen,
		     struct ferry_xfer_keys *keys, struct ferry_error **err)
{
	int listening = 0;
	socklen_t ll = sizeof(listening);
	if (getsockopt(RELAY_CONN, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) < 0)
		listening = 0;
	uid_t uid = getuid();
	if (listening && !receiver)
		return ferry_error_msg(err, EINVAL, "a dump connects to its page server: it cannot listen");
	if (!listening)
		return receiver ? ferry_xfer_accept(RELAY_CONN, key, keylen, uid, secs, keys, err)
				: ferry_xfer_connect(RELAY_CONN, key, keylen, uid, secs, keys, err);
	int c = ferry_xfer_accept_listen(RELAY_CONN, key, keylen, uid, FERRY_XFER_LISTEN_S, keys, err);
	if (c < 0)
		return c;
	if (dup3(c, RELAY_CONN, O_CLOEXEC) < 0)
		return ferry_error_set(err, errno, "dup3");
	close(c);
	return 0;
}

int main(int argc, char **argv)
{
	struct ferry_error *err = NULL;
	struct stat st;
	unsigned long long secs = 0;
	if (argc != 5 || (!streq(argv[1], "send") && !streq(argv[1], "receive")) ||
	    (!streq(argv[3], "zstd") && !streq(argv[3], "raw")) ||
	    (!streq(argv[4], "lent") && !streq(argv[4], "own")) || parse_uint64(argv[2], 86400, &secs) < 0 ||
	    fstat(RELAY_CONN, &st) < 0 || !S_ISSOCK(st.st_mode) || fstat(RELAY_STATUS, &st) < 0) {
		fprintf(stderr, "ferry-relay is run by ferry-starter, not directly\n");
		return 2;
	}
	bool receiver = streq(argv[1], "receive");
	(void)prctl(PR_SET_NAME, "ferry-relay", 0, 0, 0); /* executed by fd, it would be "N" in ps */
	if (ensure_private(&err) < 0)
		return fail(err);
	struct ferry_xfer_counts *counts =
	    mmap(NULL, sizeof(*counts), PROT_READ | PROT_WRITE, MAP_SHARED, RELAY_COUNTS, 0);
	if (counts == MAP_FAILED) {
		ferry_error_set(&err, errno, "map the counts shared with the starter");
		return fail(err);
	}
	close(RELAY_COUNTS);
	unsigned char key[FERRY_KEY_MAX];
	size_t keylen = 0;
	struct ferry_xfer_keys keys;
	int r = read_key(key, &keylen, &err);
	if (r == 0)
		r = handshake(receiver, (unsigned)secs, key, keylen, &keys, &err);
	explicit_bzero(key, sizeof(key));
	if (r == 0 && ferry_write_all(RELAY_STATUS, "U\n", 2) < 0)
		return 1;
	const int local[FERRY_XFER_NCHAN] = {RELAY_LOCAL, RELAY_LOCAL + 1, RELAY_LOCAL + 2, RELAY_LOCAL + 3};
	const struct ferry_xfer_relay_opts o = {.moved = &counts->moved,
						.compress = streq(argv[3], "zstd"),
						.zstats = &counts->pages,
						.daemon_lent = streq(argv[4], "lent")};
	if (r == 0)
		r = ferry_xfer_relay(RELAY_CONN, receiver, &keys, local, &o, &err);
	explicit_bzero(&keys, sizeof(keys));
	return r < 0 ? fail(err) : 0;
}
