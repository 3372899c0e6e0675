// SPDX-License-Identifier: GPL-2.0
/*
 * softnic datapath: the sender's xmit parses and steers a packet onto a ring
 * of the peer's RX queue; the receiver's NAPI poll builds the RX skb with
 * header split into buffers of that queue's page pool, then frees the
 * sender's skb (which fires the sender's zerocopy completion).
 */
#include <linux/module.h>
#include <linux/etherdevice.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <net/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/highmem.h>
#include <linux/random.h>
#include <linux/dma-direct.h>
#include <net/page_pool/helpers.h>
#include <net/netmem.h>

#include "softnic.h"

/* What xmit learnt about a packet, kept in the sender's skb->cb until the
 * receiver's NAPI builds the RX skb from it.
 */
struct snic_pkt {
	u32 hash;
	u32 seq;
	u32 payload;		/* TCP payload bytes */
	u16 hlen;		/* Ethernet + IP + TCP headers */
	__be16 sport;
	__be16 dport;
	u8 l4proto;		/* IPPROTO_TCP, IPPROTO_UDP, other, or 0 */
	u8 syn:1;
	u8 ip:1;
	u8 v6:1;
};

static inline struct snic_pkt *snic_cb(const struct sk_buff *skb)
{
	BUILD_BUG_ON(sizeof(struct snic_pkt) > sizeof_field(struct sk_buff, cb));
	return (struct snic_pkt *)skb->cb;
}

/* --- fault switches --------------------------------------------------- */

struct snic_faults snic_faults = {
	.refuse_errno = EOPNOTSUPP,
};

static int snic_param_set_uint_atomic(const char *val, const struct kernel_param *kp)
{
	unsigned int n;
	int err = kstrtouint(val, 0, &n);

	if (err)
		return err;
	if (n > INT_MAX)
		return -ERANGE;
	atomic_set(kp->arg, n);
	return 0;
}

static int snic_param_get_uint_atomic(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", atomic_read(kp->arg));
}

static const struct kernel_param_ops snic_atomic_ops = {
	.set = snic_param_set_uint_atomic,
	.get = snic_param_get_uint_atomic,
};

module_param_named(drop_every, snic_faults.drop_every, uint, 0644);
MODULE_PARM_DESC(drop_every, "fault: drop every Nth received TCP segment that carries payload (0: off)");
module_param_named(refuse_5tuple, snic_faults.refuse_5tuple, bool, 0644);
MODULE_PARM_DESC(refuse_5tuple, "fault: refuse ntuple rules that match a source address or port");
module_param_named(refuse_5tuple_errno, snic_faults.refuse_errno, int, 0644);
MODULE_PARM_DESC(refuse_5tuple_errno, "errno returned by refuse_5tuple (default 95, EOPNOTSUPP; 22 is EINVAL)");
module_param_named(pp_fail_pct, snic_faults.pp_fail_pct, uint, 0644);
MODULE_PARM_DESC(pp_fail_pct, "fault: fail this percentage of page-pool allocations (0-100)");
module_param_named(unsplit_every, snic_faults.unsplit_every, uint, 0644);
MODULE_PARM_DESC(unsplit_every, "fault: deliver every Nth TCP segment that header split would split unsplit, payload in the linear area, as a NIC does with a packet it cannot parse (0: off)");
module_param_cb(pp_fail_next, &snic_atomic_ops, &snic_faults.pp_fail_next, 0644);
MODULE_PARM_DESC(pp_fail_next, "fault: fail the next N page-pool allocations");

/* Corrupt one byte of one TCP flow at a stream position (bytes after the
 * sender's ISN + 1). Writing corrupt_dport arms it with the current
 * corrupt_sport and corrupt_offset; the flow is pinned by the first SYN seen
 * afterwards, so arm before connecting.
 */
static struct {
	spinlock_t lock;	/* everything below */
	bool armed;
	bool pinned;
	u16 dport;
	u16 sport;
	__be16 pinned_sport;
	u32 isn;
	u64 offset;
} snic_corrupt = {
	.lock = __SPIN_LOCK_UNLOCKED(snic_corrupt.lock),
};

static unsigned int corrupt_dport;
static unsigned int corrupt_sport;
static unsigned long long corrupt_offset;
static unsigned int corrupted;

