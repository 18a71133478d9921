# Roster container image.
#
# One image runs every process; pick one with the command:
#   node dist/api/server.js      HTTP API (default)
#   node dist/workers/main.js    BullMQ workers
#   node dist/db/migrate-cli.js  apply the SQL migrations in ./drizzle, then exit
#   node dist/main.js            API and workers in one process
#   node dist/cli/main.js        admin CLI
# See docker-compose.yml for a complete local stack.

# ---- build: compile TypeScript to dist/ -------------------------------------
FROM node:24-bookworm-slim AS build
WORKDIR /app

# Dependencies first so this layer is cached until the lockfile changes.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The web console (dist/console) is built with the API: its types come from the API's own OpenAPI document.
COPY console ./console
RUN npm run build

# ---- runtime: production dependencies + compiled output -----------------------
FROM node:24-bookworm-slim AS runtime

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    STORAGE_DIR=/data

WORKDIR /app

# tsx is a production dependency (used by the npm start scripts), so it is kept here.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

COPY --from=build /app/dist ./dist
# The migrator reads ./drizzle relative to the working directory (/app).
COPY drizzle ./drizzle

# Local storage driver writes here; a named volume mounted on /data inherits this ownership.
RUN mkdir -p /data && chown node:node /data

# Application files stay root-owned (read-only for the app); only /data is writable.
USER node

EXPOSE 3000

# The slim image has no curl: probe /healthz with Node's built-in fetch.
# (Compose disables this for the worker and migrate services, which serve no HTTP.)
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

CMD ["node", "dist/api/server.js"]
