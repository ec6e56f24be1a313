/*
 * Id generator: order numbers unique across the fleet, leased in blocks.
 *
 * LEASES. The node at `path` is a public exactly-once counter holding the
 * highest id ever leased. A process leases a block of k ids with one bounded
 * add of k (ceiling max_id): the add's before/after are its block, ids
 * before+1 .. after, and it hands them out from memory under a mutex, so a
 * call that finds an id left costs no round trip and does not even wake the
 * engine. One lease is in flight per generator; calls that find the block
 * empty wait for it on the engine.
 *
 * WHY NO ID IS EVER HANDED OUT TWICE. The counter only moves up, and every
 * block is the range the counter moved over in one applied update, so blocks
 * of different leases (any process, any session) are disjoint. The counter's
 * exactly-once contract (lib/counter.c) decides a lost reply by its marker, so
 * a lease's before/after are those of the one update that was applied: a
 * retry never reports someone else's range as ours. A lease is not a hold: the
 * block belongs to us because the counter has moved past it, whatever happens
 * to our session, so SUSPENDED and LOST change nothing for ids already leased
 * and there is nothing to give back.
 *
 * HOLES. Ids of a block not handed out when the process exits (or destroys
 * the generator) are never used by anyone: a hole. So is a block whose lease
 * outcome stayed unknown (ZKC_EUNKNOWN: no server reachable to decide): it may
 * have been applied, and we never use it. Ids are unique, not gap-free.
 *
 * ORDER. Within one generator ids are strictly increasing in hand-out order
 * (blocks are leased one at a time and each lies above the last). Across
 * processes: every id of a block leased after another block's lease was
 * applied is larger than every id of that block; two processes serving from
 * their current blocks interleave at block granularity.
 *
 * GROWTH. A block used up within grow_ms of its arrival doubles the next lease
 * (up to max_block); one that lasted 8 x grow_ms or longer halves it (down to
 * the configured block), so an idle process leaves small holes when it dies.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct idg_wait idg_wait;
struct idg_wait {
    zkc__op op;
    zkc_idgen *g;
    int64_t deadline; /* 0: try once; INT64_MAX: forever */
    int64_t id;
    zkc_idgen_cb cb;
    void *ud;
};

struct zkc_idgen {
    zkc_client *c;
    zkc_counter *ctr;
    int64_t block_min, block_max, max_id;
    int grow_ms;
    pthread_mutex_t mu; /* guards next and end: any thread takes ids here */
    int64_t next, end;  /* leased and unused: next .. end-1 */
    /* engine only */
    zkc__object obj;
    int64_t block;      /* size of the next lease */
    int64_t lease_at;   /* monotonic ms the current block arrived; 0 none yet */
    int busy;           /* a lease is in flight */
    int destroyed;
    zkc__list waiters;  /* idg_wait (by op.queued), served in order */
    zkc__timer timer;   /* earliest waiter deadline */
    int refs;           /* atomic */
};

void zkc_idgen_options_init(zkc_idgen_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->block = 100;
    o->max_block = 100000;
    o->grow_ms = 1000;
    o->max_id = INT64_MAX;
}

static void idg_unref(zkc_idgen *g)
{
    if (zkc__ref_put(&g->refs)) {
        zkc_client *c = g->c;
        zkc_counter_destroy(g->ctr);
        pthread_mutex_destroy(&g->mu);
        free(g);
        zkc__client_unref(c);
    }
}

/* Any thread: the next leased id, or 0 if the block is used up. */
static int take_local(zkc_idgen *g, int64_t *id)
{
    int ok = 0;
    pthread_mutex_lock(&g->mu);
    if (g->next < g->end) {
        *id = g->next++;
        ok = 1;
    }
    pthread_mutex_unlock(&g->mu);
    return ok;
}

static void pump(zkc_idgen *g);

/* The first waiter, or NULL. */
static idg_wait *head(zkc_idgen *g)
{
    zkc__op *op = zkc__opq_first(&g->waiters);
    return op ? ZKC__CONTAINER_OF(op, idg_wait, op) : NULL;
}

typedef struct lease_ctx {
    zkc_idgen *g;
    int64_t size;
    int status;
    int64_t before, after;
    char msg[200];
} lease_ctx;

static void lease_done_engine(void *arg);