static int snic_corrupt_set(const char *val, const struct kernel_param *kp)
{
	unsigned int port;
	int err = kstrtouint(val, 0, &port);

	if (err)
		return err;
	if (port > 65535 || corrupt_sport > 65535)
		return -ERANGE;
	spin_lock_bh(&snic_corrupt.lock);
	corrupt_dport = port;
	snic_corrupt.dport = port;
	snic_corrupt.sport = corrupt_sport;
	snic_corrupt.offset = corrupt_offset;
	snic_corrupt.pinned = false;
	WRITE_ONCE(snic_corrupt.armed, port != 0);
	spin_unlock_bh(&snic_corrupt.lock);
	return 0;
}

static const struct kernel_param_ops snic_corrupt_ops = {
	.set = snic_corrupt_set,
	.get = param_get_uint,
};

module_param_cb(corrupt_dport, &snic_corrupt_ops, &corrupt_dport, 0644);
MODULE_PARM_DESC(corrupt_dport, "fault: TCP destination port of the flow to corrupt; writing it arms the fault (0: off)");
module_param(corrupt_sport, uint, 0644);
MODULE_PARM_DESC(corrupt_sport, "fault: TCP source port of that flow (0: any; write before corrupt_dport)");
module_param(corrupt_offset, ullong, 0644);
MODULE_PARM_DESC(corrupt_offset, "fault: stream position of the byte to corrupt (write before corrupt_dport)");
module_param(corrupted, uint, 0444);
MODULE_PARM_DESC(corrupted, "bytes corrupted since load (read only)");

/* Returns the index in the packet's TCP payload of the byte to corrupt, or
 * -1.
 */
static long snic_corrupt_target(const struct snic_pkt *pk)
{
	long ret = -1;
	u64 pos;

	if (!READ_ONCE(snic_corrupt.armed) || pk->l4proto != IPPROTO_TCP)
		return -1;
	spin_lock(&snic_corrupt.lock);
	if (!snic_corrupt.armed || ntohs(pk->dport) != snic_corrupt.dport ||
	    (snic_corrupt.sport && ntohs(pk->sport) != snic_corrupt.sport))
		goto out;
	if (pk->syn) {
		if (!snic_corrupt.pinned) {
			snic_corrupt.pinned = true;
			snic_corrupt.pinned_sport = pk->sport;
			snic_corrupt.isn = pk->seq;
		}
		goto out;
	}
	if (!snic_corrupt.pinned || pk->sport != snic_corrupt.pinned_sport)
		goto out;
	pos = (u32)(pk->seq - snic_corrupt.isn - 1);
	if (snic_corrupt.offset >= pos && snic_corrupt.offset - pos < pk->payload)
		ret = snic_corrupt.offset - pos;
out:
	spin_unlock(&snic_corrupt.lock);
	return ret;
}

static void snic_corrupt_fired(void)
{
	spin_lock(&snic_corrupt.lock);
	snic_corrupt.armed = false;
	corrupted++;
	spin_unlock(&snic_corrupt.lock);
}

/* --- parsing and steering -------------------------------------------------- */

static void snic_parse(const struct sk_buff *skb, struct snic_pkt *pk, u8 *addrs,
		       unsigned int *alen)
{
	unsigned int l4off;
	struct tcphdr _th;
	const struct tcphdr *th;

	memset(pk, 0, sizeof(*pk));
	*alen = 0;
	if (skb->protocol == htons(ETH_P_IP)) {
		const struct iphdr *iph;
		struct iphdr _iph;

		iph = skb_header_pointer(skb, ETH_HLEN, sizeof(_iph), &_iph);
		if (!iph || iph->ihl < 5)
			return;
		pk->ip = 1;
		memcpy(addrs, &iph->saddr, 8);
		*alen = 8;
		if (ip_is_fragment(iph))
			return;
		pk->l4proto = iph->protocol;
		l4off = ETH_HLEN + iph->ihl * 4;
	} else if (skb->protocol == htons(ETH_P_IPV6)) {
		const struct ipv6hdr *ip6;
		struct ipv6hdr _ip6;

		ip6 = skb_header_pointer(skb, ETH_HLEN, sizeof(_ip6), &_ip6);
		if (!ip6)
			return;
		pk->ip = 1;
		pk->v6 = 1;
		memcpy(addrs, &ip6->saddr, 32);
		*alen = 32;
		pk->l4proto = ip6->nexthdr;	/* extension headers: no L4 */
		l4off = ETH_HLEN + sizeof(*ip6);
	} else {
		return;
	}

	if (pk->l4proto == IPPROTO_UDP) {
		const struct udphdr *uh;
		struct udphdr _uh;

		uh = skb_header_pointer(skb, l4off, sizeof(_uh), &_uh);
		if (!uh) {
			pk->l4proto = 0;
			return;
		}
		pk->sport = uh->source;
		pk->dport = uh->dest;
		return;
	}
	if (pk->l4proto != IPPROTO_TCP)
		return;
	th = skb_header_pointer(skb, l4off, sizeof(_th), &_th);
	if (!th || th->doff < 5 || l4off + th->doff * 4 > skb->len) {
		pk->l4proto = 0;
		return;
	}
	pk->sport = th->source;
	pk->dport = th->dest;
	pk->seq = ntohl(th->seq);
	pk->syn = th->syn;
	pk->hlen = l4off + th->doff * 4;
	pk->payload = skb->len - pk->hlen;
}

