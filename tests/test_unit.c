/* Unit tests that need no ZooKeeper: path validation (through the public API,
 * which validates before it connects), the error table, and the queue-member
 * name parsing and serial-number order of lib/seqname.c (a private pure
 * module, compiled into this program), and the known-paths hint of
 * lib/pathcache.c on a bare client struct. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include "internal.h"
#include "list.h"
#include "seqname.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Nobody listens on port 1 of the loopback: a path that passes validation
 * makes zkc_client_create try to connect and fail with ZKC_ECONNLOSS. */
#define NOWHERE "127.0.0.1:1"

static int create_with_chroot(const char *chroot_path, const char *meta_root)
{
    zkc_client_options o;
    zkc_client_options_init(&o);
    o.hosts = NOWHERE;
    o.chroot = chroot_path;
    o.meta_root = meta_root;
    o.connect_timeout_ms = tu_ms(200);
    zkc_client *c = NULL;
    int rc = zkc_client_create(&c, &o);
    ck_assert_ptr_null(c);
    return rc;
}

static void long_path(char *buf, size_t total)
{
    /* "/aaaa.../aaaa..." of exactly `total` bytes, components of 100. */
    size_t i = 0;
    while (i < total) {
        buf[i++] = '/';
        for (int k = 0; k < 99 && i < total; k++)
            buf[i++] = 'a';
    }
    if (buf[total - 1] == '/')
        buf[total - 1] = 'b';
    buf[total] = 0;
}

static const struct {
    const char *path;
    const char *why; /* a word zkc_errmsg() must contain */
} bad_paths[] = {
    {"", "empty"},
    {"relative", "absolute"},
    {"relative/child", "absolute"},
    {"/trailing/", "empty component"},
    {"/double//slash", "empty component"},
    {"//", "empty component"},
    {"/.", "\".\""},
    {"/a/./b", "\".\""},
    {"/..", "\"..\""},
    {"/a/../b", "\"..\""},
    {"/a/b/..", "\"..\""},
    {"/ctl\001char", "control character"},
    {"/tab\tchar", "control character"},
    {"/new\nline", "control character"},
    {"/esc\033", "control character"},
    {"/del\177", "control character"},
    {"/zookeeper", "reserved"},
    {"/zookeeper/quota", "reserved"},
};

START_TEST(t_path_rejected)
{
    for (size_t i = 0; i < sizeof bad_paths / sizeof bad_paths[0]; i++) {
        int rc = create_with_chroot(bad_paths[i].path, NULL);
        ck_assert_msg(rc == ZKC_EINVAL, "chroot \"%s\": got %d (%s), want ZKC_EINVAL", bad_paths[i].path, rc,
                      zkc_strerror(rc));
        const char *m = zkc_errmsg();
        ck_assert_msg(strstr(m, bad_paths[i].why) != NULL, "chroot \"%s\": message \"%s\" does not say \"%s\"",
                      bad_paths[i].path, m, bad_paths[i].why);
        ck_assert_msg(strstr(m, "chroot") != NULL, "message \"%s\" does not name the option", m);
        /* The same validation guards every user-supplied path. */
        rc = create_with_chroot(NULL, bad_paths[i].path);
        ck_assert_msg(rc == ZKC_EINVAL, "meta_root \"%s\": got %d", bad_paths[i].path, rc);
        ck_assert_msg(strstr(zkc_errmsg(), "meta_root") != NULL, "message \"%s\"", zkc_errmsg());
    }
}
END_TEST

START_TEST(t_path_too_long)
{
    char buf[2100];
    long_path(buf, 1025);
    ck_assert_uint_eq(strlen(buf), 1025);
    ck_assert_int_eq(create_with_chroot(buf, NULL), ZKC_EINVAL);
    ck_assert_msg(strstr(zkc_errmsg(), "limit") != NULL, "message \"%s\"", zkc_errmsg());
    long_path(buf, 2000);
    ck_assert_int_eq(create_with_chroot(NULL, buf), ZKC_EINVAL);
    /* The limit itself is allowed: validation passes, the connection fails. */
    long_path(buf, 1024);
    ck_assert_uint_eq(strlen(buf), 1024);
    ck_assert_int_eq(create_with_chroot(buf, NULL), ZKC_ECONNLOSS);
}
END_TEST

