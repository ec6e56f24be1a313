/* Leader election against a real 3-node ensemble (shared by the suite): lead,
 * resign and hand-off in queue order, term tokens strictly increasing, who
 * leads readable by anyone (blocking and callback forms), timeout and cancel
 * leave nothing behind, callbacks exactly once, bad input, a Curator
 * LeaderLatch node (written raw, as Curator names it) leading ahead of us,
 * LOST when the leader's node is deleted by someone else, writes guarded by a
 * term refused once it ended. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "election_util.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */

static void resign_cb(zkc_election *e, int status, void *ud)
{
    (void)e;
    tu_events_add(ud, status, 0);
}

/* Who leads, as client c reads it; asserts the read succeeds. */
static void expect_leader(zkc_client *c, const char *path, const char *id, const char *data, int64_t token)
{
    zkc_election_leader_info in;
    int rc = zkc_election_leader(c, path, &in);
    ck_assert_msg(rc == 0, "zkc_election_leader(%s): %s", path, zkc_errmsg());
    ck_assert_str_eq(in.participant_id, id);
    if (data) {
        ck_assert_int_eq(in.len, (int)strlen(data));
        ck_assert(memcmp(in.data, data, strlen(data)) == 0);
    } else {
        ck_assert_ptr_null(in.data);
        ck_assert_int_eq(in.len, 0);
    }
    if (token)
        ck_assert_int_eq(in.token, token);
    ck_assert(in.node && strstr(in.node, "-latch-"));
    zkc_election_leader_free(&in);
}

/* ------------------------------------------------------------ lead, resign, hand-off */

START_TEST(t_handoff_order)
{
    char path[128];
    tu_unique_path(path, sizeof path, "el-handoff");
    zkc_client *c[3], *reader = tu_client(tu_hosts());
    zkc_election *e[3];
    static const char *ids[3] = {"alpha", "beta", "gamma"};
    static const char *data[3] = {"10.0.0.1:8080", NULL, "g"};
    for (int i = 0; i < 3; i++) {
        c[i] = tu_client(tu_hosts());
        e[i] = mkel(c[i], path, ids[i], data[i]);
    }
    int64_t t0;
    ck_assert_int_eq(zkc_election_lead(e[0], tu_ms(10000), &t0), 0);
    ck_assert_int_eq(zkc_election_is_leader(e[0]), 1);
    /* One events log for both waiters: the order they are granted in. */
    tu_events ev;
    tu_events_init(&ev);
    ck_assert_int_eq(zkc_election_lead_async(e[1], ZKC_FOREVER, lead_cb, &ev), 0);
    ck_assert(tu_wait_queue_count(reader, path, 2, tu_ms(10000)));
    ck_assert_int_eq(zkc_election_lead_async(e[2], ZKC_FOREVER, lead_cb, &ev), 0);
    ck_assert(tu_wait_queue_count(reader, path, 3, tu_ms(10000)));
    ck_assert_int_eq(tu_events_total(&ev), 0);
    ck_assert(wait_leader(reader, path, "alpha", tu_ms(10000)));
    expect_leader(reader, path, "alpha", data[0], t0);

    /* Resign: beta (queued first) leads, not gamma. */
    ck_assert_int_eq(zkc_election_resign(e[0]), 0);
    ck_assert_int_eq(zkc_election_is_leader(e[0]), 0);
    ck_assert_int_eq(tu_events_wait_total(&ev, 1, tu_ms(10000)), 1);
    ck_assert_int_eq(zkc_election_is_leader(e[1]), 1);
    ck_assert_int_eq(zkc_election_is_leader(e[2]), 0);
    int64_t t1, t2;
    tu_events_get(&ev, 0, NULL, &t1);
    ck_assert_int_eq(ev.ev[0], 0);
    ck_assert(t1 > t0);
    int64_t tk;
    ck_assert_int_eq(zkc_election_token(e[1], &tk), 0);
    ck_assert_int_eq(tk, t1);
    ck_assert(wait_leader(reader, path, "beta", tu_ms(10000)));
    expect_leader(reader, path, "beta", NULL, t1);

    ck_assert_int_eq(zkc_election_resign(e[1]), 0);
    ck_assert_int_eq(tu_events_wait_total(&ev, 2, tu_ms(10000)), 2);
    tu_events_get(&ev, 1, NULL, &t2);
    ck_assert_int_eq(ev.ev[1], 0);
    ck_assert(t2 > t1);
    ck_assert_int_eq(zkc_election_is_leader(e[2]), 1);
    ck_assert(wait_leader(reader, path, "gamma", tu_ms(10000)));
    expect_leader(reader, path, "gamma", "g", t2);

    /* The first participant stands again: behind gamma. */
    ck_assert_int_eq(zkc_election_lead(e[0], 0, NULL), ZKC_ETIMEDOUT);
    ck_assert_int_eq(zkc_election_resign(e[2]), 0);
    ck_assert(tu_wait_queue_count(reader, path, 0, tu_ms(10000)));
    zkc_election_leader_info in;
    ck_assert_int_eq(zkc_election_leader(reader, path, &in), ZKC_ENONODE);
    for (int i = 0; i < 3; i++) {
        zkc_election_destroy(e[i]);
        zkc_client_destroy(c[i]);
    }
    /* Callbacks ran once each, nothing more after everything is gone. */
    ck_assert_int_eq(tu_events_total(&ev), 2);
    zkc_client_destroy(reader);
    tu_events_destroy(&ev);
}
END_TEST

