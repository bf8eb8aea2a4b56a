/* SPDX-License-Identifier: GPL-2.0-or-later */
/* network.c — an instance's own network namespace: CNI attach/detach, address checks.
 *
 * The monitor (root, in the node's network namespace) runs the CNI plugins for the container's
 * namespace, holding an fd to it so that DEL still finds it after the container is gone. The
 * duplicate-address probe and the announcement after a restore are ARP packets sent from inside
 * the namespace by a short-lived child. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "fs.h"
#include "spawn.h"
#include "starter.h"

struct arp_pkt {
	uint16_t htype, ptype;
	uint8_t hlen, plen;
	uint16_t oper;
	uint8_t sha[6], spa[4], tha[6], tpa[4];
} __attribute__((packed));

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* In the namespace: 0 when nobody answers for @ip within @wait_ms (or after announcing), 1 when
 * another host claims it, 2 on errors. probe: RFC 5227 probes from 0.0.0.0; else gratuitous ARP. */
static int arp_run(const char *ifname, uint32_t ip, bool probe, int wait_ms)
{
	int sk = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP));
	if (sk < 0)
		return 2;
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(sk, SIOCGIFHWADDR, &ifr) < 0)
		return 2;
	unsigned idx = if_nametoindex(ifname);
	if (!idx)
		return 2;
	struct sockaddr_ll to = {.sll_family = AF_PACKET,
				 .sll_protocol = htons(ETH_P_ARP),
				 .sll_ifindex = (int)idx,
				 .sll_halen = 6,
				 .sll_addr = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
	struct arp_pkt p = {
	    .htype = htons(1), .ptype = htons(ETH_P_IP), .hlen = 6, .plen = 4, .oper = htons(1)};
	memcpy(p.sha, ifr.ifr_hwaddr.sa_data, 6);
	uint32_t nip = htonl(ip);
	memcpy(p.tpa, &nip, 4);
	if (!probe)
		memcpy(p.spa, &nip, 4);
	for (int i = 0; i < 2; i++) {
		if (sendto(sk, &p, sizeof(p), 0, (struct sockaddr *)&to, sizeof(to)) < 0)
			return 2;
		if (!probe)
			continue;
		long long end = now_ms() + wait_ms / 2;
		for (long long left; (left = end - now_ms()) > 0;) {
			struct pollfd pfd = {.fd = sk, .events = POLLIN};
			if (poll(&pfd, 1, (int)left) <= 0)
				continue;
			struct arp_pkt r;
			ssize_t n = recv(sk, &r, sizeof(r), 0);
			if (n < (ssize_t)sizeof(r) || ntohs(r.ptype) != ETH_P_IP)
				continue;
			/* someone else says it has the address (a reply, or its own probe/announcement) */
			if (memcmp(r.spa, &nip, 4) == 0 && memcmp(r.sha, p.sha, 6) != 0)
				return 1;
		}
	}
	return 0;
}

/* Runs arp_run in a child that joined @netns_fd. */
static int arp_in_netns(int netns_fd, const char *ifname, uint32_t ip, bool probe, int wait_ms)
{
	pid_t pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		if (setns(netns_fd, CLONE_NEWNET) < 0)
			_exit(2);
		_exit(arp_run(ifname, ip, probe, wait_ms));
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 2;
}

static uint32_t addr_of(const char *cidr)
{
	uint32_t a = 0;
	if (!cidr || ferry_config_cidr_parse(cidr, &a, NULL) < 0)
		return 0;
	return a;
}

static char *container_id(const struct starter *s)
{
	return xasprintf("ferry-%u-%s", (unsigned)s->privs.uid, s->req->instance);
}

static char *netns_path(int netns_fd)
{
	/* the plugins open it themselves: name our fd through our /proc entry */
	return xasprintf("/proc/%d/fd/%d", (int)getpid(), netns_fd);
}

void network_detach(struct starter *s, int netns_fd, struct ferry_net_attachment *atts, size_t n)
{
	_cleanup_free_ char *id = container_id(s);
	_cleanup_free_ char *path = netns_fd >= 0 ? netns_path(netns_fd) : NULL;
	for (size_t i = n; i-- > 0;) {
		struct ferry_error *err = NULL;
		(void)ferry_cni_del(s->cfg, id, path, &atts[i], i == 0 ? &s->net_args : NULL, &err);
		ferry_error_free(err);
		ferry_net_attachment_clear(&atts[i]);
	}
}

