// A three-broker Kafka (KRaft, RF=3) behind the mesh, as the Kafka e2e tests and the broker bench
// run it. Broker k advertises `kafka-k.clinical.mesh:<29092+k>` and lists the voters as
// `kafka-k.clinical.mesh:<29192+k>`: callers reach broker k through their sidecar's per-instance
// listener (the Service's `instancePorts`), and the brokers replicate and hold their quorum through
// their own sidecars (a self-upstream). In Kubernetes each pod has its own loopback and the broker
// would advertise 127.0.0.1; here every pod shares one loopback, so each process resolves those
// names to its own appAddress, where its sidecar listens: brokers through a per-JVM hosts file
// (-Djdk.net.hosts.file), kafkajs clients through their socketFactory (`meshSockets`).
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Admin, Consumer, ISocketFactory, PartitionMetadata } from 'kafkajs';
import type { KafkaNodeOptions, StartKafkaOptions } from './kafka.ts';
import { NS, serviceManifest } from './mesh.ts';
import { waitFor } from './wait.ts';

export const BROKER_APP = 9092; // each broker's CLIENT listener, on its own pod address
export const CONTROLLER_APP = 9093;
export const BROKER_MESH = 19092; // the broker sidecar's inbound (mTLS) ports
export const CONTROLLER_MESH = 19093;
export const BROKER_BASE = 29092; // broker k at <caller appAddress>:29092+k
export const CONTROLLER_BASE = 29192;
export const BOOTSTRAP = 9092; // the load-balanced listener on each client's address

export interface Pod {
  readonly name: string;
  readonly address: string;
}

export const brokerHost = (k: number): string => `kafka-${k}.${NS}.mesh`;

export const STRICT_MESH = `apiVersion: clinimesh.io/v1alpha1
kind: Mesh
metadata: { name: hospital }
spec: { trustDomain: hospital.local, mtls: { mode: STRICT } }
`;

/** The broker Service; `zoneOf`: each broker's zone (a changed zone is an endpoint change). */
export function kafkaServiceManifest(brokers: readonly Pod[], zoneOf?: (b: Pod) => string): string {
  const instance = (b: Pod) =>
    `{ name: ${b.name}, address: ${b.address}, appAddress: ${b.address}` +
    (zoneOf ? `, locality: { region: eu, zone: ${zoneOf(b)} } }` : ' }');
  return `apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: kafka, namespace: ${NS} }
spec:
  ports:
    - { name: kafka, port: ${BROKER_MESH}, targetPort: ${BROKER_APP}, protocol: tcp, instancePorts: { base: ${BROKER_BASE}, count: ${brokers.length} } }
    - { name: controller, port: ${CONTROLLER_MESH}, targetPort: ${CONTROLLER_APP}, protocol: tcp, instancePorts: { base: ${CONTROLLER_BASE}, count: ${brokers.length} } }
  instances:
${brokers.map((b) => `    - ${instance(b)}`).join('\n')}
  upstreams:
    - { service: kafka, port: kafka, localPort: 29090 }
    - { service: kafka, port: controller, localPort: 29190 }
`;
}

/** A Kafka client's Service: one instance, the brokers' bootstrap listener at BOOTSTRAP. */
export function kafkaClientManifest(name: string, address: string): string {
  return serviceManifest({
    name,
    ports: ['{ name: http, port: 15001, targetPort: 8080, protocol: http }'],
    instances: [{ name: `${name}-1`, address }],
    upstreams: [`{ service: kafka, port: kafka, localPort: ${BOOTSTRAP} }`],
  });
}

/**
 * Who may connect to the brokers: these clients on the kafka port only; the brokers themselves on
 * both ports (replication on kafka, the KRaft quorum on controller).
 */
export function kafkaCallersPolicy(clients: readonly string[]): string {
  const from = clients.map((s) => `{ service: ${s} }`).join(', ');
  return `apiVersion: clinimesh.io/v1alpha1
kind: AccessPolicy
metadata: { name: kafka-callers, namespace: ${NS} }
spec:
  destination: kafka
  rules:
    - { from: [${from}], ports: [kafka] }
    - { from: [{ service: kafka }], ports: [kafka, controller] }
`;
}

