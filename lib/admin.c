/* Administrative cleanup: a chain of requests on the engine, one at a time
 * (not a hot path; clarity over speed), with no thread of its own:
 *   1. the servers' "now": a time their clock has reached for sure (clock.c's
 *      lower bound: the mtime of a touch of <meta_root>/clock);
 *   2. two key-store sweeps (keystore.c, one read in flight): the markers
 *      (<meta_root>/txn, flat) and the key buckets (<meta_root>/keys): records
 *      unchanged since the cutoff, childless and persistent, are deleted;
 *   3. the lock tree below lock_root, an explicit stack of directory frames,
 *      depth first and post-order, so that a parent this pass empties goes
 *      too (not a key store: its judgement needs the subtree first).
 * Every delete is conditional on the version examined. Only listing the
 * directories we were given (and the key buckets) can fail the call; a child
 * that vanished or changed while we looked is skipped. */
#include "clock.h"
#include "internal.h"
#include "keystore.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TREE_DEPTH_MAX 32

typedef struct frame {
    char *path;
    char **children;
    int n, i;
    int listed;
    int depth;    /* > 0: pushed for its parent's child */
    char *child;  /* children[i] being examined */
    zkc__stat st; /* its stat */
    int after;    /* back from the child's own frame */
} frame;

typedef struct cleanup_op {
    zkc__op op;
    int dry_run;
    char *lock_root, *txn, *keys;
    int64_t cutoff;
    zkc_cleanup_report rep;
    int swept;        /* key-store sweeps done: markers, then keys */
    int list_zrc;     /* a key-store sweep could not list list_path */
    char *list_path;
    frame stack[TREE_DEPTH_MAX + 2];
    int top;
    zkc_admin_cleanup_cb cb; /* async form, else NULL */
    void *ud;
} cleanup_op;

static void step(cleanup_op *co);

static void frame_free(frame *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->children[i]);
    free(f->children);
    free(f->path);
    free(f->child);
    memset(f, 0, sizeof *f);
}

static int push(cleanup_op *co, const char *path, int depth)
{
    frame *f = &co->stack[co->top];
    memset(f, 0, sizeof *f);
    if (!(f->path = strdup(path)))
        return ZKC_ENOMEM;
    f->depth = depth;
    co->top++;
    return 0;
}

static void pop(cleanup_op *co)
{
    frame_free(&co->stack[--co->top]);
}

static void cleanup_invoke(zkc__op *op)
{
    cleanup_op *co = ZKC__CONTAINER_OF(op, cleanup_op, op);
    co->cb(op->c, op->status, &co->rep, co->ud);
}

static void cleanup_release(zkc__op *op)
{
    cleanup_op *co = ZKC__CONTAINER_OF(op, cleanup_op, op);
    while (co->top > 0)
        pop(co);
    free(co->lock_root);
    free(co->txn);
    free(co->keys);
    free(co->list_path);
    free(co);
}

static void fail(cleanup_op *co, int zrc, const char *what, const char *path)
{
    int e = zrc == ZR_NOTSENT || zrc == ZR_SESSIONLOST ? ZKC_ECONNLOSS : zkc__map_zrc(zrc);
    if (zrc == ZR_CLOSING)
        e = ZKC_ECANCELED;
    zkc__op_finish(&co->op, e, "cleanup: %s %s: %s", what, path, zkc__zrc_name(zrc));
}

/* ---- the key stores: markers and key buckets (keystore.c) */

static int sweep_go_on(void *ud, int where)
{
    cleanup_op *co = ud;
    (void)where; /* checked before every request, as the lock tree's walk does */
    return !co->op.c->closing;
}

static int sweep_list_failed(void *ud, const char *dir, int zrc)
{
    cleanup_op *co = ud;
    co->list_zrc = zrc;
    co->list_path = strdup(dir); /* NULL: reported as out of memory */
    return 1;
}

/* Childless, persistent and unchanged since the cutoff; a record that could
 * not be read is left for the next pass. */
static void sweep_decide(zkc__ks_item *it, zkc__req *r)
{
    cleanup_op *co = it->ud;
    if (r->rc == ZR_OK && r->stat.mtime < co->cutoff && r->stat.num_children == 0 && r->stat.ephemeral_owner == 0)
        zkc__ks_delete(it, r->stat.version);
    else
        zkc__ks_skip(it);
}

static void sweep_done(void *ud, const zkc__ks_counts *n);

static const zkc__ks_ops sweep_store = {
    .inflight = 1, /* one request at a time, as the whole pass */
    .decide = sweep_decide,
    .list_failed = sweep_list_failed,
    .go_on = sweep_go_on,
    .done = sweep_done,
};

