#!/usr/bin/env bash
# The order-worker demo's metrics export, against a real single-node
# ZooKeeper: two workers with --metrics-file and --metrics-port. While they
# run, every read of each worker's file must parse whole with the real
# Prometheus text parser (python3-prometheus-client; a torn file would not):
# the file is replaced by rename, never written in place. Once a worker says
# order_worker_finished 1, GET /metrics on its port must parse and agree with
# its file on the numbers that no longer move, carry its worker label, and
# together the workers must have decided at least one reservation per order.
# Then SIGUSR1 ends the workers' linger and the demo must still end with
# "result: ok". No temporary files may be left next to the metrics files.
set -euo pipefail
top_builddir=${top_builddir:-.}
srcdir=${srcdir:-.}
PY=/usr/bin/python3
if ! $PY -c 'import prometheus_client.parser' 2>/dev/null; then
    if [ "${CI:-}" = true ]; then
        echo "order-worker-metrics.sh: python3-prometheus-client missing (scripts/bootstrap.sh --with-test-deps)" >&2
        exit 1
    fi
    echo "order-worker-metrics.sh: SKIP: python3-prometheus-client not installed" >&2
    exit 77
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/zkc-owm.XXXXXX")
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM $(pgrep -P "$pid") "$pid" 2>/dev/null || true
    fi
    "$top_builddir/tests/harness/zk-ensemble" stop --dir "$dir/zk" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
mkdir -p "$dir/zk" "$dir/prom"
hosts=$("$top_builddir/tests/harness/zk-ensemble" start --dir "$dir/zk" --nodes 1)
# Two consecutive free loopback ports (worker i answers on port + i).
port=$($PY - <<'EOF'
import socket
for _ in range(200):
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1))
    except OSError:
        a.close(); continue
    a.close(); b.close(); print(p); break
EOF
)
orders=60
"$top_builddir/examples/order-worker/order-worker" --hosts "$hosts" --workers 2 --orders $orders --skus 8 --hot 2 \
    --crash-rate 0 --quiet --metrics-file "$dir/prom/ow.prom" --metrics-port "$port" \
    --metrics-linger-ms 300000 >"$dir/out" 2>&1 &
pid=$!

$PY - "$dir/prom" "$port" "$orders" "$srcdir/tests/metrics_check.py" <<'EOF'
import os, subprocess, sys, time, urllib.request, urllib.error
from prometheus_client.parser import text_string_to_metric_families

prom, port, orders, checker = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
deadline = time.monotonic() + 240

def samples(text):
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out

def get(sm, name, **labels):
    return sm.get((name, tuple(sorted(labels.items()))))

finished = {}
reads = 0
while len(finished) < 2:
    if time.monotonic() > deadline:
        sys.exit("order-worker-metrics: workers did not finish in time (%s)" % sorted(finished))
    for w in (0, 1):
        fn = os.path.join(prom, "ow-w%d.prom" % w)
        if w in finished or not os.path.exists(fn):
            continue
        text = open(fn).read()
        reads += 1
        sm = samples(text)  # raises on a torn file
        if get(sm, "zkc_connected", worker=str(w)) is None:
            sys.exit("order-worker-metrics: %s read without its last family:\n%s" % (fn, text))
        if get(sm, "order_worker_finished", worker=str(w)) == 1:
            finished[w] = (text, sm)
    time.sleep(0.2)  # polling a file: there is no event to wait for

total = 0
for w in (0, 1):
    text, fsm = finished[w]
    try:
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % (port + w), timeout=30).read().decode()
    except urllib.error.URLError as e:
        sys.exit("order-worker-metrics: GET /metrics of worker %d: %s" % (w, e))
    hsm = samples(body)
    for name, labels in [("zkc_reservation_decision_seconds_count", {"prefix": "inventory"}),
                         ("zkc_operations_started_total", {"kind": "inventory", "prefix": "inventory"}),
                         ("zkc_operations_total", {"kind": "inventory", "result": "ok", "prefix": "inventory"}),
                         ("zkc_lock_hold_seconds_count", {}),
                         ("order_worker_finished", {})]:
        labels = dict(labels, worker=str(w))
        a, b = get(fsm, name, **labels), get(hsm, name, **labels)
        if a is None or a != b:
            sys.exit("order-worker-metrics: worker %d %s%s: file %s, http %s" % (w, name, labels, a, b))
    if any(dict(k[1]).get("worker") != str(w) for k in hsm):
        sys.exit("order-worker-metrics: a sample of worker %d lacks worker=\"%d\"" % (w, w))
    total += get(hsm, "zkc_reservation_decision_seconds_count", prefix="inventory", worker=str(w))
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/other" % (port + w), timeout=30)
        sys.exit("order-worker-metrics: GET /other did not answer 404")
    except urllib.error.HTTPError as e:
        if e.code != 404:
            sys.exit("order-worker-metrics: GET /other: %d" % e.code)
    # Everything the library wrote passes the generic checks too.
    lib_only = text.split("# HELP order_worker_finished")[0]
    path = os.path.join(prom, "lib-w%d.txt" % w)
    open(path, "w").write(lib_only)
    exp = path + ".exp"
    open(exp, "w").write("const worker=%d\n" % w)
    if subprocess.call([sys.executable, checker, path, exp]) != 0:
        sys.exit("order-worker-metrics: worker %d's exposition fails the checks" % w)
    os.unlink(path)
    os.unlink(exp)
if total < orders:
    sys.exit("order-worker-metrics: %d reservation decisions for %d orders" % (total, orders))
print("order-worker-metrics: %d file reads parsed whole; file and /metrics agree; %d decisions for %d orders"
      % (reads, total, orders))
EOF

# End the linger: the workers are this demo's children.
workers=$(pgrep -P "$pid" || true)
[ -n "$workers" ] && kill -USR1 $workers
if ! timeout 120 tail --pid="$pid" -f /dev/null; then
    echo "order-worker-metrics.sh: order-worker still running 120 s after SIGUSR1" >&2
    exit 1
fi
rc=0
wait "$pid" || rc=$?
pid=""
cat "$dir/out"
[ $rc -eq 0 ] || { echo "order-worker-metrics.sh: order-worker exited $rc" >&2; exit 1; }
grep -qF "result: ok" "$dir/out" || { echo "order-worker-metrics.sh: no 'result: ok'" >&2; exit 1; }
left=$(ls "$dir/prom" | grep -v '^ow-w[01]\.prom$' || true)
[ -z "$left" ] || { echo "order-worker-metrics.sh: left behind: $left" >&2; exit 1; }
echo "order-worker-metrics.sh: ok"
