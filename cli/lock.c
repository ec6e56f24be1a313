/* zkcoord lock: run a command only while a ZooKeeper lock is held, in the
 * spirit of flock(1). This file parses the command line, takes the lock and
 * gives it back; running and supervising the command (signals, the process
 * group, LOST and SUSPENDED) is the shared supervisor's (cli/supervise.c). */
#include "supervise.h"

void help_lock(FILE *f)
{
    fprintf(f,
            "usage: zkcoord lock [options] PATH [--] COMMAND [ARGS...]\n"
            "\n"
            "Acquire the lock at PATH (a fair queue; parent nodes are created on demand), run\n"
            "COMMAND in its own process group while holding it, release it when COMMAND\n"
            "exits, and exit with COMMAND's status (128+N if a signal N killed it).\n"
            "\n"
            "COMMAND's environment gets ZKC_FENCING_TOKEN (the hold's fencing token: pass\n"
            "it with every write to a protected resource, which must refuse tokens smaller\n"
            "than the largest it has seen), ZKC_LOCK_PATH and ZKC_GUARD_NODE (the hold's\n"
            "node: 'zkcoord counter add --guard \"$ZKC_GUARD_NODE\"' writes only while the\n"
            "hold lasts).\n"
            "\n"
            "If the hold is LOST while COMMAND runs (session expired or presumed expired,\n"
            "or the lock node deleted), COMMAND's process group gets SIGTERM, then SIGKILL\n"
            "after the grace period, and zkcoord exits with status 6. A connection that\n"
            "stays down (SUSPENDED) for a whole session timeout counts as LOST. SIGINT,\n"
            "SIGTERM, SIGHUP and SIGQUIT sent to zkcoord go to the process group.\n"
            "\n"
            "Options:\n"
            "  -t, --timeout S      wait at most S seconds (fractional) for the lock;\n"
            "                       0: try once, fail at once if busy (like flock -n);\n"
            "                       default: wait as long as it takes. Busy: exit 3.\n"
            "  -r, --read           take the read (shared) side of a read/write lock\n"
            "  -w, --write          take the write (exclusive) side of a read/write lock\n"
            "                       (default: a mutex; all three interoperate with Curator)\n"
            "  --kill-on-suspend    also terminate COMMAND when the connection drops\n"
            "                       (SUSPENDED: the hold may be lost), for commands that\n"
            "                       must never run in doubt; exit status 6\n"
            "  --grace S            seconds between SIGTERM and SIGKILL (default 5)\n"
            "\n" GLOBAL_OPTS_HELP "\n" EXIT_CODES_HELP
            "\n"
            "Example:\n"
            "  zkcoord --hosts zk1:2181 lock --timeout 10 /jobs/nightly -- ./nightly.sh\n");
}

enum { L_TIMEOUT = 1, L_READ, L_WRITE };

static const optdef lock_opts[] = {
    {"timeout", 't', 1, L_TIMEOUT},
    {"read", 'r', 0, L_READ},
    {"write", 'w', 0, L_WRITE},
    SUP_OPTS,
    {NULL, 0, 0, 0},
};

/* Who holds `path`, for the "busy" message. */
static void describe_holder(zkc_client *c, const char *path)
{
    zkc_lock_contender *e;
    int n;
    if (zkc_lock_contenders(c, path, &e, &n))
        return;
    int waiting = 0;
    for (int i = 0; i < n; i++)
        if (!e[i].holds)
            waiting++;
    for (int i = 0; i < n; i++) {
        if (!e[i].holds)
            continue;
        char when[40], age[24];
        iso8601(e[i].ctime_ms, when, sizeof when);
        human_age(now_ms(CLOCK_REALTIME) - e[i].ctime_ms, age, sizeof age);
        msg("lock %s is held by session 0x%" PRIx64 " (%s, since %s, %s ago); %d waiting", path,
            (uint64_t)e[i].session_id, kind_name(e[i].kind), when, age, waiting);
        break;
    }
    zkc_lock_contenders_free(e, n);
}

/* What the command line asks for beyond the supervisor's part. */
typedef struct lock_request {
    int timeout_ms; /* ZKC_FOREVER, 0 (try once) or a bound */
    int kind;       /* ZKC_LOCK_MUTEX, _READ or _WRITE */
} lock_request;

typedef struct lock_job {
    supervisor s;
    lock_request rq;
    zkc_rwlock *rw; /* for --read/--write; l is one of its sides */
    zkc_lock *l;
} lock_job;

