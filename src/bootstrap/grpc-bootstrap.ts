// The xDS bootstrap of a proxyless gRPC application (grpc-js-xds, grpc-go, grpc-java read the same
// JSON): its node, the xDS server (its node agent's local proxy), and the certificate provider that
// reads the workload certificate files the agent keeps renewed.
import type { JsonObject } from '../xds/resources/json.ts';
import { PROXYLESS_CERT_PROVIDER } from '../xds/generate/proxyless.ts';

export interface GrpcBootstrapOptions {
  readonly nodeId: string;
  /** `host:port` of the xDS server the application dials (plaintext: gRPC clients cannot do TLS to it). */
  readonly xdsServer: string;
  /** PEM files for the file_watcher certificate provider; absent: the application has no mesh identity. */
  readonly certificates?: { readonly certFile: string; readonly keyFile: string; readonly caFile: string };
  /** How often the application re-reads the files (the agent renews them in place). */
  readonly refreshInterval?: string;
}

export function grpcBootstrap(o: GrpcBootstrapOptions): JsonObject {
  const bootstrap: JsonObject = {
    xds_servers: [
      { server_uri: o.xdsServer, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] },
    ],
    node: {
      id: o.nodeId,
      cluster: o.nodeId.split('/')[1] ?? '',
      locality: {},
      metadata: { 'clinimesh.proxyless': true },
    },
  };
  if (o.certificates) {
    const config = {
      certificate_file: o.certificates.certFile,
      private_key_file: o.certificates.keyFile,
      ca_certificate_file: o.certificates.caFile,
      refresh_interval: o.refreshInterval ?? '10s',
    };
    bootstrap.certificate_providers = { [PROXYLESS_CERT_PROVIDER]: { plugin_name: 'file_watcher', config } };
  }
  return bootstrap;
}
