/* models.c - the in-guest device models of the batching runtime (protocol v5): latches, command rules, transfer
 * engines, interrupt rules and index/data register files, run generically from what the monitor publishes. */

/* The monitor derives every record here from the device models' declarations (src/pvgen/devices/pvmodels.py);
 * this file knows no device.  docs/protocol.md, "In-guest device models", explains each mechanism.  The rule that
 * keeps them faithful is the one the shadows follow: state is changed here only while every queued entry is
 * neutral (header.count == header.neutral), so the shadows and latches are the device's state after the queue;
 * each modelled access is queued as an entry the monitor replays (and checks) in order at the next flush, and is
 * counted neutral because its effect on every published value was applied here.  Whatever a record cannot decide
 * exactly returns 0, and the caller takes the queue and the exit as before. */

#include "pvio_internal.h"

/* --- latches and conditions ------------------------------------------------------------------------------- */

static inline int pvio_latch_get(const struct pvio_area *a, unsigned i, pvio_u32 *v)
{
	if (i >= PVIO_LATCH_COUNT || !a->latches[i].valid)
		return 0;
	*v = a->latches[i].value;
	return 1;
}

static inline int pvio_shadow_byte(const struct pvio_area *a, unsigned slot, pvio_u32 *v)
{
	if (slot >= PVIO_SHADOW_SLOTS || !(a->shadows[slot].valid & 1))   /* slot is a u8 index: always below */
		return 0;
	*v = a->shadows[slot].val[0] & 0xff;
	return 1;
}

static inline void pvio_shadow_set(struct pvio_area *a, unsigned slot, pvio_u32 v)
{
	if (slot >= PVIO_SHADOW_SLOTS)
		return;
	a->shadows[slot].val[0] = v & 0xff;
	a->shadows[slot].valid = 1;     /* the wider reads are no longer known */
}

static int pvio_cond(const struct pvio_area *a, unsigned kind, unsigned ra, unsigned rb, unsigned x, unsigned y)
{
	pvio_u32 v, hi;

	switch (kind) {
	case PVIO_COND_NONE:
		return 1;
	case PVIO_COND_SHADOW:
		return pvio_shadow_byte(a, ra, &v) && (v & x) == y;
	case PVIO_COND_LATCH:
		return pvio_latch_get(a, ra, &v) && (v & x) == y;
	case PVIO_COND_RANGE:
		if (!pvio_latch_get(a, ra, &v))
			return 0;
		if (rb != PVIO_NO_REF) {
			if (!pvio_latch_get(a, rb, &hi))
				return 0;
			v |= hi << 8;
		}
		return x <= v && v <= y;
	default:
		return 0;
	}
}

/* --- interrupt rules ----------------------------------------------------------------------------------------- */

/* line = (status shadow & mask latch & mask) != 0, evaluated after every modelled change.  A rising edge is raised
 * here, like an interrupt right after this access: an IRQ_MARK entry tells the monitor that the device's own
 * rising edge of the line in this batch was delivered already, and the environment takes the line as a
 * notification (dispatched once interrupts are unmasked). */
PVIO_HELPER void pvio_model_irq_eval(struct pvio_area *a)
{
	unsigned i;

	for (i = 0; i < PVIO_IRQ_RULE_COUNT; i++) {
		struct pvio_irqrule *r = &a->irq_rules[i];
		pvio_u32 st, m, c;
		unsigned level;

		if (!r->valid)
			continue;
		if (!pvio_shadow_byte(a, r->cond_slot, &c) || (c & r->cond_mask) != r->cond_want ||
		    !pvio_shadow_byte(a, r->status_slot, &st) || !pvio_latch_get(a, r->mask_latch, &m)) {
			r->valid = 0;      /* not computable: the device's edges take the monitor's notification path */
			continue;
		}
		level = (st & m & r->mask) != 0;
		if (level && !r->level && r->line < 32 && (a->header.irq_lines >> r->line & 1)) {
			pvio_push(a, 0, 1, PVIO_OP_IRQ_MARK)->value = r->line;
			a->header.neutral++;
			a->header.irq_raised++;
			r->level = 1;
			pvio_arch_irq_notify(1u << r->line);
			pvio_push_done(a);     /* a flush publishes every rule again: the loop goes on from there */
			continue;
		}
		r->level = (pvio_u8)level;
	}
}

