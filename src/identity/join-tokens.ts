// One-time join tokens: an editor creates one for a namespace/service (optionally one instance);
// a node agent spends it, once, before it expires, to have its first certificates signed. Only a
// hash of each secret is kept, in the store backend's `join-tokens` records (a 0600 file, or Consul
// KV shared by every replica), so the store is no credential store. Holding and spending a token
// are check-and-set writes, so two replicas can never both accept it.
// A token also carries a pin of the CA root (as kubeadm's discovery hash does), so the agent can
// trust the control plane on first contact without any other file.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { fail, ok, type Problem, type Result } from '../errors.ts';
import type { RecordSet, StoredRecord } from '../store/backend.ts';
import { MemoryRecordSet } from '../store/memory-backend.ts';
import { CONTROL_PLANE_NAMESPACE } from '../ca/spiffe.ts';

export const DEFAULT_JOIN_TOKEN_TTL_MS = 15 * 60_000;
export const MAX_JOIN_TOKEN_TTL_MS = 24 * 3_600_000;
const PREFIX = 'cmjt';
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export interface JoinTokenRequest {
  readonly namespace: string;
  readonly service: string;
  readonly instance?: string;
  readonly ttlMs?: number;
  /** Who asked (an operator token's name), for the change history. */
  readonly createdBy: string;
}

export interface IssuedJoinToken {
  readonly id: string;
  /** Shown once; never stored. */
  readonly token: string;
  readonly expiresAt: string;
}

/** What spending a token proves: the workload identity an editor vouched for. */
export interface JoinTokenClaim {
  readonly id: string;
  readonly namespace: string;
  readonly service: string;
  readonly instance?: string;
}

interface StoredToken extends JoinTokenClaim {
  readonly hash: string;
  readonly createdBy: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly usedAt?: string;
  /** Held by an attestation in flight (on some replica) since then; a hold expires after HOLD_MS. */
  readonly heldAt?: string;
}

/** A hold older than this was left by a replica that died mid-attestation: the token is free again. */
const HOLD_MS = 60_000;

export interface JoinTokenHold {
  readonly claim: JoinTokenClaim;
  /** Marks the token used (once the certificates are signed). */
  spend(): Promise<Result<void>>;
  /** Gives the token back when something later refused. */
  release(): Promise<void>;
}

export interface JoinTokenOptions {
  /** Where tokens are kept (hashes only); in memory when undefined. */
  readonly records?: RecordSet;
  /** The pin of the CA's current root, embedded in new tokens. */
  readonly rootPin: () => string;
  /** Whether a service is declared: tokens are only made for services the mesh knows. */
  readonly knownService: (namespace: string, service: string) => boolean;
  readonly now?: () => Date;
}

const hashOf = (secret: string): string => createHash('sha256').update(secret).digest('hex');

/** `cmjt.<id>.<secret>.<root pin>`; the pin is for the agent, the server reads id and secret. */
export function parseJoinToken(token: string): { id: string; secret: string; pin: string } | undefined {
  const m = /^cmjt\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{43})$/.exec(token.trim());
  return m ? { id: m[1]!, secret: m[2]!, pin: m[3]! } : undefined;
}

function isStored(v: unknown): v is StoredToken {
  const t = v as Partial<StoredToken> | null;
  return typeof t?.id === 'string' && typeof t.hash === 'string' && typeof t.expiresAt === 'string';
}

export class JoinTokens {
  private tokens = new Map<string, StoredRecord>();
  private readonly now: () => Date;
  private readonly records: RecordSet;
  private readonly unwatch: () => void;
  private reading: Promise<Result<void>> | undefined;
  private nextRead: Promise<Result<void>> | undefined;

  private constructor(private readonly o: JoinTokenOptions) {
    this.now = o.now ?? (() => new Date());
    this.records = o.records ?? new MemoryRecordSet();
    // Tokens created (or spent) on other replicas.
    this.unwatch = this.records.watch((all) => (this.tokens = new Map(all)));
  }

  static async open(o: JoinTokenOptions): Promise<Result<JoinTokens>> {
    const store = new JoinTokens(o);
    const loaded = await store.reload();
    return loaded.ok ? ok(store) : loaded;
  }

