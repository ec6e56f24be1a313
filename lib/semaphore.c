/*
 * Semaphore admissions: how a semaphore waiter learns that it is in, or whom
 * to watch, without listing the queue again. The lock object (lock.c) grants,
 * gives up and lists; this file holds what an admitted semaphore member writes
 * into its node (its kick), what the waiter behind it makes of that, and the
 * candidates a first waiter watches.
 *
 * A semaphore admits the first max_leases members, so a waiter is in once
 * fewer than max_leases members are ahead of it. Without a listing (issue
 * 21), from two facts: sequence numbers only grow, so the members ahead of
 * us are a subset of any set of members that was ahead of us once; and a
 * semaphore member's node is written only by its owner, once, when it is
 * admitted (its kick): written means "at most max_leases - 1 were ahead of
 * me then". The kick carries the names of the members that could still be
 * ahead of the kicker (KICK_MAGIC, a name a line, at most max_leases - 1),
 * when it knows them:
 *   - admitted from a listing: the members ahead of it in that listing;
 *   - admitted as the first waiter (below): its candidates but the one gone.
 * The waiter W right behind P (nothing between them in W's listing, and
 * nothing can come between later) hears that P was written and reads P:
 *   - P gone: P had at most max_leases - 1 ahead, now W has at most those:
 *     W is in (and knows no names: it kicks with none);
 *   - P's names T: everything ahead of W is in T + {P}, at most max_leases
 *     of them. Fewer: W is in. Exactly max_leases: W is the first waiter and
 *     watches each of them (zkc__qm_wait_any); the first deleted, or found
 *     gone, lets it in, with the rest as its own kick's names. A holder's
 *     kick landing later on a candidate is not a departure: watched again.
 *   - P still there with no names (admitted by "P gone" itself, or a
 *     zkcoord before this): list, as always.
 * A member ahead that is cancelled or crashes is deleted without a write:
 * W hears it gone unwritten and lists (as before). Our own node's deletion
 * reaches us before any of this news that comes after it (one session hears
 * watches and replies in the order of the changes: member_wait.c). Names only
 * ever shrink a superset of the members ahead, so a late, duplicate or
 * concurrent release can only make a candidate read as gone that is gone.
 * Only zkcoord semaphores queue on a semaphore's path (Curator's and kazoo's
 * semaphores use other layouts: tests/interop/README.md); data we do not
 * recognise means "no names". Above SEM_NAMES_MAX leases the kick carries no
 * names and the first waiter watches the children list (a listing per
 * admission), to keep kicks and watches small. */
#include "lock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEM_NAMES_MAX 32
static const char KICK_MAGIC[] = "zkcoord-ahead\n";

int zkc__sem_names(const zkc_lock *l)
{
    return l->kind->stores_leases && l->max_leases <= SEM_NAMES_MAX;
}

void zkc__sem_forget(zkc_lock *l)
{
    for (int i = 0; i < l->ncand; i++)
        free(l->cand[i]);
    free(l->cand);
    l->cand = NULL;
    l->ncand = 0;
    free(l->pred_name);
    l->pred_name = NULL;
}

/* Our kick: names[0..n) (n < 0: none known, the empty data older zkcoord
 * wrote). NULL when out of memory. */
static char *kick_data(char *const *names, int n, int *len)
{
    size_t sz = sizeof KICK_MAGIC;
    for (int i = 0; i < n; i++)
        sz += strlen(names[i]) + 1;
    char *d = malloc(sz);
    if (!d)
        return NULL;
    *len = 0;
    if (n < 0) {
        d[0] = 0;
        return d;
    }
    size_t at = (size_t)snprintf(d, sz, "%s", KICK_MAGIC);
    for (int i = 0; i < n; i++)
        at += (size_t)snprintf(d + at, sz - at, "%s\n", names[i]);
    *len = (int)at;
    return d;
}

static void kick_done(zkc__req *r)
{
    zkc__lock_unref(r->ctx);
}

void zkc__sem_kick(zkc_lock *l, char *const *names, int n)
{
    /* A waiter behind us watches our node; writing it tells that waiter we
     * were admitted (the essay above). Out of memory: no names. */
    int len = 0;
    char *d = kick_data(names, zkc__sem_names(l) ? n : -1, &len);
    zkc__lock_ref(l);
    zkc__set(l->c, l->m.node, d ? d : "", d ? len : 0, -1, kick_done, l);
    free(d);
}

