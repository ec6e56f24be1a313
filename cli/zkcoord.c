/* zkcoord(1): fair distributed locks and exact counters on ZooKeeper, from a
 * shell. Built only on the public API in <zkcoord.h>.
 *
 * Layout: option parsing shared by every subcommand (global options are
 * accepted before or after the subcommand name), a table of subcommands (add
 * one by writing its run and help functions and one table row), then the
 * subcommands. Exit codes are the ZX_* values below; they are documented in
 * the --help text (EXIT_CODES_HELP), which README.md quotes verbatim, and in
 * zkcoord.1: tests/cli/exit-codes.sh fails when those drift apart. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <zkcoord.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/signalfd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ------------------------------------------------------------ exit codes */

enum {
    ZX_OK = 0,
    ZX_FAIL = 1,     /* any other failure (server error, malformed data, ...) */
    ZX_USAGE = 2,    /* bad command line: option, path, number, missing --hosts */
    ZX_BUSY = 3,     /* lock not acquired in time / busy; counter too contended */
    ZX_NOSERVER = 4, /* no ZooKeeper server reachable, or the session ended */
    ZX_AUTH = 5,     /* authentication failed or the ACL forbids the operation */
    ZX_LOST = 6,     /* lock: the hold was lost while the command ran */
    ZX_BOUND = 7,    /* counter add refused by --floor/--ceiling */
    ZX_MISMATCH = 8, /* counter cas: the current value differs */
    ZX_UNKNOWN = 9,  /* write sent but its outcome is unknown (retry with the same --key) */
    ZX_OUTOFSTOCK = 10 /* stock reserve: not enough stock (fail-fast), nothing reserved */
};

#define EXIT_CODES_HELP                                                                   \
    "Exit status:\n"                                                                      \
    "  0  success (for 'lock': the command's own status is passed through)\n"             \
    "  1  other failure (server error, malformed node data, overflow, ...)\n"             \
    "  2  usage error: bad option, path or number; no --hosts/ZKC_HOSTS\n"                \
    "  3  timeout: the lock is busy (--timeout passed), or a counter is too contended\n"  \
    "  4  no ZooKeeper server reachable (or its name does not resolve), or the session\n" \
    "     ended\n"                                                                          \
    "  5  authentication failed, or the node's ACL forbids the operation\n"               \
    "  6  lock: the lock was lost (or, with --kill-on-suspend, suspended) while the\n"    \
    "     command ran; the command's process group was terminated\n"                      \
    "  7  counter add: refused by --floor/--ceiling (nothing written)\n"                  \
    "  8  counter cas: the current value differs from the expected one\n"                 \
    "  9  outcome unknown: the write was sent but no server confirmed it; repeat the\n"   \
    "     command with the same --key to apply it exactly once\n"                         \
    "  10 stock reserve: not enough stock (without --wait); nothing reserved\n"             \
    "  126/127  lock: COMMAND not executable / not found\n"                               \
    "  128+N    lock: COMMAND was killed by signal N (or zkcoord was interrupted by it)\n"

/* ------------------------------------------------------------ global state */

static struct {
    const char *hosts;
    const char *auth;
    int acl; /* zkc_acl */
    const char *meta_root;
    int session_timeout_ms; /* 0: library default */
    int connect_timeout_ms; /* 0: library default */
    int json;
    int verbose;
    int help;
    const char *cmd; /* "zkcoord lock", for messages */
} g = {.cmd = "zkcoord"};

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", g.cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Exit status for a library error code. */
static int exit_for(int rc)
{
    switch (rc) {
    case ZKC_OK: return ZX_OK;
    case ZKC_EINVAL: return ZX_USAGE;
    case ZKC_ETIMEDOUT:
    case ZKC_ECONTENDED: return ZX_BUSY;
    case ZKC_ECONNLOSS:
    case ZKC_ESESSIONLOST: return ZX_NOSERVER;
    case ZKC_EAUTH:
    case ZKC_ENOAUTH: return ZX_AUTH;
    case ZKC_EBOUND: return ZX_BOUND;
    case ZKC_EMISMATCH: return ZX_MISMATCH;
    case ZKC_EUNKNOWN: return ZX_UNKNOWN;
    case ZKC_EOUTOFSTOCK: return ZX_OUTOFSTOCK;
    default: return ZX_FAIL;
    }
}

/* "<what>: <library sentence> (<code name>)"; returns the exit status. The
 * library message is per thread: pass it in when it was captured elsewhere. */
