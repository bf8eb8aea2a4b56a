/* SPDX-License-Identifier: GPL-2.0-or-later */
/* net.h — container networks: what a user may ask of one, and the starter's side of ferry-net.
 *
 * A network is a CNI conflist in the network config dir (/etc/ferry/network/NAME.conflist),
 * owned by root. The conflists are JSON and the CNI plugins answer JSON: both are read by
 * ferry-net (src/net/), a helper without the setuid bit that the starter runs as uid 0 with
 * only the capabilities the plugins need, and that answers with the fixed-layout struct
 * ferry_net_reply below. Here: the checks of what a user may ask (networks, IP, MAC, gateway)
 * against ferry.conf and the network's subnets, the node's own addresses, MAC reservations,
 * and the check of ferry-net's reply. No JSON. */
#ifndef FERRY_NET_H
#define FERRY_NET_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "error.h"

#define FERRY_NET_MAX 4

struct ferry_net_args {
	char *ip; /* "A.B.C.D/P" */
	char *mac; /* "xx:xx:xx:xx:xx:xx", unicast */
	char *gw; /* "A.B.C.D" */
	/* a restart's kept identity: the network's IPAM chose the IP / the MAC at launch, not the
	 * user (its sealed launch request says so: FERRY_REQ_NET_IPAM_IP/_MAC); a start's: what it
	 * did not ask for (the starter sets them; ferry_net_args_parse never does) */
	bool ipam_ip, ipam_mac;
};

/* Parses "IP=A.B.C.D/P;MAC=..;GW=.." (any subset, any order). */
int ferry_net_args_parse(const char *s, struct ferry_net_args *ret, struct ferry_error **err);
void ferry_net_args_clear(struct ferry_net_args *a);
/* Splits "a,b" into at most FERRY_NET_MAX validated names. */
int ferry_net_names_parse(const char *s, char ***ret, struct ferry_error **err);
/* What the caller may do: root anything; users only networks, args and addresses ferry.conf allows,
 * an IP on the first network's own subnet with its prefix (see ferry_net_check_address) and a
 * locally administered MAC. @kept: @a is a restart's identity, sealed in its checkpoint (the
 * user's or the network's choice): its networks must still be open to users and its IP and GW
 * pass ferry_net_check_address on today's subnets; what the user chose of it (the GW, and the IP
 * and MAC unless @a->ipam_ip / ipam_mac) must also be what users may choose on this node ('allow
 * net args', 'allow net ip range', the MAC rule), while what the network's IPAM chose is kept
 * whatever those say. With an IP or GW it asks ferry_net_subnets: in the starter that runs
 * ferry-net as uid 0, so call it where root can be regained (not from a child that dropped for
 * good); such a child can call ferry_net_args_parse, _names_parse and _check_address. */
int ferry_net_check_policy(const struct ferry_config *c, uid_t uid, char **networks,
			   const struct ferry_net_args *a, bool kept, struct ferry_error **err);

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
/* Each program that checks a policy has its own: ferry-net's parses the conflist (src/net/cni.c),
 * the starter's and ferryd's ask ferry-net (src/starter/network.c; src/ferryd/fit.c, for its
 * pre-check of a migration). ferry_net_check_policy calls it. */
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

/* An instance's attachment to one network, held by its monitor. */
struct ferry_net_attachment {
	char *network;
	char *ifname;
	int result_fd; /* > 0: a sealed memfd with the plugins' ADD result (ferry-net's, for CHECK and
			* DEL's prevResult; the starter never reads it) */
	char *ip; /* "A.B.C.D/P" from ferry-net's reply, checked (see network.c) */
	char *mac; /* "xx:xx:xx:xx:xx:xx" */
	struct ferry_net_mac_lock mac_lock; /* held while attached; released by _clear */
};
void ferry_net_attachment_clear(struct ferry_net_attachment *att);

/* ferry-net, the helper that reads the conflists and runs the plugins:
 *   ferry-net subnets NETWORK
 *   ferry-net add|check|del NETWORK CONTAINER_ID IFNAME IP MAC GW   ("-": not given)
 *   ferry-net probe|announce IFNAME A.B.C.D   (ARP in the instance's namespace)
 * Its fds: 0 and 2 /dev/null, 1 the reply pipe, FERRY_NET_FD_NETNS the instance's network
 * namespace, FERRY_NET_FD_RESULT the ADD result (add writes it; check and del read it). It
 * writes exactly one struct ferry_net_reply to fd 1 and exits 0; anything else is a failure. */
#define FERRY_NET_BIN FERRY_LIBEXECDIR "/ferry-net"
#define FERRY_NET_FD_NETNS 3
#define FERRY_NET_FD_RESULT 4
#define FERRY_NET_RESULT_MAX (1u << 20)
#define FERRY_NET_REPLY_MAGIC 0x314e5446u /* "FTN1" */
#define FERRY_NET_MSG_MAX 512

struct ferry_net_reply {
	uint32_t magic;
	uint32_t error; /* 0, or the errno of the failure @message says */
	char message[FERRY_NET_MSG_MAX]; /* NUL-terminated */
	/* subnets and add: the network's subnets (see ferry_net_subnets) */
	uint32_t n_subnets;
	struct ferry_net_subnet subnets[FERRY_NET_SUBNETS_MAX];
	/* add: the first IPv4 address the plugins gave (0/0: none) and the MAC of our interface */
	uint32_t ip, prefix;
	uint8_t mac[6];
	uint8_t has_mac;
	uint8_t claimed; /* probe: 1 when another host answered for the address */
};

/* Checks a reply of @len bytes: its size and magic, the message NUL-terminated (control
 * characters in it made '?'), every number in range (subnets masked with prefixes 1-32, an
 * address with a prefix, a unicast MAC). -EPROTO if it is not a reply; then the reply's own
 * error (its errno and message) if it has one; else 0. */
int ferry_net_reply_check(struct ferry_net_reply *r, size_t len, struct ferry_error **err);
/* Reads ferry-net's one reply from @fd (its stdout's pipe) within @timeout_s, waits for @pid
 * (killed when late) and checks the reply and that it exited 0 after it, saying nothing more. */
int ferry_net_reply_read(pid_t pid, int fd, unsigned timeout_s, struct ferry_net_reply *ret,
			 struct ferry_error **err);
/* The subnets of @rep, a checked reply of ferry-net's about @network, into @ret (at most @max). */
int ferry_net_reply_subnets(const struct ferry_net_reply *rep, const char *network,
			    struct ferry_net_subnet *ret, size_t max, size_t *ret_n,
			    struct ferry_error **err);
/* "A.B.C.D/P" / "xx:xx:xx:xx:xx:xx" */
char *ferry_net_cidr_str(uint32_t addr, unsigned prefix);
char *ferry_net_mac_str(const uint8_t mac[6]);

#endif
