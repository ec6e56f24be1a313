/*
 * Rate limiter: at most `permits` per fixed window of the servers' clock, over
 * every process. One counter node (the public counter recipe, so its CAS loop,
 * exactly-once writes and formats are reused) holds window index and permits
 * used in that window: value = window << 24 | used. A process takes `batch`
 * permits at a time with a compare-and-set and hands them out locally; ZooKeeper
 * sees one write per batch. Windows only move forward: a process whose clock
 * estimate is behind adopts the stored window. Local permits of a past window
 * lapse (the limit can be under-used, never exceeded, within a fixed window).
 *
 * The servers' clock: the mtime the leader stamps on a node we write, kept as an
 * offset from our monotonic clock and refreshed every minute.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USED_BITS 24
#define USED_MASK ((INT64_C(1) << USED_BITS) - 1)

typedef struct rl_wait rl_wait;
struct rl_wait {
    zkc__op op;
    zkc_ratelimit *rl;
    int64_t n;
    int64_t deadline; /* 0: try once; INT64_MAX: forever */
    zkc_ratelimit_cb cb;
    void *ud;
    rl_wait *next;
};

struct zkc_ratelimit {
    zkc_client *c;
    zkc_counter *ctr;
    char *clock_path;
    int64_t permits;
    int64_t window_ms;
    int64_t batch;
    /* engine only */
    int64_t clock_offset; /* server ms - monotonic ms */
    int64_t clock_at;     /* monotonic ms of the last sync; 0 never */
    int64_t window;       /* window of the local permits */
    int64_t local;        /* permits taken from the shared window, not yet handed out */
    int64_t stored;       /* last known counter value */
    int busy;             /* a clock sync or take is in flight */
    rl_wait *head, *tail;
    zkc__timer timer;
    int refs;             /* atomic */
    int destroyed;
};