START_TEST(t_path_accepted)
{
    static const char *good[] = {
        "/a", "/a/b/c", "/zookeeperx", "/my/zookeeper", "/x.y", "/...", "/.hidden", "/a-b_c:d@e",
        "/\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87", /* UTF-8 */
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int rc = create_with_chroot(good[i], NULL);
        ck_assert_msg(rc == ZKC_ECONNLOSS, "chroot \"%s\": got %d (%s: %s), want it accepted (ZKC_ECONNLOSS)", good[i],
                      rc, zkc_strerror(rc), zkc_errmsg());
    }
}
END_TEST

START_TEST(t_strerror)
{
    const char *seen[64];
    int n = 0;
    for (int code = ZKC_OK; code >= ZKC_ELIMIT; code--) {
        const char *s = zkc_strerror(code);
        ck_assert_ptr_nonnull(s);
        ck_assert_msg(strlen(s) > 3, "code %d: \"%s\"", code, s);
        for (int i = 0; i < n; i++)
            ck_assert_msg(strcmp(seen[i], s) != 0, "codes %d and %d share the text \"%s\"", -i, code, s);
        seen[n++] = s;
    }
    ck_assert_int_eq(n, 25);
    /* Unknown codes still get a string, one that is none of the known ones. */
    const int unknown[] = {1, 42, ZKC_ELIMIT - 1, -1000, INT_MIN, INT_MAX};
    for (size_t k = 0; k < sizeof unknown / sizeof unknown[0]; k++) {
        const char *s = zkc_strerror(unknown[k]);
        ck_assert_ptr_nonnull(s);
        for (int i = 0; i < n; i++)
            ck_assert_str_ne(seen[i], s);
    }
    ck_assert_str_eq(zkc_version(), ZKC_VERSION_STRING);
    ck_assert_ptr_nonnull(zkc_errmsg());
}
END_TEST

/* Every code of zookeeper.h's enum gets its own name in messages, and a code
 * outside it shows its number: a soak once logged 884 updates failed with the
 * bare "ZooKeeper error", which said nothing of which. */
START_TEST(t_zrc_names)
{
    const int codes[] = {0,    -1,   -2,   -3,   -4,   -5,   -6,   -7,   -8,   -9,   -13,  -14,   -100,  -101,
                         -102, -103, -108, -110, -111, -112, -114, -115, -116, -118, -119, -120, -121, -123,
                         -124, -127, -1001, -1002};
    const size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        const char *s = zkc__zrc_name(codes[i]);
        ck_assert_ptr_nonnull(s);
        ck_assert_msg(strncmp(s, "ZooKeeper error", 15) != 0, "code %d unnamed: \"%s\"", codes[i], s);
        for (size_t j = 0; j < i; j++)
            ck_assert_msg(strcmp(s, zkc__zrc_name(codes[j])) != 0, "codes %d and %d share \"%s\"", codes[i],
                          codes[j], s);
    }
    ck_assert_str_eq(zkc__zrc_name(-126), "ZooKeeper error -126");
    ck_assert_str_eq(zkc__zrc_name(7), "ZooKeeper error 7");
}
END_TEST

/* ------------------------------------------------------------ sequence names */

#define UUID "8a7d5e3c-1f2b-4c6d-9e0f-123456789abc"
#define KUUID "8a7d5e3c1f2b4c6d9e0f123456789abc"

