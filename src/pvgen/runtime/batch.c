/* batch.c - the batching runtime back end: queue writes, serve shadow and FIFO reads in the guest, flush in one exit. */

/* The protocol (pvio_protocol.h, generated from src/pvgen/protocol.py; docs/protocol.md) in one paragraph: each
 * CPU owns an area holding a queue of entries, a FIFO of input values, shadow registers and a 64 Ki-entry class
 * table published by the monitor.  A flush is one `outl` of the area's slot to PVIO_CTRL_FLUSH: the monitor
 * replays the entries in order, writes IN results back into their entries, refills the FIFO, refreshes the
 * shadows and sets count to 0.  Until the monitor has activated the area every function runs the original
 * instruction, so the same object is correct with no monitor at all.
 *
 * A write is POSTED (joins the queue), DOORBELL (joins the queue, then the queue is flushed) or DOORBELL_IF (a
 * DOORBELL when the value has a bit of a.doorbell_masks[slot] set, else POSTED).
 *
 * Order: every access either joins the queue, or flushes the queue before it runs (real instruction or IN entry),
 * or is served in the guest from state that is current for it: a shadow only while every queued entry is neutral
 * (count == neutral): a neutral write (pvio_neutral keeps the shadows equal to the device after the queue; any other
 * queued write could change the register) or the IN_DISCARD of a read whose side effect the monitor marked neutral
 * in a.read_neutral (it changes no shadowed value: the ATA Status read's INTRQ acknowledge); a FIFO value
 * because the monitor promised it is the next read of that port.
 * Interrupts: each operation runs with interrupts masked (pvio_arch_irq_save), so an interrupt handler doing I/O
 * sees the queue between two operations, never inside one.  The areas are per CPU.  An environment that can take
 * interrupts as notifications (pvio_arch_irq_lines) gets the lines a flush raised in header.irq_notify instead of
 * an injected interrupt (docs/protocol.md, "Interrupt notification"). */

#include "pvio_internal.h"

__attribute__((__used__)) struct pvio_area *pvio_areas[PVIO_ARCH_MAX_CPUS];

/* Lines a flush raised: handed to the environment like an interrupt arriving right after this access (it dispatches
 * them once interrupts are unmasked), instead of an injection by the interrupt controller.  Out of line: a flush
 * without a notification pays one compare. */
PVIO_HELPER void pvio_take_irqs(struct pvio_area *a)
{
	pvio_u32 lines = a->header.irq_notify & a->header.irq_lines;

	a->header.irq_notify = 0;
	if (lines)
		pvio_arch_irq_notify(lines);
}

/* The one exit.  The monitor sets count to 0; resetting it here too keeps a misbehaving monitor from making the
 * guest overrun its queue. */
PVIO_HELPER void pvio_flush_locked(struct pvio_area *a)
{
	a->header.flushes++;
	pvio_arch_exit(PVIO_CTRL_FLUSH, a->header.slot);
	a->header.count = 0;
	a->header.neutral = 0;
	a->header.staged = 0;
	a->header.xstaged = 0;
	a->header.shadow_since_tick = 0;
#ifdef PVIO_AUDIT
	a->audit.count = 0;
	a->audit.data_used = 0;
#endif
	if (__builtin_expect(a->header.irq_notify != 0, 0))
		pvio_take_irqs(a);
}

/* A read the guest cannot serve: travels as the last entry of a batch, one exit, result written back. */
PVIO_HELPER pvio_u32 pvio_in_exit(struct pvio_area *a, pvio_u16 port, unsigned size)
{
	struct pvio_entry *e = pvio_push(a, port, size, PVIO_OP_IN);

	e->value = 0;
	pvio_flush_locked(a);
	return pvio_mask(size, e->value);
}

PVIO_HELPER pvio_u32 pvio_in_strict(struct pvio_area *a, pvio_u16 port, unsigned size)
{
	pvio_flush_pending(a);
	a->header.strict++;
	return pvio_arch_in(port, size);
}

