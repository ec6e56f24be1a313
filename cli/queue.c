/* zkcoord queue: a lock's holders and waiters, in queue order. */
#include "cli.h"

void help_queue(FILE *f)
{
    fprintf(f,
            "usage: zkcoord queue PATH [--watch]\n"
            "\n"
            "List the holders and waiters of the lock at PATH in queue order: node name,\n"
            "sequence number, whether it holds, kind (mutex, read, write, semaphore),\n"
            "owner session, and since when it is queued (server clock, UTC) with its age.\n"
            "Curator and kazoo lock nodes are recognised too. Output is a snapshot.\n"
            "With --json: {\"path\":..., \"entries\":[{\"position\", \"name\", \"sequence\",\n"
            "\"holds\", \"kind\", \"session\", \"czxid\", \"since\", \"ctime_ms\", \"age_ms\"}]}.\n"
            "\n"
            "  -w, --watch   a live view until interrupted (SIGINT/SIGTERM: exit 0), updated\n"
            "                on ZooKeeper watches (no polling), with each contender's fencing\n"
            "                token (czxid). On a terminal the screen is redrawn; otherwise one\n"
            "                snapshot per change: a '# TIME PATH: N contenders' line, the table\n"
            "                and an empty line, or with --json one object per line (as above,\n"
            "                plus \"time\"); events as '# TIME ...' lines or {\"event\":...}.\n"
            "\n" GLOBAL_OPTS_HELP "\n" EXIT_CODES_HELP);
}

/* One snapshot. live: the view's form (the fencing token column, a time). */
static void print_queue(const char *path, const zkc_lock_contender *e, int n, int64_t now, int mode)
{
    int live = mode != 0;
    char stamp[40];
    iso8601(now, stamp, sizeof stamp);
    if (g.json) {
        printf("{");
        if (live)
            printf("\"time\":\"%s\",", stamp);
        printf("\"path\":");
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
        return;
    }
    if (mode == LIVE_LINES)
        printf("# %s %s: %d contender%s\n", stamp, path, n, n == 1 ? "" : "s");
    if (n == 0) {
        printf("%s: no holders, no waiters\n", path);
    } else {
        size_t w = 4;
        for (int i = 0; i < n; i++)
            if (strlen(e[i].name) > w)
                w = strlen(e[i].name);
        printf("%-3s  %-*s  %10s  %-5s  %-9s  %-18s  ", "POS", (int)w, "NAME", "SEQUENCE", "HOLDS", "KIND", "SESSION");
        if (live)
            printf("%-12s  ", "TOKEN");
        printf("%s\n", "SINCE (AGE)");
        for (int i = 0; i < n; i++) {
            char when[40], age[24], sess[24];
            iso8601(e[i].ctime_ms, when, sizeof when);
            human_age(now - e[i].ctime_ms, age, sizeof age);
            snprintf(sess, sizeof sess, "0x%" PRIx64, (uint64_t)e[i].session_id);
            printf("%-3d  %-*s  %10" PRId64 "  %-5s  %-9s  %-18s  ", i + 1, (int)w, e[i].name, e[i].sequence,
                   e[i].holds ? "yes" : "no", kind_name(e[i].kind), sess);
            if (live)
                printf("%-12" PRId64 "  ", e[i].czxid);
            printf("%s (%s)\n", when, age);
        }
    }
    if (mode == LIVE_LINES)
        printf("\n");
}

/* ---- the live view */

typedef struct queue_view {
    zkc_client *c;
    const char *path;
    zkc_lock_contender *e;
    int n;
} queue_view;

static int queue_watch(live_view *v, zkc_watch_fn fn, void *ud, zkc_watch **out)
{
    queue_view *q = v->ctx;
    return zkc_lock_contenders_watch(q->c, q->path, fn, ud, out);
}

static int queue_read(live_view *v)
{
    queue_view *q = v->ctx;
    zkc_lock_contender *e = NULL;
    int n = 0;
    int rc = zkc_lock_contenders(q->c, q->path, &e, &n);
    if (rc)
        return rc;
    zkc_lock_contenders_free(q->e, q->n);
    q->e = e;
    q->n = n;
    return 0;
}

static void queue_print(live_view *v, int mode, int64_t now)
{
    queue_view *q = v->ctx;
    print_queue(q->path, q->e, q->n, now, mode);
}

enum { Q_WATCH = 1 };
static const optdef queue_opts[] = {{"watch", 'w', 0, Q_WATCH}, {NULL, 0, 0, 0}};

int cmd_queue(int argc, char **argv)
{
    args a = {argc, argv, 0, 0, NULL, NULL};
    const char *path = NULL;
    int watch = 0;
    for (int id; (id = next_arg(&a, queue_opts)) != A_END;) {
        if (id == A_ERR)
            return ZX_USAGE;
        if (id == Q_WATCH)
            watch = 1;
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
    if (watch) {
        queue_view q = {c, path, NULL, 0};
        live_view v = {"queue", path, queue_watch, queue_read, queue_print, &q};
        ex = live_run(&v);
        zkc_lock_contenders_free(q.e, q.n);
        zkc_client_destroy(c);
        return ex;
    }
    zkc_lock_contender *e = NULL;
    int n = 0;
    int rc = zkc_lock_contenders(c, path, &e, &n);
    if (rc) {
        ex = fail_lib(rc, zkc_errmsg(), "queue %s", path);
        zkc_client_destroy(c);
        return ex;
    }
    print_queue(path, e, n, now_ms(CLOCK_REALTIME), 0);
    zkc_lock_contenders_free(e, n);
    zkc_client_destroy(c);
    return ZX_OK;
}
