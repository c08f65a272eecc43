/* micro.c - the micro benchmark: N `outb` to a posted port, then one read of a strict port (issue 6 §5).
 * Command line: outs=N port=P strict=Q mode=micro|spin. The strict read returns the sink's byte count (mod 256),
 * so the guest checks that every posted write reached the device before the read. */
#include "harness.h"
#include "hxparam.h"

static inline void outb(unsigned char v, unsigned short port) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline unsigned char inb(unsigned short port)
{
	unsigned char v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* The batching runtime's entry point, present only in the generated variant (pvgen runtime, issue 3). */
extern int pvio_init(void *mem, unsigned long size) __attribute__((weak));
#define PVIO_AREA_BYTES 0x55000UL   /* protocol.AREA_SIZE (tests/kvm/test_vmm_micro.py checks it); pvio_init refuses less */

int hx_main(void)
{
	int (*volatile init)(void *, unsigned long) = pvio_init;
	unsigned long n = hx_param("outs", 1000);
	unsigned short port = hx_param("port", 0x510), strict = hx_param("strict", 0x511);
	unsigned long i;

	if (hx_param("spin", 0))		/* round-trip measurement: exit forever */
		for (;;)
			outb(0, port);
	if (init) {
		int rc = init(hx_alloc(PVIO_AREA_BYTES, 4096), PVIO_AREA_BYTES);
		hx_printf("pvio_init=%d\n", rc);
	}
	hx_mark(1);
	hx_u64 t0 = hx_nsec();
	for (i = 0; i < n; i++)
		outb((unsigned char)i, port);
	unsigned char got = inb(strict);
	hx_u64 t1 = hx_nsec();
	hx_mark(2);
	hx_printf("PVGEN-MICRO outs=%lu strict_read=%u expected=%lu guest_ns=%llu\n", n, got, n & 0xff, t1 - t0);
	return got == (n & 0xff) ? 0 : 1;
}
