/* zkcoord stock: inventory reservations (read, restock, reserve, confirm,
 * return, lookup, reap). */
#include "cli.h"

#include <ctype.h>

void help_stock(FILE *f)
{
    fprintf(f,
            "usage: zkcoord stock ROOT SKU [--watch]\n"
            "       zkcoord stock restock ROOT SKU QTY\n"
            "       zkcoord stock reserve ROOT --id ID [--wait] [--hold-ms MS] [--timeout S]\n"
            "                             SKU:QTY [SKU:QTY...]\n"
            "       zkcoord stock confirm ROOT ID\n"
            "       zkcoord stock return ROOT ID\n"
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
            "'confirm' makes a reservation SOLD, 'return' gives its units back (RETURNED);\n"
            "both are idempotent and print the new state. 'lookup' prints the state of ID:\n"
            "PENDING, RESERVED, SOLD, RETURNED, OUT_OF_STOCK, TIMED_OUT, EXPIRED or\n"
            "ABANDONED. 'reap' returns the units of reservations not confirmed within their\n"
            "hold time and prints how many units came back. With --json every form prints\n"
            "an object.\n"
            "\n"
            "'stock ROOT SKU --watch' (-w) is a live view until interrupted (SIGINT/SIGTERM:\n"
            "exit 0), updated on ZooKeeper watches (no polling): redrawn on a terminal,\n"
            "otherwise one line per change, \"TIME available N reserved N sold N total N\n"
            "queue_length N\", or with --json one object per line (as above, plus \"time\").\n"
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

enum { S_ID = 1, S_WAIT, S_HOLD_MS, S_TIMEOUT, S_WATCH };

static const optdef stock_opts[] = {
    {"id", 0, 1, S_ID},
    {"wait", 0, 0, S_WAIT},
    {"hold-ms", 0, 1, S_HOLD_MS},
    {"timeout", 't', 1, S_TIMEOUT},
    {"watch", 'w', 0, S_WATCH},
    {NULL, 0, 0, 0},
};

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
static int parse_line(char *s, zkc_inventory_line *l)
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

static void print_stock(const char *root, const char *sku, const zkc_inventory_stock_info *si)
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

/* ---- the live view ('stock ROOT SKU --watch') */

typedef struct stock_view {
    zkc_inventory *inv;
    const char *root, *sku;
    zkc_inventory_stock_info si;
} stock_view;

static int stock_watch(live_view *v, zkc_watch_fn fn, void *ud, zkc_watch **out)
{
    stock_view *s = v->ctx;
    return zkc_inventory_stock_watch(s->inv, s->sku, fn, ud, out);
}

static int stock_read(live_view *v)
{
    stock_view *s = v->ctx;
    return zkc_inventory_stock(s->inv, s->sku, &s->si);
}

static void stock_print(live_view *v, int mode, int64_t now)
{
    stock_view *s = v->ctx;
    const zkc_inventory_stock_info *si = &s->si;
    char when[40];
    iso8601(now, when, sizeof when);
    if (mode == LIVE_JSON) {
        printf("{\"time\":\"%s\",\"root\":", when);
        json_str(stdout, s->root);
        printf(",\"sku\":");
        json_str(stdout, s->sku);
        printf(",\"available\":%" PRId64 ",\"reserved\":%" PRId64 ",\"sold\":%" PRId64 ",\"total\":%" PRId64
               ",\"queue_length\":%d}\n",
               si->available, si->reserved, si->sold, si->total, si->queue_length);
    } else if (mode == LIVE_LINES) {
        printf("%s available %" PRId64 " reserved %" PRId64 " sold %" PRId64 " total %" PRId64 " queue_length %d\n",
               when, si->available, si->reserved, si->sold, si->total, si->queue_length);
    } else {
        printf("  available     %12" PRId64 "\n  reserved      %12" PRId64 "\n  sold          %12" PRId64
               "\n  total         %12" PRId64 "\n  queue length  %12d\n",
               si->available, si->reserved, si->sold, si->total, si->queue_length);
    }
}

static void print_res_state(const char *root, const char *id, zkc_inventory_state st)
{
    if (g.json) {
        printf("{\"root\":");
        json_str(stdout, root);
        printf(",\"id\":");
        json_str(stdout, id);
        printf(",\"state\":\"%s\"}\n", zkc_inventory_state_name(st));
    } else {
        printf("%s\n", zkc_inventory_state_name(st));
    }
}

enum { SV_READ, SV_RESTOCK, SV_RESERVE, SV_CONFIRM, SV_RETURN, SV_LOOKUP, SV_REAP };

int cmd_stock(int argc, char **argv)
{
    args a = {argc, argv, 0, 0, NULL, NULL};
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos) {
        msg("out of memory");
        return ZX_FAIL;
    }
    int npos = 0, wait = 0, hold_ms = 0, timeout_ms = ZKC_FOREVER, reserve_opts = 0, watch = 0;
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
        case S_WATCH:
            watch = 1;
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
        [SV_RETURN] = {"return", 1, "stock return ROOT ID"},
        [SV_LOOKUP] = {"lookup", 1, "stock lookup ROOT ID"},
        [SV_REAP] = {"reap", 0, "stock reap ROOT"},
    };
    if (npos == 0) {
        msg("missing ROOT or operation: ROOT SKU, restock, reserve, confirm, return, lookup or reap (see "
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
            msg("unknown operation '%s': expected ROOT SKU, restock, reserve, confirm, return, lookup or reap",
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
    if (v != SV_READ && watch) {
        msg("--watch applies to 'stock ROOT SKU' only");
        ex = ZX_USAGE;
        goto out;
    }
    zkc_inventory_line *lines = NULL;
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
    case SV_RETURN:
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
    zkc_inventory_stock_info si;
    zkc_inventory_state st = ZKC_INVENTORY_PENDING;
    int64_t returned = 0;
    memset(&si, 0, sizeof si);
    switch (v) {
    case SV_READ:
        if (watch) {
            stock_view sv = {inv, root, rest[0], {0, 0, 0, 0, 0}};
            char title[1024];
            snprintf(title, sizeof title, "%s %s", root, rest[0]);
            live_view lv = {"stock", title, stock_watch, stock_read, stock_print, &sv};
            ex = live_run(&lv);
        } else if (!(rc = zkc_inventory_stock(inv, rest[0], &si)))
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
        zkc_inventory_reserve_options ro;
        memset(&ro, 0, sizeof ro);
        ro.wait_for_restock = wait;
        ro.hold_ms = hold_ms; /* 0: library default */
        rc = zkc_inventory_reserve(inv, id, lines, nargs, &ro, timeout_ms, NULL, &st);
        char m[512];
        snprintf(m, sizeof m, "%s", zkc_errmsg());
        if (rc == ZKC_OK) {
            print_res_state(root, id, st);
        } else if (rc == ZKC_EOUTOFSTOCK) {
            print_res_state(root, id, ZKC_INVENTORY_OUT_OF_STOCK);
            ex = fail_lib(rc, m, "reserve %s --id %s: nothing reserved", root, id);
        } else if (rc == ZKC_ETIMEDOUT) {
            print_res_state(root, id, ZKC_INVENTORY_TIMED_OUT);
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
    case SV_RETURN: {
        const char *verb = verbs[v].verb;
        rc = v == SV_CONFIRM ? zkc_inventory_confirm(inv, rest[0]) : zkc_inventory_return(inv, rest[0]);
        if (!rc) {
            print_res_state(root, rest[0], v == SV_CONFIRM ? ZKC_INVENTORY_SOLD : ZKC_INVENTORY_RETURNED);
        } else if (rc == ZKC_EINVAL) {
            /* Not a usage error: the reservation is in another state. */
            char m[512];
            snprintf(m, sizeof m, "%s", zkc_errmsg());
            if (!zkc_inventory_lookup(inv, rest[0], &st))
                msg("%s %s %s: the request is %s, not RESERVED", verb, root, rest[0], zkc_inventory_state_name(st));
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
