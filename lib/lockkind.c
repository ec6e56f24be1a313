/*
 * The kinds of lock, each a decision on the sorted queue of the member core
 * (member.c): mutex, the two sides of a read/write lock, semaphore. A kind
 * names its nodes as Curator does (so Curator and kazoo read them) and says,
 * from our index in the queue, whether we hold or which single node to watch.
 */
#include "lock.h"

#include <stdlib.h>
#include <string.h>

/* Mutex and writer: first in line holds; everyone else waits for the one
 * right before it, so a release wakes exactly one waiter. */
static int decide_exclusive(zkc_lock *l, const zkc__member *m, int n, int self, zkc__verdict *v)
{
    ZKC__UNUSED(l);
    ZKC__UNUSED(m);
    ZKC__UNUSED(n);
    if (self == 0)
        v->granted = 1;
    else
        v->blocker = self - 1;
    return 0;
}

/* Reader: holds unless a writer is ahead of it, and then waits for the last
 * writer ahead (readers between it and that writer do not matter). The write
 * lock held by this reader's own rwlock does not count: that is the downgrade. */
static int decide_read(zkc_lock *l, const zkc__member *m, int n, int self, zkc__verdict *v)
{
    ZKC__UNUSED(n);
    const char *own_writer = zkc__lock_sibling_node(l);
    for (int i = self - 1; i >= 0; i--) {
        /* Anything that is not a reader blocks a reader: writers, mutexes, and
         * names we do not recognise (an unprotected Curator "lock-" node). */
        if (m[i].kind != ZKC_LOCK_READ) {
            if (own_writer && strcmp(m[i].name, own_writer) == 0)
                continue;
            v->blocker = i;
            return 0;
        }
    }
    v->granted = 1;
    return 0;
}

/* Semaphore: the first max_leases members hold. The first waiter watches the
 * children list, since a release anywhere among the holders admits it
 * (semaphore.c watches the holders by name instead, up to SEM_NAMES_MAX
 * leases); every
 * later waiter watches the member right before it, which either leaves (cancel,
 * crash) or, once admitted, touches its own node to wake this one up (with the
 * names of the members still ahead of it: semaphore.c). */
static int decide_semaphore(zkc_lock *l, const zkc__member *m, int n, int self, zkc__verdict *v)
{
    ZKC__UNUSED(m);
    int max = zkc__lock_max_leases(l);
    int stored = zkc__lock_stored_leases(l);
    if (stored > 0 && stored != max)
        return zkc__err(ZKC_ECONFIG, "semaphore has %d leases stored in its node, this client was configured for %d",
                        stored, max);
    v->kick_next = 1;
    if (self < max) {
        v->granted = 1;
        return 0;
    }
    if (self == max)
        v->watch_children = 1;
    else
        v->blocker = self - 1;
    ZKC__UNUSED(n);
    return 0;
}

const zkc__qkind zkc__kind_mutex = {"lock-", ZKC_LOCK_MUTEX, 1, 0, decide_exclusive};
const zkc__qkind zkc__kind_write = {"__WRIT__", ZKC_LOCK_WRITE, 1, 0, decide_exclusive};
const zkc__qkind zkc__kind_read = {"__READ__", ZKC_LOCK_READ, 0, 0, decide_read};
const zkc__qkind zkc__kind_semaphore = {"lease-", ZKC_LOCK_SEMAPHORE, 0, 1, decide_semaphore};

/* ---------------------------------------------------------------- read/write lock */

struct zkc_rwlock {
    zkc_lock *r, *w;
};

int zkc_rwlock_create(zkc_client *c, const char *path, zkc_rwlock **out)
{
    if (!out)
        return zkc__err(ZKC_EINVAL, "zkc_rwlock_create: out is NULL");
    *out = NULL;
    zkc_rwlock *rw = calloc(1, sizeof *rw);
    if (!rw)
        return zkc__err(ZKC_ENOMEM, "out of memory");
    int rc = zkc__lock_make(c, path, &zkc__kind_read, 0, &rw->r);
    if (!rc)
        rc = zkc__lock_make(c, path, &zkc__kind_write, 0, &rw->w);
    if (rc) {
        zkc_lock_destroy(rw->r);
        free(rw);
        return rc;
    }
    zkc__lock_set_sibling(rw->r, rw->w);
    *out = rw;
    return 0;
}

zkc_lock *zkc_rwlock_read(zkc_rwlock *rw)
{
    return rw ? rw->r : NULL;
}

zkc_lock *zkc_rwlock_write(zkc_rwlock *rw)
{
    return rw ? rw->w : NULL;
}

void zkc_rwlock_destroy(zkc_rwlock *rw)
{
    if (!rw)
        return;
    zkc_lock_destroy(rw->r);
    zkc_lock_destroy(rw->w);
    free(rw);
}
