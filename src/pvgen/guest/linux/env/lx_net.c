/* lx_net.c - net_device and sk_buff life cycle, transmit-queue state and netif_rx for real network drivers. */
#include <linux/netdevice.h>
#include <linux/etherdevice.h>
#include <linux/skbuff.h>
#include <linux/if_arp.h>
#include "lx_env.h"

#define LX_MAX_NETDEVS 4

static struct net_device *registered[LX_MAX_NETDEVS];
static int nregistered;

/* ---- net_device ------------------------------------------------------------------------------------------ */

struct net_device *alloc_netdev_mqs(int sizeof_priv, const char *name, unsigned char name_assign_type,
				    void (*setup)(struct net_device *), unsigned int txqs, unsigned int rxqs)
{
	size_t size = ALIGN(sizeof(struct net_device), NETDEV_ALIGN) + sizeof_priv;
	struct net_device *dev;

	if (!txqs || !rxqs)
		return NULL;
	dev = hx_alloc(size, NETDEV_ALIGN);
	dev->_tx = hx_alloc(txqs * sizeof(struct netdev_queue), SMP_CACHE_BYTES);
	for (unsigned int i = 0; i < txqs; i++)
		dev->_tx[i].dev = dev;
	dev->num_tx_queues = dev->real_num_tx_queues = txqs;
	dev->num_rx_queues = dev->real_num_rx_queues = rxqs;
	dev->dev_addr = hx_alloc(MAX_ADDR_LEN, 8);
	INIT_LIST_HEAD(&dev->uc.list);
	INIT_LIST_HEAD(&dev->mc.list);
	INIT_LIST_HEAD(&dev->dev_addrs.list);
	dev->gso_max_size = GSO_LEGACY_MAX_SIZE;
	dev->gso_max_segs = GSO_MAX_SEGS;
	dev->name_assign_type = name_assign_type;
	strscpy(dev->name, name, sizeof(dev->name));
	setup(dev);
	return dev;
}

void free_netdev(struct net_device *dev)
{
	hx_free((void *)dev->dev_addr);
	hx_free(dev->_tx);
	hx_free(dev);
}

/* net/ethernet/eth.c: the Ethernet defaults (no header_ops: the environment builds whole frames). */
void ether_setup(struct net_device *dev)
{
	dev->type = ARPHRD_ETHER;
	dev->hard_header_len = ETH_HLEN;
	dev->min_header_len = ETH_HLEN;
	dev->mtu = ETH_DATA_LEN;
	dev->min_mtu = ETH_MIN_MTU;
	dev->max_mtu = ETH_DATA_LEN;
	dev->addr_len = ETH_ALEN;
	dev->tx_queue_len = 1000   /* DEFAULT_TX_QUEUE_LEN, net/core/dev.c */;
	dev->flags = IFF_BROADCAST | IFF_MULTICAST;
	dev->priv_flags |= IFF_TX_SKB_SHARING;
	eth_broadcast_addr(dev->broadcast);
}

void dev_addr_mod(struct net_device *dev, unsigned int offset, const void *addr, size_t len)
{
	if (offset + len > MAX_ADDR_LEN)
		hx_panic("dev_addr_mod: %u+%zu bytes past MAX_ADDR_LEN", offset, len);
	lx_memcpy((u8 *)dev->dev_addr + offset, addr, len);
}

int eth_mac_addr(struct net_device *dev, void *p)
{
	struct sockaddr *addr = p;

	if (!is_valid_ether_addr(addr->sa_data))
		return -EADDRNOTAVAIL;
	eth_hw_addr_set(dev, addr->sa_data);
	return 0;
}

int eth_validate_addr(struct net_device *dev)
{
	return is_valid_ether_addr(dev->dev_addr) ? 0 : -EADDRNOTAVAIL;
}

int register_netdev(struct net_device *dev)
{
	char *pct = NULL;

	for (int i = 0; i + 1 < IFNAMSIZ && dev->name[i]; i++)
		if (dev->name[i] == '%')
			pct = &dev->name[i];
	if (nregistered == LX_MAX_NETDEVS)
		return -ENFILE;
	if (pct && pct[1] == 'd') {
		char fmt[IFNAMSIZ];

		strscpy(fmt, dev->name, sizeof(fmt));
		lx_snprintf(dev->name, IFNAMSIZ, fmt, nregistered);
	}
	if (dev->netdev_ops->ndo_init) {
		int err = dev->netdev_ops->ndo_init(dev);

		if (err)
			return err;
	}
	dev->ifindex = nregistered + 1;
	dev->reg_state = NETREG_REGISTERED;
	set_bit(__LINK_STATE_PRESENT, &dev->state);
	registered[nregistered++] = dev;
	return 0;
}

