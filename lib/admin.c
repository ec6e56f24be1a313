/* Administrative cleanup: one blocking request at a time from the caller's
 * thread. Not a hot path; clarity over speed. */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bop {
    zkc__op op;
    int kind;
    const char *path;
    const char *data;
    int len, version, flags;
    int rc;
    zkc__stat stat;
    char **children;
    int nchildren;
} bop;

static void bop_invoke(zkc__op *op)
{
    ZKC__UNUSED(op);
}

static void bop_release(zkc__op *op)
{
    bop *b = ZKC__CONTAINER_OF(op, bop, op);
    for (int i = 0; i < b->nchildren; i++)
        free(b->children[i]);
    free(b->children);
}

static void bop_done(zkc__req *r)
{
    bop *b = r->ctx;
    b->rc = r->rc;
    b->stat = r->stat;
    if (r->rc == ZR_OK && r->children) {
        b->children = r->children;
        b->nchildren = r->nchildren;
        r->children = NULL;
        r->nchildren = 0;
    }
    zkc__op_finish(&b->op, 0, NULL);
}

static void bop_start(zkc__op *op)
{
    bop *b = ZKC__CONTAINER_OF(op, bop, op);
    switch (b->kind) {
    case ZKC_REQ_CHILDREN: zkc__children(op->c, b->path, NULL, bop_done, b); break;
    case ZKC_REQ_EXISTS: zkc__exists(op->c, b->path, NULL, bop_done, b); break;
    case ZKC_REQ_DELETE: zkc__delete(op->c, b->path, b->version, bop_done, b); break;
    case ZKC_REQ_SET: zkc__set(op->c, b->path, b->data, b->len, b->version, bop_done, b); break;
    default: zkc__create(op->c, b->path, b->data, b->len, b->flags, bop_done, b); break;
    }
}

/* Runs one request and waits; returns the ZR_* code (or a ZKC_E* refusal). */
static int call(zkc_client *c, bop *b)
{
    b->op.c = c;
    b->op.invoke = bop_invoke;
    b->op.release = bop_release;
    int rc = zkc__op_run(&b->op, bop_start, 1);
    return rc ? rc : b->rc;
}

static int fail(int zrc, const char *what, const char *path)
{
    if (zrc == ZKC_EDEADLK || zrc == ZKC_ECLOSED) /* call() refused to submit */
        return zkc__err(zrc, "cleanup: %s %s: %s", what, path, zkc_strerror(zrc));
    int e = zrc == ZR_NOTSENT || zrc == ZR_SESSIONLOST ? ZKC_ECONNLOSS : zkc__map_zrc(zrc);
    return zkc__err(e, "cleanup: %s %s: %s", what, path, zkc__zrc_name(zrc));
}

/* The servers' "now": the mtime they stamp on a node we write. */
static int server_now(zkc_client *c, int64_t *now)
{
    char *p = zkc__path_join(c->meta_root, "clock");
    if (!p)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    bop b = {.kind = ZKC_REQ_SET, .path = p, .data = "", .len = 0, .version = -1};
    int rc = call(c, &b);
    bop_release(&b.op);
    if (rc == ZR_NONODE) {
        bop m = {.kind = ZKC_REQ_CREATE, .path = c->meta_root};
        call(c, &m);
        bop_release(&m.op);
        bop cr = {.kind = ZKC_REQ_CREATE, .path = p, .data = "", .len = 0};
        rc = call(c, &cr);
        bop_release(&cr.op);
        b.stat = cr.stat;
    }
    if (rc != ZR_OK) {
        rc = fail(rc, "writing", p);
        free(p);
        return rc;
    }
    *now = b.stat.mtime;
    free(p);
    return 0;
}

/* Delete the children of dir whose own mtime is older than cutoff and that
 * have no children. Returns the count (or would-be count). */
static int sweep(zkc_client *c, const char *dir, int64_t cutoff, int dry_run, int64_t *count, int64_t *examined)
{
    bop l = {.kind = ZKC_REQ_CHILDREN, .path = dir};
    int rc = call(c, &l);
    if (rc == ZR_NONODE) {
        bop_release(&l.op);
        return 0;
    }
    if (rc != ZR_OK) {
        bop_release(&l.op);
        return fail(rc, "listing", dir);
    }
    for (int i = 0; i < l.nchildren; i++) {
        char *p = zkc__path_join(dir, l.children[i]);
        if (!p)
            break;
        bop s = {.kind = ZKC_REQ_EXISTS, .path = p};
        (*examined)++;
        if (call(c, &s) == ZR_OK && s.stat.mtime < cutoff && s.stat.num_children == 0 &&
            s.stat.ephemeral_owner == 0) {
            if (dry_run) {
                (*count)++;
            } else {
                bop d = {.kind = ZKC_REQ_DELETE, .path = p, .version = s.stat.version};
                if (call(c, &d) == ZR_OK)
                    (*count)++;
                bop_release(&d.op);
            }
        }
        bop_release(&s.op);
        free(p);
    }
    bop_release(&l.op);
    return 0;
}

