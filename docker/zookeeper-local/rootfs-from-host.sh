#!/usr/bin/env bash
# Fill ROOTFS with the files of this machine's installed Debian packages that a
# ZooKeeper server needs, instead of downloading and unpacking them again with
# debootstrap (which took ~9 min here, most of it debootstrap itself).
#
#   docker/zookeeper-local/rootfs-from-host.sh ROOTFS
#
# Called by build.sh (ZKC_LOCAL_FROM=host, or auto when the packages below are
# installed: scripts/bootstrap.sh installs them for the tests). What goes in:
#   - the dependency closure (Depends and Pre-Depends; for "a | b" the first
#     installed alternative) of zookeeper, default-jre-headless and the tools
#     the entrypoint and zkServer.sh/zkCli.sh use (bash, dash, coreutils,
#     util-linux for setpriv, sed, grep), minus what a headless server never
#     loads: default-jre and openjdk-17-jre (the GUI JRE that zookeeper depends
#     on), and packages that only matter to maintainer scripts (adduser,
#     debconf, ca-certificates-java: the image has no Java TLS trust store);
#   - every non-directory path `dpkg -L` lists for them, copied with tar (owners,
#     modes and symlinks kept), paths canonicalised so that a merged-/usr host
#     (/bin -> usr/bin) gives a merged-/usr image;
#   - what maintainer scripts would have made: /etc/passwd and /etc/group with
#     root and zookeeper (the host's uid and gid), the java and zookeeper-conf
#     alternatives as plain symlinks, /tmp.
# There is no dpkg database in the image: apt cannot be used in a derived image
# (build with ZKC_LOCAL_FROM=debootstrap for that).
#
# Prints the versions as "zookeeper=V openjdk=V" on stdout; messages on stderr.
set -euo pipefail
shopt -s inherit_errexit

prog=zookeeper-local/rootfs-from-host.sh
log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }

rootfs=${1:?usage: rootfs-from-host.sh ROOTFS}
[[ -d $rootfs ]] || die "$rootfs is not a directory"
roots=(zookeeper default-jre-headless bash dash coreutils util-linux sed grep base-files)
skip=" default-jre openjdk-17-jre ca-certificates-java adduser debconf "

# One dpkg-query for every installed package: name, then its dependency fields.
declare -A deps installed
while IFS=$'\t' read -r name status depends predepends; do
    [[ $status == installed ]] || continue
    installed[$name]=1
    deps[$name]="$depends, $predepends"
done < <(dpkg-query -W -f='${Package}\t${db:Status-Status}\t${Depends}\t${Pre-Depends}\n')

for p in "${roots[@]}"; do
    [[ -n ${installed[$p]:-} ]] || die "package $p is not installed on this machine (build with ZKC_LOCAL_FROM=debootstrap)"
done

# Breadth-first closure.
declare -A seen
queue=("${roots[@]}")
while [[ ${#queue[@]} -gt 0 ]]; do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    [[ -n ${seen[$p]:-} ]] && continue
    seen[$p]=1
    IFS=',' read -r -a groups <<< "${deps[$p]}"
    for group in "${groups[@]}"; do
        pick=
        IFS='|' read -r -a alts <<< "$group"
        for alt in "${alts[@]}"; do
            alt=${alt%%(*}; alt=${alt//[[:space:]]/}; alt=${alt%%:*}
            [[ -n $alt ]] || continue
            if [[ -n ${installed[$alt]:-} ]]; then pick=$alt; break; fi
        done
        [[ -n $pick ]] || continue    # virtual or absent: its provider is listed elsewhere
        [[ $skip == *" $pick "* ]] && continue
        [[ -z ${seen[$pick]:-} ]] && queue+=("$pick")
    done
done
pkgs=("${!seen[@]}")
log "${#pkgs[@]} installed packages in the closure of ${roots[*]}"

# Their files (not directories: tar makes the parents), canonical paths.
list=$(mktemp)
trap 'rm -f "$list"' EXIT
declare -A canon
dpkg -L "${pkgs[@]}" 2>/dev/null | while IFS= read -r f; do
    [[ $f == /* && ! -d $f || -L $f ]] || continue
    [[ -e $f || -L $f ]] || continue      # a conffile the admin removed, a diversion
    d=${f%/*}; d=${d:-/}
    [[ -n ${canon[$d]:-} ]] || canon[$d]=$(readlink -f "$d")
    printf '%s/%s\n' "${canon[$d]%/}" "${f##*/}"
done | sort -u | grep -vE '^/usr/share/(doc|man|info|locale|lintian)/|^/usr/share/zookeeper/zooinspector|^/usr/bin/zooinspector' \
    | sed 's|^/||' > "$list" || true
[[ -s $list ]] || die "dpkg -L listed no files"
tar -C / --no-recursion -cf - -T "$list" | tar -C "$rootfs" -xf -

# Merged /usr, as on the host.
for l in bin lib lib64 sbin; do
    if [[ -L /$l ]]; then ln -sfn "$(readlink "/$l")" "$rootfs/$l"; fi
done

# What maintainer scripts would have created.
IFS=: read -r _ _ zk_uid zk_gid _ < <(getent passwd zookeeper) || die "no user zookeeper on this machine (the zookeeper package makes it)"
mkdir -p "$rootfs/etc" "$rootfs/var/lib/zookeeper" "$rootfs/var/log/zookeeper"
printf 'root:x:0:0:root:/root:/bin/bash\nzookeeper:x:%s:%s:ZooKeeper:/var/lib/zookeeper:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' \
    "$zk_uid" "$zk_gid" > "$rootfs/etc/passwd"
printf 'root:x:0:\nzookeeper:x:%s:\nnogroup:x:65534:\n' "$zk_gid" > "$rootfs/etc/group"
printf 'root:*:19000:0:99999:7:::\nzookeeper:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n' > "$rootfs/etc/shadow"
chmod 640 "$rootfs/etc/shadow"
java=$(readlink -f /usr/bin/java)
[[ -x $rootfs$java ]] || java=$(dpkg -L openjdk-17-jre-headless | grep -m1 '/bin/java$')
[[ -x $rootfs$java ]] || die "no java binary from openjdk-17-jre-headless in the rootfs"
ln -sfn "$java" "$rootfs/usr/bin/java"
ln -sfn conf_example "$rootfs/etc/zookeeper/conf"
mkdir -p "$rootfs/tmp" "$rootfs/root" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev"
chmod 1777 "$rootfs/tmp"
chown "$zk_uid:$zk_gid" "$rootfs/var/lib/zookeeper" "$rootfs/var/log/zookeeper"

printf 'zookeeper=%s openjdk=%s\n' "$(dpkg-query -W -f='${Version}' zookeeper)" \
    "$(dpkg-query -W -f='${Version}' openjdk-17-jre-headless)"
