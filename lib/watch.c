/* One-shot ZooKeeper watch cells: armed by a read (req.c), fired once on the
 * engine, and, when their owner loses interest first, dropped (the server-side
 * watch removed) or forgotten (the owner deletes the node itself), then
 * reclaimed by the client. Besides the session and req.c, the only file that
 * talks to libzookeeper_mt. */
#include "internal.h"
#include "zk.h"

#include <stdlib.h>
#include <string.h>

enum { W_IDLE = 0, W_ARMED, W_FIRED };

typedef struct watch_priv {
    int dropped;
    int pending; /* a read carrying this watch is in flight */
    int firing;
    int removing;
    int reclaiming; /* a reclaim task is queued: only it frees the cell */
    int forgotten;  /* dropped by zkc__watch_forget: its node's deletion fires it */
    int wtype; /* ZWATCHTYPE_DATA / ZWATCHTYPE_CHILD */
} watch_priv;

/* The private bits ride behind the public struct. */
typedef struct watch_cell {
    zkc__watch w;
    watch_priv p;
} watch_cell;

#define WP(x) (&ZKC__CONTAINER_OF(x, watch_cell, w)->p)
#define WATCH_OF(n) ZKC__CONTAINER_OF(n, zkc__watch, node)

zkc__watch *zkc__watch_new(zkc_client *c, void (*fn)(zkc__watch *, int), void *ctx)
{
    watch_cell *cell = calloc(1, sizeof *cell);
    if (!cell)
        return NULL;
    cell->w.fn = fn;
    cell->w.ctx = ctx;
    cell->w.c = c;
    cell->w.state = W_IDLE;
    zkc__list_push_front(&c->watches, &cell->w.node);
    return &cell->w;
}

static void watch_free(zkc__watch *w)
{
    zkc__list_remove(&w->node);
    free(w->path);
    free(ZKC__CONTAINER_OF(w, watch_cell, w));
}

static void remove_watch_done(int rc, const void *data);

typedef struct watch_event {
    zkc__task t;
    zkc__watch *w;
    int type;
    int rc;
} watch_event;

static void watch_event_task(zkc__task *t)
{
    watch_event *ev = ZKC__CONTAINER_OF(t, watch_event, t);
    zkc__watch *w = ev->w;
    int type = ev->type;
    free(ev);
    w->c->last_heard = zkc__now_ms();
    if (w->state != W_ARMED)
        return; /* a late duplicate; the cell is still ours */
    w->state = W_FIRED;
    watch_priv *p = WP(w);
    if (p->dropped) {
        if (!p->removing)
            watch_free(w);
        return;
    }
    int ev_code = type == ZOO_CREATED_EVENT ? ZW_CREATED
                  : type == ZOO_DELETED_EVENT ? ZW_DELETED
                  : type == ZOO_CHANGED_EVENT ? ZW_CHANGED
                                              : ZW_CHILD;
    p->firing = 1;
    w->fn(w, ev_code);
    /* One-shot: the owner was told and forgets the cell (see watch.h). */
    watch_free(w);
}

void zkc__watch_zk_cb(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    ZKC__UNUSED(zh);
    ZKC__UNUSED(state);
    ZKC__UNUSED(path);
    if (type == ZOO_SESSION_EVENT || type == ZOO_NOTWATCHING_EVENT)
        return; /* session changes arrive through the global watcher */
    zkc__watch *w = ctx;
    watch_event *ev = calloc(1, sizeof *ev);
    if (!ev)
        return; /* the owner's deadline still bounds its wait */
    ev->t.fn = watch_event_task;
    ev->w = w;
    ev->type = type;
    /* A node or children event closes nothing: run it in place when the
     * engine is idle (loop.c), as req.c does with plain replies. */
    zkc_client *c = w->c, *saved;
    if (zkc__engine_enter(c, &saved)) {
        watch_event_task(&ev->t);
        zkc__engine_leave(c, saved);
        return;
    }
    zkc__post(c, &ev->t);
}

static void reclaim_task(zkc__task *t)
{
    watch_event *ev = ZKC__CONTAINER_OF(t, watch_event, t);
    zkc__watch *w = ev->w;
    free(ev);
    watch_free(w);
}

