/* Operations (complete exactly once; blocking = async + wait) and the request
 * layer: the only place besides client.c that calls libzookeeper_mt. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>

/* ================================================================ ops */

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

/* ================================================================ watches */

enum { W_IDLE = 0, W_ARMED, W_FIRED };

typedef struct watch_priv {
    int dropped;
    int pending; /* a read carrying this watch is in flight */
    int firing;
    int removing;
    int reclaiming; /* a reclaim task is queued: only it frees the cell */
    int wtype; /* ZWATCHTYPE_DATA / ZWATCHTYPE_CHILD */
} watch_priv;

/* The private bits ride behind the public struct. */
typedef struct watch_cell {
    zkc__watch w;
    watch_priv p;
} watch_cell;

#define WP(x) (&ZKC__CONTAINER_OF(x, watch_cell, w)->p)

zkc__watch *zkc__watch_new(zkc_client *c, void (*fn)(zkc__watch *, int), void *ctx)
{
    watch_cell *cell = calloc(1, sizeof *cell);
    if (!cell)
        return NULL;
    cell->w.fn = fn;
    cell->w.ctx = ctx;
    cell->w.c = c;
    cell->w.state = W_IDLE;
    cell->w.next = c->watches;
    if (c->watches)
        c->watches->prev = &cell->w;
    c->watches = &cell->w;
    return &cell->w;
}

static void watch_free(zkc__watch *w)
{
    zkc_client *c = w->c;
    if (w->prev)
        w->prev->next = w->next;
    else
        c->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
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
    /* One-shot: the owner was told and forgets the cell (see internal.h). */
    watch_free(w);
}

