/* Self-test of the real-ZooKeeper harness: ensemble control, four-letter
 * words, the fault-injecting proxy and session expiry. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ensemble.h"
#include "proxy.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zookeeper/proto.h>
#include <zookeeper/zookeeper.h>

/* Generous: two cores are shared with other engineers' ensembles. */
#define CONNECT_MS 30000
#define ELECT_MS 60000

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------ a raw client with events */

struct zc {
    zhandle_t *zh;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int connecting, connected, expired; /* session events seen, by kind */
};

static void zc_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh; (void)path;
    struct zc *c = ctx;
    if (type != ZOO_SESSION_EVENT)
        return;
    pthread_mutex_lock(&c->mu);
    if (state == ZOO_CONNECTING_STATE)
        c->connecting++;
    else if (state == ZOO_CONNECTED_STATE)
        c->connected++;
    else if (state == ZOO_EXPIRED_SESSION_STATE)
        c->expired++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Waits until *counter exceeds `above`; 0 or -ETIMEDOUT. */
static int zc_wait(struct zc *c, int *counter, int above, int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    int r = 0;
    pthread_mutex_lock(&c->mu);
    while (*counter <= above && r == 0)
        r = pthread_cond_timedwait(&c->cv, &c->mu, &dl);
    int ok = *counter > above;
    pthread_mutex_unlock(&c->mu);
    return ok ? 0 : -ETIMEDOUT;
}

static int zc_count(struct zc *c, int *counter)
{
    pthread_mutex_lock(&c->mu);
    int n = *counter;
    pthread_mutex_unlock(&c->mu);
    return n;
}

static struct zc *zc_open(const char *hosts, int session_ms)
{
    struct zc *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    c->zh = zookeeper_init(hosts, zc_watcher, session_ms, NULL, c, 0);
    ck_assert_msg(c->zh != NULL, "zookeeper_init(%s) failed", hosts);
    ck_assert_msg(zc_wait(c, &c->connected, 0, CONNECT_MS) == 0, "no connection to %s", hosts);
    return c;
}

