/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "fs.h"
#include "instance.h"
#include "net.h"

int ferry_net_mac_parse(const char *s, uint8_t ret[6])
{
	if (strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 17; i++) {
		char c = s[i];
		if (i % 3 == 2 ? c != ':' : !isxdigit((unsigned char)c))
			return -EINVAL;
	}
	for (size_t i = 0; i < 6; i++)
		ret[i] = (uint8_t)strtoul(s + 3 * i, NULL, 16);
	return 0;
}

static uint32_t mask_of(unsigned prefix)
{
	return prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
}

static void ipv4_str(uint32_t a, char buf[INET_ADDRSTRLEN])
{
	snprintf(buf, INET_ADDRSTRLEN, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static const struct ferry_net_subnet *subnet_of(const struct ferry_net_subnet *subs, size_t n, uint32_t addr)
{
	for (size_t i = 0; i < n; i++)
		if ((addr & mask_of(subs[i].prefix)) == subs[i].net)
			return &subs[i];
	return NULL;
}

/* "A.B.C.D/P, ..." */
static char *subnets_str(const struct ferry_net_subnet *subs, size_t n)
{
	char *s = xstrdup("");
	for (size_t i = 0; i < n; i++) {
		char a[INET_ADDRSTRLEN];
		ipv4_str(subs[i].net, a);
		char *t = xasprintf("%s%s%s/%u", s, i ? ", " : "", a, subs[i].prefix);
		free(s);
		s = t;
	}
	return s;
}

/* @what ("address", "gateway") @addr must be a host of @sub: not its network or broadcast
 * address (a /31 or /32 has neither). */
static int check_host(const char *network, const struct ferry_net_subnet *sub, uint32_t addr,
		      const char *what, const char *given, struct ferry_error **err)
{
	if (sub->prefix >= 31)
		return 0;
	uint32_t bcast = sub->net | ~mask_of(sub->prefix);
	if (addr != sub->net && addr != bcast)
		return 0;
	_cleanup_free_ char *net = subnets_str(sub, 1);
	return ferry_error_msg(err, EINVAL,
			       "%s '%s' is the %s address of network '%s' (%s): choose a host address in it",
			       what, given, addr == sub->net ? "network" : "broadcast", network, net);
}

static int check_ip(const char *network, const struct ferry_net_subnet *subs, size_t n, const char *ip,
		    const struct ferry_net_subnet **ret_sub, uint32_t *ret_addr, struct ferry_error **err)
{
	uint32_t addr = 0;
	unsigned prefix = 0;
	if (ferry_config_cidr_parse(ip, &addr, &prefix) < 0)
		return ferry_error_msg(err, EINVAL, "--network-args: IP '%s' must be A.B.C.D/PREFIX", ip);
	const struct ferry_net_subnet *sub = subnet_of(subs, n, addr);
	_cleanup_free_ char *all = subnets_str(sub ? sub : subs, sub ? 1 : n);
	if (!sub)
		return ferry_error_msg(err, EPERM,
				       "address '%s' is not on network '%s' (%s): choose one there", ip,
				       network, all);
	char a[INET_ADDRSTRLEN];
	ipv4_str(addr, a);
	if (prefix != sub->prefix)
		return ferry_error_msg(
		    err, EINVAL, "address '%s': network '%s' is %s, so its prefix must be /%u (IP=%s/%u)", ip,
		    network, all, sub->prefix, a, sub->prefix);
	int r = check_host(network, sub, addr, "address", ip, err);
	if (r < 0)
		return r;
	if (sub->gw && addr == sub->gw)
		return ferry_error_msg(err, EINVAL,
				       "address '%s' is the gateway of network '%s': choose another address",
				       ip, network);
	*ret_sub = sub;
	*ret_addr = addr;
	return 0;
}

int ferry_net_check_address(const char *network, const struct ferry_net_subnet *subs, size_t n,
			    const struct ferry_net_args *a, struct ferry_error **err)
{
	if (!a->ip && !a->gw)
		return 0;
	if (n == 0)
		return ferry_error_msg(
		    err, EPERM,
		    "network '%s' declares no subnet, so its addresses cannot be chosen (ask "
		    "your admin to add \"subnet\": \"A.B.C.D/P\" to the ipam of %s.conflist)",
		    network, network);
	const struct ferry_net_subnet *sub = NULL;
	uint32_t ip = 0, gw = 0;
	if (a->ip) {
		int r = check_ip(network, subs, n, a->ip, &sub, &ip, err);
		if (r < 0)
			return r;
	}
	if (!a->gw)
		return 0;
	if (ferry_config_ipv4_parse(a->gw, &gw) < 0)
		return ferry_error_msg(err, EINVAL, "--network-args: GW '%s' must be A.B.C.D", a->gw);
	const struct ferry_net_subnet *gsub = subnet_of(subs, n, gw);
	if (!gsub || (sub && gsub != sub)) {
		_cleanup_free_ char *all = subnets_str(sub ? sub : subs, sub ? 1 : n);
		return ferry_error_msg(err, EPERM,
				       "gateway '%s' is not on network '%s' (%s): give one of its addresses",
				       a->gw, network, all);
	}
	int r = check_host(network, gsub, gw, "gateway", a->gw, err);
	if (r < 0)
		return r;
	if (a->ip && gw == ip)
		return ferry_error_msg(
		    err, EINVAL, "gateway '%s' is the instance's own address: give the network's router",
		    a->gw);
	return 0;
}

/* What a user may choose: ferry.conf's 'allow net args', its ranges for the IP and GW, a locally
 * administered MAC. @kept: a restart's identity, sealed in its checkpoint: only what the user
 * chose counts (the GW, and the IP and MAC unless its launch request says the network's IPAM
 * chose them, or is older than that word: the starter sets ipam_ip/_mac), and the remedy is
 * another node or the admin, not another choice. */
static int check_choice(const struct ferry_config *c, const struct ferry_net_args *a, bool kept,
			struct ferry_error **err)
{
	const char *ip = kept && a->ipam_ip ? NULL : a->ip, *mac = kept && a->ipam_mac ? NULL : a->mac;
	char why[256] = "";
	uint32_t addr = 0;
	uint8_t b[6];
	if ((ip || mac || a->gw) && !c->allow_net_args)
		snprintf(
		    why, sizeof(why),
		    "--network-args is not allowed for users on this node ('allow net args' in ferry.conf)");
	else if (ip && (ferry_config_cidr_parse(ip, &addr, NULL) < 0 || !ferry_config_ip_allowed(c, addr)))
		snprintf(
		    why, sizeof(why),
		    "address '%s' is outside the ranges users may ask for ('allow net ip range' in ferry.conf)",
		    ip);
	else if (a->gw && (ferry_config_ipv4_parse(a->gw, &addr) < 0 || !ferry_config_ip_allowed(c, addr)))
		snprintf(
		    why, sizeof(why),
		    "gateway '%s' is outside the ranges users may ask for ('allow net ip range' in ferry.conf)",
		    a->gw);
	/* a globally administered MAC is some network card's: on the wire it would take that
	 * card's traffic (a router's, another node's), which nothing on this node can see */
	else if (mac && (ferry_net_mac_parse(mac, b) < 0 || !(b[0] & 2)))
		snprintf(why, sizeof(why),
			 "MAC '%s' must be locally administered (its first byte with bit 0x02 set, e.g. "
			 "02:xx:xx:xx:xx:xx)%s",
			 mac, kept ? "" : ", or leave MAC out to get one");
	if (!*why || !kept)
		return *why ? ferry_error_msg(err, EPERM, "%s", why) : 0;
	_cleanup_free_ char *id = xasprintf("%s%s%s%s%s%s", ip ? ";IP=" : "", ip ?: "", mac ? ";MAC=" : "",
					    mac ?: "", a->gw ? ";GW=" : "", a->gw ?: "");
	return ferry_error_msg(
	    err, EPERM,
	    "%s, kept from the instance's checkpoint, was chosen with --network-args at launch, and "
	    "here %s: restart it on a node that lets users choose it, or ask your admin",
	    id + 1, why);
}

/* An address on the network's subnets. @kept: a restart's identity, whoever chose it: the
 * network's own rules of today hold, and the remedy is another node or the admin. */
static int check_args(const struct ferry_config *c, const char *network, const struct ferry_net_args *a,
		      bool kept, struct ferry_error **err)
{
	if (!a->ip && !a->gw)
		return 0;
	struct ferry_net_subnet subs[FERRY_NET_SUBNETS_MAX];
	size_t n = 0;
	int r = ferry_net_subnets(c, network, subs, ARRAY_SIZE(subs), &n, err);
	if (r < 0)
		return r;
	if (!kept)
		return ferry_net_check_address(network, subs, n, a, err);
	if (ferry_net_check_address(network, subs, n, a, NULL) == 0)
		return 0;
	_cleanup_free_ char *all = n ? subnets_str(subs, n) : xstrdup("none declared");
	return ferry_error_msg(err, EPERM,
			       "network '%s' on this node does not have the address kept from the instance's "
			       "checkpoint (IP=%s%s%s; its subnets: %s): restart it on a node whose network "
			       "has that address, or ask your admin",
			       network, a->ip ? a->ip : "-", a->gw ? ";GW=" : "", a->gw ? a->gw : "", all);
}

/* ferry_net_check_policy's ferry.conf part: the networks open to users, and what the user chose. */
static int check_networks(const struct ferry_config *c, uid_t uid, char **networks,
			  const struct ferry_net_args *a, bool kept, struct ferry_error **err)
{
	if (uid == 0)
		return 0;
	for (char **n = networks; n && *n; n++)
		if (!ferry_config_network_allowed(c, *n))
			return ferry_error_msg(
			    err, EPERM,
			    "network '%s' is not open to users on this node (ask your admin: "
			    "'allow net network' in ferry.conf)",
			    *n);
	return check_choice(c, a, kept, err);
}

int ferry_net_check_policy(const struct ferry_config *c, uid_t uid, char **networks,
			   const struct ferry_net_args *a, bool kept, struct ferry_error **err)
{
	int r = check_networks(c, uid, networks, a, kept, err);
	if (r < 0 || uid == 0)
		return r;
	/* the arguments are for the first network (the others get theirs from their IPAM) */
	return check_args(c, networks && networks[0] ? networks[0] : "bridge", a, kept, err);
}

void ferry_net_attachment_clear(struct ferry_net_attachment *att)
{
	ferry_net_mac_release(&att->mac_lock);
	if (att->result_fd > 0)
		close(att->result_fd);
	free(att->network);
	free(att->ifname);
	free(att->ip);
	free(att->mac);
	memset(att, 0, sizeof(*att));
}

char *ferry_net_cidr_str(uint32_t addr, unsigned prefix)
{
	char a[INET_ADDRSTRLEN];
	ipv4_str(addr, a);
	return xasprintf("%s/%u", a, prefix);
}

char *ferry_net_mac_str(const uint8_t mac[6])
{
	return xasprintf("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

static bool reply_numbers_ok(const struct ferry_net_reply *r)
{
	if (r->n_subnets > FERRY_NET_SUBNETS_MAX || r->prefix > 32 || (r->ip == 0) != (r->prefix == 0) ||
	    r->has_mac > 1 || (r->has_mac && (r->mac[0] & 1)) || r->claimed > 1)
		return false;
	for (size_t i = 0; i < r->n_subnets; i++) {
		const struct ferry_net_subnet *s = &r->subnets[i];
		if (s->prefix < 1 || s->prefix > 32 || (s->net & ~mask_of(s->prefix)) != 0)
			return false;
	}
	return true;
}

int ferry_net_reply_check(struct ferry_net_reply *r, size_t len, struct ferry_error **err)
{
	if (len != sizeof(*r) || r->magic != FERRY_NET_REPLY_MAGIC || r->error > 4095 ||
	    !memchr(r->message, '\0', sizeof(r->message)) || !reply_numbers_ok(r))
		return ferry_error_msg(err, EPROTO, "ferry-net's reply is not one (%zu bytes)", len);
	for (char *p = r->message; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			*p = '?';
	if (r->error)
		return ferry_error_msg(err, (int)r->error, "%s",
				       *r->message ? r->message : "ferry-net failed");
	return 0;
}

int ferry_net_reply_read(pid_t pid, int fd, unsigned timeout_s, struct ferry_net_reply *ret,
			 struct ferry_error **err)
{
	struct ferry_error *e = NULL;
	int r = ferry_read_within(fd, ret, sizeof(*ret), timeout_s, &e);
	/* after its reply, the end of the pipe: its exit, within the same time */
	char extra;
	int more = r < 0 ? r : ferry_read_within(fd, &extra, 1, timeout_s, &e);
	if (r < 0 || (e && e->code == ETIMEDOUT))
		kill(pid, SIGKILL);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (r == 0 && more == 0)
		r = ferry_error_msg(err, EPROTO, "ferry-net said more than its reply");
	else if (r == 0 && e->code == ETIMEDOUT)
		r = ferry_error_msg(err, ETIMEDOUT, "ferry-net did not end within %u s of its reply",
				    timeout_s);
	else if (r == 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
		r = ferry_error_msg(err, EPROTO, "ferry-net failed after its reply");
	else if (r < 0) {
		r = ferry_error_msg(err, EIO, "ferry-net gave no reply (%s; it %s %d)", e->message,
				    WIFEXITED(st) ? "exited with status" : "was killed by signal",
				    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	}
	ferry_error_free(e);
	return r < 0 ? r : ferry_net_reply_check(ret, sizeof(*ret), err);
}

int ferry_net_reply_subnets(const struct ferry_net_reply *rep, const char *network,
			    struct ferry_net_subnet *ret, size_t max, size_t *ret_n, struct ferry_error **err)
{
	if (rep->n_subnets > max)
		return ferry_error_msg(err, E2BIG, "network '%s' has more than %zu subnets", network, max);
	memcpy(ret, rep->subnets, rep->n_subnets * sizeof(*ret));
	*ret_n = rep->n_subnets;
	return 0;
}

int ferry_net_node_claims(const uint8_t *mac, uint32_t ip, char ret_ifname[IF_NAMESIZE],
			  struct ferry_error **err)
{
	struct ifaddrs *ifs = NULL;
	if (getifaddrs(&ifs) < 0)
		return ferry_error_set(err, errno, "list this node's interfaces");
	int found = 0;
	for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next) {
		if (!i->ifa_addr)
			continue;
		if (mac && i->ifa_addr->sa_family == AF_PACKET) {
			const struct sockaddr_ll *ll = (const struct sockaddr_ll *)(void *)i->ifa_addr;
			found = ll->sll_halen == 6 && memcmp(ll->sll_addr, mac, 6) == 0;
		} else if (ip && i->ifa_addr->sa_family == AF_INET) {
			const struct sockaddr_in *in = (const struct sockaddr_in *)(void *)i->ifa_addr;
			found = ntohl(in->sin_addr.s_addr) == ip;
		}
		if (found)
			snprintf(ret_ifname, IF_NAMESIZE, "%s", i->ifa_name);
	}
	freeifaddrs(ifs);
	return found;
}

/* FERRY_RUNDIR/net/n<node>: made by root, root's alone. */
static int open_reservations(struct ferry_error **err)
{
	char node[32];
	snprintf(node, sizeof(node), "n%llu", ferry_node_id());
	const char *parts[] = {FERRY_RUNDIR, "net", node};
	return ferry_open_root_dirs(parts, ARRAY_SIZE(parts), true, err);
}

static void reservation_name(const uint8_t mac[6], char name[32])
{
	snprintf(name, 32, "mac-%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
}

/* 1: @fd (locked) is still the file @name names; 0: its holder removed it in between. */
static int still_named(int dirfd, const char *name, int fd)
{
	struct stat a, b;
	if (fstat(fd, &a) < 0)
		return -errno;
	if (fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Removes the reservations nobody holds (their monitor was killed): taken and unlinked under
 * the lock, as a release does, so that a reserver that opened the same file retries. */
static void sweep_stale(int dirfd)
{
	DIR *d = ferry_opendir_at(dirfd);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!startswith(de->d_name, "mac-"))
			continue;
		_cleanup_close_ int fd =
		    openat(dirfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 && still_named(dirfd, de->d_name, fd) == 1)
			(void)unlinkat(dirfd, de->d_name, 0);
	}
	if (d)
		closedir(d);
}

int ferry_net_mac_reserve(const uint8_t mac[6], unsigned wait_ms, struct ferry_net_mac_lock *ret,
			  struct ferry_error **err)
{
	_cleanup_close_ int dirfd = open_reservations(err);
	if (dirfd < 0)
		return dirfd;
	sweep_stale(dirfd);
	char name[32];
	reservation_name(mac, name);
	long long deadline = ferry_now_ms() + wait_ms;
	for (unsigned tries = 0; tries < 10000; tries++) {
		_cleanup_close_ int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return ferry_error_set(err, errno, "create the MAC reservation '%s'", name);
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			int r = still_named(dirfd, name, fd);
			if (r < 0)
				return ferry_error_set(err, -r, "check the MAC reservation '%s'", name);
			if (r == 0)
				continue;
			*ret = (struct ferry_net_mac_lock){.dirfd = TAKE_FD(dirfd), .fd = TAKE_FD(fd)};
			memcpy(ret->mac, mac, 6);
			return 0;
		}
		if (errno != EWOULDBLOCK)
			return ferry_error_set(err, errno, "lock the MAC reservation '%s'", name);
		if (ferry_now_ms() >= deadline)
			return -EADDRINUSE;
		usleep(50 * 1000);
	}
	return -EADDRINUSE;
}

void ferry_net_mac_release(struct ferry_net_mac_lock *l)
{
	if (!l || l->fd <= 0)
		return;
	char name[32];
	reservation_name(l->mac, name);
	/* while still holding it: whoever opens the old file next finds it unnamed and retries */
	(void)unlinkat(l->dirfd, name, 0);
	close(l->fd);
	close(l->dirfd);
	memset(l, 0, sizeof(*l));
}
