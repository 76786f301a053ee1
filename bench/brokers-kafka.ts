// The Kafka case of `npm run bench:brokers`: a real 3-broker KRaft Kafka (RF=3), a control plane in
// this process and real Envoy sidecars for the brokers, PACS (producer) and RIS (consumer), each
// bootstrapped by its node agent, under STRICT mTLS. Each broker has two client listeners on the same
// cluster: CLIENT, advertised as `kafka-k.clinical.mesh:29092+k` (reached through the caller's
// per-instance mesh listeners; replication and the quorum go through the mesh too), and DIRECT,
// advertised at the broker's own address (the direct path). Producer: idempotent, acks=all, one
// request in flight, batches of 100 (paced: 10 every 20 ms); consumer: one group member.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka as KafkaClient, logLevel, Partitioners } from 'kafkajs';
import { startControlPlane } from '../src/main.ts';
import { kafkaInstall } from '../test/helpers/broker-install.ts';
import { startKafka } from '../test/helpers/brokers.ts';
import {
  BOOTSTRAP,
  BROKER_APP,
  BROKER_BASE,
  brokerHost,
  CONTROLLER_APP,
  createTopic,
  kafkaCallersPolicy,
  kafkaClientManifest,
  kafkaServiceManifest,
  meshedKafka,
  meshSockets,
  type Pod,
  STRICT_MESH,
  subscribeFromStart,
} from '../test/helpers/kafka-mesh.ts';
import { applyYaml, instances, startSidecar, type Sidecar } from '../test/helpers/mesh.ts';
import type { BrokerBench, BrokerCase, BrokerPath, LoadPlan, LoadResult } from './broker-case.ts';

/** A second client listener on each broker, advertised at its own address: the direct path. */
const DIRECT = 9094;

function manifests(brokers: readonly Pod[], pacs: string, ris: string): string {
  return [
    STRICT_MESH,
    kafkaServiceManifest(brokers),
    kafkaClientManifest('pacs', pacs),
    kafkaClientManifest('ris', ris),
    kafkaCallersPolicy(['pacs', 'ris']),
  ].join('---\n');
}

function kafkaPath(producerAt: string, consumerAt: string, appAddress?: [string, string]): BrokerPath {
  let round = 0;
  const clientOf = (id: string, bootstrap: string, app?: string) =>
    new KafkaClient({
      clientId: id,
      brokers: [bootstrap],
      logLevel: logLevel.NOTHING,
      ...(app && { socketFactory: meshSockets(app) }),
    });
  return {
    run: async (plan: LoadPlan): Promise<LoadResult> => {
      const topic = `bench.${process.pid}.${++round}.${Math.random().toString(36).slice(2, 8)}`;
      const pub = clientOf('pacs', producerAt, appAddress?.[0]);
      const sub = clientOf('ris', consumerAt, appAddress?.[1]);
      const admin = pub.admin();
      await admin.connect();
      await createTopic(admin, topic);
      await admin.disconnect();
      const latencies: number[] = [];
      const consumer = sub.consumer({ groupId: topic, maxWaitTimeInMs: 20 });
      const producer = pub.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      try {
        let done: () => void = () => {};
        const all = new Promise<void>((r) => (done = r));
        let joined: () => void = () => {};
        const join = new Promise<void>((r) => (joined = r));
        consumer.on(consumer.events.GROUP_JOIN, () => joined());
        await consumer.connect();
        await subscribeFromStart(consumer, topic);
        await consumer.run({
          eachMessage: async ({ message }) => {
            latencies.push(performance.now() - (message.value?.readDoubleLE(0) ?? 0));
            if (latencies.length === plan.messages) done();
          },
        });
        await join;
        await producer.connect();
        const batch = plan.ratePerSec ? 10 : 100;
        const t0 = performance.now();
        for (let i = 0; i < plan.messages; i += batch) {
          if (plan.ratePerSec) {
            const wait = t0 + (i * 1000) / plan.ratePerSec - performance.now();
            if (wait > 1) await sleep(wait);
          }
          const messages = Array.from({ length: Math.min(batch, plan.messages - i) }, () => {
            const value = Buffer.alloc(plan.bytes, 0x41);
            value.writeDoubleLE(performance.now(), 0);
            return { value };
          });
          await producer.send({ topic, acks: -1, messages });
        }
        await all;
        return { messages: plan.messages, seconds: (performance.now() - t0) / 1000, latenciesMs: latencies };
      } finally {
        await Promise.all([producer.disconnect().catch(() => {}), consumer.disconnect().catch(() => {})]);
      }
    },
  };
}

export const kafkaCase: BrokerCase = {
  name: 'kafka',
  start: async (): Promise<BrokerBench> => {
    const addresses = instances('bench', 5).map((i) => i.address);
    const [pacs, ris] = addresses.slice(3) as [string, string];
    const brokers = addresses.slice(0, 3).map((address, k) => ({ name: `kafka-${k}`, address }));
    const hostsDir = mkdtempSync(join(tmpdir(), 'clinimesh-bench-kafka-'));
    const sidecars: Sidecar[] = [];
    const cp = await startControlPlane({
      trustDomain: 'hospital.local',
      xdsPort: 0,
      xdsRestPort: 0,
      adminPort: 0,
    });
    let stopKafka = async () => {};
    const stop = async () => {
      await stopKafka();
      await Promise.all(sidecars.map((s) => s.stop()));
      await cp.stop();
      rmSync(hostsDir, { recursive: true, force: true });
    };
    try {
      await applyYaml(cp, manifests(brokers, pacs, ris));
      for (const b of brokers) sidecars.push(await startSidecar(cp, 'kafka', b.name));
      for (const svc of ['pacs', 'ris']) sidecars.push(await startSidecar(cp, svc, `${svc}-1`));
      const kafka = await startKafka(
        meshedKafka(brokers, hostsDir, (b, k) => ({
          advertisedListeners: `CLIENT://${brokerHost(k)}:${BROKER_BASE + k},DIRECT://${b.address}:${DIRECT}`,
          properties: {
            listeners: `CLIENT://${b.address}:${BROKER_APP},CONTROLLER://${b.address}:${CONTROLLER_APP},DIRECT://${b.address}:${DIRECT}`,
            'listener.security.protocol.map': 'CLIENT:PLAINTEXT,CONTROLLER:PLAINTEXT,DIRECT:PLAINTEXT',
          },
        })),
      );
      stopKafka = () => kafka.stop();
    } catch (err) {
      await stop();
      throw err;
    }
    return {
      broker: `Kafka ${kafkaInstall().version} (KRaft, 3 brokers, RF=3)`,
      notes:
        'idempotent producer, acks=all, one request in flight, batches of 100 (paced: 10 per 20 ms), one consumer; ' +
        'mesh: PACS sidecar → per-broker listener → broker sidecar (HTTP/2 CONNECT over mTLS), replication and quorum through the brokers’ sidecars in both paths; direct: a second listener on each broker',
      direct: kafkaPath(`${brokers[0]!.address}:${DIRECT}`, `${brokers[1]!.address}:${DIRECT}`),
      mesh: kafkaPath(`${pacs}:${BOOTSTRAP}`, `${ris}:${BOOTSTRAP}`, [pacs, ris]),
      stop,
    };
  },
};
