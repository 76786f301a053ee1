// The sidecars a view declares: one per instance of each service (declared in its manifest or
// discovered), each keeping what its connect said about it (transport, audit log, proxyless, SDS
// directory) once it has connected.
import type { Service } from '../../manifest/types.ts';
import type { MeshView, SidecarRef } from '../generate/types.ts';
import { nodeId } from '../server/node-id.ts';

/** Node ids of a service's instances, made once per Service object. */
const nodeIds = new WeakMap<Service, string[]>();

function nodeIdsOf(service: Service): string[] {
  let ids = nodeIds.get(service);
  if (!ids)
    nodeIds.set(
      service,
      (ids = service.instances.map((i) =>
        nodeId({ namespace: service.namespace, service: service.name, instance: i.name }),
      )),
    );
  return ids;
}

/** The sidecars of one service; `known` says how one that connected talks xDS. */
export function sidecarsOfService(
  service: Service,
  known: (nodeId: string) => SidecarRef | undefined,
): SidecarRef[] {
  const ids = nodeIdsOf(service);
  return service.instances.map((instance, k) => {
    const id = ids[k]!;
    const ref = known(id);
    return {
      nodeId: id,
      namespace: service.namespace,
      service: service.name,
      instance: instance.name,
      transport: ref?.transport ?? 'ads',
      auditLogPath: ref?.auditLogPath,
      proxyless: ref?.proxyless,
      sdsDir: ref?.sdsDir,
      adminPort: ref?.adminPort,
    };
  });
}

/** Every sidecar `view` declares. */
export function sidecarsOfView(
  view: MeshView,
  known: (nodeId: string) => SidecarRef | undefined,
): SidecarRef[] {
  return [...view.services.values()].flatMap((s) => sidecarsOfService(s, known));
}
