/* See reserve_util.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "reserve_util.h"
#include "seqname.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ inventory calls */

void (*ru_before_fail)(void);

#define RU_REQUIRE(cond, ...)                                                                                  \
    do {                                                                                                       \
        if (!(cond)) {                                                                                         \
            char m_[512];                                                                                      \
            snprintf(m_, sizeof m_, __VA_ARGS__);                                                              \
            if (ru_before_fail)                                                                                \
                ru_before_fail();                                                                              \
            ck_abort_msg("%s", m_);                                                                            \
        }                                                                                                      \
    } while (0)

zkc_inventory *ru_inv_open(zkc_client *c, const char *root)
{
    zkc_inventory *inv = NULL;
    int rc = zkc_inventory_create(c, root, &inv);
    RU_REQUIRE(rc == 0, "zkc_inventory_create(%s): %s", root, zkc_errmsg());
    return inv;
}

zkc_inventory_stock_info ru_stock_of(zkc_inventory *inv, const char *sku)
{
    zkc_inventory_stock_info si;
    memset(&si, 0, sizeof si);
    int rc = zkc_inventory_stock(inv, sku, &si);
    RU_REQUIRE(rc == 0, "stock %s: %s", sku, zkc_errmsg());
    RU_REQUIRE(si.available + si.reserved + si.sold == si.total, "stock %s: %lld + %lld + %lld != total %lld", sku,
               (long long)si.available, (long long)si.reserved, (long long)si.sold, (long long)si.total);
    return si;
}

zkc_inventory_state ru_lookup(zkc_inventory *inv, const char *id)
{
    zkc_inventory_state st = (zkc_inventory_state)-1;
    int rc = zkc_inventory_lookup(inv, id, &st);
    RU_REQUIRE(rc == 0, "lookup %s: %s", id, zkc_errmsg());
    return st;
}

void ru_wait_queue(zkc_inventory *inv, const char *sku, int want, int timeout_ms)
{
    long long deadline = tu_now_ms() + timeout_ms;
    for (;;) {
        zkc_inventory_stock_info si = ru_stock_of(inv, sku);
        if (si.queue_length == want)
            return;
        RU_REQUIRE(tu_now_ms() < deadline, "queue of %s has %d entries, want %d", sku, si.queue_length, want);
        tu_nap_ms(20);
    }
}

void ru_acall_cb(zkc_inventory *inv, int status, const char *id, zkc_inventory_state st, void *ud)
{
    (void)inv;
    ru_acall *a = ud;
    snprintf(a->id, sizeof a->id, "%s", id ? id : "");
    a->status = status;
    a->state = (int)st;
    __atomic_add_fetch(&a->calls, 1, __ATOMIC_SEQ_CST);
    tu_events_add(a->e, a->tag, status);
}

void ru_reserve_async(zkc_inventory *inv, ru_acall *a, const char *id, const char *sku, int64_t qty, int wait,
                      int hold_ms, int timeout_ms)
{
    zkc_inventory_line l = {sku, qty};
    zkc_inventory_reserve_options o;
    memset(&o, 0, sizeof o);
    o.wait_for_restock = wait;
    o.hold_ms = hold_ms;
    int rc = zkc_inventory_reserve_async(inv, id, &l, 1, &o, timeout_ms, ru_acall_cb, a);
    RU_REQUIRE(rc == 0, "reserve_async %s: %s", id ? id : "(new id)", zkc_errmsg());
}

/* ------------------------------------------------------------ processes */

static int thread_count(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

void *ru_shared_alloc(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_msg(p != MAP_FAILED, "mmap: %s", strerror(errno));
    memset(p, 0, n);
    return p;
}

void ru_procs_start(ru_procs *p, int n, int (*fn)(int i, void *arg), void *arg)
{
    memset(p, 0, sizeof *p);
    ck_assert_int_le(n, 32);
    ck_assert_int_eq(pipe(p->ready), 0);
    ck_assert_int_eq(pipe(p->go), 0);
    p->n = n;
    /* A child forked from a multithreaded process may inherit a lock (malloc,
     * a client's) that no thread will ever release. */
    ck_assert_msg(thread_count() == 1, "fork workers before creating clients (%d threads)", thread_count());
    fflush(NULL);
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            close(p->ready[0]);
            close(p->go[1]);
            _exit(fn(i, arg));
        }
        p->pid[i] = pid;
    }
    close(p->ready[1]);
    close(p->go[0]);
}

int ru_child_ready_wait(ru_procs *p)
{
    char b = 'r';
    if (write(p->ready[1], &b, 1) != 1)
        return -1;
    struct pollfd pf = {p->go[0], POLLIN, 0};
    return poll(&pf, 1, tu_ms(60000)) == 1 ? 0 : -1;
}

