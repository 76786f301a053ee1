// Imaging events on a real three-broker Kafka (KRaft, RF=3) through real Envoy sidecars under STRICT
// mutual TLS. PACS produces and RIS consumes through their sidecars; the brokers replicate and hold
// their KRaft quorum through their own sidecars too (a self-upstream on the per-instance ports), so
// no Kafka byte between two parties crosses loopback unencrypted. A caller without an AccessPolicy
// (intruder) reaches no broker.
//
// How brokers and clients are addressed in tests: test/helpers/kafka-mesh.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka as KafkaClient, logLevel, Partitioners } from 'kafkajs';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import { describeWithKafka, startKafka, type Kafka } from '../helpers/brokers.ts';
import { dumpLogsOnFailure, type EnvoyHandle } from '../helpers/envoy.ts';
import {
  BOOTSTRAP,
  BROKER_BASE,
  createTopic,
  kafkaCallersPolicy,
  kafkaClientManifest,
  kafkaServiceManifest,
  meshedKafka,
  meshSockets,
  STRICT_MESH,
  subscribeFromStart,
} from '../helpers/kafka-mesh.ts';
import { waitFor } from '../helpers/wait.ts';
import { applyYaml, startSidecar } from '../helpers/mesh.ts';
import { loopbackAddress } from '../helpers/ports.ts';

const brokers = [0, 1, 2].map((k) => ({ name: `kafka-${k}`, address: loopbackAddress() }));
const [pacs, ris, intruder] = ['pacs', 'ris', 'intruder'].map((s) => ({
  name: `${s}-1`,
  address: loopbackAddress(),
})) as [
  { name: string; address: string },
  { name: string; address: string },
  { name: string; address: string },
];

const manifests = [
  STRICT_MESH,
  kafkaServiceManifest(brokers),
  kafkaClientManifest('pacs', pacs.address),
  kafkaClientManifest('ris', ris.address),
  kafkaClientManifest('intruder', intruder.address),
  kafkaCallersPolicy(['pacs', 'ris']),
].join('---\n');

const kafkaClient = (name: string, appAddress: string) =>
  new KafkaClient({
    clientId: name,
    brokers: [`${appAddress}:${BOOTSTRAP}`],
    socketFactory: meshSockets(appAddress, (socket) => socket.setKeepAlive(true)),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 5_000,
    retry: { retries: 8 },
  });

/** Bytes a Kafka ApiVersions v0 request gets back on host:port before the connection ends (or 5 s). */
function apiVersionsAnswer(host: string, port: number): Promise<number> {
  const header = Buffer.from([0, 18, 0, 0, 0, 0, 0, 1, 0, 1, 0x78]);
  const size = Buffer.alloc(4);
  size.writeInt32BE(header.length);
  return new Promise((resolve) => {
    let received = 0;
    const socket = connect({ host, port }, () => socket.write(Buffer.concat([size, header])));
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(received);
    };
    const timer = setTimeout(done, 5_000);
    socket.on('data', (d: Buffer) => {
      received += d.length;
      if (received >= 4) done();
    });
    socket.on('error', done);
    socket.on('close', done);
  });
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `study-${String(i).padStart(5, '0')}`);

