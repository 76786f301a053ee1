// The node agent (`clinimesh agent`), beside each Envoy as pilot-agent or Consul's local agent are:
// it attests the workload (join token or Kubernetes service-account token), makes its keys here,
// has them signed by CSR, hands them to Envoy through watched files, writes Envoy's bootstrap, and
// renews both its credential to the control plane and the workload certificate well before they
// expire. It follows root rotations (a new bundle is written before any new-root certificate is
// asked for) and, while the control plane is down, keeps what it has and says how long it lasts.
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  XDS_CA_SECRET,
  XDS_CLIENT_SECRET,
  envoyBootstrap,
  type BootstrapTransport,
} from '../bootstrap/envoy-bootstrap.ts';
import { grpcBootstrap } from '../bootstrap/grpc-bootstrap.ts';
import { createCsr } from '../ca/csr.ts';
import { rotationDelayMs } from '../ca/index.ts';
import { ClinimeshError, fail, formatProblem, ok, type Result } from '../errors.ts';
import type { Evidence } from '../identity/attestation.ts';
import { parseJoinToken } from '../identity/join-tokens.ts';
import { rootPin } from '../identity/root-pin.ts';
import type { SignedIdentity, TrustBundleView } from '../identity/workload-signer.ts';
import { WORKLOAD_SECRET } from '../xds/generate/secrets.ts';
import { pinnedRoot, type ClientTls } from './control-plane-client.ts';
import { ControlPlaneAddresses } from './control-plane-addresses.ts';
import {
  ensureSecretDir,
  PEM_FILES,
  readCertificate,
  readTrustBundle,
  writeCertificate,
  writePemFiles,
  writeTrustBundle,
  type CertAndKey,
} from './secret-files.ts';
import { startXdsProxy, type ProxyCredential, type XdsProxy } from './xds-proxy.ts';
import { log as rootLog } from '../log.ts';

/** What the agent logs through: the process logger (JSON lines), or anything with its shape. */
export interface AgentLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/** Tests may pass a plain line sink; each event becomes `message {fields}`. */
function agentLog(log: AgentOptions['log']): AgentLog {
  if (log === undefined) return rootLog.child({ component: 'agent' });
  if (typeof log !== 'function') return log;
  const line = (fields: object, message: string) =>
    log(Object.keys(fields).length ? `${message} ${JSON.stringify(fields)}` : message);
  return { info: line, warn: line };
}

export interface AgentOptions {
  /**
   * The control plane's TLS port for agents and REST xDS, `host:port` (default port 18001): one
   * replica, several (a list, or `a:1,b:2`), or one Kubernetes Service name in front of them. Calls
   * fail over from a replica that cannot be reached to the next.
   */
  readonly controlPlane: string | readonly string[];
  /** How the workload proves itself; read again whenever the agent must re-attest. */
  readonly evidence: () => Evidence | undefined;
  /** Roots to trust on first contact; else the root pinned in the join token. */
  readonly caPem?: string;
  readonly instance?: string;
  /** Where envoy.json and sds/ are written. */
  readonly outDir: string;
  readonly transport?: BootstrapTransport;
  /**
   * Where Envoy reaches xDS, one or several `host:port`; default each control-plane host, port 18000
   * (ADS) or its agent port (REST). Envoy's bootstrap lists every one.
   */
  readonly xdsAddress?: string | readonly string[];
  readonly envoyAdminPort?: number;
  readonly auditLog?: string;
  /** How often the trust bundle is polled (root rotations); default 30 s. */
  readonly bundlePollMs?: number;
  /** Default: the process logger (`src/log.ts`), component agent. */
  readonly log?: AgentLog | ((line: string) => void);
  readonly random?: () => number;
  /**
   * A proxyless gRPC application instead of Envoy: the agent writes PEM files and a gRPC xDS
   * bootstrap (grpc-bootstrap.json) and proxies the application's ADS stream over its mTLS
   * credential from 127.0.0.1:`xdsProxyPort` (0 picks one).
   */
  readonly proxyless?: { readonly xdsProxyPort?: number };
}

export interface AgentStatus {
  readonly spiffeId: string;
  readonly nodeId: string;
  readonly xdsCredentialExpiresAt: string;
  readonly workloadCertExpiresAt: string;
  readonly renewals: number;
  readonly lastError?: string;
}

export interface RunningAgent {
  readonly nodeId: string;
  /** envoy.json, or grpc-bootstrap.json for a proxyless application. */
  readonly bootstrapPath: string;
  /** The local xDS proxy's port (proxyless only). */
  readonly xdsProxyPort?: number;
  readonly sdsDir: string;
  status(): AgentStatus;
  /** Renews both certificates now (tests; `kill -HUP` in the CLI). */
  renewNow(): Promise<Result<void>>;
  stop(): void;
}

