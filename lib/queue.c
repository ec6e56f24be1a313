/*
 * The queue engine: one EPHEMERAL_SEQUENTIAL node per contender under the lock
 * path, ordered by sequence suffix; a recipe's decide() says whether our node
 * may proceed or which single node blocks it. Every recipe that waits (mutex,
 * read/write lock, semaphore) is this machine plus a tag and a decide().
 *
 * An acquire attempt, all on the engine thread:
 *   create "_c_<uuid><tag>" (parents as containers on NONODE)
 *     -> no answer (connection loss, operation timeout: zkc__zrc_indeterminate):
 *        sync, list, find our uuid (owned by this session), else create again;
 *        nothing is reported until that is decided
 *   list children (and, in the same flight, watch our own node for deletion)
 *   decide -> granted: done | try: abort | blocker: get+watch it -> gone: list again
 * An attempt is named by an epoch; replies from an abandoned epoch only clean up.
 * Nodes we stop wanting go to the janitor, which deletes them once it can, so
 * neither a timeout during a disconnection nor a lost reply leaves an orphan in a
 * session that lives on.
 */
#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { PH_IDLE = 0, PH_CREATING, PH_RECOVERING, PH_CHECKING, PH_WAITING, PH_HELD, PH_RELEASING };

typedef struct acq_op {
    zkc__op op;
    zkc_lock *l;
    int timeout_ms;
    zkc_lock_cb cb;
    void *ud;
    int64_t token;
} acq_op;

typedef struct simple_op {
    zkc__op op;
    zkc_lock *l;
} simple_op;

/* holds, lost and token are written only by the engine but read by any thread
 * (zkc_lock_token, zkc_lock_is_held): written with these. */
#define PUT(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELEASE)

struct zkc_lock {
    zkc__object obj;
    zkc__sess_listener sl;
    zkc_client *c;
    char *path;
    const zkc__qkind *kind;
    int max_leases;
    zkc_lock *sibling;
    int refs; /* atomic */
    int destroyed;     /* engine */
    int api_destroyed; /* atomic: zkc_lock_destroy was called */

    int phase;
    uint64_t epoch;
    acq_op *acq;
    char uuid[37];
    char *node;
    const char *node_name;
    uint64_t node_gen;
    int64_t node_owner;
    int64_t token;
    int holds;
    int lost;
    int waited;
    int creates;
    zkc__watch *pred_w, *own_w;
    zkc__timer timer;
    int warned;
    int stored_leases;  /* semaphore: count read from the node; -1 not read yet */
    simple_op *release_op;

    pthread_mutex_t mu;
    zkc_lock_event_fn ev_fn;
    void *ev_ud;
};

/* ---------------------------------------------------------------- refs */

static void lock_free(zkc_lock *l)
{
    zkc_client *c = l->c;
    free(l->path);
    free(l->node);
    pthread_mutex_destroy(&l->mu);
    free(l);
    zkc__client_unref(c);
}

static void lock_ref(zkc_lock *l)
{
    __atomic_add_fetch(&l->refs, 1, __ATOMIC_ACQ_REL);
}

static void lock_unref(zkc_lock *l)
{
    if (__atomic_sub_fetch(&l->refs, 1, __ATOMIC_ACQ_REL) == 0)
        lock_free(l);
}

int zkc__lock_max_leases(zkc_lock *l)
{
    return l->max_leases;
}

int zkc__lock_stored_leases(zkc_lock *l)
{
    return l->stored_leases > 0 ? l->stored_leases : 0;
}

const char *zkc__lock_sibling_node(zkc_lock *l)
{
    zkc_lock *s = l->sibling;
    return s && s->holds > 0 && !s->lost && s->node ? s->node_name : NULL;
}

/* ---------------------------------------------------------------- events */

typedef struct ev_job {
    zkc__job j;
    zkc_lock *l;
    zkc_lock_event ev;
} ev_job;

static void ev_job_run(zkc__job *j)
{
    ev_job *e = ZKC__CONTAINER_OF(j, ev_job, j);
    zkc_lock *l = e->l;
    pthread_mutex_lock(&l->mu);
    zkc_lock_event_fn fn = __atomic_load_n(&l->api_destroyed, __ATOMIC_ACQUIRE) ? NULL : l->ev_fn;
    void *ud = l->ev_ud;
    pthread_mutex_unlock(&l->mu);
    if (fn)
        fn(l, e->ev, ud);
    free(e);
    lock_unref(l);
}

static void notify(zkc_lock *l, zkc_lock_event ev)
{
    ev_job *e = malloc(sizeof *e);
    if (!e)
        return;
    e->j.fn = ev_job_run;
    e->l = l;
    e->ev = ev;
    lock_ref(l);
    zkc__dispatch(l->c, &e->j);
}

/* ---------------------------------------------------------------- janitor */

typedef struct jan_item {
    struct jan_item *next;
    char *path; /* node to delete, or the dir to search */
    char uuid[37];
    int find;
    int busy;
} jan_item;

typedef struct janitor {
    zkc__object obj;
    zkc__sess_listener sl;
    zkc_client *c;
    jan_item *items;
} janitor;

static void jan_run(janitor *j);

static void jan_unlink(janitor *j, jan_item *it)
{
    for (jan_item **pp = &j->items; *pp; pp = &(*pp)->next) {
        if (*pp == it) {
            *pp = it->next;
            break;
        }
    }
    free(it->path);
    free(it);
}

static int jan_retryable(int rc)
{
    return zkc__zrc_indeterminate(rc) || rc == ZR_NOTSENT || rc == ZR_SESSIONLOST;
}

