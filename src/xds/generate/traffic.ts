// What a TrafficPolicy makes of one caller's upstream: subset clusters (the upstream's cluster with
// endpoints chosen by labels), cluster settings (load balancing, circuit breaking, outlier
// detection) and the route table (matches, weighted splits, timeouts, retries, faults, mirroring).
// Retries are split per request so a write is never repeated once the upstream may have seen it:
// idempotent methods and requests carrying the idempotency header get the policy's conditions,
// everything else only connect-failure/refused-stream/reset-before-request.
import type { EndpointSet } from '../../discovery/endpoints.ts';
import type { Problem } from '../../errors.ts';
import type { ENDPOINT } from '../resources/type-urls.ts';
import { generateLoadAssignment } from './endpoints.ts';
import { outboundClusterName } from './names.ts';
import type { MeshView, Resource } from './types.ts';
import { trafficPolicyFor } from '../../manifest/check-traffic.ts';
import { IDEMPOTENT_METHODS, SAFE_RETRY_CONDITIONS } from '../../manifest/schema-traffic-policy.ts';
import type {
  HeaderMatch,
  Locality,
  Mesh,
  Protocol,
  RequestPathMatch,
  RetryPolicy,
  Service,
  ServicePort,
  ServiceRef,
  Subset,
  TrafficPolicy,
  TrafficRoute,
} from '../../manifest/types.ts';
import { serviceKey, serviceUpstreams } from '../../manifest/types.ts';
import { anyJson, type AnyJsonOf } from '../resources/any-json.ts';
import type { CircuitBreakers_ThresholdsJson } from '../resources/gen/envoy/config/cluster/v3/circuit_breaker_pb.ts';
import type { ClusterJson } from '../resources/gen/envoy/config/cluster/v3/cluster_pb.ts';
import type { RuntimeFractionalPercentJson } from '../resources/gen/envoy/config/core/v3/base_pb.ts';
import type {
  HeaderMatcherJson,
  RetryPolicyJson,
  RouteActionJson,
  RouteJson,
  RouteMatchJson,
} from '../resources/gen/envoy/config/route/v3/route_components_pb.ts';
import type { HttpFilterJson } from '../resources/gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.ts';
import type { FractionalPercentJson } from '../resources/gen/envoy/type/v3/percent_pb.ts';
import type { TokenBucketJson } from '../resources/gen/envoy/type/v3/token_bucket_pb.ts';
import { duration } from './durations.ts';
import { routeAction, SAFE_RETRY_ON } from './route-action.ts';

/** The TrafficPolicy `caller` gets on `target`'s `port`: none on a TCP port, routed at L4 only. */
export function callerPolicy(
  view: MeshView,
  caller: Service,
  target: Service,
  port: ServicePort,
): TrafficPolicy | undefined {
  if (port.protocol === 'tcp') return undefined;
  const from = { service: caller.name, namespace: caller.namespace };
  return trafficPolicyFor(view.traffic?.get(serviceKey(target)), from, port.name);
}

export const FAULT_FILTER = 'envoy.filters.http.fault';
const FAULT_TYPE = 'envoy.extensions.filters.http.fault.v3.HTTPFault';
const FAULT = `type.googleapis.com/${FAULT_TYPE}` as const;
const PREVIOUS_HOSTS =
  'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate';

/** `outbound|http|his.clinical|canary`: one subset of an upstream port. */
export function subsetClusterName(cluster: string, subset: string): string {
  return `${cluster}|${subset}`;
}

/**
 * The endpoints whose labels include every label of the subset. An endpoint's labels are its meta
 * (manifest `meta`, Consul service meta) and its Consul tags: `version=v2` reads as `version: v2`,
 * a bare `canary` as `canary: "true"`; meta wins over a tag of the same key.
 */
export function subsetEndpoints(set: EndpointSet | undefined, subset: Subset): EndpointSet | undefined {
  if (!set) return undefined;
  const labels = Object.entries(subset.labels);
  return { ...set, endpoints: set.endpoints.filter((e) => labels.every(([k, v]) => labelsOf(e)[k] === v)) };
}

