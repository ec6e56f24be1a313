/* Id generator (zkc_idgen) against the suite's real 3-node ensemble: ids
 * unique over several clients and threads and strictly increasing within a
 * generator, blocking and callback forms mixed; no round trip while a block
 * lasts; block growth under load; later leases above earlier ones across
 * clients; the id ceiling; bad input. Gap-free mode: ids from several
 * clients and threads are exactly 1..N, one write per id; keyed takes
 * re-issue the same id to a repeat (a restart); voids. Faults (a lost lease
 * reply, a session expiry, cancel while no server answers; the same for
 * gap-free takes) are in test_idgen_faults.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"
#include "idgen_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------ the callback form, waited for */

typedef struct async_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, calls, status;
    int64_t id;
} async_wait;

static void async_cb(zkc_idgen *g, int status, int64_t id, void *ud)
{
    async_wait *a = ud;
    (void)g;
    pthread_mutex_lock(&a->mu);
    a->calls++;
    a->status = status;
    a->id = id;
    a->done = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static void async_wait_init(async_wait *a)
{
    memset(a, 0, sizeof *a);
    pthread_mutex_init(&a->mu, NULL);
    tu_cond_init_mono(&a->cv);
}

/* Waits (bounded) for the callback `what` started; asserts exactly one call.
 * Its status, its id in *id. */
static int async_wait_done(async_wait *a, const char *what, int64_t *id)
{
    struct timespec dl;
    tu_deadline_ts(&dl, tu_ms(30000));
    pthread_mutex_lock(&a->mu);
    while (!a->done && pthread_cond_timedwait(&a->cv, &a->mu, &dl) == 0)
        ;
    int done = a->done;
    pthread_mutex_unlock(&a->mu);
    ck_assert_msg(done, "%s: no callback within 30 s", what);
    ck_assert_int_eq(a->calls, 1);
    *id = a->id;
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    return a->status;
}

/* The callback form, waited for (bounded); asserts exactly one call. */
static int next_async_wait(zkc_idgen *g, int timeout_ms, int64_t *id)
{
    async_wait a;
    async_wait_init(&a);
    int rc = zkc_idgen_next_async(g, timeout_ms, async_cb, &a);
    if (rc)
        return rc;
    return async_wait_done(&a, "zkc_idgen_next_async", id);
}

/* ------------------------------------------------ workers: many clients and threads */

#define W_WORKERS 12 /* threads at most */
#define W_IDS 400    /* ids per thread at most */

/* One thread of the many-clients tests: takes `want` ids from g, the i-th by
 * take(w, i, &id). */
typedef struct id_worker id_worker;
typedef int (*id_take_fn)(id_worker *w, int i, int64_t *id);
struct id_worker {
    zkc_idgen *g;
    int which; /* its index among all the workers */
    int want;
    id_take_fn take;
    const char *what; /* names a failed call */
    int64_t ids[W_IDS];
    int n;
    char err[256];
};

static void *worker_thread(void *arg)
{
    id_worker *w = arg;
    for (int i = 0; i < w->want; i++) {
        int64_t id = 0;
        int rc = w->take(w, i, &id);
        if (rc) {
            snprintf(w->err, sizeof w->err, "%s #%d: %s: %s", w->what, i, zkc_strerror(rc), zkc_errmsg());
            break;
        }
        w->ids[w->n++] = id;
    }
    return NULL;
}

/* nthreads threads on each of the generators gs[0..ngen-1] (thread i on
 * gs[i % ngen]) each take `want` ids; asserts every one got them all. Thread
 * i's ids, in the order it got them, are seqs[i] (lens[i] of them; valid
 * until the next call). Returns the number of threads. */
static int run_workers(zkc_idgen **gs, int ngen, int nthreads, int want, id_take_fn take, const char *what,
                       int64_t **seqs, int *lens)
{
    static id_worker w[W_WORKERS];
    pthread_t th[W_WORKERS];
    int n = ngen * nthreads;
    ck_assert_int_le(n, W_WORKERS);
    ck_assert_int_le(want, W_IDS);
    memset(w, 0, sizeof w);
    for (int i = 0; i < n; i++) {
        w[i].g = gs[i % ngen];
        w[i].which = i;
        w[i].want = want;
        w[i].take = take;
        w[i].what = what;
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker_thread, &w[i]), 0);
    }
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < n; i++) {
        ck_assert_msg(!w[i].err[0], "worker %d: %s", i, w[i].err);
        ck_assert_int_eq(w[i].n, want);
        seqs[i] = w[i].ids;
        lens[i] = w[i].n;
    }
    return n;
}

