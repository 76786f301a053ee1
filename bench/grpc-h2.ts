// Bidirectional gRPC streams spoken directly over node:http2, for the simulated sidecars: one HTTP/2
// session per channel (TCP + TLS, as an Envoy's connection to its xDS cluster), a POST stream per
// call, messages framed as gRPC frames them (a 1-byte compressed flag, a 4-byte big-endian length).
// grpc-js did the same through resolvers, load balancers, filters and interceptors, which cost the
// simulators more CPU than the control plane they measure; Envoy does not use grpc-js either.
// A call fails when its trailers carry a status (OK included: the server ended the stream), when
// the stream is reset, or when the session goes; a failed session is replaced on the next call.
import {
  connect,
  constants,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type SecureClientSessionOptions,
} from 'node:http2';
import type { SecureContext } from 'node:tls';

const {
  HTTP2_HEADER_METHOD,
  HTTP2_HEADER_PATH,
  HTTP2_HEADER_STATUS,
  HTTP2_HEADER_CONTENT_TYPE,
  HTTP2_HEADER_TE,
} = constants;
const HEADER_BYTES = 5;

export interface ChannelTarget {
  /** host:port */
  readonly address: string;
  /** Mutual TLS with this context (key, chain and roots built once per identity); plaintext if absent. */
  readonly secureContext?: SecureContext;
  /** TLS server name (SNI) to send: an IP is not a valid one (RFC 6066). */
  readonly servername?: string;
}

export interface CallHandlers {
  message(bytes: Buffer): void;
  /** Called once, with why the call ended (the grpc-status and message, or what broke). */
  failed(reason: string): void;
}

/** One client connection, reopened on the next call after it failed or closed. */
export class H2Channel {
  private session: ClientHttp2Session | undefined;

  constructor(private readonly target: ChannelTarget) {}

  private connected(): ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const { address, secureContext, servername } = this.target;
    const options: SecureClientSessionOptions = {
      // The pooled sessions of a bench hold thousands of streams' buffers: no per-session cap.
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
      ...(secureContext && {
        secureContext,
        servername,
        // OpenSSL verified the chain against the mesh's CA; the serving certificate names the
        // control plane, not the loopback address the bench dials.
        checkServerIdentity: () => undefined,
      }),
    };
    const session = connect(`${secureContext ? 'https' : 'http'}://${address}`, options);
    // Errors reach each stream as a failure of its own; an 'error' without a listener would throw.
    session.on('error', () => undefined);
    session.on('close', () => {
      if (this.session === session) this.session = undefined;
    });
    this.session = session;
    return session;
  }

  call(path: string, handlers: CallHandlers): GrpcCall {
    return new GrpcCall(this.connected(), path, handlers);
  }

  close(): void {
    this.session?.destroy();
    this.session = undefined;
  }
}

export class GrpcCall {
  private readonly stream: ClientHttp2Stream | undefined;
  private ended = false;
  /** Unread bytes of an incomplete message, and their total length. */
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(
    session: ClientHttp2Session,
    path: string,
    private readonly handlers: CallHandlers,
  ) {
    try {
      this.stream = session.request({
        [HTTP2_HEADER_METHOD]: 'POST',
        [HTTP2_HEADER_PATH]: path,
        [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
        [HTTP2_HEADER_TE]: 'trailers',
      });
    } catch (e) {
      // A session that is going away refuses new streams at once: a failed call, reported later
      // as any other failure is (never from inside the caller's own call to open it).
      setImmediate(() => this.fail((e as Error).message));
      return;
    }
    const stream = this.stream;
    stream.on('response', (headers) => {
      const status = Number(headers[HTTP2_HEADER_STATUS]);
      if (status !== 200) return this.fail(`HTTP status ${status}`);
      // A trailers-only response: the status comes with the headers.
      if (headers['grpc-status'] !== undefined) this.fail(statusOf(headers));
    });
    stream.on('trailers', (trailers) => this.fail(statusOf(trailers)));
    stream.on('data', (chunk: Buffer) => this.read(chunk));
    stream.on('error', (e: Error) => this.fail(e.message));
    stream.on('close', () => this.fail(closeReason(stream.rstCode)));
  }

  /** Sends one message (a gRPC frame: uncompressed flag, length, bytes). */
  write(message: Uint8Array): void {
    if (this.ended || !this.stream) return;
    const frame = Buffer.allocUnsafe(HEADER_BYTES + message.byteLength);
    frame[0] = 0;
    frame.writeUInt32BE(message.byteLength, 1);
    frame.set(message, HEADER_BYTES);
    this.stream.write(frame);
  }

  /** Stops reading: the stream's HTTP/2 window fills and stays full. */
  pause(): void {
    this.stream?.removeAllListeners('data');
    this.stream?.pause();
  }

  /** Ends the call from the client's side (RST_STREAM CANCEL, as a cancelled gRPC call). */
  cancel(): void {
    this.ended = true;
    this.reset();
  }

  private reset(): void {
    if (this.stream && !this.stream.destroyed) this.stream.close(constants.NGHTTP2_CANCEL);
  }

  private fail(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.stream?.removeAllListeners('data');
    this.reset();
    this.handlers.failed(reason);
  }

  /** Splits the byte stream into messages; a message spread over many chunks is joined once. */
  private read(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= HEADER_BYTES && !this.ended) {
      let head = this.chunks[0]!;
      if (head.length < HEADER_BYTES) head = this.join();
      const size = HEADER_BYTES + head.readUInt32BE(1);
      if (this.buffered < size) return;
      if (head[0] !== 0) return this.fail('compressed message, but no compression was offered');
      if (head.length < size) head = this.join();
      const message = head.subarray(HEADER_BYTES, size);
      if (head.length === size) this.chunks.shift();
      else this.chunks[0] = head.subarray(size);
      this.buffered -= size;
      this.handlers.message(message);
    }
  }

  private join(): Buffer {
    const all = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [all];
    return all;
  }
}

/** The reason a call ended, from its status: OK too, since an xDS stream is never meant to end. */
function statusOf(headers: IncomingHttpHeaders): string {
  const status = String(headers['grpc-status'] ?? 'missing');
  if (status === '0') return 'stream ended by the server';
  const message = headers['grpc-message'];
  let text = typeof message === 'string' ? message : '';
  try {
    text = decodeURIComponent(text); // grpc-message is percent-encoded
  } catch {
    // Not percent-encoded after all: keep it as it came.
  }
  return `grpc-status ${status}${text ? `: ${text}` : ''}`;
}

function closeReason(rstCode: number | undefined): string {
  return rstCode ? `stream reset (HTTP/2 error ${rstCode})` : 'stream closed without a status';
}
