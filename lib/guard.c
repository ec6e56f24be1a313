/*
 * Raw writes guarded by a lock hold: zkc_guarded_create / _set / _delete.
 *
 * WHY. A fencing token protects a store only if the store checks it; the
 * ZooKeeper nodes a holder writes itself can check the hold directly. Each
 * guarded write is one multi of
 *     the write (create, setData or delete)
 *     setData(marker, "<txn id> 0")           (txn.c: EXACTLY ONCE)
 *     check(guard node, version)              (txn.c: GUARDS)
 * on the transaction core, so the write applies only while the guard's node
 * exists, and a reply lost to a connection failure is decided by the marker
 * instead of being repeated (a repeated create would report EEXISTS for its
 * own success; a repeated versioned set would report a mismatch). The marker
 * costs a second write in the same transaction, not a round trip.
 *
 * What the guard is and how a lock makes one: include/zkcoord.h, section
 * "writes guarded by the lock"; zkc_lock_guard is in lib/lock.c.
 */
#include "txn.h"
#include "opwatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct guarded_op {
    zkc__op op;
    zkc__txn t;
    int kind; /* ZKC_REQ_CREATE / SET / DELETE */
    char *path;
    char *data;
    int len;
    int version;
    zkc_guard guard;
    zkc_guarded_cb cb;
    void *ud;
} guarded_op;

static guarded_op *of(zkc__txn *t)
{
    return ZKC__CONTAINER_OF(t, guarded_op, t);
}

static void finish(guarded_op *g, int status, const char *msg)
{
    zkc__txn_finish(&g->t);
    zkc__op_finish(&g->op, status, "%s", msg ? msg : zkc_strerror(status));
}

static const char *kind_name(int kind)
{
    return kind == ZKC_REQ_CREATE ? "create" : kind == ZKC_REQ_SET ? "set" : "delete";
}

static void multi_done(zkc__req *r)
{
    guarded_op *g = of(r->ctx);
    int fi = -1, frc = r->rc;
    int verdict = zkc__txn_reply(&g->t, r, &fi, &frc);
    if (verdict == ZKC__TXN_TAKEN)
        return;
    if (verdict == ZKC__TXN_APPLIED) {
        finish(g, 0, NULL);
        return;
    }
    /* Our write (op 0) was refused by the server: decided, nothing applied. */
    char msg[256];
    int status = frc == ZR_BADVERSION ? ZKC_EMISMATCH : zkc__map_zrc(frc);
    snprintf(msg, sizeof msg, "guarded %s of %s refused: %s (nothing written)", kind_name(g->kind), g->path,
             frc == ZR_BADVERSION ? "the node's version differs" : zkc__zrc_name(frc));
    finish(g, status, msg);
}

static void on_round(zkc__txn *t)
{
    guarded_op *g = of(t);
    if (g->op.c->closing) {
        finish(g, ZKC_ECANCELED, "the client is being destroyed");
        return;
    }
    if (!zkc__txn_marker_ready(t))
        return;
    zkc__record rec;
    char recbuf[160];
    memset(&rec, 0, sizeof rec);
    snprintf(rec.id, sizeof rec.id, "%s", t->id);
    int rlen = zkc__record_encode(&rec, recbuf, sizeof recbuf);
    zkc__mop ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].type = g->kind;
    ops[0].path = g->path;
    ops[0].data = g->data;
    ops[0].len = g->len;
    ops[0].version = g->version;
    zkc__txn_marker_op(t, &ops[1], recbuf, rlen);
    zkc__opwatch_state(&g->op, "guarded write sent");
    zkc__txn_send(t, ops, 2, multi_done);
}

static void on_applied(zkc__txn *t, const zkc__record *rec)
{
    ZKC__UNUSED(rec);
    finish(of(t), 0, NULL);
}

static void on_unapplied(zkc__txn *t)
{
    ZKC__UNUSED(t); /* nothing cached: round() sends it again, checks and all */
}

static void on_fail(zkc__txn *t, int status, const char *msg)
{
    finish(of(t), status, msg);
}

static void on_phase(zkc__txn *t, const char *state)
{
    zkc__opwatch_state(&of(t)->op, state);
}

static const zkc__txn_ops guarded_txn_ops = {
    .round = on_round,
    .applied = on_applied,
    .unapplied = on_unapplied,
    .fail = on_fail,
    .phase = on_phase,
    .unknown_hint = "; read the node to find out",
};

