/* wl_pci.c - the `pci` test workload: register a catch-all PCI driver and print what each probe is given. */
#include <linux/pci.h>
#include "lx_env.h"

/* Each line is parsed by tests/kvm/test_linuxenv_pci.py and compared with the configuration the monitor built. */
static int probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	u16 cmd;

	hx_printf("PCIDEV %s vendor=%04x device=%04x class=%06x rev=%02x irq=%u pin=%u sub=%04x:%04x hdr=%02x\n",
		  pci_name(pdev), pdev->vendor, pdev->device, pdev->class, pdev->revision, pdev->irq, pdev->pin,
		  pdev->subsystem_vendor, pdev->subsystem_device, pdev->hdr_type);
	for (int i = 0; i < PCI_STD_NUM_BARS; i++) {
		struct resource *r = &pdev->resource[i];

		if (r->flags)
			hx_printf("PCIBAR %s %d %s 0x%llx 0x%llx\n", pci_name(pdev), i,
				  r->flags & IORESOURCE_IO ? "io" : "mem", (unsigned long long)r->start,
				  (unsigned long long)r->end);
	}
	if (pci_enable_device(pdev))
		return -EIO;
	cmd = lx_pci_read16(0, pdev->devfn, PCI_COMMAND);
	hx_printf("PCICMD %s 0x%04x\n", pci_name(pdev), cmd);
	return 0;
}

static void remove(struct pci_dev *pdev)
{
	pci_disable_device(pdev);
	hx_printf("PCIREMOVE %s\n", pci_name(pdev));
}

static const struct pci_device_id ids[] = {
	{ PCI_DEVICE(PCI_ANY_ID, PCI_ANY_ID) },
	{ }
};

static struct pci_driver catch_all = {
	.name = "pvgen-pci-test",
	.id_table = ids,
	.probe = probe,
	.remove = remove,
};

int hx_main(void)
{
	int n = 0;

	if (pci_register_driver(&catch_all))
		return 1;
	while (lx_pci_bound(n))
		n++;
	hx_printf("PCIBOUND %d\n", n);
	pci_unregister_driver(&catch_all);
	hx_printf("PCIBOUND %d\n", lx_pci_bound(0) ? 1 : 0);
	return 0;
}