  close(): void {
    this.unwatch();
  }

  /**
   * Makes a token. It is usable on this replica at once; `saved` settles when the backend holds it
   * (and so every replica), which the admin API waits for before handing the token out.
   */
  create(req: JoinTokenRequest): Result<IssuedJoinToken & { saved: Promise<Result<void>> }> {
    const problems = requestProblems(req);
    if (!problems.length && !this.o.knownService(req.namespace, req.service)) {
      problems.push({
        code: 'NOT_FOUND',
        field: 'service',
        message: `no service ${req.service}.${req.namespace} in the applied manifests`,
      });
    }
    if (problems.length) return fail(problems);
    this.sweep();
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const now = this.now();
    const expiresAt = new Date(now.getTime() + (req.ttlMs ?? DEFAULT_JOIN_TOKEN_TTL_MS)).toISOString();
    const stored: StoredToken = {
      id,
      namespace: req.namespace,
      service: req.service,
      ...(req.instance && { instance: req.instance }),
      hash: hashOf(secret),
      createdBy: req.createdBy,
      createdAt: now.toISOString(),
      expiresAt,
    };
    this.tokens.set(id, { value: stored, version: -1n });
    const saved = this.records.put(id, stored, 'absent').then((r): Result<void> => {
      if (r.ok && r.value) {
        if (this.tokens.get(id)?.version === -1n) this.tokens.set(id, r.value);
        return ok(undefined);
      }
      this.tokens.delete(id);
      return r.ok
        ? fail([{ code: 'CONFLICT', resource: `join token ${id}`, message: 'id taken; retry' }])
        : r;
    });
    return ok({ id, token: `${PREFIX}.${id}.${secret}.${this.o.rootPin()}`, expiresAt, saved });
  }

  /**
   * Holds a token for one attestation: valid once, before it expires, and not held by another
   * attestation in flight on any replica (a check-and-set write). `spend` marks it used once the
   * certificates are signed; `release` gives it back when something later refuses (a CSR, an
   * instance), so a refusal never burns the token.
   */
  async reserve(token: string): Promise<Result<JoinTokenHold>> {
    const parsed = parseJoinToken(token);
    const refuse = (why: string) =>
      fail<never>([{ code: 'UNAUTHENTICATED', field: 'joinToken', message: `join token refused: ${why}` }]);
    if (!parsed) return refuse('unknown token');
    // Made on another replica a moment ago: the watch may not have brought it yet.
    if (!this.tokens.has(parsed.id)) {
      const reloaded = await this.reload();
      if (!reloaded.ok) return reloaded;
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      const record = this.tokens.get(parsed.id);
      const stored = record?.value as StoredToken | undefined;
      if (!record || !stored) return refuse('unknown token');
      if (!timingSafeEqual(Buffer.from(hashOf(parsed.secret), 'hex'), Buffer.from(stored.hash, 'hex')))
        return refuse('unknown token');
      if (stored.usedAt) return refuse(`token ${stored.id} was already used at ${stored.usedAt}`);
      const now = this.now();
      if (stored.heldAt && Date.parse(stored.heldAt) + HOLD_MS > now.getTime())
        return refuse(`token ${stored.id} is being used by another attestation`);
      if (Date.parse(stored.expiresAt) <= now.getTime())
        return refuse(`token ${stored.id} expired at ${stored.expiresAt}`);
      const held = await this.swap(parsed.id, record, { ...stored, heldAt: now.toISOString() });
      if (!held.ok) return held;
      if (held.value) return ok(this.hold(held.value));
      // Another attestation (here or on another replica) wrote first: judge the token again.
      const reloaded = await this.reload();
      if (!reloaded.ok) return reloaded;
    }
    return refuse(`token ${parsed.id} is being used by another attestation`);
  }

  private hold(record: StoredRecord): JoinTokenHold {
    const free: StoredToken = { ...(record.value as StoredToken) };
    delete (free as { heldAt?: string }).heldAt;
    const { id, namespace, service, instance } = free;
    return {
      claim: { id, namespace, service, ...(instance && { instance }) },
      spend: async () => {
        const spent = await this.swap(id, record, { ...free, usedAt: this.now().toISOString() });
        if (!spent.ok) return spent;
        return spent.value
          ? ok(undefined)
          : fail([
              { code: 'UNAUTHENTICATED', field: 'joinToken', message: `join token ${id} changed while held` },
            ]);
      },
      // A failed write leaves the hold to lapse after HOLD_MS: nothing more to do here.
      release: async () => void (await this.swap(id, record, free)),
    };
  }

