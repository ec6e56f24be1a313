/*
 * The queued mode of a counter (zkc_counter_options.queued): adds hot across
 * processes go through a queue instead of racing each other's compare-and-set.
 * This file holds a batch's life, the enqueue, the look and the AUTO policy;
 * step 3, the apply, is lib/counter_queue_apply.c.
 *
 * QUEUE. <meta_root>/cq/<16 hex digits of the counter path's hash> holds
 *     q-<uuid>-<seq>   persistent sequential: one client batch of plain adds,
 *                      "zkcq1 <counter path>\n<n>\n<delta> <flags> <floor> <ceiling>\n..."
 *     q-<uuid>-i<adds>-<seq>  the same, its adds also in the name (PIPELINE)
 *     r-<seq>-<uuid>   the outcome of the batch q-<uuid>-<seq> once applied,
 *                      "zkcr1 <n>\n<status> <before> <after>\n..."
 * (not under the counter node: its children are fairness beacons, and a
 * persistent child would stop the counter from being deleted).
 *
 * ONE BATCH (all on the engine):
 *   1. enqueue: multi {create q-<uuid>- sequential, [delete the r- node of
 *      our previous batch, read], setData(marker)} on the transaction core (lib/txn.c): an unanswered enqueue is decided by the
 *      marker like any counter write, so a batch is queued at most once and a
 *      retry after "not applied" cannot double it.
 *   2. look: list the queue (PIPELINE: sent behind the enqueue). Our r- node there: read our outcome, done (it
 *      is deleted later: RETENTION). Our q- node first in sequence order (or we waited longer than
 *      zkc__cq_patience_ms: a dead or slow head is not waited for): apply.
 *      Else watch the q- node just ahead of ours; when it goes, read our r-
 *      node by name (it usually went in the same multi), and look again only
 *      if it is not there.
 *   3. apply: read the counter (value, version) and the queued batches (up to
 *      CQ_APPLY_MAX, in sequence order; PIPELINE: what the names carry is
 *      not read), walk every add from the value as if
 *      applied one by one (bounds and overflow decided in that order; a
 *      refusal writes nothing for that add), and send one multi of
 *          setData(counter, new value, version read)   (create when missing)
 *          delete(q-node) for each batch applied
 *          create(r-node, its outcome) for each batch but ours
 *          setData(marker)                             (txn.c: EXACTLY ONCE)
 *      The applier's own outcome is the plan it sent (each apply is one
 *      attempt of its own transaction id, so "the marker shows our id" means
 *      exactly that plan landed). An apply whose outcome cannot be decided
 *      (no server answered the marker read) goes back to step 2: if our q-
 *      node is then gone with no r- node for us, the multi that took it wrote
 *      none, so it was our own apply, and if only one undecided attempt of
 *      ours carried it, its plan is our outcome (else ZKC_EUNKNOWN).
 *
 * EXACTLY ONCE. A q- node is applied at most once: the multi that applies it
 * deletes it, so a second multi naming it fails whole (NONODE). It is applied
 * on the value it was planned on: the multi is conditional on the counter's
 * version, which every write of the counter moves (direct adds of lib/counter_txn.c
 * included), so direct and queued adds are ordered by that version alone and a
 * stale applier (one that read before another apply, or a half-dead one whose
 * multi arrives late) fails whole. An applier whose reply is lost decides by
 * its marker (txn.c); an attempt decided "not applied" goes back to step 2 with
 * a fresh transaction (new id), so nothing of it is remembered as applied. Its
 * outcome reaches its enqueuer in the same multi (r- node), so an enqueuer that
 * finds its q- node gone finds its outcome. Queue nodes are persistent: a batch
 * whose client died or closed after enqueuing is applied by the next applier
 * all the same (its r- node then stays until reaped), never silently dropped.
 * A refusal (bound) rests on the value the multi is conditional on, so it
 * holds for the value the add would have met.
 *
 * BOUND. A batch ends within the operation and session timeouts of its
 * start, as every counter update does (README: Failure semantics). A lost
 * apply round says our view was behind the leader's (another apply or a
 * direct write got there first), so from the second one on each look goes
 * through a quorum fence (lib/req.c): a server that merely lags cannot make
 * us lose again on what it has not applied yet. An apply can still lose
 * every round: a direct writer that moves the version between our
 * read and our multi each time, or a server whose view of the queue never
 * catches up (seen in CI: an AUTO counter's adds open for 78 s, looping
 * list, apply, NONODE, while the ensemble's data trees had diverged). So a
 * listing made past the session timeout and three quarters of the operation
 * timeout that still shows our q- node does not apply or wait: it deletes
 * the node (withdraw), with the last quarter left for that. A delete that succeeds proves no
 * apply took the batch, nor ever will (an apply deletes what it applies), so
 * the caller hears ZKC_ECONTENDED, nothing written; NONODE means an apply
 * took it, and its outcome is read (fenced) from our r- node, or is the plan
 * of our one undecided apply; a delete with no answer leaves ZKC_EUNKNOWN.
 *
 * RETENTION. An r- node is deleted by its enqueuer once read: in the multi of
 * its next enqueue on that counter (no write of its own while adds follow),
 * or when the counter is closed or its client destroyed; those of
 * enqueuers that went away are deleted by whoever lists the queue once their
 * sequence number is more than zkc__cq_retain below their own (the sequence
 * counts the queue's creates and deletes).
 *
 * AUTO (ZKC_COUNTER_QUEUED_AUTO). Each client decides for itself, per
 * counter core, and only between two of its batches (the core runs one batch
 * at a time, so the next batch simply takes the other path; direct and queued
 * batches are ordered by the counter's version alone, see EXACTLY ONCE, so a
 * switch needs no handover). It starts direct, where an uncontended add is one
 * write and the queue is never touched.
 *   In: when its direct batches met AUTO_ENTER units of contention within a
 *   window of AUTO_WINDOW direct batches: a lost round is one unit, and so is
 *   a batch that ended while another client's fairness beacon was up (the
 *   winner, who loses no rounds, learns the others starve from it). Only
 *   contention counts, never timing, so a lone client never goes in.
 *   Out: when AUTO_LEAVE (auto_need) queued batches in a row found nobody else:
 *   it applied its own batch alone (the only node in the queue) at the first
 *   try. Then its last outcome record is deleted at once (no enqueue follows
 *   to carry it).
 *   No flapping: going in takes contention, coming out takes its absence for
 *   several batches, and a client that comes back in within AUTO_QUICK direct
 *   batches of leaving must find itself alone twice as many batches in a row
 *   to leave again (up to AUTO_NEED_MAX); a later return starts from
 *   AUTO_LEAVE again.
 *   Starvation: an applier of an AUTO core whose apply loses ZKC__BEACON_AFTER
 *   rounds (to a direct writer, or another applier) raises the core's fairness
 *   beacon (lib/beacon.c), so a direct winner yields to it and, counting the
 *   beacon, follows it in; the beacon is settled as the batch ends.
 * Only plain adds ever go queued (zkc__cq_takes); keyed, guarded, set and cas
 * stay direct and do not count for the policy while the core is queued.
 *
 * PIPELINE. Under contention a queue's throughput is set by the path from one
 * apply to the next: the waiter whose batch was not in an apply becomes the
 * head and must learn so, list the queue, read the batches behind it and
 * apply; and by the round trips of each add. Two things cut them:
 *   - the enqueue is followed, on the same session and without waiting, by
 *     the listing (and, when our last batch found itself alone, the counter
 *     read an apply needs); ZooKeeper serves one session's requests in order,
 *     so a listing that shows our new node was made after it, which is all
 *     step 2 asks. It is used only when the enqueue applied at its first
 *     reply; otherwise (a lost reply, a resend) we list again;
 *   - a batch's adds ride in its node's name when they fit
 *     (ZKC__CQ_INLINE_MAX, lib/counter_queue_codec.h), so the listing is all
 *     an applier reads; our own batch is never read back. A name whose inline
 *     part does not decode is read from its data, as before. Old clients
 *     parse only q-<uuid>-<seq>: they neither wait for nor apply named
 *     batches, which costs order, not exactness (the version and the deletes
 *     decide that, EXACTLY ONCE).
 * A stale counter read costs a lost round, never a wrong value: the apply is
 * conditional on the version read.
 *
 * WHAT IT TAKES: plain adds only (with bounds). Keyed, guarded, set and cas
 * updates take the direct path (lib/counter_txn.c), ordered with the queued
 * ones by the counter's version. A caller whose batch was queued hears
 * ZKC_EUNKNOWN if it gives up before learning the outcome (client destroyed,
 * no server): its batch stays queued and is applied by another client.
 */
