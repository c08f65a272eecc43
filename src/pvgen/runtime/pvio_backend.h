/* pvio_backend.h - the C functions a pvgen runtime back end provides to the thunks (docs/thunk-abi.md). */
#ifndef PVGEN_PVIO_BACKEND_H
#define PVGEN_PVIO_BACKEND_H

/* Every function here is called from the assembly thunks (thunks64.S, thunks32.S), never from C code of a driver.
 * Calling convention (fixed by attributes, independent of -mregparm and friends on the command line):
 *   - no_caller_saved_registers: the function preserves every general register except the return register
 *     (%eax/%rax for pvio_in).  gcc requires the back end to be compiled with -mgeneral-regs-only.
 *   - x86-64: SysV argument registers %edi, %esi, %rdx, %rcx.
 *   - i386: regparm(3): arguments in %eax, %edx, %ecx, the 4th on the stack (caller pops).
 *   - DF is clear on entry (the thunk executes cld); flags are not preserved (the thunk restores them).
 *   - the stack may be only 8-byte (x86-64) / 4-byte (i386) aligned on entry: the thunk is called from any point of
 *     driver code.  Compile the back end with -mgeneral-regs-only and, on x86-64, -mpreferred-stack-boundary=3
 *     (or -mincoming-stack-boundary=3), as the kernel does.
 * The string functions always transfer in ascending address order; the thunks handle DF=1 themselves. */

#if defined(__x86_64__)
#define PVIO_BACKEND __attribute__((no_caller_saved_registers))
#elif defined(__i386__)
#define PVIO_BACKEND __attribute__((no_caller_saved_registers, regparm(3)))
#else
#error "pvgen runtime: x86 only"
#endif

typedef unsigned char pvio_u8;
typedef unsigned short pvio_u16;
typedef unsigned int pvio_u32;

/* `in` of size 1, 2 or 4 bytes from port; the value is returned zero-extended in %eax. */
PVIO_BACKEND pvio_u32 pvio_in(pvio_u16 port, unsigned size);
/* `out` of size 1, 2 or 4 bytes; only the low `size` bytes of value are meaningful. */
PVIO_BACKEND void pvio_out(pvio_u16 port, unsigned size, pvio_u32 value);
/* `count` elements of `size` bytes read from port into dst, dst ascending (rep ins with DF=0). */
PVIO_BACKEND void pvio_ins(pvio_u16 port, unsigned size, void *dst, unsigned long count);
/* `count` elements of `size` bytes written from src to port, src ascending (rep outs with DF=0). */
PVIO_BACKEND void pvio_outs(pvio_u16 port, unsigned size, const void *src, unsigned long count);
/* A flush point, then `hlt` (the back end decides whether the real hlt runs). */
PVIO_BACKEND void pvio_hlt(void);

#endif
