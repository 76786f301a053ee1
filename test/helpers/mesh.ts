// A small EMR → HIS mesh on fresh loopback addresses (one per instance, like pod IPs), its
// manifests, its sidecars started from clinimesh's own bootstraps, and the apps behind them.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, type RunningAgent } from '../../src/agent/agent.ts';
import type { RunningControlPlane } from '../../src/main.ts';
import { parseManifestText } from '../../src/manifest/index.ts';
import type { BootstrapTransport } from '../../src/bootstrap/envoy-bootstrap.ts';
import { startEnvoy, type EnvoyHandle } from './envoy.ts';
import { loopbackAddress } from './ports.ts';
import { startHttpUpstream, type Upstream } from './upstream.ts';

export const NS = 'clinical';
export const HIS_MESH_PORT = 15001;
export const HIS_APP_PORT = 8080;
export const EMR_TO_HIS_PORT = 9001;

export interface TestInstance {
  readonly name: string;
  readonly address: string;
}

export function instances(prefix: string, n: number): TestInstance[] {
  return Array.from({ length: n }, (_, i) => ({ name: `${prefix}-${i + 1}`, address: loopbackAddress() }));
}

export interface TestService {
  readonly name: string;
  /** `{ name: http, port: 15001, targetPort: 8080, protocol: http }` in flow style. */
  readonly ports: readonly string[];
  readonly instances: readonly TestInstance[];
  /** `{ service: his, port: http, localPort: 9001 }` in flow style. */
  readonly upstreams?: readonly string[];
}

/** A Service manifest whose instances each get their own loopback address, app on the same one. */
export function serviceManifest(s: TestService): string {
  const list = (items: readonly string[]) => items.map((i) => `    - ${i}`).join('\n');
  const instances = s.instances.map(
    (i) => `{ name: ${i.name}, address: ${i.address}, appAddress: ${i.address} }`,
  );
  return `apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: ${s.name}, namespace: ${NS} }
spec:
  ports:
${list(s.ports)}
  instances:
${list(instances)}
${s.upstreams?.length ? `  upstreams:\n${list(s.upstreams)}\n` : ''}`;
}

export function hisManifest(his: readonly TestInstance[]): string {
  return serviceManifest({
    name: 'his',
    ports: [`{ name: http, port: ${HIS_MESH_PORT}, targetPort: ${HIS_APP_PORT}, protocol: http }`],
    instances: his,
  });
}

export function emrManifest(
  emr: TestInstance,
  upstreams = [`{ service: his, port: http, localPort: ${EMR_TO_HIS_PORT} }`],
): string {
  return serviceManifest({
    name: 'emr',
    ports: ['{ name: http, port: 15011, targetPort: 8080, protocol: http }'],
    instances: [emr],
    upstreams,
  });
}

export const meshManifest = `apiVersion: clinimesh.io/v1alpha1
kind: Mesh
metadata: { name: hospital }
spec:
  trustDomain: hospital.local
`;

/** Applies YAML text through the same path the admin API uses; throws with the problems if rejected. */
export async function applyYaml(cp: RunningControlPlane, yaml: string, file = 'test.yaml') {
  const parsed = parseManifestText(yaml, file);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  const applied = await cp.controlPlane.apply(parsed.value);
  if (!applied.ok) throw new Error(JSON.stringify(applied.errors));
  return applied.value;
}

/** A one-time join token for a workload, as an editor would create it (`clinimesh join-token create`). */
export function joinToken(
  cp: RunningControlPlane,
  service: string,
  instance?: string,
  namespace = NS,
): string {
  const issued = cp.joinTokens.create({ namespace, service, instance, createdBy: 'test' });
  if (!issued.ok) throw new Error(JSON.stringify(issued.errors));
  return issued.value.token;
}

