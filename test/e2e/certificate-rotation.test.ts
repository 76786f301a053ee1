// Short-lived certificates rotate under live traffic: each node agent renews its workload
// certificate and its own credential to the control plane before they expire, Envoy picks both up
// from the agent's files without a restart or a dropped connection, and the mesh's root is replaced
// (overlap, then retirement) while requests keep succeeding; a sidecar bootstrapped before the
// rotation still connects after it.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { readCertificate } from '../../src/agent/secret-files.ts';
import { XDS_CLIENT_SECRET } from '../../src/bootstrap/envoy-bootstrap.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import { WORKLOAD_SECRET } from '../../src/xds/generate/secrets.ts';
import { adminRequest } from '../helpers/admin.ts';
import { describeWithEnvoy, dumpLogsOnFailure, startEnvoy, type EnvoyHandle } from '../helpers/envoy.ts';
import {
  applyYaml,
  emrManifest,
  hisManifest,
  instances,
  meshManifest,
  serviceManifest,
  startSidecar,
  type Sidecar,
} from '../helpers/mesh.ts';
import { httpRequest, startHttpUpstream, startTcpEchoUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const [his, emr, lab] = instances('x', 3).map((i, n) => ({
  ...i,
  name: `${['his', 'emr', 'lab'][n]}-1`,
})) as [
  { name: string; address: string },
  { name: string; address: string },
  { name: string; address: string },
];

const manifests = [
  meshManifest,
  hisManifest([his]),
  serviceManifest({
    name: 'lab',
    ports: ['{ name: hl7, port: 15031, targetPort: 2575, protocol: tcp }'],
    instances: [lab],
  }),
  emrManifest(emr, [
    '{ service: his, port: http, localPort: 9001 }',
    '{ service: lab, port: hl7, localPort: 9003 }',
  ]),
].join('---\n');

/** A long-lived HL7 connection: write a message, read its echo, on the same socket each time. */
async function openHl7(
  host: string,
  port: number,
): Promise<{ roundTrip(msg: string): Promise<string>; socket: Socket }> {
  const socket = netConnect({ host, port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let buffer = '';
  socket.on('data', (d) => (buffer += d.toString()));
  return {
    socket,
    roundTrip: (msg) => {
      socket.write(msg);
      return waitFor(async () => (buffer.includes(msg) ? buffer : undefined), {
        what: `echo of ${msg}`,
        timeoutMs: 5_000,
      }).then((b) => {
        buffer = '';
        return b;
      });
    },
  };
}

/** The certificate the agent currently hands its Envoy (`default` for peers, `xds-client` for the control plane). */
function heldCert(sidecar: Sidecar, secret: string): X509Certificate {
  const held = readCertificate(sidecar.agent.sdsDir, secret);
  if (!held) throw new Error(`${sidecar.name}: no ${secret} secret file`);
  return new X509Certificate(held.certChainPem);
}

/** Whether Envoy serves exactly the certificates its agent holds now (both secrets). */
async function envoyServesHeld(sidecar: Sidecar): Promise<boolean> {
  const certs = await sidecar.admin('/certs');
  return [WORKLOAD_SECRET, XDS_CLIENT_SECRET].every((s) =>
    certs.includes(heldCert(sidecar, s).serialNumber.toLowerCase()),
  );
}

describeWithEnvoy('certificate rotation under traffic', () => {
  let cp: RunningControlPlane;
  const envoys: Sidecar[] = [];
  const extra: EnvoyHandle[] = [];
  const apps: Upstream[] = [];
  const ok = async () =>
    (await httpRequest(`http://${emr.address}:9001/patients/1`, { timeoutMs: 3_000 })).status;

  beforeAll(async () => {
    // 10 s certificates and agent credentials: renewed at 5–8 s.
    cp = await startControlPlane({
      trustDomain: 'hospital.local',
      xdsPort: 0,
      xdsRestPort: 0,
      adminPort: 0,
      workloadCertTtlMs: 10_000,
      agentCredentialTtlMs: 10_000,
    });
    await applyYaml(cp, manifests);
    apps.push(await startHttpUpstream({ name: his.name, host: his.address, port: 8080 }));
    apps.push(await startTcpEchoUpstream({ name: lab.name, host: lab.address, port: 2575 }));
    for (const i of [his, emr, lab]) envoys.push(await startSidecar(cp, i.name.replace(/-1$/, ''), i.name));
    await waitFor(async () => (await ok()) === 200, { what: 'EMR to reach HIS', timeoutMs: 20_000 });
  });

  afterEach(dumpLogsOnFailure(() => [...envoys, ...extra]));
  afterAll(async () => {
    await Promise.all([...envoys, ...extra].map((e) => e.stop()));
    await Promise.all(apps.map((a) => a.close()));
    await cp?.stop();
  });

  it('renews the workload certificate and the xDS credential before expiry, dropping no request or open connection', async () => {
    const labSidecar = envoys.find((e) => e.name === lab.name)!;
    const before = {
      workload: heldCert(labSidecar, WORKLOAD_SECRET).serialNumber,
      xds: heldCert(labSidecar, XDS_CLIENT_SECRET).serialNumber,
    };
    const conn = await openHl7(emr.address, 9003);
    expect(await conn.roundTrip('MSH|1')).toContain('MSH|1');
    const statuses: number[] = [];
    await waitFor(
      async () => {
        statuses.push(await ok());
        return (
          labSidecar.agent.status().renewals >= 2 &&
          heldCert(labSidecar, WORKLOAD_SECRET).serialNumber !== before.workload &&
          (await envoyServesHeld(labSidecar))
        );
      },
      { what: "lab's agent to renew twice and its Envoy to serve the new certificates", timeoutMs: 25_000 },
    );
    expect(heldCert(labSidecar, XDS_CLIENT_SECRET).serialNumber).not.toBe(before.xds);
    // Renewed twice on 10 s lifetimes: past the first certificates' expiry, still connected.
    expect((await labSidecar.stats('control_plane.connected_state'))['control_plane.connected_state']).toBe(
      1,
    );
    expect(conn.socket.destroyed).toBe(false);
    expect(await conn.roundTrip('MSH|2')).toContain('MSH|2');
    conn.socket.destroy();
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
  });

  it('rotates the root with an overlap, traffic flows throughout, and a sidecar bootstrapped before it reconnects after', async () => {
    const oldRoot = cp.ca.describe().root.fingerprint256;
    const statuses: number[] = [];
    let stop = false;
    const traffic = (async () => {
      for (let i = 0; i < 5_000 && !stop; i++) statuses.push(await ok());
    })();
    const begin = await adminRequest(cp, 'POST', '/v1/ca/rotate-root?phase=begin');
    expect(begin.status).toBe(200);
    expect(cp.ca.trustBundle()).toHaveLength(2);
    expect(cp.ca.describe().root.fingerprint256).not.toBe(oldRoot);
    const newRoot = new X509Certificate(cp.ca.trustBundle()[0]!);
    // Every agent renews from the new root, and its Envoy serves what it renewed.
    await waitFor(
      async () => {
        for (const e of envoys) {
          if (
            ![WORKLOAD_SECRET, XDS_CLIENT_SECRET].every((s) => heldCert(e, s).checkIssued(newRoot)) ||
            !(await envoyServesHeld(e))
          )
            return false;
        }
        return true;
      },
      { what: 'all sidecars to hold new-root certificates', timeoutMs: 20_000 },
    );
    const complete = await adminRequest(cp, 'POST', '/v1/ca/rotate-root?phase=complete');
    expect(complete.status).toBe(200);
    expect(cp.ca.trustBundle()).toHaveLength(1);
    await waitFor(async () => statuses.length > 20, { what: 'some traffic after completion' });
    stop = true;
    await traffic;
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // A fresh Envoy from the bootstrap the HIS agent wrote before the rotation: it must trust the
    // control plane's new-root certificate and be trusted with its agent's renewed credential.
    const hisSidecar = envoys.find((e) => e.name === his.name)!;
    const bootstrap = JSON.parse(await readFile(hisSidecar.agent.bootstrapPath, 'utf8')) as object;
    const again = await startEnvoy({ bootstrap, name: `${his.name}-again` });
    extra.push(again);
    await waitFor(
      async () => (await again.stats('control_plane.connected_state'))['control_plane.connected_state'] === 1,
      { what: 'the re-started HIS Envoy to connect' },
    );
  });

  it('migrates the trust domain when an admin asks, and traffic resumes under the new identities', async () => {
    const editor = await adminRequest(cp, 'POST', '/v1/apply', {
      body: meshManifest.replace('hospital.local', 'clinic.example'),
    });
    expect(editor.status).toBe(409);
    const migrated = await adminRequest(cp, 'POST', '/v1/ca/trust-domain', {
      body: { trustDomain: 'clinic.example' },
    });
    expect(migrated.status).toBe(200);
    expect(cp.controlPlane.state().mesh.trustDomain).toBe('clinic.example');
    await waitFor(
      async () => {
        for (const e of envoys) {
          if (
            ![WORKLOAD_SECRET, XDS_CLIENT_SECRET].every((s) =>
              heldCert(e, s).subjectAltName?.includes('spiffe://clinic.example/'),
            ) ||
            !(await envoyServesHeld(e))
          )
            return false;
        }
        return true;
      },
      { what: 'all agents to renew into clinic.example', timeoutMs: 20_000 },
    );
    await waitFor(async () => (await ok()) === 200, { what: 'EMR to reach HIS under the new trust domain' });
    for (const e of envoys)
      expect((await e.stats('control_plane.connected_state'))['control_plane.connected_state'], e.name).toBe(
        1,
      );
    const history = await adminRequest(cp, 'GET', '/v1/history');
    expect(JSON.stringify(history.json)).toContain('trust-domain-migration');
  });
});
