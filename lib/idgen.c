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
 *
 * GAP-FREE MODE (options.gap_free: invoice numbers). No blocks: each id is
 * one exactly-once add of 1 on the same counter, so the counter's value N says
 * that ids 1..N were each taken by exactly one applied update, and the id goes
 * to the caller of that update and nobody else. A hole is then only an id
 * whose taker never learnt it or never used it; three cases, each closed:
 *   - Lost reply: the counter's marker decides it (applied: the id is ours).
 *   - Outcome unknown (ZKC_EUNKNOWN: no server reachable to decide): every
 *     take carries an idempotency key (the caller's, or one we make up), so
 *     it can be asked again. Our own keys go back to a pending list under
 *     the mutex, and the next unkeyed take of this generator re-sends that
 *     key instead of a new one: if the first attempt was applied, it is
 *     replayed and its id handed out then; if not, the re-send is simply a
 *     take. The error message names the key (zkc_counter_lookup).
 *   - The taker crashes, or decides not to use the id: a take under the
 *     caller's own key (zkc_idgen_next_keyed, e.g. the invoice's order id)
 *     returns the same id when repeated after a restart, so the work resumes
 *     with its number; an id that will not be used is voided
 *     (zkc_idgen_void): a persistent node <path>-voided/<id, 19 digits>, so an
 *     auditor finds every id up to N either in the books or voided.
 * A void is refused for an id above the counter (behind a quorum fence): a
 * voided id can never be taken afterwards. Voids sit beside the counter, not
 * under it, because a counter node with children cannot be rebased. User keys
 * are stored as "idg-<hash of path>-<key>", so the same order id used with
 * another counter or generator never replays the wrong outcome.
 */
#include "internal.h"
#include "codec.h"
#include "txn.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Stored idempotency keys: "idg-" 16 hex "-" and the rest, within the
 * counter's 200-byte key limit (zkc__name_check). */
#define ZKC__KEY_LEN 201
#define IDG_USER_KEY_MAX (200 - 21)

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
    /* gap-free mode */
    int gap_free;
    uint64_t path_hash;
    struct idg_pkey *pending; /* under mu: our keys whose take's outcome is unknown */
};

typedef struct idg_pkey {
    struct idg_pkey *next;
    char key[ZKC__KEY_LEN];
} idg_pkey;

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
        while (g->pending) {
            idg_pkey *k = g->pending;
            g->pending = k->next;
            free(k);
        }
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

/* ------------------------------------------------------ gap-free mode */

static uint64_t idg_seq; /* atomic: our own keys' serial within this process */

/* The stored key of a take: the caller's under this generator's path, else a
 * pending key of ours (an earlier take whose outcome is unknown), else a new
 * one. *ours says which, for gf_outcome. */
static int gf_key(zkc_idgen *g, const char *user, char *key, int *ours)
{
    *ours = 0;
    if (user) {
        int rc = zkc__name_check(user, "id generator key");
        if (rc)
            return rc;
        if (strlen(user) > IDG_USER_KEY_MAX)
            return zkc__err(ZKC_EINVAL, "id generator key is %zu bytes long; the limit is %d", strlen(user),
                            IDG_USER_KEY_MAX);
        snprintf(key, ZKC__KEY_LEN, "idg-%016" PRIx64 "-%s", g->path_hash, user);
        return 0;
    }
    *ours = 1;
    pthread_mutex_lock(&g->mu);
    idg_pkey *k = g->pending;
    if (k)
        g->pending = k->next;
    pthread_mutex_unlock(&g->mu);
    if (k) {
        memcpy(key, k->key, ZKC__KEY_LEN);
        free(k);
        return 0;
    }
    snprintf(key, ZKC__KEY_LEN, "idg-%016" PRIx64 "-%s-%" PRIu64, g->path_hash, g->c->uuid,
             __atomic_add_fetch(&idg_seq, 1, __ATOMIC_RELAXED));
    return 0;
}

/* Our key goes back for the next unkeyed take to re-send (see the essay). */
static void gf_repend(zkc_idgen *g, const char *key)
{
    idg_pkey *k = malloc(sizeof *k);
    if (!k)
        return; /* out of memory: the id, if taken, stays a hole the error message names */
    memcpy(k->key, key, ZKC__KEY_LEN);
    pthread_mutex_lock(&g->mu);
    k->next = g->pending;
    g->pending = k;
    pthread_mutex_unlock(&g->mu);
}

