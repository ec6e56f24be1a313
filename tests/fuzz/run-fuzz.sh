#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a
# bounded time on its seed corpus. A crash leaves its input in the work dir and
# fails the run; add that input to tests/fuzz/regress/<target>/ so it is
# replayed by every later run.
#   run-fuzz.sh [seconds-per-target]
# The queued counter records (cqueue: two small line decoders) get half the
# per-target time, so adding them cost the tier 30 s at the default 60.
set -euo pipefail
secs=${1:-${FUZZ_SECONDS:-60}}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/zkc-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null; then
    echo "run-fuzz: $CC not found (apt-get install clang libclang-rt-14-dev)" >&2
    exit 1
fi
libsrc="$top/lib/error.c $top/lib/util.c $top/lib/path.c $top/lib/seqname.c $top/lib/codec.c $top/lib/loop.c"
fail=0
for t in path seqname codec reserve cqueue; do
    exe="$work/fuzz_$t"
    src="$libsrc"
    tsecs=$secs
    if [ "$t" = reserve ]; then
        # Only the pure record codec of the inventory.
        src="$top/lib/error.c $top/lib/util.c $top/lib/path.c $top/lib/loop.c $top/lib/inventory_codec.c"
    elif [ "$t" = cqueue ]; then
        # Only the pure record codec of the queued counter mode.
        src="$top/lib/counter_queue_codec.c"
        tsecs=$(( secs / 2 > 0 ? secs / 2 : 1 ))
    fi
    $CC -g -O1 -std=gnu11 -D_GNU_SOURCE -DTHREADED -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=undefined -I"$top/include" -I"$top/lib" \
        "$here/fuzz_$t.c" $src -o "$exe" -lpthread
    corpus="$work/corpus_$t"
    mkdir -p "$corpus"
    cp "$here/corpus/$t/"* "$corpus/" 2>/dev/null || true
    # Known crashers from earlier runs must stay fixed.
    if [ -d "$here/regress/$t" ]; then
        "$exe" -runs=0 "$here/regress/$t" >/dev/null 2>&1 || { echo "run-fuzz: $t regression input fails" >&2; fail=1; }
    fi
    echo "run-fuzz: $t for ${tsecs}s"
    if ! (cd "$work" && "$exe" -max_total_time="$tsecs" -max_len=4096 -timeout=10 -rss_limit_mb=1024 \
            -print_final_stats=1 "$corpus" > "$work/$t.log" 2>&1); then
        echo "run-fuzz: $t FAILED; crash input:" >&2
        ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null >&2 || true
        tail -40 "$work/$t.log" >&2
        mkdir -p "$top/tests/fuzz/found"
        cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$top/tests/fuzz/found/" 2>/dev/null || true
        fail=1
    else
        grep -E 'stat::number_of_executed_units|stat::new_units_added' "$work/$t.log" | sed "s/^/run-fuzz: $t /"
    fi
done
exit $fail