static int fail_lib(int rc, const char *errmsg, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_lib(int rc, const char *errmsg, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *code = zkc_strerror(rc);
    if (!errmsg || !*errmsg || !strcmp(errmsg, "no error"))
        msg("%s: %s", what, code);
    else if (strcasestr(errmsg, code))
        msg("%s: %s", what, errmsg);
    else
        msg("%s: %s [%s]", what, errmsg, code);
    return exit_for(rc);
}

/* ------------------------------------------------------------ options */

enum { A_END = 0, A_POS = -1, A_DASHDASH = -2, A_ERR = -3 };

typedef struct optdef {
    const char *name; /* long name without "--" */
    char shortc;      /* 0: none */
    int has_arg;
    int id; /* > 0 */
} optdef;

enum {
    G_HOSTS = 1000,
    G_SESSION_TIMEOUT,
    G_CONNECT_TIMEOUT,
    G_AUTH,
    G_ACL,
    G_META_ROOT,
    G_JSON,
    G_VERBOSE,
    G_HELP,
    G_VERSION
};

static const optdef global_opts[] = {
    {"hosts", 0, 1, G_HOSTS},
    {"session-timeout", 0, 1, G_SESSION_TIMEOUT},
    {"connect-timeout", 0, 1, G_CONNECT_TIMEOUT},
    {"auth", 0, 1, G_AUTH},
    {"acl", 0, 1, G_ACL},
    {"meta-root", 0, 1, G_META_ROOT},
    {"json", 0, 0, G_JSON},
    {"verbose", 'v', 0, G_VERBOSE},
    {"help", 'h', 0, G_HELP},
    {"version", 'V', 0, G_VERSION},
    {NULL, 0, 0, 0},
};

#define GLOBAL_OPTS_HELP                                                                          \
    "Global options (before or after the subcommand):\n"                                          \
    "  --hosts H              ZooKeeper servers \"host:port[,host:port...][/chroot]\"\n"          \
    "                         (default: $ZKC_HOSTS; one of the two is required)\n"                \
    "  --session-timeout MS   requested session timeout (default 10000; the servers clamp it)\n"  \
    "  --connect-timeout MS   how long to wait for the first session (default 15000)\n"           \
    "  --auth USER:PASS       digest credentials (default: $ZKC_AUTH; an empty ZKC_AUTH is none)\n" \
    "  --acl open|creator|creator-read\n"                                                         \
    "                         ACL of the nodes this command creates (default open: anyone);\n"  \
    "                         creator and creator-read need --auth\n"                          \
    "  --meta-root PATH       where the library keeps its records (default /zkcoord)\n"           \
    "  --json                 machine-readable output where the output is data\n"                 \
    "  -v, --verbose          library log on stderr (twice: debug)\n"                             \
    "  -h, --help             help (for the tool or the subcommand)\n"                            \
    "  -V, --version          print the version\n"

typedef struct args {
    int argc;
    char **argv;
    int i;
    int after_dd;      /* a "--" was seen: everything is positional */
    const char *val;   /* the value of an option or the positional */
    const char *name;  /* the option as written, for messages */
} args;

static int parse_int_ms(const char *s, const char *what, int *out);

static int is_negative_number(const char *s)
{
    return s[0] == '-' && ((s[1] >= '0' && s[1] <= '9') || (s[1] == '.' && s[2] >= '0' && s[2] <= '9'));
}

static const optdef *find_long(const optdef *t, const char *name, size_t n)
{
    for (; t && t->name; t++)
        if (strlen(t->name) == n && !strncmp(t->name, name, n))
            return t;
    return NULL;
}

static const optdef *find_short(const optdef *t, char c)
{
    for (; t && t->name; t++)
        if (t->shortc && t->shortc == c)
            return t;
    return NULL;
}

/* Applies a global option; 0 or A_ERR. --version exits at once. */
static int apply_global(int id, const char *val)
{
    switch (id) {
    case G_HOSTS: g.hosts = val; break;
    case G_AUTH:
        /* An empty option is more likely a variable that was not set than a
         * wish to connect without credentials: refuse it rather than guess. */
        if (!*val) {
            msg("--auth '' gives no credentials: pass USER:PASSWORD, or leave --auth out to connect without");
            return A_ERR;
        }
        g.auth = val;
        break;
    case G_ACL:
        if (!strcmp(val, "open"))
            g.acl = ZKC_ACL_OPEN;
        else if (!strcmp(val, "creator"))
            g.acl = ZKC_ACL_CREATOR;
        else if (!strcmp(val, "creator-read"))
            g.acl = ZKC_ACL_CREATOR_READ;
        else {
            msg("--acl must be open, creator or creator-read (got '%s')", val);
            return A_ERR;
        }
        break;
    case G_META_ROOT: g.meta_root = val; break;
    case G_SESSION_TIMEOUT:
        if (parse_int_ms(val, "--session-timeout", &g.session_timeout_ms))
            return A_ERR;
        break;
    case G_CONNECT_TIMEOUT:
        if (parse_int_ms(val, "--connect-timeout", &g.connect_timeout_ms))
            return A_ERR;
        break;
    case G_JSON: g.json = 1; break;
    case G_VERBOSE: g.verbose++; break;
    case G_HELP: g.help = 1; break;
    case G_VERSION:
        printf("zkcoord %s (libzkcoord %s)\n", ZKC_VERSION_STRING, zkc_version());
        exit(ZX_OK);
    }
    return 0;
}

/* Next option (its id, value in a->val), positional (A_POS), "--"
 * (A_DASHDASH, returned once), end (A_END) or error (A_ERR, message printed).
 * Global options are applied here and skipped. A word starting with '-'
 * followed by a digit is a (negative) number, not an option. */
static int next_arg(args *a, const optdef *tbl)
{
    for (;;) {
        if (a->i >= a->argc)
            return A_END;
        char *s = a->argv[a->i];
        a->val = NULL;
        a->name = s;
        if (a->after_dd || s[0] != '-' || s[1] == '\0' || is_negative_number(s)) {
            a->val = s;
            a->i++;
            return A_POS;
        }
        if (!strcmp(s, "--")) {
            a->after_dd = 1;
            a->i++;
            return A_DASHDASH;
        }
        const optdef *o;
        const char *inline_val = NULL;
        if (s[1] == '-') {
            const char *name = s + 2, *eq = strchr(name, '=');
            size_t n = eq ? (size_t)(eq - name) : strlen(name);
            o = find_long(tbl, name, n);
            if (!o)
                o = find_long(global_opts, name, n);
            if (eq)
                inline_val = eq + 1;
        } else {
            if (s[2] != '\0' && strspn(s + 1, "v") == strlen(s + 1)) { /* -vv */
                g.verbose += (int)strlen(s + 1);
                a->i++;
                continue;
            }
            if (s[2] != '\0') {
                msg("unknown option '%s' (options are not bundled; see '%s --help')", s, g.cmd);
                return A_ERR;
            }
            o = find_short(tbl, s[1]);
            if (!o)
                o = find_short(global_opts, s[1]);
        }
        if (!o) {
            msg("unknown option '%s' (see '%s --help')", s, g.cmd);
            return A_ERR;
        }
        a->i++;
        if (o->has_arg) {
            if (inline_val) {
                a->val = inline_val;
            } else if (a->i < a->argc) {
                a->val = a->argv[a->i++];
            } else {
                msg("option '%s' needs a value (see '%s --help')", s, g.cmd);
                return A_ERR;
            }
        } else if (inline_val) {
            msg("option '--%s' takes no value", o->name);
            return A_ERR;
        }
        if (o->id >= G_HOSTS) {
            if (apply_global(o->id, a->val))
                return A_ERR;
            continue;
        }
        return o->id;
    }
}

/* ------------------------------------------------------------ value parsing */

static int parse_i64(const char *s, const char *what, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno) {
        msg("%s: '%s' is not a 64-bit integer", what, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_int_ms(const char *s, const char *what, int *out)
{
    int64_t v;
    if (parse_i64(s, what, &v))
        return -1;
    if (v < 1 || v > INT_MAX) {
        msg("%s: '%s' is out of range (1..%d milliseconds)", what, s, INT_MAX);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Seconds, fractional allowed, like flock(1)'s --timeout. */
static int parse_seconds(const char *s, const char *what, int *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < 0) {
        msg("%s: '%s' is not a number of seconds >= 0", what, s);
        return -1;
    }
    if (v * 1000.0 > (double)INT_MAX) {
        msg("%s: '%s' is too large (at most %d seconds)", what, s, INT_MAX / 1000);
        return -1;
    }
    *ms = (int)llround(v * 1000.0);
    if (v > 0 && *ms == 0)
        *ms = 1;
    return 0;
}

/* The library checks paths too, but only once connected; a usage error should
 * not need a server. Same rules as the library. */
static int check_path(const char *p)
{
    if (!p || !*p) {
        msg("path is empty");
        return -1;
    }
    if (p[0] != '/') {
        msg("path '%s' is not absolute: it must start with '/'", p);
        return -1;
    }
    if (!p[1]) {
        msg("path '/' is the root: name a node below it");
        return -1;
    }
    if (strlen(p) > 4096) {
        msg("path is %zu bytes long; the limit is 4096", strlen(p));
        return -1;
    }
    for (const char *c = p + 1;;) {
        const char *slash = strchr(c, '/');
        size_t n = slash ? (size_t)(slash - c) : strlen(c);
        if (n == 0) {
            msg("path '%s' has an empty component (double or trailing slash)", p);
            return -1;
        }
        if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.')) {
            msg("path '%s': '.' and '..' components are not allowed", p);
            return -1;
        }
        if (c == p + 1 && n == 9 && !memcmp(c, "zookeeper", 9)) {
            msg("path '%s': /zookeeper is reserved by the server", p);
            return -1;
        }
        for (size_t k = 0; k < n; k++)
            if ((unsigned char)c[k] < 0x20 || c[k] == 0x7f) {
                msg("path contains a control character at offset %zu", (size_t)(c - p) + k);
                return -1;
            }
        if (!slash)
            break;
        c = slash + 1;
    }
    return 0;
}

/* ------------------------------------------------------------ output helpers */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

static int64_t now_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void iso8601(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, len, "?");
        return;
    }
    char tmp[32];
    strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", tmp, (int)(ms % 1000));
}

static void human_age(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        ms = 0;
    int64_t s = ms / 1000;
    if (s < 60)
        snprintf(buf, len, "%" PRId64 ".%01ds", s, (int)(ms % 1000) / 100);
    else if (s < 3600)
        snprintf(buf, len, "%" PRId64 "m%02ds", s / 60, (int)(s % 60));
    else if (s < 86400)
        snprintf(buf, len, "%" PRId64 "h%02dm", s / 3600, (int)(s / 60 % 60));
    else
        snprintf(buf, len, "%" PRId64 "d%02dh", s / 86400, (int)(s / 3600 % 24));
}

static const char *kind_name(int kind)
{
    switch (kind) {
    case ZKC_LOCK_MUTEX: return "mutex";
    case ZKC_LOCK_READ: return "read";
    case ZKC_LOCK_WRITE: return "write";
    case ZKC_LOCK_SEMAPHORE: return "semaphore";
    default: return "unknown";
    }
}

/* ------------------------------------------------------------ connecting */

static void log_to_stderr(zkc_log_level level, const char *m, void *ud)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    (void)ud;
    /* Runs on library threads: stdio only, no zkcoord calls. */
    fprintf(stderr, "zkcoord: [%s] %s\n", names[level <= ZKC_LOG_DEBUG ? level : ZKC_LOG_DEBUG], m);
}

/* Fill client options from the global options and the environment. Returns 0
 * or ZX_USAGE (message printed). */
static int client_options(zkc_client_options *o)
{
    zkc_client_options_init(o);
    const char *hosts = g.hosts ? g.hosts : getenv("ZKC_HOSTS");
    if (!hosts || !*hosts) {
        msg("no ZooKeeper servers given: use --hosts HOST:PORT[,HOST:PORT...] or set ZKC_HOSTS");
        return ZX_USAGE;
    }
    o->hosts = hosts;
    const char *auth = g.auth ? g.auth : getenv("ZKC_AUTH");
    if (auth && *auth) {
        if (!strchr(auth, ':')) {
            msg("--auth/ZKC_AUTH must be USER:PASSWORD (digest)");
            return ZX_USAGE;
        }
        o->auth_scheme = "digest";
        o->auth_credential = auth;
    }
    if (g.acl != ZKC_ACL_OPEN && !o->auth_scheme) {
        msg("--acl creator and creator-read need credentials: add --auth USER:PASSWORD (or set ZKC_AUTH)");
        return ZX_USAGE;
    }
    o->acl = (zkc_acl)g.acl;
    if (g.session_timeout_ms)
        o->session_timeout_ms = g.session_timeout_ms;
    if (g.connect_timeout_ms)
        o->connect_timeout_ms = g.connect_timeout_ms;
    if (g.meta_root)
        o->meta_root = g.meta_root;
    if (g.verbose) {
        o->log_fn = log_to_stderr;
        o->log_level = g.verbose > 1 ? ZKC_LOG_DEBUG : ZKC_LOG_INFO;
    }
    return 0;
}

/* The first host name of the connect string HOSTS ("h:p,h:p[/chroot]") that
 * does not resolve, copied into NAME; 0 if every name resolves (or the string
 * is malformed, which the library reports itself). Asked only after a failed
 * connect, so a working connect never pays for a second lookup. */
static int unresolved_host(const char *hosts, char *name, size_t len, const char **why)
{
    size_t n = strcspn(hosts, "/");
    char *list = strndup(hosts, n);
    if (!list)
        return 0;
    int found = 0;
    char *save = NULL;
    for (char *h = strtok_r(list, ",", &save); h && !found; h = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(h, ':');
        if (!colon || colon == h)
            continue;
        *colon = '\0';
        char *host = h;
        size_t hl = strlen(host);
        if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') { /* [v6]:port */
            host[hl - 1] = '\0';
            host++;
        }
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res = NULL;
        int e = getaddrinfo(host, colon + 1, &hints, &res);
        if (res)
            freeaddrinfo(res);
        if (e == EAI_NONAME || e == EAI_AGAIN || e == EAI_FAIL
#ifdef EAI_NODATA
            || e == EAI_NODATA
#endif
        ) {
            snprintf(name, len, "%s", host);
            *why = gai_strerror(e);
            found = 1;
        }
    }
    free(list);
    return found;
}

