// SPDX-License-Identifier: GPL-2.0
/*
 * pciefw_nic: Linux driver for the pciefw network controller (1234:fe02).
 *
 * The device is specified in docs/nic.md of the pciefw project, which is
 * the single source of truth; "nic.md N" in the comments below refers to
 * its section N, "protocol N" to docs/protocol.md.
 *
 * The device lives in an endpoint process: every register access crosses a
 * socket, a read being a full round trip (10-60 us) and a write a posted
 * message. The data path therefore does no register read at all in MSI-X
 * mode and at most one posted write per batch and direction:
 *
 *  - completed descriptors are found through the DD bit that the device
 *    writes back into them (nic.md 3.1, 3.2), never through RX_HEAD/TX_HEAD;
 *  - each MSI-X vector names its cause, and a raised cause masks itself in
 *    IMS (nic.md 4), so the handlers only schedule NAPI; the poll re-enables
 *    RX and TX with one IMS write when it completes;
 *  - RX_TAIL is written once per NAPI poll, TX_TAIL once per batch of
 *    frames handed over by the stack (netdev_xmit_more()).
 *
 * Register reads remain on slow paths only: probe, open/close, the LINK
 * cause (STATUS), ethtool statistics, the service work's STATUS read once a
 * second, and in the fallback modes one read per interrupt (ICR with INTx,
 * IMS with MSI; see pfn_intr_msi()).
 *
 * A read of all ones means the endpoint is gone (nic.md 8): the driver
 * drops the carrier, frees what the device held, and re-initialises it
 * when it answers again (pfn_service_work()).
 *
 * One NAPI instance serves both rings: the RX and TX vectors both schedule
 * it and each poll cleans TX completions, then up to budget RX frames.
 */

#include <linux/bits.h>
#include <linux/build_bug.h>
#include <linux/dma-mapping.h>
#include <linux/etherdevice.h>
#include <linux/ethtool.h>
#include <linux/if_vlan.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/iopoll.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/netdevice.h>
#include <linux/pci.h>
#include <linux/rtnetlink.h>
#include <linux/skbuff.h>
#include <linux/u64_stats_sync.h>
#include <linux/workqueue.h>

#define PFN_DRV_NAME		"pciefw_nic"

/* nic.md 1 */
#define PFN_VENDOR_ID		0x1234
#define PFN_DEVICE_ID		0xfe02

/* nic.md 2: registers in BAR0 */
#define PFN_REG_CTRL		0x000
#define  PFN_CTRL_RST		BIT(0)
#define  PFN_CTRL_RX_EN		BIT(1)
#define  PFN_CTRL_TX_EN		BIT(2)
#define PFN_REG_STATUS		0x004
#define  PFN_STATUS_LINK_UP	BIT(0)
#define PFN_REG_MAC_LO		0x008
#define PFN_REG_MAC_HI		0x00c
#define PFN_REG_ICR		0x010
#define PFN_REG_IMS		0x014
#define PFN_REG_IMC		0x018
#define  PFN_INT_RX		BIT(0)
#define  PFN_INT_TX		BIT(1)
#define  PFN_INT_LINK		BIT(2)
#define  PFN_INT_ALL		(PFN_INT_RX | PFN_INT_TX | PFN_INT_LINK)
#define PFN_REG_ITR		0x01c
#define  PFN_ITR_MAX		100000U
#define PFN_REG_IRQ_MODE	0x020
#define PFN_REG_MAX_FRAME	0x024
#define PFN_REG_RX_BASE_LO	0x100
#define PFN_REG_RX_BASE_HI	0x104
#define PFN_REG_RX_SIZE		0x108
#define PFN_REG_RX_HEAD		0x10c
#define PFN_REG_RX_TAIL		0x110
#define PFN_REG_TX_BASE_LO	0x200
#define PFN_REG_TX_BASE_HI	0x204
#define PFN_REG_TX_SIZE		0x208
#define PFN_REG_TX_HEAD		0x20c
#define PFN_REG_TX_TAIL		0x210
#define PFN_REG_STAT_BASE	0x300	/* 8 x 64-bit counters */
#define PFN_BAR0_LEN		0x1000

/* nic.md 2 (IRQ_MODE) and 4; PFN_IRQ_AUTO is the driver's own choice */
enum pfn_irq_mode {
	PFN_IRQ_INTX = 0,
	PFN_IRQ_MSI = 1,
	PFN_IRQ_MSIX = 2,
	PFN_IRQ_AUTO,
};

/* nic.md 1 and 4: MSI-X vector per cause */
#define PFN_VEC_RX		0
#define PFN_VEC_TX		1
#define PFN_VEC_LINK		2
#define PFN_NUM_MSIX		3

/* nic.md 2: RX_SIZE/TX_SIZE are powers of two, 8..4096 */
#define PFN_RING_MIN		8
#define PFN_RING_MAX		4096
#define PFN_RING_DEFAULT	256

/*
 * nic.md 2 and 5: MAX_FRAME (64..9018) counts the Ethernet header and one
 * 802.1Q tag, so a VLAN on top of us carries full-size frames: it is
 * programmed to mtu + 18, and the MTU range keeps that inside 9018.
 */
#define PFN_MAX_FRAME		9018
#define PFN_MAX_MTU		(PFN_MAX_FRAME - VLAN_ETH_HLEN)

/*
 * How often the service work checks that the device still answers and,
 * when it does not (or a reset failed), tries to bring it back.
 */
#define PFN_SERVICE_INTERVAL	HZ

/* nic.md 3.1: RX descriptor */
struct pfn_rx_desc {
	__le64 addr;
	__le16 buf_len;
	__le16 len;		/* written by the device */
	__le16 status;		/* written by the device */
	__le16 reserved;
};

#define PFN_RXD_DD		BIT(0)
#define PFN_RXD_EOP		BIT(1)

/* nic.md 3.2: TX descriptor */
struct pfn_tx_desc {
	__le64 addr;
	__le16 len;
	__le16 flags;
	__le16 status;		/* written by the device */
	__le16 reserved;
};

#define PFN_TXD_EOP		BIT(0)	/* flags */
#define PFN_TXD_DD		BIT(0)	/* status */
#define PFN_TXD_ERR		BIT(2)	/* status */

#define PFN_DESC_SIZE		16
static_assert(sizeof(struct pfn_rx_desc) == PFN_DESC_SIZE);
static_assert(sizeof(struct pfn_tx_desc) == PFN_DESC_SIZE);

struct pfn_buf {
	struct sk_buff *skb;
	dma_addr_t dma;
	unsigned int len;		/* mapped length */
};

/*
 * A descriptor ring. next_to_use and next_to_clean are free-running
 * counters; the slot of counter c is c & (size - 1) and the number of
 * descriptors in flight is next_to_use - next_to_clean (u32 wrap-around is
 * harmless because size divides 2^32). nic.md 3: at most size - 1
 * descriptors are owned by the device at once.
 */
struct pfn_ring {
	union {
		struct pfn_rx_desc *rx_desc;
		struct pfn_tx_desc *tx_desc;
		void *desc;
	};
	dma_addr_t desc_dma;
	struct pfn_buf *buf;
	u32 size;
	u32 next_to_use;
	u32 next_to_clean;
	u32 tail_written;		/* TX: last value written to TX_TAIL */
};

/* Counters written only by the NAPI poll (one writer) */
struct pfn_napi_stats {
	struct u64_stats_sync syncp;
	u64_stats_t rx_packets;
	u64_stats_t rx_bytes;
	u64_stats_t rx_errors;
	u64_stats_t rx_alloc_failed;
	u64_stats_t rx_copybreak;
	u64_stats_t rx_doorbells;
	u64_stats_t tx_packets;
	u64_stats_t tx_bytes;
	u64_stats_t tx_errors;
	u64_stats_t napi_polls;
};

/* Counters written only by ndo_start_xmit (serialised by the TX lock) */
struct pfn_xmit_stats {
	struct u64_stats_sync syncp;
	u64_stats_t tx_dropped;
	u64_stats_t tx_busy;
	u64_stats_t tx_queue_stopped;
	u64_stats_t tx_doorbells;
};

