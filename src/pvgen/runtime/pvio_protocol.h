/* pvio_protocol.h - the pvgen batch protocol for the guest runtime. GENERATED from src/pvgen/protocol.py
 * by `pvgen runtime header`: do not edit. See docs/protocol.md. */
#ifndef PVGEN_PVIO_PROTOCOL_H
#define PVGEN_PVIO_PROTOCOL_H

typedef unsigned char pvio_u8;
typedef unsigned short pvio_u16;
typedef unsigned int pvio_u32;
typedef unsigned long long pvio_u64;

#define PVIO_MAGIC 0x4f495650u  /* "PVIO" */
#define PVIO_VERSION 0x5u
#define PVIO_CTRL_REGISTER 0xf00u  /* inl: PVIO_MAGIC if a monitor is present; outl: GPA >> 12 of the area */
#define PVIO_CTRL_FLUSH 0xf04u  /* outl: header.slot; replays the batch (one exit) */
#define PVIO_PAGE_SIZE 0x1000u

#define PVIO_CLASS_STRICT 0x0u
#define PVIO_CLASS_POSTED 0x1u
#define PVIO_CLASS_DOORBELL 0x2u
#define PVIO_CLASS_SHADOW 0x3u
#define PVIO_CLASS_FIFO 0x4u
#define PVIO_CLASS_ENGINE 0x5u
#define PVIO_CLASS_DOORBELL_IF 0x6u

#define PVIO_OP_OUT 0x1u
#define PVIO_OP_IN 0x2u
#define PVIO_OP_IN_DISCARD 0x3u
#define PVIO_OP_OUTS 0x4u
#define PVIO_OP_INS 0x5u
#define PVIO_OP_SERVED_IN 0x6u
#define PVIO_OP_SERVED_OUT 0x7u
#define PVIO_OP_IRQ_MARK 0x8u

#define PVIO_NEUTRAL_NONE 0x0u
#define PVIO_NEUTRAL_KEEP 0x1u
#define PVIO_NEUTRAL_SET 0x2u
#define PVIO_NEUTRAL_SET_VALUE 0x3u
#define PVIO_NEUTRAL_CLEAR_BITS 0x4u
#define PVIO_NEUTRAL_BANK 0x5u

#define PVIO_STATUS_OK 0x0u
#define PVIO_STATUS_BAD_HEADER 0x1u
#define PVIO_STATUS_BAD_COUNT 0x2u
#define PVIO_STATUS_BAD_ENTRY 0x3u
#define PVIO_STATUS_BAD_ADDRESS 0x4u

#define PVIO_STATE_INACTIVE 0x0u
#define PVIO_STATE_ACTIVE 0x1u

#define PVIO_ENGINE_KIND_NONE 0x0u
#define PVIO_ENGINE_KIND_WINDOW 0x1u
#define PVIO_ENGINE_KIND_DMA 0x2u

#define PVIO_ENGINE_IDLE 0x0u
#define PVIO_ENGINE_READ 0x1u
#define PVIO_ENGINE_WRITE 0x2u

#define PVIO_AUDIT_SHADOW 0x1u
#define PVIO_AUDIT_REPLAYED 0x2u
#define PVIO_AUDIT_FIFO 0x3u
#define PVIO_AUDIT_ENGINE 0x4u
#define PVIO_AUDIT_INDEX 0x5u

#define PVIO_CLS_READ_SHIFT 0x0u
#define PVIO_CLS_WRITE_SHIFT 0x3u
#define PVIO_CLS_CLASS_MASK 0x7u
#define PVIO_CLS_READ_EFFECT 0x40u  /* a shadow hit also queues PVIO_OP_IN_DISCARD */
#define PVIO_CLS_OWNED 0x80u  /* a strict access may travel as a batch entry */
#define PVIO_CLS_SLOT_SHIFT 0x8u

