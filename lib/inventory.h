/* The private interface of the inventory reservation recipe: what its files
 * share, and nothing else. The protocol is described at the top of
 * lib/inventory.c; each file's opening comment says which part it holds:
 *   inventory.c          the object: helpers, session events, create/destroy,
 *                        its guard
 *   inventory_ops.c      the operations other than a reservation (sop): their
 *                        frame, entry points (restock, stock, lookup,
 *                        confirm/return, reap) and the reads stock and lookup
 *   inventory_codec.c    record formats (pure; lib/inventory_codec.h)
 *   inventory_request.c  one reservation's life: submit, wait in its queues
 *                        (its members of them, on the member core),
 *                        leave, finish
 *   inventory_enqueue.c  the queue-length check, the enqueue multi, combining,
 *                        recovery after a loss, an id seen before (follow
 *                        another worker's request)
 *   inventory_grant.c    the head's grant rounds: walk, decide, regrant
 *   inventory_settle.c   versioned SKU-record updates on the transaction
 *                        core: confirm, return, expiry and restock
 *   inventory_reap.c     expiry of holds and retention of finished records
 * All of it runs on the client's engine thread (see THREADS in inventory.c).
 *
 * The versioned SKU-record updates (grant rounds, settle, restock) run on the
 * transaction core (txn.c): grant and settle in its no-marker mode (their own
 * record writes decide a lost reply), restock with its marker; one backoff
 * policy, zkc__txn_backoff. Request records are bucketed as counter keys are
 * (zkc__path_bucketed). The queue membership runs on the member core
 * (member.c: one zkc__qm per line, rline.m; tagged create in our enqueue
 * multi, decision by tag after a lost reply, our place, the watch ahead,
 * leaving).
 *
 * The retention sweep of the request buckets (reap) is the key store's
 * (keystore.c), shared with admin cleanup's sweep of the counter keys and
 * markers. Still private copies of machinery other recipes have too (issue
 * 16): the granter's window listing (grant's own children
 * read, sorted as the member core sorts, zkc__inv_parse_queue; it could become
 * a zkc__qm_list now that the grant rounds are on the transaction core) and
 * its reads of the peers' entries; and the multis that delete our nodes
 * together with a record write (grant, withdrawal; the members then forget
 * them, zkc__qm_forget).
 * Parents are made by the request layer's one zkc__mkpath. */
#ifndef ZKC_INVENTORY_H
#define ZKC_INVENTORY_H

#include "internal.h"
#include "inventory_codec.h"
#include "codec.h"
#include "janitor.h"
#include "member.h"
#include "seqname.h"
#include "txn.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define RES_ATTEMPTS 64              /* CAS rounds / re-enqueues before ZKC_ECONTENDED */
#define RES_WINDOW (ZKC__RES_BATCH + 1) /* members a granter lists per batch */
#define GM_CHUNK 16 /* entries a granter reads per round trip */
#define RES_DEFAULT_HOLD_MS 600000
#define RES_REC_BUF 8192             /* a request record: 32 lines of <= ~220 bytes */
#define RES_REAP_INFLIGHT 8

/* ================================================================ the object */

typedef struct rq rq;

struct zkc_inventory {
    zkc__object obj;
    zkc__sess_listener sl;
    zkc_client *c;
    char *root, *sku_dir, *req_dir;
    int refs;          /* atomic: API handle + every operation and request */
    int api_destroyed; /* atomic */
    int destroyed;     /* engine */
    rq *rqs;           /* engine: reservations in progress */
    rq *enq_first, *enq_last; /* engine: fresh enqueues waiting for the next combined multi */
    int enq_inflight;  /* engine: a combined enqueue multi is out */
    int enq_dispatching; /* engine: handing out its results; resends go first */
    rq *enq_front;     /* engine: the last resend put at the front meanwhile */
    struct lcheck *lchecks; /* engine: queue-length checks out, shared (inventory_enqueue.c) */
    struct qlen *qlens;     /* engine: queue lengths seen lately (inventory_enqueue.c) */
    struct sop *destroy_op; /* engine: zkc_inventory_destroy waiting for rqs to leave */
    pthread_mutex_t guard_mu;
    zkc_guard *guard;  /* under guard_mu: zkc_inventory_set_guard's, copied into each guarded call */
};

/* ================================================================ reservations */

enum {
    P_START = 0, /* checking queue lengths */
    P_ENQ,       /* enqueue multi in flight */
    P_RECOVER,   /* enqueue outcome unknown: finding the evidence */
    P_EXISTING,  /* the id was used before: evaluating its record */
    P_FOLLOW,    /* waiting for another worker's request under our id */
    P_QUEUED,    /* our nodes are queued; waiting for our turn */
    P_GRANT,     /* single-line head: a batch round */
    P_SELF,      /* multi-line head of all its queues: a self-grant round */
    P_WAITSTOCK, /* head, waiting for restock */
    P_LEAVE      /* withdrawing */
};