function labelsOf(e: EndpointSet['endpoints'][number]): Readonly<Record<string, string>> {
  if (e.tags.length === 0) return e.meta;
  const fromTags = Object.fromEntries(
    e.tags.map((t) =>
      t.includes('=') ? [t.slice(0, t.indexOf('=')), t.slice(t.indexOf('=') + 1)] : [t, 'true'],
    ),
  );
  return { ...fromTags, ...e.meta };
}

/**
 * Every ClusterLoadAssignment one caller's upstream port needs: the port's own and one per subset.
 * With locality failover their priorities follow the caller's locality, so they differ per caller.
 */
export function upstreamAssignments(
  cluster: string,
  port: string,
  endpoints: EndpointSet | undefined,
  policy: TrafficPolicy | undefined,
  caller: Locality,
): Resource<typeof ENDPOINT>[] {
  const near = policy?.localityFailover ? caller : undefined;
  return [
    generateLoadAssignment(cluster, port, endpoints, near),
    ...(policy?.subsets ?? []).map((s) =>
      generateLoadAssignment(subsetClusterName(cluster, s.name), port, subsetEndpoints(endpoints, s), near),
    ),
  ];
}

/** Load balancing, circuit breaking and outlier detection written into a cluster's body. */
export function applyClusterPolicy(body: ClusterJson, p: TrafficPolicy): ClusterJson {
  const out: ClusterJson = { ...body };
  if (p.loadBalancer) {
    out.lb_policy = p.loadBalancer.policy;
    if (p.loadBalancer.policy === 'RING_HASH') out.ring_hash_lb_config = { minimum_ring_size: '1024' };
    if (p.loadBalancer.policy === 'MAGLEV') out.maglev_lb_config = {};
    if (p.loadBalancer.policy === 'RING_HASH' || p.loadBalancer.policy === 'MAGLEV') {
      // Hashing picks a host from the whole ring; locality weights do not apply to it.
      const common = { ...(body.common_lb_config ?? {}) };
      delete common.locality_weighted_lb_config;
      out.common_lb_config = common;
    }
  }
  const pool = p.connectionPool;
  const retries = p.routes.some((r) => r.retries);
  if (pool || retries) {
    const thresholds: CircuitBreakers_ThresholdsJson = { priority: 'DEFAULT' };
    if (pool?.maxConnections !== undefined) thresholds.max_connections = pool.maxConnections;
    if (pool?.maxPendingRequests !== undefined) thresholds.max_pending_requests = pool.maxPendingRequests;
    if (pool?.maxRequests !== undefined) thresholds.max_requests = pool.maxRequests;
    if (pool?.maxRetries !== undefined) thresholds.max_retries = pool.maxRetries;
    // Envoy's default allows 3 retries in flight per cluster: under load a failing zone would answer
    // most callers unretried. A budget scales with traffic instead (25 % of active requests, ≥ 10).
    else if (retries) thresholds.retry_budget = { budget_percent: { value: 25 }, min_retry_concurrency: 10 };
    out.circuit_breakers = { thresholds: [thresholds] };
  }
  const o = p.outlierDetection;
  if (o) {
    const current = body.outlier_detection ?? {};
    out.outlier_detection = {
      ...current,
      ...(o.consecutive5xx !== undefined && { consecutive_5xx: o.consecutive5xx }),
      ...(o.intervalMs !== undefined && { interval: duration(o.intervalMs) }),
      ...(o.baseEjectionTimeMs !== undefined && { base_ejection_time: duration(o.baseEjectionTimeMs) }),
      ...(o.maxEjectionPercent !== undefined && { max_ejection_percent: o.maxEjectionPercent }),
    };
  }
  return out;
}

