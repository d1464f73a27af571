/* store: dispatch of the store interface to its backend (see store.h). */
#include "store.h"

#include <errno.h>

void store_del(struct store *s)
{
	if (s)
		s->ops->del(s);
}

int store_put(struct store *s, const struct task *t)
{
	return s->ops->put(s, t);
}

int store_update(struct store *s, const struct task *t)
{
	return s->ops->update(s, t);
}

int store_flush(struct store *s)
{
	return s->ops->flush(s);
}

int store_get(struct store *s, const char *id, struct task **out)
{
	*out = NULL;
	return s->ops->get(s, id, out);
}

int store_find_idempotent(struct store *s, const char *key, struct task **out)
{
	*out = NULL;
	if (!key || !*key)
		return -ENOENT;
	return s->ops->find_idempotent(s, key, out);
}

int store_load_active(struct store *s, store_task_cb cb, void *arg)
{
	return s->ops->load_active(s, cb, arg);
}

int store_list(struct store *s, const struct store_filter *f, store_task_cb cb, void *arg,
               char next_token[ID_LEN + 1])
{
	next_token[0] = '\0';
	return s->ops->list(s, f, cb, arg, next_token);
}

int store_purge(struct store *s, int64_t finished_before_ms, int max_rows)
{
	return s->ops->purge(s, finished_before_ms, max_rows);
}

int store_maintain(struct store *s)
{
	return s->ops->maintain ? s->ops->maintain(s) : 0;
}
