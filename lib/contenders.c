/*
 * A lock's queue as tools see it (zkc_lock_contenders): every member with its
 * sequence, kind, owner session and czxid, and who holds, for any recipe on
 * the member core, from any client (no lock object needed).
 */
#include "internal.h"
#include "seqname.h"

#include <stdlib.h>
#include <string.h>

typedef struct list_op {
    zkc__op op;
    int leases; /* the semaphore's lease count stored in the lock node; 0 none */
    int fresh;  /* zkc_lock_contenders_fresh: fence the first read (zkc__fence_get) */
    char *path;
    char **names;
    int n;
    int pending;
    zkc_lock_contender *entries;
    int count;
    zkc_lock_contenders_cb cb; /* async form, else NULL */
    void *ud;
} list_op;

static void list_invoke(zkc__op *op)
{
    list_op *lo = ZKC__CONTAINER_OF(op, list_op, op);
    if (lo->cb) /* the entries are freed with the op, after the callback */
        lo->cb(op->c, op->status, op->status ? NULL : lo->entries, op->status ? 0 : lo->count, lo->ud);
}

static void list_release(zkc__op *op)
{
    list_op *lo = ZKC__CONTAINER_OF(op, list_op, op);
    for (int i = 0; i < lo->n; i++)
        free(lo->names[i]);
    free(lo->names);
    free(lo->path);
    if (lo->entries)
        zkc_lock_contenders_free(lo->entries, lo->count);
    free(lo);
}

static void list_stat_done(zkc__req *r)
{
    zkc_lock_contender *e = r->ctx;
    list_op *lo = (list_op *)(void *)r->tag;
    if (r->rc == ZR_OK) {
        e->czxid = r->stat.czxid;
        e->ctime_ms = r->stat.ctime;
        e->session_id = r->stat.ephemeral_owner;
    } else {
        e->czxid = -1; /* left while we looked */
    }
    if (--lo->pending == 0) {
        /* Drop members that vanished, then say who holds. */
        int k = 0;
        for (int i = 0; i < lo->count; i++) {
            if (lo->entries[i].czxid < 0) {
                free(lo->entries[i].name);
                continue;
            }
            lo->entries[k++] = lo->entries[i];
        }
        lo->count = k;
        int writer_seen = 0, leases_before = 0;
        for (int i = 0; i < k; i++) {
            zkc_lock_contender *q = &lo->entries[i];
            if (q->kind == ZKC_LOCK_READ)
                q->holds = !writer_seen;
            else if (q->kind == ZKC_LOCK_SEMAPHORE)
                q->holds = leases_before++ < (lo->leases > 0 ? lo->leases : 1);
            else
                q->holds = i == 0;
            if (q->kind != ZKC_LOCK_READ)
                writer_seen = 1;
        }
        zkc__op_finish(&lo->op, 0, NULL);
    }
}

static void list_children_done(zkc__req *r)
{
    list_op *lo = r->ctx;
    if (r->rc == ZR_NONODE) {
        lo->count = 0;
        zkc__op_finish(&lo->op, 0, NULL);
        return;
    }
    if (r->rc != ZR_OK) {
        zkc__op_finish(&lo->op, zkc__map_zrc(r->rc), "listing %s: %s", lo->path, zkc__zrc_name(r->rc));
        return;
    }
    lo->names = r->children;
    lo->n = r->nchildren;
    r->children = NULL;
    r->nchildren = 0;
    zkc__member *m = calloc((size_t)lo->n + 1, sizeof *m);
    lo->entries = calloc((size_t)lo->n + 1, sizeof *lo->entries);
    if (!m || !lo->entries) {
        free(m);
        zkc__op_finish(&lo->op, ZKC_ENOMEM, "out of memory");
        return;
    }
    int k = zkc__members_parse(lo->names, lo->n, m, NULL, NULL);
    lo->count = k;
    for (int i = 0; i < k; i++) {
        lo->entries[i].name = strdup(m[i].name);
        lo->entries[i].sequence = m[i].seq;
        lo->entries[i].kind = m[i].kind;
    }
    free(m);
    if (k == 0) {
        zkc__op_finish(&lo->op, 0, NULL);
        return;
    }
    lo->pending = k;
    for (int i = 0; i < k; i++) {
        char *p = zkc__path_join(lo->path, lo->entries[i].name);
        zkc__req *q = zkc__exists(r->c, p, NULL, list_stat_done, &lo->entries[i]);
        q->tag = (uint64_t)(uintptr_t)lo;
        free(p);
    }
}