#include "counter_queue.h"
#include "opwatch.h"
#include "watch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* AUTO (above). */
#define AUTO_ENTER 4     /* units of contention ... */
#define AUTO_WINDOW 8    /* ... within this many direct batches */
#define AUTO_LEAVE 8     /* lone queued batches in a row to leave */
#define AUTO_QUICK 64    /* a return within this many direct batches ... */
#define AUTO_NEED_MAX 128 /* ... doubles the lone batches needed, up to this */

int zkc__cq_patience_ms = 250;
int32_t zkc__cq_retain = 1 << 20;

static void peek(cq *b);
static void enqueue_round(zkc__txn *t);

/* ---------------------------------------------------------------- life */

void zkc__cq_hold(cq *b)
{
    b->refs++;
}

static void free_q(cq *b)
{
    for (int i = 0; i < b->nq; i++) {
        free(b->q[i].name);
        free(b->q[i].data);
    }
    free(b->q);
    b->q = NULL;
    b->nq = 0;
}

void zkc__cq_drop(cq *b)
{
    if (--b->refs > 0)
        return;
    free_q(b);
    free(b->qdir);
    free(b);
}

void zkc__cq_phase(cq *b, const char *state)
{
#ifdef ZKC_OPWATCH
    for (int i = 0; i < b->nu && !b->over; i++)
        zkc__opwatch_state(&b->u[i]->op, state);
#else
    ZKC__UNUSED(b);
    ZKC__UNUSED(state);
#endif
}

