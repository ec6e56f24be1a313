/* zkc-chaos driver: ensemble, proxies, workers, the seeded fault schedule,
 * settling, and the report. See chaos.h and tests/chaos/README.md. */
#include "chaos.h"
#include "ensemble.h"
#include "proxy.h"

#include <zookeeper/zookeeper.h>

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern __typeof__(zkc_inventory_create) zkc_inventory_create __attribute__((weak));
extern __typeof__(zkc_inventory_destroy) zkc_inventory_destroy __attribute__((weak));
extern __typeof__(zkc_inventory_stock) zkc_inventory_stock __attribute__((weak));
extern __typeof__(zkc_inventory_lookup) zkc_inventory_lookup __attribute__((weak));
extern __typeof__(zkc_inventory_return) zkc_inventory_return __attribute__((weak));
extern __typeof__(zkc_inventory_stock_fresh) zkc_inventory_stock_fresh __attribute__((weak));

/* ---------------------------------------------------------------- the schedule */

enum {
    F_LEADER_KILL = 0,
    F_FOLLOWER_KILL,
    F_LEADER_PAUSE,
    F_PROXY_CUT,
    F_DROP_REQ,
    F_DROP_REPLY,
    F_BLACKHOLE,
    F_EXPIRE,
    F_CLIENT_KILL,
    F_PARTITION,
    F_NKINDS
};

static const char *const fnames[F_NKINDS] = {
    "leader_kill9",   "follower_kill9", "leader_sigstop", "proxy_cut",    "drop_request",
    "drop_reply",     "proxy_blackhole", "session_expiry", "client_kill9", "node_partition",
};

typedef struct fault {
    int kind;
    int a, b;     /* kind-specific choices, drawn from the seed */
    int dur_ms;
    int gap_ms;   /* quiet time before it */
} fault;

static const int drop_ops[3] = {15, 5, 14}; /* create2, setData, multi */

/* The schedule is a pure function of the seed: the same seed gives the same
 * sequence of faults (targets named by role, "the leader", resolved when the
 * fault is injected). */
static fault next_fault(uint64_t *rng, int partitions, int session_ms, int soak)
{
    static const int w_local[F_NKINDS] = {10, 8, 6, 12, 10, 10, 5, 10, 8, 0};
    /* The soak (make check-soak) leans on session expiry, leader kills and
     * connection cuts, and kills no worker: the sampler follows the same
     * worker processes from start to end, so their memory can be judged. */
    static const int w_soak[F_NKINDS] = {8, 3, 3, 10, 3, 3, 2, 24, 0, 0};
    int w[F_NKINDS], total = 0;
    for (int i = 0; i < F_NKINDS; i++) {
        w[i] = soak ? w_soak[i] : w_local[i];
        if (i == F_PARTITION && partitions)
            w[i] = 14;
        total += w[i];
    }
    int r = (int)(ch_rand(rng) % (uint64_t)total);
    fault f;
    memset(&f, 0, sizeof f);
    for (f.kind = 0; f.kind < F_NKINDS - 1 && r >= w[f.kind]; f.kind++)
        r -= w[f.kind];
    f.a = (int)(ch_rand(rng) % 1000000);
    f.b = (int)(ch_rand(rng) % 1000000);
    f.gap_ms = soak ? ch_randint(rng, 500, 2500) : ch_randint(rng, 1000, 4000);
    switch (f.kind) {
    case F_LEADER_KILL:
    case F_FOLLOWER_KILL:
        f.dur_ms = ch_randint(rng, 1000, 4000);
        break;
    case F_LEADER_PAUSE:
        f.dur_ms = ch_randint(rng, session_ms * 5 / 4, session_ms * 2); /* beyond the session timeout */
        break;
    case F_DROP_REQ:
    case F_DROP_REPLY:
        f.dur_ms = ch_randint(rng, 1500, 5000);
        break;
    case F_BLACKHOLE:
        f.dur_ms = ch_randint(rng, 1000, 6000);
        break;
    case F_PARTITION:
        f.dur_ms = ch_randint(rng, 3000, 10000);
        break;
    default:
        f.dur_ms = 0;
    }
    return f;
}

/* ---------------------------------------------------------------- driver state */

typedef struct wrec {
    int wid;
    pid_t pid;
    int alive;
    int killed;   /* by the schedule */
    int stopping; /* SIGTERM sent at settle */
    int status;
    int epoch;
} wrec;

static struct drv {
    char dir[4096];
    char self[4096];
    ch_shape sh;
    char shape_arg[256];
    uint64_t seed;
    int workers;
    int docker;
    int partitions;
    int soak;            /* --soak: the soak's schedule (above); expiries hit 1..all workers */
    int64_t expired;     /* sessions the driver expired */
    int running;         /* atomic: workers up and faults on (the sampler's rows that count) */
    int verbose;
    int keep;
    zkh_ensemble *e;
    int n;
    zkh_proxy *px[8];
    char proxied[1024];
    char direct[1024];
    ch_shm *m;
    ch_hist *h;
    wrec w[CH_MAX_WORKERS];
    int last_wid;
    int epoch;
    int64_t t0;
    int64_t faults[F_NKINDS];
    int64_t fired_drops;
    int64_t skipped;
    int paused[8], down[8], cut[8];
    int interrupted;
    int64_t worker_failures;
    int64_t harness_failures;
    sigset_t sigs;
} D;

static double elapsed(void)
{
    return (ch_now_ns() - D.t0) / 1e9;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    printf("[%7.1fs] %s\n", elapsed(), buf);
    fflush(stdout);
}

static int64_t progress_acq(void)
{
    int64_t s = 0;
    for (int i = 0; i < CH_MAX_WORKERS; i++)
        s += __atomic_load_n(&D.m->w[i].acquisitions, __ATOMIC_RELAXED);
    return s;
}

static int64_t progress_upd(void)
{
    int64_t s = 0;
    for (int i = 0; i < CH_MAX_WORKERS; i++)
        s += __atomic_load_n(&D.m->w[i].updates, __ATOMIC_RELAXED);
    return s;
}

static void tail_file(const char *path, int lines)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char *ring[64] = {0};
    int n = 0;
    char *line = NULL;
    size_t cap = 0;
    if (lines > 64)
        lines = 64;
    while (getline(&line, &cap, f) > 0) {
        free(ring[n % lines]);
        ring[n % lines] = strdup(line);
        n++;
    }
    free(line);
    fclose(f);
    int start = n > lines ? n - lines : 0;
    for (int i = start; i < n; i++) {
        printf("    | %s", ring[i % lines]);
        free(ring[i % lines]);
    }
}

static void worker_out_path(int wid, char *buf, size_t len)
{
    snprintf(buf, len, "%s/worker-%d.out", D.dir, wid);
}

/* ---------------------------------------------------------------- children */

static void handle_exit(wrec *w, int status)
{
    w->alive = 0;
    w->status = status;
    if (w->killed)
        return;
    int ok = w->stopping && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok)
        return;
    D.worker_failures++;
    char what[128];
    if (WIFSIGNALED(status))
        snprintf(what, sizeof what, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(what, sizeof what, "exit status %d", WEXITSTATUS(status));
    ch_log(D.h, "DIED wid=%d pid=%d what=%s", w->wid, (int)w->pid, what);
    say("VIOLATION worker_failed: worker %d (pid %d) %s%s; its last output:", w->wid, (int)w->pid, what,
        w->stopping ? " at shutdown" : " during the run");
    char p[4200];
    worker_out_path(w->wid, p, sizeof p);
    tail_file(p, 15);
}

static int spawn_worker(void);

static void reap(void)
{
    for (int i = 1; i <= D.last_wid; i++) {
        wrec *w = &D.w[i];
        if (!w->alive)
            continue;
        int st = 0;
        pid_t r = waitpid(w->pid, &st, WNOHANG);
        if (r == w->pid) {
            int unexpected = !w->killed && !w->stopping;
            handle_exit(w, st);
            if (unexpected && !D.interrupted)
                spawn_worker(); /* keep the load up; the death is already a violation */
        }
    }
}

/* Wait ms, serving child exits and interrupts meanwhile (an event wait, not a
 * sleep: SIGCHLD wakes it). Returns -1 once interrupted. */
static int drv_wait(int ms)
{
    int64_t end = ch_now_ns() + (int64_t)ms * 1000000;
    for (;;) {
        reap();
        if (D.interrupted)
            return -1;
        int64_t left = end - ch_now_ns();
        if (left <= 0)
            return 0;
        struct timespec ts = {left / 1000000000, left % 1000000000};
        int sig = sigtimedwait(&D.sigs, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            D.interrupted = 1;
            say("interrupted (signal %d): stopping", sig);
        }
    }
}

