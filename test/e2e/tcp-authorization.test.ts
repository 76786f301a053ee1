// TCP authorization that leaks nothing, with real Envoy: HIS publishes ADT events to the message
// broker (a server-first protocol: the broker greets on accept) and sends HL7 over MLLP (client
// first); LIS may only use the broker's HTTP port; PACS has no policy. A denied caller must get no byte from the broker and the broker must
// never see its connection, which network RBAC after tcp_proxy cannot give: mesh TCP goes through an
// HTTP/2 CONNECT tunnel authorized before the application is connected. Every tunnel leaves audit
// lines with the caller's identity, the port, the decision, the bytes and the duration.
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import {
  describeWithEnvoy,
  dumpLogsOnFailure,
  type EnvoyHandle,
  expectNoRejectedUpdates,
} from '../helpers/envoy.ts';
import { applyYaml, instances, NS, serviceManifest, startSidecar } from '../helpers/mesh.ts';
import {
  httpRequest,
  startHttpUpstream,
  startTcpUpstream,
  type TcpUpstream,
  type Upstream,
} from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { readAuditLines } from '../helpers/audit.ts';

const [mq, his, lis, pacs] = instances('tcp', 4) as [
  { name: string; address: string },
  { name: string; address: string },
  { name: string; address: string },
  { name: string; address: string },
];
const GREETING = 'AMQP-READY\r\n';
const PUBLISH = 'PUBLISH adt-a01';
// Each caller reaches the broker's ports at these local ports on its own address.
const LOCAL = { amqp: 9201, mllp: 9202, http: 9203 } as const;
const upstreams = Object.entries(LOCAL).map(
  ([port, localPort]) => `{ service: mq, port: ${port}, localPort: ${localPort} }`,
);

const caller = (name: string, i: { address: string }) =>
  serviceManifest({
    name,
    ports: ['{ name: http, port: 15011, targetPort: 8080, protocol: http }'],
    instances: [{ name: `${name}-1`, address: i.address }],
    upstreams,
  });

const manifests = `apiVersion: clinimesh.io/v1alpha1
kind: Mesh
metadata: { name: hospital }
# A short request timeout: it bounds HTTP requests, and must never end a quiet TCP tunnel.
spec: { trustDomain: hospital.local, mtls: { mode: STRICT }, defaults: { requestTimeout: 2s } }
---
${serviceManifest({
  name: 'mq',
  ports: [
    '{ name: amqp, port: 15672, targetPort: 5672, protocol: tcp }',
    '{ name: mllp, port: 15575, targetPort: 2575, protocol: tcp }',
    '{ name: http, port: 15080, targetPort: 8080, protocol: http }',
  ],
  instances: [{ name: 'mq-1', address: mq.address }],
})}---
${caller('his', his)}---
${caller('lis', lis)}---
${caller('pacs', pacs)}---
apiVersion: clinimesh.io/v1alpha1
kind: AccessPolicy
metadata: { name: mq-publishers, namespace: ${NS} }
spec:
  destination: mq
  rules:
    - { from: [{ service: his }], ports: [amqp, mllp] }
    - { from: [{ service: lis }], ports: [http] }
`;

interface Talk {
  /** Everything the caller read before the connection ended or the time ran out. */
  readonly received: string;
  /** The caller's connection was closed by its sidecar (not by us at the deadline). */
  readonly closedByPeer: boolean;
}

/** One TCP conversation through a caller's sidecar: optionally send, optionally half-close, read. */
function talk(
  host: string,
  port: number,
  o: { send?: string; halfClose?: boolean; until?: (got: string) => boolean; timeoutMs?: number } = {},
): Promise<Talk> {
  return new Promise((resolve) => {
    let received = '';
    let settled = false;
    const socket = netConnect({ host, port, allowHalfOpen: true }, () => {
      if (o.send) socket.write(o.send);
      if (o.halfClose) socket.end();
    });
    const finish = (closedByPeer: boolean) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve({ received, closedByPeer });
    };
    socket.on('data', (d: Buffer) => {
      received += d.toString();
      if (o.until?.(received)) finish(false);
    });
    // The sidecar ending its side (FIN) counts as closing: with allowHalfOpen, 'close' waits for ours.
    socket.on('end', () => finish(true));
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
    setTimeout(() => finish(false), o.timeoutMs ?? 3_000).unref();
  });
}

