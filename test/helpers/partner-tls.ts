// A partner outside the mesh, for egress tests: its own certificate authority made at run time with
// openssl (no key is committed), a server certificate for chosen names, and an HTTPS server that
// records the SNI of every TLS handshake it is offered.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCa {
  readonly certFile: string;
  readonly keyFile: string;
}

/** A self-signed P-256 CA in `dir` (files `<name>-ca.pem`, `<name>-ca.key`). */
export async function makeTestCa(dir: string, name: string): Promise<TestCa> {
  const certFile = join(dir, `${name}-ca.pem`);
  const keyFile = join(dir, `${name}-ca.key`);
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', `/CN=${name} test CA`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]); // prettier-ignore
  return { certFile, keyFile };
}

export interface ServerCert {
  readonly cert: string;
  readonly key: string;
}

/** A server certificate signed by `ca` for the DNS names `dns`. */
export async function issueServerCert(
  ca: TestCa,
  dir: string,
  name: string,
  dns: readonly string[],
): Promise<ServerCert> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  await writeFile(
    ext,
    `subjectAltName=${dns.map((d) => `DNS:${d}`).join(',')}\nextendedKeyUsage=serverAuth\n`,
  );
  await run('openssl', [
    'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', key, '-out', csr, '-subj', `/CN=${dns[0] ?? name}`,
  ]); // prettier-ignore
  await run('openssl', [
    'x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial',
    '-out', cert, '-days', '1', '-extfile', ext,
  ]); // prettier-ignore
  return { cert: await readFile(cert, 'utf8'), key: await readFile(key, 'utf8') };
}

export interface TlsPartner {
  readonly host: string;
  readonly port: number;
  /**
   * The SNI of every TLS ClientHello so far, before the client judged the certificate: a client that
   * then refuses it still shows here, with no request answered.
   */
  readonly sniSeen: readonly string[];
  /** Requests answered so far. */
  readonly requests: number;
  close(): Promise<void>;
}

/** An HTTPS server answering every request with JSON naming itself, the SNI and the Host it got. */
export async function startTlsPartner(name: string, host: string, cert: ServerCert): Promise<TlsPartner> {
  const sniSeen: string[] = [];
  let requests = 0;
  const options = {
    cert: cert.cert,
    key: cert.key,
    // Called on a ClientHello with SNI; no context given keeps the server's own certificate.
    SNICallback: (servername: string, done: (err: Error | null) => void) => {
      sniSeen.push(servername);
      done(null);
    },
  };
  const server: Server = createServer(options, (req, res) => {
    requests++;
    const sni = (req.socket as TLSSocket).servername;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ partner: name, sni: sni || '', host: req.headers.host ?? '', path: req.url }));
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => resolve((server.address() as AddressInfo).port));
  });
  return {
    host,
    port,
    sniSeen,
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
