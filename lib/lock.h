/* The lock recipes (lib/lock.c the object and its API, lib/semaphore.c a
 * semaphore's admissions without a listing, lib/lockkind.c the kinds and their
 * decisions, lib/contenders.c the contenders as tools see them). */
#ifndef ZKC_LOCK_H
#define ZKC_LOCK_H

#include "internal.h"
#include "member.h"
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

/* The object itself, for lock.c and semaphore.c only (the kinds and the
 * multi-lock use the functions above). */
struct zkc_lock {
    zkc__object obj;
    zkc__sess_listener sl;
    zkc__qm m;
    zkc_client *c;
    char *path;
    const zkc__qkind *kind;
    int max_leases;
    zkc_lock *sibling;
    int refs; /* atomic */
    int destroyed;     /* engine */
    int api_destroyed; /* atomic: zkc_lock_destroy was called */

    int phase;
    struct acq_op *acq; /* the acquire running (lock.c) */
    int64_t token; /* token, holds, lost: written by the engine (lock.c: PUT),
                    * read by any thread */
    int holds;
    int lost;
    int next_in;       /* waiting: the node we watch is all that keeps us out */
    int next_in_held;  /* waiting: that node's owner holding (and leaving)
                        * would let us in: see in_without */
    int list_watched;  /* semaphore: the next listing also watches the
                        * children (we are at most the first waiter) */
    char *pred_name;   /* semaphore (few leases): the member right ahead of
                        * us in our last listing, which we watch */
    char **cand;       /* semaphore (few leases): names among which is every
                        * member still ahead of us (zkc__qm_wait_any on them) */
    int ncand;
    zkc__timer timer;
    int stored_leases; /* semaphore: count read from the node; -1 not read yet */
    char dir_data[24]; /* semaphore: the lease count, stored when we create the node */
    struct simple_op *release_op;
    zkc__mstamp mh; /* metrics: the hold, from grant to its end */

    zkc__listener lis;
    pthread_mutex_t mu;
    /* Under mu: our node and its token as of the last join, for
     * zkc_lock_guard on any thread (m.node is the engine's). */
    char *guard_node;
    int64_t guard_token;
};

/* lock.c, for semaphore.c: reference the object (every request out holds
 * one); grant the acquire (kick: write our node for the waiter behind us,
 * with names[0..n) ahead of us, n < 0 none known); give the attempt up and
 * report status once its node is gone; list the queue (reading the stored
 * lease count first if not read yet). */
void zkc__lock_ref(zkc_lock *l);
void zkc__lock_unref(zkc_lock *l);
void zkc__lock_grant(zkc_lock *l, int kick, char *const *names, int n);
void zkc__lock_abort(zkc_lock *l, int status, const char *fmt, ...) ZKC__PRINTF(3, 4);
void zkc__lock_check(zkc_lock *l);

/* semaphore.c, for lock.c: admissions without a listing (its essay). */
int zkc__sem_names(const zkc_lock *l);   /* 1: kicks carry names (few leases) */
void zkc__sem_forget(zkc_lock *l);      /* drop pred_name and the candidates */
void zkc__sem_kick(zkc_lock *l, char *const *names, int n); /* write our node, admitted */
/* Candidates names[0..n) (copied): granted if fewer than the leases, else
 * wait for any of them to go. */
void zkc__sem_wait_cand(zkc_lock *l, char *const *names, int n);
/* The news of a wait (ops->moved): 1 if it was a semaphore's to act on (a
 * candidate gone; the member ahead written: its kick is read), 0 if the
 * lock lists again. */
int zkc__sem_moved(zkc_lock *l, int how);

#endif
