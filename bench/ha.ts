// `npm run bench:ha`: apply → every sidecar ACKed, one replica (file store) against three replicas
// sharing state through Consul KV (the in-process Consul double; a real Consul when
// CONSUL_HTTP_ADDR is set), with the same real Envoy sidecars. Each apply rewrites HIS with a new
// weight for his-1, sent to the replicas in turn; it is "ACKed" when every sidecar's Envoy holds that
// weight (`/clusters`), whichever replica it streams from. Figures: p50/p99 over
// `BENCH_HA_APPLIES` (40) applies; results to stdout and RESULTS.md between the `ha` markers.
// Needs Envoy (`npm run envoy`); without it, it says so and exits 0.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConsulDouble } from '../test/consul-double/server.ts';
import { adminRequest } from '../test/helpers/admin.ts';
import { envoyBin } from '../test/helpers/envoy.ts';
import {
  EMR_TO_HIS_PORT,
  HIS_APP_PORT,
  HIS_MESH_PORT,
  instances,
  meshManifest,
  serviceManifest,
} from '../test/helpers/mesh.ts';
import { startHaSidecar, startReplica, type HaSidecar, type Replica } from '../test/helpers/replicas.ts';
import { waitFor } from '../test/helpers/wait.ts';
import { machine, writeResults } from './report.ts';
import { ms, summarize } from './stats.ts';

const APPLIES = Number(process.env.BENCH_HA_APPLIES ?? 40);
const SIDECARS = Number(process.env.BENCH_HA_SIDECARS ?? 6);

const his = instances('his', 2);
const callers = instances('emr', SIDECARS);

function hisWithWeight(w: number): string {
  const [a, b] = his as [(typeof his)[0], (typeof his)[0]];
  return `apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: his, namespace: clinical }
spec:
  ports:
    - { name: http, port: ${HIS_MESH_PORT}, targetPort: ${HIS_APP_PORT}, protocol: http }
  instances:
    - { name: ${a.name}, address: ${a.address}, appAddress: ${a.address}, weight: ${w} }
    - { name: ${b.name}, address: ${b.address}, appAddress: ${b.address} }
`;
}

const emrManifest = serviceManifest({
  name: 'emr',
  ports: ['{ name: http, port: 15011, targetPort: 8080, protocol: http }'],
  instances: callers,
  upstreams: [`{ service: his, port: http, localPort: ${EMR_TO_HIS_PORT} }`],
});

/** Every sidecar's Envoy holds `weight` for his-1. */
async function allHold(sidecars: readonly HaSidecar[], weight: number): Promise<boolean> {
  const want = `${his[0]!.address}:${HIS_MESH_PORT}::weight::${weight}`;
  const views = await Promise.all(sidecars.map((s) => s.admin('/clusters')));
  return views.every((v) => v.includes(want));
}

interface Figures {
  readonly replicas: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

async function run(replicaCount: number, work: string): Promise<Figures> {
  const manifests = join(work, `mesh-${replicaCount}.yaml`);
  await writeFile(manifests, [meshManifest, hisWithWeight(1), emrManifest].join('---\n'));
  let consul: ConsulDouble | undefined;
  const replicas: Replica[] = [];
  const sidecars: HaSidecar[] = [];
  try {
    let args = ['-f', manifests];
    if (replicaCount > 1) {
      const kek = join(work, 'kek');
      await writeFile(kek, randomBytes(32), { mode: 0o600 });
      consul = await ConsulDouble.start();
      args = [...args, '--store', 'consul', '--consul-addr', consul.address, '--ca-kek-file', kek];
    }
    const first = await startReplica({ name: 'cp-0', args: [...args, '--replica-name', 'cp-0'] });
    replicas.push(first);
    for (let i = 1; i < replicaCount; i++)
      replicas.push(
        await startReplica({
          name: `cp-${i}`,
          args: [...args, '--replica-name', `cp-${i}`],
          credential: first.adminCredential,
        }),
      );
    // Each sidecar names every replica, starting with a different one, so they spread.
    for (const [i, c] of callers.entries()) {
      const order = replicas.map((_, k) => replicas[(i + k) % replicas.length]!);
      sidecars.push(await startHaSidecar(order, 'emr', c.name, { tokenFrom: order[0] }));
    }
    await waitFor(() => allHold(sidecars, 1), {
      what: 'every sidecar to hold the first weight',
      timeoutMs: 60_000,
    });
    const samples: number[] = [];
    for (let i = 0; i < APPLIES; i++) {
      const weight = i + 2;
      const target = replicas[i % replicas.length]!;
      const started = performance.now();
      const res = await adminRequest(target, 'POST', '/v1/apply', { body: hisWithWeight(weight) });
      if (res.status !== 200) throw new Error(`apply on ${target.name}: HTTP ${res.status} ${res.text}`);
      await waitFor(() => allHold(sidecars, weight), {
        what: `every sidecar to hold weight ${weight}`,
        timeoutMs: 30_000,
        intervalMs: 2,
      });
      samples.push(performance.now() - started);
    }
    const s = summarize(samples);
    return { replicas: replicaCount, p50: s.p50, p99: s.p99, max: s.max };
  } finally {
    await Promise.all(sidecars.map((s) => s.stop()));
    await Promise.all(replicas.map((r) => r.stop()));
    await consul?.stop();
  }
}

async function main(): Promise<void> {
  if (!envoyBin) {
    console.log('bench:ha skipped: no Envoy (run `npm run envoy`)');
    return;
  }
  const work = await mkdtemp(join(tmpdir(), 'clinimesh-bench-ha-'));
  try {
    const load = loadavg()[0]!.toFixed(1);
    const single = await run(1, work);
    const triple = await run(3, work);
    const ratio = triple.p99 / single.p99;
    const lines = [
      `## Apply → all sidecars ACKed: one replica vs three over Consul KV (issue 11)`,
      '',
      `${new Date().toISOString().slice(0, 10)} · ${machine()} · load average at start ${load} · ` +
        `${SIDECARS} real Envoy sidecars (spread over the replicas), ${APPLIES} applies of one Service ` +
        `edit, sent to the replicas in turn; three replicas share state through the in-process Consul double.`,
      '',
      '| replicas | store | p50 (ms) | p99 (ms) | max (ms) |',
      '|---:|---|---:|---:|---:|',
      ...[single, triple].map(
        (f) =>
          `| ${f.replicas} | ${f.replicas > 1 ? 'Consul KV' : 'file'} | ${ms(f.p50)} | ${ms(f.p99)} | ${ms(f.max)} |`,
      ),
      '',
      `p99 ratio three/one: ${ratio.toFixed(2)}× (target ≤ 2×: ${ratio <= 2 ? 'met' : 'missed'}).`,
    ];
    const body = lines.join('\n');
    console.log(body);
    writeResults(fileURLToPath(new URL('./RESULTS.md', import.meta.url)), 'ha', body);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
