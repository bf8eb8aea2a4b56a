/* SPDX-License-Identifier: GPL-2.0-or-later */
/* xfer_peer.c — who is at the other end of a connection to a listening receiver, for counting
 * "hosts" in its handshake slots (ferry_xfer_victim). A peer on another node is its address
 * (ferry_xfer_peer_host). A peer on this node is a socket of this node's: the kernel knows its
 * owner, as identd knew it from /proc/net/tcp, and every local user is then a host of their
 * own, so that another user's flood from 127.0.0.1 pushes out its own connections, never the
 * one of a sender on 127.0.0.1 acting for the receiver's user.
 *
 * The owner comes from the kernel's sock_diag (NETLINK_SOCK_DIAG, inet_diag), one exact lookup
 * of the socket whose own address and port are our peer's and whose peer is us: no table to
 * read, a bounded answer, and no privilege needed. It runs in the network namespace of the
 * caller (ferry-relay's, where the listening socket was made). Anything but a live socket that
 * matches exactly (none: a remote peer, or one already gone; a listening or TIME_WAIT socket;
 * an error) leaves the peer its address. */
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include "xfer.h"

/* The id of the socket at the other end of @sk: its own address and port are our peer's, its
 * peer is us. Returns its family (AF_INET for an IPv4-mapped IPv6 connection), or -1. */
static int peer_sockid(int sk, struct inet_diag_sockid *ret)
{
	struct sockaddr_storage me, peer;
	socklen_t ml = sizeof(me), pl = sizeof(peer);
	memset(ret, 0, sizeof(*ret));
	ret->idiag_cookie[0] = ret->idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (getsockname(sk, (struct sockaddr *)&me, &ml) < 0 ||
	    getpeername(sk, (struct sockaddr *)&peer, &pl) < 0 || me.ss_family != peer.ss_family)
		return -1;
	if (me.ss_family == AF_INET) {
		const struct sockaddr_in *m = (const struct sockaddr_in *)&me,
					 *p = (const struct sockaddr_in *)&peer;
		ret->idiag_sport = p->sin_port;
		ret->idiag_dport = m->sin_port;
		ret->idiag_src[0] = p->sin_addr.s_addr;
		ret->idiag_dst[0] = m->sin_addr.s_addr;
		return AF_INET;
	}
	if (me.ss_family != AF_INET6)
		return -1;
	const struct sockaddr_in6 *m = (const struct sockaddr_in6 *)&me,
				  *p = (const struct sockaddr_in6 *)&peer;
	ret->idiag_sport = p->sin6_port;
	ret->idiag_dport = m->sin6_port;
	if (IN6_IS_ADDR_V4MAPPED(&p->sin6_addr) && IN6_IS_ADDR_V4MAPPED(&m->sin6_addr)) {
		memcpy(ret->idiag_src, p->sin6_addr.s6_addr + 12, 4);
		memcpy(ret->idiag_dst, m->sin6_addr.s6_addr + 12, 4);
		return AF_INET;
	}
	memcpy(ret->idiag_src, p->sin6_addr.s6_addr, 16);
	memcpy(ret->idiag_dst, m->sin6_addr.s6_addr, 16);
	return AF_INET6;
}

/* @a of @family as 16 bytes, an IPv4 address mapped */
static void addr16(int family, const __be32 a[4], unsigned char out[16])
{
	if (family == AF_INET6) {
		memcpy(out, a, 16);
		return;
	}
	memset(out, 0, 10);
	out[10] = out[11] = 0xff;
	memcpy(out + 12, a, 4);
}

/* Whether @got (a socket of @got_family, an IPv6 one with IPv4-mapped addresses for an IPv4
 * lookup) is the socket @want of @want_family asked for. */
static bool same_sockid(int got_family, const struct inet_diag_sockid *got, int want_family,
			const struct inet_diag_sockid *want)
{
	unsigned char a[16], b[16];
	if (got->idiag_sport != want->idiag_sport || got->idiag_dport != want->idiag_dport)
		return false;
	addr16(got_family, got->idiag_src, a);
	addr16(want_family, want->idiag_src, b);
	if (memcmp(a, b, 16) != 0)
		return false;
	addr16(got_family, got->idiag_dst, a);
	addr16(want_family, want->idiag_dst, b);
	return memcmp(a, b, 16) == 0;
}

