/* The engine (tasks and timers) and the dispatch thread (user callbacks).
 * One of each per client: recipes never need locks because all their state is
 * touched only by the engine, and user code never runs there.
 *
 * The engine is a role, held by one thread at a time (engine_busy, under qmu):
 * usually the engine thread, but when that thread is idle (nothing queued, not
 * running a batch) the thread that brings the engine its next event may run
 * it in place (zkc__engine_enter/leave): the ZooKeeper completion thread with
 * a reply, the caller of a blocking call with its operation's start. Each
 * hand-off to the engine thread costs a wake-up and a context switch, and an
 * uncontended lock cycle made about nine of them (issue 19: 24 voluntary
 * switches per cycle against the raw client's 10). Order is kept because the
 * role is only taken with the queue empty; user callbacks still run only on the
 * dispatch thread (the engine only queues them), and timers only fire on the
 * engine thread. Work that can close a ZooKeeper handle (whose close joins
 * that handle's completion thread) is never run in place: see req.c. */
#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static __thread zkc_client *tls_engine_of; /* the client whose engine role this thread holds */
static __thread zkc_client *tls_dispatch_of;
static __thread int tls_in_place;        /* this thread holds an engine role in place */
static __thread zkc__later *tls_later;   /* to run when it gives it up */

int64_t zkc__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int zkc__on_engine(zkc_client *c)
{
    return tls_engine_of == c;
}

int zkc__on_dispatch(zkc_client *c)
{
    return tls_dispatch_of == c;
}

void zkc__post(zkc_client *c, zkc__task *t)
{
    pthread_mutex_lock(&c->qmu);
    zkc__list_push_back(&c->tasks, &t->node);
    /* A busy engine looks at the queue again before it sleeps (the engine
     * thread at the end of its batch, a thread in place in zkc__engine_leave). */
    if (!c->engine_busy)
        pthread_cond_signal(&c->qcv);
    pthread_mutex_unlock(&c->qmu);
}

int zkc__engine_enter(zkc_client *c, zkc_client **saved)
{
    if (tls_engine_of == c)
        return 0; /* already the engine: queue behind the current task */
    pthread_mutex_lock(&c->qmu);
    int ok = c->threads_started && !c->engine_busy && !c->engine_stop && zkc__list_empty(&c->tasks);
    if (ok)
        c->engine_busy = 1;
    pthread_mutex_unlock(&c->qmu);
    if (!ok)
        return 0;
    *saved = tls_engine_of;
    tls_engine_of = c;
    tls_in_place++;
    return 1;
}

int zkc__engine_later(zkc__later *l)
{
    if (!tls_in_place)
        return 0;
    l->next = tls_later;
    tls_later = l;
    return 1;
}

void zkc__engine_leave(zkc_client *c, zkc_client *saved)
{
    tls_engine_of = saved;
    tls_in_place--;
    pthread_mutex_lock(&c->qmu);
    c->engine_busy = 0;
    /* Wake the engine thread only when it has something to do sooner than it
     * would wake by itself: tasks queued meanwhile, a timer armed earlier than
     * its sleep, or it is waiting for the role. */
    if (!zkc__list_empty(&c->tasks) || c->engine_sleep_due == INT64_MIN ||
        (c->nheap > 0 && c->heap[0]->due < c->engine_sleep_due))
        pthread_cond_signal(&c->qcv);
    pthread_mutex_unlock(&c->qmu);
    while (!tls_in_place && tls_later) {
        zkc__later *l = tls_later;
        tls_later = l->next;
        l->fn(l);
    }
}

typedef struct call_task {
    zkc__task t;
    void (*fn)(void *);
    void *arg;
} call_task;

static void run_call(zkc__task *t)
{
    call_task *ct = ZKC__CONTAINER_OF(t, call_task, t);
    ct->fn(ct->arg);
    free(ct);
}

