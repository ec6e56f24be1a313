/*
 * The apply of a queued counter (step 3 of ONE BATCH in lib/counter_queue.c,
 * whose essay holds the protocol and its exactness argument): the client at
 * the head reads what it does not know yet (the counter, batches whose adds
 * are not in their names), plans every queued add in queue order from the
 * counter's value, and sends one multi, conditional on the version it read,
 * that writes the counter, deletes each batch applied and creates the
 * others' outcome records. Its own reply, when lost, is decided by its
 * marker on the transaction core (lib/txn.c).
 */
#include "counter_queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void apply_send(cq *b);
static void apply_done(zkc__req *r);

static void apply_read_done(zkc__req *r)
{
    cq *b = r->ctx;
    if (b->over) {
        zkc__cq_drop(b);
        return;
    }
    if (r->tag == 0) {
        int rc = zkc__cq_counter_read(b, r);
        if (rc > 0)
            b->cbad = 1;
        else if (rc < 0)
            b->read_bad = rc;
    } else {
        qent *e = &b->q[r->tag - 1];
        if (r->rc == ZR_OK) {
            free(e->data);
            e->data = r->value;
            e->len = r->valuelen;
            r->value = NULL;
        } else if (r->rc == ZR_NONODE) {
            if (!b->read_bad)
                b->read_bad = ZR_NONODE; /* applied meanwhile */
        } else {
            b->read_bad = r->rc;
        }
    }
    if (--b->reads == 0) {
        if (b->cbad) {
            zkc__cq_give_up(b, ZKC_EBADDATA, "the counter's data is not in its format");
        } else if (b->read_bad == ZR_NONODE || b->read_bad == 0) {
            if (b->read_bad)
                zkc__cq_look(b);
            else
                apply_send(b);
        } else {
            zkc__cq_retry_later(b, b->read_bad, "reading the queue for an apply");
        }
    }
    zkc__cq_drop(b);
}

void zkc__cq_apply(cq *b)
{
    if (b->nq > CQ_APPLY_MAX) {
        for (int i = CQ_APPLY_MAX; i < b->nq; i++) {
            free(b->q[i].name);
            free(b->q[i].data);
        }
        b->nq = CQ_APPLY_MAX;
    }
    b->impatient = 0;
    b->read_bad = 0;
    b->cbad = 0;
    /* PIPELINE: what we know needs no read. Our own batch is what we sent;
     * the counter, if read behind the enqueue, may be stale, which costs only
     * a failed round (the apply is conditional on its version). */
    int need_c = !b->c_known;
    b->c_known = 0;
    b->reads = need_c;
    for (int i = 0; i < b->nq; i++) {
        qent *e = &b->q[i];
        if (!e->data && e->seq == b->myseq && strcmp(e->uuid, b->uuid) == 0)
            e->data = zkc__cq_encode_own(b, &e->len); /* NULL: read it */
        b->reads += !e->data;
    }
    if (b->reads == 0) {
        apply_send(b);
        return;
    }
    zkc__cq_phase(b, "queued mode: reading the queue to apply it");
    if (need_c) {
        zkc__cq_hold(b);
        zkc__get(b->co->c, b->co->path, NULL, apply_read_done, b)->tag = 0;
    }
    for (int i = 0; i < b->nq; i++) {
        if (b->q[i].data)
            continue;
        char *p = zkc__path_join(b->qdir, b->q[i].name);
        if (!p)
            abort();
        zkc__cq_hold(b);
        zkc__get(b->co->c, p, NULL, apply_read_done, b)->tag = (uint64_t)i + 1;
        free(p);
    }
}

static int bounded(int64_t v, const zkc_bounds *bd)
{
    return !(bd->has_floor && v < bd->floor) && !(bd->has_ceiling && v > bd->ceiling);
}

static void at_round(zkc__txn *t);

static const zkc__txn_ops apply_ops;

static void apply_send(cq *b)
{
    if (b->at_live) {
        zkc__txn_finish(&b->at);
        b->at_live = 0;
    }
    zkc__txn_init(&b->at, b->co->c, &apply_ops);
    b->at_live = 1;
    b->at_sent = 0;
    at_round(&b->at);
}

