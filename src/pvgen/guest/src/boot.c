/* boot.c - CPL0 set-up run once (GDT, TSS with the I/O permission bitmap, IDT, PIC, PIT), then the CPL3 start. */
#include "hx_internal.h"

#define KSTACK_SIZE 16384
#define USTACK_SIZE 65536

__attribute__((aligned(16), used)) unsigned char hx_kstack[KSTACK_SIZE];
__attribute__((aligned(16), used)) unsigned char hx_ustack[USTACK_SIZE];
/* The two stack tops are referenced by boot.S as absolute symbols. */
__asm__(".globl hx_kstack_top\n.set hx_kstack_top, hx_kstack + 16384\n"
	".globl hx_ustack_top\n.set hx_ustack_top, hx_ustack + 65536\n");

/* Per-CPU area: the monitor points MSR_GS_BASE here (Linux objects read the stack canary at %gs:0x28).
 * Weak, so a driver environment can provide a larger one under the same name. */
__attribute__((weak, aligned(4096))) unsigned char hx_percpu[4096];

/* GDT (SDM vol. 3 §3.4.5, §7.2.3): null, kernel code64, kernel data, user data, user code64, 16-byte TSS. */
static unsigned long long hx_gdt[7] = {
	0,
	0x00af9b000000ffffULL,	/* 0x08: code, DPL0, L=1 */
	0x00cf93000000ffffULL,	/* 0x10: data, DPL0 */
	0x00cff3000000ffffULL,	/* 0x18: data, DPL3 */
	0x00affb000000ffffULL,	/* 0x20: code, DPL3, L=1 */
	0, 0,			/* 0x28: TSS, filled in at boot */
};

/* 64-bit TSS (SDM §7.7) followed by the I/O permission bitmap: 65536 bits, all zero (every port allowed), and the
 * 0xff terminator byte; the TSS limit covers the terminator. */
struct hx_tss {
	unsigned int reserved0;
	unsigned long long rsp[3];
	unsigned long long reserved1;
	unsigned long long ist[7];
	unsigned long long reserved2;
	unsigned short reserved3;
	unsigned short iomap_base;
	unsigned char iomap[8192];
	unsigned char iomap_end;
} __attribute__((packed, aligned(16)));

static struct hx_tss hx_tss = {
	.iomap_base = __builtin_offsetof(struct hx_tss, iomap),
	.iomap_end = 0xff,
};

struct hx_idt_entry {
	unsigned short off0, sel;
	unsigned char ist, type_attr;
	unsigned short off1;
	unsigned int off2, zero;
};
static struct hx_idt_entry hx_idt[256] __attribute__((aligned(16)));

extern char hx_exc0[], hx_exc1[], hx_exc2[], hx_exc3[], hx_exc4[], hx_exc5[], hx_exc6[], hx_exc7[], hx_exc8[],
	hx_exc9[], hx_exc10[], hx_exc11[], hx_exc12[], hx_exc13[], hx_exc14[], hx_exc15[], hx_exc16[], hx_exc17[],
	hx_exc18[], hx_exc19[], hx_exc20[], hx_exc21[], hx_exc22[], hx_exc23[], hx_exc24[], hx_exc25[], hx_exc26[],
	hx_exc27[], hx_exc28[], hx_exc29[], hx_exc30[], hx_exc31[];
extern char hx_irq0[], hx_irq1[], hx_irq2[], hx_irq3[], hx_irq4[], hx_irq5[], hx_irq6[], hx_irq7[], hx_irq8[],
	hx_irq9[], hx_irq10[], hx_irq11[], hx_irq12[], hx_irq13[], hx_irq14[], hx_irq15[];

