/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target for the definition-file parser ('ferry build'). */
#include <stdint.h>

#include "deffile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ferry_deffile *d = NULL;
	struct ferry_error *err = NULL;
	if (ferry_deffile_parse((const char *)data, size, &d, &err) < 0) {
		if (!err || !err->message || d)
			abort();
		ferry_error_free(err);
		return 0;
	}
	if (err || !d)
		abort();
	ferry_deffile_free(d);
	return 0;
}
