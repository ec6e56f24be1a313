#!/usr/bin/env bash
# Packaging tier (make check-deb): builds the Debian packages from a clean
# clone of the committed HEAD, checks them with lintian (errors fail the
# tier, warnings are printed), installs them into the system, compiles every
# ```c example of README.md against the installed library with nothing but
# `pkg-config --cflags --libs zkcoord` (and one statically, with --static),
# runs them and the installed zkcoord(1) against a single local ZooKeeper,
# then purges the packages and whatever their installation pulled in, so the
# machine's package set is as it was (the build tools it installed stay, as
# scripts/bootstrap.sh's do).
#
# Runs as root on Debian 12 (it installs and removes packages). Every step is
# bounded by `timeout`. Uncommitted changes are not in the clone: commit first.
#
#   tests/deb/check-deb.sh                  the tier
#   tests/deb/check-deb.sh --update-symbols after a deliberate ABI change:
#       builds, then rewrites debian/libzkcoord0.symbols from the built library
#       (new symbols get the version at the top of debian/changelog); review
#       the diff and commit it.
#
# Environment: ZKC_ENSEMBLE_LOCK=FILE takes flock(1) on FILE while the local
# ZooKeeper runs (for machines where ensembles must not overlap); KEEP=1 keeps
# the work directory.
set -euo pipefail
top_srcdir=$(cd "${top_srcdir:-$(dirname "$0")/../..}" && pwd)
update_symbols=0
if [ "${1:-}" = "--update-symbols" ]; then update_symbols=1; fi

