// The certificate authority: owns the current hierarchy and the roots still trusted, issues workload
// certificates, and walks a root rotation (begin: new root signs, both trusted; complete: old one gone).
import { inspect } from 'node:util';
import { fail, ok, type Problem, type Result } from '../errors.ts';
import {
  generateCa,
  issuerOf,
  parseCaPem,
  type CaCertificate,
  type CaHierarchy,
  type CaPem,
  type Issuer,
} from './hierarchy.ts';
import { issueWorkloadCert, signPublicKey, type IssueRequest, type WorkloadCert } from './issue.ts';
import { KEY_TYPES, type KeyType } from './keys.ts';
import { spiffeId, trustDomainProblems, type WorkloadId } from './spiffe.ts';
import { FileCaStore, MemoryCaStore, type CaState, type CaStore } from './store.ts';
import { readCertificate, splitPemCertificates } from './x509.ts';

const HOUR = 3_600_000;

export interface CaOptions {
  /** Where the CA is loaded from or generated into (mode 0700; files 0600). */
  readonly dir: string;
  readonly trustDomain: string;
  /** For keys clinimesh generates: its own root/intermediate and every workload key. */
  readonly keyType?: KeyType;
  readonly workloadTtlMs?: number;
  readonly rootTtlMs?: number;
  /** Generate an intermediate under the root (a loaded hierarchy is used as it is). */
  readonly intermediate?: boolean;
  readonly now?: () => Date;
}

export interface IssueOptions {
  readonly ttlMs?: number;
  /** The mesh's trust domain when it differs from the one the CA was opened with (the mesh changed it). */
  readonly trustDomain?: string;
  readonly dnsNames?: readonly string[];
}

interface Settings {
  readonly trustDomain: string;
  readonly keyType: KeyType;
  readonly workloadTtlMs: number;
  readonly rootTtlMs: number;
  readonly intermediate: boolean;
  readonly now: () => Date;
}

export class CertificateAuthority {
  readonly trustDomain: string;
  readonly #settings: Settings;
  readonly #store: CaStore;
  #state: CaState;
  #issuer: Issuer;

  private constructor(settings: Settings, store: CaStore, state: CaState) {
    this.trustDomain = settings.trustDomain;
    this.#settings = settings;
    this.#store = store;
    this.#state = state;
    this.#issuer = issuerOf(state.current);
  }

  /** Loads the CA in `opts.dir`, or generates one there on first start. */
  static async open(opts: CaOptions): Promise<Result<CertificateAuthority>> {
    return CertificateAuthority.#start(opts, new FileCaStore(opts.dir));
  }

  /** A CA brought as PEM text (the keys of a Kubernetes secret, say); it is kept in memory only. */
  static fromPem(pem: CaPem, opts: Omit<CaOptions, 'dir'>): Result<CertificateAuthority> {
    return CertificateAuthority.#start(opts, new MemoryCaStore(pem));
  }

