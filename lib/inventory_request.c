/* One reservation's life (zkc_inventory_reserve): submission and argument
 * checks, waiting in its queues (each line a member of its queue on the
 * member core, lib/member.c and lib/member_wait.c, which list our place and
 * watch the node ahead; taking over as head, waiting for restock), leaving
 * (withdrawal at a timeout or on destroy) and finishing with the outcome the
 * record says. The protocol (WATCHES, TIMEOUT / CANCEL, CONNECTION STATES) is
 * described at the top of lib/inventory.c; the queue-length check and the
 * enqueue are in inventory_enqueue.c, the head's grant rounds in
 * inventory_grant.c. */
#include "inventory.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void zkc__inv_free_glist(rq *q)
{
    for (int i = 0; i < q->nglist; i++)
        free(q->glist[i]);
    free(q->glist);
    q->glist = NULL;
    q->nglist = 0;
}

/* The granter's window of its queue: the first RES_WINDOW members, in order. */
void zkc__inv_set_glist(rq *q, const zkc__member *m, int n)
{
    zkc__inv_free_glist(q);
    int w = n < RES_WINDOW ? n : RES_WINDOW;
    q->glist = calloc((size_t)w + 1, sizeof *q->glist);
    if (!q->glist)
        abort();
    for (int i = 0; i < w; i++)
        if (!(q->glist[i] = strdup(m[i].name)))
            abort();
    q->nglist = w;
}

void zkc__inv_free_gm(rq *q)
{
    for (int i = 0; i < q->ngm; i++) {
        free(q->gm[i].name);
        zkc__inv_ml_free(q->gm[i].ml);
    }
    free(q->gm);
    q->gm = NULL;
    q->ngm = 0;
}

void zkc__inv_rq_unref(rq *q)
{
    if (--q->refs > 0)
        return;
    for (int i = 0; i < q->n; i++) {
        rline *l = &q->ln[i];
        zkc__qm_forget(&l->m); /* nothing of it is out any more */
        free(l->skupath);
        free(l->qdir);
        free(l->pred);
    }
    free(q->ln);
    free(q->recpath);
    zkc__inv_free_glist(q);
    zkc__inv_free_gm(q);
    free(q->mls);
    free(q->ex);
    free(q->fnode);
    zkc_inventory *inv = q->inv;
    free(q);
    zkc__inv_unref(inv);
}

/* Lose interest in a watch. One whose read is still in flight is left to that
 * read's reply (rq_late, or the reply handler), which drops it. */
void zkc__inv_ws_release(wslot *s)
{
    if (s->w && !s->reading) {
        zkc__watch_drop(s->w);
        s->w = NULL;
    }
}

/* The reply of a read that carried the slot's watch: a failed read set no
 * watch on the server, so ours is dropped. Returns the read's rc. */
int zkc__inv_ws_reply(wslot *s, const zkc__req *r)
{
    s->reading = 0;
    if (r->rc != ZR_OK) {
        zkc__watch_drop(r->watch);
        if (s->w == r->watch)
            s->w = NULL;
    }
    return r->rc;
}

static void drop_watches(rq *q)
{
    zkc__inv_ws_release(&q->rec_w);
    zkc__inv_ws_release(&q->fnode_w);
    for (int i = 0; i < q->n; i++) {
        zkc__qm_settle(&q->ln[i].m);
        q->ln[i].waiting = 0;
        zkc__inv_ws_release(&q->ln[i].sku_w);
    }
}

static void rq_unlink(rq *q)
{
    if (!q->linked)
        return;
    zkc_inventory *inv = q->inv;
    if (q->prev)
        q->prev->next = q->next;
    else
        inv->rqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->linked = 0;
    if (inv->destroy_op && !inv->rqs)
        zkc__inv_destroy_done(inv);
}

/* Our nodes were deleted by a decision (grant, refusal, withdrawal). */
void zkc__inv_forget_nodes(rq *q)
{
    for (int i = 0; i < q->n; i++) {
        zkc__qm_forget(&q->ln[i].m);
        q->ln[i].waiting = 0;
    }
    q->queued = 0;
}

/* We give our members up without a decision: the janitor deletes their
 * nodes (or finds them by the tag, if still being decided) once it can;
 * when the client is closing, the session's end removes them. */
void zkc__inv_janitor_nodes(rq *q)
{
    for (int i = 0; i < q->n; i++) {
        if (q->c->closing)
            zkc__qm_forget(&q->ln[i].m);
        else
            zkc__qm_leave(&q->ln[i].m, 0, NULL, NULL);
        q->ln[i].waiting = 0;
    }
    q->queued = 0;
}