/* A dropped cell whose session is closed: its handle will call nothing more,
 * but an event it posted before the close may still be queued behind us, and
 * that task reads the cell: free it from a task queued after them. Without an
 * engine (or memory for the task) client_free reclaims it. */
static void reclaim_later(zkc__watch *w)
{
    zkc_client *c = w->c;
    watch_priv *p = WP(w);
    w->state = W_IDLE; /* a queued event for it is ignored */
    if (p->removing || p->reclaiming)
        return; /* the removal's completion (or the task already queued) frees it */
    if (!c->threads_started) {
        watch_free(w);
        return;
    }
    watch_event *ev = calloc(1, sizeof *ev);
    if (!ev)
        return;
    p->reclaiming = 1;
    ev->t.fn = reclaim_task;
    ev->w = w;
    zkc__post(c, &ev->t);
}

static void remove_watch_task(zkc__task *t)
{
    watch_event *ev = ZKC__CONTAINER_OF(t, watch_event, t);
    zkc__watch *w = ev->w;
    int rc = ev->rc;
    free(ev);
    watch_priv *p = WP(w);
    p->removing = 0;
    if (rc == ZOK || rc == ZNOWATCHER) {
        /* Every local watcher of this type on the path is gone: reclaim the
         * other dropped cells that shared it. */
        zkc__list_node *n, *tmp;
        ZKC__LIST_FOREACH_SAFE(n, tmp, &w->c->watches)
        {
            zkc__watch *o = WATCH_OF(n);
            watch_priv *op = WP(o);
            if (o != w && op->dropped && !op->removing && !op->reclaiming && !op->firing && !op->pending &&
                o->gen == w->gen && op->wtype == p->wtype && o->path && strcmp(o->path, w->path) == 0)
                watch_free(o);
        }
    }
    /* Not ARMED: it fired, or its session was closed while we asked. */
    if (w->state != W_ARMED || rc == ZOK || rc == ZNOWATCHER) {
        watch_free(w);
        return;
    }
    /* Connection trouble: the client may still have it registered; it is
     * reclaimed when it fires or when its session is closed. */
}

static void remove_watch_done(int rc, const void *data)
{
    zkc__watch *w = (zkc__watch *)data;
    watch_event *ev = calloc(1, sizeof *ev);
    if (!ev)
        return;
    ev->t.fn = remove_watch_task;
    ev->w = w;
    ev->rc = rc;
    zkc__post(w->c, &ev->t);
}

/* libzookeeper's zoo_aremove_watches only sends a "check" and leaves the
 * watch on the server; only zoo_aremove_all_watches removes it there, and it
 * removes every watch of that type this session has on the path, locally too.
 * So: remove only when no cell still in use shares the path and type; else
 * leave ours armed (the shared server watch is needed anyway) and reclaim it
 * when it fires. */
static void send_remove(zkc__watch *w)
{
    watch_priv *p = WP(w);
    zkc_client *c = w->c;
    for (zkc__list_node *n = zkc__list_first(&c->watches); n; n = zkc__list_next(&c->watches, n)) {
        zkc__watch *o = WATCH_OF(n);
        watch_priv *op = WP(o);
        if (o != w && !op->dropped && o->gen == w->gen && op->wtype == p->wtype && o->path &&
            (o->state == W_ARMED || op->pending) && strcmp(o->path, w->path) == 0)
            return;
        if (o != w && op->removing && o->gen == w->gen && op->wtype == p->wtype && o->path &&
            strcmp(o->path, w->path) == 0)
            return; /* one removal for the path is already out; it reclaims us too */
    }
    p->removing = 1;
    ZKC__STAT_INC(c, requests[ZKC_REQ_REMOVE_WATCH]);
    int rc = zoo_aremove_all_watches(c->zh, w->path, (ZooWatcherType)p->wtype, 0,
                                     (void_completion_t *)(void *)remove_watch_done, w);
    if (rc != ZOK)
        p->removing = 0;
}

