/* Multi-line members in a single-line head's batch (issue 19).
 *
 * A flash sale's hot queue is mostly orders of several lines: the hot SKU
 * and one or two others. A batch used to stop at the first of them (it
 * decided itself once it was the head of all its queues), so the hot queue
 * paid nearly one deciding transaction per order, and the servers' write
 * path, not reads, bounded the sale. Here the head of the hot queue decides
 * such a member in its own multi when it can prove what the member would
 * have proved itself:
 *
 *   - its record (read) is PENDING with the nonce of its entry, and names the
 *     head's SKU with the entry's quantity: the record gives the other lines;
 *   - it is the head of each of its other queues (a listing showing its node
 *     first: sequence numbers only grow, so that stays true while its node
 *     exists, and nobody else decides it meanwhile, since only a head of one
 *     of its queues could, and it is that head everywhere but here);
 *   - to grant it: each other SKU has the units (records read with their
 *     versions, written back at those versions in the multi); to refuse it
 *     (fail-fast, the head's SKU short): nothing more, the head's SKU version
 *     is the evidence as for single-line members.
 *
 * The multi deletes all its nodes and rewrites its record, as its own would
 * have: one transaction for the whole batch instead of one per order. A
 * member that waits for restock, or is short on another SKU, or is not the
 * head of another queue, stops the walk as before and decides itself later.
 * A member decided this way learns it like a single-line one (the node ahead
 * of it went: it reads its record before anything else, lib/inventory_request.c).
 *
 * What we read is kept with the window's entry (gml) across the head's
 * rounds only while it proved decidable; a conflict on another SKU's record
 * or a node of ours found gone drops all of it, and the next round reads
 * again. The reads never fail the head's request: a member we could not
 * look at is simply not decided by us. */
#include "inventory.h"

#include <stdlib.h>
#include <string.h>

#define ML_FETCH_MAX 16 /* multi-line members looked at per round */
#define ML_OPS_MAX 64   /* extra ops (other SKUs, other nodes) per multi */

void zkc__inv_ml_free(gml *ml)
{
    if (!ml)
        return;
    for (int i = 0; i < ml->rec.n; i++) {
        free(ml->l[i].qdir);
        free(ml->l[i].skupath);
        free(ml->l[i].node);
    }
    free(ml);
}

/* Forget what we read about every multi-line member of the window. */
void zkc__inv_ml_reset(rq *q)
{
    for (int i = 0; i < q->ngm; i++) {
        zkc__inv_ml_free(q->gm[i].ml);
        q->gm[i].ml = NULL;
    }
}

static gml *ml_of(rq *q, int k)
{
    return k >= 0 && k < q->ngm ? q->gm[k].ml : NULL;
}

static void ml_settle(rq *q, gml *ml)
{
    if (ml->pending == 0 && ml->st == ML_FETCHING)
        ml->st = ML_OK;
    if (!q->busy)
        zkc__inv_round_progress(q);
}

RQ_DONE(ml_list_done)
{
    int k = (int)(r->tag >> 8), i = (int)(r->tag & 0xff);
    gml *ml = ml_of(q, k);
    if (!ml)
        return;
    ml->pending--;
    if (r->rc != ZR_OK) {
        ml->st = ML_NO;
    } else {
        zkc__member *m;
        int n = zkc__inv_parse_queue(r->children, r->nchildren, &m);
        char nonce[ZKC__RES_NONCE_LEN + 1];
        if (n > 0 && zkc__resname_parse(m[0].name, nonce, NULL) && strcmp(nonce, ml->rec.nonce) == 0) {
            if (!(ml->l[i].node = strdup(m[0].name)))
                abort();
        } else {
            ml->st = ML_NO; /* not the head there (or gone from it) */
        }
        free(m);
    }
    ml_settle(q, ml);
}

RQ_DONE(ml_sku_done)
{
    int k = (int)(r->tag >> 8), i = (int)(r->tag & 0xff);
    gml *ml = ml_of(q, k);
    if (!ml)
        return;
    ml->pending--;
    char msg[256];
    if (zkc__inv_sku_reply(q->inv, r, ml->rec.line[i].sku, &ml->l[i].sku, &ml->l[i].sku_ver, msg, sizeof msg))
        ml->st = ML_NO;
    ml_settle(q, ml);
}

RQ_DONE(ml_rec_done)
{
    int k = (int)r->tag;
    gml *ml = ml_of(q, k);
    if (!ml)
        return;
    const gmem *g = &q->gm[k];
    const char *why = NULL;
    ml->hot = -1;
    if (r->rc == ZR_OK && zkc__resrec_decode(r->value, r->valuelen, &ml->rec, &why) == 0 &&
        ml->rec.state == ZKC_INVENTORY_PENDING && strcmp(ml->rec.nonce, g->e.nonce) == 0 &&
        ml->rec.n == g->e.nlines && ml->rec.flags == g->e.flags)
        for (int i = 0; i < ml->rec.n; i++)
            if (strcmp(ml->rec.line[i].sku, q->ln[0].l.sku) == 0 && ml->rec.line[i].qty == g->e.qty)
                ml->hot = i;
    if (ml->hot < 0) {
        ml->rec.n = 0; /* nothing allocated per line */
        ml->st = ML_NO;
        ml_settle(q, ml);
        return;
    }
    for (int i = 0; i < ml->rec.n; i++) {
        if (i == ml->hot)
            continue;
        mlline *l = &ml->l[i];
        l->qdir = zkc__inv_queue_dir(q->inv, ml->rec.line[i].sku);
        l->skupath = zkc__inv_sku_path(q->inv, ml->rec.line[i].sku);
        ml->pending += 2;
        uint64_t tag = (uint64_t)k << 8 | (uint64_t)i;
        RQ_SEND_TAG(q, tag, zkc__children(q->c, l->qdir, NULL, ml_list_done, q));
        RQ_SEND_TAG(q, tag, zkc__get(q->c, l->skupath, NULL, ml_sku_done, q));
    }
    ml_settle(q, ml);
}

