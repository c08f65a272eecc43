/* arch_host_drive.c - host build only: runs a program of port accesses through the real thunks, as rewritten code
 * would (lea over the red zone, call, lea back), for the Python tests and the instruction-count benchmark. */

#include "pvio_arch.h"

/* One operation of a program (mirrored by pvgen.runtime.hostlib.HostOp). */
struct pvio_host_op {
	pvio_u32 kind;    /* PVIO_HOP_* */
	pvio_u32 port;
	pvio_u32 size;    /* 1, 2, 4 */
	pvio_u32 value;   /* OUT: value; OUTS/INS: element count; THRESHOLD: threshold */
	pvio_u64 buf;     /* OUTS/INS: address of the elements */
};

enum { PVIO_HOP_OUT = 1, PVIO_HOP_IN, PVIO_HOP_OUTS, PVIO_HOP_INS, PVIO_HOP_TICK, PVIO_HOP_HLT,
       PVIO_HOP_THRESHOLD, PVIO_HOP_FLUSH };

void pvio_tick(void);
void pvio_flush(void);
unsigned pvio_set_threshold(unsigned n);

#define THUNK_CALL(name) "lea -128(%%rsp), %%rsp\n\tcall " name "\n\tlea 128(%%rsp), %%rsp"

static void t_out(pvio_u16 port, unsigned size, pvio_u32 v)
{
	if (size == 1)
		__asm__ __volatile__(THUNK_CALL("__pvio_outb_dx") : : "d"(port), "a"(v) : "memory");
	else if (size == 2)
		__asm__ __volatile__(THUNK_CALL("__pvio_outw_dx") : : "d"(port), "a"(v) : "memory");
	else
		__asm__ __volatile__(THUNK_CALL("__pvio_outl_dx") : : "d"(port), "a"(v) : "memory");
}

static pvio_u32 t_in(pvio_u16 port, unsigned size)
{
	pvio_u32 v = 0;

	if (size == 1)
		__asm__ __volatile__(THUNK_CALL("__pvio_inb_dx") : "+a"(v) : "d"(port) : "memory");
	else if (size == 2)
		__asm__ __volatile__(THUNK_CALL("__pvio_inw_dx") : "+a"(v) : "d"(port) : "memory");
	else
		__asm__ __volatile__(THUNK_CALL("__pvio_inl_dx") : "+a"(v) : "d"(port) : "memory");
	return v;
}

static void t_outs(pvio_u16 port, unsigned size, const void *src, unsigned long n)
{
	if (size == 1)
		__asm__ __volatile__(THUNK_CALL("__pvio_rep_outsb") : "+S"(src), "+c"(n) : "d"(port) : "memory");
	else if (size == 2)
		__asm__ __volatile__(THUNK_CALL("__pvio_rep_outsw") : "+S"(src), "+c"(n) : "d"(port) : "memory");
	else
		__asm__ __volatile__(THUNK_CALL("__pvio_rep_outsl") : "+S"(src), "+c"(n) : "d"(port) : "memory");
}

static void t_ins(pvio_u16 port, unsigned size, void *dst, unsigned long n)
{
	if (size == 1)
		__asm__ __volatile__(THUNK_CALL("__pvio_rep_insb") : "+D"(dst), "+c"(n) : "d"(port) : "memory");
	else if (size == 2)
		__asm__ __volatile__(THUNK_CALL("__pvio_rep_insw") : "+D"(dst), "+c"(n) : "d"(port) : "memory");
	else
		__asm__ __volatile__(THUNK_CALL("__pvio_rep_insl") : "+D"(dst), "+c"(n) : "d"(port) : "memory");
}

/* The index of the operation pvio_host_run is executing (for the interrupt simulation). */
unsigned long pvio_host_cur_op;

/* Run n operations; results[i] receives the value of an IN (others 0).  Reentrant (an interrupt handler may run
 * a program of its own); pvio_host_cur_op is restored on return. */
void pvio_host_run(const struct pvio_host_op *ops, unsigned long n, pvio_u32 *results)
{
	unsigned long i, outer = pvio_host_cur_op;

	for (i = 0; i < n; i++) {
		const struct pvio_host_op *o = &ops[i];

		pvio_host_cur_op = i;
		results[i] = 0;
		switch (o->kind) {
		case PVIO_HOP_OUT:
			t_out((pvio_u16)o->port, o->size, o->value);
			break;
		case PVIO_HOP_IN:
			results[i] = t_in((pvio_u16)o->port, o->size);
			break;
		case PVIO_HOP_OUTS:
			t_outs((pvio_u16)o->port, o->size, (const void *)(unsigned long)o->buf, o->value);
			break;
		case PVIO_HOP_INS:
			t_ins((pvio_u16)o->port, o->size, (void *)(unsigned long)o->buf, o->value);
			break;
		case PVIO_HOP_TICK:
			pvio_tick();
			break;
		case PVIO_HOP_HLT:
			__asm__ __volatile__(THUNK_CALL("__pvio_hlt") : : : "memory");
			break;
		case PVIO_HOP_THRESHOLD:
			results[i] = pvio_set_threshold(o->value);
			break;
		case PVIO_HOP_FLUSH:
			pvio_flush();
			break;
		}
	}
	pvio_host_cur_op = outer;
}

/* The benchmark loop: n posted `outb %al,%dx` through the thunk, nothing else. */
void pvio_host_outb_loop(pvio_u16 port, unsigned long n)
{
	unsigned long i;

	for (i = 0; i < n; i++)
		t_out(port, 1, (pvio_u32)i & 0xff);
}
