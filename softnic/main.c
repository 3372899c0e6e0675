// SPDX-License-Identifier: GPL-2.0
/*
 * softnic: module setup, the parent DMA device, netdev and queue lifetime,
 * queue management and per-queue statistics.
 */
#include <linux/module.h>
#include <linux/etherdevice.h>
#include <linux/platform_device.h>
#include <linux/dma-mapping.h>
#include <linux/dma-direct.h>
#include <linux/iommu.h>
#include <linux/swiotlb.h>
#include <net/page_pool/helpers.h>
#include <net/netdev_rx_queue.h>

#include "softnic.h"
#if SNIC_K7
#include <net/netdev_lock.h>
#endif

static unsigned int pairs = 1;
module_param(pairs, uint, 0444);
MODULE_PARM_DESC(pairs, "number of netdev pairs: snic0/snic1, snic2/snic3, ... (1-16)");

static struct platform_device *snic_pdev;
struct device *snic_dma_dev;
static struct net_device **snic_devs;
static unsigned int snic_ndevs;

static void snic_napi_add(struct net_device *dev, struct napi_struct *napi,
			  unsigned int idx)
{
#if SNIC_K7
	/* Persistent NAPI config: the NAPI id of a queue survives restarts. */
	netif_napi_add_config_locked(dev, napi, snic_poll, idx);
#else
	netif_napi_add(dev, napi, snic_poll);
#endif
}

static void snic_napi_enable(struct napi_struct *napi)
{
#if SNIC_K7
	napi_enable_locked(napi);
#else
	napi_enable(napi);
#endif
}

static void snic_napi_disable(struct napi_struct *napi)
{
#if SNIC_K7
	napi_disable_locked(napi);
#else
	napi_disable(napi);
#endif
}

static void snic_napi_del(struct napi_struct *napi)
{
#if SNIC_K7
	netif_napi_del_locked(napi);
#else
	netif_napi_del(napi);
#endif
}

/* --- page pools and queues ------------------------------------------------ */

int snic_make_pool(struct net_device *dev, unsigned int idx, u32 psize,
		   struct page_pool **out)
{
	struct snic_priv *p = netdev_priv(dev);
	struct page_pool_params pp = {
		.flags = PP_FLAG_DMA_MAP | PP_FLAG_DMA_SYNC_DEV |
			 PP_FLAG_ALLOW_UNREADABLE_NETMEM,
		.order = ilog2(psize) - PAGE_SHIFT,
		.pool_size = p->ring_size,
		.nid = NUMA_NO_NODE,
		.dev = snic_dma_dev,
		.netdev = dev,
		.queue_idx = idx,
		.napi = &p->rxq[idx].napi,
		.dma_dir = DMA_FROM_DEVICE,
		.max_len = psize,
	};
	struct page_pool *pool;

	pool = page_pool_create(&pp);
	if (IS_ERR(pool))
		return PTR_ERR(pool);
	*out = pool;
	return 0;
}

static u32 snic_queue_psize(struct net_device *dev, unsigned int idx)
{
#if SNIC_K7
	struct netdev_queue_config qcfg;

	netdev_queue_config(dev, idx, &qcfg);
	if (qcfg.rx_page_size)
		return qcfg.rx_page_size;
#endif
	return PAGE_SIZE;
}

/* Starts RX queue @idx with pool @pp. Called with the instance lock (7.x) or
 * RTNL (6.12) held.
 */
int snic_rxq_start(struct snic_priv *p, unsigned int idx, struct page_pool *pp,
		   u32 psize)
{
	struct snic_rxq *rq = &p->rxq[idx];
	struct net_device *dev = p->dev;

	rq->pp = pp;
	rq->psize = psize;
	if (!rq->napi_added) {
		snic_napi_add(dev, &rq->napi, idx);
		rq->napi_added = true;
	}
	snic_napi_enable(&rq->napi);
	netif_queue_set_napi(dev, idx, NETDEV_QUEUE_TYPE_RX, &rq->napi);
	netif_queue_set_napi(dev, idx, NETDEV_QUEUE_TYPE_TX, &rq->napi);
	/* Pairs with the acquire in snic_xmit(). */
	smp_store_release(&rq->live, true);
	return 0;
}

/* Stops RX queue @idx: no new packets, NAPI quiesced, ring purged (which
 * completes the senders' skbs). Returns its pool, which the caller frees.
 */
