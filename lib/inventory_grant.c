/* The head's grant rounds: a single-line head lists its queue once per
 * batch, reads the SKU record and the batch's entries, walks them in FIFO
 * order and decides up to ZKC__RES_BATCH of them in one versioned multi
 * (multi-line members too, when nothing undecided is ahead of them in their
 * other queues: inventory_multiline.c); a multi-line head of all its queues
 * grants (or refuses) itself. After a lost reply it finds out from its own
 * record and node what happened. The rounds
 * run on the transaction core (txn.c) in its no-marker mode: a deciding multi
 * always rewrites our record and deletes our node, which is the evidence, and
 * the core classifies the replies and owns the backoff. The protocol
 * (GRANTING, CRASH SAFETY) is described at the top of lib/inventory.c. */
#include "inventory.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- grant rounds */

static void walk(rq *q);
static void walk_decide(rq *q);
static void self_decide(rq *q);
static void round_again(rq *q, int conflict);
static void tell_batch(rq **told, const int *state, int n);

/* The reads of a round are back: on to the next stage. */
void zkc__inv_round_progress(rq *q)
{
    if (q->phase != P_GRANT && q->phase != P_SELF) {
        zkc__inv_step(q); /* the round was abandoned (not head any more) */
        return;
    }
    if (q->err) {
        zkc__inv_free_glist(q);
        zkc__inv_rq_fail(q, q->err, "%s", q->err_msg);
        return;
    }
    if (q->phase == P_SELF)
        self_decide(q);
    else if (q->glist)
        walk(q);
    else
        walk_decide(q);
}

static void round_again(rq *q, int conflict)
{
    zkc__inv_free_glist(q);
    if (conflict) {
        ZKC__STAT_INC(q->c, conflicts);
        if (++q->attempts > RES_ATTEMPTS) {
            zkc__inv_rq_fail(q, ZKC_ECONTENDED, "request %s: the SKU record kept changing during %d grant rounds",
                             q->id, RES_ATTEMPTS);
            return;
        }
        if (q->attempts > 2) {
            /* The chain is busy while the core's backoff timer is out. */
            q->backoff_armed = 1;
            q->busy++;
            q->refs++;
            zkc__txn_backoff(&q->grant_txn, q->attempts, -1);
            return;
        }
    }
    zkc__inv_round_start(q);
}

/* The core's backoff is over (round), or the client closed meanwhile. */
static void backoff_over(rq *q)
{
    q->backoff_armed = 0;
    q->busy--;
    if (!q->finished) {
        if (q->leave || q->c->closing)
            zkc__inv_step(q);
        else
            zkc__inv_round_start(q);
    }
    zkc__inv_rq_unref(q);
}

static rq *grant_of(zkc__txn *t)
{
    return ZKC__CONTAINER_OF(t, rq, grant_txn);
}

static void grant_round(zkc__txn *t)
{
    backoff_over(grant_of(t));
}

static void grant_fail(zkc__txn *t, int status, const char *msg)
{
    rq *q = grant_of(t);
    if (q->backoff_armed)
        backoff_over(q); /* the client is closing: step() ends the request */
    else
        zkc__inv_rq_fail(q, status, "request %s: grant: %s", q->id, msg);
}

static void grant_recover(rq *q);

static void grant_verify(zkc__txn *t)
{
    grant_recover(grant_of(t));
}

static const zkc__txn_ops grant_ops = {
    .round = grant_round,
    .verify = grant_verify,
    .fail = grant_fail,
    .unknown_hint = "",
};

void zkc__inv_grant_init(rq *q)
{
    zkc__txn_init(&q->grant_txn, q->c, &grant_ops);
}

/* The SKU record moved under a batch (a confirm, return, expiry or restock:
 * none of them lowers `available`): read it again and decide again from the
 * entries already read. One round trip, no listing. */
static void regrant_sku_done(zkc__req *r);

static void regrant(rq *q)
{
    ZKC__STAT_INC(q->c, conflicts);
    if (++q->attempts > RES_ATTEMPTS) {
        zkc__inv_rq_fail(q, ZKC_ECONTENDED, "request %s: the SKU record kept changing during %d grant attempts", q->id,
                         RES_ATTEMPTS);
        return;
    }
    if (q->attempts > 8) {
        round_again(q, 1); /* persistent contention: back off, start over */
        return;
    }
    q->err = 0;
    RQ_SEND_TAG(q, 0, zkc__get(q->c, q->ln[0].skupath, NULL, regrant_sku_done, q));
}

