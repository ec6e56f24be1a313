#!/usr/bin/env bash
# Build a ZooKeeper 3.8 image from Debian packages, for machines that reach no
# container registry.
#
#   docker/zookeeper-local/build.sh [--force] [--image NAME:TAG]
#
# Two ways to get the packages' files (ZKC_LOCAL_FROM, default auto: host when
# zookeeper and openjdk-17-jre-headless are installed here, else debootstrap):
#   host        copy them from this machine's installed packages with
#               rootfs-from-host.sh (no network; ~30 s here, see docker/README.md);
#               the image has no dpkg database.
#   debootstrap download and unpack them from the Debian mirror (~10 min here).
# What debootstrap mode does:
#   1. debootstrap --variant=minbase --include=zookeeper,... bookworm ROOTFS MIRROR
#      MIRROR is read at run time from this machine's apt sources (the entry that
#      lists suite "bookworm" and component "main"); ZKC_DEBIAN_MIRROR overrides it.
#   2. swaps zookeeper's dependency default-jre (GUI JRE) for an empty package
#      that depends on default-jre-headless and lets apt autoremove the rest,
#      trims the rootfs (apt lists and caches, docs, man pages, locales),
#      installs docker-entrypoint.sh (same environment variables as the official
#      `zookeeper` image), then
#   3. tar -C ROOTFS -c . | docker import --change ... - IMAGE
#
# The image carries the label org.zkcoord.inputs=<sha256 of build.sh and
# docker-entrypoint.sh>. When IMAGE already exists with the current hash the
# build is skipped (a re-run is instant); --force rebuilds anyway.
#
# Needs: root (debootstrap), docker, debootstrap (installed with apt-get when
# missing and we are root; set ZKC_NO_APT=1 to forbid that), about 1.5 GB free
# under ZKC_BUILD_TMPDIR (default /var/tmp) while building.
#
# Environment:
#   ZKC_LOCAL_FROM            auto (default), host or debootstrap (above)
#   ZKC_LOCAL_IMAGE           image name (default zkcoord/zookeeper-local:3.8)
#   ZKC_DEBIAN_MIRROR         mirror URL (default: from /etc/apt/sources.list*)
#   ZKC_BUILD_TMPDIR          where the temporary rootfs goes (default /var/tmp)
#   ZKC_DEBOOTSTRAP_TIMEOUT   seconds allowed for debootstrap (default 900)
#   ZKC_NO_APT=1              never apt-get install debootstrap
#   ZKC_FULL_JRE=1            keep Debian's full default-jre (adds ~200 MB of
#                             X11/GTK/Mesa libraries a server never loads)
#
# Messages go to stderr; nothing is printed on stdout.
set -euo pipefail
shopt -s inherit_errexit

prog=zookeeper-local/build.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
image=${ZKC_LOCAL_IMAGE:-zkcoord/zookeeper-local:3.8}
suite=bookworm
# zookeeper depends on default-jre; default-jre-headless is listed so the JRE
# choice is explicit and debootstrap's resolver never has to pick an alternative.
include=zookeeper,default-jre-headless
force=0

log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --force) force=1 ;;
        --image) [[ $# -ge 2 ]] || die "--image needs a value"; image=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 0 ;;
        *) die "unknown argument: $1 (try --help)" ;;
    esac
    shift
done

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "cannot talk to the Docker daemon (is it running? are you root or in group docker?)"

host_has_packages() {
    local p
    for p in zookeeper openjdk-17-jre-headless; do
        [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || return 1
    done
}
from=${ZKC_LOCAL_FROM:-auto}
case $from in
    auto) if command -v dpkg-query >/dev/null && host_has_packages; then from=host; else from=debootstrap; fi ;;
    host) host_has_packages || die "ZKC_LOCAL_FROM=host: zookeeper and openjdk-17-jre-headless must be installed here" ;;
    debootstrap) ;;
    *) die "ZKC_LOCAL_FROM must be auto, host or debootstrap (got '$from')" ;;
