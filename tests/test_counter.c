/* Counters: codec unit tests, then the API against one real 3-node
 * ZooKeeper ensemble (started once in main, shared by the forked tests):
 * formats as Curator/kazoo store them, malformed data, bounds, exactness
 * across threads and processes (the heavy tier's "exact_processes" case, tag
 * TU_HEAVY; the rest is the fast tier), bounded stock, idempotency keys, multi-SKU
 * reservations, combining of concurrent adds, and the per-path state freed as
 * counters come and go (10^5 opened and destroyed under one client, heap flat).
 *
 * Helpers that run in worker threads or forked worker processes never call
 * ck_assert: they record what they saw and the test's main thread asserts. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "zkcoord.h"
#include "codec.h"
#include "counter_queue_codec.h"
#include "internal.h" /* zkc__refuse_auth_for_test */
#include "ensemble.h"
#include "proxy.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zookeeper/zookeeper.h>

/* ZKC_TEST_TIMEOUT_SCALE (valgrind, slow machines) stretches every bound. */
#define CONNECT_MS (30000 * tu_scale())
#define WAIT_MS (60000 * tu_scale()) /* bound on any single wait for a worker */

/* ================================================================ utilities */






static uint64_t rng_seed(int a, int b)
{
    uint64_t s = ((uint64_t)getpid() << 32) ^ ((uint64_t)a << 16) ^ (uint64_t)b ^ (uint64_t)tu_now_ms();
    return s ? s : 88172645463325252ULL;
}

/* A delta in [-span, span] other than 0. */
static int64_t rand_delta(uint64_t *s, int span)
{
    int64_t d = (int64_t)(tu_rng_next(s) % (uint64_t)(2 * span)) - span;
    return d >= 0 ? d + 1 : d;
}

static char g_tag[64];

static void unique_path(char *buf, size_t len, const char *what)
{
    static int seq;
    snprintf(buf, len, "/zkct/%s-%s-%d-%lld-%d", g_tag, what, (int)getpid(), tu_now_ms(), ++seq);
}

static const char *hosts(void)
{
    zkh_ensemble *e = zkh_shared();
    ck_assert_ptr_nonnull(e);
    return zkh_ensemble_hosts(e);
}

/* Tests where a foreign (raw) writer changes a node and a zkcoord client then
 * reads it pin both to one server: ZooKeeper reads are only sequentially
 * consistent per client, so a follower may still serve the older data. */
static int g_pinned;

static const char *client_hosts(void)
{
    zkh_ensemble *e = zkh_shared();
    ck_assert_ptr_nonnull(e);
    return g_pinned ? zkh_node_hostport(e, 0) : zkh_ensemble_hosts(e);
}

static void pin_to_one_server(void)
{
    g_pinned = 1;
}

static void unpin(void) /* fixture: CK_FORK=no runs every test in one process */
{
    g_pinned = 0;
}

static zkc_client *client_new(void)
{
    zkc_client_options o;
    zkc_client_options_init(&o);
    o.hosts = client_hosts();
    o.session_timeout_ms = 10000;
    o.connect_timeout_ms = CONNECT_MS;
    zkc_client *c = NULL;
    int rc = zkc_client_create(&c, &o);
    ck_assert_msg(rc == 0, "zkc_client_create: %s: %s", zkc_strerror(rc), zkc_errmsg());
    return c;
}

static zkc_counter *counter_new(zkc_client *c, const char *path, zkc_format fmt, int64_t initial)
{
    zkc_counter_options co;
    zkc_counter_options_init(&co);
    co.format = fmt;
    co.initial = initial;
    zkc_counter *ctr = NULL;
    int rc = zkc_counter_create(c, path, &co, &ctr);
    ck_assert_msg(rc == 0, "zkc_counter_create(%s): %s: %s", path, zkc_strerror(rc), zkc_errmsg());
    return ctr;
}

/* A counter in the given queued mode (ZKC_COUNTER_QUEUED_*), int64 from 0. */
static zkc_counter *queued_counter_new(zkc_client *c, const char *path, int mode)
{
    zkc_counter_options co;
    zkc_counter_options_init(&co);
    co.queued = mode;
    zkc_counter *ctr = NULL;
    int rc = zkc_counter_create(c, path, &co, &ctr);
    ck_assert_msg(rc == 0, "zkc_counter_create(%s): %s: %s", path, zkc_strerror(rc), zkc_errmsg());
    return ctr;
}

static int64_t get_value(zkc_counter *ctr)
{
    int64_t v = 0;
    int rc = zkc_counter_get(ctr, &v);
    ck_assert_msg(rc == 0, "zkc_counter_get(%s): %s: %s", zkc_counter_path(ctr), zkc_strerror(rc), zkc_errmsg());
    return v;
}

/* The value after every write acknowledged to any session before the call:
 * for checks of what other clients (processes, threads with clients of their
 * own) wrote, where this client's server may not have applied it yet. */
static int64_t get_value_fresh(zkc_counter *ctr)
{
    int64_t v = 0;
    int rc = zkc_counter_get_fresh(ctr, &v);
    ck_assert_msg(rc == 0, "zkc_counter_get_fresh(%s): %s: %s", zkc_counter_path(ctr), zkc_strerror(rc),
                  zkc_errmsg());
    return v;
}

/* ---------------------------------------------- raw libzookeeper_mt client */

/* Pinned with the clients (see client_hosts). */
static tu_raw *raw_open(void)
{
    return tu_raw_open(client_hosts(), 10000);
}

/* Returns the ZooKeeper rc; data into buf (*len in: size, out: length). */
static int raw_get(tu_raw *r, const char *path, char *buf, int *len, struct Stat *st)
{
    tu_raw_sync(r, path); /* a follower that lags the leader cannot show us an old value */
    long long deadline = tu_now_ms() + CONNECT_MS;
    int cap = *len, rc;
    for (;;) {
        *len = cap;
        rc = zoo_get(tu_raw_zh(r), path, 0, buf, len, st);
        if ((rc != ZCONNECTIONLOSS && rc != ZOPERATIONTIMEOUT) || tu_now_ms() > deadline)
            return rc;
        tu_nap_ms(100);
    }
}

static void raw_put(tu_raw *r, const char *path, const char *data, int len)
{
    int rc = zoo_create(tu_raw_zh(r), "/zkct", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    ck_assert_msg(rc == ZOK || rc == ZNODEEXISTS, "create /zkct: %s", zerror(rc));
    rc = zoo_create(tu_raw_zh(r), path, data, len, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    if (rc == ZNODEEXISTS)
        rc = zoo_set(tu_raw_zh(r), path, data, len, -1);
    ck_assert_msg(rc == ZOK, "raw write %s: %s", path, zerror(rc));
}

/* Raw bytes of the node must be exactly (want, wlen). */
static void expect_bytes(tu_raw *r, const char *path, const void *want, int wlen)
{
    char buf[256];
    int len = sizeof buf;
    struct Stat st;
    int rc = raw_get(r, path, buf, &len, &st);
    ck_assert_msg(rc == ZOK, "raw get %s: %s", path, zerror(rc));
    ck_assert_msg(len == wlen, "%s holds %d bytes, expected %d", path, len, wlen);
    if (wlen > 0)
        ck_assert_mem_eq(buf, want, (size_t)wlen);
}

static int32_t raw_version(tu_raw *r, const char *path)
{
    char buf[256];
    int len = sizeof buf;
    struct Stat st;
    int rc = raw_get(r, path, buf, &len, &st);
    ck_assert_msg(rc == ZOK, "raw get %s: %s", path, zerror(rc));
    return st.version;
}

/* Decode the node as int64 big-endian. */
static int64_t raw_int64(tu_raw *r, const char *path)
{
    char buf[64];
    int len = sizeof buf;
    struct Stat st;
    int rc = raw_get(r, path, buf, &len, &st);
    ck_assert_msg(rc == ZOK, "raw get %s: %s", path, zerror(rc));
    ck_assert_int_eq(len, 8);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | (unsigned char)buf[i];
    return (int64_t)v;
}

/* ------------------------------------------------------ worker processes */

/* Memory shared with worker processes: a memfd, so an exec'd worker can map
 * it too (its descriptor is inherited). One block per test. */
static int g_shm_fd = -1;
static size_t g_shm_size;

static void *shared_alloc(size_t n)
{
    int fd = memfd_create("zkct-shared", 0);
    ck_assert_msg(fd >= 0, "memfd_create: %s", strerror(errno));
    ck_assert_int_eq(ftruncate(fd, (off_t)n), 0);
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ck_assert_msg(p != MAP_FAILED, "mmap: %s", strerror(errno));
    memset(p, 0, n);
    g_shm_fd = fd;
    g_shm_size = n;
    return p;
}

static void shared_free(void *p, size_t n)
{
    munmap(p, n);
    if (g_shm_fd >= 0)
        close(g_shm_fd);
    g_shm_fd = -1;
}

typedef struct procs {
    int n;
    pid_t pid[16];
    int ready[2]; /* children write one byte each when set up */
    int go[2];    /* parent closes the write end: everyone starts */
} procs;

/* Worker processes are this binary run again (fork + exec) with
 * "--worker <kind> <index> <shm fd> <shm size> <ready fd> <go fd> <hosts>":
 * a plain fork of a process that has threads (a client of an earlier test
 * under CK_FORK=no, say) could leave the child a lock no thread will release.
 * Each worker connects, writes one byte to the ready pipe, and waits for the
 * go pipe to close. Workers die with the test process (PR_SET_PDEATHSIG). */
static void procs_start(procs *p, int n, const char *kind)
{
    memset(p, 0, sizeof *p);
    ck_assert_int_le(n, 16);
    ck_assert_int_ge(g_shm_fd, 0);
    ck_assert_int_eq(pipe(p->ready), 0);
    ck_assert_int_eq(pipe(p->go), 0);
    p->n = n;
    char a_i[16][16], a_fd[16], a_sz[32], a_r[16], a_g[16], a_hosts[1024];
    snprintf(a_fd, sizeof a_fd, "%d", g_shm_fd);
    snprintf(a_sz, sizeof a_sz, "%zu", g_shm_size);
    snprintf(a_r, sizeof a_r, "%d", p->ready[1]);
    snprintf(a_g, sizeof a_g, "%d", p->go[0]);
    snprintf(a_hosts, sizeof a_hosts, "%s", hosts());
    char *argv[16][10];
    for (int i = 0; i < n; i++) {
        snprintf(a_i[i], sizeof a_i[i], "%d", i);
        char *v[10] = {"test_counter-worker", "--worker", (char *)kind, a_i[i], a_fd, a_sz, a_r, a_g, a_hosts, NULL};
        memcpy(argv[i], v, sizeof v);
    }
    pid_t parent = getpid();
    fflush(NULL);
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            /* only async-signal-safe calls until exec */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(126);
            close(p->ready[0]);
            close(p->go[1]);
            execv("/proc/self/exe", argv[i]);
            _exit(127);
        }
        p->pid[i] = pid;
    }
    close(p->ready[1]);
    close(p->go[0]);
}

/* In a worker: the pipe ends and the ensemble it was given. */
static int g_ready_w = -1, g_go_r = -1;
static const char *g_worker_hosts;

/* In a worker: report ready, then wait (bounded) for the go signal. */
static int proc_ready_and_wait(procs *p)
{
    (void)p;
    char b = 'r';
    if (write(g_ready_w, &b, 1) != 1)
        return -1;
    struct pollfd pf = {g_go_r, POLLIN, 0};
    if (poll(&pf, 1, WAIT_MS) != 1)
        return -1;
    return 0;
}

/* Parent: wait until every child is ready (or one exited), then start them. */
static void procs_go(procs *p)
{
    int got = 0;
    long long deadline = tu_now_ms() + WAIT_MS;
    while (got < p->n) {
        long long left = deadline - tu_now_ms();
        ck_assert_msg(left > 0, "only %d of %d worker processes got ready", got, p->n);
        struct pollfd pf = {p->ready[0], POLLIN, 0};
        int r = poll(&pf, 1, (int)left);
        ck_assert_int_ge(r, 0);
        if (r == 0)
            continue;
        char buf[16];
        ssize_t k = read(p->ready[0], buf, sizeof buf);
        ck_assert_msg(k > 0, "a worker process exited before it got ready");
        got += (int)k;
    }
    close(p->go[1]);
    p->go[1] = -1;
}

/* Parent: wait for every child (bounded), assert they all exited 0. */
static void procs_join(procs *p)
{
    long long deadline = tu_now_ms() + 2 * WAIT_MS;
    for (int i = 0; i < p->n; i++) {
        int pfd = (int)syscall(SYS_pidfd_open, p->pid[i], 0);
        int status = 0;
        if (pfd >= 0) {
            long long left = deadline - tu_now_ms();
            struct pollfd pf = {pfd, POLLIN, 0};
            if (left <= 0 || poll(&pf, 1, (int)left) != 1) {
                kill(p->pid[i], SIGKILL);
                waitpid(p->pid[i], &status, 0);
                close(pfd);
                ck_abort_msg("worker process %d did not finish in time", i);
            }
            close(pfd);
        }
        ck_assert_int_eq(waitpid(p->pid[i], &status, 0), p->pid[i]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker process %d failed (status 0x%x)", i,
                      status);
    }
    close(p->ready[0]);
    if (p->go[1] >= 0)
        close(p->go[1]);
}

/* A worker process's own client (no Check calls in children). */
static zkc_client *child_client(void)
{
    zkc_client_options o;
    zkc_client_options_init(&o);
    o.hosts = g_worker_hosts ? g_worker_hosts : hosts();
    o.session_timeout_ms = 10000;
    o.connect_timeout_ms = CONNECT_MS;
    zkc_client *c = NULL;
    if (zkc_client_create(&c, &o) != 0) {
        fprintf(stderr, "worker: zkc_client_create: %s\n", zkc_errmsg());
        return NULL;
    }
    return c;
}

/* ---------------------------------------------------- async completion box */

typedef struct box {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
    int status;
    zkc_counter_result r;
    pthread_t thread;
} box;

static void box_init(box *b)
{
    memset(b, 0, sizeof *b);
    pthread_mutex_init(&b->mu, NULL);
    tu_cond_init_mono(&b->cv);
}

