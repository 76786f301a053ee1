// SDS secrets and the TLS contexts that use them. A sidecar holds two secrets: its own workload
// certificate and key (`default`) and the mesh's trust bundle (`ROOTCA`). Listeners and clusters
// name them over SDS, so a rotated certificate reaches Envoy without touching a listener or dropping
// a connection.
import type { JsonObject } from '../resources/json.ts';
import { SECRET } from '../resources/type-urls.ts';
import { configSource } from './config-source.ts';
import type { Resource, SidecarSecrets, XdsTransport } from './types.ts';

export const WORKLOAD_SECRET = 'default';
export const TRUST_BUNDLE_SECRET = 'ROOTCA';

const TLS = 'envoy.extensions.transport_sockets.tls.v3';

export function generateSecrets(secrets: SidecarSecrets): Resource[] {
  return [
    {
      typeUrl: SECRET,
      name: WORKLOAD_SECRET,
      body: {
        name: WORKLOAD_SECRET,
        tls_certificate: {
          certificate_chain: { inline_string: secrets.certChainPem },
          private_key: { inline_string: secrets.privateKeyPem },
        },
      },
    },
    {
      typeUrl: SECRET,
      name: TRUST_BUNDLE_SECRET,
      body: { name: TRUST_BUNDLE_SECRET, validation_context: { trusted_ca: { inline_string: secrets.trustBundlePem } } },
    },
  ];
}

function commonTls(transport: XdsTransport, sans: JsonObject[]): JsonObject {
  const sds = configSource(transport);
  return {
    tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
    tls_certificate_sds_secret_configs: [{ name: WORKLOAD_SECRET, sds_config: sds }],
    combined_validation_context: {
      default_validation_context: { match_typed_subject_alt_names: sans },
      validation_context_sds_secret_config: { name: TRUST_BUNDLE_SECRET, sds_config: sds },
    },
  };
}

/** Inbound: a client certificate from this mesh's CA with an identity in its trust domain. */
export function downstreamTls(trustDomain: string, transport: XdsTransport): JsonObject {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': `type.googleapis.com/${TLS}.DownstreamTlsContext`,
      require_client_certificate: true,
      common_tls_context: commonTls(transport, [{ san_type: 'URI', matcher: { prefix: `spiffe://${trustDomain}/` } }]),
    },
  };
}

/** Outbound: only the exact SPIFFE identity of the service we mean to reach is accepted. */
export function upstreamTls(targetSpiffeId: string, sni: string, transport: XdsTransport): JsonObject {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': `type.googleapis.com/${TLS}.UpstreamTlsContext`,
      sni,
      common_tls_context: commonTls(transport, [{ san_type: 'URI', matcher: { exact: targetSpiffeId } }]),
    },
  };
}
