/* zkcoord ratelimit: take permits from a shared rate limit, then either exit
 * (take, for shell scripts) or run a command.
 *
 * Permits are not holds: once granted nothing can take them back, so unlike
 * `zkcoord lock` there is nothing to supervise while the command runs. The
 * command replaces zkcoord (exec) after the session is closed, so its status,
 * signals and terminal are its own. batch is 1: a short-lived process must not
 * reserve slots it will never use (they would lapse, and other processes
 * would queue behind them). */
#include "cli.h"

#include <unistd.h>

void help_ratelimit(FILE *f)
{
    fprintf(f,
            "usage: zkcoord ratelimit PATH --rate R/S [options] take\n"
            "       zkcoord ratelimit PATH --rate R/S [options] -- COMMAND [ARGS...]\n"
            "\n"
            "Take N permits (default 1) from the rate limit at PATH, shared by every process\n"
            "that uses PATH, waiting as long as needed (or --timeout). 'take' then exits 0\n"
            "and prints nothing; with -- COMMAND, zkcoord then runs COMMAND in its place\n"
            "and exits with its status (127 not found, 126 not executable). The limit is\n"
            "hard by default: any interval of L seconds sees at most R x L / S + B permits\n"
            "(on the servers' clock), with no burst at window boundaries. All users of PATH\n"
            "must give the same --rate, --burst and mode.\n"
            "Exit status 3: not granted within --timeout; 4: no server reachable (no\n"
            "permit was taken).\n"
            "\n"
            "Options:\n"
            "  --rate R/S        R permits per S seconds (S may be fractional, >= 0.01);\n"
            "                    required\n"
            "  --burst B         hard mode: permits that may be granted at once (default 1,\n"
            "                    at most R; raised to N if smaller)\n"
            "  --fixed-window    count permits per fixed window of S seconds instead (up to\n"
            "                    2 x R in any S seconds around a window boundary)\n"
            "  -n, --count N     permits to take (1..R; default 1)\n"
            "  -t, --timeout S   wait at most S seconds (fractional; 0: do not wait)\n"
            "\n" GLOBAL_OPTS_HELP "\n" EXIT_CODES_HELP
            "\n"
            "Examples:\n"
            "  for f in *.csv; do\n"
            "      zkcoord ratelimit /api/partner --rate 10/1 take && upload \"$f\"\n"
            "  done\n"
            "  zkcoord ratelimit /api/partner --rate 100/60 --burst 5 -- curl -fsS \"$URL\"\n");
}

enum { R_RATE = 1, R_BURST, R_FIXED, R_COUNT, R_TIMEOUT };

static const optdef ratelimit_opts[] = {
    {"rate", 0, 1, R_RATE},
    {"burst", 0, 1, R_BURST},
    {"fixed-window", 0, 0, R_FIXED},
    {"count", 'n', 1, R_COUNT},
    {"timeout", 't', 1, R_TIMEOUT},
    {NULL, 0, 0, 0},
};

/* "R/S": R permits (>= 1) per S seconds (>= 10 ms). 0, or -1 after a message. */
static int parse_rate(const char *s, int64_t *permits, int *window_ms)
{
    const char *slash = strchr(s, '/');
    if (!slash) {
        msg("--rate '%s': expected R/S, permits per seconds (e.g. 10/1)", s);
        return -1;
    }
    char r[32];
    size_t n = (size_t)(slash - s);
    if (n >= sizeof r) {
        msg("--rate '%s': R is too long", s);
        return -1;
    }
    memcpy(r, s, n);
    r[n] = '\0';
    if (parse_i64(r, "--rate R", permits) || parse_seconds(slash + 1, "--rate S", window_ms))
        return -1;
    if (*permits < 1) {
        msg("--rate '%s': R must be at least 1", s);
        return -1;
    }
    if (*window_ms < 10) {
        msg("--rate '%s': S must be at least 0.01 seconds", s);
        return -1;
    }
    return 0;
}

