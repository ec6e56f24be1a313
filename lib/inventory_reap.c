/* zkc_inventory_reap: the servers' "now" from a heartbeat write, then every
 * request record bucket by bucket on the key store (keystore.c: the bucket
 * walk, RES_REAP_INFLIGHT records in flight, the conditional delete). What is
 * the reap's own is the judgement of each record: expired holds are settled
 * as EXPIRED (inventory_settle.c), finished records and abandoned requests
 * (no longer in their queue) past the client's retention are deleted. Errors
 * are reported (the first one) and the rest is reaped; between buckets the
 * reap stops on an error that will not go away by itself. The protocol (HOLD
 * AND REAP) is described at the top of lib/inventory.c. */
#include "clock.h"
#include "inventory.h"
#include "keystore.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reap ---- */

/* A record the reap works on after reading it (a settle, a queue listing). */
typedef struct ritem {
    reap *rp;
    zkc__ks_item *ki;
    zkc__res_rec rec;
    int32_t ver;
} ritem;

struct reap {
    sop *s;
    zkc_inventory *inv;
    zkc_client *c;
    int64_t now, retention_ms;
    int err;
    char msg[256];
};

static void reap_err(reap *rp, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
static void reap_err(reap *rp, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    zkc__inv_first_error(&rp->err, rp->msg, sizeof rp->msg, status, fmt, ap);
    va_end(ap);
}

static void reap_end(reap *rp)
{
    sop *s = rp->s;
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

/* The record stays (alive, failed, or dealt with). */
static void item_end(ritem *it)
{
    zkc__ks_item *ki = it->ki;
    free(it);
    zkc__ks_skip(ki);
}

/* The record goes, at the version examined. */
static void item_delete(ritem *it)
{
    zkc__ks_item *ki = it->ki;
    int32_t ver = it->ver;
    free(it);
    zkc__ks_delete(ki, ver);
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

static void reap_deleted(zkc__ks_item *ki, int zrc)
{
    /* BADVERSION / NONODE: it changed or went meanwhile; leave it to the next reap. */
    if (zrc != ZR_OK && zrc != ZR_BADVERSION && zrc != ZR_NONODE)
        reap_err(ki->ud, zkc__inv_req_error(zrc), "reap: deleting %s: %s", ki->path, zkc__zrc_name(zrc));
}

static void item_queue_done(zkc__req *r)
{
    ritem *it = r->ctx;
    if (r->rc != ZR_OK && r->rc != ZR_NONODE) {
        reap_err(it->rp, zkc__inv_req_error(r->rc), "reap: listing a queue for %s: %s", it->ki->path,
                 zkc__zrc_name(r->rc));
        item_end(it);
        return;
    }
    if (r->rc == ZR_OK && zkc__resname_find(r->children, r->nchildren, it->rec.nonce) >= 0) {
        item_end(it); /* still queued: alive */
        return;
    }
    /* Abandoned long ago: deleting at the version examined cannot race a
     * re-enqueue, which rewrites the record. */
    item_delete(it);
}

static void reap_decide(zkc__ks_item *ki, zkc__req *r)
{
    reap *rp = ki->ud;
    const char *why = NULL;
    ritem *it = calloc(1, sizeof *it);
    if (!it)
        abort();
    it->rp = rp;
    it->ki = ki;
    if (r->rc == ZR_NONODE) {
        item_end(it);
        return;
    }
    if (r->rc != ZR_OK) {
        reap_err(rp, zkc__inv_req_error(r->rc), "reap: reading %s: %s", ki->path, zkc__zrc_name(r->rc));
        item_end(it);
        return;
    }
    if (zkc__resrec_decode(r->value, r->valuelen, &it->rec, &why) != 0) {
        /* Detected, never "fixed": reported, the rest is reaped. */
        reap_err(rp, ZKC_EBADDATA, "reap: request record %s: %s; left as it is", ki->path, why);
        item_end(it);
        return;
    }
    it->ver = r->stat.version;
    int64_t age = rp->now - r->stat.mtime;
    switch (it->rec.state) {
    case ZKC_INVENTORY_RESERVED:
        if (age >= it->rec.hold_ms) {
            settle *st = zkc__inv_settle_new(rp->inv, ki->path, ZKC_INVENTORY_EXPIRED, 0, item_settled, it);
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
            item_delete(it);
            return;
        }
        break;
    }
    item_end(it);
}

static int reap_list_failed(void *ud, const char *dir, int zrc)
{
    reap_err(ud, zkc__inv_req_error(zrc), "reap: listing %s: %s", dir, zkc__zrc_name(zrc));
    return 0; /* the rest is reaped */
}

static int reap_go_on(void *ud, int where)
{
    reap *rp = ud;
    if (where != ZKC__KS_AT_BUCKET)
        return 1;
    /* Stop early on errors that will not go away by themselves. */
    return !(rp->c->closing || (rp->err && rp->err != ZKC_EBADDATA && rp->err != ZKC_ECONTENDED));
}

static void reap_done(void *ud, const zkc__ks_counts *n)
{
    if (n->enomem)
        abort();
    reap_end(ud);
}

static const zkc__ks_ops reap_store = {
    .with_data = 1,
    .inflight = RES_REAP_INFLIGHT,
    .decide = reap_decide,
    .deleted = reap_deleted,
    .list_failed = reap_list_failed,
    .go_on = reap_go_on,
    .done = reap_done,
};

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
    if (zkc__ks_walk_start(r->c, rp->inv->req_dir, 1, &reap_store, 0, rp))
        abort();
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

