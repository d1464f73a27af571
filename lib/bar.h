/*
 * bar: the text `orchd watch` draws on a terminal. Per task two lines,
 *
 *   01JB8Z3K4M5N6P7Q8R9S0T1V2W  sleep  RUNNING  attempt 1/3  2.5s
 *     [############------------]  50%  slept 500 of 1000 ms
 *
 * and the ANSI sequences that redraw a block of such lines in place. Every
 * line is cut to the terminal width (a wrapped line would break the
 * redraw) and begins with "erase line". Pure: it renders into an sbuf and
 * the caller writes that to the terminal.
 */
#ifndef ORCHD_BAR_H
#define ORCHD_BAR_H

#include <stdint.h>

#include "sbuf.h"

/* Lines bar_render() writes per task. */
#define BAR_LINES 2

/* bar_render() flags. */
enum {
	BAR_COLOR = 1, /* colour the status (green done, red failed, ...) */
};

/* What one task's lines show; all strings borrowed, NULL allowed. */
struct bar_task {
	const char *id;
	const char *name;
	const char *status;  /* "PENDING", "RUNNING", "COMPLETED", ... */
	int percent;         /* 0..100 (clamped) */
	const char *message; /* the latest progress message */
	int attempt;         /* 0: not shown */
	int max_attempts;    /* 0: unknown, shown as "attempt N" */
	int64_t elapsed_ms;  /* < 0: not shown */
};

/* Appends t's BAR_LINES lines, each at most width columns (a width below
 * 20 counts as 20) and ending in "\n". */
void bar_render(struct sbuf *out, const struct bar_task *t, int width, int flags);

/* Appends what moves the cursor back to the first of the `lines` lines
 * drawn last, so the next render overwrites them. Nothing for 0. */
void bar_rewind(struct sbuf *out, int lines);

#endif