PVIO_BACKEND pvio_u32 pvio_in(pvio_u16 port, unsigned size)
{
	unsigned long fl = pvio_arch_irq_save();   /* before pvio_cur(): the CPU must not change under us */
	struct pvio_area *a = pvio_cur();
	pvio_u32 w, v;

	if (!a) {
		pvio_arch_irq_restore(fl);
		return pvio_arch_in(port, size);
	}
	pvio_audit_room(a, 1, 4);       /* an audit build logs what it serves: room first (a flush changes it) */
	w = a->classes[port];
	switch ((w >> PVIO_CLS_READ_SHIFT) & PVIO_CLS_CLASS_MASK) {
	case PVIO_CLASS_ENGINE:
		if (pvio_model_in(a, port, size, w, &v)) {
			pvio_arch_irq_restore(fl);
			return v;
		}
		__attribute__((__fallthrough__));   /* no engine serves it now: the port is a FIFO */
	case PVIO_CLASS_FIFO: {
		struct pvio_fifo *f = &a->fifo;

		if (f->port == port && f->size == size && f->head < f->count) {
			v = pvio_mask(size, a->fifo_values[f->head++]);
			a->header.fifo_hits++;
			pvio_audit(a, PVIO_AUDIT_FIFO, port, size, v, a->header.count, f->head - 1);
			pvio_arch_irq_restore(fl);
			return v;
		}
		v = pvio_in_exit(a, port, size);
		break;
	}
	case PVIO_CLASS_SHADOW: {
		struct pvio_shadow *s = &a->shadows[w >> PVIO_CLS_SLOT_SHIFT];
		unsigned i = size >> 1;   /* 1, 2, 4 -> 0, 1, 2 */

		if (pvio_exact(a) && (s->valid & (1u << i))) {
			v = pvio_mask(size, s->val[i]);
			a->header.shadow_hits++;
			a->header.shadow_since_tick++;
			if (w & PVIO_CLS_READ_EFFECT) {
				unsigned slot = w >> PVIO_CLS_SLOT_SHIFT;
				pvio_u32 pos = a->header.count;

				pvio_push(a, port, size, PVIO_OP_IN_DISCARD);
				/* a neutral read effect changes no shadowed value: the shadows stay servable */
				a->header.neutral += (a->read_neutral[slot >> 3] >> (slot & 7)) & 1u;
				pvio_audit(a, PVIO_AUDIT_REPLAYED, port, size, v, pos, 0);
				pvio_push_done(a);
			} else {
				pvio_audit(a, PVIO_AUDIT_SHADOW, port, size, v, a->header.count, 0);
			}
			pvio_arch_irq_restore(fl);
			return v;
		}
		v = pvio_in_exit(a, port, size);
		break;
	}
	default:
		if ((w & PVIO_CLS_OWNED) && (a->header.models & 2) && pvio_model_in(a, port, size, w, &v))
			break;          /* an index/data file served it */
		v = (w & PVIO_CLS_OWNED) ? pvio_in_exit(a, port, size) : pvio_in_strict(a, port, size);
		break;
	}
	pvio_arch_irq_restore(fl);
	return v;
}

PVIO_HELPER void pvio_out_strict(struct pvio_area *a, pvio_u16 port, unsigned size, pvio_u32 value)
{
	pvio_flush_pending(a);
	a->header.strict++;
	pvio_arch_out(port, size, value);
}

static inline void pvio_shadow_copy(struct pvio_shadow *d, const struct pvio_shadow *s)
{
	d->port = s->port;
	d->valid = s->valid;
	d->val[0] = s->val[0];
	d->val[1] = s->val[1];
	d->val[2] = s->val[2];
}

/* A bank-select write (PVIO_NEUTRAL_BANK): the `banked` slots after `slot` are live for the bank the port's shadow
 * `cur` selects; each bank's values follow them (bank b of slot + 1 + i at slot + 1 + banked + b * banked + i).
 * Save the live values (they may hold neutral writes) into the current bank and load the selected one.  Returns 0
 * when the banks do not fit in the slots (the write is then not neutral). */
static inline unsigned pvio_bank_switch(struct pvio_area *a, unsigned slot, const struct pvio_wrule *r,
					pvio_u32 cur, pvio_u32 value)
{
	unsigned bm = r->operand, n = r->banked, shift, from, to, i;
	struct pvio_shadow *live = &a->shadows[slot + 1];

	if (!bm || !n)
		return 0;
	shift = (unsigned)__builtin_ctz(bm);
	if (slot + 1 + n + ((bm >> shift) + 1) * n > PVIO_SHADOW_SLOTS)
		return 0;
	from = (cur & bm) >> shift;
	to = (value & bm) >> shift;
	if (from == to)
		return 1;
	for (i = 0; i < n; i++) {
		pvio_shadow_copy(&live[n + from * n + i], &live[i]);
		pvio_shadow_copy(&live[i], &live[n + to * n + i]);
	}
	return 1;
}

