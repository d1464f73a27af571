/* meta: gRPC metadata encodings and list (see meta.h). */
#include "meta.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* ---- grpc-timeout ---------------------------------------------------- */

#define TIMEOUT_MAX_DIGITS 8
#define TIMEOUT_MAX_VALUE 99999999

int meta_timeout_parse(const char *s, size_t len, int64_t *out_ms)
{
	int64_t v = 0, ms;

	if (len < 2 || len > TIMEOUT_MAX_DIGITS + 1)
		return -1;
	for (size_t i = 0; i < len - 1; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	switch (s[len - 1]) {
	case 'H':
		ms = v * 3600000;
		break;
	case 'M':
		ms = v * 60000;
		break;
	case 'S':
		ms = v * 1000;
		break;
	case 'm':
		ms = v;
		break;
	case 'u':
		ms = (v + 999) / 1000;
		break;
	case 'n':
		ms = (v + 999999) / 1000000;
		break;
	default:
		return -1;
	}
	*out_ms = ms;
	return 0;
}

static const struct {
	int64_t ms;
	char unit;
} units[] = {{3600000, 'H'}, {60000, 'M'}, {1000, 'S'}, {1, 'm'}};

#define NUNITS (sizeof(units) / sizeof(units[0]))

/* v is 0..TIMEOUT_MAX_VALUE. Every client call with a deadline sends one,
 * so no stdio: digits are written from the end. */
static size_t timeout_put(char *out, int64_t v, char unit)
{
	char tmp[META_TIMEOUT_BUFLEN], *p = tmp + sizeof tmp;
	*--p = '\0';
	*--p = unit;
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	size_t n = (size_t)(tmp + sizeof tmp - 1 - p);
	memcpy(out, p, n + 1);
	return n;
}

size_t meta_timeout_format(int64_t ms, char out[META_TIMEOUT_BUFLEN])
{
	if (ms <= 0)
		return timeout_put(out, 1, 'n');
	/* The largest exact unit gives the fewest digits. Failing that (only
	 * when ms has more than 8 digits), round up in the finest unit that
	 * fits, which overshoots least. */
	for (size_t i = 0; i < NUNITS; i++)
		if (ms % units[i].ms == 0 && ms / units[i].ms <= TIMEOUT_MAX_VALUE)
			return timeout_put(out, ms / units[i].ms, units[i].unit);
	for (size_t i = NUNITS; i-- > 0;) {
		int64_t up = ms / units[i].ms + (ms % units[i].ms != 0);
		if (up <= TIMEOUT_MAX_VALUE)
			return timeout_put(out, up, units[i].unit);
	}
	return timeout_put(out, TIMEOUT_MAX_VALUE, 'H');
}

/* ---- grpc-message percent-encoding ----------------------------------- */

static const char hexdig[] = "0123456789ABCDEF";

static int pct_needed(unsigned char c)
{
	return c < 0x20 || c > 0x7e || c == '%';
}

size_t meta_pct_encoded_len(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = len;

	for (size_t i = 0; i < len; i++)
		if (pct_needed(p[i]))
			n += 2;
	return n;
}

char *meta_pct_encode(const char *s, size_t len, size_t *outlen)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = meta_pct_encoded_len(s, len);
	char *out, *o;

	o = out = xmalloc(n + 1);
	for (size_t i = 0; i < len; i++) {
		if (pct_needed(p[i])) {
			*o++ = '%';
			*o++ = hexdig[p[i] >> 4];
			*o++ = hexdig[p[i] & 0xf];
		} else {
			*o++ = (char)p[i];
		}
	}
	*o = '\0';
	if (outlen)
		*outlen = n;
	return out;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

char *meta_pct_decode(const char *s, size_t len, size_t *outlen)
{
	char *out = xmalloc(len + 1), *o = out;

	for (size_t i = 0; i < len; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 &&
		    (lo = hexval(s[i + 2])) >= 0) {
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	if (outlen)
		*outlen = (size_t)(o - out);
	return out;
}

/* ---- base64 for "-bin" values ---------------------------------------- */

static const char b64dig[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *meta_b64_encode(const uint8_t *p, size_t len, size_t *outlen)
{
	static const size_t tail[3] = {0, 2, 3};
	size_t n = len / 3 * 4 + tail[len % 3];
	char *out = xmalloc(n + 1), *o = out;
	size_t i;

	for (i = 0; i + 3 <= len; i += 3) {
		uint32_t w = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = b64dig[w >> 18];
		*o++ = b64dig[w >> 12 & 63];
		*o++ = b64dig[w >> 6 & 63];
		*o++ = b64dig[w & 63];
	}
	if (len - i == 1) {
		*o++ = b64dig[p[i] >> 2];
		*o++ = b64dig[(p[i] & 3) << 4];
	} else if (len - i == 2) {
		uint32_t w = (uint32_t)p[i] << 8 | p[i + 1];
		*o++ = b64dig[w >> 10];
		*o++ = b64dig[w >> 4 & 63];
		*o++ = b64dig[(w & 15) << 2];
	}
	*o = '\0';
	if (outlen)
		*outlen = n;
	return out;
}

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int meta_b64_decode(const char *s, size_t len, uint8_t **out, size_t *outlen)
{
	uint8_t *buf, *o;
	uint32_t w = 0;
	size_t i;

	/* Padding is only legal as the last one or two characters of a
	 * length that is a multiple of 4; strip it and decode the rest as
	 * unpadded. Any '=' left over fails the alphabet check below. */
	if (len % 4 == 0 && len > 0 && s[len - 1] == '=')
		len -= len > 1 && s[len - 2] == '=' ? 2 : 1;
	if (len % 4 == 1)
		return -1;
	o = buf = xmalloc(len / 4 * 3 + 2);
	for (i = 0; i < len; i++) {
		int v = b64val(s[i]);
		if (v < 0) {
			free(buf);
			return -1;
		}
		w = w << 6 | (uint32_t)v;
		if (i % 4 == 3) {
			*o++ = (uint8_t)(w >> 16);
			*o++ = (uint8_t)(w >> 8);
			*o++ = (uint8_t)w;
		}
	}
	if (len % 4 == 2) {
		*o++ = (uint8_t)(w >> 4);
	} else if (len % 4 == 3) {
		*o++ = (uint8_t)(w >> 10);
		*o++ = (uint8_t)(w >> 2);
	}
	*out = buf;
	*outlen = (size_t)(o - buf);
	return 0;
}

/* ---- keys and values ------------------------------------------------- */

int meta_key_is_bin(const char *key, size_t len)
{
	return len >= 4 && memcmp(key + len - 4, "-bin", 4) == 0;
}

int meta_key_valid(const char *key, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = key[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '_' || c == '-' ||
		      c == '.'))
			return 0;
	}
	return 1;
}

int meta_value_valid(const char *v, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
			return 0;
	return 1;
}

/* ---- metadata list --------------------------------------------------- */

/* Copies n bytes and NUL-terminates; p may be NULL when n is 0. */
static void *dupz(const void *p, size_t n)
{
	char *q = xmalloc(n + 1);
	if (n)
		memcpy(q, p, n);
	q[n] = '\0';
	return q;
}

void meta_init(struct meta *m)
{
	m->v = NULL;
	m->n = m->cap = 0;
}

void meta_free(struct meta *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].key);
		free(m->v[i].val);
	}
	free(m->v);
	meta_init(m);
}

void meta_add(struct meta *m, const char *key, size_t keylen, const void *val, size_t vallen)
{
	struct meta_kv *kv;

	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 8;
		m->v = xrealloc(m->v, m->cap * sizeof(*m->v));
	}
	kv = &m->v[m->n++];
	kv->key = dupz(key, keylen);
	kv->keylen = keylen;
	kv->val = dupz(val, vallen);
	kv->vallen = vallen;
}

const struct meta_kv *meta_get(const struct meta *m, const char *key)
{
	size_t len = strlen(key);

	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].keylen == len && memcmp(m->v[i].key, key, len) == 0)
			return &m->v[i];
	return NULL;
}