/* Our node is no longer where we thought: back to waiting in the queue. */
static void back_to_queue(rq *q)
{
    zkc__inv_free_glist(q);
    q->phase = P_QUEUED;
    for (int i = 0; i < q->n; i++) {
        q->ln[i].head = 0;
        q->ln[i].dirty = 1;
    }
    zkc__inv_step(q);
}

RQ_DONE(gsku_done)
{
    rline *l = &q->ln[r->tag];
    char msg[256];
    int st = zkc__inv_sku_reply(q->inv, r, l->l.sku, &l->sku, &l->sku_ver, msg, sizeof msg);
    if (st)
        zkc__inv_group_err(q, st, "%s", msg);
    if (!q->busy)
        zkc__inv_round_progress(q);
}

RQ_DONE(glist_done)
{
    if (r->rc != ZR_OK) {
        zkc__inv_group_err(q, r->rc == ZR_NONODE ? ZKC_ENONODE : zkc__inv_req_error(r->rc),
                           "request %s: listing the queue of %s: %s", q->id, q->ln[0].l.sku, zkc__zrc_name(r->rc));
    } else {
        zkc__inv_qlen_seen(q->inv, r->path, r->nchildren);
        zkc__member *m;
        int n = zkc__inv_parse_queue(r->children, r->nchildren, &m);
        zkc__inv_set_glist(q, m, n);
        free(m);
    }
    if (!q->busy)
        zkc__inv_round_progress(q);
}

RQ_DONE(gmem_done)
{
    int k = (int)r->tag;
    if (k < q->ngm) {
        gmem *g = &q->gm[k];
        const char *why = NULL;
        if (r->rc == ZR_NONODE) {
            g->st = GM_GONE;
        } else if (r->rc != ZR_OK) {
            zkc__inv_group_err(q, zkc__inv_req_error(r->rc), "request %s: reading queue entry %s: %s", q->id, g->name,
                               zkc__zrc_name(r->rc));
        } else if (zkc__qent_decode(r->value, r->valuelen, &g->e, &why) != 0) {
            g->st = GM_BAD;
            zkc__log(q->c, ZKC_LOG_WARN, "inventory: queue entry %s/%s is malformed (%s): the queue stops there",
                     q->ln[0].qdir, g->name, why);
        } else {
            g->st = GM_OK;
            g->owner = (uint64_t)r->stat.ephemeral_owner;
        }
    }
    if (!q->busy)
        zkc__inv_round_progress(q);
}

void zkc__inv_round_start(rq *q)
{
    if (q->leave) {
        zkc__inv_step(q); /* leaving beats granting: the next head takes over */
        return;
    }
    q->err = 0;
    q->ndec = 0;
    if (q->n == 1) {
        /* With a fresh listing, the SKU record and the batch's entries are
         * read together. */
        q->phase = P_GRANT;
        RQ_SEND_TAG(q, 0, zkc__get(q->c, q->ln[0].skupath, NULL, gsku_done, q));
        if (q->glist)
            walk(q);
        else
            RQ_SEND(q, zkc__children(q->c, q->ln[0].qdir, NULL, glist_done, q));
    } else {
        q->phase = P_SELF;
        for (int i = 0; i < q->n; i++)
            RQ_SEND_TAG(q, i, zkc__get(q->c, q->ln[i].skupath, NULL, gsku_done, q));
    }
}

/* Wait for restock: watch each SKU that is short, from the version we read. */
RQ_DONE(wsku_done)
{
    rline *l = &q->ln[r->tag];
    if (zkc__inv_ws_reply(&l->sku_w, r) != ZR_OK) {
        zkc__inv_group_err(q, r->rc == ZR_NONODE ? ZKC_ENONODE : zkc__inv_req_error(r->rc), "SKU %s: watching %s: %s",
                           l->l.sku, l->skupath, zkc__zrc_name(r->rc));
    } else if (r->stat.version != l->sku_ver) {
        q->recheck = 1; /* it changed before the watch was set */
    }
    if (q->busy)
        return;
    if (q->err)
        zkc__inv_rq_fail(q, q->err, "%s", q->err_msg);
    else
        zkc__inv_step(q);
}

