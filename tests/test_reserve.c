/* Inventory reservation: record formats (no ZooKeeper), then the API against
 * one real 3-node ensemble shared by the forked tests: semantics of
 * reserve/confirm/cancel/lookup/reap/restock, strict FIFO with restock, writes
 * that bypass the queue, the queue length limit (so far the fast tier), and,
 * in the heavy tier (cases "processes" and "bench", tag TU_HEAVY), from
 * several processes with several threads each: exact FIFO and unit conservation with demand above
 * stock, one reservation per repeated id, multi-line orders over overlapping
 * SKUs without deadlock or partial reservation; and a throughput comparison
 * with the plain lock + counter approach (printed, not asserted).
 *
 * Arrival order is queue sequence order. The request records are read back
 * through a raw handle: a record is created in the same transaction as its
 * queue nodes, so record czxid order is queue order between transactions, and
 * a client queues concurrent requests in one multi (same czxid), which the
 * workers' debug log orders (reserve_util.h, ru_qpos); a record's mzxid is the
 * transaction that decided it. Worker processes and threads never call ck_assert: they record
 * what they saw in shared memory and the test's own thread checks it.
 *
 * Env: ZKC_RESERVE_BENCH_ORDERS (orders per requester in t_throughput, default
 * 8; `CK_RUN_CASE=bench ZKC_RESERVE_BENCH_ORDERS=1000 tests/test_reserve` is
 * the full comparison), ZKC_TEST_TIMEOUT_SCALE. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "reserve_util.h"
#include "seqname.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS tu_ms(30000)

/* ------------------------------------------------------------ helpers */

static int reserve1(zkc_inventory *inv, const char *id, const char *sku, int64_t qty, int wait, int timeout_ms,
                    zkc_inventory_state *st)
{
    zkc_inventory_line l = {sku, qty};
    zkc_inventory_reserve_options o;
    memset(&o, 0, sizeof o);
    o.wait_for_restock = wait;
    return zkc_inventory_reserve(inv, id, &l, 1, &o, timeout_ms, NULL, st);
}

/* ================================================================ codec */

START_TEST(t_codec_sku)
{
    char buf[128];
    zkc__sku_rec r = {5, 3, 2, 10}, back;
    int n = zkc__sku_encode(&r, buf, sizeof buf);
    ck_assert_int_gt(n, 0);
    ck_assert_str_eq(buf, "zkcs1 5 3 2 10");
    ck_assert_int_eq(zkc__sku_decode(buf, n, &back, NULL), 0);
    ck_assert(back.available == 5 && back.reserved == 3 && back.sold == 2 && back.total == 10);
    zkc__sku_rec broken = {5, 3, 2, 11};
    ck_assert_int_eq(zkc__sku_encode(&broken, buf, sizeof buf), -1);
    static const char *bad[] = {"",
                                "zkcs1",
                                "zkcs1 5 3 2",
                                "zkcs1 5 3 2 11",        /* invariant */
                                "zkcs1 -1 3 2 4",        /* negative */
                                "zkcs1 05 3 2 10",       /* leading zero */
                                "zkcs1  5 3 2 10",       /* double space */
                                "zkcs1 5 3 2 10\n",      /* trailing data */
                                "zkcs2 5 3 2 10",        /* unknown version */
                                "10",                    /* a plain counter write */
                                "zkcs1 9223372036854775807 1 0 0", /* overflow */
                                "zkcs1 99999999999999999999 0 0 0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;
        ck_assert_msg(zkc__sku_decode(bad[i], (int)strlen(bad[i]), &back, &why) == ZKC_EBADDATA, "accepted \"%s\"",
                      bad[i]);
        ck_assert_ptr_nonnull(why);
    }
    const char *why = NULL;
    zkc__sku_decode("zkcs2 1 0 0 1", 13, &back, &why);
    ck_assert_ptr_nonnull(strstr(why, "version"));
    zkc__sku_decode("zkcs1 5 3 2 11", 14, &back, &why);
    ck_assert_ptr_nonnull(strstr(why, "total"));
}
END_TEST

START_TEST(t_codec_records)
{
    zkc__res_rec r, back;
    memset(&r, 0, sizeof r);
    r.state = ZKC_INVENTORY_RESERVED;
    r.flags = ZKC__RES_F_WAIT;
    r.hold_ms = 600000;
    snprintf(r.nonce, sizeof r.nonce, "0123456789ab");
    r.owner = UINT64_C(0xfedcba9876543210);
    r.n = 2;
    r.line[0].qty = 3;
    snprintf(r.line[0].sku, sizeof r.line[0].sku, "sku a");
    r.line[1].qty = 1;
    snprintf(r.line[1].sku, sizeof r.line[1].sku, "B-7");
    char buf[8192];
    int n = zkc__resrec_encode(&r, buf, sizeof buf);
    ck_assert_int_gt(n, 0);
    ck_assert_str_eq(buf, "zkcr1 RESERVED 600000 1 0123456789ab fedcba9876543210 2\n3 sku a\n1 B-7\n");
    ck_assert_int_eq(zkc__resrec_decode(buf, n, &back, NULL), 0);
    ck_assert_int_eq(back.state, ZKC_INVENTORY_RESERVED);
    ck_assert(back.owner == r.owner && back.n == 2 && back.line[1].qty == 1);
    ck_assert_str_eq(back.line[0].sku, "sku a");
    ck_assert_int_eq(zkc__res_parse(buf, n, NULL), 0);
    /* every state round-trips; ABANDONED is never stored */
    for (int st = ZKC_INVENTORY_PENDING; st <= ZKC_INVENTORY_EXPIRED; st++) {
        r.state = st;
        n = zkc__resrec_encode(&r, buf, sizeof buf);
        ck_assert_int_gt(n, 0);
        ck_assert_int_eq(zkc__resrec_decode(buf, n, &back, NULL), 0);
        ck_assert_int_eq(back.state, st);
    }
    r.state = ZKC_INVENTORY_ABANDONED;
    ck_assert_int_eq(zkc__resrec_encode(&r, buf, sizeof buf), -1);
    r.state = ZKC_INVENTORY_PENDING;
    snprintf(r.line[1].sku, sizeof r.line[1].sku, "sku a"); /* duplicate SKU */
    ck_assert_int_eq(zkc__resrec_encode(&r, buf, sizeof buf), -1);
    static const char *bad[] = {
        "zkcr1 PENDING 600000 0 0123456789ab fedcba9876543210 1\n3 A\n\n",   /* trailing */
        "zkcr1 PENDING 600000 0 0123456789ab fedcba9876543210 2\n3 A\n",     /* missing line */
        "zkcr1 PENDING 600000 0 0123456789ab fedcba9876543210 1\n3 A",       /* unterminated */
        "zkcr1 WAITING 600000 0 0123456789ab fedcba9876543210 1\n3 A\n",     /* state */
        "zkcr1 PENDING 600000 2 0123456789ab fedcba9876543210 1\n3 A\n",     /* flags */
        "zkcr1 PENDING 600000 0 0123456789AB fedcba9876543210 1\n3 A\n",     /* hex case */
        "zkcr1 PENDING 0 0 0123456789ab fedcba9876543210 1\n3 A\n",          /* hold */
        "zkcr1 PENDING 600000 0 0123456789ab fedcba9876543210 0\n",          /* no line */
        "zkcr1 PENDING 600000 0 0123456789ab fedcba9876543210 33\n",         /* too many */
        "zkcr1 PENDING 600000 0 0123456789ab fedcba9876543210 2\n3 A\n1 A\n", /* duplicate */
        "zkcr1 PENDING 600000 0 0123456789ab fedcba9876543210 1\n0 A\n",     /* qty 0 */
        "zkcr1 PENDING 600000 0 0123456789ab fedcba9876543210 1\n3 a/b\n",   /* slash */
        "zkcr1 PENDING 600000 0 0123456789ab fedcba9876543210 1\n3 ..\n",    /* dots */
        "zkcr9 PENDING 600000 0 0123456789ab fedcba9876543210 1\n3 A\n",     /* version */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;
        ck_assert_msg(zkc__resrec_decode(bad[i], (int)strlen(bad[i]), &back, &why) == ZKC_EBADDATA,
                      "accepted record %zu", i);
        ck_assert_ptr_nonnull(why);
    }
    /* queue entries: the id runs to the end and may hold spaces */
    zkc__res_qent e, eb;
    memset(&e, 0, sizeof e);
    e.qty = 2;
    e.flags = 0;
    e.nlines = 1;
    e.hold_ms = 1000;
    snprintf(e.nonce, sizeof e.nonce, "aaaaaaaaaaaa");
    snprintf(e.id, sizeof e.id, "order 42");
    n = zkc__qent_encode(&e, buf, sizeof buf);
    ck_assert_str_eq(buf, "zkcq1 2 0 1 1000 aaaaaaaaaaaa order 42");
    ck_assert_int_eq(zkc__qent_decode(buf, n, &eb, NULL), 0);
    ck_assert_str_eq(eb.id, "order 42");
    ck_assert_int_eq(zkc__res_parse(buf, n, NULL), 0);
    ck_assert_int_eq(zkc__qent_decode("zkcq1 2 0 1 1000 aaaaaaaaaaaa ", 30, &eb, NULL), ZKC_EBADDATA);
    ck_assert_int_eq(zkc__qent_decode("zkcq1 2 0 1 1000 aaaaaaaaaaaa a\nb", 33, &eb, NULL), ZKC_EBADDATA);
    ck_assert_int_eq(zkc__res_parse("junk", 4, NULL), ZKC_EBADDATA);
    /* queue node names */
    char nonce[13];
    int32_t seq;
    /* The member core's names (lib/member.c): "_c_<nonce>-r-<suffix>". */
    ck_assert_int_eq(zkc__resname_parse("_c_0123456789ab-r-0000000042", nonce, &seq), 1);
    ck_assert_str_eq(nonce, "0123456789ab");
    ck_assert_int_eq(seq, 42);
    ck_assert_int_eq(zkc__resname_parse("_c_0123456789ab-r--000000042", nonce, &seq), 1);
    ck_assert_int_eq(seq, -42);
    ck_assert_int_eq(zkc__resname_parse("_c_0123456789ab-r--2147483648", nonce, &seq), 1);
    ck_assert_int_eq(seq, INT32_MIN);
    /* ... and the member core orders them by the same suffix */
    static const char *good[] = {"_c_0123456789ab-r-0000000042", "_c_0123456789ab-r--000000042",
                                 "_c_0123456789ab-r--2147483648", "_c_0123456789ab-r-2147483647"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int32_t s1, s2;
        ck_assert_int_eq(zkc__resname_parse(good[i], NULL, &s1), 1);
        ck_assert_int_eq(zkc__seq_parse(good[i], &s2, NULL, NULL), 1);
        ck_assert_msg(s1 == s2, "%s: codec %d, member core %d", good[i], (int)s1, (int)s2);
    }
    char *names[] = {"filler-00001", "_c_aaaaaaaaaaaa-r-0000000001", "_c_0123456789ab-r-0000000002"};
    ck_assert_int_eq(zkc__resname_find(names, 3, "0123456789ab"), 2);
    ck_assert_int_eq(zkc__resname_find(names, 3, "bbbbbbbbbbbb"), -1);
    static const char *badn[] = {"_c_0123456789ab-r-42", "_c_0123456789AB-r-0000000042",
                                 "_c_0123456789ab-x-0000000042", "_c_0123456789ab-0000000042",
                                 "_c_0123456789ab-r-00000000x2", "_c_x-lock-0000000001",
                                 "_c_0123456789ab-r--000000000", "r-0123456789ab-0000000042",
                                 "0123456789ab-r-0000000042"};
    for (size_t i = 0; i < sizeof badn / sizeof badn[0]; i++)
        ck_assert_msg(zkc__resname_parse(badn[i], nonce, &seq) == 0, "accepted name %s", badn[i]);
}
END_TEST

/* ================================================================ API */