/* The markers (flat), then the key buckets. */
static void sweep(cleanup_op *co)
{
    int keys = co->swept > 0;
    if (zkc__ks_walk_start(co->op.c, keys ? co->keys : co->txn, keys, &sweep_store, co->dry_run, co))
        zkc__op_finish(&co->op, ZKC_ENOMEM, "out of memory");
}

static void sweep_done(void *ud, const zkc__ks_counts *n)
{
    cleanup_op *co = ud;
    co->rep.examined += n->examined;
    *(co->swept++ ? &co->rep.keys : &co->rep.markers) += n->deleted;
    if (n->enomem || (co->list_zrc && !co->list_path)) {
        zkc__op_finish(&co->op, ZKC_ENOMEM, "out of memory");
        return;
    }
    if (co->list_zrc) {
        fail(co, co->list_zrc, "listing", co->list_path);
        return;
    }
    if (co->op.c->closing) {
        zkc__op_finish(&co->op, ZKC_ECANCELED, "cleanup: the client is being destroyed");
        return;
    }
    if (co->swept < 2) {
        sweep(co);
        return;
    }
    if (co->lock_root && push(co, co->lock_root, 0)) {
        zkc__op_finish(&co->op, ZKC_ENOMEM, "out of memory");
        return;
    }
    step(co); /* the lock tree */
}

/* ---- the servers' clock */

static void clock_done(void *arg, int zrc, int64_t now)
{
    cleanup_op *co = arg;
    zkc_client *c = co->op.c;
    if (zrc != ZR_OK && c->closing) {
        zkc__op_finish(&co->op, ZKC_ECANCELED, "cleanup: the client is being destroyed");
        return;
    }
    if (zkc__zrc_indeterminate(zrc)) {
        /* The touch (an empty write of <meta_root>/clock, sent again within
         * the operation timeout) got no answer: it may have been applied, so
         * ZKC_ECONNLOSS ("nothing was applied") would not be true. Nothing of
         * the cleanup itself was (no delete is sent before the clock is read),
         * and the touch is idempotent: report the unknown outcome like any
         * other write whose reply was lost, and running cleanup again is the
         * answer (as for zkc_counter_rebase). */
        zkc__op_finish(&co->op, ZKC_EUNKNOWN,
                       "cleanup: touching the servers' clock: %s (the touch may have been applied; nothing was "
                       "deleted): run the cleanup again",
                       zkc__zrc_name(zrc));
        return;
    }
    if (zrc != ZR_OK) {
        fail(co, zrc, "touching", "the servers' clock");
        return;
    }
    int64_t cutoff = now - (int64_t)c->opt.marker_retention_s * 1000;
    /* Never shorter than two session timeouts (the negotiated one when known):
     * a marker must outlive the session whose update it decides. */
    int64_t session = c->opt.session_timeout_ms;
    int negotiated = zkc_client_session_timeout(c);
    if (negotiated > 0)
        session = negotiated;
    if (now - cutoff < 2 * session)
        cutoff = now - 2 * session;
    co->cutoff = cutoff;
    /* Markers first, then keys, then the lock tree. */
    sweep(co);
}

static void cleanup_start(zkc__op *op)
{
    cleanup_op *co = ZKC__CONTAINER_OF(op, cleanup_op, op);
    /* Max age 0: a "now" taken for this pass, not one a minute old. */
    zkc__clock_sync(op->c, 0, clock_done, co);
}

/* ---- the lock tree */

static frame *top(cleanup_op *co)
{
    return &co->stack[co->top - 1];
}

static void next_child(cleanup_op *co)
{
    frame *f = top(co);
    free(f->child);
    f->child = NULL;
    f->after = 0;
    f->i++;
    step(co);
}

static void delete_done(zkc__req *r)
{
    cleanup_op *co = r->ctx;
    if (r->rc == ZR_OK) {
        co->rep.empty_parents++;
        zkc__pathcache_forget(r->c, r->path, strlen(r->path)); /* a walk must not start below it */
    }
    next_child(co);
}

/* The child is to go (if dry_run, only to be counted). */
static void remove_child(cleanup_op *co)
{
    frame *f = top(co);
    if (co->dry_run) {
        co->rep.empty_parents++;
        next_child(co);
        return;
    }
    zkc__delete(co->op.c, f->child, f->st.version, delete_done, co);
}

/* The child's stat is current (after its own subtree, if any). */
static void tree_decide(cleanup_op *co)
{
    frame *f = top(co);
    if (f->st.num_children == 0 && f->st.mtime < co->cutoff && f->st.ctime < co->cutoff)
        remove_child(co);
    else
        next_child(co); /* still in use */
}

