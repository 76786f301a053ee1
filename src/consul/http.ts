// The one door to Consul's HTTP API. Built on the `consul` package's client (connection, TLS, keep-alive,
// JSON codec, cancellation), but calling its request layer directly: the package's endpoint helpers
// drop `ns` on reads and `Weights`/`Namespace` on registration, and only hand out response headers
// (X-Consul-Index) through an undocumented context flag.
import { EventEmitter } from 'node:events';
import { lookup } from 'node:dns';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { readFile as fsReadFile } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import Consul from 'consul';
import type { Problem, Result } from '../errors.ts';
import { fail, ok } from '../errors.ts';
import type { ConsulConfig, ConsulSetting } from './config.ts';

export type ConsulQuery = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface ConsulCallOptions {
  readonly signal?: AbortSignal;
  /** Whole-request deadline; a blocking query needs wait + wait/16 + some slack. */
  readonly timeoutMs?: number;
}

export interface ConsulResponse {
  readonly status: number;
  readonly body: unknown;
  /** X-Consul-Index, present on every endpoint that supports blocking queries. */
  readonly index?: bigint;
  readonly knownLeader?: boolean;
  readonly lastContactMs?: number;
  /** X-Consul-Results-Filtered-By-ACLs: the token could not see everything there is. */
  readonly filteredByAcls?: boolean;
  /** X-Consul-Default-ACL-Policy (every answer since Consul 1.9): `allow` also when ACLs are off. */
  readonly defaultAclPolicy?: 'allow' | 'deny';
}

export type ConsulFailureKind = 'http' | 'network' | 'timeout' | 'aborted';

/** A request that did not produce a 2xx answer. `status` is set for `http` failures only. */
export class ConsulHttpError extends Error {
  constructor(
    message: string,
    readonly kind: ConsulFailureKind,
    readonly status?: number,
    /** The decoded answer of an `http` failure (a rolled-back /v1/txn answers 409 with its errors). */
    readonly body?: unknown,
    /** X-Consul-Index of an `http` failure (a KV read of a missing key answers 404 with one). */
    readonly index?: bigint,
  ) {
    super(message);
    this.name = 'ConsulHttpError';
  }
}

export interface ConsulHttp {
  /** GET `/v1<path>` (path already URL-encoded); adds `dc` when the config names a datacenter. */
  get(path: string, query?: ConsulQuery, options?: ConsulCallOptions): Promise<ConsulResponse>;
  /** PUT `/v1<path>` with a JSON body, or a Buffer sent as is (a KV value). */
  put(
    path: string,
    body?: unknown,
    query?: ConsulQuery,
    options?: ConsulCallOptions,
  ): Promise<ConsulResponse>;
  /** The datacenter the config names, for calls that must say it themselves (KV writes, /v1/txn). */
  readonly datacenter?: string;
  /** DELETE `/v1<path>`. */
  delete(path: string, query?: ConsulQuery, options?: ConsulCallOptions): Promise<ConsulResponse>;
  /** Closes pooled connections; in-flight requests should be aborted first. */
  close(): void;
}

// The part of the `consul` package's request layer (papi's documented `_request`) used here.
interface PapiRequest {
  method: 'GET' | 'PUT' | 'DELETE';
  path: string;
  query?: Record<string, string | string[]>;
  body?: unknown;
  type?: 'json';
  ctx?: EventEmitter;
  timeout?: number;
}
interface PapiResponse {
  statusCode?: number;
  headers: IncomingHttpHeaders;
  body?: unknown;
}
interface PapiClient {
  _request(request: PapiRequest): Promise<PapiResponse>;
  destroy(): void;
}
type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family: number,
) => void;

// Options the `consul` package passes through to its request layer (its typings list only a few).
type ConsulOptions = NonNullable<ConstructorParameters<typeof Consul>[0]>;
interface PapiClientOptions {
  baseUrl: string;
  socketPath?: string;
  headers: Record<string, string>;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
  rejectUnauthorized: boolean;
  lookup?: typeof unbracketedLookup;
}

function unbracketedLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  lookup(hostname.replace(/^\[(.*)\]$/, '$1'), options, callback);
}
interface PapiError {
  message?: unknown;
  isResponse?: boolean;
  isAbort?: boolean;
  isTimeout?: boolean;
  response?: PapiResponse;
}

export interface ClientIo {
  readFile(path: string): Promise<Buffer>;
}

async function readSetting(
  io: ClientIo,
  config: ConsulConfig,
  setting: ConsulSetting,
  path: string | undefined,
  problems: Problem[],
): Promise<Buffer | undefined> {
  if (path === undefined) return undefined;
  try {
    return await io.readFile(path);
  } catch (err) {
    const field = config.origins[setting] ?? setting;
    problems.push({ code: 'CONSUL', field, message: `cannot read ${path}: ${(err as Error).message}` });
    return undefined;
  }
}

