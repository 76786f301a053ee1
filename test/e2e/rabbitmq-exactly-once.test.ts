// 10,000 ADT events from HIS to LIS through RabbitMQ and the mesh, with publisher confirms, persistent
// messages and manual consumer acks, while the mesh changes under them: the control plane is killed
// and started again on its data dir, the broker Service is re-applied with a second broker node and
// its first instance relabelled, and every workload certificate rotates (45 s lifetimes: short, yet
// longer than a slow control-plane restart on a loaded machine). The AMQP connections opened at the
// start must carry everything: the clients never reconnect, so a dropped connection fails the test,
// and the consumer counts every delivery by message id: 0 lost, 0 doubled.
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp from 'amqplib';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { readCertificate } from '../../src/agent/secret-files.ts';
import { WORKLOAD_SECRET } from '../../src/xds/generate/secrets.ts';
import { adminRequest } from '../helpers/admin.ts';
import {
  messageIds,
  startConsumer,
  startPublisher,
  tally,
  type Consumer,
  type Publisher,
} from '../helpers/amqp.ts';
import { describeWithRabbitMq, startRabbitMq, type RabbitMq } from '../helpers/brokers.ts';
import { dumpLogsOnFailure } from '../helpers/envoy.ts';
import { instances, NS, serviceManifest, type TestInstance } from '../helpers/mesh.ts';
import { startHaSidecar, startReplica, type HaSidecar, type Replica } from '../helpers/replicas.ts';
import { waitFor } from '../helpers/wait.ts';

const TOTAL = 10_000;
const [his, lis, rabbit1, rabbit2] = instances('x', 4).map((i, n) => ({
  ...i,
  name: `${['his', 'lis', 'rabbitmq', 'rabbitmq'][n]}-${n === 3 ? 2 : 1}`,
})) as [TestInstance, TestInstance, TestInstance, TestInstance];

const AMQP = 5672;
const toBroker = `{ service: rabbitmq, port: amqp, localPort: ${AMQP} }`;
const amqpPort = `{ name: amqp, port: 15672, targetPort: ${AMQP}, protocol: tcp }`;
const client = (name: string, i: TestInstance) =>
  serviceManifest({
    name,
    ports: ['{ name: http, port: 15001, targetPort: 8080, protocol: http }'],
    instances: [i],
    upstreams: [toBroker],
  });

/** The broker Service: one node at first; later a second node joins and the first is relabelled. */
function brokerService(scaled: boolean): string {
  if (!scaled) return serviceManifest({ name: 'rabbitmq', ports: [amqpPort], instances: [rabbit1] });
  const node = (i: TestInstance, zone: string) =>
    `{ name: ${i.name}, address: ${i.address}, appAddress: ${i.address}, locality: { region: eu-west, zone: ${zone} }, meta: { broker: "3.10" } }`;
  return `apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: rabbitmq, namespace: ${NS} }
spec:
  ports:
    - ${amqpPort}
  instances:
    - ${node(rabbit1, 'a')}
    - ${node(rabbit2, 'b')}
`;
}

const manifests = [
  `apiVersion: clinimesh.io/v1alpha1
kind: Mesh
metadata: { name: hospital }
spec: { trustDomain: hospital.local, mtls: { mode: STRICT } }
`,
  brokerService(false),
  client('his', his),
  client('lis', lis),
  `apiVersion: clinimesh.io/v1alpha1
kind: AccessPolicy
metadata: { name: rabbitmq-clients, namespace: ${NS} }
spec:
  destination: rabbitmq
  rules: [{ from: [{ service: his }, { service: lis }], ports: [amqp] }]
`,
].join('---\n');

const viaSidecar = (i: TestInstance) => `amqp://guest:guest@${i.address}:${AMQP}`;

async function apply(cp: Replica, yaml: string): Promise<void> {
  const res = await adminRequest(cp, 'POST', '/v1/apply', { body: yaml });
  if (res.status !== 200) throw new Error(`apply: HTTP ${res.status} ${res.text}`);
}