/* The Toeplitz hash of @data under @key, as RSS NICs compute it. @len must
 * leave 4 bytes of key beyond the input (len <= SNIC_KEY_SIZE - 4).
 */
u32 snic_toeplitz(const u8 *key, const u8 *data, unsigned int len)
{
	u32 v = get_unaligned_be32(key), hash = 0;
	unsigned int i, b;

	for (i = 0; i < len; i++) {
		for (b = 0; b < 8; b++) {
			if (data[i] & (0x80 >> b))
				hash ^= v;
			v = (v << 1) | ((key[i + 4] >> (7 - b)) & 1);
		}
	}
	return hash;
}

static bool snic_m32(__be32 h, __be32 m, __be32 x)
{
	return !((h ^ x) & m);
}

static bool snic_m16(__be16 h, __be16 m, __be16 x)
{
	return !((h ^ x) & m);
}

static bool snic_rule_match(const struct ethtool_rx_flow_spec *fs,
			    const struct snic_pkt *pk, const u8 *addrs)
{
	u32 ft = fs->flow_type & ~(FLOW_EXT | FLOW_MAC_EXT | FLOW_RSS);
	int i;

	if (pk->l4proto != IPPROTO_TCP)
		return false;
	if (!pk->v6) {
		const struct ethtool_tcpip4_spec *h = &fs->h_u.tcp_ip4_spec;
		const struct ethtool_tcpip4_spec *m = &fs->m_u.tcp_ip4_spec;
		__be32 s, d;

		if (ft != TCP_V4_FLOW)
			return false;
		memcpy(&s, addrs, 4);
		memcpy(&d, addrs + 4, 4);
		return snic_m32(h->ip4src, m->ip4src, s) &&
		       snic_m32(h->ip4dst, m->ip4dst, d) &&
		       snic_m16(h->psrc, m->psrc, pk->sport) &&
		       snic_m16(h->pdst, m->pdst, pk->dport);
	}
	if (ft != TCP_V6_FLOW)
		return false;
	for (i = 0; i < 4; i++) {
		const struct ethtool_tcpip6_spec *h = &fs->h_u.tcp_ip6_spec;
		const struct ethtool_tcpip6_spec *m = &fs->m_u.tcp_ip6_spec;
		__be32 s, d;

		memcpy(&s, addrs + 4 * i, 4);
		memcpy(&d, addrs + 16 + 4 * i, 4);
		if (!snic_m32(h->ip6src[i], m->ip6src[i], s) ||
		    !snic_m32(h->ip6dst[i], m->ip6dst[i], d))
			return false;
	}
	return snic_m16(fs->h_u.tcp_ip6_spec.psrc, fs->m_u.tcp_ip6_spec.psrc, pk->sport) &&
	       snic_m16(fs->h_u.tcp_ip6_spec.pdst, fs->m_u.tcp_ip6_spec.pdst, pk->dport);
}

/* Picks the RX queue of @rx for a packet: the first matching ntuple rule (by
 * location), else the RSS indirection table of the rule's context or of the
 * device. Also computes the RSS hash the RX skb will carry.
 */
