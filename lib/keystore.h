/* The key store (keystore.c): one retention sweep over directories of
 * idempotency records, bucketed (<dir>/<bucket>/<key>, zkc__path_bucketed)
 * or flat (<dir>/<key>). Its stores: the counter keys and the transaction
 * markers (admin.c's zkc_admin_cleanup) and the inventory's request records
 * (inventory_reap.c). The store supplies the policy; the walker the
 * mechanics every store had its own copy of. */
#ifndef ZKC_KEYSTORE_H
#define ZKC_KEYSTORE_H

#include "req.h"

#include <stdint.h>

typedef struct zkc__ks_walk zkc__ks_walk;

/* One record being judged: the walker read it (stat only, or stat and data)
 * and handed the reply to the store's decide. */
typedef struct zkc__ks_item {
    zkc__ks_walk *w;
    char *path;
    void *ud;    /* the walk's ud */
    void *store; /* the store's own state for this item, if it needs one */
} zkc__ks_item;

/* Where the walker asks the store whether to go on: before listing the
 * directory given, before listing each bucket, before reading each record. */
enum { ZKC__KS_AT_TOP, ZKC__KS_AT_BUCKET, ZKC__KS_AT_ITEM };

typedef struct zkc__ks_counts {
    int64_t examined; /* records read (read failures too) */
    int64_t deleted;  /* conditional deletes applied (dry run: that would be sent) */
    int stopped;      /* the store's go_on or list_failed ended the walk early */
    int enomem;       /* the walker could not allocate: ended early */
} zkc__ks_counts;

typedef struct zkc__ks_ops {
    int with_data; /* read each record with zkc__get, else zkc__exists */
    int inflight;  /* reads (and the store's work on them) in flight at most */
    /* Every record read: r->rc, r->stat (and the value if with_data). The
     * store ends the item exactly once, with zkc__ks_delete or zkc__ks_skip,
     * now or after requests of its own. */
    void (*decide)(zkc__ks_item *it, zkc__req *r);
    /* Optional: the reply of a conditional delete (ZR_OK counted deleted). */
    void (*deleted)(zkc__ks_item *it, int zrc);
    /* Listing dir failed (not NONODE): nonzero stops the walk; 0 goes on as
     * if it were empty. */
    int (*list_failed)(void *ud, const char *dir, int zrc);
    /* Before each listing and each record read (where: ZKC__KS_AT_*):
     * 0 starts nothing more (what is in flight finishes). */
    int (*go_on)(void *ud, int where);
    /* Once, after everything in flight finished; the walk is freed already. */
    void (*done)(void *ud, const zkc__ks_counts *n);
} zkc__ks_ops;

/* Engine: walk dir, bucketed (<dir>/<bucket>/<key>) or flat (<dir>/<key>);
 * the store judges each record (against the servers' "now" it read before,
 * clock.c). dry_run: zkc__ks_delete counts and sends nothing. Returns
 * ZKC_ENOMEM (done not called) or 0. */
int zkc__ks_walk_start(zkc_client *c, const char *dir, int bucketed, const zkc__ks_ops *ops, int dry_run, void *ud);

/* The item is to go: deleted at `version` (the one examined: a record
 * rewritten since is left alone). */
void zkc__ks_delete(zkc__ks_item *it, int version);
/* The item stays. */
void zkc__ks_skip(zkc__ks_item *it);

#endif