/* ------------------------------------------------ uniqueness and order */

#define U_CLIENTS 3
#define U_THREADS 4 /* per client */
#define U_IDS 400   /* per thread */

/* Blocking calls, and every third one in the callback form on odd workers. */
static int u_take(id_worker *w, int i, int64_t *id)
{
    return w->which % 2 && i % 3 == 0 ? next_async_wait(w->g, tu_ms(20000), id)
                                      : zkc_idgen_next(w->g, tu_ms(20000), id);
}

START_TEST(t_idgen_unique_clients_threads)
{
    char path[128];
    tu_unique_path(path, sizeof path, "idg");
    zkc_client *cs[U_CLIENTS];
    zkc_idgen *gs[U_CLIENTS];
    for (int i = 0; i < U_CLIENTS; i++) {
        cs[i] = tu_client(tu_hosts());
        /* small blocks: many leases race on the counter */
        gs[i] = idg_make(cs[i], path, 3, 24, 1000);
    }
    /* Hand-out order within a generator is increasing, so each thread's is. */
    int64_t *seqs[U_CLIENTS * U_THREADS];
    int lens[U_CLIENTS * U_THREADS];
    run_workers(gs, U_CLIENTS, U_THREADS, U_IDS, u_take, "next", seqs, lens);
    int64_t top = idg_top(cs[0], path);
    int total = idg_check(seqs, lens, U_CLIENTS * U_THREADS, top);
    fprintf(stderr, "idgen: %d ids from %d clients x %d threads; top leased %lld (%lld unused at the end)\n", total,
            U_CLIENTS, U_THREADS, (long long)top, (long long)(top - total));
    for (int i = 0; i < U_CLIENTS; i++) {
        zkc_idgen_destroy(gs[i]);
        zkc_client_destroy(cs[i]);
    }
}
END_TEST

/* --------------------------------------------- local ids, growth, order */

START_TEST(t_idgen_local_no_round_trip)
{
    char path[128];
    tu_unique_path(path, sizeof path, "idg-local");
    zkc_client *c = tu_client(tu_hosts());
    zkc_idgen *g = idg_make(c, path, 100, 100, 0);
    int64_t first = 0, id = 0;
    ck_assert_msg(zkc_idgen_next(g, tu_ms(10000), &first) == 0, "first id: %s", zkc_errmsg());
    ck_assert_int_eq(first, 1);
    zkc_stats s0, s1;
    zkc_client_stats(c, &s0);
    for (int i = 2; i <= 100; i++) {
        /* timeout 0: a leased id is at hand; the callback form too serves
         * from the block */
        int rc = i % 10 ? zkc_idgen_next(g, 0, &id) : next_async_wait(g, 0, &id);
        ck_assert_msg(rc == 0, "id %d: %s", i, zkc_strerror(rc));
        ck_assert_int_eq(id, i);
    }
    zkc_client_stats(c, &s1);
    ck_assert_msg(s1.requests[ZKC_REQ_MULTI] == s0.requests[ZKC_REQ_MULTI],
                  "%llu lease writes while ids 2..100 of the first block were handed out",
                  (unsigned long long)(s1.requests[ZKC_REQ_MULTI] - s0.requests[ZKC_REQ_MULTI]));
    /* Block used up: try (timeout 0) does not wait, but starts the lease. */
    int rc = zkc_idgen_next(g, 0, &id);
    if (rc == ZKC_ETIMEDOUT)
        ck_assert_msg(zkc_idgen_next(g, tu_ms(10000), &id) == 0, "after try: %s", zkc_errmsg());
    else
        ck_assert_msg(rc == 0, "try: %s", zkc_errmsg());
    ck_assert_int_eq(id, 101);
    zkc_idgen_destroy(g);
    zkc_client_destroy(c);
}
END_TEST

