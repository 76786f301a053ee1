// Wires the pieces together; nothing else does. `startControlPlane` is what `npm start` (the CLI's
// `serve`) and the end-to-end tests run.
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAdminListener, type AdminCredential } from './admin/index.ts';
import { CertificateAuthority } from './ca/index.ts';
import { ConsulSync } from './discovery/consul-sync.ts';
import { log } from './log.ts';
import { Attestor } from './identity/attestation.ts';
import { identityApi } from './identity/http.ts';
import { JoinTokens } from './identity/join-tokens.ts';
import { KubernetesAttestor } from './identity/k8s-attestor.ts';
import type { KubernetesConfig } from './identity/k8s-config.ts';
import { rootPin } from './identity/root-pin.ts';
import { ControlPlaneIdentity } from './identity/serving-identity.ts';
import { TrustDomains } from './identity/trust-domains.ts';
import { WorkloadSigner } from './identity/workload-signer.ts';
import { authenticateSidecar } from './xds/server/xds-auth.ts';
import { EndpointBatcher, type BatcherOptions } from './discovery/endpoint-batcher.ts';
import { createConsulClient } from './consul/http.ts';
import { consulAddressUrl, type ConsulConfig } from './consul/config.ts';
import { ConsulRegistrar } from './discovery/consul-register.ts';
import { ConsulWatcher } from './discovery/consul.ts';
import { rotateRoot } from './identity/root-rotation.ts';
import {
  openSharedStore,
  type SharedStore,
  startReplication,
  type ReplicaOptions,
  type Replication,
} from './identity/replicas.ts';
import { Metrics, timeApplies } from './admin/metrics.ts';
import { heldCertificateExpiries } from './identity/certificate-expiries.ts';
import { ControlPlane } from './xds/plan/control-plane.ts';
import { Reconciler } from './xds/plan/reconciler.ts';
import { ClinimeshError, type Result } from './errors.ts';
import { loadManifests } from './manifest/index.ts';
import { serviceKey, type Manifest } from './manifest/types.ts';
import type { CommitNote, StateBackend } from './store/backend.ts';
import { ConsulBackend, DEFAULT_STORE_PREFIX } from './store/consul-backend.ts';
import { FileStore } from './store/file-store.ts';
import { MemoryBackend } from './store/memory-backend.ts';
import { StateStore } from './store/store.ts';
import { SnapshotCache } from './xds/cache/snapshot.ts';
import { startXdsServers, type XdsServers } from './xds/server/index.ts';
import { StatusRegistry } from './xds/status.ts';

export interface ControlPlaneOptions {
  readonly host?: string;
  readonly xdsPort?: number;
  readonly xdsRestPort?: number;
  /** The admin API's own HTTPS listener (default 127.0.0.1:19000); `host` governs xDS only. */
  readonly adminHost?: string;
  readonly adminPort?: number;
  /** Host names (`name` or `name:port`) the admin API accepts in Host/Origin besides its own and loopback. */
  readonly adminAllowedHosts?: readonly string[];
  /** Serve GET /metrics without a token. */
  readonly metricsPublic?: boolean;
  /**
   * The trust domain of a CA made on this start; default the Mesh among `manifests`, else the
   * stored mesh's. An existing CA keeps its own, and a Mesh that disagrees is refused.
   */
  readonly trustDomain?: string;
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
  /** Lifetime of a node agent's credential to the control plane (default 24 h). */
  readonly agentCredentialTtlMs?: number;
  /**
   * Make a new CA when none is found although the mesh already has state (every workload must then
   * be re-attested). Without it that is a hard error: a lost CA must never pass silently.
   */
  readonly newCa?: boolean;
  /** Kubernetes service-account token attestation (TokenReview); undefined: join tokens only. */
  readonly kubernetes?: KubernetesConfig;
  /** Consul to discover (and register) services through; undefined: manifests only. */
  readonly consul?: ConsulConfig;
  /**
   * Mutual TLS on the xDS ports, sidecars proving their identity with the credential their node
   * agent holds (default true). false serves plaintext xDS, on loopback only, for local experiments.
   */
  readonly xdsTls?: boolean;
  /** A plaintext gRPC xDS port on 127.0.0.1 for proxyless clients in tests; off by default. */
  readonly plaintextXdsPort?: number;
  /** Endpoint-change coalescing (see EndpointBatcher); defaults 25 ms debounce, 50 ms at most. */
  readonly endpointBatch?: BatcherOptions;
  readonly longPollMs?: number;
  /** How long a disconnected sidecar's state and status are kept for its return (default 60 s). */
  readonly disconnectGraceMs?: number;
  /**
   * `consul`: several replicas share state through Consul KV (the `consul` options say where): desired
   * state, history and tokens, the CA with its keys sealed by `caKekFile`, and a leader for singleton
   * duties. Default `file` (the data dir's files, or memory without one).
   */
  readonly store?: 'file' | 'consul';
  /** KV prefix under which clinimesh keeps its state (default `clinimesh`). */
  readonly storePrefix?: string;
  /** The key-encryption key for the CA's keys in a shared store: a file of 32 random bytes. */
  readonly caKekFile?: string;
  /** This replica's name, for leadership and logs (default the host name). */
  readonly replicaName?: string;
}