static void jan_delete_done(zkc__req *r)
{
    jan_item *it = r->ctx;
    janitor *j = r->c->janitor;
    it->busy = 0;
    if (!j) {
        free(it->path);
        free(it);
        return;
    }
    if (jan_retryable(r->rc) && !r->c->closing)
        return; /* stays listed: retried on the next (re)connection */
    if (r->rc != ZR_OK && r->rc != ZR_NONODE)
        zkc__log(r->c, ZKC_LOG_WARN, "cannot delete %s: %s", it->path, zkc__zrc_name(r->rc));
    jan_unlink(j, it);
}

static void jan_list_done(zkc__req *r)
{
    jan_item *it = r->ctx;
    janitor *j = r->c->janitor;
    if (!j) {
        free(it->path);
        free(it);
        return;
    }
    if (jan_retryable(r->rc) && !r->c->closing) {
        it->busy = 0;
        return;
    }
    /* Stays busy until unlinked: the deletes queued below run the janitor,
     * which must not send this item again. */
    if (r->rc == ZR_OK) {
        for (int i = 0; i < r->nchildren; i++) {
            if (strstr(r->children[i], it->uuid)) {
                char *p = zkc__path_join(it->path, r->children[i]);
                if (p) {
                    zkc__janitor_delete(r->c, p);
                    free(p);
                }
            }
        }
    }
    jan_unlink(j, it);
}

static void jan_sync_done(zkc__req *r)
{
    jan_item *it = r->ctx;
    janitor *j = r->c->janitor;
    if (!j || (jan_retryable(r->rc) && !r->c->closing)) {
        it->busy = 0;
        if (!j) {
            free(it->path);
            free(it);
        }
        return;
    }
    /* Synced: the server we ask has seen our create if it was applied. */
    zkc__children(r->c, it->path, NULL, jan_list_done, it);
}

static void jan_run(janitor *j)
{
    zkc_client *c = j->c;
    if (c->state != ZKC__S_CONNECTED || c->closing)
        return;
    for (jan_item *it = j->items; it; it = it->next) {
        if (it->busy)
            continue;
        it->busy = 1;
        if (it->find)
            zkc__sync(c, it->path, jan_sync_done, it);
        else
            zkc__delete(c, it->path, -1, jan_delete_done, it);
    }
}

static void jan_session(zkc__sess_listener *sl, zkc_state st, uint64_t gen)
{
    janitor *j = ZKC__CONTAINER_OF(sl, janitor, sl);
    ZKC__UNUSED(gen);
    if (st == ZKC_STATE_CONNECTED || st == ZKC_STATE_RECONNECTED)
        jan_run(j);
}

static void jan_shutdown(zkc__object *o)
{
    janitor *j = ZKC__CONTAINER_OF(o, janitor, obj);
    zkc_client *c = j->c;
    /* Items with a request in flight are freed by its completion (ZR_CLOSING). */
    jan_item *it = j->items;
    while (it) {
        jan_item *next = it->next;
        if (!it->busy) {
            free(it->path);
            free(it);
        }
        it = next;
    }
    zkc__sess_unlisten(c, &j->sl);
    zkc__object_unlink(c, &j->obj);
    c->janitor = NULL;
    free(j);
}

static janitor *jan_get(zkc_client *c)
{
    if (c->janitor)
        return c->janitor;
    janitor *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->c = c;
    j->obj.shutdown = jan_shutdown;
    j->sl.fn = jan_session;
    zkc__object_link(c, &j->obj);
    zkc__sess_listen(c, &j->sl);
    c->janitor = j;
    return j;
}

static void jan_add(zkc_client *c, const char *path, const char *uuid)
{
    janitor *j = c->closing ? NULL : jan_get(c);
    if (!j)
        return; /* closing: the session's end removes our ephemeral nodes */
    jan_item *it = calloc(1, sizeof *it);
    if (!it || !(it->path = strdup(path))) {
        free(it);
        return;
    }
    if (uuid) {
        it->find = 1;
        snprintf(it->uuid, sizeof it->uuid, "%s", uuid);
    }
    it->next = j->items;
    j->items = it;
    jan_run(j);
}

void zkc__janitor_delete(zkc_client *c, const char *node)
{
    jan_add(c, node, NULL);
}

void zkc__janitor_find(zkc_client *c, const char *dir, const char *uuid)
{
    jan_add(c, dir, uuid);
}

/* ---------------------------------------------------------------- requests
 * Every request we send holds a reference on the lock and carries the epoch of
 * the attempt that sent it. */

#define SEND(call, l)                                                                                         \
    do {                                                                                                       \
        lock_ref(l);                                                                                           \
        zkc__req *r_ = (call);                                                                                 \
        r_->tag = (l)->epoch;                                                                                  \
    } while (0)

static int stale(zkc__req *r)
{
    zkc_lock *l = r->ctx;
    return r->tag != l->epoch || l->destroyed;
}

static void do_create(zkc_lock *l);
static void do_check(zkc_lock *l);
static void acq_abort(zkc_lock *l, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);

static void drop_watches(zkc_lock *l)
{
    zkc__watch_drop(l->pred_w);
    l->pred_w = NULL;
    zkc__watch_drop(l->own_w);
    l->own_w = NULL;
}

static void forget_node(zkc_lock *l)
{
    free(l->node);
    l->node = NULL;
    l->node_name = NULL;
}

