/* Operations: what a user call becomes. Each completes exactly once (its
 * callback on the dispatch thread, or its blocking caller woken); a blocking
 * call is the async one plus a wait. */
#include "internal.h"
#include "opwatch.h"

#include <stdio.h>
#include <stdlib.h>

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
    op->status = status;
    if (fmt) {
        vsnprintf(op->msg, sizeof op->msg, fmt, ap);
    } else {
        snprintf(op->msg, sizeof op->msg, "%s", zkc_strerror(status));
    }
    if (op->waiter) {
        zkc__waiter *w = op->waiter;
        pthread_mutex_lock(&w->mu);
        w->done = 1;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
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
        zkc__post(c, &op->task);
        return 0;
    }
    int rc = zkc__check_blocking(c);
    if (rc) {
        op->status = rc;
        return rc;
    }
    zkc__waiter w;
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    w.done = 0;
    op->waiter = &w;
    zkc__opwatch_submit(op);
    zkc__post(c, &op->task);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    zkc__set_errmsg(op->status ? op->msg : "");
    return op->status;
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
