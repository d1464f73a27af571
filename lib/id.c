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

/* The 128 bits are two
 * words, hi (milliseconds, counter's top half) and lo (counter's bottom
 * half, node); the 26 characters are the 130-bit value (2 zero bits, then
 * hi:lo) in 5-bit groups, written from the last one, each step shifting
 * the pair right by 5. */
void id_encode(int64_t now_ms, uint32_t c, const uint8_t nd[6], char out[ID_LEN + 1])
{
	uint64_t hi = ((uint64_t)now_ms & 0xffffffffffffULL) << 16 | c >> 16;
	uint64_t lo = (uint64_t)(c & 0xffff) << 48;
	for (int i = 0; i < 6; i++)
		lo |= (uint64_t)nd[i] << (40 - 8 * i);
	for (int i = ID_LEN - 1; i >= 0; i--) {
		out[i] = alphabet[lo & 31];
		lo = lo >> 5 | hi << 59;
		hi >>= 5;
	}
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
	id_encode(now_ms, c, node, out);
}

void id_first_at(int64_t ms, char out[ID_LEN + 1])
{
	static const uint8_t zero[6];
	id_encode(ms < 0 ? 0 : ms, 0, zero, out);
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
