// The certificate authority: owns the current hierarchy, the roots still trusted and the trust domain
// fixed when it was made; signs node agents' CSRs (and issues the control plane's own certificate), and
// walks a root rotation (begin: new root signs, both trusted; complete: old one gone).
import type { KeyObject } from 'node:crypto';
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
import { checkCsr, type CheckedCsr } from './csr.ts';
import {
  issueWorkloadCert,
  signPublicKey,
  type IssueRequest,
  type SignedKey,
  type WorkloadCert,
} from './issue.ts';
import {
  CONTROL_PLANE_NAMESPACE,
  INSTANCE,
  spiffeId,
  trustDomainOfRoot,
  trustDomainProblems,
  type WorkloadId,
} from './spiffe.ts';
import {
  loadState,
  missingCa,
  recordedTrustDomain,
  resolveSettings,
  trustDomainMismatch,
  unpinnedNote,
  type Settings,
  type StartOptions,
} from './startup.ts';
import { FileCaStore, MemoryCaStore, type CaState, type CaStore } from './store.ts';

export interface CaOptions extends StartOptions {
  /** Where the CA is loaded from or generated into (mode 0700; files 0600). */
  readonly dir: string;
}

export interface IssueOptions {
  readonly ttlMs?: number;
  readonly dnsNames?: readonly string[];
  /** The one instance the certificate is for (see `boundInstance` in spiffe.ts). */
  readonly instance?: string;
}

export interface SignCsrOptions {
  readonly ttlMs?: number;
  /**
   * Binds the certificate to one instance of its service (a node agent's credential to the control
   * plane, when its evidence named the instance): the subject's serialNumber attribute, a DNS label.
   */
  readonly instance?: string;
}

/** A certificate for a node agent's own key: the chain, and the identity it carries. */
export interface SignedCsr extends SignedKey {
  readonly spiffeId: string;
}

/** Every CA key, current or retiring: no workload may be certified for one of them. */
interface CaKeys {
  readonly spkis: ReadonlySet<string>; // base64 SPKI DER: the quick test
  readonly keys: readonly KeyObject[]; // for an encoding of the same key that differs
}

export class CertificateAuthority {
  readonly #settings: Settings;
  readonly #store: CaStore;
  readonly #notes: readonly Problem[];
  #trustDomain: string;
  #state: CaState;
  #issuer: Issuer;
  #caKeys: CaKeys;

  private constructor(settings: Settings, store: CaStore, state: CaState, notes: readonly Problem[] = []) {
    this.#trustDomain = settings.trustDomain;
    this.#settings = settings;
    this.#store = store;
    this.#notes = notes;
    this.#state = state;
    this.#issuer = issuerOf(state.current);
    this.#caKeys = caKeysOf(state);
  }

  /** Loads the CA in `opts.dir`, or generates one there on first start (unless `create` is false). */
  static async open(opts: CaOptions): Promise<Result<CertificateAuthority>> {
    return CertificateAuthority.#start(opts, new FileCaStore(opts.dir));
  }

  /** A CA brought as PEM text (the keys of a Kubernetes secret, say); it is kept in memory only. */
  static fromPem(pem: CaPem, opts: Omit<CaOptions, 'dir' | 'create'>): Promise<Result<CertificateAuthority>> {
    return CertificateAuthority.#start(opts, new MemoryCaStore(pem));
  }

  /** A CA kept in `store` (Consul KV, shared by replicas): loaded, or generated there on first start. */
  static openIn(store: CaStore, opts: Omit<CaOptions, 'dir'>): Promise<Result<CertificateAuthority>> {
    return CertificateAuthority.#start(opts, store);
  }

