// An in-process double of the Consul HTTP API endpoints clinimesh uses, on 127.0.0.1 (port 0 first, the
// same port after a restart). It follows Consul's documentation: blocking queries (`index`, `wait` as a
// Go duration, default 5 m, max 10 m, plus up to wait/16 of jitter; X-Consul-Index per result), health
// filtering (`passing`, `tag`, a subset of `filter`), ACL tokens (header, bearer or `?token=`), JSON
// shapes as Consul writes them. Test controls change state directly, even while the double is "down".
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { AgentChecks } from './agent-checks.ts';
import { BadRequest, parseCheckUpdate, parseRegistration } from './agent-api.ts';
import { parseGoDuration } from './duration.ts';
import { FilterError } from './filter.ts';
import { catalogService, catalogServices, healthService } from './reads.ts';
import type { Access, ReadResult } from './reads.ts';
import { CatalogState, DEFAULT_NAMESPACE } from './state.ts';
import type { CheckStatus } from './state.ts';

export interface ConsulDoubleOptions {
  readonly datacenter?: string;
  readonly nodeName?: string;
  /** Enables ACLs with default-deny: `management` may do anything, `read` tokens may only read. */
  readonly acl?: { readonly management: string; readonly read?: readonly string[] };
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const DEFAULT_WAIT_MS = 5 * 60_000;
const MAX_WAIT_MS = 10 * 60_000;

export class ConsulDouble {
  readonly state: CatalogState;
  readonly node: string;
  /** Every API request received, oldest first (bounded). */
  readonly requests: RecordedRequest[] = [];
  /** What X-Consul-KnownLeader says; false models a cluster that lost its leader. */
  knownLeader = true;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly waiters = new Set<() => void>();
  private readonly checks: AgentChecks;
  private failures: Array<{ status: number; body: string }> = [];
  private boundPort = 0;
  private running = false;

  private constructor(private readonly options: ConsulDoubleOptions) {
    this.state = new CatalogState(options.datacenter ?? 'dc1');
    this.node = options.nodeName ?? 'consul-double';
    this.state.addNode({
      id: '8f5c2b7e-0000-4000-8000-00000000d0b1',
      name: this.node,
      address: '127.0.0.1',
      datacenter: this.state.datacenter,
      meta: { 'consul-network-segment': '' },
    });
    // Like a dev agent, the node runs the `consul` service itself.
    this.state.registerService(
      this.node,
      {
        id: 'consul',
        name: 'consul',
        namespace: DEFAULT_NAMESPACE,
        tags: [],
        address: '',
        port: 8300,
        meta: { raft_version: '3' },
        weights: { Passing: 1, Warning: 1 },
        enableTagOverride: false,
      },
      [],
      false,
    );
    this.checks = new AgentChecks(this.state, this.node);
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(options: ConsulDoubleOptions = {}): Promise<ConsulDouble> {
    const double = new ConsulDouble(options);
    await double.start();
    return double;
  }

  get port(): number {
    return this.boundPort;
  }
  /** `127.0.0.1:<port>`, as CONSUL_HTTP_ADDR takes it. */
  get address(): string {
    return `127.0.0.1:${this.boundPort}`;
  }
  get index(): number {
    return this.state.index;
  }
  /** Blocking queries being held right now. */
  get pendingBlockingQueries(): number {
    return this.waiters.size;
  }

  /** Starts listening (again, on the same port after `stop()`). */
  async start(): Promise<void> {
    if (this.running) return;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: '127.0.0.1', port: this.boundPort }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.boundPort = (this.server.address() as AddressInfo).port;
    this.running = true;
    this.checks.start();
  }

  /** Goes down like a crashed agent: connections reset, held queries dropped, checks paused. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.checks.stop();
    for (const finish of [...this.waiters]) finish();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** The next `n` API requests fail with `status` (default 500, as when there is no cluster leader). */
  failNext(n: number, status = 500, body = 'rpc error making call: No cluster leader'): void {
    for (let i = 0; i < n; i++) this.failures.push({ status, body });
  }

  /** Registers a service as `PUT /v1/agent/service/register` would, on this agent or another node. */
  registerService(body: unknown, options: { node?: string; ns?: string } = {}): void {
    const { service, checks } = parseRegistration(body, options.ns);
    this.state.registerService(options.node ?? this.node, service, checks, false);
  }

  deregisterService(id: string, node = this.node): boolean {
    return this.state.deregisterService(node, id) !== undefined;
  }