static void acq_finish(zkc_lock *l, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
static void acq_finish(zkc_lock *l, int status, const char *fmt, ...)
{
    acq_op *a = l->acq;
    if (!a)
        return;
    l->acq = NULL;
    zkc__timer_disarm(l->c, &l->timer);
    a->token = status == 0 ? l->token : 0;
    va_list ap;
    va_start(ap, fmt);
    zkc__op_vfinish(&a->op, status, fmt, ap);
    va_end(ap);
}

/* Give up the current attempt. When a server is reachable the node is deleted
 * before the caller hears `status`, so "timed out" also means "left nothing";
 * otherwise the janitor deletes it once it can. A later reply of this epoch
 * only cleans up. */
typedef struct abort_ctx {
    zkc_lock *l;
    acq_op *a;
    int status;
    int reported;
    zkc__timer guard;
    char msg[256];
} abort_ctx;

/* The caller hears about the timeout once the node is gone, or after at most
 * this long if the server is slow to confirm (a silent server must not stretch
 * a timeout); the delete then finishes, or the janitor does. */
#define ABORT_REPORT_WAIT_MS 250

static void abort_report(abort_ctx *ac)
{
    if (!ac->reported) {
        ac->reported = 1;
        zkc__op_finish(&ac->a->op, ac->status, "%s", ac->msg);
    }
}

static void abort_guard_fired(zkc__timer *t)
{
    abort_ctx *ac = ZKC__CONTAINER_OF(t, abort_ctx, guard);
    abort_report(ac);
}

static void abort_delete_done(zkc__req *r)
{
    abort_ctx *ac = r->ctx;
    if (zkc__zrc_indeterminate(r->rc) || r->rc == ZR_NOTSENT || r->rc == ZR_SESSIONLOST)
        zkc__janitor_delete(r->c, r->path);
    zkc__timer_disarm(r->c, &ac->guard);
    abort_report(ac);
    zkc_lock *l = ac->l;
    free(ac);
    lock_unref(l);
}

static void acq_abort(zkc_lock *l, int status, const char *fmt, ...)
{
    zkc_client *c = l->c;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    zkc__watch_drop(l->pred_w);
    l->pred_w = NULL;
    if (l->node)
        zkc__watch_forget(l->own_w); /* the node is deleted below (or by the janitor) */
    else
        zkc__watch_drop(l->own_w);
    l->own_w = NULL;
    l->epoch++;
    int recovering = l->phase == PH_RECOVERING;
    l->phase = PH_IDLE;
    acq_op *a = l->acq;
    l->acq = NULL;
    zkc__timer_disarm(c, &l->timer);
    if (recovering)
        zkc__janitor_find(c, l->path, l->uuid);
    /* A create still in flight (PH_CREATING) cleans up after itself when its
     * stale reply arrives. */
    if (l->node && a && c->state == ZKC__S_CONNECTED && !c->closing) {
        abort_ctx *ac = calloc(1, sizeof *ac);
        if (ac) {
            ac->l = l;
            ac->a = a;
            ac->status = status;
            snprintf(ac->msg, sizeof ac->msg, "%s", msg);
            zkc__timer_init(&ac->guard, abort_guard_fired);
            zkc__timer_arm(c, &ac->guard, zkc__now_ms() + ABORT_REPORT_WAIT_MS);
            lock_ref(l);
            zkc__delete(c, l->node, -1, abort_delete_done, ac);
            forget_node(l);
            return;
        }
    }
    if (l->node) {
        zkc__janitor_delete(c, l->node);
        forget_node(l);
    }
    if (a)
        zkc__op_finish(&a->op, status, "%s", msg);
}

static int map_fail(zkc_lock *l, int rc, const char *doing)
{
    int e = zkc__map_zrc(rc);
    if (rc == ZR_NOTSENT)
        e = ZKC_ECONNLOSS;
    if (rc == ZR_SESSIONLOST)
        e = ZKC_ESESSIONLOST;
    acq_abort(l, e, "lock %s: %s failed: %s", l->path, doing, zkc__zrc_name(rc));
    return e;
}

/* ---- create parents ---- */

typedef struct parent_walk {
    zkc_lock *l;
    uint64_t epoch;
    char *target;
    size_t pos, prev;
    int tries;
} parent_walk;

static void parent_step(parent_walk *pw);

static void parent_done(zkc__req *r)
{
    parent_walk *pw = r->ctx;
    zkc_lock *l = pw->l;
    if (pw->epoch != l->epoch || l->destroyed) {
        free(pw->target);
        free(pw);
        lock_unref(l);
        return;
    }
    if (zkc__zrc_indeterminate(r->rc) && ++pw->tries < 10) {
        /* Creating a parent again is harmless: NODEEXISTS counts as done. */
        pw->pos = pw->prev;
        parent_step(pw);
        lock_unref(l);
        return;
    }
    if (r->rc != ZR_OK && r->rc != ZR_NODEEXISTS) {
        free(pw->target);
        free(pw);
        map_fail(l, r->rc, "creating parent nodes");
        lock_unref(l);
        return;
    }
    parent_step(pw);
    lock_unref(l);
}

static void parent_step(parent_walk *pw)
{
    zkc_lock *l = pw->l;
    const char *t = pw->target;
    size_t n = strlen(t);
    if (pw->pos >= n) {
        free(pw->target);
        free(pw);
        do_create(l);
        return;
    }
    const char *slash = strchr(t + pw->pos + 1, '/');
    size_t end = slash ? (size_t)(slash - t) : n;
    char *prefix = strndup(t, end);
    pw->prev = pw->pos;
    pw->pos = end;
    lock_ref(l);
    /* Containers, as Curator does: the server reaps them once empty, so lock
     * paths used once (per order, say) do not pile up. */
    const char *data = NULL;
    int len = 0;
    char nbuf[24];
    if (end == n && l->kind->stores_leases) {
        len = snprintf(nbuf, sizeof nbuf, "%d", l->max_leases);
        data = nbuf;
    }
    zkc__create(l->c, prefix, data, len, ZC_CONTAINER, parent_done, pw);
    free(prefix);
}

static void create_parents(zkc_lock *l)
{
    parent_walk *pw = calloc(1, sizeof *pw);
    if (!pw || !(pw->target = strdup(l->path))) {
        free(pw);
        acq_abort(l, ZKC_ENOMEM, "out of memory");
        return;
    }
    pw->l = l;
    pw->epoch = l->epoch;
    parent_step(pw);
}

/* ---- own node watch: deletion by someone else means the hold is gone ---- */

static void watch_own(zkc_lock *l);

static void own_fired(zkc__watch *w, int ev)
{
    zkc_lock *l = w->ctx;
    l->own_w = NULL;
    if (ev != ZW_DELETED) {
        if (l->node && (l->phase == PH_HELD || l->acq))
            watch_own(l); /* data changed (our semaphore kick): keep watching */
        return;
    }
    if (!l->node)
        return;
    if (l->phase == PH_HELD) {
        zkc__log(l->c, ZKC_LOG_WARN, "lock %s: our node %s was deleted by another client", l->path, l->node);
        forget_node(l);
        PUT(l->lost, 1);
        l->phase = PH_IDLE;
        zkc__watch_drop(l->pred_w);
        l->pred_w = NULL;
        notify(l, ZKC_LOCK_EVENT_LOST);
    } else if (l->acq) {
        forget_node(l);
        acq_abort(l, ZKC_ESESSIONLOST, "lock %s: our queue node was deleted by another client while waiting",
                  l->path);
    }
}

static void own_get_done(zkc__req *r)
{
    zkc_lock *l = r->ctx;
    if (!stale(r) && r->rc != ZR_OK && l->own_w && r->watch == l->own_w) {
        zkc__watch_drop(l->own_w);
        l->own_w = NULL;
    }
    lock_unref(l);
}

static void watch_own(zkc_lock *l)
{
    if (l->own_w)
        return;
    l->own_w = zkc__watch_new(l->c, own_fired, l);
    if (!l->own_w)
        return;
    /* get, not exists: on a node already gone, exists would leave a creation
     * watch on the server for the rest of the session. */
    SEND(zkc__get(l->c, l->node, l->own_w, own_get_done, l), l);
}

/* ---- create ---- */

static void have_node(zkc_lock *l, const char *path, const zkc__stat *st, uint64_t gen)
{
    free(l->node);
    l->node = strdup(path);
    if (!l->node) {
        acq_abort(l, ZKC_ENOMEM, "out of memory");
        return;
    }
    const char *slash = strrchr(l->node, '/');
    l->node_name = slash ? slash + 1 : l->node;
    PUT(l->token, st->czxid);
    l->node_gen = gen;
    l->node_owner = st->ephemeral_owner;
    watch_own(l);
    do_check(l);
}

static void recover_list_done(zkc__req *r);
static void recover_sync_done(zkc__req *r);

/* Did our create land? Sync (a lagging follower may not show it yet), list,
 * look for our uuid. Until that is decided nothing is reported: a failure now
 * would tell the caller "not queued" about a node that may block the lock. */
static void recover(zkc_lock *l)
{
    l->phase = PH_RECOVERING;
    SEND(zkc__sync(l->c, l->path, recover_sync_done, l), l);
}

/* A step of recovery that itself got no answer starts recovery over; the
 * acquire's timeout or the session's end bounds it, and both hand the
 * question to the janitor (acq_abort in PH_RECOVERING). */
static int recover_again(zkc_lock *l, int rc)
{
    if (!zkc__zrc_indeterminate(rc) && rc != ZR_NOTSENT)
        return 0;
    recover(l);
    return 1;
}

static void recover_sync_done(zkc__req *r)
{
    zkc_lock *l = r->ctx;
    if (!stale(r)) {
        if (r->rc == ZR_OK || r->rc == ZR_NONODE)
            SEND(zkc__children(l->c, l->path, NULL, recover_list_done, l), l);
        else if (!recover_again(l, r->rc))
            map_fail(l, r->rc, "sync after an unanswered create");
    }
    lock_unref(l);
}

static void recover_stat_done(zkc__req *r)
{
    zkc_lock *l = r->ctx;
    if (!stale(r)) {
        if (r->rc == ZR_OK && r->stat.ephemeral_owner == l->c->session_id)
            have_node(l, r->path, &r->stat, l->c->gen);
        else if (r->rc == ZR_OK || r->rc == ZR_NONODE)
            do_create(l); /* gone, or a dead session's: make ours */
        else if (!recover_again(l, r->rc))
            map_fail(l, r->rc, "reading our node after an unanswered create");
    }
    lock_unref(l);
}

static void recover_list_done(zkc__req *r)
{
    zkc_lock *l = r->ctx;
    if (!stale(r)) {
        if (r->rc == ZR_NONODE) {
            do_create(l);
        } else if (r->rc != ZR_OK) {
            if (!recover_again(l, r->rc))
                map_fail(l, r->rc, "listing the queue after an unanswered create");
        } else {
            const char *mine = NULL;
            for (int i = 0; i < r->nchildren; i++)
                if (strstr(r->children[i], l->uuid))
                    mine = r->children[i];
            if (!mine) {
                do_create(l); /* the create never happened */
            } else {
                char *p = zkc__path_join(l->path, mine);
                if (p)
                    SEND(zkc__exists(l->c, p, NULL, recover_stat_done, l), l);
                free(p);
            }
        }
    }
    lock_unref(l);
}

static void create_done(zkc__req *r)
{
    zkc_lock *l = r->ctx;
    zkc_client *c = r->c;
    if (stale(r)) {
        /* Abandoned attempt: its node must not survive it. */
        if (r->rc == ZR_OK && r->created) {
            zkc__janitor_delete(c, r->created);
        } else if (zkc__zrc_indeterminate(r->rc)) {
            char dir[ZKC__PATH_MAX + 1];
            zkc__path_parent(r->path, dir, sizeof dir);
            const char *u = strstr(r->path, "/_c_");
            if (u) {
                char uuid[37];
                snprintf(uuid, sizeof uuid, "%.36s", u + 4);
                zkc__janitor_find(c, dir, uuid);
            }
        }
        lock_unref(l);
        return;
    }
    switch (r->rc) {
    case ZR_OK:
        have_node(l, r->created, &r->stat, r->gen);
        break;
    case ZR_NONODE:
        /* Parent missing, or a container reaped between our check and create. */
        if (++l->creates > 5)
            map_fail(l, r->rc, "creating the queue node (the parent keeps vanishing)");
        else
            create_parents(l);
        break;
    case ZR_SESSIONLOST:
        do_create(l); /* never sent; the new session gets it */
        break;
    case ZR_NOCHILDRENFOREPHEMERALS:
        acq_abort(l, ZKC_EINVAL, "lock %s: the lock path is an ephemeral node", l->path);
        break;
    default:
        if (zkc__zrc_indeterminate(r->rc))
            recover(l); /* applied or not: find out before creating again, or we queue twice */
        else
            map_fail(l, r->rc, "creating the queue node");
    }
    lock_unref(l);
}

static void do_create(zkc_lock *l)
{
    char *prefix;
    size_t n = strlen(l->path) + strlen(l->kind->tag) + 48;
    prefix = malloc(n);
    if (!prefix) {
        acq_abort(l, ZKC_ENOMEM, "out of memory");
        return;
    }
    snprintf(prefix, n, "%s/_c_%s-%s", l->path, l->uuid, l->kind->tag);
    l->phase = PH_CREATING;
    char data[64];
    char host[40] = "";
    gethostname(host, sizeof host - 1);
    int len = snprintf(data, sizeof data, "zkcoord %s %ld", host, (long)getpid());
    SEND(zkc__create(l->c, prefix, data, len, ZC_EPHEMERAL | ZC_SEQUENTIAL, create_done, l), l);
    free(prefix);
}

/* ---- check ---- */

static void pred_fired(zkc__watch *w, int ev)
{
    zkc_lock *l = w->ctx;
    ZKC__UNUSED(ev);
    if (l->pred_w != w)
        return;
    l->pred_w = NULL;
    if (l->acq && l->phase == PH_WAITING)
        do_check(l);
}

static void pred_get_done(zkc__req *r)
{
    zkc_lock *l = r->ctx;
    if (!stale(r) && l->phase == PH_WAITING && r->watch == l->pred_w) {
        if (r->rc == ZR_NONODE) {
            /* Gone before we could watch it: no watch was set; look again. */
            zkc__watch_drop(l->pred_w);
            l->pred_w = NULL;
            do_check(l);
        } else if (r->rc != ZR_OK) {
            zkc__watch_drop(l->pred_w);
            l->pred_w = NULL;
            map_fail(l, r->rc, "watching the node ahead of us");
        }
        /* ZR_OK: wait for the watch. */
    }
    lock_unref(l);
}

typedef struct kick_ctx {
    zkc_lock *l;
} kick_ctx;

static void kick_done(zkc__req *r)
{
    lock_unref(r->ctx);
}

static void grant(zkc_lock *l, int kick)
{
    l->phase = PH_HELD;
    PUT(l->holds, 1);
    PUT(l->lost, 0);
    zkc__watch_drop(l->pred_w);
    l->pred_w = NULL;
    if (kick && l->node) {
        /* Semaphore: a waiter behind us watches our node; touching it tells that
         * waiter it is now at the head (see lock.c). */
        lock_ref(l);
        zkc__set(l->c, l->node, "", 0, -1, kick_done, l);
    }
    acq_finish(l, 0, NULL);
}

static void mixed_check_done(zkc__req *r)
{
    zkc_lock *l = r->ctx;
    if (r->rc == ZR_OK && !(l->warned & 4) && (r->valuelen < 8 || memcmp(r->value, "zkcoord ", 8) != 0)) {
        l->warned |= 4;
        zkc__log(r->c, ZKC_LOG_WARN,
                 "lock %s: both Curator (-lock-) and kazoo (__lock__) nodes are queued; those two libraries "
                 "misread each other's names and are not safe together on one path (zkcoord reads both)",
                 l->path);
    }
    lock_unref(l);
}

static void check_done(zkc__req *r)
{
    zkc_lock *l = r->ctx;
    zkc_client *c = r->c;
    if (stale(r) || l->phase != PH_CHECKING) {
        lock_unref(l);
        return;
    }
    if (r->rc != ZR_OK) {
        map_fail(l, r->rc, "listing the queue");
        lock_unref(l);
        return;
    }
    zkc__member *m = calloc((size_t)r->nchildren + 1, sizeof *m);
    if (!m) {
        acq_abort(l, ZKC_ENOMEM, "out of memory");
        lock_unref(l);
        return;
    }
    int junk = 0, styles = 0;
    int n = zkc__members_parse(r->children, r->nchildren, m, &junk, &styles);
    if (!(l->warned & 1) && (styles & ZKC__STYLE_CURATOR) && (styles & ZKC__STYLE_KAZOO)) {
        /* zkcoord names its nodes as Curator does; only a "-lock-" node that
         * is not ours (our data starts "zkcoord ") makes the mix unsafe. */
        l->warned |= 1;
        for (int i = 0, asked = 0; i < n && asked < 16; i++) {
            int32_t seq;
            int kind, style;
            if (zkc__seq_parse(m[i].name, &seq, &kind, &style) && style == ZKC__STYLE_CURATOR) {
                char *p = zkc__path_join(l->path, m[i].name);
                if (p) {
                    lock_ref(l);
                    zkc__get(c, p, NULL, mixed_check_done, l);
                    asked++;
                }
                free(p);
            }
        }
    }
    if (junk && !(l->warned & 2)) {
        l->warned |= 2;
        zkc__log(c, ZKC_LOG_WARN, "lock %s: ignoring %d child node(s) without a sequence suffix", l->path, junk);
    }
    int self = zkc__member_find(m, n, l->node_name);
    if (self < 0) {
        free(m);
        forget_node(l);
        acq_abort(l, ZKC_ESESSIONLOST, "lock %s: our queue node disappeared (deleted, or its session ended)",
                  l->path);
        lock_unref(l);
        return;
    }
    zkc__verdict v = {0, -1, 0, 0};
    int rc = l->kind->decide(l, m, n, self, &v);
    if (rc) {
        free(m);
        acq_abort(l, rc, "lock %s: %s", l->path, zkc_errmsg());
        lock_unref(l);
        return;
    }
    if (v.granted) {
        free(m);
        grant(l, v.kick_next && l->waited && self + 1 < n);
        lock_unref(l);
        return;
    }
    if (l->acq && l->acq->timeout_ms == 0) {
        free(m);
        acq_abort(l, ZKC_ETIMEDOUT, "lock %s is held (try-lock)", l->path);
        lock_unref(l);
        return;
    }
    l->phase = PH_WAITING;
    l->waited = 1;
    l->pred_w = zkc__watch_new(c, pred_fired, l);
    if (!l->pred_w) {
        free(m);
        acq_abort(l, ZKC_ENOMEM, "out of memory");
        lock_unref(l);
        return;
    }
    if (v.watch_children) {
        SEND(zkc__children(c, l->path, l->pred_w, pred_get_done, l), l);
    } else {
        char *p = zkc__path_join(l->path, m[v.blocker].name);
        if (p)
            SEND(zkc__get(c, p, l->pred_w, pred_get_done, l), l);
        free(p);
    }
    free(m);
    lock_unref(l);
}

static void config_done(zkc__req *r)
{
    zkc_lock *l = r->ctx;
    if (!stale(r) && l->phase == PH_CHECKING) {
        if (r->rc == ZR_OK) {
            /* Our own number, or 0 for data we cannot read (then ours rules). */
            long v = 0;
            char *end = NULL;
            if (r->valuelen > 0 && r->valuelen < 16)
                v = strtol(r->value, &end, 10);
            l->stored_leases = (end && *end == 0 && v > 0 && v < 1000000) ? (int)v : 0;
            SEND(zkc__children(l->c, l->path, NULL, check_done, l), l);
        } else {
            map_fail(l, r->rc, "reading the semaphore's lease count");
        }
    }
    lock_unref(l);
}

static void do_check(zkc_lock *l)
{
    l->phase = PH_CHECKING;
    if (l->kind->stores_leases && l->stored_leases < 0) {
        SEND(zkc__get(l->c, l->path, NULL, config_done, l), l);
        return;
    }
    SEND(zkc__children(l->c, l->path, NULL, check_done, l), l);
}

/* ---------------------------------------------------------------- acquire */

static void timer_fired(zkc__timer *t)
{
    zkc_lock *l = ZKC__CONTAINER_OF(t, zkc_lock, timer);
    if (l->acq)
        acq_abort(l, ZKC_ETIMEDOUT, "lock %s: not acquired within %d ms", l->path, l->acq->timeout_ms);
}

static void acq_start(zkc__op *op)
{
    acq_op *a = ZKC__CONTAINER_OF(op, acq_op, op);
    zkc_lock *l = a->l;
    zkc_client *c = l->c;
    if (l->destroyed) {
        zkc__op_finish(op, ZKC_ECLOSED, "lock %s is being destroyed", l->path);
        return;
    }
    if (l->acq || l->phase == PH_RELEASING) {
        zkc__op_finish(op, ZKC_EBUSY, "lock %s: an acquire or release of this object is already running", l->path);
        return;
    }
    if (l->holds > 0 && !l->lost) {
        PUT(l->holds, l->holds + 1);
        a->token = l->token;
        zkc__op_finish(op, 0, NULL);
        return;
    }
    l->acq = a;
    PUT(l->lost, 0);
    PUT(l->holds, 0);
    l->waited = 0;
    l->creates = 0;
    l->stored_leases = -1;
    l->epoch++;
    zkc__uuid(l->uuid);
    if (a->timeout_ms > 0)
        zkc__timer_arm(c, &l->timer, zkc__now_ms() + a->timeout_ms);
    do_create(l);
}

static void acq_invoke(zkc__op *op)
{
    acq_op *a = ZKC__CONTAINER_OF(op, acq_op, op);
    if (a->cb)
        a->cb(a->l, op->status, a->token, a->ud);
}

static void acq_release(zkc__op *op)
{
    acq_op *a = ZKC__CONTAINER_OF(op, acq_op, op);
    zkc_lock *l = a->l;
    free(a);
    lock_unref(l);
}

static acq_op *acq_new(zkc_lock *l, int timeout_ms)
{
    acq_op *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->op.c = l->c;
    a->op.invoke = acq_invoke;
    a->op.release = acq_release;
    a->l = l;
    a->timeout_ms = timeout_ms;
    lock_ref(l);
    return a;
}

static int check_lock(zkc_lock *l, int timeout_ms, const char *fn)
{
    if (!l)
        return zkc__err(ZKC_EINVAL, "%s: lock is NULL", fn);
    if (timeout_ms < 0 && timeout_ms != ZKC_FOREVER)
        return zkc__err(ZKC_EINVAL, "%s: timeout %d ms is negative (use ZKC_FOREVER)", fn, timeout_ms);
    if (__atomic_load_n(&l->api_destroyed, __ATOMIC_ACQUIRE))
        return zkc__err(ZKC_EINVAL, "%s: lock %s was destroyed", fn, l->path);
    return 0;
}

int zkc_lock_acquire(zkc_lock *l, int timeout_ms, int64_t *token)
{
    int rc = check_lock(l, timeout_ms, "zkc_lock_acquire");
    if (rc)
        return rc;
    if ((rc = zkc__check_blocking(l->c)) != 0)
        return rc;
    acq_op *a = acq_new(l, timeout_ms);
    if (!a)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    rc = zkc__op_run(&a->op, acq_start, 1);
    if (rc == 0 && token)
        *token = a->token;
    a->op.release(&a->op);
    return rc;
}

int zkc_lock_acquire_async(zkc_lock *l, int timeout_ms, zkc_lock_cb cb, void *ud)
{
    int rc = check_lock(l, timeout_ms, "zkc_lock_acquire_async");
    if (rc)
        return rc;
    if (!cb)
        return zkc__err(ZKC_EINVAL, "zkc_lock_acquire_async: callback is NULL");
    acq_op *a = acq_new(l, timeout_ms);
    if (!a)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    a->cb = cb;
    a->ud = ud;
    return zkc__op_run(&a->op, acq_start, 0);
}

/* ---------------------------------------------------------------- simple ops */

static void simple_invoke(zkc__op *op)
{
    ZKC__UNUSED(op);
}

static void simple_release(zkc__op *op)
{
    simple_op *s = ZKC__CONTAINER_OF(op, simple_op, op);
    zkc_lock *l = s->l;
    free(s);
    lock_unref(l);
}

static int run_simple(zkc_lock *l, void (*start)(zkc__op *), int blocking)
{
    simple_op *s = calloc(1, sizeof *s);
    if (!s)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    s->op.c = l->c;
    s->op.invoke = simple_invoke;
    s->op.release = simple_release;
    s->l = l;
    lock_ref(l);
    int rc = zkc__op_run(&s->op, start, blocking);
    if (blocking)
        s->op.release(&s->op);
    return rc;
}

static void cancel_start(zkc__op *op)
{
    simple_op *s = ZKC__CONTAINER_OF(op, simple_op, op);
    zkc_lock *l = s->l;
    if (!l->acq) {
        zkc__op_finish(op, 0, NULL);
        return;
    }
    acq_abort(l, ZKC_ECANCELED, "lock %s: acquire cancelled", l->path);
    zkc__op_finish(op, 0, NULL);
}

int zkc_lock_cancel(zkc_lock *l)
{
    int rc = check_lock(l, 0, "zkc_lock_cancel");
    if (rc)
        return rc;
    if (zkc__on_engine(l->c))
        return zkc__err(ZKC_EDEADLK, "zkc_lock_cancel from the engine thread");
    return run_simple(l, cancel_start, 1);
}

static void release_delete_done(zkc__req *r)
{
    zkc_lock *l = r->ctx;
    simple_op *s = l->release_op;
    l->release_op = NULL;
    if (zkc__zrc_indeterminate(r->rc) || r->rc == ZR_NOTSENT) {
        /* Maybe deleted, maybe not: the janitor makes sure once it can. */
        zkc__janitor_delete(r->c, r->path);
    }
    if (l->phase == PH_RELEASING)
        l->phase = PH_IDLE;
    if (s)
        zkc__op_finish(&s->op, 0, NULL);
    lock_unref(l);
}

static void release_start(zkc__op *op)
{
    simple_op *s = ZKC__CONTAINER_OF(op, simple_op, op);
    zkc_lock *l = s->l;
    if (l->lost) {
        PUT(l->lost, 0);
        PUT(l->holds, 0);
        zkc__op_finish(op, ZKC_ESESSIONLOST,
                       "lock %s: the hold had already been lost (session ended or node deleted); nothing to "
                       "release",
                       l->path);
        return;
    }
    if (l->holds <= 0 || l->phase != PH_HELD) {
        zkc__op_finish(op, ZKC_ENOTHELD, "lock %s: release by an object that does not hold it", l->path);
        return;
    }
    PUT(l->holds, l->holds - 1);
    if (l->holds > 0) {
        zkc__op_finish(op, 0, NULL);
        return;
    }
    l->phase = PH_RELEASING;
    zkc__watch_forget(l->own_w); /* our delete below fires it */
    l->own_w = NULL;
    char *node = l->node;
    l->node = NULL;
    l->node_name = NULL;
    l->release_op = s;
    l->epoch++;
    lock_ref(l);
    zkc__delete(l->c, node, -1, release_delete_done, l);
    free(node);
}

int zkc_lock_release(zkc_lock *l)
{
    int rc = check_lock(l, 0, "zkc_lock_release");
    if (rc)
        return rc;
    if ((rc = zkc__check_blocking(l->c)) != 0)
        return rc;
    return run_simple(l, release_start, 1);
}

/* ---------------------------------------------------------------- session */

static void lock_session(zkc__sess_listener *sl, zkc_state st, uint64_t gen)
{
    zkc_lock *l = ZKC__CONTAINER_OF(sl, zkc_lock, sl);
    int holding = l->phase == PH_HELD && l->holds > 0;
    switch ((int)st) {
    case ZKC_STATE_SUSPENDED:
        if (holding)
            notify(l, ZKC_LOCK_EVENT_SUSPENDED);
        break;
    case ZKC_STATE_RECONNECTED:
        if (holding)
            notify(l, ZKC_LOCK_EVENT_RECONNECTED);
        break;
    case ZKC_STATE_LOST:
        if (holding && l->node_gen == gen) {
            /* The session that owned the node is gone (or presumed gone: then
             * the janitor deletes the node from the next session, which lets the
             * next waiter in sooner than the server's expiry would). */
            zkc__janitor_delete(l->c, l->node);
            forget_node(l);
            drop_watches(l);
            PUT(l->lost, 1);
            l->phase = PH_IDLE;
            notify(l, ZKC_LOCK_EVENT_LOST);
        } else if (l->acq) {
            acq_abort(l, ZKC_ESESSIONLOST, "lock %s: the ZooKeeper session ended while waiting", l->path);
        }
        break;
    default:
        break;
    }
}

static void lock_shutdown(zkc__object *o)
{
    zkc_lock *l = ZKC__CONTAINER_OF(o, zkc_lock, obj);
    drop_watches(l);
    zkc__timer_disarm(l->c, &l->timer);
    if (l->acq) {
        l->epoch++;
        acq_finish(l, ZKC_ECANCELED, "lock %s: the client is being destroyed", l->path);
    }
    if (l->release_op) {
        zkc__op_finish(&l->release_op->op, 0, NULL);
        l->release_op = NULL;
    }
    /* Holds end with the session, which the client closes next. */
    forget_node(l);
    PUT(l->holds, 0);
    l->phase = PH_IDLE;
    zkc__sess_unlisten(l->c, &l->sl);
    zkc__object_unlink(l->c, &l->obj);
}

/* ---------------------------------------------------------------- lifecycle */

zkc_lock *zkc__lock_new(zkc_client *c, const char *path, const zkc__qkind *kind, int max_leases)
{
    zkc_lock *l = calloc(1, sizeof *l);
    if (!l || !(l->path = strdup(path))) {
        free(l);
        zkc__err(ZKC_ENOMEM, "out of memory");
        return NULL;
    }
    l->c = c;
    l->kind = kind;
    l->max_leases = max_leases;
    l->refs = 1;
    l->obj.shutdown = lock_shutdown;
    l->sl.fn = lock_session;
    zkc__timer_init(&l->timer, timer_fired);
    pthread_mutex_init(&l->mu, NULL);
    zkc__client_ref(c);
    return l;
}

static void register_start(zkc__op *op)
{
    simple_op *s = ZKC__CONTAINER_OF(op, simple_op, op);
    zkc__object_link(s->l->c, &s->l->obj);
    zkc__sess_listen(s->l->c, &s->l->sl);
    zkc__op_finish(op, 0, NULL);
}

/* Link the object into its client on the engine (the only thread that walks
 * those lists). From the engine itself (never a user thread) it is direct. */
int zkc__lock_register(zkc_lock *l);
int zkc__lock_register(zkc_lock *l)
{
    return run_simple(l, register_start, 1);
}

static void destroy_start(zkc__op *op)
{
    simple_op *s = ZKC__CONTAINER_OF(op, simple_op, op);
    zkc_lock *l = s->l;
    zkc_client *c = l->c;
    if (l->acq)
        acq_abort(l, ZKC_ECANCELED, "lock %s: destroyed while acquiring", l->path);
    drop_watches(l);
    zkc__timer_disarm(c, &l->timer);
    if (l->node) {
        /* Still held: release it on the way out. */
        zkc__janitor_delete(c, l->node);
        forget_node(l);
    }
    PUT(l->holds, 0);
    l->destroyed = 1;
    if (l->obj.linked) {
        zkc__sess_unlisten(c, &l->sl);
        zkc__object_unlink(c, &l->obj);
    }
    zkc__op_finish(op, 0, NULL);
}

void zkc_lock_destroy(zkc_lock *l)
{
    if (!l)
        return;
    if (__atomic_exchange_n(&l->api_destroyed, 1, __ATOMIC_ACQ_REL)) {
        zkc__set_errmsg("zkc_lock_destroy called twice");
        return;
    }
    /* With the client gone or going, its shutdown already cancelled our work
     * and unlinked us. */
    if (!__atomic_load_n(&l->c->api_closing, __ATOMIC_ACQUIRE))
        run_simple(l, destroy_start, 1);
    lock_unref(l);
}

int zkc_lock_token(zkc_lock *l, int64_t *token)
{
    if (!l || !token)
        return zkc__err(ZKC_EINVAL, "zkc_lock_token: NULL argument");
    /* Read racily on purpose: a snapshot; the engine publishes holds and token
     * before it completes the acquire that a caller waited for. */
    int holds = __atomic_load_n(&l->holds, __ATOMIC_ACQUIRE);
    int lost = __atomic_load_n(&l->lost, __ATOMIC_ACQUIRE);
    if (holds <= 0 || lost)
        return zkc__err(ZKC_ENOTHELD, "lock %s is not held by this object", l->path);
    *token = __atomic_load_n(&l->token, __ATOMIC_ACQUIRE);
    return 0;
}

int zkc_lock_is_held(zkc_lock *l)
{
    if (!l)
        return 0;
    int holds = __atomic_load_n(&l->holds, __ATOMIC_ACQUIRE);
    int lost = __atomic_load_n(&l->lost, __ATOMIC_ACQUIRE);
    return holds > 0 && !lost && zkc_client_connected(l->c);
}

void zkc_lock_set_listener(zkc_lock *l, zkc_lock_event_fn fn, void *ud)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->ev_fn = fn;
    l->ev_ud = ud;
    pthread_mutex_unlock(&l->mu);
}

const char *zkc_lock_path(zkc_lock *l)
{
    return l ? l->path : NULL;
}

void zkc__lock_set_sibling(zkc_lock *reader, zkc_lock *writer);
void zkc__lock_set_sibling(zkc_lock *reader, zkc_lock *writer)
{
    reader->sibling = writer;
}

int zkc__lock_kind_of(zkc_lock *l);
int zkc__lock_kind_of(zkc_lock *l)
{
    return l->kind->kind;
}
