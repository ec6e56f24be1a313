/*
 * Rebase: a counter whose znode version nears the 32-bit wrap (at -1 a
 * versioned write would be unconditional, so writes refuse with
 * ZKC_EVERSIONWRAP) is deleted and re-created with its value, in one multi,
 * which resets its version to 0.
 */
#include "counter.h"

#include <stdlib.h>
#include <string.h>

/* Versions below this are far from the wrap and need no rebase. A variable so
 * that fault tests can drive a real rebase without 2^30 writes first. */
int zkc__counter_rebase_from = 1 << 30;

typedef struct rebase_op {
    zkc__op op;
    zkc_counter *ctr;
    zkc__ctr_core *co; /* held while the op runs */
    int64_t value;
    zkc_counter_cb cb; /* async form, else NULL */
    void *ud;
} rebase_op;

static void rebase_multi_done(zkc__req *r)
{
    rebase_op *ro = r->ctx;
    zkc__ctr_core *co = ro->co;
    co->cached = 0;
    if (r->rc == ZR_OK)
        zkc__op_finish(&ro->op, 0, NULL);
    else if (r->rc == ZR_NOTEMPTY)
        zkc__op_finish(&ro->op, ZKC_EBUSY,
                       "rebasing %s: the node has children (the fairness beacons of writers that are waiting, or "
                       "nodes of your own); nothing was written: retry when its writers are idle",
                       co->path);
    else if (zkc__zrc_indeterminate(r->rc))
        /* The delete + create may have been applied: the value is the same
         * either way, only the version differs; a retry tells. */
        zkc__op_finish(&ro->op, ZKC_EUNKNOWN, "rebasing %s: outcome unknown (%s); call zkc_counter_rebase again",
                       co->path, zkc__zrc_name(r->rc));
    else
        zkc__op_finish(&ro->op, zkc__txn_req_error(r->rc), "rebasing %s: %s", co->path, zkc__zrc_name(r->rc));
    zkc__ctr_core_drop(co); /* not ro->co: a blocking caller may have freed ro */
}

static void rebase_get_done(zkc__req *r)
{
    rebase_op *ro = r->ctx;
    zkc__ctr_core *co = ro->co;
    if (r->rc != ZR_OK) {
        zkc__op_finish(&ro->op, zkc__txn_req_error(r->rc), "rebasing %s: %s", co->path, zkc__zrc_name(r->rc));
        zkc__ctr_core_drop(co);
        return;
    }
    int64_t v;
    const char *why;
    if (zkc__value_decode(co->fmt, r->value, r->valuelen, co->initial, &v, &why) != 0) {
        zkc__op_finish(&ro->op, ZKC_EBADDATA, "rebasing %s: %s; nothing was written", co->path, why);
        zkc__ctr_core_drop(co);
        return;
    }
    if (zkc__version_usable(r->stat.version) && r->stat.version >= 0 && r->stat.version < zkc__counter_rebase_from) {
        zkc__op_finish(&ro->op, 0, NULL); /* far from the wrap: nothing to do */
        zkc__ctr_core_drop(co);
        return;
    }
    char enc[24];
    int len = zkc__value_encode(co->fmt, v, enc);
    zkc__mop ops[2];
    memset(ops, 0, sizeof ops);
    /* Delete at the version we read (when it is not -1, which would mean
     * "any"): a concurrent zkcoord writer then makes this fail instead of
     * being lost. At -1 no writer of ours can write, so there is no race
     * among zkcoord clients. */
    ops[0].type = ZKC_REQ_DELETE;
    ops[0].path = co->path;
    ops[0].version = r->stat.version;
    ops[1].type = ZKC_REQ_CREATE;
    ops[1].path = co->path;
    ops[1].data = enc;
    ops[1].len = len;
    ro->value = v;
    zkc__multi(ro->op.c, ops, 2, rebase_multi_done, ro);
}

static void rebase_start(zkc__op *op)
{
    rebase_op *ro = ZKC__CONTAINER_OF(op, rebase_op, op);
    /* Held until the op is finished (LIFETIME in lib/counter.c). */
    ro->co = zkc__ctr_core_of(ro->ctr);
    if (!ro->co) {
        zkc__op_finish(op, ZKC_EINVAL, "counter %s was destroyed", ro->ctr->path);
        return;
    }
    zkc__get(op->c, ro->co->path, NULL, rebase_get_done, ro);
}

static void rebase_invoke(zkc__op *op)
{
    rebase_op *ro = ZKC__CONTAINER_OF(op, rebase_op, op);
    ro->cb(ro->ctr, op->status, NULL, ro->ud);
}

static void rebase_release(zkc__op *op)
{
    rebase_op *ro = ZKC__CONTAINER_OF(op, rebase_op, op);
    zkc__ctr_drop(ro->ctr);
    free(ro);
}

static int rebase_run(zkc_counter *ctr, zkc_counter_cb cb, void *ud, int blocking, const char *fn)
{
    int rc = zkc__ctr_check(ctr, fn);
    if (rc)
        return rc;
    if (!blocking && !cb)
        return zkc__err(ZKC_EINVAL, "%s: the callback is NULL", fn);
    rebase_op *ro = calloc(1, sizeof *ro);
    if (!ro)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    ro->op.c = ctr->c;
    ro->op.invoke = blocking ? zkc__ctr_noop_invoke : rebase_invoke;
    ro->op.release = rebase_release;
    ro->ctr = ctr;
    zkc__ctr_hold(ctr); /* a concurrent zkc_counter_destroy must not free it under the op */
    ro->cb = cb;
    ro->ud = ud;
    zkc__metrics_tag(&ro->op.ms, ctr->c, ZKC_MK_COUNTER, ZKC__MH_NONE, ctr->path);
    rc = zkc__op_run(&ro->op, rebase_start, blocking);
    if (blocking)
        ro->op.release(&ro->op);
    return rc;
}

int zkc_counter_rebase(zkc_counter *ctr)
{
    return rebase_run(ctr, NULL, NULL, 1, "zkc_counter_rebase");
}

int zkc_counter_rebase_async(zkc_counter *ctr, zkc_counter_cb cb, void *ud)
{
    return rebase_run(ctr, cb, ud, 0, "zkc_counter_rebase_async");
}