/* priv->flags bits */
enum {
	PFN_FLAG_UP,		/* interrupts, NAPI and link work may re-arm */
	PFN_FLAG_GONE,		/* reads returned all ones: the device is gone */
	PFN_FLAG_RESET,		/* the TX timeout asked for a reset */
};

struct pfn_priv {
	struct net_device *ndev;
	struct pci_dev *pdev;
	void __iomem *regs;
	unsigned long flags;
	enum pfn_irq_mode irq_mode;	/* PFN_IRQ_INTX/MSI/MSIX */

	struct napi_struct napi;
	struct pfn_ring rx ____cacheline_aligned_in_smp;
	struct pfn_ring tx ____cacheline_aligned_in_smp;

	/* set by pfn_up() from the MTU, constant while up */
	unsigned int max_frame;
	unsigned int rx_buf_len;
	unsigned int copybreak;

	/* configuration and state, changed under RTNL */
	bool hw_up;
	bool restart_failed;		/* logged once until a restart works */
	u32 rx_ring_size;
	u32 tx_ring_size;
	u32 itr;

	struct work_struct link_work;
	struct delayed_work service_work;

	struct pfn_napi_stats nstats;
	struct pfn_xmit_stats xstats;
};

static char *irq_mode = "auto";
module_param(irq_mode, charp, 0444);
MODULE_PARM_DESC(irq_mode,
		 "Interrupt mode: auto (MSI-X, else MSI, else INTx), msix, msi or intx");

static unsigned int itr_us = 20;
module_param(itr_us, uint, 0444);
MODULE_PARM_DESC(itr_us,
		 "Minimum interval between two interrupts of one vector, in us (0..100000, default 20)");

static unsigned int copybreak = 256;
module_param(copybreak, uint, 0444);
MODULE_PARM_DESC(copybreak,
		 "Copy received frames up to this size into a fresh skb and keep the mapped buffer (default 256)");

static const char * const pfn_irq_mode_names[] = {
	[PFN_IRQ_INTX] = "intx",
	[PFN_IRQ_MSI] = "msi",
	[PFN_IRQ_MSIX] = "msix",
	[PFN_IRQ_AUTO] = "auto",
};

/* ---- device control (slow path) ---------------------------------------- */

/*
 * nic.md 2: CTRL, STATUS, ICR and IMS have bits that always read 0, so all
 * ones from them means no device answered: the endpoint is gone and the
 * host bridge completes reads with all ones (nic.md 8).
 */
static bool pfn_is_gone(u32 val)
{
	return val == ~0U;
}

/*
 * Any context. The device stopped answering (@why): drop the carrier, say
 * so once, and let the service work tear down and wait for the device to
 * come back.
 */
static void pfn_mark_gone_why(struct pfn_priv *priv, const char *why)
{
	if (test_and_set_bit(PFN_FLAG_GONE, &priv->flags))
		return;
	netif_carrier_off(priv->ndev);
	netdev_err(priv->ndev, "device not responding (%s): stopped, will re-initialise it when it is back\n",
		   why);
	mod_delayed_work(system_wq, &priv->service_work, 0);
}

static void pfn_mark_gone(struct pfn_priv *priv)
{
	pfn_mark_gone_why(priv, "reads return all ones");
}

/*
 * nic.md 6: CTRL.RST returns the device to its power-on state and cancels
 * DMA in flight; CTRL reads back without RST. The read also flushes the
 * posted RST write, and by protocol 5.1 every DMA write the endpoint sent
 * before answering it has reached memory: once this returns, the device no
 * longer touches the rings or the buffers. A gone device (all ones) cannot
 * DMA either; that is -ENODEV, left to the caller to report.
 */
static int pfn_reset_hw(struct pfn_priv *priv)
{
	u32 ctrl;
	int err;

	writel(PFN_CTRL_RST, priv->regs + PFN_REG_CTRL);
	err = readl_poll_timeout(priv->regs + PFN_REG_CTRL, ctrl,
				 !(ctrl & PFN_CTRL_RST) || pfn_is_gone(ctrl),
				 10, 10000);
	if (pfn_is_gone(ctrl))
		return -ENODEV;
	if (err)
		dev_err(&priv->pdev->dev, "reset timed out (CTRL %#x)\n", ctrl);
	return err;
}

/* nic.md 2 and 5: STATUS.LINK_UP. Returns false if the device is gone. */
static bool pfn_update_link(struct pfn_priv *priv)
{
	struct net_device *ndev = priv->ndev;
	u32 status = readl(priv->regs + PFN_REG_STATUS);
	bool up = status & PFN_STATUS_LINK_UP;

	if (pfn_is_gone(status)) {
		pfn_mark_gone(priv);
		return false;
	}
	if (up == netif_carrier_ok(ndev))
		return true;
	if (up) {
		netif_carrier_on(ndev);
		netdev_info(ndev, "link up\n");
	} else {
		netif_carrier_off(ndev);
		netdev_info(ndev, "link down\n");
	}
	return true;
}

static void pfn_link_work(struct work_struct *work)
{
	struct pfn_priv *priv = container_of(work, struct pfn_priv, link_work);

	if (!test_bit(PFN_FLAG_UP, &priv->flags) || !pfn_update_link(priv))
		return;
	/*
	 * nic.md 4: LINK masked itself when it was raised. Re-enable it after
	 * reading STATUS: a change in between raises LINK again at once.
	 */
	writel(PFN_INT_LINK, priv->regs + PFN_REG_IMS);
}

/* ---- TX ------------------------------------------------------------------ */

/* Free TX descriptors, as seen by ndo_start_xmit (which owns next_to_use). */
static u32 pfn_tx_space(struct pfn_ring *tx)
{
	/* Pairs with smp_store_release() in pfn_clean_tx(). */
	u32 ntc = smp_load_acquire(&tx->next_to_clean);

	return tx->size - 1 - (tx->next_to_use - ntc);
}

static u32 pfn_tx_wake_thresh(const struct pfn_ring *tx)
{
	return tx->size / 4;
}

/* Called with the TX lock held (ndo_start_xmit). */
static void pfn_tx_doorbell(struct pfn_priv *priv)
{
	struct pfn_ring *tx = &priv->tx;
	u32 tail = tx->next_to_use & (tx->size - 1);

	/*
	 * At most size - 1 descriptors are outstanding, so an unchanged
	 * masked tail means nothing new to announce: skip the message.
	 */
	if (tail == tx->tail_written)
		return;
	tx->tail_written = tail;

	/*
	 * The descriptors must be in memory before the device, told by this
	 * write, reads them (nic.md 3.2). writel() orders this too; the
	 * explicit barrier documents it.
	 */
	wmb();
	writel(tail, priv->regs + PFN_REG_TX_TAIL);

	u64_stats_update_begin(&priv->xstats.syncp);
	u64_stats_inc(&priv->xstats.tx_doorbells);
	u64_stats_update_end(&priv->xstats.syncp);
}

static void pfn_tx_count_drop(struct pfn_priv *priv)
{
	u64_stats_update_begin(&priv->xstats.syncp);
	u64_stats_inc(&priv->xstats.tx_dropped);
	u64_stats_update_end(&priv->xstats.syncp);
}