/* --- transfer engines ---------------------------------------------------------------------------------------- */

static inline struct pvio_engine *pvio_engine_for(struct pvio_area *a, pvio_u16 port, unsigned *idx)
{
	unsigned i;

	for (i = 0; i < PVIO_ENGINE_COUNT; i++)
		if (a->engines[i].kind != PVIO_ENGINE_KIND_NONE && a->engines[i].port == port) {
			*idx = i;
			return &a->engines[i];
		}
	return 0;
}

static inline pvio_u32 pvio_engine_step(const struct pvio_engine *e, pvio_u32 addr)
{
	addr = (addr + 1) & e->addr_mask;
	if (e->wrap_to < e->wrap_at && addr == e->wrap_at)
		addr = e->wrap_to;
	return addr;
}

/* The engine memory byte at device address `addr`, or 0 when it is not mirrored. */
static inline pvio_u8 *pvio_engine_byte(struct pvio_area *a, const struct pvio_engine *e, pvio_u32 addr)
{
	pvio_u32 off = addr - e->mem_base;

	if (addr < e->mem_base || off >= e->mem_len || e->mem_off < PVIO_OFF_ENGINE_MEM ||
	    e->mem_off - PVIO_OFF_ENGINE_MEM + off >= PVIO_ENGINE_MEM_SIZE)
		return 0;
	return (pvio_u8 *)a + e->mem_off + off;
}

/* May `e` move `u` bytes now?  Sets *done when the access completes the transfer. */
static int pvio_engine_ready(const struct pvio_area *a, const struct pvio_engine *e, unsigned state, unsigned u,
			     unsigned size, unsigned *done)
{
	if (e->state != state || u == 0 || u < size || e->count == 0 || !pvio_exact(a))
		return 0;
	if (u > e->count && !(e->flags & 1))
		return 0;
	if (!pvio_cond(a, e->cond_kind[0], e->cond_a[0], e->cond_b[0], e->cond_x[0], e->cond_y[0]))
		return 0;
	*done = u >= e->count;
	if (*done) {
		unsigned i;

		if (!pvio_cond(a, e->cond_kind[1], e->cond_a[1], e->cond_b[1], e->cond_x[1], e->cond_y[1]))
			return 0;
		for (i = 0; i < PVIO_EFFECT_COUNT; i++)    /* an effect that keeps bits needs the shadow known */
			if (e->done_slot[i] != PVIO_NO_REF && e->done_and[i] && !(a->shadows[e->done_slot[i]].valid & 1))
				return 0;
	}
	return 1;
}

/* After an access moved `u` bytes and the address became `addr`: the address shadows, the count (and its
 * latches), and at zero the completion effects. */
static void pvio_engine_advance(struct pvio_area *a, struct pvio_engine *e, unsigned u, pvio_u32 addr)
{
	unsigned i;

	e->addr = addr;
	e->count = u >= e->count ? 0 : e->count - u;
	if (e->addr_slot[0] != PVIO_NO_REF)
		pvio_shadow_set(a, e->addr_slot[0], addr);
	if (e->addr_slot[1] != PVIO_NO_REF)
		pvio_shadow_set(a, e->addr_slot[1], addr >> 8);
	if (e->count_latch[0] < PVIO_LATCH_COUNT)
		a->latches[e->count_latch[0]].value = (pvio_u8)e->count;
	if (e->count_latch[1] < PVIO_LATCH_COUNT)
		a->latches[e->count_latch[1]].value = (pvio_u8)(e->count >> 8);
	if (e->count)
		return;
	for (i = 0; i < PVIO_EFFECT_COUNT; i++) {
		pvio_u32 v = 0;

		if (e->done_slot[i] == PVIO_NO_REF)
			continue;
		pvio_shadow_byte(a, e->done_slot[i], &v);     /* known when done_and needs it (pvio_engine_ready) */
		pvio_shadow_set(a, e->done_slot[i], (v & e->done_and[i]) | e->done_or[i]);
	}
}

