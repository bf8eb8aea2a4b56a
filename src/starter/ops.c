/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ops.c — the starter's side of the one table of operations (FERRY_OP_TABLE in request.h): the
 * handler each op is dispatched to and whether the plan child prepares an image for it. The
 * request check reads the same table (ferry_request_check), in ferry-plan and again as root. */
#include "starter.h"

#define OP_ROW(op, what, flags, image_, instance, argv, checkpoint, handler_)                                \
	[op] = {.handler = handler_, .image = (image_) != FERRY_FIELD_NO},
static const struct starter_op ops[FERRY_OP_MAX_] = {FERRY_OP_TABLE(OP_ROW)};

const struct starter_op *starter_op(uint32_t op)
{
	if (op >= FERRY_OP_MAX_ || !ops[op].handler || !ferry_op_rule(op))
		die("invalid request: unknown operation %u", op);
	return &ops[op];
}
