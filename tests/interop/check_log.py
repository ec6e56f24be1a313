"""External checker for the lock interoperability tests (tests/interop).

Every holder, whatever its library, appends to one log file (O_APPEND, one
write(2) per line, so file order is the real order of the writes):
    ENTER <mono_ns> <impl> <who> <kind> <seq> <token> <node>   right after the grant
    EXIT  <mono_ns> <impl> <who> <kind> <seq>                  right before the release
    VIOLATION ...                                              an in-section check failed
kind is M (mutex), R (read) or W (write); seq is ZooKeeper's sequence suffix of
the holder's node, token its czxid; mono_ns is CLOCK_MONOTONIC (one clock for
C, Java and Python on one host).

  check_log.py mutex LOG [--min-impls N] [--min-handovers N] [--expect-violation]
  check_log.py rw LOG [--min-impls N] [--min-handovers N]
  check_log.py selftest

mutex: holds never overlap (file order and timestamps), grants follow node
sequence order (FIFO) and fencing tokens strictly increase, across libraries.
rw: a writer is alone; readers only share with readers; readers overlap (some
read holds of different libraries overlap); fairness: a writer enters only
after every node queued before it has left, and a reader queued after a
writer enters only after that writer has left (no writer starvation).
--min-impls: at least N libraries must appear in the log.
--min-handovers: at least N grants must pass from one library to another.
--expect-violation: invert the verdict (negative control).
Exit status 0 when the verdict holds, 1 otherwise. Uses only the standard
library (any python3).
"""
import sys
from collections import Counter


class Hold:
    def __init__(self, idx, ts, impl, who, kind, seq, token, node):
        self.enter_idx, self.enter_ts = idx, ts
        self.exit_idx, self.exit_ts = None, None
        self.impl, self.who, self.kind = impl, who, kind
        self.seq, self.token, self.node = seq, token, node


def parse(lines):
    """Returns (holds in ENTER order, errors)."""
    errors, holds, open_by_who = [], [], {}
    for i, raw in enumerate(lines):
        f = raw.split()
        if not f:
            continue
        if f[0] == "VIOLATION":
            errors.append("line %d: in-section check failed: %s" % (i + 1, raw.strip()))
        elif f[0] == "ENTER" and len(f) >= 7:
            h = Hold(i, int(f[1]), f[2], f[3], f[4], int(f[5]), int(f[6]), f[7] if len(f) > 7 else "?")
            if h.who in open_by_who:
                errors.append("line %d: %s enters twice" % (i + 1, h.who))
            open_by_who[h.who] = h
            holds.append(h)
        elif f[0] == "EXIT" and len(f) >= 6:
            h = open_by_who.pop(f[3], None)
            if h is None:
                errors.append("line %d: EXIT of %s, who is not inside" % (i + 1, f[3]))
                continue
            h.exit_idx, h.exit_ts = i, int(f[1])
            if h.exit_ts < h.enter_ts:
                errors.append("line %d: %s leaves before it entered (clock)" % (i + 1, h.who))
        else:
            errors.append("line %d: unparsable: %r" % (i + 1, raw))
    for who, h in open_by_who.items():
        errors.append("%s entered at line %d and never left" % (who, h.enter_idx + 1))
    return holds, errors


def check_mutex(holds):
    errors = []
    prev = None
    for h in holds:
        if prev is not None:
            if prev.exit_idx is None or prev.exit_idx > h.enter_idx:
                errors.append("mutual exclusion: %s (%s) entered at line %d while %s (%s) held since line %d"
                              % (h.who, h.impl, h.enter_idx + 1, prev.who, prev.impl, prev.enter_idx + 1))
            elif h.enter_ts <= prev.exit_ts:
                errors.append("mutual exclusion (clock): %s entered at %d, before %s left at %d"
                              % (h.who, h.enter_ts, prev.who, prev.exit_ts))
            if h.seq <= prev.seq:
                errors.append("FIFO: %s (%s, seq %d) was granted after %s (%s, seq %d)"
                              % (h.who, h.impl, h.seq, prev.who, prev.impl, prev.seq))
            if h.token <= prev.token:
                errors.append("fencing: token %d of %s (%s) not above %d of %s (%s)"
                              % (h.token, h.who, h.impl, prev.token, prev.who, prev.impl))
        prev = h
    # Hand-overs between libraries: proves they really contended.
    cross = sum(1 for a, b in zip(holds, holds[1:]) if a.impl != b.impl)
    return errors, "%d holds, %d hand-overs between libraries" % (len(holds), cross), cross