#define PVIO_ENTRY_CAPACITY 0xf0u
#define PVIO_DEFAULT_THRESHOLD 0xf0u
#define PVIO_FIFO_CAPACITY 0x400u
#define PVIO_SHADOW_SLOTS 0x100u
#define PVIO_MAX_STRING_BYTES 0x100000u
#define PVIO_STAGING_SIZE 0x700u
#define PVIO_READ_NEUTRAL_SIZE 0x20u  /* bitmap by slot: an IN_DISCARD of a marked slot is neutral */
#define PVIO_COND_NONE 0x0u
#define PVIO_COND_SHADOW 0x1u
#define PVIO_COND_LATCH 0x2u
#define PVIO_COND_RANGE 0x3u
#define PVIO_NO_REF 0xffu
#define PVIO_LATCH_COUNT 0x10u
#define PVIO_COND_COUNT 0x4u
#define PVIO_EFFECT_COUNT 0x4u
#define PVIO_ENGINE_COUNT 0x4u
#define PVIO_CMD_RULE_COUNT 0x10u
#define PVIO_IRQ_RULE_COUNT 0x4u
#define PVIO_IX_ENTRY_COUNT 0x100u
#define PVIO_AUDIT_CAPACITY 0x7fcu
#define PVIO_AUDIT_DATA_SIZE 0x10000u
#define PVIO_XSTAGING_SIZE 0x8000u
#define PVIO_ENGINE_MEM_SIZE 0x10000u
#define PVIO_SERVED_OFF_BITS 0x18u  /* served_gpa(): bits of the area offset */
#define PVIO_SERVED_ADDR_SHIFT 0x18u  /* served_gpa(): the device address */
#define PVIO_SERVED_ENGINE_SHIFT 0x38u  /* served_gpa(): the engine index */
#define PVIO_OFF_HEADER 0x0u
#define PVIO_OFF_FIFO 0x80u
#define PVIO_OFF_READ_NEUTRAL 0xe0u
#define PVIO_OFF_ENTRIES 0x100u
#define PVIO_OFF_FIFO_VALUES 0x1000u
#define PVIO_OFF_SHADOWS 0x2000u
#define PVIO_OFF_DOORBELL_MASKS 0x3000u
#define PVIO_OFF_WRITE_RULES 0x3100u
#define PVIO_OFF_STAGING 0x3900u
#define PVIO_OFF_CLASSES 0x4000u
#define PVIO_OFF_LATCHES 0x24000u
#define PVIO_OFF_IRQ_RULES 0x24040u
#define PVIO_OFF_IX_FILE 0x24080u
#define PVIO_OFF_ENGINES 0x24100u
#define PVIO_OFF_CMD_RULES 0x24300u
#define PVIO_OFF_IX_ENTRIES 0x24800u
#define PVIO_OFF_AUDIT 0x25000u
#define PVIO_OFF_AUDIT_RECS 0x25040u
#define PVIO_OFF_AUDIT_DATA 0x2d000u
#define PVIO_OFF_XSTAGING 0x3d000u
#define PVIO_OFF_ENGINE_MEM 0x45000u
#define PVIO_AREA_SIZE 0x55000u

/* Area header: identification, queue state, statistics. */
struct pvio_header {
	pvio_u32 magic; /* MAGIC, written by the guest */
	pvio_u16 version; /* VERSION, written by the guest */
	pvio_u16 slot; /* area number assigned by the monitor; the value the guest writes to CTRL_FLUSH */
	pvio_u32 state; /* State: the monitor sets ACTIVE after validating the registration */
	pvio_u32 area_size; /* AREA_SIZE, written by the guest */
	pvio_u32 capacity; /* ENTRY_CAPACITY, written by the guest */
	pvio_u32 count; /* entries queued; the monitor sets it to 0 after each flush */
	pvio_u32 threshold; /* flush when count reaches it (1..capacity) */
	pvio_u32 status; /* Status of the last flush, written by the monitor */
	pvio_u32 flushes; /* guest statistics: flush exits */
	pvio_u32 shadow_hits; /* guest statistics: reads served from the shadow area */
	pvio_u32 fifo_hits; /* guest statistics: values served from the FIFO area */
	pvio_u32 strict; /* guest statistics: real instructions executed */
	pvio_u32 rejected; /* monitor statistics: batches rejected for this area */
	pvio_u32 shadow_since_tick; /* shadow reads since the last refresh; a tick with a non-zero value flushes */
	pvio_u32 neutral; /* queued entries that are neutral writes; shadows are served while count == neutral */
	pvio_u32 staged; /* bytes of the staging buffer used by queued OUTS entries */
	pvio_u32 irq_lines; /* written by the guest: interrupt lines (bit n = ISA IRQ n) its environment can take as notifications in irq_notify; 0: none */
	pvio_u32 irq_notify; /* written by the monitor at the end of a flush: lines of irq_lines raised (or still high) during it, not asserted on the interrupt controller; the guest takes and clears them */
	pvio_u32 audit; /* written by the guest: 1 when it logs every value it serves in the audit region */
	pvio_u32 served; /* guest statistics: accesses served by in-guest models (engines, index files) */
	pvio_u32 models; /* written by the monitor: bit 0 latches/rules/engines/interrupt rules published, bit 1 an index file published */
	pvio_u32 irq_raised; /* guest statistics: interrupts raised in the guest by an interrupt rule */
	pvio_u32 xstaged; /* bytes of the xstaging buffer used by queued SERVED_OUT entries */
	pvio_u32 stale; /* written by the monitor: a device changed while entries were queued, so the shadows and models are not the device's state after the queue; nothing is served until the next flush */
	pvio_u32 tick_flushes; /* guest: header.flushes at the last timer tick; a tick flushes only work that waited a whole tick period (no flush since the previous tick) */
};
_Static_assert(sizeof(struct pvio_header) == 100, "pvio_header size");
_Static_assert(__builtin_offsetof(struct pvio_header, magic) == 0, "pvio_header.magic");
_Static_assert(__builtin_offsetof(struct pvio_header, version) == 4, "pvio_header.version");
_Static_assert(__builtin_offsetof(struct pvio_header, slot) == 6, "pvio_header.slot");
_Static_assert(__builtin_offsetof(struct pvio_header, state) == 8, "pvio_header.state");
_Static_assert(__builtin_offsetof(struct pvio_header, area_size) == 12, "pvio_header.area_size");
_Static_assert(__builtin_offsetof(struct pvio_header, capacity) == 16, "pvio_header.capacity");
_Static_assert(__builtin_offsetof(struct pvio_header, count) == 20, "pvio_header.count");
_Static_assert(__builtin_offsetof(struct pvio_header, threshold) == 24, "pvio_header.threshold");
_Static_assert(__builtin_offsetof(struct pvio_header, status) == 28, "pvio_header.status");
_Static_assert(__builtin_offsetof(struct pvio_header, flushes) == 32, "pvio_header.flushes");
_Static_assert(__builtin_offsetof(struct pvio_header, shadow_hits) == 36, "pvio_header.shadow_hits");
_Static_assert(__builtin_offsetof(struct pvio_header, fifo_hits) == 40, "pvio_header.fifo_hits");
_Static_assert(__builtin_offsetof(struct pvio_header, strict) == 44, "pvio_header.strict");
_Static_assert(__builtin_offsetof(struct pvio_header, rejected) == 48, "pvio_header.rejected");
_Static_assert(__builtin_offsetof(struct pvio_header, shadow_since_tick) == 52, "pvio_header.shadow_since_tick");
_Static_assert(__builtin_offsetof(struct pvio_header, neutral) == 56, "pvio_header.neutral");
_Static_assert(__builtin_offsetof(struct pvio_header, staged) == 60, "pvio_header.staged");
_Static_assert(__builtin_offsetof(struct pvio_header, irq_lines) == 64, "pvio_header.irq_lines");
_Static_assert(__builtin_offsetof(struct pvio_header, irq_notify) == 68, "pvio_header.irq_notify");
_Static_assert(__builtin_offsetof(struct pvio_header, audit) == 72, "pvio_header.audit");
_Static_assert(__builtin_offsetof(struct pvio_header, served) == 76, "pvio_header.served");
_Static_assert(__builtin_offsetof(struct pvio_header, models) == 80, "pvio_header.models");
_Static_assert(__builtin_offsetof(struct pvio_header, irq_raised) == 84, "pvio_header.irq_raised");
_Static_assert(__builtin_offsetof(struct pvio_header, xstaged) == 88, "pvio_header.xstaged");
_Static_assert(__builtin_offsetof(struct pvio_header, stale) == 92, "pvio_header.stale");
_Static_assert(__builtin_offsetof(struct pvio_header, tick_flushes) == 96, "pvio_header.tick_flushes");

