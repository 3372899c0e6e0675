// SPDX-License-Identifier: GPL-2.0
/*
 * softnic ethtool ops: channels, rings (tcp-data-split, hds-thresh), ntuple
 * rules, RSS (key, indirection table, contexts) and device counters.
 */
#include <linux/module.h>
#include <linux/etherdevice.h>
#include <linux/random.h>
#include <linux/ethtool_netlink.h>

#include "softnic.h"

void snic_rss_init(struct snic_priv *p, unsigned int nq)
{
	unsigned int i;

	spin_lock_bh(&p->steer_lock);
	if (!p->rss[0].used) {
		netdev_rss_key_fill(p->rss[0].key, SNIC_KEY_SIZE);
		p->rss[0].used = true;
	}
	for (i = 0; i < SNIC_INDIR_SIZE; i++)
		p->rss[0].indir[i] = ethtool_rxfh_indir_default(i, nq);
	spin_unlock_bh(&p->steer_lock);
}

static void snic_get_drvinfo(struct net_device *dev, struct ethtool_drvinfo *info)
{
	strscpy(info->driver, SNIC_DRV_NAME, sizeof(info->driver));
	strscpy(info->bus_info, SNIC_DRV_NAME, sizeof(info->bus_info));
}

static u32 snic_get_link(struct net_device *dev)
{
	return netif_carrier_ok(dev);
}

/* --- channels -------------------------------------------------------------- */

static void snic_get_channels(struct net_device *dev, struct ethtool_channels *ch)
{
	ch->max_combined = SNIC_MAX_QUEUES;
	ch->combined_count = dev->real_num_rx_queues;
}

static int snic_set_channels(struct net_device *dev, struct ethtool_channels *ch)
{
	if (!ch->combined_count || ch->rx_count || ch->tx_count || ch->other_count)
		return -EINVAL;
	return snic_set_queue_count(dev, ch->combined_count);
}

/* --- rings ----------------------------------------------------------------- */

/* Frees a packet that no longer fits a shrunk ring. */
static void snic_ring_drop(void *skb)
{
	kfree_skb(skb);
}

static void snic_get_ringparam(struct net_device *dev, struct ethtool_ringparam *r,
			       struct kernel_ethtool_ringparam *kr,
			       struct netlink_ext_ack *extack)
{
	struct snic_priv *p = netdev_priv(dev);

	r->rx_max_pending = SNIC_MAX_RING;
	r->rx_pending = p->ring_size;
#if SNIC_K7
	/* The core reports tcp-data-split and hds-thresh from dev->cfg. */
	kr->hds_thresh_max = SNIC_MAX_HDS_THRESH;
#else
	kr->tcp_data_split = p->hds_on ? ETHTOOL_TCP_DATA_SPLIT_ENABLED :
					 ETHTOOL_TCP_DATA_SPLIT_DISABLED;
#endif
}

static int snic_set_ringparam(struct net_device *dev, struct ethtool_ringparam *r,
			      struct kernel_ethtool_ringparam *kr,
			      struct netlink_ext_ack *extack)
{
	struct snic_priv *p = netdev_priv(dev);
	unsigned int i;
	int err;

	if (r->rx_pending < SNIC_MIN_RING) {
		NL_SET_ERR_MSG_FMT(extack, "softnic: rx ring size must be at least %u",
				   SNIC_MIN_RING);
		return -EINVAL;
	}
	if (r->rx_pending != p->ring_size) {
		/* Resized in place: packets beyond the new size are dropped,
		 * which completes their senders' skbs.
		 */
		for (i = 0; i < SNIC_MAX_QUEUES; i++) {
			err = ptr_ring_resize(&p->rxq[i].ring, r->rx_pending, GFP_KERNEL,
					      snic_ring_drop);
			if (err)
				return err;
		}
		p->ring_size = r->rx_pending;
	}
	WRITE_ONCE(p->hds_on, kr->tcp_data_split == ETHTOOL_TCP_DATA_SPLIT_ENABLED);
#if SNIC_K7
	WRITE_ONCE(p->hds_thresh, kr->hds_thresh);
#endif
	return 0;
}

/* --- ntuple rules ---------------------------------------------------------- */

