/* harness.h - the CPL3 guest harness API: what workloads and the Linux driver environment may call. */
#ifndef PVGEN_HARNESS_H
#define PVGEN_HARNESS_H

/* Freestanding x86-64; all code and data linked in the top 2 GiB (-mcmodel=kernel), run at CPL3.
 * The monitor loads the image at GPA 0x100000 (VMA 0xffffffff80100000), maps
 * 0xffffffff80000000+x -> GPA x and identity-maps guest RAM (user pages), and starts the boot stub at CPL0,
 * which sets up GDT/IDT/TSS (I/O bitmap: all ports allowed), the PIC, and drops to CPL3 to call hx_main(). */

typedef unsigned long hx_size_t;
typedef unsigned long long hx_u64;
typedef __builtin_va_list hx_va_list;

#define HX_KERNEL_BASE 0xffffffff80000000UL
#define HX_HZ 250                       /* timer interrupt rate (PIT channel 0) */

/* Provided by the workload. Its return value is the guest's exit code. */
int hx_main(void);

/* Console (16550 UART on 0x3f8). hx_vsnprintf knows %d %i %u %x %X %p %s %c %% with l/ll/z/h/hh, width,
 * '0' and '-' flags and precision for %s. */
void hx_putc(int c);
void hx_puts(const char *s);
int hx_vsnprintf(char *buf, hx_size_t n, const char *fmt, hx_va_list ap);
int hx_snprintf(char *buf, hx_size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int hx_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Time. hx_jiffies counts timer interrupts since boot; hx_nsec is monotonic (TSC, calibrated by the monitor). */
extern volatile hx_u64 hx_jiffies;
hx_u64 hx_nsec(void);
void hx_udelay(unsigned long usec);   /* busy-waits */
void hx_ndelay(unsigned long nsec);   /* busy-waits, to the nanosecond (the TSC's resolution) */

/* Interrupts are delivered to CPL3 as upcalls: the CPL0 entry only acknowledges the PIC and redirects the
 * interrupted CPL3 context to the dispatcher, which calls the registered handler unless interrupts are
 * soft-disabled (then the IRQ stays pending until hx_irq_restore/hx_irq_enable). Handlers run with interrupts
 * soft-disabled. IRQ numbers are ISA/PIC lines 0-15. Timer (IRQ 0) also calls pvio_tick() when it is linked. */
typedef void (*hx_irq_fn)(int irq, void *arg);
int hx_irq_register(int irq, hx_irq_fn fn, void *arg);   /* 0, or -1 if the line is taken/out of range */
void hx_irq_unregister(int irq);
unsigned long hx_irq_save(void);             /* soft-disable; returns the previous state */
void hx_irq_restore(unsigned long flags);
void hx_irq_enable(void);
void hx_irq_disable(void);
int hx_irqs_disabled(void);
void hx_idle(void);                          /* wait for the next interrupt (sti; hlt at CPL0), then dispatch */
void hx_before_idle(void) __attribute__((weak));  /* optional: runs before hx_idle waits (the pvgen runtime's flush) */

/* Memory: a bump allocator over guest RAM after the image; blocks are zeroed. */
void *hx_alloc(hx_size_t size, hx_size_t align);
void hx_free(void *p);
hx_u64 hx_virt_to_phys(const void *p);
void *hx_phys_to_virt(hx_u64 pa);

/* Run control. hx_cmdline() returns the parameter string the monitor passed (pvgen run --arg ...). */
const char *hx_cmdline(void);
__attribute__((noreturn)) void hx_exit(int code);
__attribute__((noreturn, format(printf, 1, 2))) void hx_panic(const char *fmt, ...);

/* Measurement marks: one port write that the monitor records with a snapshot of KVM's statistics, so a benchmark
 * counts exits for exactly the phase between two marks. id is small (0-255). */
void hx_mark(int id);

#endif
