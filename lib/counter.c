/*
 * Counters: one znode holding a number, updated by versioned setData. This
 * file holds the counter object, its per-path core and the public API; a
 * write runs on the transaction core (lib/txn.c, EXACTLY ONCE; the counter's
 * rounds in lib/counter_txn.c), with fairness beacons (lib/beacon.c).
 * Multi-counter adds are in lib/counter_multi.c, rebase in lib/counter_rebase.c,
 * the queued mode (QUEUED) in lib/counter_queue.c and lib/counter_queue_apply.c.
 *
 * COMBINING. Updates of one path from one client queue on a shared core; while a
 * transaction is in flight, later ones wait and then go together in the next
 * transaction, each with its own before/after (as if applied one by one).
 *
 * CACHE. The core keeps the last (value, version) it read or wrote, so an
 * uncontended update is one round trip; a stale cache costs a BadVersion and a
 * re-read.
 *
 * KEYS. An update with an idempotency key also creates <meta_root>/keys/<2
 * hex>/<key> in its transaction, holding its outcome: a repeat (another
 * process, a restart) replays that first outcome, and zkc_counter_lookup reads it.
 *
 * QUEUED (zkc_counter_options.queued; lib/counter_queue.c has the protocol
 * and its exactness argument). For counters hot across processes
 * (counter_hot_sessions), where compare-and-swap rounds keep losing: a batch
 * of plain adds is appended as one persistent sequential node of the
 * counter's queue (<meta_root>/cq/<hash>), with the enqueuer's marker in the
 * same multi (an unanswered enqueue is decided like any write here); the
 * client whose node is first applies every queued batch in one multi, in
 * queue order, each add with its own before/after and bounds decided in that
 * order: setData(counter, new, version read) + delete each applied node +
 * create each other batch's outcome record + marker. Deleting what it applies
 * makes a second application fail; the version check makes a stale applier
 * fail; its own unanswered multi is decided from its marker. A batch whose
 * client died before it was applied stays queued and is applied by the next
 * applier. Keyed and guarded adds, set and cas take the direct path.
 *
 * AUTO (queued = ZKC_COUNTER_QUEUED_AUTO; the policy and its constants are
 * AUTO in lib/counter_queue.c). Each client switches its own plain adds of
 * a counter between the two paths by what it measures, only between two of
 * its batches: direct and queued adds are ordered by the counter's version
 * alone, so a switch needs no handover (t_queued_mixed_exact and
 * t_auto_mixed_exact run both kinds on one counter). It starts direct, so an
 * uncontended add stays one write and never touches the queue. It goes
 * queued after 4 units of contention within 8 direct batches (a lost round
 * is one, a batch that ended with another client's fairness beacon up is
 * one: the winner loses no rounds, the beacon tells it others starve), and
 * back once 8 of its queued batches in a row found nobody else in the queue
 * (applied by itself, alone, at the first try). Hysteresis: in takes
 * contention, out takes its absence for several batches, and a client that
 * comes back in soon after leaving needs twice as many lone batches to leave
 * again (up to 128). A queued applier of an AUTO core whose apply keeps
 * losing (to direct writers, mostly) raises the core's beacon, so a direct
 * winner yields to it and follows it into the queue.
 *
 * NOT BUILT (issue 19; what was tried, and what it would take).
 *
 * Pipelining a core's batches (counter_hot_threads). While batch L is in
 * flight at version v, batch F could go at once, planned on L's outcome:
 * setData(counter, F's value, v + 1) plus a version check of L's marker at
 * the version L writes (only L writes its marker while it holds it, and one
 * session's requests apply in order, so the check holds exactly when L
 * landed). Without the check, F would land on another client's write at
 * v + 1 with a wrong base. F would carry plain adds only (no refusal may rest
 * on a projected value; no key, so a retry of L after "not applied" plans the
 * same bytes from the same base, and a late landing of F behind that retry is
 * still right); any failure of F re-plans it from the cache like any batch.
 * Built and measured (64 threads, 3-node fsync ensemble, 2 loaded cores): it
 * stayed exact, but batches shrank from 31.6 to 22 adds per multi (F goes
 * with whoever is queued; waiting until F is as large as L hardly changed
 * it), so the servers did 40% more writes per add, and the bench ratio did
 * not move (34.6 without, 31.5 with: this machine is CPU-bound, not
 * commit-latency-bound). Not landed. Worth it only where the commit round
 * trip dominates; it would need a measured policy for F's size.
 */
#include "counter.h"
#include "opwatch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

char *zkc__ctr_key_path(zkc_client *c, const char *key)
{
    char *dir = zkc__path_join(c->meta_root, "keys");
    char *s = dir ? zkc__path_bucketed(dir, key) : NULL;
    free(dir);
    return s;
}