static unsigned int snic_steer(struct snic_priv *rx, struct snic_pkt *pk,
			       u8 *addrs, unsigned int alen)
{
	unsigned int nq = READ_ONCE(rx->dev->real_num_rx_queues);
	unsigned int i, ctx = 0;
	long q = -1;

	spin_lock(&rx->steer_lock);
	if (rx->nrules && pk->l4proto == IPPROTO_TCP) {
		for (i = 0; i < SNIC_MAX_RULES; i++) {
			const struct snic_rule *r = &rx->rules[i];

			if (!r->used || !snic_rule_match(&r->fs, pk, addrs))
				continue;
			if (r->fs.flow_type & FLOW_RSS)
				ctx = r->rss_context;
			else
				q = ethtool_get_flow_spec_ring(r->fs.ring_cookie);
			break;
		}
	}
	if (pk->ip) {
		if (pk->l4proto == IPPROTO_TCP || pk->l4proto == IPPROTO_UDP) {
			memcpy(addrs + alen, &pk->sport, 2);
			memcpy(addrs + alen + 2, &pk->dport, 2);
			alen += 4;
		}
		if (ctx >= SNIC_MAX_CTX || !rx->rss[ctx].used)
			ctx = 0;
		pk->hash = snic_toeplitz(rx->rss[ctx].key, addrs, alen);
		if (q < 0)
			q = rx->rss[ctx].indir[pk->hash % SNIC_INDIR_SIZE];
	}
	spin_unlock(&rx->steer_lock);
	if (q < 0 || q >= nq)
		q = 0;
	return q;
}

/* --- transmit ---------------------------------------------------------------- */

static void snic_tx_count(struct snic_txq *tq, unsigned int len, bool drop)
{
	u64_stats_update_begin(&tq->syncp);
	if (drop) {
		tq->st.hw_drops++;
	} else {
		tq->st.packets++;
		tq->st.bytes += len;
	}
	u64_stats_update_end(&tq->syncp);
}

netdev_tx_t snic_xmit(struct sk_buff *skb, struct net_device *dev)
{
	struct snic_priv *p = netdev_priv(dev);
	struct snic_txq *tq = &p->txq[skb_get_queue_mapping(skb)];
	struct net_device *peer = p->peer;
	struct snic_pkt *pk = snic_cb(skb);
	unsigned int len = skb->len, alen;
	struct snic_priv *rp;
	struct snic_rxq *rq;
	u8 addrs[36];

	if (!netif_running(peer) || skb->len < ETH_HLEN)
		goto drop;
	snic_parse(skb, pk, addrs, &alen);
	/* Only TCP and UDP checksums are trusted by the receiver (it marks them
	 * CHECKSUM_UNNECESSARY, as a NIC that verified them would); complete
	 * any other offloaded checksum here.
	 */
	if (skb->ip_summed == CHECKSUM_PARTIAL &&
	    pk->l4proto != IPPROTO_TCP && pk->l4proto != IPPROTO_UDP &&
	    (!skb_frags_readable(skb) || skb_checksum_help(skb)))
		goto drop;

	rp = netdev_priv(peer);
	rq = &rp->rxq[snic_steer(rp, pk, addrs, alen)];
	/* Pairs with the release in snic_rxq_start(). */
	if (!smp_load_acquire(&rq->live))
		goto drop;
	skb_tx_timestamp(skb);
	if (unlikely(ptr_ring_produce(&rq->ring, skb))) {
		atomic64_inc(&rq->overruns);
		snic_tx_count(tq, 0, true);
		dev_kfree_skb_any(skb);
		return NETDEV_TX_OK;
	}
	snic_tx_count(tq, len, false);
	napi_schedule(&rq->napi);
	return NETDEV_TX_OK;
drop:
	snic_tx_count(tq, 0, true);
	dev_kfree_skb_any(skb);
	return NETDEV_TX_OK;
}

/* --- receive ----------------------------------------------------------------- */

/* Copies @len bytes at @off of @src, whose frags may be net_iovs of a devmem
 * TX binding (7.x). Those have no kernel address: with dma-direct and no
 * IOMMU (checked at load) their DMA address is the physical address.
 */
