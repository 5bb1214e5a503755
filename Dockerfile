# One image for every hub service; compose picks the service with `command`.
# Services run from TypeScript source through tsx (a pinned runtime
# dependency), exactly as `hub up` does locally.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
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
