/* Versioned SKU-record updates outside the grant walk: settling a reservation
 * (confirm RESERVED->SOLD, return ->RETURNED, reap's ->EXPIRED: the record
 * and every SKU record of its lines in one multi) and restocking a SKU
 * (creating it on first use, decided exactly by a marker in its multi). The
 * protocol (CONFIRM / RETURN, RESTOCK) is described at the top of
 * lib/inventory.c. */
#include "inventory.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void settle_end(settle *s, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
static void settle_end(settle *s, int status, const char *fmt, ...)
{
    char msg[256] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    s->done(s, status, msg);
}

static void settle_backoff_fired(zkc__timer *t)
{
    settle *s = ZKC__CONTAINER_OF(t, settle, backoff);
    zkc__inv_settle_read(s);
}

static void settle_multi_done(zkc__req *r)
{
    settle *s = r->ctx;
    if (r->rc == ZR_OK) {
        s->acted = 1;
        s->state = s->to;
        for (int i = 0; i < s->rec.n; i++)
            s->units += s->rec.line[i].qty;
        settle_end(s, 0, NULL);
        return;
    }
    if (zkc__zrc_indeterminate(r->rc)) {
        s->unknown = 1; /* the record will tell */
        s->sync = 1;
        zkc__inv_settle_read(s);
        return;
    }
    int gst;
    if (s->guard && zkc__guard_refused(r, 1, &gst, s->msg, sizeof s->msg)) {
        /* Nothing of this attempt applied, and none can any more (a late one
         * carries the same check). One whose reply was lost may have landed
         * before the hold ended: the record tells, then it is final. */
        if (!s->unknown || gst != ZKC_EFENCED) {
            settle_end(s, gst, "%s", s->msg);
            return;
        }
        s->fenced = 1;
        s->sync = 1;
        zkc__inv_settle_read(s);
        return;
    }
    int k = zkc__inv_multi_failed(r);
    if (k >= 0 && (r->ops[k].rc == ZR_BADVERSION || r->ops[k].rc == ZR_NONODE)) {
        ZKC__STAT_INC(s->c, conflicts);
        if (++s->attempts >= RES_ATTEMPTS) {
            settle_end(s, ZKC_ECONTENDED, "request record %s: still changing after %d attempts", s->recpath,
                       RES_ATTEMPTS);
            return;
        }
        if (s->c->closing) {
            settle_end(s, ZKC_ECANCELED, "the client is closing");
            return;
        }
        zkc__timer_arm(s->c, &s->backoff, zkc__now_ms() + zkc__inv_backoff_ms(s->attempts));
        return;
    }
    int rc = k >= 0 ? r->ops[k].rc : r->rc;
    settle_end(s, zkc__inv_req_error(rc), "request record %s: %s failed: %s", s->recpath,
               k >= 0 ? r->ops[k].path : "multi", zkc__zrc_name(rc));
}

static void settle_sku_done(zkc__req *r)
{
    settle *s = r->ctx;
    int i = (int)r->tag;
    s->pending--;
    if (!s->err) /* the first failure is the one told */
        s->err = zkc__inv_sku_reply(s->inv, r, s->rec.line[i].sku, &s->sku[i], &s->sku_ver[i], s->msg, sizeof s->msg);
    if (s->pending)
        return;
    if (s->err) {
        settle_end(s, s->err, "%s", s->msg);
        return;
    }
    zkc__mop ops[1 + ZKC__RES_MAX_LINES + 1];
    char bufs[ZKC__RES_MAX_LINES][128];
    memset(ops, 0, sizeof ops);
    zkc__res_rec *rec = malloc(sizeof *rec);
    if (!rec)
        abort();
    *rec = s->rec;
    rec->state = s->to;
    int len;
    char *data = zkc__inv_encode_rec(rec, &len);
    free(rec);
    ops[0].type = ZKC_REQ_SET;
    ops[0].path = s->recpath;
    ops[0].data = data;
    ops[0].len = len;
    ops[0].version = s->rec_ver;
    char *paths[ZKC__RES_MAX_LINES];
    int n = s->rec.n;
    for (int j = 0; j < n; j++) {
        zkc__sku_rec v = s->sku[j];
        int64_t q = s->rec.line[j].qty;
        paths[j] = zkc__inv_sku_path(s->inv, s->rec.line[j].sku);
        if (v.reserved < q) {
            for (int x = 0; x <= j; x++)
                free(paths[x]);
            free(data);
            settle_end(s, ZKC_EBADDATA,
                       "SKU %s holds %" PRId64 " reserved unit(s), fewer than the %" PRId64
                       " of reservation %s: units were written around the queue; nothing was written",
                       s->rec.line[j].sku, v.reserved, q, s->recpath);
            return;
        }
        v.reserved -= q;
        if (s->to == ZKC_INVENTORY_SOLD)
            v.sold += q;
        else
            v.available += q;
        int bl = zkc__sku_encode(&v, bufs[j], sizeof bufs[j]);
        if (bl < 0)
            abort(); /* the sum is unchanged and was valid */
        ops[1 + j].type = ZKC_REQ_SET;
        ops[1 + j].path = paths[j];
        ops[1 + j].data = bufs[j];
        ops[1 + j].len = bl;
        ops[1 + j].version = s->sku_ver[j];
    }
    int ng = s->guard ? zkc__guard_ops(&ops[1 + n], s->guard, 1) : 0; /* last: see settle_multi_done */
    zkc__multi(s->c, ops, 1 + n + ng, settle_multi_done, s);
    for (int j = 0; j < n; j++)
        free(paths[j]);
    free(data);
}

