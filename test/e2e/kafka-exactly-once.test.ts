// 10,000 imaging events through a real 3-broker Kafka and the mesh, from an idempotent producer
// (acks=all, one request in flight) to a consumer group, while the mesh changes under them: the
// control plane is SIGKILLed and started again on its data dir, broker kafka-1's endpoint changes
// (its locality, an EDS update of its own per-instance cluster), and every workload certificate
// rotates (30 s lifetimes). The consumer counts every id: 0 lost, 0 duplicated. Every connection the
// clients open is counted too: a connection the mesh dropped would show as one closed before the end
// (after warm-up, where kafkajs may restart its consumer itself), and no change may add, modify or
// remove a listener or cluster on any sidecar (a modified listener drains its connections).
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka as KafkaClient, logLevel, Partitioners } from 'kafkajs';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { readCertificate } from '../../src/agent/secret-files.ts';
import { WORKLOAD_SECRET } from '../../src/xds/generate/secrets.ts';
import { adminRequest } from '../helpers/admin.ts';
import { describeWithKafka, startKafka, type Kafka } from '../helpers/brokers.ts';
import { dumpLogsOnFailure } from '../helpers/envoy.ts';
import {
  BOOTSTRAP,
  createTopic,
  kafkaCallersPolicy,
  kafkaClientManifest,
  kafkaServiceManifest,
  meshedKafka,
  meshSockets,
  STRICT_MESH,
  subscribeFromStart,
} from '../helpers/kafka-mesh.ts';
import { loopbackAddress } from '../helpers/ports.ts';
import { startHaSidecar, startReplica, type HaSidecar, type Replica } from '../helpers/replicas.ts';
import { waitFor } from '../helpers/wait.ts';

const TOTAL = 10_000;
const brokers = [0, 1, 2].map((k) => ({ name: `kafka-${k}`, address: loopbackAddress() }));
const pacs = { name: 'pacs-1', address: loopbackAddress() };
const ris = { name: 'ris-1', address: loopbackAddress() };

/** The broker Service; `moved`: kafka-1 in another zone (its endpoint changes). */
const kafkaService = (moved: boolean) =>
  kafkaServiceManifest(brokers, (b) => (moved && b.name === 'kafka-1' ? 'b' : 'a'));

const manifests = [
  STRICT_MESH,
  kafkaService(false),
  kafkaClientManifest('pacs', pacs.address),
  kafkaClientManifest('ris', ris.address),
  kafkaCallersPolicy(['pacs', 'ris']),
].join('---\n');

async function apply(cp: Replica, yaml: string): Promise<void> {
  const res = await adminRequest(cp, 'POST', '/v1/apply', { body: yaml });
  if (res.status !== 200) throw new Error(`apply: HTTP ${res.status} ${res.text}`);
}

function workloadSerial(s: HaSidecar): string {
  const held = readCertificate(s.agent.sdsDir, WORKLOAD_SECRET);
  if (!held) throw new Error(`${s.name}: no workload certificate file`);
  return new X509Certificate(held.certChainPem).serialNumber;
}

/** Connections a client opened, and those that ended before the test closed the client. */
interface Connections {
  opened: number;
  /** "host:port during <phase>" of each connection that ended. */
  closed: string[];
  closing: boolean;
}

/** Counts the connections a client opens, and those that end before the test closes it. */
const counting = (seen: Connections) => (socket: Socket, host: string, port: number) => {
  seen.opened++;
  socket.on('close', () => {
    if (!seen.closing) seen.closed.push(`${host}:${port} during ${phaseNow}`);
  });
};

const kafkaClient = (name: string, appAddress: string, seen: Connections) =>
  new KafkaClient({
    clientId: name,
    brokers: [`${appAddress}:${BOOTSTRAP}`],
    socketFactory: meshSockets(appAddress, counting(seen)),
    logLevel: logLevel.NOTHING,
    retry: { retries: 10 },
  });

/**
 * The mesh change under way, named in a dropped connection's report. Connections closed in warm-up
 * are the client's own: kafkajs restarts a consumer (closing all it holds) on a retriable error while
 * a fresh cluster is still electing its group coordinator.
 */
const WARM_UP = 'warm-up';
let phaseNow = WARM_UP;

const ids = Array.from({ length: TOTAL }, (_, i) => `study-${String(i).padStart(5, '0')}`);

