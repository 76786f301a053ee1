// What a route family's handler gets for one request: the parsed request, the caller's access, and
// the shared blocking-read machinery (so every family answers reads with the same Consul semantics).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './http.ts';
import type { Access, ReadResult } from './reads.ts';

export interface RouteContext {
  readonly method: string;
  /** The path with `/v1` and the family's prefix still on it, percent-decoding left to the handler. */
  readonly path: string;
  readonly q: URLSearchParams;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The raw request body (empty for GET). */
  readonly body: Buffer;
  /** The caller's access; throws 403 "ACL not found" for an unknown token. */
  access(): Access;
  /** Throws Consul's 403 unless the caller may write (`permission` names what was needed). */
  requireWrite(permission: string): void;
  /** Answers a read with blocking-query semantics (`index`, `wait`) and Consul's headers. */
  read(result: ReadResult): Promise<void>;
  /** Sets X-Consul-KnownLeader and X-Consul-LastContact, as Consul does on reads that do not block. */
  leaderHeaders(): void;
}

/** A family of routes: which paths are its own, and how it answers them. */
export interface RouteFamily {
  matches(path: string): boolean;
  handle(ctx: RouteContext): Promise<void>;
  /** False for endpoints that take no namespace (open-source Consul refuses `ns` everywhere else). */
  readonly namespaced?: boolean;
}

/** Consul's answer to a known path with a method it does not serve. */
export function methodNotAllowed(method: string, allowed: readonly string[]): never {
  throw new HttpError(405, `method ${method} not allowed`, { allow: allowed.join(',') });
}
