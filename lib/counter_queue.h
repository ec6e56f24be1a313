/*
 * The queued mode of a counter, private to its two files: the batch (one
 * core batch on its way through the queue) and what the apply
 * (counter_queue_apply.c) shares with the rest of the protocol
 * (counter_queue.c, whose essay describes both).
 */
#ifndef ZKC_COUNTER_QUEUE_H
#define ZKC_COUNTER_QUEUE_H

#include "counter.h"
#include "counter_queue_codec.h"

#define CQ_APPLY_MAX 32 /* queued batches one apply takes at most */

typedef struct qent {
    char *name;   /* q-<uuid>-<seq> */
    int32_t seq;
    char uuid[37];
    char *data;   /* read for an apply */
    int len;
} qent;

typedef struct cq {
    zkc__ctr_core *co;
    zkc__ctr_upd *u[ZKC__CTR_BATCH_MAX];
    int nu;
    int refs;
    int over;       /* the updates are finished: callbacks only drop refs */
    int queued;     /* the enqueue may have landed: giving up is ZKC_EUNKNOWN */
    int impatient;  /* waited zkc__cq_patience_ms: apply even if not the head */
    int retrying;   /* the timer is a retry after a failed read, not patience */
    int at_sent;    /* the current apply attempt went out */
    int rdel_sent;  /* the enqueue carries the delete of co->rdel */
    int lost;       /* apply attempts that lost to another writer (AUTO, BOUND) */
    int fence;      /* the next look goes through a quorum fence (BOUND) */
    int alone;      /* applied by us, alone in the queue, at the first try (AUTO) */
    char uuid[37];
    char *qdir;
    int32_t myseq;
    int have_seq;
    int64_t started_ms;
    zkc__txn et;    /* the enqueue */
    int et_live;
    zkc__txn at;    /* the current apply attempt */
    int at_live;
    zkc__timer timer;
    zkc__watch *w;
    /* apply */
    qent *q;
    int nq;
    int reads;
    int read_bad;   /* a read failed: look again */
    int64_t cvalue;
    int32_t cversion;
    int cmissing;
    int cbad;
    int mine;       /* index of our batch in q, -1 when not in this apply */
    /* PIPELINE (see the essay): the listing and counter read sent behind the
     * enqueue. early: 0 none usable, 1 in flight, 2 the enqueue applied and
     * the listing will decide; early_gen tells a stale reply from the current. */
    int early;
    uint64_t early_gen;
    int c_known;    /* cvalue/cversion/cmissing came from the pipelined read */
    int pend;       /* undecided apply attempts that carried our batch: 0, 1, 2 (= more) */
    int pverdict[ZKC__CTR_BATCH_MAX];
    zkc_counter_result pres[ZKC__CTR_BATCH_MAX]; /* the plan of the one undecided attempt */
    zkc_counter_result mres[ZKC__CTR_BATCH_MAX];
    int mverdict[ZKC__CTR_BATCH_MAX];
    int64_t final;
} cq;

/* life (counter_queue.c) */
void zkc__cq_hold(cq *b);
void zkc__cq_drop(cq *b);
void zkc__cq_phase(cq *b, const char *state); /* for the opwatch (test builds) */
void zkc__cq_txn_phase(zkc__txn *t, const char *state);
/* Ending the batch: finish every update with its planned outcome, or give up
 * (ZKC_EUNKNOWN once it may be queued). */
void zkc__cq_finish_with(cq *b, const int *verdict, const zkc_counter_result *res);
void zkc__cq_give_up(cq *b, int status, const char *why);
/* After a failed read or an undecided write: look again shortly, until the
 * operation and session timeouts have passed. */
void zkc__cq_retry_later(cq *b, int rc, const char *doing);

/* names and records (counter_queue.c) */
char *zkc__cq_r_path(const cq *b, int32_t seq, const char *uuid);
char *zkc__cq_encode_own(const cq *b, int *len);

/* look: list the queue and decide (counter_queue.c) */
void zkc__cq_look(cq *b);
int zkc__cq_counter_read(cq *b, const zkc__req *r);

/* apply: the head applies b->q (counter_queue_apply.c) */
void zkc__cq_apply(cq *b);

#endif
