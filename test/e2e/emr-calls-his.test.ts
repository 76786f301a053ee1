// The walking skeleton's story, with real Envoy: EMR calls HIS through its sidecar; two HIS
// instances share the load; removing one moves all traffic without a failed request; a broken
// manifest changes nothing; and an invalid resource is NACKed, recorded and not pushed again.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import { parseManifestText } from '../../src/manifest/index.ts';
import { prepareResource } from '../../src/xds/resources/prepared.ts';
import { ROUTE } from '../../src/xds/resources/type-urls.ts';
import {
  describeWithEnvoy,
  dumpLogsOnFailure,
  type EnvoyHandle,
  expectNoRejectedUpdates,
} from '../helpers/envoy.ts';
import { applyYaml, EMR_TO_HIS_PORT, hisManifest, instances, NS, startEmrCallsHis } from '../helpers/mesh.ts';
import { httpRequest, type ServedBy, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

describeWithEnvoy('EMR calls HIS through Envoy sidecars configured over ADS', () => {
  let cp: RunningControlPlane;
  const envoys: EnvoyHandle[] = [];
  const apps: Upstream[] = [];
  const his = instances('his', 2);
  const [emr] = instances('emr', 1) as [{ name: string; address: string }];
  const emrUrl = (path: string) => `http://${emr.address}:${EMR_TO_HIS_PORT}${path}`;

  async function callHis(path = '/patients/42'): Promise<{ status: number; servedBy?: string }> {
    const res = await httpRequest(emrUrl(path), { timeoutMs: 5_000 });
    return {
      status: res.status,
      servedBy: res.status === 200 ? (JSON.parse(res.body) as ServedBy).served_by : undefined,
    };
  }

  beforeAll(async () => {
    cp = await startControlPlane({ trustDomain: 'hospital.local', xdsPort: 0, xdsRestPort: 0, adminPort: 0 });
    await startEmrCallsHis(cp, his, emr, { apps, envoys });
    await waitFor(async () => (await callHis()).status === 200, {
      what: "EMR's sidecar to route to HIS",
      timeoutMs: 20_000,
    });
  });

  afterEach(dumpLogsOnFailure(() => envoys));
  afterAll(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await Promise.all(apps.map((a) => a.close()));
    await cp?.stop();
  });

  it('balances EMR requests across both HIS instances', async () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const r = await callHis();
      expect(r.status).toBe(200);
      counts.set(r.servedBy!, (counts.get(r.servedBy!) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(['his-1', 'his-2']);
    expect(Math.min(...counts.values())).toBeGreaterThanOrEqual(5);
  });

  it('reports every sidecar as connected with ACKed versions and no NACK', async () => {
    const status = await waitFor(
      async () => {
        const s = cp.statuses.toJSON() as Array<{
          nodeId: string;
          types: Record<string, { ackedVersion?: string; lastNack?: unknown }>;
        }>;
        const emrStatus = s.find((x) => x.nodeId === `${NS}/emr/${emr.name}`);
        return emrStatus && ['CDS', 'EDS', 'LDS', 'RDS'].every((t) => emrStatus.types[t]?.ackedVersion)
          ? s
          : undefined;
      },
      { what: 'EMR to ACK CDS, EDS, LDS and RDS' },
    );
    expect(status).toHaveLength(3);
    for (const s of status) for (const t of Object.values(s.types)) expect(t.lastNack).toBeUndefined();
  });

  it('moves all traffic to his-2 when his-1 is removed, without a failed request', async () => {
    const before = cp.controlPlane.state().revision;
    const applied = await applyYaml(cp, hisManifest([his[1]!]));
    expect(applied.revision).toBe(before + 1);
    const statuses: number[] = [];
    await waitFor(
      async () => {
        const recent: string[] = [];
        for (let i = 0; i < 10; i++) {
          const r = await callHis();
          statuses.push(r.status);
          recent.push(r.servedBy ?? '');
        }
        return recent.every((s) => s === 'his-2');
      },
      { what: 'every request to land on his-2', timeoutMs: 10_000 },
    );
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
  });

  it('does not change anything when the same manifests are applied again', async () => {
    const revision = cp.controlPlane.state().revision;
    const pushes = cp.statuses
      .all()
      .reduce((n, s) => n + [...s.types.values()].reduce((m, t) => m + t.pushes, 0), 0);
    const again = await applyYaml(cp, hisManifest([his[1]!]));
    expect(again.changed).toBe(false);
    expect(cp.controlPlane.state().revision).toBe(revision);
    const after = cp.statuses
      .all()
      .reduce((n, s) => n + [...s.types.values()].reduce((m, t) => m + t.pushes, 0), 0);
    expect(after).toBe(pushes);
  });

  it('rejects a broken manifest with file, line and field, and leaves the data plane as it was', async () => {
    const revision = cp.controlPlane.state().revision;
    const broken = `${hisManifest(his)}---
apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: lab, namespace: ${NS} }
spec:
  ports:
    - { name: http, port: 70000, protocol: http }
`;
    const parsed = parseManifestText(broken, 'broken.yaml');
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    const problem = parsed.errors.find((p) => p.field?.endsWith('ports[0].port'));
    expect(problem?.pos).toMatchObject({ file: 'broken.yaml', line: 16 });
    expect(cp.controlPlane.state().revision).toBe(revision);
    for (let i = 0; i < 5; i++) expect((await callHis()).servedBy).toBe('his-2');
  });

  it('never had an update rejected by a sidecar', async () => {
    await expectNoRejectedUpdates(envoys);
  });

  it('records a NACKed route in the sidecar status and does not push it again', async () => {
    const node = `${NS}/emr/${emr.name}`;
    const current = cp.cache.get(node, ROUTE)!;
    const [good] = [...current.resources.values()];
    // Valid by Envoy's protoc-gen-validate rules, but Envoy rejects the regex when it loads it.
    const bad = prepareResource({
      typeUrl: ROUTE,
      name: good!.name,
      body: {
        name: good!.name,
        virtual_hosts: [
          {
            name: 'bad',
            domains: ['*'],
            routes: [{ match: { safe_regex: { regex: '((' } }, route: { cluster: 'x' } }],
          },
        ],
      },
    });
    if (!bad.ok) throw new Error(JSON.stringify(bad.errors));
    cp.cache.set(node, { [ROUTE]: [bad.value] });
    const emrEnvoy = envoys.find((e) => e.name === emr.name)!;
    const nack = await waitFor(
      async () => {
        const s = cp.statuses.all().find((x) => x.nodeId === node);
        return s?.types.get(ROUTE)?.lastNack;
      },
      { what: 'EMR to NACK the bad route' },
    );
    expect(nack.error).toContain('((');
    const pushes = cp.statuses
      .all()
      .find((x) => x.nodeId === node)!
      .types.get(ROUTE)!.pushes;
    // Still serving with the last good route.
    expect((await callHis()).status).toBe(200);
    await waitFor(
      async () =>
        (await emrEnvoy.stats('rds.*update_rejected'))[
          Object.keys(await emrEnvoy.stats('rds.*update_rejected'))[0]!
        ] === 1,
      {
        what: "Envoy's RDS update_rejected to count the rejection",
      },
    );
    // A fresh request from Envoy for routes (it retries after a NACK) must not bring the same version back.
    expect(
      cp.statuses
        .all()
        .find((x) => x.nodeId === node)!
        .types.get(ROUTE)!.pushes,
    ).toBe(pushes);
    // Restoring the good route pushes again and is ACKed.
    cp.cache.set(node, { [ROUTE]: [good!] });
    await waitFor(
      async () =>
        cp.statuses
          .all()
          .find((x) => x.nodeId === node)!
          .types.get(ROUTE)!.ackedVersion === current.version,
      {
        what: 'EMR to ACK the restored route',
      },
    );
  });
});
