// The mesh as generators see it, made from the desired state and what discovery reported. A view is
// made from the last one by redoing only the services whose manifest or discovered endpoints
// changed since, and what did not change is the very object it was in the last view (memoised by
// the manifest it derives from), so finding what changed between views is mostly identity checks.
import type { EndpointSet } from '../../discovery/endpoints.ts';
import { staticEndpoints } from '../../discovery/static.ts';
import type { Instance, Mesh, Service } from '../../manifest/types.ts';
import type { DesiredState } from '../../store/state.ts';
import type { MeshView } from '../generate/types.ts';

export class MeshViews {
  /** Endpoints learned from dynamic sources (Consul), by serviceKey; static ones come from state. */
  private readonly discovered = new Map<string, EndpointSet>();
  /** Services whose discovered endpoints arrived since the last view was made. */
  private discoveredSince = new Set<string>();
  private lastView: { state: DesiredState; view: MeshView } | undefined;
  private mesh: { from: Mesh; view: Mesh } | undefined;
  private readonly staticSets = new WeakMap<Service, EndpointSet>();
  private readonly discoveredServices = new WeakMap<Service, { set: EndpointSet; service: Service }>();

  /** The trust domain the CA serves overrides the Mesh's (see ControlPlane). */
  constructor(private readonly trustDomain: () => string | undefined) {}

  /** Records what discovery reports for one service; returns what it reported before. */
  discover(set: EndpointSet): EndpointSet | undefined {
    const before = this.discovered.get(set.service);
    this.discovered.set(set.service, set);
    this.discoveredSince.add(set.service);
    return before;
  }

  discoveredSet(service: string): EndpointSet | undefined {
    return this.discovered.get(service);
  }

  /**
   * The mesh as generators see it. What did not change is the very object it was in the last view
   * (memoised by the manifest it derives from), so comparing views is mostly comparing identities.
   */
  make(state: DesiredState): MeshView {
    const last = this.lastView;
    const services = new Map(last?.view.services ?? state.services);
    const endpoints = new Map(last?.view.endpoints);
    // Made again: services whose manifest or discovered endpoints changed since the last view.
    let keys: Iterable<string> = state.services.keys();
    if (last) {
      const changed = new Set(this.discoveredSince);
      if (state.services !== last.state.services) {
        for (const [key, s] of state.services) if (last.state.services.get(key) !== s) changed.add(key);
        for (const key of last.state.services.keys()) if (!state.services.has(key)) changed.add(key);
      }
      keys = changed;
    }
    for (const key of keys) this.viewEntry(key, state, services, endpoints);
    this.discoveredSince.clear();
    const trustDomain = this.trustDomain() ?? state.mesh.trustDomain;
    if (this.mesh?.from !== state.mesh || this.mesh.view.trustDomain !== trustDomain)
      this.mesh = { from: state.mesh, view: { ...state.mesh, trustDomain } };
    const view = {
      mesh: this.mesh.view,
      services,
      endpoints,
      policies: state.policies,
      traffic: state.traffic,
      externals: state.externals,
    };
    this.lastView = { state, view };
    return view;
  }

  /** One service's entries in a view: as declared, with its endpoints (and discovered instances). */
  private viewEntry(
    key: string,
    state: DesiredState,
    services: Map<string, Service>,
    endpoints: Map<string, EndpointSet>,
  ): void {
    const service = state.services.get(key);
    const set =
      service?.discovery.mode === 'static' ? this.staticSet(service) : service && this.discovered.get(key);
    if (set) endpoints.set(key, set);
    else endpoints.delete(key);
    if (!service) services.delete(key);
    else
      services.set(
        key,
        service.discovery.mode === 'consul' && set ? this.withInstances(service, set) : service,
      );
  }

  private staticSet(service: Service): EndpointSet {
    let set = this.staticSets.get(service);
    if (!set) this.staticSets.set(service, (set = staticEndpoints(service)));
    return set;
  }

  private withInstances(service: Service, set: EndpointSet): Service {
    const known = this.discoveredServices.get(service);
    if (known?.set === set) return known.service;
    const merged = withDiscoveredInstances(service, set);
    this.discoveredServices.set(service, { set, service: merged });
    return merged;
  }
}

// At most 63 characters, as DNS allows; the bound also keeps the match linear on hostile input.
const LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * A Consul service's instances are what Consul says, plus any the manifest declares. A discovered
 * instance's sidecar binds where Consul says it is, and reaches its app on the address in the
 * instance's `clinimesh-app-address` meta (default 127.0.0.1).
 */
function withDiscoveredInstances(service: Service, set: EndpointSet): Service {
  const declared = new Set(service.instances.map((i) => i.name));
  const discovered: Instance[] = set.endpoints
    .filter((e) => LABEL.test(e.instance) && !declared.has(e.instance))
    .map((e) => ({
      name: e.instance,
      address: e.address,
      appAddress: e.meta['clinimesh-app-address'] ?? '127.0.0.1',
      locality: e.locality,
      weight: e.weight,
      meta: e.meta,
    }));
  return discovered.length ? { ...service, instances: [...service.instances, ...discovered] } : service;
}
