/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Force-included into the kernel's pci-epf-test.c (Kbuild), which is
 * otherwise built unchanged: a fix for an upstream defect of 6.1.
 *
 * pci_epf_test_unbind() stops the command handler with
 * cancel_delayed_work(), which does not wait for a handler that is
 * running and does not stop it from queueing itself again.  Unlinking
 * the function while a transfer runs (the host in pcitest -r/-w/-c)
 * then frees the BARs under the running handler, which raises its
 * interrupt through the freed registers and is queued again: a NULL
 * pointer dereference in pci_epf_test_raise_irq() and a panic of the
 * endpoint guest (docs/epc.md 10.3, 11).  cancel_delayed_work_sync() waits
 * for the handler to finish the command it is in and keeps it from
 * queueing itself again, which is what the unbind needs.
 */
#ifndef PCI_EPF_TEST_FIX_H
#define PCI_EPF_TEST_FIX_H

#define cancel_delayed_work(dwork) cancel_delayed_work_sync(dwork)

#endif