void ru_procs_go(ru_procs *p)
{
    int got = 0;
    long long deadline = tu_now_ms() + tu_ms(60000);
    while (got < p->n) {
        long long left = deadline - tu_now_ms();
        ck_assert_msg(left > 0, "only %d of %d worker processes got ready", got, p->n);
        struct pollfd pf = {p->ready[0], POLLIN, 0};
        int r = poll(&pf, 1, (int)left);
        ck_assert_int_ge(r, 0);
        if (r == 0)
            continue;
        char buf[32];
        ssize_t k = read(p->ready[0], buf, sizeof buf);
        ck_assert_msg(k > 0, "a worker process exited before it got ready");
        got += (int)k;
    }
    close(p->go[1]);
    p->go[1] = -1;
}

void ru_procs_join(ru_procs *p, int timeout_ms)
{
    long long deadline = tu_now_ms() + timeout_ms;
    char failed[256] = "";
    for (int i = 0; i < p->n; i++) {
        if (p->pid[i] <= 0)
            continue;
        int pfd = (int)syscall(SYS_pidfd_open, p->pid[i], 0);
        int status = 0;
        if (pfd >= 0) {
            long long left = deadline - tu_now_ms();
            struct pollfd pf = {pfd, POLLIN, 0};
            if (left <= 0 || poll(&pf, 1, (int)(left > 0 ? left : 0)) != 1) {
                kill(p->pid[i], SIGKILL);
                if (!failed[0])
                    snprintf(failed, sizeof failed, "worker process %d did not finish within %d ms", i, timeout_ms);
            }
            close(pfd);
        }
        ck_assert_int_eq(waitpid(p->pid[i], &status, 0), p->pid[i]);
        if (!failed[0] && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
            snprintf(failed, sizeof failed, "worker process %d failed (status 0x%x)", i, status);
    }
    close(p->ready[0]);
    if (p->go[1] >= 0)
        close(p->go[1]);
    ck_assert_msg(!failed[0], "%s", failed);
}

zkc_client *ru_child_client(const char *hosts, int session_ms)
{
    return ru_child_client_q(hosts, session_ms, NULL);
}

zkc_client *ru_child_client_q(const char *hosts, int session_ms, ru_qpos *qp)
{
    zkc_client_options o;
    zkc_client_options_init(&o);
    if (qp)
        ru_qpos_opts(&o, qp);
    o.hosts = hosts;
    o.session_timeout_ms = session_ms;
    o.connect_timeout_ms = tu_ms(30000);
    zkc_client *c = NULL;
    if (zkc_client_create(&c, &o) != 0) {
        fprintf(stderr, "worker %d: client: %s\n", (int)getpid(), zkc_errmsg());
        return NULL;
    }
    return c;
}

int ru_child_inventory(ru_procs *p, const char *hosts, int session_ms, ru_qpos *qp, const char *root,
                       zkc_client **c, zkc_inventory **inv)
{
    *c = ru_child_client_q(hosts, session_ms, qp);
    if (!*c)
        return 2;
    *inv = NULL;
    if (zkc_inventory_create(*c, root, inv) != 0)
        return 3;
    if (ru_child_ready_wait(p) != 0)
        return 4;
    return 0;
}

/* ------------------------------------------------------------ queue positions */

void ru_qpos_log(zkc_log_level lvl, const char *msg, void *ud)
{
    ru_qpos *qp = ud;
    const char *a = strstr(msg, ": request "), *b = a ? strstr(a, " queued as ") : NULL;
    if (!b) {
        if (lvl <= ZKC_LOG_WARN)
            fprintf(stderr, "zkcoord: %s\n", msg);
        return;
    }
    a += strlen(": request ");
    const char *node = b + strlen(" queued as ");
    const char *dash = strrchr(node, '-');
    char *end = NULL;
    long long seq = dash ? strtoll(dash + 1, &end, 10) : -1;
    int i = __atomic_fetch_add(&qp->n, 1, __ATOMIC_ACQ_REL);
    if (i >= RU_QPOS_MAX || b - a > ZKC__RES_NAME_MAX || !end || *end || seq < 0) {
        __atomic_add_fetch(&qp->lost, 1, __ATOMIC_ACQ_REL);
        return;
    }
    memcpy(qp->e[i].id, a, (size_t)(b - a));
    qp->e[i].id[b - a] = 0;
    qp->e[i].seq = seq;
    __atomic_store_n(&qp->e[i].ready, 1, __ATOMIC_RELEASE);
}

void ru_qpos_opts(zkc_client_options *o, ru_qpos *qp)
{
    o->log_fn = ru_qpos_log;
    o->log_ud = qp;
    o->log_level = ZKC_LOG_DEBUG;
}

static int qseq_cmp(const void *a, const void *b)
{
    const ru_rec *x = a, *y = b;
    if ((x->qseq < 0) != (y->qseq < 0))
        return x->qseq < 0 ? 1 : -1;
    if (x->qseq >= 0)
        return x->qseq < y->qseq ? -1 : x->qseq > y->qseq;
    return x->czxid < y->czxid ? -1 : x->czxid > y->czxid;
}

int ru_order_by_queue(ru_rec *v, int n, const ru_qpos *qp)
{
    int claimed = __atomic_load_n(&qp->n, __ATOMIC_ACQUIRE);
    ck_assert_msg(__atomic_load_n(&qp->lost, __ATOMIC_ACQUIRE) == 0, "%d queue position lines lost", qp->lost);
    if (claimed > RU_QPOS_MAX)
        claimed = RU_QPOS_MAX;
    int known = 0;
    for (int k = 0; k < n; k++) {
        v[k].qseq = -1;
        for (int i = 0; i < claimed; i++) /* the last line for an id: its last enqueue */
            if (__atomic_load_n(&qp->e[i].ready, __ATOMIC_ACQUIRE) && strcmp(qp->e[i].id, v[k].id) == 0)
                v[k].qseq = qp->e[i].seq;
        known += v[k].qseq >= 0;
    }
    qsort(v, (size_t)n, sizeof *v, qseq_cmp);
    for (int k = 1; k < known; k++)
        ck_assert_msg(v[k].czxid >= v[k - 1].czxid, "%s (queue seq %lld) was created before %s (seq %lld)", v[k].id,
                      (long long)v[k].qseq, v[k - 1].id, (long long)v[k - 1].qseq);
    return known;
}

/* ------------------------------------------------------------ records */

typedef struct ru_syncw {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, rc;
} ru_syncw;

static void ru_sync_done(int rc, const char *value, const void *data)
{
    (void)value;
    ru_syncw *w = (ru_syncw *)data;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    w->rc = rc;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* The raw handle's server catches up with the leader: writes made through
 * other servers (other processes) are visible to the reads that follow. */
static void ru_sync(zhandle_t *zh, const char *path)
{
    ru_syncw w;
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    w.done = 0;
    w.rc = 0;
    int rc = zoo_async(zh, path, ru_sync_done, &w);
    ck_assert_msg(rc == ZOK, "sync %s: %s", path, zerror(rc));
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += tu_ms(30000) / 1000;
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        if (pthread_cond_timedwait(&w.cv, &w.mu, &dl) != 0)
            break;
    int done = w.done;
    pthread_mutex_unlock(&w.mu);
    ck_assert_msg(done, "sync %s: no answer", path);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
}

/* A read is safe to repeat. On a loaded machine the raw handle's request can
 * fail with ZOPERATIONTIMEOUT (no reply within 2/3 of its session timeout) or
 * lose its connection: ask again, at most four times in all. */
#define RU_READ(rc, call)                                                                                              \
    do {                                                                                                               \
        int tries_ = 0;                                                                                                \
        do                                                                                                             \
            (rc) = (call);                                                                                             \
        while (((rc) == ZOPERATIONTIMEOUT || (rc) == ZCONNECTIONLOSS) && ++tries_ < 4);                               \
    } while (0)

static int rec_cmp(const void *a, const void *b)
{
    const ru_rec *x = a, *y = b;
    return x->czxid < y->czxid ? -1 : x->czxid > y->czxid;
}

int ru_records(zhandle_t *zh, const char *root, ru_rec **out)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/req", root);
    ru_sync(zh, dir);
    struct String_vector buckets = {0, NULL};
    int rc;
    RU_READ(rc, zoo_get_children(zh, dir, 0, &buckets));
    ck_assert_msg(rc == ZOK, "list %s: %s", dir, zerror(rc));
    int cap = 64, n = 0;
    ru_rec *v = calloc((size_t)cap, sizeof *v);
    ck_assert_ptr_nonnull(v);
    char *buf = malloc(16384);
    ck_assert_ptr_nonnull(buf);
    for (int b = 0; b < buckets.count; b++) {
        char bdir[2048];
        snprintf(bdir, sizeof bdir, "%s/%s", dir, buckets.data[b]);
        struct String_vector ids = {0, NULL};
        RU_READ(rc, zoo_get_children(zh, bdir, 0, &ids));
        ck_assert_msg(rc == ZOK, "list %s: %s", bdir, zerror(rc));
        for (int i = 0; i < ids.count; i++) {
            if (n == cap) {
                cap *= 2;
                v = realloc(v, (size_t)cap * sizeof *v);
                ck_assert_ptr_nonnull(v);
            }
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", bdir, ids.data[i]);
            int len;
            struct Stat st;
            RU_READ(rc, (len = 16384, zoo_get(zh, path, 0, buf, &len, &st)));
            if (rc == ZNONODE)
                continue;
            ck_assert_msg(rc == ZOK, "get %s: %s", path, zerror(rc));
            ru_rec *x = &v[n];
            memset(x, 0, sizeof *x);
            snprintf(x->id, sizeof x->id, "%s", ids.data[i]);
            const char *why = NULL;
            ck_assert_msg(zkc__resrec_decode(buf, len, &x->r, &why) == 0, "record %s: %s", path, why);
            x->czxid = st.czxid;
            x->mzxid = st.mzxid;
            x->ctime = st.ctime;
            x->mtime = st.mtime;
            x->version = st.version;
            x->qseq = -1;
            n++;
        }
        deallocate_String_vector(&ids);
    }
    deallocate_String_vector(&buckets);
    free(buf);
    qsort(v, (size_t)n, sizeof *v, rec_cmp);
    *out = v;
    return n;
}

const ru_rec *ru_find(const ru_rec *v, int n, const char *id)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v[i].id, id) == 0)
            return &v[i];
    return NULL;
}

