/* libFuzzer: path and name validation must never crash, and must accept only
 * what ZooKeeper would accept for a node path. */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    if (zkc__path_check(s, "fuzz path") == 0) {
        /* Accepted: absolute, no empty or dot components, no control chars. */
        if (s[0] != '/' || strstr(s, "//") || s[strlen(s) - 1] == '/' || strlen(s) > ZKC__PATH_MAX)
            abort();
        for (const char *p = s; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                abort();
        char parent[ZKC__PATH_MAX + 1];
        zkc__path_parent(s, parent, sizeof parent);
        if (parent[0] != '/')
            abort();
    }
    if (zkc__name_check(s, "fuzz name") == 0 && strchr(s, '/'))
        abort();
    free(s);
    return 0;
}
