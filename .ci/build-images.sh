#!/usr/bin/env bash
# Builds every Blixard image: the shared recipe once (k8s/docker/base.Dockerfile -> `blixard-base`),
# then each app's thin Dockerfile on top of it (apps/<app>/Dockerfile -> blixard/<app>:<tag>).
#
#   .ci/build-images.sh                    # every app; docker when its engine runs, else podman
#   .ci/build-images.sh gateway cli        # only these apps (the base is always built first)
#   .ci/build-images.sh node-base          # podman only: just the local Node base image
#   .ci/build-images.sh sizes              # print each built image's size
#   .ci/build-images.sh env                # print CONTAINER_ENGINE=... (and CONTAINERS_CONF=...)
#
# Environment:
#   BLIXARD_IMAGE_TAG   tag of the app images (default: dev, what k8s/overlays/dev and compose use)
#   CONTAINER_ENGINE    docker | podman (default: docker if a Docker engine answers, else podman)
#   NODE_IMAGE          Node base of both build and runtime stages. Default with docker:
#                       node:20-bookworm-slim. Default with podman: a local image made from this
#                       machine's own Node and Debian files (no registry is reachable in CI, see
#                       ../shared/STACK.md): localhost/blixard-node:<node version>.
#   PNPM_STORE          a pnpm store to install from (podman: default `pnpm store path`'s parent),
#                       mounted into the build so nothing is downloaded twice.
#
# Podman needs runc and `default_ulimits = []` on these machines: .ci/podman-engine.sh writes
# that containers.conf, and this script uses it when CONTAINERS_CONF is not set.
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=${BLIXARD_IMAGE_TAG:-dev}
# Bump when node_base() changes: an older local base image is then rebuilt.
NODE_BASE_RECIPE=4

say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

choose_engine() {
  if [ -n "${CONTAINER_ENGINE:-}" ]; then echo "$CONTAINER_ENGINE"; return; fi
  # `docker` may be the Docker CLI talking to podman's compatible API (DOCKER_HOST from
  # .ci/podman-engine.sh): that engine builds with podman, from the local Node base.
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    # Captured first: with pipefail, `docker version | grep -q` fails when grep stops reading early.
    local version
    version=$(docker version 2>/dev/null || true)
    if ! grep -qi 'podman engine' <<<"$version"; then
      echo docker
      return
    fi
  fi
  command -v podman >/dev/null && { echo podman; return; }
  die "no container engine: install Docker, or podman (+ runc) and run .ci/podman-engine.sh start"
}
ENGINE=$(choose_engine)

if [ "$ENGINE" = podman ] && [ -z "${CONTAINERS_CONF:-}" ]; then
  engine_env=$(.ci/podman-engine.sh env)
  eval "$engine_env"
fi

# Every app with a Dockerfile; its image is blixard/<folder name>.
all_apps() {
  local f
  for f in apps/*/Dockerfile; do basename "$(dirname "$f")"; done
}

# A Node base image from this machine's own files, for podman where no registry is reachable: the
# node binary and npm of the host's install, the shared libraries it links (ldd), busybox
# (Debian's busybox-static: sh and the coreutils the build stage runs), the CA bundle, and a
# `node` user with uid 1000 as in the official node images. Debian's merged /usr layout. Node also
# trusts the machine's CA bundle (NODE_EXTRA_CA_CERTS), as on the host: a TLS-inspecting proxy
# between these machines and the npm registry is then trusted inside the build too.
node_base() {
  local node_bin node_version tag have rootfs
  node_bin=$(readlink -f "$(command -v node)")
  node_version=$("$node_bin" -p process.versions.node)
  tag="localhost/blixard-node:$node_version"
  have=$(podman image inspect --format '{{ index .Labels "io.blixard.node-base" }}' "$tag" 2>/dev/null || true)
  if [ "$have" = "$NODE_BASE_RECIPE" ]; then echo "$tag"; return; fi

  [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 ||
    die "a static /bin/busybox is needed for the local Node base image (Debian: apt-get install busybox-static)"
  local npm_dir
  npm_dir=$(dirname "$node_bin")/../lib/node_modules/npm
  [ -f "$npm_dir/bin/npm-cli.js" ] || die "npm not found next to $node_bin ($npm_dir)"

  say "making $tag from this machine's Node $node_version and Debian files"
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' RETURN
  mkdir -p "$rootfs"/usr/{bin,sbin,lib,lib64,local/bin,local/lib} "$rootfs"/{etc/ssl/certs,tmp,root,home/node,proc,sys,dev,run,var/tmp}
  ln -s usr/bin "$rootfs/bin"; ln -s usr/sbin "$rootfs/sbin"; ln -s usr/lib "$rootfs/lib"; ln -s usr/lib64 "$rootfs/lib64"
  chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"

  cp "$node_bin" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules"
  cp -a "$(readlink -f "$npm_dir")" "$rootfs/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

  # The libraries node links and every shared library of Debian's libc6 (as in any Debian image:
  # pnpm's native binary, for one, links librt), at their real (merged-/usr) paths.
  local lib real libc_libs=()
  command -v dpkg >/dev/null && mapfile -t libc_libs < <(dpkg -L libc6 | grep -E '^/(usr/)?lib[^/]*/.*\.so(\.[0-9]+)*$' | grep -v /gconv/)
  for lib in $(ldd "$node_bin" | grep -o '/[^ ]*') "${libc_libs[@]}"; do
    [ -e "$lib" ] || continue
    real="$(readlink -f "$(dirname "$lib")")/$(basename "$lib")"
    mkdir -p "$rootfs$(dirname "$real")"
    cp -L "$lib" "$rootfs$real"
  done

  cp /bin/busybox "$rootfs/usr/bin/busybox"
  local applet
  for applet in $(/bin/busybox --list); do
    [ -e "$rootfs/usr/bin/$applet" ] || ln -s busybox "$rootfs/usr/bin/$applet"
  done

  cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  [ -f /etc/os-release ] && cp -L /etc/os-release "$rootfs/etc/os-release"
  printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
  chown 1000:1000 "$rootfs/home/node"

  tar -C "$rootfs" --numeric-owner -c . | podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV NODE_VERSION=$node_version" \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["node"]' \
    --change "LABEL io.blixard.node-base=$NODE_BASE_RECIPE" \
    - "$tag" >/dev/null
  echo "$tag"
}

