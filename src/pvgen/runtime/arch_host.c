/* arch_host.c - the host build's test doubles: the exit and the real instructions call into Python (ctypes). */

#include "pvio_arch.h"

struct pvio_host_ops pvio_host_ops;
unsigned long pvio_host_ram_base;

/* no_caller_saved_registers: the back end calls these without spilling; the spill happens here, off the fast
 * path.  An unset pointer behaves like an absent device (reads all ones). */
PVIO_BACKEND void pvio_arch_exit(pvio_u16 port, pvio_u32 value)
{
	if (pvio_host_ops.exit)
		pvio_host_ops.exit(port, value);
}

PVIO_BACKEND pvio_u32 pvio_arch_in(pvio_u16 port, unsigned size)
{
	if (pvio_host_ops.in)
		return pvio_host_ops.in(port, size);
	return size == 1 ? 0xff : size == 2 ? 0xffff : 0xffffffffu;
}

PVIO_BACKEND void pvio_arch_out(pvio_u16 port, unsigned size, pvio_u32 value)
{
	if (pvio_host_ops.out)
		pvio_host_ops.out(port, size, value);
}

PVIO_BACKEND void pvio_arch_ins(pvio_u16 port, unsigned size, void *dst, unsigned long count)
{
	if (pvio_host_ops.ins)
		pvio_host_ops.ins(port, size, dst, count);
}

PVIO_BACKEND void pvio_arch_outs(pvio_u16 port, unsigned size, const void *src, unsigned long count)
{
	if (pvio_host_ops.outs)
		pvio_host_ops.outs(port, size, src, count);
}

PVIO_BACKEND void pvio_arch_hlt(void)
{
	if (pvio_host_ops.hlt)
		pvio_host_ops.hlt();
}
