/* Helpers shared by tests/test_reserve.c and tests/test_reserve_faults.c:
 * forked worker processes, the request records read back through a raw
 * libzookeeper_mt handle (their czxid is the arrival order: the record is
 * created in the same transaction as the queue nodes; their mzxid is the
 * decision), and the exact unit accounting check. */
#ifndef ZKC_RESERVE_UTIL_H
#define ZKC_RESERVE_UTIL_H

#include "testutil.h"
#include "reserve.h"

#include <sys/types.h>

/* ------------------------------------------------------------ processes */

typedef struct ru_procs {
    int n;
    pid_t pid[32];
    int ready[2];
    int go[2];
} ru_procs;

/* Fork n children running fn(i, arg) (its return value is the exit code);
 * must run before this process creates any client thread. */
void ru_procs_start(ru_procs *p, int n, int (*fn)(int i, void *arg), void *arg);
/* In a child: say ready, then wait (bounded) for the go. 0 or -1. */
int ru_child_ready_wait(ru_procs *p);
/* Parent: wait until every child is ready, then let them all go. */
void ru_procs_go(ru_procs *p);
/* Parent: wait for every child (bounded by timeout_ms); assert exit 0. */
void ru_procs_join(ru_procs *p, int timeout_ms);
void *ru_shared_alloc(size_t n);
/* A worker's client: no Check calls (children report through memory). */
zkc_client *ru_child_client(const char *hosts, int session_ms);

/* ------------------------------------------------------------ records */

typedef struct ru_rec {
    char id[ZKC__RES_NAME_MAX + 1];
    zkc__res_rec r;
    int64_t czxid, mzxid, ctime, mtime;
    int32_t version;
} ru_rec;

/* Every request record under root (asserts the reads work and every record
 * decodes). Sorted by czxid: arrival order. Caller frees *out. */
int ru_records(zhandle_t *zh, const char *root, ru_rec **out);
const ru_rec *ru_find(const ru_rec *v, int n, const char *id);
/* Queue children of a SKU (-1 if the queue does not exist). */
int ru_queue_len(zhandle_t *zh, const char *root, const char *sku);

/* The SKU record read raw; asserts it decodes. */
void ru_sku(zhandle_t *zh, const char *root, const char *sku, zkc__sku_rec *out);
/* Exact accounting at quiescence: the SKU record satisfies its invariant, no
 * count is negative, its total is `total` (unless -1), and `reserved` and
 * `sold` equal the sums over the RESERVED and SOLD records of that SKU. */
void ru_check_units(zhandle_t *zh, const char *root, const char *sku, int64_t total, const ru_rec *v, int n);

#endif