START_TEST(t_token_increasing)
{
    char path[128];
    tu_unique_path(path, sizeof path, "el-token");
    zkc_client *c = tu_client(tu_hosts()), *c2 = tu_client(tu_hosts());
    zkc_election *e = mkel(c, path, "one", NULL), *f = mkel(c2, path, "two", NULL);
    tu_events rev;
    tu_events_init(&rev);
    int64_t last = 0;
    for (int i = 0; i < 6; i++) {
        zkc_election *x = i % 2 ? f : e;
        int64_t t, again;
        ck_assert_int_eq(zkc_election_lead(x, tu_ms(10000), &t), 0);
        ck_assert_msg(t > last, "term %d: token %lld not above %lld", i, (long long)t, (long long)last);
        /* Already leading: the same term. */
        ck_assert_int_eq(zkc_election_lead(x, 0, &again), 0);
        ck_assert_int_eq(again, t);
        ck_assert_int_eq(zkc_election_token(x, &again), 0);
        ck_assert_int_eq(again, t);
        last = t;
        if (i % 2) {
            /* The callback form: once, after the node is gone. */
            ck_assert_int_eq(zkc_election_resign_async(x, resign_cb, &rev), 0);
            ck_assert_int_eq(tu_events_wait_total(&rev, i / 2 + 1, tu_ms(10000)), i / 2 + 1);
            ck_assert_int_eq(rev.ev[i / 2], 0);
        } else {
            ck_assert_int_eq(zkc_election_resign(x), 0);
        }
        ck_assert_int_eq(zkc_election_token(x, &again), ZKC_ENOTHELD);
        ck_assert_int_eq(zkc_election_resign(x), ZKC_ENOTHELD);
    }
    zkc_election_destroy(e);
    zkc_election_destroy(f);
    zkc_client_destroy(c);
    zkc_client_destroy(c2);
    ck_assert_int_eq(tu_events_total(&rev), 3);
    tu_events_destroy(&rev);
}
END_TEST

/* ------------------------------------------------------------ timeout, cancel, destroy */

