/* json: a JSON writer (see json.h). */
#include "json.h"

#include <inttypes.h>
#include <string.h>

#include "utf8.h"

void json_init(struct json *j, struct sbuf *out)
{
	memset(j, 0, sizeof *j);
	j->out = out;
}

/* Writes the comma a value needs before it, unless it follows a key. */
static void before_value(struct json *j)
{
	if (j->after_key) {
		j->after_key = 0;
		return;
	}
	if (j->depth > 0 && j->depth <= JSON_MAX_DEPTH) {
		if (j->has_items[j->depth - 1])
			sbuf_addc(j->out, ',');
		j->has_items[j->depth - 1] = 1;
	}
}

static void nest(struct json *j, char c)
{
	before_value(j);
	sbuf_addc(j->out, c);
	j->depth++;
	if (j->depth <= JSON_MAX_DEPTH)
		j->has_items[j->depth - 1] = 0;
}

static void unnest(struct json *j, char c)
{
	sbuf_addc(j->out, c);
	if (j->depth > 0)
		j->depth--;
}

void json_obj_begin(struct json *j)
{
	nest(j, '{');
}

void json_obj_end(struct json *j)
{
	unnest(j, '}');
}

void json_arr_begin(struct json *j)
{
	nest(j, '[');
}

void json_arr_end(struct json *j)
{
	unnest(j, ']');
}

void json_key(struct json *j, const char *key)
{
	before_value(j);
	json_escape(j->out, key, strlen(key));
	sbuf_addc(j->out, ':');
	j->after_key = 1;
}

void json_escape(struct sbuf *out, const char *s, size_t n)
{
	sbuf_addc(out, '"');
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		uint32_t cp;
		if (c >= 0x80) {
			int k = utf8_decode(s + i, n - i, &cp);
			if (k < 0) {
				sbuf_adds(out, "\xEF\xBF\xBD"); /* U+FFFD */
				i++;
			} else {
				sbuf_add(out, s + i, (size_t)k);
				i += (size_t)k;
			}
			continue;
		}
		i++;
		switch (c) {
		case '"':
			sbuf_adds(out, "\\\"");
			break;
		case '\\':
			sbuf_adds(out, "\\\\");
			break;
		case '\n':
			sbuf_adds(out, "\\n");
			break;
		case '\r':
			sbuf_adds(out, "\\r");
			break;
		case '\t':
			sbuf_adds(out, "\\t");
			break;
		case '\b':
			sbuf_adds(out, "\\b");
			break;
		case '\f':
			sbuf_adds(out, "\\f");
			break;
		default:
			/* DEL is legal JSON but invisible on a terminal. */
			if (c < 0x20 || c == 0x7F)
				sbuf_addf(out, "\\u%04x", c);
			else
				sbuf_addc(out, (char)c);
		}
	}
	sbuf_addc(out, '"');
}

void json_strn(struct json *j, const char *s, size_t n)
{
	before_value(j);
	json_escape(j->out, s ? s : "", s ? n : 0);
}

void json_str(struct json *j, const char *s)
{
	json_strn(j, s, s ? strlen(s) : 0);
}

void json_int(struct json *j, int64_t v)
{
	before_value(j);
	sbuf_addf(j->out, "%" PRId64, v);
}

void json_bool(struct json *j, int v)
{
	before_value(j);
	sbuf_adds(j->out, v ? "true" : "false");
}

void json_null(struct json *j)
{
	before_value(j);
	sbuf_adds(j->out, "null");
}