void unregister_netdev(struct net_device *dev)
{
	int i;

	if (netif_running(dev))
		lx_netdev_close(dev);
	for (i = 0; i < nregistered && registered[i] != dev; i++)
		;
	if (i == nregistered)
		return;
	for (; i + 1 < nregistered; i++)
		registered[i] = registered[i + 1];
	nregistered--;
	dev->reg_state = NETREG_UNREGISTERED;
}

struct net_device *lx_netdev_registered(int n)
{
	return n >= 0 && n < nregistered ? registered[n] : NULL;
}

/* net/core/dev.c __dev_open/__dev_close, without notifiers and qdiscs. */
int lx_netdev_open(struct net_device *dev)
{
	int err;

	if (dev->flags & IFF_UP)
		return 0;
	set_bit(__LINK_STATE_START, &dev->state);
	err = dev->netdev_ops->ndo_open ? dev->netdev_ops->ndo_open(dev) : 0;
	if (err) {
		clear_bit(__LINK_STATE_START, &dev->state);
		return err;
	}
	dev->flags |= IFF_UP;
	if (dev->netdev_ops->ndo_set_rx_mode)
		dev->netdev_ops->ndo_set_rx_mode(dev);
	return 0;
}

int lx_netdev_close(struct net_device *dev)
{
	if (!(dev->flags & IFF_UP))
		return 0;
	clear_bit(__LINK_STATE_START, &dev->state);
	if (dev->netdev_ops->ndo_stop)
		dev->netdev_ops->ndo_stop(dev);
	dev->flags &= ~IFF_UP;
	return 0;
}

void netif_tx_wake_queue(struct netdev_queue *dev_queue)
{
	clear_bit(__QUEUE_STATE_DRV_XOFF, &dev_queue->state);
}

void netif_device_detach(struct net_device *dev)
{
	if (test_and_clear_bit(__LINK_STATE_PRESENT, &dev->state) && netif_running(dev))
		netif_tx_stop_all_queues(dev);
}

void netif_device_attach(struct net_device *dev)
{
	if (!test_and_set_bit(__LINK_STATE_PRESENT, &dev->state) && netif_running(dev))
		netif_tx_wake_all_queues(dev);
}

unsigned long dev_trans_start(struct net_device *dev)
{
	unsigned long res = READ_ONCE(netdev_get_tx_queue(dev, 0)->trans_start);

	for (unsigned int i = 1; i < dev->num_tx_queues; i++) {
		unsigned long v = READ_ONCE(netdev_get_tx_queue(dev, i)->trans_start);

		if (v && time_after(v, res))
			res = v;
	}
	return res;
}

/* ---- sk_buff ------------------------------------------------------------------------------------------------
 * Buffers of the common size are recycled through a free list, so a long benchmark does not exhaust the
 * harness's bump allocator. */

#define LX_SKB_DATA SKB_DATA_ALIGN(NET_SKB_PAD + 2 + ETH_FRAME_LEN + ETH_FCS_LEN + 64)
#define LX_SKB_ALLOC (LX_SKB_DATA + SKB_DATA_ALIGN(sizeof(struct skb_shared_info)))

static struct sk_buff *skb_pool;

struct sk_buff *__netdev_alloc_skb(struct net_device *dev, unsigned int len, gfp_t gfp_mask)
{
	unsigned int size = SKB_DATA_ALIGN(len + NET_SKB_PAD);
	struct sk_buff *skb;
	u8 *data;

	if (size <= LX_SKB_DATA && skb_pool) {
		skb = skb_pool;
		skb_pool = skb->next;
		data = skb->head;
		lx_memset(skb, 0, sizeof(*skb));
		size = LX_SKB_DATA;
	} else {
		skb = hx_alloc(sizeof(*skb), SMP_CACHE_BYTES);
		if (size <= LX_SKB_DATA)
			size = LX_SKB_DATA;
		data = hx_alloc(size + SKB_DATA_ALIGN(sizeof(struct skb_shared_info)), SMP_CACHE_BYTES);
		if (!skb || !data)
			return NULL;
	}
	skb->head = data;
	skb->data = data;
	skb_reset_tail_pointer(skb);
	skb_set_end_offset(skb, size);
	skb->truesize = SKB_TRUESIZE(size);
	refcount_set(&skb->users, 1);
	skb->mac_header = (typeof(skb->mac_header))~0U;
	skb->transport_header = (typeof(skb->transport_header))~0U;
	lx_memset(skb_shinfo(skb), 0, sizeof(struct skb_shared_info));
	atomic_set(&skb_shinfo(skb)->dataref, 1);
	skb_reserve(skb, NET_SKB_PAD);
	skb->dev = dev;
	return skb;
}

