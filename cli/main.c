/* zkcoord(1): fair distributed locks, exact counters and inventory
 * reservations on ZooKeeper, from a shell. Built only on the public API in
 * <zkcoord.h>.
 *
 * This file: the global options' state, the table of subcommands (add one by
 * writing its run and help functions in a file of its own, cli/NAME.c, and one
 * row below), the mapping from library errors to exit codes, and main. The
 * exit codes themselves and their help text are in cli.h. */
#include "cli.h"

#include <stdarg.h>

cli_globals g = {.cmd = "zkcoord"};

void msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", g.cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Exit status for a library error code. */
int exit_for(int rc)
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
    case ZKC_EFENCED: return ZX_FENCED;
    default: return ZX_FAIL;
    }
}

/* "<what>: <library sentence> (<code name>)"; returns the exit status. The
 * library message is per thread: pass it in when it was captured elsewhere. */
int fail_lib(int rc, const char *errmsg, const char *fmt, ...)
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

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    void (*help)(FILE *f);
    const char *summary;
} command;

static const command commands[] = {
    {"lock", cmd_lock, help_lock, "run a command while holding a lock"},
    {"elect", cmd_elect, help_elect, "run a command while leader of an election"},
    {"counter", cmd_counter, help_counter, "read and update an exact counter (get, set, add, cas)"},
    {"queue", cmd_queue, help_queue, "list a lock's holders and waiters in order"},
    {"session", cmd_session, help_session, "connect and print the session id and timeout"},
    {"stock", cmd_stock, help_stock, "inventory reservations: read, restock, reserve, confirm, return"},
    {"admin", cmd_admin, help_admin, "delete leftover markers, keys and lock parents (cleanup)"},
    {"id", cmd_id, help_id, "print new unique, increasing ids (order numbers)"},
    {"ratelimit", cmd_ratelimit, help_ratelimit, "take permits from a shared rate limit, then exit or run a command"},
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
        msg("missing command: lock, elect, counter, queue, session, stock, admin, id or ratelimit (see 'zkcoord --help')");
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
