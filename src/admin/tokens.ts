// Operator tokens for the admin API: `cmt_<id>_<secret>` bearer tokens with 32 random bytes of
// secret, kept only as SHA-256 hashes (compared in constant time) in the store backend's
// `admin-tokens` records (`<data-dir>/tokens.json`, 0600, or Consul KV, shared by every replica,
// whose changes this store follows). A token's secret is shown once, when it is created; listing
// shows everything but the secret and its hash.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { fail, ok, type Problem, type Result } from '../errors.ts';
import type { RecordSet, StoredRecord } from '../store/backend.ts';
import { adminTokensFormat, FileRecordSet } from '../store/file-records.ts';
import { MemoryRecordSet } from '../store/memory-backend.ts';
import { join } from 'node:path';

export const ROLES = ['admin', 'editor', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export interface TokenInfo {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
  /** The namespaces an editor may change; empty for admin and viewer (they see everything). */
  readonly namespaces: readonly string[];
  readonly createdAt: string;
  readonly createdBy: string;
  readonly expiresAt?: string;
}

/** Who is calling, once a token checked out. */
export interface Principal {
  readonly tokenId: string;
  readonly name: string;
  readonly role: Role;
  readonly namespaces: readonly string[];
}

export interface NewToken {
  readonly name: string;
  readonly role: Role;
  readonly namespaces: readonly string[];
  readonly ttlMs?: number;
  readonly createdBy: string;
}

interface StoredToken extends TokenInfo {
  readonly sha256: string;
}

const PREFIX = 'cmt_';
const MAX_TTL_MS = 10 * 365 * 86_400_000;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const NAMESPACE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** The id part of `cmt_<id>_<secret>` (hex, so it never holds the separator). */
function idOf(token: string): string | undefined {
  const m = /^cmt_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$/.exec(token);
  return m?.[1];
}

function isStoredToken(v: unknown): v is StoredToken {
  if (typeof v !== 'object' || v === null) return false;
  const t = v as Record<string, unknown>;
  return (
    typeof t.id === 'string' &&
    typeof t.name === 'string' &&
    typeof t.role === 'string' &&
    (ROLES as readonly string[]).includes(t.role) &&
    Array.isArray(t.namespaces) &&
    t.namespaces.every((n) => typeof n === 'string') &&
    typeof t.createdAt === 'string' &&
    typeof t.createdBy === 'string' &&
    (t.expiresAt === undefined || typeof t.expiresAt === 'string') &&
    typeof t.sha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(t.sha256)
  );
}

function publicInfo(t: StoredToken): TokenInfo {
  return {
    id: t.id,
    name: t.name,
    role: t.role,
    namespaces: t.namespaces,
    createdAt: t.createdAt,
    createdBy: t.createdBy,
    ...(t.expiresAt ? { expiresAt: t.expiresAt } : {}),
  };
}

function tokensOf(records: ReadonlyMap<string, StoredRecord>): Map<string, StoredToken> {
  const out = new Map<string, StoredToken>();
  for (const [id, r] of records) if (isStoredToken(r.value)) out.set(id, r.value);
  return out;
}

export class TokenStore {
  private readonly unwatch: () => void;

  private constructor(
    private tokens: ReadonlyMap<string, StoredToken>,
    private readonly records: RecordSet,
  ) {
    // Tokens created or revoked on another replica count here too.
    this.unwatch = records.watch((all) => (this.tokens = tokensOf(all)));
  }

  /**
   * Opens the tokens kept in `source`: a backend's record set, a data dir (`tokens.json`), or
   * nothing (in memory).
   */
  static async open(source: RecordSet | string | undefined): Promise<Result<TokenStore>> {
    const records =
      typeof source === 'string'
        ? new FileRecordSet(join(source, adminTokensFormat.file), adminTokensFormat)
        : (source ?? new MemoryRecordSet());
    const loaded = await records.load();
    if (!loaded.ok) return loaded;
    const bad = [...loaded.value.values()].find((r) => !isStoredToken(r.value));
    if (bad)
      return fail([
        { code: 'IO', resource: 'operator tokens', message: 'the token store has an unexpected shape' },
      ]);
    return ok(new TokenStore(tokensOf(loaded.value), records));
  }

  /** Stops following changes made elsewhere. */
  close(): void {
    this.unwatch();
  }

  get size(): number {
    return this.tokens.size;
  }

  list(): TokenInfo[] {
    return [...this.tokens.values()]
      .map(publicInfo)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  get(id: string): TokenInfo | undefined {
    const t = this.tokens.get(id);
    return t && publicInfo(t);
  }

  /** The caller behind `token`, or undefined when it is malformed, unknown, revoked or expired. */
  authenticate(token: string, now = new Date()): Principal | undefined {
    const id = idOf(token);
    const stored = id === undefined ? undefined : this.tokens.get(id);
    // Hash and compare even when the id is unknown, so timing says nothing about which ids exist.
    const expected = stored ? Buffer.from(stored.sha256, 'hex') : Buffer.alloc(32);
    const matches = timingSafeEqual(sha256(token), expected);
    if (!stored || !matches) return undefined;
    if (stored.expiresAt && Date.parse(stored.expiresAt) <= now.getTime()) return undefined;
    return { tokenId: stored.id, name: stored.name, role: stored.role, namespaces: stored.namespaces };
  }

  /** Creates a token; the returned `token` is the only copy of its secret. */
  async create(req: NewToken, now = new Date()): Promise<Result<{ info: TokenInfo; token: string }>> {
    const problems = checkNewToken(req);
    if (problems.length) return fail(problems);
    const id = randomBytes(8).toString('hex');
    const token = `${PREFIX}${id}_${randomBytes(32).toString('base64url')}`;
    const stored: StoredToken = {
      id,
      name: req.name,
      role: req.role,
      namespaces: req.role === 'editor' ? [...new Set(req.namespaces)].sort() : [],
      createdAt: now.toISOString(),
      createdBy: req.createdBy,
      ...(req.ttlMs ? { expiresAt: new Date(now.getTime() + req.ttlMs).toISOString() } : {}),
      sha256: sha256(token).toString('hex'),
    };
    const saved = await this.records.put(id, stored, 'absent');
    if (!saved.ok) return saved;
    if (!saved.value)
      return fail([{ code: 'CONFLICT', resource: `token ${id}`, message: 'token id taken; retry' }]);
    this.tokens = new Map([...this.tokens, [id, stored]]);
    return ok({ info: publicInfo(stored), token });
  }

  async revoke(id: string): Promise<Result<TokenInfo>> {
    const stored = this.tokens.get(id);
    if (!stored) return fail([{ code: 'NOT_FOUND', resource: `token ${id}`, message: 'no such token' }]);
    const removed = await this.records.remove(id, 'any');
    if (!removed.ok) return removed;
    const next = new Map(this.tokens);
    next.delete(id);
    this.tokens = next;
    return ok(publicInfo(stored));
  }
}

function checkNewToken(req: NewToken): Problem[] {
  const problems: Problem[] = [];
  if (!NAME.test(req.name))
    problems.push({
      code: 'SCHEMA',
      field: 'name',
      message: 'name must be 1-64 letters, digits, ".", "_", "@" or "-"',
    });
  if (!(ROLES as readonly string[]).includes(req.role))
    problems.push({ code: 'SCHEMA', field: 'role', message: `role must be one of ${ROLES.join(', ')}` });
  if (req.role === 'editor' && req.namespaces.length === 0)
    problems.push({ code: 'SCHEMA', field: 'namespaces', message: 'an editor needs at least one namespace' });
  if (req.role !== 'editor' && req.namespaces.length > 0)
    problems.push({
      code: 'SCHEMA',
      field: 'namespaces',
      message: `namespaces apply to editors only; ${req.role} covers every namespace`,
    });
  for (const ns of req.namespaces)
    if (!NAMESPACE.test(ns))
      problems.push({ code: 'SCHEMA', field: 'namespaces', message: `"${ns}" is not a namespace name` });
  if (req.ttlMs !== undefined && (!Number.isFinite(req.ttlMs) || req.ttlMs <= 0 || req.ttlMs > MAX_TTL_MS))
    problems.push({
      code: 'SCHEMA',
      field: 'ttlSeconds',
      message: 'ttl must be a positive number of seconds, at most ten years',
    });
  return problems;
}
