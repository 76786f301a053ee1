// Sidecar node ids: `<namespace>/<service>/<instance>`, e.g. `clinical/his/his-1`. Self-describing,
// so status pages and logs need no lookup, and unambiguous because each part is a DNS label.
import { fail, ok, type Result } from '../../errors.ts';
import type { SidecarRef, XdsTransport } from '../generate/types.ts';

// At most 63 characters, as DNS allows; the bound also keeps the match linear on hostile input.
const LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;

/** Three 63-character labels and two slashes. */
const MAX_NODE_ID_LENGTH = 3 * 63 + 2;

export function nodeId(ref: { namespace: string; service: string; instance: string }): string {
  return `${ref.namespace}/${ref.service}/${ref.instance}`;
}

export function parseNodeId(id: string, transport: XdsTransport): Result<SidecarRef> {
  if (id.length > MAX_NODE_ID_LENGTH)
    return fail([
      {
        code: 'SCHEMA',
        field: 'node.id',
        message: `node id is ${id.length} characters; at most ${MAX_NODE_ID_LENGTH}`,
      },
    ]);
  const parts = id.split('/');
  if (parts.length !== 3 || !parts.every((p) => LABEL.test(p))) {
    return fail([
      {
        code: 'UNAUTHENTICATED',
        field: 'node.id',
        message: `node id '${id}' is not <namespace>/<service>/<instance>`,
      },
    ]);
  }
  const [namespace, service, instance] = parts as [string, string, string];
  return ok({ nodeId: id, namespace, service, instance, transport });
}
