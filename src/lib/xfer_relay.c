/* SPDX-License-Identifier: GPL-2.0-or-later */
/* xfer_relay.c — a transfer session's records between the peer and local plaintext sockets
 * (see xfer.h). Two threads, one a direction, so that neither waits for the other: the calling
 * thread seals what local ends write, the other opens what the peer sends.
 *
 * The pages channels (the dump's and post-copy's) are compressed where it pays (zstd, one frame
 * a record, FERRY_XFER_ZDATA): a block goes compressed only when that makes it at least an
 * eighth smaller, and after a block that did not shrink the next tries are spaced out (1, 2, 4
 * ... up to XFER_Z_BACKOFF_MAX blocks; one that shrinks starts over), so that incompressible
 * memory costs one try in 64 blocks. A compressed record is opened (authenticated) before zstd
 * sees a byte of it, and it must say its size, at most a record's, which is all it may
 * decompress to. */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <zstd.h>

#include "fs.h"
#include "xfer.h"

#define XFER_Z_LEVEL 1
#define XFER_Z_MIN 4096 /* smaller blocks (CRIU's headers, answers) go raw */
#define XFER_Z_BACKOFF_MAX 64
#define XFER_Z_WINDOW_LOG 18 /* a frame of at most FERRY_CHANNEL_MAX bytes needs no more */
_Static_assert(FERRY_CHANNEL_MAX <= (1u << XFER_Z_WINDOW_LOG), "a record fits zstd's window");

/* The sealing side's compression of the pages channel (NULL: none). */
struct zout {
	ZSTD_CCtx *cctx;
	unsigned char *buf; /* FERRY_CHANNEL_BUF: the compressed record */
	unsigned skip[FERRY_XFER_NCHAN], backoff[FERRY_XFER_NCHAN]; /* each channel its own stream */
};

struct relay {
	int sk;
	const int *local;
	struct ferry_channel in, out;
	int wake[2]; /* the opening thread failed: the sealing one stops */
	int in_result;
	struct ferry_error *in_err;
	uint64_t *moved; /* bytes of records that went either way (NULL: not counted) */
	struct zout *z;
	ZSTD_DCtx *dctx; /* the opening side's, made at the first compressed record */
	unsigned char *zin; /* FERRY_CHANNEL_MAX: what it decompressed */
	struct ferry_xfer_zstats *zstats; /* (may be NULL) */
	bool daemon_lent; /* see ferry_xfer_relay_opts */
};

/* Counts @n bytes that moved: the starter reads the count to tell a slow transfer from a dead
 * one (its limits are on idleness, not on the whole transfer's time). */
static void count(struct relay *x, size_t n)
{
	if (x->moved)
		__atomic_fetch_add(x->moved, (uint64_t)n, __ATOMIC_RELAXED);
}

/* One record from the peer: data for a local end, the end of a channel, or the session's. */
/* The channels whose data may go compressed: the pages, and post-copy's (pages asked for and
 * pushed). The files are a zstd tar already; the control channel is a few bytes. */
static bool compressible_channel(unsigned ch)
{
	return ch == FERRY_XFER_PAGES || ch == FERRY_XFER_LAZY;
}

/* A compressed record of channel @ch: its bytes, at most FERRY_CHANNEL_MAX, into x->zin. */
static int decompress(struct relay *x, unsigned ch, const unsigned char *data, size_t len, size_t *ret_len,
		      struct ferry_error **err)
{
	if (!compressible_channel(ch))
		return ferry_error_msg(err, EPROTO, "a compressed record on channel %u", ch);
	unsigned long long want = ZSTD_getFrameContentSize(data, len);
	if (want == ZSTD_CONTENTSIZE_ERROR || want == ZSTD_CONTENTSIZE_UNKNOWN || want == 0 ||
	    want > FERRY_CHANNEL_MAX)
		return ferry_error_msg(err, EPROTO, "a compressed record that does not say a size up to %zu",
				       FERRY_CHANNEL_MAX);
	if (!x->dctx) {
		x->dctx = ZSTD_createDCtx();
		x->zin = xmalloc(FERRY_CHANNEL_MAX);
		if (!x->dctx ||
		    ZSTD_isError(ZSTD_DCtx_setParameter(x->dctx, ZSTD_d_windowLogMax, XFER_Z_WINDOW_LOG)))
			return ferry_error_msg(err, ENOMEM, "zstd's decompression context");
	}
	size_t got = ZSTD_decompressDCtx(x->dctx, x->zin, FERRY_CHANNEL_MAX, data, len);
	if (ZSTD_isError(got) || got != want)
		return ferry_error_msg(err, EPROTO,
				       "a compressed record that does not decompress to its size: %s",
				       ZSTD_isError(got) ? ZSTD_getErrorName(got) : "another size");
	*ret_len = got;
	return 0;
}

