/*
 * Counters: one znode holding a number, updated by versioned setData.
 *
 * EXACTLY ONCE. Every write is a ZooKeeper multi of
 *     setData(counter, new, expected version)          (or create, if missing)
 *     setData(slot, "<update id> <before> <after>...", expected slot version)
 *     [create(key node, same record)]                  (idempotency key, if any)
 * where the slot is a persistent node owned by this client instance
 * (<meta_root>/txn/<client uuid>-<n>) and used by one update at a time. After a
 * connection loss the outcome is decided by syncing and reading the slot: it
 * holds our update id exactly when the multi was applied. Because the slot write
 * is itself conditional on the slot's version, an attempt that reaches the
 * leader late (after we decided "not applied" and retried) cannot apply a second
 * time: one of the two fails on the slot version, and the slot then shows which
 * one landed. Slots are persistent, so the decision survives a session loss and
 * is made in the next session; the cost is two writes in one transaction, not a
 * node per update. Key nodes (<meta_root>/keys/<2 hex>/<key>) record the first
 * outcome of a keyed update so a repeat (another process, a restart) replays it.
 *
 * COMBINING. Updates of one path from one client queue on a shared core; while a
 * transaction is in flight, later ones wait and then go together in the next
 * transaction, each with its own before/after (as if applied one by one).
 *
 * CACHE. The core keeps the last (value, version) it read or wrote, so an
 * uncontended update is one round trip; a stale cache costs a BadVersion and a
 * re-read.
 *
 * FAIRNESS. The cache makes the writer that just won write again at once, while
 * a loser must re-read first: under saturation one session keeps winning and
 * the others starve (measured: 2 of 8 sessions under a quarter of their share).
 * So a batch that has lost BEACON_AFTER rounds raises a beacon, an ephemeral
 * child "zkc-waiting-<client uuid>" of the counter node, and retries without
 * backoff. Every successful setData returns the node's stat for free; when its
 * children changed, the winner lists them, and while another client's beacon
 * is up it leaves one to two write round trips before its next cached write.
 * Best effort and timing only: if the beacon cannot be created (ACL, an
 * ephemeral counter node) nothing else changes, and exactness never depends on
 * it. A beacon lives while its batch waits, and with its session at worst.
 */
#include "internal.h"
#include "codec.h"
#include "janitor.h"
#include "opwatch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_MAX 64
#define OP_GET 1
#define OP_SET 2
#define OP_ADD 3
#define OP_CAS 4
#define OP_MULTI 5

typedef struct core core;
typedef struct upd upd;

/* ---------------------------------------------------------------- slots */

typedef struct slot {
    struct slot *next;
    char *path;
    int32_t version;
    int state; /* SLOT_* */
    int busy;
} slot;

enum { SLOT_UNKNOWN = 0, SLOT_READY, SLOT_MISSING };

typedef struct slot_pool {
    zkc__object obj;
    zkc__singleton single;       /* per client, freed with it */
    zkc_client *c;
    slot *list;
    int n;
    core *cores;
} slot_pool;

struct zkc_counter {
    zkc_client *c;
    core *co;
    char *path;
    int refs; /* atomic */
    int api_destroyed;
};

struct core {
    core *next;
    zkc_client *c;
    char *path;
    int fmt;
    int64_t initial;
    int max_attempts;
    int combine;
    int users;
    int cached, fresh, missing;
    int64_t value;
    int32_t version;
    upd *head, *tail;
    int busy;
    /* FAIRNESS (above) */
    zkc__timer beacon_timer; /* lowers a beacon kept up after a contended batch */
    int beacon;          /* BEACON_* */
    int beacon_want;     /* a batch of ours is still losing */
    int beacon_broken;   /* creating it failed for good: never again */
    int scanning;        /* a listing of the children is out */
    int others_waiting;  /* another client's beacon was up at the last listing */
    int32_t seen_cversion;
    int64_t rtt_ms;      /* recent write round trip (smoothed) */
};

enum { BEACON_NONE = 0, BEACON_CREATING, BEACON_UP };
#define BEACON_AFTER 2
#define BEACON_PREFIX "zkc-waiting-"

struct upd {
    zkc__op op;
    zkc_counter *ctr;
    core *co;
    int type;
    int64_t a, b;
    int has_floor, has_ceiling;
    int64_t floor, ceiling;
    char *key;
    zkc_counter_cb cb;
    void *ud;
    zkc_counter_result res;
    upd *next;
    int verdict; /* this round: 0 write it, else the refusal code */
    /* OP_MULTI */
    int n;
    core **cores;
    int64_t *deltas;
    int *hf, *hc;
    int64_t *fl, *ce;
    zkc_counter_result *mres;
    int failed_index;
    int attempts;
    int64_t *newv;
};

static slot_pool *pool_get(zkc_client *c);

/* ---------------------------------------------------------------- helpers */

static char *key_path(zkc_client *c, const char *key)
{
    /* 256 buckets keep every listing far below jute.maxbuffer. */
    uint32_t h = 2166136261u;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    size_t n = strlen(c->meta_root) + strlen(key) + 16;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/keys/%02x/%s", c->meta_root, h & 0xff, key);
    return s;
}

