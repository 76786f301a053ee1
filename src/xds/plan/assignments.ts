// The ClusterLoadAssignments a sidecar holds for the services it calls, rebuilt from new endpoint
// sets without planning the sidecar again (an EDS-only change: a Consul answer, or an apply that
// changed only a Service's instances). Built exactly as the generator builds them (the
// TrafficPolicy's subsets, the caller's locality priorities, per-instance ports), and prepared once
// per distinct assignment, shared by every caller that holds the same one.
import type { EndpointSet } from '../../discovery/endpoints.ts';
import { ok, fail, type Problem, type Result } from '../../errors.ts';
import { serviceKey, serviceUpstreams } from '../../manifest/types.ts';
import { outboundClusterName } from '../generate/index.ts';
import { instanceAssignments } from '../generate/instance-ports.ts';
import { callerPolicy, upstreamAssignments } from '../generate/traffic.ts';
import type { MeshView, SidecarRef } from '../generate/types.ts';
import type { PreparedResource, ResourcePool } from '../resources/prepared.ts';

/** Prepared assignments by what decides them (cluster, policy, locality when it matters). */
export type SharedAssignments = Map<string, Result<PreparedResource[]>>;

/**
 * The assignments of `sets`' services that `ref` calls, as `view` makes them; undefined when it
 * calls none of them (or is not in the view).
 */
export function assignmentsFor(
  view: MeshView,
  ref: SidecarRef,
  sets: Iterable<EndpointSet>,
  pool: ResourcePool,
  shared: SharedAssignments,
): Result<PreparedResource[]> | undefined {
  const own = view.services.get(serviceKey({ name: ref.service, namespace: ref.namespace }));
  const instance = own?.instances.find((i) => i.name === ref.instance);
  if (!own || !instance) return undefined;
  const out: PreparedResource[] = [];
  const problems: Problem[] = [];
  let touched = false;
  for (const set of sets) {
    const target = view.services.get(set.service);
    if (!target) continue;
    for (const u of serviceUpstreams(own)) {
      if (u.service !== target.name || u.namespace !== target.namespace) continue;
      const port = target.ports.find((p) => p.name === u.port);
      // A proxyless client gets config for its gRPC upstreams only (see generate/proxyless.ts).
      if (!port || (ref.proxyless && port.protocol !== 'grpc')) continue;
      const policy = callerPolicy(view, own, target, port);
      const name = outboundClusterName(u);
      // Shared by every consumer, unless locality failover makes priorities the caller's own.
      const key = `${ref.proxyless ? 'proxyless|' : ''}${name}|${policy ? `${policy.namespace}/${policy.name}` : ''}|${policy?.localityFailover ? JSON.stringify(instance.locality) : ''}`;
      let prepared = shared.get(key);
      if (!prepared) {
        const resources = [
          ...upstreamAssignments(name, port.name, set, policy, instance.locality),
          ...(ref.proxyless ? [] : instanceAssignments(u, port, set)),
        ];
        shared.set(key, (prepared = pool.prepareAll(resources)));
      }
      if (prepared.ok) out.push(...prepared.value);
      else problems.push(...prepared.errors);
      touched = true;
    }
  }
  if (!touched) return undefined;
  return problems.length ? fail(problems) : ok(out);
}

/** `current` with `replacements` put in place of the assignments of the same name. */
export function withReplaced(
  current: Iterable<PreparedResource>,
  replacements: readonly PreparedResource[],
): PreparedResource[] {
  const next = new Map<string, PreparedResource>();
  for (const r of current) next.set(r.name, r);
  for (const r of replacements) next.set(r.name, r);
  return [...next.values()];
}
