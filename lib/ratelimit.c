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
 * HARD MODE (no boundary burst): a generic cell rate algorithm on the same
 * counter node. Each permit owns a slot of T = window / permits microseconds
 * of the servers' clock; the node holds the end of the last slot anyone took
 * (the theoretical arrival time, TAT, in microseconds). A process reserves a
 * run of `batch` slots [S, S + batch*T) with one compare-and-set of TAT, where
 * S = max(TAT, now + lead) (lead: a round trip, so the first slot has not
 * passed when the reply comes), and runs the same algorithm locally over its
 * run: n permits at time t take the slots [max(r, t), max(r, t) + n*T) (r:
 * the end of our last local grant) if they end by the run's end and no later
 * than t + burst*T; slots passed unused lapse. A run too short for the next
 * grant is extended (same compare-and-set) while TAT is still its end, so a
 * grant that must start exactly at a slot (burst == n) and is woken a moment
 * late is not lost for good. Slots of all processes are
 * disjoint (TAT only moves forward, by compare-and-set), and every slot granted
 * at t lies within [t, t + burst*T]; so the grants of any interval [a, b] lie
 * in [a, b + burst*T] and number at most (b - a)/T + burst. That holds on the
 * servers' clock as each process estimates it; against any one clock, widen
 * the interval by the estimates' errors.
 *
 * A grant tells where its permits count (zkc_ratelimit_acquire_at): the
 * start of its first slot (HARD), the start of its window (fixed). These are
 * the coordinates of the bound, exactly: slots are disjoint whatever the
 * clocks, so any window_ms of slot starts holds at most `permits` of them
 * (the chaos suite checks that over every grant of every process).
 *
 * The servers' clock: the client's estimate (clock.c: within half a round trip,
 * never backward), refreshed every minute while the limiter is used.
 */
#include "clock.h"
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define USED_BITS 24
#define USED_MASK ((INT64_C(1) << USED_BITS) - 1)

typedef struct rl_wait rl_wait;
struct rl_wait {
    zkc__op op;
    zkc_ratelimit *rl;
    int64_t n;
    int64_t deadline; /* 0: try once; INT64_MAX: forever */
    int64_t at_us;    /* granted: the servers' instant the permits count at */
    zkc_ratelimit_cb cb;
    zkc_ratelimit_at_cb at_cb;
    void *ud;
};

struct zkc_ratelimit {
    zkc_client *c;
    zkc_counter *ctr;
    int64_t permits;
    int64_t window_ms;
    int64_t batch;
    /* engine only */
    int64_t window;       /* window of the local permits */
    int64_t local;        /* permits taken from the shared window, not yet handed out */
    int64_t stored;       /* last known counter value */
    /* HARD mode (engine only), microseconds of the servers' clock */
    int hard;
    int64_t slot_us;      /* T */
    int64_t burst;
    int64_t run_at, run_end; /* our reserved slots not yet granted: [run_at, run_end) */
    int64_t rtt_ms;       /* recent write round trip (smoothed): the lead of a reservation */
    int busy;             /* a clock sync or take is in flight */
    zkc__list waiters;    /* rl_wait (by op.queued), served in order */
    zkc__timer timer;
    int refs;             /* atomic */
    int destroyed;
};

static void rl_unref(zkc_ratelimit *rl)
{
    if (zkc__ref_put(&rl->refs)) {
        zkc_client *c = rl->c;
        zkc_counter_destroy(rl->ctr);
        free(rl);
        zkc__client_unref(c);
    }
}

static void pump(zkc_ratelimit *rl);

/* The first waiter, or NULL. */
static rl_wait *head(zkc_ratelimit *rl)
{
    zkc__op *op = zkc__opq_first(&rl->waiters);
    return op ? ZKC__CONTAINER_OF(op, rl_wait, op) : NULL;
}

/* The servers' clock, estimated (clock.c); in ms, in microseconds, and our
 * monotonic ms at which it reads `us`. */
static int64_t server_now(zkc_ratelimit *rl)
{
    return zkc__clock_now_ms(rl->c);
}

static int64_t server_now_us(zkc_ratelimit *rl)
{
    return zkc__clock_now_us(rl->c);
}

static int64_t mono_at_us(zkc_ratelimit *rl, int64_t us)
{
    return zkc__clock_mono_at_us(rl->c, us);
}