int zkc__inv_ml_fetch(rq *q, int from)
{
    int sent = 0;
    for (int k = from; k < q->ngm && sent < ML_FETCH_MAX; k++) {
        gmem *g = &q->gm[k];
        if (g->st != GM_OK || g->e.nlines < 2 || g->e.nlines > ZKC__RES_MAX_LINES || g->ml)
            continue;
        if (!(g->ml = calloc(1, sizeof *g->ml)))
            abort();
        g->ml->st = ML_FETCHING;
        char *p = zkc__inv_rec_path(q->inv, g->e.id);
        RQ_SEND_TAG(q, k, zkc__get(q->c, p, NULL, ml_rec_done, q));
        free(p);
        sent++;
    }
    return sent;
}

/* May the walk decide member k (grant: the head's SKU has its units)? It
 * counts the extra ops it adds to the multi in *extra. */
int zkc__inv_ml_decidable(rq *q, int k, int grant, int *extra)
{
    const gml *ml = q->gm[k].ml;
    if (!ml || ml->st != ML_OK)
        return 0;
    int more = (grant ? 2 : 1) * (ml->rec.n - 1);
    if (*extra + more > ML_OPS_MAX)
        return 0;
    for (int i = 0; grant && i < ml->rec.n; i++) {
        if (i == ml->hot)
            continue;
        if (ml->l[i].sku.available < ml->rec.line[i].qty)
            return 0; /* short there: it decides itself (waits or is refused) */
        /* Another member of this batch granted on that SKU? Only one can be
         * the head there; a second one's view is stale. */
        for (int d = 0; d < q->ndec; d++) {
            const gml *o = q->gm[q->dec[d]].ml;
            if (!o || q->dstate[d] != ZKC_INVENTORY_RESERVED)
                continue;
            for (int j = 0; j < o->rec.n; j++)
                if (j != o->hot && strcmp(o->rec.line[j].sku, ml->rec.line[i].sku) == 0)
                    return 0;
        }
    }
    *extra += more;
    return 1;
}

/* The other SKUs' records of the granted multi-line members: each one's
 * units taken at the version read. Returns the number of ops written. */
int zkc__inv_ml_sku_ops(rq *q, zkc__mop *ops, char **bufs)
{
    int n = 0;
    for (int d = 0; d < q->ndec; d++) {
        const gml *ml = q->gm[q->dec[d]].ml;
        if (!ml || q->dstate[d] != ZKC_INVENTORY_RESERVED)
            continue;
        for (int i = 0; i < ml->rec.n; i++) {
            if (i == ml->hot)
                continue;
            zkc__sku_rec s = ml->l[i].sku;
            s.available -= ml->rec.line[i].qty;
            s.reserved += ml->rec.line[i].qty;
            char buf[128];
            int len = zkc__sku_encode(&s, buf, sizeof buf);
            if (len < 0 || !(bufs[n] = malloc((size_t)len + 1)))
                abort(); /* available >= qty was checked: no overflow */
            memcpy(bufs[n], buf, (size_t)len + 1);
            ops[n].type = ZKC_REQ_SET;
            ops[n].path = ml->l[i].skupath;
            ops[n].data = bufs[n];
            ops[n].len = len;
            ops[n].version = ml->l[i].sku_ver;
            n++;
        }
    }
    return n;
}

/* The deletes of the decided multi-line members' other nodes. */
int zkc__inv_ml_node_ops(rq *q, zkc__mop *ops, char **bufs)
{
    int n = 0;
    for (int d = 0; d < q->ndec; d++) {
        const gml *ml = q->gm[q->dec[d]].ml;
        if (!ml)
            continue;
        for (int i = 0; i < ml->rec.n; i++) {
            if (i == ml->hot)
                continue;
            if (!(bufs[n] = zkc__path_join(ml->l[i].qdir, ml->l[i].node)))
                abort();
            ops[n].type = ZKC_REQ_DELETE;
            ops[n].path = bufs[n];
            ops[n].version = -1;
            n++;
        }
    }
    return n;
}

/* The record a multi-line member gets: the one it wrote, decided. */
char *zkc__inv_ml_record(const gml *ml, int state, int *len)
{
    zkc__res_rec *rec = malloc(sizeof *rec);
    if (!rec)
        abort();
    *rec = ml->rec;
    rec->state = state;
    char *data = zkc__inv_encode_rec(rec, len);
    free(rec);
    return data;
}
