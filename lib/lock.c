/*
 * The lock object (zkc_lock) and its API: acquire (blocking, async, try),
 * cancel, release with re-entrant holds, fencing tokens, lock-lost events.
 * Every kind (lockkind.c) is this object plus a tag and a decide(); the node
 * in the queue and everything it takes to keep exactly one there is the
 * member core's (member.c).
 *
 * An acquire, on the engine thread:
 *   join (the member creates our node, deciding an unanswered create by its
 *   tag) -> [semaphore: read the lease count stored in the lock node]
 *   -> list -> decide -> granted: done | try-lock: abort | wait on one node
 *   -> it changed: granted, if the news alone lets us in (in_without: the
 *   node deleted, or a mutex or writer ahead released its hold), else list
 *   again.
 * A mutex or writer releases by writing and deleting its node in one multi
 * (zkc__qm_release), which is that news for the waiter behind it: no listing
 * per handoff (issue 21). A semaphore member, once admitted, writes into its
 * node the names of those that can still be ahead of it, which lets the
 * waiter behind it decide, or watch those few, without a listing (semaphore
 * admissions: semaphore.c).
 * Giving up (timeout, cancel, an error) ends the member's attempt: the node
 * is deleted before the caller hears the status when a server is reachable,
 * so "timed out" also means "left nothing"; otherwise the janitor deletes it.
 */
#include "lock.h"

#include "member.h"
#include "txn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { L_IDLE = 0, L_ACQUIRING, L_HELD, L_RELEASING };

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
    zkc_lock_cb cb; /* zkc_lock_release_async's, or NULL */
    void *ud;
} simple_op;

/* holds, lost and token are written only by the engine but read by any thread
 * (zkc_lock_token, zkc_lock_is_held): written with these. */
#define PUT(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELEASE)

/* ---------------------------------------------------------------- refs */

static void lock_free(zkc_lock *l)
{
    zkc_client *c = l->c;
    zkc__sem_forget(l);
    free(l->m.node);
    free(l->path);
    zkc__listener_destroy(&l->lis);
    free(l->guard_node);
    pthread_mutex_destroy(&l->mu);
    free(l);
    zkc__client_unref(c);
}

void zkc__lock_ref(zkc_lock *l)
{
    zkc__ref_get(&l->refs);
}

void zkc__lock_unref(zkc_lock *l)
{
    if (zkc__ref_put(&l->refs))
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
    return s && s->holds > 0 && !s->lost && s->m.node ? s->m.node_name : NULL;
}

void zkc__lock_set_sibling(zkc_lock *reader, zkc_lock *writer)
{
    reader->sibling = writer;
}

zkc_client *zkc__lock_client(zkc_lock *l)
{
    return l->c;
}

int zkc__lock_kind_of(zkc_lock *l)
{
    return l->kind->kind;
}

/* ---------------------------------------------------------------- events */

static void ev_call(void (*fn)(void), void *obj, int ev, void *ud)
{
    ((zkc_lock_event_fn)fn)(obj, (zkc_lock_event)ev, ud);
}

static void ev_hold(void *obj)
{
    zkc__lock_ref(obj);
}

static void ev_drop(void *obj)
{
    zkc__lock_unref(obj);
}

static void notify(zkc_lock *l, zkc_lock_event ev)
{
    zkc__listener_post(l->c, &l->lis, (int)ev);
}

/* ---------------------------------------------------------------- ending an acquire */

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

/* The caller hears about the failure once the node is gone, or after at most
 * this long if the server is slow to confirm (a silent server must not stretch
 * a timeout); the delete then finishes, or the janitor does. */
#define ABORT_REPORT_WAIT_MS 250

/* Give up the current attempt and report `status` once its node is gone (or
 * the janitor has it). */
void zkc__lock_abort(zkc_lock *l, int status, const char *fmt, ...)
{
    acq_op *a = l->acq;
    l->acq = NULL;
    l->phase = L_IDLE;
    zkc__timer_disarm(l->c, &l->timer);
    zkc__sem_forget(l);
    if (!a) {
        zkc__qm_leave(&l->m, 0, NULL, NULL);
        return;
    }
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    zkc__qm_leave_finish(&l->m, ABORT_REPORT_WAIT_MS, &a->op, status, "%s", msg);
}

/* ---------------------------------------------------------------- the member's events */

static zkc_lock *of(zkc__qm *m)
{
    return ZKC__CONTAINER_OF(m, zkc_lock, m);
}

static void m_ref(zkc__qm *m)
{
    zkc__lock_ref(of(m));
}

static void m_unref(zkc__qm *m)
{
    zkc__lock_unref(of(m));
}

