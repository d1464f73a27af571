/* taskpb: struct task <-> orchestrator.v1 messages (see taskpb.h). */
#include "taskpb.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static char *s(const char *p)
{
	return (char *)(p ? p : "");
}

struct task *taskpb_to_task(const Orchestrator__V1__TaskSpec *spec, int64_t now_ms)
{
	struct task *t = task_new(NULL, spec->name ? spec->name : "", now_ms);
	task_set_str(&t->description, spec->description);
	task_set_bytes(&t->payload, &t->payload_len, spec->payload.data, spec->payload.len);
	t->priority = spec->priority;
	t->max_attempts = spec->max_attempts;
	t->timeout_ms = spec->timeout_ms;
	task_set_str(&t->idempotency_key, spec->idempotency_key);
	/* One allocation: a spec may bring far more labels than it is allowed
	 * (it is checked after this), and growing by one per label is
	 * quadratic where realloc copies. */
	if (spec->n_labels) {
		t->labels = xcalloc(spec->n_labels, sizeof *t->labels);
		for (size_t i = 0; i < spec->n_labels; i++) {
			t->labels[i].key = xstrdup(s(spec->labels[i]->key));
			t->labels[i].value = xstrdup(s(spec->labels[i]->value));
		}
		t->nlabels = spec->n_labels;
	}
	return t;
}

Orchestrator__V1__TaskSpec *taskpb_spec(struct taskpb *b, const struct task *t)
{
	Orchestrator__V1__TaskSpec *p = &b->spec;
	orchestrator__v1__task_spec__init(p);
	p->name = s(t->name);
	p->description = s(t->description);
	p->payload.data = t->payload;
	p->payload.len = t->payload_len;
	p->priority = t->priority;
	p->max_attempts = t->max_attempts;
	p->timeout_ms = t->timeout_ms;
	p->idempotency_key = s(t->idempotency_key);
	if (t->nlabels) {
		b->entries = xcalloc(t->nlabels, sizeof *b->entries);
		b->labels = xcalloc(t->nlabels, sizeof *b->labels);
		for (size_t i = 0; i < t->nlabels; i++) {
			orchestrator__v1__task_spec__labels_entry__init(&b->entries[i]);
			b->entries[i].key = t->labels[i].key;
			b->entries[i].value = s(t->labels[i].value);
			b->labels[i] = &b->entries[i];
		}
		p->n_labels = t->nlabels;
		p->labels = b->labels;
	}
	return p;
}

static Orchestrator__V1__TaskResult *result(struct taskpb *b, const struct task *t)
{
	if (!task_state_final(t->status))
		return NULL;
	Orchestrator__V1__TaskResult *r = &b->result;
	orchestrator__v1__task_result__init(r);
	r->task_id = (char *)t->id;
	r->status = (Orchestrator__V1__TaskStatus)t->status;
	r->output.data = t->output;
	r->output.len = t->output_len;
	r->error = s(t->error);
	r->attempt = t->attempt;
	return r;
}

void taskpb_task(struct taskpb *b, const struct task *t, Orchestrator__V1__Task *out)
{
	orchestrator__v1__task__init(out);
	out->task_id = (char *)t->id;
	out->spec = taskpb_spec(b, t);
	out->status = (Orchestrator__V1__TaskStatus)t->status;
	out->attempt = t->attempt;
	out->created_unix_ms = t->created_ms;
	out->started_unix_ms = t->started_ms;
	out->finished_unix_ms = t->finished_ms;
	out->result = result(b, t);
	out->worker_id = s(t->worker_id);
	out->percent = t->percent;
	out->message = s(t->message);
	out->not_before_unix_ms = t->status == TASK_PENDING ? t->not_before_ms : 0;
}

void taskpb_progress(struct taskpb *b, const struct task *t, int64_t now_ms,
		     Orchestrator__V1__TaskProgress *out)
{
	orchestrator__v1__task_progress__init(out);
	out->task_id = (char *)t->id;
	out->status = (Orchestrator__V1__TaskStatus)t->status;
	out->percent = t->percent;
	/* While pending, the last error says why it is waiting (a retry). */
	out->message = s(t->status == TASK_RUNNING ? t->message : t->error);
	out->timestamp_unix_ms = now_ms;
	out->result = result(b, t);
	out->attempt = t->attempt;
}

void taskpb_free(struct taskpb *b)
{
	free(b->entries);
	free(b->labels);
	b->entries = NULL;
	b->labels = NULL;
}