void zkc__inv_rq_finish(rq *q, int status, int state, const char *fmt, ...)
{
    if (q->finished)
        return;
    q->finished = 1;
    zkc__inv_batch_release(q); /* a grant multi of ours may still be out */
    drop_watches(q);
    zkc__inv_janitor_nodes(q); /* members not yet given up must not linger */
    zkc__timer_disarm(q->c, &q->timer);
    if (q->backoff_armed) {
        zkc__txn_finish(&q->grant_txn);
        q->backoff_armed = 0;
        q->busy--;
        q->refs--; /* the timer's; the main ref below keeps q alive */
    }
    res_op *op = q->op;
    q->op = NULL;
    if (op) {
        op->state = (zkc_inventory_state)state;
        if (fmt) {
            char msg[256];
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(msg, sizeof msg, fmt, ap);
            va_end(ap);
            zkc__op_finish(&op->op, status, "%s", msg);
        } else {
            zkc__op_finish(&op->op, status, NULL);
        }
    }
    rq_unlink(q); /* the last one out completes a waiting zkc_inventory_destroy */
    zkc__inv_rq_unref(q);
}

/* A decided record: the caller hears exactly what it says. */
void zkc__inv_finish_decided(rq *q, int state)
{
    switch (state) {
    case ZKC_INVENTORY_RESERVED:
    case ZKC_INVENTORY_SOLD:
        zkc__inv_rq_finish(q, 0, state, NULL);
        break;
    case ZKC_INVENTORY_OUT_OF_STOCK:
        zkc__inv_rq_finish(q, ZKC_EOUTOFSTOCK, state, "request %s: not enough stock (fail-fast)", q->id);
        break;
    case ZKC_INVENTORY_TIMED_OUT:
        zkc__inv_rq_finish(q, ZKC_ETIMEDOUT, state, "request %s: left the queue at its timeout", q->id);
        break;
    default:
        zkc__inv_rq_finish(q, ZKC_EEXISTS, state, "request %s: its reservation already ended (%s); the id is spent",
                           q->id, zkc__res_state_name(state));
        break;
    }
}

/* Stop: leave the queue first if we are in it (step() does it). */
void zkc__inv_rq_fail(rq *q, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    zkc__inv_first_error(&q->leave, q->leave_msg, sizeof q->leave_msg, status, fmt, ap);
    va_end(ap);
    zkc__inv_step(q);
}

void zkc__inv_group_err(rq *q, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    zkc__inv_first_error(&q->err, q->err_msg, sizeof q->err_msg, status, fmt, ap);
    va_end(ap);
}

/* A reply for a finished request: clean up what it carries. */
void zkc__inv_rq_late(rq *q, zkc__req *r)
{
    if (r->watch) {
        wslot *slots[2 + ZKC__RES_MAX_LINES];
        int ns = 0;
        slots[ns++] = &q->rec_w;
        slots[ns++] = &q->fnode_w;
        for (int i = 0; i < q->n; i++)
            slots[ns++] = &q->ln[i].sku_w;
        for (int i = 0; i < ns; i++)
            if (slots[i]->w == r->watch) {
                slots[i]->w = NULL;
                slots[i]->reading = 0;
            }
        zkc__watch_drop(r->watch);
    }
    /* Queue nodes created for a request that is over must not linger. */
    if (r->kind == ZKC_REQ_MULTI && r->rc == ZR_OK && !q->c->closing)
        for (int i = 0; i < r->nops; i++)
            if (r->ops[i].type == ZKC_REQ_CREATE && (r->ops[i].flags & ZC_EPHEMERAL) && r->ops[i].created)
                zkc__janitor_delete(q->c, r->ops[i].created);
}


/* ---------------------------------------------------------------- records */

/* The op that writes our own record in `state` (type ZKC_REQ_CREATE or
 * ZKC_REQ_SET, conditional on `version`). Returns the encoded bytes op points
 * to: the caller frees them once the multi is sent. */
char *zkc__inv_own_record_op(rq *q, int state, int type, int32_t version, zkc__mop *op)
{
    zkc__res_rec *rec = calloc(1, sizeof *rec);
    if (!rec)
        abort();
    rec->state = state;
    rec->flags = q->flags;
    rec->hold_ms = q->hold_ms;
    memcpy(rec->nonce, q->nonce, sizeof rec->nonce);
    rec->owner = q->owner;
    rec->n = q->n;
    for (int i = 0; i < q->n; i++)
        rec->line[i] = q->ln[i].l;
    int len;
    char *data = zkc__inv_encode_rec(rec, &len);
    free(rec);
    op->type = type;
    op->path = q->recpath;
    op->data = data;
    op->len = len;
    op->version = version;
    return data;
}

