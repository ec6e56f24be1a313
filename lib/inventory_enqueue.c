/* Putting a reservation into its queues: the enqueue multi (record + one
 * member-core create per line, zkc__qm_create_op), COMBINING the fresh
 * enqueues of one client into one multi, recovering an enqueue whose outcome
 * a connection loss hid (the record names the nonce that won; the member
 * core finds each node by it, its tag), and an id seen before (its outcome, a
 * re-enqueue, or following another worker's request under the same id), and
 * before all that the queue-length check (shared by the requests of one
 * object). The protocol (ENQUEUE, LIMIT) is described at the top of
 * lib/inventory.c. */
#include "inventory.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- the queue-length check before enqueueing */

RQ_DONE(limit_sync_done)
{
    if (r->rc != ZR_OK && r->rc != ZR_NONODE) {
        /* Unfenced, a second "no queue" would rest on the same stale view. */
        zkc__inv_rq_finish(q, zkc__inv_req_error(r->rc), ZKC_INVENTORY_PENDING,
                           "request %s: catching up with the servers before refusing: %s", q->id,
                           zkc__zrc_name(r->rc));
        return;
    }
    zkc__inv_check_limits(q);
}

static void limits_checked(rq *q);

/* One line's queue length is known (rc, and the queue's numChildren). */
static void limit_line(rq *q, int line, int rc, int nchildren)
{
    rline *l = &q->ln[line];
    if (rc == ZR_NONODE && q->limit_synced <= 0) {
        /* Maybe our server lags the one that created it. Every line of a
         * multi-line order can miss its queue in the same first look: each
         * one waits for the second look, none refuses. */
        q->limit_synced = -1;
    } else if (rc == ZR_NONODE)
        zkc__inv_group_err(q, ZKC_ENONODE, "SKU %s has no queue under %s (zkc_inventory_restock creates the SKU)",
                           l->l.sku, q->inv->sku_dir);
    else if (rc != ZR_OK)
        zkc__inv_group_err(q, zkc__inv_req_error(rc), "request %s: reading the queue of SKU %s: %s", q->id, l->l.sku,
                           zkc__zrc_name(rc));
    else if (nchildren >= ZKC__RES_QUEUE_MAX)
        zkc__inv_group_err(q, ZKC_ELIMIT,
                           "SKU %s: its queue already holds %d waiting requests; the limit is %d (one listing must "
                           "stay within jute.maxbuffer)",
                           l->l.sku, nchildren, ZKC__RES_QUEUE_MAX);
    if (!q->busy)
        limits_checked(q);
}

/* Every line's length is known: refuse, look again, or enqueue. */
static void limits_checked(rq *q)
{
    if (q->err) {
        zkc__inv_rq_finish(q, q->err, ZKC_INVENTORY_PENDING, "%s", q->err_msg);
        return;
    }
    if (q->limit_synced < 0) {
        /* A refusal must rest on what the servers say now: catch up, look
         * again. Through the quorum, not a sync: a sync promises nothing
         * when the session is on the leader (req.c, the fence). The docker
         * tier's "SKU Z has no queue" for a SKU restocked before was not that
         * but the second line of a two-line order refusing before this look
         * (test_reserve_faults' stale_view). */
        q->limit_synced = 1;
        RQ_SEND(q, zkc__fence_get(q->c, q->inv->sku_dir, limit_sync_done, q));
        return;
    }
    zkc__inv_enq_send(q);
}

/* Lengths seen lately (issue 19): a queue this object saw within the last
 * QLEN_FRESH_MS holding at most half the limit is not looked at again before
 * an enqueue. In a flash sale every order of a process checked every line's
 * queue, one stat per line and order (1.9 per order), where the answer was
 * nearly always a few dozen: the listings our requests make after
 * enqueueing and the stats already tell. A refusal still rests on a stat of
 * its own (a length near the limit is never taken from here). What this
 * changes in the bound (inventory.c, LIMIT): a queue can exceed the limit by
 * what is enqueued into it within QLEN_FRESH_MS of a look that found it at
 * most half full, besides the concurrent enqueuers that pass one stat
 * together; 5000 requests in a second on one queue is a rate the servers'
 * write rate (a few thousand transactions a second) keeps out of reach of
 * one SKU's waiting line, as the whole point of the limit is a listing that
 * fits jute.maxbuffer with room to spare. */
