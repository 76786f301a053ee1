// kind: TrafficPolicy — how callers reach a destination service: subsets of its instances by
// labels, routes by match with weighted splits, load balancing (consistent hashing for patient
// affinity), timeouts, retries that never repeat a clinical write, circuit breaking, outlier
// detection, rate limiting, fault injection and mirroring. Whether the services and ports named
// exist is a set check (check-traffic.ts); this file reads one document.
import { isMap, isScalar } from 'yaml';
import { HTTP_METHODS } from './schema-access-policy.ts';
import { dnsLabel, duration } from './field-values.ts';
import { DEFAULT_NAMESPACE, type KindSchema } from './kind-schema.ts';
import type {
  FaultPolicy,
  HeaderMatch,
  LbPolicy,
  RequestPathMatch,
  RetryOn,
  RetryPolicy,
  ServiceRef,
  Subset,
  TrafficMatch,
  TrafficPolicy,
  TrafficRoute,
  TrafficTarget,
} from './types.ts';
import {
  bool,
  childPath,
  complete,
  intIn,
  listOf,
  mapOf,
  oneOf,
  str,
  stringMap,
  stringWhere,
  type MapFields,
  type Reader,
} from './yaml-reader.ts';

export const LB_POLICIES: readonly LbPolicy[] = [
  'ROUND_ROBIN',
  'LEAST_REQUEST',
  'RANDOM',
  'RING_HASH',
  'MAGLEV',
];
/** Retried only when the request provably never reached the upstream: safe for any method. */
export const SAFE_RETRY_CONDITIONS: readonly RetryOn[] = [
  'connect-failure',
  'refused-stream',
  'reset-before-request',
];
export const RETRY_CONDITIONS: readonly RetryOn[] = [
  ...SAFE_RETRY_CONDITIONS,
  'reset',
  '5xx',
  'gateway-error',
  'retriable-4xx',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
];
/** Methods whose repetition changes nothing more (RFC 9110 §9.2.2). */
export const IDEMPOTENT_METHODS = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'] as const;
export const DEFAULT_IDEMPOTENCY_HEADER = 'idempotency-key';

const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
const headerName: Reader<string> = (r, node, path) => {
  const v = str(r, node, path);
  if (v === undefined) return undefined;
  const lower = v.toLowerCase();
  if (!HEADER_NAME.test(lower) || lower.startsWith(':')) return r.expected(node, path, 'an HTTP header name');
  return lower;
};

/**
 * Envoy compiles these with RE2: no lookaround, no backreferences, and a bounded program size, so
 * what JavaScript would accept is narrowed to what RE2 will (a NACK at 3 a.m. otherwise).
 */