def check_rw(holds):
    errors = []
    events = []  # (line index, +1 enter / -1 exit, hold)
    for h in holds:
        events.append((h.enter_idx, 1, h))
        if h.exit_idx is not None:
            events.append((h.exit_idx, -1, h))
    events.sort(key=lambda e: e[0])
    readers, writer = set(), None
    max_readers, mixed_overlap = 0, False
    for idx, d, h in events:
        if d < 0:
            if h.kind == "W":
                writer = None
            else:
                readers.discard(h)
            continue
        if h.kind == "W":
            if writer is not None or readers:
                errors.append("exclusion: writer %s (%s) entered at line %d with %s inside"
                              % (h.who, h.impl, idx + 1,
                                 ", ".join(x.who for x in ([writer] if writer else []) + sorted(readers, key=lambda r: r.who))))
            writer = h
        else:
            if writer is not None:
                errors.append("exclusion: reader %s (%s) entered at line %d while writer %s was inside"
                              % (h.who, h.impl, idx + 1, writer.who))
            readers.add(h)
            max_readers = max(max_readers, len(readers))
            if len({r.impl for r in readers}) > 1:
                mixed_overlap = True
    # Fairness, from node sequence numbers (one queue for both libraries).
    writers = [h for h in holds if h.kind == "W"]
    for w in writers:
        for x in holds:
            if x is w:
                continue
            if x.seq < w.seq and (x.exit_idx is None or x.exit_idx > w.enter_idx):
                errors.append("fairness: writer %s (seq %d) entered at line %d before %s %s (seq %d, queued earlier) left"
                              % (w.who, w.seq, w.enter_idx + 1, x.kind, x.who, x.seq))
            if x.kind == "R" and x.seq > w.seq and (w.exit_idx is None or x.enter_idx < w.exit_idx):
                errors.append("fairness: reader %s (seq %d) entered at line %d before writer %s (seq %d, queued "
                              "earlier) left: writers can starve" % (x.who, x.seq, x.enter_idx + 1, w.who, w.seq))
    ws = sorted(writers, key=lambda h: h.enter_idx)
    for a, b in zip(ws, ws[1:]):
        if b.seq <= a.seq:
            errors.append("FIFO: writer %s (seq %d) granted after writer %s (seq %d)" % (b.who, b.seq, a.who, a.seq))
        if b.token <= a.token:
            errors.append("fencing: writer token %d of %s not above %d of %s" % (b.token, b.who, a.token, a.who))
    if max_readers < 2:
        errors.append("readers never overlapped (at most %d at once): the test proves nothing about sharing"
                      % max_readers)
    if not mixed_overlap:
        errors.append("no moment with readers of two libraries inside together")
    if not writers:
        errors.append("no write holds")
    cross = sum(1 for a, b in zip(holds, holds[1:]) if a.impl != b.impl)
    return errors, "%d holds (%d writes), up to %d readers at once, mixed-library read overlap: %s" % (
        len(holds), len(writers), max_readers, "yes" if mixed_overlap else "no"), cross


def judge(mode, lines, min_impls=1, min_handovers=0):
    holds, errors = parse(lines)
    if mode == "mutex":
        e, summary, cross = check_mutex(holds)
    else:
        e, summary, cross = check_rw(holds)
    errors += e
    if cross < min_handovers:
        errors.append("only %d hand-overs between libraries (expected at least %d): they hardly contended"
                      % (cross, min_handovers))
    impls = Counter(h.impl for h in holds)
    if len(impls) < min_impls:
        errors.append("only %d librar%s in the log (%s), expected %d" % (
            len(impls), "y" if len(impls) == 1 else "ies", ", ".join(sorted(impls)), min_impls))
    summary += "; holds by library: " + ", ".join("%s=%d" % kv for kv in sorted(impls.items()))
    return errors, summary