START_TEST(t_timeout_cancel_leave_nothing)
{
    char path[128];
    tu_unique_path(path, sizeof path, "el-timeout");
    zkc_client *c = tu_client(tu_hosts()), *c2 = tu_client(tu_hosts());
    zkc_election *lead = mkel(c, path, "leader", NULL), *w = mkel(c2, path, "waiter", NULL);
    ck_assert_int_eq(zkc_election_lead(lead, tu_ms(10000), NULL), 0);

    long long t0 = tu_now_ms();
    ck_assert_int_eq(zkc_election_lead(w, 300, NULL), ZKC_ETIMEDOUT);
    ck_assert(tu_now_ms() - t0 >= 300);
    ck_assert(tu_wait_queue_count(c, path, 1, tu_ms(10000)));
    ck_assert_int_eq(zkc_election_lead(w, 0, NULL), ZKC_ETIMEDOUT);
    ck_assert(tu_wait_queue_count(c, path, 1, tu_ms(10000)));

    /* Cancel: ECANCELED once, node gone; a second lead while one runs: EBUSY. */
    tu_events ev;
    tu_events_init(&ev);
    ck_assert_int_eq(zkc_election_lead_async(w, ZKC_FOREVER, lead_cb, &ev), 0);
    ck_assert(tu_wait_queue_count(c, path, 2, tu_ms(10000)));
    ck_assert_int_eq(zkc_election_lead(w, 0, NULL), ZKC_EBUSY);
    ck_assert_int_eq(zkc_election_cancel(w), 0);
    ck_assert_int_eq(tu_events_wait_total(&ev, 1, tu_ms(10000)), 1);
    ck_assert_int_eq(ev.ev[0], ZKC_ECANCELED);
    ck_assert(tu_wait_queue_count(c, path, 1, tu_ms(10000)));
    /* Cancel with nothing pending is harmless. */
    ck_assert_int_eq(zkc_election_cancel(w), 0);

    /* Destroy while standing: ECANCELED once. */
    ck_assert_int_eq(zkc_election_lead_async(w, ZKC_FOREVER, lead_cb, &ev), 0);
    ck_assert(tu_wait_queue_count(c, path, 2, tu_ms(10000)));
    zkc_election_destroy(w);
    ck_assert_int_eq(tu_events_wait_total(&ev, 2, tu_ms(10000)), 2);
    ck_assert_int_eq(ev.ev[1], ZKC_ECANCELED);
    ck_assert(tu_wait_queue_count(c, path, 1, tu_ms(10000)));

    /* Destroying the leader hands over at once (no session expiry needed). */
    zkc_election *w2 = mkel(c2, path, "waiter2", NULL);
    ck_assert_int_eq(zkc_election_lead_async(w2, ZKC_FOREVER, lead_cb, &ev), 0);
    ck_assert(tu_wait_queue_count(c, path, 2, tu_ms(10000)));
    zkc_election_destroy(lead);
    ck_assert_int_eq(tu_events_wait_total(&ev, 3, tu_ms(10000)), 3);
    ck_assert_int_eq(ev.ev[2], 0);
    /* A client destroyed under a pending lead cancels it once. */
    zkc_client *c3 = tu_client(tu_hosts());
    zkc_election *w3 = mkel(c3, path, "waiter3", NULL);
    ck_assert_int_eq(zkc_election_lead_async(w3, ZKC_FOREVER, lead_cb, &ev), 0);
    ck_assert(tu_wait_queue_count(c, path, 2, tu_ms(10000)));
    zkc_client_destroy(c3);
    ck_assert_int_eq(tu_events_wait_total(&ev, 4, tu_ms(10000)), 4);
    ck_assert_int_eq(ev.ev[3], ZKC_ECANCELED);
    zkc_election_destroy(w3);

    zkc_election_destroy(w2);
    zkc_client_destroy(c);
    zkc_client_destroy(c2);
    ck_assert_int_eq(tu_events_total(&ev), 4);
    tu_events_destroy(&ev);
}
END_TEST

/* ------------------------------------------------------------ bad input */

static void leader_cb(zkc_client *c, int status, const zkc_election_leader_info *in, void *ud)
{
    (void)c;
    tu_events_add(ud, status, status == 0 && in && strcmp(in->participant_id, "solo") == 0 ? in->token : -1);
}

