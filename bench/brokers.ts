// `npm run bench:brokers`: message throughput and publish→consume latency through the mesh against
// direct to the broker, in the same run, for each broker case (RabbitMQ and Kafka; a case is a broker
// started on loopback with two ways to reach it: `direct` and `mesh`). Each case runs a warm-up, then
// alternating rounds (direct first in odd rounds, mesh first in even ones, so drift hits both):
// - throughput: `BENCH_BROKER_MESSAGES` (20,000) messages of 1 KiB as fast as the broker confirms,
//   at most 1,000 unconfirmed; messages/s from the first publish to the last consume;
// - latency: 3,000 messages paced at 500 messages/s; p50/p99 from publish to consume.
// Figures are the medians over rounds. Results go to stdout and to RESULTS.md between the `brokers`
// markers. Needs real brokers (`npm run brokers`) and Envoy (`npm run envoy`); without them it says
// so and exits 0, so `npm run bench` still runs the rest.
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { kafkaFound, rabbitMqFound } from '../test/helpers/broker-install.ts';
import { envoyBin } from '../test/helpers/envoy.ts';
import type { BrokerCase, BrokerPath, LoadPlan } from './broker-case.ts';
import { kafkaCase } from './brokers-kafka.ts';
import { rabbitMqCase } from './brokers-rabbitmq.ts';
import { machine, writeResults } from './report.ts';
import { median, ms, summarize } from './stats.ts';

export interface PathFigures {
  readonly msgsPerSec: number;
  readonly loadedP99Ms: number;
  readonly pacedP50Ms: number;
  readonly pacedP99Ms: number;
}

export interface CaseFigures {
  readonly broker: string;
  readonly notes: string;
  readonly rounds: number;
  readonly direct: PathFigures;
  readonly mesh: PathFigures;
}

const THROUGHPUT: LoadPlan = {
  messages: Number(process.env.BENCH_BROKER_MESSAGES) || 20_000,
  window: 1_000,
  bytes: 1_024,
};
const PACED: LoadPlan = { messages: 3_000, window: 1_000, ratePerSec: 500, bytes: 1_024 };
const WARMUP: LoadPlan = { messages: 2_000, window: 1_000, bytes: 1_024 };
const ROUNDS = Number(process.env.BENCH_BROKER_ROUNDS) || 3;

interface Samples {
  msgsPerSec: number[];
  loadedP99: number[];
  pacedP50: number[];
  pacedP99: number[];
}

async function measure(path: BrokerPath, into: Samples): Promise<void> {
  const load = await path.run(THROUGHPUT);
  into.msgsPerSec.push(load.messages / load.seconds);
  into.loadedP99.push(summarize(load.latenciesMs).p99);
  const paced = summarize((await path.run(PACED)).latenciesMs);
  into.pacedP50.push(paced.p50);
  into.pacedP99.push(paced.p99);
}

const empty = (): Samples => ({ msgsPerSec: [], loadedP99: [], pacedP50: [], pacedP99: [] });
const figures = (s: Samples): PathFigures => ({
  msgsPerSec: median(s.msgsPerSec),
  loadedP99Ms: median(s.loadedP99),
  pacedP50Ms: median(s.pacedP50),
  pacedP99Ms: median(s.pacedP99),
});

export async function benchBroker(c: BrokerCase, log: (m: string) => void): Promise<CaseFigures> {
  const bench = await c.start();
  try {
    await bench.direct.run(WARMUP);
    await bench.mesh.run(WARMUP);
    const direct = empty();
    const mesh = empty();
    for (let r = 1; r <= ROUNDS; r++) {
      const order: Array<[string, BrokerPath, Samples]> = [
        ['direct', bench.direct, direct],
        ['mesh', bench.mesh, mesh],
      ];
      if (r % 2 === 0) order.reverse();
      for (const [name, path, into] of order) {
        await measure(path, into);
        log(
          `${c.name} round ${r} ${name}: ${into.msgsPerSec.at(-1)!.toFixed(0)} msg/s, p99 under load ${ms(into.loadedP99.at(-1)!)} ms, paced p50/p99 ${ms(into.pacedP50.at(-1)!)}/${ms(into.pacedP99.at(-1)!)} ms`,
        );
      }
    }
    return {
      broker: bench.broker,
      notes: bench.notes,
      rounds: ROUNDS,
      direct: figures(direct),
      mesh: figures(mesh),
    };
  } finally {
    await bench.stop();
  }
}

