/* Change watches (zkc_lock_contenders_watch, zkc_inventory_stock_watch,
 * zkc_watch_stop) against the suite's shared 3-node ensemble: every change
 * gives a CHANGED after which a read sees it (the watch re-arms each time), the
 * calls are bounded by the changes, STOPPED comes exactly once and is the last
 * call (stopped from another thread, from its own callback, or by the client's
 * destroy), no server watch of a stopped watch is left behind, and a session
 * expiry gives LOST, then CHANGED on the next session, still re-armed.
 *
 * "No call after the end" is checked without sleeping: a second watch on the
 * same client and path is told of a later change, and calls of one client run
 * in order on its dispatch thread, so any late call of the first would have
 * come before that one. */
#include "testutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rec {
    tu_events ev;        /* event (zkc_watch_event), status */
    int after_final;     /* atomic: calls after STOPPED */
    int finals;          /* atomic */
    int stop_in_cb;      /* stop from the first CHANGED callback */
    zkc_watch *w;        /* set before the first call can matter (stop_in_cb) */
} rec;

static void rec_init(rec *r)
{
    memset(r, 0, sizeof *r);
    tu_events_init(&r->ev);
}

static void rec_cb(zkc_watch *w, zkc_watch_event event, int status, void *ud)
{
    rec *r = ud;
    if (__atomic_load_n(&r->finals, __ATOMIC_ACQUIRE))
        __atomic_add_fetch(&r->after_final, 1, __ATOMIC_ACQ_REL);
    if (event == ZKC_WATCH_STOPPED)
        __atomic_add_fetch(&r->finals, 1, __ATOMIC_ACQ_REL);
    if (event == ZKC_WATCH_CHANGED && r->stop_in_cb == 1) {
        r->stop_in_cb = 2;
        zkc_watch_stop(w); /* returns at once here; STOPPED is the next and last call */
    }
    tu_events_add(&r->ev, (int)event, status);
}

/* Waits for the n-th (1-based) CHANGED, at most 20 s (scaled). */
static void wait_changed(rec *r, int n)
{
    long long dl = tu_now_ms() + tu_ms(20000);
    while (tu_events_count(&r->ev, ZKC_WATCH_CHANGED) < n && tu_now_ms() < dl)
        tu_events_wait_total(&r->ev, tu_events_total(&r->ev) + 1, 200);
    ck_assert_msg(tu_events_count(&r->ev, ZKC_WATCH_CHANGED) >= n, "CHANGED #%d did not come (%d so far)", n,
                  tu_events_count(&r->ev, ZKC_WATCH_CHANGED));
}

static int contenders(zkc_client *c, const char *path, int64_t *first_token)
{
    zkc_lock_contender *e = NULL;
    int n = 0;
    ck_assert_int_eq(zkc_lock_contenders(c, path, &e, &n), 0);
    if (first_token)
        *first_token = n ? e[0].czxid : 0;
    zkc_lock_contenders_free(e, n);
    return n;
}

/* The watching session's watches on path (server side). */
static int server_watches(const char *path, int64_t session)
{
    tu_watch ws[64];
    int n = tu_watches_under(tu_shared(), path, ws, 64), k = 0;
    for (int i = 0; i < n && i < 64; i++)
        if (ws[i].session == session && strncmp(ws[i].path, path, strlen(path)) == 0)
            k++;
    return k;
}

/* Every acquire and every release is seen: after its CHANGED, a read on the
 * watching client shows it; the calls stay within the changes made (each
 * change fires at most the two watches, children and data). Stopped: one
 * STOPPED, the last call, and no watch left on the servers. */
