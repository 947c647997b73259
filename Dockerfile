# The operator's image: compiled with the dev dependencies, run with production dependencies only.
# operator/test/integration/production-build.test.ts runs these same steps (less the base image).
# BASE: any Debian-based image with Node 24 and npm; operator/harness/images/build-images.sh builds
# this file on a base made from Debian's packages where no registry is reachable.
ARG BASE=node:24-bookworm-slim
FROM ${BASE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY operator/src/ operator/src/
# tsc emits dist/operator/src/**/*.js, rewriting the sources' .ts imports to .js.
RUN npm run build

FROM ${BASE}
WORKDIR /app
ENV NODE_ENV=production
# The operator's runtime settings, as the chart sets them (operator/src/install/runtime-env.ts says
# why; a unit test keeps the two equal): Node's heap sized for the container, malloc trimming.
ENV NODE_OPTIONS="--max-old-space-size-percentage=50 --max-semi-space-size=4" \
    MALLOC_TRIM_THRESHOLD_=131072
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/ dist/
# Numeric, so that the kubelet can check runAsNonRoot; the chart runs the pod as the same user.
USER 65532:65532
ENTRYPOINT ["node", "dist/operator/src/main.js"]