char *zkc__inv_encode_rec(const zkc__res_rec *rec, int *len)
{
    char *buf = malloc(RES_REC_BUF);
    if (!buf)
        abort();
    *len = zkc__resrec_encode(rec, buf, RES_REC_BUF);
    if (*len < 0)
        abort(); /* validated at submission */
    return buf;
}

/* Do our lines equal the record's (as sets)? */
int zkc__inv_same_lines(rq *q, const zkc__res_rec *rec)
{
    if (rec->n != q->n)
        return 0;
    for (int i = 0; i < q->n; i++) {
        int found = 0;
        for (int j = 0; j < rec->n; j++)
            if (strcmp(rec->line[j].sku, q->ln[i].l.sku) == 0 && rec->line[j].qty == q->ln[i].l.qty)
                found = 1;
        if (!found)
            return 0;
    }
    return 1;
}

int zkc__inv_our_node_name(rline *l, const char *name)
{
    return l->m.node_name && strcmp(l->m.node_name, name) == 0;
}

/* Sorted queue members (only names of our own form), pointing into names:
 * the granter's window (the member core lists a member's own position). */
int zkc__inv_parse_queue(char **names, int n, zkc__member **out)
{
    char **ok = calloc((size_t)n + 1, sizeof *ok);
    zkc__member *m = calloc((size_t)n + 1, sizeof *m);
    if (!ok || !m)
        abort();
    int k = 0;
    for (int i = 0; i < n; i++)
        if (zkc__resname_ok(names[i]))
            ok[k++] = names[i];
    int cnt = zkc__members_parse(ok, k, m, NULL, NULL);
    free(ok);
    *out = m;
    return cnt;
}

/* ---------------------------------------------------------------- queued */

void zkc__inv_sku_fired(zkc__watch *w, int ev)
{
    rline *l = w->ctx;
    rq *q = l->q;
    ZKC__UNUSED(ev);
    if (l->sku_w.w == w)
        l->sku_w.w = NULL;
    if (q->finished)
        return;
    if (q->phase == P_WAITSTOCK)
        q->recheck = 1;
    zkc__inv_step(q);
}

RQ_DONE(missing_done)
{
    zkc__res_rec rec;
    const char *why = NULL;
    if (r->rc == ZR_OK && zkc__resrec_decode(r->value, r->valuelen, &rec, &why) == 0 &&
        rec.state != ZKC_INVENTORY_PENDING && strcmp(rec.nonce, q->nonce) == 0) {
        zkc__inv_forget_nodes(q);
        zkc__inv_finish_decided(q, rec.state);
        return;
    }
    /* Our node vanished and nobody decided: the session that owned it ended
     * (or someone deleted it). */
    zkc__inv_janitor_nodes(q);
    zkc__inv_rq_finish(q, ZKC_ESESSIONLOST, ZKC_INVENTORY_PENDING,
                       "request %s: its queue node vanished without a decision (the session that queued it ended?); "
                       "look it up by id",
                       q->id);
}

RQ_DONE(rec_done)
{
    if (r->watch && r->watch == q->rec_w.w)
        q->rec_w.reading = 0; /* this read carried our record watch */
    if (r->rc != ZR_OK) {
        if (r->watch) {
            zkc__watch_drop(r->watch);
            if (q->rec_w.w == r->watch)
                q->rec_w.w = NULL;
        }
        zkc__inv_rq_fail(q, r->rc == ZR_NONODE ? ZKC_EBADDATA : zkc__inv_req_error(r->rc),
                         "request %s: reading its record %s: %s",
                         q->id, q->recpath, r->rc == ZR_NONODE ? "deleted while queued" : zkc__zrc_name(r->rc));
        return;
    }
    zkc__res_rec rec;
    const char *why = NULL;
    if (zkc__resrec_decode(r->value, r->valuelen, &rec, &why) != 0) {
        zkc__inv_rq_fail(q, ZKC_EBADDATA, "request record %s: %s", q->recpath, why);
        return;
    }
    if (strcmp(rec.nonce, q->nonce) != 0) {
        /* Someone queued this id again: ours must be gone. */
        q->missing = 1;
        zkc__inv_step(q);
        return;
    }
    if (rec.state != ZKC_INVENTORY_PENDING) {
        zkc__inv_forget_nodes(q);
        zkc__inv_finish_decided(q, rec.state);
        return;
    }
    q->rec_ver = r->stat.version;
    zkc__inv_step(q);
}

