// The Endpoint model shared by every discovery source (manifests, Consul). Sources produce
// EndpointSets; the control plane never asks where an endpoint came from.
import type { Locality } from '../manifest/types.ts';

export type Health = 'HEALTHY' | 'DEGRADED' | 'UNHEALTHY' | 'UNKNOWN';

export interface Endpoint {
  /** Instance id, unique within its service (manifest instance name, Consul service ID). */
  readonly instance: string;
  readonly address: string;
  /** Mesh port per service port name (e.g. `{http: 15001}`). */
  readonly ports: Readonly<Record<string, number>>;
  readonly health: Health;
  readonly locality: Locality;
  /** Relative load-balancing weight, >= 1. */
  readonly weight: number;
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
}

/** All endpoints of one service, keyed by `serviceKey` (`his.clinical`). */
export interface EndpointSet {
  readonly service: string;
  readonly endpoints: readonly Endpoint[];
  /** Which source produced it, for status pages only. */
  readonly source: 'static' | 'consul';
}

/** Receives endpoint sets as a source learns them; a source never pushes an unchanged set. */
export interface EndpointSink {
  update(set: EndpointSet): void;
}
