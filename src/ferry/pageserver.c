/* SPDX-License-Identifier: GPL-2.0-or-later */
/* pageserver.c — the TCP connection of a --page-server transfer.
 *
 * The CLI makes the connection as the user (no privilege is needed to connect or to listen on
 * an unprivileged port) and hands the socket to the starter, which runs the authenticated,
 * encrypted transfer over it (src/lib/xfer.h) in a process that has dropped to the user. A
 * restart hands over the socket it listens on, not a connection: whoever connects first (any
 * user of the node can) must not fail the restart, and only the starter's relay can tell a
 * ferry sender (it proves the cluster key) from anyone else, so it keeps accepting until one
 * does. */
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include "ferry.h"
#include "xfer.h"

static int split(const char *spec, char **host, char **port)
{
	const char *colon = strrchr(spec, ':');
	if (!colon) {
		*host = NULL;
		*port = xstrdup(spec);
	} else {
		*host = xstrndup(spec, (size_t)(colon - spec));
		*port = xstrdup(colon + 1);
		if ((*host)[0] == '[') { /* [v6]:port */
			size_t n = strlen(*host);
			if (n < 2 || (*host)[n - 1] != ']')
				return -1;
			memmove(*host, *host + 1, n - 2);
			(*host)[n - 2] = '\0';
		}
	}
	unsigned long long p = 0;
	return parse_uint64(*port, 65535, &p) < 0 || p == 0 ? -1 : 0;
}

int page_server_connect(const char *host_port, unsigned timeout)
{
	_cleanup_free_ char *host = NULL, *port = NULL;
	if (split(host_port, &host, &port) < 0 || !host || !*host)
		return cli_fail("--page-server '%s': expected HOST:PORT", host_port), -1;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
	int r = getaddrinfo(host, port, &hints, &res);
	if (r != 0)
		return cli_fail("--page-server '%s': %s", host_port, gai_strerror(r)), -1;
	int sk = -1, e = 0;
	for (struct addrinfo *ai = res; ai && sk < 0; ai = ai->ai_next) {
		sk = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (sk < 0)
			continue;
		if (connect(sk, ai->ai_addr, ai->ai_addrlen) < 0) {
			e = errno;
			close(sk);
			sk = -1;
		}
	}
	freeaddrinfo(res);
	if (sk < 0)
		return cli_fail("connect to the page server '%s': %s (is the restart waiting there?)",
				host_port, strerror(e ? e : ECONNREFUSED)),
		       -1;
	(void)timeout;
	ferry_xfer_tune_socket(sk);
	return sk;
}

/* Returns the listening socket (the starter accepts on it, see above); @timeout is the
 * starter's to keep. */
int page_server_accept(const char *spec, unsigned timeout)
{
	_cleanup_free_ char *host = NULL, *port = NULL;
	if (split(spec, &host, &port) < 0)
		return cli_fail("--page-server '%s': expected PORT or ADDRESS:PORT", spec), -1;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE},
			*res = NULL;
	int r = getaddrinfo(host && *host ? host : NULL, port, &hints, &res);
	if (r != 0)
		return cli_fail("--page-server '%s': %s", spec, gai_strerror(r)), -1;
	int ls = -1, e = 0;
	for (struct addrinfo *ai = res; ai && ls < 0; ai = ai->ai_next) {
		ls = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (ls < 0)
			continue;
		int one = 1;
		setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		/* a queue deep enough that a stranger's burst of connections does not make the kernel
		 * drop the sender's SYN (it would come again only a second, then three, later): the
		 * receiver takes them off it far faster than they can come (ferry_xfer_accept_listen) */
		if (bind(ls, ai->ai_addr, ai->ai_addrlen) < 0 || listen(ls, 128) < 0) {
			e = errno;
			close(ls);
			ls = -1;
		}
	}
	freeaddrinfo(res);
	if (ls < 0)
		return cli_fail("listen on '%s': %s", spec, strerror(e)), -1;
	(void)timeout;
	fprintf(stderr, "ferry: waiting for the dump on '%s'\n", spec);
	return ls;
}
