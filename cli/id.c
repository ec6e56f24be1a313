/* zkcoord id next: order numbers from the id generator, for shell scripts.
 *
 * One process leases exactly one block of N ids (block = max_block = N,
 * grow_ms 0) with one exactly-once counter update, prints them, and exits. A
 * bigger block would leave a hole of its unused ids at every run, a smaller
 * one would cost a write per block: N is the only size that fits a process
 * that lives for N ids.
 *
 * --gap-free (invoice numbers): no block, one exactly-once write per id, so
 * a run never leaves a hole; --key K makes the take repeatable (a re-run
 * after a crash prints the same id), and `id void` records an id that will
 * not be used. */
#include "cli.h"

/* A bound on -n that keeps one lease meaningful and the output finite. */
#define ID_MAX_COUNT 1000000

void help_id(FILE *f)
{
    fprintf(f,
            "usage: zkcoord id next PATH [-n N] [--gap-free [--key K]]\n"
            "       zkcoord id void PATH ID\n"
            "\n"
            "Print N (default 1) new ids from the id generator at PATH, one per line, in\n"
            "increasing order. Ids are unique across every process that uses PATH (the\n"
            "node holds the highest id leased, as an int64 counter; ids start at 1), also\n"
            "across crashes and lost replies. Each run leases exactly N ids with one\n"
            "write, so N ids from one run are consecutive, and a later run prints larger\n"
            "ids than an earlier one that finished. An id is never printed twice; a run\n"
            "that fails after its lease leaves those ids unused (a hole).\n"
            "With --json: {\"path\":\"...\",\"ids\":[...]}.\n"
            "Exit status 4: no id was leased (no server reachable); 1 also when every id\n"
            "up to the largest 64-bit integer has been leased.\n"
            "\n"
            "--gap-free: each id is taken by its own exactly-once write (no block), so\n"
            "ids are never skipped: every id up to the node's value was printed by some\n"
            "run, or is voided. With --key K (implies --gap-free, one id) the take is\n"
            "idempotent: a repeat with the same K prints the same id (for 24 h by\n"
            "default), so a script re-run after a crash gets its number back. Exit 9: the\n"
            "take's outcome is unknown (no server reachable to decide); the message names\n"
            "its key; re-run with --key to settle it.\n"
            "id void PATH ID records that a taken id will not be used (the node\n"
            "PATH-voided/<ID as 19 digits>); idempotent; refused for an id not taken yet.\n"
            "\n"
            "Options:\n"
            "  -n, --count N   how many ids (1..%d; default 1)\n"
            "      --gap-free  one write per id, no holes\n"
            "      --key K     idempotent gap-free take under K\n"
            "\n" GLOBAL_OPTS_HELP "\n" EXIT_CODES_HELP
            "\n"
            "Example:\n"
            "  order=$(zkcoord id next /shop/order-ids)\n"
            "  invoice=$(zkcoord id next /shop/invoice-ids --key \"order-$order\")\n",
            ID_MAX_COUNT);
}

enum { I_COUNT = 1, I_GAPFREE, I_KEY };

static const optdef id_opts[] = {
    {"count", 'n', 1, I_COUNT},
    {"gap-free", 0, 0, I_GAPFREE},
    {"key", 0, 1, I_KEY},
    {NULL, 0, 0, 0},
};

