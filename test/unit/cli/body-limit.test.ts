// The admin API's body limit is stated where an operator meets it: in the 413 answer and in what the
// CLI prints for it (the usage of apply says it too, see operator-mistakes).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../../src/main.ts';
import { adminRequest } from '../../helpers/admin.ts';
import { serviceYaml } from '../admin/fixtures.ts';
import { clinimesh } from './run-cli.ts';

describe('the admin body limit', () => {
  let cp: RunningControlPlane;
  let dataDir: string;
  const big = `${serviceYaml('clinical', 'lab')}${'# padding to go over the limit\n'.repeat(160_000)}`;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'clinimesh-body-limit-'));
    cp = await startControlPlane({ xdsPort: 0, xdsRestPort: 0, adminPort: 0, dataDir });
  });
  afterAll(async () => {
    await cp?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('answers 413 naming the limit', async () => {
    const res = await adminRequest(cp, 'POST', '/v1/apply', { body: big });
    expect(res.status).toBe(413);
    expect(res.text).toContain('4 MiB');
  });

  it('is one line from the CLI, exit 1', async () => {
    const file = join(dataDir, 'big.yaml');
    await writeFile(file, big);
    const run = await clinimesh(['apply', '-f', file], {
      env: { CLINIMESH_CREDENTIAL: cp.adminCredentialPath! },
    });
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/4 MiB/);
  });
});
