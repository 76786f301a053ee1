// The desired state: the validated manifests in force, with a revision that only ever grows.
import type { AccessPolicy, Mesh, Service, TrafficPolicy } from '../manifest/types.ts';

export interface DesiredState {
  readonly revision: number;
  readonly mesh: Mesh;
  /** Keyed by `serviceKey` (`his.clinical`). */
  readonly services: ReadonlyMap<string, Service>;
  /** AccessPolicies by the serviceKey of their destination. */
  readonly policies: ReadonlyMap<string, readonly AccessPolicy[]>;
  /** TrafficPolicies by the serviceKey of their destination. */
  readonly traffic: ReadonlyMap<string, readonly TrafficPolicy[]>;
}