static const struct {
    const char *name;
    int32_t seq;
    int kind;
    int style;
} good_names[] = {
    {"_c_" UUID "-lock-0000000005", 5, ZKC_LOCK_MUTEX, ZKC__STYLE_CURATOR},
    {"_c_" UUID "-lock-0000000000", 0, ZKC_LOCK_MUTEX, ZKC__STYLE_CURATOR},
    {"_c_" UUID "-lock-2147483647", INT32_MAX, ZKC_LOCK_MUTEX, ZKC__STYLE_CURATOR},
    {KUUID "__lock__0000000005", 5, ZKC_LOCK_MUTEX, ZKC__STYLE_KAZOO},
    {KUUID "__lock__2147483646", 2147483646, ZKC_LOCK_MUTEX, ZKC__STYLE_KAZOO},
    {KUUID "__rlock__0000000007", 7, ZKC_LOCK_READ, ZKC__STYLE_KAZOO},
    {"_c_" UUID "-__READ__0000000009", 9, ZKC_LOCK_READ, ZKC__STYLE_CURATOR},
    {"_c_" UUID "-__WRIT__0000000010", 10, ZKC_LOCK_WRITE, ZKC__STYLE_CURATOR},
    {"_c_" UUID "-lease-0000000003", 3, ZKC_LOCK_SEMAPHORE, ZKC__STYLE_ZKCOORD},
    /* Wrapped counters, as ZooKeeper prints them with printf("%010d"). */
    {"_c_" UUID "-lock--000000005", -5, ZKC_LOCK_MUTEX, ZKC__STYLE_CURATOR},
    {"_c_" UUID "-lock--000000001", -1, ZKC_LOCK_MUTEX, ZKC__STYLE_CURATOR},
    {"_c_" UUID "-lock--2147483648", INT32_MIN, ZKC_LOCK_MUTEX, ZKC__STYLE_CURATOR},
    {"_c_" UUID "-lock--2147483647", -2147483647, ZKC_LOCK_MUTEX, ZKC__STYLE_CURATOR},
    {KUUID "__lock__-2147483648", INT32_MIN, ZKC_LOCK_MUTEX, ZKC__STYLE_KAZOO},
    {KUUID "__lock__-000000042", -42, ZKC_LOCK_MUTEX, ZKC__STYLE_KAZOO},
    {"_c_" UUID "-__WRIT__-1000000000", -1000000000, ZKC_LOCK_WRITE, ZKC__STYLE_CURATOR},
    /* A tag inside the uuid part does not confuse the parser: the last one counts. */
    {"_c_-lock-x-lock-0000000077", 77, ZKC_LOCK_MUTEX, ZKC__STYLE_CURATOR},
};

START_TEST(t_seq_parse_good)
{
    for (size_t i = 0; i < sizeof good_names / sizeof good_names[0]; i++) {
        int32_t seq = 12345;
        int kind = -99, style = -99;
        ck_assert_msg(zkc__seq_parse(good_names[i].name, &seq, &kind, &style) == 1, "%s not parsed",
                      good_names[i].name);
        ck_assert_msg(seq == good_names[i].seq, "%s: seq %d, want %d", good_names[i].name, (int)seq,
                      (int)good_names[i].seq);
        ck_assert_msg(kind == good_names[i].kind, "%s: kind %d, want %d", good_names[i].name, kind,
                      good_names[i].kind);
        ck_assert_msg(style == good_names[i].style, "%s: style %d, want %d", good_names[i].name, style,
                      good_names[i].style);
        /* kind and style are optional outputs. */
        ck_assert_int_eq(zkc__seq_parse(good_names[i].name, &seq, NULL, NULL), 1);
    }
    /* An unknown prefix still carries ZooKeeper's suffix: a member of unknown kind. */
    int32_t seq;
    int kind, style;
    ck_assert_int_eq(zkc__seq_parse("member-0000000042", &seq, &kind, &style), 1);
    ck_assert_int_eq(seq, 42);
    ck_assert_int_eq(kind, -1);
    ck_assert_int_eq(style, ZKC__STYLE_OTHER);
    /* Curator's InterProcessMutex without protection mode: "lock-<seq>". */
    ck_assert_int_eq(zkc__seq_parse("lock-0000000012", &seq, &kind, &style), 1);
    ck_assert_int_eq(seq, 12);
    ck_assert_int_eq(zkc__seq_parse("x0000000042", &seq, &kind, &style), 1);
    ck_assert_int_eq(seq, 42);
    ck_assert_int_eq(zkc__seq_parse("member--2147483648", &seq, &kind, &style), 1);
    ck_assert_int_eq(seq, INT32_MIN);
    ck_assert_int_eq(kind, -1);
}
END_TEST

START_TEST(t_seq_parse_junk)
{
    static const char *junk[] = {
        "", "lock", "leader", "readme", "-lock-", "_c_" UUID "-lock-", "lock-12345", "_c_" UUID "-lock-00000005",
        "_c_" UUID "-lock-00000000x5", "_c_" UUID "-lock-0000000005x", "_c_" UUID "-lock-+000000005",
        "_c_" UUID "-lock- 000000005", "_c_" UUID "-lock-2147483648",  /* above INT32_MAX */
        "_c_" UUID "-lock-99999999999",                               /* 11 digits */
        "_c_" UUID "-lock--9999999999", "_c_" UUID "-lock--2147483649", /* below INT32_MIN */
        KUUID "__lock__", KUUID "__lock__12", "config", "0000000", "--", "-", "__READ__", "__WRIT__abc",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        int32_t seq = 777;
        int kind = 5, style = 5;
        ck_assert_msg(zkc__seq_parse(junk[i], &seq, &kind, &style) == 0, "junk name \"%s\" parsed as %d", junk[i],
                      (int)seq);
    }
    int32_t seq;
    ck_assert_int_eq(zkc__seq_parse(NULL, &seq, NULL, NULL), 0);
}
END_TEST

