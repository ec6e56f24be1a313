/* zkcoord lock: a supervisor, in the spirit of flock(1), that runs a command
 * only while a ZooKeeper lock is held.
 *
 * Four steps, one function each: parse the command line; acquire (connect in
 * a helper thread and wait for the grant on a self-pipe, so that ^C works
 * while waiting); run the child (fork, own process group, the terminal handed
 * over, close-on-exec for every descriptor we opened); supervise (forward
 * signals to the child's group, act on the lock's events: LOST, or SUSPENDED
 * with --kill-on-suspend or for longer than a session timeout, terminates the
 * group with SIGTERM then SIGKILL after --grace). Every wait is a poll on a
 * signalfd and the self-pipe that the library's callbacks write to: no
 * polling loop, no sleeps. */
#include "cli.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef struct lock_ctx {
    int wake_w; /* self-pipe write end: one byte = "look at the flags" */
    atomic_int acq_done;
    int acq_status;
    int64_t acq_token;
    char acq_msg[512];
    atomic_int suspended, reconnected, lost; /* event counters */
    atomic_int last_event;                   /* the latest zkc_lock_event */
} lock_ctx;

static void wake(int fd)
{
    char b = 1;
    ssize_t r;
    do
        r = write(fd, &b, 1);
    while (r < 0 && errno == EINTR);
    /* EAGAIN: the pipe is full, so a wake-up is already pending. */
}

static void drain(int fd)
{
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

/* Dispatch thread. */
static void on_acquired(zkc_lock *l, int status, int64_t token, void *ud)
{
    lock_ctx *x = ud;
    (void)l;
    x->acq_status = status;
    x->acq_token = token;
    if (status)
        snprintf(x->acq_msg, sizeof x->acq_msg, "%s", zkc_errmsg());
    atomic_store(&x->acq_done, 1);
    wake(x->wake_w);
}

/* Dispatch thread. */
static void on_lock_event(zkc_lock *l, zkc_lock_event ev, void *ud)
{
    lock_ctx *x = ud;
    (void)l;
    atomic_store(&x->last_event, (int)ev);
    switch (ev) {
    case ZKC_LOCK_EVENT_SUSPENDED: atomic_fetch_add(&x->suspended, 1); break;
    case ZKC_LOCK_EVENT_RECONNECTED: atomic_fetch_add(&x->reconnected, 1); break;
    case ZKC_LOCK_EVENT_LOST: atomic_fetch_add(&x->lost, 1); break;
    }
    wake(x->wake_w);
}

typedef struct connect_job {
    zkc_client_options opts;
    zkc_client *c;
    int rc;
    char msg[512];
    int wake_w;
    atomic_int done;
} connect_job;

static void *connect_thread(void *arg)
{
    connect_job *j = arg;
    j->rc = zkc_client_create(&j->c, &j->opts);
    if (j->rc)
        snprintf(j->msg, sizeof j->msg, "%s", zkc_errmsg());
    atomic_store(&j->done, 1);
    wake(j->wake_w);
    return NULL;
}

static const int forwarded_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static int is_forwarded(int sig)
{
    for (size_t i = 0; i < sizeof forwarded_signals / sizeof forwarded_signals[0]; i++)
        if (forwarded_signals[i] == sig)
            return 1;
    return 0;
}

/* Wait until the self-pipe is readable or a signal arrives, or timeout_ms
 * passes (-1: no limit). Returns the signal number (0 if none). */
static int wait_wake(int sfd, int pipe_r, int timeout_ms)
{
    struct pollfd p[2] = {{.fd = sfd, .events = POLLIN}, {.fd = pipe_r, .events = POLLIN}};
    int n = poll(p, 2, timeout_ms);
    if (n <= 0)
        return 0;
    if (p[1].revents)
        drain(pipe_r);
    if (p[0].revents & POLLIN) {
        struct signalfd_siginfo si;
        if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
            return (int)si.ssi_signo;
    }
    return 0;
}

/* Environment for the command: ours plus the token and the path. */
static char **command_env(int64_t token, const char *path)
{
    size_t n = 0;
    for (char **e = environ; e && *e; e++)
        n++;
    char **env = calloc(n + 3, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, "ZKC_FENCING_TOKEN=", 18) && strncmp(*e, "ZKC_LOCK_PATH=", 14))
            env[k++] = *e;
    if (asprintf(&env[k++], "ZKC_FENCING_TOKEN=%" PRId64, token) < 0 ||
        asprintf(&env[k++], "ZKC_LOCK_PATH=%s", path) < 0) {
        free(env);
        return NULL;
    }
    env[k] = NULL;
    return env;
}

