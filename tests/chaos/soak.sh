#!/usr/bin/env bash
# make check-soak: the endurance tier (issue 21). zkc-chaos with the soak's
# fault schedule (--soak: session expiry of 1..all workers, leader kills,
# connection cuts, no worker kill) and its sampler (--sample), then a verdict
# on the samples and a chart. The chaos checkers judge the history as in
# check-chaos; this script adds what only time shows: resources that grow.
#
# Verdict, per epoch (workers are new processes each epoch), on the samples
# taken while faults ran: the first third is warm-up; the second half H =
# [1/2, 1] is judged, fitted by least squares where values wander, by maxima
# of its quarters Q3 = [1/2, 3/4) and Q4 = [3/4, 1] where they are counts:
#   rss_kb (sum over workers)   fit(end) <= fit(middle) * 1.05
#   fds, threads (sums)         max(Q4)  <= max(Q3) + SOAK_FD_SLACK / SOAK_THREAD_SLACK
#   other_nodes                 fit(end) <= fit(middle) * 1.05 + 50 + 3 s.e.
# (s.e.: the standard error of the fitted rise, from the residuals: the nodes
# swing by hundreds with the queues; RSS is judged without it)
#     (the leader's whole tree less the key-store records: idempotency keys
#     and reservation records are kept for marker_retention_s, 24 h, by design,
#     until zkc_admin_cleanup / zkc_inventory_reap; their rate per operation is
#     reported, not judged)
#   watches, connections        max(Q4)  <= max(Q3) * 1.05 + 20
# (means for quantities that wander with load, maxima plus a constant for
# counts that should not move at all; a leak of one descriptor per reconnect
# or one node per operation breaks these within a few minutes). Then lock LOST
# events during holds must be > 0 (SOAK_MIN_LOCKS_LOST), and the long form's
# targets SOAK_MIN_OPS / SOAK_MIN_LOSSES (operations = lock acquisitions +
# applied counter updates; losses = LOST heard by the workers' sessions).
#
# Env: SOAK_SECONDS (180), SOAK_SEED, SOAK_SAMPLE_MS (2000 below 20 minutes,
# else 5000), SOAK_EPOCH (900: the histories are checked and dropped, the
# workers replaced and the idempotency keys swept every epoch; the servers run
# with -Xmx1g (ZKH_SERVER_HEAP_MB) and the workload writes ~300 key records a second), SOAK_OUT (output dir, default tests/chaos/soak-out), SOAK_FLAGS
# (more zkc-chaos options), SOAK_MIN_OPS, SOAK_MIN_LOSSES, SOAK_MIN_LOCKS_LOST (1).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${ZKC_CHAOS_BIN:-$here/zkc-chaos}
secs=${SOAK_SECONDS:-180}
epoch=${SOAK_EPOCH:-900}
out=${SOAK_OUT:-$here/soak-out}
ms=${SOAK_SAMPLE_MS:-$([ "$secs" -lt 1200 ] && echo 2000 || echo 5000)}
mkdir -p "$out" || exit 1
csv=$out/soak.csv svg=$out/soak.svg log=$out/zkc-chaos.out
rm -f "$csv" "$svg"

if [ "$secs" -gt "$epoch" ]; then
    span=(--long "$(awk -v s="$secs" 'BEGIN { printf "%.6f", s / 3600 }')" --epoch "$epoch")
else
    span=(--seconds "$secs")
fi
# The checks and key sweeps between epochs come on top of the faults' time
# (minutes each in the long form).
nep=$(((secs + epoch - 1) / epoch))
limit=$((secs + 900 * nep))
t0=$(date +%s)
crc=0
# shellcheck disable=SC2086
timeout -k 30 "$limit" "$bin" --soak "${span[@]}" --sample "$csv" --sample-ms "$ms" \
    ${SOAK_SEED:+--seed "$SOAK_SEED"} ${SOAK_FLAGS:-} 2>&1 | tee "$log"
crc=${PIPESTATUS[0]}
[ "$crc" -eq 77 ] && exit 77
[ "$crc" -eq 124 ] && echo "check-soak: zkc-chaos TIMEOUT after $limit s"
echo "check-soak: zkc-chaos exit $crc after $(($(date +%s) - t0)) s (its checkers: $(grep -o 'chaos: [0-9]* passed, [0-9]* failed' "$log" | tail -1))"

if [ ! -s "$csv" ]; then
    echo "check-soak: FAIL: no samples in $csv"
    exit 1
fi

vrc=0
awk -F, -v fd_slack="${SOAK_FD_SLACK:-8}" -v thr_slack="${SOAK_THREAD_SLACK:-2}" \
    -v min_ops="${SOAK_MIN_OPS:-0}" -v min_loss="${SOAK_MIN_LOSSES:-0}" -v min_ll="${SOAK_MIN_LOCKS_LOST:-1}" '
NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
{ last_ops = $col["ops"]; last_sl = $col["sessions_lost"]; last_ll = $col["locks_lost"]
  last_exp = $col["expired"]; last_f = $col["faults"]; last_t = $col["t_s"] }