static void zk_watch_cb(zhandle_t *zh, int type, int state, const char *path, void *ctx)
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
    zkc__post(w->c, &ev->t);
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
        zkc__watch *o = w->c->watches;
        while (o) {
            zkc__watch *next = o->next;
            watch_priv *op = WP(o);
            if (o != w && op->dropped && !op->removing && !op->reclaiming && !op->firing && !op->pending &&
                o->gen == w->gen && op->wtype == p->wtype && o->path && strcmp(o->path, w->path) == 0)
                watch_free(o);
            o = next;
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
    for (zkc__watch *o = c->watches; o; o = o->next) {
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
    w->fn = NULL;
    if (p->firing || p->pending)
        return;
    if (w->gen != w->c->gen || !w->c->zh)
        reclaim_later(w);
    else if (w->state != W_ARMED)
        watch_free(w);
}

void zkc__watches_resume(zkc_client *c)
{
    for (zkc__watch *w = c->watches; w; w = w->next) {
        watch_priv *p = WP(w);
        if (p->dropped && !p->removing && !p->firing && w->state == W_ARMED && w->gen == c->gen)
            send_remove(w);
    }
}

void zkc__watches_close_gen(zkc_client *c, uint64_t gen)
{
    zkc__watch *w = c->watches;
    while (w) {
        zkc__watch *next = w->next;
        if (w->gen == gen && w->state == W_ARMED) {
            watch_priv *p = WP(w);
            w->state = W_IDLE;
            /* A removal in flight completes (ZCLOSING) and frees it then; an
             * owner that still refers to it frees it by dropping it. */
            if (p->dropped && !p->removing)
                reclaim_later(w);
        }
        w = next;
    }
}

void zkc__watches_free_all(zkc_client *c)
{
    while (c->watches)
        watch_free(c->watches);
}

/* ================================================================ requests */

static void req_free(zkc__req *r)
{
    free(r->path);
    free(r->data);
    free(r->value);
    free(r->created);
    if (r->children) {
        for (int i = 0; i < r->nchildren; i++)
            free(r->children[i]);
        free(r->children);
    }
    if (r->ops) {
        for (int i = 0; i < r->nops; i++) {
            free((char *)r->ops[i].path);
            free((char *)r->ops[i].data);
            free(r->ops[i].created);
        }
        free(r->ops);
    }
    free(r->zops);
    free(r->zres);
    free(r);
}

static void copy_stat(zkc__stat *d, const struct Stat *s)
{
    if (!s)
        return;
    d->czxid = s->czxid;
    d->mzxid = s->mzxid;
    d->ctime = s->ctime;
    d->mtime = s->mtime;
    d->ephemeral_owner = s->ephemeralOwner;
    d->pzxid = s->pzxid;
    d->version = s->version;
    d->cversion = s->cversion;
    d->data_length = s->dataLength;
    d->num_children = s->numChildren;
}

static void req_submit(zkc__req *r);
static void req_deliver(zkc__task *t);

static void req_post(zkc__req *r, int rc)
{
    r->rc = rc;
    r->task.fn = req_deliver;
    zkc__post(r->c, &r->task);
}

/* ---- ZooKeeper completion thread: copy, post ---- */

static void c_void(int rc, const void *data)
{
    req_post((zkc__req *)data, rc);
}

static void c_stat(int rc, const struct Stat *stat, const void *data)
{
    zkc__req *r = (zkc__req *)data;
    if (rc == ZOK)
        copy_stat(&r->stat, stat);
    req_post(r, rc);
}

static void c_data(int rc, const char *value, int len, const struct Stat *stat, const void *data)
{
    zkc__req *r = (zkc__req *)data;
    if (rc == ZOK) {
        copy_stat(&r->stat, stat);
        if (len < 0)
            len = 0;
        r->value = malloc((size_t)len + 1);
        if (r->value) {
            if (len)
                memcpy(r->value, value, (size_t)len);
            r->value[len] = 0;
            r->valuelen = len;
        } else {
            rc = ZSYSTEMERROR;
        }
    }
    req_post(r, rc);
}

static void c_strings(int rc, const struct String_vector *sv, const void *data)
{
    zkc__req *r = (zkc__req *)data;
    if (rc == ZOK && sv) {
        r->children = calloc((size_t)sv->count + 1, sizeof(char *));
        if (!r->children) {
            rc = ZSYSTEMERROR;
        } else {
            for (int i = 0; i < sv->count; i++) {
                r->children[i] = strdup(sv->data[i]);
                if (!r->children[i]) {
                    rc = ZSYSTEMERROR;
                    break;
                }
                r->nchildren = i + 1;
            }
        }
    }
    req_post(r, rc);
}

static void c_string_stat(int rc, const char *value, const struct Stat *stat, const void *data)
{
    zkc__req *r = (zkc__req *)data;
    if (rc == ZOK) {
        r->created = value ? strdup(value) : NULL;
        copy_stat(&r->stat, stat);
    }
    req_post(r, rc);
}

static void c_string(int rc, const char *value, const void *data)
{
    ZKC__UNUSED(value);
    req_post((zkc__req *)data, rc);
}

static void c_multi(int rc, const void *data)
{
    zkc__req *r = (zkc__req *)data;
    zoo_op_result_t *res = r->zres;
    zoo_op_t *zo = r->zops;
    for (int i = 0; i < r->nops; i++) {
        r->ops[i].rc = res[i].err;
        if (r->ops[i].type == ZKC_REQ_SET && res[i].err == ZOK && zo[i].set_op.stat)
            copy_stat(&r->ops[i].stat, zo[i].set_op.stat);
    }
    req_post(r, rc);
}

/* ---- engine ---- */

const void *zkc__client_acl(zkc_client *c);

static void issue(zkc__req *r)
{
    zkc_client *c = r->c;
    zhandle_t *zh = (zhandle_t *)c->zh;
    int rc;
    r->gen = c->gen;
    r->sent = 1;
    r->inflight = 1;
    c->inflight++;
    ZKC__STAT_INC(c, requests[r->kind]);
    struct ACL_vector *acl = (struct ACL_vector *)zkc__client_acl(c);
    zkc__watch *w = r->watch;
    if (w) {
        w->gen = c->gen;
        WP(w)->pending = 1;
        if (!w->path)
            w->path = strdup(r->path);
        WP(w)->wtype = r->kind == ZKC_REQ_CHILDREN ? ZWATCHTYPE_CHILD : ZWATCHTYPE_DATA;
    }
    switch (r->kind) {
    case ZKC_REQ_GET:
        rc = w ? zoo_awget(zh, r->path, zk_watch_cb, w, c_data, r) : zoo_aget(zh, r->path, 0, c_data, r);
        break;
    case ZKC_REQ_EXISTS:
        rc = w ? zoo_awexists(zh, r->path, zk_watch_cb, w, c_stat, r) : zoo_aexists(zh, r->path, 0, c_stat, r);
        break;
    case ZKC_REQ_CHILDREN:
        rc = w ? zoo_awget_children(zh, r->path, zk_watch_cb, w, c_strings, r)
               : zoo_aget_children(zh, r->path, 0, c_strings, r);
        break;
    case ZKC_REQ_CREATE: {
        int mode = 0;
        if (r->flags & ZC_CONTAINER)
            mode = ZOO_CONTAINER;
        else if ((r->flags & ZC_EPHEMERAL) && (r->flags & ZC_SEQUENTIAL))
            mode = ZOO_EPHEMERAL_SEQUENTIAL;
        else if (r->flags & ZC_EPHEMERAL)
            mode = ZOO_EPHEMERAL;
        else if (r->flags & ZC_SEQUENTIAL)
            mode = ZOO_PERSISTENT_SEQUENTIAL;
        rc = zoo_acreate2(zh, r->path, r->data, r->data ? r->len : -1, acl, mode, c_string_stat, r);
        break;
    }
    case ZKC_REQ_DELETE:
        rc = zoo_adelete(zh, r->path, r->version, c_void, r);
        break;
    case ZKC_REQ_SET:
        rc = zoo_aset(zh, r->path, r->data, r->len, r->version, c_stat, r);
        break;
    case ZKC_REQ_SYNC:
        rc = zoo_async(zh, r->path, c_string, r);
        break;
    case ZKC_REQ_MULTI: {
        zoo_op_t *zo = r->zops;
        zoo_op_result_t *res = r->zres;
        memset(zo, 0, sizeof(zoo_op_t) * (size_t)r->nops);
        memset(res, 0, sizeof(zoo_op_result_t) * (size_t)r->nops);
        struct Stat *stats = (struct Stat *)(res + r->nops);
        for (int i = 0; i < r->nops; i++) {
            zkc__mop *m = &r->ops[i];
            switch (m->type) {
            case ZKC_REQ_CREATE: {
                int mode = (m->flags & ZC_CONTAINER) ? ZOO_CONTAINER
                           : ((m->flags & ZC_EPHEMERAL) ? ZOO_EPHEMERAL : 0) |
                                 ((m->flags & ZC_SEQUENTIAL) ? ZOO_SEQUENCE : 0);
                free(m->created);
                m->created = calloc(1, ZKC__PATH_MAX + 32);
                zoo_create_op_init(&zo[i], m->path, m->data, m->data ? m->len : -1, acl, mode, m->created,
                                   ZKC__PATH_MAX + 32);
                break;
            }
            case ZKC_REQ_DELETE:
                zoo_delete_op_init(&zo[i], m->path, m->version);
                break;
            case ZKC_REQ_SET:
                zoo_set_op_init(&zo[i], m->path, m->data, m->len, m->version, &stats[i]);
                break;
            default:
                zoo_check_op_init(&zo[i], m->path, m->version);
                break;
            }
        }
        rc = zoo_amulti(zh, r->nops, zo, res, c_multi, r);
        break;
    }
    default:
        rc = ZBADARGUMENTS;
    }
    if (rc != ZOK)
        req_post(r, rc == ZINVALIDSTATE ? ZR_CONNLOSS : rc);
}

static void park(zkc__req *r)
{
    zkc_client *c = r->c;
    r->next_parked = NULL;
    if (c->parked_tail)
        c->parked_tail->next_parked = r;
    else
        c->parked = r;
    c->parked_tail = r;
}

static void req_submit(zkc__req *r)
{
    zkc_client *c = r->c;
    if (c->closing) {
        req_post(r, ZR_CLOSING);
        return;
    }
    if (c->auth_failed) {
        req_post(r, ZR_AUTHFAILED);
        return;
    }
    if (c->state != ZKC__S_CONNECTED || !c->zh) {
        park(r);
        return;
    }
    issue(r);
}

void zkc__reqs_flush_parked(zkc_client *c)
{
    zkc__req *r = c->parked;
    c->parked = c->parked_tail = NULL;
    while (r) {
        zkc__req *next = r->next_parked;
        req_submit(r);
        r = next;
    }
}

/* rc == 0: only the requests past their deadline (called by the client tick);
 * otherwise every unsafe request (session lost) or every request (closing). */
void zkc__reqs_fail_parked(zkc_client *c, int rc)
{
    int64_t now = zkc__now_ms();
    zkc__req *r = c->parked, *keep = NULL, *keep_tail = NULL;
    c->parked = c->parked_tail = NULL;
    while (r) {
        zkc__req *next = r->next_parked;
        int fail;
        int why = rc;
        if (rc == 0) {
            fail = now >= r->deadline;
            why = ZR_NOTSENT;
        } else if (rc == ZR_SESSIONLOST) {
            fail = !r->safe;
        } else {
            fail = 1;
        }
        if (fail) {
            req_post(r, why);
        } else {
            r->next_parked = NULL;
            if (keep_tail)
                keep_tail->next_parked = r;
            else
                keep = r;
            keep_tail = r;
        }
        r = next;
    }
    c->parked = keep;
    c->parked_tail = keep_tail;
}

static void backoff_fire(zkc__timer *t)
{
    zkc__req *r = ZKC__CONTAINER_OF(t, zkc__req, backoff);
    req_submit(r);
}

static int is_reply(int rc)
{
    return rc != ZR_CONNLOSS && rc != ZR_OPTIMEOUT && rc != ZR_CLOSING && rc != ZR_INVALIDSTATE &&
           rc != ZR_SESSIONLOST && rc != ZR_NOTSENT && rc != ZSYSTEMERROR && rc != ZMARSHALLINGERROR;
}

static void req_deliver(zkc__task *t)
{
    zkc__req *r = ZKC__CONTAINER_OF(t, zkc__req, task);
    zkc_client *c = r->c;
    int rc = r->rc;
    if (r->inflight) {
        r->inflight = 0;
        zkc__inflight_done(c);
    }
    if (rc == ZR_RUNTIMEINCONSISTENCY && r->sent) {
        /* The C client completes every pending request with this when it sees
         * an out-of-order reply (a session taken over): nothing is known about
         * them, as after a connection loss. For a multi, only when no sub-op
         * carries a server result. */
        int server_said = 0;
        for (int i = 0; r->kind == ZKC_REQ_MULTI && i < r->nops; i++)
            server_said |= r->ops[i].rc != ZR_OK && r->ops[i].rc != ZR_RUNTIMEINCONSISTENCY;
        if (!server_said)
            rc = ZR_CONNLOSS;
    }
    if (rc == ZR_SESSIONEXPIRED || rc == ZR_SESSIONMOVED) {
        /* The server refused it: not applied. And the session is over. */
        zkc__session_expired_reply(c, r->gen);
        rc = ZR_SESSIONLOST;
    } else if (r->sent && is_reply(rc)) {
        c->last_heard = zkc__now_ms();
    }
    if (c->closing) {
        /* Shutting down: what was never sent is simply cancelled; what was sent
         * and lost its reply stays "unknown" (ZR_CONNLOSS) for its owner to say so. */
        if (rc == ZR_SESSIONLOST || rc == ZR_NOTSENT || (rc == ZR_CONNLOSS && !r->sent))
            rc = ZR_CLOSING;
        else if (rc == ZR_CLOSING && r->sent)
            rc = ZR_CONNLOSS;
    } else if (rc == ZR_CLOSING) {
        /* We closed its handle after presuming the session lost: its fate is as
         * unknown as after a connection loss. */
        rc = ZR_CONNLOSS;
    }
    if (r->safe && !c->closing && (rc == ZR_CONNLOSS || rc == ZR_SESSIONLOST || rc == ZR_OPTIMEOUT) &&
        r->attempts < c->opt.retry_max && zkc__now_ms() < r->deadline) {
        int64_t delay = (int64_t)c->opt.retry_base_ms << (r->attempts < 16 ? r->attempts : 16);
        if (delay > c->opt.retry_cap_ms)
            delay = c->opt.retry_cap_ms;
        delay = delay / 2 + (int64_t)(zkc__random64() % (uint64_t)(delay / 2 + 1));
        r->attempts++;
        ZKC__STAT_INC(c, retries);
        free(r->value);
        r->value = NULL;
        zkc__timer_init(&r->backoff, backoff_fire);
        zkc__timer_arm(c, &r->backoff, zkc__now_ms() + delay);
        return;
    }
    /* Settled now (not before a retry, which still carries the watch).
     * A watch is registered by a successful read (and by exists on a missing node). */
    if (r->watch) {
        zkc__watch *w = r->watch;
        watch_priv *p = WP(w);
        int armed = rc == ZOK || (r->kind == ZKC_REQ_EXISTS && rc == ZNONODE);
        p->pending = 0;
        /* Not once its session is closed (no handle: the reply was queued
         * before the close): that watch can never fire. */
        if (armed && r->gen == c->gen && c->zh && w->state != W_FIRED)
            w->state = W_ARMED;
        if (p->dropped) {
            /* Dropped while its read was out: the reply may have registered it. */
            r->watch = NULL;
            if (w->state == W_ARMED && w->gen == c->gen && c->zh && c->state == ZKC__S_CONNECTED)
                send_remove(w);
            else if (w->state != W_ARMED)
                watch_free(w);
            /* ARMED but disconnected: zkc__watches_resume removes it later. */
        }
    }
    r->rc = rc;
    r->done(r);
    req_free(r);
}

static zkc__req *req_new(zkc_client *c, int kind, const char *path, zkc__req_done done, void *ctx)
{
    zkc__req *r = calloc(1, sizeof *r);
    if (!r)
        abort(); /* a lost request would strand its operation forever */
    r->c = c;
    r->kind = kind;
    r->done = done;
    r->ctx = ctx;
    r->path = path ? strdup(path) : NULL;
    r->deadline = zkc__now_ms() + c->opt.operation_timeout_ms;
    return r;
}

/* The reads that may carry a watch; they are safe to retry. */
static zkc__req *read_submit(zkc_client *c, int kind, const char *path, zkc__watch *w, zkc__req_done done,
                             void *ctx)
{
    zkc__req *r = req_new(c, kind, path, done, ctx);
    r->watch = w;
    if (w)
        WP(w)->pending = 1; /* from now: a parked request refers to it too */
    r->safe = 1;
    req_submit(r);
    return r;
}

zkc__req *zkc__get(zkc_client *c, const char *path, zkc__watch *w, zkc__req_done done, void *ctx)
{
    return read_submit(c, ZKC_REQ_GET, path, w, done, ctx);
}

zkc__req *zkc__exists(zkc_client *c, const char *path, zkc__watch *w, zkc__req_done done, void *ctx)
{
    return read_submit(c, ZKC_REQ_EXISTS, path, w, done, ctx);
}

zkc__req *zkc__children(zkc_client *c, const char *path, zkc__watch *w, zkc__req_done done, void *ctx)
{
    return read_submit(c, ZKC_REQ_CHILDREN, path, w, done, ctx);
}

zkc__req *zkc__ping(zkc_client *c, zkc__req_done done, void *ctx)
{
    zkc__req *r = req_new(c, ZKC_REQ_EXISTS, "/", done, ctx);
    req_submit(r);
    return r;
}

typedef struct sync_get {
    char *path;
    zkc__req_done done;
    void *ctx;
} sync_get;

static void sync_get_synced(zkc__req *r)
{
    sync_get *sg = r->ctx;
    /* Whatever the sync said, the read decides (and reports any failure). */
    zkc__get(r->c, sg->path, NULL, sg->done, sg->ctx);
    free(sg->path);
    free(sg);
}

void zkc__sync_get(zkc_client *c, const char *path, zkc__req_done done, void *ctx)
{
    sync_get *sg = malloc(sizeof *sg);
    if (!sg || !(sg->path = strdup(path)))
        abort(); /* as req_new: a lost request would strand its operation */
    sg->done = done;
    sg->ctx = ctx;
    zkc__sync(c, path, sync_get_synced, sg);
}

zkc__req *zkc__sync(zkc_client *c, const char *path, zkc__req_done done, void *ctx)
{
    zkc__req *r = req_new(c, ZKC_REQ_SYNC, path, done, ctx);
    r->safe = 1;
    req_submit(r);
    return r;
}

static char *dupdata(const char *data, int len)
{
    if (!data)
        return NULL;
    char *d = malloc((size_t)len + 1);
    if (!d)
        abort();
    memcpy(d, data, (size_t)len);
    d[len] = 0;
    return d;
}

zkc__req *zkc__create(zkc_client *c, const char *path, const char *data, int len, int flags, zkc__req_done done,
                 void *ctx)
{
    zkc__req *r = req_new(c, ZKC_REQ_CREATE, path, done, ctx);
    r->data = dupdata(data, len);
    r->len = len;
    r->flags = flags;
    req_submit(r);
    return r;
}

zkc__req *zkc__delete(zkc_client *c, const char *path, int version, zkc__req_done done, void *ctx)
{
    zkc__req *r = req_new(c, ZKC_REQ_DELETE, path, done, ctx);
    r->version = version;
    req_submit(r);
    return r;
}

zkc__req *zkc__set(zkc_client *c, const char *path, const char *data, int len, int version, zkc__req_done done,
              void *ctx)
{
    zkc__req *r = req_new(c, ZKC_REQ_SET, path, done, ctx);
    r->data = dupdata(data ? data : "", data ? len : 0);
    r->len = data ? len : 0;
    r->version = version;
    req_submit(r);
    return r;
}

zkc__req *zkc__multi(zkc_client *c, const zkc__mop *ops, int n, zkc__req_done done, void *ctx)
{
    zkc__req *r = req_new(c, ZKC_REQ_MULTI, NULL, done, ctx);
    r->nops = n;
    r->ops = calloc((size_t)n, sizeof *r->ops);
    r->zops = calloc((size_t)n, sizeof(zoo_op_t));
    r->zres = calloc((size_t)n, sizeof(zoo_op_result_t) + sizeof(struct Stat));
    if (!r->ops || !r->zops || !r->zres)
        abort();
    for (int i = 0; i < n; i++) {
        r->ops[i] = ops[i];
        r->ops[i].path = strdup(ops[i].path);
        r->ops[i].data = dupdata(ops[i].data, ops[i].len);
        r->ops[i].created = NULL;
        r->ops[i].rc = 0;
    }
    req_submit(r);
    return r;
}