/* Mark every descriptor the command should not inherit (opened since start-up
 * by us or by the ZooKeeper client: sockets, pipes, signalfd) close-on-exec.
 * Descriptors inherited from our own caller stay open, as with flock(1). */
static int *startup_fds;
static int startup_nfds;

/* Calls fn(fd, ud) for every open descriptor (from /proc/self/fd). */
static void each_fd(void (*fn)(int fd, void *ud), void *ud)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    int self = dirfd(d);
    for (struct dirent *de; (de = readdir(d));) {
        char *end;
        long fd = strtol(de->d_name, &end, 10);
        if (de->d_name[0] < '0' || de->d_name[0] > '9' || *end || fd == self || fd > INT_MAX)
            continue;
        fn((int)fd, ud);
    }
    closedir(d);
}

static void note_fd(int fd, void *ud)
{
    (void)ud;
    int *n = realloc(startup_fds, (size_t)(startup_nfds + 1) * sizeof *n);
    if (!n)
        return;
    startup_fds = n;
    startup_fds[startup_nfds++] = fd;
}

static void cloexec_fd(int fd, void *ud)
{
    (void)ud;
    if (fd < 3)
        return;
    for (int i = 0; i < startup_nfds; i++)
        if (startup_fds[i] == fd)
            return;
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0 && !(fl & FD_CLOEXEC))
        fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

static void record_startup_fds(void)
{
    each_fd(note_fd, NULL);
}

static void cloexec_new_fds(void)
{
    each_fd(cloexec_fd, NULL);
}

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
            "than the largest it has seen) and ZKC_LOCK_PATH.\n"
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

enum { L_TIMEOUT = 1, L_READ, L_WRITE, L_KILL_SUSPEND, L_GRACE };

