// SDS secrets and the TLS contexts that use them. A sidecar holds two secrets: its own workload
// certificate and key (`default`) and the mesh's trust bundle (`ROOTCA`). The workload secret comes
// from files the node agent (`clinimesh agent`) writes beside its Envoy, so the key never leaves the
// workload; the trust bundle is public and comes from the control plane over ADS/REST, which lets a
// root rotation wait for every sidecar to ACK the new bundle before new-root certificates appear.
// Listeners and clusters name both over SDS, so a rotation touches no listener and drops nothing.
import { anyJson } from '../resources/any-json.ts';
import type { ConfigSourceJson } from '../resources/gen/envoy/config/core/v3/config_source_pb.ts';
import type { TransportSocketJson } from '../resources/gen/envoy/config/core/v3/base_pb.ts';
import type { SubjectAltNameMatcherJson } from '../resources/gen/envoy/extensions/transport_sockets/tls/v3/common_pb.ts';
import type { CommonTlsContextJson } from '../resources/gen/envoy/extensions/transport_sockets/tls/v3/tls_pb.ts';
import { SECRET } from '../resources/type-urls.ts';
import { configSource } from './config-source.ts';
import type { Resource, XdsTransport } from './types.ts';

export const WORKLOAD_SECRET = 'default';
export const TRUST_BUNDLE_SECRET = 'ROOTCA';

const TLS = 'envoy.extensions.transport_sockets.tls.v3';
export const SECRET_TYPE = `type.googleapis.com/${TLS}.Secret` as const;

/** Where a sidecar's agent writes its secret files unless the node says otherwise (`clinimesh.sds_dir`). */
export const DEFAULT_SDS_DIR = '/var/run/clinimesh/sds';

/** How a sidecar reaches its secrets: the workload's from the agent's files, the bundle over xDS. */
export interface SecretSources {
  readonly transport: XdsTransport;
  readonly sdsDir?: string;
}

/** The file the agent writes a secret to: a DiscoveryResponse-shaped JSON document, moved into place atomically. */
export const secretFileName = (secret: string): string => `${secret}.json`;

/** An SDS ConfigSource reading one secret from the agent's directory; Envoy reloads it when a file is moved in. */
export function fileSecretSource(sdsDir: string, secret: string): ConfigSourceJson {
  return {
    path_config_source: { path: `${sdsDir}/${secretFileName(secret)}`, watched_directory: { path: sdsDir } },
    resource_api_version: 'V3',
  };
}

/** The trust bundle every sidecar verifies its peers with (public: roots only). */
export function generateTrustBundle(trustBundlePem: string): Resource<typeof SECRET>[] {
  return [
    {
      typeUrl: SECRET,
      name: TRUST_BUNDLE_SECRET,
      body: {
        name: TRUST_BUNDLE_SECRET,
        validation_context: { trusted_ca: { inline_string: trustBundlePem } },
      },
    },
  ];
}

function commonTls(
  sources: SecretSources,
  sans: SubjectAltNameMatcherJson[],
  alpn: readonly string[] = [],
): CommonTlsContextJson {
  return {
    tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
    ...(alpn.length && { alpn_protocols: [...alpn] }),
    tls_certificate_sds_secret_configs: [
      {
        name: WORKLOAD_SECRET,
        sds_config: fileSecretSource(sources.sdsDir ?? DEFAULT_SDS_DIR, WORKLOAD_SECRET),
      },
    ],
    combined_validation_context: {
      default_validation_context: { match_typed_subject_alt_names: sans },
      validation_context_sds_secret_config: {
        name: TRUST_BUNDLE_SECRET,
        sds_config: configSource(sources.transport),
      },
    },
  };
}

/**
 * Inbound: a client certificate from this mesh's CA with an identity in its trust domain. `alpn`:
 * what the listener speaks inside TLS, when it is not left to the HTTP codec to detect (`h2` for
 * TCP tunnels).
 */
export function downstreamTls(
  trustDomain: string,
  sources: SecretSources,
  alpn: readonly string[] = [],
): TransportSocketJson {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: anyJson({
      '@type': `type.googleapis.com/${TLS}.DownstreamTlsContext`,
      require_client_certificate: true,
      common_tls_context: commonTls(
        sources,
        [{ san_type: 'URI', matcher: { prefix: `spiffe://${trustDomain}/` } }],
        alpn,
      ),
    }),
  };
}

/** Outbound: only the exact SPIFFE identity of the service we mean to reach is accepted. */
export function upstreamTls(
  targetSpiffeId: string,
  sni: string,
  sources: SecretSources,
  alpn: readonly string[] = [],
): TransportSocketJson {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: anyJson({
      '@type': `type.googleapis.com/${TLS}.UpstreamTlsContext`,
      sni,
      common_tls_context: commonTls(sources, [{ san_type: 'URI', matcher: { exact: targetSpiffeId } }], alpn),
    }),
  };
}
