/* The queue engine shared by every waiting recipe (lib/queue.c). */
#ifndef ZKC_QUEUE_H
#define ZKC_QUEUE_H

#include "internal.h"
#include "seqname.h"

/* What the recipe decides from the sorted queue: proceed, or wait on one node
 * (blocker >= 0), or wait on the children list (watch_children, semaphore head). */
typedef struct zkc__verdict {
    int granted;
    int blocker;        /* index in the member array to watch */
    int watch_children; /* watch the queue's children list instead */
    int kick_next;      /* after a grant: poke the member behind us (semaphore) */
} zkc__verdict;

typedef struct zkc__qkind {
    const char *tag;   /* node name is "_c_<uuid>" + tag + sequence */
    int kind;          /* zkc_lock_kind */
    int exclusive;     /* tokens strictly increase across holds */
    int stores_leases; /* the lock node's data holds the lease count (semaphore) */
    /* self: our index in m[0..n). Return ZKC_OK or an error (e.g. ZKC_ECONFIG). */
    int (*decide)(zkc_lock *l, const zkc__member *m, int n, int self, zkc__verdict *v);
} zkc__qkind;

/* Engine-side view the predicates may read. */
int zkc__lock_max_leases(zkc_lock *l);
int zkc__lock_stored_leases(zkc_lock *l); /* from the lock node's data; 0 unknown */
const char *zkc__lock_sibling_node(zkc_lock *l); /* held node of the write lock of a read lock */

zkc_lock *zkc__lock_new(zkc_client *c, const char *path, const zkc__qkind *kind, int max_leases);

/* Janitor: delete a node we no longer want once a server is reachable. */
void zkc__janitor_delete(zkc_client *c, const char *node);
/* ... or any child of dir whose name contains uuid (outcome of a create unknown). */
void zkc__janitor_find(zkc_client *c, const char *dir, const char *uuid);

#endif
