/* SPDX-License-Identifier: GPL-2.0-or-later */
/* check.c — the starter's own checks of a request, beyond the decoder's (ferry_request_check):
 * run by ferry-plan, which decodes it as the caller, and again by root on the plan it sends. */
#include "names.h"
#include "starter.h"

int check_hostname(const char *h, struct ferry_error **err)
{
	size_t n = strlen(h);
	bool ok = n > 0 && n <= 64 && h[0] != '-' && h[0] != '.';
	for (const char *p = h; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		     *p == '-' || *p == '.';
	if (!ok)
		return ferry_error_msg(
		    err, EINVAL, "invalid hostname '%s': use letters, digits, '-' and '.' (at most 64)", h);
	return 0;
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
	/* (ferryd's restarts alone await a commit: the source's, on fd 4) */
	if ((req->flags & FERRY_REQ_COMMIT) && !(req->flags & FERRY_REQ_CRIU_RESTART))
		return ferry_error_msg(err, EINVAL, "invalid request: a commit belongs to a restart");
	if (!s->cfg->allow_setuid && s->privs.uid != 0)
		return ferry_error_msg(err, EPERM,
				       "ferry is disabled for users on this node ('allow setuid = no' in %s)",
				       FERRY_CONFIG_PATH);
	if (req->flags & FERRY_REQ_CRIU_RESTART)
		return 0; /* the names are checked once the checkpoint gave the rest */
	return starter_check_names(req, err);
}