static void box_cb(zkc_counter *ctr, int status, const zkc_counter_result *r, void *ud)
{
    (void)ctr;
    box *b = ud;
    pthread_mutex_lock(&b->mu);
    b->calls++;
    b->status = status;
    if (r)
        b->r = *r;
    b->thread = pthread_self();
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void box_wait(box *b)
{
    struct timespec dl;
    tu_deadline_ts(&dl, WAIT_MS);
    pthread_mutex_lock(&b->mu);
    int e = 0;
    while (b->calls == 0 && e == 0)
        e = pthread_cond_timedwait(&b->cv, &b->mu, &dl);
    int calls = b->calls;
    pthread_mutex_unlock(&b->mu);
    ck_assert_msg(calls > 0, "callback never ran");
}

/* ================================================================ codec */

START_TEST(t_codec_roundtrip)
{
    static const int64_t v64[] = {0, 1, -1, 42, 255, 256, -256, 1LL << 40, INT64_MAX, INT64_MIN, INT64_MIN + 1};
    static const int64_t v32[] = {0, 1, -1, 42, 65536, INT32_MAX, INT32_MIN, -123456789};
    char buf[24];
    const char *why = NULL;
    int64_t out;
    for (size_t i = 0; i < sizeof v64 / sizeof v64[0]; i++) {
        int len = zkc__value_encode(ZKC_FMT_INT64, v64[i], buf);
        ck_assert_int_eq(len, 8);
        for (int k = 0; k < 8; k++)
            ck_assert_int_eq((unsigned char)buf[k], (unsigned)(((uint64_t)v64[i] >> (56 - 8 * k)) & 0xff));
        ck_assert_int_eq(zkc__value_decode(ZKC_FMT_INT64, buf, len, 99, &out, &why), 0);
        ck_assert_int_eq(out, v64[i]);

        len = zkc__value_encode(ZKC_FMT_DECIMAL, v64[i], buf);
        char want[32];
        snprintf(want, sizeof want, "%" PRId64, v64[i]);
        ck_assert_int_eq(len, (int)strlen(want));
        ck_assert_mem_eq(buf, want, (size_t)len);
        ck_assert_int_eq(zkc__value_decode(ZKC_FMT_DECIMAL, buf, len, 99, &out, &why), 0);
        ck_assert_int_eq(out, v64[i]);
    }
    for (size_t i = 0; i < sizeof v32 / sizeof v32[0]; i++) {
        int len = zkc__value_encode(ZKC_FMT_INT32, v32[i], buf);
        ck_assert_int_eq(len, 4);
        for (int k = 0; k < 4; k++)
            ck_assert_int_eq((unsigned char)buf[k], (unsigned)(((uint32_t)(int32_t)v32[i] >> (24 - 8 * k)) & 0xff));
        ck_assert_int_eq(zkc__value_decode(ZKC_FMT_INT32, buf, len, 99, &out, &why), 0);
        ck_assert_int_eq(out, v32[i]);
    }
    /* Curator's bytes for 42 and -2, kazoo's text. */
    static const unsigned char c42[8] = {0, 0, 0, 0, 0, 0, 0, 42};
    static const unsigned char cm2[4] = {0xff, 0xff, 0xff, 0xfe};
    ck_assert_int_eq(zkc__value_decode(ZKC_FMT_INT64, (const char *)c42, 8, 0, &out, &why), 0);
    ck_assert_int_eq(out, 42);
    ck_assert_int_eq(zkc__value_decode(ZKC_FMT_INT32, (const char *)cm2, 4, 0, &out, &why), 0);
    ck_assert_int_eq(out, -2);
    ck_assert_int_eq(zkc__value_decode(ZKC_FMT_DECIMAL, "-9223372036854775808", 20, 0, &out, &why), 0);
    ck_assert_int_eq(out, INT64_MIN);
    ck_assert_int_eq(zkc__value_decode(ZKC_FMT_DECIMAL, "9223372036854775807", 19, 0, &out, &why), 0);
    ck_assert_int_eq(out, INT64_MAX);
    /* Data is not NUL-terminated: only len bytes count. */
    ck_assert_int_eq(zkc__value_decode(ZKC_FMT_DECIMAL, "12345", 2, 0, &out, &why), 0);
    ck_assert_int_eq(out, 12);
}
END_TEST

START_TEST(t_codec_empty_is_initial)
{
    int64_t out = 0;
    const char *why = NULL;
    for (int fmt = ZKC_FMT_INT64; fmt <= ZKC_FMT_DECIMAL; fmt++) {
        out = 0;
        ck_assert_int_eq(zkc__value_decode(fmt, "", 0, 17, &out, &why), 0);
        ck_assert_int_eq(out, 17);
        out = 0;
        ck_assert_int_eq(zkc__value_decode(fmt, NULL, 0, -5, &out, &why), 0);
        ck_assert_int_eq(out, -5);
        out = 0;
        ck_assert_int_eq(zkc__value_decode(fmt, NULL, -1, 3, &out, &why), 0); /* a null znode: len -1 */
        ck_assert_int_eq(out, 3);
    }
}
END_TEST

START_TEST(t_codec_malformed)
{
    int64_t out = 0x5a5a;
    const char *why;
    static const char zeros[16] = {0};
    /* wrong lengths for the binary formats */
    static const int bad64[] = {1, 3, 4, 7, 9, 16};
    for (size_t i = 0; i < sizeof bad64 / sizeof bad64[0]; i++) {
        why = NULL;
        ck_assert_int_eq(zkc__value_decode(ZKC_FMT_INT64, zeros, bad64[i], 0, &out, &why), ZKC_EBADDATA);
        ck_assert_ptr_nonnull(why);
    }
    static const int bad32[] = {1, 2, 3, 5, 8};
    for (size_t i = 0; i < sizeof bad32 / sizeof bad32[0]; i++) {
        why = NULL;
        ck_assert_int_eq(zkc__value_decode(ZKC_FMT_INT32, zeros, bad32[i], 0, &out, &why), ZKC_EBADDATA);
        ck_assert_ptr_nonnull(why);
    }
    /* decimal text that is not a 64-bit integer */
    static const char *bad[] = {
        "abc", "4.5", "-", "+", "1e3", "0x10", " 12", "12 ", "--1", "+-1", "1-", "12a", "4.", ".5",
        "9223372036854775808",            /* INT64_MAX + 1 */
        "-9223372036854775809",           /* INT64_MIN - 1 */
        "18446744073709551616",           /* 2^64 */
        "1234567890123456789012345",      /* 25 digits */
        "-1234567890123456789012345",
        "\xff", "1\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        int rc = zkc__value_decode(ZKC_FMT_DECIMAL, bad[i], (int)strlen(bad[i]), 0, &out, &why);
        ck_assert_msg(rc == ZKC_EBADDATA, "decimal \"%s\" decoded (rc %d, value %" PRId64 ")", bad[i], rc, out);
        ck_assert_ptr_nonnull(why);
    }
    /* A single NUL byte is not "empty" data. */
    why = NULL;
    ck_assert_int_eq(zkc__value_decode(ZKC_FMT_DECIMAL, "\0", 1, 0, &out, &why), ZKC_EBADDATA);
    why = NULL;
    ck_assert_int_eq(zkc__value_decode(ZKC_FMT_DECIMAL, "12\0" "3", 4, 0, &out, &why), ZKC_EBADDATA);
    /* unknown format */
    why = NULL;
    ck_assert_int_eq(zkc__value_decode(7, "1", 1, 0, &out, &why), ZKC_EBADDATA);
}
END_TEST

START_TEST(t_codec_overflow_and_version)
{
    char buf[24];
    ck_assert_int_eq(zkc__value_encode(ZKC_FMT_INT32, (int64_t)INT32_MAX + 1, buf), ZKC_EOVERFLOW);
    ck_assert_int_eq(zkc__value_encode(ZKC_FMT_INT32, (int64_t)INT32_MIN - 1, buf), ZKC_EOVERFLOW);
    ck_assert_int_eq(zkc__value_encode(ZKC_FMT_INT32, INT64_MAX, buf), ZKC_EOVERFLOW);
    ck_assert_int_eq(zkc__value_encode(ZKC_FMT_INT32, INT64_MIN, buf), ZKC_EOVERFLOW);
    ck_assert_int_eq(zkc__value_encode(ZKC_FMT_INT32, INT32_MAX, buf), 4);
    ck_assert_int_eq(zkc__value_encode(ZKC_FMT_DECIMAL, INT64_MIN, buf), 20);

    ck_assert_int_eq(zkc__version_usable(-1), 0);
    ck_assert_int_ne(zkc__version_usable(-2), 0);
    ck_assert_int_ne(zkc__version_usable(0), 0);
    ck_assert_int_ne(zkc__version_usable(1), 0);
    ck_assert_int_ne(zkc__version_usable(INT32_MAX), 0);
    ck_assert_int_ne(zkc__version_usable(INT32_MIN), 0);
}
END_TEST

START_TEST(t_codec_record)
{
    static zkc__record a, b;
    static char buf[16384];
    memset(&a, 0, sizeof a);
    snprintf(a.id, sizeof a.id, "0123abcd-0000-4000-8000-0123456789ab-77");
    for (int n = 0; n <= 3; n++) {
        a.n = n;
        for (int i = 0; i < n; i++) {
            a.before[i] = i == 0 ? INT64_MIN : i * 1000 - 7;
            a.after[i] = i == 0 ? INT64_MAX : -i;
        }
        int len = zkc__record_encode(&a, buf, sizeof buf);
        ck_assert_int_gt(len, 0);
        memset(&b, 0x55, sizeof b);
        ck_assert_int_eq(zkc__record_decode(buf, len, &b), 0);
        ck_assert_str_eq(b.id, a.id);
        ck_assert_int_eq(b.n, n);
        for (int i = 0; i < n; i++) {
            ck_assert_int_eq(b.before[i], a.before[i]);
            ck_assert_int_eq(b.after[i], a.after[i]);
        }
    }
    /* the largest record */
    a.n = ZKC__REC_MAX_ENTRIES;
    memset(a.id, 'x', sizeof a.id - 1);
    a.id[sizeof a.id - 1] = 0;
    for (int i = 0; i < a.n; i++) {
        a.before[i] = INT64_MIN + i;
        a.after[i] = INT64_MAX - i;
    }
    int len = zkc__record_encode(&a, buf, sizeof buf);
    ck_assert_int_gt(len, 0);
    ck_assert_int_eq(zkc__record_decode(buf, len, &b), 0);
    ck_assert_str_eq(b.id, a.id);
    ck_assert_int_eq(b.n, a.n);
    ck_assert_int_eq(b.before[255], a.before[255]);
    ck_assert_int_eq(b.after[255], a.after[255]);
    /* too small a buffer: -1, never a truncated record */
    ck_assert_int_eq(zkc__record_encode(&a, buf, 64), -1);
    a.n = 1;
    snprintf(a.id, sizeof a.id, "id");
    ck_assert_int_eq(zkc__record_encode(&a, buf, 8), -1);
}
END_TEST

START_TEST(t_codec_record_malformed)
{
    static zkc__record r;
    static const char *bad[] = {
        "",
        "zkc1",
        "zkc1 id",
        "zkc2 id 1\n1 2\n",
        "zkc id 1\n1 2\n",
        "zkc1 id x\n",
        "zkc1 id -1\n",
        "zkc1 id 257\n",
        "zkc1 id 1\n",
        "zkc1 id 1\n1\n",
        "zkc1 id 1\n1 x\n",
        "zkc1 id 1\n4.5 5\n",
        "zkc1 id 2\n1 2\n",
        "zkc1 id 1\n1 99999999999999999999\n",
        "\x01\x02\x03",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(zkc__record_decode(bad[i], (int)strlen(bad[i]), &r) == ZKC_EBADDATA, "accepted record \"%s\"",
                      bad[i]);
    ck_assert_int_eq(zkc__record_decode(NULL, 5, &r), ZKC_EBADDATA);
    ck_assert_int_eq(zkc__record_decode("zkc1 id 0\n", -1, &r), ZKC_EBADDATA);
    /* an id longer than the record's id field */
    char longid[256];
    memset(longid, 'a', sizeof longid);
    memcpy(longid, "zkc1 ", 5);
    memcpy(longid + 200, " 0\n", 3);
    ck_assert_int_eq(zkc__record_decode(longid, 203, &r), ZKC_EBADDATA);
    /* the length bounds the parse: the same bytes cut short are rejected */
    const char *ok = "zkc1 id 1\n10 20\n";
    ck_assert_int_eq(zkc__record_decode(ok, (int)strlen(ok), &r), 0);
    ck_assert_int_eq(r.before[0], 10);
    ck_assert_int_eq(r.after[0], 20);
    ck_assert_int_eq(zkc__record_decode(ok, 13, &r), ZKC_EBADDATA); /* "zkc1 id 1\n10 " */
    ck_assert_int_eq(zkc__record_decode(ok, 14, &r), 0);             /* "zkc1 id 1\n10 2" */
    ck_assert_int_eq(r.after[0], 2);
    /* over 64 KiB is refused whatever it holds */
    static char big[70000];
    memset(big, ' ', sizeof big);
    memcpy(big, "zkc1 id 0\n", 10);
    ck_assert_int_eq(zkc__record_decode(big, (int)sizeof big, &r), ZKC_EBADDATA);
}
END_TEST

/* ================================================ queued mode's records */

/* lib/counter_queue_codec.c: the batch and outcome records of the queued mode
 * (node data anyone with write access may have written). */
START_TEST(t_cq_codec)
{
    zkc__cq_add a[ZKC__CQ_ADDS_MAX], b[ZKC__CQ_ADDS_MAX];
    memset(a, 0, sizeof a);
    a[0].delta = INT64_MIN;
    a[0].bounds.has_floor = 1;
    a[0].bounds.floor = -3;
    a[1].delta = INT64_MAX;
    a[1].bounds.has_ceiling = 1;
    a[1].bounds.ceiling = INT64_MAX;
    int len;
    char *s = zkc__cq_encode_batch("/c", 2, a, &len);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(zkc__cq_decode_batch(s, len, "/c", b), 2);
    ck_assert(b[0].delta == INT64_MIN && b[0].bounds.has_floor && !b[0].bounds.has_ceiling && b[0].bounds.floor == -3);
    ck_assert(b[1].delta == INT64_MAX && !b[1].bounds.has_floor && b[1].bounds.has_ceiling);
    /* another counter's batch (a queue directory hash collision), or cut short */
    ck_assert_int_eq(zkc__cq_decode_batch(s, len, "/c/x", b), -1);
    ck_assert_int_eq(zkc__cq_decode_batch(s, len, "/", b), -1);
    char cut[128];
    memcpy(cut, s, (size_t)len - 3);
    cut[len - 3] = 0;
    ck_assert_int_eq(zkc__cq_decode_batch(cut, len - 3, "/c", b), -1);
    free(s);
    ck_assert_int_eq(zkc__cq_decode_batch("zkcq1 /c\n0\n", 11, "/c", b), -1);
    ck_assert_int_eq(zkc__cq_decode_batch("zkcq1 /c\n65\n", 12, "/c", b), -1);
    ck_assert_int_eq(zkc__cq_decode_batch(NULL, 5, "/c", b), -1);

    int v[3] = {0, ZKC_EBOUND, ZKC_EOVERFLOW}, vb[3];
    zkc_counter_result r[3] = {{1, 2, 0}, {2, 2, 0}, {INT64_MAX, INT64_MAX, 0}}, rb[3];
    s = zkc__cq_encode_result(3, v, r, &len);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(zkc__cq_decode_result(s, len, 3, vb, rb), 0);
    for (int i = 0; i < 3; i++)
        ck_assert(vb[i] == v[i] && rb[i].before == r[i].before && rb[i].after == r[i].after && !rb[i].replayed);
    ck_assert_int_eq(zkc__cq_decode_result(s, len, 2, vb, rb), -1); /* another batch's count */
    memcpy(cut, s, (size_t)len - 2);
    cut[len - 2] = 0;
    ck_assert_int_eq(zkc__cq_decode_result(cut, len - 2, 3, vb, rb), -1);
    free(s);
}
END_TEST

/* The inline form a batch node's name carries (PIPELINE in
 * lib/counter_queue.c): it round-trips, a batch too long for a name gets none,
 * and anything but exactly what the encoder writes is refused (the applier
 * then reads the node's data). */
START_TEST(t_cq_codec_inline)
{
    zkc__cq_add a[ZKC__CQ_ADDS_MAX], b[ZKC__CQ_ADDS_MAX];
    memset(a, 0, sizeof a);
    a[0].delta = -1;
    a[0].bounds.has_floor = 1;
    a[0].bounds.floor = 0;
    a[1].delta = INT64_MAX;
    a[1].bounds.has_ceiling = 1;
    a[1].bounds.ceiling = INT64_MIN;
    char s[ZKC__CQ_INLINE_MAX + 1];
    int len = zkc__cq_encode_inline(2, a, s);
    ck_assert_int_gt(len, 0);
    ck_assert_str_eq(s, "-1.1.0.0_9223372036854775807.2.0.-9223372036854775808_");
    ck_assert_int_eq(zkc__cq_decode_inline(s, (size_t)len, b), 2);
    ck_assert(b[0].delta == -1 && b[0].bounds.has_floor && !b[0].bounds.has_ceiling && b[0].bounds.floor == 0);
    ck_assert(b[1].delta == INT64_MAX && !b[1].bounds.has_floor && b[1].bounds.has_ceiling &&
              b[1].bounds.ceiling == INT64_MIN);
    for (int i = 0; i < 8; i++)
        a[i] = a[1]; /* 8 x 46 bytes: too long for a name */
    ck_assert_int_eq(zkc__cq_encode_inline(8, a, s), -1);
    static const char *bad[] = {
        "", "1.0.0.0", "1.0.0.0_x", "1.4.0.0_", "+1.0.0.0_", "1..0.0_", "1.0.0_",
        "99999999999999999999.0.0.0_", "1.0.0.0__", "1 .0.0.0_",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(zkc__cq_decode_inline(bad[i], strlen(bad[i]), b) == -1, "accepted \"%s\"", bad[i]);
    /* only the given length is read: a valid form followed by more bytes */
    ck_assert_int_eq(zkc__cq_decode_inline("5.0.0.0_junk", 8, b), 1);
    ck_assert(b[0].delta == 5);
}
END_TEST

/* An outcome record carries only what an applier writes: success, ZKC_EBOUND
 * or ZKC_EOVERFLOW, a refusal leaving the value as it was. Anything else would
 * reach the caller as its add's status (INT_MIN also overflowed the metrics'
 * -status: undefined behaviour). */
START_TEST(t_cq_codec_forged_outcome)
{
    static const char *bad[] = {
        "zkcr1 1\n-2147483648 0 0\n", /* INT_MIN */
        "zkcr1 1\n5 0 0\n",           /* not a status */
        "zkcr1 1\n-11 0 0\n",         /* a status no applier writes (ZKC_EBADDATA) */
        "zkcr1 1\n-9 0 1\n",          /* a refusal that moved the value */
        "zkcr1 1\n-10 7 8\n",
    };
    int v[1];
    zkc_counter_result r[1];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(zkc__cq_decode_result(bad[i], (int)strlen(bad[i]), 1, v, r) == -1, "accepted outcome \"%s\"",
                      bad[i]);
    ck_assert_int_eq(zkc__cq_decode_result("zkcr1 1\n0 7 9\n", 14, 1, v, r), 0);
    ck_assert_int_eq(zkc__cq_decode_result("zkcr1 1\n-9 7 7\n", 15, 1, v, r), 0);
    ck_assert_int_eq(v[0], ZKC_EBOUND);
}
END_TEST

/* ================================================================ API basics */

START_TEST(t_blocking_ops)
{
    pin_to_one_server();
    zkc_client *c = client_new();
    tu_raw *rw = raw_open();
    char path[256];
    unique_path(path, sizeof path, "basic");
    zkc_counter *ctr = counter_new(c, path, ZKC_FMT_INT64, 7);
    ck_assert_str_eq(zkc_counter_path(ctr), path);

    /* missing node: the initial value, nothing created */
    ck_assert_int_eq(get_value(ctr), 7);
    struct Stat st;
    ck_assert_int_eq(zoo_exists(tu_raw_zh(rw), path, 0, &st), ZNONODE);

    zkc_counter_result r;
    memset(&r, 0x55, sizeof r);
    ck_assert_int_eq(zkc_counter_add(ctr, 5, NULL, &r), 0);
    ck_assert_int_eq(r.before, 7);
    ck_assert_int_eq(r.after, 12);
    ck_assert_int_eq(r.replayed, 0);
    ck_assert_int_eq(raw_int64(rw, path), 12);
    ck_assert_int_eq(get_value(ctr), 12);

    ck_assert_int_eq(zkc_counter_add(ctr, -20, NULL, &r), 0);
    ck_assert_int_eq(r.before, 12);
    ck_assert_int_eq(r.after, -8);
    ck_assert_int_eq(zkc_counter_add(ctr, 0, NULL, &r), 0);
    ck_assert_int_eq(r.before, -8);
    ck_assert_int_eq(r.after, -8);

    ck_assert_int_eq(zkc_counter_set(ctr, 100), 0);
    ck_assert_int_eq(get_value(ctr), 100);
    ck_assert_int_eq(raw_int64(rw, path), 100);

    /* compare-and-set */
    ck_assert_int_eq(zkc_counter_cas(ctr, 100, 200, &r), 0);
    ck_assert_int_eq(r.before, 100);
    ck_assert_int_eq(r.after, 200);
    int32_t v0 = raw_version(rw, path);
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(zkc_counter_cas(ctr, 100, 300, &r), ZKC_EMISMATCH);
    ck_assert_int_eq(r.before, 200);
    ck_assert_int_eq(raw_version(rw, path), v0);
    ck_assert_int_eq(raw_int64(rw, path), 200);
    /* CAS mismatch against a value changed behind the client's cache */
    ck_assert_int_eq(zoo_set(tu_raw_zh(rw), path, "\0\0\0\0\0\0\0\x09", 8, -1), ZOK);
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(zkc_counter_cas(ctr, 200, 1, &r), ZKC_EMISMATCH);
    ck_assert_int_eq(r.before, 9);
    ck_assert_int_eq(zkc_counter_cas(ctr, 9, 10, &r), 0);
    ck_assert_int_eq(raw_int64(rw, path), 10);

    /* a second object on the same path sees the same counter */
    zkc_counter *ctr2 = counter_new(c, path, ZKC_FMT_INT64, 7);
    ck_assert_int_eq(zkc_counter_add(ctr2, 1, NULL, &r), 0);
    ck_assert_int_eq(r.before, 10);
    ck_assert_int_eq(get_value(ctr), 11);
    zkc_counter_destroy(ctr2);
    /* the same path with another format in one client is a configuration error */
    zkc_counter_options co;
    zkc_counter_options_init(&co);
    co.format = ZKC_FMT_DECIMAL;
    zkc_counter *bad = NULL;
    ck_assert_int_eq(zkc_counter_create(c, path, &co, &bad), ZKC_ECONFIG);
    ck_assert_ptr_null(bad);

    /* argument checks */
    ck_assert_int_eq(zkc_counter_get(ctr, NULL), ZKC_EINVAL);
    ck_assert_int_eq(zkc_counter_add_async(ctr, 1, NULL, NULL, NULL), ZKC_EINVAL);
    zkc_update u = {0};
    u.bounds.has_floor = u.bounds.has_ceiling = 1;
    u.bounds.floor = 5;
    u.bounds.ceiling = 4;
    ck_assert_int_eq(zkc_counter_add(ctr, 1, &u, &r), ZKC_EINVAL);
    /* the same bounds in a multi-counter op: refused alike, nothing written */
    zkc_counter_op inverted = {ctr, 1, u.bounds, NULL};
    ck_assert_int_eq(zkc_counter_multi_add(c, &inverted, 1, NULL, NULL, NULL), ZKC_EINVAL);
    u.bounds.has_ceiling = 0;
    u.key = "bad/key";
    ck_assert_int_eq(zkc_counter_add(ctr, 1, &u, &r), ZKC_EINVAL);
    ck_assert_int_eq(zkc_counter_create(c, "no-slash", NULL, &bad), ZKC_EINVAL);
    ck_assert_int_eq(raw_int64(rw, path), 11);

    /* a foreign delete: the next update starts again from the initial value */
    ck_assert_int_eq(zoo_delete(tu_raw_zh(rw), path, -1), ZOK);
    ck_assert_int_eq(zkc_counter_add(ctr, 1, NULL, &r), 0);
    ck_assert_int_eq(r.before, 7);
    ck_assert_int_eq(r.after, 8);
    ck_assert_int_eq(raw_int64(rw, path), 8);

    /* rebase far from the version wrap: nothing to do, nothing changes */
    int32_t vr = raw_version(rw, path);
    ck_assert_int_eq(zkc_counter_rebase(ctr), 0);
    ck_assert_int_eq(raw_version(rw, path), vr);
    ck_assert_int_eq(get_value(ctr), 8);

    /* the cache makes an uncontended update one round trip: no reads */
    zkc_stats s0, s1;
    ck_assert_int_eq(zkc_counter_add(ctr, 1, NULL, &r), 0);
    zkc_client_stats(c, &s0);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(zkc_counter_add(ctr, 1, NULL, &r), 0);
    zkc_client_stats(c, &s1);
    ck_assert_uint_eq(s1.requests[ZKC_REQ_MULTI] - s0.requests[ZKC_REQ_MULTI], 10);
    ck_assert_uint_eq(s1.requests_total - s0.requests_total, 10);
    ck_assert_int_eq(raw_int64(rw, path), 19);

    /* max_attempts bounds the CAS rounds: one round lost to a foreign writer */
    zkc_counter_options o1;
    zkc_counter_options_init(&o1);
    o1.max_attempts = 1;
    char p1[300];
    snprintf(p1, sizeof p1, "%s-once", path);
    zkc_counter *once;
    ck_assert_int_eq(zkc_counter_create(c, p1, &o1, &once), 0);
    ck_assert_int_eq(zkc_counter_add(once, 1, NULL, &r), 0);
    ck_assert_int_eq(zoo_set(tu_raw_zh(rw), p1, "\0\0\0\0\0\0\0\x05", 8, -1), ZOK);
    ck_assert_int_eq(zkc_counter_add(once, 1, NULL, &r), ZKC_ECONTENDED);
    ck_assert_int_eq(raw_int64(rw, p1), 5);
    ck_assert_int_eq(zkc_counter_add(once, 1, NULL, &r), 0); /* re-read after the lost round */
    ck_assert_int_eq(r.before, 5);
    zkc_counter_destroy(once);

    /* parents of a nested counter path are created on the first write */
    char nested[300];
    snprintf(nested, sizeof nested, "%s-dir/a/b/ctr", path);
    zkc_counter *deep = counter_new(c, nested, ZKC_FMT_INT64, 0);
    ck_assert_int_eq(zkc_counter_add(deep, 3, NULL, &r), 0);
    ck_assert_int_eq(raw_int64(rw, nested), 3);
    zkc_counter_destroy(deep);

    zkc_counter_destroy(ctr);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
    tu_raw_close(rw);
}
END_TEST

START_TEST(t_async_ops)
{
    pin_to_one_server();
    zkc_client *c = client_new();
    tu_raw *rw = raw_open();
    char path[256];
    unique_path(path, sizeof path, "async");
    zkc_counter *ctr = counter_new(c, path, ZKC_FMT_INT64, 0);
    pthread_t me = pthread_self();
    box b[6];
    for (int i = 0; i < 6; i++)
        box_init(&b[i]);

    ck_assert_int_eq(zkc_counter_set_async(ctr, 40, box_cb, &b[0]), 0);
    box_wait(&b[0]);
    ck_assert_int_eq(b[0].status, 0);

    ck_assert_int_eq(zkc_counter_add_async(ctr, 2, NULL, box_cb, &b[1]), 0);
    box_wait(&b[1]);
    ck_assert_int_eq(b[1].status, 0);
    ck_assert_int_eq(b[1].r.before, 40);
    ck_assert_int_eq(b[1].r.after, 42);

    ck_assert_int_eq(zkc_counter_get_async(ctr, box_cb, &b[2]), 0);
    box_wait(&b[2]);
    ck_assert_int_eq(b[2].status, 0);
    ck_assert_int_eq(b[2].r.after, 42);

    ck_assert_int_eq(zkc_counter_cas_async(ctr, 42, 50, box_cb, &b[3]), 0);
    box_wait(&b[3]);
    ck_assert_int_eq(b[3].status, 0);
    ck_assert_int_eq(b[3].r.before, 42);
    ck_assert_int_eq(b[3].r.after, 50);

    ck_assert_int_eq(zkc_counter_cas_async(ctr, 42, 60, box_cb, &b[4]), 0);
    box_wait(&b[4]);
    ck_assert_int_eq(b[4].status, ZKC_EMISMATCH);
    ck_assert_int_eq(b[4].r.before, 50);

    zkc_update u = {0};
    u.bounds.has_floor = 1;
    u.bounds.floor = 0;
    ck_assert_int_eq(zkc_counter_add_async(ctr, -51, &u, box_cb, &b[5]), 0);
    box_wait(&b[5]);
    ck_assert_int_eq(b[5].status, ZKC_EBOUND);

    ck_assert_int_eq(raw_int64(rw, path), 50);
    zkc_counter_destroy(ctr);
    /* After destroy no callback can still come: each ran exactly once, and
     * never on the submitting thread. */
    ck_assert_int_eq(zkc_client_destroy(c), 0);
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(b[i].calls, 1);
        ck_assert_msg(!pthread_equal(b[i].thread, me), "callback %d ran on the caller's thread", i);
    }
    tu_raw_close(rw);
}
END_TEST

/* Callbacks may call blocking zkcoord functions (the header says so). */
typedef struct nested_ctx {
    box b;
    int inner_rc;
    int64_t inner_value;
} nested_ctx;

static void nested_cb(zkc_counter *ctr, int status, const zkc_counter_result *r, void *ud)
{
    nested_ctx *n = ud;
    n->inner_rc = zkc_counter_get(ctr, &n->inner_value);
    box_cb(ctr, status, r, &n->b);
}

START_TEST(t_async_blocking_from_callback)
{
    zkc_client *c = client_new();
    char path[256];
    unique_path(path, sizeof path, "nested");
    zkc_counter *ctr = counter_new(c, path, ZKC_FMT_INT64, 0);
    nested_ctx n;
    memset(&n, 0, sizeof n);
    box_init(&n.b);
    ck_assert_int_eq(zkc_counter_add_async(ctr, 9, NULL, nested_cb, &n), 0);
    box_wait(&n.b);
    ck_assert_int_eq(n.b.status, 0);
    ck_assert_int_eq(n.inner_rc, 0);
    ck_assert_int_eq(n.inner_value, 9);
    zkc_counter_destroy(ctr);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

START_TEST(t_bounded)
{
    pin_to_one_server();
    zkc_client *c = client_new();
    tu_raw *rw = raw_open();
    char path[256];
    unique_path(path, sizeof path, "bounded");
    zkc_counter *ctr = counter_new(c, path, ZKC_FMT_INT64, 0);
    ck_assert_int_eq(zkc_counter_set(ctr, 5), 0);
    int32_t v0 = raw_version(rw, path);

    zkc_update u = {0};
    u.bounds.has_floor = 1;
    u.bounds.floor = 0;
    zkc_counter_result r;
    ck_assert_int_eq(zkc_counter_add(ctr, -6, &u, &r), ZKC_EBOUND);
    ck_assert_int_eq(raw_version(rw, path), v0);
    ck_assert_int_eq(raw_int64(rw, path), 5);
    ck_assert_int_eq(zkc_counter_add(ctr, -5, &u, &r), 0);
    ck_assert_int_eq(r.before, 5);
    ck_assert_int_eq(r.after, 0);
    ck_assert_int_eq(zkc_counter_add(ctr, -1, &u, &r), ZKC_EBOUND);
    ck_assert_int_eq(raw_int64(rw, path), 0);

    /* a ceiling */
    zkc_update cu = {0};
    cu.bounds.has_ceiling = 1;
    cu.bounds.ceiling = 10;
    ck_assert_int_eq(zkc_counter_add(ctr, 10, &cu, &r), 0);
    int32_t v1 = raw_version(rw, path);
    ck_assert_int_eq(zkc_counter_add(ctr, 1, &cu, &r), ZKC_EBOUND);
    ck_assert_int_eq(raw_version(rw, path), v1);
    /* a foreign writer moved it: a refusal is re-judged on the server's value */
    ck_assert_int_eq(zoo_set(tu_raw_zh(rw), path, "\0\0\0\0\0\0\0\x0a", 8, -1), ZOK);
    int32_t v2 = raw_version(rw, path);
    ck_assert_int_eq(zkc_counter_add(ctr, -11, &u, &r), ZKC_EBOUND);
    ck_assert_int_eq(zkc_counter_add(ctr, 1, &cu, &r), ZKC_EBOUND);
    ck_assert_int_eq(raw_version(rw, path), v2);
    ck_assert_int_eq(zkc_counter_add(ctr, -10, &u, &r), 0);
    ck_assert_int_eq(r.before, 10);
    ck_assert_int_eq(r.after, 0);
    ck_assert_int_eq(zkc_counter_add(ctr, 10, &cu, &r), 0);
    /* floor and ceiling together; equal bounds pin the value */
    zkc_update both = {0};
    both.bounds.has_floor = both.bounds.has_ceiling = 1;
    both.bounds.floor = both.bounds.ceiling = 4;
    ck_assert_int_eq(zkc_counter_add(ctr, -7, &both, &r), ZKC_EBOUND);
    ck_assert_int_eq(zkc_counter_add(ctr, -6, &both, &r), 0);
    ck_assert_int_eq(r.after, 4);

    /* overflow of the width: an error, never a wrap, nothing written */
    ck_assert_int_eq(zkc_counter_set(ctr, INT64_MAX - 1), 0);
    int32_t v3 = raw_version(rw, path);
    ck_assert_int_eq(zkc_counter_add(ctr, 2, NULL, &r), ZKC_EOVERFLOW);
    ck_assert_int_eq(raw_version(rw, path), v3);
    ck_assert_int_eq(raw_int64(rw, path), INT64_MAX - 1);
    ck_assert_int_eq(zkc_counter_add(ctr, 1, NULL, &r), 0);
    ck_assert_int_eq(r.after, INT64_MAX);
    ck_assert_int_eq(zkc_counter_set(ctr, INT64_MIN), 0);
    ck_assert_int_eq(zkc_counter_add(ctr, -1, NULL, &r), ZKC_EOVERFLOW);
    ck_assert_int_eq(raw_int64(rw, path), INT64_MIN);

    zkc_counter_destroy(ctr);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
    tu_raw_close(rw);
}
END_TEST

/* A refusal (ZKC_EBOUND, ZKC_EMISMATCH) must rest on what the server holds
 * now. Here the client's cache was last confirmed by the read behind an
 * earlier refusal; a foreign writer (Curator, kazoo, an admin) then changed
 * the node. The next update would be allowed on the server's value. */
START_TEST(t_refusal_not_from_stale_cache)
{
    pin_to_one_server();
    zkc_client *c = client_new();
    tu_raw *rw = raw_open();
    char path[256];
    unique_path(path, sizeof path, "stale");
    zkc_counter *ctr = counter_new(c, path, ZKC_FMT_INT64, 0);
    zkc_counter_result r;
    zkc_update cu = {0};
    cu.bounds.has_ceiling = 1;
    cu.bounds.ceiling = 10;

    char fail[2][200] = {"", ""};

    /* bounded add */
    ck_assert_int_eq(zkc_counter_set(ctr, 10), 0);
    ck_assert_int_eq(zkc_counter_add(ctr, 1, &cu, &r), ZKC_EBOUND); /* re-read: really 10 */
    ck_assert_int_eq(zoo_set(tu_raw_zh(rw), path, "\0\0\0\0\0\0\0\x03", 8, -1), ZOK);
    memset(&r, 0, sizeof r);
    int rc = zkc_counter_add(ctr, 7, &cu, &r);
    if (rc != 0 || r.before != 3 || r.after != 10)
        snprintf(fail[0], sizeof fail[0], "add 7 (ceiling 10) to a node holding 3: %s, judged against %" PRId64,
                 zkc_strerror(rc), r.before);
    ck_assert_int_eq(zoo_set(tu_raw_zh(rw), path, "\0\0\0\0\0\0\0\x0a", 8, -1), ZOK);

    /* compare-and-set */
    ck_assert_int_eq(zkc_counter_cas(ctr, 4, 6, &r), ZKC_EMISMATCH); /* re-read: really 10 */
    ck_assert_int_eq(r.before, 10);
    ck_assert_int_eq(zoo_set(tu_raw_zh(rw), path, "\0\0\0\0\0\0\0\x04", 8, -1), ZOK);
    memset(&r, 0, sizeof r);
    rc = zkc_counter_cas(ctr, 4, 6, &r);
    if (rc != 0)
        snprintf(fail[1], sizeof fail[1], "cas 4 -> 6 on a node holding 4: %s, current value reported %" PRId64,
                 zkc_strerror(rc), r.before);
    else
        ck_assert_int_eq(raw_int64(rw, path), 6);
    ck_assert_msg(!fail[0][0] && !fail[1][0], "%s%s%s", fail[0], fail[0][0] && fail[1][0] ? "; " : "", fail[1]);

    zkc_counter_destroy(ctr);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
    tu_raw_close(rw);
}
END_TEST

/* ================================================================ formats */

START_TEST(t_formats_bytes)
{
    pin_to_one_server();
    zkc_client *c = client_new();
    tu_raw *rw = raw_open();
    char p64[256], p32[256], pdec[256];
    unique_path(p64, sizeof p64, "fmt64");
    unique_path(p32, sizeof p32, "fmt32");
    unique_path(pdec, sizeof pdec, "fmtdec");
    zkc_counter *c64 = counter_new(c, p64, ZKC_FMT_INT64, 0);
    zkc_counter *c32 = counter_new(c, p32, ZKC_FMT_INT32, 0);
    zkc_counter *cdec = counter_new(c, pdec, ZKC_FMT_DECIMAL, 0);
    zkc_counter_result r;

    ck_assert_int_eq(zkc_counter_add(c64, 42, NULL, &r), 0);
    ck_assert_int_eq(zkc_counter_add(c32, 42, NULL, &r), 0);
    ck_assert_int_eq(zkc_counter_add(cdec, 42, NULL, &r), 0);
    expect_bytes(rw, p64, "\0\0\0\0\0\0\0\x2a", 8);
    expect_bytes(rw, p32, "\0\0\0\x2a", 4);
    expect_bytes(rw, pdec, "42", 2);

    ck_assert_int_eq(zkc_counter_add(c64, -50, NULL, &r), 0);
    ck_assert_int_eq(zkc_counter_add(c32, -50, NULL, &r), 0);
    ck_assert_int_eq(zkc_counter_add(cdec, -50, NULL, &r), 0);
    expect_bytes(rw, p64, "\xff\xff\xff\xff\xff\xff\xff\xf8", 8);
    expect_bytes(rw, p32, "\xff\xff\xff\xf8", 4);
    expect_bytes(rw, pdec, "-8", 2);

    ck_assert_int_eq(zkc_counter_set(c64, 0x0102030405060708LL), 0);
    ck_assert_int_eq(zkc_counter_set(c32, 0x01020304), 0);
    ck_assert_int_eq(zkc_counter_set(cdec, INT64_MIN), 0);
    expect_bytes(rw, p64, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    expect_bytes(rw, p32, "\x01\x02\x03\x04", 4);
    expect_bytes(rw, pdec, "-9223372036854775808", 20);
    ck_assert_int_eq(get_value(c64), 0x0102030405060708LL);
    ck_assert_int_eq(get_value(c32), 0x01020304);
    ck_assert_int_eq(get_value(cdec), INT64_MIN);

    /* 32-bit overflow: refused, node unchanged */
    ck_assert_int_eq(zkc_counter_set(c32, INT32_MAX), 0);
    int32_t v = raw_version(rw, p32);
    ck_assert_int_eq(zkc_counter_add(c32, 1, NULL, &r), ZKC_EOVERFLOW);
    ck_assert_int_eq(zkc_counter_set(c32, (int64_t)INT32_MAX + 1), ZKC_EOVERFLOW);
    ck_assert_int_eq(zkc_counter_cas(c32, INT32_MAX, (int64_t)INT32_MIN - 1, &r), ZKC_EOVERFLOW);
    ck_assert_int_eq(raw_version(rw, p32), v);
    expect_bytes(rw, p32, "\x7f\xff\xff\xff", 4);
    ck_assert_int_eq(zkc_counter_add(c32, -1, NULL, &r), 0);
    ck_assert_int_eq(r.after, INT32_MAX - 1);
    zkc_counter_options co;
    zkc_counter_options_init(&co);
    co.format = ZKC_FMT_INT32;
    co.initial = (int64_t)INT32_MAX + 1;
    zkc_counter *bad = NULL;
    char p32b[256];
    unique_path(p32b, sizeof p32b, "fmt32b");
    ck_assert_int_eq(zkc_counter_create(c, p32b, &co, &bad), ZKC_EINVAL);
    co.format = (zkc_format)9;
    co.initial = 0;
    ck_assert_int_eq(zkc_counter_create(c, p32b, &co, &bad), ZKC_EINVAL);

    zkc_counter_destroy(c64);
    zkc_counter_destroy(c32);
    zkc_counter_destroy(cdec);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
    tu_raw_close(rw);
}
END_TEST

/* Nodes written by the peers (or created empty by kazoo's ensure_path) are read
 * and updated in their own format. */
START_TEST(t_formats_foreign_nodes)
{
    pin_to_one_server();
    zkc_client *c = client_new();
    tu_raw *rw = raw_open();
    char p64[256], p32[256], pdec[256], pempty[256];
    unique_path(p64, sizeof p64, "cur64");
    unique_path(p32, sizeof p32, "cur32");
    unique_path(pdec, sizeof pdec, "kazoo");
    unique_path(pempty, sizeof pempty, "empty");
    raw_put(rw, p64, "\0\0\0\0\0\0\x03\xe8", 8); /* DistributedAtomicLong 1000 */
    raw_put(rw, p32, "\xff\xff\xff\x9c", 4);     /* SharedCount -100 */
    raw_put(rw, pdec, "-17", 3);                 /* kazoo Counter */
    raw_put(rw, pempty, "", 0);                  /* kazoo ensure_path */
    zkc_counter *c64 = counter_new(c, p64, ZKC_FMT_INT64, 0);
    zkc_counter *c32 = counter_new(c, p32, ZKC_FMT_INT32, 0);
    zkc_counter *cdec = counter_new(c, pdec, ZKC_FMT_DECIMAL, 0);
    zkc_counter *cempty = counter_new(c, pempty, ZKC_FMT_DECIMAL, 5);
    ck_assert_int_eq(get_value(c64), 1000);
    ck_assert_int_eq(get_value(c32), -100);
    ck_assert_int_eq(get_value(cdec), -17);
    ck_assert_int_eq(get_value(cempty), 5);
    zkc_counter_result r;
    ck_assert_int_eq(zkc_counter_add(c64, 1, NULL, &r), 0);
    ck_assert_int_eq(r.before, 1000);
    ck_assert_int_eq(zkc_counter_add(c32, 1, NULL, &r), 0);
    ck_assert_int_eq(r.before, -100);
    ck_assert_int_eq(zkc_counter_add(cdec, 20, NULL, &r), 0);
    ck_assert_int_eq(r.before, -17);
    ck_assert_int_eq(zkc_counter_add(cempty, 1, NULL, &r), 0);
    ck_assert_int_eq(r.before, 5);
    ck_assert_int_eq(r.after, 6);
    expect_bytes(rw, p64, "\0\0\0\0\0\0\x03\xe9", 8);
    expect_bytes(rw, p32, "\xff\xff\xff\x9d", 4);
    expect_bytes(rw, pdec, "3", 1);
    expect_bytes(rw, pempty, "6", 1);
    zkc_counter_destroy(c64);
    zkc_counter_destroy(c32);
    zkc_counter_destroy(cdec);
    zkc_counter_destroy(cempty);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
    tu_raw_close(rw);
}
END_TEST

/* Every operation on a node it cannot read returns ZKC_EBADDATA and leaves the
 * node exactly as it was. */
static void expect_untouched_baddata(zkc_client *c, tu_raw *rw, const char *path, zkc_format fmt, const char *data,
                                     int len, int warm)
{
    zkc_counter *ctr = counter_new(c, path, fmt, 0);
    if (warm) {
        /* The client has a valid cached value when a foreign writer spoils it. */
        zkc_counter_result r0;
        ck_assert_int_eq(zkc_counter_add(ctr, 1, NULL, &r0), 0);
        ck_assert_int_eq(zoo_set(tu_raw_zh(rw), path, data, len, -1), ZOK);
    } else {
        raw_put(rw, path, data, len);
    }
    char before[256];
    int blen = sizeof before;
    struct Stat st0, st1;
    ck_assert_int_eq(raw_get(rw, path, before, &blen, &st0), ZOK);

    int64_t v;
    zkc_counter_result r;
    zkc_update u = {0};
    u.bounds.has_floor = 1;
    u.bounds.floor = -1000;
    zkc_update ku = {0};
    char key[128];
    snprintf(key, sizeof key, "bad-%d-%lld", (int)getpid(), tu_now_ms());
    ku.key = key;
    ck_assert_int_eq(zkc_counter_get(ctr, &v), ZKC_EBADDATA);
    ck_assert_int_eq(zkc_counter_add(ctr, 1, NULL, &r), ZKC_EBADDATA);
    ck_assert_int_eq(zkc_counter_add(ctr, -1, &u, &r), ZKC_EBADDATA);
    ck_assert_int_eq(zkc_counter_add(ctr, 1, &ku, &r), ZKC_EBADDATA);
    ck_assert_int_eq(zkc_counter_set(ctr, 5), ZKC_EBADDATA);
    ck_assert_int_eq(zkc_counter_cas(ctr, 0, 5, &r), ZKC_EBADDATA);
    box b;
    box_init(&b);
    ck_assert_int_eq(zkc_counter_add_async(ctr, 1, NULL, box_cb, &b), 0);
    box_wait(&b);
    ck_assert_int_eq(b.status, ZKC_EBADDATA);
    zkc_counter_op op = {ctr, 1, {0}, NULL};
    ck_assert_int_eq(zkc_counter_multi_add(c, &op, 1, NULL, NULL, NULL), ZKC_EBADDATA);
    ck_assert_int_eq(zkc_counter_rebase(ctr), ZKC_EBADDATA);
    ck_assert_int_eq(zkc_counter_lookup(c, key, &r), ZKC_ENONODE);

    char after[256];
    int alen = sizeof after;
    ck_assert_int_eq(raw_get(rw, path, after, &alen, &st1), ZOK);
    ck_assert_int_eq(alen, blen);
    if (alen > 0)
        ck_assert_mem_eq(after, before, (size_t)alen);
    ck_assert_int_eq(st1.version, st0.version);
    ck_assert_int_eq(st1.mzxid, st0.mzxid);
    ck_assert_int_eq(st1.czxid, st0.czxid);
    zkc_counter_destroy(ctr);
}

START_TEST(t_malformed_untouched)
{
    pin_to_one_server();
    zkc_client *c = client_new();
    tu_raw *rw = raw_open();
    static const struct {
        zkc_format fmt;
        const char *data;
        int len;
    } cases[] = {
        {ZKC_FMT_DECIMAL, "4.5", 3},
        {ZKC_FMT_DECIMAL, "abc", 3},
        {ZKC_FMT_DECIMAL, "-", 1},
        {ZKC_FMT_DECIMAL, "1234567890123456789012345", 25},
        {ZKC_FMT_INT64, "\0\0\x01", 3},
        {ZKC_FMT_INT64, "\0\0\0\x01", 4}, /* a SharedCount opened as a long */
        {ZKC_FMT_INT32, "\0\0\0\0\0\0\0\x01", 8}, /* a long opened as a SharedCount */
        {ZKC_FMT_INT32, "42", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int warm = 0; warm <= 1; warm++) {
            char path[256];
            unique_path(path, sizeof path, "malformed");
            expect_untouched_baddata(c, rw, path, cases[i].fmt, cases[i].data, cases[i].len, warm);
        }
    }
    /* a multi over a good and a bad counter writes neither */
    char good[256], badp[256];
    unique_path(good, sizeof good, "mgood");
    unique_path(badp, sizeof badp, "mbad");
    raw_put(rw, badp, "4.5", 3);
    zkc_counter *g = counter_new(c, good, ZKC_FMT_INT64, 0);
    zkc_counter *bd = counter_new(c, badp, ZKC_FMT_DECIMAL, 0);
    ck_assert_int_eq(zkc_counter_set(g, 10), 0);
    int32_t gv = raw_version(rw, good);
    zkc_counter_op ops[2] = {{g, -1, {.has_floor = 1, .floor = 0}, NULL}, {bd, 1, {0}, NULL}};
    zkc_counter_result res[2];
    ck_assert_int_eq(zkc_counter_multi_add(c, ops, 2, NULL, res, NULL), ZKC_EBADDATA);
    ck_assert_int_eq(raw_version(rw, good), gv);
    ck_assert_int_eq(raw_int64(rw, good), 10);
    expect_bytes(rw, badp, "4.5", 3);
    zkc_counter_destroy(g);
    zkc_counter_destroy(bd);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
    tu_raw_close(rw);
}
END_TEST

/* ================================================================ exactness */

#define EX_PROCS 3
#define EX_THREADS 4
#define EX_ADDS 250
#define EX_WINDOW 8

typedef struct addrec {
    int64_t delta, before, after;
    int rc;
    int done;
} addrec;

typedef struct ex_shared {
    char path[256];
    int64_t initial;
    addrec rec[EX_PROCS + 1][EX_THREADS][EX_ADDS];
} ex_shared;

typedef struct ex_thread {
    zkc_counter *ctr;
    addrec *rec;
    int async;
    uint64_t seed;
    /* async window */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inflight;
} ex_thread;

typedef struct ex_async {
    ex_thread *t;
    addrec *rec;
} ex_async;

static void ex_cb(zkc_counter *ctr, int status, const zkc_counter_result *r, void *ud)
{
    (void)ctr;
    ex_async *a = ud;
    a->rec->rc = status;
    if (r) {
        a->rec->before = r->before;
        a->rec->after = r->after;
    }
    pthread_mutex_lock(&a->t->mu);
    a->rec->done++;
    a->t->inflight--;
    pthread_cond_broadcast(&a->t->cv);
    pthread_mutex_unlock(&a->t->mu);
}

static void *ex_run(void *arg)
{
    ex_thread *t = arg;
    static __thread ex_async slots[EX_ADDS];
    for (int i = 0; i < EX_ADDS; i++) {
        addrec *rec = &t->rec[i];
        rec->delta = rand_delta(&t->seed, 1000);
        if (!t->async) {
            zkc_counter_result r;
            rec->rc = zkc_counter_add(t->ctr, rec->delta, NULL, &r);
            rec->before = r.before;
            rec->after = r.after;
            rec->done = 1;
            continue;
        }
        struct timespec dl;
        tu_deadline_ts(&dl, WAIT_MS);
        pthread_mutex_lock(&t->mu);
        while (t->inflight >= EX_WINDOW)
            if (pthread_cond_timedwait(&t->cv, &t->mu, &dl) == ETIMEDOUT)
                break;
        int full = t->inflight >= EX_WINDOW;
        if (!full)
            t->inflight++;
        pthread_mutex_unlock(&t->mu);
        if (full) {
            rec->rc = 999; /* stuck: reported by the checker */
            break;
        }
        slots[i].t = t;
        slots[i].rec = rec;
        int rc = zkc_counter_add_async(t->ctr, rec->delta, NULL, ex_cb, &slots[i]);
        if (rc != 0) {
            rec->rc = rc;
            rec->done = 1;
            pthread_mutex_lock(&t->mu);
            t->inflight--;
            pthread_mutex_unlock(&t->mu);
        }
    }
    struct timespec dl;
    tu_deadline_ts(&dl, WAIT_MS);
    pthread_mutex_lock(&t->mu);
    while (t->inflight > 0)
        if (pthread_cond_timedwait(&t->cv, &t->mu, &dl) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* One process's share: EX_THREADS threads on one client, half blocking, half
 * async; each thread has its own counter object on the same path. */
static int ex_process(ex_shared *sh, int pi, procs *p)
{
    zkc_client *c = child_client();
    if (!c)
        return 2;
    zkc_counter *ctr[EX_THREADS];
    zkc_counter_options co;
    zkc_counter_options_init(&co);
    co.initial = sh->initial;
    for (int i = 0; i < EX_THREADS; i++)
        if (zkc_counter_create(c, sh->path, &co, &ctr[i]) != 0)
            return 3;
    if (p && proc_ready_and_wait(p) != 0)
        return 4;
    ex_thread t[EX_THREADS];
    pthread_t th[EX_THREADS];
    for (int i = 0; i < EX_THREADS; i++) {
        memset(&t[i], 0, sizeof t[i]);
        t[i].ctr = ctr[i];
        t[i].rec = sh->rec[pi][i];
        t[i].async = i % 2;
        t[i].seed = rng_seed(pi, i);
        pthread_mutex_init(&t[i].mu, NULL);
        tu_cond_init_mono(&t[i].cv);
        pthread_create(&th[i], NULL, ex_run, &t[i]);
    }
    for (int i = 0; i < EX_THREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < EX_THREADS; i++)
        zkc_counter_destroy(ctr[i]);
    zkc_client_destroy(c);
    return 0;
}

static ex_shared *g_ex;
static procs g_ex_procs;

static int ex_child(int i, void *arg)
{
    (void)arg;
    return ex_process(g_ex, i, &g_ex_procs);
}

START_TEST(t_exact_threads_processes)
{
    ex_shared *sh = shared_alloc(sizeof *sh);
    g_ex = sh;
    unique_path(sh->path, sizeof sh->path, "exact");
    sh->initial = 1000000;
    long long t0 = tu_now_ms();
    procs_start(&g_ex_procs, EX_PROCS, "ex");
    procs_go(&g_ex_procs);
    /* and this process's own threads alongside */
    ck_assert_int_eq(ex_process(sh, EX_PROCS, NULL), 0);
    procs_join(&g_ex_procs);

    int64_t sum = 0;
    int applied = 0, contended = 0;
    for (int p = 0; p <= EX_PROCS; p++)
        for (int t = 0; t < EX_THREADS; t++)
            for (int i = 0; i < EX_ADDS; i++) {
                addrec *r = &sh->rec[p][t][i];
                ck_assert_msg(r->done == 1, "add %d/%d/%d completed %d times", p, t, i, r->done);
                if (r->rc == ZKC_ECONTENDED) {
                    contended++;
                    continue;
                }
                ck_assert_msg(r->rc == 0, "add %d/%d/%d: %s", p, t, i, zkc_strerror(r->rc));
                ck_assert_int_eq(r->after - r->before, r->delta);
                sum += r->delta;
                applied++;
            }
    zkc_client *c = client_new();
    zkc_counter *ctr = counter_new(c, sh->path, ZKC_FMT_INT64, sh->initial);
    int64_t final = get_value(ctr);
    tu_raw *rw = raw_open();
    ck_assert_int_eq(raw_int64(rw, sh->path), final);
    tu_raw_close(rw);
    fprintf(stderr, "exactness: %d adds applied, %d contended, %lld ms\n", applied, contended, tu_now_ms() - t0);
    ck_assert_msg(final == sh->initial + sum, "final %" PRId64 " != initial + applied deltas %" PRId64, final,
                  sh->initial + sum);
    ck_assert_int_ge(applied, (EX_PROCS + 1) * EX_THREADS * EX_ADDS * 9 / 10);
    zkc_counter_destroy(ctr);
    zkc_client_destroy(c);
    shared_free(sh, sizeof *sh);
}
END_TEST

/* ================================================================ bounded stock */

#define ST_STOCK 200
#define ST_PROCS 2
#define ST_THREADS 3
#define ST_MAXOPS 600

typedef struct st_rec {
    int q;
    int rc;
    int64_t before, after;
} st_rec;

typedef struct st_shared {
    char path[256];
    int queued; /* zkc_counter_options.queued for every client */
    int nops[ST_PROCS + 1][ST_THREADS];
    st_rec rec[ST_PROCS + 1][ST_THREADS][ST_MAXOPS];
} st_shared;

typedef struct st_thread {
    zkc_counter *ctr;
    int *nops;
    st_rec *rec;
    uint64_t seed;
} st_thread;

/* Reserve 1..3 units until a 1-unit request is refused (the stock is then 0
 * for good: nothing adds to it). */
static void *st_run(void *arg)
{
    st_thread *t = arg;
    zkc_update u = {0};
    u.bounds.has_floor = 1;
    u.bounds.floor = 0;
    int q = 1 + (int)(tu_rng_next(&t->seed) % 3);
    while (*t->nops < ST_MAXOPS) {
        st_rec *r = &t->rec[(*t->nops)++];
        zkc_counter_result res = {0, 0, 0};
        r->q = q;
        r->rc = zkc_counter_add(t->ctr, -q, &u, &res);
        r->before = res.before;
        r->after = res.after;
        if (r->rc == ZKC_EBOUND && q == 1)
            break;
        if (r->rc != 0 && r->rc != ZKC_EBOUND)
            break;
        q = r->rc == ZKC_EBOUND ? 1 : 1 + (int)(tu_rng_next(&t->seed) % 3);
    }
    return NULL;
}

static int st_process(st_shared *sh, int pi, procs *p)
{
    zkc_client *c = child_client();
    if (!c)
        return 2;
    zkc_counter *ctr;
    zkc_counter_options co;
    zkc_counter_options_init(&co);
    co.queued = sh->queued;
    if (zkc_counter_create(c, sh->path, &co, &ctr) != 0)
        return 3;
    if (p && proc_ready_and_wait(p) != 0)
        return 4;
    st_thread t[ST_THREADS];
    pthread_t th[ST_THREADS];
    for (int i = 0; i < ST_THREADS; i++) {
        t[i].ctr = ctr;
        t[i].nops = &sh->nops[pi][i];
        t[i].rec = sh->rec[pi][i];
        t[i].seed = rng_seed(pi + 100, i);
        pthread_create(&th[i], NULL, st_run, &t[i]);
    }
    for (int i = 0; i < ST_THREADS; i++)
        pthread_join(th[i], NULL);
    zkc_counter_destroy(ctr);
    zkc_client_destroy(c);
    return 0;
}

static st_shared *g_st;
static procs g_st_procs;

static int st_child(int i, void *arg)
{
    (void)arg;
    return st_process(g_st, i, &g_st_procs);
}

static int cmp_before_desc(const void *a, const void *b)
{
    const st_rec *x = *(st_rec *const *)a, *y = *(st_rec *const *)b;
    return x->before < y->before ? 1 : x->before > y->before ? -1 : 0;
}

static void bounded_stock(int queued)
{
    st_shared *sh = shared_alloc(sizeof *sh);
    g_st = sh;
    sh->queued = queued;
    unique_path(sh->path, sizeof sh->path, queued ? "qstock" : "stock");
    procs_start(&g_st_procs, ST_PROCS, "st");
    zkc_client *c = client_new();
    zkc_counter_options cop;
    zkc_counter_options_init(&cop);
    cop.queued = queued;
    zkc_counter *ctr = NULL;
    ck_assert_int_eq(zkc_counter_create(c, sh->path, &cop, &ctr), 0);
    ck_assert_int_eq(zkc_counter_set(ctr, ST_STOCK), 0);
    procs_go(&g_st_procs);
    ck_assert_int_eq(st_process(sh, ST_PROCS, NULL), 0);
    procs_join(&g_st_procs);

    static st_rec *ok[(ST_PROCS + 1) * ST_THREADS * ST_MAXOPS];
    int nok = 0, refused = 0;
    int64_t sold = 0;
    for (int p = 0; p <= ST_PROCS; p++)
        for (int t = 0; t < ST_THREADS; t++) {
            int n = sh->nops[p][t];
            ck_assert_msg(n < ST_MAXOPS, "worker %d/%d never saw the stock run out", p, t);
            /* each worker stops on a refused 1-unit request */
            ck_assert_int_eq(sh->rec[p][t][n - 1].rc, ZKC_EBOUND);
            ck_assert_int_eq(sh->rec[p][t][n - 1].q, 1);
            for (int i = 0; i < n; i++) {
                st_rec *r = &sh->rec[p][t][i];
                if (r->rc == ZKC_EBOUND) {
                    refused++;
                    continue;
                }
                ck_assert_msg(r->rc == 0, "reservation %d/%d/%d: %s (only success or ZKC_EBOUND allowed)", p, t, i,
                              zkc_strerror(r->rc));
                ck_assert_int_eq(r->before - r->after, r->q);
                ck_assert_int_ge(r->after, 0);
                sold += r->q;
                ok[nok++] = r;
            }
        }
    /* The successful reservations chain exactly from S down to 0. */
    qsort(ok, (size_t)nok, sizeof ok[0], cmp_before_desc);
    int64_t expect = ST_STOCK;
    for (int i = 0; i < nok; i++) {
        ck_assert_msg(ok[i]->before == expect, "reservation %d starts at %" PRId64 ", expected %" PRId64, i,
                      ok[i]->before, expect);
        expect = ok[i]->after;
    }
    ck_assert_int_eq(expect, 0);
    ck_assert_int_eq(sold, ST_STOCK);
    ck_assert_int_ge(refused, (ST_PROCS + 1) * ST_THREADS);
    /* c's last write was the initial set: the sales were other sessions' */
    ck_assert_int_eq(get_value_fresh(ctr), 0);
    tu_raw *rw = raw_open();
    ck_assert_int_eq(raw_int64(rw, sh->path), 0);
    tu_raw_close(rw);

    /* Combined in one batch: 8 concurrent -3 reservations from stock 10 in one
     * client: exactly three succeed. */
    ck_assert_int_eq(zkc_counter_set(ctr, 10), 0);
    box b[8];
    zkc_update u = {0};
    u.bounds.has_floor = 1;
    u.bounds.floor = 0;
    for (int i = 0; i < 8; i++) {
        box_init(&b[i]);
        ck_assert_int_eq(zkc_counter_add_async(ctr, -3, &u, box_cb, &b[i]), 0);
    }
    int good = 0;
    for (int i = 0; i < 8; i++) {
        box_wait(&b[i]);
        ck_assert_msg(b[i].status == 0 || b[i].status == ZKC_EBOUND, "%s", zkc_strerror(b[i].status));
        if (b[i].status == 0) {
            good++;
            ck_assert_int_eq(b[i].r.before - b[i].r.after, 3);
        }
    }
    ck_assert_int_eq(good, 3);
    ck_assert_int_eq(get_value(ctr), 1);

    zkc_counter_destroy(ctr);
    zkc_client_destroy(c);
    shared_free(sh, sizeof *sh);
}

START_TEST(t_bounded_stock)
{
    bounded_stock(0);
}
END_TEST

/* The same through the queued mode: bounds decided in queue order across the
 * batches of three processes, never below zero, every unit sold once. */
START_TEST(t_queued_bounded_stock)
{
    bounded_stock(1);
}
END_TEST

/* ================================================================ queued mode */

/* lib/counter_queue.c (linked in): where a counter's queue lives, and how
 * long a waiter waits for the head before applying itself. */
char *zkc__cq_dir(zkc_client *c, const char *path);
extern int zkc__cq_patience_ms;

/* Queued batches left in the counter's queue directory (-1: no such
 * directory); *results gets the outcome records left there. */
static int queue_left(zkc_client *c, const char *path, int *results)
{
    char *dir = zkc__cq_dir(c, path);
    ck_assert_ptr_nonnull(dir);
    tu_raw *rw = raw_open();
    tu_raw_sync(rw, dir);
    struct String_vector v = {0, NULL};
    int rc = zoo_get_children(tu_raw_zh(rw), dir, 0, &v);
    int n = rc == ZOK ? 0 : -1;
    *results = 0;
    for (int i = 0; rc == ZOK && i < v.count; i++) {
        if (strncmp(v.data[i], "q-", 2) == 0)
            n++;
        else
            (*results)++;
    }
    if (rc == ZOK)
        deallocate_String_vector(&v);
    tu_raw_close(rw);
    free(dir);
    return n;
}

#define QX_PROCS 8
#define QX_ADDS 60

enum {
    QX_QUEUED = 0, /* every worker queued */
    QX_MIXED,      /* odd workers add with compare-and-set (queued off) */
    QX_AUTO,       /* every worker in AUTO */
    QX_THREE       /* AUTO, compare-and-set and queued workers in turn */
};

static int qx_mode(int mixed, int pi)
{
    switch (mixed) {
    case QX_MIXED:
        return pi % 2 ? ZKC_COUNTER_QUEUED_OFF : ZKC_COUNTER_QUEUED_ALWAYS;
    case QX_AUTO:
        return ZKC_COUNTER_QUEUED_AUTO;
    case QX_THREE:
        return pi % 3 == 0 ? ZKC_COUNTER_QUEUED_AUTO : pi % 3 == 1 ? ZKC_COUNTER_QUEUED_OFF : ZKC_COUNTER_QUEUED_ALWAYS;
    default:
        return ZKC_COUNTER_QUEUED_ALWAYS;
    }
}

typedef struct qx_shared {
    char path[256];
    int mixed; /* a QX_* below: each worker's zkc_counter_options.queued */
    addrec rec[QX_PROCS][QX_ADDS];
} qx_shared;

static qx_shared *g_qx;
static procs g_qx_procs;

/* One process, one client, one thread: blocking adds of 1..1000 (positive, so
 * the values they move through order them). */
static int qx_child(int pi, void *arg)
{
    (void)arg;
    qx_shared *sh = g_qx;
    zkc_client *c = child_client();
    if (!c)
        return 2;
    zkc_counter_options co;
    zkc_counter_options_init(&co);
    co.queued = qx_mode(sh->mixed, pi);
    zkc_counter *ctr;
    if (zkc_counter_create(c, sh->path, &co, &ctr) != 0)
        return 3;
    if (proc_ready_and_wait(&g_qx_procs) != 0)
        return 4;
    uint64_t seed = rng_seed(pi + 300, 0);
    for (int i = 0; i < QX_ADDS; i++) {
        addrec *r = &sh->rec[pi][i];
        zkc_counter_result res = {0, 0, 0};
        r->delta = 1 + (int64_t)(tu_rng_next(&seed) % 1000);
        r->rc = zkc_counter_add(ctr, r->delta, NULL, &res);
        r->before = res.before;
        r->after = res.after;
        r->done++;
        if (r->rc)
            fprintf(stderr, "qx worker %d add %d: %s\n", pi, i, zkc_errmsg());
    }
    zkc_counter_destroy(ctr);
    zkc_client_destroy(c);
    return 0;
}

static int cmp_addrec_before(const void *a, const void *b)
{
    const addrec *x = *(addrec *const *)a, *y = *(addrec *const *)b;
    return x->before < y->before ? -1 : x->before > y->before;
}

/* Eight processes, one session each, all adding to one counter in queued
 * mode: every add succeeds (none refused as contended), and the adds chain
 * exactly from the initial value to the final one: no add lost, none applied
 * twice, each with its own before/after. Mixed: half of them add with
 * compare-and-set meanwhile; both kinds are ordered by the counter's version
 * alone, so the chain must hold across them too. AUTO: every worker switches
 * by itself between the two paths (and eight sessions on one counter are
 * contention enough for some to go in: the queue directory exists after);
 * three-way: AUTO, direct and queued workers at once. */
static void queued_exact(int mixed)
{
    static const char *const names[] = {"qexact", "qmixed", "qauto", "qthree"};
    static const char *const what[] = {"", " (half compare-and-set)", " (auto)", " (auto, direct and queued)"};
    qx_shared *sh = shared_alloc(sizeof *sh);
    g_qx = sh;
    sh->mixed = mixed;
    unique_path(sh->path, sizeof sh->path, names[mixed]);
    long long t0 = tu_now_ms();
    procs_start(&g_qx_procs, QX_PROCS, "qx");
    procs_go(&g_qx_procs);
    procs_join(&g_qx_procs);
    long long ms = tu_now_ms() - t0;
    static addrec *all[QX_PROCS * QX_ADDS];
    int n = 0;
    int64_t sum = 0;
    for (int p = 0; p < QX_PROCS; p++)
        for (int i = 0; i < QX_ADDS; i++) {
            addrec *r = &sh->rec[p][i];
            ck_assert_msg(r->done == 1, "add %d/%d completed %d times", p, i, r->done);
            ck_assert_msg(r->rc == 0, "add %d/%d: %s", p, i, zkc_strerror(r->rc));
            ck_assert_int_eq(r->after - r->before, r->delta);
            sum += r->delta;
            all[n++] = r;
        }
    qsort(all, (size_t)n, sizeof all[0], cmp_addrec_before);
    int64_t expect = 0;
    for (int i = 0; i < n; i++) {
        ck_assert_msg(all[i]->before == expect, "add %d of the chain starts at %" PRId64 ", expected %" PRId64, i,
                      all[i]->before, expect);
        expect = all[i]->after;
    }
    zkc_client *c = client_new();
    zkc_counter *ctr = counter_new(c, sh->path, ZKC_FMT_INT64, 0);
    ck_assert_int_eq(get_value(ctr), sum);
    ck_assert_int_eq(expect, sum);
    /* Every batch applied; outcomes are removed by their readers after
     * reading (the last one of a session may go with its client's close). */
    int results = 0;
    ck_assert_int_eq(queue_left(c, sh->path, &results), 0);
    ck_assert_int_le(results, QX_PROCS);
    fprintf(stderr, "queued exactness%s: %d adds by %d sessions in %lld ms\n", what[mixed], n, QX_PROCS, ms);
    zkc_counter_destroy(ctr);
    zkc_client_destroy(c);
    shared_free(sh, sizeof *sh);
}

/* The outcome record of the batch tagged uuid in dir (rc ZNONODE: none). */
static int outcome_of(tu_raw *rw, const char *dir, const char *uuid, char *buf, int *len)
{
    struct String_vector v = {0, NULL};
    int rc = zoo_get_children(tu_raw_zh(rw), dir, 0, &v);
    ck_assert_int_eq(rc, ZOK);
    char path[512] = "";
    for (int i = 0; i < v.count; i++)
        if (strncmp(v.data[i], "r-", 2) == 0 && strstr(v.data[i], uuid))
            snprintf(path, sizeof path, "%s/%s", dir, v.data[i]);
    deallocate_String_vector(&v);
    if (!path[0])
        return ZNONODE;
    return raw_get(rw, path, buf, len, NULL);
}

/* A batch whose client is gone is applied by others, in queue order. A dead
 * client's batch (+5, written raw: its session ended right after enqueuing)
 * is at the head; client A enqueues +3 behind it and waits (patience raised
 * so it waits on its watch), then is destroyed: its caller hears
 * ZKC_EUNKNOWN (queued, outcome not known to it), promptly. Client B's +10
 * waits its patience (250 ms), applies all three in order: B sees 8 -> 18,
 * and the outcome records of the two gone batches say 0 -> 5 and 5 -> 8. */
START_TEST(t_queued_gone_enqueuers)
{
    char path[256];
    unique_path(path, sizeof path, "qgone");
    zkc_client *a = client_new();
    zkc_counter *ac = queued_counter_new(a, path, ZKC_COUNTER_QUEUED_ALWAYS);
    char *dir = zkc__cq_dir(a, path);
    tu_raw *rw = raw_open();
    tu_raw_mkdirs(rw, dir);
    const char *dead = "00000000-dead-4000-8000-000000000000";
    char qp[512], data[512];
    snprintf(qp, sizeof qp, "%s/q-%s-", dir, dead);
    int dl = snprintf(data, sizeof data, "zkcq1 %s\n1\n5 0 0 0\n", path);
    char made[512];
    ck_assert_int_eq(zoo_create(tu_raw_zh(rw), qp, data, dl, &ZOO_OPEN_ACL_UNSAFE, ZOO_SEQUENCE, made, sizeof made),
                     ZOK);
    zkc__cq_patience_ms = 600000;
    box ba;
    box_init(&ba);
    ck_assert_int_eq(zkc_counter_add_async(ac, 3, NULL, box_cb, &ba), 0);
    long long deadline = tu_now_ms() + WAIT_MS;
    int results = 0;
    while (queue_left(a, path, &results) < 2 && tu_now_ms() < deadline)
        tu_nap_ms(5);
    ck_assert_int_eq(queue_left(a, path, &results), 2);
    long long t0 = tu_now_ms();
    zkc_counter_destroy(ac);
    zkc_client_destroy(a);
    box_wait(&ba);
    ck_assert_msg(ba.status == ZKC_EUNKNOWN, "A's add: %s", zkc_strerror(ba.status));
    ck_assert_int_lt(tu_now_ms() - t0, 20000 * tu_scale()); /* not the 600 s patience */
    zkc__cq_patience_ms = 250;

    zkc_client *b = client_new();
    zkc_counter *bc = queued_counter_new(b, path, ZKC_COUNTER_QUEUED_ALWAYS);
    zkc_counter_result r = {0, 0, 0};
    ck_assert_int_eq(zkc_counter_add(bc, 10, NULL, &r), 0);
    ck_assert_msg(r.before == 8 && r.after == 18, "B's add: %" PRId64 " -> %" PRId64, r.before, r.after);
    ck_assert_int_eq(get_value(bc), 18);
    ck_assert_int_eq(queue_left(b, path, &results), 0);
    ck_assert_int_eq(results, 2);
    char buf[256];
    int len = sizeof buf - 1;
    /* B wrote the outcome records: rw's server may not have applied them yet */
    tu_raw_sync(rw, dir);
    ck_assert_int_eq(outcome_of(rw, dir, dead, buf, &len), ZOK);
    buf[len] = 0;
    ck_assert_str_eq(buf, "zkcr1 1\n0 0 5\n");
    struct String_vector v = {0, NULL};
    ck_assert_int_eq(zoo_get_children(tu_raw_zh(rw), dir, 0, &v), ZOK);
    int seen = 0;
    for (int i = 0; i < v.count; i++) {
        if (strncmp(v.data[i], "r-", 2) != 0 || strstr(v.data[i], dead))
            continue;
        char rp[512];
        snprintf(rp, sizeof rp, "%s/%s", dir, v.data[i]);
        len = sizeof buf - 1;
        ck_assert_int_eq(raw_get(rw, rp, buf, &len, NULL), ZOK);
        buf[len] = 0;
        ck_assert_str_eq(buf, "zkcr1 1\n0 5 8\n"); /* A's +3, applied after the dead batch */
        seen++;
    }
    deallocate_String_vector(&v);
    ck_assert_int_eq(seen, 1);
    zkc_counter_destroy(bc);
    zkc_client_destroy(b);
    tu_raw_close(rw);
    free(dir);
}
END_TEST

START_TEST(t_queued_exact)
{
    queued_exact(QX_QUEUED);
}
END_TEST

START_TEST(t_queued_mixed_exact)
{
    queued_exact(QX_MIXED);
}
END_TEST

START_TEST(t_auto_exact)
{
    queued_exact(QX_AUTO);
}
END_TEST

START_TEST(t_auto_mixed_exact)
{
    queued_exact(QX_THREE);
}
END_TEST

/* AUTO, one client alone on its counter: every add is one write (the cache,
 * as on the direct path), and the queue is never created. */
/* PIPELINE (lib/counter_queue.c): a queued add alone in its queue costs
 * one round trip before its apply. After its first add the client sends the
 * enqueue, the counter read and the listing together, never reads its own
 * batch back and sets no watch: 2 multis, 1 read, 1 listing, nothing else
 * (without the pipeline: 2 reads, and a round trip more). */
START_TEST(t_queued_lone_requests)
{
    char path[256];
    unique_path(path, sizeof path, "qlone");
    zkc_client *c = client_new();
    zkc_counter *ctr = queued_counter_new(c, path, ZKC_COUNTER_QUEUED_ALWAYS);
    zkc_counter_result r = {0, 0, 0};
    ck_assert_int_eq(zkc_counter_add(ctr, 1, NULL, &r), 0); /* makes the queue */
    ck_assert_int_eq(zkc_counter_add(ctr, 1, NULL, &r), 0); /* found itself alone */
    for (int i = 0; i < 10; i++) {
        zkc_stats s0, s1;
        zkc_client_stats(c, &s0);
        ck_assert_int_eq(zkc_counter_add(ctr, 1, NULL, &r), 0);
        zkc_client_stats(c, &s1);
        ck_assert_int_eq(r.before, 2 + i);
        ck_assert_int_eq(r.after, 3 + i);
        ck_assert_uint_eq(s1.requests[ZKC_REQ_MULTI] - s0.requests[ZKC_REQ_MULTI], 2);
        ck_assert_uint_eq(s1.requests[ZKC_REQ_GET] - s0.requests[ZKC_REQ_GET], 1);
        ck_assert_uint_eq(s1.requests[ZKC_REQ_CHILDREN] - s0.requests[ZKC_REQ_CHILDREN], 1);
        ck_assert_uint_eq(s1.requests_total - s0.requests_total, 4);
    }
    ck_assert_int_eq(get_value(ctr), 12);
    zkc_counter_destroy(ctr);
    zkc_client_destroy(c);
}
END_TEST

/* libzookeeper refuses zoo_add_auth (ZINVALIDSTATE) while a failed connection
 * attempt has left its state 0. A session opened in that moment took no
 * credentials, and every create under a creator ACL failed: in an hour-long
 * soak one worker's queued adds came back 884 times "ZooKeeper error"
 * (ZINVALIDACL) and thousands of its lock acquires likewise, until its next
 * session. The race is microseconds wide, so the refusal is simulated; both a
 * first session and a re-created one must still write with credentials. */
START_TEST(t_credentials_given_again)
{
    char path[256];
    unique_path(path, sizeof path, "qauth");
    zkc_client_options o;
    zkc_client_options_init(&o);
    o.hosts = client_hosts();
    o.session_timeout_ms = 10000;
    o.connect_timeout_ms = CONNECT_MS;
    o.auth_scheme = "digest";
    o.auth_credential = "dora:pw";
    o.acl = ZKC_ACL_CREATOR;
    zkc__refuse_auth_for_test = 1;
    zkc_client *c = NULL;
    int rc = zkc_client_create(&c, &o);
    ck_assert_msg(rc == 0, "zkc_client_create: %s: %s", zkc_strerror(rc), zkc_errmsg());
    ck_assert_int_eq(zkc__refuse_auth_for_test, 0); /* the session's open met the refusal */
    tu_events cev;
    tu_events_init(&cev);
    zkc_client_set_listener(c, tu_state_listener, &cev);
    zkc_counter *ctr = queued_counter_new(c, path, ZKC_COUNTER_QUEUED_ALWAYS);
    zkc_counter_result r = {0, 0, 0};
    rc = zkc_counter_add(ctr, 1, NULL, &r);
    ck_assert_msg(rc == 0, "first session: %s: %s", zkc_strerror(rc), zkc_errmsg());
    /* The next session meets it too. */
    int64_t sid;
    char pw[16];
    int pwlen;
    ck_assert_int_eq(zkc_client_session(c, &sid, pw, &pwlen), 0);
    zkc__refuse_auth_for_test = 1;
    ck_assert_int_eq(zkh_expire_session(zkh_ensemble_hosts(zkh_shared()), sid, pw, pwlen, CONNECT_MS), 0);
    int lost = tu_expect_event(&cev, ZKC_STATE_LOST, 0, CONNECT_MS, "LOST after expiry", tu_now_ms());
    tu_expect_event(&cev, ZKC_STATE_CONNECTED, lost + 1, CONNECT_MS, "a new session", tu_now_ms());
    ck_assert_int_eq(zkc__refuse_auth_for_test, 0);
    ck_assert(tu_session_id(c) != sid);
    rc = zkc_counter_add(ctr, 1, NULL, &r);
    ck_assert_msg(rc == 0, "new session: %s: %s", zkc_strerror(rc), zkc_errmsg());
    ck_assert_int_eq(r.after, 2);
    /* A path the new session creates carries the creator ACL too. */
    char path2[300];
    snprintf(path2, sizeof path2, "%s-2", path);
    zkc_counter *ctr2 = queued_counter_new(c, path2, ZKC_COUNTER_QUEUED_ALWAYS);
    rc = zkc_counter_add(ctr2, 5, NULL, &r);
    ck_assert_msg(rc == 0, "new path: %s: %s", zkc_strerror(rc), zkc_errmsg());
    zkc_counter_destroy(ctr2);
    zkc_counter_destroy(ctr);
    zkc_client_destroy(c);
    tu_events_destroy(&cev);
}
END_TEST

START_TEST(t_auto_uncontended)
{
    char path[256];
    unique_path(path, sizeof path, "qalone");
    zkc_client *c = client_new();
    zkc_counter_options co;
    zkc_counter_options_init(&co);
    co.queued = ZKC_COUNTER_QUEUED_AUTO;
    zkc_counter *ctr = NULL;
    ck_assert_int_eq(zkc_counter_create(c, path, &co, &ctr), 0);
    zkc_counter_result r = {0, 0, 0};
    ck_assert_int_eq(zkc_counter_add(ctr, 1, NULL, &r), 0); /* creates the node */
    zkc_stats s0, s1;
    zkc_client_stats(c, &s0);
    for (int i = 0; i < 40; i++) {
        ck_assert_int_eq(zkc_counter_add(ctr, 1, NULL, &r), 0);
        ck_assert_int_eq(r.before, 1 + i);
        ck_assert_int_eq(r.after, 2 + i);
    }
    zkc_client_stats(c, &s1);
    ck_assert_uint_eq(s1.requests[ZKC_REQ_MULTI] - s0.requests[ZKC_REQ_MULTI], 40);
    ck_assert_uint_eq(s1.requests_total - s0.requests_total, 40);
    ck_assert_uint_eq(s1.conflicts - s0.conflicts, 0);
    int results = 0;
    ck_assert_int_eq(queue_left(c, path, &results), -1);
    /* Out-of-range modes are refused. */
    zkc_counter *bad = NULL;
    co.queued = 3;
    ck_assert_int_eq(zkc_counter_create(c, path, &co, &bad), ZKC_EINVAL);
    co.queued = -1;
    ck_assert_int_eq(zkc_counter_create(c, path, &co, &bad), ZKC_EINVAL);
    ck_assert_ptr_null(bad);
    zkc_counter_destroy(ctr);
    zkc_client_destroy(c);
}
END_TEST

/* AUTO switches in by contention and out by its absence, deterministically:
 * client A (AUTO) and client B (direct) take turns, so every add of A finds
 * its cached version stale and loses one round; the 4th such loss (AUTO_ENTER
 * in lib/counter_queue.c) sends A's next adds through the queue (the queue
 * directory appears; an add then costs more than one request). Alone in the
 * queue for 8 batches in a row (AUTO_LEAVE), A goes direct again: its adds
 * are one write each once more. The values chain throughout. */
START_TEST(t_auto_switches)
{
    char path[256];
    unique_path(path, sizeof path, "qswitch");
    zkc_client *a = client_new(), *b = client_new();
    zkc_counter *ac = queued_counter_new(a, path, ZKC_COUNTER_QUEUED_AUTO);
    zkc_counter *bc = counter_new(b, path, ZKC_FMT_INT64, 0);
    zkc_counter_result r = {0, 0, 0};
    int64_t expect = 0;
    ck_assert_int_eq(zkc_counter_add(ac, 1, NULL, &r), 0);
    expect += 1;
    int results = 0;
    zkc_stats s0, s1;
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(zkc_counter_add(bc, 10, NULL, &r), 0);
        ck_assert_int_eq(r.before, expect);
        expect += 10;
        ck_assert_int_eq(queue_left(a, path, &results), -1); /* still direct */
        zkc_client_stats(a, &s0);
        ck_assert_int_eq(zkc_counter_add(ac, 1, NULL, &r), 0);
        zkc_client_stats(a, &s1);
        ck_assert_uint_eq(s1.conflicts - s0.conflicts, 1);
        ck_assert_int_eq(r.before, expect);
        expect += 1;
    }
    /* In: the next plain adds go through the queue. */
    for (int i = 0; i < 8; i++) {
        zkc_client_stats(a, &s0);
        ck_assert_int_eq(zkc_counter_add(ac, 1, NULL, &r), 0);
        zkc_client_stats(a, &s1);
        ck_assert_int_eq(r.before, expect);
        expect += 1;
        ck_assert_uint_gt(s1.requests_total - s0.requests_total, 1);
        ck_assert_int_eq(queue_left(a, path, &results), 0);
    }
    /* Out: one add more (the switch happens as the 8th lone batch ends),
     * then each add is one write again, and no outcome record is left. */
    ck_assert_int_eq(zkc_counter_add(ac, 1, NULL, &r), 0);
    expect += 1;
    zkc_client_stats(a, &s0);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(zkc_counter_add(ac, 1, NULL, &r), 0);
        ck_assert_int_eq(r.before, expect);
        expect += 1;
    }
    zkc_client_stats(a, &s1);
    ck_assert_uint_eq(s1.requests_total - s0.requests_total, 10);
    ck_assert_int_eq(queue_left(a, path, &results), 0);
    ck_assert_int_eq(results, 0);
    ck_assert_int_eq(get_value(bc), expect);
    zkc_counter_destroy(ac);
    zkc_counter_destroy(bc);
    zkc_client_destroy(a);
    zkc_client_destroy(b);
}
END_TEST

/* ================================================================ idempotency */

typedef struct id_shared {
    char path[256];
    char key[128];
    int rc[2];
    zkc_counter_result r[2];
} id_shared;

static id_shared *g_id;
static procs g_id_procs;

static int id_child(int i, void *arg)
{
    (void)arg;
    id_shared *sh = g_id;
    zkc_client *c = child_client();
    if (!c)
        return 2;
    zkc_counter *ctr;
    if (zkc_counter_create(c, sh->path, NULL, &ctr) != 0)
        return 3;
    if (proc_ready_and_wait(&g_id_procs) != 0)
        return 4;
    zkc_update u = {0};
    u.key = sh->key;
    sh->rc[i] = zkc_counter_add(ctr, 5, &u, &sh->r[i]);
    zkc_counter_destroy(ctr);
    zkc_client_destroy(c);
    return 0;
}

START_TEST(t_idempotency_processes_restart)
{
    id_shared *sh = shared_alloc(sizeof *sh);
    g_id = sh;
    unique_path(sh->path, sizeof sh->path, "idem");
    snprintf(sh->key, sizeof sh->key, "order-%s-%d-%lld", g_tag, (int)getpid(), tu_now_ms());
    zkc_client *c = client_new();
    zkc_counter *ctr = counter_new(c, sh->path, ZKC_FMT_INT64, 0);
    ck_assert_int_eq(zkc_counter_set(ctr, 100), 0);
    zkc_counter_destroy(ctr);
    ck_assert_int_eq(zkc_client_destroy(c), 0);

    /* two processes, the same key, at the same moment */
    procs_start(&g_id_procs, 2, "id");
    procs_go(&g_id_procs);
    procs_join(&g_id_procs);
    ck_assert_msg(sh->rc[0] == 0 && sh->rc[1] == 0, "%s / %s", zkc_strerror(sh->rc[0]), zkc_strerror(sh->rc[1]));
    ck_assert_int_eq(sh->r[0].before, sh->r[1].before);
    ck_assert_int_eq(sh->r[0].after, sh->r[1].after);
    ck_assert_int_eq(sh->r[0].after - sh->r[0].before, 5);
    ck_assert_int_eq(sh->r[0].replayed + sh->r[1].replayed, 1);
    zkc_counter_result first = sh->r[0].replayed ? sh->r[1] : sh->r[0];
    ck_assert_int_eq(first.before, 100);

    /* a restarted worker (a new client) retries the same key: replayed */
    for (int round = 0; round < 2; round++) {
        c = client_new();
        ctr = counter_new(c, sh->path, ZKC_FMT_INT64, 0);
        zkc_update u = {0};
        u.key = sh->key;
        zkc_counter_result r;
        ck_assert_int_eq(zkc_counter_add(ctr, round ? 7 : 5, &u, &r), 0);
        ck_assert_int_eq(r.replayed, 1);
        ck_assert_int_eq(r.before, first.before);
        ck_assert_int_eq(r.after, first.after);
        box b;
        box_init(&b);
        ck_assert_int_eq(zkc_counter_add_async(ctr, 5, &u, box_cb, &b), 0);
        box_wait(&b);
        ck_assert_int_eq(b.status, 0);
        ck_assert_int_eq(b.r.replayed, 1);
        ck_assert_int_eq(b.r.after, first.after);
        ck_assert_int_eq(get_value(ctr), 105);
        memset(&r, 0, sizeof r);
        ck_assert_int_eq(zkc_counter_lookup(c, sh->key, &r), 0);
        ck_assert_int_eq(r.before, first.before);
        ck_assert_int_eq(r.after, first.after);
        ck_assert_int_eq(r.replayed, 1);
        zkc_counter_destroy(ctr);
        ck_assert_int_eq(zkc_client_destroy(c), 0);
    }
    tu_raw *rw = raw_open();
    ck_assert_int_eq(raw_int64(rw, sh->path), 105);
    tu_raw_close(rw);

    c = client_new();
    zkc_counter_result r;
    char unknown[160];
    snprintf(unknown, sizeof unknown, "%s-never", sh->key);
    ck_assert_int_eq(zkc_counter_lookup(c, unknown, &r), ZKC_ENONODE);
    ck_assert_int_eq(zkc_counter_lookup(c, "a/b", &r), ZKC_EINVAL);
    ck_assert_int_eq(zkc_counter_lookup(c, "", &r), ZKC_EINVAL);
    ck_assert_int_eq(zkc_counter_lookup(NULL, sh->key, &r), ZKC_EINVAL);

    /* a refused keyed update applied nothing: the key is not taken */
    ctr = counter_new(c, sh->path, ZKC_FMT_INT64, 0);
    zkc_update u = {0};
    char k2[160];
    snprintf(k2, sizeof k2, "%s-refused", sh->key);
    u.key = k2;
    u.bounds.has_floor = 1;
    u.bounds.floor = 0;
    ck_assert_int_eq(zkc_counter_add(ctr, -106, &u, &r), ZKC_EBOUND);
    ck_assert_int_eq(zkc_counter_lookup(c, k2, &r), ZKC_ENONODE);
    ck_assert_int_eq(zkc_counter_add(ctr, -105, &u, &r), 0);
    ck_assert_int_eq(r.replayed, 0);
    ck_assert_int_eq(r.after, 0);
    ck_assert_int_eq(get_value(ctr), 0);
    zkc_counter_destroy(ctr);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
    shared_free(sh, sizeof *sh);
}
END_TEST

/* A restarted worker retries its reservation with the same key after the
 * stock has run out (partly because of that very reservation): it must get
 * its first outcome back, not "out of stock". Likewise for a keyed add whose
 * repeat would now overflow. */
START_TEST(t_idempotency_replay_beats_refusal)
{
    zkc_client *c = client_new();
    char path[256], key[160];
    unique_path(path, sizeof path, "idemb");
    zkc_counter *ctr = counter_new(c, path, ZKC_FMT_INT32, 0);
    ck_assert_int_eq(zkc_counter_set(ctr, 5), 0);
    zkc_update u = {0};
    snprintf(key, sizeof key, "resv-%s-%d-%lld", g_tag, (int)getpid(), tu_now_ms());
    u.key = key;
    u.bounds.has_floor = 1;
    u.bounds.floor = 0;
    zkc_counter_result r;
    ck_assert_int_eq(zkc_counter_add(ctr, -4, &u, &r), 0);
    ck_assert_int_eq(r.replayed, 0);
    ck_assert_int_eq(r.before, 5);
    ck_assert_int_eq(r.after, 1);
    zkc_counter_destroy(ctr);
    ck_assert_int_eq(zkc_client_destroy(c), 0);

    /* the restart */
    c = client_new();
    ctr = counter_new(c, path, ZKC_FMT_INT32, 0);
    memset(&r, 0, sizeof r);
    int rc = zkc_counter_add(ctr, -4, &u, &r);
    ck_assert_msg(rc == 0, "keyed retry of a reservation that succeeded: %s (%s)", zkc_strerror(rc), zkc_errmsg());
    ck_assert_int_eq(r.replayed, 1);
    ck_assert_int_eq(r.before, 5);
    ck_assert_int_eq(r.after, 1);
    ck_assert_int_eq(get_value(ctr), 1);

    /* the same for overflow of the 32-bit format */
    char k2[200];
    snprintf(k2, sizeof k2, "%s-big", key);
    zkc_update big = {0};
    big.key = k2;
    ck_assert_int_eq(zkc_counter_add(ctr, INT32_MAX - 1, &big, &r), 0);
    ck_assert_int_eq(r.after, INT32_MAX);
    memset(&r, 0, sizeof r);
    rc = zkc_counter_add(ctr, INT32_MAX - 1, &big, &r);
    ck_assert_msg(rc == 0, "keyed retry of an add that succeeded: %s (%s)", zkc_strerror(rc), zkc_errmsg());
    ck_assert_int_eq(r.replayed, 1);
    ck_assert_int_eq(r.after, INT32_MAX);
    zkc_counter_destroy(ctr);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

/* A key applied earlier (by another client) arrives in a combined batch
 * between unkeyed adds: it replays, the others apply exactly once. */
START_TEST(t_idempotency_replay_in_batch)
{
    zkc_client *c0 = client_new();
    char path[256], key[160];
    unique_path(path, sizeof path, "idemmix");
    snprintf(key, sizeof key, "mix-%s-%d-%lld", g_tag, (int)getpid(), tu_now_ms());
    zkc_counter *c0ctr = counter_new(c0, path, ZKC_FMT_INT64, 0);
    zkc_update u = {0};
    u.key = key;
    zkc_counter_result first;
    ck_assert_int_eq(zkc_counter_add(c0ctr, 10, &u, &first), 0);
    ck_assert_int_eq(first.after, 10);
    zkc_counter_destroy(c0ctr);
    ck_assert_int_eq(zkc_client_destroy(c0), 0);

    zkc_client *c = client_new();
    zkc_counter *ctr = counter_new(c, path, ZKC_FMT_INT64, 0);
    ck_assert_int_eq(get_value(ctr), 10);
    box b[4];
    for (int i = 0; i < 4; i++)
        box_init(&b[i]);
    ck_assert_int_eq(zkc_counter_add_async(ctr, 1, NULL, box_cb, &b[0]), 0); /* in flight */
    ck_assert_int_eq(zkc_counter_add_async(ctr, 2, NULL, box_cb, &b[1]), 0); /* these three queue */
    ck_assert_int_eq(zkc_counter_add_async(ctr, 10, &u, box_cb, &b[2]), 0);
    ck_assert_int_eq(zkc_counter_add_async(ctr, 4, NULL, box_cb, &b[3]), 0);
    for (int i = 0; i < 4; i++) {
        box_wait(&b[i]);
        ck_assert_msg(b[i].status == 0, "add %d: %s", i, zkc_strerror(b[i].status));
    }
    ck_assert_int_eq(b[2].r.replayed, 1);
    ck_assert_int_eq(b[2].r.before, first.before);
    ck_assert_int_eq(b[2].r.after, first.after);
    for (int i = 0; i < 4; i++)
        if (i != 2) {
            ck_assert_int_eq(b[i].r.replayed, 0);
            ck_assert_int_eq(b[i].r.after - b[i].r.before, i == 0 ? 1 : i == 1 ? 2 : 4);
        }
    ck_assert_int_eq(get_value(ctr), 17);
    zkc_counter_destroy(ctr);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

/* The same key twice from one client while a transaction is in flight: both
 * queue behind it and would go out in one combined transaction. */
START_TEST(t_idempotency_same_client_same_batch)
{
    zkc_client *c = client_new();
    char path[256], key[160];
    unique_path(path, sizeof path, "idem1");
    snprintf(key, sizeof key, "dup-%s-%d-%lld", g_tag, (int)getpid(), tu_now_ms());
    zkc_counter *ctr = counter_new(c, path, ZKC_FMT_INT64, 0);
    ck_assert_int_eq(zkc_counter_set(ctr, 0), 0);
    for (int round = 0; round < 3; round++) {
        char k[200];
        snprintf(k, sizeof k, "%s-%d", key, round);
        zkc_update u = {0};
        u.key = k;
        box lead, b1, b2;
        box_init(&lead);
        box_init(&b1);
        box_init(&b2);
        int64_t v0 = get_value(ctr);
        ck_assert_int_eq(zkc_counter_add_async(ctr, 1, NULL, box_cb, &lead), 0);
        ck_assert_int_eq(zkc_counter_add_async(ctr, 10, &u, box_cb, &b1), 0);
        ck_assert_int_eq(zkc_counter_add_async(ctr, 10, &u, box_cb, &b2), 0);
        box_wait(&lead);
        box_wait(&b1);
        box_wait(&b2);
        ck_assert_int_eq(lead.status, 0);
        ck_assert_msg(b1.status == 0 && b2.status == 0, "%s / %s", zkc_strerror(b1.status), zkc_strerror(b2.status));
        int64_t v1 = get_value(ctr);
        ck_assert_msg(v1 == v0 + 11, "round %d: key %s applied %s: value went %" PRId64 " -> %" PRId64, round, k,
                      v1 - v0 == 21 ? "twice" : "a wrong number of times", v0, v1);
        ck_assert_int_eq(b1.r.before, b2.r.before);
        ck_assert_int_eq(b1.r.after, b2.r.after);
        ck_assert_int_eq(b1.r.replayed + b2.r.replayed, 1);
    }
    zkc_counter_destroy(ctr);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

/* ================================================================ multi-SKU */

#define MS_SKUS 4
#define MS_PROCS 2
#define MS_THREADS 3
#define MS_ORDERS 60

typedef struct ms_order {
    int n;
    int sku[3];
    int64_t q[3];
    int rc;
    int failed_index;
    zkc_counter_result res[3];
} ms_order;

typedef struct ms_shared {
    char path[MS_SKUS][256];
    int64_t initial[MS_SKUS];
    ms_order ord[MS_PROCS + 1][MS_THREADS][MS_ORDERS];
} ms_shared;

typedef struct ms_thread {
    zkc_client *c;
    zkc_counter **ctr;
    ms_order *ord;
    uint64_t seed;
    int single; /* one-line reservations through zkc_counter_add */
} ms_thread;

static void *ms_run(void *arg)
{
    ms_thread *t = arg;
    for (int i = 0; i < MS_ORDERS; i++) {
        ms_order *o = &t->ord[i];
        /* 2 or 3 distinct SKUs, 1..3 units each (or one line, single add) */
        o->n = t->single ? 1 : 2 + (int)(tu_rng_next(&t->seed) % 2);
        int used = 0;
        for (int k = 0; k < o->n; k++) {
            int s;
            do
                s = (int)(tu_rng_next(&t->seed) % MS_SKUS);
            while (used & (1 << s));
            used |= 1 << s;
            o->sku[k] = s;
            o->q[k] = 1 + (int64_t)(tu_rng_next(&t->seed) % 3);
        }
        zkc_counter_op ops[3];
        for (int k = 0; k < o->n; k++) {
            memset(&ops[k], 0, sizeof ops[k]);
            ops[k].counter = t->ctr[o->sku[k]];
            ops[k].delta = -o->q[k];
            ops[k].bounds.has_floor = 1;
            ops[k].bounds.floor = 0;
        }
        o->failed_index = -7;
        if (t->single) {
            zkc_update u = {0};
            u.bounds.has_floor = 1;
            u.bounds.floor = 0;
            o->rc = zkc_counter_add(ops[0].counter, ops[0].delta, &u, &o->res[0]);
            o->failed_index = 0;
        } else {
            o->rc = zkc_counter_multi_add(t->c, ops, o->n, NULL, o->res, &o->failed_index);
        }
    }
    return NULL;
}

static int ms_process(ms_shared *sh, int pi, procs *p)
{
    zkc_client *c = child_client();
    if (!c)
        return 2;
    zkc_counter *ctr[MS_SKUS];
    for (int s = 0; s < MS_SKUS; s++)
        if (zkc_counter_create(c, sh->path[s], NULL, &ctr[s]) != 0)
            return 3;
    if (p && proc_ready_and_wait(p) != 0)
        return 4;
    ms_thread t[MS_THREADS];
    pthread_t th[MS_THREADS];
    for (int i = 0; i < MS_THREADS; i++) {
        t[i].c = c;
        t[i].ctr = ctr;
        t[i].ord = sh->ord[pi][i];
        t[i].seed = rng_seed(pi + 200, i);
        t[i].single = i == MS_THREADS - 1;
        pthread_create(&th[i], NULL, ms_run, &t[i]);
    }
    for (int i = 0; i < MS_THREADS; i++)
        pthread_join(th[i], NULL);
    for (int s = 0; s < MS_SKUS; s++)
        zkc_counter_destroy(ctr[s]);
    zkc_client_destroy(c);
    return 0;
}

static ms_shared *g_ms;
static procs g_ms_procs;

static int ms_child(int i, void *arg)
{
    (void)arg;
    return ms_process(g_ms, i, &g_ms_procs);
}

typedef struct ms_step {
    int64_t before, after;
} ms_step;

static int cmp_step_desc(const void *a, const void *b)
{
    const ms_step *x = a, *y = b;
    return x->before < y->before ? 1 : x->before > y->before ? -1 : 0;
}

START_TEST(t_multi_sku)
{
    ms_shared *sh = shared_alloc(sizeof *sh);
    g_ms = sh;
    static const int64_t init[MS_SKUS] = {200, 150, 260, 170};
    for (int s = 0; s < MS_SKUS; s++) {
        char what[16];
        snprintf(what, sizeof what, "sku%d", s);
        unique_path(sh->path[s], sizeof sh->path[s], what);
        sh->initial[s] = init[s];
    }
    procs_start(&g_ms_procs, MS_PROCS, "ms");
    zkc_client *c = client_new();
    zkc_counter *ctr[MS_SKUS];
    for (int s = 0; s < MS_SKUS; s++) {
        ctr[s] = counter_new(c, sh->path[s], ZKC_FMT_INT64, 0);
        ck_assert_int_eq(zkc_counter_set(ctr[s], init[s]), 0);
    }
    procs_go(&g_ms_procs);
    ck_assert_int_eq(ms_process(sh, MS_PROCS, NULL), 0);
    procs_join(&g_ms_procs);

    int64_t sold[MS_SKUS] = {0};
    static ms_step steps[MS_SKUS][(MS_PROCS + 1) * MS_THREADS * MS_ORDERS];
    int nsteps[MS_SKUS] = {0};
    int good = 0, refused = 0;
    for (int p = 0; p <= MS_PROCS; p++)
        for (int t = 0; t < MS_THREADS; t++)
            for (int i = 0; i < MS_ORDERS; i++) {
                ms_order *o = &sh->ord[p][t][i];
                if (o->rc == ZKC_EBOUND) {
                    refused++;
                    ck_assert_msg(o->failed_index >= 0 && o->failed_index < o->n, "failed_index %d of %d ops",
                                  o->failed_index, o->n);
                    continue;
                }
                ck_assert_msg(o->rc == 0, "order %d/%d/%d: %s", p, t, i, zkc_strerror(o->rc));
                good++;
                for (int k = 0; k < o->n; k++) {
                    /* every line of a successful order moved its counter */
                    ck_assert_int_eq(o->res[k].before - o->res[k].after, o->q[k]);
                    ck_assert_int_ge(o->res[k].after, 0);
                    ck_assert_int_eq(o->res[k].replayed, 0);
                    int s = o->sku[k];
                    sold[s] += o->q[k];
                    steps[s][nsteps[s]].before = o->res[k].before;
                    steps[s][nsteps[s]].after = o->res[k].after;
                    nsteps[s]++;
                }
            }
    fprintf(stderr, "multi-sku: %d orders placed, %d refused\n", good, refused);
    ck_assert_int_gt(good, 0);
    ck_assert_int_gt(refused, 0); /* demand exceeds the stock */
    tu_raw *rw = raw_open();
    for (int s = 0; s < MS_SKUS; s++) {
        int64_t left = raw_int64(rw, sh->path[s]);
        ck_assert_int_ge(left, 0);
        ck_assert_msg(sold[s] + left == init[s], "sku %d: sold %" PRId64 " + left %" PRId64 " != %" PRId64, s,
                      sold[s], left, init[s]);
        /* the successful lines of each SKU chain from its initial stock to what is left */
        qsort(steps[s], (size_t)nsteps[s], sizeof steps[s][0], cmp_step_desc);
        int64_t expect = init[s];
        for (int i = 0; i < nsteps[s]; i++) {
            ck_assert_msg(steps[s][i].before == expect, "sku %d: a line starts at %" PRId64 ", expected %" PRId64, s,
                          steps[s][i].before, expect);
            expect = steps[s][i].after;
        }
        ck_assert_int_eq(expect, left);
    }

    /* Deterministic checks on fresh counters: the refusal names the op, and
     * nothing is written. */
    zkc_counter *a = ctr[0], *b = ctr[1];
    ck_assert_int_eq(zkc_counter_set(a, 1), 0);
    ck_assert_int_eq(zkc_counter_set(b, 10), 0);
    int32_t va = raw_version(rw, sh->path[0]), vb = raw_version(rw, sh->path[1]);
    zkc_counter_op ops[2] = {{b, -1, {.has_floor = 1, .floor = 0}, NULL}, {a, -2, {.has_floor = 1, .floor = 0}, NULL}};
    zkc_counter_result res[2];
    int fi = -7;
    ck_assert_int_eq(zkc_counter_multi_add(c, ops, 2, NULL, res, &fi), ZKC_EBOUND);
    ck_assert_int_eq(fi, 1);
    ck_assert_int_eq(raw_version(rw, sh->path[0]), va);
    ck_assert_int_eq(raw_version(rw, sh->path[1]), vb);
    ck_assert_int_eq(raw_int64(rw, sh->path[1]), 10);
    /* ceiling on the first op */
    zkc_counter_op up[2] = {{b, 5, {.has_ceiling = 1, .ceiling = 12}, NULL}, {a, 1, {0}, NULL}};
    fi = -7;
    ck_assert_int_eq(zkc_counter_multi_add(c, up, 2, NULL, res, &fi), ZKC_EBOUND);
    ck_assert_int_eq(fi, 0);
    ck_assert_int_eq(raw_version(rw, sh->path[1]), vb);
    /* success: both written, results per line */
    fi = -7;
    ops[1].delta = -1;
    ck_assert_int_eq(zkc_counter_multi_add(c, ops, 2, NULL, res, &fi), 0);
    ck_assert_int_eq(fi, -1);
    ck_assert_int_eq(res[0].before, 10);
    ck_assert_int_eq(res[0].after, 9);
    ck_assert_int_eq(res[1].before, 1);
    ck_assert_int_eq(res[1].after, 0);
    ck_assert_int_eq(raw_int64(rw, sh->path[0]), 0);
    ck_assert_int_eq(raw_int64(rw, sh->path[1]), 9);
    /* two lines on one counter add up */
    zkc_counter_op twice[2] = {{b, -2, {.has_floor = 1, .floor = 0}, NULL}, {b, -3, {.has_floor = 1, .floor = 0}, NULL}};
    ck_assert_int_eq(zkc_counter_multi_add(c, twice, 2, NULL, res, NULL), 0);
    ck_assert_int_eq(res[0].before, 9);
    ck_assert_int_eq(res[0].after, 7);
    ck_assert_int_eq(res[1].before, 7);
    ck_assert_int_eq(res[1].after, 4);
    ck_assert_int_eq(raw_int64(rw, sh->path[1]), 4);
    twice[1].delta = -3;
    twice[0].delta = -2; /* 4 - 2 - 3 < 0: the second line refuses */
    fi = -7;
    ck_assert_int_eq(zkc_counter_multi_add(c, twice, 2, NULL, res, &fi), ZKC_EBOUND);
    ck_assert_int_eq(fi, 1);
    ck_assert_int_eq(raw_int64(rw, sh->path[1]), 4);
    /* keyed multi: applied once, replayed after */
    char key[160];
    snprintf(key, sizeof key, "multi-%s-%d-%lld", g_tag, (int)getpid(), tu_now_ms());
    zkc_counter_op one[2] = {{b, -1, {.has_floor = 1, .floor = 0}, NULL}, {a, 2, {0}, NULL}};
    ck_assert_int_eq(zkc_counter_multi_add(c, one, 2, key, res, NULL), 0);
    ck_assert_int_eq(res[0].replayed, 0);
    ck_assert_int_eq(res[0].after, 3);
    ck_assert_int_eq(res[1].after, 2);
    memset(res, 0, sizeof res);
    ck_assert_int_eq(zkc_counter_multi_add(c, one, 2, key, res, NULL), 0);
    ck_assert_int_eq(res[0].replayed, 1);
    ck_assert_int_eq(res[0].before, 4);
    ck_assert_int_eq(res[0].after, 3);
    ck_assert_int_eq(res[1].before, 0);
    ck_assert_int_eq(res[1].after, 2);
    ck_assert_int_eq(raw_int64(rw, sh->path[1]), 3);
    ck_assert_int_eq(raw_int64(rw, sh->path[0]), 2);
    /* argument checks */
    ck_assert_int_eq(zkc_counter_multi_add(c, one, 0, NULL, res, NULL), ZKC_EINVAL);
    ck_assert_int_eq(zkc_counter_multi_add(c, NULL, 1, NULL, res, NULL), ZKC_EINVAL);
    ck_assert_int_eq(zkc_counter_multi_add(c, one, 2, "bad/key", res, NULL), ZKC_EINVAL);
    zkc_client *c2 = client_new();
    ck_assert_int_eq(zkc_counter_multi_add(c2, one, 2, NULL, res, NULL), ZKC_EINVAL); /* counters of another client */
    zkc_client_destroy(c2);
    tu_raw_close(rw);

    for (int s = 0; s < MS_SKUS; s++)
        zkc_counter_destroy(ctr[s]);
    zkc_client_destroy(c);
    shared_free(sh, sizeof *sh);
}
END_TEST

/* ================================================================ combining */

#define CB_THREADS 64
#define CB_ADDS 15

typedef struct cb_rec {
    int64_t delta, before, after;
    int rc;
} cb_rec;

typedef struct cb_thread {
    zkc_counter *ctr;
    pthread_barrier_t *bar;
    cb_rec rec[CB_ADDS];
    uint64_t seed;
} cb_thread;

static void *cb_run(void *arg)
{
    cb_thread *t = arg;
    pthread_barrier_wait(t->bar);
    for (int i = 0; i < CB_ADDS; i++) {
        zkc_counter_result r = {0, 0, 0};
        t->rec[i].delta = 1 + (int64_t)(tu_rng_next(&t->seed) % 1000);
        t->rec[i].rc = zkc_counter_add(t->ctr, t->rec[i].delta, NULL, &r);
        t->rec[i].before = r.before;
        t->rec[i].after = r.after;
    }
    return NULL;
}

static int cmp_cb(const void *a, const void *b)
{
    const cb_rec *x = *(cb_rec *const *)a, *y = *(cb_rec *const *)b;
    return x->before < y->before ? -1 : x->before > y->before ? 1 : 0;
}

START_TEST(t_combining)
{
    zkc_client *c = client_new();
    char path[256];
    unique_path(path, sizeof path, "hot");
    zkc_counter *ctr = counter_new(c, path, ZKC_FMT_INT64, 0);
    const int64_t initial = -5000;
    ck_assert_int_eq(zkc_counter_set(ctr, initial), 0);
    static cb_thread t[CB_THREADS];
    pthread_t th[CB_THREADS];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, CB_THREADS);
    zkc_stats s0, s1;
    zkc_client_stats(c, &s0);
    for (int i = 0; i < CB_THREADS; i++) {
        t[i].ctr = ctr;
        t[i].bar = &bar;
        t[i].seed = rng_seed(300, i);
        ck_assert_int_eq(pthread_create(&th[i], NULL, cb_run, &t[i]), 0);
    }
    for (int i = 0; i < CB_THREADS; i++)
        pthread_join(th[i], NULL);
    zkc_client_stats(c, &s1);
    pthread_barrier_destroy(&bar);

    static cb_rec *all[CB_THREADS * CB_ADDS];
    int n = 0;
    int64_t sum = 0;
    for (int i = 0; i < CB_THREADS; i++)
        for (int k = 0; k < CB_ADDS; k++) {
            cb_rec *r = &t[i].rec[k];
            ck_assert_msg(r->rc == 0, "thread %d add %d: %s", i, k, zkc_strerror(r->rc));
            ck_assert_int_eq(r->after - r->before, r->delta);
            sum += r->delta;
            all[n++] = r;
        }
    /* Positive deltas: the values strictly increase, so the (before, after)
     * pairs sorted by before must chain from the initial value to the final. */
    qsort(all, (size_t)n, sizeof all[0], cmp_cb);
    int64_t expect = initial;
    for (int i = 0; i < n; i++) {
        ck_assert_msg(all[i]->before == expect, "pair %d: before %" PRId64 ", expected %" PRId64, i, all[i]->before,
                      expect);
        expect = all[i]->after;
    }
    int64_t final = get_value(ctr);
    ck_assert_int_eq(expect, final);
    ck_assert_int_eq(final, initial + sum);
    uint64_t multis = s1.requests[ZKC_REQ_MULTI] - s0.requests[ZKC_REQ_MULTI];
    fprintf(stderr, "combining: %d adds in %llu multi requests\n", n, (unsigned long long)multis);
    ck_assert_uint_gt(multis, 0);
    ck_assert_uint_lt(multis, (uint64_t)n);

    /* Combining off: every add is its own transaction, results still exact. */
    char p2[256];
    unique_path(p2, sizeof p2, "nocombine");
    zkc_counter_options co;
    zkc_counter_options_init(&co);
    co.no_combine = 1;
    zkc_counter *solo;
    ck_assert_int_eq(zkc_counter_create(c, p2, &co, &solo), 0);
    box b[10];
    zkc_client_stats(c, &s0);
    for (int i = 0; i < 10; i++) {
        box_init(&b[i]);
        ck_assert_int_eq(zkc_counter_add_async(solo, i + 1, NULL, box_cb, &b[i]), 0);
    }
    int64_t tot = 0;
    for (int i = 0; i < 10; i++) {
        box_wait(&b[i]);
        ck_assert_int_eq(b[i].status, 0);
        ck_assert_int_eq(b[i].r.after - b[i].r.before, i + 1);
        tot += i + 1;
    }
    zkc_client_stats(c, &s1);
    ck_assert_int_eq(get_value(solo), tot);
    ck_assert_uint_ge(s1.requests[ZKC_REQ_MULTI] - s0.requests[ZKC_REQ_MULTI], 10);
    zkc_counter_destroy(solo);

    zkc_counter_destroy(ctr);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

/* ================================================================ fairness */

#define FB_CLIENTS 4
#define FB_ADDS 40

typedef struct fb_worker {
    zkc_counter *ctr;
    pthread_barrier_t *bar;
    int rc;
    char msg[200];
} fb_worker;

static void *fb_run(void *arg)
{
    fb_worker *w = arg;
    pthread_barrier_wait(w->bar);
    for (int i = 0; i < FB_ADDS; i++) {
        int rc = zkc_counter_add(w->ctr, 1, NULL, NULL);
        if (rc && !w->rc) {
            w->rc = rc;
            snprintf(w->msg, sizeof w->msg, "%s", zkc_errmsg());
        }
    }
    return NULL;
}

/* FB_CLIENTS clients hammer one counter; returns the conflicts they met. */
static uint64_t fb_round(const char *path, zkc_client **cs)
{
    zkc_counter *ctrs[FB_CLIENTS];
    fb_worker w[FB_CLIENTS];
    pthread_t th[FB_CLIENTS];
    pthread_barrier_t bar;
    zkc_stats s0[FB_CLIENTS], s1;
    pthread_barrier_init(&bar, NULL, FB_CLIENTS);
    for (int i = 0; i < FB_CLIENTS; i++) {
        ctrs[i] = counter_new(cs[i], path, ZKC_FMT_INT64, 0);
        zkc_client_stats(cs[i], &s0[i]);
        memset(&w[i], 0, sizeof w[i]);
        w[i].ctr = ctrs[i];
        w[i].bar = &bar;
        ck_assert_int_eq(pthread_create(&th[i], NULL, fb_run, &w[i]), 0);
    }
    uint64_t conflicts = 0;
    for (int i = 0; i < FB_CLIENTS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(w[i].rc == 0, "client %d: %s: %s", i, zkc_strerror(w[i].rc), w[i].msg);
        zkc_client_stats(cs[i], &s1);
        conflicts += s1.conflicts - s0[i].conflicts;
    }
    pthread_barrier_destroy(&bar);
    /* the other clients' last adds may not be on client 0's server yet */
    ck_assert_int_eq(get_value_fresh(ctrs[0]), FB_CLIENTS * FB_ADDS);
    for (int i = 0; i < FB_CLIENTS; i++)
        zkc_counter_destroy(ctrs[i]);
    return conflicts;
}

/* Children of path whose name starts with "zkc-waiting-", after a sync. */
static int fb_beacons(tu_raw *r, const char *path)
{
    tu_raw_sync(r, path);
    struct String_vector sv = {0, NULL};
    int rc = zoo_get_children(tu_raw_zh(r), path, 0, &sv);
    ck_assert_msg(rc == ZOK, "children of %s: %s", path, zerror(rc));
    int n = 0;
    for (int i = 0; i < sv.count; i++)
        n += strncmp(sv.data[i], "zkc-waiting-", 12) == 0;
    deallocate_String_vector(&sv);
    return n;
}

/* Writers that lose raise an ephemeral "zkc-waiting-" beacon on the counter
 * node (lib/counter.c, FAIRNESS); once every add is decided and the clients
 * are idle, none is left (each is lowered within its linger, bounded here), and
 * the counter is exact. A counter node on which beacons may not be created (no
 * CREATE permission) works the same, without them. */
START_TEST(t_fairness_beacons)
{
    zkc_client *cs[FB_CLIENTS];
    for (int i = 0; i < FB_CLIENTS; i++)
        cs[i] = client_new();
    tu_raw *r = raw_open();
    char path[256];
    unique_path(path, sizeof path, "fair");
    uint64_t conflicts = fb_round(path, cs);
    fprintf(stderr, "fairness beacons: %d adds from %d clients, %llu conflicts\n", FB_CLIENTS * FB_ADDS,
            FB_CLIENTS, (unsigned long long)conflicts);
    long long deadline = tu_now_ms() + tu_ms(10000);
    int left;
    while ((left = fb_beacons(r, path)) > 0 && tu_now_ms() < deadline)
        tu_nap_ms(50); /* no event tells us; the linger is at most 10 write round trips */
    ck_assert_msg(left == 0, "%d beacon(s) left on %s after the writers went idle", left, path);

    /* No CREATE on the counter node: the beacon cannot be raised; adds are unaffected. */
    char p2[256];
    unique_path(p2, sizeof p2, "fairacl");
    struct ACL rw = {ZOO_PERM_READ | ZOO_PERM_WRITE | ZOO_PERM_DELETE | ZOO_PERM_ADMIN, ZOO_ANYONE_ID_UNSAFE};
    struct ACL_vector acl = {1, &rw};
    int rc = zoo_create(tu_raw_zh(r), "/zkct", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    ck_assert(rc == ZOK || rc == ZNODEEXISTS);
    static const char zero64[8] = {0};
    ck_assert_int_eq(zoo_create(tu_raw_zh(r), p2, zero64, 8, &acl, 0, NULL, 0), ZOK);
    fb_round(p2, cs);
    ck_assert_int_eq(fb_beacons(r, p2), 0);

    tu_raw_close(r);
    for (int i = 0; i < FB_CLIENTS; i++)
        ck_assert_int_eq(zkc_client_destroy(cs[i]), 0);
}
END_TEST

typedef struct bl_add {
    zkc_counter *ctr;
    int rc;
    char msg[200];
} bl_add;

static void *bl_add_run(void *arg)
{
    bl_add *a = arg;
    a->rc = zkc_counter_add(a->ctr, 1, NULL, NULL);
    if (a->rc)
        snprintf(a->msg, sizeof a->msg, "%s", zkc_errmsg());
    return NULL;
}

#define OP_CREATE2 15 /* ZOO_CREATE2_OP: zoo_acreate2 */
#define OP_GETDATA 4  /* ZOO_GETDATA_OP */

/* A beacon kept up after a contended batch (its linger) is lowered when the
 * linger ends even if a read of the counter is out then: the read keeps the
 * counter busy but settles nothing, and the beacon used to stay up for the
 * rest of the session (seen as a beacon left in t_fairness_beacons, whose
 * fresh read of the total came right after the adds). Here a raw writer wins
 * two rounds of one add (the second while the add's re-read is held by a
 * proxy), so the add raises its beacon and keeps it; then a get's reply is
 * held past the linger. */
START_TEST(t_beacon_lowered_after_read)
{
    zkh_proxy *px = NULL;
    ck_assert_int_eq(zkh_proxy_start(&px, zkh_node_hostport(zkh_shared(), 0)), 0);
    zkc_client_options o;
    zkc_client_options_init(&o);
    o.hosts = zkh_proxy_hostport(px);
    o.session_timeout_ms = 10000;
    o.connect_timeout_ms = CONNECT_MS;
    zkc_client *c = NULL;
    ck_assert_msg(zkc_client_create(&c, &o) == 0, "zkc_client_create: %s", zkc_errmsg());
    pin_to_one_server(); /* the raw writer on node 0 too, behind which the proxy is */
    tu_raw *r = raw_open();
    char path[256];
    unique_path(path, sizeof path, "beaconread");
    zkc_counter *ctr = counter_new(c, path, ZKC_FMT_INT64, 0);
    ck_assert_int_eq(zkc_counter_add(ctr, 1, NULL, NULL), 0); /* cached from here */
    char v[8];
    int len = sizeof v;
    struct Stat st;
    ck_assert_int_eq(raw_get(r, path, v, &len, &st), ZOK);

    /* Round 1 loses to this write (the cached version is old). */
    ck_assert_int_eq(zoo_set(tu_raw_zh(r), path, v, len, -1), ZOK);
    long reads = zkh_proxy_requests_seen(px, OP_GETDATA);
    long creates = zkh_proxy_requests_seen(px, OP_CREATE2);
    zkh_proxy_delay_reply(px, OP_GETDATA, 1, tu_ms(500));
    zkc_stats s0, s1;
    zkc_client_stats(c, &s0);
    bl_add a = {ctr, -1, ""};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, bl_add_run, &a), 0);
    long long deadline = tu_now_ms() + tu_ms(10000);
    while (zkh_proxy_requests_seen(px, OP_GETDATA) == reads && tu_now_ms() < deadline)
        tu_nap_ms(5); /* a proxy counter: no event tells us */
    /* Round 2's read was answered before this write and its reply is held:
     * round 2 loses too, and the add raises its beacon. */
    ck_assert_int_eq(zoo_set(tu_raw_zh(r), path, v, len, -1), ZOK);
    pthread_join(th, NULL);
    ck_assert_msg(a.rc == 0, "add: %s: %s", zkc_strerror(a.rc), a.msg);
    zkc_client_stats(c, &s1);
    ck_assert_msg(s1.conflicts - s0.conflicts >= 2 && zkh_proxy_requests_seen(px, OP_CREATE2) > creates,
                  "setup: the add lost %llu rounds and sent %ld creates; 2 and a beacon were wanted",
                  (unsigned long long)(s1.conflicts - s0.conflicts), zkh_proxy_requests_seen(px, OP_CREATE2) - creates);

    /* The linger is 10 write round trips (at least 50 ms): hold the get well past it. */
    zkh_proxy_delay_reply(px, OP_GETDATA, 1, tu_ms(1500));
    ck_assert_int_eq(get_value(ctr), 2);
    deadline = tu_now_ms() + tu_ms(5000);
    int left;
    while ((left = fb_beacons(r, path)) > 0 && tu_now_ms() < deadline)
        tu_nap_ms(50); /* no event tells us; it goes a linger after the get at most */
    ck_assert_msg(left == 0, "the beacon on %s stayed up after a get that was out when its linger ended", path);

    zkc_counter_destroy(ctr);
    ck_assert_int_eq(zkc_client_destroy(c), 0);
    tu_raw_close(r);
    zkh_proxy_stop(px);
}
END_TEST

/* ================================================================ shutdown */

#define SD_OPS 300

typedef struct sd_rec {
    int calls;
    int status;
    int64_t delta;
} sd_rec;

static void sd_cb(zkc_counter *ctr, int status, const zkc_counter_result *r, void *ud)
{
    (void)ctr;
    (void)r;
    sd_rec *x = ud;
    __atomic_add_fetch(&x->calls, 1, __ATOMIC_RELAXED);
    x->status = status;
}

/* Destroying a client with adds queued and in flight: every callback runs
 * once, and what it says is true: ZKC_ECANCELED (or any error) means not
 * applied, so the node ends at the initial value plus the adds reported
 * applied. */
START_TEST(t_destroy_with_adds_in_flight)
{
    char path[256];
    unique_path(path, sizeof path, "shutdown");
    static sd_rec rec[SD_OPS];
    int64_t initial = 0;
    for (int round = 0; round < 5; round++) {
        zkc_client *c = client_new();
        zkc_counter *ctr = counter_new(c, path, ZKC_FMT_INT64, 0);
        if (round == 0)
            ck_assert_int_eq(zkc_counter_set(ctr, 0), 0);
        initial = get_value(ctr);
        memset(rec, 0, sizeof rec);
        for (int i = 0; i < SD_OPS; i++) {
            rec[i].delta = 1 + i % 7;
            zkc_update u = {0};
            ck_assert_int_eq(zkc_counter_add_async(ctr, rec[i].delta, &u, sd_cb, &rec[i]), 0);
        }
        /* no wait: some are done, some in flight, most queued */
        zkc_counter_destroy(ctr);
        ck_assert_int_eq(zkc_client_destroy(c), 0);
        int64_t sum = 0;
        int ok = 0, canceled = 0;
        for (int i = 0; i < SD_OPS; i++) {
            ck_assert_msg(rec[i].calls == 1, "round %d add %d: %d callbacks", round, i, rec[i].calls);
            if (rec[i].status == 0) {
                sum += rec[i].delta;
                ok++;
            } else {
                ck_assert_msg(rec[i].status == ZKC_ECANCELED, "round %d add %d: %s", round, i,
                              zkc_strerror(rec[i].status));
                canceled++;
            }
        }
        c = client_new();
        ctr = counter_new(c, path, ZKC_FMT_INT64, 0);
        int64_t v = get_value(ctr);
        zkc_counter_destroy(ctr);
        ck_assert_int_eq(zkc_client_destroy(c), 0);
        ck_assert_msg(v == initial + sum, "round %d: counter %" PRId64 " -> %" PRId64 ", but the %d adds reported "
                      "applied sum to %" PRId64 " (%d cancelled)", round, initial, v, ok, sum, canceled);
    }
}
END_TEST

/* ================================================================ fresh reads */

/* A client connected to node i only. */
static zkc_client *client_on_node(int i)
{
    zkc_client_options o;
    zkc_client_options_init(&o);
    o.hosts = zkh_node_hostport(zkh_shared(), i);
    o.session_timeout_ms = 10000;
    o.connect_timeout_ms = CONNECT_MS;
    zkc_client *c = NULL;
    int rc = zkc_client_create(&c, &o);
    ck_assert_msg(rc == 0, "zkc_client_create(%s): %s: %s", o.hosts, zkc_strerror(rc), zkc_errmsg());
    return c;
}

static void fresh_cb(zkc_counter *ctr, int status, const zkc_counter_result *r, void *ud)
{
    (void)ctr;
    tu_events_add(ud, status, status == 0 ? r->after : 0);
}

static void stock_cb(zkc_inventory *inv, int status, const zkc_inventory_stock_info *info, void *ud)
{
    (void)inv;
    tu_events_add(ud, status, status == 0 ? info->total : 0);
}

/* Records how many hold. */
static void contenders_cb(zkc_client *c, int status, const zkc_lock_contender *entries, int count, void *ud)
{
    (void)c;
    int holds = 0;
    for (int i = 0; status == 0 && i < count; i++)
        holds += entries[i].holds;
    tu_events_add(ud, status, status == 0 && count == 1 ? holds : -count);
}

#define FRESH_ROUNDS 200

/* A writer on the leader, a reader on a follower: after each acknowledged
 * write the reader's fresh reads (counter, stock, a lock's queue) see it. A
 * plain read may not; how often it did not is printed, not asserted (on
 * loopback the follower usually has the commit by then). */
START_TEST(t_fresh_reads)
{
    zkh_ensemble *e = zkh_shared();
    int n = zkh_node_count(e);
    int leader = zkh_leader(e);
    ck_assert_msg(n >= 1, "no nodes");
    int wi = leader >= 0 ? leader : 0;
    int ri = (wi + 1) % n;
    zkc_client *w = client_on_node(wi);
    zkc_client *r = client_on_node(ri);
    char path[256];
    unique_path(path, sizeof path, "fresh");
    zkc_counter *cw = counter_new(w, path, ZKC_FMT_DECIMAL, 0);
    zkc_counter *cr = counter_new(r, path, ZKC_FMT_DECIMAL, 0);

    int plain_lag = 0;
    for (int i = 0; i < FRESH_ROUNDS; i++) {
        zkc_counter_result res;
        int rc = zkc_counter_add(cw, 1, NULL, &res);
        ck_assert_msg(rc == 0, "add: %s: %s", zkc_strerror(rc), zkc_errmsg());
        /* Fresh read first on odd rounds, so a read right after the
         * acknowledgement is sometimes the fresh one. */
        int64_t plain = 0, fresh = 0;
        int frc = (i & 1) ? zkc_counter_get_fresh(cr, &fresh) : 0;
        rc = zkc_counter_get(cr, &plain);
        ck_assert_msg(rc == 0, "get: %s: %s", zkc_strerror(rc), zkc_errmsg());
        plain_lag += plain < res.after;
        rc = (i & 1) ? frc : zkc_counter_get_fresh(cr, &fresh);
        ck_assert_msg(rc == 0, "get_fresh: %s: %s", zkc_strerror(rc), zkc_errmsg());
        ck_assert_msg(fresh == res.after, "round %d: fresh read %" PRId64 " after an acknowledged %" PRId64, i,
                      fresh, res.after);
    }
    fprintf(stderr, "fresh reads: node %d writes, node %d reads: plain reads lagged %d of %d times\n", wi, ri,
            plain_lag, FRESH_ROUNDS);

    /* The async twin, with a plain read in flight on the same core when it
     * is queued: it must not share that read. */
    tu_events ev;
    tu_events_init(&ev);
    zkc_counter_result res;
    ck_assert_int_eq(zkc_counter_add(cw, 5, NULL, &res), 0);
    ck_assert_int_eq(zkc_counter_get_async(cr, fresh_cb, &ev), 0);
    ck_assert_int_eq(zkc_counter_get_fresh_async(cr, fresh_cb, &ev), 0);
    ck_assert_msg(tu_events_wait_total(&ev, 2, WAIT_MS) >= 2, "async reads did not complete");
    long long at;
    int64_t v = 0;
    ck_assert_int_eq(tu_events_get(&ev, 1, &at, &v), 0);
    ck_assert_int_eq(tu_events_count(&ev, 0), 2);
    ck_assert_msg(v == res.after, "fresh async read %" PRId64 " after an acknowledged %" PRId64, v, res.after);
    tu_events_destroy(&ev);
    /* Nothing there yet: the fence's NONODE is no failure. */
    char none[256];
    unique_path(none, sizeof none, "fresh-none");
    zkc_counter *cn = counter_new(r, none, ZKC_FMT_DECIMAL, 7);
    ck_assert_int_eq(zkc_counter_get_fresh(cn, &v), 0);
    ck_assert_int_eq(v, 7);
    zkc_counter_destroy(cn);
    zkc_lock_contender *none_ent = NULL;
    int none_cnt = -1;
    ck_assert_int_eq(zkc_lock_contenders_fresh(r, none, &none_ent, &none_cnt), 0);
    ck_assert_int_eq(none_cnt, 0);
    zkc_lock_contenders_free(none_ent, none_cnt);
    ck_assert_int_eq(zkc_counter_get_fresh(NULL, &v), ZKC_EINVAL);
    ck_assert_int_eq(zkc_counter_get_fresh(cr, NULL), ZKC_EINVAL);
    ck_assert_int_eq(zkc_counter_get_fresh_async(cr, NULL, NULL), ZKC_EINVAL);
    zkc_counter_destroy(cw);
    zkc_counter_destroy(cr);

    /* Stock. */
    char root[256];
    unique_path(root, sizeof root, "fresh-inv");
    zkc_inventory *iw = NULL, *ir = NULL;
    ck_assert_int_eq(zkc_inventory_create(w, root, &iw), 0);
    ck_assert_int_eq(zkc_inventory_create(r, root, &ir), 0);
    for (int i = 1; i <= FRESH_ROUNDS / 4; i++) {
        int rc = zkc_inventory_restock(iw, "sku", 1);
        ck_assert_msg(rc == 0, "restock: %s: %s", zkc_strerror(rc), zkc_errmsg());
        zkc_inventory_stock_info info;
        rc = zkc_inventory_stock_fresh(ir, "sku", &info);
        ck_assert_msg(rc == 0, "stock_fresh: %s: %s", zkc_strerror(rc), zkc_errmsg());
        ck_assert_msg(info.total == i, "stock read %" PRId64 " after %d acknowledged restocks", info.total, i);
    }
    ck_assert_int_eq(zkc_inventory_restock(iw, "sku", 1), 0);
    tu_events_init(&ev);
    ck_assert_int_eq(zkc_inventory_stock_fresh_async(ir, "sku", stock_cb, &ev), 0);
    ck_assert_msg(tu_events_wait_total(&ev, 1, WAIT_MS) >= 1, "stock_fresh_async did not call back");
    ck_assert_int_eq(tu_events_get(&ev, 0, &at, &v), 0);
    ck_assert_int_eq(v, FRESH_ROUNDS / 4 + 1);
    tu_events_destroy(&ev);
    zkc_inventory_destroy(iw);
    zkc_inventory_destroy(ir);

    /* A lock's queue: the holder the writer was just granted is listed. */
    char lpath[256];
    unique_path(lpath, sizeof lpath, "fresh-lock");
    for (int i = 0; i < FRESH_ROUNDS / 20; i++) {
        zkc_lock *l = NULL;
        ck_assert_int_eq(zkc_lock_create(w, lpath, &l), 0);
        int rc = zkc_lock_acquire(l, WAIT_MS, NULL);
        ck_assert_msg(rc == 0, "acquire: %s: %s", zkc_strerror(rc), zkc_errmsg());
        zkc_lock_contender *ent = NULL;
        int cnt = 0;
        rc = zkc_lock_contenders_fresh(r, lpath, &ent, &cnt);
        ck_assert_msg(rc == 0, "contenders_fresh: %s: %s", zkc_strerror(rc), zkc_errmsg());
        ck_assert_msg(cnt == 1 && ent[0].holds, "round %d: %d contenders listed after an acquire", i, cnt);
        zkc_lock_contenders_free(ent, cnt);
        tu_events_init(&ev);
        ck_assert_int_eq(zkc_lock_contenders_fresh_async(r, lpath, contenders_cb, &ev), 0);
        ck_assert_msg(tu_events_wait_total(&ev, 1, WAIT_MS) >= 1, "contenders_fresh_async did not call back");
        ck_assert_int_eq(tu_events_get(&ev, 0, &at, &v), 0);
        ck_assert_msg(v == 1, "round %d: %" PRId64 " contenders listed (async) after an acquire", i, v);
        tu_events_destroy(&ev);
        ck_assert_int_eq(zkc_lock_release(l), 0);
        zkc_lock_destroy(l);
    }
    zkc_client_destroy(w);
    zkc_client_destroy(r);
}
END_TEST

/* ================================================================ core lifetime */

/* AddressSanitizer has its own allocator: mallinfo2 reads nothing there, so
 * the heap is printed, not bounded. */
#if defined(__SANITIZE_ADDRESS__)
#define HEAP_BOUNDED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_BOUNDED 0
#endif
#endif
#ifndef HEAP_BOUNDED
#define HEAP_BOUNDED 1
#endif

/* A core was ~250 bytes and its path kept for the client's lifetime: 10^5
 * counters cost ~30 MB. Flat means well under 10 bytes per counter. */
#define CHURN_HEAP_BOUND (1024 * 1024)
#define CHURN_WARM 2000

typedef struct churn_cb_state {
    int calls, failed;
} churn_cb_state;

static void churn_cb(zkc_counter *ctr, int status, const zkc_counter_result *r, void *ud)
{
    (void)ctr;
    churn_cb_state *s = ud;
    if (status || r->after != 1)
        __atomic_add_fetch(&s->failed, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->calls, 1, __ATOMIC_RELEASE);
}

static void churn_multi_cb(zkc_client *c, int status, const zkc_counter_result *r, int n, int failed_index,
                           void *ud)
{
    (void)c;
    (void)failed_index;
    churn_cb_state *s = ud;
    if (status || n != 2 || r[0].after != 1 || r[1].after != 2)
        __atomic_add_fetch(&s->failed, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->calls, 1, __ATOMIC_RELEASE);
}

static long long churn_open_close_us(zkc_client *c, const char *base, int from, int n)
{
    char p[256];
    long long t0 = tu_now_ms();
    for (int i = from; i < from + n; i++) {
        snprintf(p, sizeof p, "%s/t%d", base, i);
        zkc_counter_destroy(counter_new(c, p, ZKC_FMT_INT64, 0));
    }
    return (tu_now_ms() - t0) * 1000 / n;
}

/* A long-lived worker with a counter per order: CORE_CHURN (10^5) counters on
 * distinct paths, each opened and destroyed in turn under one client; one in
 * 100 adds before its destroy, one in 1000 destroys with an async add in
 * flight, one in 10000 does a multi-counter add in flight with another. The
 * live heap after a warm-up and at the end stays flat (the cores of destroyed
 * counters are freed), every add lands exactly once, and an open late in the
 * run costs what an early one did (printed: timing is not asserted). */
START_TEST(t_cores_freed)
{
    mallopt(M_ARENA_MAX, 1); /* before the client's threads: mallinfo2 then sees them all */
    const char *env = getenv("CORE_CHURN");
    int n = env && atoi(env) > CHURN_WARM ? atoi(env) : 100000;
    char base[200], p[256], q[256];
    unique_path(base, sizeof base, "churn");
    zkc_client *c = client_new();
    churn_cb_state async = {0, 0}, multi = {0, 0};
    int nasync = 0, nmulti = 0, nsync = 0;
    long long first_us = churn_open_close_us(c, base, -2000, 1000);
    struct mallinfo2 m0 = {0};
    long long t0 = tu_now_ms();
    for (int i = 0; i < n; i++) {
        if (i == CHURN_WARM) {
            malloc_trim(0);
            m0 = mallinfo2();
        }
        snprintf(p, sizeof p, "%s/c%d", base, i);
        zkc_counter *ctr = counter_new(c, p, ZKC_FMT_INT64, 0);
        if (i % 10000 == 5000) {
            snprintf(q, sizeof q, "%s/m%d", base, i);
            zkc_counter *other = counter_new(c, q, ZKC_FMT_INT64, 0);
            zkc_counter_op ops[2] = {{.counter = ctr, .delta = 1}, {.counter = other, .delta = 2}};
            ck_assert_int_eq(zkc_counter_multi_add_async(c, ops, 2, NULL, churn_multi_cb, &multi), 0);
            zkc_counter_destroy(other);
            nmulti++;
        } else if (i % 1000 == 500) {
            ck_assert_int_eq(zkc_counter_add_async(ctr, 1, NULL, churn_cb, &async), 0);
            nasync++;
        } else if (i % 100 == 0) {
            zkc_counter_result r;
            int rc = zkc_counter_add(ctr, 1, NULL, &r);
            ck_assert_msg(rc == 0 && r.after == 1, "add to %s: %s: %s", p, zkc_strerror(rc), zkc_errmsg());
            nsync++;
        }
        zkc_counter_destroy(ctr); /* with an add in flight for some */
    }
    long long t_loop = tu_now_ms() - t0;
    long long deadline = tu_now_ms() + WAIT_MS;
    while ((__atomic_load_n(&async.calls, __ATOMIC_ACQUIRE) < nasync ||
            __atomic_load_n(&multi.calls, __ATOMIC_ACQUIRE) < nmulti) &&
           tu_now_ms() < deadline)
        tu_nap_ms(10);
    ck_assert_int_eq(async.calls, nasync);
    ck_assert_int_eq(multi.calls, nmulti);
    ck_assert_int_eq(async.failed, 0);
    ck_assert_int_eq(multi.failed, 0);
    malloc_trim(0);
    struct mallinfo2 m1 = mallinfo2();
    long long last_us = churn_open_close_us(c, base, n, 1000);
    /* The adds in flight at their counter's destroy landed, once. */
    for (int i = 500; i < n; i += 1000) {
        snprintf(p, sizeof p, "%s/%c%d", base, i % 10000 == 5000 ? 'm' : 'c', i);
        zkc_counter *ctr = counter_new(c, p, ZKC_FMT_INT64, 0);
        ck_assert_int_eq(get_value(ctr), i % 10000 == 5000 ? 2 : 1);
        zkc_counter_destroy(ctr);
    }
    ck_assert_int_eq(zkc_client_destroy(c), 0);
    long long growth = (long long)m1.uordblks - (long long)m0.uordblks;
    printf("core lifetime: %d counters opened and destroyed in %lld ms (%d adds, %d async adds and %d multi adds in "
           "flight at destroy); live heap %zu -> %zu bytes after the first %d (%+.2f B/counter); open+destroy "
           "%lld us early, %lld us late\n",
           n, t_loop, nsync, nasync, nmulti, m0.uordblks, m1.uordblks, CHURN_WARM,
           (double)growth / (n - CHURN_WARM), first_us, last_us);
    if (HEAP_BOUNDED)
        ck_assert_msg(growth < CHURN_HEAP_BOUND, "live heap grew by %lld bytes over %d counters (bound %d)", growth,
                      n - CHURN_WARM, CHURN_HEAP_BOUND);
}
END_TEST

static int create_fmt(zkc_client *c, const char *path, zkc_format fmt, zkc_counter **out)
{
    zkc_counter_options co;
    zkc_counter_options_init(&co);
    co.format = fmt;
    *out = NULL;
    return zkc_counter_create(c, path, &co, out);
}

#define REG_N 3000

/* The per-path registry while thousands of paths are open at once (it grows)
 * and as they close (it shrinks): an open finds its path's state exactly while
 * an object is open on it (another format is then ZKC_ECONFIG), and not once
 * the last one is destroyed (another format is then accepted). */
START_TEST(t_core_registry)
{
    static zkc_counter *ctr[REG_N];
    char base[200], p[256];
    unique_path(base, sizeof base, "registry");
    zkc_client *c = client_new();
    for (int i = 0; i < REG_N; i++) {
        snprintf(p, sizeof p, "%s/%d", base, i);
        ctr[i] = counter_new(c, p, ZKC_FMT_INT64, 0);
    }
    zkc_counter *other;
    for (int i = 0; i < REG_N; i += 7) {
        snprintf(p, sizeof p, "%s/%d", base, i);
        ck_assert_int_eq(create_fmt(c, p, ZKC_FMT_DECIMAL, &other), ZKC_ECONFIG);
        ck_assert_ptr_null(other);
    }
    for (int i = 0; i < REG_N; i += 2)
        zkc_counter_destroy(ctr[i]);
    for (int i = 0; i < REG_N; i++) {
        snprintf(p, sizeof p, "%s/%d", base, i);
        int rc = create_fmt(c, p, ZKC_FMT_DECIMAL, &other);
        if (i % 2) {
            ck_assert_msg(rc == ZKC_ECONFIG, "%s still open: %s", p, zkc_strerror(rc));
        } else {
            ck_assert_msg(rc == 0, "%s closed: %s: %s", p, zkc_strerror(rc), zkc_errmsg());
            zkc_counter_destroy(other);
        }
    }
    for (int i = 1; i < REG_N; i += 2)
        zkc_counter_destroy(ctr[i]);
    for (int i = 1; i < REG_N; i += 2) {
        snprintf(p, sizeof p, "%s/%d", base, i);
        ck_assert_int_eq(create_fmt(c, p, ZKC_FMT_DECIMAL, &other), 0);
        zkc_counter_destroy(other);
    }
    ck_assert_int_eq(zkc_client_destroy(c), 0);
}
END_TEST

/* ================================================================ main */

static Suite *counter_suite(int with_ensemble)
{
    Suite *s = suite_create("counter");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, t_codec_roundtrip);
    tcase_add_test(tc, t_codec_empty_is_initial);
    tcase_add_test(tc, t_codec_malformed);
    tcase_add_test(tc, t_codec_overflow_and_version);
    tcase_add_test(tc, t_codec_record);
    tcase_add_test(tc, t_codec_record_malformed);
    tcase_add_test(tc, t_cq_codec);
    tcase_add_test(tc, t_cq_codec_forged_outcome);
    tcase_add_test(tc, t_cq_codec_inline);
    suite_add_tcase(s, tc);
    if (!with_ensemble)
        return s;

    tc = tcase_create("api");
    tcase_set_timeout(tc, 120 * tu_scale());
    tcase_add_checked_fixture(tc, unpin, NULL);
    tcase_add_test(tc, t_blocking_ops);
    tcase_add_test(tc, t_async_ops);
    tcase_add_test(tc, t_async_blocking_from_callback);
    tcase_add_test(tc, t_bounded);
    tcase_add_test(tc, t_refusal_not_from_stale_cache);
    tcase_add_test(tc, t_formats_bytes);
    tcase_add_test(tc, t_formats_foreign_nodes);
    tcase_add_test(tc, t_malformed_untouched);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrency");
    tcase_set_timeout(tc, 180 * tu_scale());
    tcase_add_checked_fixture(tc, unpin, NULL);
    tcase_add_test(tc, t_bounded_stock);
    tcase_add_test(tc, t_idempotency_processes_restart);
    tcase_add_test(tc, t_idempotency_replay_beats_refusal);
    tcase_add_test(tc, t_idempotency_replay_in_batch);
    tcase_add_test(tc, t_idempotency_same_client_same_batch);
    tcase_add_test(tc, t_multi_sku);
    tcase_add_test(tc, t_combining);
    tcase_add_test(tc, t_fairness_beacons);
    tcase_add_test(tc, t_beacon_lowered_after_read);
    tcase_add_test(tc, t_destroy_with_adds_in_flight);
    suite_add_tcase(s, tc);

    tc = tcase_create("queued");
    tcase_set_timeout(tc, 180 * tu_scale());
    tcase_add_checked_fixture(tc, unpin, NULL);
    tcase_add_test(tc, t_queued_gone_enqueuers);
    tcase_add_test(tc, t_queued_bounded_stock);
    tcase_add_test(tc, t_queued_lone_requests);
    tcase_add_test(tc, t_credentials_given_again);
    tcase_add_test(tc, t_auto_uncontended);
    tcase_add_test(tc, t_auto_switches);
    suite_add_tcase(s, tc);

    /* Exactness over many processes and sessions (4000 adds from threads of
     * 3 processes; 8 enqueuing processes per queued run): heavy tier. */
    tc = tcase_create("exact_processes");
    tcase_set_tags(tc, TU_HEAVY);
    tcase_set_timeout(tc, 180 * tu_scale());
    tcase_add_checked_fixture(tc, unpin, NULL);
    tcase_add_test(tc, t_exact_threads_processes);
    tcase_add_test(tc, t_queued_exact);
    tcase_add_test(tc, t_queued_mixed_exact);
    tcase_add_test(tc, t_auto_exact);
    tcase_add_test(tc, t_auto_mixed_exact);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifetime");
    tcase_set_timeout(tc, 120 * tu_scale());
    tcase_add_checked_fixture(tc, unpin, NULL);
    tcase_add_test(tc, t_cores_freed);
    tcase_add_test(tc, t_core_registry);
    suite_add_tcase(s, tc);

    tc = tcase_create("fresh");
    tcase_set_timeout(tc, 120 * tu_scale());
    tcase_add_test(tc, t_fresh_reads);
    suite_add_tcase(s, tc);
    return s;
}

static int worker_main(char **argv)
{
    static const struct {
        const char *kind;
        int (*fn)(int i, void *arg);
    } kinds[] = {{"ex", ex_child}, {"st", st_child}, {"id", id_child}, {"ms", ms_child}, {"qx", qx_child}};
    int idx = atoi(argv[3]);
    int fd = atoi(argv[4]);
    size_t size = (size_t)strtoull(argv[5], NULL, 10);
    g_ready_w = atoi(argv[6]);
    g_go_r = atoi(argv[7]);
    g_worker_hosts = argv[8];
    void *sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (sh == MAP_FAILED) {
        fprintf(stderr, "worker: mmap: %s\n", strerror(errno));
        return 2;
    }
    g_ex = sh;
    g_st = sh;
    g_id = sh;
    g_ms = sh;
    g_qx = sh;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        if (strcmp(kinds[k].kind, argv[2]) == 0)
            return kinds[k].fn(idx, NULL);
    fprintf(stderr, "worker: unknown kind %s\n", argv[2]);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 9 && strcmp(argv[1], "--worker") == 0) {
        zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
        return worker_main(argv);
    }
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    snprintf(g_tag, sizeof g_tag, "%d", (int)getpid());
    /* Room above the 20-tick default (4 s at 200 ms ticks) for 10 s sessions. */
    setenv("ZKH_MAX_SESSION_TIMEOUT_MS", "30000", 0);
    long long t0 = tu_now_ms();
    /* Started here, in the parent, so the forked tests share it. */
    zkh_ensemble *e = zkh_shared();
    int skip = 0;
    if (!e) {
        if (zkh_ci()) {
            fprintf(stderr, "test_counter: CI=true and no ZooKeeper ensemble could be started\n");
            return EXIT_FAILURE;
        }
        fprintf(stderr, "test_counter: no ZooKeeper ensemble (java/zookeeper missing?): "
                        "running the codec tests only, then SKIP\n");
        skip = 1;
    } else {
        fprintf(stderr, "test_counter: ensemble %s up in %lld ms\n", zkh_ensemble_hosts(e), tu_now_ms() - t0);
    }
    SRunner *sr = srunner_create(counter_suite(!skip));
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    fprintf(stderr, "test_counter: %lld ms in all\n", tu_now_ms() - t0);
    if (failed)
        return EXIT_FAILURE;
    return skip ? 77 : EXIT_SUCCESS;
}
