// HTTP plumbing shared by the double's route families: errors that carry a status, JSON answers as
// Consul writes them, request bodies read raw (KV values are bytes, everything else JSON).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BadRequest } from './agent-api.ts';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The whole body, up to `limit` bytes (more is refused with 413 once read, as Consul's MaxBytesReader does). */
export async function readRaw(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A JSON body, or undefined when empty; a bad one is a 400 as Consul's decodeBody gives. */
export function parseJsonBody(raw: Buffer, prefix = 'Request decode failed'): unknown {
  const text = raw.toString('utf8').trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new BadRequest(`${prefix}: ${(err as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
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

export function sendText(res: ServerResponse, status: number, text: string): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(text);
}

/** `?flag` present with any value other than a false-looking one (Consul tests presence for most flags). */
export function has(q: URLSearchParams, name: string): boolean {
  return q.has(name);
}

/** An unsigned 64-bit query value as Go's strconv.ParseUint reads it; errors answer 500 as Consul's do. */
export function uintParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  if (!/^\d+$/.test(v))
    throw new HttpError(500, `strconv.ParseUint: parsing ${JSON.stringify(v)}: invalid syntax`);
  return Number(v);
}
