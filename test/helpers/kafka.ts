// A throwaway Kafka 3.9.1 cluster in KRaft mode for one test file: 1 or 3 combined broker+controller
// nodes from the Maven Central jars, each with its own temp data dir and free ports on loopback, small
// JVM heaps. Every address, listener name, the quorum voters, JVM args and any property can be
// overridden per node, so the Kafka-through-the-mesh suites can put the mesh between clients, brokers
// and controllers. Stopped by PID, all nodes at once (a KRaft quorum stopped one by one can hang).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { kafkaInstall, type KafkaInstall } from './broker-install.ts';
import { BrokerProcess, lastLines } from './broker-process.ts';
import { freePort } from './ports.ts';
import { waitFor } from './wait.ts';

/** Per-node overrides; anything left out gets a loopback default. */
export interface KafkaNodeOptions {
  /** Where the broker (client) listener binds; defaults to the cluster's `host` and a free port. */
  readonly brokerHost?: string;
  readonly brokerPort?: number;
  /** Where the controller listener binds; defaults to the cluster's `host` and a free port. */
  readonly controllerHost?: string;
  readonly controllerPort?: number;
  /** Defaults to `<brokerListener>://brokerHost:brokerPort`. */
  readonly advertisedListeners?: string;
  /** Added after the cluster-wide `jvmArgs` (e.g. `-Djdk.net.hosts.file=...`). */
  readonly jvmArgs?: readonly string[];
  /** Merged last over everything generated for this node. */
  readonly properties?: Readonly<Record<string, string>>;
}

export interface StartKafkaOptions {
  readonly nodes?: 1 | 3;
  /** Default bind address of every listener. */
  readonly host?: string;
  /** Overrides for node id i+1 at index i. */
  readonly node?: readonly KafkaNodeOptions[];
  /** Defaults to `id@controllerHost:controllerPort,...` from the nodes' controller listeners. */
  readonly quorumVoters?: string;
  /** Name of the client/inter-broker listener (PLAINTEXT) and of the controller listener (CONTROLLER). */
  readonly brokerListener?: string;
  readonly controllerListener?: string;
  /** Replaces the small-heap defaults below when given. */
  readonly heap?: readonly string[];
  /** Extra JVM args for every node. */
  readonly jvmArgs?: readonly string[];
  /** Merged over the generated properties of every node (before the per-node ones). */
  readonly properties?: Readonly<Record<string, string>>;
  /** Wait until every node logs "Kafka Server started" (default true). */
  readonly waitForStarted?: boolean;
  readonly startTimeoutMs?: number;
}

export interface KafkaNode {
  readonly id: number;
  readonly brokerHost: string;
  readonly brokerPort: number;
  readonly controllerHost: string;
  readonly controllerPort: number;
  /** The server.properties this node runs with, as written. */
  readonly properties: Readonly<Record<string, string>>;
  readonly dir: string;
  pid(): number;
  logTail(lines?: number): string;
  /** Resolves once this node logged "Kafka Server started". */
  started(timeoutMs?: number): Promise<void>;
  /** SIGTERM this node alone (and SIGKILL after a grace period). */
  stop(): Promise<void>;
  /** Starts this node again on the same data dir (after stop()); resolves once started. */
  restart(): Promise<void>;
}

export interface Kafka {
  readonly clusterId: string;
  readonly nodes: readonly KafkaNode[];
  /** `host:port` of each node's broker listener, for clients that connect directly. */
  readonly bootstrapServers: string[];
  readonly dir: string;
  /** Every node's last lines; works after stop(). */
  logTail(lines?: number): string;
  /** SIGTERM all nodes at once, then remove the data dirs. */
  stop(): Promise<void>;
}

const SMALL_HEAP = ['-Xms64m', '-Xmx256m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1'];
const STARTED = 'Kafka Server started';

