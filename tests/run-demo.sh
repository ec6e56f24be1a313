#!/usr/bin/env bash
# The quick start's first command, ./run-demo, as a newcomer runs it: the main
# job and the --tour, each with a ZooKeeper it starts itself and with ZKC_HOSTS
# pointing at a running one. Each run must end with status 0: a script that
# checks the demo's status once saw 1 after "result: ok" whenever ZKC_HOSTS
# was set (the exit trap's last command was a false test).
set -uo pipefail
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
# run-demo works in its own directory (the source tree); a separate build
# directory (make distcheck) has its programs elsewhere.
if [ "$(cd "$top_srcdir" && pwd -P)" != "$(cd "$top_builddir" && pwd -P)" ]; then
    echo "run-demo.sh: skipped: run-demo needs an in-tree build"
    exit 77
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/zkc-run-demo.XXXXXX") || exit 99
trap '"$top_builddir/tests/harness/zk-ensemble" stop --dir "$dir/zk" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
export ZKC_DEMO_NO_BUILD=1
fail=0

# demo NAME WANT_RC [ARGS...]: run ./run-demo ARGS, check status and "result: ok".
demo() {
    local name=$1 want=$2 rc=0
    shift 2
    timeout 180 "$top_srcdir/run-demo" "$@" >"$dir/out" 2>&1 || rc=$?
    if [ "$rc" -ne "$want" ]; then
        sed 's/^/  | /' "$dir/out" >&2
        echo "FAIL: run-demo $* ($name): exit status $rc, expected $want" >&2
        fail=1
        return 1
    fi
    echo "ok - run-demo $* ($name): exit status $rc"
}

unset ZKC_HOSTS
if demo "own server" 0 --orders 120; then
    grep -q "^started a local ZooKeeper at " "$dir/out" || { echo "FAIL: no 'started a local ZooKeeper'" >&2; fail=1; }
    grep -q "^result: ok" "$dir/out" || { echo "FAIL: no 'result: ok'" >&2; fail=1; }
    # 20 SKUs by default, 8 listed: the table says that it is cut short.
    grep -q "^  \.\.\. and 12 more SKUs" "$dir/out" || { echo "FAIL: the SKU table does not say that 12 more exist" >&2; fail=1; }
fi
demo "own server" 0 --tour

mkdir "$dir/zk"
ZKC_HOSTS=$("$top_builddir/tests/harness/zk-ensemble" start --dir "$dir/zk" --nodes 1) || exit 99
export ZKC_HOSTS
if demo "ZKC_HOSTS set" 0 --orders 120; then
    grep -q "^started a local ZooKeeper" "$dir/out" && { echo "FAIL: started a server although ZKC_HOSTS was set" >&2; fail=1; }
    grep -q "^result: ok" "$dir/out" || { echo "FAIL: no 'result: ok'" >&2; fail=1; }
fi
demo "ZKC_HOSTS set" 0 --tour
# A failing demo still fails the script: the trap must not hide a status.
demo "bad option" 2 --no-such-option
exit $fail
