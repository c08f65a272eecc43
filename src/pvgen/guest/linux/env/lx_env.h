/* lx_env.h - internal interface between the files of the Linux driver environment (compiled by Kbuild). */
#ifndef PVGEN_LX_ENV_H
#define PVGEN_LX_ENV_H

#include <linux/types.h>
#include <linux/stdarg.h>
#include "harness.h"

/* lx_printf.c: the kernel's printf dialect (%pM, %#x, %*d, ...), which hx_vsnprintf does not know. */
int lx_vsnprintf(char *buf, size_t n, const char *fmt, va_list ap);
int lx_snprintf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Print one kernel message: the KERN_<level> prefix is stripped, debug messages are dropped unless verbose. */
void lx_vprintk(const char *prefix, const char *fmt, va_list ap);
extern int lx_verbose;

/* lx_string.c: freestanding string and memory helpers (the env is not linked with any libc). */
void *lx_memcpy(void *d, const void *s, size_t n);
void *lx_memset(void *d, int c, size_t n);
int lx_memcmp(const void *a, const void *b, size_t n);
size_t lx_strlen(const char *s);

/* lx_irq.c: interrupt lines as the drivers see them (request_irq, disable_irq depth, replay of pending lines). */
unsigned long lx_irq_count(int irq);   /* handler runs on a line (replays included) */

/* lx_pciconf.c: configuration mechanism #1 (0xCF8/0xCFC), built with the drivers' compiler. */
u32 lx_pci_read32(unsigned bus, unsigned devfn, unsigned reg);
void lx_pci_write32(unsigned bus, unsigned devfn, unsigned reg, u32 val);
u16 lx_pci_read16(unsigned bus, unsigned devfn, unsigned reg);
void lx_pci_write16(unsigned bus, unsigned devfn, unsigned reg, u16 val);
/* lx_pci.c: enumeration and probing. */
struct pci_dev;
/* The n-th device bound to a driver by __pci_register_driver (NULL past the end). */
struct pci_dev *lx_pci_bound(int n);

/* lx_net.c: received frames handed to netif_rx wait here for the workload. */
struct sk_buff;
struct sk_buff *lx_rx_dequeue(void);
void lx_skb_prewarm(struct net_device *dev, unsigned long n);
struct net_device *lx_netdev_registered(int n);
int lx_netdev_open(struct net_device *dev);
int lx_netdev_close(struct net_device *dev);

/* lx_percpu.c: per-CPU area and memory map for inline kernel code (disk set). */
void lx_percpu_init(void);
struct page;
struct page *lx_page_map(void *buf, unsigned long npages);

#endif
