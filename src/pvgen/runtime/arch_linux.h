/* arch_linux.h - target layer for x86-64 Linux kernel modules (built without kernel headers). */
#ifndef PVGEN_ARCH_LINUX_H
#define PVGEN_ARCH_LINUX_H

#include "arch_io.h"

#if !defined(__x86_64__)
#error "the Linux module target is x86-64"
#endif

/* Per-CPU areas indexed by the kernel's per-CPU `cpu_number` (exported; what raw_smp_processor_id() reads in
 * 6.1).  Interrupts are masked with pushf/cli/popf: the module runs at CPL0, and the section is short. */
#define PVIO_ARCH_MAX_CPUS 256

extern int cpu_number;                                   /* per-CPU variable: an offset from %gs */
extern unsigned long long slow_virt_to_phys(void *p);   /* EXPORT_SYMBOL_GPL, walks the page tables */

/* For the hand-scheduled pvio_out in batch.c: interrupts masked by pushfq/cli ... popfq (the flags word sits
 * on the stack below the saved registers); the area of the current CPU, bounds-checked. */
#define PVIO_ARCH_ASM_RET "jmp __x86_return_thunk"   /* CONFIG_RETHUNK */
#define PVIO_ARCH_ASM_IRQ_SAVE "pushfq; cli"
#define PVIO_ARCH_ASM_IRQ_RESTORE "popfq"
#define PVIO_ARCH_ASM_LOAD_AREA(reg, fail) \
	"movslq %gs:cpu_number, " reg "; cmpq $256, " reg "; jae " fail "; movq pvio_areas(," reg ",8), " reg

static inline unsigned pvio_arch_cpu(void)
{
	unsigned c;

	__asm__ __volatile__("movl %%gs:cpu_number, %0" : "=r"(c));
	return c;
}

static inline unsigned long pvio_arch_irq_save(void)
{
	unsigned long f;

	__asm__ __volatile__("pushfq; popq %0; cli" : "=r"(f) : : "memory");
	return f;
}

static inline void pvio_arch_irq_restore(unsigned long f)
{
	__asm__ __volatile__("pushq %0; popfq" : : "r"(f) : "memory", "cc");
}

static inline pvio_u64 pvio_arch_virt_to_phys(const void *p)
{
	return slow_virt_to_phys((void *)p);
}

/* Interrupts reach a module through the kernel's own controller: no notification lines. */
static inline pvio_u32 pvio_arch_irq_lines(void)
{
	return 0;
}

static inline void pvio_arch_irq_notify(pvio_u32 lines)
{
	(void)lines;
}

#endif
