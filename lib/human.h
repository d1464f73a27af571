/*
 * human: numbers and times written for people, as the client shows them
 * (ages, elapsed times, uptimes, payload sizes, timestamps). Pure
 * functions writing into the caller's buffer; no locale, no time zone:
 * timestamps are UTC.
 */
#ifndef ORCHD_HUMAN_H
#define ORCHD_HUMAN_H

#include <stddef.h>
#include <stdint.h>

/* Buffer size that fits every result below. */
#define HUMAN_BUFLEN 32

/* A duration in at most two units, short enough for a table column:
 * "0ms", "850ms", "1.2s", "59s", "3m05s", "2h03m", "4d02h". Negative
 * values (clock skew) are shown as 0. Returns buf. */
char *human_duration(int64_t ms, char *buf, size_t len);

/* A byte count: "512 B", "1.5 KiB", "20 MiB", "3.0 GiB". Returns buf. */
char *human_size(uint64_t bytes, char *buf, size_t len);

/* A Unix time in ms as UTC ISO 8601 to the second,
 * "2025-01-31T09:05:00Z"; "-" for 0 (not set). Returns buf. */
char *human_time(int64_t unix_ms, char *buf, size_t len);

#endif
