/* zkc_interop: the zkcoord side of the interoperability tests (tests/interop).
 * Public API only. One binary, several commands; the shell scripts in this
 * directory start it next to Curator (Interop.java) and kazoo (kazoo_interop.py)
 * workers on one ZooKeeper path.
 *
 *   zkc_interop mutex|rw  --hosts H --path P --dir D --name N [--threads T] [--iters I] [--hold-ms M]
 *       T threads, each with its own client (session) and lock object, take the
 *       lock I times. Every hold appends ENTER/EXIT lines (CLOCK_MONOTONIC ns,
 *       node sequence, fencing token) to D/log and creates an O_EXCL marker in D
 *       while inside (see check_log.py). Waits at the barrier D/go first.
 *   zkc_interop counter --hosts H --path P --fmt int64|int32|decimal --dir D --name N
 *                       [--threads T] [--adds A] [--delta X]
 *       T threads of one client add X, A times each, after the barrier.
 *   zkc_interop counter-get|counter-set V|counter-add X --hosts H --path P --fmt F
 *   zkc_interop probe --hosts H --path P --kind mutex|semaphore [--leases L]
 *                     [--timeout-ms T] [--hold-until FILE] [--ready FILE] [--again-after FILE]
 *       One acquire with a timeout; prints "acquire: <code>" and every log line
 *       the library emits at WARN or above as "ZKCLOG <level> <message>".
 *       --ready/--hold-until: once granted, create READY and hold until FILE
 *       exists. --again-after: then wait for FILE and acquire once more with
 *       the same lock object ("acquire2: <code>").
 *   zkc_interop queue --hosts H --path P
 *       Prints the queue (name sequence kind holds), one entry a line.
 *
 * Exit status: 0 ok, 1 a check failed or an API call failed, 2 usage.
 */
#include "zkcoord.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *o_hosts, *o_path, *o_dir, *o_name = "zkcoord", *o_fmt = "int64", *o_kind = "mutex";
static const char *o_hold_until, *o_ready, *o_again_after;
static int o_threads = 2, o_iters = 10, o_hold_ms = 3, o_adds = 100, o_leases = 1, o_timeout_ms = 1000;
static int64_t o_delta = 1, o_value;

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static int failures; /* under out_mu */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&out_mu);
    failures++;
    fprintf(stderr, "zkc_interop[%s]: FAIL: ", o_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&out_mu);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

static char *dpath(const char *leaf)
{
    static __thread char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", o_dir, leaf);
    return buf;
}

/* Library log lines at WARN and above, on stdout, for the scripts to grep. Must
 * not call zkcoord (it runs on the library's threads). */
static void log_fn(zkc_log_level level, const char *msg, void *ud)
{
    (void)ud;
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    pthread_mutex_lock(&out_mu);
    printf("ZKCLOG %s %s\n", level <= ZKC_LOG_DEBUG ? names[level] : "?", msg);
    fflush(stdout);
    pthread_mutex_unlock(&out_mu);
}

static zkc_client *connect_client(void)
{
    zkc_client_options o;
    zkc_client_options_init(&o);
    o.hosts = o_hosts;
    o.session_timeout_ms = 10000;
    o.connect_timeout_ms = 30000;
    o.log_fn = log_fn;
    o.log_level = ZKC_LOG_WARN;
    zkc_client *c = NULL;
    int rc = zkc_client_create(&c, &o);
    if (rc) {
        fail("zkc_client_create(%s): %s: %s", o_hosts, zkc_strerror(rc), zkc_errmsg());
        return NULL;
    }
    return c;
}

/* ---- barrier: D/ready.<name> says we are connected; D/go starts everyone ---- */

static int touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int wait_file(const char *path, int timeout_ms)
{
    int64_t end = mono_ns() + (int64_t)timeout_ms * 1000000;
    while (access(path, F_OK) != 0) {
        if (mono_ns() > end)
            return -1;
        sleep_ms(5);
    }
    return 0;
}

