// The simulators' gRPC over node:http2 (bench/grpc-h2.ts) against a plain node:http2 server that
// answers as a gRPC server frames its replies: messages split and joined across DATA frames come
// out whole and in order, what the client writes is framed as gRPC frames it, and every way a call
// can end (a status in trailers or trailers-only, OK included; a reset; a lost connection) is one
// failure with its reason, after which the channel connects again.
import { once } from 'node:events';
import { createServer, constants, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { H2Channel, type CallHandlers } from '../../../bench/grpc-h2.ts';

const frame = (message: Buffer): Buffer => {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
};

/** What each test's server does with a call, by path. */
const behaviours = new Map<string, (stream: ServerHttp2Stream) => void>();
let server: Http2Server;
let address: string;
const sessions: unknown[] = [];

beforeAll(async () => {
  server = createServer();
  server.on('session', (s) => sessions.push(s));
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined); // resets, as the tests make them
    behaviours.get(String(headers[':path']))?.(stream);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => server.close());

const ok = { ':status': 200, 'content-type': 'application/grpc' };

/** Runs one call to `path` until it fails; resolves with what it received and why it ended. */
function callUntilFailed(
  channel: H2Channel,
  path: string,
  send: Buffer[] = [],
): Promise<{ messages: Buffer[]; reason: string }> {
  return new Promise((resolve) => {
    const messages: Buffer[] = [];
    const handlers: CallHandlers = {
      message: (m) => messages.push(Buffer.from(m)),
      failed: (reason) => resolve({ messages, reason }),
    };
    const call = channel.call(path, handlers);
    for (const m of send) call.write(m);
  });
}

describe('gRPC over node:http2 (bench simulators)', () => {
  it('delivers messages whole and in order however DATA frames split or join them', async () => {
    const big = Buffer.alloc(200_000, 7);
    behaviours.set('/split', (stream) => {
      stream.respond(ok, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      const bytes = Buffer.concat([
        frame(Buffer.from('one')),
        frame(Buffer.from('two')),
        frame(big),
        frame(Buffer.alloc(0)),
      ]);
      // Split at odd places: inside a length prefix, inside a message.
      for (const [from, to] of [
        [0, 2],
        [2, 9],
        [9, 5_000],
        [5_000, bytes.length],
      ] as const)
        stream.write(bytes.subarray(from, to));
      stream.end();
    });
    const channel = new H2Channel({ address });
    const { messages, reason } = await callUntilFailed(channel, '/split');
    channel.close();
    expect(messages.map((m) => m.length)).toEqual([3, 3, big.length, 0]);
    expect(messages.slice(0, 2).map(String)).toEqual(['one', 'two']);
    expect(messages[2]!.equals(big)).toBe(true);
    expect(reason).toBe('stream ended by the server');
  });

  it('frames what it writes as gRPC does: flag 0, big-endian length, the bytes', async () => {
    let received = Buffer.alloc(0);
    behaviours.set('/echo-raw', (stream) => {
      stream.respond(ok);
      stream.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        if (received.length >= 5 + 4 + 5 + 300) stream.close(constants.NGHTTP2_NO_ERROR);
      });
    });
    const channel = new H2Channel({ address });
    await callUntilFailed(channel, '/echo-raw', [Buffer.from('ping'), Buffer.alloc(300, 1)]);
    channel.close();
    expect(received).toEqual(Buffer.concat([frame(Buffer.from('ping')), frame(Buffer.alloc(300, 1))]));
  });

  it('fails a call with the status and message of a trailers-only answer', async () => {
    behaviours.set('/refused', (stream) =>
      stream.respond({ ...ok, 'grpc-status': '16', 'grpc-message': 'no%20certificate' }, { endStream: true }),
    );
    const channel = new H2Channel({ address });
    const { reason } = await callUntilFailed(channel, '/refused');
    channel.close();
    expect(reason).toBe('grpc-status 16: no certificate');
  });

  it('fails a call the server resets, and one whose connection is lost; the channel connects again', async () => {
    behaviours.set('/reset', (stream) => {
      stream.respond(ok);
      stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    });
    behaviours.set('/hang', (stream) => stream.respond(ok));
    const channel = new H2Channel({ address });
    expect((await callUntilFailed(channel, '/reset')).reason).toMatch(/reset|NGHTTP2_INTERNAL_ERROR/);
    const before = sessions.length;
    const hanging = callUntilFailed(channel, '/hang');
    await new Promise((r) => setTimeout(r, 100));
    channel.close();
    expect((await hanging).reason).toBeTruthy();
    // The next call opens a new connection rather than reusing the lost one.
    const again = callUntilFailed(channel, '/refused');
    expect((await again).reason).toBe('grpc-status 16: no certificate');
    expect(sessions.length).toBe(before + 1);
    channel.close();
  });
});