int ru_queue_len(zhandle_t *zh, const char *root, const char *sku)
{
    char q[1024];
    snprintf(q, sizeof q, "%s/sku/%s/q", root, sku);
    ru_sync(zh, q);
    struct Stat st;
    int rc;
    RU_READ(rc, zoo_exists(zh, q, 0, &st));
    if (rc == ZNONODE)
        return -1;
    ck_assert_msg(rc == ZOK, "exists %s: %s", q, zerror(rc));
    return st.numChildren;
}

int ru_queue_members(zhandle_t *zh, const char *root, const char *sku)
{
    char q[1024];
    snprintf(q, sizeof q, "%s/sku/%s/q", root, sku);
    ru_sync(zh, q);
    struct String_vector kids = {0, NULL};
    int rc;
    RU_READ(rc, zoo_get_children(zh, q, 0, &kids));
    ck_assert_msg(rc == ZOK, "list %s: %s", q, zerror(rc));
    for (int i = 0; i < kids.count; i++) {
        /* The codec and the member core (which orders them) read one suffix. */
        int32_t s1 = 0, s2 = 1;
        ck_assert_msg(strncmp(kids.data[i], "_c_", 3) == 0 && zkc__resname_parse(kids.data[i], NULL, &s1) &&
                          zkc__seq_parse(kids.data[i], &s2, NULL, NULL) && s1 == s2,
                      "queue node %s/%s is not a member-core name", q, kids.data[i]);
    }
    int n = kids.count;
    deallocate_String_vector(&kids);
    return n;
}