/* Queue the replay of `n` served accesses, coalescing with the previous entry when it is the same run (one run
 * moves at most PVIO_MAX_STRING_BYTES, the monitor's limit for an entry). */
static void pvio_engine_queue(struct pvio_area *a, unsigned idx, unsigned op, pvio_u16 port, unsigned size,
			      pvio_u32 addr, pvio_u32 data_off, pvio_u32 n, unsigned stride)
{
	pvio_u32 c = a->header.count;
	struct pvio_entry *last = c ? &a->entries[c - 1] : 0;

	/* the same run: op, port, size, engine, and the data right after the previous run's (the staged copy of a
	 * write; the engine memory a read came from, `stride` bytes an access) */
	if (last && last->op == op && last->port == port && last->size == size &&
	    (pvio_u64)last->value + n <= PVIO_MAX_STRING_BYTES / size &&
	    (pvio_u32)(last->gpa >> PVIO_SERVED_ENGINE_SHIFT) == idx &&
	    (last->gpa & ((1ull << PVIO_SERVED_OFF_BITS) - 1)) + (pvio_u64)last->value * stride == data_off) {
		last->value += n;
		return;
	}
	{
		struct pvio_entry *e = pvio_push(a, port, size, op);

		e->value = n;
		e->gpa = (pvio_u64)idx << PVIO_SERVED_ENGINE_SHIFT | (pvio_u64)addr << PVIO_SERVED_ADDR_SHIFT | data_off;
		a->header.neutral++;
	}
}

/* An audit build's record of `nbytes` served by the SERVED_IN entry just queued (extending the entry's record). */
static void pvio_engine_audit(struct pvio_area *a, pvio_u16 port, unsigned size, const pvio_u8 *b, unsigned long nbytes)
{
	if (PVIO_AUDITING && a->audit.data_used + nbytes <= PVIO_AUDIT_DATA_SIZE) {
		struct pvio_auditrec *r = a->audit.count ? &a->audit_recs[a->audit.count - 1] : 0;
		pvio_u32 pos = a->header.count - 1;
		unsigned long i;

		for (i = 0; i < nbytes; i++)
			a->audit_data[a->audit.data_used + i] = b[i];
		if (r && r->kind == PVIO_AUDIT_ENGINE && r->pos == pos && r->data + r->value == a->audit.data_used)
			r->value += (pvio_u32)nbytes;
		else
			pvio_audit(a, PVIO_AUDIT_ENGINE, port, size, (pvio_u32)nbytes, pos, a->audit.data_used);
		a->audit.data_used += (pvio_u32)nbytes;
	}
}

/* Copy n bytes with 8-byte moves and a compiler barrier, so no freestanding build turns it into a memcpy call. */
static inline void pvio_copy(pvio_u8 *dst, const pvio_u8 *src, unsigned long n)
{
	unsigned long i;

	for (i = 0; i + 8 <= n; i += 8) {
		__builtin_memcpy(dst + i, src + i, 8);
		__asm__ volatile("" ::: "memory");
	}
	for (; i < n; i++)
		dst[i] = src[i];
}

/* Up to `count` accesses of `size` that move exactly their own bytes, are contiguous in the engine memory and do
 * not complete the transfer, in one go (the completing access and any other one take the per-access path): a
 * 4 KiB block or a frame moves as one copy and one entry.  Returns the accesses moved. */
