/*
 * Multi-counter adds: several counters (of one client) changed in one
 * transaction, all or none, each op with its own bounds; one idempotency key
 * for the whole. The round that plans and sends it is the batch's
 * (lib/counter_txn.c): one write per counter node, the last op on a node
 * carrying the total of the ops on it.
 */
#include "counter.h"
#include "opwatch.h"

#include <stdlib.h>
#include <string.h>

static void multi_start(zkc__op *op)
{
    zkc__ctr_upd *u = ZKC__CONTAINER_OF(op, zkc__ctr_upd, op);
    /* Destroyed since the call (another thread): its core may be gone. */
    for (int i = 0; i < u->n; i++)
        if (u->ctrs[i]->closed) {
            zkc__op_finish(op, ZKC_EINVAL, "counter %s (op %d) was destroyed", u->ctrs[i]->path, i);
            return;
        }
    zkc__ctr_txn *t = zkc__ctr_txn_new(op->c);
    if (t && !(t->held = calloc((size_t)u->n, sizeof *t->held))) {
        free(t);
        t = NULL;
    }
    if (!t) {
        zkc__op_finish(op, ZKC_ENOMEM, "out of memory");
        return;
    }
    /* The txn holds each core it writes until txn_end (LIFETIME in lib/counter.c). */
    for (int i = 0; i < u->n; i++) {
        int dup = 0;
        for (int j = 0; j < t->nheld; j++)
            dup |= t->held[j] == u->cores[i];
        if (!dup) {
            zkc__ctr_core_hold(u->cores[i]);
            t->held[t->nheld++] = u->cores[i];
        }
        u->cores[i]->fresh = 0;
    }
    t->multi = u;
    zkc__txn_guard(&t->t, u->guards, u->nguards);
    zkc__ctr_txn_round(t);
}

/* What both forms report: each op's outcome (replayed is the whole key's) and
 * the refusing op. */
static void multi_outcome(zkc__ctr_upd *u, int *failed_index)
{
    for (int i = 0; i < u->n; i++)
        u->mres[i].replayed = u->res.replayed;
    *failed_index = (u->op.status == ZKC_EBOUND || u->op.status == ZKC_EOVERFLOW) ? u->failed_index : -1;
}

static void multi_invoke(zkc__op *op)
{
    zkc__ctr_upd *u = ZKC__CONTAINER_OF(op, zkc__ctr_upd, op);
    int failed;
    multi_outcome(u, &failed);
    u->mcb(op->c, op->status, op->status ? NULL : u->mres, u->n, failed, u->ud);
}

/* Checks the arguments and builds the op (NULL: refused with *rc). */
static zkc__ctr_upd *multi_new(zkc_client *c, const zkc_counter_op *ops, int n, const char *key, const char *fn,
                                int *rc)
{
    if (!c || !ops) {
        *rc = zkc__err(ZKC_EINVAL, "%s: NULL argument", fn);
        return NULL;
    }
    if (n <= 0 || n > ZKC__REC_MAX_ENTRIES) {
        *rc = zkc__err(ZKC_EINVAL, "%s: %d ops (1..%d allowed)", fn, n, ZKC__REC_MAX_ENTRIES);
        return NULL;
    }
    if (key && (*rc = zkc__name_check(key, "idempotency key")) != 0)
        return NULL;
    for (int i = 0; i < n; i++) {
        if ((*rc = zkc__ctr_check(ops[i].counter, fn)) != 0)
            return NULL;
        if ((*rc = zkc__bounds_check(&ops[i].bounds, fn)) != 0)
            return NULL;
        if (ops[i].counter->c != c) {
            *rc = zkc__err(ZKC_EINVAL, "%s: op %d's counter belongs to another client", fn, i);
            return NULL;
        }
        if (ops[i].guard && (*rc = zkc__txn_guard_check(ops[i].guard, fn)) != 0)
            return NULL;
    }
    zkc__ctr_upd *u = calloc(1, sizeof *u);
    if (!u) {
        *rc = zkc__err(ZKC_ENOMEM, "out of memory");
        return NULL;
    }
    zkc__ctr_upd_init(u, c);
    u->type = ZKC__CTR_MULTI;
    u->n = n;
    u->cores = calloc((size_t)n, sizeof *u->cores);
    u->ctrs = calloc((size_t)n, sizeof *u->ctrs);
    u->deltas = calloc((size_t)n, sizeof *u->deltas);
    u->mbounds = calloc((size_t)n, sizeof *u->mbounds);
    u->mres = calloc((size_t)n, sizeof *u->mres);
    u->newv = calloc((size_t)n, sizeof *u->newv);
    u->key = key ? strdup(key) : NULL;
    if (!u->cores || !u->ctrs || !u->deltas || !u->mbounds || !u->mres || !u->newv ||
        (key && !u->key)) {
        zkc__ctr_upd_release(&u->op);
        *rc = zkc__err(ZKC_ENOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        /* ->co is set once at creation, before the object was returned; it is
         * followed on the engine only while the object is not closed. */
        u->cores[i] = ops[i].counter->co;
        u->ctrs[i] = ops[i].counter;
        zkc__ctr_hold(ops[i].counter);
        u->deltas[i] = ops[i].delta;
        u->mbounds[i] = ops[i].bounds;
        if (ops[i].guard && (*rc = zkc__txn_guard_add(&u->guards, &u->nguards, ops[i].guard)) != 0) {
            zkc__ctr_upd_release(&u->op);
            return NULL;
        }
    }
    zkc__ctr_label(c, ZKC__CTR_MULTI, ops[0].counter->path);
    zkc__metrics_tag(&u->op.ms, c, ZKC_MK_COUNTER, ZKC__MH_NONE, ops[0].counter->path);
    return u;
}

int zkc_counter_multi_add(zkc_client *c, const zkc_counter_op *ops, int n, const char *key,
                          zkc_counter_result *results, int *failed_index)
{
    if (failed_index)
        *failed_index = -1;
    int rc;
    zkc__ctr_upd *u = multi_new(c, ops, n, key, "zkc_counter_multi_add", &rc);
    if (!u)
        return rc;
    rc = zkc__op_run(&u->op, multi_start, 1);
    zkc__opwatch_next(NULL, NULL, 0);
    int failed;
    multi_outcome(u, &failed);
    if (results && rc == 0)
        memcpy(results, u->mres, (size_t)n * sizeof *results);
    if (failed_index)
        *failed_index = failed;
    u->op.release(&u->op);
    return rc;
}

int zkc_counter_multi_add_async(zkc_client *c, const zkc_counter_op *ops, int n, const char *key,
                                zkc_counter_multi_cb cb, void *ud)
{
    if (!cb)
        return zkc__err(ZKC_EINVAL, "zkc_counter_multi_add_async: the callback is NULL");
    int rc;
    zkc__ctr_upd *u = multi_new(c, ops, n, key, "zkc_counter_multi_add_async", &rc);
    if (!u)
        return rc;
    u->op.invoke = multi_invoke;
    u->mcb = cb;
    u->ud = ud;
    rc = zkc__op_run(&u->op, multi_start, 0);
    zkc__opwatch_next(NULL, NULL, 0);
    return rc;
}
