/* map: string-keyed open-addressing hash map (see map.h). */
#include "map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* Eight bytes a step rather than one: keys are mostly 26-character task
 * ids, hashed several times per task on the scheduler's hot path. Each step
 * is a bijection of h, and the end is a full 64-bit mix (MurmurHash3's
 * finaliser), so the low bits the table uses depend on every byte. */
static size_t hash(const char *s)
{
	size_t n = strlen(s);
	uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;
	for (; n >= 8; n -= 8, s += 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	w = 0;
	for (size_t i = 0; i < n; i++) /* the tail, at most 7 bytes */
		w |= (uint64_t)(uint8_t)s[i] << (8 * i);
	h ^= w;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return (size_t)h;
}

void map_init(struct map *m)
{
	memset(m, 0, sizeof *m);
}

void map_free(struct map *m)
{
	free(m->e);
	map_init(m);
}

/* inline: map_get is hot (the scheduler's queue looks up a task name per
 * push and per name per pop). */
static inline size_t find(const struct map *m, const char *key)
{
	size_t mask = m->cap - 1;
	size_t i = hash(key) & mask;
	while (m->e[i].key && strcmp(m->e[i].key, key) != 0)
		i = (i + 1) & mask;
	return i;
}

void *map_get(const struct map *m, const char *key)
{
	if (!m->cap)
		return NULL;
	size_t i = find(m, key);
	return m->e[i].key ? m->e[i].val : NULL;
}

static void grow(struct map *m)
{
	struct map old = *m;
	m->cap = old.cap ? old.cap * 2 : 16;
	m->e = xcalloc(m->cap, sizeof *m->e);
	for (size_t i = 0; i < old.cap; i++)
		if (old.e[i].key)
			m->e[find(m, old.e[i].key)] = old.e[i];
	free(old.e);
}

void *map_put(struct map *m, const char *key, void *val)
{
	/* Load factor at most 1/2 keeps probe runs short. */
	if ((m->n + 1) * 2 > m->cap)
		grow(m);
	size_t i = find(m, key);
	void *prev = m->e[i].key ? m->e[i].val : NULL;
	if (!m->e[i].key)
		m->n++;
	m->e[i].key = key;
	m->e[i].val = val;
	return prev;
}

void *map_del(struct map *m, const char *key)
{
	if (!m->cap)
		return NULL;
	size_t mask = m->cap - 1;
	size_t i = find(m, key);
	if (!m->e[i].key)
		return NULL;
	void *val = m->e[i].val;
	/* Backward shift: pull later members of the probe run into the hole
	 * when the hole lies between their home slot and where they sit. */
	size_t j = i;
	for (;;) {
		m->e[i].key = NULL;
		for (;;) {
			j = (j + 1) & mask;
			if (!m->e[j].key)
				goto done;
			size_t home = hash(m->e[j].key) & mask;
			if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j))
				break;
		}
		m->e[i] = m->e[j];
		i = j;
	}
done:
	m->n--;
	return val;
}

void map_foreach(const struct map *m, void (*fn)(const char *key, void *val, void *arg), void *arg)
{
	size_t pos = 0;
	const struct map_ent *e;
	while ((e = map_next(m, &pos)))
		fn(e->key, e->val, arg);
}

const struct map_ent *map_next(const struct map *m, size_t *pos)
{
	while (*pos < m->cap) {
		const struct map_ent *e = &m->e[(*pos)++];
		if (e->key)
			return e;
	}
	return NULL;
}