static int connect_failed(int rc, const char *errmsg, const char *hosts)
{
    char name[256];
    const char *why = NULL;
    /* libzookeeper refuses a connect string whose names do not resolve as an
     * invalid argument (its errno is ENOENT); for a user that is an
     * unreachable server, as a dead address is: say which name and exit 4. */
    if ((rc == ZKC_EINVAL || rc == ZKC_ECONNLOSS) && unresolved_host(hosts, name, sizeof name, &why)) {
        if (rc == ZKC_EINVAL) {
            msg("cannot connect to ZooKeeper at %s: host name '%s' does not resolve (%s)", hosts, name, why);
            return ZX_NOSERVER;
        }
        msg("note: host name '%s' does not resolve (%s)", name, why);
    }
    if (rc == ZKC_EINVAL && (!errmsg || !*errmsg || !strcmp(errmsg, "no error")))
        errmsg = "the connect string was refused (is every host name resolvable, every port a number?)";
    return fail_lib(rc, errmsg, "cannot connect to ZooKeeper at %s", hosts);
}

/* Blocking connect for the simple subcommands. */
static int connect_client(zkc_client **c)
{
    zkc_client_options o;
    int ex = client_options(&o);
    if (ex)
        return ex;
    int rc = zkc_client_create(c, &o);
    if (rc)
        return connect_failed(rc, zkc_errmsg(), o.hosts);
    return 0;
}

/* ------------------------------------------------------------ lock */

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

static void help_lock(FILE *f)
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
    zkc_queue_entry *e;
    int n;
    if (zkc_lock_queue(c, path, &e, &n))
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
    zkc_queue_free(e, n);
}

static int cmd_lock(int argc, char **argv)
{
    args a = {argc, argv, 0, 0, NULL, NULL};
    const char *path = NULL;
    int timeout_ms = ZKC_FOREVER, grace_ms = 5000, kind = ZKC_LOCK_MUTEX, kill_on_suspend = 0;
    char **command = NULL;
    for (int id; !command && (id = next_arg(&a, lock_opts)) != A_END;) {
        switch (id) {
        case A_ERR: return ZX_USAGE;
        case A_POS:
            if (!path)
                path = a.val;
            else
                command = &a.argv[a.i - 1]; /* the command starts here: stop parsing */
            break;
        case A_DASHDASH:
            if (path && a.i < a.argc)
                command = &a.argv[a.i];
            break;
        case L_TIMEOUT:
            if (parse_seconds(a.val, "--timeout", &timeout_ms))
                return ZX_USAGE;
            break;
        case L_GRACE:
            if (parse_seconds(a.val, "--grace", &grace_ms))
                return ZX_USAGE;
            break;
        case L_READ:
        case L_WRITE:
            if (kind != ZKC_LOCK_MUTEX && kind != (id == L_READ ? ZKC_LOCK_READ : ZKC_LOCK_WRITE)) {
                msg("--read and --write exclude each other");
                return ZX_USAGE;
            }
            kind = id == L_READ ? ZKC_LOCK_READ : ZKC_LOCK_WRITE;
            break;
        case L_KILL_SUSPEND: kill_on_suspend = 1; break;
        }
    }
    if (g.help) {
        help_lock(stdout);
        return ZX_OK;
    }
    if (!path) {
        msg("missing PATH and COMMAND (see 'zkcoord lock --help')");
        return ZX_USAGE;
    }
    if (check_path(path))
        return ZX_USAGE;
    if (!command) {
        msg("missing COMMAND after PATH %s (see 'zkcoord lock --help')", path);
        return ZX_USAGE;
    }
    zkc_client_options copts;
    int ex = client_options(&copts);
    if (ex)
        return ex;

    /* Every thread (ours and the library's, created from now on) blocks the
     * signals we handle, so they are only ever read from the signalfd. SIGTTOU
     * stays blocked so that taking the terminal back cannot stop us. */
    sigset_t set, orig;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof forwarded_signals / sizeof forwarded_signals[0]; i++)
        sigaddset(&set, forwarded_signals[i]);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGCONT);
    sigset_t block = set;
    sigaddset(&block, SIGTTOU);
    pthread_sigmask(SIG_BLOCK, &block, &orig);
    record_startup_fds();
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    int pfd[2];
    if (sfd < 0 || pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0) {
        msg("cannot set up signal handling: %s", strerror(errno));
        return ZX_FAIL;
    }

    /* Connect in a helper thread so that ^C works while we wait. */
    connect_job job = {.opts = copts, .wake_w = pfd[1]};
    pthread_t th;
    if ((errno = pthread_create(&th, NULL, connect_thread, &job))) {
        msg("cannot start a thread: %s", strerror(errno));
        return ZX_FAIL;
    }
    while (!atomic_load(&job.done)) {
        int sig = wait_wake(sfd, pfd[0], -1);
        if (is_forwarded(sig)) {
            msg("interrupted by signal %d while connecting", sig);
            fflush(NULL);
            _exit(128 + sig); /* nothing held yet; the session, if any, ends with us */
        }
    }
    pthread_join(th, NULL);
    if (job.rc)
        return connect_failed(job.rc, job.msg, copts.hosts);
    zkc_client *c = job.c;

    zkc_rwlock *rw = NULL;
    zkc_lock *l = NULL;
    int rc = kind == ZKC_LOCK_MUTEX ? zkc_lock_create(c, path, &l) : zkc_rwlock_create(c, path, &rw);
    if (rc) {
        ex = fail_lib(rc, zkc_errmsg(), "lock %s", path);
        zkc_client_destroy(c);
        return ex;
    }
    if (rw)
        l = kind == ZKC_LOCK_READ ? zkc_rwlock_read(rw) : zkc_rwlock_write(rw);

    lock_ctx x = {.wake_w = pfd[1]};
    zkc_lock_set_listener(l, on_lock_event, &x);
    int held = 0, exit_status = ZX_FAIL;
    pid_t pid = -1;
    int tty = -1;
    char **env = NULL;
    if ((rc = zkc_lock_acquire_async(l, timeout_ms, on_acquired, &x))) {
        exit_status = fail_lib(rc, zkc_errmsg(), "lock %s: cannot start acquiring", path);
        goto out;
    }
    while (!atomic_load(&x.acq_done)) {
        int sig = wait_wake(sfd, pfd[0], -1);
        if (is_forwarded(sig)) {
            zkc_lock_cancel(l); /* either the grant wins (then we release) or the node is gone */
            held = atomic_load(&x.acq_done) && x.acq_status == 0;
            msg("interrupted by signal %d while waiting for lock %s", sig, path);
            exit_status = 128 + sig;
            goto out;
        }
    }
    if (x.acq_status) {
        if (x.acq_status == ZKC_ETIMEDOUT) {
            if (timeout_ms == 0)
                msg("lock %s is busy (--timeout 0: not waiting)", path);
            else
                msg("lock %s: not acquired within %.3g s", path, timeout_ms / 1000.0);
            describe_holder(c, path);
            exit_status = ZX_BUSY;
        } else {
            exit_status = fail_lib(x.acq_status, x.acq_msg, "lock %s: cannot acquire", path);
        }
        goto out;
    }
    held = 1;
    if (atomic_load(&x.lost) || (kill_on_suspend && atomic_load(&x.suspended))) {
        msg("lock %s was lost right after it was granted; not running the command", path);
        exit_status = ZX_LOST;
        goto out;
    }
    if (g.verbose)
        msg("lock %s acquired, fencing token %" PRId64, path, x.acq_token);

    /* ---- run the command ---- */
    if (!(env = command_env(x.acq_token, path))) {
        msg("out of memory");
        goto out;
    }
    /* Give the terminal to the command when we are in the foreground, so an
     * interactive command can read it and ^C/^Z reach it directly. */
    if (isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp())
        tty = STDIN_FILENO;
    int errp[2];
    if (pipe2(errp, O_CLOEXEC) < 0) {
        msg("cannot create a pipe: %s", strerror(errno));
        goto out;
    }
    cloexec_new_fds();
    pid_t parent = getpid();
    pid = fork();
    if (pid < 0) {
        msg("cannot fork: %s", strerror(errno));
        close(errp[0]);
        close(errp[1]);
        goto out;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls from here to exec. If zkcoord dies
         * (crash, kill -9), nobody watches the lock any more: the command
         * must not go on believing it holds it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(128 + SIGKILL);
        setpgid(0, 0);
        if (tty >= 0)
            tcsetpgrp(tty, getpid());
        sigprocmask(SIG_SETMASK, &orig, NULL);
        execvpe(command[0], command, env);
        int e = errno;
        ssize_t w = write(errp[1], &e, sizeof e);
        (void)w;
        _exit(e == ENOENT ? 127 : 126);
    }
    setpgid(pid, pid); /* also here: no window where the group does not exist */
    if (tty >= 0)
        tcsetpgrp(tty, pid);
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
        pid = -1;
        msg("cannot run '%s': %s", command[0], strerror(exec_errno));
        exit_status = exec_errno == ENOENT ? 127 : 126;
        goto out;
    }

    /* ---- supervise: child exit, lock events and signals, no polling ---- */
    int terminating = 0, killed = 0, seen_susp = 0, seen_reco = 0;
    int64_t kill_at = 0, suspended_until = 0;
    int session_ms = zkc_client_session_timeout(c);
    if (session_ms <= 0)
        session_ms = copts.session_timeout_ms;
    for (;;) {
        int64_t now = now_ms(CLOCK_MONOTONIC), next = INT64_MAX;
        if (terminating && !killed)
            next = kill_at;
        else if (!terminating && suspended_until)
            next = suspended_until;
        int wait_ms = next == INT64_MAX ? -1 : next > now ? (int)(next - now) : 0;
        int sig = wait_wake(sfd, pfd[0], wait_ms);
        if (is_forwarded(sig)) {
            if (g.verbose)
                msg("forwarding signal %d to process group %d", sig, (int)pid);
            kill(-pid, sig);
        } else if (sig == SIGCONT && tty >= 0) {
            /* We were stopped along with a stopped command and are resumed
             * ("fg"): hand the terminal back and continue the command. */
            tcsetpgrp(tty, pid);
            kill(-pid, SIGCONT);
        }

        now = now_ms(CLOCK_MONOTONIC);
        int s = atomic_load(&x.suspended), r = atomic_load(&x.reconnected);
        int last = atomic_load(&x.last_event);
        if (!terminating && atomic_load(&x.lost)) {
            terminating = 1;
            msg("lock %s was LOST while the command ran (session ended or lock node deleted): "
                "sending SIGTERM to process group %d, SIGKILL in %.3g s",
                path, (int)pid, grace_ms / 1000.0);
        } else if (!terminating && s != seen_susp && kill_on_suspend) {
            terminating = 1;
            msg("lock %s is SUSPENDED (connection to ZooKeeper lost, the lock may be lost) and "
                "--kill-on-suspend is set: sending SIGTERM to process group %d, SIGKILL in %.3g s",
                path, (int)pid, grace_ms / 1000.0);
        } else if (!terminating && suspended_until && now >= suspended_until) {
            /* Safety net: after a whole session timeout without a server the
             * servers have expired the session, whatever the library says. */
            terminating = 1;
            msg("lock %s: still SUSPENDED after the session timeout (%d ms): the session has expired "
                "on the servers, the lock is LOST: sending SIGTERM to process group %d, SIGKILL in %.3g s",
                path, session_ms, (int)pid, grace_ms / 1000.0);
        } else if (!terminating && s != seen_susp) {
            msg("warning: lock %s is SUSPENDED: connection to ZooKeeper lost, the lock may be "
                "lost; the command keeps running (use --kill-on-suspend to stop it)", path);
        } else if (!terminating && r != seen_reco && last == ZKC_LOCK_EVENT_RECONNECTED) {
            msg("lock %s: reconnected with the same session; still held", path);
        }
        if (last == ZKC_LOCK_EVENT_SUSPENDED && !suspended_until)
            suspended_until = now + session_ms;
        else if (last != ZKC_LOCK_EVENT_SUSPENDED)
            suspended_until = 0;
        if (terminating && !kill_at) {
            kill(-pid, SIGTERM);
            kill(-pid, SIGCONT); /* a stopped command must run to die of SIGTERM */
            kill_at = now + grace_ms;
        }
        seen_susp = s;
        seen_reco = r;
        if (terminating && !killed && now >= kill_at) {
            msg("process group %d still running after %.3g s: sending SIGKILL", (int)pid,
                grace_ms / 1000.0);
            kill(-pid, SIGKILL);
            killed = 1;
        }

        siginfo_t si;
        memset(&si, 0, sizeof si);
        int flags = WEXITED | WNOHANG | WNOWAIT | (tty >= 0 ? WSTOPPED : 0);
        if (waitid(P_PID, (id_t)pid, &si, flags) < 0 || si.si_pid != pid)
            continue;
        if (si.si_code == CLD_STOPPED) {
            /* ^Z: consume the stop, take the terminal back, stop ourselves
             * like the shell expects; SIGCONT resumes both (see above). Note:
             * while stopped we send no heartbeats: a long stop loses the lock. */
            waitid(P_PID, (id_t)pid, &si, WSTOPPED | WNOHANG);
            tcsetpgrp(tty, getpgrp());
            raise(SIGSTOP);
            continue;
        }
        /* The leader has exited but is not reaped yet, so its group id cannot
         * be reused: stragglers of a terminated command die with it. */
        if (terminating && !killed)
            kill(-pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        pid = -1;
        if (terminating) {
            msg("command terminated (%s %d); exiting with status %d",
                WIFSIGNALED(st) ? "signal" : "exit status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
                ZX_LOST);
            exit_status = ZX_LOST;
        } else if (WIFSIGNALED(st)) {
            exit_status = 128 + WTERMSIG(st);
        } else {
            exit_status = WEXITSTATUS(st);
        }
        break;
    }

out:
    if (tty >= 0)
        tcsetpgrp(tty, getpgrp());
    if (held && !atomic_load(&x.lost) && !zkc_client_connected(c)) {
        /* Nothing can be deleted without a server and an orderly teardown
         * would wait for one: leave, and let the servers delete the lock node
         * when the session expires (ephemeral). */
        msg("not connected to ZooKeeper: lock %s is released when the session expires (within %d ms)", path,
            zkc_client_session_timeout(c) > 0 ? zkc_client_session_timeout(c) : copts.session_timeout_ms);
        fflush(NULL);
        _exit(exit_status);
    }
    if (held && !atomic_load(&x.lost)) {
        rc = zkc_lock_release(l);
        if (rc && rc != ZKC_ENOTHELD)
            fail_lib(rc, zkc_errmsg(), "warning: lock %s: release failed (the node goes with the session)", path);
    }
    zkc_lock_set_listener(l, NULL, NULL);
    if (rw)
        zkc_rwlock_destroy(rw);
    else
        zkc_lock_destroy(l);
    zkc_client_destroy(c);
    if (env) {
        for (char **e = env; *e; e++)
            if (!strncmp(*e, "ZKC_FENCING_TOKEN=", 18) || !strncmp(*e, "ZKC_LOCK_PATH=", 14))
                free(*e);
        free(env);
    }
    close(pfd[0]);
    close(pfd[1]);
    close(sfd);
    return exit_status;
}