  static #start(opts: Omit<CaOptions, 'dir'>, store: CaStore): Result<CertificateAuthority> {
    const settings = resolveSettings(opts);
    if (!settings.ok) return settings;
    const stored = store.load();
    if (!stored.ok) return stored;
    const now = settings.value.now();
    if (stored.value === undefined) {
      const state = { current: generate(settings.value), previousRoots: [] };
      const saved = store.save(state);
      return saved.ok ? ok(new CertificateAuthority(settings.value, store, state)) : saved;
    }
    const current = parseCaPem(stored.value.pem, now, store.location);
    if (!current.ok) return current;
    const previousRoots: CaCertificate[] = [];
    for (const pem of splitPemCertificates(stored.value.previousRootsPem)) {
      const facts = readCertificate(pem, 'previous-ca.crt');
      if (!facts.ok) return fail(facts.errors.map((p) => ({ ...p, resource: store.location })));
      if (facts.value.notAfter > now)
        previousRoots.push({ pem: facts.value.x509.toString(), facts: facts.value });
    }
    return ok(new CertificateAuthority(settings.value, store, { current: current.value, previousRoots }));
  }

  /** Problems worth an operator's attention that did not stop the CA (a key file readable by others). */
  get warnings(): readonly Problem[] {
    return this.#store.warnings();
  }

  get rotating(): boolean {
    return this.#state.previousRoots.length > 0;
  }

  spiffeId(id: WorkloadId): string {
    return spiffeId(this.trustDomain, id);
  }

  /** A certificate for a workload's own public key (SPKI, DER); the key never reaches the CA. */
  signWorkloadKey(id: WorkloadId, spkiDer: Buffer, opts: IssueOptions = {}): { certChainPem: string; notAfter: Date; serial: string } {
    return signPublicKey(this.#issuer, this.#request(id, opts), spkiDer);
  }

  /** Throws (ClinimeshError, code CA) only once the CA chain itself has expired. */
  issueWorkload(id: WorkloadId, opts: IssueOptions = {}): WorkloadCert {
    return issueWorkloadCert(this.#issuer, this.#request(id, opts));
  }

  #request(id: WorkloadId, opts: IssueOptions): IssueRequest {
    const ttlMs = opts.ttlMs ?? this.#settings.workloadTtlMs;
    if (!(ttlMs > 0)) throw new TypeError(`ttlMs must be positive, got ${ttlMs}`);
    const trustDomain = opts.trustDomain ?? this.trustDomain;
    return {
      spiffeId: spiffeId(trustDomain, id),
      commonName: `${id.service}.${id.namespace}`,
      organization: trustDomain,
      dnsNames: opts.dnsNames ?? [],
      keyType: this.#settings.keyType,
      ttlMs,
      now: this.#settings.now(),
    };
  }

  /** PEMs of every root a peer must trust: the current one first, then any a rotation is retiring. */
  trustBundle(): string[] {
    return [this.#state.current.root.pem, ...this.#state.previousRoots.map((r) => r.pem)];
  }

  /**
   * Starts a root rotation: `next` (an operator's new CA) or a freshly generated hierarchy signs from now
   * on, and the old root stays in the trust bundle until `completeRootRotation`. The old root's key is
   * dropped: a retiring root never signs again.
   */
  beginRootRotation(next?: CaPem): Result<void> {
    if (this.rotating) return problem('a root rotation is in progress: complete it before starting another');
    let current: CaHierarchy;
    if (next) {
      const parsed = parseCaPem(next, this.#settings.now(), 'next CA');
      if (!parsed.ok) return parsed;
      current = parsed.value;
      if (current.root.facts.x509.fingerprint256 === this.#state.current.root.facts.x509.fingerprint256) {
        return problem('the next root is the current root');
      }
    } else {
      current = generate(this.#settings);
    }
    const old = this.#state.current.root;
    return this.#commit({ current, previousRoots: [{ pem: old.pem, facts: old.facts }] });
  }

  /** Retires the roots a rotation kept trusted. Do it once every workload holds a certificate from the new root. */
  completeRootRotation(): Result<void> {
    if (!this.rotating) return problem('no root rotation is in progress');
    return this.#commit({ current: this.#state.current, previousRoots: [] });
  }

  #commit(state: CaState): Result<void> {
    const saved = this.#store.save(state);
    if (!saved.ok) return saved;
    this.#state = state;
    this.#issuer = issuerOf(state.current);
    return ok(undefined);
  }

  /** What the CA is, safe to log or return from the admin API. */
  describe(): CaDescription {
    const summary = (c: CaCertificate): CertSummary => ({
      subject: c.facts.x509.subject.replace(/\n/g, ', '),
      fingerprint256: c.facts.x509.fingerprint256,
      notAfter: c.facts.notAfter.toISOString(),
    });
    const { root, intermediate } = this.#state.current;
    return {
      trustDomain: this.trustDomain,
      location: this.#store.location,
      signingKey: this.#issuer.key.description,
      root: summary(root),
      ...(intermediate && { intermediate: summary(intermediate) }),
      previousRoots: this.#state.previousRoots.map(summary),
      signerExpiresAt: this.#issuer.notAfter.toISOString(),
    };
  }

  toJSON(): CaDescription {
    return this.describe();
  }

  [inspect.custom](): string {
    return `CertificateAuthority ${JSON.stringify(this.describe())}`;
  }
}

export interface CertSummary {
  readonly subject: string;
  readonly fingerprint256: string;
  readonly notAfter: string;
}

export interface CaDescription {
  readonly trustDomain: string;
  readonly location: string;
  readonly signingKey: string;
  readonly root: CertSummary;
  readonly intermediate?: CertSummary;
  readonly previousRoots: readonly CertSummary[];
  readonly signerExpiresAt: string;
}

const problem = (message: string): Result<void> => fail([{ code: 'CA', message }]);

function generate(s: Settings): CaHierarchy {
  return generateCa({
    trustDomain: s.trustDomain,
    keyType: s.keyType,
    ttlMs: s.rootTtlMs,
    intermediate: s.intermediate,
    now: s.now(),
  });
}

function resolveSettings(opts: Omit<CaOptions, 'dir'>): Result<Settings> {
  const problems = trustDomainProblems(opts.trustDomain);
  const keyType = opts.keyType ?? 'ecdsa-p256';
  if (!KEY_TYPES.includes(keyType))
    problems.push({ code: 'CA', field: 'keyType', message: `unknown key type "${keyType}"` });
  const workloadTtlMs = opts.workloadTtlMs ?? 24 * HOUR;
  const rootTtlMs = opts.rootTtlMs ?? 10 * 365 * 24 * HOUR;
  for (const [field, ms] of [
    ['workloadTtlMs', workloadTtlMs],
    ['rootTtlMs', rootTtlMs],
  ] as const) {
    // X.509 times have whole seconds; tests use lifetimes of seconds to watch rotation happen.
    if (!(ms >= 1000))
      problems.push({ code: 'CA', field, message: `must be at least one second, got ${ms}` });
  }
  if (problems.length > 0) return fail(problems);
  const now = opts.now ?? (() => new Date());
  return ok({
    trustDomain: opts.trustDomain,
    keyType,
    workloadTtlMs,
    rootTtlMs,
    intermediate: opts.intermediate ?? false,
    now,
  });
}
