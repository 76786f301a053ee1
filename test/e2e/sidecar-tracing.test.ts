// One request, one trace, no patient data, with real Envoy: the Mesh sends spans to a Zipkin
// collector (a small HTTP server here standing for Zipkin's API), EMR calls HIS through its sidecar
// on a path holding a patient id and a query holding a name, and the collector receives EMR's client
// span and HIS's server span of that request under one trace id, each named after HIS's port,
// neither carrying the path, the query or the span name the application tried to set.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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
import { loopbackAddress } from '../helpers/ports.ts';
import { httpRequest, startHttpUpstream, type ServedBy, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

/** A Zipkin v2 span as Envoy posts it (JSON), the fields we read. */
interface ZipkinSpan {
  traceId: string;
  id: string;
  parentId?: string;
  kind?: string;
  name: string;
  localEndpoint?: { serviceName?: string };
  tags?: Record<string, string>;
}

/** Stands for Zipkin: takes POST /api/v2/spans, keeps every span and the raw bodies. */
async function startCollector(host: string): Promise<{ server: Server; spans: ZipkinSpan[]; raw: string[] }> {
  const spans: ZipkinSpan[] = [];
  const raw: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (req.method !== 'POST' || req.url !== '/api/v2/spans') {
        res.writeHead(404).end();
        return;
      }
      raw.push(body);
      spans.push(...(JSON.parse(body) as ZipkinSpan[]));
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { server, spans, raw };
}

const PATIENT_PATH = '/patients/MRN-4711/chart?name=Doe';

describeWithEnvoy('EMR calls HIS: one trace, spans from both sidecars, no patient data', () => {
  let cp: RunningControlPlane;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  const envoys: Sidecar[] = [];
  const apps: Upstream[] = [];
  const [his] = instances('his', 1) as [TestInstance];
  const [emr] = instances('emr', 1) as [TestInstance];
  const callHis = (path: string, headers: Record<string, string> = {}) =>
    httpRequest(`http://${emr.address}:${EMR_TO_HIS_PORT}${path}`, { headers, timeoutMs: 5_000 });

  beforeAll(async () => {
    collector = await startCollector(loopbackAddress());
    const { address, port } = collector.server.address() as AddressInfo;
    const mesh = `${meshManifest}  tracing:\n    zipkin: { collector: "${address}:${port}" }\n    sampling: 100\n`;
    cp = await startControlPlane({ trustDomain: 'hospital.local', xdsPort: 0, xdsRestPort: 0, adminPort: 0 });
    await applyYaml(cp, [mesh, hisManifest([his]), emrManifest(emr)].join('---\n'));
    apps.push(await startHttpUpstream({ name: his.name, host: his.address, port: HIS_APP_PORT }));
    for (const i of [his, emr]) envoys.push(await startSidecar(cp, i.name.replace(/-\d+$/, ''), i.name));
    await waitFor(async () => (await callHis('/')).status === 200, {
      what: "EMR's sidecar to route to HIS",
      timeoutMs: 20_000,
    });
  });

  afterEach(dumpLogsOnFailure(() => envoys));
  afterAll(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await Promise.all(apps.map((a) => a.close()));
    await new Promise((resolve) => collector?.server.close(resolve));
    await cp?.stop();
  });

  it("sends EMR's client span and HIS's server span of one request under one trace id", async () => {
    const res = await callHis(PATIENT_PATH, {
      // An application trying to name the span itself (Envoy honours this header on ingress).
      'x-envoy-decorator-operation': '/patients/MRN-4711',
      'x-envoy-downstream-service-cluster': 'MRN-4711',
      'user-agent': 'chart-viewer (patient MRN-4711)',
    });
    expect(res.status).toBe(200);
    // The application still gets the whole request: only telemetry leaves the path out.
    expect((JSON.parse(res.body) as ServedBy).path).toBe(PATIENT_PATH);
    const requestId = String(res.headers['x-request-id']);
    const ofRequest = (kind: string, service: string) =>
      collector.spans.find(
        (s) =>
          s.kind === kind &&
          s.localEndpoint?.serviceName === service &&
          s.tags?.['guid:x-request-id'] === requestId,
      );
    const pair = await waitFor(
      () => {
        const client = ofRequest('CLIENT', 'emr');
        const server = ofRequest('SERVER', 'his');
        return Promise.resolve(client && server ? { client, server } : undefined);
      },
      { what: `spans of request ${requestId} from both sidecars`, timeoutMs: 20_000 },
    );
    expect(pair.server.traceId).toBe(pair.client.traceId);
    expect(pair.server.parentId).toBe(pair.client.id);
    expect(pair.client.name).toBe('his.clinical:http');
    expect(pair.server.name).toBe('his.clinical:http');
    expect(pair.client.tags?.['http.url']).toBe(`http://${emr.address}:${EMR_TO_HIS_PORT}`);
  });

  it('puts neither the path, the query nor an application-set span name into any span', async () => {
    await waitFor(() => Promise.resolve(collector.raw.length > 0 || undefined), { what: 'spans' });
    const all = collector.raw.join('\n');
    for (const secret of ['MRN-4711', 'Doe', 'chart', 'name=', '/patients'])
      expect(all, `span JSON contains ${secret}`).not.toContain(secret);
  });

  it('never had an update rejected by a sidecar', async () => {
    await expectNoRejectedUpdates(envoys);
  });
});
