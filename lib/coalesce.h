/*
 * coalesce: a one-slot mailbox between a fast producer and a slow consumer
 * of a stream in which only the latest message matters (task progress).
 * While the consumer cannot take more, each new message replaces the one
 * waiting (latest wins), so a stream never holds more than one message
 * here, however far the consumer falls behind. A message marked final (a
 * task's last update, carrying its result) is never replaced: a later
 * non-final one is dropped instead.
 *
 * The module owns the waiting message and the consumer's writability. It
 * does no I/O: it hands messages to a send callback (rpc_call_send fits)
 * and is told when the consumer drained (coalesce_writable). It does not
 * own the stream's end: the caller ends the stream once coalesce_pending()
 * says nothing waits.
 */
#ifndef ORCHD_COALESCE_H
#define ORCHD_COALESCE_H

#include <stddef.h>
#include <stdint.h>

/* Send callback results besides errors; the same values as rpc_call_send's
 * RPC_SEND_OK and RPC_SEND_FULL, with E_AGAIN (error.h) for "not taken". */
enum { COALESCE_SENT = 0, COALESCE_SENT_FULL = 1 };

/*
 * Hands msg (borrowed for the call) to the consumer. Returns COALESCE_SENT
 * when taken; COALESCE_SENT_FULL when taken but the consumer wants no more
 * until coalesce_writable(); E_AGAIN when not taken because the consumer is
 * full; any other negative error when the consumer is gone.
 */
typedef int (*coalesce_send_cb)(const void *msg, size_t len, void *arg);

struct coalesce {
	coalesce_send_cb send;
	void *arg;
	uint8_t *buf; /* the waiting message, len bytes of cap */
	size_t len, cap;
	unsigned has : 1;     /* a message waits in buf */
	unsigned final : 1;   /* ... and it is final */
	unsigned blocked : 1; /* the consumer said full; wait for writable */
	/* Counters for logs and tests. */
	uint64_t sent;     /* messages the consumer took */
	uint64_t replaced; /* waiting messages overwritten by a newer one */
	uint64_t dropped;  /* non-final messages refused behind a final one */
};

/* Initialises c (embedded) to send through send(…, arg); arg borrowed. */
void coalesce_init(struct coalesce *c, coalesce_send_cb send, void *arg);
/* Frees the waiting message, if any. */
void coalesce_free(struct coalesce *c);

/*
 * Offers msg (copied when kept). With nothing waiting and the consumer not
 * full, it is sent at once; otherwise it becomes the waiting message,
 * replacing a waiting non-final one. A non-final msg behind a waiting
 * final one is dropped. Returns 0, or the send callback's error other than
 * E_AGAIN (the consumer is gone; msg is then discarded).
 */
int coalesce_offer(struct coalesce *c, const void *msg, size_t len, int final);

/* The consumer drained: sends the waiting message, if any. Returns 0 or the
 * send callback's error other than E_AGAIN. */
int coalesce_writable(struct coalesce *c);

/* Returns 1 while a message waits for the consumer, else 0. */
int coalesce_pending(const struct coalesce *c);

#endif