struct page_pool *snic_rxq_stop(struct snic_priv *p, unsigned int idx)
{
	struct snic_rxq *rq = &p->rxq[idx];
	struct net_device *dev = p->dev;
	struct page_pool *pp = rq->pp;

	if (!rq->live)
		return NULL;
	WRITE_ONCE(rq->live, false);
	/* Wait for senders that saw the queue live (xmit runs in an RCU-BH
	 * read-side section).
	 */
	synchronize_net();
	netif_queue_set_napi(dev, idx, NETDEV_QUEUE_TYPE_RX, NULL);
	netif_queue_set_napi(dev, idx, NETDEV_QUEUE_TYPE_TX, NULL);
	snic_napi_disable(&rq->napi);
	/* The pool names this NAPI (pp.napi): no direct recycling from here on. */
	if (pp)
		page_pool_disable_direct_recycling(pp);
	snic_purge_ring(rq);
	rq->pp = NULL;
	return pp;
}

static void snic_rxq_del(struct snic_priv *p, unsigned int idx)
{
	struct snic_rxq *rq = &p->rxq[idx];

	if (rq->napi_added) {
		snic_napi_del(&rq->napi);
		rq->napi_added = false;
	}
}

static int snic_open_queue(struct snic_priv *p, unsigned int idx)
{
	u32 psize = snic_queue_psize(p->dev, idx);
	struct page_pool *pp;
	int err;

	if (!p->rxq[idx].napi_added) {
		snic_napi_add(p->dev, &p->rxq[idx].napi, idx);
		p->rxq[idx].napi_added = true;
	}
	err = snic_make_pool(p->dev, idx, psize, &pp);
	if (err) {
		snic_rxq_del(p, idx);
		return err;
	}
	return snic_rxq_start(p, idx, pp, psize);
}

static void snic_close_queue(struct snic_priv *p, unsigned int idx)
{
	struct page_pool *pp = snic_rxq_stop(p, idx);

	snic_rxq_del(p, idx);
	if (pp)
		page_pool_destroy(pp);
}

static void snic_carrier_update(struct net_device *dev)
{
	struct snic_priv *p = netdev_priv(dev);
	struct net_device *peer = p->peer;

	if (netif_running(dev) && netif_running(peer)) {
		netif_carrier_on(dev);
		netif_carrier_on(peer);
	} else {
		netif_carrier_off(dev);
		netif_carrier_off(peer);
	}
}

static int snic_open(struct net_device *dev)
{
	struct snic_priv *p = netdev_priv(dev);
	unsigned int i;
	int err;

	for (i = 0; i < dev->real_num_rx_queues; i++) {
		err = snic_open_queue(p, i);
		if (err) {
			while (i--)
				snic_close_queue(p, i);
			return err;
		}
	}
	netif_tx_start_all_queues(dev);
	snic_carrier_update(dev);
	return 0;
}

static int snic_stop(struct net_device *dev)
{
	struct snic_priv *p = netdev_priv(dev);
	unsigned int i;

	netif_carrier_off(dev);
	netif_carrier_off(p->peer);
	netif_tx_stop_all_queues(dev);
	for (i = 0; i < SNIC_MAX_QUEUES; i++)
		snic_close_queue(p, i);
	return 0;
}

static void snic_fold_rx(struct snic_rx_stats *to, const struct snic_rx_stats *s)
{
	to->packets += s->packets;
	to->bytes += s->bytes;
	to->alloc_fail += s->alloc_fail;
	to->hw_drops += s->hw_drops;
	to->csum_unnecessary += s->csum_unnecessary;
	to->split_packets += s->split_packets;
	to->niov_frags += s->niov_frags;
	to->linear_payload += s->linear_payload;
	to->fault_corrupt += s->fault_corrupt;
	to->fault_drop += s->fault_drop;
	to->fault_pp += s->fault_pp;
	to->fault_unsplit += s->fault_unsplit;
}

/* Changes the number of combined channels. Queues beyond the new count are
 * stopped and their counters folded into the base; new queues are started
 * when the device is up. The RSS table follows unless the user set one.
 */
