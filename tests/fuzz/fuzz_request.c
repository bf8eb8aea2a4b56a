/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target for the request decoder, which runs in the setuid starter on caller bytes.
 * Property checked beyond "no crash": whatever decodes re-encodes to the very same bytes (the
 * encoding is canonical only up to record order, so compare after one normalizing round).
 *
 *   clang -std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Isrc/lib \
 *         tests/fuzz/fuzz_request.c src/lib/request.c src/lib/error.c src/lib/util.c -o fuzz_request
 *   ./fuzz_request -max_total_time=30 */
#include <stdint.h>

#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ferry_request *req = NULL;
	struct ferry_error *err = NULL;
	if (ferry_request_decode((const char *)data, size, &req, &err) < 0) {
		if (!err || !err->message || req)
			abort();
		ferry_error_free(err);
		return 0;
	}
	if (err)
		abort();
	/* the starter's root side re-checks the plan's copy with the same rules (the op table): what
	 * the decoder accepted, the re-check accepts */
	if (!ferry_op_rule(req->op) || ferry_request_check(req, NULL) < 0)
		abort();

	char *buf = NULL, *buf2 = NULL;
	size_t len = 0, len2 = 0;
	struct ferry_request *req2 = NULL;
	if (ferry_request_encode(req, &buf, &len, NULL) < 0)
		abort(); /* a decoded request is always encodable */
	if (ferry_request_decode(buf, len, &req2, NULL) < 0)
		abort();
	if (ferry_request_encode(req2, &buf2, &len2, NULL) < 0)
		abort();
	if (len != len2 || memcmp(buf, buf2, len) != 0)
		abort();

	free(buf);
	free(buf2);
	ferry_request_free(req);
	ferry_request_free(req2);
	return 0;
}