const regex: Reader<string> = stringWhere((s) => {
  if (s.length === 0 || s.length > 256 || /\(\?<?[=!]|\\[1-9]|\\k</.test(s)) return false;
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
}, 'an RE2 regular expression of at most 256 characters (no lookaround or backreferences)');

const percent: Reader<number> = (r, node, path) => {
  const v = isScalar(node) && typeof node.value === 'number' ? node.value : undefined;
  if (v === undefined || !(v >= 0 && v <= 100))
    return r.expected(node, path, 'a percentage between 0 and 100');
  return v;
};

function serviceRefReader(ownNamespace: string): Reader<ServiceRef> {
  return (r, node, path) => {
    if (!isMap(node)) {
      const service = dnsLabel(r, node, path);
      return service === undefined ? undefined : { service, namespace: ownNamespace };
    }
    const m = mapOf(['service', 'namespace'])(r, node, path);
    const service = m?.required('service', dnsLabel);
    const namespace = m?.optional('namespace', dnsLabel) ?? ownNamespace;
    return service === undefined ? undefined : { service, namespace };
  };
}

const subsetReader: Reader<Subset> = (r, node, path) => {
  const m = mapOf(['name', 'labels'])(r, node, path);
  const name = m?.required('name', dnsLabel);
  const labels = m?.required('labels', stringMap);
  if (labels && Object.keys(labels).length === 0)
    r.reportAt(childPath(path, 'labels'), 'a subset needs at least one label');
  return name === undefined || labels === undefined ? undefined : { name, labels };
};

const pathReader: Reader<RequestPathMatch> = (r, node, path) => {
  const m = mapOf(['exact', 'prefix', 'regex'])(r, node, path);
  if (!m) return undefined;
  const exact = m.optional('exact', str);
  const prefix = m.optional('prefix', str);
  const re = m.optional('regex', regex);
  const given = [exact, prefix, re].filter((v) => v !== undefined).length;
  if (given !== 1) return r.expected(node, path, 'exactly one of exact, prefix or regex');
  for (const v of [exact, prefix])
    if (v !== undefined && !v.startsWith('/'))
      r.report(node, path, `${JSON.stringify(v)} must start with "/"`);
  return exact !== undefined ? { exact } : prefix !== undefined ? { prefix } : { regex: re! };
};

const headerMatchReader: Reader<HeaderMatch> = (r, node, path) => {
  const m = mapOf(['name', 'exact', 'prefix', 'regex', 'present'])(r, node, path);
  const name = m?.required('name', headerName);
  if (!m || name === undefined) return undefined;
  const exact = m.optional('exact', str);
  const prefix = m.optional('prefix', str);
  const re = m.optional('regex', regex);
  const present = m.optional('present', bool);
  if (present === false)
    r.report(
      node,
      childPath(path, 'present'),
      'present: false is not supported; match a header that is there',
    );
  const given = [exact, prefix, re, present || undefined].filter((v) => v !== undefined).length;
  if (given > 1) return r.expected(node, path, 'at most one of exact, prefix, regex or present');
  if (exact !== undefined) return { name, exact };
  if (prefix !== undefined) return { name, prefix };
  if (re !== undefined) return { name, regex: re };
  return { name, present: true };
};

const matchReader: Reader<TrafficMatch> = (r, node, path) => {
  const m = mapOf(['path', 'headers', 'methods'])(r, node, path);
  if (!m) return undefined;
  const p = m.optional('path', pathReader);
  const headers = complete(m.optional('headers', listOf(headerMatchReader)) ?? []);
  const methods = complete(m.optional('methods', listOf(oneOf(HTTP_METHODS))) ?? []);
  if (headers === undefined || methods === undefined || (m.has('path') && p === undefined)) return undefined;
  return { ...(p && { path: p }), headers, methods };
};

function targetReader(ownNamespace: string): Reader<TrafficTarget> {
  return (r, node, path) => {
    const m = mapOf(['subset', 'service', 'weight'])(r, node, path);
    const subset = m?.optional('subset', dnsLabel);
    const service = m?.optional('service', serviceRefReader(ownNamespace));
    const weight = m?.optional('weight', intIn(0, 10_000));
    if (!m) return undefined;
    if (subset && service)
      r.report(node, path, 'a target is a subset of the destination or another service, not both');
    return { ...(subset && { subset }), ...(service && { service }), weight: weight ?? 100 };
  };
}

const retriesReader: Reader<RetryPolicy> = (r, node, path) => {
  const m = mapOf(['attempts', 'on', 'perTryTimeout'])(r, node, path);
  const attempts = m?.required('attempts', intIn(1, 10));
  const on = complete(m?.required('on', listOf(oneOf(RETRY_CONDITIONS))));
  const perTry = m?.optional('perTryTimeout', duration({ allowZero: false }));
  if (on?.length === 0) r.reportAt(childPath(path, 'on'), 'name at least one retry condition');
  if (attempts === undefined || on === undefined) return undefined;
  return { attempts, on, ...(perTry !== undefined && { perTryTimeoutMs: perTry }) };
};

const faultReader: Reader<FaultPolicy> = (r, node, path) => {
  const m = mapOf(['delay', 'abort', 'onlyWithHeader'])(r, node, path);
  if (!m) return undefined;
  const delayMap = m.optional('delay', mapOf(['fixed', 'percent']));
  const abortMap = m.optional('abort', mapOf(['status', 'percent']));
  const delay = delayMap && {
    fixedMs: delayMap.required('fixed', duration({ allowZero: false })),
    percent: delayMap.required('percent', percent),
  };
  const abort = abortMap && {
    status: abortMap.required('status', intIn(200, 599)),
    percent: abortMap.required('percent', percent),
  };
  const onlyWithHeader = m.optional('onlyWithHeader', headerName);
  if (!delayMap && !abortMap) r.report(node, path, 'a fault needs a delay, an abort or both');
  const fault: FaultPolicy = {
    ...(delay?.fixedMs !== undefined &&
      delay.percent !== undefined && { delay: { fixedMs: delay.fixedMs, percent: delay.percent } }),
    ...(abort?.status !== undefined &&
      abort.percent !== undefined && { abort: { status: abort.status, percent: abort.percent } }),
    ...(onlyWithHeader && { onlyWithHeader }),
  };
  return fault;
};

function routeReader(idempotencyHeader: () => string, ownNamespace: string): Reader<TrafficRoute> {
  return (r, node, path) => {
    const m = mapOf(['match', 'to', 'timeout', 'retries', 'fault', 'mirror'])(r, node, path);
    if (!m) return undefined;
    const match = m.optional('match', matchReader);
    // No `to`: the whole destination (every instance).
    const to = m.has('to')
      ? complete(m.required('to', listOf(targetReader(ownNamespace))))
      : [{ weight: 100 }];
    if (to?.length === 0) r.reportAt(childPath(path, 'to'), 'a route needs at least one target');
    if (to && to.length > 1 && to.reduce((s, t) => s + t.weight, 0) === 0)
      r.reportAt(childPath(path, 'to'), 'the weights of a split must not all be 0');
    const timeoutMs = m.optional('timeout', duration({ allowZero: true }));
    const retries = m.optional('retries', retriesReader);
    const fault = m.optional('fault', faultReader);
    const mirrorMap = m.optional('mirror', mapOf(['subset', 'percent']));
    const mirror = mirrorMap && {
      subset: mirrorMap.optional('subset', dnsLabel),
      percent: mirrorMap.optional('percent', percent) ?? 100,
    };
    if (retries && match) checkWriteRetries(m, path, match, retries, idempotencyHeader());
    if (!to) return undefined;
    return {
      ...(match && { match }),
      to,
      ...(timeoutMs !== undefined && { timeoutMs }),
      ...(retries && { retries }),
      ...(fault && { fault }),
      ...(mirror && { mirror: { ...(mirror.subset && { subset: mirror.subset }), percent: mirror.percent } }),
    };
  };
}

/**
 * A route that matches only non-idempotent writes (POST, PATCH) and retries after the upstream may
 * have seen the request would repeat a clinical write: refused unless the route requires the
 * idempotency header. (Routes matching other methods too are generated safe per request.)
 */
function checkWriteRetries(
  m: MapFields,
  path: string,
  match: TrafficMatch,
  retries: RetryPolicy,
  keyHeader: string,
): void {
  const writesOnly =
    match.methods.length > 0 &&
    match.methods.every((x) => !(IDEMPOTENT_METHODS as readonly string[]).includes(x));
  const unsafe = retries.on.filter((c) => !SAFE_RETRY_CONDITIONS.includes(c));
  const keyed = match.headers.some((h) => h.name === keyHeader && 'present' in h);
  if (writesOnly && unsafe.length && !keyed) {
    m.r.reportAt(
      childPath(path, 'retries'),
      `retrying ${match.methods.join('/')} on ${unsafe.join(', ')} could execute a clinical write twice: match only requests carrying the ${keyHeader} header (headers: [{ name: ${keyHeader}, present: true }]) or retry only on ${SAFE_RETRY_CONDITIONS.join(', ')}`,
    );
  }
}

function optionalInts<K extends string>(
  m: MapFields | undefined,
  keys: readonly K[],
  min: number,
  max: number,
): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = {};
  for (const k of keys) {
    const v = m?.optional(k, intIn(min, max));
    if (v !== undefined) out[k] = v;
  }
  return out;
}