void zkc__ctr_upd_finish(zkc__ctr_upd *u, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    zkc__op_vfinish(&u->op, status, fmt, ap);
    va_end(ap);
}

/* For reads: a read cut short by zkc_client_destroy is a cancellation. */
int zkc__ctr_read_error(zkc_client *c, int rc)
{
    if (c->closing && (rc == ZR_CONNLOSS || rc == ZR_CLOSING))
        return ZKC_ECANCELED;
    return zkc__txn_req_error(rc);
}

/* ---- reading counters into the cache ---- */

void zkc__ctr_apply_read(zkc__ctr_core *co, zkc__req *r, int *err, const char **why)
{
    if (r->rc == ZR_NONODE) {
        co->cached = co->fresh = 1;
        co->missing = 1;
        co->value = co->initial;
        co->version = 0;
        return;
    }
    if (r->rc != ZR_OK) {
        *err = r->rc;
        return;
    }
    int64_t v;
    int rc = zkc__value_decode(co->fmt, r->value, r->valuelen, co->initial, &v, why);
    if (rc) {
        *err = ZKC_EBADDATA;
        co->cached = 0;
        return;
    }
    co->cached = co->fresh = 1;
    co->missing = 0;
    co->value = v;
    co->version = r->stat.version;
}

/* ---------------------------------------------------------------- cores */

static zkc__ctr_upd *queue_head(zkc__ctr_core *co)
{
    zkc__list_node *n = zkc__list_first(&co->queue);
    return n ? ZKC__CONTAINER_OF(n, zkc__ctr_upd, qnode) : NULL;
}

/* A queued update holds its core (LIFETIME): taking it out gives that back.
 * The caller holds co too, or this may free it. */
static void queue_remove(zkc__ctr_core *co, zkc__ctr_upd *u)
{
    zkc__list_remove(&u->qnode);
    zkc__ctr_core_drop(co);
}

static void get_done(zkc__req *r)
{
    zkc__ctr_core *co = r->ctx;
    int err = 0;
    const char *why = "";
    zkc__ctr_apply_read(co, r, &err, &why);
    /* Every GET at the head of the queue shares this read, but a fresh one only
     * if it queued before the read was sent: its fence must follow its start. */
    zkc__ctr_upd *u;
    while ((u = queue_head(co)) && u->type == ZKC__CTR_GET && (u->in_read || !u->a)) {
        queue_remove(co, u);
        if (err == ZKC_EBADDATA) {
            zkc__ctr_upd_finish(u, ZKC_EBADDATA, "counter %s: %s", co->path, why);
        } else if (err) {
            zkc__ctr_upd_finish(u, zkc__txn_req_error(err), "reading counter %s: %s", co->path,
                                zkc__zrc_name(err));
        } else {
            u->res.before = u->res.after = co->value;
            zkc__ctr_upd_finish(u, 0, NULL);
        }
    }
    co->busy = 0;
    zkc__ctr_core_kick(co);
    zkc__ctr_core_drop(co); /* the read's */
}

