/* The client/session layer against a real 3-node ensemble (shared by the
 * suite): connect/close, connect-string and option validation, unreachable
 * servers, chroot, digest auth and ACLs, NULL arguments, statistics, shutdown
 * with work in flight, and blocking calls from callbacks. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"
#include "harness/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

/* A loopback port nobody listens on (bound, then closed). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* A loopback socket that accepts TCP connections (in the kernel backlog) and
 * never answers: a server that is up but silent. */
static int silent_server(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 64), 0);
    socklen_t l = sizeof a;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* ------------------------------------------------------------ connect / close */

static int log_lines;
static void count_log(zkc_log_level lvl, const char *msg, void *ud)
{
    (void)lvl;
    (void)ud;
    if (msg && *msg)
        __atomic_add_fetch(&log_lines, 1, __ATOMIC_RELAXED);
}

START_TEST(t_connect_close)
{
    zkc_client_options o;
    tu_client_opts(&o, tu_hosts());
    o.log_fn = count_log;
    o.log_level = ZKC_LOG_INFO;
    zkc_client *c = tu_client_o(&o);
    ck_assert_int_eq(zkc_client_connected(c), 1);
    int64_t sid = 0;
    char pw[16];
    int pwlen = 0;
    ck_assert_int_eq(zkc_client_session(c, &sid, pw, &pwlen), 0);
    ck_assert(sid != 0);
    ck_assert_int_eq(pwlen, 16);
    int t = zkc_client_session_timeout(c);
    ck_assert_msg(t > 0 && t <= tu_ms(TU_SESSION_MS), "negotiated timeout %d", t);
    ck_assert_msg(__atomic_load_n(&log_lines, __ATOMIC_RELAXED) >= 1, "INFO log function never called");
    zkc_stats st;
    zkc_client_stats(c, &st);
    ck_assert_int_eq(st.sessions, 1);
    ck_assert_int_eq(st.lost, 0);
    /* Two clients get two sessions. */
    zkc_client *c2 = tu_client(tu_hosts());
    ck_assert(tu_session_id(c2) != sid);
    ck_assert_int_eq(zkc_client_destroy(c2), 0);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

/* ------------------------------------------------------------ invalid input */

/* Creation that is expected to fail; a client made by mistake is destroyed. */
static int try_create(const zkc_client_options *o)
{
    zkc_client *c = (zkc_client *)0x1;
    int rc = zkc_client_create(&c, o);
    if (rc == 0) {
        ck_assert_ptr_nonnull(c);
        zkc_client_destroy(c);
        return 0;
    }
    ck_assert_msg(c == NULL, "zkc_client_create left *out set after failing (%d)", rc);
    return rc;
}

START_TEST(t_connect_strings_invalid)
{
    static const struct {
        const char *hosts;
        const char *says; /* in zkc_errmsg() */
    } bad[] = {
        {"", "empty"},
        {"localhost", "host:port"},
        {"127.0.0.1", "host:port"},
        {":2181", "host:port"},
        {"127.0.0.1:", "port"},
        {"127.0.0.1:0", "port"},
        {"127.0.0.1:65536", "port"},
        {"127.0.0.1:-5", "port"},
        {"127.0.0.1:21x81", "port"},
        {"127.0.0.1:2181,", "empty"},
        {",127.0.0.1:2181", "empty"},
        {"127.0.0.1:2181,,127.0.0.1:2182", "empty"},
        {"127.0.0.1:2181,127.0.0.1", "host:port"},
        {"127.0.0.1:2181/", NULL}, /* a bare "/" chroot is no chroot: accepted, see below */
        {"127.0.0.1:2181/bad//chroot", "chroot"},
        {"127.0.0.1:2181/trailing/", "chroot"},
        {"127.0.0.1:2181/zookeeper", "chroot"},
        {"127.0.0.1:2181/a/../b", "chroot"},
        {"/chroot", "no server"},
    };
    zkc_client_options o;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (!bad[i].says)
            continue;
        tu_client_opts(&o, bad[i].hosts);
        o.connect_timeout_ms = tu_ms(300); /* should it wrongly pass, fail fast */
        long long t0 = tu_now_ms();
        int rc = try_create(&o);
        ck_assert_msg(rc == ZKC_EINVAL, "hosts \"%s\": got %d (%s), want ZKC_EINVAL", bad[i].hosts, rc,
                      zkc_strerror(rc));
        ck_assert_msg(tu_now_ms() - t0 < tu_ms(200), "hosts \"%s\": rejected only after %lld ms", bad[i].hosts,
                      tu_now_ms() - t0);
        ck_assert_msg(strstr(zkc_errmsg(), bad[i].says) != NULL, "hosts \"%s\": message \"%s\" does not say \"%s\"",
                      bad[i].hosts, zkc_errmsg(), bad[i].says);
    }
    tu_client_opts(&o, NULL);
    ck_assert_int_eq(try_create(&o), ZKC_EINVAL);
    ck_assert_ptr_nonnull(strstr(zkc_errmsg(), "hosts"));
}
END_TEST