static void exists_done(zkc__req *r)
{
    cleanup_op *co = r->ctx;
    frame *f = top(co);
    f->st = r->stat;
    if (f->after) { /* re-read after its subtree: a failure counts as in use */
        if (r->rc != ZR_OK)
            f->st.num_children = 1;
        tree_decide(co);
        return;
    }
    if (r->rc != ZR_OK || f->st.ephemeral_owner != 0) {
        next_child(co);
        return;
    }
    if (f->st.num_children > 0) {
        f->after = 1;
        if (push(co, f->child, f->depth + 1)) {
            zkc__op_finish(&co->op, ZKC_ENOMEM, "out of memory");
            return;
        }
        step(co);
        return;
    }
    tree_decide(co);
}

static void list_done(zkc__req *r)
{
    cleanup_op *co = r->ctx;
    frame *f = top(co);
    f->listed = 1;
    if (r->rc == ZR_OK) {
        f->children = r->children;
        f->n = r->nchildren;
        r->children = NULL;
        r->nchildren = 0;
    } else if (r->rc != ZR_NONODE && f->depth == 0) {
        fail(co, r->rc, "listing", f->path);
        return;
    } /* else: nothing there (a subtree's failure leaves its parent in place) */
    step(co);
}

/* A subtree's frame is done: back to its parent's child. */
static void tree_return(cleanup_op *co)
{
    frame *f = top(co);
    if (co->dry_run) {
        next_child(co); /* it has children: counted as in use */
        return;
    }
    zkc__exists(co->op.c, f->child, NULL, exists_done, co);
}

static void step(cleanup_op *co)
{
    zkc_client *c = co->op.c;
    if (c->closing) {
        zkc__op_finish(&co->op, ZKC_ECANCELED, "cleanup: the client is being destroyed");
        return;
    }
    if (co->top == 0) {
        zkc__op_finish(&co->op, 0, NULL);
        return;
    }
    frame *f = top(co);
    if (f->depth > TREE_DEPTH_MAX)
        f->listed = 1; /* too deep: left alone */
    if (!f->listed) {
        zkc__children(c, f->path, NULL, list_done, co);
        return;
    }
    if (f->i >= f->n) {
        /* Depth > 0: the frame was its parent's child (a subtree), and the
         * parent goes on from that child. */
        int nested = f->depth > 0;
        pop(co);
        if (nested) {
            tree_return(co);
            return;
        }
        step(co);
        return;
    }
    if (!(f->child = zkc__path_join(f->path, f->children[f->i]))) {
        zkc__op_finish(&co->op, ZKC_ENOMEM, "out of memory");
        return;
    }
    co->rep.examined++;
    zkc__exists(c, f->child, NULL, exists_done, co);
}

/* ---- entry points */

static int cleanup_run(zkc_client *c, const char *lock_root, int dry_run, zkc_cleanup_report *out,
                       zkc_admin_cleanup_cb cb, void *ud, int blocking, const char *fn)
{
    if (!c)
        return zkc__err(ZKC_EINVAL, "%s: client is NULL", fn);
    if (!blocking && !cb)
        return zkc__err(ZKC_EINVAL, "%s: the callback is NULL", fn);
    int rc;
    if (lock_root && (rc = zkc__path_check(lock_root, "lock root")) != 0)
        return rc;
    cleanup_op *co = calloc(1, sizeof *co);
    if (!co)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    co->op.c = c;
    co->op.invoke = cleanup_invoke;
    co->op.release = cleanup_release;
    co->dry_run = dry_run;
    co->cb = cb;
    co->ud = ud;
    co->txn = zkc__path_join(c->meta_root, "txn");
    co->keys = zkc__path_join(c->meta_root, "keys");
    if (!co->txn || !co->keys || (lock_root && !(co->lock_root = strdup(lock_root)))) {
        cleanup_release(&co->op);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    zkc__metrics_tag(&co->op.ms, c, ZKC_MK_ADMIN, ZKC__MH_NONE, lock_root);
    rc = zkc__op_run(&co->op, cleanup_start, blocking);
    if (blocking) {
        *out = co->rep;
        co->op.release(&co->op);
    }
    return rc;
}

int zkc_admin_cleanup(zkc_client *c, const char *lock_root, int dry_run, zkc_cleanup_report *out)
{
    zkc_cleanup_report tmp;
    if (!out)
        out = &tmp;
    memset(out, 0, sizeof *out);
    return cleanup_run(c, lock_root, dry_run, out, NULL, NULL, 1, "zkc_admin_cleanup");
}

int zkc_admin_cleanup_async(zkc_client *c, const char *lock_root, int dry_run, zkc_admin_cleanup_cb cb, void *ud)
{
    return cleanup_run(c, lock_root, dry_run, NULL, cb, ud, 0, "zkc_admin_cleanup_async");
}