/** Reads the token and TLS files named in `config` and returns a client, or problems naming the setting. */
export async function createConsulClient(
  config: ConsulConfig,
  io: ClientIo = { readFile: fsReadFile },
): Promise<Result<ConsulHttp>> {
  const problems: Problem[] = [];
  const tokenFile = await readSetting(io, config, 'tokenFile', config.tokenFile, problems);
  const ca = await readSetting(io, config, 'caFile', config.tls.caFile, problems);
  const cert = await readSetting(io, config, 'certFile', config.tls.certFile, problems);
  const key = await readSetting(io, config, 'keyFile', config.tls.keyFile, problems);
  if (problems.length > 0) return fail(problems);
  // Consul's own client prefers CONSUL_HTTP_TOKEN over the token file.
  const token = config.token ?? tokenFile?.toString('utf8').trim();
  const headers: Record<string, string> = {};
  if (token) headers['x-consul-token'] = token;
  if (config.namespace) headers['x-consul-namespace'] = config.namespace;
  const address = config.address;
  const options: ConsulOptions & PapiClientOptions = {
    baseUrl:
      address.scheme === 'unix'
        ? 'http://localhost/v1'
        : `${address.scheme}://${address.host}:${address.port}/v1`,
    ...(address.scheme === 'unix' ? { socketPath: address.socketPath } : {}),
    // papi hands Node the URL's hostname, which keeps an IPv6 literal's brackets; resolve without them.
    ...(address.scheme !== 'unix' && address.host.startsWith('[') ? { lookup: unbracketedLookup } : {}),
    headers,
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(config.tls.serverName ? { servername: config.tls.serverName } : {}),
    rejectUnauthorized: !config.tls.insecureSkipVerify,
  };
  const papi = new Consul(options) as unknown as PapiClient;
  return ok(new PapiConsulHttp(papi, config.datacenter));
}

function toPapiQuery(query: ConsulQuery | undefined): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined) out[k] = typeof v === 'string' ? v : [...v];
  }
  return out;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Parses X-Consul-Index; undefined when absent or not an unsigned integer. */
export function parseConsulIndex(text: string | undefined): bigint | undefined {
  return text !== undefined && /^\d+$/.test(text.trim()) ? BigInt(text.trim()) : undefined;
}

function toResponse(res: PapiResponse): ConsulResponse {
  const index = parseConsulIndex(header(res.headers, 'x-consul-index'));
  const knownLeader = header(res.headers, 'x-consul-knownleader');
  const lastContact = header(res.headers, 'x-consul-lastcontact');
  const aclPolicy = header(res.headers, 'x-consul-default-acl-policy');
  return {
    status: res.statusCode ?? 0,
    body: res.body,
    ...(index !== undefined ? { index } : {}),
    ...(knownLeader !== undefined ? { knownLeader: knownLeader === 'true' } : {}),
    ...(lastContact !== undefined && /^\d+$/.test(lastContact) ? { lastContactMs: Number(lastContact) } : {}),
    ...(header(res.headers, 'x-consul-results-filtered-by-acls') === 'true' ? { filteredByAcls: true } : {}),
    ...(aclPolicy === 'allow' || aclPolicy === 'deny' ? { defaultAclPolicy: aclPolicy } : {}),
  };
}

function toError(err: unknown, signal: AbortSignal | undefined): ConsulHttpError {
  const e = (typeof err === 'object' && err !== null ? err : {}) as PapiError;
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (signal?.aborted || e.isAbort) return new ConsulHttpError(message, 'aborted');
  if (e.isTimeout) return new ConsulHttpError(message, 'timeout');
  if (e.isResponse && e.response) {
    const body = typeof e.response.body === 'string' ? e.response.body.trim() : '';
    const status = e.response.statusCode ?? 0;
    return new ConsulHttpError(
      `consul: HTTP ${status}${body ? `: ${body.slice(0, 200)}` : ''}`,
      'http',
      status,
      e.response.body,
      parseConsulIndex(header(e.response.headers, 'x-consul-index')),
    );
  }
  return new ConsulHttpError(message, 'network');
}

class PapiConsulHttp implements ConsulHttp {
  constructor(
    private readonly papi: PapiClient,
    readonly datacenter: string | undefined,
  ) {}

  get(path: string, query?: ConsulQuery, options: ConsulCallOptions = {}): Promise<ConsulResponse> {
    return this.send({ method: 'GET', path, query: toPapiQuery(this.withDc(query)) }, options);
  }

  put(
    path: string,
    body?: unknown,
    query?: ConsulQuery,
    options: ConsulCallOptions = {},
  ): Promise<ConsulResponse> {
    const request: PapiRequest = { method: 'PUT', path, query: toPapiQuery(query) };
    if (Buffer.isBuffer(body)) Object.assign(request, { body });
    else if (body !== undefined) Object.assign(request, { body, type: 'json' });
    return this.send(request, options);
  }

  delete(path: string, query?: ConsulQuery, options: ConsulCallOptions = {}): Promise<ConsulResponse> {
    return this.send({ method: 'DELETE', path, query: toPapiQuery(query) }, options);
  }

  private withDc(query: ConsulQuery | undefined): ConsulQuery | undefined {
    return this.datacenter && query?.dc === undefined ? { ...query, dc: this.datacenter } : query;
  }

  close(): void {
    this.papi.destroy();
  }

  private async send(
    request: PapiRequest,
    { signal, timeoutMs }: ConsulCallOptions,
  ): Promise<ConsulResponse> {
    if (signal?.aborted) throw new ConsulHttpError('request aborted', 'aborted');
    // papi cancels a request when its context emits `cancel`.
    const ctx = new EventEmitter();
    const cancel = (): void => void ctx.emit('cancel');
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      const res = await this.papi._request({
        ...request,
        ctx,
        ...(timeoutMs !== undefined ? { timeout: timeoutMs } : {}),
      });
      return toResponse(res);
    } catch (err) {
      throw toError(err, signal);
    } finally {
      signal?.removeEventListener('abort', cancel);
    }
  }
}