static void wait_restock(rq *q, int64_t short_by)
{
    if (q->try_mode) {
        zkc__inv_rq_fail(q, ZKC_ETIMEDOUT,
                         "request %s: not enough stock now, %" PRId64 " unit(s) short (timeout 0: not waiting)",
                         q->id, short_by);
        return;
    }
    q->phase = P_WAITSTOCK;
    q->recheck = 0;
    q->err = 0;
    q->attempts = 0; /* contention is counted per decision, not per life */
    int sent = 0;
    for (int i = 0; i < q->n; i++) {
        rline *l = &q->ln[i];
        if (l->sku.available >= l->l.qty || l->sku_w.w)
            continue;
        l->sku_w.w = zkc__watch_new(q->c, zkc__inv_sku_fired, l);
        if (!l->sku_w.w)
            abort();
        l->sku_w.reading = 1;
        RQ_SEND_TAG(q, i, zkc__get(q->c, l->skupath, l->sku_w.w, wsku_done, q));
        sent++;
    }
    if (!sent)
        zkc__inv_step(q);
}

RQ_DONE(regrant_sku_done)
{
    rline *l = &q->ln[0];
    char msg[256];
    int st = zkc__inv_sku_reply(q->inv, r, l->l.sku, &l->sku, &l->sku_ver, msg, sizeof msg);
    if (st)
        zkc__inv_rq_fail(q, st, "%s", msg);
    else
        walk_decide(q);
}

/* Reply of a deciding multi (batch or self-grant). Layout: ops[0..nsku) SKU
 * records, then per decision: record, node delete (batch); or record, then the
 * node deletes (self). */
RQ_DONE(grant_done)
{
    int nsku = q->phase == P_SELF ? q->n : (int)r->tag;
    if (r->rc == ZR_SESSIONLOST) {
        zkc__inv_batch_release(q);
        /* Our queue nodes were ephemeral: not a resend, the request ends. */
        zkc__inv_janitor_nodes(q);
        zkc__inv_rq_finish(q, ZKC_ESESSIONLOST, ZKC_INVENTORY_PENDING, "request %s: the session ended while granting", q->id);
        return;
    }
    int k, rc;
    int verdict = zkc__txn_reply(&q->grant_txn, r, &k, &rc);
    if (verdict != ZKC__TXN_APPLIED)
        zkc__inv_batch_release(q); /* not applied, or not known yet: they learn from their records */
    if (verdict == ZKC__TXN_TAKEN)
        return; /* a lost reply (grant_recover) or not sent (failed) */
    if (verdict == ZKC__TXN_APPLIED) {
        /* Finishing us may free us: take the members to tell first. */
        rq *told[ZKC__RES_BATCH];
        int state[ZKC__RES_BATCH], ntold = q->ndec;
        memcpy(told, q->mine, sizeof told);
        memcpy(state, q->dstate, sizeof state);
        memset(q->mine, 0, sizeof q->mine);
        zkc__inv_forget_nodes(q);
        zkc__inv_free_glist(q);
        int st = q->dstate[0];
        if (st == ZKC_INVENTORY_RESERVED)
            zkc__inv_rq_finish(q, 0, st, NULL);
        else
            zkc__inv_rq_finish(q, ZKC_EOUTOFSTOCK, st,
                               "request %s: not enough stock (%" PRId64 " unit(s) short; fail-fast)",
                               q->id, q->short_by);
        tell_batch(told, state, ntold);
        return;
    }
    if (k > 0 && q->phase == P_GRANT && (k < nsku || k >= nsku + 2 * q->ndec) &&
        (rc == ZR_BADVERSION || rc == ZR_NONODE)) {
        /* Another SKU of a multi-line member moved, or one of its other
         * nodes is gone (it left, or was decided elsewhere): look at them
         * again. */
        zkc__inv_ml_reset(q);
        round_again(q, rc == ZR_BADVERSION);
        return;
    }
    if (k >= 0 && k < nsku) {
        if (rc == ZR_BADVERSION) {
            if (q->phase == P_GRANT)
                regrant(q);
            else
                round_again(q, 1);
            return;
        }
        zkc__inv_rq_fail(q, rc == ZR_NONODE ? ZKC_ENONODE : zkc__inv_req_error(rc), "SKU record %s: %s", r->ops[k].path,
                         zkc__zrc_name(rc));
        return;
    }
    if (k >= 0 && q->phase == P_GRANT) {
        int d = (k - nsku) / 2, is_delete = (k - nsku) % 2;
        int gi = d < q->ndec ? q->dec[d] : -1;
        if (rc == ZR_NONODE && gi > 0) {
            /* That member left (timeout) or its record is gone: look again. */
            q->gm[gi].st = is_delete ? GM_GONE : GM_BAD;
            if (!is_delete)
                zkc__log(q->c, ZKC_LOG_WARN, "inventory: request record %s is missing: its queue entry is skipped",
                         r->ops[k].path);
            round_again(q, 0);
            return;
        }
        if (rc == ZR_NONODE && gi == 0 && is_delete) {
            q->missing = 1;
            back_to_queue(q);
            return;
        }
    } else if (k >= 0 && q->phase == P_SELF && rc == ZR_NONODE && r->ops[k].type == ZKC_REQ_DELETE) {
        q->missing = 1;
        back_to_queue(q);
        return;
    }
    zkc__inv_rq_fail(q, rc == ZR_NONODE ? ZKC_EBADDATA : zkc__inv_req_error(rc), "request %s: grant failed on %s: %s",
                     q->id, k >= 0 ? r->ops[k].path : "multi", zkc__zrc_name(rc));
}