/* A DOORBELL_IF write that does not ring: is it neutral (write_rules[slot], docs/protocol.md)?  Only while every
 * queued entry is neutral (count == neutral), so the shadows are the device's state after the queue; a
 * neutral write changes no other shadowed register and its own as the rule says, applied here, so the shadows
 * stay servable.  Returns 1 when neutral. */
static inline unsigned pvio_neutral(struct pvio_area *a, pvio_u32 w, unsigned size, pvio_u32 value)
{
	unsigned slot = w >> PVIO_CLS_SLOT_SHIFT;
	const struct pvio_wrule *r = &a->write_rules[slot];
	struct pvio_shadow *s = &a->shadows[slot];
	pvio_u32 v;

	if (r->op == PVIO_NEUTRAL_NONE || size != 1 || !pvio_exact(a) ||
	    (value & r->value_mask) != r->value_want)
		return 0;
	if (r->cond_mask) {
		const struct pvio_shadow *c = &a->shadows[r->cond_slot];

		if (!(c->valid & 1) || (c->val[0] & r->cond_mask) != r->cond_want)
			return 0;
	}
	if (r->op == PVIO_NEUTRAL_KEEP)
		return 1;
	if (!(s->valid & 1))
		return 0;
	v = s->val[0] & 0xff;
	switch (r->op) {
	case PVIO_NEUTRAL_SET:
		v = r->operand;
		break;
	case PVIO_NEUTRAL_SET_VALUE:
		v = value & 0xff;
		break;
	case PVIO_NEUTRAL_CLEAR_BITS:
		v &= ~(value & r->operand) & 0xff;
		break;
	case PVIO_NEUTRAL_BANK:
		if (!pvio_bank_switch(a, slot, r, v, value))
			return 0;
		v = (value & (r->value_mask | r->operand)) | (v & ~(r->value_mask | r->operand));
		v &= 0xff;
		break;
	default:
		return 0;
	}
	s->val[0] = v;
	s->valid = 1;       /* the wider reads are no longer known */
	return 1;
}

PVIO_HELPER void pvio_out_slow(pvio_u16 port, unsigned size, pvio_u32 value)
{
	struct pvio_area *a;
	unsigned long fl = pvio_arch_irq_save();
	pvio_u32 w, wc;

	a = pvio_cur();
	if (!a) {
		pvio_arch_irq_restore(fl);
		pvio_arch_out(port, size, value);
		return;
	}
	w = a->classes[port];
	wc = (w >> PVIO_CLS_WRITE_SHIFT) & PVIO_CLS_CLASS_MASK;
	if ((w & PVIO_CLS_OWNED) && pvio_fifo_owed(a, port)) {
		pvio_push(a, port, size, PVIO_OP_OUT)->value = value;
		pvio_flush_locked(a);
	} else if (wc == PVIO_CLASS_POSTED) {
		pvio_push(a, port, size, PVIO_OP_OUT)->value = value;
		pvio_push_done(a);
	} else if ((wc == PVIO_CLASS_DOORBELL_IF || wc == PVIO_CLASS_DOORBELL) && a->header.models &&
		   pvio_model_out(a, port, size, value, w)) {
		/* an in-guest model took it (models.c): queued, and counted neutral where it is (a doorbell only
		 * through a command rule: a command the guest accepts itself) */
	} else if (wc == PVIO_CLASS_DOORBELL_IF && !(value & a->doorbell_masks[w >> PVIO_CLS_SLOT_SHIFT])) {
		unsigned n = pvio_neutral(a, w, size, value);   /* evaluated on the queue before this write */

		pvio_push(a, port, size, PVIO_OP_OUT)->value = value;
		a->header.neutral += n;
		if (a->header.models) {
			pvio_model_after_write(a, port, size, value, n);
			pvio_push_done(a);
			if (n)
				pvio_model_irq_eval(a);
		} else {
			pvio_push_done(a);
		}
	} else if (wc == PVIO_CLASS_DOORBELL || wc == PVIO_CLASS_DOORBELL_IF || (w & PVIO_CLS_OWNED)) {
		pvio_push(a, port, size, PVIO_OP_OUT)->value = value;
		pvio_flush_locked(a);
	} else {
		pvio_out_strict(a, port, size, value);
	}
	pvio_arch_irq_restore(fl);
}