static bool snic_rss_ctx_exists(struct snic_priv *p, u32 ctx)
{
	return ctx < SNIC_MAX_CTX && p->rss[ctx].used;
}

static int snic_get_rxnfc(struct net_device *dev, struct ethtool_rxnfc *info,
			  u32 *locs)
{
	struct snic_priv *p = netdev_priv(dev);
	unsigned int i, n = 0;
	int ret = 0;

	spin_lock_bh(&p->steer_lock);
	switch (info->cmd) {
	case ETHTOOL_GRXRINGS:
		info->data = dev->real_num_rx_queues;
		break;
	case ETHTOOL_GRXCLSRLCNT:
		info->rule_cnt = p->nrules;
		info->data = SNIC_MAX_RULES | RX_CLS_LOC_SPECIAL;
		break;
	case ETHTOOL_GRXCLSRULE:
		i = info->fs.location;
		if (i >= SNIC_MAX_RULES || !p->rules[i].used) {
			ret = -ENOENT;
			break;
		}
		info->fs = p->rules[i].fs;
		info->rss_context = p->rules[i].rss_context;
		break;
	case ETHTOOL_GRXCLSRLALL:
		for (i = 0; i < SNIC_MAX_RULES; i++) {
			if (!p->rules[i].used)
				continue;
			if (n == info->rule_cnt) {
				ret = -EMSGSIZE;
				break;
			}
			locs[n++] = i;
		}
		info->data = SNIC_MAX_RULES;
		info->rule_cnt = n;
		break;
	default:
		ret = -EOPNOTSUPP;
	}
	spin_unlock_bh(&p->steer_lock);
	return ret;
}

static bool snic_has_source(const struct ethtool_rx_flow_spec *fs)
{
	u32 ft = fs->flow_type & ~(FLOW_EXT | FLOW_MAC_EXT | FLOW_RSS);
	int i;

	if (ft == TCP_V4_FLOW)
		return fs->m_u.tcp_ip4_spec.ip4src || fs->m_u.tcp_ip4_spec.psrc;
	for (i = 0; i < 4; i++)
		if (fs->m_u.tcp_ip6_spec.ip6src[i])
			return true;
	return fs->m_u.tcp_ip6_spec.psrc;
}

static int snic_ins_rule(struct net_device *dev, struct ethtool_rxnfc *info)
{
	struct snic_priv *p = netdev_priv(dev);
	struct ethtool_rx_flow_spec *fs = &info->fs;
	u32 ft = fs->flow_type & ~FLOW_RSS;
	u32 loc = fs->location;
	bool rss = fs->flow_type & FLOW_RSS;

	if (ft != TCP_V4_FLOW && ft != TCP_V6_FLOW)
		return -EOPNOTSUPP;
	if (ft == TCP_V4_FLOW && fs->m_u.tcp_ip4_spec.tos)
		return -EOPNOTSUPP;
	if (ft == TCP_V6_FLOW && fs->m_u.tcp_ip6_spec.tclass)
		return -EOPNOTSUPP;
	if (fs->ring_cookie == RX_CLS_FLOW_DISC ||
	    ethtool_get_flow_spec_ring_vf(fs->ring_cookie))
		return -EOPNOTSUPP;
	if (rss) {
		if (!snic_rss_ctx_exists(p, info->rss_context))
			return -EINVAL;
	} else if (ethtool_get_flow_spec_ring(fs->ring_cookie) >= dev->real_num_rx_queues) {
		return -EINVAL;
	}
	if (READ_ONCE(snic_faults.refuse_5tuple) && snic_has_source(fs)) {
		int e = READ_ONCE(snic_faults.refuse_errno);

		return e > 0 && e < MAX_ERRNO ? -e : -EOPNOTSUPP;
	}

	if (loc == RX_CLS_LOC_ANY || loc == RX_CLS_LOC_FIRST) {
		for (loc = 0; loc < SNIC_MAX_RULES && p->rules[loc].used; loc++)
			;
	} else if (loc == RX_CLS_LOC_LAST) {
		for (loc = SNIC_MAX_RULES; loc > 0 && p->rules[loc - 1].used; loc--)
			;
		loc = loc ? loc - 1 : SNIC_MAX_RULES;
	}
	if (loc >= SNIC_MAX_RULES)
		return (fs->location & RX_CLS_LOC_SPECIAL) ? -ENOSPC : -EINVAL;

	fs->location = loc;
	if (!p->rules[loc].used)
		p->nrules++;
	p->rules[loc].fs = *fs;
	p->rules[loc].rss_context = rss ? info->rss_context : 0;
	p->rules[loc].used = true;
	return 0;
}