/* ---------------------------------------------------------------- our members
 * Each line is a member of its SKU's queue (lib/member.c): the enqueue multi
 * creates it (inventory_enqueue.c), the member core lists the queue and finds
 * our place, watches the node ahead and gives the node up. Its requests count
 * in the request's chain like our own (busy), so step() goes on once the last
 * reply of a chain is handled. */

static rq *rq_of(zkc__qm *m)
{
    return ZKC__CONTAINER_OF(m, rline, m)->q;
}

static void m_ref(zkc__qm *m)
{
    rq *q = rq_of(m);
    q->refs++;
    q->busy++;
}

static void m_unref(zkc__qm *m)
{
    rq *q = rq_of(m);
    q->busy--;
    zkc__inv_step(q);
    zkc__inv_rq_unref(q);
}

/* joined, or absent (decided by the tag: not ours); only recovery waits. */
static void m_decided(zkc__qm *m)
{
    rq *q = rq_of(m);
    if (q->phase == P_RECOVER && !q->finished)
        zkc__inv_recover_check(q);
}

/* Our place in one queue: head, or the node to watch ahead of us. */
static void m_listed(zkc__qm *m, const zkc__member *v, int n, int self)
{
    rline *l = ZKC__CONTAINER_OF(m, rline, m);
    rq *q = l->q;
    const char *pred = self > 0 ? v[self - 1].name : NULL;
    if (!pred || !l->pred || strcmp(l->pred, pred) != 0) {
        zkc__qm_settle(m);
        l->waiting = 0;
        free(l->pred);
        l->pred = pred ? strdup(pred) : NULL;
        if (pred && !l->pred)
            abort();
    }
    l->head = self == 0;
    zkc__inv_qlen_seen(q->inv, l->qdir, m->listed_children);
    if (self == 0 && q->n == 1)
        zkc__inv_set_glist(q, v, n); /* the granter's first round uses this very listing */
}

static void m_moved(zkc__qm *m, int how)
{
    rline *l = ZKC__CONTAINER_OF(m, rline, m);
    rq *q = l->q;
    l->waiting = 0;
    if (q->finished)
        return;
    if (how == ZKC__QM_GONE) {
        /* Usually the batch that deleted it decided us too (a multi-line
         * request as well, when nothing undecided was ahead of it in its
         * other queues: inventory_multiline.c): the record says so without
         * a listing.
         * When the node ahead was the head at our last listing, we are the
         * head now: sequence numbers only grow, nobody queues ahead of us
         * later (member_wait.c), so a multi-line request, whose round needs
         * all its queues, takes over without listing this one again. */
        if (q->n > 1 && m->listed_self == 1)
            l->head = 1;
        else
            l->dirty = 1;
        q->check_rec = 1;
    }
    zkc__inv_step(q);
}

static void m_failed(zkc__qm *m, int status, const char *msg)
{
    rline *l = ZKC__CONTAINER_OF(m, rline, m);
    rq *q = l->q;
    l->waiting = 0;
    if (q->finished)
        return;
    if (q->phase == P_RECOVER) {
        /* The record already says the enqueue landed: whatever this failed
         * with, "nothing applied" would be false. */
        zkc__inv_group_err(q, ZKC_EUNKNOWN,
                           "request %s: queued (its record says so), but finding its node after a connection loss "
                           "failed: %s; look it up by id",
                           q->id, msg);
        zkc__qm_leave(m, 0, NULL, NULL); /* the janitor looks for it by the tag */
        zkc__inv_recover_check(q);
    } else if (status == ZKC_ESESSIONLOST) {
        q->missing = 1; /* our node is gone from the listing: ask the record */
        zkc__inv_step(q);
    } else {
        zkc__inv_rq_fail(q, status, "request %s: %s", q->id, msg);
    }
}

/* No ops->gone: our record tells us when a decision deleted our nodes
 * (no_own_watch), and a listing when anything else did. */
static const zkc__qm_ops inv_member_ops = {m_ref,    m_unref, m_decided,       m_listed, m_moved,
                                           m_failed, NULL,    zkc__resname_ok, m_decided};

void zkc__inv_line_init(rline *l)
{
    l->m.ops = &inv_member_ops;
    l->m.c = l->q->c;
    l->m.dir = l->qdir;
    l->m.tag = ZKC__RES_NODE_TAG;
    l->m.node_data = l->ent;
    l->m.what = "inventory queue";
    l->m.no_own_watch = 1;
}

