// The validated manifest model (apiVersion clinimesh.io/v1alpha1). Parsing turns YAML into these
// precise types; nothing downstream ever sees unvalidated input.
import type { SourcePos } from '../errors.ts';
import type { FieldPositions } from './field-positions.ts';

export const API_VERSION = 'clinimesh.io/v1alpha1';

export type Protocol = 'http' | 'grpc' | 'tcp';
export type MtlsMode = 'STRICT' | 'PERMISSIVE';

export interface Locality {
  readonly region?: string;
  readonly zone?: string;
  readonly subZone?: string;
}

/** Where a document came from, kept so later checks (references, conflicts) can point at it. */
export interface Origin {
  readonly file: string;
  readonly pos?: SourcePos;
  /**
   * Where each field was written in `file`: field path (`spec.upstreams[0].service`) → [line, col],
   * 1-based, read with `fieldAt`. Set for manifests read from YAML, so cross-document checks can
   * point at the field.
   */
  readonly fieldPos?: FieldPositions;
}

export interface Mesh {
  readonly kind: 'Mesh';
  readonly name: string;
  readonly trustDomain: string;
  readonly mtls: { readonly mode: MtlsMode };
  readonly defaults: MeshDefaults;
  /**
   * ALLOW: a destination without any AccessPolicy accepts every mesh caller; DENY: it accepts none
   * (deny-all). Either way, a destination with policies accepts only what they allow.
   */
  readonly authorization: { readonly defaultAction: 'ALLOW' | 'DENY' };
  /** The audit trail: one JSON line per inbound request, written by the destination's sidecar. */
  readonly audit: { readonly enabled: boolean; readonly path: string };
  /** Each sidecar serves Envoy's stats for Prometheus on this port of its instance's address; absent: off. */
  readonly metrics?: MeshMetrics;
  /** Every sidecar reports spans of HTTP/gRPC requests to this collector; absent: off. */
  readonly tracing?: MeshTracing;
  readonly origin: Origin;
}

export interface MeshMetrics {
  readonly port: number;
}

export interface MeshTracing {
  /** A Zipkin collector (Zipkin's JSON v2 API at `path`). */
  readonly zipkin: { readonly host: string; readonly port: number; readonly path: string };
  /** The share of requests traced, 0–100 (fractions allowed). */
  readonly samplingPercent: number;
}

/** A caller: a service identity (its SPIFFE ID is derived from namespace and name). */
export interface ServiceRef {
  readonly service: string;
  readonly namespace: string;
}

/** A path in an HTTP rule: `exact` or, written with a trailing `*`, a `prefix`. */
export type PathMatch = { readonly exact: string } | { readonly prefix: string };

export interface AccessRule {
  readonly from: readonly ServiceRef[];
  /** Absent: any request (and, for TCP ports, the connection). Empty lists mean "any". */
  readonly http?: { readonly methods: readonly string[]; readonly paths: readonly PathMatch[] };
  /** Names of the destination's ports the rule opens; absent: all of them. */
  readonly ports?: readonly string[];
}

/** Who may call a destination service; once one exists for a destination, all else is denied. */
export interface AccessPolicy {
  readonly kind: 'AccessPolicy';
  readonly name: string;
  readonly namespace: string;
  readonly destination: ServiceRef;
  readonly rules: readonly AccessRule[];
  readonly origin: Origin;
}

export interface MeshDefaults {
  readonly connectTimeoutMs: number;
  /** Per-request timeout for HTTP/gRPC routes; 0 disables it. */
  readonly requestTimeoutMs: number;
}

export interface ServicePort {
  readonly name: string;
  /** The port peers reach each instance's sidecar on (the inbound mesh port). */
  readonly port: number;
  /** The port the application itself listens on, behind its sidecar. */
  readonly targetPort: number;
  readonly protocol: Protocol;
  /**
   * Each instance also reachable on its own: callers get a listener per instance at
   * `<appAddress>:base+k` for the instance with ordinal k (0 ≤ k < count), beside the
   * load-balanced `localPort`. For peers that must reach one given instance (Kafka brokers).
   */
  readonly instancePorts?: InstancePorts;
}

/** Per-instance exposure of a TCP port; `count` fixes the ordinals, so listeners depend on manifests only. */
export interface InstancePorts {
  readonly base: number;
  readonly count: number;
}