int snic_set_queue_count(struct net_device *dev, unsigned int n)
{
	struct snic_priv *p = netdev_priv(dev);
	unsigned int old = dev->real_num_rx_queues, i;
	int err;

	if (n == old)
		return 0;
	if (n < old) {
		for (i = n; i < old; i++) {
			struct snic_rx_stats rs;
			struct snic_tx_stats ts;

			snic_close_queue(p, i);
			snic_rx_stats_read(&p->rxq[i], &rs);
			snic_fold_rx(&p->base_rx, &rs);
			p->base_overruns += atomic64_xchg(&p->rxq[i].overruns, 0);
			memset(&p->rxq[i].st, 0, sizeof(p->rxq[i].st));
			snic_tx_stats_read(&p->txq[i], &ts);
			p->base_tx.packets += ts.packets;
			p->base_tx.bytes += ts.bytes;
			p->base_tx.hw_drops += ts.hw_drops;
			memset(&p->txq[i].st, 0, sizeof(p->txq[i].st));
		}
		err = netif_set_real_num_queues(dev, n, n);
		if (err)
			return err;
	} else {
		err = netif_set_real_num_queues(dev, n, n);
		if (err)
			return err;
		if (netif_running(dev)) {
			for (i = old; i < n; i++) {
				err = snic_open_queue(p, i);
				if (err) {
					while (i-- > old)
						snic_close_queue(p, i);
					netif_set_real_num_queues(dev, old, old);
					return err;
				}
			}
		}
	}
	if (!netif_is_rxfh_configured(dev))
		snic_rss_init(p, n);
	return 0;
}

/* --- queue management ops -------------------------------------------------- */

#if SNIC_K7
static int snic_qmem_alloc(struct net_device *dev, struct netdev_queue_config *qcfg,
			   void *mem, int idx)
{
	struct snic_qmem *m = mem;

	m->psize = qcfg->rx_page_size ? qcfg->rx_page_size : PAGE_SIZE;
	return snic_make_pool(dev, idx, m->psize, &m->pp);
}
#else
static int snic_qmem_alloc(struct net_device *dev, void *mem, int idx)
{
	struct snic_priv *p = netdev_priv(dev);
	struct snic_qmem *m = mem;

	/* 6.12's core does not check header split before installing a memory
	 * provider (7.x refuses "tcp-data-split is disabled"); refuse here, as
	 * a NIC that cannot put headers into unreadable buffers would.
	 */
	if (__netif_get_rx_queue(dev, idx)->mp_params.mp_priv && !READ_ONCE(p->hds_on)) {
		netdev_err(dev, "rx queue %d: a memory provider needs tcp-data-split on\n", idx);
		return -EINVAL;
	}
	m->psize = PAGE_SIZE;
	return snic_make_pool(dev, idx, m->psize, &m->pp);
}
#endif

static void snic_qmem_free(struct net_device *dev, void *mem)
{
	struct snic_qmem *m = mem;

	if (m->pp)
		page_pool_destroy(m->pp);
	m->pp = NULL;
}

static int snic_qstop(struct net_device *dev, void *mem, int idx)
{
	struct snic_priv *p = netdev_priv(dev);
	struct snic_qmem *m = mem;

	m->psize = p->rxq[idx].psize;
	m->pp = snic_rxq_stop(p, idx);
	return 0;
}

static int snic_qstart_common(struct net_device *dev, void *mem, int idx)
{
	struct snic_priv *p = netdev_priv(dev);
	struct snic_qmem *m = mem;
	int err;

	/* 6.12 restarts queues of a device that is down too; its pools are
	 * created by ndo_open then.
	 */
	if (!netif_running(dev)) {
		snic_qmem_free(dev, mem);
		return 0;
	}
	err = snic_rxq_start(p, idx, m->pp, m->psize);
	if (err)
		return err;
	m->pp = NULL;	/* owned by the queue now */
	local_bh_disable();
	napi_schedule(&p->rxq[idx].napi);
	local_bh_enable();
	return 0;
}

#if SNIC_K7
static int snic_qstart(struct net_device *dev, struct netdev_queue_config *qcfg,
		       void *mem, int idx)
{
	return snic_qstart_common(dev, mem, idx);
}

static void snic_default_qcfg(struct net_device *dev, struct netdev_queue_config *qcfg)
{
	qcfg->rx_page_size = PAGE_SIZE;
}

static int snic_validate_qcfg(struct net_device *dev, struct netdev_queue_config *qcfg,
			      struct netlink_ext_ack *extack)
{
	u32 s = qcfg->rx_page_size;

