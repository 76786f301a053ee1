// What one upstream port gives every caller alike: its load-balanced cluster, its assignments, its
// subset clusters and its per-instance clusters and assignments. They depend on nothing of the
// caller but how it talks xDS, where its secrets are and (with locality failover) its locality, so
// a planner may make them once and share them, by reference, between every caller with the same
// inputs (see GenerateOptions.shareUpstream). Listeners and routes stay the caller's own.
import type { EndpointSet } from '../../discovery/endpoints.ts';
import { spiffeId } from '../../ca/spiffe.ts';
import {
  serviceKey,
  type Locality,
  type Mesh,
  type ServicePort,
  type TrafficPolicy,
  type ServiceUpstream,
} from '../../manifest/types.ts';
import { generateOutboundCluster, renameEdsCluster } from './clusters.ts';
import { instanceAssignments, instanceClusters } from './instance-ports.ts';
import { outboundClusterName } from './names.ts';
import { subsetClusterName, upstreamAssignments } from './traffic.ts';
import type { Resource, XdsTransport } from './types.ts';

/** Everything the shared resources of one upstream derive from (and nothing else). */
export interface UpstreamInputs {
  readonly upstream: Pick<ServiceUpstream, 'service' | 'namespace' | 'port'>;
  /** The target's port the upstream names. */
  readonly port: ServicePort;
  readonly mesh: Mesh;
  readonly endpoints: EndpointSet | undefined;
  /** The TrafficPolicy that governs this caller on this port (none for a sidecar's TCP port). */
  readonly policy: TrafficPolicy | undefined;
  readonly transport: XdsTransport;
  readonly mtls: boolean;
  readonly sdsDir: string | undefined;
  /** The caller's locality, only when the policy fails over by locality (it orders priorities). */
  readonly locality: Locality | undefined;
}

/** Makes (or shares) the resources of `inputs`; `make` is what a planner without sharing calls. */
export type ShareUpstream = (
  inputs: UpstreamInputs,
  make: (inputs: UpstreamInputs) => readonly Resource[],
) => readonly Resource[];

const NOWHERE: Locality = {};

export function upstreamShared(i: UpstreamInputs): Resource[] {
  const name = outboundClusterName(i.upstream);
  const target = { namespace: i.upstream.namespace, service: i.upstream.service };
  const tls = i.mtls
    ? {
        spiffeId: spiffeId(i.mesh.trustDomain, target),
        sni: serviceKey({ name: target.service, namespace: target.namespace }),
        sdsDir: i.sdsDir,
      }
    : undefined;
  const cluster = generateOutboundCluster(name, i.port.protocol, i.mesh, i.transport, tls, i.policy);
  return [
    cluster,
    ...upstreamAssignments(name, i.port.name, i.endpoints, i.policy, i.locality ?? NOWHERE),
    ...(i.policy?.subsets ?? []).map((s) => renameEdsCluster(cluster, subsetClusterName(name, s.name))),
    ...instanceClusters(i.upstream, i.port, cluster),
    ...instanceAssignments(i.upstream, i.port, i.endpoints),
  ];
}
