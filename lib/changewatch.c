/*
 * Change watches (zkc_watch): tell a user that a few nodes may have changed,
 * for as long as they want, across connection drops and session losses.
 *
 * WHAT IT WATCHES. A recipe names up to ZKC__CW_MAX_TARGETS nodes: a node's
 * children (a lock's queue, a SKU's queue) or the node itself (a SKU record,
 * a semaphore's lease count). Each target keeps one one-shot watch cell
 * (watch.c) armed by a read: getChildren for children, exists for a node
 * (which also arms on a missing node, so its creation fires). A children
 * target whose node is missing is armed with exists instead until the node
 * appears, then with getChildren again.
 *
 * WHY NO DATA IN THE CALLBACK. The watch only says "read again"; the reader
 * uses the recipe's own read (zkc_lock_contenders, zkc_inventory_stock). A
 * CHANGED call is queued only once every target is armed again, so a read
 * started from it is ordered after the arming read on the same session and
 * sees every change before it; any later change fires a watch and gives
 * another call. Calls are coalesced: one CHANGED pending at a time.
 *
 * SESSIONS. SUSPENDED is passed on (what the user read may be stale).
 * RECONNECTED: the same session, and the server re-sends our watches, but a
 * read that failed meanwhile left its target unarmed: re-arm what is not,
 * and report CHANGED in any case (re-read; a change may have come while we
 * could not hear it). LOST: the old session's cells will never fire; report
 * LOST, re-arm every target on the next session (the reads park until it is
 * up), then CHANGED. A read that failed on connection trouble is retried by a
 * timer and on the next session event; one refused for good (no read
 * permission) ends the watch with that error.
 *
 * STOPPING EXACTLY. The user's calls go through one embedded dispatch job and
 * a bitmask of pending events; the final STOPPED call is delivered by that
 * job once the engine has ended the watch and no read carrying one of its
 * cells is still out, so nothing on the engine refers to it afterwards.
 * zkc_watch_stop marks the watch stopped under its mutex first (a job that has
 * not started yet delivers nothing else) and, off the dispatch thread, waits
 * for STOPPED to return. The watch is freed by whichever of the user's stop and
 * the delivered STOPPED comes last (two references).
 */
#include "internal.h"
#include "changewatch.h"

#include <stdlib.h>
#include <string.h>

#define CW_RETRY_MS 1000 /* re-arm after a read failed on connection trouble */

enum { EV_CHANGED = 1, EV_SUSPENDED = 2, EV_LOST = 4 };

typedef struct cw_target {
    zkc_watch *w;
    char *path;
    int children;
    int missing;       /* children target whose node is missing: armed by exists */
    zkc__watch *cell;  /* the cell of the last read (armed, or its read out) */
    int reading;       /* a read carrying cell is out */
    int again;         /* read again when it returns (the session changed) */
    int armed;
} cw_target;

struct zkc_watch {
    zkc__object obj;
    zkc__sess_listener sl;
    zkc_client *c;
    zkc_watch_fn fn;
    void *ud;
    int refs;          /* atomic: the user's (until zkc_watch_stop) + the delivery's (until STOPPED) */
    int n;
    cw_target t[ZKC__CW_MAX_TARGETS];
    /* engine */
    int linked;
    int ended;
    int final_status;
    int final_queued;
    int dirty;         /* a CHANGED is owed once every target is armed */
    zkc__timer retry;
    /* shared with the dispatch thread and zkc_watch_stop, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    zkc__job job;
    int job_queued;
    int events;        /* EV_* pending */
    int final_pending; /* STOPPED is to be delivered by the job */
    int api_stopped;   /* zkc_watch_stop was called: deliver nothing but STOPPED */
    int final_done;    /* STOPPED has returned */
};

static void cw_free(zkc_watch *w)
{
    zkc_client *c = w->c;
    for (int i = 0; i < w->n; i++)
        free(w->t[i].path);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
    zkc__client_unref(c);
}

static void cw_unref(zkc_watch *w)
{
    if (zkc__ref_put(&w->refs))
        cw_free(w);
}

/* ---------------------------------------------------------------- dispatch */

static void cw_job(zkc__job *j)
{
    zkc_watch *w = ZKC__CONTAINER_OF(j, zkc_watch, job);
    pthread_mutex_lock(&w->mu);
    int ev = w->events, fin = w->final_pending, stopped = w->api_stopped;
    w->events = 0;
    w->job_queued = 0;
    pthread_mutex_unlock(&w->mu);
    if (!fin && !stopped) {
        /* LOST and SUSPENDED first: the CHANGED after them says the view is good again. */
        if (ev & EV_LOST)
            w->fn(w, ZKC_WATCH_LOST, ZKC_ESESSIONLOST, w->ud);
        if (ev & EV_SUSPENDED)
            w->fn(w, ZKC_WATCH_SUSPENDED, 0, w->ud);
        if (ev & EV_CHANGED)
            w->fn(w, ZKC_WATCH_CHANGED, 0, w->ud);
    }
    if (!fin)
        return;
    zkc__set_errmsg(w->final_status ? zkc_strerror(w->final_status) : "");
    w->fn(w, ZKC_WATCH_STOPPED, w->final_status, w->ud);
    pthread_mutex_lock(&w->mu);
    w->final_done = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    cw_unref(w);
}

