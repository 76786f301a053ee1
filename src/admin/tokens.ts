// Operator tokens for the admin API: `cmt_<id>_<secret>` bearer tokens with 32 random bytes of
// secret, kept only as SHA-256 hashes (compared in constant time) in `<data-dir>/tokens.json`
// (0600, replaced durably), or in memory without a data dir. A token's secret is shown once, when
// it is created; listing shows everything but the secret and its hash.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fail, ok, type Problem, type Result } from '../errors.ts';
import { SerialWriter, writeFileDurably } from '../store/durable-file.ts';

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

export class TokenStore {
  private readonly writer = new SerialWriter();

  private constructor(
    private tokens: ReadonlyMap<string, StoredToken>,
    private readonly path: string | undefined,
  ) {}

  /** Reads `<dataDir>/tokens.json` (absent: no tokens yet); without a data dir, an empty in-memory store. */
  static async open(dataDir: string | undefined): Promise<Result<TokenStore>> {
    if (!dataDir) return ok(new TokenStore(new Map(), undefined));
    const path = join(dataDir, 'tokens.json');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return ok(new TokenStore(new Map(), path));
      return fail([
        { code: 'IO', resource: path, message: `cannot read the token store: ${(e as Error).message}` },
      ]);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return fail([{ code: 'IO', resource: path, message: 'the token store is not valid JSON' }]);
    }
    const list = (json as { tokens?: unknown }).tokens;
    if (!Array.isArray(list) || !list.every(isStoredToken))
      return fail([{ code: 'IO', resource: path, message: 'the token store has an unexpected shape' }]);
    return ok(new TokenStore(new Map(list.map((t) => [t.id, t])), path));
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
    const saved = await this.replace((tokens) => new Map([...tokens, [id, stored]]));
    return saved.ok ? ok({ info: publicInfo(stored), token }) : saved;
  }

  async revoke(id: string): Promise<Result<TokenInfo>> {
    const stored = this.tokens.get(id);
    if (!stored) return fail([{ code: 'NOT_FOUND', resource: `token ${id}`, message: 'no such token' }]);
    const saved = await this.replace((tokens) => {
      const next = new Map(tokens);
      next.delete(id);
      return next;
    });
    return saved.ok ? ok(publicInfo(stored)) : saved;
  }

  /**
   * Persists first, then switches memory over, so a failed write changes nothing. The change is
   * applied to the tokens as they are when its turn comes, so concurrent changes never lose one.
   */
  private replace(
    change: (tokens: ReadonlyMap<string, StoredToken>) => ReadonlyMap<string, StoredToken>,
  ): Promise<Result<void>> {
    return this.writer.run(async () => {
      const next = change(this.tokens);
      if (this.path) {
        try {
          await writeFileDurably(
            this.path,
            `${JSON.stringify({ version: 1, tokens: [...next.values()] }, null, 2)}\n`,
          );
        } catch (e) {
          return fail([
            {
              code: 'IO',
              resource: this.path,
              message: `cannot write the token store: ${(e as Error).message}`,
            },
          ]);
        }
      }
      this.tokens = next;
      return ok(undefined);
    });
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