int cmd_id(int argc, char **argv)
{
    args a = {argc, argv, 0, 0, NULL, NULL};
    const char *pos[3];
    int npos = 0;
    int64_t n = 1;
    int gap_free = 0;
    const char *key = NULL;
    for (int id; (id = next_arg(&a, id_opts)) != A_END;) {
        switch (id) {
        case A_ERR: return ZX_USAGE;
        case A_DASHDASH: break;
        case A_POS:
            if (npos == 3) {
                msg("unexpected argument '%s': usage: zkcoord id next PATH [-n N]", a.val);
                return ZX_USAGE;
            }
            pos[npos++] = a.val;
            break;
        case I_GAPFREE: gap_free = 1; break;
        case I_KEY: key = a.val; gap_free = 1; break;
        case I_COUNT:
            if (parse_i64(a.val, a.name, &n))
                return ZX_USAGE;
            if (n < 1 || n > ID_MAX_COUNT) {
                msg("%s %s: the count must be 1..%d", a.name, a.val, ID_MAX_COUNT);
                return ZX_USAGE;
            }
            break;
        }
    }
    if (g.help) {
        help_id(stdout);
        return ZX_OK;
    }
    if (npos == 0) {
        msg("missing operation: next (see 'zkcoord id --help')");
        return ZX_USAGE;
    }
    int is_void = !strcmp(pos[0], "void");
    if (strcmp(pos[0], "next") && !is_void) {
        msg("unknown operation '%s': expected next or void", pos[0]);
        return ZX_USAGE;
    }
    int64_t void_id = 0;
    if (is_void && (npos != 3 || parse_i64(pos[2], "ID", &void_id))) {
        if (npos != 3)
            msg("void: expected PATH ID: usage: zkcoord id void PATH ID");
        return ZX_USAGE;
    }
    if (key && n != 1) {
        msg("--key takes one id: -n must be 1");
        return ZX_USAGE;
    }
    if (!is_void && npos != 2) {
        msg("next: expected PATH: usage: zkcoord id next PATH [-n N]");
        return ZX_USAGE;
    }
    const char *path = pos[1];
    if (check_path(path))
        return ZX_USAGE;

    zkc_idgen_options o;
    zkc_idgen_options_init(&o);
    o.block = o.max_block = n;
    o.grow_ms = 0;
    o.gap_free = gap_free;
    zkc_client *c;
    int ex = connect_client(&c);
    if (ex)
        return ex;
    zkc_idgen *gen;
    int rc = zkc_idgen_create(c, path, &o, &gen);
    if (rc) {
        ex = fail_lib(rc, zkc_errmsg(), "id %s", path);
        zkc_client_destroy(c);
        return ex;
    }
    if (is_void) {
        if ((rc = zkc_idgen_void(gen, void_id)))
            ex = fail_lib(rc, zkc_errmsg(), "void %s %" PRId64, path, void_id);
        else if (g.json) {
            printf("{\"path\":");
            json_str(stdout, path);
            printf(",\"voided\":%" PRId64 "}\n", void_id);
        }
        zkc_idgen_destroy(gen);
        zkc_client_destroy(c);
        return ex;
    }
    if (g.json) {
        printf("{\"path\":");
        json_str(stdout, path);
        printf(",\"ids\":[");
    }
    int64_t got = 0;
    for (; got < n; got++) {
        int64_t id;
        if ((rc = key ? zkc_idgen_next_keyed(gen, key, ZKC_FOREVER, &id) : zkc_idgen_next(gen, ZKC_FOREVER, &id)))
            break;
        if (g.json)
            printf("%s%" PRId64, got ? "," : "", id);
        else
            printf("%" PRId64 "\n", id);
    }
    if (g.json)
        printf("]}\n");
    if (rc) {
        char m[512];
        snprintf(m, sizeof m, "%s", zkc_errmsg());
        if (rc == ZKC_ELIMIT)
            ex = fail_lib(rc, m, "next %s: every id has been leased", path);
        else
            ex = fail_lib(rc, m, "next %s: %" PRId64 " of %" PRId64 " ids printed", path, got, n);
        if (ex == ZX_UNKNOWN && !gap_free) /* no id of an unknown lease is ever handed out */
            ex = ZX_NOSERVER;
    }
    zkc_idgen_destroy(gen);
    zkc_client_destroy(c);
    if (!ex && fflush(stdout)) {
        msg("cannot write the output: %s", strerror(errno));
        ex = ZX_FAIL;
    }
    return ex;
}