/* Input FIFO control: values[head..count) are the next reads of `port` with `size`. */
struct pvio_fifo {
	pvio_u16 port;
	pvio_u8 size;
	pvio_u8 reserved0;
	pvio_u32 count; /* values present (written by the monitor) */
	pvio_u32 head; /* values consumed (advanced by the guest, reset to 0 by a refill) */
	pvio_u32 kill; /* ports first | count << 16 (the FIFO's device): while values are owed, a write to one of them (but port) flushes at once, so the monitor can drop values of a transfer it abandoned (v5) */
};
_Static_assert(sizeof(struct pvio_fifo) == 16, "pvio_fifo size");
_Static_assert(__builtin_offsetof(struct pvio_fifo, port) == 0, "pvio_fifo.port");
_Static_assert(__builtin_offsetof(struct pvio_fifo, size) == 2, "pvio_fifo.size");
_Static_assert(__builtin_offsetof(struct pvio_fifo, reserved0) == 3, "pvio_fifo.reserved0");
_Static_assert(__builtin_offsetof(struct pvio_fifo, count) == 4, "pvio_fifo.count");
_Static_assert(__builtin_offsetof(struct pvio_fifo, head) == 8, "pvio_fifo.head");
_Static_assert(__builtin_offsetof(struct pvio_fifo, kill) == 12, "pvio_fifo.kill");

/* One queued access. */
struct pvio_entry {
	pvio_u16 port;
	pvio_u8 size; /* 1, 2 or 4 */
	pvio_u8 op; /* Op */
	pvio_u32 value; /* OUT: value; IN: result (written back); OUTS/INS: element count */
	pvio_u64 gpa; /* OUTS/INS: guest-physical address of the first element */
};
_Static_assert(sizeof(struct pvio_entry) == 16, "pvio_entry size");
_Static_assert(__builtin_offsetof(struct pvio_entry, port) == 0, "pvio_entry.port");
_Static_assert(__builtin_offsetof(struct pvio_entry, size) == 2, "pvio_entry.size");
_Static_assert(__builtin_offsetof(struct pvio_entry, op) == 3, "pvio_entry.op");
_Static_assert(__builtin_offsetof(struct pvio_entry, value) == 4, "pvio_entry.value");
_Static_assert(__builtin_offsetof(struct pvio_entry, gpa) == 8, "pvio_entry.gpa");

