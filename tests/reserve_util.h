/* Helpers shared by tests/test_reserve.c and tests/test_reserve_faults.c:
 * forked worker processes, the request records read back through a raw
 * libzookeeper_mt handle (the record is created in the same transaction as
 * its queue nodes, so czxid order is arrival order between transactions; a
 * client combines concurrent enqueues into one multi, whose requests share a
 * czxid and are ordered by their queue nodes' sequence, which the library
 * logs at debug level and ru_qpos collects; a record's mzxid is the decision),
 * and the exact unit accounting check. */
#ifndef ZKC_RESERVE_UTIL_H
#define ZKC_RESERVE_UTIL_H

#include "testutil.h"
#include "inventory_codec.h"

#include <sys/types.h>

struct ru_qpos;

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
/* A worker's client: no Check calls (children report through memory).
 * With qp, the queue positions of its requests go to qp (see below). */
zkc_client *ru_child_client(const char *hosts, int session_ms);
zkc_client *ru_child_client_q(const char *hosts, int session_ms, struct ru_qpos *qp);
/* In a worker: its client (ru_child_client_q) and an inventory on root, then
 * ready and the go (ru_child_ready_wait on p). 0, or the worker's exit code
 * for the step that failed: 2 client, 3 inventory, 4 no go. */
int ru_child_inventory(ru_procs *p, const char *hosts, int session_ms, struct ru_qpos *qp, const char *root,
                       zkc_client **c, zkc_inventory **inv);

/* ------------------------------------------------------------ inventory calls */

/* Called, when set, before a helper of this file fails the test (the fault
 * suite stops its ensemble and proxies there first). */
extern void (*ru_before_fail)(void);
zkc_inventory *ru_inv_open(zkc_client *c, const char *root);
/* The stock of sku; asserts the read works and available + reserved + sold
 * == total. */
zkc_inventory_stock_info ru_stock_of(zkc_inventory *inv, const char *sku);
zkc_inventory_state ru_lookup(zkc_inventory *inv, const char *id);
/* Poll the queue length (no event exists for "someone else queued") until
 * it is want, failing after timeout_ms. */
void ru_wait_queue(zkc_inventory *inv, const char *sku, int want, int timeout_ms);

/* An async reservation's outcome; the answer adds the event (tag, status)
 * to e. */
typedef struct ru_acall {
    tu_events *e;
    int tag;
    char id[80];
    int status, state;
    int calls; /* atomic */
} ru_acall;
/* The zkc_inventory_reserve_cb filling a ru_acall (ud). */
void ru_acall_cb(zkc_inventory *inv, int status, const char *id, zkc_inventory_state st, void *ud);
/* zkc_inventory_reserve_async of one line (asserting the call is taken),
 * answered into a. */
void ru_reserve_async(zkc_inventory *inv, ru_acall *a, const char *id, const char *sku, int64_t qty, int wait,
                      int hold_ms, int timeout_ms);

/* ------------------------------------------------------------ queue positions */

/* Where each request was queued, from the library's debug line "inventory R:
 * request ID queued as NODE": the FIFO order of requests that one combined
 * multi queued together (they share a record czxid). Lives in shared memory
 * (ru_shared_alloc) so worker processes can fill it. */
#define RU_QPOS_MAX 1024
typedef struct ru_qpos {
    int n;     /* atomic: entries claimed */
    int lost;  /* atomic: lines that did not fit or did not parse */
    struct {
        int ready; /* atomic: filled in */
        char id[ZKC__RES_NAME_MAX + 1];
        int64_t seq;
    } e[RU_QPOS_MAX];
} ru_qpos;
/* A zkc_log_fn (ud = the ru_qpos); other lines at WARN or above go to stderr. */
void ru_qpos_log(zkc_log_level lvl, const char *msg, void *ud);
/* Set o to log to qp at debug level. */
void ru_qpos_opts(zkc_client_options *o, ru_qpos *qp);

/* ------------------------------------------------------------ records */

typedef struct ru_rec {
    char id[ZKC__RES_NAME_MAX + 1];
    zkc__res_rec r;
    int64_t czxid, mzxid, ctime, mtime;
    int32_t version;
    int64_t qseq; /* ru_order_by_queue: its queue node's sequence, -1 unknown */
} ru_rec;

/* Every request record under root (asserts the reads work and every record
 * decodes). Sorted by czxid: arrival order up to requests queued by the same
 * multi (ru_order_by_queue orders those). Caller frees *out. */
int ru_records(zhandle_t *zh, const char *root, ru_rec **out);
/* Sort v into FIFO order: the records whose queue position qp knows (one
 * single-line queue) by that position, then the others by czxid. Asserts that
 * czxid never decreases along the queue order (a record is created with its
 * node) and that no line was lost. Returns how many positions were known. */
int ru_order_by_queue(ru_rec *v, int n, const ru_qpos *qp);
const ru_rec *ru_find(const ru_rec *v, int n, const char *id);
/* Queue children of a SKU (-1 if the queue does not exist). */
int ru_queue_len(zhandle_t *zh, const char *root, const char *sku);
/* The queue's children, each checked to be a member-core queue node
 * ("_c_<nonce>-r-<seq>"); returns their number. */
int ru_queue_members(zhandle_t *zh, const char *root, const char *sku);

/* The SKU record read raw; asserts it decodes. */
void ru_sku(zhandle_t *zh, const char *root, const char *sku, zkc__sku_rec *out);
/* Exact accounting at quiescence: the SKU record satisfies its invariant, no
 * count is negative, its total is `total` (unless -1), and `reserved` and
 * `sold` equal the sums over the RESERVED and SOLD records of that SKU. */
void ru_check_units(zhandle_t *zh, const char *root, const char *sku, int64_t total, const ru_rec *v, int n);

#endif