export interface Instance {
  readonly name: string;
  /** Where the sidecar of this instance is reachable by peers. */
  readonly address: string;
  /** Where the application listens, and where its outbound listeners bind (default 127.0.0.1). */
  readonly appAddress: string;
  readonly locality: Locality;
  readonly weight: number;
  readonly meta: Readonly<Record<string, string>>;
}

export interface ServiceUpstream {
  readonly service: string;
  readonly namespace: string;
  /** Name of the upstream service's port to call. */
  readonly port: string;
  /** Local port the application connects to for this upstream (on its appAddress). */
  readonly localPort: number;
}

/** A call to an ExternalService (egress): `{ external: reference-lab, localPort: 9101 }`. */
export interface ExternalUpstream {
  readonly external: string;
  readonly namespace: string;
  /** Local port the application connects to (plaintext) for this partner, on its appAddress. */
  readonly localPort: number;
}

/** One entry of `spec.upstreams`: a mesh service's port or an external service. */
export type Upstream = ServiceUpstream | ExternalUpstream;

export function isExternalUpstream(u: Upstream): u is ExternalUpstream {
  return 'external' in u;
}

/** The upstreams that call mesh services (indices shift: iterate `upstreams` where a field path is needed). */
export function serviceUpstreams(s: { readonly upstreams: readonly Upstream[] }): ServiceUpstream[] {
  return s.upstreams.filter((u): u is ServiceUpstream => !isExternalUpstream(u));
}

export type DiscoveryMode = 'static' | 'consul';

export interface Service {
  readonly kind: 'Service';
  readonly name: string;
  readonly namespace: string;
  /**
   * `metadata.labels`, Kubernetes-style; present only when written. `clinical.data: phi` marks a
   * service that handles patient data, which `clinimesh analyze` holds to stricter rules.
   */
  readonly labels?: Readonly<Record<string, string>>;
  readonly ports: readonly ServicePort[];
  readonly discovery: {
    readonly mode: DiscoveryMode;
    readonly consulName?: string;
    readonly register: boolean;
  };
  readonly instances: readonly Instance[];
  readonly upstreams: readonly Upstream[];
  readonly origin: Origin;
}