/* One shadow register: its value for each access size. */
struct pvio_shadow {
	pvio_u16 port;
	pvio_u8 valid; /* bit i set: val[i] holds the value of a read of size 1 << i */
	pvio_u8 reserved;
	pvio_u32 val[3];
};
_Static_assert(sizeof(struct pvio_shadow) == 16, "pvio_shadow size");
_Static_assert(__builtin_offsetof(struct pvio_shadow, port) == 0, "pvio_shadow.port");
_Static_assert(__builtin_offsetof(struct pvio_shadow, valid) == 2, "pvio_shadow.valid");
_Static_assert(__builtin_offsetof(struct pvio_shadow, reserved) == 3, "pvio_shadow.reserved");
_Static_assert(__builtin_offsetof(struct pvio_shadow, val) == 4, "pvio_shadow.val");

/* A neutral-write rule, by slot (docs/protocol.md, neutral writes). */
struct pvio_wrule {
	pvio_u8 op; /* Neutral */
	pvio_u8 operand;
	pvio_u8 cond_slot; /* the shadow the condition reads (byte value) */
	pvio_u8 cond_mask; /* 0: no condition */
	pvio_u8 cond_want;
	pvio_u8 value_mask; /* the written value must match value_want under value_mask */
	pvio_u8 value_want;
	pvio_u8 banked; /* BANK: the slots after this one whose values depend on the bank */
};
_Static_assert(sizeof(struct pvio_wrule) == 8, "pvio_wrule size");
_Static_assert(__builtin_offsetof(struct pvio_wrule, op) == 0, "pvio_wrule.op");
_Static_assert(__builtin_offsetof(struct pvio_wrule, operand) == 1, "pvio_wrule.operand");
_Static_assert(__builtin_offsetof(struct pvio_wrule, cond_slot) == 2, "pvio_wrule.cond_slot");
_Static_assert(__builtin_offsetof(struct pvio_wrule, cond_mask) == 3, "pvio_wrule.cond_mask");
_Static_assert(__builtin_offsetof(struct pvio_wrule, cond_want) == 4, "pvio_wrule.cond_want");
_Static_assert(__builtin_offsetof(struct pvio_wrule, value_mask) == 5, "pvio_wrule.value_mask");
_Static_assert(__builtin_offsetof(struct pvio_wrule, value_want) == 6, "pvio_wrule.value_want");
_Static_assert(__builtin_offsetof(struct pvio_wrule, banked) == 7, "pvio_wrule.banked");

/* A write-only register whose last written byte the guest tracks (protocol v5). */
struct pvio_latch {
	pvio_u16 port;
	pvio_u8 valid; /* 0: unknown until the next flush (a write the runtime could not judge) */
	pvio_u8 value;
};
_Static_assert(sizeof(struct pvio_latch) == 4, "pvio_latch size");
_Static_assert(__builtin_offsetof(struct pvio_latch, port) == 0, "pvio_latch.port");
_Static_assert(__builtin_offsetof(struct pvio_latch, valid) == 2, "pvio_latch.valid");
_Static_assert(__builtin_offsetof(struct pvio_latch, value) == 3, "pvio_latch.value");