static void guarded_start(zkc__op *op)
{
    guarded_op *g = ZKC__CONTAINER_OF(op, guarded_op, op);
    zkc__txn_init(&g->t, op->c, &guarded_txn_ops);
    zkc__txn_guard(&g->t, &g->guard, 1);
    on_round(&g->t);
}

static void guarded_invoke(zkc__op *op)
{
    guarded_op *g = ZKC__CONTAINER_OF(op, guarded_op, op);
    if (g->cb)
        g->cb(op->c, op->status, g->ud);
}

static void guarded_release(zkc__op *op)
{
    guarded_op *g = ZKC__CONTAINER_OF(op, guarded_op, op);
    free(g->path);
    free(g->data);
    free(g);
}

static int guarded_run(zkc_client *c, const zkc_guard *gd, int kind, const char *path, const void *data, int len,
                       int version, zkc_guarded_cb cb, void *ud, int blocking, const char *fn)
{
    int rc;
    if (!c)
        return zkc__err(ZKC_EINVAL, "%s: client is NULL", fn);
    if (!blocking && !cb)
        return zkc__err(ZKC_EINVAL, "%s: the callback is NULL", fn);
    if ((rc = zkc__txn_guard_check(gd, fn)) != 0 || (rc = zkc__path_check(path, "path")) != 0)
        return rc;
    if (len < 0 || (len > 0 && !data))
        return zkc__err(ZKC_EINVAL, "%s: data is NULL or its length %d is negative", fn, len);
    if (version < -1)
        return zkc__err(ZKC_EINVAL, "%s: version %d (-1 for any)", fn, version);
    guarded_op *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path)) || (len > 0 && !(g->data = malloc((size_t)len)))) {
        if (g)
            free(g->path);
        free(g);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    if (len > 0)
        memcpy(g->data, data, (size_t)len);
    g->op.c = c;
    g->op.invoke = guarded_invoke;
    g->op.release = guarded_release;
    g->kind = kind;
    g->len = len;
    g->version = version;
    g->guard = *gd;
    g->cb = cb;
    g->ud = ud;
    zkc__opwatch_next(kind == ZKC_REQ_CREATE ? "guarded_create" : kind == ZKC_REQ_SET ? "guarded_set"
                                                                                      : "guarded_delete",
                      path, (int64_t)c->opt.operation_timeout_ms + c->opt.session_timeout_ms);
    rc = zkc__op_run(&g->op, guarded_start, blocking);
    zkc__opwatch_next(NULL, NULL, 0); /* refused before it registered: the label is not the next op's */
    if (blocking)
        g->op.release(&g->op);
    return rc;
}

int zkc_guarded_create(zkc_client *c, const zkc_guard *g, const char *path, const void *data, int len)
{
    return guarded_run(c, g, ZKC_REQ_CREATE, path, data, len, 0, NULL, NULL, 1, "zkc_guarded_create");
}

int zkc_guarded_create_async(zkc_client *c, const zkc_guard *g, const char *path, const void *data, int len,
                             zkc_guarded_cb cb, void *ud)
{
    return guarded_run(c, g, ZKC_REQ_CREATE, path, data, len, 0, cb, ud, 0, "zkc_guarded_create_async");
}

int zkc_guarded_set(zkc_client *c, const zkc_guard *g, const char *path, const void *data, int len, int version)
{
    return guarded_run(c, g, ZKC_REQ_SET, path, data, len, version, NULL, NULL, 1, "zkc_guarded_set");
}

int zkc_guarded_set_async(zkc_client *c, const zkc_guard *g, const char *path, const void *data, int len,
                          int version, zkc_guarded_cb cb, void *ud)
{
    return guarded_run(c, g, ZKC_REQ_SET, path, data, len, version, cb, ud, 0, "zkc_guarded_set_async");
}

int zkc_guarded_delete(zkc_client *c, const zkc_guard *g, const char *path, int version)
{
    return guarded_run(c, g, ZKC_REQ_DELETE, path, NULL, 0, version, NULL, NULL, 1, "zkc_guarded_delete");
}

int zkc_guarded_delete_async(zkc_client *c, const zkc_guard *g, const char *path, int version, zkc_guarded_cb cb,
                             void *ud)
{
    return guarded_run(c, g, ZKC_REQ_DELETE, path, NULL, 0, version, cb, ud, 0, "zkc_guarded_delete_async");
}