START_TEST(t_seq_cmp)
{
    ck_assert_int_eq(zkc__seq_cmp(5, 5), 0);
    ck_assert_int_lt(zkc__seq_cmp(5, 6), 0);
    ck_assert_int_gt(zkc__seq_cmp(6, 5), 0);
    ck_assert_int_lt(zkc__seq_cmp(9, 10), 0);
    ck_assert_int_lt(zkc__seq_cmp(20, 100), 0); /* numeric, not textual */
    ck_assert_int_lt(zkc__seq_cmp(-1, 0), 0);
    ck_assert_int_gt(zkc__seq_cmp(0, -1), 0);
    /* Across the wrap: 2147483647 is followed by -2147483648. */
    ck_assert_int_lt(zkc__seq_cmp(2147483646, 2147483647), 0);
    ck_assert_int_lt(zkc__seq_cmp(2147483647, INT32_MIN), 0);
    ck_assert_int_gt(zkc__seq_cmp(INT32_MIN, 2147483647), 0);
    ck_assert_int_lt(zkc__seq_cmp(INT32_MIN, -2147483647), 0);
    ck_assert_int_lt(zkc__seq_cmp(2147483000, -2147483000), 0);
    ck_assert_int_gt(zkc__seq_cmp(-2147483000, 2147483000), 0);
    ck_assert_int_eq(zkc__seq_cmp(INT32_MIN, INT32_MIN), 0);
    /* A total order on any window narrower than 2^31, listed ascending:
     * antisymmetric and consistent with the listing. */
    static const int32_t w1[] = {2147482000, 2147483000, 2147483646, 2147483647, INT32_MIN, -2147483647, -2147483000};
    static const int32_t w2[] = {-1000000, -1000, -1, 0, 1, 1000, 1000000};
    const int32_t *ws[] = {w1, w2};
    for (int k = 0; k < 2; k++) {
        const int32_t *v = ws[k];
        for (int i = 0; i < 7; i++)
            for (int j = 0; j < 7; j++) {
                int a = zkc__seq_cmp(v[i], v[j]);
                int want = i < j ? -1 : i > j ? 1 : 0;
                ck_assert_msg((a > 0) - (a < 0) == want, "cmp(%d,%d)=%d, want sign %d", (int)v[i], (int)v[j], a,
                              want);
            }
    }
}
END_TEST

START_TEST(t_members_sort_across_wrap)
{
    /* Shuffled, mixed naming styles, junk interleaved. */
    char *names[] = {
        "_c_" UUID "-lock--2147483647",   /* 4th */
        "config",                          /* junk */
        KUUID "__lock__2147483646",        /* 1st */
        "_c_" UUID "-__READ__-2147483648", /* 3rd */
        "leader",                          /* junk */
        "_c_" UUID "-__WRIT__2147483647",  /* 2nd */
        "_c_" UUID "-lock--000000005",     /* 5th: -5 */
        "_c_" UUID "-lock-",               /* junk */
    };
    const int n = (int)(sizeof names / sizeof names[0]);
    zkc__member m[16];
    int junk = -1, styles = 0;
    int k = zkc__members_parse(names, n, m, &junk, &styles);
    ck_assert_int_eq(k, 5);
    ck_assert_int_eq(junk, 3);
    ck_assert_int_eq(styles, ZKC__STYLE_CURATOR | ZKC__STYLE_KAZOO);
    const int32_t want[] = {2147483646, 2147483647, INT32_MIN, -2147483647, -5};
    for (int i = 0; i < k; i++)
        ck_assert_msg(m[i].seq == want[i], "position %d: %s (seq %d), want seq %d", i, m[i].name, (int)m[i].seq,
                      (int)want[i]);
    ck_assert_str_eq(m[0].name, names[2]);
    ck_assert_int_eq(m[1].kind, ZKC_LOCK_WRITE);
    ck_assert_int_eq(m[2].kind, ZKC_LOCK_READ);
    ck_assert_int_eq(zkc__member_find(m, k, names[6]), 4);
    ck_assert_int_eq(zkc__member_find(m, k, names[0]), 3);
    ck_assert_int_eq(zkc__member_find(m, k, "config"), -1);

    /* Ties on the number (two parents' worth of names) are broken by name,
     * so every client sorts the same way. */
    char *tie[] = {"b-lock-0000000001", "a-lock-0000000001"};
    ck_assert_int_eq(zkc__members_parse(tie, 2, m, NULL, NULL), 2);
    ck_assert_str_eq(m[0].name, "a-lock-0000000001");

    /* Plain ascending input stays ascending; numeric, not textual. */
    char *plain[] = {"x-lock-0000000100", "x-lock-0000000020", "x-lock-0000000003"};
    ck_assert_int_eq(zkc__members_parse(plain, 3, m, &junk, NULL), 3);
    ck_assert_int_eq(junk, 0);
    ck_assert_int_eq(m[0].seq, 3);
    ck_assert_int_eq(m[1].seq, 20);
    ck_assert_int_eq(m[2].seq, 100);
    ck_assert_int_eq(zkc__members_parse(plain, 0, m, &junk, &styles), 0);
    ck_assert_int_eq(junk, 0);
}
END_TEST