/* How long a MAC's reservation is waited for: its holder may be an instance that is ending (its
 * monitor releases the MAC after the network's DEL). */
#define MAC_WAIT_MS 2000

/* What a refused identity is: the user's choice, the checkpoint's (a restart rebuilds it), or
 * what the network gave. */
enum origin { CHOSEN, KEPT, GIVEN };

static const char *remedy(enum origin o)
{
	return o == CHOSEN ? "choose another one (or leave it out to get a free one)"
	       : o == KEPT ? "restart it on another node, or once that one has stopped"
			   : "start the instance again";
}

/* The address and MAC are no interface's of this node (the monitor's network namespace is the
 * node's): a macvlan cannot even reach its parent's address, so the duplicate-address probe
 * does not see it. */
static int check_not_node(const char *ip, const char *mac, enum origin o, struct ferry_error **err)
{
	char ifname[IF_NAMESIZE] = "";
	const char *kept = o == KEPT ? " (kept from the instance's checkpoint)" : "";
	uint32_t addr = addr_of(ip);
	int r = addr ? ferry_net_node_claims(NULL, addr, ifname, err) : 0;
	if (r > 0)
		return ferry_error_msg(err, EADDRINUSE,
				       "address %s%s is this node's own (interface '%s'): %s", ip, kept,
				       ifname, remedy(o));
	uint8_t b[6];
	if (r == 0 && mac && ferry_net_mac_parse(mac, b) == 0)
		r = ferry_net_node_claims(b, 0, ifname, err);
	if (r > 0)
		return ferry_error_msg(err, EADDRINUSE, "MAC %s%s is this node's own (interface '%s'): %s",
				       mac, kept, ifname, remedy(o));
	return r;
}

/* Reserves @mac on this node: no other instance of anyone here may have it meanwhile. */
static int reserve_mac(const char *mac, enum origin o, struct ferry_net_mac_lock *ret,
		       struct ferry_error **err)
{
	uint8_t b[6];
	if (ferry_net_mac_parse(mac, b) < 0)
		return ferry_error_msg(err, EINVAL, "bad MAC '%s'", mac);
	int r = ferry_net_mac_reserve(b, MAC_WAIT_MS, ret, err);
	if (r == -EADDRINUSE)
		return ferry_error_msg(err, EADDRINUSE,
				       "MAC %s%s is in use by another instance on this node: %s", mac,
				       o == KEPT ? " (kept from the instance's checkpoint)" : "", remedy(o));
	return r;
}

/* Before ADD: what the user asked for, or (a restart) the instance's own address and MAC. */
static int claim_requested(const struct starter *s, struct ferry_net_mac_lock *ret, struct ferry_error **err)
{
	enum origin o = s->restore_fd >= 0 ? KEPT : CHOSEN;
	int r = check_not_node(s->net_args.ip, s->net_args.mac, o, err);
	if (r < 0 || !s->net_args.mac)
		return r;
	return reserve_mac(s->net_args.mac, o, ret, err);
}

/* After ADD: the attachment holds the reservation of the MAC it got (whoever chose it). */
static int claim_attached(const struct starter *s, struct ferry_net_attachment *att,
			  struct ferry_net_mac_lock *requested, struct ferry_error **err)
{
	uint8_t b[6];
	if (!att->mac || ferry_net_mac_parse(att->mac, b) < 0)
		return 0;
	if (requested && requested->fd > 0 && memcmp(requested->mac, b, 6) == 0) {
		att->mac_lock = *requested;
		*requested = (struct ferry_net_mac_lock){0};
		return 0;
	}
	int r = check_not_node(NULL, att->mac, GIVEN, err);
	return r < 0 ? r : reserve_mac(att->mac, GIVEN, &att->mac_lock, err);
}

/* ADD, CHECK, the node's claims and the duplicate-address probe for network @i as eth<i>;
 * *ret_added once ADD succeeded (a later failure must DEL it). */
