#!/usr/bin/env bash
# A Docker-compatible container engine for the docker executor: podman's API service on a unix
# socket, plus the small local test image `localhost/blixard-test:latest`. Used by .ci/run, by the
# docker executor's tests (when no engine answers they run `start`), and by developers.
#
#   .ci/podman-engine.sh start    # install (root + apt) if missing, configure, import, serve
#   .ci/podman-engine.sh env      # start, then print `export BLIXARD_DOCKER_SOCKET=... DOCKER_HOST=...`
#   .ci/podman-engine.sh status   # exit 0 when the socket answers /_ping
#   .ci/podman-engine.sh stop     # stop the service this script started
#
# It also installs Debian's `docker-compose` (Compose v1, 1.29) when missing: Compose v2 (the
# `docker compose` plugin) has no Debian package and nothing else is reachable, and
# libs/testing/test/deploy-compose.int.test.ts brings docker-compose.yml up with it against this
# socket (Recommends skipped: they would pull in Docker's own engine, which does not run here).
#
# Why this shape (see ../shared/STACK.md, "containers"): Docker's own engine does not run on these
# machines, podman's does, but only with `runc` (the default crun fails) and a containers.conf
# with `default_ulimits = []`, passed through CONTAINERS_CONF so the host's podman setup is not
# changed. No image can be pulled from a registry here, so the test image is busybox (Debian's
# static build) imported from a local root filesystem. Idempotent: a second run only checks.
#
# Environment: BLIXARD_PODMAN_DIR (default /run/blixard-podman as root, else
# $XDG_RUNTIME_DIR/blixard-podman) holds the socket, the config, the log and a lock.
set -euo pipefail

if [ "$(id -u)" = 0 ]; then default_dir=/run/blixard-podman; else default_dir="${XDG_RUNTIME_DIR:-/tmp/blixard-podman-$(id -u)}/blixard-podman"; fi
ENGINE_DIR=${BLIXARD_PODMAN_DIR:-$default_dir}
SOCKET="$ENGINE_DIR/podman.sock"
export CONTAINERS_CONF="$ENGINE_DIR/containers.conf"
TEST_IMAGE=localhost/blixard-test:latest
# Bump when the image recipe below changes: an older image is then re-imported.
TEST_IMAGE_VERSION=1

say() { printf '%s\n' "$*" >&2; }

# /_ping over the unix socket, with node (always there: the project needs it), not curl.
ping_engine() {
  [ -S "$SOCKET" ] || return 1
  node -e '
    const req = require("node:http").get({ socketPath: process.argv[1], path: "/_ping", timeout: 2000 }, (res) => process.exit(res.statusCode === 200 ? 0 : 1));
    req.on("error", () => process.exit(1));
    req.on("timeout", () => process.exit(1));
  ' "$SOCKET"
}

install_packages() {
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null || [ -x /usr/sbin/runc ] || missing+=(runc)
  # The static busybox is the whole test image: it must not need a libc inside the rootfs.
  [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || missing+=(busybox-static)
  local compose=()
  command -v docker-compose >/dev/null || compose+=(docker-compose)
  [ ${#missing[@]} -eq 0 ] && [ ${#compose[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    if [ ${#missing[@]} -eq 0 ]; then
      # The engine works without it; only the compose test needs it (and fails saying so).
      say "warning: docker-compose missing and cannot be installed here (needs root and apt-get)"
      return 0
    fi
    say "error: ${missing[*]} missing and cannot be installed here (needs root and apt-get): install them, or point BLIXARD_DOCKER_SOCKET at a running Docker-compatible engine"
    return 1
  fi
  say "installing $(echo "${missing[*]} ${compose[*]}" | xargs) (Debian packages)"
  apt-get update -qq
  [ ${#missing[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  [ ${#compose[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${compose[@]}" >/dev/null
}

write_config() {
  mkdir -p "$ENGINE_DIR"
  cat >"$CONTAINERS_CONF.tmp" <<'EOF'
# Written by .ci/podman-engine.sh (see ../shared/STACK.md): crun fails on these machines;
# runc works once the default ulimits are dropped.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
EOF
  mv "$CONTAINERS_CONF.tmp" "$CONTAINERS_CONF"
}

ensure_test_image() {
  local have
  have=$(podman image inspect --format '{{ index .Labels "io.blixard.test-image" }}' "$TEST_IMAGE" 2>/dev/null || true)
  [ "$have" = "$TEST_IMAGE_VERSION" ] && return 0
  say "importing $TEST_IMAGE from a local busybox root filesystem"
  local rootfs
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs"/{bin,etc,root,tmp,proc,sys,dev,home}
  chmod 1777 "$rootfs/tmp"
  cp /bin/busybox "$rootfs/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  tar -C "$rootfs" -c . | podman import --quiet \
    --change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]' --change 'WORKDIR /' \
    --change "LABEL io.blixard.test-image=$TEST_IMAGE_VERSION" \
    - "$TEST_IMAGE" >/dev/null
  rm -rf "$rootfs"
}

start_service() {
  ping_engine && return 0
  rm -f "$SOCKET"
  # setsid + nohup: the service outlives this script and the test run that started it.
  # 9>&-: the service must not inherit (and so hold forever) the lock taken in start().
  # Started in its own directory: conmon drops an `oom` marker file in the service's working
  # directory when a container is OOM-killed, which would otherwise land in the repository.
  (cd "$ENGINE_DIR" && exec setsid nohup podman system service --time=0 "unix://$SOCKET" >"$ENGINE_DIR/service.log" 2>&1 </dev/null 9>&-) &
  echo $! >"$ENGINE_DIR/service.pid"
  for _ in $(seq 1 100); do
    ping_engine && return 0
    sleep 0.1
  done
  say "error: podman system service did not answer on $SOCKET within 10 s; its log ($ENGINE_DIR/service.log):"
  tail -n 20 "$ENGINE_DIR/service.log" >&2 || true
  return 1
}

start() {
  mkdir -p "$ENGINE_DIR"
  # Several test files may call this at once: one of them does the work, the others wait.
  exec 9>"$ENGINE_DIR/lock"
  flock -w 300 9
  install_packages
  write_config
  ensure_test_image
  start_service
  flock -u 9
  say "podman engine: unix://$SOCKET (test image $TEST_IMAGE)"
}

case "${1:-start}" in
  start)
    start
    echo "$SOCKET"
    ;;
  env)
    start
    printf 'export BLIXARD_DOCKER_SOCKET=%q\nexport DOCKER_HOST=%q\nexport CONTAINERS_CONF=%q\n' "$SOCKET" "unix://$SOCKET" "$CONTAINERS_CONF"
    ;;
  status)
    ping_engine && echo "up: unix://$SOCKET" || { echo "down: unix://$SOCKET"; exit 1; }
    ;;
  stop)
    if [ -f "$ENGINE_DIR/service.pid" ]; then
      kill "$(cat "$ENGINE_DIR/service.pid")" 2>/dev/null || true
      rm -f "$ENGINE_DIR/service.pid" "$SOCKET"
    fi
    ;;
  *)
    say "usage: $0 [start|env|status|stop]"
    exit 2
    ;;
esac
