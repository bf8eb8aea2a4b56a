/* SPDX-License-Identifier: GPL-2.0-or-later */
/* arp.h — ferry-net's ARP (src/net/arp.c). */
#ifndef FERRY_NET_ARP_H
#define FERRY_NET_ARP_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

/* ARP_PROBE: a new address and MAC. ARP_PROBE_KEPT: a restart's, kept from its checkpoint (the
 * launch probed them): the interface's MAC is the instance's own, and the source of a migration,
 * which still has both, answers from it: not another host. */
enum arp_mode { ARP_ANNOUNCE, ARP_PROBE, ARP_PROBE_KEPT };

/* On @ifname of the current network namespace, for @ip (host order): a probe (RFC 5227, from
 * 0.0.0.0 and a temporary MAC, or the interface's own when it cannot change it, which it has
 * back before this returns) is 1 when another host claims @ip within @wait_ms; else a
 * gratuitous ARP. 0 when nobody claims it (or after announcing), or a negative errno (*err). */
int arp_run(const char *ifname, uint32_t ip, enum arp_mode mode, int wait_ms, struct ferry_error **err);

#endif
