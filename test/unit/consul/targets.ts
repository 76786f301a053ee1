// What the contract suite runs against: the in-process double, or a real Consul (CONSUL_HTTP_ADDR, or
// `consul agent -dev` started here when `consul` is on PATH). Both are driven only through the HTTP API.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { ConsulDouble } from '../../consul-double/server.ts';
import { freePort } from '../../helpers/ports.ts';
import { waitFor } from '../../helpers/wait.ts';
import { clientFor } from './helpers.ts';

export interface ConsulTarget {
  /** host:port of the HTTP API. */
  readonly address: string;
  /** A token allowed to read and write, when ACLs are on. */
  readonly token?: string;
  /** Whether the target enforces ACLs (so the token cases can run). */
  readonly aclEnabled: boolean;
  /** Blocking queries the target is holding, where it can tell (the double). */
  heldQueries?(): number;
  /** Moves the target's clock (the double); a real Consul only has real time. */
  advanceClock?(ms: number): void;
  close(): Promise<void>;
}

/** Lets `ms` of the target's time pass: at once on the double, by waiting on a real Consul. */
export async function elapse(target: ConsulTarget, ms: number): Promise<void> {
  if (target.advanceClock) target.advanceClock(ms);
  else await sleep(ms);
}

export const MANAGEMENT_TOKEN = 'c1a7e0d2-5b1e-4c8e-9a57-0d0b1e000001';

export async function startDoubleTarget(): Promise<ConsulTarget & { double: ConsulDouble }> {
  const double = await ConsulDouble.start({ acl: { management: MANAGEMENT_TOKEN } });
  return {
    double,
    address: double.address,
    token: MANAGEMENT_TOKEN,
    aclEnabled: true,
    heldQueries: () => double.pendingBlockingQueries,
    advanceClock: (ms) => double.advanceClock(ms),
    close: () => double.stop(),
  };
}

function onPath(binary: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Why no real Consul is available, or undefined when one is. */
export function realConsulUnavailable(): string | undefined {
  if (process.env.CONSUL_HTTP_ADDR) return undefined;
  if (onPath('consul')) return undefined;
  return 'no real Consul: CONSUL_HTTP_ADDR is not set and `consul` is not on PATH (TESTING.md, Consul section)';
}

export async function startRealTarget(): Promise<ConsulTarget> {
  const external = process.env.CONSUL_HTTP_ADDR;
  if (external) {
    const token = process.env.CONSUL_HTTP_TOKEN;
    return {
      address: external,
      ...(token ? { token } : {}),
      aclEnabled: token !== undefined,
      close: async () => {},
    };
  }
  return startDevAgent(onPath('consul')!);
}

async function startDevAgent(binary: string): Promise<ConsulTarget> {
  const [http, server, serfLan, serfWan] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const hcl = [
    `ports { dns = -1, grpc = -1, serf_lan = ${serfLan}, serf_wan = ${serfWan}, server = ${server} }`,
    `acl { enabled = true, default_policy = "deny", tokens { initial_management = "${MANAGEMENT_TOKEN}", agent = "${MANAGEMENT_TOKEN}" } }`,
  ];
  const args = [
    'agent',
    '-dev',
    '-bind',
    '127.0.0.1',
    '-client',
    '127.0.0.1',
    '-http-port',
    String(http),
    ...hcl.flatMap((h) => ['-hcl', h]),
  ];
  const child: ChildProcess = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const address = `127.0.0.1:${http}`;
  const close = async (): Promise<void> => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  try {
    const client = await clientFor(address, MANAGEMENT_TOKEN);
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`consul exited with ${child.exitCode}`);
        const res = await client.get('/status/leader', {}, { timeoutMs: 1_000 });
        return typeof res.body === 'string' && res.body !== '';
      },
      { what: 'the consul dev agent to elect itself leader', timeoutMs: 30_000, intervalMs: 200 },
    );
    client.close();
  } catch (err) {
    await close();
    throw new Error(`${(err as Error).message}\n--- consul log ---\n${log}`, { cause: err });
  }
  return { address, token: MANAGEMENT_TOKEN, aclEnabled: true, close };
}

/**
 * Declares the same cases against the double and, when there is one, a real Consul (skipped with a
 * printed reason otherwise). `cases` gets the live target once `beforeAll` has started it.
 */
export function contractSuite(title: string, cases: (target: () => ConsulTarget) => void): void {
  const run = (name: string, make: () => Promise<ConsulTarget>): void => {
    describe(`${title}: ${name}`, () => {
      let target: ConsulTarget | undefined;
      beforeAll(async () => {
        target = await make();
      });
      afterAll(async () => {
        await target?.close();
      });
      cases(() => {
        if (!target) throw new Error('the target did not start');
        return target;
      });
    });
  };
  run('in-process double', startDoubleTarget);
  const unavailable = realConsulUnavailable();
  if (unavailable) {
    console.warn(`[${title}] skipping the real-Consul run: ${unavailable}`);
    describe.skip(`${title}: real Consul`, () => {
      it('needs CONSUL_HTTP_ADDR or `consul` on PATH', () => {});
    });
  } else {
    run('real Consul', startRealTarget);
  }
}