static netdev_tx_t pfn_start_xmit(struct sk_buff *skb, struct net_device *ndev)
{
	struct pfn_priv *priv = netdev_priv(ndev);
	struct netdev_queue *txq = netdev_get_tx_queue(ndev, 0);
	struct device *dev = &priv->pdev->dev;
	struct pfn_ring *tx = &priv->tx;
	u32 ntu = tx->next_to_use;
	struct pfn_tx_desc *desc;
	struct pfn_buf *buf;
	unsigned int len;
	dma_addr_t dma;
	u32 idx;

	/* nic.md 3.2: one buffer per frame (no NETIF_F_SG, so normally a no-op) */
	if (skb_linearize(skb))
		goto drop;
	/* The device sends frames as given: pad runts to ETH_ZLEN. */
	if (eth_skb_pad(skb))
		goto dropped;		/* eth_skb_pad() freed the skb */
	len = skb->len;
	/* nic.md 3.2: the device would skip it with ERR; drop it here. */
	if (unlikely(len > priv->max_frame))
		goto drop;

	if (unlikely(!pfn_tx_space(tx))) {
		/* Cannot happen: the queue is stopped when the ring fills. */
		netif_stop_queue(ndev);
		u64_stats_update_begin(&priv->xstats.syncp);
		u64_stats_inc(&priv->xstats.tx_busy);
		u64_stats_update_end(&priv->xstats.syncp);
		pfn_tx_doorbell(priv);
		return NETDEV_TX_BUSY;
	}

	dma = dma_map_single(dev, skb->data, len, DMA_TO_DEVICE);
	if (unlikely(dma_mapping_error(dev, dma)))
		goto drop;

	idx = ntu & (tx->size - 1);
	buf = &tx->buf[idx];
	buf->skb = skb;
	buf->dma = dma;
	buf->len = len;

	desc = &tx->tx_desc[idx];
	desc->addr = cpu_to_le64(dma);
	desc->len = cpu_to_le16(len);
	desc->flags = cpu_to_le16(PFN_TXD_EOP);
	desc->status = 0;		/* clears the DD of the slot's last use */
	desc->reserved = 0;

	/* Last access to the skb: once published it may complete and be freed. */
	skb_tx_timestamp(skb);

	/*
	 * Publish the descriptor (status cleared) and buf[] to
	 * pfn_clean_tx(); pairs with its smp_load_acquire().
	 */
	smp_store_release(&tx->next_to_use, ntu + 1);

	if (unlikely(!pfn_tx_space(tx))) {
		netif_stop_queue(ndev);
		u64_stats_update_begin(&priv->xstats.syncp);
		u64_stats_inc(&priv->xstats.tx_queue_stopped);
		u64_stats_update_end(&priv->xstats.syncp);
		/*
		 * Pairs with smp_mb() in pfn_clean_tx(): either it sees the
		 * stopped queue, or we see the space it freed.
		 */
		smp_mb();
		if (pfn_tx_space(tx) >= pfn_tx_wake_thresh(tx))
			netif_start_queue(ndev);
	}

	/*
	 * BQL accounting comes before the doorbell, so the completion can
	 * never be reported before the bytes were queued. The doorbell is
	 * rung at the end of a batch, or when the queue stopped (by us or by
	 * BQL), since then no further frame would ring it.
	 */
	if (__netdev_tx_sent_queue(txq, len, netdev_xmit_more()))
		pfn_tx_doorbell(priv);

	return NETDEV_TX_OK;

drop:
	dev_kfree_skb_any(skb);
dropped:
	pfn_tx_count_drop(priv);
	/* Earlier frames of this batch may still wait for their doorbell. */
	if (!netdev_xmit_more())
		pfn_tx_doorbell(priv);
	return NETDEV_TX_OK;
}

/* NAPI context. nic.md 3.2: completions are written back in ring order. */
static void pfn_clean_tx(struct pfn_priv *priv, int budget)
{
	struct net_device *ndev = priv->ndev;
	struct device *dev = &priv->pdev->dev;
	struct pfn_ring *tx = &priv->tx;
	unsigned int pkts = 0, bytes = 0, errors = 0;
	unsigned int bql_pkts = 0, bql_bytes = 0;
	u32 mask = tx->size - 1;
	u32 ntc = tx->next_to_clean;
	u32 ntu;

	/* Pairs with smp_store_release() in pfn_start_xmit(). */
	ntu = smp_load_acquire(&tx->next_to_use);

	while (ntc != ntu) {
		struct pfn_tx_desc *desc = &tx->tx_desc[ntc & mask];
		struct pfn_buf *buf = &tx->buf[ntc & mask];
		u16 status = le16_to_cpu(READ_ONCE(desc->status));

		if (!(status & PFN_TXD_DD))
			break;
		/* Nothing about this descriptor is used before DD was seen. */
		dma_rmb();

		dma_unmap_single(dev, buf->dma, buf->len, DMA_TO_DEVICE);
		if (unlikely(status & PFN_TXD_ERR)) {
			errors++;
		} else {
			pkts++;
			bytes += buf->len;
		}
		bql_pkts++;
		bql_bytes += buf->len;
		napi_consume_skb(buf->skb, budget);
		buf->skb = NULL;
		ntc++;
	}

	if (!bql_pkts)
		return;

	/* buf[] updates above are visible before the slots are reused. */
	smp_store_release(&tx->next_to_clean, ntc);
	netdev_completed_queue(ndev, bql_pkts, bql_bytes);

	u64_stats_update_begin(&priv->nstats.syncp);
	u64_stats_add(&priv->nstats.tx_packets, pkts);
	u64_stats_add(&priv->nstats.tx_bytes, bytes);
	u64_stats_add(&priv->nstats.tx_errors, errors);
	u64_stats_update_end(&priv->nstats.syncp);

	/* Pairs with smp_mb() in pfn_start_xmit(). */
	smp_mb();
	if (unlikely(netif_queue_stopped(ndev)) &&
	    test_bit(PFN_FLAG_UP, &priv->flags) &&
	    tx->size - 1 - (READ_ONCE(tx->next_to_use) - ntc) >=
	    pfn_tx_wake_thresh(tx))
		netif_wake_queue(ndev);
}

/* ---- RX ------------------------------------------------------------------ */

/* nic.md 3.1: give (back) the slot's buffer; the driver clears status. */
static void pfn_rx_post(struct pfn_priv *priv, u32 idx)
{
	struct pfn_rx_desc *desc = &priv->rx.rx_desc[idx];

	desc->addr = cpu_to_le64(priv->rx.buf[idx].dma);
	desc->buf_len = cpu_to_le16(priv->rx_buf_len);
	desc->len = 0;
	desc->status = 0;
	desc->reserved = 0;
}

/*
 * nic.md 3: the device owns [head, tail), so with every slot holding a
 * buffer the tail stays one behind next_to_clean: size - 1 descriptors are
 * available to the device and the slot at the tail waits, refilled, for
 * the next doorbell.
 */
static void pfn_rx_doorbell(struct pfn_priv *priv)
{
	struct pfn_ring *rx = &priv->rx;

	/* Refilled descriptors in memory before the device reads them. */
	wmb();
	writel((rx->next_to_clean - 1) & (rx->size - 1),
	       priv->regs + PFN_REG_RX_TAIL);
}

/*
 * Turn the frame in @buf into an skb for the stack, leaving a mapped buffer
 * in @buf either way. Returns NULL (frame dropped, buffer reused) when no
 * memory is available.
 */
static struct sk_buff *pfn_rx_skb(struct pfn_priv *priv, struct pfn_buf *buf,
				  unsigned int len, bool *copied)
{
	struct device *dev = &priv->pdev->dev;
	struct sk_buff *skb, *nskb;
	dma_addr_t dma;

	if (len <= priv->copybreak) {
		skb = napi_alloc_skb(&priv->napi, len);
		if (unlikely(!skb))
			return NULL;
		dma_sync_single_for_cpu(dev, buf->dma, len, DMA_FROM_DEVICE);
		skb_put_data(skb, buf->skb->data, len);
		dma_sync_single_for_device(dev, buf->dma, len, DMA_FROM_DEVICE);
		*copied = true;
		return skb;
	}

	nskb = napi_alloc_skb(&priv->napi, priv->rx_buf_len);
	if (unlikely(!nskb))
		return NULL;
	dma = dma_map_single(dev, nskb->data, priv->rx_buf_len,
			     DMA_FROM_DEVICE);
	if (unlikely(dma_mapping_error(dev, dma))) {
		dev_kfree_skb_any(nskb);
		return NULL;
	}

	dma_unmap_single(dev, buf->dma, buf->len, DMA_FROM_DEVICE);
	skb = buf->skb;
	buf->skb = nskb;
	buf->dma = dma;
	buf->len = priv->rx_buf_len;

	skb_put(skb, len);
	*copied = false;
	return skb;
}

