/*
 * The transaction core: versioned records updated exactly once (txn.h says
 * how a user drives it; users: counters, lib/counter_txn.c; inventory's grant
 * rounds, lib/inventory_grant.c; its settle and restock, lib/inventory_settle.c).
 *
 * EXACTLY ONCE. Every write is a ZooKeeper multi of
 *     the user's ops (setData(record, new, expected version), or create, ...)
 *     setData(marker, "<txn id> <before> <after>...", expected marker version)
 * where the marker is a persistent node owned by this client instance
 * (<meta_root>/txn/<client uuid>-<n>) and used by one transaction at a time.
 * After a connection loss (or any reply that may follow an applied write:
 * zkc__zrc_indeterminate) the outcome is decided by reading the marker
 * behind a quorum fence (zkc__fence_get): it holds our txn id exactly when the
 * multi was applied. Because the
 * marker write is itself conditional on the marker's version, an attempt that
 * reaches the leader late (after we decided "not applied" and retried) cannot
 * apply a second time: one of the two fails on the marker version, and the
 * marker then shows which one landed. Markers are persistent, so the decision
 * survives a session loss and is made in the next session; the cost is two
 * writes in one transaction, not a node per update. A marker whose create got
 * no answer may exist: it is read, never assumed missing.
 *
 * NO MARKER. Some writes are their own evidence: a reservation's record moves
 * RESERVED -> SOLD conditional on its version, a grant deletes the granted
 * queue nodes; reading those back after a loss decides the outcome, and a late
 * landing cannot apply twice because the write is conditional on what it
 * replaces. Such a user sends its multi without the marker op, and the core
 * hands the decision to its verify() instead of reading a marker. Everything
 * else (classifying replies, a resend after a session ended unsent, the
 * backoff, the client closing) is the same.
 *
 * GUARDS. A guarded txn (writes made under a lock, zkc_guard) appends a check
 * of each guard's node to the multi. The check is one of the ops, so a failed
 * check means nothing of the multi applied: a decided "not applied", reported
 * as ZKC_EFENCED. After a loss nothing changes: the marker decides, and an
 * attempt found "not applied" is sent again with its checks, which refuse it
 * if the hold ended meanwhile. The checks go last so the user's op indexes
 * and the marker's place are what they are without guards.
 *
 * BACKOFF. A lost round (BadVersion on one of the user's records) waits a
 * jittered, exponentially growing time so contenders spread out, or, while
 * the user's fairness beacon is up (lib/beacon.c), only until just before the
 * winner's next write.
 */
#include "txn.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- markers */

struct zkc__marker {
    zkc__list_node node;
    char *path;
    int32_t version;
    int state; /* MARKER_* */
    int busy;
};

enum { MARKER_UNKNOWN = 0, MARKER_READY, MARKER_MISSING };

/* A client's markers, kept for its lifetime: each one's version is what makes
 * the next transaction on it one write. */
typedef struct marker_pool {
    zkc__singleton single;
    zkc__list markers;
    int n;
} marker_pool;

static const char pool_key; /* its address names the pool among a client's singletons */

static void pool_free(zkc__singleton *single)
{
    marker_pool *p = ZKC__CONTAINER_OF(single, marker_pool, single);
    zkc__list_node *n, *tmp;
    ZKC__LIST_FOREACH_SAFE(n, tmp, &p->markers) {
        zkc__marker *m = ZKC__CONTAINER_OF(n, zkc__marker, node);
        free(m->path);
        free(m);
    }
    free(p);
}

static int pool_make(void *state, zkc_client *c)
{
    ZKC__UNUSED(c);
    zkc__list_init(&((marker_pool *)state)->markers);
    return 0;
}

static marker_pool *pool_get(zkc_client *c)
{
    return ZKC__SINGLETON(c, &pool_key, marker_pool, single, pool_make, pool_free);
}

