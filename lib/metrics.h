/* Client metrics (metrics.c): the hooks every layer calls, each one line at
 * the place where the counted thing happens. A leaf module like util.c: it
 * calls nothing above it, so any layer may call it, from any thread (every
 * count is an atomic add; registrations are published with a release store).
 *
 * An operation carries a stamp (zkc__op.ms): the recipe tags it with its kind,
 * histogram and path before zkc__op_run; op.c counts it as started when it is
 * submitted and finished, once, when it completes. A lock hold carries a
 * stamp of its own from grant to its end (release, loss, shutdown).
 * The election recipe's wait is wired by one line before its zkc__op_run:
 *   zkc__metrics_tag(&op->ms, c, ZKC_MK_ELECTION, ZKC_HIST_ELECTION_WAIT, path); */
#ifndef ZKC_METRICS_H
#define ZKC_METRICS_H

#include "zkcoord.h"

#include <stdint.h>

typedef struct zkc__mstamp {
    int64_t t0_us;   /* monotonic, when it started */
    uint8_t kind1;   /* zkc_metric_kind + 1; 0: not counted (untagged, or already ended) */
    int8_t hist;     /* zkc_metric_hist observed at the end, or -1 */
    uint8_t slot;    /* 0: no registered prefix matched; i: prefix i-1 */
    uint8_t active;  /* begun and not yet ended */
} zkc__mstamp;

#define ZKC__MH_NONE (-1)
/* The metric kind of a lock of zkc_lock_kind k. */
#define ZKC__MK_OF_LOCK(k) ((k) == ZKC_LOCK_SEMAPHORE ? ZKC_MK_SEMAPHORE : (k) == ZKC_LOCK_MUTEX ? ZKC_MK_LOCK : ZKC_MK_RWLOCK)

/* client.c: made with the client, freed with it. */
struct zkc__metrics *zkc__metrics_new(void);
void zkc__metrics_free(struct zkc__metrics *mx);

/* Recipes, before zkc__op_run (any thread): count the operation as `kind`,
 * observe `hist` (or ZKC__MH_NONE) at its end; path picks the prefix label. */
void zkc__metrics_tag(zkc__mstamp *s, zkc_client *c, int kind, int hist, const char *path);
/* op.c: submitted / completed (once; a second end is ignored). Also used
 * directly by calls that are not zkc__op (the multi-lock). */
void zkc__metrics_begin(zkc_client *c, zkc__mstamp *s);
void zkc__metrics_end(zkc_client *c, zkc__mstamp *s, int status);
/* Locks: a hold begins (grant) and ends (release, loss, shutdown; a second
 * end, or one without a beginning, is ignored). */
void zkc__metrics_hold(zkc_client *c, zkc__mstamp *s, int kind, const char *path);
void zkc__metrics_unhold(zkc_client *c, zkc__mstamp *s);
/* Combining: n updates went out in one transaction (hist: *_BATCH). */
void zkc__metrics_batch(zkc_client *c, int hist, int n);
/* req.c: a request of zkc_req_kind `kind` was sent alone (in_multi 0), or an
 * op of that type inside a multi (in_multi 1; other types count as checks). */
void zkc__metrics_sent(zkc_client *c, int kind, int in_multi);

#endif
