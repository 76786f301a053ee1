// The newcomer's path: `clinimesh bootstrap --out-dir` makes a sidecar's key locally, gets its
// certificate signed through the admin API, and writes a bootstrap with which a real Envoy connects
// over mutual TLS and receives its config. The private key never crosses the API.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import { describeWithEnvoy, startEnvoy, type EnvoyHandle } from '../helpers/envoy.ts';
import { applyYaml, hisManifest, instances, meshManifest, NS } from '../helpers/mesh.ts';
import { waitFor } from '../helpers/wait.ts';

const run = promisify(execFile);

describeWithEnvoy('clinimesh bootstrap', () => {
  let cp: RunningControlPlane;
  let dir: string;
  let envoy: EnvoyHandle | undefined;
  const [his] = instances('his', 1) as [{ name: string; address: string }];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clinimesh-cli-'));
    cp = await startControlPlane({ trustDomain: 'hospital.local', xdsPort: 0, xdsRestPort: 0, adminPort: 0 });
    await applyYaml(cp, [meshManifest, hisManifest([his])].join('---\n'));
  });
  afterAll(async () => {
    await envoy?.stop();
    await cp?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes a credential and bootstrap with which Envoy connects over mTLS', async () => {
    const args = ['bin/clinimesh.js', 'bootstrap', '--namespace', NS, '--service', 'his', '--instance', his.name];
    await run(process.execPath, [...args, '--out-dir', dir, '--admin', cp.adminUrl, '--xds-port', String(cp.xdsPort), '--admin-port', '0']);
    expect((await stat(join(dir, 'xds-client.key'))).mode & 0o777).toBe(0o600);
    const bootstrap = JSON.parse(await readFile(join(dir, 'envoy.json'), 'utf8')) as object;
    envoy = await startEnvoy({ bootstrap, name: 'cli-his' });
    await waitFor(async () => cp.statuses.all().find((s) => s.nodeId === `${NS}/his/${his.name}`)?.types.get('type.googleapis.com/envoy.config.listener.v3.Listener')?.ackedVersion, {
      what: 'the CLI-bootstrapped sidecar to ACK its listeners',
    });
  });

  it('refuses a credential for a service that is not in the mesh', async () => {
    const res = await fetch(`${cp.adminUrl}/v1/bootstrap-credentials`, {
      method: 'POST',
      body: JSON.stringify({ namespace: NS, service: 'radiology', publicKeyPem: 'x' }),
    });
    expect(res.status).toBe(404);
  });
});