void zkc__watch_drop(zkc__watch *w)
{
    if (!w)
        return;
    watch_priv *p = WP(w);
    zkc_client *c = w->c;
    if (p->dropped)
        return;
    p->dropped = 1;
    w->fn = NULL;
    if (p->firing)
        return; /* freed when its callback returns */
    if (p->pending)
        return; /* its read is in flight: settled when the reply comes (req_deliver) */
    if (w->gen != c->gen || !c->zh) {
        /* Its session is closed (zkc__watches_close_gen has run for it). */
        reclaim_later(w);
        return;
    }
    if (w->state != W_ARMED) {
        watch_free(w);
        return;
    }
    if (c->state != ZKC__S_CONNECTED) {
        /* Asked again once reconnected (zkc__watches_resume). Never "local"
         * removal: libzookeeper 3.8.0's async local path treats our context
         * pointer as its own completion record and corrupts it. */
        return;
    }
    send_remove(w);
}

void zkc__watch_forget(zkc__watch *w)
{
    if (!w)
        return;
    watch_priv *p = WP(w);
    if (p->dropped)
        return;
    /* Like drop, minus the removal request: the owner is about to delete the
     * watched node, which fires the watch (and reclaims the cell) anyway. */
    p->dropped = 1;
    p->forgotten = 1;
    w->fn = NULL;
    if (p->firing || p->pending)
        return;
    if (w->gen != w->c->gen || !w->c->zh)
        reclaim_later(w);
    else if (w->state != W_ARMED)
        watch_free(w);
}

/* ---- the reads that carry a watch (req.c) ---- */

void zkc__watch_pending(zkc__watch *w)
{
    WP(w)->pending = 1;
}

void zkc__watch_sending(zkc__watch *w, const char *path, int children)
{
    w->gen = w->c->gen;
    WP(w)->pending = 1;
    if (!w->path)
        w->path = strdup(path);
    WP(w)->wtype = children ? ZWATCHTYPE_CHILD : ZWATCHTYPE_DATA;
}

zkc__watch *zkc__watch_settle(zkc__watch *w, int armed, uint64_t gen)
{
    zkc_client *c = w->c;
    watch_priv *p = WP(w);
    p->pending = 0;
    /* Not once its session is closed (no handle: the reply was queued
     * before the close): that watch can never fire. */
    if (armed && gen == c->gen && c->zh && w->state != W_FIRED)
        w->state = W_ARMED;
    if (p->dropped) {
        /* Dropped while its read was out: the reply may have registered it.
         * Forgotten, it stays: the owner deletes the node after this read
         * (the lock released right after a grant that did not wait for its
         * own-node watch: member_wait.c, "the listing behind the create"),
         * and that deletion fires and frees it, as for zkc__watch_forget. */
        if (w->state == W_ARMED && p->forgotten)
            return NULL;
        if (w->state == W_ARMED && w->gen == c->gen && c->zh && c->state == ZKC__S_CONNECTED)
            send_remove(w);
        else if (w->state != W_ARMED)
            watch_free(w);
        /* ARMED but disconnected: zkc__watches_resume removes it later. */
        return NULL;
    }
    return w;
}

void zkc__watches_resume(zkc_client *c)
{
    for (zkc__list_node *n = zkc__list_first(&c->watches); n; n = zkc__list_next(&c->watches, n)) {
        zkc__watch *w = WATCH_OF(n);
        watch_priv *p = WP(w);
        if (p->dropped && !p->removing && !p->firing && w->state == W_ARMED && w->gen == c->gen)
            send_remove(w);
    }
}

void zkc__watches_close_gen(zkc_client *c, uint64_t gen)
{
    zkc__list_node *n, *tmp;
    ZKC__LIST_FOREACH_SAFE(n, tmp, &c->watches)
    {
        zkc__watch *w = WATCH_OF(n);
        if (w->gen == gen && w->state == W_ARMED) {
            watch_priv *p = WP(w);
            w->state = W_IDLE;
            /* A removal in flight completes (ZCLOSING) and frees it then; an
             * owner that still refers to it frees it by dropping it. */
            if (p->dropped && !p->removing)
                reclaim_later(w);
        }
    }
}

void zkc__watches_free_all(zkc_client *c)
{
    zkc__list_node *n;
    while ((n = zkc__list_first(&c->watches)) != NULL)
        watch_free(WATCH_OF(n));
}

