/* Declarations shared by the files of zkcoord(1) (the cli/ sources): exit codes and
 * their help text, the global options, option parsing, output helpers,
 * connecting, and the subcommands' entry points. Internal to the tool, which
 * uses only the public <zkcoord.h>. */
#ifndef ZKCOORD_CLI_H
#define ZKCOORD_CLI_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <zkcoord.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <time.h>

/* ---- exit codes: the one source. EXIT_CODES_HELP is printed by --help,
 * README.md quotes it verbatim and zkcoord.1 lists the same codes
 * (tests/cli/exit-codes.sh checks both). */
enum {
    ZX_OK = 0,
    ZX_FAIL = 1,     /* any other failure (server error, malformed data, ...) */
    ZX_USAGE = 2,    /* bad command line: option, path, number, missing --hosts */
    ZX_BUSY = 3,     /* lock not acquired in time / busy; counter too contended */
    ZX_NOSERVER = 4, /* no ZooKeeper server reachable, or the session ended */
    ZX_AUTH = 5,     /* authentication failed or the ACL forbids the operation */
    ZX_LOST = 6,     /* lock, elect: the hold was lost while the command ran */
    ZX_BOUND = 7,    /* counter add refused by --floor/--ceiling */
    ZX_MISMATCH = 8, /* counter cas: the current value differs */
    ZX_UNKNOWN = 9,  /* write sent but its outcome is unknown (retry with the same --key) */
    ZX_OUTOFSTOCK = 10, /* stock reserve: not enough stock (fail-fast), nothing reserved */
    ZX_FENCED = 11      /* counter add --guard: the guard's hold had ended, nothing written */
};

#define EXIT_CODES_HELP                                                                   \
    "Exit status:\n"                                                                      \
    "  0  success (for 'lock' and 'elect': the command's own status is passed through)\n" \
    "  1  other failure (server error, malformed node data, overflow, ...)\n"             \
    "  2  usage error: bad option, path or number; no --hosts/ZKC_HOSTS\n"                \
    "  3  timeout: the lock is busy or not elected (--timeout passed), or a counter is\n" \
    "     too contended\n"                                                                \
    "  4  no ZooKeeper server reachable (or its name does not resolve), or the session\n" \
    "     ended\n"                                                                          \
    "  5  authentication failed, or the node's ACL forbids the operation\n"               \
    "  6  lock, elect: the lock or leadership was lost (or, with --kill-on-suspend,\n"   \
    "     suspended) while the command ran; the command's process group was terminated\n" \
    "  7  counter add: refused by --floor/--ceiling (nothing written)\n"                  \
    "  8  counter cas: the current value differs from the expected one\n"                 \
    "  9  outcome unknown: the write was sent but no server confirmed it; repeat the\n"   \
    "     command with the same --key to apply it exactly once\n"                         \
    "  10 stock reserve: not enough stock (without --wait); nothing reserved\n"             \
    "  11 counter add --guard: the hold the guard stands for had ended; nothing written\n"  \
    "  126/127  lock, elect: COMMAND not executable / not found\n"                        \
    "  128+N    lock, elect: COMMAND was killed by signal N (or zkcoord was interrupted\n" \
    "           by it)\n"

/* Exit status for a library error code. */
int exit_for(int rc);

/* "zkcoord CMD: ..." on stderr. */
void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "<what>: <library sentence> (<code name>)"; returns the exit status. The
 * library message is per thread: pass it in when it was captured elsewhere. */
