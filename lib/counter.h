/* The counter module's private header: lib/counter.c (objects, cores, API),
 * lib/counter_txn.c (a counter write on the transaction core),
 * lib/counter_multi.c (multi-counter adds), lib/counter_rebase.c. */
#ifndef ZKC_COUNTER_H
#define ZKC_COUNTER_H

#include "internal.h"
#include "beacon.h"
#include "codec.h"
#include "txn.h"

#define ZKC__CTR_BATCH_MAX 64
enum { ZKC__CTR_GET = 1, ZKC__CTR_SET, ZKC__CTR_ADD, ZKC__CTR_CAS, ZKC__CTR_MULTI };

typedef struct zkc__ctr_core zkc__ctr_core;
typedef struct zkc__ctr_upd zkc__ctr_upd;

struct zkc_counter {
    zkc_client *c;
    zkc__ctr_core *co; /* set at creation; not followed once closed */
    char *path;
    int refs; /* atomic */
    int api_destroyed;
    int closed; /* engine: its core reference was given back (close_start) */
};

/* One per path and client, shared by that client's counter objects on it:
 * the update queue (COMBINING) and the cache (CACHE) of lib/counter.c. It
 * lives while anything holds it (LIFETIME in lib/counter.c). */
struct zkc__ctr_core {
    zkc__ctr_core *hnext; /* in its registry bucket */
    uint64_t hash;        /* of path */
    int refs;             /* engine: zkc__ctr_core_hold / _drop */
    zkc_client *c;
    char *path;
    int fmt;
    int64_t initial;
    int max_attempts;
    int combine;
    int queued; /* zkc_counter_options.queued (ZKC_COUNTER_QUEUED_*): plain adds go through the queue (lib/counter_queue.c) */
    /* ZKC_COUNTER_QUEUED_AUTO (AUTO in lib/counter_queue.c): this client's
     * current mode and what it measured, changed only between batches. */
    int auto_in;        /* plain adds go queued now */
    int auto_batches;   /* direct batches in the current window */
    int auto_lost;      /* contention seen in them (rounds lost, beacons seen) */
    int cq_alone;       /* queued: our last batch found only itself queued (PIPELINE) */
    int auto_alone;     /* queued: consecutive batches that found only themselves queued */
    int auto_need;      /* how many of those make it leave (doubles on a quick return) */
    int auto_since;     /* direct batches since it last left the queue */
    char *rdel; /* queued: our last outcome record, read, to delete (zkc__cq_flush) */
    int cached, fresh, missing;
    int64_t value;
    int32_t version;
    zkc__list queue; /* of zkc__ctr_upd, FIFO */
    int busy;
    zkc__beacon beacon;
};

/* One update (or read) of a counter, or one multi-counter add: the caller's op. */
struct zkc__ctr_upd {
    zkc__op op;
    zkc_counter *ctr;
    zkc__ctr_core *co;
    int type;
    int64_t a, b; /* operands; ZKC__CTR_GET: a = 1 for a fresh read (zkc__fence_get) */
    int in_read;  /* ZKC__CTR_GET: queued before the core's read in flight was sent */
    zkc_bounds bounds;
    char *key;
    zkc_guard *guards; /* writes only while every one holds (zkc__txn_guard) */
    int nguards;
    zkc_counter_cb cb;
    zkc_counter_multi_cb mcb; /* ZKC__CTR_MULTI's callback instead of cb */
    void *ud;
    zkc_counter_result res;
    zkc__list_node qnode; /* in co->queue while queued */
    int verdict; /* this round: 0 write it, else the refusal code */
    int attempts;
    /* ZKC__CTR_MULTI */
    int n;
    zkc__ctr_core **cores;
    zkc_counter **ctrs; /* held (zkc__ctr_hold): cores[i] is ctrs[i]'s, taken on the engine */
    int64_t *deltas;
    zkc_bounds *mbounds;
    zkc_counter_result *mres;
    int failed_index;
    int64_t *newv;
};