/* A command write the guest models (protocol v5, docs/protocol.md). */
struct pvio_cmdrule {
	pvio_u16 port; /* 0: unused rule */
	pvio_u8 value_mask;
	pvio_u8 value_want; /* the rule applies to a byte write with (value & value_mask) == value_want */
	pvio_u8 own_mask; /* the port's own shadow takes the value's bits under own_mask ... */
	pvio_u8 own_and; /* ... and is then ANDed with own_and */
	pvio_u8 engine; /* arm this engine (NO_REF: none) ... */
	pvio_u8 engine_state; /* ... for EngineState READ or WRITE */
	pvio_u8 cond_kind[4];
	pvio_u8 cond_a[4];
	pvio_u8 cond_b[4];
	pvio_u16 cond_x[4];
	pvio_u16 cond_y[4];
	pvio_u8 eff_slot[4]; /* shadows[eff_slot].val[0] = (val & eff_and) | eff_or */
	pvio_u8 eff_and[4];
	pvio_u8 eff_or[4];
	pvio_u8 xslot[4]; /* a wide condition: the byte shadows xslot[0..3] (NO_REF: 0) as a little-endian value, ANDed with xmask, within [xmin, xmax]; xmask 0: none */
	pvio_u32 xmask;
	pvio_u32 xmin;
	pvio_u32 xmax;
	pvio_u32 win_count; /* arming a WINDOW engine: bytes (times the byte shadow count_slot unless NO_REF) */
	pvio_u32 win_mem; /* arming a WINDOW engine: area offset of its memory (0: keep) */
	pvio_u8 count_slot;
	pvio_u8 latch_set; /* a latch this write sets (NO_REF: none) ... */
	pvio_u8 latch_value; /* ... to this value */
	pvio_u8 flags; /* bit 0: the armed engine stages what it takes in xstaging (its memory may be reused) */
	pvio_u8 reserved[4];
};
_Static_assert(sizeof(struct pvio_cmdrule) == 80, "pvio_cmdrule size");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, port) == 0, "pvio_cmdrule.port");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, value_mask) == 2, "pvio_cmdrule.value_mask");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, value_want) == 3, "pvio_cmdrule.value_want");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, own_mask) == 4, "pvio_cmdrule.own_mask");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, own_and) == 5, "pvio_cmdrule.own_and");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, engine) == 6, "pvio_cmdrule.engine");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, engine_state) == 7, "pvio_cmdrule.engine_state");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, cond_kind) == 8, "pvio_cmdrule.cond_kind");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, cond_a) == 12, "pvio_cmdrule.cond_a");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, cond_b) == 16, "pvio_cmdrule.cond_b");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, cond_x) == 20, "pvio_cmdrule.cond_x");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, cond_y) == 28, "pvio_cmdrule.cond_y");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, eff_slot) == 36, "pvio_cmdrule.eff_slot");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, eff_and) == 40, "pvio_cmdrule.eff_and");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, eff_or) == 44, "pvio_cmdrule.eff_or");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, xslot) == 48, "pvio_cmdrule.xslot");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, xmask) == 52, "pvio_cmdrule.xmask");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, xmin) == 56, "pvio_cmdrule.xmin");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, xmax) == 60, "pvio_cmdrule.xmax");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, win_count) == 64, "pvio_cmdrule.win_count");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, win_mem) == 68, "pvio_cmdrule.win_mem");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, count_slot) == 72, "pvio_cmdrule.count_slot");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, latch_set) == 73, "pvio_cmdrule.latch_set");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, latch_value) == 74, "pvio_cmdrule.latch_value");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, flags) == 75, "pvio_cmdrule.flags");
_Static_assert(__builtin_offsetof(struct pvio_cmdrule, reserved) == 76, "pvio_cmdrule.reserved");

/* A transfer engine on a data port (protocol v5, docs/protocol.md). */
struct pvio_engine {
	pvio_u16 port; /* the data port */
	pvio_u8 kind; /* EngineKind */
	pvio_u8 state; /* EngineState: the monitor publishes it at every flush, the guest changes it */
	pvio_u8 unit[4]; /* bytes one access of size 1, 2, 4 moves (index size >> 1); 0: not served */
	pvio_u32 mem_off; /* area offset of the engine memory, which holds device address mem_base */
	pvio_u32 mem_base;
	pvio_u32 mem_len;
	pvio_u32 addr; /* device address of the next byte */
	pvio_u32 count; /* bytes left in the transfer */
	pvio_u32 addr_mask; /* width of the device's address counter */
	pvio_u32 wrap_at; /* an address reaching wrap_at becomes wrap_to (when wrap_to < wrap_at) */
	pvio_u32 wrap_to;
	pvio_u32 dep_latches; /* bit i: a write to latch i while the engine serves stops it */
	pvio_u8 addr_latch[2]; /* DMA: latches (low, high) the start address comes from */
	pvio_u8 count_latch[2]; /* DMA: latches (low, high) of the byte count; updated as it counts down */
	pvio_u8 wrap_latch[2]; /* DMA: latches (to, at) of the wrap bounds, shifted left by wrap_shift */
	pvio_u8 wrap_shift;
	pvio_u8 flags; /* bit 0: count saturates at zero (an access moving more than is left ends it); bit 1: writes are staged in xstaging (a window a command rule armed: its memory is reused by the next one) */
	pvio_u8 addr_slot[2]; /* shadows showing the current address (low, high byte); NO_REF: none */
	pvio_u8 done_slot[4]; /* completion (count reaches 0): shadows[done_slot].val[0] = (val & done_and) | done_or */
	pvio_u8 done_and[4];
	pvio_u8 done_or[4];
	pvio_u8 cond_kind[2]; /* [0]: must hold for every served access; [1]: for the completing one */
	pvio_u8 cond_a[2];
	pvio_u8 cond_b[2];
	pvio_u16 cond_x[2];
	pvio_u16 cond_y[2];
	pvio_u32 seq; /* WINDOW: the monitor's arm number */
	pvio_u16 cmd_port; /* DMA: any write to this port but the command rule arming the engine stops it */
	pvio_u8 reserved[42];
};
_Static_assert(sizeof(struct pvio_engine) == 128, "pvio_engine size");
_Static_assert(__builtin_offsetof(struct pvio_engine, port) == 0, "pvio_engine.port");
_Static_assert(__builtin_offsetof(struct pvio_engine, kind) == 2, "pvio_engine.kind");
_Static_assert(__builtin_offsetof(struct pvio_engine, state) == 3, "pvio_engine.state");
_Static_assert(__builtin_offsetof(struct pvio_engine, unit) == 4, "pvio_engine.unit");
_Static_assert(__builtin_offsetof(struct pvio_engine, mem_off) == 8, "pvio_engine.mem_off");
_Static_assert(__builtin_offsetof(struct pvio_engine, mem_base) == 12, "pvio_engine.mem_base");
_Static_assert(__builtin_offsetof(struct pvio_engine, mem_len) == 16, "pvio_engine.mem_len");
_Static_assert(__builtin_offsetof(struct pvio_engine, addr) == 20, "pvio_engine.addr");
_Static_assert(__builtin_offsetof(struct pvio_engine, count) == 24, "pvio_engine.count");
_Static_assert(__builtin_offsetof(struct pvio_engine, addr_mask) == 28, "pvio_engine.addr_mask");
_Static_assert(__builtin_offsetof(struct pvio_engine, wrap_at) == 32, "pvio_engine.wrap_at");
_Static_assert(__builtin_offsetof(struct pvio_engine, wrap_to) == 36, "pvio_engine.wrap_to");
_Static_assert(__builtin_offsetof(struct pvio_engine, dep_latches) == 40, "pvio_engine.dep_latches");
_Static_assert(__builtin_offsetof(struct pvio_engine, addr_latch) == 44, "pvio_engine.addr_latch");
_Static_assert(__builtin_offsetof(struct pvio_engine, count_latch) == 46, "pvio_engine.count_latch");
_Static_assert(__builtin_offsetof(struct pvio_engine, wrap_latch) == 48, "pvio_engine.wrap_latch");
_Static_assert(__builtin_offsetof(struct pvio_engine, wrap_shift) == 50, "pvio_engine.wrap_shift");
_Static_assert(__builtin_offsetof(struct pvio_engine, flags) == 51, "pvio_engine.flags");
_Static_assert(__builtin_offsetof(struct pvio_engine, addr_slot) == 52, "pvio_engine.addr_slot");
_Static_assert(__builtin_offsetof(struct pvio_engine, done_slot) == 54, "pvio_engine.done_slot");
_Static_assert(__builtin_offsetof(struct pvio_engine, done_and) == 58, "pvio_engine.done_and");
_Static_assert(__builtin_offsetof(struct pvio_engine, done_or) == 62, "pvio_engine.done_or");
_Static_assert(__builtin_offsetof(struct pvio_engine, cond_kind) == 66, "pvio_engine.cond_kind");
_Static_assert(__builtin_offsetof(struct pvio_engine, cond_a) == 68, "pvio_engine.cond_a");
_Static_assert(__builtin_offsetof(struct pvio_engine, cond_b) == 70, "pvio_engine.cond_b");
_Static_assert(__builtin_offsetof(struct pvio_engine, cond_x) == 72, "pvio_engine.cond_x");
_Static_assert(__builtin_offsetof(struct pvio_engine, cond_y) == 76, "pvio_engine.cond_y");
_Static_assert(__builtin_offsetof(struct pvio_engine, seq) == 80, "pvio_engine.seq");
_Static_assert(__builtin_offsetof(struct pvio_engine, cmd_port) == 84, "pvio_engine.cmd_port");
_Static_assert(__builtin_offsetof(struct pvio_engine, reserved) == 86, "pvio_engine.reserved");