START_TEST(t_changes_rearm_stop)
{
    char path[128];
    tu_unique_path(path, sizeof path, "watchq");
    zkc_client *a = tu_client(tu_hosts()), *b = tu_client(tu_hosts());
    rec r;
    rec_init(&r);
    ck_assert_int_eq(zkc_lock_contenders_watch(a, path, rec_cb, &r, &r.w), 0);
    wait_changed(&r, 1); /* armed; the path has no node yet */
    ck_assert_int_eq(contenders(a, path, NULL), 0);
    zkc_lock *l;
    ck_assert_int_eq(zkc_lock_create(b, path, &l), 0);
    int changes = 0, seen = 1;
    int64_t last_tok = 0;
    for (int round = 0; round < 5; round++) {
        int64_t tok = 0;
        /* Counted before the change: its call may come before acquire returns. */
        seen = tu_events_count(&r.ev, ZKC_WATCH_CHANGED);
        ck_assert_int_eq(zkc_lock_acquire(l, tu_ms(10000), &tok), 0);
        changes++;
        /* Within a bound, a CHANGED (a new one: the watch re-armed), after
         * which the read shows the holder. */
        wait_changed(&r, ++seen);
        long long dl = tu_now_ms() + tu_ms(20000);
        int64_t shown = 0;
        while (!(contenders(a, path, &shown) == 1 && shown == tok) && tu_now_ms() < dl)
            wait_changed(&r, ++seen);
        ck_assert_msg(shown == tok, "round %d: the watcher never read the holder %" PRId64, round, tok);
        ck_assert(tok > last_tok);
        last_tok = tok;
        seen = tu_events_count(&r.ev, ZKC_WATCH_CHANGED);
        ck_assert_int_eq(zkc_lock_release(l), 0);
        changes++;
        wait_changed(&r, ++seen);
        while (contenders(a, path, NULL) != 0 && tu_now_ms() < dl)
            wait_changed(&r, ++seen);
        ck_assert_msg(contenders(a, path, NULL) == 0, "round %d: the watcher never read the release", round);
    }
    int calls = tu_events_count(&r.ev, ZKC_WATCH_CHANGED);
    ck_assert_msg(calls >= 1 + 1 && calls <= 1 + 2 * changes, "%d CHANGED calls for %d changes", calls, changes);
    int64_t sid;
    char pw[16];
    int pwlen;
    ck_assert_int_eq(zkc_client_session(a, &sid, pw, &pwlen), 0);
    ck_assert_int_gt(tu_wait_watches(tu_shared(), path, 1, tu_ms(10000)), 0);

    zkc_watch_stop(r.w); /* not the dispatch thread: STOPPED has returned */
    ck_assert_int_eq(__atomic_load_n(&r.finals, __ATOMIC_ACQUIRE), 1);
    int total = tu_events_total(&r.ev);
    long long at;
    int64_t st;
    ck_assert_int_eq(tu_events_get(&r.ev, total - 1, &at, &st), ZKC_WATCH_STOPPED);
    ck_assert_int_eq(st, 0);

    /* A change now reaches a second watch of the same client, not the first. */
    rec r2;
    rec_init(&r2);
    ck_assert_int_eq(zkc_lock_contenders_watch(a, path, rec_cb, &r2, &r2.w), 0);
    wait_changed(&r2, 1);
    ck_assert_int_eq(zkc_lock_acquire(l, tu_ms(10000), NULL), 0);
    wait_changed(&r2, 2);
    ck_assert_int_eq(tu_events_total(&r.ev), total);
    ck_assert_int_eq(r.after_final, 0);
    zkc_watch_stop(r2.w);
    ck_assert_int_eq(zkc_lock_release(l), 0);
    /* Nothing of the stopped watches stays on the servers. */
    long long dl = tu_now_ms() + tu_ms(20000);
    while (server_watches(path, sid) > 0 && tu_now_ms() < dl)
        tu_nap_ms(100); /* polling the servers' wchp: no event tells us */
    ck_assert_int_eq(server_watches(path, sid), 0);
    zkc_lock_destroy(l);
    zkc_client_destroy(b);
    zkc_client_destroy(a);
    tu_events_destroy(&r.ev);
    tu_events_destroy(&r2.ev);
}
END_TEST

/* zkc_watch_stop from the watch's own callback returns at once; STOPPED
 * follows, once, and nothing after it. */
START_TEST(t_stop_in_callback)
{
    char path[128];
    tu_unique_path(path, sizeof path, "watchcb");
    zkc_client *a = tu_client(tu_hosts());
    rec r;
    rec_init(&r);
    r.stop_in_cb = 1;
    ck_assert_int_eq(zkc_lock_contenders_watch(a, path, rec_cb, &r, &r.w), 0);
    ck_assert_int_ge(tu_events_wait(&r.ev, ZKC_WATCH_STOPPED, 0, tu_ms(20000)), 0);
    rec r2;
    rec_init(&r2);
    ck_assert_int_eq(zkc_lock_contenders_watch(a, path, rec_cb, &r2, &r2.w), 0);
    wait_changed(&r2, 1);
    zkc_lock *l;
    ck_assert_int_eq(zkc_lock_create(a, path, &l), 0);
    ck_assert_int_eq(zkc_lock_acquire(l, tu_ms(10000), NULL), 0);
    wait_changed(&r2, 2);
    ck_assert_int_eq(tu_events_total(&r.ev), 2); /* CHANGED, STOPPED */
    ck_assert_int_eq(tu_events_count(&r.ev, ZKC_WATCH_STOPPED), 1);
    ck_assert_int_eq(r.after_final, 0);
    zkc_watch_stop(r2.w);
    ck_assert_int_eq(r2.finals, 1);
    zkc_lock_destroy(l);
    zkc_client_destroy(a);
    tu_events_destroy(&r.ev);
    tu_events_destroy(&r2.ev);
}
END_TEST

