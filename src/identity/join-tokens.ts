// One-time join tokens: an editor creates one for a namespace/service (optionally one instance);
// a node agent spends it, once, before it expires, to have its first certificates signed. Only a
// hash of each secret is kept (0600 file, written durably), so the file is no credential store.
// A token also carries a pin of the CA root (as kubeadm's discovery hash does), so the agent can
// trust the control plane on first contact without any other file.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fail, ok, type Problem, type Result } from '../errors.ts';
import { writeFileDurablySync } from '../store/durable-file.ts';
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
}

export interface JoinTokenOptions {
  /** Persisted here (hashes only); in memory when undefined. */
  readonly file?: string;
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

export class JoinTokens {
  private readonly tokens = new Map<string, StoredToken>();
  private readonly reserved = new Set<string>();
  private readonly now: () => Date;

  private constructor(private readonly o: JoinTokenOptions) {
    this.now = o.now ?? (() => new Date());
  }

  static open(o: JoinTokenOptions): Result<JoinTokens> {
    const store = new JoinTokens(o);
    if (!o.file || !existsSync(o.file)) return ok(store);
    try {
      for (const t of JSON.parse(readFileSync(o.file, 'utf8')) as StoredToken[]) store.tokens.set(t.id, t);
    } catch (e) {
      return fail([
        { code: 'IO', resource: o.file, message: `unreadable join-token file: ${(e as Error).message}` },
      ]);
    }
    return ok(store);
  }

  create(req: JoinTokenRequest): Result<IssuedJoinToken> {
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
    this.tokens.set(id, stored);
    const saved = this.save();
    if (!saved.ok) {
      this.tokens.delete(id);
      return saved;
    }
    return ok({ id, token: `${PREFIX}.${id}.${secret}.${this.o.rootPin()}`, expiresAt });
  }

  /**
   * Holds a token for one attestation: valid once, before it expires, and not held by another
   * attestation in flight. `spend` marks it used once the certificates are signed; `release` gives it
   * back when something later refuses (a CSR, an instance), so a refusal never burns the token.
   */
  reserve(token: string): Result<{ claim: JoinTokenClaim; spend(): Result<void>; release(): void }> {
    const parsed = parseJoinToken(token);
    const stored = parsed && this.tokens.get(parsed.id);
    const refuse = (why: string) =>
      fail<never>([{ code: 'UNAUTHENTICATED', field: 'joinToken', message: `join token refused: ${why}` }]);
    if (!parsed || !stored) return refuse('unknown token');
    if (!timingSafeEqual(Buffer.from(hashOf(parsed.secret), 'hex'), Buffer.from(stored.hash, 'hex')))
      return refuse('unknown token');
    if (stored.usedAt) return refuse(`token ${stored.id} was already used at ${stored.usedAt}`);
    if (this.reserved.has(stored.id))
      return refuse(`token ${stored.id} is being used by another attestation`);
    if (Date.parse(stored.expiresAt) <= this.now().getTime())
      return refuse(`token ${stored.id} expired at ${stored.expiresAt}`);
    this.reserved.add(stored.id);
    const { id, namespace, service, instance } = stored;
    return ok({
      claim: { id, namespace, service, ...(instance && { instance }) },
      spend: () => {
        this.reserved.delete(id);
        this.tokens.set(id, { ...stored, usedAt: this.now().toISOString() });
        return this.save();
      },
      release: () => void this.reserved.delete(id),
    });
  }

  /** Spends a token at once (reserve, then spend). */
  consume(token: string): Result<JoinTokenClaim> {
    const held = this.reserve(token);
    if (!held.ok) return held;
    const spent = held.value.spend();
    return spent.ok ? ok(held.value.claim) : spent;
  }

  /** Tokens without their hashes, for the admin API. */
  list(): Omit<StoredToken, 'hash'>[] {
    return [...this.tokens.values()].map(({ hash: _hash, ...rest }) => rest);
  }

  /** Used and expired tokens are kept a day for the record, then dropped. */
  private sweep(): void {
    const cutoff = this.now().getTime() - 24 * 3_600_000;
    for (const [id, t] of this.tokens) if (Date.parse(t.expiresAt) < cutoff) this.tokens.delete(id);
  }

  private save(): Result<void> {
    if (!this.o.file) return ok(undefined);
    return writeFileDurablySync(this.o.file, JSON.stringify([...this.tokens.values()], null, 2));
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
