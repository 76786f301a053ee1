// EMR calls a reference lab outside the mesh, with real Envoy: the lab is an HTTPS server reached by
// a host name (`localhost`, which the sidecar resolves) with its own CA (made at run time). EMR's application speaks plain HTTP to its
// sidecar's local port; the sidecar originates TLS with the lab's SNI and verifies the lab's
// certificate against the CA file the ExternalService names. A server whose certificate comes from
// another CA is refused; HIS, which does not list the lab, has no way out to it; EMR's sidecar writes
// the audit line naming the lab.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import {
  describeWithEnvoy,
  dumpLogsOnFailure,
  expectNoRejectedUpdates,
  type EnvoyHandle,
} from '../helpers/envoy.ts';
import {
  applyYaml,
  hisManifest,
  instances,
  meshManifest,
  NS,
  serviceManifest,
  startSidecar,
} from '../helpers/mesh.ts';
import { issueServerCert, makeTestCa, startTlsPartner, type TlsPartner } from '../helpers/partner-tls.ts';
import { loopbackAddress } from '../helpers/ports.ts';
import { httpRequest } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { readAuditLines } from '../helpers/audit.ts';

const LAB_NAME = 'lab.partner.test';
const LAB_PORT = 9101;

interface AuditLine {
  direction?: string;
  source?: string;
  destination?: string;
  path?: string;
  status?: string | number;
  request_id?: string;
  upstream_host?: string;
  upstream_failure?: string;
}