static zkc__marker *marker_take(zkc_client *c)
{
    marker_pool *p = pool_get(c);
    if (!p)
        return NULL;
    zkc__list_node *n, *tmp;
    ZKC__LIST_FOREACH_SAFE(n, tmp, &p->markers) {
        zkc__marker *m = ZKC__CONTAINER_OF(n, zkc__marker, node);
        if (!m->busy) {
            m->busy = 1;
            return m;
        }
    }
    zkc__marker *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    size_t len = strlen(c->meta_root) + 64;
    m->path = malloc(len);
    if (!m->path) {
        free(m);
        return NULL;
    }
    snprintf(m->path, len, "%s/txn/%s-%d", c->meta_root, c->uuid, p->n++);
    m->state = MARKER_MISSING;
    m->busy = 1;
    zkc__list_push_front(&p->markers, &m->node);
    return m;
}

/* ---------------------------------------------------------------- txn */

static void backoff_fire(zkc__timer *tm);

static void phase(zkc__txn *t, const char *state)
{
    if (t->ops->phase)
        t->ops->phase(t, state);
}

static void txn_fail(zkc__txn *t, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
static void txn_fail(zkc__txn *t, int status, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    t->ops->fail(t, status, msg);
}

int zkc__txn_req_error(int rc)
{
    if (rc == ZR_NOTSENT)
        return ZKC_ECONNLOSS;
    if (rc == ZR_CLOSING)
        return ZKC_ECANCELED;
    return zkc__map_zrc(rc);
}

void zkc__txn_init(zkc__txn *t, zkc_client *c, const zkc__txn_ops *ops)
{
    static uint64_t seq;
    t->c = c;
    t->ops = ops;
    zkc__timer_init(&t->backoff, backoff_fire);
    snprintf(t->id, sizeof t->id, "%s-%" PRIu64, c->uuid, __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
}

void zkc__txn_finish(zkc__txn *t)
{
    zkc__timer_disarm(t->c, &t->backoff);
    if (t->m) {
        t->m->busy = 0;
        t->m = NULL;
    }
}

const char *zkc__txn_marker_path(const zkc__txn *t)
{
    return t->m->path;
}

static void marker_created(zkc__req *r);

static void marker_parents_done(void *arg, int rc)
{
    zkc__txn *t = arg;
    if (rc != ZR_OK) {
        txn_fail(t, zkc__txn_req_error(rc), "cannot create %s/txn: %s", t->c->meta_root, zkc__zrc_name(rc));
        return;
    }
    zkc__create(t->c, t->m->path, NULL, 0, 0, marker_created, t);
}

static void marker_read_done(zkc__req *r)
{
    zkc__txn *t = r->ctx;
    zkc__marker *m = t->m;
    if (r->rc == ZR_NONODE) {
        m->state = MARKER_MISSING;
    } else if (r->rc == ZR_OK) {
        m->version = r->stat.version;
        m->state = MARKER_READY;
    } else {
        txn_fail(t, zkc__txn_req_error(r->rc), "reading marker %s: %s", m->path, zkc__zrc_name(r->rc));
        return;
    }
    t->ops->round(t);
}

static void marker_created(zkc__req *r)
{
    zkc__txn *t = r->ctx;
    zkc__marker *m = t->m;
    if (r->rc == ZR_OK) {
        m->version = r->stat.version;
        m->state = MARKER_READY;
        t->ops->round(t);
    } else if (r->rc == ZR_NONODE) {
        char dir[ZKC__PATH_MAX + 1];
        zkc__path_parent(m->path, dir, sizeof dir);
        phase(t, "creating the marker's parent nodes");
        zkc__mkpath(t->c, dir, marker_parents_done, t);
    } else if (r->rc == ZR_NODEEXISTS || zkc__zrc_indeterminate(r->rc)) {
        /* No answer: perhaps created. The marker is persistent, so find out
         * rather than fail the update as "not applied" and forget it. */
        m->state = MARKER_UNKNOWN;
        phase(t, "reading its marker node");
        zkc__get(t->c, m->path, NULL, marker_read_done, t);
    } else if (r->rc == ZR_SESSIONLOST) {
        t->ops->round(t); /* never sent: the next session creates it */
    } else {
        txn_fail(t, zkc__txn_req_error(r->rc), "creating marker %s: %s", m->path, zkc__zrc_name(r->rc));
    }
}

int zkc__txn_marker_ready(zkc__txn *t)
{
    if (!t->m) {
        t->m = marker_take(t->c);
        if (!t->m) {
            txn_fail(t, ZKC_ENOMEM, "out of memory");
            return 0;
        }
    }
    if (t->m->state == MARKER_MISSING) {
        phase(t, "creating its marker node");
        zkc__create(t->c, t->m->path, NULL, 0, 0, marker_created, t);
        return 0;
    }
    if (t->m->state == MARKER_UNKNOWN) {
        phase(t, "reading its marker node");
        zkc__get(t->c, t->m->path, NULL, marker_read_done, t);
        return 0;
    }
    return 1;
}

void zkc__txn_marker_op(zkc__txn *t, zkc__mop *op, const char *data, int len)
{
    op->type = ZKC_REQ_SET;
    op->path = t->m->path;
    op->data = data;
    op->len = len;
    op->version = t->m->version;
}

void zkc__txn_guard(zkc__txn *t, const zkc_guard *guards, int n)
{
    t->guards = guards;
    t->nguards = n;
}

int zkc__guard_of_hold(zkc_guard *out, const char *node, int64_t token, const char *fn, const char *what)
{
    if (!node || strlen(node) >= sizeof out->path)
        return zkc__err(ZKC_ENOMEM, "%s: %s: its node's path was not kept (out of memory)", fn, what);
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", node);
    out->version = -1;
    out->token = token;
    return 0;
}

int zkc__txn_guard_check(const zkc_guard *g, const char *fn)
{
    if (!g)
        return zkc__err(ZKC_EINVAL, "%s: guard is NULL", fn);
    if (!memchr(g->path, 0, sizeof g->path))
        return zkc__err(ZKC_EINVAL, "%s: the guard's path is not terminated", fn);
    if (g->version < -1)
        return zkc__err(ZKC_EINVAL, "%s: guard version %d (-1 for any)", fn, (int)g->version);
    return zkc__path_check(g->path, "guard path");
}

int zkc__guard_ops(zkc__mop *ops, const zkc_guard *guards, int n)
{
    for (int i = 0; i < n; i++) {
        memset(&ops[i], 0, sizeof ops[i]);
        ops[i].type = ZKC_REQ_EXISTS; /* in a multi: a check op */
        ops[i].path = guards[i].path;
        ops[i].version = guards[i].version;
    }
    return n;
}

int zkc__guard_refused(const zkc__req *r, int n, int *status, char *msg, size_t len)
{
    if (n <= 0 || r->rc == ZR_OK)
        return 0;
    int fi = -1;
    for (int i = 0; i < r->nops && fi < 0; i++)
        if (r->ops[i].rc != ZR_OK && r->ops[i].rc != ZR_RUNTIMEINCONSISTENCY)
            fi = i;
    if (fi < r->nops - n)
        return 0;
    int rc = r->ops[fi].rc;
    if (rc == ZR_NONODE || rc == ZR_BADVERSION) {
        *status = ZKC_EFENCED;
        snprintf(msg, len,
                 "guarded write refused, nothing written: the guard's node %s %s, so the lock hold it stands for "
                 "has ended (released, session expired or node deleted); take the lock again",
                 r->ops[fi].path, rc == ZR_NONODE ? "is gone" : "has another version");
    } else {
        *status = zkc__map_zrc(rc);
        snprintf(msg, len, "checking the guard's node %s: %s (nothing written)", r->ops[fi].path, zkc__zrc_name(rc));
    }
    return 1;
}

int zkc__txn_guard_add(zkc_guard **guards, int *n, const zkc_guard *g)
{
    for (int i = 0; i < *n; i++)
        if (strcmp((*guards)[i].path, g->path) == 0 && (*guards)[i].version == g->version)
            return 0;
    zkc_guard *more = realloc(*guards, (size_t)(*n + 1) * sizeof *more);
    if (!more)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    more[*n] = *g;
    *guards = more;
    (*n)++;
    return 0;
}

void zkc__txn_send(zkc__txn *t, zkc__mop *ops, int nops, zkc__req_done done)
{
    zkc__mop *all = ops;
    if (t->nguards > 0) {
        all = calloc((size_t)(nops + t->nguards), sizeof *all);
        if (!all) {
            txn_fail(t, ZKC_ENOMEM, "out of memory");
            return;
        }
        memcpy(all, ops, (size_t)nops * sizeof *all);
        zkc__guard_ops(all + nops, t->guards, t->nguards);
    }
    t->sent_ms = zkc__now_ms();
    phase(t, "transaction sent");
    zkc__multi(t->c, all, nops + t->nguards, done, t); /* copies the ops */
    if (all != ops)
        free(all);
    t->unknown = 0;
}

/* ---- deciding after a loss ---- */

static void decide_get_done(zkc__req *r)
{
    zkc__txn *t = r->ctx;
    if (r->rc == ZR_OK) {
        t->m->version = r->stat.version;
        t->m->state = MARKER_READY;
        zkc__record rec;
        if (zkc__record_decode(r->value, r->valuelen, &rec) == 0 && strcmp(rec.id, t->id) == 0) {
            t->ops->applied(t, &rec);
            return;
        }
        /* Not applied, and after the fence it cannot land any more. Were one
         * to land all the same, the next attempt would fail on the marker's
         * version and be decided again: never applied twice. */
        t->unknown = 0;
        if (t->ops->unapplied)
            t->ops->unapplied(t);
        t->ops->round(t);
        return;
    }
    if (r->rc == ZR_NONODE) {
        /* The marker existed when we sent the update (or the multi would have
         * failed on it), so someone deleted it since, e.g. a cleanup with a
         * retention shorter than our wait: the evidence is gone. */
        t->m->state = MARKER_MISSING;
        txn_fail(t, ZKC_EUNKNOWN,
                 "outcome unknown: marker %s was deleted while the update's outcome was being decided "
                 "(retention shorter than the outage?)%s",
                 t->m->path, t->ops->unknown_hint);
        return;
    }
    t->m->state = MARKER_UNKNOWN;
    txn_fail(t, ZKC_EUNKNOWN,
             "outcome unknown: the update was sent, then the connection was lost and no server answered (%s)%s",
             zkc__zrc_name(r->rc), t->ops->unknown_hint);
}

static void decide(zkc__txn *t)
{
    t->unknown = 1;
    phase(t, "deciding the outcome (fence, then read the marker)");
    /* Fenced, not synced: a sync on a session connected to the leader right
     * after a leader change can return before the leader has applied writes
     * it committed (zkc__fence_get), and a stale "not applied" here is not
     * harmless: the round that follows re-reads the record, which may by then
     * show our write, and a bound refused on that value would report a
     * refusal for an update that was applied. After the fence the server
     * holds every write ordered before it, and an attempt of ours still in
     * flight from the old connection can no longer land (the leader refuses a
     * moved session's requests, and a new leader commits its history before
     * it serves), so the marker's answer is final. */
    zkc__fence_get(t->c, t->m->path, decide_get_done, t);
}

int zkc__txn_marker_index(const zkc__txn *t, const zkc__req *r)
{
    int mi = -1;
    for (int i = 0; t->m && i < r->nops; i++)
        if (strcmp(r->ops[i].path, t->m->path) == 0)
            mi = i;
    return mi;
}

int zkc__txn_reply(zkc__txn *t, zkc__req *r, int *fi, int *frc)
{
    int mi = zkc__txn_marker_index(t, r);
    if (r->rc == ZR_OK) {
        if (mi >= 0)
            t->m->version = r->ops[mi].stat.version;
        return ZKC__TXN_APPLIED;
    }
    if (zkc__zrc_indeterminate(r->rc)) {
        if (mi >= 0) {
            decide(t);
        } else {
            t->unknown = 1; /* no marker: the user's records tell */
            phase(t, "deciding the outcome from its own records");
            t->ops->verify(t);
        }
        return ZKC__TXN_TAKEN;
    }
    if (r->rc == ZR_SESSIONLOST) {
        /* Never sent (parked when the session ended): send again. */
        t->ops->round(t);
        return ZKC__TXN_TAKEN;
    }
    if (r->rc == ZR_NOTSENT || r->rc == ZR_CLOSING) {
        txn_fail(t, r->rc == ZR_CLOSING ? ZKC_ECANCELED : ZKC_ECONNLOSS,
                 "update not applied: no ZooKeeper server reachable within the operation timeout");
        return ZKC__TXN_TAKEN;
    }
    /* Which op failed? The first with an error other than "not run". */
    *fi = -1;
    *frc = r->rc;
    for (int i = 0; i < r->nops; i++)
        if (r->ops[i].rc != ZR_OK && r->ops[i].rc != ZR_RUNTIMEINCONSISTENCY) {
            *fi = i;
            *frc = r->ops[i].rc;
            break;
        }
    int gst;
    char gmsg[256];
    if (zkc__guard_refused(r, t->nguards, &gst, gmsg, sizeof gmsg)) {
        txn_fail(t, gst, "%s", gmsg);
        return ZKC__TXN_TAKEN;
    }
    if (*fi != mi || mi < 0)
        return ZKC__TXN_OP_FAILED;
    if (*frc == ZR_BADVERSION) {
        /* An earlier attempt of ours landed late, or the marker was rewritten:
         * the marker says which. */
        t->m->state = MARKER_UNKNOWN;
        decide(t);
    } else if (*frc == ZR_NONODE) {
        t->m->state = MARKER_MISSING;
        t->ops->round(t);
    } else {
        txn_fail(t, zkc__map_zrc(*frc), "writing marker %s: %s", t->m->path, zkc__zrc_name(*frc));
    }
    return ZKC__TXN_TAKEN;
}

/* ---- backoff ---- */

static void backoff_fire(zkc__timer *tm)
{
    zkc__txn *t = ZKC__CONTAINER_OF(tm, zkc__txn, backoff);
    if (t->c->closing) {
        txn_fail(t, ZKC_ECANCELED, "the client is being destroyed");
        return;
    }
    t->ops->round(t);
}

void zkc__txn_defer(zkc__txn *t, int64_t ms)
{
    zkc__timer_arm(t->c, &t->backoff, zkc__now_ms() + ms);
}

void zkc__txn_backoff(zkc__txn *t, int attempts, int64_t beacon_rtt_ms)
{
    t->lost++;
    if (beacon_rtt_ms >= 0) {
        /* Our beacon tells the winner we wait: be back before its next write
         * (a short jitter, so the waiting ones do not all collide). */
        phase(t, "backing off after a lost round (beacon up)");
        int64_t half = beacon_rtt_ms / 2;
        zkc__txn_defer(t, (int64_t)(zkc__random64() % (uint64_t)(half + 1)));
        return;
    }
    /* Jittered backoff so contenders spread out instead of colliding again. */
    phase(t, "backing off after a lost round");
    int64_t cap = (int64_t)1 << (attempts < 7 ? attempts : 7);
    zkc__txn_defer(t, (int64_t)(zkc__random64() % (uint64_t)(cap + 1)));
}
