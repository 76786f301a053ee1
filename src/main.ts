// Wires the pieces together; nothing else does. `startControlPlane` is what `npm start` (the CLI's
// `serve`) and the end-to-end tests run.
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAdminServer } from './admin/http.ts';
import { CertificateAuthority } from './ca/index.ts';
import { bootstrapCredential } from './control/bootstrap-credential.ts';
import { ConsulSync } from './control/consul-sync.ts';
import { ControlPlaneIdentity } from './control/control-plane-identity.ts';
import { authenticateSidecar } from './control/xds-auth.ts';
import { EndpointBatcher, type BatcherOptions } from './control/endpoint-batcher.ts';
import { Identities } from './control/identities.ts';
import { createConsulClient } from './discovery/consul-client.ts';
import type { ConsulConfig } from './discovery/consul-config.ts';
import { ConsulRegistrar } from './discovery/consul-register.ts';
import { ConsulWatcher } from './discovery/consul.ts';
import { rotateRoot } from './control/root-rotation.ts';
import { Metrics } from './admin/metrics.ts';
import { ControlPlane } from './control/control-plane.ts';
import { Reconciler } from './control/reconciler.ts';
import { ClinimeshError, type Result } from './errors.ts';
import { loadManifests } from './manifest/index.ts';
import { FileStore } from './store/file-store.ts';
import { StateStore } from './store/store.ts';
import { SnapshotCache } from './xds/cache/snapshot.ts';
import { startXdsServers, type XdsServers } from './xds/server/index.ts';
import { StatusRegistry } from './xds/status.ts';

export interface ControlPlaneOptions {
  readonly host?: string;
  readonly xdsPort?: number;
  readonly xdsRestPort?: number;
  readonly adminPort?: number;
  /** Files and directories of manifests applied at start (as one atomic apply). */
  readonly manifests?: readonly string[];
  /** Where desired state is persisted; undefined keeps it in memory only. */
  readonly dataDir?: string;
  /**
   * The CA's directory: an operator-brought ca.crt/ca.key, or where one is generated on first start
   * (default `<dataDir>/ca`; without a dataDir, a fresh temporary CA).
   */
  readonly caDir?: string;
  readonly workloadCertTtlMs?: number;
  /** Consul to discover (and register) services through; undefined: manifests only. */
  readonly consul?: ConsulConfig;
  /**
   * Mutual TLS on the xDS ports, sidecars proving their identity with a bootstrap credential
   * (default true). false is for local experiments only.
   */
  readonly xdsTls?: boolean;
  /** A plaintext gRPC xDS port on 127.0.0.1 for proxyless clients in tests; off by default. */
  readonly plaintextXdsPort?: number;
  /** Endpoint-change coalescing; defaults 50 ms debounce, 250 ms at most. */
  readonly endpointBatch?: BatcherOptions;
  readonly longPollMs?: number;
}

export interface RunningControlPlane {
  readonly controlPlane: ControlPlane;
  /** The loopback plaintext xDS port, when one was asked for. */
  readonly plaintextXdsPort?: number;
  /** Whether sidecars must connect with TLS (and a bootstrap credential). */
  readonly xdsTls: boolean;
  readonly ca: CertificateAuthority;
  readonly identities: Identities;
  readonly cache: SnapshotCache;
  readonly statuses: StatusRegistry;
  readonly metrics: Metrics;
  readonly host: string;
  readonly xdsPort: number;
  readonly xdsRestPort: number;
  readonly adminPort: number;
  readonly adminUrl: string;
  stop(): Promise<void>;
}

function orThrow<T>(r: Result<T>): T {
  if (!r.ok) throw new ClinimeshError(r.errors);
  return r.value;
}