static int snic_copy_bits(const struct sk_buff *src, unsigned int off, u8 *to,
			  unsigned int len)
{
#if SNIC_K7
	unsigned int hl = skb_headlen(src), pos, i;

	if (skb_frags_readable(src))
		return skb_copy_bits(src, off, to, len);
	if (off < hl) {
		unsigned int c = min(len, hl - off);

		memcpy(to, src->data + off, c);
		off += c;
		to += c;
		len -= c;
	}
	pos = hl;
	for (i = 0; len && i < skb_shinfo(src)->nr_frags; i++) {
		const skb_frag_t *f = &skb_shinfo(src)->frags[i];
		unsigned int fs = skb_frag_size(f);

		if (off < pos + fs) {
			unsigned int fo = off - pos, c = min(len, fs - fo);

			if (skb_frag_is_net_iov(f)) {
				phys_addr_t pa;
				unsigned int d = 0;

				pa = dma_to_phys(snic_dma_dev,
						 __skb_frag_dma_map(snic_dma_dev, f, fo, c,
								    DMA_TO_DEVICE));
				while (d < c) {
					unsigned int po = offset_in_page(pa + d);
					unsigned int n = min_t(unsigned int, c - d, PAGE_SIZE - po);
					u8 *va;

					if (!pfn_valid(PHYS_PFN(pa + d)))
						return -EFAULT;
					va = kmap_local_pfn(PHYS_PFN(pa + d));
					memcpy(to + d, va + po, n);
					kunmap_local(va);
					d += n;
				}
			} else {
				memcpy(to, skb_frag_address(f) + fo, c);
			}
			off += c;
			to += c;
			len -= c;
		}
		pos += fs;
	}
	return len ? -EFAULT : 0;
#else
	return skb_copy_bits(src, off, to, len);
#endif
}

/* Writes @len bytes at @off of @src into buffer @nm and flips the byte at
 * packet offset @tgt if it falls in this range.
 */
static int snic_fill(netmem_ref nm, const struct sk_buff *src, unsigned int off,
		     unsigned int len, long tgt)
{
	phys_addr_t pa;
	unsigned int d = 0;

	if (!netmem_is_net_iov(nm)) {
		u8 *va = netmem_address(nm);

		if (snic_copy_bits(src, off, va, len))
			return -EFAULT;
		if (tgt >= off && tgt < off + len)
			va[tgt - off] ^= 0xff;
		return 0;
	}
	pa = dma_to_phys(snic_dma_dev, page_pool_get_dma_addr_netmem(nm));
	while (d < len) {
		unsigned int po = offset_in_page(pa + d);
		unsigned int n = min_t(unsigned int, len - d, PAGE_SIZE - po);
		u8 *va;
		int err;

		if (!pfn_valid(PHYS_PFN(pa + d)))
			return -EFAULT;
		va = kmap_local_pfn(PHYS_PFN(pa + d));
		err = snic_copy_bits(src, off + d, va + po, n);
		if (!err && tgt >= off + d && tgt < off + d + n)
			va[po + tgt - off - d] ^= 0xff;
		kunmap_local(va);
		if (err)
			return err;
		d += n;
	}
	return 0;
}

static netmem_ref snic_pp_alloc(struct snic_rxq *rq)
{
	unsigned int pct = READ_ONCE(snic_faults.pp_fail_pct);

	if ((atomic_read(&snic_faults.pp_fail_next) > 0 &&
	     atomic_dec_if_positive(&snic_faults.pp_fail_next) >= 0) ||
	    (pct && get_random_u32_below(100) < pct)) {
		rq->st.fault_pp++;
		return 0;
	}
#if SNIC_K7
	return page_pool_dev_alloc_netmems(rq->pp);
#else
	return page_pool_alloc_netmems(rq->pp, GFP_ATOMIC | __GFP_NOWARN);
#endif
}

static bool snic_pool_unreadable(struct page_pool *pp)
{
#if SNIC_K7
	return page_pool_is_unreadable(pp);
#else
	return pp->mp_ops;
#endif
}

/* Builds the RX skb for @src in @rq's NAPI context. Returns false when the
 * packet was dropped.
 */
