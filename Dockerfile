# One image for the coordinator and the demo services. The default command runs the
# coordinator server; docker-compose.yml runs the demo services with another `command:`, and
# the Kubernetes migration Job runs `node apps/coordinator/dist/cli/main.js migrate`.
# docs/deployment.md describes the image: its environment, volume and health check.
# Node 24, the newer of the two supported lines (22 and 24, as package.json's engines say; CI
# runs the whole suite on both). Node 20 is past its end of life and dependencies no longer
# support it (typeorm asks for ^22.13 or >=24.11, OpenTelemetry 3.x for >=22.15).

FROM node:24-bookworm-slim AS build
WORKDIR /app
# The manifests first, the workspaces' included (npm ci needs each workspace's package.json),
# so the install layer is reused until a dependency changes.
COPY package.json package-lock.json ./
COPY libs/protocol/package.json libs/protocol/
COPY libs/sdk/package.json libs/sdk/
COPY apps/coordinator/package.json apps/coordinator/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json tsconfig.package.json ./
COPY apps apps
COPY libs libs
COPY scripts scripts
COPY test/support test/support
# The packages, each into its own dist/ (the coordinator server: apps/coordinator/dist/main.js),
# then the demo services (dist/apps/<name>/src/main.js), then the build tools go.
RUN npm run build:packages && npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
# tini is PID 1: it forwards SIGTERM to node and reaps orphans, such as the embedded
# Postgres's children when the coordinator runs without DATABASE_URL.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*
# HOST=0.0.0.0 so the port can be published. The coordinator then refuses to start without
# API_KEYS (anyone reaching the port could otherwise commit, roll back and register).
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=7070
WORKDIR /app
# The code belongs to root and is read-only for the node user that runs it.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
# The workspace packages node_modules/@nest-dtx/* link to: manifest and build output each.
COPY --from=build /app/libs/protocol/package.json libs/protocol/
COPY --from=build /app/libs/protocol/dist libs/protocol/dist
COPY --from=build /app/libs/sdk/package.json libs/sdk/
COPY --from=build /app/libs/sdk/dist libs/sdk/dist
COPY --from=build /app/apps/coordinator/package.json apps/coordinator/
COPY --from=build /app/apps/coordinator/dist apps/coordinator/dist
# The committed OpenAPI document, served at /docs-json.
COPY --from=build /app/apps/coordinator/openapi.json apps/coordinator/
# The web console's static files (GET /admin): not TypeScript, so not in dist/.
COPY --from=build /app/apps/coordinator/console apps/coordinator/console
COPY docker/healthcheck.mjs docker/
# The one folder the app writes: the embedded Postgres's data (EMBEDDED_PG_DIR, relative to
# /app), used only without DATABASE_URL. Mount a volume there to keep it. (Its password file
# goes to /tmp.)
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node
EXPOSE 7070
# GET /health/ready on 127.0.0.1:$PORT (no API key needed): Postgres and, when set, Redis answer.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "docker/healthcheck.mjs", "/health/ready"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "apps/coordinator/dist/main.js"]