$col["running"] == 1 && $col["workers"] > 0 {
    e = $col["epoch"]; n[e]++; if (e > maxe) maxe = e
    t[e, n[e]] = $col["t_s"]
    for (k in want) v[e, k, n[e]] = $col[k]
}
BEGIN { split("rss_kb fds threads other_nodes key_records ops watches connections ops_per_s", w, " "); for (i in w) want[w[i]] = 1 }
function stat(e, k, lo, hi, how,   i, s, c, m) {
    s = 0; c = 0; m = -1e18
    for (i = 1; i <= n[e]; i++)
        if (t[e, i] >= lo && t[e, i] <= hi && v[e, k, i] >= 0) { x = v[e, k, i] + 0; s += x; c++; if (x > m) m = x }
    cnt = c
    if (how == "first") { for (i = 1; i <= n[e]; i++) if (t[e, i] >= lo && v[e, k, i] >= 0) return v[e, k, i] + 0; return -1 }
    return how == "max" ? m : (c ? s / c : 0)
}
# Least squares over the second half: growth = fitted(end) - fitted(middle),
# judged against the fitted middle (a leak shows as a slope, noise averages out).
function trend(e, k, lo, hi, mul, add, nse,   i, c, sx, sy, sxx, sxy, x, y, b, a, ym, y1, bound, ok) {
    c = sx = sy = sxx = sxy = 0
    for (i = 1; i <= n[e]; i++)
        if (t[e, i] >= lo && t[e, i] <= hi && v[e, k, i] >= 0) { x = t[e, i] - lo; y = v[e, k, i]; c++; sx += x; sy += y; sxx += x * x; sxy += x * y }
    if (c < 4 || c * sxx - sx * sx <= 0) { printf "  epoch %d %-12s too few samples (%d)\n", e, k, c; bad++; fails = fails " " k " (no samples)"; return }
    b = (c * sxy - sx * sy) / (c * sxx - sx * sx); a = (sy - b * sx) / c
    ym = a; y1 = a + b * (hi - lo)
    # plus nse standard errors of the fitted rise: the nodes swing by
    # hundreds with the queues, so a short epoch cannot tell a slow leak from
    # noise; a leak is a slope, and more samples narrow the band
    sse = 0
    for (i = 1; i <= n[e]; i++)
        if (t[e, i] >= lo && t[e, i] <= hi && v[e, k, i] >= 0) { x = t[e, i] - lo; sse += (v[e, k, i] - a - b * x) ^ 2 }
    se = sqrt(sse / (c - 2) / (sxx - sx * sx / c)) * (hi - lo)
    bound = ym * mul + add + nse * se
    ok = y1 <= bound
    printf "  epoch %d %-12s fit over the second half %.0f -> %.0f (%+.1f%%, %d samples, s.e. %.0f), bound %.0f: %s\n", e, k, ym, y1, ym ? 100 * (y1 - ym) / ym : 0, c, se, bound, ok ? "ok" : "GROWS"
    if (!ok) { bad++; fails = fails sprintf(" %s (epoch %d: fitted %.0f -> %.0f over the second half, %+.1f%%, bound %.0f)", k, e, ym, y1, ym ? 100 * (y1 - ym) / ym : 0, bound) }
}
function judge(e, k, how, mul, add, lo3, hi3, hi4,   a, b, bound, ok) {
    a = stat(e, k, lo3, hi3, how); c3 = cnt
    b = stat(e, k, hi3, hi4, how); c4 = cnt
    if (c3 == 0 || c4 == 0) { printf "  epoch %d %-12s too few samples (%d, %d)\n", e, k, c3, c4; bad++; fails = fails " " k " (no samples)"; return }
    bound = a * mul + add
    ok = b <= bound
    printf "  epoch %d %-12s %s Q3 %.0f -> Q4 %.0f (%+.1f%%), bound %.0f: %s\n", e, k, how, a, b, a ? 100 * (b - a) / a : 0, bound, ok ? "ok" : "GROWS"
    if (!ok) { bad++; fails = fails sprintf(" %s (epoch %d: %s %.0f -> %.0f, bound %.0f)", k, e, how, a, b, bound) }
}
END {
    bad = 0; fails = ""
    print "check-soak: resources after warm-up (second half of each epoch, its quarters Q3 = [1/2,3/4), Q4 = [3/4,1]; samples while faults ran)"
    if (maxe < 1) { print "  no samples while faults ran"; bad++; fails = " samples" }
    for (e = 1; e <= maxe; e++) {
        if (!n[e]) { print "  epoch " e ": no samples while faults ran"; bad++; continue }
        t0 = t[e, 1]; t1 = t[e, n[e]]; d = t1 - t0
        printf "  epoch %d: %d samples over %.0f s, ops/s mean %.0f\n", e, n[e], d, stat(e, "ops_per_s", t0, t1, "mean")
        trend(e, "rss_kb", t0 + d / 2, t1, 1.05, 0, 0)
        judge(e, "fds", "max", 1, fd_slack, t0 + d / 2, t0 + 3 * d / 4, t1)
        judge(e, "threads", "max", 1, thr_slack, t0 + d / 2, t0 + 3 * d / 4, t1)
        trend(e, "other_nodes", t0 + d / 2, t1, 1.05, 50, 3)
        k0 = stat(e, "key_records", t0 + d / 2, t0 + d / 2 + 1e9, "first"); o0 = stat(e, "ops", t0 + d / 2, t0 + d / 2 + 1e9, "first")
        k1 = -1; for (i = n[e]; i >= 1 && k1 < 0; i--) { k1 = v[e, "key_records", i]; o1 = v[e, "ops", i] }
        if (k0 >= 0 && k1 >= 0 && o1 > o0)
            printf "  epoch %d key_records  %d -> %d over the second half: %.3f per operation (kept for the retention period by design; not judged)\n", e, k0, k1, (k1 - k0) / (o1 - o0)
        judge(e, "watches", "max", 1.05, 20, t0 + d / 2, t0 + 3 * d / 4, t1)
        judge(e, "connections", "max", 1.05, 20, t0 + d / 2, t0 + 3 * d / 4, t1)
    }
    printf "check-soak: %d operations, %d faults, %d sessions expired by the driver, %d session LOST heard by workers, %d lock LOST during holds\n", last_ops, last_f, last_exp, last_sl, last_ll
    if (last_ll < min_ll) { bad++; fails = fails sprintf(" locks_lost (%d < %d)", last_ll, min_ll) }
    if (last_ops < min_ops) { bad++; fails = fails sprintf(" operations (%d < %d)", last_ops, min_ops) }
    if (last_sl < min_loss) { bad++; fails = fails sprintf(" session_losses (%d < %d)", last_sl, min_loss) }
    if (bad) { print "check-soak: FAIL:" fails; exit 1 }
    print "check-soak: resources flat, targets met"
}' "$csv" || vrc=1

