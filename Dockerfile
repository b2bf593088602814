# gatehouse's container image. Two stages: build (npm ci with dev dependencies, tsc) and a slim
# runtime holding only package.json, dist/ and the production node_modules. Runs as a non-root user
# with the V8 flags of bench/node-flags.ts (test/deploy/kubernetes.test.ts checks the ENTRYPOINT).
# The embedded development default and its dev-only keys (config/) are not copied: the image needs
# GATEHOUSE_CONFIG, and without it exits 2.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json tsconfig.image.json ./
COPY src ./src
COPY bench ./bench
COPY demo ./demo
COPY sdk ./sdk
COPY test/harness ./test/harness
COPY test/support ./test/support
# src/ only, without the test helpers and worked-example generators (tsconfig.image.json)
RUN npx tsc -p tsconfig.image.json && npm prune --omit=dev --ignore-scripts

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# gatehouse finds its package root as the directory holding package.json and config/: ship config/
# with the config's JSON Schema only (tried: without config/ the process cannot start)
COPY config/gatehouse.schema.json ./config/gatehouse.schema.json
# 10001: the uid the Deployment's securityContext names (runAsNonRoot needs a numeric USER)
USER 10001:10001
EXPOSE 9001 9002
ENTRYPOINT ["node", "--max-semi-space-size=64", "dist/src/main.js"]