esac
# The image is rebuilt when these change: the scripts, how it is built, and in
# host mode the host's package versions.
inputs_hash=$( {
    cat "$here/build.sh" "$here/docker-entrypoint.sh" "$here/rootfs-from-host.sh"
    echo "from=$from"
    [[ $from == host ]] && dpkg-query -W -f='${Package}=${Version}\n' zookeeper openjdk-17-jre-headless
} | sha256sum | cut -c1-64)
label_key=org.zkcoord.inputs

current_hash() {
    docker image inspect -f "{{ index .Config.Labels \"$label_key\" }}" "$image" 2>/dev/null || true
}

if [[ $force -eq 0 && "$(current_hash)" == "$inputs_hash" ]]; then
    log "$image is up to date (inputs ${inputs_hash:0:12}); nothing to do (--force rebuilds)"
    exit 0
fi

[[ $(id -u) -eq 0 ]] || die "must run as root (to keep the files' owners in the image)"

# One build at a time on this machine (CI and a developer may race).
lockfile=${ZKC_BUILD_TMPDIR:-/var/tmp}/zkcoord-zookeeper-local.lock
exec 9>"$lockfile"
if ! flock -w 1800 9; then
    die "another build holds $lockfile for more than 30 minutes"
fi
# Someone else may have built it while we waited.
if [[ $force -eq 0 && "$(current_hash)" == "$inputs_hash" ]]; then
    log "$image was built by a concurrent run (inputs ${inputs_hash:0:12}); nothing to do"
    exit 0
fi

if [[ $from == debootstrap ]]; then # ---- up to "Build": debootstrap mode only
if ! command -v debootstrap >/dev/null; then
    [[ ${ZKC_NO_APT:-0} != 1 ]] || die "debootstrap is not installed (apt-get install -y debootstrap)"
    command -v apt-get >/dev/null || die "debootstrap is not installed and there is no apt-get"
    log "installing debootstrap with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get install -y -q debootstrap >&2 ||
        { timeout 300 apt-get update -q >&2 && timeout 300 apt-get install -y -q debootstrap >&2; } ||
        die "could not install debootstrap (apt-get install -y debootstrap)"
fi

# --- Mirror: from this machine's own apt sources, never hard-coded. ---------
# Prints "URI<TAB>SIGNED-BY" of the first enabled deb entry whose suites include
# exactly $suite and whose components include main.
find_mirror() {
    local f
    # One-line style: deb [opts] URI SUITE COMPONENT...
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r $f ]] || continue
        awk -v suite="$suite" '
            { sub(/#.*/, "") }
            $1 != "deb" { next }
            {
                i = 2; signed = ""
                if ($i ~ /^\[/) {
                    opts = ""
                    while (i <= NF) { opts = opts " " $i; if ($i ~ /\]$/) { i++; break } i++ }
                    if (match(opts, /signed-by=[^] ]+/)) signed = substr(opts, RSTART + 10, RLENGTH - 10)
                }
                uri = $i; s = $(i + 1)
                if (s != suite) next
                for (j = i + 2; j <= NF; j++) if ($j == "main") { print uri "\t" signed; exit }
            }' "$f"
    done
    # deb822 style (.sources): stanzas separated by blank lines.
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r $f ]] || continue
        awk -v suite="$suite" '
            function flush(   n, a, i, okS, okC, okT) {
                if (uris != "" && enabled != "no") {
                    okT = 0; n = split(types, a, /[ \t]+/); for (i = 1; i <= n; i++) if (a[i] == "deb") okT = 1
                    okS = 0; n = split(suites, a, /[ \t]+/); for (i = 1; i <= n; i++) if (a[i] == suite) okS = 1
                    okC = 0; n = split(comps, a, /[ \t]+/); for (i = 1; i <= n; i++) if (a[i] == "main") okC = 1
                    if (okT && okS && okC) { split(uris, a, /[ \t]+/); print a[1] "\t" signed; found = 1; exit }
                }
                types = uris = suites = comps = signed = enabled = ""; last = ""
            }
            /^#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]/ { next }               # continuation line (multi-line Signed-By key)
            {
                key = tolower($0); sub(/:.*/, "", key)
                val = $0; sub(/^[^:]*:[ \t]*/, "", val); sub(/[ \t]+$/, "", val)
                if (key == "types") types = val
                else if (key == "uris") uris = val
                else if (key == "suites") suites = val
                else if (key == "components") comps = val
                else if (key == "enabled") enabled = tolower(val)
                else if (key == "signed-by" && val ~ /^\//) signed = val
            }
            END { if (!found) flush() }' "$f"
    done
}