describeWithKafka(
  'PACS produces imaging events to a 3-broker Kafka and RIS consumes them, all through sidecars under STRICT mTLS',
  () => {
    let cp: RunningControlPlane;
    let kafka: Kafka;
    const envoys: EnvoyHandle[] = [];
    const hostsDir = mkdtempSync(join(tmpdir(), 'clinimesh-kafka-hosts-'));
    const sidecarOf = (name: string) => envoys.find((e) => e.name === name)!;

    beforeAll(async () => {
      cp = await startControlPlane({
        trustDomain: 'hospital.local',
        xdsPort: 0,
        xdsRestPort: 0,
        adminPort: 0,
      });
      await applyYaml(cp, manifests);
      for (const b of brokers) envoys.push(await startSidecar(cp, 'kafka', b.name));
      for (const c of [pacs, ris, intruder])
        envoys.push(await startSidecar(cp, c.name.replace(/-1$/, ''), c.name));
      kafka = await startKafka(meshedKafka(brokers, hostsDir));
    }, 300_000);

    afterEach(dumpLogsOnFailure(() => envoys));
    afterEach((ctx) => {
      if (ctx.task.result?.state === 'fail') console.error(`--- Kafka log ---\n${kafka?.logTail(60)}`);
    });
    afterAll(async () => {
      await kafka?.stop();
      await Promise.all(envoys.map((e) => e.stop()));
      await cp?.stop();
      rmSync(hostsDir, { recursive: true, force: true });
    });

    it('carries 1,000 idempotent, acks=all imaging events from PACS to RIS over 3 replicas, each once', async () => {
      const topic = 'imaging.events';
      const admin = kafkaClient('pacs-admin', pacs.address).admin();
      await admin.connect();
      try {
        const partitions = await createTopic(admin, topic);
        expect(partitions.every((p) => p.replicas.length === 3)).toBe(true);
      } finally {
        await admin.disconnect();
      }

      const producer = kafkaClient('pacs', pacs.address).producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      const sent = ids(1_000);
      await producer.connect();
      try {
        for (let i = 0; i < sent.length; i += 100)
          await producer.send({
            topic,
            acks: -1,
            messages: sent.slice(i, i + 100).map((id) => ({ key: id, value: id })),
          });
      } finally {
        await producer.disconnect();
      }

      const consumer = kafkaClient('ris', ris.address).consumer({ groupId: 'ris-worklist' });
      const seen: string[] = [];
      try {
        await consumer.connect();
        await subscribeFromStart(consumer, topic);
        await consumer.run({
          eachMessage: async ({ message }) => {
            seen.push(message.value?.toString() ?? '');
          },
        });
        await waitFor(async () => seen.length >= sent.length, {
          what: 'RIS to consume 1,000 events',
          timeoutMs: 60_000,
        });
      } finally {
        await consumer.disconnect();
      }
      expect(seen.length).toBe(1_000);
      expect([...new Set(seen)].sort()).toEqual(sent);

      // Every broker was reached by PACS on its own listener (one per broker), not only at bootstrap.
      const pacsStats = await sidecarOf(pacs.name).stats(
        '^cluster\\.outbound\\|kafka#[0-2]\\|kafka\\.clinical\\.upstream_cx_total$',
      );
      expect(Object.values(pacsStats).filter((n) => n > 0)).toHaveLength(3);
    });

    it('replicates and holds the KRaft quorum through the mesh: each broker reaches its peers through its sidecar', async () => {
      for (const b of brokers) {
        const stats = await sidecarOf(b.name).stats(
          '^cluster\\.outbound\\|(kafka|controller)#[0-2]\\|kafka\\.clinical\\.upstream_cx_total$',
        );
        const peers = brokers.filter((p) => p !== b).map((p) => Number(p.name.slice(-1)));
        // Replica fetches to the other brokers' CLIENT listeners, votes and metadata to the controllers.
        for (const k of peers)
          expect(stats[`cluster.outbound|kafka#${k}|kafka.clinical.upstream_cx_total`]).toBeGreaterThan(0);
        expect(
          peers.some(
            (k) => (stats[`cluster.outbound|controller#${k}|kafka.clinical.upstream_cx_total`] ?? 0) > 0,
          ),
        ).toBe(true);
      }
    });

    it('lets a caller without an AccessPolicy (intruder) reach no broker', async () => {
      const admin = kafkaClient('intruder', intruder.address).admin();
      const outcome = await admin.connect().then(
        async () => {
          const topics = await admin.listTopics();
          return `listed ${topics.length} topics`;
        },
        (err: Error) => `refused: ${err.name}`,
      );
      await admin.disconnect().catch(() => undefined);
      expect(outcome).toMatch(/^refused/);
      // At each broker's own listener too: a Kafka ApiVersions request gets no byte back.
      for (let k = 0; k < 3; k++) expect(await apiVersionsAnswer(intruder.address, BROKER_BASE + k)).toBe(0);
      expect(await apiVersionsAnswer(pacs.address, BROKER_BASE)).toBeGreaterThan(0);
    });
  },
  { envoy: true },
);