function pathMatch(p: RequestPathMatch | undefined): RouteMatchJson {
  if (!p) return { prefix: '/' };
  if ('exact' in p) return { path: p.exact };
  if ('prefix' in p) return { prefix: p.prefix };
  return { safe_regex: { regex: p.regex } };
}

function headerMatcher(h: HeaderMatch): HeaderMatcherJson {
  if ('present' in h) return { name: h.name, present_match: true };
  if ('exact' in h) return { name: h.name, string_match: { exact: h.exact } };
  if ('prefix' in h) return { name: h.name, string_match: { prefix: h.prefix } };
  return { name: h.name, string_match: { safe_regex: { regex: h.regex } } };
}

const methodMatcher = (methods: readonly string[]): HeaderMatcherJson => ({
  name: ':method',
  string_match: { safe_regex: { regex: `^(${methods.join('|')})$` } },
});

function percent(value: number): FractionalPercentJson {
  // Envoy's FractionalPercent is integral: hundredths of a percent keep two decimals.
  return { numerator: Math.round(value * 10_000), denominator: 'MILLION' };
}

const PREVIOUS_PRIORITIES =
  'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig';

function retryPolicy(on: readonly string[], r: RetryPolicy | undefined, failover: boolean): RetryPolicyJson {
  return {
    retry_on: on.join(','),
    num_retries: r?.attempts ?? 2,
    ...(r?.perTryTimeoutMs !== undefined && { per_try_timeout: duration(r.perTryTimeoutMs) }),
    // A retry goes to another host than the one that just failed…
    retry_host_predicate: [
      {
        name: 'envoy.retry_host_predicates.previous_hosts',
        typed_config: anyJson({ '@type': PREVIOUS_HOSTS }),
      },
    ],
    host_selection_retry_max_attempts: 3,
    // …and, with locality failover, to the next locality once one has failed: a zone whose
    // instances all fail is left at the first retry, before outlier detection has ejected them.
    ...(failover && {
      retry_priority: {
        name: 'envoy.retry_priorities.previous_priorities',
        typed_config: anyJson({ '@type': PREVIOUS_PRIORITIES, update_frequency: 1 }),
      },
    }),
  };
}

function faultConfig(route: TrafficRoute): AnyJsonOf<typeof FAULT_TYPE> | undefined {
  const f = route.fault;
  if (!f) return undefined;
  return {
    '@type': FAULT,
    ...(f.delay && {
      delay: { fixed_delay: duration(f.delay.fixedMs), percentage: percent(f.delay.percent) },
    }),
    ...(f.abort && { abort: { http_status: f.abort.status, percentage: percent(f.abort.percent) } }),
  };
}

export interface RouteContext {
  /** The upstream port's cluster (all instances); subsets are named from it. */
  readonly cluster: string;
  /** The caller's cluster for another service a route may send to (one of its upstreams). */
  readonly clusterOf?: (ref: ServiceRef) => string | undefined;
  readonly mesh: Mesh;
  readonly protocol: Protocol;
}

function action(route: TrafficRoute, p: TrafficPolicy, c: RouteContext, mirrored: boolean): RouteActionJson {
  const base = routeAction(c.cluster, c.mesh, c.protocol, false);
  const nameOf = (subset: string | undefined, service?: ServiceRef) =>
    service
      ? (c.clusterOf?.(service) ?? `missing|${service.service}.${service.namespace}`)
      : subset
        ? subsetClusterName(c.cluster, subset)
        : c.cluster;
  const out: RouteActionJson = { ...base };
  delete out.cluster;
  if (route.to.length === 1) out.cluster = nameOf(route.to[0]!.subset, route.to[0]!.service);
  else
    out.weighted_clusters = {
      clusters: route.to.map((t) => ({ name: nameOf(t.subset, t.service), weight: t.weight })),
    };
  if (route.timeoutMs !== undefined && c.protocol !== 'grpc') out.timeout = duration(route.timeoutMs);
  if (route.timeoutMs !== undefined && c.protocol === 'grpc')
    out.max_stream_duration = {
      max_stream_duration: duration(route.timeoutMs),
      grpc_timeout_header_max: duration(route.timeoutMs),
    };
  if (p.loadBalancer?.hashHeader) out.hash_policy = [{ header: { header_name: p.loadBalancer.hashHeader } }];
  if (route.mirror && mirrored) {
    out.request_mirror_policies = [
      {
        cluster: nameOf(route.mirror.subset),
        runtime_fraction: { default_value: percent(route.mirror.percent) },
      },
    ];
  }
  return out;
}