int cmd_ratelimit(int argc, char **argv)
{
    args a = {argc, argv, 0, 0, NULL, NULL};
    const char *path = NULL, *verb = NULL;
    char **command = NULL;
    zkc_ratelimit_options o;
    zkc_ratelimit_options_init(&o);
    o.mode = ZKC_RL_HARD;
    o.batch = 1;
    int have_rate = 0, have_burst = 0;
    int64_t burst = 1, n = 1;
    int timeout_ms = ZKC_FOREVER;
    for (int id; !command && (id = next_arg(&a, ratelimit_opts)) != A_END;) {
        switch (id) {
        case A_ERR: return ZX_USAGE;
        case A_DASHDASH:
            if (a.i < argc)
                command = argv + a.i;
            break;
        case A_POS:
            if (!path)
                path = a.val;
            else if (!verb)
                verb = a.val;
            else {
                msg("unexpected argument '%s' (see 'zkcoord ratelimit --help')", a.val);
                return ZX_USAGE;
            }
            break;
        case R_RATE:
            if (parse_rate(a.val, &o.permits, &o.window_ms))
                return ZX_USAGE;
            have_rate = 1;
            break;
        case R_BURST:
            if (parse_i64(a.val, "--burst", &burst))
                return ZX_USAGE;
            if (burst < 1) {
                msg("--burst %s: must be at least 1", a.val);
                return ZX_USAGE;
            }
            have_burst = 1;
            break;
        case R_FIXED: o.mode = ZKC_RL_FIXED_WINDOW; break;
        case R_COUNT:
            if (parse_i64(a.val, a.name, &n))
                return ZX_USAGE;
            if (n < 1) {
                msg("%s %s: must be at least 1", a.name, a.val);
                return ZX_USAGE;
            }
            break;
        case R_TIMEOUT:
            if (parse_seconds(a.val, "--timeout", &timeout_ms))
                return ZX_USAGE;
            break;
        }
    }
    if (g.help) {
        help_ratelimit(stdout);
        return ZX_OK;
    }
    if (!path) {
        msg("missing PATH: usage: zkcoord ratelimit PATH --rate R/S take | -- COMMAND");
        return ZX_USAGE;
    }
    if (check_path(path))
        return ZX_USAGE;
    if (verb && strcmp(verb, "take")) {
        msg("unknown operation '%s': expected take, or -- COMMAND", verb);
        return ZX_USAGE;
    }
    if (!verb == !command) {
        msg(verb ? "give either take or -- COMMAND, not both" : "missing take or -- COMMAND");
        return ZX_USAGE;
    }
    if (!have_rate) {
        msg("missing --rate R/S (see 'zkcoord ratelimit --help')");
        return ZX_USAGE;
    }
    if (n > o.permits) {
        msg("-n %" PRId64 " is more than the %" PRId64 " permits of --rate", n, o.permits);
        return ZX_USAGE;
    }
    if (o.mode == ZKC_RL_FIXED_WINDOW && have_burst) {
        msg("--burst applies to the hard limit only, not to --fixed-window");
        return ZX_USAGE;
    }
    if (o.mode == ZKC_RL_HARD && burst > o.permits) {
        msg("--burst %" PRId64 " is more than the %" PRId64 " permits of --rate", burst, o.permits);
        return ZX_USAGE;
    }
    /* A call may ask for at most burst permits: -n N needs a burst of N. */
    o.burst = burst > n ? burst : n;

    zkc_client *c;
    int ex = connect_client(&c);
    if (ex)
        return ex;
    zkc_ratelimit *rl;
    int rc = zkc_ratelimit_create_opts(c, path, &o, &rl);
    if (!rc) {
        rc = zkc_ratelimit_acquire(rl, n, timeout_ms);
        zkc_ratelimit_destroy(rl);
    }
    if (rc == ZKC_ETIMEDOUT) {
        msg("ratelimit %s: %" PRId64 " permit%s not granted within %.3g s", path, n, n == 1 ? "" : "s",
            timeout_ms / 1000.0);
        ex = ZX_BUSY;
    } else if (rc) {
        ex = fail_lib(rc, zkc_errmsg(), "ratelimit %s", path);
        if (rc == ZKC_EUNKNOWN) /* the slots of an unknown write are never granted */
            ex = ZX_NOSERVER;
    }
    zkc_client_destroy(c);
    if (ex || !command)
        return ex;
    fflush(NULL);
    execvp(command[0], command);
    int e = errno;
    msg("cannot run '%s': %s", command[0], strerror(e));
    return e == ENOENT ? 127 : 126;
}