static unsigned long pvio_engine_bulk(struct pvio_area *a, struct pvio_engine *e, unsigned idx, pvio_u16 port,
				      unsigned size, void *buf, unsigned long count, unsigned state)
{
	unsigned u = e->unit[size >> 1];
	pvio_u32 addr = e->addr, end, data_off = 0;
	unsigned long n, nbytes;
	pvio_u8 *mem;

	if (u != size || e->state != state || e->count <= u || !pvio_exact(a) ||
	    !pvio_cond(a, e->cond_kind[0], e->cond_a[0], e->cond_b[0], e->cond_x[0], e->cond_y[0]))
		return 0;
	mem = pvio_engine_byte(a, e, addr);
	if (!mem)
		return 0;
	n = (e->count - 1) / u;                         /* never the completing access */
	end = e->mem_base + e->mem_len;                 /* contiguous: to the end of the memory, */
	if (e->wrap_to < e->wrap_at && addr < e->wrap_at && e->wrap_at < end)
		end = e->wrap_at;                       /* the wrap, */
	if ((pvio_u64)e->addr_mask + 1 < end)
		end = e->addr_mask + 1;                 /* and the address counter's own wrap */
	if ((end - addr) / u < n)
		n = (end - addr) / u;
	if (count < n)
		n = count;
	if (state == PVIO_ENGINE_WRITE && (e->kind == PVIO_ENGINE_KIND_DMA || (e->flags & 2)) &&
	    (PVIO_XSTAGING_SIZE - a->header.xstaged) / size < n)
		n = (PVIO_XSTAGING_SIZE - a->header.xstaged) / size;
	if (PVIO_AUDITING && state == PVIO_ENGINE_READ && (PVIO_AUDIT_DATA_SIZE - a->audit.data_used) / size < n)
		n = (PVIO_AUDIT_DATA_SIZE - a->audit.data_used) / size;
	if (PVIO_MAX_STRING_BYTES / size < n)
		n = PVIO_MAX_STRING_BYTES / size;
	if (n == 0)
		return 0;
	nbytes = n * size;
	if (state == PVIO_ENGINE_READ) {
		pvio_copy(buf, mem, nbytes);
		pvio_engine_queue(a, idx, PVIO_OP_SERVED_IN, port, size, addr, (pvio_u32)(mem - (pvio_u8 *)a),
				  (pvio_u32)n, size);
		pvio_engine_audit(a, port, size, mem, nbytes);
	} else {
		if (e->kind == PVIO_ENGINE_KIND_DMA || (e->flags & 2)) {
			data_off = PVIO_OFF_XSTAGING + a->header.xstaged;
			pvio_copy(&a->xstaging[a->header.xstaged], buf, nbytes);
			a->header.xstaged += (pvio_u32)nbytes;
		} else {
			data_off = (pvio_u32)(mem - (pvio_u8 *)a);
		}
		pvio_copy(mem, buf, nbytes);
		pvio_engine_queue(a, idx, PVIO_OP_SERVED_OUT, port, size, addr, data_off, (pvio_u32)n, size);
	}
	a->header.served += (pvio_u32)n;
	addr = (pvio_u32)((addr + nbytes) & e->addr_mask);
	if (e->wrap_to < e->wrap_at && addr == e->wrap_at)
		addr = e->wrap_to;
	pvio_engine_advance(a, e, (unsigned)nbytes, addr);
	return n;
}

/* One read by engine `e`: 1 when served into *v. */
static int pvio_engine_read(struct pvio_area *a, struct pvio_engine *e, unsigned idx, pvio_u16 port, unsigned size,
			    pvio_u32 *v)
{
	unsigned u = e->unit[size >> 1], i, done;
	pvio_u32 addr = e->addr, start = e->addr, val = 0, src = 0;
	pvio_u8 b[4] = { 0, 0, 0, 0 };

	if (u > 4 || !pvio_engine_ready(a, e, PVIO_ENGINE_READ, u, size, &done))
		return 0;

	for (i = 0; i < u; i++) {
		pvio_u8 *p = pvio_engine_byte(a, e, addr);

		if (!p)
			return 0;
		if (i == 0)
			src = (pvio_u32)(p - (pvio_u8 *)a);
		b[i] = *p;
		addr = pvio_engine_step(e, addr);
	}
	for (i = 0; i < size; i++)
		val |= (pvio_u32)b[i] << (8 * i);
	*v = val;
	pvio_engine_queue(a, idx, PVIO_OP_SERVED_IN, port, size, start, src, 1, u);
	pvio_engine_audit(a, port, size, b, size);     /* pvio_audit_room made room */
	a->header.served++;
	pvio_engine_advance(a, e, u, addr);
	return 1;
}