/* NAPI context. Returns the number of descriptors consumed (<= budget). */
static int pfn_clean_rx(struct pfn_priv *priv, int budget)
{
	struct net_device *ndev = priv->ndev;
	struct pfn_ring *rx = &priv->rx;
	unsigned int pkts = 0, bytes = 0, errors = 0, nomem = 0, copied = 0;
	u32 mask = rx->size - 1;
	u32 ntc = rx->next_to_clean;
	int done = 0;

	while (done < budget) {
		u32 idx = ntc & mask;
		struct pfn_rx_desc *desc = &rx->rx_desc[idx];
		struct sk_buff *skb;
		unsigned int len;
		bool was_copied;
		u16 status;

		status = le16_to_cpu(READ_ONCE(desc->status));
		if (!(status & PFN_RXD_DD))
			break;
		/* nic.md 3.1: len and the frame are valid once DD is seen. */
		dma_rmb();
		len = le16_to_cpu(desc->len);
		ntc++;
		done++;

		/*
		 * nic.md 3.1 promises DD | EOP and len <= buf_len; anything
		 * else is counted and the buffer reused.
		 */
		if (unlikely(!(status & PFN_RXD_EOP) || len < ETH_HLEN ||
			     len > priv->rx_buf_len)) {
			errors++;
			goto repost;
		}

		skb = pfn_rx_skb(priv, &rx->buf[idx], len, &was_copied);
		if (unlikely(!skb)) {
			nomem++;
			goto repost;
		}
		copied += was_copied;
		skb->protocol = eth_type_trans(skb, ndev);
		napi_gro_receive(&priv->napi, skb);
		pkts++;
		bytes += len;
repost:
		pfn_rx_post(priv, idx);
	}

	if (!done)
		return 0;

	rx->next_to_clean = ntc;
	pfn_rx_doorbell(priv);

	u64_stats_update_begin(&priv->nstats.syncp);
	u64_stats_add(&priv->nstats.rx_packets, pkts);
	u64_stats_add(&priv->nstats.rx_bytes, bytes);
	u64_stats_add(&priv->nstats.rx_errors, errors);
	u64_stats_add(&priv->nstats.rx_alloc_failed, nomem);
	u64_stats_add(&priv->nstats.rx_copybreak, copied);
	u64_stats_inc(&priv->nstats.rx_doorbells);
	u64_stats_update_end(&priv->nstats.syncp);
	return done;
}

static int pfn_poll(struct napi_struct *napi, int budget)
{
	struct pfn_priv *priv = container_of(napi, struct pfn_priv, napi);
	int done;

	pfn_clean_tx(priv, budget);
	done = pfn_clean_rx(priv, budget);

	/* Before napi_complete_done(): after it, another CPU may poll. */
	u64_stats_update_begin(&priv->nstats.syncp);
	u64_stats_inc(&priv->nstats.napi_polls);
	u64_stats_update_end(&priv->nstats.syncp);

	/* Also covers netpoll's budget 0: never complete then. */
	if (done == budget)
		return budget;
	if (napi_complete_done(napi, done) &&
	    test_bit(PFN_FLAG_UP, &priv->flags)) {
		/*
		 * nic.md 4: RX and TX masked themselves when raised. One
		 * posted write re-enables both; a cause that occurred since
		 * is raised again at once, so no work is lost.
		 */
		writel(PFN_INT_RX | PFN_INT_TX, priv->regs + PFN_REG_IMS);
	}
	return done;
}

/* ---- interrupts ------------------------------------------------------------ */

/* nic.md 4, MSI-X vectors 0 (RX) and 1 (TX): nothing to read. */
static irqreturn_t pfn_msix_rxtx(int irq, void *data)
{
	struct pfn_priv *priv = data;

	napi_schedule_irqoff(&priv->napi);
	return IRQ_HANDLED;
}

/* nic.md 4, MSI-X vector 2 (LINK): STATUS is read in process context. */
static irqreturn_t pfn_msix_link(int irq, void *data)
{
	struct pfn_priv *priv = data;

	if (test_bit(PFN_FLAG_UP, &priv->flags))
		schedule_work(&priv->link_work);
	return IRQ_HANDLED;
}

/*
 * nic.md 4, MSI: one vector for every cause; both rings are polled on every
 * interrupt. LINK cannot be learnt from ICR here: with MSI the ICR bit of
 * the cause that raised the message is cleared as it goes out (auto-clear),
 * so ICR only holds causes that occurred while masked. Auto-mask does leave
 * a trace: the driver keeps LINK enabled except while its work runs, so
 * LINK missing from IMS means LINK was raised. One read per interrupt; a
 * spurious match only costs an extra STATUS read.
 */
static irqreturn_t pfn_intr_msi(int irq, void *data)
{
	struct pfn_priv *priv = data;
	u32 ims = readl(priv->regs + PFN_REG_IMS);

	if (unlikely(pfn_is_gone(ims))) {
		if (test_bit(PFN_FLAG_UP, &priv->flags))
			pfn_mark_gone(priv);
		return IRQ_NONE;
	}
	if (!(ims & PFN_INT_LINK) && test_bit(PFN_FLAG_UP, &priv->flags))
		schedule_work(&priv->link_work);
	napi_schedule_irqoff(&priv->napi);
	return IRQ_HANDLED;
}

/*
 * nic.md 4, INTx: one line for every cause, possibly shared. Reading ICR
 * returns the causes, clears them and deasserts INTA#; an empty ICR means
 * the interrupt was not ours.
 */
static irqreturn_t pfn_intr_intx(int irq, void *data)
{
	struct pfn_priv *priv = data;
	u32 icr = readl(priv->regs + PFN_REG_ICR);

	if (unlikely(pfn_is_gone(icr))) {
		if (test_bit(PFN_FLAG_UP, &priv->flags))
			pfn_mark_gone(priv);
		return IRQ_NONE;
	}
	if (!(icr & PFN_INT_ALL))
		return IRQ_NONE;
	if ((icr & PFN_INT_LINK) && test_bit(PFN_FLAG_UP, &priv->flags))
		schedule_work(&priv->link_work);
	if (icr & (PFN_INT_RX | PFN_INT_TX))
		napi_schedule_irqoff(&priv->napi);
	return IRQ_HANDLED;
}

static int pfn_request_irqs(struct pfn_priv *priv)
{
	struct pci_dev *pdev = priv->pdev;
	const char *name = priv->ndev->name;
	int err;

	/* Named "pciefw_nic-eth0-rx" etc. in /proc/interrupts. */
	if (priv->irq_mode == PFN_IRQ_MSI)
		return pci_request_irq(pdev, 0, pfn_intr_msi, NULL, priv,
				       "%s-%s", PFN_DRV_NAME, name);
	if (priv->irq_mode == PFN_IRQ_INTX)
		return pci_request_irq(pdev, 0, pfn_intr_intx, NULL, priv,
				       "%s-%s", PFN_DRV_NAME, name);

	err = pci_request_irq(pdev, PFN_VEC_RX, pfn_msix_rxtx, NULL, priv,
			      "%s-%s-rx", PFN_DRV_NAME, name);
	if (err)
		return err;
	err = pci_request_irq(pdev, PFN_VEC_TX, pfn_msix_rxtx, NULL, priv,
			      "%s-%s-tx", PFN_DRV_NAME, name);
	if (err)
		goto err_free_rx;
	err = pci_request_irq(pdev, PFN_VEC_LINK, pfn_msix_link, NULL, priv,
			      "%s-%s-link", PFN_DRV_NAME, name);
	if (err)
		goto err_free_tx;
	return 0;

err_free_tx:
	pci_free_irq(pdev, PFN_VEC_TX, priv);
err_free_rx:
	pci_free_irq(pdev, PFN_VEC_RX, priv);
	return err;
}