static void ignore_reply(zkc__req *r)
{
    ZKC__UNUSED(r);
}

void zkc__cq_flush(zkc__ctr_core *co)
{
    if (!co->rdel || co->busy)
        return;
    zkc__delete(co->c, co->rdel, -1, ignore_reply, NULL);
    free(co->rdel);
    co->rdel = NULL;
}

/* Stop waiting on the batch ahead: the watch's reference goes with it. */
static void unwatch(cq *b)
{
    if (!b->w)
        return;
    zkc__watch_drop(b->w);
    b->w = NULL;
    zkc__cq_drop(b);
}

/* ---------------------------------------------------------------- AUTO */

int zkc__cq_now(const zkc__ctr_core *co)
{
    return co->queued == ZKC_COUNTER_QUEUED_ALWAYS || (co->queued == ZKC_COUNTER_QUEUED_AUTO && co->auto_in);
}

void zkc__cq_auto_direct(zkc__ctr_core *co, int lost)
{
    if (co->queued != ZKC_COUNTER_QUEUED_AUTO || co->auto_in)
        return; /* a keyed/guarded/set/cas batch of a queued core: not measured */
    if (co->auto_since < AUTO_QUICK)
        co->auto_since++;
    co->auto_lost += lost + (co->beacon.others_waiting ? 1 : 0);
    if (co->auto_lost >= AUTO_ENTER) {
        co->auto_in = 1;
        co->auto_alone = 0;
        if (co->auto_need && co->auto_since < AUTO_QUICK)
            co->auto_need = co->auto_need * 2 < AUTO_NEED_MAX ? co->auto_need * 2 : AUTO_NEED_MAX;
        else
            co->auto_need = AUTO_LEAVE;
        co->auto_batches = co->auto_lost = 0;
        return;
    }
    if (++co->auto_batches >= AUTO_WINDOW)
        co->auto_batches = co->auto_lost = 0;
}

/* A queued batch of co ended (alone: see cq.alone). 1: co goes direct now. */
static int auto_queued(zkc__ctr_core *co, int alone)
{
    if (co->queued != ZKC_COUNTER_QUEUED_AUTO || !co->auto_in)
        return 0;
    co->auto_alone = alone ? co->auto_alone + 1 : 0;
    if (co->auto_alone < co->auto_need)
        return 0;
    co->auto_in = 0;
    co->auto_alone = 0;
    co->auto_since = 0;
    co->auto_batches = co->auto_lost = 0;
    return 1;
}

/* The batch is done: hand the core back (it may go with it: LIFETIME). */
static void cq_end(cq *b)
{
    zkc__ctr_core *co = b->co;
    b->over = 1;
    zkc__timer_disarm(co->c, &b->timer);
    unwatch(b);
    if (b->et_live) {
        zkc__txn_finish(&b->et);
        b->et_live = 0;
    }
    if (b->at_live) {
        zkc__txn_finish(&b->at);
        b->at_live = 0;
    }
    co->busy = 0;
    co->cq_alone = b->alone;
    if (co->queued == ZKC_COUNTER_QUEUED_AUTO)
        zkc__beacon_settle(&co->beacon, b->lost); /* the beacon an apply may have raised (AUTO) */
    if (auto_queued(co, b->alone))
        zkc__cq_flush(co); /* direct from now on: no enqueue will carry it */
    zkc__ctr_core_kick(co);
    if (co->refs == 1)
        zkc__cq_flush(co); /* no object and no batch left to carry it */
    zkc__ctr_core_drop(co);
    zkc__cq_drop(b);
}