export const trafficPolicySchema: KindSchema<TrafficPolicy> = {
  namespaced: true,
  read(doc, { name, namespace = DEFAULT_NAMESPACE, origin }) {
    const spec = doc.required(
      'spec',
      mapOf([
        'destination',
        'port',
        'from',
        'subsets',
        'routes',
        'loadBalancer',
        'localityFailover',
        'connectionPool',
        'outlierDetection',
        'rateLimit',
        'idempotencyHeader',
      ]),
    );
    if (!spec) return undefined;
    const destination = spec.required('destination', serviceRefReader(namespace));
    const port = spec.optional('port', dnsLabel);
    const from = spec.optional('from', listOf(serviceRefReader(namespace)));
    const idempotencyHeader = spec.optional('idempotencyHeader', headerName) ?? DEFAULT_IDEMPOTENCY_HEADER;
    const subsets = complete(spec.optional('subsets', listOf(subsetReader)) ?? []);
    const routes = complete(
      spec.optional('routes', listOf(routeReader(() => idempotencyHeader, namespace))) ?? [],
    );
    const lb = spec.optional('loadBalancer', mapOf(['policy', 'hashHeader']));
    const policy = lb?.required('policy', oneOf(LB_POLICIES));
    const hashHeader = lb?.optional('hashHeader', headerName);
    if (lb && hashHeader && policy !== 'RING_HASH' && policy !== 'MAGLEV')
      doc.r.reportAt('spec.loadBalancer.hashHeader', 'hashHeader needs policy RING_HASH or MAGLEV');
    if (lb && (policy === 'RING_HASH' || policy === 'MAGLEV') && !hashHeader)
      doc.r.reportAt(
        'spec.loadBalancer.policy',
        `${policy} needs a hashHeader (e.g. x-patient-id) to keep a patient on one instance`,
      );
    const localityFailover = spec.optional('localityFailover', bool) ?? false;
    const pool = spec.optional(
      'connectionPool',
      mapOf(['maxConnections', 'maxPendingRequests', 'maxRequests', 'maxRetries']),
    );
    const outlier = spec.optional(
      'outlierDetection',
      mapOf(['consecutive5xx', 'interval', 'baseEjectionTime', 'maxEjectionPercent']),
    );
    const intervalMs = outlier?.optional('interval', duration({ allowZero: false }));
    const baseEjectionTimeMs = outlier?.optional('baseEjectionTime', duration({ allowZero: false }));
    const rl = spec.optional('rateLimit', mapOf(['requestsPerSecond', 'burst']));
    const rps = rl?.required('requestsPerSecond', intIn(1, 1_000_000));
    const burst = rl?.optional('burst', intIn(1, 1_000_000));
    if (rl && from)
      doc.r.reportAt(
        'spec.rateLimit',
        'a rate limit applies to every caller of the destination; leave out spec.from, or move the limit to a policy without it',
      );
    checkSubsetNames(doc, subsets ?? [], routes ?? []);
    if (
      destination === undefined ||
      subsets === undefined ||
      routes === undefined ||
      (from && !complete(from))
    )
      return undefined;
    return {
      kind: 'TrafficPolicy',
      name,
      namespace,
      destination,
      ...(port && { port }),
      ...(from && { from: complete(from)! }),
      subsets,
      routes,
      ...(policy && { loadBalancer: { policy, ...(hashHeader && { hashHeader }) } }),
      localityFailover,
      ...(pool && {
        connectionPool: optionalInts(
          pool,
          ['maxConnections', 'maxPendingRequests', 'maxRequests', 'maxRetries'],
          0,
          1_000_000,
        ),
      }),
      ...(outlier && {
        outlierDetection: {
          ...optionalInts(outlier, ['consecutive5xx'], 1, 1000),
          ...optionalInts(outlier, ['maxEjectionPercent'], 0, 100),
          ...(intervalMs !== undefined && { intervalMs }),
          ...(baseEjectionTimeMs !== undefined && { baseEjectionTimeMs }),
        },
      }),
      ...(rps !== undefined && { rateLimit: { requestsPerSecond: rps, burst: burst ?? rps } }),
      idempotencyHeader,
      origin,
    };
  },
};

/** Subset names are unique, and routes and mirrors name only subsets the policy declares. */
function checkSubsetNames(doc: MapFields, subsets: readonly Subset[], routes: readonly TrafficRoute[]): void {
  const names = new Set<string>();
  subsets.forEach((s, i) => {
    if (names.has(s.name))
      doc.r.reportAt(`spec.subsets[${i}].name`, `subset ${s.name} is declared twice`, 'DUPLICATE');
    names.add(s.name);
  });
  routes.forEach((route, i) => {
    route.to.forEach((t, j) => {
      if (t.subset && !names.has(t.subset))
        doc.r.reportAt(
          `spec.routes[${i}].to[${j}].subset`,
          `no subset ${t.subset} in spec.subsets`,
          'REFERENCE',
        );
    });
    if (route.mirror?.subset && !names.has(route.mirror.subset))
      doc.r.reportAt(
        `spec.routes[${i}].mirror.subset`,
        `no subset ${route.mirror.subset} in spec.subsets`,
        'REFERENCE',
      );
  });
}