void zkc__ctr_core_kick(zkc__ctr_core *co)
{
    zkc__ctr_upd *u = queue_head(co);
    if (co->busy || !u)
        return;
    co->busy = 1;
    if (u->type == ZKC__CTR_GET) {
        zkc__opwatch_state(&u->op, "reading the counter");
        int fresh = 0;
        for (zkc__list_node *n = &u->qnode; n != &co->queue.head; n = n->next) {
            zkc__ctr_upd *g = ZKC__CONTAINER_OF(n, zkc__ctr_upd, qnode);
            if (g->type != ZKC__CTR_GET)
                break;
            g->in_read = 1;
            fresh |= g->a != 0;
        }
        zkc__ctr_core_hold(co); /* until get_done */
        if (fresh)
            zkc__fence_get(co->c, co->path, get_done, co);
        else
            zkc__get(co->c, co->path, NULL, get_done, co);
        return;
    }
    if (zkc__cq_now(co) && zkc__cq_takes(u)) {
        /* QUEUED MODE (lib/counter_queue.c): plain adds as one queued batch. */
        zkc__ctr_upd *batch[ZKC__CTR_BATCH_MAX];
        int nb = 0;
        int max = co->combine ? ZKC__CTR_BATCH_MAX : 1;
        while ((u = queue_head(co)) && zkc__cq_takes(u) && nb < max) {
            queue_remove(co, u);
            batch[nb++] = u;
        }
        zkc__metrics_batch(co->c, ZKC_HIST_COUNTER_BATCH, nb);
        zkc__ctr_core_hold(co); /* the batch's, until it ends */
        zkc__cq_start(co, batch, nb);
        return;
    }
    zkc__ctr_txn *t = zkc__ctr_txn_new(co->c);
    if (!t) {
        co->busy = 0;
        return;
    }
    t->co = co;
    zkc__ctr_core_hold(co); /* the batch's, until txn_end (lib/counter_txn.c) */
    co->fresh = 0; /* a refusal in this round must rest on a read made in it */
    int max = co->combine ? ZKC__CTR_BATCH_MAX : 1;
    while ((u = queue_head(co)) && u->type != ZKC__CTR_GET && t->nu < max) {
        int dup = 0;
        for (int i = 0; u->key && i < t->nu; i++)
            dup |= t->u[i]->key && strcmp(t->u[i]->key, u->key) == 0;
        if (dup)
            break; /* the repeat goes in the next batch, where it replays the first */
        if (t->nu > 0 && (u->nguards || t->u[0]->nguards))
            break; /* a guarded update goes alone: its check must not refuse others */
        queue_remove(co, u);
        t->u[t->nu++] = u;
    }
    if (t->nu > 0 && t->u[0]->nguards)
        zkc__txn_guard(&t->t, t->u[0]->guards, t->u[0]->nguards);
    zkc__metrics_batch(co->c, ZKC_HIST_COUNTER_BATCH, t->nu);
    int64_t yield = co->cached ? zkc__beacon_yield_ms(&co->beacon) : 0;
    if (yield > 0) {
        /* Others wait (FAIRNESS): let one of them in before we write again. */
        zkc__ctr_txn_phase(t, "yielding to another client's waiting batch");
        zkc__txn_defer(&t->t, yield);
        return;
    }
    zkc__ctr_txn_round(t);
}

static void core_enqueue(zkc__ctr_core *co, zkc__ctr_upd *u)
{
    zkc__opwatch_state(&u->op, co->busy ? "queued behind the counter's current batch" : "queued");
    zkc__ctr_core_hold(co); /* until taken out of the queue (queue_remove) */
    zkc__list_push_back(&co->queue, &u->qnode);
    zkc__ctr_core_kick(co);
}

static int core_busy(zkc__beacon *b)
{
    return ZKC__CONTAINER_OF(b, zkc__ctr_core, beacon)->busy;
}

static void beacon_hold(zkc__beacon *b)
{
    zkc__ctr_core_hold(ZKC__CONTAINER_OF(b, zkc__ctr_core, beacon));
}

static void beacon_drop(zkc__beacon *b)
{
    zkc__ctr_core_drop(ZKC__CONTAINER_OF(b, zkc__ctr_core, beacon));
}

/* ---------------------------------------------------------------- registry */

/* A client's cores, one per path while held (LIFETIME), in a hash map by path
 * with chaining: open finds its path's core in O(1), whatever number of paths
 * the client used before. It grows at one core per bucket and shrinks at one
 * per eight, so its size follows the live cores. */
typedef struct registry {
    zkc__object obj;
    zkc__singleton single; /* per client, freed with it */
    zkc__ctr_core **buckets;
    size_t nbuckets; /* a power of two */
    size_t n;
    int draining; /* registry_shutdown walks the buckets: no resize meanwhile */
} registry;

#define REGISTRY_MIN_BUCKETS 16

static const char registry_key; /* its address names the registry among a client's singletons */

static uint64_t path_hash(const char *p)
{
    return zkc__hash64(p, strlen(p));
}

/* Out of memory: keep the old table (longer chains, still correct). */
static void registry_resize(registry *g, size_t nb)
{
    zkc__ctr_core **b = calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < g->nbuckets; i++) {
        zkc__ctr_core *co = g->buckets[i], *next;
        for (; co; co = next) {
            next = co->hnext;
            size_t k = co->hash & (nb - 1);
            co->hnext = b[k];
            b[k] = co;
        }
    }
    free(g->buckets);
    g->buckets = b;
    g->nbuckets = nb;
}

static zkc__ctr_core *registry_find(registry *g, const char *path)
{
    uint64_t h = path_hash(path);
    for (zkc__ctr_core *co = g->buckets[h & (g->nbuckets - 1)]; co; co = co->hnext)
        if (co->hash == h && strcmp(co->path, path) == 0)
            return co;
    return NULL;
}

static void registry_insert(registry *g, zkc__ctr_core *co)
{
    co->hash = path_hash(co->path);
    size_t k = co->hash & (g->nbuckets - 1);
    co->hnext = g->buckets[k];
    g->buckets[k] = co;
    if (++g->n > g->nbuckets)
        registry_resize(g, g->nbuckets * 2);
}

