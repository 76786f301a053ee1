// Test support for the CA: temporary directories, the openssl CLI, and small PEM utilities.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** A fresh directory under the OS temp dir; `cleanup()` removes it. */
export function tempDir(prefix = 'clinimesh-ca-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs openssl; returns stdout+stderr (some verdicts, like `req -verify`'s, go to stderr) and the exit status. */
export function openssl(args: string[], cwd?: string): { status: number; output: string } {
  const run = spawnSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: run.status ?? 1, output: `${run.stdout ?? ''}${run.stderr ?? ''}` };
}

/** The PEM blocks of a chain, in order. */
export function pemBlocks(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/g) ?? [];
}

/**
 * `openssl verify` of a chain's leaf against `roots`, with the chain's other certificates as untrusted
 * intermediates, at `at` (default: now). Returns the exit status and output.
 */
export function opensslVerify(dir: string, chainPem: string, roots: readonly string[], at?: Date) {
  const [leaf, ...rest] = pemBlocks(chainPem);
  const n = Math.random().toString(36).slice(2);
  const files = { leaf: `leaf-${n}.pem`, chain: `chain-${n}.pem`, roots: `roots-${n}.pem` };
  writeFileSync(path.join(dir, files.leaf), leaf ?? '');
  writeFileSync(path.join(dir, files.chain), rest.join(''));
  writeFileSync(path.join(dir, files.roots), roots.join(''));
  const args = ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', files.roots];
  if (rest.length > 0) args.push('-untrusted', files.chain);
  if (at) args.push('-attime', String(Math.floor(at.getTime() / 1000)));
  return openssl([...args, files.leaf], dir);
}

const CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
O = Operator Clinic
CN = Operator Root CA
[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
`;

export interface BroughtCaOptions {
  readonly key?: 'ec' | 'rsa';
  readonly days?: number;
  readonly extensions?: 'root' | 'leaf';
  readonly subject?: string;
}

/** An operator's root made with the openssl CLI: `<name>.crt` and `<name>.key` in `dir`. */
export function opensslRoot(dir: string, name = 'ca', opts: BroughtCaOptions = {}): void {
  writeFileSync(path.join(dir, 'openssl.cnf'), CONFIG);
  const key =
    opts.key === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  const run = openssl(
    [
      'req',
      '-x509',
      ...key,
      '-nodes',
      '-config',
      'openssl.cnf',
      '-extensions',
      opts.extensions ?? 'root',
      '-subj',
      opts.subject ?? '/O=Operator Clinic/CN=Operator Root CA',
      '-days',
      String(opts.days ?? 365),
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
    ],
    dir,
  );
  if (run.status !== 0) throw new Error(`openssl req failed: ${run.output}`);
}

/** An intermediate signed by `<root>.crt/.key` in `dir`: `intermediate.crt` and `intermediate.key`. */
export function opensslIntermediate(dir: string, root = 'ca'): void {
  writeFileSync(path.join(dir, 'openssl.cnf'), CONFIG);
  const steps = [
    [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-config',
      'openssl.cnf',
      '-subj',
      '/O=Operator Clinic/CN=Operator Issuing CA',
      '-keyout',
      'intermediate.key',
      '-out',
      'intermediate.csr',
    ],
    [
      'x509',
      '-req',
      '-in',
      'intermediate.csr',
      '-CA',
      `${root}.crt`,
      '-CAkey',
      `${root}.key`,
      '-CAcreateserial',
      '-days',
      '90',
      '-extfile',
      'openssl.cnf',
      '-extensions',
      'intermediate',
      '-out',
      'intermediate.crt',
    ],
  ];
  for (const args of steps) {
    const run = openssl(args, dir);
    if (run.status !== 0) throw new Error(`openssl ${args[0]} failed: ${run.output}`);
  }
}

/** A fixed clock: tests move it explicitly. */
export function fixedClock(start: string): { now: () => Date; advance: (ms: number) => void } {
  let t = new Date(start).getTime();
  return { now: () => new Date(t), advance: (ms) => void (t += ms) };
}

/**
 * A CSR made by the openssl CLI for a fresh key of `algorithm` (`ed25519`, `EC` with
 * `-pkeyopt ec_paramgen_curve:…`, …): for keys clinimesh's own createCsr refuses to sign with.
 */
export function opensslCsr(dir: string, name: string, keyArgs: string[], uriSan?: string): string {
  writeFileSync(
    path.join(dir, `${name}.cnf`),
    '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = node agent\n',
  );
  const key = openssl(['genpkey', ...keyArgs, '-out', `${name}.key`], dir);
  if (key.status !== 0) throw new Error(`openssl genpkey failed: ${key.output}`);
  const san = uriSan ? ['-addext', `subjectAltName=URI:${uriSan}`] : [];
  const req = openssl(
    ['req', '-new', '-config', `${name}.cnf`, '-key', `${name}.key`, ...san, '-out', `${name}.csr`],
    dir,
  );
  if (req.status !== 0) throw new Error(`openssl req failed: ${req.output}`);
  return readFileSync(path.join(dir, `${name}.csr`), 'utf8');
}
