// Before a snapshot is published, every EDS and RDS name that clusters and listeners reference must
// be in it: a dangling reference would leave a sidecar warming forever.
import type { Problem } from '../../errors.ts';
import type { Resource } from '../generate/types.ts';
import type { JsonValue } from '../resources/json.ts';
import { CLUSTER, ENDPOINT, LISTENER, ROUTE, type TypeUrl } from '../resources/type-urls.ts';

function collect(value: JsonValue, key: string, out: Set<string>): void {
  if (Array.isArray(value)) for (const v of value) collect(v, key, out);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === key && typeof v === 'string') out.add(v);
      else collect(v, key, out);
    }
  }
}

export function checkConsistency(node: string, byType: Readonly<Record<TypeUrl, readonly Resource[]>>): Problem[] {
  const problems: Problem[] = [];
  const check = (from: TypeUrl, key: string, to: TypeUrl, what: string) => {
    const have = new Set(byType[to].map((r) => r.name));
    for (const r of byType[from]) {
      const refs = new Set<string>();
      collect(r.body, key, refs);
      for (const ref of refs) {
        if (!have.has(ref)) problems.push({ code: 'CONSISTENCY', resource: `${node} ${r.name}`, message: `references ${what} ${ref}, which the snapshot lacks` });
      }
    }
  };
  check(CLUSTER, 'service_name', ENDPOINT, 'ClusterLoadAssignment');
  check(LISTENER, 'route_config_name', ROUTE, 'RouteConfiguration');
  return problems;
}
