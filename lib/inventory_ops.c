/* The inventory's operations other than a reservation (sop, lib/inventory.h):
 * their frame (one sop per call, blocking or async; the async callback is
 * chosen by kind and is the sop's last use), their argument checks and the
 * entry points of restock, stock (and its change watch), lookup,
 * confirm/return and reap, and the two that are only reads: stock (the SKU
 * record and its queue's length) and lookup (a request's state; ABANDONED when
 * its nodes are gone and its record did not move). Restock and confirm/return
 * run in inventory_settle.c, reap in inventory_reap.c; the object's open and
 * destroy (inventory.c) use the same frame. The protocol (CONNECTION STATES,
 * CONFIRM / RETURN, RESTOCK, HOLD AND REAP) is described at the top of
 * lib/inventory.c. */
#include "inventory.h"
#include "changewatch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- the frame */

void zkc__inv_sop_end(sop *s, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    zkc__op_vfinish(&s->op, status, fmt, ap);
    va_end(ap);
}

static void sop_invoke(zkc__op *op)
{
    sop *s = ZKC__CONTAINER_OF(op, sop, op);
    int st = op->status;
    switch (s->kind) {
    case SOP_RESTOCK:
    case SOP_CONFIRM:
    case SOP_RETURN:
        s->cb.done(s->inv, st, s->ud);
        break;
    case SOP_STOCK:
        s->cb.stock(s->inv, st, st ? NULL : &s->info, s->ud);
        break;
    case SOP_LOOKUP:
        s->cb.lookup(s->inv, st, s->id, st ? ZKC_INVENTORY_PENDING : s->state, s->ud);
        break;
    case SOP_REAP:
        s->cb.reap(s->inv, st, s->returned, s->ud);
        break;
    default: /* open and destroy are blocking only */
        break;
    }
}

static void sop_release(zkc__op *op)
{
    sop *s = ZKC__CONTAINER_OF(op, sop, op);
    zkc_inventory *inv = s->inv;
    free(s->sku);
    free(s->skupath);
    free(s->qdir);
    free(s->recpath);
    free(s->rec);
    free(s->guard);
    free(s);
    zkc__inv_unref(inv);
}

sop *zkc__inv_sop_new(zkc_inventory *inv, int kind)
{
    sop *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->op.c = inv->c;
    s->op.invoke = sop_invoke;
    s->op.release = sop_release;
    s->inv = inv;
    s->kind = kind;
    if (kind != SOP_OPEN && kind != SOP_DESTROY) /* the object's life is not an operation */
        zkc__metrics_tag(&s->op.ms, inv->c, ZKC_MK_INVENTORY, ZKC__MH_NONE, inv->root);
    zkc__inv_ref(inv);
    if (kind == SOP_RESTOCK || kind == SOP_CONFIRM || kind == SOP_RETURN) {
        pthread_mutex_lock(&inv->guard_mu);
        if (inv->guard && (s->guard = malloc(sizeof *s->guard)) != NULL)
            *s->guard = *inv->guard;
        int nomem = inv->guard && !s->guard;
        pthread_mutex_unlock(&inv->guard_mu);
        if (nomem) { /* never unguarded by accident */
            s->op.release(&s->op);
            return NULL;
        }
    }
    return s;
}

int zkc__inv_sop_run(sop *s, void (*start)(zkc__op *))
{
    int rc = zkc__op_run(&s->op, start, 1);
    return rc;
}

/* ---- stock ---- */

static void stock_q_done(zkc__req *r)
{
    sop *s = r->ctx;
    if (r->rc == ZR_OK)
        s->info.queue_length = r->stat.num_children;
    else if (r->rc != ZR_NONODE) {
        zkc__inv_sop_end(s, zkc__inv_req_error(r->rc), "SKU %s: reading its queue: %s", s->sku, zkc__zrc_name(r->rc));
        return;
    }
    zkc__inv_sop_end(s, 0, NULL);
}

static void stock_get_done(zkc__req *r)
{
    sop *s = r->ctx;
    zkc__sku_rec v;
    char msg[256];
    int st;
    if (r->rc == ZR_NONODE) {
        zkc__inv_sop_end(s, ZKC_ENONODE, "SKU %s does not exist under %s (restock creates it)", s->sku,
                         s->inv->sku_dir);
    } else if ((st = zkc__inv_sku_reply(s->inv, r, s->sku, &v, NULL, msg, sizeof msg)) != 0) {
        zkc__inv_sop_end(s, st, "%s", msg);
    } else {
        s->info.available = v.available;
        s->info.reserved = v.reserved;
        s->info.sold = v.sold;
        s->info.total = v.total;
        zkc__exists(r->c, s->qdir, NULL, stock_q_done, s);
    }
}