static void lease_cb(zkc_counter *ctr, int status, const zkc_counter_result *r, void *ud)
{
    lease_ctx *l = ud;
    ZKC__UNUSED(ctr);
    /* Dispatch thread: carry the outcome to the engine, which owns the waiters. */
    l->status = status;
    if (status == 0) {
        l->before = r->before;
        l->after = r->after;
    } else {
        snprintf(l->msg, sizeof l->msg, "%s", zkc_errmsg());
    }
    if (zkc__post_call(l->g->c, lease_done_engine, l) != 0) {
        /* Only short of memory: the block becomes a hole, waiters end at their
         * deadlines (or at destroy). */
        idg_unref(l->g);
        free(l);
    }
}

static void lease_done_engine(void *arg)
{
    lease_ctx *l = arg;
    zkc_idgen *g = l->g;
    g->busy = 0;
    if (l->status == 0) {
        pthread_mutex_lock(&g->mu);
        g->next = l->before + 1;
        g->end = l->after + 1;
        pthread_mutex_unlock(&g->mu);
        g->lease_at = zkc__now_ms();
    } else if (l->status == ZKC_EBOUND && l->size > 1) {
        /* Fewer ids than a block are left below max_id: lease what fits. */
        g->block = 1;
    } else {
        char msg[512];
        int status = l->status;
        if (status == ZKC_EBOUND) {
            status = ZKC_ELIMIT;
            snprintf(msg, sizeof msg, "id generator %s: every id up to %" PRId64 " is leased",
                     zkc_counter_path(g->ctr), g->max_id);
        } else if (status == ZKC_EUNKNOWN) {
            /* No id was handed out; the block that may have been leased is
             * skipped for good (a hole, never a duplicate). */
            status = ZKC_ECONNLOSS;
            snprintf(msg, sizeof msg,
                     "id generator %s: no server reachable to lease ids (the lease's outcome is unknown; "
                     "its block, if taken, is never used): %s",
                     zkc_counter_path(g->ctr), l->msg);
        } else {
            snprintf(msg, sizeof msg, "id generator %s: leasing ids: %s", zkc_counter_path(g->ctr), l->msg);
        }
        zkc__opq_fail_all(&g->waiters, status, msg);
    }
    free(l);
    pump(g);
    idg_unref(g);
}

static void grow(zkc_idgen *g, int64_t now)
{
    if (g->lease_at == 0)
        return;
    int64_t lasted = now - g->lease_at;
    if (lasted < g->grow_ms)
        g->block = g->block > g->block_max / 2 ? g->block_max : g->block * 2;
    else if (lasted >= 8 * (int64_t)g->grow_ms)
        g->block = g->block / 2 < g->block_min ? g->block_min : g->block / 2;
}

static void lease(zkc_idgen *g)
{
    lease_ctx *l = calloc(1, sizeof *l);
    if (!l) {
        zkc__opq_fail_all(&g->waiters, ZKC_ENOMEM, "id generator: out of memory");
        return;
    }
    int64_t now = zkc__now_ms();
    grow(g, now);
    g->lease_at = 0;
    l->g = g;
    l->size = g->block;
    zkc_update u;
    memset(&u, 0, sizeof u);
    u.bounds.has_ceiling = 1;
    u.bounds.ceiling = g->max_id;
    g->busy = 1;
    zkc__ref_get(&g->refs);
    int rc = zkc_counter_add_async(g->ctr, l->size, &u, lease_cb, l);
    if (rc != 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "id generator %s: leasing ids: %s", zkc_counter_path(g->ctr), zkc_errmsg());
        g->busy = 0;
        free(l);
        idg_unref(g);
        zkc__opq_fail_all(&g->waiters, rc, msg);
    }
}

static void arm_deadline(zkc_idgen *g)
{
    int64_t due = INT64_MAX;
    for (zkc__list_node *n = zkc__list_first(&g->waiters); n; n = zkc__list_next(&g->waiters, n)) {
        idg_wait *w = ZKC__CONTAINER_OF(n, idg_wait, op.queued);
        if (w->deadline != INT64_MAX && w->deadline < due)
            due = w->deadline;
    }
    if (due == INT64_MAX)
        zkc__timer_disarm(g->c, &g->timer);
    else
        zkc__timer_arm(g->c, &g->timer, due);
}