/* ------------------------------------------------------------ list.h */

typedef struct item {
    int v;
    zkc__list_node node;
} item;

static int list_values(const zkc__list *l, int *out, int max)
{
    int n = 0;
    for (zkc__list_node *x = zkc__list_first(l); x && n < max; x = zkc__list_next(l, x))
        out[n++] = ((item *)((char *)x - offsetof(item, node)))->v;
    return n;
}

/* ------------------------------------------------------------ pathcache */

static size_t deepest(zkc_client *c, const char *p)
{
    return zkc__pathcache_deepest(c, p, strlen(p));
}

START_TEST(t_pathcache_deepest_and_forget)
{
    zkc_client *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(deepest(c, "/a/b/c"), 0); /* nothing yet (no table either) */
    zkc__pathcache_add_tree(c, "/a/b");
    ck_assert_int_eq(deepest(c, "/a/b/c/d"), strlen("/a/b"));
    ck_assert_int_eq(deepest(c, "/a/b"), strlen("/a")); /* proper ancestors only */
    ck_assert_int_eq(deepest(c, "/a/bb/c"), strlen("/a")); /* "/a/b" is not a prefix of "/a/bb" as a path */
    ck_assert_int_eq(deepest(c, "/x/y"), 0);
    ck_assert_int_eq(zkc__pathcache_deepest(c, "/a/b/c", strlen("/a/b")), strlen("/a")); /* len bounds the path */
    zkc__pathcache_forget(c, "/a/b", strlen("/a/b"));
    ck_assert_int_eq(deepest(c, "/a/b/c/d"), strlen("/a"));
    zkc__pathcache_forget(c, "/a/b/zzz", 4); /* "/a/b" again: forgetting twice is harmless */
    zkc__pathcache_forget(c, "/a", 2);
    ck_assert_int_eq(deepest(c, "/a/b/c/d"), 0);
    zkc__pathcache_add(c, "/", 1); /* the root is never remembered: it always exists */
    ck_assert_int_eq(deepest(c, "/a"), 0);
    zkc__pathcache_free(c);
    ck_assert_ptr_null(c->known);
    free(c);
}
END_TEST

/* Bounded: the least recently confirmed path goes first, and confirming a
 * deep path keeps its shared ancestors. */
START_TEST(t_pathcache_evicts_least_recent)
{
    zkc_client *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(c);
    char p[64];
    zkc__pathcache_add_tree(c, "/old/dir");
    zkc__pathcache_add_tree(c, "/shop/sku");
    for (int i = 0; i < 3 * ZKC__PATHCACHE_MAX; i++) {
        snprintf(p, sizeof p, "/shop/sku/%d/lock", i);
        zkc__pathcache_add_tree(c, p);
    }
    ck_assert_int_eq(deepest(c, "/shop/sku/new/lock"), strlen("/shop/sku"));
    ck_assert_int_eq(deepest(c, "/old/dir/x"), 0); /* evicted */
    snprintf(p, sizeof p, "/shop/sku/%d/lock/x", 3 * ZKC__PATHCACHE_MAX - 1);
    ck_assert_int_eq(deepest(c, p), strlen(p) - 2); /* the newest kept */
    ck_assert_int_eq(deepest(c, "/shop/sku/0/lock/x"), strlen("/shop/sku")); /* the oldest gone */
    zkc__pathcache_free(c);
    free(c);
}
END_TEST