static void read_record_watched(rq *q)
{
    zkc__watch *w = NULL;
    if (!q->rec_w.w) {
        w = zkc__watch_new(q->c, zkc__inv_follow_rec_fired, q);
        if (!w)
            abort();
        q->rec_w.w = w;
        q->rec_w.reading = 1;
    }
    RQ_SEND(q, zkc__get(q->c, q->recpath, w, rec_done, q));
}

/* What a queued request does next, when nothing is in flight. Independent
 * reads go out together: the record (with its watch) and the listings, then
 * the watches on the nodes ahead. */
static void queued_step(rq *q)
{
    if (q->missing) {
        RQ_SEND(q, zkc__get(q->c, q->recpath, NULL, missing_done, q));
        return;
    }
    if (q->dirty_rec || q->check_rec) {
        /* Alone: if it says decided, nothing else is needed. Watched only by
         * a head waiting for restock (below): a watch set by a read that
         * finds us decided would have to be removed with one more request. */
        q->dirty_rec = q->check_rec = 0;
        if (q->phase == P_WAITSTOCK)
            read_record_watched(q);
        else
            RQ_SEND(q, zkc__get(q->c, q->recpath, NULL, rec_done, q));
        return;
    }
    /* The lead line first, the others once it is the head of its queue
     * (issue 19). Until then nobody needs our places there: only a head of
     * one of our queues decides us (its batch, or we ourselves once we head
     * them all), and a batch that decides us deletes all that is ahead of us
     * in our other queues, so the node we watch ahead of our lead line goes
     * too and sends us to our record. The lead is the line whose queue this
     * object saw longest, where a batch is the likeliest to decide us: in a
     * flash sale, most orders with a line on the hot SKU never list, nor
     * watch, their other queues. A line left dirty keeps its last node ahead
     * (one still ahead of ours), and is listed in its turn. */
    const rline *lead = &q->ln[q->lead];
    int others = lead->head && !lead->dirty;
    int sent = 0;
    for (int i = 0; i < q->n; i++) {
        if (q->ln[i].dirty && (i == q->lead || others)) {
            q->ln[i].dirty = 0;
            zkc__qm_list(&q->ln[i].m); /* m_listed */
            sent++;
        }
    }
    if (sent)
        return;
    int heads = 0;
    for (int i = 0; i < q->n; i++)
        heads += q->ln[i].head;
    if (heads == q->n) {
        if (q->phase == P_WAITSTOCK && !q->recheck) {
            if (!q->rec_w.w)
                read_record_watched(q);
            return;
        }
        q->recheck = 0;
        zkc__inv_round_start(q);
        return;
    }
    if (q->try_mode) {
        zkc__inv_rq_fail(q, ZKC_ETIMEDOUT, "request %s: other requests are queued ahead (timeout 0: not waiting)",
                         q->id);
        return;
    }
    for (int i = 0; i < q->n; i++) {
        rline *l = &q->ln[i];
        if (!l->head && l->pred && !l->waiting) {
            l->waiting = 1;
            zkc__qm_wait(&l->m, l->pred); /* m_moved */
        }
    }
    /* No watch on our record while we wait behind others (issue 19: one
     * read per order fewer). Only a batch granter decides a waiting
     * request, and it decides a prefix of its queue (the walk stops at the
     * first member it cannot decide; a multi-line member only when all
     * ahead of it in its other queues goes in the same multi), so whenever
     * we are decided the nodes we watch are gone too, and their watches
     * (or, set too late, their reads finding no node) send us to our
     * record. The head waiting for restock keeps its record watch (above). */
}

/* ---------------------------------------------------------------- leaving */

static void withdraw(rq *q);

RQ_DONE(leave_rec_done)
{
    zkc__res_rec rec;
    const char *why = NULL;
    if (r->rc == ZR_OK && zkc__resrec_decode(r->value, r->valuelen, &rec, &why) == 0 &&
        strcmp(rec.nonce, q->nonce) == 0) {
        if (rec.state == ZKC_INVENTORY_TIMED_OUT) {
            zkc__inv_forget_nodes(q); /* deleted by our own withdrawal */
            zkc__inv_rq_finish(q, q->leave, ZKC_INVENTORY_TIMED_OUT, "%s", q->leave_msg);
            return;
        }
        if (rec.state != ZKC_INVENTORY_PENDING) {
            /* A granter decided first: that is the outcome. */
            zkc__inv_forget_nodes(q);
            zkc__inv_finish_decided(q, rec.state);
            return;
        }
        if (!q->nodes_gone && r->stat.version == q->rec_ver && q->withdraws < 3) {
            withdraw(q); /* our withdrawal did not apply: again */
            return;
        }
    }
    zkc__inv_janitor_nodes(q);
    zkc__inv_rq_finish(q, q->leave, q->nodes_gone ? ZKC_INVENTORY_ABANDONED : ZKC_INVENTORY_PENDING,
                       "%s (could not withdraw it cleanly: %s; look it up by id)", q->leave_msg,
                       r->rc != ZR_OK  ? zkc__zrc_name(r->rc)
                       : why           ? why
                       : q->nodes_gone ? "its queue nodes were gone"
                                       : "");
}