static void zc_close(struct zc *c)
{
    if (!c)
        return;
    zookeeper_close(c->zh);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Retries reads through connection loss while the client fails over. */
static int exists_retry(zhandle_t *zh, const char *path)
{
    long long deadline = now_ms() + CONNECT_MS;
    int rc;
    while ((rc = zoo_exists(zh, path, 0, NULL)) == ZCONNECTIONLOSS && now_ms() < deadline)
        nap(100);
    return rc;
}

static void unique_path(char *buf, size_t len, const char *tag)
{
    snprintf(buf, len, "/zkh-%s-%d-%lld", tag, (int)getpid(), now_ms());
}

/* --------------------------------------------------- shared-ensemble tests */

START_TEST(t_create_get)
{
    zkh_ensemble *e = zkh_shared();
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(zkh_node_count(e), 3);
    ck_assert_ptr_nonnull(strstr(zkh_ensemble_hosts(e), zkh_node_hostport(e, 2)));
    struct zc *c = zc_open(zkh_ensemble_hosts(e), 10000);
    char path[128], got[64];
    unique_path(path, sizeof path, "cg");
    ck_assert_int_eq(zoo_create(c->zh, path, "hello", 5, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
    int len = sizeof got;
    struct Stat st;
    ck_assert_int_eq(zoo_get(c->zh, path, 0, got, &len, &st), ZOK);
    ck_assert_int_eq(len, 5);
    ck_assert_mem_eq(got, "hello", 5);
    ck_assert_int_eq(zoo_delete(c->zh, path, -1), ZOK);
    zc_close(c);
}
END_TEST

START_TEST(t_four_letter_and_watches)
{
    zkh_ensemble *e = zkh_shared();
    ck_assert_ptr_nonnull(e);
    int l = zkh_leader(e);
    ck_assert_int_ge(l, 0);
    char buf[2048];
    ck_assert_int_gt(zkh_four_letter(zkh_node_hostport(e, l), "srvr", buf, sizeof buf, 5000), 0);
    ck_assert_ptr_nonnull(strstr(buf, "Mode: leader"));
    ck_assert_int_gt(zkh_four_letter(zkh_node_hostport(e, 0), "mntr", buf, sizeof buf, 5000), 0);
    ck_assert_ptr_nonnull(strstr(buf, "zk_version"));
    ck_assert_int_eq(zkh_wait_quorum(e, 5000), 0);

    struct zc *c = zc_open(zkh_ensemble_hosts(e), 10000);
    char path[128];
    unique_path(path, sizeof path, "watch");
    long before = zkh_watch_count(e);
    ck_assert_int_ge(before, 0);
    ck_assert_int_eq(zoo_exists(c->zh, path, 1, NULL), ZNONODE); /* leaves a creation watch */
    ck_assert_int_ge(zkh_watch_count(e), before + 1);
    char *text = NULL;
    ck_assert_int_eq(zkh_watches_by_path(e, &text), 0);
    ck_assert_msg(strstr(text, path) != NULL, "%s not in wchp output:\n%s", path, text);
    free(text);
    zc_close(c);
}
END_TEST

/* One proxy in front of one server, so the client's reconnects land on the
 * same server and what it reads there reflects what the server applied. */
START_TEST(t_proxy_drop_request)
{
    zkh_ensemble *e = zkh_shared();
    ck_assert_ptr_nonnull(e);
    zkh_proxy *p;
    ck_assert_int_eq(zkh_proxy_start(&p, zkh_node_hostport(e, 0)), 0);
    struct zc *c = zc_open(zkh_proxy_hostport(p), 10000);
    char path[128];
    unique_path(path, sizeof path, "dropreq");
    long seen = zkh_proxy_requests_seen(p, ZOO_CREATE_OP);
    zkh_proxy_drop_request(p, ZOO_CREATE_OP, 1);
    ck_assert_int_eq(zoo_create(c->zh, path, "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0),
                     ZCONNECTIONLOSS);
    ck_assert_int_eq(zkh_proxy_faults_fired(p), 1);
    ck_assert_int_eq(zkh_proxy_requests_seen(p, ZOO_CREATE_OP), seen + 1);
    ck_assert_int_eq(exists_retry(c->zh, path), ZNONODE);
    /* The fault is spent: the next create goes through. */
    ck_assert_int_eq(zoo_create(c->zh, path, "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
    ck_assert_int_eq(zkh_proxy_faults_fired(p), 1);
    zoo_delete(c->zh, path, -1);
    zc_close(c);
    zkh_proxy_stop(p);
}
END_TEST

START_TEST(t_proxy_drop_reply)
{
    zkh_ensemble *e = zkh_shared();
    ck_assert_ptr_nonnull(e);
    zkh_proxy *p;
    ck_assert_int_eq(zkh_proxy_start(&p, zkh_node_hostport(e, 1)), 0);
    struct zc *c = zc_open(zkh_proxy_hostport(p), 10000);
    char path[128];
    unique_path(path, sizeof path, "droprep");
    zkh_proxy_drop_reply(p, ZOO_CREATE_OP, 1);
    ck_assert_int_eq(zoo_create(c->zh, path, "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0),
                     ZCONNECTIONLOSS);
    ck_assert_int_eq(zkh_proxy_faults_fired(p), 1);
    ck_assert_int_eq(exists_retry(c->zh, path), ZOK); /* applied all the same */
    ck_assert_int_eq(zoo_delete(c->zh, path, -1), ZOK);
    zc_close(c);
    zkh_proxy_stop(p);
}
END_TEST

START_TEST(t_proxy_cut)
{
    zkh_ensemble *e = zkh_shared();
    ck_assert_ptr_nonnull(e);
    zkh_proxy *p;
    ck_assert_int_eq(zkh_proxy_start(&p, zkh_node_hostport(e, 2)), 0);
    struct zc *c = zc_open(zkh_proxy_hostport(p), 10000);
    int64_t sid = zoo_client_id(c->zh)->client_id;
    int conn0 = zc_count(c, &c->connected);
    ck_assert_int_eq(zkh_proxy_connections(p), 1);
    zkh_proxy_cut(p);
    ck_assert_int_eq(zc_wait(c, &c->connecting, 0, CONNECT_MS), 0);
    ck_assert_int_eq(zc_wait(c, &c->connected, conn0, CONNECT_MS), 0);
    ck_assert(zoo_client_id(c->zh)->client_id == sid); /* same session resumed */
    ck_assert_int_eq(zc_count(c, &c->expired), 0);
    zc_close(c);
    zkh_proxy_stop(p);
}
END_TEST

START_TEST(t_proxy_blackhole)
{
    zkh_ensemble *e = zkh_shared();
    ck_assert_ptr_nonnull(e);
    zkh_proxy *p;
    ck_assert_int_eq(zkh_proxy_start(&p, zkh_node_hostport(e, 0)), 0);
    struct zc *c = zc_open(zkh_proxy_hostport(p), 4000);
    int conn0 = zc_count(c, &c->connected);
    long long t0 = now_ms();
    zkh_proxy_blackhole(p, 1);
    /* Silence, not a reset: the client notices only by its own timer. */
    ck_assert_int_eq(zc_wait(c, &c->connecting, 0, CONNECT_MS), 0);
    ck_assert_int_ge(now_ms() - t0, 1000);
    /* The client queues the CONNECTING event before it resets zoo_state(),
     * so the state may lag the event briefly; after that it must stay off
     * CONNECTED (a retry may sit in ASSOCIATING on a held socket). */
    long long until = now_ms() + 5000;
    while (zoo_state(c->zh) == ZOO_CONNECTED_STATE && now_ms() < until)
        nap(10);
    ck_assert_int_ne(zoo_state(c->zh), ZOO_CONNECTED_STATE);
    zkh_proxy_blackhole(p, 0);
    /* Back in service: reconnects, or learns the session expired meanwhile. */
    long long deadline = now_ms() + CONNECT_MS;
    while (zc_count(c, &c->connected) == conn0 && zc_count(c, &c->expired) == 0 &&
           now_ms() < deadline)
        zc_wait(c, &c->connected, conn0, 200);
    ck_assert_msg(zc_count(c, &c->connected) > conn0 || zc_count(c, &c->expired) > 0,
                  "client neither reconnected nor expired after the partition healed");
    zc_close(c);
    zkh_proxy_stop(p);
}
END_TEST

START_TEST(t_expire_session)
{
    zkh_ensemble *e = zkh_shared();
    ck_assert_ptr_nonnull(e);
    struct zc *c = zc_open(zkh_ensemble_hosts(e), 10000);
    const clientid_t *id = zoo_client_id(c->zh);
    ck_assert_int_eq(zkh_expire_session(zkh_ensemble_hosts(e), id->client_id, id->passwd,
                                        (int)sizeof id->passwd, CONNECT_MS),
                     0);
    ck_assert_int_eq(zc_wait(c, &c->expired, 0, CONNECT_MS), 0);
    ck_assert_int_eq(zoo_state(c->zh), ZOO_EXPIRED_SESSION_STATE);
    zc_close(c);
}
END_TEST

/* ------------------------------------------- tests with their own ensemble */

static int local_backend(void)
{
    const char *b = getenv("ZKH_BACKEND");
    return !b || !*b || !strcmp(b, "local");
}

/* Local: a fresh ensemble to break. Docker/external manage a single ensemble,
 * so fault tests run on the shared one there (and skip if it can't be
 * controlled, unless CI=true). NULL means skip. */
static zkh_ensemble *fault_ensemble(int nodes)
{
    zkh_ensemble *e = NULL;
    if (!local_backend()) {
        e = zkh_shared();
        ck_assert_ptr_nonnull(e);
        if (nodes != zkh_node_count(e) || !zkh_can_control(e)) {
            ck_assert_msg(!zkh_ci(), "CI=true: fault test cannot run on this backend");
            fprintf(stderr, "SKIP: fault test needs a controllable %d-node ensemble\n", nodes);
            return NULL;
        }
        return e;
    }
    zkh_options o;
    zkh_options_init(&o);
    o.nodes = nodes;
    ck_assert_int_eq(zkh_ensemble_start(&e, &o), 0);
    return e;
}

static void fault_done(zkh_ensemble *e)
{
    if (local_backend())
        zkh_ensemble_stop(e);
}

static int wait_new_leader(zkh_ensemble *e, int old, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        int l = zkh_leader(e);
        if (l >= 0 && l != old)
            return l;
        if (now_ms() > deadline)
            return -1;
        nap(100);
    }
}

START_TEST(t_leader_failover)
{
    zkh_ensemble *e = fault_ensemble(3);
    if (!e)
        return;
    ck_assert(zkh_can_control(e));
    int old = zkh_leader(e);
    ck_assert_int_ge(old, 0);
    struct zc *c = zc_open(zkh_ensemble_hosts(e), 10000);
    ck_assert_int_eq(zkh_node_kill9(e, old), 0);
    ck_assert(!zkh_node_running(e, old));
    char buf[256];
    ck_assert_int_lt(zkh_four_letter(zkh_node_hostport(e, old), "srvr", buf, sizeof buf, 2000),
                     0);
    int nl = wait_new_leader(e, old, ELECT_MS);
    ck_assert_msg(nl >= 0, "no new leader after kill -9 of node %d", old);

    /* The surviving pair serves writes. */
    char path[128];
    unique_path(path, sizeof path, "failover");
    long long deadline = now_ms() + CONNECT_MS;
    int rc;
    while ((rc = zoo_create(c->zh, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0)) ==
               ZCONNECTIONLOSS &&
           now_ms() < deadline)
        nap(100);
    ck_assert_msg(rc == ZOK || rc == ZNODEEXISTS, "create after failover: %s", zerror(rc));

    ck_assert_int_eq(zkh_node_start(e, old), 0);
    if (local_backend())
        ck_assert_int_eq(zkh_node_start(e, old), -EALREADY);
    ck_assert_int_eq(zkh_wait_quorum(e, ELECT_MS), 0);
    ck_assert(zkh_node_running(e, old));
    ck_assert_int_gt(zkh_four_letter(zkh_node_hostport(e, old), "srvr", buf, sizeof buf, 5000),
                     0);
    ck_assert_ptr_nonnull(strstr(buf, "Mode: follower"));
    if (local_backend())
        ck_assert_int_eq(zkh_node_disconnect(e, 0), -ENOTSUP);
    zc_close(c);
    fault_done(e);
}
END_TEST

START_TEST(t_pause_resume_stop)
{
    zkh_ensemble *e = fault_ensemble(3);
    if (!e)
        return;
    int l = zkh_leader(e);
    ck_assert_int_ge(l, 0);
    int f = (l + 1) % 3;
    char buf[512];

    ck_assert_int_eq(zkh_node_pause(e, f), 0);
    ck_assert(!zkh_node_running(e, f));
    ck_assert_int_eq(zkh_four_letter(zkh_node_hostport(e, f), "srvr", buf, sizeof buf, 1500),
                     -ETIMEDOUT);
    ck_assert_int_eq(zkh_wait_quorum(e, 10000), 0); /* the other two still form a quorum */
    ck_assert_int_eq(zkh_node_resume(e, f), 0);
    ck_assert_int_eq(zkh_wait_quorum(e, ELECT_MS), 0);
    ck_assert_int_gt(zkh_four_letter(zkh_node_hostport(e, f), "srvr", buf, sizeof buf, 5000),
                     0);
    ck_assert_ptr_nonnull(strstr(buf, "Mode: "));

    ck_assert_int_eq(zkh_node_stop(e, f), 0);
    ck_assert(!zkh_node_running(e, f));
    ck_assert_int_lt(zkh_four_letter(zkh_node_hostport(e, f), "srvr", buf, sizeof buf, 2000), 0);
    ck_assert_int_eq(zkh_node_stop(e, f), 0); /* idempotent */
    if (local_backend())
        ck_assert_int_eq(zkh_node_pause(e, f), -ESRCH);
    ck_assert_int_eq(zkh_node_start(e, f), 0);
    ck_assert_int_eq(zkh_wait_quorum(e, ELECT_MS), 0);
    ck_assert(zkh_node_running(e, f));
    fault_done(e);
}
END_TEST

/* Network partition of one node: only the docker backend can do it. */
START_TEST(t_disconnect_connect)
{
    const char *b = getenv("ZKH_BACKEND");
    if (!b || strcmp(b, "docker"))
        return;
    zkh_ensemble *e = fault_ensemble(3);
    if (!e)
        return;
    int l = zkh_leader(e);
    ck_assert_int_ge(l, 0);
    int f = (l + 1) % 3;
    ck_assert_int_eq(zkh_node_disconnect(e, f), 0);
    char buf[512];
    ck_assert_int_lt(zkh_four_letter(zkh_node_hostport(e, f), "srvr", buf, sizeof buf, 3000), 0);
    ck_assert_int_eq(zkh_node_connect(e, f), 0);
    ck_assert_int_eq(zkh_wait_quorum(e, ELECT_MS), 0);
    ck_assert_int_gt(zkh_four_letter(zkh_node_hostport(e, f), "srvr", buf, sizeof buf, 5000), 0);
    fault_done(e);
}
END_TEST

START_TEST(t_single_node)
{
    if (!local_backend())
        return; /* exercises the local backend's standalone mode */
    zkh_ensemble *e = fault_ensemble(1);
    ck_assert_int_eq(zkh_node_count(e), 1);
    ck_assert_int_eq(zkh_leader(e), 0); /* standalone counts as leader */
    ck_assert_str_eq(zkh_ensemble_hosts(e), zkh_node_hostport(e, 0));
    struct zc *c = zc_open(zkh_ensemble_hosts(e), 10000);
    ck_assert_int_eq(zoo_create(c->zh, "/single", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
    zc_close(c);
    const char *dir = zkh_ensemble_dir(e);
    ck_assert_ptr_nonnull(dir);
    char saved[4096];
    snprintf(saved, sizeof saved, "%s", dir);
    ck_assert_int_eq(access(saved, F_OK), 0);
    zkh_ensemble_stop(e);
    if (!getenv("ZKH_KEEP"))
        ck_assert_int_ne(access(saved, F_OK), 0); /* temp dir removed */
}
END_TEST

static Suite *harness_suite(void)
{
    Suite *s = suite_create("harness");
    TCase *tc = tcase_create("shared");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, t_create_get);
    tcase_add_test(tc, t_four_letter_and_watches);
    tcase_add_test(tc, t_proxy_drop_request);
    tcase_add_test(tc, t_proxy_drop_reply);
    tcase_add_test(tc, t_proxy_cut);
    tcase_add_test(tc, t_proxy_blackhole);
    tcase_add_test(tc, t_expire_session);
    suite_add_tcase(s, tc);

    tc = tcase_create("faults");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, t_leader_failover);
    tcase_add_test(tc, t_pause_resume_stop);
    tcase_add_test(tc, t_disconnect_connect);
    tcase_add_test(tc, t_single_node);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    /* Room above the 20-tick default (4 s at 200 ms) for clients asking 10 s. */
    setenv("ZKH_MAX_SESSION_TIMEOUT_MS", "30000", 0);
    /* Started here, in the parent, so forked test children share it. */
    zkh_ensemble *e = zkh_shared();
    if (!e) {
        fprintf(stderr, "test_harness: could not start the shared ensemble\n");
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(harness_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