/* ------------------------------------------------------------ counter */

static void help_counter(FILE *f)
{
    fprintf(f,
            "usage: zkcoord counter get PATH\n"
            "       zkcoord counter set PATH VALUE\n"
            "       zkcoord counter add PATH DELTA [--floor N] [--ceiling N] [--key K]\n"
            "       zkcoord counter cas PATH EXPECT VALUE\n"
            "\n"
            "Read and update an exact 64-bit counter stored in the node at PATH (created on\n"
            "the first write). Updates are applied exactly once, even across connection\n"
            "loss. Output: get and set print the value; add and cas print \"BEFORE AFTER\"\n"
            "(with --json an object). A cas that finds another value prints the current\n"
            "value as both BEFORE and AFTER and exits 8.\n"
            "\n"
            "Options:\n"
            "  --format F      node data format: int64 (8-byte big-endian, Curator\n"
            "                  DistributedAtomicLong; default), int32 (4-byte, Curator\n"
            "                  SharedCount) or decimal (text, kazoo Counter)\n"
            "  --initial N     value of a missing node or empty data (default 0)\n"
            "  --floor N       add: refuse (exit 7, nothing written) if the result < N\n"
            "  --ceiling N     add: refuse (exit 7, nothing written) if the result > N\n"
            "  --key K         add: idempotency key (an order id, say): repeating the\n"
            "                  command with the same key applies the delta once and prints\n"
            "                  the first outcome (keys are kept for a day)\n"
            "\n" GLOBAL_OPTS_HELP "\n" EXIT_CODES_HELP
            "\n"
            "Example:\n"
            "  zkcoord counter add /stock/sku42 -2 --floor 0 --key order-1001\n");
}

enum { C_FORMAT = 1, C_INITIAL, C_FLOOR, C_CEILING, C_KEY };

static const optdef counter_opts[] = {
    {"format", 0, 1, C_FORMAT},
    {"initial", 0, 1, C_INITIAL},
    {"floor", 0, 1, C_FLOOR},
    {"ceiling", 0, 1, C_CEILING},
    {"key", 0, 1, C_KEY},
    {NULL, 0, 0, 0},
};

static void print_result(const char *path, const zkc_counter_result *r, int applied)
{
    if (g.json) {
        printf("{\"path\":");
        json_str(stdout, path);
        printf(",\"before\":%" PRId64 ",\"after\":%" PRId64 ",\"applied\":%s,\"replayed\":%s}\n", r->before,
               r->after, applied ? "true" : "false", r->replayed ? "true" : "false");
    } else {
        printf("%" PRId64 " %" PRId64 "\n", r->before, r->after);
    }
}

static void print_value(const char *path, int64_t v)
{
    if (g.json) {
        printf("{\"path\":");
        json_str(stdout, path);
        printf(",\"value\":%" PRId64 "}\n", v);
    } else {
        printf("%" PRId64 "\n", v);
    }
}

