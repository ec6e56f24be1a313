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
 *   - in each of its other queues, every node ahead of it (a listing; those
 *     queued earlier) is one the same multi deletes: a member decided earlier
 *     in this walk, so considered first there too (one arrival order across
 *     queues). Most often there is none: it is the head there, and stays so
 *     while its node exists (sequence numbers only grow). Nobody else decides
 *     it meanwhile: only a head of one of its queues could, and it is that
 *     head everywhere but here, or will be once this multi applies;
 *   - to grant it: each other SKU has the units, after those the walk took
 *     there for members before it (records read with their versions, each
 *     written once, at the version read, in the multi); to refuse it
 *     (fail-fast, the head's SKU short): nothing more, the head's SKU version
 *     is the evidence as for single-line members.
 *
 * The multi deletes all its nodes and rewrites its record, as its own would
 * have: one transaction for the whole batch instead of one per order. A
 * member that waits for restock, or is short on another SKU, or has a
 * request ahead of it in another queue that this multi does not decide,
 * stops the walk as before and decides itself later.
 * A member decided this way learns it like a single-line one (the node ahead
 * of it went: it reads its record before anything else, lib/inventory_request.c).
 *
 * What we read is kept with the window's entry (gml) across the head's
 * rounds only while it showed the member first in all its other queues; a
 * conflict on another SKU's record or a node of ours found gone drops all of
 * it, and the next round reads again. The reads never fail the head's
 * request: a member we could not look at is simply not decided by us. */
#include "inventory.h"

#include <stdlib.h>
#include <string.h>

#define ML_FETCH_MAX 6  /* multi-line members looked at per read round trip */
#define ML_OPS_MAX 64   /* extra ops (other SKUs, other nodes) per multi */
#define ML_AHEAD_MAX 8  /* nodes ahead of it in another queue worth looking at */

void zkc__inv_ml_free(gml *ml)
{
    if (!ml)
        return;
    for (int i = 0; i < ml->rec.n; i++) {
        free(ml->l[i].qdir);
        free(ml->l[i].skupath);
        free(ml->l[i].node);
        for (int j = 0; j < ml->l[i].nahead; j++)
            free(ml->l[i].ahead[j]);
        free(ml->l[i].ahead);
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

/* A reply about line i of member k: its gml, one read fewer pending. */
static gml *line_reply(rq *q, const zkc__req *r, int *i)
{
    gml *ml = ml_of(q, (int)(r->tag >> 8));
    *i = (int)(r->tag & 0xff);
    if (ml)
        ml->pending--;
    return ml;
}

RQ_DONE(ml_list_done)
{
    int i;
    gml *ml = line_reply(q, r, &i);
    if (!ml)
        return;
    if (r->rc != ZR_OK) {
        ml->st = ML_NO;
    } else {
        zkc__inv_qlen_seen(q->inv, r->path, r->nchildren);
        zkc__member *m;
        int n = zkc__inv_parse_queue(r->children, r->nchildren, &m), at = -1;
        char nonce[ZKC__RES_NONCE_LEN + 1];
        for (int p = 0; p < n && p <= ML_AHEAD_MAX && at < 0; p++)
            if (zkc__resname_parse(m[p].name, nonce, NULL) && strcmp(nonce, ml->rec.nonce) == 0)
                at = p;
        mlline *l = &ml->l[i];
        if (at >= 0) {
            /* Sorted: those ahead of it queued earlier. It is decidable here
             * only if each of them is decided earlier in the same walk. */
            if (!(l->node = strdup(m[at].name)) || !(l->ahead = calloc((size_t)at + 1, sizeof *l->ahead)))
                abort();
            for (int p = 0; p < at; p++)
                if (!(l->ahead[l->nahead++] = strdup(m[p].name)))
                    abort();
        } else {
            ml->st = ML_NO; /* far back there, or gone from it */
        }
        free(m);
    }
    ml_settle(q, ml);
}

RQ_DONE(ml_sku_done)
{
    int i;
    gml *ml = line_reply(q, r, &i);
    if (!ml)
        return;
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

int zkc__inv_ml_keep(const gml *ml)
{
    if (!ml || ml->st != ML_OK)
        return 0;
    for (int i = 0; i < ml->rec.n; i++)
        if (ml->l[i].nahead)
            return 0; /* those ahead may be gone by now: look again */
    return 1;
}

void zkc__inv_ml_walk_start(rq *q)
{
    q->nmls = 0;
}

/* Is node `name` of queue `qdir` one of a member decided earlier in this
 * walk (its delete is in the same multi)? */
static int decided_here(rq *q, const char *qdir, const char *name)
{
    for (int d = 0; d < q->ndec; d++) {
        const gml *o = q->gm[q->dec[d]].ml;
        if (!o)
            continue;
        for (int j = 0; j < o->rec.n; j++)
            if (j != o->hot && strcmp(o->l[j].qdir, qdir) == 0 && strcmp(o->l[j].node, name) == 0)
                return 1;
    }
    return 0;
}

static mlsku *sku_slot(rq *q, const char *path)
{
    for (int s = 0; s < q->nmls; s++)
        if (strcmp(q->mls[s].path, path) == 0)
            return &q->mls[s];
    return NULL;
}

/* May the walk decide member k (grant: the head's SKU has its units)? Each
 * node ahead of it in its other queues must be one the same multi deletes
 * (a member decided earlier in this walk), and, to grant it, each other SKU
 * must still have its units after the grants before it in this walk. It
 * counts the ops it adds to the multi in *extra. */
int zkc__inv_ml_decidable(rq *q, int k, int grant, int *extra)
{
    const gml *ml = q->gm[k].ml;
    if (!ml || ml->st != ML_OK)
        return 0;
    int more = ml->rec.n - 1; /* its other nodes' deletes */
    for (int i = 0; i < ml->rec.n; i++) {
        if (i == ml->hot)
            continue;
        const mlline *l = &ml->l[i];
        for (int a = 0; a < l->nahead; a++)
            if (!decided_here(q, l->qdir, l->ahead[a]))
                return 0; /* a request queued before it there is still waiting */
        if (!grant)
            continue;
        const mlsku *s = sku_slot(q, l->skupath);
        /* Two reads of one SKU: the later version is the one to write at
         * (an older one would only fail the multi). */
        const zkc__sku_rec *base = s && s->ver >= l->sku_ver ? &s->base : &l->sku;
        if (base->available - (s ? s->taken : 0) < ml->rec.line[i].qty)
            return 0; /* short there: it decides itself (waits or is refused) */
        more += !s;
    }
    if (*extra + more > ML_OPS_MAX)
        return 0;
    *extra += more;
    if (!grant)
        return 1;
    if (!q->mls && !(q->mls = calloc(ML_OPS_MAX, sizeof *q->mls)))
        abort();
    for (int i = 0; i < ml->rec.n; i++) {
        if (i == ml->hot)
            continue;
        const mlline *l = &ml->l[i];
        mlsku *s = sku_slot(q, l->skupath);
        if (!s) {
            s = &q->mls[q->nmls++];
            s->path = l->skupath;
            s->base = l->sku;
            s->ver = l->sku_ver;
            s->taken = 0;
        } else if (l->sku_ver > s->ver) {
            s->path = l->skupath;
            s->base = l->sku;
            s->ver = l->sku_ver;
        }
        s->taken += ml->rec.line[i].qty;
    }
    return 1;
}

/* The other SKUs' records of the granted multi-line members: the units of
 * all of them taken at the version read. Returns the number of ops written. */
int zkc__inv_ml_sku_ops(rq *q, zkc__mop *ops, char **bufs)
{
    for (int n = 0; n < q->nmls; n++) {
        const mlsku *m = &q->mls[n];
        zkc__sku_rec s = m->base;
        s.available -= m->taken;
        s.reserved += m->taken;
        char buf[128];
        int len = zkc__sku_encode(&s, buf, sizeof buf);
        if (len < 0 || !(bufs[n] = malloc((size_t)len + 1)))
            abort(); /* available >= taken was checked: no overflow */
        memcpy(bufs[n], buf, (size_t)len + 1);
        ops[n].type = ZKC_REQ_SET;
        ops[n].path = m->path;
        ops[n].data = bufs[n];
        ops[n].len = len;
        ops[n].version = m->ver;
    }
    return q->nmls;
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
