/* zkcoord queue: a lock's holders and waiters, in queue order. */
#include "cli.h"

void help_queue(FILE *f)
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

int cmd_queue(int argc, char **argv)
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
    zkc_lock_contender *e = NULL;
    int n = 0;
    int rc = zkc_lock_contenders(c, path, &e, &n);
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
    zkc_lock_contenders_free(e, n);
    zkc_client_destroy(c);
    return ZX_OK;
}
