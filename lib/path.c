/* Validation and joining of znode paths. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ZooKeeper refuses these itself, but with a bare "bad arguments"; we say what
 * is wrong and where, before a round trip. */
static int check_component(const char *s, size_t n, const char *what, const char *path)
{
    if (n == 0)
        return zkc__err(ZKC_EINVAL, "%s \"%s\": empty component (double or trailing slash)", what, path);
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return zkc__err(ZKC_EINVAL, "%s \"%s\": \".\" and \"..\" components are not allowed", what, path);
    if (n == 9 && memcmp(s, "zookeeper", 9) == 0 && s == path + 1)
        return zkc__err(ZKC_EINVAL, "%s \"%s\": /zookeeper is reserved by the server", what, path);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            return zkc__err(ZKC_EINVAL, "%s: control character 0x%02x at offset %zu", what, ch,
                            (size_t)(s - path) + i);
    }
    return 0;
}

int zkc__path_check(const char *path, const char *what)
{
    if (!path)
        return zkc__err(ZKC_EINVAL, "%s is NULL", what);
    size_t len = strlen(path);
    if (len == 0)
        return zkc__err(ZKC_EINVAL, "%s is empty", what);
    if (len > ZKC__PATH_MAX)
        return zkc__err(ZKC_EINVAL, "%s is %zu bytes long; the limit is %d", what, len, ZKC__PATH_MAX);
    if (path[0] != '/')
        return zkc__err(ZKC_EINVAL, "%s \"%s\" is not absolute (must start with '/')", what, path);
    if (len == 1)
        return zkc__err(ZKC_EINVAL, "%s may not be the root \"/\"", what);
    const char *p = path + 1;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        int rc = check_component(p, n, what, path);
        if (rc)
            return rc;
        if (!slash)
            break;
        p = slash + 1;
    }
    return 0;
}

int zkc__name_check(const char *name, const char *what)
{
    if (!name || !*name)
        return zkc__err(ZKC_EINVAL, "%s is empty or NULL", what);
    size_t n = strlen(name);
    if (n > 200)
        return zkc__err(ZKC_EINVAL, "%s is %zu bytes long; the limit is 200", what, n);
    if (strchr(name, '/'))
        return zkc__err(ZKC_EINVAL, "%s \"%s\" may not contain '/'", what, name);
    return check_component(name, n, what, name);
}

void zkc__path_parent(const char *path, char *buf, size_t len)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n == 0) {
        snprintf(buf, len, "/");
        return;
    }
    snprintf(buf, len, "%.*s", (int)n, path);
}

char *zkc__path_bucketed(const char *dir, const char *name)
{
    uint32_t h = 2166136261u;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    size_t n = strlen(dir) + strlen(name) + 5;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%02x/%s", dir, h & 0xff, name);
    return s;
}

char *zkc__path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    while (a > 0 && dir[a - 1] == '/')
        a--;
    char *s = malloc(a + b + 2);
    if (!s)
        return NULL;
    memcpy(s, dir, a);
    s[a] = '/';
    memcpy(s + a + 1, name, b + 1);
    return s;
}
