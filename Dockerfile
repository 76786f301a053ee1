# The clinimesh control plane and CLI. Runs the TypeScript sources through tsx (no build step), so
# the runtime dependencies include tsx: `npm ci --omit=dev` keeps it (it is in "dependencies").
#   docker build -t clinimesh:0.1.0 .
#   docker run --rm -p 18000:18000 -p 18001:18001 -v clinimesh-data:/var/lib/clinimesh clinimesh:0.1.0
# The admin API (19000) listens on the container's loopback: use it through `docker exec`, or pass
# `--admin-host 0.0.0.0` deliberately (it is HTTPS and needs a token, but it can change the mesh).
# The image holds no key: the CA and every credential are made at run time in /var/lib/clinimesh or
# brought by the operator (a Kubernetes Secret), never copied in here.
FROM node:20-slim

ENV NODE_ENV=production
WORKDIR /app

# Dependencies first, so that a source change does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Only what runs: the CLI entry, the sources, the Envoy descriptor set, tsconfig (read by tsx) and
# the example mesh for the default command. Everything is root-owned and read-only to the runtime user.
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY proto ./proto
COPY manifests/examples ./manifests/examples

# The state and CA directory, owned by the runtime user, mode 0700 (Kubernetes mounts a volume here).
RUN mkdir -p /var/lib/clinimesh && chown node:node /var/lib/clinimesh && chmod 0700 /var/lib/clinimesh

# The image's `node` user, by number, so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000

EXPOSE 18000 18001
ENTRYPOINT ["node", "bin/clinimesh.js"]
CMD ["serve", "--host", "0.0.0.0", "--manifests", "manifests/examples", "--data-dir", "/var/lib/clinimesh"]