static void registry_unlink(registry *g, zkc__ctr_core *co)
{
    zkc__ctr_core **pp = &g->buckets[co->hash & (g->nbuckets - 1)];
    while (*pp && *pp != co)
        pp = &(*pp)->hnext;
    if (!*pp)
        return;
    *pp = co->hnext;
    if (--g->n < g->nbuckets / 8 && g->nbuckets > REGISTRY_MIN_BUCKETS && !g->draining)
        registry_resize(g, g->nbuckets / 2);
}

static void core_free(zkc__ctr_core *co)
{
    free(co->rdel);
    free(co->path);
    free(co);
}

void zkc__ctr_core_hold(zkc__ctr_core *co)
{
    co->refs++;
}

void zkc__ctr_core_drop(zkc__ctr_core *co)
{
    if (--co->refs > 0)
        return;
    zkc__singleton *s = zkc__singleton_get(co->c, &registry_key);
    if (s)
        registry_unlink(ZKC__CONTAINER_OF(s, registry, single), co);
    core_free(co);
}

zkc__ctr_core *zkc__ctr_core_of(zkc_counter *ctr)
{
    if (ctr->closed || !ctr->co)
        return NULL;
    zkc__ctr_core_hold(ctr->co);
    return ctr->co;
}

static void registry_shutdown(zkc__object *o)
{
    registry *g = ZKC__CONTAINER_OF(o, registry, obj);
    g->draining = 1;
    for (size_t i = 0; i < g->nbuckets; i++) {
        zkc__ctr_core *co = g->buckets[i], *next;
        for (; co; co = next) {
            next = co->hnext;
            zkc__ctr_core_hold(co); /* draining the queue must not free it under us */
            zkc__cq_flush(co);
            zkc__ctr_upd *u;
            while ((u = queue_head(co))) {
                queue_remove(co, u);
                zkc__ctr_upd_finish(u, ZKC_ECANCELED, "counter %s: the client is being destroyed", co->path);
            }
            next = co->hnext;
            zkc__ctr_core_drop(co);
        }
    }
    g->draining = 0;
}

static void registry_free(zkc__singleton *single)
{
    registry *g = ZKC__CONTAINER_OF(single, registry, single);
    for (size_t i = 0; i < g->nbuckets; i++) {
        zkc__ctr_core *co = g->buckets[i], *next;
        for (; co; co = next) {
            next = co->hnext;
            core_free(co);
        }
    }
    free(g->buckets);
    free(g);
}

static int registry_make(void *state, zkc_client *c)
{
    registry *g = state;
    g->buckets = calloc(REGISTRY_MIN_BUCKETS, sizeof *g->buckets);
    if (!g->buckets)
        return -1;
    g->nbuckets = REGISTRY_MIN_BUCKETS;
    g->obj.shutdown = registry_shutdown;
    zkc__object_link(c, &g->obj);
    return 0;
}

static registry *registry_get(zkc_client *c)
{
    return ZKC__SINGLETON(c, &registry_key, registry, single, registry_make, registry_free);
}

/* ---------------------------------------------------------------- public API */

static void ctr_unref(zkc_counter *ctr)
{
    if (zkc__ref_put(&ctr->refs)) {
        zkc_client *c = ctr->c;
        free(ctr->path);
        free(ctr);
        zkc__client_unref(c);
    }
}

void zkc__ctr_hold(zkc_counter *ctr)
{
    zkc__ref_get(&ctr->refs);
}

void zkc__ctr_drop(zkc_counter *ctr)
{
    ctr_unref(ctr);
}

/* What a caller is shown on failure: a refusal (bound, overflow, mismatch)
 * carries the value it was judged on (before == after, nothing written);
 * any other failure nothing, so that a refused guarded add, say, never shows
 * the before/after of a write that did not happen. */
static void upd_settle_result(zkc__ctr_upd *u)
{
    int s = u->op.status;
    if (s && s != ZKC_EBOUND && s != ZKC_EMISMATCH && s != ZKC_EOVERFLOW)
        memset(&u->res, 0, sizeof u->res);
}

static void upd_invoke(zkc__op *op)
{
    zkc__ctr_upd *u = ZKC__CONTAINER_OF(op, zkc__ctr_upd, op);
    upd_settle_result(u);
    if (u->cb)
        u->cb(u->ctr, op->status, &u->res, u->ud);
}

