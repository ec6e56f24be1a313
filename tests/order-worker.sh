#!/usr/bin/env bash
# The main job's own invariants on a small configuration, against a real
# single-node ZooKeeper: every order final, nothing oversold or sold twice,
# units conserved, FIFO held, worker crashes recovered, one reaper at a time
# (the workers' leader election), no reap record of an ended term accepted (a
# write guarded by the term).
set -euo pipefail
top_builddir=${top_builddir:-.}
dir=$(mktemp -d "${TMPDIR:-/tmp}/zkc-ow.XXXXXX")
trap '"$top_builddir/tests/harness/zk-ensemble" stop --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
hosts=$("$top_builddir/tests/harness/zk-ensemble" start --dir "$dir" --nodes 1)
rc=0
out=$(timeout 180 "$top_builddir/examples/order-worker/order-worker" --hosts "$hosts" --workers 3 --orders 200 \
      --skus 12 --hot 3 --crash-rate 0.02 --quiet 2>&1) || rc=$?
echo "$out"
if [ $rc -ne 0 ]; then
    echo "order-worker.sh: order-worker exited $rc" >&2
    exit 1
fi
for line in "orders left unfinished  0 " "oversold units          0 " "orders processed twice  0 " \
            "conservation errors     0 " "FIFO violations         0 " "reaper overlaps         0 " " 0 of an ended term accepted" "result: ok"; do
    grep -qF "$line" <<<"$out" || { echo "order-worker.sh: missing '$line'" >&2; exit 1; }
done
grep -q "orders processed        200 / 200" <<<"$out"
