// The client reaches an HTTPS Consul with CONSUL_CACERT and a client certificate (mutual TLS), through
// the `consul` package's TLS pass-through, and refuses a server it cannot verify.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsulHttpError, createConsulClient } from '../../../src/consul/http.ts';
import { consulConfigFromEnv } from '../../../src/consul/config.ts';

interface Issued {
  keyPem: string;
  certPem: string;
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
}

let serial = 1;
function issue(cn: string, issuer?: Issued, san?: { ip: string }): Issued {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = String(serial++).padStart(2, '0');
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 3_600_000);
  cert.setSubject([{ name: 'commonName', value: cn }]);
  cert.setIssuer((issuer?.cert ?? cert).subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: !issuer },
    ...(san ? [{ name: 'subjectAltName', altNames: [{ type: 7, ip: san.ip }] }] : []),
  ]);
  cert.sign(issuer?.key ?? key, forge.md.sha256.create());
  return { keyPem, certPem: forge.pki.certificateToPem(cert), cert, key };
}

function without(env: Record<string, string>, ...names: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !names.includes(k)));
}

describe('Consul over TLS', () => {
  let server: Server;
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    const ca = issue('clinimesh test CA');
    const serverCert = issue('server.dc1.consul', ca, { ip: '127.0.0.1' });
    const clientCert = issue('clinimesh', ca);
    dir = mkdtempSync(join(tmpdir(), 'consul-tls-'));
    const files = {
      'ca.pem': ca.certPem,
      'client.pem': clientCert.certPem,
      'client-key.pem': clientCert.keyPem,
    };
    for (const [name, pem] of Object.entries(files)) writeFileSync(join(dir, name), pem, { mode: 0o600 });
    server = createServer(
      {
        key: serverCert.keyPem,
        cert: serverCert.certPem,
        ca: ca.certPem,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': '7' });
        res.end(JSON.stringify(peer.subject?.CN ?? ''));
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    env = {
      CONSUL_HTTP_ADDR: `127.0.0.1:${(server.address() as AddressInfo).port}`,
      CONSUL_HTTP_SSL: 'true',
      CONSUL_CACERT: join(dir, 'ca.pem'),
      CONSUL_CLIENT_CERT: join(dir, 'client.pem'),
      CONSUL_CLIENT_KEY: join(dir, 'client-key.pem'),
    };
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  async function get(vars: Record<string, string>) {
    const config = consulConfigFromEnv(vars);
    if (!config.ok) throw new Error(JSON.stringify(config.errors));
    const client = await createConsulClient(config.value);
    if (!client.ok) throw new Error(JSON.stringify(client.errors));
    try {
      return await client.value.get('/status/leader', {}, { timeoutMs: 5_000 });
    } finally {
      client.value.close();
    }
  }

  it('verifies the server with CONSUL_CACERT and presents the client certificate', async () => {
    const res = await get(env);
    expect(res).toMatchObject({ status: 200, body: 'clinimesh', index: 7n });
  });

  it('refuses a server its CA does not vouch for', async () => {
    const withoutCa = without(env, 'CONSUL_CACERT');
    await expect(get(withoutCa)).rejects.toBeInstanceOf(ConsulHttpError);
  });

  it('fails when the server requires a client certificate and none is configured', async () => {
    const withoutClientCert = without(env, 'CONSUL_CLIENT_CERT', 'CONSUL_CLIENT_KEY');
    await expect(get(withoutClientCert)).rejects.toMatchObject({ kind: 'network' });
  });
});
