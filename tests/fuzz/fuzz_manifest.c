/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target for the checkpoint manifest: the strict parser 'checkpoint list' runs on any
 * text, and the signed path the starter runs (verify before parse). Whatever parses must sign,
 * verify and sign again to the same bytes: the signed form is canonical. */
#include <stdint.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char key[FERRY_KEY_MIN] = "fuzz-key-fuzz-key-fuzz-key-fuzz";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ferry_manifest *m = NULL, *v = NULL;
	struct ferry_error *err = NULL;
	/* the signed path on raw input: an HMAC that does not match is refused before parsing */
	if (ferry_manifest_verify((const char *)data, size, key, sizeof(key), &v, &err) == 0)
		ferry_manifest_free(v);
	else if (!err || !err->message)
		abort();
	ferry_error_free(err);
	err = NULL;
	v = NULL;

	if (ferry_manifest_parse_unverified((const char *)data, size, &m, &err) < 0) {
		if (!err || !err->message || m)
			abort();
		ferry_error_free(err);
		return 0;
	}
	for (size_t i = 0; i < m->n_files; i++)
		if (!ferry_manifest_name_ok(m->files[i].name))
			abort();
	char *a = NULL, *b = NULL;
	if (ferry_manifest_sign(m, key, sizeof(key), &a, &err) < 0)
		abort();
	if (ferry_manifest_verify(a, strlen(a), key, sizeof(key), &v, &err) < 0)
		abort(); /* what we signed must verify */
	if (ferry_manifest_sign(v, key, sizeof(key), &b, &err) < 0 || strcmp(a, b) != 0)
		abort();
	free(a);
	free(b);
	ferry_manifest_free(v);
	ferry_manifest_free(m);
	return 0;
}