static int barrier(void)
{
    char r[512];
    snprintf(r, sizeof r, "ready.%s", o_name);
    if (touch(dpath(r))) {
        fail("cannot create %s: %s", dpath(r), strerror(errno));
        return -1;
    }
    if (wait_file(dpath("go"), 120000)) {
        fail("no start signal %s within 120 s", dpath("go"));
        return -1;
    }
    return 0;
}

/* ---- the shared log ---- */

static int log_fd = -1;

static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_line(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n <= 0 || n >= (int)sizeof buf) {
        fail("log line too long");
        return;
    }
    /* O_APPEND and one write(2) per line: lines of all processes interleave
     * whole, in the order the writes happened. */
    if (write(log_fd, buf, (size_t)n) != n)
        fail("write to the shared log: %s", strerror(errno));
}

/* ---- locks ---- */

typedef struct worker {
    int idx;
    pthread_t th;
    zkc_client *c;
    char who[128];
} worker;

/* The sequence number and name of the node that holds `token` at path. */
static int find_own(zkc_client *c, int64_t token, int64_t *seq, char *name, size_t nlen)
{
    zkc_lock_contender *e = NULL;
    int n = 0;
    int rc = zkc_lock_contenders(c, o_path, &e, &n);
    if (rc) {
        fail("zkc_lock_contenders(%s): %s: %s", o_path, zkc_strerror(rc), zkc_errmsg());
        return -1;
    }
    int found = -1;
    for (int i = 0; i < n; i++) {
        if (e[i].czxid == token) {
            found = i;
            *seq = e[i].sequence;
            snprintf(name, nlen, "%s", e[i].name);
            if (!e[i].holds)
                fail("zkc_lock_contenders says our node %s (token %" PRId64 ") does not hold", e[i].name, token);
        }
    }
    zkc_lock_contenders_free(e, n);
    if (found < 0)
        fail("our node (czxid %" PRId64 ") is not in the queue of %s", token, o_path);
    return found < 0 ? -1 : 0;
}

/* 1 if dir holds an entry other than . and .. */
static int dir_nonempty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n > 0;
}

static void inside(worker *w, char kind, int64_t seq, int64_t token, const char *node)
{
    char marker[4096], rmarker[4096];
    snprintf(marker, sizeof marker, "%s", dpath("inside.X"));
    rmarker[0] = 0;
    if (kind == 'R') {
        /* Reader: announce, then make sure no writer is inside. */
        char leaf[256];
        snprintf(leaf, sizeof leaf, "readers/%s", w->who);
        snprintf(rmarker, sizeof rmarker, "%s", dpath(leaf));
        if (touch(rmarker))
            fail("cannot create %s: %s", rmarker, strerror(errno));
    }
    log_line("ENTER %" PRId64 " zkcoord %s %c %" PRId64 " %" PRId64 " %s\n", mono_ns(), w->who, kind, seq, token,
             node);
    if (kind == 'R') {
        if (access(marker, F_OK) == 0) {
            log_line("VIOLATION %" PRId64 " zkcoord %s reader inside while a writer is\n", mono_ns(), w->who);
            fail("%s: reader inside while a writer is", w->who);
        }
    } else {
        int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0) {
            log_line("VIOLATION %" PRId64 " zkcoord %s O_EXCL %s: %s\n", mono_ns(), w->who, marker, strerror(errno));
            fail("%s: exclusive marker %s: %s (someone else is inside)", w->who, marker, strerror(errno));
        } else {
            close(fd);
        }
        if (kind == 'W') {
            /* Writer: no reader may be inside either. */
            int busy = dir_nonempty(dpath("readers"));
            if (busy) {
                log_line("VIOLATION %" PRId64 " zkcoord %s writer inside while readers are\n", mono_ns(), w->who);
                fail("%s: writer inside while readers are", w->who);
            }
        }
    }
    sleep_ms(o_hold_ms);
    if (kind != 'R' && unlink(marker) != 0)
        fail("%s: marker %s vanished while we held the lock: %s", w->who, marker, strerror(errno));
    log_line("EXIT %" PRId64 " zkcoord %s %c %" PRId64 "\n", mono_ns(), w->who, kind, seq);
    if (kind == 'R' && unlink(rmarker) != 0)
        fail("%s: reader marker %s: %s", w->who, rmarker, strerror(errno));
}

