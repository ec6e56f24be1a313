/* Connecting: the client options from the global options and the
 * environment, a blocking connect, and what to say when it fails (an
 * unresolvable host name is an unreachable server, exit 4). */
#include "cli.h"

#include <netdb.h>
#include <sys/socket.h>

static void log_to_stderr(zkc_log_level level, const char *m, void *ud)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    (void)ud;
    /* Runs on library threads: stdio only, no zkcoord calls. */
    fprintf(stderr, "zkcoord: [%s] %s\n", names[level <= ZKC_LOG_DEBUG ? level : ZKC_LOG_DEBUG], m);
}

/* Fill client options from the global options and the environment. Returns 0
 * or ZX_USAGE (message printed). */
int client_options(zkc_client_options *o)
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

int connect_failed(int rc, const char *errmsg, const char *hosts)
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
int connect_client(zkc_client **c)
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
