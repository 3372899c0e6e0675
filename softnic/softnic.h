/* SPDX-License-Identifier: GPL-2.0 */
/*
 * softnic: a software NIC pair that behaves like a devmem-capable NIC.
 *
 * Each pair is two netdevs joined like a cable. A packet sent on one end is
 * steered (ntuple rule, else RSS) onto an RX queue of the other end and built
 * there, in that queue's NAPI poll, with header split into buffers of the
 * queue's page pool, so a memory provider (devmem TCP, io_uring zcrx) bound
 * to the queue receives the payload exactly as from a hardware NIC.
 */
#ifndef _SOFTNIC_H
#define _SOFTNIC_H

#include <linux/version.h>
#include <linux/netdevice.h>
#include <linux/ethtool.h>
#include <linux/ptr_ring.h>
#include <linux/u64_stats_sync.h>
#include <net/netdev_queues.h>

#if LINUX_VERSION_CODE >= KERNEL_VERSION(7, 0, 0)
#define SNIC_K7 1
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0) && \
	LINUX_VERSION_CODE < KERNEL_VERSION(6, 13, 0)
#define SNIC_K7 0
#else
#error "softnic supports Linux 6.12.y (devmem RX) and 7.x (RX and TX); this kernel is neither"
#endif

#if !IS_ENABLED(CONFIG_PAGE_POOL)
#error "softnic needs a kernel with CONFIG_PAGE_POOL=y"
#endif
#if !IS_ENABLED(CONFIG_NET_DEVMEM)
#error "softnic needs a kernel with CONFIG_NET_DEVMEM=y (devmem TCP)"
#endif

#define SNIC_DRV_NAME		"softnic"
#define SNIC_MAX_QUEUES		8
#define SNIC_DEF_QUEUES		4
#define SNIC_MAX_RULES		64
#define SNIC_INDIR_SIZE		128
#define SNIC_KEY_SIZE		40
/* Context 0 is the device's own table; 1..SNIC_MAX_CTX-1 are RSS contexts. */
#define SNIC_MAX_CTX		16
#define SNIC_DEF_RING		1024
#define SNIC_MIN_RING		64
#define SNIC_MAX_RING		4096
#define SNIC_DEF_HDS_THRESH	256
#define SNIC_MAX_HDS_THRESH	1024
#define SNIC_MAX_MTU		9216
/* Without header split, packets up to this size are copied whole. */
#define SNIC_COPYBREAK		256

struct snic_rx_stats {
	u64 packets;
	u64 bytes;
	u64 alloc_fail;
	u64 hw_drops;		/* dropped by a fault switch or a discard rule */
	u64 csum_unnecessary;
	u64 split_packets;	/* payload placed in page-pool buffers */
	u64 niov_frags;		/* of those, frags in a memory provider's net_iovs */
	u64 linear_payload;	/* TCP payload bytes left in the linear area */
	u64 fault_corrupt;
	u64 fault_drop;
	u64 fault_pp;
	u64 fault_unsplit;	/* split packets delivered unsplit by the fault switch */
};

struct snic_tx_stats {
	u64 packets;
	u64 bytes;
	u64 hw_drops;		/* peer down or its queue not running */
};

struct snic_rxq {
	struct napi_struct napi;
	struct ptr_ring ring;
	struct page_pool *pp;
	struct net_device *dev;
	u32 psize;		/* size of one page-pool buffer (rx-page-size) */
	u16 idx;
	bool napi_added;
	/* Set once NAPI and pool are ready; the peer's xmit only queues
	 * packets on a live queue. Cleared, then synchronize_net(), before
	 * the queue is torn down.
	 */
	bool live;
	struct u64_stats_sync syncp;
	struct snic_rx_stats st;
	atomic64_t overruns;	/* ring full, counted by the sender */
};

struct snic_txq {
	struct u64_stats_sync syncp;
	struct snic_tx_stats st;
};

struct snic_rule {
	struct ethtool_rx_flow_spec fs;
	u32 rss_context;
	bool used;
};

struct snic_rss {
	u32 indir[SNIC_INDIR_SIZE];
	u8 key[SNIC_KEY_SIZE];
	bool used;
};

struct snic_priv {
	struct net_device *dev;
	struct net_device *peer;
	unsigned int pair;

	/* Steering state, read by the peer's xmit. */
	spinlock_t steer_lock;
	unsigned int nrules;
	struct snic_rule rules[SNIC_MAX_RULES];
	struct snic_rss rss[SNIC_MAX_CTX];

	/* Ring parameters applied by the datapath. */
	bool hds_on;
	u32 hds_thresh;
	u32 ring_size;

	struct snic_rxq rxq[SNIC_MAX_QUEUES];
	struct snic_txq txq[SNIC_MAX_QUEUES];
	/* Counters of queues removed by set_channels (reported as base). */
	struct snic_rx_stats base_rx;
	struct snic_tx_stats base_tx;
	u64 base_overruns;
};

/* Per-queue memory handed between the queue management ops. */
struct snic_qmem {
	struct page_pool *pp;
	u32 psize;
};

/* Fault switches (module parameters, see README.md). */
struct snic_faults {
	unsigned int drop_every;
	bool refuse_5tuple;
	int refuse_errno;
	unsigned int pp_fail_pct;
	unsigned int unsplit_every;
	atomic_t unsplit_ctr;
	atomic_t pp_fail_next;
	atomic_t drop_ctr;
};

extern struct snic_faults snic_faults;
extern struct device *snic_dma_dev;

/* main.c */
int snic_rxq_start(struct snic_priv *p, unsigned int idx, struct page_pool *pp,
		   u32 psize);
struct page_pool *snic_rxq_stop(struct snic_priv *p, unsigned int idx);
int snic_make_pool(struct net_device *dev, unsigned int idx, u32 psize,
		   struct page_pool **out);
int snic_set_queue_count(struct net_device *dev, unsigned int n);
void snic_rx_stats_read(struct snic_rxq *rq, struct snic_rx_stats *s);
void snic_tx_stats_read(struct snic_txq *tq, struct snic_tx_stats *s);

/* datapath.c */
netdev_tx_t snic_xmit(struct sk_buff *skb, struct net_device *dev);
int snic_poll(struct napi_struct *napi, int budget);
void snic_purge_ring(struct snic_rxq *rq);
u32 snic_toeplitz(const u8 *key, const u8 *data, unsigned int len);
void snic_corrupt_arm(void);

/* ethtool.c */
extern const struct ethtool_ops snic_ethtool_ops;
void snic_rss_init(struct snic_priv *p, unsigned int nq);

#endif /* _SOFTNIC_H */
