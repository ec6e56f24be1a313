/* Validation and joining of znode paths, and small allocation helpers. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

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

char *zkc__strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

void *zkc__calloc(size_t n, size_t sz)
{
    return calloc(n, sz);
}

uint64_t zkc__random64(void)
{
    uint64_t v;
    if (getrandom(&v, sizeof v, 0) == (ssize_t)sizeof v)
        return v;
    /* getrandom cannot fail for 8 bytes on Linux >= 3.17 once the pool is up;
     * fall back to something that still differs per call and process. */
    static __thread uint64_t x;
    x += 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid() ^ (uint64_t)zkc__now_ms();
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void zkc__uuid(char out[37])
{
    unsigned char b[16];
    uint64_t r1 = zkc__random64(), r2 = zkc__random64();
    memcpy(b, &r1, 8);
    memcpy(b + 8, &r2, 8);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
             b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}