static void settle_rec_done(zkc__req *r)
{
    settle *s = r->ctx;
    const char *why = NULL;
    if (r->rc == ZR_NONODE) {
        settle_end(s, ZKC_ENONODE, "no request with this id (%s), or it is older than the retention period",
                   s->recpath);
        return;
    }
    if (r->rc != ZR_OK) {
        settle_end(s, zkc__inv_req_error(r->rc), "reading request record %s: %s", s->recpath, zkc__zrc_name(r->rc));
        return;
    }
    if (zkc__resrec_decode(r->value, r->valuelen, &s->rec, &why) != 0) {
        settle_end(s, ZKC_EBADDATA, "request record %s: %s; nothing was written", s->recpath, why);
        return;
    }
    s->rec_ver = r->stat.version;
    s->state = s->rec.state;
    if (s->rec.state != ZKC_INVENTORY_RESERVED) {
        if (s->unknown && s->rec.state == s->to) {
            s->acted = 1; /* our write landed before the connection dropped */
            for (int i = 0; i < s->rec.n; i++)
                s->units += s->rec.line[i].qty;
        }
        settle_end(s, 0, NULL);
        return;
    }
    if (s->fenced) {
        settle_end(s, ZKC_EFENCED, "%s", s->msg);
        return;
    }
    if (s->to == ZKC_INVENTORY_EXPIRED && r->stat.mtime + s->rec.hold_ms > s->now) {
        settle_end(s, 0, NULL); /* not due */
        return;
    }
    s->err = 0;
    s->pending = s->rec.n;
    for (int i = 0; i < s->rec.n; i++) {
        char *p = zkc__inv_sku_path(s->inv, s->rec.line[i].sku);
        zkc__get(s->c, p, NULL, settle_sku_done, s)->tag = (uint64_t)i;
        free(p);
    }
}

static void settle_sync_done(zkc__req *r)
{
    settle *s = r->ctx;
    zkc__get(s->c, s->recpath, NULL, settle_rec_done, s);
}

void zkc__inv_settle_read(settle *s)
{
    if (s->sync) {
        s->sync = 0;
        zkc__sync(s->c, s->recpath, settle_sync_done, s);
    } else {
        zkc__get(s->c, s->recpath, NULL, settle_rec_done, s);
    }
}

settle *zkc__inv_settle_new(zkc_inventory *inv, const char *recpath, int to, int sync,
                            void (*done)(settle *, int, const char *), void *ud)
{
    settle *s = calloc(1, sizeof *s);
    if (!s || !(s->recpath = strdup(recpath)))
        abort();
    s->inv = inv;
    s->c = inv->c;
    s->to = to;
    s->sync = sync;
    s->done = done;
    s->ud = ud;
    zkc__timer_init(&s->backoff, settle_backoff_fired);
    return s;
}

void zkc__inv_settle_free(settle *s)
{
    zkc__timer_disarm(s->c, &s->backoff);
    free(s->recpath);
    free(s);
}

