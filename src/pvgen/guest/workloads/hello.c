/* hello.c - harness smoke test: console printf, cmdline, timer upcalls and idle, a mark, an exit code. */
#include "harness.h"
static volatile int ticks;
static void on_timer(int irq, void *arg) { ticks++; }
int hx_main(void) {
  hx_printf("hello from CPL3: cmdline='%s' %d %x %5s|%-5d|%05u %p\n", hx_cmdline(), -42, 0xbeef, "ab", 7, 42u, (void*)hx_main);
  hx_irq_register(0, on_timer, 0);
  hx_u64 t0 = hx_nsec();
  while (ticks < 25) hx_idle();
  hx_printf("25 ticks, jiffies=%llu, %llu us\n", hx_jiffies, (hx_nsec() - t0) / 1000);
  hx_mark(1);
  return 3;
}
