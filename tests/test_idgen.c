/* Id generator (zkc_idgen) against the suite's real 3-node ensemble: ids
 * unique over several clients and threads and strictly increasing within a
 * generator, blocking and callback forms mixed; no round trip while a block
 * lasts; block growth under load; later leases above earlier ones across
 * clients; the id ceiling; bad input. Faults (a lost lease reply, a session
 * expiry, cancel while no server answers) are in test_idgen_faults.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"
#include "idgen_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------ uniqueness and order */

#define U_CLIENTS 3
#define U_THREADS 4 /* per client */
#define U_IDS 400   /* per thread */

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

/* The callback form, waited for (bounded); asserts exactly one call. */
static int next_async_wait(zkc_idgen *g, int timeout_ms, int64_t *id)
{
    async_wait a;
    memset(&a, 0, sizeof a);
    pthread_mutex_init(&a.mu, NULL);
    tu_cond_init_mono(&a.cv);
    int rc = zkc_idgen_next_async(g, timeout_ms, async_cb, &a);
    if (rc)
        return rc;
    struct timespec dl;
    tu_deadline_ts(&dl, tu_ms(30000));
    pthread_mutex_lock(&a.mu);
    while (!a.done && pthread_cond_timedwait(&a.cv, &a.mu, &dl) == 0)
        ;
    int done = a.done;
    pthread_mutex_unlock(&a.mu);
    ck_assert_msg(done, "zkc_idgen_next_async: no callback within 30 s");
    ck_assert_int_eq(a.calls, 1);
    *id = a.id;
    pthread_mutex_destroy(&a.mu);
    pthread_cond_destroy(&a.cv);
    return a.status;
}

typedef struct u_worker {
    zkc_idgen *g;
    int async;
    int64_t ids[U_IDS];
    int n;
    char err[256];
} u_worker;

static void *u_thread(void *arg)
{
    u_worker *w = arg;
    for (int i = 0; i < U_IDS; i++) {
        int64_t id = 0;
        int rc = w->async && i % 3 == 0 ? next_async_wait(w->g, tu_ms(20000), &id)
                                         : zkc_idgen_next(w->g, tu_ms(20000), &id);
        if (rc) {
            snprintf(w->err, sizeof w->err, "next #%d: %s: %s", i, zkc_strerror(rc), zkc_errmsg());
            break;
        }
        w->ids[w->n++] = id;
    }
    return NULL;
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
    static u_worker w[U_CLIENTS * U_THREADS];
    pthread_t th[U_CLIENTS * U_THREADS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < U_CLIENTS * U_THREADS; i++) {
        w[i].g = gs[i % U_CLIENTS];
        w[i].async = i % 2;
        ck_assert_int_eq(pthread_create(&th[i], NULL, u_thread, &w[i]), 0);
    }
    for (int i = 0; i < U_CLIENTS * U_THREADS; i++)
        pthread_join(th[i], NULL);
    int64_t *seqs[U_CLIENTS * U_THREADS];
    int lens[U_CLIENTS * U_THREADS];
    for (int i = 0; i < U_CLIENTS * U_THREADS; i++) {
        ck_assert_msg(!w[i].err[0], "worker %d: %s", i, w[i].err);
        ck_assert_int_eq(w[i].n, U_IDS);
        seqs[i] = w[i].ids; /* hand-out order within a generator is increasing, so each thread's is */
        lens[i] = w[i].n;
    }
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
    return s;
}

int main(void)
{
    return tu_main(idgen_suite(), TU_SHARED_ENSEMBLE);
}
