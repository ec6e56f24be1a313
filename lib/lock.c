/* The lock recipes as decisions on the queue engine (queue.c): a mutex and the
 * two sides of a read/write lock. Also queue introspection for tools. */
#include "queue.h"

#include <stdlib.h>
#include <string.h>

int zkc__lock_register(zkc_lock *l);

/* Mutex and writer: first in line holds; everyone else waits for the one
 * right before it, so a release wakes exactly one waiter. */
static int decide_exclusive(zkc_lock *l, const zkc__member *m, int n, int self, zkc__verdict *v)
{
    ZKC__UNUSED(l);
    ZKC__UNUSED(m);
    ZKC__UNUSED(n);
    if (self == 0)
        v->granted = 1;
    else
        v->blocker = self - 1;
    return 0;
}

/* Reader: holds unless a writer is ahead of it, and then waits for the last
 * writer ahead (readers between it and that writer do not matter). The write
 * lock held by this reader's own rwlock does not count: that is the downgrade. */
static int decide_read(zkc_lock *l, const zkc__member *m, int n, int self, zkc__verdict *v)
{
    ZKC__UNUSED(n);
    const char *own_writer = zkc__lock_sibling_node(l);
    for (int i = self - 1; i >= 0; i--) {
        /* Anything that is not a reader blocks a reader: writers, mutexes, and
         * names we do not recognise (an unprotected Curator "lock-" node). */
        if (m[i].kind != ZKC_LOCK_READ) {
            if (own_writer && strcmp(m[i].name, own_writer) == 0)
                continue;
            v->blocker = i;
            return 0;
        }
    }
    v->granted = 1;
    return 0;
}

/* Semaphore: the first max_leases members hold. The first waiter watches the
 * children list, since a release anywhere among the holders admits it; every
 * later waiter watches the member right before it, which either leaves (cancel,
 * crash) or, once admitted, touches its own node to wake this one up. */
static int decide_semaphore(zkc_lock *l, const zkc__member *m, int n, int self, zkc__verdict *v)
{
    ZKC__UNUSED(m);
    int max = zkc__lock_max_leases(l);
    int stored = zkc__lock_stored_leases(l);
    if (stored > 0 && stored != max)
        return zkc__err(ZKC_ECONFIG, "semaphore has %d leases stored in its node, this client was configured for %d",
                        stored, max);
    v->kick_next = 1;
    if (self < max) {
        v->granted = 1;
        return 0;
    }
    if (self == max)
        v->watch_children = 1;
    else
        v->blocker = self - 1;
    ZKC__UNUSED(n);
    return 0;
}

const zkc__qkind zkc__kind_mutex = {"lock-", ZKC_LOCK_MUTEX, 1, 0, decide_exclusive};
const zkc__qkind zkc__kind_write = {"__WRIT__", ZKC_LOCK_WRITE, 1, 0, decide_exclusive};
const zkc__qkind zkc__kind_read = {"__READ__", ZKC_LOCK_READ, 0, 0, decide_read};
const zkc__qkind zkc__kind_semaphore = {"lease-", ZKC_LOCK_SEMAPHORE, 0, 1, decide_semaphore};

int zkc__lock_make(zkc_client *c, const char *path, const zkc__qkind *kind, int max_leases, zkc_lock **out);
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
    zkc_lock *l = zkc__lock_new(c, path, kind, max_leases);
    if (!l)
        return ZKC_ENOMEM;
    rc = zkc__lock_register(l);
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

struct zkc_rwlock {
    zkc_lock *r, *w;
};

void zkc__lock_set_sibling(zkc_lock *reader, zkc_lock *writer);

int zkc_rwlock_create(zkc_client *c, const char *path, zkc_rwlock **out)
{
    if (!out)
        return zkc__err(ZKC_EINVAL, "zkc_rwlock_create: out is NULL");
    *out = NULL;
    zkc_rwlock *rw = calloc(1, sizeof *rw);
    if (!rw)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    int rc = zkc__lock_make(c, path, &zkc__kind_read, 0, &rw->r);
    if (!rc)
        rc = zkc__lock_make(c, path, &zkc__kind_write, 0, &rw->w);
    if (rc) {
        zkc_lock_destroy(rw->r);
        free(rw);
        return rc;
    }
    zkc__lock_set_sibling(rw->r, rw->w);
    *out = rw;
    return 0;
}

zkc_lock *zkc_rwlock_read(zkc_rwlock *rw)
{
    return rw ? rw->r : NULL;
}

zkc_lock *zkc_rwlock_write(zkc_rwlock *rw)
{
    return rw ? rw->w : NULL;
}

void zkc_rwlock_destroy(zkc_rwlock *rw)
{
    if (!rw)
        return;
    zkc_lock_destroy(rw->r);
    zkc_lock_destroy(rw->w);
    free(rw);
}

/* ---------------------------------------------------------------- introspection */

typedef struct list_op {
    zkc__op op;
    int leases; /* the semaphore's lease count stored in the lock node; 0 none */
    char *path;
    char **names;
    int n;
    int pending;
    zkc_queue_entry *entries;
    int count;
} list_op;

static void list_invoke(zkc__op *op)
{
    ZKC__UNUSED(op);
}

static void list_release(zkc__op *op)
{
    list_op *lo = ZKC__CONTAINER_OF(op, list_op, op);
    for (int i = 0; i < lo->n; i++)
        free(lo->names[i]);
    free(lo->names);
    free(lo->path);
    if (lo->entries)
        zkc_queue_free(lo->entries, lo->count);
    free(lo);
}

static void list_stat_done(zkc__req *r)
{
    zkc_queue_entry *e = r->ctx;
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
            zkc_queue_entry *q = &lo->entries[i];
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
    /* The node's data says how many a semaphore admits. */
    zkc__get(op->c, lo->path, NULL, list_data_done, lo);
}

int zkc_lock_queue(zkc_client *c, const char *path, zkc_queue_entry **entries, int *count)
{
    if (!c || !entries || !count)
        return zkc__err(ZKC_EINVAL, "zkc_lock_queue: NULL argument");
    *entries = NULL;
    *count = 0;
    int rc = zkc__path_check(path, "lock path");
    if (rc)
        return rc;
    list_op *lo = calloc(1, sizeof *lo);
    if (!lo || !(lo->path = strdup(path))) {
        free(lo);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    lo->op.c = c;
    lo->op.invoke = list_invoke;
    lo->op.release = list_release;
    rc = zkc__op_run(&lo->op, list_start, 1);
    if (rc == 0) {
        *entries = lo->entries;
        *count = lo->count;
        lo->entries = NULL;
    }
    lo->op.release(&lo->op);
    return rc;
}

void zkc_queue_free(zkc_queue_entry *entries, int count)
{
    if (!entries)
        return;
    for (int i = 0; i < count; i++)
        free(entries[i].name);
    free(entries);
}
