/*
 * store_cost: drives the real SQLite store (lib/store_sqlite.c) the way the
 * scheduler does under steady load, for bench/store_cost.sh, which counts
 * its instructions with callgrind and its system calls with strace.
 *
 *   store_cost DIR [TASKS [WARMUP [PER_TURN [PAYLOAD_BYTES]]]]
 *
 * Every turn puts PER_TURN (5) new tasks, marks them RUNNING in the same
 * batch (a submit assigned in the turn it arrives), marks the previous
 * turn's tasks COMPLETED with a small output, and flushes once. Each task
 * carries PAYLOAD_BYTES (32) of payload. WARMUP
 * (1,000) tasks run first, then TASKS (5,000) through measured(), the only
 * function callgrind is told to count. DIR (a fresh
 * data dir) is left behind for the caller to remove. Exits 0, or 1 with
 * the failing step on stderr.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h"
#include "log.h"
#include "store.h"
#include "task.h"

#define T0 1700000000000LL
#define OUTPUT "fedcba9876543210fedcba9876543210"

static int per_turn = 5;
static uint8_t *payload;
static size_t payload_len = 32;
static struct task **prev; /* the last turn's tasks, RUNNING */
static int nprev;
static int64_t clock_ms = T0;

static void die(const char *step, int err)
{
	fprintf(stderr, "store_cost: %s: %s\n", step, err_str(err));
	exit(1);
}

static void turn(struct store *s)
{
	struct task *fresh[per_turn];
	struct task_ev assign = {.worker_id = "w1"};
	struct task_ev result = {.worker_id = "w1", .output = OUTPUT, .output_len = sizeof OUTPUT - 1};
	int err;
	clock_ms++;
	for (int i = 0; i < per_turn; i++) {
		struct task *t = task_new(NULL, "echo", clock_ms);
		task_set_bytes(&t->payload, &t->payload_len, payload, payload_len);
		if ((err = store_put(s, t)) < 0)
			die("put", err);
		task_transition(t, TASK_EV_ASSIGN, &assign, clock_ms);
		if ((err = store_update(s, t)) < 0)
			die("update RUNNING", err);
		fresh[i] = t;
	}
	for (int i = 0; i < nprev; i++) {
		task_transition(prev[i], TASK_EV_COMPLETE, &result, clock_ms);
		if ((err = store_update(s, prev[i])) < 0)
			die("update COMPLETED", err);
		task_del(prev[i]);
	}
	if ((err = store_flush(s)) < 0)
		die("flush", err);
	for (int i = 0; i < per_turn; i++)
		prev[i] = fresh[i];
	nprev = per_turn;
}

/* Never inlined nor merged with another function, so that callgrind can
 * count it alone (--toggle-collect=measured). */
__attribute__((noipa)) static void measured(struct store *s, int turns)
{
	for (int i = 0; i < turns; i++)
		turn(s);
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 6) {
		fprintf(stderr, "usage: store_cost DIR [TASKS [WARMUP [PER_TURN [PAYLOAD_BYTES]]]]\n");
		return 2;
	}
	int tasks = argc > 2 ? atoi(argv[2]) : 5000;
	int warm = argc > 3 ? atoi(argv[3]) : 1000;
	if (argc > 4)
		per_turn = atoi(argv[4]);
	if (argc > 5)
		payload_len = strtoul(argv[5], NULL, 10);
	if (tasks < 0 || warm < 0 || per_turn < 1) {
		fprintf(stderr, "store_cost: counts must not be negative, PER_TURN at least 1\n");
		return 2;
	}
	log_set_level(LOG_ERROR);
	prev = calloc((size_t)per_turn, sizeof *prev);
	payload = malloc(payload_len + 1);
	for (size_t i = 0; i < payload_len; i++)
		payload[i] = (uint8_t)('a' + i % 26);
	struct store *s;
	int err = store_open_sqlite(argv[1], NULL, &s);
	if (err < 0)
		die("open", err);
	for (int i = 0; i < warm / per_turn; i++)
		turn(s);
	measured(s, tasks / per_turn);
	for (int i = 0; i < nprev; i++)
		task_del(prev[i]);
	store_del(s);
	free(prev);
	free(payload);
	return 0;
}
