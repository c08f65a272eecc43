/* arch_host.h - target layer for the user-mode host build: test doubles for the exit and the real instructions. */
#ifndef PVGEN_ARCH_HOST_H
#define PVGEN_ARCH_HOST_H

/* The host build is loaded into a Python process (ctypes).  Python sets the function pointers in pvio_host_ops:
 * `exit` runs the monitor's batch handler in-process, the others record strict accesses into a Python device
 * model.  "Guest RAM" is a buffer; a GPA is an offset from pvio_host_ram_base.  Interrupts are simulated by a
 * soft mask word (pvio_host_irq_mask), which costs what a soft mask costs in the CPL3 harness. */

#define PVIO_ARCH_MAX_CPUS 1

struct pvio_host_ops {
	void (*exit)(pvio_u16 port, pvio_u32 value);
	pvio_u32 (*in)(pvio_u16 port, unsigned size);
	void (*out)(pvio_u16 port, unsigned size, pvio_u32 value);
	void (*ins)(pvio_u16 port, unsigned size, void *dst, unsigned long count);
	void (*outs)(pvio_u16 port, unsigned size, const void *src, unsigned long count);
	void (*hlt)(void);
	void (*irq)(void);     /* the interrupt handler (PVIO_HOST_IRQ_SIM builds) */
};

extern struct pvio_host_ops pvio_host_ops;
extern unsigned long pvio_host_ram_base;
/* The soft interrupt mask: a nesting depth, like the harness's soft masking (hidden: no GOT indirection).
 * pvio_host_irq_depth() lets the tests check that every exit and real instruction happens masked. */
extern __attribute__((__visibility__("hidden"))) unsigned long pvio_host_irq_mask;
unsigned long pvio_host_irq_depth(void);

/* Interrupt simulation (tests, -DPVIO_HOST_IRQ_SIM): Python raises pvio_host_irq_pending from inside a masked
 * section (during an exit or a real instruction); like the harness, the interrupt is delivered when the mask
 * drops to zero, and the handler (pvio_host_ops.irq) runs masked and may do I/O through the thunks. */
extern unsigned long pvio_host_irq_pending;
PVIO_BACKEND void pvio_host_deliver(void);

#ifndef PVIO_HOST_IRQ_SIM
/* For the hand-scheduled pvio_out in batch.c (the simulation needs the C version's restore hook). */
#define PVIO_ARCH_ASM_RET "ret"
#define PVIO_ARCH_ASM_IRQ_SAVE "incq pvio_host_irq_mask(%rip)"
#define PVIO_ARCH_ASM_IRQ_RESTORE "decq pvio_host_irq_mask(%rip)"
#define PVIO_ARCH_ASM_LOAD_AREA(reg, fail) "movq pvio_areas(%rip), " reg
#endif

static inline unsigned pvio_arch_cpu(void)
{
	return 0;
}

static inline unsigned long pvio_arch_irq_save(void)
{
	__asm__ __volatile__("incq %0" : "+m"(pvio_host_irq_mask) : : "memory");
	return 0;
}

static inline void pvio_arch_irq_restore(unsigned long f)
{
	(void)f;
	__asm__ __volatile__("decq %0" : "+m"(pvio_host_irq_mask) : : "memory");
#ifdef PVIO_HOST_IRQ_SIM
	if (pvio_host_irq_mask == 0 && pvio_host_irq_pending)
		pvio_host_deliver();
#endif
}

static inline pvio_u64 pvio_arch_virt_to_phys(const void *p)
{
	return (unsigned long)p - pvio_host_ram_base;
}

/* Interrupt notification (tests): the lines the test lets the runtime take, and what it was handed.  With
 * PVIO_HOST_IRQ_SIM a notification is delivered like a simulated interrupt (pvio_host_irq_pending). */
extern pvio_u32 pvio_host_irq_lines, pvio_host_irq_notified;

static inline pvio_u32 pvio_arch_irq_lines(void)
{
	return pvio_host_irq_lines;
}

static inline void pvio_arch_irq_notify(pvio_u32 lines)
{
	pvio_host_irq_notified |= lines;
#ifdef PVIO_HOST_IRQ_SIM
	pvio_host_irq_pending = 1;
#endif
}

/* Out of line (arch_host.c): they call through the function pointers. */
PVIO_BACKEND void pvio_arch_exit(pvio_u16 port, pvio_u32 value);
PVIO_BACKEND pvio_u32 pvio_arch_in(pvio_u16 port, unsigned size);
PVIO_BACKEND void pvio_arch_out(pvio_u16 port, unsigned size, pvio_u32 value);
PVIO_BACKEND void pvio_arch_ins(pvio_u16 port, unsigned size, void *dst, unsigned long count);
PVIO_BACKEND void pvio_arch_outs(pvio_u16 port, unsigned size, const void *src, unsigned long count);
PVIO_BACKEND void pvio_arch_hlt(void);

#endif