	if (s && (!is_power_of_2(s) || s < PAGE_SIZE || s > SZ_64K)) {
		NL_SET_ERR_MSG_FMT(extack,
				   "softnic: rx-page-size %u is not a power of two from %lu to 65536",
				   s, PAGE_SIZE);
		return -EINVAL;
	}
	return 0;
}
#else
static int snic_qstart(struct net_device *dev, void *mem, int idx)
{
	return snic_qstart_common(dev, mem, idx);
}
#endif

static const struct netdev_queue_mgmt_ops snic_queue_ops = {
	.ndo_queue_mem_size	= sizeof(struct snic_qmem),
	.ndo_queue_mem_alloc	= snic_qmem_alloc,
	.ndo_queue_mem_free	= snic_qmem_free,
	.ndo_queue_start	= snic_qstart,
	.ndo_queue_stop		= snic_qstop,
#if SNIC_K7
	.ndo_default_qcfg	= snic_default_qcfg,
	.ndo_validate_qcfg	= snic_validate_qcfg,
	.supported_params	= QCFG_RX_PAGE_SIZE,
#endif
};

/* --- statistics ------------------------------------------------------------ */

void snic_rx_stats_read(struct snic_rxq *rq, struct snic_rx_stats *s)
{
	unsigned int start;

	do {
		start = u64_stats_fetch_begin(&rq->syncp);
		*s = rq->st;
	} while (u64_stats_fetch_retry(&rq->syncp, start));
}

void snic_tx_stats_read(struct snic_txq *tq, struct snic_tx_stats *s)
{
	unsigned int start;

	do {
		start = u64_stats_fetch_begin(&tq->syncp);
		*s = tq->st;
	} while (u64_stats_fetch_retry(&tq->syncp, start));
}

static void snic_qstats_rx(struct net_device *dev, int idx,
			   struct netdev_queue_stats_rx *rx)
{
	struct snic_priv *p = netdev_priv(dev);
	struct snic_rx_stats s;

	snic_rx_stats_read(&p->rxq[idx], &s);
	rx->packets = s.packets;
	rx->bytes = s.bytes;
	rx->alloc_fail = s.alloc_fail;
	rx->hw_drops = s.hw_drops + atomic64_read(&p->rxq[idx].overruns);
	rx->hw_drop_overruns = atomic64_read(&p->rxq[idx].overruns);
	rx->csum_unnecessary = s.csum_unnecessary;
}

static void snic_qstats_tx(struct net_device *dev, int idx,
			   struct netdev_queue_stats_tx *tx)
{
	struct snic_priv *p = netdev_priv(dev);
	struct snic_tx_stats s;

	snic_tx_stats_read(&p->txq[idx], &s);
	tx->packets = s.packets;
	tx->bytes = s.bytes;
	tx->hw_drops = s.hw_drops;
}

static void snic_base_stats(struct net_device *dev, struct netdev_queue_stats_rx *rx,
			    struct netdev_queue_stats_tx *tx)
{
	struct snic_priv *p = netdev_priv(dev);

	rx->packets = p->base_rx.packets;
	rx->bytes = p->base_rx.bytes;
	rx->alloc_fail = p->base_rx.alloc_fail;
	rx->hw_drops = p->base_rx.hw_drops + p->base_overruns;
	rx->hw_drop_overruns = p->base_overruns;
	rx->csum_unnecessary = p->base_rx.csum_unnecessary;
	tx->packets = p->base_tx.packets;
	tx->bytes = p->base_tx.bytes;
	tx->hw_drops = p->base_tx.hw_drops;
}

static const struct netdev_stat_ops snic_stat_ops = {
	.get_queue_stats_rx	= snic_qstats_rx,
	.get_queue_stats_tx	= snic_qstats_tx,
	.get_base_stats		= snic_base_stats,
};