/* Plan the apply from what zkc__cq_apply() read and send it. */
static void at_round(zkc__txn *t)
{
    cq *b = ZKC__CONTAINER_OF(t, cq, at);
    if (!zkc__txn_marker_ready(t))
        return;
    zkc__ctr_core *co = b->co;
    int n = b->nq;
    zkc__mop *ops = calloc((size_t)(2 * n + 2), sizeof *ops);
    char **bufs = calloc((size_t)(3 * n + 1), sizeof *bufs); /* per batch: its path, its outcome's path and data */
    zkc__cq_add *adds = calloc(ZKC__CTR_BATCH_MAX, sizeof *adds);
    int *verdict = calloc(ZKC__CTR_BATCH_MAX, sizeof *verdict);
    zkc_counter_result *res = calloc(ZKC__CTR_BATCH_MAX, sizeof *res);
    if (!ops || !bufs || !adds || !verdict || !res)
        abort();
    int64_t cur = b->cvalue;
    char enc[24];
    int nops = 1, nb = 0;
    b->mine = -1;
    for (int i = 0; i < n; i++) {
        int na = zkc__cq_decode_batch(b->q[i].data, b->q[i].len, co->path, adds);
        if (na < 0)
            na = 0; /* not ours to read: removed with an empty outcome (its reader sees EBADDATA) */
        for (int k = 0; k < na; k++) {
            int64_t next;
            verdict[k] = 0;
            if (__builtin_add_overflow(cur, adds[k].delta, &next) || zkc__value_encode(co->fmt, next, enc) < 0)
                verdict[k] = ZKC_EOVERFLOW;
            else if (!bounded(next, &adds[k].bounds))
                verdict[k] = ZKC_EBOUND;
            res[k].before = cur;
            res[k].after = verdict[k] ? cur : next;
            res[k].replayed = 0;
            if (!verdict[k])
                cur = next;
        }
        char *p = zkc__path_join(b->qdir, b->q[i].name);
        if (!p)
            abort();
        bufs[nb++] = p;
        ops[nops].type = ZKC_REQ_DELETE;
        ops[nops].path = p;
        ops[nops].version = -1;
        nops++;
        if (strcmp(b->q[i].uuid, b->uuid) == 0 && na == b->nu) {
            b->mine = i;
            memcpy(b->mverdict, verdict, sizeof(int) * (size_t)na);
            memcpy(b->mres, res, sizeof(*res) * (size_t)na);
            continue; /* the applier's own outcome is the plan (see above) */
        }
        int rl = 0;
        char *rp = zkc__cq_r_path(b, b->q[i].seq, b->q[i].uuid);
        char *rd = zkc__cq_encode_result(na, verdict, res, &rl);
        if (!rp || !rd)
            abort();
        bufs[nb++] = rp;
        bufs[nb++] = rd;
        ops[nops].type = ZKC_REQ_CREATE;
        ops[nops].path = rp;
        ops[nops].data = rd;
        ops[nops].len = rl;
        nops++;
    }
    b->final = cur;
    int len = zkc__value_encode(co->fmt, cur, enc);
    ops[0].type = b->cmissing ? ZKC_REQ_CREATE : ZKC_REQ_SET;
    ops[0].path = co->path;
    ops[0].data = enc;
    ops[0].len = len;
    ops[0].version = b->cversion;
    zkc__record *rec = calloc(1, sizeof *rec);
    char recbuf[256];
    if (!rec)
        abort();
    snprintf(rec->id, sizeof rec->id, "%s", t->id);
    int rlen = zkc__record_encode(rec, recbuf, sizeof recbuf);
    free(rec);
    zkc__txn_marker_op(t, &ops[nops++], recbuf, rlen);
    zkc__cq_phase(b, "queued mode: applying the queue");
    b->at_sent = 1;
    zkc__cq_hold(b);
    zkc__txn_send(t, ops, nops, apply_done);
    for (int i = 0; i < nb; i++)
        free(bufs[i]);
    free(bufs);
    free(ops);
    free(adds);
    free(verdict);
    free(res);
}

static void applied_ok(cq *b)
{
    zkc__txn_finish(&b->at);
    b->at_live = 0;
    if (b->mine >= 0) {
        zkc__cq_finish_with(b, b->mverdict, b->mres);
        return;
    }
    zkc__cq_look(b); /* ours was beyond this apply */
}

