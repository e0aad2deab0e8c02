// SPDX-License-Identifier: GPL-2.0
/*
 * pciefw_epc: the controller's DMA engine as a dmaengine provider
 * (docs/epc.md 12).
 *
 * One memcpy channel.  A bus address inside the controller's outbound
 * window (what pci_epc_mem_alloc_addr() hands out, mapped by map_addr) is
 * the host's memory behind it; any other is the endpoint guest's.  So a
 * function copies host memory to or from its own, or host to host, with
 * dmaengine_prep_dma_memcpy(), as 6.1's pci-epf-test does when the
 * controller offers no private slave channel: its copy test asks for
 * DMA_MEMCPY, which DesignWare's eDMA channels do not offer.
 *
 * The engine runs one transfer at a time; descriptors queue in the driver,
 * and each transfer's end raises EVENTS.DMA, whose handler starts the next
 * and leaves the callbacks to a tasklet.  The channel is private: only a
 * client that asks for it gets it.
 */

#include <linux/dmaengine.h>
#include <linux/interrupt.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "pciefw_epc.h"

/* epc.md 12 */
#define PFE_DMA_SRC_LO		0x800
#define PFE_DMA_SRC_HI		0x804
#define PFE_DMA_DST_LO		0x808
#define PFE_DMA_DST_HI		0x80c
#define PFE_DMA_LEN		0x810
#define PFE_DMA_CTRL		0x814
#define PFE_DMA_START		BIT(0)
#define PFE_DMA_ABORT		BIT(1)
#define PFE_DMA_STATUS		0x818
#define PFE_DMA_BUSY		BIT(0)
#define PFE_DMA_DONE		BIT(1)
#define PFE_DMA_ERROR		0x81c
#define PFE_DMA_COUNT		0x820

struct pfe_dma_desc {
	struct dma_async_tx_descriptor txd;
	struct list_head node;
	dma_addr_t src;
	dma_addr_t dst;
	u32 len;
	enum dmaengine_tx_result result;
};

struct pfe_dma {
	struct pfe *pfe;
	struct dma_device ddev;
	struct dma_chan chan;
	struct tasklet_struct tasklet;	/* runs the callbacks */
	spinlock_t lock;		/* everything below, and the registers */
	struct list_head prepared;	/* not submitted yet */
	struct list_head submitted;	/* not issued yet */
	struct list_head issued;	/* waiting for the engine */
	struct pfe_dma_desc *active;	/* on the engine */
	struct list_head ended;		/* their callbacks are due */
	dma_cookie_t failed;		/* the last cookie that failed */
	bool gone;			/* the controller was removed */
};

static struct pfe_dma *to_pfe_dma(struct dma_chan *chan)
{
	return container_of(chan, struct pfe_dma, chan);
}

static struct pfe_dma_desc *to_desc(struct dma_async_tx_descriptor *txd)
{
	return container_of(txd, struct pfe_dma_desc, txd);
}

/* Give the engine the next issued transfer (dma->lock). */
static void pfe_dma_start_next(struct pfe_dma *dma)
{
	struct pfe *pfe = dma->pfe;
	struct pfe_dma_desc *d;

	if (dma->active || dma->gone || list_empty(&dma->issued))
		return;
	d = list_first_entry(&dma->issued, struct pfe_dma_desc, node);
	list_del(&d->node);
	dma->active = d;
	pfe_wr(pfe, PFE_DMA_SRC_LO, lower_32_bits(d->src));
	pfe_wr(pfe, PFE_DMA_SRC_HI, upper_32_bits(d->src));
	pfe_wr(pfe, PFE_DMA_DST_LO, lower_32_bits(d->dst));
	pfe_wr(pfe, PFE_DMA_DST_HI, upper_32_bits(d->dst));
	pfe_wr(pfe, PFE_DMA_LEN, d->len);
	pfe_wr(pfe, PFE_DMA_CTRL, PFE_DMA_START);
}

static dma_cookie_t pfe_dma_tx_submit(struct dma_async_tx_descriptor *txd)
{
	struct pfe_dma *dma = to_pfe_dma(txd->chan);
	struct pfe_dma_desc *d = to_desc(txd);
	struct dma_chan *chan = txd->chan;
	unsigned long flags;
	dma_cookie_t cookie;

	spin_lock_irqsave(&dma->lock, flags);
	cookie = chan->cookie + 1;
	if (cookie < DMA_MIN_COOKIE)
		cookie = DMA_MIN_COOKIE;
	chan->cookie = cookie;
	txd->cookie = cookie;
	list_move_tail(&d->node, &dma->submitted);
	spin_unlock_irqrestore(&dma->lock, flags);
	return cookie;
}

