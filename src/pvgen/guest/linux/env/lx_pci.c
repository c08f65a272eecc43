/* lx_pci.c - PCI for real drivers: enumerate bus 0 over configuration mechanism #1 and probe matching drivers. */
#include <linux/pci.h>
#include "lx_env.h"

/* The configuration accessors lx_pci_read32/write32/read16/write16 are in lx_pciconf.c (mechanism #1). */
#define LX_MAX_BOUND 64

static struct pci_bus bus0 = { .number = 0 };
static struct pci_dev *bound[LX_MAX_BOUND];
static struct pci_driver *bound_drv[LX_MAX_BOUND];
static int nbound;

struct pci_dev *lx_pci_bound(int n)
{
	return n >= 0 && n < nbound ? bound[n] : NULL;
}

/* BAR sizing (PCI 3.0 section 6.2.5.1): write all ones, read the mask back, restore; with decoding off meanwhile,
 * as drivers/pci/probe.c does, so the device never answers at the all-ones address. */
static void read_bar(struct pci_dev *pdev, int i)
{
	unsigned reg = PCI_BASE_ADDRESS_0 + 4 * i;
	u32 orig = lx_pci_read32(0, pdev->devfn, reg), mask;
	u16 cmd = lx_pci_read16(0, pdev->devfn, PCI_COMMAND);
	struct resource *r = &pdev->resource[i];

	if (cmd & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY))
		lx_pci_write16(0, pdev->devfn, PCI_COMMAND, cmd & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY));
	lx_pci_write32(0, pdev->devfn, reg, ~0u);
	mask = lx_pci_read32(0, pdev->devfn, reg);
	lx_pci_write32(0, pdev->devfn, reg, orig);
	if (cmd & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY))
		lx_pci_write16(0, pdev->devfn, PCI_COMMAND, cmd);
	if (!mask || mask == ~0u)
		return;
	r->name = pci_name(pdev);
	if (orig & PCI_BASE_ADDRESS_SPACE_IO) {
		u32 m = mask & PCI_BASE_ADDRESS_IO_MASK & 0xffff;

		r->start = orig & PCI_BASE_ADDRESS_IO_MASK;
		r->end = r->start + ((~m + 1) & 0xffff) - 1;
		r->flags = IORESOURCE_IO;
	} else {
		u32 m = mask & PCI_BASE_ADDRESS_MEM_MASK;

		r->start = orig & PCI_BASE_ADDRESS_MEM_MASK;
		r->end = r->start + (u32)(~m + 1) - 1;
		r->flags = IORESOURCE_MEM;
		if (orig & PCI_BASE_ADDRESS_MEM_PREFETCH)
			r->flags |= IORESOURCE_PREFETCH;
	}
}

static struct pci_dev *scan_function(unsigned devfn)
{
	u32 id = lx_pci_read32(0, devfn, PCI_VENDOR_ID);
	struct pci_dev *pdev;
	char *name;
	u32 v;

	if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0)
		return NULL;
	pdev = hx_alloc(sizeof(*pdev), 64);
	name = hx_alloc(16, 8);
	lx_snprintf(name, 16, "0000:00:%02x.%d", PCI_SLOT(devfn), PCI_FUNC(devfn));
	pdev->dev.init_name = name;
	pdev->bus = &bus0;
	pdev->devfn = devfn;
	pdev->vendor = id & 0xffff;
	pdev->device = id >> 16;
	v = lx_pci_read32(0, devfn, PCI_CLASS_REVISION);
	pdev->revision = v & 0xff;
	pdev->class = v >> 8;
	pdev->hdr_type = (lx_pci_read32(0, devfn, PCI_CACHE_LINE_SIZE) >> 16) & 0x7f;
	v = lx_pci_read32(0, devfn, PCI_SUBSYSTEM_VENDOR_ID);
	pdev->subsystem_vendor = v & 0xffff;
	pdev->subsystem_device = v >> 16;
	v = lx_pci_read32(0, devfn, PCI_INTERRUPT_LINE);
	pdev->irq = v & 0xff;
	pdev->pin = (v >> 8) & 0xff;
	pdev->dma_mask = 0xffffffff;
	pdev->current_state = PCI_D0;
	if (pdev->hdr_type == PCI_HEADER_TYPE_NORMAL)
		for (int i = 0; i < PCI_STD_NUM_BARS; i++)
			read_bar(pdev, i);
	return pdev;
}

