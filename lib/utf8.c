/* utf8: decoding and column counts (see utf8.h). */
#include "utf8.h"

int utf8_decode(const void *p, size_t n, uint32_t *cp)
{
	const uint8_t *s = p;
	uint32_t c = s[0];
	int len;
	uint32_t min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xE0) == 0xC0) {
		len = 2, min = 0x80, c &= 0x1F;
	} else if ((c & 0xF0) == 0xE0) {
		len = 3, min = 0x800, c &= 0x0F;
	} else if ((c & 0xF8) == 0xF0) {
		len = 4, min = 0x10000, c &= 0x07;
	} else {
		return -1;
	}
	if (n < (size_t)len)
		return -1;
	for (int i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return -1;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return -1;
	*cp = c;
	return len;
}

int utf8_valid(const void *p, size_t n)
{
	const uint8_t *s = p;
	uint32_t cp;
	for (size_t i = 0; i < n;) {
		int k = utf8_decode(s + i, n - i, &cp);
		if (k < 0)
			return 0;
		i += (size_t)k;
	}
	return 1;
}

int utf8_cp_cols(uint32_t cp)
{
	/* Combining marks and zero-width characters. */
	if ((cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x1AB0 && cp <= 0x1AFF) ||
	    (cp >= 0x1DC0 && cp <= 0x1DFF) || (cp >= 0x20D0 && cp <= 0x20FF) ||
	    (cp >= 0xFE20 && cp <= 0xFE2F) || (cp >= 0x200B && cp <= 0x200F) || cp == 0xFEFF)
		return 0;
	/* East Asian wide and fullwidth blocks, and the emoji planes. */
	if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0x303E) ||
	    (cp >= 0x3041 && cp <= 0x33FF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
	    (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xA000 && cp <= 0xA4CF) ||
	    (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
	    (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
	    (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
	    (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD))
		return 2;
	return 1;
}

/* Steps over one character at s: returns its byte length and sets *cols. */
static size_t step(const char *s, size_t n, int *cols)
{
	uint32_t cp;
	int k = utf8_decode(s, n, &cp);
	if (k < 0) {
		*cols = 1;
		return 1;
	}
	*cols = utf8_cp_cols(cp);
	return (size_t)k;
}

size_t utf8_cols(const char *s, size_t n)
{
	size_t cols = 0;
	for (size_t i = 0; i < n;) {
		int c;
		i += step(s + i, n - i, &c);
		cols += (size_t)c;
	}
	return cols;
}

size_t utf8_fit(const char *s, size_t n, size_t cols)
{
	size_t used = 0, i = 0;
	while (i < n) {
		int c;
		size_t k = step(s + i, n - i, &c);
		if (used + (size_t)c > cols)
			break;
		used += (size_t)c;
		i += k;
	}
	return i;
}