#define QLEN_FRESH_MS 1000
#define QLEN_KEEP 64 /* queues remembered per object (the newest) */

typedef struct qlen {
    struct qlen *next;
    char *qdir;
    int n;
    int64_t at;
} qlen;

static qlen *qlen_find(zkc_inventory *inv, const char *qdir)
{
    qlen *x = inv->qlens;
    while (x && strcmp(x->qdir, qdir) != 0)
        x = x->next;
    return x;
}

void zkc__inv_qlen_seen(zkc_inventory *inv, const char *qdir, int n)
{
    qlen *e = qlen_find(inv, qdir);
    if (e) {
        qlen **p = &inv->qlens;
        while (*p != e)
            p = &(*p)->next;
        *p = e->next; /* to the front, below */
    } else {
        if (!(e = calloc(1, sizeof *e)) || !(e->qdir = strdup(qdir))) {
            free(e);
            return; /* then the next enqueue looks itself */
        }
    }
    e->n = n;
    e->at = zkc__now_ms();
    e->next = inv->qlens;
    inv->qlens = e;
    /* Keep the newest QLEN_KEEP. */
    int k = 0;
    for (qlen **p = &inv->qlens; *p; p = &(*p)->next)
        if (++k == QLEN_KEEP) {
            for (qlen *x = (*p)->next, *nx; x; x = nx) {
                nx = x->next;
                free(x->qdir);
                free(x);
            }
            (*p)->next = NULL;
            break;
        }
}

void zkc__inv_qlens_free(zkc_inventory *inv)
{
    for (qlen *x = inv->qlens, *nx; x; x = nx) {
        nx = x->next;
        free(x->qdir);
        free(x);
    }
    inv->qlens = NULL;
}

int zkc__inv_qlen_longest(rq *q)
{
    int best = 0, best_n = -1;
    for (int i = 0; i < q->n; i++) {
        const qlen *x = qlen_find(q->inv, q->ln[i].qdir);
        int n = x ? x->n : 0;
        if (n > best_n) {
            best = i;
            best_n = n;
        }
    }
    return best;
}

/* 1: qdir was seen lately well below the limit; *n is what was seen. */
static int qlen_known(zkc_inventory *inv, const char *qdir, int *n)
{
    const qlen *x = qlen_find(inv, qdir);
    if (!x)
        return 0;
    *n = x->n;
    return x->n <= ZKC__RES_QUEUE_MAX / 2 && zkc__now_ms() - x->at <= QLEN_FRESH_MS;
}

/* Shared checks (issue 19): the requests of one object that check a queue's
 * length while a check of it is out take its answer, as a flash sale's
 * workers of one process do; one stat per queue and round trip instead of
 * one per order. That answer may predate the request by a round trip, which
 * changes nothing the check promises: it was never atomic with the enqueue
 * (concurrent enqueuers may all pass it: inventory.c, LIMIT). A second look
 * after a missing queue must come after its fence, so it is sent alone. */
typedef struct lwait {
    rq *q;
    int line;
    struct lwait *next;
} lwait;

typedef struct lcheck {
    struct lcheck *next;
    char *qdir;
    lwait *first, **tail;
} lcheck;

static void lcheck_done(zkc__req *r)
{
    lcheck *lc = r->ctx;
    zkc_inventory *inv = lc->first->q->inv; /* the waiters' refs hold it */
    for (lcheck **p = &inv->lchecks; *p; p = &(*p)->next)
        if (*p == lc) {
            *p = lc->next;
            break;
        }
    if (r->rc == ZR_OK)
        zkc__inv_qlen_seen(inv, lc->qdir, r->stat.num_children);
    for (lwait *w = lc->first, *nx; w; w = nx) {
        nx = w->next;
        rq *q = w->q;
        q->busy--;
        if (!q->finished)
            limit_line(q, w->line, r->rc, r->stat.num_children);
        free(w);
        zkc__inv_rq_unref(q);
    }
    free(lc->qdir);
    free(lc);
}