/* The caller's status for a take's outcome; sets zkc_errmsg on failure. */
static int gf_outcome(zkc_idgen *g, const char *key, int ours, int status, const zkc_counter_result *r,
                      int64_t *id)
{
    if (status == 0) {
        *id = r->after;
        return 0;
    }
    if (status == ZKC_EBOUND)
        return zkc__err(ZKC_ELIMIT, "id generator %s: every id up to %" PRId64 " is taken",
                        zkc_counter_path(g->ctr), g->max_id);
    if (status == ZKC_EUNKNOWN) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s", zkc_errmsg());
        if (ours)
            gf_repend(g, key);
        return zkc__err(ZKC_EUNKNOWN,
                        "id generator %s: no server reachable to decide the take under key %s (%s; the %s "
                        "it: an id taken is handed out then, never lost)",
                        zkc_counter_path(g->ctr), key, msg,
                        ours ? "next call of this generator re-sends" : "same key repeated returns");
    }
    return status; /* the counter's message stands */
}

static void gf_update(zkc_idgen *g, const char *key, zkc_update *u)
{
    memset(u, 0, sizeof *u);
    u->key = key;
    u->bounds.has_ceiling = 1;
    u->bounds.ceiling = g->max_id;
}

typedef struct gf_take {
    zkc_idgen *g;
    zkc_idgen_cb cb;
    void *ud;
    int ours;
    char key[ZKC__KEY_LEN];
} gf_take;

static void gf_take_cb(zkc_counter *ctr, int status, const zkc_counter_result *r, void *ud)
{
    gf_take *t = ud;
    ZKC__UNUSED(ctr);
    int64_t id = 0;
    int rc = gf_outcome(t->g, t->key, t->ours, status, r, &id);
    t->cb(t->g, rc, rc == 0 ? id : 0, t->ud);
    idg_unref(t->g);
    free(t);
}

/* One take: one exactly-once add of 1 under a key. Blocking when cb is NULL
 * (the counter's blocking add is its async call plus a wait). */
static int gf_submit(zkc_idgen *g, const char *user_key, zkc_idgen_cb cb, void *ud, int64_t *id)
{
    if (!g->gap_free)
        return zkc__err(ZKC_EINVAL, "id generator %s: keyed ids need the gap_free option",
                        zkc_counter_path(g->ctr));
    zkc_update u;
    if (!cb) {
        char key[ZKC__KEY_LEN];
        int ours, rc = gf_key(g, user_key, key, &ours);
        if (rc)
            return rc;
        gf_update(g, key, &u);
        zkc_counter_result r;
        memset(&r, 0, sizeof r);
        rc = zkc_counter_add(g->ctr, 1, &u, &r);
        return gf_outcome(g, key, ours, rc, &r, id);
    }
    gf_take *t = calloc(1, sizeof *t);
    if (!t)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    int rc = gf_key(g, user_key, t->key, &t->ours);
    if (rc) {
        free(t);
        return rc;
    }
    t->g = g;
    t->cb = cb;
    t->ud = ud;
    gf_update(g, t->key, &u);
    __atomic_add_fetch(&g->refs, 1, __ATOMIC_ACQ_REL);
    rc = zkc_counter_add_async(g->ctr, 1, &u, gf_take_cb, t);
    if (rc) {
        /* Never sent; a pending key of ours stays pending. */
        if (t->ours)
            gf_repend(g, t->key);
        idg_unref(g);
        free(t);
    }
    return rc;
}

int zkc_idgen_next_keyed(zkc_idgen *g, const char *key, int timeout_ms, int64_t *id)
{
    ZKC__UNUSED(timeout_ms);
    if (!g)
        return zkc__err(ZKC_EINVAL, "id generator is NULL");
    if (!id)
        return zkc__err(ZKC_EINVAL, "zkc_idgen_next_keyed: id is NULL");
    if (!key)
        return zkc__err(ZKC_EINVAL, "zkc_idgen_next_keyed: key is NULL");
    return gf_submit(g, key, NULL, NULL, id);
}

int zkc_idgen_next_keyed_async(zkc_idgen *g, const char *key, int timeout_ms, zkc_idgen_cb cb, void *ud)
{
    ZKC__UNUSED(timeout_ms);
    if (!g)
        return zkc__err(ZKC_EINVAL, "id generator is NULL");
    if (!cb || !key)
        return zkc__err(ZKC_EINVAL, "zkc_idgen_next_keyed_async: %s is NULL", cb ? "key" : "callback");
    return gf_submit(g, key, cb, ud, NULL);
}

/* ---- voids: <path>-voided/<id> ---- */

typedef struct void_op {
    zkc__op op;
    zkc_idgen *g;
    int64_t id;
    char *node;
    zkc_idgen_cb cb;
    void *ud;
} void_op;

static void void_made(void *arg, int rc)
{
    void_op *v = arg;
    if (rc == ZR_OK)
        zkc__op_finish(&v->op, 0, NULL);
    else
        zkc__op_finish(&v->op, zkc__txn_req_error(rc), "id generator %s: voiding id %" PRId64 ": %s",
                       zkc_counter_path(v->g->ctr), v->id, zkc__zrc_name(rc));
}