RQ_DONE(leave_sync_done)
{
    ZKC__UNUSED(r);
    RQ_SEND(q, zkc__get(q->c, q->recpath, NULL, leave_rec_done, q));
}

RQ_DONE(leave_done)
{
    if (r->rc == ZR_OK) {
        zkc__inv_forget_nodes(q);
        zkc__inv_rq_finish(q, q->leave, ZKC_INVENTORY_TIMED_OUT, "%s", q->leave_msg);
        return;
    }
    if (zkc__zrc_indeterminate(r->rc)) {
        RQ_SEND(q, zkc__sync(q->c, q->recpath, leave_sync_done, q));
        return;
    }
    int k = zkc__inv_multi_failed(r);
    if (k >= 0) {
        /* Someone got there first (a granter), or our nodes are gone. */
        if (r->ops[k].type == ZKC_REQ_DELETE && r->ops[k].rc == ZR_NONODE)
            q->nodes_gone = 1;
        RQ_SEND(q, zkc__get(q->c, q->recpath, NULL, leave_rec_done, q));
        return;
    }
    zkc__inv_janitor_nodes(q);
    zkc__inv_rq_finish(q, q->leave, ZKC_INVENTORY_PENDING,
                       "%s (could not withdraw it: %s; its queue nodes will be deleted once a server answers; look it "
                       "up by id)",
                       q->leave_msg, zkc__zrc_name(r->rc));
}

/* multi{delete our queue nodes, record PENDING -> TIMED_OUT at our version}. */
static void withdraw(rq *q)
{
    q->withdraws++;
    q->phase = P_LEAVE;
    zkc__mop ops[ZKC__RES_MAX_LINES + 1];
    memset(ops, 0, sizeof ops);
    int nops = 0;
    for (int i = 0; i < q->n; i++) {
        if (!q->ln[i].m.node)
            continue;
        ops[nops].type = ZKC_REQ_DELETE;
        ops[nops].path = q->ln[i].m.node;
        ops[nops].version = -1;
        nops++;
    }
    char *data = zkc__inv_own_record_op(q, ZKC_INVENTORY_TIMED_OUT, ZKC_REQ_SET, q->rec_ver, &ops[nops++]);
    RQ_SEND(q, zkc__multi(q->c, ops, nops, leave_done, q));
    free(data);
}

static void rq_leave(rq *q)
{
    if (!q->queued) {
        int st = q->ex ? q->ex->state : ZKC_INVENTORY_PENDING;
        zkc__inv_rq_finish(q, q->leave, st == ZKC_INVENTORY_PENDING ? ZKC_INVENTORY_PENDING : st, "%s", q->leave_msg);
        return;
    }
    drop_watches(q);
    if (q->c->state != ZKC__S_CONNECTED || q->c->closing) {
        /* No server to tell now: do not make the caller wait for one. */
        zkc__inv_janitor_nodes(q);
        zkc__inv_rq_finish(q, q->leave, ZKC_INVENTORY_PENDING,
                           "%s (no server reachable to withdraw it; its queue nodes will be deleted once one answers; "
                           "look it up by id)",
                           q->leave_msg);
        return;
    }
    withdraw(q);
}

/* ---------------------------------------------------------------- driving */

void zkc__inv_step(rq *q)
{
    if (q->finished || q->busy)
        return;
    if (q->leave) {
        rq_leave(q);
        return;
    }
    if (q->in_batch)
        return; /* our granter's multi is out: its reply tells us (inventory_grant.c) */
    switch (q->phase) {
    case P_START:
        zkc__inv_check_limits(q);
        break;
    case P_QUEUED:
    case P_WAITSTOCK:
        queued_step(q);
        break;
    case P_FOLLOW:
        if (q->follow_dirty) {
            q->follow_dirty = 0;
            zkc__inv_ws_release(&q->rec_w);
            zkc__inv_ws_release(&q->fnode_w);
            zkc__inv_existing_read(q);
        } else if (q->try_mode) {
            zkc__inv_rq_finish(q, ZKC_ETIMEDOUT, ZKC_INVENTORY_PENDING,
                               "request %s: another worker's request under this id is still queued (timeout 0: not "
                               "waiting)", q->id);
        }
        break;
    default:
        break;
    }
}

