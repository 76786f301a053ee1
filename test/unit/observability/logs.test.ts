// Structured logs: secrets are redacted by construction, whatever object carries them; Consul
// outages and recoveries are one line each; attestations are logged with who and from where, never
// with the evidence; the node agent logs JSON through the process logger by default.
import { generateKeyPairSync } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCsr } from '../../../src/ca/csr.ts';
import type { ConsulHttp, ConsulResponse } from '../../../src/consul/http.ts';
import { ConsulWatcher } from '../../../src/discovery/consul.ts';
import { Attestor } from '../../../src/identity/attestation.ts';
import { identityApi } from '../../../src/identity/http.ts';
import { createLogger, type Logger } from '../../../src/log.ts';
import { startControlPlane, type RunningControlPlane } from '../../../src/main.ts';
import { adminRequest } from '../../helpers/admin.ts';
import { waitFor } from '../../helpers/wait.ts';
import { serviceYaml } from '../admin/fixtures.ts';
import { RecordingSink } from '../consul/helpers.ts';

/** A logger at `level` whose JSON lines are kept, parsed, in `lines`. */
function capture(level = 'debug'): {
  logger: Logger;
  lines: () => Array<Record<string, unknown>>;
  text: () => string;
} {
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      raw.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const logger = createLogger({ level, destination });
  return {
    logger,
    lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>),
    text: () => raw.join('\n'),
  };
}

describe('log redaction', () => {
  it('redacts secret-named fields at any depth up to three, and keeps the rest', () => {
    const { logger, lines, text } = capture();
    logger.info({ token: 'cmt_secret-1', service: 'his' }, 'top level');
    logger.info({ credential: { token: 'cmt_secret-2', server: 'https://127.0.0.1:19000' } }, 'nested');
    logger.info(
      // Built at run time so no key-like literal sits in the tree.
      {
        issued: { workload: { privateKeyPem: `${'-'.repeat(5)}BEGIN PRIVATE KEY${'-'.repeat(5)}secret-3` } },
      },
      'two deep',
    );
    logger
      .child({ component: 'agent' })
      .warn(
        { evidence: { joinToken: 'cmjt.secret-4', kubernetesToken: 'eyJsecret-5' }, keyPem: 'secret-6' },
        'child',
      );
    logger.info(
      { headers: { authorization: 'Bearer secret-7' }, secret: 'secret-8', privateKey: 'secret-9' },
      'more names',
    );
    for (let i = 1; i <= 9; i++) expect(text()).not.toContain(`secret-${i}`);
    expect(text()).not.toContain('PRIVATE KEY');
    expect(lines()[0]).toMatchObject({ level: 30, msg: 'top level', token: '[redacted]', service: 'his' });
    expect(lines()[1]).toMatchObject({
      credential: { token: '[redacted]', server: 'https://127.0.0.1:19000' },
    });
    expect(lines()[2]).toMatchObject({ issued: { workload: { privateKeyPem: '[redacted]' } } });
    expect(lines()[3]).toMatchObject({
      component: 'agent',
      level: 40,
      keyPem: '[redacted]',
      evidence: { joinToken: '[redacted]', kubernetesToken: '[redacted]' },
    });
    expect(lines()[4]).toMatchObject({
      headers: { authorization: '[redacted]' },
      secret: '[redacted]',
      privateKey: '[redacted]',
    });
    expect(typeof lines()[0]!.time).toBe('string');
  });
});