static void stock_start(zkc__op *op)
{
    sop *s = ZKC__CONTAINER_OF(op, sop, op);
    if (s->inv->destroyed) {
        zkc__inv_sop_end(s, ZKC_ECLOSED, "inventory %s is being destroyed", s->inv->root);
        return;
    }
    if (s->fresh)
        zkc__fence_get(op->c, s->skupath, stock_get_done, s);
    else
        zkc__sync_get(op->c, s->skupath, stock_get_done, s);
}

/* ---- lookup ---- */

static void lookup_rec_done(zkc__req *r);

static void lookup_queue_done(zkc__req *r)
{
    sop *s = r->ctx;
    if (r->rc != ZR_OK && r->rc != ZR_NONODE) {
        zkc__inv_sop_end(s, zkc__inv_req_error(r->rc), "request %s: listing a queue: %s", s->id, zkc__zrc_name(r->rc));
        return;
    }
    if (r->rc == ZR_OK && zkc__resname_find(r->children, r->nchildren, s->rec->nonce) >= 0) {
        s->state = ZKC_INVENTORY_PENDING; /* its queue node is alive */
        zkc__inv_sop_end(s, 0, NULL);
        return;
    }
    /* No node. If the record did not move meanwhile, nobody will decide it. */
    s->loops++;
    zkc__get(r->c, s->recpath, NULL, lookup_rec_done, s);
}

static void lookup_rec_done(zkc__req *r)
{
    sop *s = r->ctx;
    const char *why = NULL;
    int32_t prev = s->ver;
    if (r->rc == ZR_NONODE) {
        zkc__inv_sop_end(s, ZKC_ENONODE, "no request with id %s (or it is older than the retention period)", s->id);
        return;
    }
    if (r->rc != ZR_OK) {
        zkc__inv_sop_end(s, zkc__inv_req_error(r->rc), "request %s: reading %s: %s", s->id, s->recpath,
                         zkc__zrc_name(r->rc));
        return;
    }
    if (zkc__resrec_decode(r->value, r->valuelen, s->rec, &why) != 0) {
        zkc__inv_sop_end(s, ZKC_EBADDATA, "request record %s: %s", s->recpath, why);
        return;
    }
    s->ver = r->stat.version;
    s->state = (zkc_inventory_state)s->rec->state;
    if (s->rec->state != ZKC_INVENTORY_PENDING) {
        zkc__inv_sop_end(s, 0, NULL);
        return;
    }
    if (s->loops > 0 && prev == s->ver) {
        s->state = ZKC_INVENTORY_ABANDONED;
        zkc__inv_sop_end(s, 0, NULL);
        return;
    }
    if (s->loops > 8) {
        s->state = ZKC_INVENTORY_PENDING; /* it keeps being queued again */
        zkc__inv_sop_end(s, 0, NULL);
        return;
    }
    char *qdir = zkc__inv_queue_dir(s->inv, s->rec->line[0].sku);
    zkc__children(r->c, qdir, NULL, lookup_queue_done, s);
    free(qdir);
}

static void lookup_start(zkc__op *op)
{
    sop *s = ZKC__CONTAINER_OF(op, sop, op);
    if (s->inv->destroyed) {
        zkc__inv_sop_end(s, ZKC_ECLOSED, "inventory %s is being destroyed", s->inv->root);
        return;
    }
    /* sync: a restarted worker must see what the previous one did. */
    zkc__sync_get(op->c, s->recpath, lookup_rec_done, s);
}

/* ---------------------------------------------------------------- entry points */

static int sku_args(zkc_inventory *inv, const char *sku, const char *fn)
{
    int rc = zkc__inv_check_inv(inv, fn);
    if (rc)
        return rc;
    return zkc__name_check(sku, "SKU");
}

static sop *sku_sop(zkc_inventory *inv, const char *sku, int kind, int *rc)
{
    sop *s = zkc__inv_sop_new(inv, kind);
    if (!s || !(s->sku = strdup(sku))) {
        if (s)
            s->op.release(&s->op);
        *rc = zkc__err(ZKC_ENOMEM, "out of memory");
        return NULL;
    }
    s->skupath = zkc__inv_sku_path(inv, sku);
    s->qdir = zkc__inv_queue_dir(inv, sku);
    *rc = 0;
    return s;
}

/* The async forms: a prepared sop (NULL: refused, *rc says why) goes to the
 * engine with its callback; from here on it calls back exactly once, or never
 * if the submission is refused. */
static int sop_submit(sop *s, int rc, void (*start)(zkc__op *), void *ud)
{
    if (!s)
        return rc;
    s->ud = ud;
    return zkc__op_run(&s->op, start, 0);
}