static void check_line(rq *q, int line)
{
    const char *qdir = q->ln[line].qdir;
    lcheck *lc = NULL;
    if (q->limit_synced == 0)
        for (lc = q->inv->lchecks; lc && strcmp(lc->qdir, qdir) != 0; lc = lc->next)
            ;
    int fresh = !lc;
    if (fresh) {
        lc = calloc(1, sizeof *lc);
        if (!lc || !(lc->qdir = strdup(qdir)))
            abort(); /* as op.c: a lost check would strand the request */
        lc->tail = &lc->first;
        if (q->limit_synced == 0) {
            lc->next = q->inv->lchecks;
            q->inv->lchecks = lc;
        }
    }
    lwait *w = malloc(sizeof *w);
    if (!w)
        abort();
    *w = (lwait){q, line, NULL};
    *lc->tail = w;
    lc->tail = &w->next;
    q->refs++;
    q->busy++;
    if (fresh)
        zkc__exists(q->c, qdir, NULL, lcheck_done, lc);
}

void zkc__inv_check_limits(rq *q)
{
    if (q->leave) {
        zkc__inv_step(q);
        return;
    }
    q->err = 0;
    q->phase = P_START;
    q->busy++; /* no line's answer decides before every line is asked */
    for (int i = 0; i < q->n; i++) {
        int n;
        if (q->limit_synced == 0 && qlen_known(q->inv, q->ln[i].qdir, &n))
            limit_line(q, i, ZR_OK, n);
        else
            check_line(q, i);
    }
    if (--q->busy == 0)
        limits_checked(q);
}

/* ---------------------------------------------------------------- enqueue */

static void enq_bucket_done(void *arg, int rc)
{
    rq *q = arg;
    q->busy--;
    if (!q->finished) {
        if (rc != ZR_OK)
            zkc__inv_rq_finish(q, zkc__inv_req_error(rc), ZKC_INVENTORY_PENDING, "request %s: cannot create %s: %s", q->id,
                               q->inv->req_dir, zkc__zrc_name(rc));
        else
            zkc__inv_enq_send(q);
    }
    zkc__inv_rq_unref(q);
}

static void enq_recover(rq *q);

/* The outcome of an enqueue multi for one request whose ops are
 * r->ops[off .. off + q->n]: the record's op first, then one per line. */
