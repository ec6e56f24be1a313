/* Fault tier (make check-faults) for leader election, each test on its own
 * 3-node ensemble. The property under test: never two leaders un-notified.
 * Whenever another participant is granted leadership, the former leader has
 * already been told LOST (or still leads, and then nobody else does).
 *   - the leader's session expired on the servers: LOST, a new leader with a
 *     larger token, the old one can stand again on its new session;
 *   - the leader partitioned away (fault proxy): it hears LOST (presumed, from
 *     its own timer) no later than the other participant is granted;
 *   - kill -9 of the ZooKeeper leader: sessions survive; either the leader
 *     keeps its term (RECONNECTED, nobody else granted) or it heard LOST first. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "election_util.h"
#include "testutil.h"
#include "proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAULT_MAX_SESSION_MS 30000

/* When the running test started: tu_expect_event times its dump from it. */
static long long t0;

/* a leads path (its SUSPENDED / RECONNECTED / LOST into aev) and b waits its
 * turn (its grant into bev), both queued. */
typedef struct duel {
    zkc_election *ea, *eb;
    tu_events aev, bev;
    int64_t ta; /* a's term token */
} duel;

static void duel_start(duel *d, zkc_client *a, zkc_client *b, const char *path)
{
    tu_events_init(&d->aev);
    tu_events_init(&d->bev);
    d->ea = mkel(a, path, "a", NULL);
    d->eb = mkel(b, path, "b", NULL);
    zkc_election_set_listener(d->ea, ev_cb, &d->aev);
    ck_assert_int_eq(zkc_election_lead(d->ea, tu_ms(10000), &d->ta), 0);
    ck_assert_int_eq(zkc_election_lead_async(d->eb, ZKC_FOREVER, lead_cb, &d->bev), 0);
    ck_assert(tu_wait_queue_count(b, path, 2, tu_ms(10000)));
}

/* ------------------------------------------------------------ session expiry */

START_TEST(t_leader_session_expired)
{
    zkh_ensemble *e = tu_fault_ensemble(3, FAULT_MAX_SESSION_MS);
    if (!e)
        return;
    t0 = tu_now_ms();
    const char *hosts = zkh_ensemble_hosts(e);
    char path[128];
    tu_unique_path(path, sizeof path, "el-expiry");
    /* a is pinned to one server and its session is expired through that
     * server. A client that takes a session over on the server where the
     * session is connected makes ZooKeeper close the old connection at once,
     * before the takeover's closeSession is even sent: a hears SUSPENDED a
     * quorum commit and b's reads ahead of b's grant. Through another server,
     * nothing tells a until the closeSession is applied on a's server, and
     * that races with b's server applying it and firing b's watch (CI once
     * saw b granted 1 ms first): a session closed by somebody else ends
     * without warning, which README "Leader election" states. */
    const char *a_host = zkh_node_hostport(e, 0);
    zkc_client *a = tu_client_t(a_host, tu_ms(TU_SESSION_MS), 0), *b = tu_client_t(hosts, tu_ms(TU_SESSION_MS), 0);
    tu_events cev;
    tu_events_init(&cev);
    zkc_client_set_listener(a, tu_state_listener, &cev);
    duel d;
    duel_start(&d, a, b, path);
    zkc_election *ea = d.ea, *eb = d.eb;
    tu_events *aev = &d.aev, *bev = &d.bev;
    int64_t ta = d.ta;

    int64_t sid;
    char pw[16];
    int pwlen;
    ck_assert_int_eq(zkc_client_session(a, &sid, pw, &pwlen), 0);
    ck_assert_int_eq(zkh_expire_session(a_host, sid, pw, pwlen, tu_ms(20000)), 0);
    t0 = tu_now_ms();
    int li = tu_expect_event(aev, ZKC_ELECTION_EVENT_LOST, 0, tu_ms(20000), "election LOST after expiry", t0);
    int gi = tu_expect_event(bev, 0, 0, tu_ms(20000), "b granted after a's expiry", t0);
    long long lost_at, granted_at;
    int64_t tb;
    tu_events_get(aev, li, &lost_at, NULL);
    tu_events_get(bev, gi, &granted_at, &tb);
    /* The expiry takes the session over first: a hears SUSPENDED (in doubt)
     * before the servers delete its node and b is granted. */
    int si = tu_events_wait(aev, ZKC_ELECTION_EVENT_SUSPENDED, 0, 0);
    long long doubt_at = lost_at;
    if (si >= 0 && si < li)
        tu_events_get(aev, si, &doubt_at, NULL);
    fprintf(stderr, "t_leader_session_expired: a in doubt at %lld ms, LOST at %lld ms, b granted at %lld ms\n",
            doubt_at - t0, lost_at - t0, granted_at - t0);
    ck_assert_msg(doubt_at <= granted_at, "b was granted %lld ms before a heard anything", doubt_at - granted_at);
    ck_assert(tb > ta);
    ck_assert_int_eq(zkc_election_is_leader(ea), 0);
    int64_t t;
    ck_assert_int_eq(zkc_election_token(ea, &t), ZKC_ENOTHELD);
    ck_assert(wait_leader(a, path, "b", tu_ms(10000)));
    /* a stands again on its new session: behind b, then leads after b. */
    int lost = tu_expect_event(&cev, ZKC_STATE_LOST, 0, tu_ms(20000), "client LOST", t0);
    tu_expect_event(&cev, ZKC_STATE_CONNECTED, lost + 1, tu_ms(20000), "new session", t0);
    ck_assert_int_eq(zkc_election_resign(ea), ZKC_ESESSIONLOST);
    ck_assert_int_eq(zkc_election_lead(ea, 0, NULL), ZKC_ETIMEDOUT);
    ck_assert_int_eq(zkc_election_resign(eb), 0);
    ck_assert_int_eq(zkc_election_lead(ea, tu_ms(10000), &t), 0);
    ck_assert(t > tb);
    /* b's last write (its resign) came before a's new term: b's server may
     * not show that term yet */
    ck_assert(wait_leader(b, path, "a", tu_ms(10000)));
    zkc_election_leader_info in;
    ck_assert_int_eq(zkc_election_leader(b, path, &in), 0);
    ck_assert_int_eq(in.session_id, tu_session_id(a));
    ck_assert(in.session_id != sid);
    zkc_election_leader_free(&in);
    ck_assert_int_eq(tu_events_count(aev, ZKC_ELECTION_EVENT_LOST), 1);
    zkc_election_destroy(ea);
    zkc_election_destroy(eb);
    zkc_client_destroy(a);
    zkc_client_destroy(b);
    ck_assert_int_eq(tu_events_total(bev), 1);
    tu_events_destroy(&cev);
    tu_events_destroy(aev);
    tu_events_destroy(bev);
    tu_fault_ensemble_done(e);
}
END_TEST

