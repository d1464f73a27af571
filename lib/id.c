/* id: time-ordered 128-bit ids in Crockford base32 (see id.h). */
#include "id.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static int64_t last_ms;
static uint32_t counter;
static uint8_t node[6];
static int seeded;

static void seed(void)
{
	uint8_t buf[10];
	/* A short read or no getrandom leaves a weaker but still per-process
	 * value: ids then differ across processes through pid and time. */
	ssize_t n = getrandom(buf, sizeof buf, GRND_NONBLOCK);
	if (n != (ssize_t)sizeof buf) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t x =
		    (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 16);
		for (size_t i = 0; i < sizeof buf; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = (uint8_t)x;
		}
	}
	memcpy(node, buf, sizeof node);
	/* A random start keeps the counter from revealing how many ids a
	 * process has made. */
	memcpy(&counter, buf + 6, sizeof counter);
	seeded = 1;
}

/* The 5 bits of the 130-bit value (2 zero bits, then the 128 bits of b) that
 * start at bit off of b; bits before b's start are zero. */
static unsigned bits5(const uint8_t b[16], int off)
{
	unsigned v = 0;
	for (int i = off; i < off + 5; i++) {
		unsigned bit = 0;
		if (i >= 0)
			bit = (b[i / 8] >> (7 - i % 8)) & 1;
		v = (v << 1) | bit;
	}
	return v;
}

/* Writes the id made of these three parts into out. */
static void encode(int64_t now_ms, uint32_t c, const uint8_t nd[6], char out[ID_LEN + 1])
{
	uint64_t ms = (uint64_t)now_ms & 0xffffffffffffULL;
	uint8_t b[16];
	for (int i = 0; i < 6; i++)
		b[i] = (uint8_t)(ms >> (40 - 8 * i));
	for (int i = 0; i < 4; i++)
		b[6 + i] = (uint8_t)(c >> (24 - 8 * i));
	memcpy(b + 10, nd, 6);
	for (int i = 0; i < ID_LEN; i++)
		out[i] = alphabet[bits5(b, i * 5 - 2)];
	out[ID_LEN] = '\0';
}

void id_new_at(int64_t now_ms, char out[ID_LEN + 1])
{
	if (!seeded)
		seed();
	if (now_ms < last_ms)
		now_ms = last_ms;
	last_ms = now_ms;
	uint32_t c = counter++;
	/* Within one millisecond the counter orders ids; on wrap-around (2^32
	 * ids in one millisecond, which no scheduler reaches) the clock is
	 * pushed forward one tick so order still holds. */
	if (counter == 0)
		last_ms++;
	encode(now_ms, c, node, out);
}

void id_first_at(int64_t ms, char out[ID_LEN + 1])
{
	static const uint8_t zero[6];
	encode(ms < 0 ? 0 : ms, 0, zero, out);
}

void id_new(char out[ID_LEN + 1])
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	id_new_at((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, out);
}

static int digit(char c)
{
	const char *p = c ? strchr(alphabet, c) : NULL;
	return p ? (int)(p - alphabet) : -1;
}

int id_valid(const char *s)
{
	if (!s || strlen(s) != ID_LEN)
		return 0;
	for (int i = 0; i < ID_LEN; i++)
		if (digit(s[i]) < 0)
			return 0;
	/* The first character carries the 2 zero pad bits and 3 real ones. */
	return digit(s[0]) < 8;
}

int64_t id_time_ms(const char *s)
{
	if (!id_valid(s))
		return -1;
	/* The first 10 characters are 50 bits: the 2 zero pad bits, then the
	 * 48 timestamp bits. */
	uint64_t v = 0;
	for (int i = 0; i < 10; i++)
		v = (v << 5) | (uint64_t)digit(s[i]);
	return (int64_t)v;
}