static void *lock_worker(void *arg)
{
    worker *w = arg;
    int rw = strcmp(o_kind, "rw") == 0;
    zkc_lock *mutex = NULL;
    zkc_rwlock *rwl = NULL;
    int rc = rw ? zkc_rwlock_create(w->c, o_path, &rwl) : zkc_lock_create(w->c, o_path, &mutex);
    if (rc) {
        fail("lock create %s: %s: %s", o_path, zkc_strerror(rc), zkc_errmsg());
        return NULL;
    }
    for (int i = 0; i < o_iters; i++) {
        char kind = 'M';
        zkc_lock *l = mutex;
        if (rw) {
            /* One hold in three is a write, staggered between workers. */
            int write = (i + w->idx) % 3 == 0;
            kind = write ? 'W' : 'R';
            l = write ? zkc_rwlock_write(rwl) : zkc_rwlock_read(rwl);
        }
        int64_t token = 0;
        rc = zkc_lock_acquire(l, 60000, &token);
        if (rc) {
            fail("%s: acquire %s: %s: %s", w->who, o_path, zkc_strerror(rc), zkc_errmsg());
            break;
        }
        int64_t seq = -1;
        char node[256] = "?";
        find_own(w->c, token, &seq, node, sizeof node);
        inside(w, kind, seq, token, node);
        rc = zkc_lock_release(l);
        if (rc)
            fail("%s: release %s: %s: %s", w->who, o_path, zkc_strerror(rc), zkc_errmsg());
    }
    if (rw)
        zkc_rwlock_destroy(rwl);
    else
        zkc_lock_destroy(mutex);
    return NULL;
}

static int cmd_locks(void)
{
    if (!o_dir) {
        fprintf(stderr, "zkc_interop: --dir is required\n");
        return 2;
    }
    log_fd = open(dpath("log"), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log_fd < 0) {
        fail("open %s: %s", dpath("log"), strerror(errno));
        return 1;
    }
    mkdir(dpath("readers"), 0755);
    worker *ws = calloc((size_t)o_threads, sizeof *ws);
    for (int i = 0; i < o_threads; i++) {
        ws[i].idx = i;
        snprintf(ws[i].who, sizeof ws[i].who, "%s-%d", o_name, i);
        if (!(ws[i].c = connect_client()))
            return 1;
    }
    if (barrier())
        return 1;
    for (int i = 0; i < o_threads; i++)
        pthread_create(&ws[i].th, NULL, lock_worker, &ws[i]);
    for (int i = 0; i < o_threads; i++)
        pthread_join(ws[i].th, NULL);
    for (int i = 0; i < o_threads; i++)
        zkc_client_destroy(ws[i].c);
    free(ws);
    close(log_fd);
    return failures ? 1 : 0;
}

/* ---- counters ---- */

static int parse_fmt(zkc_format *f)
{
    if (!strcmp(o_fmt, "int64"))
        *f = ZKC_FMT_INT64;
    else if (!strcmp(o_fmt, "int32"))
        *f = ZKC_FMT_INT32;
    else if (!strcmp(o_fmt, "decimal"))
        *f = ZKC_FMT_DECIMAL;
    else
        return -1;
    return 0;
}

static zkc_counter *open_counter(zkc_client *c)
{
    zkc_counter_options co;
    zkc_counter_options_init(&co);
    if (parse_fmt(&co.format)) {
        fail("unknown format %s", o_fmt);
        return NULL;
    }
    co.max_attempts = 10000; /* heavy cross-library contention: never give up */
    zkc_counter *ctr = NULL;
    int rc = zkc_counter_create(c, o_path, &co, &ctr);
    if (rc)
        fail("zkc_counter_create(%s): %s: %s", o_path, zkc_strerror(rc), zkc_errmsg());
    return ctr;
}

typedef struct cworker {
    pthread_t th;
    zkc_counter *ctr;
    int64_t applied;
    int64_t last_after;
} cworker;

