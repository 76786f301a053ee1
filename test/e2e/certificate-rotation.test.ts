// Short-lived certificates rotate under live traffic: a workload certificate is replaced over SDS
// before it expires without restarting Envoy or dropping an open connection, and the mesh's root is
// replaced (overlap, then retirement) while requests keep succeeding.
import { connect as netConnect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import { describeWithEnvoy, dumpLogsOnFailure, type EnvoyHandle } from '../helpers/envoy.ts';
import { applyYaml, emrManifest, hisManifest, instances, meshManifest, NS, serviceManifest, startSidecar } from '../helpers/mesh.ts';
import { httpRequest, startHttpUpstream, startTcpEchoUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const [his, emr, lab] = instances('x', 3).map((i, n) => ({ ...i, name: `${['his', 'emr', 'lab'][n]}-1` })) as [
  { name: string; address: string },
  { name: string; address: string },
  { name: string; address: string },
];

const manifests = [
  meshManifest,
  hisManifest([his]),
  serviceManifest({ name: 'lab', ports: ['{ name: hl7, port: 15031, targetPort: 2575, protocol: tcp }'], instances: [lab] }),
  emrManifest(emr, ['{ service: his, port: http, localPort: 9001 }', '{ service: lab, port: hl7, localPort: 9003 }']),
].join('---\n');

/** A long-lived HL7 connection: write a message, read its echo, on the same socket each time. */
async function openHl7(host: string, port: number): Promise<{ roundTrip(msg: string): Promise<string>; socket: Socket }> {
  const socket = netConnect({ host, port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let buffer = '';
  socket.on('data', (d) => (buffer += d.toString()));
  return {
    socket,
    roundTrip: (msg) => {
      socket.write(msg);
      return waitFor(async () => (buffer.includes(msg) ? buffer : undefined), { what: `echo of ${msg}`, timeoutMs: 5_000 }).then((b) => {
        buffer = '';
        return b;
      });
    },
  };
}

describeWithEnvoy('certificate rotation under traffic', () => {
  let cp: RunningControlPlane;
  const envoys: EnvoyHandle[] = [];
  const apps: Upstream[] = [];
  const ok = async () => (await httpRequest(`http://${emr.address}:9001/patients/1`, { timeoutMs: 3_000 })).status;

  beforeAll(async () => {
    // 10 s certificates: rotated at 5–8 s.
    cp = await startControlPlane({ trustDomain: 'hospital.local', xdsPort: 0, xdsRestPort: 0, adminPort: 0, workloadCertTtlMs: 10_000 });
    await applyYaml(cp, manifests);
    apps.push(await startHttpUpstream({ name: his.name, host: his.address, port: 8080 }));
    apps.push(await startTcpEchoUpstream({ name: lab.name, host: lab.address, port: 2575 }));
    for (const i of [his, emr, lab]) envoys.push(await startSidecar(cp, i.name.replace(/-1$/, ''), i.name));
    await waitFor(async () => (await ok()) === 200, { what: 'EMR to reach HIS', timeoutMs: 20_000 });
  });

  afterEach(dumpLogsOnFailure(() => envoys));
  afterAll(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await Promise.all(apps.map((a) => a.close()));
    await cp?.stop();
  });

  it('rotates workload certificates before expiry without dropping an open connection', async () => {
    const labNode = `${NS}/lab/${lab.name}`;
    const before = cp.identities.certificateOf(labNode)!.serial;
    const conn = await openHl7(emr.address, 9003);
    expect(await conn.roundTrip('MSH|1')).toContain('MSH|1');
    await waitFor(async () => cp.identities.certificateOf(labNode)!.serial !== before, { what: 'the lab certificate to rotate', timeoutMs: 15_000 });
    const labEnvoy = envoys.find((e) => e.name === lab.name)!;
    await waitFor(async () => (await labEnvoy.admin('/certs')).includes(cp.identities.certificateOf(labNode)!.serial.toLowerCase()), {
      what: "lab's Envoy to serve the new certificate",
    });
    expect(conn.socket.destroyed).toBe(false);
    expect(await conn.roundTrip('MSH|2')).toContain('MSH|2');
    conn.socket.destroy();
    expect(await ok()).toBe(200);
  });

  it('rotates the root with an overlap, and traffic flows throughout', async () => {
    const oldRoot = cp.ca.describe().root.fingerprint256;
    const statuses: number[] = [];
    let stop = false;
    const traffic = (async () => {
      for (let i = 0; i < 2_000 && !stop; i++) statuses.push(await ok());
    })();
    const admin = (phase: string) => fetch(`${cp.adminUrl}/v1/ca/rotate-root?phase=${phase}`, { method: 'POST' });
    const begin = await admin('begin');
    expect(begin.status).toBe(200);
    expect(cp.ca.trustBundle()).toHaveLength(2);
    expect(cp.ca.describe().root.fingerprint256).not.toBe(oldRoot);
    // Every sidecar now holds a certificate from the new root.
    await waitFor(
      async () => {
        for (const e of envoys) if (!(await e.admin('/certs')).includes(cp.identities.certificateOf(`${NS}/${e.name.replace(/-1$/, '')}/${e.name}`)!.serial.toLowerCase())) return false;
        return true;
      },
      { what: 'all sidecars to hold new-root certificates' },
    );
    const complete = await admin('complete');
    expect(complete.status).toBe(200);
    expect(cp.ca.trustBundle()).toHaveLength(1);
    await waitFor(async () => statuses.length > 20, { what: 'some traffic after completion' });
    stop = true;
    await traffic;
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
  });
});
