// The Mesh's telemetry: `spec.metrics` (each sidecar's stats for Prometheus) and `spec.tracing`
// (spans to a Zipkin collector). Both are off unless asked for.
import { isIP } from 'node:net';
import { isScalar } from 'yaml';
import { isHostOrIp, portNumber } from './field-values.ts';
import type { Mesh } from './types.ts';
import { mapOf, stringWhere, type MapFields, type Reader } from './yaml-reader.ts';

export const TRACING_DEFAULTS = {
  /** Zipkin's own API path for JSON v2 spans. */
  zipkinPath: '/api/v2/spans',
  /** 1 % of requests, as Istio: enough to see the shape of traffic, cheap at clinical volumes. */
  samplingPercent: 1,
} as const;

/** A port opened on every instance is the operator's decision: off unless asked for. */
export function readMetrics(spec: MapFields | undefined): Mesh['metrics'] {
  const metrics = spec?.optional('metrics', mapOf(['port']));
  const port = metrics?.required('port', portNumber);
  return port === undefined ? undefined : { port };
}

/** `host:port`, `[v6]:port`: where a collector listens. */
const hostPort: Reader<{ host: string; port: number }> = (r, node, path) => {
  const text = stringWhere(
    (s) => splitHostPort(s) !== undefined,
    'host:port (e.g. "zipkin.observability:9411")',
  )(r, node, path);
  return text === undefined ? undefined : splitHostPort(text);
};

function splitHostPort(s: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!host || !(port >= 1 && port <= 65535)) return undefined;
  if (m?.[1] !== undefined && isIP(host) !== 6) return undefined;
  return isHostOrIp(host) ? { host, port } : undefined;
}

/** A percentage, 0 to 100, fractions allowed (0.1 traces one request in a thousand). */
const percent: Reader<number> = (r, node, path) => {
  const v = isScalar(node) ? node.value : undefined;
  if (typeof v !== 'number' || !Number.isFinite(v))
    return r.expected(node, path, 'a percentage from 0 to 100');
  if (v < 0 || v > 100) {
    r.report(node, path, `${v} is out of range: expected a percentage from 0 to 100`);
    return undefined;
  }
  return v;
};

const absoluteUrlPath: Reader<string> = stringWhere(
  (s) => /^\/[\x21-\x7e]*$/.test(s) && !s.includes('?'),
  'an absolute URL path without a query (e.g. "/api/v2/spans")',
);

export function readTracing(spec: MapFields | undefined): Mesh['tracing'] {
  const tracing = spec?.optional('tracing', mapOf(['zipkin', 'sampling']));
  if (!tracing) return undefined;
  const zipkin = tracing.required('zipkin', mapOf(['collector', 'path']));
  const collector = zipkin?.required('collector', hostPort);
  const path = zipkin?.optional('path', absoluteUrlPath) ?? TRACING_DEFAULTS.zipkinPath;
  const samplingPercent = tracing.optional('sampling', percent) ?? TRACING_DEFAULTS.samplingPercent;
  if (!collector) return undefined;
  return { zipkin: { ...collector, path }, samplingPercent };
}
