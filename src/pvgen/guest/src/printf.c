/* printf.c - console output on the 16550 THR and a small vsnprintf (%d %i %u %x %X %p %s %c %%, l/ll/z/h/hh). */
#include "hx_internal.h"

void hx_putc(int c) { hx_outb(HX_UART_BASE, (unsigned char)c); }

void hx_puts(const char *s)
{
	while (*s)
		hx_putc(*s++);
}

struct out { char *buf; hx_size_t n, len; };

static void emit(struct out *o, char c)
{
	if (o->len + 1 < o->n)
		o->buf[o->len] = c;
	o->len++;
}

static void emit_num(struct out *o, unsigned long long v, int base, int upper, int neg, int width, int zero,
		     int left, int prefix)
{
	char tmp[24];
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	int i = 0, len;
	do {
		tmp[i++] = digits[v % base];
		v /= base;
	} while (v);
	len = i + (neg ? 1 : 0) + (prefix ? 2 : 0);
	if (!left && !zero)
		for (; width > len; width--)
			emit(o, ' ');
	if (neg)
		emit(o, '-');
	if (prefix) {
		emit(o, '0');
		emit(o, upper ? 'X' : 'x');
	}
	if (!left && zero)
		for (; width > len; width--)
			emit(o, '0');
	while (i)
		emit(o, tmp[--i]);
	if (left)
		for (; width > len; width--)
			emit(o, ' ');
}

int hx_vsnprintf(char *buf, hx_size_t n, const char *fmt, hx_va_list ap)
{
	struct out o = { buf, n, 0 };
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			emit(&o, *fmt);
			continue;
		}
		int zero = 0, left = 0, alt = 0, width = 0, prec = -1, lng = 0, half = 0;
		for (;; fmt++) {
			if (fmt[1] == '0') zero = 1;
			else if (fmt[1] == '-') left = 1;
			else if (fmt[1] == '#') alt = 1;
			else break;
		}
		fmt++;
		if (*fmt == '*') { width = __builtin_va_arg(ap, int); fmt++; }
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		if (*fmt == '.') {
			fmt++;
			prec = 0;
			if (*fmt == '*') { prec = __builtin_va_arg(ap, int); fmt++; }
			while (*fmt >= '0' && *fmt <= '9')
				prec = prec * 10 + (*fmt++ - '0');
		}
		for (;; fmt++) {
			if (*fmt == 'l' || *fmt == 'z') lng = 1;
			else if (*fmt == 'h') half++;
			else break;
		}
		unsigned long long u;
		long long s;
		switch (*fmt) {
		case 'd': case 'i':
			s = lng ? __builtin_va_arg(ap, long) : __builtin_va_arg(ap, int);
			if (half == 1) s = (short)s;
			else if (half >= 2) s = (signed char)s;
			emit_num(&o, s < 0 ? -(unsigned long long)s : (unsigned long long)s, 10, 0, s < 0, width, zero,
				 left, 0);
			break;
		case 'u': case 'x': case 'X':
			u = lng ? __builtin_va_arg(ap, unsigned long) : __builtin_va_arg(ap, unsigned int);
			if (half == 1) u = (unsigned short)u;
			else if (half >= 2) u = (unsigned char)u;
			emit_num(&o, u, *fmt == 'u' ? 10 : 16, *fmt == 'X', 0, width, zero, left, alt && *fmt != 'u' && u);
			break;
		case 'p':
			u = (unsigned long)__builtin_va_arg(ap, void *);
			emit_num(&o, u, 16, 0, 0, width, zero, left, 1);
			break;
		case 'c':
			if (!left)
				for (int w = width; w > 1; w--)
					emit(&o, ' ');
			emit(&o, (char)__builtin_va_arg(ap, int));
			if (left)
				for (int w = width; w > 1; w--)
					emit(&o, ' ');
			break;
		case 's': {
			const char *str = __builtin_va_arg(ap, const char *);
			int len = 0;
			if (!str) str = "(null)";
			while (str[len] && (prec < 0 || len < prec)) len++;
			if (!left) for (int w = width; w > len; w--) emit(&o, ' ');
			for (int k = 0; k < len; k++) emit(&o, str[k]);
			if (left) for (int w = width; w > len; w--) emit(&o, ' ');
			break;
		}
		case '%':
			emit(&o, '%');
			break;
		case 0:
			fmt--;
			break;
		default:
			emit(&o, '%');
			emit(&o, *fmt);
		}
	}
	if (n)
		buf[o.len < n ? o.len : n - 1] = 0;
	return (int)o.len;
}

int hx_snprintf(char *buf, hx_size_t n, const char *fmt, ...)
{
	hx_va_list ap;
	__builtin_va_start(ap, fmt);
	int r = hx_vsnprintf(buf, n, fmt, ap);
	__builtin_va_end(ap);
	return r;
}

int hx_printf(const char *fmt, ...)
{
	char buf[512];
	hx_va_list ap;
	__builtin_va_start(ap, fmt);
	int r = hx_vsnprintf(buf, sizeof(buf), fmt, ap);
	__builtin_va_end(ap);
	hx_puts(buf);
	return r;
}
