// Several control-plane replicas over Consul (`--store consul`): the CA's store in KV (keys sealed
// with the KEK), the shared CA followed by every replica, and one elected leader for singleton
// duties — root rotation steps and trust-domain migration. A non-leader refuses those with the
// leader's name and address; a new leader finishes a rotation its predecessor left half done.
import type { ConsulConfig } from '../consul/config.ts';
import { consulDefaultAclPolicy } from '../consul/acl-policy.ts';
import { createConsulClient, type ConsulHttp } from '../consul/http.ts';
import { readKek } from '../ca/sealed-keys.ts';
import { fail, formatProblem, ok, type Problem, type Result } from '../errors.ts';
import { log as rootLog } from '../log.ts';
import { ConsulCaStore } from '../store/consul-ca-store.ts';
import { ConsulKv } from '../store/consul-kv.ts';
import { LeaderElection, type LeaderInfo } from '../store/leader.ts';
import {
  finishRootRotation,
  rotateRoot,
  type RootRotationDeps,
  type RotationOutcome,
} from './root-rotation.ts';
import type { ControlPlaneIdentity } from './serving-identity.ts';
import { SharedCa } from './shared-ca.ts';

export interface ReplicaOptions {
  readonly consul: ConsulConfig;
  /** KV prefix of everything clinimesh keeps in Consul (default `clinimesh`). */
  readonly prefix: string;
  /** 32 random bytes every replica reads (a mounted Secret on Kubernetes). */
  readonly kekFile: string;
  /** This replica's name (the pod name on Kubernetes). */
  readonly replica: string;
}

export interface SharedStore {
  readonly http: ConsulHttp;
  readonly kv: ConsulKv;
  readonly caStore: ConsulCaStore;
}

export async function openSharedStore(o: ReplicaOptions): Promise<Result<SharedStore>> {
  const kek = readKek(o.kekFile);
  if (!kek.ok) return kek;
  const http = await createConsulClient(o.consul);
  if (!http.ok) return http;
  if ((await consulDefaultAclPolicy(http.value)) === 'allow')
    rootLog
      .child({ component: 'replicas' })
      .warn(
        { prefix: o.prefix },
        `Consul's default ACL policy is allow: whoever reaches Consul can write clinimesh's records under ` +
          `${o.prefix}/ (operator and join tokens, state) and so act as its admin; turn on Consul ACLs ` +
          `with default_policy deny and give clinimesh a token that alone may write that prefix`,
      );
  const kv = new ConsulKv(http.value);
  return ok({ http: http.value, kv, caStore: new ConsulCaStore(kv, o.prefix, kek.value) });
}

export interface Replication {
  readonly leader: LeaderElection;
  isLeader(): boolean;
  /** Root rotation, on the leader only. */
  rotateRoot(phase: 'begin' | 'complete'): Promise<Result<RotationOutcome>>;
  /** Runs `duty` on the leader only; elsewhere, a refusal naming the leader. */
  asLeader<T>(what: string, duty: () => Promise<Result<T>>): Promise<Result<T>>;
  status(): { replica: string; leader: boolean; leaderReplica?: string; leaderAdminUrl?: string };
  stop(): Promise<void>;
}

export async function startReplication(
  o: ReplicaOptions,
  shared: SharedStore,
  rotation: Omit<RootRotationDeps, 'shared'>,
  serving: ControlPlaneIdentity,
  adminUrl: string | undefined,
): Promise<Result<Replication>> {
  const log = rootLog.child({ component: 'replicas', replica: o.replica });
  const sharedCa = new SharedCa({
    kv: shared.kv,
    prefix: o.prefix,
    store: shared.caStore,
    ca: rotation.ca,
    signer: rotation.signer,
    serving,
    refreshSecrets: () => {
      for (const node of rotation.cache.nodeIds()) rotation.reconciler.refreshSecrets(node);
    },
  });
  const started = await sharedCa.start();
  if (!started.ok) return started;
  const deps: RootRotationDeps = { ...rotation, shared: sharedCa };
  const leader = new LeaderElection({
    http: shared.http,
    kv: shared.kv,
    key: `${o.prefix}/leader`,
    replica: o.replica,
    adminUrl,
    onChange: (leading) => {
      if (leading && sharedCa.step() === 'awaiting-acks') void resume();
    },
  });
  // A rotation the last leader began but did not finish: finish it, or, when its new root was never
  // stored, only let signing go on (the operator begins again).
  async function resume(): Promise<void> {
    const reloaded = await rotation.ca.reload();
    if (!reloaded.ok) log.warn({ reasons: reloaded.errors.map(formatProblem) }, 'cannot reload the CA');
    if (!rotation.ca.rotating) {
      rotation.signer.resume();
      await sharedCa.record('idle', rotation.signer.sharedState());
      log.warn('a root rotation stopped before its new root was stored: nothing to finish; begin it again');
      return;
    }
    log.info('a root rotation was left between begin and advice: finishing it');
    const r = await finishRootRotation(deps);
    if (!r.ok) log.error({ reasons: r.errors.map(formatProblem) }, 'finishing the root rotation failed');
  }
  leader.start();
  const notLeader = (what: string): Problem => {
    const l = leader.leader();
    const who = l
      ? `the leader is ${l.replica}${l.adminUrl ? ` (${l.adminUrl})` : ''}`
      : 'no leader is elected yet';
    return {
      code: 'CONFLICT',
      resource: `replica ${o.replica}`,
      message: `${what} runs on the leader only and this replica is not it: ${who}; send it there`,
    };
  };
  const asLeader = async <T>(what: string, duty: () => Promise<Result<T>>): Promise<Result<T>> =>
    leader.isLeader() ? duty() : fail([notLeader(what)]);
  return ok({
    leader,
    isLeader: () => leader.isLeader(),
    rotateRoot: (phase) => asLeader('root rotation', () => rotateRoot(deps, phase)),
    asLeader,
    status: () => {
      const l: LeaderInfo | undefined = leader.leader();
      return {
        replica: o.replica,
        leader: leader.isLeader(),
        ...(l && { leaderReplica: l.replica, ...(l.adminUrl && { leaderAdminUrl: l.adminUrl }) }),
      };
    },
    stop: async () => {
      await leader.stop();
      await sharedCa.stop();
    },
  });
}