static void m_joined(zkc__qm *m)
{
    zkc_lock *l = of(m);
    PUT(l->token, m->czxid);
    char *node = m->node ? strdup(m->node) : NULL; /* NULL (out of memory): no guard for this hold */
    pthread_mutex_lock(&l->mu);
    free(l->guard_node);
    l->guard_node = node;
    l->guard_token = m->czxid;
    pthread_mutex_unlock(&l->mu);
    zkc__lock_check(l);
}

void zkc__lock_grant(zkc_lock *l, int kick, char *const *names, int n)
{
    l->phase = L_HELD;
    PUT(l->holds, 1);
    zkc__metrics_hold(l->c, &l->mh, ZKC__MK_OF_LOCK(l->kind->kind), l->path);
    PUT(l->lost, 0);
    zkc__qm_settle(&l->m);
    if (kick && l->m.node)
        zkc__sem_kick(l, names, n); /* a semaphore's: semaphore.c */
    zkc__sem_forget(l);
    acq_finish(l, 0, NULL);
}

/* Would we hold if v[from..blocker] were gone? Then that news alone lets us
 * in, with no second listing (issue 21; the rule at the top of member_wait.c):
 * sequence numbers only grow, so nobody can queue ahead of us later (the
 * queue node cannot be reaped and restarted while our node is in it),
 * members ahead can only leave, and every kind's decision only looks at the
 * members ahead of us and never turns a grant into a wait when one of them
 * leaves. from = blocker: the blocker deleted (GONE). from = 0: an exclusive
 * blocker that held and left (TOUCHED: it was the head, so everything ahead
 * of it had gone already). */
static int in_without(zkc_lock *l, const zkc__member *v, int n, int self, int from, int blocker)
{
    if (blocker < 0 || blocker >= self || from < 0 || from > blocker)
        return 0;
    int cut = blocker - from + 1;
    zkc__member *w = malloc((size_t)n * sizeof *w);
    if (!w)
        return 0; /* then it lists again, as it always could */
    memcpy(w, v, (size_t)from * sizeof *w);
    memcpy(w + from, v + blocker + 1, (size_t)(n - blocker - 1) * sizeof *w);
    zkc__verdict vd = {0, -1, 0, 0};
    int in = l->kind->decide(l, w, n - cut, self - cut, &vd) == 0 && vd.granted;
    free(w);
    return in;
}

/* The kinds whose holder is the head of the queue: only they mark their
 * release (zkc__qm_release), and only their mark is read as "everything
 * ahead of it is gone". */
static int exclusive_kind(int kind)
{
    return kind == ZKC_LOCK_MUTEX || kind == ZKC_LOCK_WRITE;
}

static void m_listed(zkc__qm *m, const zkc__member *v, int n, int self)
{
    zkc_lock *l = of(m);
    if (!l->acq)
        return;
    zkc__verdict vd = {0, -1, 0, 0};
    int rc = l->kind->decide(l, v, n, self, &vd);
    if (rc) {
        zkc__lock_abort(l, rc, "lock %s: %s", l->path, zkc_errmsg());
        return;
    }
    if (vd.granted) {
        /* Kick whenever someone is behind us, waited or not: a waiter that
         * listed before our first listing may have seen us still out of the
         * leases and be watching our node. */
        char **names = calloc((size_t)self + 1, sizeof *names);
        for (int i = 0; names && i < self; i++)
            names[i] = (char *)v[i].name;
        zkc__lock_grant(l, vd.kick_next && self + 1 < n, names, names ? self : -1);
        free(names);
        return;
    }
    if (l->acq->timeout_ms == 0) {
        zkc__lock_abort(l, ZKC_ETIMEDOUT, "lock %s is held (try-lock)", l->path);
        return;
    }
    zkc__sem_forget(l);
    if (vd.watch_children && zkc__sem_names(l)) {
        /* The first waiter knows everyone ahead: max_leases of them. */
        char **names = calloc((size_t)self + 1, sizeof *names);
        if (!names) {
            zkc__lock_abort(l, ZKC_ENOMEM, "out of memory");
            return;
        }
        for (int i = 0; i < self; i++)
            names[i] = (char *)v[i].name;
        zkc__sem_wait_cand(l, names, self);
        free(names);
        return;
    }
    l->next_in = !vd.watch_children && in_without(l, v, n, self, vd.blocker, vd.blocker);
    l->next_in_held = !vd.watch_children && vd.blocker >= 0 && exclusive_kind(v[vd.blocker].kind) &&
                      in_without(l, v, n, self, 0, vd.blocker);
    if (!vd.watch_children && zkc__sem_names(l) && !(l->pred_name = strdup(v[vd.blocker].name))) {
        zkc__lock_abort(l, ZKC_ENOMEM, "out of memory");
        return;
    }
    zkc__qm_wait(m, vd.watch_children ? NULL : v[vd.blocker].name);
}

