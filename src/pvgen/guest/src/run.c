/* run.c - run control (exit, panic, cmdline), measurement marks, time (TSC), memory (bump allocator), libc. */
#include "hx_internal.h"

const char *hx_cmdline(void) { return (const char *)hx_phys_to_virt(hx_bootinfo->cmdline_gpa); }

/* The batching runtime's flush, when it is linked: marks and exit first push queued I/O to the devices, so a
 * phase between two marks counts its own flushes and nothing queued is lost at exit. */
extern void pvio_flush(void) __attribute__((weak));

static void flush_runtime(void)
{
	void (*volatile flush)(void) = pvio_flush;
	if (flush)
		flush();
}

void hx_exit(int code)
{
	flush_runtime();
	hx_outl(HX_PORT_EXIT, (unsigned int)code);
	for (;;)
		__asm__ volatile("pause");
}

void hx_panic(const char *fmt, ...)
{
	char buf[512];
	hx_va_list ap;
	__builtin_va_start(ap, fmt);
	hx_vsnprintf(buf, sizeof(buf), fmt, ap);
	__builtin_va_end(ap);
	hx_puts("PANIC: ");
	hx_puts(buf);
	hx_putc('\n');
	hx_outb(HX_PORT_PANIC, 1);
	hx_exit(255);
}

/* Nanoseconds hx_udelay has busy-waited since boot (measured, not requested); the depth keeps a delay in an
 * interrupt handler that ran inside another delay from being counted twice. */
static volatile hx_u64 delay_ns;
static volatile unsigned int delay_depth;

void hx_mark(int id)
{
	flush_runtime();
	/* a plain store before the outb: the monitor reads it at the mark's exit, so a benchmark phase knows how
	 * much of its time the driver spent in its own delays without one more exit */
	hx_bootinfo->delay_ns = delay_ns;
	hx_outb(HX_PORT_MARK, (unsigned char)id);
}

/* Time: ns = tsc * (1e6 / tsc_khz), as a 32.32 fixed-point multiplier computed once. */
static hx_u64 ns_mult;

static inline hx_u64 rdtsc(void)
{
	unsigned int lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((hx_u64)hi << 32) | lo;
}

void hx_time_init(void)
{
	hx_u64 khz = hx_bootinfo->tsc_khz ? hx_bootinfo->tsc_khz : 1000000;
	ns_mult = (1000000ULL << 32) / khz;
}

hx_u64 hx_nsec(void) { return (hx_u64)(((unsigned __int128)rdtsc() * ns_mult) >> 32); }

void hx_ndelay(unsigned long nsec)
{
	delay_depth++;
	hx_u64 start = hx_nsec(), end = start + nsec, now;
	while ((now = hx_nsec()) < end)
		__asm__ volatile("pause");
	if (delay_depth == 1)		/* what was waited, overshoot and interrupts included */
		delay_ns += now - start;
	delay_depth--;
}

void hx_udelay(unsigned long usec) { hx_ndelay(usec * 1000); }

/* Memory: power-of-two size classes over [heap_start, ram_size). A block is a 16-byte header (magic, class)
 * right before the returned pointer; freed blocks go to their class's free list and are reused by a request of
 * the same class whose alignment they satisfy; everything else comes from a bump pointer. */
#define HX_HDR_MAGIC 0x48584d42u
#define HX_CLASSES 40
struct hx_block_hdr { unsigned int magic, cls; unsigned long reserved; };
struct hx_free_block { struct hx_free_block *next; };
static hx_u64 heap_next;
static struct hx_free_block *free_lists[HX_CLASSES];

static void zero(char *p, hx_size_t n)
{
	for (hx_size_t i = 0; i < n; i++)
		p[i] = 0;
}

void *hx_alloc(hx_size_t size, hx_size_t align)
{
	unsigned int cls = 4;
	char *p = 0;

	if (align < 16)
		align = 16;
	if (align & (align - 1))
		return 0;
	while (cls < HX_CLASSES && (1UL << cls) < size)
		cls++;
	if (cls >= HX_CLASSES)
		return 0;
	unsigned long f = hx_irq_save();
	struct hx_free_block **pp = &free_lists[cls];
	if (*pp && ((unsigned long)*pp & (align - 1)) == 0) {
		p = (char *)*pp;
		*pp = (*pp)->next;
	} else {
		if (!heap_next)
			heap_next = hx_bootinfo->heap_start;
		hx_u64 pa = (heap_next + sizeof(struct hx_block_hdr) + align - 1) & ~(hx_u64)(align - 1);
		if (pa + (1UL << cls) <= hx_bootinfo->ram_size && pa + (1UL << cls) > pa) {
			heap_next = pa + (1UL << cls);
			p = hx_phys_to_virt(pa);
			struct hx_block_hdr *h = (struct hx_block_hdr *)p - 1;
			h->magic = HX_HDR_MAGIC;
			h->cls = cls;
		}
	}
	hx_irq_restore(f);
	if (p)
		zero(p, size);
	return p;
}

void hx_free(void *ptr)
{
	if (!ptr)
		return;
	struct hx_block_hdr *h = (struct hx_block_hdr *)ptr - 1;
	if (h->magic != HX_HDR_MAGIC || h->cls >= HX_CLASSES)
		hx_panic("hx_free(%p): not a block from hx_alloc", ptr);
	unsigned long f = hx_irq_save();
	struct hx_free_block *b = ptr;
	b->next = free_lists[h->cls];
	free_lists[h->cls] = b;
	hx_irq_restore(f);
}

hx_u64 hx_virt_to_phys(const void *p)
{
	unsigned long v = (unsigned long)p;
	return v >= HX_KERNEL_BASE ? v - HX_KERNEL_BASE : v;
}

void *hx_phys_to_virt(hx_u64 pa) { return pa < 0x80000000UL ? (void *)(pa + HX_KERNEL_BASE) : (void *)pa; }

/* libc: weak, so a driver environment may bring its own. */
__attribute__((weak)) void *memcpy(void *d, const void *s, hx_size_t n)
{
	char *dd = d;
	const char *ss = s;
	while (n--)
		*dd++ = *ss++;
	return d;
}

__attribute__((weak)) void *memmove(void *d, const void *s, hx_size_t n)
{
	char *dd = d;
	const char *ss = s;
	if (dd < ss)
		while (n--)
			*dd++ = *ss++;
	else
		while (n--)
			dd[n] = ss[n];
	return d;
}

__attribute__((weak)) void *memset(void *d, int c, hx_size_t n)
{
	char *dd = d;
	while (n--)
		*dd++ = (char)c;
	return d;
}

__attribute__((weak)) int memcmp(const void *a, const void *b, hx_size_t n)
{
	const unsigned char *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

__attribute__((weak)) hx_size_t strlen(const char *s)
{
	hx_size_t n = 0;
	while (s[n])
		n++;
	return n;
}

__attribute__((weak)) int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (unsigned char)*a - (unsigned char)*b;
}