static void pfn_free_irqs(struct pfn_priv *priv)
{
	struct pci_dev *pdev = priv->pdev;

	if (priv->irq_mode != PFN_IRQ_MSIX) {
		pci_free_irq(pdev, 0, priv);
		return;
	}
	pci_free_irq(pdev, PFN_VEC_LINK, priv);
	pci_free_irq(pdev, PFN_VEC_TX, priv);
	pci_free_irq(pdev, PFN_VEC_RX, priv);
}

/* ---- ring memory ----------------------------------------------------------- */

static int pfn_alloc_ring(struct pfn_priv *priv, struct pfn_ring *ring,
			  u32 size)
{
	struct device *dev = &priv->pdev->dev;

	ring->size = size;
	ring->next_to_use = 0;
	ring->next_to_clean = 0;
	ring->tail_written = 0;
	ring->buf = kvcalloc(size, sizeof(*ring->buf), GFP_KERNEL);
	if (!ring->buf)
		return -ENOMEM;
	/* Zeroed and page aligned (nic.md 2 asks for 16 bytes). */
	ring->desc = dma_alloc_coherent(dev, size * PFN_DESC_SIZE,
					&ring->desc_dma, GFP_KERNEL);
	if (!ring->desc) {
		kvfree(ring->buf);
		ring->buf = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void pfn_free_ring(struct pfn_priv *priv, struct pfn_ring *ring)
{
	dma_free_coherent(&priv->pdev->dev, ring->size * PFN_DESC_SIZE,
			  ring->desc, ring->desc_dma);
	ring->desc = NULL;
	kvfree(ring->buf);
	ring->buf = NULL;
}

/* Only once the device is reset: it may not DMA into the buffers anymore. */
static void pfn_free_rx_ring(struct pfn_priv *priv)
{
	struct device *dev = &priv->pdev->dev;
	struct pfn_ring *rx = &priv->rx;
	u32 i;

	for (i = 0; i < rx->size; i++) {
		struct pfn_buf *buf = &rx->buf[i];

		if (!buf->skb)
			continue;
		dma_unmap_single(dev, buf->dma, buf->len, DMA_FROM_DEVICE);
		dev_kfree_skb_any(buf->skb);
		buf->skb = NULL;
	}
	pfn_free_ring(priv, rx);
}

/* Every slot gets a mapped buffer, all posted (nic.md 3.1). */
static int pfn_alloc_rx_ring(struct pfn_priv *priv)
{
	struct device *dev = &priv->pdev->dev;
	struct pfn_ring *rx = &priv->rx;
	int err;
	u32 i;

	err = pfn_alloc_ring(priv, rx, priv->rx_ring_size);
	if (err)
		return err;

	for (i = 0; i < rx->size; i++) {
		struct pfn_buf *buf = &rx->buf[i];
		struct sk_buff *skb;
		dma_addr_t dma;

		skb = __netdev_alloc_skb_ip_align(priv->ndev, priv->rx_buf_len,
						  GFP_KERNEL);
		if (!skb)
			goto err_free;
		dma = dma_map_single(dev, skb->data, priv->rx_buf_len,
				     DMA_FROM_DEVICE);
		if (dma_mapping_error(dev, dma)) {
			dev_kfree_skb_any(skb);
			goto err_free;
		}
		buf->skb = skb;
		buf->dma = dma;
		buf->len = priv->rx_buf_len;
		pfn_rx_post(priv, i);
	}
	return 0;

err_free:
	pfn_free_rx_ring(priv);
	return -ENOMEM;
}

/* Only once the device is reset. Frees the frames never completed. */
static void pfn_free_tx_ring(struct pfn_priv *priv)
{
	struct device *dev = &priv->pdev->dev;
	struct pfn_ring *tx = &priv->tx;
	u32 ntc;

	for (ntc = tx->next_to_clean; ntc != tx->next_to_use; ntc++) {
		struct pfn_buf *buf = &tx->buf[ntc & (tx->size - 1)];

		dma_unmap_single(dev, buf->dma, buf->len, DMA_TO_DEVICE);
		dev_kfree_skb_any(buf->skb);
		buf->skb = NULL;
	}
	tx->next_to_clean = ntc;
	pfn_free_ring(priv, tx);
}

/* ---- up / down ------------------------------------------------------------- */

/* nic.md 2: program the rings while RX and TX are disabled. */
static void pfn_configure_hw(struct pfn_priv *priv)
{
	void __iomem *regs = priv->regs;

	writel(priv->irq_mode, regs + PFN_REG_IRQ_MODE);
	writel(priv->itr, regs + PFN_REG_ITR);
	writel(priv->max_frame, regs + PFN_REG_MAX_FRAME);

	/* These also reset the heads and tails to 0, our starting counters. */
	writel(lower_32_bits(priv->rx.desc_dma), regs + PFN_REG_RX_BASE_LO);
	writel(upper_32_bits(priv->rx.desc_dma), regs + PFN_REG_RX_BASE_HI);
	writel(priv->rx.size, regs + PFN_REG_RX_SIZE);
	writel(lower_32_bits(priv->tx.desc_dma), regs + PFN_REG_TX_BASE_LO);
	writel(upper_32_bits(priv->tx.desc_dma), regs + PFN_REG_TX_BASE_HI);
	writel(priv->tx.size, regs + PFN_REG_TX_SIZE);
}

/*
 * Called under RTNL. Undoes everything it did on failure. Leaves the TX
 * queue to the caller: started by ndo_open, woken by the restart paths
 * (the qdisc may hold frames queued while the device was down).
 */
static int pfn_up(struct pfn_priv *priv)
{
	struct net_device *ndev = priv->ndev;
	int err;

	err = pfn_reset_hw(priv);
	if (err)
		return err;
	/* The device answers: forget it was gone, and any pending reset. */
	clear_bit(PFN_FLAG_GONE, &priv->flags);
	clear_bit(PFN_FLAG_RESET, &priv->flags);

	/* nic.md 5: room for one 802.1Q tag (no NETIF_F_VLAN_CHALLENGED) */
	priv->max_frame = ndev->mtu + VLAN_ETH_HLEN;
	priv->rx_buf_len = priv->max_frame;
	priv->copybreak = min(copybreak, priv->rx_buf_len);

	err = pfn_alloc_ring(priv, &priv->tx, priv->tx_ring_size);
	if (err)
		return err;
	err = pfn_alloc_rx_ring(priv);
	if (err)
		goto err_free_tx;

	pfn_configure_hw(priv);
	netdev_reset_queue(ndev);
	napi_enable(&priv->napi);

	err = pfn_request_irqs(priv);
	if (err)
		goto err_napi;

	set_bit(PFN_FLAG_UP, &priv->flags);
	priv->hw_up = true;

	writel(PFN_CTRL_RX_EN | PFN_CTRL_TX_EN, priv->regs + PFN_REG_CTRL);
	pfn_rx_doorbell(priv);		/* size - 1 buffers to the device */
	writel(PFN_INT_ALL, priv->regs + PFN_REG_IMS);
	/*
	 * After enabling LINK, so that a change after this read is raised.
	 * A device gone already is left to the service work.
	 */
	pfn_update_link(priv);
	return 0;

err_napi:
	napi_disable(&priv->napi);
	pfn_reset_hw(priv);
	pfn_free_rx_ring(priv);
err_free_tx:
	pfn_free_tx_ring(priv);
	return err;
}

/* Called under RTNL. */
static void pfn_down(struct pfn_priv *priv)
{
	struct net_device *ndev = priv->ndev;

	if (!priv->hw_up)
		return;
	priv->hw_up = false;

	/* From here on NAPI, the handlers and the link work re-arm nothing. */
	clear_bit(PFN_FLAG_UP, &priv->flags);
	/* Before stopping the queue: a running poll could wake it. */
	napi_disable(&priv->napi);
	netif_tx_disable(ndev);

	writel(0, priv->regs + PFN_REG_CTRL);		/* RX_EN, TX_EN off */
	cancel_work_sync(&priv->link_work);
	writel(PFN_INT_ALL, priv->regs + PFN_REG_IMC);
	pfn_free_irqs(priv);
	/* A handler that ran meanwhile may have queued it again. */
	cancel_work_sync(&priv->link_work);
	netif_carrier_off(ndev);

	/* Stops all DMA (nic.md 6) before the buffers go away. */
	pfn_reset_hw(priv);
	pfn_free_rx_ring(priv);
	pfn_free_tx_ring(priv);
	netdev_reset_queue(ndev);
}

/*
 * Called under RTNL with the device down and the interface running. On
 * failure the service work tries again every PFN_SERVICE_INTERVAL: the
 * interface never stays down for good while it is meant to be up.
 */
static void pfn_restart(struct pfn_priv *priv)
{
	struct net_device *ndev = priv->ndev;
	int err;

	/*
	 * The queue has been stopped since the device went down: without
	 * this, the stack's watchdog could count that as a TX timeout in the
	 * moment between the carrier coming back and the wake below.
	 */
	netif_trans_update(ndev);
	err = pfn_up(priv);
	if (err == -ENODEV) {
		/* Says so once, then waits for the device to answer. */
		pfn_mark_gone(priv);
		return;
	}
	if (err) {
		if (!priv->restart_failed)
			netdev_err(ndev, "restart failed (%d), retrying\n", err);
		priv->restart_failed = true;
		return;
	}
	if (priv->restart_failed)
		netdev_info(ndev, "restarted\n");
	priv->restart_failed = false;
	/* Frames the qdisc queued while we were down go out now. */
	netif_wake_queue(ndev);
}

/*
 * Called under RTNL with the device up: is it still there, was it reset
 * behind our back, and did the TX timeout ask for a reset? One register
 * read per run.
 */
static void pfn_service_up(struct pfn_priv *priv)
{
	struct net_device *ndev = priv->ndev;

	u32 ctrl = readl(priv->regs + PFN_REG_CTRL);

	if (!test_bit(PFN_FLAG_GONE, &priv->flags) && pfn_is_gone(ctrl))
		pfn_mark_gone(priv);
	else if (priv->hw_up && !(ctrl & PFN_CTRL_RX_EN))
		/*
		 * nic.md 8: an endpoint that went and came back between two
		 * checks leaves the device in its power-on state, without
		 * the enables set at open: it was gone all the same.
		 */
		pfn_mark_gone_why(priv, "found reset by its endpoint");
	if (test_bit(PFN_FLAG_GONE, &priv->flags)) {
		/* nic.md 8: nothing is left with the device; free it all. */
		pfn_down(priv);
		return;
	}
	if (test_and_clear_bit(PFN_FLAG_RESET, &priv->flags)) {
		netdev_info(ndev, "resetting after TX timeout\n");
		pfn_down(priv);
		pfn_restart(priv);
	}
}

/*
 * Called under RTNL with the device down and the interface running: the
 * device was gone or a restart failed. One read of CTRL per run tells
 * whether it answers again; then it is re-initialised from scratch.
 */
static void pfn_service_down(struct pfn_priv *priv)
{
	bool was_gone = test_bit(PFN_FLAG_GONE, &priv->flags);

	if (pfn_is_gone(readl(priv->regs + PFN_REG_CTRL)))
		return;
	pfn_restart(priv);
	if (was_gone && priv->hw_up)
		netdev_info(priv->ndev, "device is back: re-initialised\n");
}

/*
 * Runs every PFN_SERVICE_INTERVAL while the interface is up and present,
 * and at once when the device is found gone or the TX timeout fires.
 * Stops by itself once the interface is down or detached (ndo_open
 * starts it again); remove and shutdown cancel it.
 */
static void pfn_service_work(struct work_struct *work)
{
	struct pfn_priv *priv = container_of(to_delayed_work(work),
					     struct pfn_priv, service_work);
	struct net_device *ndev = priv->ndev;

	rtnl_lock();
	if (!netif_running(ndev) || !netif_device_present(ndev)) {
		rtnl_unlock();
		return;
	}
	if (priv->hw_up)
		pfn_service_up(priv);
	else
		pfn_service_down(priv);
	rtnl_unlock();
	schedule_delayed_work(&priv->service_work, PFN_SERVICE_INTERVAL);
}

/*
 * Apply a new MTU or ring sizes, restarting the device if it runs. If the
 * restart fails, fall back to the old values. Called under RTNL.
 */
static int pfn_reconfigure(struct pfn_priv *priv, unsigned int mtu,
			   u32 rx_size, u32 tx_size)
{
	struct net_device *ndev = priv->ndev;
	unsigned int old_mtu = ndev->mtu;
	u32 old_rx = priv->rx_ring_size, old_tx = priv->tx_ring_size;
	bool running = netif_running(ndev);
	int err;

	if (running)
		pfn_down(priv);
	WRITE_ONCE(ndev->mtu, mtu);
	priv->rx_ring_size = rx_size;
	priv->tx_ring_size = tx_size;
	if (!running)
		return 0;

	err = pfn_up(priv);
	if (!err) {
		netif_wake_queue(ndev);
		return 0;
	}

	netdev_err(ndev, "restart failed (%d), reverting\n", err);
	WRITE_ONCE(ndev->mtu, old_mtu);
	priv->rx_ring_size = old_rx;
	priv->tx_ring_size = old_tx;
	pfn_restart(priv);
	return err;
}

/* ---- net_device_ops -------------------------------------------------------- */

static int pfn_open(struct net_device *ndev)
{
	struct pfn_priv *priv = netdev_priv(ndev);
	int err;

	priv->restart_failed = false;
	err = pfn_up(priv);
	if (err) {
		if (err == -ENODEV)
			netdev_err(ndev, "device not responding (reads return all ones)\n");
		return err;
	}
	netif_start_queue(ndev);
	schedule_delayed_work(&priv->service_work, PFN_SERVICE_INTERVAL);
	return 0;
}

static int pfn_stop(struct net_device *ndev)
{
	pfn_down(netdev_priv(ndev));
	return 0;
}

/* The core has checked min_mtu (68) and max_mtu (9000). */
static int pfn_change_mtu(struct net_device *ndev, int new_mtu)
{
	struct pfn_priv *priv = netdev_priv(ndev);

	return pfn_reconfigure(priv, new_mtu, priv->rx_ring_size,
			       priv->tx_ring_size);
}

/* Runs in the watchdog timer: log, and reset from the service work. */
static void pfn_tx_timeout(struct net_device *ndev, unsigned int txqueue)
{
	struct pfn_priv *priv = netdev_priv(ndev);
	u32 head = readl(priv->regs + PFN_REG_TX_HEAD);

	if (pfn_is_gone(head)) {
		pfn_mark_gone(priv);
		return;
	}
	netdev_warn(ndev, "TX timeout: next_to_clean %u next_to_use %u TX_HEAD %u TX_TAIL %u\n",
		    READ_ONCE(priv->tx.next_to_clean),
		    READ_ONCE(priv->tx.next_to_use), head,
		    readl(priv->regs + PFN_REG_TX_TAIL));
	set_bit(PFN_FLAG_RESET, &priv->flags);
	mod_delayed_work(system_wq, &priv->service_work, 0);
}

static void pfn_get_stats64(struct net_device *ndev,
			    struct rtnl_link_stats64 *stats)
{
	struct pfn_priv *priv = netdev_priv(ndev);
	const struct pfn_napi_stats *ns = &priv->nstats;
	const struct pfn_xmit_stats *xs = &priv->xstats;
	unsigned int start;

	do {
		start = u64_stats_fetch_begin(&ns->syncp);
		stats->rx_packets = u64_stats_read(&ns->rx_packets);
		stats->rx_bytes = u64_stats_read(&ns->rx_bytes);
		stats->rx_errors = u64_stats_read(&ns->rx_errors);
		stats->rx_dropped = u64_stats_read(&ns->rx_alloc_failed);
		stats->tx_packets = u64_stats_read(&ns->tx_packets);
		stats->tx_bytes = u64_stats_read(&ns->tx_bytes);
		stats->tx_errors = u64_stats_read(&ns->tx_errors);
	} while (u64_stats_fetch_retry(&ns->syncp, start));

	do {
		start = u64_stats_fetch_begin(&xs->syncp);
		stats->tx_dropped = u64_stats_read(&xs->tx_dropped);
	} while (u64_stats_fetch_retry(&xs->syncp, start));
}

static const struct net_device_ops pfn_netdev_ops = {
	.ndo_open		= pfn_open,
	.ndo_stop		= pfn_stop,
	.ndo_start_xmit		= pfn_start_xmit,
	.ndo_get_stats64	= pfn_get_stats64,
	.ndo_change_mtu		= pfn_change_mtu,
	.ndo_tx_timeout		= pfn_tx_timeout,
	.ndo_validate_addr	= eth_validate_addr,
	.ndo_set_mac_address	= eth_mac_addr,
};

/* ---- ethtool --------------------------------------------------------------- */

struct pfn_stat {
	char name[ETH_GSTRING_LEN];
	size_t offset;
};

#define PFN_NSTAT(m)	{ #m, offsetof(struct pfn_napi_stats, m) }
#define PFN_XSTAT(m)	{ #m, offsetof(struct pfn_xmit_stats, m) }

static const struct pfn_stat pfn_napi_stat_desc[] = {
	PFN_NSTAT(rx_packets),
	PFN_NSTAT(rx_bytes),
	PFN_NSTAT(rx_errors),
	PFN_NSTAT(rx_alloc_failed),
	PFN_NSTAT(rx_copybreak),
	PFN_NSTAT(rx_doorbells),
	PFN_NSTAT(tx_packets),
	PFN_NSTAT(tx_bytes),
	PFN_NSTAT(tx_errors),
	PFN_NSTAT(napi_polls),
};

static const struct pfn_stat pfn_xmit_stat_desc[] = {
	PFN_XSTAT(tx_dropped),
	PFN_XSTAT(tx_busy),
	PFN_XSTAT(tx_queue_stopped),
	PFN_XSTAT(tx_doorbells),
};

/* nic.md 2: the STAT_* registers, in register order from 0x300 */
static const char pfn_hw_stat_names[][ETH_GSTRING_LEN] = {
	"hw_rx_packets",
	"hw_rx_bytes",
	"hw_tx_packets",
	"hw_tx_bytes",
	"hw_rx_dropped",
	"hw_rx_errors",
	"hw_tx_errors",
	"hw_interrupts",
};

#define PFN_NUM_NSTATS		ARRAY_SIZE(pfn_napi_stat_desc)
#define PFN_NUM_XSTATS		ARRAY_SIZE(pfn_xmit_stat_desc)
#define PFN_NUM_HW_STATS	ARRAY_SIZE(pfn_hw_stat_names)
#define PFN_NUM_STATS	(PFN_NUM_NSTATS + PFN_NUM_XSTATS + PFN_NUM_HW_STATS)

static void pfn_get_drvinfo(struct net_device *ndev,
			    struct ethtool_drvinfo *info)
{
	struct pfn_priv *priv = netdev_priv(ndev);

	strscpy(info->driver, PFN_DRV_NAME, sizeof(info->driver));
	strscpy(info->bus_info, pci_name(priv->pdev), sizeof(info->bus_info));
}

static int pfn_get_sset_count(struct net_device *ndev, int sset)
{
	return sset == ETH_SS_STATS ? PFN_NUM_STATS : -EOPNOTSUPP;
}

static void pfn_get_strings(struct net_device *ndev, u32 sset, u8 *data)
{
	unsigned int i;

	if (sset != ETH_SS_STATS)
		return;
	for (i = 0; i < PFN_NUM_NSTATS; i++, data += ETH_GSTRING_LEN)
		memcpy(data, pfn_napi_stat_desc[i].name, ETH_GSTRING_LEN);
	for (i = 0; i < PFN_NUM_XSTATS; i++, data += ETH_GSTRING_LEN)
		memcpy(data, pfn_xmit_stat_desc[i].name, ETH_GSTRING_LEN);
	for (i = 0; i < PFN_NUM_HW_STATS; i++, data += ETH_GSTRING_LEN)
		memcpy(data, pfn_hw_stat_names[i], ETH_GSTRING_LEN);
}

static void pfn_read_sw_stats(const struct u64_stats_sync *syncp,
			      const void *base, const struct pfn_stat *desc,
			      unsigned int n, u64 *data)
{
	unsigned int start, i;

	do {
		start = u64_stats_fetch_begin(syncp);
		for (i = 0; i < n; i++)
			data[i] = u64_stats_read(base + desc[i].offset);
	} while (u64_stats_fetch_retry(syncp, start));
}

/* Slow path: the STAT_* reads are one round trip each (nic.md 2). */
static void pfn_get_ethtool_stats(struct net_device *ndev,
				  struct ethtool_stats *estats, u64 *data)
{
	struct pfn_priv *priv = netdev_priv(ndev);
	unsigned int i;

	pfn_read_sw_stats(&priv->nstats.syncp, &priv->nstats,
			  pfn_napi_stat_desc, PFN_NUM_NSTATS, data);
	data += PFN_NUM_NSTATS;
	pfn_read_sw_stats(&priv->xstats.syncp, &priv->xstats,
			  pfn_xmit_stat_desc, PFN_NUM_XSTATS, data);
	data += PFN_NUM_XSTATS;
	for (i = 0; i < PFN_NUM_HW_STATS; i++)
		data[i] = readq(priv->regs + PFN_REG_STAT_BASE + 8 * i);
}

static void pfn_get_ringparam(struct net_device *ndev,
			      struct ethtool_ringparam *ring,
			      struct kernel_ethtool_ringparam *kring,
			      struct netlink_ext_ack *extack)
{
	struct pfn_priv *priv = netdev_priv(ndev);

	ring->rx_max_pending = PFN_RING_MAX;
	ring->tx_max_pending = PFN_RING_MAX;
	ring->rx_pending = priv->rx_ring_size;
	ring->tx_pending = priv->tx_ring_size;
}

/* nic.md 2: sizes are rounded up to a power of two within 8..4096. */
static int pfn_set_ringparam(struct net_device *ndev,
			     struct ethtool_ringparam *ring,
			     struct kernel_ethtool_ringparam *kring,
			     struct netlink_ext_ack *extack)
{
	struct pfn_priv *priv = netdev_priv(ndev);
	u32 rx, tx;

	if (ring->rx_mini_pending || ring->rx_jumbo_pending)
		return -EINVAL;
	rx = roundup_pow_of_two(clamp_t(u32, ring->rx_pending, PFN_RING_MIN,
					PFN_RING_MAX));
	tx = roundup_pow_of_two(clamp_t(u32, ring->tx_pending, PFN_RING_MIN,
					PFN_RING_MAX));
	if (rx == priv->rx_ring_size && tx == priv->tx_ring_size)
		return 0;
	return pfn_reconfigure(priv, ndev->mtu, rx, tx);
}

/* nic.md 2: ITR, one interval for every vector; exposed as rx-usecs. */
static int pfn_get_coalesce(struct net_device *ndev,
			    struct ethtool_coalesce *ec,
			    struct kernel_ethtool_coalesce *kec,
			    struct netlink_ext_ack *extack)
{
	struct pfn_priv *priv = netdev_priv(ndev);

	ec->rx_coalesce_usecs = priv->itr;
	return 0;
}

static int pfn_set_coalesce(struct net_device *ndev,
			    struct ethtool_coalesce *ec,
			    struct kernel_ethtool_coalesce *kec,
			    struct netlink_ext_ack *extack)
{
	struct pfn_priv *priv = netdev_priv(ndev);

	if (ec->rx_coalesce_usecs > PFN_ITR_MAX) {
		NL_SET_ERR_MSG_MOD(extack, "rx-usecs is at most 100000");
		return -EINVAL;
	}
	priv->itr = ec->rx_coalesce_usecs;
	if (priv->hw_up)
		writel(priv->itr, priv->regs + PFN_REG_ITR);
	return 0;
}

static const struct ethtool_ops pfn_ethtool_ops = {
	.supported_coalesce_params = ETHTOOL_COALESCE_RX_USECS,
	.get_drvinfo		= pfn_get_drvinfo,
	.get_link		= ethtool_op_get_link,
	.get_sset_count		= pfn_get_sset_count,
	.get_strings		= pfn_get_strings,
	.get_ethtool_stats	= pfn_get_ethtool_stats,
	.get_ringparam		= pfn_get_ringparam,
	.set_ringparam		= pfn_set_ringparam,
	.get_coalesce		= pfn_get_coalesce,
	.set_coalesce		= pfn_set_coalesce,
};

/* ---- PCI ------------------------------------------------------------------- */

/* nic.md 1 and 4: MSI-X with 3 vectors, else MSI, else INTx. */
static int pfn_setup_irq_vectors(struct pfn_priv *priv, int want)
{
	struct pci_dev *pdev = priv->pdev;
	int n;

	if (want == PFN_IRQ_AUTO || want == PFN_IRQ_MSIX) {
		n = pci_alloc_irq_vectors(pdev, PFN_NUM_MSIX, PFN_NUM_MSIX,
					  PCI_IRQ_MSIX);
		if (n > 0) {
			priv->irq_mode = PFN_IRQ_MSIX;
			return 0;
		}
		if (want == PFN_IRQ_MSIX)
			return n;
		dev_info(&pdev->dev, "MSI-X unavailable (%d), trying MSI\n", n);
	}
	if (want == PFN_IRQ_AUTO || want == PFN_IRQ_MSI) {
		n = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI);
		if (n > 0) {
			priv->irq_mode = PFN_IRQ_MSI;
			return 0;
		}
		if (want == PFN_IRQ_MSI)
			return n;
		dev_info(&pdev->dev, "MSI unavailable (%d), using INTx\n", n);
	}
	n = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_LEGACY);
	if (n < 0)
		return n;
	priv->irq_mode = PFN_IRQ_INTX;
	return 0;
}

