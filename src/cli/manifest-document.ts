// A manifest of the validated model (as GET /v1/manifests returns it, or as parsed locally) written
// back as the document an operator would write: apiVersion, kind, metadata, spec, durations as
// `2s`, paths with their `*`. Defaults are written out, so `get -o yaml` shows what is in force.
// Kinds not written out here field by field appear with their model's fields as the spec.
import { stringify } from 'yaml';
import {
  API_VERSION,
  isExternalUpstream,
  type AccessPolicy,
  type ExternalService,
  type Manifest,
  type Mesh,
  type PathMatch,
  type Service,
} from '../manifest/types.ts';

type Doc = Record<string, unknown>;

export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

const nonEmpty = (o: object | undefined): boolean => o !== undefined && Object.keys(o).length > 0;

const hostPort = ({ host, port }: { host: string; port: number }) =>
  host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;

function meshSpec(m: Mesh): Doc {
  return {
    trustDomain: m.trustDomain,
    mtls: { mode: m.mtls.mode },
    defaults: {
      connectTimeout: formatDuration(m.defaults.connectTimeoutMs),
      requestTimeout: formatDuration(m.defaults.requestTimeoutMs),
    },
    authorization: { defaultAction: m.authorization.defaultAction },
    audit: { enabled: m.audit.enabled, path: m.audit.path },
    ...(m.metrics && { metrics: { port: m.metrics.port } }),
    ...(m.tracing && {
      tracing: {
        zipkin: { collector: hostPort(m.tracing.zipkin), path: m.tracing.zipkin.path },
        sampling: m.tracing.samplingPercent,
      },
    }),
  };
}

function serviceSpec(s: Service): Doc {
  const discovery: Doc = { mode: s.discovery.mode };
  if (s.discovery.consulName && s.discovery.consulName !== s.name)
    discovery.consulName = s.discovery.consulName;
  if (s.discovery.register) discovery.register = true;
  return {
    ports: s.ports.map((p) => ({
      name: p.name,
      port: p.port,
      targetPort: p.targetPort,
      protocol: p.protocol,
      ...(p.instancePorts && { instancePorts: { ...p.instancePorts } }),
    })),
    discovery,
    instances: s.instances.map((i) => ({
      name: i.name,
      address: i.address,
      appAddress: i.appAddress,
      ...(nonEmpty(i.locality) ? { locality: i.locality } : {}),
      weight: i.weight,
      ...(nonEmpty(i.meta) ? { meta: i.meta } : {}),
    })),
    ...(s.upstreams.length
      ? {
          upstreams: s.upstreams.map((u) =>
            isExternalUpstream(u)
              ? { external: u.external, namespace: u.namespace, localPort: u.localPort }
              : { service: u.service, namespace: u.namespace, port: u.port, localPort: u.localPort },
          ),
        }
      : {}),
  };
}

const pathText = (p: PathMatch): string => ('exact' in p ? p.exact : `${p.prefix}*`);

function policySpec(p: AccessPolicy): Doc {
  return {
    destination: { service: p.destination.service, namespace: p.destination.namespace },
    rules: p.rules.map((r) => ({
      from: r.from.map((f) => ({ service: f.service, namespace: f.namespace })),
      // Dropping `ports` would widen the rule to every port on the next get → edit → apply.
      ...(r.ports ? { ports: r.ports } : {}),
      ...(r.http
        ? {
            http: {
              ...(r.http.methods.length ? { methods: r.http.methods } : {}),
              ...(r.http.paths.length ? { paths: r.http.paths.map(pathText) } : {}),
            },
          }
        : {}),
    })),
  };
}

function externalSpec(e: ExternalService): Doc {
  const tls: Doc =
    e.tls.mode === 'NONE'
      ? { mode: 'NONE' }
      : {
          mode: 'ORIGINATE',
          ...(e.tls.sni !== undefined && { sni: e.tls.sni }),
          ...(e.tls.caFile !== undefined && { caFile: e.tls.caFile }),
          subjectAltNames: e.tls.subjectAltNames,
        };
  return {
    endpoints: e.endpoints.map((p) => ({ address: p.address, port: p.port })),
    protocol: e.protocol,
    tls,
    ...(e.plaintextReason !== undefined && { allowPlaintext: true, plaintextReason: e.plaintextReason }),
  };
}

/**
 * The model's conventions undone generically: `timeoutMs: 2000` is written `timeout: 2s`, and empty
 * lists and maps (the model's "absent") are left out, as a manifest would leave them out.
 */
function writtenFields(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(writtenFields);
  if (typeof v !== 'object' || v === null) return v;
  const out: Doc = {};
  for (const [k, value] of Object.entries(v)) {
    if (
      value === undefined ||
      (Array.isArray(value) && value.length === 0) ||
      (isPlainObject(value) && Object.keys(value).length === 0)
    )
      continue;
    if (k.endsWith('Ms') && typeof value === 'number') out[k.slice(0, -2)] = formatDuration(value);
    else out[k] = writtenFields(value);
  }
  return out;
}

const isPlainObject = (v: unknown): v is Doc => typeof v === 'object' && v !== null && !Array.isArray(v);

export function toDocument(m: Manifest): Doc {
  const labels = (m as { labels?: Record<string, string> }).labels;
  const metadata: Doc = {
    name: m.name,
    ...('namespace' in m ? { namespace: m.namespace } : {}),
    ...(nonEmpty(labels) ? { labels } : {}),
  };
  return { apiVersion: API_VERSION, kind: m.kind, metadata, spec: specOf(m) };
}

function specOf(m: Manifest): Doc {
  if (m.kind === 'Mesh') return meshSpec(m);
  if (m.kind === 'Service') return serviceSpec(m);
  if (m.kind === 'AccessPolicy') return policySpec(m);
  if (m.kind === 'ExternalService') return externalSpec(m);
  // A kind not written out field by field: its model's fields, in the manifests' conventions.
  const skip = new Set(['kind', 'name', 'namespace', 'origin', 'labels']);
  return writtenFields(
    Object.fromEntries(Object.entries(m as unknown as Doc).filter(([k]) => !skip.has(k))),
  ) as Doc;
}

export function toYaml(m: Manifest): string {
  return stringify(toDocument(m), { lineWidth: 0 });
}
