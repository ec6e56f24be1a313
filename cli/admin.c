/* zkcoord admin cleanup: delete leftover markers, keys and lock parents. */
#include "cli.h"

void help_admin(FILE *f)
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

int cmd_admin(int argc, char **argv)
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
