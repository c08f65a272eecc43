/* hx_internal.h - private layout shared by the harness sources and mirrored by pvgen/vmm/layout.py. */
#ifndef PVGEN_HX_INTERNAL_H
#define PVGEN_HX_INTERNAL_H

#ifndef __ASSEMBLER__
#include "harness.h"
#endif

/* Boot information written by the monitor at GPA HX_BOOTINFO_GPA (see docs/harness.md). */
#define HX_BOOTINFO_GPA 0x1000UL
#define HX_BOOTINFO_MAGIC 0x31584e4547565055ULL   /* "UPVGENX1" little-endian */
#define HX_BOOTINFO_VERSION 2                      /* 2: the guest writes delay_ns at every mark */
#ifndef __ASSEMBLER__
struct hx_bootinfo {
	hx_u64 magic;
	hx_u64 version;
	hx_u64 ram_size;      /* bytes of guest RAM at GPA 0 */
	hx_u64 tsc_khz;       /* KVM_GET_TSC_KHZ */
	hx_u64 cmdline_gpa;   /* NUL-terminated parameter string (pvgen run --arg) */
	hx_u64 heap_start;    /* first free GPA after the loaded image (page aligned) */
	hx_u64 delay_ns;      /* written by the guest: hx_udelay's busy-wait so far, stored by hx_mark before its
	                       * outb so the monitor reads it with the mark's snapshot */
};
#endif

/* The monitor's harness port device (pvgen/vmm/hxdev.py). */
#define HX_PORT_EXIT  0x500   /* outl: exit code; the monitor stops the guest */
#define HX_PORT_MARK  0x501   /* outb: measurement mark id */
#define HX_PORT_FAULT 0x502   /* outb: CPU exception; the frame is on the CPL0 stack (rsp) */
#define HX_PORT_PANIC 0x503   /* outb: hx_panic; the message went to the console */
#define HX_UART_BASE  0x3f8

/* Selectors (GDT built in boot.c). */
#define HX_KERNEL_CS 0x08
#define HX_KERNEL_DS 0x10
#define HX_USER_DS   0x1b
#define HX_USER_CS   0x23
#define HX_TSS_SEL   0x28

#define HX_IRQ_VECTOR_BASE 0x20

#ifndef __ASSEMBLER__
static inline void hx_outb(unsigned short port, unsigned char v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory"); }
static inline void hx_outl(unsigned short port, unsigned int v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port) : "memory"); }
static inline unsigned char hx_inb(unsigned short port) { unsigned char v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory"); return v; }

#define hx_barrier() __asm__ volatile("" ::: "memory")

extern struct hx_bootinfo *hx_bootinfo;
extern volatile unsigned long hx_irq_pending;        /* bit n: IRQ n arrived and is not yet dispatched */
extern volatile unsigned int hx_irq_soft_disabled;   /* 1: upcalls are deferred */
void hx_irq_upcall(void);
void hx_time_init(void);
void hx_pic_set_mask(int irq, int masked);
#endif

#endif