/* An interrupt line the guest computes (protocol v5, docs/protocol.md). */
struct pvio_irqrule {
	pvio_u8 line; /* the line (bit of header.irq_lines) */
	pvio_u8 valid; /* 0: unused, or not computable until the next flush */
	pvio_u8 level; /* the line's level: published by the monitor, updated by the guest */
	pvio_u8 status_slot; /* line = (shadow & latch & mask) != 0 ... */
	pvio_u8 mask_latch;
	pvio_u8 mask;
	pvio_u8 cond_slot; /* ... evaluated only while shadow cond_slot matches (else the rule is dropped) */
	pvio_u8 cond_mask;
	pvio_u8 cond_want;
	pvio_u8 reserved[7];
};
_Static_assert(sizeof(struct pvio_irqrule) == 16, "pvio_irqrule size");
_Static_assert(__builtin_offsetof(struct pvio_irqrule, line) == 0, "pvio_irqrule.line");
_Static_assert(__builtin_offsetof(struct pvio_irqrule, valid) == 1, "pvio_irqrule.valid");
_Static_assert(__builtin_offsetof(struct pvio_irqrule, level) == 2, "pvio_irqrule.level");
_Static_assert(__builtin_offsetof(struct pvio_irqrule, status_slot) == 3, "pvio_irqrule.status_slot");
_Static_assert(__builtin_offsetof(struct pvio_irqrule, mask_latch) == 4, "pvio_irqrule.mask_latch");
_Static_assert(__builtin_offsetof(struct pvio_irqrule, mask) == 5, "pvio_irqrule.mask");
_Static_assert(__builtin_offsetof(struct pvio_irqrule, cond_slot) == 6, "pvio_irqrule.cond_slot");
_Static_assert(__builtin_offsetof(struct pvio_irqrule, cond_mask) == 7, "pvio_irqrule.cond_mask");
_Static_assert(__builtin_offsetof(struct pvio_irqrule, cond_want) == 8, "pvio_irqrule.cond_want");
_Static_assert(__builtin_offsetof(struct pvio_irqrule, reserved) == 9, "pvio_irqrule.reserved");

