#!/usr/bin/python3
"""Checks a zkcoord Prometheus exposition with the real text-format parser
(python3-prometheus-client) against what a test did.

    metrics_check.py EXPOSITION [EXPECTATIONS]

EXPOSITION is the text; EXPECTATIONS has one line per check:
    SAMPLE_NAME LABELS OP NUMBER
LABELS is "-" or k=v,k=v (the sample's labels apart from the constant ones
given by a line "const k=v,..."); OP is ==, >= or <=. A sample that is absent
counts as 0 only when it is expected == 0.

Always checked: every family has HELP and TYPE and a zkc_ name; every sample
carries the constant labels; each histogram series has increasing le bounds
ending in +Inf, cumulative counts that never decrease, +Inf == _count, and a
_sum. Exit 0 when all holds, 1 with the failures listed, 2 on usage or a
parse error (the parser refused the text)."""
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def parse_labels(s):
    if s in ("-", ""):
        return {}
    out = {}
    for part in s.split(","):
        k, v = part.split("=", 1)
        out[k] = v
    return out


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    text = open(argv[1]).read()
    expect = open(argv[2]).read().splitlines() if len(argv) > 2 else []
    const = {}
    for line in expect:
        if line.startswith("const "):
            const = parse_labels(line.split(None, 1)[1])
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser's own refusal is the finding
        print("metrics_check: the parser refused the exposition: %r" % e, file=sys.stderr)
        return 2
    fails = []
    samples = {}
    if not families:
        fails.append("no metric families")
    # The text itself: every family announced with HELP and TYPE once.
    helps = [l.split()[2] for l in text.splitlines() if l.startswith("# HELP ")]
    types = [l.split()[2] for l in text.splitlines() if l.startswith("# TYPE ")]
    if len(set(types)) != len(types):
        fails.append("a family has two TYPE lines")
    if sorted(helps) != sorted(types):
        fails.append("HELP and TYPE lines differ")
    for fam in families:
        if not fam.name.startswith("zkc_"):
            fails.append("family %s: not zkc_" % fam.name)
        if not fam.documentation:
            fails.append("family %s: no HELP" % fam.name)
        if fam.type not in ("counter", "gauge", "histogram"):
            fails.append("family %s: type %s" % (fam.name, fam.type))
        series = {}
        for s in fam.samples:
            labels = dict(s.labels)
            for k, v in const.items():
                if labels.get(k) != v:
                    fails.append("%s%s: constant label %s=%s missing" % (s.name, labels, k, v))
                labels.pop(k, None)
            if fam.type == "histogram":
                key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
                series.setdefault(key, {"buckets": [], "sum": None, "count": None})
                if s.name.endswith("_bucket"):
                    series[key]["buckets"].append((float(labels["le"]), s.value))
                elif s.name.endswith("_sum"):
                    series[key]["sum"] = s.value
                elif s.name.endswith("_count"):
                    series[key]["count"] = s.value
            samples[(s.name, tuple(sorted(labels.items())))] = s.value
        for key, h in series.items():
            b = h["buckets"]
            where = "%s%s" % (fam.name, dict(key))
            if not b or not math.isinf(b[-1][0]):
                fails.append(where + ": no +Inf bucket last")
                continue
            if any(b[i][0] >= b[i + 1][0] for i in range(len(b) - 1)):
                fails.append(where + ": le bounds not increasing")
            if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
                fails.append(where + ": bucket counts decrease: %s" % b)
            if h["count"] is None or h["count"] != b[-1][1]:
                fails.append(where + ": _count %s != +Inf bucket %s" % (h["count"], b[-1][1]))
            if h["sum"] is None or h["sum"] < 0:
                fails.append(where + ": _sum missing or negative")
    checked = 0
    for line in expect:
        if not line.strip() or line.startswith("#") or line.startswith("const "):
            continue
        name, lab, op, num = line.split()
        key = (name, tuple(sorted(parse_labels(lab).items())))
        want = float(num)
        got = samples.get(key)
        if got is None:
            if op == "==" and want == 0:
                checked += 1
                continue
            fails.append("%s{%s}: absent (want %s %s)" % (name, lab, op, num))
            continue
        ok = {"==": got == want, ">=": got >= want, "<=": got <= want}[op]
        if not ok:
            fails.append("%s{%s} = %s, want %s %s" % (name, lab, got, op, num))
        checked += 1
    for f in fails:
        print("metrics_check: " + f, file=sys.stderr)
    print("metrics_check: %d families, %d samples, %d expectations checked, %d failures" %
          (len(families), len(samples), checked, len(fails)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
