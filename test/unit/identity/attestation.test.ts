// Attestation names an identity only for a Service the applied manifests declare, whatever the
// evidence: a Kubernetes service account in any namespace, or a join token whose Service was deleted
// after the token was made. A refusal gives a join token back.
import { describe, expect, it } from 'vitest';
import { fail, ok, type Result } from '../../../src/errors.ts';
import {
  Attestor,
  type KubernetesReview,
  type KubernetesTokenReviewer,
} from '../../../src/identity/attestation.ts';
import { JoinTokens } from '../../../src/identity/join-tokens.ts';

/** A TokenReview that authenticates `<namespace>:<service account>` tokens as that service account. */
const reviewer: KubernetesTokenReviewer = {
  attest(token: string): Promise<Result<KubernetesReview>> {
    const [namespace, service] = token.split(':');
    if (!namespace || !service) return Promise.resolve(fail([{ code: 'UNAUTHENTICATED', message: 'no' }]));
    const subject = `system:serviceaccount:${namespace}:${service}`;
    return Promise.resolve(ok({ namespace, service, subject, podName: `${service}-pod` }));
  },
};

async function setUp(declaredServices: string[]) {
  const declared = new Set(declaredServices);
  const known = (namespace: string, service: string) => declared.has(`${namespace}/${service}`);
  const tokens = await JoinTokens.open({ rootPin: () => 'A'.repeat(43), knownService: known });
  if (!tokens.ok) throw new Error('join tokens');
  return { declared, tokens: tokens.value, attestor: new Attestor(tokens.value, known, reviewer) };
}

const refusal = (r: Result<unknown>) =>
  r.ok ? undefined : { codes: r.errors.map((p) => p.code), text: r.errors.map((p) => p.message).join(' ') };

describe('Attestor: only declared Services get an identity', () => {
  it('accepts a service account that names a declared Service in its namespace', async () => {
    const { attestor } = await setUp(['clinical/his']);
    const r = await attestor.attest({ kubernetesToken: 'clinical:his' });
    expect(r.ok && { ns: r.value.namespace, sa: r.value.service, pod: r.value.instance }).toEqual({
      ns: 'clinical',
      sa: 'his',
      pod: 'his-pod',
    });
  });

  it('refuses a service account in any namespace that names no declared Service, naming it', async () => {
    const { attestor } = await setUp(['clinical/his']);
    for (const [ns, sa] of [
      ['kube-system', 'default'],
      ['some-tenant', 'build-bot'],
      ['clinical', 'not-a-mesh-service'],
      ['lab', 'his'], // his is declared in clinical, not in lab
    ]) {
      const seen = refusal(await attestor.attest({ kubernetesToken: `${ns}:${sa}` }));
      expect(seen?.codes, `${ns}/${sa}`).toEqual(['PERMISSION_DENIED']);
      expect(seen?.text, `${ns}/${sa}`).toContain(`system:serviceaccount:${ns}:${sa}`);
    }
  });

  it('refuses a join token whose Service was deleted since, and gives the token back', async () => {
    const { attestor, declared, tokens } = await setUp(['clinical/tmpsvc']);
    const made = tokens.create({ namespace: 'clinical', service: 'tmpsvc', createdBy: 'test' });
    if (!made.ok) throw new Error('token');
    await made.value.saved;
    declared.delete('clinical/tmpsvc');
    expect(refusal(await attestor.attest({ joinToken: made.value.token }))?.codes).toEqual([
      'PERMISSION_DENIED',
    ]);
    declared.add('clinical/tmpsvc');
    // Not burned: the release is asynchronous, so wait for the token to be free again.
    let again = await attestor.attest({ joinToken: made.value.token });
    for (let i = 0; i < 50 && !again.ok; i++) {
      await new Promise((r) => setTimeout(r, 10));
      again = await attestor.attest({ joinToken: made.value.token });
    }
    expect(again.ok).toBe(true);
  });
});
