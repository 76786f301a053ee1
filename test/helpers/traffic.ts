// Harness for the traffic-management end-to-end tests (TrafficPolicy): a mesh of services whose
// instances carry labels (`meta`) and localities, backends that record every request they execute
// (and can be told per request to answer late, answer with a status, or reset after reading it),
// bounded request loops with modest concurrency and their tallies, a wait for every sidecar to have
// ACKed what the control plane holds for it, readers of Envoy's config dump and stats, and a
// proxyless grpc-js-xds caller that can send metadata (for hashing on a header).
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { register as registerXds, XdsChannelCredentials } from '@grpc/grpc-js-xds';
import { nodeId } from '../../src/xds/server/node-id.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import { hasVersion } from '../../src/xds/status.ts';
import { PUSH_ORDER } from '../../src/xds/resources/type-urls.ts';
import type { EnvoyHandle } from './envoy.ts';
import { applyYaml, meshManifest, NS, startSidecar, type Sidecar } from './mesh.ts';
import { loopbackAddress } from './ports.ts';
import { httpRequest } from './upstream.ts';
import { waitFor } from './wait.ts';

// ---------------------------------------------------------------------------------------------
// Manifests
// ---------------------------------------------------------------------------------------------

export interface Locality {
  readonly region?: string;
  readonly zone?: string;
}

/** One instance of a service: its own loopback address (app on the same one), labels and locality. */
export interface MeshInstance {
  readonly name: string;
  readonly address: string;
  readonly meta?: Readonly<Record<string, string>>;
  readonly locality?: Locality;
}

/** `prefix-1`, `prefix-2`, … each on a fresh loopback address, with the i-th labels of `metas`. */
export function labelledInstances(
  prefix: string,
  metas: ReadonlyArray<Readonly<Record<string, string>>>,
): MeshInstance[] {
  return metas.map((meta, i) => ({ name: `${prefix}-${i + 1}`, address: loopbackAddress(), meta }));
}

/** A YAML flow map with every value double-quoted: `{ version: "v1" }`. */
export function flowMap(m: Readonly<Record<string, string | number | undefined>>): string {
  const entries = Object.entries(m).filter((e): e is [string, string | number] => e[1] !== undefined);
  const key = (k: string) => (/^[A-Za-z_][\w.-]*$/.test(k) ? k : JSON.stringify(k));
  return `{ ${entries.map(([k, v]) => `${key(k)}: ${typeof v === 'number' ? v : JSON.stringify(v)}`).join(', ')} }`;
}

function instanceYaml(i: MeshInstance): string {
  const parts = [`name: ${i.name}`, `address: ${i.address}`, `appAddress: ${i.address}`];
  if (i.meta && Object.keys(i.meta).length > 0) parts.push(`meta: ${flowMap(i.meta)}`);
  if (i.locality) parts.push(`locality: ${flowMap({ region: i.locality.region, zone: i.locality.zone })}`);
  return `{ ${parts.join(', ')} }`;
}

export interface ServiceSpec {
  readonly name: string;
  readonly namespace?: string;
  /** Flow-style port entries: `{ name: http, port: 15001, targetPort: 8080, protocol: http }`. */
  readonly ports: readonly string[];
  readonly instances: readonly MeshInstance[];
  /** Flow-style upstream entries: `{ service: his, port: http, localPort: 9001 }`. */
  readonly upstreams?: readonly string[];
}

/** A Service manifest whose instances carry their `meta` labels and locality. */
export function serviceYaml(s: ServiceSpec): string {
  const list = (items: readonly string[]) => items.map((i) => `    - ${i}`).join('\n');
  return `apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: ${s.name}, namespace: ${s.namespace ?? NS} }
spec:
  ports:
${list(s.ports)}
  instances:
${list(s.instances.map(instanceYaml))}
${s.upstreams?.length ? `  upstreams:\n${list(s.upstreams)}\n` : ''}`;
}

export interface HttpServiceOptions {
  readonly meshPort: number;
  readonly appPort: number;
  readonly upstreams?: readonly string[];
  readonly protocol?: 'http' | 'grpc';
  readonly portName?: string;
}

