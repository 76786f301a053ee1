// Kubernetes attestation against the TokenReview double: the control plane accepts a workload only
// when the API server vouches for an audience-bound service-account token, and tells the operator
// when it cannot ask (API down, its own token refused, RBAC missing).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Result } from '../../../src/errors.ts';
import { KubernetesAttestor, type KubernetesAttestation } from '../../../src/identity/k8s-attestor.ts';
import { kubernetesConfigFromEnv, type KubernetesConfig } from '../../../src/identity/k8s-config.ts';
import { KubernetesApiDouble } from '../../k8s-double/server.ts';

const CONTROL_PLANE = 'system:serviceaccount:clinimesh-system:clinimesh';

let api: KubernetesApiDouble;
let dir: string;
let tokenFile: string;
let caFile: string;

function configFor(apiUrl: string, audience?: string): KubernetesConfig {
  const config = kubernetesConfigFromEnv({}, { apiUrl, tokenFile, caFile, audience });
  if (!config.ok || !config.value) throw new Error(`bad test config: ${JSON.stringify(config)}`);
  return config.value;
}

function writeReviewerToken(token: string): void {
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 }); // kubelet writes no newline; trimming copes with either
}

function codes<T>(r: Result<T>): string[] {
  return r.ok ? [] : r.errors.map((p) => p.code);
}

beforeAll(async () => {
  api = await KubernetesApiDouble.start();
  dir = mkdtempSync(join(tmpdir(), 'clinimesh-k8s-'));
  tokenFile = join(dir, 'token');
  caFile = join(dir, 'ca.crt');
  writeFileSync(caFile, api.caPem);
});

afterAll(async () => {
  await api.stop();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  api.grantAuthDelegator(CONTROL_PLANE);
  writeReviewerToken(api.mintToken({ namespace: 'clinimesh-system', serviceAccount: 'clinimesh' }));
});

afterEach(() => {
  api.stalled = false;
});