static void rq_timer_fired(zkc__timer *t)
{
    rq *q = ZKC__CONTAINER_OF(t, rq, timer);
    if (q->finished)
        return;
    if (!q->leave) {
        q->leave = ZKC_ETIMEDOUT;
        snprintf(q->leave_msg, sizeof q->leave_msg, "request %s: not decided within %d ms", q->id, q->timeout_ms);
    }
    zkc__inv_step(q);
}

/* ---------------------------------------------------------------- reserve API */

static void res_start(zkc__op *op)
{
    res_op *ro = ZKC__CONTAINER_OF(op, res_op, op);
    zkc_inventory *inv = ro->inv;
    if (inv->destroyed || inv->destroy_op) {
        zkc__op_finish(op, ZKC_ECLOSED, "inventory %s is being destroyed", inv->root);
        return;
    }
    rq *q = calloc(1, sizeof *q);
    if (!q || !(q->ln = calloc((size_t)ro->n, sizeof *q->ln))) {
        free(q);
        zkc__op_finish(op, ZKC_ENOMEM, "out of memory");
        return;
    }
    zkc__inv_ref(inv);
    q->inv = inv;
    q->c = inv->c;
    q->op = ro;
    q->refs = 1;
    snprintf(q->id, sizeof q->id, "%s", ro->id);
    q->recpath = zkc__inv_rec_path(inv, ro->id);
    q->flags = ro->flags;
    q->hold_ms = ro->hold_ms;
    q->timeout_ms = ro->timeout_ms;
    q->try_mode = ro->timeout_ms == 0;
    q->n = ro->n;
    for (int i = 0; i < q->n; i++) {
        rline *l = &q->ln[i];
        l->q = q;
        l->idx = i;
        l->l = ro->lines[i];
        l->skupath = zkc__inv_sku_path(inv, l->l.sku);
        l->qdir = zkc__inv_queue_dir(inv, l->l.sku);
        zkc__inv_line_init(l);
    }
    zkc__timer_init(&q->timer, rq_timer_fired);
    zkc__inv_grant_init(q);
    q->next = inv->rqs;
    if (inv->rqs)
        inv->rqs->prev = q;
    inv->rqs = q;
    q->linked = 1;
    if (ro->timeout_ms > 0)
        zkc__timer_arm(q->c, &q->timer, zkc__now_ms() + ro->timeout_ms);
    q->phase = P_START;
    zkc__inv_step(q);
}

static void res_invoke(zkc__op *op)
{
    res_op *ro = ZKC__CONTAINER_OF(op, res_op, op);
    if (ro->cb)
        ro->cb(ro->inv, op->status, ro->id, ro->state, ro->ud);
}

static void res_release(zkc__op *op)
{
    res_op *ro = ZKC__CONTAINER_OF(op, res_op, op);
    zkc_inventory *inv = ro->inv;
    free(ro->lines);
    free(ro);
    zkc__inv_unref(inv);
}

int zkc__inv_check_inv(zkc_inventory *inv, const char *fn)
{
    if (!inv)
        return zkc__err(ZKC_EINVAL, "%s: inventory is NULL", fn);
    if (__atomic_load_n(&inv->api_destroyed, __ATOMIC_ACQUIRE))
        return zkc__err(ZKC_EINVAL, "%s: inventory %s was destroyed", fn, inv->root);
    return 0;
}

