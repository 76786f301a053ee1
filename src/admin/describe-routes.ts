// GET /v1/describe/<Kind>/[<namespace>/]<name>: a manifest with what the control plane derives from
// it (kubectl describe): for a Service its instances, endpoints (declared, or learned from Consul as
// the sidecars are served them), the sidecars that call it, the policies that target it and the
// sync state of its own sidecars; for an AccessPolicy whether its destination exists and its callers;
// for an ExternalService the sidecars that may call it (only those get a way out to it).
import { staticEndpoints } from '../discovery/static.ts';
import {
  manifestId,
  serviceKey,
  isExternalUpstream,
  serviceUpstreams,
  type AccessPolicy,
  type ExternalService,
  type Manifest,
  type Service,
} from '../manifest/types.ts';
import type { DesiredState } from '../store/state.ts';
import { ENDPOINT } from '../xds/resources/type-urls.ts';
import type { AdminCall } from './deps.ts';
import { send, sendProblems } from './respond.ts';
import { sidecarSync, type SidecarSync } from './sync-routes.ts';

interface EndpointView {
  readonly instance?: string;
  readonly address: string;
  readonly health?: string;
}

const withoutOrigin = (m: Manifest): Omit<Manifest, 'origin'> & { origin: { file: string } } => ({
  ...m,
  origin: { file: m.origin.file },
});

function callersOf(state: DesiredState, target: { name: string; namespace: string }): string[] {
  const callers: string[] = [];
  for (const s of state.services.values()) {
    if (!serviceUpstreams(s).some((u) => u.service === target.name && u.namespace === target.namespace))
      continue;
    for (const i of s.instances) callers.push(`${s.namespace}/${s.name}/${i.name}`);
  }
  return callers.sort();
}

/** Socket addresses anywhere in a ClusterLoadAssignment's JSON (field spelling aside). */
function socketAddresses(json: unknown, out: EndpointView[] = []): EndpointView[] {
  if (Array.isArray(json)) for (const v of json) socketAddresses(v, out);
  else if (typeof json === 'object' && json !== null) {
    const o = json as Record<string, unknown>;
    const sa = (o.socket_address ?? o.socketAddress) as Record<string, unknown> | undefined;
    if (sa && typeof sa.address === 'string')
      out.push({ address: `${sa.address}:${String(sa.port_value ?? sa.portValue ?? '')}` });
    else for (const v of Object.values(o)) socketAddresses(v, out);
  }
  return out;
}

/** What the callers' sidecars are served for a Consul service (the first caller that has it). */
function servedEndpoints(call: AdminCall, service: Service): EndpointView[] {
  const prefix = `${serviceKey(service)}|`;
  for (const node of call.deps.cache.nodeIds()) {
    const eds = call.deps.cache.get(node, ENDPOINT);
    const found = [...(eds?.resources.values() ?? [])].filter((r) => r.name.startsWith(prefix));
    if (found.length) return found.flatMap((r) => socketAddresses(r.json()));
  }
  return [];
}

function syncOf(call: AdminCall, nodes: ReadonlySet<string>): SidecarSync[] {
  return call.deps.statuses
    .all()
    .filter((s) => nodes.has(s.nodeId))
    .map((s) => sidecarSync(call.deps.cache, s));
}

function describeService(call: AdminCall, state: DesiredState, s: Service): object {
  const endpoints: EndpointView[] =
    s.discovery.mode === 'static'
      ? staticEndpoints(s).endpoints.map((e) => ({
          instance: e.instance,
          address: `${e.address}`,
          health: e.health,
        }))
      : servedEndpoints(call, s);
  const policies = (state.policies.get(serviceKey(s)) ?? []).map((p) => `${p.namespace}/${p.name}`);
  const own = new Set(s.instances.map((i) => `${s.namespace}/${s.name}/${i.name}`));
  return {
    manifest: withoutOrigin(s),
    instances: s.instances.map((i) => ({
      name: i.name,
      address: i.address,
      node: `${s.namespace}/${s.name}/${i.name}`,
    })),
    endpoints,
    calledBy: callersOf(state, s),
    policies,
    sidecars: syncOf(call, own),
  };
}

function describePolicy(state: DesiredState, p: AccessPolicy): object {
  const destination = state.services.get(
    serviceKey({ name: p.destination.service, namespace: p.destination.namespace }),
  );
  return {
    manifest: withoutOrigin(p),
    destination: `${p.destination.namespace}/${p.destination.service}`,
    destinationExists: destination !== undefined,
    allows: p.rules.flatMap((r) => r.from.map((f) => `${f.namespace}/${f.service}`)),
  };
}

function describeExternal(state: DesiredState, e: ExternalService): object {
  const callers: string[] = [];
  for (const s of state.services.values()) {
    const calls = s.upstreams.some(
      (u) => isExternalUpstream(u) && u.external === e.name && u.namespace === e.namespace,
    );
    if (calls) for (const i of s.instances) callers.push(`${s.namespace}/${s.name}/${i.name}`);
  }
  return { manifest: withoutOrigin(e), calledBy: callers.sort() };
}

export function describeManifest(
  call: AdminCall,
  kind: string,
  namespace: string | undefined,
  name: string,
): void {
  const id = manifestId({ kind, name, namespace });
  const found = call.deps.controlPlane.store.get(id);
  if (!found) return sendProblems(call.res, [{ code: 'NOT_FOUND', resource: id, message: 'not found' }], 404);
  const state = call.deps.controlPlane.state();
  if (found.kind === 'Service') return send(call.res, 200, describeService(call, state, found));
  if (found.kind === 'AccessPolicy') return send(call.res, 200, describePolicy(state, found));
  if (found.kind === 'ExternalService') return send(call.res, 200, describeExternal(state, found));
  return send(call.res, 200, {
    manifest: withoutOrigin(found),
    services: state.services.size,
    policies: [...state.policies.values()].flat().length,
  });
}
