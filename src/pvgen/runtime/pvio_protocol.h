/* pvio_protocol.h - the pvgen batch protocol for the guest runtime. GENERATED from src/pvgen/protocol.py
 * by `pvgen runtime header`: do not edit. See docs/protocol.md. */
#ifndef PVGEN_PVIO_PROTOCOL_H
#define PVGEN_PVIO_PROTOCOL_H

typedef unsigned char pvio_u8;
typedef unsigned short pvio_u16;
typedef unsigned int pvio_u32;
typedef unsigned long long pvio_u64;

#define PVIO_MAGIC 0x4f495650u  /* "PVIO" */
#define PVIO_VERSION 0x4u
#define PVIO_CTRL_REGISTER 0xf00u  /* inl: PVIO_MAGIC if a monitor is present; outl: GPA >> 12 of the area */
#define PVIO_CTRL_FLUSH 0xf04u  /* outl: header.slot; replays the batch (one exit) */
#define PVIO_PAGE_SIZE 0x1000u

#define PVIO_CLASS_STRICT 0x0u
#define PVIO_CLASS_POSTED 0x1u
#define PVIO_CLASS_DOORBELL 0x2u
#define PVIO_CLASS_SHADOW 0x3u
#define PVIO_CLASS_FIFO 0x4u
#define PVIO_CLASS_DOORBELL_IF 0x6u

#define PVIO_OP_OUT 0x1u
#define PVIO_OP_IN 0x2u
#define PVIO_OP_IN_DISCARD 0x3u
#define PVIO_OP_OUTS 0x4u
#define PVIO_OP_INS 0x5u

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

#define PVIO_CLS_READ_SHIFT 0x0u
#define PVIO_CLS_WRITE_SHIFT 0x3u
#define PVIO_CLS_CLASS_MASK 0x7u
#define PVIO_CLS_READ_EFFECT 0x40u  /* a shadow hit also queues PVIO_OP_IN_DISCARD */
#define PVIO_CLS_OWNED 0x80u  /* a strict access may travel as a batch entry */
#define PVIO_CLS_SLOT_SHIFT 0x8u

#define PVIO_ENTRY_CAPACITY 0xf0u
#define PVIO_DEFAULT_THRESHOLD 0x40u
#define PVIO_FIFO_CAPACITY 0x400u
#define PVIO_SHADOW_SLOTS 0x100u
#define PVIO_MAX_STRING_BYTES 0x100000u
#define PVIO_STAGING_SIZE 0x700u
#define PVIO_READ_NEUTRAL_SIZE 0x20u  /* bitmap by slot: an IN_DISCARD of a marked slot is neutral */
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
#define PVIO_AREA_SIZE 0x24000u

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
};
_Static_assert(sizeof(struct pvio_header) == 72, "pvio_header size");
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

/* Input FIFO control: values[head..count) are the next reads of `port` with `size`. */
struct pvio_fifo {
	pvio_u16 port;
	pvio_u8 size;
	pvio_u8 reserved0;
	pvio_u32 count; /* values present (written by the monitor) */
	pvio_u32 head; /* values consumed (advanced by the guest, reset to 0 by a refill) */
	pvio_u32 reserved1;
};
_Static_assert(sizeof(struct pvio_fifo) == 16, "pvio_fifo size");
_Static_assert(__builtin_offsetof(struct pvio_fifo, port) == 0, "pvio_fifo.port");
_Static_assert(__builtin_offsetof(struct pvio_fifo, size) == 2, "pvio_fifo.size");
_Static_assert(__builtin_offsetof(struct pvio_fifo, reserved0) == 3, "pvio_fifo.reserved0");
_Static_assert(__builtin_offsetof(struct pvio_fifo, count) == 4, "pvio_fifo.count");
_Static_assert(__builtin_offsetof(struct pvio_fifo, head) == 8, "pvio_fifo.head");
_Static_assert(__builtin_offsetof(struct pvio_fifo, reserved1) == 12, "pvio_fifo.reserved1");

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

/* The per-vCPU batch area (page aligned, physically contiguous). */
struct pvio_area {
	struct pvio_header header;
	pvio_u8 pad_0x48[0x38];
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

#endif