/* ---- parse */

static int lock_opt(int id, const args *a, void *ud)
{
    lock_request *rq = ud;
    switch (id) {
    case L_TIMEOUT: return parse_seconds(a->val, "--timeout", &rq->timeout_ms) ? ZX_USAGE : 0;
    case L_READ:
    case L_WRITE: {
        int want = id == L_READ ? ZKC_LOCK_READ : ZKC_LOCK_WRITE;
        if (rq->kind != ZKC_LOCK_MUTEX && rq->kind != want) {
            msg("--read and --write exclude each other");
            return ZX_USAGE;
        }
        rq->kind = want;
        return 0;
    }
    }
    return 0;
}

static int lock_parse(int argc, char **argv, supervisor *s, lock_request *rq)
{
    *rq = (lock_request){.timeout_ms = ZKC_FOREVER, .kind = ZKC_LOCK_MUTEX};
    int ex = sup_parse(s, argc, argv, lock_opts, "lock", help_lock, lock_opt, rq);
    snprintf(s->what, sizeof s->what, "lock %s", s->path ? s->path : "");
    s->path_env = "ZKC_LOCK_PATH=";
    return ex;
}

/* ---- acquire */

/* Dispatch thread. */
static void on_acquired(zkc_lock *l, int status, int64_t token, void *ud)
{
    (void)l;
    hold_granted(ud, status, token);
}

/* Dispatch thread. */
static void on_lock_event(zkc_lock *l, zkc_lock_event ev, void *ud)
{
    (void)l;
    hold_event(ud, (int)ev);
}

static void cancel_acquire(void *ud)
{
    zkc_lock_cancel(((lock_job *)ud)->l);
}

static void busy(void *ud)
{
    lock_job *j = ud;
    const char *path = j->s.path;
    if (j->rq.timeout_ms == 0)
        msg("lock %s is busy (--timeout 0: not waiting)", path);
    else
        msg("lock %s: not acquired within %.3g s", path, j->rq.timeout_ms / 1000.0);
    describe_holder(j->s.c, path);
}

static int lock_acquire(lock_job *j)
{
    supervisor *s = &j->s;
    const char *path = s->path;
    int rc = j->rq.kind == ZKC_LOCK_MUTEX ? zkc_lock_create(s->c, path, &j->l) : zkc_rwlock_create(s->c, path, &j->rw);
    if (rc)
        return fail_lib(rc, zkc_errmsg(), "lock %s", path);
    if (j->rw)
        j->l = j->rq.kind == ZKC_LOCK_READ ? zkc_rwlock_read(j->rw) : zkc_rwlock_write(j->rw);
    zkc_lock_set_listener(j->l, on_lock_event, &s->x);
    s->x.wake_w = s->pfd[1];
    if ((rc = zkc_lock_acquire_async(j->l, j->rq.timeout_ms, on_acquired, &s->x)))
        return fail_lib(rc, zkc_errmsg(), "lock %s: cannot start acquiring", path);
    int ex = sup_wait_grant(s, cancel_acquire, busy, j);
    zkc_guard gd;
    if (ex == GO_ON && zkc_lock_guard(j->l, &gd) == 0) /* else (lost already): no ZKC_GUARD_NODE */
        snprintf(s->guard_node, sizeof s->guard_node, "%s", gd.path);
    return ex;
}

/* ---- the end: release */

static int take(void *ud)
{
    return lock_acquire(ud);
}

static void end(void *ud, int give_back)
{
    lock_job *j = ud;
    if (give_back) {
        int rc = zkc_lock_release(j->l);
        if (rc && rc != ZKC_ENOTHELD)
            fail_lib(rc, zkc_errmsg(), "warning: lock %s: release failed (the node goes with the session)",
                     j->s.path);
    }
    if (j->l)
        zkc_lock_set_listener(j->l, NULL, NULL);
    if (j->rw)
        zkc_rwlock_destroy(j->rw);
    else if (j->l)
        zkc_lock_destroy(j->l);
}

int cmd_lock(int argc, char **argv)
{
    lock_job j = {.l = NULL};
    sup_init(&j.s);
    int ex = lock_parse(argc, argv, &j.s, &j.rq);
    if (ex != GO_ON)
        return ex;
    if ((ex = client_options(&j.s.copts)))
        return ex;
    return sup_run(&j.s, take, end, &j);
}
