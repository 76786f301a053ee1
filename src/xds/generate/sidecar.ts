// Everything one sidecar needs, from the mesh view. Pure: same input, same output, in the same order.
import { fail, ok, type Problem, type Result } from '../../errors.ts';
import { serviceKey, serviceUpstreams, type Service } from '../../manifest/types.ts';
import { CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, type TypeUrl } from '../resources/type-urls.ts';
import { generateInboundCluster } from './clusters.ts';
import { generateExternalUpstreams } from './external.ts';
import { generateInboundListener, generateOutboundListener } from './listeners.ts';
import { instanceUpstreams } from './instance-ports.ts';
import { generateMetrics } from './metrics.ts';
import { generateTracingCluster, spanName } from './tracing.ts';
import { outboundClusterName } from './names.ts';
import { generateProxyless } from './proxyless.ts';
import { generateOutboundRoute } from './routes.ts';
import { callerPolicy, needsFaultFilter, routeTargetProblems, upstreamClusters } from './traffic.ts';
import { upstreamShared, type ShareUpstream } from './upstream-shared.ts';
import type { MeshView, Resource, SidecarRef, SidecarResources } from './types.ts';

export interface GenerateOptions {
  /**
   * Every hop mutual TLS, with certificates named over SDS (the workload's from its agent's files,
   * the trust bundle added per connected sidecar: see generateTrustBundle). Off only in tests of
   * plain generation.
   */
  readonly mtls: boolean;
  /** Shares what one upstream gives every caller alike between callers (see upstream-shared.ts). */
  readonly shareUpstream?: ShareUpstream;
}

export function generateSidecar(
  view: MeshView,
  sidecar: SidecarRef,
  options: GenerateOptions,
): Result<SidecarResources> {
  const service = view.services.get(serviceKey({ name: sidecar.service, namespace: sidecar.namespace }));
  const resource = `sidecar ${sidecar.nodeId}`;
  if (!service)
    return fail([
      { code: 'NOT_FOUND', resource, message: `no service ${sidecar.service}.${sidecar.namespace}` },
    ]);
  const instance = service.instances.find((i) => i.name === sidecar.instance);
  if (!instance) {
    return fail([
      { code: 'NOT_FOUND', resource, message: `service ${service.name} has no instance ${sidecar.instance}` },
    ]);
  }
  if (sidecar.proxyless) return generateProxyless(view, service, instance, options);
  const out: { [T in TypeUrl]: Resource<T>[] } = {
    [CLUSTER]: [],
    [ENDPOINT]: [],
    [LISTENER]: [],
    [ROUTE]: [],
    [SECRET]: [],
  };
  const problems: Problem[] = [];
  // A resource goes to the list of its own type (TypeScript cannot relate the two through the union).
  const push = (r: Resource) => (out[r.typeUrl] as Resource[]).push(r);

  const inbound = {
    mesh: view.mesh,
    service,
    instance,
    sidecar,
    mtls: options.mtls,
    policies: view.policies.get(serviceKey(service)) ?? [],
    traffic: view.traffic?.get(serviceKey(service)) ?? [],
  };
  for (const port of service.ports) {
    push(generateInboundCluster(port, instance, view.mesh));
    push(generateInboundListener(port, inbound));
  }
  for (const r of generateMetrics(view.mesh, instance, sidecar)) push(r);
  if (view.mesh.tracing) push(generateTracingCluster(view.mesh.tracing));
  for (const upstream of serviceUpstreams(service)) {
    const target = view.services.get(serviceKey({ name: upstream.service, namespace: upstream.namespace }));
    const port = target?.ports.find((p) => p.name === upstream.port);
    if (!target || !port) {
      problems.push({
        code: 'REFERENCE',
        resource,
        message: `upstream ${upstream.service}.${upstream.namespace}:${upstream.port} does not exist`,
      });
      continue;
    }
    const name = outboundClusterName(upstream);
    const policy = callerPolicy(view, service, target, port);
    const inputs = {
      upstream: { service: upstream.service, namespace: upstream.namespace, port: upstream.port },
      port,
      mesh: view.mesh,
      endpoints: view.endpoints.get(serviceKey(target)),
      policy,
      transport: sidecar.transport,
      mtls: options.mtls,
      sdsDir: sidecar.sdsDir,
      locality: policy?.localityFailover ? instance.locality : undefined,
    };
    // Its cluster, assignments, subset and per-instance clusters: alike for every caller.
    const shared = options.shareUpstream?.(inputs, upstreamShared) ?? upstreamShared(inputs);
    for (const r of shared) push(r);
    const outbound = { faults: needsFaultFilter(policy), mtls: options.mtls, tracing: view.mesh.tracing };
    push(generateOutboundListener(upstream, target, port, instance, sidecar, outbound));
    // A port with instancePorts: each instance on its own local port too (Kafka brokers).
    for (const u of instanceUpstreams(upstream, port))
      push(generateOutboundListener(u, target, port, instance, sidecar, { mtls: options.mtls }));
    const clusterOf = upstreamClusters(service, view, port.protocol);
    problems.push(...routeTargetProblems(policy, clusterOf, service, port.protocol, resource));
    if (port.protocol !== 'tcp')
      push(
        generateOutboundRoute(name, port.protocol, view.mesh, policy, clusterOf, spanName(target, port.name)),
      );
  }
  // Partners outside the mesh: only for a service that lists them (least privilege).
  const egress = generateExternalUpstreams(view, service, instance, sidecar);
  for (const r of egress.resources) push(r);
  problems.push(...egress.problems);
  return problems.length ? fail(problems) : ok(out);
}

/** The services whose endpoints this service's sidecars consume (for EDS-only pushes). */
export function upstreamServiceKeys(service: Service): string[] {
  return serviceUpstreams(service).map((u) => serviceKey({ name: u.service, namespace: u.namespace }));
}