/* One write by engine `e` (the value's bytes, zero-extended to the unit): 1 when taken.  A DMA engine copies the
 * bytes into its mirror and into xstaging, which the replay reads (the mirror may change again before the flush);
 * a WINDOW engine's memory is the staging itself (the monitor arms a window once and reads it at the flush). */
static int pvio_engine_write(struct pvio_area *a, struct pvio_engine *e, unsigned idx, pvio_u16 port, unsigned size,
			     pvio_u32 value)
{
	unsigned u = e->unit[size >> 1], i, done;
	pvio_u32 addr = e->addr, start = e->addr, data_off;
	pvio_u8 *dst[4];

	if (u > 4 || !pvio_engine_ready(a, e, PVIO_ENGINE_WRITE, u, size, &done))
		return 0;
	for (i = 0; i < u; i++) {
		dst[i] = pvio_engine_byte(a, e, addr);
		if (!dst[i])
			return 0;
		addr = pvio_engine_step(e, addr);
	}
	if (e->kind == PVIO_ENGINE_KIND_DMA || (e->flags & 2)) {
		if (a->header.xstaged + size > PVIO_XSTAGING_SIZE)
			return 0;
		data_off = PVIO_OFF_XSTAGING + a->header.xstaged;
		for (i = 0; i < size; i++)      /* what the replay writes: the access's own bytes */
			a->xstaging[a->header.xstaged + i] = (pvio_u8)(value >> (8 * i));
		a->header.xstaged += size;
	} else {
		if (u != size)
			return 0;
		data_off = (pvio_u32)(dst[0] - (pvio_u8 *)a);
		for (i = 1; i < u; i++)
			if (dst[i] != dst[0] + i)
				return 0;       /* a window does not wrap */
	}
	for (i = 0; i < u; i++)         /* the device moves the unit: the value's bytes, zero-extended */
		*dst[i] = (pvio_u8)(i < 4 ? value >> (8 * i) : 0);
	pvio_engine_queue(a, idx, PVIO_OP_SERVED_OUT, port, size, start, data_off, 1, size);
	a->header.served++;
	pvio_engine_advance(a, e, u, addr);
	return 1;
}

/* pvio_engine_write, and when what stops it is only a full xstaging behind queued entries: flush (the monitor takes
 * the staged data and publishes the engine again) and try once more. */
static int pvio_engine_write_or_flush(struct pvio_area *a, struct pvio_engine *e, unsigned idx, pvio_u16 port,
				      unsigned size, pvio_u32 value)
{
	if (pvio_engine_write(a, e, idx, port, size, value))
		return 1;
	if (!((e->kind == PVIO_ENGINE_KIND_DMA || (e->flags & 2)) && e->state == PVIO_ENGINE_WRITE &&
	      a->header.count && a->header.xstaged + size > PVIO_XSTAGING_SIZE))
		return 0;
	pvio_flush_locked(a);
	return pvio_engine_write(a, e, idx, port, size, value);
}

/* Any write but the arming rule's to an engine's command port stops it (the device's transfer state is then
 * whatever that write made it: the monitor publishes it at the next flush). */
static void pvio_engines_stop(struct pvio_area *a, pvio_u16 cmd_port, unsigned except)
{
	unsigned i;

	for (i = 0; i < PVIO_ENGINE_COUNT; i++)
		if (i != except && a->engines[i].kind == PVIO_ENGINE_KIND_DMA && a->engines[i].cmd_port == cmd_port)
			a->engines[i].state = PVIO_ENGINE_IDLE;
}