export async function startControlPlane(o: ControlPlaneOptions = {}): Promise<RunningControlPlane> {
  const host = o.host ?? '127.0.0.1';
  const metrics = new Metrics();
  const statuses = new StatusRegistry(metrics.statusEvents());
  const cache = new SnapshotCache();
  const store = new StateStore(o.dataDir ? new FileStore(o.dataDir) : undefined);
  orThrow(await store.restore());
  const reconciler = new Reconciler(cache);
  // Without a data dir the CA is as ephemeral as the state: a temporary one, removed at stop.
  const tempCaDir = o.caDir || o.dataDir ? undefined : await mkdtemp(join(tmpdir(), 'clinimesh-ca-'));
  const caDir = o.caDir ?? (o.dataDir ? join(o.dataDir, 'ca') : tempCaDir!);
  const ca = orThrow(await CertificateAuthority.open({ dir: caDir, trustDomain: store.current().mesh.trustDomain, workloadTtlMs: o.workloadCertTtlMs }));
  const identities = new Identities(ca, (nodeId) => reconciler.refreshSecrets(nodeId), () => store.current().mesh.trustDomain);
  reconciler.useSecrets(identities);
  const trustDomain = () => store.current().mesh.trustDomain;
  const xdsTls = o.xdsTls ?? true;
  const serving = xdsTls ? new ControlPlaneIdentity(ca, trustDomain, ['localhost', host]) : undefined;
  let servingDomain = trustDomain();
  store.subscribe((state) => {
    // The serving certificate names the mesh's trust domain; a Mesh that changes it gets a new one.
    if (state.mesh.trustDomain === servingDomain) return;
    servingDomain = state.mesh.trustDomain;
    serving?.refresh();
  });
  const controlPlane = new ControlPlane(store, reconciler, xdsTls ? (ref, ctx) => authenticateSidecar(trustDomain(), ref, ctx) : undefined);
  const batcher = new EndpointBatcher((sets) => controlPlane.updateEndpoints(sets), o.endpointBatch);
  let consul: ConsulSync | undefined;
  if (o.consul) {
    const client = orThrow(await createConsulClient(o.consul));
    consul = new ConsulSync(new ConsulWatcher({ client, sink: batcher }), new ConsulRegistrar(client));
    const sync = consul;
    store.subscribe((state) => void sync.sync(state));
  }
  orThrow(await controlPlane.start());
  if (o.manifests?.length) orThrow(await controlPlane.apply(orThrow(await loadManifests(o.manifests))));
  await consul?.sync(store.current());

  let ready = false;
  const xds: XdsServers = await startXdsServers({
    host,
    grpcPort: o.xdsPort ?? 18000,
    restPort: o.xdsRestPort ?? 18001,
    cache,
    hooks: controlPlane.hooks,
    statuses,
    longPollMs: o.longPollMs,
    tls: serving,
    plaintextGrpcPort: o.plaintextXdsPort,
  });
  const rotation = { ca, identities, reconciler, cache, statuses, onRootsChanged: (phase: 'begin' | 'complete') => (phase === 'begin' ? serving?.refreshTrust() : serving?.refresh()) };
  const admin: Server = createAdminServer({
    controlPlane,
    cache,
    statuses,
    metrics,
    ready: () => ready,
    ca: {
      describe: () => ca.describe(),
      rotateRoot: (phase) => rotateRoot(rotation, phase),
      bootstrapCredential: (namespace, service, publicKeyPem) => bootstrapCredential(ca, store.current(), { namespace, service }, publicKeyPem),
    },
    extraStatus: () => (consul ? { consul: consul.status() } : {}),
  });
  metrics.watchConsul(() => consul?.status() ?? []);
  const adminPort = await new Promise<number>((resolve, reject) => {
    admin.once('error', reject);
    admin.listen(o.adminPort ?? 19000, host, () => {
      const a = admin.address();
      resolve(typeof a === 'object' && a ? a.port : 0);
    });
  });
  ready = true;
  return {
    controlPlane,
    plaintextXdsPort: xds.plaintextGrpcPort,
    xdsTls,
    ca,
    identities,
    cache,
    statuses,
    metrics,
    host,
    xdsPort: xds.grpcPort,
    xdsRestPort: xds.restPort,
    adminPort,
    adminUrl: `http://${host}:${adminPort}`,
    stop: async () => {
      ready = false;
      identities.stop();
      serving?.stop();
      consul?.stop();
      batcher.stop();
      const closed = new Promise<void>((resolve) => admin.close(() => resolve()));
      admin.closeAllConnections();
      await Promise.all([closed, xds.close()]);
      if (tempCaDir) await rm(tempCaDir, { recursive: true, force: true });
    },
  };
}