describeWithKafka(
  'exactly-once imaging events through Kafka while the mesh changes',
  () => {
    const work = mkdtempSync(join(tmpdir(), 'clinimesh-kafka-eo-'));
    let cp: Replica;
    let kafka: Kafka;
    const sidecars: HaSidecar[] = [];
    const cpArgs = [
      '--trust-domain',
      'hospital.local',
      '--workload-cert-ttl',
      '30s',
      '--agent-credential-ttl',
      '30s',
    ];
    const sidecar = (name: string) => sidecars.find((s) => s.name === name)!;

    beforeAll(async () => {
      cp = await startReplica({ name: 'cp', args: cpArgs, dataDir: join(work, 'cp') });
      await apply(cp, manifests);
      for (const b of brokers) sidecars.push(await startHaSidecar([cp], 'kafka', b.name));
      sidecars.push(await startHaSidecar([cp], 'pacs', pacs.name));
      sidecars.push(await startHaSidecar([cp], 'ris', ris.name));
      kafka = await startKafka(meshedKafka(brokers, work));
    }, 300_000);

    afterEach(dumpLogsOnFailure(() => sidecars));
    afterEach((ctx) => {
      if (ctx.task.result?.state !== 'fail') return;
      console.error(`--- Kafka ---\n${kafka?.logTail(40)}`);
      console.error(`--- control plane ---\n${cp?.output().slice(-3_000)}`);
    });
    afterAll(async () => {
      await kafka?.stop();
      await Promise.all(sidecars.map((s) => s.stop()));
      await cp?.stop();
      rmSync(work, { recursive: true, force: true });
    });

    it('delivers 10,000 idempotent acks=all events exactly once across a control-plane restart, a broker endpoint change and certificate rotation', async () => {
      const topic = 'imaging.exactly-once';
      const producing: Connections = { opened: 0, closed: [], closing: false };
      const consuming: Connections = { opened: 0, closed: [], closing: false };
      const admin = kafkaClient('pacs-admin', pacs.address, { opened: 0, closed: [], closing: true }).admin();
      await admin.connect();
      await createTopic(admin, topic);
      await admin.disconnect();

      const counts = new Map<string, number>();
      const consumer = kafkaClient('ris', ris.address, consuming).consumer({ groupId: 'ris-eo' });
      const restarts: string[] = [];
      consumer.on(consumer.events.CRASH, (e) => {
        restarts.push(`${phaseNow}: ${e.payload.error.message} (restart: ${e.payload.restart})`);
      });
      await consumer.connect();
      await subscribeFromStart(consumer, topic);
      await consumer.run({
        eachMessage: async ({ message }) => {
          const id = message.value?.toString() ?? '';
          counts.set(id, (counts.get(id) ?? 0) + 1);
        },
      });
      const producer = kafkaClient('pacs', pacs.address, producing).producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      await producer.connect();

      const flow = { phase: 'warmup' as 'warmup' | 'disrupting' | 'after' };
      let acked = 0;
      const producingAll = (async () => {
        while (acked < TOTAL) {
          const steady = flow.phase === 'disrupting';
          if ((flow.phase === 'warmup' && acked >= 2_000) || (steady && acked >= TOTAL - 1_000)) {
            await sleep(50);
            continue;
          }
          const batch = ids.slice(acked, acked + (steady ? 20 : 250));
          await producer.send({ topic, acks: -1, messages: batch.map((id) => ({ key: id, value: id })) });
          acked += batch.length;
          if (steady) await sleep(100);
        }
      })();
      producingAll.catch(() => {});
      await waitFor(async () => acked >= 2_000 && counts.size >= 1_000, {
        what: 'the first 2,000 events to flow',
        timeoutMs: 60_000,
      });
      const connectionsAtStart = { producing: producing.opened, consuming: consuming.opened };

      /** Listener and cluster additions, modifications and removals per sidecar, since `since`. */
      const configChanges = async (since?: Record<string, Record<string, number>>) => {
        const now: Record<string, Record<string, number>> = {};
        for (const s of sidecars) {
          const st = await s.stats(
            '^(listener_manager\\.listener|cluster_manager\\.cluster)_(added|modified|removed)$',
          );
          now[s.name] = Object.fromEntries(
            Object.entries(st)
              .map(([k, v]) => [k, v - (since?.[s.name]?.[k] ?? 0)])
              .filter(([, v]) => !since || v !== 0),
          );
        }
        return now;
      };
      const during = async (what: string, disrupt: () => Promise<void>) => {
        const before = { acked, consumed: counts.size };
        const started = Date.now();
        phaseNow = what;
        const config = await configChanges();
        await disrupt();
        await waitFor(async () => acked >= before.acked + 100, {
          what: `producing to continue after ${what}`,
          timeoutMs: 30_000,
        });
        // Nothing but endpoints and secrets moves: no listener or cluster is added, modified or removed
        // (a modified listener drains its connections).
        const changed = await configChanges(config);
        expect(changed, `${what}: listeners and clusters unchanged`).toEqual(
          Object.fromEntries(sidecars.map((s) => [s.name, {}])),
        );
        console.info(
          `${what}: ${Date.now() - started} ms, ${acked - before.acked} acked, ${counts.size - before.consumed} consumed meanwhile`,
        );
        expect(counts.size, `${what}: RIS kept consuming`).toBeGreaterThan(before.consumed);
      };
      flow.phase = 'disrupting';

      await during('control plane SIGKILLed and restarted on its data dir', async () => {
        const { host, xdsPort, xdsRestPort, dataDir } = cp;
        await cp.kill();
        await sleep(1_000);
        cp = await startReplica({ name: 'cp', args: cpArgs, host, xdsPort, xdsRestPort, dataDir });
        for (const s of sidecars)
          await waitFor(
            async () =>
              (await s.stats('^control_plane\\.connected_state$'))['control_plane.connected_state'] === 1,
            { what: `${s.name} to reconnect to the restarted control plane`, timeoutMs: 30_000 },
          );
      });

      await during("broker kafka-1's endpoint changes (another zone)", async () => {
        const stat = 'cluster.outbound|kafka#1|kafka.clinical.update_success';
        const updates = async () =>
          (await sidecar(pacs.name).stats(`^${stat.replace(/[|.#]/g, '\\$&')}$`))[stat] ?? 0;
        const before = await updates();
        await apply(cp, kafkaService(true));
        await waitFor(async () => (await updates()) > before, {
          what: "PACS's sidecar to take kafka-1's new assignment",
          timeoutMs: 20_000,
        });
      });

      await during('every workload certificate rotated', async () => {
        const before = sidecars.map(workloadSerial);
        await waitFor(
          async () => {
            for (const [n, s] of sidecars.entries()) {
              if (workloadSerial(s) === before[n]) return false;
              if (!(await s.admin('/certs')).includes(workloadSerial(s).toLowerCase())) return false;
            }
            return true;
          },
          { what: 'every sidecar to serve a renewed workload certificate', timeoutMs: 60_000 },
        );
      });

      flow.phase = 'after';
      await producingAll;
      await waitFor(async () => counts.size >= TOTAL, {
        what: 'RIS to consume 10,000 events',
        timeoutMs: 90_000,
      });
      await sleep(1_000); // a late duplicate would arrive now
      const connectionsAtEnd = { producing: producing.opened, consuming: consuming.opened };
      const closed = [...producing.closed, ...consuming.closed];
      const dropped = closed.filter((c) => !c.endsWith(`during ${WARM_UP}`));
      producing.closing = consuming.closing = true;
      await Promise.all([producer.disconnect(), consumer.disconnect()]);
      const lost = ids.filter((id) => !counts.has(id)).length;
      const duplicated = [...counts.values()].filter((n) => n > 1).length;
      console.info(
        `kafka exactly-once: ${TOTAL} acked, ${counts.size} distinct consumed, ${lost} lost, ${duplicated} duplicated; connections opened after warm-up ${connectionsAtEnd.producing - connectionsAtStart.producing} (producer) ${connectionsAtEnd.consuming - connectionsAtStart.consuming} (consumer); closed in warm-up ${closed.length - dropped.length}; consumer restarts ${JSON.stringify(restarts)}; dropped ${JSON.stringify(dropped)}`,
      );
      expect({ lost, duplicated, unexpected: counts.size - (TOTAL - lost) }).toEqual({
        lost: 0,
        duplicated: 0,
        unexpected: 0,
      });
      // No connection was dropped by a mesh change: the clients never had to reconnect after warm-up.
      expect(dropped).toEqual([]);
      expect(restarts.filter((r) => !r.startsWith(WARM_UP))).toEqual([]);
    }, 300_000);
  },
  { envoy: true },
);
