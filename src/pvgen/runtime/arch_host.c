/* arch_host.c - the host build's test doubles: the exit and the real instructions call into Python (ctypes). */

#include "pvio_arch.h"

/* The back end runs with an 8-byte aligned stack (-mpreferred-stack-boundary=3, thunks called from anywhere);
 * Python's callbacks need the ABI's 16 bytes: realign on entry. */
#define HOST_DOUBLE PVIO_BACKEND __attribute__((force_align_arg_pointer))

struct pvio_host_ops pvio_host_ops;
unsigned long pvio_host_ram_base;
__attribute__((__visibility__("hidden"))) unsigned long pvio_host_irq_mask;

unsigned long pvio_host_irq_pending;
pvio_u32 pvio_host_irq_lines, pvio_host_irq_notified;

/* Runs the pending interrupt's handler with interrupts masked (the harness runs upcalls soft-disabled). */
HOST_DOUBLE void pvio_host_deliver(void)
{
	pvio_host_irq_mask++;
	while (pvio_host_irq_pending) {
		pvio_host_irq_pending = 0;
		if (pvio_host_ops.irq)
			pvio_host_ops.irq();
	}
	pvio_host_irq_mask--;
}

unsigned long pvio_host_irq_depth(void)
{
	return pvio_host_irq_mask;
}


/* no_caller_saved_registers: the back end calls these without spilling; the spill happens here, off the fast
 * path.  An unset pointer behaves like an absent device (reads all ones). */
HOST_DOUBLE void pvio_arch_exit(pvio_u16 port, pvio_u32 value)
{
	if (pvio_host_ops.exit)
		pvio_host_ops.exit(port, value);
}

HOST_DOUBLE pvio_u32 pvio_arch_in(pvio_u16 port, unsigned size)
{
	if (pvio_host_ops.in)
		return pvio_host_ops.in(port, size);
	return size == 1 ? 0xff : size == 2 ? 0xffff : 0xffffffffu;
}

HOST_DOUBLE void pvio_arch_out(pvio_u16 port, unsigned size, pvio_u32 value)
{
	if (pvio_host_ops.out)
		pvio_host_ops.out(port, size, value);
}

HOST_DOUBLE void pvio_arch_ins(pvio_u16 port, unsigned size, void *dst, unsigned long count)
{
	if (pvio_host_ops.ins)
		pvio_host_ops.ins(port, size, dst, count);
}

HOST_DOUBLE void pvio_arch_outs(pvio_u16 port, unsigned size, const void *src, unsigned long count)
{
	if (pvio_host_ops.outs)
		pvio_host_ops.outs(port, size, src, count);
}

HOST_DOUBLE void pvio_arch_hlt(void)
{
	if (pvio_host_ops.hlt)
		pvio_host_ops.hlt();
}