/**
 * `startKafka` options for brokers behind their sidecars: each listens on its pod address, advertises
 * its mesh name and resolves every broker name to its own pod address (hosts files in `dir`).
 * `extra(b, k)` adds per-node overrides (another listener, say).
 */
export function meshedKafka(
  brokers: readonly Pod[],
  dir: string,
  extra: (b: Pod, k: number) => Partial<KafkaNodeOptions> = () => ({}),
): StartKafkaOptions {
  return {
    nodes: brokers.length as 1 | 3,
    brokerListener: 'CLIENT',
    quorumVoters: brokers.map((_, k) => `${k + 1}@${brokerHost(k)}:${CONTROLLER_BASE + k}`).join(','),
    node: brokers.map((b, k) => {
      const hosts = join(dir, `${b.name}.hosts`);
      writeFileSync(hosts, `${b.address} ${brokers.map((_, j) => brokerHost(j)).join(' ')}\n`);
      return {
        brokerHost: b.address,
        brokerPort: BROKER_APP,
        controllerHost: b.address,
        controllerPort: CONTROLLER_APP,
        advertisedListeners: `CLIENT://${brokerHost(k)}:${BROKER_BASE + k}`,
        jvmArgs: [`-Djdk.net.hosts.file=${hosts}`],
        ...extra(b, k),
      };
    }),
    startTimeoutMs: 180_000,
  };
}

/**
 * Stands in for per-pod name resolution: a client in its own pod would resolve every broker name to
 * 127.0.0.1, its pod's loopback, where its sidecar offers broker k at 29092+k. `onSocket` sees every
 * connection the client opens.
 */
export const meshSockets =
  (appAddress: string, onSocket?: (socket: Socket, host: string, port: number) => void): ISocketFactory =>
  ({ host, port, onConnect }) => {
    const socket: Socket = connect(
      { host: host.endsWith(`.${NS}.mesh`) ? appAddress : host, port },
      onConnect,
    );
    onSocket?.(socket, host, port);
    return socket;
  };

/**
 * Creates a topic and waits until one broker's metadata shows a leader for every partition; returns
 * that metadata (asking again could reach a broker that has not learned the topic yet in KRaft).
 * A KRaft broker that has not yet seen the active controller reports controller -1, and kafkajs
 * gives up on that at once ("Broker -1 not found"), so the create is retried until it is taken;
 * a retry after a create that did land finds the topic there, which kafkajs reports as success.
 */
export async function createTopic(
  admin: Admin,
  topic: string,
  partitions = 3,
  replicationFactor = 3,
): Promise<readonly PartitionMetadata[]> {
  await waitFor(
    async () => {
      await admin.createTopics({
        topics: [{ topic, numPartitions: partitions, replicationFactor }],
        waitForLeaders: false,
      });
      return true;
    },
    { what: `a broker to take the creation of ${topic}`, timeoutMs: 60_000, intervalMs: 200 },
  );
  let seen: readonly PartitionMetadata[] = [];
  await waitFor(
    async () => {
      const meta = await admin.fetchTopicMetadata({ topics: [topic] }).catch(() => undefined);
      seen = meta?.topics[0]?.partitions ?? [];
      return seen.length === partitions && seen.every((p) => p.leader >= 0);
    },
    { what: `every partition of ${topic} to have a leader`, timeoutMs: 60_000, intervalMs: 100 },
  );
  return seen;
}

/**
 * Subscribes from the beginning, retrying while the broker asked has not learned the topic yet:
 * topic metadata reaches each broker in its own time (BROKERS.md, pitfall 6).
 */
export async function subscribeFromStart(consumer: Consumer, topic: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const subscribed = await consumer.subscribe({ topic, fromBeginning: true }).then(
      () => true,
      (err: Error & { retriable?: boolean }) => {
        if (!err.retriable || attempt >= 100) throw err;
        return false;
      },
    );
    if (subscribed) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