static int res_submit(zkc_inventory *inv, const char *id, const zkc_inventory_line *lines, int n, const zkc_inventory_reserve_options *o,
                      int timeout_ms, char *id_out, zkc_inventory_state *state, zkc_inventory_reserve_cb cb, void *ud, int blocking)
{
    const char *fn = blocking ? "zkc_inventory_reserve" : "zkc_inventory_reserve_async";
    if (state)
        *state = ZKC_INVENTORY_PENDING;
    int rc = zkc__inv_check_inv(inv, fn);
    if (rc)
        return rc;
    if (!lines || n < 1 || n > ZKC__RES_MAX_LINES)
        return zkc__err(ZKC_EINVAL, "%s: %d line(s); 1..%d allowed", fn, lines ? n : 0, ZKC__RES_MAX_LINES);
    if (timeout_ms < 0 && timeout_ms != ZKC_FOREVER)
        return zkc__err(ZKC_EINVAL, "%s: timeout %d ms is negative (use ZKC_FOREVER)", fn, timeout_ms);
    if (!blocking && !cb)
        return zkc__err(ZKC_EINVAL, "%s: callback is NULL", fn);
    if (!id && blocking && !id_out)
        return zkc__err(ZKC_EINVAL, "%s: no id given and nowhere to write the generated one (id_out is NULL)", fn);
    if (id && (rc = zkc__name_check(id, "request id")) != 0)
        return rc;
    int64_t hold = RES_DEFAULT_HOLD_MS;
    int flags = 0;
    if (o) {
        if (o->hold_ms < 0)
            return zkc__err(ZKC_EINVAL, "%s: hold_ms %d is negative", fn, o->hold_ms);
        if (o->hold_ms > 0)
            hold = o->hold_ms;
        if (o->wait_for_restock)
            flags |= ZKC__RES_F_WAIT;
    }
    res_op *ro = calloc(1, sizeof *ro);
    if (!ro || !(ro->lines = calloc((size_t)n, sizeof *ro->lines))) {
        free(ro);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    /* Lines of one SKU add up: one queue node per SKU. */
    int m = 0;
    for (int i = 0; i < n; i++) {
        if ((rc = zkc__name_check(lines[i].sku, "SKU")) != 0)
            goto refuse;
        if (lines[i].qty < 1 || lines[i].qty > ZKC__RES_QTY_MAX) {
            rc = zkc__err(ZKC_EINVAL, "%s: line %d (SKU %s): quantity %" PRId64 " is outside 1..%" PRId64, fn, i,
                          lines[i].sku, lines[i].qty, ZKC__RES_QTY_MAX);
            goto refuse;
        }
        int j = 0;
        while (j < m && strcmp(ro->lines[j].sku, lines[i].sku) != 0)
            j++;
        if (j == m) {
            snprintf(ro->lines[m].sku, sizeof ro->lines[m].sku, "%s", lines[i].sku);
            m++;
        }
        ro->lines[j].qty += lines[i].qty;
        if (ro->lines[j].qty > ZKC__RES_QTY_MAX) {
            rc = zkc__err(ZKC_EINVAL, "%s: SKU %s: total quantity is above %" PRId64, fn, lines[i].sku,
                          ZKC__RES_QTY_MAX);
            goto refuse;
        }
    }
    ro->n = m;
    if (id) {
        snprintf(ro->id, sizeof ro->id, "%s", id);
    } else {
        char u[37];
        zkc__uuid(u);
        snprintf(ro->id, sizeof ro->id, "%s", u);
    }
    if (id_out && strlen(ro->id) < ZKC_INVENTORY_ID_MAX)
        snprintf(id_out, ZKC_INVENTORY_ID_MAX, "%s", ro->id);
    ro->op.c = inv->c;
    ro->op.invoke = res_invoke;
    ro->op.release = res_release;
    ro->inv = inv;
    ro->flags = flags;
    ro->hold_ms = hold;
    ro->timeout_ms = timeout_ms;
    ro->cb = cb;
    ro->ud = ud;
    ro->state = ZKC_INVENTORY_PENDING;
    zkc__inv_ref(inv);
    zkc__metrics_tag(&ro->op.ms, inv->c, ZKC_MK_INVENTORY, ZKC_HIST_RESERVE, inv->root);
    rc = zkc__op_run(&ro->op, res_start, blocking);
    if (!blocking)
        return rc;
    if (state)
        *state = ro->state;
    ro->op.release(&ro->op);
    return rc;
refuse:
    free(ro->lines);
    free(ro);
    return rc;
}

int zkc_inventory_reserve(zkc_inventory *inv, const char *id, const zkc_inventory_line *lines, int n,
                          const zkc_inventory_reserve_options *o, int timeout_ms, char *id_out, zkc_inventory_state *state)
{
    return res_submit(inv, id, lines, n, o, timeout_ms, id_out, state, NULL, NULL, 1);
}

int zkc_inventory_reserve_async(zkc_inventory *inv, const char *id, const zkc_inventory_line *lines, int n,
                                const zkc_inventory_reserve_options *o, int timeout_ms, zkc_inventory_reserve_cb cb, void *ud)
{
    return res_submit(inv, id, lines, n, o, timeout_ms, NULL, NULL, cb, ud, 0);
}

