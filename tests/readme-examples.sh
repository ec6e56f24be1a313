#!/usr/bin/env bash
# Compiles every ```c block of README.md against the built library and runs it
# against a real single-node ZooKeeper, so the documentation cannot rot.
set -euo pipefail
top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
work=$(mktemp -d "${TMPDIR:-/tmp}/zkc-readme.XXXXXX")
zkdir="$work/zk"
cleanup() { "$top_builddir/tests/harness/zk-ensemble" stop --dir "$zkdir" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$zkdir"
python_extract() {
    awk -v dir="$work" '
        /^```c$/ { n++; f = sprintf("%s/example%d.c", dir, n); inblk = 1; next }
        /^```$/ && inblk { inblk = 0; close(f); next }
        inblk { print > f }
    ' "$top_srcdir/README.md"
}
python_extract
count=$(ls "$work"/example*.c 2>/dev/null | wc -l)
if [ "$count" -lt 4 ]; then
    echo "readme-examples: expected at least 4 C examples in README.md, found $count" >&2
    exit 1
fi
ZKC_HOSTS=$("$top_builddir/tests/harness/zk-ensemble" start --dir "$zkdir" --nodes 1)
export ZKC_HOSTS
fail=0
for src in "$work"/example*.c; do
    exe="${src%.c}"
    # Same compiler and sanitizer flags as the library (an ASan library needs
    # an ASan program).
    if ! ${ZKC_EXAMPLE_CC:-cc} -std=gnu11 -Wall -Wextra -Werror ${ZKC_EXAMPLE_FLAGS:-} -I"$top_srcdir/include" "$src" -o "$exe" \
        -L"$top_builddir/lib/.libs" -lzkcoord -lpthread -Wl,-rpath,"$(cd "$top_builddir/lib/.libs" && pwd)"; then
        echo "readme-examples: $(basename "$src") does not compile" >&2
        fail=1
        continue
    fi
    if ! timeout 60 "$exe" > "$exe.out" 2>&1; then
        echo "readme-examples: $(basename "$src") failed:" >&2
        cat "$exe.out" >&2
        fail=1
    else
        echo "readme-examples: $(basename "$src") ok: $(tail -1 "$exe.out")"
    fi
done
# Run a second time, the counter example's first reservation reuses its key:
# its line must say that it was replayed (it once printed "success, 5 -> 3"
# while the stock stayed 5).
for out in "$work"/example*.out; do
    grep -q '^reserve 2:' "$out" || continue
    exe="${out%.out}"
    if ! timeout 60 "$exe" > "$exe.out2" 2>&1 || ! grep -q '^reserve 2: .*(replayed' "$exe.out2"; then
        echo "readme-examples: $(basename "$exe") run twice does not say that reserve 2 was replayed:" >&2
        cat "$exe.out2" >&2
        fail=1
    else
        echo "readme-examples: $(basename "$exe") run twice: $(grep '^reserve 2:' "$exe.out2")"
    fi
done
exit $fail
