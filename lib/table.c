/* table: aligned text tables (see table.h). */
#include "table.h"

#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "xalloc.h"

struct table {
	size_t ncols;
	enum table_align *align;
	size_t *max;
	char **cells; /* nrows * ncols, row-major */
	size_t nrows, caprows;
};

struct table *table_new(size_t ncols)
{
	struct table *t = xcalloc(1, sizeof *t);
	t->ncols = ncols ? ncols : 1;
	t->align = xcalloc(t->ncols, sizeof *t->align);
	t->max = xcalloc(t->ncols, sizeof *t->max);
	return t;
}

void table_del(struct table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->align);
	free(t->max);
	free(t);
}

void table_set_align(struct table *t, size_t col, enum table_align a)
{
	if (col < t->ncols)
		t->align[col] = a;
}

void table_set_max(struct table *t, size_t col, size_t cols)
{
	if (col < t->ncols)
		t->max[col] = cols && cols < 4 ? 4 : cols;
}

/* A copy of s with control characters blanked, cut to max columns. */
static char *cell_copy(const char *s, size_t max)
{
	if (!s)
		s = "";
	char *c = xstrdup(s);
	for (char *p = c; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7F)
			*p = ' ';
	size_t n = strlen(c);
	if (max && utf8_cols(c, n) > max) {
		size_t keep = utf8_fit(c, n, max - 3);
		memcpy(c + keep, "...", 4); /* keep + 4 <= n + 1: we cut >= 1 column */
	}
	return c;
}

void table_add(struct table *t, const char *const *cells)
{
	if (t->nrows == t->caprows) {
		t->caprows = t->caprows ? t->caprows * 2 : 16;
		t->cells = xrealloc(t->cells, t->caprows * t->ncols * sizeof *t->cells);
	}
	char **row = t->cells + t->nrows * t->ncols;
	for (size_t i = 0; i < t->ncols; i++)
		row[i] = cell_copy(cells[i], t->max[i]);
	t->nrows++;
}

size_t table_rows(const struct table *t)
{
	return t->nrows;
}

void table_render(const struct table *t, struct sbuf *out)
{
	size_t *w = xcalloc(t->ncols, sizeof *w);
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t i = 0; i < t->ncols; i++) {
			const char *c = t->cells[r * t->ncols + i];
			size_t cw = utf8_cols(c, strlen(c));
			if (cw > w[i])
				w[i] = cw;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		size_t start = out->len;
		for (size_t i = 0; i < t->ncols; i++) {
			const char *c = t->cells[r * t->ncols + i];
			int pad = (int)(w[i] - utf8_cols(c, strlen(c)));
			if (i > 0)
				sbuf_adds(out, "  ");
			if (t->align[i] == TABLE_RIGHT)
				sbuf_addrep(out, " ", pad);
			sbuf_adds(out, c);
			if (t->align[i] == TABLE_LEFT)
				sbuf_addrep(out, " ", pad);
		}
		while (out->len > start && out->s[out->len - 1] == ' ')
			out->len--;
		sbuf_addc(out, '\n');
	}
	free(w);
}