static char *const hx_vectors[48] = {
	hx_exc0, hx_exc1, hx_exc2, hx_exc3, hx_exc4, hx_exc5, hx_exc6, hx_exc7, hx_exc8, hx_exc9, hx_exc10,
	hx_exc11, hx_exc12, hx_exc13, hx_exc14, hx_exc15, hx_exc16, hx_exc17, hx_exc18, hx_exc19, hx_exc20,
	hx_exc21, hx_exc22, hx_exc23, hx_exc24, hx_exc25, hx_exc26, hx_exc27, hx_exc28, hx_exc29, hx_exc30,
	hx_exc31, hx_irq0, hx_irq1, hx_irq2, hx_irq3, hx_irq4, hx_irq5, hx_irq6, hx_irq7, hx_irq8, hx_irq9,
	hx_irq10, hx_irq11, hx_irq12, hx_irq13, hx_irq14, hx_irq15,
};

static void set_gate(int vec, char *fn, int dpl)
{
	unsigned long a = (unsigned long)fn;
	hx_idt[vec].off0 = a & 0xffff;
	hx_idt[vec].sel = HX_KERNEL_CS;
	hx_idt[vec].type_attr = 0x8e | (dpl << 5);	/* present, 64-bit interrupt gate (IF cleared on entry) */
	hx_idt[vec].off1 = (a >> 16) & 0xffff;
	hx_idt[vec].off2 = a >> 32;
}

struct __attribute__((packed)) hx_dtr { unsigned short limit; unsigned long base; };

void hx_boot(void)
{
	unsigned long t = (unsigned long)&hx_tss;
	unsigned long lim = sizeof(hx_tss) - 1;
	struct hx_dtr gdtr = { sizeof(hx_gdt) - 1, (unsigned long)hx_gdt };
	struct hx_dtr idtr = { sizeof(hx_idt) - 1, (unsigned long)hx_idt };
	int i;

	hx_tss.rsp[0] = (unsigned long)hx_kstack + KSTACK_SIZE;
	hx_gdt[5] = (lim & 0xffff) | ((t & 0xffffff) << 16) | (0x89ULL << 40) | (((lim >> 16) & 0xf) << 48) |
		    (((t >> 24) & 0xff) << 56);
	hx_gdt[6] = t >> 32;
	__asm__ volatile("lgdt %0" : : "m"(gdtr));
	__asm__ volatile("ltr %w0" : : "r"(HX_TSS_SEL));
	for (i = 0; i < 48; i++)
		set_gate(i, hx_vectors[i], 0);
	__asm__ volatile("lidt %0" : : "m"(idtr));

	/* 8259A: ICW1-ICW4 for both PICs (vectors 0x20/0x28, cascade on IRQ2), then mask all but IRQ0 and IRQ2. */
	hx_outb(0x20, 0x11); hx_outb(0x21, HX_IRQ_VECTOR_BASE); hx_outb(0x21, 0x04); hx_outb(0x21, 0x01);
	hx_outb(0xa0, 0x11); hx_outb(0xa1, HX_IRQ_VECTOR_BASE + 8); hx_outb(0xa1, 0x02); hx_outb(0xa1, 0x01);
	hx_outb(0x21, 0xfa); hx_outb(0xa1, 0xff);
	/* 8254 channel 0, lobyte/hibyte, mode 2 (rate generator) at HX_HZ. */
	hx_outb(0x43, 0x34);
	hx_outb(0x40, (1193182 / HX_HZ) & 0xff);
	hx_outb(0x40, (1193182 / HX_HZ) >> 8);
}

/* CPL3 from here on. */
struct hx_bootinfo *hx_bootinfo;

__attribute__((noreturn)) void hx_user_start(void)
{
	hx_bootinfo = (struct hx_bootinfo *)(HX_KERNEL_BASE + HX_BOOTINFO_GPA);
	if (hx_bootinfo->magic != HX_BOOTINFO_MAGIC)
		hx_panic("boot info missing at GPA %#lx", HX_BOOTINFO_GPA);
	if (hx_bootinfo->version != HX_BOOTINFO_VERSION)   /* the monitor would read delay_ns elsewhere */
		hx_panic("boot info version %llu, this harness expects %d", hx_bootinfo->version, HX_BOOTINFO_VERSION);
	hx_time_init();
	hx_exit(hx_main());
}
