/* cptr_backend.c - a test back end that uses memory as C code does: through DS, as the batching back end does.
 *
 * The string functions move one element at a time between the port and the buffer through a C pointer (DS, not
 * the ES of a real `rep ins`), and every value in or out passes through a stack slot read back through a pointer
 * (DS again, not SS).  The oracle runs the thunks with it to check that they give the back end what the C ABI
 * assumes (DS = ES = SS, docs/thunk-abi.md) whatever the caller's segments.  The port side is direct.c, built
 * with -Dpvio_in=direct_pvio_in -Dpvio_out=direct_pvio_out -Dpvio_ins=direct_pvio_ins -Dpvio_outs=direct_pvio_outs. */

#include "pvio_backend.h"

PVIO_BACKEND pvio_u32 direct_pvio_in(pvio_u16 port, unsigned size);
PVIO_BACKEND void direct_pvio_out(pvio_u16 port, unsigned size, pvio_u32 value);

/* v stored on the stack (SS) and loaded back through a pointer in a general register (DS). */
static pvio_u32 through_ds(pvio_u32 v)
{
	volatile pvio_u32 slot = v;
	volatile pvio_u32 *p = &slot;

	__asm__("" : "+r"(p));
	return *p;
}

PVIO_BACKEND pvio_u32 pvio_in(pvio_u16 port, unsigned size)
{
	return through_ds(direct_pvio_in(port, size));
}

PVIO_BACKEND void pvio_out(pvio_u16 port, unsigned size, pvio_u32 value)
{
	direct_pvio_out(port, size, through_ds(value));
}

PVIO_BACKEND void pvio_ins(pvio_u16 port, unsigned size, void *dst, unsigned long count)
{
	volatile pvio_u8 *p = dst;

	for (; count; count--, p += size) {
		pvio_u32 v = direct_pvio_in(port, size);
		for (unsigned i = 0; i < size; i++)
			p[i] = (pvio_u8)(v >> (8 * i));
	}
}

PVIO_BACKEND void pvio_outs(pvio_u16 port, unsigned size, const void *src, unsigned long count)
{
	const volatile pvio_u8 *p = src;

	for (; count; count--, p += size) {
		pvio_u32 v = 0;
		for (unsigned i = 0; i < size; i++)
			v |= (pvio_u32)p[i] << (8 * i);
		direct_pvio_out(port, size, v);
	}
}
