#!/bin/bash
# 5. Counters: zkcoord and the other libraries' counters update one node at the
# same time (no faults), in each shared format:
#   int64   zkcoord ZKC_FMT_INT64 + Curator DistributedAtomicLong (8-byte big-endian)
#   int32   zkcoord ZKC_FMT_INT32 + Curator SharedCount + kazoo Counter(support_curator=True)
#           (4-byte big-endian)
#   decimal zkcoord ZKC_FMT_DECIMAL + kazoo Counter (decimal text)
# Each node starts at a negative value (beyond 32 bits for int64) so sign and
# width are exercised. Checks: every side's increments overlap in time; the
# final value is exact, as read by every library and as raw bytes; then in turn
# each library adds once and the next one must read exactly that value.
TEST_NAME=t5-counters
. "$INTEROP_SRC/lib.sh"
need java
need kazoo
ens_start

zkc() { "$ZKC_INTEROP" "$@" --hosts "$HOSTS"; }
# expect_eq WHAT GOT WANT
expect_eq() {
    if [ "$2" = "$3" ]; then say "ok: $1 = $3"; else fail "$1: got '$2', expected '$3'"; fi
}
# overlap: every worker's add loop overlaps every other's (RESULT start/end).
overlap() {
    "$CHECK_PY" - "$@" <<'PY'
import re, sys
iv = []
for f in sys.argv[1:]:
    for line in open(f):
        m = re.match(r"RESULT (\S+) applied=(-?\d+) start=(\d+) end=(\d+)", line)
        if m:
            iv.append((m.group(1), int(m.group(3)), int(m.group(4))))
if len(iv) != len(sys.argv) - 1:
    sys.exit("missing RESULT lines: %r" % iv)
lo, hi = max(s for _, s, _ in iv), min(e for _, _, e in iv)
print("    add loops: " + ", ".join("%s %.0f ms" % (n, (e - s) / 1e6) for n, s, e in iv)
      + "; all running together for %.0f ms" % ((hi - lo) / 1e6))
sys.exit(0 if hi > lo else 1)
PY
}
applied() { sed -n 's/^RESULT [^ ]* applied=\(-\{0,1\}[0-9]*\).*/\1/p' "$WORK/$1.out"; }
# raw FORMAT PATH: decode the node's bytes independently of every library.
raw() {
    local hex
    hex=$(py_run raw "$HOSTS" "$2") || { fail "raw read of $2"; return; }
    "$CHECK_PY" -c '
import struct, sys
fmt, b = sys.argv[1], bytes.fromhex(sys.argv[2])
if fmt == "int64":
    assert len(b) == 8, "int64 node holds %d bytes" % len(b); print(struct.unpack(">q", b)[0])
elif fmt == "int32":
    assert len(b) == 4, "int32 node holds %d bytes" % len(b); print(struct.unpack(">i", b)[0])
else:
    s = b.decode("ascii"); assert s == str(int(s)), "decimal node holds %r" % s; print(int(s))
' "$1" "$hex" || fail "node $2 does not hold a canonical $1 value (hex $hex)"
}
run_phase() { # NAME: wait for the workers, check applied counts and overlap
    local d=$1
    shift
    go "$d" "$@"
    wait_bg
    overlap $(for n in "$@"; do echo "$WORK/$n.out"; done) || fail "the add loops did not overlap: no concurrency"
    grep -h '^RESULT' $(for n in "$@"; do echo "$WORK/$n.out"; done) | sed 's/^/    /'
}

# ---------------------------------------------------------------- int64
P=/interop/c64
say "int64: zkcoord + Curator DistributedAtomicLong on $P"
zkc counter-set --path $P --fmt int64 -5000000000 >/dev/null || fail "counter-set $P"
D=$(phase c64)
bg zkc64 "$ZKC_INTEROP" counter --hosts "$HOSTS" --path $P --fmt int64 --dir "$D" --name zkc64 --threads 4 --adds 150 --delta 1
bg cur64 java_run counter-long "$HOSTS" $P "$D" cur64 4 150 3
run_phase "$D" zkc64 cur64
expect_eq "zkcoord applied" "$(applied zkc64)" 600
expect_eq "Curator applied" "$(applied cur64)" 1800
want=$((-5000000000 + 600 + 1800))
expect_eq "final (zkcoord reads)" "$(zkc counter-get --path $P --fmt int64)" $want
expect_eq "final (Curator reads)" "$(java_run get-long "$HOSTS" $P)" $want
expect_eq "final (raw 8 bytes)" "$(raw int64 $P)" $want
a=$(java_run add-long "$HOSTS" $P 11)
expect_eq "after Curator's add of 11, zkcoord reads" "$(zkc counter-get --path $P --fmt int64)" "$a"
b=$(zkc counter-add --path $P --fmt int64 --delta 13)
expect_eq "after zkcoord's add of 13, Curator reads" "$(java_run get-long "$HOSTS" $P)" "$b"
expect_eq "the two adds" "$b" $((want + 24))

