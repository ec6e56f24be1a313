# Shared helpers of the interop tests; sourced by tests/interop/t*.sh, which
# run-interop.sh starts with this environment:
#   WORK          this test's scratch directory (ensemble in $WORK/ens)
#   INTEROP_SRC   tests/interop in the source tree
#   ZK_ENSEMBLE   tests/harness/zk-ensemble
#   ZKC_INTEROP   the zkcoord driver (tests/interop/zkc_interop)
#   JAVA_CP       class path for Interop.class and the Curator jars ("" if absent)
#   PY            Python with kazoo ("" if absent); CHECK_PY: any python3
#   CI            "true": a missing runtime is a failure, not a skip
# Bash; `set -u`.

set -u
FAILED=0
BG_PIDS=""
BG_NAMES=""
ENS_DIR=""
T0=$(date +%s%N)

say() { printf '[%s +%ss] %s\n' "${TEST_NAME:-interop}" "$(elapsed)" "$*"; }
elapsed() { local now; now=$(date +%s%N); echo "$(( (now - T0) / 1000000000 )).$(( (now - T0) / 100000000 % 10 ))"; }
fail() { say "FAIL: $*"; FAILED=1; }

# need java|kazoo: skip (77) when the runtime is absent, unless CI=true.
need() {
    local what=$1 missing=""
    case $what in
    java) [ -n "${JAVA_CP:-}" ] || missing="java/javac or Debian's Curator jars (libcurator-recipes-java)" ;;
    kazoo) [ -n "${PY:-}" ] || missing="${PY_WANTED:-/usr/bin/python3} with kazoo (python3-kazoo)" ;;
    esac
    [ -z "$missing" ] && return 0
    if [ "${CI:-}" = "true" ]; then
        say "FAIL: $missing not available, and CI=true forbids skipping"
        exit 1
    fi
    say "SKIP: $missing not available (set CI=true to make this a failure)"
    exit 77
}

cleanup() {
    local pid
    for pid in $BG_PIDS; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $BG_PIDS; do
        wait "$pid" 2>/dev/null || true
    done
    BG_PIDS=""
    if [ -n "$ENS_DIR" ] && [ -f "$ENS_DIR/state" ]; then
        "$ZK_ENSEMBLE" stop --dir "$ENS_DIR" >/dev/null 2>&1 || true
    fi
    ENS_DIR=""
}
trap 'cleanup' EXIT
trap 'say "interrupted"; exit 1' INT TERM

# A fresh 3-node ensemble for this test; sets HOSTS.
ens_start() {
    ENS_DIR=$WORK/ens
    mkdir -p "$ENS_DIR"
    local t=$(date +%s%N)
    if ! HOSTS=$("$ZK_ENSEMBLE" start --dir "$ENS_DIR" --nodes 3); then
        say "FAIL: cannot start the ensemble (logs: $ENS_DIR/node*/zookeeper.log)"
        exit 1
    fi
    say "ensemble up in $(( ($(date +%s%N) - t) / 1000000 )) ms: $HOSTS"
}

# A directory for one phase: the shared log, markers and barrier files.
phase() {
    local d=$WORK/$1
    rm -rf "$d"
    mkdir -p "$d/readers"
    echo "$d"
}

# bg NAME CMD...: run in the background, output in $WORK/NAME.out.
bg() {
    local name=$1
    shift
    "$@" >"$WORK/$name.out" 2>&1 &
    BG_PIDS="$BG_PIDS $!"
    BG_NAMES="$BG_NAMES $name:$!"
}

java_run() {
    java -Xms16m -Xmx192m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData \
        -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -Dorg.slf4j.simpleLogger.log.org.apache.zookeeper=error -cp "$JAVA_CP" Interop "$@"
}
py_run() { "$PY" "$INTEROP_SRC/kazoo_interop.py" "$@"; }
check_log() { "$CHECK_PY" "$INTEROP_SRC/check_log.py" "$@"; }

# wait_file FILE [SECONDS]
wait_file() {
    local f=$1 n=$(( ${2:-60} * 50 ))
    while [ ! -e "$f" ]; do
        n=$((n - 1))
        [ $n -gt 0 ] || return 1
        sleep 0.02
    done
}

# go DIR NAME...: wait until every worker NAME has written DIR/ready.NAME (a
# worker that dies first fails the test at once), then start them all.
go() {
    local d=$1 name pending n=4500
    shift
    while :; do
        pending=""
        for name in "$@"; do
            [ -e "$d/ready.$name" ] || pending="$pending $name"
        done
        [ -z "$pending" ] && break
        for entry in $BG_NAMES; do
            if ! kill -0 "${entry#*:}" 2>/dev/null && [ -n "${entry%%:*}" ]; then
                case " $pending " in
                *" ${entry%%:*} "*)
                    fail "worker ${entry%%:*} exited before the start signal:"
                    sed 's/^/    /' "$WORK/${entry%%:*}.out" | tail -20
                    exit 1 ;;
                esac
            fi
        done
        n=$((n - 1))
        if [ $n -le 0 ]; then
            fail "workers not ready after 90 s:$pending"
            exit 1
        fi
        sleep 0.02
    done
    : >"$d/go"
    say "go ($*)"
}

# wait_bg: wait for every background worker; a non-zero exit fails the test.
wait_bg() {
    local entry name pid rc
    for entry in $BG_NAMES; do
        name=${entry%%:*}
        pid=${entry#*:}
        rc=0
        wait "$pid" || rc=$?
        if [ $rc -ne 0 ]; then
            fail "worker $name exited with $rc:"
            sed 's/^/    /' "$WORK/$name.out" | tail -30
        fi
    done
    BG_PIDS=""
    BG_NAMES=""
}

# wait_bg_any: wait for every background worker, whatever its exit status.
wait_bg_any() {
    local entry
    for entry in $BG_NAMES; do
        wait "${entry#*:}" 2>/dev/null || true
    done
    BG_PIDS=""
    BG_NAMES=""
}

# known_bug "DESCRIPTION" CONDITION...: a test of a reported library bug. While
# CONDITION (a command) succeeds the bug is present: XFAIL, not a failure
# (INTEROP_STRICT=1 makes it one). Once it stops succeeding: XPASS, a failure
# asking to turn the check into a plain assertion.
known_bug() {
    local what=$1
    shift
    if "$@"; then
        if [ "${INTEROP_STRICT:-0}" = 1 ]; then
            fail "known bug (INTEROP_STRICT=1): $what"
        else
            say "XFAIL (known zkcoord bug, reported): $what"
        fi
    else
        fail "XPASS: fixed? $what -- make this check a plain assertion in $0"
    fi
}

# assert_grep FILE REGEX MESSAGE / refute_grep FILE REGEX MESSAGE
assert_grep() {
    if grep -Eq -- "$2" "$1"; then say "ok: $3"; else fail "$3 (no line matching /$2/ in $1)"; fi
}
refute_grep() {
    if grep -Eq -- "$2" "$1"; then
        fail "$3:"
        grep -E -- "$2" "$1" | head -5 | sed 's/^/    /'
    else
        say "ok: $3"
    fi
}

finish() {
    cleanup
    if [ "$FAILED" -ne 0 ]; then
        say "FAILED (work files in $WORK)"
        exit 1
    fi
    say "PASS"
    exit 0
}