  /** Adds (or updates) another node, e.g. to give instances node meta (region/zone). */
  addNode(node: { name: string; address: string; meta?: Record<string, string>; id?: string }): void {
    this.state.addNode({
      id: node.id ?? `00000000-0000-4000-8000-${String(this.state.nodes.size).padStart(12, '0')}`,
      name: node.name,
      address: node.address,
      datacenter: this.state.datacenter,
      meta: node.meta ?? {},
    });
  }

  /** Replaces a service's checks with plain ones whose status only tests (or the API) change. */
  setChecks(
    serviceId: string,
    checks: ReadonlyArray<{ CheckID?: string; Name?: string; Status: CheckStatus }>,
    node = this.node,
  ): void {
    const service = this.state.findService(node, serviceId);
    if (!service) throw new Error(`no service ${serviceId} on ${node}`);
    for (const check of [...this.state.checks.values()]) {
      if (check.node === node && check.serviceId === serviceId) this.state.removeCheck(node, check.checkId);
    }
    checks.forEach((c, i) => {
      this.state.addServiceCheck(node, serviceId, {
        checkId: c.CheckID ?? `service:${serviceId}:${i + 1}`,
        name: c.Name ?? `Service '${service.name}' check`,
        status: c.Status,
        definition: {},
      });
    });
  }

  setCheckStatus(checkId: string, status: CheckStatus, output = '', node = this.node): void {
    if (this.state.updateCheck(node, checkId, status, output) === 'unknown')
      throw new Error(`no check ${checkId} on ${node}`);
  }

  /** Lowers the raft index, as restoring an older snapshot does. */
  rewindIndex(to: number): void {
    this.state.rewind(to);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://consul');
    const method = req.method ?? 'GET';
    this.requests.push({ method, path: url.pathname, query: url.searchParams });
    if (this.requests.length > 10_000) this.requests.shift();
    try {
      const failure = this.failures.shift();
      if (failure) throw new HttpError(failure.status, failure.body);
      const body = method === 'PUT' ? await readBody(req) : undefined;
      await this.route(method, url, req, res, body);
    } catch (err) {
      const status =
        err instanceof HttpError
          ? err.status
          : err instanceof BadRequest || err instanceof FilterError
            ? 400
            : 500;
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
        res.end((err as Error).message);
      }
    }
  }

  private async route(
    method: string,
    url: URL,
    req: IncomingMessage,
    res: ServerResponse,
    body: unknown,
  ): Promise<void> {
    const p = url.pathname;
    const q = url.searchParams;
    const ns = q.get('ns') || header(req, 'x-consul-namespace') || DEFAULT_NAMESPACE;
    let m: RegExpExecArray | null;
    const expect = (want: string): void => {
      if (method !== want) throw new HttpError(405, `method ${method} not allowed`);
    };
    if ((m = /^\/v1\/health\/service\/([^/]+)$/.exec(p))) {
      expect('GET');
      return this.read(req, res, q, healthService(this.state, decodeURIComponent(m[1]!), ns, q));
    }
    if (p === '/v1/catalog/services') {
      expect('GET');
      return this.read(req, res, q, catalogServices(this.state, ns, q));
    }
    if ((m = /^\/v1\/catalog\/service\/([^/]+)$/.exec(p))) {
      expect('GET');
      return this.read(req, res, q, catalogService(this.state, decodeURIComponent(m[1]!), ns, q));
    }
    if (p === '/v1/status/leader') return sendJson(res, 200, '127.0.0.1:8300');
    expect('PUT');
    const access = this.authorize(req, q);
    if (access !== 'management') throw this.denied(access, 'service:write');
    if (p === '/v1/agent/service/register') {
      const { service, checks } = parseRegistration(body, ns);
      this.state.registerService(this.node, service, checks, q.has('replace-existing-checks'));
      return sendJson(res, 200, undefined);
    }
    if ((m = /^\/v1\/agent\/service\/deregister\/([^/]+)$/.exec(p))) {
      const id = decodeURIComponent(m[1]!);
      if (!this.deregisterService(id))
        throw new HttpError(
          404,
          `Unknown service ID "${id}". Ensure that the service ID is passed, not the service name.`,
        );
      return sendJson(res, 200, undefined);
    }
    if ((m = /^\/v1\/agent\/service\/maintenance\/([^/]+)$/.exec(p)))
      return this.maintenance(decodeURIComponent(m[1]!), q, res);
    if ((m = /^\/v1\/agent\/check\/(pass|warn|fail|update)\/([^/]+)$/.exec(p))) {
      const checkId = decodeURIComponent(m[2]!);
      const verb = m[1]!;
      const update =
        verb === 'update'
          ? parseCheckUpdate(body)
          : {
              status: ({ pass: 'passing', warn: 'warning', fail: 'critical' } as const)[verb as 'pass']!,
              output: q.get('note') ?? '',
            };
      if (this.state.updateCheck(this.node, checkId, update.status, update.output) === 'unknown')
        throw new HttpError(404, `Unknown check ID "${checkId}"`);
      this.checks.refreshTtl(checkId);
      return sendJson(res, 200, undefined);
    }
    throw new HttpError(404, `404 page not found`);
  }