static void snic_get_stats64(struct net_device *dev, struct rtnl_link_stats64 *st)
{
	struct snic_priv *p = netdev_priv(dev);
	unsigned int i;

	st->rx_packets = p->base_rx.packets;
	st->rx_bytes = p->base_rx.bytes;
	st->rx_dropped = p->base_rx.alloc_fail + p->base_rx.hw_drops + p->base_overruns;
	st->tx_packets = p->base_tx.packets;
	st->tx_bytes = p->base_tx.bytes;
	st->tx_dropped = p->base_tx.hw_drops;
	for (i = 0; i < SNIC_MAX_QUEUES; i++) {
		struct snic_rx_stats rs;
		struct snic_tx_stats ts;

		snic_rx_stats_read(&p->rxq[i], &rs);
		snic_tx_stats_read(&p->txq[i], &ts);
		st->rx_packets += rs.packets;
		st->rx_bytes += rs.bytes;
		st->rx_dropped += rs.alloc_fail + rs.hw_drops +
				  atomic64_read(&p->rxq[i].overruns);
		st->tx_packets += ts.packets;
		st->tx_bytes += ts.bytes;
		st->tx_dropped += ts.hw_drops;
	}
}

/* --- setup ----------------------------------------------------------------- */

/* The datapath writes payload into net_iovs through their DMA address, which
 * is only the physical address with dma-direct, no IOMMU and no bouncing.
 * Map one page and check that this holds for the parent device.
 */
static int snic_check_dma(struct device *dev)
{
	struct page *pg;
	dma_addr_t da;
	int err = 0;

	if (device_iommu_mapped(dev) || is_swiotlb_force_bounce(dev)) {
		pr_err("softnic: refusing to load: DMA for the parent device goes through %s, so devmem payload would not land in the dma-buf (boot without it, e.g. iommu=off / no swiotlb=force)\n",
		       device_iommu_mapped(dev) ? "an IOMMU" : "swiotlb bounce buffers");
		return -EOPNOTSUPP;
	}
	pg = alloc_page(GFP_KERNEL);
	if (!pg)
		return -ENOMEM;
	da = dma_map_page(dev, pg, 0, PAGE_SIZE, DMA_FROM_DEVICE);
	if (dma_mapping_error(dev, da)) {
		pr_err("softnic: refusing to load: a test DMA mapping of the parent device failed\n");
		err = -EIO;
	} else {
		if (dma_to_phys(dev, da) != page_to_phys(pg)) {
			pr_err("softnic: refusing to load: DMA addresses are remapped (IOMMU or swiotlb bounce: page at %pa maps to %pad), so devmem payload would not land in the dma-buf\n",
			       &(phys_addr_t){ page_to_phys(pg) }, &da);
			err = -EOPNOTSUPP;
		}
		dma_unmap_page(dev, da, PAGE_SIZE, DMA_FROM_DEVICE);
	}
	__free_page(pg);
	return err;
}

static const struct net_device_ops snic_netdev_ops = {
	.ndo_open		= snic_open,
	.ndo_stop		= snic_stop,
	.ndo_start_xmit		= snic_xmit,
	.ndo_get_stats64	= snic_get_stats64,
	.ndo_set_mac_address	= eth_mac_addr,
	.ndo_validate_addr	= eth_validate_addr,
};

static struct net_device *snic_create(unsigned int idx)
{
	struct net_device *dev;
	struct snic_priv *p;
	unsigned int q;
	int err;

	dev = alloc_etherdev_mqs(sizeof(*p), SNIC_MAX_QUEUES, SNIC_MAX_QUEUES);
	if (!dev)
		return ERR_PTR(-ENOMEM);
	p = netdev_priv(dev);
	p->dev = dev;
	p->pair = idx / 2;
	p->ring_size = SNIC_DEF_RING;
	p->hds_on = false;
	p->hds_thresh = SNIC_DEF_HDS_THRESH;
	spin_lock_init(&p->steer_lock);
	for (q = 0; q < SNIC_MAX_QUEUES; q++) {
		struct snic_rxq *rq = &p->rxq[q];

		rq->dev = dev;
		rq->idx = q;
		u64_stats_init(&rq->syncp);
		u64_stats_init(&p->txq[q].syncp);
		atomic64_set(&rq->overruns, 0);
		err = ptr_ring_init(&rq->ring, p->ring_size, GFP_KERNEL);
		if (err) {
			while (q--)
				ptr_ring_cleanup(&p->rxq[q].ring, NULL);
			free_netdev(dev);
			return ERR_PTR(err);
		}
	}
	snprintf(dev->name, IFNAMSIZ, "snic%u", idx);
	SET_NETDEV_DEV(dev, &snic_pdev->dev);
	dev->netdev_ops = &snic_netdev_ops;
	dev->ethtool_ops = &snic_ethtool_ops;
	dev->queue_mgmt_ops = &snic_queue_ops;
	dev->stat_ops = &snic_stat_ops;
	dev->features = NETIF_F_SG | NETIF_F_HW_CSUM | NETIF_F_RXCSUM |
			NETIF_F_HIGHDMA | NETIF_F_RXHASH;
	dev->hw_features = dev->features | NETIF_F_NTUPLE;
	dev->features |= NETIF_F_NTUPLE;
	dev->max_mtu = SNIC_MAX_MTU;
#if SNIC_K7
	dev->netmem_tx = NETMEM_TX_DMA;
	dev->cfg->hds_config = ETHTOOL_TCP_DATA_SPLIT_DISABLED;
	dev->cfg->hds_thresh = SNIC_DEF_HDS_THRESH;
#endif
	netif_set_real_num_queues(dev, SNIC_DEF_QUEUES, SNIC_DEF_QUEUES);
	snic_rss_init(p, SNIC_DEF_QUEUES);
	eth_hw_addr_random(dev);
	return dev;
}