static int spawn_worker(void)
{
    if (D.last_wid + 1 >= CH_MAX_WORKERS) {
        say("no worker ids left (%d): not spawning", CH_MAX_WORKERS);
        return -1;
    }
    int wid = ++D.last_wid;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return -1;
    char out[4200], wids[16], seeds[32], fds[8];
    worker_out_path(wid, out, sizeof out);
    snprintf(wids, sizeof wids, "%d", wid);
    snprintf(seeds, sizeof seeds, "%" PRIu64, D.seed);
    snprintf(fds, sizeof fds, "3");
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            if (fd > 2)
                close(fd);
        }
        dup2(pfd[1], 3);
        execl(D.self, D.self, "--worker", "--wid", wids, "--dir", D.dir, "--hosts", D.proxied, "--seed",
              seeds, "--shape", D.shape_arg, "--ready-fd", fds, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    wrec *w = &D.w[wid];
    memset(w, 0, sizeof *w);
    w->wid = wid;
    w->pid = pid;
    w->alive = 1;
    w->epoch = D.epoch;
    ch_log(D.h, "SPAWN wid=%d pid=%d", wid, (int)pid);
    /* Ready = connected and threads started (one byte on the pipe). */
    struct pollfd p = {pfd[0], POLLIN, 0};
    int64_t end = ch_now_ns() + 45000LL * 1000000;
    int ready = 0;
    while (!ready) {
        int64_t left = (end - ch_now_ns()) / 1000000;
        if (left <= 0)
            break;
        int r = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
        if (r > 0) {
            char b;
            ready = read(pfd[0], &b, 1) == 1;
            break;
        }
        reap();
        if (!w->alive)
            break;
    }
    close(pfd[0]);
    if (!ready)
        say("worker %d (pid %d) not ready within 45 s%s", wid, (int)pid, w->alive ? "" : ": it died");
    return ready ? wid : -1;
}

/* ---------------------------------------------------------------- ensemble health */

static int node_serving(int i)
{
    char buf[512];
    int r = zkh_four_letter(zkh_node_hostport(D.e, i), "srvr", buf, sizeof buf, 1500);
    return r > 0 && strstr(buf, "Mode: ") != NULL;
}

/* Every node serves and one leads (polling: a server coming up sends no event). */
static int wait_all_serving(int timeout_ms)
{
    int64_t end = ch_now_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int ok = zkh_leader(D.e) >= 0;
        for (int i = 0; ok && i < D.n; i++)
            ok = node_serving(i);
        if (ok)
            return 0;
        if (ch_now_ns() > end || drv_wait(200) < 0)
            return -1;
    }
}

static int leader(void)
{
    int l = zkh_leader(D.e);
    if (l < 0 && zkh_wait_quorum(D.e, 30000) == 0)
        l = zkh_leader(D.e);
    return l;
}

static int live_workers(int *out)
{
    int n = 0;
    for (int i = 1; i <= D.last_wid; i++)
        if (D.w[i].alive && !D.w[i].killed && !D.w[i].stopping)
            out[n++] = i;
    return n;
}

static void heal_all(void)
{
    for (int i = 0; i < D.n; i++) {
        if (D.paused[i] && zkh_node_resume(D.e, i) == 0)
            D.paused[i] = 0;
        if (D.cut[i] && zkh_node_connect(D.e, i) == 0)
            D.cut[i] = 0;
        if (D.down[i] && zkh_node_start(D.e, i) == 0)
            D.down[i] = 0;
    }
    for (int i = 0; i < D.n; i++) {
        zkh_proxy_drop_request(D.px[i], 0, 0);
        zkh_proxy_drop_reply(D.px[i], 0, 0);
        zkh_proxy_blackhole(D.px[i], 0);
    }
}

/* After a fault: all nodes back, or it is the harness's failure (logged). */
static void recover(const char *what)
{
    if (wait_all_serving(90000) != 0 && !D.interrupted) {
        D.harness_failures++;
        say("ensemble did not recover within 90 s after %s", what);
        heal_all();
    }
}

/* ---------------------------------------------------------------- faults */

static void inject(int no, const fault *f)
{
    char desc[256] = "";
    int kind = f->kind;
    int64_t fired0 = 0;
    switch (kind) {
    case F_LEADER_KILL:
    case F_FOLLOWER_KILL:
    case F_LEADER_PAUSE: {
        int l = leader();
        if (l < 0) {
            D.skipped++;
            say("fault #%d %s: no leader, skipped", no, fnames[kind]);
            return;
        }
        int node = l;
        if (kind == F_FOLLOWER_KILL) {
            int k = f->a % (D.n - 1), j = 0;
            for (node = 0; node < D.n; node++)
                if (node != l && j++ == k)
                    break;
        }
        snprintf(desc, sizeof desc, "node %d%s, %.1f s", node, node == l ? " (leader)" : "", f->dur_ms / 1000.0);
        ch_log(D.h, "FAULT no=%d kind=%s node=%d dur=%d", no, fnames[kind], node, f->dur_ms);
        int r = kind == F_LEADER_PAUSE ? zkh_node_pause(D.e, node) : zkh_node_kill9(D.e, node);
        if (r != 0) {
            say("fault #%d %s on node %d failed: %s", no, fnames[kind], node, strerror(-r));
            D.skipped++;
            return;
        }
        if (kind == F_LEADER_PAUSE)
            D.paused[node] = 1;
        else
            D.down[node] = 1;
        D.faults[kind]++;
        say("fault #%d %s %s | acq %" PRId64 " upd %" PRId64, no, fnames[kind], desc, progress_acq(), progress_upd());
        drv_wait(f->dur_ms);
        if (kind == F_LEADER_PAUSE) {
            if (zkh_node_resume(D.e, node) == 0)
                D.paused[node] = 0;
        } else if (zkh_node_start(D.e, node) == 0) {
            D.down[node] = 0;
        }
        ch_log(D.h, "HEAL no=%d", no);
        recover(fnames[kind]);
        return;
    }
    case F_PARTITION: {
        int node = f->a % (D.n + 1);
        node = node == D.n ? leader() : node;
        if (node < 0) {
            D.skipped++;
            return;
        }
        ch_log(D.h, "FAULT no=%d kind=%s node=%d dur=%d", no, fnames[kind], node, f->dur_ms);
        int r = zkh_node_disconnect(D.e, node);
        if (r != 0) {
            say("fault #%d partition of node %d failed: %s", no, node, strerror(-r));
            D.skipped++;
            return;
        }
        D.cut[node] = 1;
        D.faults[kind]++;
        say("fault #%d %s node %d cut off for %.1f s | acq %" PRId64 " upd %" PRId64, no, fnames[kind], node,
            f->dur_ms / 1000.0, progress_acq(), progress_upd());
        drv_wait(f->dur_ms);
        if (zkh_node_connect(D.e, node) == 0)
            D.cut[node] = 0;
        ch_log(D.h, "HEAL no=%d", no);
        recover(fnames[kind]);
        return;
    }
    case F_PROXY_CUT: {
        int which = f->a % (D.n + 1); /* D.n: every proxy */
        ch_log(D.h, "FAULT no=%d kind=%s proxy=%d", no, fnames[kind], which);
        for (int i = 0; i < D.n; i++)
            if (which == D.n || which == i)
                zkh_proxy_cut(D.px[i]);
        D.faults[kind]++;
        say("fault #%d %s %s | acq %" PRId64 " upd %" PRId64, no, fnames[kind],
            which == D.n ? "all proxies" : "one proxy", progress_acq(), progress_upd());
        return;
    }
    case F_DROP_REQ:
    case F_DROP_REPLY: {
        int op = drop_ops[f->a % 3];
        int count = 1 + f->b % 3;
        ch_log(D.h, "FAULT no=%d kind=%s op=%d count=%d dur=%d", no, fnames[kind], op, count, f->dur_ms);
        for (int i = 0; i < D.n; i++) {
            fired0 += zkh_proxy_faults_fired(D.px[i]);
            if (kind == F_DROP_REQ)
                zkh_proxy_drop_request(D.px[i], op, count);
            else
                zkh_proxy_drop_reply(D.px[i], op, count);
        }
        drv_wait(f->dur_ms);
        int64_t fired = -fired0;
        for (int i = 0; i < D.n; i++) {
            if (kind == F_DROP_REQ)
                zkh_proxy_drop_request(D.px[i], op, 0);
            else
                zkh_proxy_drop_reply(D.px[i], op, 0);
            fired += zkh_proxy_faults_fired(D.px[i]);
        }
        D.fired_drops += fired;
        D.faults[kind]++;
        ch_log(D.h, "HEAL no=%d fired=%" PRId64, no, fired);
        say("fault #%d %s op %d x%d per proxy for %.1f s: %" PRId64 " fired | acq %" PRId64 " upd %" PRId64, no,
            fnames[kind], op, count, f->dur_ms / 1000.0, fired, progress_acq(), progress_upd());
        return;
    }
    case F_BLACKHOLE: {
        int which = f->a % D.n;
        ch_log(D.h, "FAULT no=%d kind=%s proxy=%d dur=%d", no, fnames[kind], which, f->dur_ms);
        zkh_proxy_blackhole(D.px[which], 1);
        D.faults[kind]++;
        say("fault #%d %s proxy %d for %.1f s | acq %" PRId64 " upd %" PRId64, no, fnames[kind], which,
            f->dur_ms / 1000.0, progress_acq(), progress_upd());
        drv_wait(f->dur_ms);
        zkh_proxy_blackhole(D.px[which], 0);
        ch_log(D.h, "HEAL no=%d", no);
        return;
    }
    case F_EXPIRE: {
        int live[CH_MAX_WORKERS];
        int n = live_workers(live);
        if (n == 0) {
            D.skipped++;
            return;
        }
        /* The soak expires 1..n workers at once (drawn from the seed): it
         * needs 10^3 session losses in an hour or so. */
        int count = D.soak ? 1 + f->b % n : 1;
        int nexp = 0;
        for (int k = 0; k < count; k++) {
            int wid = live[(f->a + k) % n];
            ch_wslot *s = &D.m->w[wid];
            ch_robust_lock(&s->mu);
            int64_t sid = s->session_id;
            char pw[16];
            memcpy(pw, s->passwd, sizeof pw);
            int pl = s->passwd_len;
            pthread_mutex_unlock(&s->mu);
            ch_log(D.h, "EXPIRE wid=%d sid=%" PRIx64, wid, (uint64_t)sid);
            int r = zkh_expire_session(D.direct, sid, pw, pl, 10000);
            ch_log(D.h, "EXPIRED wid=%d sid=%" PRIx64 " rc=%d", wid, (uint64_t)sid, r);
            nexp += r == 0;
            say("fault #%d %s worker %d session 0x%" PRIx64 ": %s | acq %" PRId64 " upd %" PRId64, no,
                fnames[kind], wid, (uint64_t)sid, r == 0 ? "expired" : r == -ESTALE ? "already gone" : strerror(-r),
                progress_acq(), progress_upd());
        }
        __atomic_add_fetch(&D.expired, nexp, __ATOMIC_RELAXED);
        D.faults[kind]++;
        return;
    }
    case F_CLIENT_KILL: {
        /* Prefer a worker that holds a lock right now (polling shared memory:
         * holding is not an event the driver can wait for). */
        int live[CH_MAX_WORKERS], cand[CH_MAX_WORKERS];
        int nc = 0, n = 0;
        int64_t end = ch_now_ns() + 3000LL * 1000000;
        do {
            n = live_workers(live);
            nc = 0;
            for (int i = 0; i < n; i++)
                if (__atomic_load_n(&D.m->w[live[i]].held, __ATOMIC_ACQUIRE) > 0)
                    cand[nc++] = live[i];
            if (nc || n == 0)
                break;
            ch_nap_ms(5);
        } while (ch_now_ns() < end);
        if (n == 0) {
            D.skipped++;
            return;
        }
        int holding = nc > 0;
        int wid = holding ? cand[f->a % nc] : live[f->a % n];
        wrec *w = &D.w[wid];
        w->killed = 1;
        ch_log(D.h, "KILL wid=%d pid=%d holding=%d", wid, (int)w->pid, holding);
        kill(w->pid, SIGKILL);
        int st = 0;
        if (waitpid(w->pid, &st, 0) == w->pid)
            handle_exit(w, st);
        D.faults[kind]++;
        say("fault #%d %s worker %d (pid %d)%s | acq %" PRId64 " upd %" PRId64, no, fnames[kind], wid, (int)w->pid,
            holding ? " while holding a lock" : " (no holder found)", progress_acq(), progress_upd());
        int nw = spawn_worker();
        if (nw > 0)
            say("replacement worker %d started", nw);
        return;
    }
    }
}