static void mkparent_done(void *arg, int rc)
{
    cq *b = arg;
    if (!b->over) {
        if (rc != ZR_OK)
            zkc__cq_retry_later(b, rc, "creating the counter's parent nodes");
        else
            zkc__cq_look(b);
    }
    zkc__cq_drop(b);
}

static void apply_done(zkc__req *r)
{
    cq *b = ZKC__CONTAINER_OF((zkc__txn *)r->ctx, cq, at);
    if (b->over) {
        zkc__cq_drop(b);
        return;
    }
    int fi = -1, frc = r->rc;
    int v = zkc__txn_reply(&b->at, r, &fi, &frc);
    if (v == ZKC__TXN_APPLIED) {
        zkc__ctr_core *co = b->co;
        b->alone = b->mine == 0 && b->nq == 1 && b->lost == 0;
        co->value = b->final;
        co->version = b->cmissing ? 0 : r->ops[0].stat.version;
        co->missing = 0;
        co->cached = 1;
        co->fresh = 0;
        applied_ok(b);
    } else if (v == ZKC__TXN_OP_FAILED) {
        /* Nothing applied: another applier or a direct write got there first
         * (counter version, a queue node gone), or the counter's parent is missing. */
        zkc__txn_finish(&b->at);
        b->at_live = 0;
        b->co->cached = 0;
        if (fi == 0 && frc == ZR_NONODE && r->ops[0].type == ZKC_REQ_CREATE) {
            char dir[ZKC__PATH_MAX + 1];
            zkc__path_parent(b->co->path, dir, sizeof dir);
            zkc__cq_hold(b);
            zkc__mkpath(b->co->c, dir, mkparent_done, b);
        } else if (frc == ZR_BADVERSION || frc == ZR_NONODE || frc == ZR_NODEEXISTS) {
            ZKC__STAT_INC(b->co->c, conflicts);
            zkc__ctr_core *co = b->co;
            if (++b->lost >= ZKC__BEACON_AFTER && co->queued == ZKC_COUNTER_QUEUED_AUTO && !co->beacon.broken)
                zkc__beacon_raise(&co->beacon, b->cmissing); /* AUTO: let a direct winner see us wait */
            b->fence = b->lost >= 2; /* BOUND: lost twice, our server may lag */
            zkc__cq_look(b);
        } else {
            zkc__cq_retry_later(b, frc, "applying the counter's queue");
        }
    }
    zkc__cq_drop(b);
}

static void at_round_cb(zkc__txn *t)
{
    /* After a loss decided "not applied" (or a session that ended unsent):
     * forget this attempt and look again with a new one. */
    cq *b = ZKC__CONTAINER_OF(t, cq, at);
    if (b->at_sent) {
        zkc__txn_finish(&b->at);
        b->at_live = 0;
        zkc__cq_look(b);
        return;
    }
    at_round(t);
}

static void at_applied(zkc__txn *t, const zkc__record *rec)
{
    ZKC__UNUSED(rec);
    cq *b = ZKC__CONTAINER_OF(t, cq, at);
    b->co->cached = 0;
    applied_ok(b);
}

static void at_unapplied(zkc__txn *t)
{
    ZKC__CONTAINER_OF(t, cq, at)->co->cached = 0;
}

static void at_fail(zkc__txn *t, int status, const char *msg)
{
    cq *b = ZKC__CONTAINER_OF(t, cq, at);
    zkc__txn_finish(&b->at);
    b->at_live = 0;
    if (status == ZKC_EUNKNOWN || status == ZKC_ECONNLOSS) {
        /* The apply's outcome is not known (or it never left): our batch's
         * truth is in the queue, so look there again (bounded by the
         * operation and session timeouts, retry_later). */
        if (status == ZKC_EUNKNOWN && b->mine >= 0) {
            b->pend = b->pend ? 2 : 1;
            memcpy(b->pverdict, b->mverdict, sizeof b->pverdict);
            memcpy(b->pres, b->mres, sizeof b->pres);
        }
        zkc__cq_retry_later(b, ZR_CONNLOSS, msg);
        return;
    }
    zkc__cq_give_up(b, status, msg);
}

static const zkc__txn_ops apply_ops = {
    .round = at_round_cb,
    .applied = at_applied,
    .unapplied = at_unapplied,
    .fail = at_fail,
    .phase = zkc__cq_txn_phase,
    .unknown_hint = "",
};
