/*
 * taskpb: conversions between struct task and the orchestrator.v1
 * messages, in one place for every role. The fill functions point the
 * message's fields into the task (no copies) and allocate only the small
 * arrays protobuf-c needs, in a struct taskpb the caller frees after
 * packing: the task must not change in between.
 */
#ifndef ORCHD_TASKPB_H
#define ORCHD_TASKPB_H

#include <stdint.h>

#include "orchestrator/v1/orchestrator.pb-c.h"
#include "task.h"

struct taskpb {
	Orchestrator__V1__TaskSpec spec;
	Orchestrator__V1__TaskResult result;
	Orchestrator__V1__TaskSpec__LabelsEntry *entries;
	Orchestrator__V1__TaskSpec__LabelsEntry **labels;
};

/* Returns a new PENDING task (task_del it) built from spec, with a fresh
 * id and created_ms = now. Strings and payload are copied. */
struct task *taskpb_to_task(const Orchestrator__V1__TaskSpec *spec, int64_t now_ms);

/* Fill a message from t (borrowed): the spec alone, the whole Task, a
 * progress update (with the result when t is final). */
Orchestrator__V1__TaskSpec *taskpb_spec(struct taskpb *b, const struct task *t);
void taskpb_task(struct taskpb *b, const struct task *t, Orchestrator__V1__Task *out);
void taskpb_progress(struct taskpb *b, const struct task *t, int64_t now_ms,
		     Orchestrator__V1__TaskProgress *out);
void taskpb_free(struct taskpb *b);

#endif
