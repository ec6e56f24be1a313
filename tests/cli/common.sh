# Sourced by the tests/cli/*.sh scripts (run by `make check` from the build
# directory, with top_builddir and top_srcdir exported by AM_TESTS_ENVIRONMENT;
# they also run by hand from the build directory). Exit codes follow the
# automake test protocol: 0 pass, 1 fail, 77 skip, 99 hard error.
set -u

: "${top_builddir:=.}"
ZKCOORD="$top_builddir/cli/zkcoord"
ZKENS="$top_builddir/tests/harness/zk-ensemble"
ZKDEL="$top_builddir/tests/cli/zk-delete"
T=$(mktemp -d "${TMPDIR:-/tmp}/zkcoord-cli.XXXXXX") || exit 99
BG_PIDS=""
ZK_STARTED=0
TEST_NAME=$(basename "$0" .sh)

cleanup() {
    # Background zkcoords run under timeout(1), which passes SIGTERM on;
    # zkcoord forwards it to its command and exits.
    for p in $BG_PIDS; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in $BG_PIDS; do
        wait "$p" 2>/dev/null
    done
    if [ "$ZK_STARTED" = 1 ]; then
        "$ZKENS" resume --dir "$T/zk" 1 >/dev/null 2>&1
        timeout 30 "$ZKENS" stop --dir "$T/zk" >/dev/null 2>&1
    fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

fail() {
    echo "FAIL ($TEST_NAME): $*" >&2
    exit 1
}

ok() {
    echo "ok - $*"
}

# Start a private 1-node ensemble; exports ZKC_HOSTS.
start_zk() {
    mkdir -p "$T/zk" || exit 99
    if ! ZKC_HOSTS=$(timeout 90 "$ZKENS" start --dir "$T/zk" --nodes 1 "$@"); then
        echo "cannot start a ZooKeeper server (is the zookeeper package installed?)" >&2
        [ "${CI:-}" = true ] && exit 99
        exit 77
    fi
    ZK_STARTED=1
    export ZKC_HOSTS
}

# run WANT_RC CMD...: run CMD (stdout to $T/out, stderr to $T/err; both are
# shown in the log when the status is not WANT_RC) and check its exit status.
run() {
    want=$1
    shift
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" != "$want" ]; then
        sed 's/^/  | /' "$T/out" "$T/err" >&2
        fail "expected exit status $want, got $rc: $*"
    fi
}

# wait_for SECONDS TEST...: until TEST succeeds, at most SECONDS.
wait_for() {
    limit=$1
    shift
    end=$(($(date +%s) + limit))
    until "$@"; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.1
    done
}

# The first holder's node name in `zkcoord queue --json PATH`.
holder_node() {
    "$ZKCOORD" --json queue "$1" | grep -o '"name":"[^"]*"' | head -n 1 | cut -d'"' -f4
}

# A process that runs (zombies, which wait for their reaper, do not count).
is_alive() {
    kill -0 "$1" 2>/dev/null || return 1
    [ -r "/proc/$1/stat" ] || return 0
    case $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) in
    Z* | X* | '') return 1 ;;
    esac
    return 0
}

# spawn CMD...: runs CMD in the background, stopped by cleanup if still
# running at exit; its pid in $SPAWNED (redirections given to spawn are CMD's).
spawn() {
    "$@" &
    SPAWNED=$!
    BG_PIDS="$BG_PIDS $SPAWNED"
}

# delete_holder PATH: deletes the node of PATH's first holder, as another
# client would; $start is the time (s) of the deletion.
delete_holder() {
    node=$(holder_node "$1")
    [ -n "$node" ] || fail "zkcoord queue --json shows no holder of $1"
    start=$(date +%s)
    "$ZKDEL" "$ZKC_HOSTS" "$1/$node" || fail "cannot delete $1/$node"
}

# wait_exit PID: waits for the background PID; its exit status in $rc, the
# seconds since $start in $took.
wait_exit() {
    wait "$1"
    rc=$?
    took=$(($(date +%s) - start))
}

# pause_until_exit PID: pauses the server until the background PID exits
# (then resumes it); its exit status in $rc, the seconds paused in $took.
pause_until_exit() {
    start=$(date +%s)
    "$ZKENS" pause --dir "$T/zk" 1 || fail "cannot pause the server"
    wait_exit "$1"
    "$ZKENS" resume --dir "$T/zk" 1
}

# hold_then_delete PATH READYFILE ERRFILE CMD...: spawns CMD (a zkcoord that
# will hold PATH; its stderr to ERRFILE), waits until its command has written
# READYFILE, deletes its node as another client would and waits for its
# exit ($rc, $took: as wait_exit).
hold_then_delete() {
    _path=$1 _ready=$2 _err=$3
    shift 3
    spawn "$@" 2>"$_err"
    wait_for 15 test -s "$_ready" || fail "the holder of $_path did not start"
    delete_holder "$_path"
    wait_exit "$SPAWNED"
}

# expect_stopped WHAT LIMIT PIDFILE: the zkcoord just waited for exited 6
# within LIMIT s, and its command (pid in PIDFILE) is gone.
expect_stopped() {
    [ "$rc" = 6 ] || fail "$1: exit $rc, expected 6"
    [ "$took" -le "$2" ] || fail "$1: took $took s, more than $2 s"
    ! is_alive "$(cat "$3")" || fail "$1: the command is still running"
}