static int cmd_counter(int argc, char **argv)
{
    args a = {argc, argv, 0, 0, NULL, NULL};
    const char *pos[8];
    int npos = 0;
    zkc_counter_options co;
    zkc_counter_options_init(&co);
    zkc_update u;
    memset(&u, 0, sizeof u);
    for (int id; (id = next_arg(&a, counter_opts)) != A_END;) {
        switch (id) {
        case A_ERR: return ZX_USAGE;
        case A_DASHDASH: break;
        case A_POS:
            if (npos == (int)(sizeof pos / sizeof pos[0])) {
                msg("too many arguments (see 'zkcoord counter --help')");
                return ZX_USAGE;
            }
            pos[npos++] = a.val;
            break;
        case C_FORMAT:
            if (!strcmp(a.val, "int64"))
                co.format = ZKC_FMT_INT64;
            else if (!strcmp(a.val, "int32"))
                co.format = ZKC_FMT_INT32;
            else if (!strcmp(a.val, "decimal"))
                co.format = ZKC_FMT_DECIMAL;
            else {
                msg("--format: '%s' is not one of int64, int32, decimal", a.val);
                return ZX_USAGE;
            }
            break;
        case C_INITIAL:
            if (parse_i64(a.val, "--initial", &co.initial))
                return ZX_USAGE;
            break;
        case C_FLOOR:
            if (parse_i64(a.val, "--floor", &u.floor))
                return ZX_USAGE;
            u.has_floor = 1;
            break;
        case C_CEILING:
            if (parse_i64(a.val, "--ceiling", &u.ceiling))
                return ZX_USAGE;
            u.has_ceiling = 1;
            break;
        case C_KEY:
            if (!*a.val) {
                msg("--key is empty");
                return ZX_USAGE;
            }
            u.key = a.val;
            break;
        }
    }
    if (g.help) {
        help_counter(stdout);
        return ZX_OK;
    }
    static const struct {
        const char *verb;
        int nvalues;
        const char *usage;
    } verbs[] = {
        {"get", 0, "counter get PATH"},
        {"set", 1, "counter set PATH VALUE"},
        {"add", 1, "counter add PATH DELTA [--floor N] [--ceiling N] [--key K]"},
        {"cas", 2, "counter cas PATH EXPECT VALUE"},
    };
    if (npos == 0) {
        msg("missing operation: get, set, add or cas (see 'zkcoord counter --help')");
        return ZX_USAGE;
    }
    int v = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(pos[0], verbs[i].verb))
            v = i;
    if (v < 0) {
        msg("unknown operation '%s': expected get, set, add or cas", pos[0]);
        return ZX_USAGE;
    }
    if (npos != 2 + verbs[v].nvalues) {
        msg("%s: expected %d argument%s: usage: zkcoord %s", verbs[v].verb, 1 + verbs[v].nvalues,
            verbs[v].nvalues ? "s" : "", verbs[v].usage);
        return ZX_USAGE;
    }
    const char *path = pos[1];
    if (check_path(path))
        return ZX_USAGE;
    if (v != 2 && (u.has_floor || u.has_ceiling || u.key)) {
        msg("--floor, --ceiling and --key apply to 'counter add' only");
        return ZX_USAGE;
    }
    if (u.has_floor && u.has_ceiling && u.floor > u.ceiling) {
        msg("--floor %" PRId64 " is above --ceiling %" PRId64, u.floor, u.ceiling);
        return ZX_USAGE;
    }
    int64_t val[2] = {0, 0};
    for (int i = 0; i < verbs[v].nvalues; i++)
        if (parse_i64(pos[2 + i], verbs[v].verb, &val[i]))
            return ZX_USAGE;

    zkc_client *c;
    int ex = connect_client(&c);
    if (ex)
        return ex;
    zkc_counter *ctr;
    int rc = zkc_counter_create(c, path, &co, &ctr);
    if (rc) {
        ex = fail_lib(rc, zkc_errmsg(), "counter %s", path);
        zkc_client_destroy(c);
        return ex;
    }
    zkc_counter_result r;
    memset(&r, 0, sizeof r);
    int64_t value = 0;
    switch (v) {
    case 0:
        if (!(rc = zkc_counter_get(ctr, &value)))
            print_value(path, value);
        break;
    case 1:
        if (!(rc = zkc_counter_set(ctr, val[0])))
            print_value(path, val[0]);
        break;
    case 2:
        rc = zkc_counter_add(ctr, val[0], (u.key || u.has_floor || u.has_ceiling) ? &u : NULL, &r);
        if (!rc) {
            print_result(path, &r, 1);
            if (r.replayed)
                msg("key '%s' was applied before: not applied again; printed its first outcome", u.key);
        }
        break;
    case 3:
        rc = zkc_counter_cas(ctr, val[0], val[1], &r);
        if (!rc) {
            print_result(path, &r, 1);
        } else if (rc == ZKC_EMISMATCH) {
            r.after = r.before;
            print_result(path, &r, 0);
        }
        break;
    }
    if (rc) {
        char m[512];
        snprintf(m, sizeof m, "%s", zkc_errmsg());
        if (rc == ZKC_EMISMATCH) {
            msg("cas %s: the value is %" PRId64 ", not the expected %" PRId64 "; nothing written", path, r.before,
                val[0]);
            ex = ZX_MISMATCH;
        } else if (rc == ZKC_EUNKNOWN && u.key)
            ex = fail_lib(rc, m, "add %s: repeat the command with --key %s to apply it exactly once", path, u.key);
        else if (rc == ZKC_EUNKNOWN)
            ex = fail_lib(rc, m, "add %s: check the value before repeating (use --key to make adds repeatable)",
                          path);
        else if (rc == ZKC_EBADDATA)
            ex = fail_lib(rc, m, "%s %s (is --format right? int64, int32 or decimal)", verbs[v].verb, path);
        else
            ex = fail_lib(rc, m, "%s %s", verbs[v].verb, path);
    }
    zkc_counter_destroy(ctr);
    zkc_client_destroy(c);
    if (!ex && fflush(stdout)) {
        msg("cannot write the output: %s", strerror(errno));
        ex = ZX_FAIL;
    }
    return ex;
}

/* ------------------------------------------------------------ queue */

static void help_queue(FILE *f)
{
    fprintf(f,
            "usage: zkcoord queue PATH\n"
            "\n"
            "List the holders and waiters of the lock at PATH in queue order: node name,\n"
            "sequence number, whether it holds, kind (mutex, read, write, semaphore),\n"
            "owner session, and since when it is queued (server clock, UTC) with its age.\n"
            "Curator and kazoo lock nodes are recognised too. Output is a snapshot.\n"
            "With --json: {\"path\":..., \"entries\":[{\"position\", \"name\", \"sequence\",\n"
            "\"holds\", \"kind\", \"session\", \"czxid\", \"since\", \"ctime_ms\", \"age_ms\"}]}.\n"
            "\n" GLOBAL_OPTS_HELP "\n" EXIT_CODES_HELP);
}

static int cmd_queue(int argc, char **argv)
{
    args a = {argc, argv, 0, 0, NULL, NULL};
    const char *path = NULL;
    for (int id; (id = next_arg(&a, NULL)) != A_END;) {
        if (id == A_ERR)
            return ZX_USAGE;
        if (id == A_POS) {
            if (path) {
                msg("unexpected argument '%s' (see 'zkcoord queue --help')", a.val);
                return ZX_USAGE;
            }
            path = a.val;
        }
    }
    if (g.help) {
        help_queue(stdout);
        return ZX_OK;
    }
    if (!path) {
        msg("missing PATH (see 'zkcoord queue --help')");
        return ZX_USAGE;
    }
    if (check_path(path))
        return ZX_USAGE;
    zkc_client *c;
    int ex = connect_client(&c);
    if (ex)
        return ex;
    zkc_queue_entry *e = NULL;
    int n = 0;
    int rc = zkc_lock_queue(c, path, &e, &n);
    if (rc) {
        ex = fail_lib(rc, zkc_errmsg(), "queue %s", path);
        zkc_client_destroy(c);
        return ex;
    }
    int64_t now = now_ms(CLOCK_REALTIME);
    if (g.json) {
        printf("{\"path\":");
        json_str(stdout, path);
        printf(",\"entries\":[");
        for (int i = 0; i < n; i++) {
            char when[40];
            iso8601(e[i].ctime_ms, when, sizeof when);
            printf("%s{\"position\":%d,\"name\":", i ? "," : "", i + 1);
            json_str(stdout, e[i].name);
            printf(",\"sequence\":%" PRId64 ",\"holds\":%s,\"kind\":\"%s\",\"session\":\"0x%" PRIx64
                   "\",\"czxid\":%" PRId64 ",\"since\":\"%s\",\"ctime_ms\":%" PRId64 ",\"age_ms\":%" PRId64 "}",
                   e[i].sequence, e[i].holds ? "true" : "false", kind_name(e[i].kind), (uint64_t)e[i].session_id,
                   e[i].czxid, when, e[i].ctime_ms, now - e[i].ctime_ms);
        }
        printf("]}\n");
    } else if (n == 0) {
        printf("%s: no holders, no waiters\n", path);
    } else {
        size_t w = 4;
        for (int i = 0; i < n; i++)
            if (strlen(e[i].name) > w)
                w = strlen(e[i].name);
        printf("%-3s  %-*s  %10s  %-5s  %-9s  %-18s  %s\n", "POS", (int)w, "NAME", "SEQUENCE", "HOLDS", "KIND",
               "SESSION", "SINCE (AGE)");
        for (int i = 0; i < n; i++) {
            char when[40], age[24], sess[24];
            iso8601(e[i].ctime_ms, when, sizeof when);
            human_age(now - e[i].ctime_ms, age, sizeof age);
            snprintf(sess, sizeof sess, "0x%" PRIx64, (uint64_t)e[i].session_id);
            printf("%-3d  %-*s  %10" PRId64 "  %-5s  %-9s  %-18s  %s (%s)\n", i + 1, (int)w, e[i].name,
                   e[i].sequence, e[i].holds ? "yes" : "no", kind_name(e[i].kind), sess, when, age);
        }
    }
    zkc_queue_free(e, n);
    zkc_client_destroy(c);
    return ZX_OK;
}