static void list_data_done(zkc__req *r)
{
    list_op *lo = r->ctx;
    if (lo->fresh && r->rc != ZR_OK && r->rc != ZR_NONODE) {
        zkc__op_finish(&lo->op, zkc__map_zrc(r->rc), "reading %s: %s", lo->path, zkc__zrc_name(r->rc));
        return;
    }
    if (r->rc == ZR_OK && r->valuelen > 0 && r->valuelen < 16) {
        char *end = NULL;
        long v = strtol(r->value, &end, 10);
        if (end && *end == 0 && v > 0 && v < 1000000)
            lo->leases = (int)v;
    }
    zkc__children(r->c, lo->path, NULL, list_children_done, lo);
}

static void list_start(zkc__op *op)
{
    list_op *lo = ZKC__CONTAINER_OF(op, list_op, op);
    /* The node's data says how many a semaphore admits. The listing and stats
     * follow this read on the same session (a server takes a session over only
     * if it has seen what the session saw), so one fence covers them all. */
    if (lo->fresh)
        zkc__fence_get(op->c, lo->path, list_data_done, lo);
    else
        zkc__get(op->c, lo->path, NULL, list_data_done, lo);
}

/* Checks the arguments and builds the op (NULL: refused with *rc). */
static list_op *list_new(zkc_client *c, const char *path, const char *fn, int *rc)
{
    if (!c) {
        *rc = zkc__err(ZKC_EINVAL, "%s: NULL argument", fn);
        return NULL;
    }
    if ((*rc = zkc__path_check(path, "lock path")) != 0)
        return NULL;
    list_op *lo = calloc(1, sizeof *lo);
    if (!lo || !(lo->path = strdup(path))) {
        free(lo);
        *rc = zkc__err(ZKC_ENOMEM, "out of memory");
        return NULL;
    }
    lo->op.c = c;
    lo->op.invoke = list_invoke;
    lo->op.release = list_release;
    return lo;
}

static int list_run(zkc_client *c, const char *path, int fresh, zkc_lock_contender **entries, int *count,
                    const char *fn)
{
    if (!entries || !count)
        return zkc__err(ZKC_EINVAL, "%s: NULL argument", fn);
    *entries = NULL;
    *count = 0;
    int rc;
    list_op *lo = list_new(c, path, fn, &rc);
    if (!lo)
        return rc;
    lo->fresh = fresh;
    zkc__metrics_tag(&lo->op.ms, c, ZKC_MK_LOCK, ZKC__MH_NONE, path);
    rc = zkc__op_run(&lo->op, list_start, 1);
    if (rc == 0) {
        *entries = lo->entries;
        *count = lo->count;
        lo->entries = NULL;
    }
    lo->op.release(&lo->op);
    return rc;
}

int zkc_lock_contenders(zkc_client *c, const char *path, zkc_lock_contender **entries, int *count)
{
    return list_run(c, path, 0, entries, count, "zkc_lock_contenders");
}

int zkc_lock_contenders_fresh(zkc_client *c, const char *path, zkc_lock_contender **entries, int *count)
{
    return list_run(c, path, 1, entries, count, "zkc_lock_contenders_fresh");
}

static int list_submit(zkc_client *c, const char *path, int fresh, zkc_lock_contenders_cb cb, void *ud,
                       const char *fn)
{
    if (!cb)
        return zkc__err(ZKC_EINVAL, "%s: the callback is NULL", fn);
    int rc;
    list_op *lo = list_new(c, path, fn, &rc);
    if (!lo)
        return rc;
    lo->fresh = fresh;
    lo->cb = cb;
    lo->ud = ud;
    zkc__metrics_tag(&lo->op.ms, c, ZKC_MK_LOCK, ZKC__MH_NONE, path);
    return zkc__op_run(&lo->op, list_start, 0);
}

int zkc_lock_contenders_async(zkc_client *c, const char *path, zkc_lock_contenders_cb cb, void *ud)
{
    return list_submit(c, path, 0, cb, ud, "zkc_lock_contenders_async");
}

int zkc_lock_contenders_fresh_async(zkc_client *c, const char *path, zkc_lock_contenders_cb cb, void *ud)
{
    return list_submit(c, path, 1, cb, ud, "zkc_lock_contenders_fresh_async");
}

void zkc_lock_contenders_free(zkc_lock_contender *entries, int count)
{
    if (!entries)
        return;
    for (int i = 0; i < count; i++)
        free(entries[i].name);
    free(entries);
}