static bool snic_rx_one(struct snic_rxq *rq, struct sk_buff *src)
{
	struct snic_priv *p = netdev_priv(rq->dev);
	const struct snic_pkt *pk = snic_cb(src);
	unsigned int len = src->len, linear, off, i;
	bool tcp_data = pk->l4proto == IPPROTO_TCP && pk->payload;
	bool unreadable = snic_pool_unreadable(rq->pp);
	unsigned int every = READ_ONCE(snic_faults.drop_every);
	unsigned int unsplit = READ_ONCE(snic_faults.unsplit_every);
	long tgt = -1, ci;
	struct sk_buff *skb;
	bool split = false;

	ci = snic_corrupt_target(pk);
	if (ci >= 0)
		tgt = pk->hlen + ci;

	if (tcp_data && every &&
	    (unsigned int)atomic_inc_return(&snic_faults.drop_ctr) % every == 0) {
		rq->st.fault_drop++;
		rq->st.hw_drops++;
		return false;
	}

	if (tcp_data) {
		/* 6.12 has no core check that header split is on for a bound
		 * queue; split there whenever the pool is unreadable, since
		 * headers cannot live in a net_iov.
		 */
		if (READ_ONCE(p->hds_on))
			split = pk->payload > READ_ONCE(p->hds_thresh);
		else if (!SNIC_K7 && unreadable)
			split = true;
		/* A NIC that cannot parse a packet leaves it whole in the
		 * header buffer: on a bound queue its payload then reaches the
		 * socket as ordinary bytes, not as dma-buf frags.
		 */
		if (split && unsplit &&
		    (unsigned int)atomic_inc_return(&snic_faults.unsplit_ctr) % unsplit == 0) {
			split = false;
			rq->st.fault_unsplit++;
			linear = len;
		} else if (split) {
			linear = pk->hlen;
		} else if (unreadable || len <= SNIC_COPYBREAK) {
			linear = len;
		} else {
			linear = pk->hlen;	/* no split: payload in pool pages */
		}
	} else {
		linear = len;
	}

	skb = napi_alloc_skb(&rq->napi, linear);
	if (!skb) {
		rq->st.alloc_fail++;
		return false;
	}
	if (snic_copy_bits(src, 0, skb_put(skb, linear), linear))
		goto drop;
	if (tgt >= 0 && tgt < linear)
		skb->data[tgt] ^= 0xff;
	if (tcp_data && linear > pk->hlen)
		rq->st.linear_payload += linear - pk->hlen;

	if (linear < len) {
		skb_mark_for_recycle(skb);
		for (off = linear, i = 0; off < len; i++) {
			unsigned int c = min(len - off, rq->psize);
			netmem_ref nm;

			if (i >= MAX_SKB_FRAGS)
				goto drop;
			nm = snic_pp_alloc(rq);
			if (!nm) {
				rq->st.alloc_fail++;
				goto drop;
			}
			skb_add_rx_frag_netmem(skb, i, nm, 0, c, rq->psize);
			if (snic_fill(nm, src, off, c, tgt))
				goto drop;
			if (netmem_is_net_iov(nm))
				rq->st.niov_frags++;
			off += c;
		}
		rq->st.split_packets++;
	}
	if (tgt >= 0) {
		snic_corrupt_fired();
		rq->st.fault_corrupt++;
	}

	skb->protocol = eth_type_trans(skb, rq->dev);
	if (pk->l4proto == IPPROTO_TCP || pk->l4proto == IPPROTO_UDP) {
		skb->ip_summed = CHECKSUM_UNNECESSARY;
		rq->st.csum_unnecessary++;
	}
	if (pk->ip)
		skb_set_hash(skb, pk->hash, pk->sport || pk->dport ?
			     PKT_HASH_TYPE_L4 : PKT_HASH_TYPE_L3);
	skb_record_rx_queue(skb, rq->idx);
	rq->st.packets++;
	rq->st.bytes += len;
	napi_gro_receive(&rq->napi, skb);
	return true;
drop:
	kfree_skb(skb);
	return false;
}

int snic_poll(struct napi_struct *napi, int budget)
{
	struct snic_rxq *rq = container_of(napi, struct snic_rxq, napi);
	struct sk_buff *src;
	int done = 0;

	u64_stats_update_begin(&rq->syncp);
	while (done < budget && (src = ptr_ring_consume(&rq->ring))) {
		if (snic_rx_one(rq, src))
			napi_consume_skb(src, budget);
		else
			kfree_skb(src);
		done++;
	}
	u64_stats_update_end(&rq->syncp);

	if (done < budget && napi_complete_done(napi, done)) {
		/* A packet queued after the last consume, whose sender saw
		 * NAPI still scheduled, would otherwise wait for the next one.
		 */
		smp_mb();
		if (!__ptr_ring_empty(&rq->ring))
			napi_schedule(napi);
	}
	return done;
}

void snic_purge_ring(struct snic_rxq *rq)
{
	struct sk_buff *skb;

	while ((skb = ptr_ring_consume_bh(&rq->ring)))
		kfree_skb(skb);
}
