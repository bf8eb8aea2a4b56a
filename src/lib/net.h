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

#include <net/if.h>
#include <stdint.h>
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
/* What the caller may do: root anything; users only networks, args and addresses ferry.conf allows,
 * an IP on the first network's own subnet with its prefix (see ferry_net_check_address) and a
 * locally administered MAC. */
int ferry_net_check_policy(const struct ferry_config *c, uid_t uid, char **networks,
			   const struct ferry_net_args *a, struct ferry_error **err);

/* "xx:xx:xx:xx:xx:xx" (any case) into bytes; -EINVAL if it is not one. */
int ferry_net_mac_parse(const char *s, uint8_t ret[6]);

/* A subnet a network's conflist declares: its IPAM's "subnet" and "gateway", or those of its
 * "ranges" (host-local's forms; other IPAM types, static included, ignore the keys, so an
 * admin adds "subnet" to say what the network is). @gw is 0 when there is none: host-local's
 * default gateway is the subnet's first address. */
struct ferry_net_subnet {
	uint32_t net; /* host order, masked */
	unsigned prefix;
	uint32_t gw;
};
#define FERRY_NET_SUBNETS_MAX 16
int ferry_net_subnets(const struct ferry_config *c, const char *network, struct ferry_net_subnet *ret,
		      size_t max, size_t *ret_n, struct ferry_error **err);
/* The address rules for @a on @network (no subnet declared: no address may be chosen): the IP
 * lies in one of @subs with exactly its prefix and is neither its network nor its broadcast
 * address nor its gateway; a GW lies in the same subnet and is not its network or broadcast
 * address nor the IP. */
int ferry_net_check_address(const char *network, const struct ferry_net_subnet *subs, size_t n,
			    const struct ferry_net_args *a, struct ferry_error **err);

/* Whether an interface of the current network namespace (the node's, in the monitor) has @mac
 * (when not NULL) or the IPv4 address @ip (when not 0): 1 and its name in @ret_ifname, 0 if
 * none, or a negative errno. */
int ferry_net_node_claims(const uint8_t *mac, uint32_t ip, char ret_ifname[IF_NAMESIZE],
			  struct ferry_error **err);

/* A MAC reserved on this node: an flock on FERRY_RUNDIR/net/n<node>/mac-<mac>, which every
 * attachment of every instance of every user takes, held by the monitor while the instance
 * is attached (a process that dies releases it). Held when fd > 0 (fds 0-2 are never ours). */
struct ferry_net_mac_lock {
	int dirfd, fd;
	uint8_t mac[6];
};
/* -EADDRINUSE (no message) while another holds @mac, after waiting up to @wait_ms for a holder
 * that is ending. */
int ferry_net_mac_reserve(const uint8_t mac[6], unsigned wait_ms, struct ferry_net_mac_lock *ret,
			  struct ferry_error **err);
/* Removes the reservation's file while still holding it, then lets go; NULL or unheld: nothing. */
void ferry_net_mac_release(struct ferry_net_mac_lock *l);

struct ferry_net_attachment {
	char *network;
	char *ifname;
	char *result; /* the CNI result JSON of ADD (for DEL's prevResult) */
	char *ip; /* from the result */
	char *mac;
	struct ferry_net_mac_lock mac_lock; /* held while attached; released by _clear */
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
