# syntax=docker/dockerfile:1
#
# The one build recipe of every Blixard image. It produces `blixard-base`: a small runtime image
# (Node, production dependencies only, every app compiled, the Prisma client generated, the SQL
# migrations, a non-root user and a HEALTHCHECK). Each app's own Dockerfile
# (apps/<app>/Dockerfile) is a few lines on top of it: which app to start, and on which port.
# All app images therefore share every layer but their last, few-byte one.
#
#   docker build -f k8s/docker/base.Dockerfile -t blixard-base .
#   docker build -f apps/gateway/Dockerfile -t blixard/gateway:dev .
#   .ci/build-images.sh          # both steps for every app (docker, or podman without registry)
#
# Build context: the repository root (.dockerignore keeps it to what the build needs).
# NODE_IMAGE: any Debian-based Node 20 image with npm, a shell and a `node` user with uid 1000
# (node:20-bookworm-slim; on machines without a registry, .ci/build-images.sh makes one from
# the machine's own Node and Debian files).

ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------------------------
# toolchain: pnpm at the pinned version (not corepack: it fails on registry signatures here).
FROM ${NODE_IMAGE} AS toolchain
ARG PNPM_VERSION=12.4.2
ENV CI=true npm_config_update_notifier=false
RUN npm install --global pnpm@${PNPM_VERSION} && npm cache clean --force
WORKDIR /src

# ---------------------------------------------------------------------------------------------
# build: every dependency (dev ones too: TypeScript, the Prisma CLI), the generated Prisma
# client, every app compiled.
FROM toolchain AS build
# Only the lockfile first: this layer (every package, in the store /pnpm/store) is reused until
# the dependencies change, whatever happens to the sources.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch --store-dir /pnpm/store
COPY . .
# postinstall runs `prisma generate` (the JS engine: nothing is downloaded outside npm).
RUN pnpm install --frozen-lockfile --offline --store-dir /pnpm/store
RUN test -f libs/db/src/generated/prisma/client.ts || { echo "prisma generate did not run" >&2; exit 1; }
# Every app and the libraries they reference (not the test helpers).
RUN pnpm exec tsc -b apps/*/tsconfig.json

# ---------------------------------------------------------------------------------------------
# prune: production dependencies only (no TypeScript, Prisma CLI, Jest, SWC: see
# k8s/docker/prune-node-modules.js for what `--prod` alone keeps), next to the compiled output, staged
# in /out exactly as the runtime needs it.
FROM build AS prune
RUN set -eu; \
    rm -rf node_modules apps/*/node_modules libs/*/node_modules; \
    pnpm install --frozen-lockfile --offline --prod --ignore-scripts --store-dir /pnpm/store; \
    node k8s/docker/prune-node-modules.js; \
    mkdir -p /out/prisma /out/k8s/docker; \
    cp -a package.json pnpm-workspace.yaml node_modules /out/; \
    cp -a prisma/migrations /out/prisma/; \
    cp -a k8s/docker/probe.js /out/k8s/docker/; \
    for pkg in apps/* libs/*; do \
      [ -d "$pkg/dist" ] || continue; \
      mkdir -p "/out/$pkg"; \
      cp -a "$pkg/package.json" "$pkg/dist" "/out/$pkg/"; \
      if [ -d "$pkg/node_modules" ]; then cp -a "$pkg/node_modules" "/out/$pkg/"; fi; \
    done; \
    find /out/apps /out/libs -path '*/dist/*' \( -name '*.d.ts' -o -name '*.d.ts.map' -o -name '.tsbuildinfo' \) -exec rm -f {} +

# ---------------------------------------------------------------------------------------------
# runtime: what every app image starts from.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only for the app's user.
COPY --from=prune /out/ /app/
# `node` (uid 1000), by number so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
# Liveness: the app's own port variable (BLIXARD_PORT_ENV, set by each app's Dockerfile) names
# where /healthz answers. Readiness (/readyz: Postgres and NATS reachable) is what docker compose
# and Kubernetes probe.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "k8s/docker/probe.js", "/healthz"]