/** A Service with one HTTP (or gRPC) port. */
export function httpServiceYaml(
  name: string,
  instances: readonly MeshInstance[],
  o: HttpServiceOptions,
): string {
  const port = `{ name: ${o.portName ?? (o.protocol === 'grpc' ? 'grpc' : 'http')}, port: ${o.meshPort}, targetPort: ${o.appPort}, protocol: ${o.protocol ?? 'http'} }`;
  return serviceYaml({ name, ports: [port], instances, ...(o.upstreams && { upstreams: o.upstreams }) });
}

/** A TrafficPolicy manifest around a `spec` body written as YAML lines indented by two spaces. */
export function trafficPolicyYaml(name: string, spec: string, namespace = NS): string {
  const body = spec
    .replace(/^\n+|\s+$/g, '')
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
  return `apiVersion: clinimesh.io/v1alpha1
kind: TrafficPolicy
metadata: { name: ${name}, namespace: ${namespace} }
spec:
${body}
`;
}

// ---------------------------------------------------------------------------------------------
// Backends that record what they execute
// ---------------------------------------------------------------------------------------------

/** Request headers a test sends to steer a backend (they pass through both sidecars untouched). */
export const BACKEND_HEADERS = {
  /** Names a request so the test can count its executions across all backends (retries included). */
  testId: 'x-test-id',
  /** The backend answers only after this many milliseconds. */
  delayMs: 'x-backend-delay-ms',
  /** The backend answers with this status instead of 200. */
  status: 'x-backend-status',
  /**
   * The backend reads the whole request, records it, then destroys the connection without answering,
   * as long as this request's test id has been executed at most N times (this one included) across
   * the ledger: the first N executions are reset, later ones answered normally.
   */
  resetFirst: 'x-backend-reset-first',
} as const;

export interface Execution {
  readonly backend: string;
  readonly method: string;
  readonly path: string;
  /** The Host (:authority) the backend saw; a mirrored request's carries Envoy's `-shadow` suffix. */
  readonly host: string;
  readonly headers: IncomingHttpHeaders;
  readonly testId: string | undefined;
  readonly body: string;
  readonly at: number;
  readonly outcome: 'answered' | 'reset';
}

/** Every execution of every backend that shares it, in arrival order. */
export class Ledger {
  private readonly entries: Execution[] = [];

  record(e: Execution): void {
    this.entries.push(e);
  }

  all(): readonly Execution[] {
    return this.entries;
  }

  /** Executions of requests sent with `x-test-id: id`, on any backend. */
  forTest(id: string): Execution[] {
    return this.entries.filter((e) => e.testId === id);
  }

  /** Executions per backend name (only those matching `pred`). */
  byBackend(pred: (e: Execution) => boolean = () => true): Map<string, number> {
    const counts = new Map<string, number>();
    for (const e of this.entries) if (pred(e)) counts.set(e.backend, (counts.get(e.backend) ?? 0) + 1);
    return counts;
  }

  count(pred: (e: Execution) => boolean = () => true): number {
    return this.entries.filter(pred).length;
  }
}

/** What a backend answers (JSON). */
export interface BackendAnswer {
  served_by: string;
  method: string;
  path: string;
  host: string;
}

