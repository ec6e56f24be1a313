/* zkcoord session: connect, print the session id and timeout. */
#include "cli.h"

void help_session(FILE *f)
{
    fprintf(f,
            "usage: zkcoord session\n"
            "\n"
            "Connect, print the session id and the negotiated session timeout, and close\n"
            "the session. Exit status 0 tells a script that ZooKeeper is reachable (and\n"
            "accepts the --auth credentials); 4 that no server answered within\n"
            "--connect-timeout.\n"
            "Output: \"session_id 0x...\" and \"session_timeout_ms N\" lines, or with --json\n"
            "{\"session_id\":\"0x...\",\"session_timeout_ms\":N,\"hosts\":\"...\"}.\n"
            "\n" GLOBAL_OPTS_HELP "\n" EXIT_CODES_HELP);
}

int cmd_session(int argc, char **argv)
{
    args a = {argc, argv, 0, 0, NULL, NULL};
    for (int id; (id = next_arg(&a, NULL)) != A_END;) {
        if (id == A_ERR)
            return ZX_USAGE;
        if (id == A_POS) {
            msg("unexpected argument '%s' (see 'zkcoord session --help')", a.val);
            return ZX_USAGE;
        }
    }
    if (g.help) {
        help_session(stdout);
        return ZX_OK;
    }
    zkc_client *c;
    int ex = connect_client(&c);
    if (ex)
        return ex;
    int64_t sid = 0;
    char pw[ZKC_PASSWD_MAX];
    int pwlen = sizeof pw;
    int rc = zkc_client_session(c, &sid, pw, &pwlen);
    if (rc) {
        ex = fail_lib(rc, zkc_errmsg(), "session");
        zkc_client_destroy(c);
        return ex;
    }
    int to = zkc_client_session_timeout(c);
    if (g.json) {
        printf("{\"session_id\":\"0x%" PRIx64 "\",\"session_timeout_ms\":%d,\"hosts\":", (uint64_t)sid, to);
        json_str(stdout, g.hosts ? g.hosts : getenv("ZKC_HOSTS"));
        printf("}\n");
    } else {
        printf("session_id 0x%" PRIx64 "\nsession_timeout_ms %d\n", (uint64_t)sid, to);
    }
    zkc_client_destroy(c);
    return ZX_OK;
}
