# The agent's container image, for those with Docker (or any BuildKit/Buildah builder). The same root
# filesystem as `npm run image` (image/build.sh, tested by e2e/image.e2e.test.ts, which needs no
# container engine): image/rootfs.sh makes it in a Debian 12 stage, the image itself is that tree
# alone on an empty base (Node 24 and its libraries, the agent, production node_modules, user nonroot
# 65532; no shell). Not built in CI: these machines have no container engine.
#   docker build --build-arg REVISION=$(git rev-parse HEAD) -t cert-agent:0.1.0 .
FROM node:24-bookworm-slim AS build
# strip (binutils) for the Node binary; ldd and dpkg are in the base image.
RUN apt-get update && apt-get install -y --no-install-recommends binutils && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json README.md ./
COPY agent ./agent
COPY shared ./shared
COPY e2e ./e2e
COPY image ./image
RUN npx tsc -p tsconfig.json && bash image/rootfs.sh /rootfs

FROM scratch
COPY --from=build /rootfs/ /
COPY --from=build --chown=65532:65532 /rootfs/home/nonroot /home/nonroot
ENV NODE_ENV=production PATH=/nodejs/bin NODE_OPTIONS=--max-semi-space-size=2
USER 65532:65532
WORKDIR /app
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/agent/main.js"]
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title=cert-agent \
      org.opencontainers.image.version=$VERSION \
      org.opencontainers.image.revision=$REVISION \
      org.opencontainers.image.licenses=Apache-2.0