static int dispatch(struct relay *x, uint8_t type, const unsigned char *data, size_t len, bool ended[],
		    bool discard[], struct ferry_error **err)
{
	if (type >= FERRY_XFER_ZDATA && type < FERRY_XFER_ZDATA + FERRY_XFER_NCHAN) {
		type -= FERRY_XFER_ZDATA;
		if (!ended[type] && decompress(x, type, data, len, &len, err) < 0)
			return -EPROTO;
		data = x->zin;
	}
	if (type < FERRY_XFER_NCHAN) {
		if (ended[type])
			return ferry_error_msg(err, EPROTO, "data after the end of channel %u", type);
		/* a local end that stopped reading (its process ended) has the rest dropped: the
		 * session goes on, for the verdict */
		if (!discard[type] && (x->local[type] < 0 || ferry_write_all(x->local[type], data, len) < 0))
			discard[type] = true;
		return 0;
	}
	unsigned ch = (unsigned)type - FERRY_XFER_END;
	if (type >= FERRY_XFER_END && ch < FERRY_XFER_NCHAN && !ended[ch]) {
		ended[ch] = true;
		if (x->local[ch] >= 0)
			(void)shutdown(x->local[ch], SHUT_WR);
		return 0;
	}
	if (type == FERRY_XFER_FIN) {
		for (unsigned i = 0; i < FERRY_XFER_NCHAN; i++)
			if (!ended[i])
				return ferry_error_msg(err, EPROTO, "the session ended before channel %u", i);
		return 1;
	}
	return ferry_error_msg(err, EPROTO, "unexpected record of type %u in the transfer", type);
}

/* Whether the next record is the peer daemon's own (FERRY_XFER_DAEMON_MIN..MAX), looked at without
 * taking it: its session was cut there, and the daemon that lent it the connection tells ours
 * why in that record, which must stay whole for it. (Anything else, or a socket that cannot be
 * looked at, is read as the session's.) Looked at only on a connection a daemon lent
 * (daemon_lent): the header is not authenticated yet, and on a --page-server connection, where
 * no daemon speaks, one in sixteen headers of a stranger's bytes would pass for a daemon's cut
 * instead of failing authentication. */
static bool daemon_record_next(int sk)
{
	unsigned char hdr[FERRY_CHANNEL_HDR];
	ssize_t n;
	while ((n = recv(sk, hdr, sizeof(hdr), MSG_PEEK | MSG_WAITALL)) < 0 && errno == EINTR)
		;
	return n == (ssize_t)sizeof(hdr) && hdr[4] >= FERRY_XFER_DAEMON_MIN &&
	       hdr[4] <= FERRY_XFER_DAEMON_MAX;
}

