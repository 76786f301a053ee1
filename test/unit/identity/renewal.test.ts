// Renewal through the agents' API of a control plane in this process: a valid certificate proves who
// asks, and the identity it names must still be a declared Service, as for a new join token. Deleting
// the Service ends renewal, so a credential (or a spent join token) is not an identity for ever.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callControlPlane } from '../../../src/agent/control-plane-client.ts';
import { createCsr } from '../../../src/ca/csr.ts';
import type { Problem } from '../../../src/errors.ts';
import type { SignedIdentity } from '../../../src/identity/workload-signer.ts';
import { startControlPlane, type RunningControlPlane } from '../../../src/main.ts';
import { adminRequest } from '../../helpers/admin.ts';
import { serviceYaml } from '../admin/fixtures.ts';

const ec = (): KeyObject => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const pem = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }).toString();

interface Held {
  readonly certChainPem: string;
  readonly keyPem: string;
}

describe('certificate renewal for a Service that is gone', () => {
  let cp: RunningControlPlane;
  const spiffe = (ns: string, sa: string) => `spiffe://${cp.ca.trustDomain}/ns/${ns}/sa/${sa}`;

  beforeAll(async () => {
    cp = await startControlPlane({ xdsPort: 0, xdsRestPort: 0, adminPort: 0 });
    const applied = await adminRequest(cp, 'POST', '/v1/apply', {
      body: [serviceYaml('clinical', 'tmpsvc'), serviceYaml('lab', 'tmpsvc')].join('---\n'),
    });
    expect(applied.status).toBe(200);
  });
  afterAll(() => cp?.stop());

  const call = (path: string, body: object, held?: Held) =>
    callControlPlane<SignedIdentity>(
      `${cp.host}:${cp.xdsRestPort}`,
      'POST',
      path,
      {
        caPem: cp.ca.trustBundle().join('\n'),
        ...(held && { certChainPem: held.certChainPem, keyPem: held.keyPem }),
      },
      body,
    );

  /** Signs both CSRs and keeps the agent credential (xds) with its key, as the agent does. */
  const signed = async (path: string, body: object, held?: Held) => {
    const xdsKey = ec();
    const r = await call(path, { ...body, xdsCsr: createCsr(xdsKey), workloadCsr: createCsr(ec()) }, held);
    return { r, held: r.ok ? { certChainPem: r.value.xds.certChainPem, keyPem: pem(xdsKey) } : undefined };
  };

  const attestAs = async (namespace: string, service: string): Promise<Held> => {
    const token = cp.joinTokens.create({ namespace, service, createdBy: 'test' });
    if (!token.ok) throw new Error(JSON.stringify(token.errors));
    const { r, held } = await signed('/v1/agent/attest', { joinToken: token.value.token });
    if (!held) throw new Error(JSON.stringify(r));
    return held;
  };
  const renew = (held: Held) => signed('/v1/agent/renew', {}, held);
  const deleteService = async (namespace: string, name: string) =>
    expect((await adminRequest(cp, 'DELETE', `/v1/manifests/Service/${namespace}/${name}`)).status).toBe(200);
  const refusal = (r: { ok: boolean; errors?: readonly Problem[]; status?: number }) => ({
    status: r.status,
    codes: (r.errors ?? []).map((p) => p.code),
    messages: (r.errors ?? []).map((p) => p.message).join(' '),
  });

  it('refuses to renew once the Service is deleted, naming the identity, and a chain of renewals ends there', async () => {
    const attested = await attestAs('clinical', 'tmpsvc');
    const first = await renew(attested);
    expect(first.r.ok).toBe(true);
    expect(first.r.ok && first.r.value.spiffeId).toBe(spiffe('clinical', 'tmpsvc'));

    await deleteService('clinical', 'tmpsvc');
    for (const held of [attested, first.held!]) {
      const after = await renew(held);
      expect(after.r.ok).toBe(false);
      const seen = refusal(after.r);
      expect(seen.status).toBe(403);
      expect(seen.codes).toEqual(['PERMISSION_DENIED']);
      expect(seen.messages).toContain(spiffe('clinical', 'tmpsvc'));
    }
    // A Service of that name in another namespace is another identity: lab's still renews.
    expect((await renew(await attestAs('lab', 'tmpsvc'))).r.ok).toBe(true);
  });

  it('renews again once the Service is declared again', async () => {
    await adminRequest(cp, 'POST', '/v1/apply', { body: serviceYaml('clinical', 'again') });
    const held = await attestAs('clinical', 'again');
    await deleteService('clinical', 'again');
    expect((await renew(held)).r.ok).toBe(false);
    await adminRequest(cp, 'POST', '/v1/apply', { body: serviceYaml('clinical', 'again') });
    expect((await renew(held)).r.ok).toBe(true);
  });
});