/* The hot path, a posted write: four stores into the queue.  A DOORBELL_IF write (posted unless its value has a
 * bit of the port's doorbell mask set: a command register whose "start transmit" bit needs the device now) takes
 * pvio_out_slow, so the hot path pays nothing for it.  On x86-64 targets whose interrupt mask is inline
 * (host, Linux) it is hand-scheduled below so it touches two scratch registers only (a posted OUT must cost at
 * most ~40 instructions including the thunk, docs/protocol.md); the C version is the reference and serves the
 * other targets (and -DPVIO_NO_ASM_OUT, which the tests use to check it).  The thunks pass the port zero-extended (thunk ABI), so the table index needs no extension. */
#if defined(__x86_64__) && defined(PVIO_ARCH_ASM_IRQ_SAVE) && !defined(PVIO_NO_ASM_OUT)
__asm__(
	"	.text\n"
	"	.globl pvio_out\n"
	"	.type pvio_out, @function\n"
	"	.p2align 4\n"
	"pvio_out:\n"
	"	" PVIO_ARCH_ASM_IRQ_SAVE "\n"
	"	pushq %rax\n"
	"	" PVIO_ARCH_ASM_LOAD_AREA("%rax", "1f") "\n"
	"	testq %rax, %rax\n"
	"	jz 1f\n"
	"	testb $8, 0x4000(%rax,%rdi,2)\n"      /* classes[port]: write class POSTED */
	"	jz 1f\n"
	"	pushq %rcx\n"
	"	movl 20(%rax), %ecx\n"              /* header.count */
	"	incl 20(%rax)\n"
	"	shll $4, %ecx\n"                     /* sizeof(struct pvio_entry) */
	"	movw %di, 0x100(%rax,%rcx)\n"
	"	movb %sil, 0x100+2(%rax,%rcx)\n"
	"	movb $1, 0x100+3(%rax,%rcx)\n"
	"	movl %edx, 0x100+4(%rax,%rcx)\n"
	"	movl 20(%rax), %ecx\n"
	"	cmpl 24(%rax), %ecx\n"              /* header.threshold */
	"	jae 2f\n"
	"3:	popq %rcx\n"
	"	popq %rax\n"
	"	" PVIO_ARCH_ASM_IRQ_RESTORE "\n"
	"	" PVIO_ARCH_ASM_RET "\n"
	"1:	popq %rax\n"
	"	" PVIO_ARCH_ASM_IRQ_RESTORE "\n"
	"	jmp pvio_out_slow\n"
	"2:	pushq %rdi\n"
	"	movq %rax, %rdi\n"
	"	call pvio_flush_locked\n"
	"	popq %rdi\n"
	"	jmp 3b\n"
	"	.size pvio_out, . - pvio_out\n");
_Static_assert(__builtin_offsetof(struct pvio_area, header.count) == 20, "count offset in pvio_out");
_Static_assert(__builtin_offsetof(struct pvio_area, header.threshold) == 24, "threshold offset in pvio_out");
_Static_assert(sizeof(struct pvio_entry) == 16, "entry size in pvio_out");
_Static_assert(PVIO_OFF_ENTRIES == 0x100 && PVIO_OFF_CLASSES == 0x4000 && PVIO_OP_OUT == 1, "pvio_out constants");
_Static_assert((PVIO_CLASS_POSTED << PVIO_CLS_WRITE_SHIFT) == 8 && (PVIO_CLASS_DOORBELL & PVIO_CLASS_POSTED) == 0 &&
	       (PVIO_CLASS_DOORBELL_IF & PVIO_CLASS_POSTED) == 0,
	       "pvio_out tests bit 3 of the class word for a posted write (a DOORBELL_IF write takes the slow path)");
#else
PVIO_BACKEND void pvio_out(pvio_u16 port, unsigned size, pvio_u32 value)
{
	unsigned long fl = pvio_arch_irq_save();
	struct pvio_area *a = pvio_cur();

	if (__builtin_expect(a != 0, 1) && (a->classes[port] & (PVIO_CLASS_POSTED << PVIO_CLS_WRITE_SHIFT))) {
		struct pvio_entry *e = &a->entries[a->header.count];

		e->port = port;
		e->size = (pvio_u8)size;
		e->op = PVIO_OP_OUT;
		e->value = value;
		if (__builtin_expect(++a->header.count >= a->header.threshold, 0))
			pvio_flush_locked(a);
		pvio_arch_irq_restore(fl);
		return;
	}
	pvio_arch_irq_restore(fl);
	pvio_out_slow(port, size, value);
}
#endif