RQ_DONE(grec_node_done)
{
    if (r->rc == ZR_OK) {
        round_again(q, 0); /* our node is there: the grant did not apply */
    } else if (r->rc == ZR_NONODE) {
        q->missing = 1;
        back_to_queue(q);
    } else {
        zkc__inv_rq_fail(q, zkc__inv_req_error(r->rc),
                         "request %s: checking its queue node after a connection loss: %s", q->id,
                         zkc__zrc_name(r->rc));
    }
}

RQ_DONE(grec_rec_done)
{
    zkc__res_rec rec;
    const char *why = NULL;
    if (r->rc != ZR_OK) {
        zkc__inv_rq_fail(q, zkc__inv_req_error(r->rc), "request %s: reading its record after a connection loss: %s",
                         q->id, zkc__zrc_name(r->rc));
    } else if (zkc__resrec_decode(r->value, r->valuelen, &rec, &why) != 0) {
        zkc__inv_rq_fail(q, ZKC_EBADDATA, "request record %s: %s", q->recpath, why);
    } else if (rec.state != ZKC_INVENTORY_PENDING && strcmp(rec.nonce, q->nonce) == 0) {
        zkc__inv_forget_nodes(q);
        zkc__inv_finish_decided(q, rec.state);
    } else {
        RQ_SEND(q, zkc__exists(q->c, q->ln[0].m.node, NULL, grec_node_done, q));
    }
}

RQ_DONE(grec_sync_done)
{
    ZKC__UNUSED(r);
    RQ_SEND(q, zkc__get(q->c, q->recpath, NULL, grec_rec_done, q));
}

/* The grant multi may or may not have applied: it always deletes our own node
 * and rewrites our record, so those two tell. */
static void grant_recover(rq *q)
{
    zkc__inv_free_glist(q);
    RQ_SEND(q, zkc__sync(q->c, q->recpath, grec_sync_done, q));
}

static void member_record(rq *q, const gmem *g, int state, zkc__res_rec *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->state = state;
    rec->flags = g->e.flags;
    rec->hold_ms = g->e.hold_ms;
    memcpy(rec->nonce, g->e.nonce, sizeof rec->nonce);
    rec->owner = g->owner;
    rec->n = 1;
    rec->line[0].qty = g->e.qty;
    snprintf(rec->line[0].sku, sizeof rec->line[0].sku, "%s", q->ln[0].l.sku);
}

/* ---------------------------------------------------------------- our own members
 *
 * Members of the queue that are requests of this same object (a process's
 * workers ordering one SKU) need no reads (issue 19): their node's data is
 * the bytes the request wrote (rline.ent) and its owner the session that
 * wrote it, so the granter takes the entry from memory instead of a get, and
 * tells a decided one its outcome when the multi applies instead of letting
 * it re-read its record. A member being told waits for that (in_batch, step()
 * sends nothing meanwhile) unless it leaves: a withdrawal racing the grant is
 * decided by the servers as before, and the loser reads the record. Only
 * members plainly waiting count (queued, not leaving, not being recovered, of
 * this session); every other member is read and learns from its record. The
 * servers send the watch events of a transaction before its reply, so a
 * member told here has already heard its record and the node ahead change
 * and has no watch left to remove. */