/* ------------------------------------------------------------ session */

static void help_session(FILE *f)
{
    fprintf(f,
            "usage: zkcoord session\n"
            "\n"
            "Connect, print the session id and the negotiated session timeout, and close\n"
            "the session. Exit status 0 tells a script that ZooKeeper is reachable (and\n"
            "accepts the --auth credentials); 4 that no server answered within\n"
            "--connect-timeout.\n"
            "Output: \"session_id 0x...\" and \"session_timeout_ms N\" lines, or with --json\n"
            "{\"session_id\":\"0x...\",\"session_timeout_ms\":N,\"hosts\":\"...\"}.\n"
            "\n" GLOBAL_OPTS_HELP "\n" EXIT_CODES_HELP);
}

static int cmd_session(int argc, char **argv)
{
    args a = {argc, argv, 0, 0, NULL, NULL};
    for (int id; (id = next_arg(&a, NULL)) != A_END;) {
        if (id == A_ERR)
            return ZX_USAGE;
        if (id == A_POS) {
            msg("unexpected argument '%s' (see 'zkcoord session --help')", a.val);
            return ZX_USAGE;
        }
    }
    if (g.help) {
        help_session(stdout);
        return ZX_OK;
    }
    zkc_client *c;
    int ex = connect_client(&c);
    if (ex)
        return ex;
    int64_t sid = 0;
    char pw[16];
    int pwlen = sizeof pw;
    int rc = zkc_client_session(c, &sid, pw, &pwlen);
    if (rc) {
        ex = fail_lib(rc, zkc_errmsg(), "session");
        zkc_client_destroy(c);
        return ex;
    }
    int to = zkc_client_session_timeout(c);
    if (g.json) {
        printf("{\"session_id\":\"0x%" PRIx64 "\",\"session_timeout_ms\":%d,\"hosts\":", (uint64_t)sid, to);
        json_str(stdout, g.hosts ? g.hosts : getenv("ZKC_HOSTS"));
        printf("}\n");
    } else {
        printf("session_id 0x%" PRIx64 "\nsession_timeout_ms %d\n", (uint64_t)sid, to);
    }
    zkc_client_destroy(c);
    return ZX_OK;
}

/* ------------------------------------------------------------ stock */

static void help_stock(FILE *f)
{
    fprintf(f,
            "usage: zkcoord stock ROOT SKU\n"
            "       zkcoord stock restock ROOT SKU QTY\n"
            "       zkcoord stock reserve ROOT --id ID [--wait] [--hold-ms MS] [--timeout S]\n"
            "                             SKU:QTY [SKU:QTY...]\n"
            "       zkcoord stock confirm ROOT ID\n"
            "       zkcoord stock cancel ROOT ID\n"
            "       zkcoord stock lookup ROOT ID\n"
            "       zkcoord stock reap ROOT\n"
            "\n"
            "Queue-managed inventory of SKUs under ROOT. 'stock ROOT SKU' prints the SKU's\n"
            "available, reserved, sold and total units and its queue length, one \"name N\"\n"
            "line each (available + reserved + sold == total). 'restock' adds QTY units and\n"
            "prints the same lines. 'reserve' reserves every line or none under the request\n"
            "id ID (an order id, say: repeating it never reserves twice) and prints the\n"
            "state (RESERVED, or SOLD if it was confirmed before); out of stock prints\n"
            "OUT_OF_STOCK and exits 10, a timeout prints the state and exits 3.\n"
            "'confirm' makes a reservation SOLD, 'cancel' returns its units (CANCELLED);\n"
            "both are idempotent and print the new state. 'lookup' prints the state of ID:\n"
            "PENDING, RESERVED, SOLD, CANCELLED, OUT_OF_STOCK, TIMED_OUT, EXPIRED or\n"
            "ABANDONED. 'reap' returns the units of reservations not confirmed within their\n"
            "hold time and prints how many units came back. With --json every form prints\n"
            "an object.\n"
            "\n"
            "Options (reserve):\n"
            "  --id ID          the request id (required)\n"
            "  --wait           wait in the SKU queues for a restock instead of failing at\n"
            "                   once (exit 10) when the stock is short\n"
            "  --hold-ms MS     how long the reservation holds its units until confirmed\n"
            "                   (default 600000); afterwards 'reap' returns them\n"
            "  -t, --timeout S  give up after S seconds (fractional; exit 3); default: no\n"
            "                   deadline of its own\n"
            "\n" GLOBAL_OPTS_HELP "\n" EXIT_CODES_HELP
            "\n"
            "Example:\n"
            "  zkcoord stock reserve /shop --id order-1001 --wait --timeout 30 sku42:2 sku7:1\n");
}

enum { S_ID = 1, S_WAIT, S_HOLD_MS, S_TIMEOUT };

static const optdef stock_opts[] = {
    {"id", 0, 1, S_ID},
    {"wait", 0, 0, S_WAIT},
    {"hold-ms", 0, 1, S_HOLD_MS},
    {"timeout", 't', 1, S_TIMEOUT},
    {NULL, 0, 0, 0},
};

static const char *res_state_name(zkc_res_state s)
{
    switch (s) {
    case ZKC_RES_PENDING: return "PENDING";
    case ZKC_RES_RESERVED: return "RESERVED";
    case ZKC_RES_SOLD: return "SOLD";
    case ZKC_RES_CANCELLED: return "CANCELLED";
    case ZKC_RES_OUT_OF_STOCK: return "OUT_OF_STOCK";
    case ZKC_RES_TIMED_OUT: return "TIMED_OUT";
    case ZKC_RES_EXPIRED: return "EXPIRED";
    case ZKC_RES_ABANDONED: return "ABANDONED";
    }
    return "UNKNOWN";
}

/* A SKU is one node name below ROOT: same rules as a path component. */
static int check_sku(const char *s)
{
    if (!*s) {
        msg("SKU is empty");
        return -1;
    }
    if (strchr(s, '/')) {
        msg("SKU '%s' contains '/': it must be a single node name", s);
        return -1;
    }
    if (!strcmp(s, ".") || !strcmp(s, "..")) {
        msg("SKU '%s' is not allowed", s);
        return -1;
    }
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            msg("SKU contains a control character at offset %zu", (size_t)(c - s));
            return -1;
        }
    return 0;
}

static int parse_qty(const char *s, const char *what, int64_t *out)
{
    if (parse_i64(s, what, out))
        return -1;
    if (*out <= 0) {
        msg("%s: '%s' is not a positive quantity", what, s);
        return -1;
    }
    return 0;
}

/* "SKU:QTY" (the last ':' separates). The SKU points into s, which is cut. */
static int parse_line(char *s, zkc_line *l)
{
    char *colon = strrchr(s, ':');
    if (!colon) {
        msg("'%s' is not SKU:QTY", s);
        return -1;
    }
    *colon = '\0';
    if (check_sku(s)) {
        *colon = ':';
        return -1;
    }
    char what[300];
    snprintf(what, sizeof what, "quantity of %s", s);
    if (parse_qty(colon + 1, what, &l->qty))
        return -1;
    l->sku = s;
    return 0;
}

static void print_stock(const char *root, const char *sku, const zkc_stock_info *si)
{
    if (g.json) {
        printf("{\"root\":");
        json_str(stdout, root);
        printf(",\"sku\":");
        json_str(stdout, sku);
        printf(",\"available\":%" PRId64 ",\"reserved\":%" PRId64 ",\"sold\":%" PRId64 ",\"total\":%" PRId64
               ",\"queue_length\":%d}\n",
               si->available, si->reserved, si->sold, si->total, si->queue_length);
    } else {
        printf("available %" PRId64 "\nreserved %" PRId64 "\nsold %" PRId64 "\ntotal %" PRId64
               "\nqueue_length %d\n",
               si->available, si->reserved, si->sold, si->total, si->queue_length);
    }
}

static void print_res_state(const char *root, const char *id, zkc_res_state st)
{
    if (g.json) {
        printf("{\"root\":");
        json_str(stdout, root);
        printf(",\"id\":");
        json_str(stdout, id);
        printf(",\"state\":\"%s\"}\n", res_state_name(st));
    } else {
        printf("%s\n", res_state_name(st));
    }
}

enum { SV_READ, SV_RESTOCK, SV_RESERVE, SV_CONFIRM, SV_CANCEL, SV_LOOKUP, SV_REAP };

