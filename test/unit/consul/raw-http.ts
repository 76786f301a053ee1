// Plain HTTP against a Consul target, for the KV, txn and session cases: raw bodies (KV values are
// bytes), every method, and the headers as sent, so the cases see exactly what the agent answers.
import type { IncomingHttpHeaders } from 'node:http';
import { httpRequest } from '../../helpers/upstream.ts';

export interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  /** X-Consul-Index as a number (NaN when absent). */
  readonly index: number;
  json<T = unknown>(): T;
}

export interface RawConsul {
  request(
    method: string,
    path: string,
    body?: string,
    options?: { token?: string; timeoutMs?: number; headers?: Record<string, string> },
  ): Promise<RawResponse>;
  get(path: string, options?: { token?: string; timeoutMs?: number }): Promise<RawResponse>;
  put(path: string, body?: string | object, options?: { token?: string }): Promise<RawResponse>;
  del(path: string): Promise<RawResponse>;
}

export function rawConsul(address: string, token?: string): RawConsul {
  const base = /^https?:\/\//.test(address) ? address : `http://${address}`;
  const request: RawConsul['request'] = async (method, path, body, options = {}) => {
    const t = options.token ?? token;
    const res = await httpRequest(`${base}${path}`, {
      method,
      headers: { ...(t ? { 'x-consul-token': t } : {}), ...options.headers },
      ...(body === undefined ? {} : { body }),
      timeoutMs: options.timeoutMs ?? 10_000,
    });
    return {
      status: res.status,
      headers: res.headers,
      text: res.body,
      index: Number(res.headers['x-consul-index']),
      json: <T>() => JSON.parse(res.body) as T,
    };
  };
  return {
    request,
    get: (path, options) => request('GET', path, undefined, options),
    put: (path, body, options) =>
      request('PUT', path, typeof body === 'object' ? JSON.stringify(body) : body, options),
    del: (path) => request('DELETE', path),
  };
}

export interface KvPair {
  LockIndex: number;
  Key: string;
  Flags: number;
  Value: string | null;
  Session?: string;
  CreateIndex: number;
  ModifyIndex: number;
}

export const b64 = (s: string): string => Buffer.from(s).toString('base64');
export const unb64 = (s: string | null): string => (s === null ? '' : Buffer.from(s, 'base64').toString());
