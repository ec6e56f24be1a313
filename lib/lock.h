/* The lock recipes (lib/lock.c the object and its API, lib/lockkind.c the
 * kinds and their decisions, lib/contenders.c the contenders as tools see them). */
#ifndef ZKC_LOCK_H
#define ZKC_LOCK_H

#include "internal.h"
#include "seqname.h"

/* What a kind decides from the sorted queue: proceed, or wait on one node
 * (blocker >= 0), or wait on the children list (watch_children, semaphore head). */
typedef struct zkc__verdict {
    int granted;
    int blocker;        /* index in the member array to watch */
    int watch_children; /* watch the queue's children list instead */
    int kick_next;      /* after a grant: poke the member behind us (semaphore) */
} zkc__verdict;

typedef struct zkc__qkind {
    const char *tag;   /* node name is "_c_<uuid>-" + tag + sequence */
    int kind;          /* zkc_lock_kind */
    int exclusive;     /* tokens strictly increase across holds */
    int stores_leases; /* the lock node's data holds the lease count (semaphore) */
    /* self: our index in m[0..n). Return ZKC_OK or an error (e.g. ZKC_ECONFIG). */
    int (*decide)(zkc_lock *l, const zkc__member *m, int n, int self, zkc__verdict *v);
} zkc__qkind;

extern const zkc__qkind zkc__kind_mutex, zkc__kind_write, zkc__kind_read, zkc__kind_semaphore;

/* lock.c: the object, as the kinds and the multi-lock see it. */
int zkc__lock_make(zkc_client *c, const char *path, const zkc__qkind *kind, int max_leases, zkc_lock **out);
int zkc__lock_max_leases(zkc_lock *l);
int zkc__lock_stored_leases(zkc_lock *l);        /* from the lock node's data; 0 unknown */
const char *zkc__lock_sibling_node(zkc_lock *l); /* held node of the write lock of a read lock */
void zkc__lock_set_sibling(zkc_lock *reader, zkc_lock *writer);
int zkc__lock_kind_of(zkc_lock *l);
zkc_client *zkc__lock_client(zkc_lock *l);

#endif
