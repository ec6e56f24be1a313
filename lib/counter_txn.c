/*
 * A counter write on the transaction core (lib/txn.c): one batch of a core's
 * queued updates (COMBINING in lib/counter.c), or one multi-counter add.
 *
 * A round reads what the cache lacks, walks the updates from the cached value
 * as if applied one by one (each gets its own before/after, or a refusal),
 * and sends one multi of
 *     setData(counter, new, expected version)          (or create, if missing)
 *     setData(marker, "<txn id> <before> <after>...")  (txn.c: EXACTLY ONCE)
 *     [create(key node, same record)]                  (idempotency key, if any)
 * Key nodes (<meta_root>/keys/<2 hex>/<key>) record the first outcome of a
 * keyed update so a repeat (another process, a restart) replays it; a refusal
 * (bound, mismatch, overflow) of a keyed update first checks the key was not
 * applied before. Refusals rest on a read made in the round (synced when
 * nothing would be written), never on the cache alone.
 */
#include "counter.h"
#include "opwatch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void multi_done(zkc__req *r);

/* Test builds (opwatch.h): where the updates of t are, for the watchdog. */
void zkc__ctr_txn_phase(zkc__ctr_txn *t, const char *state)
{
#ifdef ZKC_OPWATCH
    if (t->multi)
        zkc__opwatch_state(&t->multi->op, state);
    for (int i = 0; i < t->nu; i++)
        zkc__opwatch_state(&t->u[i]->op, state);
#else
    ZKC__UNUSED(t);
    ZKC__UNUSED(state);
#endif
}

/* The cores the txn held (a batch's one, a multi's each) are given back
 * last: they may go with it (LIFETIME in lib/counter.c). */
static void txn_end(zkc__ctr_txn *t)
{
    zkc__ctr_core *co = t->co;
    zkc__ctr_core **held = t->held;
    int nheld = t->nheld;
    zkc__txn_finish(&t->t);
    int lost = t->t.lost;
    free(t);
    if (co) {
        co->busy = 0;
        zkc__beacon_settle(&co->beacon, lost);
        zkc__cq_auto_direct(co, lost); /* a batch boundary: AUTO may switch here */
        zkc__ctr_core_kick(co);
        zkc__ctr_core_drop(co);
    }
    for (int i = 0; i < nheld; i++)
        zkc__ctr_core_drop(held[i]);
    free(held);
}