interface Held {
  identity: SignedIdentity;
  xds: CertAndKey;
  workload: CertAndKey;
}

const newKey = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;

function csrPair() {
  const xdsKey = newKey();
  const workloadKey = newKey();
  const pem = (k: ReturnType<typeof newKey>) => k.export({ type: 'pkcs8', format: 'pem' }).toString();
  return {
    body: { xdsCsr: createCsr(xdsKey), workloadCsr: createCsr(workloadKey) },
    keys: { xds: pem(xdsKey), workload: pem(workloadKey) },
  };
}

const notAfterOf = (pem: string): Date => new Date(new X509Certificate(pem).validTo);

export async function startAgent(o: AgentOptions): Promise<RunningAgent> {
  const log = agentLog(o.log);
  const outDir = resolve(o.outDir);
  const sdsDir = join(outDir, 'sds');
  const pemDir = join(outDir, 'certs');
  mkdirSync(outDir, { recursive: true, mode: 0o700 });
  ensureSecretDir(sdsDir);
  const transport = o.transport ?? 'ads';
  const replicas = new ControlPlaneAddresses(o.controlPlane);
  let held: Held | undefined;
  let renewals = 0;
  let lastError: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const tlsFor = (h: Held): ClientTls => ({
    caPem: h.identity.trustBundlePem,
    certChainPem: h.xds.certChainPem,
    keyPem: h.xds.keyPem,
  });

  const install = (identity: SignedIdentity, keys: { xds: string; workload: string }): void => {
    const next: Held = {
      identity,
      xds: { certChainPem: identity.xds.certChainPem, keyPem: keys.xds },
      workload: { certChainPem: identity.workload.certChainPem, keyPem: keys.workload },
    };
    // The bundle first: peers and the control plane may already present new-root certificates.
    writeTrustBundle(sdsDir, XDS_CA_SECRET, identity.trustBundlePem);
    writeCertificate(sdsDir, XDS_CLIENT_SECRET, next.xds);
    writeCertificate(sdsDir, WORKLOAD_SECRET, next.workload);
    if (o.proxyless) writePemFiles(pemDir, next.workload, identity.trustBundlePem);
    held = next;
  };

  const firstContactRoots = async (): Promise<Result<string>> => {
    if (o.caPem) return ok(o.caPem);
    const evidence = o.evidence();
    const token = evidence && 'joinToken' in evidence ? parseJoinToken(evidence.joinToken) : undefined;
    if (!token)
      return fail([
        {
          code: 'CA',
          field: 'ca-file',
          message: 'no trust anchor: pass --ca-file, or a join token (it pins the CA root)',
        },
      ]);
    const bundle = await replicas.call<TrustBundleView>('GET', '/v1/agent/bundle', {});
    if (!bundle.ok) return bundle;
    const root = pinnedRoot(bundle.value.trustBundlePem, token.pin, rootPin);
    return root
      ? ok(root)
      : fail([
          {
            code: 'UNAUTHENTICATED',
            resource: replicas.current,
            message: 'the control plane at this address does not hold the CA root pinned in the join token',
          },
        ]);
  };

  const attest = async (): Promise<Result<void>> => {
    const evidence = o.evidence();
    if (!evidence)
      return fail([
        { code: 'UNAUTHENTICATED', message: 'no attestation evidence (--join-token or --k8s-token-file)' },
      ]);
    const roots = await firstContactRoots();
    if (!roots.ok) return roots;
    const { body, keys } = csrPair();
    const signed = await replicas.call<SignedIdentity & { instance?: string }>(
      'POST',
      '/v1/agent/attest',
      { caPem: roots.value },
      { ...evidence, instance: o.instance, ...body },
    );
    if (!signed.ok) return signed;
    install(signed.value, keys);
    instance ??= signed.value.instance;
    return ok(undefined);
  };

  const renew = async (): Promise<Result<void>> => {
    if (!held) return attest();
    const { body, keys } = csrPair();
    const signed = await replicas.call<SignedIdentity>('POST', '/v1/agent/renew', tlsFor(held), body);
    if (signed.ok) {
      install(signed.value, keys);
      renewals++;
      log.info(
        {
          spiffeId: signed.value.spiffeId,
          xdsCredentialExpiresAt: signed.value.xds.notAfter,
          workloadCertExpiresAt: signed.value.workload.notAfter,
          renewals,
        },
        'certificates renewed',
      );
      return ok(undefined);
    }
    // A credential the control plane no longer accepts (expired, or from a retired root): attest again
    // when the evidence can be spent again (a Kubernetes token can; a used join token cannot).
    const evidence = o.evidence();
    if (signed.status === 401 && evidence && 'kubernetesToken' in evidence) return attest();
    return signed;
  };

  const schedule = (delayMs?: number): void => {
    clearTimeout(timer);
    if (stopped || !held) return;
    const issuedAt = new Date();
    const notAfter = new Date(
      Math.min(notAfterOf(held.xds.certChainPem).getTime(), notAfterOf(held.workload.certChainPem).getTime()),
    );
    const delay =
      delayMs ?? rotationDelayMs({ notBefore: issuedAt, notAfter }, o.random ?? Math.random, issuedAt);
    // Node fires a timer longer than 2^31-1 ms at once: a very long lifetime renews early, not in a loop.
    timer = setTimeout(() => void renewAndReschedule(), Math.min(delay, 2 ** 31 - 1));
    timer.unref();
  };

  let failures = 0;
  const renewAndReschedule = async (): Promise<Result<void>> => {
    // A disk that refuses the new files (full, read-only) is a failed renewal, not a dead agent.
    const result = await renew().catch((e: unknown) =>
      fail<void>([
        {
          code: 'IO',
          resource: sdsDir,
          message: `cannot write the renewed certificates: ${(e as Error).message}`,
        },
      ]),
    );
    if (result.ok) {
      failures = 0;
      lastError = undefined;
      schedule();
      return result;
    }
    failures++;
    lastError = result.errors.map(formatProblem).join('; ');
    const left = held
      ? Math.min(
          notAfterOf(held.xds.certChainPem).getTime(),
          notAfterOf(held.workload.certChainPem).getTime(),
        ) - Date.now()
      : 0;
    // Backoff, but sooner while the certificates still hold (never after a quarter of what is left);
    // once they have expired, every 30 s at most rather than a tight loop.
    const retryMs = Math.min(
      30_000,
      500 * 2 ** Math.min(failures, 6),
      left > 0 ? Math.max(250, left / 4) : 30_000,
    );
    const expiresInSeconds = Math.max(0, Math.round(left / 1000));
    const retryInSeconds = Math.round(retryMs / 1000);
    log.warn(
      { error: lastError, failures, expiresInSeconds, retryInSeconds },
      `renewal failed; keeping the current certificates, which expire in ${expiresInSeconds} s; retrying in ${retryInSeconds} s`,
    );
    schedule(retryMs);
    return result;
  };

  const pollBundle = async (): Promise<void> => {
    if (!held || stopped) return;
    const bundle = await replicas.call<TrustBundleView>('GET', '/v1/agent/bundle', tlsFor(held));
    if (!bundle.ok || !held) return;
    if (bundle.value.trustBundlePem !== held.identity.trustBundlePem) {
      writeTrustBundle(sdsDir, XDS_CA_SECRET, bundle.value.trustBundlePem);
      held = { ...held, identity: { ...held.identity, trustBundlePem: bundle.value.trustBundlePem } };
      log.info(
        { roots: bundle.value.trustBundlePem.match(/BEGIN CERTIFICATE/g)?.length ?? 0 },
        'trust bundle updated',
      );
    }
    if (bundle.value.renewalEpoch !== held.identity.renewalEpoch) {
      log.info(
        { renewalEpoch: bundle.value.renewalEpoch },
        'the control plane advises renewal (root rotation): renewing now',
      );
      await renewAndReschedule();
    }
  };

  // A restarted agent keeps what it had, while it lasts, instead of spending new evidence.
  let instance = o.instance;
  const previous = restore(sdsDir);
  if (previous) {
    held = previous;
    instance ??= previousInstance(join(outDir, 'envoy.json'));
    const result = await renew();
    if (!result.ok)
      log.warn(
        { error: result.errors.map(formatProblem).join('; ') },
        'renewal of the previous credential failed; keeping it while it lasts',
      );
  } else {
    const attested = await attest();
    if (!attested.ok) throw new ClinimeshError(attested.errors);
  }
  const h = held!;
  if (!instance)
    throw new ClinimeshError([
      {
        code: 'SCHEMA',
        field: 'instance',
        message: 'no instance name: pass --instance (or bind the join token to one)',
      },
    ]);
  const nodeId = `${h.identity.namespace}/${h.identity.service}/${instance}`;
  // REST polling goes to the agent port itself; ADS to port 18000 of the same hosts unless told.
  const xdsServers = o.xdsAddress
    ? new ControlPlaneAddresses(o.xdsAddress).endpoints()
    : replicas.endpoints(transport === 'rest' ? undefined : 18000);
  let proxy: XdsProxy | undefined;
  let bootstrapPath: string;
  if (o.proxyless) {
    const cp = (): ProxyCredential => ({
      caPem: held!.identity.trustBundlePem,
      certChainPem: held!.xds.certChainPem,
      keyPem: held!.xds.keyPem,
    });
    const upstreams = xdsServers.map((s) => `${s.host}:${s.port}`);
    proxy = await startXdsProxy(upstreams, cp, o.proxyless.xdsProxyPort ?? 0);
    bootstrapPath = join(outDir, 'grpc-bootstrap.json');
    const certificates = {
      certFile: join(pemDir, PEM_FILES.cert),
      keyFile: join(pemDir, PEM_FILES.key),
      caFile: join(pemDir, PEM_FILES.ca),
    };
    writeFileSync(
      bootstrapPath,
      `${JSON.stringify(grpcBootstrap({ nodeId, xdsServer: `127.0.0.1:${proxy.port}`, certificates }), null, 2)}\n`,
    );
  } else {
    const bootstrap = envoyBootstrap({
      nodeId,
      cluster: h.identity.service,
      xdsServers,
      transport,
      adminPort: o.envoyAdminPort ?? 15000,
      metadata: o.auditLog ? { 'clinimesh.audit_log': o.auditLog } : {},
      tls: { sdsDir },
    });
    bootstrapPath = join(outDir, 'envoy.json');
    writeFileSync(bootstrapPath, `${JSON.stringify(bootstrap, null, 2)}\n`);
  }
  schedule();
  const poller = setInterval(
    () =>
      void pollBundle().catch((e: unknown) =>
        log.warn({ error: (e as Error).message }, 'trust bundle update failed'),
      ),
    o.bundlePollMs ?? 30_000,
  );
  poller.unref();
  log.info(
    {
      spiffeId: h.identity.spiffeId,
      nodeId,
      workloadCertExpiresAt: h.identity.workload.notAfter,
      bootstrapPath,
    },
    'agent started',
  );

  return {
    nodeId,
    bootstrapPath,
    ...(proxy && { xdsProxyPort: proxy.port }),
    sdsDir,
    status: () => ({
      spiffeId: held!.identity.spiffeId,
      nodeId,
      xdsCredentialExpiresAt: notAfterOf(held!.xds.certChainPem).toISOString(),
      workloadCertExpiresAt: notAfterOf(held!.workload.certChainPem).toISOString(),
      renewals,
      ...(lastError && { lastError }),
    }),
    renewNow: renewAndReschedule,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
      clearInterval(poller);
      void proxy?.close();
    },
  };
}

