// The operator routes: tokens (admin only), join tokens (admin, or an editor of the namespace),
// root rotation (admin only) and the history (any role). Each change is recorded in the history.
import type { Problem } from '../errors.ts';
import { authorizeJoinToken, requireAdmin } from './authorize.ts';
import type { AdminCall } from './deps.ts';
import type { HistoryRecord } from './history.ts';
import { readJsonObject, send, sendProblems } from './respond.ts';
import { ROLES, type Role } from './tokens.ts';

const author = (call: AdminCall) => `${call.principal.name} (${call.principal.tokenId})`;

/** Records a change; a history that cannot be written is reported beside the (committed) result. */
async function recorded(
  call: AdminCall,
  what: Omit<HistoryRecord, 'revision'>,
  status: number,
  body: object,
): Promise<void> {
  const entry = await call.deps.history.record(call.principal, {
    ...what,
    revision: call.deps.controlPlane.state().revision,
  });
  send(call.res, status, entry.ok ? body : { ...body, warnings: entry.errors });
}

function ttlMsOf(v: unknown, problems: Problem[]): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number' && Number.isFinite(v) && v > 0) return v * 1000;
  problems.push({ code: 'SCHEMA', field: 'ttlSeconds', message: 'ttlSeconds must be a positive number' });
  return undefined;
}

export function listTokens(call: AdminCall): void {
  const denied = requireAdmin(call.principal, 'list tokens');
  if (denied.length) return sendProblems(call.res, denied, 403);
  send(call.res, 200, { tokens: call.deps.tokens.list() });
}

export async function createToken(call: AdminCall): Promise<void> {
  const denied = requireAdmin(call.principal, 'create tokens');
  if (denied.length) return sendProblems(call.res, denied, 403);
  const body = await readJsonObject(call.req, '{name, role, namespaces?, ttlSeconds?}');
  if (!body.ok) return sendProblems(call.res, body.errors, 400);
  const { name, role, namespaces } = body.value;
  const problems: Problem[] = [];
  if (typeof name !== 'string')
    problems.push({ code: 'SCHEMA', field: 'name', message: 'name is a required string' });
  if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role))
    problems.push({ code: 'SCHEMA', field: 'role', message: `role must be one of ${ROLES.join(', ')}` });
  if (
    namespaces !== undefined &&
    !(Array.isArray(namespaces) && namespaces.every((n) => typeof n === 'string'))
  ) {
    problems.push({ code: 'SCHEMA', field: 'namespaces', message: 'namespaces must be a list of strings' });
  }
  const ttlMs = ttlMsOf(body.value.ttlSeconds, problems);
  if (problems.length) return sendProblems(call.res, problems, 400);
  const created = await call.deps.tokens.create({
    name: name as string,
    role: role as Role,
    namespaces: (namespaces as string[] | undefined) ?? [],
    ttlMs,
    createdBy: author(call),
  });
  if (!created.ok) return sendProblems(call.res, created.errors);
  const { info, token } = created.value;
  return recorded(
    call,
    { action: 'token-create', touched: [`token ${info.id}`], detail: { name: info.name, role: info.role } },
    201,
    { ...info, token },
  );
}

export async function revokeToken(call: AdminCall, id: string): Promise<void> {
  const denied = requireAdmin(call.principal, 'revoke tokens');
  if (denied.length) return sendProblems(call.res, denied, 403);
  const revoked = await call.deps.tokens.revoke(id);
  if (!revoked.ok) return sendProblems(call.res, revoked.errors);
  return recorded(
    call,
    { action: 'token-revoke', touched: [`token ${id}`], detail: { name: revoked.value.name } },
    200,
    { revoked: revoked.value },
  );
}

