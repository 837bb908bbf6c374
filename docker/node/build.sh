#!/bin/sh
# Builds the broker node image (sshd in a Debian bookworm container) without any image registry.
#
#   build.sh [--force] [--refresh]
#
#   --force    rebuild the image even if it exists (the cached root file system is reused)
#   --refresh  also ignore the cached root file system and run debootstrap again
#
# Environment:
#   BROKER_NODE_IMAGE          tag to build                   (default broker-node:1)
#   BROKER_NODE_BASE           tag of the imported base       (default broker-node-base:1)
#   BROKER_IMAGE_CACHE         where the rootfs tarball lives (default /var/cache/broker-node)
#   BROKER_NODE_MIRROR         Debian mirror                  (default: from apt's sources)
#   BROKER_NODE_FROM_REGISTRY  1: build Dockerfile FROM debian:bookworm-slim instead (needs a registry)
#   DOCKER                     docker CLI to use              (default docker)
#
# Path without a registry: debootstrap (cached as a tarball) -> docker import -> docker build of
# Dockerfile.local, which adds the entrypoint and sshd configuration.
set -eu

IMAGE=${BROKER_NODE_IMAGE:-broker-node:1}
BASE=${BROKER_NODE_BASE:-broker-node-base:1}
CACHE=${BROKER_IMAGE_CACHE:-/var/cache/broker-node}
DOCKER=${DOCKER:-docker}
SUITE=bookworm
INCLUDE=openssh-server,rsync,ca-certificates,procps,iproute2,python3-minimal
HERE=$(cd "$(dirname "$0")" && pwd)

FORCE=0
REFRESH=0
for arg in "$@"; do
    case $arg in
        --force) FORCE=1 ;;
        --refresh) FORCE=1; REFRESH=1 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

log() { echo "build.sh: $*" >&2; }
have_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

if [ "$FORCE" = 0 ] && have_image "$IMAGE"; then
    log "$IMAGE exists"
    exit 0
fi

mkdir -p "$CACHE"
# Concurrent test processes may all find the image missing: one builds, the others wait and
# then find it.
exec 9>"$CACHE/build.lock"
flock 9
if [ "$FORCE" = 0 ] && have_image "$IMAGE"; then
    log "$IMAGE was built meanwhile"
    exit 0
fi

if [ "${BROKER_NODE_FROM_REGISTRY:-0}" = 1 ]; then
    log "building $IMAGE from $HERE/Dockerfile (pulls debian:bookworm-slim)"
    "$DOCKER" build -q -f "$HERE/Dockerfile" -t "$IMAGE" "$HERE" >&2
    exit 0
fi

# The Debian mirror apt already uses: it is the one this machine can reach.
mirror() {
    if [ -n "${BROKER_NODE_MIRROR:-}" ]; then
        echo "$BROKER_NODE_MIRROR"
        return
    fi
    m=
    if [ -r /etc/apt/sources.list.d/debian.sources ]; then
        m=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/debian.sources \
            | grep -v security | head -n 1 | awk '{print $1}')
    fi
    if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
        m=$(awk '$1 == "deb" && $0 !~ /security/ {
                for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { print $i; exit } }' /etc/apt/sources.list)
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

ARCH=$(dpkg --print-architecture 2>/dev/null || uname -m)
# The tarball's name carries what went into it, so changing the package list invalidates it.
KEY=$(printf '%s|%s|%s|minbase' "$SUITE" "$INCLUDE" "$ARCH" | sha256sum | cut -c1-12)
TARBALL="$CACHE/rootfs-$SUITE-$ARCH-$KEY.tar"

if [ "$REFRESH" = 1 ] || [ ! -s "$TARBALL" ]; then
    if ! command -v debootstrap >/dev/null 2>&1; then
        log "debootstrap is missing: install it (apt-get install -y debootstrap)," \
            "or set BROKER_NODE_FROM_REGISTRY=1 where a registry is reachable"
        exit 3
    fi
    MIRROR=$(mirror)
    ROOTFS=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$ROOTFS" "$TARBALL.partial"' EXIT
    log "debootstrap $SUITE from $MIRROR into $ROOTFS"
    debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOTFS" "$MIRROR" >&2
    # Nothing on a node reads these; dropping them makes the image about a third smaller.
    rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb \
        "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
        "$ROOTFS"/var/log/*.log "$ROOTFS"/etc/ssh/ssh_host_*
    tar --numeric-owner -C "$ROOTFS" -cf "$TARBALL.partial" .
    mv "$TARBALL.partial" "$TARBALL"
    rm -rf "$ROOTFS"
    trap - EXIT
else
    log "using cached root file system $TARBALL"
fi

log "importing $BASE"
"$DOCKER" import "$TARBALL" "$BASE" >/dev/null
log "building $IMAGE"
"$DOCKER" build -q -f "$HERE/Dockerfile.local" --build-arg "BASE=$BASE" -t "$IMAGE" "$HERE" >&2
log "built $IMAGE"
