/* SPDX-License-Identifier: GPL-2.0-or-later */
/* channel.h — authenticated, encrypted records over a byte stream (AES-256-GCM, libcrypto).
 *
 * One struct ferry_channel is one direction of a session: a 256-bit key and a sequence number.
 * Keys come from ferry_channel_kdf (HKDF-SHA256) over the secret both ends proved in their
 * handshake and the values that bind the session (both nonces, roles, uid): each direction has
 * its own key, so no record can be reflected back to its writer.
 *
 * A record on the wire:
 *     u32 length (little-endian, 0..FERRY_CHANNEL_MAX), u8 type, ciphertext (length bytes),
 *     16-byte GCM tag
 * The 5 header bytes are the additional authenticated data; the 96-bit nonce is the direction
 * (u32) and the record's sequence number (u64), both big-endian, and is never sent: a record
 * that is replayed, reordered, dropped or moved to the other direction fails authentication
 * like a changed byte. A length over the maximum is refused before anything is read or
 * allocated. After any failure the channel refuses every further record. Truncation (a stream
 * that ends between records) is for the protocol above to see: it ends with a record of its
 * own (see xfer.h). */
#ifndef FERRY_CHANNEL_H
#define FERRY_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define FERRY_CHANNEL_KEY 32
#define FERRY_CHANNEL_HDR 5
#define FERRY_CHANNEL_TAG 16
#define FERRY_CHANNEL_MAX ((size_t)256 * 1024)
/* room for one whole record, header and tag included */
#define FERRY_CHANNEL_BUF (FERRY_CHANNEL_HDR + FERRY_CHANNEL_MAX + FERRY_CHANNEL_TAG)

struct ferry_channel {
	void *ctx; /* EVP_CIPHER_CTX */
	unsigned char key[FERRY_CHANNEL_KEY];
	uint32_t dir;
	uint64_t seq;
	bool failed;
};

/* HKDF-SHA256 (RFC 5869): @outlen bytes from @secret, @salt and @info. */
int ferry_channel_kdf(const unsigned char *secret, size_t secretlen, const void *salt, size_t saltlen,
		      const void *info, size_t infolen, unsigned char *out, size_t outlen,
		      struct ferry_error **err);

/* One direction under @key; @dir must differ between the two directions of a session. */
int ferry_channel_init(struct ferry_channel *c, const unsigned char key[FERRY_CHANNEL_KEY], uint32_t dir,
		       struct ferry_error **err);
/* Wipes the key and frees the cipher context (accepts a zeroed channel). */
void ferry_channel_done(struct ferry_channel *c);

/* Seals in place: the plaintext is at buf + FERRY_CHANNEL_HDR (@len <= FERRY_CHANNEL_MAX), the
 * header is written before it and the tag after it. Returns the record's size. */
int ferry_channel_seal(struct ferry_channel *c, uint8_t type, unsigned char *buf, size_t len,
		       struct ferry_error **err);
/* Parses a record header: its type and the length of its body (ciphertext + tag) to read. */
int ferry_channel_header(struct ferry_channel *c, const unsigned char hdr[FERRY_CHANNEL_HDR],
			 uint8_t *ret_type, size_t *ret_body, struct ferry_error **err);
/* Opens the record of @reclen bytes at @buf in place: on success its plaintext is at
 * buf + FERRY_CHANNEL_HDR, *ret_len bytes long. */
int ferry_channel_open(struct ferry_channel *c, unsigned char *buf, size_t reclen, uint8_t *ret_type,
		       size_t *ret_len, struct ferry_error **err);

/* Seals the plaintext at buf + FERRY_CHANNEL_HDR and writes the record to @fd. */
int ferry_channel_write(struct ferry_channel *c, int fd, uint8_t type, unsigned char *buf, size_t len,
			struct ferry_error **err);
/* Copies @data into records of @type (any length; none for 0 bytes) and writes them to @fd. */
int ferry_channel_send(struct ferry_channel *c, int fd, uint8_t type, const void *data, size_t len,
		       struct ferry_error **err);
/* Reads and opens one record from @fd into @buf (FERRY_CHANNEL_BUF bytes); @timeout in seconds
 * for each read, 0 for none. The plaintext is at buf + FERRY_CHANNEL_HDR. */
int ferry_channel_read(struct ferry_channel *c, int fd, unsigned timeout, unsigned char *buf,
		       uint8_t *ret_type, size_t *ret_len, struct ferry_error **err);

#endif
