/* pvio_arch.h - the target layer of the batching runtime: selects how the guest exits, runs a real instruction,
 * masks interrupts, finds its CPU and translates its area to a guest-physical address. */
#ifndef PVGEN_PVIO_ARCH_H
#define PVGEN_PVIO_ARCH_H

/* Every target provides (all static inline unless noted):
 *   PVIO_ARCH_MAX_CPUS                      per-CPU areas; a CPU at or above it runs every access directly
 *   unsigned pvio_arch_cpu(void)            the current CPU (stable while interrupts are masked)
 *   unsigned long pvio_arch_irq_save(void)  mask interrupts (hard or soft), return the previous state
 *   void pvio_arch_irq_restore(unsigned long)
 *   void pvio_arch_exit(pvio_u16 port, pvio_u32 value)     the one exit of a flush: outl to a control port
 *   pvio_u32 pvio_arch_in(port, size), pvio_arch_out(port, size, value), pvio_arch_ins/outs(port, size, p, n),
 *   pvio_arch_hlt(void)                      the original instructions (strict accesses, no monitor)
 *   pvio_u64 pvio_arch_virt_to_phys(const void *p)         (may be an out-of-line hook of the environment)
 *   pvio_u32 pvio_arch_irq_lines(void)       interrupt lines the environment takes as notifications (0: none)
 *   void pvio_arch_irq_notify(pvio_u32 lines) take them: dispatch once interrupts are unmasked (called masked)
 * Targets: PVIO_TARGET_HOST (user-mode tests), PVIO_TARGET_LINUX (kernel module), otherwise freestanding
 * (x86-64 CPL3 harness or i386). */

#include "pvio_protocol.h"
#include "pvio_backend.h"

#if defined(PVIO_TARGET_HOST)
#include "arch_host.h"
#elif defined(PVIO_TARGET_LINUX)
#include "arch_linux.h"
#else
#include "arch_free.h"
#endif

#endif
