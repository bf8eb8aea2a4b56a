/* SPDX-License-Identifier: GPL-2.0-or-later */
/* xfer_ctl.c — a transfer's control channel (the verdict and the commit) and the hand-over of
 * files to ferry-xfer send (see xfer.h): what the setuid starter needs of a transfer. The
 * handshake, the records and the relay are ferry-relay's (src/relay/), the archive ferry-xfer's. */
#include <sys/socket.h>

#include "fs.h"
#include "xfer.h"

int ferry_xfer_read_refusal(int sk, unsigned timeout, struct ferry_error **err)
{
	int r;
	unsigned char l[2];
	if ((r = ferry_read_timeout(sk, l, 2, timeout, err)) < 0)

		return r;
	uint16_t n = ferry_get_le16(l);
	if (n > 4096)
		return ferry_error_msg(err, EPROTO, "bad verdict from the receiver");
	char msg[4097];
	if ((r = ferry_read_timeout(sk, msg, n, timeout, err)) < 0)
		return r;
	msg[n] = '\0';
	for (char *p = msg; *p; p++) /* a stranger's text, for a terminal: printable ASCII only */
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = ' ';
	return ferry_error_msg(err, EREMOTEIO, "the receiver failed: %s", msg);
}

int ferry_xfer_send_verdict(int sk, const char *error_or_null)
{
	if (!error_or_null)
		return ferry_write_all(sk, "A", 1);
	size_t n = strlen(error_or_null);
	if (n > 4096)
		n = 4096;
	unsigned char hdr[3];
	hdr[0] = 'N';
	ferry_put_le16(hdr + 1, (uint16_t)n);
	int r = ferry_write_all(sk, hdr, 3);
	return r < 0 ? r : ferry_write_all(sk, error_or_null, n);
}

int ferry_xfer_read_verdict(int sk, unsigned timeout, struct ferry_error **err)
{
	unsigned char type;
	int r = ferry_read_timeout(sk, &type, 1, timeout, err);
	if (r < 0)
		return r;
	if (type == 'A')
		return 0;
	if (type != 'N')
		return ferry_error_msg(err, EPROTO, "bad verdict from the receiver");
	return ferry_xfer_read_refusal(sk, timeout, err);
}

/* After an 'A' verdict the sender answers one byte 'C' (commit): the move is agreed. */
int ferry_xfer_send_commit(int sk)
{
	return ferry_write_all(sk, "C", 1);
}

int ferry_xfer_await_commit(int sk, unsigned timeout)
{
	unsigned char c = 0;
	struct ferry_error *err = NULL;
	int r = ferry_read_timeout(sk, &c, 1, timeout, &err);
	ferry_error_free(err);
	return r < 0 || c != 'C' ? -EPROTO : 0;
}

/* One file for ferry_xfer_send_passed (xfer_tar.c): here, so that the starter needs no libarchive. */
int ferry_xfer_pass_file(int src, const char *name, int fd, struct ferry_error **err)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} c;
	memset(&c, 0, sizeof(c));
	struct iovec iov = {.iov_base = (void *)name, .iov_len = strlen(name)};
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf)};
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(int));
	ssize_t n;
	while ((n = sendmsg(src, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)iov.iov_len)
		return ferry_error_set(err, n < 0 ? errno : EIO, "hand '%s' over to be sent", name);
	return 0;
}