void zkc__ctr_upd_release(zkc__op *op)
{
    zkc__ctr_upd *u = ZKC__CONTAINER_OF(op, zkc__ctr_upd, op);
    zkc_counter *ctr = u->ctr;
    for (int i = 0; u->ctrs && i < u->n; i++)
        if (u->ctrs[i])
            ctr_unref(u->ctrs[i]);
    free(u->ctrs);
    free(u->key);
    free(u->guards);
    free(u->cores);
    free(u->deltas);
    free(u->mbounds);
    free(u->mres);
    free(u->newv);
    free(u);
    if (ctr)
        ctr_unref(ctr);
}

void zkc__ctr_upd_init(zkc__ctr_upd *u, zkc_client *c)
{
    u->op.c = c;
    u->op.invoke = upd_invoke;
    u->op.release = zkc__ctr_upd_release;
}

static void upd_start(zkc__op *op)
{
    zkc__ctr_upd *u = ZKC__CONTAINER_OF(op, zkc__ctr_upd, op);
    /* Destroyed since the call checked it (another thread): its core may be gone. */
    if (u->ctr->closed || !u->co) {
        zkc__op_finish(op, ZKC_EINVAL, "counter %s was destroyed", u->ctr->path);
        return;
    }
    core_enqueue(u->co, u);
}

int zkc__ctr_check(zkc_counter *ctr, const char *fn)
{
    if (!ctr)
        return zkc__err(ZKC_EINVAL, "%s: counter is NULL", fn);
    if (__atomic_load_n(&ctr->api_destroyed, __ATOMIC_ACQUIRE))
        return zkc__err(ZKC_EINVAL, "%s: counter %s was destroyed", fn, ctr->path);
    return 0;
}

int zkc__bounds_check(const zkc_bounds *b, const char *fn)
{
    if (b->has_floor && b->has_ceiling && b->floor > b->ceiling)
        return zkc__err(ZKC_EINVAL, "%s: floor %" PRId64 " is above ceiling %" PRId64, fn, b->floor, b->ceiling);
    return 0;
}

static zkc__ctr_upd *upd_new(zkc_counter *ctr, int type, int64_t a, int64_t b, const zkc_update *uo, int *rc)
{
    if (uo && uo->key && (*rc = zkc__name_check(uo->key, "idempotency key")) != 0)
        return NULL;
    if (uo && uo->guard && (*rc = zkc__txn_guard_check(uo->guard, "zkc_counter_add")) != 0)
        return NULL;
    zkc__ctr_upd *u = calloc(1, sizeof *u);
    if (!u || (uo && uo->key && !(u->key = strdup(uo->key))) ||
        (uo && uo->guard && zkc__txn_guard_add(&u->guards, &u->nguards, uo->guard) != 0)) {
        if (u)
            free(u->key);
        free(u);
        *rc = zkc__err(ZKC_ENOMEM, "out of memory");
        return NULL;
    }
    zkc__ctr_upd_init(u, ctr->c);
    u->ctr = ctr;
    u->co = ctr->co;
    u->type = type;
    u->a = a;
    u->b = b;
    if (uo)
        u->bounds = uo->bounds;
    zkc__ref_get(&ctr->refs);
    *rc = 0;
    return u;
}

#ifdef ZKC_OPWATCH
static const char *const upd_kind[] = {"", "counter_get", "counter_set", "counter_add", "counter_cas",
                                       "counter_multi_add"};
#endif

/* Test builds: the bound the header promises, operation timeout + session timeout. */
void zkc__ctr_label(zkc_client *c, int type, const char *path)
{
#ifdef ZKC_OPWATCH
    zkc__opwatch_next(upd_kind[type], path, (int64_t)c->opt.operation_timeout_ms + c->opt.session_timeout_ms);
#else
    ZKC__UNUSED(c);
    ZKC__UNUSED(type);
    ZKC__UNUSED(path);
#endif
}

static int run_upd(zkc_counter *ctr, int type, int64_t a, int64_t b, const zkc_update *uo, zkc_counter_result *r,
                   zkc_counter_cb cb, void *ud, int blocking, const char *fn)
{
    int rc = zkc__ctr_check(ctr, fn);
    if (rc)
        return rc;
    if (!blocking && !cb)
        return zkc__err(ZKC_EINVAL, "%s: callback is NULL", fn);
    if (uo && (rc = zkc__bounds_check(&uo->bounds, fn)) != 0)
        return rc;
    zkc__ctr_upd *u = upd_new(ctr, type, a, b, uo, &rc);
    if (!u)
        return rc;
    u->cb = cb;
    u->ud = ud;
    zkc__ctr_label(ctr->c, type, ctr->path);
    zkc__metrics_tag(&u->op.ms, ctr->c, ZKC_MK_COUNTER, type == ZKC__CTR_ADD ? ZKC_HIST_COUNTER_ADD : ZKC__MH_NONE, ctr->path);
    rc = zkc__op_run(&u->op, upd_start, blocking);
    zkc__opwatch_next(NULL, NULL, 0); /* refused before it registered: the label is not the next op's */
    if (!blocking)
        return rc;
    upd_settle_result(u);
    if (r)
        *r = u->res;
    u->op.release(&u->op);
    return rc;
}