/* Candidates: names[0..n), copied; then in (fewer than the leases) or wait
 * on each. */
void zkc__sem_wait_cand(zkc_lock *l, char *const *names, int n)
{
    /* Copied before the old ones go: names may point at l->pred_name. */
    char **cand = calloc((size_t)n + 1, sizeof *cand);
    int k = 0;
    while (cand && k < n && (cand[k] = strdup(names[k])) != NULL)
        k++;
    zkc__sem_forget(l);
    l->cand = cand;
    l->ncand = k;
    if (!cand || k < n) {
        zkc__lock_abort(l, ZKC_ENOMEM, "out of memory");
        return;
    }
    if (n < l->max_leases)
        zkc__lock_grant(l, 1, l->cand, n);
    else
        zkc__qm_wait_any(&l->m, l->cand, n);
}

/* The names of a kick read from pred's node, each ahead of pred, distinct,
 * at most max - 1 of them, with pred added last: *n of them in out (room
 * for max), pointing into buf. -1: not a kick with names. */
static int kick_parse(char *buf, const char *pred, int max, char **out, int *n)
{
    size_t ml = strlen(KICK_MAGIC);
    int32_t pseq, seq;
    int kind, style;
    if (strncmp(buf, KICK_MAGIC, ml) != 0 || !zkc__seq_parse(pred, &pseq, &kind, &style))
        return -1;
    *n = 0;
    for (char *p = buf + ml, *nl; *p; p = nl + 1) {
        if (!(nl = strchr(p, '\n')) || nl == p || *n >= max - 1)
            return -1;
        *nl = 0;
        if (!zkc__seq_parse(p, &seq, &kind, &style) || zkc__seq_cmp(seq, pseq) >= 0)
            return -1;
        for (int i = 0; i < *n; i++)
            if (!strcmp(out[i], p))
                return -1;
        out[(*n)++] = p;
    }
    out[(*n)++] = (char *)pred;
    return 0;
}

static void pred_read_done(zkc__req *r)
{
    zkc_lock *l = r->ctx;
    if (!zkc__qm_stale(&l->m, r->tag) && l->acq && l->pred_name) {
        char *names[SEM_NAMES_MAX + 1];
        char *buf = NULL;
        int n = 0;
        if (r->rc == ZR_NONODE) {
            zkc__lock_grant(l, 1, NULL, -1); /* written, then gone: the essay above */
        } else if (r->rc != ZR_OK) {
            int e = r->rc == ZR_NOTSENT ? ZKC_ECONNLOSS : zkc__map_zrc(r->rc);
            zkc__lock_abort(l, e, "lock %s: reading the member ahead failed: %s", l->path, zkc__zrc_name(r->rc));
        } else if (r->stat.version > 0 && (buf = malloc((size_t)r->valuelen + 1)) != NULL &&
                   (memcpy(buf, r->value ? r->value : "", (size_t)r->valuelen), buf[r->valuelen] = 0,
                    kick_parse(buf, l->pred_name, l->max_leases, names, &n) == 0)) {
            zkc__sem_wait_cand(l, names, n);
        } else {
            zkc__sem_forget(l);
            zkc__lock_check(l); /* admitted without names (or not ours to read): list */
        }
        free(buf);
    }
    zkc__lock_unref(l);
}

int zkc__sem_moved(zkc_lock *l, int how)
{
    zkc__qm *m = &l->m;
    if (how == ZKC__QM_ANY_GONE && m->any_gone >= 0 && m->any_gone < l->ncand) {
        /* A candidate went: fewer than max_leases can be ahead. The rest are
         * our kick's names. */
        free(l->cand[m->any_gone]);
        l->cand[m->any_gone] = l->cand[--l->ncand];
        zkc__lock_grant(l, 1, l->cand, l->ncand);
        return 1;
    }
    if (l->pred_name && m->pred_written) {
        /* The member ahead was written: admitted. Its kick says the rest.
         * (Any other news of it, such as a watch the server dropped, lists.) */
        char *p = zkc__path_join(l->path, l->pred_name);
        if (!p) {
            zkc__lock_abort(l, ZKC_ENOMEM, "out of memory");
            return 1;
        }
        zkc__lock_ref(l);
        zkc__get(l->c, p, NULL, pred_read_done, l)->tag = l->m.epoch;
        free(p);
        return 1;
    }
    return 0;
}
