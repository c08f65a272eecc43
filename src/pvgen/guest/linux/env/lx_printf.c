/* lx_printf.c - printk and friends: the kernel's printf dialect rendered to the harness console. */
#include <linux/kern_levels.h>
#include <linux/netdevice.h>
#include <linux/device.h>
#include <linux/dynamic_debug.h>
#include "lx_env.h"

int lx_verbose;

struct out {
	char *buf;
	size_t n, len;
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->n)
		o->buf[o->len] = c;
	o->len++;
}

static void put_num(struct out *o, unsigned long long v, int base, bool neg, bool upper, int width, int prec,
		    bool left, bool zero, bool alt, char sign)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int nd = 0, pad, i;
	const char *pre = "";
	bool is_zero = v == 0;

	do {
		tmp[nd++] = digits[v % base];
		v /= base;
	} while (v);
	if (prec >= 0 && zero)
		zero = false;
	if (alt && base == 16 && !is_zero)   /* C: "%#x" of 0 is "0" */
		pre = upper ? "0X" : "0x";
	else if (alt && base == 8 && tmp[nd - 1] != '0')
		pre = "0";
	pad = width - (nd > prec ? nd : prec) - (int)lx_strlen(pre) - (neg || sign ? 1 : 0);
	if (!left && !zero)
		for (; pad > 0; pad--)
			put(o, ' ');
	if (neg)
		put(o, '-');
	else if (sign)
		put(o, sign);
	for (; *pre; pre++)
		put(o, *pre);
	if (!left && zero)
		for (; pad > 0; pad--)
			put(o, '0');
	for (i = nd; i < prec; i++)
		put(o, '0');
	while (nd)
		put(o, tmp[--nd]);
	for (; pad > 0; pad--)
		put(o, ' ');
}

/* %p extensions used by the drivers: %pM (MAC, colons), %pm (no colons); anything else prints the address. */
static const char *put_pointer(struct out *o, const char *fmt, const void *p)
{
	const u8 *a = p;
	int i;

	if (*fmt == 'M' || *fmt == 'm') {
		for (i = 0; i < 6; i++) {
			if (i && *fmt == 'M')
				put(o, ':');
			put_num(o, a[i], 16, false, false, 2, -1, false, true, false, 0);
		}
		return fmt + 1;
	}
	put_num(o, (unsigned long)p, 16, false, false, 16, -1, false, true, false, 0);
	while (*fmt >= 'A' && *fmt <= 'z' && ((*fmt >= 'A' && *fmt <= 'Z') || (*fmt >= 'a' && *fmt <= 'z')))
		fmt++;
	return fmt;
}

int lx_vsnprintf(char *buf, size_t n, const char *fmt, va_list ap)
{
	struct out o = { buf, n, 0 };

	for (; *fmt; fmt++) {
		bool left = false, zero = false, alt = false, upper = false;
		char sign = 0;
		int width = -1, prec = -1, lng = 0, base = 10;
		unsigned long long v;
		const char *s;

		if (*fmt != '%') {
			put(&o, *fmt);
			continue;
		}
		for (fmt++;; fmt++) {
			if (*fmt == '-') left = true;
			else if (*fmt == '0') zero = true;
			else if (*fmt == '#') alt = true;
			else if (*fmt == '+') sign = '+';
			else if (*fmt == ' ') { if (!sign) sign = ' '; }
			else break;
		}
		if (*fmt == '*') {
			width = va_arg(ap, int);
			if (width < 0) { left = true; width = -width; }
			fmt++;
		} else {
			for (width = 0; *fmt >= '0' && *fmt <= '9'; fmt++)
				width = width * 10 + (*fmt - '0');
		}
		if (*fmt == '.') {
			fmt++;
			if (*fmt == '*') { prec = va_arg(ap, int); fmt++; }
			else for (prec = 0; *fmt >= '0' && *fmt <= '9'; fmt++)
				prec = prec * 10 + (*fmt - '0');
		}
		for (;; fmt++) {
			if (*fmt == 'l') lng++;
			else if (*fmt == 'z' || *fmt == 't') lng = 1;
			else if (*fmt == 'h') lng = lng > 0 ? lng : lng - 1;
			else break;
		}
		switch (*fmt) {
		case 'c':
			for (; !left && width > 1; width--) put(&o, ' ');
			put(&o, (char)va_arg(ap, int));
			for (; left && width > 1; width--) put(&o, ' ');
			continue;
		case 's': {
			int len;

			s = va_arg(ap, const char *);
			if (!s) s = "(null)";
			len = prec >= 0 ? (int)strnlen(s, prec) : (int)lx_strlen(s);
			for (; !left && width > len; width--) put(&o, ' ');
			for (int i = 0; i < len; i++) put(&o, s[i]);
			for (; left && width > len; width--) put(&o, ' ');
			continue;
		}
		case 'p':
			fmt = put_pointer(&o, fmt + 1, va_arg(ap, const void *)) - 1;
			continue;
		case '%':
			put(&o, '%');
			continue;
		case 'd': case 'i': {
			long long sv = lng >= 2 ? va_arg(ap, long long) : lng == 1 ? va_arg(ap, long) : va_arg(ap, int);

			if (lng == -1) sv = (short)sv;
			if (lng <= -2) sv = (signed char)sv;
			put_num(&o, sv < 0 ? -(unsigned long long)sv : sv, 10, sv < 0, false, width, prec, left, zero,
				false, sign);
			continue;
		}
		case 'X': upper = true; fallthrough;
		case 'x': base = 16; break;
		case 'o': base = 8; break;
		case 'u': break;
		default:
			put(&o, '%');
			if (*fmt) put(&o, *fmt); else fmt--;
			continue;
		}
		v = lng >= 2 ? va_arg(ap, unsigned long long) : lng == 1 ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
		if (lng == -1) v = (unsigned short)v;
		if (lng <= -2) v = (unsigned char)v;
		put_num(&o, v, base, false, upper, width, prec, left, zero, alt, 0);
	}
	if (o.n)
		o.buf[o.len < o.n ? o.len : o.n - 1] = '\0';
	return o.len;
}

