// A worker process holding many simulated sidecars, so their CPU is not charged to the control plane
// being measured. Started by the benchmark with `fork`; speaks to it over IPC only (see ipc.ts).
// Each sidecar gets its own HTTP/2 session by default (its own TCP connection and TLS session, as a
// real Envoy has), so the server's per-connection memory is part of what is measured. The gRPC
// streams are spoken over node:http2 directly (grpc-h2.ts), as lean as one load generator can be.
// Sidecars open their streams spread evenly over `rampMs` (a rollout, not one instant), and each
// reopens a failed stream as Envoy does; how often, and why, is reported with the receipts.
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { SimulatedSidecar } from './ads-client.ts';
import { DeltaSimulatedSidecar } from './delta-client.ts';
import { H2Channel } from './grpc-h2.ts';
import { isToWorker, type FromWorker, type Receipt, type ToWorker, type XdsTlsMaterial } from './ipc.ts';
import { cpuMs } from './stats.ts';

// Node's TLS client turns the server's certificate into an object on every connection, for
// checkServerIdentity, which the simulator does not use: OpenSSL has verified the chain. Here that
// costs as much as the handshake; a sidecar of the bench needs none of it.
Object.defineProperty(TLSSocket.prototype, 'getPeerCertificate', { value: () => ({}) });

const sidecars: (SimulatedSidecar | DeltaSimulatedSidecar)[] = [];
const channels: H2Channel[] = [];
let receipts: Receipt[] = [];
/** Failed streams since the last collect, by reason (the gRPC status message, without node ids). */
let reconnects = new Map<string, number>();
const cpuAtStart = process.cpuUsage();
/** One TLS context per service, as all of a service's sidecars prove the same identity here. */
const contexts = new Map<string, SecureContext>();

function reply(m: FromWorker): void {
  process.send?.(m);
}

/**
 * What Envoy offers as a TLS client when its bootstrap sets no tls_params (ours sets none on the xDS
 * cluster): TLS 1.2 at most, X25519 then P-256, its default ECDSA suites first (TlsParameters docs).
 */
const ENVOY_CLIENT_TLS = {
  maxVersion: 'TLSv1.2',
  ecdhCurve: 'X25519:P-256',
  ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384',
} as const;

/** The TLS context a real sidecar of `service` has: its SPIFFE certificate and the mesh's roots. */
function contextFor(service: string, tls: XdsTlsMaterial): SecureContext {
  const own = tls.byService[service];
  if (!own) throw new Error(`no workload certificate for service ${service}`);
  let context = contexts.get(service);
  // Each context is an OpenSSL context (parsing key, chain and roots): once per service.
  if (!context)
    contexts.set(
      service,
      (context = createSecureContext({ ...ENVOY_CLIENT_TLS, ca: tls.ca, key: own.key, cert: own.cert })),
    );
  return context;
}

function start(m: Extract<ToWorker, { kind: 'start' }>): void {
  const events = {
    marker: (nodeId: string, marker: number, at: number) => receipts.push([nodeId, marker, at]),
    reconnect: (_nodeId: string, reason: string) => reconnects.set(reason, (reconnects.get(reason) ?? 0) + 1),
  };
  const opening: (() => void)[] = [];
  let channel: { h2: H2Channel; service: string; streams: number } | undefined;
  for (const spec of m.sidecars) {
    // Streams share a channel only within one service: the channel's certificate is its identity.
    if (!channel || channel.streams >= m.streamsPerChannel || channel.service !== spec.cluster) {
      const h2 = new H2Channel({
        address: m.target,
        ...(m.tls && {
          secureContext: contextFor(spec.cluster, m.tls),
          // The bench dials 127.0.0.1; an IP is not a valid TLS server name (RFC 6066).
          servername: 'localhost',
        }),
      });
      channels.push(h2);
      channel = { h2, service: spec.cluster, streams: 0 };
    }
    channel.streams++;
    const sidecar =
      spec.transport === 'delta'
        ? new DeltaSimulatedSidecar(spec, channel.h2, events)
        : new SimulatedSidecar(spec, channel.h2, events);
    sidecars.push(sidecar);
    opening.push(() => sidecar.open());
  }
  openSpread(opening, m.rampMs);
  reply({ kind: 'opened', streams: sidecars.length });
}

/** Runs `opens` evenly spaced over `rampMs` (all at once when 0), in batches per timer tick. */
function openSpread(opens: readonly (() => void)[], rampMs: number): void {
  if (rampMs <= 0 || opens.length < 2) return opens.forEach((open) => open());
  const t0 = performance.now();
  let next = 0;
  const tick = () => {
    const due = Math.min(opens.length, Math.ceil(((performance.now() - t0) / rampMs) * opens.length));
    while (next < due) opens[next++]!();
    if (next < opens.length) setTimeout(tick, 5);
  };
  tick();
}

function collect(): void {
  const responses = sidecars.reduce((n, s) => n + s.responses, 0);
  reply({
    kind: 'collected',
    receipts,
    reconnects: Object.fromEntries(reconnects),
    responses,
    cpuMs: cpuMs(process.cpuUsage(cpuAtStart)),
    rssBytes: process.memoryUsage().rss,
  });
  receipts = [];
  reconnects = new Map();
}

function stop(): void {
  for (const s of sidecars) s.close();
  for (const c of channels) c.close();
  // Let cancellations flush, but never linger: the parent kills us anyway if we do.
  setTimeout(() => process.exit(0), 200).unref();
}

process.on('message', (m: unknown) => {
  if (!isToWorker(m)) return;
  try {
    if (m.kind === 'start') start(m);
    else if (m.kind === 'prepare') {
      if (m.tls) for (const spec of m.sidecars) contextFor(spec.cluster, m.tls);
      reply({ kind: 'opened', streams: 0 });
    } else if (m.kind === 'collect') collect();
    else if (m.kind === 'stall') {
      for (const s of sidecars) s.stall();
      reply({ kind: 'opened', streams: sidecars.length });
    } else stop();
  } catch (e) {
    reply({ kind: 'failed', message: (e as Error).stack ?? String(e) });
  }
});
// An orphaned worker (parent crashed) must not keep 500 streams open.
process.on('disconnect', () => process.exit(0));
