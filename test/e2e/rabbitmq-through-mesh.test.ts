// Clinical messaging over AMQP through real Envoy sidecars under STRICT mutual TLS: HIS publishes ADT
// events to a real RabbitMQ (a `rabbitmq` Service with a TCP port named `amqp`), LIS consumes them,
// each through its own sidecar, and every message arrives once. Pharmacy has no AccessPolicy for the
// broker: its AMQP handshake fails. A client that skips the mesh and speaks plaintext to the broker's
// sidecar gets nothing either.
import { setTimeout as sleep } from 'node:timers/promises';
import amqp from 'amqplib';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import { messageIds, startConsumer, startPublisher, tally } from '../helpers/amqp.ts';
import { describeWithRabbitMq, startRabbitMq, type RabbitMq } from '../helpers/brokers.ts';
import { dumpLogsOnFailure, type EnvoyHandle } from '../helpers/envoy.ts';
import { waitFor } from '../helpers/wait.ts';
import { applyYaml, instances, meshManifest, NS, serviceManifest, startSidecar } from '../helpers/mesh.ts';

const [his, lis, pharmacy, rabbitmq] = instances('x', 4).map((i, n) => ({
  ...i,
  name: `${['his', 'lis', 'pharmacy', 'rabbitmq'][n]}-1`,
})) as [
  { name: string; address: string },
  { name: string; address: string },
  { name: string; address: string },
  { name: string; address: string },
];

const AMQP_APP_PORT = 5672; // the broker, behind its sidecar, on its own pod address
const AMQP_MESH_PORT = 15672; // the broker sidecar's inbound (mTLS) port
const LOCAL_AMQP = 5672; // where each client's sidecar offers the broker on the client's address
const toBroker = `{ service: rabbitmq, port: amqp, localPort: ${LOCAL_AMQP} }`;
const client = (name: string, address: string) =>
  serviceManifest({
    name,
    ports: ['{ name: http, port: 15001, targetPort: 8080, protocol: http }'],
    instances: [{ name: `${name}-1`, address }],
    upstreams: [toBroker],
  });

const manifests = [
  meshManifest.replace(
    'trustDomain: hospital.local',
    'trustDomain: hospital.local\n  mtls: { mode: STRICT }',
  ),
  serviceManifest({
    name: 'rabbitmq',
    ports: [`{ name: amqp, port: ${AMQP_MESH_PORT}, targetPort: ${AMQP_APP_PORT}, protocol: tcp }`],
    instances: [rabbitmq],
  }),
  client('his', his.address),
  client('lis', lis.address),
  client('pharmacy', pharmacy.address),
  `apiVersion: clinimesh.io/v1alpha1
kind: AccessPolicy
metadata: { name: rabbitmq-clients, namespace: ${NS} }
spec:
  destination: rabbitmq
  rules: [{ from: [{ service: his }, { service: lis }], ports: [amqp] }]
`,
].join('---\n');

const viaSidecar = (address: string) => `amqp://guest:guest@${address}:${LOCAL_AMQP}`;

describeWithRabbitMq(
  'HIS publishes ADT events to RabbitMQ and LIS consumes them, through sidecars under STRICT mTLS',
  () => {
    let cp: RunningControlPlane;
    let broker: RabbitMq;
    const envoys: EnvoyHandle[] = [];
    const brokerSidecar = () => envoys.find((e) => e.name === rabbitmq.name)!;

    beforeAll(async () => {
      [cp, broker] = await Promise.all([
        startControlPlane({ trustDomain: 'hospital.local', xdsPort: 0, xdsRestPort: 0, adminPort: 0 }),
        startRabbitMq({ host: rabbitmq.address, port: AMQP_APP_PORT, name: rabbitmq.name }),
      ]);
      await applyYaml(cp, manifests);
      for (const i of [rabbitmq, his, lis, pharmacy])
        envoys.push(await startSidecar(cp, i.name.replace(/-1$/, ''), i.name));
    });

    afterEach(dumpLogsOnFailure(() => envoys));
    afterEach((ctx) => {
      if (ctx.task.result?.state === 'fail') console.error(`--- RabbitMQ log ---\n${broker?.logTail(80)}`);
    });
    afterAll(async () => {
      await Promise.all(envoys.map((e) => e.stop()));
      await broker?.stop();
      await cp?.stop();
    });

    it('carries 1,000 confirmed, persistent ADT events from HIS to LIS, each exactly once', async () => {
      const queue = 'adt.events';
      const ids = messageIds(0, 1_000);
      const consumer = await startConsumer(viaSidecar(lis.address), queue, { name: 'lis' });
      const publisher = await startPublisher(viaSidecar(his.address), queue, 'his');
      try {
        for (let i = 0; i < ids.length; i += 100) await publisher.publish(ids.slice(i, i + 100));
        expect(publisher.confirmed).toBe(1_000);
        await consumer.waitForIds(1_000);
        const { lost, duplicated, unexpected } = tally(ids, consumer.seen);
        expect({ lost, duplicated, unexpected }).toEqual({ lost: [], duplicated: [], unexpected: [] });
        expect(consumer.redelivered).toBe(0);
        expect([publisher.dropped, consumer.dropped]).toEqual([undefined, undefined]);
      } finally {
        await Promise.all([publisher.close(), consumer.close()]);
      }
      // Both connections crossed the broker's sidecar as mutual TLS: its inbound listener completed
      // the handshakes and connected them to the broker.
      const stats = await brokerSidecar().stats(
        '^(cluster\\.inbound\\|amqp\\.upstream_cx_total|listener\\..*\\.ssl\\.handshake)$',
      );
      expect(stats['cluster.inbound|amqp.upstream_cx_total']).toBeGreaterThanOrEqual(2);
      expect(stats[`listener.${rabbitmq.address}_${AMQP_MESH_PORT}.ssl.handshake`]).toBeGreaterThanOrEqual(2);
    });

    it('fails the AMQP handshake of a caller without an AccessPolicy (pharmacy), before the broker sees it', async () => {
      const before = broker.acceptedConnections().length;
      const outcome = await amqp.connect(viaSidecar(pharmacy.address), { timeout: 5_000 }).then(
        async (conn) => {
          await conn.close();
          return 'connected';
        },
        (err: Error) => `refused: ${err.message}`,
      );
      expect(outcome).toMatch(/^refused/);
      // HIS, with a policy, still connects on the same path; its connection is also the barrier in the
      // broker's log: every connection pharmacy's attempt caused would be logged before it.
      const conn = await amqp.connect(viaSidecar(his.address));
      await conn.close();
      await waitFor(async () => broker.acceptedConnections().length > before, {
        what: "the broker's log to record HIS's connection",
      });
      await sleep(500);
      // The broker never saw pharmacy: the denial came before any connection to it.
      expect(broker.acceptedConnections().slice(before)).toHaveLength(1);
    });

    it('gives a plaintext AMQP client at the broker sidecar nothing (mTLS is required)', async () => {
      const outcome = await amqp
        .connect(`amqp://guest:guest@${rabbitmq.address}:${AMQP_MESH_PORT}`, { timeout: 5_000 })
        .then(
          async (conn) => {
            await conn.close();
            return 'connected';
          },
          (err: Error) => `refused: ${err.message}`,
        );
      expect(outcome).toMatch(/^refused/);
    });
  },
  { envoy: true },
);
