/* SPDX-License-Identifier: GPL-2.0-or-later */
/* arp.c — ferry-net's ARP, in the instance's network namespace: the duplicate-address probe
 * before the workload starts and the announcement after a restore. The packets that answer
 * the probe come from the network: they are read here, never by the setuid starter. */
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "arp.h"
#include "fs.h"

struct arp_pkt {
	uint16_t htype, ptype;
	uint8_t hlen, plen;
	uint16_t oper;
	uint8_t sha[6], spa[4], tha[6], tpa[4];
} __attribute__((packed));

int arp_run(const char *ifname, uint32_t ip, bool probe, int wait_ms)
{
	_cleanup_close_ int sk = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP));
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
		long long end = ferry_monotonic_ms() + wait_ms / 2;
		for (long long left; (left = end - ferry_monotonic_ms()) > 0;) {
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
