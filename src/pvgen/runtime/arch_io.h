/* arch_io.h - the real port-I/O instructions as inline functions (encodings from ioinsn.h, never mnemonics). */
#ifndef PVGEN_ARCH_IO_H
#define PVGEN_ARCH_IO_H

#include "ioinsn.h"

static inline pvio_u32 pvio_arch_in(pvio_u16 port, unsigned size)
{
	pvio_u32 v = 0;

	if (size == 1)
		__asm__ __volatile__(PVIO_INSN_INB : "+a"(v) : "d"(port));
	else if (size == 2)
		__asm__ __volatile__(PVIO_INSN_INW : "+a"(v) : "d"(port));
	else
		__asm__ __volatile__(PVIO_INSN_INL : "=a"(v) : "d"(port));
	return size == 1 ? (v & 0xff) : size == 2 ? (v & 0xffff) : v;
}

static inline void pvio_arch_out(pvio_u16 port, unsigned size, pvio_u32 value)
{
	if (size == 1)
		__asm__ __volatile__(PVIO_INSN_OUTB : : "a"(value), "d"(port) : "memory");
	else if (size == 2)
		__asm__ __volatile__(PVIO_INSN_OUTW : : "a"(value), "d"(port) : "memory");
	else
		__asm__ __volatile__(PVIO_INSN_OUTL : : "a"(value), "d"(port) : "memory");
}

/* Ascending (DF is clear inside the back end, thunk ABI). */
static inline void pvio_arch_ins(pvio_u16 port, unsigned size, void *dst, unsigned long count)
{
	if (size == 1)
		__asm__ __volatile__(PVIO_INSN_REP_INSB : "+D"(dst), "+c"(count) : "d"(port) : "memory");
	else if (size == 2)
		__asm__ __volatile__(PVIO_INSN_REP_INSW : "+D"(dst), "+c"(count) : "d"(port) : "memory");
	else
		__asm__ __volatile__(PVIO_INSN_REP_INSL : "+D"(dst), "+c"(count) : "d"(port) : "memory");
}

static inline void pvio_arch_outs(pvio_u16 port, unsigned size, const void *src, unsigned long count)
{
	if (size == 1)
		__asm__ __volatile__(PVIO_INSN_REP_OUTSB : "+S"(src), "+c"(count) : "d"(port) : "memory");
	else if (size == 2)
		__asm__ __volatile__(PVIO_INSN_REP_OUTSW : "+S"(src), "+c"(count) : "d"(port) : "memory");
	else
		__asm__ __volatile__(PVIO_INSN_REP_OUTSL : "+S"(src), "+c"(count) : "d"(port) : "memory");
}

static inline void pvio_arch_hlt(void)
{
	__asm__ __volatile__(PVIO_INSN_HLT : : : "memory");
}

/* The flush exit: one outl to a control port; "memory" makes the compiler write the queue out before it and
 * re-read what the monitor wrote after it. */
static inline void pvio_arch_exit(pvio_u16 port, pvio_u32 value)
{
	__asm__ __volatile__(PVIO_INSN_OUTL : : "a"(value), "d"(port) : "memory");
}

#endif