/* ---------------------------------------------------------------- admin client */

static zkc_client *admin_client(const char *hosts)
{
    zkc_client_options o;
    zkc_client_options_init(&o);
    o.hosts = hosts;
    o.session_timeout_ms = D.sh.session_ms;
    o.connect_timeout_ms = 30000;
    o.auth_scheme = "digest";
    o.auth_credential = CH_AUTH;
    o.acl = ZKC_ACL_CREATOR;
    zkc_client *c = NULL;
    int rc = zkc_client_create(&c, &o);
    if (rc) {
        say("admin client for %s: %s", hosts, zkc_errmsg());
        return NULL;
    }
    return c;
}

/* The leader alone: the final reads must see every committed write. */
static zkc_client *leader_client(void)
{
    int l = leader();
    return admin_client(l >= 0 ? zkh_node_hostport(D.e, l) : D.direct);
}

static int read_counters(zkc_client *c, int64_t *vals)
{
    char p[256];
    for (int i = 0; i < ch_counter_count(&D.sh); i++) {
        zkc_counter *ctr = NULL;
        ch_counter_path(&D.sh, i, p, sizeof p);
        int rc = zkc_counter_create(c, p, NULL, &ctr);
        if (!rc)
            rc = zkc_counter_get(ctr, &vals[i]);
        zkc_counter_destroy(ctr);
        if (rc) {
            say("reading counter %s: %s", p, zkc_errmsg());
            return rc;
        }
    }
    return 0;
}

static int inventory_baseline(zkc_client *c, int64_t *total, int64_t *sold)
{
    for (int i = 0; i < CH_MAX_SKUS; i++)
        total[i] = sold[i] = 0;
    if (!ch_inventory_linked() || !zkc_inventory_stock)
        return 0;
    zkc_inventory *inv = NULL;
    if (zkc_inventory_create(c, CH_INV_ROOT, &inv) != 0)
        return 0;
    for (int i = 0; i < D.sh.skus; i++) {
        char sku[32];
        ch_sku_name(i, sku, sizeof sku);
        zkc_inventory_stock_info si;
        memset(&si, 0, sizeof si);
        if (zkc_inventory_stock(inv, sku, &si) == 0) {
            total[i] = si.total;
            sold[i] = si.sold;
        }
    }
    zkc_inventory_destroy(inv);
    return 0;
}

/* ---------------------------------------------------------------- settling */

/* Every thread's stack of a wedged worker, when gdb is installed (bounded). */
static void dump_stacks(const wrec *w)
{
    if (system("command -v gdb >/dev/null 2>&1") != 0) {
        say("(install gdb to get the stacks of a wedged worker)");
        return;
    }
    char cmd[4600], out[4200];
    snprintf(out, sizeof out, "%s/stacks-%d.txt", D.dir, w->wid);
    snprintf(cmd, sizeof cmd,
             "timeout 60 gdb -p %d -batch -nx -ex 'set pagination off' -ex 'thread apply all bt' >'%s' 2>&1",
             (int)w->pid, out);
    if (system(cmd) != 0)
        say("gdb on worker %d failed", w->wid);
    snprintf(cmd, sizeof cmd, "grep -E '^(Thread|#)' '%s' | grep -v '^#[0-9]* *0x[0-9a-f]* in ?? ' | head -80", out);
    say("stacks of worker %d (%s):", w->wid, out);
    if (system(cmd) != 0)
        say("(no stacks)");
}

static void stop_workers(int timeout_ms)
{
    for (int i = 1; i <= D.last_wid; i++) {
        wrec *w = &D.w[i];
        if (w->alive && !w->killed) {
            w->stopping = 1;
            kill(w->pid, SIGTERM);
        }
    }
    int64_t end = ch_now_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int alive = 0;
        for (int i = 1; i <= D.last_wid; i++)
            alive += D.w[i].alive;
        if (!alive)
            return;
        if (ch_now_ns() > end)
            break;
        int was = D.interrupted;
        drv_wait(200);
        D.interrupted = was || D.interrupted;
    }
    for (int i = 1; i <= D.last_wid; i++) {
        wrec *w = &D.w[i];
        if (!w->alive)
            continue;
        say("VIOLATION worker_failed: worker %d did not quiesce within %d s; killing it", w->wid, timeout_ms / 1000);
        dump_stacks(w);
        D.worker_failures++;
        ch_log(D.h, "HUNG wid=%d", w->wid);
        w->killed = 1;
        kill(w->pid, SIGKILL);
        int st;
        waitpid(w->pid, &st, 0);
        w->alive = 0;
        char p[4200];
        worker_out_path(w->wid, p, sizeof p);
        tail_file(p, 10);
    }
}

/* Orphans: every lock queue empty once the killed workers' sessions expired. */
static int64_t wait_no_orphans(zkc_client *c, int timeout_ms, int report)
{
    int nl = ch_lock_count(&D.sh);
    int64_t end = ch_now_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int64_t left = 0;
        int last_round = ch_now_ns() > end;
        for (int i = 0; i < nl; i++) {
            char p[256];
            ch_lock_path(&D.sh, i, p, sizeof p);
            zkc_lock_contender *q = NULL;
            int n = 0;
            int rc = zkc_lock_contenders(c, p, &q, &n);
            if (rc) {
                left++;
                if (last_round)
                    say("orphan check: listing %s: %s", p, zkc_errmsg());
                continue;
            }
            left += n;
            if (last_round && report)
                for (int k = 0; k < n; k++)
                    say("VIOLATION orphan_nodes: %s/%s (owner session 0x%" PRIx64 ", created %" PRId64 ")", p,
                        q[k].name, (uint64_t)q[k].session_id, q[k].ctime_ms);
            zkc_lock_contenders_free(q, n);
        }
        if (!left || last_round)
            return left;
        drv_wait(250);
    }
}

