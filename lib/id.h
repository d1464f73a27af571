/*
 * id: time-ordered unique ids for tasks (and anything else that wants one).
 * An id is 128 bits -- 48 bits of Unix milliseconds, a 32-bit per-process
 * counter and 48 random bits fixed per process -- rendered as 26 characters
 * of Crockford base32 (0-9, A-Z without I, L, O, U). Ids sort as strings in
 * creation order: across processes by millisecond, within one process
 * strictly (the counter and a never-backwards clock see to that). The module
 * owns the counter and the per-process random part; it does no I/O beyond
 * reading the clock and getrandom(2) once. Not thread-safe: orchd generates
 * ids on its event-loop thread only.
 */
#ifndef ORCHD_ID_H
#define ORCHD_ID_H

#include <stdint.h>

/* Characters in an id, without the terminating NUL. */
#define ID_LEN 26

/* Characters ID_COUNTER_LOW and the next one hold the counter's 7 low bits
 * (and 3 bits of the random part): ids one process made fewer than 128
 * apart differ there, so comparing them first rejects a mismatch cheaply. */
#define ID_COUNTER_LOW 15

/* Writes a new id and its NUL into out. */
void id_new(char out[ID_LEN + 1]);

/* As id_new, with the clock reading now_ms (Unix milliseconds) instead of the
 * real clock; for tests and replays. The clock never goes backwards: a now_ms
 * below the last one used is raised to it. */
void id_new_at(int64_t now_ms, char out[ID_LEN + 1]);

/* Writes the smallest id of millisecond ms (counter and random part zero)
 * and its NUL into out: every id made at ms or later sorts at or above it,
 * every one made earlier below, so it bounds a range of ids by time. Does
 * not touch the clock id_new reads. */
void id_first_at(int64_t ms, char out[ID_LEN + 1]);

/* Writes the id of these parts and its NUL into out: the low 48 bits of
 * ms, then counter, then node (borrowed, 6 bytes), as 26 characters of 5
 * bits each after 2 zero bits. Ids of ascending (ms, counter, node) sort
 * ascending. The format alone: no clock, no counter; for id_new_at,
 * id_first_at and tests. */
void id_encode(int64_t ms, uint32_t counter, const uint8_t node[6], char out[ID_LEN + 1]);

/* Returns 1 if s (borrowed) is a well-formed id (exactly ID_LEN characters of
 * the upper-case alphabet, first one at most '7'), else 0. */
int id_valid(const char *s);

/* Returns the Unix milliseconds encoded in a well-formed id, or -1 if s is
 * not one. */
int64_t id_time_ms(const char *s);

#endif
