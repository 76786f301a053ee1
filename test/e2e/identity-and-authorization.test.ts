// Every hop encrypted, least privilege, an audit trail: real Envoy sidecars with CA-issued SPIFFE
// certificates over SDS. EMR may read patients from HIS; imaging may not call EMR; only EMR may open
// an HL7 (TCP) connection to the lab; plaintext and foreign-CA clients are refused at the door; and
// each inbound request leaves one JSON audit line without its query string.
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { CertificateAuthority } from '../../src/ca/index.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import {
  describeWithEnvoy,
  dumpLogsOnFailure,
  type EnvoyHandle,
  expectNoRejectedUpdates,
} from '../helpers/envoy.ts';
import {
  applyYaml,
  emrManifest,
  hisManifest,
  instances,
  NS,
  serviceManifest,
  startSidecar,
} from '../helpers/mesh.ts';
import { httpRequest, startHttpUpstream, startTcpEchoUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { readAuditLines } from '../helpers/audit.ts';

const [his, emr, imaging, lab] = instances('x', 4).map((i, n) => ({
  ...i,
  name: `${['his', 'emr', 'imaging', 'lab'][n]}-1`,
})) as [
  { name: string; address: string },
  { name: string; address: string },
  { name: string; address: string },
  { name: string; address: string },
];

const LAB_PORT = '{ name: hl7, port: 15031, targetPort: 2575, protocol: tcp }';
const toLab = (localPort: number) => `{ service: lab, port: hl7, localPort: ${localPort} }`;

const manifests = (mode: 'STRICT' | 'PERMISSIVE') => `apiVersion: clinimesh.io/v1alpha1
kind: Mesh
metadata: { name: hospital }
spec: { trustDomain: hospital.local, mtls: { mode: ${mode} } }
---
${hisManifest([his])}---
${emrManifest(emr, ['{ service: his, port: http, localPort: 9001 }', toLab(9003)])}---
${serviceManifest({
  name: 'imaging',
  ports: ['{ name: http, port: 15021, targetPort: 8080, protocol: http }'],
  instances: [imaging],
  upstreams: ['{ service: emr, port: http, localPort: 9101 }', toLab(9103)],
})}---
${serviceManifest({ name: 'lab', ports: [LAB_PORT], instances: [lab] })}---
apiVersion: clinimesh.io/v1alpha1
kind: AccessPolicy
metadata: { name: his-readers, namespace: ${NS} }
spec:
  destination: his
  rules: [{ from: [{ service: emr }], http: { methods: [GET, POST], paths: ["/patients/*"] } }]
---
apiVersion: clinimesh.io/v1alpha1
kind: AccessPolicy
metadata: { name: emr-callers, namespace: ${NS} }
spec:
  destination: emr
  rules: [{ from: [{ service: his }] }]
---
apiVersion: clinimesh.io/v1alpha1
kind: AccessPolicy
metadata: { name: lab-orders, namespace: ${NS} }
spec:
  destination: lab
  rules: [{ from: [{ service: emr }] }]
`;

interface AuditLine {
  source: string;
  destination: string;
  method?: string;
  path?: string;
  status?: number | string;
  request_id?: string;
  authz: string;
}

/** Sends `payload` over a fresh TCP connection and returns what comes back before the peer closes. */
function tcpExchange(host: string, port: number, payload: string, timeoutMs = 3_000): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const socket = netConnect({ host, port }, () => socket.write(payload));
    const done = () => {
      socket.destroy();
      resolve(got);
    };
    socket.on('data', (d) => {
      got += d.toString();
      if (got.includes(payload)) done();
    });
    socket.on('error', done);
    socket.on('close', done);
    setTimeout(done, timeoutMs).unref();
  });
}

