// REST-JSON polling (`POST /v3/discovery:<type>`): answer at once when the client is behind, else
// hold the request until the type changes or the long-poll expires (then 304 Not Modified).
// A poller is one sidecar: only versions we answered it with count as its ACKs and NACKs, a NACKed
// version is not answered again, and a poller that stops polling is swept (status closed, the
// control plane told it disconnected).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { ErrorCode } from '../../errors.ts';
import type { SnapshotCache, TypeSnapshot } from '../cache/snapshot.ts';
import { REST_PATHS, WILDCARD_TYPES, type TypeUrl } from '../resources/type-urls.ts';
import { log } from '../../log.ts';
import { shortName } from '../resources/type-urls.ts';
import type { SidecarStatus, StatusRegistry } from '../status.ts';
import type { ConnectContext, XdsHooks } from './hooks.ts';
import { decodeRequestJson, nodeTooLarge, type XdsRequest } from './node.ts';
import { peerIdentity } from './peer.ts';
import { discoveryResponseJson } from './response.ts';

export interface RestDeps {
  readonly cache: SnapshotCache;
  readonly hooks: XdsHooks;
  readonly statuses: StatusRegistry;
  /** How long a poll with nothing new is held; keep it under the sidecar's request_timeout. */
  readonly longPollMs: number;
  readonly maxBodyBytes?: number;
}

const PATH = /^\/v3\/discovery:([a-z]+)$/;
/** A refused poll's HTTP status by problem code (403 for the rest). */
const REFUSAL_STATUS: Partial<Record<ErrorCode, number>> = {
  UNAUTHENTICATED: 401,
  SCHEMA: 400,
  CONFLICT: 409,
};
const logger = log.child({ component: 'xds' });

interface Poller {
  readonly key: string;
  readonly ctx: ConnectContext;
  readonly status: SidecarStatus;
  lastSeen: number;
  /** Per type, the last version answered (REST nonces are versions) and the last one NACKed. */
  readonly sent: Map<TypeUrl, string>;
  readonly nacked: Map<TypeUrl, string>;
}

function reply(res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  res
    .writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    .end(text);
}