export async function createJoinToken(call: AdminCall): Promise<void> {
  const issuer = call.deps.joinTokens;
  if (!issuer)
    return sendProblems(
      call.res,
      [{ code: 'NOT_FOUND', message: 'join tokens are not available on this control plane' }],
      404,
    );
  const body = await readJsonObject(call.req, '{namespace, service, instance?, ttlSeconds?}');
  if (!body.ok) return sendProblems(call.res, body.errors, 400);
  const { namespace, service, instance } = body.value;
  const problems: Problem[] = [];
  if (typeof namespace !== 'string')
    problems.push({ code: 'SCHEMA', field: 'namespace', message: 'namespace is a required string' });
  if (typeof service !== 'string')
    problems.push({ code: 'SCHEMA', field: 'service', message: 'service is a required string' });
  if (instance !== undefined && typeof instance !== 'string')
    problems.push({ code: 'SCHEMA', field: 'instance', message: 'instance must be a string' });
  const ttlMs = ttlMsOf(body.value.ttlSeconds, problems);
  if (problems.length) return sendProblems(call.res, problems, 400);
  const denied = authorizeJoinToken(call.principal, namespace as string);
  if (denied.length) return sendProblems(call.res, denied, 403);
  const issued = issuer.create({
    namespace: namespace as string,
    service: service as string,
    ...(instance === undefined ? {} : { instance: instance as string }),
    ...(ttlMs === undefined ? {} : { ttlMs }),
    createdBy: author(call),
  });
  if (!issued.ok) return sendProblems(call.res, issued.errors);
  // Every replica must know the token before the agent may present it to any of them.
  const saved = await issued.value.saved;
  if (!saved.ok) return sendProblems(call.res, saved.errors);
  const reply = { id: issued.value.id, token: issued.value.token, expiresAt: issued.value.expiresAt };
  const detail = {
    namespace: namespace as string,
    service: service as string,
    ...(instance === undefined ? {} : { instance: instance as string }),
  };
  return recorded(
    call,
    { action: 'join-token-create', touched: [`join-token ${issued.value.id}`], detail },
    201,
    reply,
  );
}

export async function rotateRoot(call: AdminCall): Promise<void> {
  const ca = call.deps.ca;
  if (!ca)
    return sendProblems(call.res, [{ code: 'NOT_FOUND', message: 'no CA on this control plane' }], 404);
  const denied = requireAdmin(call.principal, 'rotate the root');
  if (denied.length) return sendProblems(call.res, denied, 403);
  const phase = call.url.searchParams.get('phase');
  if (phase !== 'begin' && phase !== 'complete')
    return sendProblems(
      call.res,
      [{ code: 'SCHEMA', field: 'phase', message: 'phase must be begin or complete' }],
      400,
    );
  const result = await ca.rotateRoot(phase);
  if (!result.ok) return sendProblems(call.res, result.errors, 409);
  return recorded(call, { action: 'rotate-root', touched: ['ca root'], detail: { phase } }, 200, {
    ...(result.value as object),
    ca: ca.describe(),
  });
}

export async function migrateTrustDomain(call: AdminCall): Promise<void> {
  const ca = call.deps.ca;
  if (!ca?.migrateTrustDomain)
    return sendProblems(
      call.res,
      [{ code: 'NOT_FOUND', message: 'trust-domain migration is not available on this control plane' }],
      404,
    );
  const denied = requireAdmin(call.principal, 'migrate the trust domain');
  if (denied.length) return sendProblems(call.res, denied, 403);
  const body = await readJsonObject(call.req, '{trustDomain}');
  if (!body.ok) return sendProblems(call.res, body.errors, 400);
  const { trustDomain } = body.value;
  if (typeof trustDomain !== 'string')
    return sendProblems(
      call.res,
      [{ code: 'SCHEMA', field: 'trustDomain', message: 'trustDomain is a required string' }],
      400,
    );
  const from = call.deps.controlPlane.state().mesh.trustDomain;
  const result = await ca.migrateTrustDomain(trustDomain);
  if (!result.ok) return sendProblems(call.res, result.errors);
  const answer = typeof result.value === 'object' && result.value !== null ? result.value : { trustDomain };
  return recorded(
    call,
    { action: 'trust-domain-migration', touched: ['ca trust domain'], detail: { from, to: trustDomain } },
    200,
    answer,
  );
}

export async function history(call: AdminCall): Promise<void> {
  const raw = call.url.searchParams.get('limit');
  const limit = raw === null ? undefined : Number(raw);
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0))
    return sendProblems(
      call.res,
      [{ code: 'SCHEMA', field: 'limit', message: 'limit must be a positive integer' }],
      400,
    );
  const entries = await call.deps.history.list(limit);
  if (!entries.ok) return sendProblems(call.res, entries.errors);
  send(call.res, 200, { entries: entries.value });
}
