/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target for the ferry.conf parser, then the bind policy check on what it accepted;
 * and for the decoder of what ferry-conf sends the starter (config_policy.c): the input as that
 * encoding must be refused or be exactly the encoding of what it decodes to, and what the parser
 * accepted must come back from the encoding unchanged.
 *
 *   clang -std=gnu11 -D_GNU_SOURCE -DFERRY_SYSCONFDIR='"/etc/ferry"' -g -O1 \
 *         -fsanitize=fuzzer,address,undefined -Isrc/lib \
 *         tests/fuzz/fuzz_config.c src/lib/config.c src/lib/config_policy.c src/lib/error.c src/lib/util.c -o fuzz_config
 *   ./fuzz_config -max_total_time=30 -dict=tests/fuzz/config.dict */
#include <stdint.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* @c encoded equals @data (@size bytes), when @data is given; returns the encoding's length. */
static size_t encoded_as(const struct ferry_config *c, const uint8_t *data, size_t size)
{
	char *buf = NULL;
	size_t len = 0;
	if (ferry_config_encode(c, &buf, &len) < 0)
		abort();
	if (data && (len != size || memcmp(buf, data, len) != 0))
		abort();
	free(buf);
	return len;
}

static void decode_input(const uint8_t *data, size_t size)
{
	struct ferry_config *c = NULL;
	struct ferry_error *err = NULL;
	if (ferry_config_decode(data, size, &c, &err) < 0) {
		if (!err || c)
			abort();
		ferry_error_free(err);
		return;
	}
	(void)encoded_as(c, data, size);
	ferry_config_free(c);
}

/* What the parser accepted, through the encoding and back: the same encoding again. */
static void round_trip(const struct ferry_config *c)
{
	char *buf = NULL;
	size_t len = 0;
	struct ferry_config *d = NULL;
	if (ferry_config_encode(c, &buf, &len) < 0 || ferry_config_decode(buf, len, &d, NULL) < 0)
		abort();
	(void)encoded_as(d, (const uint8_t *)buf, len);
	ferry_config_free(d);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	decode_input(data, size);
	struct ferry_config *c = NULL;
	struct ferry_error *err = NULL;
	if (ferry_config_parse((const char *)data, size, &c, &err) < 0) {
		if (!err || !err->message || c)
			abort();
		ferry_error_free(err);
		return 0;
	}
	if (err || !c || !c->allow_bind_paths || !c->criu_path || !c->mem_dir || !c->checkpoint_dir)
		abort();
	if (c->max_instances < 1 || c->max_instances > 4096 || c->criu_timeout < 1 || c->criu_timeout > 86400)
		abort();

	static const char *const probes[] = {"/",    "/data",	  "/data/x", "/data2",
					     "/tmp", "/home/u/x", "/a/../b"};
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		(void)ferry_config_bind_allowed(c, probes[i], NULL);
		(void)ferry_config_bind_allowed(c, probes[i], "/home/u");
	}
	/* Every accepted prefix allows itself and what lies below it. */
	for (char **p = c->allow_bind_paths; *p; p++) {
		if (!ferry_config_bind_allowed(c, *p, NULL))
			abort();
		if (strlen(*p) < 4000) {
			char *below = xasprintf("%s/x", strcmp(*p, "/") ? *p : "");
			if (!ferry_config_bind_allowed(c, below, NULL))
				abort();
			free(below);
		}
	}
	round_trip(c);
	ferry_config_free(c);
	return 0;
}