def selftest():
    """The checker must catch what it claims to catch."""
    ok = ["ENTER 10 a a-0 M 1 100 n1", "EXIT 20 a a-0 M 1", "ENTER 30 b b-0 M 2 101 n2", "EXIT 40 b b-0 M 2"]
    cases = [
        ("mutex", ok, True),
        ("mutex", ["ENTER 10 a a-0 M 1 100 n", "ENTER 15 b b-0 M 2 101 n", "EXIT 20 a a-0 M 1",
                   "EXIT 40 b b-0 M 2"], False),                                  # overlap
        ("mutex", ["ENTER 10 a a-0 M 2 100 n", "EXIT 20 a a-0 M 2", "ENTER 30 b b-0 M 1 101 n",
                   "EXIT 40 b b-0 M 1"], False),                                  # FIFO
        ("mutex", ["ENTER 10 a a-0 M 1 100 n", "EXIT 20 a a-0 M 1", "ENTER 30 b b-0 M 2 99 n",
                   "EXIT 40 b b-0 M 2"], False),                                  # token
        ("mutex", ["ENTER 10 a a-0 M 1 100 n", "EXIT 20 a a-0 M 1", "ENTER 15 b b-0 M 2 101 n",
                   "EXIT 40 b b-0 M 2"], False),                                  # clock
        ("mutex", ok + ["VIOLATION 50 a a-0 O_EXCL"], False),
        ("mutex", ok[:1], False),                                                 # never left
        ("rw", ["ENTER 1 a a-0 R 1 100 n", "ENTER 2 b b-0 R 2 101 n", "EXIT 3 a a-0 R 1", "EXIT 4 b b-0 R 2",
                "ENTER 5 a a-0 W 3 102 n", "EXIT 6 a a-0 W 3"], True),
        ("rw", ["ENTER 1 a a-0 R 1 100 n", "ENTER 2 b b-0 W 2 101 n", "EXIT 3 a a-0 R 1", "EXIT 4 b b-0 W 2",
                "ENTER 5 a a-1 R 3 102 n", "ENTER 6 b b-1 R 4 103 n", "EXIT 7 a a-1 R 3",
                "EXIT 8 b b-1 R 4"], False),                                      # writer with a reader
        ("rw", ["ENTER 1 a a-0 R 1 100 n", "ENTER 2 b b-0 R 3 101 n", "EXIT 3 a a-0 R 1", "EXIT 4 b b-0 R 3",
                "ENTER 5 a a-0 W 2 102 n", "EXIT 6 a a-0 W 2"], False),           # reader jumped a writer
        ("rw", ["ENTER 1 a a-0 R 1 100 n", "EXIT 2 a a-0 R 1", "ENTER 3 b b-0 R 2 101 n", "EXIT 4 b b-0 R 2",
                "ENTER 5 a a-0 W 3 102 n", "EXIT 6 a a-0 W 3"], False),           # no overlap
    ]
    bad = 0
    for i, (mode, lines, want_ok) in enumerate(cases):
        errors, _ = judge(mode, [l + "\n" for l in lines], 2)
        if (not errors) != want_ok:
            bad += 1
            print("selftest case %d (%s): expected %s, got %s" % (i, mode, "pass" if want_ok else "failure",
                                                                  errors or "pass"))
    print("check_log selftest: %d cases, %d wrong" % (len(cases), bad))
    return 1 if bad else 0


def main(argv):
    if len(argv) >= 1 and argv[0] == "selftest":
        return selftest()
    if len(argv) < 2 or argv[0] not in ("mutex", "rw"):
        sys.stderr.write(__doc__)
        return 2
    mode, path = argv[0], argv[1]
    min_impls = 1
    if "--min-impls" in argv:
        min_impls = int(argv[argv.index("--min-impls") + 1])
    min_handovers = 0
    if "--min-handovers" in argv:
        min_handovers = int(argv[argv.index("--min-handovers") + 1])
    expect_violation = "--expect-violation" in argv
    with open(path) as f:
        lines = f.readlines()
    errors, summary = judge(mode, lines, min_impls, min_handovers)
    print("check_log %s: %s" % (mode, summary))
    for e in errors[:20]:
        print("  " + e)
    if len(errors) > 20:
        print("  ... and %d more" % (len(errors) - 20))
    if expect_violation:
        if errors:
            print("check_log: violations found, as the negative control expects")
            return 0
        print("check_log: FAIL: the negative control found no violation (is the checker blind?)")
        return 1
    print("check_log: %s" % ("OK" if not errors else "FAIL: %d problem(s)" % len(errors)))
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
