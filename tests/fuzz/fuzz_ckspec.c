/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target for '--ferry-checkpoint=SPEC' (src/lib/ckspec.c), the parser the SPANK plugin
 * runs in sbatch/srun and ferry runs in the job: what it accepts stays within its bounds, and
 * what it refuses comes with a one-line message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char spec[FERRY_CKSPEC_MAX + 64];
	if (size >= sizeof(spec))
		size = sizeof(spec) - 1;
	memcpy(spec, data, size);
	spec[size] = '\0';
	struct ferry_ckspec c;
	char msg[512];
	if (ferry_ckspec_parse(spec, &c, msg, sizeof(msg)) < 0) {
		if (!msg[0] || strchr(msg, '\n'))
			abort();
		return 0;
	}
	if (c.keep > FERRY_CKSPEC_KEEP_MAX || c.grace > FERRY_CKSPEC_GRACE_MAX ||
	    c.every > FERRY_DURATION_MAX || (!c.every_set && c.every) ||
	    strlen(c.name) > FERRY_CKSPEC_NAME_MAX || c.name[0] == '.' || c.name[0] == '-' ||
	    strchr(c.name, '/'))
		abort();
	return 0;
}