START_TEST(t_bad_input)
{
    char path[128];
    tu_unique_path(path, sizeof path, "el-bad");
    zkc_client *c = tu_client(tu_hosts());
    zkc_election *e = NULL;
    ck_assert_int_eq(zkc_election_create(NULL, path, "x", NULL, 0, &e), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_create(c, path, "x", NULL, 0, NULL), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_create(c, NULL, "x", NULL, 0, &e), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_create(c, "relative", "x", NULL, 0, &e), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_create(c, "/trailing/", "x", NULL, 0, &e), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_create(c, "/a//b", "x", NULL, 0, &e), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_create(c, path, NULL, NULL, 0, &e), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_create(c, path, "", NULL, 0, &e), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_create(c, path, "x", NULL, 3, &e), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_create(c, path, "x", "abc", -1, &e), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_create(c, path, "x", "abc", 65537, &e), ZKC_EINVAL);
    static char longid[1100];
    memset(longid, 'i', sizeof longid - 1);
    ck_assert_int_eq(zkc_election_create(c, path, longid, NULL, 0, &e), ZKC_EINVAL);
    ck_assert_ptr_null(e);
    ck_assert_int_eq(zkc_election_lead(NULL, 0, NULL), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_lead_async(NULL, 0, lead_cb, NULL), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_cancel(NULL), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_resign(NULL), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_token(NULL, NULL), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_is_leader(NULL), 0);
    ck_assert_ptr_null(zkc_election_path(NULL));
    zkc_election_destroy(NULL);
    zkc_election_set_listener(NULL, NULL, NULL);
    zkc_election_leader_free(NULL);
    zkc_election_leader_info in;
    ck_assert_int_eq(zkc_election_leader(NULL, path, &in), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_leader(c, "bad", &in), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_leader(c, path, NULL), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_leader_async(c, path, NULL, NULL), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_leader(c, path, &in), ZKC_ENONODE);

    e = mkel(c, path, "solo", NULL);
    ck_assert_str_eq(zkc_election_path(e), path);
    ck_assert_int_eq(zkc_election_lead(e, -5, NULL), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_lead_async(e, 0, NULL, NULL), ZKC_EINVAL);
    int64_t t;
    ck_assert_int_eq(zkc_election_token(e, &t), ZKC_ENOTHELD);
    ck_assert_int_eq(zkc_election_resign(e), ZKC_ENOTHELD);
    ck_assert_int_eq(zkc_election_resign_async(e, NULL, NULL), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_resign_async(NULL, resign_cb, NULL), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_lead(e, 0, &t), 0);

    /* Who leads, callback form: exactly once, with the leader's token. */
    tu_events ev;
    tu_events_init(&ev);
    ck_assert_int_eq(zkc_election_leader_async(c, path, leader_cb, &ev), 0);
    ck_assert_int_eq(tu_events_wait_total(&ev, 1, tu_ms(10000)), 1);
    ck_assert_int_eq(ev.ev[0], 0);
    ck_assert_int_eq(ev.val[0], t);
    char nopath[160];
    snprintf(nopath, sizeof nopath, "%s-none", path);
    ck_assert_int_eq(zkc_election_leader_async(c, nopath, leader_cb, &ev), 0);
    ck_assert_int_eq(tu_events_wait_total(&ev, 2, tu_ms(10000)), 2);
    ck_assert_int_eq(ev.ev[1], ZKC_ENONODE);

    zkc_election_destroy(e);
    zkc_client_destroy(c);
    ck_assert_int_eq(tu_events_total(&ev), 2);
    tu_events_destroy(&ev);
}
END_TEST

/* ------------------------------------------------------------ a Curator LeaderLatch node */