interface AuditLine {
  event?: string;
  source?: string | null;
  destination?: string;
  port?: string;
  status?: number | string;
  bytes_received?: number | string;
  bytes_sent?: number | string;
  duration_ms?: number | string | null;
  authz?: string | null;
  time?: string;
}

describeWithEnvoy('TCP authorization that leaks nothing, with real Envoy', () => {
  let cp: RunningControlPlane;
  let dir: string;
  const envoys: EnvoyHandle[] = [];
  const apps: Upstream[] = [];
  let amqp: TcpUpstream;
  let mllp: TcpUpstream;
  const auditFile = () => join(dir, 'mq.audit.jsonl');

  const auditLines = () => readAuditLines<AuditLine>(auditFile());

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clinimesh-tcp-authz-'));
    cp = await startControlPlane({ trustDomain: 'hospital.local', xdsPort: 0, xdsRestPort: 0, adminPort: 0 });
    await applyYaml(cp, manifests);
    amqp = await startTcpUpstream({ name: 'amqp', host: mq.address, port: 5672, greeting: GREETING });
    mllp = await startTcpUpstream({ name: 'mllp', host: mq.address, port: 2575 });
    apps.push(amqp, mllp, await startHttpUpstream({ name: 'mq-http', host: mq.address, port: 8080 }));
    envoys.push(await startSidecar(cp, 'mq', 'mq-1', 'ads', { 'clinimesh.audit_log': auditFile() }));
    envoys.push(await startSidecar(cp, 'his', 'his-1'));
    envoys.push(await startSidecar(cp, 'lis', 'lis-1'));
    envoys.push(await startSidecar(cp, 'pacs', 'pacs-1'));
    await waitFor(
      async () =>
        (await talk(his.address, LOCAL.amqp, { until: (g) => g.includes(GREETING) })).received.includes(
          GREETING,
        ),
      { what: 'HIS to reach the broker through its tunnel', timeoutMs: 30_000 },
    );
    await waitFor(
      async () =>
        (await httpRequest(`http://${lis.address}:${LOCAL.http}/`).catch(() => undefined))?.status === 200,
      { what: 'LIS to reach the broker over HTTP', timeoutMs: 30_000 },
    );
    await waitFor(
      async () => (await httpRequest(`http://${pacs.address}:${LOCAL.http}/`).catch(() => undefined))?.status,
      { what: "PACS's sidecar to have its listeners", timeoutMs: 30_000 },
    );
  });

  afterEach(dumpLogsOnFailure(() => envoys));
  afterAll(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await Promise.all(apps.map((a) => a.close()));
    await cp?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('gives a denied caller no byte of a server-first greeting, and the broker never sees it', async () => {
    const before = amqp.count;
    for (let i = 0; i < 3; i++) {
      const t = await talk(pacs.address, LOCAL.amqp);
      expect(t.received).toBe('');
      expect(t.closedByPeer).toBe(true);
    }
    expect(amqp.count - before).toBe(0);
  });

  it('lets an allowed caller read the greeting and talk', async () => {
    const before = amqp.count;
    const t = await talk(his.address, LOCAL.amqp, {
      send: PUBLISH,
      until: (g) => g.includes(PUBLISH),
    });
    expect(t.received).toBe(`${GREETING}${PUBLISH}`);
    expect(amqp.count - before).toBe(1);
  });

  it('keeps a client-first denied caller from the application too: no connection, no byte', async () => {
    const before = { count: mllp.count, bytes: mllp.bytesReceived };
    const t = await talk(pacs.address, LOCAL.mllp, { send: '\x0bMSH|^~\\&|PACS\x1c\r' });
    expect(t.received).toBe('');
    expect(t.closedByPeer).toBe(true);
    expect(mllp.count - before.count).toBe(0);
    expect(mllp.bytesReceived - before.bytes).toBe(0);
  });

  it('carries a half-close through the tunnel: the application still answers after the caller ends', async () => {
    const t = await talk(his.address, LOCAL.mllp, {
      send: 'MSH|^~\\&|HIS',
      halfClose: true,
      until: (g) => g.endsWith('bye'),
    });
    expect(t.received).toBe('MSH|^~\\&|HISbye');
  });

  it('keeps a quiet tunnel open: no HTTP timeout (the mesh request timeout, a stream idle timer) ends it', async () => {
    const socket = netConnect({ host: his.address, port: LOCAL.amqp });
    try {
      let got = '';
      socket.on('data', (d: Buffer) => (got += d.toString()));
      await waitFor(async () => got === GREETING, { what: 'the greeting' });
      await new Promise((r) => setTimeout(r, 5_000));
      socket.write(PUBLISH);
      await waitFor(async () => got === `${GREETING}${PUBLISH}`, { what: 'the echo after 5 s of quiet' });
    } finally {
      socket.destroy();
    }
  }, 30_000);

  it('opens only the ports a rule names: HIS may publish but not use the HTTP port', async () => {
    expect((await httpRequest(`http://${his.address}:${LOCAL.http}/queues`)).status).toBe(403);
    expect((await httpRequest(`http://${lis.address}:${LOCAL.http}/queues`)).status).toBe(200);
  });

  it('opens only the ports a rule names: LIS may use the HTTP port but gets nothing from AMQP', async () => {
    const before = amqp.count;
    const t = await talk(lis.address, LOCAL.amqp, { send: PUBLISH });
    expect(t.received).toBe('');
    expect(t.closedByPeer).toBe(true);
    expect(amqp.count - before).toBe(0);
  });

  it('audits every tunnel with the caller, the port, the decision, the bytes and the duration', async () => {
    const allowed = await waitFor(
      async () =>
        (await auditLines()).find(
          (l) =>
            l.port === 'amqp' && l.event === 'DownstreamEnd' && Number(l.bytes_received) === PUBLISH.length,
        ),
      { what: 'the final audit line of an allowed amqp tunnel' },
    );
    expect(allowed).toMatchObject({
      source: `spiffe://hospital.local/ns/${NS}/sa/his`,
      destination: `spiffe://hospital.local/ns/${NS}/sa/mq`,
    });
    expect(allowed.authz).toBe('allowed');
    expect(Number(allowed.bytes_sent)).toBeGreaterThanOrEqual(GREETING.length + PUBLISH.length);
    expect(Number(allowed.duration_ms)).toBeGreaterThanOrEqual(0);
    expect(Date.parse(String(allowed.time))).not.toBeNaN();
    const denied = (await auditLines()).filter((l) => l.port && l.authz === 'denied');
    expect(denied.length).toBeGreaterThanOrEqual(4);
    for (const l of denied) {
      expect([
        `spiffe://hospital.local/ns/${NS}/sa/pacs`,
        `spiffe://hospital.local/ns/${NS}/sa/lis`,
      ]).toContain(l.source);
      expect(String(l.status)).toBe('403');
      // What it was sent is the 403's own body, never the application's.
      expect(Number(l.bytes_received)).toBe(0);
    }
    // No line without who called and what was decided.
    for (const l of (await auditLines()).filter((l) => !('method' in l))) {
      expect(l.source, JSON.stringify(l)).toMatch(/^spiffe:\/\//);
      expect(['allowed', 'denied'], JSON.stringify(l)).toContain(l.authz);
      expect(['amqp', 'mllp'], JSON.stringify(l)).toContain(l.port);
    }
  });

  it('never had an update rejected by a sidecar', async () => {
    await expectNoRejectedUpdates(envoys);
  });
});
