// Small upstream servers that answer with their own name, so a test can count which instance served
// a request, and an HTTP client without connection pooling.
import { createServer as createHttpServer, request } from 'node:http';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

export interface UpstreamOptions {
  name: string;
  host: string;
  /** Defaults to 0: the OS picks, and `port` on the result says which. */
  port?: number;
}

export interface Upstream {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** Requests (HTTP) or connections (TCP) served so far; read it live, don't destructure it. */
  readonly count: number;
  close(): Promise<void>;
}

/** What the HTTP upstream answers, as JSON, to every request. */
export interface ServedBy {
  served_by: string;
  method: string;
  path: string;
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  return new Promise((resolve) => {
    for (const socket of sockets) socket.destroy();
    server.close(() => resolve());
  });
}

function trackSockets(server: Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return sockets;
}

/** Answers every request with 200 and `ServedBy` JSON, echoing `x-request-id`. */
export async function startHttpUpstream({ name, host, port = 0 }: UpstreamOptions): Promise<Upstream> {
  let count = 0;
  const server = createHttpServer((req, res) => {
    count++;
    req.resume();
    req.on('end', () => {
      const body: ServedBy = { served_by: name, method: req.method ?? '', path: req.url ?? '' };
      const requestId = req.headers['x-request-id'];
      res.writeHead(200, {
        'content-type': 'application/json',
        ...(requestId === undefined ? {} : { 'x-request-id': requestId }),
      });
      res.end(JSON.stringify(body));
    });
  });
  const sockets = trackSockets(server);
  const bound = await listen(server, host, port);
  return {
    name,
    host,
    port: bound,
    get count() {
      return count;
    },
    close: () => closeServer(server, sockets),
  };
}

/** On each connection writes `name:` and then echoes whatever it receives. */
export async function startTcpEchoUpstream({ name, host, port = 0 }: UpstreamOptions): Promise<Upstream> {
  let count = 0;
  const server = createTcpServer((socket) => {
    count++;
    socket.on('error', () => socket.destroy());
    socket.write(`${name}:`);
    socket.pipe(socket);
  });
  const sockets = trackSockets(server);
  const bound = await listen(server, host, port);
  return {
    name,
    host,
    port: bound,
    get count() {
      return count;
    },
    close: () => closeServer(server, sockets),
  };
}

export interface TcpUpstream extends Upstream {
  /** Bytes the upstream has read from all its connections. */
  readonly bytesReceived: number;
}

/**
 * A TCP application that counts every connection it accepts and every byte it reads: it writes
 * `greeting` on accept when one is given (a server-first protocol: SMTP, MySQL, many HL7 engines),
 * echoes what it reads, and answers a half-close with `bye` before closing its side.
 */
export async function startTcpUpstream({
  name,
  host,
  port = 0,
  greeting,
}: UpstreamOptions & { greeting?: string }): Promise<TcpUpstream> {
  let count = 0;
  let bytesReceived = 0;
  const server = createTcpServer({ allowHalfOpen: true }, (socket) => {
    count++;
    socket.on('error', () => socket.destroy());
    if (greeting) socket.write(greeting);
    socket.on('data', (d: Buffer) => {
      bytesReceived += d.length;
      socket.write(d);
    });
    socket.on('end', () => socket.end('bye'));
  });
  const sockets = trackSockets(server);
  const bound = await listen(server, host, port);
  return {
    name,
    host,
    port: bound,
    get count() {
      return count;
    },
    get bytesReceived() {
      return bytesReceived;
    },
    close: () => closeServer(server, sockets),
  };
}

export interface HttpRequestOptions {
  method?: string;
  headers?: OutgoingHttpHeaders;
  body?: string | Buffer;
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection (`agent: false`), so no pooled connection outlives a config change. */
export function httpRequest(url: string, options: HttpRequestOptions = {}): Promise<HttpResponse> {
  const { method = 'GET', headers = {}, body, timeoutMs = 5_000 } = options;
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', fail);
      res.on('end', () => {
        clearTimeout(timer);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
      });
    });
    // A deadline on the whole exchange, not the socket's idle time.
    const timer = setTimeout(
      () => req.destroy(new Error(`${method} ${url}: no complete response within ${timeoutMs} ms`)),
      timeoutMs,
    );
    function fail(err: Error): void {
      clearTimeout(timer);
      reject(err);
    }
    req.on('error', fail);
    req.end(body);
  });
}
