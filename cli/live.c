/* The live views ('queue --watch', 'stock ROOT SKU --watch'): a change watch
 * (zkc_watch) says when to read again; the main thread reads and prints.
 *
 * Everything that happens arrives through one pipe, so the main thread waits
 * in one poll: the watch's callback (dispatch thread) writes a byte per event
 * and SIGINT/SIGTERM's handler writes one too (write(2) is async-signal-safe).
 * Reads and printing stay on the main thread, where a blocking library call is
 * allowed and stdout has one writer. Bytes that pile up while a read runs are
 * taken together: one read answers any number of CHANGED calls.
 *
 * Output: on a terminal the screen is cleared and redrawn (ANSI clear + home)
 * at every change, and once a second from the last snapshot so ages move (no
 * server read: the view is redrawn on watches only); otherwise one snapshot per
 * change, as plain lines or, with --json, one object per line.
 */
#include "cli.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

static int live_pipe[2] = {-1, -1};

static void live_signal(int sig)
{
    int saved = errno;
    char b = sig == SIGINT ? 'i' : 't';
    if (write(live_pipe[1], &b, 1) < 0) {
        /* full: a byte already says to look */
    }
    errno = saved;
}

static int live_stop_status; /* the STOPPED call's status; read after its byte */

static void live_event(zkc_watch *w, zkc_watch_event ev, int status, void *ud)
{
    (void)w;
    (void)ud;
    char b = ev == ZKC_WATCH_CHANGED ? 'c' : ev == ZKC_WATCH_SUSPENDED ? 's' : ev == ZKC_WATCH_LOST ? 'l' : 'x';
    if (ev == ZKC_WATCH_STOPPED)
        __atomic_store_n(&live_stop_status, status, __ATOMIC_RELEASE);
    while (write(live_pipe[1], &b, 1) < 0 && errno == EINTR) {
    }
}

static void live_note(const live_view *v, int mode, const char *event, const char *text)
{
    char when[40];
    iso8601(now_ms(CLOCK_REALTIME), when, sizeof when);
    if (mode == LIVE_JSON) {
        printf("{\"time\":\"%s\",\"event\":\"%s\",\"message\":", when, event);
        json_str(stdout, text);
        printf("}\n");
    } else if (mode == LIVE_LINES) {
        printf("# %s %s %s: %s\n", when, v->what, v->title, text);
    }
    fflush(stdout);
}

static void live_draw(live_view *v, int mode, const char *status, const char *error)
{
    int64_t now = now_ms(CLOCK_REALTIME);
    if (mode == LIVE_TTY) {
        char when[40];
        iso8601(now, when, sizeof when);
        /* Home, clear the screen: the whole view is redrawn. */
        printf("\033[H\033[2J");
        printf("zkcoord %s %s    %s    (Ctrl-C to quit)\n", v->what, v->title, when);
        printf("%s\n\n", status);
        if (error)
            printf("error: %s\n", error);
        else
            v->print(v, LIVE_TTY, now);
    } else if (!error) {
        v->print(v, mode, now);
    }
    fflush(stdout);
}

int live_run(live_view *v)
{
    int mode = g.json ? LIVE_JSON : isatty(STDOUT_FILENO) ? LIVE_TTY : LIVE_LINES;
    if (pipe(live_pipe) != 0) {
        msg("pipe: %s", strerror(errno));
        return ZX_FAIL;
    }
    for (int i = 0; i < 2; i++)
        fcntl(live_pipe[i], F_SETFL, fcntl(live_pipe[i], F_GETFL) | O_NONBLOCK);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = live_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    zkc_watch *w = NULL;
    int rc = v->watch(v, live_event, NULL, &w);
    if (rc) {
        int ex = fail_lib(rc, zkc_errmsg(), "%s %s", v->what, v->title);
        return ex;
    }
    const char *status = "watching";
    char err[512];
    int have = 0, has_error = 0, ex = ZX_OK;
    for (;;) {
        struct pollfd p = {live_pipe[0], POLLIN, 0};
        int n = poll(&p, 1, mode == LIVE_TTY && (have || has_error) ? 1000 : -1);
        if (n < 0 && errno != EINTR) {
            msg("poll: %s", strerror(errno));
            ex = ZX_FAIL;
            break;
        }
        if (n == 0) { /* a terminal's clock tick: ages move */
            live_draw(v, mode, status, has_error ? err : NULL);
            continue;
        }
        char buf[256];
        int changed = 0, quit = 0, stopped = 0;
        ssize_t got;
        while ((got = read(live_pipe[0], buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < got; i++) {
                switch (buf[i]) {
                case 'c':
                    changed = 1;
                    break;
                case 's':
                    status = "connection lost: SUSPENDED, the view may be stale";
                    live_note(v, mode, "suspended", "connection lost; the session may live, the view may be stale");
                    if (mode == LIVE_TTY && have)
                        live_draw(v, mode, status, has_error ? err : NULL);
                    break;
                case 'l':
                    status = "session LOST: changes may have been missed; re-reading on a new session";
                    live_note(v, mode, "lost", "the session ended; changes may have been missed; re-reading");
                    break;
                case 'x':
                    stopped = 1;
                    break;
                default:
                    quit = 1;
                }
            }
        }
        if (quit)
            break;
        if (stopped) {
            int st = __atomic_load_n(&live_stop_status, __ATOMIC_ACQUIRE);
            ex = fail_lib(st, zkc_strerror(st), "%s %s: the watch ended", v->what, v->title);
            break;
        }
        if (!changed)
            continue;
        status = "watching";
        rc = v->read(v);
        if (rc) {
            /* Shown, not fatal: the watch re-arms and says when to read again. */
            snprintf(err, sizeof err, "%s (%s)", zkc_errmsg(), zkc_strerror(rc));
            has_error = 1;
            if (mode == LIVE_TTY)
                live_draw(v, mode, status, err);
            else
                live_note(v, mode, "error", err);
            continue;
        }
        have = 1;
        has_error = 0;
        live_draw(v, mode, status, NULL);
    }
    zkc_watch_stop(w);
    if (mode == LIVE_TTY && ex == ZX_OK)
        printf("\n");
    fflush(stdout);
    return ex;
}
