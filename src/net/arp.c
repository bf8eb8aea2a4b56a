/* SPDX-License-Identifier: GPL-2.0-or-later */
/* arp.c — ferry-net's ARP, in the instance's network namespace: the duplicate-address probe
 * before the workload starts and the announcement after a restore. The packets that answer
 * the probe come from the network: they are read here, never by the setuid starter.
 *
 * The probe goes out from a temporary MAC. A user may choose both address and MAC: one who
 * copies another host's would probe from that host's MAC, and the host's answer, addressed to
 * it, would go to the host's own port of the switch (or carry our own MAC, which a probe must
 * ignore): nobody would be heard. From a random MAC, any claim of the address from another MAC,
 * the chosen one included, is the answer of someone else. The chosen MAC is always put back
 * before the reply; when that fails, so does the probe (and the start). */
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "arp.h"
#include "fs.h"

struct arp_pkt {
	uint16_t htype, ptype;
	uint8_t hlen, plen;
	uint16_t oper;
	uint8_t sha[6], spa[4], tha[6], tpa[4];
} __attribute__((packed));

static int set_mac(int sk, const char *ifname, const uint8_t mac[6])
{
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
	return ioctl(sk, SIOCSIFHWADDR, &ifr) < 0 ? -errno : 0;
}

/* Gives @ifname a random locally administered unicast MAC, which it writes to @ret: true when
 * the interface took it (veth and macvlan do, while up). A device that refuses
 * (ipvlan shares its parent's MAC) keeps its own: the probe is then sent from it, and a host
 * that has both the address and that MAC stays unheard, as before. */
static bool set_temporary_mac(int sk, const char *ifname, const uint8_t own[6], uint8_t ret[6])
{
	if (getrandom(ret, 6, 0) != 6)
		return false;
	ret[0] = (ret[0] & 0xfc) | 0x02;
	return memcmp(ret, own, 6) != 0 && set_mac(sk, ifname, ret) == 0;
}

/* Sends @p twice (to everyone); with @probe, listens @wait_ms in all for a packet from the
 * network in which a MAC other than @p's sender (and than @kept, when given) claims @ip: 1 when
 * one does, else 0, or -errno. */
static int exchange(int sk, unsigned idx, const struct arp_pkt *p, uint32_t nip, bool probe,
		    const uint8_t *kept, int wait_ms)
{
	struct sockaddr_ll to = {.sll_family = AF_PACKET,
				 .sll_protocol = htons(ETH_P_ARP),
				 .sll_ifindex = (int)idx,
				 .sll_halen = 6,
				 .sll_addr = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
	for (int i = 0; i < 2; i++) {
		if (sendto(sk, p, sizeof(*p), 0, (struct sockaddr *)&to, sizeof(to)) < 0)
			return -errno;
		if (!probe)
			continue;
		long long end = ferry_monotonic_ms() + wait_ms / 2;
		for (long long left; (left = end - ferry_monotonic_ms()) > 0;) {
			struct pollfd pfd = {.fd = sk, .events = POLLIN};
			if (poll(&pfd, 1, (int)left) <= 0)
				continue;
			struct arp_pkt r;
			struct sockaddr_ll from = {0};
			socklen_t len = sizeof(from);
			ssize_t n = recvfrom(sk, &r, sizeof(r), 0, (struct sockaddr *)&from, &len);
			/* what this namespace sends (its kernel's answers too) is not the network's */
			if (n < (ssize_t)sizeof(r) || ntohs(r.ptype) != ETH_P_IP ||
			    from.sll_pkttype == PACKET_OUTGOING)
				continue;
			/* someone else says it has the address (a reply, or its own probe/announcement) */
			if (memcmp(r.spa, &nip, 4) == 0 && memcmp(r.sha, p->sha, 6) != 0 &&
			    !(kept && memcmp(r.sha, kept, 6) == 0))
				return 1;
		}
	}
	return 0;
}

int arp_run(const char *ifname, uint32_t ip, enum arp_mode mode, int wait_ms, struct ferry_error **err)
{
	bool probe = mode != ARP_ANNOUNCE;
	_cleanup_close_ int sk = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP));
	if (sk < 0)
		return ferry_error_set(err, errno, "ARP socket");
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	unsigned idx = if_nametoindex(ifname);
	if (!idx || ioctl(sk, SIOCGIFHWADDR, &ifr) < 0)
		return ferry_error_set(err, errno, "interface '%s'", ifname);
	uint8_t own[6];
	memcpy(own, ifr.ifr_hwaddr.sa_data, 6);
	struct arp_pkt p = {
	    .htype = htons(1), .ptype = htons(ETH_P_IP), .hlen = 6, .plen = 4, .oper = htons(1)};
	bool temporary = probe && set_temporary_mac(sk, ifname, own, p.sha);
	if (!temporary)
		memcpy(p.sha, own, 6);
	uint32_t nip = htonl(ip);
	memcpy(p.tpa, &nip, 4);
	if (!probe)
		memcpy(p.spa, &nip, 4);
	int r = exchange(sk, idx, &p, nip, probe, mode == ARP_PROBE_KEPT ? own : NULL, wait_ms);
	int back = temporary ? set_mac(sk, ifname, own) : 0;
	if (back < 0)
		return ferry_error_set(err, -back, "give '%s' its MAC back after the duplicate-address probe",
				       ifname);
	if (r < 0)
		return ferry_error_set(err, -r, "ARP %s on '%s'", probe ? "probe" : "announcement", ifname);
	return r;
}