static rq *own_member(rq *q, const char *name, int *line)
{
    const char *qdir = q->ln[0].qdir;
    for (rq *o = q->inv->rqs; o; o = o->next) {
        if (o == q || o->finished || o->leave || !o->queued || o->gen != q->c->gen ||
            (o->phase != P_QUEUED && o->phase != P_WAITSTOCK))
            continue;
        for (int j = 0; j < o->n; j++) {
            const char *nn = o->ln[j].m.node_name;
            if (nn && strcmp(nn, name) == 0 && strcmp(o->ln[j].qdir, qdir) == 0) {
                *line = j;
                return o;
            }
        }
    }
    return NULL;
}

/* The entry of member g from memory when it is one of ours: 1, or 0 (read it). */
static int own_entry(rq *q, gmem *g)
{
    int j;
    rq *o = own_member(q, g->name, &j);
    const char *why = NULL;
    if (!o || zkc__qent_decode(o->ln[j].ent, o->ln[j].m.node_len, &g->e, &why) != 0)
        return 0;
    g->st = GM_OK;
    g->owner = o->owner;
    return 1;
}

void zkc__inv_batch_release(rq *q)
{
    for (int d = 0; d < ZKC__RES_BATCH; d++) {
        rq *o = q->mine[d];
        if (!o)
            continue;
        q->mine[d] = NULL;
        o->in_batch--;
        zkc__inv_step(o);
        zkc__inv_rq_unref(o);
    }
}

/* Our multi applied: each of our own decided members hears its outcome, in
 * queue order, after the granter (told[0], its own slot, is never used). */
static void tell_batch(rq **told, const int *state, int n)
{
    for (int d = 1; d < n; d++) {
        rq *o = told[d];
        if (!o)
            continue;
        o->in_batch--;
        if (!o->finished && !o->leave && (o->phase == P_QUEUED || o->phase == P_WAITSTOCK)) {
            zkc__inv_forget_nodes(o);
            zkc__inv_finish_decided(o, state[d]);
        } else {
            zkc__inv_step(o);
        }
        zkc__inv_rq_unref(o);
    }
}

/* Read the unread entries of the window from `from` on, GM_CHUNK of them
 * at most: a batch often stops early (at a member that waits, or a
 * multi-line one it cannot decide), and the next head reads again what we
 * read beyond it. Returns the number sent. */
static int read_entries(rq *q, int from)
{
    int sent = 0;
    for (int i = from; i < q->ngm && sent < GM_CHUNK; i++) {
        if (q->gm[i].st != GM_UNREAD)
            continue;
        char *p = zkc__path_join(q->ln[0].qdir, q->gm[i].name);
        if (!p)
            abort();
        RQ_SEND_TAG(q, i, zkc__get(q->c, p, NULL, gmem_done, q));
        free(p);
        sent++;
    }
    return sent;
}

/* Single-line head: decide the batch from the listing, the SKU record and the
 * queued entries, in queue order. */
static void walk(rq *q)
{
    rline *l0 = &q->ln[0];
    /* Are we still the head? */
    if (q->nglist == 0 || !zkc__inv_our_node_name(l0, q->glist[0])) {
        int there = 0;
        for (int i = 0; i < q->nglist; i++)
            there |= zkc__inv_our_node_name(l0, q->glist[i]);
        if (!there && q->nglist == RES_WINDOW)
            there = 1; /* beyond the window: not head, surely still queued */
        if (!there)
            q->missing = 1;
        back_to_queue(q);
        return;
    }
    /* Members of this window, keeping what we already read. */
    gmem *gm = calloc((size_t)q->nglist, sizeof *gm);
    if (!gm)
        abort();
    int need = 0;
    for (int i = 0; i < q->nglist; i++) {
        gm[i].name = q->glist[i];
        q->glist[i] = NULL;
        for (int j = 0; j < q->ngm; j++)
            if (q->gm[j].name && strcmp(q->gm[j].name, gm[i].name) == 0) {
                gm[i].st = q->gm[j].st;
                gm[i].e = q->gm[j].e;
                gm[i].owner = q->gm[j].owner;
                if (zkc__inv_ml_keep(q->gm[j].ml)) {
                    /* the head of its other queues: still so while its
                     * node is there; a stale SKU version only costs a
                     * conflict */
                    gm[i].ml = q->gm[j].ml;
                    q->gm[j].ml = NULL;
                }
            }
        if (i == 0) {
            gm[0].st = GM_OK;
            gm[0].e.qty = l0->l.qty;
            gm[0].e.flags = q->flags;
            gm[0].e.nlines = 1;
            gm[0].e.hold_ms = q->hold_ms;
            memcpy(gm[0].e.nonce, q->nonce, sizeof gm[0].e.nonce);
            snprintf(gm[0].e.id, sizeof gm[0].e.id, "%s", q->id);
            gm[0].owner = q->owner;
        }
        if (i > 0 && gm[i].st == GM_UNREAD)
            own_entry(q, &gm[i]);
        need += gm[i].st == GM_UNREAD;
    }
    zkc__inv_free_gm(q);
    q->gm = gm;
    q->ngm = q->nglist;
    zkc__inv_free_glist(q);
    if (need)
        read_entries(q, 1);
    if (!q->busy)
        walk_decide(q); /* else the last reply of the round decides */
}

