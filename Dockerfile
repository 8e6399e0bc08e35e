# syntax=docker/dockerfile:1
# boxproxy: build with the dev toolchain, run with production dependencies only, as a non-root user.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
# Only src/ is copied: tsconfig also includes test/ and bench/, which the image does not need.
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

# Wasm language runtimes for Boxes: CPython and QuickJS for WASI built from Debian's sources (scripts/runtimes/),
# and ruby.wasm from npm, stored as OCI artifacts in the runtime catalog the converter reads.
FROM build AS runtimes
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates clang lld llvm wasi-libc libclang-rt-14-dev-wasm32 dpkg-dev python3.11 \
    clang-19 lld-19 llvm-19 libclang-rt-19-dev-wasm32 \
 && rm -rf /var/lib/apt/lists/*
COPY scripts ./scripts
ENV BOXPROXY_RUNTIME_CACHE=/runtimes/cache \
    BOXPROXY_RUNTIME_CATALOG=/runtimes/catalog
RUN node dist/src/cli/main.js runtimes build python \
 && node dist/src/cli/main.js runtimes build quickjs \
 && node dist/src/cli/main.js runtimes import-ruby \
 && rm -rf /runtimes/cache

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    BOXPROXY_CONFIG=/app/config/container.yaml \
    BOXPROXY_RUNTIME_CATALOG=/opt/boxproxy/runtimes
WORKDIR /app
# igzip (ISA-L) deflates Box layers ~6x faster than zlib (config/container.yaml sets conversion.gzip: igzip).
RUN apt-get update \
 && apt-get install -y --no-install-recommends isal \
 && rm -rf /var/lib/apt/lists/*
# package.json is needed at run time: it marks dist/ as ES modules.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
# The Node layer bundled into Node Boxes is read from its TypeScript sources, so a Box's bytes do not depend on
# whether the converter runs from src/ or dist/ (src/convert/node/bundle.ts).
COPY --from=build /app/src/convert/node ./src/convert/node
COPY config ./config
COPY --from=runtimes /runtimes/catalog /opt/boxproxy/runtimes
# The code stays root-owned and read-only to the service; only /data is writable.
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 5000
# Assumes the listen port of config/container.yaml.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:5000/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve"]
