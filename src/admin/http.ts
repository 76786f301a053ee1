// The admin HTTP API: apply/delete manifests, read state and per-sidecar status, config dumps,
// health and Prometheus metrics. Input is YAML or JSON text; every error is a list of problems
// with file:line:col and field, and HTTP 400/404/409 says which kind.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { formatProblem, type Problem, type Result } from '../errors.ts';
import type { ControlPlane } from '../control/control-plane.ts';
import { parseManifestText } from '../manifest/index.ts';
import type { ManifestKind } from '../manifest/types.ts';
import type { SnapshotCache } from '../xds/cache/snapshot.ts';
import type { JsonObject } from '../xds/resources/json.ts';
import { PUSH_ORDER, SECRET, shortName } from '../xds/resources/type-urls.ts';
import type { StatusRegistry } from '../xds/status.ts';
import type { Metrics } from './metrics.ts';

export interface AdminDeps {
  readonly controlPlane: ControlPlane;
  readonly cache: SnapshotCache;
  readonly statuses: StatusRegistry;
  readonly metrics: Metrics;
  readonly ready: () => boolean;
  /** Extra status sections (discovery sources, CA) keyed by name. */
  readonly extraStatus?: () => Record<string, unknown>;
  readonly ca?: {
    describe(): unknown;
    rotateRoot(phase: 'begin' | 'complete'): Promise<Result<unknown>>;
    /** Signs a workload's bootstrap credential for its own public key (the key stays with the workload). */
    bootstrapCredential(namespace: string, service: string, publicKeyPem: string): Result<unknown>;
  };
}

const MAX_BODY = 4 << 20;

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) }).end(text);
}

function problemsBody(problems: readonly Problem[]) {
  return { errors: problems.map((p) => ({ ...p, text: formatProblem(p) })) };
}

function statusFor(problems: readonly Problem[]): number {
  if (problems.some((p) => p.code === 'NOT_FOUND')) return 404;
  if (problems.some((p) => p.code === 'CONFLICT')) return 409;
  return 400;
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) return undefined;
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function createAdminServer(deps: AdminDeps): Server {
  return createServer((req, res) => {
    route(deps, req, res).catch((e: unknown) => send(res, 500, { errors: [{ code: 'IO', message: (e as Error).message }] }));
  });
}

