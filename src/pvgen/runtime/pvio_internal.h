/* pvio_internal.h - what batch.c (the queue and its flush) and models.c (the in-guest device models) share. */
#ifndef PVGEN_PVIO_INTERNAL_H
#define PVGEN_PVIO_INTERNAL_H

#include "pvio_arch.h"

/* Internal helpers keep the back end's calling convention, so calling one costs the caller no register spill. */
#define PVIO_HELPER __attribute__((__noinline__, __used__, __visibility__("hidden"))) PVIO_BACKEND

extern struct pvio_area *pvio_areas[PVIO_ARCH_MAX_CPUS] __attribute__((__visibility__("hidden")));

static inline struct pvio_area *pvio_cur(void)
{
	unsigned cpu = pvio_arch_cpu();

	return cpu < PVIO_ARCH_MAX_CPUS ? pvio_areas[cpu] : (struct pvio_area *)0;
}

static inline pvio_u32 pvio_mask(unsigned size, pvio_u32 v)
{
	return size == 1 ? (v & 0xff) : size == 2 ? (v & 0xffff) : v;
}

PVIO_HELPER void pvio_flush_locked(struct pvio_area *a);

/* The shadows, latches and models are the devices' state after the queue: every queued entry is neutral and no
 * device changed behind the queue (header.stale, set by the monitor when an asynchronous event found entries
 * queued, cleared by the next flush).  Everything served without an exit, and every neutral judgement, needs it. */
static inline int pvio_exact(const struct pvio_area *a)
{
	return a->header.count == a->header.neutral && !a->header.stale;
}

/* Flush when anything is queued (and, in an audit build, when served values wait to be checked: they must be
 * checked before a real instruction or another CPU's batch can change the device). */
static inline void pvio_flush_pending(struct pvio_area *a)
{
#ifdef PVIO_AUDIT
	if (a->audit.count) {
		pvio_flush_locked(a);
		return;
	}
#endif
	if (a->header.count)
		pvio_flush_locked(a);
}

/* Append an entry; the caller flushes when the threshold is reached (count < threshold <= capacity on entry). */
static inline struct pvio_entry *pvio_push(struct pvio_area *a, pvio_u16 port, unsigned size, unsigned op)
{
	pvio_u32 n = a->header.count;
	struct pvio_entry *e = &a->entries[n];

	e->port = port;
	e->size = (pvio_u8)size;
	e->op = (pvio_u8)op;
	a->header.count = n + 1;
	return e;
}

static inline void pvio_push_done(struct pvio_area *a)
{
	if (a->header.count >= a->header.threshold)
		pvio_flush_locked(a);
}

/* Prefetched FIFO values are owed to the guest and `port` is a port of their device: a write there may abandon
 * their transfer, so it is queued and flushed at once (the monitor drops the values when the device says the
 * transfer changed, fifo_epoch; never before the device has seen the write: a write that does not abandon it must
 * not lose them). */
static inline int pvio_fifo_owed(const struct pvio_area *a, pvio_u16 port)
{
	const struct pvio_fifo *f = &a->fifo;

	return f->head < f->count && port != f->port && (pvio_u16)(port - (f->kill & 0xffff)) < (f->kill >> 16);
}

/* --- the audit log (an audit build, -DPVIO_AUDIT: every value served without an exit is logged) ----------- */
#ifdef PVIO_AUDIT
#define PVIO_AUDITING 1
/* Room for `recs` records and `bytes` of data, flushing first when there is not (call before deciding what to
 * serve: a flush changes what is servable). */
static inline void pvio_audit_room(struct pvio_area *a, unsigned recs, unsigned long bytes)
{
	if (a->audit.count + recs > PVIO_AUDIT_CAPACITY || a->audit.data_used + bytes > PVIO_AUDIT_DATA_SIZE)
		pvio_flush_locked(a);
}

static inline void pvio_audit(struct pvio_area *a, unsigned kind, pvio_u16 port, unsigned size, pvio_u32 value,
			      pvio_u32 pos, pvio_u32 data)
{
	struct pvio_auditrec *r;

	if (a->audit.count >= PVIO_AUDIT_CAPACITY)     /* pvio_audit_room made room: never reached */
		return;
	r = &a->audit_recs[a->audit.count++];
	r->port = port;
	r->size = (pvio_u8)size;
	r->kind = (pvio_u8)kind;
	r->value = value;
	r->pos = pos;
	r->data = data;
}
#else
#define PVIO_AUDITING 0
static inline void pvio_audit_room(struct pvio_area *a, unsigned recs, unsigned long bytes)
{
	(void)a, (void)recs, (void)bytes;
}

static inline void pvio_audit(struct pvio_area *a, unsigned kind, pvio_u16 port, unsigned size, pvio_u32 value,
			      pvio_u32 pos, pvio_u32 data)
{
	(void)a, (void)kind, (void)port, (void)size, (void)value, (void)pos, (void)data;
}
#endif

/* --- models.c: the in-guest device models (protocol v5); each returns 0 when it does not serve ------------ */
/* A read of `port` (class word w): an active transfer engine or an index file serves it into *v. */
PVIO_HELPER int pvio_model_in(struct pvio_area *a, pvio_u16 port, unsigned size, pvio_u32 w, pvio_u32 *v);
/* Up to `count` reads of `port` into dst by an active engine; returns the number served. */
PVIO_HELPER unsigned long pvio_model_ins(struct pvio_area *a, pvio_u16 port, unsigned size, void *dst,
					 unsigned long count);
/* A write to a port the models know (class DOORBELL_IF): returns 1 when the write was queued (a modelled command,
 * an engine data write, an index latch), else 0 and the caller treats it as before. */
PVIO_HELPER int pvio_model_out(struct pvio_area *a, pvio_u16 port, unsigned size, pvio_u32 value, pvio_u32 w);
/* Up to `count` writes from src taken by an active engine; returns the number taken. */
PVIO_HELPER unsigned long pvio_model_outs(struct pvio_area *a, pvio_u16 port, unsigned size, const void *src,
					  unsigned long count);
/* After the caller queued a posted write to `port` that no model took (before its pvio_push_done): latches follow
 * (neutral) or forget (not neutral) it and engines that depend on it stop; the caller then re-evaluates the
 * interrupt rules (pvio_model_irq_eval) after pvio_push_done. */
PVIO_HELPER void pvio_model_after_write(struct pvio_area *a, pvio_u16 port, unsigned size, pvio_u32 value,
					unsigned neutral);
/* After a modelled change, at a point where a push is allowed: re-evaluate the interrupt rules. */
PVIO_HELPER void pvio_model_irq_eval(struct pvio_area *a);

#endif
