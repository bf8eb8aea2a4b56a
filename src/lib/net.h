/* SPDX-License-Identifier: GPL-2.0-or-later */
/* net.h — container networks through the CNI plugins (containernetworking-plugins).
 *
 * A network is a CNI conflist in the network config dir (/etc/ferry/network/NAME.conflist),
 * owned by root. ferry runs its plugins as the CNI spec says (CNI_COMMAND/CONTAINERID/NETNS/
 * IFNAME/PATH/ARGS, the plugin config on stdin, the result on stdout) for the instance's own
 * network namespace. What a user may ask (networks, IP, MAC, gateway) is checked against
 * ferry.conf first. */
#ifndef FERRY_NET_H
#define FERRY_NET_H

#include <sys/types.h>

#include "config.h"
#include "error.h"

#define FERRY_NET_MAX 4

struct ferry_net_args {
	char *ip; /* "A.B.C.D/P" */
	char *mac; /* "xx:xx:xx:xx:xx:xx", unicast */
	char *gw; /* "A.B.C.D" */
};

/* Parses "IP=A.B.C.D/P;MAC=..;GW=.." (any subset, any order). */
int ferry_net_args_parse(const char *s, struct ferry_net_args *ret, struct ferry_error **err);
void ferry_net_args_clear(struct ferry_net_args *a);
/* Splits "a,b" into at most FERRY_NET_MAX validated names. */
int ferry_net_names_parse(const char *s, char ***ret, struct ferry_error **err);
/* What the caller may do: root anything; users only networks, args and addresses ferry.conf allows. */
int ferry_net_check_policy(const struct ferry_config *c, uid_t uid, char **networks,
			   const struct ferry_net_args *a, struct ferry_error **err);

struct ferry_net_attachment {
	char *network;
	char *ifname;
	char *result; /* the CNI result JSON of ADD (for DEL's prevResult) */
	char *ip; /* from the result */
	char *mac;
};

/* ADD: loopback up, then every plugin of @network with @ifname in @netns_path. */
int ferry_cni_add(const struct ferry_config *c, const char *network, const char *container_id,
		  const char *netns_path, const char *ifname, const struct ferry_net_args *a,
		  struct ferry_net_attachment *ret, struct ferry_error **err);
/* CHECK (CNI >= 0.4.0): the plugins confirm the attachment is as ADD left it. */
int ferry_cni_check(const struct ferry_config *c, const char *container_id, const char *netns_path,
		    const struct ferry_net_attachment *att, const struct ferry_net_args *a,
		    struct ferry_error **err);
/* DEL, in reverse plugin order; @netns_path may be NULL when the namespace is gone. */

int ferry_cni_del(const struct ferry_config *c, const char *container_id, const char *netns_path,
		  const struct ferry_net_attachment *att, const struct ferry_net_args *a,
		  struct ferry_error **err);
void ferry_net_attachment_clear(struct ferry_net_attachment *att);

#endif
