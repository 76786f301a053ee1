// An in-process double of the Consul HTTP API endpoints clinimesh uses, on 127.0.0.1 (port 0 first, the
// same port after a restart). It follows Consul's documentation: blocking queries (`index`, `wait` as a
// Go duration, default 5 m, max 10 m, plus up to wait/16 of jitter; X-Consul-Index per result), health
// filtering, KV with CAS and locks, `/v1/txn`, sessions, ACL tokens (header, bearer or `?token=`), JSON
// shapes as Consul writes them, and open-source Consul's refusals (namespaces, unknown routes). Test
// controls change state directly, even while the double is down, and move its clock.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { AgentChecks } from './agent-checks.ts';
import { BadRequest, parseRegistration } from './agent-api.ts';
import { agentRoutes } from './agent-routes.ts';
import { answerRead } from './blocking.ts';
import { catalogRoutes, statusRoutes } from './catalog-api.ts';
import { DoubleClock } from './clock.ts';
import { FilterError } from './filter.ts';
import { header, HttpError, readRaw, sendText } from './http.ts';
import { kvRoutes } from './kv-api.ts';
import { KvStore } from './kv-store.ts';
import type { Access } from './reads.ts';
import { CriticalReaper } from './reaper.ts';
import type { RouteContext, RouteFamily } from './route.ts';
import { sessionRoutes } from './session-api.ts';
import { SessionStore } from './sessions.ts';
import { CatalogState, DEFAULT_NAMESPACE } from './state.ts';
import type { CheckStatus } from './state.ts';
import { txnRoutes } from './txn-api.ts';

export interface ConsulDoubleOptions {
  readonly datacenter?: string;
  readonly nodeName?: string;
  /** Enables ACLs with default-deny: `management` may do anything, `read` tokens may only read. */
  readonly acl?: { readonly management: string; readonly read?: readonly string[] };
  /** Consul's `session_ttl_min`: the shortest session TTL accepted (default 10 s). */
  readonly sessionTtlMinMs?: number;
  /** The clock stands still between `advanceClock` calls (TTLs and delays never pass on their own). */
  readonly manualClock?: boolean;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
}

/** How the double is unreachable: `refuse` closes the port (ECONNREFUSED), `hang` accepts and never answers. */
export type Outage = 'refuse' | 'hang';

export class ConsulDouble {
  readonly state: CatalogState;
  readonly kv: KvStore;
  readonly sessions: SessionStore;
  /** The double's time: real time plus what tests add with `advanceClock`. */
  readonly clock: DoubleClock;
  readonly node: string;
  /** Every API request received, oldest first (bounded). */
  readonly requests: RecordedRequest[] = [];
  /** What X-Consul-KnownLeader says; false models a cluster that lost its leader. */
  knownLeader = true;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly waiters = new Set<() => void>();
  private readonly checks: AgentChecks;
  private readonly reaper: CriticalReaper;
  private readonly families: RouteFamily[];
  private failures: Array<{ status: number; body: string }> = [];
  private boundPort = 0;
  private running = false;
  private hanging = false;

