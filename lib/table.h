/*
 * table: aligned text tables for the client (`orchd list`, `orchd
 * workers`). The module owns the cells (copied in), column widths in
 * terminal columns (utf8.h, so non-ASCII text lines up), per-column
 * alignment and truncation. It renders into an sbuf; the caller prints.
 *
 * Layout: columns separated by two spaces, every line ending in "\n",
 * no trailing blanks. The first row added is usually the header; it is
 * an ordinary row here.
 */
#ifndef ORCHD_TABLE_H
#define ORCHD_TABLE_H

#include <stddef.h>

#include "sbuf.h"

struct table;

enum table_align { TABLE_LEFT, TABLE_RIGHT };

/* Creates an empty table of ncols (> 0) columns, all left-aligned and
 * untruncated. Free with table_del(). */
struct table *table_new(size_t ncols);
/* Frees t and its cells; NULL is a no-op. */
void table_del(struct table *t);

void table_set_align(struct table *t, size_t col, enum table_align a);
/* Cells of col wider than cols (>= 4) are cut to fit and end in "...";
 * 0 removes the limit. */
void table_set_max(struct table *t, size_t col, size_t cols);

/* Appends a row of ncols cells (each copied; NULL is an empty cell).
 * Newlines and other control characters in a cell are shown as blanks,
 * so one row stays one line. */
void table_add(struct table *t, const char *const *cells);
/* Number of rows added. */
size_t table_rows(const struct table *t);

/* Appends the whole table to out. */
void table_render(const struct table *t, struct sbuf *out);

#endif