static int cmd_stock(int argc, char **argv)
{
    args a = {argc, argv, 0, 0, NULL, NULL};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos) {
        msg("out of memory");
        return ZX_FAIL;
    }
    int npos = 0, wait = 0, hold_ms = 0, timeout_ms = ZKC_FOREVER, reserve_opts = 0;
    const char *id = NULL;
    int ex = ZX_OK;
    for (int id_; (id_ = next_arg(&a, stock_opts)) != A_END;) {
        switch (id_) {
        case A_ERR: ex = ZX_USAGE; goto out;
        case A_DASHDASH: break;
        case A_POS: pos[npos++] = (char *)a.val; break;
        case S_ID:
            if (!*a.val) {
                msg("--id is empty");
                ex = ZX_USAGE;
                goto out;
            }
            id = a.val;
            reserve_opts = 1;
            break;
        case S_WAIT:
            wait = 1;
            reserve_opts = 1;
            break;
        case S_HOLD_MS:
            if (parse_int_ms(a.val, "--hold-ms", &hold_ms)) {
                ex = ZX_USAGE;
                goto out;
            }
            reserve_opts = 1;
            break;
        case S_TIMEOUT:
            if (parse_seconds(a.val, "--timeout", &timeout_ms)) {
                ex = ZX_USAGE;
                goto out;
            }
            reserve_opts = 1;
            break;
        }
    }
    if (g.help) {
        help_stock(stdout);
        goto out;
    }
    static const struct {
        const char *verb;
        int nargs; /* after ROOT; -1: one or more */
        const char *usage;
    } verbs[] = {
        [SV_READ] = {NULL, 1, "stock ROOT SKU"},
        [SV_RESTOCK] = {"restock", 2, "stock restock ROOT SKU QTY"},
        [SV_RESERVE] = {"reserve", -1, "stock reserve ROOT --id ID [--wait] [--hold-ms MS] [--timeout S] SKU:QTY..."},
        [SV_CONFIRM] = {"confirm", 1, "stock confirm ROOT ID"},
        [SV_CANCEL] = {"cancel", 1, "stock cancel ROOT ID"},
        [SV_LOOKUP] = {"lookup", 1, "stock lookup ROOT ID"},
        [SV_REAP] = {"reap", 0, "stock reap ROOT"},
    };
    if (npos == 0) {
        msg("missing ROOT or operation: ROOT SKU, restock, reserve, confirm, cancel, lookup or reap (see "
            "'zkcoord stock --help')");
        ex = ZX_USAGE;
        goto out;
    }
    int v = SV_READ, first = 0;
    if (pos[0][0] != '/') {
        v = -1;
        for (int i = 1; i < (int)(sizeof verbs / sizeof verbs[0]); i++)
            if (!strcmp(pos[0], verbs[i].verb))
                v = i;
        if (v < 0) {
            msg("unknown operation '%s': expected ROOT SKU, restock, reserve, confirm, cancel, lookup or reap",
                pos[0]);
            ex = ZX_USAGE;
            goto out;
        }
        first = 1;
    }
    int nargs = npos - first - 1;
    if (npos - first < 1 || (verbs[v].nargs >= 0 && nargs != verbs[v].nargs) || (verbs[v].nargs < 0 && nargs < 1)) {
        msg("%s: wrong number of arguments: usage: zkcoord %s", verbs[v].verb ? verbs[v].verb : "stock",
            verbs[v].usage);
        ex = ZX_USAGE;
        goto out;
    }
    const char *root = pos[first];
    char **rest = pos + first + 1;
    if (check_path(root)) {
        ex = ZX_USAGE;
        goto out;
    }
    if (v != SV_RESERVE && reserve_opts) {
        msg("--id, --wait, --hold-ms and --timeout apply to 'stock reserve' only");
        ex = ZX_USAGE;
        goto out;
    }
    zkc_line *lines = NULL;
    int64_t qty = 0;
    switch (v) {
    case SV_READ:
        if (check_sku(rest[0]))
            ex = ZX_USAGE;
        break;
    case SV_RESTOCK:
        if (check_sku(rest[0]) || parse_qty(rest[1], "restock", &qty))
            ex = ZX_USAGE;
        break;
    case SV_RESERVE:
        if (!id) {
            msg("reserve: --id ID is required (the request id that makes a repeat harmless)");
            ex = ZX_USAGE;
            break;
        }
        lines = calloc((size_t)nargs, sizeof *lines);
        if (!lines) {
            msg("out of memory");
            ex = ZX_FAIL;
            break;
        }
        for (int i = 0; i < nargs && !ex; i++)
            if (parse_line(rest[i], &lines[i]))
                ex = ZX_USAGE;
        break;
    case SV_CONFIRM:
    case SV_CANCEL:
    case SV_LOOKUP:
        if (!*rest[0]) {
            msg("ID is empty");
            ex = ZX_USAGE;
        }
        break;
    }
    if (ex) {
        free(lines);
        goto out;
    }

    zkc_client *c;
    if ((ex = connect_client(&c))) {
        free(lines);
        goto out;
    }
    zkc_inventory *inv;
    int rc = zkc_inventory_create(c, root, &inv);
    if (rc) {
        ex = fail_lib(rc, zkc_errmsg(), "inventory %s", root);
        zkc_client_destroy(c);
        free(lines);
        goto out;
    }
    zkc_stock_info si;
    zkc_res_state st = ZKC_RES_PENDING;
    int64_t returned = 0;
    memset(&si, 0, sizeof si);
    switch (v) {
    case SV_READ:
        if (!(rc = zkc_inventory_stock(inv, rest[0], &si)))
            print_stock(root, rest[0], &si);
        else
            ex = fail_lib(rc, zkc_errmsg(), "stock %s %s", root, rest[0]);
        break;
    case SV_RESTOCK:
        if ((rc = zkc_inventory_restock(inv, rest[0], qty)))
            ex = fail_lib(rc, zkc_errmsg(), "restock %s %s", root, rest[0]);
        else if ((rc = zkc_inventory_stock(inv, rest[0], &si)))
            ex = fail_lib(rc, zkc_errmsg(), "restocked %s %s, but cannot read it back", root, rest[0]);
        else
            print_stock(root, rest[0], &si);
        break;
    case SV_RESERVE: {
        zkc_reserve_options ro;
        memset(&ro, 0, sizeof ro);
        ro.wait_for_restock = wait;
        ro.hold_ms = hold_ms; /* 0: library default */
        rc = zkc_inventory_reserve(inv, id, lines, nargs, &ro, timeout_ms, NULL, &st);
        char m[512];
        snprintf(m, sizeof m, "%s", zkc_errmsg());
        if (rc == ZKC_OK) {
            print_res_state(root, id, st);
        } else if (rc == ZKC_EOUTOFSTOCK) {
            print_res_state(root, id, ZKC_RES_OUT_OF_STOCK);
            ex = fail_lib(rc, m, "reserve %s --id %s: nothing reserved", root, id);
        } else if (rc == ZKC_ETIMEDOUT) {
            print_res_state(root, id, ZKC_RES_TIMED_OUT);
            ex = fail_lib(rc, m, "reserve %s --id %s: not decided within --timeout; nothing reserved", root, id);
        } else if (rc == ZKC_ESESSIONLOST || rc == ZKC_ECONNLOSS || rc == ZKC_EUNKNOWN) {
            ex = fail_lib(rc, m, "reserve %s --id %s: outcome unknown; check it with 'zkcoord stock lookup %s %s'",
                          root, id, root, id);
        } else {
            ex = fail_lib(rc, m, "reserve %s --id %s", root, id);
        }
        break;
    }
    case SV_CONFIRM:
    case SV_CANCEL: {
        const char *verb = verbs[v].verb;
        rc = v == SV_CONFIRM ? zkc_inventory_confirm(inv, rest[0]) : zkc_inventory_cancel(inv, rest[0]);
        if (!rc) {
            print_res_state(root, rest[0], v == SV_CONFIRM ? ZKC_RES_SOLD : ZKC_RES_CANCELLED);
        } else if (rc == ZKC_EINVAL) {
            /* Not a usage error: the reservation is in another state. */
            char m[512];
            snprintf(m, sizeof m, "%s", zkc_errmsg());
            if (!zkc_inventory_lookup(inv, rest[0], &st))
                msg("%s %s %s: the request is %s, not RESERVED", verb, root, rest[0], res_state_name(st));
            else
                fail_lib(rc, m, "%s %s %s", verb, root, rest[0]);
            ex = ZX_FAIL;
        } else {
            ex = fail_lib(rc, zkc_errmsg(), "%s %s %s", verb, root, rest[0]);
        }
        break;
    }
    case SV_LOOKUP:
        if (!(rc = zkc_inventory_lookup(inv, rest[0], &st)))
            print_res_state(root, rest[0], st);
        else if (rc == ZKC_ENONODE)
            ex = fail_lib(rc, zkc_errmsg(), "lookup %s %s: no such request", root, rest[0]);
        else
            ex = fail_lib(rc, zkc_errmsg(), "lookup %s %s", root, rest[0]);
        break;
    case SV_REAP:
        if ((rc = zkc_inventory_reap(inv, &returned))) {
            ex = fail_lib(rc, zkc_errmsg(), "reap %s", root);
        } else if (g.json) {
            printf("{\"root\":");
            json_str(stdout, root);
            printf(",\"returned\":%" PRId64 "}\n", returned);
        } else {
            printf("%" PRId64 "\n", returned);
        }
        break;
    }
    zkc_inventory_destroy(inv);
    zkc_client_destroy(c);
    free(lines);
    if (!ex && fflush(stdout)) {
        msg("cannot write the output: %s", strerror(errno));
        ex = ZX_FAIL;
    }