/* A socket that is, or was until a moment ago, connected: not a listening one (the kernel's
 * lookup falls back to one when no connection matches), not a TIME_WAIT or request socket
 * (they report uid 0). */
static bool connected_state(uint8_t st)
{
	return st == TCP_ESTABLISHED || st == TCP_FIN_WAIT1 || st == TCP_FIN_WAIT2 || st == TCP_CLOSE_WAIT ||
	       st == TCP_LAST_ACK || st == TCP_CLOSING;
}

int ferry_xfer_diag_uid(const void *buf, size_t len, uint32_t seq, int family,
			const struct inet_diag_sockid *want, uid_t *ret_uid)
{
	const struct nlmsghdr *h = buf;
	if (len < sizeof(*h) || h->nlmsg_len < sizeof(*h) || h->nlmsg_len > len || h->nlmsg_seq != seq)
		return -EBADMSG;
	if (h->nlmsg_type == NLMSG_ERROR) {
		if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
			return -EBADMSG;
		int e = ((const struct nlmsgerr *)NLMSG_DATA(h))->error;
		return e < 0 && e > -4096 ? e : -EBADMSG;
	}
	if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
		return -EBADMSG;
	const struct inet_diag_msg *m = NLMSG_DATA(h);
	if ((m->idiag_family != AF_INET && m->idiag_family != AF_INET6) ||
	    !same_sockid(m->idiag_family, &m->id, family, want))
		return -ESRCH;
	if (!connected_state(m->idiag_state))
		return -ENOENT;
	*ret_uid = m->idiag_uid;
	return 0;
}

#define DIAG_SEQ 0x66727279u /* "frry" */
#define DIAG_WAIT_MS 100 /* the kernel answers within the request: a bound, not a wait */

int ferry_xfer_peer_uid(int sk, uid_t *ret_uid)
{
	struct {
		struct nlmsghdr h;
		struct inet_diag_req_v2 r;
	} req = {
	    .h = {.nlmsg_len = sizeof(req),
		  .nlmsg_type = SOCK_DIAG_BY_FAMILY,
		  .nlmsg_flags = NLM_F_REQUEST,
		  .nlmsg_seq = DIAG_SEQ},
	    .r = {.sdiag_protocol = IPPROTO_TCP, .idiag_states = ~0u},
	};
	int family = peer_sockid(sk, &req.r.id);
	if (family < 0)
		return -EAFNOSUPPORT;
	req.r.sdiag_family = (uint8_t)family;
	_cleanup_close_ int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return -errno;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	if (sendto(nl, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) !=
	    (ssize_t)sizeof(req))
		return -EIO;
	struct pollfd p = {.fd = nl, .events = POLLIN};
	if (poll(&p, 1, DIAG_WAIT_MS) <= 0)
		return -ETIMEDOUT;
	union {
		struct nlmsghdr h;
		char b[8192];
	} buf;
	struct sockaddr_nl from = {0};
	socklen_t fl = sizeof(from);
	ssize_t n =
	    recvfrom(nl, buf.b, sizeof(buf.b), MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from, &fl);
	if (n < 0)
		return -errno;
	if (from.nl_pid != 0 || (size_t)n > sizeof(buf.b)) /* not the kernel's, or cut */
		return -EBADMSG;
	return ferry_xfer_diag_uid(buf.b, (size_t)n, DIAG_SEQ, family, &req.r.id, ret_uid);
}

void ferry_xfer_peer_host_local(int sk, unsigned char ret[FERRY_XFER_HOST_LEN])
{
	uid_t uid = 0;
	if (ferry_xfer_peer_uid(sk, &uid) < 0) {
		ferry_xfer_peer_host(sk, ret);
		return;
	}
	memset(ret, 0, FERRY_XFER_HOST_LEN);
	ret[0] = FERRY_XFER_HOST_UID;
	ferry_put_le32(ret + 1, (uint32_t)uid);
}
