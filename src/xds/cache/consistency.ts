// Before a snapshot is published, every EDS and RDS name that clusters and listeners reference must
// be in it: a dangling reference would leave a sidecar warming forever. References are read from the
// exact fields Envoy follows (an EDS cluster's `eds_cluster_config.service_name`, an HTTP connection
// manager's `rds.route_config_name`), never from any key that happens to share the name.
import type { Problem } from '../../errors.ts';
import type { Resource } from '../generate/types.ts';
import type { JsonObject, JsonValue } from '../resources/json.ts';
import { CLUSTER, ENDPOINT, LISTENER, ROUTE, type TypeUrl } from '../resources/type-urls.ts';

const HCM_TYPE =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

function object(value: JsonValue | undefined): JsonObject | undefined {
  return value && typeof value === 'object' && !Array.isArray(value) ? value : undefined;
}

function objects(value: JsonValue | undefined): JsonObject[] {
  if (!Array.isArray(value)) return [];
  const out: JsonObject[] = [];
  for (const v of value) {
    const o = object(v);
    if (o) out.push(o);
  }
  return out;
}

/** The ClusterLoadAssignment an EDS cluster asks for: `service_name`, else the cluster's own name. */
export function edsReference(cluster: JsonObject): string | undefined {
  const type = cluster.type;
  if (type !== 'EDS') return undefined;
  const serviceName = object(cluster.eds_cluster_config)?.service_name;
  if (typeof serviceName === 'string' && serviceName !== '') return serviceName;
  return typeof cluster.name === 'string' ? cluster.name : undefined;
}

/** The RouteConfigurations a listener's HTTP connection managers (or a gRPC API listener) load over RDS. */
export function rdsReferences(listener: JsonObject): string[] {
  const managers: JsonObject[] = [];
  const chains = objects(listener.filter_chains);
  const fallback = object(listener.default_filter_chain);
  if (fallback) chains.push(fallback);
  for (const chain of chains) {
    for (const filter of objects(chain.filters)) {
      const config = object(filter.typed_config);
      if (config?.['@type'] === HCM_TYPE) managers.push(config);
    }
  }
  const api = object(object(listener.api_listener)?.api_listener);
  if (api?.['@type'] === HCM_TYPE) managers.push(api);
  return managers.flatMap((m) => {
    const name = object(m.rds)?.route_config_name;
    return typeof name === 'string' ? [name] : [];
  });
}

export function checkConsistency(
  node: string,
  byType: Readonly<Record<TypeUrl, readonly Resource[]>>,
): Problem[] {
  const problems: Problem[] = [];
  const check = (
    from: TypeUrl,
    refsOf: (body: JsonObject) => readonly (string | undefined)[],
    to: TypeUrl,
    what: string,
  ) => {
    const have = new Set(byType[to].map((r) => r.name));
    for (const r of byType[from]) {
      for (const ref of new Set(refsOf(r.body))) {
        if (ref !== undefined && !have.has(ref))
          problems.push({
            code: 'CONSISTENCY',
            resource: `${node} ${r.name}`,
            message: `references ${what} ${ref}, which the snapshot lacks`,
          });
      }
    }
  };
  check(CLUSTER, (c) => [edsReference(c)], ENDPOINT, 'ClusterLoadAssignment');
  check(LISTENER, rdsReferences, ROUTE, 'RouteConfiguration');
  return problems;
}
