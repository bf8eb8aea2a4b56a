/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target for the ferry.conf parser, then the bind policy check on what it accepted.
 *
 *   clang -std=gnu11 -D_GNU_SOURCE -DFERRY_SYSCONFDIR='"/etc/ferry"' -g -O1 \
 *         -fsanitize=fuzzer,address,undefined -Isrc/lib \
 *         tests/fuzz/fuzz_config.c src/lib/config.c src/lib/error.c src/lib/util.c -o fuzz_config
 *   ./fuzz_config -max_total_time=30 -dict=tests/fuzz/config.dict */
#include <stdint.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
	ferry_config_free(c);
	return 0;
}