build() {
  # podman: Docker image format, or HEALTHCHECK is dropped; host network for the npm registry.
  if [ "$ENGINE" = podman ]; then
    podman build --format docker --network host --layers "$@"
  else
    docker build "$@"
  fi
}

build_base() {
  local node_image=${NODE_IMAGE:-}
  local extra=()
  if [ "$ENGINE" = podman ]; then
    [ -n "$node_image" ] || node_image=$(node_base)
    local store=${PNPM_STORE:-}
    if [ -z "$store" ] && command -v pnpm >/dev/null; then store=$(dirname "$(pnpm store path)"); fi
    # The build stage installs with store-dir /pnpm/store: the host's store there means nothing
    # is downloaded that `pnpm install` on this machine already fetched.
    [ -n "$store" ] && [ -d "$store" ] && extra+=(-v "$store:/pnpm/store")
  fi
  [ -n "$node_image" ] && extra+=(--build-arg "NODE_IMAGE=$node_image")
  say "building blixard-base (k8s/docker/base.Dockerfile) with $ENGINE${node_image:+ from $node_image}"
  build "${extra[@]}" -f k8s/docker/base.Dockerfile -t blixard-base -t "blixard/base:$TAG" .
}

build_app() {
  local app=$1
  [ -f "apps/$app/Dockerfile" ] || die "apps/$app/Dockerfile does not exist"
  say "building blixard/$app:$TAG (apps/$app/Dockerfile)"
  # The app Dockerfiles copy nothing: an empty context keeps these builds instant.
  local ctx
  ctx=$(mktemp -d)
  build -f "apps/$app/Dockerfile" -t "blixard/$app:$TAG" "$ctx"
  rmdir "$ctx"
}

sizes() {
  local app
  for app in base $(all_apps); do
    "$ENGINE" image inspect --format "blixard/$app:$TAG {{.Size}}" "blixard/$app:$TAG" 2>/dev/null |
      awk '{ printf "%-34s %7.1f MB\n", $1, $2 / 1e6 }'
  done
}

# One build at a time per machine (CI's pre-build and a test run may overlap).
lock() {
  exec 8>"${TMPDIR:-/tmp}/blixard-build-images.lock"
  flock -w 1800 8 || die "another .ci/build-images.sh did not finish within 30 minutes"
}

case "${1:-all}" in
  node-base)
    [ "$ENGINE" = podman ] || die "node-base is for podman (with docker, NODE_IMAGE defaults to node:20-bookworm-slim)"
    lock
    node_base
    ;;
  sizes)
    sizes
    ;;
  env)
    echo "CONTAINER_ENGINE=$ENGINE"
    if [ "$ENGINE" = podman ]; then echo "CONTAINERS_CONF=$CONTAINERS_CONF"; fi
    ;;
  all)
    lock
    build_base
    for app in $(all_apps); do build_app "$app"; done
    sizes
    ;;
  *)
    lock
    build_base
    for app in "$@"; do build_app "$app"; done
    ;;
esac