/** The serial of the workload certificate a sidecar's agent holds now. */
function workloadSerial(s: HaSidecar): string {
  const held = readCertificate(s.agent.sdsDir, WORKLOAD_SECRET);
  if (!held) throw new Error(`${s.name}: no workload certificate file`);
  return new X509Certificate(held.certChainPem).serialNumber;
}

describeWithRabbitMq(
  'exactly-once ADT delivery through RabbitMQ while the mesh changes',
  () => {
    let work: string;
    let cp: Replica;
    let brokers: RabbitMq[] = [];
    const sidecars: HaSidecar[] = [];
    let publisher: Publisher | undefined;
    let consumer: Consumer | undefined;
    const cpArgs = [
      '--trust-domain',
      'hospital.local',
      '--workload-cert-ttl',
      '45s',
      '--agent-credential-ttl',
      '45s',
    ];
    const sidecar = (i: TestInstance) => sidecars.find((s) => s.name === i.name)!;

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'clinimesh-rabbitmq-eo-'));
      [cp, ...brokers] = await Promise.all([
        startReplica({ name: 'cp', args: cpArgs, dataDir: join(work, 'cp') }),
        startRabbitMq({ host: rabbit1.address, port: AMQP, name: rabbit1.name }),
        startRabbitMq({ host: rabbit2.address, port: AMQP, name: rabbit2.name }),
      ]);
      await apply(cp, manifests);
      for (const [svc, i] of [
        ['rabbitmq', rabbit1],
        ['his', his],
        ['lis', lis],
      ] as const)
        sidecars.push(await startHaSidecar([cp], svc, i.name));
    }, 120_000);

    afterEach(dumpLogsOnFailure(() => sidecars));
    afterEach((ctx) => {
      if (ctx.task.result?.state !== 'fail') return;
      for (const b of brokers) console.error(`--- RabbitMQ ${b.nodename} log ---\n${b.logTail(60)}`);
      console.error(`--- control plane ---\n${cp?.output().slice(-3_000)}`);
    });
    afterAll(async () => {
      await Promise.all([publisher?.close(), consumer?.close()]);
      await Promise.all(sidecars.map((s) => s.stop()));
      await Promise.all(brokers.map((b) => b.stop()));
      await cp?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('delivers 10,000 confirmed messages exactly once across a control-plane restart, a broker endpoint change and certificate rotation', async () => {
      const queue = 'adt.exactly-once';
      const ids = messageIds(0, TOTAL);
      consumer = await startConsumer(viaSidecar(lis), queue, { name: 'lis', prefetch: 100 });
      publisher = await startPublisher(viaSidecar(his), queue, 'his');
      const pub = publisher;
      const sub = consumer;

      // Fast until 2,000, then a steady trickle while the mesh changes, then the rest at full speed.
      const flow = { phase: 'warmup' as 'warmup' | 'disrupting' | 'after' };
      let sent = 0;
      const publishing = (async () => {
        while (sent < TOTAL) {
          if (pub.dropped) throw new Error(`publisher connection dropped: ${pub.dropped.reason}`);
          const steady = flow.phase === 'disrupting';
          if ((flow.phase === 'warmup' && sent >= 2_000) || (steady && sent >= TOTAL - 1_000)) {
            await sleep(50);
            continue;
          }
          const batch = ids.slice(sent, sent + (steady ? 20 : 250));
          await pub.publish(batch);
          sent += batch.length;
          if (steady) await sleep(100);
        }
      })();
      publishing.catch(() => {});
      await waitFor(async () => sent >= 2_000 && sub.seen.size >= 1_000, {
        what: 'the first 2,000 messages to flow',
        timeoutMs: 30_000,
      });

      /** Runs one disruption and proves messages were confirmed and consumed while it happened. */
      const during = async (what: string, disrupt: () => Promise<void>) => {
        const before = { confirmed: pub.confirmed, consumed: sub.seen.size };
        const started = Date.now();
        await disrupt();
        // Some traffic after the change too, on the same connections.
        await waitFor(async () => pub.confirmed >= before.confirmed + 100, {
          what: `publishing to continue after ${what}`,
          timeoutMs: 20_000,
        });
        const after = { confirmed: pub.confirmed, consumed: sub.seen.size };
        console.info(
          `${what}: ${Date.now() - started} ms, ${after.confirmed - before.confirmed} confirmed, ${after.consumed - before.consumed} consumed meanwhile`,
        );
        expect(after.consumed, `${what}: LIS kept consuming`).toBeGreaterThan(before.consumed);
        expect([pub.dropped, sub.dropped], what).toEqual([undefined, undefined]);
      };
      flow.phase = 'disrupting';

      await during('control plane SIGKILLed and restarted on its data dir', async () => {
        const { host, xdsPort, xdsRestPort, dataDir } = cp;
        await cp.kill();
        await sleep(1_000); // down for a moment, as a crashed pod is
        cp = await startReplica({ name: 'cp', args: cpArgs, host, xdsPort, xdsRestPort, dataDir });
        for (const s of sidecars)
          await waitFor(
            async () =>
              (await s.stats('^control_plane\\.connected_state$'))['control_plane.connected_state'] === 1,
            { what: `${s.name} to reconnect to the restarted control plane`, timeoutMs: 30_000 },
          );
      });

      await during('broker Service re-applied: a second node joins, the first is relabelled', async () => {
        await apply(cp, brokerService(true));
        sidecars.push(await startHaSidecar([cp], 'rabbitmq', rabbit2.name));
        for (const s of [sidecar(his), sidecar(lis)])
          await waitFor(
            async () => {
              const clusters = await s.clusters();
              const toRabbit = clusters.find((c) => c.name.includes('rabbitmq'));
              return toRabbit?.hosts.length === 2 && toRabbit.hosts.every((h) => h.healthy);
            },
            { what: `${s.name} to see both broker nodes`, timeoutMs: 20_000 },
          );
        // A new connection after the change lands on either node and works.
        const fresh = await amqp.connect(viaSidecar(his));
        await fresh.close();
      });

      await during('every workload certificate rotated', async () => {
        const watched = [sidecar(his), sidecar(lis), sidecar(rabbit1)];
        const before = watched.map(workloadSerial);
        await waitFor(
          async () => {
            for (const [n, s] of watched.entries()) {
              if (workloadSerial(s) === before[n]) return false;
              const certs = await s.admin('/certs');
              if (!certs.includes(workloadSerial(s).toLowerCase())) return false;
            }
            return true;
          },
          { what: 'HIS, LIS and broker sidecars to serve renewed workload certificates', timeoutMs: 60_000 },
        );
      });

      flow.phase = 'after';
      await publishing;
      expect(pub.confirmed).toBe(TOTAL);
      expect(pub.nacked).toBe(0);
      await sub.waitForIds(TOTAL, 60_000);
      await sleep(1_000); // a late duplicate would arrive now
      const { lost, duplicated, unexpected } = tally(ids, sub.seen);
      console.info(
        `exactly-once: ${TOTAL} published and confirmed, ${sub.deliveries} deliveries, ${lost.length} lost, ${duplicated.length} duplicated, ${sub.redelivered} redelivered`,
      );
      expect({ lost: lost.length, duplicated: duplicated.length, unexpected: unexpected.length }).toEqual({
        lost: 0,
        duplicated: 0,
        unexpected: 0,
      });
      expect(sub.deliveries).toBe(TOTAL);
      expect(sub.redelivered).toBe(0);
      expect([pub.dropped, sub.dropped]).toEqual([undefined, undefined]);
      const depth = brokers[0]!.ctl(['list_queues', 'name', 'messages', '--no-table-headers', '-q']);
      expect(depth).toMatch(new RegExp(`^${queue.replace('.', '\\.')}\\s+0$`, 'm'));
    }, 240_000);
  },
  { envoy: true },
);