/* Destroying the client ends its watches: STOPPED (ZKC_ECANCELED) once; the
 * owner still calls zkc_watch_stop, which only frees. A watch stopped before
 * its first call gets STOPPED alone. */
START_TEST(t_client_destroy_and_early_stop)
{
    char path[128];
    tu_unique_path(path, sizeof path, "watchdestroy");
    zkc_client *a = tu_client(tu_hosts());
    rec r, early;
    rec_init(&r);
    rec_init(&early);
    ck_assert_int_eq(zkc_lock_contenders_watch(a, path, rec_cb, &r, &r.w), 0);
    ck_assert_int_eq(zkc_lock_contenders_watch(a, path, rec_cb, &early, &early.w), 0);
    zkc_watch_stop(early.w); /* at once: possibly before it was armed */
    ck_assert_int_eq(early.finals, 1);
    ck_assert_int_eq(tu_events_count(&early.ev, ZKC_WATCH_STOPPED), 1);
    wait_changed(&r, 1);
    ck_assert_int_eq(zkc_client_destroy(a), 0);
    ck_assert_int_eq(r.finals, 1);
    int i = tu_events_wait(&r.ev, ZKC_WATCH_STOPPED, 0, 0);
    ck_assert_int_ge(i, 0);
    long long at;
    int64_t st;
    tu_events_get(&r.ev, i, &at, &st);
    ck_assert_int_eq(st, ZKC_ECANCELED);
    zkc_watch_stop(r.w);
    ck_assert_int_eq(r.after_final, 0);
    ck_assert_int_eq(r.finals, 1);
    tu_events_destroy(&r.ev);
    tu_events_destroy(&early.ev);
}
END_TEST

/* Session expiry: LOST, then CHANGED once re-armed on the next session; later
 * changes still come. */
START_TEST(t_session_lost_rearms)
{
    char path[128];
    tu_unique_path(path, sizeof path, "watchlost");
    zkc_client *a = tu_client(tu_hosts()), *b = tu_client(tu_hosts());
    rec r;
    rec_init(&r);
    ck_assert_int_eq(zkc_lock_contenders_watch(a, path, rec_cb, &r, &r.w), 0);
    wait_changed(&r, 1);
    int64_t sid;
    char pw[16];
    int pwlen;
    ck_assert_int_eq(zkc_client_session(a, &sid, pw, &pwlen), 0);
    ck_assert_int_eq(zkh_expire_session(tu_hosts(), sid, pw, pwlen, tu_ms(20000)), 0);
    int lost = tu_events_wait(&r.ev, ZKC_WATCH_LOST, 0, tu_ms(30000));
    ck_assert_msg(lost >= 0, "no LOST after the session expired");
    long long at;
    int64_t st;
    tu_events_get(&r.ev, lost, &at, &st);
    ck_assert_int_eq(st, ZKC_ESESSIONLOST);
    ck_assert_int_ge(tu_events_wait(&r.ev, ZKC_WATCH_CHANGED, lost + 1, tu_ms(30000)), 0);
    int before = tu_events_count(&r.ev, ZKC_WATCH_CHANGED);
    zkc_lock *l;
    ck_assert_int_eq(zkc_lock_create(b, path, &l), 0);
    int64_t tok = 0, shown = 0;
    ck_assert_int_eq(zkc_lock_acquire(l, tu_ms(10000), &tok), 0);
    long long dl = tu_now_ms() + tu_ms(20000);
    int seen = before;
    wait_changed(&r, ++seen);
    while (!(contenders(a, path, &shown) == 1 && shown == tok) && tu_now_ms() < dl)
        wait_changed(&r, ++seen);
    ck_assert_int_eq(shown, tok);
    zkc_watch_stop(r.w);
    ck_assert_int_eq(r.finals, 1);
    ck_assert_int_eq(r.after_final, 0);
    zkc_lock_destroy(l);
    zkc_client_destroy(b);
    zkc_client_destroy(a);
    tu_events_destroy(&r.ev);
}
END_TEST