static int get_value(zkc_counter *ctr, int fresh, int64_t *value, const char *fn)
{
    zkc_counter_result r = {0, 0, 0};
    if (!value)
        return zkc__err(ZKC_EINVAL, "%s: value is NULL", fn);
    int rc = run_upd(ctr, ZKC__CTR_GET, fresh, 0, NULL, &r, NULL, NULL, 1, fn);
    if (rc == 0)
        *value = r.after;
    return rc;
}

int zkc_counter_get(zkc_counter *ctr, int64_t *value)
{
    return get_value(ctr, 0, value, "zkc_counter_get");
}

int zkc_counter_set(zkc_counter *ctr, int64_t value)
{
    return run_upd(ctr, ZKC__CTR_SET, value, 0, NULL, NULL, NULL, NULL, 1, "zkc_counter_set");
}

int zkc_counter_add(zkc_counter *ctr, int64_t delta, const zkc_update *u, zkc_counter_result *r)
{
    return run_upd(ctr, ZKC__CTR_ADD, delta, 0, u, r, NULL, NULL, 1, "zkc_counter_add");
}

int zkc_counter_cas(zkc_counter *ctr, int64_t expect, int64_t value, zkc_counter_result *r)
{
    return run_upd(ctr, ZKC__CTR_CAS, expect, value, NULL, r, NULL, NULL, 1, "zkc_counter_cas");
}

int zkc_counter_get_async(zkc_counter *ctr, zkc_counter_cb cb, void *ud)
{
    return run_upd(ctr, ZKC__CTR_GET, 0, 0, NULL, NULL, cb, ud, 0, "zkc_counter_get_async");
}

int zkc_counter_get_fresh(zkc_counter *ctr, int64_t *value)
{
    return get_value(ctr, 1, value, "zkc_counter_get_fresh");
}

int zkc_counter_get_fresh_async(zkc_counter *ctr, zkc_counter_cb cb, void *ud)
{
    return run_upd(ctr, ZKC__CTR_GET, 1, 0, NULL, NULL, cb, ud, 0, "zkc_counter_get_fresh_async");
}

int zkc_counter_set_async(zkc_counter *ctr, int64_t value, zkc_counter_cb cb, void *ud)
{
    return run_upd(ctr, ZKC__CTR_SET, value, 0, NULL, NULL, cb, ud, 0, "zkc_counter_set_async");
}

int zkc_counter_add_async(zkc_counter *ctr, int64_t delta, const zkc_update *u, zkc_counter_cb cb, void *ud)
{
    return run_upd(ctr, ZKC__CTR_ADD, delta, 0, u, NULL, cb, ud, 0, "zkc_counter_add_async");
}

int zkc_counter_cas_async(zkc_counter *ctr, int64_t expect, int64_t value, zkc_counter_cb cb, void *ud)
{
    return run_upd(ctr, ZKC__CTR_CAS, expect, value, NULL, NULL, cb, ud, 0, "zkc_counter_cas_async");
}

/* ---- create / destroy: the core list lives on the engine ---- */

typedef struct open_op {
    zkc__op op;
    zkc_counter *ctr;
    zkc_counter_options o;
} open_op;

void zkc__ctr_noop_invoke(zkc__op *op)
{
    ZKC__UNUSED(op);
}

static void open_release(zkc__op *op)
{
    free(ZKC__CONTAINER_OF(op, open_op, op));
}

