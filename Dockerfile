# The agent's container image (the chart runs `node dist/agent/main.js` from /app).
# Not built in CI: these machines have no container engine.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY agent ./agent
COPY shared ./shared
COPY e2e ./e2e
RUN npx tsc -p tsconfig.json && npm prune --omit=dev

FROM node:24-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/agent ./dist/agent
COPY --from=build /app/dist/shared ./dist/shared
USER 65532:65532
ENTRYPOINT ["node", "dist/agent/main.js"]