/** The instance named in a bootstrap a previous run wrote. */
function previousInstance(bootstrapPath: string): string | undefined {
  try {
    const id = (JSON.parse(readFileSync(bootstrapPath, 'utf8')) as { node?: { id?: string } }).node?.id;
    return id?.split('/')[2];
  } catch {
    return undefined;
  }
}

/** The identity a previous run wrote, if its credential is still valid. */
function restore(sdsDir: string): Held | undefined {
  const xds = readCertificate(sdsDir, XDS_CLIENT_SECRET);
  const workload = readCertificate(sdsDir, WORKLOAD_SECRET);
  const bundle = readTrustBundle(sdsDir, XDS_CA_SECRET);
  if (!xds || !workload || !bundle) return undefined;
  const leaf = new X509Certificate(xds.certChainPem);
  if (new Date(leaf.validTo).getTime() <= Date.now()) return undefined;
  const uri = /URI:(spiffe:\/\/([^/,]+)\/ns\/([a-z0-9-]+)\/sa\/([a-z0-9-]+))/.exec(leaf.subjectAltName ?? '');
  if (!uri) return undefined;
  const [, spiffeId, trustDomain, namespace, service] = uri as unknown as [
    string,
    string,
    string,
    string,
    string,
  ];
  const cert = (c: CertAndKey) => ({
    certChainPem: c.certChainPem,
    notAfter: new Date(new X509Certificate(c.certChainPem).validTo).toISOString(),
  });
  return {
    identity: {
      spiffeId,
      trustDomain,
      namespace,
      service,
      xds: cert(xds),
      workload: cert(workload),
      trustBundlePem: bundle,
      serverSpiffeId: `spiffe://${trustDomain}/ns/clinimesh-system/sa/control-plane`,
      renewalEpoch: -1,
    },
    xds,
    workload,
  };
}
