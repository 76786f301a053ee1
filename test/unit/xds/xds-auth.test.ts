// Who may fetch a node's config: the node id is a claim, the client certificate the proof. A
// certificate bound to one instance (its join token or pod named it) proves that instance only.
import { describe, expect, it } from 'vitest';
import type { SidecarRef } from '../../../src/xds/generate/types.ts';
import type { ConnectContext } from '../../../src/xds/server/hooks.ts';
import { authenticateSidecar } from '../../../src/xds/server/xds-auth.ts';

const TD = ['hospital.local'];
const HIS = 'spiffe://hospital.local/ns/clinical/sa/his';

const ref = (instance: string, proxyless?: boolean): SidecarRef => ({
  nodeId: `clinical/his/${instance}`,
  namespace: 'clinical',
  service: 'his',
  instance,
  transport: 'ads',
  ...(proxyless && { proxyless }),
});

const codes = (r: ReturnType<typeof authenticateSidecar>) => (r.ok ? [] : r.errors.map((p) => p.code));

describe('xDS authentication of a node id', () => {
  it('admits the instance a bound certificate names', () => {
    const ctx: ConnectContext = { transport: 'ads', peer: 't', credential: HIS, instance: 'his-1' };
    expect(authenticateSidecar(TD, ref('his-1'), ctx).ok).toBe(true);
  });

  it("refuses a sibling's node id to a certificate bound to another instance", () => {
    for (const transport of ['ads', 'rest'] as const) {
      const ctx: ConnectContext = { transport, peer: 't', credential: HIS, instance: 'his-1' };
      const refused = authenticateSidecar(TD, { ...ref('his-2'), transport }, ctx);
      expect(codes(refused)).toEqual(['PERMISSION_DENIED']);
      expect(refused.ok || refused.errors[0]!.message).toContain('clinical/his/his-2');
      expect(refused.ok || refused.errors[0]!.message).toContain('his-1');
    }
  });

  it('admits any instance of its service to a certificate bound to none (a service-wide join token)', () => {
    const ctx: ConnectContext = { transport: 'ads', peer: 't', credential: HIS };
    expect(authenticateSidecar(TD, ref('his-2'), ctx).ok).toBe(true);
  });

  it('still refuses another service to a bound certificate', () => {
    const ctx: ConnectContext = {
      transport: 'ads',
      peer: 't',
      credential: 'spiffe://hospital.local/ns/clinical/sa/emr',
      instance: 'his-2',
    };
    expect(codes(authenticateSidecar(TD, ref('his-2'), ctx))).toEqual(['PERMISSION_DENIED']);
  });
});
