/* zkcoord counter: get, set, add (bounded, exactly once with --key) and cas on
 * an exact counter. */
#include "cli.h"

void help_counter(FILE *f)
{
    fprintf(f,
            "usage: zkcoord counter get PATH\n"
            "       zkcoord counter set PATH VALUE\n"
            "       zkcoord counter add PATH DELTA [--floor N] [--ceiling N] [--key K] [--guard NODE]\n"
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
            "  --guard NODE    add: apply only while NODE exists, checked by the servers in\n"
            "                  the same transaction (exit 11, nothing written, if it is\n"
            "                  gone); under 'zkcoord lock' or 'elect', NODE is the hold's own\n"
            "                  node: --guard \"$ZKC_GUARD_NODE\"\n"
            "\n" GLOBAL_OPTS_HELP "\n" EXIT_CODES_HELP
            "\n"
            "Example:\n"
            "  zkcoord counter add /stock/sku42 -2 --floor 0 --key order-1001\n");
}

enum { C_FORMAT = 1, C_INITIAL, C_FLOOR, C_CEILING, C_KEY, C_GUARD };

static const optdef counter_opts[] = {
    {"format", 0, 1, C_FORMAT},
    {"initial", 0, 1, C_INITIAL},
    {"floor", 0, 1, C_FLOOR},
    {"ceiling", 0, 1, C_CEILING},
    {"key", 0, 1, C_KEY},
    {"guard", 0, 1, C_GUARD},
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

int cmd_counter(int argc, char **argv)
{
    args a = {argc, argv, 0, 0, NULL, NULL};
    const char *pos[8];
    int npos = 0;
    zkc_counter_options co;
    zkc_counter_options_init(&co);
    zkc_update u;
    memset(&u, 0, sizeof u);
    zkc_guard guard;
    memset(&guard, 0, sizeof guard);
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
            if (parse_i64(a.val, "--floor", &u.bounds.floor))
                return ZX_USAGE;
            u.bounds.has_floor = 1;
            break;
        case C_CEILING:
            if (parse_i64(a.val, "--ceiling", &u.bounds.ceiling))
                return ZX_USAGE;
            u.bounds.has_ceiling = 1;
            break;
        case C_KEY:
            if (!*a.val) {
                msg("--key is empty");
                return ZX_USAGE;
            }
            u.key = a.val;
            break;
        case C_GUARD:
            /* The token is for logs only; the servers check the node. */
            if (strlen(a.val) >= sizeof guard.path) {
                msg("--guard: path too long");
                return ZX_USAGE;
            }
            snprintf(guard.path, sizeof guard.path, "%s", a.val);
            guard.version = -1;
            const char *tok = getenv("ZKC_FENCING_TOKEN");
            guard.token = tok ? strtoll(tok, NULL, 10) : 0;
            u.guard = &guard;
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
        {"add", 1, "counter add PATH DELTA [--floor N] [--ceiling N] [--key K] [--guard NODE]"},
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
    if (check_path(path) || (u.guard && check_path(guard.path)))
        return ZX_USAGE;
    if (v != 2 && (u.bounds.has_floor || u.bounds.has_ceiling || u.key || u.guard)) {
        msg("--floor, --ceiling, --key and --guard apply to 'counter add' only");
        return ZX_USAGE;
    }
    if (u.bounds.has_floor && u.bounds.has_ceiling && u.bounds.floor > u.bounds.ceiling) {
        msg("--floor %" PRId64 " is above --ceiling %" PRId64, u.bounds.floor, u.bounds.ceiling);
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
        rc = zkc_counter_add(ctr, val[0], (u.key || u.bounds.has_floor || u.bounds.has_ceiling || u.guard) ? &u : NULL,
                             &r);
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
        else if (rc == ZKC_EFENCED)
            ex = fail_lib(rc, m, "add %s: the guard's node %s is gone (its hold ended); nothing written", path,
                          guard.path);
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
