#!/usr/bin/env bash
# make check: run zkcoord-bench once in its tiny configuration (--quick) to prove
# that every scenario still runs and writes its JSON object. No timing
# assertions: the numbers of a smoke run mean nothing.
#
# Beyond the JSON keys it checks the verdicts that are not timings: the flash
# sale sold no unit twice and broke no FIFO order, every scenario carries its
# physical limit, and lock_threads counted its wake-ups.
#
# --peers (make check-bench-peers): the peer path instead: one round of the
# scenarios that cover the peer workloads (mutex, counter, reserve, mutex with
# many threads of one JVM, the flash sale), each of which must report Curator
# and kazoo as run with figures, or (kazoo on reserve, lock_threads and
# flash_sale) as having no recipe. A peer whose runtime is missing skips the
# smoke (77), or fails it with CI=true; a peer that failed always fails it.
set -uo pipefail
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
bench="$top_builddir/bench/zkcoord-bench"
out=$(mktemp -d "${TMPDIR:-/tmp}/zkc-bench-smoke.XXXXXX")
trap 'rm -rf "$out"' EXIT
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3

if [ "${1:-}" = "--peers" ]; then
    scen=(lock_uncontended counter_hot_sessions reserve_sessions lock_threads flash_sale)
    args=(--quick --rounds 1 --peers --json "$out/r.json")
    for s in "${scen[@]}"; do args+=(--scenario "$s"); done
    timeout --kill-after=10 540 "$bench" "${args[@]}" >"$out/log" 2>&1
    rc=$?
    cat "$out/log"
    if [ $rc -eq 77 ]; then
        echo "bench-smoke --peers: SKIP (no ZooKeeper ensemble could be started)"
        exit 77
    fi
    if [ $rc -ne 0 ]; then
        echo "bench-smoke --peers: zkcoord-bench failed (exit $rc)" >&2
        exit 1
    fi
    "$py" - "$out/r.json" "${CI:-}" "${scen[@]}" <<'PY'
import json, math, sys
path, ci, want = sys.argv[1], sys.argv[2] == "true", sys.argv[3:]
rows = {}
for line in open(path):
    o = json.loads(line)
    rows[o["scenario"]] = o
missing_runtime = []
for s in want:
    o = rows.get(s)
    if o is None:
        sys.exit("bench-smoke --peers: no JSON object for %s" % s)
    if o["status"] != "ok":
        sys.exit("bench-smoke --peers: %s: %s %s" % (s, o["status"], o.get("message", "")))
    peers = o.get("peers")
    if not isinstance(peers, dict) or set(peers) != {"curator", "kazoo"}:
        sys.exit("bench-smoke --peers: %s: peers should name curator and kazoo, got %r" % (s, peers))
    for name, p in peers.items():
        st = p.get("status")
        if st == "ok":
            for k in ("ops_per_s", "p50_ms", "p99_ms", "server_requests_per_op", "server_writes_per_op"):
                v = p.get(k)
                if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                    sys.exit("bench-smoke --peers: %s/%s: %s = %r" % (s, name, k, v))
            if p.get("exact") is False:
                sys.exit("bench-smoke --peers: %s/%s: the counter did not move by the operations done" % (s, name))
            if not s.startswith("lock_") and p.get("exact") is not True:
                sys.exit("bench-smoke --peers: %s/%s: exactness not checked" % (s, name))
            if s == "flash_sale" and p.get("oversold_units") != 0:
                sys.exit("bench-smoke --peers: %s/%s: oversold_units = %r" % (s, name, p.get("oversold_units")))
        elif st == "not_applicable" and name == "kazoo" and s in ("reserve_sessions", "lock_threads", "flash_sale"):
            pass
        elif st == "unavailable":
            missing_runtime.append("%s (%s)" % (name, p.get("reason")))
        else:
            sys.exit("bench-smoke --peers: %s/%s: %s: %s" % (s, name, st, p.get("reason")))
    if any(p.get("status") == "ok" for p in peers.values()):
        r = o.get("ratio_to_best_peer")
        if not isinstance(r, (int, float)) or not r > 0:
            sys.exit("bench-smoke --peers: %s: ratio_to_best_peer = %r" % (s, r))
    if not isinstance(o.get("server_requests_per_op"), (int, float)):
        sys.exit("bench-smoke --peers: %s: no server_requests_per_op for the library" % s)
if missing_runtime:
    msg = "peer runtime missing: " + "; ".join(sorted(set(missing_runtime)))
    if ci:
        sys.exit("bench-smoke --peers: " + msg + " (CI=true forbids skipping)")
    print("bench-smoke --peers: SKIP: " + msg)
    sys.exit(77)