/* Engine: serve waiters in order from the block; lease when it is used up. */
static void pump(zkc_idgen *g)
{
    idg_wait *w;
    while ((w = head(g)) != NULL) {
        if (g->c->closing || g->destroyed) {
            zkc__opq_fail_all(&g->waiters, ZKC_ECANCELED, "id generator destroyed");
            break;
        }
        if (!take_local(g, &w->id))
            break;
        zkc__list_remove(&w->op.queued);
        zkc__op_finish(&w->op, 0, NULL);
    }
    if (zkc__list_empty(&g->waiters)) {
        zkc__timer_disarm(g->c, &g->timer);
        return;
    }
    if (!g->busy)
        lease(g);
    /* A lease that failed at once ended every waiter. */
    if (zkc__list_empty(&g->waiters))
        return;
    /* Waiters that only try end now; the lease goes on for later calls. */
    zkc__list_node *n, *tmp;
    ZKC__LIST_FOREACH_SAFE(n, tmp, &g->waiters) {
        w = ZKC__CONTAINER_OF(n, idg_wait, op.queued);
        if (w->deadline == 0 || (w->deadline != INT64_MAX && w->deadline <= zkc__now_ms())) {
            zkc__list_remove(n);
            zkc__op_finish(&w->op, ZKC_ETIMEDOUT, "id generator %s: no id leased %s", zkc_counter_path(g->ctr),
                           w->deadline == 0 ? "(try: a lease is under way)" : "before the timeout");
        }
    }
    arm_deadline(g);
}

static void timer_fired(zkc__timer *tm)
{
    pump(ZKC__CONTAINER_OF(tm, zkc_idgen, timer));
}

static void idg_shutdown(zkc__object *o)
{
    zkc_idgen *g = ZKC__CONTAINER_OF(o, zkc_idgen, obj);
    zkc__opq_fail_all(&g->waiters, ZKC_ECANCELED, "id generator: the client is being destroyed");
    zkc__timer_disarm(g->c, &g->timer);
    zkc__object_unlink(g->c, &g->obj);
}

static void wait_start(zkc__op *op)
{
    idg_wait *w = ZKC__CONTAINER_OF(op, idg_wait, op);
    zkc_idgen *g = w->g;
    if (!g->obj.linked && !g->destroyed)
        zkc__object_link(g->c, &g->obj);
    zkc__list_push_back(&g->waiters, &w->op.queued);
    pump(g);
}

static void wait_invoke(zkc__op *op)
{
    idg_wait *w = ZKC__CONTAINER_OF(op, idg_wait, op);
    if (w->cb)
        w->cb(w->g, op->status, op->status == 0 ? w->id : 0, w->ud);
}

static void wait_release(zkc__op *op)
{
    idg_wait *w = ZKC__CONTAINER_OF(op, idg_wait, op);
    zkc_idgen *g = w->g;
    free(w);
    idg_unref(g);
}

static int submit(zkc_idgen *g, int timeout_ms, zkc_idgen_cb cb, void *ud, int64_t *id)
{
    if (!g)
        return zkc__err(ZKC_EINVAL, "id generator is NULL");
    if (timeout_ms < 0 && timeout_ms != ZKC_FOREVER)
        return zkc__err(ZKC_EINVAL, "id generator: negative timeout %d", timeout_ms);
    int blocking = cb == NULL;
    if (blocking && !id)
        return zkc__err(ZKC_EINVAL, "zkc_idgen_next: id is NULL");
    if (blocking && take_local(g, id))
        return 0;
    idg_wait *w = calloc(1, sizeof *w);
    if (!w)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    w->op.c = g->c;
    w->op.invoke = wait_invoke;
    w->op.release = wait_release;
    w->g = g;
    w->deadline = timeout_ms == ZKC_FOREVER ? INT64_MAX : timeout_ms == 0 ? 0 : zkc__now_ms() + timeout_ms;
    w->cb = cb;
    w->ud = ud;
    zkc__ref_get(&g->refs);
    zkc__metrics_tag(&w->op.ms, g->c, ZKC_MK_IDGEN, ZKC__MH_NONE, zkc_idgen_path(g));
    int rc = zkc__op_run(&w->op, wait_start, blocking);
    if (blocking) {
        if (rc == 0)
            *id = w->id;
        w->op.release(&w->op);
    }
    return rc;
}

