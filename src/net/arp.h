/* SPDX-License-Identifier: GPL-2.0-or-later */
/* arp.h — ferry-net's ARP (src/net/arp.c). */
#ifndef FERRY_NET_ARP_H
#define FERRY_NET_ARP_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

/* On @ifname of the current network namespace, for @ip (host order): with @probe, RFC 5227
 * probes from 0.0.0.0 and a temporary MAC (the interface's own when it cannot change it, which
 * it has back before this returns), 1 when another host claims @ip within @wait_ms; else a
 * gratuitous ARP. 0 when nobody claims it (or after announcing), or a negative errno (*err). */
int arp_run(const char *ifname, uint32_t ip, bool probe, int wait_ms, struct ferry_error **err);

#endif
