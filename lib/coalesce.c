/* coalesce: latest-wins mailbox for a slow consumer (see coalesce.h). */
#include "coalesce.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "xalloc.h"

void coalesce_init(struct coalesce *c, coalesce_send_cb send, void *arg)
{
	memset(c, 0, sizeof *c);
	c->send = send;
	c->arg = arg;
}

void coalesce_free(struct coalesce *c)
{
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
	c->has = c->final = 0;
}

/* Tries to hand msg over. Returns 1 when taken, 0 when not (consumer full),
 * or a negative error. */
static int try_send(struct coalesce *c, const void *msg, size_t len)
{
	int rv = c->send(msg, len, c->arg);
	if (rv == E_AGAIN) {
		c->blocked = 1;
		return 0;
	}
	if (rv < 0)
		return rv;
	c->sent++;
	c->blocked = rv == COALESCE_SENT_FULL;
	return 1;
}

static void keep(struct coalesce *c, const void *msg, size_t len, int final)
{
	if (len > c->cap) {
		free(c->buf);
		c->buf = xmalloc(len);
		c->cap = len;
	}
	if (len)
		memcpy(c->buf, msg, len);
	c->len = len;
	c->has = 1;
	c->final = final != 0;
}

int coalesce_offer(struct coalesce *c, const void *msg, size_t len, int final)
{
	if (c->has) {
		if (c->final && !final) {
			c->dropped++;
			return 0;
		}
		c->replaced++;
		keep(c, msg, len, final);
		return 0;
	}
	if (!c->blocked) {
		int rv = try_send(c, msg, len);
		if (rv != 0)
			return rv < 0 ? rv : 0;
	}
	keep(c, msg, len, final);
	return 0;
}

int coalesce_writable(struct coalesce *c)
{
	c->blocked = 0;
	if (!c->has)
		return 0;
	int rv = try_send(c, c->buf, c->len);
	if (rv < 0) {
		c->has = c->final = 0;
		return rv;
	}
	if (rv == 1)
		c->has = c->final = 0;
	return 0;
}

int coalesce_pending(const struct coalesce *c)
{
	return c->has;
}