static int no_cb(int has_cb, const char *fn)
{
    return has_cb ? 0 : zkc__err(ZKC_EINVAL, "%s: the callback is NULL", fn);
}

static sop *restock_sop(zkc_inventory *inv, const char *sku, int64_t qty, int has_cb, const char *fn, int *rc)
{
    if ((*rc = sku_args(inv, sku, fn)) != 0 || (*rc = no_cb(has_cb, fn)) != 0)
        return NULL;
    if (qty < 0 || qty > ZKC__RES_QTY_MAX) {
        *rc = zkc__err(ZKC_EINVAL, "%s: quantity %" PRId64 " is outside 0..%" PRId64, fn, qty, ZKC__RES_QTY_MAX);
        return NULL;
    }
    sop *s = sku_sop(inv, sku, SOP_RESTOCK, rc);
    if (!s)
        return NULL;
    s->qty = qty;
    zkc__inv_restock_init(s);
    if (s->guard)
        zkc__txn_guard(&s->t, s->guard, 1);
    return s;
}

int zkc_inventory_restock(zkc_inventory *inv, const char *sku, int64_t qty)
{
    int rc;
    sop *s = restock_sop(inv, sku, qty, 1, "zkc_inventory_restock", &rc);
    if (!s)
        return rc;
    rc = zkc__inv_sop_run(s, zkc__inv_restock_start);
    s->op.release(&s->op);
    return rc;
}

int zkc_inventory_restock_async(zkc_inventory *inv, const char *sku, int64_t qty, zkc_inventory_cb cb, void *ud)
{
    int rc;
    sop *s = restock_sop(inv, sku, qty, cb != NULL, "zkc_inventory_restock_async", &rc);
    if (s)
        s->cb.done = cb;
    return sop_submit(s, rc, zkc__inv_restock_start, ud);
}

static sop *stock_sop(zkc_inventory *inv, const char *sku, int has_cb, const char *fn, int *rc)
{
    if ((*rc = sku_args(inv, sku, fn)) != 0 || (*rc = no_cb(has_cb, fn)) != 0)
        return NULL;
    return sku_sop(inv, sku, SOP_STOCK, rc);
}

static int stock_run(zkc_inventory *inv, const char *sku, int fresh, zkc_inventory_stock_info *out, const char *fn)
{
    int rc;
    sop *s = stock_sop(inv, sku, out != NULL, fn, &rc);
    if (!s)
        return out ? rc : zkc__err(ZKC_EINVAL, "%s: out is NULL", fn);
    s->fresh = fresh;
    rc = zkc__inv_sop_run(s, stock_start);
    if (rc == 0)
        *out = s->info;
    s->op.release(&s->op);
    return rc;
}

int zkc_inventory_stock(zkc_inventory *inv, const char *sku, zkc_inventory_stock_info *out)
{
    return stock_run(inv, sku, 0, out, "zkc_inventory_stock");
}

int zkc_inventory_stock_fresh(zkc_inventory *inv, const char *sku, zkc_inventory_stock_info *out)
{
    return stock_run(inv, sku, 1, out, "zkc_inventory_stock_fresh");
}

/* A change watch (changewatch.c) on the SKU record (every change of the
 * counts is one setData of it) and on its queue's children (the length). */
int zkc_inventory_stock_watch(zkc_inventory *inv, const char *sku, zkc_watch_fn fn, void *ud, zkc_watch **out)
{
    if (out)
        *out = NULL;
    int rc = sku_args(inv, sku, "zkc_inventory_stock_watch");
    if (rc)
        return rc;
    char *skupath = zkc__inv_sku_path(inv, sku);
    char *qdir = zkc__inv_queue_dir(inv, sku);
    if (!skupath || !qdir)
        rc = zkc__err(ZKC_ENOMEM, "out of memory");
    else {
        const zkc__cw_target t[2] = {{skupath, 0}, {qdir, 1}};
        rc = zkc__cw_start(inv->c, t, 2, fn, ud, out, "zkc_inventory_stock_watch");
    }
    free(skupath);
    free(qdir);
    return rc;
}

static int stock_submit(zkc_inventory *inv, const char *sku, int fresh, zkc_inventory_stock_cb cb, void *ud,
                        const char *fn)
{
    int rc;
    sop *s = stock_sop(inv, sku, cb != NULL, fn, &rc);
    if (s) {
        s->cb.stock = cb;
        s->fresh = fresh;
    }
    return sop_submit(s, rc, stock_start, ud);
}

int zkc_inventory_stock_async(zkc_inventory *inv, const char *sku, zkc_inventory_stock_cb cb, void *ud)
{
    return stock_submit(inv, sku, 0, cb, ud, "zkc_inventory_stock_async");
}