export interface AgentOptions {
  readonly transport?: BootstrapTransport;
  /** For a proxyless gRPC application: PEM files, a gRPC bootstrap and a local xDS proxy. */
  readonly proxyless?: boolean;
  /** How often the agent polls the trust bundle (root rotations); tests keep it short. */
  readonly bundlePollMs?: number;
  readonly namespace?: string;
  /**
   * A fixed port for Envoy's admin (the agent's --envoy-admin-port), which the metrics listener
   * needs; by default 0, Envoy picks one (and the control plane cannot know it).
   */
  readonly envoyAdminPort?: number;
}

/**
 * The node agent for one instance, started as a user starts it: with a join token for the
 * instance, its keys made in a fresh directory. It writes envoy.json and sds/ there.
 */
export async function startNodeAgent(
  cp: RunningControlPlane,
  service: string,
  instance: string,
  o: AgentOptions = {},
): Promise<RunningAgent & { dir: string }> {
  const transport = o.transport ?? 'ads';
  const token = joinToken(cp, service, instance, o.namespace);
  const dir = await mkdtemp(join(tmpdir(), `clinimesh-agent-${instance}-`));
  const agent = await startAgent({
    controlPlane: `${cp.host}:${cp.xdsRestPort}`,
    evidence: () => ({ joinToken: token }),
    outDir: dir,
    transport,
    xdsAddress: `${cp.host}:${transport === 'rest' ? cp.xdsRestPort : cp.xdsPort}`,
    envoyAdminPort: o.envoyAdminPort ?? 0,
    bundlePollMs: o.bundlePollMs ?? 500,
    log: () => undefined,
    ...(o.proxyless && { proxyless: {} }),
  });
  const stopAgent = agent.stop;
  return Object.assign(agent, {
    dir,
    stop: () => {
      stopAgent();
      void rm(dir, { recursive: true, force: true });
    },
  });
}

export interface Sidecar extends EnvoyHandle {
  readonly agent: RunningAgent;
}

/** Envoy for one instance, bootstrapped by its node agent; stop() ends both. */
export async function startSidecar(
  cp: RunningControlPlane,
  service: string,
  instance: string,
  transport: BootstrapTransport = 'ads',
  metadata: Record<string, string> = {},
  agentOptions: Omit<AgentOptions, 'transport'> = {},
): Promise<Sidecar> {
  const agent = await startNodeAgent(cp, service, instance, { ...agentOptions, transport });
  const bootstrap = JSON.parse(await readFile(agent.bootstrapPath, 'utf8')) as {
    node: { metadata: Record<string, unknown> };
  };
  Object.assign(bootstrap.node.metadata, metadata);
  try {
    // As text the bootstrap is written as is: a fixed admin port stays (an object's is forced to 0).
    const fixedAdmin = agentOptions.envoyAdminPort !== undefined;
    const envoy = await startEnvoy({
      bootstrap: fixedAdmin ? JSON.stringify(bootstrap) : bootstrap,
      name: instance,
    });
    const stopEnvoy = envoy.stop;
    return Object.assign(envoy, {
      agent,
      stop: async () => {
        await stopEnvoy();
        agent.stop();
      },
    });
  } catch (e) {
    agent.stop();
    throw e;
  }
}

/**
 * Applies the EMR → HIS mesh, starts HIS's apps and every instance's sidecar on `transport`; each is
 * pushed into `started` as it comes up, so the test's afterAll stops whatever did start.
 */
export async function startEmrCallsHis(
  cp: RunningControlPlane,
  his: readonly TestInstance[],
  emr: TestInstance,
  started: { readonly apps: Upstream[]; readonly envoys: EnvoyHandle[] },
  transport: BootstrapTransport = 'ads',
): Promise<void> {
  await applyYaml(cp, [meshManifest, hisManifest(his), emrManifest(emr)].join('---\n'));
  for (const h of his)
    started.apps.push(await startHttpUpstream({ name: h.name, host: h.address, port: HIS_APP_PORT }));
  started.envoys.push(
    ...(await Promise.all(
      [...his, emr].map((i) => startSidecar(cp, i.name.replace(/-\d+$/, ''), i.name, transport)),
    )),
  );
}
