/* Versioned SKU-record updates outside the grant walk: settling a reservation
 * (confirm RESERVED->SOLD, return ->RETURNED, reap's ->EXPIRED: the record
 * and every SKU record of its lines in one multi) and restocking a SKU
 * (creating it on first use, decided exactly by a marker in its multi), and
 * the start of the confirm, return and restock operations (their entry
 * points are in inventory_ops.c). The protocol (CONFIRM / RETURN, RESTOCK) is
 * described at the top of lib/inventory.c. */
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

static settle *settle_of(zkc__txn *t)
{
    return ZKC__CONTAINER_OF(t, settle, t);
}

/* A lost round on one of the records (BadVersion, or NoNode: a SKU record
 * gone): read again after the core's backoff; ZKC_ECONTENDED after
 * RES_ATTEMPTS. 1 when the round is retried. Restock's too. */
static int conflict_retry(zkc__txn *t, int *attempts)
{
    ZKC__STAT_INC(t->c, conflicts);
    if (++*attempts >= RES_ATTEMPTS)
        return 0;
    zkc__txn_backoff(t, *attempts, -1);
    return 1;
}

static void settle_multi_done(zkc__req *r)
{
    settle *s = settle_of(r->ctx);
    int k, rc;
    int verdict = zkc__txn_reply(&s->t, r, &k, &rc);
    if (verdict == ZKC__TXN_TAKEN)
        return;
    if (verdict == ZKC__TXN_APPLIED) {
        s->acted = 1;
        s->state = s->to;
        for (int i = 0; i < s->rec.n; i++)
            s->units += s->rec.line[i].qty;
        settle_end(s, 0, NULL);
        return;
    }
    if (k >= 0 && (rc == ZR_BADVERSION || rc == ZR_NONODE)) {
        if (!conflict_retry(&s->t, &s->attempts))
            settle_end(s, ZKC_ECONTENDED, "request record %s: still changing after %d attempts", s->recpath,
                       RES_ATTEMPTS);
        return;
    }
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
    zkc__mop ops[1 + ZKC__RES_MAX_LINES];
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
    zkc__txn_send(&s->t, ops, 1 + n, settle_multi_done);
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

/* The core's callbacks. No marker: the record's own write (RESERVED -> to,
 * conditional on its version) is the evidence, read back after a loss. */
static void settle_round(zkc__txn *t)
{
    zkc__inv_settle_read(settle_of(t));
}

static void settle_verify(zkc__txn *t)
{
    settle *s = settle_of(t);
    s->unknown = 1; /* the record will tell */
    s->sync = 1;
    zkc__inv_settle_read(s);
}

static void settle_fail(zkc__txn *t, int status, const char *msg)
{
    settle_end(settle_of(t), status, "request record %s: %s", settle_of(t)->recpath, msg);
}

static const zkc__txn_ops settle_ops = {
    .round = settle_round,
    .verify = settle_verify,
    .fail = settle_fail,
    .unknown_hint = "",
};

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
    zkc__txn_init(&s->t, inv->c, &settle_ops);
    return s;
}

void zkc__inv_settle_free(settle *s)
{
    zkc__txn_finish(&s->t);
    free(s->recpath);
    free(s);
}

/* ---- confirm / return ---- */

static void settle_op_done(settle *st, int status, const char *msg)
{
    sop *s = st->ud;
    int state = st->state, to = st->to;
    zkc__inv_settle_free(st);
    if (status) {
        zkc__inv_sop_end(s, status, "%s", msg);
        return;
    }
    s->state = (zkc_inventory_state)state;
    if (state == to)
        zkc__inv_sop_end(s, 0, NULL); /* done now, or before: idempotent */
    else
        zkc__inv_sop_end(s, ZKC_EINVAL, "request %s is %s, not RESERVED: nothing to %s", s->id,
                         zkc__res_state_name(state), to == ZKC_INVENTORY_SOLD ? "confirm" : "return");
}

void zkc__inv_settle_op_start(zkc__op *op)
{
    sop *s = ZKC__CONTAINER_OF(op, sop, op);
    if (s->inv->destroyed) {
        zkc__inv_sop_end(s, ZKC_ECLOSED, "inventory %s is being destroyed", s->inv->root);
        return;
    }
    settle *st = zkc__inv_settle_new(s->inv, s->recpath, s->kind == SOP_CONFIRM ? ZKC_INVENTORY_SOLD : ZKC_INVENTORY_RETURNED, 1,
                                     settle_op_done, s);
    if (s->guard)
        zkc__txn_guard(&st->t, s->guard, 1); /* the sop outlives the settle */
    zkc__inv_settle_read(st);
}

/* ---- restock ----
 * Exactly once by the core's marker (txn.c): every attempt is one multi of the
 * SKU record's write (or its creation with its queue) and the marker's
 * setData, and a lost reply is decided by the marker. */

static sop *restock_of(zkc__txn *t)
{
    return ZKC__CONTAINER_OF(t, sop, t);
}