/* Engine: queue events for the user (the job at most once at a time). */
static void cw_post(zkc_watch *w, int events, int final)
{
    pthread_mutex_lock(&w->mu);
    w->events |= events;
    if (final)
        w->final_pending = 1;
    int queue = !w->job_queued;
    w->job_queued = 1;
    pthread_mutex_unlock(&w->mu);
    if (queue)
        zkc__dispatch(w->c, &w->job);
}

/* ---------------------------------------------------------------- engine */

static void cw_arm(cw_target *t);

static int cw_reads_out(const zkc_watch *w)
{
    for (int i = 0; i < w->n; i++)
        if (w->t[i].reading)
            return 1;
    return 0;
}

/* Ended and nothing of ours still out: STOPPED may go. */
static void cw_maybe_final(zkc_watch *w)
{
    if (w->ended && !w->final_queued && !cw_reads_out(w)) {
        w->final_queued = 1;
        cw_post(w, 0, 1);
    }
}

static void cw_end(zkc_watch *w, int status)
{
    if (w->ended)
        return;
    w->ended = 1;
    w->final_status = status;
    zkc__timer_disarm(w->c, &w->retry);
    if (w->linked) {
        zkc__sess_unlisten(w->c, &w->sl);
        zkc__object_unlink(w->c, &w->obj);
        w->linked = 0;
    }
    for (int i = 0; i < w->n; i++) {
        /* A cell whose read is out is settled by that read (r->watch NULL). */
        zkc__watch_drop(w->t[i].cell);
        w->t[i].cell = NULL;
        w->t[i].armed = 0;
    }
    cw_maybe_final(w);
}

static void cw_report_if_ready(zkc_watch *w)
{
    if (w->ended || !w->dirty)
        return;
    for (int i = 0; i < w->n; i++)
        if (!w->t[i].armed || w->t[i].reading)
            return;
    w->dirty = 0;
    cw_post(w, EV_CHANGED, 0);
}

static void cw_fired(zkc__watch *cell, int event)
{
    ZKC__UNUSED(event);
    cw_target *t = cell->ctx;
    /* The cell is freed when we return (watch.h). */
    t->cell = NULL;
    t->armed = 0;
    t->w->dirty = 1;
    cw_arm(t);
}

static int cw_transient(int zrc)
{
    return zrc == ZR_CONNLOSS || zrc == ZR_OPTIMEOUT || zrc == ZR_NOTSENT || zrc == ZR_SESSIONLOST ||
           zrc == ZR_SESSIONEXPIRED || zrc == ZR_SESSIONMOVED || zrc == ZR_INVALIDSTATE || zrc == ZR_CLOSING;
}

static void cw_read_done(zkc__req *r)
{
    cw_target *t = r->ctx;
    zkc_watch *w = t->w;
    t->reading = 0;
    if (w->ended) {
        zkc__watch_drop(r->watch); /* NULL when cw_end dropped it already */
        cw_maybe_final(w);
        return;
    }
    /* exists arms on a missing node too; getChildren does not. */
    int by_exists = !t->children || t->missing;
    int ok = r->rc == ZR_OK || (by_exists && r->rc == ZR_NONODE);
    if (t->again || !ok) {
        zkc__watch_drop(r->watch);
        t->cell = NULL;
    }
    if (t->again) {
        t->again = 0;
        cw_arm(t);
        return;
    }
    if (!ok && t->children && !t->missing && r->rc == ZR_NONODE) {
        t->missing = 1; /* no node, no children watch: watch for its creation */
        cw_arm(t);
        return;
    }
    if (!ok && cw_transient(r->rc)) {
        zkc__timer_arm(w->c, &w->retry, zkc__now_ms() + CW_RETRY_MS);
        return;
    }
    if (!ok) {
        cw_end(w, zkc__map_zrc(r->rc));
        return;
    }
    if (t->missing && r->rc == ZR_OK) {
        /* The node appeared before our exists: list its children now. */
        zkc__watch_drop(r->watch);
        t->cell = NULL;
        t->missing = 0;
        w->dirty = 1;
        cw_arm(t);
        return;
    }
    t->armed = 1;
    cw_report_if_ready(w);
}

static void cw_arm(cw_target *t)
{
    zkc_watch *w = t->w;
    if (w->ended)
        return;
    if (t->reading) {
        t->again = 1;
        return;
    }
    zkc__watch_drop(t->cell);
    t->armed = 0;
    t->cell = zkc__watch_new(w->c, cw_fired, t);
    if (!t->cell) {
        cw_end(w, ZKC_ENOMEM);
        return;
    }
    t->reading = 1;
    if (t->children && !t->missing)
        zkc__children(w->c, t->path, t->cell, cw_read_done, t);
    else
        zkc__exists(w->c, t->path, t->cell, cw_read_done, t);
}

