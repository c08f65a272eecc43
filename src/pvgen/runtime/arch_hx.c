/* arch_hx.c - the environment hooks of the freestanding target for the CPL3 guest harness (harness.h). */

#include "pvio_arch.h"
#include "../guest/include/harness.h"

/* The harness masks interrupts in software (hx_irq_save); these wrappers are no_caller_saved_registers, so the
 * register spill needed to call into the harness happens here, not in every back-end function.  They are weak:
 * an environment that knows its mask word can define cheaper no_caller_saved_registers versions (a posted OUT
 * then saves the ~50 instructions these two wrapper calls cost per operation). */
__attribute__((__weak__)) PVIO_BACKEND unsigned long pvio_arch_irq_save(void)
{
	return hx_irq_save();
}

__attribute__((__weak__)) PVIO_BACKEND void pvio_arch_irq_restore(unsigned long flags)
{
	hx_irq_restore(flags);
}

__attribute__((__weak__)) pvio_u64 pvio_arch_virt_to_phys(const void *p)
{
	return hx_virt_to_phys(p);
}

/* Interrupt notification: none unless the environment takes it (the harness's irq.c defines both). */
__attribute__((__weak__)) pvio_u32 pvio_arch_irq_lines(void)
{
	return 0;
}

__attribute__((__weak__)) PVIO_BACKEND void pvio_arch_irq_notify(pvio_u32 lines)
{
	(void)lines;
}