static void restock_end(sop *s, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
static void restock_end(sop *s, int status, const char *fmt, ...)
{
    zkc__txn_finish(&s->t);
    va_list ap;
    va_start(ap, fmt);
    zkc__op_vfinish(&s->op, status, fmt, ap);
    va_end(ap);
}

static void restock_create(sop *s);

static void restock_parents_done(void *arg, int rc)
{
    sop *s = arg;
    if (rc != ZR_OK)
        restock_end(s, zkc__inv_req_error(rc), "restock of SKU %s: creating %s: %s", s->sku, s->inv->sku_dir,
                    zkc__zrc_name(rc));
    else
        restock_create(s);
}

/* Reply of a restock multi: {set SKU record, marker}, or, creating the SKU
 * (s->ver < 0), {create SKU record, create its queue, marker}. A conflict
 * after a loss may be that earlier attempt landing late: the next attempt's
 * marker write then fails on the marker's version and the core decides. */
static void restock_multi_done(zkc__req *r)
{
    sop *s = restock_of(r->ctx);
    int k, rc;
    int verdict = zkc__txn_reply(&s->t, r, &k, &rc);
    int creating = s->ver < 0;
    if (verdict == ZKC__TXN_TAKEN)
        return;
    if (verdict == ZKC__TXN_APPLIED)
        restock_end(s, 0, NULL);
    else if (!creating && k == 0 && rc == ZR_BADVERSION) {
        if (!conflict_retry(&s->t, &s->attempts))
            restock_end(s, ZKC_ECONTENDED, "SKU %s: still changing after %d attempts", s->sku, RES_ATTEMPTS);
    } else if (creating && k == 0 && rc == ZR_NODEEXISTS)
        s->t.ops->round(&s->t); /* created meanwhile: add to it */
    else if (creating && k == 0 && rc == ZR_NONODE && s->loops++ < 3)
        zkc__mkpath(r->c, s->inv->sku_dir, restock_parents_done, s);
    else
        restock_end(s, zkc__inv_req_error(rc), "restock of SKU %s: %s %s: %s", s->sku,
                    creating ? "creating" : "writing", k >= 0 ? r->ops[k].path : s->skupath, zkc__zrc_name(rc));
}

/* One attempt: the SKU record v, written at version ver (or created with its
 * queue when ver < 0), and the marker recording available before -> after. */
static void restock_send(sop *s, const zkc__sku_rec *v, int32_t ver, int64_t before)
{
    s->datalen = zkc__sku_encode(v, s->data, sizeof s->data);
    s->ver = ver;
    zkc__mop ops[3];
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
    zkc__record rec;
    char recbuf[256];
    memset(&rec, 0, sizeof rec);
    snprintf(rec.id, sizeof rec.id, "%s", s->t.id);
    rec.n = 1;
    rec.before[0] = before;
    rec.after[0] = v->available;
    int rlen = zkc__record_encode(&rec, recbuf, sizeof recbuf);
    if (rlen < 0)
        abort(); /* one entry always fits */
    zkc__txn_marker_op(&s->t, &ops[n++], recbuf, rlen);
    zkc__txn_send(&s->t, ops, n, restock_multi_done);
}

static void restock_create(sop *s)
{
    zkc__sku_rec v = {s->qty, 0, 0, s->qty};
    restock_send(s, &v, -1, 0);
}

static void restock_apply(sop *s, const zkc__req *r)
{
    zkc__sku_rec v;
    char msg[256];
    int st = zkc__inv_sku_reply(s->inv, r, s->sku, &v, NULL, msg, sizeof msg);
    if (st) {
        restock_end(s, st, "%s", msg);
        return;
    }
    if (s->qty == 0) {
        restock_end(s, 0, NULL);
        return;
    }
    if (!zkc__version_usable(r->stat.version)) {
        restock_end(s, ZKC_EVERSIONWRAP, "SKU record %s: its version wrapped to -1; no conditional write is possible",
                    s->skupath);
        return;
    }
    int64_t before = v.available;
    if (__builtin_add_overflow(v.available, s->qty, &v.available) ||
        __builtin_add_overflow(v.total, s->qty, &v.total)) {
        restock_end(s, ZKC_EOVERFLOW, "restock of SKU %s: the unit counts would overflow", s->sku);
        return;
    }
    restock_send(s, &v, r->stat.version, before);
}

static void restock_get_done(zkc__req *r)
{
    sop *s = r->ctx;
    if (r->rc == ZR_NONODE)
        restock_create(s);
    else if (r->rc != ZR_OK)
        restock_end(s, zkc__inv_req_error(r->rc), "restock of SKU %s: reading %s: %s", s->sku, s->skupath,
                    zkc__zrc_name(r->rc));
    else
        restock_apply(s, r);
}

/* The core's callbacks. round: read the SKU record once the marker is ready
 * (first, after a backoff, after a loss decided "not applied"). */
static void restock_round(zkc__txn *t)
{
    sop *s = restock_of(t);
    if (zkc__txn_marker_ready(t))
        zkc__get(s->op.c, s->skupath, NULL, restock_get_done, s);
}

static void restock_applied(zkc__txn *t, const zkc__record *rec)
{
    ZKC__UNUSED(rec);
    restock_end(restock_of(t), 0, NULL);
}

static void restock_fail(zkc__txn *t, int status, const char *msg)
{
    sop *s = restock_of(t);
    restock_end(s, status, "restock of SKU %s: %s", s->sku, msg);
}

static const zkc__txn_ops restock_ops = {
    .round = restock_round,
    .applied = restock_applied,
    /* no unapplied(): nothing is cached, round() reads the record again */
    .fail = restock_fail,
    .unknown_hint = "; check zkc_inventory_stock before restocking again",
};

void zkc__inv_restock_init(sop *s)
{
    zkc__txn_init(&s->t, s->op.c, &restock_ops);
}

void zkc__inv_restock_start(zkc__op *op)
{
    sop *s = ZKC__CONTAINER_OF(op, sop, op);
    if (s->inv->destroyed) {
        restock_end(s, ZKC_ECLOSED, "inventory %s is being destroyed", s->inv->root);
        return;
    }
    restock_round(&s->t);
}
