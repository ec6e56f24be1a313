#!/usr/bin/env bash
# Installing to a second prefix after a build for another one (issue: a newcomer
# ran ./run-demo, which builds for /usr/local, then `./configure --prefix=DIR &&
# make install`; libtool warned that lib/libzkcoord.la "has not been installed
# in /usr/local/lib" and the installed zkcoord failed with "libzkcoord.so.0:
# cannot open shared object file"). In a temporary copy of the sources: build
# for prefix A, reconfigure for prefix B without `make clean`, install, then
#   - run B's zkcoord --version with no LD_LIBRARY_PATH,
#   - check that nothing installed refers to prefix A,
#   - compile a README example with pkg-config against B and run it against a
#     real ZooKeeper (LD_LIBRARY_PATH, as the README says for a non-system prefix).
# Run by `make check-install` (a few minutes: two configures and a full build).
set -euo pipefail
top_srcdir=$(cd "${top_srcdir:-.}" && pwd)
top_builddir=$(cd "${top_builddir:-.}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/zkc-install.XXXXXX")
zkdir="$work/zk"
cleanup() { "$top_builddir/tests/harness/zk-ensemble" stop --dir "$zkdir" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
say() { echo "install-prefix: $*"; }
die() { echo "install-prefix: FAIL: $*" >&2; exit 1; }
jobs=${ZKC_INSTALL_JOBS:-2}

# A copy of the tracked sources (with their working-tree contents).
command -v git >/dev/null && git -C "$top_srcdir" rev-parse --git-dir >/dev/null 2>&1 ||
    { echo "install-prefix: skipped: needs a git checkout to copy the sources"; exit 77; }
mkdir "$work/src"
git -C "$top_srcdir" ls-files -z | (cd "$top_srcdir" && tar --null -T - -cf -) | tar -C "$work/src" -xf -
cd "$work/src"
t0=$SECONDS
autoreconf -fi >/dev/null 2>&1 || die "autoreconf failed"
./configure -q --prefix="$work/a" >/dev/null || die "configure --prefix=$work/a failed"
make -j"$jobs" >/dev/null 2>"$work/make-a.err" || { cat "$work/make-a.err" >&2; die "build for prefix A failed"; }
say "built for prefix A in $((SECONDS - t0)) s"

t0=$SECONDS
./configure -q --prefix="$work/b" >/dev/null || die "configure --prefix=$work/b failed"
make -j"$jobs" install >"$work/install.log" 2>&1 || { tail -30 "$work/install.log" >&2; die "make install to prefix B failed"; }
say "reconfigured for prefix B and installed in $((SECONDS - t0)) s"
if grep -n "has not been installed in" "$work/install.log" >&2; then
    die "libtool relinked against a library built for another prefix (above)"
fi

b=$work/b
out=$(env -u LD_LIBRARY_PATH "$b/bin/zkcoord" --version 2>&1) || die "installed zkcoord --version: $out"
say "installed zkcoord --version: $out"
# Nothing installed may name prefix A (a stale libdir in .la, .pc or a RUNPATH).
if grep -rlF "$work/a" "$b" >&2; then
    die "files installed in prefix B refer to prefix A (listed above)"
fi

# A README example, built as the README says, against prefix B.
awk '/^```c$/ { n++; inblk = (n == 1); next } /^```$/ { inblk = 0 } inblk' "$top_srcdir/README.md" > "$work/example.c"
[ -s "$work/example.c" ] || die "no C example in README.md"
export PKG_CONFIG_PATH="$b/lib/pkgconfig"
flags=$(pkg-config --cflags --libs zkcoord) || die "pkg-config does not find zkcoord in $b/lib/pkgconfig"
case $flags in *"$b"*) ;; *) die "pkg-config gives '$flags', not prefix B" ;; esac
# shellcheck disable=SC2086 # pkg-config output is a list of words
cc -std=gnu11 -Wall -Wextra -Werror "$work/example.c" -o "$work/example" $flags || die "README example does not compile with pkg-config"
mkdir "$zkdir"
ZKC_HOSTS=$("$top_builddir/tests/harness/zk-ensemble" start --dir "$zkdir" --nodes 1) || exit 99
export ZKC_HOSTS
out=$(LD_LIBRARY_PATH="$b/lib" timeout 60 "$work/example" 2>&1) || die "README example failed: $out"
say "README example against prefix B: $(tail -1 <<<"$out")"
