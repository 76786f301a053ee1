// Builds one FileDescriptorSet (imports included, source info stripped) from Envoy's API protos,
// which ship with @grpc/grpc-js-xds, and the pinned protoc-gen-validate validate.proto. The runtime
// reads Envoy's message shapes and protoc-gen-validate rules from it. The output is committed
// (proto/envoy-descriptors.binpb), so installing clinimesh needs nothing but Node; run this after
// upgrading @grpc/grpc-js-xds (`npm run build:protos` then regenerates the TypeScript types of
// its messages, src/xds/resources/gen, with scripts/gen-types.ts). It fetches the buf compiler on
// demand with npx.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const deps = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const work = join(tmpdir(), `clinimesh-protos-${process.pid}`);
const modules = {
  envoy: join(deps, 'envoy-api'),
  xds: join(deps, 'xds'),
  googleapis: join(deps, 'googleapis'),
  // protoc-gen-validate's validate.proto at the version Envoy's protos use (the copy in
  // grpc-js-xds is older and lacks ignore_empty); pinned from the protoc-gen-validate 1.3.3 wheel.
  pgv: join(root, 'proto', 'third_party'),
};

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
for (const [name, target] of Object.entries(modules)) {
  symlinkSync(target, join(work, name));
}
writeFileSync(
  join(work, 'buf.yaml'),
  `version: v2\nmodules:\n${Object.keys(modules)
    .map((m) => `  - path: ${m}\n`)
    .join('')}`,
);

// The entry points we use; buf adds everything they import.
const entries = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/formatter/req_without_query/v3/req_without_query.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto',
  'envoy/config/trace/v3/zipkin.proto',
];
const out = join(root, 'proto', 'envoy-descriptors.binpb');
const BUF = '@bufbuild/buf@1.75.0';
execFileSync(
  'npx',
  [
    '--yes',
    BUF,
    'build',
    '--exclude-source-info',
    '-o',
    out,
    ...entries.flatMap((p) => ['--path', join('envoy', p)]),
  ],
  {
    cwd: work,
    stdio: 'inherit',
  },
);
rmSync(work, { recursive: true, force: true });
console.log(`protos: wrote ${out}`);
