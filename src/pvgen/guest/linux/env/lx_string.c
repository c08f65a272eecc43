/* lx_string.c - the string and memory functions the drivers and the environment call (no libc in the guest). */
#include <linux/types.h>
#include <linux/errno.h>

/* Only <linux/types.h> is included, so the fortified inline wrappers of <linux/string.h> do not collide with
 * these out-of-line definitions. mem* are weak: a harness that brings its own libc wins. */

void *lx_memcpy(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;

	while (n--)
		*dp++ = *sp++;
	return d;
}

void *lx_memset(void *d, int c, size_t n)
{
	unsigned char *dp = d;

	while (n--)
		*dp++ = (unsigned char)c;
	return d;
}

int lx_memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *ap = a, *bp = b;

	for (; n; n--, ap++, bp++)
		if (*ap != *bp)
			return *ap < *bp ? -1 : 1;
	return 0;
}

size_t lx_strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

__attribute__((weak)) void *memcpy(void *d, const void *s, size_t n) { return lx_memcpy(d, s, n); }
__attribute__((weak)) void *memset(void *d, int c, size_t n) { return lx_memset(d, c, n); }
__attribute__((weak)) int memcmp(const void *a, const void *b, size_t n) { return lx_memcmp(a, b, n); }
__attribute__((weak)) size_t strlen(const char *s) { return lx_strlen(s); }

__attribute__((weak)) void *memmove(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;

	if (dp <= sp || dp >= sp + n)
		return lx_memcpy(d, s, n);
	while (n--)
		dp[n] = sp[n];
	return d;
}

size_t strnlen(const char *s, size_t count)
{
	size_t n = 0;

	while (n < count && s[n])
		n++;
	return n;
}

/* lib/string.c semantics: copy with NUL termination, -E2BIG when truncated. */
ssize_t strscpy(char *dest, const char *src, size_t count)
{
	size_t i;

	if (count == 0)
		return -E2BIG;
	for (i = 0; i < count; i++) {
		dest[i] = src[i];
		if (!src[i])
			return i;
	}
	dest[count - 1] = '\0';
	return -E2BIG;
}