START_TEST(t_curator_latch_node)
{
    /* Curator's LeaderLatch writes "_c_<uuid>-latch-<seq>" with its
     * participant id as the whole data; one ahead of us leads. */
    char path[128], node[512], made[512];
    tu_unique_path(path, sizeof path, "el-curator");
    tu_raw *raw = tu_raw_open(tu_hosts(), tu_ms(TU_SESSION_MS));
    tu_raw_mkdirs(raw, path);
    snprintf(node, sizeof node, "%s/_c_0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0-latch-", path);
    ck_assert_int_eq(zoo_create(tu_raw_zh(raw), node, "curator-1", 9, &ZOO_OPEN_ACL_UNSAFE,
                                ZOO_EPHEMERAL | ZOO_SEQUENCE, made, sizeof made),
                     ZOK);
    zkc_client *c = tu_client(tu_hosts());
    zkc_election *e = mkel(c, path, "zkc-1", NULL);
    ck_assert_int_eq(zkc_election_lead(e, 0, NULL), ZKC_ETIMEDOUT);
    ck_assert(wait_leader(c, path, "curator-1", tu_ms(10000)));
    tu_events ev;
    tu_events_init(&ev);
    ck_assert_int_eq(zkc_election_lead_async(e, ZKC_FOREVER, lead_cb, &ev), 0);
    ck_assert(tu_wait_queue_count(c, path, 2, tu_ms(10000)));
    ck_assert_int_eq(tu_events_total(&ev), 0);
    ck_assert_int_eq(zoo_delete(tu_raw_zh(raw), made, -1), ZOK);
    ck_assert_int_eq(tu_events_wait_total(&ev, 1, tu_ms(10000)), 1);
    ck_assert_int_eq(ev.ev[0], 0);
    /* Curator reads a participant as the node's data: ours is the id alone. */
    char buf[64];
    int len = sizeof buf;
    struct String_vector kids = {0, NULL};
    ck_assert_int_eq(zoo_get_children(tu_raw_zh(raw), path, 0, &kids), ZOK);
    ck_assert_int_eq(kids.count, 1);
    snprintf(node, sizeof node, "%s/%s", path, kids.data[0]);
    ck_assert(strstr(kids.data[0], "-latch-"));
    deallocate_String_vector(&kids);
    ck_assert_int_eq(zoo_get(tu_raw_zh(raw), node, 0, buf, &len, NULL), ZOK);
    ck_assert_int_eq(len, 5);
    ck_assert(memcmp(buf, "zkc-1", 5) == 0);
    zkc_election_destroy(e);
    zkc_client_destroy(c);
    tu_raw_close(raw);
    tu_events_destroy(&ev);
}
END_TEST

/* ------------------------------------------------------------ LOST */

START_TEST(t_lost_when_node_deleted)
{
    char path[128], node[512];
    tu_unique_path(path, sizeof path, "el-lost");
    zkc_client *c = tu_client(tu_hosts()), *c2 = tu_client(tu_hosts());
    zkc_election *e = mkel(c, path, "first", NULL), *w = mkel(c2, path, "second", NULL);
    tu_events lev, ev;
    tu_events_init(&lev);
    tu_events_init(&ev);
    zkc_election_set_listener(e, ev_cb, &lev);
    int64_t t0;
    ck_assert_int_eq(zkc_election_lead(e, tu_ms(10000), &t0), 0);
    ck_assert_int_eq(zkc_election_lead_async(w, ZKC_FOREVER, lead_cb, &ev), 0);
    ck_assert(tu_wait_queue_count(c, path, 2, tu_ms(10000)));
    zkc_election_leader_info in;
    ck_assert_int_eq(zkc_election_leader(c, path, &in), 0);
    snprintf(node, sizeof node, "%s/%s", path, in.node);
    ck_assert_int_eq(in.token, t0);
    ck_assert_int_eq(in.session_id, tu_session_id(c));
    zkc_election_leader_free(&in);

    tu_raw *raw = tu_raw_open(tu_hosts(), tu_ms(TU_SESSION_MS));
    ck_assert_int_eq(zoo_delete(tu_raw_zh(raw), node, -1), ZOK);
    ck_assert_msg(tu_events_wait(&lev, ZKC_ELECTION_EVENT_LOST, 0, tu_ms(10000)) >= 0, "no LOST");
    ck_assert_int_eq(zkc_election_is_leader(e), 0);
    int64_t t;
    ck_assert_int_eq(zkc_election_token(e, &t), ZKC_ENOTHELD);
    ck_assert_int_eq(tu_events_wait_total(&ev, 1, tu_ms(10000)), 1);
    ck_assert_int_eq(ev.ev[0], 0);
    ck_assert(ev.val[0] > t0);
    ck_assert_int_eq(zkc_election_resign(e), ZKC_ESESSIONLOST);
    ck_assert_int_eq(zkc_election_resign(e), ZKC_ENOTHELD);
    /* Standing again: a new term, behind the new leader. */
    ck_assert_int_eq(zkc_election_lead(e, 0, NULL), ZKC_ETIMEDOUT);
    ck_assert_int_eq(zkc_election_resign(w), 0);
    ck_assert_int_eq(zkc_election_lead(e, tu_ms(10000), &t), 0);
    ck_assert(t > ev.val[0]);
    ck_assert_int_eq(tu_events_count(&lev, ZKC_ELECTION_EVENT_LOST), 1);
    tu_raw_close(raw);
    zkc_election_destroy(e);
    zkc_election_destroy(w);
    zkc_client_destroy(c);
    zkc_client_destroy(c2);
    tu_events_destroy(&lev);
    tu_events_destroy(&ev);
}
END_TEST