static void cw_arm_unarmed(zkc_watch *w)
{
    for (int i = 0; i < w->n; i++)
        if (!w->t[i].armed && !w->t[i].reading)
            cw_arm(&w->t[i]);
}

static void cw_retry_fired(zkc__timer *tm)
{
    zkc_watch *w = ZKC__CONTAINER_OF(tm, zkc_watch, retry);
    cw_arm_unarmed(w);
}

static void cw_session(zkc__sess_listener *sl, zkc_state st, uint64_t gen)
{
    ZKC__UNUSED(gen);
    zkc_watch *w = ZKC__CONTAINER_OF(sl, zkc_watch, sl);
    switch ((int)st) {
    case ZKC_STATE_SUSPENDED:
        cw_post(w, EV_SUSPENDED, 0);
        break;
    case ZKC_STATE_RECONNECTED:
        pthread_mutex_lock(&w->mu);
        w->events &= ~EV_SUSPENDED; /* not told yet: no longer true */
        pthread_mutex_unlock(&w->mu);
        w->dirty = 1;
        cw_arm_unarmed(w);
        cw_report_if_ready(w);
        break;
    case ZKC_STATE_LOST:
        pthread_mutex_lock(&w->mu);
        w->events &= ~EV_SUSPENDED;
        pthread_mutex_unlock(&w->mu);
        cw_post(w, EV_LOST, 0);
        /* The old session's cells never fire: arm new ones on the next. */
        w->dirty = 1;
        for (int i = 0; i < w->n; i++)
            cw_arm(&w->t[i]);
        break;
    case ZKC_STATE_CONNECTED:
        cw_arm_unarmed(w);
        break;
    default:
        break;
    }
}

static void cw_shutdown(zkc__object *o)
{
    cw_end(ZKC__CONTAINER_OF(o, zkc_watch, obj), ZKC_ECANCELED);
}

static void cw_start_task(void *arg)
{
    zkc_watch *w = arg;
    if (w->c->closing) {
        cw_end(w, ZKC_ECANCELED);
        return;
    }
    zkc__object_link(w->c, &w->obj);
    zkc__sess_listen(w->c, &w->sl);
    w->linked = 1;
    w->dirty = 1; /* the first CHANGED: armed, read now */
    for (int i = 0; i < w->n; i++)
        cw_arm(&w->t[i]);
}

static void cw_stop_task(void *arg)
{
    zkc_watch *w = arg;
    cw_end(w, 0);
    cw_unref(w); /* the task's own reference */
}

/* ---------------------------------------------------------------- API */

int zkc__cw_start(zkc_client *c, const zkc__cw_target *targets, int n, zkc_watch_fn fn, void *ud,
                  zkc_watch **out, const char *fn_name)
{
    if (!out)
        return zkc__err(ZKC_EINVAL, "%s: the output pointer is NULL", fn_name);
    *out = NULL;
    if (!fn)
        return zkc__err(ZKC_EINVAL, "%s: the callback is NULL", fn_name);
    if (n < 1 || n > ZKC__CW_MAX_TARGETS)
        return zkc__err(ZKC_EINVAL, "%s: %d nodes to watch", fn_name, n);
    if (__atomic_load_n(&c->api_closing, __ATOMIC_ACQUIRE))
        return zkc__err(ZKC_ECLOSED, "the client is being destroyed");
    zkc_watch *w = calloc(1, sizeof *w);
    if (!w)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    w->c = c;
    w->fn = fn;
    w->ud = ud;
    w->refs = 2;
    w->n = n;
    w->obj.shutdown = cw_shutdown;
    w->sl.fn = cw_session;
    w->job.fn = cw_job;
    zkc__timer_init(&w->retry, cw_retry_fired);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    zkc__client_ref(c);
    for (int i = 0; i < n; i++) {
        w->t[i].w = w;
        w->t[i].children = targets[i].children;
        if (!(w->t[i].path = strdup(targets[i].path))) {
            cw_free(w);
            return zkc__err(ZKC_ENOMEM, "out of memory");
        }
    }
    int rc = zkc__post_call(c, cw_start_task, w);
    if (rc) {
        cw_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void zkc_watch_stop(zkc_watch *w)
{
    if (!w)
        return;
    zkc_client *c = w->c;
    pthread_mutex_lock(&w->mu);
    w->api_stopped = 1;
    pthread_mutex_unlock(&w->mu);
    /* Ended on the engine; once the client is closing, its shutdown ends it. */
    if (!__atomic_load_n(&c->api_closing, __ATOMIC_ACQUIRE)) {
        zkc__ref_get(&w->refs);
        if (zkc__post_call(c, cw_stop_task, w) != 0)
            abort(); /* out of memory: the watch could never end, and we would wait forever */
    }
    if (!zkc__on_dispatch(c) && !zkc__on_engine(c)) {
        pthread_mutex_lock(&w->mu);
        while (!w->final_done)
            pthread_cond_wait(&w->cv, &w->mu);
        pthread_mutex_unlock(&w->mu);
    }
    cw_unref(w);
}