static void enq_result(rq *q, zkc__req *r, int off)
{
    if (r->rc == ZR_OK) {
        q->gen = r->gen;
        q->rec_ver = q->reenq ? r->ops[off].stat.version : 0;
        for (int i = 0; i < q->n; i++) {
            rline *l = &q->ln[i];
            const zkc__mop *o = &r->ops[off + 1 + i];
            zkc__qm_created(&l->m, ZR_OK, o->created, &o->stat, r->gen, r->seq);
            /* Its place in the FIFO: requests queued by one multi share a
             * record czxid, so only the node's sequence orders them. */
            zkc__log(q->c, ZKC_LOG_DEBUG, "inventory %s: request %s queued as %s", q->inv->root, q->id,
                     l->m.node ? l->m.node : "(being found)");
            l->head = 0;
            l->dirty = 1;
        }
        q->queued = 1;
        q->phase = P_QUEUED;
        zkc__inv_step(q); /* lists its queues; the record watch only if it must wait */
        return;
    }
    if (zkc__zrc_indeterminate(r->rc)) {
        enq_recover(q);
        return;
    }
    if (r->rc == ZR_SESSIONLOST) {
        /* Never sent: the next session gets it. */
        if (++q->attempts > RES_ATTEMPTS)
            zkc__inv_rq_finish(q, ZKC_ESESSIONLOST, ZKC_INVENTORY_PENDING, "request %s: sessions keep ending", q->id);
        else
            zkc__inv_enq_send(q);
        return;
    }
    if (r->rc == ZR_NOTSENT || r->rc == ZR_CLOSING) {
        zkc__inv_rq_finish(q, zkc__inv_req_error(r->rc), ZKC_INVENTORY_PENDING,
                           "request %s: not queued: %s", q->id,
                           r->rc == ZR_CLOSING ? "the client is closing"
                                               : "no server reachable within the operation timeout");
        return;
    }
    int kk = zkc__inv_multi_failed(r);
    if (kk >= 0 && (kk < off || kk > off + q->n)) {
        /* Another request of the same combined multi failed it: ours was not
         * applied and says nothing about our id. */
        zkc__inv_enq_send(q);
        return;
    }
    int k = kk >= 0 ? kk - off : -1;
    int rc = kk >= 0 ? r->ops[kk].rc : r->rc;
    if (k == 0) {
        if (!q->reenq && rc == ZR_NODEEXISTS) {
            zkc__inv_existing_read(q); /* this id was seen before */
            return;
        }
        if (!q->reenq && rc == ZR_NONODE && q->mkpaths++ < 3) {
            char dir[ZKC__PATH_MAX + 1];
            zkc__path_parent(q->recpath, dir, sizeof dir);
            q->refs++;
            q->busy++;
            zkc__mkpath(q->c, dir, enq_bucket_done, q);
            return;
        }
        if (q->reenq && rc == ZR_BADVERSION) {
            zkc__inv_existing_read(q); /* someone else moved it: look again */
            return;
        }
        if (q->reenq && rc == ZR_NONODE) {
            q->reenq = 0; /* reaped meanwhile: a fresh record */
            zkc__inv_enq_send(q);
            return;
        }
    } else if (k > 0 && rc == ZR_NONODE) {
        zkc__inv_rq_finish(q, ZKC_ENONODE, ZKC_INVENTORY_PENDING,
                           "SKU %s has no queue under %s (zkc_inventory_restock creates it)",
                           q->ln[k - 1].l.sku, q->inv->sku_dir);
        return;
    }
    zkc__inv_rq_finish(q, zkc__inv_req_error(rc), ZKC_INVENTORY_PENDING, "request %s: enqueue failed on %s: %s", q->id,
                       kk >= 0 ? r->ops[kk].path : "multi", zkc__zrc_name(rc));
}

RQ_DONE(enq_done)
{
    enq_result(q, r, 0);
}

/* The ops that enqueue q (record, then one queue member per line, all tagged
 * with this attempt's nonce) into ops[]; what they point to is appended to
 * keep[] for the caller to free after the multi is built. Returns the number
 * of ops. */
static int enq_ops(rq *q, zkc__mop *ops, char **keep, int *nkeep)
{
    q->owner = (uint64_t)q->c->session_id;
    q->lead = zkc__inv_qlen_longest(q);
    memset(ops, 0, sizeof *ops * (size_t)(1 + q->n));
    keep[(*nkeep)++] =
        zkc__inv_own_record_op(q, ZKC_INVENTORY_PENDING, q->reenq ? ZKC_REQ_SET : ZKC_REQ_CREATE, q->enq_ver, &ops[0]);
    for (int i = 0; i < q->n; i++) {
        zkc__res_qent e;
        memset(&e, 0, sizeof e);
        e.qty = q->ln[i].l.qty;
        e.flags = q->flags;
        e.nlines = q->n;
        e.hold_ms = q->hold_ms;
        memcpy(e.nonce, q->nonce, sizeof e.nonce);
        snprintf(e.id, sizeof e.id, "%s", q->id);
        rline *l = &q->ln[i];
        l->m.node_len = zkc__qent_encode(&e, l->ent, sizeof l->ent);
        if (l->m.node_len < 0)
            abort();
        char *prefix = malloc(ZKC__PATH_MAX + 64);
        if (!prefix)
            abort();
        keep[(*nkeep)++] = prefix;
        char unused[64]; /* the member's default data; ours is l->ent */
        zkc__qm_begin(&l->m, q->nonce);
        zkc__qm_create_op(&l->m, &ops[1 + i], prefix, unused);
    }
    return 1 + q->n;
}

/* ---- COMBINING. Orders of one client that are ready to enqueue together
 * share one multi: while one combined multi is out, fresh enqueues wait in
 * the inventory's list, and its reply sends the next one with all of them
 * (counter.c combines adds the same way). Arrival order is op order, so FIFO
 * is kept; the multi is all or nothing, so each request's recovery after a
 * connection loss (its record names its nonce) is unchanged; a request whose
 * own op failed the multi is told as if it had been alone, the others resend.
 * Re-enqueues (a setData conditional on an old record) stay alone. */

