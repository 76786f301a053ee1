// Who may fetch a sidecar's config: the workload whose certificate carries that sidecar's service
// identity, and, when the certificate is bound to one instance, that instance's node only. A node id
// is only a claim; the TLS client certificate is the proof.
import { spiffeId } from '../../ca/spiffe.ts';
import { fail, ok, type Result } from '../../errors.ts';
import type { SidecarRef } from '../generate/types.ts';
import type { ConnectContext } from './hooks.ts';

/** `trustDomains`: the CA's, first, and during a trust-domain migration the one it is leaving. */
export function authenticateSidecar(
  trustDomains: readonly string[],
  ref: SidecarRef,
  ctx: ConnectContext,
): Result<void> {
  // The plaintext listener exists only when an operator asked for it, only on loopback, and only
  // for proxyless clients, which are never sent secrets.
  if (ctx.plaintext) {
    return ref.proxyless
      ? ok(undefined)
      : fail([
          {
            code: 'PERMISSION_DENIED',
            field: 'node.metadata',
            message: `node ${ref.nodeId}: the plaintext xDS port serves only proxyless gRPC clients`,
          },
        ]);
  }
  if (!ctx.credential) {
    return fail([
      {
        code: 'UNAUTHENTICATED',
        field: 'node.id',
        message: `node ${ref.nodeId}: a client certificate with a SPIFFE ID is required`,
      },
    ]);
  }
  const expected = trustDomains.map((td) => spiffeId(td, { namespace: ref.namespace, service: ref.service }));
  if (!expected.includes(ctx.credential)) {
    return fail([
      {
        code: 'PERMISSION_DENIED',
        field: 'node.id',
        message: `node ${ref.nodeId} needs identity ${expected[0]}; the client proved ${ctx.credential}`,
      },
    ]);
  }
  // A credential whose evidence named one instance (a bound join token, a pod) proves that one only.
  if (ctx.instance !== undefined && ctx.instance !== ref.instance) {
    return fail([
      {
        code: 'PERMISSION_DENIED',
        field: 'node.id',
        message: `node ${ref.nodeId}: the client's certificate is bound to instance ${ctx.instance} of ${ref.namespace}/${ref.service}`,
      },
    ]);
  }
  return ok(undefined);
}