  /** Writes `next` if the token is still at `record`'s version; the new record, or undefined. */
  private async swap(
    id: string,
    record: StoredRecord,
    next: StoredToken,
  ): Promise<Result<StoredRecord | undefined>> {
    const written = await this.records.put(id, next, record.version);
    if (written.ok && written.value) this.tokens.set(id, written.value);
    return written;
  }

  /** Spends a token at once (reserve, then spend). */
  async consume(token: string): Promise<Result<JoinTokenClaim>> {
    const held = await this.reserve(token);
    if (!held.ok) return held;
    const spent = await held.value.spend();
    return spent.ok ? ok(held.value.claim) : spent;
  }

  /** Tokens without their hashes, for the admin API. */
  list(): Omit<StoredToken, 'hash'>[] {
    return [...this.tokens.values()].map((r) => {
      const rest: { hash?: string } & Omit<StoredToken, 'hash'> = { ...(r.value as StoredToken) };
      delete rest.hash;
      return rest;
    });
  }

  /**
   * Reads the store again. Unknown tokens arrive before anyone is authenticated, so callers share
   * reads: one runs at a time, and whoever arrives while it runs shares the next, which starts after
   * it (a read that began before a caller asked could miss the token that caller holds).
   */
  private reload(): Promise<Result<void>> {
    if (!this.reading) return this.read();
    const next = (): Promise<Result<void>> => {
      this.nextRead = undefined;
      return this.read();
    };
    this.nextRead ??= this.reading.then(next, next);
    return this.nextRead;
  }

  private read(): Promise<Result<void>> {
    const reading = this.readOnce().finally(() => {
      if (this.reading === reading) this.reading = undefined;
    });
    this.reading = reading;
    return reading;
  }

  private async readOnce(): Promise<Result<void>> {
    const loaded = await this.records.load();
    if (!loaded.ok) return loaded;
    const next = new Map<string, StoredRecord>();
    for (const [id, r] of loaded.value) if (isStored(r.value)) next.set(id, r);
    // Keep tokens made here whose write is still in flight.
    for (const [id, r] of this.tokens) if (r.version === -1n && !next.has(id)) next.set(id, r);
    this.tokens = next;
    return ok(undefined);
  }

  /** Used and expired tokens are kept a day for the record, then dropped. */
  private sweep(): void {
    const cutoff = this.now().getTime() - 24 * 3_600_000;
    for (const [id, r] of this.tokens) {
      const t = r.value as StoredToken;
      if (Date.parse(t.expiresAt) < cutoff && r.version !== -1n) {
        this.tokens.delete(id);
        void this.records.remove(id, r.version);
      }
    }
  }
}

function requestProblems(req: JoinTokenRequest): Problem[] {
  const problems: Problem[] = [];
  for (const field of ['namespace', 'service'] as const) {
    if (!LABEL.test(req[field]))
      problems.push({ code: 'SCHEMA', field, message: `must be a DNS label, got '${req[field]}'` });
  }
  if (req.instance !== undefined && !LABEL.test(req.instance))
    problems.push({
      code: 'SCHEMA',
      field: 'instance',
      message: `must be a DNS label, got '${req.instance}'`,
    });
  if (req.namespace === CONTROL_PLANE_NAMESPACE) {
    problems.push({
      code: 'PERMISSION_DENIED',
      field: 'namespace',
      message: `${CONTROL_PLANE_NAMESPACE} is the control plane's own namespace; its identity is never issued to workloads`,
    });
  }
  const ttl = req.ttlMs ?? DEFAULT_JOIN_TOKEN_TTL_MS;
  if (!(ttl >= 1000 && ttl <= MAX_JOIN_TOKEN_TTL_MS))
    problems.push({ code: 'SCHEMA', field: 'ttl', message: `must be between 1s and 24h, got ${ttl} ms` });
  return problems;
}
