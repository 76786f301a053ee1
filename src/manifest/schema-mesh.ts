// kind: Mesh — mesh-wide settings: the SPIFFE trust domain, the mTLS mode, default timeouts, what a
// destination without AccessPolicies accepts, where sidecars write the audit trail, and their
// telemetry (schema-telemetry.ts).
import type { KindSchema } from './kind-schema.ts';
import { absolutePath, dnsName, duration } from './field-values.ts';
import { readMetrics, readTracing } from './schema-telemetry.ts';
import type { Mesh, MtlsMode } from './types.ts';
import { bool, mapOf, oneOf, type MapFields } from './yaml-reader.ts';

type DefaultAction = Mesh['authorization']['defaultAction'];

export const MESH_DEFAULTS = {
  trustDomain: 'clinimesh.local',
  mtlsMode: 'STRICT' as MtlsMode,
  connectTimeoutMs: 2_000,
  requestTimeoutMs: 15_000,
  // ALLOW keeps a mesh without policies working; DENY is the opt-in for deny-all.
  defaultAction: 'ALLOW' as DefaultAction,
  auditEnabled: true,
  auditPath: '/dev/stdout',
} as const;

/** The mesh in force when no Mesh manifest exists. */
export const DEFAULT_MESH: Mesh = {
  kind: 'Mesh',
  name: 'default',
  trustDomain: MESH_DEFAULTS.trustDomain,
  mtls: { mode: MESH_DEFAULTS.mtlsMode },
  defaults: {
    connectTimeoutMs: MESH_DEFAULTS.connectTimeoutMs,
    requestTimeoutMs: MESH_DEFAULTS.requestTimeoutMs,
  },
  authorization: { defaultAction: MESH_DEFAULTS.defaultAction },
  audit: { enabled: MESH_DEFAULTS.auditEnabled, path: MESH_DEFAULTS.auditPath },
  origin: { file: '<built-in>' },
};

function readDefaults(spec: MapFields | undefined): Mesh['defaults'] {
  const defaults = spec?.optional('defaults', mapOf(['connectTimeout', 'requestTimeout']));
  return {
    // Envoy needs a positive connect timeout; a request timeout of 0s means none.
    connectTimeoutMs:
      defaults?.optional('connectTimeout', duration({ allowZero: false })) ?? MESH_DEFAULTS.connectTimeoutMs,
    requestTimeoutMs:
      defaults?.optional('requestTimeout', duration({ allowZero: true })) ?? MESH_DEFAULTS.requestTimeoutMs,
  };
}

function readAuthorization(spec: MapFields | undefined): Mesh['authorization'] {
  const authorization = spec?.optional('authorization', mapOf(['defaultAction']));
  return {
    defaultAction:
      authorization?.optional('defaultAction', oneOf<DefaultAction>(['ALLOW', 'DENY'])) ??
      MESH_DEFAULTS.defaultAction,
  };
}

function readAudit(spec: MapFields | undefined): Mesh['audit'] {
  const audit = spec?.optional('audit', mapOf(['enabled', 'path']));
  return {
    enabled: audit?.optional('enabled', bool) ?? MESH_DEFAULTS.auditEnabled,
    // Envoy opens the path itself, relative to a working directory nobody controls: absolute only.
    path: audit?.optional('path', absolutePath) ?? MESH_DEFAULTS.auditPath,
  };
}

/** Absent stays absent (not `metrics: undefined`), so a Mesh without them reads as before. */
const telemetry = (metrics: Mesh['metrics'], tracing: Mesh['tracing']) => ({
  ...(metrics && { metrics }),
  ...(tracing && { tracing }),
});

export const meshSchema: KindSchema<Mesh> = {
  namespaced: false,
  read(doc, { name, origin }) {
    // Every field has a default, so `spec` itself may be left out.
    const spec = doc.optional(
      'spec',
      mapOf(['trustDomain', 'mtls', 'defaults', 'authorization', 'audit', 'metrics', 'tracing']),
    );
    const mtls = spec?.optional('mtls', mapOf(['mode']));
    return {
      kind: 'Mesh',
      name,
      trustDomain: spec?.optional('trustDomain', dnsName) ?? MESH_DEFAULTS.trustDomain,
      mtls: {
        mode: mtls?.optional('mode', oneOf<MtlsMode>(['STRICT', 'PERMISSIVE'])) ?? MESH_DEFAULTS.mtlsMode,
      },
      defaults: readDefaults(spec),
      authorization: readAuthorization(spec),
      audit: readAudit(spec),
      ...telemetry(readMetrics(spec), readTracing(spec)),
      origin,
    };
  },
};