async function route(deps: AdminDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin');
  const cp = deps.controlPlane;
  const key = `${req.method} ${url.pathname}`;
  if (key === 'GET /healthz') return send(res, 200, 'ok\n', 'text/plain');
  if (key === 'GET /readyz') return deps.ready() ? send(res, 200, 'ready\n', 'text/plain') : send(res, 503, 'not ready\n', 'text/plain');
  if (key === 'GET /metrics') {
    deps.metrics.revision.set(cp.state().revision);
    return send(res, 200, await deps.metrics.registry.metrics(), deps.metrics.registry.contentType);
  }
  if (key === 'GET /v1/status') {
    return send(res, 200, { revision: cp.state().revision, sidecars: deps.statuses.toJSON(), ...(deps.extraStatus?.() ?? {}) });
  }
  if (key === 'GET /v1/sidecars') return send(res, 200, deps.statuses.toJSON());
  if (key === 'GET /v1/manifests') return send(res, 200, { revision: cp.state().revision, manifests: cp.store.list() });
  if (key === 'GET /v1/config_dump') return configDump(deps, url, res);
  if (key === 'GET /v1/ca' && deps.ca) return send(res, 200, deps.ca.describe());
  if (key === 'POST /v1/bootstrap-credentials' && deps.ca) {
    const body = await readBody(req);
    let json: { namespace?: unknown; service?: unknown; publicKeyPem?: unknown };
    try {
      json = JSON.parse(body ?? '') as typeof json;
    } catch {
      return send(res, 400, { errors: [{ code: 'SCHEMA', message: 'body must be JSON {namespace, service, publicKeyPem}' }] });
    }
    const { namespace, service, publicKeyPem } = json;
    if (typeof namespace !== 'string' || typeof service !== 'string' || typeof publicKeyPem !== 'string') {
      return send(res, 400, { errors: [{ code: 'SCHEMA', message: 'namespace, service and publicKeyPem are required strings' }] });
    }
    const issued = deps.ca.bootstrapCredential(namespace, service, publicKeyPem);
    return issued.ok ? send(res, 200, issued.value) : send(res, statusFor(issued.errors), problemsBody(issued.errors));
  }
  if (key === 'POST /v1/ca/rotate-root' && deps.ca) {
    const phase = url.searchParams.get('phase');
    if (phase !== 'begin' && phase !== 'complete') return send(res, 400, { errors: [{ code: 'SCHEMA', field: 'phase', message: 'phase must be begin or complete' }] });
    const result = await deps.ca.rotateRoot(phase);
    return result.ok ? send(res, 200, { ...(result.value as object), ca: deps.ca.describe() }) : send(res, 409, problemsBody(result.errors));
  }
  if (key === 'POST /v1/apply' || key === 'POST /v1/delete') {
    const body = await readBody(req);
    if (body === undefined) return send(res, 413, { errors: [{ code: 'SCHEMA', message: 'body too large' }] });
    const file = url.searchParams.get('file') ?? '<request>';
    const parsed = parseManifestText(body, file);
    if (!parsed.ok) {
      deps.metrics.applies.inc({ result: 'invalid' });
      return send(res, 400, problemsBody(parsed.errors));
    }
    const dryRun = url.searchParams.get('dryRun') === 'true';
    const result =
      key === 'POST /v1/apply'
        ? await cp.apply(parsed.value, dryRun)
        : await cp.delete(parsed.value.map((m) => ({ kind: m.kind, name: m.name, namespace: 'namespace' in m ? m.namespace : undefined })), dryRun);
    deps.metrics.applies.inc({ result: result.ok ? 'ok' : 'rejected' });
    return result.ok ? send(res, 200, result.value) : send(res, statusFor(result.errors), problemsBody(result.errors));
  }
  const del = /^DELETE \/v1\/manifests\/([A-Za-z]+)\/(?:([a-z0-9-]+)\/)?([a-z0-9-]+)$/.exec(key);
  if (del) {
    const result = await cp.delete([{ kind: del[1] as ManifestKind, namespace: del[2], name: del[3]! }]);
    deps.metrics.applies.inc({ result: result.ok ? 'ok' : 'rejected' });
    return result.ok ? send(res, 200, result.value) : send(res, statusFor(result.errors), problemsBody(result.errors));
  }
  send(res, 404, { errors: [{ code: 'NOT_FOUND', message: `no route ${key}` }] });
}

function configDump(deps: AdminDeps, url: URL, res: ServerResponse): void {
  const node = url.searchParams.get('node');
  if (!node) return send(res, 200, { nodes: deps.cache.nodeIds() });
  if (!deps.cache.has(node)) return send(res, 404, { errors: [{ code: 'NOT_FOUND', message: `no snapshot for node ${node}` }] });
  const dump: Record<string, unknown> = {};
  for (const t of PUSH_ORDER) {
    const s = deps.cache.get(node, t);
    if (!s) continue;
    const resources = [...s.resources.values()].map((r) => (t === SECRET ? redactSecret(r.json()) : r.json()));
    dump[shortName(t)] = { version: s.version, resources };
  }
  send(res, 200, { node, ...dump });
}

/** Keys never leave through the admin API: a secret shows its name and certificate, not its key. */
function redactSecret(secret: JsonObject): JsonObject {
  const tls = secret.tlsCertificate as JsonObject | undefined;
  return tls ? { ...secret, tlsCertificate: { ...tls, privateKey: '[redacted]' } } : secret;
}
