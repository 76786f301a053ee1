// REST-JSON polling (`POST /v3/discovery:<type>`): answer at once when the client is behind, else
// hold the request until the type changes or the long-poll expires (then 304 Not Modified).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { SnapshotCache, TypeSnapshot } from '../cache/snapshot.ts';
import { REST_PATHS, WILDCARD_TYPES, type TypeUrl } from '../resources/type-urls.ts';
import type { SidecarStatus, StatusRegistry } from '../status.ts';
import type { XdsHooks } from './hooks.ts';
import { decodeRequestJson, type XdsRequest } from './node.ts';
import { spiffeIdOf } from './peer.ts';
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

function reply(res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
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
  private readonly pollers = new Map<string, { status: SidecarStatus; lastSeen: number }>();
  private lastSweep = 0;
  private readonly pending = new Set<() => void>();

  constructor(private readonly deps: RestDeps) {}

  /** Handles the request if it is an xDS poll; returns false so other routes can take it. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const m = PATH.exec(req.url ?? '');
    if (!m) return false;
    const typeUrl = REST_PATHS[m[1]!];
    if (req.method !== 'POST' || !typeUrl) {
      reply(res, req.method !== 'POST' ? 405 : 404, { error: `POST /v3/discovery:{${Object.keys(REST_PATHS).join(',')}}` });
      return true;
    }
    void this.poll(req, res, typeUrl);
    return true;
  }

  /** Answers every held poll with 304 so shutdown is prompt. */
  close(): void {
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
    const peer = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    const socket = req.socket as TLSSocket;
    // Only a certificate the TLS layer verified counts (the port also serves agents that have none yet).
    const credential = socket.authorized ? spiffeIdOf(socket.getPeerCertificate()) : undefined;
    const connected = this.deps.hooks.connect(request.node, { transport: 'rest', peer, credential });
    if (!connected.ok) {
      const p = connected.errors[0]!;
      return reply(res, p.code === 'UNAUTHENTICATED' ? 401 : 403, { error: p.message, code: p.code });
    }
    const key = connected.value;
    const status = this.statusFor(request.node.id, peer);
    if (request.errorDetail !== undefined) {
      this.deps.statuses.nacked(status, typeUrl, { version: request.versionInfo, nonce: request.responseNonce, error: request.errorDetail, at: new Date().toISOString() });
    } else if (request.versionInfo) {
      this.deps.statuses.acked(status, typeUrl, request.versionInfo);
    }
    const snapshot = await this.waitForChange(key, typeUrl, request.versionInfo, res);
    if (res.destroyed) return;
    if (!snapshot) return reply(res, 304);
    const resources = this.select(snapshot, request);
    const body = discoveryResponseJson({ version: snapshot.version, typeUrl, nonce: snapshot.version, resources });
    this.deps.statuses.pushed(status, typeUrl, snapshot.version, snapshot.version, JSON.stringify(body).length);
    reply(res, 200, body);
  }

  private statusFor(nodeId: string, peer: string): SidecarStatus {
    const now = Date.now();
    const expiry = 3 * this.deps.longPollMs + 10_000;
    // Swept at most once per long poll, so the hot path stays one map lookup.
    if (now - this.lastSweep > this.deps.longPollMs) {
      this.lastSweep = now;
      for (const [id, p] of this.pollers) {
        if (now - p.lastSeen <= expiry) continue;
        this.deps.statuses.close(p.status);
        this.pollers.delete(id);
      }
    }
    let entry = this.pollers.get(nodeId);
    if (!entry) this.pollers.set(nodeId, (entry = { status: this.deps.statuses.open(nodeId, 'rest', peer), lastSeen: now }));
    entry.lastSeen = now;
    return entry.status;
  }

  private waitForChange(key: string, typeUrl: TypeUrl, clientVersion: string, res: ServerResponse): Promise<TypeSnapshot | undefined> {
    const current = this.deps.cache.get(key, typeUrl);
    if (current && current.version !== clientVersion) return Promise.resolve(current);
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
        if (s.typeUrl === typeUrl && s.version !== clientVersion) done(s);
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