  private maintenance(serviceId: string, q: URLSearchParams, res: ServerResponse): void {
    const enable = q.get('enable');
    if (enable !== 'true' && enable !== 'false') throw new BadRequest('Missing value for enable');
    if (!this.state.findService(this.node, serviceId))
      throw new HttpError(404, `Unknown service ID "${serviceId}"`);
    const checkId = `_service_maintenance:${serviceId}`;
    if (enable === 'true') {
      this.state.addServiceCheck(this.node, serviceId, {
        checkId,
        name: 'Service Maintenance Mode',
        status: 'critical',
        notes:
          q.get('reason') ||
          'Maintenance mode is enabled for this service, but no reason was provided. This is a default message.',
        definition: {},
      });
    } else {
      this.state.removeCheck(this.node, checkId);
    }
    sendJson(res, 200, undefined);
  }

  /** A read with Consul's blocking-query semantics and headers. */
  private async read(
    req: IncomingMessage,
    res: ServerResponse,
    q: URLSearchParams,
    result: ReadResult,
  ): Promise<void> {
    const dc = q.get('dc');
    if (dc && dc !== this.state.datacenter) throw new HttpError(500, 'No path to datacenter');
    if (q.has('stale') && q.has('consistent'))
      throw new BadRequest('Cannot specify ?stale with ?consistent, conflicting semantics.');
    const indexText = q.get('index');
    if (indexText !== null && !/^\d+$/.test(indexText)) throw new BadRequest('Invalid index');
    const waitText = q.get('wait');
    const waitMs = waitText === null ? DEFAULT_WAIT_MS : parseGoDuration(waitText);
    if (waitMs === undefined || waitMs < 0) throw new BadRequest('Invalid wait time');
    const access = this.authorize(req, q);
    const minIndex = indexText === null ? 0 : Number(indexText);
    if (minIndex > 0) await this.block(result.index, minIndex, Math.min(waitMs, MAX_WAIT_MS), res);
    if (res.destroyed || !this.running) return;
    const { body, filtered } = result.body(access);
    res.setHeader('X-Consul-Index', String(Math.max(1, result.index())));
    res.setHeader('X-Consul-KnownLeader', String(this.knownLeader));
    res.setHeader('X-Consul-LastContact', '0');
    res.setHeader(
      'X-Consul-Effective-Consistency',
      q.has('stale') ? 'stale' : q.has('consistent') ? 'consistent' : 'leader',
    );
    if (filtered) res.setHeader('X-Consul-Results-Filtered-By-ACLs', 'true');
    sendJson(res, 200, body);
  }

  /** Holds until the result's index passes `minIndex`, `wait` (+ up to wait/16) passes, or the client leaves. */
  private block(index: () => number, minIndex: number, waitMs: number, res: ServerResponse): Promise<void> {
    if (index() > minIndex) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        unsubscribe();
        res.off('close', finish);
        this.waiters.delete(finish);
        resolve();
      };
      const timer = setTimeout(finish, waitMs + Math.random() * (waitMs / 16));
      const unsubscribe = this.state.onChange(() => {
        if (index() > minIndex) finish();
      });
      res.on('close', finish);
      this.waiters.add(finish);
    });
  }

  private authorize(req: IncomingMessage, q: URLSearchParams): Access {
    const acl = this.options.acl;
    if (!acl) return 'management';
    const bearer = /^Bearer\s+(.+)$/i.exec(header(req, 'authorization') ?? '')?.[1];
    const token = header(req, 'x-consul-token') || bearer || q.get('token') || '';
    if (token === '' || token === 'anonymous') return 'anonymous';
    if (token === acl.management) return 'management';
    if (acl.read?.includes(token)) return 'read';
    throw new HttpError(403, 'ACL not found');
  }

  private denied(access: Access, permission: string): HttpError {
    const who =
      access === 'anonymous'
        ? 'anonymous token'
        : "token with AccessorID '00000000-0000-0000-0000-000000000001'";
    return new HttpError(403, `Permission denied: ${who} lacks permission '${permission}'`);
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new BadRequest(`Request decode failed: ${(err as Error).message}`);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed) return;
  if (body === undefined) {
    res.writeHead(status, { 'content-length': '0' });
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
