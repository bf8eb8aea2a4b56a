/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ask: what a start on another node may ask (ferryd_start_take, src/ferryd/ask.c), the check its
 * request passes in the client's reader and again on the peer, both the user for good: only an
 * 'instance start' the user could give on that node, with an instance name, none of ferryd's own
 * flags, no --page-server, or a bare 'instance list'; the request's bytes read strictly (proto.h's blob, request.h's
 * decoder). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>

#include "../../src/ferryd/ferryd.h"

/* @req encoded into a start message's "req" fields, taken: 0 or -1 with the reason in @why. */
static int take(const struct ferry_request *req, struct ferryd_ask *a, char *why, size_t n)
{
	struct ferry_error *err = NULL;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	assert_int_equal(ferry_request_encode(req, &buf, &len, &err), 0);
	struct ferry_msg m = {0};
	ferry_msg_set_blob(&m, "req", buf, len);
	memset(a, 0, sizeof(*a));
	int r = ferryd_start_take(&m, a, why, n);
	ferry_msg_clear(&m);
	if (r == 0) {
		assert_int_equal(a->req_len, len);
		assert_memory_equal(a->req, buf, len);
	}
	return r;
}

static char *const argv_true[] = {"true", NULL};

static void test_start_taken(void **state)
{
	(void)state;
	static struct ferryd_ask a;
	char why[256] = "";
	struct ferry_request req = {.op = FERRY_OP_INSTANCE_START,
				    .flags = FERRY_REQ_CRIU_LAUNCH | FERRY_REQ_NET | FERRY_REQ_WAIT_ALL |
					     FERRY_REQ_PRIVATE_TMP | FERRY_REQ_CLEANENV,
				    .image = "/img.sif",
				    .instance = "rank0",
				    .cwd = "/",
				    .checkpoint = "/home/u/.ferry/checkpoint/rank0",
				    .argv = (char **)argv_true};
	assert_int_equal(take(&req, &a, why, sizeof(why)), 0);
	assert_string_equal(a.instance, "rank0");
	/* a restart, its image and instance named */
	struct ferry_request rs = {.op = FERRY_OP_INSTANCE_START,
				   .flags = FERRY_REQ_CRIU_RESTART | FERRY_REQ_TCP_CLOSE,
				   .image = "/img.sif",
				   .instance = "rank1",
				   .cwd = "/",
				   .checkpoint = "/c"};
	assert_int_equal(take(&rs, &a, why, sizeof(why)), 0);
	/* a restart with its instance's name unsaid: the checkpoint's names it in the logs */
	struct ferry_request unsaid = {.op = FERRY_OP_INSTANCE_START,
				       .flags = FERRY_REQ_CRIU_RESTART,
				       .cwd = "/",
				       .checkpoint = "/home/u/.ferry/checkpoint/job-r1"};
	assert_int_equal(take(&unsaid, &a, why, sizeof(why)), 0);
	assert_string_equal(a.instance, "job-r1");
	/* instance list --node: the list op, bare */
	struct ferry_request list = {.op = FERRY_OP_INSTANCE_LIST, .cwd = "/"};
	assert_int_equal(take(&list, &a, why, sizeof(why)), 0);
	assert_string_equal(a.instance, "list");
}

static void test_start_refused(void **state)
{
	(void)state;
	static struct ferryd_ask a;
	char why[256];
	/* another op */
	struct ferry_request del = {.op = FERRY_OP_CHECKPOINT_DELETE, .cwd = "/", .checkpoint = "/c"};
	assert_int_equal(take(&del, &a, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "is an 'instance start'"));
	/* ferryd's own flags: a migration's restart with its commit (post-copy needs a page
	 * server: below) */
	const uint32_t own[] = {FERRY_REQ_COMMIT, FERRY_REQ_MIGRATED, FERRY_REQ_TIMINGS};
	for (size_t i = 0; i < ARRAY_SIZE(own); i++) {
		struct ferry_request r = {.op = FERRY_OP_INSTANCE_START,
					  .flags = FERRY_REQ_CRIU_RESTART | own[i],
					  .image = "/img.sif",
					  .instance = "x",
					  .cwd = "/",
					  .checkpoint = "/c"};
		assert_int_equal(take(&r, &a, why, sizeof(why)), -1);
		assert_int_equal(a.req_len, 0);
	}
	/* a list with a flag, or of one instance's: not what --node asks */
	struct ferry_request lf = {.op = FERRY_OP_INSTANCE_LIST, .flags = FERRY_REQ_TIMINGS, .cwd = "/"};
	assert_int_equal(take(&lf, &a, why, sizeof(why)), -1);
	struct ferry_request li = {.op = FERRY_OP_INSTANCE_LIST, .instance = "x", .cwd = "/"};
	assert_int_equal(take(&li, &a, why, sizeof(why)), -1);
	/* a page server (it needs a connection on fd 4) */
	struct ferry_request ps = {.op = FERRY_OP_INSTANCE_START,
				   .flags = FERRY_REQ_CRIU_RESTART,
				   .instance = "x",
				   .cwd = "/",
				   .checkpoint = "/c",
				   .page_server = "7000"};
	assert_int_equal(take(&ps, &a, why, sizeof(why)), -1);
	/* a restart without the instance's name, whose checkpoint's is no instance name */
	struct ferry_request noname = {.op = FERRY_OP_INSTANCE_START,
				       .flags = FERRY_REQ_CRIU_RESTART,
				       .cwd = "/",
				       .checkpoint = "/c/.x"};
	assert_int_equal(take(&noname, &a, why, sizeof(why)), -1);
	/* no request at all; bytes that are none */
	struct ferry_msg m = {0};
	assert_int_equal(ferryd_start_take(&m, &a, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "no instance request"));
	ferry_msg_set(&m, "req_a", "QUJD");
	assert_int_equal(ferryd_start_take(&m, &a, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "invalid request"));
	ferry_msg_clear(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_start_taken),
	    cmocka_unit_test(test_start_refused),
	};
	return cmocka_run_group_tests_name("ask", tests, NULL, NULL);
}