/* ---- restock ---- */

static void restock_read(sop *s);

void zkc__inv_restock_backoff_fired(zkc__timer *t)
{
    sop *s = ZKC__CONTAINER_OF(t, sop, backoff);
    restock_read(s);
}

static void restock_retry(sop *s)
{
    ZKC__STAT_INC(s->op.c, conflicts);
    if (++s->attempts >= RES_ATTEMPTS) {
        zkc__inv_sop_end(s, ZKC_ECONTENDED, "SKU %s: still changing after %d attempts", s->sku, RES_ATTEMPTS);
        return;
    }
    if (s->op.c->closing) {
        zkc__inv_sop_end(s, ZKC_ECANCELED, "the client is closing");
        return;
    }
    zkc__timer_arm(s->op.c, &s->backoff, zkc__now_ms() + zkc__inv_backoff_ms(s->attempts));
}

static void restock_apply(sop *s, const zkc__req *r);

/* Applied: the marker has served its purpose (every attempt was conditional
 * on the SKU record's version or absence, which the applied one changed, so
 * no other attempt can land after it). */
static void restock_applied(sop *s)
{
    if (!s->op.c->closing)
        zkc__janitor_delete(s->op.c, s->marker);
    zkc__inv_sop_end(s, 0, NULL);
}

static void restock_verify_done(zkc__req *r)
{
    sop *s = r->ctx;
    /* The marker exists exactly when one of our attempts was applied. */
    if (r->rc == ZR_OK)
        restock_applied(s);
    else if (r->rc == ZR_NONODE && s->fenced)
        zkc__inv_sop_end(s, ZKC_EFENCED,
                         "restock of SKU %s refused, nothing written: the guard's node %s is gone (the lock hold "
                         "ended); take the lock again",
                         s->sku, s->guard->path);
    else if (r->rc == ZR_NONODE && s->unknown > 1)
        restock_retry(s); /* none was, and the record moved: a conflict */
    else if (r->rc == ZR_NONODE)
        restock_read(s); /* none was (yet): try again; a late one cannot apply twice */
    else
        zkc__inv_sop_end(s, ZKC_EUNKNOWN,
                         "restock of SKU %s: outcome unknown after a connection loss (%s); check zkc_inventory_stock "
                         "before restocking again",
                         s->sku, zkc__zrc_name(r->rc));
}

static void restock_verify_sync_done(zkc__req *r)
{
    sop *s = r->ctx;
    zkc__exists(r->c, s->marker, NULL, restock_verify_done, s);
}

/* An attempt lost its reply, or failed after one did (the conflict may be
 * that earlier attempt landing late): the marker decides. */
static void restock_verify(sop *s, int lost)
{
    s->unknown = lost ? 1 : 2;
    zkc__sync(s->op.c, s->inv->sku_dir, restock_verify_sync_done, s);
}

static void restock_create(sop *s);

static void restock_parents_done(void *arg, int rc)
{
    sop *s = arg;
    if (rc != ZR_OK)
        zkc__inv_sop_end(s, zkc__inv_req_error(rc), "restock of SKU %s: creating %s: %s", s->sku, s->inv->sku_dir,
                         zkc__zrc_name(rc));
    else
        restock_create(s);
}

/* Reply of a restock multi: {set SKU record, marker}, or, creating the SKU
 * (s->ver < 0), {create SKU record, create its queue, marker}. */
static void restock_multi_done(zkc__req *r)
{
    sop *s = r->ctx;
    int gst;
    char gmsg[256];
    if (s->guard && zkc__guard_refused(r, 1, &gst, gmsg, sizeof gmsg)) {
        /* Nothing of this attempt applied, and none can any more (a late one
         * carries the same check); one whose reply was lost may have landed
         * before the hold ended: the marker tells, then it is final. */
        if (!s->unknown || gst != ZKC_EFENCED) {
            zkc__inv_sop_end(s, gst, "restock of SKU %s: %s", s->sku, gmsg);
            return;
        }
        s->fenced = 1;
        restock_verify(s, 0);
        return;
    }
    int k = zkc__inv_multi_failed(r);
    int rc = k >= 0 ? r->ops[k].rc : r->rc;
    int creating = s->ver < 0, lost = zkc__zrc_indeterminate(r->rc);
    int no_parent = creating && k == 0 && rc == ZR_NONODE; /* nothing of ours can be there */
    if (r->rc == ZR_OK)
        restock_applied(s);
    else if (lost || (s->unknown && !no_parent))
        restock_verify(s, lost);
    else if (!creating && k == 0 && rc == ZR_BADVERSION)
        restock_retry(s);
    else if (creating && k == 0 && rc == ZR_NODEEXISTS)
        restock_read(s); /* created meanwhile: add to it */
    else if (no_parent && s->loops++ < 3)
        zkc__mkpath(r->c, s->inv->sku_dir, restock_parents_done, s);
    else
        zkc__inv_sop_end(s, zkc__inv_req_error(rc), "restock of SKU %s: %s %s: %s", s->sku,
                         creating ? "creating" : "writing", k >= 0 ? r->ops[k].path : s->skupath, zkc__zrc_name(rc));
}