static struct dma_async_tx_descriptor *
pfe_dma_prep_memcpy(struct dma_chan *chan, dma_addr_t dst, dma_addr_t src,
		    size_t len, unsigned long flags)
{
	struct pfe_dma *dma = to_pfe_dma(chan);
	struct pfe_dma_desc *d;
	unsigned long irqflags;

	if (!len || len > U32_MAX)
		return NULL;
	d = kzalloc(sizeof(*d), GFP_NOWAIT);
	if (!d)
		return NULL;
	dma_async_tx_descriptor_init(&d->txd, chan);
	d->txd.flags = flags;
	d->txd.tx_submit = pfe_dma_tx_submit;
	d->src = src;
	d->dst = dst;
	d->len = len;
	spin_lock_irqsave(&dma->lock, irqflags);
	if (dma->gone) {
		spin_unlock_irqrestore(&dma->lock, irqflags);
		kfree(d);
		return NULL;
	}
	list_add_tail(&d->node, &dma->prepared);
	spin_unlock_irqrestore(&dma->lock, irqflags);
	return &d->txd;
}

static void pfe_dma_issue_pending(struct dma_chan *chan)
{
	struct pfe_dma *dma = to_pfe_dma(chan);
	unsigned long flags;

	spin_lock_irqsave(&dma->lock, flags);
	list_splice_tail_init(&dma->submitted, &dma->issued);
	pfe_dma_start_next(dma);
	spin_unlock_irqrestore(&dma->lock, flags);
}

static enum dma_status pfe_dma_tx_status(struct dma_chan *chan,
					 dma_cookie_t cookie,
					 struct dma_tx_state *state)
{
	struct pfe_dma *dma = to_pfe_dma(chan);
	dma_cookie_t used, complete;
	enum dma_status status;
	unsigned long flags;

	spin_lock_irqsave(&dma->lock, flags);
	used = chan->cookie;
	complete = chan->completed_cookie;
	status = dma_async_is_complete(cookie, complete, used);
	if (status == DMA_COMPLETE && cookie == dma->failed)
		status = DMA_ERROR;
	spin_unlock_irqrestore(&dma->lock, flags);
	dma_set_tx_state(state, complete, used, 0);
	return status;
}

/* Free what never reached the engine, and stop what is on it (no callbacks). */
static int pfe_dma_terminate_all(struct dma_chan *chan)
{
	struct pfe_dma *dma = to_pfe_dma(chan);
	struct pfe_dma_desc *d, *n;
	unsigned long flags;
	LIST_HEAD(drop);

	spin_lock_irqsave(&dma->lock, flags);
	if (dma->active) {
		if (!dma->gone)
			pfe_wr(dma->pfe, PFE_DMA_CTRL, PFE_DMA_ABORT);
		list_add_tail(&dma->active->node, &drop);
		dma->active = NULL;
	}
	list_splice_tail_init(&dma->submitted, &drop);
	list_splice_tail_init(&dma->issued, &drop);
	spin_unlock_irqrestore(&dma->lock, flags);
	list_for_each_entry_safe(d, n, &drop, node)
		kfree(d);
	return 0;
}

static void pfe_dma_synchronize(struct dma_chan *chan)
{
	tasklet_kill(&to_pfe_dma(chan)->tasklet);
}

static int pfe_dma_alloc_chan_resources(struct dma_chan *chan)
{
	chan->cookie = DMA_MIN_COOKIE;
	chan->completed_cookie = DMA_MIN_COOKIE;
	return 1;
}

static void pfe_dma_free_chan_resources(struct dma_chan *chan)
{
	struct pfe_dma *dma = to_pfe_dma(chan);
	struct pfe_dma_desc *d, *n;
	unsigned long flags;
	LIST_HEAD(drop);

	pfe_dma_terminate_all(chan);
	tasklet_kill(&dma->tasklet);
	spin_lock_irqsave(&dma->lock, flags);
	list_splice_tail_init(&dma->prepared, &drop);
	list_splice_tail_init(&dma->ended, &drop);
	spin_unlock_irqrestore(&dma->lock, flags);
	list_for_each_entry_safe(d, n, &drop, node)
		kfree(d);
}

/* Callbacks outside the lock, then the descriptors are freed. */
static void pfe_dma_tasklet(struct tasklet_struct *t)
{
	struct pfe_dma *dma = from_tasklet(dma, t, tasklet);
	struct pfe_dma_desc *d, *n;
	struct dmaengine_result res = { };
	unsigned long flags;
	LIST_HEAD(ended);

	spin_lock_irqsave(&dma->lock, flags);
	list_splice_tail_init(&dma->ended, &ended);
	spin_unlock_irqrestore(&dma->lock, flags);
	list_for_each_entry_safe(d, n, &ended, node) {
		res.result = d->result;
		if (d->txd.callback_result)
			d->txd.callback_result(d->txd.callback_param, &res);
		else if (d->txd.callback)
			d->txd.callback(d->txd.callback_param);
		kfree(d);
	}
}