/* A counter write on the transaction core: one batch of a core's updates, or
 * one multi-counter add. */
typedef struct zkc__ctr_txn {
    zkc__txn t;
    zkc__ctr_core *co; /* batch: one core, upds in u[] */
    zkc__ctr_upd *u[ZKC__CTR_BATCH_MAX];
    int nu;
    zkc__ctr_upd *multi; /* or a multi-counter update */
    zkc__ctr_core **held; /* multi: the cores it holds until txn_end (multi may go first) */
    int nheld;
    int reads;      /* counter reads in flight */
    int sync_first; /* the next reads are preceded by a sync */
    int read_err;   /* first failure among them (ZR_* or ZKC_EBADDATA) */
    char read_msg[160];
} zkc__ctr_txn;

/* lib/counter.c */
char *zkc__ctr_key_path(zkc_client *c, const char *key);
void zkc__ctr_upd_finish(zkc__ctr_upd *u, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
int zkc__ctr_read_error(zkc_client *c, int rc);
void zkc__ctr_apply_read(zkc__ctr_core *co, zkc__req *r, int *err, const char **why);
void zkc__ctr_core_kick(zkc__ctr_core *co);
/* Engine: a reference on co; the last drop frees it (LIFETIME in lib/counter.c). */
void zkc__ctr_core_hold(zkc__ctr_core *co);
void zkc__ctr_core_drop(zkc__ctr_core *co);
/* Engine: ctr's core with a reference for the caller, or NULL when ctr was
 * destroyed (its core may be gone). */
zkc__ctr_core *zkc__ctr_core_of(zkc_counter *ctr);
int zkc__ctr_check(zkc_counter *ctr, const char *fn);
/* ZKC_EINVAL (named for fn) when both sides are set and floor > ceiling. */
int zkc__bounds_check(const zkc_bounds *b, const char *fn);
void zkc__ctr_upd_init(zkc__ctr_upd *u, zkc_client *c);
void zkc__ctr_upd_release(zkc__op *op);
void zkc__ctr_label(zkc_client *c, int type, const char *path);
void zkc__ctr_noop_invoke(zkc__op *op);
/* An op that outlives its caller's call (async) keeps the object alive. */
void zkc__ctr_hold(zkc_counter *ctr);
void zkc__ctr_drop(zkc_counter *ctr);

/* lib/counter_rebase.c: versions below this need no rebase (fault tests lower it). */
extern int zkc__counter_rebase_from;

/* lib/counter_txn.c */
zkc__ctr_txn *zkc__ctr_txn_new(zkc_client *c);
void zkc__ctr_txn_round(zkc__ctr_txn *t);
void zkc__ctr_txn_phase(zkc__ctr_txn *t, const char *state);

/* lib/counter_queue.c: the queued mode. */
extern int zkc__cq_patience_ms; /* wait this long for the head before applying ourselves */
extern int32_t zkc__cq_retain;  /* outcome records kept this many queue sequence numbers */
/* Do plain adds of co go through the queue now (ALWAYS, or AUTO switched in)? */
int zkc__cq_now(const zkc__ctr_core *co);
/* Engine, AUTO: a direct batch of co ended after `lost` lost rounds (the
 * beacons' signal is read from co); may switch co into the queue. */
void zkc__cq_auto_direct(zkc__ctr_core *co, int lost);
/* Does the queued mode take this update (a plain add, bounds allowed)? */
int zkc__cq_takes(const zkc__ctr_upd *u);
/* Engine: the queue directory of path (malloc'd). */
char *zkc__cq_dir(zkc_client *c, const char *path);
/* Engine: delete the outcome record the core still keeps, unless a batch is
 * in flight (it carries it). */
void zkc__cq_flush(zkc__ctr_core *co);
/* Engine: run u[0..nu-1] through the queue; co is busy and held for it (the
 * batch gives both back when done). */
void zkc__cq_start(zkc__ctr_core *co, zkc__ctr_upd **u, int nu);

#endif