static const optdef lock_opts[] = {
    {"timeout", 't', 1, L_TIMEOUT},
    {"read", 'r', 0, L_READ},
    {"write", 'w', 0, L_WRITE},
    {"kill-on-suspend", 0, 0, L_KILL_SUSPEND},
    {"grace", 0, 1, L_GRACE},
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

/* ---- the supervisor's state */

/* What the command line asks for. */
typedef struct lock_request {
    const char *path;
    int timeout_ms;      /* ZKC_FOREVER, 0 (try once) or a bound */
    int grace_ms;        /* between SIGTERM and SIGKILL */
    int kind;            /* ZKC_LOCK_MUTEX, _READ or _WRITE */
    int kill_on_suspend;
    char **command;      /* argv of COMMAND, inside our argv */
} lock_request;

typedef struct supervisor {
    lock_request rq;
    zkc_client_options copts;
    sigset_t orig_mask; /* the mask COMMAND gets back */
    int sfd;            /* signalfd: the forwarded signals, SIGCHLD, SIGCONT */
    int pfd[2];         /* self-pipe that the library's callbacks write to */
    zkc_client *c;
    zkc_rwlock *rw;     /* for --read/--write; l is one of its sides */
    zkc_lock *l;
    lock_ctx x;
    int held;
    pid_t pid;          /* COMMAND, leader of its own process group; -1: none */
    int tty;            /* the terminal handed to COMMAND, or -1 */
    char **env;
    /* supervision */
    int session_ms;
    int terminating, killed, seen_susp, seen_reco;
    int64_t kill_at, suspended_until; /* CLOCK_MONOTONIC ms; 0: not set */
} supervisor;

/* A step's "go on"; anything else is the exit status. */
enum { GO_ON = -1 };

/* ---- step 1: parse */

static int lock_parse(int argc, char **argv, lock_request *rq)
{
    args a = {argc, argv, 0, 0, NULL, NULL};
    *rq = (lock_request){.timeout_ms = ZKC_FOREVER, .grace_ms = 5000, .kind = ZKC_LOCK_MUTEX};
    for (int id; !rq->command && (id = next_arg(&a, lock_opts)) != A_END;) {
        switch (id) {
        case A_ERR: return ZX_USAGE;
        case A_POS:
            if (!rq->path)
                rq->path = a.val;
            else
                rq->command = &a.argv[a.i - 1]; /* the command starts here: stop parsing */
            break;
        case A_DASHDASH:
            if (rq->path && a.i < a.argc)
                rq->command = &a.argv[a.i];
            break;
        case L_TIMEOUT:
            if (parse_seconds(a.val, "--timeout", &rq->timeout_ms))
                return ZX_USAGE;
            break;
        case L_GRACE:
            if (parse_seconds(a.val, "--grace", &rq->grace_ms))
                return ZX_USAGE;
            break;
        case L_READ:
        case L_WRITE: {
            int want = id == L_READ ? ZKC_LOCK_READ : ZKC_LOCK_WRITE;
            if (rq->kind != ZKC_LOCK_MUTEX && rq->kind != want) {
                msg("--read and --write exclude each other");
                return ZX_USAGE;
            }
            rq->kind = want;
            break;
        }
        case L_KILL_SUSPEND: rq->kill_on_suspend = 1; break;
        }
    }
    if (g.help) {
        help_lock(stdout);
        return ZX_OK;
    }
    if (!rq->path) {
        msg("missing PATH and COMMAND (see 'zkcoord lock --help')");
        return ZX_USAGE;
    }
    if (check_path(rq->path))
        return ZX_USAGE;
    if (!rq->command) {
        msg("missing COMMAND after PATH %s (see 'zkcoord lock --help')", rq->path);
        return ZX_USAGE;
    }
    return GO_ON;
}

/* ---- step 2: acquire */

/* Every thread (ours and the library's, created from now on) blocks the
 * signals we handle, so they are only ever read from the signalfd. SIGTTOU
 * stays blocked so that taking the terminal back cannot stop us. */
static int setup_signals(supervisor *s)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof forwarded_signals / sizeof forwarded_signals[0]; i++)
        sigaddset(&set, forwarded_signals[i]);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGCONT);
    sigset_t block = set;
    sigaddset(&block, SIGTTOU);
    pthread_sigmask(SIG_BLOCK, &block, &s->orig_mask);
    record_startup_fds();
    s->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (s->sfd < 0 || pipe2(s->pfd, O_CLOEXEC | O_NONBLOCK) < 0) {
        msg("cannot set up signal handling: %s", strerror(errno));
        return ZX_FAIL;
    }
    return GO_ON;
}

/* Connect in a helper thread so that ^C works while we wait. */
static int lock_connect(supervisor *s)
{
    connect_job job = {.opts = s->copts, .wake_w = s->pfd[1]};
    pthread_t th;
    if ((errno = pthread_create(&th, NULL, connect_thread, &job))) {
        msg("cannot start a thread: %s", strerror(errno));
        return ZX_FAIL;
    }
    while (!atomic_load(&job.done)) {
        int sig = wait_wake(s->sfd, s->pfd[0], -1);
        if (is_forwarded(sig)) {
            msg("interrupted by signal %d while connecting", sig);
            fflush(NULL);
            _exit(128 + sig); /* nothing held yet; the session, if any, ends with us */
        }
    }
    pthread_join(th, NULL);
    if (job.rc)
        return connect_failed(job.rc, job.msg, s->copts.hosts);
    s->c = job.c;
    return GO_ON;
}