pkgs=(libzkcoord0 libzkcoord-dev zkcoord-tools)
start=$(date +%s)
say() { echo "check-deb: $*"; }
die() { echo "check-deb: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs and purges packages)"
[ -f /etc/debian_version ] || die "not a Debian system"
for p in "${pkgs[@]}"; do
    # Purging at the end would remove what someone installed on purpose.
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
        die "$p is already installed; remove it first (this tier leaves the system as it found it)"
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/zkc-deb.XXXXXX")
zkdir="$work/zk"
zkens=""
installed=0
cleanup() {
    local rc=$?
    if [ -n "$zkens" ]; then timeout 60 "$zkens" stop --dir "$zkdir" >/dev/null 2>&1 || true; fi
    if [ "$installed" = 1 ]; then purge_ours || rc=1; fi
    if [ "${KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

export DEBIAN_FRONTEND=noninteractive
aptq() { timeout 600 apt-get -o DPkg::Lock::Timeout=300 -y -qq "$@"; }

# ---- tools and build dependencies
t0=$(date +%s)
aptq update >/dev/null
aptq install --no-install-recommends build-essential dpkg-dev debhelper fakeroot lintian \
    git man-db zookeeper default-jre-headless >/dev/null
say "cloning $top_srcdir (HEAD $(git -C "$top_srcdir" rev-parse --short HEAD))"
git clone -q "$top_srcdir" "$work/src"
# Exactly debian/control's Build-Depends (a missing one fails the build below).
aptq build-dep --no-install-recommends "$work/src" >/dev/null
say "tools and build dependencies: $(( $(date +%s) - t0 ))s"

# ---- build
t0=$(date +%s)
build_rc=0
(cd "$work/src" && timeout 900 dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || build_rc=$?
if [ "$update_symbols" = 1 ]; then
    # dh_makeshlibs stops at a difference; the staged library is there by then.
    lib=$(find "$work/src/debian/libzkcoord0" -name 'libzkcoord.so.*.*' -type f | head -1)
    [ -n "$lib" ] || { tail -40 "$work/build.log"; die "the build did not get as far as installing the library"; }
    (cd "$work/src" && dpkg-gensymbols -plibzkcoord0 -Pdebian/libzkcoord0 -e"$lib" \
        -O"$top_srcdir/debian/libzkcoord0.symbols" -q)
    say "the build's own symbols check: $([ "$build_rc" -eq 0 ] && echo "no difference" || echo "failed (exit $build_rc)")"
    git -C "$top_srcdir" --no-pager diff --stat -- debian/libzkcoord0.symbols
    say "rewrote debian/libzkcoord0.symbols: review the diff, commit, run the tier again"
    exit 0
fi
if [ "$build_rc" -ne 0 ]; then
    tail -60 "$work/build.log"
    if grep -q 'dpkg-gensymbols: error' "$work/build.log"; then
        say "the library's symbols differ from debian/libzkcoord0.symbols (diff above):"
        say "if the ABI change is deliberate, run: tests/deb/check-deb.sh --update-symbols"
    fi
    die "dpkg-buildpackage -us -uc -b failed (exit $build_rc)"
fi
grep -E '^[^ ]+\.[ch]:[0-9]+:[0-9]+: warning:' "$work/build.log" && die "compiler warnings in the package build"
grep -E 'Checks: [0-9]+|check-symbols:' "$work/build.log" | sed 's/^/check-deb: build-time tests: /'
say "dpkg-buildpackage: $(( $(date +%s) - t0 ))s; $(cd "$work" && ls ./*.deb | tr '\n' ' ')"

# ---- lintian: errors fail, warnings are printed
t0=$(date +%s)
changes=$(ls "$work"/zkcoord_*.changes)
lint_rc=0
lint_out=$(timeout 300 lintian --fail-on error --tag-display-limit 0 "$changes" 2>&1) || lint_rc=$?
# (lintian's advice against running as root is for untrusted packages.)
printf '%s\n' "$lint_out" | grep -v 'running with root privileges' | sed '/^$/d' || true
[ "$lint_rc" -eq 0 ] || die "lintian reported errors (exit $lint_rc)"
say "lintian: no errors ($(( $(date +%s) - t0 ))s)"

# ---- install (apt resolves the packages' dependencies from the archive)
before="$work/pkgs.before"
dpkg-query -W -f='${Package}\n' | sort >"$before"
purge_ours() {
    local extra
    aptq purge "${pkgs[@]}" >/dev/null || return 1
    # What installing them pulled in (e.g. libzookeeper-mt-dev): purge it too.
    extra=$(dpkg-query -W -f='${Package}\n' | sort | comm -13 "$before" -)
    if [ -n "$extra" ]; then aptq purge $extra >/dev/null || return 1; fi
    for p in "${pkgs[@]}"; do
        if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
            echo "check-deb: $p still installed after purge" >&2; return 1
        fi
    done
    [ ! -e /usr/include/zkcoord.h ] && [ ! -e /usr/bin/zkcoord ] || {
        echo "check-deb: files left behind after purge" >&2; return 1; }
    installed=0
    say "purged ${pkgs[*]}${extra:+ and $(echo $extra)}"
}
installed=1
(cd "$work" && aptq install --no-install-recommends ./libzkcoord0_*.deb ./libzkcoord-dev_*.deb \
    ./zkcoord-tools_*.deb >/dev/null)
say "installed: $(dpkg-query -W -f='${Package} ${Version}, ' "${pkgs[@]}")"

# ---- the installed files work
ver=$(dpkg-parsechangelog -l "$work/src/debian/changelog" -S Version)
[ "$(pkg-config --modversion zkcoord)" = "$ver" ] || die "pkg-config --modversion zkcoord is not $ver"
out=$(zkcoord --version) || die "zkcoord --version failed"
case "$out" in *"$ver"*) ;; *) die "zkcoord --version says '$out', not $ver" ;; esac
say "zkcoord --version: $out"
man=$(man -w zkcoord) || die "man -w zkcoord finds no manual page"
say "man page: $man"

mkdir -p "$work/ex"
awk -v dir="$work/ex" '
    /^```c$/ { n++; f = sprintf("%s/example%d.c", dir, n); inblk = 1; next }
    /^```$/ && inblk { inblk = 0; close(f); next }
    inblk { print > f }
' "$work/src/README.md"
exs=("$work"/ex/example*.c)
[ -f "${exs[0]}" ] || die "no C example in README.md"
# Only the installed header and library: the clone's include/ and lib/ are
# not on any path here.
for src in "${exs[@]}"; do
    # shellcheck disable=SC2046
    cc -std=gnu11 -Wall -Wextra -Werror "$src" -o "${src%.c}" $(pkg-config --cflags --libs zkcoord) -lpthread \
        || die "$(basename "$src") does not compile against the installed package"
    # Not `ldd | grep -q` under pipefail: grep may exit at its match while ldd
    # still writes, and ldd's SIGPIPE then fails the test (seen once in CI).
    deps=$(ldd "${src%.c}")
    grep -qE 'libzkcoord\.so\.0 => /(usr/)?lib/' <<<"$deps" \
        || die "$(basename "$src") is not linked to the installed libzkcoord.so.0: $(grep zkcoord <<<"$deps")"
done
# The static library, with the private dependencies zkcoord.pc declares.
libdir=$(pkg-config --variable=libdir zkcoord)
# shellcheck disable=SC2046
cc -std=gnu11 -Wall -Wextra -Werror "${exs[0]}" -o "$work/ex/static" $(pkg-config --cflags zkcoord) \
    "$libdir/libzkcoord.a" $(pkg-config --static --libs zkcoord | sed 's/-lzkcoord\b//') \
    || die "README example 1 does not link statically with pkg-config --static"
if readelf -d "$work/ex/static" | grep -q 'libzkcoord'; then die "the static link still needs libzkcoord.so"; fi
say "compiled ${#exs[@]} README examples with pkg-config, example 1 also statically"

# ---- run them against a single local ZooKeeper
if [ -n "${ZKC_ENSEMBLE_LOCK:-}" ]; then exec 9>"$ZKC_ENSEMBLE_LOCK"; timeout 900 flock 9; fi
t0=$(date +%s)
mkdir -p "$zkdir"
zkens="$work/src/tests/harness/zk-ensemble"    # built by the package build
ZKC_HOSTS=$(timeout 120 "$zkens" start --dir "$zkdir" --nodes 1) || die "could not start a local ZooKeeper"
export ZKC_HOSTS
for exe in "${exs[@]%.c}" "$work/ex/static"; do
    timeout 60 "$exe" >"$exe.out" 2>&1 || { cat "$exe.out"; die "$(basename "$exe") failed against $ZKC_HOSTS"; }
    say "$(basename "$exe"): $(tail -1 "$exe.out")"
done
[ "$(timeout 60 zkcoord counter add /zkc-deb/stock 5)" = "0 5" ] || die "zkcoord counter add 5 did not go from 0 to 5"
[ "$(timeout 60 zkcoord counter get /zkc-deb/stock)" = 5 ] || die "zkcoord counter get does not read 5"
timeout 60 zkcoord lock --timeout 10 /zkc-deb/lock -- sh -c 'test -n "$ZKC_FENCING_TOKEN"' \
    || die "zkcoord lock did not run its command with a fencing token"
say "installed zkcoord: counter add/get and lock ok"
timeout 60 "$zkens" stop --dir "$zkdir" >/dev/null 2>&1 || true
zkens=""
if [ -n "${ZKC_ENSEMBLE_LOCK:-}" ]; then exec 9>&-; fi
say "runs against ZooKeeper: $(( $(date +%s) - t0 ))s"

purge_ours || die "purge failed"
say "PASS in $(( $(date +%s) - start ))s"