static const struct pci_device_id *match_id(const struct pci_device_id *ids, const struct pci_dev *pdev)
{
	for (; ids->vendor || ids->subvendor || ids->class_mask; ids++) {
		if ((ids->vendor == PCI_ANY_ID || ids->vendor == pdev->vendor) &&
		    (ids->device == PCI_ANY_ID || ids->device == pdev->device) &&
		    (ids->subvendor == PCI_ANY_ID || ids->subvendor == pdev->subsystem_vendor) &&
		    (ids->subdevice == PCI_ANY_ID || ids->subdevice == pdev->subsystem_device) &&
		    !((ids->class ^ pdev->class) & ids->class_mask))
			return ids;
	}
	return NULL;
}

static void try_probe(struct pci_driver *drv, struct pci_dev *pdev)
{
	const struct pci_device_id *id = match_id(drv->id_table, pdev);
	int err;

	if (!id)
		return;
	if (nbound == LX_MAX_BOUND) {
		_printk(KERN_ERR "lxenv: %s: more than %d bound PCI functions, %s not probed\n", drv->name,
			LX_MAX_BOUND, pci_name(pdev));
		return;
	}
	pdev->dev.driver = &drv->driver;
	err = drv->probe(pdev, id);
	if (err) {
		_printk(KERN_ERR "lxenv: %s: probe of %s failed with error %d\n", drv->name, pci_name(pdev), err);
		pdev->dev.driver = NULL;
		return;
	}
	bound_drv[nbound] = drv;
	bound[nbound++] = pdev;
}

int __pci_register_driver(struct pci_driver *drv, struct module *owner, const char *mod_name)
{
	drv->driver.name = drv->name;
	drv->driver.owner = owner;
	for (unsigned slot = 0; slot < 32; slot++) {
		struct pci_dev *pdev = scan_function(PCI_DEVFN(slot, 0));
		bool multi;

		if (!pdev)
			continue;
		multi = (lx_pci_read32(0, PCI_DEVFN(slot, 0), PCI_CACHE_LINE_SIZE) >> 16) & 0x80;
		try_probe(drv, pdev);
		for (unsigned fn = 1; multi && fn < 8; fn++) {
			pdev = scan_function(PCI_DEVFN(slot, fn));
			if (pdev)
				try_probe(drv, pdev);
		}
	}
	return 0;
}

void pci_unregister_driver(struct pci_driver *drv)
{
	for (int i = 0; i < nbound; i++) {
		if (bound_drv[i] != drv)
			continue;
		if (drv->remove)
			drv->remove(bound[i]);
		bound[i]->dev.driver = NULL;
		for (int j = i; j + 1 < nbound; j++) {
			bound[j] = bound[j + 1];
			bound_drv[j] = bound_drv[j + 1];
		}
		nbound--;
		i--;
	}
}

/* drivers/pci/pci.c: enable decoding of the BARs the device has. */
int pci_enable_device(struct pci_dev *pdev)
{
	u16 cmd = lx_pci_read16(0, pdev->devfn, PCI_COMMAND), want = cmd;

	for (int i = 0; i < PCI_STD_NUM_BARS; i++) {
		if (pdev->resource[i].flags & IORESOURCE_IO)
			want |= PCI_COMMAND_IO;
		if (pdev->resource[i].flags & IORESOURCE_MEM)
			want |= PCI_COMMAND_MEMORY;
	}
	if (want != cmd)
		lx_pci_write16(0, pdev->devfn, PCI_COMMAND, want);
	atomic_inc(&pdev->enable_cnt);
	return 0;
}

void pci_disable_device(struct pci_dev *pdev)
{
	u16 cmd;

	if (atomic_dec_return(&pdev->enable_cnt) != 0)
		return;
	cmd = lx_pci_read16(0, pdev->devfn, PCI_COMMAND);
	if (cmd & PCI_COMMAND_MASTER)
		lx_pci_write16(0, pdev->devfn, PCI_COMMAND, cmd & ~PCI_COMMAND_MASTER);
}

void pci_set_master(struct pci_dev *pdev)
{
	u16 cmd = lx_pci_read16(0, pdev->devfn, PCI_COMMAND);

	lx_pci_write16(0, pdev->devfn, PCI_COMMAND, cmd | PCI_COMMAND_MASTER);
}