static int lock_acquire(supervisor *s)
{
    const char *path = s->rq.path;
    int rc = s->rq.kind == ZKC_LOCK_MUTEX ? zkc_lock_create(s->c, path, &s->l) : zkc_rwlock_create(s->c, path, &s->rw);
    if (rc)
        return fail_lib(rc, zkc_errmsg(), "lock %s", path);
    if (s->rw)
        s->l = s->rq.kind == ZKC_LOCK_READ ? zkc_rwlock_read(s->rw) : zkc_rwlock_write(s->rw);
    s->x.wake_w = s->pfd[1];
    zkc_lock_set_listener(s->l, on_lock_event, &s->x);
    if ((rc = zkc_lock_acquire_async(s->l, s->rq.timeout_ms, on_acquired, &s->x)))
        return fail_lib(rc, zkc_errmsg(), "lock %s: cannot start acquiring", path);
    while (!atomic_load(&s->x.acq_done)) {
        int sig = wait_wake(s->sfd, s->pfd[0], -1);
        if (is_forwarded(sig)) {
            zkc_lock_cancel(s->l); /* either the grant wins (then we release) or the node is gone */
            s->held = atomic_load(&s->x.acq_done) && s->x.acq_status == 0;
            msg("interrupted by signal %d while waiting for lock %s", sig, path);
            return 128 + sig;
        }
    }
    if (s->x.acq_status == ZKC_ETIMEDOUT) {
        if (s->rq.timeout_ms == 0)
            msg("lock %s is busy (--timeout 0: not waiting)", path);
        else
            msg("lock %s: not acquired within %.3g s", path, s->rq.timeout_ms / 1000.0);
        describe_holder(s->c, path);
        return ZX_BUSY;
    }
    if (s->x.acq_status)
        return fail_lib(s->x.acq_status, s->x.acq_msg, "lock %s: cannot acquire", path);
    s->held = 1;
    if (atomic_load(&s->x.lost) || (s->rq.kill_on_suspend && atomic_load(&s->x.suspended))) {
        msg("lock %s was lost right after it was granted; not running the command", path);
        return ZX_LOST;
    }
    if (g.verbose)
        msg("lock %s acquired, fencing token %" PRId64, path, s->x.acq_token);
    return GO_ON;
}

/* ---- step 3: run the child */

static int run_child(supervisor *s)
{
    char **command = s->rq.command;
    if (!(s->env = command_env(s->x.acq_token, s->rq.path))) {
        msg("out of memory");
        return ZX_FAIL;
    }
    /* Give the terminal to the command when we are in the foreground, so an
     * interactive command can read it and ^C/^Z reach it directly. */
    if (isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp())
        s->tty = STDIN_FILENO;
    int errp[2];
    if (pipe2(errp, O_CLOEXEC) < 0) {
        msg("cannot create a pipe: %s", strerror(errno));
        return ZX_FAIL;
    }
    cloexec_new_fds();
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        msg("cannot fork: %s", strerror(errno));
        close(errp[0]);
        close(errp[1]);
        return ZX_FAIL;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls from here to exec. If zkcoord dies
         * (crash, kill -9), nobody watches the lock any more: the command
         * must not go on believing it holds it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(128 + SIGKILL);
        setpgid(0, 0);
        if (s->tty >= 0)
            tcsetpgrp(s->tty, getpid());
        sigprocmask(SIG_SETMASK, &s->orig_mask, NULL);
        execvpe(command[0], command, s->env);
        int e = errno;
        ssize_t w = write(errp[1], &e, sizeof e);
        (void)w;
        _exit(e == ENOENT ? 127 : 126);
    }
    s->pid = pid;
    setpgid(pid, pid); /* also here: no window where the group does not exist */
    if (s->tty >= 0)
        tcsetpgrp(s->tty, pid);
    close(errp[1]);
    int exec_errno = 0;
    ssize_t got;
    do
        got = read(errp[0], &exec_errno, sizeof exec_errno);
    while (got < 0 && errno == EINTR);
    close(errp[0]);
    if (got == (ssize_t)sizeof exec_errno) {
        int st;
        waitpid(pid, &st, 0);
        s->pid = -1;
        msg("cannot run '%s': %s", command[0], strerror(exec_errno));
        return exec_errno == ENOENT ? 127 : 126;
    }
    return GO_ON;
}

/* ---- step 4: supervise: forward signals, watch the hold, reap */

