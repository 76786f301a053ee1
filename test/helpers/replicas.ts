// Control-plane replicas as child processes (`clinimesh serve`, exactly as an operator runs it), so a
// test can SIGKILL one for real. Each binds its own loopback address (like a pod IP) with port 0 for
// every listener, and is found through the banner it prints. Sidecars join through a join token
// and `clinimesh agent` that names every replica.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startAgent, type RunningAgent } from '../../src/agent/agent.ts';
import type { AdminCredential } from '../../src/admin/index.ts';
import type { BootstrapTransport } from '../../src/bootstrap/envoy-bootstrap.ts';
import { adminRequest, type AdminTarget } from './admin.ts';
import { startEnvoy, type EnvoyHandle } from './envoy.ts';
import { NS } from './mesh.ts';
import { loopbackAddress } from './ports.ts';
import { waitFor } from './wait.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Every replica still running: killed when the test process exits, whatever happened. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface Replica extends AdminTarget {
  readonly name: string;
  readonly host: string;
  readonly adminPort: number;
  readonly xdsPort: number;
  readonly xdsRestPort: number;
  readonly dataDir: string;
  readonly pid: number;
  /** Everything it printed (banner on stdout, JSON log lines on stderr). */
  output(): string;
  /** Trust these roots for the admin API from now on (after a root rotation). */
  trustRoots(caPem: string): void;
  /** SIGKILL: no goodbye, no cleanup, as a node that dies. */
  kill(): Promise<void>;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
  readonly exited: boolean;
}

export interface ReplicaOptions {
  readonly name: string;
  /** Arguments after `serve` besides ports and data dir (`--ca-dir`, `-f`, `--store consul`…). */
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** Node's own flags, before the script (those NODE_OPTIONS refuses, such as --cpu-prof). */
  readonly nodeArgs?: readonly string[];
  readonly startTimeoutMs?: number;
  /**
   * For a restart in place: the address, xDS ports and data dir of the replica it replaces (its
   * sidecars reconnect to the same address). Default: a fresh address, port 0, a new data dir.
   */
  readonly host?: string;
  readonly xdsPort?: number;
  readonly xdsRestPort?: number;
  readonly adminPort?: number;
  readonly dataDir?: string;
  /** The admin credential to use when this replica writes none (tokens shared through Consul). */
  readonly credential?: AdminCredential;
}

function bannerPort(out: string, label: RegExp): number | undefined {
  const m = label.exec(out);
  return m ? Number(m[1]) : undefined;
}