int zkc_inventory_stock_fresh_async(zkc_inventory *inv, const char *sku, zkc_inventory_stock_cb cb, void *ud)
{
    return stock_submit(inv, sku, 1, cb, ud, "zkc_inventory_stock_fresh_async");
}

static sop *id_sop(zkc_inventory *inv, const char *id, int kind, int has_cb, const char *fn, int *rc)
{
    if ((*rc = zkc__inv_check_inv(inv, fn)) != 0 || (*rc = zkc__name_check(id, "request id")) != 0 ||
        (*rc = no_cb(has_cb, fn)) != 0)
        return NULL;
    sop *s = zkc__inv_sop_new(inv, kind);
    if (!s) {
        *rc = zkc__err(ZKC_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(s->id, sizeof s->id, "%s", id);
    s->recpath = zkc__inv_rec_path(inv, id);
    if (kind == SOP_LOOKUP) {
        if (!(s->rec = malloc(sizeof *s->rec))) {
            s->op.release(&s->op);
            *rc = zkc__err(ZKC_ENOMEM, "out of memory");
            return NULL;
        }
        s->ver = -2;
    }
    return s;
}

static int settle_sync(zkc_inventory *inv, const char *id, int kind, const char *fn)
{
    int rc;
    sop *s = id_sop(inv, id, kind, 1, fn, &rc);
    if (!s)
        return rc;
    rc = zkc__inv_sop_run(s, zkc__inv_settle_op_start);
    s->op.release(&s->op);
    return rc;
}

static int settle_async(zkc_inventory *inv, const char *id, int kind, zkc_inventory_cb cb, void *ud, const char *fn)
{
    int rc;
    sop *s = id_sop(inv, id, kind, cb != NULL, fn, &rc);
    if (s)
        s->cb.done = cb;
    return sop_submit(s, rc, zkc__inv_settle_op_start, ud);
}

int zkc_inventory_confirm(zkc_inventory *inv, const char *id)
{
    return settle_sync(inv, id, SOP_CONFIRM, "zkc_inventory_confirm");
}

int zkc_inventory_confirm_async(zkc_inventory *inv, const char *id, zkc_inventory_cb cb, void *ud)
{
    return settle_async(inv, id, SOP_CONFIRM, cb, ud, "zkc_inventory_confirm_async");
}

int zkc_inventory_return(zkc_inventory *inv, const char *id)
{
    return settle_sync(inv, id, SOP_RETURN, "zkc_inventory_return");
}

int zkc_inventory_return_async(zkc_inventory *inv, const char *id, zkc_inventory_cb cb, void *ud)
{
    return settle_async(inv, id, SOP_RETURN, cb, ud, "zkc_inventory_return_async");
}


int zkc_inventory_lookup(zkc_inventory *inv, const char *id, zkc_inventory_state *state)
{
    int rc;
    sop *s = id_sop(inv, id, SOP_LOOKUP, 1, "zkc_inventory_lookup", &rc);
    if (!s)
        return rc;
    rc = zkc__inv_sop_run(s, lookup_start);
    if (rc == 0 && state)
        *state = s->state;
    s->op.release(&s->op);
    return rc;
}

int zkc_inventory_lookup_async(zkc_inventory *inv, const char *id, zkc_inventory_reserve_cb cb, void *ud)
{
    int rc;
    sop *s = id_sop(inv, id, SOP_LOOKUP, cb != NULL, "zkc_inventory_lookup_async", &rc);
    if (s)
        s->cb.lookup = cb;
    return sop_submit(s, rc, lookup_start, ud);
}

static sop *reap_sop(zkc_inventory *inv, int has_cb, const char *fn, int *rc)
{
    if ((*rc = zkc__inv_check_inv(inv, fn)) != 0 || (*rc = no_cb(has_cb, fn)) != 0)
        return NULL;
    sop *s = zkc__inv_sop_new(inv, SOP_REAP);
    if (!s)
        *rc = zkc__err(ZKC_ENOMEM, "out of memory");
    return s;
}

int zkc_inventory_reap(zkc_inventory *inv, int64_t *returned)
{
    if (returned)
        *returned = 0;
    int rc;
    sop *s = reap_sop(inv, 1, "zkc_inventory_reap", &rc);
    if (!s)
        return rc;
    rc = zkc__inv_sop_run(s, zkc__inv_reap_start);
    if (returned)
        *returned = s->returned;
    s->op.release(&s->op);
    return rc;
}

int zkc_inventory_reap_async(zkc_inventory *inv, zkc_inventory_reap_cb cb, void *ud)
{
    int rc;
    sop *s = reap_sop(inv, cb != NULL, "zkc_inventory_reap_async", &rc);
    if (s)
        s->cb.reap = cb;
    return sop_submit(s, rc, zkc__inv_reap_start, ud);
}