/* Queue a string access as entries over physically contiguous runs of guest memory, then flush (the monitor
 * reads or writes the memory during that exit, so the buffer may be reused as soon as we return).  Returns the
 * number of elements not queued: an element that straddles a discontiguous page boundary, left to the caller. */
PVIO_HELPER unsigned long pvio_string(struct pvio_area *a, unsigned op, pvio_u16 port, unsigned size,
				      unsigned long p, unsigned long count)
{
	while (count) {
		pvio_u64 gpa = pvio_arch_virt_to_phys((const void *)p);
		unsigned long want = count * size, run = PVIO_PAGE_SIZE - (p & (PVIO_PAGE_SIZE - 1));
		unsigned long n;
		struct pvio_entry *e;

		if (want > PVIO_MAX_STRING_BYTES)
			want = PVIO_MAX_STRING_BYTES;
		while (run < want && pvio_arch_virt_to_phys((const void *)(p + run)) == gpa + run)
			run += PVIO_PAGE_SIZE;
		n = (run < want ? run : want) / size;
		if (n == 0)
			break;
		e = pvio_push(a, port, size, op);
		e->value = (pvio_u32)n;
		e->gpa = gpa;
		pvio_push_done(a);
		p += n * size;
		count -= n;
	}
	pvio_flush_pending(a);
	return count;
}

/* A string write small enough for what is left of the staging buffer: copied there and queued like a posted
 * write (the monitor reads the copy when it replays the batch, so the driver may reuse its buffer at once).
 * The copy is a plain loop with a compiler barrier, so no freestanding build turns it into a memcpy call. */
static inline int pvio_stage(struct pvio_area *a, pvio_u16 port, unsigned size, const void *src,
			     unsigned long count)
{
	unsigned long n, i;
	pvio_u8 *dst;
	struct pvio_entry *e;

	if (size == 0 || count > PVIO_STAGING_SIZE / size)
		return 0;
	n = count * size;
	if (n > PVIO_STAGING_SIZE - a->header.staged)
		return 0;
	dst = &a->staging[a->header.staged];
	for (i = 0; i + 4 <= n; i += 4) {
		__builtin_memcpy(dst + i, (const pvio_u8 *)src + i, 4);   /* a 4-byte move, never a call */
		__asm__ volatile("" ::: "memory");
	}
	for (; i < n; i++)
		dst[i] = ((const pvio_u8 *)src)[i];
	e = pvio_push(a, port, size, PVIO_OP_OUTS);
	e->value = (pvio_u32)count;
	e->gpa = pvio_arch_virt_to_phys(dst);      /* the area is physically contiguous */
	a->header.staged += (pvio_u32)((n + 7) & ~7ul);
	if (a->header.staged > PVIO_STAGING_SIZE)
		a->header.staged = PVIO_STAGING_SIZE;
	pvio_push_done(a);
	return 1;
}

PVIO_BACKEND void pvio_outs(pvio_u16 port, unsigned size, const void *src, unsigned long count)
{
	unsigned long fl = pvio_arch_irq_save(), left;
	struct pvio_area *a = pvio_cur();
	pvio_u32 w, wc;

	if (!a) {
		pvio_arch_irq_restore(fl);
		pvio_arch_outs(port, size, src, count);
		return;
	}
	w = a->classes[port];
	wc = (w >> PVIO_CLS_WRITE_SHIFT) & PVIO_CLS_CLASS_MASK;
	if (count && wc == PVIO_CLASS_DOORBELL_IF && a->header.models) {   /* a transfer engine takes what it can */
		unsigned long n = pvio_model_outs(a, port, size, src, count);

		src = (const char *)src + n * size;
		count -= n;
		if (!count) {
			pvio_arch_irq_restore(fl);
			return;
		}
	}
	if (count && (w & PVIO_CLS_OWNED) && pvio_stage(a, port, size, src, count)) {
		if (pvio_fifo_owed(a, port))
			pvio_flush_locked(a);       /* it may abandon the FIFO's transfer: the monitor decides now */
		pvio_arch_irq_restore(fl);
		return;
	}
	while (count) {
		if (wc == PVIO_CLASS_STRICT && !(w & PVIO_CLS_OWNED)) {
			pvio_flush_pending(a);
			a->header.strict++;
			pvio_arch_outs(port, size, src, count);
			break;
		}
		left = pvio_string(a, PVIO_OP_OUTS, port, size, (unsigned long)src, count);
		src = (const char *)src + (count - left) * size;
		count = left;
		if (count) {    /* one element across discontiguous pages: the real instruction */
			a->header.strict++;
			pvio_arch_outs(port, size, src, 1);
			src = (const char *)src + size;
			count--;
		}
	}
	pvio_arch_irq_restore(fl);
}