static void forward_signal(supervisor *s, int sig)
{
    if (is_forwarded(sig)) {
        if (g.verbose)
            msg("forwarding signal %d to process group %d", sig, (int)s->pid);
        kill(-s->pid, sig);
    } else if (sig == SIGCONT && s->tty >= 0) {
        /* We were stopped along with a stopped command and are resumed
         * ("fg"): hand the terminal back and continue the command. */
        tcsetpgrp(s->tty, s->pid);
        kill(-s->pid, SIGCONT);
    }
}

/* Acts on the lock's events since the last look: decides to terminate the
 * command (LOST; SUSPENDED with --kill-on-suspend; SUSPENDED for a whole
 * session timeout) or warns. */
static void watch_hold(supervisor *s, int64_t now)
{
    const char *path = s->rq.path;
    double grace_s = s->rq.grace_ms / 1000.0;
    int susp = atomic_load(&s->x.suspended), reco = atomic_load(&s->x.reconnected);
    int last = atomic_load(&s->x.last_event);
    if (!s->terminating && atomic_load(&s->x.lost)) {
        s->terminating = 1;
        msg("lock %s was LOST while the command ran (session ended or lock node deleted): "
            "sending SIGTERM to process group %d, SIGKILL in %.3g s",
            path, (int)s->pid, grace_s);
    } else if (!s->terminating && susp != s->seen_susp && s->rq.kill_on_suspend) {
        s->terminating = 1;
        msg("lock %s is SUSPENDED (connection to ZooKeeper lost, the lock may be lost) and "
            "--kill-on-suspend is set: sending SIGTERM to process group %d, SIGKILL in %.3g s",
            path, (int)s->pid, grace_s);
    } else if (!s->terminating && s->suspended_until && now >= s->suspended_until) {
        /* Safety net: after a whole session timeout without a server the
         * servers have expired the session, whatever the library says. */
        s->terminating = 1;
        msg("lock %s: still SUSPENDED after the session timeout (%d ms): the session has expired "
            "on the servers, the lock is LOST: sending SIGTERM to process group %d, SIGKILL in %.3g s",
            path, s->session_ms, (int)s->pid, grace_s);
    } else if (!s->terminating && susp != s->seen_susp) {
        msg("warning: lock %s is SUSPENDED: connection to ZooKeeper lost, the lock may be "
            "lost; the command keeps running (use --kill-on-suspend to stop it)", path);
    } else if (!s->terminating && reco != s->seen_reco && last == ZKC_LOCK_EVENT_RECONNECTED) {
        msg("lock %s: reconnected with the same session; still held", path);
    }
    if (last == ZKC_LOCK_EVENT_SUSPENDED && !s->suspended_until)
        s->suspended_until = now + s->session_ms;
    else if (last != ZKC_LOCK_EVENT_SUSPENDED)
        s->suspended_until = 0;
    s->seen_susp = susp;
    s->seen_reco = reco;
}

/* Once terminating: SIGTERM (and SIGCONT: a stopped command must run to die
 * of it), then SIGKILL after the grace period. */
static void escalate(supervisor *s, int64_t now)
{
    if (!s->terminating)
        return;
    if (!s->kill_at) {
        kill(-s->pid, SIGTERM);
        kill(-s->pid, SIGCONT);
        s->kill_at = now + s->rq.grace_ms;
    }
    if (!s->killed && now >= s->kill_at) {
        msg("process group %d still running after %.3g s: sending SIGKILL", (int)s->pid, s->rq.grace_ms / 1000.0);
        kill(-s->pid, SIGKILL);
        s->killed = 1;
    }
}

/* GO_ON while the command runs (or was only stopped); its exit status, as
 * ours, once it exited. */