static void *counter_worker(void *arg)
{
    cworker *w = arg;
    for (int i = 0; i < o_adds; i++) {
        zkc_counter_result r;
        int rc = zkc_counter_add(w->ctr, o_delta, NULL, &r);
        if (rc) {
            fail("zkc_counter_add(%s, %" PRId64 "): %s: %s", o_path, o_delta, zkc_strerror(rc), zkc_errmsg());
            continue;
        }
        if (r.after - r.before != o_delta)
            fail("add %" PRId64 ": before %" PRId64 " after %" PRId64, o_delta, r.before, r.after);
        w->applied += o_delta;
        w->last_after = r.after;
    }
    return NULL;
}

static int cmd_counter(void)
{
    if (!o_dir) {
        fprintf(stderr, "zkc_interop: --dir is required\n");
        return 2;
    }
    zkc_client *c = connect_client();
    if (!c)
        return 1;
    zkc_counter *ctr = open_counter(c);
    if (!ctr)
        return 1;
    if (barrier())
        return 1;
    cworker *ws = calloc((size_t)o_threads, sizeof *ws);
    int64_t t0 = mono_ns();
    for (int i = 0; i < o_threads; i++) {
        ws[i].ctr = ctr;
        pthread_create(&ws[i].th, NULL, counter_worker, &ws[i]);
    }
    int64_t applied = 0;
    for (int i = 0; i < o_threads; i++) {
        pthread_join(ws[i].th, NULL);
        applied += ws[i].applied;
    }
    int64_t t1 = mono_ns();
    zkc_stats st;
    zkc_client_stats(c, &st);
    printf("RESULT %s applied=%" PRId64 " start=%" PRId64 " end=%" PRId64 " conflicts=%" PRIu64 "\n", o_name, applied,
           t0, t1, st.conflicts);
    free(ws);
    zkc_counter_destroy(ctr);
    zkc_client_destroy(c);
    return failures ? 1 : 0;
}

static int cmd_counter_one(const char *cmd)
{
    zkc_client *c = connect_client();
    if (!c)
        return 1;
    zkc_counter *ctr = open_counter(c);
    if (!ctr)
        return 1;
    int rc;
    int64_t v = 0;
    zkc_counter_result r;
    if (!strcmp(cmd, "counter-get")) {
        rc = zkc_counter_get(ctr, &v);
    } else if (!strcmp(cmd, "counter-set")) {
        rc = zkc_counter_set(ctr, o_value);
        v = o_value;
    } else {
        rc = zkc_counter_add(ctr, o_delta, NULL, &r);
        v = r.after;
    }
    if (rc)
        fail("%s %s: %s: %s", cmd, o_path, zkc_strerror(rc), zkc_errmsg());
    else
        printf("%" PRId64 "\n", v);
    zkc_counter_destroy(ctr);
    zkc_client_destroy(c);
    return failures ? 1 : 0;
}

/* ---- probe and queue ---- */

static int cmd_probe(void)
{
    zkc_client *c = connect_client();
    if (!c)
        return 1;
    zkc_lock *l = NULL;
    int rc = !strcmp(o_kind, "semaphore") ? zkc_semaphore_create(c, o_path, o_leases, &l)
                                          : zkc_lock_create(c, o_path, &l);
    if (rc) {
        fail("create %s: %s: %s", o_path, zkc_strerror(rc), zkc_errmsg());
        return 1;
    }
    int64_t token = 0;
    rc = zkc_lock_acquire(l, o_timeout_ms, &token);
    pthread_mutex_lock(&out_mu);
    printf("acquire: %s\n", rc ? zkc_strerror(rc) : "ok");
    if (rc && rc != ZKC_ETIMEDOUT)
        printf("error: %s\n", zkc_errmsg());
    fflush(stdout);
    pthread_mutex_unlock(&out_mu);
    if (!rc && o_ready)
        touch(o_ready);
    if (!rc && o_hold_until && wait_file(o_hold_until, 120000))
        fail("no release signal %s", o_hold_until);
    if (!rc)
        zkc_lock_release(l);
    if (o_again_after) {
        /* Same object, second attempt: what it logs depends on its history. */
        if (wait_file(o_again_after, 120000)) {
            fail("no signal %s", o_again_after);
        } else {
            rc = zkc_lock_acquire(l, o_timeout_ms, &token);
            pthread_mutex_lock(&out_mu);
            printf("acquire2: %s\n", rc ? zkc_strerror(rc) : "ok");
            fflush(stdout);
            pthread_mutex_unlock(&out_mu);
            if (!rc)
                zkc_lock_release(l);
        }
    }
    zkc_lock_destroy(l);
    zkc_client_destroy(c);
    return failures ? 1 : 0;
}