static void rl_unref(zkc_ratelimit *rl)
{
    if (__atomic_sub_fetch(&rl->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        zkc_client *c = rl->c;
        zkc_counter_destroy(rl->ctr);
        free(rl->clock_path);
        free(rl);
        zkc__client_unref(c);
    }
}

static void pump(zkc_ratelimit *rl);

static int64_t server_now(zkc_ratelimit *rl)
{
    return zkc__now_ms() + rl->clock_offset;
}

static void clock_done(zkc__req *r)
{
    zkc_ratelimit *rl = r->ctx;
    rl->busy = 0;
    if (r->rc == ZR_OK) {
        /* The leader stamped mtime while our request was in flight: half the
         * round trip is the best estimate of when. */
        int64_t sent = (int64_t)r->tag;
        int64_t mid = sent + (zkc__now_ms() - sent) / 2;
        rl->clock_offset = r->stat.mtime - mid;
        rl->clock_at = zkc__now_ms();
    } else if (r->rc == ZR_NONODE || (r->rc == ZR_NODEEXISTS && r->kind == ZKC_REQ_CREATE)) {
        /* Missing: create it; created by another client meanwhile: touch it. */
        zkc__req *q = r->rc == ZR_NONODE ? zkc__create(r->c, rl->clock_path, "", 0, 0, clock_done, rl)
                                         : zkc__set(r->c, rl->clock_path, "", 0, -1, clock_done, rl);
        q->tag = (uint64_t)zkc__now_ms();
        rl->busy = 1;
        return;
    } else {
        /* No clock: every waiter fails now rather than guessing windows. */
        while (rl->head) {
            rl_wait *w = rl->head;
            rl->head = w->next;
            zkc__op_finish(&w->op, zkc__map_zrc(r->rc == ZR_NOTSENT ? ZR_CONNLOSS : r->rc),
                           "rate limiter: cannot read the servers' clock: %s", zkc__zrc_name(r->rc));
        }
        rl->tail = NULL;
        rl_unref(rl);
        return;
    }
    pump(rl);
    rl_unref(rl);
}

typedef struct take_ctx {
    zkc_ratelimit *rl;
    int64_t window, want, expect, value;
} take_ctx;

static void take_done_engine(void *arg);

static void take_cb(zkc_counter *ctr, int status, const zkc_counter_result *res, void *ud)
{
    take_ctx *t = ud;
    ZKC__UNUSED(ctr);
    /* Dispatch thread: carry the result back to the engine. */
    t->expect = status;
    t->value = status == 0 || status == ZKC_EMISMATCH ? res->before : 0;
    if (status == 0)
        t->value = res->after;
    if (zkc__post_call(t->rl->c, take_done_engine, t) != 0) {
        /* cannot happen short of ENOMEM; the waiters' deadlines still end them */
        free(t);
    }
}

static void take_done_engine(void *arg)
{
    take_ctx *t = arg;
    zkc_ratelimit *rl = t->rl;
    int status = (int)t->expect;
    rl->busy = 0;
    if (status == 0) {
        rl->stored = t->value;
        if (t->window == rl->window)
            rl->local += t->want;
        else if (t->window > rl->window) {
            rl->window = t->window;
            rl->local = t->want;
        }
    } else if (status == ZKC_EMISMATCH) {
        rl->stored = t->value; /* someone else took some: recompute from theirs */
    } else {
        while (rl->head) {
            rl_wait *w = rl->head;
            rl->head = w->next;
            zkc__op_finish(&w->op, status, "rate limiter %s: %s", zkc_counter_path(rl->ctr), zkc_strerror(status));
        }
        rl->tail = NULL;
    }
    free(t);
    pump(rl);
    rl_unref(rl);
}

static void timer_fired(zkc__timer *tm)
{
    zkc_ratelimit *rl = ZKC__CONTAINER_OF(tm, zkc_ratelimit, timer);
    pump(rl);
}

/* Serve waiters in order; take more permits when the local ones run out. */
static void pump(zkc_ratelimit *rl)
{
    zkc_client *c = rl->c;
    if (rl->busy)
        return;
    int64_t now = zkc__now_ms();
    while (rl->head) {
        rl_wait *w = rl->head;
        if (c->closing || rl->destroyed) {
            rl->head = w->next;
            zkc__op_finish(&w->op, ZKC_ECANCELED, "rate limiter destroyed");
            continue;
        }
        if (rl->clock_at == 0 || now - rl->clock_at > 60000) {
            rl->busy = 1;
            __atomic_add_fetch(&rl->refs, 1, __ATOMIC_ACQ_REL);
            zkc__set(c, rl->clock_path, "", 0, -1, clock_done, rl)->tag = (uint64_t)now;
            return;
        }
        int64_t win = server_now(rl) / rl->window_ms;
        int64_t stored_win = rl->stored >> USED_BITS;
        if (stored_win > win)
            win = stored_win; /* another process's clock is ahead: follow it */
        if (win != rl->window) {
            rl->window = win;
            rl->local = 0; /* permits of a past window lapse */
        }
        if (rl->local >= w->n) {
            rl->local -= w->n;
            rl->head = w->next;
            zkc__op_finish(&w->op, 0, NULL);
            continue;
        }
        int64_t used = stored_win == win ? (rl->stored & USED_MASK) : 0;
        int64_t room = rl->permits - used;
        int64_t want = rl->batch > w->n - rl->local ? rl->batch : w->n - rl->local;
        if (want > room)
            want = room;
        if (want >= w->n - rl->local && want > 0) {
            take_ctx *t = calloc(1, sizeof *t);
            if (!t)
                return;
            t->rl = rl;
            t->window = win;
            t->want = want;
            rl->busy = 1;
            __atomic_add_fetch(&rl->refs, 1, __ATOMIC_ACQ_REL);
            int64_t next = (win << USED_BITS) | (used + want);
            if (zkc_counter_cas_async(rl->ctr, rl->stored, next, take_cb, t) != 0) {
                rl->busy = 0;
                free(t);
                rl_unref(rl);
                zkc__op_finish(&w->op, ZKC_ESERVER, "rate limiter: %s", zkc_errmsg());
                rl->head = w->next;
                continue;
            }
            return;
        }
        /* This window cannot serve the head waiter: wait for the next one. */
        int64_t next_start = (win + 1) * rl->window_ms - rl->clock_offset;
        if (w->deadline != INT64_MAX && (w->deadline == 0 || w->deadline < next_start)) {
            rl->head = w->next;
            zkc__op_finish(&w->op, ZKC_ETIMEDOUT,
                           "rate limiter %s: %" PRId64 " permit(s) not available in this window of %" PRId64 " ms",
                           zkc_counter_path(rl->ctr), w->n, rl->window_ms);
            continue;
        }
        zkc__timer_arm(c, &rl->timer, next_start);
        return;
    }
    if (!rl->head)
        rl->tail = NULL;
}

static void wait_start(zkc__op *op)
{
    rl_wait *w = ZKC__CONTAINER_OF(op, rl_wait, op);
    zkc_ratelimit *rl = w->rl;
    w->next = NULL;
    if (rl->tail)
        rl->tail->next = w;
    else
        rl->head = w;
    rl->tail = w;
    pump(rl);
}

static void wait_invoke(zkc__op *op)
{
    rl_wait *w = ZKC__CONTAINER_OF(op, rl_wait, op);
    if (w->cb)
        w->cb(w->rl, op->status, w->ud);
}

static void wait_release(zkc__op *op)
{
    rl_wait *w = ZKC__CONTAINER_OF(op, rl_wait, op);
    zkc_ratelimit *rl = w->rl;
    free(w);
    rl_unref(rl);
}

static int submit(zkc_ratelimit *rl, int64_t n, int timeout_ms, zkc_ratelimit_cb cb, void *ud, int blocking)
{
    if (!rl)
        return zkc__err(ZKC_EINVAL, "rate limiter is NULL");
    if (n <= 0 || n > rl->permits)
        return zkc__err(ZKC_EINVAL, "rate limiter: %" PRId64 " permits requested; 1..%" PRId64 " allowed", n,
                        rl->permits);
    if (timeout_ms < 0 && timeout_ms != ZKC_FOREVER)
        return zkc__err(ZKC_EINVAL, "rate limiter: negative timeout");
    if (!blocking && !cb)
        return zkc__err(ZKC_EINVAL, "rate limiter: callback is NULL");
    rl_wait *w = calloc(1, sizeof *w);
    if (!w)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    w->op.c = rl->c;
    w->op.invoke = wait_invoke;
    w->op.release = wait_release;
    w->rl = rl;
    w->n = n;
    w->deadline = timeout_ms == ZKC_FOREVER ? INT64_MAX : timeout_ms == 0 ? 0 : zkc__now_ms() + timeout_ms;
    w->cb = cb;
    w->ud = ud;
    __atomic_add_fetch(&rl->refs, 1, __ATOMIC_ACQ_REL);
    int rc = zkc__op_run(&w->op, wait_start, blocking);
    if (blocking)
        w->op.release(&w->op);
    return rc;
}

int zkc_ratelimit_acquire(zkc_ratelimit *rl, int64_t n, int timeout_ms)
{
    return submit(rl, n, timeout_ms, NULL, NULL, 1);
}

int zkc_ratelimit_acquire_async(zkc_ratelimit *rl, int64_t n, int timeout_ms, zkc_ratelimit_cb cb, void *ud)
{
    return submit(rl, n, timeout_ms, cb, ud, 0);
}

int zkc_ratelimit_create(zkc_client *c, const char *path, int64_t permits, int window_ms, int batch,
                         zkc_ratelimit **out)
{
    if (!out)
        return zkc__err(ZKC_EINVAL, "zkc_ratelimit_create: out is NULL");
    *out = NULL;
    if (!c)
        return zkc__err(ZKC_EINVAL, "zkc_ratelimit_create: client is NULL");
    int rc = zkc__path_check(path, "rate limiter path");
    if (rc)
        return rc;
    if (permits < 1 || permits > USED_MASK)
        return zkc__err(ZKC_EINVAL, "rate limiter: permits must be 1..%" PRId64, (int64_t)USED_MASK);
    if (window_ms < 10)
        return zkc__err(ZKC_EINVAL, "rate limiter: window of %d ms is below the 10 ms minimum", window_ms);
    if (batch < 1)
        batch = 1;
    zkc_ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    size_t n = strlen(path) + 8;
    rl->clock_path = malloc(n);
    if (!rl->clock_path) {
        free(rl);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    /* A sibling node we touch to read the servers' clock; writing the counter
     * itself would do, but the counter recipe does not hand out stats. */
    snprintf(rl->clock_path, n, "%s-clock", path);
    zkc_counter_options o;
    zkc_counter_options_init(&o);
    o.no_combine = 1;
    o.max_attempts = 1000;
    if ((rc = zkc_counter_create(c, path, &o, &rl->ctr)) != 0) {
        free(rl->clock_path);
        free(rl);
        return rc;
    }
    rl->c = c;
    rl->permits = permits;
    rl->window_ms = window_ms;
    rl->batch = batch > permits ? permits : batch;
    rl->window = -1;
    rl->refs = 1;
    zkc__timer_init(&rl->timer, timer_fired);
    zkc__client_ref(c);
    /* Adding 0 creates the node and its parents (so the clock node has a
     * parent) and tells us the stored value. */
    zkc_counter_result r0;
    if ((rc = zkc_counter_add(rl->ctr, 0, NULL, &r0)) != 0) {
        rl_unref(rl);
        return rc;
    }
    rl->stored = r0.after;
    *out = rl;
    return 0;
}

static void destroy_task(void *arg)
{
    zkc_ratelimit *rl = arg;
    rl->destroyed = 1;
    zkc__timer_disarm(rl->c, &rl->timer);
    pump(rl);
    rl_unref(rl);
}

void zkc_ratelimit_destroy(zkc_ratelimit *rl)
{
    if (!rl)
        return;
    if (__atomic_load_n(&rl->c->api_closing, __ATOMIC_ACQUIRE) || zkc__post_call(rl->c, destroy_task, rl) != 0)
        rl_unref(rl);
}
