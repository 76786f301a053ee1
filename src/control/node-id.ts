// Sidecar node ids: `<namespace>/<service>/<instance>`, e.g. `clinical/his/his-1`. Self-describing,
// so status pages and logs need no lookup, and unambiguous because each part is a DNS label.
import { fail, ok, type Result } from '../errors.ts';
import type { SidecarRef, XdsTransport } from '../xds/generate/types.ts';

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function nodeId(ref: { namespace: string; service: string; instance: string }): string {
  return `${ref.namespace}/${ref.service}/${ref.instance}`;
}

export function parseNodeId(id: string, transport: XdsTransport): Result<SidecarRef> {
  const parts = id.split('/');
  if (parts.length !== 3 || !parts.every((p) => LABEL.test(p))) {
    return fail([{ code: 'UNAUTHENTICATED', field: 'node.id', message: `node id '${id}' is not <namespace>/<service>/<instance>` }]);
  }
  const [namespace, service, instance] = parts as [string, string, string];
  return ok({ nodeId: id, namespace, service, instance, transport });
}
