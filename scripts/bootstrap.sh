#!/usr/bin/env bash
# Everything a fresh Debian 12 machine needs to build and test zkcoord:
# installs the Debian packages that are missing (when running as root),
# then autoreconf, configure and make. Idempotent; fast when nothing changed.
#   scripts/bootstrap.sh [--with-test-deps] [configure args...]
set -euo pipefail
cd "$(dirname "$0")/.."

build_pkgs=(build-essential autoconf automake libtool pkg-config libzookeeper-mt-dev check)
# The servers the tests and the demo start, and the interop peers.
run_pkgs=(zookeeper default-jre-headless)
test_pkgs=(valgrind clang libclang-rt-14-dev python3-kazoo libcurator-framework-java
           libcurator-recipes-java default-jdk-headless debootstrap iproute2 python3-matplotlib
           python3-prometheus-client)

want=("${build_pkgs[@]}" "${run_pkgs[@]}")
if [ "${1:-}" = "--with-test-deps" ]; then
    shift
    want+=("${test_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "bootstrap: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
        echo "bootstrap: run as root, or: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi

if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
    autoreconf -fi >/dev/null
fi
if [ ! -f Makefile ] || [ configure -nt config.status ] ||
   { [ $# -gt 0 ] && [ "$(./config.status --config 2>/dev/null)" != "$*" ]; }; then
    ./configure -q "$@"
fi
make -j"$(nproc)" >/dev/null
make -j"$(nproc)" check TESTS= >/dev/null   # build test programs without running them