#define ENQ_COMBINE_MAX 64          /* requests per combined multi */
#define ENQ_COMBINE_OPS 256         /* ... and ops: a few hundred KB at most */

typedef struct enq_batch {
    zkc_inventory *inv;
    int n;
    rq *m[ENQ_COMBINE_MAX];
    int off[ENQ_COMBINE_MAX];
} enq_batch;

static void enq_flush(zkc_inventory *inv);

static void enq_batch_done(zkc__req *r)
{
    enq_batch *b = r->ctx;
    zkc_inventory *inv = b->inv;
    /* Still "in flight" while we hand out the results, so that the requests
     * that must resend gather for one multi at the end, ahead of those that
     * arrived while this one was out (they were queued later). */
    inv->enq_dispatching = 1;
    inv->enq_front = NULL;
    for (int i = 0; i < b->n; i++) {
        rq *q = b->m[i];
        q->busy--;
        if (q->finished) {
            /* Over while its multi was out: its nodes, if made, must go. */
            if (r->rc == ZR_OK && !q->c->closing)
                for (int j = 1; j <= q->n; j++)
                    if (r->ops[b->off[i] + j].created)
                        zkc__janitor_delete(q->c, r->ops[b->off[i] + j].created);
        } else {
            enq_result(q, r, b->off[i]);
        }
        zkc__inv_rq_unref(q);
    }
    free(b);
    inv->enq_dispatching = 0;
    inv->enq_inflight = 0;
    enq_flush(inv); /* requests that arrived meanwhile, and any that must resend */
    zkc__inv_unref(inv);
}

static void enq_flush(zkc_inventory *inv)
{
    if (inv->enq_inflight || !inv->enq_first)
        return;
    enq_batch *b = calloc(1, sizeof *b);
    zkc__mop *ops = calloc(ENQ_COMBINE_OPS + 1 + ZKC__RES_MAX_LINES, sizeof *ops);
    char **keep = calloc(ENQ_COMBINE_OPS + 1 + ZKC__RES_MAX_LINES, sizeof *keep);
    if (!b || !ops || !keep)
        abort();
    int nops = 0, nkeep = 0;
    while (inv->enq_first && b->n < ENQ_COMBINE_MAX &&
           (b->n == 0 || nops + 1 + inv->enq_first->n <= ENQ_COMBINE_OPS)) {
        rq *q = inv->enq_first;
        inv->enq_first = q->enq_next;
        if (!inv->enq_first)
            inv->enq_last = NULL;
        q->enq_next = NULL;
        if (q->finished || q->leave) {
            /* A timeout, destroy or shutdown came while it waited: queue nothing. */
            q->busy--;
            zkc__inv_step(q);
            zkc__inv_rq_unref(q);
            continue;
        }
        b->m[b->n] = q;
        b->off[b->n] = nops;
        b->n++;
        nops += enq_ops(q, ops + nops, keep, &nkeep);
    }
    if (b->n > 0) {
        b->inv = inv;
        zkc__inv_ref(inv);
        inv->enq_inflight = 1;
        zkc__metrics_batch(inv->c, ZKC_HIST_INVENTORY_BATCH, b->n);
        zkc__multi(inv->c, ops, nops, enq_batch_done, b);
        for (int i = 0; i < b->n; i++)
            zkc__qm_list_ahead(&b->m[i]->ln[b->m[i]->lead].m); /* each queue once */
    } else {
        free(b);
    }
    for (int i = 0; i < nkeep; i++)
        free(keep[i]);
    free(keep);
    free(ops);
}