int zkc__post_call(zkc_client *c, void (*fn)(void *arg), void *arg)
{
    call_task *ct = malloc(sizeof *ct);
    if (!ct)
        return zkc__err(ZKC_ENOMEM, "out of memory queueing work for the engine");
    ct->t.fn = run_call;
    ct->fn = fn;
    ct->arg = arg;
    zkc__post(c, &ct->t);
    return 0;
}

/* ---- timer heap (engine only) ---- */

void zkc__timer_init(zkc__timer *t, void (*fn)(zkc__timer *t))
{
    t->fn = fn;
    t->due = 0;
    t->index = -1;
}

static void heap_swap(zkc_client *c, int a, int b)
{
    zkc__timer *x = c->heap[a];
    c->heap[a] = c->heap[b];
    c->heap[b] = x;
    c->heap[a]->index = a;
    c->heap[b]->index = b;
}

static void heap_up(zkc_client *c, int i)
{
    while (i > 0) {
        int p = (i - 1) / 2;
        if (c->heap[p]->due <= c->heap[i]->due)
            break;
        heap_swap(c, p, i);
        i = p;
    }
}

static void heap_down(zkc_client *c, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < c->nheap && c->heap[l]->due < c->heap[m]->due)
            m = l;
        if (r < c->nheap && c->heap[r]->due < c->heap[m]->due)
            m = r;
        if (m == i)
            break;
        heap_swap(c, i, m);
        i = m;
    }
}

void zkc__timer_disarm(zkc_client *c, zkc__timer *t)
{
    int i = t->index;
    if (i < 0)
        return;
    int last = --c->nheap;
    if (i != last) {
        c->heap[i] = c->heap[last];
        c->heap[i]->index = i;
        heap_down(c, i);
        heap_up(c, i);
    }
    t->index = -1;
}

void zkc__timer_arm(zkc_client *c, zkc__timer *t, int64_t due_ms)
{
    zkc__timer_disarm(c, t);
    if (c->nheap == c->capheap) {
        int cap = c->capheap ? c->capheap * 2 : 64;
        zkc__timer **h = realloc(c->heap, (size_t)cap * sizeof *h);
        if (!h) {
            /* Timers bound every wait; losing one could hang a caller. The heap
             * only grows by doubling, so this is a real out-of-memory. */
            abort();
        }
        c->heap = h;
        c->capheap = cap;
    }
    t->due = due_ms;
    t->index = c->nheap;
    c->heap[c->nheap++] = t;
    heap_up(c, t->index);
}

/* ---- engine thread ---- */

static void *engine_main(void *arg)
{
    zkc_client *c = arg;
    tls_engine_of = c;
    pthread_mutex_lock(&c->qmu);
    for (;;) {
        /* At shutdown every timer fires at once: the operations behind them must
         * still complete (with ECANCELED), and nothing may wait on a clock any more.
         * engine_sleep_due says when this thread would wake by itself
         * (INT64_MIN: only when signalled; see zkc__engine_leave). */
        for (;;) {
            if (c->engine_busy) {
                /* Another thread runs the engine in place; the heap is its. */
                c->engine_sleep_due = INT64_MIN;
                pthread_cond_wait(&c->qcv, &c->qmu);
                continue;
            }
            if (!zkc__list_empty(&c->tasks) || c->engine_stop)
                break;
            if (c->nheap > 0) {
                int64_t due = c->heap[0]->due;
                if (due <= zkc__now_ms())
                    break;
                struct timespec ts = {.tv_sec = due / 1000, .tv_nsec = (due % 1000) * 1000000};
                c->engine_sleep_due = due;
                pthread_cond_timedwait(&c->qcv, &c->qmu, &ts);
            } else {
                c->engine_sleep_due = INT64_MAX;
                pthread_cond_wait(&c->qcv, &c->qmu);
            }
        }
        c->engine_sleep_due = INT64_MIN;
        if (c->engine_stop && zkc__list_empty(&c->tasks) && c->nheap == 0)
            break;
        zkc__list batch;
        zkc__list_take(&batch, &c->tasks);
        int stopping = c->engine_stop;
        c->engine_busy = 1;
        pthread_mutex_unlock(&c->qmu);
        zkc__list_node *n;
        while ((n = zkc__list_first(&batch)) != NULL) {
            zkc__list_remove(n); /* before it runs: it may post itself again */
            zkc__task *t = ZKC__CONTAINER_OF(n, zkc__task, node);
            t->fn(t);
        }
        int64_t now = stopping ? INT64_MAX : zkc__now_ms();
        while (c->nheap > 0 && c->heap[0]->due <= now) {
            zkc__timer *tm = c->heap[0];
            zkc__timer_disarm(c, tm);
            tm->fn(tm);
        }
        pthread_mutex_lock(&c->qmu);
        c->engine_busy = 0;
    }
    pthread_mutex_unlock(&c->qmu);
    return NULL;
}

