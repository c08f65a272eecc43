/* hxparam.h - parse `key=value` words of the harness command line (hx_cmdline). */
#ifndef PVGEN_HXPARAM_H
#define PVGEN_HXPARAM_H
#include "harness.h"

static inline unsigned long hx_param(const char *key, unsigned long dflt)
{
	const char *s = hx_cmdline();
	while (*s) {
		while (*s == ' ')
			s++;
		const char *k = key;
		while (*k && *s == *k)
			s++, k++;
		if (!*k && *s == '=') {
			unsigned long v = 0, base = 10;
			s++;
			if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
				base = 16, s += 2;
			for (;; s++) {
				int d = (*s >= '0' && *s <= '9') ? *s - '0' : (*s >= 'a' && *s <= 'f') ? *s - 'a' + 10 :
					(*s >= 'A' && *s <= 'F') ? *s - 'A' + 10 : 99;
				if (d >= (int)base)
					break;
				v = v * base + d;
			}
			return v;
		}
		while (*s && *s != ' ')
			s++;
	}
	return dflt;
}
#endif
