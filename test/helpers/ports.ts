// Loopback ports and addresses for tests: every server binds port 0 (or a port read back from a
// port-0 bind) and, where a test models pods, its own 127.x.y.z address.
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

/** A port that was free a moment ago on `host` (bind port 0, read it back, close). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const { port } = server.address() as AddressInfo;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

const handedOut = new Set<string>();
const MAX_ATTEMPTS = 1_000;

function octet(): number {
  return 1 + Math.floor(Math.random() * 254); // 1..254: never 0 or 255
}

/**
 * A loopback address no earlier call in this process returned, 127.x.y.z with x, y, z in 1..254, so
 * each test instance can have its own IP like a pod. Linux routes all of 127.0.0.0/8 to `lo`.
 */
export function loopbackAddress(): string {
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    const address = `127.${octet()}.${octet()}.${octet()}`;
    if (!handedOut.has(address)) {
      handedOut.add(address);
      return address;
    }
  }
  throw new Error(`loopbackAddress: no unused address after ${MAX_ATTEMPTS} attempts`);
}
