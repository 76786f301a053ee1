// The files through which the agent hands secrets to its Envoy: one SDS DiscoveryResponse-shaped
// JSON document per secret, in a directory Envoy watches. Each is written beside the directory and
// moved in, so Envoy sees a whole file or none; keys are mode 0600 in a 0700 directory.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SECRET_TYPE, secretFileName } from '../xds/generate/secrets.ts';
import { anyJson } from '../xds/resources/any-json.ts';
import type { SecretJson } from '../xds/resources/gen/envoy/extensions/transport_sockets/tls/v3/secret_pb.ts';
import type { DiscoveryResponseJson } from '../xds/resources/gen/envoy/service/discovery/v3/discovery_pb.ts';

export interface CertAndKey {
  readonly certChainPem: string;
  readonly keyPem: string;
}

export function ensureSecretDir(sdsDir: string): void {
  mkdirSync(sdsDir, { recursive: true, mode: 0o700 });
  chmodSync(sdsDir, 0o700);
}

function writeSecret(sdsDir: string, name: string, body: Omit<SecretJson, 'name'>): void {
  const staged = join(dirname(sdsDir), `.${name}.${process.pid}.staged`);
  const response: DiscoveryResponseJson = { resources: [anyJson({ '@type': SECRET_TYPE, name, ...body })] };
  writeFileSync(staged, JSON.stringify(response), {
    mode: 0o600,
  });
  renameSync(staged, join(sdsDir, secretFileName(name)));
}

export function writeCertificate(sdsDir: string, name: string, c: CertAndKey): void {
  writeSecret(sdsDir, name, {
    tls_certificate: {
      certificate_chain: { inline_string: c.certChainPem },
      private_key: { inline_string: c.keyPem },
    },
  });
}

export function writeTrustBundle(sdsDir: string, name: string, bundlePem: string): void {
  writeSecret(sdsDir, name, { validation_context: { trusted_ca: { inline_string: bundlePem } } });
}

/** What a previous run of the agent left (it restarts without re-attesting while its credential lasts). */
export function readCertificate(sdsDir: string, name: string): CertAndKey | undefined {
  const file = join(sdsDir, secretFileName(name));
  if (!existsSync(file)) return undefined;
  try {
    const doc = JSON.parse(readFileSync(file, 'utf8')) as {
      resources?: Array<{
        tls_certificate?: {
          certificate_chain?: { inline_string?: string };
          private_key?: { inline_string?: string };
        };
      }>;
    };
    const tls = doc.resources?.[0]?.tls_certificate;
    const certChainPem = tls?.certificate_chain?.inline_string;
    const keyPem = tls?.private_key?.inline_string;
    return certChainPem && keyPem ? { certChainPem, keyPem } : undefined;
  } catch {
    return undefined;
  }
}

export function readTrustBundle(sdsDir: string, name: string): string | undefined {
  const file = join(sdsDir, secretFileName(name));
  if (!existsSync(file)) return undefined;
  try {
    const doc = JSON.parse(readFileSync(file, 'utf8')) as {
      resources?: Array<{ validation_context?: { trusted_ca?: { inline_string?: string } } }>;
    };
    return doc.resources?.[0]?.validation_context?.trusted_ca?.inline_string;
  } catch {
    return undefined;
  }
}

/** A proxyless application's files, as gRPC's file_watcher certificate provider reads them. */
export const PEM_FILES = { cert: 'cert.pem', key: 'key.pem', ca: 'ca.pem' } as const;

/** Each file is moved into place whole; gRPC re-reads them at its refresh interval. */
export function writePemFiles(pemDir: string, c: CertAndKey, bundlePem: string): void {
  ensureSecretDir(pemDir);
  const put = (name: string, text: string) => {
    const staged = join(dirname(pemDir), `.${name}.${process.pid}.staged`);
    writeFileSync(staged, text, { mode: 0o600 });
    renameSync(staged, join(pemDir, name));
  };
  put(PEM_FILES.ca, bundlePem);
  put(PEM_FILES.cert, c.certChainPem);
  put(PEM_FILES.key, c.keyPem);
}