START_TEST(t_idgen_grows_under_load)
{
    char path[128];
    tu_unique_path(path, sizeof path, "idg-grow");
    zkc_client *c = tu_client(tu_hosts());
    /* every block is used up at once: 2, 4, 8, ... 256, 256, ... */
    zkc_idgen *g = idg_make(c, path, 2, 256, 60000);
    zkc_stats s0, s1;
    zkc_client_stats(c, &s0);
    int64_t id = 0, prev = 0;
    for (int i = 0; i < 2000; i++) {
        ck_assert_msg(zkc_idgen_next(g, tu_ms(10000), &id) == 0, "next: %s", zkc_errmsg());
        ck_assert_msg(id > prev, "id %lld after %lld", (long long)id, (long long)prev);
        prev = id;
    }
    zkc_client_stats(c, &s1);
    uint64_t writes = s1.requests[ZKC_REQ_MULTI] - s0.requests[ZKC_REQ_MULTI];
    fprintf(stderr, "idgen growth: 2000 ids in %llu lease writes\n", (unsigned long long)writes);
    /* 7 leases reach 254 ids, then 7 more of 256; without growth, 1000. */
    ck_assert_msg(writes <= 20, "%llu lease writes for 2000 ids: blocks did not grow", (unsigned long long)writes);
    zkc_idgen_destroy(g);
    zkc_client_destroy(c);
}
END_TEST

START_TEST(t_idgen_later_lease_is_larger)
{
    char path[128];
    tu_unique_path(path, sizeof path, "idg-order");
    zkc_client *a = tu_client(tu_hosts()), *b = tu_client(tu_hosts());
    zkc_idgen *ga = idg_make(a, path, 10, 10, 0), *gb = idg_make(b, path, 10, 10, 0);
    int64_t a1, b1, a2;
    ck_assert_int_eq(zkc_idgen_next(ga, tu_ms(10000), &a1), 0);
    ck_assert_int_eq(zkc_idgen_next(gb, tu_ms(10000), &b1), 0); /* leased after a's lease was applied */
    ck_assert_int_eq(zkc_idgen_next(ga, tu_ms(10000), &a2), 0); /* from a's block: below b1 */
    ck_assert_msg(a1 == 1 && b1 == 11 && a2 == 2, "a1 %lld b1 %lld a2 %lld", (long long)a1, (long long)b1,
                  (long long)a2);
    zkc_idgen_destroy(ga);
    zkc_idgen_destroy(gb);
    /* A new generator (a restart) never reuses the ids a's old block left. */
    zkc_idgen *gc = idg_make(a, path, 10, 10, 0);
    int64_t c1;
    ck_assert_int_eq(zkc_idgen_next(gc, tu_ms(10000), &c1), 0);
    ck_assert_int_eq(c1, 21);
    zkc_idgen_destroy(gc);
    zkc_client_destroy(a);
    zkc_client_destroy(b);
}
END_TEST

START_TEST(t_idgen_max_id)
{
    char path[128];
    tu_unique_path(path, sizeof path, "idg-max");
    zkc_client *c = tu_client(tu_hosts());
    zkc_idgen_options o;
    zkc_idgen_options_init(&o);
    o.block = 4;
    o.max_block = 8;
    o.max_id = 10;
    zkc_idgen *g = NULL;
    ck_assert_int_eq(zkc_idgen_create(c, path, &o, &g), 0);
    int64_t id;
    for (int64_t want = 1; want <= 10; want++) {
        ck_assert_msg(zkc_idgen_next(g, tu_ms(10000), &id) == 0, "id %lld: %s", (long long)want, zkc_errmsg());
        ck_assert_int_eq(id, want);
    }
    int rc = zkc_idgen_next(g, tu_ms(10000), &id);
    ck_assert_msg(rc == ZKC_ELIMIT, "past max_id: %s (%s)", zkc_strerror(rc), zkc_errmsg());
    ck_assert_msg(strstr(zkc_errmsg(), "10") != NULL, "message does not name the limit: %s", zkc_errmsg());
    zkc_idgen_destroy(g);
    zkc_client_destroy(c);
}
END_TEST