out:
    free(pos);
    return ex;
}

/* ------------------------------------------------------------ admin */

static void help_admin(FILE *f)
{
    fprintf(f,
            "usage: zkcoord admin cleanup [--dry-run] [--lock-root PATH] [--retention S]\n"
            "                             [--inventory ROOT]\n"
            "\n"
            "Delete what the recipes leave behind and no longer need, judged by the\n"
            "servers' clock (node mtime): exactly-once markers of client instances idle\n"
            "longer than the retention and idempotency keys (counter --key) older than it,\n"
            "under the meta root; with --lock-root, also empty lock parents below PATH\n"
            "unchanged for that long; with --inventory, the units of reservations under\n"
            "ROOT not confirmed within their hold time are returned. Safe while\n"
            "applications run (every delete is conditional).\n"
            "Output: \"examined N\", \"markers N\", \"keys N\", \"empty_parents N\" and, with\n"
            "--inventory, \"units_returned N\" lines (\"-\" in a dry run, which does not\n"
            "reap); with --json an object with those names and \"dry_run\".\n"
            "\n"
            "Options:\n"
            "  --dry-run          count what would be deleted, delete nothing\n"
            "  --lock-root PATH   also delete empty lock parents below PATH\n"
            "  --retention S      keep markers and keys S whole seconds (default 86400);\n"
            "                     never less than twice the session timeout\n"
            "  --inventory ROOT   also reap expired reservations of the inventory at ROOT\n"
            "\n" GLOBAL_OPTS_HELP "\n" EXIT_CODES_HELP
            "\n"
            "Example:\n"
            "  zkcoord admin cleanup --lock-root /locks --inventory /shop --dry-run\n");
}

enum { AD_DRY_RUN = 1, AD_LOCK_ROOT, AD_RETENTION, AD_INVENTORY };

static const optdef admin_opts[] = {
    {"dry-run", 0, 0, AD_DRY_RUN},
    {"lock-root", 0, 1, AD_LOCK_ROOT},
    {"retention", 0, 1, AD_RETENTION},
    {"inventory", 0, 1, AD_INVENTORY},
    {NULL, 0, 0, 0},
};

static int cmd_admin(int argc, char **argv)
{
    args a = {argc, argv, 0, 0, NULL, NULL};
    const char *verb = NULL, *lock_root = NULL, *inv_root = NULL;
    int dry_run = 0;
    int64_t retention = 0;
    for (int id; (id = next_arg(&a, admin_opts)) != A_END;) {
        switch (id) {
        case A_ERR: return ZX_USAGE;
        case A_DASHDASH: break;
        case A_POS:
            if (verb) {
                msg("unexpected argument '%s' (see 'zkcoord admin --help')", a.val);
                return ZX_USAGE;
            }
            verb = a.val;
            break;
        case AD_DRY_RUN: dry_run = 1; break;
        case AD_LOCK_ROOT: lock_root = a.val; break;
        case AD_INVENTORY: inv_root = a.val; break;
        case AD_RETENTION:
            if (parse_i64(a.val, "--retention", &retention))
                return ZX_USAGE;
            if (retention < 1 || retention > INT_MAX) {
                msg("--retention: '%s' is out of range (1..%d seconds)", a.val, INT_MAX);
                return ZX_USAGE;
            }
            break;
        }
    }
    if (g.help) {
        help_admin(stdout);
        return ZX_OK;
    }
    if (!verb) {
        msg("missing operation: cleanup (see 'zkcoord admin --help')");
        return ZX_USAGE;
    }
    if (strcmp(verb, "cleanup")) {
        msg("unknown operation '%s': expected cleanup", verb);
        return ZX_USAGE;
    }
    if ((lock_root && check_path(lock_root)) || (inv_root && check_path(inv_root)))
        return ZX_USAGE;

    zkc_client_options o;
    int ex = client_options(&o);
    if (ex)
        return ex;
    if (retention) {
        o.marker_retention_s = (int)retention;
        /* The library never keeps markers and keys for less than twice the
         * (requested) session timeout: say so rather than surprise. */
        int64_t floor_ms = 2LL * (o.session_timeout_ms > 0 ? o.session_timeout_ms : 10000);
        if (retention * 1000 < floor_ms)
            msg("note: --retention %" PRId64 " is raised to %.3g seconds (twice the session timeout; lower it "
                "with --session-timeout)",
                retention, floor_ms / 1000.0);
    }
    zkc_client *c;
    int rc = zkc_client_create(&c, &o);
    if (rc)
        return connect_failed(rc, zkc_errmsg(), o.hosts);
    zkc_cleanup_report r;
    memset(&r, 0, sizeof r);
    rc = zkc_admin_cleanup(c, lock_root, dry_run, &r);
    if (rc) {
        ex = fail_lib(rc, zkc_errmsg(), "cleanup%s%s", lock_root ? " --lock-root " : "", lock_root ? lock_root : "");
        zkc_client_destroy(c);
        return ex;
    }
    int64_t returned = -1; /* -1: not reaped */
    if (inv_root && !dry_run) {
        zkc_inventory *inv;
        rc = zkc_inventory_create(c, inv_root, &inv);
        if (!rc) {
            rc = zkc_inventory_reap(inv, &returned);
            zkc_inventory_destroy(inv);
        }
        if (rc) {
            /* The cleanup itself was done: say so before the error. */
            returned = -1;
            ex = fail_lib(rc, zkc_errmsg(), "cleanup done, but reap of inventory %s failed", inv_root);
        }
    } else if (inv_root) {
        msg("--dry-run: reservations of %s are not reaped (reaping cannot be previewed)", inv_root);
    }
    if (g.json) {
        printf("{\"dry_run\":%s,\"examined\":%" PRId64 ",\"markers\":%" PRId64 ",\"keys\":%" PRId64
               ",\"empty_parents\":%" PRId64,
               dry_run ? "true" : "false", r.examined, r.markers, r.keys, r.empty_parents);
        if (inv_root) {
            printf(",\"inventory\":");
            json_str(stdout, inv_root);
            if (returned >= 0)
                printf(",\"units_returned\":%" PRId64, returned);
            else
                printf(",\"units_returned\":null");
        }
        printf("}\n");
    } else {
        printf("examined %" PRId64 "\nmarkers %" PRId64 "\nkeys %" PRId64 "\nempty_parents %" PRId64 "\n",
               r.examined, r.markers, r.keys, r.empty_parents);
        if (inv_root) {
            if (returned >= 0)
                printf("units_returned %" PRId64 "\n", returned);
            else
                printf("units_returned -\n");
        }
    }
    zkc_client_destroy(c);
    if (!ex && fflush(stdout)) {
        msg("cannot write the output: %s", strerror(errno));
        ex = ZX_FAIL;
    }
    return ex;
}

/* ------------------------------------------------------------ main */

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    void (*help)(FILE *f);
    const char *summary;
} command;

static const command commands[] = {
    {"lock", cmd_lock, help_lock, "run a command while holding a lock"},
    {"counter", cmd_counter, help_counter, "read and update an exact counter (get, set, add, cas)"},
    {"queue", cmd_queue, help_queue, "list a lock's holders and waiters in order"},
    {"session", cmd_session, help_session, "connect and print the session id and timeout"},
    {"stock", cmd_stock, help_stock, "inventory reservations: read, restock, reserve, confirm, cancel"},
    {"admin", cmd_admin, help_admin, "delete leftover markers, keys and lock parents (cleanup)"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void help_main(FILE *f)
{
    fprintf(f,
            "usage: zkcoord [global options] COMMAND [options] [ARGS...]\n"
            "\n"
            "Fair distributed locks, exact counters and inventory reservations on Apache\n"
            "ZooKeeper, for shell scripts and operators.\n"
            "\n"
            "Commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "  help       'zkcoord help COMMAND' is 'zkcoord COMMAND --help'\n"
            "\n" GLOBAL_OPTS_HELP "\n" EXIT_CODES_HELP
            "\n"
            "See zkcoord(1).\n");
}

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    args a = {argc, argv, 1, 0, NULL, NULL};
    const char *name = NULL;
    for (int id; !name && (id = next_arg(&a, NULL)) != A_END;) {
        if (id == A_ERR)
            return ZX_USAGE;
        if (id == A_POS)
            name = a.val;
    }
    if (!name) {
        if (g.help) {
            help_main(stdout);
            return ZX_OK;
        }
        msg("missing command: lock, counter, queue, session, stock or admin (see 'zkcoord --help')");
        return ZX_USAGE;
    }
    if (!strcmp(name, "help")) {
        if (a.i < argc) {
            const command *c = find_command(argv[a.i]);
            if (!c) {
                msg("unknown command '%s' (see 'zkcoord --help')", argv[a.i]);
                return ZX_USAGE;
            }
            c->help(stdout);
        } else {
            help_main(stdout);
        }
        return ZX_OK;
    }
    const command *c = find_command(name);
    if (!c) {
        msg("unknown command '%s' (see 'zkcoord --help')", name);
        return ZX_USAGE;
    }
    static char cmdname[64];
    snprintf(cmdname, sizeof cmdname, "zkcoord %s", c->name);
    g.cmd = cmdname;
    return c->run(argc - a.i, argv + a.i);
}
