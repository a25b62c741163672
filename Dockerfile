# One image for the coordinator and the demo services; the command picks the app.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY apps apps
COPY libs libs
COPY scripts scripts
COPY test/support test/support
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules node_modules
COPY --from=build --chown=node:node /app/dist dist
# The web console's static files (GET /admin): not TypeScript, so not in dist/.
COPY --from=build --chown=node:node /app/apps/coordinator/console apps/coordinator/console
USER node
EXPOSE 7070
CMD ["node", "dist/apps/coordinator/src/main.js"]