/* Arm DMA engine `i` for `state` from its latches: 0 when they are not all known (or the count is 0). */
static int pvio_engine_arm(struct pvio_area *a, unsigned i, unsigned state, int commit)
{
	struct pvio_engine *e;
	pvio_u32 lo, hi, clo, chi, to = 0, at = 0;

	if (i >= PVIO_ENGINE_COUNT || (state != PVIO_ENGINE_READ && state != PVIO_ENGINE_WRITE))
		return 0;
	e = &a->engines[i];
	if (e->kind != PVIO_ENGINE_KIND_DMA || !pvio_latch_get(a, e->addr_latch[0], &lo) ||
	    !pvio_latch_get(a, e->addr_latch[1], &hi) || !pvio_latch_get(a, e->count_latch[0], &clo) ||
	    !pvio_latch_get(a, e->count_latch[1], &chi) || !(clo | chi))
		return 0;
	if (e->wrap_latch[0] != PVIO_NO_REF &&
	    (!pvio_latch_get(a, e->wrap_latch[0], &to) || !pvio_latch_get(a, e->wrap_latch[1], &at)))
		return 0;
	if (!commit)
		return 1;
	e->addr = (lo | hi << 8) & e->addr_mask;
	e->count = clo | chi << 8;
	e->wrap_to = e->wrap_latch[0] != PVIO_NO_REF ? to << e->wrap_shift : 0;
	e->wrap_at = e->wrap_latch[0] != PVIO_NO_REF ? at << e->wrap_shift : 0;
	e->state = (pvio_u8)state;
	if (e->addr_slot[0] != PVIO_NO_REF)
		pvio_shadow_set(a, e->addr_slot[0], e->addr);
	if (e->addr_slot[1] != PVIO_NO_REF)
		pvio_shadow_set(a, e->addr_slot[1], e->addr >> 8);
	return 1;
}

/* --- command rules ------------------------------------------------------------------------------------------- */

/* A rule's wide condition: up to four byte shadows as one little-endian value, masked, within [xmin, xmax]. */
static int pvio_xcond(const struct pvio_area *a, const struct pvio_cmdrule *r)
{
	pvio_u32 v = 0, b;
	unsigned i;

	for (i = 0; i < 4; i++) {
		if (r->xslot[i] == PVIO_NO_REF)
			continue;
		if (!pvio_shadow_byte(a, r->xslot[i], &b))
			return 0;
		v |= b << (8 * i);
	}
	v &= r->xmask;
	return r->xmin <= v && v <= r->xmax;
}

/* Arm the rule's engine: a DMA engine from its latches (pvio_engine_arm), a WINDOW engine over the rule's memory
 * for the rule's byte count, from address 0.  `commit` 0: only whether it can. */
static int pvio_rule_arm(struct pvio_area *a, const struct pvio_cmdrule *r, int commit)
{
	struct pvio_engine *e;
	pvio_u32 count = r->win_count, n;

	if (r->engine >= PVIO_ENGINE_COUNT)
		return 0;
	e = &a->engines[r->engine];
	if (e->kind == PVIO_ENGINE_KIND_DMA)
		return pvio_engine_arm(a, r->engine, r->engine_state, commit);
	if (e->kind != PVIO_ENGINE_KIND_WINDOW || (r->engine_state != PVIO_ENGINE_READ &&
						   r->engine_state != PVIO_ENGINE_WRITE))
		return 0;
	if (r->count_slot != PVIO_NO_REF) {
		if (!pvio_shadow_byte(a, r->count_slot, &n))
			return 0;
		count *= n;
	}
	if (!count || (r->win_mem && (r->win_mem < PVIO_OFF_ENGINE_MEM ||
				      r->win_mem - PVIO_OFF_ENGINE_MEM + count > PVIO_ENGINE_MEM_SIZE)))
		return 0;
	if (!commit)
		return 1;
	if (r->win_mem)
		e->mem_off = r->win_mem;
	e->mem_base = 0;
	e->mem_len = count;
	e->addr = 0;
	e->count = count;
	e->state = r->engine_state;
	e->flags = (pvio_u8)((e->flags & ~2u) | ((r->flags & 1) ? 2u : 0));
	return 1;
}