async function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export class RestXds {
  /** REST has no stream to close: a poller that stops polling is forgotten after a few long polls. */
  private readonly pollers = new Map<string, Poller>();
  private readonly pending = new Set<() => void>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly deps: RestDeps) {
    this.sweeper = setInterval(() => this.sweep(), deps.longPollMs);
    this.sweeper.unref();
  }

  /** Handles the request if it is an xDS poll; returns false so other routes can take it. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const m = PATH.exec(req.url ?? '');
    if (!m) return false;
    const typeUrl = REST_PATHS[m[1]!];
    if (req.method !== 'POST' || !typeUrl) {
      reply(res, req.method !== 'POST' ? 405 : 404, {
        error: `POST /v3/discovery:{${Object.keys(REST_PATHS).join(',')}}`,
      });
      return true;
    }
    // A client that aborts mid-body must cost nothing but its own request.
    this.poll(req, res, typeUrl).catch(() => {
      if (!res.headersSent) res.destroy();
    });
    return true;
  }

  /** Answers every held poll with 304 so shutdown is prompt. */
  close(): void {
    clearInterval(this.sweeper);
    for (const release of this.pending) release();
  }

  private async poll(req: IncomingMessage, res: ServerResponse, typeUrl: TypeUrl): Promise<void> {
    const text = await readBody(req, this.deps.maxBodyBytes ?? 1 << 20);
    if (text === undefined) return reply(res, 413, { error: 'request body too large' });
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      return reply(res, 400, { error: `invalid JSON: ${(e as Error).message}` });
    }
    const decoded = decodeRequestJson(json);
    if (!decoded.ok) return reply(res, 400, { error: decoded.errors[0]!.message });
    const request = decoded.value;
    if (!request.node) return reply(res, 401, { error: 'a REST DiscoveryRequest must carry node' });
    const tooLarge = nodeTooLarge(request.node);
    if (tooLarge) return reply(res, 400, { error: tooLarge.message, code: tooLarge.code });
    const peer = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    const socket = req.socket as TLSSocket;
    // Only a certificate the TLS layer verified counts (the port also serves agents that have none yet).
    const proved = socket.authorized ? peerIdentity(socket) : undefined;
    const ctx: ConnectContext = {
      transport: 'rest',
      peer,
      credential: proved?.spiffeId,
      ...(proved?.instance && { instance: proved.instance }),
    };
    const connected = this.deps.hooks.connect(request.node, ctx);
    if (!connected.ok) {
      const p = connected.errors[0]!;
      return reply(res, REFUSAL_STATUS[p.code] ?? 403, {
        error: p.message,
        code: p.code,
      });
    }
    const poller = this.pollerFor(request.node.id, connected.value, ctx);
    this.record(poller, typeUrl, request);
    const snapshot = await this.waitForChange(
      poller.key,
      typeUrl,
      request.versionInfo,
      res,
      poller.nacked.get(typeUrl),
    );
    if (res.destroyed) return;
    if (!snapshot) return reply(res, 304);
    const resources = this.select(snapshot, request);
    const body = discoveryResponseJson({
      version: snapshot.version,
      typeUrl,
      nonce: snapshot.version,
      resources,
    });
    poller.sent.set(typeUrl, snapshot.version);
    this.deps.statuses.pushed(
      poller.status,
      typeUrl,
      snapshot.version,
      snapshot.version,
      JSON.stringify(body).length,
    );
    reply(res, 200, body);
  }

  /** What the poll says about our last answer: an ACK or NACK only of a version we answered with. */
  private record(poller: Poller, typeUrl: TypeUrl, request: XdsRequest): void {
    const sent = poller.sent.get(typeUrl);
    if (request.errorDetail !== undefined) {
      if (sent === undefined || request.responseNonce !== sent) return;
      poller.nacked.set(typeUrl, sent);
      this.deps.statuses.nacked(poller.status, typeUrl, {
        version: sent,
        nonce: request.responseNonce,
        error: request.errorDetail,
        at: new Date().toISOString(),
      });
      logger.info(
        { node: poller.key, type: shortName(typeUrl), version: sent, error: request.errorDetail },
        'NACK',
      );
    } else if (request.versionInfo !== '' && request.versionInfo === sent) {
      this.deps.statuses.acked(poller.status, typeUrl, sent);
    } else if (
      sent === undefined &&
      request.versionInfo !== '' &&
      request.versionInfo === this.deps.cache.get(poller.key, typeUrl)?.version
    ) {
      this.deps.statuses.held(poller.status, typeUrl, request.versionInfo);
    }
  }

  private pollerFor(nodeId: string, key: string, ctx: ConnectContext): Poller {
    let poller = this.pollers.get(nodeId);
    if (!poller) {
      poller = {
        key,
        ctx,
        status: this.deps.statuses.open(nodeId, 'rest', ctx.peer),
        lastSeen: 0,
        sent: new Map(),
        nacked: new Map(),
      };
      this.pollers.set(nodeId, poller);
      logger.debug({ node: key, transport: 'rest', peer: ctx.peer }, 'sidecar connected');
    }
    poller.lastSeen = Date.now();
    return poller;
  }

  /** Pollers silent for three long polls are gone: their status closes and the control plane hears of it. */
  private sweep(now = Date.now()): void {
    const expiry = 3 * this.deps.longPollMs + 10_000;
    for (const [id, p] of this.pollers) {
      if (now - p.lastSeen <= expiry) continue;
      this.pollers.delete(id);
      this.deps.statuses.close(p.status);
      this.deps.hooks.disconnect?.(p.key, p.ctx);
      logger.debug({ node: p.key, transport: 'rest', peer: p.ctx.peer }, 'sidecar disconnected');
    }
  }

  private waitForChange(
    key: string,
    typeUrl: TypeUrl,
    clientVersion: string,
    res: ServerResponse,
    nacked: string | undefined,
  ): Promise<TypeSnapshot | undefined> {
    const fresh = (s: TypeSnapshot) => s.version !== clientVersion && s.version !== nacked;
    const current = this.deps.cache.get(key, typeUrl);
    if (current && fresh(current)) return Promise.resolve(current);
    return new Promise((resolve) => {
      const done = (s: TypeSnapshot | undefined) => {
        clearTimeout(timer);
        unwatch();
        this.pending.delete(release);
        res.off('close', release);
        resolve(s);
      };
      const release = () => done(undefined);
      const timer = setTimeout(release, this.deps.longPollMs);
      const unwatch = this.deps.cache.watch(key, (s) => {
        if (s.typeUrl === typeUrl && fresh(s)) done(s);
      });
      this.pending.add(release);
      res.on('close', release);
    });
  }

  private select(snapshot: TypeSnapshot, request: XdsRequest) {
    const all = [...snapshot.resources.values()];
    if (WILDCARD_TYPES.has(snapshot.typeUrl) && request.resourceNames.length === 0) return all;
    const names = new Set(request.resourceNames);
    return all.filter((r) => names.has(r.name));
  }
}