START_TEST(t_idgen_bad_input)
{
    zkc_client *c = tu_client(tu_hosts());
    zkc_idgen *g = NULL;
    zkc_idgen_options o;
    ck_assert_int_eq(zkc_idgen_create(c, "no-slash", NULL, &g), ZKC_EINVAL);
    ck_assert_ptr_null(g);
    ck_assert_int_eq(zkc_idgen_create(NULL, "/x", NULL, &g), ZKC_EINVAL);
    ck_assert_int_eq(zkc_idgen_create(c, "/x", NULL, NULL), ZKC_EINVAL);
    zkc_idgen_options_init(&o);
    o.block = 0;
    ck_assert_int_eq(zkc_idgen_create(c, "/x", &o, &g), ZKC_EINVAL);
    ck_assert_msg(strstr(zkc_errmsg(), "block") != NULL, "%s", zkc_errmsg());
    zkc_idgen_options_init(&o);
    o.block = 10;
    o.max_block = 5;
    ck_assert_int_eq(zkc_idgen_create(c, "/x", &o, &g), ZKC_EINVAL);
    ck_assert_msg(strstr(zkc_errmsg(), "max_block") != NULL, "%s", zkc_errmsg());
    zkc_idgen_options_init(&o);
    o.max_id = 0;
    ck_assert_int_eq(zkc_idgen_create(c, "/x", &o, &g), ZKC_EINVAL);
    ck_assert_int_eq(zkc_idgen_create(c, "/x", NULL, &g), 0);
    int64_t id;
    ck_assert_int_eq(zkc_idgen_next(g, -5, &id), ZKC_EINVAL);
    ck_assert_int_eq(zkc_idgen_next(g, 0, NULL), ZKC_EINVAL);
    ck_assert_int_eq(zkc_idgen_next_async(g, 0, NULL, NULL), ZKC_EINVAL);
    ck_assert_int_eq(zkc_idgen_next(NULL, 0, &id), ZKC_EINVAL);
    ck_assert_int_eq(zkc_idgen_cancel(g), 0); /* nothing pending: fine */
    ck_assert_str_eq(zkc_idgen_path(g), "/x");
    zkc_idgen_destroy(g);
    zkc_idgen_destroy(NULL);
    zkc_client_destroy(c);
}
END_TEST


/* ------------------------------------------------------------ gap-free */

#define GF_CLIENTS 3
#define GF_THREADS 3 /* per client */
#define GF_IDS 40    /* per thread */

/* The three forms in turn: blocking, callback, keyed (a key of its own). */
static int gf_take(id_worker *w, int i, int64_t *id)
{
    char key[64];
    switch ((i + w->which) % 3) {
    case 0:
        return zkc_idgen_next(w->g, tu_ms(20000), id);
    case 1:
        return next_async_wait(w->g, tu_ms(20000), id);
    default:
        snprintf(key, sizeof key, "order-%d-%d", w->which, i);
        return zkc_idgen_next_keyed(w->g, key, tu_ms(20000), id);
    }
}