void zkc__inv_enq_send(rq *q)
{
    if (q->leave) {
        zkc__inv_step(q); /* a timeout or destroy came first: queue nothing */
        return;
    }
    if (++q->attempts > RES_ATTEMPTS) {
        zkc__inv_rq_finish(q, ZKC_ECONTENDED, ZKC_INVENTORY_PENDING, "request %s: its record keeps changing under us", q->id);
        return;
    }
    q->phase = P_ENQ;
    zkc__inv_new_nonce(q->nonce);
    if (q->reenq) {
        zkc__mop ops[1 + ZKC__RES_MAX_LINES];
        char *keep[1 + ZKC__RES_MAX_LINES];
        int nkeep = 0;
        int nops = enq_ops(q, ops, keep, &nkeep);
        RQ_SEND(q, zkc__multi(q->c, ops, nops, enq_done, q));
        zkc__qm_list_ahead(&q->ln[q->lead].m);
        for (int i = 0; i < nkeep; i++)
            free(keep[i]);
        return;
    }
    /* Counted as a request in flight from now: step() leaves it alone. */
    zkc_inventory *inv = q->inv;
    q->refs++;
    q->busy++;
    if (inv->enq_dispatching) {
        /* A resend from the multi just answered: before later arrivals. */
        rq **at = inv->enq_front ? &inv->enq_front->enq_next : &inv->enq_first;
        q->enq_next = *at;
        *at = q;
        if (!q->enq_next)
            inv->enq_last = q;
        inv->enq_front = q;
    } else {
        if (inv->enq_last)
            inv->enq_last->enq_next = q;
        else
            inv->enq_first = q;
        inv->enq_last = q;
    }
    enq_flush(inv);
}

/* ---- enqueue outcome unknown: the record names the nonce that won ---- */

/* The record says our enqueue landed; each member has been decided by its
 * tag (joined: our node, of this session; absent: gone, or of a session that
 * ended; or failed, and left to the janitor). Called as each one ends. */
void zkc__inv_recover_check(rq *q)
{
    int found = 0;
    for (int i = 0; i < q->n; i++) {
        int ph = q->ln[i].m.phase;
        if (ph == ZKC__QM_RECOVERING || ph == ZKC__QM_CREATING)
            return; /* still being decided */
        found += ph == ZKC__QM_IN;
    }
    if (q->err || found < q->n) {
        /* Our nodes are gone, or belong to a session that ended. */
        zkc__inv_janitor_nodes(q);
        if (q->err)
            zkc__inv_rq_finish(q, q->err, ZKC_INVENTORY_PENDING, "%s", q->err_msg);
        else
            zkc__inv_rq_finish(q, ZKC_ESESSIONLOST, ZKC_INVENTORY_PENDING,
                               "request %s: queued, but the session that queued it ended; look it up by id", q->id);
        return;
    }
    q->gen = q->c->gen;
    q->queued = 1;
    q->phase = P_QUEUED;
    for (int i = 0; i < q->n; i++)
        q->ln[i].dirty = 1;
    zkc__inv_step(q);
}

RQ_DONE(recover_get_done)
{
    if (r->rc == ZR_NONODE) {
        q->reenq = 0; /* never applied */
        zkc__inv_enq_send(q);
        return;
    }
    if (r->rc != ZR_OK) {
        for (int i = 0; i < q->n; i++)
            if (!q->c->closing)
                zkc__janitor_find(q->c, q->ln[i].qdir, q->nonce);
        zkc__inv_rq_finish(q, ZKC_EUNKNOWN, ZKC_INVENTORY_PENDING,
                           "request %s: enqueue outcome unknown (%s); its queue nodes will be removed once a server "
                           "answers; look it up by id",
                           q->id, zkc__zrc_name(r->rc));
        return;
    }
    zkc__res_rec *rec = malloc(sizeof *rec);
    if (!rec)
        abort();
    const char *why = NULL;
    if (zkc__resrec_decode(r->value, r->valuelen, rec, &why) != 0) {
        free(rec);
        zkc__inv_rq_finish(q, ZKC_EBADDATA, ZKC_INVENTORY_PENDING, "request record %s: %s", q->recpath, why);
        return;
    }
    if (rec->state == ZKC_INVENTORY_PENDING && strcmp(rec->nonce, q->nonce) == 0) {
        free(rec);
        q->rec_ver = r->stat.version;
        q->err = 0;
        /* Applied: the member core finds each node by the nonce, its tag. */
        for (int i = 0; i < q->n; i++)
            zkc__qm_created(&q->ln[i].m, ZR_CONNLOSS, NULL, NULL, q->c->gen, 0);
        return;
    }
    /* Not ours: another worker's request under our id, or ours never landed. */
    free(q->ex);
    q->ex = rec;
    q->ex_ver = r->stat.version;
    zkc__inv_existing_eval(q);
}