/* An index/data register file (protocol v5): index port latch, data reads served from the entries. */
struct pvio_ixfile {
	pvio_u16 index_port; /* 0: no index file */
	pvio_u16 data_port; /* first data port; reads of data_port + k (k < data_len) serve byte lane k */
	pvio_u8 data_len;
	pvio_u8 index_size; /* the index write's size (a write of another size invalidates the latch) */
	pvio_u8 valid; /* the latch holds the index the device has (after the queue) */
	pvio_u8 reserved0;
	pvio_u32 latch;
	pvio_u32 key_mask; /* an entry's key is latch & key_mask */
	pvio_u32 entries; /* entries in use, sorted by key */
	pvio_u32 reserved[3];
};
_Static_assert(sizeof(struct pvio_ixfile) == 32, "pvio_ixfile size");
_Static_assert(__builtin_offsetof(struct pvio_ixfile, index_port) == 0, "pvio_ixfile.index_port");
_Static_assert(__builtin_offsetof(struct pvio_ixfile, data_port) == 2, "pvio_ixfile.data_port");
_Static_assert(__builtin_offsetof(struct pvio_ixfile, data_len) == 4, "pvio_ixfile.data_len");
_Static_assert(__builtin_offsetof(struct pvio_ixfile, index_size) == 5, "pvio_ixfile.index_size");
_Static_assert(__builtin_offsetof(struct pvio_ixfile, valid) == 6, "pvio_ixfile.valid");
_Static_assert(__builtin_offsetof(struct pvio_ixfile, reserved0) == 7, "pvio_ixfile.reserved0");
_Static_assert(__builtin_offsetof(struct pvio_ixfile, latch) == 8, "pvio_ixfile.latch");
_Static_assert(__builtin_offsetof(struct pvio_ixfile, key_mask) == 12, "pvio_ixfile.key_mask");
_Static_assert(__builtin_offsetof(struct pvio_ixfile, entries) == 16, "pvio_ixfile.entries");
_Static_assert(__builtin_offsetof(struct pvio_ixfile, reserved) == 20, "pvio_ixfile.reserved");

/* One side-effect-free data value of an index file. */
struct pvio_ixentry {
	pvio_u32 key;
	pvio_u32 value;
};
_Static_assert(sizeof(struct pvio_ixentry) == 8, "pvio_ixentry size");
_Static_assert(__builtin_offsetof(struct pvio_ixentry, key) == 0, "pvio_ixentry.key");
_Static_assert(__builtin_offsetof(struct pvio_ixentry, value) == 4, "pvio_ixentry.value");

/* Audit log control (protocol v5): every value served without an exit, when the guest runs an audit build. */
struct pvio_audit {
	pvio_u32 count; /* records in use */
	pvio_u32 capacity;
	pvio_u32 data_used; /* bytes of audit data in use */
	pvio_u32 data_cap;
	pvio_u32 reserved[12];
};
_Static_assert(sizeof(struct pvio_audit) == 64, "pvio_audit size");
_Static_assert(__builtin_offsetof(struct pvio_audit, count) == 0, "pvio_audit.count");
_Static_assert(__builtin_offsetof(struct pvio_audit, capacity) == 4, "pvio_audit.capacity");
_Static_assert(__builtin_offsetof(struct pvio_audit, data_used) == 8, "pvio_audit.data_used");
_Static_assert(__builtin_offsetof(struct pvio_audit, data_cap) == 12, "pvio_audit.data_cap");
_Static_assert(__builtin_offsetof(struct pvio_audit, reserved) == 16, "pvio_audit.reserved");

/* One served value (or run of engine-served bytes). */
struct pvio_auditrec {
	pvio_u16 port;
	pvio_u8 size;
	pvio_u8 kind; /* AuditKind */
	pvio_u32 value; /* the value served (ENGINE: bytes) */
	pvio_u32 pos; /* the queue position: entries queued before the read (REPLAYED/ENGINE: its entry) */
	pvio_u32 data;
};
_Static_assert(sizeof(struct pvio_auditrec) == 16, "pvio_auditrec size");
_Static_assert(__builtin_offsetof(struct pvio_auditrec, port) == 0, "pvio_auditrec.port");
_Static_assert(__builtin_offsetof(struct pvio_auditrec, size) == 2, "pvio_auditrec.size");
_Static_assert(__builtin_offsetof(struct pvio_auditrec, kind) == 3, "pvio_auditrec.kind");
_Static_assert(__builtin_offsetof(struct pvio_auditrec, value) == 4, "pvio_auditrec.value");
_Static_assert(__builtin_offsetof(struct pvio_auditrec, pos) == 8, "pvio_auditrec.pos");
_Static_assert(__builtin_offsetof(struct pvio_auditrec, data) == 12, "pvio_auditrec.data");

