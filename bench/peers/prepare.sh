#!/usr/bin/env bash
# zkcoord-bench --peers runs this once: find what the Curator and kazoo peers
# need, compile CuratorPeer.java into OUTDIR (when stale), and say on stdout,
# one line per peer, either
#   curator ok CLASSPATH          kazoo ok PYTHON
# or
#   curator unavailable REASON    kazoo unavailable REASON
# The runtimes are the ones tests/interop uses (tests/interop/run-interop.sh):
# Debian's Curator jars and /usr/bin/python3 with python3-kazoo.
#   prepare.sh SRCDIR OUTDIR
# Env: ZKC_BENCH_JARS (default /usr/share/java), ZKC_BENCH_PEER_PYTHON
# (default /usr/bin/python3: the python3 first on PATH may lack kazoo).
set -u
src=$1 out=$2
jars=${ZKC_BENCH_JARS:-/usr/share/java}
py=${ZKC_BENCH_PEER_PYTHON:-/usr/bin/python3}

cp="" missing=""
for j in curator-recipes curator-framework curator-client zookeeper zookeeper-jute guava slf4j-api; do
    if [ -f "$jars/$j.jar" ]; then cp="$cp:$jars/$j.jar"; else missing="$missing $j.jar"; fi
done
[ -f "$jars/slf4j-simple.jar" ] && cp="$cp:$jars/slf4j-simple.jar"
if ! command -v java >/dev/null || ! command -v javac >/dev/null; then
    echo "curator unavailable no java/javac (Debian: apt-get install default-jdk-headless)"
elif [ -n "$missing" ]; then
    echo "curator unavailable missing in $jars:$missing (Debian: apt-get install libcurator-recipes-java libcurator-framework-java)"
else
    classes=$out/classes
    mkdir -p "$classes"
    if [ ! -f "$classes/CuratorPeer.class" ] || [ "$src/CuratorPeer.java" -nt "$classes/CuratorPeer.class" ]; then
        if ! err=$(javac -nowarn -d "$classes" -cp "${cp#:}" "$src/CuratorPeer.java" 2>&1); then
            echo "curator unavailable javac could not compile $src/CuratorPeer.java: $(echo "$err" | head -3 | tr '\n' ' ')"
            classes=""
        fi
    fi
    if [ -n "$classes" ]; then
        ver=$(cd "$jars" && ls curator-recipes-[0-9]*.jar 2>/dev/null | sed 's/^curator-recipes-//; s/\.jar$//' | head -1)
        echo "curator-version ${ver:-unknown}"
        echo "curator ok $classes$cp"
    fi
fi

if [ -x "$py" ] && ver=$("$py" -c 'import kazoo.version as v; print(v.__version__)' 2>/dev/null); then
    echo "kazoo-version $ver"
    echo "kazoo ok $py"
else
    echo "kazoo unavailable no kazoo for $py (Debian: apt-get install python3-kazoo)"
fi