enum { GM_UNREAD = 0, GM_OK, GM_GONE, GM_BAD };

typedef struct wslot {
    zkc__watch *w;
    int reading; /* a read carrying w is in flight: only its reply may drop it */
} wslot;

/* A multi-line member of a single-line head's window: what deciding it in
 * the head's batch takes beyond its entry (inventory_multiline.c). */
enum { ML_FETCHING = 0, ML_OK, ML_NO };

typedef struct mlline {
    char *qdir, *skupath;
    char *node;        /* its node in qdir */
    char **ahead;      /* the nodes ahead of it there (at most ML_AHEAD_MAX) */
    int nahead;
    zkc__sku_rec sku;
    int32_t sku_ver;
} mlline;

typedef struct mlsku { /* a SKU the walk's multi-line grants take units from */
    const char *path;  /* into a member's mlline */
    zkc__sku_rec base;
    int32_t ver;
    int64_t taken;
} mlsku;

typedef struct gml {
    int st;
    int pending;       /* reads of it out */
    zkc__res_rec rec;  /* its record as read: PENDING, lines in its order */
    int hot;           /* the line of the granter's SKU */
    mlline l[ZKC__RES_MAX_LINES]; /* per line of rec; l[hot] unused */
} gml;

typedef struct gmem { /* the granter's view of one queue member */
    char *name;
    int st;
    zkc__res_qent e;
    uint64_t owner;
    gml *ml;           /* a multi-line member looked at: owned */
} gmem;

typedef struct rline {
    rq *q;
    int idx;
    zkc__res_line l;
    char *skupath, *qdir;
    zkc__qm m;   /* our member of the SKU's queue (member.c): m.node while queued */
    char ent[320]; /* our node's data (a queue entry) for the enqueue multi */
    int head;
    char *pred;  /* name of the node ahead of ours */
    int waiting; /* zkc__qm_wait on pred is out */
    wslot sku_w;
    int dirty;   /* list this queue again */
    zkc__sku_rec sku;
    int32_t sku_ver;
} rline;

typedef struct res_op {
    zkc__op op;
    zkc_inventory *inv;
    char id[ZKC__RES_NAME_MAX + 1];
    int n;
    zkc__res_line *lines;
    int flags;
    int64_t hold_ms;
    int timeout_ms;
    zkc_inventory_reserve_cb cb;
    void *ud;
    zkc_inventory_state state;
} res_op;

struct rq {
    rq *next, *prev;
    int linked;
    zkc_inventory *inv;
    zkc_client *c;
    res_op *op;        /* NULL once finished */
    int refs;          /* engine: 1 until finished + 1 per request/timer in flight */
    int finished;
    int busy;          /* requests of the current chain in flight */
    int phase;
    int leave;         /* status to leave the queue with, 0 none */
    char leave_msg[256];
    int try_mode;      /* timeout 0 */
    int lead;          /* the line listed first: the others are listed once it
                        * is the head of its queue (inventory_request.c,
                        * queued_step) */
    int timeout_ms;
    char id[ZKC__RES_NAME_MAX + 1];
    char *recpath;
    int flags;
    int64_t hold_ms;
    int n;
    rline *ln;
    /* our enqueue */
    int queued;        /* our nodes exist, as far as we know */
    int reenq;
    char nonce[ZKC__RES_NONCE_LEN + 1];
    uint64_t owner;
    uint64_t gen;      /* session our nodes belong to */
    int32_t rec_ver;
    int32_t enq_ver;   /* record version a re-enqueue is conditional on */
    wslot rec_w;
    int dirty_rec;
    int check_rec;     /* read the record before listing */
    int missing;       /* our node is gone from a listing: ask the record */
    int recheck;       /* head waiting for restock: look again */
    int nodes_gone;
    zkc__timer timer;  /* the caller's deadline */
    zkc__txn grant_txn; /* grant rounds on the core (no marker): its backoff */
    int backoff_armed;
    int attempts;
    int withdraws;
    int mkpaths;
    rq *enq_next;      /* in the inventory's combining list */
    int limit_synced;  /* -1: a SKU looked missing, sync and look again; 1: done */
    /* a parallel group's first failure */
    int err;
    char err_msg[256];
    /* granter */
    char **glist;      /* a fresh listing of our (single) queue, in order */
    int nglist;
    gmem *gm;
    int ngm;
    int dec[ZKC__RES_BATCH]; /* decided members (index in gm) */
    int dstate[ZKC__RES_BATCH];
    rq *mine[ZKC__RES_BATCH]; /* decided members that are requests of this
                               * object (a ref each): told by our multi */
    int ndec;
    mlsku *mls;        /* the walk's other SKUs (ML_OPS_MAX), inventory_multiline.c */
    int nmls;
    int in_batch;      /* our granter is one of this object's requests and its
                        * deciding multi is out: it tells us the outcome */
    int64_t short_by;
    /* an existing record under our id */
    zkc__res_rec *ex;
    int32_t ex_ver;
    char *fnode;
    wslot fnode_w;
    int follow_dirty;
};