/* Complete everything in t with one status (errors). */
static void txn_fail(zkc__ctr_txn *t, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
static void txn_fail(zkc__ctr_txn *t, int status, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (t->multi)
        zkc__ctr_upd_finish(t->multi, status, "%s", msg);
    for (int i = 0; i < t->nu; i++)
        zkc__ctr_upd_finish(t->u[i], status, "%s", msg);
    txn_end(t);
}

/* ---- computing a round ---- */

static int bounded(int64_t v, const zkc_bounds *b)
{
    return !(b->has_floor && v < b->floor) && !(b->has_ceiling && v > b->ceiling);
}

/* Batch: walk the queued updates from the cached value as if applied one by
 * one. Returns the number that write. */
static int plan_batch(zkc__ctr_txn *t, int64_t *final)
{
    zkc__ctr_core *co = t->co;
    int64_t cur = co->value;
    int writes = 0;
    char enc[24];
    for (int i = 0; i < t->nu; i++) {
        zkc__ctr_upd *u = t->u[i];
        u->verdict = 0;
        int64_t next = cur;
        switch (u->type) {
        case ZKC__CTR_ADD:
            if (__builtin_add_overflow(cur, u->a, &next)) {
                u->verdict = ZKC_EOVERFLOW;
            } else if (!bounded(next, &u->bounds)) {
                u->verdict = ZKC_EBOUND;
            }
            break;
        case ZKC__CTR_SET:
            next = u->a;
            break;
        case ZKC__CTR_CAS:
            if (cur != u->a)
                u->verdict = ZKC_EMISMATCH;
            else
                next = u->b;
            break;
        }
        if (!u->verdict && zkc__value_encode(co->fmt, next, enc) < 0)
            u->verdict = ZKC_EOVERFLOW;
        u->res.before = cur;
        u->res.after = u->verdict ? cur : next;
        if (!u->verdict) {
            cur = next;
            writes++;
        }
    }
    *final = cur;
    return writes;
}

static int plan_multi(zkc__ctr_txn *t)
{
    zkc__ctr_upd *u = t->multi;
    char enc[24];
    int writes = 0;
    u->failed_index = -1;
    u->verdict = 0;
    for (int i = 0; i < u->n; i++) {
        zkc__ctr_core *co = u->cores[i];
        int64_t next;
        /* Two ops on one counter add up; the first one's "after" is the second's base. */
        int64_t base = co->value;
        for (int j = 0; j < i; j++)
            if (u->cores[j] == co)
                base = u->newv[j];
        if (__builtin_add_overflow(base, u->deltas[i], &next) || zkc__value_encode(co->fmt, next, enc) < 0) {
            u->verdict = ZKC_EOVERFLOW;
            u->failed_index = i;
            return 0;
        }
        if (!bounded(next, &u->mbounds[i])) {
            u->verdict = ZKC_EBOUND;
            u->failed_index = i;
            return 0;
        }
        u->mres[i].before = base;
        u->mres[i].after = next;
        u->newv[i] = next;
        writes++;
    }
    return writes;
}

/* ---- reading counters into the cache ---- */

typedef struct read_ctx {
    zkc__ctr_txn *t;
    zkc__ctr_core *co;
} read_ctx;

static int need_read(zkc__ctr_core *co)
{
    return !co->cached;
}

static void read_done(zkc__req *r)
{
    read_ctx *rc = r->ctx;
    zkc__ctr_txn *t = rc->t;
    int err = 0;
    const char *why = "";
    zkc__ctr_apply_read(rc->co, r, &err, &why);
    free(rc);
    if (err && !t->read_err) {
        t->read_err = err;
        if (err == ZKC_EBADDATA)
            snprintf(t->read_msg, sizeof t->read_msg, "counter %s: %s; nothing was written", r->path, why);
        else
            snprintf(t->read_msg, sizeof t->read_msg, "reading counter %s: %s", r->path, zkc__zrc_name(err));
    }
    /* A multi may have several reads out: go on when the last is back. */
    if (--t->reads > 0)
        return;
    if (t->read_err) {
        int e = t->read_err;
        t->read_err = 0;
        txn_fail(t, e == ZKC_EBADDATA ? ZKC_EBADDATA : zkc__ctr_read_error(t->t.c, e), "%s", t->read_msg);
        return;
    }
    zkc__ctr_txn_round(t);
}

static int start_reads(zkc__ctr_txn *t)
{
    int started = 0;
    zkc__ctr_core *list[ZKC__CTR_BATCH_MAX + ZKC__REC_MAX_ENTRIES];
    int nl = 0;
    if (t->co) {
        list[nl++] = t->co;
    } else {
        for (int i = 0; i < t->multi->n; i++) {
            int dup = 0;
            for (int j = 0; j < nl; j++)
                dup |= list[j] == t->multi->cores[i];
            if (!dup)
                list[nl++] = t->multi->cores[i];
        }
    }
    int missing = 0;
    for (int i = 0; i < nl; i++)
        missing += need_read(list[i]);
    if (!missing)
        return 0;
    zkc__ctr_txn_phase(t, t->sync_first ? "sync, then reading the counter" : "reading the counter");
    for (int i = 0; i < nl; i++) {
        if (!need_read(list[i]))
            continue;
        read_ctx *rc = calloc(1, sizeof *rc);
        if (!rc)
            abort();
        rc->t = t;
        rc->co = list[i];
        t->reads++;
        if (t->sync_first)
            zkc__sync_get(t->t.c, list[i]->path, read_done, rc);
        else
            zkc__get(t->t.c, list[i]->path, NULL, read_done, rc);
        started++;
    }
    t->sync_first = 0;
    return started;
}

typedef struct refusal {
    zkc__ctr_upd *u;
    int status;
    char *kp;
    char msg[256];
} refusal;

/* The update was applied before under its key: report that first outcome. */
static void upd_replay(zkc__ctr_upd *u, const zkc__record *rec)
{
    u->res.before = rec->before[0];
    u->res.after = rec->after[0];
    u->res.replayed = 1;
    if (u->type == ZKC__CTR_MULTI)
        for (int i = 0; i < u->n && i < rec->n; i++) {
            u->mres[i].before = rec->before[i];
            u->mres[i].after = rec->after[i];
            u->mres[i].replayed = 1;
        }
    zkc__ctr_upd_finish(u, 0, NULL);
}

static void refusal_key_done(zkc__req *r)
{
    refusal *f = r->ctx;
    zkc__ctr_upd *u = f->u;
    zkc__record rec;
    if (r->rc == ZR_OK && zkc__record_decode(r->value, r->valuelen, &rec) == 0 && rec.n > 0) {
        /* Applied before under this key (a restarted worker's retry): that
         * first outcome is the answer, not today's refusal. */
        upd_replay(u, &rec);
    } else {
        zkc__ctr_upd_finish(u, f->status, "%s", f->msg);
    }
    free(f->kp);
    free(f);
}

/* A refusal (bound, mismatch, overflow) of a keyed update first checks whether
 * the key was applied before. */
static void refuse(zkc__ctr_upd *u, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
static void refuse(zkc__ctr_upd *u, int status, const char *fmt, ...)
{
    refusal *f = calloc(1, sizeof *f);
    char *kp = u->key ? zkc__ctr_key_path(u->op.c, u->key) : NULL;
    va_list ap;
    va_start(ap, fmt);
    if (f)
        vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
    if (!f || !kp) {
        zkc__ctr_upd_finish(u, status, "%s", f ? f->msg : "refused");
        free(f);
        free(kp);
        return;
    }
    f->u = u;
    f->status = status;
    f->kp = kp;
    zkc__opwatch_state(&u->op, "refused: checking its key was not applied before");
    /* sync: the key may have been written through another server a moment ago. */
    zkc__sync_get(u->op.c, kp, refusal_key_done, f);
}

static void complete_batch_refusals_and_writes(zkc__ctr_txn *t, int wrote)
{
    for (int i = 0; i < t->nu; i++) {
        zkc__ctr_upd *u = t->u[i];
        if (u->verdict == ZKC_EBOUND)
            refuse(u, ZKC_EBOUND,
                   "counter %s: %+" PRId64 " from %" PRId64 " leaves the allowed range; nothing was written",
                   t->co->path, u->a, u->res.before);
        else if (u->verdict == ZKC_EMISMATCH)
            refuse(u, ZKC_EMISMATCH, "counter %s is %" PRId64 ", not the expected %" PRId64, t->co->path,
                   u->res.before, u->a);
        else if (u->verdict)
            refuse(u, u->verdict, "counter %s: result does not fit the counter's format; nothing was written",
                   t->co->path);
        else if (wrote)
            zkc__ctr_upd_finish(u, 0, NULL);
    }
}

/* A multi-add writes each counter node once: is op i the last op on its node
 * (the one that carries the total)? */
static int last_on_node(const zkc__ctr_upd *u, int i)
{
    for (int j = i + 1; j < u->n; j++)
        if (u->cores[j] == u->cores[i])
            return 0;
    return 1;
}

static void txn_send(zkc__ctr_txn *t)
{
    zkc_client *c = t->t.c;
    zkc__mop ops[ZKC__REC_MAX_ENTRIES + ZKC__CTR_BATCH_MAX + 2];
    char encs[ZKC__REC_MAX_ENTRIES][24];
    int nops = 0;
    zkc__record *rec = calloc(1, sizeof *rec);
    char *recbuf = malloc(16384);
    char *keyp[ZKC__CTR_BATCH_MAX + 1];
    char *keyrec[ZKC__CTR_BATCH_MAX + 1];
    int nkeys = 0;
    if (!rec || !recbuf)
        abort();
    snprintf(rec->id, sizeof rec->id, "%s", t->t.id);
    memset(ops, 0, sizeof ops);
    if (t->co) {
        zkc__ctr_core *co = t->co;
        int64_t final;
        plan_batch(t, &final);
        int len = zkc__value_encode(co->fmt, final, encs[0]);
        ops[nops].type = co->missing ? ZKC_REQ_CREATE : ZKC_REQ_SET;
        ops[nops].path = co->path;
        ops[nops].data = encs[0];
        ops[nops].len = len;
        ops[nops].version = co->version;
        nops++;
        for (int i = 0; i < t->nu; i++) {
            rec->before[rec->n] = t->u[i]->res.before;
            rec->after[rec->n] = t->u[i]->res.after;
            rec->n++;
        }
    } else {
        zkc__ctr_upd *u = t->multi;
        for (int i = 0; i < u->n; i++) {
            zkc__ctr_core *co = u->cores[i];
            int last = last_on_node(u, i);
            rec->before[rec->n] = u->mres[i].before;
            rec->after[rec->n] = u->mres[i].after;
            rec->n++;
            if (!last)
                continue; /* one write per node: the last op on it carries the total */
            int len = zkc__value_encode(co->fmt, u->newv[i], encs[i]);
            ops[nops].type = co->missing ? ZKC_REQ_CREATE : ZKC_REQ_SET;
            ops[nops].path = co->path;
            ops[nops].data = encs[i];
            ops[nops].len = len;
            ops[nops].version = co->version;
            nops++;
        }
    }
    int rlen = zkc__record_encode(rec, recbuf, 16384);
    zkc__txn_marker_op(&t->t, &ops[nops++], recbuf, rlen);
    /* Keys: each keyed update records its own outcome. */
    zkc__ctr_upd *keyed[ZKC__CTR_BATCH_MAX + 1];
    int nk = t->multi ? 1 : t->nu;
    for (int i = 0; i < nk; i++) {
        zkc__ctr_upd *u = t->multi ? t->multi : t->u[i];
        if (!u->key || (u->verdict && !t->multi))
            continue;
        zkc__record kr;
        memset(&kr, 0, sizeof kr);
        snprintf(kr.id, sizeof kr.id, "%s", t->t.id);
        if (t->multi) {
            for (int j = 0; j < u->n; j++) {
                kr.before[j] = u->mres[j].before;
                kr.after[j] = u->mres[j].after;
            }
            kr.n = u->n;
        } else {
            kr.before[0] = u->res.before;
            kr.after[0] = u->res.after;
            kr.n = 1;
        }
        keyp[nkeys] = zkc__ctr_key_path(c, u->key);
        keyrec[nkeys] = malloc(16384);
        if (!keyp[nkeys] || !keyrec[nkeys])
            abort();
        int kl = zkc__record_encode(&kr, keyrec[nkeys], 16384);
        ops[nops].type = ZKC_REQ_CREATE;
        ops[nops].path = keyp[nkeys];
        ops[nops].data = keyrec[nkeys];
        ops[nops].len = kl;
        keyed[nkeys] = u;
        nkeys++;
        nops++;
    }
    ZKC__UNUSED(keyed);
    zkc__txn_send(&t->t, ops, nops, multi_done);
    for (int i = 0; i < nkeys; i++) {
        free(keyp[i]);
        free(keyrec[i]);
    }
    free(rec);
    free(recbuf);
}

/* Decide whether the round is ready to send, or what must happen first. */
void zkc__ctr_txn_round(zkc__ctr_txn *t)
{
    if (start_reads(t))
        return;
    int writes;
    if (t->co) {
        int64_t final;
        writes = plan_batch(t, &final);
    } else {
        writes = plan_multi(t);
    }
    zkc__ctr_core *co1 = t->co ? t->co : NULL;
    int all_fresh = 1;
    if (co1)
        all_fresh = co1->fresh;
    else
        for (int i = 0; i < t->multi->n; i++)
            all_fresh &= t->multi->cores[i]->fresh;
    if (writes == 0) {
        if (!all_fresh) {
            /* Refusals must rest on what the leader says now, not on our cache
             * nor on a follower that lags it: sync, then read. */
            t->sync_first = 1;
            if (co1)
                co1->cached = 0;
            else
                for (int i = 0; i < t->multi->n; i++)
                    t->multi->cores[i]->cached = 0;
            zkc__ctr_txn_round(t);
            return;
        }
        if (t->multi) {
            zkc__ctr_upd *u = t->multi;
            int i = u->failed_index;
            t->multi = NULL;
            if (u->verdict == ZKC_EBOUND)
                refuse(u, ZKC_EBOUND,
                       "counter %s (op %d): %+" PRId64 " from %" PRId64 " leaves the allowed range; nothing was written",
                       u->cores[i]->path, i, u->deltas[i], u->cores[i]->value);
            else
                refuse(u, u->verdict, "counter %s (op %d): result does not fit its format; nothing was written",
                       u->cores[i]->path, i);
        } else {
            complete_batch_refusals_and_writes(t, 0);
        }
        txn_end(t);
        return;
    }
    /* Version -1 would be an unconditional write: refuse instead. */
    zkc__ctr_core *wrap = NULL;
    if (co1 && !co1->missing && !zkc__version_usable(co1->version))
        wrap = co1;
    for (int i = 0; !co1 && i < t->multi->n; i++)
        if (!t->multi->cores[i]->missing && !zkc__version_usable(t->multi->cores[i]->version))
            wrap = t->multi->cores[i];
    if (wrap) {
        txn_fail(t, ZKC_EVERSIONWRAP,
                 "counter %s: its znode version wrapped to -1, so no conditional write is possible; run "
                 "zkc_counter_rebase",
                 wrap->path);
        return;
    }
    if (!zkc__txn_marker_ready(&t->t))
        return; /* it calls back when the marker is ready */
    txn_send(t);
}

/* ---- outcome ---- */

static void applied_from_record(zkc__ctr_txn *t, const zkc__record *rec)
{
    /* The marker shows our id: applied, with the values of the attempt that landed. */
    if (t->multi) {
        zkc__ctr_upd *u = t->multi;
        for (int i = 0; i < u->n && i < rec->n; i++) {
            u->mres[i].before = rec->before[i];
            u->mres[i].after = rec->after[i];
        }
        u->res = u->mres[0];
        for (int i = 0; i < u->n; i++)
            u->cores[i]->cached = 0;
        t->multi = NULL;
        zkc__ctr_upd_finish(u, 0, NULL);
    } else {
        int k = 0;
        for (int i = 0; i < t->nu; i++) {
            zkc__ctr_upd *u = t->u[i];
            if (k < rec->n) {
                u->res.before = rec->before[k];
                u->res.after = rec->after[k];
            }
            k++;
        }
        /* Refusals were judged against the base that landed. */
        for (int i = 0; i < t->nu; i++) {
            zkc__ctr_upd *u = t->u[i];
            if (u->res.before == u->res.after && u->verdict)
                continue;
            u->verdict = 0;
        }
        complete_batch_refusals_and_writes(t, 1);
    }
    if (t->co)
        t->co->cached = 0;
    txn_end(t);
}

typedef struct replay_ctx {
    zkc__ctr_txn *t;
    zkc__ctr_upd *u;
} replay_ctx;

static void replay_done(zkc__req *r)
{
    replay_ctx *rc = r->ctx;
    zkc__ctr_txn *t = rc->t;
    zkc__ctr_upd *u = rc->u;
    free(rc);
    zkc__record rec;
    int decoded = r->rc == ZR_OK && zkc__record_decode(r->value, r->valuelen, &rec) == 0 && rec.n > 0;
    if (r->rc == ZR_NONODE) {
        /* Expired between our create and this read: apply it for real. */
        free(u->key);
        u->key = NULL;
        zkc__ctr_txn_round(t);
        return;
    }
    /* Take it out of the batch first: finishing a blocking caller's update
     * hands its memory back to that caller. */
    if (!t->multi) {
        int k = 0;
        for (int i = 0; i < t->nu; i++)
            if (t->u[i] != u)
                t->u[k++] = t->u[i];
        t->nu = k;
    }
    if (decoded) {
        upd_replay(u, &rec);
    } else {
        zkc__ctr_upd_finish(u, r->rc == ZR_OK ? ZKC_EBADDATA : zkc__txn_req_error(r->rc), "reading idempotency key %s: %s", u->key,
                   r->rc == ZR_OK ? "malformed record" : zkc__zrc_name(r->rc));
    }
    if (t->multi || t->nu == 0) {
        if (t->multi)
            t->multi = NULL;
        txn_end(t);
        return;
    }
    zkc__ctr_txn_round(t);
}

static void keydir_done(void *arg, int rc)
{
    zkc__ctr_txn *t = arg;
    if (rc != ZR_OK) {
        txn_fail(t, zkc__map_zrc(rc), "cannot create parent nodes: %s", zkc__zrc_name(rc));
        return;
    }
    zkc__ctr_txn_round(t);
}


static void multi_done(zkc__req *r)
{
    zkc__txn *tc = r->ctx;
    zkc__ctr_txn *t = ZKC__CONTAINER_OF(tc, zkc__ctr_txn, t);
    zkc_client *c = t->t.c;
    int fi = -1, frc = r->rc;
    int verdict = zkc__txn_reply(tc, r, &fi, &frc);
    if (verdict == ZKC__TXN_TAKEN)
        return;
    /* The counters' ops come first in the multi, then the marker, then keys. */
    int ncounter = zkc__txn_marker_index(tc, r);
    if (verdict == ZKC__TXN_APPLIED) {
        if (t->co) {
            zkc__ctr_core *co = t->co;
            co->value = t->u[t->nu - 1]->res.after;
            for (int i = t->nu - 1; i >= 0; i--)
                if (!t->u[i]->verdict) {
                    co->value = t->u[i]->res.after;
                    break;
                }
            if (!co->missing)
                zkc__beacon_observe(&co->beacon, &r->ops[0].stat);
            zkc__beacon_rtt(&co->beacon, zkc__now_ms() - t->t.sent_ms);
            co->version = co->missing ? 0 : r->ops[0].stat.version;
            co->missing = 0;
            co->cached = 1;
            co->fresh = 0;
            complete_batch_refusals_and_writes(t, 1);
        } else {
            zkc__ctr_upd *u = t->multi;
            int k = 0;
            for (int i = 0; i < u->n; i++) {
                zkc__ctr_core *co = u->cores[i];
                if (!last_on_node(u, i))
                    continue;
                co->value = u->newv[i];
                co->version = co->missing ? 0 : r->ops[k].stat.version;
                co->missing = 0;
                co->cached = 1;
                co->fresh = 0;
                k++;
            }
            u->res = u->mres[0];
            zkc__ctr_upd_finish(u, 0, NULL);
        }
        txn_end(t);
        return;
    }
    if (fi >= 0 && fi < ncounter) {
        /* A counter moved under us (BadVersion), vanished, or appeared. */
        ZKC__STAT_INC(c, conflicts);
        if (t->co) {
            t->co->cached = 0;
        } else {
            for (int i = 0; i < t->multi->n; i++)
                if (strcmp(t->multi->cores[i]->path, r->ops[fi].path) == 0)
                    t->multi->cores[i]->cached = 0;
        }
        if (frc != ZR_BADVERSION && frc != ZR_NONODE && frc != ZR_NODEEXISTS) {
            txn_fail(t, zkc__map_zrc(frc), "writing counter %s: %s", r->ops[fi].path, zkc__zrc_name(frc));
            return;
        }
        if (frc == ZR_NONODE && r->ops[fi].type == ZKC_REQ_CREATE) {
            /* Creating a missing counter whose parent is missing too. */
            char dir[ZKC__PATH_MAX + 1];
            zkc__path_parent(r->ops[fi].path, dir, sizeof dir);
            zkc__ctr_txn_phase(t, "creating the counter's parent nodes");
            zkc__mkpath(c, dir, keydir_done, t);
            return;
        }
        zkc__ctr_upd *first = t->multi ? t->multi : t->u[0];
        int max = t->co ? t->co->max_attempts : first->ctr ? first->ctr->co->max_attempts : 64;
        if (++first->attempts >= max) {
            txn_fail(t, ZKC_ECONTENDED, "counter %s: %d compare-and-swap rounds lost to other writers",
                     r->ops[fi].path, first->attempts);
            return;
        }
        if (t->co && first->attempts >= ZKC__BEACON_AFTER && !t->co->beacon.broken) {
            /* Tell the winner we wait (FAIRNESS in lib/beacon.c). */
            zkc__beacon_raise(&t->co->beacon, t->co->missing);
            zkc__txn_backoff(tc, first->attempts, t->co->beacon.rtt_ms);
            return;
        }
        zkc__txn_backoff(tc, first->attempts, -1);
        return;
    }
    if (fi > ncounter) {
        const char *kp = r->ops[fi].path;
        if (frc == ZR_NODEEXISTS) {
            /* This key was applied before: hand back its first outcome. */
            const char *kname = strrchr(kp, '/') + 1;
            zkc__ctr_upd *u = NULL;
            if (t->multi)
                u = t->multi;
            else
                for (int i = 0; i < t->nu; i++)
                    if (t->u[i]->key && strcmp(t->u[i]->key, kname) == 0)
                        u = t->u[i];
            if (!u) {
                txn_fail(t, ZKC_ESERVER, "key %s collided with no update of ours", kp);
                return;
            }
            replay_ctx *rc = calloc(1, sizeof *rc);
            if (!rc)
                abort();
            rc->t = t;
            rc->u = u;
            zkc__ctr_txn_phase(t, "reading an idempotency key applied before");
            zkc__get(c, kp, NULL, replay_done, rc);
            return;
        }
        if (frc == ZR_NONODE) {
            char dir[ZKC__PATH_MAX + 1];
            zkc__path_parent(kp, dir, sizeof dir);
            zkc__ctr_txn_phase(t, "creating the key's parent nodes");
            zkc__mkpath(c, dir, keydir_done, t);
            return;
        }
        txn_fail(t, zkc__map_zrc(frc), "creating idempotency key %s: %s", kp, zkc__zrc_name(frc));
        return;
    }
    txn_fail(t, zkc__map_zrc(frc), "counter transaction failed: %s", zkc__zrc_name(frc));
}

/* ---- on the transaction core ---- */

static zkc__ctr_txn *of(zkc__txn *tc)
{
    return ZKC__CONTAINER_OF(tc, zkc__ctr_txn, t);
}

static void on_round(zkc__txn *tc)
{
    zkc__ctr_txn_round(of(tc));
}

static void on_applied(zkc__txn *tc, const zkc__record *rec)
{
    applied_from_record(of(tc), rec);
}

static void on_unapplied(zkc__txn *tc)
{
    zkc__ctr_txn *t = of(tc);
    if (t->co)
        t->co->cached = 0;
    else
        for (int i = 0; i < t->multi->n; i++)
            t->multi->cores[i]->cached = 0;
}

static void on_fail(zkc__txn *tc, int status, const char *msg)
{
    txn_fail(of(tc), status, "%s", msg);
}

static void on_phase(zkc__txn *tc, const char *state)
{
    zkc__ctr_txn_phase(of(tc), state);
}

static const zkc__txn_ops counter_txn_ops = {
    .round = on_round,
    .applied = on_applied,
    .unapplied = on_unapplied,
    .fail = on_fail,
    .phase = on_phase,
    .unknown_hint = "; with an idempotency key, zkc_counter_lookup tells what happened",
};

zkc__ctr_txn *zkc__ctr_txn_new(zkc_client *c)
{
    zkc__ctr_txn *t = calloc(1, sizeof *t);
    if (t)
        zkc__txn_init(&t->t, c, &counter_txn_ops);
    return t;
}