/* ------------------------------------------------------------ guard of a term */

/* A term's guard: writes under it land while the term lasts and are refused
 * (ZKC_EFENCED, nothing written) once it has ended, even when the old leader
 * writes after the next one took over; the next term's guard carries a larger
 * token. No guard without a term. */
START_TEST(t_term_guard)
{
    char path[128], kept[160], late[160];
    tu_unique_path(path, sizeof path, "el-guard");
    snprintf(kept, sizeof kept, "%s-kept", path);
    snprintf(late, sizeof late, "%s-late", path);
    zkc_client *ca = tu_client(tu_hosts()), *cb = tu_client(tu_hosts());
    zkc_election *a = mkel(ca, path, "a", NULL), *b = mkel(cb, path, "b", NULL);
    zkc_guard g, gb;
    ck_assert_int_eq(zkc_election_guard(a, &g), ZKC_ENOTHELD);
    ck_assert_int_eq(zkc_election_guard(NULL, &g), ZKC_EINVAL);
    ck_assert_int_eq(zkc_election_guard(a, NULL), ZKC_EINVAL);
    int64_t ta, tb;
    ck_assert_int_eq(zkc_election_lead(a, tu_ms(10000), &ta), 0);
    ck_assert_int_eq(zkc_election_guard(a, &g), 0);
    ck_assert_int_eq(g.token, ta);
    ck_assert(strstr(g.path, "-latch-") != NULL);
    ck_assert_int_eq(zkc_guarded_create(ca, &g, kept, "a", 1), 0);
    ck_assert_int_eq(zkc_election_resign(a), 0);
    ck_assert_int_eq(zkc_election_lead(b, tu_ms(10000), &tb), 0);
    ck_assert_int_eq(zkc_election_guard(a, &gb), ZKC_ENOTHELD);
    /* The old leader writes as if it still led: refused, nothing written. */
    ck_assert_int_eq(zkc_guarded_set(ca, &g, kept, "stale", 5, -1), ZKC_EFENCED);
    ck_assert_int_eq(zkc_guarded_create(ca, &g, late, "stale", 5), ZKC_EFENCED);
    ck_assert_int_eq(zkc_election_guard(b, &gb), 0);
    ck_assert(gb.token == tb && tb > ta);
    ck_assert_int_eq(zkc_guarded_set(cb, &gb, kept, "b", 1, -1), 0);
    tu_raw *raw = tu_raw_open(tu_hosts(), tu_ms(TU_SESSION_MS));
    tu_raw_sync(raw, kept);
    char buf[16];
    int n = sizeof buf - 1;
    ck_assert_int_eq(zoo_get(tu_raw_zh(raw), kept, 0, buf, &n, NULL), ZOK);
    buf[n < 0 ? 0 : n] = 0;
    ck_assert_str_eq(buf, "b");
    ck_assert_int_eq(zoo_exists(tu_raw_zh(raw), late, 0, NULL), ZNONODE);
    tu_raw_close(raw);
    ck_assert_int_eq(zkc_election_resign(b), 0);
    zkc_election_destroy(a);
    zkc_election_destroy(b);
    zkc_client_destroy(ca);
    zkc_client_destroy(cb);
}
END_TEST

#define CASE(s, fn) TU_CASE(s, fn, 90 * tu_scale())

static Suite *election_suite(void)
{
    Suite *s = suite_create("election");
    CASE(s, t_handoff_order);
    CASE(s, t_token_increasing);
    CASE(s, t_timeout_cancel_leave_nothing);
    CASE(s, t_bad_input);
    CASE(s, t_curator_latch_node);
    CASE(s, t_lost_when_node_deleted);
    CASE(s, t_term_guard);
    return s;
}

int main(void)
{
    return tu_main(election_suite(), TU_SHARED_ENSEMBLE);
}