PVIO_BACKEND void pvio_ins(pvio_u16 port, unsigned size, void *dst, unsigned long count)
{
	unsigned long fl = pvio_arch_irq_save(), left;
	struct pvio_area *a = pvio_cur();
	pvio_u32 w, rc;
	struct pvio_fifo *f;

	if (!a) {
		pvio_arch_irq_restore(fl);
		pvio_arch_ins(port, size, dst, count);
		return;
	}
	w = a->classes[port];
	rc = (w >> PVIO_CLS_READ_SHIFT) & PVIO_CLS_CLASS_MASK;
	f = &a->fifo;
	if (rc == PVIO_CLASS_ENGINE) {
		unsigned long n = pvio_model_ins(a, port, size, dst, count);   /* an active transfer engine */

		dst = (char *)dst + n * size;
		count -= n;
	}
	/* Values the monitor already fetched come first, in order. */
	if ((rc == PVIO_CLASS_FIFO || rc == PVIO_CLASS_ENGINE) && f->port == port &&
	    f->size == size) {
		while (count && f->head < f->count) {
			pvio_u32 v;

			pvio_audit_room(a, 1, 0);
			if (f->port != port || f->size != size || f->head >= f->count)
				break;         /* an audit flush refilled the FIFO for another port */
			v = pvio_mask(size, a->fifo_values[f->head++]);
			pvio_audit(a, PVIO_AUDIT_FIFO, port, size, v, a->header.count, f->head - 1);

			if (size == 1)
				*(pvio_u8 *)dst = (pvio_u8)v;
			else if (size == 2)
				*(pvio_u16 *)dst = (pvio_u16)v;
			else
				*(pvio_u32 *)dst = v;
			a->header.fifo_hits++;
			dst = (char *)dst + size;
			count--;
		}
	}
	while (count) {
		if (!(w & PVIO_CLS_OWNED)) {
			pvio_flush_pending(a);
			a->header.strict++;
			pvio_arch_ins(port, size, dst, count);
			break;
		}
		left = pvio_string(a, PVIO_OP_INS, port, size, (unsigned long)dst, count);
		dst = (char *)dst + (count - left) * size;
		count = left;
		if (count) {
			a->header.strict++;
			pvio_arch_ins(port, size, dst, 1);
			dst = (char *)dst + size;
			count--;
		}
	}
	pvio_arch_irq_restore(fl);
}

PVIO_BACKEND void pvio_hlt(void)
{
	unsigned long fl = pvio_arch_irq_save();
	struct pvio_area *a = pvio_cur();

	if (a)
		pvio_flush_pending(a);
	pvio_arch_irq_restore(fl);
	pvio_arch_hlt();      /* unmasked: hlt waits for an interrupt */
}

/* --- C API for the environment (ordinary calling convention) --------------------------------------------- */

/* The timer flush trigger: called from the guest's timer interrupt (harness) or an hrtimer (Linux module).
 * Flushes queued entries, and also exits when shadows were served since the last refresh, so a guest polling a
 * shadow sees device changes within two ticks: only work that waited a whole tick period goes, so a driver that
 * flushes on its own (a doorbell each request) pays no extra exit for the ticks that land between its requests
 * (protocol v5; v4 flushed at every tick that found something queued). */
void pvio_tick(void)
{
	unsigned long fl = pvio_arch_irq_save();
	struct pvio_area *a = pvio_cur();

	if (a) {
		if (a->header.flushes == a->header.tick_flushes) {   /* nothing flushed since the last tick */
			if (a->header.count || a->header.shadow_since_tick)
				pvio_flush_locked(a);
			else
				pvio_flush_pending(a);     /* an audit build's served values */
		}
		a->header.tick_flushes = a->header.flushes;
	}
	pvio_arch_irq_restore(fl);
}

