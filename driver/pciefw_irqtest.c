// SPDX-License-Identifier: GPL-2.0
/*
 * pciefw_irqtest: bind any PCI function, enable it as a bus master,
 * allocate all its MSI-X (else MSI) vectors and handle each, so that
 * /proc/interrupts counts, per vector, the interrupts that arrive: vector
 * N of 0000:01:00.0 is the line named 0000:01:00.0-N.  For
 * trying device models (docs/models.md) and for the tests that prove a
 * model's vectors reach the guest's CPU.  It matches no device by itself:
 *
 *   echo VVVV DDDD > /sys/bus/pci/drivers/pciefw_irqtest/new_id
 */
#include <linux/interrupt.h>
#include <linux/module.h>
#include <linux/pci.h>

#define DRV_NAME "pciefw_irqtest"
#define MAX_VECTORS 32

static irqreturn_t irqtest_handler(int irq, void *data)
{
	struct pci_dev *pdev = data;

	dev_info_ratelimited(&pdev->dev, "interrupt on IRQ %d\n", irq);
	return IRQ_HANDLED;
}

static int irqtest_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	int nvec, i, err;
	char *name;

	err = pcim_enable_device(pdev);
	if (err)
		return err;
	/* An MSI is a memory write: without bus mastering it is dropped. */
	pci_set_master(pdev);
	/* Managed by pcim_enable_device(): released after the IRQs. */
	nvec = pci_alloc_irq_vectors(pdev, 1, MAX_VECTORS,
				     PCI_IRQ_MSIX | PCI_IRQ_MSI);
	if (nvec < 0) {
		dev_err(&pdev->dev, "no MSI-X or MSI vectors: %d\n", nvec);
		return nvec;
	}
	for (i = 0; i < nvec; i++) {
		name = devm_kasprintf(&pdev->dev, GFP_KERNEL, "%s-%d",
				      pci_name(pdev), i);
		if (!name)
			return -ENOMEM;
		err = devm_request_irq(&pdev->dev, pci_irq_vector(pdev, i),
				       irqtest_handler, 0, name, pdev);
		if (err)
			return err;
	}
	dev_info(&pdev->dev, "%d %s vectors\n", nvec,
		 pdev->msix_enabled ? "MSI-X" : "MSI");
	return 0;
}

static struct pci_driver irqtest_driver = {
	.name = DRV_NAME,
	.probe = irqtest_probe,
};
module_pci_driver(irqtest_driver);

MODULE_DESCRIPTION("Count a PCI function's MSI/MSI-X interrupts (pciefw model testing)");
MODULE_LICENSE("GPL");
