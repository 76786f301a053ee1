// Per-instance exposure (a port with instancePorts): for a caller of such a port, one listener at
// `<appAddress>:base+k`, one cluster and one assignment per ordinal k, each assignment holding just
// the instance with that ordinal. Kafka clients need it: they talk to each broker at the address the
// broker advertises, which a load-balanced listener cannot be. The listeners and clusters depend on
// the manifests only (count fixes the ordinals); which instance backs ordinal k comes from endpoints,
// so discovery changes stay EDS updates.
import type { Endpoint, EndpointSet } from '../../discovery/endpoints.ts';
import { instanceOrdinal } from '../../manifest/instance-ordinal.ts';
import type { InstancePorts, ServicePort, ServiceUpstream } from '../../manifest/types.ts';
import { renameEdsCluster } from './clusters.ts';
import { generateLoadAssignment } from './endpoints.ts';
import { instanceClusterName, instanceUpstream } from './names.ts';
import type { CLUSTER, ENDPOINT } from '../resources/type-urls.ts';
import type { Resource } from './types.ts';

type UpstreamName = Pick<ServiceUpstream, 'service' | 'namespace' | 'port'>;

const ordinals = (exposed: InstancePorts): number[] => Array.from({ length: exposed.count }, (_, k) => k);

/**
 * The instance behind ordinal k: healthy before degraded, then by instance id, so a replacement
 * registered while the old one lingers (Consul) never makes one broker address reach two brokers.
 */
function instanceFor(set: EndpointSet | undefined, portName: string, ordinal: number): Endpoint[] {
  const candidates = (set?.endpoints ?? [])
    .filter(
      (e) =>
        e.health !== 'UNHEALTHY' &&
        e.ports[portName] !== undefined &&
        instanceOrdinal(e.instance, e.meta) === ordinal,
    )
    .sort(
      (a, b) =>
        Number(a.health !== 'HEALTHY') - Number(b.health !== 'HEALTHY') ||
        (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0),
    );
  return candidates.slice(0, 1);
}

/** One assignment per ordinal (empty when no instance has it: a broker not up yet). */
export function instanceAssignments(
  upstream: UpstreamName,
  port: ServicePort,
  set: EndpointSet | undefined,
): Resource<typeof ENDPOINT>[] {
  const exposed = port.instancePorts;
  if (!exposed) return [];
  return ordinals(exposed).map((k) =>
    generateLoadAssignment(instanceClusterName(upstream, k), port.name, {
      service: set?.service ?? '',
      source: set?.source ?? 'static',
      endpoints: instanceFor(set, port.name, k),
    }),
  );
}

/**
 * Per-ordinal clusters, copies of the upstream's load-balanced cluster (same TLS identity and SNI),
 * without outlier detection: with one host, an ejection would leave the broker unreachable for the
 * whole ejection time after it restarts.
 */
export function instanceClusters(
  upstream: UpstreamName,
  port: ServicePort,
  cluster: Resource<typeof CLUSTER>,
): Resource<typeof CLUSTER>[] {
  const exposed = port.instancePorts;
  if (!exposed) return [];
  return ordinals(exposed).map((k) => {
    const renamed = renameEdsCluster(cluster, instanceClusterName(upstream, k));
    const body = { ...renamed.body };
    delete body.outlier_detection;
    return { ...renamed, body };
  });
}

/** The upstream as each ordinal's listener sees it (local port base+k, cluster of ordinal k). */
export function instanceUpstreams<U extends UpstreamName>(
  upstream: U,
  port: ServicePort,
): (U & { localPort: number })[] {
  const exposed = port.instancePorts;
  if (!exposed) return [];
  return ordinals(exposed).map((k) => instanceUpstream(upstream, k, exposed.base));
}