export interface RunningControlPlane {
  readonly controlPlane: ControlPlane;
  /** The loopback plaintext xDS port, when one was asked for. */
  readonly plaintextXdsPort?: number;
  /** Whether sidecars must connect with TLS (and a bootstrap credential). */
  readonly xdsTls: boolean;
  readonly ca: CertificateAuthority;
  /** One-time join tokens for node agents (the admin API creates them; tests may too). */
  readonly joinTokens: JoinTokens;
  readonly signer: WorkloadSigner;
  readonly cache: SnapshotCache;
  readonly statuses: StatusRegistry;
  readonly metrics: Metrics;
  readonly host: string;
  readonly xdsPort: number;
  readonly xdsRestPort: number;
  readonly adminPort: number;
  /** `https://…` */
  readonly adminUrl: string;
  /** The bootstrap admin credential (made on first start, or found valid in the data dir). */
  readonly adminCredential: AdminCredential | undefined;
  /** `<data-dir>/admin-credential.json` when it was written there. */
  readonly adminCredentialPath: string | undefined;
  stop(): Promise<void>;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function replicaOptionsOf(o: ControlPlaneOptions): ReplicaOptions {
  const missing = (field: string, message: string) =>
    new ClinimeshError([{ code: 'CONSUL', field, message }]);
  if (!o.consul) throw missing('store', '--store consul needs Consul: --consul-addr or CONSUL_HTTP_ADDR');
  if (!o.caKekFile)
    throw missing(
      'ca-kek-file',
      '--store consul keeps the CA in Consul sealed with a key: give --ca-kek-file',
    );
  return {
    consul: o.consul,
    prefix: storePrefix(o),
    kekFile: o.caKekFile,
    replica: o.replicaName ?? hostname(),
  };
}

function orThrow<T>(r: Result<T>): T {
  if (!r.ok) throw new ClinimeshError(r.errors);
  return r.value;
}

/** The history's author for manifests applied at start (`serve -f`). */
const START_UP: CommitNote = { author: { tokenId: '-', name: 'start-up' }, role: 'system', action: 'apply' };

/** `clinimesh`: the KV prefix without its trailing slash (keys are `<prefix>/state/…`, `<prefix>/ca/…`). */
function storePrefix(o: ControlPlaneOptions): string {
  return (o.storePrefix ?? DEFAULT_STORE_PREFIX).replace(/\/+$/, '');
}

function openBackend(o: ControlPlaneOptions, shared: SharedStore | undefined): StateBackend {
  if (shared && o.consul)
    return new ConsulBackend(shared.kv, {
      address: consulAddressUrl(o.consul.address),
      prefix: storePrefix(o),
    });
  return o.dataDir ? new FileStore(o.dataDir) : new MemoryBackend();
}

/**
 * Manifests given at start, as one apply when the backend takes them in one commit, else in parts
 * that each validate on their own (meshes, then services, then policies that refer to them).
 */
function importParts(manifests: readonly Manifest[], max: number | undefined): Manifest[][] {
  if (!manifests.length) return [];
  if (max === undefined || manifests.length <= max) return [[...manifests]];
  const order = ['Mesh', 'ExternalService', 'Service', 'TrafficPolicy', 'AccessPolicy'];
  const sorted = [...manifests].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
  const parts: Manifest[][] = [];
  for (let i = 0; i < sorted.length; i += max) parts.push(sorted.slice(i, i + max));
  return parts;
}

export async function startControlPlane(o: ControlPlaneOptions = {}): Promise<RunningControlPlane> {
  const host = o.host ?? '127.0.0.1';
  const metrics = new Metrics();
  const statuses = new StatusRegistry(metrics.statusEvents(), { keepClosedMs: o.disconnectGraceMs });
  const cache = new SnapshotCache();
  const replicaOptions = o.store === 'consul' ? replicaOptionsOf(o) : undefined;
  const shared = replicaOptions && orThrow(await openSharedStore(replicaOptions));
  const backend = openBackend(o, shared);
  const store = new StateStore(backend);
  orThrow(await store.restore());
  const reconciler = new Reconciler(cache);
  // Without a data dir the CA is as ephemeral as the state: a temporary one, removed at stop.
  const tempCaDir = o.caDir || o.dataDir ? undefined : await mkdtemp(join(tmpdir(), 'clinimesh-ca-'));
  const caDir = o.caDir ?? (o.dataDir ? join(o.dataDir, 'ca') : tempCaDir!);
  const hasState = store.current().revision > 0;
  const initial = o.manifests?.length ? orThrow(await loadManifests(o.manifests)) : [];
  const initialMesh = initial.find((m) => m.kind === 'Mesh');
  const caTrustDomain =
    o.trustDomain ??
    (initialMesh?.kind === 'Mesh' ? initialMesh.trustDomain : store.current().mesh.trustDomain);
  const caOptions = {
    trustDomain: caTrustDomain,
    workloadTtlMs: o.workloadCertTtlMs,
    create: !hasState || o.newCa === true,
  };
  const ca = orThrow(
    shared
      ? await CertificateAuthority.openIn(shared.caStore, caOptions)
      : await CertificateAuthority.open({ dir: caDir, ...caOptions }),
  );
  reconciler.useSecrets({ trustBundlePem: () => ca.trustBundle().join('\n') });
  const trustDomains = new TrustDomains(ca);
  const trustDomain = () => trustDomains.current();
  const xdsTls = o.xdsTls ?? true;
  if (!xdsTls && !isLoopback(host)) {
    throw new ClinimeshError([
      { code: 'PERMISSION_DENIED', field: 'host', message: `plaintext xDS binds loopback only, not ${host}` },
    ]);
  }
  // The control plane's own identity serves xDS and the admin API; it follows root rotations.
  const serving = new ControlPlaneIdentity(ca, ['localhost', host]);
  // Join tokens, attestation and renewal alike: only for Services the applied manifests declare.
  const declared = (namespace: string, service: string) =>
    store.current().services.has(serviceKey({ namespace, name: service }));
  const joinTokens = orThrow(
    await JoinTokens.open({
      records: backend.records('join-tokens'),
      rootPin: () => rootPin(ca.trustBundle()[0]!),
      knownService: declared,
    }),
  );
  const signer = new WorkloadSigner(ca, {
    workloadTtlMs: o.workloadCertTtlMs,
    xdsTtlMs: o.agentCredentialTtlMs,
  });
  const attestor = new Attestor(
    joinTokens,
    declared,
    o.kubernetes ? new KubernetesAttestor(o.kubernetes) : undefined,
  );
  const controlPlane = new ControlPlane(
    store,
    reconciler,
    xdsTls ? (ref, ctx) => authenticateSidecar(trustDomains.accepted(), ref, ctx) : undefined,
    trustDomain,
    {
      releaseAfterMs: o.disconnectGraceMs,
    },
  );
  timeApplies(controlPlane, metrics);
  // A commit made on another replica is planned and published here like one of ours.
  store.subscribe((_state, _touched, origin) => {
    if (origin.remote) void controlPlane.followStore();
  });

  const batcher = new EndpointBatcher((sets) => controlPlane.updateEndpoints(sets), o.endpointBatch);
  let consul: ConsulSync | undefined;
  if (o.consul) {
    const client = orThrow(await createConsulClient(o.consul));
    consul = new ConsulSync(new ConsulWatcher({ client, sink: batcher }), new ConsulRegistrar(client));
    const sync = consul;
    // A commit landing during shutdown finds the watcher stopped: logged, not an unhandled rejection.
    store.subscribe((state, touched) =>
      sync.sync(state, touched).catch((e: unknown) => log.warn({ error: String(e) }, 'consul sync failed')),
    );
  }
  orThrow(await controlPlane.start());
  for (const part of importParts(initial, backend.maxChangesPerCommit))
    orThrow(await controlPlane.apply(part, false, START_UP));
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
    tls: xdsTls ? serving : undefined,
    plaintextGrpcPort: o.plaintextXdsPort,
    routes: xdsTls
      ? identityApi({ attestor, signer, trustDomains: () => trustDomains.accepted(), declared })
      : undefined,
  });
  const rotation = {
    ca,
    signer,
    reconciler,
    cache,
    statuses,
    onRootsChanged: (phase: 'begin' | 'complete') =>
      phase === 'begin' ? serving.refreshTrust() : serving.refresh(),
  };
  let replication: Replication | undefined;
  const leaderOnly = <T>(what: string, duty: () => Promise<Result<T>>) =>
    replication ? replication.asLeader(what, duty) : duty();
  metrics.watchLeadership(() => replication?.isLeader() ?? true);
  metrics.watchConsul(() => consul?.status() ?? []);
  metrics.watchSidecars(() => statuses.all());
  metrics.watchCertificates(() => heldCertificateExpiries(ca, serving));
  const admin = orThrow(
    await startAdminListener({
      deps: {
        controlPlane,
        cache,
        statuses,
        metrics,
        ready: () => ready,
        ca: {
          describe: () => ca.describe(),
          // Replicas record each step in Consul and run it on the leader only.
          rotateRoot: (phase) => (replication ? replication.rotateRoot(phase) : rotateRoot(rotation, phase)),
          migrateTrustDomain: (next) =>
            leaderOnly('trust-domain migration', () =>
              trustDomains.migrate(next, { controlPlane, signer, serving }),
            ),
        },
        joinTokens,
        extraStatus: () => ({
          ...(consul && { consul: consul.status() }),
          ...(replication && { replication: replication.status() }),
        }),
      },
      identity: serving,
      host: o.adminHost ?? '127.0.0.1',
      port: o.adminPort ?? 19000,
      dataDir: o.dataDir,
      store: { tokens: backend.records('admin-tokens'), history: backend.history },
      allowedHosts: o.adminAllowedHosts,
      metricsPublic: o.metricsPublic,
    }),
  );
  if (replicaOptions && shared)
    replication = orThrow(await startReplication(replicaOptions, shared, rotation, serving, admin.url));
  ready = true;
  return {
    controlPlane,
    plaintextXdsPort: xds.plaintextGrpcPort,
    xdsTls,
    ca,
    joinTokens,
    signer,
    cache,
    statuses,
    metrics,
    host,
    xdsPort: xds.grpcPort,
    xdsRestPort: xds.restPort,
    adminPort: admin.port,
    adminUrl: admin.url,
    get adminCredential() {
      return admin.credential();
    },
    adminCredentialPath: admin.credentialPath,
    stop: async () => {
      ready = false;
      await replication?.stop();
      shared?.http.close();
      serving.stop();
      consul?.stop();
      batcher.stop();
      controlPlane.stop();
      store.close();
      joinTokens.close();
      await Promise.all([admin.close(), xds.close()]);
      await backend.close();
      if (tempCaDir) await rm(tempCaDir, { recursive: true, force: true });
    },
  };
}