static void finish_all(cq *b, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
static void finish_all(cq *b, int status, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (int i = 0; i < b->nu; i++)
        zkc__ctr_upd_finish(b->u[i], status, "%s", msg);
    cq_end(b);
}

/* Giving up once the batch may be queued: it stays there and another client
 * applies it, so the caller cannot be told "not applied". */
void zkc__cq_give_up(cq *b, int status, const char *why)
{
    if (!b->queued) {
        finish_all(b, status, "counter %s: %s; nothing was written", b->co->path, why);
        return;
    }
    finish_all(b, ZKC_EUNKNOWN,
               "counter %s: outcome unknown: %s while its add was queued (%s/q-%s-...); another client applies it",
               b->co->path, why, b->qdir, b->uuid);
}

/* Every planned outcome of ours: the updates' results, refusals by code. */
void zkc__cq_finish_with(cq *b, const int *verdict, const zkc_counter_result *res)
{
    for (int i = 0; i < b->nu; i++) {
        zkc__ctr_upd *u = b->u[i];
        u->res = res[i];
        if (verdict[i] == ZKC_EBOUND)
            zkc__ctr_upd_finish(u, ZKC_EBOUND,
                                "counter %s: %+" PRId64 " from %" PRId64
                                " leaves the allowed range; nothing was written (queued add)",
                                b->co->path, u->a, u->res.before);
        else if (verdict[i])
            zkc__ctr_upd_finish(u, verdict[i],
                                "counter %s: result does not fit the counter's format; nothing was written",
                                b->co->path);
        else
            zkc__ctr_upd_finish(u, 0, NULL);
    }
    cq_end(b);
}

/* ---------------------------------------------------------------- names */

char *zkc__cq_dir(zkc_client *c, const char *path)
{
    char name[32];
    snprintf(name, sizeof name, "cq/%016" PRIx64, zkc__hash64(path, strlen(path)));
    return zkc__path_join(c->meta_root, name);
}

/* "q-<uuid>-<seq>" or "q-<uuid>-i<inline adds>-<seq>" (PIPELINE): 0 and the
 * parts, or -1. With inl, the inline part in *inl, *inl_len (NULL, 0: none). */
static int parse_q(const char *name, char uuid[37], int32_t *seq, const char **inl, size_t *inl_len)
{
    size_t n = strlen(name);
    if (strncmp(name, "q-", 2) != 0 || n < 2 + 36 + 1 + 10 || name[38] != '-' || name[n - 11] != '-')
        return -1;
    if (n > 49 && (n < 51 || name[39] != 'i'))
        return -1;
    int64_t s = 0;
    for (size_t i = n - 10; i < n; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        s = s * 10 + (name[i] - '0');
    }
    if (s > INT32_MAX)
        return -1;
    memcpy(uuid, name + 2, 36);
    uuid[36] = 0;
    *seq = (int32_t)s;
    if (inl) {
        *inl = n > 49 ? name + 40 : NULL;
        *inl_len = n > 49 ? n - 11 - 40 : 0;
    }
    return 0;
}

/* "r-<seq>-<uuid>" */
static int parse_r(const char *name, char uuid[37], int32_t *seq)
{
    size_t n = strlen(name);
    if (strncmp(name, "r-", 2) != 0 || n != 2 + 10 + 1 + 36 || name[12] != '-')
        return -1;
    char digits[11];
    memcpy(digits, name + 2, 10);
    digits[10] = 0;
    char *end;
    long long s = strtoll(digits, &end, 10);
    if (*end)
        return -1;
    *seq = (int32_t)s;
    memcpy(uuid, name + 13, 36);
    uuid[36] = 0;
    return 0;
}

char *zkc__cq_r_path(const cq *b, int32_t seq, const char *uuid)
{
    char name[64];
    snprintf(name, sizeof name, "r-%010" PRId32 "-%s", seq, uuid);
    return zkc__path_join(b->qdir, name);
}

/* ---------------------------------------------------------------- records */

/* The records themselves are lib/counter_queue_codec.c (pure, fuzzed). */
_Static_assert(ZKC__CQ_ADDS_MAX == ZKC__CTR_BATCH_MAX, "a queued batch holds one core batch");

static void batch_adds(const cq *b, zkc__cq_add adds[ZKC__CTR_BATCH_MAX])
{
    for (int i = 0; i < b->nu; i++) {
        adds[i].delta = b->u[i]->a;
        adds[i].bounds = b->u[i]->bounds;
    }
}

char *zkc__cq_encode_own(const cq *b, int *len)
{
    zkc__cq_add adds[ZKC__CTR_BATCH_MAX];
    batch_adds(b, adds);
    return zkc__cq_encode_batch(b->co->path, b->nu, adds, len);
}

static int encode_inline(const cq *b, char inl[ZKC__CQ_INLINE_MAX + 1])
{
    zkc__cq_add adds[ZKC__CTR_BATCH_MAX];
    batch_adds(b, adds);
    return zkc__cq_encode_inline(b->nu, adds, inl);
}

/* ---------------------------------------------------------------- enqueue */

static void enq_done(zkc__req *r);
static void early_read_done(zkc__req *r);
static void early_list_done(zkc__req *r);

/* The enqueue that carried the delete of our last outcome record applied (or
 * found it gone): forget it. */
static void drop_rdel(cq *b)
{
    if (!b->rdel_sent)
        return;
    free(b->co->rdel);
    b->co->rdel = NULL;
    b->rdel_sent = 0;
}

static void qdir_made(void *arg, int rc)
{
    cq *b = arg;
    if (!b->over) {
        if (rc != ZR_OK)
            zkc__cq_give_up(b, zkc__txn_req_error(rc), "cannot create its queue directory");
        else
            enqueue_round(&b->et);
    }
    zkc__cq_drop(b);
}

static void enqueue_round(zkc__txn *t)
{
    cq *b = ZKC__CONTAINER_OF(t, cq, et);
    if (!zkc__txn_marker_ready(t))
        return;
    int len = 0;
    char *data = zkc__cq_encode_own(b, &len);
    char prefix[ZKC__PATH_MAX + 64 + ZKC__CQ_INLINE_MAX];
    char inl[ZKC__CQ_INLINE_MAX + 1];
    if (encode_inline(b, inl) > 0)
        snprintf(prefix, sizeof prefix, "%s/q-%s-i%s-", b->qdir, b->uuid, inl);
    else
        snprintf(prefix, sizeof prefix, "%s/q-%s-", b->qdir, b->uuid);
    zkc__record *rec = calloc(1, sizeof *rec);
    char recbuf[256];
    if (!data || !rec) {
        free(data);
        free(rec);
        zkc__cq_give_up(b, ZKC_ENOMEM, "out of memory");
        return;
    }
    snprintf(rec->id, sizeof rec->id, "%s", t->id);
    int rlen = zkc__record_encode(rec, recbuf, sizeof recbuf);
    free(rec);
    zkc__mop ops[3];
    int nops = 0;
    memset(ops, 0, sizeof ops);
    ops[nops].type = ZKC_REQ_CREATE;
    ops[nops].path = prefix;
    ops[nops].data = data;
    ops[nops].len = len;
    ops[nops].flags = ZC_SEQUENTIAL;
    nops++;
    if (b->co->rdel) {
        /* Our previous outcome record, read: removed in this multi. */
        ops[nops].type = ZKC_REQ_DELETE;
        ops[nops].path = b->co->rdel;
        ops[nops].version = -1;
        nops++;
    }
    b->rdel_sent = nops == 2;
    zkc__txn_marker_op(t, &ops[nops++], recbuf, rlen);
    b->queued = 1; /* from here on it may land */
    zkc__cq_phase(b, "queued mode: enqueuing the batch");
    zkc__cq_hold(b);
    zkc__txn_send(t, ops, nops, enq_done);
    free(data);
    /* PIPELINE: on the same session, so served after the enqueue. */
    b->early_gen++;
    b->early = 1;
    b->c_known = 0;
    if (b->co->cq_alone) {
        /* Alone last time: likely the head again, and then the apply needs
         * no read at all. Under contention the read would mostly be wasted. */
        zkc__cq_hold(b);
        zkc__get(b->co->c, b->co->path, NULL, early_read_done, b)->tag = b->early_gen;
    }
    zkc__cq_hold(b);
    zkc__children(b->co->c, b->qdir, NULL, early_list_done, b)->tag = b->early_gen;
}

static void enq_done(zkc__req *r)
{
    cq *b = ZKC__CONTAINER_OF((zkc__txn *)r->ctx, cq, et);
    if (b->over) {
        zkc__cq_drop(b);
        return;
    }
    int fi = -1, frc = r->rc;
    int v = zkc__txn_reply(&b->et, r, &fi, &frc);
    if (v == ZKC__TXN_APPLIED) {
        drop_rdel(b);
        const char *cr = r->ops[0].created;
        const char *name = cr ? strrchr(cr, '/') : NULL;
        char uuid[37];
        if (name && parse_q(name + 1, uuid, &b->myseq, NULL, NULL) == 0)
            b->have_seq = 1;
        zkc__txn_finish(&b->et);
        b->et_live = 0;
        if (b->early == 1 && b->have_seq)
            b->early = 2; /* the listing behind the enqueue decides */
        else
            zkc__cq_look(b);
    } else if (v == ZKC__TXN_OP_FAILED) {
        if (fi == 1 && b->rdel_sent && frc == ZR_NONODE) {
            /* Nothing was applied; our old outcome record is gone already. */
            drop_rdel(b);
            enqueue_round(&b->et);
        } else if (fi == 0 && frc == ZR_NONODE) {
            /* Nothing was applied: make the queue directory and send again. */
            b->queued = 0;
            zkc__cq_hold(b);
            zkc__mkpath(b->co->c, b->qdir, qdir_made, b);
        } else {
            b->queued = 0;
            zkc__cq_give_up(b, zkc__map_zrc(frc), zkc__zrc_name(frc));
        }
    }
    zkc__cq_drop(b);
}

static void et_applied(zkc__txn *t, const zkc__record *rec)
{
    ZKC__UNUSED(rec);
    cq *b = ZKC__CONTAINER_OF(t, cq, et);
    drop_rdel(b);
    zkc__txn_finish(&b->et);
    b->et_live = 0;
    zkc__cq_look(b); /* our node is found by its uuid (look drops the pipelined reads) */
}

static void et_unapplied(zkc__txn *t)
{
    ZKC__UNUSED(t); /* the enqueue is sent again (round) */
}

static void et_fail(zkc__txn *t, int status, const char *msg)
{
    cq *b = ZKC__CONTAINER_OF(t, cq, et);
    if (status == ZKC_EUNKNOWN) {
        finish_all(b, status, "%s", msg);
        return;
    }
    b->queued = 0; /* the core decided: not applied */
    zkc__cq_give_up(b, status, msg);
}

void zkc__cq_txn_phase(zkc__txn *t, const char *state)
{
    ZKC__UNUSED(t);
    ZKC__UNUSED(state);
}

static const zkc__txn_ops enqueue_ops = {
    .round = enqueue_round,
    .applied = et_applied,
    .unapplied = et_unapplied,
    .fail = et_fail,
    .phase = zkc__cq_txn_phase,
    .unknown_hint = "",
};

/* ---------------------------------------------------------------- look */

static void timer_fired(zkc__timer *tm)
{
    cq *b = ZKC__CONTAINER_OF(tm, cq, timer);
    if (b->over)
        return;
    if (b->co->c->closing) {
        zkc__cq_give_up(b, ZKC_ECANCELED, "the client is being destroyed");
        return;
    }
    if (b->retrying)
        b->retrying = 0;
    else
        b->impatient = 1;
    zkc__cq_look(b);
}

void zkc__cq_retry_later(cq *b, int rc, const char *doing)
{
    zkc_client *c = b->co->c;
    if (c->closing || rc == ZR_CLOSING) {
        zkc__cq_give_up(b, ZKC_ECANCELED, "the client is being destroyed");
        return;
    }
    int64_t limit = (int64_t)c->opt.operation_timeout_ms + c->opt.session_timeout_ms;
    if (zkc__now_ms() - b->started_ms > limit) {
        char why[160];
        snprintf(why, sizeof why, "%s failed: %s", doing, zkc__zrc_name(rc));
        zkc__cq_give_up(b, zkc__txn_req_error(rc), why);
        return;
    }
    unwatch(b);
    b->retrying = 1;
    zkc__timer_arm(c, &b->timer, zkc__now_ms() + 20);
}

/* Our r- node, read: its outcome is ours. */
static void outcome_read(cq *b, zkc__req *r)
{
    int verdict[ZKC__CTR_BATCH_MAX];
    zkc_counter_result res[ZKC__CTR_BATCH_MAX];
    int bad = zkc__cq_decode_result(r->value, r->valuelen, b->nu, verdict, res);
    /* Read: ours to remove, in our next enqueue's multi (no write of
     * its own), or when the core goes idle (zkc__cq_flush). */
    zkc__cq_flush(b->co);
    if (!(b->co->rdel = strdup(r->path)))
        zkc__delete(b->co->c, r->path, -1, ignore_reply, NULL);
    if (bad)
        finish_all(b, ZKC_EBADDATA, "counter %s: malformed outcome record %s (the add was applied)",
                   b->co->path, r->path);
    else
        zkc__cq_finish_with(b, verdict, res);
}

static void result_read(zkc__req *r)
{
    cq *b = r->ctx;
    if (!b->over) {
        if (r->rc == ZR_OK) {
            outcome_read(b, r);
        } else if (r->rc == ZR_NONODE) {
            zkc__cq_look(b); /* not applied yet (peek), or gone: the queue tells */
        } else {
            zkc__cq_retry_later(b, r->rc, "reading the queued add's outcome");
        }
    }
    zkc__cq_drop(b);
}

/* The batch ahead went: most often ours went with it, so read our outcome
 * record by its name before listing the queue (one request, not two; a
 * listing sent with it measured no faster and cost 0.8 requests per add). */
static void peek(cq *b)
{
    char *p = b->have_seq ? zkc__cq_r_path(b, b->myseq, b->uuid) : NULL;
    if (!p) {
        zkc__cq_look(b);
        return;
    }
    unwatch(b);
    zkc__timer_disarm(b->co->c, &b->timer);
    zkc__cq_phase(b, "queued mode: reading the outcome");
    zkc__cq_hold(b);
    zkc__get(b->co->c, p, NULL, result_read, b);
    free(p);
}

static void pred_fired(zkc__watch *w, int ev)
{
    ZKC__UNUSED(ev);
    cq *b = w->ctx;
    if (b->w == w)
        b->w = NULL;
    if (!b->over)
        peek(b);
    zkc__cq_drop(b); /* the watch's */
}

static void pred_exists(zkc__req *r)
{
    cq *b = r->ctx;
    if (!b->over && r->rc == ZR_NONODE && b->w)
        peek(b); /* gone already: see whether ours went with it */
    else if (!b->over && r->rc != ZR_OK && b->w)
        zkc__cq_look(b); /* unreadable: look again rather than wait */
    zkc__cq_drop(b);
}

static int cmp_q(const void *x, const void *y)
{
    const qent *a = x, *b = y;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* BOUND: our r- node, read fenced after the withdraw found our q- node gone. */
static void withdrawn_read(zkc__req *r)
{
    cq *b = r->ctx;
    if (b->over) {
    } else if (r->rc == ZR_OK) {
        outcome_read(b, r);
    } else if (r->rc == ZR_NONODE && b->pend == 1) {
        zkc__cq_finish_with(b, b->pverdict, b->pres); /* our own undecided apply took it (step 3) */
    } else {
        finish_all(b, ZKC_EUNKNOWN,
                   "counter %s: the queued add was applied while being withdrawn, but its outcome "
                   "cannot be read (%s)",
                   b->co->path, r->rc == ZR_NONODE ? "no outcome record" : zkc__zrc_name(r->rc));
    }
    zkc__cq_drop(b);
}

/* Withdraw once the session timeout and three quarters of the operation
 * timeout have passed: the last quarter is the withdraw's own (a delete,
 * perhaps a fenced read), so the caller still hears within the bound, and an
 * add that a stalled quorum delays by seconds (a leader stopped, an election)
 * still gets most of its bound to be applied. */
static int64_t withdraw_after_ms(const zkc_client *c)
{
    return (int64_t)c->opt.session_timeout_ms + c->opt.operation_timeout_ms * 3 / 4;
}

static void withdraw_done(zkc__req *r)
{
    cq *b = r->ctx;
    if (b->over) {
    } else if (r->rc == ZR_OK) {
        b->queued = 0;
        finish_all(b, ZKC_ECONTENDED,
                   "counter %s: the queued add was not applied within %" PRId64 " ms (the session timeout and "
                   "3/4 of the operation timeout): withdrawn from the queue; nothing was written",
                   b->co->path, withdraw_after_ms(b->co->c));
    } else if (r->rc == ZR_NONODE) {
        char *p = zkc__cq_r_path(b, b->myseq, b->uuid);
        if (!p) {
            zkc__cq_give_up(b, ZKC_ENOMEM, "out of memory");
        } else {
            zkc__cq_phase(b, "queued mode: reading the outcome (withdrawing)");
            zkc__cq_hold(b);
            zkc__fence_get(b->co->c, p, withdrawn_read, b);
            free(p);
        }
    } else {
        zkc__cq_give_up(b, zkc__txn_req_error(r->rc), "withdrawing it from the queue had no answer");
    }
    zkc__cq_drop(b);
}

static int past_bound(const cq *b)
{
    return zkc__now_ms() - b->started_ms > withdraw_after_ms(b->co->c);
}

static void withdraw(cq *b, const char *name)
{
    char *p = zkc__path_join(b->qdir, name);
    if (!p) {
        zkc__cq_give_up(b, ZKC_ENOMEM, "out of memory");
        return;
    }
    zkc__cq_phase(b, "queued mode: withdrawing from the queue");
    zkc__cq_hold(b);
    zkc__delete(b->co->c, p, -1, withdraw_done, b);
    free(p);
}

/* Decide from a listing of the queue made after our enqueue. */
static void decide(cq *b, char **children, int nchildren)
{
    free_q(b);
    b->q = calloc((size_t)nchildren + 1, sizeof *b->q);
    if (!b->q) {
        zkc__cq_give_up(b, ZKC_ENOMEM, "out of memory");
        return;
    }
    int mine = -1, reaped = 0;
    char uuid[37];
    int32_t seq;
    for (int i = 0; i < nchildren; i++) {
        const char *name = children[i];
        const char *inl;
        size_t il;
        if (parse_q(name, uuid, &seq, &inl, &il) == 0) {
            qent *e = &b->q[b->nq];
            if (!(e->name = strdup(name)))
                continue;
            e->seq = seq;
            memcpy(e->uuid, uuid, sizeof uuid);
            b->nq++;
            zkc__cq_add adds[ZKC__CQ_ADDS_MAX];
            int na = inl ? zkc__cq_decode_inline(inl, il, adds) : -1;
            if (na > 0) /* no read needed (malformed: read the data instead) */
                e->data = zkc__cq_encode_batch(b->co->path, na, adds, &e->len);
        } else if (parse_r(name, uuid, &seq) == 0) {
            if (strcmp(uuid, b->uuid) == 0) {
                /* Applied by someone else: its outcome is there. */
                char *p = zkc__path_join(b->qdir, name);
                if (!p) {
                    zkc__cq_give_up(b, ZKC_ENOMEM, "out of memory");
                    return;
                }
                zkc__cq_phase(b, "queued mode: reading the outcome");
                zkc__cq_hold(b);
                zkc__get(b->co->c, p, NULL, result_read, b);
                free(p);
                return;
            }
            if (b->have_seq && seq < b->myseq - zkc__cq_retain && reaped < 16) {
                /* RETENTION: an outcome its enqueuer never came for. */
                char *p = zkc__path_join(b->qdir, name);
                if (p)
                    zkc__delete(b->co->c, p, -1, ignore_reply, NULL);
                free(p);
                reaped++;
            }
        }
    }
    qsort(b->q, (size_t)b->nq, sizeof *b->q, cmp_q);
    for (int i = 0; i < b->nq; i++)
        if (strcmp(b->q[i].uuid, b->uuid) == 0)
            mine = i;
    if (mine < 0 && b->pend == 1) {
        /* Neither queued nor an outcome record: applied by a multi that wrote
         * none for us, i.e. our own apply whose reply was never decided; only
         * one such attempt carried it, so its plan is what landed. */
        zkc__cq_finish_with(b, b->pverdict, b->pres);
        return;
    }
    if (mine < 0) {
        /* Neither queued nor an outcome: applied, and its outcome reaped (or
         * by one of several undecided applies of ours). */
        finish_all(b, ZKC_EUNKNOWN,
                   "counter %s: the queued add was applied but its outcome record is gone (retention)", b->co->path);
        return;
    }
    b->myseq = b->q[mine].seq;
    b->have_seq = 1;
    if (past_bound(b)) {
        withdraw(b, b->q[mine].name);
        return;
    }
    if (mine == 0 || b->impatient) {
        zkc__cq_apply(b);
        return;
    }
    /* Wait for the batch just ahead of ours, or for our patience to end. */
    zkc__cq_phase(b, "queued mode: waiting for the batch ahead");
    char *p = zkc__path_join(b->qdir, b->q[mine - 1].name);
    zkc__watch *w = p ? zkc__watch_new(b->co->c, pred_fired, b) : NULL;
    if (!w) {
        free(p);
        zkc__cq_give_up(b, ZKC_ENOMEM, "out of memory");
        return;
    }
    b->w = w;
    zkc__cq_hold(b); /* the watch's, until it fires or is dropped */
    zkc__timer_arm(b->co->c, &b->timer, zkc__now_ms() + zkc__cq_patience_ms);
    zkc__cq_hold(b);
    zkc__exists(b->co->c, p, w, pred_exists, b);
    free(p);
}

static void look_done(zkc__req *r)
{
    cq *b = r->ctx;
    if (!b->over) {
        if (r->rc != ZR_OK)
            zkc__cq_retry_later(b, r->rc, "listing the counter's queue");
        else
            decide(b, r->children, r->nchildren);
    }
    zkc__cq_drop(b);
}

/* A read of the counter for an apply: its value, version and whether it is
 * missing into b. 0, 1 when its data is not in its format, or the read's
 * ZR_* error (negative). */
int zkc__cq_counter_read(cq *b, const zkc__req *r)
{
    const char *why = "";
    if (r->rc == ZR_NONODE) {
        b->cmissing = 1;
        b->cvalue = b->co->initial;
        b->cversion = 0;
        return 0;
    }
    if (r->rc != ZR_OK)
        return r->rc;
    b->cmissing = 0;
    b->cversion = r->stat.version;
    return zkc__value_decode(b->co->fmt, r->value, r->valuelen, b->co->initial, &b->cvalue, &why) ? 1 : 0;
}

/* PIPELINE: the counter read sent behind the enqueue, kept for an apply. */
static void early_read_done(zkc__req *r)
{
    cq *b = r->ctx;
    if (!b->over && b->early && r->tag == b->early_gen)
        b->c_known = zkc__cq_counter_read(b, r) == 0; /* else the apply reads it again and says what is wrong */
    zkc__cq_drop(b);
}

/* PIPELINE: the listing sent behind the enqueue. It decides only when the
 * enqueue applied at its first reply (early == 2) and it shows our node, i.e.
 * was made after our create; anything else falls back to a listing of its own. */
static void early_list_done(zkc__req *r)
{
    cq *b = r->ctx;
    if (b->over || r->tag != b->early_gen || !b->early) {
        zkc__cq_drop(b);
        return;
    }
    if (b->early == 1) {
        b->early = 0; /* ahead of the enqueue's reply: unused, enq_done looks */
        zkc__cq_drop(b);
        return;
    }
    b->early = 0;
    int ours = 0;
    if (r->rc == ZR_OK) {
        char uuid[37];
        int32_t seq;
        for (int i = 0; i < r->nchildren && !ours; i++)
            ours = parse_q(r->children[i], uuid, &seq, NULL, NULL) == 0 && seq == b->myseq && strcmp(uuid, b->uuid) == 0;
    }
    if (ours)
        decide(b, r->children, r->nchildren);
    else
        zkc__cq_look(b);
    zkc__cq_drop(b);
}

void zkc__cq_look(cq *b)
{
    b->early = 0;
    b->c_known = 0;
    unwatch(b);
    zkc__timer_disarm(b->co->c, &b->timer);
    zkc__cq_phase(b, "queued mode: listing the queue");
    zkc__cq_hold(b);
    if (b->fence) {
        b->fence = 0;
        zkc__fence_children(b->co->c, b->qdir, look_done, b);
    } else {
        zkc__children(b->co->c, b->qdir, NULL, look_done, b);
    }
}

/* ---------------------------------------------------------------- entry */

int zkc__cq_takes(const zkc__ctr_upd *u)
{
    return u->type == ZKC__CTR_ADD && !u->key && u->nguards == 0;
}

void zkc__cq_start(zkc__ctr_core *co, zkc__ctr_upd **u, int nu)
{
    cq *b = calloc(1, sizeof *b);
    if (!b || !(b->qdir = zkc__cq_dir(co->c, co->path))) {
        free(b);
        for (int i = 0; i < nu; i++)
            zkc__ctr_upd_finish(u[i], ZKC_ENOMEM, "out of memory");
        co->busy = 0;
        zkc__ctr_core_drop(co);
        return;
    }
    b->co = co; /* holds the reference the caller took */
    memcpy(b->u, u, sizeof *u * (size_t)nu);
    b->nu = nu;
    b->refs = 1;
    b->started_ms = zkc__now_ms();
    zkc__uuid(b->uuid);
    zkc__timer_init(&b->timer, timer_fired);
    zkc__txn_init(&b->et, co->c, &enqueue_ops);
    b->et_live = 1;
    enqueue_round(&b->et);
}