/* ---------------------------------------------------------------- cleanup */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---------------------------------------------------------------- soak sampler
 * --sample FILE: a thread that writes one CSV row every --sample-ms: resident
 * memory, open descriptors and threads summed over the live workers (read from
 * /proc, the pids from shared memory), the ZooKeeper side (mntr: nodes and
 * ephemerals on the leader, watches and connections summed over the servers),
 * and the progress counters. tests/chaos/soak.sh judges and charts it. A
 * thread of the driver rather than a process of its own: it needs the worker
 * slots and the ensemble's addresses, and must stop before the ensemble does. */

static struct sampler {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    int ms;
    FILE *f;
    zhandle_t *zh; /* raw handle for the key-store counts */
} S = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* VmRSS (kB) and Threads of a child of ours; -1 if it is gone, a zombie or
 * someone else's (a recycled pid). */
static int proc_status(pid_t pid, long *rss_kb, long *threads)
{
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
    FILE *f = fopen(p, "r");
    if (!f)
        return -1;
    long ppid = -1;
    *rss_kb = -1;
    *threads = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "PPid:", 5))
            ppid = atol(line + 5);
        else if (!strncmp(line, "VmRSS:", 6))
            *rss_kb = atol(line + 6);
        else if (!strncmp(line, "Threads:", 8))
            *threads = atol(line + 8);
    }
    fclose(f);
    return ppid == (long)getpid() && *rss_kb >= 0 ? 0 : -1;
}

static long proc_fds(pid_t pid)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(p);
    if (!d)
        return 0;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static long self_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

static long mntr_value(const char *text, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = text; (p = strstr(p, key)); p += kl)
        if ((p == text || p[-1] == '\n') && (p[kl] == '\t' || p[kl] == ' '))
            return atol(p + kl + 1);
    return -1;
}

static void raw_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx);

/* The sampler's handle loses its server at every fault; that is not news. */
static void quiet_log(const char *msg)
{
    (void)msg;
}

/* Records of a bucketed key store (dir/<bucket>/<record>): by design they stay
 * for marker_retention_s (24 h) until zkc_admin_cleanup / zkc_inventory_reap
 * sweep them, so they grow with keyed operations; the verdict judges the other
 * nodes and reports these apart. -1 when the servers do not answer. */
static long count_records(const char *dir)
{
    if (S.zh && zoo_state(S.zh) == ZOO_EXPIRED_SESSION_STATE) {
        zookeeper_close(S.zh);
        S.zh = NULL;
    }
    if (!S.zh) {
        S.zh = zookeeper_init2(D.direct, raw_watcher, 10000, NULL, NULL, 0, quiet_log);
        if (S.zh)
            zoo_add_auth(S.zh, "digest", CH_AUTH, (int)strlen(CH_AUTH), NULL, NULL);
    }
    if (!S.zh || zoo_state(S.zh) != ZOO_CONNECTED_STATE)
        return -1;
    struct String_vector b = {0, NULL};
    int rc = zoo_get_children(S.zh, dir, 0, &b);
    if (rc == ZNONODE)
        return 0;
    if (rc != ZOK)
        return -1;
    long n = 0;
    for (int i = 0; i < b.count && n >= 0; i++) {
        char p[512];
        struct Stat st;
        snprintf(p, sizeof p, "%s/%s", dir, b.data[i]);
        rc = zoo_exists(S.zh, p, 0, &st);
        if (rc == ZOK)
            n += st.numChildren;
        else if (rc != ZNONODE)
            n = -1;
    }
    deallocate_String_vector(&b);
    return n;
}

static void sample_row(int64_t *ops_prev, double *t_prev)
{
    long rss = 0, rss_max = 0, fds = 0, thr = 0, nw = 0;
    int64_t sl = 0, ll = 0;
    for (int i = 1; i < CH_MAX_WORKERS; i++) {
        ch_wslot *w = &D.m->w[i];
        sl += __atomic_load_n(&w->sessions_lost, __ATOMIC_RELAXED);
        ll += __atomic_load_n(&w->locks_lost, __ATOMIC_RELAXED);
        pid_t pid = __atomic_load_n(&w->pid, __ATOMIC_RELAXED);
        long r, t;
        if (pid <= 0 || proc_status(pid, &r, &t) != 0)
            continue;
        nw++;
        rss += r;
        rss_max = r > rss_max ? r : rss_max;
        thr += t;
        fds += proc_fds(pid);
    }
    long znodes = -1, eph = -1, watches = 0, conns = 0;
    for (int i = 0; i < D.n; i++) {
        char buf[8192];
        if (zkh_four_letter(zkh_node_hostport(D.e, i), "mntr", buf, sizeof buf, 700) <= 0)
            continue;
        long w = mntr_value(buf, "zk_watch_count"), c = mntr_value(buf, "zk_num_alive_connections");
        watches += w > 0 ? w : 0;
        conns += c > 0 ? c : 0;
        long z = mntr_value(buf, "zk_znode_count");
        if (strstr(buf, "zk_server_state\tleader") || znodes < 0) {
            znodes = z;
            eph = mntr_value(buf, "zk_ephemerals_count");
        }
    }
    long keys = count_records("/zkcoord/keys"), reqs = count_records(CH_INV_ROOT "/req");
    int64_t ops = progress_acq() + progress_upd();
    int64_t nf = 0;
    for (int i = 0; i < F_NKINDS; i++)
        nf += __atomic_load_n(&D.faults[i], __ATOMIC_RELAXED);
    double t = elapsed();
    double rate = t > *t_prev ? (ops - *ops_prev) / (t - *t_prev) : 0;
    fprintf(S.f,
            "%.1f,%d,%d,%ld,%" PRId64 ",%.0f,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%" PRId64 ",%" PRId64
            ",%" PRId64 ",%" PRId64 "\n",
            t, __atomic_load_n(&D.epoch, __ATOMIC_RELAXED), __atomic_load_n(&D.running, __ATOMIC_RELAXED), nw, ops,
            rate, rss, rss_max, fds, thr, self_rss_kb(), znodes, eph, keys >= 0 && reqs >= 0 ? keys + reqs : -1,
            znodes >= 0 && keys >= 0 && reqs >= 0 ? znodes - keys - reqs : -1, watches, conns, sl, ll,
            __atomic_load_n(&D.expired, __ATOMIC_RELAXED), nf);
    fflush(S.f);
    *ops_prev = ops;
    *t_prev = t;
}