static int snic_set_rxnfc(struct net_device *dev, struct ethtool_rxnfc *info)
{
	struct snic_priv *p = netdev_priv(dev);
	u32 loc = info->fs.location;
	int ret;

	spin_lock_bh(&p->steer_lock);
	switch (info->cmd) {
	case ETHTOOL_SRXCLSRLINS:
		ret = snic_ins_rule(dev, info);
		break;
	case ETHTOOL_SRXCLSRLDEL:
		if (loc >= SNIC_MAX_RULES || !p->rules[loc].used) {
			ret = -ENOENT;
			break;
		}
		p->rules[loc].used = false;
		p->nrules--;
		ret = 0;
		break;
	default:
		ret = -EOPNOTSUPP;
	}
	spin_unlock_bh(&p->steer_lock);
	return ret;
}

/* --- RSS ------------------------------------------------------------------- */

#if SNIC_K7
static u32 snic_get_rx_ring_count(struct net_device *dev)
{
	return dev->real_num_rx_queues;
}
#endif

static u32 snic_get_rxfh_key_size(struct net_device *dev)
{
	return SNIC_KEY_SIZE;
}

static u32 snic_get_rxfh_indir_size(struct net_device *dev)
{
	return SNIC_INDIR_SIZE;
}

static int snic_get_rxfh(struct net_device *dev, struct ethtool_rxfh_param *rxfh)
{
	struct snic_priv *p = netdev_priv(dev);

	rxfh->hfunc = ETH_RSS_HASH_TOP;
	spin_lock_bh(&p->steer_lock);
	if (rxfh->indir)
		memcpy(rxfh->indir, p->rss[0].indir, sizeof(p->rss[0].indir));
	if (rxfh->key)
		memcpy(rxfh->key, p->rss[0].key, SNIC_KEY_SIZE);
	spin_unlock_bh(&p->steer_lock);
	return 0;
}

static int snic_check_rxfh(const struct ethtool_rxfh_param *rxfh,
			   struct netlink_ext_ack *extack)
{
	if (rxfh->hfunc != ETH_RSS_HASH_NO_CHANGE && rxfh->hfunc != ETH_RSS_HASH_TOP) {
		NL_SET_ERR_MSG(extack, "softnic: only the Toeplitz hash function is supported");
		return -EOPNOTSUPP;
	}
	if (rxfh->input_xfrm && rxfh->input_xfrm != RXH_XFRM_NO_CHANGE) {
		NL_SET_ERR_MSG(extack, "softnic: no RSS input transformation is supported");
		return -EOPNOTSUPP;
	}
	return 0;
}

static void snic_apply_rxfh(struct snic_priv *p, u32 ctx,
			    const struct ethtool_rxfh_param *rxfh)
{
	spin_lock_bh(&p->steer_lock);
	if (rxfh->indir)
		memcpy(p->rss[ctx].indir, rxfh->indir, sizeof(p->rss[ctx].indir));
	if (rxfh->key)
		memcpy(p->rss[ctx].key, rxfh->key, SNIC_KEY_SIZE);
	spin_unlock_bh(&p->steer_lock);
}

static int snic_set_rxfh(struct net_device *dev, struct ethtool_rxfh_param *rxfh,
			 struct netlink_ext_ack *extack)
{
	int err = snic_check_rxfh(rxfh, extack);

	if (err)
		return err;
	snic_apply_rxfh(netdev_priv(dev), 0, rxfh);
	return 0;
}

static int snic_create_rxfh_context(struct net_device *dev,
				    struct ethtool_rxfh_context *ctx,
				    const struct ethtool_rxfh_param *rxfh,
				    struct netlink_ext_ack *extack)
{
	struct snic_priv *p = netdev_priv(dev);
	u32 id = rxfh->rss_context, i;
	int err;

