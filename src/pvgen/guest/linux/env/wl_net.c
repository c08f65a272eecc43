/* wl_net.c - the `net` workload: probe ne2k-pci over PCI, open it, transmit N frames, receive N injected frames. */
#include <linux/netdevice.h>
#include <linux/etherdevice.h>
#include <linux/skbuff.h>
#include "lx_env.h"
#include "workload.h"   /* the shared workload contract (guest/pvideal/workload.h, bench/workload.py) */

/* The driver objects' module entry points, renamed by build.py (objcopy --redefine-sym). */
int lx_8390_init_module(void);
void lx_8390_cleanup_module(void);
int lx_ne2k_pci_init_module(void);
void lx_ne2k_pci_cleanup_module(void);

static unsigned long tx_done(struct net_device *dev)
{
	return READ_ONCE(dev->stats.tx_packets) + READ_ONCE(dev->stats.tx_errors);
}

static unsigned long timeouts, idles[2];

/* hx_idle, counted per phase (0 = transmit, 1 = receive): each one waits for an interrupt. */
static void idle(int phase)
{
	idles[phase]++;
	hx_idle();
}

/* Wait (hx_idle) while the driver keeps its queue stopped; after a second, do what the kernel's dev_watchdog does
 * (ndo_tx_timeout). Gives up, returning false, after 8 such timeouts. */
static bool wait_queue(struct net_device *dev)
{
	hx_u64 start = hx_jiffies;

	while (netif_queue_stopped(dev)) {
		if (hx_jiffies - start > HX_HZ) {
			if (timeouts++ > 8)
				return false;
			dev->netdev_ops->ndo_tx_timeout(dev, 0);
			start = hx_jiffies;
		}
		idle(0);
	}
	return true;
}

static int transmit(struct net_device *dev, unsigned long n, unsigned long seed, unsigned long *bytes)
{
	for (unsigned long i = 0; i < n; i++) {
		static u8 frame[WL_FRAME_MAX];
		unsigned int len = wl_frame(seed, WL_TAG_TX, i, frame);
		struct sk_buff *skb = netdev_alloc_skb(dev, len);
		netdev_tx_t r;

		if (!skb)
			hx_panic("lxnet: out of memory for frame %lu", i);
		lx_memcpy(skb_put(skb, len), frame, len);
		do {
			if (!wait_queue(dev)) {
				hx_printf("lxnet: transmit queue stuck at frame %lu\n", i);
				return -1;
			}
			r = dev->netdev_ops->ndo_start_xmit(skb, dev);
		} while (r == NETDEV_TX_BUSY);
		*bytes += len;
	}
	for (hx_u64 start = hx_jiffies; tx_done(dev) < n;) {
		if (hx_jiffies - start > 2 * HX_HZ) {
			hx_printf("lxnet: %lu of %lu transmissions completed\n", tx_done(dev), n);
			return -1;
		}
		idle(0);
	}
	return 0;
}

/* A received frame is the mac header plus skb->len bytes after eth_type_trans; an FCS the NIC kept is allowed
 * (and not part of the CRC chain the host checks). */
static unsigned long rx_frames, rx_bytes, errors;
static u32 rx_crc;

static void rx_check(struct sk_buff *skb, unsigned long seed, unsigned long i)
{
	static u8 want[WL_FRAME_MAX];
	unsigned int len = wl_frame(seed, WL_TAG_RX, i, want);
	unsigned int got = skb->len + ETH_HLEN;

	if (got == len + ETH_FCS_LEN)
		got = len;
	rx_frames++;
	rx_bytes += got;
	rx_crc = wl_frame_crc(rx_crc, skb_mac_header(skb), got);
	if (got != len) {
		hx_printf("lxnet: rx frame %lu: %u bytes, expected %u\n", i, got, len);
		errors++;
	} else if (lx_memcmp(skb_mac_header(skb), want, len)) {
		hx_printf("lxnet: rx frame %lu: contents differ\n", i);
		errors++;
	}
}

static void receive(unsigned long n, unsigned long seed)
{
	hx_u64 last = hx_jiffies;
	unsigned long i = 0;

	while (i < n) {
		struct sk_buff *skb = lx_rx_dequeue();

		if (!skb) {
			if (hx_jiffies - last > 5 * HX_HZ) {
				hx_printf("lxnet: receive stalled after %lu of %lu frames\n", i, n);
				errors++;
				return;
			}
			idle(1);
			continue;
		}
		last = hx_jiffies;
		rx_check(skb, seed, i++);
		consume_skb(skb);
	}
}

int hx_main(void)
{
	const char *cmd = hx_cmdline();
	unsigned long ops = wl_param(cmd, "ops", 64), rx = wl_param(cmd, "rx", ops), seed = wl_param(cmd, "seed", 1);
	unsigned long tx_bytes = 0;
	struct net_device *dev;
	int err, tx_err = 0;

	lx_verbose = wl_param(cmd, "verbose", 0);
	hx_printf("lxnet: ops=%lu rx=%lu seed=%lu\n", ops, rx, seed);

	/* the probe phase (one operation): the modules' inits, i.e. the PCI scan of bus 0 (config mechanism #1) and
	 * ne2k_pci_init_one (BAR sizing, pci_enable_device, card reset, station PROM, register_netdev) */
	hx_mark(WL_MARK_PROBE_START);
	err = lx_8390_init_module();
	if (!err)
		err = lx_ne2k_pci_init_module();
	hx_mark(WL_MARK_PROBE_END);
	dev = lx_netdev_registered(0);
	if (err || !dev) {
		hx_printf("lxnet: FAIL: ne2k-pci probe found no device (init %d)\n", err);
		return 2;
	}
	err = lx_netdev_open(dev);
	if (err) {
		hx_printf("lxnet: FAIL: open %s: %d\n", dev->name, err);
		return 2;
	}
	{
		char mac[24];

		lx_snprintf(mac, sizeof(mac), "%pM", dev->dev_addr);
		hx_printf("lxnet: %s up, irq %d, io 0x%lx, mac %s\n", dev->name, dev->irq, dev->base_addr, mac);
	}

	/* The receive phase holds every injected frame in the backlog at once (the pacer refills the ring from the
	 * driver's interrupt handler, ahead of this loop), so warm that many buffers before measuring: otherwise each
	 * received frame also pays ~0.6 page-fault exits for first-touched guest memory, in every variant alike. */
	lx_skb_prewarm(dev, rx + 8);

	hx_mark(WL_MARK_TX_START);
	if (ops)
		tx_err = transmit(dev, ops, seed, &tx_bytes);
	hx_mark(WL_MARK_TX_END);

	hx_mark(WL_MARK_RX_START);
	if (rx && !tx_err)
		receive(rx, seed);
	hx_mark(WL_MARK_RX_END);

	errors += tx_err ? 1 : 0;
	hx_printf("PVGEN-RESULT tx=%lu tx_bytes=%lu rx=%lu rx_bytes=%lu rx_crc=0x%08x errors=%lu dev_errors=%lu "
		  "timeouts=%lu idle_tx=%lu idle_rx=%lu irqs=%lu\n", tx_done(dev), tx_bytes, rx_frames, rx_bytes, rx_crc,
		  errors, (unsigned long)(dev->stats.tx_errors + dev->stats.rx_errors), timeouts, idles[0], idles[1],
		  lx_irq_count(dev->irq));
	lx_netdev_close(dev);
	lx_ne2k_pci_cleanup_module();
	lx_8390_cleanup_module();
	hx_printf("lxnet: %s\n", errors || rx_frames != rx ? "FAIL" : "PASS");
	return errors || rx_frames != rx ? 1 : 0;
}