START_TEST(t_idgen_gapfree_no_holes)
{
    char path[128];
    tu_unique_path(path, sizeof path, "idg-gapfree");
    zkc_client *cs[GF_CLIENTS];
    zkc_idgen *gs[GF_CLIENTS];
    for (int i = 0; i < GF_CLIENTS; i++) {
        cs[i] = tu_client(tu_hosts());
        gs[i] = idg_make_gapfree(cs[i], path);
    }
    /* One thread's takes are applied one after another. */
    int64_t *seqs[GF_CLIENTS * GF_THREADS];
    int lens[GF_CLIENTS * GF_THREADS];
    run_workers(gs, GF_CLIENTS, GF_THREADS, GF_IDS, gf_take, "take", seqs, lens);
    int64_t top = idg_top(cs[0], path);
    idg_check_gapless(seqs, lens, GF_CLIENTS * GF_THREADS, top, 0, 1);
    fprintf(stderr, "idgen gap-free: ids 1..%lld from %d clients x %d threads, no hole\n", (long long)top, GF_CLIENTS,
            GF_THREADS);
    /* One write per id: an uncontended take is one multi, once the
     * counter's cache knows the version (the first take below may find it
     * stale: the other clients wrote last). */
    int64_t id = 0, prev;
    ck_assert_msg(zkc_idgen_next(gs[0], tu_ms(10000), &prev) == 0, "take: %s", zkc_errmsg());
    ck_assert_int_eq(prev, top + 1);
    zkc_stats s0, s1;
    zkc_client_stats(cs[0], &s0);
    for (int i = 0; i < 20; i++) {
        ck_assert_msg(zkc_idgen_next(gs[0], tu_ms(10000), &id) == 0, "take: %s", zkc_errmsg());
        ck_assert_int_eq(id, prev + 1);
        prev = id;
    }
    zkc_client_stats(cs[0], &s1);
    uint64_t writes = s1.requests[ZKC_REQ_MULTI] - s0.requests[ZKC_REQ_MULTI];
    /* A take's key lives in one of 256 bucket nodes under meta_root; the
     * first key of a bucket ever finds it missing (a failed multi, the
     * bucket made by a create, the multi again): once per bucket, ever. */
    uint64_t buckets = s1.requests[ZKC_REQ_CREATE] - s0.requests[ZKC_REQ_CREATE];
    fprintf(stderr, "idgen gap-free: 20 ids in %llu writes (%llu new key buckets)\n", (unsigned long long)writes,
            (unsigned long long)buckets);
    ck_assert_msg(writes == 20 + buckets, "%llu writes for 20 gap-free ids (%llu new key buckets)",
                  (unsigned long long)writes, (unsigned long long)buckets);
    for (int i = 0; i < GF_CLIENTS; i++) {
        zkc_idgen_destroy(gs[i]);
        zkc_client_destroy(cs[i]);
    }
}
END_TEST