RQ_DONE(recover_sync_done)
{
    RQ_SEND(q, zkc__get(q->c, q->recpath, NULL, recover_get_done, q));
    (void)r;
}

static void enq_recover(rq *q)
{
    q->phase = P_RECOVER;
    RQ_SEND(q, zkc__sync(q->c, q->recpath, recover_sync_done, q));
}

/* ---------------------------------------------------------------- an id seen before */

static rline *line_of(rq *q, const char *sku)
{
    for (int i = 0; i < q->n; i++)
        if (strcmp(q->ln[i].l.sku, sku) == 0)
            return &q->ln[i];
    return &q->ln[0];
}

static void reenqueue(rq *q, int32_t version)
{
    q->reenq = 1;
    q->enq_ver = version;
    zkc__inv_enq_send(q);
}

static void existing_got(rq *q, zkc__req *r);

RQ_DONE(exconfirm_done)
{
    if (r->rc == ZR_OK && r->stat.version == q->ex_ver) {
        /* PENDING, no queue node, and nothing changed meanwhile: the worker
         * that queued it is gone (ABANDONED). Queue it again, as ours. */
        reenqueue(q, q->ex_ver);
        return;
    }
    existing_got(q, r);
}

static void follow_node_fired(zkc__watch *w, int ev);

RQ_DONE(follow_rec_done)
{
    if (zkc__inv_ws_reply(&q->rec_w, r) != ZR_OK) {
        if (r->rc != ZR_NONODE) {
            zkc__inv_rq_finish(q, zkc__inv_req_error(r->rc), ZKC_INVENTORY_PENDING, "request %s: watching its record: %s",
                               q->id, zkc__zrc_name(r->rc));
            return;
        }
        q->follow_dirty = 1;
    } else if (r->stat.version != q->ex_ver) {
        q->follow_dirty = 1; /* it moved before the watch was set */
    }
    zkc__inv_step(q);
}

RQ_DONE(follow_node_done)
{
    if (zkc__inv_ws_reply(&q->fnode_w, r) != ZR_OK) {
        if (r->rc != ZR_NONODE) {
            zkc__inv_rq_finish(q, zkc__inv_req_error(r->rc), ZKC_INVENTORY_PENDING,
                               "request %s: watching its queue node: %s", q->id, zkc__zrc_name(r->rc));
            return;
        }
        q->follow_dirty = 1;
    }
    zkc__inv_step(q);
}

static void follow(rq *q, const char *node)
{
    free(q->fnode);
    q->fnode = strdup(node);
    if (!q->fnode)
        abort();
    q->phase = P_FOLLOW;
    q->follow_dirty = 0;
    zkc__inv_ws_release(&q->rec_w);
    zkc__inv_ws_release(&q->fnode_w);
    q->rec_w.w = zkc__watch_new(q->c, zkc__inv_follow_rec_fired, q);
    q->fnode_w.w = zkc__watch_new(q->c, follow_node_fired, q);
    if (!q->rec_w.w || !q->fnode_w.w)
        abort();
    q->rec_w.reading = q->fnode_w.reading = 1;
    RQ_SEND(q, zkc__get(q->c, q->recpath, q->rec_w.w, follow_rec_done, q));
    RQ_SEND(q, zkc__get(q->c, q->fnode, q->fnode_w.w, follow_node_done, q));
}

RQ_DONE(exfind_done)
{
    if (r->rc != ZR_OK && r->rc != ZR_NONODE) {
        zkc__inv_rq_finish(q, zkc__inv_req_error(r->rc), ZKC_INVENTORY_PENDING, "request %s: listing a queue: %s", q->id,
                           zkc__zrc_name(r->rc));
        return;
    }
    int k = r->rc == ZR_OK ? zkc__resname_find(r->children, r->nchildren, q->ex->nonce) : -1;
    if (k >= 0) {
        char *p = zkc__path_join(r->path, r->children[k]);
        if (!p)
            abort();
        follow(q, p); /* with timeout 0, step() ends it once the watches are set */
        free(p);
        return;
    }
    /* No node: check that the record did not move while we looked. */
    RQ_SEND(q, zkc__get(q->c, q->recpath, NULL, exconfirm_done, q));
}

