#!/usr/bin/env python3
"""Draw zkcoord-bench results: library/floor ratio per scenario against its
target (left) and library vs floor throughput (right), with the best peer's
(Curator or kazoo) and library / best peer when the run had --peers.

usage: plot.py RESULTS.json OUT.png
RESULTS.json holds one JSON object per line, as written by zkcoord-bench --json.
Needs python3-matplotlib (Debian package).
"""
import json
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                o = json.loads(line)
                # --scale-smoke's queue runs have no floor or ratio to draw
                if o.get("scenario") != "scale":
                    rows.append(o)
    return rows


def num(x):
    return x if isinstance(x, (int, float)) and x == x else None


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    rows = load(sys.argv[1])
    if not rows:
        sys.exit("plot.py: no results in %s" % sys.argv[1])
    names = [r["scenario"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 5.8))

    # ---- ratio vs target (log scale: targets range from 0.8 to 20)
    for i, r in enumerate(rows):
        ratio, target = num(r.get("ratio")), num(r.get("target"))
        met = r.get("target_met")
        if r.get("status") != "ok" or ratio is None:
            color = "#bbbbbb"
        elif target is None:
            color = "#6a8fc7"
        else:
            color = "#3a9a4a" if met else "#d0453a"
        if ratio is not None:
            lo, hi = (r.get("spread") or [None, None])[:2]
            err = None
            if num(lo) is not None and num(hi) is not None:
                err = [[max(ratio - lo, 0)], [max(hi - ratio, 0)]]
            ax1.bar(i, ratio, color=color, yerr=err, capsize=4, edgecolor="black", linewidth=0.5)
            top = max(ratio, hi) if num(hi) is not None else ratio
            ax1.text(i + 0.05, top * 1.06, "%.2f" % ratio, ha="center", va="bottom", fontsize=8)
        else:
            ax1.text(i, 1.0, r.get("status", "?"), ha="center", rotation=90, fontsize=8, color="#666666")
        if target is not None:
            ax1.hlines(target, i - 0.42, i + 0.42, colors="black", linestyles="dashed", linewidth=1.4)
    ax1.set_yscale("log")
    ax1.set_xticks(range(len(names)))
    ax1.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
    ax1.set_ylabel("library / floor (median of rounds; bars: min..max)")
    ax1.set_title("ratio to the raw-ZooKeeper floor (dashed: target)\ngreen met, red missed, blue no target, grey skipped",
                  fontsize=9)
    ax1.axhline(1.0, color="#999999", linewidth=0.6)
    ax1.grid(axis="y", which="both", alpha=0.25)

    # ---- throughput, library vs floor (vs the best peer, with --peers)
    def best_peer(r):
        best = None
        for p in (r.get("peers") or {}).values():
            v = num(p.get("ops_per_s")) if p.get("status") == "ok" else None
            if v and (best is None or v > best):
                best = v
        return best

    with_peers = any("peers" in r for r in rows)
    w = 0.27 if with_peers else 0.4
    off = (-w, 0.0, w) if with_peers else (-w / 2, w / 2, None)
    for i, r in enumerate(rows):
        lo, fl, bp = num(r.get("ops_per_s")), num(r.get("floor_ops_per_s")), best_peer(r)
        if lo:
            ax2.bar(i + off[0], lo, w, color="#4477aa")
        if fl:
            ax2.bar(i + off[1], fl, w, color="#bbbbbb")
        if with_peers and bp:
            ax2.bar(i + off[2], bp, w, color="#dd8833")
            if lo:
                ax2.text(i, max(lo, bp, fl or 0) * 1.08, "%.2f" % (lo / bp), ha="center", va="bottom", fontsize=7)
    ax2.set_yscale("log")
    ax2.set_xticks(range(len(names)))
    ax2.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
    ax2.set_ylabel("operations per second (median of rounds)")
    ax2.set_title("throughput on the same ensemble, interleaved rounds%s"
                  % ("\n(number: library / best peer)" if with_peers else ""), fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color="#4477aa"), plt.Rectangle((0, 0), 1, 1, color="#bbbbbb")]
    labels = ["library", "floor / baseline / limit"]
    if with_peers:
        handles.append(plt.Rectangle((0, 0), 1, 1, color="#dd8833"))
        labels.append("best peer (Curator or kazoo)")
    ax2.legend(handles, labels, fontsize=7, loc="best", framealpha=0.8)
    ax2.grid(axis="y", which="both", alpha=0.25)

    r0 = rows[0]
    load_avg = r0.get("load_avg_at_start") or [None]
    fs = (r0.get("fsync") or {}).get("write_p50_ms")
    fig.suptitle(
        "zkcoord-bench  commit %s  %s  load %s  %s CPUs  raw write p50 %s ms\n%s"
        % (
            r0.get("commit", "?"),
            time.strftime("%Y-%m-%d"),
            "%.1f" % load_avg[0] if num(load_avg[0]) is not None else "?",
            r0.get("cpus", "?"),
            "%.2f" % fs if num(fs) is not None else "?",
            r0.get("ensemble", ""),
        ),
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