static void lx_free_skb(struct sk_buff *skb)
{
	if (!skb || !refcount_dec_and_test(&skb->users))
		return;
	if (skb_end_offset(skb) == LX_SKB_DATA) {
		skb->next = skb_pool;
		skb_pool = skb;
		return;
	}
	hx_free(skb->head);
	hx_free(skb);
}

/* Fill the recycling pool with n buffers of the common size, as a running kernel's slab would be: the first touch
 * of a fresh guest page is a KVM page-fault exit (pf_taken) that no driver I/O causes. */
void lx_skb_prewarm(struct net_device *dev, unsigned long n)
{
	struct sk_buff *list = NULL;

	while (n--) {
		struct sk_buff *skb = __netdev_alloc_skb(dev, ETH_FRAME_LEN + ETH_FCS_LEN, GFP_KERNEL);

		if (!skb)
			break;
		skb->next = list;
		list = skb;
	}
	while (list) {
		struct sk_buff *skb = list;

		list = skb->next;
		lx_free_skb(skb);
	}
}

void __dev_kfree_skb_any(struct sk_buff *skb, enum skb_free_reason reason) { lx_free_skb(skb); }
void __dev_kfree_skb_irq(struct sk_buff *skb, enum skb_free_reason reason) { lx_free_skb(skb); }
void kfree_skb_reason(struct sk_buff *skb, enum skb_drop_reason reason) { lx_free_skb(skb); }
void consume_skb(struct sk_buff *skb) { lx_free_skb(skb); }

void *skb_put(struct sk_buff *skb, unsigned int len)
{
	void *tmp = skb_tail_pointer(skb);

	skb->tail += len;
	skb->len += len;
	if (unlikely(skb->tail > skb->end))
		hx_panic("skb_put: over by %u bytes (len %u)", skb->tail - skb->end, len);
	return tmp;
}

void skb_clone_tx_timestamp(struct sk_buff *skb) { }
bool skb_defer_rx_timestamp(struct sk_buff *skb) { return false; }
void skb_tstamp_tx(struct sk_buff *orig_skb, struct skb_shared_hwtstamps *hwtstamps) { }

/* net/ethernet/eth.c eth_type_trans, without DSA tags. */
__be16 eth_type_trans(struct sk_buff *skb, struct net_device *dev)
{
	const struct ethhdr *eth;

	skb->dev = dev;
	skb_reset_mac_header(skb);
	eth = (struct ethhdr *)skb->data;
	skb_pull_inline(skb, ETH_HLEN);
	if (unlikely(!ether_addr_equal_64bits(eth->h_dest, dev->dev_addr))) {
		if (unlikely(is_multicast_ether_addr_64bits(eth->h_dest)))
			skb->pkt_type = ether_addr_equal_64bits(eth->h_dest, dev->broadcast) ?
					PACKET_BROADCAST : PACKET_MULTICAST;
		else
			skb->pkt_type = PACKET_OTHERHOST;
	}
	if (likely(eth_proto_is_802_3(eth->h_proto)))
		return eth->h_proto;
	if (unlikely(skb->len >= 2 && *(unsigned short *)skb->data == 0xFFFF))
		return htons(ETH_P_802_3);
	return htons(ETH_P_802_2);
}

/* netif_rx: received frames queue up for the workload (there is no protocol stack in the guest). */
static struct sk_buff *rx_head, *rx_tail;
static unsigned long rx_count;

int netif_rx(struct sk_buff *skb)
{
	skb->next = NULL;
	if (rx_tail)
		rx_tail->next = skb;
	else
		rx_head = skb;
	rx_tail = skb;
	rx_count++;
	return NET_RX_SUCCESS;
}

struct sk_buff *lx_rx_dequeue(void)
{
	unsigned long flags = hx_irq_save();
	struct sk_buff *skb = rx_head;

	if (skb) {
		rx_head = skb->next;
		if (!rx_head)
			rx_tail = NULL;
		skb->next = NULL;
		rx_count--;
	}
	hx_irq_restore(flags);
	return skb;
}

void netif_tx_stop_all_queues(struct net_device *dev)
{
	for (unsigned int i = 0; i < dev->num_tx_queues; i++)
		netif_tx_stop_queue(netdev_get_tx_queue(dev, i));
}
