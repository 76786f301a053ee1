// The admin HTTPS API: apply/delete manifests, read state and per-sidecar status, config dumps,
// operator tokens, join tokens, history, proxy status, describe, version, health and Prometheus metrics. Every call but /healthz and
// /readyz (and /metrics with `metricsPublic`) needs a bearer token, and Host/Origin must be ours.
// Input is YAML or JSON text; every error is a list of problems, and the HTTP status says which kind.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Problem } from '../errors.ts';
import type { JsonObject } from '../xds/resources/json.ts';
import { PUSH_ORDER, SECRET, shortName } from '../xds/resources/type-urls.ts';
import type { AdminCall, AdminDeps } from './deps.ts';
import { checkHostAndOrigin } from './host-check.ts';
import { describeManifest } from './describe-routes.ts';
import { applyOrDelete, deleteOne } from './manifest-routes.ts';
import {
  createJoinToken,
  createToken,
  history,
  listTokens,
  migrateTrustDomain,
  revokeToken,
  rotateRoot,
} from './operator-routes.ts';
import { send, sendProblems } from './respond.ts';
import { proxyStatus } from './sync-routes.ts';
import { version } from './version-routes.ts';
import type { Principal } from './tokens.ts';

export type { AdminDeps, JoinTokenIssuer } from './deps.ts';

export interface ServingTls {
  readonly certChainPem: string;
  readonly privateKeyPem: string;
}

export function createAdminServer(deps: AdminDeps, tls: ServingTls): Server {
  return createServer(
    { cert: tls.certChainPem, key: tls.privateKeyPem, minVersion: 'TLSv1.2' },
    adminHandler(deps),
  );
}

export function adminHandler(deps: AdminDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    route(deps, req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, 500, { errors: [{ code: 'IO', message: (e as Error).message }] });
    });
  };
}

function bearerToken(req: IncomingMessage): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return m?.[1];
}

function unauthenticated(res: ServerResponse, presented: boolean): void {
  const problem: Problem = {
    code: 'UNAUTHENTICATED',
    message: presented ? 'the bearer token is invalid, revoked or expired' : 'a bearer token is required',
  };
  const challenge = presented
    ? 'Bearer realm="clinimesh", error="invalid_token"'
    : 'Bearer realm="clinimesh"';
  sendProblems(res, [problem], 401, { 'www-authenticate': challenge });
}

async function route(deps: AdminDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'https://admin');
  const key = `${req.method} ${url.pathname}`;
  // Probes (and public metrics) answer anyone: kubelets dial the pod IP with no token.
  if (key === 'GET /healthz') return send(res, 200, 'ok\n', 'text/plain');
  if (key === 'GET /readyz')
    return deps.ready()
      ? send(res, 200, 'ready\n', 'text/plain')
      : send(res, 503, 'not ready\n', 'text/plain');
  if (key === 'GET /metrics' && deps.metricsPublic) return metrics(deps, res);
  const refused = checkHostAndOrigin(req, deps.allowedHosts ?? []);
  if (refused) return sendProblems(res, [refused.problem], refused.status);
  const token = bearerToken(req);
  const principal: Principal | undefined = token === undefined ? undefined : deps.tokens.authenticate(token);
  if (!principal) return unauthenticated(res, req.headers.authorization !== undefined);
  return authenticatedRoute({ deps, req, res, url, principal }, key);
}

async function authenticatedRoute(call: AdminCall, key: string): Promise<void> {
  const { deps, res, url } = call;
  const cp = deps.controlPlane;
  switch (key) {
    case 'GET /metrics':
      return metrics(deps, res);
    case 'GET /v1/status':
      return send(res, 200, {
        revision: cp.state().revision,
        sidecars: deps.statuses.toJSON(),
        ...(deps.extraStatus?.() ?? {}),
      });
    case 'GET /v1/sidecars':
      return send(res, 200, deps.statuses.toJSON());
    case 'GET /v1/proxy-status':
      return proxyStatus(call);
    case 'GET /v1/version':
      return version(call);
    case 'GET /v1/manifests':
      return send(res, 200, { revision: cp.state().revision, manifests: cp.store.list() });
    case 'GET /v1/config_dump':
      return configDump(deps, url, res);
    case 'GET /v1/whoami':
      return send(res, 200, call.principal);
    case 'GET /v1/history':
      return history(call);
    case 'GET /v1/tokens':
      return listTokens(call);
    case 'POST /v1/tokens':
      return createToken(call);
    case 'POST /v1/join-tokens':
      return createJoinToken(call);
    case 'POST /v1/ca/rotate-root':
      return rotateRoot(call);
    case 'POST /v1/ca/trust-domain':
      return migrateTrustDomain(call);
    case 'POST /v1/apply':
      return applyOrDelete(call, 'apply');
    case 'POST /v1/delete':
      return applyOrDelete(call, 'delete');
  }
  if (key === 'GET /v1/ca' && deps.ca) return send(res, 200, deps.ca.describe());
  const revoke = /^DELETE \/v1\/tokens\/([0-9a-f]{16})$/.exec(key);
  if (revoke) return revokeToken(call, revoke[1]!);
  const del = /^DELETE \/v1\/manifests\/([A-Za-z]+)\/(?:([a-z0-9-]+)\/)?([a-z0-9-]+)$/.exec(key);
  if (del) return deleteOne(call, del[1]!, del[2], del[3]!);
  const described = /^GET \/v1\/describe\/([A-Za-z]+)\/(?:([a-z0-9-]+)\/)?([a-z0-9-]+)$/.exec(key);
  if (described) return describeManifest(call, described[1]!, described[2], described[3]!);
  sendProblems(res, [{ code: 'NOT_FOUND', message: `no route ${key}` }], 404);
}

async function metrics(deps: AdminDeps, res: ServerResponse): Promise<void> {
  deps.metrics.revision.set(deps.controlPlane.state().revision);
  send(res, 200, await deps.metrics.registry.metrics(), deps.metrics.registry.contentType);
}

function configDump(deps: AdminDeps, url: URL, res: ServerResponse): void {
  const node = url.searchParams.get('node');
  if (!node) return send(res, 200, { nodes: deps.cache.nodeIds() });
  if (!deps.cache.has(node))
    return send(res, 404, { errors: [{ code: 'NOT_FOUND', message: `no snapshot for node ${node}` }] });
  const dump: Record<string, unknown> = {};
  for (const t of PUSH_ORDER) {
    const s = deps.cache.get(node, t);
    if (!s) continue;
    const resources = [...s.resources.values()].map((r) =>
      t === SECRET ? redactSecret(r.json()) : r.json(),
    );
    dump[shortName(t)] = { version: s.version, resources };
  }
  send(res, 200, { node, ...dump });
}

/** Keys never leave through the admin API: a secret shows its name and certificate, not its key. */
function redactSecret(secret: JsonObject): JsonObject {
  const tls = secret.tlsCertificate as JsonObject | undefined;
  return tls ? { ...secret, tlsCertificate: { ...tls, privateKey: '[redacted]' } } : secret;
}
