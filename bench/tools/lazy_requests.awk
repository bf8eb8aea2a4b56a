# lazy_requests.awk — the requests of CRIU's lazy-pages daemon, from its log (-v4, as ferry runs
# it: lazy-pages.log in the restore's checkpoint directory), one JSON object a request:
#
#   awk -f bench/tools/lazy_requests.awk lazy-pages.log >requests.jsonl
#
#   t          when all its pages had arrived (s, the log's clock: the "uffd_copy" line)
#   bytes      the pages it brought
#   net_ms     from the request ("pr... Read ADDR N pages") to all its pages arrived: the round
#              trip through both relays and the link, and the pages' time on the link
#   in_flight  requests outstanding when it was sent, itself included
#   idle_ms    after its pages arrived, until the next request was sent, when it was the only
#              one outstanding: nothing was on its way, the link idle (UFFDIO_COPY of its pages
#              into the restored process, then the daemon's loop); null when another one was
#              already under way
#
# The last line is a summary: {"summary": 1, requests, bytes, span_s (first request to last
# pages), net_s (sum of net_ms of requests sent with none other outstanding), idle_s}.
function flush(idle) {
	if (have)
		printf "{\"t\": %.6f, \"bytes\": %d, \"net_ms\": %.3f, \"in_flight\": %d, \"idle_ms\": %s}\n",
		    rt, rb, rn, rf, idle
	have = 0
}
function ts() { return substr($1, 2, length($1) - 2) + 0 }
/ Read [0-9a-f]+ [0-9]+ pages$/ {
	t = ts()
	a = $(NF - 2)
	if (first == "")
		first = t
	if (have && inflight == 0) {
		idle += t - rt
		flush(sprintf("%.3f", (t - rt) * 1000))
	} else
		flush("null")
	sent[a] = t
	inflight++
	fl[a] = inflight
	next
}
/ uffd_copy: 0x[0-9a-f]+\/[0-9]+$/ {
	t = ts()
	split($NF, p, "/")
	a = substr(p[1], 3)
	if (!(a in sent))
		next
	flush("null")
	inflight--
	have = 1
	rt = t
	rb = p[2]
	rn = (t - sent[a]) * 1000
	rf = fl[a]
	if (rf == 1)
		net += t - sent[a]
	n++
	bytes += rb
	last = t
	delete sent[a]
	next
}
END {
	flush("null")
	printf "{\"summary\": 1, \"requests\": %d, \"bytes\": %d, \"span_s\": %.3f, \"net_s\": %.3f, \"idle_s\": %.3f}\n",
	    n, bytes, last - first, net, idle
}