static void m_moved(zkc__qm *m, int how)
{
    zkc_lock *l = of(m);
    if (!l->acq)
        return;
    if ((how == ZKC__QM_GONE && l->next_in) || (how == ZKC__QM_TOUCHED && l->next_in_held)) {
        /* No listing needed: see in_without. Our own node's deletion by
         * someone else would have reached us first (m_gone): one session
         * hears its watches in the order of the changes. */
        zkc__lock_grant(l, l->kind->stores_leases, NULL, -1);
        return;
    }
    if (zkc__sem_moved(l, how))
        return;
    zkc__sem_forget(l);
    /* Semaphore: anything but the deletion of the member ahead (its
     * admission, or a change of the children list we watched as the first
     * waiter) leaves us at most the first waiter, who watches the children:
     * the listing that decides sets that watch too. */
    l->list_watched = l->kind->stores_leases && !zkc__sem_names(l) && how != ZKC__QM_GONE;
    zkc__lock_check(l);
}

static void m_failed(zkc__qm *m, int status, const char *msg)
{
    zkc_lock *l = of(m);
    if (l->acq)
        zkc__lock_abort(l, status, "%s", msg);
}

static void m_gone(zkc__qm *m)
{
    zkc_lock *l = of(m);
    if (l->phase == L_HELD) {
        PUT(l->lost, 1);
        l->phase = L_IDLE;
        zkc__metrics_unhold(l->c, &l->mh);
        notify(l, ZKC_LOCK_EVENT_LOST);
    } else if (l->acq) {
        zkc__lock_abort(l, ZKC_ESESSIONLOST, "lock %s: our queue node was deleted by another client while waiting",
                        l->path);
    }
}

static const zkc__qm_ops lock_member_ops = {m_ref, m_unref, m_joined, m_listed, m_moved, m_failed, m_gone, NULL, NULL};

/* ---------------------------------------------------------------- check */

static void config_done(zkc__req *r)
{
    zkc_lock *l = r->ctx;
    if (!zkc__qm_stale(&l->m, r->tag) && l->acq) {
        if (r->rc == ZR_OK) {
            /* Our own number, or 0 for data we cannot read (then ours rules). */
            long v = 0;
            char *end = NULL;
            if (r->valuelen > 0 && r->valuelen < 16)
                v = strtol(r->value, &end, 10);
            l->stored_leases = (end && *end == 0 && v > 0 && v < 1000000) ? (int)v : 0;
            zkc__qm_list(&l->m);
        } else {
            int e = r->rc == ZR_NOTSENT ? ZKC_ECONNLOSS : zkc__map_zrc(r->rc);
            zkc__lock_abort(l, e, "lock %s: reading the semaphore's lease count failed: %s", l->path,
                            zkc__zrc_name(r->rc));
        }
    }
    zkc__lock_unref(l);
}

void zkc__lock_check(zkc_lock *l)
{
    if (l->kind->stores_leases && l->stored_leases < 0) {
        zkc__lock_ref(l);
        zkc__get(l->c, l->path, NULL, config_done, l)->tag = l->m.epoch;
        return;
    }
    if (l->list_watched)
        zkc__qm_list_watched(&l->m);
    else
        zkc__qm_list(&l->m);
    l->list_watched = 0;
}

/* ---------------------------------------------------------------- acquire */

