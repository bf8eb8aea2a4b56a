/* SPDX-License-Identifier: GPL-2.0-or-later */
/* transfer.h — a --page-server transfer's session, from the starter (see transfer.c). */
#ifndef FERRY_STARTER_TRANSFER_H
#define FERRY_STARTER_TRANSFER_H

#include "starter.h"
#include "xfer.h"

struct xfer_session {
	pid_t relay; /* the process that holds the keys, as the user */
	int status; /* its reports: "U" once the handshake is done, "E message" when it fails */
	int local[FERRY_XFER_NCHAN]; /* our plaintext ends; [FERRY_XFER_CTL] is s->xfer_fd */
};

/* As root (the cluster key is read): starts the relay on s->xfer_fd (connected, or listening:
 * a receiver then accepts until a sender proves the key) and waits for its handshake. From
 * then on s->xfer_fd is the session's control channel. One session a process. */
int xfer_session_start(struct starter *s, bool receiver, struct xfer_session **ret, struct ferry_error **err);
/* After a failure: when the relay failed (authentication, the peer gone), its reason replaces
 * @err's (what else failed, failed because of it). */
void xfer_session_blame(struct xfer_session *x, struct ferry_error **err);
/* How many bytes of records the relay has moved so far, either way (it only grows): what the
 * waits on a transfer watch, so that they give up on idleness, not on a long transfer. */
uint64_t xfer_session_moved(void);
/* The bytes of the pages channel this side's relay sent, and what they took in records
 * (compressed where it paid): the report's compression. */
void xfer_session_pages(uint64_t *ret_plain, uint64_t *ret_sent);
/* This process's end of channel @ch of its session (-1: none). */
int xfer_session_fd(int ch);
/* Closes our end of channel @ch (its owner now is a child, or we are done with it). */
void xfer_session_close(struct xfer_session *x, int ch);
/* In a fork that does not own the session: closes its copies of the session's ends. */
void xfer_session_drop(void);
/* Ends this process's session, if any: closes our ends and waits (at most @timeout_s) for the
 * relay to finish, so that the connection is clean for its owner (ferryd's messages). */
int xfer_session_finish(unsigned timeout_s);
/* Sender: the sealed generation's files (@m) and manifest @text through ferry-xfer send. */
int xfer_send_files(struct starter *s, struct xfer_session *x, int imgfd, const struct ferry_manifest *m,
		    const char *text, struct ferry_error **err);
/* Receiver: ferry-xfer receive writes the files into @imgfd and hands back the sender's
 * manifest text (not verified). */
int xfer_receive_files(struct starter *s, struct xfer_session *x, int imgfd, char **ret_text, size_t *ret_len,
		       struct ferry_error **err);

#endif