#define RQ_SEND(q, call)                                                                                      \
    do {                                                                                                       \
        (q)->refs++;                                                                                           \
        (q)->busy++;                                                                                           \
        (void)(call);                                                                                          \
    } while (0)
/* ... with r->tag = t (a line or member index). */
#define RQ_SEND_TAG(q, t, call)                                                                               \
    do {                                                                                                       \
        (q)->refs++;                                                                                           \
        (q)->busy++;                                                                                           \
        zkc__req *r_ = (call);                                                                                 \
        r_->tag = (uint64_t)(t);                                                                               \
    } while (0)

/* Reply wrapper: the chain count goes down; a finished request only cleans up. */
#define RQ_DONE(name)                                                                                         \
    static void name##_h(rq *q, zkc__req *r);                                                                  \
    static void name(zkc__req *r)                                                                              \
    {                                                                                                          \
        rq *q = r->ctx;                                                                                        \
        q->busy--;                                                                                             \
        if (q->finished)                                                                                       \
            zkc__inv_rq_late(q, r);                                                                            \
        else                                                                                                   \
            name##_h(q, r);                                                                                    \
        zkc__inv_rq_unref(q);                                                                                  \
    }                                                                                                          \
    static void name##_h(rq *q, zkc__req *r)

/* ================================================================ other operations
 * Each finishes when nothing of it is in flight any more, so the blocking
 * caller may free it right after, and an async one's callback (sop_invoke in
 * inventory_ops.c, chosen by kind) is its last use. */

typedef struct sop sop;
typedef struct settle settle;

struct settle {
    zkc_inventory *inv;
    zkc_client *c;
    char *recpath;
    int to;              /* SOLD, RETURNED or EXPIRED */
    int sync;
    int64_t now;         /* EXPIRED: server time; only if mtime + hold <= now */
    void (*done)(settle *s, int status, const char *msg);
    void *ud;
    zkc__res_rec rec;
    int32_t rec_ver;
    int state;           /* the record's state when done */
    int acted;
    int64_t units;
    int pending;
    int err;
    char msg[256];
    int attempts;
    int unknown;         /* a write's reply was lost: the record tells */
    zkc__txn t;          /* on the core, no marker: the record write is the evidence */
    zkc__sku_rec sku[ZKC__RES_MAX_LINES];
    int32_t sku_ver[ZKC__RES_MAX_LINES];
};

enum { SOP_OPEN, SOP_DESTROY, SOP_RESTOCK, SOP_STOCK, SOP_CONFIRM, SOP_RETURN, SOP_LOOKUP, SOP_REAP };

typedef struct reap reap;

struct sop {
    zkc__op op;
    zkc_inventory *inv;
    int kind;
    char *sku, *skupath, *qdir;
    int64_t qty;
    char id[ZKC__RES_NAME_MAX + 1];
    char *recpath;
    zkc_inventory_stock_info info;
    int fresh; /* SOP_STOCK: zkc_inventory_stock_fresh (a fenced read) */
    zkc_inventory_state state;
    int64_t returned;
    int attempts;
    int loops;
    zkc__txn t;    /* restock: on the core, exactly once by its marker */
    char data[128];
    int datalen;
    int32_t ver;
    zkc__res_rec *rec;
    reap *rp;
    zkc_guard *guard; /* RESTOCK, CONFIRM, RETURN: zkc_inventory_set_guard's at the call, or NULL */
    union {        /* async form: the callback of its kind (NULL: blocking) */
        zkc_inventory_cb done;          /* RESTOCK, CONFIRM, RETURN */
        zkc_inventory_stock_cb stock;
        zkc_inventory_reserve_cb lookup;
        zkc_inventory_reap_cb reap;
    } cb;
    void *ud;
};

/* ---- inventory.c: the object and its helpers */
void zkc__inv_destroy_done(zkc_inventory *inv);
void zkc__inv_first_error(int *slot, char *msg, size_t len, int status, const char *fmt, va_list ap)
    ZKC__PRINTF(5, 0);