static void open_start(zkc__op *op)
{
    open_op *oo = ZKC__CONTAINER_OF(op, open_op, op);
    zkc_counter *ctr = oo->ctr;
    zkc_client *c = ctr->c;
    registry *g = registry_get(c);
    if (!g) {
        zkc__op_finish(op, ZKC_ENOMEM, "out of memory");
        return;
    }
    zkc__ctr_core *co = registry_find(g, ctr->path);
    if (co) {
        if (co->fmt != (int)oo->o.format || co->initial != oo->o.initial) {
            zkc__op_finish(op, ZKC_ECONFIG,
                           "counter %s is already open (or still busy) in this client with another format or "
                           "initial value",
                           ctr->path);
            return;
        }
        zkc__ctr_core_hold(co); /* the object's, until close_start */
        if (oo->o.no_combine)
            co->combine = 0;
        /* One mode per core: ALWAYS over AUTO over OFF. */
        if (oo->o.queued == ZKC_COUNTER_QUEUED_ALWAYS || (oo->o.queued && !co->queued))
            co->queued = oo->o.queued;
        ctr->co = co;
        zkc__op_finish(op, 0, NULL);
        return;
    }
    co = calloc(1, sizeof *co);
    if (!co || !(co->path = strdup(ctr->path))) {
        free(co);
        zkc__op_finish(op, ZKC_ENOMEM, "out of memory");
        return;
    }
    co->c = c;
    zkc__list_init(&co->queue);
    zkc__beacon_init(&co->beacon, c, co->path, core_busy);
    co->beacon.hold = beacon_hold;
    co->beacon.drop = beacon_drop;
    co->fmt = (int)oo->o.format;
    co->initial = oo->o.initial;
    co->max_attempts = oo->o.max_attempts > 0 ? oo->o.max_attempts : 64;
    co->combine = !oo->o.no_combine;
    co->queued = oo->o.queued;
    co->refs = 1; /* the object's, until close_start */
    registry_insert(g, co);
    ctr->co = co;
    zkc__op_finish(op, 0, NULL);
}

void zkc_counter_options_init(zkc_counter_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->format = ZKC_FMT_INT64;
    o->max_attempts = 64;
}

