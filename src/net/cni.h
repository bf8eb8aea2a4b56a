/* SPDX-License-Identifier: GPL-2.0-or-later */
/* cni.h — ferry-net's CNI calls (src/net/cni.c). */
#ifndef FERRY_NET_CNI_H
#define FERRY_NET_CNI_H

#include "config.h"
#include "error.h"
#include "net.h"

/* One attachment's call: what the plugins get in their environment. */
struct cni_call {
	const char *network; /* a validated name: its conflist is network_dir/NAME.conflist */
	const char *container_id;
	const char *netns; /* "/proc/PID/fd/N", or NULL when the namespace is gone */
	const char *ifname;
	const struct ferry_net_args *args; /* CNI_ARGS IP, MAC, GATEWAY; NULL: none */
};

/* ADD: loopback up, then every plugin of the network; the result goes into @result_fd, the
 * network's subnets, address and MAC into @ret. */
int cni_add(const struct ferry_config *c, const struct cni_call *k, int result_fd,
	    struct ferry_net_reply *ret, struct ferry_error **err);
/* "CHECK" (CNI >= 0.4.0: the plugins confirm the attachment is as ADD left it) or "DEL" (in
 * reverse plugin order), with @result_fd's ADD result as prevResult. */
int cni_check_del(const struct ferry_config *c, const char *command, const struct cni_call *k, int result_fd,
		  struct ferry_error **err);

#endif
