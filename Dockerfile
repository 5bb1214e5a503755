# One image for every hub service; compose picks the service with `command`.
# Services run from the compiled output (`npm run build` -> dist/), as the
# benchmarks measure them; the `hub` CLI runs from source through tsx (a
# pinned runtime dependency) so that it always matches the tree.
FROM node:20-bookworm-slim AS build
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

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY --from=build /app/dist ./dist
COPY schemas ./schemas
COPY libs ./libs
COPY services ./services
COPY cli ./cli
COPY bin ./bin
COPY deploy ./deploy
COPY tsconfig.json ./
USER node
# Overridden per service in deploy/compose.yaml.
CMD ["node", "bin/hub.js", "--help"]