  private constructor(private readonly options: ConsulDoubleOptions) {
    this.clock = new DoubleClock(options.manualClock);
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
    this.checks = new AgentChecks(this.state, this.node, this.clock);
    this.reaper = new CriticalReaper(this.state, this.node, this.clock);
    this.kv = new KvStore(this.state, this.clock);
    this.sessions = new SessionStore(this.state, this.kv, this.clock, options.sessionTtlMinMs);
    this.families = [
      catalogRoutes(this.state),
      statusRoutes,
      agentRoutes(this.state, this.node, this.checks),
      kvRoutes(this.kv),
      txnRoutes(this.kv),
      sessionRoutes(this.sessions, this.node),
    ];
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

  /** Starts listening (again, on the same port after `stop()`), or ends a `pause('hang')`. */
  async start(): Promise<void> {
    this.hanging = false;
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
    this.reaper.start();
    this.sessions.start();
  }

  /** Goes down like a crashed agent: connections reset, held queries dropped, checks paused; state kept. */
  async stop(): Promise<void> {
    this.hanging = false;
    if (!this.running) return;
    this.running = false;
    this.checks.stop();
    this.reaper.stop();
    this.sessions.stop();
    for (const finish of [...this.waiters]) finish();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /**
   * Makes the double unreachable until `resume()`: `refuse` (default) is `stop()`; `hang` keeps the port
   * open but answers nothing, as a partitioned network does (clients see timeouts, not refusals).
   */
  async pause(outage: Outage = 'refuse'): Promise<void> {
    if (outage === 'refuse') return this.stop();
    this.hanging = true;
    for (const finish of [...this.waiters]) finish();
  }

  /** Ends `pause()`: listening on the same port, with the state it had; hung connections are reset. */
  async resume(): Promise<void> {
    if (this.hanging) for (const socket of this.sockets) socket.destroy();
    await this.start();
  }

  /** Moves the double's clock forward: due TTLs, lock-delays and reaps happen now. */
  advanceClock(ms: number): void {
    this.clock.advance(ms);
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

  /** Replaces a service's checks with plain ones whose status only tests change. */
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

  /** Sets any check's status (test control; the API lets only TTL checks be set). */
  setCheckStatus(checkId: string, status: CheckStatus, output = '', node = this.node): void {
    if (this.state.updateCheck(node, checkId, status, output) === 'unknown')
      throw new Error(`no check ${checkId} on ${node}`);
  }

  /** Lowers the raft index, as restoring an older snapshot does. */
  rewindIndex(to: number): void {
    this.state.rewind(to);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.hanging) return; // the socket stays open, unanswered, until resume() resets it
    const url = new URL(req.url ?? '/', 'http://consul');
    const method = req.method ?? 'GET';
    this.requests.push({ method, path: url.pathname, query: url.searchParams });
    if (this.requests.length > 10_000) this.requests.shift();
    // Every answer since Consul 1.9 names the default policy, `allow` when ACLs are off.
    res.setHeader('X-Consul-Default-ACL-Policy', this.options.acl ? 'deny' : 'allow');
    try {
      const failure = this.failures.shift();
      if (failure) throw new HttpError(failure.status, failure.body);
      const body = method === 'GET' || method === 'HEAD' ? Buffer.alloc(0) : await readRaw(req);
      const family = this.families.find((f) => f.matches(url.pathname));
      // Consul's catch-all index handler answers any other path with an empty 404.
      if (!family) throw new HttpError(404, '');
      if (family.namespaced !== false) refuseNamespaces(req, url.searchParams);
      await family.handle(this.context(method, url, req, res, body));
    } catch (err) {
      const status =
        err instanceof HttpError
          ? err.status
          : err instanceof BadRequest || err instanceof FilterError
            ? 400
            : 500;
      if (!res.headersSent && !res.destroyed) {
        if (err instanceof HttpError) for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
        sendText(res, status, (err as Error).message);
      }
    }
  }

  private context(
    method: string,
    url: URL,
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
  ): RouteContext {
    const q = url.searchParams;
    return {
      method,
      path: url.pathname,
      q,
      req,
      res,
      body,
      access: () => this.authorize(req, q),
      requireWrite: (permission) => {
        const access = this.authorize(req, q);
        if (access !== 'management') throw this.denied(access, permission);
      },
      read: (result) =>
        answerRead(
          {
            state: this.state,
            waiters: this.waiters,
            running: () => this.running && !this.hanging,
            knownLeader: () => this.knownLeader,
            datacenter: this.state.datacenter,
          },
          req,
          res,
          q,
          () => this.authorize(req, q),
          result,
        ),
      leaderHeaders: () => {
        res.setHeader('X-Consul-KnownLeader', String(this.knownLeader));
        res.setHeader('X-Consul-LastContact', '0');
      },
    };
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

/** Open-source Consul refuses a namespace (and a partition) in the header or the query with a 400. */
function refuseNamespaces(req: IncomingMessage, q: URLSearchParams): void {
  if (header(req, 'x-consul-namespace'))
    throw new BadRequest('Invalid header: "X-Consul-Namespace" - Namespaces are a Consul Enterprise feature');
  if (q.get('ns'))
    throw new BadRequest('Invalid query parameter: "ns" - Namespaces are a Consul Enterprise feature');
  if (header(req, 'x-consul-partition'))
    throw new BadRequest('Invalid header: "X-Consul-Partition" - Partitions are a Consul Enterprise feature');
  if (q.get('partition'))
    throw new BadRequest('Invalid query parameter: "partition" - Partitions are a Consul Enterprise feature');
}