/** Kafka's Uuid.randomUuid(): 16 random bytes, base64url without padding, never starting with '-'. */
function clusterUuid(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

interface Planned {
  id: number;
  brokerHost: string;
  brokerPort: number;
  controllerHost: string;
  controllerPort: number;
  o: KafkaNodeOptions;
}

async function plan(o: StartKafkaOptions): Promise<Planned[]> {
  const host = o.host ?? '127.0.0.1';
  const planned: Planned[] = [];
  for (let i = 0; i < (o.nodes ?? 1); i++) {
    const n = o.node?.[i] ?? {};
    const brokerHost = n.brokerHost ?? host;
    const controllerHost = n.controllerHost ?? host;
    planned.push({
      id: i + 1,
      brokerHost,
      brokerPort: n.brokerPort ?? (await freePort(brokerHost)),
      controllerHost,
      controllerPort: n.controllerPort ?? (await freePort(controllerHost)),
      o: n,
    });
  }
  return planned;
}

function serverProperties(
  p: Planned,
  all: Planned[],
  o: StartKafkaOptions,
  dir: string,
): Record<string, string> {
  const b = o.brokerListener ?? 'PLAINTEXT';
  const c = o.controllerListener ?? 'CONTROLLER';
  const rf = String(Math.min(all.length, 3));
  return {
    'process.roles': 'broker,controller',
    'node.id': String(p.id),
    'controller.quorum.voters':
      o.quorumVoters ?? all.map((n) => `${n.id}@${n.controllerHost}:${n.controllerPort}`).join(','),
    listeners: `${b}://${p.brokerHost}:${p.brokerPort},${c}://${p.controllerHost}:${p.controllerPort}`,
    'advertised.listeners': p.o.advertisedListeners ?? `${b}://${p.brokerHost}:${p.brokerPort}`,
    'listener.security.protocol.map': `${b}:PLAINTEXT,${c}:PLAINTEXT`,
    'controller.listener.names': c,
    'inter.broker.listener.name': b,
    'log.dirs': join(dir, 'data'),
    'num.partitions': '1',
    'default.replication.factor': rf,
    'min.insync.replicas': '1',
    'offsets.topic.replication.factor': rf,
    'offsets.topic.num.partitions': '1',
    'transaction.state.log.replication.factor': rf,
    'transaction.state.log.min.isr': '1',
    'group.initial.rebalance.delay.ms': '0',
    'auto.create.topics.enable': 'false',
    ...o.properties,
    ...p.o.properties,
  };
}

function writeProperties(file: string, props: Record<string, string>): void {
  writeFileSync(
    file,
    `${Object.entries(props)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n')}\n`,
  );
}

/** StorageTool format, with the tools' WARN→stderr log config (a stdout log line would corrupt answers). */
async function format(install: KafkaInstall, clusterId: string, config: string): Promise<void> {
  const args = [
    ...['-Xmx256m', '-XX:TieredStopAtLevel=1', `-Dlog4j.configuration=file:${install.toolsLog4j}`],
    ...['-cp', install.classpath.join(':'), 'kafka.tools.StorageTool'],
    ...['format', '-t', clusterId, '-c', config],
  ];
  try {
    await promisify(execFile)(install.java, args, { timeout: 60_000 });
  } catch (err) {
    const e = err as Error & { stderr?: string; stdout?: string };
    throw new Error(`StorageTool format ${config}: ${e.stderr || e.stdout || e.message}`, { cause: err });
  }
}

class Node implements KafkaNode {
  readonly id: number;
  readonly brokerHost: string;
  readonly brokerPort: number;
  readonly controllerHost: string;
  readonly controllerPort: number;
  readonly properties: Record<string, string>;
  private process: BrokerProcess | undefined;
  private runs = 0;

  constructor(
    p: Planned,
    readonly dir: string,
    private readonly install: KafkaInstall,
    private readonly jvmArgs: readonly string[],
    private readonly config: string,
    props: Record<string, string>,
  ) {
    this.id = p.id;
    this.brokerHost = p.brokerHost;
    this.brokerPort = p.brokerPort;
    this.controllerHost = p.controllerHost;
    this.controllerPort = p.controllerPort;
    this.properties = props;
  }

  launch(): void {
    this.runs++;
    this.process = new BrokerProcess({
      name: `kafka-${this.id}`,
      command: this.install.java,
      args: [
        ...this.jvmArgs,
        '-Djava.awt.headless=true',
        `-Dlog4j.configuration=file:${this.install.log4j}`,
        '-cp',
        this.install.classpath.join(':'),
        'kafka.Kafka',
        this.config,
      ],
      logFile: join(this.dir, `server-${this.runs}.log`),
    });
  }

  pid = (): number => this.process?.pid ?? -1;

  logTail = (lines = 60): string => lastLines(this.process?.log() ?? '', lines);

  started = async (timeoutMs = 60_000): Promise<void> => {
    const proc = this.process;
    if (!proc) throw new Error(`kafka-${this.id} was never launched`);
    await proc.until(
      waitFor(async () => proc.log().includes(STARTED), {
        what: `kafka-${this.id}: "${STARTED}"`,
        timeoutMs,
      }),
    );
  };

  stop = async (): Promise<void> => {
    await this.process?.stop(20_000);
  };

  restart = async (): Promise<void> => {
    await this.stop();
    this.launch();
    await this.started();
  };
}

export async function startKafka(options: StartKafkaOptions = {}): Promise<Kafka> {
  const install = kafkaInstall();
  const dir = mkdtempSync(join(tmpdir(), 'clinimesh-kafka-'));
  const planned = await plan(options);
  const clusterId = clusterUuid();
  const nodes = planned.map((p) => {
    const nodeDir = join(dir, `node-${p.id}`);
    mkdirSync(nodeDir, { recursive: true });
    const props = serverProperties(p, planned, options, nodeDir);
    const config = join(nodeDir, 'server.properties');
    writeProperties(config, props);
    const jvm = [...(options.heap ?? SMALL_HEAP), ...(options.jvmArgs ?? []), ...(p.o.jvmArgs ?? [])];
    return new Node(p, nodeDir, install, jvm, config, props);
  });
  let finalLog: string | undefined;
  const logTail = (lines = 60): string =>
    finalLog ?? nodes.map((n) => `--- kafka-${n.id} (pid ${n.pid()}) ---\n${n.logTail(lines)}`).join('\n');
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.stop()));
    finalLog ??= logTail(200);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(nodes.map((n) => format(install, clusterId, join(n.dir, 'server.properties'))));
    for (const n of nodes) n.launch();
    if (options.waitForStarted !== false)
      await Promise.all(nodes.map((n) => n.started(options.startTimeoutMs ?? 90_000)));
  } catch (err) {
    const tail = logTail(60);
    await stop();
    throw new Error(`startKafka failed: ${(err as Error).message}\n${tail}`, { cause: err });
  }
  return {
    clusterId,
    nodes,
    bootstrapServers: nodes.map((n) => `${n.brokerHost}:${n.brokerPort}`),
    dir,
    logTail,
    stop,
  };
}
