/*
 * The servers' clock, one estimator per client (a singleton of object.c's
 * registry), for whatever needs the servers' time rather than ours: the rate
 * limiter's windows and slots, the cutoff of admin cleanup, the expiry of the
 * inventory's reservations.
 *
 * A SAMPLE is the reply to a write of ours: the leader stamps the write's
 * mtime with its clock when it orders the write, which happens after we sent
 * it (`sent`, our monotonic clock) and before its reply reached us (`recv`).
 * So at recv the servers' clock read somewhere in [mtime, mtime + (recv -
 * sent)], and we keep the middle: offset = mtime - (sent + recv) / 2, the
 * servers' clock minus our monotonic clock. What the estimate promises:
 *   - ERROR BOUND: half the sample's round trip (zkc__clock_rtt_ms / 2), plus
 *     the drift between the two clocks since the sample (ppm: milliseconds a
 *     minute at worst, hence a new sample every minute for those who keep
 *     using the estimate).
 *   - NEVER BACKWARD: a later sample can move the offset down; the estimate
 *     handed out is never lower than an earlier one (it waits for the new
 *     offset to catch up instead), so windows and slots only move forward.
 *   - LOWER BOUND on demand: zkc__clock_sync's at_least is a mtime, a time the
 *     servers' clock has certainly reached, with no estimate in it. Cleanup and
 *     reap decide with it ("older than now - retention" must never hold early);
 *     a touch shared by several callers only makes it earlier, which is the
 *     safe side.
 * Among samples, the one with the shortest round trip wins while it is less
 * than a minute old (a retried or slow write makes a poor sample); after that
 * the newest replaces it. Time is the leader's: a new leader's clock may
 * differ, and the next sample follows it (forward only, as above).
 *
 * The node touched for a sample is <meta_root>/clock, one per client space:
 * an empty write, idempotent, so it is sent again after a connection loss
 * within the operation timeout like a read. Any other write's reply can be a
 * sample too (zkc__clock_sample): reap's write of the inventory root is.
 */
#include "clock.h"

#include "internal.h"

#include <stdlib.h>
#include <time.h>

/* A sample older than this is replaced by the next one, however slow. */
#define REFRESH_MS 60000

typedef struct clock_wait {
    zkc__list_node node;
    zkc__clock_done done;
    void *arg;
} clock_wait;

typedef struct zclock {
    zkc__singleton single;
    zkc_client *c;
    char *path;          /* <meta_root>/clock */
    int have;            /* a sample is in use */
    int64_t offset_ms;   /* servers' ms - our monotonic ms */
    int64_t rtt_ms;      /* its round trip */
    int64_t at_ms;       /* our monotonic ms when it came */
    int64_t mtime;       /* its stamp */
    int64_t seen_ms;     /* our monotonic ms of the latest sample (kept or not) */
    int64_t last_us;     /* the highest estimate handed out */
    int busy;            /* a touch is in flight */
    zkc__list waiters;   /* clock_wait: for the touch in flight */
} zclock;

static const char clock_key; /* its address names the clock among a client's singletons */

/* No waiter is left by then: a touch's completion runs even at shutdown
 * (ZR_CLOSING) and ends them all. */
static void clock_free(zkc__singleton *s)
{
    zclock *k = ZKC__CONTAINER_OF(s, zclock, single);
    free(k->path);
    free(k);
}

/* Engine: the client's clock, made on first use; aborts when out of memory
 * (like a request: an operation waiting on it would be stranded). */
static int clock_make(void *state, zkc_client *c)
{
    zclock *k = state;
    k->c = c;
    zkc__list_init(&k->waiters);
    return (k->path = zkc__path_join(c->meta_root, "clock")) ? 0 : -1;
}