/* One attempt: the SKU record v, written at version ver (or created with its
 * queue when ver < 0), and the marker, in one multi. */
static void restock_send(sop *s, const zkc__sku_rec *v, int32_t ver)
{
    s->datalen = zkc__sku_encode(v, s->data, sizeof s->data);
    s->ver = ver;
    zkc__mop ops[4];
    int n = 0;
    memset(ops, 0, sizeof ops);
    ops[n].type = ver < 0 ? ZKC_REQ_CREATE : ZKC_REQ_SET;
    ops[n].path = s->skupath;
    ops[n].data = s->data;
    ops[n].len = s->datalen;
    ops[n++].version = ver;
    if (ver < 0) {
        ops[n].type = ZKC_REQ_CREATE;
        ops[n++].path = s->qdir;
    }
    ops[n].type = ZKC_REQ_CREATE;
    ops[n++].path = s->marker;
    if (s->guard)
        n += zkc__guard_ops(&ops[n], s->guard, 1); /* last: see restock_multi_done */
    zkc__multi(s->op.c, ops, n, restock_multi_done, s);
}

static void restock_create(sop *s)
{
    zkc__sku_rec v = {s->qty, 0, 0, s->qty};
    restock_send(s, &v, -1);
}

static void restock_apply(sop *s, const zkc__req *r)
{
    zkc__sku_rec v;
    char msg[256];
    int st = zkc__inv_sku_reply(s->inv, r, s->sku, &v, NULL, msg, sizeof msg);
    if (st) {
        zkc__inv_sop_end(s, st, "%s", msg);
        return;
    }
    if (s->qty == 0) {
        zkc__inv_sop_end(s, 0, NULL);
        return;
    }
    if (!zkc__version_usable(r->stat.version)) {
        zkc__inv_sop_end(s, ZKC_EVERSIONWRAP,
                         "SKU record %s: its version wrapped to -1; no conditional write is possible", s->skupath);
        return;
    }
    if (__builtin_add_overflow(v.available, s->qty, &v.available) ||
        __builtin_add_overflow(v.total, s->qty, &v.total)) {
        zkc__inv_sop_end(s, ZKC_EOVERFLOW, "restock of SKU %s: the unit counts would overflow", s->sku);
        return;
    }
    restock_send(s, &v, r->stat.version);
}

static void restock_get_done(zkc__req *r)
{
    sop *s = r->ctx;
    if (r->rc == ZR_NONODE)
        restock_create(s);
    else if (r->rc != ZR_OK)
        zkc__inv_sop_end(s, zkc__inv_req_error(r->rc), "restock of SKU %s: reading %s: %s", s->sku, s->skupath,
                         zkc__zrc_name(r->rc));
    else
        restock_apply(s, r);
}

static void restock_read(sop *s)
{
    zkc__get(s->op.c, s->skupath, NULL, restock_get_done, s);
}

void zkc__inv_restock_start(zkc__op *op)
{
    sop *s = ZKC__CONTAINER_OF(op, sop, op);
    if (s->inv->destroyed) {
        zkc__inv_sop_end(s, ZKC_ECLOSED, "inventory %s is being destroyed", s->inv->root);
        return;
    }
    char nonce[ZKC__RES_NONCE_LEN + 1];
    zkc__inv_new_nonce(nonce);
    s->marker = zkc__inv_mprintf("%s/restock-%s", s->skupath, nonce);
    restock_read(s);
}

