/* zkc-chaos: fault-schedule test of zkcoord. `zkc-chaos --help`; see
 * tests/chaos/README.md. The same binary is the driver (default) and, with
 * --worker as its first argument, a worker process the driver spawns. */
#include "chaos.h"

#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--worker"))
        return ch_worker_main(argc, argv);
    return ch_driver_main(argc, argv);
}