/* Before deciding: a failed read fails the request, and leaving beats
 * granting. 1 when the round ends here. */
static int decide_stops(rq *q)
{
    if (q->err) {
        zkc__inv_rq_fail(q, q->err, "%s", q->err_msg);
        return 1;
    }
    if (q->leave) {
        zkc__inv_step(q);
        return 1;
    }
    return 0;
}

static void walk_decide(rq *q)
{
    rline *l0 = &q->ln[0];
    if (decide_stops(q))
        return;
    /* The walk: strict FIFO. */
    int64_t avail = l0->sku.available, granted = 0;
    int extra = 0; /* ops of multi-line members' other SKUs and nodes */
    q->ndec = 0;
    zkc__inv_ml_walk_start(q);
    for (int k = 0; k < q->ngm && q->ndec < ZKC__RES_BATCH; k++) {
        gmem *g = &q->gm[k];
        if (g->st == GM_GONE)
            continue;
        if (g->st == GM_UNREAD && read_entries(q, k) > 0)
            return; /* the last read's reply walks again */
        if (g->st != GM_OK)
            break; /* a bad entry stops the queue */
        int fits = g->e.qty <= avail;
        if (!fits && (g->e.flags & ZKC__RES_F_WAIT))
            break; /* waits for restock, and so does everyone behind it */
        if (g->e.nlines > 1) {
            /* Decided here only when nothing undecided is ahead of it in
             * its other queues (inventory_multiline.c); else it decides
             * itself later. */
            if (!g->ml && zkc__inv_ml_fetch(q, k) > 0)
                return; /* the last read's reply walks again */
            if (!zkc__inv_ml_decidable(q, k, fits, &extra))
                break;
        }
        if (fits) {
            avail -= g->e.qty;
            granted += g->e.qty;
            q->dstate[q->ndec] = ZKC_INVENTORY_RESERVED;
        } else if (!(g->e.flags & ZKC__RES_F_WAIT)) {
            if (k == 0)
                q->short_by = g->e.qty - avail;
            q->dstate[q->ndec] = ZKC_INVENTORY_OUT_OF_STOCK;
        }
        q->dec[q->ndec++] = k;
    }
    if (q->ndec == 0) {
        wait_restock(q, l0->l.qty - l0->sku.available);
        return;
    }
    zkc__sku_rec ours = l0->sku;
    ours.available = avail;
    ours.reserved += granted;
    char skubuf[128];
    int skulen = zkc__sku_encode(&ours, skubuf, sizeof skubuf);
    if (skulen < 0) {
        zkc__inv_rq_fail(q, ZKC_EOVERFLOW, "SKU %s: unit counts overflow", l0->l.sku);
        return;
    }
    /* Layout: our SKU, the other SKUs of granted multi-line members (nsku
     * in all, the reply's tag); per decision its record and its node here;
     * then the multi-line members' other nodes. */
    int cap = 1 + 2 * q->ndec + extra;
    zkc__mop *ops = calloc((size_t)cap, sizeof *ops);
    char **own = calloc((size_t)cap * 2, sizeof *own); /* what the ops point to that we allocated */
    if (!ops || !own)
        abort();
    int nown = 0;
    ops[0].type = granted ? ZKC_REQ_SET : ZKC_REQ_EXISTS; /* refusals only: check the version we read */
    ops[0].path = l0->skupath;
    ops[0].data = granted ? skubuf : NULL;
    ops[0].len = granted ? skulen : 0;
    ops[0].version = l0->sku_ver;
    int nsku = 1 + zkc__inv_ml_sku_ops(q, ops + 1, own);
    nown = nsku - 1;
    zkc__res_rec rec;
    for (int d = 0; d < q->ndec; d++) {
        gmem *g = &q->gm[q->dec[d]];
        zkc__mop *o2 = &ops[nsku + 2 * d];
        int len;
        char *data;
        if (g->ml) {
            data = zkc__inv_ml_record(g->ml, q->dstate[d], &len);
        } else {
            member_record(q, g, q->dstate[d], &rec);
            data = zkc__inv_encode_rec(&rec, &len);
        }
        own[nown++] = data;
        o2[0].type = ZKC_REQ_SET;
        o2[0].path = own[nown++] = zkc__inv_rec_path(q->inv, g->e.id);
        o2[0].data = data;
        o2[0].len = len;
        o2[0].version = -1; /* guarded by the node delete below */
        if (!(own[nown++] = zkc__path_join(l0->qdir, g->name)))
            abort();
        o2[1].type = ZKC_REQ_DELETE;
        o2[1].path = own[nown - 1];
        o2[1].version = -1;
        int j;
        rq *o = d > 0 ? own_member(q, g->name, &j) : NULL;
        if (o) {
            o->in_batch++;
            o->refs++;
            q->mine[d] = o;
        }
    }
    int nops = nsku + 2 * q->ndec;
    int nn = zkc__inv_ml_node_ops(q, ops + nops, own + nown);
    nops += nn;
    nown += nn;
    RQ_SEND_TAG(q, nsku, zkc__multi(q->c, ops, nops, grant_done, q));
    for (int i = 0; i < nown; i++)
        free(own[i]);
    free(ops);
    free(own);
}