describe('Consul outage and recovery', () => {
  it('logs one warning when a watch starts failing and one line when it recovers, with the staleness', async () => {
    const { logger, lines } = capture('info');
    let calls = 0;
    const answer = (index: bigint): ConsulResponse => ({ status: 200, body: [], index, knownLeader: true });
    const client: ConsulHttp = {
      get: async (_path, _query, o) => {
        calls++;
        if (calls === 1) return answer(5n);
        if (calls <= 4) throw new Error('connect ECONNREFUSED 127.0.0.1:8500');
        if (calls === 5) return answer(6n);
        // Then block like Consul until stopped.
        return new Promise((_, reject) =>
          o?.signal?.addEventListener('abort', () => reject(new Error('aborted'))),
        );
      },
      put: () => Promise.reject(new Error('unused')),
      delete: () => Promise.reject(new Error('unused')),
      close: () => undefined,
    };
    const watcher = new ConsulWatcher({
      client,
      sink: new RecordingSink(),
      backoff: { baseMs: 5, maxMs: 10 },
      rateLimit: { burst: 100, refillMs: 1 },
      log: logger,
    });
    watcher.watch('his.clinical', 'his', 'http');
    try {
      await waitFor(async () => calls >= 6, { what: 'the watch to fail three times and recover' });
    } finally {
      await watcher.stop();
    }
    const consul = lines().filter((l) => l.component === 'consul');
    expect(consul.map((l) => l.msg)).toEqual([
      'consul watch failing; keeping the last endpoints (fail static)',
      'consul watch recovered',
    ]);
    expect(consul[0]).toMatchObject({
      level: 40,
      service: 'his.clinical',
      consulName: 'his',
      error: 'connect ECONNREFUSED 127.0.0.1:8500',
      synced: true,
    });
    expect(consul[0]!.stalenessSeconds).toEqual(expect.any(Number));
    expect(consul[1]).toMatchObject({ level: 30, service: 'his.clinical', failures: 3 });
    expect(consul[1]!.stalenessSeconds).toEqual(expect.any(Number));
  });
});

describe('attestation logs', () => {
  let cp: RunningControlPlane;
  let server: Server;
  const logs = capture('info');

  beforeAll(async () => {
    cp = await startControlPlane({ xdsPort: 0, xdsRestPort: 0, adminPort: 0 });
    expect(
      (await adminRequest(cp, 'POST', '/v1/apply', { body: serviceYaml('clinical', 'lab') })).status,
    ).toBe(200);
    // The agents' API on a plain loopback listener: the same handler, with a logger the test reads.
    const api = identityApi({
      attestor: new Attestor(cp.joinTokens, () => true),
      signer: cp.signer,
      trustDomains: () => [cp.ca.trustDomain],
      declared: () => true,
      log: logs.logger,
    });
    server = createServer((req, res) => {
      if (!api(req, res)) res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    server?.close();
    await cp?.stop();
  });

  const attest = (body: unknown): Promise<number> =>
    new Promise((resolve, reject) => {
      const { port } = server.address() as AddressInfo;
      const req = request(
        { host: '127.0.0.1', port, method: 'POST', path: '/v1/agent/attest', agent: false },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  const csrs = () => ({
    xdsCsr: createCsr(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey),
    workloadCsr: createCsr(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey),
  });

  it('logs an accepted attestation with method, subject, identity and remote address, and never the token', async () => {
    const issued = cp.joinTokens.create({
      namespace: 'clinical',
      service: 'lab',
      instance: 'lab-1',
      createdBy: 'test',
    });
    if (!issued.ok) throw new Error('join token');
    expect(await attest({ joinToken: issued.value.token, ...csrs() })).toBe(200);
    const line = logs.lines().find((l) => l.msg === 'attestation accepted');
    expect(line).toMatchObject({
      component: 'identity',
      method: 'join-token',
      subject: `join-token ${issued.value.id}`,
      identity: `spiffe://${cp.ca.trustDomain}/ns/clinical/sa/lab`,
      instance: 'lab-1',
      remoteAddress: '127.0.0.1',
    });
    const secret = issued.value.token.split('.')[2]!;
    expect(logs.text()).not.toContain(secret);
  });

  it('logs a refused attestation as a warning with its reasons, and never the token', async () => {
    const bogus = `cmjt.0123456789abcdef.${'s'.repeat(43)}.${'p'.repeat(43)}`;
    expect(await attest({ joinToken: bogus, ...csrs() })).toBe(401);
    const line = logs.lines().find((l) => l.msg === 'attestation refused');
    expect(line).toMatchObject({
      component: 'identity',
      level: 40,
      method: 'join-token',
      remoteAddress: '127.0.0.1',
    });
    expect(line!.reasons).toEqual([expect.stringMatching(/join token refused/)]);
    expect(logs.text()).not.toContain('s'.repeat(43));
  });
});