/**
 * The routes of one TrafficRoute. A fault only for requests with a header is a route of its own
 * matching that header, first (gRPC's fault filter ignores HTTPFault's header matcher; route
 * matching works everywhere). Then retries: one Envoy route when they are safe for any request,
 * else up to three, first match wins: idempotent methods, then requests carrying the idempotency
 * header (both with the policy's conditions), then the rest (only the safe conditions).
 */
function envoyRoutes(route: TrafficRoute, index: number, p: TrafficPolicy, c: RouteContext): RouteJson[] {
  const drillHeader = route.fault?.onlyWithHeader;
  if (drillHeader) {
    const drill = {
      ...route,
      match: {
        path: route.match?.path,
        methods: route.match?.methods ?? [],
        headers: [...(route.match?.headers ?? []), { name: drillHeader, present: true as const }],
      },
    };
    return [
      ...retryVariants(drill, `route-${index}-drill`, p, c, true),
      ...retryVariants(route, `route-${index}`, p, c, false),
    ];
  }
  return retryVariants(route, `route-${index}`, p, c, true);
}

function retryVariants(
  route: TrafficRoute,
  name: string,
  p: TrafficPolicy,
  c: RouteContext,
  faulted: boolean,
): RouteJson[] {
  const headers = (route.match?.headers ?? []).map(headerMatcher);
  const methods = route.match?.methods ?? [];
  const match = (extra: HeaderMatcherJson[], only: readonly string[] = methods): RouteMatchJson => ({
    ...pathMatch(route.match?.path),
    ...((headers.length || extra.length || only.length) && {
      headers: [...headers, ...(only.length ? [methodMatcher(only)] : []), ...extra],
    }),
  });
  const fault = faulted ? faultConfig(route) : undefined;
  // A mirrored request is executed by the shadow too: only requests safe to repeat are mirrored.
  const make = (name: string, m: RouteMatchJson, on: readonly string[], repeatable: boolean): RouteJson => ({
    name,
    match: m,
    route: {
      ...action(route, p, c, repeatable),
      retry_policy: retryPolicy(on, route.retries, p.localityFailover),
    },
    ...(fault && { typed_per_filter_config: { [FAULT_FILTER]: fault } }),
  });
  const safe = route.retries
    ? route.retries.on.filter((x) => SAFE_RETRY_CONDITIONS.includes(x))
    : SAFE_RETRY_ON.split(',');
  const unsafe = route.retries?.on.filter((x) => !SAFE_RETRY_CONDITIONS.includes(x)) ?? [];
  const safeOn = safe.length ? safe : SAFE_RETRY_ON.split(',');
  if (unsafe.length === 0 && !route.mirror) return [make(name, match([]), safeOn, false)];
  const all = unsafe.length ? route.retries!.on : safeOn;
  const idempotent = (methods.length ? methods : IDEMPOTENT_METHODS).filter((m) =>
    (IDEMPOTENT_METHODS as readonly string[]).includes(m),
  );
  return [
    ...(idempotent.length && c.protocol === 'http'
      ? [make(`${name}-idempotent`, match([], idempotent), all, true)]
      : []),
    make(`${name}-keyed`, match([{ name: p.idempotencyHeader, present_match: true }]), all, true),
    make(`${name}-writes`, match([]), safeOn, false),
  ];
}