int fail_lib(int rc, const char *errmsg, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- global options (cli/args.c parses them, cli/main.c holds them) */
typedef struct cli_globals {
    const char *hosts;
    const char *auth;
    int acl; /* zkc_acl */
    const char *meta_root;
    int session_timeout_ms; /* 0: library default */
    int connect_timeout_ms; /* 0: library default */
    int json;
    int verbose;
    int help;
    const char *cmd; /* "zkcoord lock", for messages */
} cli_globals;

extern cli_globals g;

#define GLOBAL_OPTS_HELP                                                                          \
    "Global options (before or after the subcommand):\n"                                          \
    "  --hosts H              ZooKeeper servers \"host:port[,host:port...][/chroot]\"\n"          \
    "                         (default: $ZKC_HOSTS; one of the two is required)\n"                \
    "  --session-timeout MS   requested session timeout (default 10000; the servers clamp it)\n"  \
    "  --connect-timeout MS   how long to wait for the first session (default 15000)\n"           \
    "  --auth USER:PASS       digest credentials (default: $ZKC_AUTH; an empty ZKC_AUTH is none)\n" \
    "  --acl open|creator|creator-read\n"                                                         \
    "                         ACL of the nodes this command creates (default open: anyone);\n"  \
    "                         creator and creator-read need --auth\n"                          \
    "  --meta-root PATH       where the library keeps its records (default /zkcoord)\n"           \
    "  --json                 machine-readable output where the output is data\n"                 \
    "  -v, --verbose          library log on stderr (twice: debug)\n"                             \
    "  -h, --help             help (for the tool or the subcommand)\n"                            \
    "  -V, --version          print the version\n"

/* ---- option parsing (cli/args.c) */
enum { A_END = 0, A_POS = -1, A_DASHDASH = -2, A_ERR = -3 };

typedef struct optdef {
    const char *name; /* long name without "--" */
    char shortc;      /* 0: none */
    int has_arg;
    int id; /* > 0 */
} optdef;

typedef struct args {
    int argc;
    char **argv;
    int i;
    int after_dd;      /* a "--" was seen: everything is positional */
    const char *val;   /* the value of an option or the positional */
    const char *name;  /* the option as written, for messages */
} args;

/* Next option (its id, value in a->val), positional (A_POS), "--"
 * (A_DASHDASH, returned once), end (A_END) or error (A_ERR, message printed).
 * Global options are applied on the way and skipped. */
int next_arg(args *a, const optdef *tbl);
/* Values; each returns 0, or -1 after a message. */
int parse_i64(const char *s, const char *what, int64_t *out);
int parse_int_ms(const char *s, const char *what, int *out);
int parse_seconds(const char *s, const char *what, int *ms);
int check_path(const char *p);

/* ---- output (cli/out.c) */
void json_str(FILE *f, const char *s);
int64_t now_ms(clockid_t clk);
void iso8601(int64_t ms, char *buf, size_t len);
void human_age(int64_t ms, char *buf, size_t len);
const char *kind_name(int kind);

/* ---- connecting (cli/connect.c) */
/* Client options from the global options and the environment: 0, or ZX_USAGE
 * after a message. */
int client_options(zkc_client_options *o);
/* Reports a failed zkc_client_create; returns the exit status. */
int connect_failed(int rc, const char *errmsg, const char *hosts);
/* Blocking connect: 0, or the exit status after a message. */
int connect_client(zkc_client **c);

/* ---- live views (cli/live.c): 'queue --watch', 'stock ROOT SKU --watch' */
enum { LIVE_TTY = 1, LIVE_LINES, LIVE_JSON };
typedef struct live_view live_view;
struct live_view {
    const char *what;  /* "queue", "stock" */
    const char *title; /* the path, "ROOT SKU" */
    /* Start the change watch (zkc_*_watch with fn, ud). */
    int (*watch)(live_view *v, zkc_watch_fn fn, void *ud, zkc_watch **out);
    /* Read the state now: 0, or a library error (shown; the view goes on). */
    int (*read)(live_view *v);
    /* Print the last state read in mode LIVE_*; now: wall clock, ms. */
    void (*print)(live_view *v, int mode, int64_t now);
    void *ctx;
};
/* Runs until SIGINT/SIGTERM (ZX_OK) or the watch ends on an error. */
int live_run(live_view *v);

/* ---- subcommands: cli/NAME.c, one row each in cli/main.c's table */
int cmd_lock(int argc, char **argv);
void help_lock(FILE *f);
int cmd_elect(int argc, char **argv);
void help_elect(FILE *f);
int cmd_counter(int argc, char **argv);
void help_counter(FILE *f);
int cmd_queue(int argc, char **argv);
void help_queue(FILE *f);
int cmd_session(int argc, char **argv);
void help_session(FILE *f);
int cmd_stock(int argc, char **argv);
void help_stock(FILE *f);
int cmd_admin(int argc, char **argv);
void help_admin(FILE *f);
int cmd_id(int argc, char **argv);
void help_id(FILE *f);
int cmd_ratelimit(int argc, char **argv);
void help_ratelimit(FILE *f);

#endif
