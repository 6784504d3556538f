#!/usr/bin/env bash
# Local stand-ins for the three third-party images of docker-compose.yml, for CI only: no registry
# is reachable on these machines (../shared/STACK.md), so postgres:15, nats:2.9-alpine and
# jaegertracing/all-in-one cannot be pulled. Each stand-in is made from this machine's own files,
# the way .ci/build-images.sh makes its Node base, and .ci/compose.ci.yml swaps them in (it changes
# the `image:` lines and nothing else).
#
#   .ci/compose-stand-ins.sh            # build the missing or outdated ones, print their tags
#   .ci/compose-stand-ins.sh sizes      # print each stand-in's size
#
#   localhost/blixard-ci/postgres:15     the host's Postgres 15 (/usr/lib/postgresql/15, its
#                                        libraries by ldd), with an entrypoint that honours
#                                        POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB as the
#                                        official image does (initdb --locale=C on an empty data
#                                        directory, password auth from the network, the database
#                                        created); pg_isready (the compose healthcheck) included.
#   localhost/blixard-ci/nats:2.9        the host's nats-server 2.9 and busybox (wget: the compose
#                                        healthcheck); flags as the command, as in the official one.
#   localhost/blixard-ci/jaeger:stand-in NOT Jaeger (it has no Debian package): a few lines of Node
#                                        (.ci/jaeger-stand-in.js) that accept OTLP/HTTP exports on
#                                        4318 and answer the UI port 16686 (`/api/services` lists
#                                        the services whose spans arrived).
#
# Needs podman (.ci/podman-engine.sh installs and configures it), busybox-static, and Postgres 15
# and nats-server installed on the host (.ci/run makes sure of both). Idempotent: an image whose
# recipe label matches is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

# Bump one when its recipe below changes: that image is then rebuilt (the Jaeger stand-in also
# when its server changes).
POSTGRES_RECIPE=1
NATS_RECIPE=1
JAEGER_RECIPE="2-$(sha256sum .ci/jaeger-stand-in.js | cut -c1-12)"
PG_VERSION=15
POSTGRES_TAG=localhost/blixard-ci/postgres:$PG_VERSION
NATS_TAG=localhost/blixard-ci/nats:2.9
JAEGER_TAG=localhost/blixard-ci/jaeger:stand-in

say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

if [ -z "${CONTAINERS_CONF:-}" ]; then
  engine_env=$(.ci/podman-engine.sh env)
  eval "$engine_env"
fi
command -v podman >/dev/null || die "podman is missing: run .ci/podman-engine.sh start"

