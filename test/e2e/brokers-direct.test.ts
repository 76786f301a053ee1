// The real brokers the broker suites use, without the mesh: a RabbitMQ and a one-node Kafka start on
// loopback with their own ports and data dirs, carry messages with real npm clients, and stop by PID.
import amqp from 'amqplib';
import { Kafka as KafkaClient, logLevel, Partitioners } from 'kafkajs';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { TestContext } from 'vitest';
import {
  describeWithKafka,
  describeWithRabbitMq,
  startKafka,
  startRabbitMq,
  type Kafka,
  type RabbitMq,
} from '../helpers/brokers.ts';
import { createTopic } from '../helpers/kafka-mesh.ts';
import { waitFor } from '../helpers/wait.ts';

function printOnFailure(tail: () => string | undefined) {
  return (ctx: Pick<TestContext, 'task'>): void => {
    if (ctx.task.result?.state === 'fail') console.error(`--- ${ctx.task.name}: broker log ---\n${tail()}`);
  };
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `adt-${i}`);

describeWithRabbitMq('RabbitMQ on loopback', () => {
  let rabbit: RabbitMq;

  beforeAll(async () => {
    rabbit = await startRabbitMq();
  });
  afterEach(printOnFailure(() => rabbit?.logTail()));
  afterAll(async () => {
    await rabbit?.stop();
  });

  it('confirms 200 persistent messages and delivers each once to a manual-ack consumer', async () => {
    const conn = await amqp.connect(rabbit.url);
    try {
      const pub = await conn.createConfirmChannel();
      const queue = 'adt.direct';
      await pub.assertQueue(queue, { durable: true });
      for (const id of ids(200)) pub.sendToQueue(queue, Buffer.from(id), { persistent: true, messageId: id });
      await pub.waitForConfirms();

      const sub = await conn.createChannel();
      await sub.prefetch(50);
      const seen: string[] = [];
      await new Promise<void>((resolve) => {
        void sub.consume(
          queue,
          (m) => {
            if (!m) return;
            seen.push(m.content.toString());
            sub.ack(m);
            if (seen.length === 200) resolve();
          },
          { noAck: false },
        );
      });
      expect(new Set(seen).size).toBe(200);
      expect(seen.sort()).toEqual(ids(200).sort());
      // The broker logs asynchronously: its record of the connection arrives a moment later.
      await waitFor(async () => rabbit.acceptedConnections().length >= 1, {
        what: 'the broker log to record the AMQP connection',
      });
    } finally {
      await conn.close();
    }
  });

  it('answers rabbitmqctl on its own node name and epmd port', () => {
    expect(rabbit.ctl(['list_queues', 'name'])).toContain('adt.direct');
  });
});

describeWithKafka('Kafka (KRaft, one node) on loopback', () => {
  let kafka: Kafka;

  beforeAll(async () => {
    kafka = await startKafka({ nodes: 1 });
  });
  afterEach(printOnFailure(() => kafka?.logTail()));
  afterAll(async () => {
    await kafka?.stop();
  });

  it('delivers 200 messages from an idempotent acks=all producer to a consumer group, each once', async () => {
    const client = new KafkaClient({
      clientId: 'smoke',
      brokers: kafka.bootstrapServers,
      logLevel: logLevel.NOTHING,
    });
    const admin = client.admin();
    await admin.connect();
    await createTopic(admin, 'imaging.events', 3, 1);
    await admin.disconnect();

    const producer = client.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    await producer.send({
      topic: 'imaging.events',
      acks: -1,
      messages: ids(200).map((id) => ({ key: id, value: id })),
    });
    await producer.disconnect();

    const consumer = client.consumer({ groupId: 'smoke' });
    const seen: string[] = [];
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: 'imaging.events', fromBeginning: true });
      await new Promise<void>((resolve) => {
        void consumer.run({
          eachMessage: async ({ message }) => {
            seen.push(message.value?.toString() ?? '');
            if (seen.length === 200) resolve();
          },
        });
      });
    } finally {
      await consumer.disconnect();
    }
    expect(new Set(seen).size).toBe(200);
    expect(seen.sort()).toEqual(ids(200).sort());
  });
});