static int attach_one(struct starter *s, int netns_fd, const char *id, const char *path, size_t i,
		      struct ferry_net_mac_lock *requested, struct ferry_net_attachment *att, bool *ret_added,
		      struct ferry_error **err)
{
	const char *net = s->networks[i];
	const struct ferry_net_args *args = i == 0 ? &s->net_args : NULL;
	char ifname[24];
	snprintf(ifname, sizeof(ifname), "eth%u", (unsigned)i);
	int r = ferry_cni_add(s->cfg, net, id, path, ifname, args, att, err);
	if (r < 0)
		return r;
	*ret_added = true;
	r = ferry_cni_check(s->cfg, id, path, att, args, err);
	if (r == 0)
		r = claim_attached(s, att, i == 0 ? requested : NULL, err);
	/* the address must be ours alone on this network: probe before anything uses it */
	uint32_t ip = addr_of(att->ip);
	if (r == 0 && ip && arp_in_netns(netns_fd, ifname, ip, true, 300) == 1)
		r = ferry_error_msg(
		    err, EADDRINUSE,
		    "address %s is already in use on network '%s' here: stop its user first or "
		    "choose another address",
		    att->ip, net);
	return r;
}

int network_attach(struct starter *s, pid_t pid, int *ret_netns_fd, struct ferry_net_attachment *atts,
		   size_t *ret_n, struct ferry_error **err)
{
	char nspath[64];
	snprintf(nspath, sizeof(nspath), "/proc/%d/ns/net", (int)pid);
	int netns_fd = open(nspath, O_RDONLY | O_CLOEXEC);
	if (netns_fd < 0)
		return ferry_error_set(err, errno, "open the instance's network namespace");
	/* a restore: lock before the address exists here, or a peer's retransmission could be
	 * answered with a reset in between */
	if (s->restore_fd >= 0 && network_lock_for_restore(s, netns_fd, err) < 0) {
		close(netns_fd);
		return -EIO;
	}
	_cleanup_free_ char *id = container_id(s);
	_cleanup_free_ char *path = netns_path(netns_fd);
	struct ferry_net_mac_lock requested = {0};
	int r = claim_requested(s, &requested, err);
	size_t n = 0;
	for (char **net = s->networks; r == 0 && net && *net; net++) {
		bool added = false;
		r = attach_one(s, netns_fd, id, path, n, &requested, &atts[n], &added, err);
		if (added)
			n++;
	}
	ferry_net_mac_release(&requested);
	if (r < 0) {
		network_detach(s, netns_fd, atts, n);
		close(netns_fd);
		return r;
	}
	*ret_netns_fd = netns_fd;
	*ret_n = n;
	return 0;
}

void network_announce(int netns_fd, const struct ferry_net_attachment *atts, size_t n)
{
	/* after a restore on another node: switches and peers learn where the address went */
	for (size_t i = 0; i < n; i++) {
		uint32_t ip = addr_of(atts[i].ip);
		if (ip)
			(void)arp_in_netns(netns_fd, atts[i].ifname, ip, false, 0);
	}
}

/* While CRIU restores TCP connections, packets for them must not reach the new namespace:
 * the kernel would answer a retransmission with a reset before the socket exists. CRIU locks
 * only the namespace it dumped from (it never left the instance's), so ferry locks the new one
 * itself (CRIU's own repair packets carry SOCCR_MARK and pass) and unlocks it once the
 * restore is done. */
#define RESTORE_LOCK_TABLE "inet ferry_restore_lock"
#define SOCCR_MARK "0xc114"

static int run_nft(const struct starter *s, int netns_fd, const char *script, struct ferry_error **err)
{
	char *const argv[] = {"nft", "-f", "-", NULL};
	struct ferry_spawn_opts o = {.input = script,
				     .input_len = strlen(script),
				     .netns_fd = netns_fd,
				     .capture_stderr = true,
				     .timeout = 30};
	return ferry_spawn(s->cfg->nft_path, argv, NULL, &o, NULL, err);
}

int network_lock_for_restore(struct starter *s, int netns_fd, struct ferry_error **err)
{
	static const char script[] =
	    "table " RESTORE_LOCK_TABLE " {\n"
	    "  chain in { type filter hook input priority -300; policy drop; iif lo accept; meta mark " SOCCR_MARK
	    " accept; }\n"
	    "  chain out { type filter hook output priority -300; policy drop; oif lo accept; meta mark " SOCCR_MARK
	    " accept; }\n"
	    "}\n";
	int r = run_nft(s, netns_fd, script, err);
	return r < 0 ? ferry_error_wrap(err, "lock the instance's network for the restore") : 0;
}

void network_unlock_after_restore(struct starter *s, int netns_fd)
{
	struct ferry_error *err = NULL;
	(void)run_nft(s, netns_fd, "delete table " RESTORE_LOCK_TABLE "\n", &err);
	ferry_error_free(err);
}
