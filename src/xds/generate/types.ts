// What generators take and give. Plain data in, plain data out: no I/O, clock or globals.
import type { EndpointSet } from '../../discovery/endpoints.ts';
import type { AccessPolicy, ExternalService, Mesh, Service, TrafficPolicy } from '../../manifest/types.ts';
import type { ResourceJson } from '../resources/any-json.ts';
import type { TypeUrl } from '../resources/type-urls.ts';

export type XdsTransport = 'ads' | 'rest';

/** One sidecar: an instance of a service, and how it talks xDS (it decides its config sources). */
export interface SidecarRef {
  readonly nodeId: string;
  readonly namespace: string;
  readonly service: string;
  readonly instance: string;
  readonly transport: XdsTransport;
  /** Where this sidecar writes its audit log, when it asked (node metadata) for other than the mesh's. */
  readonly auditLogPath?: string;
  /**
   * A proxyless gRPC client (node metadata `clinimesh.proxyless: true`), not an Envoy: it gets API
   * listeners named after its gRPC upstreams instead of socket listeners (see proxyless.ts).
   */
  readonly proxyless?: boolean;
  /**
   * Where this sidecar's node agent writes its workload secret (node metadata `clinimesh.sds_dir`,
   * absolute); default DEFAULT_SDS_DIR.
   */
  readonly sdsDir?: string;
  /**
   * The port of this Envoy's admin on loopback (node metadata `clinimesh.admin_port`), where the
   * metrics listener reads its stats; default DEFAULT_ADMIN_PORT, 0 when unknown.
   */
  readonly adminPort?: number;
}

export interface MeshView {
  readonly mesh: Mesh;
  /** Keyed by `serviceKey` (`his.clinical`). */
  readonly services: ReadonlyMap<string, Service>;
  /** Keyed by `serviceKey`. A service without a set has no known endpoints yet. */
  readonly endpoints: ReadonlyMap<string, EndpointSet>;
  /** AccessPolicies by the serviceKey of their destination. */
  readonly policies: ReadonlyMap<string, readonly AccessPolicy[]>;
  /** TrafficPolicies by the serviceKey of their destination (absent in plain generator tests). */
  readonly traffic?: ReadonlyMap<string, readonly TrafficPolicy[]>;
  /** ExternalServices by `name.namespace` (absent: none, as in plain generator tests). */
  readonly externals?: ReadonlyMap<string, ExternalService>;
}

/** An Envoy resource in proto3 JSON form, its body typed by its type URL, before validation and encoding. */
export type Resource<U extends TypeUrl = TypeUrl> = {
  [T in U]: { readonly typeUrl: T; readonly name: string; readonly body: ResourceJson<T> };
}[U];

/** A sidecar's resources, one list per type. */
export type SidecarResources = { readonly [T in TypeUrl]: readonly Resource<T>[] };
