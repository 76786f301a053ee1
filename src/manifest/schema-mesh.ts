// kind: Mesh — mesh-wide settings: the SPIFFE trust domain, the mTLS mode, default timeouts.
import type { KindSchema } from './kind-schema.ts';
import { dnsName, duration } from './field-values.ts';
import type { Mesh, MtlsMode } from './types.ts';
import { mapOf, oneOf } from './yaml-reader.ts';

export const MESH_DEFAULTS = {
  trustDomain: 'clinimesh.local',
  mtlsMode: 'STRICT' as MtlsMode,
  connectTimeoutMs: 2_000,
  requestTimeoutMs: 15_000,
} as const;

export const meshSchema: KindSchema<Mesh> = {
  namespaced: false,
  read(doc, { name, origin }) {
    // Every field has a default, so `spec` itself may be left out.
    const spec = doc.optional('spec', mapOf(['trustDomain', 'mtls', 'defaults']));
    const mtls = spec?.optional('mtls', mapOf(['mode']));
    const defaults = spec?.optional('defaults', mapOf(['connectTimeout', 'requestTimeout']));
    return {
      kind: 'Mesh',
      name,
      trustDomain: spec?.optional('trustDomain', dnsName) ?? MESH_DEFAULTS.trustDomain,
      mtls: {
        mode: mtls?.optional('mode', oneOf<MtlsMode>(['STRICT', 'PERMISSIVE'])) ?? MESH_DEFAULTS.mtlsMode,
      },
      defaults: {
        // Envoy needs a positive connect timeout; a request timeout of 0s means none.
        connectTimeoutMs:
          defaults?.optional('connectTimeout', duration({ allowZero: false })) ??
          MESH_DEFAULTS.connectTimeoutMs,
        requestTimeoutMs:
          defaults?.optional('requestTimeout', duration({ allowZero: true })) ??
          MESH_DEFAULTS.requestTimeoutMs,
      },
      origin,
    };
  },
};