static void *sampler_main(void *arg)
{
    (void)arg;
    int64_t ops_prev = progress_acq() + progress_upd();
    double t_prev = elapsed();
    fprintf(S.f, "t_s,epoch,running,workers,ops,ops_per_s,rss_kb,rss_kb_max,fds,threads,driver_rss_kb,znodes,"
                 "ephemerals,key_records,other_nodes,watches,connections,sessions_lost,locks_lost,expired,faults\n");
    pthread_mutex_lock(&S.mu);
    while (!S.stop) {
        pthread_mutex_unlock(&S.mu);
        sample_row(&ops_prev, &t_prev);
        pthread_mutex_lock(&S.mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (int64_t)S.ms * 1000000;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        while (!S.stop && pthread_cond_timedwait(&S.cv, &S.mu, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&S.mu);
    sample_row(&ops_prev, &t_prev);
    return NULL;
}

static int sampler_start(const char *path, int ms)
{
    S.f = fopen(path, "w");
    if (!S.f) {
        fprintf(stderr, "zkc-chaos: --sample %s: %s\n", path, strerror(errno));
        return -1;
    }
    S.ms = ms;
    if (pthread_create(&S.th, NULL, sampler_main, NULL) != 0) {
        fclose(S.f);
        S.f = NULL;
        return -1;
    }
    return 0;
}

static void sampler_stop(void)
{
    if (!S.f)
        return;
    pthread_mutex_lock(&S.mu);
    S.stop = 1;
    pthread_cond_signal(&S.cv);
    pthread_mutex_unlock(&S.mu);
    pthread_join(S.th, NULL);
    if (S.zh)
        zookeeper_close(S.zh);
    S.zh = NULL;
    fclose(S.f);
    S.f = NULL;
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
    printf("usage: zkc-chaos [--seconds N] [--long HOURS] [--epoch SECONDS] [--seed S] [--workers N]\n"
           "                 [--partitions] [--window N] [--counter-rate N] [--think MS] [--no-queued] [--keep]\n"
           "                 [--verbose] [--print-schedule N] [--self-test] [--soak] [--sample FILE] [--sample-ms N]\n"
           "                 [--min-acquisitions N] [--min-updates N] [--min-permits N]\n"
           "  --seconds N        fault-schedule time (default $CHAOS_SECONDS, else 60)\n"
           "  --long HOURS       soak: HOURS of faults, checked every --epoch seconds (default 1800)\n"
           "  --seed S           fault schedule seed (printed; the same seed replays the same schedule)\n"
           "  --workers N        client processes (default 4)\n"
           "  --partitions       also cut a node from the others (docker backend; default there)\n"
           "  --counter-rate N   async adds per second per worker (default 150; 0 = as fast as the window allows)\n"
           "  --think MS         lock threads pause 0..MS between acquisitions (default 20)\n"
           "  --no-queued        every counter direct (default: c1, c5, .., s1, .. queued; c3, c7, .., s3, .. auto)\n"
           "  --print-schedule N print the first N faults of the seed's schedule and exit\n"
           "  --self-test        after the run (30 s unless --seconds), plant one inconsistency per checker in\n"
           "                     copies of the history and require each to be caught\n"
           "  --min-acquisitions N, --min-updates N   throughput floors, counted as checks\n"
           "  --min-permits N    floor of hard rate-limit permits granted (its checker is not vacuous)\n"
           "  --soak             the soak's schedule: mostly session expiry (1..all workers at once), leader\n"
           "                     kills and connection cuts, shorter gaps, no worker kill -9 (make check-soak)\n"
           "  --sample FILE      write a CSV row every --sample-ms (default 5000) of the workers' memory,\n"
           "                     descriptors, threads, the servers' nodes/watches/connections and progress\n"
           "env: ZKH_BACKEND=docker for the docker ensemble; CHAOS_SECONDS; ZKC_CHAOS_KEEP=1 keeps the run dir\n");
}

static uint64_t random_seed(void)
{
    uint64_t s = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd >= 0) {
        if (read(fd, &s, sizeof s) != (ssize_t)sizeof s)
            s = 0;
        close(fd);
    }
    if (!s)
        s = (uint64_t)ch_now_ns() ^ ((uint64_t)getpid() << 32);
    return s % 1000000000000ULL;
}

typedef struct totals {
    ch_check_out o;
    int epochs;
} totals;

static void add_out(ch_check_out *a, const ch_check_out *b)
{
    for (int i = 0; i < V_NKINDS; i++)
        a->violations[i] += b->violations[i];
    a->operations += b->operations;
    a->acquisitions += b->acquisitions;
    a->counter_updates += b->counter_updates;
    a->counter_ops += b->counter_ops;
    a->unknown_outcomes += b->unknown_outcomes;
    a->lookups += b->lookups;
    a->fence_accepted += b->fence_accepted;
    a->fence_rejected += b->fence_rejected;
    a->doubts += b->doubts;
    a->replays += b->replays;
    a->inv_ops += b->inv_ops;
    a->inv_reserved += b->inv_reserved;
    a->keyed_resolved += b->keyed_resolved;
    a->unknown_unresolved += b->unknown_unresolved;
    a->queued_updates += b->queued_updates;
    a->queued_counters += b->queued_counters;
    a->queued_chained += b->queued_chained;
    a->inexact_counters |= b->inexact_counters;
    a->inexact_skus |= b->inexact_skus;
    a->inventory_on |= b->inventory_on;
    a->rl_grants += b->rl_grants;
    a->rl_permits += b->rl_permits;
    if (b->rl_busiest > a->rl_busiest)
        a->rl_busiest = b->rl_busiest;
}

/* Self-test of the orphan check: a persistent junk member in a lock queue,
 * planted (create=1) and removed (create=0) with the raw C client. */
static void raw_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh, (void)type, (void)state, (void)path, (void)ctx;
}

/* A raw handle on the direct hosts, connected and authenticated as the
 * workers are (so it may touch their nodes); NULL when it is not, within 10 s.
 * Test plumbing for the self-test's plants and the queue listing. */
static zhandle_t *raw_authed(void)
{
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    zhandle_t *zh = zookeeper_init(D.direct, raw_watcher, 10000, NULL, NULL, 0);
    if (!zh)
        return NULL;
    for (int i = 0; i < 100 && zoo_state(zh) != ZOO_CONNECTED_STATE; i++)
        ch_nap_ms(100); /* the raw handle's connect: bounded poll, test plumbing only */
    if (zoo_state(zh) != ZOO_CONNECTED_STATE ||
        zoo_add_auth(zh, "digest", CH_AUTH, (int)strlen(CH_AUTH), NULL, NULL) != ZOK) {
        zookeeper_close(zh);
        return NULL;
    }
    return zh;
}

static int plant_orphan(int create)
{
    char p[300], node[400];
    ch_lock_path(&D.sh, 0, p, sizeof p);
    snprintf(node, sizeof node, "%s/_c_selftest-lock-0000999999", p);
    zhandle_t *zh = raw_authed();
    if (!zh)
        return -1;
    int rc;
    if (create) {
        zoo_create(zh, CH_ROOT, NULL, -1, &ZOO_CREATOR_ALL_ACL, 0, NULL, 0);
        zoo_create(zh, CH_ROOT "/lock", NULL, -1, &ZOO_CREATOR_ALL_ACL, 0, NULL, 0);
        zoo_create(zh, p, NULL, -1, &ZOO_CREATOR_ALL_ACL, 0, NULL, 0);
        rc = zoo_create(zh, node, "junk", 4, &ZOO_CREATOR_ALL_ACL, 0, NULL, 0);
    } else {
        rc = zoo_delete(zh, node, -1);
    }
    zookeeper_close(zh);
    return rc;
}

/* Queued counters (ch_counter_mode: ALWAYS and AUTO). A batch stays queued until some client
 * applies it (lib/counter_queue.c: persistent, never dropped): one whose
 * enqueuer was killed, or gave up with ZKC_EUNKNOWN, after the last add of
 * every other client is still there when the workers have stopped. The
 * driver drains each queued counter with a queued add of 0 (its batch goes
 * behind everything left; a dead head is waited for only zkc__cq_patience_ms,
 * then the drain applies the lot), before the checker reads the final values,
 * so counter_sum and counter_chain judge every batch that was ever queued. */
static int drain_queues(zkc_client *c)
{
    int failed = 0;
    for (int i = 0; i < ch_counter_count(&D.sh); i++) {
        if (ch_counter_mode(&D.sh, i) == ZKC_COUNTER_QUEUED_OFF)
            continue;
        char p[256];
        ch_counter_path(&D.sh, i, p, sizeof p);
        zkc_counter_options co;
        zkc_counter_options_init(&co);
        co.queued = ZKC_COUNTER_QUEUED_ALWAYS; /* the drain's add goes behind what is left */
        zkc_counter *ctr = NULL;
        zkc_counter_result r = {0, 0, 0};
        int rc = zkc_counter_create(c, p, &co, &ctr);
        if (rc == 0)
            rc = zkc_counter_add(ctr, 0, NULL, &r);
        ch_log(D.h, "DRAIN ctr=%d rc=%d before=%" PRId64 " after=%" PRId64, i, rc, r.before, r.after);
        if (rc != 0) {
            say("drain of queued counter %s: %s", p, zkc_errmsg());
            failed++;
        }
        zkc_counter_destroy(ctr);
    }
    return failed;
}

/* Queued batches (q- nodes) left in any counter queue under /zkcoord/cq
 * after the drain: each one is an add nobody applied (orphan_nodes). Listed
 * with the raw C client (the library has no listing of it); outcome records
 * (r- nodes) of enqueuers that went away legitimately stay until reaped.
 * plant (self-test): 1 adds a junk batch to the first queue, -1 removes it. */
#define CH_CQ_ROOT "/zkcoord/cq"
#define CH_CQ_JUNK "q-00000000-0000-0000-0000-000000000000-0000999999"
static int queue_dirs = -1; /* counter queues found by the last listing */
static int64_t queue_left(int report, int plant)
{
    zhandle_t *zh = raw_authed();
    if (!zh)
        return -1;
    int64_t left = -1;
    struct String_vector dirs = {0, NULL};
    int rc = zoo_get_children(zh, CH_CQ_ROOT, 0, &dirs);
    if (rc == ZNONODE) {
        left = plant ? -1 : 0; /* no counter ever queued: nothing to plant in */
        goto out;
    }
    if (rc != ZOK)
        goto out;
    left = 0;
    queue_dirs = dirs.count;
    for (int d = 0; d < dirs.count; d++) {
        char dir[512];
        snprintf(dir, sizeof dir, CH_CQ_ROOT "/%s", dirs.data[d]);
        if (plant) {
            char junk[600];
            snprintf(junk, sizeof junk, "%s/" CH_CQ_JUNK, dir);
            rc = plant > 0 ? zoo_create(zh, junk, "junk", 4, &ZOO_CREATOR_ALL_ACL, 0, NULL, 0)
                           : zoo_delete(zh, junk, -1);
            left = rc == ZOK ? 1 : -1;
            break;
        }
        struct String_vector v = {0, NULL};
        if (zoo_get_children(zh, dir, 0, &v) != ZOK) {
            left = -1;
            break;
        }
        for (int k = 0; k < v.count; k++) {
            if (strncmp(v.data[k], "q-", 2) != 0)
                continue;
            left++;
            if (report) {
                char node[800], data[200];
                int len = sizeof data - 1;
                snprintf(node, sizeof node, "%s/%s", dir, v.data[k]);
                if (zoo_get(zh, node, 0, data, &len, NULL) != ZOK || len < 0)
                    len = 0;
                data[len] = 0;
                data[strcspn(data, "\n")] = 0; /* "zkcq1 <counter path>" */
                say("VIOLATION orphan_nodes: %s: a queued batch left after the drain (%s)", node, data);
            }
        }
        deallocate_String_vector(&v);
    }
out:
    if (dirs.data)
        deallocate_String_vector(&dirs);
    zookeeper_close(zh);
    return left;
}

/* Between the soak's epochs: the idempotency keys and markers the workers
 * wrote are kept for marker_retention_s (24 h) so a lookup can decide an
 * unanswered update; the epoch's checker has done its lookups and its workers
 * are gone, so nothing can need them. Swept with the library's own cleanup
 * (retention 1 s), as an operator's cron would, so a long soak measures the
 * servers with a bounded tree (about 300 key records per second otherwise)
 * and exercises zkc_admin_cleanup on a large key store. */
static void sweep_keys(void)
{
    zkc_client_options o;
    zkc_client_options_init(&o);
    int l = leader();
    o.hosts = l >= 0 ? zkh_node_hostport(D.e, l) : D.direct;
    o.session_timeout_ms = D.sh.session_ms;
    o.connect_timeout_ms = 30000;
    o.auth_scheme = "digest";
    o.auth_credential = CH_AUTH;
    o.acl = ZKC_ACL_CREATOR;
    o.marker_retention_s = 1;
    zkc_client *c = NULL;
    if (zkc_client_create(&c, &o) != 0) {
        say("key sweep: no client: %s", zkc_errmsg());
        D.harness_failures++;
        return;
    }
    ch_nap_ms(1100); /* the keys of the epoch's last second are older than the retention */
    zkc_cleanup_report r;
    memset(&r, 0, sizeof r);
    int64_t t = ch_now_ns();
    int rc = zkc_admin_cleanup(c, NULL, 0, &r);
    say("key sweep after epoch %d: %s, %" PRId64 " examined, %" PRId64 " keys and %" PRId64
        " markers deleted in %.1f s",
        D.epoch, rc ? zkc_errmsg() : "ok", r.examined, r.keys, r.markers, (ch_now_ns() - t) / 1e9);
    if (rc) /* the faults are healed between epochs: nothing excuses a failed sweep */
        D.harness_failures++;
    zkc_client_destroy(c);
}

/* Evidence for the invariants that span several nodes (the inventory's SKU
 * records against its request records, tests/chaos/check.c (d)): ZooKeeper's
 * own view of whether its servers agree. Each multi keeps them in step on
 * every server, so a server that applied the txns after a lost one (later
 * writes of a SKU record carry the whole record; the lost txn's request
 * records stay as they were) shows records and stock that disagree, and
 * nothing a client does can cause that.
 *   - every server's count of data-tree digest mismatches (mntr
 *     zk_digest_mismatches_count: a learner that applied a txn and found its
 *     tree's digest differ from the leader's; reset when a server restarts):
 *     printed;
 *   - every SKU record as each server has it (a fresh read: that server has
 *     applied everything committed before it). Nothing writes any more, so
 *     they must be equal: servers that disagree are an ensemble failure
 *     (ensemble_recovery), printed with the records, as they are after any
 *     inventory violation. */
#define ZK_NODES_MAX 7

static void zk_consistency(int inv_on, int inv_viol)
{
    char line[256];
    int n = snprintf(line, sizeof line, "zookeeper: data-tree digest mismatches per server:");
    for (int i = 0; i < D.n; i++) {
        char buf[8192];
        long m = -1;
        if (zkh_four_letter(zkh_node_hostport(D.e, i), "mntr", buf, sizeof buf, 2000) > 0)
            m = mntr_value(buf, "zk_digest_mismatches_count");
        n += snprintf(line + n, sizeof line - (size_t)n, m < 0 ? " n/a" : " %ld", m);
        if (n >= (int)sizeof line - 16)
            break;
    }
    say("%s", line);
    if (!inv_on || !ch_inventory_linked() || !zkc_inventory_stock_fresh)
        return;
    int nskus = D.sh.skus < CH_MAX_SKUS ? D.sh.skus : CH_MAX_SKUS;
    zkc_inventory_stock_info si[ZK_NODES_MAX][CH_MAX_SKUS];
    int rc[ZK_NODES_MAX][CH_MAX_SKUS];
    for (int i = 0; i < D.n && i < ZK_NODES_MAX; i++) {
        zkc_client *c = admin_client(zkh_node_hostport(D.e, i));
        zkc_inventory *inv = NULL;
        for (int s = 0; s < nskus; s++) {
            char sku[32];
            ch_sku_name(s, sku, sizeof sku);
            memset(&si[i][s], 0, sizeof si[i][s]);
            if (c && !inv && zkc_inventory_create(c, CH_INV_ROOT, &inv) != 0)
                inv = NULL;
            rc[i][s] = inv ? zkc_inventory_stock_fresh(inv, sku, &si[i][s]) : ZKC_ECONNLOSS;
        }
        zkc_inventory_destroy(inv);
        zkc_client_destroy(c);
    }
    for (int s = 0; s < nskus; s++) {
        n = snprintf(line, sizeof line, "zookeeper: sku%d available/reserved/sold/total per server (after the checker's releases):", s);
        int differ = 0;
        for (int i = 0; i < D.n && i < ZK_NODES_MAX; i++) {
            if (rc[i][s])
                n += snprintf(line + n, sizeof line - (size_t)n, " [%s]", zkc_strerror(rc[i][s]));
            else
                n += snprintf(line + n, sizeof line - (size_t)n, " %" PRId64 "/%" PRId64 "/%" PRId64 "/%" PRId64,
                              si[i][s].available, si[i][s].reserved, si[i][s].sold, si[i][s].total);
            if (i > 0 && !rc[i][s] && !rc[0][s] &&
                (si[i][s].reserved != si[0][s].reserved || si[i][s].sold != si[0][s].sold ||
                 si[i][s].total != si[0][s].total))
                differ = 1;
            if (n >= (int)sizeof line - 48)
                break;
        }
        if (differ) {
            D.harness_failures++;
            say("VIOLATION ensemble_recovery: the servers disagree on sku%d at quiescence (a txn lost on one):", s);
        }
        if (differ || inv_viol)
            say("%s", line);
    }
}

/* One epoch: workers up, faults until `until`, settle, check. */
static int st_tested, st_missed, st_skipped;

static int run_epoch(int64_t until, uint64_t *sched, int *fault_no, ch_check_out *out, int selftest)
{
    memset(out, 0, sizeof *out);
    ch_check_in in;
    memset(&in, 0, sizeof in);
    int first_wid = D.last_wid + 1;
    int64_t t_start = ch_now_ns();
    zkc_client *c = leader_client();
    if (!c) {
        D.harness_failures++;
        return -1;
    }
    if (read_counters(c, in.initial) != 0)
        D.harness_failures++;
    inventory_baseline(c, in.inv_total0, in.inv_sold0);
    zkc_client_destroy(c);
    ch_log(D.h, "EPOCH no=%d first_wid=%d", D.epoch, first_wid);

    for (int i = 0; i < D.workers && !D.interrupted; i++)
        if (spawn_worker() < 0)
            say("worker %d failed to start", D.last_wid);
    say("epoch %d: %d workers up; faults until %.0f s", D.epoch, D.workers, (until - D.t0) / 1e9);
    __atomic_store_n(&D.running, 1, __ATOMIC_RELAXED);

    while (!D.interrupted) {
        fault f = next_fault(sched, D.partitions, D.sh.session_ms, D.soak);
        if (ch_now_ns() + (int64_t)(f.gap_ms + f.dur_ms) * 1000000 > until) {
            drv_wait((int)((until - ch_now_ns()) / 1000000));
            break;
        }
        drv_wait(f.gap_ms);
        if (D.interrupted)
            break;
        inject(++*fault_no, &f);
    }

    say("settling: healing faults, stopping workers | acq %" PRId64 " upd %" PRId64, progress_acq(), progress_upd());
    ch_log(D.h, "SETTLE");
    __atomic_store_n(&D.running, 0, __ATOMIC_RELAXED);
    heal_all();
    if (wait_all_serving(120000) != 0) {
        D.harness_failures++;
        say("ensemble not healthy at settle");
    }
    stop_workers(150000);
    ch_log(D.h, "QUIET");
    c = leader_client();
    if (!c) {
        D.harness_failures++;
        return -1;
    }
    /* Killed workers' nodes go when their sessions expire: wait that out. */
    int64_t orphans = wait_no_orphans(c, 3 * D.sh.session_ms + 20000, 1);
    say("settled: %" PRId64 " lock-queue nodes left", orphans);
    int64_t qbefore = queue_left(0, 0); /* how many the drain has to apply: shown, not judged */
    int qdirs = queue_dirs; /* the workers' queues: above the ALWAYS counters' count, AUTO ones queued too */
    if (drain_queues(c))
        D.harness_failures++;
    int64_t qleft = queue_left(1, 0);
    if (qleft < 0) {
        say("counter queues under " CH_CQ_ROOT ": cannot list them");
        D.harness_failures++;
    } else if (D.sh.queued) {
        int always = 0, automode = 0;
        for (int i = 0; i < ch_counter_count(&D.sh); i++) {
            always += ch_counter_mode(&D.sh, i) == ZKC_COUNTER_QUEUED_ALWAYS;
            automode += ch_counter_mode(&D.sh, i) == ZKC_COUNTER_QUEUED_AUTO;
        }
        say("counter queues: the workers used %d (%d counters queued always, %d auto); %" PRId64
            " batches queued after the workers stopped, %" PRId64 " after the drain",
            qdirs, always, automode, qbefore, qleft);
    }

    in.dir = D.dir;
    in.shape = &D.sh;
    in.shm = D.m;
    in.c = c;
    in.session_ms = D.sh.session_ms;
    in.verbose = D.verbose;
    in.first_wid = first_wid;
    in.last_wid = D.last_wid;
    in.t_start = t_start;
    int rc = ch_check(&in, out);
    out->violations[V_ORPHAN] += orphans + (qleft > 0 ? qleft : 0);
    zk_consistency(out->inventory_on, out->violations[V_INV_UNITS] || out->violations[V_INV_DOUBLE]);
    if (selftest) {
        int64_t v = 0;
        for (int i = 0; i < V_NKINDS; i++)
            v += out->violations[i];
        if (v) {
            say("self-test: the real history has violations; mutations not run");
            st_missed++;
        } else {
            st_missed += ch_selftest(&in, out, &st_tested, &st_skipped);
            int planted = plant_orphan(1) == ZOK;
            if (planted) {
                /* c's last write came before the plant (made through another
                 * session): a fresh listing, a quorum check on c's session,
                 * orders c's reads below after it */
                char p0[256];
                ch_lock_path(&D.sh, 0, p0, sizeof p0);
                zkc_lock_contender *q = NULL;
                int n = 0;
                if (zkc_lock_contenders_fresh(c, p0, &q, &n) == 0)
                    zkc_lock_contenders_free(q, n);
            }
            int64_t found = planted ? wait_no_orphans(c, 500, 0) : 0;
            if (planted)
                plant_orphan(0);
            st_tested += planted;
            st_missed += planted && !found;
            printf("self-test: %-24s %s (a persistent junk member in a lock queue)\n", ch_vnames[V_ORPHAN],
                   !planted ? "not testable (cannot create the node)" : found ? "caught" : "MISSED");
            if (D.sh.queued) {
                planted = queue_left(0, 1) == 1;
                found = planted ? queue_left(0, 0) : 0;
                if (planted)
                    queue_left(0, -1);
                st_tested += planted;
                st_skipped += !planted;
                st_missed += planted && found < 1;
                printf("self-test: %-24s %s (a queued counter batch nobody applied)\n", ch_vnames[V_ORPHAN],
                       !planted ? "not testable (no counter queue)" : found >= 1 ? "caught" : "MISSED");
            }
        }
    }
    zkc_client_destroy(c);
    return rc;
}

int ch_driver_main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR); /* the harness's session-expiry handles */
    ch_shape_default(&D.sh);
    const char *cs = getenv("CHAOS_SECONDS");
    double seconds = cs && *cs ? atof(cs) : 60;
    double hours = 0;
    int epoch_s = 1800;
    int have_seed = 0, print_schedule = 0, selftest = 0, have_seconds = 0;
    int64_t min_acq = 0, min_upd = 0, min_permits = 0;
    const char *sample_path = NULL;
    int sample_ms = 5000;
    D.workers = 4;
    const char *b = getenv("ZKH_BACKEND");
    D.docker = b && !strcmp(b, "docker");
    D.partitions = D.docker;
    const char *k = getenv("ZKC_CHAOS_KEEP");
    D.keep = k && *k == '1';
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV                                                                                                  \
    do {                                                                                                       \
        if (!v) {                                                                                              \
            usage();                                                                                           \
            return 2;                                                                                          \
        }                                                                                                      \
        i++;                                                                                                   \
    } while (0)
        if (!strcmp(a, "--seconds")) {
            NEEDV;
            seconds = atof(v);
            have_seconds = 1;
        } else if (!strcmp(a, "--self-test")) {
            selftest = 1;
        } else if (!strcmp(a, "--long")) {
            NEEDV;
            hours = atof(v);
        } else if (!strcmp(a, "--epoch")) {
            NEEDV;
            epoch_s = atoi(v);
        } else if (!strcmp(a, "--seed")) {
            NEEDV;
            D.seed = strtoull(v, NULL, 10);
            have_seed = 1;
        } else if (!strcmp(a, "--workers")) {
            NEEDV;
            D.workers = atoi(v);
        } else if (!strcmp(a, "--window")) {
            NEEDV;
            D.sh.window = atoi(v);
        } else if (!strcmp(a, "--counter-rate")) {
            NEEDV;
            D.sh.counter_rate = atoi(v);
        } else if (!strcmp(a, "--think")) {
            NEEDV;
            D.sh.lock_think_ms = atoi(v);
        } else if (!strcmp(a, "--no-queued")) {
            D.sh.queued = 0;
        } else if (!strcmp(a, "--partitions")) {
            D.partitions = 1;
        } else if (!strcmp(a, "--soak")) {
            D.soak = 1;
        } else if (!strcmp(a, "--sample")) {
            NEEDV;
            sample_path = v;
        } else if (!strcmp(a, "--sample-ms")) {
            NEEDV;
            sample_ms = atoi(v);
        } else if (!strcmp(a, "--no-partitions")) {
            D.partitions = 0;
        } else if (!strcmp(a, "--keep")) {
            D.keep = 1;
        } else if (!strcmp(a, "--verbose")) {
            D.verbose = 1;
        } else if (!strcmp(a, "--print-schedule")) {
            NEEDV;
            print_schedule = atoi(v);
        } else if (!strcmp(a, "--min-acquisitions")) {
            NEEDV;
            min_acq = atoll(v);
        } else if (!strcmp(a, "--min-updates")) {
            NEEDV;
            min_upd = atoll(v);
        } else if (!strcmp(a, "--min-permits")) {
            NEEDV;
            min_permits = atoll(v);
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 0;
        } else {
            fprintf(stderr, "zkc-chaos: unknown argument %s\n", a);
            usage();
            return 2;
        }
    }
    if (!have_seed)
        D.seed = random_seed();
    if (selftest && !have_seconds)
        seconds = 30;
    if (D.workers < 1 || D.workers > 32 || seconds <= 0 || epoch_s < 60 || sample_ms < 100) {
        usage();
        return 2;
    }
    const ch_shape *s = &D.sh;
    snprintf(D.shape_arg, sizeof D.shape_arg, "%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d", s->mutex_paths,
             s->rw_paths, s->counters, s->stocks, s->skus, s->mutex_threads, s->rw_threads, s->counter_threads,
             s->stock_threads, s->inv_threads, s->window, s->session_ms, s->keyed_pct, s->counter_rate, s->stock_rate,
             s->lock_think_ms, s->queued);

    uint64_t sched = ch_mix(D.seed, 0x5ced);
    if (print_schedule > 0) {
        for (int i = 1; i <= print_schedule; i++) {
            fault f = next_fault(&sched, D.partitions, D.sh.session_ms, D.soak);
            printf("fault #%d after %d ms: %s a=%d b=%d duration %d ms\n", i, f.gap_ms, fnames[f.kind], f.a, f.b,
                   f.dur_ms);
        }
        return 0;
    }
    double total_s = hours > 0 ? hours * 3600 : seconds;
    int epochs = hours > 0 ? (int)((total_s + epoch_s - 1) / epoch_s) : 1;
    double per_epoch = total_s / epochs;

    /* SIGCHLD, SIGINT and SIGTERM are taken with sigtimedwait (drv_wait);
     * blocked before any thread exists so every thread inherits the mask. */
    sigemptyset(&D.sigs);
    sigaddset(&D.sigs, SIGCHLD);
    sigaddset(&D.sigs, SIGINT);
    sigaddset(&D.sigs, SIGTERM);
    sigprocmask(SIG_BLOCK, &D.sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    ssize_t sl = readlink("/proc/self/exe", D.self, sizeof D.self - 1);
    if (sl <= 0) {
        perror("readlink /proc/self/exe");
        return 1;
    }
    D.self[sl] = 0;
    const char *tmp = getenv("TMPDIR");
    snprintf(D.dir, sizeof D.dir, "%s/zkc-chaos.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(D.dir)) {
        perror("mkdtemp");
        return 1;
    }
    D.t0 = ch_now_ns();
    printf("chaos: seed %" PRIu64 " (replay: --seed %" PRIu64 "), %.0f s in %d epoch(s), backend %s%s, %d workers, "
           "run dir %s\n",
           D.seed, D.seed, total_s, epochs, D.docker ? "docker" : "local", D.partitions ? " with partitions" : "",
           D.workers, D.dir);
    D.m = ch_shm_create(D.dir);
    D.h = ch_hist_open(D.dir, 0);
    if (!D.m || !D.h) {
        fprintf(stderr, "zkc-chaos: cannot create the run files in %s\n", D.dir);
        rm_tree(D.dir);
        return 1;
    }

    zkh_options zo;
    zkh_options_init(&zo);
    zo.nodes = 3;
    zo.tick_ms = 200;
    zo.max_client_cnxns = 1000;
    int rc = zkh_ensemble_start(&D.e, &zo);
    if (rc != 0) {
        fprintf(stderr, "zkc-chaos: the ensemble did not start: %s\n", strerror(-rc));
        rm_tree(D.dir);
        return zkh_ci() ? 1 : 77;
    }
    D.n = zkh_node_count(D.e);
    snprintf(D.direct, sizeof D.direct, "%s", zkh_ensemble_hosts(D.e));
    size_t off = 0;
    for (int i = 0; i < D.n; i++) {
        if ((rc = zkh_proxy_start(&D.px[i], zkh_node_hostport(D.e, i))) != 0) {
            fprintf(stderr, "zkc-chaos: proxy for node %d: %s\n", i, strerror(-rc));
            zkh_ensemble_stop(D.e);
            rm_tree(D.dir);
            return 1;
        }
        off += (size_t)snprintf(D.proxied + off, sizeof D.proxied - off, "%s%s", i ? "," : "",
                                zkh_proxy_hostport(D.px[i]));
    }
    say("ensemble %s; clients through proxies %s", D.direct, D.proxied);
    if (sample_path && sampler_start(sample_path, sample_ms) != 0)
        D.harness_failures++;

    totals T;
    memset(&T, 0, sizeof T);
    int fault_no = 0;
    int check_errors = 0;
    for (D.epoch = 1; D.epoch <= epochs && !D.interrupted; D.epoch++) {
        /* Each epoch gets its whole share of faults: the settling, the
         * checks and the key sweep between epochs (minutes in a soak) are not
         * counted against the next one (--long is hours of faults). */
        int64_t until = (D.epoch == 1 ? D.t0 : ch_now_ns()) + (int64_t)(per_epoch * 1e9);
        ch_check_out o;
        if (run_epoch(until, &sched, &fault_no, &o, selftest && D.epoch == 1) != 0)
            check_errors++;
        add_out(&T.o, &o);
        T.epochs++;
        if (D.soak && D.epoch < epochs)
            sweep_keys();
        if (!D.keep && D.epoch < epochs) {
            /* A soak keeps only the running epoch's histories on disk. */
            for (int w = 1; w <= D.last_wid; w++) {
                if (D.w[w].epoch != D.epoch)
                    continue;
                char p[4300];
                snprintf(p, sizeof p, "%s/hist-%d.log", D.dir, w);
                unlink(p);
                worker_out_path(w, p, sizeof p);
                unlink(p);
            }
        }
        if (epochs > 1) {
            int64_t v = 0;
            for (int i = 0; i < V_NKINDS; i++)
                v += o.violations[i];
            say("epoch %d: %" PRId64 " acquisitions, %" PRId64 " counter updates, %" PRId64 " violations", D.epoch,
                o.acquisitions, o.counter_updates, v);
        }
    }

    sampler_stop();
    for (int i = 0; i < D.n; i++)
        zkh_proxy_stop(D.px[i]);
    zkh_ensemble_stop(D.e);

    /* ---- report ---- */
    ch_check_out *o = &T.o;
    o->violations[V_WORKER] += D.worker_failures;
    o->violations[V_HARNESS] += D.harness_failures + check_errors;
    printf("\n==== zkc-chaos report (seed %" PRIu64 ", %.0f s, %d epoch(s), backend %s) ====\n", D.seed, elapsed(),
           T.epochs, D.docker ? "docker" : "local");
    printf("operations:        %" PRId64 "\n", o->operations);
    printf("lock acquisitions: %" PRId64 "  (fenced writes accepted %" PRId64 ", rejected %" PRId64
           ", holds abandoned in doubt %" PRId64 ")\n",
           o->acquisitions, o->fence_accepted, o->fence_rejected, o->doubts);
    printf("counter updates:   %" PRId64 " applied of %" PRId64 " invoked  (replays %" PRId64 ", unknown outcomes %" PRId64
           ", resolved by key %" PRId64 ", unresolved %" PRId64 ", worker lookups %" PRId64 ")\n",
           o->counter_updates, o->counter_ops, o->replays, o->unknown_outcomes, o->keyed_resolved,
           o->unknown_unresolved, o->lookups);
    if (o->queued_counters)
        printf("queued counters:   %" PRId64 " of the applied updates went through a counter queue; chain checked on %" PRId64
               " of %" PRId64 " queued counters (the others had updates of unknown outcome)\n",
               o->queued_updates, o->queued_chained, o->queued_counters);
    printf("hard rate limit:   %" PRId64 " permits in %" PRId64 " grants (limit %d per %d ms; busiest window %" PRId64
           ")\n",
           o->rl_permits, o->rl_grants, CH_RL_PERMITS, CH_RL_WINDOW_MS, o->rl_busiest);
    if (o->inventory_on)
        printf("inventory:         %" PRId64 " operations, %" PRId64 " reservations granted\n", o->inv_ops,
               o->inv_reserved);
    else
        printf("inventory:         OFF (zkc_inventory_* not available in this library build; notice printed)\n");
    printf("faults injected:  ");
    int64_t nf = 0;
    for (int i = 0; i < F_NKINDS; i++) {
        if (i == F_PARTITION && !D.partitions)
            continue;
        printf(" %s %" PRId64 ",", fnames[i], D.faults[i]);
        nf += D.faults[i];
    }
    printf(" total %" PRId64 " (proxy drops fired %" PRId64 ", skipped %" PRId64 ")\n", nf, D.fired_drops, D.skipped);
    int64_t s_lost = 0, l_lost = 0;
    for (int i = 1; i < CH_MAX_WORKERS; i++) {
        s_lost += D.m->w[i].sessions_lost;
        l_lost += D.m->w[i].locks_lost;
    }
    printf("sessions:          %" PRId64 " expired by the driver, %" PRId64 " LOST heard by workers; %" PRId64
           " lock LOST events during a hold\n",
           D.expired, s_lost, l_lost);
    printf("violations:       ");
    int passed = 0, failed = 0;
    for (int i = 0; i < V_NKINDS; i++) {
        printf(" %s %" PRId64 "%s", ch_vnames[i], o->violations[i], i + 1 < V_NKINDS ? "," : "\n");
        if (o->violations[i])
            failed++;
        else
            passed++;
    }
    if (min_acq > 0) {
        int ok = o->acquisitions >= min_acq;
        printf("target: acquisitions %" PRId64 " >= %" PRId64 ": %s\n", o->acquisitions, min_acq, ok ? "yes" : "NO");
        ok ? passed++ : failed++;
    }
    if (min_upd > 0) {
        int ok = o->counter_updates >= min_upd;
        printf("target: counter updates %" PRId64 " >= %" PRId64 ": %s\n", o->counter_updates, min_upd,
               ok ? "yes" : "NO");
        ok ? passed++ : failed++;
    }
    if (min_permits > 0) {
        int ok = o->rl_permits >= min_permits;
        printf("target: rate-limit permits %" PRId64 " >= %" PRId64 ": %s\n", o->rl_permits, min_permits,
               ok ? "yes" : "NO");
        ok ? passed++ : failed++;
    }
    if (selftest) {
        printf("self-test: %d mutations caught of %d planted (%d not plantable in this history)\n",
               st_tested - st_missed, st_tested, st_skipped);
        passed += st_tested - st_missed;
        failed += st_missed;
    }
    if (D.interrupted) {
        printf("interrupted: the run is incomplete\n");
        failed++;
    }
    printf("seed: %" PRIu64 "\n", D.seed);
    ch_hist_close(D.h);
    ch_shm_detach(D.m);
    if (D.keep) {
        printf("run dir kept: %s\n", D.dir);
    } else {
        rm_tree(D.dir);
    }
    printf("chaos: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