/* Multi-line head of all its queues: all lines or none, for itself only. */
static void self_decide(rq *q)
{
    if (decide_stops(q))
        return;
    int64_t short_by = 0;
    for (int i = 0; i < q->n; i++)
        if (q->ln[i].sku.available < q->ln[i].l.qty)
            short_by += q->ln[i].l.qty - q->ln[i].sku.available;
    if (short_by && (q->flags & ZKC__RES_F_WAIT)) {
        wait_restock(q, short_by);
        return;
    }
    int grant = short_by == 0;
    q->short_by = short_by;
    q->ndec = 1;
    q->dec[0] = 0;
    q->dstate[0] = grant ? ZKC_INVENTORY_RESERVED : ZKC_INVENTORY_OUT_OF_STOCK;
    int nsku = q->n;
    int nops = nsku + 1 + q->n;
    zkc__mop ops[2 * ZKC__RES_MAX_LINES + 1];
    char skubuf[ZKC__RES_MAX_LINES][128];
    memset(ops, 0, sizeof ops);
    for (int i = 0; i < nsku; i++) {
        rline *l = &q->ln[i];
        ops[i].path = l->skupath;
        ops[i].version = l->sku_ver;
        if (!grant) {
            /* A refusal rests on these versions: a restock since then makes
             * the transaction fail, and we look again. */
            ops[i].type = ZKC_REQ_EXISTS; /* check version */
            continue;
        }
        zkc__sku_rec s = l->sku;
        s.available -= l->l.qty;
        s.reserved += l->l.qty;
        int len = zkc__sku_encode(&s, skubuf[i], sizeof skubuf[i]);
        if (len < 0) {
            zkc__inv_rq_fail(q, ZKC_EOVERFLOW, "SKU %s: unit counts overflow", l->l.sku);
            return;
        }
        ops[i].type = ZKC_REQ_SET;
        ops[i].data = skubuf[i];
        ops[i].len = len;
    }
    char *rdata = zkc__inv_own_record_op(q, q->dstate[0], ZKC_REQ_SET, -1, &ops[nsku]);
    for (int i = 0; i < q->n; i++) {
        ops[nsku + 1 + i].type = ZKC_REQ_DELETE;
        ops[nsku + 1 + i].path = q->ln[i].m.node;
        ops[nsku + 1 + i].version = -1;
    }
    RQ_SEND(q, zkc__multi(q->c, ops, nops, grant_done, q));
    free(rdata);
}

