// The control plane's own share of an endpoint push, without gRPC, TLS or simulated sidecars: N
// sidecar streams (the real SotW and delta stream state machines, writing into a counter) subscribe
// as Envoy does; endpoint moves go through `controlPlane.updateEndpoints` (plan, cache, encode,
// status, metrics), and each push is ACKed straight back into the stream. Reports server CPU per
// affected sidecar for the push and for its ACK, per round; the least round is the figure to
// compare on a shared machine (contention only ever adds).
// Usage: npx tsx bench/push-path.ts   (N=2000 sidecars, CHANGES=60 per round, ROUNDS=6)
import { startControlPlane } from '../src/main.ts';
import { CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, type TypeUrl } from '../src/xds/resources/type-urls.ts';
import { DeltaStream } from '../src/xds/server/delta-stream.ts';
import { SotwStream } from '../src/xds/server/sotw-stream.ts';
import type { SidecarStatus } from '../src/xds/status.ts';
import { generateMesh, moveFirstEndpoint, type SidecarSpec } from './mesh-gen.ts';
import { cpuMs } from './stats.ts';

const N = Number(process.env.N ?? 2000);
const CHANGES = Number(process.env.CHANGES ?? 60);
const ROUNDS = Number(process.env.ROUNDS ?? 6);
const WILDCARD = new Set<TypeUrl>([CLUSTER, LISTENER]);

const mesh = generateMesh({
  services: Math.max(1000, N / 2),
  sidecars: N,
  upstreamsPerService: 3,
  seed: 20240601,
});
const meshDoc = mesh.manifests.find((m) => m.kind === 'Mesh');
const cp = await startControlPlane({
  xdsPort: 0,
  xdsRestPort: 0,
  adminPort: 0,
  xdsTls: false,
  trustDomain: meshDoc?.kind === 'Mesh' ? meshDoc.trustDomain : undefined,
});
await cp.controlPlane.updateEndpoints([...mesh.endpoints.values()]);
const applied = await cp.controlPlane.apply(mesh.manifests);
if (!applied.ok) throw new Error(JSON.stringify(applied.errors.slice(0, 2)));

const io = { send: () => true, close: () => undefined };
const ctx = { transport: 'ads' as const, peer: 'bench', plaintext: true };
const names = (node: string, t: TypeUrl) => [...(cp.cache.get(node, t)?.resources.keys() ?? [])];

type Stream = { ack(nonce: string, version: string): void };

/** One sidecar's stream, subscribed to every type as Envoy is (CDS and LDS as wildcards). */
function open(sc: SidecarSpec): Stream {
  const node = { id: sc.nodeId, cluster: sc.cluster, metadata: {}, userAgent: 'bench' };
  const types: TypeUrl[] = [CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET];
  if (sc.transport === 'delta') {
    const s = new DeltaStream(cp.cache, cp.controlPlane.hooks, cp.statuses, ctx, io);
    const request = (typeUrl: TypeUrl, subscribe: string[], responseNonce = '', first = false) =>
      s.onRequest({
        node: first ? node : undefined,
        typeUrl,
        subscribe,
        unsubscribe: [],
        initialVersions: {},
        responseNonce,
      });
    types.forEach((t, i) => request(t, WILDCARD.has(t) ? [] : names(sc.nodeId, t), '', i === 0));
    return { ack: (nonce) => request(ENDPOINT, [], nonce) };
  }
  const s = new SotwStream(cp.cache, cp.controlPlane.hooks, cp.statuses, ctx, io);
  const request = (typeUrl: TypeUrl, versionInfo = '', responseNonce = '', first = false) =>
    s.onRequest({
      node: first ? node : undefined,
      versionInfo,
      resourceNames: WILDCARD.has(typeUrl) ? [] : names(sc.nodeId, typeUrl),
      typeUrl,
      responseNonce,
    });
  types.forEach((t, i) => request(t, '', '', i === 0));
  return { ack: (nonce, version) => request(ENDPOINT, version, nonce) };
}

const streams = new Map(mesh.sidecars.map((sc) => [sc.nodeId, open(sc)]));
const statusOf = new Map<string, SidecarStatus>(cp.statuses.all().map((s) => [s.nodeId, s]));
/** ACKs every EDS response still pending among `nodes`; returns how many. */
function ackAll(nodes: Iterable<string>): number {
  let n = 0;
  for (const node of nodes) {
    const eds = statusOf.get(node)?.types.get(ENDPOINT);
    if (!eds?.pendingNonce || !eds.sentVersion) continue;
    streams.get(node)?.ack(eds.pendingNonce, eds.sentVersion);
    n++;
  }
  return n;
}
ackAll(streams.keys());

const targets: string[] = [];
while (targets.length < CHANGES) {
  const key = mesh.serviceKeys[mesh.popular()]!;
  if ((mesh.consumers.get(key)?.length ?? 0) > 0 && mesh.consulKeys.has(key)) targets.push(key);
}
const endpoints = new Map(mesh.endpoints);
const rounds: Array<{ push: number; ack: number }> = [];
for (let round = 0; round < ROUNDS; round++) {
  let push = 0;
  let ack = 0;
  let affected = 0;
  for (const [k, key] of targets.entries()) {
    const set = moveFirstEndpoint(endpoints.get(key)!, 20_000 + round * 1000 + k);
    endpoints.set(key, set);
    const c0 = process.cpuUsage();
    await cp.controlPlane.updateEndpoints(set);
    push += cpuMs(process.cpuUsage(c0));
    const c1 = process.cpuUsage();
    affected += ackAll(mesh.consumers.get(key) ?? []);
    ack += cpuMs(process.cpuUsage(c1));
  }
  rounds.push({ push: (push * 1000) / affected, ack: (ack * 1000) / affected });
}
const best = rounds.reduce((a, b) => (b.push + b.ack < a.push + a.ack ? b : a));
const us = (r: { push: number; ack: number }) => `${r.push.toFixed(1)} + ${r.ack.toFixed(1)}`;
console.log(
  `${N} sidecars, ${CHANGES} endpoint moves per round; µs of server CPU per affected sidecar, push + ACK:`,
);
console.log(`  rounds: ${rounds.map(us).join(' | ')}`);
console.log(`  least:  ${us(best)} = ${(best.push + best.ack).toFixed(1)} µs`);
await cp.stop();