export interface Backend {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** Requests this backend executed (read the whole request of); read it live. */
  readonly count: number;
  /** Requests being executed right now (received, not yet answered or reset). */
  readonly inFlight: number;
  readonly maxInFlight: number;
  readonly executions: readonly Execution[];
  close(): Promise<void>;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * An HTTP backend answering 200 with `BackendAnswer` JSON, steered per request by `BACKEND_HEADERS`.
 * Every executed request is recorded here and in `ledger` (shared by a test's backends).
 */
export async function startBackend(o: {
  name: string;
  host: string;
  port: number;
  ledger: Ledger;
}): Promise<Backend> {
  const { name, host, ledger } = o;
  const executions: Execution[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let inFlight = 0;
  let maxInFlight = 0;
  const server = createServer((req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const testId = header(req.headers, BACKEND_HEADERS.testId);
      const resetFirst = Number(header(req.headers, BACKEND_HEADERS.resetFirst) ?? 0);
      const seen = testId === undefined ? 0 : ledger.forTest(testId).length;
      const reset = resetFirst > 0 && testId !== undefined && seen < resetFirst;
      const e: Execution = {
        backend: name,
        method: req.method ?? '',
        path: req.url ?? '',
        host: req.headers.host ?? '',
        headers: req.headers,
        testId,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
        outcome: reset ? 'reset' : 'answered',
      };
      executions.push(e);
      ledger.record(e);
      if (reset) {
        inFlight--;
        req.socket.destroy();
        return;
      }
      const answer = () => {
        inFlight--;
        if (res.destroyed) return;
        const status = Number(header(req.headers, BACKEND_HEADERS.status) ?? 200);
        const body: BackendAnswer = { served_by: name, method: e.method, path: e.path, host: e.host };
        res.writeHead(status, {
          'content-type': 'application/json',
          ...(testId === undefined ? {} : { [BACKEND_HEADERS.testId]: testId }),
        });
        res.end(JSON.stringify(body));
      };
      const delay = Number(header(req.headers, BACKEND_HEADERS.delayMs) ?? 0);
      if (delay > 0) {
        const t = setTimeout(() => {
          timers.delete(t);
          answer();
        }, delay);
        timers.add(t);
      } else answer();
    });
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: o.port }, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
  return {
    name,
    host,
    port,
    get count() {
      return executions.length;
    },
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    executions,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Requests, loops and tallies
// ---------------------------------------------------------------------------------------------

/** One request's outcome as the calling application saw it; never thrown. */
export interface Shot {
  readonly status: number;
  /** `served_by` of a 200 answer. */
  readonly servedBy: string | undefined;
  readonly ms: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** Set when no response came at all (connection refused/reset, timeout); status is then 0. */
  readonly error: string | undefined;
}

export interface ShotOptions {
  method?: string;
  headers?: OutgoingHttpHeaders;
  body?: string;
  timeoutMs?: number;
}

/** One request on a fresh connection (like `httpRequest`), resolved with its outcome even on error. */
export async function shoot(url: string, o: ShotOptions = {}): Promise<Shot> {
  const start = performance.now();
  try {
    const res = await httpRequest(url, { timeoutMs: 10_000, ...o });
    let servedBy: string | undefined;
    if (res.status === 200) {
      try {
        servedBy = (JSON.parse(res.body) as Partial<BackendAnswer>).served_by;
      } catch {
        servedBy = undefined;
      }
    }
    return {
      status: res.status,
      servedBy,
      ms: performance.now() - start,
      headers: res.headers,
      body: res.body,
      error: undefined,
    };
  } catch (err) {
    return {
      status: 0,
      servedBy: undefined,
      ms: performance.now() - start,
      headers: {},
      body: '',
      error: err instanceof Error ? err.message : String(err),
    };
  }
}

export interface LoadOptions {
  /** How many requests at most. */
  readonly total: number;
  readonly concurrency: number;
  /** Stop starting requests after this long (the test fails on a short count, not by hanging). */
  readonly maxMs: number;
}

/** `total` requests, `concurrency` at a time, each made by `send(i)`; bounded in count and time. */
export async function runLoad(send: (i: number) => Promise<Shot>, o: LoadOptions): Promise<Shot[]> {
  const loop = startLoop(send, o);
  return loop.done;
}

export interface Loop {
  /** Shots so far, in completion order; read it live. */
  readonly shots: readonly Shot[];
  /** Stop starting requests; resolves with every shot once the in-flight ones finish. */
  stop(): Promise<Shot[]>;
  /** Resolves when `total` were sent, `maxMs` passed, or stop() was called, and all have finished. */
  readonly done: Promise<Shot[]>;
}

/** A request loop running in the background until stopped, `total` reached or `maxMs` passed. */
export function startLoop(send: (i: number) => Promise<Shot>, o: LoadOptions): Loop {
  const shots: Shot[] = [];
  const deadline = Date.now() + o.maxMs;
  let next = 0;
  let stopped = false;
  const worker = async () => {
    while (!stopped && next < o.total && Date.now() < deadline) {
      const i = next++;
      shots.push(await send(i));
    }
  };
  const done = Promise.all(Array.from({ length: Math.max(1, o.concurrency) }, worker)).then(() => shots);
  return {
    shots,
    done,
    stop: () => {
      stopped = true;
      return done;
    },
  };
}

/** Counts of `key(shot)` (default: who served it, `status <n>` for a non-200, `error` for none). */
export function tally<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) {
    const k = key(item);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

export const outcome = (s: Shot): string =>
  s.status === 200 ? (s.servedBy ?? '?') : s.status === 0 ? `error: ${s.error ?? ''}` : `status ${s.status}`;

/** The shots that did not get a 200, described, for an assertion message. */
export function failures(shots: readonly Shot[]): string[] {
  return shots
    .filter((s) => s.status !== 200)
    .map((s) => (s.status === 0 ? `error ${s.error ?? ''}` : `${s.status} ${s.body.slice(0, 120)}`));
}

/** Percentage (0..100) of the counted items whose key is in `keys`. */
export function percentOf(counts: ReadonlyMap<string, number>, keys: readonly string[]): number {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  const part = keys.reduce((a, k) => a + (counts.get(k) ?? 0), 0);
  return (100 * part) / total;
}

// ---------------------------------------------------------------------------------------------
// Control plane and data plane in sync
// ---------------------------------------------------------------------------------------------

/**
 * Waits until every node's open xDS stream has the version the control plane holds for it of every
 * type it subscribed to (ACKed or held), and none of those types' last word was a NACK of it.
 */
export async function waitForSync(
  cp: RunningControlPlane,
  nodes: readonly string[],
  what = 'sidecars to ACK the latest config',
  timeoutMs = 15_000,
): Promise<void> {
  await waitFor(
    async () => {
      for (const node of nodes) {
        const open = cp.statuses.all().filter((s) => s.nodeId === node && s.disconnectedAt === undefined);
        if (open.length === 0) throw new Error(`${node}: no open xDS stream`);
        for (const typeUrl of PUSH_ORDER) {
          const snapshot = cp.cache.get(node, typeUrl);
          if (!snapshot) continue;
          const subscribed = open.map((s) => s.types.get(typeUrl)).filter((t) => t !== undefined);
          if (subscribed.length === 0) continue;
          if (!subscribed.some((t) => hasVersion(t, snapshot.version))) {
            const nack = subscribed.find((t) => t.lastNack?.version === snapshot.version)?.lastNack;
            if (nack) throw new Error(`${node} NACKed ${typeUrl} ${snapshot.version}: ${nack.error}`);
            const seen = subscribed.map(
              (t) =>
                `sent ${t.sentVersion ?? '-'}, acked ${t.ackedVersion ?? t.heldVersion ?? '-'}${t.pendingNonce ? `, nonce ${t.pendingNonce} unanswered` : ''}`,
            );
            throw new Error(`${node}: ${typeUrl} not yet at ${snapshot.version} (${seen.join('; ')})`);
          }
        }
      }
      return true;
    },
    { what, timeoutMs },
  );
}

/** The NACKs recorded on the open streams of these nodes (`node type: error`). */
export function nacks(cp: RunningControlPlane, nodes: readonly string[]): string[] {
  return cp.statuses
    .all()
    .filter((s) => nodes.includes(s.nodeId))
    .flatMap((s) =>
      [...s.types.entries()].flatMap(([t, st]) =>
        st.lastNack ? [`${s.nodeId} ${t}: ${st.lastNack.error}`] : [],
      ),
    );
}

/** A JSON object of Envoy's config dump, as loosely typed as it is. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonMap = { [key: string]: JsonValue };

/** Envoy's active dynamic clusters (the `cluster` of each `/config_dump?resource=dynamic_active_clusters` entry). */
export async function activeClusters(envoy: EnvoyHandle): Promise<JsonMap[]> {
  const dump = await envoy.adminJson<{ configs?: Array<{ cluster?: JsonMap }> }>(
    '/config_dump?resource=dynamic_active_clusters',
  );
  return (dump.configs ?? []).flatMap((c) => (c.cluster ? [c.cluster] : []));
}

/** Envoy's dynamic route configurations. */
export async function routeConfigs(envoy: EnvoyHandle): Promise<JsonMap[]> {
  const dump = await envoy.adminJson<{ configs?: Array<{ route_config?: JsonMap }> }>(
    '/config_dump?resource=dynamic_route_configs',
  );
  return (dump.configs ?? []).flatMap((c) => (c.route_config ? [c.route_config] : []));
}

/** Envoy's active dynamic listeners. */
export async function activeListeners(envoy: EnvoyHandle): Promise<JsonMap[]> {
  const dump = await envoy.adminJson<{ configs?: Array<{ active_state?: { listener?: JsonMap } }> }>(
    '/config_dump?resource=dynamic_listeners',
  );
  return (dump.configs ?? []).flatMap((c) => (c.active_state?.listener ? [c.active_state.listener] : []));
}

/** Sum of the stats whose full name matches `re` (RE2 for Envoy's filter, then JS for the sum). */
export async function statSum(
  envoy: EnvoyHandle,
  re: string,
): Promise<{ sum: number; stats: Record<string, number> }> {
  const stats = await envoy.stats(re);
  const own = new RegExp(re);
  const matching = Object.fromEntries(Object.entries(stats).filter(([k]) => own.test(k)));
  return { sum: Object.values(matching).reduce((a, b) => a + b, 0), stats: matching };
}

/** Hosts per cluster of every cluster whose name contains `part` (e.g. `his.clinical`). */
export async function hostsOf(envoy: EnvoyHandle, part: string): Promise<Record<string, string[]>> {
  const clusters = await envoy.clusters();
  return Object.fromEntries(
    clusters
      .filter((c) => c.name.includes(part))
      .map((c) => [
        c.name,
        c.hosts.map((h) => `${h.address}${h.healthy ? '' : ` (${h.healthFlags.join(',')})`}`),
      ]),
  );
}

// ---------------------------------------------------------------------------------------------
// A mesh for one test file
// ---------------------------------------------------------------------------------------------

export interface Workload {
  readonly service: string;
  readonly instance: MeshInstance;
}

export interface TrafficMeshOptions {
  /** Every manifest but the Mesh (added here), as YAML documents joined by `---`. */
  readonly yaml: string;
  /** A sidecar per workload (callers and destinations alike). */
  readonly sidecars: readonly Workload[];
  /** An HTTP backend on each instance's address and this port (the service's targetPort). */
  readonly backends?: ReadonlyArray<Workload & { readonly port: number }>;
}

/**
 * One control plane, its sidecars and backends, shared by the tests of a file. Create it
 * synchronously, start it in beforeAll, stop it in afterAll: stop() ends whatever did start.
 */
export class TrafficMesh {
  cp: RunningControlPlane | undefined;
  readonly ledger = new Ledger();
  readonly sidecars = new Map<string, Sidecar>();
  readonly backends = new Map<string, Backend>();
  private readonly extra: Array<() => unknown> = [];

  get controlPlane(): RunningControlPlane {
    if (!this.cp) throw new Error('the mesh is not started');
    return this.cp;
  }

  async start(o: TrafficMeshOptions): Promise<void> {
    this.cp = await startControlPlane({
      trustDomain: 'hospital.local',
      xdsPort: 0,
      xdsRestPort: 0,
      adminPort: 0,
    });
    await applyYaml(this.cp, [meshManifest, o.yaml].join('---\n'));
    for (const b of o.backends ?? []) {
      this.backends.set(
        b.instance.name,
        await startBackend({
          name: b.instance.name,
          host: b.instance.address,
          port: b.port,
          ledger: this.ledger,
        }),
      );
    }
    const cp = this.cp;
    await Promise.all(
      o.sidecars.map(async (w) => {
        this.sidecars.set(w.instance.name, await startSidecar(cp, w.service, w.instance.name));
      }),
    );
  }

  /** Something else to end in stop() (a proxyless client, an agent). */
  onStop(fn: () => unknown): void {
    this.extra.push(fn);
  }

  sidecar(instance: string): Sidecar {
    const s = this.sidecars.get(instance);
    if (!s) throw new Error(`no sidecar for ${instance}`);
    return s;
  }

  backend(instance: string): Backend {
    const b = this.backends.get(instance);
    if (!b) throw new Error(`no backend for ${instance}`);
    return b;
  }

  /** Stops one instance's application (its sidecar keeps running and answers 503 for it). */
  async stopBackend(instance: string): Promise<void> {
    await this.backend(instance).close();
  }

  /** Starts one instance's application again on the same address and port (after stopBackend). */
  async restartBackend(instance: string): Promise<Backend> {
    const old = this.backend(instance);
    const again = await startBackend({ name: old.name, host: old.host, port: old.port, ledger: this.ledger });
    this.backends.set(instance, again);
    return again;
  }

  envoys(): EnvoyHandle[] {
    return [...this.sidecars.values()];
  }

  /** Applies YAML (no Mesh needed) and returns the control plane's answer. */
  apply(yaml: string, file = 'traffic.yaml') {
    return applyYaml(this.controlPlane, yaml, file);
  }

  /** Waits until these nodes have ACKed what the control plane holds for them. */
  waitForSync(nodes: readonly string[], timeoutMs = 15_000): Promise<void> {
    return waitForSync(this.controlPlane, nodes, `${nodes.join(', ')} to ACK the latest config`, timeoutMs);
  }

  /** Node ids of the given instances of a service. */
  static node(service: string, instance: string, namespace = NS): string {
    return nodeId({ namespace, service, instance });
  }

  async stop(): Promise<void> {
    for (const fn of this.extra.splice(0)) {
      try {
        await fn();
      } catch {
        // best effort: the rest must still stop
      }
    }
    await Promise.all([...this.sidecars.values()].map((s) => s.stop()));
    await Promise.all([...this.backends.values()].map((b) => b.close()));
    await this.cp?.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// A proxyless gRPC caller that can send metadata
// ---------------------------------------------------------------------------------------------

export interface QueryAnswer {
  served_by: string;
  study: string;
  xfcc: string;
}

const jsonCodec = {
  serialize: (value: unknown): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer): unknown => JSON.parse(bytes.toString('utf8')),
};

/** The same method as test/helpers/grpc.ts's imaging server (`/clinimesh.test.Imaging/Query`, JSON). */
const queryMethod = {
  path: '/clinimesh.test.Imaging/Query',
  requestStream: false,
  responseStream: false,
  requestSerialize: jsonCodec.serialize,
  responseDeserialize: jsonCodec.deserialize,
} as const;

export interface ProxylessCaller {
  /** One call with the given metadata; rejects with the gRPC error. */
  query(study: string, metadata?: Readonly<Record<string, string>>, timeoutMs?: number): Promise<QueryAnswer>;
  close(): void;
}

/** A grpc-js-xds channel to `xds:///target` with its own bootstrap (per-channel option). */
export function proxylessCaller(target: string, bootstrap: object): ProxylessCaller {
  registerXds();
  const client = new grpc.Client(
    `xds:///${target}`,
    new XdsChannelCredentials(grpc.credentials.createInsecure()),
    {
      'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(bootstrap),
    },
  );
  return {
    query: (study, metadata = {}, timeoutMs = 5_000) =>
      new Promise<QueryAnswer>((resolve, reject) => {
        const md = new grpc.Metadata();
        for (const [k, v] of Object.entries(metadata)) md.set(k, v);
        client.makeUnaryRequest<{ study: string }, QueryAnswer>(
          queryMethod.path,
          queryMethod.requestSerialize,
          (b: Buffer) => queryMethod.responseDeserialize(b) as QueryAnswer,
          { study },
          md,
          { deadline: Date.now() + timeoutMs },
          (err, res) => (err || !res ? reject(err ?? new Error('empty response')) : resolve(res)),
        );
      }),
    close: () => client.close(),
  };
}