/* Depth-first below root: empty, persistent, unchanged since cutoff. */
static int sweep_tree(zkc_client *c, const char *path, int64_t cutoff, int dry_run, int depth,
                      zkc_cleanup_report *out)
{
    if (depth > 32)
        return 0;
    bop l = {.kind = ZKC_REQ_CHILDREN, .path = path};
    int rc = call(c, &l);
    if (rc != ZR_OK) {
        bop_release(&l.op);
        return rc == ZR_NONODE ? 0 : fail(rc, "listing", path);
    }
    for (int i = 0; i < l.nchildren; i++) {
        char *p = zkc__path_join(path, l.children[i]);
        if (!p)
            break;
        bop s = {.kind = ZKC_REQ_EXISTS, .path = p};
        out->examined++;
        if (call(c, &s) == ZR_OK && s.stat.ephemeral_owner == 0) {
            if (s.stat.num_children > 0 && !dry_run) {
                /* Post-order: a parent emptied by this pass goes too. */
                sweep_tree(c, p, cutoff, dry_run, depth + 1, out);
                bop_release(&s.op);
                memset(&s, 0, sizeof s);
                s.kind = ZKC_REQ_EXISTS;
                s.path = p;
                if (call(c, &s) != ZR_OK)
                    s.stat.num_children = 1;
            } else if (s.stat.num_children > 0) {
                sweep_tree(c, p, cutoff, dry_run, depth + 1, out);
            }
            if (s.stat.num_children > 0) {
                /* still in use */
            } else if (s.stat.mtime < cutoff && s.stat.ctime < cutoff) {
                if (dry_run) {
                    out->empty_parents++;
                } else {
                    bop d = {.kind = ZKC_REQ_DELETE, .path = p, .version = s.stat.version};
                    if (call(c, &d) == ZR_OK)
                        out->empty_parents++;
                    bop_release(&d.op);
                }
            }
        }
        bop_release(&s.op);
        free(p);
    }
    bop_release(&l.op);
    return 0;
}

int zkc_admin_cleanup(zkc_client *c, const char *lock_root, int dry_run, zkc_cleanup_report *out)
{
    zkc_cleanup_report tmp;
    if (!out)
        out = &tmp;
    memset(out, 0, sizeof *out);
    if (!c)
        return zkc__err(ZKC_EINVAL, "zkc_admin_cleanup: client is NULL");
    int rc;
    if (lock_root && (rc = zkc__path_check(lock_root, "lock root")) != 0)
        return rc;
    if ((rc = zkc__check_blocking(c)) != 0)
        return rc;
    int64_t now = 0;
    if ((rc = server_now(c, &now)) != 0)
        return rc;
    int64_t cutoff = now - (int64_t)c->opt.marker_retention_s * 1000;
    /* Never shorter than two session timeouts (the negotiated one when known):
     * a marker must outlive the session whose update it decides. */
    int64_t session = c->opt.session_timeout_ms;
    int negotiated = zkc_client_session_timeout(c);
    if (negotiated > 0)
        session = negotiated;
    if (now - cutoff < 2 * session)
        cutoff = now - 2 * session;
    char *txn = zkc__path_join(c->meta_root, "txn");
    char *keys = zkc__path_join(c->meta_root, "keys");
    if (!txn || !keys) {
        free(txn);
        free(keys);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    rc = sweep(c, txn, cutoff, dry_run, &out->markers, &out->examined);
    if (!rc) {
        bop l = {.kind = ZKC_REQ_CHILDREN, .path = keys};
        int lrc = call(c, &l);
        if (lrc == ZR_OK) {
            for (int i = 0; i < l.nchildren && !rc; i++) {
                char *b = zkc__path_join(keys, l.children[i]);
                if (b)
                    rc = sweep(c, b, cutoff, dry_run, &out->keys, &out->examined);
                free(b);
            }
        } else if (lrc != ZR_NONODE) {
            rc = fail(lrc, "listing", keys);
        }
        bop_release(&l.op);
    }
    if (!rc && lock_root)
        rc = sweep_tree(c, lock_root, cutoff, dry_run, 0, out);
    free(txn);
    free(keys);
    return rc;
}