	if (id == 0 || id >= SNIC_MAX_CTX)
		return -EINVAL;
	err = snic_check_rxfh(rxfh, extack);
	if (err)
		return err;
	spin_lock_bh(&p->steer_lock);
	/* Defaults, as the core expects the driver to fill what is unset. */
	for (i = 0; i < SNIC_INDIR_SIZE; i++)
		p->rss[id].indir[i] = ethtool_rxfh_indir_default(i, dev->real_num_rx_queues);
	memcpy(p->rss[id].key, p->rss[0].key, SNIC_KEY_SIZE);
	p->rss[id].used = true;
	spin_unlock_bh(&p->steer_lock);
	snic_apply_rxfh(p, id, rxfh);

	spin_lock_bh(&p->steer_lock);
	if (!rxfh->indir)
		memcpy(ethtool_rxfh_context_indir(ctx), p->rss[id].indir,
		       sizeof(p->rss[id].indir));
	if (!rxfh->key)
		memcpy(ethtool_rxfh_context_key(ctx), p->rss[id].key, SNIC_KEY_SIZE);
	spin_unlock_bh(&p->steer_lock);
	if (rxfh->hfunc == ETH_RSS_HASH_NO_CHANGE)
		ctx->hfunc = ETH_RSS_HASH_TOP;
	if (rxfh->input_xfrm == RXH_XFRM_NO_CHANGE)
		ctx->input_xfrm = 0;
	return 0;
}

static int snic_modify_rxfh_context(struct net_device *dev,
				    struct ethtool_rxfh_context *ctx,
				    const struct ethtool_rxfh_param *rxfh,
				    struct netlink_ext_ack *extack)
{
	struct snic_priv *p = netdev_priv(dev);
	u32 id = rxfh->rss_context;
	int err;

	if (!snic_rss_ctx_exists(p, id) || id == 0)
		return -EINVAL;
	err = snic_check_rxfh(rxfh, extack);
	if (err)
		return err;
	snic_apply_rxfh(p, id, rxfh);
	return 0;
}

static int snic_remove_rxfh_context(struct net_device *dev,
				    struct ethtool_rxfh_context *ctx, u32 id,
				    struct netlink_ext_ack *extack)
{
	struct snic_priv *p = netdev_priv(dev);
	unsigned int i;

	if (!snic_rss_ctx_exists(p, id) || id == 0)
		return -EINVAL;
	spin_lock_bh(&p->steer_lock);
	/* Rules that use the context fall back to the device's table. */
	for (i = 0; i < SNIC_MAX_RULES; i++)
		if (p->rules[i].used && p->rules[i].rss_context == id)
			p->rules[i].rss_context = 0;
	p->rss[id].used = false;
	spin_unlock_bh(&p->steer_lock);
	return 0;
}

static int snic_get_rxfh_fields(struct net_device *dev, struct ethtool_rxfh_fields *f)
{
	switch (f->flow_type) {
	case TCP_V4_FLOW:
	case TCP_V6_FLOW:
	case UDP_V4_FLOW:
	case UDP_V6_FLOW:
		f->data = RXH_IP_SRC | RXH_IP_DST | RXH_L4_B_0_1 | RXH_L4_B_2_3;
		break;
	case IPV4_FLOW:
	case IPV6_FLOW:
		f->data = RXH_IP_SRC | RXH_IP_DST;
		break;
	default:
		f->data = 0;
	}
	return 0;
}

/* --- device counters (ethtool -S) ------------------------------------------ */

static const char snic_stat_names[][ETH_GSTRING_LEN] = {
	"rx_packets",
	"rx_bytes",
	"rx_alloc_fail",
	"rx_hw_drops",
	"rx_overruns",
	"rx_split_packets",
	"rx_niov_frags",
	"rx_linear_payload_bytes",
	"rx_fault_corrupt",
	"rx_fault_drop",
	"rx_fault_pp_fail",
	"rx_fault_unsplit",
	"tx_packets",
	"tx_bytes",
	"tx_drops",
};

