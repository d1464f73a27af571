/* bar: progress lines for terminals (see bar.h). */
#include "bar.h"

#include <stdio.h>
#include <string.h>

#include "human.h"
#include "utf8.h"

#define ERASE_LINE "\033[2K"
#define RESET "\033[0m"

static const char *status_color(const char *st)
{
	if (!strcmp(st, "COMPLETED"))
		return "\033[32m"; /* green */
	if (!strcmp(st, "FAILED"))
		return "\033[31m"; /* red */
	if (!strcmp(st, "CANCELLED"))
		return "\033[33m"; /* yellow */
	if (!strcmp(st, "RUNNING"))
		return "\033[36m"; /* cyan */
	return NULL;
}

/* Appends s cut to the columns left in *room (message text: control
 * characters become blanks so the line stays one line). */
static void add_fit(struct sbuf *out, const char *s, int *room)
{
	if (!s || *room <= 0)
		return;
	size_t n = strlen(s);
	size_t keep = utf8_fit(s, n, (size_t)*room);
	size_t start = out->len;
	sbuf_add(out, s, keep);
	for (size_t i = start; i < out->len; i++)
		if ((unsigned char)out->s[i] < 0x20 || out->s[i] == 0x7F)
			out->s[i] = ' ';
	*room -= (int)utf8_cols(s, keep);
}

void bar_render(struct sbuf *out, const struct bar_task *t, int width, int flags)
{
	if (width < 20)
		width = 20;
	/* The last column stays empty: some terminals wrap on writing it. */
	int room = width - 1;
	const char *st = t->status ? t->status : "UNKNOWN";

	/* Line 1: id, name, status, attempt, elapsed. */
	sbuf_adds(out, ERASE_LINE);
	add_fit(out, t->id, &room);
	if (t->name && *t->name && room > 2) {
		sbuf_adds(out, "  ");
		room -= 2;
		add_fit(out, t->name, &room);
	}
	if (room > 2) {
		sbuf_adds(out, "  ");
		room -= 2;
		const char *col = (flags & BAR_COLOR) ? status_color(st) : NULL;
		if (col)
			sbuf_adds(out, col);
		add_fit(out, st, &room);
		if (col)
			sbuf_adds(out, RESET);
	}
	char tmp[64];
	if (t->attempt > 0) {
		if (t->max_attempts > 0)
			snprintf(tmp, sizeof tmp, "  attempt %d/%d", t->attempt, t->max_attempts);
		else
			snprintf(tmp, sizeof tmp, "  attempt %d", t->attempt);
		if ((int)strlen(tmp) <= room)
			add_fit(out, tmp, &room);
	}
	if (t->elapsed_ms >= 0) {
		char d[HUMAN_BUFLEN];
		snprintf(tmp, sizeof tmp, "  %s", human_duration(t->elapsed_ms, d, sizeof d));
		if ((int)strlen(tmp) <= room)
			add_fit(out, tmp, &room);
	}
	sbuf_addc(out, '\n');

	/* Line 2: "  [####----]  42%  message"; the bar takes a third of
	 * the width, 10 to 40 cells, and the message what is left. */
	room = width - 1;
	int pct = t->percent < 0 ? 0 : t->percent > 100 ? 100 : t->percent;
	int cells = width / 3;
	cells = cells < 10 ? 10 : cells > 40 ? 40 : cells;
	int fill = pct * cells / 100;
	sbuf_adds(out, ERASE_LINE "  [");
	sbuf_addrep(out, "#", fill);
	sbuf_addrep(out, "-", cells - fill);
	sbuf_addf(out, "] %3d%%", pct);
	room -= cells + 9;
	if (t->message && *t->message && room > 2) {
		sbuf_adds(out, "  ");
		room -= 2;
		add_fit(out, t->message, &room);
	}
	sbuf_addc(out, '\n');
}

void bar_rewind(struct sbuf *out, int lines)
{
	if (lines > 0)
		sbuf_addf(out, "\r\033[%dA", lines);
}
