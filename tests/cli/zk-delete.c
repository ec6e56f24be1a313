/* zk-delete HOSTS PATH: delete one znode (any version) as a separate client,
 * the way an operator or a buggy foreign client would. Test helper for the
 * CLI tests; exit 0 deleted, 1 failed (message on stderr). Bounded: gives up
 * after 10 s without a session. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: zk-delete HOSTS PATH\n");
        return 2;
    }
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    zhandle_t *zh = zookeeper_init(argv[1], NULL, 10000, NULL, NULL, 0);
    if (!zh) {
        perror("zk-delete: zookeeper_init");
        return 1;
    }
    for (int i = 0; i < 200 && zoo_state(zh) != ZOO_CONNECTED_STATE; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (zoo_state(zh) != ZOO_CONNECTED_STATE) {
        fprintf(stderr, "zk-delete: no session with %s within 10 s\n", argv[1]);
        zookeeper_close(zh);
        return 1;
    }
    int rc = zoo_delete(zh, argv[2], -1);
    zookeeper_close(zh);
    if (rc != ZOK) {
        fprintf(stderr, "zk-delete: delete %s: %s\n", argv[2], zerror(rc));
        return 1;
    }
    return 0;
}