static int cmd_queue(void)
{
    zkc_client *c = connect_client();
    if (!c)
        return 1;
    zkc_lock_contender *e = NULL;
    int n = 0;
    int rc = zkc_lock_contenders(c, o_path, &e, &n);
    if (rc)
        fail("zkc_lock_contenders(%s): %s: %s", o_path, zkc_strerror(rc), zkc_errmsg());
    for (int i = 0; i < n; i++)
        printf("%s %" PRId64 " %d %d\n", e[i].name, e[i].sequence, e[i].kind, e[i].holds);
    zkc_lock_contenders_free(e, n);
    zkc_client_destroy(c);
    return failures ? 1 : 0;
}

/* ---- main ---- */

static int int_arg(const char *s, const char *what, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno) {
        fprintf(stderr, "zkc_interop: bad %s '%s'\n", what, s);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: zkc_interop mutex|rw|counter|counter-get|counter-set V|counter-add|probe|queue "
                        "--hosts H --path P [options] (see the source)\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *cmd = argv[1];
    int pos = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n;
#define STR(flag, var)                                                                                                 \
    if (!strcmp(a, flag) && v) {                                                                                       \
        var = v;                                                                                                       \
        i++;                                                                                                           \
        continue;                                                                                                      \
    }
#define NUM(flag, var)                                                                                                 \
    if (!strcmp(a, flag) && v) {                                                                                       \
        if (int_arg(v, flag, &n))                                                                                      \
            return 2;                                                                                                  \
        var = n;                                                                                                       \
        i++;                                                                                                           \
        continue;                                                                                                      \
    }
        STR("--hosts", o_hosts)
        STR("--path", o_path)
        STR("--dir", o_dir)
        STR("--name", o_name)
        STR("--fmt", o_fmt)
        STR("--kind", o_kind)
        STR("--hold-until", o_hold_until)
        STR("--ready", o_ready)
        STR("--again-after", o_again_after)
        NUM("--threads", o_threads)
        NUM("--iters", o_iters)
        NUM("--hold-ms", o_hold_ms)
        NUM("--adds", o_adds)
        NUM("--delta", o_delta)
        NUM("--leases", o_leases)
        NUM("--timeout-ms", o_timeout_ms)
        if (a[0] != '-' || (a[1] >= '0' && a[1] <= '9')) {
            if (pos++ == 0 && int_arg(a, "value", &o_value) == 0)
                continue;
        }
        fprintf(stderr, "zkc_interop: unexpected argument '%s'\n", a);
        return 2;
    }
    if (!o_hosts || !o_path) {
        fprintf(stderr, "zkc_interop: --hosts and --path are required\n");
        return 2;
    }
    if (!strcmp(cmd, "mutex") || !strcmp(cmd, "rw")) {
        o_kind = cmd;
        return cmd_locks();
    }
    if (!strcmp(cmd, "counter"))
        return cmd_counter();
    if (!strcmp(cmd, "counter-get") || !strcmp(cmd, "counter-set") || !strcmp(cmd, "counter-add"))
        return cmd_counter_one(cmd);
    if (!strcmp(cmd, "probe"))
        return cmd_probe();
    if (!strcmp(cmd, "queue"))
        return cmd_queue();
    fprintf(stderr, "zkc_interop: unknown command '%s'\n", cmd);
    return 2;
}