void zkc__inv_ref(zkc_inventory *inv);
void zkc__inv_unref(zkc_inventory *inv);
char *zkc__inv_mprintf(const char *fmt, ...) ZKC__PRINTF(1, 2);
int zkc__inv_multi_failed(const zkc__req *r);
void zkc__inv_new_nonce(char out[ZKC__RES_NONCE_LEN + 1]);
char *zkc__inv_queue_dir(zkc_inventory *inv, const char *sku);
char *zkc__inv_rec_path(zkc_inventory *inv, const char *id);
int zkc__inv_req_error(int rc);
int zkc__inv_sku_reply(zkc_inventory *inv, const zkc__req *r, const char *sku, zkc__sku_rec *out, int32_t *ver,
                       char *msg, size_t len);
char *zkc__inv_sku_path(zkc_inventory *inv, const char *sku);

/* ---- inventory_ops.c: the other operations' frame and entry points */
void zkc__inv_sop_end(sop *s, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
sop *zkc__inv_sop_new(zkc_inventory *inv, int kind);
int zkc__inv_sop_run(sop *s, void (*start)(zkc__op *));

/* ---- inventory_request.c: a reservation's life */
int zkc__inv_check_inv(zkc_inventory *inv, const char *fn);
char *zkc__inv_encode_rec(const zkc__res_rec *rec, int *len);
void zkc__inv_finish_decided(rq *q, int state);
void zkc__inv_forget_nodes(rq *q);
void zkc__inv_free_glist(rq *q);
void zkc__inv_set_glist(rq *q, const zkc__member *m, int n);
void zkc__inv_free_gm(rq *q);
void zkc__inv_group_err(rq *q, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
void zkc__inv_janitor_nodes(rq *q);
int zkc__inv_our_node_name(rline *l, const char *name);
void zkc__inv_line_init(rline *l);
char *zkc__inv_own_record_op(rq *q, int state, int type, int32_t version, zkc__mop *op);
int zkc__inv_parse_queue(char **names, int n, zkc__member **out);
void zkc__inv_rq_fail(rq *q, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
void zkc__inv_rq_finish(rq *q, int status, int state, const char *fmt, ...) ZKC__PRINTF(4, 5);
void zkc__inv_rq_late(rq *q, zkc__req *r);
void zkc__inv_rq_unref(rq *q);
int zkc__inv_same_lines(rq *q, const zkc__res_rec *rec);
void zkc__inv_sku_fired(zkc__watch *w, int ev);
void zkc__inv_step(rq *q);
void zkc__inv_ws_release(wslot *s);
int zkc__inv_ws_reply(wslot *s, const zkc__req *r);

/* ---- inventory_enqueue.c: the queue-length check, enqueue and ids seen before */
void zkc__inv_check_limits(rq *q);
/* Engine: qdir held n waiting requests (a stat or a listing of ours just
 * said so); the next enqueues may skip their queue-length check. */
void zkc__inv_qlen_seen(zkc_inventory *inv, const char *qdir, int n);
void zkc__inv_qlens_free(zkc_inventory *inv); /* last reference */
/* Engine: the line of q whose queue this object saw longest lately (the
 * first of equals; unknown counts as empty). */
int zkc__inv_qlen_longest(rq *q);
void zkc__inv_enq_send(rq *q);
void zkc__inv_recover_check(rq *q);
void zkc__inv_existing_eval(rq *q);
void zkc__inv_existing_read(rq *q);
void zkc__inv_follow_rec_fired(zkc__watch *w, int ev);

/* ---- inventory_grant.c: grant rounds */
void zkc__inv_grant_init(rq *q);
void zkc__inv_round_start(rq *q);
/* The granter q's multi is answered or q ends: the members it was to tell
 * go on by themselves. */
void zkc__inv_batch_release(rq *q);
void zkc__inv_round_progress(rq *q);

/* ---- inventory_multiline.c: multi-line members in a single-line head's batch */
void zkc__inv_ml_free(gml *ml);
void zkc__inv_ml_reset(rq *q);
int zkc__inv_ml_fetch(rq *q, int from);
void zkc__inv_ml_walk_start(rq *q);
int zkc__inv_ml_keep(const gml *ml);
int zkc__inv_ml_decidable(rq *q, int k, int grant, int *extra);
int zkc__inv_ml_sku_ops(rq *q, zkc__mop *ops, char **bufs);
int zkc__inv_ml_node_ops(rq *q, zkc__mop *ops, char **bufs);
char *zkc__inv_ml_record(const gml *ml, int state, int *len);

/* ---- inventory_settle.c: settle and restock */
void zkc__inv_restock_init(sop *s);
void zkc__inv_restock_start(zkc__op *op);
void zkc__inv_settle_free(settle *s);
settle *zkc__inv_settle_new(zkc_inventory *inv, const char *recpath, int to, int sync,
                            void (*done)(settle *, int, const char *), void *ud);
void zkc__inv_settle_op_start(zkc__op *op);
void zkc__inv_settle_read(settle *s);

/* ---- inventory_reap.c: reap */
void zkc__inv_reap_start(zkc__op *op);

#endif
