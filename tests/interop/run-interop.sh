#!/bin/bash
# Runs the interoperability tests (tests/interop/README.md): zkcoord against the
# real Apache Curator (Java) and kazoo (Python) libraries, each test on its own
# local 3-node ZooKeeper ensemble, one test at a time.
#
#   run-interop.sh [TEST...]      TEST: t1 .. t6 or a script name; default all
#
# `make check-interop` runs it with top_builddir/top_srcdir set. Env:
#   CI=true              a missing runtime (java/javac, Curator jars, kazoo) fails
#                        instead of skipping
#   INTEROP_PYTHON       Python with kazoo (default /usr/bin/python3: the python3
#                        first on PATH may be another interpreter without kazoo)
#   INTEROP_JARS         directory of the Curator/ZooKeeper jars (/usr/share/java)
#   INTEROP_TEST_TIMEOUT seconds per test before it is killed (default 150)
#   INTEROP_KEEP=1       keep the work directory even when everything passed
# Exit status: 0 all passed or skipped, 1 a failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=$(cd "${top_srcdir:-$here/../..}" && pwd)
top_builddir=$(cd "${top_builddir:-$top_srcdir}" && pwd)
build=$top_builddir/tests/interop
export INTEROP_SRC=$here
export ZK_ENSEMBLE=$top_builddir/tests/harness/zk-ensemble
export ZKC_INTEROP=$build/zkc_interop
T_START=$(date +%s%N)
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
secs() { printf '%d.%01d s' $(($1 / 1000)) $(($1 % 1000 / 100)); }

for f in "$ZK_ENSEMBLE" "$ZKC_INTEROP"; do
    if [ ! -x "$f" ]; then
        echo "run-interop: $f is not built (run: make check-interop)" >&2
        exit 1
    fi
done

# ---- the checker needs any python3 (standard library only) ----
PY_DEFAULT=${INTEROP_PYTHON:-/usr/bin/python3}
if [ -x "$PY_DEFAULT" ]; then CHECK_PY=$PY_DEFAULT; else CHECK_PY=$(command -v python3 || true); fi
export CHECK_PY

# ---- kazoo ----
PY=""
if [ -x "$PY_DEFAULT" ] && "$PY_DEFAULT" -c 'import kazoo' 2>/dev/null; then
    PY=$PY_DEFAULT
    echo "run-interop: kazoo $("$PY" -c 'import kazoo.version as v; print(v.__version__)' 2>/dev/null) with $PY"
else
    echo "run-interop: no kazoo for $PY_DEFAULT (Debian: apt-get install python3-kazoo)"
fi
export PY PY_WANTED=$PY_DEFAULT

# ---- Java + Curator: compile Interop.java into the build tree ----
JAVA_CP=""
jars=${INTEROP_JARS:-/usr/share/java}
cp=""
missing=""
for j in curator-recipes curator-framework curator-client zookeeper zookeeper-jute guava slf4j-api; do
    if [ -f "$jars/$j.jar" ]; then cp="$cp:$jars/$j.jar"; else missing="$missing $j.jar"; fi
done
[ -f "$jars/slf4j-simple.jar" ] && cp="$cp:$jars/slf4j-simple.jar"
if ! command -v java >/dev/null || ! command -v javac >/dev/null; then
    echo "run-interop: no java/javac (Debian: apt-get install default-jdk-headless)"
elif [ -n "$missing" ]; then
    echo "run-interop: missing in $jars:$missing (Debian: apt-get install libcurator-recipes-java libcurator-framework-java)"
else
    classes=$build/classes
    mkdir -p "$classes"
    if [ ! -f "$classes/Interop.class" ] || [ "$here/Interop.java" -nt "$classes/Interop.class" ]; then
        t=$(date +%s%N)
        if ! javac -nowarn -d "$classes" -cp "${cp#:}" "$here/Interop.java"; then
            echo "run-interop: FAIL: javac could not compile $here/Interop.java" >&2
            exit 1
        fi
        echo "run-interop: compiled Interop.java in $(secs "$(ms_since "$t")")"
    fi
    JAVA_CP="$classes$cp"
    ver=$(cd "$jars" && ls curator-recipes-[0-9]*.jar 2>/dev/null | sed 's/^curator-recipes-//; s/\.jar$//' | head -1)
    echo "run-interop: $(java -version 2>&1 | head -1), Curator ${ver:-(unknown version)}"
fi
export JAVA_CP

if [ -z "$CHECK_PY" ]; then
    echo "run-interop: FAIL: no python3 for the log checker" >&2
    exit 1
fi
if ! "$CHECK_PY" "$here/check_log.py" selftest; then
    echo "run-interop: FAIL: the log checker's self-test" >&2
    exit 1
fi

ALL="t1-mutex-curator t2-mutex-kazoo t3-rwlock-curator t4-semaphore-curator t5-counters t6-mixed-warning t7-election-curator"
sel=""
if [ $# -eq 0 ]; then
    sel=$ALL
else
    for a in "$@"; do
        m=""
        for t in $ALL; do
            case $t in "$a" | "$a"-* | "${a%.sh}") m=$t ;; esac
        done
        [ -n "$m" ] || { echo "run-interop: unknown test $a (have: $ALL)" >&2; exit 2; }
        sel="$sel $m"
    done
fi

workroot=$(mktemp -d "${TMPDIR:-/tmp}/zkc-interop.XXXXXX")
timeout_s=${INTEROP_TEST_TIMEOUT:-150}
pass=0 failn=0 skip=0 summary=""
for t in $sel; do
    export WORK=$workroot/$t
    mkdir -p "$WORK"
    echo "=== $t"
    ts=$(date +%s%N)
    rc=0
    timeout -k 10 "$timeout_s" bash "$here/$t.sh" || rc=$?
    # Safety net: a test killed by the timeout leaves its (detached) servers.
    if [ -f "$WORK/ens/state" ]; then "$ZK_ENSEMBLE" stop --dir "$WORK/ens" >/dev/null 2>&1 || true; fi
    took=$(secs "$(ms_since "$ts")")
    case $rc in
    0) v=PASS; pass=$((pass + 1)) ;;
    77) v=SKIP; skip=$((skip + 1)) ;;
    124 | 137) v="FAIL (killed after ${timeout_s} s)"; failn=$((failn + 1)) ;;
    *) v="FAIL (exit $rc)"; failn=$((failn + 1)) ;;
    esac
    echo "=== $t: $v in $took"
    summary="$summary$(printf '  %-22s %-28s %s' "$t" "$v" "$took")\n"
done
echo "=== interop summary: $pass passed, $failn failed, $skip skipped in $(secs "$(ms_since "$T_START")")"
printf "%b" "$summary"
if [ $failn -ne 0 ] || [ "${INTEROP_KEEP:-0}" = 1 ]; then
    echo "run-interop: work files kept in $workroot"
else
    rm -rf "$workroot"
fi
[ $failn -eq 0 ]