describeWithEnvoy('identity, mTLS, authorization and audit with real Envoy', () => {
  let cp: RunningControlPlane;
  let dir: string;
  const envoys: EnvoyHandle[] = [];
  const apps: Upstream[] = [];
  const audit = (name: string) => join(dir, `${name}.audit.jsonl`);

  const auditLines = (name: string) => readAuditLines<AuditLine>(audit(name));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clinimesh-audit-'));
    cp = await startControlPlane({ trustDomain: 'hospital.local', xdsPort: 0, xdsRestPort: 0, adminPort: 0 });
    await applyYaml(cp, manifests('STRICT'));
    for (const i of [his, emr, imaging])
      apps.push(await startHttpUpstream({ name: i.name, host: i.address, port: 8080 }));
    apps.push(await startTcpEchoUpstream({ name: lab.name, host: lab.address, port: 2575 }));
    for (const i of [his, emr, imaging, lab]) {
      envoys.push(
        await startSidecar(cp, i.name.replace(/-1$/, ''), i.name, 'ads', {
          'clinimesh.audit_log': audit(i.name),
        }),
      );
    }
    await waitFor(
      async () =>
        (await httpRequest(`http://${emr.address}:9001/patients/1`, { timeoutMs: 3_000 })).status === 200,
      {
        what: 'EMR to reach HIS over mTLS',
        timeoutMs: 20_000,
      },
    );
  });

  afterEach(dumpLogsOnFailure(() => envoys));
  afterAll(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await Promise.all(apps.map((a) => a.close()));
    await cp?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('lets EMR read a patient from HIS, and audits it without the query string', async () => {
    const res = await httpRequest(`http://${emr.address}:9001/patients/42?mrn=123456`, {
      headers: { 'x-request-id': 'audit-42' },
    });
    expect(res.status).toBe(200);
    // The application learns the verified caller from the sidecar, not from the caller's own claims.
    const line = await waitFor(
      async () => (await auditLines(his.name)).find((l) => l.request_id === 'audit-42'),
      { what: 'the audit line' },
    );
    expect(line).toMatchObject({
      source: `spiffe://hospital.local/ns/${NS}/sa/emr`,
      destination: `spiffe://hospital.local/ns/${NS}/sa/his`,
      method: 'GET',
      path: '/patients/42',
      authz: 'allowed',
    });
    expect(String(line.status)).toBe('200');
    expect(JSON.stringify(line)).not.toContain('123456');
  });

  it('denies a method the policy does not allow, and audits the denial', async () => {
    const res = await httpRequest(`http://${emr.address}:9001/patients/42`, {
      method: 'DELETE',
      headers: { 'x-request-id': 'audit-del' },
    });
    expect(res.status).toBe(403);
    const line = await waitFor(
      async () => (await auditLines(his.name)).find((l) => l.request_id === 'audit-del'),
      { what: 'the denial audit line' },
    );
    expect(line.authz).toBe('denied');
    expect(String(line.status)).toBe('403');
  });

  it('cannot be bypassed with dot segments or escaped slashes in the path', async () => {
    // (`/patients//../admin` is `/patients/admin` after normalisation, and that is what the app sees.)
    for (const path of [
      '/patients/../admin',
      '/patients/%2e%2e/admin',
      '/patients/..%2fadmin',
      '/patients/%2F..%2Fadmin',
    ]) {
      const res = await httpRequest(`http://${emr.address}:9001${path}`);
      expect([400, 403], path).toContain(res.status);
    }
  });

  it('records the real path even when the caller sends x-envoy-original-path', async () => {
    const res = await httpRequest(`http://${emr.address}:9001/patients/7?mrn=99`, {
      headers: { 'x-request-id': 'audit-spoof', 'x-envoy-original-path': '/patients/innocent' },
    });
    expect(res.status).toBe(200);
    const line = await waitFor(
      async () => (await auditLines(his.name)).find((l) => l.request_id === 'audit-spoof'),
      { what: 'the audit line' },
    );
    expect(line.path).toBe('/patients/7');
  });

  it('denies imaging calling EMR (403)', async () => {
    const res = await httpRequest(`http://${imaging.address}:9101/charts/7`);
    expect(res.status).toBe(403);
  });

  it('lets EMR open an HL7 connection to the lab and closes one from imaging', async () => {
    expect(await tcpExchange(emr.address, 9003, 'MSH|^~\\&|EMR')).toContain('MSH|^~\\&|EMR');
    expect(await tcpExchange(imaging.address, 9103, 'MSH|^~\\&|IMG')).not.toContain('MSH');
  });

  it('refuses a plaintext client at the inbound port', async () => {
    const res = await httpRequest(`http://${his.address}:15001/patients/1`, { timeoutMs: 3_000 }).catch(
      (e: Error) => e,
    );
    expect(res instanceof Error || res.status !== 200).toBe(true);
  });

  it('refuses a client whose certificate comes from another CA', async () => {
    const otherDir = await mkdtemp(join(tmpdir(), 'clinimesh-rogue-ca-'));
    try {
      const rogue = await CertificateAuthority.open({ dir: otherDir, trustDomain: 'hospital.local' });
      if (!rogue.ok) throw new Error('rogue CA');
      const cert = rogue.value.issueWorkload({ namespace: NS, service: 'emr' });
      const outcome = await new Promise<string>((resolve) => {
        const socket = tlsConnect(
          {
            host: his.address,
            port: 15001,
            cert: cert.certChainPem,
            key: cert.privateKeyPem,
            rejectUnauthorized: false,
          },
          () => {
            socket.write('GET /patients/1 HTTP/1.1\r\nhost: his\r\n\r\n');
          },
        );
        let data = '';
        socket.on('data', (d) => (data += d.toString()));
        socket.on('error', (e) => resolve(`error: ${e.message}`));
        socket.on('close', () => resolve(data ? `data: ${data.slice(0, 20)}` : 'closed'));
      });
      expect(outcome).not.toMatch(/^data: HTTP\/1.1 200/);
    } finally {
      await rm(otherDir, { recursive: true, force: true });
    }
  });

  it('accepts plaintext callers in PERMISSIVE mode where no policy applies', async () => {
    await applyYaml(cp, manifests('PERMISSIVE'));
    const url = `http://${imaging.address}:15021/studies`;
    const res = await waitFor(
      async () => {
        const r = await httpRequest(url, { timeoutMs: 2_000 }).catch(() => undefined);
        return r?.status === 200 ? r : undefined;
      },
      { what: 'imaging to accept a plaintext caller', timeoutMs: 10_000 },
    );
    expect(res.status).toBe(200);
    // Mesh traffic still works, over TLS.
    expect((await httpRequest(`http://${emr.address}:9001/patients/1`)).status).toBe(200);
    await applyYaml(cp, manifests('STRICT'));
    await waitFor(
      async () => (await httpRequest(url, { timeoutMs: 2_000 }).catch(() => undefined))?.status !== 200,
      {
        what: 'STRICT to refuse plaintext again',
      },
    );
  });

  it('never had an update rejected by a sidecar', async () => {
    await expectNoRejectedUpdates(envoys);
  });
});