describe('KubernetesAttestor: workload tokens', () => {
  const attestor = (): KubernetesAttestor => new KubernetesAttestor(configFor(api.url));

  it('accepts a projected token for clinical/his with audience clinimesh, naming the pod', async () => {
    const token = api.mintToken({
      namespace: 'clinical',
      serviceAccount: 'his',
      audiences: ['clinimesh'],
      podName: 'his-7d9f-x2',
    });
    const result = await attestor().attest(token);
    expect(result).toEqual({
      ok: true,
      value: {
        namespace: 'clinical',
        service: 'his',
        subject: 'system:serviceaccount:clinical:his',
        podName: 'his-7d9f-x2',
        podUid: api.podUid('clinical', 'his-7d9f-x2'),
      } satisfies KubernetesAttestation,
    });
    expect(api.reviews.at(-1)).toEqual({
      reviewer: CONTROL_PLANE,
      audiences: ['clinimesh'],
      authenticated: true,
    });
  });

  it('accepts a token bound to several audiences when one is clinimesh', async () => {
    const token = api.mintToken({
      namespace: 'clinical',
      serviceAccount: 'his',
      audiences: ['vault', 'clinimesh'],
    });
    const result = await attestor().attest(token);
    expect(result.ok && result.value).toMatchObject({ namespace: 'clinical', service: 'his' });
  });

  it('refuses a token for another audience, such as the API server default', async () => {
    const apiToken = api.mintToken({ namespace: 'clinical', serviceAccount: 'his' });
    expect(codes(await attestor().attest(apiToken))).toEqual(['UNAUTHENTICATED']);
    const vault = api.mintToken({ namespace: 'clinical', serviceAccount: 'his', audiences: ['vault'] });
    expect(codes(await attestor().attest(vault))).toEqual(['UNAUTHENTICATED']);
  });

  it('refuses a token that reaches it with another audience than its own configured one', async () => {
    const token = api.mintToken({ namespace: 'clinical', serviceAccount: 'his', audiences: ['clinimesh'] });
    const other = new KubernetesAttestor(configFor(api.url, 'other-mesh'));
    expect(codes(await other.attest(token))).toEqual(['UNAUTHENTICATED']);
  });

  it('refuses an expired token', async () => {
    const token = api.mintToken({
      namespace: 'clinical',
      serviceAccount: 'his',
      audiences: ['clinimesh'],
      expiresInSeconds: 600,
    });
    expect((await attestor().attest(token)).ok).toBe(true);
    api.advanceClock(3600);
    try {
      writeReviewerToken(api.mintToken({ namespace: 'clinimesh-system', serviceAccount: 'clinimesh' }));
      expect(codes(await attestor().attest(token))).toEqual(['UNAUTHENTICATED']);
    } finally {
      api.advanceClock(-3600);
    }
  });

  it('refuses a token bound to a pod that was deleted', async () => {
    const token = api.mintToken({
      namespace: 'clinical',
      serviceAccount: 'his',
      audiences: ['clinimesh'],
      podName: 'his-gone',
    });
    api.deletePod('clinical', 'his-gone');
    expect(codes(await attestor().attest(token))).toEqual(['UNAUTHENTICATED']);
  });

  it('refuses garbage, a forged signature and tokens that cannot be bearer tokens', async () => {
    const good = api.mintToken({ namespace: 'clinical', serviceAccount: 'his', audiences: ['clinimesh'] });
    const [h, p] = good.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ sub: 'system:serviceaccount:clinical:emr' })).toString('base64url')}.AAAA`;
    for (const token of [
      'not-a-token',
      'a.b.c',
      `${h}.${p}.AAAA`,
      forged,
      '',
      'two words',
      'x'.repeat(20_000),
    ])
      expect(codes(await attestor().attest(token)), JSON.stringify(token.slice(0, 20))).toEqual([
        'UNAUTHENTICATED',
      ]);
  });

  it('refuses a user that is not a service account, even with the right audience', async () => {
    api.addUserToken('alice-oidc-token', {
      username: 'oidc:alice',
      groups: ['clinicians'],
      audiences: ['clinimesh'],
    });
    expect(codes(await attestor().attest('alice-oidc-token'))).toEqual(['UNAUTHENTICATED']);
  });

  it('refuses a service account whose name is not a DNS label', async () => {
    const token = api.mintToken({
      namespace: 'clinical',
      serviceAccount: 'his.v2',
      audiences: ['clinimesh'],
    });
    expect(codes(await attestor().attest(token))).toEqual(['UNAUTHENTICATED']);
  });

  it('never puts the token in a problem', async () => {
    const token = api.mintToken({ namespace: 'clinical', serviceAccount: 'his' });
    const result = await attestor().attest(token);
    expect(JSON.stringify(result)).not.toContain(token);
    expect(JSON.stringify(result)).not.toContain(token.split('.')[2]);
  });
});

describe('KubernetesAttestor: the control plane as reviewer', () => {
  const workloadToken = (): string =>
    api.mintToken({ namespace: 'clinical', serviceAccount: 'his', audiences: ['clinimesh'] });

  it('reports IO naming RBAC when the API server refuses its own token (401)', async () => {
    writeReviewerToken('not-the-control-plane-token');
    const result = await new KubernetesAttestor(configFor(api.url)).attest(workloadToken());
    expect(codes(result)).toEqual(['IO']);
    expect(!result.ok && result.errors[0]!.message).toContain('system:auth-delegator');
  });

  it('reports IO naming the ClusterRole when the binding is missing (403)', async () => {
    api.revokeAuthDelegator(CONTROL_PLANE);
    const result = await new KubernetesAttestor(configFor(api.url)).attest(workloadToken());
    expect(codes(result)).toEqual(['IO']);
    expect(!result.ok && result.errors[0]!.message).toContain('system:auth-delegator');
  });

  it('re-reads its token file on every review (the kubelet rotates it)', async () => {
    const attestor = new KubernetesAttestor(configFor(api.url));
    writeReviewerToken('stale');
    expect(codes(await attestor.attest(workloadToken()))).toEqual(['IO']);
    writeReviewerToken(api.mintToken({ namespace: 'clinimesh-system', serviceAccount: 'clinimesh' }));
    expect((await attestor.attest(workloadToken())).ok).toBe(true);
  });

  it('reports IO naming the file when its token file is missing', async () => {
    rmSync(tokenFile);
    const result = await new KubernetesAttestor(configFor(api.url)).attest(workloadToken());
    expect(codes(result)).toEqual(['IO']);
    expect(!result.ok && result.errors[0]!.field).toBe('--k8s-token-file');
  });

  it('refuses an API server whose certificate the configured CA did not sign', async () => {
    const other = await KubernetesApiDouble.start();
    try {
      const result = await new KubernetesAttestor(configFor(other.url)).attest(workloadToken());
      expect(codes(result)).toEqual(['IO']);
    } finally {
      await other.stop();
    }
  });

  it('reports IO quickly when the API server is down', async () => {
    const gone = await KubernetesApiDouble.start();
    const url = gone.url;
    await gone.stop();
    const started = Date.now();
    const result = await new KubernetesAttestor(configFor(url)).attest(workloadToken());
    expect(codes(result)).toEqual(['IO']);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('gives up on a hung API server within its timeout', async () => {
    api.stalled = true;
    const started = Date.now();
    const result = await new KubernetesAttestor(configFor(api.url), { timeoutMs: 300 }).attest(
      workloadToken(),
    );
    expect(codes(result)).toEqual(['IO']);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe('kubernetesConfigFromEnv', () => {
  const inCluster = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };

  it('is off outside a cluster when nothing asks for it', () => {
    expect(kubernetesConfigFromEnv({}, {})).toEqual({ ok: true, value: undefined });
  });

  it('uses the in-cluster API address and service-account files, audience clinimesh', () => {
    const r = kubernetesConfigFromEnv(inCluster);
    expect(r.ok && r.value).toMatchObject({
      apiUrl: 'https://10.96.0.1', // URL drops https' default port
      tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      caFile: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
      audience: 'clinimesh',
    });
    const v6 = kubernetesConfigFromEnv({
      KUBERNETES_SERVICE_HOST: 'fd00::1',
      KUBERNETES_SERVICE_PORT: '6443',
    });
    expect(v6.ok && v6.value?.apiUrl).toBe('https://[fd00::1]:6443');
  });

  it('lets flags override each setting', () => {
    const r = kubernetesConfigFromEnv(inCluster, {
      apiUrl: 'https://api.example.org:6443/',
      tokenFile: '/t',
      caFile: '/c',
      audience: 'mesh-a',
    });
    expect(r.ok && r.value).toMatchObject({
      apiUrl: 'https://api.example.org:6443',
      tokenFile: '/t',
      caFile: '/c',
      audience: 'mesh-a',
    });
  });

  it('names every bad field', () => {
    const bad = kubernetesConfigFromEnv({
      KUBERNETES_SERVICE_HOST: '10.96.0.1',
      KUBERNETES_SERVICE_PORT: 'https',
    });
    expect(!bad.ok && bad.errors.map((p) => [p.code, p.field])).toEqual([
      ['SCHEMA', 'KUBERNETES_SERVICE_PORT'],
    ]);
    const flags = kubernetesConfigFromEnv({}, { apiUrl: 'http://api:8080', audience: 'two words' });
    expect(!flags.ok && flags.errors.map((p) => p.field)).toEqual(['--k8s-api-url', '--k8s-audience']);
    const noApi = kubernetesConfigFromEnv({}, { audience: 'clinimesh' });
    expect(!noApi.ok && noApi.errors.map((p) => p.field)).toEqual(['--k8s-api-url']);
  });
});
