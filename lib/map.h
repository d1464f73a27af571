/*
 * map: a hash map from NUL-terminated string keys to pointers, open
 * addressing with linear probing and backward-shift deletion (no
 * tombstones, so lookups stay short after many deletes). Keys are
 * borrowed: each key must live as long as its entry (usually the key is
 * a field of the value, like a task's id). O(1) expected per operation.
 */
#ifndef ORCHD_MAP_H
#define ORCHD_MAP_H

#include <stddef.h>

struct map_ent {
	const char *key;
	void *val;
};

struct map {
	struct map_ent *e;
	size_t n, cap; /* cap: 0 or a power of two */
};

void map_init(struct map *m);
/* Frees the table, not the keys or values. */
void map_free(struct map *m);
void *map_get(const struct map *m, const char *key);
/* Inserts or replaces; returns the previous value or NULL. */
void *map_put(struct map *m, const char *key, void *val);
/* Removes; returns the removed value or NULL. */
void *map_del(struct map *m, const char *key);
/* Calls fn for each entry; fn must not modify the map. */
void map_foreach(const struct map *m, void (*fn)(const char *key, void *val, void *arg), void *arg);
/* Walks the entries in no particular order, for walks that may stop early:
 * start with *pos = 0; each call returns the next entry (borrowed) and
 * advances *pos, or NULL after the last. The map must not change during a
 * walk. */
const struct map_ent *map_next(const struct map *m, size_t *pos);

#endif