/* EVENTS.DMA: the transfer on the engine ended (the EPC's interrupt). */
void pfe_dma_event(struct pfe *pfe)
{
	struct pfe_dma *dma = pfe->dma;
	struct pfe_dma_desc *d;
	u32 status;

	if (!dma)
		return;
	spin_lock(&dma->lock);
	d = dma->active;
	status = pfe_rd(pfe, PFE_DMA_STATUS);
	if (!d || (status & PFE_DMA_BUSY)) {
		spin_unlock(&dma->lock);
		return;
	}
	dma->active = NULL;
	if (status & PFE_DMA_DONE) {
		d->result = DMA_TRANS_NOERROR;
	} else {
		d->result = DMA_TRANS_ABORTED;
		dma->failed = d->txd.cookie;
		dev_err_ratelimited(&pfe->pdev->dev,
				    "DMA %pad -> %pad (%u bytes) failed: error %u after %u bytes\n",
				    &d->src, &d->dst, d->len,
				    pfe_rd(pfe, PFE_DMA_ERROR),
				    pfe_rd(pfe, PFE_DMA_COUNT));
	}
	dma->chan.completed_cookie = d->txd.cookie;
	list_add_tail(&d->node, &dma->ended);
	pfe_dma_start_next(dma);
	spin_unlock(&dma->lock);
	tasklet_schedule(&dma->tasklet);
}

const char *pfe_dma_name(struct pfe *pfe)
{
	return dma_chan_name(&pfe->dma->chan);
}

static void pfe_dma_release(struct dma_device *ddev)
{
	kfree(container_of(ddev, struct pfe_dma, ddev));
}

int pfe_dma_probe(struct pfe *pfe)
{
	struct pfe_dma *dma;
	struct dma_device *ddev;
	int ret;

	dma = kzalloc(sizeof(*dma), GFP_KERNEL);
	if (!dma)
		return -ENOMEM;
	dma->pfe = pfe;
	spin_lock_init(&dma->lock);
	INIT_LIST_HEAD(&dma->prepared);
	INIT_LIST_HEAD(&dma->submitted);
	INIT_LIST_HEAD(&dma->issued);
	INIT_LIST_HEAD(&dma->ended);
	tasklet_setup(&dma->tasklet, pfe_dma_tasklet);

	ddev = &dma->ddev;
	dma_cap_zero(ddev->cap_mask);
	dma_cap_set(DMA_MEMCPY, ddev->cap_mask);
	dma_cap_set(DMA_PRIVATE, ddev->cap_mask);
	ddev->dev = &pfe->pdev->dev;
	ddev->src_addr_widths = BIT(DMA_SLAVE_BUSWIDTH_1_BYTE) |
				BIT(DMA_SLAVE_BUSWIDTH_4_BYTES) |
				BIT(DMA_SLAVE_BUSWIDTH_8_BYTES);
	ddev->dst_addr_widths = ddev->src_addr_widths;
	ddev->directions = BIT(DMA_MEM_TO_MEM);
	ddev->residue_granularity = DMA_RESIDUE_GRANULARITY_DESCRIPTOR;
	ddev->copy_align = DMAENGINE_ALIGN_1_BYTE;
	ddev->device_alloc_chan_resources = pfe_dma_alloc_chan_resources;
	ddev->device_free_chan_resources = pfe_dma_free_chan_resources;
	ddev->device_prep_dma_memcpy = pfe_dma_prep_memcpy;
	ddev->device_issue_pending = pfe_dma_issue_pending;
	ddev->device_tx_status = pfe_dma_tx_status;
	ddev->device_terminate_all = pfe_dma_terminate_all;
	ddev->device_synchronize = pfe_dma_synchronize;
	ddev->device_release = pfe_dma_release;
	INIT_LIST_HEAD(&ddev->channels);
	dma->chan.device = ddev;
	list_add_tail(&dma->chan.device_node, &ddev->channels);

	ret = dma_async_device_register(ddev);
	if (ret) {
		kfree(dma);
		return ret;
	}
	pfe->dma = dma;
	return 0;
}

/*
 * After the EPC's interrupt is freed, and the functions unbound (they
 * release their channels); a client that still holds the channel gets
 * nothing more from it, and the structure lives until it lets go
 * (device_release).
 */
void pfe_dma_remove(struct pfe *pfe)
{
	struct pfe_dma *dma = pfe->dma;
	unsigned long flags;

	if (!dma)
		return;
	spin_lock_irqsave(&dma->lock, flags);
	if (dma->active)
		pfe_wr(pfe, PFE_DMA_CTRL, PFE_DMA_ABORT);
	dma->gone = true;
	spin_unlock_irqrestore(&dma->lock, flags);
	tasklet_kill(&dma->tasklet);
	pfe->dma = NULL;
	dma_async_device_unregister(&dma->ddev);
}