void pvio_flush(void)
{
	unsigned long fl = pvio_arch_irq_save();
	struct pvio_area *a = pvio_cur();

	if (a)
		pvio_flush_pending(a);
	pvio_arch_irq_restore(fl);
}

/* Flush when `n` entries are queued; clamped to 1..PVIO_ENTRY_CAPACITY.  Returns the value in effect. */
unsigned pvio_set_threshold(unsigned n)
{
	unsigned long fl;
	struct pvio_area *a;

	if (n < 1)
		n = 1;
	if (n > PVIO_ENTRY_CAPACITY)
		n = PVIO_ENTRY_CAPACITY;
	fl = pvio_arch_irq_save();
	a = pvio_cur();
	if (a) {
		a->header.threshold = n;
		if (a->header.count >= n)
			pvio_flush_locked(a);
	}
	pvio_arch_irq_restore(fl);
	return n;
}

/* The current CPU's area, or 0 while no monitor has activated one (statistics are in its header). */
const struct pvio_area *pvio_area(void)
{
	unsigned long fl = pvio_arch_irq_save();
	const struct pvio_area *a = pvio_cur();

	pvio_arch_irq_restore(fl);
	return a;
}

/* Flush and forget the current CPU's area: from now on every access runs the original instruction. */
void pvio_fini(void)
{
	unsigned long fl = pvio_arch_irq_save();
	unsigned cpu = pvio_arch_cpu();

	if (cpu < PVIO_ARCH_MAX_CPUS && pvio_areas[cpu]) {
		pvio_flush_pending(pvio_areas[cpu]);
		pvio_areas[cpu] = 0;
	}
	pvio_arch_irq_restore(fl);
}

/* Register `mem` (PVIO_AREA_SIZE bytes, page aligned, physically contiguous) as the current CPU's area.
 * Returns 0 when the monitor activated it; a negative value when the runtime stays direct:
 * -1 bad memory, -2 no monitor answers the probe, -3 the monitor refused the area. */
int pvio_init(void *mem, unsigned long size)
{
	struct pvio_area *a = mem;
	unsigned cpu;
	pvio_u64 gpa;
	unsigned long i, fl;
	int rc = 0;

	if (!mem || size < PVIO_AREA_SIZE || ((unsigned long)mem & (PVIO_PAGE_SIZE - 1)))
		return -1;
	gpa = pvio_arch_virt_to_phys(mem);
	if (gpa & (PVIO_PAGE_SIZE - 1) || (gpa >> 12) > 0xffffffffull)
		return -1;
	fl = pvio_arch_irq_save();
	cpu = pvio_arch_cpu();
	if (cpu >= PVIO_ARCH_MAX_CPUS) {
		rc = -1;
		goto out;
	}
	if (pvio_arch_in(PVIO_CTRL_REGISTER, 4) != PVIO_MAGIC) {
		rc = -2;
		goto out;
	}
	for (i = 0; i < sizeof(a->header); i++)
		((volatile pvio_u8 *)&a->header)[i] = 0;
	a->header.magic = PVIO_MAGIC;
	a->header.version = PVIO_VERSION;
	a->header.state = PVIO_STATE_INACTIVE;
	a->header.area_size = PVIO_AREA_SIZE;
	a->header.capacity = PVIO_ENTRY_CAPACITY;
	a->header.threshold = PVIO_DEFAULT_THRESHOLD;
	a->header.irq_lines = pvio_arch_irq_lines();
	a->header.audit = PVIO_AUDITING;
	a->fifo.count = a->fifo.head = 0;
	a->audit.count = a->audit.data_used = 0;
	a->audit.capacity = PVIO_AUDIT_CAPACITY;
	a->audit.data_cap = PVIO_AUDIT_DATA_SIZE;
	pvio_arch_exit(PVIO_CTRL_REGISTER, (pvio_u32)(gpa >> 12));
	if (*(volatile pvio_u32 *)&a->header.state != PVIO_STATE_ACTIVE) {
		rc = -3;
		goto out;
	}
	pvio_areas[cpu] = a;
out:
	pvio_arch_irq_restore(fl);
	return rc;
}