int zkc_counter_create(zkc_client *c, const char *path, const zkc_counter_options *opts, zkc_counter **out)
{
    if (!out)
        return zkc__err(ZKC_EINVAL, "zkc_counter_create: out is NULL");
    *out = NULL;
    if (!c)
        return zkc__err(ZKC_EINVAL, "zkc_counter_create: client is NULL");
    int rc = zkc__path_check(path, "counter path");
    if (rc)
        return rc;
    zkc_counter_options o;
    zkc_counter_options_init(&o);
    if (opts)
        o = *opts;
    if ((unsigned)o.format > ZKC_FMT_DECIMAL)
        return zkc__err(ZKC_EINVAL, "counter %s: unknown format %d", path, (int)o.format);
    if (o.max_attempts < 0)
        return zkc__err(ZKC_EINVAL, "counter %s: max_attempts is negative", path);
    if (o.queued < ZKC_COUNTER_QUEUED_OFF || o.queued > ZKC_COUNTER_QUEUED_AUTO)
        return zkc__err(ZKC_EINVAL, "counter %s: unknown queued mode %d", path, o.queued);
    if (o.format == ZKC_FMT_INT32 && (o.initial < INT32_MIN || o.initial > INT32_MAX))
        return zkc__err(ZKC_EINVAL, "counter %s: initial value does not fit 32 bits", path);
    zkc_counter *ctr = calloc(1, sizeof *ctr);
    if (!ctr || !(ctr->path = strdup(path))) {
        free(ctr);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    ctr->c = c;
    ctr->refs = 1;
    zkc__client_ref(c);
    open_op *oo = calloc(1, sizeof *oo);
    if (!oo) {
        ctr_unref(ctr);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    oo->op.c = c;
    oo->op.invoke = zkc__ctr_noop_invoke;
    oo->op.release = open_release;
    oo->ctr = ctr;
    oo->o = o;
    rc = zkc__op_run(&oo->op, open_start, 1);
    oo->op.release(&oo->op);
    if (rc) {
        ctr_unref(ctr);
        return rc;
    }
    *out = ctr;
    return 0;
}

/* Engine: give back the object's core reference (LIFETIME); its updates
 * still queued or in flight hold the core themselves. */
static void ctr_close(zkc_counter *ctr)
{
    if (ctr->closed)
        return;
    ctr->closed = 1;
    if (ctr->co) {
        if (ctr->co->refs == 1)
            zkc__cq_flush(ctr->co); /* the last user of the core: nothing will carry it */
        zkc__ctr_core_drop(ctr->co);
    }
}

static void close_start(zkc__op *op)
{
    open_op *oo = ZKC__CONTAINER_OF(op, open_op, op);
    ctr_close(oo->ctr);
    zkc__op_finish(op, 0, NULL);
}

void zkc_counter_destroy(zkc_counter *ctr)
{
    if (!ctr)
        return;
    if (__atomic_exchange_n(&ctr->api_destroyed, 1, __ATOMIC_ACQ_REL))
        return;
    /* Once the client is closing, its cores go with it (registry_free). */
    int closing = __atomic_load_n(&ctr->c->api_closing, __ATOMIC_ACQUIRE);
    if (!closing && zkc__on_engine(ctr->c)) {
        ctr_close(ctr); /* a blocking call from here would deadlock; none is needed */
    } else if (!closing) {
        open_op *oo = calloc(1, sizeof *oo);
        if (oo) {
            oo->op.c = ctr->c;
            oo->op.invoke = zkc__ctr_noop_invoke;
            oo->op.release = open_release;
            oo->ctr = ctr;
            zkc__op_run(&oo->op, close_start, 1);
            oo->op.release(&oo->op);
        }
    }
    ctr_unref(ctr);
}

const char *zkc_counter_path(zkc_counter *ctr)
{
    return ctr ? ctr->path : NULL;
}

/* ---- lookup by key ---- */

typedef struct lookup_op {
    zkc__op op;
    char *path;
    char *key;
    zkc_counter_result res;
    zkc_counter_lookup_cb cb; /* async form, else NULL */
    void *ud;
} lookup_op;

static void lookup_invoke(zkc__op *op)
{
    lookup_op *lo = ZKC__CONTAINER_OF(op, lookup_op, op);
    lo->cb(op->c, op->status, lo->key, op->status ? NULL : &lo->res, lo->ud);
}

static void lookup_release(zkc__op *op)
{
    lookup_op *lo = ZKC__CONTAINER_OF(op, lookup_op, op);
    free(lo->path);
    free(lo->key);
    free(lo);
}

static void lookup_done(zkc__req *r)
{
    lookup_op *lo = r->ctx;
    zkc__record rec;
    if (r->rc == ZR_NONODE) {
        zkc__op_finish(&lo->op, ZKC_ENONODE,
                       "key %s: no update with this key was applied (or it is older than the retention period)",
                       lo->key);
    } else if (r->rc != ZR_OK) {
        zkc__op_finish(&lo->op, zkc__txn_req_error(r->rc), "key %s: %s", lo->key, zkc__zrc_name(r->rc));
    } else if (zkc__record_decode(r->value, r->valuelen, &rec) != 0 || rec.n < 1) {
        zkc__op_finish(&lo->op, ZKC_EBADDATA, "key %s: malformed record in %s", lo->key, lo->path);
    } else {
        lo->res.before = rec.before[0];
        lo->res.after = rec.after[0];
        lo->res.replayed = 1;
        zkc__op_finish(&lo->op, 0, NULL);
    }
}

static void lookup_start(zkc__op *op)
{
    lookup_op *lo = ZKC__CONTAINER_OF(op, lookup_op, op);
    /* sync: a restarted worker must see what the previous one did, even if
     * this server lags the leader. */
    zkc__sync_get(op->c, lo->path, lookup_done, lo);
}

/* Checks the arguments and builds the op (NULL: refused with *rc). */
static lookup_op *lookup_new(zkc_client *c, const char *key, const char *fn, int *rc)
{
    if (!c) {
        *rc = zkc__err(ZKC_EINVAL, "%s: client is NULL", fn);
        return NULL;
    }
    if ((*rc = zkc__name_check(key, "idempotency key")) != 0)
        return NULL;
    lookup_op *lo = calloc(1, sizeof *lo);
    if (!lo || !(lo->path = zkc__ctr_key_path(c, key)) || !(lo->key = strdup(key))) {
        if (lo) {
            free(lo->path);
            free(lo);
        }
        *rc = zkc__err(ZKC_ENOMEM, "out of memory");
        return NULL;
    }
    lo->op.c = c;
    lo->op.invoke = zkc__ctr_noop_invoke;
    lo->op.release = lookup_release;
    return lo;
}

int zkc_counter_lookup(zkc_client *c, const char *key, zkc_counter_result *r)
{
    int rc;
    lookup_op *lo = lookup_new(c, key, "zkc_counter_lookup", &rc);
    if (!lo)
        return rc;
    zkc__metrics_tag(&lo->op.ms, c, ZKC_MK_COUNTER, ZKC__MH_NONE, NULL);
    rc = zkc__op_run(&lo->op, lookup_start, 1);
    if (rc == 0 && r)
        *r = lo->res;
    lo->op.release(&lo->op);
    return rc;
}

int zkc_counter_lookup_async(zkc_client *c, const char *key, zkc_counter_lookup_cb cb, void *ud)
{
    if (!cb)
        return zkc__err(ZKC_EINVAL, "zkc_counter_lookup_async: the callback is NULL");
    int rc;
    lookup_op *lo = lookup_new(c, key, "zkc_counter_lookup_async", &rc);
    if (!lo)
        return rc;
    lo->op.invoke = lookup_invoke;
    lo->cb = cb;
    lo->ud = ud;
    zkc__metrics_tag(&lo->op.ms, c, ZKC_MK_COUNTER, ZKC__MH_NONE, NULL);
    return zkc__op_run(&lo->op, lookup_start, 0);
}
