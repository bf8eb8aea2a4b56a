/* SPDX-License-Identifier: GPL-2.0-or-later */
/* network.c — an instance's own network namespace: CNI attach/detach, address checks.
 *
 * The conflists and the CNI plugins are ferry-net's (src/net/): the monitor (root, in the
 * node's network namespace) runs it for ADD, CHECK and DEL of the container's namespace, which
 * it passes as an fd (held, so that DEL still finds it after the container is gone), and the
 * policy check runs it for a network's subnets. ferry-net answers with a fixed-layout struct,
 * which is checked here; the plugins' JSON result stays in a sealed memfd this side never
 * reads. The duplicate-address probe and the announcement after a restore are ferry-net's too
 * (ARP from inside the namespace: the answers come from the network). */
#include <fcntl.h>
#include <linux/securebits.h>
#include <net/if.h>
#include <signal.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "fs.h"
#include "helper.h"
#include "starter.h"

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

/* ---- ferry-net */

/* What the plugins need, and ferry-net gets as its only capabilities (ambient, so that the
 * plugins it runs inherit them): links and addresses, setns into the instance's namespace,
 * iptables' raw sockets (bridge's ipMasq, firewall). */
static const int CNI_CAPS[] = {CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_NET_RAW};
#define NET_TIMEOUT_S 300 /* a whole ADD, CHECK or DEL (each plugin has 60 s) */
#define SUBNETS_TIMEOUT_S 10

struct helper_caps {
	const int *caps;
	size_t n;
};

/* In the child: uid and gid 0 everywhere, no groups, root's special powers off for good
 * (SECBIT_NOROOT: an exec by uid 0 gains nothing), exactly @caps as the bounding, permitted,
 * effective, inheritable and ambient sets, no_new_privs, all verified (ferry_privs_drop). */

