# gatehouse's container image. Two stages: build (npm ci with dev dependencies, tsc of src/ only,
# tsconfig.image.json) and a slim runtime holding only package.json, dist/src and the production
# node_modules: no bench, demo, sdk or test code. Runs as a non-root user with the V8 flags of
# bench/node-flags.ts (test/deploy/kubernetes.test.ts checks the ENTRYPOINT, the pin and the contents).
# The embedded development default and its dev-only keys (config/) are not copied: without
# GATEHOUSE_CONFIG the process exits 2 saying "GATEHOUSE_CONFIG is not set".
#
# Node 22 LTS, as package.json's engines and .ci/run. The base is pinned by digest so a rebuild gets
# the same bytes. How this digest was chosen: the build machines reach no Docker registry, so it was
# NOT resolved or verified here. It is the digest that several unrelated public Dockerfiles pin for
# node:22.23.3-bookworm-slim (the Debian 12 slim image of Node 22.23.3; some pin it as
# node:22-bookworm-slim, which pointed at the same image then), found by searching public source
# for pinned node:22 bookworm-slim bases. Before you build, verify it (and later bump it, or let
# Renovate/Dependabot do so) with the one command:
#   docker buildx imagetools inspect node:22.23.3-bookworm-slim --format '{{json .Manifest.Digest}}'
# which must print the sha256 below; a different one means the tag was re-pushed: take the new
# digest only after reading why.
ARG NODE_IMAGE=node:22.23.3-bookworm-slim@sha256:43ac6c60b8f89723f746e8a92ce91abd5017e627ce1ddfe4238355d3a30b772c

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json tsconfig.image.json ./
COPY src ./src
RUN npx tsc -p tsconfig.image.json && npm prune --omit=dev --ignore-scripts

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
# gatehouse finds its package root as the directory holding package.json and config/: ship config/
# with the config's JSON Schema only (tried: without config/ the process cannot start)
COPY config/gatehouse.schema.json ./config/gatehouse.schema.json
# 10001: the uid the Deployment's securityContext names (runAsNonRoot needs a numeric USER)
USER 10001:10001
EXPOSE 9001 9002 9003
ENTRYPOINT ["node", "--max-semi-space-size=64", "dist/src/main.js"]
