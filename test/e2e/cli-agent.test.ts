// The newcomer's path, with the commands the README gives: an operator makes a join token with
// `clinimesh join-token create`, `clinimesh agent` spends it (keys made on the workload's disk, never
// sent), writes Envoy's bootstrap and secret files, and the Envoy started from them carries EMR's
// calls to HIS over mutual TLS.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import { describeWithEnvoy, dumpLogsOnFailure, startEnvoy, type EnvoyHandle } from '../helpers/envoy.ts';
import {
  applyYaml,
  EMR_TO_HIS_PORT,
  emrManifest,
  HIS_APP_PORT,
  hisManifest,
  instances,
  meshManifest,
  NS,
  startSidecar,
} from '../helpers/mesh.ts';
import { httpRequest, startHttpUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const run = promisify(execFile);

describeWithEnvoy('clinimesh join-token and clinimesh agent', () => {
  let cp: RunningControlPlane;
  let dataDir: string;
  let agentDir: string;
  let agent: ChildProcess | undefined;
  let agentLog = '';
  const envoys: EnvoyHandle[] = [];
  let app: Upstream | undefined;
  const [his] = instances('his', 1) as [{ name: string; address: string }];
  const [emr] = instances('emr', 1) as [{ name: string; address: string }];
  const cli = (args: string[]) =>
    run(process.execPath, ['bin/clinimesh.js', ...args], {
      env: { ...process.env, CLINIMESH_CREDENTIAL: cp.adminCredentialPath! },
    });

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'clinimesh-cli-data-'));
    agentDir = await mkdtemp(join(tmpdir(), 'clinimesh-cli-agent-'));
    cp = await startControlPlane({
      dataDir,
      trustDomain: 'hospital.local',
      xdsPort: 0,
      xdsRestPort: 0,
      adminPort: 0,
    });
    await applyYaml(cp, [meshManifest, hisManifest([his]), emrManifest(emr)].join('---\n'));
    app = await startHttpUpstream({ name: his.name, host: his.address, port: HIS_APP_PORT });
  });
  afterEach(dumpLogsOnFailure(() => envoys));
  afterAll(async () => {
    agent?.kill('SIGTERM');
    await Promise.all(envoys.map((e) => e.stop()));
    await app?.close();
    await cp?.stop();
    for (const d of [dataDir, agentDir]) if (d) await rm(d, { recursive: true, force: true });
  });

  it('joins HIS with a join token, keys made locally, and carries EMR → HIS traffic', async () => {
    const { stdout } = await cli([
      'join-token',
      'create',
      '--namespace',
      NS,
      '--service',
      'his',
      '--instance',
      his.name,
    ]);
    const token = stdout.trim();
    expect(token).toMatch(/^cmjt\./);
    agent = spawn(
      process.execPath,
      [
        'bin/clinimesh.js',
        'agent',
        '--control-plane',
        `${cp.host}:${cp.xdsRestPort}`,
        '--xds-address',
        `${cp.host}:${cp.xdsPort}`,
        '--out-dir',
        agentDir,
        '--envoy-admin-port',
        '0',
      ],
      // As the README passes it: in the environment, which `ps` does not show to other users.
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CLINIMESH_JOIN_TOKEN: token } },
    );
    agent.stdout!.on('data', (d: Buffer) => (agentLog += d.toString()));
    agent.stderr!.on('data', (d: Buffer) => (agentLog += d.toString()));
    await waitFor(async () => existsSync(join(agentDir, 'envoy.json')), {
      what: `the agent to write envoy.json (log: ${agentLog})`,
      timeoutMs: 20_000,
    });
    expect((await stat(join(agentDir, 'sds'))).mode & 0o777).toBe(0o700);
    for (const f of await readdir(join(agentDir, 'sds')))
      expect((await stat(join(agentDir, 'sds', f))).mode & 0o077, f).toBe(0);
    const bootstrap = JSON.parse(await readFile(join(agentDir, 'envoy.json'), 'utf8')) as object;
    envoys.push(await startEnvoy({ bootstrap, name: 'cli-his' }));
    envoys.push(await startSidecar(cp, 'emr', emr.name));
    await waitFor(
      async () =>
        (await httpRequest(`http://${emr.address}:${EMR_TO_HIS_PORT}/patients/1`, { timeoutMs: 2_000 }))
          .status === 200,
      { what: 'EMR to reach HIS', timeoutMs: 20_000 },
    );
    expect(agent.exitCode).toBeNull();
  });

  it('refuses a join token for a service the mesh does not declare, in one line', async () => {
    const failed = await cli(['join-token', 'create', '--namespace', NS, '--service', 'radiology']).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('an agent with a spent token exits 1 with one line', async () => {
    const { stdout } = await cli([
      'join-token',
      'create',
      '--namespace',
      NS,
      '--service',
      'his',
      '--instance',
      his.name,
    ]);
    const token = stdout.trim();
    const dir = await mkdtemp(join(tmpdir(), 'clinimesh-cli-agent2-'));
    const spend = (d: string) =>
      run(
        process.execPath,
        [
          'bin/clinimesh.js',
          'agent',
          '--control-plane',
          `${cp.host}:${cp.xdsRestPort}`,
          '--out-dir',
          d,
          '--join-token',
          token,
        ],
        { timeout: 20_000 },
      );
    const first = spawn(
      process.execPath,
      [
        'bin/clinimesh.js',
        'agent',
        '--control-plane',
        `${cp.host}:${cp.xdsRestPort}`,
        '--out-dir',
        dir,
        '--join-token',
        token,
      ],
      { stdio: 'ignore' },
    );
    try {
      await waitFor(async () => existsSync(join(dir, 'envoy.json')), {
        what: 'the first agent to attest',
        timeoutMs: 20_000,
      });
      const dir2 = await mkdtemp(join(tmpdir(), 'clinimesh-cli-agent3-'));
      const failed = await spend(dir2).then(
        () => undefined,
        (e: { code: number; stderr: string }) => e,
      );
      await rm(dir2, { recursive: true, force: true });
      expect(failed?.code).toBe(1);
      expect(failed?.stderr).toContain('UNAUTHENTICATED');
      expect(failed?.stderr).not.toMatch(/\n\s+at /);
    } finally {
      first.kill('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    }
  });
});