/* ------------------------------------------------------------ partitioned leader */

START_TEST(t_leader_partitioned)
{
    zkh_ensemble *e = tu_fault_ensemble(3, FAULT_MAX_SESSION_MS);
    if (!e)
        return;
    const char *hosts = zkh_ensemble_hosts(e);
    char path[128];
    tu_unique_path(path, sizeof path, "el-partition");
    zkh_proxy *p;
    ck_assert_int_eq(zkh_proxy_start(&p, zkh_node_hostport(e, 0)), 0);
    zkc_client *a = tu_client_t(zkh_proxy_hostport(p), tu_ms(TU_SESSION_MS), 0);
    zkc_client *b = tu_client_t(hosts, tu_ms(TU_SESSION_MS), 0);
    const int T = zkc_client_session_timeout(a);
    duel d;
    duel_start(&d, a, b, path);
    zkc_election *ea = d.ea, *eb = d.eb;
    tu_events *aev = &d.aev, *bev = &d.bev;
    int64_t ta = d.ta;

    zkh_proxy_blackhole(p, 1);
    t0 = tu_now_ms();
    int li = tu_expect_event(aev, ZKC_ELECTION_EVENT_LOST, 0, 3 * T, "LOST of the partitioned leader", t0);
    int gi = tu_expect_event(bev, 0, 0, 3 * T, "b granted", t0);
    long long lost_at, granted_at;
    int64_t tb;
    tu_events_get(aev, li, &lost_at, NULL);
    tu_events_get(bev, gi, &granted_at, &tb);
    fprintf(stderr, "t_leader_partitioned: T=%d ms; a LOST after %lld ms, b granted after %lld ms\n", T,
            lost_at - t0, granted_at - t0);
    ck_assert_msg(lost_at <= granted_at, "b led %lld ms before a heard LOST", lost_at - granted_at);
    ck_assert_msg(lost_at - t0 <= T, "LOST %lld ms into the partition, later than the session timeout %d",
                  lost_at - t0, T);
    int si = tu_events_wait(aev, ZKC_ELECTION_EVENT_SUSPENDED, 0, 0);
    ck_assert_msg(si >= 0 && si < li, "no SUSPENDED before LOST");
    ck_assert(tb > ta);
    ck_assert_int_eq(zkc_election_is_leader(ea), 0);

    zkh_proxy_blackhole(p, 0);
    ck_assert(wait_leader(b, path, "b", tu_ms(10000)));
    ck_assert_int_eq(tu_events_count(aev, ZKC_ELECTION_EVENT_LOST), 1);
    zkc_election_destroy(ea);
    zkc_election_destroy(eb);
    zkc_client_destroy(a);
    zkc_client_destroy(b);
    zkh_proxy_stop(p);
    tu_events_destroy(aev);
    tu_events_destroy(bev);
    tu_fault_ensemble_done(e);
}
END_TEST