# The chart: resident memory (sum over workers, MB) and operations per second
# over time, one SVG next to the CSV, no dependencies.
awk -F, '
NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
{ n++; t[n] = $col["t_s"]; r[n] = $col["rss_kb"] / 1024; o[n] = $col["ops_per_s"]; run[n] = $col["running"]
  if (t[n] > tmax) tmax = t[n]; if (r[n] > rmax) rmax = r[n]; if (o[n] > omax) omax = o[n] }
function X(v) { return 60 + 620 * v / (tmax ? tmax : 1) }
function Y(v, m) { return 250 - 210 * v / (m ? m : 1) }
END {
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"760\" height=\"300\" font-family=\"sans-serif\" font-size=\"11\">\n"
    printf "<rect width=\"760\" height=\"300\" fill=\"white\"/>\n"
    printf "<text x=\"60\" y=\"20\">zkcoord soak: workers RSS (MB, blue, left) and ops/s (orange, right); grey = settling</text>\n"
    for (i = 2; i <= n; i++) if (!run[i]) printf "<rect x=\"%.1f\" y=\"40\" width=\"%.1f\" height=\"210\" fill=\"#eee\"/>\n", X(t[i-1]), X(t[i]) - X(t[i-1])
    printf "<line x1=\"60\" y1=\"250\" x2=\"680\" y2=\"250\" stroke=\"black\"/><line x1=\"60\" y1=\"40\" x2=\"60\" y2=\"250\" stroke=\"black\"/><line x1=\"680\" y1=\"40\" x2=\"680\" y2=\"250\" stroke=\"black\"/>\n"
    for (k = 0; k <= 4; k++) {
        printf "<text x=\"55\" y=\"%.1f\" text-anchor=\"end\" fill=\"#1f5fbf\">%.0f</text>", Y(rmax * k / 4, rmax) + 4, rmax * k / 4
        printf "<text x=\"685\" y=\"%.1f\" fill=\"#d9700a\">%.0f</text>", Y(omax * k / 4, omax) + 4, omax * k / 4
        printf "<text x=\"%.1f\" y=\"265\" text-anchor=\"middle\">%.0f s</text>\n", X(tmax * k / 4), tmax * k / 4
    }
    printf "<polyline fill=\"none\" stroke=\"#d9700a\" stroke-width=\"1\" points=\""
    for (i = 1; i <= n; i++) printf "%.1f,%.1f ", X(t[i]), Y(o[i], omax)
    printf "\"/>\n<polyline fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"2\" points=\""
    for (i = 1; i <= n; i++) printf "%.1f,%.1f ", X(t[i]), Y(r[i], rmax)
    printf "\"/>\n</svg>\n"
}' "$csv" >"$svg"
echo "check-soak: samples $csv, chart $svg, zkc-chaos output $log"
echo "check-soak: $([ $crc -eq 0 ] && [ $vrc -eq 0 ] && echo PASS || echo FAIL) (chaos checkers exit $crc, resource verdict $([ $vrc -eq 0 ] && echo ok || echo FAIL)) in $(($(date +%s) - t0)) s"
[ $crc -eq 0 ] && [ $vrc -eq 0 ]