START_TEST(t_list_order_and_remove)
{
    zkc__list l;
    zkc__list_init(&l);
    ck_assert(zkc__list_empty(&l));
    ck_assert_ptr_null(zkc__list_first(&l));
    item it[4] = {{.v = 0}, {.v = 1}, {.v = 2}, {.v = 3}};
    ck_assert(!zkc__list_linked(&it[0].node));
    zkc__list_push_back(&l, &it[1].node);
    zkc__list_push_back(&l, &it[2].node);
    zkc__list_push_front(&l, &it[0].node);
    zkc__list_push_back(&l, &it[3].node);
    int v[8];
    ck_assert_int_eq(list_values(&l, v, 8), 4);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(v[i], i);
    /* Removal needs no list, leaves the node unlinked, and twice is harmless. */
    zkc__list_remove(&it[2].node);
    ck_assert(!zkc__list_linked(&it[2].node));
    zkc__list_remove(&it[2].node);
    ck_assert_int_eq(list_values(&l, v, 8), 3);
    ck_assert_int_eq(v[0], 0);
    ck_assert_int_eq(v[1], 1);
    ck_assert_int_eq(v[2], 3);
    zkc__list_remove(&it[0].node);
    zkc__list_remove(&it[3].node);
    zkc__list_remove(&it[1].node);
    ck_assert(zkc__list_empty(&l));
}
END_TEST

START_TEST(t_list_take_and_foreach)
{
    zkc__list a, b;
    zkc__list_init(&a);
    zkc__list_init(&b);
    zkc__list_take(&b, &a); /* from an empty list: an empty list */
    ck_assert(zkc__list_empty(&b));
    item it[5];
    for (int i = 0; i < 5; i++) {
        it[i].v = i;
        it[i].node.next = it[i].node.prev = NULL;
        zkc__list_push_back(&a, &it[i].node);
    }
    zkc__list_take(&b, &a);
    ck_assert(zkc__list_empty(&a));
    int v[8];
    ck_assert_int_eq(list_values(&b, v, 8), 5);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(v[i], i);
    /* The moved list is whole in both directions. */
    ck_assert_ptr_eq(b.head.prev, &it[4].node);
    ck_assert_ptr_eq(it[0].node.prev, &b.head);
    /* The body may remove the node it is visiting. */
    zkc__list_node *n, *tmp;
    int seen = 0;
    ZKC__LIST_FOREACH_SAFE(n, tmp, &b)
    {
        item *x = (item *)((char *)n - offsetof(item, node));
        ck_assert_int_eq(x->v, seen++);
        if (x->v % 2 == 0)
            zkc__list_remove(n);
    }
    ck_assert_int_eq(seen, 5);
    ck_assert_int_eq(list_values(&b, v, 8), 2);
    ck_assert_int_eq(v[0], 1);
    ck_assert_int_eq(v[1], 3);
}
END_TEST

static Suite *unit_suite(void)
{
    Suite *s = suite_create("unit");
    TCase *tc = tcase_create("paths");
    tcase_set_timeout(tc, 60 * tu_scale());
    tcase_add_test(tc, t_path_rejected);
    tcase_add_test(tc, t_path_too_long);
    tcase_add_test(tc, t_path_accepted);
    tcase_add_test(tc, t_strerror);
    tcase_add_test(tc, t_zrc_names);
    suite_add_tcase(s, tc);
    tc = tcase_create("seqname");
    tcase_add_test(tc, t_seq_parse_good);
    tcase_add_test(tc, t_seq_parse_junk);
    tcase_add_test(tc, t_seq_cmp);
    tcase_add_test(tc, t_members_sort_across_wrap);
    suite_add_tcase(s, tc);
    tc = tcase_create("list");
    tcase_add_test(tc, t_list_order_and_remove);
    tcase_add_test(tc, t_list_take_and_foreach);
    suite_add_tcase(s, tc);
    tc = tcase_create("pathcache");
    tcase_add_test(tc, t_pathcache_deepest_and_forget);
    tcase_add_test(tc, t_pathcache_evicts_least_recent);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(unit_suite(), 0);
}
