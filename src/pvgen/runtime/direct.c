/* direct.c - the direct runtime back end: each thunk call executes the original port-I/O instruction. */

/* Freestanding: no libc, no kernel headers; builds for i386, x86-64 and gcc -m16 code, in user space and inside a
 * Linux module (Kbuild's own flags suffice there).  See docs/runtime-direct.md.
 * Build: gcc -ffreestanding -mgeneral-regs-only -O2 -c direct.c with -m64 -mpreferred-stack-boundary=3,
 *        or -m32, or -m16 -DPVIO_CODE16 (16-bit segment encodings in ioinsn.h).
 * The instructions are emitted as .byte sequences (ioinsn.h).  DF is clear on entry (thunk ABI), so the `rep`
 * forms below run ascending, as pvio_backend.h specifies. */

#include "pvio_backend.h"
#include "ioinsn.h"

PVIO_BACKEND pvio_u32 pvio_in(pvio_u16 port, unsigned size)
{
	pvio_u8 b;
	pvio_u16 w;
	pvio_u32 l;

	switch (size) {
	case 1:
		__asm__ __volatile__(PVIO_INSN_INB : "=a"(b) : "d"(port));
		return b;
	case 2:
		__asm__ __volatile__(PVIO_INSN_INW : "=a"(w) : "d"(port));
		return w;
	default:
		__asm__ __volatile__(PVIO_INSN_INL : "=a"(l) : "d"(port));
		return l;
	}
}

PVIO_BACKEND void pvio_out(pvio_u16 port, unsigned size, pvio_u32 value)
{
	switch (size) {
	case 1:
		__asm__ __volatile__(PVIO_INSN_OUTB : : "a"((pvio_u8)value), "d"(port));
		break;
	case 2:
		__asm__ __volatile__(PVIO_INSN_OUTW : : "a"((pvio_u16)value), "d"(port));
		break;
	default:
		__asm__ __volatile__(PVIO_INSN_OUTL : : "a"(value), "d"(port));
		break;
	}
}

PVIO_BACKEND void pvio_ins(pvio_u16 port, unsigned size, void *dst, unsigned long count)
{
	switch (size) {
	case 1:
		__asm__ __volatile__(PVIO_INSN_REP_INSB : "+D"(dst), "+c"(count) : "d"(port) : "memory");
		break;
	case 2:
		__asm__ __volatile__(PVIO_INSN_REP_INSW : "+D"(dst), "+c"(count) : "d"(port) : "memory");
		break;
	default:
		__asm__ __volatile__(PVIO_INSN_REP_INSL : "+D"(dst), "+c"(count) : "d"(port) : "memory");
		break;
	}
}

PVIO_BACKEND void pvio_outs(pvio_u16 port, unsigned size, const void *src, unsigned long count)
{
	switch (size) {
	case 1:
		__asm__ __volatile__(PVIO_INSN_REP_OUTSB : "+S"(src), "+c"(count) : "d"(port) : "memory");
		break;
	case 2:
		__asm__ __volatile__(PVIO_INSN_REP_OUTSW : "+S"(src), "+c"(count) : "d"(port) : "memory");
		break;
	default:
		__asm__ __volatile__(PVIO_INSN_REP_OUTSL : "+S"(src), "+c"(count) : "d"(port) : "memory");
		break;
	}
}

PVIO_BACKEND void pvio_hlt(void)
{
	__asm__ __volatile__(PVIO_INSN_HLT : : : "memory");
}