/* ---- dispatch thread ---- */

void zkc__dispatch(zkc_client *c, zkc__job *j)
{
    pthread_mutex_lock(&c->dmu);
    zkc__list_push_back(&c->jobs, &j->node);
    pthread_cond_signal(&c->dcv);
    pthread_mutex_unlock(&c->dmu);
}

static void *dispatch_main(void *arg)
{
    zkc_client *c = arg;
    tls_dispatch_of = c;
    pthread_mutex_lock(&c->dmu);
    for (;;) {
        while (zkc__list_empty(&c->jobs) && !c->dispatch_stop)
            pthread_cond_wait(&c->dcv, &c->dmu);
        if (zkc__list_empty(&c->jobs) && c->dispatch_stop)
            break;
        zkc__list_node *n = zkc__list_first(&c->jobs);
        zkc__list_remove(n);
        zkc__job *j = ZKC__CONTAINER_OF(n, zkc__job, node);
        c->dispatch_busy = 1;
        pthread_mutex_unlock(&c->dmu);
        ZKC__STAT_INC(c, callbacks);
        j->fn(j);
        pthread_mutex_lock(&c->dmu);
        c->dispatch_busy = 0;
        pthread_cond_broadcast(&c->dcv);
    }
    pthread_mutex_unlock(&c->dmu);
    return NULL;
}

int zkc__loop_start(zkc_client *c)
{
    zkc__list_init(&c->tasks);
    zkc__list_init(&c->jobs);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&c->qmu, NULL);
    pthread_cond_init(&c->qcv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&c->dmu, NULL);
    pthread_cond_init(&c->dcv, NULL);
    c->engine_sleep_due = INT64_MIN;
    if (pthread_create(&c->engine_thread, NULL, engine_main, c) != 0)
        return zkc__err(ZKC_ENOMEM, "cannot start the engine thread: %s", strerror(errno));
    if (pthread_create(&c->dispatch_thread, NULL, dispatch_main, c) != 0) {
        pthread_mutex_lock(&c->qmu);
        c->engine_stop = 1;
        pthread_cond_signal(&c->qcv);
        pthread_mutex_unlock(&c->qmu);
        pthread_join(c->engine_thread, NULL);
        return zkc__err(ZKC_ENOMEM, "cannot start the dispatch thread: %s", strerror(errno));
    }
    c->threads_started = 1;
    return 0;
}

/* Called after the engine has cancelled everything: lets the engine drain the
 * tasks that cancellation produced, then the dispatch thread run the callbacks
 * that came out of them. */
void zkc__loop_stop(zkc_client *c)
{
    if (!c->threads_started)
        return;
    pthread_mutex_lock(&c->qmu);
    c->engine_stop = 1;
    pthread_cond_signal(&c->qcv);
    pthread_mutex_unlock(&c->qmu);
    pthread_join(c->engine_thread, NULL);
    pthread_mutex_lock(&c->dmu);
    c->dispatch_stop = 1;
    pthread_cond_signal(&c->dcv);
    pthread_mutex_unlock(&c->dmu);
    pthread_join(c->dispatch_thread, NULL);
    free(c->heap);
    c->heap = NULL;
    c->threads_started = 0;
}