has_recipe() { # image label recipe
  [ "$(podman image inspect --format "{{ index .Labels \"$2\" }}" "$1" 2>/dev/null || true)" = "$3" ]
}

# A root filesystem with Debian's merged-/usr layout, busybox (sh and the usual tools) and the
# given users.
new_rootfs() {
  local rootfs=$1
  mkdir -p "$rootfs"/usr/{bin,sbin,lib,lib64,local/bin} "$rootfs"/{etc,tmp,root,proc,sys,dev,run,var/tmp}
  ln -s usr/bin "$rootfs/bin"; ln -s usr/sbin "$rootfs/sbin"; ln -s usr/lib "$rootfs/lib"; ln -s usr/lib64 "$rootfs/lib64"
  chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
  [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 ||
    die "a static /bin/busybox is needed (Debian: apt-get install busybox-static)"
  cp /bin/busybox "$rootfs/usr/bin/busybox"
  local applet
  for applet in $(/bin/busybox --list); do
    [ -e "$rootfs/usr/bin/$applet" ] || ln -s busybox "$rootfs/usr/bin/$applet"
  done
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
}

# Copies every shared library that the given ELF files link (ldd) to its real path in the rootfs.
copy_libs_of() {
  local rootfs=$1 file lib real
  shift
  for file in "$@"; do
    for lib in $(ldd "$file" 2>/dev/null | grep -o '/[^ ]*' || true); do
      [ -e "$lib" ] || continue
      real="$(readlink -f "$(dirname "$lib")")/$(basename "$lib")"
      [ -e "$rootfs$real" ] && continue
      mkdir -p "$rootfs$(dirname "$real")"
      cp -L "$lib" "$rootfs$real"
    done
  done
}

# Copies each ELF file given to the same path in the rootfs, with the libraries it links.
copy_with_libs() {
  local rootfs=$1 file
  shift
  for file in "$@"; do
    mkdir -p "$rootfs$(dirname "$file")"
    cp -L "$file" "$rootfs$file"
  done
  copy_libs_of "$rootfs" "$@"
}

# The image a tag names now, to drop once a rebuild has taken the tag (fails quietly while a
# container still uses it).
previous_image() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }
drop_image() { [ -z "$1" ] || podman rmi "$1" >/dev/null 2>&1 || true; }

import_rootfs() { # rootfs tag label recipe --change...
  local rootfs=$1 tag=$2 label=$3 recipe=$4 previous
  shift 4
  local changes=() c
  for c in "$@"; do changes+=(--change "$c"); done
  previous=$(previous_image "$tag")
  tar -C "$rootfs" --numeric-owner -c . | podman import --quiet "${changes[@]}" \
    --change "LABEL $label=$recipe" - "$tag" >/dev/null
  drop_image "$previous"
}

postgres_image() {
  has_recipe "$POSTGRES_TAG" io.blixard.ci.postgres "$POSTGRES_RECIPE" && return 0
  local pg=/usr/lib/postgresql/$PG_VERSION share=/usr/share/postgresql/$PG_VERSION
  [ -x "$pg/bin/postgres" ] && [ -d "$share" ] || die "Postgres $PG_VERSION is not installed on this machine ($pg, $share)"
  say "making $POSTGRES_TAG from this machine's Postgres $PG_VERSION"
  local rootfs
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' RETURN
  new_rootfs "$rootfs"
  # The server, the tools the entrypoint and the healthcheck run, and psql (for `exec ... psql`).
  local bins=() b
  for b in postgres initdb pg_ctl pg_isready psql; do bins+=("$pg/bin/$b"); done
  copy_with_libs "$rootfs" "${bins[@]}"
  ln -s postgres "$rootfs$pg/bin/postmaster"
  # Server modules (initdb loads the snowball dictionaries and PL/pgSQL), without the LLVM JIT
  # (libLLVM alone is larger than everything else here; the entrypoint turns jit off).
  local modules=()
  mapfile -t modules < <(find "$pg/lib" -maxdepth 1 -name '*.so' ! -name 'llvmjit*')
  copy_with_libs "$rootfs" "${modules[@]}"
  mkdir -p "$rootfs/usr/share/postgresql"
  cp -a "$share" "$rootfs$share"
  # Debian builds Postgres against the system time zone database.
  mkdir -p "$rootfs/usr/share"
  cp -a /usr/share/zoneinfo "$rootfs/usr/share/zoneinfo"
  # uid/gid 999 as in the official image; its data and socket directories.
  printf 'root:x:0:0:root:/root:/bin/sh\npostgres:x:999:999::/var/lib/postgresql:/bin/sh\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\npostgres:x:999:\n' >"$rootfs/etc/group"
  mkdir -p "$rootfs/var/lib/postgresql/data" "$rootfs/var/run/postgresql"
  chown -R 999:999 "$rootfs/var/lib/postgresql" "$rootfs/var/run/postgresql"
  chmod 700 "$rootfs/var/lib/postgresql/data"
  chmod 2777 "$rootfs/var/run/postgresql"
  cat >"$rootfs/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# Stand-in for the official postgres image's entrypoint (.ci/compose-stand-ins.sh): on an empty
# data directory, initdb with POSTGRES_USER / POSTGRES_PASSWORD, password (scram) auth from the
# network, and POSTGRES_DB created; then the server, listening on every address.
set -eu
if [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi
if [ "$1" != postgres ]; then exec "$@"; fi
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  # (busybox su, as root: no setuid bit needed; -p keeps the environment.)
  exec su -p -s /bin/sh postgres -c 'exec "$0" "$@"' "$0" "$@"
fi
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
    echo "error: the database is uninitialized and POSTGRES_PASSWORD is not set (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
  initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host="$auth" \
    --locale=C --encoding=UTF8 >/dev/null
  rm -f "$pwfile"
  printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
  printf "\nlisten_addresses = '*'\njit = off\n" >>"$PGDATA/postgresql.conf"
  if [ "$db" != postgres ]; then
    # Single-user mode: no server (and so no early "ready" answer to pg_isready) before it is done.
    printf 'CREATE DATABASE "%s";\n' "$(printf '%s' "$db" | sed 's/"/""/g')" |
      postgres --single -D "$PGDATA" -c jit=off postgres >/dev/null
  fi
  echo "database initialised: user $user, database $db" >&2
fi
exec "$@"
EOF
  chmod 755 "$rootfs/usr/local/bin/docker-entrypoint.sh"
  import_rootfs "$rootfs" "$POSTGRES_TAG" io.blixard.ci.postgres "$POSTGRES_RECIPE" \
    "ENV PATH=$pg/bin:/usr/local/bin:/usr/bin:/usr/sbin:/bin" \
    'ENV PGDATA=/var/lib/postgresql/data' \
    'ENV TZ=UTC' \
    'VOLUME /var/lib/postgresql/data' \
    'EXPOSE 5432' \
    'STOPSIGNAL SIGINT' \
    'ENTRYPOINT ["docker-entrypoint.sh"]' \
    'CMD ["postgres"]' \
    'LABEL org.opencontainers.image.description="CI stand-in for postgres:15, made from the host Postgres (.ci/compose-stand-ins.sh)"'
}

nats_image() {
  has_recipe "$NATS_TAG" io.blixard.ci.nats "$NATS_RECIPE" && return 0
  local server
  server=$(command -v nats-server || echo /usr/sbin/nats-server)
  [ -x "$server" ] || die "nats-server is not installed on this machine"
  "$server" --version | grep -q 'v2\.9\.' || die "nats-server 2.9 expected (docker-compose.yml runs nats:2.9-alpine), found $("$server" --version)"
  say "making $NATS_TAG from this machine's $("$server" --version)"
  local rootfs
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' RETURN
  new_rootfs "$rootfs"
  cp -L "$server" "$rootfs/usr/local/bin/nats-server"
  copy_libs_of "$rootfs" "$server"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  mkdir -p "$rootfs/etc/nats" "$rootfs/data"
  printf 'port: 4222\nhttp_port: 8222\n' >"$rootfs/etc/nats/nats-server.conf"
  # As the official image's entrypoint: flags alone are nats-server's.
  cat >"$rootfs/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
if [ "${1#-}" != "$1" ]; then set -- nats-server "$@"; fi
exec "$@"
EOF
  chmod 755 "$rootfs/usr/local/bin/docker-entrypoint.sh"
  import_rootfs "$rootfs" "$NATS_TAG" io.blixard.ci.nats "$NATS_RECIPE" \
    'ENV PATH=/usr/local/bin:/usr/bin:/usr/sbin:/bin' \
    'EXPOSE 4222' 'EXPOSE 6222' 'EXPOSE 8222' \
    'ENTRYPOINT ["docker-entrypoint.sh"]' \
    'CMD ["nats-server", "--config", "/etc/nats/nats-server.conf"]' \
    'LABEL org.opencontainers.image.description="CI stand-in for nats:2.9-alpine, made from the host nats-server (.ci/compose-stand-ins.sh)"'
}

jaeger_image() {
  has_recipe "$JAEGER_TAG" io.blixard.ci.jaeger "$JAEGER_RECIPE" && return 0
  local node_image ctx
  node_image=$(.ci/build-images.sh node-base)
  say "making $JAEGER_TAG (an OTLP/HTTP sink, not Jaeger) from $node_image"
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' RETURN
  cp .ci/jaeger-stand-in.js "$ctx/jaeger-stand-in.js"
  cat >"$ctx/Containerfile" <<EOF
FROM $node_image
COPY jaeger-stand-in.js /app/jaeger-stand-in.js
USER 1000:1000
EXPOSE 4318 16686
CMD ["node", "/app/jaeger-stand-in.js"]
LABEL io.blixard.ci.jaeger=$JAEGER_RECIPE
LABEL org.opencontainers.image.description="CI stand-in for jaegertracing/all-in-one: accepts OTLP/HTTP on 4318, answers 16686; not Jaeger (.ci/compose-stand-ins.sh)"
EOF
  local previous
  previous=$(previous_image "$JAEGER_TAG")
  podman build --quiet --format docker -f "$ctx/Containerfile" -t "$JAEGER_TAG" "$ctx" >/dev/null
  drop_image "$previous"
}

sizes() {
  local tag
  for tag in "$POSTGRES_TAG" "$NATS_TAG" "$JAEGER_TAG"; do
    podman image inspect --format "$tag {{.Size}}" "$tag" 2>/dev/null | awk '{ printf "%-38s %7.1f MB\n", $1, $2 / 1e6 }'
  done
}

# One build at a time per machine (two test runs may start together).
lock() {
  exec 7>"${TMPDIR:-/tmp}/blixard-compose-stand-ins.lock"
  flock -w 600 7 || die "another .ci/compose-stand-ins.sh did not finish within 10 minutes"
}

case "${1:-build}" in
  build)
    lock
    postgres_image
    nats_image
    jaeger_image
    printf '%s\n' "$POSTGRES_TAG" "$NATS_TAG" "$JAEGER_TAG"
    ;;
  sizes)
    sizes
    ;;
  *)
    say "usage: $0 [build|sizes]"
    exit 2
    ;;
esac