static zclock *clock_of(zkc_client *c)
{
    zclock *k = ZKC__SINGLETON(c, &clock_key, zclock, single, clock_make, clock_free);
    if (!k)
        abort();
    return k;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t zkc__clock_sample(zkc_client *c, int64_t sent_ms, const zkc__stat *st)
{
    zclock *k = clock_of(c);
    int64_t now = zkc__now_ms();
    int64_t rtt = now - sent_ms;
    k->seen_ms = now;
    if (!k->have || rtt <= k->rtt_ms || now - k->at_ms > REFRESH_MS) {
        k->offset_ms = st->mtime - (sent_ms + rtt / 2);
        k->rtt_ms = rtt;
        k->at_ms = now;
        k->mtime = st->mtime;
        k->have = 1;
    }
    return st->mtime;
}

int zkc__clock_fresh(zkc_client *c, int64_t max_age_ms)
{
    zclock *k = clock_of(c);
    return k->have && zkc__now_ms() - k->seen_ms < max_age_ms;
}

static void touch(zclock *k);

static void touch_finish(zclock *k, int zrc, int64_t at_least)
{
    k->busy = 0;
    zkc__list_node *n;
    while ((n = zkc__list_first(&k->waiters)) != NULL) {
        clock_wait *w = ZKC__CONTAINER_OF(n, clock_wait, node);
        zkc__list_remove(n);
        zkc__clock_done done = w->done;
        void *arg = w->arg;
        free(w);
        done(arg, zrc, at_least);
    }
}

static void made_done(void *arg, int rc)
{
    zclock *k = arg;
    if (rc == ZR_OK)
        touch(k);
    else
        touch_finish(k, rc, 0);
}

static void touch_done(zkc__req *r)
{
    zclock *k = r->ctx;
    if (r->rc == ZR_NONODE) {
        /* First use in this client space: make the node (and its parents). */
        zkc__mkpath(r->c, k->path, made_done, k);
        return;
    }
    if (r->rc != ZR_OK) {
        int rc = r->rc;
        /* Parked past the deadline, or its session gone, after an earlier
         * attempt was sent: that one may have been applied. */
        if ((rc == ZR_NOTSENT || rc == ZR_SESSIONLOST) && r->sent)
            rc = ZR_CONNLOSS;
        touch_finish(k, rc, 0);
        return;
    }
    touch_finish(k, ZR_OK, zkc__clock_sample(r->c, (int64_t)r->tag, &r->stat));
}

static void touch(zclock *k)
{
    zkc__req *r = zkc__set(k->c, k->path, "", 0, -1, touch_done, k);
    r->tag = (uint64_t)zkc__now_ms();
    r->safe = 1; /* an empty unconditional write: repeating it changes nothing */
}

void zkc__clock_sync(zkc_client *c, int64_t max_age_ms, zkc__clock_done done, void *arg)
{
    zclock *k = clock_of(c);
    if (max_age_ms > 0 && zkc__clock_fresh(c, max_age_ms)) {
        done(arg, ZR_OK, k->mtime);
        return;
    }
    clock_wait *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    w->done = done;
    w->arg = arg;
    zkc__list_push_back(&k->waiters, &w->node);
    if (!k->busy) {
        k->busy = 1;
        touch(k);
    }
}

int64_t zkc__clock_now_us(zkc_client *c)
{
    zclock *k = clock_of(c);
    int64_t us = mono_us() + k->offset_ms * 1000;
    if (us < k->last_us)
        us = k->last_us; /* a later sample moved the offset down: wait for it */
    k->last_us = us;
    return us;
}

int64_t zkc__clock_now_ms(zkc_client *c)
{
    return zkc__clock_now_us(c) / 1000;
}

int64_t zkc__clock_mono_at_ms(zkc_client *c, int64_t ms)
{
    return ms - clock_of(c)->offset_ms;
}

int64_t zkc__clock_mono_at_us(zkc_client *c, int64_t us)
{
    return zkc__clock_mono_at_ms(c, (us + 999) / 1000);
}

int64_t zkc__clock_rtt_ms(zkc_client *c)
{
    return clock_of(c)->rtt_ms;
}
