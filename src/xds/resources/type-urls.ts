// xDS type URLs as constants with a string-literal union, as grpc-js-xds does.
export const TYPE_PREFIX = 'type.googleapis.com/';

export const CLUSTER = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
export const ENDPOINT = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
export const LISTENER = 'type.googleapis.com/envoy.config.listener.v3.Listener';
export const ROUTE = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
export const SECRET = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

export type TypeUrl = typeof CLUSTER | typeof ENDPOINT | typeof LISTENER | typeof ROUTE | typeof SECRET;

/**
 * The order in which a change is pushed so nothing is referenced before it exists (make before
 * break): secrets and clusters first, then their endpoints, then listeners, then the routes in them.
 */
export const PUSH_ORDER: readonly TypeUrl[] = [SECRET, CLUSTER, ENDPOINT, LISTENER, ROUTE];

/** Types where an empty subscription means "everything" (wildcard) in SotW. */
export const WILDCARD_TYPES: ReadonlySet<TypeUrl> = new Set([CLUSTER, LISTENER]);

const SHORT: Record<TypeUrl, string> = {
  [CLUSTER]: 'CDS',
  [ENDPOINT]: 'EDS',
  [LISTENER]: 'LDS',
  [ROUTE]: 'RDS',
  [SECRET]: 'SDS',
};

/** REST paths (`/v3/discovery:clusters`) per type. */
export const REST_PATHS: Record<string, TypeUrl> = {
  clusters: CLUSTER,
  endpoints: ENDPOINT,
  listeners: LISTENER,
  routes: ROUTE,
  secrets: SECRET,
};

export function isTypeUrl(s: string): s is TypeUrl {
  return s in SHORT;
}

export function shortName(t: TypeUrl): string {
  return SHORT[t];
}

export function messageTypeOf(t: string): string {
  return t.startsWith(TYPE_PREFIX) ? t.slice(TYPE_PREFIX.length) : t;
}
