// The benchmark's simulated sidecars against a real control plane (in this process, mutual TLS on
// the xDS port, a small generated mesh): over gRPC spoken directly on node:http2, state-of-the-world
// and delta sidecars subscribe to everything their configuration names and ACK it (the server
// counts them steady), see the marker an endpoint change carries, and after their connection is
// lost open a new one and a new stream after Envoy's backoff, which resumes from what they hold
// (versions, and for delta initial_resource_versions), and are steady again; a stalled one stops
// reading, so what is pushed to it is never ACKed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimulatedSidecar } from '../../../bench/ads-client.ts';
import { DeltaSimulatedSidecar } from '../../../bench/delta-client.ts';
import { H2Channel } from '../../../bench/grpc-h2.ts';
import { steadySidecars } from '../../../bench/harness.ts';
import { MARKER_BASE } from '../../../bench/ipc.ts';
import { generateMesh, moveFirstEndpoint, type BenchMesh } from '../../../bench/mesh-gen.ts';
import { startMeshPlane, type StartedPlane } from '../../../bench/setup.ts';
import type { SidecarEvents } from '../../../bench/sim-stream.ts';
import { createSecureContext } from 'node:tls';

const mesh: BenchMesh = generateMesh({ services: 16, sidecars: 10, upstreamsPerService: 3, seed: 7 });
let plane: StartedPlane;
const channels: H2Channel[] = [];
const sidecars: (SimulatedSidecar | DeltaSimulatedSidecar)[] = [];
const markers: [string, number][] = [];
const reconnects: string[] = [];

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  plane = await startMeshPlane(mesh, true, 'sim-test');
  const tls = plane.tls!;
  const events: SidecarEvents = {
    marker: (nodeId, marker) => markers.push([nodeId, marker]),
    reconnect: (_nodeId, reason) => reconnects.push(reason),
  };
  for (const spec of mesh.sidecars) {
    const own = tls.byService[spec.cluster]!;
    const channel = new H2Channel({
      address: plane.target,
      secureContext: createSecureContext({ ca: tls.ca, key: own.key, cert: own.cert }),
      servername: 'localhost',
    });
    channels.push(channel);
    const sidecar =
      spec.transport === 'delta'
        ? new DeltaSimulatedSidecar(spec, channel, events)
        : new SimulatedSidecar(spec, channel, events);
    sidecars.push(sidecar);
    sidecar.open();
  }
}, 60_000);

afterAll(async () => {
  for (const s of sidecars) s.close();
  for (const c of channels) c.close();
  await plane?.cp.stop();
});

describe('simulated sidecars over node:http2', () => {
  it('has both transports to check', () => {
    expect(new Set(mesh.sidecars.map((s) => s.transport))).toEqual(new Set(['sotw', 'delta']));
  });

  it('subscribe to every type their configuration names and ACK it, over mutual TLS', async () => {
    await until('every sidecar steady', () => steadySidecars(plane.cp) === mesh.sidecars.length);
    expect(reconnects).toEqual([]);
  });

  it("see an endpoint change's marker on every sidecar that consumes the service", async () => {
    const [key, consumers] = [...mesh.consumers].find(([k, c]) => mesh.consulKeys.has(k) && c.length > 0)!;
    const moved = moveFirstEndpoint(mesh.endpoints.get(key)!, MARKER_BASE + 5);
    await plane.cp.controlPlane.updateEndpoints([moved]);
    const saw = () => new Set(markers.filter(([, m]) => m === 5).map(([node]) => node));
    await until('the marker at every consumer', () => consumers.every((n) => saw().has(n)));
    expect([...saw()].sort()).toEqual([...new Set(consumers)].sort());
  });

  it('open a new connection and stream after theirs is lost, and are steady again', async () => {
    const streams = () => new Map(plane.cp.statuses.all().map((s) => [s.nodeId, s]));
    const before = streams();
    for (const c of channels) c.close();
    await until('every stream reopened', () => reconnects.length === sidecars.length);
    // A new stream from a new connection (a new client port), which resumes from what it holds.
    const renewed = () =>
      [...streams()].filter(([node, s]) => {
        const old = before.get(node);
        return old && s.streamId !== old.streamId && s.peer !== old.peer;
      }).length;
    await until('a new stream from every sidecar', () => renewed() === mesh.sidecars.length);
    await until('every sidecar steady', () => steadySidecars(plane.cp) === mesh.sidecars.length);
    expect(sidecars.map((s) => s.reconnects)).toEqual(sidecars.map(() => 1));
  });

  it('stop reading when stalled: the change reaches the others, never the stalled one', async () => {
    const [key, consumers] = [...mesh.consumers].find(([k, c]) => mesh.consulKeys.has(k) && c.length > 1)!;
    const stalled = sidecars.find((s) => s.spec.nodeId === consumers[0])!;
    stalled.stall();
    await plane.cp.controlPlane.updateEndpoints([
      moveFirstEndpoint(mesh.endpoints.get(key)!, MARKER_BASE + 6),
    ]);
    const saw = () => new Set(markers.filter(([, m]) => m === 6).map(([node]) => node));
    const others = consumers.filter((n) => n !== stalled.spec.nodeId);
    await until('the marker at every other consumer', () => others.every((n) => saw().has(n)));
    await new Promise((r) => setTimeout(r, 300));
    expect(saw().has(stalled.spec.nodeId)).toBe(false);
    expect(steadySidecars(plane.cp)).toBe(mesh.sidecars.length - 1);
  });
});

describe('simulated sidecars over plaintext HTTP/2 (as bench/responsive.ts runs them)', () => {
  it('subscribe to everything and ACK it, several streams on one connection', async () => {
    const small = generateMesh({ services: 6, sidecars: 4, upstreamsPerService: 2, seed: 3 });
    const plaintext = await startMeshPlane(small, false, 'sim-test-plaintext');
    const channel = new H2Channel({ address: plaintext.target });
    const events: SidecarEvents = {
      marker: () => undefined,
      reconnect: (_, reason) => reconnects.push(reason),
    };
    const open = small.sidecars.map((spec) =>
      spec.transport === 'delta'
        ? new DeltaSimulatedSidecar(spec, channel, events)
        : new SimulatedSidecar(spec, channel, events),
    );
    try {
      open.forEach((s) => s.open());
      await until('every sidecar steady', () => steadySidecars(plaintext.cp) === small.sidecars.length);
      expect(open.map((s) => s.reconnects)).toEqual(open.map(() => 0));
    } finally {
      open.forEach((s) => s.close());
      channel.close();
      await plaintext.cp.stop();
    }
  });
});