/* A byte write to a command port that a rule models: apply it (own shadow, effects, engine) and return 1. */
static int pvio_cmd_rule(struct pvio_area *a, pvio_u16 port, unsigned size, pvio_u32 value, pvio_u32 w)
{
	unsigned i, k, own = w >> PVIO_CLS_SLOT_SHIFT;

	if (size != 1 || !pvio_exact(a))
		return 0;
	for (i = 0; i < PVIO_CMD_RULE_COUNT; i++) {
		const struct pvio_cmdrule *r = &a->cmd_rules[i];
		pvio_u32 old;

		if (r->port != port || !r->port || (value & r->value_mask) != r->value_want)
			continue;
		for (k = 0; k < PVIO_COND_COUNT; k++)
			if (!pvio_cond(a, r->cond_kind[k], r->cond_a[k], r->cond_b[k], r->cond_x[k], r->cond_y[k]))
				break;
		if (k < PVIO_COND_COUNT || !pvio_shadow_byte(a, own, &old))
			continue;
		for (k = 0; k < PVIO_EFFECT_COUNT; k++)
			if (r->eff_slot[k] != PVIO_NO_REF && r->eff_and[k] && !(a->shadows[r->eff_slot[k]].valid & 1))
				break;
		if (k < PVIO_EFFECT_COUNT)
			continue;       /* an effect on a shadow not known */
		if (r->xmask && !pvio_xcond(a, r))
			continue;
		if (r->engine != PVIO_NO_REF && !pvio_rule_arm(a, r, 0))
			continue;
		pvio_shadow_set(a, own, ((value & r->own_mask) | (old & ~(pvio_u32)r->own_mask)) & r->own_and);
		for (k = 0; k < PVIO_EFFECT_COUNT; k++) {
			pvio_u32 v = 0;

			if (r->eff_slot[k] == PVIO_NO_REF)
				continue;
			pvio_shadow_byte(a, r->eff_slot[k], &v);
			pvio_shadow_set(a, r->eff_slot[k], (v & r->eff_and[k]) | r->eff_or[k]);
		}
		pvio_engines_stop(a, port, r->engine);
		if (r->engine != PVIO_NO_REF)
			pvio_rule_arm(a, r, 1);
		if (r->latch_set < PVIO_LATCH_COUNT)
			a->latches[r->latch_set].value = r->latch_value;
		return 1;
	}
	return 0;
}

/* --- index/data register files ------------------------------------------------------------------------------- */

