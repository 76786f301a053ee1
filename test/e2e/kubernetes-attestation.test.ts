// The kubectl deployment's path: a pod's node agent proves itself with its projected
// service-account token (audience clinimesh), the control plane asks the API server's TokenReview
// (here its faithful double), and the identity is the token's namespace and service account. HIS
// joins that way and serves EMR through real Envoy sidecars; a token for another audience, or for the
// control plane's own namespace, gets nothing.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startAgent, type RunningAgent } from '../../src/agent/agent.ts';
import { kubernetesConfigFromEnv } from '../../src/identity/k8s-config.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import { describeWithEnvoy, dumpLogsOnFailure, startEnvoy, type EnvoyHandle } from '../helpers/envoy.ts';
import {
  applyYaml,
  EMR_TO_HIS_PORT,
  emrManifest,
  HIS_APP_PORT,
  hisManifest,
  instances,
  meshManifest,
  NS,
  startSidecar,
} from '../helpers/mesh.ts';
import { httpRequest, startHttpUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { KubernetesApiDouble } from '../k8s-double/server.ts';

describeWithEnvoy('Kubernetes service-account attestation', () => {
  let api: KubernetesApiDouble;
  let cp: RunningControlPlane;
  let dir: string;
  const agents: RunningAgent[] = [];
  const envoys: EnvoyHandle[] = [];
  let app: Upstream | undefined;
  const [his] = instances('his', 1) as [{ name: string; address: string }];
  const [emr] = instances('emr', 1) as [{ name: string; address: string }];

  const agentWith = (token: string, outDir: string) =>
    startAgent({
      controlPlane: `${cp.host}:${cp.xdsRestPort}`,
      evidence: () => ({ kubernetesToken: token }),
      caPem: cp.ca.trustBundle().join('\n'),
      outDir,
      xdsAddress: `${cp.host}:${cp.xdsPort}`,
      envoyAdminPort: 0,
      log: () => undefined,
    });

  beforeAll(async () => {
    api = await KubernetesApiDouble.start();
    dir = await mkdtemp(join(tmpdir(), 'clinimesh-k8s-e2e-'));
    await writeFile(join(dir, 'ca.crt'), api.caPem);
    await writeFile(
      join(dir, 'reviewer'),
      api.mintToken({ namespace: 'clinimesh-system', serviceAccount: 'clinimesh' }),
    );
    api.grantAuthDelegator('system:serviceaccount:clinimesh-system:clinimesh');
    const kubernetes = kubernetesConfigFromEnv(
      {},
      { apiUrl: api.url, tokenFile: join(dir, 'reviewer'), caFile: join(dir, 'ca.crt') },
    );
    if (!kubernetes.ok || !kubernetes.value) throw new Error('bad config');
    cp = await startControlPlane({
      trustDomain: 'hospital.local',
      xdsPort: 0,
      xdsRestPort: 0,
      adminPort: 0,
      kubernetes: kubernetes.value,
    });
    await applyYaml(cp, [meshManifest, hisManifest([his]), emrManifest(emr)].join('---\n'));
    app = await startHttpUpstream({ name: his.name, host: his.address, port: HIS_APP_PORT });
  });
  afterEach(dumpLogsOnFailure(() => envoys));
  afterAll(async () => {
    for (const a of agents) a.stop();
    await Promise.all(envoys.map((e) => e.stop()));
    await app?.close();
    await cp?.stop();
    await api?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('joins HIS with its pod token and carries EMR → HIS traffic', async () => {
    const token = api.mintToken({
      namespace: NS,
      serviceAccount: 'his',
      audiences: ['clinimesh'],
      podName: his.name,
      expiresInSeconds: 3600,
    });
    const agent = await agentWith(token, join(dir, 'his'));
    agents.push(agent);
    expect(agent.nodeId).toBe(`${NS}/his/${his.name}`);
    expect(agent.status().spiffeId).toBe(`spiffe://hospital.local/ns/${NS}/sa/his`);
    envoys.push(
      await startEnvoy({
        bootstrap: JSON.parse(await readFile(agent.bootstrapPath, 'utf8')) as object,
        name: 'k8s-his',
      }),
    );
    envoys.push(await startSidecar(cp, 'emr', emr.name));
    await waitFor(
      async () =>
        (await httpRequest(`http://${emr.address}:${EMR_TO_HIS_PORT}/patients/1`, { timeoutMs: 2_000 }))
          .status === 200,
      { what: 'EMR to reach HIS', timeoutMs: 20_000 },
    );
    expect(api.reviews.at(-1)).toMatchObject({ audiences: ['clinimesh'], authenticated: true });
  });

  it('refuses a token bound to another audience, and the control plane namespace', async () => {
    const wrongAudience = api.mintToken({ namespace: NS, serviceAccount: 'his', podName: his.name });
    await expect(agentWith(wrongAudience, join(dir, 'aud'))).rejects.toMatchObject({
      problems: [expect.objectContaining({ code: 'UNAUTHENTICATED' })],
    });
    const own = api.mintToken({
      namespace: 'clinimesh-system',
      serviceAccount: 'control-plane',
      audiences: ['clinimesh'],
      podName: 'x',
    });
    await expect(agentWith(own, join(dir, 'own'))).rejects.toMatchObject({
      problems: [expect.objectContaining({ code: 'PERMISSION_DENIED' })],
    });
  });

  it('refuses a service account that names no declared Service in its namespace', async () => {
    for (const [namespace, serviceAccount] of [
      ['kube-system', 'default'],
      [NS, 'not-a-mesh-service'],
      ['lab', 'his'],
    ] as const) {
      const token = api.mintToken({ namespace, serviceAccount, audiences: ['clinimesh'], podName: 'x' });
      const subject = `system:serviceaccount:${namespace}:${serviceAccount}`;
      await expect(
        agentWith(token, join(dir, `${namespace}-${serviceAccount}`)),
        subject,
      ).rejects.toMatchObject({
        problems: [
          expect.objectContaining({ code: 'PERMISSION_DENIED', message: expect.stringContaining(subject) }),
        ],
      });
    }
  });
});
