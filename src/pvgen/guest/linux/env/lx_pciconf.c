/* lx_pciconf.c - PCI configuration mechanism #1 accessors: the port I/O of arch/x86/pci/direct.c's role. */
#include <linux/types.h>
#include <linux/io.h>
#include "lx_env.h"

/* PCI Local Bus Specification 3.0, section 3.2.2.3.2: CONFIG_ADDRESS at 0xCF8 (a dword write selects enable bit,
 * bus, device, function and dword register), CONFIG_DATA at 0xCFC..0xCFF (byte lane = offset in the dword).
 *
 * The only port I/O of the environment, in a file of its own: the kernel does these accesses in
 * arch/x86/pci/direct.c, which is built into vmlinux, so the build (guest/linux/build.py, DriverSet.port_io_env)
 * compiles this file with the drivers' compiler. In a rewritten variant (CC="gcc -B<pvgen-as>") its outl/inl go
 * through the pvgen runtime like the drivers' own port I/O; the original variant builds it with plain gcc. */
#define PCI_CONF_ADDR 0xcf8
#define PCI_CONF_DATA 0xcfc

static u32 conf_addr(unsigned bus, unsigned devfn, unsigned reg)
{
	return 0x80000000u | (bus << 16) | (devfn << 8) | (reg & 0xfc);
}

u32 lx_pci_read32(unsigned bus, unsigned devfn, unsigned reg)
{
	outl(conf_addr(bus, devfn, reg), PCI_CONF_ADDR);
	return inl(PCI_CONF_DATA);
}

void lx_pci_write32(unsigned bus, unsigned devfn, unsigned reg, u32 val)
{
	outl(conf_addr(bus, devfn, reg), PCI_CONF_ADDR);
	outl(val, PCI_CONF_DATA);
}

u16 lx_pci_read16(unsigned bus, unsigned devfn, unsigned reg)
{
	outl(conf_addr(bus, devfn, reg), PCI_CONF_ADDR);
	return inw(PCI_CONF_DATA + (reg & 2));
}

void lx_pci_write16(unsigned bus, unsigned devfn, unsigned reg, u16 val)
{
	outl(conf_addr(bus, devfn, reg), PCI_CONF_ADDR);
	outw(val, PCI_CONF_DATA + (reg & 2));
}
