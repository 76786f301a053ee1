// The RabbitMQ case of `npm run bench:brokers`: a real broker on its own loopback address, a control
// plane in this process, and real Envoy sidecars for the broker, HIS (publisher) and LIS (consumer),
// each bootstrapped by its node agent as in the e2e suites, under STRICT mTLS with an AccessPolicy.
// Direct: the clients connect to the broker's own port. Mesh: each connects to its sidecar.
// Every message is persistent, published on a confirm channel and acked by the consumer by hand.
import { setTimeout as sleep } from 'node:timers/promises';
import amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { startControlPlane } from '../src/main.ts';
import { rabbitMqInstall } from '../test/helpers/broker-install.ts';
import { startRabbitMq } from '../test/helpers/brokers.ts';
import {
  applyYaml,
  instances,
  NS,
  serviceManifest,
  startSidecar,
  type Sidecar,
} from '../test/helpers/mesh.ts';
import type { BrokerBench, BrokerCase, BrokerPath, LoadPlan, LoadResult } from './broker-case.ts';

const AMQP = 5672;

function manifests(his: string, lis: string, rabbitmq: string): string {
  const client = (name: string, address: string) =>
    serviceManifest({
      name,
      ports: ['{ name: http, port: 15001, targetPort: 8080, protocol: http }'],
      instances: [{ name: `${name}-1`, address }],
      upstreams: [`{ service: rabbitmq, port: amqp, localPort: ${AMQP} }`],
    });
  return [
    `apiVersion: clinimesh.io/v1alpha1
kind: Mesh
metadata: { name: hospital }
spec: { trustDomain: hospital.local, mtls: { mode: STRICT } }
`,
    serviceManifest({
      name: 'rabbitmq',
      ports: [`{ name: amqp, port: 15672, targetPort: ${AMQP}, protocol: tcp }`],
      instances: [{ name: 'rabbitmq-1', address: rabbitmq }],
    }),
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
}

/** A message whose first 8 bytes are its publish time (performance.now(), this process), padded to `bytes`. */
function stamped(bytes: number): Buffer {
  const buf = Buffer.alloc(Math.max(8, bytes), 0x41);
  buf.writeDoubleLE(performance.now(), 0);
  return buf;
}

/** Consumes `n` messages from `queue`, recording publish→consume latency; resolves at the last. */
async function consume(
  conn: ChannelModel,
  queue: string,
  n: number,
  latencies: number[],
): Promise<() => Promise<void>> {
  const channel: Channel = await conn.createChannel();
  await channel.assertQueue(queue, { durable: true });
  await channel.prefetch(500);
  let done: () => void = () => {};
  const all = new Promise<void>((resolve) => (done = resolve));
  await channel.consume(
    queue,
    (m: ConsumeMessage | null) => {
      if (!m) return;
      latencies.push(performance.now() - m.content.readDoubleLE(0));
      channel.ack(m);
      if (latencies.length === n) done();
    },
    { noAck: false },
  );
  return async () => {
    await all;
    await channel.deleteQueue(queue).catch(() => {});
    await channel.close().catch(() => {});
  };
}

/** Publishes per plan: at most `window` unconfirmed, paced to `ratePerSec` when given. */
async function publish(conn: ChannelModel, queue: string, plan: LoadPlan): Promise<void> {
  const channel: ConfirmChannel = await conn.createConfirmChannel();
  await channel.assertQueue(queue, { durable: true });
  let outstanding = 0;
  let failed: unknown;
  let wake: (() => void) | undefined;
  const settle = (err: unknown) => {
    outstanding--;
    if (err) failed ??= err;
    wake?.();
  };
  const start = performance.now();
  for (let i = 0; i < plan.messages; i++) {
    if (plan.ratePerSec) {
      const due = start + (i * 1000) / plan.ratePerSec;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
    }
    while (outstanding >= plan.window) await new Promise<void>((r) => (wake = r));
    if (failed) throw failed instanceof Error ? failed : new Error(String(failed));
    outstanding++;
    const ok = channel.sendToQueue(queue, stamped(plan.bytes), { persistent: true }, settle);
    if (!ok) await new Promise<void>((r) => channel.once('drain', () => r()));
  }
  await channel.waitForConfirms();
  await channel.close();
}

function amqpPath(publishUrl: string, consumeUrl: string): BrokerPath {
  let round = 0;
  return {
    run: async (plan: LoadPlan): Promise<LoadResult> => {
      const queue = `bench.${process.pid}.${++round}.${Math.random().toString(36).slice(2, 8)}`;
      const [pubConn, subConn] = await Promise.all([amqp.connect(publishUrl), amqp.connect(consumeUrl)]);
      try {
        const latencies: number[] = [];
        const finished = await consume(subConn, queue, plan.messages, latencies);
        const t0 = performance.now();
        await publish(pubConn, queue, plan);
        await finished();
        return { messages: plan.messages, seconds: (performance.now() - t0) / 1000, latenciesMs: latencies };
      } finally {
        await Promise.all([pubConn.close().catch(() => {}), subConn.close().catch(() => {})]);
      }
    },
  };
}

export const rabbitMqCase: BrokerCase = {
  name: 'rabbitmq',
  start: async (): Promise<BrokerBench> => {
    const [his, lis, rabbitmq] = instances('bench', 3).map((i) => i.address) as [string, string, string];
    const sidecars: Sidecar[] = [];
    const [cp, broker] = await Promise.all([
      startControlPlane({ trustDomain: 'hospital.local', xdsPort: 0, xdsRestPort: 0, adminPort: 0 }),
      startRabbitMq({ host: rabbitmq, port: AMQP, name: 'bench-rabbitmq' }),
    ]);
    const stop = async () => {
      await Promise.all(sidecars.map((s) => s.stop()));
      await broker.stop();
      await cp.stop();
    };
    try {
      await applyYaml(cp, manifests(his, lis, rabbitmq));
      for (const svc of ['rabbitmq', 'his', 'lis']) sidecars.push(await startSidecar(cp, svc, `${svc}-1`));
    } catch (err) {
      await stop();
      throw err;
    }
    const url = (address: string) => `amqp://guest:guest@${address}:${AMQP}`;
    return {
      broker: `RabbitMQ ${rabbitMqInstall().version}`,
      notes:
        'persistent messages on a durable classic queue, publisher confirms, manual consumer acks (prefetch 500); ' +
        'one publisher and one consumer connection; mesh: HIS sidecar → broker sidecar (HTTP/2 CONNECT tunnel over mTLS) → RabbitMQ, LIS likewise; Envoy --concurrency 1',
      direct: amqpPath(url(rabbitmq), url(rabbitmq)),
      mesh: amqpPath(url(his), url(lis)),
      stop,
    };
  },
};
