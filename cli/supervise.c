/* The child supervisor of 'zkcoord lock' and 'zkcoord elect', in the spirit of
 * flock(1): run a command only while something is held.
 *
 * The steps, one function each: set up signals and connect (in a helper
 * thread, waiting for it on a self-pipe, so that ^C works while waiting);
 * wait for the grant the same way; run the child (fork, own process group, the
 * terminal handed over, close-on-exec for every descriptor we opened);
 * supervise (forward signals to the child's group, act on the hold's events:
 * LOST, or SUSPENDED with --kill-on-suspend or for longer than a session
 * timeout, terminates the group with SIGTERM then SIGKILL after --grace).
 * Every wait is a poll on a signalfd and the self-pipe that the library's
 * callbacks write to: no polling loop, no sleeps. What is held, and how it is
 * taken and given back, is the subcommand's (cli/lock.c, cli/elect.c). */
#include "supervise.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

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
void hold_granted(hold_events *x, int status, int64_t token)
{
    x->status = status;
    x->token = token;
    if (status)
        snprintf(x->errmsg, sizeof x->errmsg, "%s", zkc_errmsg());
    atomic_store(&x->granted_done, 1);
    wake(x->wake_w);
}

/* Dispatch thread. */
void hold_event(hold_events *x, int ev)
{
    atomic_store(&x->last_event, ev);
    switch (ev) {
    case HOLD_SUSPENDED: atomic_fetch_add(&x->suspended, 1); break;
    case HOLD_RECONNECTED: atomic_fetch_add(&x->reconnected, 1); break;
    case HOLD_LOST: atomic_fetch_add(&x->lost, 1); break;
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

/* The variables we set (an inherited one of the same name is replaced). */
static int ours(const char *e, const char *path_env)
{
    return !strncmp(e, "ZKC_FENCING_TOKEN=", 18) || !strncmp(e, "ZKC_GUARD_NODE=", 15) ||
           !strncmp(e, path_env, strlen(path_env));
}

/* Environment for the command: ours plus the token, the path and the hold's
 * node (for guarded writes: 'zkcoord counter add --guard "$ZKC_GUARD_NODE"'). */
static char **command_env(int64_t token, const char *path_env, const char *path, const char *guard_node)
{
    size_t n = 0;
    for (char **e = environ; e && *e; e++)
        n++;
    char **env = calloc(n + 4, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (char **e = environ; e && *e; e++)
        if (!ours(*e, path_env))
            env[k++] = *e;
    size_t mine = k;
    if (asprintf(&env[k++], "ZKC_FENCING_TOKEN=%" PRId64, token) < 0 ||
        asprintf(&env[k++], "%s%s", path_env, path) < 0 ||
        (*guard_node && asprintf(&env[k++], "ZKC_GUARD_NODE=%s", guard_node) < 0)) {
        for (size_t i = mine; i + 1 < k; i++)
            free(env[i]);
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

void sup_init(supervisor *s)
{
    memset(s, 0, sizeof *s);
    s->sfd = -1;
    s->pfd[0] = s->pfd[1] = -1;
    s->pid = -1;
    s->tty = -1;
    s->grace_ms = 5000;
}

/* Every thread (ours and the library's, created from now on) blocks the
 * signals we handle, so they are only ever read from the signalfd. SIGTTOU
 * stays blocked so that taking the terminal back cannot stop us. */
static int sup_signals(supervisor *s)
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
static int sup_connect(supervisor *s)
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

int sup_parse(supervisor *s, int argc, char **argv, const optdef *opts, const char *cmd, void (*help)(FILE *f),
              int (*own)(int id, const args *a, void *ud), void *ud)
{
    args a = {argc, argv, 0, 0, NULL, NULL};
    for (int id; !s->command && (id = next_arg(&a, opts)) != A_END;) {
        int ex = 0;
        switch (id) {
        case A_ERR: return ZX_USAGE;
        case A_POS:
            if (!s->path)
                s->path = a.val;
            else
                s->command = &a.argv[a.i - 1]; /* the command starts here: stop parsing */
            break;
        case A_DASHDASH:
            if (s->path && a.i < a.argc)
                s->command = &a.argv[a.i];
            break;
        case SUP_GRACE:
            if (parse_seconds(a.val, "--grace", &s->grace_ms))
                return ZX_USAGE;
            break;
        case SUP_KILL_SUSPEND: s->kill_on_suspend = 1; break;
        default: ex = own(id, &a, ud); break;
        }
        if (ex)
            return ex;
    }
    if (g.help) {
        help(stdout);
        return ZX_OK;
    }
    if (!s->path) {
        msg("missing PATH and COMMAND (see 'zkcoord %s --help')", cmd);
        return ZX_USAGE;
    }
    if (check_path(s->path))
        return ZX_USAGE;
    if (!s->command) {
        msg("missing COMMAND after PATH %s (see 'zkcoord %s --help')", s->path, cmd);
        return ZX_USAGE;
    }
    return GO_ON;
}

int sup_wait_grant(supervisor *s, void (*cancel)(void *ud), void (*busy)(void *ud), void *ud)
{
    s->x.wake_w = s->pfd[1];
    while (!atomic_load(&s->x.granted_done)) {
        int sig = wait_wake(s->sfd, s->pfd[0], -1);
        if (is_forwarded(sig)) {
            cancel(ud); /* either the grant wins (then it is given back) or nothing is held */
            s->held = atomic_load(&s->x.granted_done) && s->x.status == 0;
            msg("interrupted by signal %d while waiting for %s", sig, s->what);
            return 128 + sig;
        }
    }
    if (s->x.status == ZKC_ETIMEDOUT) {
        busy(ud);
        return ZX_BUSY;
    }
    if (s->x.status)
        return fail_lib(s->x.status, s->x.errmsg, "%s: not granted", s->what);
    s->held = 1;
    if (atomic_load(&s->x.lost) || (s->kill_on_suspend && atomic_load(&s->x.suspended))) {
        msg("%s was lost right after it was granted; not running the command", s->what);
        return ZX_LOST;
    }
    if (g.verbose)
        msg("%s granted, fencing token %" PRId64, s->what, s->x.token);
    return GO_ON;
}

static int sup_run_child(supervisor *s)
{
    char **command = s->command;
    if (!(s->env = command_env(s->x.token, s->path_env, s->path, s->guard_node))) {
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

/* Acts on the hold's events since the last look: decides to terminate the
 * command (LOST; SUSPENDED with --kill-on-suspend; SUSPENDED for a whole
 * session timeout) or warns. */
static void watch_hold(supervisor *s, int64_t now)
{
    const char *what = s->what;
    double grace_s = s->grace_ms / 1000.0;
    int susp = atomic_load(&s->x.suspended), reco = atomic_load(&s->x.reconnected);
    int last = atomic_load(&s->x.last_event);
    if (!s->terminating && atomic_load(&s->x.lost)) {
        s->terminating = 1;
        msg("%s was LOST while the command ran (session ended or its node deleted): "
            "sending SIGTERM to process group %d, SIGKILL in %.3g s",
            what, (int)s->pid, grace_s);
    } else if (!s->terminating && susp != s->seen_susp && s->kill_on_suspend) {
        s->terminating = 1;
        msg("%s is SUSPENDED (connection to ZooKeeper lost, it may be lost) and "
            "--kill-on-suspend is set: sending SIGTERM to process group %d, SIGKILL in %.3g s",
            what, (int)s->pid, grace_s);
    } else if (!s->terminating && s->suspended_until && now >= s->suspended_until) {
        /* Safety net: after a whole session timeout without a server the
         * servers have expired the session, whatever the library says. */
        s->terminating = 1;
        msg("%s: still SUSPENDED after the session timeout (%d ms): the session has expired "
            "on the servers, it is LOST: sending SIGTERM to process group %d, SIGKILL in %.3g s",
            what, s->session_ms, (int)s->pid, grace_s);
    } else if (!s->terminating && susp != s->seen_susp) {
        msg("warning: %s is SUSPENDED: connection to ZooKeeper lost, it may be "
            "lost; the command keeps running (use --kill-on-suspend to stop it)", what);
    } else if (!s->terminating && reco != s->seen_reco && last == HOLD_RECONNECTED) {
        msg("%s: reconnected with the same session; still held", what);
    }
    if (last == HOLD_SUSPENDED && !s->suspended_until)
        s->suspended_until = now + s->session_ms;
    else if (last != HOLD_SUSPENDED)
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
        s->kill_at = now + s->grace_ms;
    }
    if (!s->killed && now >= s->kill_at) {
        msg("process group %d still running after %.3g s: sending SIGKILL", (int)s->pid, s->grace_ms / 1000.0);
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

/* Child exit, hold events and signals all wake the one poll: no polling loop;
 * the only timed waits are the grace period and the SUSPENDED safety net. */
static int sup_supervise(supervisor *s)
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

static void sup_wind_down(supervisor *s, int exit_status)
{
    if (s->tty >= 0)
        tcsetpgrp(s->tty, getpgrp());
    if (!s->held || atomic_load(&s->x.lost) || zkc_client_connected(s->c))
        return;
    /* Nothing can be deleted without a server and an orderly teardown would
     * wait for one: leave, and let the servers delete the node when the
     * session expires (ephemeral). */
    int to = zkc_client_session_timeout(s->c);
    msg("not connected to ZooKeeper: %s is released when the session expires (within %d ms)", s->what,
        to > 0 ? to : s->copts.session_timeout_ms);
    fflush(NULL);
    _exit(exit_status);
}

static int sup_close(supervisor *s, int exit_status)
{
    if (s->c)
        zkc_client_destroy(s->c);
    if (s->env) {
        for (char **e = s->env; *e; e++)
            if (ours(*e, s->path_env))
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

int sup_run(supervisor *s, int (*take)(void *ud), void (*end)(void *ud, int give_back), void *ud)
{
    int ex = sup_signals(s);
    if (ex == GO_ON)
        ex = sup_connect(s);
    if (ex == GO_ON)
        ex = take(ud);
    if (ex == GO_ON)
        ex = sup_run_child(s);
    if (ex == GO_ON)
        ex = sup_supervise(s);
    sup_wind_down(s, ex);
    end(ud, s->held && !atomic_load(&s->x.lost));
    return sup_close(s, ex);
}