START_TEST(t_api_basics)
{
    char root[128];
    tu_unique_path(root, sizeof root, "rsv");
    zkc_client *c = tu_client(tu_hosts());
    zkc_inventory *inv = ru_inv_open(c, root);
    zkc_inventory_state st;
    zkc_inventory_line l = {"A", 1};

    /* arguments */
    ck_assert_int_eq(zkc_inventory_reserve(NULL, "x", &l, 1, NULL, 0, NULL, &st), ZKC_EINVAL);
    ck_assert_int_eq(zkc_inventory_reserve(inv, "x", &l, 0, NULL, 0, NULL, &st), ZKC_EINVAL);
    ck_assert_int_eq(zkc_inventory_reserve(inv, "x", &l, 33, NULL, 0, NULL, &st), ZKC_EINVAL);
    ck_assert_int_eq(zkc_inventory_reserve(inv, "x", &l, 1, NULL, -5, NULL, &st), ZKC_EINVAL);
    ck_assert_int_eq(zkc_inventory_reserve(inv, "a/b", &l, 1, NULL, 0, NULL, &st), ZKC_EINVAL);
    ck_assert_int_eq(zkc_inventory_reserve(inv, NULL, &l, 1, NULL, 0, NULL, &st), ZKC_EINVAL); /* no id_out */
    zkc_inventory_line bad = {"A", 0};
    ck_assert_int_eq(zkc_inventory_reserve(inv, "x", &bad, 1, NULL, 0, NULL, &st), ZKC_EINVAL);
    zkc_inventory_line badsku = {"a/b", 1};
    ck_assert_int_eq(zkc_inventory_reserve(inv, "x", &badsku, 1, NULL, 0, NULL, &st), ZKC_EINVAL);
    zkc_inventory_reserve_options neg = {0, -1, {0}};
    ck_assert_int_eq(zkc_inventory_reserve(inv, "x", &l, 1, &neg, 0, NULL, &st), ZKC_EINVAL);
    ck_assert_int_eq(zkc_inventory_reserve_async(inv, "x", &l, 1, NULL, 0, NULL, NULL), ZKC_EINVAL);
    ck_assert_int_eq(zkc_inventory_restock(inv, "A", -1), ZKC_EINVAL);
    zkc_inventory *other = (zkc_inventory *)&st;
    ck_assert_int_eq(zkc_inventory_create(c, "relative", &other), ZKC_EINVAL);
    ck_assert_ptr_null(other);

    /* unknown SKU: nothing queued, clear message */
    ck_assert_int_eq(reserve1(inv, "o0", "A", 1, 0, 1000, &st), ZKC_ENONODE);
    ck_assert_ptr_nonnull(strstr(zkc_errmsg(), "restock"));
    ck_assert_int_eq(zkc_inventory_stock(inv, "A", &(zkc_inventory_stock_info){0}), ZKC_ENONODE);

    /* restock 0 creates; restock adds */
    ck_assert_int_eq(zkc_inventory_restock(inv, "A", 0), 0);
    zkc_inventory_stock_info si = ru_stock_of(inv, "A");
    ck_assert(si.total == 0 && si.queue_length == 0);
    ck_assert_int_eq(zkc_inventory_restock(inv, "A", 10), 0);
    ck_assert_int_eq(zkc_inventory_restock(inv, "B", 5), 0);

    /* reserve / repeat / confirm (idempotent) */
    ck_assert_int_eq(reserve1(inv, "o1", "A", 3, 0, WAIT_MS, &st), 0);
    ck_assert_int_eq(st, ZKC_INVENTORY_RESERVED);
    si = ru_stock_of(inv, "A");
    ck_assert(si.available == 7 && si.reserved == 3 && si.queue_length == 0);
    ck_assert_int_eq(reserve1(inv, "o1", "A", 3, 0, WAIT_MS, &st), 0); /* same id: no second reservation */
    ck_assert_int_eq(st, ZKC_INVENTORY_RESERVED);
    ck_assert_int_eq(ru_stock_of(inv, "A").reserved, 3);
    ck_assert_int_eq(reserve1(inv, "o1", "A", 2, 0, WAIT_MS, &st), ZKC_EEXISTS); /* other lines */
    ck_assert_int_eq(zkc_inventory_confirm(inv, "o1"), 0);
    ck_assert_int_eq(zkc_inventory_confirm(inv, "o1"), 0);
    ck_assert_int_eq(ru_lookup(inv, "o1"), ZKC_INVENTORY_SOLD);
    ck_assert_int_eq(reserve1(inv, "o1", "A", 3, 0, WAIT_MS, &st), 0);
    ck_assert_int_eq(st, ZKC_INVENTORY_SOLD);
    ck_assert_int_eq(zkc_inventory_return(inv, "o1"), ZKC_EINVAL); /* sold: nothing to return */
    si = ru_stock_of(inv, "A");
    ck_assert(si.available == 7 && si.reserved == 0 && si.sold == 3 && si.total == 10);

    /* fail fast */
    ck_assert_int_eq(reserve1(inv, "o2", "A", 8, 0, WAIT_MS, &st), ZKC_EOUTOFSTOCK);
    ck_assert_int_eq(st, ZKC_INVENTORY_OUT_OF_STOCK);
    ck_assert_int_eq(ru_lookup(inv, "o2"), ZKC_INVENTORY_OUT_OF_STOCK);
    ck_assert_int_eq(ru_stock_of(inv, "A").available, 7);

    /* cancel (idempotent), then the id is spent */
    ck_assert_int_eq(reserve1(inv, "o3", "A", 2, 0, WAIT_MS, &st), 0);
    ck_assert_int_eq(zkc_inventory_return(inv, "o3"), 0);
    ck_assert_int_eq(zkc_inventory_return(inv, "o3"), 0);
    ck_assert_int_eq(zkc_inventory_confirm(inv, "o3"), ZKC_EINVAL);
    ck_assert_int_eq(reserve1(inv, "o3", "A", 2, 0, WAIT_MS, &st), ZKC_EEXISTS);
    ck_assert_int_eq(st, ZKC_INVENTORY_RETURNED);
    si = ru_stock_of(inv, "A");
    ck_assert(si.available == 7 && si.reserved == 0);

    /* multi-line, duplicate SKUs add up, all or nothing */
    zkc_inventory_line ml[3] = {{"A", 1}, {"B", 2}, {"A", 1}};
    ck_assert_int_eq(zkc_inventory_reserve(inv, "m1", ml, 3, NULL, WAIT_MS, NULL, &st), 0);
    ck_assert_int_eq(ru_stock_of(inv, "A").reserved, 2);
    ck_assert_int_eq(ru_stock_of(inv, "B").reserved, 2);
    zkc_inventory_line ml2[2] = {{"A", 1}, {"B", 4}};
    ck_assert_int_eq(zkc_inventory_reserve(inv, "m2", ml2, 2, NULL, WAIT_MS, NULL, &st), ZKC_EOUTOFSTOCK);
    ck_assert_int_eq(ru_stock_of(inv, "A").reserved, 2); /* nothing partial */
    ck_assert_int_eq(ru_stock_of(inv, "B").available, 3);
    ck_assert_int_eq(zkc_inventory_confirm(inv, "m1"), 0);
    si = ru_stock_of(inv, "B");
    ck_assert(si.sold == 2 && si.reserved == 0);

    /* lookups */
    ck_assert_int_eq(zkc_inventory_lookup(inv, "never", &st), ZKC_ENONODE);
    ck_assert_int_eq(zkc_inventory_confirm(inv, "never"), ZKC_ENONODE);

    /* generated id, async: the callback runs once with it */
    tu_events ev;
    tu_events_init(&ev);
    ru_acall a = {&ev, 1, "", 0, 0, 0};
    ck_assert_int_eq(zkc_inventory_reserve_async(inv, NULL, &l, 1, NULL, WAIT_MS, ru_acall_cb, &a), 0);
    ck_assert_int_ge(tu_events_wait(&ev, 1, 0, WAIT_MS), 0);
    ck_assert_int_eq(a.status, 0);
    ck_assert_int_eq(strlen(a.id), 36);
    ck_assert_int_eq(ru_lookup(inv, a.id), ZKC_INVENTORY_RESERVED);
    char gen[64];
    ck_assert_int_eq(zkc_inventory_reserve(inv, NULL, &l, 1, NULL, WAIT_MS, gen, &st), 0);
    ck_assert_int_eq(ru_lookup(inv, gen), ZKC_INVENTORY_RESERVED);
    tu_nap_ms(100);
    ck_assert_int_eq(a.calls, 1);
    tu_events_destroy(&ev);

    zkc_inventory_destroy(inv);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

/* Writes around the queue are refused or detected, never "fixed". */
START_TEST(t_bypass_detected)
{
    char root[128], path[256];
    tu_unique_path(root, sizeof root, "rsv");
    zkc_client *c = tu_client(tu_hosts());
    zkc_inventory *inv = ru_inv_open(c, root);
    ck_assert_int_eq(zkc_inventory_restock(inv, "A", 5), 0);
    snprintf(path, sizeof path, "%s/sku/A", root);

    /* the counter recipe refuses a SKU node */
    zkc_counter_options co;
    zkc_counter_options_init(&co);
    co.format = ZKC_FMT_DECIMAL;
    zkc_counter *ctr;
    ck_assert_int_eq(zkc_counter_create(c, path, &co, &ctr), 0);
    ck_assert_int_eq(zkc_counter_add(ctr, -1, NULL, NULL), ZKC_EBADDATA);
    zkc_counter_destroy(ctr);
    ck_assert_int_eq(ru_stock_of(inv, "A").available, 5);

    /* a raw write that breaks the invariant is detected everywhere */
    tu_raw *raw = tu_raw_open(tu_hosts(), tu_ms(10000));
    const char *broken = "zkcs1 9 0 0 5";
    ck_assert_int_eq(zoo_set(tu_raw_zh(raw), path, broken, (int)strlen(broken), -1), ZOK);
    zkc_inventory_stock_info si;
    ck_assert_int_eq(zkc_inventory_stock(inv, "A", &si), ZKC_EBADDATA);
    ck_assert_ptr_nonnull(strstr(zkc_errmsg(), "total"));
    zkc_inventory_state st;
    ck_assert_int_eq(reserve1(inv, "b1", "A", 1, 0, WAIT_MS, &st), ZKC_EBADDATA);
    ck_assert_ptr_nonnull(strstr(zkc_errmsg(), "/sku/A"));
    ck_assert_int_eq(zkc_inventory_restock(inv, "A", 1), ZKC_EBADDATA);
    /* a plain counter write too */
    ck_assert_int_eq(zoo_set(tu_raw_zh(raw), path, "7", 1, -1), ZOK);
    ck_assert_int_eq(reserve1(inv, "b2", "A", 1, 0, WAIT_MS, &st), ZKC_EBADDATA);
    char buf[64];
    int len = sizeof buf;
    ck_assert_int_eq(zoo_get(tu_raw_zh(raw), path, 0, buf, &len, NULL), ZOK);
    ck_assert_int_eq(len, 1); /* untouched */
    ck_assert_int_eq(ru_queue_len(tu_raw_zh(raw), root, "A"), 0); /* and nobody left queued */
    /* the failed requests left the queue with a definite state */
    ck_assert_int_eq(ru_lookup(inv, "b2"), ZKC_INVENTORY_TIMED_OUT);

    tu_raw_close(raw);
    zkc_inventory_destroy(inv);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

/* Strict FIFO: a large request waiting at the head blocks smaller ones behind
 * it (even a fail-fast one) until restock; then they go in arrival order. */
START_TEST(t_strict_fifo_restock)
{
    char root[128];
    tu_unique_path(root, sizeof root, "rsv");
    zkc_client *c = tu_client(tu_hosts());
    zkc_inventory *inv = ru_inv_open(c, root);
    ck_assert_int_eq(zkc_inventory_restock(inv, "A", 2), 0);
    tu_events ev;
    tu_events_init(&ev);
    ru_acall big = {&ev, 1, "", 0, 0, 0}, small = {&ev, 2, "", 0, 0, 0}, ff = {&ev, 3, "", 0, 0, 0};
    ru_reserve_async(inv, &big, "big", "A", 5, 1, 0, WAIT_MS);
    ru_wait_queue(inv, "A", 1, WAIT_MS);
    ru_reserve_async(inv, &small, "small", "A", 1, 1, 0, WAIT_MS);
    ru_wait_queue(inv, "A", 2, WAIT_MS);
    {
        tu_raw *qr = tu_raw_open(tu_hosts(), tu_ms(10000));
        ck_assert_int_eq(ru_queue_members(tu_raw_zh(qr), root, "A"), 2);
        tu_raw_close(qr);
    }
    /* fail-fast behind a waiting head waits its turn (strict FIFO) */
    ru_reserve_async(inv, &ff, "ff", "A", 1, 0, 0, tu_ms(700));
    ck_assert_int_ge(tu_events_wait(&ev, 3, 0, WAIT_MS), 0);
    ck_assert_int_eq(ff.status, ZKC_ETIMEDOUT);
    ck_assert_int_eq(ff.state, ZKC_INVENTORY_TIMED_OUT);
    ck_assert_int_eq(tu_events_total(&ev), 1); /* the small one did not jump the queue */
    ck_assert_int_eq(ru_stock_of(inv, "A").available, 2);
    ck_assert_int_eq(zkc_inventory_restock(inv, "A", 4), 0);
    ck_assert_int_eq(tu_events_wait_total(&ev, 3, WAIT_MS), 3);
    ck_assert_int_eq(big.status, 0);
    ck_assert_int_eq(small.status, 0);
    long long t_big, t_small;
    int64_t v;
    int ib = tu_events_wait(&ev, 1, 0, 0), is = tu_events_wait(&ev, 2, 0, 0);
    tu_events_get(&ev, ib, &t_big, &v);
    tu_events_get(&ev, is, &t_small, &v);
    ck_assert_int_lt(ib, is); /* big before small */
    zkc_inventory_stock_info si = ru_stock_of(inv, "A");
    ck_assert(si.available == 0 && si.reserved == 6 && si.queue_length == 0);
    /* records: decided in arrival order */
    tu_raw *raw = tu_raw_open(tu_hosts(), tu_ms(10000));
    ru_rec *v2;
    int n = ru_records(tu_raw_zh(raw), root, &v2);
    ck_assert_int_eq(n, 3);
    const ru_rec *rb = ru_find(v2, n, "big"), *rs = ru_find(v2, n, "small");
    ck_assert(rb && rs && rb->czxid < rs->czxid && rb->mzxid <= rs->mzxid);
    ru_check_units(tu_raw_zh(raw), root, "A", 6, v2, n);
    free(v2);
    tu_raw_close(raw);
    tu_events_destroy(&ev);
    zkc_inventory_destroy(inv);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

START_TEST(t_timeouts_and_try)
{
    char root[128];
    tu_unique_path(root, sizeof root, "rsv");
    zkc_client *c = tu_client(tu_hosts());
    zkc_inventory *inv = ru_inv_open(c, root);
    ck_assert_int_eq(zkc_inventory_restock(inv, "A", 1), 0);
    zkc_inventory_state st;
    /* timeout 0 at the head with stock: decided at once */
    ck_assert_int_eq(reserve1(inv, "t0", "A", 1, 1, 0, &st), 0);
    /* timeout 0 at the head without stock: leaves at once */
    long long t0 = tu_now_ms();
    ck_assert_int_eq(reserve1(inv, "t1", "A", 1, 1, 0, &st), ZKC_ETIMEDOUT);
    ck_assert_int_eq(st, ZKC_INVENTORY_TIMED_OUT);
    ck_assert_int_lt(tu_now_ms() - t0, tu_ms(5000));
    /* a head waits; behind it, timeout 0 leaves, a timed one times out */
    tu_events ev;
    tu_events_init(&ev);
    ru_acall head = {&ev, 1, "", 0, 0, 0};
    ru_reserve_async(inv, &head, "head", "A", 1, 1, 0, WAIT_MS);
    ru_wait_queue(inv, "A", 1, WAIT_MS);
    ck_assert_int_eq(reserve1(inv, "t2", "A", 1, 1, 0, &st), ZKC_ETIMEDOUT);
    t0 = tu_now_ms();
    ck_assert_int_eq(reserve1(inv, "t3", "A", 1, 1, tu_ms(400), &st), ZKC_ETIMEDOUT);
    ck_assert_int_ge(tu_now_ms() - t0, 350);
    ck_assert_int_eq(st, ZKC_INVENTORY_TIMED_OUT);
    ck_assert_int_eq(ru_lookup(inv, "t3"), ZKC_INVENTORY_TIMED_OUT);
    ck_assert_int_eq(ru_stock_of(inv, "A").queue_length, 1);
    /* a timed-out id may be queued again: no unit was ever held under it */
    ru_acall again = {&ev, 2, "", 0, 0, 0};
    ru_reserve_async(inv, &again, "t3", "A", 1, 1, 0, WAIT_MS);
    ru_wait_queue(inv, "A", 2, WAIT_MS);
    ck_assert_int_eq(ru_lookup(inv, "t3"), ZKC_INVENTORY_PENDING);
    ck_assert_int_eq(zkc_inventory_restock(inv, "A", 2), 0);
    ck_assert_int_eq(tu_events_wait_total(&ev, 2, WAIT_MS), 2);
    ck_assert_int_eq(head.status, 0);
    ck_assert_int_eq(again.status, 0);
    ck_assert_int_eq(ru_lookup(inv, "t3"), ZKC_INVENTORY_RESERVED);
    zkc_inventory_stock_info si = ru_stock_of(inv, "A");
    ck_assert(si.reserved == 3 && si.available == 0 && si.queue_length == 0);
    tu_events_destroy(&ev);
    zkc_inventory_destroy(inv);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

/* The requester's session ends while waiting: ABANDONED, then retried. Also:
 * destroying the inventory withdraws its waiting requests. */
START_TEST(t_abandoned_and_destroy)
{
    char root[128];
    tu_unique_path(root, sizeof root, "rsv");
    zkc_client *c = tu_client(tu_hosts());
    zkc_inventory *inv = ru_inv_open(c, root);
    ck_assert_int_eq(zkc_inventory_restock(inv, "A", 0), 0);
    tu_events ev;
    tu_events_init(&ev);

    zkc_client *c2 = tu_client(tu_hosts());
    zkc_inventory *inv2 = ru_inv_open(c2, root);
    ru_acall w = {&ev, 1, "", 0, 0, 0};
    ru_reserve_async(inv2, &w, "gone", "A", 1, 1, 0, ZKC_FOREVER);
    ru_wait_queue(inv, "A", 1, WAIT_MS);
    ck_assert_int_eq(ru_lookup(inv, "gone"), ZKC_INVENTORY_PENDING);
    zkc_inventory_destroy(inv2);
    ck_assert_int_eq(zkc_client_destroy(c2), 0); /* the session closes: its nodes go */
    ck_assert_int_ge(tu_events_wait(&ev, 1, 0, WAIT_MS), 0);
    ck_assert_int_eq(w.status, ZKC_ECANCELED);
    ck_assert_int_eq(w.state, ZKC_INVENTORY_TIMED_OUT); /* withdrawn by destroy */
    /* c2 wrote the withdrawal; c has written nothing since: a fresh read
     * (a quorum check on c's session) orders c's lookup after it */
    zkc_inventory_stock_info fsi;
    ck_assert_int_eq(zkc_inventory_stock_fresh(inv, "A", &fsi), 0);
    ck_assert_int_eq(ru_lookup(inv, "gone"), ZKC_INVENTORY_TIMED_OUT);

    /* now a real abandonment: the client goes without destroying its inventory first */
    c2 = tu_client(tu_hosts());
    inv2 = ru_inv_open(c2, root);
    ru_acall w2 = {&ev, 2, "", 0, 0, 0};
    ru_reserve_async(inv2, &w2, "lost", "A", 1, 1, 0, ZKC_FOREVER);
    ru_wait_queue(inv, "A", 1, WAIT_MS);
    ck_assert_int_eq(zkc_client_destroy(c2), 0);
    ck_assert_int_ge(tu_events_wait(&ev, 2, 0, WAIT_MS), 0);
    ck_assert_int_eq(w2.status, ZKC_ECANCELED);
    zkc_inventory_destroy(inv2);
    /* the nodes go when the servers end that session (at once if its close
     * request got through, else at its timeout): poll, bounded */
    long long deadline = tu_now_ms() + WAIT_MS;
    while (ru_lookup(inv, "lost") != ZKC_INVENTORY_ABANDONED) {
        ck_assert_msg(tu_now_ms() < deadline, "\"lost\" never became ABANDONED");
        tu_nap_ms(50);
    }
    /* a restarted worker retries its order: queued again, then granted */
    ru_acall w3 = {&ev, 3, "", 0, 0, 0};
    ru_reserve_async(inv, &w3, "lost", "A", 1, 1, 0, WAIT_MS);
    ru_wait_queue(inv, "A", 1, WAIT_MS);
    ck_assert_int_eq(ru_lookup(inv, "lost"), ZKC_INVENTORY_PENDING);
    ck_assert_int_eq(zkc_inventory_restock(inv, "A", 1), 0);
    ck_assert_int_ge(tu_events_wait(&ev, 3, 0, WAIT_MS), 0);
    ck_assert_int_eq(w3.status, 0);
    ck_assert_int_eq(ru_lookup(inv, "lost"), ZKC_INVENTORY_RESERVED);
    ck_assert_int_eq(ru_stock_of(inv, "A").reserved, 1);
    tu_events_destroy(&ev);
    zkc_inventory_destroy(inv);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

START_TEST(t_reap_and_retention)
{
    char root[128];
    tu_unique_path(root, sizeof root, "rsv");
    zkc_client_options o;
    tu_client_opts(&o, tu_hosts());
    o.marker_retention_s = 2;
    zkc_client *c = tu_client_o(&o);
    zkc_inventory *inv = ru_inv_open(c, root);
    ck_assert_int_eq(zkc_inventory_restock(inv, "A", 10), 0);
    zkc_inventory_state st;
    zkc_inventory_line l = {"A", 3};
    zkc_inventory_reserve_options ro = {0, 700, {0}};
    ck_assert_int_eq(zkc_inventory_reserve(inv, "short", &l, 1, &ro, WAIT_MS, NULL, &st), 0);
    ck_assert_int_eq(reserve1(inv, "long", "A", 2, 0, WAIT_MS, &st), 0);       /* default hold */
    ck_assert_int_eq(reserve1(inv, "oos", "A", 50, 0, WAIT_MS, &st), ZKC_EOUTOFSTOCK);
    int64_t back = -1;
    ck_assert_int_eq(zkc_inventory_reap(inv, &back), 0);
    ck_assert_int_eq(back, 0); /* not due yet */
    tu_nap_ms(1000);
    ck_assert_int_eq(zkc_inventory_reap(inv, &back), 0);
    ck_assert_int_eq(back, 3);
    ck_assert_int_eq(ru_lookup(inv, "short"), ZKC_INVENTORY_EXPIRED);
    ck_assert_int_eq(ru_lookup(inv, "long"), ZKC_INVENTORY_RESERVED);
    ck_assert_int_eq(zkc_inventory_confirm(inv, "short"), ZKC_EINVAL);
    zkc_inventory_stock_info si = ru_stock_of(inv, "A");
    ck_assert(si.available == 8 && si.reserved == 2);
    ck_assert_int_eq(zkc_inventory_reap(inv, &back), 0);
    ck_assert_int_eq(back, 0); /* once */
    ck_assert_int_eq(zkc_inventory_confirm(inv, "long"), 0);
    /* retention (2 s of the servers' clock): final records go, and abandoned
     * PENDING ones; RESERVED ones never */
    ck_assert_int_eq(reserve1(inv, "held", "A", 1, 0, WAIT_MS, &st), 0);
    zkc_client *c2 = tu_client(tu_hosts());
    zkc_inventory *inv2 = ru_inv_open(c2, root);
    tu_events ev;
    tu_events_init(&ev);
    ru_acall w = {&ev, 1, "", 0, 0, 0};
    ru_reserve_async(inv2, &w, "gone", "A", 100, 1, 0, ZKC_FOREVER);
    ru_wait_queue(inv, "A", 1, WAIT_MS);
    ck_assert_int_eq(zkc_client_destroy(c2), 0); /* abandoned: its session ends */
    ck_assert_int_ge(tu_events_wait(&ev, 1, 0, WAIT_MS), 0);
    zkc_inventory_destroy(inv2);
    tu_events_destroy(&ev);
    tu_nap_ms(2300);
    ru_wait_queue(inv, "A", 0, WAIT_MS); /* the servers ended its session */
    ck_assert_int_eq(zkc_inventory_reap(inv, &back), 0);
    ck_assert_int_eq(zkc_inventory_lookup(inv, "gone", &st), ZKC_ENONODE);
    ck_assert_int_eq(zkc_inventory_lookup(inv, "short", &st), ZKC_ENONODE);
    ck_assert_int_eq(zkc_inventory_lookup(inv, "oos", &st), ZKC_ENONODE);
    ck_assert_int_eq(zkc_inventory_lookup(inv, "long", &st), ZKC_ENONODE);
    ck_assert_int_eq(ru_lookup(inv, "held"), ZKC_INVENTORY_RESERVED);
    /* an id past retention can be used again */
    ck_assert_int_eq(reserve1(inv, "short", "A", 1, 0, WAIT_MS, &st), 0);
    si = ru_stock_of(inv, "A");
    ck_assert(si.available == 6 && si.reserved == 2 && si.sold == 2 && si.total == 10);
    zkc_inventory_destroy(inv);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

/* All workers of one application share one digest identity; the recipe's
 * nodes carry the client's creator ACL: a granter in one client writes the
 * record of a request queued by another, and other identities are refused. */
START_TEST(t_acl_shared_identity)
{
    char root[128];
    tu_unique_path(root, sizeof root, "rsvacl");
    zkc_client_options o;
    tu_client_opts(&o, tu_hosts());
    o.auth_scheme = "digest";
    o.auth_credential = "shop:s3cret";
    o.acl = ZKC_ACL_CREATOR;
    zkc_client *c1 = tu_client_o(&o), *c2 = tu_client_o(&o);
    zkc_inventory *inv1 = ru_inv_open(c1, root), *inv2 = ru_inv_open(c2, root);
    ck_assert_int_eq(zkc_inventory_restock(inv1, "A", 0), 0);
    tu_events ev;
    tu_events_init(&ev);
    ru_acall h = {&ev, 1, "", 0, 0, 0}, m = {&ev, 2, "", 0, 0, 0};
    ru_reserve_async(inv1, &h, "h", "A", 1, 1, 0, WAIT_MS);
    ru_wait_queue(inv1, "A", 1, WAIT_MS);
    ru_reserve_async(inv2, &m, "m", "A", 1, 1, 0, WAIT_MS);
    ru_wait_queue(inv1, "A", 2, WAIT_MS);
    ck_assert_int_eq(zkc_inventory_restock(inv1, "A", 2), 0);
    ck_assert_int_eq(tu_events_wait_total(&ev, 2, WAIT_MS), 2);
    ck_assert_int_eq(h.status, 0);
    ck_assert_int_eq(m.status, 0); /* its record was written by c1's batch */
    zkc_client *c3 = tu_client(tu_hosts()); /* no credentials */
    zkc_inventory *inv3 = NULL;
    ck_assert_int_eq(zkc_inventory_create(c3, root, &inv3), ZKC_ENOAUTH);
    ck_assert_ptr_null(inv3);
    ck_assert_int_eq(zkc_client_destroy(c3), 0);
    tu_events_destroy(&ev);
    zkc_inventory_destroy(inv1);
    zkc_inventory_destroy(inv2);
    ck_assert_int_eq(zkc_client_destroy(c1), 0);
    ck_assert_int_eq(zkc_client_destroy(c2), 0);
}
END_TEST

static long exists_sent(zkc_client *c)
{
    zkc_stats s;
    zkc_client_stats(c, &s);
    return (long)s.requests[ZKC_REQ_EXISTS];
}

/* Filler children of q named filler-<from>..<to - 1>, created or deleted
 * through raw (not our names: junk to the queue, counted by the limit). */
static void fillers(zhandle_t *zh, const char *q, int from, int to, int create)
{
    enum { BATCH = 500 };
    static char paths[BATCH][300];
    zoo_op_t ops[BATCH];
    zoo_op_result_t res[BATCH];
    for (int b = from; b < to; b += BATCH) {
        int k = 0;
        for (int i = b; i < to && k < BATCH; i++, k++) {
            snprintf(paths[k], sizeof paths[k], "%s/filler-%05d", q, i);
            if (create)
                zoo_create_op_init(&ops[k], paths[k], NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
            else
                zoo_delete_op_init(&ops[k], paths[k], -1);
        }
        ck_assert_int_eq(zoo_multi(zh, k, ops, res), ZOK);
    }
}

/* The documented limit: 10000 waiting requests per queue, checked by stat. */
START_TEST(t_queue_limit)
{
    char root[128], q[256];
    tu_unique_path(root, sizeof root, "rsv");
    zkc_client *c = tu_client(tu_hosts());
    zkc_inventory *inv = ru_inv_open(c, root);
    ck_assert_int_eq(zkc_inventory_restock(inv, "A", 5), 0);
    snprintf(q, sizeof q, "%s/sku/A/q", root);
    tu_raw *raw = tu_raw_open(tu_hosts(), tu_ms(10000));
    zhandle_t *zh = tu_raw_zh(raw);
    /* 10000 filler children (not our names: ignored by the queue, counted by the limit) */
    fillers(zh, q, 0, ZKC__RES_QUEUE_MAX, 1);
    /* stock syncs: our server has seen the fillers (written through another) */
    ck_assert_int_eq(ru_stock_of(inv, "A").queue_length, ZKC__RES_QUEUE_MAX);
    zkc_inventory_state st;
    ck_assert_int_eq(reserve1(inv, "over", "A", 1, 0, WAIT_MS, &st), ZKC_ELIMIT);
    ck_assert_ptr_nonnull(strstr(zkc_errmsg(), "10000"));
    ck_assert_int_eq(zkc_inventory_lookup(inv, "over", &st), ZKC_ENONODE); /* nothing written */
    /* one fewer: accepted, and the junk names do not block the queue */
    char gone[300];
    snprintf(gone, sizeof gone, "%s/filler-%05d", q, 0);
    ck_assert_int_eq(zoo_delete(zh, gone, -1), ZOK);
    /* the limit is checked on our server's view, which may lag the raw
     * handle's server: stock syncs it first (as above) */
    ck_assert_int_eq(ru_stock_of(inv, "A").queue_length, ZKC__RES_QUEUE_MAX - 1);
    ck_assert_int_eq(reserve1(inv, "under", "A", 1, 0, WAIT_MS, &st), 0);
    fillers(zh, q, 1, ZKC__RES_QUEUE_MAX, 0); /* filler-00000 was deleted above */
    tu_raw_close(raw);
    zkc_inventory_destroy(inv);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

/* A queue the object saw lately (within a second) holding at most half the
 * limit is not looked at again before an enqueue (inventory_enqueue.c,
 * "lengths seen lately"); one it saw above half is, however lately. */
START_TEST(t_queue_length_seen)
{
    char root[128], q[256];
    tu_unique_path(root, sizeof root, "rsv");
    zkc_client *c = tu_client(tu_hosts());
    zkc_inventory *inv = ru_inv_open(c, root);
    ck_assert_int_eq(zkc_inventory_restock(inv, "A", 10), 0);
    snprintf(q, sizeof q, "%s/sku/A/q", root);
    zkc_inventory_state st;
    long e0 = exists_sent(c);
    long long t0 = tu_now_ms();
    ck_assert_int_eq(reserve1(inv, "a", "A", 1, 0, WAIT_MS, &st), 0);
    long e1 = exists_sent(c);
    ck_assert_int_eq(e1 - e0, 1); /* nothing seen yet: the stat */
    ck_assert_int_eq(reserve1(inv, "b", "A", 1, 0, WAIT_MS, &st), 0);
    long e2 = exists_sent(c);
    /* "a"'s stat and listing are less than a second old unless the machine
     * crawls (valgrind): then "b" looks again, which is no error. */
    if (tu_now_ms() - t0 < 900)
        ck_assert_msg(e2 == e1, "%ld stats for a queue seen just now with 1 request", e2 - e1);
    else
        fprintf(stderr, "queue_length_seen: slow machine, \"b\" after %lld ms: not asserted\n", tu_now_ms() - t0);

    /* More than half the limit: what our next listing shows makes the
     * enqueue after it look again. */
    tu_raw *raw = tu_raw_open(tu_hosts(), tu_ms(10000));
    zhandle_t *zh = tu_raw_zh(raw);
    enum { FILL = ZKC__RES_QUEUE_MAX / 2 + 1 };
    fillers(zh, q, 0, FILL, 1);
    ck_assert_int_eq(ru_stock_of(inv, "A").queue_length, FILL); /* our server has them */
    ck_assert_int_eq(reserve1(inv, "c", "A", 1, 0, WAIT_MS, &st), 0); /* lists FILL + 1 */
    long e3 = exists_sent(c);
    ck_assert_int_eq(reserve1(inv, "d", "A", 1, 0, WAIT_MS, &st), 0);
    ck_assert_msg(exists_sent(c) - e3 == 1, "%ld stats for a queue seen above half the limit", exists_sent(c) - e3);
    fillers(zh, q, 0, FILL, 0);
    tu_raw_close(raw);
    zkc_inventory_destroy(inv);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

/* A request's first listing goes out right behind its enqueue multi, not
 * after the multi's reply (zkc__qm_list_ahead; a listing sent after the
 * create shows our node: member_wait.c, "shared listings"). A proxy holds
 * the multi's reply: the listing must reach the server meanwhile (before the
 * change it was sent only once the reply came, so it never did), and the
 * request is then decided on it, with no second listing. */
#define OP_MULTI 14 /* ZOO_MULTI_OP */

START_TEST(t_listing_behind_enqueue)
{
    zkh_proxy *px;
    zkc_client *c = tu_proxied_client(&px);
    char root[128];
    tu_unique_path(root, sizeof root, "rsv");
    zkc_inventory *inv = ru_inv_open(c, root);
    ck_assert_int_eq(zkc_inventory_restock(inv, "A", 5), 0);
    zkc_inventory_state st;
    ck_assert_int_eq(reserve1(inv, "first", "A", 1, 0, WAIT_MS, &st), 0); /* the request dir exists from here */

    static tu_events ev;
    tu_events_init(&ev);
    long lists0 = tu_proxy_listings(px);
    zkc_stats s0, s1;
    zkc_client_stats(c, &s0);
    int hold_ms = tu_reply_hold_ms(c);
    zkh_proxy_delay_reply(px, OP_MULTI, 1, hold_ms);
    long long t0 = tu_now_ms();
    static ru_acall a;
    a = (ru_acall){&ev, 0, "", 0, 0, 0};
    ru_reserve_async(inv, &a, "second", "A", 1, 0, 0, WAIT_MS);
    int seen = tu_wait_proxy_listing(px, lists0, t0 + hold_ms / 2);
    long long seen_at = tu_now_ms();
    ck_assert_msg(seen,
                  "no listing reached the server in %lld ms while the enqueue's reply was held: the listing still "
                  "waits for the enqueue",
                  seen_at - t0);
    ck_assert_msg(tu_events_total(&ev) == 0, "the request was decided while its enqueue's reply was held");
    tu_expect_event(&ev, 0, 0, tu_ms(15000), "the grant", t0);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_msg(a.status == 0 && a.state == ZKC_INVENTORY_RESERVED, "%s (%s)", zkc_strerror(a.status),
                  zkc__res_state_name(a.state));
    zkc_client_stats(c, &s1);
    ck_assert_msg(s1.requests[ZKC_REQ_CHILDREN] - s0.requests[ZKC_REQ_CHILDREN] == 1,
                  "%llu listings for one reservation; the one behind the enqueue was not used",
                  (unsigned long long)(s1.requests[ZKC_REQ_CHILDREN] - s0.requests[ZKC_REQ_CHILDREN]));
    ck_assert_int_eq(tu_proxy_listings(px) - lists0, 1);
    fprintf(stderr, "t_listing_behind_enqueue: listing at the server after %lld ms, granted after %lld ms (reply "
                    "held %d ms)\n",
            seen_at - t0, tu_now_ms() - t0, hold_ms);
    ck_assert_int_eq(ru_stock_of(inv, "A").reserved, 2);
    zkc_inventory_destroy(inv);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
    zkh_proxy_stop(px);
}
END_TEST

/* n async reservations of 1 unit of sku that wait for restock, ids
 * "<prefix>-NN" (dup_at: that one "<prefix>-dup" instead, -1 none), event
 * tags 0..n-1. */
static void reserve_n(zkc_inventory *inv, tu_events *ev, ru_acall *a, int n, const char *prefix, int dup_at,
                      const char *sku)
{
    for (int i = 0; i < n; i++) {
        char id[32];
        if (i == dup_at)
            snprintf(id, sizeof id, "%s-dup", prefix);
        else
            snprintf(id, sizeof id, "%s-%02d", prefix, i);
        a[i] = (ru_acall){ev, i, "", 0, 0, 0};
        ru_reserve_async(inv, &a[i], id, sku, 1, 1, 0, WAIT_MS);
    }
}

/* Each of them was answered once: RESERVED. */
static void all_reserved(const ru_acall *a, int n)
{
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(a[i].calls, 1);
        ck_assert_msg(a[i].status == 0 && a[i].state == ZKC_INVENTORY_RESERVED, "%s: %s (%s)", a[i].id,
                      zkc_strerror(a[i].status), zkc__res_state_name(a[i].state));
    }
}

/* Concurrent reservations of one client share enqueue multis (lib/inventory_enqueue.c,
 * COMBINING), keep their submission order in the queue and are served in it.
 * One request in the burst reuses an id that already reserved: its create
 * fails the multi it is in, it gets its earlier outcome, and the others of that
 * multi are queued by a resend, still ahead of later arrivals. */
#define CE_N 40
START_TEST(t_combined_enqueue)
{
    char root[128];
    tu_unique_path(root, sizeof root, "rsvce");
    ru_qpos *qp = calloc(1, sizeof *qp);
    ck_assert_ptr_nonnull(qp);
    zkc_client_options o;
    tu_client_opts(&o, tu_hosts());
    ru_qpos_opts(&o, qp);
    zkc_client *c = tu_client_o(&o);
    zkc_inventory *inv = ru_inv_open(c, root);
    ck_assert_int_eq(zkc_inventory_restock(inv, "A", CE_N), 0);
    zkc_inventory_state st;
    ck_assert_int_eq(reserve1(inv, "ce-dup", "A", 1, 0, WAIT_MS, &st), 0);
    ck_assert_int_eq(st, ZKC_INVENTORY_RESERVED);
    tu_events ev;
    tu_events_init(&ev);
    static ru_acall a[CE_N];
    zkc_stats s0, s1;
    zkc_client_stats(c, &s0);
    reserve_n(inv, &ev, a, CE_N, "ce", CE_N / 2, "A");
    ck_assert_int_eq(tu_events_wait_total(&ev, CE_N, WAIT_MS), CE_N);
    zkc_client_stats(c, &s1);
    all_reserved(a, CE_N);
    zkc_inventory_stock_info si = ru_stock_of(inv, "A");
    ck_assert(si.available == 0 && si.reserved == CE_N && si.queue_length == 0);
    /* Alone, the CE_N - 1 fresh requests would cost as many enqueue multis,
     * the repeated id one more, plus the grants. */
    uint64_t multis = s1.requests[ZKC_REQ_MULTI] - s0.requests[ZKC_REQ_MULTI];
    fprintf(stderr, "t_combined_enqueue: %d concurrent reservations of one client: %llu multi requests\n", CE_N,
            (unsigned long long)multis);
    ck_assert_uint_lt(multis, (uint64_t)(CE_N - 1));

    tu_raw *raw = tu_raw_open(tu_hosts(), tu_ms(10000));
    ru_rec *v;
    int n = ru_records(tu_raw_zh(raw), root, &v);
    ck_assert_int_eq(n, CE_N);
    ck_assert_int_eq(ru_order_by_queue(v, n, qp), CE_N);
    int prev = -1, shared = 0;
    int64_t last_mzxid = 0;
    for (int k = 0; k < n; k++) {
        ck_assert_msg(v[k].mzxid >= last_mzxid, "%s granted before an earlier arrival", v[k].id);
        last_mzxid = v[k].mzxid;
        if (k > 0 && v[k].czxid == v[k - 1].czxid)
            shared++;
        if (strcmp(v[k].id, "ce-dup") == 0)
            continue;
        int i = atoi(v[k].id + 3);
        ck_assert_msg(i > prev, "%s queued after ce-%02d: submission order lost", v[k].id, prev);
        prev = i;
    }
    ck_assert_int_gt(shared, 0); /* some records were created by one multi */
    ru_check_units(tu_raw_zh(raw), root, "A", CE_N, v, n);
    free(v);
    tu_raw_close(raw);
    tu_events_destroy(&ev);
    zkc_inventory_destroy(inv);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
    free(qp);
}
END_TEST

/* Waiting requests of one object (issue 19): they find their places from
 * shared listings (member_wait.c, "shared listings"; alone, each would list
 * the queue at least once, SL_N listings for SL_N waiters: the bench's
 * reserve_fifo paid 1.03 per order), and the granter among them neither
 * reads their entries nor makes them re-read their records
 * (inventory_grant.c, "our own members"); their queue-length checks share
 * stats (inventory_request.c). */
#define SL_N 40

START_TEST(t_shared_listings)
{
    char root[128];
    tu_unique_path(root, sizeof root, "rsvsl");
    zkc_client *c = tu_client(tu_hosts());
    zkc_inventory *inv = ru_inv_open(c, root);
    ck_assert_int_eq(zkc_inventory_restock(inv, "A", 0), 0);
    tu_events ev;
    tu_events_init(&ev);
    static ru_acall a[SL_N];
    zkc_stats s0, s1;
    zkc_client_stats(c, &s0);
    reserve_n(inv, &ev, a, SL_N, "sl", -1, "A");
    ru_wait_queue(inv, "A", SL_N, WAIT_MS);
    ck_assert_int_eq(tu_events_total(&ev), 0); /* no stock: all wait */
    ck_assert_int_eq(zkc_inventory_restock(inv, "A", SL_N), 0);
    ck_assert_int_eq(tu_events_wait_total(&ev, SL_N, WAIT_MS), SL_N);
    zkc_client_stats(c, &s1);
    all_reserved(a, SL_N);
    zkc_inventory_stock_info si = ru_stock_of(inv, "A");
    ck_assert(si.available == 0 && si.reserved == SL_N && si.queue_length == 0);
    uint64_t lists = s1.requests[ZKC_REQ_CHILDREN] - s0.requests[ZKC_REQ_CHILDREN];
    fprintf(stderr, "t_shared_listings: %d waiting requests of one client: %llu listings of the queue\n", SL_N,
            (unsigned long long)lists);
    ck_assert_msg(lists <= SL_N / 4, "%llu listings for %d waiting requests of one client", (unsigned long long)lists,
                  SL_N);
    /* Each waiter reads the node ahead, with its watch (SL_N - 1; no watch
     * on its own record: inventory_request.c, queued_step). The granter, a
     * request of the same object, takes the others' entries from memory and
     * tells them their outcome: neither the SL_N - 1 entry reads nor as many
     * re-reads of a decided record, and the watches they told fired (the
     * servers send a transaction's watch events before its reply): none to
     * remove. */
    uint64_t gets = s1.requests[ZKC_REQ_GET] - s0.requests[ZKC_REQ_GET];
    uint64_t removals = s1.requests[ZKC_REQ_REMOVE_WATCH] - s0.requests[ZKC_REQ_REMOVE_WATCH];
    fprintf(stderr, "t_shared_listings: %llu reads, %llu watch removals\n", (unsigned long long)gets,
            (unsigned long long)removals);
    ck_assert_msg(gets <= SL_N + SL_N / 4, "%llu reads for %d waiting requests of one client",
                  (unsigned long long)gets, SL_N);
    ck_assert_msg(removals == 0, "%llu watch removals", (unsigned long long)removals);
    /* Their queue-length checks share one stat while it is out. */
    uint64_t stats = s1.requests[ZKC_REQ_EXISTS] - s0.requests[ZKC_REQ_EXISTS];
    fprintf(stderr, "t_shared_listings: %llu queue-length checks\n", (unsigned long long)stats);
    ck_assert_msg(stats <= SL_N / 4, "%llu queue-length checks for %d requests of one client",
                  (unsigned long long)stats, SL_N);
    tu_events_destroy(&ev);
    zkc_inventory_destroy(inv);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

/* Waiters of another client than the granter's (issue 19): each reads the
 * node ahead with its watch and, once that node is gone, its record; no
 * watch on its record, so none to remove once it is decided. */
#define XC_N 20

START_TEST(t_cross_client_reads)
{
    char root[128];
    tu_unique_path(root, sizeof root, "rsvxc");
    zkc_client *c1 = tu_client(tu_hosts()), *c2 = tu_client(tu_hosts());
    zkc_inventory *inv1 = ru_inv_open(c1, root), *inv2 = ru_inv_open(c2, root);
    ck_assert_int_eq(zkc_inventory_restock(inv1, "A", 0), 0);
    tu_events ev;
    tu_events_init(&ev);
    static ru_acall head, a[XC_N];
    head = (ru_acall){&ev, XC_N, "", 0, 0, 0};
    ru_reserve_async(inv1, &head, "xc-head", "A", 1, 1, 0, WAIT_MS);
    ru_wait_queue(inv1, "A", 1, WAIT_MS);
    zkc_stats s0, s1;
    zkc_client_stats(c2, &s0);
    reserve_n(inv2, &ev, a, XC_N, "xc", -1, "A");
    ru_wait_queue(inv1, "A", XC_N + 1, WAIT_MS);
    ck_assert_int_eq(tu_events_total(&ev), 0);
    ck_assert_int_eq(zkc_inventory_restock(inv1, "A", XC_N + 1), 0);
    ck_assert_int_eq(tu_events_wait_total(&ev, XC_N + 1, WAIT_MS), XC_N + 1);
    zkc_client_stats(c2, &s1);
    ck_assert_int_eq(head.status, 0);
    all_reserved(a, XC_N);
    uint64_t gets = s1.requests[ZKC_REQ_GET] - s0.requests[ZKC_REQ_GET];
    uint64_t removals = s1.requests[ZKC_REQ_REMOVE_WATCH] - s0.requests[ZKC_REQ_REMOVE_WATCH];
    fprintf(stderr, "t_cross_client_reads: %d waiters granted by another client: %llu reads, %llu watch removals\n",
            XC_N, (unsigned long long)gets, (unsigned long long)removals);
    ck_assert_msg(gets <= 2 * XC_N + XC_N / 4, "%llu reads for %d waiters", (unsigned long long)gets, XC_N);
    ck_assert_msg(removals == 0, "%llu watch removals", (unsigned long long)removals);
    tu_events_destroy(&ev);
    zkc_inventory_destroy(inv2);
    zkc_inventory_destroy(inv1);
    ck_assert_int_eq(zkc_client_destroy(c2), 0);
    ck_assert_int_eq(zkc_client_destroy(c1), 0);
}
END_TEST

/* A two-line request behind a head in one queue and at the head of its
 * other takes over when that head goes, without a listing or a record read
 * (inventory_request.c, m_moved: nobody but itself decides it, and the node
 * ahead was the head at its listing): its SKU reads and its multi. */
/* Queue a two-line request (1 of A, 1 of B, waiting for restock) and wait
 * until A's and B's queues show it (lengths a and b). */
static void two_line_async(zkc_inventory *inv, zkc_inventory *watcher, const char *id, ru_acall *call, int a, int b)
{
    zkc_inventory_line lines[2] = {{"A", 1}, {"B", 1}};
    zkc_inventory_reserve_options o;
    memset(&o, 0, sizeof o);
    o.wait_for_restock = 1;
    ck_assert_int_eq(zkc_inventory_reserve_async(inv, id, lines, 2, &o, WAIT_MS, ru_acall_cb, call), 0);
    ru_wait_queue(watcher, "A", a, WAIT_MS);
    ru_wait_queue(watcher, "B", b, WAIT_MS);
}

/* Wait until client c has sent at least `gets` reads and `lists` listings
 * more than in *base (its waiters settled: their watches on the nodes ahead,
 * the last thing each line asks, are set) and return its counts in *s. */
static void settled_stats(zkc_client *c, const zkc_stats *base, uint64_t gets, uint64_t lists, zkc_stats *s)
{
    for (int i = 0;; i++) {
        zkc_client_stats(c, s);
        if (s->requests[ZKC_REQ_GET] - base->requests[ZKC_REQ_GET] >= gets &&
            s->requests[ZKC_REQ_CHILDREN] - base->requests[ZKC_REQ_CHILDREN] >= lists)
            return;
        ck_assert_msg(i < 500, "the waiters never settled");
        tu_nap_ms(10); /* no event says "its watch is set" */
    }
}

/* Two two-line requests behind a single-line head, the first the head of
 * its other queue, the second right behind it there: the head's batch
 * decides both (inventory_multiline.c), in the head's one multi, and they
 * learn that from their records (issue 19). */
START_TEST(t_multiline_in_batch)
{
    char root[128];
    tu_unique_path(root, sizeof root, "rsvmb");
    zkc_client *c1 = tu_client(tu_hosts()), *c2 = tu_client(tu_hosts());
    zkc_inventory *inv1 = ru_inv_open(c1, root), *inv2 = ru_inv_open(c2, root);
    ck_assert_int_eq(zkc_inventory_restock(inv1, "A", 0), 0);
    ck_assert_int_eq(zkc_inventory_restock(inv1, "B", 2), 0);
    tu_events ev;
    tu_events_init(&ev);
    static ru_acall head, two, three;
    head = (ru_acall){&ev, 1, "", 0, 0, 0};
    two = (ru_acall){&ev, 2, "", 0, 0, 0};
    three = (ru_acall){&ev, 3, "", 0, 0, 0};
    zkc_stats b0, s0, s1, h0, h1;
    zkc_client_stats(c2, &b0);
    ru_reserve_async(inv1, &head, "mb-head", "A", 1, 1, 0, WAIT_MS);
    ru_wait_queue(inv1, "A", 1, WAIT_MS);
    two_line_async(inv2, inv1, "mb-two", &two, 2, 1);
    /* and a second one, behind it in both queues: decided in the same walk,
     * after it, so what is ahead of it on B goes in the same multi */
    two_line_async(inv2, inv1, "mb-three", &three, 3, 2);
    /* Settled: each has listed its lead line's queue, A (the first saw no
     * queue yet and leads with its first line, the second saw A's longer),
     * and watches the node ahead of it there; neither lists B (its turn
     * there comes only when it heads A: inventory_request.c, queued_step). */
    settled_stats(c2, &b0, 2, 2, &s0);
    ck_assert_int_eq(tu_events_total(&ev), 0);
    zkc_client_stats(c1, &h0);
    ck_assert_int_eq(zkc_inventory_restock(inv1, "A", 3), 0);
    ck_assert_int_eq(tu_events_wait_total(&ev, 3, WAIT_MS), 3);
    zkc_client_stats(c2, &s1);
    zkc_client_stats(c1, &h1);
    ck_assert_int_eq(head.status, 0);
    ck_assert_msg(two.status == 0 && two.state == ZKC_INVENTORY_RESERVED, "two-line: %s", zkc_strerror(two.status));
    ck_assert_msg(three.status == 0 && three.state == ZKC_INVENTORY_RESERVED, "second two-line: %s",
                  zkc_strerror(three.status));
    uint64_t lists = s1.requests[ZKC_REQ_CHILDREN] - s0.requests[ZKC_REQ_CHILDREN];
    uint64_t gets = s1.requests[ZKC_REQ_GET] - s0.requests[ZKC_REQ_GET];
    uint64_t multis = s1.requests[ZKC_REQ_MULTI] - s0.requests[ZKC_REQ_MULTI];
    /* the restock is one multi of c1's, the grant another */
    uint64_t hmultis = h1.requests[ZKC_REQ_MULTI] - h0.requests[ZKC_REQ_MULTI];
    fprintf(stderr, "t_multiline_in_batch: the two-line requests sent %llu multis, %llu listings, %llu reads; "
                    "the head's client %llu multis\n",
            (unsigned long long)multis, (unsigned long long)lists, (unsigned long long)gets,
            (unsigned long long)hmultis);
    ck_assert_msg(multis == 0, "%llu multis: it decided itself", (unsigned long long)multis);
    ck_assert_msg(lists == 0 && gets == 2, "%llu listings, %llu reads (their records)", (unsigned long long)lists,
                  (unsigned long long)gets);
    /* In all: A listed once each, B never (nor watched). */
    uint64_t all_lists = s1.requests[ZKC_REQ_CHILDREN] - b0.requests[ZKC_REQ_CHILDREN];
    ck_assert_msg(all_lists == 2, "%llu listings in all: B's queue was listed", (unsigned long long)all_lists);
    ck_assert_msg(hmultis == 2, "%llu multis of the head's client (restock + one grant)", (unsigned long long)hmultis);
    zkc_inventory_stock_info a = ru_stock_of(inv1, "A"), b = ru_stock_of(inv1, "B");
    ck_assert(a.available == 0 && a.reserved == 3 && b.available == 0 && b.reserved == 2);
    ck_assert(a.queue_length == 0 && b.queue_length == 0);
    ck_assert_int_eq(ru_lookup(inv1, "mb-two"), ZKC_INVENTORY_RESERVED);
    /* The record keeps both lines: confirming sells both. */
    ck_assert_int_eq(zkc_inventory_confirm(inv1, "mb-two"), 0);
    a = ru_stock_of(inv1, "A");
    b = ru_stock_of(inv1, "B");
    ck_assert(a.sold == 1 && b.sold == 1 && b.reserved == 1);
    tu_events_destroy(&ev);
    zkc_inventory_destroy(inv2);
    zkc_inventory_destroy(inv1);
    ck_assert_int_eq(zkc_client_destroy(c2), 0);
    ck_assert_int_eq(zkc_client_destroy(c1), 0);
}
END_TEST

/* A two-line request the head's batch cannot decide (short on its other
 * SKU, it waits): when the head goes it takes over its queue without
 * listing it again (the node ahead was the head at its last listing, and
 * sequence numbers only grow), lists its other queue for the first time
 * (only now that it heads its lead line's), and grants itself after that
 * SKU's restock. */
START_TEST(t_multiline_takes_over)
{
    char root[128];
    tu_unique_path(root, sizeof root, "rsvmt");
    zkc_client *c1 = tu_client(tu_hosts()), *c2 = tu_client(tu_hosts());
    zkc_inventory *inv1 = ru_inv_open(c1, root), *inv2 = ru_inv_open(c2, root);
    ck_assert_int_eq(zkc_inventory_restock(inv1, "A", 0), 0);
    ck_assert_int_eq(zkc_inventory_restock(inv1, "B", 0), 0);
    tu_events ev;
    tu_events_init(&ev);
    static ru_acall head, two;
    head = (ru_acall){&ev, 1, "", 0, 0, 0};
    two = (ru_acall){&ev, 2, "", 0, 0, 0};
    zkc_stats b0, s0, s1;
    zkc_client_stats(c2, &b0);
    ru_reserve_async(inv1, &head, "mt-head", "A", 1, 1, 0, WAIT_MS);
    ru_wait_queue(inv1, "A", 1, WAIT_MS);
    two_line_async(inv2, inv1, "mt-two", &two, 2, 1);
    settled_stats(c2, &b0, 1, 1, &s0); /* A listed (its lead line), its watch on the head's node */
    ck_assert_int_eq(zkc_inventory_restock(inv1, "A", 2), 0);
    ck_assert_int_eq(tu_events_wait_total(&ev, 1, WAIT_MS), 1);
    ck_assert_int_eq(head.status, 0);
    ck_assert_int_eq(ru_stock_of(inv1, "B").available, 0);
    ck_assert_int_eq(zkc_inventory_restock(inv1, "B", 1), 0);
    ck_assert_int_eq(tu_events_wait_total(&ev, 2, WAIT_MS), 2);
    zkc_client_stats(c2, &s1);
    ck_assert_msg(two.status == 0 && two.state == ZKC_INVENTORY_RESERVED, "two-line: %s", zkc_strerror(two.status));
    uint64_t lists = s1.requests[ZKC_REQ_CHILDREN] - s0.requests[ZKC_REQ_CHILDREN];
    uint64_t multis = s1.requests[ZKC_REQ_MULTI] - s0.requests[ZKC_REQ_MULTI];
    fprintf(stderr, "t_multiline_takes_over: %llu listings, %llu multis after the head went\n",
            (unsigned long long)lists, (unsigned long long)multis);
    /* B's first listing, sent once it heads A; A's none */
    ck_assert_msg(lists == 1, "%llu listings", (unsigned long long)lists);
    ck_assert_msg(multis == 1, "%llu multis (its own grant)", (unsigned long long)multis);
    zkc_inventory_stock_info a = ru_stock_of(inv1, "A"), b = ru_stock_of(inv1, "B");
    ck_assert(a.available == 0 && a.reserved == 2 && b.available == 0 && b.reserved == 1);
    zkc_inventory_destroy(inv2);
    zkc_inventory_destroy(inv1);
    tu_events_destroy(&ev);
    ck_assert_int_eq(zkc_client_destroy(c2), 0);
    ck_assert_int_eq(zkc_client_destroy(c1), 0);
}
END_TEST

/* What the head's batch must not do to a multi-line member: grant it on a
 * SKU where a request queued ahead of it (FIFO there) or where it is short
 * (it decides itself later); and what it may: refuse a fail-fast one when
 * the head's SKU is short, taking its node out of its other queue. */
START_TEST(t_multiline_batch_limits)
{
    char root[128];
    tu_unique_path(root, sizeof root, "rsvml");
    zkc_client *c1 = tu_client(tu_hosts()), *c2 = tu_client(tu_hosts());
    zkc_inventory *inv1 = ru_inv_open(c1, root), *inv2 = ru_inv_open(c2, root);
    ck_assert_int_eq(zkc_inventory_restock(inv1, "A", 0), 0);
    ck_assert_int_eq(zkc_inventory_restock(inv1, "B", 1), 0);
    ck_assert_int_eq(zkc_inventory_restock(inv1, "C", 1), 0);
    tu_events ev;
    tu_events_init(&ev);
    static ru_acall head, first, two, fast;
    head = (ru_acall){&ev, 1, "", 0, 0, 0};
    first = (ru_acall){&ev, 2, "", 0, 0, 0};
    two = (ru_acall){&ev, 3, "", 0, 0, 0};
    fast = (ru_acall){&ev, 4, "", 0, 0, 0};
    /* A: "head" waits for 1; B: "first" waits for 2 (1 in stock) */
    ru_reserve_async(inv1, &head, "ml-head", "A", 1, 1, 0, WAIT_MS);
    ru_wait_queue(inv1, "A", 1, WAIT_MS);
    ru_reserve_async(inv1, &first, "ml-first", "B", 2, 1, 0, WAIT_MS);
    ru_wait_queue(inv1, "B", 1, WAIT_MS);
    /* "two" (waits) wants A and B: behind "head" on A, "first" on B */
    two_line_async(inv2, inv1, "ml-two", &two, 2, 2);
    /* "fast" (fail-fast) wants A and C: behind "two" on A, the head of C */
    zkc_inventory_line l3[2] = {{"A", 1}, {"C", 1}};
    zkc_inventory_reserve_options o;
    memset(&o, 0, sizeof o);
    ck_assert_int_eq(zkc_inventory_reserve_async(inv2, "ml-fast", l3, 2, &o, WAIT_MS, ru_acall_cb, &fast), 0);
    ru_wait_queue(inv1, "A", 3, WAIT_MS);
    ru_wait_queue(inv1, "C", 1, WAIT_MS);
    ck_assert_int_eq(tu_events_total(&ev), 0);

    /* Two units of A: "head" takes one; "two" is not the head of B, so the
     * batch stops at it, and "fast" behind it is not decided either. */
    ck_assert_int_eq(zkc_inventory_restock(inv1, "A", 2), 0);
    ck_assert_int_eq(tu_events_wait_total(&ev, 1, WAIT_MS), 1);
    ck_assert_int_eq(head.status, 0);
    zkc_inventory_stock_info a = ru_stock_of(inv1, "A"), b = ru_stock_of(inv1, "B");
    ck_assert_msg(b.available == 1 && b.queue_length == 2,
                  "B: %lld available, %d queued: granted ahead of the request queued there first",
                  (long long)b.available, b.queue_length);
    ck_assert_msg(a.available == 1 && a.queue_length == 2, "A: %lld available, %d queued", (long long)a.available,
                  a.queue_length);

    /* Two more B: "first" takes two and reaches "two", now the head of A
     * with A's unit there: one batch grants both. Then "fast", the head of
     * A with A empty, refuses itself; C is untouched. */
    ck_assert_int_eq(zkc_inventory_restock(inv1, "B", 2), 0);
    ck_assert_int_eq(tu_events_wait_total(&ev, 4, WAIT_MS), 4);
    ck_assert_int_eq(first.status, 0);
    ck_assert_msg(two.status == 0 && two.state == ZKC_INVENTORY_RESERVED, "two: %s", zkc_strerror(two.status));
    ck_assert_msg(fast.status == ZKC_EOUTOFSTOCK && fast.state == ZKC_INVENTORY_OUT_OF_STOCK, "fast: %s",
                  zkc_strerror(fast.status));
    a = ru_stock_of(inv1, "A");
    b = ru_stock_of(inv1, "B");
    zkc_inventory_stock_info cc = ru_stock_of(inv1, "C");
    ck_assert(a.available == 0 && a.reserved == 2 && b.available == 0 && b.reserved == 3);
    ck_assert(cc.available == 1 && cc.reserved == 0 && cc.queue_length == 0);

    /* Refused in the head's batch: "late" (fail-fast, D and E) behind "h2"
     * (waits, D): one unit of D goes to "h2", and the same multi refuses
     * "late" and takes its node out of E's queue; its client writes nothing. */
    ck_assert_int_eq(zkc_inventory_restock(inv1, "D", 0), 0);
    ck_assert_int_eq(zkc_inventory_restock(inv1, "E", 1), 0);
    static ru_acall h2, late;
    h2 = (ru_acall){&ev, 5, "", 0, 0, 0};
    late = (ru_acall){&ev, 6, "", 0, 0, 0};
    ru_reserve_async(inv1, &h2, "ml-h2", "D", 1, 1, 0, WAIT_MS);
    ru_wait_queue(inv1, "D", 1, WAIT_MS);
    zkc_inventory_line l4[2] = {{"D", 1}, {"E", 1}};
    ck_assert_int_eq(zkc_inventory_reserve_async(inv2, "ml-late", l4, 2, &o, WAIT_MS, ru_acall_cb, &late), 0);
    ru_wait_queue(inv1, "D", 2, WAIT_MS);
    ru_wait_queue(inv1, "E", 1, WAIT_MS);
    zkc_stats s0, s1;
    zkc_client_stats(c2, &s0);
    ck_assert_int_eq(zkc_inventory_restock(inv1, "D", 1), 0);
    ck_assert_int_eq(tu_events_wait_total(&ev, 6, WAIT_MS), 6);
    zkc_client_stats(c2, &s1);
    ck_assert_int_eq(h2.status, 0);
    ck_assert_msg(late.status == ZKC_EOUTOFSTOCK && late.state == ZKC_INVENTORY_OUT_OF_STOCK, "late: %s",
                  zkc_strerror(late.status));
    ck_assert_uint_eq(s1.requests[ZKC_REQ_MULTI] - s0.requests[ZKC_REQ_MULTI], 0);
    zkc_inventory_stock_info e = ru_stock_of(inv1, "E");
    ck_assert(e.available == 1 && e.reserved == 0 && e.queue_length == 0);
    ck_assert_int_eq(ru_lookup(inv1, "ml-late"), ZKC_INVENTORY_OUT_OF_STOCK);
    zkc_inventory_destroy(inv2);
    zkc_inventory_destroy(inv1);
    tu_events_destroy(&ev);
    ck_assert_int_eq(zkc_client_destroy(c2), 0);
    ck_assert_int_eq(zkc_client_destroy(c1), 0);
}
END_TEST

/* ================================================================ processes */

#define FF_PROCS 3
#define FF_THREADS 6
#define FF_PER 4
#define FF_N (FF_PROCS * FF_THREADS * FF_PER)

typedef struct ff_shared {
    char root[128];
    char hosts[512];
    int wait_mode;
    int timeout_ms;
    int64_t qty[FF_N];
    int rc[FF_N];
    int state[FF_N];
    int done[FF_N];
    char err[256];
    ru_qpos qp; /* where each request was queued (FIFO order) */
} ff_shared;

static ru_procs g_procs;

/* ---- worker processes of requesting threads ---- */

/* Request i of a worker process (outcome into the test's shared memory). */
typedef void (*request_fn)(zkc_inventory *inv, void *sh, int i);

typedef struct req_thread {
    zkc_inventory *inv;
    void *sh;
    request_fn fn;
    int first, per;
} req_thread;

static void *req_thread_main(void *arg)
{
    req_thread *t = arg;
    for (int k = 0; k < t->per; k++)
        t->fn(t->inv, t->sh, t->first + k);
    return NULL;
}

#define REQ_THREADS_MAX 8

/* Worker process p: a client (queue positions to qp if not NULL) and an
 * inventory on root; after the go, nthreads threads make requests
 * (p * nthreads + t) * per .. + per - 1 with fn, thread t each. Its exit code. */
static int request_proc(int p, const char *hosts, const char *root, ru_qpos *qp, int nthreads, int per, request_fn fn,
                        void *sh)
{
    zkc_client *c;
    zkc_inventory *inv;
    int rc = ru_child_inventory(&g_procs, hosts, tu_ms(10000), qp, root, &c, &inv);
    if (rc)
        return rc;
    if (nthreads > REQ_THREADS_MAX)
        return 5;
    pthread_t th[REQ_THREADS_MAX];
    req_thread ts[REQ_THREADS_MAX];
    for (int t = 0; t < nthreads; t++) {
        ts[t] = (req_thread){inv, sh, fn, (p * nthreads + t) * per, per};
        pthread_create(&th[t], NULL, req_thread_main, &ts[t]);
    }
    for (int t = 0; t < nthreads; t++)
        pthread_join(th[t], NULL);
    zkc_inventory_destroy(inv);
    zkc_client_destroy(c);
    return 0;
}

static void ff_request(zkc_inventory *inv, void *arg, int i)
{
    ff_shared *sh = arg;
    char id[32];
    snprintf(id, sizeof id, "r%03d", i);
    zkc_inventory_line l = {"S", sh->qty[i]};
    zkc_inventory_reserve_options o;
    memset(&o, 0, sizeof o);
    o.wait_for_restock = sh->wait_mode;
    zkc_inventory_state st = ZKC_INVENTORY_PENDING;
    sh->rc[i] = zkc_inventory_reserve(inv, id, &l, 1, &o, sh->timeout_ms, NULL, &st);
    sh->state[i] = (int)st;
    if (sh->rc[i] != 0 && sh->rc[i] != ZKC_EOUTOFSTOCK && !sh->err[0])
        snprintf(sh->err, sizeof sh->err, "%s: %s", id, zkc_errmsg());
    __atomic_store_n(&sh->done[i], 1, __ATOMIC_RELEASE);
}

static int ff_proc(int p, void *arg)
{
    ff_shared *sh = arg;
    return request_proc(p, sh->hosts, sh->root, &sh->qp, FF_THREADS, FF_PER, ff_request, sh);
}

/* Multi-line orders (issue 19: the head of a queue decides them in its
 * batch when nothing undecided is ahead of them in their other queues).
 * Three orders in four have a line on S and 0-2 lines on T0..T3; the fourth
 * has 1-2 lines on T0..T3 only, so an order can have a request ahead of it in
 * a T queue that S's head does not see. Fail-fast. */
#define FM_T 4
#define FM_PROCS 6 /* one thread each: every enqueue is its own multi */
#define FM_PER (FF_N / FM_PROCS)
static int fm_lines(int i, zkc_inventory_line *l, char names[3][8])
{
    int with_s = i % 4 != 3, n = with_s ? 1 + i % 3 : 1 + (i / 4) % 2, k = 0;
    if (with_s) {
        snprintf(names[0], 8, "S");
        l[0] = (zkc_inventory_line){names[0], 1 + (i * 7) % 2};
        k = 1;
    }
    for (int j = 0; k < n; k++, j++) {
        snprintf(names[k], 8, "T%d", (i / 3 + j) % FM_T);
        l[k] = (zkc_inventory_line){names[k], 1 + (i + k) % 2};
    }
    return n;
}

static void fm_request(zkc_inventory *inv, void *arg, int i)
{
    ff_shared *sh = arg;
    char id[32], names[3][8];
    zkc_inventory_line l[3];
    int n = fm_lines(i, l, names);
    snprintf(id, sizeof id, "r%03d", i);
    zkc_inventory_reserve_options o;
    memset(&o, 0, sizeof o);
    zkc_inventory_state st = ZKC_INVENTORY_PENDING;
    sh->rc[i] = zkc_inventory_reserve(inv, id, l, n, &o, sh->timeout_ms, NULL, &st);
    sh->state[i] = (int)st;
    if (sh->rc[i] != 0 && sh->rc[i] != ZKC_EOUTOFSTOCK && !sh->err[0])
        snprintf(sh->err, sizeof sh->err, "%s: %s", id, zkc_errmsg());
    __atomic_store_n(&sh->done[i], 1, __ATOMIC_RELEASE);
}

static int fm_proc(int p, void *arg)
{
    ff_shared *sh = arg;
    return request_proc(p, sh->hosts, sh->root, &sh->qp, 1, FM_PER, fm_request, sh);
}

/* Fail-fast multi-line orders from several processes, stock below demand on
 * every SKU: each SKU decides its requests in its queue's order and an order
 * takes all its lines or none, so the outcome of every order is exactly what
 * a sequential walk in arrival order (record czxid order: one process, one
 * thread, so no two orders share an enqueue multi) gives, whichever head
 * decided it. */
START_TEST(t_fifo_multiline_processes)
{
    ff_shared *sh = ru_shared_alloc(sizeof *sh);
    tu_unique_path(sh->root, sizeof sh->root, "rsvfm");
    snprintf(sh->hosts, sizeof sh->hosts, "%s", tu_hosts());
    sh->timeout_ms = WAIT_MS;
    const char *skus[1 + FM_T] = {"S", "T0", "T1", "T2", "T3"};
    int64_t demand[1 + FM_T] = {0}, stock[1 + FM_T], avail[1 + FM_T];
    for (int i = 0; i < FF_N; i++) {
        char names[3][8];
        zkc_inventory_line l[3];
        int n = fm_lines(i, l, names);
        for (int k = 0; k < n; k++)
            for (int s = 0; s <= FM_T; s++)
                if (!strcmp(l[k].sku, skus[s]))
                    demand[s] += l[k].qty;
    }
    ru_procs_start(&g_procs, FM_PROCS, fm_proc, sh);
    zkc_client *c = tu_client(tu_hosts());
    zkc_inventory *inv = ru_inv_open(c, sh->root);
    for (int s = 0; s <= FM_T; s++) {
        stock[s] = avail[s] = s == 0 ? demand[s] * 2 / 3 : demand[s] / 2;
        ck_assert_int_eq(zkc_inventory_restock(inv, skus[s], stock[s]), 0);
    }
    long long t0 = tu_now_ms();
    ru_procs_go(&g_procs);
    ru_procs_join(&g_procs, WAIT_MS * 2);
    long long dt = tu_now_ms() - t0;
    ck_assert_msg(!sh->err[0], "a request failed: %s", sh->err);

    tu_raw *raw = tu_raw_open(tu_hosts(), tu_ms(10000));
    ru_rec *v;
    int n = ru_records(tu_raw_zh(raw), sh->root, &v);
    ck_assert_int_eq(n, FF_N);
    for (int k = 1; k < n; k++) /* sorted by czxid: the arrival order */
        ck_assert_msg(v[k].czxid > v[k - 1].czxid, "%s and %s were queued by one multi", v[k - 1].id, v[k].id);
    int granted = 0, multi_granted = 0;
    for (int k = 0; k < n; k++) { /* arrival order */
        int i = atoi(v[k].id + 1);
        ck_assert(i >= 0 && i < FF_N && sh->done[i]);
        char names[3][8];
        zkc_inventory_line l[3];
        int nl = fm_lines(i, l, names), fits = 1, idx[3];
        for (int j = 0; j < nl; j++) {
            for (int s = 0; s <= FM_T; s++)
                if (!strcmp(l[j].sku, skus[s]))
                    idx[j] = s;
            fits &= l[j].qty <= avail[idx[j]];
        }
        int expect = fits ? ZKC_INVENTORY_RESERVED : ZKC_INVENTORY_OUT_OF_STOCK;
        if (fits) {
            for (int j = 0; j < nl; j++)
                avail[idx[j]] -= l[j].qty;
            granted++;
            multi_granted += nl > 1;
        }
        ck_assert_msg(v[k].r.state == expect, "request %s (arrival %d, %d lines): %s, FIFO says %s", v[k].id, k, nl,
                      zkc__res_state_name(v[k].r.state), zkc__res_state_name(expect));
        ck_assert_int_eq(sh->state[i], expect);
        ck_assert_int_eq(sh->rc[i], fits ? 0 : ZKC_EOUTOFSTOCK);
    }
    for (int s = 0; s <= FM_T; s++) {
        ru_check_units(tu_raw_zh(raw), sh->root, skus[s], stock[s], v, n);
        ck_assert_int_eq(ru_queue_len(tu_raw_zh(raw), sh->root, skus[s]), 0);
    }
    ck_assert_int_gt(multi_granted, 0);
    fprintf(stderr,
            "t_fifo_multiline_processes: %d orders of 1-3 lines (%d granted, %d of them multi-line) from %d processes "
            "in %lld ms\n",
            FF_N, granted, multi_granted, FM_PROCS, dt);
    free(v);
    tu_raw_close(raw);
    zkc_inventory_destroy(inv);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

/* Fail-fast, demand above stock, several processes: the outcome of every
 * request is exactly what a sequential walk in arrival order gives. */
START_TEST(t_fifo_fail_fast_processes)
{
    ff_shared *sh = ru_shared_alloc(sizeof *sh);
    tu_unique_path(sh->root, sizeof sh->root, "rsvff");
    snprintf(sh->hosts, sizeof sh->hosts, "%s", tu_hosts());
    sh->timeout_ms = WAIT_MS;
    int64_t demand = 0;
    for (int i = 0; i < FF_N; i++) {
        sh->qty[i] = 1 + (i * 7) % 3;
        demand += sh->qty[i];
    }
    const int64_t stock = demand / 2;
    ru_procs_start(&g_procs, FF_PROCS, ff_proc, sh);
    zkc_client *c = tu_client(tu_hosts());
    zkc_inventory *inv = ru_inv_open(c, sh->root);
    ck_assert_int_eq(zkc_inventory_restock(inv, "S", stock), 0);
    long long t0 = tu_now_ms();
    ru_procs_go(&g_procs);
    ru_procs_join(&g_procs, WAIT_MS * 2);
    long long dt = tu_now_ms() - t0;
    ck_assert_msg(!sh->err[0], "a request failed: %s", sh->err);

    tu_raw *raw = tu_raw_open(tu_hosts(), tu_ms(10000));
    ru_rec *v;
    int n = ru_records(tu_raw_zh(raw), sh->root, &v);
    ck_assert_int_eq(n, FF_N);
    ck_assert_int_eq(ru_order_by_queue(v, n, &sh->qp), FF_N);
    int64_t avail = stock, granted = 0;
    int64_t last_mzxid = 0;
    for (int k = 0; k < n; k++) { /* arrival order */
        int i = atoi(v[k].id + 1);
        ck_assert(i >= 0 && i < FF_N && sh->done[i]);
        int expect = sh->qty[i] <= avail ? ZKC_INVENTORY_RESERVED : ZKC_INVENTORY_OUT_OF_STOCK;
        if (expect == ZKC_INVENTORY_RESERVED) {
            avail -= sh->qty[i];
            granted++;
        }
        ck_assert_msg(v[k].r.state == expect, "request %s (arrival %d, qty %lld): %s, FIFO says %s", v[k].id, k,
                      (long long)sh->qty[i], zkc__res_state_name(v[k].r.state), zkc__res_state_name(expect));
        ck_assert_int_eq(sh->state[i], expect);
        ck_assert_int_eq(sh->rc[i], expect == ZKC_INVENTORY_RESERVED ? 0 : ZKC_EOUTOFSTOCK);
        /* decided in arrival order */
        ck_assert_msg(v[k].mzxid >= last_mzxid, "request %s decided before an earlier arrival", v[k].id);
        last_mzxid = v[k].mzxid;
    }
    ru_check_units(tu_raw_zh(raw), sh->root, "S", stock, v, n);
    ck_assert_int_eq(ru_queue_len(tu_raw_zh(raw), sh->root, "S"), 0);
    fprintf(stderr, "t_fifo_fail_fast_processes: %d requests (%d granted) from %d processes x %d threads in %lld ms\n",
            FF_N, (int)granted, FF_PROCS, FF_THREADS, dt);
    /* confirm some, cancel some: still exact */
    for (int k = 0, m = 0; k < n; k++) {
        if (v[k].r.state != ZKC_INVENTORY_RESERVED)
            continue;
        int rc = (m++ % 2) ? zkc_inventory_confirm(inv, v[k].id) : zkc_inventory_return(inv, v[k].id);
        ck_assert_msg(rc == 0, "settle %s: %s", v[k].id, zkc_errmsg());
    }
    free(v);
    n = ru_records(tu_raw_zh(raw), sh->root, &v);
    ru_check_units(tu_raw_zh(raw), sh->root, "S", stock, v, n);
    free(v);
    tu_raw_close(raw);
    zkc_inventory_destroy(inv);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

/* Wait mode with a trickle of restocks: every request is granted, strictly in
 * arrival order. */
START_TEST(t_fifo_wait_processes)
{
    ff_shared *sh = ru_shared_alloc(sizeof *sh);
    tu_unique_path(sh->root, sizeof sh->root, "rsvfw");
    snprintf(sh->hosts, sizeof sh->hosts, "%s", tu_hosts());
    sh->wait_mode = 1;
    sh->timeout_ms = tu_ms(45000);
    int64_t demand = 0;
    for (int i = 0; i < FF_N; i++) {
        sh->qty[i] = 1 + (i * 5) % 3;
        demand += sh->qty[i];
    }
    ru_procs_start(&g_procs, FF_PROCS, ff_proc, sh);
    zkc_client *c = tu_client(tu_hosts());
    zkc_inventory *inv = ru_inv_open(c, sh->root);
    ck_assert_int_eq(zkc_inventory_restock(inv, "S", 3), 0);
    int64_t total = 3;
    ru_procs_go(&g_procs);
    long long deadline = tu_now_ms() + WAIT_MS;
    while (total < demand) {
        ck_assert_msg(tu_now_ms() < deadline, "restocking took too long");
        tu_nap_ms(40);
        ck_assert_int_eq(zkc_inventory_restock(inv, "S", 5), 0);
        total += 5;
    }
    ru_procs_join(&g_procs, WAIT_MS * 2);
    ck_assert_msg(!sh->err[0], "a request failed: %s", sh->err);
    tu_raw *raw = tu_raw_open(tu_hosts(), tu_ms(10000));
    ru_rec *v;
    int n = ru_records(tu_raw_zh(raw), sh->root, &v);
    ck_assert_int_eq(n, FF_N);
    ck_assert_int_eq(ru_order_by_queue(v, n, &sh->qp), FF_N);
    int64_t last = 0;
    for (int k = 0; k < n; k++) {
        ck_assert_msg(v[k].r.state == ZKC_INVENTORY_RESERVED, "%s: %s", v[k].id, zkc__res_state_name(v[k].r.state));
        ck_assert_msg(v[k].mzxid >= last, "request %s granted before an earlier arrival", v[k].id);
        last = v[k].mzxid;
    }
    ru_check_units(tu_raw_zh(raw), sh->root, "S", total, v, n);
    zkc_inventory_stock_info si = ru_stock_of(inv, "S");
    ck_assert_int_eq(si.reserved, demand);
    ck_assert_int_eq(si.available, total - demand);
    free(v);
    tu_raw_close(raw);
    zkc_inventory_destroy(inv);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

/* ---- one id from two processes at once, then after a restart ---- */

typedef struct dup_shared {
    char root[128];
    char hosts[512];
    int rc[2], state[2];
    char err[2][200];
} dup_shared;

static int dup_proc(int p, void *arg)
{
    dup_shared *sh = arg;
    zkc_client *c;
    zkc_inventory *inv;
    int rc = ru_child_inventory(&g_procs, sh->hosts, tu_ms(10000), NULL, sh->root, &c, &inv);
    if (rc)
        return rc;
    zkc_inventory_line l = {"D", 2};
    zkc_inventory_reserve_options o = {1, 0, {0}};
    zkc_inventory_state st = ZKC_INVENTORY_PENDING;
    sh->rc[p] = zkc_inventory_reserve(inv, "same-order", &l, 1, &o, tu_ms(30000), NULL, &st);
    sh->state[p] = (int)st;
    snprintf(sh->err[p], sizeof sh->err[p], "%s", zkc_errmsg());
    zkc_inventory_destroy(inv);
    zkc_client_destroy(c);
    return 0;
}

START_TEST(t_same_id_processes)
{
    dup_shared *sh = ru_shared_alloc(sizeof *sh);
    tu_unique_path(sh->root, sizeof sh->root, "rsvdup");
    snprintf(sh->hosts, sizeof sh->hosts, "%s", tu_hosts());
    ru_procs_start(&g_procs, 2, dup_proc, sh);
    zkc_client *c = tu_client(tu_hosts());
    zkc_inventory *inv = ru_inv_open(c, sh->root);
    ck_assert_int_eq(zkc_inventory_restock(inv, "D", 0), 0);
    ru_procs_go(&g_procs);
    /* both are in: one queued, the other follows it (it queued nothing) */
    ru_wait_queue(inv, "D", 1, WAIT_MS);
    tu_nap_ms(300);
    ck_assert_int_eq(ru_stock_of(inv, "D").queue_length, 1);
    ck_assert_int_eq(zkc_inventory_restock(inv, "D", 5), 0);
    ru_procs_join(&g_procs, WAIT_MS * 2);
    for (int p = 0; p < 2; p++) {
        ck_assert_msg(sh->rc[p] == 0, "process %d: %s", p, sh->err[p]);
        ck_assert_int_eq(sh->state[p], ZKC_INVENTORY_RESERVED);
    }
    zkc_inventory_stock_info si = ru_stock_of(inv, "D");
    ck_assert(si.reserved == 2 && si.available == 3);
    /* a restarted worker (new client) asks again: the first outcome, no new units */
    zkc_client *c2 = tu_client(tu_hosts());
    zkc_inventory *inv2 = ru_inv_open(c2, sh->root);
    zkc_inventory_state st;
    zkc_inventory_line l = {"D", 2};
    ck_assert_int_eq(zkc_inventory_reserve(inv2, "same-order", &l, 1, NULL, WAIT_MS, NULL, &st), 0);
    ck_assert_int_eq(st, ZKC_INVENTORY_RESERVED);
    ck_assert_int_eq(ru_stock_of(inv2, "D").reserved, 2);
    zkc_inventory_destroy(inv2);
    ck_assert_int_eq(zkc_client_destroy(c2), 0);
    zkc_inventory_destroy(inv);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

/* ---- multi-line orders over overlapping SKUs ---- */

#define ML_PROCS 3
#define ML_THREADS 4
#define ML_PER 4
#define ML_N (ML_PROCS * ML_THREADS * ML_PER)
static const char *ml_skus[3] = {"X", "Y", "Z"};

typedef struct ml_shared {
    char root[128];
    char hosts[512];
    int rc[ML_N], state[ML_N], done[ML_N];
    char err[256];
} ml_shared;

static int ml_lines(int i, zkc_inventory_line *l)
{
    int n = 2 + i % 2, first = i % 3;
    for (int j = 0; j < n; j++) {
        l[j].sku = ml_skus[(first + (i % 4 < 2 ? j : 3 - j)) % 3];
        l[j].qty = 1 + (i + j) % 2;
    }
    return n;
}

static void ml_request(zkc_inventory *inv, void *arg, int i)
{
    ml_shared *sh = arg;
    char id[32];
    snprintf(id, sizeof id, "m%03d", i);
    zkc_inventory_line l[3];
    int n = ml_lines(i, l);
    zkc_inventory_reserve_options o = {1, 0, {0}};
    zkc_inventory_state st = ZKC_INVENTORY_PENDING;
    sh->rc[i] = zkc_inventory_reserve(inv, id, l, n, &o, tu_ms(20000), NULL, &st);
    sh->state[i] = (int)st;
    if (sh->rc[i] != 0 && sh->rc[i] != ZKC_ETIMEDOUT && !sh->err[0])
        snprintf(sh->err, sizeof sh->err, "%s: %s", id, zkc_errmsg());
    __atomic_store_n(&sh->done[i], 1, __ATOMIC_RELEASE);
}

static int ml_proc(int p, void *arg)
{
    ml_shared *sh = arg;
    return request_proc(p, sh->hosts, sh->root, NULL, ML_THREADS, ML_PER, ml_request, sh);
}

START_TEST(t_multiline_processes)
{
    ml_shared *sh = ru_shared_alloc(sizeof *sh);
    tu_unique_path(sh->root, sizeof sh->root, "rsvml");
    snprintf(sh->hosts, sizeof sh->hosts, "%s", tu_hosts());
    int64_t demand[3] = {0, 0, 0};
    for (int i = 0; i < ML_N; i++) {
        zkc_inventory_line l[3];
        int n = ml_lines(i, l);
        for (int j = 0; j < n; j++)
            demand[l[j].sku[0] - 'X'] += l[j].qty;
    }
    ru_procs_start(&g_procs, ML_PROCS, ml_proc, sh);
    zkc_client *c = tu_client(tu_hosts());
    zkc_inventory *inv = ru_inv_open(c, sh->root);
    int64_t total[3];
    for (int s = 0; s < 3; s++) {
        total[s] = demand[s] / 3;
        ck_assert_int_eq(zkc_inventory_restock(inv, ml_skus[s], total[s]), 0);
    }
    long long t0 = tu_now_ms();
    ru_procs_go(&g_procs);
    /* trickle in the rest, one SKU at a time, so heads wait on each other's SKUs */
    for (int round = 0, more = 1; more; round++) {
        more = 0;
        for (int s = 0; s < 3; s++) {
            if (total[s] < demand[s]) {
                int64_t add = demand[s] - total[s] < 4 ? demand[s] - total[s] : 4;
                ck_assert_int_eq(zkc_inventory_restock(inv, ml_skus[s], add), 0);
                total[s] += add;
                more = 1;
                tu_nap_ms(30);
            }
        }
    }
    /* bounded time: a deadlock would hang the workers past this */
    ru_procs_join(&g_procs, tu_ms(60000));
    long long dt = tu_now_ms() - t0;
    ck_assert_msg(!sh->err[0], "an order failed: %s", sh->err);
    tu_raw *raw = tu_raw_open(tu_hosts(), tu_ms(10000));
    ru_rec *v;
    int n = ru_records(tu_raw_zh(raw), sh->root, &v);
    ck_assert_int_eq(n, ML_N);
    int granted = 0;
    for (int k = 0; k < n; k++) {
        int i = atoi(v[k].id + 1);
        ck_assert(sh->done[i]);
        ck_assert_msg(v[k].r.state == ZKC_INVENTORY_RESERVED || v[k].r.state == ZKC_INVENTORY_TIMED_OUT, "%s: %s", v[k].id,
                      zkc__res_state_name(v[k].r.state));
        ck_assert_int_eq(sh->state[i], v[k].r.state);
        granted += v[k].r.state == ZKC_INVENTORY_RESERVED;
    }
    /* no partial reservation: every SKU's reserved units are exactly its share
     * of the RESERVED orders */
    for (int s = 0; s < 3; s++) {
        ru_check_units(tu_raw_zh(raw), sh->root, ml_skus[s], total[s], v, n);
        ck_assert_int_eq(ru_queue_len(tu_raw_zh(raw), sh->root, ml_skus[s]), 0);
    }
    ck_assert_int_eq(granted, ML_N); /* supply met demand: nobody should have starved */
    fprintf(stderr, "t_multiline_processes: %d multi-line orders over 3 SKUs from %d processes in %lld ms\n", ML_N,
            ML_PROCS, dt);
    free(v);
    tu_raw_close(raw);
    zkc_inventory_destroy(inv);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

/* ================================================================ throughput */

#define TP_REQUESTERS 64
#define TP_CLIENTS 8

typedef struct tp_arg {
    zkc_inventory *inv;
    zkc_lock *lock;
    zkc_counter *ctr;
    int idx, orders;
    int granted, failed;
    char err[160];
} tp_arg;

static void *tp_queue_main(void *p)
{
    tp_arg *a = p;
    for (int k = 0; k < a->orders; k++) {
        char id[48];
        snprintf(id, sizeof id, "tp-%d-%d", a->idx, k);
        zkc_inventory_line l = {"T", 1};
        zkc_inventory_state st;
        int rc = zkc_inventory_reserve(a->inv, id, &l, 1, NULL, tu_ms(60000), NULL, &st);
        if (rc == 0)
            a->granted++;
        else if (!a->failed++)
            snprintf(a->err, sizeof a->err, "%s", zkc_errmsg());
    }
    return NULL;
}

/* Reserve, then confirm at once: confirms race the grants on the SKU record. */
static void *tp_confirm_main(void *p)
{
    tp_arg *a = p;
    for (int k = 0; k < a->orders; k++) {
        char id[48];
        snprintf(id, sizeof id, "cf-%d-%d", a->idx, k);
        zkc_inventory_line l = {"C", 1};
        zkc_inventory_state st;
        int rc = zkc_inventory_reserve(a->inv, id, &l, 1, NULL, tu_ms(60000), NULL, &st);
        if (rc == 0)
            rc = zkc_inventory_confirm(a->inv, id);
        if (rc == 0)
            a->granted++;
        else if (!a->failed++)
            snprintf(a->err, sizeof a->err, "%s: %s", id, zkc_errmsg());
    }
    return NULL;
}

static void *tp_lock_main(void *p)
{
    tp_arg *a = p;
    for (int k = 0; k < a->orders; k++) {
        int rc = zkc_lock_acquire(a->lock, tu_ms(60000), NULL);
        int64_t v = 0;
        if (rc == 0 && (rc = zkc_counter_get(a->ctr, &v)) == 0 && v >= 1)
            rc = zkc_counter_set(a->ctr, v - 1);
        if (rc == 0 && v >= 1)
            a->granted++;
        else if (!a->failed++)
            snprintf(a->err, sizeof a->err, "%s", zkc_errmsg());
        zkc_lock_release(a->lock);
    }
    return NULL;
}

static uint64_t requests_of(zkc_client **cs, int n)
{
    uint64_t t = 0;
    for (int i = 0; i < n; i++) {
        zkc_stats st;
        zkc_client_stats(cs[i], &st);
        t += st.requests_total;
    }
    return t;
}

static uint64_t writes_of(zkc_client **cs, int n)
{
    uint64_t t = 0;
    for (int i = 0; i < n; i++) {
        zkc_stats st;
        zkc_client_stats(cs[i], &st);
        t += st.requests[ZKC_REQ_CREATE] + st.requests[ZKC_REQ_DELETE] + st.requests[ZKC_REQ_SET] +
             st.requests[ZKC_REQ_MULTI];
    }
    return t;
}

static int env_int(const char *name, int dflt)
{
    const char *s = getenv(name);
    int v = s && *s ? atoi(s) : dflt;
    return v > 0 ? v : dflt;
}

/* Confirms (versioned writes of the SKU record) racing the batches: every
 * order is reserved and sold, nothing is refused for contention, and the units
 * add up exactly. */
START_TEST(t_confirm_while_granting)
{
    enum { REQ = 24, ORDERS = 6, CLIENTS = 4 };
    char root[128];
    tu_unique_path(root, sizeof root, "rsvcf");
    zkc_client *cs[CLIENTS];
    zkc_inventory *invs[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        cs[i] = tu_client(tu_hosts());
        invs[i] = ru_inv_open(cs[i], root);
    }
    ck_assert_int_eq(zkc_inventory_restock(invs[0], "C", REQ * ORDERS + 5), 0);
    static tp_arg args[REQ];
    pthread_t th[REQ];
    memset(args, 0, sizeof args);
    for (int i = 0; i < REQ; i++) {
        args[i].inv = invs[i % CLIENTS];
        args[i].idx = i;
        args[i].orders = ORDERS;
        pthread_create(&th[i], NULL, tp_confirm_main, &args[i]);
    }
    for (int i = 0; i < REQ; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(args[i].failed == 0, "requester %d: %s", i, args[i].err);
    }
    zkc_inventory_stock_info si = ru_stock_of(invs[0], "C");
    ck_assert(si.sold == REQ * ORDERS && si.reserved == 0 && si.available == 5 && si.queue_length == 0);
    zkc_stats st;
    uint64_t conflicts = 0;
    for (int i = 0; i < CLIENTS; i++) {
        zkc_client_stats(cs[i], &st);
        conflicts += st.conflicts;
    }
    fprintf(stderr, "t_confirm_while_granting: %d orders reserved and confirmed, %llu version conflicts\n",
            REQ * ORDERS, (unsigned long long)conflicts);
    tu_raw *raw = tu_raw_open(tu_hosts(), tu_ms(10000));
    ru_rec *v;
    int n = ru_records(tu_raw_zh(raw), root, &v);
    ck_assert_int_eq(n, REQ * ORDERS);
    ru_check_units(tu_raw_zh(raw), root, "C", REQ * ORDERS + 5, v, n);
    free(v);
    tu_raw_close(raw);
    for (int i = 0; i < CLIENTS; i++) {
        zkc_inventory_destroy(invs[i]);
        ck_assert_int_eq(zkc_client_destroy(cs[i]), 0);
    }
}
END_TEST

/* Grants per second, 64 requesters: the batched queue vs lock + counter get +
 * set + unlock per order. Printed, not asserted (shared machines). */
START_TEST(t_throughput)
{
    int orders = env_int("ZKC_RESERVE_BENCH_ORDERS", 8);
    char root[128], lpath[160], cpath[160];
    tu_unique_path(root, sizeof root, "rsvtp");
    snprintf(lpath, sizeof lpath, "%s/plain/lock", root);
    snprintf(cpath, sizeof cpath, "%s/plain/stock", root);
    zkc_client *cs[TP_CLIENTS];
    zkc_inventory *invs[TP_CLIENTS];
    for (int i = 0; i < TP_CLIENTS; i++) {
        cs[i] = tu_client(tu_hosts());
        invs[i] = ru_inv_open(cs[i], root);
    }
    int64_t units = (int64_t)TP_REQUESTERS * orders;
    ck_assert_int_eq(zkc_inventory_restock(invs[0], "T", units), 0);
    static tp_arg args[TP_REQUESTERS];
    pthread_t th[TP_REQUESTERS];
    memset(args, 0, sizeof args);
    /* queue */
    uint64_t r0 = requests_of(cs, TP_CLIENTS), w0 = writes_of(cs, TP_CLIENTS);
    long long t0 = tu_now_ms();
    for (int i = 0; i < TP_REQUESTERS; i++) {
        args[i].inv = invs[i % TP_CLIENTS];
        args[i].idx = i;
        args[i].orders = orders;
        pthread_create(&th[i], NULL, tp_queue_main, &args[i]);
    }
    int granted = 0;
    for (int i = 0; i < TP_REQUESTERS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(args[i].failed == 0, "queue requester %d: %s", i, args[i].err);
        granted += args[i].granted;
    }
    double tq = (tu_now_ms() - t0) / 1000.0;
    uint64_t rq_req = requests_of(cs, TP_CLIENTS) - r0, rq_wr = writes_of(cs, TP_CLIENTS) - w0;
    zkc_inventory_stock_info si = ru_stock_of(invs[0], "T");
    ck_assert_int_eq(si.reserved, units);
    ck_assert_int_eq(granted, units);
    /* plain: lock + counter get + set + unlock per order */
    zkc_counter_options co;
    zkc_counter_options_init(&co);
    co.no_combine = 1;
    zkc_counter *ctrs[TP_CLIENTS];
    for (int i = 0; i < TP_CLIENTS; i++)
        ck_assert_int_eq(zkc_counter_create(cs[i], cpath, &co, &ctrs[i]), 0);
    ck_assert_int_eq(zkc_counter_set(ctrs[0], units), 0);
    memset(args, 0, sizeof args);
    r0 = requests_of(cs, TP_CLIENTS);
    w0 = writes_of(cs, TP_CLIENTS);
    t0 = tu_now_ms();
    for (int i = 0; i < TP_REQUESTERS; i++) {
        ck_assert_int_eq(zkc_lock_create(cs[i % TP_CLIENTS], lpath, &args[i].lock), 0);
        args[i].ctr = ctrs[i % TP_CLIENTS];
        args[i].idx = i;
        args[i].orders = orders;
        pthread_create(&th[i], NULL, tp_lock_main, &args[i]);
    }
    int pgranted = 0;
    for (int i = 0; i < TP_REQUESTERS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(args[i].failed == 0, "lock requester %d: %s", i, args[i].err);
        pgranted += args[i].granted;
        zkc_lock_destroy(args[i].lock);
    }
    double tl = (tu_now_ms() - t0) / 1000.0;
    uint64_t pl_req = requests_of(cs, TP_CLIENTS) - r0, pl_wr = writes_of(cs, TP_CLIENTS) - w0;
    int64_t left = -1;
    /* the last sets were other clients': cs[0]'s server may not have them yet */
    ck_assert_int_eq(zkc_counter_get_fresh(ctrs[0], &left), 0);
    ck_assert_int_eq(left, 0);
    ck_assert_int_eq(pgranted, units);
    double rq = granted / (tq > 0 ? tq : 0.001), rl = pgranted / (tl > 0 ? tl : 0.001);
    fprintf(stderr,
            "t_throughput: %d requesters x %d orders of 1 unit: queue %.0f grants/s (%.2f s), lock+counter %.0f "
            "grants/s (%.2f s): ratio %.1fx\n"
            "t_throughput: ZooKeeper requests per order: queue %.1f (%.2f writes), lock+counter %.1f (%.2f writes)\n",
            TP_REQUESTERS, orders, rq, tq, rl, tl, rq / (rl > 0 ? rl : 1), (double)rq_req / (double)units,
            (double)rq_wr / (double)units, (double)pl_req / (double)units, (double)pl_wr / (double)units);
    for (int i = 0; i < TP_CLIENTS; i++) {
        zkc_counter_destroy(ctrs[i]);
        zkc_inventory_destroy(invs[i]);
        ck_assert_int_eq(zkc_client_destroy(cs[i]), 0);
    }
}
END_TEST

/* ================================================================ main */

int main(void)
{
    Suite *s = suite_create("reserve");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, t_codec_sku);
    tcase_add_test(tc, t_codec_records);
    suite_add_tcase(s, tc);

    tc = tcase_create("api");
    tcase_set_timeout(tc, 120 * tu_scale());
    tcase_add_test(tc, t_api_basics);
    tcase_add_test(tc, t_bypass_detected);
    tcase_add_test(tc, t_strict_fifo_restock);
    tcase_add_test(tc, t_timeouts_and_try);
    tcase_add_test(tc, t_abandoned_and_destroy);
    tcase_add_test(tc, t_reap_and_retention);
    tcase_add_test(tc, t_acl_shared_identity);
    tcase_add_test(tc, t_queue_limit);
    tcase_add_test(tc, t_queue_length_seen);
    tcase_add_test(tc, t_listing_behind_enqueue);
    tcase_add_test(tc, t_combined_enqueue);
    tcase_add_test(tc, t_shared_listings);
    tcase_add_test(tc, t_cross_client_reads);
    tcase_add_test(tc, t_multiline_in_batch);
    tcase_add_test(tc, t_multiline_takes_over);
    tcase_add_test(tc, t_multiline_batch_limits);
    suite_add_tcase(s, tc);

    /* Many processes and threads at once: the heavy tier, as is the bench. */
    tc = tcase_create("processes");
    tcase_set_tags(tc, TU_HEAVY);
    tcase_set_timeout(tc, 240 * tu_scale());
    tcase_add_test(tc, t_fifo_fail_fast_processes);
    tcase_add_test(tc, t_fifo_multiline_processes);
    tcase_add_test(tc, t_fifo_wait_processes);
    tcase_add_test(tc, t_same_id_processes);
    tcase_add_test(tc, t_multiline_processes);
    tcase_add_test(tc, t_confirm_while_granting);
    suite_add_tcase(s, tc);

    /* CK_RUN_CASE=bench ZKC_RESERVE_BENCH_ORDERS=1000 runs only this one. */
    tc = tcase_create("bench");
    tcase_set_tags(tc, TU_HEAVY);
    tcase_set_timeout(tc, 3600 * tu_scale());
    tcase_add_test(tc, t_throughput);
    suite_add_tcase(s, tc);
    return tu_main(s, 1);
}
