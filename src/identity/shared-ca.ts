// Replicas sharing one CA through Consul KV: each watches the CA's keys with blocking reads and
// follows what the leader changed — a root rotation's new hierarchy reaches its signer, its own
// serving trust and every connected sidecar's trust bundle; the rotation state (renewal epoch,
// signing paused while a new root waits for ACKs) reaches its signer, so agents are answered alike
// whichever replica they ask. The leader records each rotation step here before going on, so a new
// leader can finish what a dead one began.
import type { CertificateAuthority } from '../ca/index.ts';
import { fail, formatProblem, ok, type Result } from '../errors.ts';
import { log as rootLog, type Logger } from '../log.ts';
import { caKeys, type ConsulCaStore } from '../store/consul-ca-store.ts';
import type { ConsulKv, KvEntry } from '../store/consul-kv.ts';
import { watchKv, type KvWatch } from '../store/consul-kv-watch.ts';
import type { RotationStep } from './root-rotation.ts';
import type { ControlPlaneIdentity } from './serving-identity.ts';
import type { SignerState, WorkloadSigner } from './workload-signer.ts';

export interface SharedCaDeps {
  readonly kv: ConsulKv;
  readonly prefix: string;
  readonly store: ConsulCaStore;
  readonly ca: CertificateAuthority;
  readonly signer: WorkloadSigner;
  readonly serving: ControlPlaneIdentity;
  /** Re-plans every sidecar's trust bundle (an SDS push where it changed). */
  readonly refreshSecrets: () => void;
  readonly log?: Logger;
}

interface RotationRecord extends SignerState {
  readonly step: RotationStep;
}

const rotationKey = (prefix: string) => `${prefix}/ca/rotation`;

function parseRecord(value: Buffer): RotationRecord | undefined {
  try {
    const r = JSON.parse(value.toString('utf8')) as Partial<RotationRecord>;
    return typeof r.renewalEpoch === 'number' && typeof r.paused === 'boolean'
      ? {
          step: r.step === 'awaiting-acks' ? 'awaiting-acks' : 'idle',
          renewalEpoch: r.renewalEpoch,
          paused: r.paused,
        }
      : undefined;
  } catch {
    return undefined;
  }
}

export class SharedCa {
  #watch: KvWatch | undefined;
  #step: RotationStep = 'idle';
  #trustDomainIndex = -1n;
  readonly #log: Logger;

  constructor(private readonly d: SharedCaDeps) {
    this.#log = (d.log ?? rootLog).child({ component: 'ca', store: 'consul' });
  }

  /** Reads the rotation state once (before serving), then follows every change. */
  async start(): Promise<Result<void>> {
    const read = await this.d.kv.get(rotationKey(this.d.prefix), { consistent: true });
    if (!read.ok) return read;
    const record = read.value.value && parseRecord(read.value.value.value);
    if (record) this.#adopt(record);
    this.#watch = watchKv(this.d.kv, `${this.d.prefix}/ca/`, {
      recurse: true,
      onChange: (entries) => this.#follow(entries),
    });
    return ok(undefined);
  }

  async stop(): Promise<void> {
    await this.#watch?.stop();
  }

  /** Where the last rotation stands: `awaiting-acks` means a leader stopped between begin and advice. */
  step(): RotationStep {
    return this.#step;
  }

  /** The leader's record of a rotation step; the other replicas adopt it from their watch. */
  async record(step: RotationStep, signer: SignerState): Promise<Result<void>> {
    const put = await this.d.kv.put(rotationKey(this.d.prefix), JSON.stringify({ step, ...signer }));
    if (!put.ok) return put;
    if (!put.value)
      return fail([{ code: 'CONSUL', resource: rotationKey(this.d.prefix), message: 'not written' }]);
    this.#step = step;
    return ok(undefined);
  }

  #adopt(record: RotationRecord): void {
    this.#step = record.step;
    this.d.signer.adopt(record);
  }

  async #follow(entries: readonly KvEntry[]): Promise<void> {
    const keys = caKeys(this.d.prefix);
    const byKey = new Map(entries.map((e) => [e.key, e]));
    const record = byKey.get(rotationKey(this.d.prefix));
    const parsed = record && parseRecord(record.value);
    if (parsed) this.#adopt(parsed);
    const hierarchy = byKey.get(keys.hierarchy);
    const domain = byKey.get(keys.trustDomain)?.modifyIndex ?? 0n;
    const moved =
      (hierarchy && hierarchy.modifyIndex !== this.d.store.index) || domain !== this.#trustDomainIndex;
    const first = this.#trustDomainIndex === -1n;
    this.#trustDomainIndex = domain;
    if (!moved || first) return;
    const reloaded = await this.d.ca.reload();
    if (!reloaded.ok) {
      this.#log.error(
        { reasons: reloaded.errors.map(formatProblem) },
        'cannot reload the shared CA; signing with what it had',
      );
      return;
    }
    if (!reloaded.value) return;
    // During a rotation the serving certificate keeps its old-root chain (sidecars may not trust the
    // new root yet); once it completes, it moves to the new root.
    if (this.d.ca.rotating) this.d.serving.refreshTrust();
    else this.d.serving.refresh();
    this.d.refreshSecrets();
    this.#log.info(
      {
        root: this.d.ca.describe().root.fingerprint256,
        previousRoots: this.d.ca.describe().previousRoots.length,
      },
      'the shared CA changed: now signing and trusting what the leader stored',
    );
  }
}
