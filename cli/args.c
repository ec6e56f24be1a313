/* Command-line parsing shared by every subcommand: global options (accepted
 * before or after the subcommand name), each subcommand's own options, "--",
 * numbers, durations and ZooKeeper paths, checked before any connection so
 * that a usage error needs no server. */
#include "cli.h"

#include <limits.h>
#include <math.h>

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
int next_arg(args *a, const optdef *tbl)
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

int parse_i64(const char *s, const char *what, int64_t *out)
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

int parse_int_ms(const char *s, const char *what, int *out)
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
int parse_seconds(const char *s, const char *what, int *ms)
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

/* The library's longest path. It checks it itself, but only once connected,
 * and a usage error should not need a server; the header has no public
 * constant for it (yet: ZKC_PATH_MAX would be picked up here). */
#ifdef ZKC_PATH_MAX
#define ZKC_CLI_PATH_MAX ZKC_PATH_MAX
#else
#define ZKC_CLI_PATH_MAX 1024
#endif

/* Same rules as the library's path check, checked before connecting. */
int check_path(const char *p)
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
    if (strlen(p) > ZKC_CLI_PATH_MAX) {
        msg("path is %zu bytes long; the limit is %d", strlen(p), ZKC_CLI_PATH_MAX);
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