/* The stock watch: a SKU's first restock, a reservation and the queue. */
START_TEST(t_stock_watch)
{
    char root[128];
    tu_unique_path(root, sizeof root, "watchinv");
    zkc_client *a = tu_client(tu_hosts()), *b = tu_client(tu_hosts());
    zkc_inventory *ia, *ib;
    ck_assert_int_eq(zkc_inventory_create(a, root, &ia), 0);
    ck_assert_int_eq(zkc_inventory_create(b, root, &ib), 0);
    rec r;
    rec_init(&r);
    ck_assert_int_eq(zkc_inventory_stock_watch(ia, "sku1", rec_cb, &r, &r.w), 0);
    wait_changed(&r, 1);
    zkc_inventory_stock_info si;
    ck_assert_int_eq(zkc_inventory_stock(ia, "sku1", &si), ZKC_ENONODE);
    int seen = tu_events_count(&r.ev, ZKC_WATCH_CHANGED);
    ck_assert_int_eq(zkc_inventory_restock(ib, "sku1", 5), 0);
    long long dl = tu_now_ms() + tu_ms(20000);
    wait_changed(&r, ++seen);
    while ((zkc_inventory_stock(ia, "sku1", &si) != 0 || si.available != 5) && tu_now_ms() < dl)
        wait_changed(&r, ++seen);
    ck_assert_int_eq(si.available, 5);
    zkc_inventory_line line = {"sku1", 2};
    zkc_inventory_state state;
    seen = tu_events_count(&r.ev, ZKC_WATCH_CHANGED);
    ck_assert_int_eq(zkc_inventory_reserve(ib, "order-1", &line, 1, NULL, tu_ms(10000), NULL, &state), 0);
    wait_changed(&r, ++seen);
    while ((zkc_inventory_stock(ia, "sku1", &si) != 0 || si.reserved != 2) && tu_now_ms() < dl)
        wait_changed(&r, ++seen);
    ck_assert_int_eq(si.available, 3);
    ck_assert_int_eq(si.reserved, 2);
    zkc_watch_stop(r.w);
    ck_assert_int_eq(r.finals, 1);
    ck_assert_int_eq(r.after_final, 0);
    /* The watch belongs to the client; the inventory may go first or after. */
    zkc_inventory_destroy(ia);
    zkc_inventory_destroy(ib);
    zkc_client_destroy(b);
    zkc_client_destroy(a);
    tu_events_destroy(&r.ev);
}
END_TEST

START_TEST(t_bad_arguments)
{
    zkc_client *a = tu_client(tu_hosts());
    zkc_watch *w = (zkc_watch *)1;
    ck_assert_int_eq(zkc_lock_contenders_watch(a, "no-slash", rec_cb, NULL, &w), ZKC_EINVAL);
    ck_assert_ptr_null(w);
    ck_assert_int_eq(zkc_lock_contenders_watch(a, "/x", NULL, NULL, &w), ZKC_EINVAL);
    ck_assert_int_eq(zkc_lock_contenders_watch(a, "/x", rec_cb, NULL, NULL), ZKC_EINVAL);
    zkc_inventory *inv;
    ck_assert_int_eq(zkc_inventory_create(a, "/zkct-watch-bad", &inv), 0);
    ck_assert_int_eq(zkc_inventory_stock_watch(inv, "a/b", rec_cb, NULL, &w), ZKC_EINVAL);
    zkc_watch_stop(NULL);
    zkc_inventory_destroy(inv);
    zkc_client_destroy(a);
}
END_TEST

#define CASE(s, fn) TU_CASE(s, fn, 90 * tu_scale())

static Suite *watch_suite(void)
{
    Suite *s = suite_create("watch");
    CASE(s, t_changes_rearm_stop);
    CASE(s, t_stop_in_callback);
    CASE(s, t_client_destroy_and_early_stop);
    CASE(s, t_session_lost_rearms);
    CASE(s, t_stock_watch);
    CASE(s, t_bad_arguments);
    return s;
}

int main(void)
{
    return tu_main(watch_suite(), TU_SHARED_ENSEMBLE);
}