/** A named part of a service's instances, chosen by labels (an instance's `meta`, Consul meta). */
export interface Subset {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** Request path match: exact, prefix or RE2 regex. */
export type RequestPathMatch =
  { readonly exact: string } | { readonly prefix: string } | { readonly regex: string };

export type HeaderMatch = { readonly name: string } & (
  | { readonly exact: string }
  | { readonly prefix: string }
  | { readonly regex: string }
  | { readonly present: true }
);

export interface TrafficMatch {
  readonly path?: RequestPathMatch;
  readonly headers: readonly HeaderMatch[];
  readonly methods: readonly string[];
}

/** Where a route sends requests: a subset of the destination, or the destination itself; a weight in a split. */
export interface TrafficTarget {
  readonly subset?: string;
  /** Another service instead of the destination (the caller must list it among its upstreams). */
  readonly service?: ServiceRef;
  readonly weight: number;
}

/** Conditions under which a request is retried (Envoy's retry_on, gRPC statuses included). */
export type RetryOn =
  | 'connect-failure'
  | 'refused-stream'
  | 'reset-before-request'
  | 'reset'
  | '5xx'
  | 'gateway-error'
  | 'retriable-4xx'
  | 'cancelled'
  | 'deadline-exceeded'
  | 'internal'
  | 'resource-exhausted'
  | 'unavailable';

export interface RetryPolicy {
  readonly attempts: number;
  readonly on: readonly RetryOn[];
  readonly perTryTimeoutMs?: number;
}

export interface FaultPolicy {
  readonly delay?: { readonly fixedMs: number; readonly percent: number };
  readonly abort?: { readonly status: number; readonly percent: number };
  /** Only requests carrying this header are faulted (drills on chosen traffic). */
  readonly onlyWithHeader?: string;
}

export interface TrafficRoute {
  readonly match?: TrafficMatch;
  readonly to: readonly TrafficTarget[];
  readonly timeoutMs?: number;
  readonly retries?: RetryPolicy;
  readonly fault?: FaultPolicy;
  readonly mirror?: { readonly subset?: string; readonly percent: number };
}

export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV';

export interface TrafficPolicy {
  readonly kind: 'TrafficPolicy';
  readonly name: string;
  readonly namespace: string;
  readonly destination: ServiceRef;
  /** One port of the destination; absent: all its HTTP/gRPC ports. */
  readonly port?: string;
  /** The callers it applies to; absent: every caller. */
  readonly from?: readonly ServiceRef[];
  readonly subsets: readonly Subset[];
  readonly routes: readonly TrafficRoute[];
  readonly loadBalancer?: { readonly policy: LbPolicy; readonly hashHeader?: string };
  /**
   * Prefer instances in the caller's zone, then its region, then the rest, spilling over as the
   * nearer ones' healthy share drops (health checks and outlier detection feed it).
   */
  readonly localityFailover: boolean;
  readonly connectionPool?: {
    readonly maxConnections?: number;
    readonly maxPendingRequests?: number;
    readonly maxRequests?: number;
    readonly maxRetries?: number;
  };
  readonly outlierDetection?: {
    readonly consecutive5xx?: number;
    readonly intervalMs?: number;
    readonly baseEjectionTimeMs?: number;
    readonly maxEjectionPercent?: number;
  };
  /** Enforced by the destination's sidecars: a token bucket per sidecar. */
  readonly rateLimit?: { readonly requestsPerSecond: number; readonly burst: number };
  /** A request carrying this header may be retried after the upstream saw it (lower case). */
  readonly idempotencyHeader: string;
  readonly origin: Origin;
}

export interface ExternalEndpoint {
  /** A host name (resolved by the sidecar: STRICT_DNS) or an IP literal. */
  readonly address: string;
  readonly port: number;
}

/**
 * ORIGINATE: the sidecar opens TLS to the partner and verifies its certificate against
 * `caCertificates` or `caFile` (the system roots when neither) and its name against `subjectAltNames`.
 * NONE: plaintext, only with `allowPlaintext` and a reason.
 */
export type ExternalTls =
  | {
      readonly mode: 'ORIGINATE';
      /** Sent as SNI; absent only for IP endpoints verified by `subjectAltNames`. */
      readonly sni?: string;
      /** A file of CA certificates on each caller's host; read by its Envoy, not the control plane. */
      readonly caFile?: string;
      /** The CA certificates themselves (PEM), served to callers inside their cluster. */
      readonly caCertificates?: string;
      /** Names (DNS or IP) the partner's certificate must carry one of; never empty. */
      readonly subjectAltNames: readonly string[];
    }
  | { readonly mode: 'NONE' };

export type ExternalProtocol = 'http' | 'grpc' | 'tcp';

/** A partner outside the mesh (a reference lab, an e-prescribing gateway) that Services may call. */
export interface ExternalService {
  readonly kind: 'ExternalService';
  readonly name: string;
  readonly namespace: string;
  readonly endpoints: readonly ExternalEndpoint[];
  readonly protocol: ExternalProtocol;
  readonly tls: ExternalTls;
  /** Why plaintext is acceptable; set exactly when `tls.mode` is NONE. */
  readonly plaintextReason?: string;
  readonly origin: Origin;
}

export type Manifest = Mesh | Service | AccessPolicy | TrafficPolicy | ExternalService;
export type ManifestKind = Manifest['kind'];

/** `Service clinical/his`, `Mesh hospital`: how documents are named in errors and APIs. */
export function manifestId(m: { kind: string; name: string; namespace?: string }): string {
  return m.namespace ? `${m.kind} ${m.namespace}/${m.name}` : `${m.kind} ${m.name}`;
}

/** `Service clinical/his` → `his.clinical`; undefined for another kind (a removed Service is known only by its id). */
export function serviceKeyOfId(id: string): string | undefined {
  const m = /^Service ([^/ ]+)\/(.+)$/.exec(id);
  return m ? `${m[2]}.${m[1]}` : undefined;
}

/** `ExternalService clinical/reference-lab` → `reference-lab.clinical`; undefined for another kind. */
export function externalKeyOfId(id: string): string | undefined {
  const m = /^ExternalService ([^/ ]+)\/(.+)$/.exec(id);
  return m ? `${m[2]}.${m[1]}` : undefined;
}

/** `his.clinical`: the key of a service in state and the stem of its Envoy resource names. */
export function serviceKey(s: { name: string; namespace: string }): string {
  return `${s.name}.${s.namespace}`;
}
