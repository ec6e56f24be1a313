/* Where the benchmark runs: the ensemble (a local 3-node one with fsync on, or
 * ZKC_HOSTS), the commit label, signals, and leaving nothing behind. */
#include "bench.h"

#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include "ensemble.h"

const char *g_hosts;
char g_root[96];
char g_meta[128];
char g_base[PATH_MAX];
char g_ens_desc[PATH_MAX + 128];
char g_commit[96];
volatile sig_atomic_t g_interrupted;
int g_stop;
static zkh_ensemble *g_ens;

int ensemble_is_ours(void)
{
    return g_ens != NULL;
}

static int rm_cb(const char *p, const struct stat *sb_, int flag, struct FTW *ftw)
{
    (void)sb_;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void cleanup(void)
{
    if (g_ens) {
        zkh_ensemble_stop(g_ens);
        g_ens = NULL;
    }
    if (g_base[0] && !getenv("ZKC_BENCH_KEEP")) {
        nftw(g_base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        g_base[0] = 0;
    }
}

void fatal_stuck(const char *what)
{
    fprintf(stderr, "zkcoord-bench: %s; giving up\n", what);
    fflush(stdout);
    cleanup();
    _exit(1);
}

void on_signal(int sig)
{
    (void)sig;
    g_interrupted = 1;
    __atomic_store_n(&g_stop, 1, __ATOMIC_RELEASE);
}

static const char *fs_name(long type)
{
    switch ((unsigned long)type) {
    case 0x01021994: return "tmpfs";
    case 0xEF53: return "ext4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x794c7630: return "overlayfs";
    case 0x6969: return "nfs";
    default: return "other";
    }
}

void get_commit(void)
{
    const char *env = getenv("ZKC_BENCH_COMMIT");
    if (env && *env) {
        snprintf(g_commit, sizeof g_commit, "%s", env);
        return;
    }
    snprintf(g_commit, sizeof g_commit, "unknown");
    char cmd[PATH_MAX + 128];
    snprintf(cmd, sizeof cmd, "git -C '%s' describe --always --dirty --abbrev=12 2>/dev/null", ZKC_BENCH_SRCDIR);
    FILE *p = popen(cmd, "r");
    if (p) {
        char buf[96];
        if (fgets(buf, sizeof buf, p)) {
            buf[strcspn(buf, "\n")] = 0;
            if (*buf)
                snprintf(g_commit, sizeof g_commit, "%s", buf);
        }
        pclose(p);
    }
}

int start_ensemble(void)
{
    const char *ext = getenv("ZKC_HOSTS");
    if (ext && *ext) {
        g_hosts = ext;
        snprintf(g_ens_desc, sizeof g_ens_desc, "external (ZKC_HOSTS=%s)", ext);
        return 0;
    }
    const char *dir = getenv("ZKC_BENCH_DIR");
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/zkcoord-bench.XXXXXX", dir && *dir ? dir : "/var/tmp");
    if (!mkdtemp(tmpl)) {
        fprintf(stderr, "zkcoord-bench: mkdtemp %s: %s\n", tmpl, strerror(errno));
        return -1;
    }
    snprintf(g_base, sizeof g_base, "%s", tmpl);
    struct statfs sf;
    const char *fs = "unknown";
    if (statfs(g_base, &sf) == 0)
        fs = fs_name((long)sf.f_type);
    if (!strcmp(fs, "tmpfs"))
        fprintf(stderr,
                "zkcoord-bench: WARNING: %s is on tmpfs: fsync costs nothing there; set ZKC_BENCH_DIR to a disk "
                "directory\n",
                g_base);
    zkh_options o;
    zkh_options_init(&o);
    o.nodes = 3;
    o.fsync = 1;
    o.base_dir = g_base;
    o.max_session_timeout_ms = 30000;
    printf("starting a 3-node ZooKeeper ensemble (fsync on) in %s (%s) ...\n", g_base, fs);
    fflush(stdout);
    int rc = zkh_ensemble_start(&g_ens, &o);
    if (rc) {
        fprintf(stderr, "zkcoord-bench: cannot start the ensemble: %s\n", strerror(-rc));
        g_ens = NULL;
        return -1;
    }
    g_hosts = zkh_ensemble_hosts(g_ens);
    find_servers();
    snprintf(g_ens_desc, sizeof g_ens_desc, "local 3-node, forceSync=yes, data on %s (%s)", fs, g_base);
    return 0;
}