START_TEST(t_idgen_gapfree_keyed_and_void)
{
    char path[128], vdir[160];
    tu_unique_path(path, sizeof path, "idg-void");
    snprintf(vdir, sizeof vdir, "%s-voided", path);
    zkc_client *a = tu_client(tu_hosts()), *b = tu_client(tu_hosts());
    zkc_idgen *ga = idg_make_gapfree(a, path);
    int64_t id1, id2, again, id3;
    ck_assert_msg(zkc_idgen_next_keyed(ga, "invoice-A", tu_ms(10000), &id1) == 0, "%s", zkc_errmsg());
    ck_assert_msg(zkc_idgen_next(ga, tu_ms(10000), &id2) == 0, "%s", zkc_errmsg());
    ck_assert(id1 == 1 && id2 == 2);
    /* "a crash": another process repeats the take under the same key and
     * gets the same id back, without taking another */
    zkc_idgen_destroy(ga);
    zkc_idgen *gb = idg_make_gapfree(b, path);
    ck_assert_msg(zkc_idgen_next_keyed(gb, "invoice-A", tu_ms(10000), &again) == 0, "%s", zkc_errmsg());
    ck_assert_int_eq(again, 1);
    ck_assert_msg(zkc_idgen_next_keyed(gb, "invoice-B", tu_ms(10000), &id3) == 0, "%s", zkc_errmsg());
    ck_assert_int_eq(id3, 3);
    ck_assert_int_eq(idg_top(b, path), 3);
    /* The same key under another path is another take there. */
    char other[128];
    tu_unique_path(other, sizeof other, "idg-void-other");
    zkc_idgen *go = idg_make_gapfree(b, other);
    ck_assert_msg(zkc_idgen_next_keyed(go, "invoice-A", tu_ms(10000), &again) == 0, "%s", zkc_errmsg());
    ck_assert_int_eq(again, 1);
    ck_assert_msg(zkc_idgen_next_keyed(go, "invoice-B", tu_ms(10000), &again) == 0, "%s", zkc_errmsg());
    ck_assert_int_eq(again, 2);
    zkc_idgen_destroy(go);
    /* Voids: id 2 will not be used. Twice is fine (a repeat after a lost
     * reply); an id not taken yet is refused; the callback form names it. */
    ck_assert_msg(zkc_idgen_void(gb, 2) == 0, "void 2: %s", zkc_errmsg());
    ck_assert_msg(zkc_idgen_void(gb, 2) == 0, "void 2 again: %s", zkc_errmsg());
    int rc = zkc_idgen_void(gb, 4);
    ck_assert_msg(rc == ZKC_EINVAL, "void of an id not taken: %s", zkc_strerror(rc));
    ck_assert_msg(strstr(zkc_errmsg(), "not taken") != NULL, "%s", zkc_errmsg());
    async_wait w;
    async_wait_init(&w);
    ck_assert_int_eq(zkc_idgen_void_async(gb, 3, async_cb, &w), 0);
    int64_t vid = 0;
    int vst = async_wait_done(&w, "zkc_idgen_void_async", &vid);
    ck_assert_msg(vst == 0 && vid == 3, "void_async: status %d id %lld", vst, (long long)vid);
    /* What an auditor sees: the void records, in id order. */
    tu_raw *raw = tu_raw_open(tu_hosts(), 10000);
    struct String_vector kids;
    memset(&kids, 0, sizeof kids);
    ck_assert_int_eq(zoo_get_children(tu_raw_zh(raw), vdir, 0, &kids), ZOK);
    ck_assert_int_eq(kids.count, 2);
    ck_assert_msg((!strcmp(kids.data[0], "0000000000000000002") && !strcmp(kids.data[1], "0000000000000000003")) ||
                      (!strcmp(kids.data[1], "0000000000000000002") && !strcmp(kids.data[0], "0000000000000000003")),
                  "void records %s, %s", kids.data[0], kids.data[1]);
    deallocate_String_vector(&kids);
    tu_raw_close(raw);
    pthread_mutex_lock(&w.mu);
    ck_assert_int_eq(w.calls, 1);
    pthread_mutex_unlock(&w.mu);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    /* Bad input. */
    ck_assert_int_eq(zkc_idgen_void(gb, 0), ZKC_EINVAL);
    ck_assert_int_eq(zkc_idgen_next_keyed(gb, "a/b", 0, &again), ZKC_EINVAL);
    char longkey[190];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = 0;
    ck_assert_int_eq(zkc_idgen_next_keyed(gb, longkey, 0, &again), ZKC_EINVAL);
    ck_assert_int_eq(zkc_idgen_next_keyed(gb, NULL, 0, &again), ZKC_EINVAL);
    ck_assert_int_eq(zkc_idgen_next_keyed_async(gb, "k", 0, NULL, NULL), ZKC_EINVAL);
    ck_assert_int_eq(zkc_idgen_void_async(gb, 1, NULL, NULL), ZKC_EINVAL);
    zkc_idgen *blocks = idg_make(b, path, 10, 10, 0);
    rc = zkc_idgen_next_keyed(blocks, "invoice-C", 0, &again);
    ck_assert_msg(rc == ZKC_EINVAL && strstr(zkc_errmsg(), "gap_free"), "keyed in block mode: %s (%s)",
                  zkc_strerror(rc), zkc_errmsg());
    zkc_idgen_destroy(blocks);
    zkc_idgen_destroy(gb);
    zkc_client_destroy(a);
    zkc_client_destroy(b);
}
END_TEST

#define CASE(s, fn) TU_CASE(s, fn, 90 * tu_scale())

static Suite *idgen_suite(void)
{
    Suite *s = suite_create("idgen");
    CASE(s, t_idgen_unique_clients_threads);
    CASE(s, t_idgen_local_no_round_trip);
    CASE(s, t_idgen_grows_under_load);
    CASE(s, t_idgen_later_lease_is_larger);
    CASE(s, t_idgen_max_id);
    CASE(s, t_idgen_bad_input);
    CASE(s, t_idgen_gapfree_no_holes);
    CASE(s, t_idgen_gapfree_keyed_and_void);
    return s;
}

int main(void)
{
    return tu_main(idgen_suite(), TU_SHARED_ENSEMBLE);
}