const ratio = (mesh: number, direct: number) => (direct > 0 ? (mesh / direct).toFixed(2) : '–');

export function renderBrokers(results: readonly CaseFigures[], started: Date, load: string): string {
  const rows = results.flatMap((r) => [
    `| ${r.broker} | direct | ${r.direct.msgsPerSec.toFixed(0)} | ${ms(r.direct.loadedP99Ms)} | ${ms(r.direct.pacedP50Ms)} / ${ms(r.direct.pacedP99Ms)} |`,
    `| ${r.broker} | through the mesh | ${r.mesh.msgsPerSec.toFixed(0)} | ${ms(r.mesh.loadedP99Ms)} | ${ms(r.mesh.pacedP50Ms)} / ${ms(r.mesh.pacedP99Ms)} |`,
    `| ${r.broker} | **mesh / direct** | **${ratio(r.mesh.msgsPerSec, r.direct.msgsPerSec)}** | **${ratio(r.mesh.loadedP99Ms, r.direct.loadedP99Ms)}** | ${ratio(r.mesh.pacedP50Ms, r.direct.pacedP50Ms)} / **${ratio(r.mesh.pacedP99Ms, r.direct.pacedP99Ms)}** |`,
  ]);
  return [
    `### Brokers through the mesh vs direct (${started.toISOString().slice(0, 16).replace('T', ' ')} UTC)`,
    '',
    `Machine: ${machine()}. Load average at start: ${load}.`,
    `Each figure is the median of ${results[0]?.rounds ?? ROUNDS} alternating rounds per path, after a warm-up. Throughput: ${THROUGHPUT.messages} messages of ${THROUGHPUT.bytes} B, at most ${THROUGHPUT.window} unconfirmed, first publish → last consume. Paced: ${PACED.messages} messages at ${PACED.ratePerSec}/s.`,
    '',
    '| broker | path | messages/s | p99 publish→consume under load (ms) | p50 / p99 at 500 msg/s (ms) |',
    '|---|---|---:|---:|---:|',
    ...rows,
    '',
    ...results.map((r) => `- ${r.broker}: ${r.notes}.`),
  ].join('\n');
}

/** The cases of this benchmark. */
export const BROKER_CASES: readonly BrokerCase[] = [
  {
    ...rabbitMqCase,
    missing: () =>
      'problem' in rabbitMqFound
        ? rabbitMqFound.problem
        : envoyBin
          ? undefined
          : 'Envoy not found (npm run envoy)',
  },
  {
    ...kafkaCase,
    missing: () =>
      'problem' in kafkaFound ? kafkaFound.problem : envoyBin ? undefined : 'Envoy not found (npm run envoy)',
  },
];

async function main(): Promise<void> {
  process.env.CLINIMESH_LOG_LEVEL ??= 'warn'; // the in-process control plane's per-sidecar lines
  const started = new Date();
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');
  const wanted = process.env.BENCH_BROKERS?.split(',').map((s) => s.trim());
  const results: CaseFigures[] = [];
  for (const c of BROKER_CASES.filter((c) => !wanted || wanted.includes(c.name))) {
    const missing = c.missing?.();
    if (missing) {
      console.warn(`bench:brokers: skipping ${c.name}: ${missing}`);
      continue;
    }
    results.push(await benchBroker(c, (m) => console.log(`[brokers] ${m}`)));
  }
  if (results.length === 0) return;
  const body = renderBrokers(results, started, load);
  console.log(`\n${body}`);
  writeResults(fileURLToPath(new URL('./RESULTS.md', import.meta.url)), 'brokers', body);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
