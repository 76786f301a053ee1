// AMQP clients for the RabbitMQ suites, shaped for exactly-once accounting: a publisher that sends
// persistent messages on a confirm channel and counts what the broker confirmed, and a consumer with
// manual acks and a prefetch that counts every delivery by message id (duplicates and redeliveries
// included). Neither reconnects: a connection the mesh drops is recorded, never papered over.
import amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { setTimeout as sleep } from 'node:timers/promises';

/** Why a connection ended, when it ended without our close(). */
export interface Dropped {
  readonly at: number;
  readonly reason: string;
}

interface Tracked {
  readonly conn: ChannelModel;
  dropped: Dropped | undefined;
  closing: boolean;
}

async function open(url: string, name: string): Promise<Tracked> {
  const conn = await amqp.connect(url, { clientProperties: { connection_name: name } });
  const t: Tracked = { conn, dropped: undefined, closing: false };
  const record = (reason: string) => {
    if (!t.closing && !t.dropped) t.dropped = { at: Date.now(), reason };
  };
  conn.on('error', (err: Error) => record(err.message));
  conn.on('close', (err?: Error) => record(err?.message ?? 'closed'));
  return t;
}

export interface Publisher {
  /** Messages the broker confirmed (ack) so far. */
  readonly confirmed: number;
  /** Messages the broker nacked. */
  readonly nacked: number;
  readonly dropped: Dropped | undefined;
  /** Publishes `ids` as persistent messages (id = messageId = body) and waits for their confirms. */
  publish(ids: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

export async function startPublisher(url: string, queue: string, name = 'publisher'): Promise<Publisher> {
  const t = await open(url, name);
  const channel: ConfirmChannel = await t.conn.createConfirmChannel();
  await channel.assertQueue(queue, { durable: true });
  let confirmed = 0;
  let nacked = 0;
  return {
    get confirmed() {
      return confirmed;
    },
    get nacked() {
      return nacked;
    },
    get dropped() {
      return t.dropped;
    },
    publish: async (ids) => {
      const confirms = ids.map(
        (id) =>
          new Promise<void>((resolve, reject) => {
            channel.sendToQueue(
              queue,
              Buffer.from(id),
              { persistent: true, messageId: id },
              (err: unknown) => {
                if (err) {
                  nacked++;
                  reject(err instanceof Error ? err : new Error(`${id}: nacked`));
                } else {
                  confirmed++;
                  resolve();
                }
              },
            );
          }),
      );
      await Promise.all(confirms);
    },
    close: async () => {
      t.closing = true;
      await t.conn.close().catch(() => {});
    },
  };
}

export interface Consumer {
  /** Deliveries per message id: 1 everywhere means exactly once. */
  readonly seen: ReadonlyMap<string, number>;
  readonly deliveries: number;
  /** Deliveries the broker flagged as redelivered (an earlier delivery was never acked). */
  readonly redelivered: number;
  readonly dropped: Dropped | undefined;
  /** Resolves once `n` distinct ids arrived; rejects if the connection drops first. */
  waitForIds(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startConsumer(
  url: string,
  queue: string,
  o: { name?: string; prefetch?: number } = {},
): Promise<Consumer> {
  const t = await open(url, o.name ?? 'consumer');
  const channel: Channel = await t.conn.createChannel();
  await channel.assertQueue(queue, { durable: true });
  await channel.prefetch(o.prefetch ?? 100);
  const seen = new Map<string, number>();
  let deliveries = 0;
  let redelivered = 0;
  await channel.consume(
    queue,
    (m: ConsumeMessage | null) => {
      if (!m) return; // the broker cancelled the consumer; the missing ids will show
      const id = typeof m.properties.messageId === 'string' ? m.properties.messageId : m.content.toString();
      deliveries++;
      if (m.fields.redelivered) redelivered++;
      seen.set(id, (seen.get(id) ?? 0) + 1);
      channel.ack(m);
    },
    { noAck: false },
  );
  return {
    seen,
    get deliveries() {
      return deliveries;
    },
    get redelivered() {
      return redelivered;
    },
    get dropped() {
      return t.dropped;
    },
    waitForIds: async (n, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      while (seen.size < n) {
        if (t.dropped) throw new Error(`consumer connection dropped: ${t.dropped.reason}`);
        if (Date.now() > deadline)
          throw new Error(`timed out after ${timeoutMs} ms waiting for ${n} distinct ids; have ${seen.size}`);
        await sleep(50);
      }
    },
    close: async () => {
      t.closing = true;
      await t.conn.close().catch(() => {});
    },
  };
}

/** `adt-00000`…: ids that sort in publish order. */
export function messageIds(from: number, count: number, prefix = 'adt'): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${String(from + i).padStart(5, '0')}`);
}

/** Ids never delivered, and ids delivered more than once (with their counts). */
export function tally(expected: readonly string[], seen: ReadonlyMap<string, number>) {
  const lost = expected.filter((id) => !seen.has(id));
  const duplicated = [...seen].filter(([, n]) => n > 1);
  const wanted = new Set(expected);
  const unexpected = [...seen.keys()].filter((id) => !wanted.has(id));
  return { lost, duplicated, unexpected };
}
