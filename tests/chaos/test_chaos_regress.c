/* Deterministic regression tests for what the chaos suite found (issue 9).
 * Each case drives the exact interleaving through the fault proxy. Freed
 * memory is poisoned (mallopt M_PERTURB), so a use after free misbehaves
 * even without AddressSanitizer.
 *
 *   test_janitor_find_item_outlives_its_sync
 *       An acquire whose create was applied but whose reply was lost is
 *       cancelled while it recovers: the janitor must find and delete the
 *       orphan node. The janitor's jan_list_done (lib/janitor.c) used to mark the "find" item
 *       idle, queue the delete (whose jan_run sent the idle item out again)
 *       and then free it: use after free in jan_sync_done.
 */
#include "testutil.h"
#include "proxy.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OP_SYNC 9
#define OP_CREATE2 15

typedef struct proxies {
    zkh_proxy *p[8];
    int n;
    char hosts[1024];
} proxies;

static void proxies_start(proxies *px)
{
    zkh_ensemble *e = tu_shared();
    memset(px, 0, sizeof *px);
    px->n = zkh_node_count(e);
    size_t off = 0;
    for (int i = 0; i < px->n; i++) {
        ck_assert_int_eq(zkh_proxy_start(&px->p[i], zkh_node_hostport(e, i)), 0);
        off += (size_t)snprintf(px->hosts + off, sizeof px->hosts - off, "%s%s", i ? "," : "",
                                zkh_proxy_hostport(px->p[i]));
    }
}

static void proxies_stop(proxies *px)
{
    for (int i = 0; i < px->n; i++)
        zkh_proxy_stop(px->p[i]);
}

static long seen(proxies *px, int op)
{
    long s = 0;
    for (int i = 0; i < px->n; i++)
        s += zkh_proxy_requests_seen(px->p[i], op);
    return s;
}

static int fired(proxies *px)
{
    int s = 0;
    for (int i = 0; i < px->n; i++)
        s += zkh_proxy_faults_fired(px->p[i]);
    return s;
}

/* Poll a proxy counter (the proxy has no events to wait on); bounded. */
static int wait_count(proxies *px, long (*get)(proxies *, int), int op, long want, int timeout_ms)
{
    long long end = tu_now_ms() + timeout_ms;
    while (get(px, op) < want && tu_now_ms() < end)
        tu_nap_ms(5);
    return get(px, op) >= want;
}

static long fired_any(proxies *px, int op)
{
    (void)op;
    return fired(px);
}

static void on_acquire(zkc_lock *l, int status, int64_t token, void *ud)
{
    (void)l;
    tu_events_add(ud, status == 0 ? 1 : status == ZKC_ECANCELED ? 2 : 3, token);
}

START_TEST(test_janitor_find_item_outlives_its_sync)
{
    proxies px;
    proxies_start(&px);
    char path[256];
    tu_unique_path(path, sizeof path, "regress-janitor");
    /* A holder on a direct connection keeps the queue (and its container) alive. */
    zkc_client *h = tu_client(tu_hosts());
    zkc_lock *hl = NULL;
    ck_assert_int_eq(zkc_lock_create(h, path, &hl), 0);
    ck_assert_int_eq(zkc_lock_acquire(hl, tu_ms(10000), NULL), 0);

    zkc_client *c = tu_client(px.hosts);
    zkc_lock *l = NULL;
    ck_assert_int_eq(zkc_lock_create(c, path, &l), 0);
    /* The create lands but its reply is lost; every sync of the recovery is
     * dropped (not applied), so the acquire stays in recovery. */
    for (int i = 0; i < px.n; i++) {
        zkh_proxy_drop_reply(px.p[i], OP_CREATE2, 1);
        zkh_proxy_drop_request(px.p[i], OP_SYNC, 1000);
    }
    tu_events ev;
    tu_events_init(&ev);
    ck_assert_int_eq(zkc_lock_acquire_async(l, ZKC_FOREVER, on_acquire, &ev), 0);
    ck_assert_msg(wait_count(&px, fired_any, 0, 1, tu_ms(10000)), "the create's reply was not dropped");
    ck_assert_msg(wait_count(&px, seen, OP_SYNC, 1, tu_ms(10000)), "no recovery sync after the lost reply");
    ck_assert(tu_wait_queue_count(h, path, 2, tu_ms(10000))); /* the create was applied */
    /* Cancelled while recovering: the janitor is to find our node by its uuid. */
    ck_assert_int_eq(zkc_lock_cancel(l), 0);
    ck_assert_int_ge(tu_events_wait(&ev, 2, 0, tu_ms(10000)), 0);
    /* Let syncs through and force a reconnection: the janitor runs, finds the
     * node, deletes it. */
    for (int i = 0; i < px.n; i++)
        zkh_proxy_drop_request(px.p[i], OP_SYNC, 0);
    long syncs = seen(&px, OP_SYNC);
    for (int i = 0; i < px.n; i++)
        zkh_proxy_cut(px.p[i]);
    ck_assert(wait_count(&px, seen, OP_SYNC, syncs + 1, tu_ms(20000)));
    ck_assert_msg(tu_wait_queue_count(h, path, 1, tu_ms(20000)), "the janitor left our orphan in the queue");
    /* More janitor work on the same client after that: it must be intact. */
    ck_assert_int_eq(zkc_lock_acquire(l, 0, NULL), ZKC_ETIMEDOUT);
    ck_assert_int_eq(zkc_lock_release(hl), 0);
    ck_assert_int_eq(zkc_lock_acquire(l, tu_ms(10000), NULL), 0);
    ck_assert_int_eq(zkc_lock_release(l), 0);
    tu_events_destroy(&ev);
    zkc_lock_destroy(l);
    zkc_lock_destroy(hl);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
    ck_assert_int_eq(zkc_client_destroy(h), 0);
    proxies_stop(&px);
}
END_TEST

static Suite *regress_suite(void)
{
    Suite *s = suite_create("chaos-regress");
    TCase *tc = tcase_create("regress");
    tcase_set_timeout(tc, 120 * tu_scale());
    tcase_add_test(tc, test_janitor_find_item_outlives_its_sync);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    mallopt(M_PERTURB, 0xa5); /* freed memory reads back as 0x5a5a...: a use after free shows */
    return tu_main(regress_suite(), 1);
}
