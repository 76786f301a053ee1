// `/v1/session/*`: create (body optional: Name, Node, LockDelay as a duration or a number —
// below 1000 it means seconds —, Behavior, TTL, NodeChecks, ServiceChecks, the deprecated Checks),
// destroy, renew (404 when the session is unknown or expired), and the blocking reads info, list
// and node. Sessions render as Consul writes them (LockDelay in nanoseconds).
import { BadRequest } from './agent-api.ts';
import { parseGoDuration } from './duration.ts';
import { HttpError, parseJsonBody, sendJson } from './http.ts';
import type { ReadResult } from './reads.ts';
import type { RouteContext, RouteFamily } from './route.ts';
import { methodNotAllowed } from './route.ts';
import { SessionError } from './sessions.ts';
import type { SessionBehavior, SessionInput, SessionRecord, SessionStore } from './sessions.ts';

type Json = Record<string, unknown>;
const PATH = /^\/v1\/session\/(create|destroy|renew|info|list|node)(?:\/(.*))?$/;

function field(obj: Json, name: string): { present: boolean; value: unknown } {
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(obj)) if (k.toLowerCase() === want) return { present: true, value: v };
  return { present: false, value: undefined };
}

function decodeFailed(message: string): BadRequest {
  return new BadRequest(`Request decode failed: ${message}`);
}

function strings(v: unknown, name: string): string[] {
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
    throw decodeFailed(`${name} must be a list of strings`);
  return v as string[];
}

/** FixupLockDelay: a duration string, or a number taken as seconds below 1000 and as nanoseconds above. */
function lockDelayMs(v: unknown): number {
  if (typeof v === 'string') {
    const ms = parseGoDuration(v);
    if (ms === undefined) throw decodeFailed(`time: invalid duration ${JSON.stringify(v)}`);
    const ns = ms * 1e6;
    return ns < 1000 ? ns * 1000 : ms;
  }
  if (typeof v === 'number') return v < 1000 ? v * 1000 : v / 1e6;
  throw decodeFailed('LockDelay must be a duration');
}

export function parseSessionCreate(body: unknown, defaultNode: string): SessionInput {
  const obj: Json = body === undefined ? {} : (body as Json);
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
    throw decodeFailed('body must be a JSON object');
  const str = (name: string): string => {
    const { value } = field(obj, name);
    if (value === undefined || value === null) return '';
    if (typeof value !== 'string') throw decodeFailed(`${name} must be a string`);
    return value;
  };
  const behavior = str('Behavior') || 'release';
  if (behavior !== 'release' && behavior !== 'delete')
    throw new SessionError(`Invalid Behavior setting '${behavior}'`);
  const nodeChecks = field(obj, 'NodeChecks');
  const legacy = field(obj, 'Checks');
  const serviceRaw = field(obj, 'ServiceChecks').value ?? [];
  if (!Array.isArray(serviceRaw)) throw decodeFailed('ServiceChecks must be a list');
  const serviceChecks = serviceRaw.map((c: unknown) => {
    if (typeof c !== 'object' || c === null) throw decodeFailed('ServiceChecks entries must be objects');
    const id = field(c as Json, 'ID').value;
    if (typeof id !== 'string' || id === '') throw decodeFailed('ServiceChecks entries need an ID');
    return { ID: id, Namespace: '' };
  });
  const delay = field(obj, 'LockDelay');
  return {
    name: str('Name'),
    node: str('Node') || defaultNode,
    lockDelayMs: delay.present && delay.value !== null ? lockDelayMs(delay.value) : 15_000,
    behavior: behavior as SessionBehavior,
    ttl: str('TTL'),
    // The serf check by default; naming any check list (even empty) replaces the default.
    nodeChecks:
      nodeChecks.present || legacy.present
        ? [...strings(nodeChecks.value, 'NodeChecks'), ...strings(legacy.value, 'Checks')]
        : ['serfHealth'],
    serviceChecks,
  };
}

export function sessionJson(s: SessionRecord): Json {
  return {
    ID: s.id,
    Name: s.name,
    Node: s.node,
    LockDelay: s.lockDelayMs * 1e6,
    Behavior: s.behavior,
    TTL: s.ttl,
    NodeChecks: s.nodeChecks.length > 0 ? [...s.nodeChecks] : null,
    ServiceChecks: s.serviceChecks.length > 0 ? s.serviceChecks.map((c) => ({ ...c })) : null,
    CreateIndex: s.createIndex,
    ModifyIndex: s.modifyIndex,
  };
}

export function sessionRoutes(sessions: SessionStore, agentNode: string): RouteFamily {
  const listRead = (pick: () => SessionRecord[]): ReadResult => ({
    index: () => Math.max(1, sessions.tableIndex),
    body: (access) => {
      const all = pick();
      const visible = access === 'anonymous' ? [] : all;
      return { body: visible.map(sessionJson), filtered: visible.length < all.length };
    },
  });
  const needArg = (arg: string, what: string): string => {
    if (arg === '') throw new HttpError(400, what);
    return arg;
  };
  const write = (ctx: RouteContext, verb: string, arg: string): void => {
    if (ctx.method !== 'PUT') methodNotAllowed(ctx.method, ['PUT']);
    ctx.requireWrite('session:write');
    try {
      if (verb === 'create') {
        const created = sessions.create(parseSessionCreate(parseJsonBody(ctx.body), agentNode));
        return sendJson(ctx.res, 200, { ID: created.id });
      }
      const id = needArg(arg, 'Missing session');
      if (verb === 'destroy') {
        sessions.destroy(id);
        return sendJson(ctx.res, 200, true);
      }
      const renewed = sessions.renew(id);
      if (!renewed) throw new HttpError(404, `Session id '${id}' not found`);
      sendJson(ctx.res, 200, [sessionJson(renewed)]);
    } catch (err) {
      if (err instanceof SessionError) throw new HttpError(500, err.message);
      throw err;
    }
  };
  return {
    matches: (p) => PATH.test(p),
    handle: async (ctx) => {
      const [, verb, rest] = PATH.exec(ctx.path)!;
      const arg = decodeURIComponent(rest ?? '');
      if (verb === 'create' || verb === 'destroy' || verb === 'renew') return write(ctx, verb, arg);
      if (ctx.method !== 'GET') methodNotAllowed(ctx.method, ['GET']);
      if (verb === 'list') return ctx.read(listRead(() => [...sessions.sessions.values()]));
      if (verb === 'node') {
        const node = needArg(arg, 'Missing node name');
        return ctx.read(listRead(() => [...sessions.sessions.values()].filter((s) => s.node === node)));
      }
      const id = needArg(arg, 'Missing session');
      return ctx.read(listRead(() => [sessions.sessions.get(id)].filter((s) => s !== undefined)));
    },
  };
}
