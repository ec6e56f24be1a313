/* The key store: one retention sweep for every directory of idempotency
 * records (counter keys, transaction markers, inventory request records).
 *
 * The records are written once per operation and read back only to decide
 * an unanswered write, so they pile up: some sweep must delete those no
 * decision can need any more. Before this file the sweep was written twice
 * (admin cleanup's key buckets, the inventory's reap); what the two shared is
 * here, what they judge differently stays with them:
 *   - the walk: list the directory, then (bucketed, zkc__path_bucketed) each
 *     bucket in turn, and read its records with at most ops->inflight reads
 *     (and the store's work on them) outstanding; admin asks for one, the
 *     reap for RES_REAP_INFLIGHT;
 *   - the decision is the store's (ops->decide, given the read's reply):
 *     admin judges age and children on the stat, the reap decodes the record
 *     and may settle an expired hold or look for an abandoned request's queue
 *     entry first; it ends the item with zkc__ks_delete or zkc__ks_skip;
 *   - the delete is always conditional on the version examined, so a record
 *     rewritten meanwhile (a retry, a re-enqueue) is never lost;
 *   - stopping is the store's too (ops->go_on, ops->list_failed): admin
 *     fails on any listing error and stops when the client closes, the reap
 *     reports and goes on, stopping between buckets on lasting errors;
 *   - ops->done runs once with the counts, after everything in flight.
 * The servers' "now" the stores judge age against is read before the walk,
 * from a write's mtime (clock.c). Admin's walk of the lock tree is not a key
 * store and keeps its own frames (admin.c). */
#include "keystore.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct zkc__ks_walk {
    zkc_client *c;
    const zkc__ks_ops *ops;
    void *ud;
    int dry_run;
    int bucketed;
    char *dir;
    char **buckets; /* bucketed: the buckets of dir */
    int nb, bi;
    char *bucket; /* bucketed: the one being swept */
    char **keys;  /* the records of the bucket (or of dir) */
    int nk, ki;
    int inflight;
    int halt; /* start nothing more */
    zkc__ks_counts n;
};

static void pump(zkc__ks_walk *w);

static void free_names(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void take_children(zkc__req *r, char ***v, int *n)
{
    *v = r->children;
    *n = r->nchildren;
    r->children = NULL;
    r->nchildren = 0;
}

static void finish(zkc__ks_walk *w)
{
    zkc__ks_counts n = w->n;
    void (*done)(void *, const zkc__ks_counts *) = w->ops->done;
    void *ud = w->ud;
    free_names(w->buckets, w->nb);
    free_names(w->keys, w->nk);
    free(w->bucket);
    free(w->dir);
    free(w);
    done(ud, &n);
}

static void halt(zkc__ks_walk *w, int enomem)
{
    w->halt = 1;
    if (enomem)
        w->n.enomem = 1;
    else
        w->n.stopped = 1;
}

static void item_end(zkc__ks_item *it)
{
    zkc__ks_walk *w = it->w;
    free(it->path);
    free(it);
    w->inflight--;
    pump(w);
}

void zkc__ks_skip(zkc__ks_item *it)
{
    item_end(it);
}

static void delete_done(zkc__req *r)
{
    zkc__ks_item *it = r->ctx;
    if (it->w->ops->deleted)
        it->w->ops->deleted(it, r->rc);
    if (r->rc == ZR_OK)
        it->w->n.deleted++;
    item_end(it);
}

void zkc__ks_delete(zkc__ks_item *it, int version)
{
    if (it->w->dry_run) {
        it->w->n.deleted++;
        item_end(it);
        return;
    }
    zkc__delete(it->w->c, it->path, version, delete_done, it);
}

static void item_read(zkc__req *r)
{
    zkc__ks_item *it = r->ctx;
    it->w->ops->decide(it, r);
}

static void keys_listed(zkc__req *r)
{
    zkc__ks_walk *w = r->ctx;
    if (r->rc == ZR_OK)
        take_children(r, &w->keys, &w->nk);
    else if (r->rc != ZR_NONODE && w->ops->list_failed(w->ud, r->path, r->rc))
        halt(w, 0);
    pump(w);
}

static void next_bucket(zkc__ks_walk *w)
{
    free_names(w->keys, w->nk);
    w->keys = NULL;
    w->nk = w->ki = 0;
    free(w->bucket);
    w->bucket = NULL;
    if (w->bi >= w->nb) {
        finish(w);
        return;
    }
    if (!w->ops->go_on(w->ud, ZKC__KS_AT_BUCKET)) {
        halt(w, 0);
        finish(w);
        return;
    }
    if (!(w->bucket = zkc__path_join(w->dir, w->buckets[w->bi++]))) {
        halt(w, 1);
        finish(w);
        return;
    }
    zkc__children(w->c, w->bucket, NULL, keys_listed, w);
}

/* Reads up to ops->inflight records; when none is left in flight, the next
 * bucket, or the end. */
static void pump(zkc__ks_walk *w)
{
    const char *kdir = w->bucketed ? w->bucket : w->dir;
    while (!w->halt && w->inflight < w->ops->inflight && w->ki < w->nk) {
        if (!w->ops->go_on(w->ud, ZKC__KS_AT_ITEM)) {
            halt(w, 0);
            break;
        }
        zkc__ks_item *it = calloc(1, sizeof *it);
        if (!it || !(it->path = zkc__path_join(kdir, w->keys[w->ki]))) {
            free(it);
            halt(w, 1);
            break;
        }
        w->ki++;
        it->w = w;
        it->ud = w->ud;
        w->inflight++;
        w->n.examined++;
        if (w->ops->with_data)
            zkc__get(w->c, it->path, NULL, item_read, it);
        else
            zkc__exists(w->c, it->path, NULL, item_read, it);
    }
    if (w->inflight > 0)
        return;
    if (w->halt || !w->bucketed)
        finish(w);
    else
        next_bucket(w);
}

static void dir_listed(zkc__req *r)
{
    zkc__ks_walk *w = r->ctx;
    char **v = NULL;
    int n = 0;
    if (r->rc == ZR_OK)
        take_children(r, &v, &n);
    else if (r->rc != ZR_NONODE && w->ops->list_failed(w->ud, w->dir, r->rc)) {
        halt(w, 0);
        finish(w);
        return;
    }
    if (w->bucketed) {
        w->buckets = v;
        w->nb = n;
        next_bucket(w);
    } else {
        w->keys = v;
        w->nk = n;
        pump(w);
    }
}

int zkc__ks_walk_start(zkc_client *c, const char *dir, int bucketed, const zkc__ks_ops *ops, int dry_run, void *ud)
{
    zkc__ks_walk *w = calloc(1, sizeof *w);
    if (!w || !(w->dir = strdup(dir))) {
        free(w);
        return ZKC_ENOMEM;
    }
    w->c = c;
    w->ops = ops;
    w->ud = ud;
    w->dry_run = dry_run;
    w->bucketed = bucketed;
    if (!ops->go_on(ud, ZKC__KS_AT_TOP)) {
        halt(w, 0);
        finish(w);
        return 0;
    }
    zkc__children(c, w->dir, NULL, dir_listed, w);
    return 0;
}
