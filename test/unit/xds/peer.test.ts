// The SPIFFE ID a TLS client proved, read from its leaf certificate over a real handshake.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { CertificateAuthority, createCsr } from '../../../src/ca/index.ts';
import { peerIdentity, spiffeIdOfSan, type PeerIdentity } from '../../../src/xds/server/peer.ts';

describe('SPIFFE ID of a TLS peer', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => cleanups.splice(0).forEach((c) => c()));

  /** What the server reads from the client that connects with `client` (undefined: none). */
  async function peerOf(
    client?: { cert: string; key: string } | ((ca: CertificateAuthority) => { cert: string; key: string }),
  ): Promise<PeerIdentity | undefined> {
    const dir = mkdtempSync(join(tmpdir(), 'clinimesh-peer-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const ca = await CertificateAuthority.open({ dir, trustDomain: 'clinic.example' });
    if (!ca.ok) throw new Error(JSON.stringify(ca.errors));
    const serving = ca.value.issueWorkload(
      { namespace: 'clinimesh-system', service: 'control-plane' },
      { dnsNames: ['localhost'] },
    );
    const bundle = ca.value.trustBundle().join('\n');
    const seen = new Promise<PeerIdentity | undefined>((resolve) => {
      const server: Server = createServer(
        // Not rejecting a client without a certificate, so that reading one from it can be tried.
        {
          cert: serving.certChainPem,
          key: serving.privateKeyPem,
          ca: bundle,
          requestCert: true,
          rejectUnauthorized: false,
        },
        (socket: TLSSocket) => {
          resolve(peerIdentity(socket));
          socket.end();
        },
      );
      cleanups.push(() => server.close());
      server.listen(0, '127.0.0.1', () => {
        const port = (server.address() as { port: number }).port;
        const creds =
          (typeof client === 'function' ? client(ca.value) : client) ??
          // The default: a workload certificate that also carries DNS names beside its URI.
          (() => {
            const c = ca.value.issueWorkload(
              { namespace: 'clinical', service: 'emr' },
              { dnsNames: ['emr.clinical', 'emr'] },
            );
            return { cert: c.certChainPem, key: c.privateKeyPem };
          })();
        const socket = connect({
          port,
          host: '127.0.0.1',
          servername: 'localhost',
          ca: bundle,
          ...(client === undefined || typeof client === 'function' || client.cert ? creds : {}),
        });
        socket.on('error', () => undefined);
        cleanups.push(() => socket.destroy());
      });
    });
    return seen;
  }

  it('is the URI SAN of the verified leaf, beside DNS names', async () => {
    expect(await peerOf()).toEqual({ spiffeId: 'spiffe://clinic.example/ns/clinical/sa/emr' });
  });

  it('is absent when the client presents no certificate', async () => {
    expect(await peerOf({ cert: '', key: '' })).toBeUndefined();
  });

  it('carries the instance a node agent credential is bound to, beside its one URI SAN', async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const seen = await peerOf((ca) => {
      const signed = ca.signCsr({ namespace: 'clinical', service: 'emr' }, createCsr(key), {
        instance: 'emr-1',
      });
      if (!signed.ok) throw new Error(JSON.stringify(signed.errors));
      // Still an X.509-SVID: exactly one URI SAN (SPIFFE X509-SVID §2), the instance is elsewhere.
      expect(new X509Certificate(signed.value.certChainPem).subjectAltName).toBe(
        'URI:spiffe://clinic.example/ns/clinical/sa/emr',
      );
      return {
        cert: signed.value.certChainPem,
        key: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
      };
    });
    expect(seen).toEqual({ spiffeId: 'spiffe://clinic.example/ns/clinical/sa/emr', instance: 'emr-1' });
  });

  it('reads the URI out of the SAN list as OpenSSL prints it', () => {
    expect(spiffeIdOfSan('DNS:emr, URI:spiffe://td/ns/a/sa/b')).toBe('spiffe://td/ns/a/sa/b');
    expect(spiffeIdOfSan('DNS:emr, URI:https://not-spiffe')).toBeUndefined();
    expect(spiffeIdOfSan(undefined)).toBeUndefined();
  });
});