if [[ -n ${ZKC_DEBIAN_MIRROR:-} ]]; then
    mirror=$ZKC_DEBIAN_MIRROR keyring= mirror_from=ZKC_DEBIAN_MIRROR
else
    IFS=$'\t' read -r mirror keyring < <(find_mirror | head -n1) || true
    mirror_from="the machine's apt sources"
fi
[[ -n ${mirror:-} ]] ||
    die "no apt source for '$suite' with component 'main' in /etc/apt/sources.list or /etc/apt/sources.list.d/; set ZKC_DEBIAN_MIRROR"
case $mirror in
    http://*|https://*|file:/*) ;;
    *) die "apt source URI '$mirror' is not http(s):// or file:/ (debootstrap cannot use it); set ZKC_DEBIAN_MIRROR" ;;
esac
keyring_opt=()
if [[ -n ${keyring:-} && -r $keyring ]]; then keyring_opt=(--keyring="$keyring"); fi
fi # debootstrap mode

# --- Build. ----------------------------------------------------------------
tmpbase=${ZKC_BUILD_TMPDIR:-/var/tmp}
rootfs=$(mktemp -d "$tmpbase/zkcoord-rootfs.XXXXXX")
cleanup() {
    local m
    # debootstrap may leave proc/sys mounted inside the rootfs when it fails.
    if [[ -d $rootfs ]]; then
        while read -r m; do
            umount -l "$m" 2>/dev/null || true
        done < <(awk -v r="$rootfs" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r)
        rm -rf --one-file-system "$rootfs"
    fi
    rm -f "$rootfs.log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$(date +%s)
if [[ $from == host ]]; then
    log "building $image (inputs ${inputs_hash:0:12}) from this machine's installed packages"
    log "rootfs: $rootfs"
    versions=$("$here/rootfs-from-host.sh" "$rootfs") || die "rootfs-from-host.sh failed"
    zk_version=${versions#zookeeper=}; zk_version=${zk_version%% *}
    jre_version=${versions##*openjdk=}
    t1=$(date +%s)
    log "rootfs from the host's packages in $((t1 - t0))s"
else # debootstrap mode, up to the trim
log "building $image (inputs ${inputs_hash:0:12}) from Debian $suite packages: $include"
log "mirror: $mirror (from $mirror_from)"
log "rootfs: $rootfs"
dbs_timeout=${ZKC_DEBOOTSTRAP_TIMEOUT:-900}
rc=0
timeout "$dbs_timeout" debootstrap --variant=minbase --include="$include" \
    "${keyring_opt[@]}" "$suite" "$rootfs" "$mirror" > "$rootfs.log" 2>&1 || rc=$?
if [[ $rc -ne 0 ]]; then
    tail -n 25 "$rootfs.log" >&2 || true
    [[ -r $rootfs/debootstrap/debootstrap.log ]] && tail -n 25 "$rootfs/debootstrap/debootstrap.log" >&2
    rm -f "$rootfs.log"
    [[ $rc -eq 124 ]] && die "debootstrap did not finish within ${dbs_timeout}s (ZKC_DEBOOTSTRAP_TIMEOUT)"
    die "debootstrap failed (exit $rc); see the lines above"
fi
rm -f "$rootfs.log"
t1=$(date +%s)
log "debootstrap done in $((t1 - t0))s"

[[ -r $rootfs/usr/share/java/zookeeper.jar ]] || die "rootfs has no /usr/share/java/zookeeper.jar"
[[ -x $rootfs/usr/bin/java ]] || die "rootfs has no /usr/bin/java"
zk_version=$(chroot "$rootfs" dpkg-query -W -f='${Version}' zookeeper)
jre_version=$(chroot "$rootfs" dpkg-query -W -f='${Version}' openjdk-17-jre-headless 2>/dev/null || echo unknown)
grep -q '^zookeeper:' "$rootfs/etc/passwd" || die "the zookeeper package did not create user zookeeper"

# zookeeper depends on default-jre, the full JRE with X11, GTK and Mesa (about
# 200 MB a server never loads). Put an empty default-jre in its place that
# depends on default-jre-headless, then let apt remove what nothing needs any
# more. dpkg's state stays consistent, so apt still works in a derived image.
inchroot() { DEBIAN_FRONTEND=noninteractive LC_ALL=C chroot "$rootfs" "$@"; }
slim_jre() {
    local ver hver provides arch pkg=/tmp/zkcoord-default-jre
    ver=$(inchroot dpkg-query -W -f='${Version}' default-jre) || return 1
    hver=$(inchroot dpkg-query -W -f='${Version}' default-jre-headless) || return 1
    provides=$(inchroot dpkg-query -W -f='${Provides}' default-jre) || return 1
    arch=$(inchroot dpkg --print-architecture) || return 1
    mkdir -p "$rootfs$pkg/DEBIAN"
    {
        echo "Package: default-jre"
        echo "Version: ${ver}+zkcoord1"
        echo "Architecture: $arch"
        echo "Maintainer: zkcoord build.sh <root@localhost>"
        echo "Depends: default-jre-headless (= $hver)"
        [[ -n $provides ]] && echo "Provides: $provides"
        echo "Section: java"
        echo "Priority: optional"
        echo "Description: zkcoord placeholder for default-jre"
        echo " ZooKeeper only needs the headless Java runtime."
    } > "$rootfs$pkg/DEBIAN/control"
    inchroot dpkg-deb --build "$pkg" "$pkg.deb" >/dev/null || return 1
    inchroot dpkg -i "$pkg.deb" >/dev/null || return 1
    rm -rf "$rootfs$pkg" "$rootfs$pkg.deb"
    # Everything but required/important packages and what we asked for is "auto".
    local auto
    mapfile -t auto < <(inchroot dpkg-query -W -f='${Package} ${Priority}\n' |
        awk '$2 != "required" && $2 != "important" { print $1 }')
    inchroot apt-mark auto "${auto[@]}" >/dev/null || return 1
    inchroot apt-mark manual zookeeper default-jre default-jre-headless >/dev/null || return 1
    printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"; chmod 755 "$rootfs/usr/sbin/policy-rc.d"
    if ! inchroot apt-get -y -q -o Dpkg::Use-Pty=0 autoremove --purge > "$rootfs/tmp/autoremove.log" 2>&1; then
        tail -n 20 "$rootfs/tmp/autoremove.log" >&2; return 1
    fi
    rm -f "$rootfs/usr/sbin/policy-rc.d" "$rootfs/tmp/autoremove.log"
    inchroot apt-get -q check >/dev/null || return 1
    inchroot dpkg-query -W openjdk-17-jre-headless >/dev/null || return 1
}
if [[ ${ZKC_FULL_JRE:-0} != 1 ]]; then
    slim_jre || die "could not replace default-jre by default-jre-headless in the rootfs (ZKC_FULL_JRE=1 skips this step)"
    log "replaced default-jre (GUI JRE) by default-jre-headless; $(inchroot dpkg-query -W -f='.\n' | wc -l) packages left"
fi
fi # debootstrap mode

# Trim: apt lists and caches, docs, man pages, translations. Keep copyright files.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
       "$rootfs"/var/log/* "$rootfs"/debootstrap \
       "$rootfs"/usr/share/man "$rootfs"/usr/share/info "$rootfs"/usr/share/lintian "$rootfs"/usr/share/linda \
       "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/zookeeper/zooinspector "$rootfs"/usr/bin/zooinspector
if [[ -d $rootfs/usr/share/doc ]]; then
    find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
fi
if [[ $from == debootstrap ]]; then
mkdir -p "$rootfs/var/lib/apt/lists/partial" "$rootfs/var/cache/apt/archives/partial"
# Keep it that way if someone installs more packages in a derived image.
cat > "$rootfs/etc/dpkg/dpkg.cfg.d/zkcoord-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
EOF
cat > "$rootfs/etc/apt/apt.conf.d/zkcoord-clean" <<'EOF'
APT::Install-Recommends "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
EOF
# Do not ship this machine's mirror, resolver or host name in the image.
printf '# emptied by zkcoord build.sh: add a Debian %s source here to use apt\n' "$suite" > "$rootfs/etc/apt/sources.list"
fi
: > "$rootfs/etc/resolv.conf"
printf 'zookeeper\n' > "$rootfs/etc/hostname"

# Entrypoint and the directories the official image has.
install -D -m 0755 "$here/docker-entrypoint.sh" "$rootfs/usr/local/bin/docker-entrypoint.sh"
ln -sf usr/local/bin/docker-entrypoint.sh "$rootfs/docker-entrypoint.sh"
mkdir -p "$rootfs/conf" "$rootfs/data" "$rootfs/datalog" "$rootfs/logs"
chroot "$rootfs" chown zookeeper: /conf /data /datalog /logs
du_mb=$(du -sm --one-file-system "$rootfs" | cut -f1)
log "rootfs trimmed to ${du_mb} MB (zookeeper $zk_version, openjdk $jre_version)"

old_id=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
new_id=$(tar --numeric-owner --xattrs -C "$rootfs" -c . | docker import \
    --change 'ENTRYPOINT ["/docker-entrypoint.sh"]' \
    --change 'CMD ["zkServer.sh", "start-foreground"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/share/zookeeper/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV ZOO_CONF_DIR=/conf ZOO_DATA_DIR=/data ZOO_DATA_LOG_DIR=/datalog ZOO_LOG_DIR=/logs' \
    --change 'ENV ZOO_TICK_TIME=2000 ZOO_INIT_LIMIT=5 ZOO_SYNC_LIMIT=2 ZOO_AUTOPURGE_PURGEINTERVAL=0 ZOO_AUTOPURGE_SNAPRETAINCOUNT=3' \
    --change 'ENV ZOO_MAX_CLIENT_CNXNS=60 ZOO_STANDALONE_ENABLED=true ZOO_ADMINSERVER_ENABLED=true' \
    --change 'EXPOSE 2181 2888 3888 8080' \
    --change 'VOLUME ["/data", "/datalog", "/logs"]' \
    --change 'WORKDIR /' \
    --change "LABEL $label_key=$inputs_hash" \
    --change "LABEL org.zkcoord.zookeeper.version=$zk_version" \
    --change "LABEL org.zkcoord.debian.suite=$suite" \
    --change "LABEL org.zkcoord.built-from=$from" \
    -m "zkcoord: ZooKeeper $zk_version from Debian $suite packages ($from)" \
    - "$image") || die "docker import failed"
t2=$(date +%s)

# Drop the image this one replaces, if nothing else uses it.
if [[ -n $old_id && $old_id != "$new_id" ]]; then
    docker image rm "$old_id" >/dev/null 2>&1 || true
fi

size=$(docker image inspect -f '{{.Size}}' "$image")
log "built $image (${new_id#sha256:}) size $((size / 1000000)) MB in $((t2 - t0))s" \
    "($from $((t1 - t0))s, trim+import $((t2 - t1))s)"