print("bench-smoke --peers: ok")
PY
    exit $?
fi

# The scale run's overlap/FIFO verdicts must catch made-up violations (no
# ensemble needed), or its "0 violations" would prove nothing.
if ! "$bench" --scale --selftest; then
    echo "bench-smoke: zkcoord-bench --scale --selftest failed" >&2
    exit 1
fi
# --scale-smoke: the queue-scale scenario (bench/scen_scale.c) at N = 200 for
# each lock kind on the same ensemble, so that it cannot rot.
args=(--quick --scale-smoke --json "$out/r.json")
# Draw the chart too when matplotlib is there (CI installs python3-matplotlib).
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
got=$(grep '"scenario"' "$out/r.json" | grep -vc '"scenario": "scale"' || true)
if [ "$got" -ne "$want" ]; then
    echo "bench-smoke: expected $want JSON objects, got $got" >&2
    exit 1
fi
"$py" - "$out/r.json" <<'PY' || exit 1
import json, math, sys
need = ["scenario", "ops_per_s", "p50_ms", "p99_ms", "floor_ops_per_s", "ratio", "spread", "params",
        "requests_per_op", "fsync", "physical_limit"]
def num(o, k):
    v = o.get(k)
    return isinstance(v, (int, float)) and math.isfinite(v)
scale = []
for line in open(sys.argv[1]):
    o = json.loads(line)
    s = o.get("scenario")
    if s == "scale":
        scale.append(o)
        continue
    miss = [k for k in need if k not in o]
    if miss:
        sys.exit("bench-smoke: %s lacks %s" % (s, miss))
    if o["status"] == "error":
        sys.exit("bench-smoke: %s: %s" % (s, o.get("message")))
    lim = o["physical_limit"]
    for k in ("serial_write_p50_ms", "group_commit_writes_per_s"):
        if not num(lim, k) or lim[k] <= 0:
            sys.exit("bench-smoke: %s: physical_limit.%s = %r" % (s, k, lim.get(k)))
    if o["status"] == "ok" and not num(o["requests_per_op"], "writes"):
        sys.exit("bench-smoke: %s: no writes per operation" % s)
    if s == "flash_sale" and o["status"] == "ok":
        for k in ("oversold_units", "fifo_violations", "refusals_without_hot_line"):
            if o.get(k) != 0:
                sys.exit("bench-smoke: flash_sale: %s = %r" % (k, o.get(k)))
        if o.get("units_conserved") is not True or not o.get("out_of_stock_refusals", 0) > 0:
            sys.exit("bench-smoke: flash_sale: units_conserved %r, refusals %r (the hot SKU must sell out)"
                     % (o.get("units_conserved"), o.get("out_of_stock_refusals")))
    if s == "lock_threads" and o["status"] == "ok":
        for k in ("waiter_wakeups_per_handoff", "server_watch_events_per_handoff", "rss_per_waiting_thread_bytes"):
            if not num(o, k):
                sys.exit("bench-smoke: lock_threads: %s = %r" % (k, o.get(k)))
# The scale smoke: every kind ran, every waiter acquired, no overlap, FIFO kept,
# and the figures the full run reports are there (no timing assertions).
kinds = sorted(o.get("kind") for o in scale)
if kinds != ["mutex", "rwlock", "semaphore"]:
    sys.exit("bench-smoke: scale: expected mutex, rwlock, semaphore, got %r" % kinds)
for o in scale:
    k = o["kind"]
    if o.get("status") != "ok" or o.get("acquired") != o.get("waiters"):
        sys.exit("bench-smoke: scale %s: status %r, %r of %r acquired, %r failed"
                 % (k, o.get("status"), o.get("acquired"), o.get("waiters"), o.get("failed")))
    for v in ("overlaps", "fifo_violations", "duplicate_tokens"):
        if o.get(v) != 0:
            sys.exit("bench-smoke: scale %s: %s = %r" % (k, v, o.get(v)))
    # The live heap is read with mallinfo2, blind to a sanitizer's allocator:
    # there the run says so (heap_measured false) instead of a figure.
    heap = ("heap_per_waiter_bytes",) if o.get("heap_measured") is not False else ()
    for v in ("requests_per_acq", "listings_per_acq", "bytes_received_per_acq", "rss_per_waiter_bytes",
              "overall_acq_per_s") + heap:
        if not num(o, v) or o[v] <= 0:
            sys.exit("bench-smoke: scale %s: %s = %r" % (k, v, o.get(v)))
PY
if [ -e "$out/r.png" ] || [[ " ${args[*]} " != *" --png "* ]]; then
    echo "bench-smoke: ok"
else
    echo "bench-smoke: the chart was not written" >&2
    exit 1
fi
