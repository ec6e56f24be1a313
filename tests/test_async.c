/* The callback forms of the calls that had only a blocking form (issue 18,
 * part 1), against the suite's real 3-node ensemble: each calls back exactly
 * once, with what its blocking twin returns for the same state; a refused
 * submission (a NULL argument) returns the error and never calls back.
 * "Exactly once" is counted after zkc_client_destroy, which has run every
 * callback the client owed by the time it returns. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS (tu_ms(20000))

/* One call's callbacks: how many came, and what the last one said. */
typedef struct rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls, status;
    int64_t v[4];      /* results, per call kind */
    char text[80];
    zkc_inventory_stock_info info;
    zkc_counter_result res[2];
} rec;

static void rec_init(rec *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    tu_cond_init_mono(&r->cv);
    r->status = 1; /* no ZKC_* value */
}

static void rec_destroy(rec *r)
{
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

static void rec_lock(rec *r)
{
    pthread_mutex_lock(&r->mu);
}

static void rec_done(rec *r, int status)
{
    r->calls++;
    r->status = status;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Waits for the first callback; returns its status. */
static int rec_wait(rec *r)
{
    struct timespec dl;
    tu_deadline_ts(&dl, WAIT_MS);
    pthread_mutex_lock(&r->mu);
    while (r->calls == 0 && pthread_cond_timedwait(&r->cv, &r->mu, &dl) == 0)
        ;
    int calls = r->calls, st = r->status;
    pthread_mutex_unlock(&r->mu);
    ck_assert_msg(calls > 0, "no callback within %d ms", WAIT_MS);
    return st;
}

static int rec_calls(rec *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->calls;
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* After zkc_client_destroy (every callback the client owed has run): each
 * of r[0 .. n-2] called back exactly once, r[n-1] (the refused submissions)
 * never. Frees them. */
static void recs_verify(rec *r, int n)
{
    for (int i = 0; i < n; i++) {
        int want = i < n - 1 ? 1 : 0;
        ck_assert_msg(rec_calls(&r[i]) == want, "call %d: %d callbacks, want %d", i, rec_calls(&r[i]), want);
        rec_destroy(&r[i]);
    }
}

/* ------------------------------------------------------------ callbacks */

static void inv_cb(zkc_inventory *inv, int status, void *ud)
{
    (void)inv;
    rec *r = ud;
    rec_lock(r);
    rec_done(r, status);
}

static void stock_cb(zkc_inventory *inv, int status, const zkc_inventory_stock_info *info, void *ud)
{
    (void)inv;
    rec *r = ud;
    rec_lock(r);
    r->v[0] = info != NULL;
    if (info)
        r->info = *info;
    rec_done(r, status);
}

static void lookup_cb(zkc_inventory *inv, int status, const char *id, zkc_inventory_state state, void *ud)
{
    (void)inv;
    rec *r = ud;
    rec_lock(r);
    snprintf(r->text, sizeof r->text, "%s", id ? id : "(null)");
    r->v[0] = state;
    rec_done(r, status);
}

static void reap_cb(zkc_inventory *inv, int status, int64_t returned, void *ud)
{
    (void)inv;
    rec *r = ud;
    rec_lock(r);
    r->v[0] = returned;
    rec_done(r, status);
}

static void multi_cb(zkc_client *c, int status, const zkc_counter_result *results, int n, int failed_index, void *ud)
{
    (void)c;
    rec *r = ud;
    rec_lock(r);
    r->v[0] = results != NULL;
    r->v[1] = n;
    r->v[2] = failed_index;
    for (int i = 0; results && i < n && i < 2; i++)
        r->res[i] = results[i];
    rec_done(r, status);
}

static void ctr_lookup_cb(zkc_client *c, int status, const char *key, const zkc_counter_result *res, void *ud)
{
    (void)c;
    rec *r = ud;
    rec_lock(r);
    snprintf(r->text, sizeof r->text, "%s", key ? key : "(null)");
    r->v[0] = res != NULL;
    if (res)
        r->res[0] = *res;
    rec_done(r, status);
}

static void rebase_cb(zkc_counter *ctr, int status, const zkc_counter_result *res, void *ud)
{
    (void)ctr;
    rec *r = ud;
    rec_lock(r);
    r->v[0] = res != NULL;
    rec_done(r, status);
}

static void contenders_cb(zkc_client *c, int status, const zkc_lock_contender *e, int count, void *ud)
{
    (void)c;
    rec *r = ud;
    rec_lock(r);
    r->v[0] = count;
    r->v[1] = count > 0 ? e[0].czxid : -1;
    r->v[2] = count > 0 ? e[0].holds : -1;
    rec_done(r, status);
}

static void cleanup_cb(zkc_client *c, int status, const zkc_cleanup_report *rep, void *ud)
{
    (void)c;
    rec *r = ud;
    rec_lock(r);
    r->v[0] = rep ? rep->examined : -1;
    r->v[1] = rep ? rep->empty_parents : -1;
    r->v[2] = rep ? rep->markers + rep->keys : -1;
    rec_done(r, status);
}

/* ------------------------------------------------------------ inventory */

static zkc_inventory_state lookup_of(zkc_inventory *inv, const char *id)
{
    zkc_inventory_state st = ZKC_INVENTORY_PENDING;
    ck_assert_msg(zkc_inventory_lookup(inv, id, &st) == 0, "lookup %s: %s", id, zkc_errmsg());
    return st;
}

static void reserve_one(zkc_inventory *inv, const char *id, int64_t qty, int hold_ms)
{
    zkc_inventory_line l = {"A", qty};
    zkc_inventory_reserve_options o;
    memset(&o, 0, sizeof o);
    o.hold_ms = hold_ms;
    zkc_inventory_state st;
    ck_assert_msg(zkc_inventory_reserve(inv, id, &l, 1, &o, WAIT_MS, NULL, &st) == 0, "reserve %s: %s", id,
                  zkc_errmsg());
}

START_TEST(t_inventory_async)
{
    char root[128];
    tu_unique_path(root, sizeof root, "async-inv");
    zkc_client *c = tu_client(tu_hosts());
    zkc_inventory *inv = NULL;
    ck_assert_int_eq(zkc_inventory_create(c, root, &inv), 0);
    enum { RESTOCK, STOCK, LOOKUP, CONFIRM, RETURN, REAP, GONE, BAD, NREC };
    rec r[NREC];
    for (int i = 0; i < NREC; i++)
        rec_init(&r[i]);

    /* restock: the async one adds exactly as the blocking one does */
    ck_assert_int_eq(zkc_inventory_restock_async(inv, "A", 10, inv_cb, &r[RESTOCK]), 0);
    ck_assert_int_eq(rec_wait(&r[RESTOCK]), 0);
    ck_assert_int_eq(zkc_inventory_restock(inv, "A", 5), 0);

    /* stock */
    zkc_inventory_stock_info si;
    ck_assert_int_eq(zkc_inventory_stock(inv, "A", &si), 0);
    ck_assert_int_eq(si.total, 15);
    ck_assert_int_eq(zkc_inventory_stock_async(inv, "A", stock_cb, &r[STOCK]), 0);
    ck_assert_int_eq(rec_wait(&r[STOCK]), 0);
    ck_assert_int_eq(r[STOCK].v[0], 1);
    ck_assert(memcmp(&r[STOCK].info, &si, sizeof si) == 0);

    /* lookup */
    reserve_one(inv, "o1", 2, 0);
    ck_assert_int_eq(zkc_inventory_lookup_async(inv, "o1", lookup_cb, &r[LOOKUP]), 0);
    ck_assert_int_eq(rec_wait(&r[LOOKUP]), 0);
    ck_assert_str_eq(r[LOOKUP].text, "o1");
    ck_assert_int_eq(r[LOOKUP].v[0], ZKC_INVENTORY_RESERVED);
    ck_assert_int_eq(lookup_of(inv, "o1"), ZKC_INVENTORY_RESERVED);

    /* confirm; the blocking repeat is idempotent: the same 0 */
    ck_assert_int_eq(zkc_inventory_confirm_async(inv, "o1", inv_cb, &r[CONFIRM]), 0);
    ck_assert_int_eq(rec_wait(&r[CONFIRM]), 0);
    ck_assert_int_eq(zkc_inventory_confirm(inv, "o1"), 0);
    ck_assert_int_eq(lookup_of(inv, "o1"), ZKC_INVENTORY_SOLD);

    /* return */
    reserve_one(inv, "o2", 3, 0);
    ck_assert_int_eq(zkc_inventory_return_async(inv, "o2", inv_cb, &r[RETURN]), 0);
    ck_assert_int_eq(rec_wait(&r[RETURN]), 0);
    ck_assert_int_eq(zkc_inventory_return(inv, "o2"), 0);
    ck_assert_int_eq(lookup_of(inv, "o2"), ZKC_INVENTORY_RETURNED);

    /* reap: one reservation past a 1 ms hold each time (the servers' clock
     * must pass it: pacing, no event exists for that) */
    reserve_one(inv, "e1", 4, 1);
    tu_nap_ms(100);
    ck_assert_int_eq(zkc_inventory_reap_async(inv, reap_cb, &r[REAP]), 0);
    ck_assert_int_eq(rec_wait(&r[REAP]), 0);
    ck_assert_int_eq(r[REAP].v[0], 4);
    reserve_one(inv, "e2", 4, 1);
    tu_nap_ms(100);
    int64_t back = -1;
    ck_assert_int_eq(zkc_inventory_reap(inv, &back), 0);
    ck_assert_int_eq(back, 4);
    ck_assert_int_eq(lookup_of(inv, "e1"), ZKC_INVENTORY_EXPIRED);

    ck_assert_int_eq(zkc_inventory_stock(inv, "A", &si), 0);
    ck_assert(si.available == 13 && si.sold == 2 && si.reserved == 0 && si.total == 15);

    /* refused submissions never call back */
    rec *bad = &r[BAD];
    ck_assert_int_eq(zkc_inventory_restock_async(NULL, "A", 1, inv_cb, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_inventory_restock_async(inv, NULL, 1, inv_cb, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_inventory_restock_async(inv, "A", -1, inv_cb, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_inventory_restock_async(inv, "A", 1, NULL, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_inventory_stock_async(inv, NULL, stock_cb, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_inventory_stock_async(inv, "A", NULL, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_inventory_lookup_async(inv, NULL, lookup_cb, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_inventory_lookup_async(inv, "o1", NULL, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_inventory_confirm_async(inv, NULL, inv_cb, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_inventory_confirm_async(NULL, "o1", inv_cb, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_inventory_return_async(inv, NULL, inv_cb, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_inventory_return_async(inv, "o2", NULL, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_inventory_reap_async(NULL, reap_cb, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_inventory_reap_async(inv, NULL, bad), ZKC_EINVAL);

    /* a call in flight when its object is destroyed still calls back once
     * (the op keeps the object alive; checked after the client's destroy) */
    ck_assert_int_eq(zkc_inventory_stock_async(inv, "A", stock_cb, &r[GONE]), 0);
    zkc_inventory_destroy(inv);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
    recs_verify(r, NREC);
}
END_TEST

/* ------------------------------------------------------------ counters */

START_TEST(t_counter_async)
{
    char pa[128], pb[128], key[64];
    tu_unique_path(pa, sizeof pa, "async-ctr-a");
    tu_unique_path(pb, sizeof pb, "async-ctr-b");
    snprintf(key, sizeof key, "async-key-%d", (int)getpid());
    zkc_client *c = tu_client(tu_hosts());
    zkc_counter *a = NULL, *b = NULL;
    ck_assert_int_eq(zkc_counter_create(c, pa, NULL, &a), 0);
    ck_assert_int_eq(zkc_counter_create(c, pb, NULL, &b), 0);
    enum { MULTI, BOUND, LOOKUP, REBASE, REBASE_GONE, BAD, NREC };
    rec r[NREC];
    for (int i = 0; i < NREC; i++)
        rec_init(&r[i]);

    /* multi add: the async one applies; the blocking repeat of its key
     * replays the same outcome */
    zkc_counter_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].counter = a;
    ops[0].delta = 5;
    ops[1].counter = b;
    ops[1].delta = -3;
    ck_assert_int_eq(zkc_counter_multi_add_async(c, ops, 2, key, multi_cb, &r[MULTI]), 0);
    ck_assert_int_eq(rec_wait(&r[MULTI]), 0);
    ck_assert_int_eq(r[MULTI].v[0], 1);
    ck_assert_int_eq(r[MULTI].v[1], 2);
    ck_assert_int_eq(r[MULTI].v[2], -1);
    ck_assert(r[MULTI].res[0].before == 0 && r[MULTI].res[0].after == 5 && !r[MULTI].res[0].replayed);
    ck_assert(r[MULTI].res[1].before == 0 && r[MULTI].res[1].after == -3 && !r[MULTI].res[1].replayed);
    zkc_counter_result res[2];
    int failed = 7;
    ck_assert_int_eq(zkc_counter_multi_add(c, ops, 2, key, res, &failed), 0);
    ck_assert_int_eq(failed, -1);
    for (int i = 0; i < 2; i++) {
        ck_assert(res[i].before == r[MULTI].res[i].before && res[i].after == r[MULTI].res[i].after);
        ck_assert_int_eq(res[i].replayed, 1);
    }

    /* a refused bound: the same failing index both ways */
    ops[1].bounds.has_floor = 1;
    ops[1].bounds.floor = 0;
    ck_assert_int_eq(zkc_counter_multi_add_async(c, ops, 2, NULL, multi_cb, &r[BOUND]), 0);
    ck_assert_int_eq(rec_wait(&r[BOUND]), ZKC_EBOUND);
    ck_assert_int_eq(r[BOUND].v[0], 0);
    ck_assert_int_eq(r[BOUND].v[2], 1);
    ck_assert_int_eq(zkc_counter_multi_add(c, ops, 2, NULL, res, &failed), ZKC_EBOUND);
    ck_assert_int_eq(failed, 1);

    /* lookup of the key */
    ck_assert_int_eq(zkc_counter_lookup_async(c, key, ctr_lookup_cb, &r[LOOKUP]), 0);
    ck_assert_int_eq(rec_wait(&r[LOOKUP]), 0);
    ck_assert_str_eq(r[LOOKUP].text, key);
    ck_assert_int_eq(r[LOOKUP].v[0], 1);
    zkc_counter_result lr;
    ck_assert_int_eq(zkc_counter_lookup(c, key, &lr), 0);
    ck_assert(lr.before == r[LOOKUP].res[0].before && lr.after == r[LOOKUP].res[0].after &&
              lr.replayed == r[LOOKUP].res[0].replayed);

    /* rebase (far from the wrap: nothing to do, 0 both ways) */
    ck_assert_int_eq(zkc_counter_rebase_async(a, rebase_cb, &r[REBASE]), 0);
    ck_assert_int_eq(rec_wait(&r[REBASE]), 0);
    ck_assert_int_eq(r[REBASE].v[0], 0);
    ck_assert_int_eq(zkc_counter_rebase(a), 0);
    int64_t v;
    ck_assert_int_eq(zkc_counter_get(a, &v), 0);
    ck_assert_int_eq(v, 5);
    /* the object may be destroyed while its rebase is in flight: the op
     * keeps it alive and still calls back once (checked after destroy) */
    ck_assert_int_eq(zkc_counter_rebase_async(b, rebase_cb, &r[REBASE_GONE]), 0);
    zkc_counter_destroy(b);
    b = NULL;

    rec *bad = &r[BAD];
    ck_assert_int_eq(zkc_counter_multi_add_async(c, NULL, 2, key, multi_cb, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_counter_multi_add_async(NULL, ops, 2, key, multi_cb, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_counter_multi_add_async(c, ops, 2, key, NULL, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_counter_lookup_async(c, NULL, ctr_lookup_cb, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_counter_lookup_async(NULL, key, ctr_lookup_cb, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_counter_lookup_async(c, key, NULL, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_counter_rebase_async(NULL, rebase_cb, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_counter_rebase_async(a, NULL, bad), ZKC_EINVAL);

    zkc_counter_destroy(a);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
    recs_verify(r, NREC);
}
END_TEST

/* ------------------------------------------------------------ lock contenders */

START_TEST(t_contenders_async)
{
    char path[128];
    tu_unique_path(path, sizeof path, "async-lock");
    zkc_client *c = tu_client(tu_hosts());
    zkc_lock *l = NULL;
    ck_assert_int_eq(zkc_lock_create(c, path, &l), 0);
    int64_t token = 0;
    ck_assert_int_eq(zkc_lock_acquire(l, WAIT_MS, &token), 0);
    rec rs[2], *r = &rs[0], *bad = &rs[1];
    rec_init(r);
    rec_init(bad);
    ck_assert_int_eq(zkc_lock_contenders_async(c, path, contenders_cb, r), 0);
    ck_assert_int_eq(rec_wait(r), 0);
    zkc_lock_contender *e = NULL;
    int n = -1;
    ck_assert_int_eq(zkc_lock_contenders(c, path, &e, &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(r->v[0], n);
    ck_assert_int_eq(r->v[1], e[0].czxid);
    ck_assert_int_eq(r->v[1], token);
    ck_assert_int_eq(r->v[2], e[0].holds);
    zkc_lock_contenders_free(e, n);

    ck_assert_int_eq(zkc_lock_contenders_async(NULL, path, contenders_cb, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_lock_contenders_async(c, NULL, contenders_cb, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_lock_contenders_async(c, path, NULL, bad), ZKC_EINVAL);

    ck_assert_int_eq(zkc_lock_release(l), 0);
    zkc_lock_destroy(l);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
    recs_verify(rs, 2);
}
END_TEST

/* ------------------------------------------------------------ lock and multi-lock release */

static void release_cb(zkc_lock *l, int status, int64_t token, void *ud)
{
    (void)l;
    rec *r = ud;
    rec_lock(r);
    r->v[0] = token;
    rec_done(r, status);
}

static void mrelease_cb(zkc_multilock *m, int status, void *ud)
{
    (void)m;
    rec *r = ud;
    rec_lock(r);
    rec_done(r, status);
}

static int contenders_n(zkc_client *c, const char *path)
{
    zkc_lock_contender *e = NULL;
    int n = -1;
    ck_assert_int_eq(zkc_lock_contenders_fresh(c, path, &e, &n), 0);
    zkc_lock_contenders_free(e, n);
    return n;
}

START_TEST(t_release_async)
{
    char path[128], p2[160];
    tu_unique_path(path, sizeof path, "async-release");
    snprintf(p2, sizeof p2, "%s-b", path);
    zkc_client *c = tu_client(tu_hosts());
    zkc_lock *l = NULL, *l2 = NULL;
    ck_assert_int_eq(zkc_lock_create(c, path, &l), 0);
    ck_assert_int_eq(zkc_lock_create(c, p2, &l2), 0);
    tu_events lev;
    tu_events_init(&lev);
    zkc_lock_set_listener(l, tu_lock_listener, &lev);
    enum { COUNT_DOWN, LAST, UNHELD, LOST, DESTROYED, MULTI, BAD, NR };
    rec rs[NR];
    for (int i = 0; i < NR; i++)
        rec_init(&rs[i]);

    /* Re-entrant hold: the first release counts down, the node stays. */
    ck_assert_int_eq(zkc_lock_acquire(l, WAIT_MS, NULL), 0);
    ck_assert_int_eq(zkc_lock_acquire(l, WAIT_MS, NULL), 0);
    ck_assert_int_eq(zkc_lock_release_async(l, release_cb, &rs[COUNT_DOWN]), 0);
    ck_assert_int_eq(rec_wait(&rs[COUNT_DOWN]), 0);
    ck_assert_int_eq(zkc_lock_is_held(l), 1);
    ck_assert_int_eq(contenders_n(c, path), 1);
    /* The last one deletes it before calling back. */
    ck_assert_int_eq(zkc_lock_release_async(l, release_cb, &rs[LAST]), 0);
    ck_assert_int_eq(rec_wait(&rs[LAST]), 0);
    ck_assert_int_eq(contenders_n(c, path), 0);
    /* Not held: what the blocking twin says, from the engine. */
    ck_assert_int_eq(zkc_lock_release_async(l, release_cb, &rs[UNHELD]), 0);
    ck_assert_int_eq(rec_wait(&rs[UNHELD]), ZKC_ENOTHELD);
    ck_assert_int_eq(zkc_lock_release(l), ZKC_ENOTHELD);

    /* A hold lost under us (its node deleted by someone else). */
    ck_assert_int_eq(zkc_lock_acquire(l, WAIT_MS, NULL), 0);
    zkc_lock_contender *e = NULL;
    int n = 0;
    ck_assert_int_eq(zkc_lock_contenders(c, path, &e, &n), 0);
    ck_assert_int_eq(n, 1);
    char node[512];
    snprintf(node, sizeof node, "%s/%s", path, e[0].name);
    zkc_lock_contenders_free(e, n);
    tu_raw *raw = tu_raw_open(tu_hosts(), tu_ms(TU_SESSION_MS));
    ck_assert_int_eq(zoo_delete(tu_raw_zh(raw), node, -1), ZOK);
    tu_raw_close(raw);
    ck_assert(tu_events_wait(&lev, ZKC_LOCK_EVENT_LOST, 0, WAIT_MS) >= 0);
    ck_assert_int_eq(zkc_lock_release_async(l, release_cb, &rs[LOST]), 0);
    ck_assert_int_eq(rec_wait(&rs[LOST]), ZKC_ESESSIONLOST);

    /* Multi-lock: every lock released, one callback after the last. */
    zkc_lock *both[2] = {l, l2};
    zkc_multilock *m = NULL;
    ck_assert_int_eq(zkc_multilock_create(both, 2, &m), 0);
    ck_assert_int_eq(zkc_multilock_release_async(m, mrelease_cb, &rs[BAD]), ZKC_ENOTHELD);
    ck_assert_int_eq(zkc_multilock_acquire(m, WAIT_MS), 0);
    ck_assert_int_eq(zkc_multilock_release_async(m, NULL, &rs[BAD]), ZKC_EINVAL);
    ck_assert_int_eq(zkc_multilock_release_async(m, mrelease_cb, &rs[MULTI]), 0);
    ck_assert_int_eq(rec_wait(&rs[MULTI]), 0);
    ck_assert_int_eq(contenders_n(c, path), 0);
    ck_assert_int_eq(contenders_n(c, p2), 0);
    ck_assert_int_eq(zkc_lock_is_held(l) + zkc_lock_is_held(l2), 0);
    ck_assert_int_eq(zkc_multilock_release_async(m, mrelease_cb, &rs[BAD]), ZKC_ENOTHELD);
    zkc_multilock_destroy(m);

    /* Refused submissions never call back. */
    ck_assert_int_eq(zkc_lock_release_async(NULL, release_cb, &rs[BAD]), ZKC_EINVAL);
    ck_assert_int_eq(zkc_lock_release_async(l, NULL, &rs[BAD]), ZKC_EINVAL);

    /* A release in flight when the lock is destroyed still calls back once. */
    ck_assert_int_eq(zkc_lock_acquire(l, WAIT_MS, NULL), 0);
    ck_assert_int_eq(zkc_lock_release_async(l, release_cb, &rs[DESTROYED]), 0);
    zkc_lock_destroy(l);
    zkc_lock_destroy(l2);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
    ck_assert_int_eq(rs[DESTROYED].status, 0);
    ck_assert_int_eq(rs[LAST].v[0], 0);
    recs_verify(rs, NR);
    tu_events_destroy(&lev);
}
END_TEST

/* ------------------------------------------------------------ admin cleanup */

START_TEST(t_cleanup_async)
{
    char meta[128], root[128], p[256];
    tu_unique_path(meta, sizeof meta, "async-meta");
    tu_unique_path(root, sizeof root, "async-locks");
    zkc_client_options o;
    tu_client_opts(&o, tu_hosts());
    o.meta_root = meta;  /* no markers or keys: the counts below are the tree's */
    o.marker_retention_s = 1;
    o.session_timeout_ms = 500; /* the retention floor is two session timeouts */
    zkc_client *c = tu_client_o(&o);
    tu_raw *raw = tu_raw_open(tu_hosts(), TU_SESSION_MS);
    snprintf(p, sizeof p, "%s/a/b", root);
    tu_raw_mkdirs(raw, p);
    snprintf(p, sizeof p, "%s/c", root);
    tu_raw_mkdirs(raw, p);
    /* Past the retention on the servers' clock: pacing, no event exists. */
    tu_nap_ms(1300);
    rec rs[3], *dry = &rs[0], *real = &rs[1], *bad = &rs[2];
    for (int i = 0; i < 3; i++)
        rec_init(&rs[i]);

    /* dry run: a, a/b, c examined; b and c are empty and old, a is in use */
    ck_assert_int_eq(zkc_admin_cleanup_async(c, root, 1, cleanup_cb, dry), 0);
    ck_assert_msg(rec_wait(dry) == 0, "cleanup: %d", dry->status);
    zkc_cleanup_report rep;
    ck_assert_int_eq(zkc_admin_cleanup(c, root, 1, &rep), 0);
    ck_assert_int_eq(rep.examined, 3);
    ck_assert_int_eq(rep.empty_parents, 2);
    ck_assert_int_eq(rep.markers + rep.keys, 0);
    ck_assert_int_eq(dry->v[0], rep.examined);
    ck_assert_int_eq(dry->v[1], rep.empty_parents);
    ck_assert_int_eq(dry->v[2], 0);

    /* real run, post-order: b, then a (emptied by this pass), and c */
    ck_assert_int_eq(zkc_admin_cleanup_async(c, root, 0, cleanup_cb, real), 0);
    ck_assert_int_eq(rec_wait(real), 0);
    ck_assert_int_eq(real->v[0], 3);
    ck_assert_int_eq(real->v[1], 3);
    struct String_vector kids;
    tu_raw_sync(raw, root);
    ck_assert_int_eq(zoo_get_children(tu_raw_zh(raw), root, 0, &kids), ZOK);
    ck_assert_int_eq(kids.count, 0);
    deallocate_String_vector(&kids);
    ck_assert_int_eq(zkc_admin_cleanup(c, root, 0, &rep), 0);
    ck_assert_int_eq(rep.examined, 0);

    ck_assert_int_eq(zkc_admin_cleanup_async(NULL, root, 1, cleanup_cb, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_admin_cleanup_async(c, root, 1, NULL, bad), ZKC_EINVAL);
    ck_assert_int_eq(zkc_admin_cleanup_async(c, "relative", 1, cleanup_cb, bad), ZKC_EINVAL);

    ck_assert_int_eq(zkc_client_destroy(c), 0);
    recs_verify(rs, 3);
    tu_raw_rmr(raw, root);
    tu_raw_rmr(raw, meta);
    tu_raw_close(raw);
}
END_TEST

#define CASE(s, fn) TU_CASE(s, fn, 90 * tu_scale())

static Suite *async_suite(void)
{
    Suite *s = suite_create("async");
    CASE(s, t_inventory_async);
    CASE(s, t_counter_async);
    CASE(s, t_contenders_async);
    CASE(s, t_cleanup_async);
    CASE(s, t_release_async);
    return s;
}

int main(void)
{
    return tu_main(async_suite(), TU_SHARED_ENSEMBLE);
}
