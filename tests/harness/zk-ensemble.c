/* zk-ensemble: start and control a local ZooKeeper ensemble from shell scripts.
 * Servers outlive this command; their state and pids live in --dir. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ensemble.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: zk-ensemble start --dir DIR [--nodes N] [--tick MS] [--fsync]\n"
            "                         [--max-cnxns N] [--min-session MS] [--max-session MS]\n"
            "       zk-ensemble stop --dir DIR\n"
            "       zk-ensemble hosts --dir DIR\n"
            "       zk-ensemble leader --dir DIR           (prints the 1-based node number)\n"
            "       zk-ensemble wait --dir DIR [--timeout MS]  (until a quorum serves)\n"
            "       zk-ensemble kill9|stop-node|start-node|pause|resume --dir DIR N\n"
            "Nodes are numbered from 1, like docker/ensemble.sh and each server's myid.\n"
            "start prints the connect string and writes it to DIR/hosts.\n");
}

static int parse_int(const char *s, const char *what, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > 1000000000) {
        fprintf(stderr, "zk-ensemble: bad %s '%s'\n", what, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1], *dir = NULL;
    zkh_options o;
    zkh_options_init(&o);
    int node = -1, timeout_ms = 60000;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        int *target = NULL;
        const char *what = a;
        if (!strcmp(a, "--dir") && val) {
            dir = val;
            i++;
            continue;
        } else if (!strcmp(a, "--fsync")) {
            o.fsync = 1;
            continue;
        } else if (!strcmp(a, "--nodes")) {
            target = &o.nodes;
        } else if (!strcmp(a, "--tick")) {
            target = &o.tick_ms;
        } else if (!strcmp(a, "--max-cnxns")) {
            target = &o.max_client_cnxns;
        } else if (!strcmp(a, "--min-session")) {
            target = &o.min_session_timeout_ms;
        } else if (!strcmp(a, "--max-session")) {
            target = &o.max_session_timeout_ms;
        } else if (!strcmp(a, "--timeout")) {
            target = &timeout_ms;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (a[0] != '-' && node < 0) {
            if (parse_int(a, "node number", &node))
                return 2;
            continue;
        } else {
            fprintf(stderr, "zk-ensemble: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (!val) {
            fprintf(stderr, "zk-ensemble: %s needs a value\n", what);
            return 2;
        }
        if (parse_int(val, what, target))
            return 2;
        i++;
    }
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!dir) {
        fprintf(stderr, "zk-ensemble: %s needs --dir DIR\n", cmd);
        return 2;
    }

    if (!strcmp(cmd, "start")) {
        if (o.nodes < 1 || o.nodes > 7) {
            fprintf(stderr, "zk-ensemble: --nodes must be 1..7\n");
            return 2;
        }
        o.base_dir = dir;
        zkh_ensemble *e;
        int r = zkh_ensemble_start_detached(&e, &o);
        if (r) {
            fprintf(stderr, "zk-ensemble: start failed: %s (logs in %s/node*/zookeeper.log)\n",
                    strerror(-r), dir);
            return 1;
        }
        printf("%s\n", zkh_ensemble_hosts(e));
        zkh_ensemble_release(e);
        return 0;
    }

    zkh_ensemble *e;
    int r = zkh_ensemble_attach(&e, dir);
    if (r) {
        fprintf(stderr, "zk-ensemble: no ensemble recorded in %s: %s\n", dir, strerror(-r));
        return 1;
    }
    int rc = 0;
    if (!strcmp(cmd, "stop")) {
        zkh_ensemble_stop(e); /* a --dir given by the user is kept */
        return 0;
    } else if (!strcmp(cmd, "hosts")) {
        printf("%s\n", zkh_ensemble_hosts(e));
    } else if (!strcmp(cmd, "leader")) {
        int l = zkh_leader(e), running = 0;
        for (int i = 0; i < zkh_node_count(e); i++)
            running += zkh_node_running(e, i);
        if (l < 0) {
            if (running)
                fprintf(stderr, "zk-ensemble: no node reports Mode: leader (%d running)\n",
                        running);
            else
                fprintf(stderr, "zk-ensemble: no server of %s is running\n", dir);
            rc = 1;
        } else {
            printf("%d\n", l + 1);
        }
    } else if (!strcmp(cmd, "wait")) {
        if ((r = zkh_wait_quorum(e, timeout_ms))) {
            fprintf(stderr, "zk-ensemble: no quorum within %d ms\n", timeout_ms);
            rc = 1;
        }
    } else {
        int (*fn)(zkh_ensemble *, int) = NULL;
        if (!strcmp(cmd, "kill9"))
            fn = zkh_node_kill9;
        else if (!strcmp(cmd, "stop-node"))
            fn = zkh_node_stop;
        else if (!strcmp(cmd, "start-node"))
            fn = zkh_node_start;
        else if (!strcmp(cmd, "pause"))
            fn = zkh_node_pause;
        else if (!strcmp(cmd, "resume"))
            fn = zkh_node_resume;
        if (!fn) {
            fprintf(stderr, "zk-ensemble: unknown command '%s'\n", cmd);
            usage(stderr);
            rc = 2;
        } else if (node < 1 || node > zkh_node_count(e)) {
            fprintf(stderr, "zk-ensemble: %s needs a node number 1..%d\n", cmd,
                    zkh_node_count(e));
            rc = 2;
        } else if ((r = fn(e, node - 1))) {
            fprintf(stderr, "zk-ensemble: %s %d failed: %s\n", cmd, node, strerror(-r));
            rc = 1;
        }
    }
    zkh_ensemble_release(e);
    return rc;
}