static void timer_fired(zkc__timer *t)
{
    zkc_lock *l = ZKC__CONTAINER_OF(t, zkc_lock, timer);
    if (l->acq)
        zkc__lock_abort(l, ZKC_ETIMEDOUT, "lock %s: not acquired within %d ms", l->path, l->acq->timeout_ms);
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
    if (l->acq || l->phase == L_RELEASING) {
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
    l->phase = L_ACQUIRING;
    PUT(l->lost, 0);
    PUT(l->holds, 0);
    l->stored_leases = -1;
    l->list_watched = 0;
    zkc__sem_forget(l);
    if (a->timeout_ms > 0)
        zkc__timer_arm(c, &l->timer, zkc__now_ms() + a->timeout_ms);
    zkc__qm_join(&l->m);
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
    zkc__lock_unref(l);
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
    zkc__metrics_tag(&a->op.ms, l->c, ZKC__MK_OF_LOCK(l->kind->kind), ZKC_HIST_LOCK_WAIT, l->path);
    zkc__lock_ref(l);
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
    simple_op *s = ZKC__CONTAINER_OF(op, simple_op, op);
    if (s->cb)
        s->cb(s->l, op->status, 0, s->ud);
}

static void simple_release(zkc__op *op)
{
    simple_op *s = ZKC__CONTAINER_OF(op, simple_op, op);
    zkc_lock *l = s->l;
    free(s);
    zkc__lock_unref(l);
}

static int run_simple_cb(zkc_lock *l, void (*start)(zkc__op *), int blocking, zkc_lock_cb cb, void *ud)
{
    simple_op *s = calloc(1, sizeof *s);
    if (!s)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    s->op.c = l->c;
    s->op.invoke = simple_invoke;
    s->op.release = simple_release;
    s->l = l;
    s->cb = cb;
    s->ud = ud;
    zkc__lock_ref(l);
    int rc = zkc__op_run(&s->op, start, blocking);
    if (blocking)
        s->op.release(&s->op);
    return rc;
}

static int run_simple(zkc_lock *l, void (*start)(zkc__op *), int blocking)
{
    return run_simple_cb(l, start, blocking, NULL, NULL);
}

static void cancel_start(zkc__op *op)
{
    simple_op *s = ZKC__CONTAINER_OF(op, simple_op, op);
    zkc_lock *l = s->l;
    if (l->acq)
        zkc__lock_abort(l, ZKC_ECANCELED, "lock %s: acquire cancelled", l->path);
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

static void released(void *ctx)
{
    zkc_lock *l = ctx;
    simple_op *s = l->release_op;
    l->release_op = NULL;
    if (l->phase == L_RELEASING)
        l->phase = L_IDLE;
    if (s)
        zkc__op_finish(&s->op, 0, NULL);
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
    if (l->holds <= 0 || l->phase != L_HELD) {
        zkc__op_finish(op, ZKC_ENOTHELD, "lock %s: release by an object that does not hold it", l->path);
        return;
    }
    PUT(l->holds, l->holds - 1);
    if (l->holds > 0) {
        zkc__op_finish(op, 0, NULL);
        return;
    }
    l->phase = L_RELEASING;
    zkc__metrics_unhold(l->c, &l->mh);
    l->release_op = s;
    /* Bounded by the operation timeout; a delete whose reply never came is
     * the janitor's to make sure of. An exclusive hold marks its release:
     * the waiter right behind goes in without a listing. */
    if (l->kind->exclusive)
        zkc__qm_release(&l->m, released, l);
    else
        zkc__qm_leave(&l->m, -1, released, l);
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

int zkc_lock_release_async(zkc_lock *l, zkc_lock_cb cb, void *ud)
{
    int rc = check_lock(l, 0, "zkc_lock_release_async");
    if (rc)
        return rc;
    if (!cb)
        return zkc__err(ZKC_EINVAL, "zkc_lock_release_async: the callback is NULL");
    return run_simple_cb(l, release_start, 0, cb, ud);
}

/* ---------------------------------------------------------------- session */

static void lock_session(zkc__sess_listener *sl, zkc_state st, uint64_t gen)
{
    zkc_lock *l = ZKC__CONTAINER_OF(sl, zkc_lock, sl);
    int holding = l->phase == L_HELD && l->holds > 0;
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
        if (holding && l->m.node_gen == gen) {
            /* The session that owned the node is gone (or presumed gone: then
             * the janitor deletes the node from the next session, which lets the
             * next waiter in sooner than the server's expiry would). */
            zkc__qm_lost(&l->m);
            PUT(l->lost, 1);
            l->phase = L_IDLE;
            zkc__metrics_unhold(l->c, &l->mh);
            notify(l, ZKC_LOCK_EVENT_LOST);
        } else if (l->acq) {
            zkc__lock_abort(l, ZKC_ESESSIONLOST, "lock %s: the ZooKeeper session ended while waiting", l->path);
        }
        break;
    default:
        break;
    }
}

static void lock_shutdown(zkc__object *o)
{
    zkc_lock *l = ZKC__CONTAINER_OF(o, zkc_lock, obj);
    /* Holds end with the session, which the client closes next. */
    zkc__qm_forget(&l->m);
    zkc__timer_disarm(l->c, &l->timer);
    acq_finish(l, ZKC_ECANCELED, "lock %s: the client is being destroyed", l->path);
    if (l->release_op) {
        zkc__op_finish(&l->release_op->op, 0, NULL);
        l->release_op = NULL;
    }
    PUT(l->holds, 0);
    l->phase = L_IDLE;
    zkc__metrics_unhold(l->c, &l->mh);
    zkc__sess_unlisten(l->c, &l->sl);
    zkc__object_unlink(l->c, &l->obj);
}

/* ---------------------------------------------------------------- lifecycle */

static zkc_lock *lock_new(zkc_client *c, const char *path, const zkc__qkind *kind, int max_leases)
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
    l->m.ops = &lock_member_ops;
    l->m.c = c;
    l->m.dir = l->path;
    l->m.tag = kind->tag;
    l->m.no_early = kind->stores_leases; /* reads the lease count first (zkc__lock_check) */
    if (kind->stores_leases) {
        /* The lock node is created with our lease count in it. */
        l->m.dir_len = snprintf(l->dir_data, sizeof l->dir_data, "%d", max_leases);
        l->m.dir_data = l->dir_data;
    }
    zkc__timer_init(&l->timer, timer_fired);
    zkc__listener_init(&l->lis, l, &l->api_destroyed, ev_call, ev_hold, ev_drop);
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

int zkc__lock_make(zkc_client *c, const char *path, const zkc__qkind *kind, int max_leases, zkc_lock **out)
{
    if (!out)
        return zkc__err(ZKC_EINVAL, "lock output pointer is NULL");
    *out = NULL;
    if (!c)
        return zkc__err(ZKC_EINVAL, "client is NULL");
    int rc = zkc__path_check(path, "lock path");
    if (rc)
        return rc;
    if (__atomic_load_n(&c->api_closing, __ATOMIC_ACQUIRE))
        return zkc__err(ZKC_ECLOSED, "the client is being destroyed");
    zkc_lock *l = lock_new(c, path, kind, max_leases);
    if (!l)
        return ZKC_ENOMEM;
    /* Linked into its client on the engine, the only thread that walks those
     * lists. */
    rc = run_simple(l, register_start, 1);
    if (rc) {
        zkc_lock_destroy(l);
        return rc;
    }
    *out = l;
    return 0;
}

int zkc_lock_create(zkc_client *c, const char *path, zkc_lock **out)
{
    return zkc__lock_make(c, path, &zkc__kind_mutex, 0, out);
}

int zkc_semaphore_create(zkc_client *c, const char *path, int max_leases, zkc_lock **out)
{
    if (max_leases < 1)
        return zkc__err(ZKC_EINVAL, "semaphore %s: max_leases must be at least 1 (got %d)", path ? path : "(null)",
                        max_leases);
    return zkc__lock_make(c, path, &zkc__kind_semaphore, max_leases, out);
}

static void destroy_start(zkc__op *op)
{
    simple_op *s = ZKC__CONTAINER_OF(op, simple_op, op);
    zkc_lock *l = s->l;
    zkc_client *c = l->c;
    if (l->acq)
        zkc__lock_abort(l, ZKC_ECANCELED, "lock %s: destroyed while acquiring", l->path);
    if (l->release_op) {
        /* A release_async in flight: the leave below replaces its callback,
         * and the node goes either way, so it has succeeded. */
        zkc__op_finish(&l->release_op->op, 0, NULL);
        l->release_op = NULL;
    }
    /* Still held: released on the way out, by the janitor. */
    zkc__qm_leave(&l->m, 0, NULL, NULL);
    zkc__timer_disarm(c, &l->timer);
    PUT(l->holds, 0);
    zkc__metrics_unhold(c, &l->mh);
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
    zkc__lock_unref(l);
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

int zkc_lock_guard(zkc_lock *l, zkc_guard *out)
{
    if (!l || !out)
        return zkc__err(ZKC_EINVAL, "zkc_lock_guard: NULL argument");
    int holds = __atomic_load_n(&l->holds, __ATOMIC_ACQUIRE);
    int lost = __atomic_load_n(&l->lost, __ATOMIC_ACQUIRE);
    if (holds <= 0 || lost)
        return zkc__err(ZKC_ENOTHELD, "zkc_lock_guard: lock %s is not held by this object", l->path);
    /* The node of a hold that ends meanwhile only makes the guard refuse
     * writes, which is what it is for. */
    char what[ZKC__PATH_MAX + 16];
    snprintf(what, sizeof what, "lock %s", l->path);
    pthread_mutex_lock(&l->mu);
    int rc = zkc__guard_of_hold(out, l->guard_node, l->guard_token, "zkc_lock_guard", what);
    pthread_mutex_unlock(&l->mu);
    return rc;
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
    if (l)
        zkc__listener_set(&l->lis, (void (*)(void))fn, ud);
}

const char *zkc_lock_path(zkc_lock *l)
{
    return l ? l->path : NULL;
}