static void *pump_in(void *arg)
{
	struct relay *x = arg;
	_cleanup_free_ unsigned char *buf = xmalloc(FERRY_CHANNEL_BUF);
	bool ended[FERRY_XFER_NCHAN] = {false}, discard[FERRY_XFER_NCHAN] = {false};
	int r;
	do {
		uint8_t type = 0;
		size_t len = 0;
		if (x->daemon_lent && daemon_record_next(x->sk)) {
			r = ferry_error_msg(
			    &x->in_err, ECONNRESET,
			    "the peer's side of the transfer ended before its end (its daemon says why)");
			break;
		}
		r = ferry_channel_read(&x->in, x->sk, 0, buf, &type, &len, &x->in_err);
		if (r == -ECONNRESET) {
			ferry_error_free(x->in_err);
			x->in_err = NULL;
			r = ferry_error_msg(&x->in_err, ECONNRESET,
					    "the transfer was cut off before its end (the peer went away)");
		}
		if (r == 0) {
			count(x, FERRY_CHANNEL_HDR + len + FERRY_CHANNEL_TAG);
			r = dispatch(x, type, buf + FERRY_CHANNEL_HDR, len, ended, discard, &x->in_err);
		}
	} while (r == 0);
	x->in_result = r < 0 ? r : 0;
	if (r < 0)
		(void)ferry_write_all(x->wake[1], "x", 1);
	return NULL;
}

/* After a try on channel @ch: one that paid starts over, one that did not waits twice as many
 * blocks as the last (1 first, at most XFER_Z_BACKOFF_MAX) before the next. */
static void z_backoff(struct zout *z, unsigned ch, bool pays)
{
	unsigned *b = &z->backoff[ch];
	if (pays)
		*b = 0;
	else if (*b == 0)
		*b = 1;
	else if (*b < XFER_Z_BACKOFF_MAX)
		*b *= 2;
	z->skip[ch] = *b;
}

/* Seals @n bytes of channel @ch at @buf + FERRY_CHANNEL_HDR as a record, compressed when
 * that pays (see the top); returns the record's size on the wire. */
static ssize_t seal_data(struct relay *x, unsigned ch, unsigned char *buf, size_t n, struct ferry_error **err)
{
	struct zout *z = compressible_channel(ch) && n >= XFER_Z_MIN ? x->z : NULL;
	if (z && z->skip[ch] > 0) {
		z->skip[ch]--;
		z = NULL;
	}
	size_t c = z ? ZSTD_compressCCtx(z->cctx, z->buf + FERRY_CHANNEL_HDR, FERRY_CHANNEL_MAX,
					 buf + FERRY_CHANNEL_HDR, n, XFER_Z_LEVEL)
		     : 0;
	bool pays = z && !ZSTD_isError(c) && c <= n - n / 8;
	if (z)
		z_backoff(z, ch, pays);
	if (x->zstats && compressible_channel(ch)) {
		__atomic_fetch_add(&x->zstats->plain, (uint64_t)n, __ATOMIC_RELAXED);
		__atomic_fetch_add(&x->zstats->sent, (uint64_t)(pays ? c : n), __ATOMIC_RELAXED);
	}
	int r = pays ? ferry_channel_write(&x->out, x->sk, (uint8_t)(FERRY_XFER_ZDATA + ch), z->buf, c, err)
		     : ferry_channel_write(&x->out, x->sk, (uint8_t)ch, buf, n, err);
	return r < 0 ? r : (ssize_t)(FERRY_CHANNEL_HDR + (pays ? c : n) + FERRY_CHANNEL_TAG);
}