/** The route table for a caller's upstream under `p`; a catch-all to every instance closes it. */
export function trafficRoutes(p: TrafficPolicy, c: RouteContext): RouteJson[] {
  const routes = p.routes.flatMap((r, i) => envoyRoutes(r, i, p, c));
  if (!p.routes.some((r) => !r.match))
    routes.push(...envoyRoutes({ to: [{ weight: 100 }] }, p.routes.length, p, c));
  return routes;
}

export function needsFaultFilter(p: TrafficPolicy | undefined): boolean {
  return !!p?.routes.some((r) => r.fault);
}

/** The HTTP fault filter for an HCM whose routes inject faults; per-route configs do the work. */
export function faultFilter(): HttpFilterJson {
  return { name: FAULT_FILTER, typed_config: anyJson({ '@type': FAULT }) };
}

/**
 * A token bucket that sustains `rps` and holds `burst` (at least one fill): refilled every 50 ms
 * (Envoy's finest) for fast rates, else one token every 1/rps s, so the rate is never capped at the
 * burst size.
 */
function bucketOf(rps: number, burst: number): TokenBucketJson {
  const intervalMs = Math.max(50, Math.ceil(1000 / rps));
  const perFill = Math.max(1, Math.round((rps * intervalMs) / 1000));
  return {
    max_tokens: Math.max(burst, perFill),
    tokens_per_fill: perFill,
    fill_interval: duration(intervalMs),
  };
}

const LOCAL_RATE_LIMIT =
  'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';

/**
 * The destination's token bucket for a port, when a TrafficPolicy sets one: over the rate a caller
 * gets 429 at once, before the application sees the request. Each sidecar holds its own bucket.
 */
export function rateLimitFilters(
  port: { name: string },
  policies: readonly TrafficPolicy[],
  statPrefix: string,
): HttpFilterJson[] {
  const limit = policies.find((p) => p.rateLimit && (!p.port || p.port === port.name))?.rateLimit;
  if (!limit) return [];
  const always: RuntimeFractionalPercentJson = {
    default_value: { numerator: 100, denominator: 'HUNDRED' },
    runtime_key: 'clinimesh_rate_limit',
  };
  return [
    {
      name: 'envoy.filters.http.local_ratelimit',
      typed_config: anyJson({
        '@type': LOCAL_RATE_LIMIT,
        stat_prefix: `${statPrefix}_rate_limit`,
        token_bucket: bucketOf(limit.requestsPerSecond, limit.burst),
        filter_enabled: always,
        filter_enforced: always,
      }),
    },
  ];
}

/**
 * A policy's routes may send to another service only over a cluster the caller has for it (one of its
 * upstreams, same protocol): one REFERENCE problem per service that is not.
 */
export function routeTargetProblems(
  policy: TrafficPolicy | undefined,
  clusterOf: (ref: ServiceRef) => string | undefined,
  caller: Service,
  protocol: Protocol,
  resource: string,
): Problem[] {
  const targets = policy?.routes.flatMap((r) => r.to.flatMap((t) => (t.service ? [t.service] : []))) ?? [];
  return targets
    .filter((ref) => !clusterOf(ref))
    .map((ref) => ({
      code: 'REFERENCE' as const,
      resource,
      message: `TrafficPolicy ${policy!.namespace}/${policy!.name} routes to ${ref.service}.${ref.namespace}, which ${caller.name}.${caller.namespace} does not call over ${protocol}`,
    }));
}

/** The caller's cluster for one of its upstream services (its first port listed), if it calls it. */
export function upstreamClusters(
  caller: Service,
  view: MeshView,
  protocol: Protocol,
): (ref: ServiceRef) => string | undefined {
  return (ref) => {
    const target = view.services.get(`${ref.service}.${ref.namespace}`);
    const u = serviceUpstreams(caller).find(
      (x) =>
        x.service === ref.service &&
        x.namespace === ref.namespace &&
        target?.ports.find((port) => port.name === x.port)?.protocol === protocol,
    );
    return u && outboundClusterName(u);
  };
}