static int reap_child(supervisor *s)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int flags = WEXITED | WNOHANG | WNOWAIT | (s->tty >= 0 ? WSTOPPED : 0);
    if (waitid(P_PID, (id_t)s->pid, &si, flags) < 0 || si.si_pid != s->pid)
        return GO_ON;
    if (si.si_code == CLD_STOPPED) {
        /* ^Z: consume the stop, take the terminal back, stop ourselves
         * like the shell expects; SIGCONT resumes both (forward_signal).
         * Note: while stopped we send no heartbeats: a long stop loses the
         * lock. */
        waitid(P_PID, (id_t)s->pid, &si, WSTOPPED | WNOHANG);
        tcsetpgrp(s->tty, getpgrp());
        raise(SIGSTOP);
        return GO_ON;
    }
    /* The leader has exited but is not reaped yet, so its group id cannot
     * be reused: stragglers of a terminated command die with it. */
    if (s->terminating && !s->killed)
        kill(-s->pid, SIGKILL);
    int st;
    waitpid(s->pid, &st, 0);
    s->pid = -1;
    if (s->terminating) {
        msg("command terminated (%s %d); exiting with status %d", WIFSIGNALED(st) ? "signal" : "exit status",
            WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), ZX_LOST);
        return ZX_LOST;
    }
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

/* Child exit, lock events and signals all wake the one poll: no polling loop;
 * the only timed waits are the grace period and the SUSPENDED safety net. */
static int supervise(supervisor *s)
{
    s->session_ms = zkc_client_session_timeout(s->c);
    if (s->session_ms <= 0)
        s->session_ms = s->copts.session_timeout_ms;
    for (;;) {
        int64_t now = now_ms(CLOCK_MONOTONIC), next = INT64_MAX;
        if (s->terminating && !s->killed)
            next = s->kill_at;
        else if (!s->terminating && s->suspended_until)
            next = s->suspended_until;
        int wait_ms = next == INT64_MAX ? -1 : next > now ? (int)(next - now) : 0;
        forward_signal(s, wait_wake(s->sfd, s->pfd[0], wait_ms));
        now = now_ms(CLOCK_MONOTONIC);
        watch_hold(s, now);
        escalate(s, now);
        int ex = reap_child(s);
        if (ex != GO_ON)
            return ex;
    }
}

/* ---- the end: release, close, exit with exit_status */

static int finish(supervisor *s, int exit_status)
{
    if (s->tty >= 0)
        tcsetpgrp(s->tty, getpgrp());
    if (s->held && !atomic_load(&s->x.lost) && !zkc_client_connected(s->c)) {
        /* Nothing can be deleted without a server and an orderly teardown
         * would wait for one: leave, and let the servers delete the lock node
         * when the session expires (ephemeral). */
        int to = zkc_client_session_timeout(s->c);
        msg("not connected to ZooKeeper: lock %s is released when the session expires (within %d ms)", s->rq.path,
            to > 0 ? to : s->copts.session_timeout_ms);
        fflush(NULL);
        _exit(exit_status);
    }
    if (s->held && !atomic_load(&s->x.lost)) {
        int rc = zkc_lock_release(s->l);
        if (rc && rc != ZKC_ENOTHELD)
            fail_lib(rc, zkc_errmsg(), "warning: lock %s: release failed (the node goes with the session)", s->rq.path);
    }
    if (s->l)
        zkc_lock_set_listener(s->l, NULL, NULL);
    if (s->rw)
        zkc_rwlock_destroy(s->rw);
    else if (s->l)
        zkc_lock_destroy(s->l);
    if (s->c)
        zkc_client_destroy(s->c);
    if (s->env) {
        for (char **e = s->env; *e; e++)
            if (!strncmp(*e, "ZKC_FENCING_TOKEN=", 18) || !strncmp(*e, "ZKC_LOCK_PATH=", 14))
                free(*e);
        free(s->env);
    }
    for (int i = 0; i < 2; i++)
        if (s->pfd[i] >= 0)
            close(s->pfd[i]);
    if (s->sfd >= 0)
        close(s->sfd);
    return exit_status;
}

int cmd_lock(int argc, char **argv)
{
    supervisor s = {.sfd = -1, .pfd = {-1, -1}, .pid = -1, .tty = -1};
    int ex = lock_parse(argc, argv, &s.rq);
    if (ex != GO_ON)
        return ex;
    if ((ex = client_options(&s.copts)))
        return ex;
    ex = setup_signals(&s);
    if (ex == GO_ON)
        ex = lock_connect(&s);
    if (ex == GO_ON)
        ex = lock_acquire(&s);
    if (ex == GO_ON)
        ex = run_child(&s);
    if (ex == GO_ON)
        ex = supervise(&s);
    return finish(&s, ex);
}
