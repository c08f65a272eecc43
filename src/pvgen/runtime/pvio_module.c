// SPDX-License-Identifier: GPL-2.0
/* pvio_module.c - the batching runtime as a kernel module of its own (pvio.ko).
 *
 * At load it registers an area on every online CPU with the pvgen monitor and starts the per-CPU timer flush
 * (arch_linux_glue.c, pvio_linux_start); it exports the thunks that drivers assembled by pvgen-as call, so every
 * rewritten driver of the kernel (8390.ko and ne2k-pci.ko alike) shares one queue per CPU and the order of all
 * their port I/O is kept.  Without a pvgen monitor the registration fails and each thunk executes the original
 * instruction.  Load it before the rewritten drivers, unload it after them. */

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/printk.h>

int pvio_linux_start(unsigned int hz);
void pvio_linux_stop(void);

static unsigned int hz = 250;
module_param(hz, uint, 0444);
MODULE_PARM_DESC(hz, "timer flushes per second on each CPU (the timer flush trigger)");

/* pvio_exports.h: one PVIO_EXPORT(name) per thunk of thunks64.S (written by pvgen at build time). */
#define PVIO_EXPORT(name) extern char name[]; EXPORT_SYMBOL_GPL(name);
#include "pvio_exports.h"

static int __init pvio_module_init(void)
{
	pr_info("pvio: batching on %d CPU(s)\n", pvio_linux_start(hz));
	return 0;
}

static void __exit pvio_module_exit(void)
{
	pvio_linux_stop();
}

module_init(pvio_module_init);
module_exit(pvio_module_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("pvgen batching runtime: per-CPU batch areas and the port-I/O thunks of rewritten drivers");