static void snic_free(struct net_device *dev)
{
	struct snic_priv *p = netdev_priv(dev);
	unsigned int q;

	for (q = 0; q < SNIC_MAX_QUEUES; q++) {
		snic_purge_ring(&p->rxq[q]);
		ptr_ring_cleanup(&p->rxq[q].ring, NULL);
	}
	free_netdev(dev);
}

static void snic_teardown(void)
{
	LIST_HEAD(list);
	unsigned int i;

	rtnl_lock();
	for (i = 0; i < snic_ndevs; i++)
		if (snic_devs[i]->reg_state == NETREG_REGISTERED)
			unregister_netdevice_queue(snic_devs[i], &list);
	unregister_netdevice_many(&list);
	rtnl_unlock();
	for (i = 0; i < snic_ndevs; i++)
		snic_free(snic_devs[i]);
	kfree(snic_devs);
	snic_devs = NULL;
	snic_ndevs = 0;
	platform_device_unregister(snic_pdev);
}

static int __init snic_init(void)
{
	unsigned int i;
	int err;

	if (pairs < 1 || pairs > 16) {
		pr_err("softnic: pairs=%u is out of range (1-16)\n", pairs);
		return -EINVAL;
	}
	snic_pdev = platform_device_register_simple(SNIC_DRV_NAME, PLATFORM_DEVID_NONE,
						    NULL, 0);
	if (IS_ERR(snic_pdev))
		return PTR_ERR(snic_pdev);
	snic_dma_dev = &snic_pdev->dev;
	err = dma_coerce_mask_and_coherent(snic_dma_dev, DMA_BIT_MASK(64));
	if (err) {
		pr_err("softnic: refusing to load: cannot set a 64-bit DMA mask on the parent device (%d)\n",
		       err);
		goto err_pdev;
	}
	err = snic_check_dma(snic_dma_dev);
	if (err)
		goto err_pdev;

	snic_devs = kcalloc(2 * pairs, sizeof(*snic_devs), GFP_KERNEL);
	if (!snic_devs) {
		err = -ENOMEM;
		goto err_pdev;
	}
	for (i = 0; i < 2 * pairs; i++) {
		struct net_device *dev = snic_create(i);

		if (IS_ERR(dev)) {
			err = PTR_ERR(dev);
			goto err_devs;
		}
		snic_devs[snic_ndevs++] = dev;
	}
	for (i = 0; i < snic_ndevs; i++) {
		struct snic_priv *p = netdev_priv(snic_devs[i]);

		p->peer = snic_devs[i ^ 1];
	}
	for (i = 0; i < snic_ndevs; i++) {
		err = register_netdev(snic_devs[i]);
		if (err) {
			pr_err("softnic: registering %s failed (%d)\n", snic_devs[i]->name, err);
			goto err_devs;
		}
		netif_carrier_off(snic_devs[i]);
	}
	return 0;

err_devs:
	snic_teardown();
	return err;
err_pdev:
	platform_device_unregister(snic_pdev);
	return err;
}

static void __exit snic_exit(void)
{
	snic_teardown();
}

module_init(snic_init);
module_exit(snic_exit);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("ncdevmem authors");
MODULE_DESCRIPTION("softnic: a software NIC pair with header split, ntuple/RSS steering and devmem (memory provider) support");