void ru_sku(zhandle_t *zh, const char *root, const char *sku, zkc__sku_rec *out)
{
    char p[1024], buf[256];
    snprintf(p, sizeof p, "%s/sku/%s", root, sku);
    ru_sync(zh, p);
    int len, rc;
    RU_READ(rc, (len = sizeof buf, zoo_get(zh, p, 0, buf, &len, NULL)));
    ck_assert_msg(rc == ZOK, "get %s: %s", p, zerror(rc));
    const char *why = NULL;
    ck_assert_msg(zkc__sku_decode(buf, len, out, &why) == 0, "SKU record %s (%.*s): %s", p, len, buf, why);
}

void ru_check_units(zhandle_t *zh, const char *root, const char *sku, int64_t total, const ru_rec *v, int n)
{
    zkc__sku_rec s;
    ru_sku(zh, root, sku, &s);
    int64_t res = 0, sold = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < v[i].r.n; j++)
            if (strcmp(v[i].r.line[j].sku, sku) == 0) {
                if (v[i].r.state == ZKC_INVENTORY_RESERVED)
                    res += v[i].r.line[j].qty;
                else if (v[i].r.state == ZKC_INVENTORY_SOLD)
                    sold += v[i].r.line[j].qty;
            }
    ck_assert_msg(s.available >= 0 && s.reserved >= 0 && s.sold >= 0, "SKU %s: negative count", sku);
    ck_assert_msg(s.available + s.reserved + s.sold == s.total, "SKU %s: units not conserved", sku);
    if (total >= 0)
        ck_assert_msg(s.total == total, "SKU %s: total %lld, expected %lld", sku, (long long)s.total,
                      (long long)total);
    ck_assert_msg(s.reserved == res, "SKU %s: reserved %lld but RESERVED records hold %lld", sku,
                  (long long)s.reserved, (long long)res);
    ck_assert_msg(s.sold == sold, "SKU %s: sold %lld but SOLD records hold %lld", sku, (long long)s.sold,
                  (long long)sold);
}