# ---------------------------------------------------------------- int32
P=/interop/c32
say "int32: zkcoord + Curator SharedCount + kazoo Counter(support_curator=True) on $P"
zkc counter-set --path $P --fmt int32 -100000 >/dev/null || fail "counter-set $P"
D=$(phase c32)
bg zkc32 "$ZKC_INTEROP" counter --hosts "$HOSTS" --path $P --fmt int32 --dir "$D" --name zkc32 --threads 4 --adds 150 --delta 1
bg cur32 java_run counter-shared "$HOSTS" $P "$D" cur32 4 150 3
bg kaz32 py_run counter "$HOSTS" $P "$D" kaz32 4 100 5 --curator
run_phase "$D" zkc32 cur32 kaz32
expect_eq "zkcoord applied" "$(applied zkc32)" 600
expect_eq "Curator applied" "$(applied cur32)" 1800
expect_eq "kazoo applied" "$(applied kaz32)" 2000
want=$((-100000 + 600 + 1800 + 2000))
expect_eq "final (zkcoord reads)" "$(zkc counter-get --path $P --fmt int32)" $want
expect_eq "final (Curator reads)" "$(java_run get-shared "$HOSTS" $P)" $want
expect_eq "final (kazoo reads)" "$(py_run get "$HOSTS" $P --curator)" $want
expect_eq "final (raw 4 bytes)" "$(raw int32 $P)" $want
a=$(java_run add-shared "$HOSTS" $P 7)
expect_eq "after Curator's add of 7, kazoo reads" "$(py_run get "$HOSTS" $P --curator)" "$a"
b=$(py_run add "$HOSTS" $P 9 --curator)
expect_eq "after kazoo's add of 9, zkcoord reads" "$(zkc counter-get --path $P --fmt int32)" "$b"
c=$(zkc counter-add --path $P --fmt int32 --delta 11)
expect_eq "after zkcoord's add of 11, Curator reads" "$(java_run get-shared "$HOSTS" $P)" "$c"
expect_eq "the three adds" "$c" $((want + 27))

# ---------------------------------------------------------------- decimal
P=/interop/cdec
say "decimal: zkcoord + kazoo Counter on $P"
zkc counter-set --path $P --fmt decimal -7 >/dev/null || fail "counter-set $P"
D=$(phase cdec)
bg zkcd "$ZKC_INTEROP" counter --hosts "$HOSTS" --path $P --fmt decimal --dir "$D" --name zkcd --threads 4 --adds 150 --delta 1
bg kazd py_run counter "$HOSTS" $P "$D" kazd 4 100 5
run_phase "$D" zkcd kazd
expect_eq "zkcoord applied" "$(applied zkcd)" 600
expect_eq "kazoo applied" "$(applied kazd)" 2000
want=$((-7 + 600 + 2000))
expect_eq "final (zkcoord reads)" "$(zkc counter-get --path $P --fmt decimal)" $want
expect_eq "final (kazoo reads)" "$(py_run get "$HOSTS" $P)" $want
expect_eq "final (raw text)" "$(raw decimal $P)" $want
a=$(py_run add "$HOSTS" $P 9)
expect_eq "after kazoo's add of 9, zkcoord reads" "$(zkc counter-get --path $P --fmt decimal)" "$a"
b=$(zkc counter-add --path $P --fmt decimal --delta 11)
expect_eq "after zkcoord's add of 11, kazoo reads" "$(py_run get "$HOSTS" $P)" "$b"
expect_eq "the two adds" "$b" $((want + 20))
finish