static void void_fenced(zkc__req *r)
{
    void_op *v = r->ctx;
    zkc_idgen *g = v->g;
    int64_t taken = 0;
    const char *why = "";
    if (r->rc != ZR_OK && r->rc != ZR_NONODE) {
        zkc__op_finish(&v->op, zkc__txn_req_error(r->rc), "id generator %s: reading the counter to void id %" PRId64
                       ": %s", zkc_counter_path(g->ctr), v->id, zkc__zrc_name(r->rc));
        return;
    }
    if (r->rc == ZR_OK && zkc__value_decode(ZKC_FMT_INT64, r->value, r->valuelen, 0, &taken, &why) != 0) {
        zkc__op_finish(&v->op, ZKC_EBADDATA, "id generator %s: %s", zkc_counter_path(g->ctr), why);
        return;
    }
    /* The counter only moves up: read behind a fence, id <= taken means the id
     * was taken and can never be taken again, so the void cannot shadow a use. */
    if (v->id > taken) {
        zkc__op_finish(&v->op, ZKC_EINVAL, "id generator %s: id %" PRId64 " is not taken yet (highest %" PRId64
                       "); only a taken id can be voided", zkc_counter_path(g->ctr), v->id, taken);
        return;
    }
    /* mkpath: the parent if missing, then the record; a repeat (lost reply,
     * or voiding twice) finds NODEEXISTS, which counts as done. */
    zkc__mkpath(g->c, v->node, void_made, v);
}

static void void_start(zkc__op *op)
{
    void_op *v = ZKC__CONTAINER_OF(op, void_op, op);
    zkc__fence_get(v->g->c, zkc_counter_path(v->g->ctr), void_fenced, v);
}

static void void_invoke(zkc__op *op)
{
    void_op *v = ZKC__CONTAINER_OF(op, void_op, op);
    if (v->cb)
        v->cb(v->g, op->status, v->id, v->ud);
}

static void void_release(zkc__op *op)
{
    void_op *v = ZKC__CONTAINER_OF(op, void_op, op);
    zkc_idgen *g = v->g;
    free(v->node);
    free(v);
    idg_unref(g);
}

static int void_submit(zkc_idgen *g, int64_t id, zkc_idgen_cb cb, void *ud)
{
    if (!g)
        return zkc__err(ZKC_EINVAL, "id generator is NULL");
    if (id < 1)
        return zkc__err(ZKC_EINVAL, "id generator %s: id %" PRId64 " was never handed out (ids start at 1)",
                        zkc_counter_path(g->ctr), id);
    void_op *v = calloc(1, sizeof *v);
    const char *path = zkc_counter_path(g->ctr);
    size_t n = strlen(path) + 32;
    if (v)
        v->node = malloc(n);
    if (!v || !v->node) {
        if (v)
            free(v);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    /* 19 digits: every int64 id, and names sort in id order for an auditor. */
    snprintf(v->node, n, "%s-voided/%019" PRId64, path, id);
    v->op.c = g->c;
    v->op.invoke = void_invoke;
    v->op.release = void_release;
    v->g = g;
    v->id = id;
    v->cb = cb;
    v->ud = ud;
    __atomic_add_fetch(&g->refs, 1, __ATOMIC_ACQ_REL);
    int blocking = cb == NULL;
    int rc = zkc__op_run(&v->op, void_start, blocking);
    if (blocking)
        v->op.release(&v->op);
    return rc;
}

int zkc_idgen_void(zkc_idgen *g, int64_t id)
{
    return void_submit(g, id, NULL, NULL);
}

int zkc_idgen_void_async(zkc_idgen *g, int64_t id, zkc_idgen_cb cb, void *ud)
{
    if (!cb)
        return zkc__err(ZKC_EINVAL, "zkc_idgen_void_async: callback is NULL");
    return void_submit(g, id, cb, ud);
}

int zkc_idgen_next(zkc_idgen *g, int timeout_ms, int64_t *id)
{
    if (g && g->gap_free) {
        if (!id)
            return zkc__err(ZKC_EINVAL, "zkc_idgen_next: id is NULL");
        return gf_submit(g, NULL, NULL, NULL, id);
    }
    return submit(g, timeout_ms, NULL, NULL, id);
}

int zkc_idgen_next_async(zkc_idgen *g, int timeout_ms, zkc_idgen_cb cb, void *ud)
{
    if (!cb)
        return zkc__err(ZKC_EINVAL, "zkc_idgen_next_async: callback is NULL");
    if (g && g->gap_free)
        return gf_submit(g, NULL, cb, ud, NULL);
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
    g->gap_free = o.gap_free != 0;
    g->path_hash = zkc__hash64(path, strlen(path)); /* the path's share of our keys */
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