/* ------------------------------------------------------------ ZooKeeper leader kill -9 */

START_TEST(t_zk_leader_killed)
{
    zkh_ensemble *e = tu_fault_ensemble(3, FAULT_MAX_SESSION_MS);
    if (!e)
        return;
    const char *hosts = zkh_ensemble_hosts(e);
    char path[128];
    tu_unique_path(path, sizeof path, "el-zkkill");
    /* Sessions long enough to outlive the quorum's re-election. */
    zkc_client *a = tu_client_t(hosts, tu_ms(10000), 0), *b = tu_client_t(hosts, tu_ms(10000), 0);
    duel d;
    duel_start(&d, a, b, path);
    zkc_election *ea = d.ea, *eb = d.eb;
    tu_events *aev = &d.aev, *bev = &d.bev;
    int64_t ta = d.ta;

    for (int round = 0; round < 2; round++) {
        int leader = zkh_leader(e);
        ck_assert_int_ge(leader, 0);
        ck_assert_int_eq(zkh_node_kill9(e, leader), 0);
        t0 = tu_now_ms();
        ck_assert_int_eq(zkh_wait_quorum(e, tu_ms(30000)), 0);
        ck_assert_int_eq(zkh_node_start(e, leader), 0);
        ck_assert_int_eq(zkh_wait_quorum(e, tu_ms(30000)), 0);
        /* Settled: the term survived (same session), or a heard LOST no later
         * than b was granted. Wait until one of the two is visible. */
        long long deadline = tu_now_ms() + tu_ms(30000);
        while (tu_now_ms() < deadline && !zkc_election_is_leader(ea) && tu_events_total(bev) == 0)
            tu_nap_ms(50);
        int li = tu_events_wait(aev, ZKC_ELECTION_EVENT_LOST, 0, 0);
        /* a told LOST: b's grant follows (its watch fires once the node goes). */
        int gi = tu_events_wait(bev, 0, 0, li >= 0 ? tu_ms(30000) : 0);
        fprintf(stderr, "t_zk_leader_killed round %d: killed server %d; a %s, b %s\n", round, leader,
                li >= 0 ? "LOST" : zkc_election_is_leader(ea) ? "still leads" : "in doubt",
                gi >= 0 ? "granted" : "waiting");
        if (gi >= 0) {
            ck_assert_msg(li >= 0, "b was granted while a was never told LOST");
            long long lost_at, granted_at;
            tu_events_get(aev, li, &lost_at, NULL);
            tu_events_get(bev, gi, &granted_at, NULL);
            ck_assert_msg(lost_at <= granted_at, "b led %lld ms before a heard LOST", lost_at - granted_at);
            break;
        }
        ck_assert_msg(li < 0, "a heard LOST but b was not granted within 30 s");
        ck_assert_int_eq(zkc_election_is_leader(ea), 1);
        int64_t t;
        ck_assert_int_eq(zkc_election_token(ea, &t), 0);
        ck_assert_int_eq(t, ta);
        ck_assert(wait_leader(b, path, "a", tu_ms(10000)));
    }
    /* Hand-off still works after the kills. */
    if (tu_events_total(bev) == 0) {
        ck_assert_int_eq(zkc_election_resign(ea), 0);
        tu_expect_event(bev, 0, 0, tu_ms(10000), "b granted after a resigned", t0);
    }
    int64_t tb;
    tu_events_get(bev, 0, NULL, &tb);
    ck_assert(tb > ta);
    zkc_election_destroy(ea);
    zkc_election_destroy(eb);
    zkc_client_destroy(a);
    zkc_client_destroy(b);
    ck_assert_int_eq(tu_events_total(bev), 1);
    tu_events_destroy(aev);
    tu_events_destroy(bev);
    tu_fault_ensemble_done(e);
}
END_TEST

#define FAULT_CASE(s, fn) TU_CASE(s, fn, 240)

static Suite *election_faults_suite(void)
{
    Suite *s = suite_create("election_faults");
    FAULT_CASE(s, t_leader_session_expired);
    FAULT_CASE(s, t_leader_partitioned);
    FAULT_CASE(s, t_zk_leader_killed);
    return s;
}

int main(void)
{
    return tu_main(election_faults_suite(), TU_OWN_ENSEMBLES);
}
