// A small EMR → HIS mesh on fresh loopback addresses (one per instance, like pod IPs), its
// manifests, its sidecars started from clinimesh's own bootstraps, and the apps behind them.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { envoyBootstrap, type BootstrapTls } from '../../src/bootstrap/envoy-bootstrap.ts';
import { controlPlaneSpiffeId } from '../../src/control/control-plane-identity.ts';
import { nodeId } from '../../src/control/node-id.ts';
import type { RunningControlPlane } from '../../src/main.ts';
import { parseManifestText } from '../../src/manifest/index.ts';
import type { XdsTransport } from '../../src/xds/generate/types.ts';
import { startEnvoy, type EnvoyHandle } from './envoy.ts';
import { loopbackAddress } from './ports.ts';

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
  const instances = s.instances.map((i) => `{ name: ${i.name}, address: ${i.address}, appAddress: ${i.address} }`);
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

export function emrManifest(emr: TestInstance, upstreams = [`{ service: his, port: http, localPort: ${EMR_TO_HIS_PORT} }`]): string {
  return serviceManifest({ name: 'emr', ports: ['{ name: http, port: 15011, targetPort: 8080, protocol: http }'], instances: [emr], upstreams });
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

/** The bootstrap credential `clinimesh bootstrap` would issue, written where Envoy reads it. */
export async function writeCredential(cp: RunningControlPlane, service: string, namespace = NS): Promise<BootstrapTls> {
  const trustDomain = cp.controlPlane.state().mesh.trustDomain;
  const cert = cp.ca.issueWorkload({ namespace, service }, { trustDomain });
  const dir = await mkdtemp(join(tmpdir(), `clinimesh-cred-${service}-`));
  const files = { certFile: join(dir, 'xds.crt'), keyFile: join(dir, 'xds.key'), caFile: join(dir, 'ca.crt') };
  await writeFile(files.certFile, cert.certChainPem);
  await writeFile(files.keyFile, cert.privateKeyPem, { mode: 0o600 });
  await writeFile(files.caFile, cp.ca.trustBundle().join('\n'));
  return { ...files, serverSpiffeId: controlPlaneSpiffeId(trustDomain) };
}

export async function startSidecar(
  cp: RunningControlPlane,
  service: string,
  instance: string,
  transport: XdsTransport = 'ads',
  metadata: Record<string, string> = {},
): Promise<EnvoyHandle> {
  const bootstrap = envoyBootstrap({
    metadata,
    tls: cp.xdsTls ? await writeCredential(cp, service) : undefined,
    nodeId: nodeId({ namespace: NS, service, instance }),
    cluster: service,
    xdsHost: cp.host,
    xdsPort: transport === 'ads' ? cp.xdsPort : cp.xdsRestPort,
    transport,
    adminPort: 0,
  });
  return startEnvoy({ bootstrap, name: instance });
}
