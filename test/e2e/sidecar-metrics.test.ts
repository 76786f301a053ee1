// Prometheus scrapes the sidecars, with real Envoy: the Mesh asks for metrics on port 15090, EMR
// calls HIS through its sidecar, and EMR's sidecar reports on its instance's address how many
// requests went to HIS; HIS's reports what it let in. Only GET /stats/prometheus answers there: the
// admin API (config dump, quit) stays out of reach, and turning metrics off closes the port.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import { describeWithEnvoy, dumpLogsOnFailure, expectNoRejectedUpdates } from '../helpers/envoy.ts';
import {
  applyYaml,
  EMR_TO_HIS_PORT,
  emrManifest,
  HIS_APP_PORT,
  hisManifest,
  instances,
  meshManifest,
  startSidecar,
  type Sidecar,
  type TestInstance,
} from '../helpers/mesh.ts';
import { freePort } from '../helpers/ports.ts';
import { httpRequest, startHttpUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const METRICS_PORT = 15090;
const withMetrics = `${meshManifest}  metrics: { port: ${METRICS_PORT} }\n`;
/** A path and query a clinical app would send: neither may show up in any metric. */
const PATIENT_PATH = '/patients/MRN-4711/chart?name=Doe';
const REQUESTS = 7;

/** The value of one Prometheus sample, by metric name and exact label set, in scrape text. */
function sample(text: string, metric: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== metric) continue;
    const found = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (JSON.stringify(Object.entries(found).sort()) === JSON.stringify(Object.entries(labels).sort()))
      return Number(m[3]);
  }
  return undefined;
}

describeWithEnvoy('Prometheus scrapes every sidecar on the Mesh metrics port', () => {
  let cp: RunningControlPlane;
  const envoys: Sidecar[] = [];
  const apps: Upstream[] = [];
  const [his] = instances('his', 1) as [TestInstance];
  const [emr] = instances('emr', 1) as [TestInstance];
  const scrape = (i: TestInstance, path = '/stats/prometheus', method = 'GET') =>
    httpRequest(`http://${i.address}:${METRICS_PORT}${path}`, { method, timeoutMs: 5_000 });

  beforeAll(async () => {
    cp = await startControlPlane({ trustDomain: 'hospital.local', xdsPort: 0, xdsRestPort: 0, adminPort: 0 });
    await applyYaml(cp, [withMetrics, hisManifest([his]), emrManifest(emr)].join('---\n'));
    apps.push(await startHttpUpstream({ name: his.name, host: his.address, port: HIS_APP_PORT }));
    for (const i of [his, emr]) {
      const envoyAdminPort = await freePort();
      const service = i.name.replace(/-\d+$/, '');
      envoys.push(await startSidecar(cp, service, i.name, 'ads', {}, { envoyAdminPort }));
    }
    await waitFor(
      async () => (await httpRequest(`http://${emr.address}:${EMR_TO_HIS_PORT}/`)).status === 200,
      { what: "EMR's sidecar to route to HIS", timeoutMs: 20_000 },
    );
  });

  afterEach(dumpLogsOnFailure(() => envoys));
  afterAll(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await Promise.all(apps.map((a) => a.close()));
    await cp?.stop();
  });

  it("counts EMR's requests to HIS on EMR's metrics port, and HIS's inbound ones on HIS's", async () => {
    const cluster = { envoy_cluster_name: 'outbound|http|his.clinical' };
    const before = sample((await scrape(emr)).body, 'envoy_cluster_upstream_rq_total', cluster) ?? 0;
    const inbound = { envoy_cluster_name: 'inbound|http' };
    const hisBefore = sample((await scrape(his)).body, 'envoy_cluster_upstream_rq_total', inbound) ?? 0;
    for (let n = 0; n < REQUESTS; n++) {
      const res = await httpRequest(`http://${emr.address}:${EMR_TO_HIS_PORT}${PATIENT_PATH}`);
      expect(res.status).toBe(200);
    }
    const scraped = await waitFor(
      async () => {
        const res = await scrape(emr);
        const total = sample(res.body, 'envoy_cluster_upstream_rq_total', cluster);
        return total === before + REQUESTS ? res : undefined;
      },
      { what: `EMR's sidecar to report ${REQUESTS} more requests to HIS`, timeoutMs: 10_000 },
    );
    expect(scraped.status).toBe(200);
    expect(String(scraped.headers['content-type'])).toContain('text/plain');
    expect(
      sample(scraped.body, 'envoy_cluster_upstream_rq', { ...cluster, envoy_response_code: '200' }),
    ).toBe(before + REQUESTS);
    await waitFor(
      async () =>
        sample((await scrape(his)).body, 'envoy_cluster_upstream_rq_total', inbound) === hisBefore + REQUESTS,
      { what: `HIS's sidecar to report ${REQUESTS} more inbound requests`, timeoutMs: 10_000 },
    );
    for (const body of [scraped.body, (await scrape(his)).body]) {
      expect(body).not.toContain('MRN-4711');
      expect(body).not.toContain('Doe');
    }
  });

  it('answers 404 to the rest of the admin API, and the sidecar keeps running', async () => {
    const tries: [string, string][] = [
      ['/config_dump', 'GET'],
      ['/quitquitquit', 'POST'],
      ['/stats', 'GET'],
      ['/stats/prometheus/../config_dump', 'GET'],
      ['/', 'GET'],
      ['/stats/prometheus', 'POST'],
    ];
    for (const [path, method] of tries) {
      const res = await scrape(emr, path, method);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body).not.toContain('configs');
    }
    const sidecar = envoys.find((e) => e.name === emr.name)!;
    expect((await sidecar.admin('/ready')).trim()).toBe('LIVE');
    expect((await httpRequest(`http://${emr.address}:${EMR_TO_HIS_PORT}/`)).status).toBe(200);
  });

  it('never had an update rejected by a sidecar', async () => {
    await expectNoRejectedUpdates(envoys);
  });

  it('closes the metrics port when the Mesh no longer asks for metrics', async () => {
    await applyYaml(cp, meshManifest);
    await waitFor(
      async () => {
        try {
          await scrape(emr);
          return false;
        } catch {
          return true;
        }
      },
      { what: "EMR's metrics listener to go away", timeoutMs: 15_000 },
    );
    expect((await httpRequest(`http://${emr.address}:${EMR_TO_HIS_PORT}/`)).status).toBe(200);
  });
});
