# The clinimesh control plane and CLI (also the node agent: `clinimesh agent`), as compiled JavaScript.
#   docker build -t clinimesh:0.1.0 .
#   docker run --rm -p 18000:18000 -p 18001:18001 -v clinimesh-data:/var/lib/clinimesh clinimesh:0.1.0
# Three stages: `build` compiles src/ to dist/ with the TypeScript compiler (tsconfig.build.json;
# `.ts` imports rewritten to `.js`); `production-deps` installs the runtime dependencies only, and
# takes tsx (the development runner, a dependency for `npm start` without a build) back out; the
# runtime stage holds dist/, those node_modules, package.json ("type": "module"), the CLI entry, the
# Envoy descriptor set and the example mesh. No TypeScript compiler, tsx or esbuild at run time.
#
# Node: 24, the newer of the two maintained LTS lines (supported until April 2028; 22 ends in April
# 2027). CI and development run on whatever Node >= 20 the machine has (package.json engines); the
# image declares the one it ships here. Pin the tag by digest in your registry for reproducible
# builds.
#
# The admin API (19000) listens on the container's loopback: use it through `docker exec`, or pass
# `--admin-host 0.0.0.0` deliberately (it is HTTPS and needs a token, but it can change the mesh).
# The image holds no key: the CA and every credential are made at run time in /var/lib/clinimesh or
# brought by the operator (a Kubernetes Secret), never copied in here.
FROM node:24-slim AS build
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:24-slim AS production-deps
WORKDIR /deps
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
  && npm uninstall --omit=dev --no-audit --no-fund tsx \
  && rm -rf node_modules/@esbuild \
  && npm cache clean --force

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app

# Everything is root-owned and read-only to the runtime user.
COPY --from=production-deps /deps/package.json ./package.json
COPY --from=production-deps /deps/node_modules ./node_modules
COPY --from=build /build/dist ./dist
COPY bin ./bin
COPY proto/envoy-descriptors.binpb ./proto/envoy-descriptors.binpb
COPY manifests/examples ./manifests/examples

# The state and CA directory, owned by the runtime user, mode 0700 (Kubernetes mounts a volume here).
RUN mkdir -p /var/lib/clinimesh && chown node:node /var/lib/clinimesh && chmod 0700 /var/lib/clinimesh \
  && node bin/clinimesh.js --help > /dev/null

# The image's `node` user, by number, so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000

EXPOSE 18000 18001
ENTRYPOINT ["node", "bin/clinimesh.js"]
CMD ["serve", "--host", "0.0.0.0", "--manifests", "manifests/examples", "--data-dir", "/var/lib/clinimesh"]
