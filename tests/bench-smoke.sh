#!/usr/bin/env bash
# make check: run zkcoord-bench once in its tiny configuration (--quick) to prove
# that every scenario still runs and writes its JSON object. No timing
# assertions: the numbers of a smoke run mean nothing.
set -uo pipefail
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
bench="$top_builddir/bench/zkcoord-bench"
out=$(mktemp -d "${TMPDIR:-/tmp}/zkc-bench-smoke.XXXXXX")
trap 'rm -rf "$out"' EXIT
args=(--quick --json "$out/r.json")
# Draw the chart too when matplotlib is there (CI installs python3-matplotlib).
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
if "$py" -c 'import matplotlib' >/dev/null 2>&1; then
    args+=(--png "$out/r.png")
    export ZKC_BENCH_PLOT="$top_srcdir/bench/plot.py"
fi
timeout --kill-after=10 150 "$bench" "${args[@]}" >"$out/log" 2>&1
rc=$?
if [ $rc -eq 77 ]; then
    tail -5 "$out/log"
    echo "bench-smoke: SKIP (no ZooKeeper ensemble could be started)"
    exit 77
fi
cat "$out/log"
if [ $rc -ne 0 ]; then
    echo "bench-smoke: zkcoord-bench --quick failed (exit $rc)" >&2
    exit 1
fi
want=$("$bench" --list | wc -l)
got=$(grep -c '"scenario"' "$out/r.json" || true)
if [ "$got" -ne "$want" ]; then
    echo "bench-smoke: expected $want JSON objects, got $got" >&2
    exit 1
fi
"$py" - "$out/r.json" <<'PY' || exit 1
import json, sys
need = ["scenario", "ops_per_s", "p50_ms", "p99_ms", "floor_ops_per_s", "ratio", "spread", "params",
        "requests_per_op", "fsync"]
for line in open(sys.argv[1]):
    o = json.loads(line)
    miss = [k for k in need if k not in o]
    if miss:
        sys.exit("bench-smoke: %s lacks %s" % (o.get("scenario"), miss))
    if o["status"] == "error":
        sys.exit("bench-smoke: %s: %s" % (o["scenario"], o.get("message")))
PY
if [ -e "$out/r.png" ] || [[ " ${args[*]} " != *" --png "* ]]; then
    echo "bench-smoke: ok"
else
    echo "bench-smoke: the chart was not written" >&2
    exit 1
fi