void zkc__inv_existing_eval(rq *q)
{
    zkc__res_rec *ex = q->ex;
    q->phase = P_EXISTING;
    if (q->leave && ex->state == ZKC_INVENTORY_PENDING) {
        zkc__inv_step(q);
        return;
    }
    if (!zkc__inv_same_lines(q, ex)) {
        zkc__inv_rq_finish(q, ZKC_EEXISTS, ex->state == ZKC_INVENTORY_PENDING ? ZKC_INVENTORY_PENDING : ex->state,
                           "request id %s is already used by a request for other lines (%d line(s), first "
                           "%" PRId64 " of %s)",
                           q->id, ex->n, ex->line[0].qty, ex->line[0].sku);
        return;
    }
    switch (ex->state) {
    case ZKC_INVENTORY_RESERVED:
    case ZKC_INVENTORY_SOLD:
    case ZKC_INVENTORY_RETURNED:
    case ZKC_INVENTORY_EXPIRED:
        zkc__inv_finish_decided(q, ex->state);
        return;
    case ZKC_INVENTORY_OUT_OF_STOCK:
    case ZKC_INVENTORY_TIMED_OUT:
        /* No unit was ever held under this id: a new attempt. */
        reenqueue(q, q->ex_ver);
        return;
    default:
        break;
    }
    /* PENDING: alive if its queue node is; the nonce names it. */
    rline *l = line_of(q, ex->line[0].sku);
    RQ_SEND(q, zkc__children(q->c, l->qdir, NULL, exfind_done, q));
}

/* The record under our id, (re)read: evaluate what it says now. */
static void existing_got(rq *q, zkc__req *r)
{
    if (r->rc == ZR_NONODE) {
        q->reenq = 0; /* deleted (reaped) since: a fresh one */
        zkc__inv_enq_send(q);
        return;
    }
    if (r->rc != ZR_OK) {
        zkc__inv_rq_finish(q, zkc__inv_req_error(r->rc), ZKC_INVENTORY_PENDING, "request %s: reading its record: %s", q->id,
                           zkc__zrc_name(r->rc));
        return;
    }
    if (!q->ex && !(q->ex = malloc(sizeof *q->ex)))
        abort();
    const char *why = NULL;
    if (zkc__resrec_decode(r->value, r->valuelen, q->ex, &why) != 0) {
        zkc__inv_rq_finish(q, ZKC_EBADDATA, ZKC_INVENTORY_PENDING, "request record %s: %s; nothing was written", q->recpath,
                           why);
        return;
    }
    q->ex_ver = r->stat.version;
    zkc__inv_existing_eval(q);
}

RQ_DONE(exget_done)
{
    existing_got(q, r);
}

void zkc__inv_existing_read(rq *q)
{
    q->phase = P_EXISTING;
    if (q->leave) {
        zkc__inv_step(q);
        return;
    }
    RQ_SEND(q, zkc__get(q->c, q->recpath, NULL, exget_done, q));
}

void zkc__inv_follow_rec_fired(zkc__watch *w, int ev)
{
    rq *q = w->ctx;
    ZKC__UNUSED(ev);
    if (q->rec_w.w == w)
        q->rec_w.w = NULL;
    if (q->finished)
        return;
    if (q->phase == P_FOLLOW)
        q->follow_dirty = 1;
    else
        q->dirty_rec = 1;
    zkc__inv_step(q);
}

static void follow_node_fired(zkc__watch *w, int ev)
{
    rq *q = w->ctx;
    ZKC__UNUSED(ev);
    if (q->fnode_w.w == w)
        q->fnode_w.w = NULL;
    if (q->finished)
        return;
    q->follow_dirty = 1;
    zkc__inv_step(q);
}