/* Seals what the local ends write until all have ended, then FIN. */
static int pump_out(struct relay *x, struct ferry_error **err)
{
	_cleanup_free_ unsigned char *buf = xmalloc(FERRY_CHANNEL_BUF);
	bool open[FERRY_XFER_NCHAN];
	int n_open = 0;
	for (unsigned i = 0; i < FERRY_XFER_NCHAN; i++) {
		open[i] = x->local[i] >= 0;
		n_open += open[i];
		if (!open[i] && ferry_channel_write(&x->out, x->sk, FERRY_XFER_END + i, buf, 0, err) < 0)
			return -EPIPE;
	}
	while (n_open > 0) {
		struct pollfd p[FERRY_XFER_NCHAN + 1];
		for (unsigned i = 0; i < FERRY_XFER_NCHAN; i++)
			p[i] = (struct pollfd){.fd = open[i] ? x->local[i] : -1, .events = POLLIN};
		p[FERRY_XFER_NCHAN] = (struct pollfd){.fd = x->wake[0], .events = POLLIN};
		if (poll(p, FERRY_XFER_NCHAN + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return ferry_error_set(err, errno, "poll");
		}
		if (p[FERRY_XFER_NCHAN].revents)
			return -ECANCELED;
		for (unsigned i = 0; i < FERRY_XFER_NCHAN; i++) {
			if (!open[i] || !p[i].revents)
				continue;
			ssize_t n = read(x->local[i], buf + FERRY_CHANNEL_HDR, FERRY_CHANNEL_MAX);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			ssize_t w =
			    n > 0 ? seal_data(x, i, buf, (size_t)n, err)
				  : ferry_channel_write(&x->out, x->sk, FERRY_XFER_END + i, buf, 0, err);
			if (w < 0)
				return (int)w;
			count(x, n > 0 ? (size_t)w : FERRY_CHANNEL_HDR + FERRY_CHANNEL_TAG);
			if (n <= 0) {
				open[i] = false;
				n_open--;
			}
		}
	}
	return ferry_channel_write(&x->out, x->sk, FERRY_XFER_FIN, buf, 0, err);
}

int ferry_xfer_relay(int sk, bool receiver, const struct ferry_xfer_keys *keys,
		     const int local[FERRY_XFER_NCHAN], const struct ferry_xfer_relay_opts *o,
		     struct ferry_error **err)
{
	signal(SIGPIPE, SIG_IGN); /* a local end that went away is seen by write() */
	struct relay x = {.sk = sk,
			  .local = local,
			  .wake = {-1, -1},
			  .moved = o ? o->moved : NULL,
			  .zstats = o ? o->zstats : NULL,
			  .daemon_lent = o && o->daemon_lent};
	struct zout z = {0};
	if (o && o->compress) {
		z.cctx = ZSTD_createCCtx();
		z.buf = xmalloc(FERRY_CHANNEL_BUF);
		if (!z.cctx) {
			free(z.buf);
			return ferry_error_msg(err, ENOMEM, "zstd's compression context");
		}
		x.z = &z;
	}
	int r = ferry_channel_init(&x.in, receiver ? keys->s2r : keys->r2s, receiver ? 1 : 2, err);
	if (r == 0)
		r = ferry_channel_init(&x.out, receiver ? keys->r2s : keys->s2r, receiver ? 2 : 1, err);
	if (r == 0 && pipe2(x.wake, O_CLOEXEC) < 0)
		r = ferry_error_set(err, errno, "pipe");
	pthread_t t;
	if (r == 0 && (r = -pthread_create(&t, NULL, pump_in, &x)) < 0)
		ferry_error_set(err, -r, "start a thread");
	if (r < 0) {
		ferry_channel_done(&x.in);
		ferry_channel_done(&x.out);
		return r;
	}
	r = pump_out(&x, err);
	if (r < 0 && r != -ECANCELED) {
		/* the session is lost: the other thread, which may still wait for the peer or on a
		 * local end, is woken by shutting them down, and joined (it uses @x, on our stack) */
		(void)shutdown(sk, SHUT_RDWR);
		for (unsigned i = 0; i < FERRY_XFER_NCHAN; i++)
			if (local[i] >= 0)
				(void)shutdown(local[i], SHUT_RDWR);
	}
	pthread_join(t, NULL); /* it ended (ECANCELED: it woke us), ends with the peer's FIN, or
				* with the shutdown above */
	if (x.in_result < 0 && (r >= 0 || r == -ECANCELED)) {
		/* the peer's side failed: that is the reason to report */
		if (err && !*err)
			*err = TAKE_PTR(x.in_err);
		r = x.in_result;
	}
	ferry_error_free(x.in_err);
	ZSTD_freeCCtx(z.cctx);
	free(z.buf);
	ZSTD_freeDCtx(x.dctx);
	free(x.zin);
	ferry_channel_done(&x.in);
	ferry_channel_done(&x.out);
	close(x.wake[0]);
	close(x.wake[1]);
	return r;
}