/* The per-vCPU batch area (page aligned, physically contiguous). */
struct pvio_area {
	struct pvio_header header;
	pvio_u8 pad_0x64[0x1c];
	struct pvio_fifo fifo;
	pvio_u8 pad_0x90[0x50];
	pvio_u8 read_neutral[PVIO_READ_NEUTRAL_SIZE];
	struct pvio_entry entries[PVIO_ENTRY_CAPACITY];
	pvio_u32 fifo_values[PVIO_FIFO_CAPACITY];
	struct pvio_shadow shadows[PVIO_SHADOW_SLOTS];
	pvio_u8 doorbell_masks[PVIO_SHADOW_SLOTS];
	struct pvio_wrule write_rules[PVIO_SHADOW_SLOTS];
	pvio_u8 staging[PVIO_STAGING_SIZE];
	pvio_u16 classes[0x10000];
	struct pvio_latch latches[PVIO_LATCH_COUNT];
	struct pvio_irqrule irq_rules[PVIO_IRQ_RULE_COUNT];
	struct pvio_ixfile ix_file;
	pvio_u8 pad_0x240a0[0x60];
	struct pvio_engine engines[PVIO_ENGINE_COUNT];
	struct pvio_cmdrule cmd_rules[PVIO_CMD_RULE_COUNT];
	struct pvio_ixentry ix_entries[PVIO_IX_ENTRY_COUNT];
	struct pvio_audit audit;
	struct pvio_auditrec audit_recs[PVIO_AUDIT_CAPACITY];
	pvio_u8 audit_data[PVIO_AUDIT_DATA_SIZE];
	pvio_u8 xstaging[PVIO_XSTAGING_SIZE];
	pvio_u8 engine_mem[PVIO_ENGINE_MEM_SIZE];
};
_Static_assert(sizeof(struct pvio_area) == PVIO_AREA_SIZE, "pvio_area size");
_Static_assert(__builtin_offsetof(struct pvio_area, header) == PVIO_OFF_HEADER, "pvio_area.header");
_Static_assert(__builtin_offsetof(struct pvio_area, fifo) == PVIO_OFF_FIFO, "pvio_area.fifo");
_Static_assert(__builtin_offsetof(struct pvio_area, read_neutral) == PVIO_OFF_READ_NEUTRAL, "pvio_area.read_neutral");
_Static_assert(__builtin_offsetof(struct pvio_area, entries) == PVIO_OFF_ENTRIES, "pvio_area.entries");
_Static_assert(__builtin_offsetof(struct pvio_area, fifo_values) == PVIO_OFF_FIFO_VALUES, "pvio_area.fifo_values");
_Static_assert(__builtin_offsetof(struct pvio_area, shadows) == PVIO_OFF_SHADOWS, "pvio_area.shadows");
_Static_assert(__builtin_offsetof(struct pvio_area, doorbell_masks) == PVIO_OFF_DOORBELL_MASKS, "pvio_area.doorbell_masks");
_Static_assert(__builtin_offsetof(struct pvio_area, write_rules) == PVIO_OFF_WRITE_RULES, "pvio_area.write_rules");
_Static_assert(__builtin_offsetof(struct pvio_area, staging) == PVIO_OFF_STAGING, "pvio_area.staging");
_Static_assert(__builtin_offsetof(struct pvio_area, classes) == PVIO_OFF_CLASSES, "pvio_area.classes");
_Static_assert(__builtin_offsetof(struct pvio_area, latches) == PVIO_OFF_LATCHES, "pvio_area.latches");
_Static_assert(__builtin_offsetof(struct pvio_area, irq_rules) == PVIO_OFF_IRQ_RULES, "pvio_area.irq_rules");
_Static_assert(__builtin_offsetof(struct pvio_area, ix_file) == PVIO_OFF_IX_FILE, "pvio_area.ix_file");
_Static_assert(__builtin_offsetof(struct pvio_area, engines) == PVIO_OFF_ENGINES, "pvio_area.engines");
_Static_assert(__builtin_offsetof(struct pvio_area, cmd_rules) == PVIO_OFF_CMD_RULES, "pvio_area.cmd_rules");
_Static_assert(__builtin_offsetof(struct pvio_area, ix_entries) == PVIO_OFF_IX_ENTRIES, "pvio_area.ix_entries");
_Static_assert(__builtin_offsetof(struct pvio_area, audit) == PVIO_OFF_AUDIT, "pvio_area.audit");
_Static_assert(__builtin_offsetof(struct pvio_area, audit_recs) == PVIO_OFF_AUDIT_RECS, "pvio_area.audit_recs");
_Static_assert(__builtin_offsetof(struct pvio_area, audit_data) == PVIO_OFF_AUDIT_DATA, "pvio_area.audit_data");
_Static_assert(__builtin_offsetof(struct pvio_area, xstaging) == PVIO_OFF_XSTAGING, "pvio_area.xstaging");
_Static_assert(__builtin_offsetof(struct pvio_area, engine_mem) == PVIO_OFF_ENGINE_MEM, "pvio_area.engine_mem");

#endif