int zkc_idgen_next(zkc_idgen *g, int timeout_ms, int64_t *id)
{
    return submit(g, timeout_ms, NULL, NULL, id);
}

int zkc_idgen_next_async(zkc_idgen *g, int timeout_ms, zkc_idgen_cb cb, void *ud)
{
    if (!cb)
        return zkc__err(ZKC_EINVAL, "zkc_idgen_next_async: callback is NULL");
    return submit(g, timeout_ms, cb, ud, NULL);
}

typedef struct cancel_op {
    zkc__op op;
    zkc_idgen *g;
} cancel_op;

static void cancel_start(zkc__op *op)
{
    cancel_op *k = ZKC__CONTAINER_OF(op, cancel_op, op);
    zkc__opq_fail_all(&k->g->waiters, ZKC_ECANCELED, "id generator: next cancelled");
    zkc__timer_disarm(k->g->c, &k->g->timer);
    zkc__op_finish(op, 0, NULL);
}

static void cancel_release(zkc__op *op)
{
    ZKC__UNUSED(op);
}

int zkc_idgen_cancel(zkc_idgen *g)
{
    if (!g)
        return zkc__err(ZKC_EINVAL, "id generator is NULL");
    cancel_op k;
    memset(&k, 0, sizeof k);
    k.op.c = g->c;
    k.op.invoke = NULL;
    k.op.release = cancel_release;
    k.g = g;
    return zkc__op_run(&k.op, cancel_start, 1);
}

int zkc_idgen_create(zkc_client *c, const char *path, const zkc_idgen_options *opts, zkc_idgen **out)
{
    if (!out)
        return zkc__err(ZKC_EINVAL, "zkc_idgen_create: out is NULL");
    *out = NULL;
    if (!c)
        return zkc__err(ZKC_EINVAL, "zkc_idgen_create: client is NULL");
    zkc_idgen_options o;
    if (opts)
        o = *opts;
    else
        zkc_idgen_options_init(&o);
    if (o.block < 1)
        return zkc__err(ZKC_EINVAL, "id generator: block of %" PRId64 " ids; at least 1", o.block);
    if (o.max_block < o.block)
        return zkc__err(ZKC_EINVAL, "id generator: max_block %" PRId64 " is below block %" PRId64, o.max_block,
                        o.block);
    if (o.grow_ms < 0)
        return zkc__err(ZKC_EINVAL, "id generator: negative grow_ms %d", o.grow_ms);
    if (o.max_id < 1)
        return zkc__err(ZKC_EINVAL, "id generator: max_id %" PRId64 " leaves no id (ids start at 1)", o.max_id);
    int rc = zkc__path_check(path, "id generator path");
    if (rc)
        return rc;
    zkc_idgen *g = calloc(1, sizeof *g);
    if (!g)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    zkc_counter_options co;
    zkc_counter_options_init(&co);
    co.format = ZKC_FMT_INT64;
    if ((rc = zkc_counter_create(c, path, &co, &g->ctr)) != 0) {
        free(g);
        return rc;
    }
    g->c = c;
    g->block_min = g->block = o.block;
    g->block_max = o.max_block;
    g->grow_ms = o.grow_ms;
    g->max_id = o.max_id;
    g->refs = 1;
    zkc__list_init(&g->waiters);
    g->obj.shutdown = idg_shutdown;
    pthread_mutex_init(&g->mu, NULL);
    zkc__timer_init(&g->timer, timer_fired);
    zkc__client_ref(c);
    *out = g;
    return 0;
}

static void destroy_task(void *arg)
{
    zkc_idgen *g = arg;
    g->destroyed = 1;
    pump(g);
    zkc__timer_disarm(g->c, &g->timer);
    zkc__object_unlink(g->c, &g->obj);
    idg_unref(g);
}

void zkc_idgen_destroy(zkc_idgen *g)
{
    if (!g)
        return;
    if (__atomic_load_n(&g->c->api_closing, __ATOMIC_ACQUIRE) || zkc__post_call(g->c, destroy_task, g) != 0)
        idg_unref(g);
}

const char *zkc_idgen_path(zkc_idgen *g)
{
    return g ? zkc_counter_path(g->ctr) : NULL;
}