static int become_helper(const void *arg)
{
	const struct helper_caps *c = arg;
	static const struct ferry_privs root = {.uid = 0, .gid = 0, .n_groups = 0};
	if (ferry_privs_raise(&root, NULL) < 0 ||
	    prctl(PR_SET_SECUREBITS,
		  SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
		      SECBIT_NO_SETUID_FIXUP_LOCKED,
		  0, 0, 0) < 0 ||
	    ferry_privs_drop(&root, c->caps, c->n, NULL) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return -EPERM;
	return 0;
}

/* Runs ferry-net @argv (with CNI_CAPS when @cni, else no capability) with @netns_fd and
 * @result_fd as its fds 3 and 4, and checks its reply (see ferry_net_reply_check). */
static int net_run(char *const argv[], int netns_fd, int result_fd, bool cni, unsigned timeout_s,
		   struct ferry_net_reply *ret, struct ferry_error **err)
{
	_cleanup_close_ int exe = helper_open("ferry-net", err);
	if (exe < 0)
		return exe;
	int rp[2];
	if (pipe2(rp, O_CLOEXEC) < 0)
		return ferry_error_set(err, errno, "pipe");
	pid_t pid = fork();
	if (pid == 0) {
		const int src[] = {-1, rp[1], -1, netns_fd, result_fd};
		const struct helper_caps c = {CNI_CAPS, cni ? ARRAY_SIZE(CNI_CAPS) : 0};
		helper_exec(src, (int)ARRAY_SIZE(src), exe, argv, become_helper, &c);
	}
	int e = errno;
	close(rp[1]);
	if (pid < 0) {
		close(rp[0]);
		return ferry_error_set(err, e, "fork");
	}
	memset(ret, 0, sizeof(*ret));
	int r = ferry_net_reply_read(pid, rp[0], timeout_s, ret, err);
	close(rp[0]);
	return r;
}

/* The starter's subnets (see net.h): ferry-net's, which reads the conflist ferry.conf names. */
int ferry_net_subnets(const struct ferry_config *c, const char *network, struct ferry_net_subnet *ret,
		      size_t max, size_t *ret_n, struct ferry_error **err)
{
	if (!ferry_config_word_ok(network, 64))
		return ferry_error_msg(err, EINVAL, "bad network name");
	char *const argv[] = {"ferry-net", "subnets", (char *)network, NULL};
	struct ferry_net_reply rep;
	int r = net_run(argv, -1, -1, false, SUBNETS_TIMEOUT_S, &rep, err);
	return r < 0 ? r : ferry_net_reply_subnets(&rep, network, ret, max, ret_n, err);
}

/* "A.B.C.D" */
static char *addr_str(uint32_t addr)
{
	char *s = ferry_net_cidr_str(addr, 32);
	s[strcspn(s, "/")] = '\0';
	return s;
}

/* ferry-net's ARP (@verb probe or announce) for @ip on @ifname in the instance's namespace: 1
 * when another host claims @ip, 0 when none does, or an error: a probe that did not end well may
 * have left the interface with its temporary MAC (src/net/arp.c), so the start is refused. */
static int arp_call(int netns_fd, const char *verb, const char *ifname, uint32_t ip, struct ferry_error **err)
{
	_cleanup_free_ char *a = addr_str(ip);
	char *const argv[] = {"ferry-net", (char *)verb, (char *)ifname, a, NULL};
	struct ferry_net_reply rep;
	int r = net_run(argv, netns_fd, -1, true, 10, &rep, err);
	return r < 0 ? r : rep.claimed;
}

/* ferry-net's arguments IP, MAC, GW: the checked values written anew ("-": none). */
static void scalar_args(const struct ferry_net_args *a, char **ret_ip, char **ret_mac, char **ret_gw)
{
	uint32_t addr = 0, gw = 0;
	unsigned prefix = 0;
	uint8_t mac[6];
	*ret_ip = a && a->ip && ferry_config_cidr_parse(a->ip, &addr, &prefix) == 0
		      ? ferry_net_cidr_str(addr, prefix)
		      : xstrdup("-");
	*ret_mac =
	    a && a->mac && ferry_net_mac_parse(a->mac, mac) == 0 ? ferry_net_mac_str(mac) : xstrdup("-");
	*ret_gw = a && a->gw && ferry_config_ipv4_parse(a->gw, &gw) == 0 ? addr_str(gw) : xstrdup("-");
}

/* ferry-net @verb (add, check, del) for @att. */
static int cni_call(const struct starter *s, const char *verb, int netns_fd,
		    const struct ferry_net_attachment *att, const struct ferry_net_args *a,
		    struct ferry_net_reply *ret, struct ferry_error **err)
{
	_cleanup_free_ char *id = container_id(s);
	_cleanup_free_ char *ip = NULL, *mac = NULL, *gw = NULL;
	scalar_args(a, &ip, &mac, &gw);
	char *const argv[] = {"ferry-net", (char *)verb, att->network, id, att->ifname, ip, mac, gw, NULL};
	return net_run(argv, netns_fd, att->result_fd, true, NET_TIMEOUT_S, ret, err);
}

/* ADD of @net as @ifname: on success *att is attached (a DEL is owed) with what ferry-net
 * reported, which the caller checks (check_given). */
static int cni_add(const struct starter *s, int netns_fd, const char *net, const char *ifname,
		   const struct ferry_net_args *a, struct ferry_net_attachment *att,
		   struct ferry_net_reply *rep, struct ferry_error **err)
{
	int mfd = memfd_create("ferry-cni-result", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return ferry_error_set(err, errno, "memfd_create");
	struct ferry_net_attachment new = {
	    .network = xstrdup(net), .ifname = xstrdup(ifname), .result_fd = mfd};
	int r = cni_call(s, "add", netns_fd, &new, a, rep, err);
	if (r < 0) {
		ferry_net_attachment_clear(&new);
		return r;
	}
	new.ip = rep->ip ? ferry_net_cidr_str(rep->ip, rep->prefix) : NULL;
	new.mac = rep->has_mac ? ferry_net_mac_str(rep->mac) : NULL;
	*att = new;
	/* the plugins' result stays as they gave it, for CHECK's and DEL's prevResult */
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
		return ferry_error_set(err, errno, "seal the result of network '%s'", net);
	return 0;
}

/* What ferry-net reports the plugins gave is what was asked: the address and MAC requested
 * (the user's were checked against the policy), else an address on the network's subnets. */
static int check_given(const struct ferry_net_attachment *att, const struct ferry_net_args *a,
		       const struct ferry_net_reply *rep, struct ferry_error **err)
{
	uint32_t addr = 0;
	unsigned prefix = 0;
	if (a && a->ip &&
	    (ferry_config_cidr_parse(a->ip, &addr, &prefix) < 0 || rep->ip != addr || rep->prefix != prefix))
		return ferry_error_msg(err, EPROTO,
				       "network '%s' gave the instance %s, not the address asked for (%s)",
				       att->network, att->ip ? att->ip : "no address", a->ip);
	if (!(a && a->ip) && rep->ip && rep->n_subnets > 0) {
		const struct ferry_net_args given = {.ip = att->ip};
		if (ferry_net_check_address(att->network, rep->subnets, rep->n_subnets, &given, err) < 0)
			return ferry_error_wrap(err, "network '%s' gave an address it does not have",
						att->network);
	}
	uint8_t mac[6];
	if (a && a->mac && rep->has_mac &&
	    (ferry_net_mac_parse(a->mac, mac) < 0 || memcmp(mac, rep->mac, 6) != 0))
		return ferry_error_msg(err, EPROTO,
				       "network '%s' gave the instance MAC %s, not the one asked for (%s)",
				       att->network, att->mac, a->mac);
	return 0;
}

void network_detach(struct starter *s, int netns_fd, struct ferry_net_attachment *atts, size_t n)
{
	for (size_t i = n; i-- > 0;) {
		struct ferry_error *err = NULL;
		struct ferry_net_reply rep;
		(void)cni_call(s, "del", netns_fd, &atts[i], i == 0 ? &s->net_args : NULL, &rep, &err);
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
static int attach_one(struct starter *s, int netns_fd, size_t i, struct ferry_net_mac_lock *requested,
		      struct ferry_net_attachment *att, bool *ret_added, struct ferry_error **err)
{
	const char *net = s->networks[i];
	const struct ferry_net_args *args = i == 0 ? &s->net_args : NULL;
	char ifname[24];
	snprintf(ifname, sizeof(ifname), "eth%u", (unsigned)i);
	struct ferry_net_reply rep;
	int r = cni_add(s, netns_fd, net, ifname, args, att, &rep, err);
	if (r < 0)
		return r;
	*ret_added = true;
	r = check_given(att, args, &rep, err);
	if (r == 0)
		r = cni_call(s, "check", netns_fd, att, args, &rep, err);
	if (r == 0)
		r = claim_attached(s, att, i == 0 ? requested : NULL, err);
	/* the address must be ours alone on this network: probe before anything uses it (the kept
	 * MAC of a checkpoint this starter received, sealed_manifest, is the migration's source,
	 * which still answers from it: not another host; a restart from disk probes as a start) */
	uint32_t ip = addr_of(att->ip);
	if (r == 0 && ip)
		r = arp_call(netns_fd, !i && s->sealed_manifest ? "probe-kept" : "probe", ifname, ip, err);
	if (r == 1)
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
	if (s->restore_fd >= 0 && network_restore_lock(s, netns_fd, false, err) < 0) {
		close(netns_fd);
		return -EIO;
	}
	struct ferry_net_mac_lock requested = {0};
	int r = claim_requested(s, &requested, err);
	size_t n = 0;
	for (char **net = s->networks; r == 0 && net && *net; net++) {
		bool added = false;
		r = attach_one(s, netns_fd, n, &requested, &atts[n], &added, err);
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
			(void)arp_call(netns_fd, "announce", atts[i].ifname, ip, NULL);
	}
}

/* ferry-net's nft lock of the instance's network while CRIU restores its TCP connections (see
 * lock_tables in src/net/main.c), or its unlock: nft runs in the instance's namespace, as uid 0
 * with only the capabilities of an ADD (SECBIT_NOROOT), never as root. */
#define NFT_TIMEOUT_S 30

static int nft_call(struct starter *s, int netns_fd, bool lock, bool loopback_only, struct ferry_error **err)
{
	char *const argv[] = {"ferry-net", lock ? "lock" : "unlock", loopback_only ? "loopback" : "network",
			      s->cfg->nft_path, NULL};
	struct ferry_net_reply rep;
	return net_run(argv, netns_fd, -1, true, NFT_TIMEOUT_S, &rep, err);
}

int network_restore_lock(struct starter *s, int netns_fd, bool loopback_only, struct ferry_error **err)
{
	return nft_call(s, netns_fd, true, loopback_only, err);
}

void network_restore_unlock(struct starter *s, int netns_fd, bool loopback_only)
{
	struct ferry_error *err = NULL;
	(void)nft_call(s, netns_fd, false, loopback_only, &err);
	ferry_error_free(err);
}