static int snic_get_sset_count(struct net_device *dev, int sset)
{
	return sset == ETH_SS_STATS ? ARRAY_SIZE(snic_stat_names) : -EOPNOTSUPP;
}

static void snic_get_strings(struct net_device *dev, u32 sset, u8 *data)
{
	if (sset == ETH_SS_STATS)
		memcpy(data, snic_stat_names, sizeof(snic_stat_names));
}

/* Totals over the device's life: live queues plus queues removed earlier. */
static void snic_get_ethtool_stats(struct net_device *dev, struct ethtool_stats *es,
				   u64 *data)
{
	struct snic_priv *p = netdev_priv(dev);
	struct snic_rx_stats r = p->base_rx;
	struct snic_tx_stats t = p->base_tx;
	u64 overruns = p->base_overruns;
	unsigned int i;

	for (i = 0; i < SNIC_MAX_QUEUES; i++) {
		struct snic_rx_stats rs;
		struct snic_tx_stats ts;

		snic_rx_stats_read(&p->rxq[i], &rs);
		snic_tx_stats_read(&p->txq[i], &ts);
		r.packets += rs.packets;
		r.bytes += rs.bytes;
		r.alloc_fail += rs.alloc_fail;
		r.hw_drops += rs.hw_drops;
		r.split_packets += rs.split_packets;
		r.niov_frags += rs.niov_frags;
		r.linear_payload += rs.linear_payload;
		r.fault_corrupt += rs.fault_corrupt;
		r.fault_drop += rs.fault_drop;
		r.fault_pp += rs.fault_pp;
		r.fault_unsplit += rs.fault_unsplit;
		overruns += atomic64_read(&p->rxq[i].overruns);
		t.packets += ts.packets;
		t.bytes += ts.bytes;
		t.hw_drops += ts.hw_drops;
	}
	*data++ = r.packets;
	*data++ = r.bytes;
	*data++ = r.alloc_fail;
	*data++ = r.hw_drops;
	*data++ = overruns;
	*data++ = r.split_packets;
	*data++ = r.niov_frags;
	*data++ = r.linear_payload;
	*data++ = r.fault_corrupt;
	*data++ = r.fault_drop;
	*data++ = r.fault_pp;
	*data++ = r.fault_unsplit;
	*data++ = t.packets;
	*data++ = t.bytes;
	*data++ = t.hw_drops;
}

const struct ethtool_ops snic_ethtool_ops = {
#if SNIC_K7
	.supported_ring_params	= ETHTOOL_RING_USE_TCP_DATA_SPLIT |
				  ETHTOOL_RING_USE_HDS_THRS,
	/* netif_set_real_num_queues() needs RTNL as well as the instance lock. */
	.op_needs_rtnl		= ETHTOOL_OP_NEEDS_RTNL_SCHANNELS,
	.get_rx_ring_count	= snic_get_rx_ring_count,
#else
	.supported_ring_params	= ETHTOOL_RING_USE_TCP_DATA_SPLIT,
#endif
	.rxfh_max_num_contexts	= SNIC_MAX_CTX,
	.get_drvinfo		= snic_get_drvinfo,
	.get_link		= snic_get_link,
	.get_channels		= snic_get_channels,
	.set_channels		= snic_set_channels,
	.get_ringparam		= snic_get_ringparam,
	.set_ringparam		= snic_set_ringparam,
	.get_rxnfc		= snic_get_rxnfc,
	.set_rxnfc		= snic_set_rxnfc,
	.get_rxfh_key_size	= snic_get_rxfh_key_size,
	.get_rxfh_indir_size	= snic_get_rxfh_indir_size,
	.get_rxfh		= snic_get_rxfh,
	.set_rxfh		= snic_set_rxfh,
	.get_rxfh_fields	= snic_get_rxfh_fields,
	.create_rxfh_context	= snic_create_rxfh_context,
	.modify_rxfh_context	= snic_modify_rxfh_context,
	.remove_rxfh_context	= snic_remove_rxfh_context,
	.get_sset_count		= snic_get_sset_count,
	.get_strings		= snic_get_strings,
	.get_ethtool_stats	= snic_get_ethtool_stats,
};