/** Can anything be reached at host:port (a listener bound there)? */
function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describeWithEnvoy('EMR calls a reference lab outside the mesh through its sidecar', () => {
  let cp: RunningControlPlane;
  let dir: string;
  let lab: TlsPartner;
  let impostor: TlsPartner;
  let caPem: string;
  const envoys: EnvoyHandle[] = [];
  const [emr] = instances('emr', 1) as [{ name: string; address: string }];
  const [his] = instances('his', 1) as [{ name: string; address: string }];
  const auditFile = () => join(dir, 'emr.audit.jsonl');
  const labUrl = (path: string) => `http://${emr.address}:${LAB_PORT}${path}`;

  const labManifest = (endpoint: { host: string; port: number }) => `apiVersion: clinimesh.io/v1alpha1
kind: ExternalService
metadata: { name: reference-lab, namespace: ${NS} }
spec:
  endpoints: [{ address: ${endpoint.host}, port: ${endpoint.port} }]
  protocol: http
  tls:
    mode: ORIGINATE
    sni: ${LAB_NAME}
    caCertificates: |
      ${caPem.trim().replace(/\n/g, '\n      ')}
`;

  const auditLines = () => readAuditLines<AuditLine>(auditFile());

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clinimesh-egress-'));
    const labCa = await makeTestCa(dir, 'lab');
    const otherCa = await makeTestCa(dir, 'other');
    // Inline, as the README advises: no caller's host needs a file for it.
    caPem = await readFile(labCa.certFile, 'utf8');
    // Both present a certificate for the lab's name; only the lab's is signed by the lab's CA.
    // On 127.0.0.1, so the name `localhost` (a STRICT_DNS cluster, IPv4 preferred) finds it.
    lab = await startTlsPartner(
      'reference-lab',
      '127.0.0.1',
      await issueServerCert(labCa, dir, 'lab', [LAB_NAME]),
    );
    impostor = await startTlsPartner(
      'impostor',
      loopbackAddress(),
      await issueServerCert(otherCa, dir, 'impostor', [LAB_NAME]),
    );
    cp = await startControlPlane({ trustDomain: 'hospital.local', xdsPort: 0, xdsRestPort: 0, adminPort: 0 });
    const emrManifest = serviceManifest({
      name: 'emr',
      ports: ['{ name: http, port: 15011, targetPort: 8080, protocol: http }'],
      instances: [emr],
      upstreams: [`{ external: reference-lab, localPort: ${LAB_PORT} }`],
    });
    const byName = { host: 'localhost', port: lab.port };
    await applyYaml(cp, [meshManifest, labManifest(byName), emrManifest, hisManifest([his])].join('---\n'));
    envoys.push(await startSidecar(cp, 'emr', emr.name, 'ads', { 'clinimesh.audit_log': auditFile() }));
    envoys.push(await startSidecar(cp, 'his', his.name));
    await waitFor(async () => (await httpRequest(labUrl('/'), { timeoutMs: 3_000 })).status === 200, {
      what: "EMR's sidecar to reach the lab",
      timeoutMs: 20_000,
    });
  });

  afterEach(dumpLogsOnFailure(() => envoys));
  afterAll(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await lab?.close();
    await impostor?.close();
    await cp?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("carries the app's plain HTTP to the lab over TLS with the lab's SNI and host name", async () => {
    const res = await httpRequest(labUrl('/fhir/Observation?patient=42'), {
      headers: { 'x-request-id': 'egress-1' },
    });
    expect(res.status).toBe(200);
    // The lab listens for TLS only: an answer at all means the sidecar spoke TLS to it.
    expect(JSON.parse(res.body)).toMatchObject({
      partner: 'reference-lab',
      sni: LAB_NAME,
      host: LAB_NAME,
      path: '/fhir/Observation?patient=42',
    });
    expect(lab.sniSeen).toContain(LAB_NAME);
    await expectNoRejectedUpdates(envoys);
  });

  it("writes the caller's audit line naming the lab, without the query string", async () => {
    const line = await waitFor(async () => (await auditLines()).find((l) => l.request_id === 'egress-1'), {
      what: "EMR's egress audit line",
    });
    expect(line).toMatchObject({
      direction: 'egress',
      source: 'spiffe://hospital.local/ns/clinical/sa/emr',
      destination: 'external:clinical/reference-lab',
      path: '/fhir/Observation',
      upstream_host: `${lab.host}:${lab.port}`,
    });
    expect(String(line.status)).toBe('200');
  });

  it('gives HIS, which does not list the lab, no listener and no cluster for it', async () => {
    const hisEnvoy = envoys[1]!;
    const clusters = (await hisEnvoy.clusters()).map((c) => c.name);
    expect(clusters.some((c) => c.startsWith('external|'))).toBe(false);
    expect(Object.keys(await hisEnvoy.listenerPorts()).some((l) => l === `outbound|${LAB_PORT}`)).toBe(false);
    expect(await canConnect(his.address, LAB_PORT)).toBe(false);
    // EMR's sidecar has both, so the difference is the manifest's, not the test's.
    expect((await envoys[0]!.clusters()).map((c) => c.name)).toContain('external|reference-lab.clinical');
  });

  it('refuses a server whose certificate another CA signed, though it names the lab', async () => {
    await applyYaml(cp, labManifest(impostor));
    const res = await waitFor(
      async () => {
        const r = await httpRequest(labUrl('/fhir/Patient/42'), {
          headers: { 'x-request-id': 'egress-impostor' },
          timeoutMs: 5_000,
        });
        return r.status === 200 ? undefined : r;
      },
      { what: "EMR's sidecar to move to the impostor's address", timeoutMs: 20_000 },
    );
    expect(res.status).toBe(503);
    // The sidecar did open TLS to it (with the lab's SNI) and never sent it a request.
    expect(impostor.sniSeen).toContain(LAB_NAME);
    expect(impostor.requests).toBe(0);
    const line = await waitFor(
      async () => (await auditLines()).find((l) => l.request_id === 'egress-impostor' && l.upstream_failure),
      { what: 'the audit line of the refused call' },
    );
    expect(line.upstream_failure).toMatch(/CERTIFICATE_VERIFY_FAILED/);
    await expectNoRejectedUpdates(envoys);
  });
});
