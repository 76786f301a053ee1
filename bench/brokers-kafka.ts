// The Kafka case of `npm run bench:brokers`: a real 3-broker KRaft Kafka (RF=3), a control plane in
// this process and real Envoy sidecars for the brokers, PACS (producer) and RIS (consumer), each
// bootstrapped by its node agent, under STRICT mTLS. Each broker has two client listeners on the same
// cluster: CLIENT, advertised as `kafka-k.clinical.mesh:29092+k` (reached through the caller's
// per-instance mesh listeners; replication and the quorum go through the mesh too), and DIRECT,
// advertised at the broker's own address (the direct path). Producer: idempotent, acks=all, one
// request in flight, batches of 100 (paced: 10 every 20 ms); consumer: one group member.
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka as KafkaClient, logLevel, Partitioners, type ISocketFactory } from 'kafkajs';
import { startControlPlane } from '../src/main.ts';
import { kafkaInstall } from '../test/helpers/broker-install.ts';
import { startKafka } from '../test/helpers/brokers.ts';
import {
  applyYaml,
  instances,
  NS,
  serviceManifest,
  startSidecar,
  type Sidecar,
} from '../test/helpers/mesh.ts';
import type { BrokerBench, BrokerCase, BrokerPath, LoadPlan, LoadResult } from './brokers.ts';

const APP = 9092;
const CONTROLLER = 9093;
const DIRECT = 9094;
const BASE = 29092;
const CBASE = 29192;
const BOOTSTRAP = 9092;
const hostOf = (k: number) => `kafka-${k}.${NS}.mesh`;

function manifests(brokers: readonly string[], pacs: string, ris: string): string {
  const client = (name: string, address: string) =>
    serviceManifest({
      name,
      ports: ['{ name: http, port: 15001, targetPort: 8080, protocol: http }'],
      instances: [{ name: `${name}-1`, address }],
      upstreams: [`{ service: kafka, port: kafka, localPort: ${BOOTSTRAP} }`],
    });
  return [
    `apiVersion: clinimesh.io/v1alpha1
kind: Mesh
metadata: { name: hospital }
spec: { trustDomain: hospital.local, mtls: { mode: STRICT } }
`,
    serviceManifest({
      name: 'kafka',
      ports: [
        `{ name: kafka, port: 19092, targetPort: ${APP}, protocol: tcp, instancePorts: { base: ${BASE}, count: 3 } }`,
        `{ name: controller, port: 19093, targetPort: ${CONTROLLER}, protocol: tcp, instancePorts: { base: ${CBASE}, count: 3 } }`,
      ],
      instances: brokers.map((address, k) => ({ name: `kafka-${k}`, address })),
      upstreams: [
        '{ service: kafka, port: kafka, localPort: 29090 }',
        '{ service: kafka, port: controller, localPort: 29190 }',
      ],
    }),
    client('pacs', pacs),
    client('ris', ris),
    `apiVersion: clinimesh.io/v1alpha1
kind: AccessPolicy
metadata: { name: kafka-callers, namespace: ${NS} }
spec:
  destination: kafka
  rules: [{ from: [{ service: pacs }, { service: ris }, { service: kafka }] }]
`,
  ].join('---\n');
}

/** Stands in for per-pod name resolution (see test/e2e/kafka-through-mesh.test.ts). */
const sockets =
  (appAddress: string): ISocketFactory =>
  ({ host, port, onConnect }) =>
    connect({ host: host.endsWith(`.${NS}.mesh`) ? appAddress : host, port }, onConnect);

function kafkaPath(producerAt: string, consumerAt: string, appAddress?: [string, string]): BrokerPath {
  let round = 0;
  const clientOf = (id: string, bootstrap: string, app?: string) =>
    new KafkaClient({
      clientId: id,
      brokers: [bootstrap],
      logLevel: logLevel.NOTHING,
      ...(app && { socketFactory: sockets(app) }),
    });
  return {
    run: async (plan: LoadPlan): Promise<LoadResult> => {
      const topic = `bench.${process.pid}.${++round}.${Math.random().toString(36).slice(2, 8)}`;
      const pub = clientOf('pacs', producerAt, appAddress?.[0]);
      const sub = clientOf('ris', consumerAt, appAddress?.[1]);
      const admin = pub.admin();
      await admin.connect();
      await admin.createTopics({
        topics: [{ topic, numPartitions: 3, replicationFactor: 3 }],
        waitForLeaders: false,
      });
      for (let i = 0; i < 600; i++) {
        const meta = await admin.fetchTopicMetadata({ topics: [topic] }).catch(() => undefined);
        const parts = meta?.topics[0]?.partitions ?? [];
        if (parts.length === 3 && parts.every((p) => p.leader >= 0)) break;
        await sleep(100);
      }
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
        // Topic metadata reaches each broker in its own time (BROKERS.md, pitfall 6).
        for (let i = 0; ; i++) {
          const subscribed = await consumer.subscribe({ topic, fromBeginning: true }).then(
            () => true,
            (err: Error & { retriable?: boolean }) => {
              if (!err.retriable || i >= 100) throw err;
              return false;
            },
          );
          if (subscribed) break;
          await sleep(100);
        }
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
    const brokers = addresses.slice(0, 3);
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
    };
    try {
      await applyYaml(cp, manifests(brokers, pacs, ris));
      for (const [k] of brokers.entries()) sidecars.push(await startSidecar(cp, 'kafka', `kafka-${k}`));
      for (const svc of ['pacs', 'ris']) sidecars.push(await startSidecar(cp, svc, `${svc}-1`));
      const kafka = await startKafka({
        nodes: 3,
        brokerListener: 'CLIENT',
        quorumVoters: brokers.map((_, k) => `${k + 1}@${hostOf(k)}:${CBASE + k}`).join(','),
        node: brokers.map((address, k) => {
          const hosts = join(sidecars[k]!.agent.sdsDir, '..', 'kafka.hosts');
          writeFileSync(hosts, `${address} ${brokers.map((_, j) => hostOf(j)).join(' ')}\n`);
          return {
            brokerHost: address,
            brokerPort: APP,
            controllerHost: address,
            controllerPort: CONTROLLER,
            advertisedListeners: `CLIENT://${hostOf(k)}:${BASE + k},DIRECT://${address}:${DIRECT}`,
            jvmArgs: [`-Djdk.net.hosts.file=${hosts}`],
            properties: {
              listeners: `CLIENT://${address}:${APP},CONTROLLER://${address}:${CONTROLLER},DIRECT://${address}:${DIRECT}`,
              'listener.security.protocol.map': 'CLIENT:PLAINTEXT,CONTROLLER:PLAINTEXT,DIRECT:PLAINTEXT',
            },
          };
        }),
        startTimeoutMs: 180_000,
      });
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
      direct: kafkaPath(`${brokers[0]}:${DIRECT}`, `${brokers[1]}:${DIRECT}`),
      mesh: kafkaPath(`${pacs}:${BOOTSTRAP}`, `${ris}:${BOOTSTRAP}`, [pacs, ris]),
      stop,
    };
  },
};