/* nic.md 2 and 5: MAC_LO holds bytes 0-3 (byte 0 in bits 7:0), MAC_HI 4-5. */
static void pfn_read_mac(struct pfn_priv *priv)
{
	u32 lo = readl(priv->regs + PFN_REG_MAC_LO);
	u32 hi = readl(priv->regs + PFN_REG_MAC_HI);
	u8 addr[ETH_ALEN];

	addr[0] = lo;
	addr[1] = lo >> 8;
	addr[2] = lo >> 16;
	addr[3] = lo >> 24;
	addr[4] = hi;
	addr[5] = hi >> 8;

	if (is_valid_ether_addr(addr)) {
		eth_hw_addr_set(priv->ndev, addr);
	} else {
		dev_warn(&priv->pdev->dev, "invalid MAC %pM, using a random one\n",
			 addr);
		eth_hw_addr_random(priv->ndev);
	}
}

static int pfn_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	struct net_device *ndev;
	struct pfn_priv *priv;
	int want, err;

	want = sysfs_match_string(pfn_irq_mode_names, irq_mode);
	if (want < 0) {
		dev_err(dev, "irq_mode=%s: use auto, msix, msi or intx\n",
			irq_mode);
		return -EINVAL;
	}

	err = pcim_enable_device(pdev);
	if (err)
		return err;
	/* nic.md 1: BAR0 is a 4 KiB memory BAR */
	if (!(pci_resource_flags(pdev, 0) & IORESOURCE_MEM) ||
	    pci_resource_len(pdev, 0) < PFN_BAR0_LEN) {
		dev_err(dev, "BAR0 is not a 4 KiB memory BAR\n");
		return -ENODEV;
	}
	err = pcim_iomap_regions(pdev, BIT(0), PFN_DRV_NAME);
	if (err)
		return err;
	err = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
	if (err)
		return err;

	ndev = devm_alloc_etherdev(dev, sizeof(*priv));
	if (!ndev)
		return -ENOMEM;
	SET_NETDEV_DEV(ndev, dev);

	priv = netdev_priv(ndev);
	priv->ndev = ndev;
	priv->pdev = pdev;
	priv->regs = pcim_iomap_table(pdev)[0];
	priv->rx_ring_size = PFN_RING_DEFAULT;
	priv->tx_ring_size = PFN_RING_DEFAULT;
	priv->itr = min(itr_us, PFN_ITR_MAX);
	u64_stats_init(&priv->nstats.syncp);
	u64_stats_init(&priv->xstats.syncp);
	INIT_WORK(&priv->link_work, pfn_link_work);
	INIT_DELAYED_WORK(&priv->service_work, pfn_service_work);
	pci_set_drvdata(pdev, priv);

	/*
	 * Whatever a previous owner left running stops here (nic.md 6),
	 * before bus mastering lets its DMA reach memory again.
	 */
	err = pfn_reset_hw(priv);
	if (err) {
		if (err == -ENODEV)
			dev_err(dev, "device not responding (reads return all ones)\n");
		return err;
	}
	pci_set_master(pdev);
	pfn_read_mac(priv);

	err = pfn_setup_irq_vectors(priv, want);
	if (err) {
		dev_err(dev, "cannot get %s interrupts: %d\n",
			pfn_irq_mode_names[want], err);
		return err;
	}

	ndev->netdev_ops = &pfn_netdev_ops;
	ndev->ethtool_ops = &pfn_ethtool_ops;
	ndev->watchdog_timeo = 5 * HZ;
	ndev->min_mtu = ETH_MIN_MTU;
	ndev->max_mtu = PFN_MAX_MTU;
	ndev->features |= NETIF_F_HIGHDMA;
	netif_napi_add(ndev, &priv->napi, pfn_poll);
	netif_carrier_off(ndev);

	err = register_netdev(ndev);
	if (err)
		goto err_napi;

	netdev_info(ndev, "pciefw NIC at %s, MAC %pM, %s interrupts\n",
		    pci_name(pdev), ndev->dev_addr,
		    pfn_irq_mode_names[priv->irq_mode]);
	return 0;

