/* Operations (op.c): what a user call becomes; completes exactly once. */
#ifndef ZKC_OP_H
#define ZKC_OP_H

#include "list.h"
#include "loop.h"
#include "metrics.h"
#include "util.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>

/* A blocking call's rendezvous; lives on the caller's stack. */
typedef struct zkc__waiter {
    sem_t done; /* posted once, when the op is finished */
    zkc__later wake; /* the wake-up, deferred to the end of an in-place engine run */
} zkc__waiter;

/* One user-visible operation: completes exactly once. Embedded in the recipe's
 * own operation struct. */
typedef struct zkc__op zkc__op;
struct zkc__op {
    zkc_client *c;
    zkc__task task;                      /* carries start() to the engine */
    void (*start)(zkc__op *op);          /* engine: begin the work */
    zkc__job job;
    int status;
    int finished;
    zkc__waiter *waiter;                 /* blocking call, or NULL */
    void (*invoke)(zkc__op *op);         /* dispatch: call the user's callback */
    void (*release)(zkc__op *op);        /* free the containing struct */
    zkc__list_node queued;               /* in its recipe's queue of waiting ops, if any */
    char msg[256];
    zkc__mstamp ms;                      /* metrics: tagged by the recipe, or not counted */
};

/* Engine: a recipe's FIFO of ops waiting their turn (rate limiter, id
 * generator), linked by op->queued. The first, or NULL; and ending them all
 * with one status and message. */
zkc__op *zkc__opq_first(const zkc__list *q);
void zkc__opq_fail_all(zkc__list *q, int status, const char *msg);

/* Engine: complete op once (later calls are ignored, returns 0 then). msg may
 * be NULL (then zkc_strerror(status) is used). */
int zkc__op_finish(zkc__op *op, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
int zkc__op_vfinish(zkc__op *op, int status, const char *fmt, va_list ap) ZKC__PRINTF(3, 0);
/* Submit `start(op)` to the engine and, for a blocking call, wait for the op.
 * Async: returns 0 or a refusal; either way the op is no longer the caller's
 * (a refused one is released here, its callback never runs). Blocking: returns
 * the op status (zkc_errmsg set), and the caller always frees the op with
 * op->release after reading its results, refused or not. */
int zkc__op_run(zkc__op *op, void (*start)(zkc__op *op), int blocking);
/* A blocking call whose only result is its status (cancel, release, register
 * an object): start(op) runs on the engine and finishes op once; the op lives
 * on the caller's stack, so it holds no reference: the caller's own use of
 * the object keeps it alive until the call returns. */
int zkc__call_run(zkc_client *c, void (*start)(zkc__op *op), void *ctx);
/* Engine: the ctx given to zkc__call_run. */
void *zkc__call_ctx(zkc__op *op);
/* Any thread: refuse blocking calls where they would deadlock. */
int zkc__check_blocking(zkc_client *c);

#endif
