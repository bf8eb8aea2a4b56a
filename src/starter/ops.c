/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ops.c — the starter's side of the one table of operations (FERRY_OP_TABLE in request.h): the
 * handler each op is dispatched to and whether the plan child prepares an image for it. The
 * request check reads the same table (ferry_request_check), in the plan child and again as root. */
#include "names.h"
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

int starter_check_names(const struct ferry_request *req, struct ferry_error **err)
{
	int r;
	if (req->instance && (r = ferry_name_check(req->instance, "instance", err)) < 0)
		return r;
	if (req->hostname && (r = check_hostname(req->hostname, err)) < 0)
		return r;
	return 0;
}

int starter_check_request(struct starter *s, struct ferry_error **err)
{
	const struct ferry_request *req = s->req;
	if ((req->page_server || (req->flags & FERRY_REQ_COMMIT)) && s->xfer_fd < 0)
		return ferry_error_msg(
		    err, EINVAL,
		    "--page-server needs the connection the 'ferry' command makes: run ferry, not ferry-starter");
	if (!s->cfg->allow_setuid && s->privs.uid != 0)
		return ferry_error_msg(err, EPERM,
				       "ferry is disabled for users on this node ('allow setuid = no' in %s)",
				       FERRY_CONFIG_PATH);
	if (req->flags & FERRY_REQ_CRIU_RESTART)
		return 0; /* the names are checked once the checkpoint gave the rest */
	return starter_check_names(req, err);
}