err_napi:
	netif_napi_del(&priv->napi);
	pci_free_irq_vectors(pdev);
	return err;
}

/* Mirror of pfn_probe(); devres undoes the pcim_/devm_ parts afterwards. */
static void pfn_remove(struct pci_dev *pdev)
{
	struct pfn_priv *priv = pci_get_drvdata(pdev);

	unregister_netdev(priv->ndev);	/* calls ndo_stop if running */
	cancel_delayed_work_sync(&priv->service_work);
	cancel_work_sync(&priv->link_work);
	netif_napi_del(&priv->napi);
	pfn_reset_hw(priv);
	pci_free_irq_vectors(pdev);
}

/*
 * Quiesce DMA for reboot and kexec. Once detached, the service work does
 * nothing (a TX-timeout reset must not bring the device back); cancelling
 * it outside RTNL also waits for a run that was waiting for the lock.
 */
static void pfn_shutdown(struct pci_dev *pdev)
{
	struct pfn_priv *priv = pci_get_drvdata(pdev);

	rtnl_lock();
	netif_device_detach(priv->ndev);
	pfn_down(priv);
	rtnl_unlock();
	cancel_delayed_work_sync(&priv->service_work);
	pfn_reset_hw(priv);
	pci_clear_master(pdev);
}

static const struct pci_device_id pfn_pci_ids[] = {
	{ PCI_DEVICE(PFN_VENDOR_ID, PFN_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, pfn_pci_ids);

static struct pci_driver pfn_pci_driver = {
	.name		= PFN_DRV_NAME,
	.id_table	= pfn_pci_ids,
	.probe		= pfn_probe,
	.remove		= pfn_remove,
	.shutdown	= pfn_shutdown,
};
module_pci_driver(pfn_pci_driver);

MODULE_DESCRIPTION("pciefw network controller (PCIe endpoint in a separate process)");
MODULE_LICENSE("GPL");
