// Where the real brokers are: scripts/ensure-brokers.mjs records it in .brokers/brokers.json.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface RabbitMqInstall {
  readonly server: string;
  readonly ctl: string;
  readonly epmd: string;
  readonly version: string;
}

export interface KafkaInstall {
  readonly java: string;
  readonly classpath: readonly string[];
  readonly log4j: string;
  readonly toolsLog4j: string;
  readonly version: string;
}

type Found<T> = { readonly install: T } | { readonly problem: string };

function executable(path: unknown): path is string {
  if (typeof path !== 'string') return false;
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function readRecord(): Record<string, unknown> | undefined {
  const dir = resolve(repoRoot, process.env.CLINIMESH_BROKERS_DIR || '.brokers');
  const file = join(dir, 'brokers.json');
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

const record = readRecord();
const HOW = 'run `npm run brokers` (scripts/ensure-brokers.mjs)';

function findRabbitMq(): Found<RabbitMqInstall> {
  const r = record?.rabbitmq as Partial<RabbitMqInstall & { problem: string }> | undefined;
  if (r && executable(r.server) && executable(r.epmd)) return { install: r as RabbitMqInstall };
  // Installed by hand since the last record: Debian's layout.
  const server = '/usr/lib/rabbitmq/bin/rabbitmq-server';
  const epmd = ['/usr/bin/epmd', '/usr/lib/erlang/bin/epmd'].find(executable);
  if (executable(server) && epmd)
    return { install: { server, ctl: '/usr/lib/rabbitmq/bin/rabbitmqctl', epmd, version: 'unknown' } };
  return { problem: `RabbitMQ not found (${r?.problem ?? 'no record'}); ${HOW}` };
}

function findKafka(): Found<KafkaInstall> {
  const k = record?.kafka as Partial<KafkaInstall & { problem: string }> | undefined;
  const complete = k && executable(k.java) && Array.isArray(k.classpath) && k.classpath.length > 0;
  if (complete && k.classpath!.every((jar) => existsSync(jar))) return { install: k as KafkaInstall };
  return { problem: `Kafka not found (${k?.problem ?? 'no record, or jars missing'}); ${HOW}` };
}

export const rabbitMqFound = findRabbitMq();
export const kafkaFound = findKafka();

export function rabbitMqInstall(): RabbitMqInstall {
  if ('problem' in rabbitMqFound) throw new Error(rabbitMqFound.problem);
  return rabbitMqFound.install;
}

export function kafkaInstall(): KafkaInstall {
  if ('problem' in kafkaFound) throw new Error(kafkaFound.problem);
  return kafkaFound.install;
}