export async function startReplica(o: ReplicaOptions): Promise<Replica> {
  const host = o.host ?? loopbackAddress();
  const dataDir = o.dataDir ?? (await mkdtemp(join(tmpdir(), `clinimesh-${o.name}-`)));
  const args = [
    ...(o.nodeArgs ?? []),
    'bin/clinimesh.js',
    'serve',
    '--host',
    host,
    '--xds-port',
    String(o.xdsPort ?? 0),
    '--xds-rest-port',
    String(o.xdsRestPort ?? 0),
    '--admin-port',
    String(o.adminPort ?? 0),
    '--data-dir',
    dataDir,
    ...o.args,
  ];
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    env: { ...process.env, CLINIMESH_LOG_LEVEL: 'info', ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let exited = false;
  void closed.then(() => {
    exited = true;
    live.delete(child);
  });
  const ports = await waitFor(
    async () => {
      if (exited) throw new Error(`${o.name} exited:\n${out.slice(-3000)}`);
      const xds = bannerPort(out, /xDS gRPC \(ADS\): +[^\s]+:(\d+)/);
      const rest = bannerPort(out, /xDS REST polling: +https?:\/\/[^\s/]+:(\d+)/);
      const admin = bannerPort(out, /admin API: +https:\/\/[^\s/]+:(\d+)/);
      return xds && rest && admin ? { xds, rest, admin } : undefined;
    },
    { what: `${o.name} to print its banner`, timeoutMs: o.startTimeoutMs ?? 60_000, intervalMs: 100 },
  ).catch((e: unknown) => {
    child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}\n${out.slice(-3000)}`);
  });
  // With operator tokens in Consul, only the replica that made the first token writes a credential;
  // the others are reached with that one (same token, same CA).
  let credential = await readFile(join(dataDir, 'admin-credential.json'), 'utf8').then(
    (text) => JSON.parse(text) as AdminCredential,
    (e: unknown) => {
      if (o.credential) return o.credential;
      throw e;
    },
  );
  const end = async (signal: NodeJS.Signals) => {
    if (!exited) child.kill(signal);
    await closed;
  };
  return {
    name: o.name,
    host,
    xdsPort: ports.xds,
    xdsRestPort: ports.rest,
    adminUrl: `https://127.0.0.1:${ports.admin}`,
    adminPort: ports.admin,
    get adminCredential() {
      return credential;
    },
    trustRoots: (caPem: string) => {
      credential = { ...credential, caPem };
    },
    dataDir,
    pid: child.pid!,
    output: () => out,
    kill: () => end('SIGKILL'),
    stop: async () => {
      await end('SIGTERM');
      await rm(dataDir, { recursive: true, force: true });
    },
    get exited() {
      return exited;
    },
  };
}

/** A one-time join token, made through a replica's admin API as `clinimesh join-token create` does. */
export async function replicaJoinToken(r: AdminTarget, service: string, instance: string): Promise<string> {
  const res = await adminRequest(r, 'POST', '/v1/join-tokens', {
    body: { namespace: NS, service, instance },
  });
  const token = (res.json as { token?: string } | undefined)?.token;
  if (res.status !== 201 || !token) throw new Error(`join-token create: HTTP ${res.status} ${res.text}`);
  return token;
}

export interface HaSidecar extends EnvoyHandle {
  readonly agent: RunningAgent & { dir: string };
}

/**
 * Envoy for one instance whose agent and bootstrap name every replica (the join token comes from
 * `tokenFrom`, by default the first). stop() ends both.
 */
export async function startHaSidecar(
  all: readonly Replica[],
  service: string,
  instance: string,
  o: { transport?: BootstrapTransport; tokenFrom?: Replica; token?: string; bundlePollMs?: number } = {},
): Promise<HaSidecar> {
  const transport = o.transport ?? 'ads';
  const from = o.tokenFrom ?? all[0]!;
  const token = o.token ?? (await replicaJoinToken(from, service, instance));
  // The replica that made the token first: it is spent there (until join tokens live in Consul too).
  const replicas = [from, ...all.filter((r) => r !== from)];
  const dir = await mkdtemp(join(tmpdir(), `clinimesh-agent-${instance}-`));
  const agent = await startAgent({
    controlPlane: replicas.map((r) => `${r.host}:${r.xdsRestPort}`),
    evidence: () => ({ joinToken: token }),
    outDir: dir,
    transport,
    xdsAddress: replicas.map((r) => `${r.host}:${transport === 'rest' ? r.xdsRestPort : r.xdsPort}`),
    envoyAdminPort: 0,
    bundlePollMs: o.bundlePollMs ?? 500,
    log: () => undefined,
  });
  const stopAgent = () => {
    agent.stop();
    void rm(dir, { recursive: true, force: true });
  };
  try {
    const bootstrap = JSON.parse(await readFile(agent.bootstrapPath, 'utf8')) as object;
    const envoy = await startEnvoy({ bootstrap, name: instance });
    const stopEnvoy = envoy.stop;
    return Object.assign(envoy, {
      agent: Object.assign(agent, { dir }),
      stop: async () => {
        await stopEnvoy();
        stopAgent();
      },
    });
  } catch (e) {
    stopAgent();
    throw e;
  }
}

/** The replica a sidecar's xDS connection is open to (its xDS cluster host with an active connection). */
export async function connectedReplica(
  sidecar: EnvoyHandle,
  replicas: readonly Replica[],
): Promise<Replica | undefined> {
  const text = await sidecar.admin('/clusters');
  const active = [...text.matchAll(/^clinimesh-xds::([^:]+):(\d+)::cx_active::(\d+)$/gm)]
    .filter((m) => Number(m[3]) > 0)
    .map((m) => `${m[1]}:${m[2]}`);
  return replicas.find((r) => active.includes(`${r.host}:${r.xdsPort}`));
}