static int pvio_ix_read(struct pvio_area *a, pvio_u16 port, unsigned size, pvio_u32 *v)
{
	const struct pvio_ixfile *f = &a->ix_file;
	pvio_u32 key, k = (pvio_u32)(pvio_u16)(port - f->data_port), lo = 0, hi;

	if (!f->index_port || !f->valid || !pvio_exact(a) || k + size > f->data_len || (k & (size - 1)))
		return 0;       /* a misaligned lane read is the device's to answer (PCI: all ones) */
	key = f->latch & f->key_mask;
	hi = f->entries < PVIO_IX_ENTRY_COUNT ? f->entries : PVIO_IX_ENTRY_COUNT;
	while (lo < hi) {        /* entries are sorted by key */
		pvio_u32 mid = (lo + hi) / 2, mk = a->ix_entries[mid].key;

		if (mk == key) {
			*v = pvio_mask(size, a->ix_entries[mid].value >> (8 * k));
			return 1;
		}
		if (mk < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* --- the runtime's entry points into the models -------------------------------------------------------------- */

PVIO_HELPER int pvio_model_in(struct pvio_area *a, pvio_u16 port, unsigned size, pvio_u32 w, pvio_u32 *v)
{
	unsigned idx;
	struct pvio_engine *e;

	if (((w >> PVIO_CLS_READ_SHIFT) & PVIO_CLS_CLASS_MASK) == PVIO_CLASS_ENGINE) {
		e = pvio_engine_for(a, port, &idx);
		if (!e || !pvio_engine_read(a, e, idx, port, size, v))
			return 0;
		pvio_push_done(a);
		pvio_model_irq_eval(a);
		return 1;
	}
	if (pvio_ix_read(a, port, size, v)) {
		a->header.served++;
		a->header.shadow_since_tick++;       /* a polling guest sees a change within a tick */
		pvio_audit(a, PVIO_AUDIT_INDEX, port, size, *v, a->header.count, 0);
		return 1;
	}
	return 0;
}

PVIO_HELPER unsigned long pvio_model_ins(struct pvio_area *a, pvio_u16 port, unsigned size, void *dst,
					 unsigned long count)
{
	unsigned idx;
	unsigned long n = 0;
	struct pvio_engine *e = pvio_engine_for(a, port, &idx);

	if (!e)
		return 0;
	while (n < count) {
		pvio_u32 v;
		unsigned long k;

		pvio_audit_room(a, 1, size);
		k = pvio_engine_bulk(a, e, idx, port, size, (char *)dst + n * size, count - n, PVIO_ENGINE_READ);
		if (k) {
			n += k;
			pvio_push_done(a);
			continue;
		}
		if (!pvio_engine_read(a, e, idx, port, size, &v))
			break;
		if (size == 1)
			((pvio_u8 *)dst)[n] = (pvio_u8)v;
		else if (size == 2)
			((pvio_u16 *)dst)[n] = (pvio_u16)v;
		else
			((pvio_u32 *)dst)[n] = v;
		n++;
		pvio_push_done(a);
	}
	if (n)
		pvio_model_irq_eval(a);
	return n;
}

PVIO_HELPER int pvio_model_out(struct pvio_area *a, pvio_u16 port, unsigned size, pvio_u32 value, pvio_u32 w)
{
	unsigned idx;
	struct pvio_engine *e = pvio_engine_for(a, port, &idx);
	struct pvio_ixfile *f = &a->ix_file;

	(void)w;
	if (e) {
		if (!pvio_engine_write_or_flush(a, e, idx, port, size, value))
			return 0;
		pvio_push_done(a);
		pvio_model_irq_eval(a);
		return 1;
	}
	if (f->index_port && port == f->index_port) {
		unsigned neutral = pvio_exact(a);

		f->valid = size == f->index_size;
		f->latch = value;
		pvio_push(a, port, size, PVIO_OP_OUT)->value = value;
		a->header.neutral += neutral;     /* the index changes no shadowed value */
		pvio_push_done(a);
		return 1;
	}
	if (pvio_cmd_rule(a, port, size, value, w)) {
		pvio_push(a, port, size, PVIO_OP_OUT)->value = value;
		a->header.neutral++;
		pvio_push_done(a);
		pvio_model_irq_eval(a);
		return 1;
	}
	return 0;
}

PVIO_HELPER unsigned long pvio_model_outs(struct pvio_area *a, pvio_u16 port, unsigned size, const void *src,
					  unsigned long count)
{
	unsigned idx;
	unsigned long n = 0;
	struct pvio_engine *e = pvio_engine_for(a, port, &idx);

	if (!e)
		return 0;
	while (n < count) {
		pvio_u32 v = size == 1 ? ((const pvio_u8 *)src)[n] : size == 2 ? ((const pvio_u16 *)src)[n] :
			((const pvio_u32 *)src)[n];
		unsigned long k = pvio_engine_bulk(a, e, idx, port, size, (void *)((const char *)src + n * size),
						   count - n, PVIO_ENGINE_WRITE);

		if (k) {
			n += k;
			pvio_push_done(a);
			continue;
		}
		if (!pvio_engine_write_or_flush(a, e, idx, port, size, v))
			break;
		n++;
		pvio_push_done(a);
	}
	if (n)
		pvio_model_irq_eval(a);
	return n;
}

/* Called before the caller's pvio_push_done (so a flush there publishes everything again); the caller then runs
 * pvio_model_irq_eval. */
PVIO_HELPER void pvio_model_after_write(struct pvio_area *a, pvio_u16 port, unsigned size, pvio_u32 value,
					unsigned neutral)
{
	unsigned i, k;

	for (i = 0; i < PVIO_LATCH_COUNT; i++) {
		struct pvio_latch *l = &a->latches[i];

		if (l->port != port || !l->port)
			continue;
		l->valid = neutral && size == 1;
		l->value = (pvio_u8)value;
		for (k = 0; k < PVIO_ENGINE_COUNT; k++)     /* an engine whose parameters this write may change */
			if (a->engines[k].state != PVIO_ENGINE_IDLE && (a->engines[k].dep_latches >> i & 1))
				a->engines[k].state = PVIO_ENGINE_IDLE;
	}
	pvio_engines_stop(a, port, PVIO_NO_REF);
}
