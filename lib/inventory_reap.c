/* zkc_inventory_reap: the servers' "now" from a heartbeat write, then every
 * request record bucket by bucket: expired holds are settled as EXPIRED
 * (inventory_settle.c), finished and abandoned records past the client's
 * retention are deleted. The protocol (HOLD AND REAP) is described at the top
 * of lib/inventory.c. */
#include "clock.h"
#include "inventory.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reap ---- */

typedef struct ritem {
    reap *rp;
    char *path;
    zkc__res_rec rec;
    int32_t ver;
} ritem;

struct reap {
    sop *s;
    zkc_inventory *inv;
    zkc_client *c;
    int64_t now, retention_ms;
    char **buckets;
    int nb, bi;
    char **ids;
    int nids, ii;
    char *bucket;
    int inflight;
    int err;
    char msg[256];
};

static void reap_next_bucket(reap *rp);
static void reap_pump(reap *rp);

static void reap_err(reap *rp, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
static void reap_err(reap *rp, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    zkc__inv_first_error(&rp->err, rp->msg, sizeof rp->msg, status, fmt, ap);
    va_end(ap);
}

static void free_names(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void reap_end(reap *rp)
{
    sop *s = rp->s;
    free_names(rp->buckets, rp->nb);
    free_names(rp->ids, rp->nids);
    free(rp->bucket);
    int err = rp->err;
    char msg[256];
    snprintf(msg, sizeof msg, "%s", rp->msg);
    free(rp);
    s->rp = NULL;
    if (err)
        zkc__inv_sop_end(s, err, "%s", msg);
    else
        zkc__inv_sop_end(s, 0, NULL);
}

static void item_end(ritem *it)
{
    reap *rp = it->rp;
    free(it->path);
    free(it);
    rp->inflight--;
    reap_pump(rp);
}

static void item_settled(settle *st, int status, const char *msg)
{
    ritem *it = st->ud;
    reap *rp = it->rp;
    if (status)
        reap_err(rp, status, "%s", msg);
    else if (st->acted)
        rp->s->returned += st->units;
    zkc__inv_settle_free(st);
    item_end(it);
}

static void item_delete_done(zkc__req *r)
{
    ritem *it = r->ctx;
    /* BADVERSION / NONODE: it changed or went meanwhile; leave it to the next reap. */
    if (r->rc != ZR_OK && r->rc != ZR_BADVERSION && r->rc != ZR_NONODE)
        reap_err(it->rp, zkc__inv_req_error(r->rc), "reap: deleting %s: %s", it->path, zkc__zrc_name(r->rc));
    item_end(it);
}

static void item_queue_done(zkc__req *r)
{
    ritem *it = r->ctx;
    if (r->rc != ZR_OK && r->rc != ZR_NONODE) {
        reap_err(it->rp, zkc__inv_req_error(r->rc), "reap: listing a queue for %s: %s", it->path, zkc__zrc_name(r->rc));
        item_end(it);
        return;
    }
    if (r->rc == ZR_OK && zkc__resname_find(r->children, r->nchildren, it->rec.nonce) >= 0) {
        item_end(it); /* still queued: alive */
        return;
    }
    /* Abandoned long ago: deleting at the version examined cannot race a
     * re-enqueue, which rewrites the record. */
    zkc__delete(r->c, it->path, it->ver, item_delete_done, it);
}

static void item_get_done(zkc__req *r)
{
    ritem *it = r->ctx;
    reap *rp = it->rp;
    const char *why = NULL;
    if (r->rc == ZR_NONODE) {
        item_end(it);
        return;
    }
    if (r->rc != ZR_OK) {
        reap_err(rp, zkc__inv_req_error(r->rc), "reap: reading %s: %s", it->path, zkc__zrc_name(r->rc));
        item_end(it);
        return;
    }
    if (zkc__resrec_decode(r->value, r->valuelen, &it->rec, &why) != 0) {
        /* Detected, never "fixed": reported, the rest is reaped. */
        reap_err(rp, ZKC_EBADDATA, "reap: request record %s: %s; left as it is", it->path, why);
        item_end(it);
        return;
    }
    it->ver = r->stat.version;
    int64_t age = rp->now - r->stat.mtime;
    switch (it->rec.state) {
    case ZKC_INVENTORY_RESERVED:
        if (age >= it->rec.hold_ms) {
            settle *st = zkc__inv_settle_new(rp->inv, it->path, ZKC_INVENTORY_EXPIRED, 0, item_settled, it);
            st->now = rp->now;
            zkc__inv_settle_read(st);
            return;
        }
        break;
    case ZKC_INVENTORY_PENDING:
        if (age >= rp->retention_ms) {
            char *qdir = zkc__inv_queue_dir(rp->inv, it->rec.line[0].sku);
            zkc__children(r->c, qdir, NULL, item_queue_done, it);
            free(qdir);
            return;
        }
        break;
    default: /* final */
        if (age >= rp->retention_ms) {
            zkc__delete(r->c, it->path, it->ver, item_delete_done, it);
            return;
        }
        break;
    }
    item_end(it);
}

static void reap_pump(reap *rp)
{
    while (rp->inflight < RES_REAP_INFLIGHT && rp->ii < rp->nids) {
        ritem *it = calloc(1, sizeof *it);
        if (!it)
            abort();
        it->rp = rp;
        it->path = zkc__path_join(rp->bucket, rp->ids[rp->ii++]);
        if (!it->path)
            abort();
        rp->inflight++;
        zkc__get(rp->c, it->path, NULL, item_get_done, it);
    }
    if (rp->inflight == 0 && rp->ii >= rp->nids)
        reap_next_bucket(rp);
}

static void reap_ids_done(zkc__req *r)
{
    reap *rp = r->ctx;
    if (r->rc != ZR_OK && r->rc != ZR_NONODE)
        reap_err(rp, zkc__inv_req_error(r->rc), "reap: listing %s: %s", r->path, zkc__zrc_name(r->rc));
    if (r->rc == ZR_OK) {
        rp->ids = r->children;
        rp->nids = r->nchildren;
        r->children = NULL;
        r->nchildren = 0;
    }
    reap_pump(rp);
}

static void reap_next_bucket(reap *rp)
{
    free_names(rp->ids, rp->nids);
    rp->ids = NULL;
    rp->nids = rp->ii = 0;
    free(rp->bucket);
    rp->bucket = NULL;
    /* Stop early on errors that will not go away by themselves. */
    if (rp->bi >= rp->nb || rp->c->closing || (rp->err && rp->err != ZKC_EBADDATA && rp->err != ZKC_ECONTENDED)) {
        reap_end(rp);
        return;
    }
    rp->bucket = zkc__path_join(rp->inv->req_dir, rp->buckets[rp->bi++]);
    if (!rp->bucket)
        abort();
    zkc__children(rp->c, rp->bucket, NULL, reap_ids_done, rp);
}

static void reap_buckets_done(zkc__req *r)
{
    reap *rp = r->ctx;
    if (r->rc == ZR_OK) {
        rp->buckets = r->children;
        rp->nb = r->nchildren;
        r->children = NULL;
        r->nchildren = 0;
    } else if (r->rc != ZR_NONODE) {
        reap_err(rp, zkc__inv_req_error(r->rc), "reap: listing %s: %s", rp->inv->req_dir, zkc__zrc_name(r->rc));
    }
    reap_next_bucket(rp);
}

static void reap_clock_done(zkc__req *r)
{
    reap *rp = r->ctx;
    if (r->rc != ZR_OK) {
        reap_err(rp, r->rc == ZR_NONODE ? ZKC_ENONODE : zkc__inv_req_error(r->rc),
                 "reap: writing %s to read the servers' clock: %s", rp->inv->root, zkc__zrc_name(r->rc));
        reap_end(rp);
        return;
    }
    /* The leader stamped this write: a time the servers' clock has reached
     * (clock.c, which takes it as a sample too). */
    rp->now = zkc__clock_sample(r->c, (int64_t)r->tag, &r->stat);
    zkc__children(r->c, rp->inv->req_dir, NULL, reap_buckets_done, rp);
}

void zkc__inv_reap_start(zkc__op *op)
{
    sop *s = ZKC__CONTAINER_OF(op, sop, op);
    if (s->inv->destroyed) {
        zkc__inv_sop_end(s, ZKC_ECLOSED, "inventory %s is being destroyed", s->inv->root);
        return;
    }
    reap *rp = calloc(1, sizeof *rp);
    if (!rp)
        abort();
    rp->s = s;
    rp->inv = s->inv;
    rp->c = op->c;
    rp->retention_ms = (int64_t)op->c->opt.marker_retention_s * 1000;
    s->rp = rp;
    zkc__set(op->c, s->inv->root, "zkci1", 5, -1, reap_clock_done, rp)->tag = (uint64_t)zkc__now_ms();
}