static void upd_finish(upd *u, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
static void upd_finish(upd *u, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    zkc__op_vfinish(&u->op, status, fmt, ap);
    va_end(ap);
}

/* A failed read or a write known not to have applied, as the caller sees it. */
static int req_error(int rc)
{
    if (rc == ZR_NOTSENT)
        return ZKC_ECONNLOSS;
    if (rc == ZR_CLOSING)
        return ZKC_ECANCELED;
    return zkc__map_zrc(rc);
}

/* For reads: a read cut short by zkc_client_destroy is a cancellation. */
static int read_error(zkc_client *c, int rc)
{
    if (c->closing && (rc == ZR_CONNLOSS || rc == ZR_CLOSING))
        return ZKC_ECANCELED;
    return req_error(rc);
}

/* ---------------------------------------------------------------- parents */

typedef struct mkpath {
    zkc_client *c;
    char *target;
    size_t pos, prev;
    int tries;
    void (*done)(void *arg, int rc);
    void *arg;
} mkpath;

static void mkpath_step(mkpath *m);

static void mkpath_done(zkc__req *r)
{
    mkpath *m = r->ctx;
    if ((zkc__zrc_indeterminate(r->rc) || r->rc == ZR_SESSIONLOST) && ++m->tries < 10) {
        /* A create of a persistent parent is safe to repeat: NODEEXISTS is success. */
        m->pos = m->prev;
        mkpath_step(m);
        return;
    }
    if (r->rc != ZR_OK && r->rc != ZR_NODEEXISTS) {
        m->done(m->arg, r->rc);
        free(m->target);
        free(m);
        return;
    }
    mkpath_step(m);
}

static void mkpath_step(mkpath *m)
{
    size_t n = strlen(m->target);
    if (m->pos >= n) {
        m->done(m->arg, ZR_OK);
        free(m->target);
        free(m);
        return;
    }
    const char *slash = strchr(m->target + m->pos + 1, '/');
    size_t end = slash ? (size_t)(slash - m->target) : n;
    char *prefix = strndup(m->target, end);
    m->prev = m->pos;
    m->pos = end;
    zkc__create(m->c, prefix, NULL, 0, 0, mkpath_done, m);
    free(prefix);
}

/* Create every node of `path` that is missing (persistent), then call done. */
static void mkpath_start(zkc_client *c, const char *path, void (*done)(void *, int), void *arg)
{
    mkpath *m = calloc(1, sizeof *m);
    if (!m || !(m->target = strdup(path))) {
        free(m);
        done(arg, ZR_APIERROR);
        return;
    }
    m->c = c;
    m->done = done;
    m->arg = arg;
    mkpath_step(m);
}

/* ---------------------------------------------------------------- transactions
 * One attempt family of a write: the same id across retries, so a late landing
 * of an earlier attempt is recognised in the slot. */

typedef struct txn {
    zkc_client *c;
    char id[96];
    slot *s;
    core *co;   /* batch: one core, upds in u[] */
    upd *u[BATCH_MAX];
    int nu;
    upd *multi; /* or a multi-counter update */
    int unknown; /* a sent attempt's outcome is undecided */
    zkc__timer backoff;
    int reads;     /* counter reads in flight */
    int sync_first; /* the next reads are preceded by a sync */
    int read_err;  /* first failure among them (ZR_* or ZKC_EBADDATA) */
    char read_msg[160];
    int64_t sent_ms; /* when the last multi went out */
    int lost;        /* rounds lost to other writers */
} txn;

static void txn_round(txn *t);
static void txn_end(txn *t);

/* Test builds (opwatch.h): where the updates of t are, for the watchdog. */
static void txn_phase(txn *t, const char *state)
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
static void backoff_fire(zkc__timer *tm);
static void core_kick(core *co);
static void beacon_settle(core *co, int lost);


/* ---- fairness beacons (see FAIRNESS at the top) ---- */

static void beacon_deleted(zkc__req *r)
{
    core *co = r->ctx;
    /* Gone, or gone with its session (SESSIONLOST, CLOSING): either is fine.
     * Unanswered, or never sent while the session lives on: the beacon may
     * still be up and would slow every other writer until our session ends,
     * so the janitor deletes it once a server answers. */
    if ((zkc__zrc_indeterminate(r->rc) || r->rc == ZR_NOTSENT) && !co->c->closing)
        zkc__janitor_delete(co->c, r->path);
}

static char *beacon_path(core *co)
{
    size_t n = strlen(co->path) + sizeof BEACON_PREFIX + sizeof co->c->uuid + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/" BEACON_PREFIX "%s", co->path, co->c->uuid);
    return p;
}

static void beacon_lower(core *co)
{
    co->beacon_want = 0;
    zkc__timer_disarm(co->c, &co->beacon_timer);
    if (co->beacon != BEACON_UP)
        return; /* none, or its create is out: beacon_created lowers it */
    co->beacon = BEACON_NONE;
    char *p = beacon_path(co);
    if (p && !co->c->closing)
        zkc__delete(co->c, p, -1, beacon_deleted, co);
    free(p);
}

static void beacon_created(zkc__req *r)
{
    core *co = r->ctx;
    co->beacon = BEACON_NONE;
    if (r->rc == ZR_OK || r->rc == ZR_NODEEXISTS || zkc__zrc_indeterminate(r->rc)) {
        /* NODEEXISTS: ours, from an attempt whose reply was lost; no answer
         * (zkc__zrc_indeterminate): perhaps created, so delete it as if it were. */
        co->beacon = BEACON_UP;
        if (!co->beacon_want)
            beacon_lower(co);
    } else if (r->rc == ZR_NOAUTH || r->rc == ZR_NOCHILDRENFOREPHEMERALS) {
        co->beacon_broken = 1;
    }
}

/* A batch is decided. One that won at its first try met no contention: the
 * beacon goes. One that had to fight keeps it for the next batch (raising and
 * lowering it per batch would double the writes under contention), unless no
 * batch comes soon. */
static void beacon_settle(core *co, int lost)
{
    co->beacon_want = 0;
    if (co->beacon != BEACON_UP)
        return;
    if (!lost || co->c->closing) {
        beacon_lower(co);
        return;
    }
    int64_t linger = co->rtt_ms * 10 > 50 ? co->rtt_ms * 10 : 50;
    zkc__timer_arm(co->c, &co->beacon_timer, zkc__now_ms() + linger);
}

static void beacon_timer_fire(zkc__timer *tm)
{
    core *co = ZKC__CONTAINER_OF(tm, core, beacon_timer);
    if (!co->busy)
        beacon_lower(co); /* else the running batch settles it */
}

static void beacon_raise(core *co)
{
    co->beacon_want = 1;
    zkc__timer_disarm(co->c, &co->beacon_timer);
    if (co->beacon != BEACON_NONE || co->beacon_broken || co->missing || co->c->closing)
        return;
    char *p = beacon_path(co);
    if (!p)
        return;
    co->beacon = BEACON_CREATING;
    zkc__create(co->c, p, NULL, 0, ZC_EPHEMERAL, beacon_created, co);
    free(p);
}

static void scan_done(zkc__req *r)
{
    core *co = r->ctx;
    co->scanning = 0;
    if (r->rc != ZR_OK)
        return;
    int others = 0;
    for (int i = 0; i < r->nchildren; i++)
        if (strncmp(r->children[i], BEACON_PREFIX, sizeof BEACON_PREFIX - 1) == 0 &&
            strcmp(r->children[i] + sizeof BEACON_PREFIX - 1, co->c->uuid) != 0)
            others++;
    co->others_waiting = others > 0;
}

/* After a write of ours: does anyone wait? The stat says whether the children
 * changed; only then do we look (a counter may have children of its own). */
static void beacon_observe(core *co, const zkc__stat *st)
{
    int mine = co->beacon == BEACON_UP;
    if (st->num_children <= mine) {
        co->others_waiting = 0;
        co->seen_cversion = st->cversion;
        return;
    }
    if (st->cversion == co->seen_cversion || co->scanning)
        return;
    co->seen_cversion = st->cversion;
    co->scanning = 1;
    zkc__children(co->c, co->path, NULL, scan_done, co);
}

/* How long a winner leaves the others before its next cached write: a read
 * and most of a write of theirs. */
static int64_t yield_ms(core *co)
{
    int64_t rtt = co->rtt_ms > 0 ? co->rtt_ms : 1;
    int64_t d = rtt + (int64_t)(zkc__random64() % (uint64_t)(rtt + 1));
    return d < 50 ? d : 50;
}

static txn *txn_new(zkc_client *c)
{
    txn *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->c = c;
    zkc__timer_init(&t->backoff, backoff_fire);
    static uint64_t seq;
    snprintf(t->id, sizeof t->id, "%s-%" PRIu64, c->uuid, __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
    return t;
}

/* Complete everything in t with one status (errors). */
static void txn_fail(txn *t, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
static void txn_fail(txn *t, int status, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (t->multi)
        upd_finish(t->multi, status, "%s", msg);
    for (int i = 0; i < t->nu; i++)
        upd_finish(t->u[i], status, "%s", msg);
    txn_end(t);
}

static void slot_release(txn *t)
{
    if (t->s) {
        t->s->busy = 0;
        t->s = NULL;
    }
}

static void txn_end(txn *t)
{
    core *co = t->co;
    zkc__timer_disarm(t->c, &t->backoff);
    slot_release(t);
    int lost = t->lost;
    free(t);
    if (co) {
        co->busy = 0;
        beacon_settle(co, lost);
        core_kick(co);
    }
}

/* ---- reading counters into the cache ---- */

typedef struct read_ctx {
    txn *t;
    core *co;
} read_ctx;

static void apply_read(core *co, zkc__req *r, int *err, const char **why)
{
    if (r->rc == ZR_NONODE) {
        co->cached = co->fresh = 1;
        co->missing = 1;
        co->value = co->initial;
        co->version = 0;
        return;
    }
    if (r->rc != ZR_OK) {
        *err = r->rc;
        return;
    }
    int64_t v;
    int rc = zkc__value_decode(co->fmt, r->value, r->valuelen, co->initial, &v, why);
    if (rc) {
        *err = ZKC_EBADDATA;
        co->cached = 0;
        return;
    }
    co->cached = co->fresh = 1;
    co->missing = 0;
    co->value = v;
    co->version = r->stat.version;
}

/* ---- slot ---- */

static void slot_created(zkc__req *r);

static void slot_parents_done(void *arg, int rc)
{
    txn *t = arg;
    if (rc != ZR_OK) {
        txn_fail(t, req_error(rc), "cannot create %s/txn: %s", t->c->meta_root, zkc__zrc_name(rc));
        return;
    }
    zkc__create(t->c, t->s->path, NULL, 0, 0, slot_created, t);
}

static void slot_read_done(zkc__req *r)
{
    txn *t = r->ctx;
    slot *s = t->s;
    if (r->rc == ZR_NONODE) {
        s->state = SLOT_MISSING;
    } else if (r->rc == ZR_OK) {
        s->version = r->stat.version;
        s->state = SLOT_READY;
    } else {
        txn_fail(t, req_error(r->rc), "reading marker %s: %s", s->path,
                 zkc__zrc_name(r->rc));
        return;
    }
    txn_round(t);
}

static void slot_created(zkc__req *r)
{
    txn *t = r->ctx;
    slot *s = t->s;
    if (r->rc == ZR_OK) {
        s->version = r->stat.version;
        s->state = SLOT_READY;
        txn_round(t);
    } else if (r->rc == ZR_NONODE) {
        char dir[ZKC__PATH_MAX + 1];
        zkc__path_parent(s->path, dir, sizeof dir);
        txn_phase(t, "creating the marker's parent nodes");
        mkpath_start(t->c, dir, slot_parents_done, t);
    } else if (r->rc == ZR_NODEEXISTS || zkc__zrc_indeterminate(r->rc)) {
        /* No answer: perhaps created. The marker is persistent, so find out
         * rather than fail the update as "not applied" and forget it. */
        s->state = SLOT_UNKNOWN;
        txn_phase(t, "reading its marker node");
        zkc__get(t->c, s->path, NULL, slot_read_done, t);
    } else if (r->rc == ZR_SESSIONLOST) {
        txn_round(t); /* never sent: the next session creates it */
    } else {
        txn_fail(t, req_error(r->rc), "creating marker %s: %s", s->path,
                 zkc__zrc_name(r->rc));
    }
}

static slot *slot_take(zkc_client *c)
{
    slot_pool *p = pool_get(c);
    if (!p)
        return NULL;
    for (slot *s = p->list; s; s = s->next)
        if (!s->busy) {
            s->busy = 1;
            return s;
        }
    slot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    size_t n = strlen(c->meta_root) + 64;
    s->path = malloc(n);
    if (!s->path) {
        free(s);
        return NULL;
    }
    snprintf(s->path, n, "%s/txn/%s-%d", c->meta_root, c->uuid, p->n++);
    s->state = SLOT_MISSING;
    s->busy = 1;
    s->next = p->list;
    p->list = s;
    return s;
}

/* ---- computing a round ---- */

static int bounded(int64_t v, int hf, int64_t fl, int hc, int64_t ce)
{
    return !(hf && v < fl) && !(hc && v > ce);
}

/* Batch: walk the queued updates from the cached value as if applied one by
 * one. Returns the number that write. */
static int plan_batch(txn *t, int64_t *final)
{
    core *co = t->co;
    int64_t cur = co->value;
    int writes = 0;
    char enc[24];
    for (int i = 0; i < t->nu; i++) {
        upd *u = t->u[i];
        u->verdict = 0;
        int64_t next = cur;
        switch (u->type) {
        case OP_ADD:
            if (__builtin_add_overflow(cur, u->a, &next)) {
                u->verdict = ZKC_EOVERFLOW;
            } else if (!bounded(next, u->has_floor, u->floor, u->has_ceiling, u->ceiling)) {
                u->verdict = ZKC_EBOUND;
            }
            break;
        case OP_SET:
            next = u->a;
            break;
        case OP_CAS:
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

static int plan_multi(txn *t)
{
    upd *u = t->multi;
    char enc[24];
    int writes = 0;
    u->failed_index = -1;
    u->verdict = 0;
    for (int i = 0; i < u->n; i++) {
        core *co = u->cores[i];
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
        if (!bounded(next, u->hf[i], u->fl[i], u->hc[i], u->ce[i])) {
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

static void multi_done(zkc__req *r);
static void decide_sync_done(zkc__req *r);

static int need_read(core *co)
{
    return !co->cached;
}

static void read_done(zkc__req *r)
{
    read_ctx *rc = r->ctx;
    txn *t = rc->t;
    int err = 0;
    const char *why = "";
    apply_read(rc->co, r, &err, &why);
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
        txn_fail(t, e == ZKC_EBADDATA ? ZKC_EBADDATA : read_error(t->c, e), "%s", t->read_msg);
        return;
    }
    txn_round(t);
}

static int start_reads(txn *t)
{
    int started = 0;
    core *list[BATCH_MAX + ZKC__REC_MAX_ENTRIES];
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
    txn_phase(t, t->sync_first ? "sync, then reading the counter" : "reading the counter");
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
            zkc__sync_get(t->c, list[i]->path, read_done, rc);
        else
            zkc__get(t->c, list[i]->path, NULL, read_done, rc);
        started++;
    }
    t->sync_first = 0;
    return started;
}

typedef struct refusal {
    upd *u;
    int status;
    char *kp;
    char msg[256];
} refusal;

/* The update was applied before under its key: report that first outcome. */
static void upd_replay(upd *u, const zkc__record *rec)
{
    u->res.before = rec->before[0];
    u->res.after = rec->after[0];
    u->res.replayed = 1;
    if (u->type == OP_MULTI)
        for (int i = 0; i < u->n && i < rec->n; i++) {
            u->mres[i].before = rec->before[i];
            u->mres[i].after = rec->after[i];
            u->mres[i].replayed = 1;
        }
    upd_finish(u, 0, NULL);
}

static void refusal_key_done(zkc__req *r)
{
    refusal *f = r->ctx;
    upd *u = f->u;
    zkc__record rec;
    if (r->rc == ZR_OK && zkc__record_decode(r->value, r->valuelen, &rec) == 0 && rec.n > 0) {
        /* Applied before under this key (a restarted worker's retry): that
         * first outcome is the answer, not today's refusal. */
        upd_replay(u, &rec);
    } else {
        upd_finish(u, f->status, "%s", f->msg);
    }
    free(f->kp);
    free(f);
}

/* A refusal (bound, mismatch, overflow) of a keyed update first checks whether
 * the key was applied before. */
static void refuse(upd *u, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
static void refuse(upd *u, int status, const char *fmt, ...)
{
    refusal *f = calloc(1, sizeof *f);
    char *kp = u->key ? key_path(u->op.c, u->key) : NULL;
    va_list ap;
    va_start(ap, fmt);
    if (f)
        vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
    if (!f || !kp) {
        upd_finish(u, status, "%s", f ? f->msg : "refused");
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

static void complete_batch_refusals_and_writes(txn *t, int wrote)
{
    for (int i = 0; i < t->nu; i++) {
        upd *u = t->u[i];
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
            upd_finish(u, 0, NULL);
    }
}

static void txn_send(txn *t)
{
    zkc_client *c = t->c;
    zkc__mop ops[ZKC__REC_MAX_ENTRIES + BATCH_MAX + 2];
    char encs[ZKC__REC_MAX_ENTRIES][24];
    int nops = 0;
    zkc__record *rec = calloc(1, sizeof *rec);
    char *recbuf = malloc(16384);
    char *keyp[BATCH_MAX + 1];
    char *keyrec[BATCH_MAX + 1];
    int nkeys = 0;
    if (!rec || !recbuf)
        abort();
    snprintf(rec->id, sizeof rec->id, "%s", t->id);
    memset(ops, 0, sizeof ops);
    if (t->co) {
        core *co = t->co;
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
        upd *u = t->multi;
        for (int i = 0; i < u->n; i++) {
            core *co = u->cores[i];
            int last = 1;
            for (int j = i + 1; j < u->n; j++)
                if (u->cores[j] == co)
                    last = 0;
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
    ops[nops].type = ZKC_REQ_SET;
    ops[nops].path = t->s->path;
    ops[nops].data = recbuf;
    ops[nops].len = rlen;
    ops[nops].version = t->s->version;
    nops++;
    /* Keys: each keyed update records its own outcome. */
    upd *keyed[BATCH_MAX + 1];
    int nk = t->multi ? 1 : t->nu;
    for (int i = 0; i < nk; i++) {
        upd *u = t->multi ? t->multi : t->u[i];
        if (!u->key || (u->verdict && !t->multi))
            continue;
        zkc__record kr;
        memset(&kr, 0, sizeof kr);
        snprintf(kr.id, sizeof kr.id, "%s", t->id);
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
        keyp[nkeys] = key_path(c, u->key);
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
    t->sent_ms = zkc__now_ms();
    txn_phase(t, "transaction sent");
    zkc__multi(c, ops, nops, multi_done, t);
    t->unknown = 0;
    for (int i = 0; i < nkeys; i++) {
        free(keyp[i]);
        free(keyrec[i]);
    }
    free(rec);
    free(recbuf);
}

/* Decide whether the round is ready to send, or what must happen first. */
static void txn_round(txn *t)
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
    core *co1 = t->co ? t->co : NULL;
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
            txn_round(t);
            return;
        }
        if (t->multi) {
            upd *u = t->multi;
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
    core *wrap = NULL;
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
    if (!t->s) {
        t->s = slot_take(t->c);
        if (!t->s) {
            txn_fail(t, ZKC_ENOMEM, "out of memory");
            return;
        }
    }
    if (t->s->state == SLOT_MISSING) {
        txn_phase(t, "creating its marker node");
        zkc__create(t->c, t->s->path, NULL, 0, 0, slot_created, t);
        return;
    }
    if (t->s->state == SLOT_UNKNOWN) {
        txn_phase(t, "reading its marker node");
        zkc__get(t->c, t->s->path, NULL, slot_read_done, t);
        return;
    }
    txn_send(t);
}

/* ---- outcome ---- */

static void applied_from_record(txn *t, const zkc__record *rec)
{
    /* The slot shows our id: applied, with the values of the attempt that landed. */
    if (t->multi) {
        upd *u = t->multi;
        for (int i = 0; i < u->n && i < rec->n; i++) {
            u->mres[i].before = rec->before[i];
            u->mres[i].after = rec->after[i];
        }
        u->res = u->mres[0];
        for (int i = 0; i < u->n; i++)
            u->cores[i]->cached = 0;
        t->multi = NULL;
        upd_finish(u, 0, NULL);
    } else {
        int k = 0;
        for (int i = 0; i < t->nu; i++) {
            upd *u = t->u[i];
            if (k < rec->n) {
                u->res.before = rec->before[k];
                u->res.after = rec->after[k];
            }
            k++;
        }
        /* Refusals were judged against the base that landed. */
        for (int i = 0; i < t->nu; i++) {
            upd *u = t->u[i];
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

static void decide_get_done(zkc__req *r)
{
    txn *t = r->ctx;
    if (r->rc == ZR_OK) {
        t->s->version = r->stat.version;
        t->s->state = SLOT_READY;
        zkc__record rec;
        if (zkc__record_decode(r->value, r->valuelen, &rec) == 0 && strcmp(rec.id, t->id) == 0) {
            applied_from_record(t, &rec);
            return;
        }
        /* Not applied. Any late landing of that attempt now fails on the slot
         * version we just read, so trying again cannot apply twice. */
        t->unknown = 0;
        if (t->co)
            t->co->cached = 0;
        else
            for (int i = 0; i < t->multi->n; i++)
                t->multi->cores[i]->cached = 0;
        txn_round(t);
        return;
    }
    if (r->rc == ZR_NONODE) {
        /* The marker existed when we sent the update (or the multi would have
         * failed on it), so someone deleted it since, e.g. a cleanup with a
         * retention shorter than our wait: the evidence is gone. */
        t->s->state = SLOT_MISSING;
        txn_fail(t, ZKC_EUNKNOWN,
                 "outcome unknown: marker %s was deleted while the update's outcome was being decided "
                 "(retention shorter than the outage?); with an idempotency key, zkc_counter_lookup tells",
                 t->s->path);
        return;
    }
    t->s->state = SLOT_UNKNOWN;
    txn_fail(t, ZKC_EUNKNOWN,
             "outcome unknown: the update was sent, then the connection was lost and no server answered (%s); "
             "with an idempotency key, zkc_counter_lookup tells what happened",
             zkc__zrc_name(r->rc));
}

static void decide_sync_done(zkc__req *r)
{
    txn *t = r->ctx;
    if (r->rc != ZR_OK && r->rc != ZR_NONODE) {
        t->s->state = SLOT_UNKNOWN;
        txn_fail(t, ZKC_EUNKNOWN,
                 "outcome unknown: the update was sent, then the connection was lost and no server answered (%s); "
                 "with an idempotency key, zkc_counter_lookup tells what happened",
                 zkc__zrc_name(r->rc));
        return;
    }
    zkc__get(t->c, t->s->path, NULL, decide_get_done, t);
}

static void decide(txn *t)
{
    t->unknown = 1;
    txn_phase(t, "deciding the outcome (sync, then read the marker)");
    /* sync first: the server we read from may lag the leader that applied it. */
    zkc__sync(t->c, t->s->path, decide_sync_done, t);
}

typedef struct replay_ctx {
    txn *t;
    upd *u;
} replay_ctx;

static void replay_done(zkc__req *r)
{
    replay_ctx *rc = r->ctx;
    txn *t = rc->t;
    upd *u = rc->u;
    free(rc);
    zkc__record rec;
    int decoded = r->rc == ZR_OK && zkc__record_decode(r->value, r->valuelen, &rec) == 0 && rec.n > 0;
    if (r->rc == ZR_NONODE) {
        /* Expired between our create and this read: apply it for real. */
        free(u->key);
        u->key = NULL;
        txn_round(t);
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
        upd_finish(u, r->rc == ZR_OK ? ZKC_EBADDATA : req_error(r->rc), "reading idempotency key %s: %s", u->key,
                   r->rc == ZR_OK ? "malformed record" : zkc__zrc_name(r->rc));
    }
    if (t->multi || t->nu == 0) {
        if (t->multi)
            t->multi = NULL;
        txn_end(t);
        return;
    }
    txn_round(t);
}

typedef struct mk_ctx {
    txn *t;
} mk_ctx;

static void keydir_done(void *arg, int rc)
{
    txn *t = arg;
    if (rc != ZR_OK) {
        txn_fail(t, zkc__map_zrc(rc), "cannot create parent nodes: %s", zkc__zrc_name(rc));
        return;
    }
    txn_round(t);
}

static void backoff_fire(zkc__timer *tm);
static void keydir_done(void *arg, int rc);

static void multi_done(zkc__req *r)
{
    txn *t = r->ctx;
    zkc_client *c = t->c;
    int ncounter = r->nops - 1;
    /* index of the slot op */
    int slot_i = -1;
    for (int i = 0; i < r->nops; i++)
        if (strcmp(r->ops[i].path, t->s->path) == 0)
            slot_i = i;
    ncounter = slot_i;
    if (r->rc == ZR_OK) {
        t->s->version = r->ops[slot_i].stat.version;
        if (t->co) {
            core *co = t->co;
            co->value = t->u[t->nu - 1]->res.after;
            for (int i = t->nu - 1; i >= 0; i--)
                if (!t->u[i]->verdict) {
                    co->value = t->u[i]->res.after;
                    break;
                }
            if (!co->missing)
                beacon_observe(co, &r->ops[0].stat);
            int64_t rtt = zkc__now_ms() - t->sent_ms;
            co->rtt_ms = co->rtt_ms ? (co->rtt_ms * 7 + rtt) / 8 : rtt;
            co->version = co->missing ? 0 : r->ops[0].stat.version;
            co->missing = 0;
            co->cached = 1;
            co->fresh = 0;
            complete_batch_refusals_and_writes(t, 1);
        } else {
            upd *u = t->multi;
            int k = 0;
            for (int i = 0; i < u->n; i++) {
                core *co = u->cores[i];
                int last = 1;
                for (int j = i + 1; j < u->n; j++)
                    if (u->cores[j] == co)
                        last = 0;
                if (!last)
                    continue;
                co->value = u->newv[i];
                co->version = co->missing ? 0 : r->ops[k].stat.version;
                co->missing = 0;
                co->cached = 1;
                co->fresh = 0;
                k++;
            }
            u->res = u->mres[0];
            upd_finish(u, 0, NULL);
        }
        txn_end(t);
        return;
    }
    if (zkc__zrc_indeterminate(r->rc)) {
        decide(t);
        return;
    }
    if (r->rc == ZR_SESSIONLOST) {
        /* Never sent (parked when the session ended): send again. */
        txn_round(t);
        return;
    }
    if (r->rc == ZR_NOTSENT || r->rc == ZR_CLOSING) {
        txn_fail(t, r->rc == ZR_CLOSING ? ZKC_ECANCELED : ZKC_ECONNLOSS,
                 "update not applied: no ZooKeeper server reachable within the operation timeout");
        return;
    }
    /* Which op failed? The first with an error other than "not run". */
    int fi = -1, frc = r->rc;
    for (int i = 0; i < r->nops; i++)
        if (r->ops[i].rc != ZR_OK && r->ops[i].rc != ZR_RUNTIMEINCONSISTENCY) {
            fi = i;
            frc = r->ops[i].rc;
            break;
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
            txn_phase(t, "creating the counter's parent nodes");
            mkpath_start(c, dir, keydir_done, t);
            return;
        }
        upd *first = t->multi ? t->multi : t->u[0];
        int max = t->co ? t->co->max_attempts : first->ctr ? first->ctr->co->max_attempts : 64;
        if (++first->attempts >= max) {
            txn_fail(t, ZKC_ECONTENDED, "counter %s: %d compare-and-swap rounds lost to other writers",
                     r->ops[fi].path, first->attempts);
            return;
        }
        t->lost++;
        if (t->co && first->attempts >= BEACON_AFTER && !t->co->beacon_broken) {
            /* Tell the winner we wait, and be back before its next write
             * (a short jitter, so the waiting ones do not all collide). */
            beacon_raise(t->co);
            txn_phase(t, "backing off after a lost round (beacon up)");
            int64_t half = t->co->rtt_ms / 2;
            zkc__timer_arm(c, &t->backoff, zkc__now_ms() + (int64_t)(zkc__random64() % (uint64_t)(half + 1)));
            return;
        }
        /* Jittered backoff so contenders spread out instead of colliding again. */
        txn_phase(t, "backing off after a lost round");
        int64_t cap = (int64_t)1 << (first->attempts < 7 ? first->attempts : 7);
        zkc__timer_arm(c, &t->backoff, zkc__now_ms() + (int64_t)(zkc__random64() % (uint64_t)(cap + 1)));
        return;
    }
    if (fi == slot_i) {
        if (frc == ZR_BADVERSION) {
            /* An earlier attempt of ours landed late, or the slot was rewritten:
             * the slot says which. */
            t->s->state = SLOT_UNKNOWN;
            decide(t);
            return;
        }
        if (frc == ZR_NONODE) {
            t->s->state = SLOT_MISSING;
            txn_round(t);
            return;
        }
        txn_fail(t, zkc__map_zrc(frc), "writing marker %s: %s", t->s->path, zkc__zrc_name(frc));
        return;
    }
    if (fi > slot_i) {
        const char *kp = r->ops[fi].path;
        if (frc == ZR_NODEEXISTS) {
            /* This key was applied before: hand back its first outcome. */
            const char *kname = strrchr(kp, '/') + 1;
            upd *u = NULL;
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
            txn_phase(t, "reading an idempotency key applied before");
            zkc__get(c, kp, NULL, replay_done, rc);
            return;
        }
        if (frc == ZR_NONODE) {
            char dir[ZKC__PATH_MAX + 1];
            zkc__path_parent(kp, dir, sizeof dir);
            txn_phase(t, "creating the key's parent nodes");
            mkpath_start(c, dir, keydir_done, t);
            return;
        }
        txn_fail(t, zkc__map_zrc(frc), "creating idempotency key %s: %s", kp, zkc__zrc_name(frc));
        return;
    }
    txn_fail(t, zkc__map_zrc(frc), "counter transaction failed: %s", zkc__zrc_name(frc));
}

static void backoff_fire(zkc__timer *tm)
{
    txn *t = ZKC__CONTAINER_OF(tm, txn, backoff);
    if (t->c->closing) {
        txn_fail(t, ZKC_ECANCELED, "the client is being destroyed");
        return;
    }
    txn_round(t);
}

/* ---------------------------------------------------------------- cores */

static void get_done(zkc__req *r)
{
    core *co = r->ctx;
    int err = 0;
    const char *why = "";
    apply_read(co, r, &err, &why);
    /* Every GET at the head of the queue shares this read. */
    while (co->head && co->head->type == OP_GET) {
        upd *u = co->head;
        co->head = u->next;
        if (!co->head)
            co->tail = NULL;
        if (err == ZKC_EBADDATA) {
            upd_finish(u, ZKC_EBADDATA, "counter %s: %s", co->path, why);
        } else if (err) {
            upd_finish(u, req_error(err), "reading counter %s: %s", co->path,
                       zkc__zrc_name(err));
        } else {
            u->res.before = u->res.after = co->value;
            upd_finish(u, 0, NULL);
        }
    }
    co->busy = 0;
    core_kick(co);
}

static void core_kick(core *co)
{
    if (co->busy || !co->head)
        return;
    co->busy = 1;
    if (co->head->type == OP_GET) {
        zkc__opwatch_state(&co->head->op, "reading the counter");
        zkc__get(co->c, co->path, NULL, get_done, co);
        return;
    }
    txn *t = txn_new(co->c);
    if (!t) {
        co->busy = 0;
        return;
    }
    t->co = co;
    co->fresh = 0; /* a refusal in this round must rest on a read made in it */
    int max = co->combine ? BATCH_MAX : 1;
    while (co->head && co->head->type != OP_GET && t->nu < max) {
        upd *u = co->head;
        int dup = 0;
        for (int i = 0; u->key && i < t->nu; i++)
            dup |= t->u[i]->key && strcmp(t->u[i]->key, u->key) == 0;
        if (dup)
            break; /* the repeat goes in the next batch, where it replays the first */
        co->head = u->next;
        if (!co->head)
            co->tail = NULL;
        u->next = NULL;
        t->u[t->nu++] = u;
    }
    if (co->others_waiting && co->cached) {
        /* Others wait (FAIRNESS): let one of them in before we write again. */
        txn_phase(t, "yielding to another client's waiting batch");
        zkc__timer_arm(co->c, &t->backoff, zkc__now_ms() + yield_ms(co));
        return;
    }
    txn_round(t);
}

static void core_enqueue(core *co, upd *u)
{
    zkc__opwatch_state(&u->op, co->busy ? "queued behind the counter's current batch" : "queued");
    u->next = NULL;
    if (co->tail)
        co->tail->next = u;
    else
        co->head = u;
    co->tail = u;
    core_kick(co);
}

/* ---------------------------------------------------------------- pool */

static void pool_shutdown(zkc__object *o)
{
    slot_pool *p = ZKC__CONTAINER_OF(o, slot_pool, obj);
    zkc_client *c = p->c;
    for (core *co = p->cores; co; co = co->next) {
        while (co->head) {
            upd *u = co->head;
            co->head = u->next;
            upd_finish(u, ZKC_ECANCELED, "counter %s: the client is being destroyed", co->path);
        }
        co->tail = NULL;
    }
    ZKC__UNUSED(c);
}

static const char pool_key; /* its address names the pool among a client's singletons */

static void pool_free(zkc__singleton *single);

static slot_pool *pool_get(zkc_client *c)
{
    zkc__singleton *single = zkc__singleton_get(c, &pool_key);
    if (single)
        return ZKC__CONTAINER_OF(single, slot_pool, single);
    slot_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->c = c;
    p->obj.shutdown = pool_shutdown;
    zkc__object_link(c, &p->obj);
    p->single.key = &pool_key;
    p->single.free = pool_free;
    zkc__singleton_add(c, &p->single);
    return p;
}

static void pool_free(zkc__singleton *single)
{
    slot_pool *p = ZKC__CONTAINER_OF(single, slot_pool, single);
    slot *s = p->list;
    while (s) {
        slot *n = s->next;
        free(s->path);
        free(s);
        s = n;
    }
    core *co = p->cores;
    while (co) {
        core *n = co->next;
        free(co->path);
        free(co);
        co = n;
    }
    free(p);
}

/* ---------------------------------------------------------------- public API */

static void ctr_unref(zkc_counter *ctr)
{
    if (__atomic_sub_fetch(&ctr->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        zkc_client *c = ctr->c;
        free(ctr->path);
        free(ctr);
        zkc__client_unref(c);
    }
}

static void upd_invoke(zkc__op *op)
{
    upd *u = ZKC__CONTAINER_OF(op, upd, op);
    if (u->cb)
        u->cb(u->ctr, op->status, &u->res, u->ud);
}

static void upd_release(zkc__op *op)
{
    upd *u = ZKC__CONTAINER_OF(op, upd, op);
    zkc_counter *ctr = u->ctr;
    free(u->key);
    free(u->cores);
    free(u->deltas);
    free(u->hf);
    free(u->hc);
    free(u->fl);
    free(u->ce);
    free(u->mres);
    free(u->newv);
    free(u);
    if (ctr)
        ctr_unref(ctr);
}

static void upd_start(zkc__op *op)
{
    upd *u = ZKC__CONTAINER_OF(op, upd, op);
    if (!u->co) {
        zkc__op_finish(op, ZKC_EINVAL, "counter was destroyed");
        return;
    }
    core_enqueue(u->co, u);
}

static int check_ctr(zkc_counter *ctr, const char *fn)
{
    if (!ctr)
        return zkc__err(ZKC_EINVAL, "%s: counter is NULL", fn);
    if (__atomic_load_n(&ctr->api_destroyed, __ATOMIC_ACQUIRE))
        return zkc__err(ZKC_EINVAL, "%s: counter %s was destroyed", fn, ctr->path);
    return 0;
}

static upd *upd_new(zkc_counter *ctr, int type, int64_t a, int64_t b, const zkc_update *uo, int *rc)
{
    if (uo && uo->key && (*rc = zkc__name_check(uo->key, "idempotency key")) != 0)
        return NULL;
    upd *u = calloc(1, sizeof *u);
    if (!u || (uo && uo->key && !(u->key = strdup(uo->key)))) {
        free(u);
        *rc = zkc__err(ZKC_ENOMEM, "out of memory");
        return NULL;
    }
    u->op.c = ctr->c;
    u->op.invoke = upd_invoke;
    u->op.release = upd_release;
    u->ctr = ctr;
    u->co = ctr->co;
    u->type = type;
    u->a = a;
    u->b = b;
    if (uo) {
        u->has_floor = uo->has_floor;
        u->has_ceiling = uo->has_ceiling;
        u->floor = uo->floor;
        u->ceiling = uo->ceiling;
    }
    __atomic_add_fetch(&ctr->refs, 1, __ATOMIC_ACQ_REL);
    *rc = 0;
    return u;
}

#ifdef ZKC_OPWATCH
static const char *const upd_kind[] = {"", "counter_get", "counter_set", "counter_add", "counter_cas",
                                       "counter_multi_add"};
#endif

/* Test builds: the bound the header promises, operation timeout + session timeout. */
static void upd_label(zkc_client *c, int type, const char *path)
{
#ifdef ZKC_OPWATCH
    zkc__opwatch_next(upd_kind[type], path, (int64_t)c->opt.operation_timeout_ms + c->opt.session_timeout_ms);
#else
    ZKC__UNUSED(c);
    ZKC__UNUSED(type);
    ZKC__UNUSED(path);
#endif
}

static int run_upd(zkc_counter *ctr, int type, int64_t a, int64_t b, const zkc_update *uo, zkc_counter_result *r,
                   zkc_counter_cb cb, void *ud, int blocking, const char *fn)
{
    int rc = check_ctr(ctr, fn);
    if (rc)
        return rc;
    if (!blocking && !cb)
        return zkc__err(ZKC_EINVAL, "%s: callback is NULL", fn);
    if (uo && uo->has_floor && uo->has_ceiling && uo->floor > uo->ceiling)
        return zkc__err(ZKC_EINVAL, "%s: floor %" PRId64 " is above ceiling %" PRId64, fn, uo->floor, uo->ceiling);
    upd *u = upd_new(ctr, type, a, b, uo, &rc);
    if (!u)
        return rc;
    u->cb = cb;
    u->ud = ud;
    upd_label(ctr->c, type, ctr->path);
    rc = zkc__op_run(&u->op, upd_start, blocking);
    zkc__opwatch_next(NULL, NULL, 0); /* refused before it registered: the label is not the next op's */
    if (!blocking)
        return rc;
    if (r)
        *r = u->res;
    u->op.release(&u->op);
    return rc;
}

int zkc_counter_get(zkc_counter *ctr, int64_t *value)
{
    zkc_counter_result r = {0, 0, 0};
    if (!value)
        return zkc__err(ZKC_EINVAL, "zkc_counter_get: value is NULL");
    int rc = run_upd(ctr, OP_GET, 0, 0, NULL, &r, NULL, NULL, 1, "zkc_counter_get");
    if (rc == 0)
        *value = r.after;
    return rc;
}

int zkc_counter_set(zkc_counter *ctr, int64_t value)
{
    return run_upd(ctr, OP_SET, value, 0, NULL, NULL, NULL, NULL, 1, "zkc_counter_set");
}

int zkc_counter_add(zkc_counter *ctr, int64_t delta, const zkc_update *u, zkc_counter_result *r)
{
    return run_upd(ctr, OP_ADD, delta, 0, u, r, NULL, NULL, 1, "zkc_counter_add");
}

int zkc_counter_cas(zkc_counter *ctr, int64_t expect, int64_t value, zkc_counter_result *r)
{
    return run_upd(ctr, OP_CAS, expect, value, NULL, r, NULL, NULL, 1, "zkc_counter_cas");
}

int zkc_counter_get_async(zkc_counter *ctr, zkc_counter_cb cb, void *ud)
{
    return run_upd(ctr, OP_GET, 0, 0, NULL, NULL, cb, ud, 0, "zkc_counter_get_async");
}

int zkc_counter_set_async(zkc_counter *ctr, int64_t value, zkc_counter_cb cb, void *ud)
{
    return run_upd(ctr, OP_SET, value, 0, NULL, NULL, cb, ud, 0, "zkc_counter_set_async");
}

int zkc_counter_add_async(zkc_counter *ctr, int64_t delta, const zkc_update *u, zkc_counter_cb cb, void *ud)
{
    return run_upd(ctr, OP_ADD, delta, 0, u, NULL, cb, ud, 0, "zkc_counter_add_async");
}

int zkc_counter_cas_async(zkc_counter *ctr, int64_t expect, int64_t value, zkc_counter_cb cb, void *ud)
{
    return run_upd(ctr, OP_CAS, expect, value, NULL, NULL, cb, ud, 0, "zkc_counter_cas_async");
}

/* ---- create / destroy: the core list lives on the engine ---- */

typedef struct open_op {
    zkc__op op;
    zkc_counter *ctr;
    zkc_counter_options o;
} open_op;

static void open_invoke(zkc__op *op)
{
    ZKC__UNUSED(op);
}

static void open_release(zkc__op *op)
{
    free(ZKC__CONTAINER_OF(op, open_op, op));
}

static void open_start(zkc__op *op)
{
    open_op *oo = ZKC__CONTAINER_OF(op, open_op, op);
    zkc_counter *ctr = oo->ctr;
    zkc_client *c = ctr->c;
    slot_pool *p = pool_get(c);
    if (!p) {
        zkc__op_finish(op, ZKC_ENOMEM, "out of memory");
        return;
    }
    for (core *co = p->cores; co; co = co->next) {
        if (strcmp(co->path, ctr->path) == 0) {
            if (co->fmt != (int)oo->o.format || co->initial != oo->o.initial) {
                zkc__op_finish(op, ZKC_ECONFIG,
                               "counter %s is already open in this client with another format or initial value",
                               ctr->path);
                return;
            }
            co->users++;
            if (oo->o.no_combine)
                co->combine = 0;
            ctr->co = co;
            zkc__op_finish(op, 0, NULL);
            return;
        }
    }
    core *co = calloc(1, sizeof *co);
    if (!co || !(co->path = strdup(ctr->path))) {
        free(co);
        zkc__op_finish(op, ZKC_ENOMEM, "out of memory");
        return;
    }
    co->c = c;
    zkc__timer_init(&co->beacon_timer, beacon_timer_fire);
    co->fmt = (int)oo->o.format;
    co->initial = oo->o.initial;
    co->max_attempts = oo->o.max_attempts > 0 ? oo->o.max_attempts : 64;
    co->combine = !oo->o.no_combine;
    co->users = 1;
    co->next = p->cores;
    p->cores = co;
    ctr->co = co;
    zkc__op_finish(op, 0, NULL);
}

void zkc_counter_options_init(zkc_counter_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->format = ZKC_FMT_INT64;
    o->max_attempts = 64;
}

int zkc_counter_create(zkc_client *c, const char *path, const zkc_counter_options *opts, zkc_counter **out)
{
    if (!out)
        return zkc__err(ZKC_EINVAL, "zkc_counter_create: out is NULL");
    *out = NULL;
    if (!c)
        return zkc__err(ZKC_EINVAL, "zkc_counter_create: client is NULL");
    int rc = zkc__path_check(path, "counter path");
    if (rc)
        return rc;
    zkc_counter_options o;
    zkc_counter_options_init(&o);
    if (opts)
        o = *opts;
    if ((unsigned)o.format > ZKC_FMT_DECIMAL)
        return zkc__err(ZKC_EINVAL, "counter %s: unknown format %d", path, (int)o.format);
    if (o.max_attempts < 0)
        return zkc__err(ZKC_EINVAL, "counter %s: max_attempts is negative", path);
    if (o.format == ZKC_FMT_INT32 && (o.initial < INT32_MIN || o.initial > INT32_MAX))
        return zkc__err(ZKC_EINVAL, "counter %s: initial value does not fit 32 bits", path);
    zkc_counter *ctr = calloc(1, sizeof *ctr);
    if (!ctr || !(ctr->path = strdup(path))) {
        free(ctr);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    ctr->c = c;
    ctr->refs = 1;
    zkc__client_ref(c);
    open_op *oo = calloc(1, sizeof *oo);
    if (!oo) {
        ctr_unref(ctr);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    oo->op.c = c;
    oo->op.invoke = open_invoke;
    oo->op.release = open_release;
    oo->ctr = ctr;
    oo->o = o;
    rc = zkc__op_run(&oo->op, open_start, 1);
    oo->op.release(&oo->op);
    if (rc) {
        ctr_unref(ctr);
        return rc;
    }
    *out = ctr;
    return 0;
}

static void close_start(zkc__op *op)
{
    open_op *oo = ZKC__CONTAINER_OF(op, open_op, op);
    core *co = oo->ctr->co;
    /* Cores stay for the client's lifetime (one per path): later objects on the
     * same path reuse the cached version. */
    if (co)
        co->users--;
    zkc__op_finish(op, 0, NULL);
}

void zkc_counter_destroy(zkc_counter *ctr)
{
    if (!ctr)
        return;
    if (__atomic_exchange_n(&ctr->api_destroyed, 1, __ATOMIC_ACQ_REL))
        return;
    if (!__atomic_load_n(&ctr->c->api_closing, __ATOMIC_ACQUIRE) && !zkc__on_engine(ctr->c)) {
        open_op *oo = calloc(1, sizeof *oo);
        if (oo) {
            oo->op.c = ctr->c;
            oo->op.invoke = open_invoke;
            oo->op.release = open_release;
            oo->ctr = ctr;
            zkc__op_run(&oo->op, close_start, 1);
            oo->op.release(&oo->op);
        }
    }
    ctr_unref(ctr);
}

const char *zkc_counter_path(zkc_counter *ctr)
{
    return ctr ? ctr->path : NULL;
}

/* ---- multi-counter ---- */

static void multi_start(zkc__op *op)
{
    upd *u = ZKC__CONTAINER_OF(op, upd, op);
    txn *t = txn_new(op->c);
    if (!t) {
        zkc__op_finish(op, ZKC_ENOMEM, "out of memory");
        return;
    }
    for (int i = 0; i < u->n; i++)
        u->cores[i]->fresh = 0;
    t->multi = u;
    txn_round(t);
}

int zkc_counter_multi_add(zkc_client *c, const zkc_counter_op *ops, int n, const char *key,
                          zkc_counter_result *results, int *failed_index)
{
    if (failed_index)
        *failed_index = -1;
    if (!c || !ops)
        return zkc__err(ZKC_EINVAL, "zkc_counter_multi_add: NULL argument");
    if (n <= 0 || n > ZKC__REC_MAX_ENTRIES)
        return zkc__err(ZKC_EINVAL, "zkc_counter_multi_add: %d ops (1..%d allowed)", n, ZKC__REC_MAX_ENTRIES);
    int rc;
    if (key && (rc = zkc__name_check(key, "idempotency key")) != 0)
        return rc;
    for (int i = 0; i < n; i++) {
        if ((rc = check_ctr(ops[i].counter, "zkc_counter_multi_add")) != 0)
            return rc;
        if (ops[i].counter->c != c)
            return zkc__err(ZKC_EINVAL, "zkc_counter_multi_add: op %d's counter belongs to another client", i);
    }
    upd *u = calloc(1, sizeof *u);
    if (!u)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    u->op.c = c;
    u->op.invoke = upd_invoke;
    u->op.release = upd_release;
    u->type = OP_MULTI;
    u->n = n;
    u->cores = calloc((size_t)n, sizeof *u->cores);
    u->deltas = calloc((size_t)n, sizeof *u->deltas);
    u->hf = calloc((size_t)n, sizeof *u->hf);
    u->hc = calloc((size_t)n, sizeof *u->hc);
    u->fl = calloc((size_t)n, sizeof *u->fl);
    u->ce = calloc((size_t)n, sizeof *u->ce);
    u->mres = calloc((size_t)n, sizeof *u->mres);
    u->newv = calloc((size_t)n, sizeof *u->newv);
    u->key = key ? strdup(key) : NULL;
    if (!u->cores || !u->deltas || !u->hf || !u->hc || !u->fl || !u->ce || !u->mres || !u->newv ||
        (key && !u->key)) {
        upd_release(&u->op);
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        u->cores[i] = ops[i].counter->co; /* set once at creation, before the object was returned */
        u->deltas[i] = ops[i].delta;
        u->hf[i] = ops[i].has_floor;
        u->hc[i] = ops[i].has_ceiling;
        u->fl[i] = ops[i].floor;
        u->ce[i] = ops[i].ceiling;
    }
    upd_label(c, OP_MULTI, ops[0].counter->path);
    rc = zkc__op_run(&u->op, multi_start, 1);
    zkc__opwatch_next(NULL, NULL, 0);
    if (results && (rc == 0))
        for (int i = 0; i < n; i++) {
            results[i] = u->mres[i];
            results[i].replayed = u->res.replayed;
        }
    if (failed_index && (rc == ZKC_EBOUND || rc == ZKC_EOVERFLOW))
        *failed_index = u->failed_index;
    u->op.release(&u->op);
    return rc;
}

/* ---- lookup by key ---- */

typedef struct lookup_op {
    zkc__op op;
    char *path;
    char *key;
    zkc_counter_result res;
} lookup_op;

static void lookup_release(zkc__op *op)
{
    lookup_op *lo = ZKC__CONTAINER_OF(op, lookup_op, op);
    free(lo->path);
    free(lo->key);
    free(lo);
}

static void lookup_done(zkc__req *r)
{
    lookup_op *lo = r->ctx;
    zkc__record rec;
    if (r->rc == ZR_NONODE) {
        zkc__op_finish(&lo->op, ZKC_ENONODE,
                       "key %s: no update with this key was applied (or it is older than the retention period)",
                       lo->key);
    } else if (r->rc != ZR_OK) {
        zkc__op_finish(&lo->op, req_error(r->rc), "key %s: %s", lo->key, zkc__zrc_name(r->rc));
    } else if (zkc__record_decode(r->value, r->valuelen, &rec) != 0 || rec.n < 1) {
        zkc__op_finish(&lo->op, ZKC_EBADDATA, "key %s: malformed record in %s", lo->key, lo->path);
    } else {
        lo->res.before = rec.before[0];
        lo->res.after = rec.after[0];
        lo->res.replayed = 1;
        zkc__op_finish(&lo->op, 0, NULL);
    }
}

static void lookup_start(zkc__op *op)
{
    lookup_op *lo = ZKC__CONTAINER_OF(op, lookup_op, op);
    /* sync: a restarted worker must see what the previous one did, even if
     * this server lags the leader. */
    zkc__sync_get(op->c, lo->path, lookup_done, lo);
}

int zkc_counter_lookup(zkc_client *c, const char *key, zkc_counter_result *r)
{
    if (!c)
        return zkc__err(ZKC_EINVAL, "zkc_counter_lookup: client is NULL");
    int rc = zkc__name_check(key, "idempotency key");
    if (rc)
        return rc;
    lookup_op *lo = calloc(1, sizeof *lo);
    if (!lo || !(lo->path = key_path(c, key)) || !(lo->key = strdup(key))) {
        if (lo) {
            free(lo->path);
            free(lo);
        }
        return zkc__err(ZKC_ENOMEM, "out of memory");
    }
    lo->op.c = c;
    lo->op.invoke = open_invoke;
    lo->op.release = lookup_release;
    rc = zkc__op_run(&lo->op, lookup_start, 1);
    if (rc == 0 && r)
        *r = lo->res;
    lo->op.release(&lo->op);
    return rc;
}

/* ---- rebase ---- */

/* Versions below this are far from the wrap and need no rebase. A variable so
 * that fault tests can drive a real rebase without 2^30 writes first. */
int zkc__counter_rebase_from = 1 << 30;

typedef struct rebase_op {
    zkc__op op;
    zkc_counter *ctr;
    int64_t value;
} rebase_op;

static void rebase_multi_done(zkc__req *r)
{
    rebase_op *ro = r->ctx;
    core *co = ro->ctr->co;
    co->cached = 0;
    if (r->rc == ZR_OK)
        zkc__op_finish(&ro->op, 0, NULL);
    else if (r->rc == ZR_NOTEMPTY)
        zkc__op_finish(&ro->op, ZKC_EBUSY,
                       "rebasing %s: the node has children (the fairness beacons of writers that are waiting, or "
                       "nodes of your own); nothing was written: retry when its writers are idle",
                       co->path);
    else if (zkc__zrc_indeterminate(r->rc))
        /* The delete + create may have been applied: the value is the same
         * either way, only the version differs; a retry tells. */
        zkc__op_finish(&ro->op, ZKC_EUNKNOWN, "rebasing %s: outcome unknown (%s); call zkc_counter_rebase again",
                       co->path, zkc__zrc_name(r->rc));
    else
        zkc__op_finish(&ro->op, req_error(r->rc), "rebasing %s: %s", co->path, zkc__zrc_name(r->rc));
}

static void rebase_get_done(zkc__req *r)
{
    rebase_op *ro = r->ctx;
    core *co = ro->ctr->co;
    if (r->rc != ZR_OK) {
        zkc__op_finish(&ro->op, req_error(r->rc), "rebasing %s: %s", co->path, zkc__zrc_name(r->rc));
        return;
    }
    int64_t v;
    const char *why;
    if (zkc__value_decode(co->fmt, r->value, r->valuelen, co->initial, &v, &why) != 0) {
        zkc__op_finish(&ro->op, ZKC_EBADDATA, "rebasing %s: %s; nothing was written", co->path, why);
        return;
    }
    if (zkc__version_usable(r->stat.version) && r->stat.version >= 0 && r->stat.version < zkc__counter_rebase_from) {
        zkc__op_finish(&ro->op, 0, NULL); /* far from the wrap: nothing to do */
        return;
    }
    char enc[24];
    int len = zkc__value_encode(co->fmt, v, enc);
    zkc__mop ops[2];
    memset(ops, 0, sizeof ops);
    /* Delete at the version we read (when it is not -1, which would mean
     * "any"): a concurrent zkcoord writer then makes this fail instead of
     * being lost. At -1 no writer of ours can write, so there is no race
     * among zkcoord clients. */
    ops[0].type = ZKC_REQ_DELETE;
    ops[0].path = co->path;
    ops[0].version = r->stat.version;
    ops[1].type = ZKC_REQ_CREATE;
    ops[1].path = co->path;
    ops[1].data = enc;
    ops[1].len = len;
    ro->value = v;
    zkc__multi(ro->op.c, ops, 2, rebase_multi_done, ro);
}

static void rebase_start(zkc__op *op)
{
    rebase_op *ro = ZKC__CONTAINER_OF(op, rebase_op, op);
    zkc__get(op->c, ro->ctr->co->path, NULL, rebase_get_done, ro);
}

static void rebase_release(zkc__op *op)
{
    free(ZKC__CONTAINER_OF(op, rebase_op, op));
}

int zkc_counter_rebase(zkc_counter *ctr)
{
    int rc = check_ctr(ctr, "zkc_counter_rebase");
    if (rc)
        return rc;
    rebase_op *ro = calloc(1, sizeof *ro);
    if (!ro)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    ro->op.c = ctr->c;
    ro->op.invoke = open_invoke;
    ro->op.release = rebase_release;
    ro->ctr = ctr;
    rc = zkc__op_run(&ro->op, rebase_start, 1);
    ro->op.release(&ro->op);
    return rc;
}