static void clock_done(void *arg, int zrc, int64_t at_least)
{
    zkc_ratelimit *rl = arg;
    ZKC__UNUSED(at_least);
    rl->busy = 0;
    if (zrc == ZR_OK) {
        if (rl->rtt_ms == 0)
            rl->rtt_ms = zkc__clock_rtt_ms(rl->c);
    } else {
        /* No clock: every waiter fails now rather than guessing windows. */
        char msg[128];
        snprintf(msg, sizeof msg, "rate limiter: cannot read the servers' clock: %s", zkc__zrc_name(zrc));
        zkc__opq_fail_all(&rl->waiters, zkc__map_zrc(zrc == ZR_NOTSENT ? ZR_CONNLOSS : zrc), msg);
        rl_unref(rl);
        return;
    }
    pump(rl);
    rl_unref(rl);
}

typedef struct take_ctx {
    zkc_ratelimit *rl;
    int64_t window, want, expect, value;
    int64_t run_at, run_end; /* HARD: the slots this write reserves */
    int64_t sent_ms;
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
    if (rl->hard && (status == 0 || status == ZKC_EMISMATCH)) {
        int64_t rtt = zkc__now_ms() - t->sent_ms;
        rl->rtt_ms = rl->rtt_ms ? (3 * rl->rtt_ms + rtt) / 4 : rtt;
    }
    if (status == 0 && rl->hard) {
        rl->stored = t->value;
        rl->run_at = t->run_at;
        rl->run_end = t->run_end;
    } else if (status == 0) {
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
        char msg[512];
        snprintf(msg, sizeof msg, "rate limiter %s: %s", zkc_counter_path(rl->ctr), zkc_strerror(status));
        zkc__opq_fail_all(&rl->waiters, status, msg);
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

/* Send one compare-and-set of the shared node (expect -> next); the reply
 * comes back through take_cb. 0 sent, else the waiter has been failed. */
static int send_take(zkc_ratelimit *rl, rl_wait *w, take_ctx *t, int64_t expect, int64_t next)
{
    t->rl = rl;
    t->sent_ms = zkc__now_ms();
    rl->busy = 1;
    zkc__ref_get(&rl->refs);
    if (zkc_counter_cas_async(rl->ctr, expect, next, take_cb, t) == 0)
        return 0;
    rl->busy = 0;
    free(t);
    rl_unref(rl);
    zkc__list_remove(&w->op.queued);
    zkc__op_finish(&w->op, ZKC_ESERVER, "rate limiter: %s", zkc_errmsg());
    return -1;
}

/* The head waiter cannot be served before `due_ms` (monotonic): wait for it,
 * or end the waiter if its deadline comes first. 1: the waiter ended. */
static int wait_until(zkc_ratelimit *rl, rl_wait *w, int64_t due_ms, const char *why)
{
    if (w->deadline != INT64_MAX && (w->deadline == 0 || w->deadline < due_ms)) {
        zkc__list_remove(&w->op.queued);
        zkc__op_finish(&w->op, ZKC_ETIMEDOUT, "rate limiter %s: %" PRId64 " permit(s) %s", zkc_counter_path(rl->ctr),
                       w->n, why);
        return 1;
    }
    zkc__timer_arm(rl->c, &rl->timer, due_ms);
    return 0;
}

enum { SERVED, STOP };

/* Fixed window: the head waiter from the local permits, or take a batch. */
static int serve_fixed(zkc_ratelimit *rl, rl_wait *w)
{
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
        w->at_us = rl->window * rl->window_ms * 1000;
        zkc__list_remove(&w->op.queued);
        zkc__op_finish(&w->op, 0, NULL);
        return SERVED;
    }
    int64_t used = stored_win == win ? (rl->stored & USED_MASK) : 0;
    int64_t room = rl->permits - used;
    int64_t want = rl->batch > w->n - rl->local ? rl->batch : w->n - rl->local;
    if (want > room)
        want = room;
    if (want >= w->n - rl->local && want > 0) {
        take_ctx *t = calloc(1, sizeof *t);
        if (!t)
            return STOP;
        t->window = win;
        t->want = want;
        return send_take(rl, w, t, rl->stored, (win << USED_BITS) | (used + want)) == 0 ? STOP : SERVED;
    }
    /* This window cannot serve the head waiter: wait for the next one. */
    char why[96];
    snprintf(why, sizeof why, "not available in this window of %" PRId64 " ms", rl->window_ms);
    return wait_until(rl, w, zkc__clock_mono_at_ms(rl->c, (win + 1) * rl->window_ms), why) ? SERVED : STOP;
}

/* HARD (GCRA, see the top): the head waiter from our reserved slots, or
 * reserve a run of them. */
static int serve_hard(zkc_ratelimit *rl, rl_wait *w)
{
    int64_t now = server_now_us(rl);
    int64_t need = w->n * rl->slot_us, tol = rl->burst * rl->slot_us;
    int64_t from = rl->run_at > now ? rl->run_at : now;
    if (from + need <= rl->run_end) {
        if (from + need - now <= tol) {
            rl->run_at = from + need;
            w->at_us = from;
            zkc__list_remove(&w->op.queued);
            zkc__op_finish(&w->op, 0, NULL);
            return SERVED;
        }
        return wait_until(rl, w, mono_at_us(rl, from + need - tol), "not available before the timeout") ? SERVED
                                                                                                       : STOP;
    }
    /* Our run cannot serve it (what is left of it lapses): reserve slots after
     * the shared TAT, far enough ahead to be unspent when the reply comes. */
    int64_t lead = (rl->rtt_ms * 3 / 2 + 1) * 1000;
    if (rl->stored > now + tol + rl->batch * rl->slot_us + INT64_C(86400000000)) {
        zkc__list_remove(&w->op.queued);
        zkc__op_finish(&w->op, ZKC_ECONFIG,
                       "rate limiter %s: the stored value is not a hard-mode arrival time (a day ahead of the "
                       "servers' clock): is the path used by a fixed-window limiter?",
                       zkc_counter_path(rl->ctr));
        return SERVED;
    }
    int64_t k = rl->batch > w->n ? rl->batch : w->n;
    take_ctx *t;
    if (rl->stored == rl->run_end && rl->run_end > now) {
        /* Nobody reserved after us and our run has slots left, too few (a
         * timer fires a little after a slot's start, and when burst == n a
         * grant fits only at that instant): extend the run, keep them. */
        if (!(t = calloc(1, sizeof *t)))
            return STOP;
        t->run_at = rl->run_at;
        t->run_end = rl->run_end + k * rl->slot_us;
        return send_take(rl, w, t, rl->stored, t->run_end) == 0 ? STOP : SERVED;
    }
    int64_t at = rl->stored > now + lead ? rl->stored : now + lead;
    if (at + need - (now + lead) > tol)
        return wait_until(rl, w, mono_at_us(rl, at + need - tol - lead), "not available before the timeout") ? SERVED
                                                                                                            : STOP;
    if (!(t = calloc(1, sizeof *t)))
        return STOP;
    t->run_at = at;
    t->run_end = at + k * rl->slot_us;
    return send_take(rl, w, t, rl->stored, t->run_end) == 0 ? STOP : SERVED;
}

/* Serve waiters in order; take more permits when the local ones run out. */
static void pump(zkc_ratelimit *rl)
{
    zkc_client *c = rl->c;
    if (rl->busy)
        return;
    rl_wait *w;
    while ((w = head(rl)) != NULL) {
        if (c->closing || rl->destroyed) {
            zkc__list_remove(&w->op.queued);
            zkc__op_finish(&w->op, ZKC_ECANCELED, "rate limiter destroyed");
            continue;
        }
        if (!zkc__clock_fresh(c, 60000)) {
            rl->busy = 1;
            zkc__ref_get(&rl->refs);
            zkc__clock_sync(c, 60000, clock_done, rl);
            return;
        }
        if ((rl->hard ? serve_hard(rl, w) : serve_fixed(rl, w)) == STOP)
            return;
    }
}

static void wait_start(zkc__op *op)
{
    rl_wait *w = ZKC__CONTAINER_OF(op, rl_wait, op);
    zkc_ratelimit *rl = w->rl;
    zkc__list_push_back(&rl->waiters, &w->op.queued);
    pump(rl);
}

static void wait_invoke(zkc__op *op)
{
    rl_wait *w = ZKC__CONTAINER_OF(op, rl_wait, op);
    if (w->at_cb)
        w->at_cb(w->rl, op->status, op->status == 0 ? w->at_us : 0, w->ud);
    else if (w->cb)
        w->cb(w->rl, op->status, w->ud);
}

static void wait_release(zkc__op *op)
{
    rl_wait *w = ZKC__CONTAINER_OF(op, rl_wait, op);
    zkc_ratelimit *rl = w->rl;
    free(w);
    rl_unref(rl);
}

static int submit(zkc_ratelimit *rl, int64_t n, int timeout_ms, zkc_ratelimit_cb cb, zkc_ratelimit_at_cb at_cb,
                  void *ud, int64_t *at_us)
{
    int blocking = !cb && !at_cb;
    if (at_us)
        *at_us = 0;
    if (!rl)
        return zkc__err(ZKC_EINVAL, "rate limiter is NULL");
    int64_t most = rl->hard ? rl->burst : rl->permits;
    if (n <= 0 || n > most)
        return zkc__err(ZKC_EINVAL, "rate limiter: %" PRId64 " permits requested; 1..%" PRId64 " allowed%s", n, most,
                        rl->hard ? " (the burst size)" : "");
    if (timeout_ms < 0 && timeout_ms != ZKC_FOREVER)
        return zkc__err(ZKC_EINVAL, "rate limiter: negative timeout");
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
    w->at_cb = at_cb;
    w->ud = ud;
    zkc__ref_get(&rl->refs);
    zkc__metrics_tag(&w->op.ms, rl->c, ZKC_MK_RATELIMIT, ZKC__MH_NONE, zkc_counter_path(rl->ctr));
    int rc = zkc__op_run(&w->op, wait_start, blocking);
    if (blocking) {
        if (rc == 0 && at_us)
            *at_us = w->at_us;
        w->op.release(&w->op);
    }
    return rc;
}

int zkc_ratelimit_acquire(zkc_ratelimit *rl, int64_t n, int timeout_ms)
{
    return submit(rl, n, timeout_ms, NULL, NULL, NULL, NULL);
}

int zkc_ratelimit_acquire_async(zkc_ratelimit *rl, int64_t n, int timeout_ms, zkc_ratelimit_cb cb, void *ud)
{
    if (!cb)
        return zkc__err(ZKC_EINVAL, "rate limiter: callback is NULL");
    return submit(rl, n, timeout_ms, cb, NULL, ud, NULL);
}

int zkc_ratelimit_acquire_at(zkc_ratelimit *rl, int64_t n, int timeout_ms, int64_t *at_us)
{
    return submit(rl, n, timeout_ms, NULL, NULL, NULL, at_us);
}

int zkc_ratelimit_acquire_at_async(zkc_ratelimit *rl, int64_t n, int timeout_ms, zkc_ratelimit_at_cb cb, void *ud)
{
    if (!cb)
        return zkc__err(ZKC_EINVAL, "rate limiter: callback is NULL");
    return submit(rl, n, timeout_ms, NULL, cb, ud, NULL);
}

void zkc_ratelimit_options_init(zkc_ratelimit_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->mode = ZKC_RL_HARD;
    o->batch = 1;
    o->burst = 1;
}

int zkc_ratelimit_create(zkc_client *c, const char *path, int64_t permits, int window_ms, int batch,
                         zkc_ratelimit **out)
{
    zkc_ratelimit_options o;
    zkc_ratelimit_options_init(&o);
    o.mode = ZKC_RL_FIXED_WINDOW;
    o.permits = permits;
    o.window_ms = window_ms;
    o.batch = batch;
    return zkc_ratelimit_create_opts(c, path, &o, out);
}

int zkc_ratelimit_create_opts(zkc_client *c, const char *path, const zkc_ratelimit_options *o,
                              zkc_ratelimit **out)
{
    if (!out)
        return zkc__err(ZKC_EINVAL, "zkc_ratelimit_create: out is NULL");
    *out = NULL;
    if (!c)
        return zkc__err(ZKC_EINVAL, "zkc_ratelimit_create: client is NULL");
    if (!o)
        return zkc__err(ZKC_EINVAL, "zkc_ratelimit_create_opts: options are NULL");
    int rc = zkc__path_check(path, "rate limiter path");
    if (rc)
        return rc;
    int hard = o->mode == ZKC_RL_HARD;
    if (!hard && o->mode != ZKC_RL_FIXED_WINDOW)
        return zkc__err(ZKC_EINVAL, "rate limiter: unknown mode %d", (int)o->mode);
    int64_t permits = o->permits;
    if (permits < 1 || permits > USED_MASK)
        return zkc__err(ZKC_EINVAL, "rate limiter: permits must be 1..%" PRId64, (int64_t)USED_MASK);
    if (o->window_ms < 10)
        return zkc__err(ZKC_EINVAL, "rate limiter: window of %d ms is below the 10 ms minimum", o->window_ms);
    /* T rounded up: the rate is never above permits per window. */
    int64_t slot_us = ((int64_t)o->window_ms * 1000 + permits - 1) / permits;
    if (hard && (o->burst < 1 || o->burst > permits))
        return zkc__err(ZKC_EINVAL, "rate limiter: burst of %" PRId64 "; 1..%" PRId64 " (the permits) allowed",
                        o->burst, permits);
    int batch = o->batch < 1 ? 1 : o->batch;
    zkc_ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    zkc_counter_options co;
    zkc_counter_options_init(&co);
    co.no_combine = 1;
    co.max_attempts = 1000;
    if ((rc = zkc_counter_create(c, path, &co, &rl->ctr)) != 0) {
        free(rl);
        return rc;
    }
    rl->c = c;
    rl->permits = permits;
    rl->window_ms = o->window_ms;
    rl->batch = batch > permits ? permits : batch;
    rl->hard = hard;
    rl->slot_us = slot_us;
    rl->burst = o->burst;
    rl->window = -1;
    rl->refs = 1;
    zkc__list_init(&rl->waiters);
    zkc__timer_init(&rl->timer, timer_fired);
    zkc__client_ref(c);
    /* Adding 0 creates the node and its parents and tells us the stored value. */
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