  static async #start(opts: Omit<CaOptions, 'dir'>, store: CaStore): Promise<Result<CertificateAuthority>> {
    const settings = resolveSettings(opts);
    if (!settings.ok) return settings;
    const s = settings.value;
    let stored = await store.load();
    if (!stored.ok) return stored;
    if (stored.value === undefined) {
      if (!s.create) return missingCa(store.location);
      const state = { current: generate(s), previousRoots: [] };
      const saved = await store.save(state);
      if (saved.ok) return ok(new CertificateAuthority(s, store, state));
      // Another replica made the CA first: use its.
      if (saved.errors[0]?.code !== 'CONFLICT') return saved;
      stored = await store.load();
      if (!stored.ok) return stored;
      if (stored.value === undefined) return saved;
    }
    const state = loadState(stored.value, s.now(), store.location);
    if (!state.ok) return state;
    const recorded = recordedTrustDomain(stored.value, state.value.current.root, store.location);
    if (!recorded.ok) return recorded;
    if (recorded.value !== undefined && recorded.value !== s.trustDomain)
      return trustDomainMismatch(recorded.value, s.trustDomain, store.location);
    // A brought root that does not name its trust domain: pin the one it is first opened with.
    const pinned = recorded.value === undefined ? await store.saveTrustDomain(s.trustDomain) : ok(undefined);
    const notes = pinned.ok ? [] : [unpinnedNote(s.trustDomain, store.location)];
    return ok(new CertificateAuthority(s, store, state.value, notes));
  }

  /** The mesh's trust domain: fixed when the CA was made, changed only by `migrateTrustDomain`. */
  get trustDomain(): string {
    return this.#trustDomain;
  }

  /** Problems worth an operator's attention that did not stop the CA (a key file readable by others). */
  get warnings(): readonly Problem[] {
    return [...this.#store.warnings(), ...this.#notes];
  }

  get rotating(): boolean {
    return this.#state.previousRoots.length > 0;
  }

  spiffeId(id: WorkloadId): string {
    return spiffeId(this.#trustDomain, id);
  }

  /**
   * Signs a node agent's CSR for `id`, which the caller attested: the identity is never read from the
   * CSR. Refused: a CSR that fails `parseCsr` (proof of possession, key policy), one asking for any URI
   * SAN but this SPIFFE ID, one carrying a CA key, and the control plane's reserved namespace.
   */
  signCsr(id: WorkloadId, csrPem: string, opts: SignCsrOptions = {}): Result<SignedCsr> {
    if (id.namespace === CONTROL_PLANE_NAMESPACE) {
      const message = `"${CONTROL_PLANE_NAMESPACE}" is reserved for the control plane's own identity`;
      return fail([{ code: 'CA', field: 'namespace', message }]);
    }
    if (opts.instance !== undefined && !INSTANCE.test(opts.instance)) {
      const message = `"${opts.instance}" cannot be bound into a certificate: an instance is a DNS label`;
      return fail([{ code: 'CA', field: 'instance', message }]);
    }
    const csr = checkCsr(csrPem);
    if (!csr.ok) return csr;
    const expected = this.spiffeId(id);
    const foreign = csr.value.uriSans.filter((u) => u !== expected);
    if (foreign.length > 0) {
      const message = `asks for ${foreign.join(', ')}: the only URI SAN a CSR may carry is ${expected}`;
      return fail([{ code: 'CA', field: 'csr.uriSans', message }]);
    }
    if (this.#isCaKey(csr.value))
      return fail([
        { code: 'CA', field: 'csr.publicKey', message: 'is a CA key: a workload never holds one' },
      ]);
    const now = this.#settings.now();
    if (this.#issuer.notAfter <= now) return fail([chainExpired(this.#issuer.notAfter)]);
    const request = this.#request(id, opts);
    const rsa = csr.value.keyObject.asymmetricKeyType === 'rsa';
    return ok({
      ...signPublicKey(this.#issuer, request, csr.value.publicKey, rsa),
      spiffeId: request.spiffeId,
    });
  }

  #isCaKey(csr: CheckedCsr): boolean {
    const { spkis, keys } = this.#caKeys;
    return spkis.has(csr.spkiDer.toString('base64')) || keys.some((k) => k.equals(csr.keyObject));
  }

  /**
   * A certificate and a fresh key made here: only for the control plane's own identity. Workloads'
   * keys are made by their node agents (`signCsr`). Throws (ClinimeshError, code CA) only once the CA
   * chain itself has expired.
   */
  issueWorkload(id: WorkloadId, opts: IssueOptions = {}): WorkloadCert {
    return issueWorkloadCert(this.#issuer, this.#request(id, opts));
  }

  #request(id: WorkloadId, opts: IssueOptions): IssueRequest {
    const ttlMs = opts.ttlMs ?? this.#settings.workloadTtlMs;
    if (!(ttlMs > 0)) throw new TypeError(`ttlMs must be positive, got ${ttlMs}`);
    return {
      spiffeId: this.spiffeId(id),
      commonName: `${id.service}.${id.namespace}`,
      organization: this.#trustDomain,
      dnsNames: opts.dnsNames ?? [],
      ...(opts.instance !== undefined && { instance: opts.instance }),
      keyType: this.#settings.keyType,
      ttlMs,
      now: this.#settings.now(),
    };
  }

  /**
   * Moves the mesh to trust domain `next` (the admin API calls this): recorded durably in the
   * `trust-domain` file, which outranks the root's SAN from then on. The current root keeps its
   * `spiffe://<old>` SAN — a certificate cannot be edited — and the next root rotation makes one that
   * names `next`. Certificates already issued keep their old SPIFFE IDs until they are renewed.
   */
  async migrateTrustDomain(next: string): Promise<Result<void>> {
    const problems = trustDomainProblems(next);
    if (problems.length > 0) return fail(problems);
    const saved = await this.#store.saveTrustDomain(next);
    if (!saved.ok) return saved;
    this.#trustDomain = next;
    return ok(undefined);
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
  async beginRootRotation(next?: CaPem): Promise<Result<void>> {
    if (this.rotating) return problem('a root rotation is in progress: complete it before starting another');
    let current: CaHierarchy;
    if (next) {
      const parsed = parseCaPem(next, this.#settings.now(), 'next CA');
      if (!parsed.ok) return parsed;
      current = parsed.value;
      if (current.root.facts.x509.fingerprint256 === this.#state.current.root.facts.x509.fingerprint256) {
        return problem('the next root is the current root');
      }
      const named = trustDomainOfRoot(current.root.facts.uriSans);
      if (named !== undefined && named !== this.#trustDomain)
        return problem(`the next root names trust domain "${named}", not "${this.#trustDomain}"`);
    } else {
      current = generate({ ...this.#settings, trustDomain: this.#trustDomain });
    }
    const old = this.#state.current.root;
    return this.#commit({ current, previousRoots: [{ pem: old.pem, facts: old.facts }] });
  }

  /** Retires the roots a rotation kept trusted. Do it once every workload holds a certificate from the new root. */
  async completeRootRotation(): Promise<Result<void>> {
    if (!this.rotating) return problem('no root rotation is in progress');
    return this.#commit({ current: this.#state.current, previousRoots: [] });
  }

  async #commit(state: CaState): Promise<Result<void>> {
    const saved = await this.#store.save(state);
    if (!saved.ok) return saved;
    this.#adopt(state);
    return ok(undefined);
  }

  #adopt(state: CaState): void {
    this.#state = state;
    this.#issuer = issuerOf(state.current);
    this.#caKeys = caKeysOf(state);
  }

  /**
   * Reads the store again and signs with what it holds now (a shared store that another replica
   * rotated or migrated). Resolves to whether the roots or the trust domain changed; a store that
   * cannot be read or holds something unusable leaves the CA as it was.
   */
  async reload(): Promise<Result<boolean>> {
    const stored = await this.#store.load();
    if (!stored.ok) return stored;
    if (stored.value === undefined) return missingCa(this.#store.location);
    const state = loadState(stored.value, this.#settings.now(), this.#store.location);
    if (!state.ok) return state;
    const recorded = recordedTrustDomain(stored.value, state.value.current.root, this.#store.location);
    if (!recorded.ok) return recorded;
    const before = [this.#trustDomain, ...this.trustBundle()].join('\n');
    this.#adopt(state.value);
    if (recorded.value !== undefined) this.#trustDomain = recorded.value;
    return ok([this.#trustDomain, ...this.trustBundle()].join('\n') !== before);
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
      trustDomain: this.#trustDomain,
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

const chainExpired = (notAfter: Date): Problem => ({
  code: 'CA',
  message: `the CA chain expired at ${notAfter.toISOString()}; rotate the root`,
});

function caKeysOf(state: CaState): CaKeys {
  const { root, intermediate } = state.current;
  const certs = [root, ...(intermediate ? [intermediate] : []), ...state.previousRoots];
  return {
    spkis: new Set(certs.map((c) => c.facts.spkiDer.toString('base64'))),
    keys: certs.map((c) => c.facts.x509.publicKey),
  };
}

function generate(s: Settings): CaHierarchy {
  return generateCa({
    trustDomain: s.trustDomain,
    keyType: s.keyType,
    ttlMs: s.rootTtlMs,
    intermediate: s.intermediate,
    now: s.now(),
  });
}