int lx_snprintf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = lx_vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return r;
}

void lx_vprintk(const char *prefix, const char *fmt, va_list ap)
{
	char line[512];
	int level = 4;

	/* KERN_<LEVEL> is "\001" followed by the level digit (or 'c' for KERN_CONT). */
	while (fmt[0] == KERN_SOH_ASCII && fmt[1]) {
		if (fmt[1] >= '0' && fmt[1] <= '7')
			level = fmt[1] - '0';
		fmt += 2;
	}
	if (level >= 7 && !lx_verbose)
		return;
	lx_vsnprintf(line, sizeof(line), fmt, ap);
	if (prefix)
		hx_puts(prefix);
	hx_puts(line);
}

int _printk(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	lx_vprintk(NULL, fmt, ap);
	va_end(ap);
	return 0;
}

static void netdev_vprintk(const char *level, const struct net_device *dev, const char *fmt, va_list ap)
{
	char prefix[IFNAMSIZ + 8];

	if (level[1] == '7' && !lx_verbose)
		return;
	lx_snprintf(prefix, sizeof(prefix), "%s: ", dev && dev->name[0] ? dev->name : "(unnamed net_device)");
	lx_vprintk(prefix, fmt, ap);
}

#define NETDEV_LEVEL(fn, lvl)                                                  \
	void fn(const struct net_device *dev, const char *fmt, ...)            \
	{                                                                      \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		netdev_vprintk(lvl, dev, fmt, ap);                             \
		va_end(ap);                                                    \
	}
NETDEV_LEVEL(netdev_emerg, KERN_EMERG)
NETDEV_LEVEL(netdev_alert, KERN_ALERT)
NETDEV_LEVEL(netdev_crit, KERN_CRIT)
NETDEV_LEVEL(netdev_err, KERN_ERR)
NETDEV_LEVEL(netdev_warn, KERN_WARNING)
NETDEV_LEVEL(netdev_notice, KERN_NOTICE)
NETDEV_LEVEL(netdev_info, KERN_INFO)

void __dynamic_netdev_dbg(struct _ddebug *descriptor, const struct net_device *dev, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	netdev_vprintk(KERN_DEBUG, dev, fmt, ap);
	va_end(ap);
}

static void dev_vprintk(const struct device *dev, const char *fmt, va_list ap)
{
	char prefix[64];

	lx_snprintf(prefix, sizeof(prefix), "%s: ", dev ? dev_name(dev) ?: "(device)" : "(NULL device)");
	lx_vprintk(prefix, fmt, ap);
}

#define DEV_LEVEL(fn)                                                          \
	void fn(const struct device *dev, const char *fmt, ...)                \
	{                                                                      \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		dev_vprintk(dev, fmt, ap);                                     \
		va_end(ap);                                                    \
	}
DEV_LEVEL(_dev_emerg)
DEV_LEVEL(_dev_alert)
DEV_LEVEL(_dev_crit)
DEV_LEVEL(_dev_err)
DEV_LEVEL(_dev_warn)
DEV_LEVEL(_dev_notice)
DEV_LEVEL(_dev_info)

void __dynamic_dev_dbg(struct _ddebug *descriptor, const struct device *dev, const char *fmt, ...)
{
	va_list ap;

	if (!lx_verbose)
		return;
	va_start(ap, fmt);
	dev_vprintk(dev, fmt, ap);
	va_end(ap);
}

void __dynamic_pr_debug(struct _ddebug *descriptor, const char *fmt, ...)
{
	va_list ap;

	if (!lx_verbose)
		return;
	va_start(ap, fmt);
	lx_vprintk(NULL, fmt, ap);
	va_end(ap);
}

/* WARN(): the message, and the guest goes on (as the kernel does). */
void __warn_printk(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	lx_vprintk("WARNING: ", fmt, ap);
	va_end(ap);
}
