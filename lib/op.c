/* Operations: what a user call becomes. Each completes exactly once (its
 * callback on the dispatch thread, or its blocking caller woken); a blocking
 * call is the async one plus a wait. */
#include "internal.h"
#include "opwatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int zkc__check_blocking(zkc_client *c)
{
    if (zkc__on_engine(c))
        return zkc__err(ZKC_EDEADLK, "blocking zkcoord call from the client's engine thread (e.g. from the log "
                                     "function); use the _async form");
    return 0;
}

static void op_job(zkc__job *j)
{
    zkc__op *op = ZKC__CONTAINER_OF(j, zkc__op, job);
    zkc__set_errmsg(op->status ? op->msg : "");
    op->invoke(op);
    op->release(op);
}

/* A semaphore rather than a mutex and condition: a caller woken while the
 * waker still held the mutex went back to sleep on it (half a context switch
 * per blocking call, counted). glibc's sem_post touches nothing of the
 * semaphore once the waiter can see it posted, so the caller may return (and
 * its stack frame go) as soon as sem_wait does. */
static void waiter_wake(zkc__later *l)
{
    zkc__waiter *w = ZKC__CONTAINER_OF(l, zkc__waiter, wake);
    sem_post(&w->done);
}

int zkc__op_finish(zkc__op *op, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = zkc__op_vfinish(op, status, fmt, ap);
    va_end(ap);
    return r;
}

int zkc__op_vfinish(zkc__op *op, int status, const char *fmt, va_list ap)
{
    if (op->finished)
        return 0;
    op->finished = 1;
    zkc__opwatch_finish(op);
    zkc__metrics_end(op->c, &op->ms, status);
    op->status = status;
    if (fmt) {
        vsnprintf(op->msg, sizeof op->msg, fmt, ap);
    } else {
        snprintf(op->msg, sizeof op->msg, "%s", zkc_strerror(status));
    }
    if (op->waiter) {
        zkc__waiter *w = op->waiter;
        w->wake.fn = waiter_wake;
        if (!zkc__engine_later(&w->wake))
            waiter_wake(&w->wake);
    } else {
        op->job.fn = op_job;
        zkc__dispatch(op->c, &op->job);
    }
    return 1;
}

static void op_start_task(zkc__task *t)
{
    zkc__op *op = ZKC__CONTAINER_OF(t, zkc__op, task);
    if (op->c->closing) {
        zkc__op_finish(op, ZKC_ECLOSED, "the client is being destroyed");
        return;
    }
    op->start(op);
}

int zkc__op_run(zkc__op *op, void (*start)(zkc__op *op), int blocking)
{
    zkc_client *c = op->c;
    op->start = start;
    op->task.fn = op_start_task;
    if (__atomic_load_n(&c->api_closing, __ATOMIC_ACQUIRE)) {
        if (!blocking)
            op->release(op);
        op->status = ZKC_ECLOSED;
        return zkc__err(ZKC_ECLOSED, "the client is being destroyed");
    }
    if (!blocking) {
        op->waiter = NULL;
        zkc__opwatch_submit(op);
        zkc__metrics_begin(c, &op->ms);
        zkc__post(c, &op->task);
        return 0;
    }
    int rc = zkc__check_blocking(c);
    if (rc) {
        op->status = rc;
        return rc;
    }
    zkc__waiter w;
    sem_init(&w.done, 0, 0);
    op->waiter = &w;
    zkc__opwatch_submit(op);
    zkc__metrics_begin(c, &op->ms);
    /* The caller sleeps until the engine finishes this anyway: when the engine
     * is idle, start the operation here rather than wake the engine thread
     * for it (loop.c). The start only sends requests and arms timers; what
     * follows runs on the engine. */
    zkc_client *saved;
    if (zkc__engine_enter(c, &saved)) {
        op_start_task(&op->task);
        zkc__engine_leave(c, saved);
    } else {
        zkc__post(c, &op->task);
    }
    while (sem_wait(&w.done) != 0)
        ; /* EINTR: a signal handler ran */
    sem_destroy(&w.done);
    zkc__set_errmsg(op->status ? op->msg : "");
    return op->status;
}

typedef struct call_op {
    zkc__op op;
    void *ctx;
} call_op;

static void call_nothing(zkc__op *op)
{
    ZKC__UNUSED(op);
}

void *zkc__call_ctx(zkc__op *op)
{
    return ZKC__CONTAINER_OF(op, call_op, op)->ctx;
}

int zkc__call_run(zkc_client *c, void (*start)(zkc__op *op), void *ctx)
{
    call_op k;
    memset(&k, 0, sizeof k);
    k.op.c = c;
    k.op.invoke = call_nothing;
    k.op.release = call_nothing;
    k.ctx = ctx;
    return zkc__op_run(&k.op, start, 1);
}

zkc__op *zkc__opq_first(const zkc__list *q)
{
    zkc__list_node *n = zkc__list_first(q);
    return n ? ZKC__CONTAINER_OF(n, zkc__op, queued) : NULL;
}

void zkc__opq_fail_all(zkc__list *q, int status, const char *msg)
{
    zkc__op *op;
    while ((op = zkc__opq_first(q)) != NULL) {
        zkc__list_remove(&op->queued);
        zkc__op_finish(op, status, "%s", msg);
    }
}