START_TEST(t_options_invalid)
{
    const char *h = tu_hosts();
    zkc_client_options o;
#define BAD(stmt, word)                                                                                              \
    do {                                                                                                               \
        tu_client_opts(&o, h);                                                                                         \
        stmt;                                                                                                          \
        int rc_ = try_create(&o);                                                                                      \
        ck_assert_msg(rc_ == ZKC_EINVAL, "%s: got %d (%s)", #stmt, rc_, zkc_strerror(rc_));                           \
        ck_assert_msg(strstr(zkc_errmsg(), word) != NULL, "%s: message \"%s\" lacks \"%s\"", #stmt, zkc_errmsg(),     \
                      word);                                                                                           \
    } while (0)
    BAD(o.session_timeout_ms = -1, "negative");
    BAD(o.connect_timeout_ms = -5, "negative");
    BAD(o.operation_timeout_ms = -5, "negative");
    BAD(o.retry_max = -1, "negative");
    BAD(o.auth_scheme = "digest", "auth");
    BAD(o.auth_credential = "u:p", "auth");
    BAD((o.auth_scheme = "digest", o.auth_credential = "nocolon"), "user:password");
    BAD(o.acl = ZKC_ACL_CREATOR, "credentials");
    BAD(o.acl = ZKC_ACL_CREATOR_READ, "credentials");
    BAD((o.auth_scheme = "digest", o.auth_credential = "u:p", o.acl = (zkc_acl)7), "acl");
    BAD(o.chroot = "relative", "chroot");
    BAD((o.hosts = "127.0.0.1:2181/x", o.chroot = "/y"), "chroot");
    BAD(o.meta_root = "/a//b", "meta_root");
#undef BAD
}
END_TEST

/* ------------------------------------------------------------ unreachable servers */

static void expect_connloss_within(const char *hosts, int connect_ms)
{
    zkc_client_options o;
    tu_client_opts(&o, hosts);
    o.connect_timeout_ms = connect_ms;
    long long t0 = tu_now_ms();
    int rc = try_create(&o);
    long long took = tu_now_ms() - t0;
    ck_assert_msg(rc == ZKC_ECONNLOSS, "hosts %s: got %d (%s: %s), want ZKC_ECONNLOSS", hosts, rc, zkc_strerror(rc),
                  zkc_errmsg());
    ck_assert_msg(took >= connect_ms - 50, "gave up after %lld ms, before the %d ms connect timeout", took, connect_ms);
    ck_assert_msg(took <= connect_ms + tu_ms(1500), "took %lld ms for a %d ms connect timeout", took, connect_ms);
    ck_assert_msg(strstr(zkc_errmsg(), "127.0.0.1") != NULL, "message \"%s\" does not name the servers",
                  zkc_errmsg());
}

START_TEST(t_unreachable_refused)
{
    char hosts[64];
    snprintf(hosts, sizeof hosts, "127.0.0.1:%d", free_port());
    expect_connloss_within(hosts, tu_ms(1500));
    /* Two dead servers: the bound is still the connect timeout. */
    snprintf(hosts, sizeof hosts, "127.0.0.1:%d,127.0.0.1:%d", free_port(), free_port());
    expect_connloss_within(hosts, tu_ms(1000));
}
END_TEST

START_TEST(t_unreachable_silent)
{
    int port;
    int fd = silent_server(&port);
    char hosts[64];
    snprintf(hosts, sizeof hosts, "127.0.0.1:%d", port);
    expect_connloss_within(hosts, tu_ms(1500));
    close(fd);
}
END_TEST

/* ------------------------------------------------------------ chroot */

static void chroot_case(int in_hosts)
{
    char root[128], hosts[1024], full[256];
    tu_unique_path(root, sizeof root, in_hosts ? "chroot-h" : "chroot-o");
    tu_raw *raw = tu_raw_open(tu_hosts(), tu_ms(TU_SESSION_MS));
    tu_raw_mkdirs(raw, root);

    zkc_client_options o;
    if (in_hosts) {
        snprintf(hosts, sizeof hosts, "%s%s", tu_hosts(), root);
        tu_client_opts(&o, hosts);
    } else {
        tu_client_opts(&o, tu_hosts());
        o.chroot = root;
    }
    zkc_client *a = tu_client_o(&o);
    zkc_client *b = tu_client(tu_hosts());
    zkc_lock *l = tu_lock(a, "/locks/l1");
    ck_assert_str_eq(zkc_lock_path(l), "/locks/l1");
    int64_t tok = 0;
    ck_assert_int_eq(zkc_lock_acquire(l, tu_ms(10000), &tok), 0);

    /* Seen from outside, the node lives under the chroot. */
    snprintf(full, sizeof full, "%s/locks/l1", root);
    zkc_lock_contender *q = NULL;
    int n = 0;
    ck_assert(tu_wait_queue_count(b, full, 1, tu_ms(10000)));
    ck_assert_int_eq(zkc_lock_contenders(b, full, &q, &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert(q[0].session_id == tu_session_id(a));
    ck_assert(q[0].czxid == tok);
    ck_assert_int_eq(q[0].holds, 1);
    ck_assert_int_eq(q[0].kind, ZKC_LOCK_MUTEX);
    ck_assert_msg(strncmp(q[0].name, "_c_", 3) == 0 && strstr(q[0].name, "-lock-"), "name %s", q[0].name);
    zkc_lock_contenders_free(q, n);
    ck_assert_int_eq(tu_queue_count(b, "/locks/l1"), 0);
    /* And the chrooted client sees it at its own path. */
    ck_assert_int_eq(tu_queue_count(a, "/locks/l1"), 1);
    ck_assert_int_eq(zkc_lock_release(l), 0);
    ck_assert_int_eq(tu_queue_count(a, "/locks/l1"), 0);
    ck_assert(tu_wait_queue_count(b, full, 0, tu_ms(10000)));
    zkc_lock_destroy(l);
    zkc_client_destroy(a);
    zkc_client_destroy(b);
    tu_raw_rmr(raw, root);
    tu_raw_close(raw);
}

START_TEST(t_chroot_option)
{
    chroot_case(0);
}
END_TEST

START_TEST(t_chroot_in_hosts)
{
    chroot_case(1);
}
END_TEST

/* ------------------------------------------------------------ auth and ACLs */

static zkc_client *auth_client(const char *cred, zkc_acl acl)
{
    zkc_client_options o;
    tu_client_opts(&o, tu_hosts());
    if (cred) {
        o.auth_scheme = "digest";
        o.auth_credential = cred;
    }
    o.acl = acl;
    return tu_client_o(&o);
}

static void raw_auth(tu_raw *r, const char *cred)
{
    ck_assert_int_eq(zoo_add_auth(tu_raw_zh(r), "digest", cred, (int)strlen(cred), NULL, NULL), ZOK);
    /* zoo_add_auth is asynchronous: a round trip after it is ordered behind it. */
    ck_assert_int_eq(zoo_exists(tu_raw_zh(r), "/", 0, NULL), ZOK);
}

static void expect_creator_acl(tu_raw *r, const char *path, const char *user, int world_read)
{
    struct ACL_vector acl = {0, NULL};
    struct Stat st;
    int rc = zoo_get_acl(tu_raw_zh(r), path, &acl, &st);
    ck_assert_msg(rc == ZOK, "get_acl %s: %s", path, zerror(rc));
    int digest = 0, world = 0;
    for (int i = 0; i < acl.count; i++) {
        if (!strcmp(acl.data[i].id.scheme, "digest")) {
            ck_assert_msg(!strncmp(acl.data[i].id.id, user, strlen(user)), "%s: digest id %s", path,
                          acl.data[i].id.id);
            ck_assert_int_eq(acl.data[i].perms, ZOO_PERM_ALL);
            digest++;
        } else if (!strcmp(acl.data[i].id.scheme, "world")) {
            ck_assert_int_eq(acl.data[i].perms, ZOO_PERM_READ);
            world++;
        } else {
            ck_abort_msg("%s: unexpected ACL scheme %s", path, acl.data[i].id.scheme);
        }
    }
    ck_assert_int_eq(digest, 1);
    ck_assert_int_eq(world, world_read);
    deallocate_ACL_vector(&acl);
}

START_TEST(t_auth_creator_acl)
{
    char top[128], path[160];
    tu_unique_path(top, sizeof top, "acl");
    snprintf(path, sizeof path, "%s/lock", top);
    zkc_client *alice = auth_client("alice:secret", ZKC_ACL_CREATOR);
    zkc_client *alice2 = auth_client("alice:secret", ZKC_ACL_OPEN);
    zkc_client *bob = auth_client("bob:other", ZKC_ACL_CREATOR);
    zkc_client *anon = auth_client(NULL, ZKC_ACL_OPEN);

    zkc_lock *la = tu_lock(alice, path);
    int64_t tok;
    ck_assert_int_eq(zkc_lock_acquire(la, tu_ms(10000), &tok), 0);

    /* Parents and the contender node carry alice's creator ACL. */
    tu_raw *raw = tu_raw_open(tu_hosts(), tu_ms(TU_SESSION_MS));
    raw_auth(raw, "alice:secret");
    zkc_lock_contender *q = NULL;
    int n = 0;
    ck_assert(tu_wait_queue_count(alice2, path, 1, tu_ms(10000)));
    ck_assert_int_eq(zkc_lock_contenders(alice2, path, &q, &n), 0);
    ck_assert_int_eq(n, 1);
    char node[256];
    snprintf(node, sizeof node, "%s/%s", path, q[0].name);
    zkc_lock_contenders_free(q, n);
    tu_raw_sync(raw, path);
    expect_creator_acl(raw, top, "alice:", 0);
    expect_creator_acl(raw, path, "alice:", 0);
    expect_creator_acl(raw, node, "alice:", 0);

    /* Without alice's identity: not even the queue can be read, nor joined. */
    zkc_client *others[] = {anon, bob};
    for (int i = 0; i < 2; i++) {
        q = NULL;
        n = -1;
        /* Until its server has the node, it is simply missing (no entries). */
        int rc;
        long long deadline = tu_now_ms() + tu_ms(10000);
        while ((rc = zkc_lock_contenders(others[i], path, &q, &n)) == 0 && tu_now_ms() < deadline) {
            zkc_lock_contenders_free(q, n);
            q = NULL;
            tu_nap_ms(20);
        }
        ck_assert_msg(rc == ZKC_ENOAUTH, "queue as %s: %d (%s)", i ? "bob" : "anon", rc, zkc_strerror(rc));
        zkc_lock *lx = tu_lock(others[i], path);
        long long t0 = tu_now_ms();
        rc = zkc_lock_acquire(lx, tu_ms(5000), NULL);
        ck_assert_msg(rc == ZKC_ENOAUTH, "acquire as %s: %d (%s: %s)", i ? "bob" : "anon", rc, zkc_strerror(rc),
                      zkc_errmsg());
        ck_assert_msg(strstr(zkc_errmsg(), path) != NULL, "message \"%s\" does not name %s", zkc_errmsg(), path);
        ck_assert_msg(tu_now_ms() - t0 < tu_ms(4000), "ENOAUTH took %lld ms", tu_now_ms() - t0);
        ck_assert_int_eq(zkc_lock_is_held(lx), 0);
        zkc_lock_destroy(lx);
        /* Nor delete the holder's node. */
        tu_raw *rx = tu_raw_open(tu_hosts(), tu_ms(TU_SESSION_MS));
        if (i)
            raw_auth(rx, "bob:other");
        ck_assert_int_eq(zoo_delete(tu_raw_zh(rx), node, -1), ZNOAUTH);
        tu_raw_close(rx);
    }

    /* The same identity on another client queues normally. */
    zkc_lock *la2 = tu_lock(alice2, path);
    ck_assert_int_eq(zkc_lock_acquire(la2, 0, NULL), ZKC_ETIMEDOUT);
    ck_assert_int_eq(tu_queue_count(alice2, path), 1);
    ck_assert_int_eq(zkc_lock_release(la), 0);
    int64_t tok2;
    ck_assert_int_eq(zkc_lock_acquire(la2, tu_ms(10000), &tok2), 0);
    ck_assert(tok2 > tok);
    ck_assert_int_eq(zkc_lock_release(la2), 0);

    zkc_lock_destroy(la);
    zkc_lock_destroy(la2);
    tu_raw_rmr(raw, top);
    tu_raw_close(raw);
    zkc_client_destroy(alice);
    zkc_client_destroy(alice2);
    zkc_client_destroy(bob);
    zkc_client_destroy(anon);
}
END_TEST

START_TEST(t_auth_creator_read)
{
    char top[128], path[160];
    tu_unique_path(top, sizeof top, "aclr");
    snprintf(path, sizeof path, "%s/lock", top);
    zkc_client *carol = auth_client("carol:pw", ZKC_ACL_CREATOR_READ);
    zkc_client *anon = auth_client(NULL, ZKC_ACL_OPEN);
    zkc_lock *lc = tu_lock(carol, path);
    ck_assert_int_eq(zkc_lock_acquire(lc, tu_ms(10000), NULL), 0);
    tu_raw *raw = tu_raw_open(tu_hosts(), tu_ms(TU_SESSION_MS));
    raw_auth(raw, "carol:pw");
    tu_raw_sync(raw, path);
    expect_creator_acl(raw, path, "carol:", 1);
    /* Anyone may look at the queue, nobody else may join it. */
    zkc_lock_contender *q = NULL;
    int n = 0;
    ck_assert(tu_wait_queue_count(anon, path, 1, tu_ms(10000)));
    ck_assert_int_eq(zkc_lock_contenders(anon, path, &q, &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(q[0].holds, 1);
    zkc_lock_contenders_free(q, n);
    zkc_lock *lx = tu_lock(anon, path);
    ck_assert_int_eq(zkc_lock_acquire(lx, tu_ms(5000), NULL), ZKC_ENOAUTH);
    ck_assert_int_eq(tu_queue_count(anon, path), 1);
    zkc_lock_destroy(lx);
    ck_assert_int_eq(zkc_lock_release(lc), 0);
    zkc_lock_destroy(lc);
    tu_raw_rmr(raw, top);
    tu_raw_close(raw);
    zkc_client_destroy(carol);
    zkc_client_destroy(anon);
}
END_TEST

START_TEST(t_auth_refused)
{
    /* The servers know no such scheme: they refuse the credentials, and
     * creation must say so (ZKC_EAUTH), not hand out a client whose every
     * session the servers then close. */
    zkc_client_options o;
    tu_client_opts(&o, tu_hosts());
    o.auth_scheme = "nosuchscheme";
    o.auth_credential = "x:y";
    o.connect_timeout_ms = tu_ms(10000);
    long long t0 = tu_now_ms();
    zkc_client *c = NULL;
    int rc = zkc_client_create(&c, &o);
    if (rc == 0) {
        /* Diagnose what such a client does before failing. */
        char path[128];
        tu_unique_path(path, sizeof path, "authref");
        zkc_lock *l = tu_lock(c, path);
        int arc = zkc_lock_acquire(l, tu_ms(2000), NULL);
        tu_nap_ms(tu_ms(2000)); /* observation window for the diagnosis */
        zkc_stats st;
        zkc_client_stats(c, &st);
        zkc_lock_destroy(l);
        zkc_client_destroy(c);
        ck_abort_msg("zkc_client_create accepted refused credentials (want ZKC_EAUTH); a lock acquire then gave %d "
                     "(%s) and the client opened %llu sessions in the next 2 s",
                     arc, zkc_strerror(arc), (unsigned long long)st.sessions);
    }
    ck_assert_ptr_null(c);
    ck_assert_msg(rc == ZKC_EAUTH, "got %d (%s: %s), want ZKC_EAUTH", rc, zkc_strerror(rc), zkc_errmsg());
    ck_assert_msg(tu_now_ms() - t0 < tu_ms(9000), "EAUTH only after %lld ms", tu_now_ms() - t0);
}
END_TEST

/* ------------------------------------------------------------ NULL arguments */

static void dummy_lock_cb(zkc_lock *l, int status, int64_t token, void *ud)
{
    (void)l;
    (void)status;
    (void)token;
    (void)ud;
}

static void dummy_ml_cb(zkc_multilock *m, int status, void *ud)
{
    (void)m;
    (void)status;
    (void)ud;
}

static void dummy_ctr_cb(zkc_counter *ctr, int status, const zkc_counter_result *r, void *ud)
{
    (void)ctr;
    (void)status;
    (void)r;
    (void)ud;
}

#define EINVAL_(call)                                                                                                  \
    do {                                                                                                               \
        int rc_ = (call);                                                                                              \
        ck_assert_msg(rc_ == ZKC_EINVAL, "%s: got %d (%s), want ZKC_EINVAL", #call, rc_, zkc_strerror(rc_));          \
    } while (0)

START_TEST(t_null_args)
{
    zkc_client *c = tu_client(tu_hosts());
    char path[128];
    tu_unique_path(path, sizeof path, "null");
    zkc_lock *l = tu_lock(c, path);
    zkc_client *cout = NULL;
    zkc_lock *lout = NULL;
    zkc_rwlock *rwout = NULL;
    zkc_multilock *mout = NULL;
    zkc_counter *ctrout = NULL;
    zkc_client_options o;
    tu_client_opts(&o, tu_hosts());
    int64_t v = 0;
    zkc_stats st;
    zkc_lock_contender *q = NULL;
    int n = 0;
    zkc_counter_result r;

    /* client */
    zkc_client_options_init(NULL);
    EINVAL_(zkc_client_create(NULL, &o));
    EINVAL_(zkc_client_create(&cout, NULL));
    ck_assert_ptr_null(cout);
    ck_assert_int_eq(zkc_client_destroy(NULL), 0); /* like free(NULL) */
    zkc_client_set_listener(NULL, tu_state_listener, NULL);
    ck_assert_int_eq(zkc_client_connected(NULL), 0);
    EINVAL_(zkc_client_set_hosts(NULL, tu_hosts()));
    EINVAL_(zkc_client_set_hosts(c, NULL));
    EINVAL_(zkc_client_session(NULL, &v, NULL, NULL));
    EINVAL_(zkc_client_session(c, NULL, NULL, NULL));
    ck_assert_int_eq(zkc_client_session_timeout(NULL), 0);
    zkc_client_stats(NULL, &st);
    zkc_client_stats(c, NULL);
    ck_assert_ptr_nonnull(zkc_strerror(ZKC_EINVAL));

    /* locks */
    EINVAL_(zkc_lock_create(NULL, path, &lout));
    EINVAL_(zkc_lock_create(c, NULL, &lout));
    EINVAL_(zkc_lock_create(c, path, NULL));
    ck_assert_ptr_null(lout);
    zkc_lock_destroy(NULL);
    EINVAL_(zkc_lock_acquire(NULL, 0, NULL));
    EINVAL_(zkc_lock_acquire(l, -2, NULL));
    EINVAL_(zkc_lock_acquire_async(NULL, 0, dummy_lock_cb, NULL));
    EINVAL_(zkc_lock_acquire_async(l, 0, NULL, NULL));
    EINVAL_(zkc_lock_acquire_async(l, -7, dummy_lock_cb, NULL));
    EINVAL_(zkc_lock_cancel(NULL));
    EINVAL_(zkc_lock_release(NULL));
    EINVAL_(zkc_lock_token(NULL, &v));
    EINVAL_(zkc_lock_token(l, NULL));
    ck_assert_int_eq(zkc_lock_is_held(NULL), 0);
    zkc_lock_set_listener(NULL, tu_lock_listener, NULL);
    ck_assert_ptr_null(zkc_lock_path(NULL));
    EINVAL_(zkc_rwlock_create(NULL, path, &rwout));
    EINVAL_(zkc_rwlock_create(c, NULL, &rwout));
    EINVAL_(zkc_rwlock_create(c, path, NULL));
    ck_assert_ptr_null(rwout);
    ck_assert_ptr_null(zkc_rwlock_read(NULL));
    ck_assert_ptr_null(zkc_rwlock_write(NULL));
    zkc_rwlock_destroy(NULL);
    EINVAL_(zkc_semaphore_create(NULL, path, 2, &lout));
    EINVAL_(zkc_semaphore_create(c, NULL, 2, &lout));
    EINVAL_(zkc_semaphore_create(c, path, 2, NULL));
    EINVAL_(zkc_semaphore_create(c, path, 0, &lout));
    zkc_lock *two[2] = {l, NULL};
    EINVAL_(zkc_multilock_create(NULL, 1, &mout));
    EINVAL_(zkc_multilock_create(two, 0, &mout));
    EINVAL_(zkc_multilock_create(two, 2, &mout));
    EINVAL_(zkc_multilock_create(two, 1, NULL));
    ck_assert_ptr_null(mout);
    EINVAL_(zkc_multilock_acquire(NULL, 0));
    EINVAL_(zkc_multilock_acquire_async(NULL, 0, dummy_ml_cb, NULL));
    EINVAL_(zkc_multilock_release(NULL));
    zkc_multilock_destroy(NULL);
    EINVAL_(zkc_lock_contenders(NULL, path, &q, &n));
    EINVAL_(zkc_lock_contenders(c, NULL, &q, &n));
    EINVAL_(zkc_lock_contenders(c, path, NULL, &n));
    EINVAL_(zkc_lock_contenders(c, path, &q, NULL));
    zkc_lock_contenders_free(NULL, 0);
    zkc_lock_contenders_free(NULL, 5);

    /* counters */
    zkc_counter_options_init(NULL);
    EINVAL_(zkc_counter_create(NULL, path, NULL, &ctrout));
    EINVAL_(zkc_counter_create(c, NULL, NULL, &ctrout));
    EINVAL_(zkc_counter_create(c, path, NULL, NULL));
    ck_assert_ptr_null(ctrout);
    zkc_counter_destroy(NULL);
    ck_assert_ptr_null(zkc_counter_path(NULL));
    EINVAL_(zkc_counter_get(NULL, &v));
    EINVAL_(zkc_counter_set(NULL, 1));
    EINVAL_(zkc_counter_add(NULL, 1, NULL, &r));
    EINVAL_(zkc_counter_cas(NULL, 1, 2, &r));
    EINVAL_(zkc_counter_get_async(NULL, dummy_ctr_cb, NULL));
    EINVAL_(zkc_counter_set_async(NULL, 1, dummy_ctr_cb, NULL));
    EINVAL_(zkc_counter_add_async(NULL, 1, NULL, dummy_ctr_cb, NULL));
    EINVAL_(zkc_counter_cas_async(NULL, 1, 2, dummy_ctr_cb, NULL));
    EINVAL_(zkc_counter_multi_add(NULL, NULL, 1, NULL, NULL, NULL));
    EINVAL_(zkc_counter_multi_add(c, NULL, 1, NULL, NULL, NULL));
    EINVAL_(zkc_counter_lookup(NULL, "key", &r));
    EINVAL_(zkc_counter_lookup(c, NULL, &r));
    EINVAL_(zkc_counter_rebase(NULL));
    char cpath[160];
    snprintf(cpath, sizeof cpath, "%s-ctr", path);
    zkc_counter *ctr = NULL;
    ck_assert_int_eq(zkc_counter_create(c, cpath, NULL, &ctr), 0);
    EINVAL_(zkc_counter_get(ctr, NULL));
    EINVAL_(zkc_counter_get_async(ctr, NULL, NULL));
    EINVAL_(zkc_counter_add_async(ctr, 1, NULL, NULL, NULL));
    zkc_counter_destroy(ctr);

    /* The objects still work after all that. */
    ck_assert_int_eq(zkc_lock_acquire(l, tu_ms(10000), NULL), 0);
    ck_assert_int_eq(zkc_lock_release(l), 0);
    zkc_lock_destroy(l);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

START_TEST(t_bad_paths_api)
{
    zkc_client *c = tu_client(tu_hosts());
    static const char *bad[] = {"", "rel", "/a/", "/a//b", "/.", "/a/..", "/x\001y", "/zookeeper", "/zookeeper/x"};
    char longp[1100];
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = 0;
    for (size_t i = 0; i <= sizeof bad / sizeof bad[0]; i++) {
        const char *p = i < sizeof bad / sizeof bad[0] ? bad[i] : longp;
        zkc_lock *l = NULL;
        EINVAL_(zkc_lock_create(c, p, &l));
        ck_assert_ptr_null(l);
        ck_assert_msg(strstr(zkc_errmsg(), "lock path") != NULL, "\"%s\": message %s", p, zkc_errmsg());
        EINVAL_(zkc_semaphore_create(c, p, 2, &l));
        zkc_rwlock *rw = NULL;
        EINVAL_(zkc_rwlock_create(c, p, &rw));
        ck_assert_ptr_null(rw);
        zkc_lock_contender *q = NULL;
        int n = 0;
        EINVAL_(zkc_lock_contenders(c, p, &q, &n));
        zkc_counter *ctr = NULL;
        EINVAL_(zkc_counter_create(c, p, NULL, &ctr));
        ck_assert_ptr_null(ctr);
        ck_assert_msg(strstr(zkc_errmsg(), "counter path") != NULL, "\"%s\": message %s", p, zkc_errmsg());
    }
    /* Nothing reached the servers. */
    zkc_stats st;
    zkc_client_stats(c, &st);
    ck_assert_int_eq(st.requests[ZKC_REQ_CREATE], 0);
    zkc_client_destroy(c);
}
END_TEST

/* ------------------------------------------------------------ stats */

typedef struct slot_t {
    int started; /* atomic */
    int status;  /* of the first call */
    int calls;   /* atomic: completed calls (status is set before the first) */
} slot_t;

static void slot_cb(zkc_lock *l, int status, int64_t token, void *ud)
{
    (void)l;
    (void)token;
    slot_t *s = ud;
    if (__atomic_fetch_add(&s->started, 1, __ATOMIC_SEQ_CST) == 0)
        __atomic_store_n(&s->status, status, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&s->calls, 1, __ATOMIC_SEQ_CST);
}

START_TEST(t_stats)
{
    zkc_client *c = tu_client(tu_hosts());
    char path[128];
    tu_unique_path(path, sizeof path, "stats");
    zkc_lock *l = tu_lock(c, path);
    zkc_stats s0, s1, s2;
    zkc_client_stats(c, &s0);
    ck_assert_int_eq(s0.sessions, 1);
    ck_assert_int_eq(zkc_lock_acquire(l, tu_ms(10000), NULL), 0);
    ck_assert_int_eq(zkc_lock_release(l), 0);
    zkc_client_stats(c, &s1);
    /* First time: the node, its two container parents. */
    ck_assert_msg(s1.requests[ZKC_REQ_CREATE] - s0.requests[ZKC_REQ_CREATE] >= 3, "creates %llu",
                  (unsigned long long)(s1.requests[ZKC_REQ_CREATE] - s0.requests[ZKC_REQ_CREATE]));
    /* Second time, uncontended: one create, one listing, and the release:
     * one multi that writes and deletes the node (the waiter behind a mutex
     * needs no listing, lock.c), no plain delete. */
    ck_assert_int_eq(zkc_lock_acquire(l, tu_ms(10000), NULL), 0);
    ck_assert_int_eq(zkc_lock_release(l), 0);
    zkc_client_stats(c, &s2);
    ck_assert_int_eq(s2.requests[ZKC_REQ_CREATE] - s1.requests[ZKC_REQ_CREATE], 1);
    ck_assert_int_eq(s2.requests[ZKC_REQ_CHILDREN] - s1.requests[ZKC_REQ_CHILDREN], 1);
    ck_assert_int_eq(s2.requests[ZKC_REQ_DELETE] - s1.requests[ZKC_REQ_DELETE], 0);
    ck_assert_int_eq(s2.requests[ZKC_REQ_MULTI] - s1.requests[ZKC_REQ_MULTI], 1);
    uint64_t sum = 0;
    for (int i = 0; i < 16; i++)
        sum += s2.requests[i];
    ck_assert_int_eq(sum, s2.requests_total);
    ck_assert(s2.requests_total > s1.requests_total);
    ck_assert_int_eq(s2.retries, 0);
    ck_assert_int_eq(s2.suspended, 0);
    ck_assert_int_eq(s2.lost, 0);
    /* A listing: one children request, one stat per member. */
    zkc_lock *l2 = tu_lock(c, path);
    ck_assert_int_eq(zkc_lock_acquire(l, tu_ms(10000), NULL), 0);
    zkc_client_stats(c, &s1);
    ck_assert_int_eq(tu_queue_count(c, path), 1);
    zkc_client_stats(c, &s2);
    ck_assert_int_eq(s2.requests[ZKC_REQ_CHILDREN] - s1.requests[ZKC_REQ_CHILDREN], 1);
    ck_assert_int_ge(s2.requests[ZKC_REQ_EXISTS] - s1.requests[ZKC_REQ_EXISTS], 1);
    /* Callbacks run on the dispatch thread are counted. */
    uint64_t cb0 = s2.callbacks;
    ck_assert_int_eq(zkc_lock_acquire(l2, 0, NULL), ZKC_ETIMEDOUT);
    ck_assert_int_eq(zkc_lock_release(l), 0);
    static slot_t one;
    memset(&one, 0, sizeof one);
    ck_assert_int_eq(zkc_lock_acquire_async(l2, tu_ms(10000), slot_cb, &one), 0);
    long long deadline = tu_now_ms() + tu_ms(10000);
    while (!__atomic_load_n(&one.calls, __ATOMIC_SEQ_CST) && tu_now_ms() < deadline)
        tu_nap_ms(10);
    ck_assert_int_eq(one.status, 0);
    ck_assert_int_eq(zkc_lock_release(l2), 0);
    zkc_client_stats(c, &s2);
    ck_assert_int_ge(s2.callbacks, cb0 + 1);
    zkc_lock_destroy(l);
    zkc_lock_destroy(l2);
    zkc_client_destroy(c);
}
END_TEST

/* ------------------------------------------------------------ shutdown with work in flight */

#define INFLIGHT 16
#define FREE_PATHS 4

START_TEST(t_destroy_inflight)
{
    char path[128];
    tu_unique_path(path, sizeof path, "inflight");
    zkc_client *h = tu_client(tu_hosts());
    zkc_lock *hl = tu_lock(h, path);
    ck_assert_int_eq(zkc_lock_acquire(hl, tu_ms(10000), NULL), 0);

    zkc_client *a = tu_client(tu_hosts());
    zkc_lock *ls[INFLIGHT + FREE_PATHS];
    static slot_t slots[INFLIGHT + FREE_PATHS];
    memset(slots, 0, sizeof slots);
    for (int i = 0; i < INFLIGHT; i++) {
        ls[i] = tu_lock(a, path);
        ck_assert_int_eq(zkc_lock_acquire_async(ls[i], ZKC_FOREVER, slot_cb, &slots[i]), 0);
    }
    ck_assert_msg(tu_wait_queue_count(h, path, INFLIGHT + 1, tu_ms(20000)), "waiters did not all queue");
    /* Plus a few on free paths, submitted just before the destroy: granted or
     * cancelled, either way exactly once. */
    for (int i = INFLIGHT; i < INFLIGHT + FREE_PATHS; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s-free%d", path, i);
        ls[i] = tu_lock(a, p);
        ck_assert_int_eq(zkc_lock_acquire_async(ls[i], ZKC_FOREVER, slot_cb, &slots[i]), 0);
    }
    int drc = -999;
    ck_assert_msg(tu_client_destroy_bounded(a, tu_ms(30000), &drc), "zkc_client_destroy hung");
    ck_assert_int_eq(drc, 0);
    for (int i = 0; i < INFLIGHT + FREE_PATHS; i++) {
        int calls = __atomic_load_n(&slots[i].calls, __ATOMIC_SEQ_CST);
        ck_assert_msg(calls == 1, "acquire %d: callback ran %d times by the time destroy returned", i, calls);
        int st = slots[i].status;
        if (i < INFLIGHT)
            ck_assert_msg(st == ZKC_ECANCELED, "waiter %d: status %d (%s)", i, st, zkc_strerror(st));
        else
            ck_assert_msg(st == ZKC_ECANCELED || st == 0, "free %d: status %d (%s)", i, st, zkc_strerror(st));
    }
    /* Objects of a destroyed client are unusable but can be destroyed. */
    ck_assert_int_ne(zkc_lock_acquire(ls[0], 0, NULL), 0);
    for (int i = 0; i < INFLIGHT + FREE_PATHS; i++)
        zkc_lock_destroy(ls[i]);
    /* The session is closed: its nodes are gone (seen through any server). */
    ck_assert_msg(tu_wait_queue_count(h, path, 1, tu_ms(10000)), "destroyed client's nodes still queued");
    for (int i = 0; i < INFLIGHT + FREE_PATHS; i++)
        ck_assert_int_eq(__atomic_load_n(&slots[i].calls, __ATOMIC_SEQ_CST), 1);
    ck_assert_int_eq(zkc_lock_release(hl), 0);
    zkc_lock_destroy(hl);
    zkc_client_destroy(h);
}
END_TEST

START_TEST(t_lock_destroy_inflight)
{
    char path[128];
    tu_unique_path(path, sizeof path, "ldestroy");
    zkc_client *h = tu_client(tu_hosts());
    zkc_lock *hl = tu_lock(h, path);
    ck_assert_int_eq(zkc_lock_acquire(hl, tu_ms(10000), NULL), 0);
    zkc_client *a = tu_client(tu_hosts());
    static slot_t s[3];
    memset(s, 0, sizeof s);
    zkc_lock *l[3];
    for (int i = 0; i < 3; i++) {
        l[i] = tu_lock(a, path);
        ck_assert_int_eq(zkc_lock_acquire_async(l[i], ZKC_FOREVER, slot_cb, &s[i]), 0);
    }
    ck_assert(tu_wait_queue_count(h, path, 4, tu_ms(20000)));
    zkc_lock_destroy(l[1]);
    /* Its callback is queued for the dispatch thread: wait for it. */
    long long deadline = tu_now_ms() + tu_ms(10000);
    while (__atomic_load_n(&s[1].calls, __ATOMIC_SEQ_CST) == 0 && tu_now_ms() < deadline)
        tu_nap_ms(10);
    ck_assert_int_eq(__atomic_load_n(&s[1].calls, __ATOMIC_SEQ_CST), 1);
    ck_assert_int_eq(s[1].status, ZKC_ECANCELED);
    ck_assert(tu_wait_queue_count(h, path, 3, tu_ms(10000)));
    /* The others still queue in order. */
    ck_assert_int_eq(zkc_lock_release(hl), 0);
    deadline = tu_now_ms() + tu_ms(10000);
    while (__atomic_load_n(&s[0].calls, __ATOMIC_SEQ_CST) == 0 && tu_now_ms() < deadline)
        tu_nap_ms(10);
    ck_assert_int_eq(s[0].status, 0);
    ck_assert_int_eq(__atomic_load_n(&s[2].calls, __ATOMIC_SEQ_CST), 0);
    ck_assert_int_eq(zkc_lock_release(l[0]), 0);
    deadline = tu_now_ms() + tu_ms(10000);
    while (__atomic_load_n(&s[2].calls, __ATOMIC_SEQ_CST) == 0 && tu_now_ms() < deadline)
        tu_nap_ms(10);
    ck_assert_int_eq(s[2].status, 0);
    /* Destroying a holder releases its node. */
    zkc_lock_destroy(l[2]);
    ck_assert(tu_wait_queue_count(h, path, 0, tu_ms(10000)));
    zkc_lock_destroy(l[0]);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(__atomic_load_n(&s[i].calls, __ATOMIC_SEQ_CST), 1);
    zkc_lock_destroy(hl);
    zkc_client_destroy(a);
    zkc_client_destroy(h);
}
END_TEST

/* ------------------------------------------------------------ blocking calls from callbacks */

typedef struct cbctx {
    zkc_client *c;
    zkc_lock *self, *other;
    const char *path;
    int status;
    int reacquire_rc, other_rc, queue_rc, queue_n, release_rc[3], destroy_rc;
    int64_t other_token;
    tu_events ev; /* 1: callback entered, 2: callback done */
} cbctx;

static void blocking_cb(zkc_lock *l, int status, int64_t token, void *ud)
{
    (void)token;
    cbctx *x = ud;
    x->status = status;
    tu_events_add(&x->ev, 1, 0);
    /* Reentrant acquire of the object we now hold: counts up at once. */
    x->reacquire_rc = zkc_lock_acquire(l, 0, NULL);
    /* A lock someone else holds: this blocks the dispatch thread until the
     * test releases it; the engine keeps running. */
    x->other_rc = zkc_lock_acquire(x->other, tu_ms(20000), &x->other_token);
    zkc_lock_contender *q = NULL;
    x->queue_rc = zkc_lock_contenders(x->c, x->path, &q, &x->queue_n);
    zkc_lock_contenders_free(q, x->queue_n);
    x->destroy_rc = zkc_client_destroy(x->c);
    x->release_rc[0] = zkc_lock_release(x->other);
    x->release_rc[1] = zkc_lock_release(l);
    x->release_rc[2] = zkc_lock_release(l);
    tu_events_add(&x->ev, 2, 0);
}

START_TEST(t_blocking_in_callback)
{
    char p1[128], p2[128];
    tu_unique_path(p1, sizeof p1, "cb1");
    tu_unique_path(p2, sizeof p2, "cb2");
    zkc_client *h = tu_client(tu_hosts());
    zkc_lock *hl = tu_lock(h, p2);
    int64_t htok;
    ck_assert_int_eq(zkc_lock_acquire(hl, tu_ms(10000), &htok), 0);

    static cbctx x;
    memset(&x, 0, sizeof x);
    tu_events_init(&x.ev);
    x.c = tu_client(tu_hosts());
    x.path = p1;
    x.self = tu_lock(x.c, p1);
    x.other = tu_lock(x.c, p2);
    ck_assert_int_eq(zkc_lock_acquire_async(x.self, tu_ms(10000), blocking_cb, &x), 0);
    ck_assert_msg(tu_events_wait(&x.ev, 1, 0, tu_ms(15000)) >= 0, "callback never ran");
    /* The callback now waits for p2 behind h. */
    ck_assert(tu_wait_queue_count(h, p2, 2, tu_ms(10000)));
    ck_assert_int_eq(zkc_lock_release(hl), 0);
    ck_assert_msg(tu_events_wait(&x.ev, 2, 0, tu_ms(25000)) >= 0, "blocking calls inside the callback deadlocked");
    ck_assert_int_eq(x.status, 0);
    ck_assert_int_eq(x.reacquire_rc, 0);
    ck_assert_int_eq(x.other_rc, 0);
    ck_assert(x.other_token > htok);
    ck_assert_int_eq(x.queue_rc, 0);
    ck_assert_int_eq(x.queue_n, 1);
    ck_assert_int_eq(x.destroy_rc, ZKC_EDEADLK);
    ck_assert_int_eq(x.release_rc[0], 0);
    ck_assert_int_eq(x.release_rc[1], 0);
    ck_assert_int_eq(x.release_rc[2], 0);
    ck_assert_int_eq(zkc_lock_is_held(x.self), 0);
    ck_assert_int_eq(tu_queue_count(x.c, p1), 0);
    ck_assert_int_eq(tu_queue_count(x.c, p2), 0);
    ck_assert(tu_wait_queue_count(h, p1, 0, tu_ms(10000)));
    ck_assert(tu_wait_queue_count(h, p2, 0, tu_ms(10000)));
    zkc_lock_destroy(x.self);
    zkc_lock_destroy(x.other);
    ck_assert_int_eq(zkc_client_destroy(x.c), 0);
    tu_events_destroy(&x.ev);
    zkc_lock_destroy(hl);
    zkc_client_destroy(h);
}
END_TEST

/* Listeners: a dropped connection (proxy cut) gives SUSPENDED then
 * RECONNECTED on the same session, to the client listener and to the lock
 * listener of a held lock; a blocking call from the client listener works. */
typedef struct lstctx {
    zkc_lock *other;
    int rc;
    tu_events ev;
} lstctx;

static void listener_blocking(zkc_client *c, zkc_state st, void *ud)
{
    (void)c;
    lstctx *x = ud;
    if (st == ZKC_STATE_RECONNECTED) {
        x->rc = zkc_lock_acquire(x->other, tu_ms(10000), NULL);
        if (x->rc == 0)
            x->rc = zkc_lock_release(x->other);
    }
    tu_events_add(&x->ev, (int)st, 0);
}

START_TEST(t_listeners_on_reconnect)
{
    zkh_ensemble *e = tu_shared();
    zkh_proxy *p;
    ck_assert_int_eq(zkh_proxy_start(&p, zkh_node_hostport(e, 0)), 0);
    zkc_client *c = tu_client(zkh_proxy_hostport(p));
    char p1[128], p2[128];
    tu_unique_path(p1, sizeof p1, "lst1");
    tu_unique_path(p2, sizeof p2, "lst2");
    static lstctx x;
    memset(&x, 0, sizeof x);
    x.rc = -999;
    tu_events_init(&x.ev);
    x.other = tu_lock(c, p2);
    zkc_lock *l = tu_lock(c, p1);
    tu_events lev;
    tu_events_init(&lev);
    zkc_lock_set_listener(l, tu_lock_listener, &lev);
    int64_t tok;
    ck_assert_int_eq(zkc_lock_acquire(l, tu_ms(10000), &tok), 0);
    zkc_client_set_listener(c, listener_blocking, &x);
    int64_t sid = tu_session_id(c);

    zkh_proxy_cut(p);
    int s = tu_events_wait(&x.ev, ZKC_STATE_SUSPENDED, 0, tu_ms(10000));
    ck_assert_msg(s >= 0, "no SUSPENDED after the connection was cut");
    int r = tu_events_wait(&x.ev, ZKC_STATE_RECONNECTED, s, tu_ms(10000));
    ck_assert_msg(r > s, "no RECONNECTED after SUSPENDED");
    ck_assert_int_eq(tu_events_count(&x.ev, ZKC_STATE_LOST), 0);
    ck_assert(tu_session_id(c) == sid);
    ck_assert_int_eq(x.rc, 0); /* the listener's blocking acquire + release */
    int ls = tu_events_wait(&lev, ZKC_LOCK_EVENT_SUSPENDED, 0, tu_ms(5000));
    ck_assert_msg(ls >= 0, "lock listener: no SUSPENDED");
    ck_assert_msg(tu_events_wait(&lev, ZKC_LOCK_EVENT_RECONNECTED, ls, tu_ms(5000)) > ls,
                  "lock listener: no RECONNECTED");
    ck_assert_int_eq(tu_events_count(&lev, ZKC_LOCK_EVENT_LOST), 0);
    /* Still held, same token. */
    int64_t tok2 = 0;
    ck_assert_int_eq(zkc_lock_token(l, &tok2), 0);
    ck_assert(tok2 == tok);
    long long deadline = tu_now_ms() + tu_ms(5000);
    while (!zkc_lock_is_held(l) && tu_now_ms() < deadline)
        tu_nap_ms(20);
    ck_assert_int_eq(zkc_lock_is_held(l), 1);
    zkc_stats st;
    zkc_client_stats(c, &st);
    ck_assert_int_ge(st.suspended, 1);
    ck_assert_int_ge(st.reconnected, 1);
    ck_assert_int_eq(st.sessions, 1);
    ck_assert_int_eq(zkc_lock_release(l), 0);
    zkc_client_set_listener(c, NULL, NULL);
    zkc_lock_destroy(l);
    zkc_lock_destroy(x.other);
    zkc_client_destroy(c);
    zkh_proxy_stop(p);
    tu_events_destroy(&x.ev);
    tu_events_destroy(&lev);
}
END_TEST

/* A waiter cancelled while its connection is down (SUSPENDED, session still
 * alive): the cancel completes at once, its watches are dropped locally, and
 * once the connection is back its node is deleted. */
START_TEST(t_cancel_while_suspended)
{
    zkh_ensemble *e = tu_shared();
    zkh_proxy *p;
    ck_assert_int_eq(zkh_proxy_start(&p, zkh_node_hostport(e, 1)), 0);
    zkc_client_options o;
    tu_client_opts(&o, zkh_proxy_hostport(p));
    /* 8 s: SUSPENDED comes after 2/3 of it, LOST is presumed near its end;
     * the cancel must fall in between even on a loaded machine. */
    o.session_timeout_ms = tu_ms(8000);
    zkc_client *c = tu_client_o(&o);
    zkc_client *hc = tu_client(tu_hosts());
    char path[128];
    tu_unique_path(path, sizeof path, "cancelsusp");
    zkc_lock *h = tu_lock(hc, path);
    ck_assert_int_eq(zkc_lock_acquire(h, tu_ms(10000), NULL), 0);
    tu_events sev;
    tu_events_init(&sev);
    zkc_client_set_listener(c, tu_state_listener, &sev);
    zkc_lock *w = tu_lock(c, path);
    static slot_t one;
    memset(&one, 0, sizeof one);
    ck_assert_int_eq(zkc_lock_acquire_async(w, ZKC_FOREVER, slot_cb, &one), 0);
    ck_assert(tu_wait_queue_count(hc, path, 2, tu_ms(10000)));
    /* Let it settle into waiting (watching the holder's node). */
    long long deadline = tu_now_ms() + tu_ms(10000);
    while (tu_watches_under(e, path, NULL, 0) < 3 && tu_now_ms() < deadline)
        tu_nap_ms(50);
    zkh_proxy_blackhole(p, 1);
    ck_assert_msg(tu_events_wait(&sev, ZKC_STATE_SUSPENDED, 0, tu_ms(10000)) >= 0, "no SUSPENDED");
    long long t0 = tu_now_ms();
    ck_assert_int_eq(zkc_lock_cancel(w), 0);
    ck_assert_msg(tu_now_ms() - t0 < tu_ms(2000), "cancel took %lld ms while disconnected", tu_now_ms() - t0);
    deadline = tu_now_ms() + tu_ms(10000);
    while (!__atomic_load_n(&one.calls, __ATOMIC_SEQ_CST) && tu_now_ms() < deadline)
        tu_nap_ms(10);
    ck_assert_int_eq(__atomic_load_n(&one.calls, __ATOMIC_SEQ_CST), 1);
    ck_assert_msg(tu_events_wait(&sev, ZKC_STATE_LOST, 0, 0) < 0, "LOST came before the cancel (machine too slow?)");
    ck_assert_int_eq(one.status, ZKC_ECANCELED);
    zkh_proxy_blackhole(p, 0);
    /* Back (same session or a new one): the cancelled waiter's node goes. */
    ck_assert_msg(tu_wait_queue_count(hc, path, 1, tu_ms(20000)), "the cancelled waiter's node was left behind");
    deadline = tu_now_ms() + tu_ms(20000);
    while (!zkc_client_connected(c) && tu_now_ms() < deadline)
        tu_nap_ms(50);
    ck_assert_int_eq(zkc_lock_release(h), 0);
    ck_assert_int_eq(zkc_lock_acquire(w, tu_ms(10000), NULL), 0);
    ck_assert_int_eq(zkc_lock_release(w), 0);
    ck_assert_int_eq(__atomic_load_n(&one.calls, __ATOMIC_SEQ_CST), 1);
    zkc_client_set_listener(c, NULL, NULL);
    zkc_lock_destroy(w);
    zkc_lock_destroy(h);
    zkc_client_destroy(c);
    zkc_client_destroy(hc);
    zkh_proxy_stop(p);
    tu_events_destroy(&sev);
}
END_TEST

START_TEST(t_set_hosts)
{
    zkc_client *c = tu_client(tu_hosts());
    EINVAL_(zkc_client_set_hosts(c, "127.0.0.1:2181/chroot"));
    EINVAL_(zkc_client_set_hosts(c, "nonsense"));
    EINVAL_(zkc_client_set_hosts(c, ""));
    /* The same servers in another order: a valid change, and it keeps working. */
    zkh_ensemble *e = tu_shared();
    char hosts[512] = "";
    for (int i = zkh_node_count(e) - 1; i >= 0; i--) {
        strcat(hosts, zkh_node_hostport(e, i));
        if (i)
            strcat(hosts, ",");
    }
    ck_assert_int_eq(zkc_client_set_hosts(c, hosts), 0);
    char path[128];
    tu_unique_path(path, sizeof path, "sethosts");
    zkc_lock *l = tu_lock(c, path);
    ck_assert_int_eq(zkc_lock_acquire(l, tu_ms(10000), NULL), 0);
    ck_assert_int_eq(zkc_lock_release(l), 0);
    zkc_lock_destroy(l);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

/* A name that does not resolve is an unreachable server, not a malformed
 * string: ZKC_ECONNLOSS at once, with a sentence that says so. */
START_TEST(t_unresolvable_host)
{
    zkc_client_options o;
    tu_client_opts(&o, "no-such-host.invalid:2181");
    o.connect_timeout_ms = tu_ms(3000);
    long long t0 = tu_now_ms();
    int rc = try_create(&o);
    ck_assert_msg(rc == ZKC_ECONNLOSS, "got %d (%s: %s), want ZKC_ECONNLOSS", rc, zkc_strerror(rc), zkc_errmsg());
    ck_assert_msg(strstr(zkc_errmsg(), "does not resolve") != NULL, "message \"%s\"", zkc_errmsg());
    ck_assert_msg(strstr(zkc_errmsg(), "no-such-host.invalid") != NULL, "message \"%s\" names no host", zkc_errmsg());
    ck_assert_msg(tu_now_ms() - t0 < tu_ms(2500), "refused only after %lld ms", tu_now_ms() - t0);
}
END_TEST

/* The session that replaces a lost one cannot start while the host names do
 * not resolve: the client keeps trying, and gets one as soon as they do.
 * (It used to log once and stay without a session for good.) */
START_TEST(t_reopen_after_lost)
{
    zkh_ensemble *e = tu_shared();
    zkc_client *c = tu_client(tu_hosts());
    tu_events cev;
    tu_events_init(&cev);
    zkc_client_set_listener(c, tu_state_listener, &cev);
    int64_t sid;
    char pw[16];
    int pwlen;
    ck_assert_int_eq(zkc_client_session(c, &sid, pw, &pwlen), 0);
    /* New sessions will use this list; the live one keeps its servers. */
    ck_assert_int_eq(zkc_client_set_hosts(c, "no-such-host.invalid:2181"), 0);
    ck_assert_int_eq(zkh_expire_session(zkh_ensemble_hosts(e), sid, pw, pwlen, tu_ms(20000)), 0);
    int lost = tu_events_wait(&cev, ZKC_STATE_LOST, 0, tu_ms(20000));
    ck_assert_msg(lost >= 0, "no LOST after the session expired");
    /* Several attempts fail meanwhile (one a second). */
    char path[128];
    tu_unique_path(path, sizeof path, "reopen");
    zkc_lock *l = tu_lock(c, path);
    int64_t tok = 0;
    int rc = zkc_lock_acquire(l, tu_ms(2500), &tok);
    ck_assert_msg(rc == ZKC_ETIMEDOUT || rc == ZKC_ECONNLOSS, "acquire without a session: %d (%s)", rc,
                  zkc_strerror(rc));
    ck_assert_int_eq(zkc_client_connected(c), 0);
    ck_assert_int_eq(zkc_client_set_hosts(c, tu_hosts()), 0);
    int back = tu_events_wait(&cev, ZKC_STATE_CONNECTED, lost, tu_ms(20000));
    ck_assert_msg(back > lost, "no new session once the hosts resolve again");
    ck_assert(tu_session_id(c) != sid);
    ck_assert_int_eq(zkc_lock_acquire(l, tu_ms(10000), &tok), 0);
    ck_assert_int_eq(zkc_lock_release(l), 0);
    zkc_lock_destroy(l);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
    tu_events_destroy(&cev);
}
END_TEST

/* One test case per test, so CK_RUN_CASE=<name> runs one of them. */
#define CASE(s, fn) TU_CASE(s, fn, 60 * tu_scale())

static Suite *client_suite(void)
{
    Suite *s = suite_create("client");
    CASE(s, t_connect_close);
    CASE(s, t_connect_strings_invalid);
    CASE(s, t_options_invalid);
    CASE(s, t_unreachable_refused);
    CASE(s, t_unreachable_silent);
    CASE(s, t_chroot_option);
    CASE(s, t_chroot_in_hosts);
    CASE(s, t_auth_creator_acl);
    CASE(s, t_auth_creator_read);
    CASE(s, t_auth_refused);
    CASE(s, t_null_args);
    CASE(s, t_bad_paths_api);
    CASE(s, t_stats);
    CASE(s, t_destroy_inflight);
    CASE(s, t_lock_destroy_inflight);
    CASE(s, t_blocking_in_callback);
    CASE(s, t_listeners_on_reconnect);
    CASE(s, t_cancel_while_suspended);
    CASE(s, t_set_hosts);
    CASE(s, t_unresolvable_host);
    CASE(s, t_reopen_after_lost);
    return s;
}

int main(void)
{
    return tu_main(client_suite(), TU_SHARED_ENSEMBLE);
}
