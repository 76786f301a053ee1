// Three control-plane replicas (child processes, so SIGKILL is real) sharing the CA and a leader
// through Consul (the in-process Consul double), behind real Envoy sidecars, each joined through a
// join token and an agent that names every replica.
// - EMR calls HIS in a loop while the replica EMR's sidecar streams from is killed: no request
//   fails, the sidecar is on another replica within 5 s, and since versions are content hashes it is
//   sent nothing new — no CDS or LDS update, no listener drained.
// - The leader is killed in the middle of a root rotation: another replica becomes leader and
//   finishes it (agents are advised and renew from the new root), and sidecars stay connected.
// - Consul goes away: every replica keeps serving what it has; it comes back and they follow again.
import { X509Certificate, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { readCertificate } from '../../src/agent/secret-files.ts';
import { WORKLOAD_SECRET } from '../../src/xds/generate/secrets.ts';
import { ConsulDouble } from '../consul-double/server.ts';
import { adminRequest } from '../helpers/admin.ts';
import { describeWithEnvoy, dumpLogsOnFailure, type EnvoyHandle } from '../helpers/envoy.ts';
import {
  EMR_TO_HIS_PORT,
  emrManifest,
  HIS_APP_PORT,
  HIS_MESH_PORT,
  hisManifest,
  instances,
  meshManifest,
  serviceManifest,
} from '../helpers/mesh.ts';
import {
  connectedReplica,
  startHaSidecar,
  startReplica,
  type HaSidecar,
  type Replica,
} from '../helpers/replicas.ts';
import { failures, shoot, startLoop } from '../helpers/traffic.ts';
import { startHttpUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const [his1, his2] = instances('his', 2) as [
  { name: string; address: string },
  { name: string; address: string },
];
const [emr] = instances('emr', 1) as [{ name: string; address: string }];
const [lab, lab2] = instances('lab', 2) as [
  { name: string; address: string },
  { name: string; address: string },
];
const labManifest = serviceManifest({
  name: 'lab',
  ports: ['{ name: http, port: 15031, targetPort: 8080, protocol: http }'],
  instances: [lab, lab2],
});

/** What says "new config arrived": update counts, the versions held, listeners changed or draining. */
async function configCounters(envoy: EnvoyHandle) {
  const stats = await envoy.stats(
    '^(cluster_manager\\.cds\\.update_success|listener_manager\\.lds\\.update_success|listener_manager\\.listener_modified|listener_manager\\.total_listeners_draining)$',
  );
  const text = await envoy.admin('/stats?filter=version_text');
  const versions = [
    ...text.matchAll(/^(cluster_manager\.cds|listener_manager\.lds)\.version_text: "?([^"\n]*)"?$/gm),
  ].map((m) => `${m[1]}=${m[2]}`);
  return { ...stats, versions: versions.sort().join(' ') };
}

describeWithEnvoy('three control-plane replicas sharing state in Consul', () => {
  let work: string;
  let consul: ConsulDouble;
  let args: string[];
  const replicas: Replica[] = [];
  const sidecars: HaSidecar[] = [];
  const apps: Upstream[] = [];
  const url = `http://${emr.address}:${EMR_TO_HIS_PORT}/patients/1`;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'clinimesh-ha-'));
    const manifests = join(work, 'mesh.yaml');
    await writeFile(
      manifests,
      [meshManifest, hisManifest([his1, his2]), emrManifest(emr), labManifest].join('---\n'),
    );
    const kek = join(work, 'kek');
    await writeFile(kek, randomBytes(32), { mode: 0o600 });
    consul = await ConsulDouble.start();
    args = ['--store', 'consul', '--consul-addr', consul.address, '--ca-kek-file', kek, '-f', manifests];
    // The first makes the CA and the first admin token; the others, started together, find them.
    replicas.push(await startReplica({ name: 'cp-0', args: [...args, '--replica-name', 'cp-0'] }));
    const credential = replicas[0]!.adminCredential!;
    replicas.push(
      ...(await Promise.all(
        [1, 2].map((i) =>
          startReplica({ name: `cp-${i}`, args: [...args, '--replica-name', `cp-${i}`], credential }),
        ),
      )),
    );
    for (const h of [his1, his2])
      apps.push(await startHttpUpstream({ name: h.name, host: h.address, port: HIS_APP_PORT }));
    for (const [service, inst] of [
      ['his', his1.name],
      ['his', his2.name],
      ['emr', emr.name],
    ] as const)
      sidecars.push(await startHaSidecar(replicas, service, inst));
    await waitFor(async () => (await shoot(url, { timeoutMs: 2_000 })).status === 200, {
      what: 'EMR to reach HIS through the mesh',
      timeoutMs: 30_000,
    });
  }, 120_000);
  afterEach(dumpLogsOnFailure(() => sidecars));
  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail')
      for (const r of replicas) console.error(`--- ${r.name} ---\n${r.output().slice(-4000)}`);
  });

  /** Brings a killed replica back where the sidecars' bootstraps look for it. */
  async function revive(dead: Replica): Promise<void> {
    const i = replicas.indexOf(dead);
    replicas[i] = await startReplica({
      name: dead.name,
      host: dead.host,
      xdsPort: dead.xdsPort,
      xdsRestPort: dead.xdsRestPort,
      adminPort: dead.adminPort,
      credential: dead.adminCredential,
      args: [...args, '--replica-name', dead.name],
    });
  }

  /** The replica that holds the leader lock and knows it (a restarted namesake does not). */
  const leader = () =>
    waitFor(
      async () => {
        for (const r of replicas.filter((x) => !x.exited)) {
          const status = await adminRequest(r, 'GET', '/v1/status').catch(() => undefined);
          if ((status?.json as { replication?: { leader?: boolean } } | undefined)?.replication?.leader)
            return r;
        }
        return undefined;
      },
      // A dead leader's session ends within 2 × TTL (20 s) and its lock-delay (5 s): Consul's bound.
      { what: 'a leader', timeoutMs: 45_000, intervalMs: 250 },
    );

  const rotationRecord = () => {
    const entry = consul.kv.get('clinimesh/ca/rotation');
    return entry
      ? (JSON.parse(entry.value.toString('utf8')) as { step: string; renewalEpoch: number })
      : undefined;
  };
  const storedRoot = () =>
    (
      JSON.parse(consul.kv.get('clinimesh/ca/hierarchy')!.value.toString('utf8')) as {
        certificates: { 'ca.crt': string };
      }
    ).certificates['ca.crt'];
  afterAll(async () => {
    await Promise.all(sidecars.map((s) => s.stop()));
    await Promise.all(apps.map((a) => a.close()));
    await Promise.all(replicas.map((r) => r.stop()));
    await consul?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('warns at start that Consul without ACLs lets anyone act as admin (this double runs without them)', () => {
    for (const r of replicas) expect(r.output(), r.name).toContain("Consul's default ACL policy is allow");
  });

  it('SIGKILL of the replica a sidecar streams from: 0 failed requests, another replica within 5 s, no new CDS/LDS', async () => {
    const sidecar = sidecars.at(-1)!;
    const before = await waitFor(() => connectedReplica(sidecar, replicas), {
      what: 'EMR sidecar to be connected to a replica',
    });
    const counters = await configCounters(sidecar);
    expect(counters.versions).toMatch(/cds=\w+.*lds=\w+/);
    const loop = startLoop(() => shoot(url, { timeoutMs: 5_000 }), {
      total: 100_000,
      concurrency: 2,
      maxMs: 30_000,
    });
    await waitFor(async () => loop.shots.length >= 20, { what: 'the request loop to run' });
    const killedAt = Date.now();
    await before.kill();
    const after = await waitFor(
      async () => {
        const r = await connectedReplica(sidecar, replicas);
        return r && r !== before ? r : undefined;
      },
      { what: 'EMR sidecar to reconnect to another replica', timeoutMs: 10_000, intervalMs: 50 },
    );
    const reconnectMs = Date.now() - killedAt;
    // Requests keep flowing for a while on the new stream.
    const seen = loop.shots.length;
    await waitFor(async () => loop.shots.length >= seen + 50, { what: 'more requests after the failover' });
    const shots = await loop.stop();
    console.info(
      `failover: ${before.name} killed, ${sidecar.name} on ${after.name} after ${reconnectMs} ms; ${shots.length} requests`,
    );
    expect(failures(shots)).toEqual([]);
    expect(reconnectMs).toBeLessThan(5_000);
    expect((await sidecar.stats('^control_plane\\.connected_state$'))['control_plane.connected_state']).toBe(
      1,
    );
    expect(await configCounters(sidecar)).toEqual(counters);
    await revive(before);
  }, 90_000);

  it('SIGKILL of the leader in the middle of a root rotation: another replica finishes it, sidecars stay connected', async () => {
    const first = await leader();
    const oldRoot = storedRoot();
    // A sidecar that streams from the leader only and is frozen: it never ACKs the new bundle, so the
    // leader is held between begin and its advice to renew — where it is killed.
    const frozen = await startHaSidecar([first], 'lab', lab.name);
    const loop = startLoop(() => shoot(url, { timeoutMs: 5_000 }), {
      total: 100_000,
      concurrency: 2,
      maxMs: 60_000,
    });
    try {
      process.kill(frozen.pid, 'SIGSTOP');
      const begun = adminRequest(first, 'POST', '/v1/ca/rotate-root?phase=begin').catch((e: Error) => e);
      // In the middle: the new root stored, the advice to renew not yet given.
      await waitFor(async () => rotationRecord()?.step === 'awaiting-acks' && storedRoot() !== oldRoot, {
        what: 'the rotation to begin',
      }).catch(async (e: Error) => {
        const keys = consul.kv.list('').map((k) => `${k.key}=${k.value.toString('utf8').slice(0, 80)}`);
        throw new Error(
          `${e.message}; ${first.name} answered ${JSON.stringify(await begun)}; KV: ${keys.join(' | ')}`,
        );
      });
      // From here a replica may serve the admin API from the new root: an operator's credential file
      // carries both roots during a rotation, and so does the test's.
      for (const r of replicas) r.trustRoots(`${oldRoot.trim()}\n${storedRoot().trim()}\n`);
      await first.kill();
      expect(await begun).toBeInstanceOf(Error); // the leader died before answering
      const next = await leader();
      expect(next).not.toBe(first);
      await waitFor(async () => rotationRecord()?.step === 'idle', {
        what: `${next.name} to finish the rotation`,
        timeoutMs: 30_000,
      });
      expect(next.output()).toContain('finishing it');
      const newRoot = new X509Certificate(storedRoot());
      expect(newRoot.toString()).not.toBe(new X509Certificate(oldRoot).toString());
      // Advised, the agents renew from the new root (whichever replica they ask).
      const emrSidecar = sidecars.at(-1)!;
      await waitFor(
        async () => {
          const held = readCertificate(emrSidecar.agent.sdsDir, WORKLOAD_SECRET);
          return held && new X509Certificate(held.certChainPem).checkIssued(newRoot);
        },
        { what: 'EMR agent to renew from the new root', timeoutMs: 20_000 },
      );
      const seen = loop.shots.length;
      await waitFor(async () => loop.shots.length >= seen + 30, { what: 'requests after the renewal' });
      const shots = await loop.stop();
      expect(failures(shots)).toEqual([]);
      for (const s of sidecars)
        expect(
          (await s.stats('^control_plane\\.connected_state$'))['control_plane.connected_state'],
          s.name,
        ).toBe(1);
      // Completing is the leader's call too: another replica names it.
      await revive(first);
      const follower = replicas.find((r) => r !== next)!;
      const refused = await adminRequest(follower, 'POST', '/v1/ca/rotate-root?phase=complete');
      expect(refused.status).toBe(409);
      expect(refused.text).toContain(next.name);
      expect((await adminRequest(next, 'POST', '/v1/ca/rotate-root?phase=complete')).status).toBe(200);
      // The admin API now serves from the new root.
      for (const r of replicas) r.trustRoots(newRoot.toString());
    } finally {
      await loop.stop();
      process.kill(frozen.pid, 'SIGCONT');
      await frozen.stop();
    }
  }, 180_000);

  it('100 concurrent applies over the 3 replicas: each commits or is refused as a conflict, the revision counts the commits, every replica serves the same versions within 1 s', async () => {
    const live = replicas.filter((r) => !r.exited);
    expect(live).toHaveLength(3);
    const revisionOf = async (r: Replica) =>
      ((await adminRequest(r, 'GET', '/v1/status')).json as { revision: number }).revision;
    const start = await revisionOf(live[0]!);
    // Every apply rewrites HIS with its own weight for his-1: each commit is a real change, concurrent
    // ones race for the same revision, and EMR's endpoints (EDS) follow the weight.
    const hisWithWeight = (w: number) => `apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: his, namespace: clinical }
spec:
  ports:
    - { name: http, port: ${HIS_MESH_PORT}, targetPort: ${HIS_APP_PORT}, protocol: http }
  instances:
    - { name: ${his1.name}, address: ${his1.address}, appAddress: ${his1.address}, weight: ${w} }
    - { name: ${his2.name}, address: ${his2.address}, appAddress: ${his2.address} }
`;
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        adminRequest(live[i % 3]!, 'POST', '/v1/apply', { body: hisWithWeight(i + 2) }),
      ),
    );
    const finished = Date.now();
    const committed = answers.filter(
      (a) => a.status === 200 && (a.json as { changed?: boolean }).changed === true,
    );
    const conflicts = answers.filter(
      (a) => a.status === 409 && (a.json as { errors?: { code: string }[] }).errors?.[0]?.code === 'CONFLICT',
    );
    const other = answers.filter((a) => !committed.includes(a) && !conflicts.includes(a));
    expect(other.map((a) => `${a.status} ${a.text.slice(0, 200)}`)).toEqual([]);
    expect(committed.length).toBeGreaterThan(0);
    // Every commit has its own revision, and together they are exactly the ones after `start`.
    const revisions = committed.map((a) => (a.json as { revision: number }).revision).sort((x, y) => x - y);
    expect(revisions).toEqual(Array.from({ length: committed.length }, (_, i) => start + 1 + i));
    // Every replica converges on that revision and serves the same versions to the same sidecar.
    const node = `clinical/emr/${emr.name}`;
    const versionsOf = async (r: Replica) => {
      const dump = (await adminRequest(r, 'GET', `/v1/config_dump?node=${encodeURIComponent(node)}`))
        .json as Record<string, { version?: string }>;
      return (
        Object.entries(dump)
          // What the applied Service shapes for EMR; CDS, LDS and SDS also carry what the sidecar's own
          // connection told the one replica it streams from, so they differ from an unconnected plan.
          .filter(([k, v]) => (k === 'EDS' || k === 'RDS') && typeof v === 'object' && v?.version)
          .map(([k, v]) => `${k}=${v.version}`)
          .sort()
          .join(' ')
      );
    };
    let last: unknown;
    const converged = await waitFor(
      async () => {
        const seen = await Promise.all(
          live.map(async (r) => [await revisionOf(r), await versionsOf(r)] as const),
        );
        last = seen;
        const same = seen.every(([rev, v]) => rev === start + committed.length && v === seen[0]![1] && v);
        return same ? Date.now() : undefined;
      },
      { what: 'every replica to serve the last revision', timeoutMs: 10_000, intervalMs: 20 },
    ).catch((e: Error) => {
      throw new Error(
        `${e.message}; expected revision ${start + committed.length}; seen ${JSON.stringify(last)}`,
      );
    });
    console.info(
      `100 applies over 3 replicas: ${committed.length} committed, ${conflicts.length} conflicts; converged ${converged - finished} ms after the last answer`,
    );
    expect(converged - finished).toBeLessThanOrEqual(1_000);
  }, 120_000);

  it('with Consul unreachable every replica keeps serving its last state, and follows again on its return', async () => {
    await consul.pause('refuse');
    try {
      const loop = startLoop(() => shoot(url, { timeoutMs: 5_000 }), {
        total: 200,
        concurrency: 2,
        maxMs: 20_000,
      });
      // Certificates are still signed: the CA is in every replica's memory (a new join token, kept in
      // Consul, would have to wait for it).
      for (const s of sidecars) expect((await s.agent.renewNow()).ok, s.name).toBe(true);
      expect(failures(await loop.done)).toEqual([]);
      for (const r of replicas) expect((await adminRequest(r, 'GET', '/readyz')).status, r.name).toBe(200);
    } finally {
      await consul.start();
    }
    const now = await leader();
    await waitFor(
      async () => {
        const views = await Promise.all(
          replicas.map(
            async (r) =>
              (await adminRequest(r, 'GET', '/v1/status')).json as {
                replication?: { leaderReplica?: string };
              },
          ),
        );
        return views.every((v) => v.replication?.leaderReplica === now.name);
      },
      { what: 'every replica to name the same leader again', timeoutMs: 30_000 },
    );
  }, 120_000);
});
