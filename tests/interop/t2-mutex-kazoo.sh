#!/bin/bash
# 2. Mutex: zkcoord and kazoo Lock contend on one path; same checks as t1.
# kazoo 2.8 only queues behind nodes named "__lock__" unless the Lock is created
# with extra_lock_patterns=("-lock-",), which makes it see zkcoord's (and
# Curator's) "-lock-" nodes. A negative control runs kazoo without that option
# and requires the checker to catch the resulting overlap.
TEST_NAME=t2-mutex-kazoo
. "$INTEROP_SRC/lib.sh"
need kazoo
ens_start

P=/interop/mutex
D=$(phase mutex)
bg zkc "$ZKC_INTEROP" mutex --hosts "$HOSTS" --path $P --dir "$D" --name zkc --threads 4 --iters 40 --hold-ms 3
bg kaz py_run mutex "$HOSTS" $P "$D" kaz 4 40 3
go "$D" zkc kaz
wait_bg
check_log mutex "$D/log" --min-impls 2 --min-handovers 10 || fail "checker rejected the log $D/log"
[ "$(grep -c '^ENTER' "$D/log")" -eq 320 ] || fail "expected 320 holds, log has $(grep -c '^ENTER' "$D/log")"
# No Curator client is on this path, and kazoo queues correctly behind
# zkcoord's nodes: zkcoord's own "-lock-" nodes (named as Curator's, for
# compatibility) must not trigger the "both Curator and kazoo" warning.
refute_grep "$WORK/zkc.out" 'ZKCLOG WARN .*both Curator' "no false Curator+kazoo warning next to kazoo alone"
refute_grep "$WORK/zkc.out" 'ZKCLOG ERROR' "zkcoord logged no error next to kazoo"

# Negative control: kazoo without extra_lock_patterns ignores zkcoord's nodes.
say "negative control: kazoo without extra_lock_patterns"
P2=/interop/mutex-nopattern
D=$(phase nopattern)
bg zkc2 "$ZKC_INTEROP" mutex --hosts "$HOSTS" --path $P2 --dir "$D" --name zkc --threads 2 --iters 10 --hold-ms 10
bg kaz2 py_run mutex "$HOSTS" $P2 "$D" kaz 2 10 10 --no-extra-patterns
go "$D" zkc kaz
# The workers fail themselves (their O_EXCL markers see the overlap): expected.
wait_bg_any
check_log mutex "$D/log" --expect-violation >"$WORK/nopattern.check" ||
    { cat "$WORK/nopattern.check"; fail "the negative control went undetected"; }
head -1 "$WORK/nopattern.check"
say "ok: without extra_lock_patterns kazoo and zkcoord overlapped $(grep -c '^VIOLATION' "$D/log") times (as expected)"
finish
