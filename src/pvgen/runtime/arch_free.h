/* arch_free.h - target layer for freestanding guests: the x86-64 CPL3 harness and i386. */
#ifndef PVGEN_ARCH_FREE_H
#define PVGEN_ARCH_FREE_H

#include "arch_io.h"

/* One vCPU. The environment provides these hooks (arch_hx.c provides them for the guest harness, harness.h):
 *   pvio_arch_virt_to_phys: the guest-physical address of a runtime-visible pointer;
 *   pvio_arch_irq_save/restore: mask interrupts around a queue operation.  At CPL3 `cli` faults, so the
 *   harness masks in software; the hooks are no_caller_saved_registers so calling them costs the fast path
 *   only a call, not a register spill. */
#define PVIO_ARCH_MAX_CPUS 1

pvio_u64 pvio_arch_virt_to_phys(const void *p);
PVIO_BACKEND unsigned long pvio_arch_irq_save(void);
PVIO_BACKEND void pvio_arch_irq_restore(unsigned long flags);
pvio_u32 pvio_arch_irq_lines(void);
PVIO_BACKEND void pvio_arch_irq_notify(pvio_u32 lines);

static inline unsigned pvio_arch_cpu(void)
{
	return 0;
}

#endif
